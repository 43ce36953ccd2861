/* SPDX-License-Identifier: MIT */
/* job_connect.c — the connect phase of the job: OPEN, RESET (DTR/RTS sequences as timer steps),
 * SYNC, DETECT and READ_EFUSE (MAC, revision, console port, watchdogs), and the text seen while
 * connecting (boot log, brown-out banner). Must not: block, do I/O except through job.c. */
#include "job_sm.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SYNC tries per connect attempt: 1 + the state's retry budget = 5, as esptool */
#define SYNC_TRIES (job_state_retries(JOB_ST_SYNC) + 1)
#define SYNC_PAUSE_MS 50 /* pause after a failed SYNC try (esptool) */
#define SYNC_REPLIES 8   /* replies to one SYNC (PROTOCOL.md §4.2) */
#define SYNC_REST_MS 100 /* wait for each further SYNC reply after the first */

/* ---- reset sequences (PROTOCOL.md §2.2), run as timer steps ---- */

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

/* ---- raw text: boot-log classification and brown-out detection ---- */

static bool job_bootlog_has(const job_t *j, const char *needle)
{
    return memmem(j->bootlog, j->bootlog_len, needle, strlen(needle)) != NULL;
}

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
    /* Secure Download Mode logs say "download(secure mode)" instead (PROTOCOL.md §2.2) */
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

/* ---- OPEN ---- */

void job_st_open(job_t *j, job_event_t ev)
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
    default: job_bad_event(j, ev); return;
    }
}

/* ---- RESET (and AFTER_RESET's pulse) ---- */

/* Run reset steps until one waits or the sequence ends. Returns true when the sequence ended. */
bool job_run_reset_steps(job_t *j)
{
    const rs_strategy_t *s = job_reset_strategy(j);
    for (;;) {
        const rs_step_t *st = &s->seq[j->rs_idx];
        int rc = 0;
        switch (st->op) {
        case RS_END: return true;
        case RS_WAIT:
            j->rs_idx++;
            job__arm(j, st->ms);
            return false;
        case RS_WAIT_DELAY:
            j->rs_idx++;
            job__arm(j, s->delay_ms);
            return false;
        case RS_LINES: rc = j->io->set_lines(j, st->a, st->b); break;
        case RS_DTR: rc = j->io->set_lines(j, st->a, -1); break;
        case RS_RTS: rc = j->io->set_lines(j, -1, st->a); break;
        }
        j->rs_idx++;
        if (rc == UV_ENOTSUP) {
            /* esptool warns once and goes on without reset (PROTOCOL.md §2.3) */
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

void job_st_reset(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        job_flush_rx(j);
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
    default: job_bad_event(j, ev); return;
    }
}

/* ---- SYNC ---- */

static void job_send_sync(job_t *j)
{
    j->u.sync.phase = SYNC_AWAIT_FIRST;
    j->req_len = cmd_build_sync(j->req, sizeof j->req);
    job_send_or_fail(j, CMD_SYNC, 0, job_state_timeout_ms(JOB_ST_SYNC));
}

/* Wait for the rest of the 8 replies to one SYNC (PROTOCOL.md §4.2, §14.3). */
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

static void job_sync_reply(job_t *j)
{
    if (j->u.sync.phase == SYNC_COLLECT) {
        j->sync_zero = j->sync_zero && j->resp.value == 0;
        if (++j->u.sync.replies >= SYNC_REPLIES)
            job_synced(j);
        else
            job_sync_await_rest(j);
        return;
    }
    /* esptool counts any SYNC reply; a non-zero status is treated as a failed try here */
    if (j->resp.status != 0) {
        job_st_sync(j, JOB_EV_TIMEOUT);
        return;
    }
    j->rep.sync_attempts = j->attempt + 1;
    /* A stub answers SYNC with value 0, the ROM with a non-zero value: a stub left running by an
     * earlier job is not uploaded again. esptool decides from all 8 replies of the successful
     * SYNC (sync_stub_detected &= val == 0 for each), not from the first. */
    j->sync_zero = j->resp.value == 0;
    j->u.sync.phase = SYNC_COLLECT;
    j->u.sync.replies = 1;
    job_sync_await_rest(j);
}

static void job_sync_timeout(job_t *j)
{
    switch (j->u.sync.phase) {
    case SYNC_COLLECT: /* fewer than 8 replies (a lossy link): decide from those seen */
        job_synced(j);
        return;
    case SYNC_AWAIT_FIRST:
        j->awaiting = false;
        j->tries++;
        if (j->tries < SYNC_TRIES) {
            j->u.sync.phase = SYNC_PAUSE; /* pause, then the next try */
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
    case SYNC_PAUSE:
        job_flush_rx(j); /* esptool flushes before each try */
        job_send_sync(j);
        return;
    }
}

void job_st_sync(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER: job_send_sync(j); return;
    case JOB_EV_RESP: job_sync_reply(j); return;
    case JOB_EV_TIMEOUT: job_sync_timeout(j); return;
    default: job_bad_event(j, ev); return;
    }
}

/* ---- DETECT ---- */

/* The detected chip is not the plan's: fails the job (wrong_chip) and returns true. */
static bool job_wrong_chip(job_t *j)
{
    if (j->plan->chip == CHIP_UNKNOWN || j->plan->chip == j->chip->id) return false;
    job_fail(j, EST_CLASS_WRONG_CHIP, EST_ECHIP, "this chip is %s, not %s", j->chip->pretty,
             chip_get(j->plan->chip)->pretty);
    return true;
}

static void job_detected(job_t *j, const chip_info_t *c, const char *how)
{
    j->chip = c;
    j->rep.chip = c;
    j->status_len = c->rom_status_len;
    job__log(j, JOB_LOG_INFO, "chip is %s (%s)", c->pretty, how);
    /* SDM: no READ_REG, so no MAC, no flash ID, no MD5 (PROTOCOL.md §4.7): the ROM's own path,
     * recorded as not verified (job_security.c) */
    if (j->rep.have_sec_info && (j->rep.sec_flags & SEC_FLAG_SDM) && !job_sec_sdm_begin(j, c))
        return;
    /* a wrong chip is refused after its MAC and revision are read (job_identify_done), so
     * that a rejected board can be traced; in SDM nothing can be read: refused now */
    if (j->rep.have_sec_info && (j->rep.sec_flags & SEC_FLAG_SDM) && job_wrong_chip(j)) return;
    job_enter(j, JOB_ST_READ_EFUSE);
}

static void job_detect_secinfo(job_t *j)
{
    cmd_secinfo_t si;
    if (j->resp.status == 0 && cmd_parse_secinfo(&j->resp, &si) == 0) {
        const chip_info_t *c;
        j->rep.have_sec_info = true;
        j->rep.sec_flags = si.flags;
        job_sec_keep_secinfo(j, j->resp.out, j->resp.out_len);
        c = si.has_chip_id ? chip_by_image_id(si.chip_id) : chip_get(CHIP_ESP32S2);
        if (c) {
            job_detected(j, c, "GET_SECURITY_INFO chip ID");
            return;
        }
        job__log(j, JOB_LOG_DEBUG, "unknown chip ID %u; trying the magic word", si.chip_id);
    }
    /* ESP8266 / ESP32 ROMs reject the command; drain the extra error frames first */
    j->u.detect = DETECT_DRAIN;
    job__arm(j, UNSUPP_DRAIN_MS);
}

static void job_detect_magic(job_t *j)
{
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

void job_st_detect(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->u.detect = DETECT_SECINFO;
        j->watch_banner = true;
        j->banner_len = 0;
        j->req_len = cmd_build_get_security_info(j->req, sizeof j->req);
        job_send_or_fail(j, CMD_GET_SECURITY_INFO, JOB_SECINFO_OUT, job_state_timeout_ms(j->st));
        return;
    case JOB_EV_RESP:
        switch (j->u.detect) {
        case DETECT_SECINFO: job_detect_secinfo(j); return;
        case DETECT_MAGIC: job_detect_magic(j); return;
        case DETECT_DRAIN: return; /* residue of the refused command */
        }
        return;
    case JOB_EV_TIMEOUT:
        if (j->u.detect == DETECT_SECINFO && j->tries < job_state_retries(j->st)) {
            job_retry_or_fail(j, "chip detection");
            return;
        }
        if (j->u.detect == DETECT_MAGIC) {
            job_retry_or_fail(j, "chip magic word");
            return;
        }
        j->awaiting = false;
        job_flush_rx(j);
        j->u.detect = DETECT_MAGIC;
        j->tries = 0;
        j->req_len = cmd_build_read_reg(j->req, sizeof j->req, CHIP_MAGIC_REG);
        job_send_or_fail(j, CMD_READ_REG, 0, job_state_timeout_ms(j->st));
        return;
    default: job_bad_event(j, ev); return;
    }
}

/* ---- READ_EFUSE: three register programs (PROTOCOL.md §16): MAC and revision words; the ROM's
 * console variable UARTDEV_BUF_NO; on USB-Serial/JTAG the watchdog program ---- */

static void job_efuse_next(job_t *j)
{
    job_prefetch_images(j);
    job_enter(j, JOB_ST_STUB);
}

/* then the security read-out (job_security.c) */
static void job_efuse_done(job_t *j)
{
    job_sec_read(j, job_efuse_next);
}

static void job_wdt_done(job_t *j, job_rp_result_t res)
{
    if (res != JOB_RP_DONE) {
        job__log(j, JOB_LOG_WARN,
                 "the ROM refused a watchdog register access: the watchdogs stay on (a long "
                 "ROM-mode job may be reset)");
        job_efuse_done(j);
        return;
    }
    job__log(j, JOB_LOG_INFO,
             "ROM console on USB-Serial/JTAG: RTC watchdog off, super watchdog fed automatically "
             "(the ROM does not feed them there)");
    job_efuse_done(j);
}

/* Which port the ROM talks on. USB-OTG limits blocks to 0x800 bytes (PROTOCOL.md §4.3);
 * USB-Serial/JTAG leaves the RTC and super watchdogs running in ROM mode, so esptool turns them
 * off right after connecting unless a stub already runs (PROTOCOL.md §14.10, _post_connect()).
 * Decided per job from the chip itself, as esptool does: no VID:PID guessing. */
static void job_console_done(job_t *j, job_rp_result_t res)
{
    chip_console_t k;
    unsigned no = j->rp.run.slots[0] & 0xFF; /* esptool: read_reg(UARTDEV_BUF_NO) & 0xFF */
    if (res != JOB_RP_DONE) {
        job__log(j, JOB_LOG_WARN, "the ROM refused to read its console variable: assuming a UART");
        job_efuse_done(j);
        return;
    }
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
    if (j->usb_jtag && !j->sync_zero && chip_prog_wdt_disable(j->chip, &j->rp.prog)) {
        j->u.efuse = EFUSE_WDT;
        job_rp_start(j, "watchdog registers", job_wdt_done);
        return;
    }
    job_efuse_done(j);
}

static void job_identify_done(job_t *j, job_rp_result_t res)
{
    const uint32_t *slots = j->rp.run.slots;
    char m[18];
    if (res != JOB_RP_DONE) {
        if (!job_wrong_chip(j)) job_nak(j, "of an eFuse word");
        return;
    }
    if (chip_mac_decode(j->chip, slots + CHIP_RP_MAC, j->rep.mac) == 0) {
        j->rep.have_mac = true;
        job__log(j, JOB_LOG_INFO, "MAC %s", job_fmt_mac(j->rep.mac, m));
    } else {
        job__log(j, JOB_LOG_WARN, "MAC eFuse words have an unknown OUI; MAC not recorded");
    }
    j->rep.chip_rev = chip_rev_decode(j->chip, slots + CHIP_RP_REV);
    j->rep.have_rev = true;
    job__log(j, JOB_LOG_INFO, "chip revision v%u.%u", j->rep.chip_rev / 100, j->rep.chip_rev % 100);
    if (job_wrong_chip(j)) return; /* after the MAC: a refused board can be traced */
    j->usb_otg = j->usb_jtag = false;
    j->ram_block = j->chip->ram_block;
    j->stub_block = j->chip->stub_flash_block;
    if (!chip_prog_console(j->chip, j->rep.chip_rev, &j->rp.prog)) {
        job_efuse_done(j);
        return;
    }
    j->u.efuse = EFUSE_CONSOLE;
    job_rp_start(j, "ROM console variable", job_console_done);
}

/* Only ENTER reaches the handler: the register-program runner takes the replies and timeouts. */
void job_st_read_efuse(job_t *j, job_event_t ev)
{
    if (ev != JOB_EV_ENTER) {
        job_bad_event(j, ev);
        return;
    }
    if (j->sec.sdm) { /* no register reads: no MAC, revision or console variable */
        j->chip = &j->sec.sdm_chip;
        j->ram_block = j->chip->ram_block;
        j->stub_block = j->chip->stub_flash_block;
        job_efuse_done(j);
        return;
    }
    j->u.efuse = EFUSE_IDENTIFY;
    chip_prog_identify(j->chip, &j->rp.prog);
    job_rp_start(j, "eFuse read", job_identify_done);
}
