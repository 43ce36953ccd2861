/* SPDX-License-Identifier: MIT */
/* cli_flashops.c — `espstation read-flash` and `espstation erase`: the engineer's tools on one
 * device, run by cli_job_main (cli_flash.c). read-flash writes to FILE.partial and renames it
 * when the device's MD5 of the range matched; erase takes a region or --all.
 * Must not: implement protocol steps (jobs/ does). */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char cli_read_help[] =
    "usage: espstation read-flash --port PORT [options] OFFSET SIZE FILE\n"
    "\n"
    "Read SIZE bytes of flash at OFFSET into FILE (SIZE 'all': up to the end of the flash).\n"
    "With the flasher stub (--stub-dir) the data comes in acknowledged 4 KiB packets and is\n"
    "checked against the stub's MD5; without it the ROM's READ_FLASH_SLOW reads 64 bytes per\n"
    "command (slow; not on the ESP8266, whose ROM cannot read flash) and SPI_FLASH_MD5 checks\n"
    "the result. FILE is written only when the check passed.\n"
    "\n"
    "  --port PORT          as for 'espstation flash'\n"
    "  --chip NAME          auto (default) or a chip name: the job fails (wrong_chip) otherwise\n"
    "  --before MODE        default_reset, usb_reset, no_reset\n"
    "  --after MODE         hard_reset (default), no_reset\n" CLI_LINK_HELP
    "  --connect-attempts N reset+sync attempts before giving up (default 7)\n"
    "  --json               print one JSON object with the result on stdout\n"
    "  -v, --verbose        more detail on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 pass, 1 the job failed, 2 usage error.\n";

static const char cli_erase_help[] =
    "usage: espstation erase --port PORT [options] (--all | OFFSET SIZE)\n"
    "\n"
    "Erase the whole flash (--all: ERASE_FLASH, needs the flasher stub) or SIZE bytes at\n"
    "OFFSET (both multiples of 0x1000; the stub's ERASE_REGION, or without the stub the ROM's\n"
    "FLASH_BEGIN, which erases the region up front). Erased flash reads 0xFF.\n"
    "\n"
    "  --port PORT          as for 'espstation flash'\n"
    "  --all                erase everything\n"
    "  --chip NAME          auto (default) or a chip name: the job fails (wrong_chip) otherwise\n"
    "  --before MODE        default_reset, usb_reset, no_reset\n"
    "  --after MODE         hard_reset (default), no_reset\n" CLI_LINK_HELP
    "  --connect-attempts N reset+sync attempts before giving up (default 7)\n"
    "  --json               print one JSON object with the result on stdout\n"
    "  -v, --verbose        more detail on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Exit status: 0 pass, 1 the job failed, 2 usage error.\n";

/* ---- read-flash ---- */

typedef struct cli_read_s {
    const char *file;
    char *partial; /* FILE.partial while reading */
    FILE *f;
    uint32_t offset, got;
    uint8_t md5[16];
    bool written; /* FILE holds the data */
} cli_read_t;

static int cli_read_positional(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                               est_class_t *cls, char *msg, size_t cap)
{
    cli_read_t *rd = op->ctx;
    uint32_t off, size = 0;
    size_t n;
    if (argc - first != 3) {
        snprintf(msg, cap, "expected OFFSET SIZE FILE after the options (see --help)");
        return -1;
    }
    if (plan_parse_u32(argv[first], &off) != 0) {
        *cls = EST_CLASS_BAD_OFFSET;
        snprintf(msg, cap, "'%s' is not a flash offset (e.g. 0x10000)", argv[first]);
        return -1;
    }
    if (strcmp(argv[first + 1], "all") != 0 && strcmp(argv[first + 1], "ALL") != 0 &&
        (plan_parse_u32(argv[first + 1], &size) != 0 || size == 0)) {
        snprintf(msg, cap, "'%s' is not a size in bytes (e.g. 0x100000, or 'all')",
                 argv[first + 1]);
        return -1;
    }
    rd->file = argv[first + 2];
    n = strlen(rd->file) + sizeof ".partial";
    rd->partial = malloc(n);
    if (!rd->partial) {
        *cls = EST_CLASS_INTERNAL;
        snprintf(msg, cap, "out of memory");
        return -1;
    }
    snprintf(rd->partial, n, "%s.partial", rd->file);
    rd->f = fopen(rd->partial, "wb");
    if (!rd->f) {
        snprintf(msg, cap, "cannot write %s: %s", rd->partial, strerror(errno));
        free(rd->partial);
        rd->partial = NULL;
        return -1;
    }
    rd->offset = off;
    plan->op = PLAN_OP_READ;
    plan->op_offset = off;
    plan->op_size = size;
    return 0;
}

static int cli_read_data(cli_op_t *op, uint32_t offset, const uint8_t *buf, size_t n)
{
    cli_read_t *rd = op->ctx;
    if (offset != rd->offset + rd->got || fwrite(buf, 1, n, rd->f) != n) return -1;
    rd->got += (uint32_t)n;
    return 0;
}

static int cli_read_finish(cli_op_t *op, const job_report_t *rep, int exit_code)
{
    cli_read_t *rd = op->ctx;
    int werr = 0;
    if (!rd->f) return exit_code;
    if (fflush(rd->f) != 0 || fsync(fileno(rd->f)) != 0) werr = errno;
    if (fclose(rd->f) != 0 && !werr) werr = errno;
    rd->f = NULL;
    if (exit_code == CLI_EXIT_OK && !werr && rename(rd->partial, rd->file) != 0) werr = errno;
    if (exit_code != CLI_EXIT_OK || werr) {
        unlink(rd->partial); /* never leave a file that looks complete but is not */
        if (werr) {
            fprintf(stderr, "espstation: cannot write %s: %s\n", rd->file, strerror(werr));
            return CLI_EXIT_FAIL;
        }
        return exit_code;
    }
    memcpy(rd->md5, rep->read_md5, sizeof rd->md5);
    rd->written = true;
    return exit_code;
}

static void cli_hex16(const uint8_t d[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void cli_read_human(cli_op_t *op, const job_report_t *rep)
{
    cli_read_t *rd = op->ctx;
    double s = (rep->state_ms[JOB_ST_READ]) / 1000.0;
    char md5[33];
    if (!rd->written) return;
    cli_hex16(rd->md5, md5);
    printf("Read %u bytes at 0x%08x into %s in %.1f s (%.1f kbit/s), MD5 %s verified\n", rd->got,
           rd->offset, rd->file, s, s > 0 ? rd->got * 8 / s / 1000 : 0.0, md5);
}

static void cli_read_json(cli_op_t *op, const job_report_t *rep, void *obj)
{
    cli_read_t *rd = op->ctx;
    cJSON *o = obj;
    char buf[33];
    (void)rep;
    cJSON_AddStringToObject(o, "operation", "read-flash");
    snprintf(buf, sizeof buf, "0x%x", rd->offset);
    cJSON_AddStringToObject(o, "offset", buf);
    cJSON_AddNumberToObject(o, "size", rd->got);
    cJSON_AddStringToObject(o, "file", rd->file);
    if (rd->written) {
        cli_hex16(rd->md5, buf);
        cJSON_AddStringToObject(o, "md5", buf);
    } else {
        cJSON_AddNullToObject(o, "md5");
    }
}

int cli_read_flash(int argc, char **argv)
{
    cli_read_t rd;
    cli_op_t op = {.name = "read-flash",
                   .help = cli_read_help,
                   .positional = cli_read_positional,
                   .data_cb = cli_read_data,
                   .finish = cli_read_finish,
                   .human = cli_read_human,
                   .json = cli_read_json,
                   .ctx = &rd};
    int rc;
    memset(&rd, 0, sizeof rd);
    rc = cli_job_main(argc, argv, &op);
    if (rd.f) { /* the job never ran (e.g. a usage error after the file was opened) */
        fclose(rd.f);
        unlink(rd.partial);
    }
    free(rd.partial);
    return rc;
}

/* ---- erase ---- */

static int cli_erase_positional(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                                est_class_t *cls, char *msg, size_t cap)
{
    uint32_t off, size;
    (void)op;
    plan->op = PLAN_OP_ERASE;
    if (plan->erase_all) {
        if (first != argc) {
            snprintf(msg, cap, "--all takes no OFFSET SIZE (see --help)");
            return -1;
        }
        return 0;
    }
    if (argc - first != 2) {
        snprintf(msg, cap, "expected --all or OFFSET SIZE after the options (see --help)");
        return -1;
    }
    if (plan_parse_u32(argv[first], &off) != 0 || plan_parse_u32(argv[first + 1], &size) != 0 ||
        size == 0) {
        snprintf(msg, cap, "'%s %s' is not an OFFSET SIZE pair (e.g. 0x9000 0x6000)", argv[first],
                 argv[first + 1]);
        return -1;
    }
    if (off % PLAN_SECTOR || size % PLAN_SECTOR) {
        *cls = EST_CLASS_BAD_OFFSET;
        snprintf(msg, cap,
                 "offset 0x%x and size 0x%x must be multiples of 0x1000 (flash erases whole "
                 "4 KiB sectors)",
                 off, size);
        return -1;
    }
    plan->op_offset = off;
    plan->op_size = size;
    return 0;
}

static void cli_erase_json(cli_op_t *op, const job_report_t *rep, void *obj)
{
    const plan_t *plan = op->ctx;
    cJSON *o = obj;
    char buf[16];
    (void)rep;
    cJSON_AddStringToObject(o, "operation", "erase");
    cJSON_AddBoolToObject(o, "all", plan->erase_all);
    if (!plan->erase_all) {
        snprintf(buf, sizeof buf, "0x%x", plan->op_offset);
        cJSON_AddStringToObject(o, "offset", buf);
        cJSON_AddNumberToObject(o, "size", plan->op_size);
    }
}

/* cli_job_main owns the plan; the JSON hook needs it: take it from the positional call */
static int cli_erase_positional_keep(cli_op_t *op, int argc, char **argv, int first, plan_t *plan,
                                     est_class_t *cls, char *msg, size_t cap)
{
    op->ctx = plan;
    return cli_erase_positional(op, argc, argv, first, plan, cls, msg, cap);
}

static void cli_erase_human(cli_op_t *op, const job_report_t *rep)
{
    const plan_t *plan = op->ctx;
    (void)rep;
    if (plan->erase_all)
        printf("Flash erased\n");
    else
        printf("Erased 0x%08x..0x%08x (%u bytes)\n", plan->op_offset,
               plan->op_offset + plan->op_size, plan->op_size);
}

int cli_erase(int argc, char **argv)
{
    cli_op_t op = {.name = "erase",
                   .help = cli_erase_help,
                   .positional = cli_erase_positional_keep,
                   .human = cli_erase_human,
                   .json = cli_erase_json};
    return cli_job_main(argc, argv, &op);
}
