/* SPDX-License-Identifier: MIT */
/* cli.h — the espstation subcommands. Each takes the arguments after its own name and returns
 * the process exit status (0 success, 1 the job failed, 2 usage error). Also the runner that the
 * one-device commands share (cli_flash.c). */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "est_err.h"
#include "job.h"
#include "plan.h"
#include "vocab.h" /* est_class_hint: the operator hint of an error class */

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

int cli_flash(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_read_flash(int argc, char **argv);
int cli_erase(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_recipe(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_ports(int argc, char **argv);
int cli_nvs(int argc, char **argv);
int cli_escrow(int argc, char **argv);

/* Help lines of the link options every one-device command takes (cli_job_main parses them). */
#define CLI_LINK_HELP                                                                              \
    "  --baud N             write/read at N baud after connecting at 115200 (CHANGE_BAUDRATE;\n"   \
    "                       on failure lower rates are tried); default: stay at 115200\n"          \
    "  --stub-dir DIR       flasher stubs: an installed esptool's targets/stub_flasher/2 or /1\n"  \
    "                       (or that stub_flasher directory), esptool 4.2-4.7's stub_flasher,\n"   \
    "                       or an esp-flasher-stub release; default: ROM loader only\n"            \
    "  --stub-version V     which stub of a stub_flasher directory holding 1/ and 2/: default\n"   \
    "                       (what its esptool uses: 4.x 1/, 5.x 2/), 1 (legacy) or 2\n"            \
    "                       (esp-flasher-stub)\n"                                                  \
    "  --no-stub            use the ROM loader even when --stub-dir is given\n"

/* One one-device command for cli_job_main: its name and help, what it does with the positional
 * arguments, and what it adds to the result. */
typedef struct cli_op_s cli_op_t;
struct cli_op_s {
    const char *name; /* "flash", "read-flash" */
    const char *help;
    /* Fill the plan from argv[first..argc). Return 0, or non-zero with *cls and msg set. */
    int (*positional)(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                      est_class_t *cls, char *msg, size_t cap);
    /* Optional: the job's data (PLAN_OP_READ). */
    int (*data_cb)(cli_op_t *op, uint32_t offset, const uint8_t *buf, size_t n);
    /* Optional: called once when the job ended (before the result is printed); may change the
     * exit status (e.g. the output file could not be finished). Returns the exit status. */
    int (*finish)(cli_op_t *op, const job_report_t *rep, int exit_code);
    /* Optional: extra lines of the human result, and extra JSON fields. */
    void (*human)(cli_op_t *op, const job_report_t *rep);
    void (*json)(cli_op_t *op, const job_report_t *rep, void *cjson_object);
    void *ctx;
};

/* Parse the shared options (port, chip, reset modes, link, flash parameters, --json, -v), let
 * `op` take the positional arguments, run one job and report. */
int cli_job_main(int argc, char **argv, cli_op_t *op);

/* A failure before any device was touched, in the requested form. Returns the exit status. */
int cli_early_fail(bool json, est_class_t cls, const char *msg);

#endif
