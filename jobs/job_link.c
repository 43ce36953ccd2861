/* SPDX-License-Identifier: MIT */
/* job_link.c — the link phase of the job: STUB (upload the flasher stub, PROTOCOL.md §8.3) and
 * BAUD (CHANGE_BAUDRATE with the ROM clock correction of the chip table, then a probe; lower
 * rates after a reconnect when a rate fails, PROTOCOL.md §9). Must not: block, do I/O except
 * through job.c. */
#include "job_sm.h"

#include <stdio.h>
#include <string.h>

#define OHAI_WAIT_MS                                                                               \
    3200                  /* MEM_END's 0.2 s (reply optional) + 3 s for "OHAI" (PROTOCOL.md §8.3) \
                           */
#define BAUD_PROBE_MS 500 /* the first command at the new rate */
#define BAUD_MAX_FALLBACKS 4

/* ---- STUB ---- */

static void job_stub_done(job_t *j)
{
    stub_put(j->stub_img);
    j->stub_img = NULL;
    job_enter(j, JOB_ST_BAUD);
}

/* Why the stub is not used for this chip, or NULL (the chip table's esptool exclusions). */
const char *job_stub_excluded(const job_t *j)
{
    return chip_stub_exclusion(j->chip, j->rep.chip_rev, job_secure_boot(j));
}

static void job_stub_fail(job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_stub_fail(job_t *j, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stub_put(j->stub_img);
    j->stub_img = NULL;
    job_fail(j, EST_CLASS_STUB_FAILED, EST_ESTUB, "%s", msg);
}

/* MEM_BEGIN for segment j->u.stub.seg (0 text, 1 data), or MEM_END after the last one. */
static void job_stub_next_segment(job_t *j)
{
    const stub_t *s = j->stub_img;
    const uint8_t *d = j->u.stub.seg == 0 ? s->text : s->data;
    size_t n = j->u.stub.seg == 0 ? s->text_len : s->data_len;
    uint32_t addr = j->u.stub.seg == 0 ? s->text_start : s->data_start;
    uint32_t bs = j->ram_block; /* 0x1800, 0x800 over USB-OTG (PROTOCOL.md §4.3) */
    if (j->u.stub.seg > 1 || !d) {
        /* MEM_END(0, entry): the ROM may jump before it answers, so the reply is optional;
         * the stub then greets with a bare "OHAI" frame. Raw mode sees both. */
        j->u.stub.phase = STUB_MEM_END;
        j->req_len = cmd_build_mem_end(j->req, sizeof j->req, s->entry);
        j->raw_mode = true; /* before sending: a failed write leaves it cleared by CLOSING */
        job_send_or_fail(j, CMD_MEM_END, 0, OHAI_WAIT_MS);
        return;
    }
    j->u.stub.phase = STUB_MEM_BEGIN;
    j->u.stub.mem_seq = 0;
    j->u.stub.mem_blocks = (uint32_t)((n + bs - 1) / bs);
    j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_MEM_BEGIN, (uint32_t)n,
                                 j->u.stub.mem_blocks, bs, addr, false, 0);
    job_send_or_fail(j, CMD_MEM_BEGIN, 0, job_state_timeout_ms(JOB_ST_STUB));
}

static void job_stub_send_block(job_t *j)
{
    const stub_t *s = j->stub_img;
    const uint8_t *d = j->u.stub.seg == 0 ? s->text : s->data;
    size_t n = j->u.stub.seg == 0 ? s->text_len : s->data_len;
    size_t bs = j->ram_block, off = (size_t)j->u.stub.mem_seq * bs;
    j->u.stub.phase = STUB_MEM_DATA;
    j->req_len = cmd_build_data(j->req, sizeof j->req, CMD_MEM_DATA, j->u.stub.mem_seq, d + off,
                                n - off < bs ? n - off : bs);
    job_send_or_fail(j, CMD_MEM_DATA, 0, job_state_timeout_ms(JOB_ST_STUB));
}

/* Pick the stub file: the plan's file, else the chip's file in the stub directory. Returns the
 * path, or NULL when the ROM loader is to be used (logged) or the job failed. */
static const char *job_stub_path(job_t *j, char *path, size_t cap)
{
    const plan_t *pl = j->plan;
    char why[512];
    const char *base;
    stub_choice_t choice;
    int rc;
    if (pl->stub_file) {
        const chip_info_t *fc = stub_file_chip(pl->stub_file);
        if (fc && fc != j->chip) {
            job_stub_fail(j, "stub file %s is for %s, but the chip is %s", pl->stub_file,
                          fc->pretty, j->chip->pretty);
            return NULL;
        }
        if (!stub_file_p4_rev_ok(pl->stub_file, j->rep.chip_rev)) {
            job_stub_fail(j,
                          "stub file %s is for ESP32-P4 %s v3.00, but this chip is v%u.%u "
                          "(esp32p4-rev1.json / esp32p4rc1.json below v3.00, esp32p4.json from "
                          "v3.00 on)",
                          pl->stub_file, j->rep.chip_rev < 300 ? "from" : "below",
                          j->rep.chip_rev / 100, j->rep.chip_rev % 100);
            return NULL;
        }
        snprintf(path, cap, "%s", pl->stub_file);
        base = strrchr(pl->stub_file, '/');
        snprintf(j->rep.stub_name, sizeof j->rep.stub_name, "%s", base ? base + 1 : pl->stub_file);
        return path;
    }
    rc = stub_find_pick(pl->stub_dir, j->chip, j->rep.chip_rev, pl->stub_pick, path, cap, &choice,
                        why, sizeof why);
    if (rc == UV_ENOENT) {
        job__log(j, JOB_LOG_INFO, "%s: using the ROM loader", why);
        job_stub_done(j);
        return NULL;
    }
    if (rc != 0) {
        job_stub_fail(j, "%s", why);
        return NULL;
    }
    snprintf(j->rep.stub_name, sizeof j->rep.stub_name, "%s", choice.name);
    return path;
}

/* ENTER: a stub already running, identify-only jobs, no stub wanted or found, or an excluded
 * chip go on with the ROM loader; else the upload starts. */
static void job_stub_enter(job_t *j)
{
    const plan_t *pl = j->plan;
    const char *why;
    char path[4096], err[600];
    j->u.stub.seg = 0;
    if (j->sync_zero) {
        j->stub = true;
        j->rep.stub = true;
        job__log(j, JOB_LOG_INFO,
                 "a flasher stub is already running (every SYNC reply had value 0): not "
                 "uploading it again");
        job_stub_done(j);
        return;
    }
    if (pl->op == PLAN_OP_FLASH && pl->n_images == 0) { /* identify only: ROM is enough */
        job_stub_done(j);
        return;
    }
    if (j->sec.sdm) { /* the ROM refuses MEM_* there (job_security.c) */
        job__log(j, JOB_LOG_INFO, "Secure Download Mode: no stub upload, using the ROM loader");
        job_stub_done(j);
        return;
    }
    if (!pl->stub || (!pl->stub_dir && !pl->stub_file)) {
        job__log(j, JOB_LOG_INFO, "%s: using the ROM loader",
                 !pl->stub ? "flasher stub switched off (--no-stub / recipe \"stub\": false)"
                           : "no stub directory given (--stub-dir, station stub_dir)");
        job_stub_done(j);
        return;
    }
    if ((why = job_stub_excluded(j))) {
        job__log(j, JOB_LOG_INFO, "%s: using the ROM loader", why);
        job_stub_done(j);
        return;
    }
    if (!job_stub_path(j, path, sizeof path)) return;
    j->stub_img = stub_get(path, err, sizeof err);
    if (!j->stub_img) {
        job_stub_fail(j, "%s", err);
        return;
    }
    job__log(j, JOB_LOG_DEBUG, "uploading stub %s (text %zu bytes at 0x%08x, data %zu bytes)", path,
             j->stub_img->text_len, j->stub_img->text_start, j->stub_img->data_len);
    job_stub_next_segment(j);
}

static void job_stub_reply(job_t *j)
{
    char st[160];
    if (j->resp.status != 0) {
        /* a ROM refusing the load addresses means the file is not for this chip */
        j->rep.nak_op = j->expect_op;
        j->rep.nak_code = cmd_resp_code(&j->resp);
        cmd_status_text(j->resp.status, j->resp.error, false, st, sizeof st);
        job_stub_fail(j, "%s of the stub (segment %u) rejected by the ROM loader: %s",
                      cmd_op_name(j->expect_op), j->u.stub.seg, st);
        return;
    }
    if (j->u.stub.phase == STUB_MEM_BEGIN || ++j->u.stub.mem_seq < j->u.stub.mem_blocks) {
        job_stub_send_block(j);
        return;
    }
    j->u.stub.seg++;
    job_stub_next_segment(j);
}

/* MEM_END on: every frame comes raw (the ROM's optional MEM_END reply, then "OHAI"). */
static void job_stub_raw(job_t *j)
{
    cmd_resp_t r;
    if (j->raw_len == 4 && memcmp(j->raw, "OHAI", 4) == 0) {
        j->raw_mode = false;
        j->awaiting = false;
        job__disarm(j);
        j->stub = true;
        j->rep.stub = true;
        job__log(j, JOB_LOG_INFO, "flasher stub running (%s)", j->stub_img->path);
        job_stub_done(j);
        return;
    }
    /* MEM_END's own reply (optional) or noise: keep waiting for OHAI */
    if (cmd_parse_resp(j->raw, j->raw_len, 0, &r) == 0 && r.op == CMD_MEM_END && r.status)
        job__log(j, JOB_LOG_DEBUG, "MEM_END answered with status 0x%04x", cmd_resp_code(&r));
}

void job_st_stub(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER: job_stub_enter(j); return;
    case JOB_EV_RESP: job_stub_reply(j); return;
    case JOB_EV_RAW: job_stub_raw(j); return;
    case JOB_EV_TIMEOUT:
        if (j->u.stub.phase == STUB_MEM_END) {
            j->raw_mode = false;
            job_stub_fail(j,
                          "the stub did not start: no \"OHAI\" within %u ms after MEM_END (a "
                          "stub file for another chip or revision, or a broken file: %s)",
                          OHAI_WAIT_MS, j->stub_img->path);
            return;
        }
        job_retry_or_fail(j, "stub upload");
        return;
    default: job_bad_event(j, ev); return;
    }
}

/* ---- BAUD ---- */

/* The rates tried after a failed switch, highest first. */
static const uint32_t job_baud_steps[] = {2000000, 1500000, 921600, 460800, 230400, 115200};

static void job_baud_keep(job_t *j)
{
    j->rep.baud = j->cur_baud;
    job_enter(j, JOB_ST_ATTACH);
}

/* The new rate does not work. The chip listens at a rate we cannot use, so the way back is a
 * reset into the ROM (115200, auto-baud) and the whole connect again, then a lower rate. */
static void job_baud_fallback(job_t *j, const char *why)
{
    uint32_t failed = j->baud_target, next = 0;
    for (size_t i = 0; i < sizeof job_baud_steps / sizeof job_baud_steps[0]; i++) {
        if (job_baud_steps[i] < failed) {
            next = job_baud_steps[i];
            break;
        }
    }
    if (next <= j->plan->baud) next = j->plan->baud;
    if (!j->lines_ok || j->plan->before == PLAN_BEFORE_NO_RESET ||
        j->rep.baud_fallbacks >= BAUD_MAX_FALLBACKS) {
        job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "%s at %u baud, and %s: use a lower baud rate",
                 why, failed,
                 j->rep.baud_fallbacks >= BAUD_MAX_FALLBACKS ? "lower rates failed as well"
                 : !j->lines_ok ? "the port cannot reset the chip to go back to a lower rate"
                                : "--before no_reset forbids the reset needed to go back");
        return;
    }
    j->rep.baud_fallbacks++;
    j->rep.retries++;
    j->baud_cap = next;
    j->awaiting = false;
    job__log(j, JOB_LOG_WARN, "%s at %u baud: resetting the chip to go on at %u baud", why, failed,
             next);
    if (j->io->set_baud(j, j->plan->baud) != 0) {
        job_fail(j, EST_CLASS_PORT_ERROR, UV_EINVAL, "cannot set %s back to %u baud", j->spec,
                 j->plan->baud);
        return;
    }
    j->cur_baud = j->plan->baud;
    j->stub = false;
    j->rep.stub = false;
    j->rep.stub_name[0] = '\0';
    j->sync_zero = false;
    j->watch_banner = false; /* the reset we cause prints a banner */
    j->attempt = 0;
    job_enter(j, j->plan->before == PLAN_BEFORE_NO_RESET ? JOB_ST_SYNC : JOB_ST_RESET);
}

/* The rate the host port can follow, asked before the chip is told anything: the chip must never
 * switch to a rate the host cannot take (it would be lost until a reset). A port that cannot
 * change the device's line rate at all (raw TCP) keeps the current rate; a refused rate is
 * replaced by the next lower one of job_baud_steps the port takes. Returns the rate to use
 * (j->cur_baud: no change). */
static uint32_t job_baud_port_target(job_t *j, uint32_t target)
{
    uint32_t want = target;
    int rc;
    if (!j->io->check_baud) return target;
    rc = j->io->check_baud(j, target);
    if (rc == UV_ENOTSUP) {
        job__log(j, JOB_LOG_INFO, "port %s cannot change its line rate: staying at %u baud",
                 j->spec, j->cur_baud);
        return j->cur_baud;
    }
    for (size_t i = 0; rc != 0 && i < sizeof job_baud_steps / sizeof job_baud_steps[0]; i++) {
        if (job_baud_steps[i] >= target) continue;
        if (job_baud_steps[i] <= j->cur_baud) break;
        target = job_baud_steps[i];
        rc = j->io->check_baud(j, target);
    }
    if (rc != 0) {
        job__log(j, JOB_LOG_WARN, "port %s does not take %u baud (%s): staying at %u baud", j->spec,
                 want, uv_strerror(rc), j->cur_baud);
        return j->cur_baud;
    }
    if (target != want)
        job__log(j, JOB_LOG_WARN, "port %s does not take %u baud: using %u", j->spec, want, target);
    return target;
}

/* BAUD sub-steps: < n_regs correction reads; 10 CHANGE_BAUDRATE sent; 11 settling; 12 probe. */

/* The rate to put in CHANGE_BAUDRATE so that the loader ends up at baud_target: the chip table's
 * ROM clock correction from the registers its program read (PROTOCOL.md §9); a stub computes
 * its own divider. */
static uint32_t job_baud_wire_value(job_t *j)
{
    uint64_t nb = j->baud_target;
    j->baud_corr[0] = j->baud_corr[1] = 1;
    if (j->stub) return (uint32_t)nb;
    chip_clock_correction(j->chip, j->rp.run.slots, j->cur_baud, j->baud_corr);
    nb = nb * j->baud_corr[0] / j->baud_corr[1];
    return nb > UINT32_MAX ? UINT32_MAX : (uint32_t)nb;
}

static void job_baud_send(job_t *j)
{
    uint32_t wire = job_baud_wire_value(j);
    j->u.baud = BAUD_CHANGE;
    if (wire != j->baud_target)
        job__log(j, JOB_LOG_DEBUG, "ROM clock correction: asking for %u to get %u baud", wire,
                 j->baud_target);
    /* second word: 0 for a ROM, the current rate for a stub (the legacy stub scales its divider
     * by it; PROTOCOL.md §9, §14.7) */
    j->req_len = cmd_build_change_baud(j->req, sizeof j->req, wire, j->stub ? j->cur_baud : 0);
    job_send_or_fail(j, CMD_CHANGE_BAUDRATE, 0, job_state_timeout_ms(JOB_ST_BAUD));
}

static void job_baud_clock_done(job_t *j, job_rp_result_t res)
{
    if (res != JOB_RP_DONE) {
        job_nak(j, "(clock calibration register)");
        return;
    }
    job_baud_send(j);
}

static void job_baud_enter(job_t *j)
{
    uint32_t target = j->plan->flash_baud ? j->plan->flash_baud : j->cur_baud;
    if (j->plan->op == PLAN_OP_FLASH && j->plan->n_images == 0)
        target = j->cur_baud; /* identify only: a few short commands */
    if (j->baud_cap && target > j->baud_cap) target = j->baud_cap;
    if (target == j->cur_baud) {
        job_baud_keep(j);
        return;
    }
    if (j->sec.sdm) { /* the link check after a change reads a register: refused there */
        job__log(j, JOB_LOG_INFO, "Secure Download Mode: staying at %u baud", j->cur_baud);
        job_baud_keep(j);
        return;
    }
    if (!j->stub && !j->chip->rom_change_baud) {
        job__log(j, JOB_LOG_INFO,
                 "the %s ROM loader cannot change its baud rate (the stub can): staying at %u "
                 "baud",
                 j->chip->pretty, j->cur_baud);
        job_baud_keep(j);
        return;
    }
    target = job_baud_port_target(j, target);
    if (target == j->cur_baud) {
        job_baud_keep(j);
        return;
    }
    j->baud_target = target;
    j->u.baud = BAUD_CLOCK;
    memset(&j->rp.run, 0, sizeof j->rp.run); /* no registers read: no correction */
    if (!j->stub && chip_prog_clock(j->chip, &j->rp.prog)) {
        job_rp_start(j, "clock calibration read", job_baud_clock_done);
        return;
    }
    job_baud_send(j);
}

static void job_baud_reply(job_t *j)
{
    char st[160];
    int rc;
    switch (j->u.baud) {
    case BAUD_CHANGE:
        if (j->resp.status != 0) {
            /* refused: nothing changed, the link still works at the old rate */
            cmd_status_text(j->resp.status, j->resp.error, j->stub, st, sizeof st);
            job__log(j, JOB_LOG_WARN, "CHANGE_BAUDRATE to %u refused (%s): staying at %u baud",
                     j->baud_target, st, j->cur_baud);
            job_baud_keep(j);
            return;
        }
        /* the reply came at the old rate; now both sides switch (PROTOCOL.md §9) */
        rc = j->io->set_baud(j, j->baud_target);
        if (rc != 0) {
            job_baud_fallback(j, "the port cannot be set to this rate");
            return;
        }
        j->u.baud = BAUD_SETTLE;
        job__arm(j, BAUD_SETTLE_MS);
        return;
    case BAUD_PROBE:
        /* any well-formed reply proves the link; the value is the magic word */
        j->cur_baud = j->baud_target;
        job__log(j, JOB_LOG_INFO, "baud rate %u", j->cur_baud);
        job_baud_keep(j);
        return;
    case BAUD_CLOCK:
    case BAUD_SETTLE: return; /* the runner has the replies; a stray one while settling */
    }
}

static void job_baud_timeout(job_t *j)
{
    switch (j->u.baud) {
    case BAUD_CHANGE:
        /* no answer even at the old rate: whether the chip switched is unknown */
        job_baud_fallback(j, "no reply to CHANGE_BAUDRATE");
        return;
    case BAUD_PROBE:
        if (j->tries >= 1) {
            job_baud_fallback(j, "no reply after the switch");
            return;
        }
        j->tries++; /* the first probe got nothing: ask once more */
        /* fall through */
    case BAUD_SETTLE:
        /* drop what came during the switch (the loader may send stray 0xC0 then, PROTOCOL.md §3.1)
         */
        j->awaiting = false;
        job_flush_rx(j);
        j->u.baud = BAUD_PROBE;
        j->req_len = cmd_build_read_reg(j->req, sizeof j->req, CHIP_MAGIC_REG);
        job_send_or_fail(j, CMD_READ_REG, 0, BAUD_PROBE_MS);
        return;
    case BAUD_CLOCK: return; /* the runner handles its own timeouts */
    }
}

void job_st_baud(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER: job_baud_enter(j); return;
    case JOB_EV_RESP: job_baud_reply(j); return;
    case JOB_EV_TIMEOUT: job_baud_timeout(j); return;
    default: job_bad_event(j, ev); return;
    }
}
