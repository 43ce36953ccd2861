/* SPDX-License-Identifier: MIT */
/* job.c — libuv glue of a flashing job: lifecycle, the one state timer, request framing and
 * writing, received bytes → SLIP frames → responses, the default I/O through port.h, and the
 * worker-thread preparation of images (pad, patch, MD5, deflate).
 * Must not: decide what to do next (job_sm.c does) or block the loop. */
#include "job_int.h"
#include "job_sm.h" /* job_has_test */

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image.h"
#include "port.h"

static const struct {
    const char *name, *what;
    uint32_t timeout_ms;
    unsigned retries;
} job_states[] = {
#define XX(e, name, tmo, retries, what) {name, what, tmo, retries},
    JOB_STATE_MAP(XX)
#undef XX
};

const char *job_state_name(job_state_t s)
{
    return (unsigned)s < JOB_ST__COUNT ? job_states[s].name : "?";
}
const char *job_state_what(job_state_t s)
{
    return (unsigned)s < JOB_ST__COUNT ? job_states[s].what : "?";
}
uint32_t job_state_timeout_ms(job_state_t s)
{
    return (unsigned)s < JOB_ST__COUNT ? job_states[s].timeout_ms : 0;
}
unsigned job_state_retries(job_state_t s)
{
    return (unsigned)s < JOB_ST__COUNT ? job_states[s].retries : 0;
}

const char *job_result_name(job_result_t r)
{
    switch (r) {
    case JOB_RESULT_NONE: return "none";
    case JOB_RESULT_PASS: return "pass";
    case JOB_RESULT_FAIL: return "fail";
    case JOB_RESULT_CANCELLED: return "cancelled";
    }
    return "?";
}

const char *job_fmt_mac(const uint8_t mac[6], char *buf)
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
    return buf;
}

/* ---- default I/O: port.h ---- */

static void job_port_open_cb(port_t *p, int status)
{
    job_io_opened(port_data(p), status);
}
static void job_port_read_cb(port_t *p, const uint8_t *buf, size_t n)
{
    job_io_read(port_data(p), buf, n);
}
static void job_port_error_cb(port_t *p, int status)
{
    job_io_error(port_data(p), status);
}
static void job_port_close_cb(port_t *p)
{
    job_t *j = port_data(p);
    j->io_data = NULL;
    job_io_closed(j);
}

static const port_cbs_t job_port_cbs = {
    .open_cb = job_port_open_cb,
    .read_cb = job_port_read_cb,
    .error_cb = job_port_error_cb,
    .close_cb = job_port_close_cb,
};

static int job_port_open(job_t *j, const char *spec, uint32_t baud)
{
    port_t *p = NULL;
    int rc = port_open(j->loop, spec, baud, &job_port_cbs, j, &p);
    if (rc == 0) j->io_data = p;
    return rc;
}
static int job_port_write(job_t *j, const uint8_t *buf, size_t n)
{
    return j->io_data ? port_write(j->io_data, buf, n) : UV_EBADF;
}
static int job_port_set_lines(job_t *j, int dtr, int rts)
{
    return j->io_data ? port_set_lines(j->io_data, dtr, rts) : UV_EBADF;
}
static int job_port_set_baud(job_t *j, uint32_t baud)
{
    return j->io_data ? port_set_baud(j->io_data, baud) : UV_EBADF;
}
static void job_port_flush_input(job_t *j)
{
    if (j->io_data) port_flush_input(j->io_data);
}
static void job_port_close(job_t *j)
{
    if (j->io_data) port_close(j->io_data);
}
/* Raw TCP carries bytes only: the far UART (ser2net raw, a Moxa in TCP-server mode) stays at its
 * configured rate whatever the chip is told. RFC 2217 asks the server (SET-BAUDRATE), which
 * cannot refuse synchronously. A tty or USB adapter is set to the rate and straight back: the
 * driver says whether it can do it, and no byte is in flight between two commands. */
static int job_port_check_baud(job_t *j, uint32_t baud)
{
    port_t *p = j->io_data;
    uint32_t cur;
    int rc, back;
    if (!p) return UV_EBADF;
    switch (port_kind(p)) {
    case PORT_KIND_TCP: return UV_ENOTSUP;
    case PORT_KIND_RFC2217: return 0;
    case PORT_KIND_SERIAL:
    case PORT_KIND_TTY: break;
    }
    cur = port_baud(p);
    if (baud == cur) return 0;
    rc = port_set_baud(p, baud);
    back = port_set_baud(p, cur);
    return rc != 0 ? rc : back;
}

static const job_io_t job_port_io = {
    .open = job_port_open,
    .write = job_port_write,
    .set_lines = job_port_set_lines,
    .set_baud = job_port_set_baud,
    .flush_input = job_port_flush_input,
    .close = job_port_close,
    .check_baud = job_port_check_baud,
};

/* ---- lifecycle ---- */

job_t *job_new(uv_loop_t *loop, const char *port_spec, const plan_t *plan, const job_cbs_t *cbs,
               const job_io_t *io, void *data)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->spec = strdup(port_spec);
    if (!j->spec) {
        free(j);
        return NULL;
    }
    j->loop = loop;
    j->plan = plan;
    if (cbs) j->cbs = *cbs;
    j->io = io ? io : &job_port_io;
    j->data = data;
    j->st = JOB_ST_IDLE;
    j->lines_ok = true;
    slip_dec_init(&j->dec, j->rxbuf, sizeof j->rxbuf);
    uv_timer_init(loop, &j->timer);
    return j;
}

int job_start(job_t *j)
{
    if (j->started) return UV_EALREADY;
    j->started = true;
    j->rep.started_ms = uv_now(j->loop);
    j->st_enter_ms = j->rep.started_ms;
    job_enter(j, JOB_ST_OPEN);
    return 0;
}

void job_cancel(job_t *j)
{
    if (!j->started) {
        /* never started: finish right away through the normal path */
        j->started = true;
        j->rep.started_ms = uv_now(j->loop);
        j->st_enter_ms = j->rep.started_ms;
    }
    if (j->st == JOB_ST_CLOSING || j->st == JOB_ST_DONE || j->failing) return;
    job_fail(j, EST_CLASS_CANCELLED, EST_ECANCELED, "cancelled in state %s", job_state_name(j->st));
}

static void job_timer_closed_cb(uv_handle_t *h)
{
    job_t *j = container_of((uv_timer_t *)h, job_t, timer);
    j->finished = true;
    if (j->cbs.done_cb) j->cbs.done_cb(j, &j->rep);
}

void job__finish(job_t *j)
{
    if (j->timer_closing) return;
    j->timer_closing = true;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, job_timer_closed_cb);
}

static void job_unstarted_closed_cb(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, job_t, timer));
}

void job_free(job_t *j)
{
    if (!j) return;
    /* A started job must have finished (all handles closed) before it is freed. */
    if (j->started && !j->finished) return;
    if (j->io_abandoned)
        return; /* its port may still call back into it: leak rather than use after free */
    job__free_prep(&j->prep);
    stub_put(j->stub_img);
    j->stub_img = NULL;
    if (j->rd_md5) EVP_MD_CTX_free(j->rd_md5);
    j->rd_md5 = NULL;
    free(j->spec);
    if (!j->started) {
        /* the timer was initialised but never closed: close it and free from its callback */
        j->finished = true;
        j->cbs.done_cb = NULL;
        if (!j->timer_closing) {
            j->timer_closing = true;
            uv_close((uv_handle_t *)&j->timer, job_unstarted_closed_cb);
        }
        return;
    }
    free(j);
}

void *job_data(const job_t *j)
{
    return j->data;
}
void *job_io_data(const job_t *j)
{
    return j->io_data;
}
void job_set_io_data(job_t *j, void *d)
{
    j->io_data = d;
}
job_state_t job_state(const job_t *j)
{
    return j->st;
}
const job_report_t *job_report(const job_t *j)
{
    return &j->rep;
}
const char *job_port_spec(const job_t *j)
{
    return j->spec;
}

/* ---- timer, logging, sending ---- */

uint64_t job__now_ms(const job_t *j)
{
    return uv_now(j->loop);
}

static void job_timer_cb(uv_timer_t *t)
{
    job_t *j = container_of(t, job_t, timer);
    job_step(j, JOB_EV_TIMEOUT);
}

void job__arm(job_t *j, uint32_t ms)
{
    if (!j->timer_closing) uv_timer_start(&j->timer, job_timer_cb, ms, 0);
}

void job__disarm(job_t *j)
{
    uv_timer_stop(&j->timer);
}

void job__log(job_t *j, job_log_level_t lvl, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!j->cbs.log_cb) return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    j->cbs.log_cb(j, lvl, buf);
}

int job__send(job_t *j, uint8_t op, size_t out_len, uint32_t timeout_ms)
{
    static uint8_t enc[SLIP_ENC_BOUND(CMD_MAX_REQ)]; /* loop thread only; copied by write */
    size_t n = slip_encode(enc, sizeof enc, j->req, j->req_len);
    int rc;
    if (n == 0) return EST_EPROTO;
    j->expect_op = op;
    j->expect_out = out_len;
    j->awaiting = true;
    j->req_timeout_ms = timeout_ms;
    j->rep.bytes_sent += n;
    rc = j->io->write(j, enc, n);
    if (rc != 0) return rc;
    job__arm(j, timeout_ms);
    return 0;
}

int job__send_raw(job_t *j, const uint8_t *buf, size_t n)
{
    uint8_t enc[SLIP_ENC_BOUND(64)];
    size_t e = n <= 64 ? slip_encode(enc, sizeof enc, buf, n) : 0;
    if (e == 0) return EST_EPROTO;
    j->rep.bytes_sent += e;
    return j->io->write(j, enc, e);
}

/* ---- receiving ---- */

static void job_frame_cb(void *ud, const uint8_t *frame, size_t len)
{
    job_t *j = ud;
    cmd_resp_t r;
    size_t out;

    if (j->raw_mode) {
        /* the stub's OHAI greeting and READ_FLASH data frames carry no response header */
        j->raw = frame;
        j->raw_len = len;
        job_step(j, JOB_EV_RAW);
        j->raw = NULL;
        j->raw_len = 0;
        return;
    }
    if (cmd_parse_resp(frame, len, 0, &r) != 0)
        return; /* noise, boot text, or a request echo: not a response */
    if (j->st == JOB_ST_RESET || j->st == JOB_ST_SYNC) j->saw_frame = true;
    if (!j->awaiting) return; /* stale (e.g. the extra SYNC replies) */
    if (r.op != j->expect_op) {
        /* The ROMs answer an unknown command with an "invalid message" status, not always
         * echoing the opcode (PROTOCOL.md §3.7), as esptool's command() assumes for any command. */
        if (cmd_resp_unsupported(&r)) {
            j->awaiting = false;
            j->resp = r;
            j->resp_unsupported = true;
            job__disarm(j);
            job_step(j, JOB_EV_RESP);
        }
        return;
    }
    out = j->expect_out == JOB_SECINFO_OUT ? cmd_secinfo_out_len(r.data_len) : j->expect_out;
    if (out && r.data_len >= out + 2 && cmd_parse_resp(frame, len, out, &r) != 0) return;
    j->awaiting = false;
    j->resp = r;
    j->resp_unsupported = r.status != 0 && cmd_resp_unsupported(&r);
    job__disarm(j);
    job_step(j, JOB_EV_RESP);
}

void job_io_read(job_t *j, const uint8_t *buf, size_t n)
{
    if (j->st == JOB_ST_CLOSING || j->st == JOB_ST_DONE) return;
    job__on_text(j, buf, n);
    if (j->st == JOB_ST_CLOSING || j->st == JOB_ST_DONE) return;
    slip_dec_feed(&j->dec, buf, n, job_frame_cb, j);
}

void job_io_opened(job_t *j, int status)
{
    if (status != 0) {
        /* the port closes itself after a failed open (port.h); don't close it again */
        j->io_close_sent = true;
    }
    j->open_status = status;
    job_step(j, JOB_EV_IO_OPENED);
}

void job_io_error(job_t *j, int status)
{
    if (j->st == JOB_ST_CLOSING || j->st == JOB_ST_DONE || j->failing) return;
    if (j->st == JOB_ST_AFTER_RESET && job_has_test(j)) {
        /* the application's output cannot be read from a port that went away (a reopen after
         * USB re-enumeration is not done) */
        job_fail(j, EST_CLASS_TEST_FAILED, EST_ETEST,
                 "the board was flashed and verified, but port %s went away during the reset "
                 "(%s): the post-flash test cannot read the application's output",
                 j->spec, uv_err_name(status));
        return;
    }
    if (j->st == JOB_ST_AFTER_RESET) {
        /* USB-Serial/JTAG and native-USB chips re-enumerate when reset: the work is done */
        job__log(j, JOB_LOG_INFO, "port %s went away during the final reset (%s)", j->spec,
                 uv_err_name(status));
        j->rep.result = JOB_RESULT_PASS;
        job_enter(j, JOB_ST_CLOSING);
        return;
    }
    if (status == UV_EOF || status == UV_EIO || status == UV_ENODEV || status == UV_ENXIO ||
        status == UV_ECONNRESET || status == UV_EPIPE)
        job_fail(j, EST_CLASS_PORT_GONE, status, "port %s disappeared (%s) in state %s", j->spec,
                 uv_err_name(status), job_state_name(j->st));
    else
        job_fail(j, EST_CLASS_PORT_ERROR, status, "port %s failed: %s", j->spec,
                 uv_strerror(status));
}

void job_io_closed(job_t *j)
{
    j->io_active = false;
    job_step(j, JOB_EV_IO_CLOSED);
}

/* ---- image preparation on a worker thread ---- */

static void job_md5(const uint8_t *d, size_t n, uint8_t out[16])
{
    unsigned int len = 16;
    EVP_Digest(d, n, out, &len, EVP_md5(), NULL);
}

/* How many bytes each JOB_ZGRAIN slice of the zlib stream inflates to. A job sums the slices of
 * its block size: esptool scales the per-block timeouts by a block's output (PROTOCOL.md §4.4), and
 * progress is reported in flash bytes. Counting per slice keeps one deflate valid for every block
 * size (ROM 1 KiB, stub 16 KiB or 2 KiB). */
static int job_count_block_output(job_prep_t *p)
{
    z_stream zs;
    uint8_t sink[16384];
    int rc = 0;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK) return -ENOMEM;
    for (size_t b = 0; b < p->nslices && rc == 0; b++) {
        size_t start = b * JOB_ZGRAIN;
        size_t n = p->zlen - start < JOB_ZGRAIN ? p->zlen - start : JOB_ZGRAIN;
        uLong before = zs.total_out;
        zs.next_in = p->z + start;
        zs.avail_in = (uInt)n;
        for (;;) {
            int zr;
            zs.next_out = sink;
            zs.avail_out = sizeof sink;
            zr = inflate(&zs, Z_NO_FLUSH);
            if (zr == Z_STREAM_END) break;
            if (zr != Z_OK && zr != Z_BUF_ERROR) {
                rc = EST_EIMAGE;
                break;
            }
            /* done with this slice once the input is used up and inflate has no more output */
            if (zs.avail_in == 0 && zs.avail_out != 0) break;
        }
        p->blk_out[b] = (uint32_t)(zs.total_out - before);
    }
    inflateEnd(&zs);
    return rc;
}

static void job_prep_work_cb(uv_work_t *w)
{
    job_cache_entry_t *e = container_of(w, job_cache_entry_t, work);
    job_prep_t *p = &e->p;
    size_t padded = (p->src_len + 3) & ~(size_t)3; /* esptool pads every file to 4 bytes */
    const char *why = NULL;
    int rc;

    p->data = malloc(padded);
    if (!p->data) {
        p->status = -ENOMEM;
        p->cls = EST_CLASS_INTERNAL;
        snprintf(p->msg, sizeof p->msg, "out of memory preparing image");
        return;
    }
    memcpy(p->data, p->src, p->src_len);
    memset(p->data + p->src_len, 0xFF, padded - p->src_len);
    p->len = padded;

    if (p->no_patch) {
        static const image_params_t keep = {-1, -1, -1};
        rc = image_patch_params(p->data, p->len, p->chip, p->offset, &keep, &why);
    } else {
        rc = image_patch_params(p->data, p->len, p->chip, p->offset, &p->params, &why);
    }
    if (rc < 0) {
        p->status = rc;
        p->cls = rc == EST_EUSAGE ? EST_CLASS_USAGE : EST_CLASS_IMAGE_INVALID;
        snprintf(p->msg, sizeof p->msg, "cannot patch flash parameters: %s", why ? why : "?");
        return;
    }
    p->patched = rc == 1;
    p->patch_note = why;
    /* the chip and revision check (PROTOCOL.md §11.3) is the job's: the revision is not part of the
     * key */
    p->have_info = p->data[0] == IMAGE_MAGIC &&
                   image_parse(p->data, p->len, p->chip->id == CHIP_ESP8266, &p->info) == 0;
    job_md5(p->data, p->len, p->md5);

    if (p->compress) {
        uLongf zcap = compressBound((uLong)p->len);
        p->z = malloc(zcap);
        if (!p->z || compress2(p->z, &zcap, p->data, (uLong)p->len, 9) != Z_OK) {
            p->status = -ENOMEM;
            p->cls = EST_CLASS_INTERNAL;
            snprintf(p->msg, sizeof p->msg, "deflate failed");
            return;
        }
        p->zlen = zcap;
        p->nslices = (p->zlen + JOB_ZGRAIN - 1) / JOB_ZGRAIN;
        p->blk_out = calloc(p->nslices, sizeof *p->blk_out);
        if (!p->blk_out || job_count_block_output(p) != 0) {
            p->status = -ENOMEM;
            p->cls = EST_CLASS_INTERNAL;
            snprintf(p->msg, sizeof p->msg, "deflate self-check failed");
            return;
        }
    }
    p->status = 0;
}

/* ---- the shared cache of prepared images (loop thread only) ---- */

#define JOB_CACHE_IDLE_BYTES (16u * 1024 * 1024) /* unreferenced entries kept at most */

static job_cache_entry_t *job_cache; /* most recently used first */
static uint64_t job_preps;           /* preparations started */

uint64_t job_prep_count(void)
{
    return job_preps;
}

static bool job_cache_match(const job_prep_t *a, const job_prep_t *b)
{
    return a->src_id == b->src_id && a->src_len == b->src_len && a->offset == b->offset &&
           a->chip == b->chip && a->no_patch == b->no_patch && a->params.mode == b->params.mode &&
           a->params.size_code == b->params.size_code &&
           a->params.freq_code == b->params.freq_code && a->compress == b->compress;
}

static void job_cache_entry_free(job_cache_entry_t *e)
{
    free(e->p.data);
    free(e->p.z);
    free(e->p.blk_out);
    free(e);
}

/* Drop unreferenced, finished entries beyond the idle budget, least recently used first. */
static void job_cache_trim(void)
{
    size_t idle = 0;
    job_cache_entry_t **pp = &job_cache;
    while (*pp) {
        job_cache_entry_t *e = *pp;
        if (e->refs == 0 && !e->running) {
            size_t bytes = e->p.len + e->p.zlen;
            if (idle + bytes > JOB_CACHE_IDLE_BYTES || e->p.status != 0) {
                *pp = e->next;
                job_cache_entry_free(e);
                continue;
            }
            idle += bytes;
        }
        pp = &e->next;
    }
}

/* Hand a ready entry's outputs to a job (shared, read-only) and take a reference. */
static void job_cache_give(job_cache_entry_t *e, job_t *j)
{
    job_prep_t *p = &j->prep;
    e->refs++;
    p->entry = e;
    p->status = e->p.status;
    p->cls = e->p.cls;
    memcpy(p->msg, e->p.msg, sizeof p->msg);
    p->data = e->p.data;
    p->len = e->p.len;
    p->patched = e->p.patched;
    p->patch_note = e->p.patch_note;
    memcpy(p->md5, e->p.md5, sizeof p->md5);
    p->have_info = e->p.have_info;
    p->info = e->p.info;
    p->z = e->p.z;
    p->zlen = e->p.zlen;
    p->blk_out = e->p.blk_out;
    p->nslices = e->p.nslices;
}

static void job_prep_after_cb(uv_work_t *w, int status)
{
    job_cache_entry_t *e = container_of(w, job_cache_entry_t, work);
    job_t *j;
    e->running = false;
    if (status != 0 && e->p.status == 0) {
        e->p.status = status;
        e->p.cls = EST_CLASS_INTERNAL;
        snprintf(e->p.msg, sizeof e->p.msg, "image preparation failed: %s", uv_strerror(status));
    }
    while ((j = e->waiters)) {
        e->waiters = j->cache_next;
        j->cache_next = NULL;
        j->work_pending = false;
        job_cache_give(e, j);
        job_step(j, JOB_EV_WORK_DONE);
    }
    job_cache_trim();
}

static job_cache_entry_t *job_cache_find(const job_prep_t *in)
{
    job_cache_entry_t **pp, *e;
    for (pp = &job_cache; (e = *pp); pp = &e->next) {
        if (job_cache_match(&e->p, in)) {
            *pp = e->next; /* move to the front: most recently used */
            e->next = job_cache;
            job_cache = e;
            return e;
        }
    }
    return NULL;
}

static int job_cache_start(uv_loop_t *loop, const job_prep_t *in, job_cache_entry_t **out)
{
    job_cache_entry_t *e = calloc(1, sizeof *e);
    int rc;
    if (!e) return UV_ENOMEM;
    e->p = *in; /* the inputs */
    e->p.entry = NULL;
    e->running = true;
    rc = uv_queue_work(loop, &e->work, job_prep_work_cb, job_prep_after_cb);
    if (rc != 0) {
        free(e);
        return rc;
    }
    job_preps++;
    e->next = job_cache;
    job_cache = e;
    *out = e;
    return 0;
}

int job__queue_prep(job_t *j)
{
    job_cache_entry_t *e = job_cache_find(&j->prep);
    int rc;
    if (e) {
        if (e->running) {
            j->cache_next = e->waiters;
            e->waiters = j;
            j->work_pending = true;
            return 0;
        }
        job_cache_give(e, j);
        job_step(j, JOB_EV_WORK_DONE);
        return 0;
    }
    rc = job_cache_start(j->loop, &j->prep, &e);
    if (rc != 0) return rc;
    e->waiters = j;
    j->cache_next = NULL;
    j->work_pending = true;
    return 0;
}

int job__prefetch_prep(job_t *j)
{
    job_cache_entry_t *e;
    if (job_cache_find(&j->prep)) return 0;
    return job_cache_start(j->loop, &j->prep, &e);
}

void job__leave_prep(job_t *j)
{
    for (job_cache_entry_t *e = job_cache; e; e = e->next) {
        for (job_t **pp = &e->waiters; *pp; pp = &(*pp)->cache_next) {
            if (*pp == j) {
                *pp = j->cache_next;
                j->cache_next = NULL;
                j->work_pending = false;
                return;
            }
        }
    }
}

void job__free_prep(job_prep_t *p)
{
    if (p->entry) {
        p->entry->refs--;
        p->entry = NULL;
        job_cache_trim();
    }
    p->data = NULL;
    p->z = NULL;
    p->blk_out = NULL;
    p->len = p->zlen = p->nslices = 0;
}
