/* SPDX-License-Identifier: MIT */
/* cli_flash.c — `espstation flash` and `espstation info`, and cli_job_main, the runner every
 * one-device command shares (options, one job on a private libuv loop, human progress or one
 * JSON object as the result); read-flash and erase bring their own arguments (cli_flashops.c).
 * Must not: implement protocol steps (jobs/ does) or keep state beyond one run. */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "cmd.h"
#include "job.h"
#include "port.h"
#include "plan.h"

typedef struct cli_run_s {
    bool json;
    bool verbose;
    bool tty;
    const plan_t *plan;
    cli_op_t *op;
    int last_pct;
    uint64_t t0_ms;
    uv_signal_t sigint, sigterm;
    job_t *job;
    int exit_code;
} cli_run_t;

static const char cli_flash_help[] =
    "usage: espstation flash --port PORT [options] OFFSET FILE [OFFSET FILE ...]\n"
    "\n"
    "Write each FILE at flash OFFSET (a multiple of 0x1000), verify it with MD5 where the\n"
    "loader can, then reset the chip.\n"
    "\n"
    "  --port PORT          /dev/ttyUSB0, /dev/serial/by-path/..., usb-serial:<serial number>,\n"
    "                       a pty, socket://HOST:PORT (raw TCP) or rfc2217://HOST:PORT\n"
    "  --chip NAME          auto (default) or esp8266, esp32, esp32s2, esp32s3, esp32c2,\n"
    "                       esp32c3, esp32c6, esp32h2: the job fails (wrong_chip) otherwise\n"
    "  --before MODE        default_reset (DTR/RTS into the bootloader), usb_reset, no_reset\n"
    "  --after MODE         hard_reset (default: RTS pulse, runs the application), no_reset\n"
    "  --flash-mode MODE    keep (default), qio, qout, dio, dout  } written into the header\n"
    "  --flash-size SIZE    keep (default), detect, 1MB, 2MB, 4MB } of the image at the chip's\n"
    "  --flash-freq FREQ    keep (default), 80m, 40m, 26m, 20m... } bootloader offset\n"
    "  --no-compress        send uncompressed data (default: compressed where supported)\n"
    "  --no-verify          skip the MD5 check after writing\n"
    "  --skip-unchanged     first ask the device for each region's MD5; an image that is\n"
    "                       already there is not written again\n"
    "  --erase-all          erase the whole flash first (needs the stub)\n"
    "  --test-expect TEXT   after the hard reset, read the application's output until TEXT\n"
    "                       appears (plain text), else fail with test_failed\n"
    "  --test-timeout MS    how long to wait for it (default 10000)\n"
    "  --test-baud N        the application's baud rate (default 115200)\n" CLI_LINK_HELP
    "  --connect-attempts N reset+sync attempts before giving up (default 7)\n"
    "  --json               print one JSON object with the result on stdout\n"
    "  -v, --verbose        more detail on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 pass, 1 the job failed (see error class and hint), 2 usage error.\n";

static const char cli_info_help[] =
    "usage: espstation info --port PORT [--chip NAME] [--before MODE] [--after MODE] [--json]\n"
    "\n"
    "Identify the device: chip, revision, MAC, flash JEDEC ID and flash size (ROM loader at\n"
    "the connect rate: a few short commands need no stub or baud change).\n"
    "Options as for 'espstation flash'. Exit status: 0 ok, 1 failed, 2 usage error.\n";

/* ---- output ---- */

static void cli_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The security read-out's summary (docs/SECURITY-PROVISIONING.md §9), one indented line each. */
static void cli_print_security(const job_report_t *rep)
{
    cJSON *o = rep->security[0] ? cJSON_Parse(rep->security) : NULL;
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(o, "summary");
    if (cJSON_IsString(sum)) {
        const char *p = sum->valuestring;
        printf("Security:\n");
        while (*p) {
            size_t n = strcspn(p, "\n");
            printf("  %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
    cJSON_Delete(o);
}

static void cli_state_cb(job_t *j, job_state_t from, job_state_t to)
{
    cli_run_t *r = job_data(j);
    (void)from;
    if (r->verbose) fprintf(stderr, "[%s] -> %s\n", job_port_spec(j), job_state_name(to));
    if (!r->json && from == JOB_ST_OPEN && (to == JOB_ST_RESET || to == JOB_ST_SYNC))
        printf("Connecting to %s...\n", job_port_spec(j));
    if (!r->json && to == JOB_ST_BEGIN) {
        const job_report_t *rep = job_report(j);
        const job_image_stat_t *is = &rep->images[rep->n_images - 1];
        const plan_image_t *im = &r->plan->images[rep->n_images - 1];
        printf("Writing %s at 0x%08x: %u bytes", im->path, is->offset, is->size);
        if (is->compressed_size != is->size) printf(" (%u compressed)", is->compressed_size);
        printf("%s\n", is->patched ? ", flash parameters patched" : "");
        r->last_pct = -1;
    }
    if (from == JOB_ST_BAUD && !r->json && to != JOB_ST_CLOSING &&
        (r->plan->op != PLAN_OP_FLASH || r->plan->n_images > 0)) {
        const job_report_t *rep = job_report(j);
        printf("Loader: %s at %u baud\n", rep->stub ? "flasher stub" : "ROM", rep->baud);
    }
    if (to == JOB_ST_FLASH_ID && !r->json) {
        const job_report_t *rep = job_report(j);
        char mac[18];
        printf("Chip: %s", rep->chip ? rep->chip->pretty : "?");
        if (rep->have_rev) printf(" (revision v%u.%u)", rep->chip_rev / 100, rep->chip_rev % 100);
        if (rep->have_mac) printf(", MAC %s", job_fmt_mac(rep->mac, mac));
        printf("\n");
        cli_print_security(rep);
    }
    if (to == JOB_ST_PARAMS && !r->json) {
        const job_report_t *rep = job_report(j);
        char sz[32];
        printf("Flash: JEDEC ID %06x, %s\n", rep->flash_id,
               rep->flash_size ? plan_fmt_size(rep->flash_size, sz, sizeof sz) : "unknown size");
    }
    fflush(stdout);
}

static void cli_progress_cb(job_t *j, size_t idx, uint64_t done, uint64_t total)
{
    cli_run_t *r = job_data(j);
    int pct = total ? (int)(done * 100 / total) : 100;
    (void)idx;
    if (r->json) return;
    if (r->tty || pct / 10 != r->last_pct / 10 || pct == 100) {
        if (pct == r->last_pct) return;
        printf(r->tty ? "\r  %3d%% (%llu of %llu bytes)" : "  %3d%% (%llu of %llu bytes)\n", pct,
               (unsigned long long)done, (unsigned long long)total);
        if (r->tty && pct == 100) printf("\n");
        fflush(stdout);
        r->last_pct = pct;
    }
}

static void cli_log_cb(job_t *j, job_log_level_t lvl, const char *msg)
{
    cli_run_t *r = job_data(j);
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (lvl == JOB_LOG_ERROR) return; /* the result says it */
    if (lvl == JOB_LOG_DEBUG && !r->verbose) return;
    if (lvl == JOB_LOG_INFO && !r->verbose) return;
    fprintf(stderr, "%s: %s\n", names[lvl], msg);
}

static cJSON *cli_report_json(const job_report_t *rep, const char *port, const plan_t *plan)
{
    cJSON *o = cJSON_CreateObject(), *imgs, *st;
    char buf[64];
    cJSON_AddStringToObject(o, "result", job_result_name(rep->result));
    cJSON_AddStringToObject(o, "port", port);
    if (rep->chip) {
        cJSON_AddStringToObject(o, "chip", rep->chip->name);
        cJSON_AddStringToObject(o, "chip_name", rep->chip->pretty);
        if (rep->have_rev) { /* a value not read is null (docs/CLI.md) */
            snprintf(buf, sizeof buf, "v%u.%u", rep->chip_rev / 100, rep->chip_rev % 100);
            cJSON_AddStringToObject(o, "revision", buf);
        } else {
            cJSON_AddNullToObject(o, "revision");
        }
    } else {
        cJSON_AddNullToObject(o, "chip");
        cJSON_AddNullToObject(o, "chip_name");
        cJSON_AddNullToObject(o, "revision");
    }
    if (rep->have_mac)
        cJSON_AddStringToObject(o, "mac", job_fmt_mac(rep->mac, buf));
    else
        cJSON_AddNullToObject(o, "mac");
    if (rep->have_flash_id) {
        snprintf(buf, sizeof buf, "%06x", rep->flash_id);
        cJSON_AddStringToObject(o, "flash_id", buf);
    } else {
        cJSON_AddNullToObject(o, "flash_id");
    }
    if (rep->flash_size)
        cJSON_AddNumberToObject(o, "flash_size", rep->flash_size);
    else
        cJSON_AddNullToObject(o, "flash_size");
    st = rep->security[0] ? cJSON_Parse(rep->security) : NULL;
    if (st)
        cJSON_AddItemToObject(o, "security", st);
    else
        cJSON_AddNullToObject(o, "security");
    cJSON_AddNumberToObject(o, "duration_ms", (double)(rep->finished_ms - rep->started_ms));
    if (plan->op == PLAN_OP_FLASH)
        imgs = cJSON_AddArrayToObject(o, "images");
    else
        imgs = cJSON_CreateArray(); /* read-flash, erase: no images (freed below) */
    for (size_t i = 0; i < rep->n_images; i++) {
        const job_image_stat_t *is = &rep->images[i];
        cJSON *im = cJSON_CreateObject();
        char md5[33];
        snprintf(buf, sizeof buf, "0x%x", is->offset);
        cJSON_AddStringToObject(im, "offset", buf);
        cJSON_AddNumberToObject(im, "size", is->size);
        cJSON_AddNumberToObject(im, "compressed_size", is->compressed_size);
        cli_hex(is->md5, 16, md5);
        cJSON_AddStringToObject(im, "md5", md5);
        cJSON_AddBoolToObject(im, "verified", is->verified);
        cJSON_AddBoolToObject(im, "patched", is->patched);
        cJSON_AddBoolToObject(im, "skipped", is->skipped);
        cJSON_AddNumberToObject(im, "duration_ms", (double)is->duration_ms);
        cJSON_AddItemToArray(imgs, im);
    }
    if (plan->op != PLAN_OP_FLASH) cJSON_Delete(imgs);
    if (rep->unverified[0])
        cJSON_AddStringToObject(o, "not_verified_reason", rep->unverified);
    else
        cJSON_AddNullToObject(o, "not_verified_reason");
    cJSON_AddBoolToObject(o, "stub", rep->stub);
    if (rep->stub_name[0])
        cJSON_AddStringToObject(o, "stub_name", rep->stub_name);
    else
        cJSON_AddNullToObject(o, "stub_name");
    if (rep->baud)
        cJSON_AddNumberToObject(o, "baud", rep->baud);
    else
        cJSON_AddNullToObject(o, "baud");
    cJSON_AddNumberToObject(o, "baud_fallbacks", rep->baud_fallbacks);
    cJSON_AddNumberToObject(o, "bytes_written", (double)rep->bytes_written);
    cJSON_AddNumberToObject(o, "bytes_sent", (double)rep->bytes_sent);
    cJSON_AddNumberToObject(o, "retries", rep->retries);
    if (plan->test && plan->op == PLAN_OP_FLASH) {
        cJSON *t = cJSON_AddObjectToObject(o, "test");
        cJSON_AddStringToObject(t, "expect", plan->test_expect ? plan->test_expect : "");
        cJSON_AddBoolToObject(t, "ran", rep->test_ran);
        cJSON_AddBoolToObject(t, "passed", rep->test_passed);
        cJSON_AddNumberToObject(t, "baud", plan->test_baud);
        if (rep->test_ran) {
            cJSON_AddNumberToObject(t, "duration_ms", (double)rep->test_ms);
            cJSON_AddStringToObject(t, "output", rep->test_output);
        } else {
            cJSON_AddNullToObject(t, "duration_ms");
            cJSON_AddNullToObject(t, "output");
        }
    }
    st = cJSON_AddObjectToObject(o, "state_ms");
    for (int s = 0; s < JOB_ST__COUNT; s++)
        if (rep->state_ms[s])
            cJSON_AddNumberToObject(st, job_state_name((job_state_t)s), (double)rep->state_ms[s]);
    if (rep->result != JOB_RESULT_PASS) {
        cJSON_AddStringToObject(o, "error_class", est_class_name(rep->error_class));
        cJSON_AddStringToObject(o, "message", rep->message);
        cJSON_AddStringToObject(o, "hint", est_class_hint(rep->error_class));
        cJSON_AddStringToObject(o, "failed_state", job_state_name(rep->failed_state));
        if (rep->error_class == EST_CLASS_NAK) {
            cJSON *nak = cJSON_AddObjectToObject(o, "nak");
            cJSON_AddStringToObject(nak, "command", cmd_op_name(rep->nak_op));
            snprintf(buf, sizeof buf, "0x%04x", rep->nak_code);
            cJSON_AddStringToObject(nak, "status", buf);
        }
    }
    return o;
}

/* A failure before any device was touched (bad arguments, missing file). */
int cli_early_fail(bool json, est_class_t cls, const char *msg)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        cJSON_AddStringToObject(o, "result", "fail");
        cJSON_AddStringToObject(o, "error_class", est_class_name(cls));
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddStringToObject(o, "hint", est_class_hint(cls));
        s = cJSON_PrintUnformatted(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
    }
    fprintf(stderr, "espstation: %s\n", msg);
    if (!json && cls != EST_CLASS_USAGE)
        fprintf(stderr, "FAIL [%s]\nHint: %s\n", est_class_name(cls), est_class_hint(cls));
    return cls == EST_CLASS_USAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

static void cli_done_cb(job_t *j, const job_report_t *rep)
{
    cli_run_t *r = job_data(j);
    r->exit_code = rep->result == JOB_RESULT_PASS ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (r->op->finish) r->exit_code = r->op->finish(r->op, rep, r->exit_code);
    if (r->json) {
        cJSON *o = cli_report_json(rep, job_port_spec(j), r->plan);
        char *s;
        if (r->op->json) r->op->json(r->op, rep, o);
        s = cJSON_PrintUnformatted(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
    } else if (rep->result == JOB_RESULT_PASS) {
        uint64_t ms = rep->finished_ms - rep->started_ms;
        for (size_t i = 0; i < rep->n_images; i++) {
            const job_image_stat_t *is = &rep->images[i];
            double s = is->duration_ms / 1000.0;
            if (is->skipped) {
                printf("0x%08x: %u bytes already on the device (MD5 matches): skipped\n",
                       is->offset, is->size);
                continue;
            }
            printf("0x%08x: %u bytes in %.1f s (%.1f kbit/s effective), %s\n", is->offset, is->size,
                   s, s > 0 ? is->size * 8 / s / 1000 : 0.0,
                   is->verified ? "MD5 verified" : "not verified");
        }
        if (rep->test_passed)
            printf("Test: the application printed \"%s\" %.1f s after the reset\n",
                   r->plan->test_expect, rep->test_ms / 1000.0);
        if (r->op->human) r->op->human(r->op, rep);
        if (r->exit_code == CLI_EXIT_OK) printf("PASS in %.1f s\n", ms / 1000.0);
    } else {
        if (rep->test_ran && !rep->test_passed)
            printf("Application output after the reset (%zu bytes):\n%s%s", rep->test_output_len,
                   rep->test_output,
                   rep->test_output_len && rep->test_output[rep->test_output_len - 1] != '\n' ? "\n"
                                                                                              : "");
        printf("%s [%s] in state %s: %s\nHint: %s\n",
               rep->result == JOB_RESULT_CANCELLED ? "CANCELLED" : "FAIL",
               est_class_name(rep->error_class), job_state_name(rep->failed_state), rep->message,
               est_class_hint(rep->error_class));
    }
    fflush(stdout);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static int cli_data_cb(job_t *j, uint32_t offset, const uint8_t *buf, size_t n)
{
    cli_run_t *r = job_data(j);
    return r->op->data_cb ? r->op->data_cb(r->op, offset, buf, n) : 0;
}

static void cli_signal_cb(uv_signal_t *s, int signum)
{
    cli_run_t *r = s->data;
    (void)signum;
    if (r->job) job_cancel(r->job);
}

/* ---- option parsing ---- */

enum {
    OPT_PORT = 256,
    OPT_CHIP,
    OPT_BEFORE,
    OPT_AFTER,
    OPT_MODE,
    OPT_SIZE,
    OPT_FREQ,
    OPT_NO_COMPRESS,
    OPT_NO_VERIFY,
    OPT_ATTEMPTS,
    OPT_JSON,
    OPT_BAUD,
    OPT_STUB_DIR,
    OPT_STUB_VERSION,
    OPT_NO_STUB,
    OPT_SKIP,
    OPT_ERASE_ALL,
    OPT_ALL,
    OPT_TEST_EXPECT,
    OPT_TEST_TIMEOUT,
    OPT_TEST_BAUD
};

static const struct option cli_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"chip", required_argument, NULL, OPT_CHIP},
    {"before", required_argument, NULL, OPT_BEFORE},
    {"after", required_argument, NULL, OPT_AFTER},
    {"flash-mode", required_argument, NULL, OPT_MODE},
    {"flash_mode", required_argument, NULL, OPT_MODE},
    {"flash-size", required_argument, NULL, OPT_SIZE},
    {"flash_size", required_argument, NULL, OPT_SIZE},
    {"flash-freq", required_argument, NULL, OPT_FREQ},
    {"flash_freq", required_argument, NULL, OPT_FREQ},
    {"no-compress", no_argument, NULL, OPT_NO_COMPRESS},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    {"connect-attempts", required_argument, NULL, OPT_ATTEMPTS},
    {"baud", required_argument, NULL, OPT_BAUD},
    {"stub-dir", required_argument, NULL, OPT_STUB_DIR},
    {"stub-version", required_argument, NULL, OPT_STUB_VERSION},
    {"no-stub", no_argument, NULL, OPT_NO_STUB},
    {"skip-unchanged", no_argument, NULL, OPT_SKIP},
    {"erase-all", no_argument, NULL, OPT_ERASE_ALL},
    {"all", no_argument, NULL, OPT_ALL},
    {"test-expect", required_argument, NULL, OPT_TEST_EXPECT},
    {"test-timeout", required_argument, NULL, OPT_TEST_TIMEOUT},
    {"test-baud", required_argument, NULL, OPT_TEST_BAUD},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* --test-expect, --test-timeout, --test-baud (flash only). Returns 0 or -1 with `msg`. */
static int cli_test_option(int c, const char *arg, plan_t *plan, bool *test_opts, char *msg,
                           size_t cap)
{
    uint32_t v = 0;
    if (c == OPT_TEST_EXPECT) {
        if (!*arg || strlen(arg) > PLAN_TEST_EXPECT_MAX) {
            snprintf(msg, cap, "--test-expect needs 1 to %d characters", PLAN_TEST_EXPECT_MAX);
            return -1;
        }
        plan->test = true;
        plan->test_expect = arg;
    } else if (c == OPT_TEST_TIMEOUT) {
        if (plan_parse_u32(arg, &v) != 0 || v < PLAN_TEST_TIMEOUT_MIN ||
            v > PLAN_TEST_TIMEOUT_MAX) {
            snprintf(msg, cap, "--test-timeout needs %u to %u ms, not '%s'", PLAN_TEST_TIMEOUT_MIN,
                     PLAN_TEST_TIMEOUT_MAX, arg);
            return -1;
        }
        plan->test_timeout_ms = v;
        *test_opts = true;
    } else {
        if (plan_parse_u32(arg, &v) != 0 || v < PLAN_BAUD_MIN || v > PLAN_BAUD_MAX) {
            snprintf(msg, cap, "--test-baud needs a rate from %u to %u, not '%s'", PLAN_BAUD_MIN,
                     PLAN_BAUD_MAX, arg);
            return -1;
        }
        plan->test_baud = v;
        *test_opts = true;
    }
    return 0;
}

/* One option that sets the plan (everything but --port, --json, -v, -h). Returns 0, 1 when `c`
 * is not such an option, or -1 with the usage error in `msg`. Ranges are plan.h's. */
static int cli_plan_option(int c, const char *arg, const char *optname, const cli_op_t *op,
                           plan_t *plan, bool *test_opts, char *msg, size_t cap)
{
    bool flash = strcmp(op->name, "flash") == 0, erase = strcmp(op->name, "erase") == 0;
    switch (c) {
    case OPT_CHIP:
        if (!strcmp(arg, "auto")) {
            plan->chip = CHIP_UNKNOWN;
        } else if (chip_by_name(arg)) {
            plan->chip = chip_by_name(arg)->id;
        } else {
            snprintf(msg, cap, "unknown chip '%s' (auto, %s)", arg, chip_names_list());
            return -1;
        }
        break;
    case OPT_BEFORE:
        plan->before_set = true;
        if (plan_parse_before(arg, &plan->before) != 0) {
            snprintf(msg, cap, "unknown --before '%s' (default_reset, usb_reset, no_reset)", arg);
            return -1;
        }
        break;
    case OPT_AFTER:
        plan->after_set = true;
        if (plan_parse_after(arg, &plan->after) != 0) {
            snprintf(msg, cap, "unknown --after '%s' (hard_reset, no_reset)", arg);
            return -1;
        }
        break;
    case OPT_MODE:
        if (!strcmp(arg, "keep")) {
            plan->flash_mode = -1;
        } else if ((plan->flash_mode = chip_flash_mode_code(arg)) < 0) {
            snprintf(msg, cap, "unknown --flash-mode '%s' (keep, qio, qout, dio, dout)", arg);
            return -1;
        }
        break;
    case OPT_SIZE:
        if (plan_set_flash_size(plan, arg, NULL) != 0) {
            snprintf(msg, cap, "unknown --flash-size '%s' (keep, detect, 256KB ... 128MB)", arg);
            return -1;
        }
        break;
    case OPT_FREQ:
        if (plan_set_flash_freq(plan, arg, NULL) != 0) {
            snprintf(msg, cap, "unknown --flash-freq '%s' (keep, or e.g. 40m)", arg);
            return -1;
        }
        break;
    case OPT_NO_COMPRESS: plan->compress = false; break;
    case OPT_NO_VERIFY: plan->verify = false; break;
    case OPT_ATTEMPTS: {
        uint32_t n;
        if (plan_parse_u32(arg, &n) != 0 || n < PLAN_CONNECT_ATTEMPTS_MIN ||
            n > PLAN_CONNECT_ATTEMPTS_MAX) {
            snprintf(msg, cap, "--connect-attempts needs a number from %u to %u",
                     PLAN_CONNECT_ATTEMPTS_MIN, PLAN_CONNECT_ATTEMPTS_MAX);
            return -1;
        }
        plan->connect_attempts = n;
        break;
    }
    case OPT_BAUD: {
        uint32_t b;
        if (plan_parse_u32(arg, &b) != 0 || b < PLAN_BAUD_MIN || b > PLAN_BAUD_MAX) {
            snprintf(msg, cap, "--baud needs a rate from %u to %u, not '%s'", PLAN_BAUD_MIN,
                     PLAN_BAUD_MAX, arg);
            return -1;
        }
        plan->flash_baud = b;
        break;
    }
    case OPT_STUB_DIR: plan->stub_dir = arg; break;
    case OPT_STUB_VERSION:
        if (stub_pick_parse(arg, &plan->stub_pick) != 0) {
            snprintf(msg, cap,
                     "unknown --stub-version '%s' (default; 1 or legacy; 2 or esp-flasher-stub)",
                     arg);
            return -1;
        }
        break;
    case OPT_NO_STUB: plan->stub = false; break;
    case OPT_SKIP:
    case OPT_ERASE_ALL:
    case OPT_ALL:
        /* --skip-unchanged / --erase-all belong to flash, --all to erase */
        if ((c == OPT_ALL) != erase || (c != OPT_ALL && !flash)) {
            snprintf(msg, cap, "%s is not an option of %s (see --help)", optname, op->name);
            return -1;
        }
        if (c == OPT_SKIP)
            plan->skip_unchanged = true;
        else
            plan->erase_all = true;
        break;
    case OPT_TEST_EXPECT:
    case OPT_TEST_TIMEOUT:
    case OPT_TEST_BAUD:
        if (!flash) {
            snprintf(msg, cap, "%s is not an option of %s (see --help)", optname, op->name);
            return -1;
        }
        return cli_test_option(c, arg, plan, test_opts, msg, cap);
    default: return 1;
    }
    return 0;
}

/* Parse shared options into plan/run, the positional arguments through the op, run, report. */
int cli_job_main(int argc, char **argv, cli_op_t *op)
{
    est_class_t cls = EST_CLASS_USAGE;
    plan_t plan;
    cli_run_t run;
    const char *port = NULL;
    char msg[600];
    bool test_opts = false;
    int c, rc;

    memset(&run, 0, sizeof run);
    plan_init(&plan);
    /* find --json first so early errors are reported in the requested form */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json")) run.json = true;
    optind = 1;
    opterr = 0;
    /* options may come before or after the OFFSET FILE pairs, as with esptool */
    while ((c = getopt_long(argc, argv, "vh", cli_opts, NULL)) != -1) {
        switch (c) {
        case OPT_PORT: port = optarg; break;
        case OPT_JSON: run.json = true; break;
        case 'v': run.verbose = true; break;
        case 'h': fputs(op->help, stdout); return CLI_EXIT_OK;
        default:
            rc = cli_plan_option(c, optarg, argv[optind - 1], op, &plan, &test_opts, msg,
                                 sizeof msg);
            if (rc == 0) break;
            if (rc > 0)
                snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)",
                         argv[optind - 1]);
            return cli_early_fail(run.json, EST_CLASS_USAGE, msg);
        }
    }
    if (!port) return cli_early_fail(run.json, EST_CLASS_USAGE, "--port is required (see --help)");
    if (port_spec_check(port) != 0) { /* a usage error: exit status 2 (docs/CLI.md) */
        snprintf(msg, sizeof msg,
                 "--port %s: not a port spec (a device path such as /dev/ttyUSB0, "
                 "usb-serial:<serial>, socket://host:port or rfc2217://host:port)",
                 port);
        return cli_early_fail(run.json, EST_CLASS_USAGE, msg);
    }
    if (test_opts && !plan.test)
        return cli_early_fail(run.json, EST_CLASS_USAGE,
                              "--test-timeout / --test-baud need --test-expect TEXT");
    if (plan.stub_dir && plan.stub) {
        /* a wrong directory is a usage error now, not a surprise after connecting */
        struct stat st;
        errno = 0;
        if (stat(plan.stub_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(msg, sizeof msg, "--stub-dir %s: %s", plan.stub_dir,
                     errno ? strerror(errno) : "not a directory");
            return cli_early_fail(run.json, EST_CLASS_USAGE, msg);
        }
    }
    if (op->positional(op, argc, argv, optind, &plan, &cls, msg, sizeof msg) != 0) {
        plan_free(&plan);
        return cli_early_fail(run.json, cls, msg);
    }
    { /* the rules spanning fields: the same check the recipe loader and the station make */
        plan_err_t perr;
        if (plan_finalize(&plan, &perr) != 0) {
            plan_free(&plan);
            return cli_early_fail(run.json, perr.cls, perr.msg);
        }
    }

    uv_loop_t *loop = uv_default_loop();
    static const job_cbs_t cbs = {.state_cb = cli_state_cb,
                                  .progress_cb = cli_progress_cb,
                                  .log_cb = cli_log_cb,
                                  .done_cb = cli_done_cb,
                                  .data_cb = cli_data_cb};
    run.plan = &plan;
    run.op = op;
    run.tty = !run.json && isatty(STDOUT_FILENO);
    run.exit_code = CLI_EXIT_FAIL;
    run.t0_ms = uv_now(loop);
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &run.sigint);
    uv_signal_init(loop, &run.sigterm);
    run.sigint.data = run.sigterm.data = &run;
    uv_signal_start(&run.sigint, cli_signal_cb, SIGINT);
    uv_signal_start(&run.sigterm, cli_signal_cb, SIGTERM);
    uv_unref((uv_handle_t *)&run.sigint);
    uv_unref((uv_handle_t *)&run.sigterm);
    run.job = job_new(loop, port, &plan, &cbs, NULL, &run);
    if (!run.job) {
        plan_free(&plan);
        return cli_early_fail(run.json, EST_CLASS_INTERNAL, "out of memory");
    }
    rc = job_start(run.job);
    if (rc == 0) uv_run(loop, UV_RUN_DEFAULT);
    job_free(run.job);
    uv_run(loop, UV_RUN_DEFAULT); /* let the close callbacks run */
    plan_free(&plan);
    uv_loop_close(loop);
    return run.exit_code;
}

/* flash: OFFSET FILE pairs */
static int cli_flash_positional(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                                est_class_t *cls, char *msg, size_t cap)
{
    plan_err_t perr;
    (void)op;
    if (first >= argc || (argc - first) % 2 != 0) {
        snprintf(msg, cap, "expected OFFSET FILE pairs after the options (see --help)");
        return -1;
    }
    for (int i = first; i + 1 < argc; i += 2) {
        uint32_t off;
        if (plan_parse_u32(argv[i], &off) != 0) {
            *cls = EST_CLASS_BAD_OFFSET;
            snprintf(msg, cap, "'%s' is not a flash offset (e.g. 0x10000)", argv[i]);
            return -1;
        }
        if (plan_add_image(plan, off, argv[i + 1], &perr) != 0) {
            *cls = perr.cls;
            snprintf(msg, cap, "%s", perr.msg);
            return -1;
        }
    }
    if (plan_finish(plan, &perr) != 0) {
        *cls = perr.cls;
        snprintf(msg, cap, "%s", perr.msg);
        return -1;
    }
    return 0;
}

static int cli_info_positional(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                               est_class_t *cls, char *msg, size_t cap)
{
    (void)op;
    (void)argv;
    (void)cls;
    if (plan->skip_unchanged || plan->erase_all) {
        snprintf(msg, cap, "info writes nothing: --skip-unchanged / --erase-all do not apply");
        return -1;
    }
    if (first < argc) {
        snprintf(msg, cap, "info takes no positional arguments");
        return -1;
    }
    return 0;
}

int cli_flash(int argc, char **argv)
{
    cli_op_t op = {.name = "flash", .help = cli_flash_help, .positional = cli_flash_positional};
    return cli_job_main(argc, argv, &op);
}

int cli_info(int argc, char **argv)
{
    cli_op_t op = {.name = "info", .help = cli_info_help, .positional = cli_info_positional};
    return cli_job_main(argc, argv, &op);
}
