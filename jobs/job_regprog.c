/* SPDX-License-Identifier: MIT */
/* job_regprog.c — the one runner of register programs (regprog.h) for every state: it sends
 * what the interpreter asks for as READ_REG / WRITE_REG, feeds the replies back, and applies one
 * set of rules (docs/PROTOCOL.md §16):
 *  - one request at a time, each with the same reply timeout;
 *  - a request is never re-sent by itself after a timeout: READ_REG replies carry no sequence
 *    number, so a late reply to a re-sent read would be taken for the next register's value.
 *    Instead the runner stops awaiting (late replies are dropped), waits UNSUPP_DRAIN_MS, drops
 *    the input, and runs the whole program again, within the restart budget;
 *  - a refused request (non-zero status) ends the program with JOB_RP_NAK (j->resp kept);
 *  - a poll that never matches ends it with JOB_RP_POLL_LIMIT.
 * Must not: interpret the values (the chip table's decode hooks do). */
#include "job_sm.h"

#include <string.h>

static void job_rp_send(job_t *j)
{
    rp_req_t rq = rp_next(&j->rp.run);
    switch (rq.kind) {
    case RP_REQ_READ:
        j->req_len = cmd_build_read_reg(j->req, sizeof j->req, rq.addr);
        job_send_or_fail(j, CMD_READ_REG, 0, j->rp.timeout_ms);
        return;
    case RP_REQ_WRITE:
        j->req_len = cmd_build_write_reg(j->req, sizeof j->req, rq.addr, rq.value, 0xFFFFFFFFu, 0);
        job_send_or_fail(j, CMD_WRITE_REG, 0, j->rp.timeout_ms);
        return;
    case RP_REQ_NONE: break;
    }
    j->rp.active = false;
    job_fail(j, EST_CLASS_INTERNAL, EST_EPROTO, "register program (%s) has nothing to send",
             j->rp.what);
}

static void job_rp_finish(job_t *j, job_rp_result_t res)
{
    j->rp.active = false;
    j->rp.done(j, res);
}

/* (Re)start the program from its first instruction. */
static void job_rp_run(job_t *j)
{
    switch (rp_start(&j->rp.run, &j->rp.prog)) {
    case RP_CONTINUE: job_rp_send(j); return;
    case RP_DONE: job_rp_finish(j, JOB_RP_DONE); return;
    case RP_POLL_LIMIT:
    case RP_BAD: break;
    }
    j->rp.active = false;
    job_fail(j, EST_CLASS_INTERNAL, EST_EPROTO, "register program (%s) is malformed", j->rp.what);
}

void job_rp_start_ex(job_t *j, const char *what, uint32_t timeout_ms, unsigned max_restarts,
                     job_rp_done_fn done)
{
    j->rp.what = what;
    j->rp.timeout_ms = timeout_ms;
    j->rp.max_restarts = max_restarts;
    j->rp.done = done;
    j->rp.active = true;
    j->rp.draining = false;
    job_rp_run(j);
}

void job_rp_start(job_t *j, const char *what, job_rp_done_fn done)
{
    job_rp_start_ex(j, what, job_state_timeout_ms(j->st), job_state_retries(j->st), done);
}

static void job_rp_timeout(job_t *j)
{
    if (j->rp.draining) {
        j->rp.draining = false;
        job_flush_rx(j);
        job_rp_run(j);
        return;
    }
    if (j->restarts < j->rp.max_restarts) {
        j->restarts++;
        j->rep.retries++;
        j->awaiting = false; /* a late reply to the lost request is dropped from here on */
        j->rp.draining = true;
        job__log(j, JOB_LOG_WARN, "no reply to %s (%s); starting the sequence again",
                 cmd_op_name(j->expect_op), j->rp.what);
        job__arm(j, UNSUPP_DRAIN_MS);
        return;
    }
    j->rp.active = false;
    job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "no reply to %s (%s) within %u ms",
             cmd_op_name(j->expect_op), j->rp.what, j->req_timeout_ms);
}

bool job_rp_event(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_TIMEOUT: job_rp_timeout(j); return true;
    case JOB_EV_RESP:
        if (j->resp.status != 0 || j->resp_unsupported) {
            job_rp_finish(j, JOB_RP_NAK);
            return true;
        }
        switch (rp_reply(&j->rp.run, j->resp.value)) {
        case RP_CONTINUE: job_rp_send(j); return true;
        case RP_DONE: job_rp_finish(j, JOB_RP_DONE); return true;
        case RP_POLL_LIMIT: job_rp_finish(j, JOB_RP_POLL_LIMIT); return true;
        case RP_BAD: break;
        }
        j->rp.active = false;
        job_fail(j, EST_CLASS_INTERNAL, EST_EPROTO, "register program (%s): reply out of order",
                 j->rp.what);
        return true;
    case JOB_EV_ENTER:
    case JOB_EV_WORK_DONE:
    case JOB_EV_IO_OPENED:
    case JOB_EV_IO_CLOSED:
    case JOB_EV_RAW: return false;
    }
    return false;
}
