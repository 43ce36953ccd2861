/* SPDX-License-Identifier: MIT */
/* job_sm.c — the flashing job's state machine: one device from port open through reset, sync,
 * chip detection, eFuse reads, stub upload, baud change, flash attach and ID, parameters, and per
 * image prepare → [compare] → begin → data… → verify (or one read / erase), to the final reset.
 * States and their timeouts and retry budgets are listed once in job.h (JOB_STATE_MAP);
 * docs/PROTOCOL.md shows the same table. Every transition goes through job_enter(); job_step()
 * switches on the state with no default so the compiler flags a state without a handler. Must not:
 * block, do I/O except through job.c. */
#include "job_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#include <openssl/evp.h>

/* SYNC tries per connect attempt: 1 + the state's retry budget = 5, as esptool */
#define SYNC_TRIES (job_state_retries(JOB_ST_SYNC) + 1)
#define SYNC_PAUSE_MS 50    /* pause after a failed SYNC try (esptool) */
#define SYNC_REPLIES 8      /* replies to one SYNC (reference §4.2) */
#define SYNC_REST_MS 100    /* wait for each further SYNC reply after the first */
#define UNSUPP_DRAIN_MS 200 /* wait for the ROM's extra "invalid message" frames (§3.7) */
#define SPI_POLLS 10        /* CMD USR-bit polls before giving up (§7.2) */
#define DEFAULT_FLASH 0x400000u
#define ROM_ADDR_LIMIT 0x1000000u /* ROM flash commands use 24-bit addresses (§14.12) */
#define OHAI_WAIT_MS 3200         /* MEM_END's 0.2 s (reply optional) + 3 s for "OHAI" (§8.3) */
#define BAUD_SETTLE_MS 50         /* after switching the host UART (esptool, §9) */
#define BAUD_PROBE_MS 500         /* the first command at the new rate */
#define BAUD_MAX_FALLBACKS 4
#define CHIP_ERASE_MS 120000 /* esptool's chip_erase_timeout (§4.4) */
/* esptool master after v5.3.1 (30 before): the ROM's erase at FLASH_BEGIN / FLASH_DEFL_BEGIN,
 * ERASE_REGION, and the scale of a whole-chip erase (§4.4) */
#define ERASE_REGION_TIMEOUT_PER_MB 40
#define READ_PACKET 0x1000   /* READ_FLASH packet size (§4.6) */

/* ---- reset sequences (reference §2.2), run as timer steps ---- */

enum { RS_END, RS_LINES, RS_DTR, RS_RTS, RS_WAIT, RS_WAIT_DELAY };
typedef struct {
    uint8_t op;
    int8_t a, b;
    uint16_t ms;
} rs_step_t;

/* ClassicReset: D0|R1|W0.1|D1|R0|W(delay)|D0 */
static const rs_step_t rs_classic[] = {
    {RS_DTR, 0, 0, 0}, {RS_RTS, 1, 0, 0},        {RS_WAIT, 0, 0, 100}, {RS_DTR, 1, 0, 0},
    {RS_RTS, 0, 0, 0}, {RS_WAIT_DELAY, 0, 0, 0}, {RS_DTR, 0, 0, 0},    {RS_END, 0, 0, 0}};
/* UnixTightReset: both lines per step with one TIOCMSET: (0,0) (1,1) (0,1) W0.1 (1,0) W(delay)
 * (0,0), then DTR=0 once more */
static const rs_step_t rs_unix_tight[] = {
    {RS_LINES, 0, 0, 0},  {RS_LINES, 1, 1, 0}, {RS_LINES, 0, 1, 0},
    {RS_WAIT, 0, 0, 100}, {RS_LINES, 1, 0, 0}, {RS_WAIT_DELAY, 0, 0, 0},
    {RS_LINES, 0, 0, 0},  {RS_DTR, 0, 0, 0},   {RS_END, 0, 0, 0}};
/* USBJTAGSerialReset */
static const rs_step_t rs_usb_jtag[] = {
    {RS_RTS, 0, 0, 0}, {RS_DTR, 0, 0, 0},    {RS_WAIT, 0, 0, 100}, {RS_DTR, 1, 0, 0},
    {RS_RTS, 0, 0, 0}, {RS_WAIT, 0, 0, 100}, {RS_RTS, 1, 0, 0},    {RS_DTR, 0, 0, 0},
    {RS_RTS, 1, 0, 0}, {RS_WAIT, 0, 0, 100}, {RS_DTR, 0, 0, 0},    {RS_RTS, 0, 0, 0},
    {RS_END, 0, 0, 0}};
/* HardReset: R1|W0.1|R0 */
static const rs_step_t rs_hard[] = {
    {RS_RTS, 1, 0, 0}, {RS_WAIT, 0, 0, 100}, {RS_RTS, 0, 0, 0}, {RS_END, 0, 0, 0}};

typedef struct {
    const rs_step_t *seq;
    uint16_t delay_ms;
    const char *name;
} rs_strategy_t;

/* esptool on POSIX, non-RFC2217: UnixTight(0.05), UnixTight(0.55), Classic(0.05),
 * Classic(0.55); attempt i uses i mod 4. Over RFC 2217 the lines travel as separate telnet
 * commands anyway, so only the classic sequences are used (as esptool does). */
static const rs_strategy_t rs_default[] = {{rs_unix_tight, 50, "unix-tight 50 ms"},
                                           {rs_unix_tight, 550, "unix-tight 550 ms"},
                                           {rs_classic, 50, "classic 50 ms"},
                                           {rs_classic, 550, "classic 550 ms"}};
static const rs_strategy_t rs_rfc2217[] = {{rs_classic, 50, "classic 50 ms"},
                                           {rs_classic, 550, "classic 550 ms"}};
static const rs_strategy_t rs_usb[] = {{rs_usb_jtag, 0, "usb-jtag-serial"}};
static const rs_strategy_t rs_after_hard = {rs_hard, 0, "hard reset"};

static const rs_strategy_t *job_reset_strategy(job_t *j)
{
    if (j->st == JOB_ST_AFTER_RESET) return &rs_after_hard;
    if (j->plan->before == PLAN_BEFORE_USB_RESET) return &rs_usb[0];
    if (strncmp(j->spec, "rfc2217://", 10) == 0) return &rs_rfc2217[j->attempt % 2];
    return &rs_default[j->attempt % 4];
}

/* ---- helpers ---- */

static uint32_t timeout_per_mb(uint32_t secs_per_mb, uint64_t bytes)
{
    /* esptool: max(3 s, secs × bytes / 10^6), "MB" = 10^6 bytes (reference §4.4) */
    uint64_t ms = (uint64_t)secs_per_mb * bytes / 1000;
    return ms < 3000 ? 3000 : ms > 240000 ? 240000 : (uint32_t)ms;
}

/* Stub writes: a block is ACKed on receipt and written while the next one travels, so the ACK
 * of block n+1 (or END) waits for block n's erase and write. esptool master allows 40 s/MB over
 * the block's output plus an erase allowance of (ceil(out / 32 KiB) + 1) × 64 KiB (§4.4). */
static uint32_t job_stub_wait_ms(uint64_t out)
{
    return timeout_per_mb(40, out + ((out + 32767) / 32768 + 1) * 65536);
}

void job_fail(job_t *j, est_class_t cls, int code, const char *fmt, ...)
{
    va_list ap;
    if (j->failing || j->st == JOB_ST_CLOSING || j->st == JOB_ST_DONE) return;
    j->failing = true;
    j->rep.result = cls == EST_CLASS_CANCELLED ? JOB_RESULT_CANCELLED : JOB_RESULT_FAIL;
    j->rep.error_class = cls;
    j->rep.error_code = code;
    j->rep.failed_state = j->st;
    va_start(ap, fmt);
    vsnprintf(j->rep.message, sizeof j->rep.message, fmt, ap);
    va_end(ap);
    job__log(j, cls == EST_CLASS_CANCELLED ? JOB_LOG_INFO : JOB_LOG_ERROR, "%s: %s",
             est_class_name(cls), j->rep.message);
    job_enter(j, JOB_ST_CLOSING);
}

/* A device NAK: keep the command and status for the report (design §3). */
static void job_nak(job_t *j, const char *what)
{
    char st[160];
    j->rep.nak_op = j->expect_op;
    j->rep.nak_code = cmd_resp_code(&j->resp);
    cmd_status_text(j->resp.status, j->resp.error, j->stub, st, sizeof st);
    if (j->resp_unsupported && j->resp.op != j->expect_op) {
        job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                 "%s %s is not supported by this %s loader (%s)", cmd_op_name(j->expect_op), what,
                 j->chip ? j->chip->pretty : "chip's", st);
        return;
    }
    job_fail(j, EST_CLASS_NAK, EST_ENAK, "%s %s rejected by the %s: %s", cmd_op_name(j->expect_op),
             what, j->stub ? "stub" : "ROM loader", st);
}

static void job_send_or_fail(job_t *j, uint8_t op, size_t out_len, uint32_t timeout_ms)
{
    int rc;
    if (j->req_len == 0) {
        job_fail(j, EST_CLASS_INTERNAL, EST_EPROTO, "request %s does not fit", cmd_op_name(op));
        return;
    }
    rc = job__send(j, op, out_len, timeout_ms);
    if (rc == UV_ENOBUFS)
        job_fail(j, EST_CLASS_TIMEOUT, rc, "port %s does not take data (output stalled)", j->spec);
    else if (rc != 0)
        job_fail(j, EST_CLASS_PORT_GONE, rc, "write to %s failed: %s", j->spec, uv_strerror(rc));
}

/* Re-send the request in flight after a timeout, within the state's retry budget. */
static void job_retry_or_fail(job_t *j, const char *what)
{
    if (j->tries < job_state_retries(j->st)) {
        j->tries++;
        j->rep.retries++;
        job__log(j, JOB_LOG_WARN, "no reply to %s (%s), retry %u", cmd_op_name(j->expect_op), what,
                 j->tries);
        job_send_or_fail(j, j->expect_op, j->expect_out, j->req_timeout_ms);
        return;
    }
    job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "no reply to %s (%s) within %u ms%s",
             cmd_op_name(j->expect_op), what, j->req_timeout_ms,
             job_state_retries(j->st) ? " after retries" : "");
}

/* Register sequences (eFuse reads, SPI user command) are not re-sent piecemeal: replies carry
 * no sequence number, so a late reply to a re-sent READ_REG would be taken for the next
 * register's value. After a timeout, wait out any late reply, flush, and run the whole sequence
 * again (the state's ENTER action), within the state's retry budget. */
static void job_regs_timeout(job_t *j, const char *what)
{
    if (j->draining) {
        j->draining = false;
        j->io->flush_input(j);
        slip_dec_reset(&j->dec);
        job_step(j, JOB_EV_ENTER);
        return;
    }
    if (j->restarts < job_state_retries(j->st)) {
        j->restarts++;
        j->rep.retries++;
        j->awaiting = false;
        j->draining = true;
        job__log(j, JOB_LOG_WARN, "no reply to %s (%s); starting the sequence again",
                 cmd_op_name(j->expect_op), what);
        job__arm(j, UNSUPP_DRAIN_MS);
        return;
    }
    job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "no reply to %s (%s) within %u ms",
             cmd_op_name(j->expect_op), what, j->req_timeout_ms);
}

static void job_read_reg(job_t *j, uint32_t addr)
{
    j->req_len = cmd_build_read_reg(j->req, sizeof j->req, addr);
    job_send_or_fail(j, CMD_READ_REG, 0, job_state_timeout_ms(j->st));
}

static void job_write_reg(job_t *j, uint32_t addr, uint32_t value)
{
    j->req_len = cmd_build_write_reg(j->req, sizeof j->req, addr, value, 0xFFFFFFFFu, 0);
    job_send_or_fail(j, CMD_WRITE_REG, 0, job_state_timeout_ms(j->st));
}

static void job_prefetch_images(job_t *j);

/* ---- raw text: boot-log classification and brown-out detection ---- */

static bool job_bootlog_has(const job_t *j, const char *needle)
{
    return memmem(j->bootlog, j->bootlog_len, needle, strlen(needle)) != NULL;
}

static void job_test_text(job_t *j, const uint8_t *buf, size_t n);

void job__on_text(job_t *j, const uint8_t *buf, size_t n)
{
    if (j->st == JOB_ST_TEST) {
        job_test_text(j, buf, n);
        return;
    }
    if (j->st == JOB_ST_RESET || j->st == JOB_ST_SYNC) {
        for (size_t i = 0; i < n; i++) {
            uint8_t c = buf[i];
            if ((c >= 0x20 && c < 0x7F) || c == '\r' || c == '\n') j->text_bytes++;
        }
        if (n > sizeof j->bootlog / 2) { /* keep the newest bytes: a boot log is short */
            buf += n - sizeof j->bootlog / 2;
            n = sizeof j->bootlog / 2;
        }
        if (j->bootlog_len + n > sizeof j->bootlog) {
            size_t drop = j->bootlog_len + n - sizeof j->bootlog;
            memmove(j->bootlog, j->bootlog + drop, j->bootlog_len - drop);
            j->bootlog_len -= drop;
        }
        memcpy(j->bootlog + j->bootlog_len, buf, n);
        j->bootlog_len += n;
        return;
    }
    if (j->watch_banner) {
        /* A ROM banner after sync means the chip reset under us (brown-out, watchdog, EN
         * glitch). Replies are short binary frames, so "rst:0x" cannot occur in them. The
         * window keeps the tail of the previous read for a banner split across reads. */
        static const char *const marks[] = {"rst:0x", "ets Jun", "ets Jan", "ESP-ROM:"};
        uint8_t win[sizeof j->banner_tail + 256];
        size_t tl = j->banner_len;
        while (n > 0) {
            size_t take = n < 256 ? n : 256, wl, keep;
            memcpy(win, j->banner_tail, tl);
            memcpy(win + tl, buf, take);
            wl = tl + take;
            for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
                if (memmem(win, wl, marks[m], strlen(marks[m]))) {
                    j->watch_banner = false;
                    job_fail(j, EST_CLASS_BROWNOUT, EST_EBROWNOUT,
                             "the chip printed its ROM boot banner in state %s: it reset during "
                             "the job",
                             job_state_name(j->st));
                    return;
                }
            }
            keep = wl < sizeof j->banner_tail ? wl : sizeof j->banner_tail;
            memcpy(j->banner_tail, win + wl - keep, keep);
            tl = keep;
            buf += take;
            n -= take;
        }
        j->banner_len = (uint8_t)tl;
    }
}

/* After all connect attempts failed: tell a dead line from an application that runs. */
static void job_fail_no_sync(job_t *j)
{
    const char *b = memmem(j->bootlog, j->bootlog_len, "boot:0x", 7);
    unsigned strap = 0;
    if (b) {
        char hex[9];
        size_t avail = (size_t)(j->bootlog + j->bootlog_len - (b + 7)), k = 0;
        while (k < avail && k < 8 && isxdigit((unsigned char)b[7 + k])) {
            hex[k] = b[7 + k];
            k++;
        }
        hex[k] = 0;
        strap = (unsigned)strtoul(hex, NULL, 16);
    }
    /* Secure Download Mode logs say "download(secure mode)" instead (reference §14.27) */
    if (b && (job_bootlog_has(j, "waiting for download") ||
              job_bootlog_has(j, "download(secure mode)"))) {
        job_fail(j, EST_CLASS_NO_SYNC, EST_ESYNC,
                 "download mode detected (boot:0x%02x), but no sync reply after %u attempts: the "
                 "serial TX path (host to chip) seems to be down",
                 strap, j->attempt);
    } else if (b) {
        job_fail(j, EST_CLASS_WRONG_BOOT_MODE, EST_EBOOTMODE,
                 "wrong boot mode detected (boot:0x%02x): the chip boots from flash instead of "
                 "the ROM download mode, so nothing answered the sync",
                 strap);
    } else if (j->text_bytes >= 32 && !j->saw_frame) {
        job_fail(j, EST_CLASS_WRONG_BOOT_MODE, EST_EBOOTMODE,
                 "the device sends text (%u bytes) but never answered the sync: it is most likely "
                 "running its application, not the ROM bootloader",
                 j->text_bytes);
    } else {
        job_fail(j, EST_CLASS_NO_SYNC, EST_ESYNC, "no sync reply from %s after %u attempts (%s)",
                 j->spec, j->attempt,
                 j->lines_ok ? "reset via DTR/RTS each time" : "port cannot reset the chip");
    }
}

/* ---- per-state handlers ---- */

static void st_open(job_t *j, job_event_t ev)
{
    int status;
    switch (ev) {
    case JOB_EV_ENTER:
        j->cur_baud = j->plan->baud;
        status = j->io->open(j, j->spec, j->plan->baud);
        if (status != 0) {
            job_fail(j,
                     status == UV_EINVAL  ? EST_CLASS_USAGE
                     : status == UV_EBUSY ? EST_CLASS_PORT_BUSY
                                          : EST_CLASS_PORT_NOT_FOUND,
                     status, "cannot open port %s: %s", j->spec,
                     status == UV_EINVAL ? "not a valid port spec (see --help)"
                                         : uv_strerror(status));
            return;
        }
        j->io_active = true;
        job__arm(j, job_state_timeout_ms(JOB_ST_OPEN));
        return;
    case JOB_EV_IO_OPENED:
        job__disarm(j);
        status = j->open_status;
        if (status == 0) {
            job_enter(j, j->plan->before == PLAN_BEFORE_NO_RESET ? JOB_ST_SYNC : JOB_ST_RESET);
            return;
        }
        if (status == UV_ENOENT || status == UV_ENODEV || status == UV_ENXIO ||
            status == UV_ECONNREFUSED || status == UV_EHOSTUNREACH || status == UV_EAI_NONAME)
            job_fail(j, EST_CLASS_PORT_NOT_FOUND, status, "cannot open port %s: %s", j->spec,
                     uv_strerror(status));
        else if (status == UV_EBUSY || status == UV_EAGAIN)
            job_fail(j, EST_CLASS_PORT_BUSY, status, "port %s is in use by another program or job",
                     j->spec);
        else
            job_fail(j, EST_CLASS_PORT_ERROR, status, "cannot open port %s: %s", j->spec,
                     uv_strerror(status));
        return;
    case JOB_EV_TIMEOUT:
        job_fail(j, EST_CLASS_PORT_ERROR, UV_ETIMEDOUT, "opening port %s timed out", j->spec);
        return;
    case JOB_EV_RESP:
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* Run reset steps until one waits or the sequence ends. Returns true when the sequence ended. */
static bool job_run_reset_steps(job_t *j)
{
    const rs_strategy_t *s = job_reset_strategy(j);
    for (;;) {
        const rs_step_t *st = &s->seq[j->step];
        int rc = 0;
        switch (st->op) {
        case RS_END: return true;
        case RS_WAIT:
            j->step++;
            job__arm(j, st->ms);
            return false;
        case RS_WAIT_DELAY:
            j->step++;
            job__arm(j, s->delay_ms);
            return false;
        case RS_LINES: rc = j->io->set_lines(j, st->a, st->b); break;
        case RS_DTR: rc = j->io->set_lines(j, st->a, -1); break;
        case RS_RTS: rc = j->io->set_lines(j, -1, st->a); break;
        }
        j->step++;
        if (rc == UV_ENOTSUP) {
            /* esptool warns once and goes on without reset (reference §2.2) */
            j->lines_ok = false;
            if (!j->lines_warned) {
                j->lines_warned = true;
                job__log(j, JOB_LOG_WARN,
                         "port %s cannot drive DTR/RTS: not resetting the chip; it must already "
                         "be in download mode",
                         j->spec);
            }
            return true;
        }
        if (rc != 0) {
            job_fail(j, EST_CLASS_PORT_GONE, rc, "setting DTR/RTS on %s failed: %s", j->spec,
                     uv_strerror(rc));
            return false;
        }
    }
}

static void st_reset(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->io->flush_input(j);
        slip_dec_reset(&j->dec);
        j->bootlog_len = 0;
        if (!j->lines_ok) {
            job_enter(j, JOB_ST_SYNC);
            return;
        }
        job__log(j, JOB_LOG_DEBUG, "reset attempt %u: %s", j->attempt + 1,
                 job_reset_strategy(j)->name);
        /* fall through */
    case JOB_EV_TIMEOUT:
        if (job_run_reset_steps(j)) job_enter(j, JOB_ST_SYNC);
        return;
    case JOB_EV_RESP:
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void job_send_sync(job_t *j)
{
    j->step = 0; /* waiting for a reply */
    j->req_len = cmd_build_sync(j->req, sizeof j->req);
    job_send_or_fail(j, CMD_SYNC, 0, job_state_timeout_ms(JOB_ST_SYNC));
}

/* Wait for the rest of the 8 replies to one SYNC (reference §4.2, §14.3). */
static void job_sync_await_rest(job_t *j)
{
    j->awaiting = true;
    j->expect_op = CMD_SYNC;
    j->expect_out = 0;
    j->req_timeout_ms = SYNC_REST_MS;
    job__arm(j, SYNC_REST_MS);
}

static void job_synced(job_t *j)
{
    j->awaiting = false;
    job__disarm(j);
    job__log(j, JOB_LOG_INFO, "synced after %u attempt(s)", j->attempt + 1);
    job_enter(j, JOB_ST_DETECT);
}

/* SYNC sub-steps: 0 waiting for the first reply; 1 pause before the next try; 2 collecting the
 * other replies of the SYNC that was answered (j->polls counts them). */
static void st_sync(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER: job_send_sync(j); return;
    case JOB_EV_RESP:
        if (j->step == 2) {
            j->sync_zero = j->sync_zero && j->resp.value == 0;
            if (++j->polls >= SYNC_REPLIES)
                job_synced(j);
            else
                job_sync_await_rest(j);
            return;
        }
        /* esptool counts any SYNC reply; a non-zero status is treated as a failed try here */
        if (j->resp.status != 0) {
            st_sync(j, JOB_EV_TIMEOUT);
            return;
        }
        j->rep.sync_attempts = j->attempt + 1;
        /* A stub answers SYNC with value 0, the ROM with a non-zero value: a stub left running
         * by an earlier job is not uploaded again. esptool decides from all 8 replies of the
         * successful SYNC (sync_stub_detected &= val == 0 for each), not from the first. */
        j->sync_zero = j->resp.value == 0;
        j->step = 2;
        j->polls = 1;
        job_sync_await_rest(j);
        return;
    case JOB_EV_TIMEOUT:
        if (j->step == 2) {
            /* fewer than 8 replies (a lossy link, a quirky loader): decide from those seen */
            job_synced(j);
            return;
        }
        if (j->step == 0) {
            j->awaiting = false;
            j->tries++;
            if (j->tries < SYNC_TRIES) {
                j->step = 1; /* pause, then the next try */
                job__arm(j, SYNC_PAUSE_MS);
                return;
            }
            j->attempt++;
            if (j->attempt < j->plan->connect_attempts) {
                job_enter(j, j->plan->before == PLAN_BEFORE_NO_RESET ? JOB_ST_SYNC : JOB_ST_RESET);
                return;
            }
            job_fail_no_sync(j);
            return;
        }
        j->io->flush_input(j); /* esptool flushes before each try */
        slip_dec_reset(&j->dec);
        job_send_sync(j);
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void job_detected(job_t *j, const chip_info_t *c, const char *how)
{
    j->chip = c;
    j->rep.chip = c;
    j->status_len = c->rom_status_len;
    job__log(j, JOB_LOG_INFO, "chip is %s (%s)", c->pretty, how);
    if (j->rep.have_sec_info && (j->rep.sec_flags & 4u)) {
        /* SDM: no READ_REG, so no MAC, no flash ID, no MD5 (reference §4.7) */
        job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                 "%s is in Secure Download Mode: the station cannot read its MAC or flash ID, or "
                 "verify what it writes; this is not supported",
                 c->pretty);
        return;
    }
    if (j->plan->chip != CHIP_UNKNOWN && j->plan->chip != c->id) {
        job_fail(j, EST_CLASS_WRONG_CHIP, EST_ECHIP, "this chip is %s, not %s", c->pretty,
                 chip_get(j->plan->chip)->pretty);
        return;
    }
    job_enter(j, JOB_ST_READ_EFUSE);
}

/* DETECT sub-steps: 0 GET_SECURITY_INFO sent, 1 draining "unsupported" residue, 2 magic read. */
static void st_detect(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->step = 0;
        j->watch_banner = true;
        j->banner_len = 0;
        j->req_len = cmd_build_get_security_info(j->req, sizeof j->req);
        job_send_or_fail(j, CMD_GET_SECURITY_INFO, JOB_SECINFO_OUT, job_state_timeout_ms(j->st));
        return;
    case JOB_EV_RESP:
        if (j->step == 0) {
            cmd_secinfo_t si;
            if (j->resp.status == 0 && cmd_parse_secinfo(&j->resp, &si) == 0) {
                const chip_info_t *c;
                j->rep.have_sec_info = true;
                j->rep.sec_flags = si.flags;
                c = si.has_chip_id ? chip_by_image_id(si.chip_id) : chip_get(CHIP_ESP32S2);
                if (c) {
                    job_detected(j, c, "GET_SECURITY_INFO chip ID");
                    return;
                }
                job__log(j, JOB_LOG_DEBUG, "unknown chip ID %u; trying the magic word", si.chip_id);
            }
            /* ESP8266 / ESP32 ROMs reject the command; drain the extra error frames first */
            j->step = 1;
            job__arm(j, UNSUPP_DRAIN_MS);
            return;
        }
        if (j->step == 2) {
            const chip_info_t *c;
            if (j->resp.status != 0) {
                job_nak(j, "of the chip magic word");
                return;
            }
            c = chip_by_magic(j->resp.value);
            if (!c) {
                job_fail(j, EST_CLASS_WRONG_CHIP, EST_ECHIP,
                         "unexpected chip magic value 0x%08x: not a chip this station knows (%s)",
                         j->resp.value, chip_names_list());
                return;
            }
            job_detected(j, c, "magic word");
        }
        return;
    case JOB_EV_TIMEOUT:
        if (j->step == 0 && j->tries < job_state_retries(j->st)) {
            job_retry_or_fail(j, "chip detection");
            return;
        }
        if (j->step == 0 || j->step == 1) {
            j->awaiting = false;
            j->io->flush_input(j);
            slip_dec_reset(&j->dec);
            j->step = 2;
            j->tries = 0;
            job_read_reg(j, CHIP_MAGIC_REG);
            return;
        }
        job_retry_or_fail(j, "chip magic word");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* READ_EFUSE phases (in j->polls): 0 MAC words, 1 revision words (step < n_regs reads
 * reg_addrs[step]); 2 the ROM's console variable UARTDEV_BUF_NO; 3 the watchdog program (step
 * indexes j->wdt; a set-bits step is a READ_REG, then a WRITE_REG). */
enum { EFUSE_MAC, EFUSE_REV, EFUSE_CONSOLE, EFUSE_WDT };

static void job_efuse_done(job_t *j)
{
    job_prefetch_images(j);
    job_enter(j, JOB_ST_STUB);
}

static void job_wdt_next(job_t *j)
{
    const chip_wdt_step_t *w;
    if (j->step >= j->n_wdt) {
        job__log(j, JOB_LOG_INFO,
                 "ROM console on USB-Serial/JTAG: RTC watchdog off, super watchdog fed "
                 "automatically (the ROM does not feed them there)");
        job_efuse_done(j);
        return;
    }
    w = &j->wdt[j->step];
    if (w->set_bits)
        job_read_reg(j, w->addr); /* then old | value, as esptool's read-modify-write */
    else
        job_write_reg(j, w->addr, w->value);
}

/* After the eFuse words: which port the ROM talks on. USB-OTG limits blocks to 0x800 bytes
 * (§4.3); USB-Serial/JTAG leaves the RTC and super watchdogs running in ROM mode, so esptool
 * turns them off right after connecting unless a stub already runs (§14.10, _post_connect()).
 * Decided per job from the chip itself, as esptool does: no VID:PID guessing. */
static void job_console_check(job_t *j)
{
    chip_console_t k;
    j->usb_otg = j->usb_jtag = false;
    j->ram_block = j->chip->ram_block;
    j->stub_block = j->chip->stub_flash_block;
    if (!chip_console(j->chip, j->rep.chip_rev, &k)) {
        job_efuse_done(j);
        return;
    }
    j->polls = EFUSE_CONSOLE;
    j->step = 0;
    job_read_reg(j, k.buf_no_addr);
}

static void job_console_decide(job_t *j, uint32_t value)
{
    chip_console_t k;
    unsigned no = value & 0xFF; /* esptool: read_reg(UARTDEV_BUF_NO) & 0xFF */
    chip_console(j->chip, j->rep.chip_rev, &k);
    j->usb_otg = k.otg_value >= 0 && no == (unsigned)k.otg_value;
    j->usb_jtag = k.jtag_value >= 0 && no == (unsigned)k.jtag_value;
    if (j->usb_otg) {
        j->ram_block = CHIP_USB_OTG_BLOCK;
        j->stub_block = CHIP_USB_OTG_BLOCK;
        job__log(j, JOB_LOG_INFO,
                 "ROM console on native USB-OTG: 0x%x-byte blocks for the stub upload and stub "
                 "writes",
                 CHIP_USB_OTG_BLOCK);
    }
    if (j->usb_jtag && !j->sync_zero) {
        j->n_wdt = chip_wdt_disable_steps(j->chip, j->wdt);
        if (j->n_wdt) {
            j->polls = EFUSE_WDT;
            j->step = 0;
            job_wdt_next(j);
            return;
        }
    }
    job_efuse_done(j);
}

static void st_read_efuse(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->polls = EFUSE_MAC;
        j->n_regs = chip_mac_regs(j->chip, j->reg_addrs);
        j->step = 0;
        job_read_reg(j, j->reg_addrs[0]);
        return;
    case JOB_EV_RESP:
        if (j->polls == EFUSE_CONSOLE) {
            if (j->resp.status != 0) {
                job__log(j, JOB_LOG_WARN,
                         "the ROM refused to read its console variable: assuming a UART");
                job_efuse_done(j);
                return;
            }
            job_console_decide(j, j->resp.value);
            return;
        }
        if (j->polls == EFUSE_WDT) {
            if (j->resp.status != 0) {
                job__log(j, JOB_LOG_WARN,
                         "the ROM refused a watchdog register access: the watchdogs stay on "
                         "(a long ROM-mode job may be reset)");
                job_efuse_done(j);
                return;
            }
            if (j->wdt[j->step].set_bits && j->expect_op == CMD_READ_REG) {
                job_write_reg(j, j->wdt[j->step].addr, j->resp.value | j->wdt[j->step].value);
                return;
            }
            j->step++;
            job_wdt_next(j);
            return;
        }
        if (j->resp.status != 0) {
            job_nak(j, "of an eFuse word");
            return;
        }
        j->regs[j->step++] = j->resp.value;
        if (j->step < j->n_regs) {
            job_read_reg(j, j->reg_addrs[j->step]);
            return;
        }
        if (j->polls == EFUSE_MAC) {
            char m[18];
            if (chip_mac_decode(j->chip, j->regs, j->rep.mac) == 0) {
                j->rep.have_mac = true;
                job__log(j, JOB_LOG_INFO, "MAC %s", job_fmt_mac(j->rep.mac, m));
            } else {
                job__log(j, JOB_LOG_WARN, "MAC eFuse words have an unknown OUI; MAC not recorded");
            }
            j->polls = EFUSE_REV;
            j->n_regs = chip_rev_regs(j->chip, j->reg_addrs);
            j->step = 0;
            if (j->n_regs > 0) {
                job_read_reg(j, j->reg_addrs[0]);
                return;
            }
        }
        j->rep.chip_rev = chip_rev_decode(j->chip, j->regs);
        job__log(j, JOB_LOG_INFO, "chip revision v%u.%u", j->rep.chip_rev / 100,
                 j->rep.chip_rev % 100);
        job_console_check(j);
        return;
    case JOB_EV_TIMEOUT: job_regs_timeout(j, "eFuse read"); return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* ---- STUB: upload the flasher stub (reference §8.3) ---- */

/* GET_SECURITY_INFO flag bit 0: Secure Boot enabled (§5.4) */
#define SEC_FLAG_SECURE_BOOT 0x1u

static void job_stub_done(job_t *j)
{
    stub_put(j->stub_img);
    j->stub_img = NULL;
    job_enter(j, JOB_ST_BAUD);
}

/* Why the stub is not used for this chip, or NULL (esptool's exclusions, §8.3 and §14.23). */
static const char *job_stub_excluded(const job_t *j)
{
    bool secure_boot = j->rep.have_sec_info && (j->rep.sec_flags & SEC_FLAG_SECURE_BOOT);
    if (j->chip->id == CHIP_ESP32C3 && secure_boot)
        return "ESP32-C3 with Secure Boot enabled: esptool does not run the stub there";
    if (j->chip->id == CHIP_ESP32S3 && secure_boot)
        return "ESP32-S3 with Secure Boot enabled needs esptool's ROM-hook start, which this "
               "station does not do";
    if (j->chip->id == CHIP_ESP32C2 && j->rep.chip_rev < 100)
        return "ESP32-C2 revision v0.x: esptool does not run the stub there";
    return NULL;
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

/* MEM_BEGIN for segment j->seg (0 text, 1 data), or MEM_END after the last one. */
static void job_stub_next_segment(job_t *j)
{
    const stub_t *s = j->stub_img;
    const uint8_t *d = j->seg == 0 ? s->text : s->data;
    size_t n = j->seg == 0 ? s->text_len : s->data_len;
    uint32_t addr = j->seg == 0 ? s->text_start : s->data_start;
    uint32_t bs = j->ram_block; /* 0x1800, 0x800 over USB-OTG (§4.3) */
    if (j->seg > 1 || !d) {
        /* MEM_END(0, entry): the ROM may jump before it answers, so the reply is optional;
         * the stub then greets with a bare "OHAI" frame. Raw mode sees both. */
        j->step = 2;
        j->req_len = cmd_build_mem_end(j->req, sizeof j->req, s->entry);
        j->raw_mode = true; /* before sending: a failed write leaves it cleared by CLOSING */
        job_send_or_fail(j, CMD_MEM_END, 0, OHAI_WAIT_MS);
        return;
    }
    j->step = 0;
    j->mem_seq = 0;
    j->mem_blocks = (uint32_t)((n + bs - 1) / bs);
    j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_MEM_BEGIN, (uint32_t)n, j->mem_blocks,
                                 bs, addr, false, 0);
    job_send_or_fail(j, CMD_MEM_BEGIN, 0, job_state_timeout_ms(JOB_ST_STUB));
}

static void job_stub_send_block(job_t *j)
{
    const stub_t *s = j->stub_img;
    const uint8_t *d = j->seg == 0 ? s->text : s->data;
    size_t n = j->seg == 0 ? s->text_len : s->data_len;
    size_t bs = j->ram_block, off = (size_t)j->mem_seq * bs;
    j->step = 1;
    j->req_len = cmd_build_data(j->req, sizeof j->req, CMD_MEM_DATA, j->mem_seq, d + off,
                                n - off < bs ? n - off : bs);
    job_send_or_fail(j, CMD_MEM_DATA, 0, job_state_timeout_ms(JOB_ST_STUB));
}

/* Pick the stub file: the plan's file, else the chip's file in the stub directory. Returns the
 * path, or NULL when the ROM loader is to be used (logged) or the job failed. */
static const char *job_stub_path(job_t *j, char *path, size_t cap)
{
    const plan_t *pl = j->plan;
    char why[512];
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
        return path;
    }
    rc = stub_find(pl->stub_dir, j->chip, j->rep.chip_rev, path, cap, why, sizeof why);
    if (rc == UV_ENOENT) {
        job__log(j, JOB_LOG_INFO, "%s: using the ROM loader", why);
        job_stub_done(j);
        return NULL;
    }
    if (rc != 0) {
        job_stub_fail(j, "%s", why);
        return NULL;
    }
    return path;
}

static void st_stub(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    const char *why;
    char path[4096], err[600];
    switch (ev) {
    case JOB_EV_ENTER:
        j->seg = 0;
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
        job__log(j, JOB_LOG_DEBUG, "uploading stub %s (text %zu bytes at 0x%08x, data %zu bytes)",
                 path, j->stub_img->text_len, j->stub_img->text_start, j->stub_img->data_len);
        job_stub_next_segment(j);
        return;
    case JOB_EV_RESP: {
        char st[160];
        if (j->resp.status != 0) {
            /* a ROM refusing the load addresses means the file is not for this chip */
            j->rep.nak_op = j->expect_op;
            j->rep.nak_code = cmd_resp_code(&j->resp);
            cmd_status_text(j->resp.status, j->resp.error, false, st, sizeof st);
            job_stub_fail(j, "%s of the stub (segment %u) rejected by the ROM loader: %s",
                          cmd_op_name(j->expect_op), j->seg, st);
            return;
        }
        if (j->step == 0 || ++j->mem_seq < j->mem_blocks) {
            job_stub_send_block(j);
            return;
        }
        j->seg++;
        job_stub_next_segment(j);
        return;
    }
    case JOB_EV_RAW: {
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
        return;
    }
    case JOB_EV_TIMEOUT:
        if (j->step == 2) {
            j->raw_mode = false;
            job_stub_fail(j,
                          "the stub did not start: no \"OHAI\" within %u ms after MEM_END (a "
                          "stub file for another chip or revision, or a broken file: %s)",
                          OHAI_WAIT_MS, j->stub_img->path);
            return;
        }
        job_retry_or_fail(j, "stub upload");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED: return;
    }
}

/* ---- BAUD: CHANGE_BAUDRATE (reference §9) ---- */

/* The rates tried after a failed switch, highest first. */
static const uint32_t job_baud_steps[] = {2000000, 1500000, 921600, 460800, 230400, 115200};

/* Crystal estimate from UART_CLKDIV at the current baud (reference §5.6). */
static unsigned job_xtal_mhz(const job_t *j, uint32_t clkdiv)
{
    uint64_t hz = (uint64_t)j->cur_baud * (clkdiv & 0xFFFFF);
    unsigned mhz;
    if (j->chip->id == CHIP_ESP8266) hz /= 2;
    mhz = (unsigned)(hz / 1000000);
    return mhz > 45 ? 48 : mhz > 33 ? 40 : 26;
}

/* Registers the ROM-side rate correction needs (ROM only; the stubs compute their own divider). */
static size_t job_baud_regs(const job_t *j, uint32_t addrs[CHIP_MAX_REGS])
{
    if (j->stub) return 0;
    switch (j->chip->id) {
    case CHIP_ESP32:
        addrs[0] = 0x3FF5F06C; /* RTC_CNTL calibration: cali = [31:7] */
        addrs[1] = 0x3FF5A010; /* eFuse word 4: CK8M frequency = [7:0] */
        return 2;
    case CHIP_ESP32C2: addrs[0] = j->chip->uart_clkdiv_reg; return 1;
    case CHIP_ESP32C5:
        addrs[0] = 0x60096110; /* crystal the ROM assumes, MHz in [30:24] */
        addrs[1] = j->chip->uart_clkdiv_reg;
        return 2;
    default: return 0;
    }
}

/* The rate to put in CHANGE_BAUDRATE so that the ROM ends up at baud_target (§9). */
static uint32_t job_baud_wire_value(job_t *j)
{
    uint64_t nb = j->baud_target;
    j->baud_corr[0] = j->baud_corr[1] = 1;
    if (j->stub) return (uint32_t)nb;
    if (j->chip->id == CHIP_ESP32) {
        /* the ROM derives its divider from the drifting 8 MHz clock (esptool >= 4.5) */
        uint64_t cali = j->regs[0] >> 7 & 0x1FFFFFF, ck8m = j->regs[1] & 0xFF;
        if (cali && ck8m) {
            uint64_t rom_freq = cali * 15625 * ck8m / 40;
            j->baud_corr[0] = rom_freq;
            j->baud_corr[1] = rom_freq > 33000000 ? 40000000 : 26000000;
        }
    } else if (j->chip->id == CHIP_ESP32C2) {
        if (job_xtal_mhz(j, j->regs[0]) == 26) { /* the ROM believes it has 40 MHz */
            j->baud_corr[0] = 40;
            j->baud_corr[1] = 26;
        }
    } else if (j->chip->id == CHIP_ESP32C5) {
        unsigned rom = j->regs[0] >> 24 & 0x7F, real = job_xtal_mhz(j, j->regs[1]);
        if ((real == 48 && rom == 40) || (real == 40 && rom == 48)) {
            j->baud_corr[0] = rom;
            j->baud_corr[1] = real;
        }
    }
    nb = nb * j->baud_corr[0] / j->baud_corr[1];
    return nb > UINT32_MAX ? UINT32_MAX : (uint32_t)nb;
}

static void job_baud_send(job_t *j)
{
    uint32_t wire = job_baud_wire_value(j);
    j->step = 10;
    if (wire != j->baud_target)
        job__log(j, JOB_LOG_DEBUG, "ROM clock correction: asking for %u to get %u baud", wire,
                 j->baud_target);
    /* second word: 0 for a ROM, the current rate for a stub (the legacy stub scales its
     * divider by it; §9, §14.7) */
    j->req_len = cmd_build_change_baud(j->req, sizeof j->req, wire, j->stub ? j->cur_baud : 0);
    job_send_or_fail(j, CMD_CHANGE_BAUDRATE, 0, job_state_timeout_ms(JOB_ST_BAUD));
}

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
static void st_baud(job_t *j, job_event_t ev)
{
    uint32_t target;
    int rc;
    switch (ev) {
    case JOB_EV_ENTER:
        target = j->plan->flash_baud ? j->plan->flash_baud : j->cur_baud;
        if (j->plan->op == PLAN_OP_FLASH && j->plan->n_images == 0)
            target = j->cur_baud; /* identify only: a few short commands */
        if (j->baud_cap && target > j->baud_cap) target = j->baud_cap;
        if (target == j->cur_baud) {
            job_baud_keep(j);
            return;
        }
        if (!j->stub && !j->chip->rom_change_baud) {
            job__log(j, JOB_LOG_INFO,
                     "the %s ROM loader cannot change its baud rate (the stub can): staying at "
                     "%u baud",
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
        j->n_regs = job_baud_regs(j, j->reg_addrs);
        j->step = 0;
        if (j->n_regs) {
            job_read_reg(j, j->reg_addrs[0]);
            return;
        }
        job_baud_send(j);
        return;
    case JOB_EV_RESP:
        if (j->step < j->n_regs) {
            if (j->resp.status != 0) {
                job_nak(j, "(clock calibration register)");
                return;
            }
            j->regs[j->step++] = j->resp.value;
            if (j->step < j->n_regs)
                job_read_reg(j, j->reg_addrs[j->step]);
            else
                job_baud_send(j);
            return;
        }
        if (j->step == 10) {
            char st[160];
            if (j->resp.status != 0) {
                /* refused: nothing changed, the link still works at the old rate */
                cmd_status_text(j->resp.status, j->resp.error, j->stub, st, sizeof st);
                job__log(j, JOB_LOG_WARN, "CHANGE_BAUDRATE to %u refused (%s): staying at %u baud",
                         j->baud_target, st, j->cur_baud);
                job_baud_keep(j);
                return;
            }
            /* the reply came at the old rate; now both sides switch (§9) */
            rc = j->io->set_baud(j, j->baud_target);
            if (rc != 0) {
                job_baud_fallback(j, "the port cannot be set to this rate");
                return;
            }
            j->step = 11;
            job__arm(j, BAUD_SETTLE_MS);
            return;
        }
        if (j->step == 12) {
            /* any well-formed reply proves the link; the value is the magic word */
            j->cur_baud = j->baud_target;
            job__log(j, JOB_LOG_INFO, "baud rate %u", j->cur_baud);
            job_baud_keep(j);
        }
        return;
    case JOB_EV_TIMEOUT:
        if (j->step < j->n_regs) {
            job_regs_timeout(j, "clock calibration read");
            return;
        }
        if (j->step == 10) {
            /* no answer even at the old rate: whether the chip switched is unknown */
            job_baud_fallback(j, "no reply to CHANGE_BAUDRATE");
            return;
        }
        if (j->step == 11 || (j->step == 12 && j->tries < 1)) {
            /* settled (or the first probe got nothing): drop what came during the switch (the
             * loader may send stray 0xC0 then, §3.1) and ask again */
            if (j->step == 12) j->tries++;
            j->awaiting = false;
            j->io->flush_input(j);
            slip_dec_reset(&j->dec);
            j->step = 12;
            j->req_len = cmd_build_read_reg(j->req, sizeof j->req, CHIP_MAGIC_REG);
            job_send_or_fail(j, CMD_READ_REG, 0, BAUD_PROBE_MS);
            return;
        }
        job_baud_fallback(j, "no reply after the switch");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* ESP32: the ROM does not attach in-package flash (PICO-D4, D2WD, U4WDH) by itself; esptool
 * builds SPI_ATTACH's pin word from the SPI-pad eFuses (reference §4.2). */
#define ESP32_EFUSE_RDATA5 0x3FF5A014u
#define ESP32_EFUSE_RDATA3 0x3FF5A00Cu

static uint32_t job_esp32_spi_config(uint32_t w5, uint32_t w3)
{
    uint32_t clk = w5 & 0x1F, q = w5 >> 5 & 0x1F, d = w5 >> 10 & 0x1F, cs = w5 >> 15 & 0x1F;
    uint32_t hd = w3 >> 4 & 0x1F;
    if (!clk && !q && !d && !cs && !hd) return 0; /* default pins */
    return hd << 24 | cs << 18 | d << 12 | q << 6 | clk;
}

static void job_send_attach(job_t *j, uint32_t config)
{
    j->step = 2;
    if (j->chip->rom_spi_attach || j->stub) {
        j->req_len = cmd_build_spi_attach(j->req, sizeof j->req, config, j->stub);
        job_send_or_fail(j, CMD_SPI_ATTACH, 0, job_state_timeout_ms(j->st));
    } else {
        /* ESP8266 ROM: FLASH_BEGIN(0, 0) attaches the flash (reference §4.2) */
        j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_BEGIN, 0, 0,
                                     j->chip->rom_flash_block, 0, false, 0);
        job_send_or_fail(j, CMD_FLASH_BEGIN, 0, job_state_timeout_ms(j->st));
    }
}

/* ATTACH sub-steps: 0, 1 read the ESP32 SPI-pad eFuse words; 2 attach sent. */
static void st_attach(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        if (j->stub) {
            /* the stub attaches the flash itself at start-up; esptool sends SPI_ATTACH to it
             * only for custom pins (§4.5.1) */
            job_enter(j, JOB_ST_FLASH_ID);
            return;
        }
        if (j->chip->id == CHIP_ESP32) {
            j->step = 0;
            job_read_reg(j, ESP32_EFUSE_RDATA5);
        } else {
            job_send_attach(j, 0); /* 0 = pins from eFuse on later chips */
        }
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, j->step < 2 ? "(SPI pad eFuse)" : "(flash attach)");
            return;
        }
        if (j->step < 2) {
            j->spi_pads[j->step] = j->resp.value;
            if (j->step == 0) {
                j->step = 1;
                job_read_reg(j, ESP32_EFUSE_RDATA3);
            } else {
                uint32_t cfg = job_esp32_spi_config(j->spi_pads[0], j->spi_pads[1]);
                if (cfg) job__log(j, JOB_LOG_INFO, "SPI flash pins from eFuse: config 0x%08x", cfg);
                job_send_attach(j, cfg);
            }
            return;
        }
        job_enter(j, JOB_ST_FLASH_ID);
        return;
    case JOB_EV_TIMEOUT:
        if (j->step < 2)
            job_regs_timeout(j, "SPI pad eFuse read");
        else
            job_retry_or_fail(j, "flash attach");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void job_spi_next(job_t *j)
{
    const chip_spi_step_t *s;
    if (j->step >= j->n_spi) {
        uint32_t raw = j->spi_result & 0xFFFFFF;
        uint32_t size;
        char sz[32];
        j->rep.have_flash_id = true;
        j->rep.flash_id = (raw & 0xFF) << 16 | (raw & 0xFF00) | (raw >> 16 & 0xFF);
        if (chip_jedec_invalid(raw)) {
            job_fail(j, EST_CLASS_FLASH_NOT_DETECTED, EST_EFLASHID,
                     "flash JEDEC ID reads %06x: the SPI flash is not answering", j->rep.flash_id);
            return;
        }
        size = chip_flash_size_from_jedec(raw);
        j->rep.flash_size = size;
        if (size)
            job__log(j, JOB_LOG_INFO, "flash %06x, %s", j->rep.flash_id,
                     plan_fmt_size(size, sz, sizeof sz));
        else
            job__log(j, JOB_LOG_WARN, "flash %06x has an unknown size code; assuming 4MB",
                     j->rep.flash_id);
        job_enter(j, JOB_ST_PARAMS);
        return;
    }
    s = &j->spi[j->step];
    switch (s->op) {
    case CHIP_SPI_SAVE:
    case CHIP_SPI_POLL:
    case CHIP_SPI_RESULT: job_read_reg(j, s->addr); return;
    case CHIP_SPI_WRITE: job_write_reg(j, s->addr, s->value); return;
    case CHIP_SPI_RESTORE: job_write_reg(j, s->addr, j->spi_saved[s->slot & 1]); return;
    }
}

static void st_flash_id(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->n_spi = chip_spi_cmd_steps(j->chip, 0x9F, 24, j->spi);
        j->step = 0;
        j->polls = 0;
        job_spi_next(j);
        return;
    case JOB_EV_RESP: {
        const chip_spi_step_t *s = &j->spi[j->step];
        if (j->resp.status != 0) {
            job_nak(j, "(SPI flash register access)");
            return;
        }
        switch (s->op) {
        case CHIP_SPI_SAVE: j->spi_saved[s->slot & 1] = j->resp.value; break;
        case CHIP_SPI_POLL:
            if (j->resp.value & s->value) {
                if (++j->polls >= SPI_POLLS) {
                    job_fail(j, EST_CLASS_FLASH_NOT_DETECTED, EST_EFLASHID,
                             "SPI flash command did not complete in time");
                    return;
                }
                job_read_reg(j, s->addr);
                return;
            }
            break;
        case CHIP_SPI_RESULT: j->spi_result = j->resp.value; break;
        case CHIP_SPI_WRITE:
        case CHIP_SPI_RESTORE: break;
        }
        j->step++;
        job_spi_next(j);
        return;
    }
    case JOB_EV_TIMEOUT: job_regs_timeout(j, "SPI flash register access"); return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* After the flash parameters: the operation of the plan. */
static void job_after_params(job_t *j)
{
    switch (j->plan->op) {
    case PLAN_OP_READ: job_enter(j, JOB_ST_READ); return;
    case PLAN_OP_ERASE: job_enter(j, JOB_ST_ERASE); return;
    case PLAN_OP_FLASH: job_enter(j, j->plan->erase_all ? JOB_ST_ERASE : JOB_ST_PREPARE); return;
    }
}

/* The size the job tells the loader (SPI_SET_PARAMS): the configured one, else the detected one,
 * else 4 MB. */
static uint32_t job_params_size(const job_t *j)
{
    uint32_t size = j->rep.flash_size;
    if (strcmp(j->plan->flash_size, "keep") != 0 && strcmp(j->plan->flash_size, "detect") != 0) {
        char base[16]; /* "2MB-c1" is a 2MB ESP8266 layout */
        snprintf(base, sizeof base, "%.*s", (int)strcspn(j->plan->flash_size, "-"),
                 j->plan->flash_size);
        size = chip_parse_size(base);
    }
    return size ? size : DEFAULT_FLASH;
}

/* 32-bit flash addresses: only the stub, and only on ESP32-S3, -P4, -C5 (§8.4, §14.12). The
 * legacy stub turns its large-flash mode on for the C5 only when the ROM's ECO version is 2 or
 * later (stub_flasher.c: `_rom_eco_version >= 2 && flash_larger_than_16mb()`; older ROMs lack
 * the functions or they did not work), so the C5 needs that word read (C5_ROM_ECO_REG). */
static bool job_flash_32bit(const job_t *j)
{
    if (!j->stub) return false;
    switch (j->chip->id) {
    case CHIP_ESP32S3:
    case CHIP_ESP32P4: return true;
    case CHIP_ESP32C5: return j->rom_eco_known && j->rom_eco >= 2;
    case CHIP_ESP8266:
    case CHIP_ESP32:
    case CHIP_ESP32S2:
    case CHIP_ESP32C2:
    case CHIP_ESP32C3:
    case CHIP_ESP32C6:
    case CHIP_ESP32H2:
    case CHIP__COUNT:
    case CHIP_UNKNOWN: break;
    }
    return false;
}

/* The ESP32-C5 ROM's `_rom_eco_version` word (the stub's ld script: "compatible with any ROM
 * version for this chip"), read with READ_REG like the magic word. */
#define C5_ROM_ECO_REG 0x40000014u

static void job_params_apply(job_t *j)
{
    plan_err_t perr;
    uint32_t size = job_params_size(j);
    char sz[32];
    j->flash_size_used = size;
    /* What fits: the configured size the ROM is told, the physical flash if smaller, and
     * the ROM loader's 24-bit addressing (writes above 16 MB wrap onto the bootloader and
     * even verify: reference §14.12). */
    if (j->rep.flash_size && j->rep.flash_size < size) size = j->rep.flash_size;
    if (size > ROM_ADDR_LIMIT && !job_flash_32bit(j)) {
        if (j->stub && j->chip->id == CHIP_ESP32C5)
            job__log(j, JOB_LOG_INFO,
                     "ESP32-C5 %s: the stub addresses only the first 16 MB of the %s flash",
                     j->rom_eco_known ? "ROM ECO below 2" : "ROM ECO unknown",
                     plan_fmt_size(size, sz, sizeof sz));
        size = ROM_ADDR_LIMIT;
    }
    j->op_size = j->plan->op_size;
    if (j->plan->op == PLAN_OP_READ && j->op_size == 0 && j->plan->op_offset < size)
        j->op_size = size - j->plan->op_offset; /* "read to the end of the flash" */
    if (plan_check_flash(j->plan, size, &perr) != 0) {
        job_fail(j, perr.cls, perr.cls == EST_CLASS_BAD_OFFSET ? EST_EOFFSET : EST_ETOOBIG, "%s",
                 perr.msg);
        return;
    }
    if (j->cbs.check_cb) {
        est_class_t cls = EST_CLASS_INTERNAL;
        char msg[400];
        msg[0] = 0;
        if (j->cbs.check_cb(j, &j->rep, &cls, msg, sizeof msg) != 0) {
            job_fail(j, cls, EST_ECHIP, "%s", msg[0] ? msg : "device check failed");
            return;
        }
    }
    if (j->plan->op == PLAN_OP_FLASH && j->plan->n_images == 0) { /* identify only */
        job_enter(j, JOB_ST_AFTER_RESET);
        return;
    }
    if (!j->stub && !j->chip->rom_set_params) {
        job_after_params(j);
        return;
    }
    j->step = 2;
    j->req_len = cmd_build_spi_set_params(j->req, sizeof j->req, j->flash_size_used);
    job_send_or_fail(j, CMD_SPI_SET_PARAMS, 0, job_state_timeout_ms(j->st));
}

/* PARAMS sub-steps: 1 the C5 ROM's ECO word read; 2 SPI_SET_PARAMS sent. */
static bool job_has_test(const job_t *j);

static void st_params(job_t *j, job_event_t ev)
{
    uint32_t size;
    switch (ev) {
    case JOB_EV_ENTER:
        /* the post-flash test needs the board reset into its application: say so before
         * anything is written */
        if (job_has_test(j) && (j->plan->after == PLAN_AFTER_NO_RESET || !j->lines_ok)) {
            if (j->plan->after == PLAN_AFTER_NO_RESET)
                job_fail(j, EST_CLASS_USAGE, EST_EUSAGE,
                         "the post-flash test needs a hard reset after flashing, but the job is "
                         "set to after no_reset: nothing was written");
            else
                job_fail(j, EST_CLASS_USAGE, EST_EUSAGE,
                         "the post-flash test needs a hard reset after flashing, but port %s "
                         "cannot drive RTS: nothing was written",
                         j->spec);
            return;
        }
        size = job_params_size(j);
        if (j->rep.flash_size && j->rep.flash_size < size) size = j->rep.flash_size;
        if (size > ROM_ADDR_LIMIT && j->stub && j->chip->id == CHIP_ESP32C5 && !j->rom_eco_known) {
            j->step = 1;
            job_read_reg(j, C5_ROM_ECO_REG);
            return;
        }
        job_params_apply(j);
        return;
    case JOB_EV_RESP:
        if (j->step == 1) {
            if (j->resp.status == 0) {
                j->rom_eco_known = true;
                j->rom_eco = j->resp.value;
                job__log(j, JOB_LOG_DEBUG, "ESP32-C5 ROM ECO version %u", j->rom_eco);
            }
            job_params_apply(j);
            return;
        }
        if (j->resp.status != 0) {
            job_nak(j, "(flash size)");
            return;
        }
        job_after_params(j);
        return;
    case JOB_EV_TIMEOUT:
        job_retry_or_fail(j, j->step == 1 ? "ROM ECO version" : "flash parameters");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* Header codes for the image at the bootloader offset; -1 keeps a field. Returns 0, or -1 with
 * the reason in msg (a setting this chip cannot encode). */
static int job_image_params(const job_t *j, image_params_t *p, char *msg, size_t cap)
{
    const plan_t *pl = j->plan;
    p->mode = pl->flash_mode;
    p->size_code = -1;
    p->freq_code = -1;
    if (strcmp(pl->flash_size, "keep") != 0) {
        if (strcmp(pl->flash_size, "detect") == 0)
            p->size_code = chip_flash_size_code(j->chip, j->rep.flash_size ? j->rep.flash_size
                                                                           : DEFAULT_FLASH);
        else /* by name: also the ESP8266's "2MB-c1" / "4MB-c1" layouts */
            p->size_code = chip_flash_size_code_name(j->chip, pl->flash_size);
        if (p->size_code < 0) {
            snprintf(msg, cap, "flash size %s is not valid for %s", pl->flash_size,
                     j->chip->pretty);
            return -1;
        }
    }
    if (strcmp(pl->flash_freq, "keep") != 0) {
        p->freq_code = chip_flash_freq_code(j->chip, pl->flash_freq);
        if (p->freq_code < 0) {
            snprintf(msg, cap, "flash frequency %s is not valid for %s", pl->flash_freq,
                     j->chip->pretty);
            return -1;
        }
    }
    return 0;
}

/* The inputs of image `idx`'s preparation (the shared cache's key). Header parameters matter
 * only at the bootloader offset; elsewhere they are "keep", so that every job shares one
 * preparation whatever it was told. `compress` is the caller's. Returns 0 or -1 (msg set). */
static int job_prep_inputs(const job_t *j, size_t idx, job_prep_t *p, char *msg, size_t cap)
{
    const plan_image_t *im = &j->plan->images[idx];
    static const image_params_t keep = {-1, -1, -1};
    memset(p, 0, sizeof *p);
    if (job_image_params(j, &p->params, msg, cap) != 0) return -1;
    if (im->offset != j->chip->bootloader_offset) p->params = keep;
    p->src_id = im->id;
    p->src = im->data;
    p->src_len = im->size;
    p->offset = im->offset;
    p->chip = j->chip;
    /* Secure Boot: a signed bootloader must never be patched (reference §11.4, §14.24) */
    p->no_patch = j->rep.have_sec_info && (j->rep.sec_flags & SEC_FLAG_SECURE_BOOT);
    return 0;
}

/* Once the chip is known, prepare (pad, patch, MD5, deflate) the images on the worker while the
 * stub upload, baud change and flash detection go on: the first board of a batch does not wait
 * for the deflate later. Guesses what PREPARE will ask for (compressed when the stub is expected
 * or the ROM can inflate); a wrong guess only costs a second preparation. Not for an image at
 * the bootloader offset with flash size "detect" (its header needs the detected size). */
static void job_prefetch_images(job_t *j)
{
    const plan_t *pl = j->plan;
    bool stub_likely =
        pl->stub && (pl->stub_dir || pl->stub_file || j->sync_zero) && !job_stub_excluded(j);
    char msg[160];
    if (pl->op != PLAN_OP_FLASH) return;
    for (size_t i = 0; i < pl->n_images; i++) {
        job_prep_t in;
        if (pl->images[i].offset == j->chip->bootloader_offset &&
            strcmp(pl->flash_size, "detect") == 0)
            continue;
        if (job_prep_inputs(j, i, &in, msg, sizeof msg) != 0) return; /* PREPARE reports it */
        in.compress = pl->compress && (stub_likely || j->chip->rom_defl);
        j->prep = in;
        if (job__prefetch_prep(j) != 0) break;
    }
    memset(&j->prep, 0, sizeof j->prep);
}

/* ---- ERASE: the whole chip (stub) or a region ---- */

/* ERASE_FLASH: esptool's 120 s, but a large part takes longer (a 16 MB NOR chip erase is up to a
 * few minutes by datasheet): the region rate over the whole flash when that is more, never more
 * than esptool's 240 s cap on any command (timeout_per_mb caps). */
static uint32_t job_chip_erase_ms(const job_t *j)
{
    uint32_t size = j->rep.flash_size ? j->rep.flash_size : j->flash_size_used;
    uint32_t ms = timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size);
    return ms > CHIP_ERASE_MS ? ms : CHIP_ERASE_MS;
}

static void st_erase(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    bool all = pl->op != PLAN_OP_ERASE || pl->erase_all;
    uint32_t off = pl->op_offset, size = pl->op_size;
    char sz[32];
    switch (ev) {
    case JOB_EV_ENTER:
        if (all) {
            if (!j->stub) {
                job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                         "erasing the whole flash needs the flasher stub (the %s ROM loader has "
                         "no chip erase): give a stub directory",
                         j->chip->pretty);
                return;
            }
            job__log(j, JOB_LOG_INFO, "erasing the whole flash (this can take a while)");
            j->req_len = cmd_build_erase_flash(j->req, sizeof j->req);
            job_send_or_fail(j, CMD_ERASE_FLASH, 0, job_chip_erase_ms(j));
            return;
        }
        if (j->stub) {
            j->req_len = cmd_build_erase_region(j->req, sizeof j->req, off, size);
            job_send_or_fail(j, CMD_ERASE_REGION, 0,
                             timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size));
            return;
        }
        /* ROM: FLASH_BEGIN erases the region up front; no data follows and no FLASH_END is sent
         * (it would leave the loader), as esptool master does without a stub (§4.2) */
        j->req_len = cmd_build_begin(
            j->req, sizeof j->req, CMD_FLASH_BEGIN,
            j->chip->id == CHIP_ESP8266 ? image_esp8266_erase_size(off, size) : size,
            (size + j->chip->rom_flash_block - 1) / j->chip->rom_flash_block,
            j->chip->rom_flash_block, off, j->chip->rom_begin_enc_word, 0);
        job_send_or_fail(j, CMD_FLASH_BEGIN, 0, timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size));
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, all ? "(chip erase)" : "(region erase)");
            return;
        }
        if (all)
            job__log(j, JOB_LOG_INFO, "flash erased");
        else
            job__log(j, JOB_LOG_INFO, "erased 0x%x..0x%x (%s)", off, off + size,
                     plan_fmt_size(size, sz, sizeof sz));
        job_enter(j, pl->op == PLAN_OP_ERASE ? JOB_ST_AFTER_RESET : JOB_ST_PREPARE);
        return;
    case JOB_EV_TIMEOUT:
        job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "no reply to %s within %u ms",
                 cmd_op_name(j->expect_op), j->req_timeout_ms);
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* ---- per image ---- */

static void st_prepare(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    int rc;
    switch (ev) {
    case JOB_EV_ENTER: {
        char msg[160];
        job__free_prep(p);
        if (job_prep_inputs(j, j->img, p, msg, sizeof msg) != 0) {
            job_fail(j, EST_CLASS_USAGE, EST_EUSAGE, "%s", msg);
            return;
        }
        j->defl = j->plan->compress && (j->stub || j->chip->rom_defl);
        /* USB-OTG: 0x800 for stub writes as esptool's stub class does (§4.3) */
        j->block_size = j->stub ? j->stub_block : j->chip->rom_flash_block;
        if (p->no_patch &&
            (p->params.mode >= 0 || p->params.size_code >= 0 || p->params.freq_code >= 0))
            job__log(j, JOB_LOG_WARN,
                     "Secure Boot is enabled: flash parameters in the header are left unchanged");
        /* one deflate serves ROM and stub jobs alike (block sizes are multiples of 1 KiB) */
        p->compress = j->defl;
        j->img_t0_ms = job__now_ms(j);
        rc = job__queue_prep(j);
        if (rc != 0)
            job_fail(j, EST_CLASS_INTERNAL, rc, "cannot queue image preparation: %s",
                     uv_strerror(rc));
        return;
    }
    case JOB_EV_WORK_DONE: {
        job_image_stat_t *is = &j->rep.images[j->img];
        const char *why = NULL;
        if (p->status != 0) {
            job_fail(j, p->cls, p->status, "%s: %s", im->path, p->msg);
            return;
        }
        /* esptool refuses an image built for another chip or revision range (§11.3) */
        if (p->have_info && image_check_chip(&p->info, j->chip, j->rep.chip_rev, &why) != 0) {
            job_fail(j, EST_CLASS_WRONG_CHIP, EST_ECHIP,
                     "%s: image does not suit this %s (v%u.%u): %s", im->path, j->chip->pretty,
                     j->rep.chip_rev / 100, j->rep.chip_rev % 100, why ? why : "?");
            return;
        }
        /* esptool master sends uncompressed when deflate does not shrink the data */
        if (j->defl && p->zlen >= p->len) j->defl = false;
        j->nblocks = (uint32_t)(((j->defl ? p->zlen : p->len) + j->block_size - 1) / j->block_size);
        is->offset = im->offset;
        is->size = (uint32_t)p->len;
        is->compressed_size = (uint32_t)(j->defl ? p->zlen : p->len);
        memcpy(is->md5, p->md5, 16);
        is->patched = p->patched;
        j->rep.n_images = j->img + 1;
        if (p->patched)
            job__log(j, JOB_LOG_INFO, "flash parameters patched in the header at 0x%x", im->offset);
        /* after a chip erase every region is blank: nothing to compare */
        if (j->plan->skip_unchanged && !j->plan->erase_all && (j->stub || j->chip->rom_md5))
            job_enter(j, JOB_ST_COMPARE);
        else
            job_enter(j, JOB_ST_BEGIN);
        return;
    }
    case JOB_EV_RESP:
    case JOB_EV_TIMEOUT:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void job_next_image(job_t *j)
{
    j->rep.images[j->img].duration_ms = job__now_ms(j) - j->img_t0_ms;
    j->img++;
    job_enter(j, j->img < j->plan->n_images ? JOB_ST_PREPARE : JOB_ST_AFTER_RESET);
}

static const char *job_hex16(const uint8_t d[16], char out[33])
{
    for (int k = 0; k < 16; k++)
        snprintf(out + 2 * k, 3, "%02x", d[k]);
    return out;
}

/* COMPARE: the device's MD5 of the image's region; equal → the image is already there. */
static void st_compare(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER:
        j->req_len = cmd_build_md5(j->req, sizeof j->req, im->offset, (uint32_t)p->len);
        job_send_or_fail(j, CMD_SPI_FLASH_MD5, j->stub ? 16 : 32, timeout_per_mb(8, p->len));
        return;
    case JOB_EV_RESP: {
        uint8_t dev[16];
        job_image_stat_t *is = &j->rep.images[j->img];
        if (j->resp.status != 0 || cmd_parse_md5(&j->resp, dev) != 0 ||
            memcmp(dev, p->md5, 16) != 0) {
            job_enter(j, JOB_ST_BEGIN); /* differs (or cannot tell): write it */
            return;
        }
        is->skipped = true;
        is->verified = true; /* the device's MD5 of the region is the image's */
        job__log(j, JOB_LOG_INFO, "0x%x: the device already holds this image (MD5 %s): skipped",
                 im->offset, job_hex16(dev, (char[33]){0}));
        if (j->cbs.progress_cb) j->cbs.progress_cb(j, j->img, p->len, p->len);
        job_next_image(j);
        return;
    }
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash MD5 before writing"); return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void st_begin(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    /* The 5th "encrypted" word: S2+ ROMs require it; the legacy stub checks for exactly 16
     * bytes (verify_data_len(16), else 0xC0). esptool 4.x adds it only for a ROM that supports
     * encrypted flash; esptool >= 5.2 sends it to stubs too because the new stub accepts both,
     * but 16 bytes work with either stub. */
    bool enc = !j->stub && j->chip->rom_begin_enc_word;
    uint32_t size_field;
    switch (ev) {
    case JOB_EV_ENTER:
        j->end_sent = false;
        if (j->defl) {
            /* ROM: uncompressed size rounded up to 1 KiB, which it erases now; stub: the exact
             * size, erased as it writes (§4.2) */
            size_field = j->stub ? (uint32_t)p->len : (uint32_t)((p->len + 0x3FF) & ~0x3FFu);
            j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_DEFL_BEGIN, size_field,
                                         j->nblocks, j->block_size, im->offset, enc, 0);
            job_send_or_fail(j, CMD_FLASH_DEFL_BEGIN, 0,
                             j->stub ? 3000
                                     : timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size_field));
        } else {
            size_field = (uint32_t)p->len;
            if (!j->stub && j->chip->id == CHIP_ESP8266)
                size_field = image_esp8266_erase_size(im->offset, (uint32_t)p->len);
            j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_BEGIN, size_field,
                                         j->nblocks, j->block_size, im->offset, enc, 0);
            job_send_or_fail(j, CMD_FLASH_BEGIN, 0,
                             j->stub ? 3000 : timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, p->len));
        }
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            char what[64];
            snprintf(what, sizeof what, "at 0x%x (%zu bytes)", im->offset, p->len);
            job_nak(j, what);
            return;
        }
        j->seq = 0;
        j->img_done = 0;
        job_enter(j, JOB_ST_DATA);
        return;
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "erase before write"); return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* Flash bytes block k of the current image writes: the sum of its zlib slices' outputs, or the
 * plain bytes it carries (without the 0xFF padding of the last block). */
static uint64_t job_block_out(const job_t *j, uint32_t k)
{
    const job_prep_t *p = &j->prep;
    size_t start = (size_t)k * j->block_size;
    if (j->defl) {
        size_t first = start / JOB_ZGRAIN, end = (start + j->block_size) / JOB_ZGRAIN;
        uint64_t sum = 0;
        for (size_t s = first; s < end && s < p->nslices; s++)
            sum += p->blk_out[s];
        return sum;
    }
    return p->len - start < j->block_size ? p->len - start : j->block_size;
}

/* How long the reply to block k may take (§4.4): the ROM writes block k before answering; the
 * stub answers on receipt, but only after it has written block k-1. */
static uint32_t job_block_timeout(const job_t *j, uint32_t k)
{
    if (!j->stub) return timeout_per_mb(40, j->defl ? job_block_out(j, k) : j->block_size);
    return k == 0 ? job_state_timeout_ms(JOB_ST_DATA) : job_stub_wait_ms(job_block_out(j, k - 1));
}

static void job_send_block(job_t *j)
{
    job_prep_t *p = &j->prep;
    size_t start = (size_t)j->seq * j->block_size;
    if (j->defl) {
        size_t n = p->zlen - start < j->block_size ? p->zlen - start : j->block_size;
        j->req_len =
            cmd_build_data(j->req, sizeof j->req, CMD_FLASH_DEFL_DATA, j->seq, p->z + start, n);
        job_send_or_fail(j, CMD_FLASH_DEFL_DATA, 0, job_block_timeout(j, j->seq));
    } else {
        /* every FLASH_DATA block carries block_size bytes; pad the last with 0xFF (§4.2) */
        static uint8_t blk[0x4000];
        size_t n = p->len - start < j->block_size ? p->len - start : j->block_size;
        memcpy(blk, p->data + start, n);
        memset(blk + n, 0xFF, j->block_size - n);
        j->req_len =
            cmd_build_data(j->req, sizeof j->req, CMD_FLASH_DATA, j->seq, blk, j->block_size);
        job_send_or_fail(j, CMD_FLASH_DATA, 0, job_block_timeout(j, j->seq));
    }
}

/* Stub: FLASH_DEFL_END(1) / FLASH_END(1) after the last block: "stay in the loader", and the
 * barrier that reports the last blocks' write errors (§4.5.6, §8.5). */
static void job_send_end(job_t *j)
{
    uint8_t op = j->defl ? CMD_FLASH_DEFL_END : CMD_FLASH_END;
    j->end_sent = true;
    j->req_len = cmd_build_end(j->req, sizeof j->req, op, 1);
    job_send_or_fail(j, op, 0, job_stub_wait_ms(job_block_out(j, j->nblocks - 1)));
}

/* Stub status codes that concern the block just sent (sending it again can help); any other
 * failure is a deferred write error of an earlier block (§8.5). */
static bool job_stub_resendable(uint8_t status)
{
    return status == 0xC0 || status == 0xC1;
}

static void st_data(job_t *j, job_event_t ev)
{
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER: job_send_block(j); return;
    case JOB_EV_RESP: {
        uint64_t add;
        if (j->end_sent) {
            if (j->resp.status != 0) {
                job_nak(j, "(the stub reports that writing the image failed)");
                return;
            }
            job_enter(j, JOB_ST_VERIFY);
            return;
        }
        if (j->resp.status != 0) {
            char what[96];
            /* esptool sends a rejected block again too (e.g. a checksum error from noise) */
            if (!j->resp_unsupported && j->tries < job_state_retries(j->st) &&
                (!j->stub || job_stub_resendable(j->resp.status))) {
                j->tries++;
                j->rep.retries++;
                job__log(j, JOB_LOG_WARN, "block %u rejected (status 0x%04x), sending again",
                         j->seq + 1, cmd_resp_code(&j->resp));
                job_send_block(j);
                return;
            }
            if (j->stub && !job_stub_resendable(j->resp.status) && j->seq > 0)
                snprintf(what, sizeof what, "block %u of %u (writing an earlier block failed)",
                         j->seq + 1, j->nblocks);
            else
                snprintf(what, sizeof what, "block %u of %u", j->seq + 1, j->nblocks);
            job_nak(j, what);
            return;
        }
        add = job_block_out(j, j->seq);
        j->img_done += add;
        j->rep.bytes_written += add;
        if (j->cbs.progress_cb) j->cbs.progress_cb(j, j->img, j->img_done, p->len);
        j->seq++;
        j->tries = 0;
        if (j->seq < j->nblocks) {
            job_send_block(j);
            return;
        }
        if (j->stub) {
            job_send_end(j);
            return;
        }
        job_enter(j, JOB_ST_VERIFY);
        return;
    }
    case JOB_EV_TIMEOUT:
        if (j->end_sent) {
            /* not sent again: a second END finds the stub out of flash mode */
            job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT,
                     "no reply to %s within %u ms: the stub did not finish writing",
                     cmd_op_name(j->expect_op), j->req_timeout_ms);
            return;
        }
        /* esptool sends each block at most 3 times with the same sequence number */
        job_retry_or_fail(j, "data block");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* True when `md5` is the MD5 of `len` bytes of 0xFF: nothing was written (esptool's check). */
static bool job_md5_is_erased(const uint8_t md5[16], size_t len)
{
    static uint8_t ff[4096];
    uint8_t want[16];
    unsigned int ml = 16;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool eq;
    memset(ff, 0xFF, sizeof ff);
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    for (size_t done = 0; done < len; done += sizeof ff)
        EVP_DigestUpdate(c, ff, len - done < sizeof ff ? len - done : sizeof ff);
    EVP_DigestFinal_ex(c, want, &ml);
    EVP_MD_CTX_free(c);
    eq = memcmp(want, md5, 16) == 0;
    return eq;
}

static void st_verify(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER:
        if (!j->plan->verify || (!j->stub && !j->chip->rom_md5)) {
            if (j->plan->verify)
                job__log(j, JOB_LOG_WARN,
                         "the %s ROM loader cannot compute MD5: image at 0x%x not verified",
                         j->chip->pretty, im->offset);
            job_next_image(j);
            return;
        }
        j->req_len = cmd_build_md5(j->req, sizeof j->req, im->offset, (uint32_t)p->len);
        job_send_or_fail(j, CMD_SPI_FLASH_MD5, j->stub ? 16 : 32, timeout_per_mb(8, p->len));
        return;
    case JOB_EV_RESP: {
        uint8_t dev[16];
        if (j->resp.status != 0) {
            job_nak(j, "(verify)");
            return;
        }
        if (cmd_parse_md5(&j->resp, dev) != 0) {
            job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "malformed MD5 reply");
            return;
        }
        if (memcmp(dev, p->md5, 16) != 0) {
            char a[33], b[33];
            for (int k = 0; k < 16; k++) {
                snprintf(a + 2 * k, 3, "%02x", p->md5[k]);
                snprintf(b + 2 * k, 3, "%02x", dev[k]);
            }
            job_fail(j, EST_CLASS_MD5_MISMATCH, EST_EMD5,
                     "MD5 of flash at 0x%x (%zu bytes) is %s, image is %s%s", im->offset, p->len, b,
                     a,
                     job_md5_is_erased(dev, p->len)
                         ? ": the written flash region is empty (write failed)"
                         : "");
            return;
        }
        j->rep.images[j->img].verified = true;
        job_next_image(j);
        return;
    }
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash MD5"); return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* ---- READ: a flash range into data_cb ---- */

static void job_read_finish(job_t *j)
{
    unsigned int ml = 16;
    EVP_DigestFinal_ex(j->rd_md5, j->rep.read_md5, &ml);
    EVP_MD_CTX_free(j->rd_md5);
    j->rd_md5 = NULL;
}

/* Pass bytes on; false when the job failed. */
static bool job_read_deliver(job_t *j, const uint8_t *d, size_t n)
{
    const plan_t *pl = j->plan;
    if (j->cbs.data_cb && j->cbs.data_cb(j, pl->op_offset + j->rd_done, d, n) != 0) {
        job_fail(j, EST_CLASS_INTERNAL, EST_EUSAGE, "the reader did not take the data");
        return false;
    }
    EVP_DigestUpdate(j->rd_md5, d, n);
    j->rd_done += (uint32_t)n;
    j->rep.bytes_written += n; /* bytes moved over the link, for the record */
    if (j->cbs.progress_cb) j->cbs.progress_cb(j, 0, j->rd_done, j->op_size);
    return true;
}

static void job_read_slow_next(job_t *j)
{
    uint32_t left = j->op_size - j->rd_done;
    j->req_len = cmd_build_read_flash_slow(j->req, sizeof j->req, j->plan->op_offset + j->rd_done,
                                           left < 64 ? left : 64);
    job_send_or_fail(j, CMD_READ_FLASH_SLOW, 64, job_state_timeout_ms(JOB_ST_READ));
}

static bool job_read_md5_ok(job_t *j, const uint8_t dev[16])
{
    char a[33], b[33];
    job_read_finish(j);
    if (memcmp(dev, j->rep.read_md5, 16) == 0) return true;
    job_fail(j, EST_CLASS_MD5_MISMATCH, EST_EMD5,
             "the data read from 0x%x (%u bytes) has MD5 %s, the device computed %s: the read "
             "was corrupted on the way",
             j->plan->op_offset, j->op_size, job_hex16(j->rep.read_md5, a), job_hex16(dev, b));
    return false;
}

/* READ sub-steps: stub 0 READ_FLASH sent, 1 data packets, 2 MD5 frame; ROM 10 READ_FLASH_SLOW,
 * 11 SPI_FLASH_MD5 over the range. */
static void st_read(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    uint8_t dev[16], ack[4];
    switch (ev) {
    case JOB_EV_ENTER:
        /* flash data may contain any text, "rst:0x" included: stop looking for banners */
        j->watch_banner = false;
        j->rd_done = 0;
        j->rd_md5 = EVP_MD_CTX_new();
        if (!j->rd_md5 || !EVP_DigestInit_ex(j->rd_md5, EVP_md5(), NULL)) {
            job_fail(j, EST_CLASS_INTERNAL, -ENOMEM, "out of memory");
            return;
        }
        if (j->stub) {
            /* esptool: 4 KiB packets, 64 in flight (both stubs keep one: §4.6) */
            j->step = 0;
            j->req_len = cmd_build_read_flash(j->req, sizeof j->req, pl->op_offset, j->op_size,
                                              READ_PACKET, 64);
            job_send_or_fail(j, CMD_READ_FLASH, 0, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (!j->chip->rom_read_flash_slow) {
            job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                     "the %s ROM loader cannot read flash: reading needs the flasher stub (give a "
                     "stub directory)",
                     j->chip->pretty);
            return;
        }
        job__log(j, JOB_LOG_INFO,
                 "no stub: reading with READ_FLASH_SLOW, 64 bytes per command (slow)");
        j->step = 10;
        job_read_slow_next(j);
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, "(flash read)");
            return;
        }
        if (j->step == 0) {
            j->step = 1;
            j->raw_mode = true; /* data frames follow, without a response header */
            job__arm(j, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (j->step == 10) {
            uint32_t left = j->op_size - j->rd_done;
            if (!j->resp.out || j->resp.out_len < 64) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "short READ_FLASH_SLOW reply");
                return;
            }
            /* the reply always carries 64 bytes; the first `length` are ours (§4.2) */
            if (!job_read_deliver(j, j->resp.out, left < 64 ? left : 64)) return;
            if (j->rd_done < j->op_size) {
                job_read_slow_next(j);
                return;
            }
            if (!j->chip->rom_md5) {
                job_read_finish(j);
                job_enter(j, JOB_ST_AFTER_RESET);
                return;
            }
            j->step = 11;
            j->req_len = cmd_build_md5(j->req, sizeof j->req, pl->op_offset, j->op_size);
            job_send_or_fail(j, CMD_SPI_FLASH_MD5, 32, timeout_per_mb(8, j->op_size));
            return;
        }
        if (j->step == 11) {
            if (cmd_parse_md5(&j->resp, dev) != 0) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "malformed MD5 reply");
                return;
            }
            if (job_read_md5_ok(j, dev)) job_enter(j, JOB_ST_AFTER_RESET);
        }
        return;
    case JOB_EV_RAW:
        if (j->step == 1) {
            uint32_t left = j->op_size - j->rd_done;
            uint32_t want = left < READ_PACKET ? left : READ_PACKET;
            if (j->raw_len != want) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO,
                         "READ_FLASH packet of %zu bytes at 0x%x, expected %u", j->raw_len,
                         pl->op_offset + j->rd_done, want);
                return;
            }
            if (!job_read_deliver(j, j->raw, j->raw_len)) return;
            /* acknowledge every packet with the running total (§4.6) */
            if (job__send_raw(j, ack, cmd_build_read_flash_ack(ack, sizeof ack, j->rd_done))) {
                job_fail(j, EST_CLASS_PORT_GONE, UV_EIO, "write to %s failed", j->spec);
                return;
            }
            if (j->rd_done == j->op_size) j->step = 2;
            job__arm(j, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (j->step == 2) {
            if (j->raw_len != 16) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO,
                         "expected the 16-byte MD5 after READ_FLASH data, got %zu bytes",
                         j->raw_len);
                return;
            }
            j->raw_mode = false;
            if (job_read_md5_ok(j, j->raw)) job_enter(j, JOB_ST_AFTER_RESET);
        }
        return;
    case JOB_EV_TIMEOUT:
        if (j->step == 1 || j->step == 2) {
            job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT,
                     "READ_FLASH stalled at 0x%x (%u of %u bytes received)",
                     pl->op_offset + j->rd_done, j->rd_done, j->op_size);
            return;
        }
        job_retry_or_fail(j, "flash read");
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED: return;
    }
}

static void job_pass(job_t *j)
{
    j->rep.result = JOB_RESULT_PASS;
    job_enter(j, JOB_ST_CLOSING);
}

/* The plan asks for the post-flash test (flashing jobs with images only). */
static bool job_has_test(const job_t *j)
{
    return j->plan->test && j->plan->op == PLAN_OP_FLASH && j->plan->n_images > 0;
}

/* The board was reset into its application: on to the test, or done. */
static void job_after_reset_done(job_t *j)
{
    if (!job_has_test(j)) {
        job_pass(j);
        return;
    }
    if (!j->lines_ok) {
        job_fail(j, EST_CLASS_TEST_FAILED, EST_ETEST,
                 "the board was flashed and verified, but port %s cannot drive RTS to reset it "
                 "into the application: the post-flash test cannot run",
                 j->spec);
        return;
    }
    job_enter(j, JOB_ST_TEST);
}

/* AFTER_RESET sub-steps: 0 reset sequence; 100 CHANGE_BAUDRATE back to the connect rate sent,
 * 101 settling. A chip that is not reset stays in its loader at the rate we left it at; putting
 * it back to the connect rate lets the next job (or esptool) sync with it again. */
static void st_after_reset(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->watch_banner = false; /* the reset we cause prints a banner */
        j->step = 0;
        if (j->plan->after == PLAN_AFTER_NO_RESET || !j->lines_ok) {
            if (job_has_test(j)) {
                job_after_reset_done(j); /* fails: the test needs the application running */
                return;
            }
            if (j->plan->after != PLAN_AFTER_NO_RESET)
                job__log(j, JOB_LOG_WARN,
                         "port %s cannot drive RTS: the chip stays in the loader until it is "
                         "reset or power-cycled",
                         j->spec);
            if (j->cur_baud != j->plan->baud) {
                j->step = 100;
                j->baud_target = j->plan->baud;
                job__log(j, JOB_LOG_DEBUG, "setting the loader back to %u baud", j->plan->baud);
                j->req_len = cmd_build_change_baud(
                    j->req, sizeof j->req,
                    (uint32_t)((uint64_t)j->plan->baud * j->baud_corr[0] / j->baud_corr[1]),
                    j->stub ? j->cur_baud : 0);
                job_send_or_fail(j, CMD_CHANGE_BAUDRATE, 0, job_state_timeout_ms(JOB_ST_BAUD));
                return;
            }
            job_pass(j);
            return;
        }
        /* fall through */
    case JOB_EV_TIMEOUT:
        if (j->step == 100 || j->step == 101) {
            if (j->step == 100)
                job__log(j, JOB_LOG_WARN, "no reply to CHANGE_BAUDRATE back to %u baud",
                         j->plan->baud);
            j->io->set_baud(j, j->plan->baud);
            j->cur_baud = j->plan->baud;
            job_pass(j);
            return;
        }
        if (job_run_reset_steps(j)) job_after_reset_done(j);
        return;
    case JOB_EV_RESP:
        if (j->step == 100) {
            j->step = 101;
            if (j->resp.status == 0) {
                j->io->set_baud(j, j->plan->baud);
                j->cur_baud = j->plan->baud;
            }
            job__arm(j, BAUD_SETTLE_MS);
        }
        return;
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

/* ---- TEST: the application's output after the reset (recipe "test") ---- */

/* The output as the report keeps it: printable ASCII, tabs and newlines; CR dropped (CRLF reads
 * as LF); anything else (a ROM log at another rate, binary) as '.'. Then one log line with it,
 * which the station stores with the job's events. */
static void job_test_report(job_t *j, bool passed)
{
    char line[JOB_TEST_OUTPUT_MAX + 160];
    size_t n = 0;
    for (size_t i = 0; i < j->test_len; i++) {
        uint8_t c = j->test_buf[i];
        if (c == '\r') continue;
        j->rep.test_output[n++] = (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t' ? (char)c : '.';
    }
    j->rep.test_output[n] = 0;
    j->rep.test_output_len = n;
    j->rep.test_passed = passed;
    j->rep.test_ms = job__now_ms(j) - j->st_enter_ms;
    snprintf(line, sizeof line, "test: application output after the reset (%zu bytes%s):\n%s", n,
             j->test_len == sizeof j->test_buf ? ", the last ones" : "", j->rep.test_output);
    if (j->cbs.log_cb) j->cbs.log_cb(j, passed ? JOB_LOG_INFO : JOB_LOG_WARN, line);
}

static void job_test_text(job_t *j, const uint8_t *buf, size_t n)
{
    const char *want = j->plan->test_expect;
    size_t cap = sizeof j->test_buf;
    if (n >= cap) { /* keep the newest bytes */
        buf += n - cap;
        n = cap;
    }
    if (j->test_len + n > cap) {
        size_t drop = j->test_len + n - cap;
        memmove(j->test_buf, j->test_buf + drop, j->test_len - drop);
        j->test_len -= drop;
    }
    memcpy(j->test_buf + j->test_len, buf, n);
    j->test_len += n;
    /* a plain substring; it is at most 256 bytes, so it fits in what is kept whole */
    if (want && *want && memmem(j->test_buf, j->test_len, want, strlen(want))) {
        job__disarm(j);
        job__log(j, JOB_LOG_INFO, "test passed: the application printed \"%s\" after %llu ms", want,
                 (unsigned long long)(job__now_ms(j) - j->st_enter_ms));
        job_test_report(j, true);
        job_pass(j);
    }
}

/* The board runs its application (AFTER_RESET pulsed RTS): the port goes to the test's rate,
 * old input is dropped, and the output is read until the expected text or the timeout. */
static void st_test(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    int rc;
    switch (ev) {
    case JOB_EV_ENTER:
        j->rep.test_ran = true;
        j->test_len = 0;
        j->awaiting = false;
        if (j->cur_baud != pl->test_baud) {
            rc = j->io->set_baud(j, pl->test_baud);
            if (rc != 0) {
                job_fail(j, EST_CLASS_PORT_ERROR, rc, "cannot set %s to the test's %u baud: %s",
                         j->spec, pl->test_baud, uv_strerror(rc));
                return;
            }
            j->cur_baud = pl->test_baud;
        }
        j->io->flush_input(j);
        slip_dec_reset(&j->dec);
        job__log(j, JOB_LOG_INFO, "test: waiting up to %u ms for \"%s\" at %u baud",
                 pl->test_timeout_ms, pl->test_expect ? pl->test_expect : "", pl->test_baud);
        job__arm(j, pl->test_timeout_ms);
        return;
    case JOB_EV_TIMEOUT:
        job_test_report(j, false);
        job_fail(j, EST_CLASS_TEST_FAILED, EST_ETEST,
                 "the application did not print \"%s\" within %u ms after the reset (%zu bytes of "
                 "output at %u baud: see the test output)",
                 pl->test_expect ? pl->test_expect : "", pl->test_timeout_ms,
                 j->rep.test_output_len, pl->test_baud);
        return;
    case JOB_EV_RESP:
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return;
    }
}

static void st_closing(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->awaiting = false;
        j->watch_banner = false;
        stub_put(j->stub_img);
        j->stub_img = NULL;
        job__disarm(j);
        if (j->work_pending) job__leave_prep(j); /* the shared preparation goes on for other jobs */
        if (j->io_active && !j->io_close_sent) {
            j->io_close_sent = true;
            j->io->close(j);
        }
        job__arm(j, job_state_timeout_ms(JOB_ST_CLOSING));
        break;
    case JOB_EV_IO_CLOSED:
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED: break;
    case JOB_EV_TIMEOUT:
        /* A port that never confirms its close must not hold the job forever; a running
         * worker must still be waited for (it owns job memory). */
        if (j->io_active) {
            job__log(j, JOB_LOG_WARN, "port %s did not confirm its close; finishing anyway",
                     j->spec);
            j->io_active = false;
            j->io_abandoned = true;
        }
        break;
    case JOB_EV_RESP:
    case JOB_EV_RAW: return;
    }
    if (!j->io_active && !j->work_pending) job_enter(j, JOB_ST_DONE);
}

static void st_done(job_t *j, job_event_t ev)
{
    if (ev != JOB_EV_ENTER) return;
    j->rep.finished_ms = job__now_ms(j);
    if (j->rep.result == JOB_RESULT_NONE) j->rep.result = JOB_RESULT_FAIL;
    job__free_prep(&j->prep);
    job__finish(j);
}

void job_step(job_t *j, job_event_t ev)
{
    switch (j->st) {
    case JOB_ST_IDLE: return;
    case JOB_ST_OPEN: st_open(j, ev); return;
    case JOB_ST_RESET: st_reset(j, ev); return;
    case JOB_ST_SYNC: st_sync(j, ev); return;
    case JOB_ST_DETECT: st_detect(j, ev); return;
    case JOB_ST_READ_EFUSE: st_read_efuse(j, ev); return;
    case JOB_ST_STUB: st_stub(j, ev); return;
    case JOB_ST_BAUD: st_baud(j, ev); return;
    case JOB_ST_ATTACH: st_attach(j, ev); return;
    case JOB_ST_FLASH_ID: st_flash_id(j, ev); return;
    case JOB_ST_PARAMS: st_params(j, ev); return;
    case JOB_ST_ERASE: st_erase(j, ev); return;
    case JOB_ST_PREPARE: st_prepare(j, ev); return;
    case JOB_ST_COMPARE: st_compare(j, ev); return;
    case JOB_ST_BEGIN: st_begin(j, ev); return;
    case JOB_ST_DATA: st_data(j, ev); return;
    case JOB_ST_VERIFY: st_verify(j, ev); return;
    case JOB_ST_READ: st_read(j, ev); return;
    case JOB_ST_AFTER_RESET: st_after_reset(j, ev); return;
    case JOB_ST_TEST: st_test(j, ev); return;
    case JOB_ST_CLOSING: st_closing(j, ev); return;
    case JOB_ST_DONE: st_done(j, ev); return;
    case JOB_ST__COUNT: return;
    }
}

void job_enter(job_t *j, job_state_t next)
{
    job_state_t prev = j->st;
    uint64_t now = job__now_ms(j);
    if (prev < JOB_ST__COUNT) j->rep.state_ms[prev] += now - j->st_enter_ms;
    j->st_enter_ms = now;
    j->st = next;
    j->tries = 0;
    j->step = 0;
    j->restarts = 0;
    j->draining = false;
    j->raw_mode = false; /* raw frames belong to the state that asked for them */
    job__disarm(j);
    if (j->cbs.state_cb) j->cbs.state_cb(j, prev, next);
    job_step(j, JOB_EV_ENTER);
}
