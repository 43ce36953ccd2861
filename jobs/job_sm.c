/* SPDX-License-Identifier: MIT */
/* job_sm.c — the flashing job's state machine: the dispatcher and the helpers every state uses.
 * One device goes from port open through reset, sync, chip detection, eFuse reads, stub upload,
 * baud change, flash attach and ID, parameters, and per image prepare → [compare] → begin →
 * data… → verify (or one read / erase), to the final reset. States, timeouts and retry budgets
 * are listed once in job.h (JOB_STATE_MAP; docs/PROTOCOL.md shows the same table). The handlers
 * live by phase in job_connect.c, job_link.c, job_flash.c, job_write.c, job_read.c and
 * job_finish.c; the table below says which events each state handles, so ignored events are
 * dropped here, in one place. Every transition goes through job_enter(). Must not: block, do
 * I/O except through job.c. */
#include "job_sm.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the state table ---- */

typedef struct job_state_def_s {
    void (*handler)(job_t *j, job_event_t ev);
    unsigned handles; /* JOB_EVS() of the events the handler takes; the rest are dropped */
} job_state_def_t;

#define EV(x) JOB_EVS(JOB_EV_##x)
#define EV_REQ (EV(ENTER) | EV(RESP) | EV(TIMEOUT)) /* states that send requests */

/* A switch with no default: a new state without an entry here is a compiler warning (-Wswitch). */
static job_state_def_t job_state_def(job_state_t s)
{
    switch (s) {
    case JOB_ST_IDLE: return (job_state_def_t){NULL, 0};
    case JOB_ST_OPEN:
        return (job_state_def_t){job_st_open, EV(ENTER) | EV(IO_OPENED) | EV(TIMEOUT)};
    case JOB_ST_RESET: return (job_state_def_t){job_st_reset, EV(ENTER) | EV(TIMEOUT)};
    case JOB_ST_SYNC: return (job_state_def_t){job_st_sync, EV_REQ};
    case JOB_ST_DETECT: return (job_state_def_t){job_st_detect, EV_REQ};
    case JOB_ST_READ_EFUSE: return (job_state_def_t){job_st_read_efuse, EV(ENTER)};
    case JOB_ST_STUB: return (job_state_def_t){job_st_stub, EV_REQ | EV(RAW)};
    case JOB_ST_BAUD: return (job_state_def_t){job_st_baud, EV_REQ};
    case JOB_ST_ATTACH: return (job_state_def_t){job_st_attach, EV_REQ};
    case JOB_ST_FLASH_ID: return (job_state_def_t){job_st_flash_id, EV(ENTER)};
    case JOB_ST_PARAMS: return (job_state_def_t){job_st_params, EV_REQ};
    case JOB_ST_ERASE: return (job_state_def_t){job_st_erase, EV_REQ};
    case JOB_ST_PREPARE: return (job_state_def_t){job_st_prepare, EV(ENTER) | EV(WORK_DONE)};
    case JOB_ST_COMPARE: return (job_state_def_t){job_st_compare, EV_REQ};
    case JOB_ST_BEGIN: return (job_state_def_t){job_st_begin, EV_REQ};
    case JOB_ST_DATA: return (job_state_def_t){job_st_data, EV_REQ};
    case JOB_ST_VERIFY: return (job_state_def_t){job_st_verify, EV_REQ};
    case JOB_ST_READ: return (job_state_def_t){job_st_read, EV_REQ | EV(RAW)};
    case JOB_ST_AFTER_RESET: return (job_state_def_t){job_st_after_reset, EV_REQ};
    case JOB_ST_TEST: return (job_state_def_t){job_st_test, EV(ENTER) | EV(TIMEOUT)};
    case JOB_ST_CLOSING:
        return (job_state_def_t){job_st_closing, EV(ENTER) | EV(TIMEOUT) | EV(IO_CLOSED) |
                                                     EV(WORK_DONE) | EV(IO_OPENED)};
    case JOB_ST_DONE: return (job_state_def_t){job_st_done, EV(ENTER)};
    case JOB_ST__COUNT: break;
    }
    assert(!"job state out of range");
    return (job_state_def_t){NULL, 0};
}

void job_step(job_t *j, job_event_t ev)
{
    job_state_def_t d = job_state_def(j->st);
    if (j->rp.active && job_rp_event(j, ev)) return; /* a register program owns RESP/TIMEOUT */
    if (!(d.handles & JOB_EVS(ev))) return;          /* ignored in this state */
    d.handler(j, ev);
}

void job_bad_event(const job_t *j, job_event_t ev)
{
    (void)j, (void)ev;
    assert(!"event in a state's mask without a case in its handler");
}

void job_enter(job_t *j, job_state_t next)
{
    job_state_t prev = j->st;
    uint64_t now = job__now_ms(j);
    assert(next < JOB_ST__COUNT);
    if (prev < JOB_ST__COUNT) j->rep.state_ms[prev] += now - j->st_enter_ms;
    j->st_enter_ms = now;
    j->st = next;
    j->tries = 0;
    j->rs_idx = 0;
    memset(&j->u, 0, sizeof j->u);
    j->restarts = 0;
    j->rp.active = false;
    j->rp.draining = false;
    j->raw_mode = false; /* raw frames belong to the state that asked for them */
    job__disarm(j);
    if (j->cbs.state_cb) j->cbs.state_cb(j, prev, next);
    job_step(j, JOB_EV_ENTER);
}

/* ---- helpers ---- */

uint32_t job_timeout_per_mb(uint32_t secs_per_mb, uint64_t bytes)
{
    /* esptool: max(3 s, secs × bytes / 10^6), "MB" = 10^6 bytes (PROTOCOL.md §4.4) */
    uint64_t ms = (uint64_t)secs_per_mb * bytes / 1000;
    return ms < 3000 ? 3000 : ms > 240000 ? 240000 : (uint32_t)ms;
}

/* Stub writes: a block is ACKed on receipt and written while the next one travels, so the ACK
 * of block n+1 (or END) waits for block n's erase and write. esptool master allows 40 s/MB over
 * the block's output plus an erase allowance of (ceil(out / 32 KiB) + 1) × 64 KiB (PROTOCOL.md
 * §4.4). */
uint32_t job_stub_wait_ms(uint64_t out)
{
    return job_timeout_per_mb(40, out + ((out + 32767) / 32768 + 1) * 65536);
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

/* A device NAK: keep the command and status for the report (PROTOCOL.md §3.6). */
void job_nak(job_t *j, const char *what)
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

void job_send_or_fail(job_t *j, uint8_t op, size_t out_len, uint32_t timeout_ms)
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

void job_retry_or_fail(job_t *j, const char *what)
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

void job_flush_rx(job_t *j)
{
    j->io->flush_input(j);
    slip_dec_reset(&j->dec);
}

bool job_secure_boot(const job_t *j)
{
    return j->rep.have_sec_info && (j->rep.sec_flags & SEC_FLAG_SECURE_BOOT);
}

bool job_has_test(const job_t *j)
{
    return j->plan->test && j->plan->op == PLAN_OP_FLASH && j->plan->n_images > 0;
}

void job_pass(job_t *j)
{
    j->rep.result = JOB_RESULT_PASS;
    job_enter(j, JOB_ST_CLOSING);
}
