/* SPDX-License-Identifier: MIT */
/* job_finish.c — the end of the job: AFTER_RESET (hard reset into the application, or the loader
 * put back to the connect rate), TEST (the application's output after the reset), CLOSING and
 * DONE. Must not: block, do I/O except through job.c. */
#include "job_sm.h"

#include <stdio.h>
#include <string.h>

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

/* AFTER_RESET sub-steps (job_after_phase_t): AFTER_PULSE the reset sequence; AFTER_BAUD_BACK
 * CHANGE_BAUDRATE back to the connect rate sent, AFTER_SETTLE settling. A chip that is not reset
 * stays in its loader at the rate we left it at; putting it back to the connect rate lets the next
 * job (or esptool) sync with it again. */
void job_st_after_reset(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        j->watch_banner = false; /* the reset we cause prints a banner */
        j->u.after = AFTER_PULSE;
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
                j->u.after = AFTER_BAUD_BACK;
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
        if (j->u.after == AFTER_BAUD_BACK || j->u.after == AFTER_SETTLE) {
            if (j->u.after == AFTER_BAUD_BACK)
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
        if (j->u.after == AFTER_BAUD_BACK) {
            j->u.after = AFTER_SETTLE;
            if (j->resp.status == 0) {
                j->io->set_baud(j, j->plan->baud);
                j->cur_baud = j->plan->baud;
            }
            job__arm(j, BAUD_SETTLE_MS);
        }
        return;
    default: job_bad_event(j, ev); return;
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

void job_test_text(job_t *j, const uint8_t *buf, size_t n)
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
void job_st_test(job_t *j, job_event_t ev)
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
    default: job_bad_event(j, ev); return;
    }
}

void job_st_closing(job_t *j, job_event_t ev)
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
    default: job_bad_event(j, ev); return;
    }
    if (!j->io_active && !j->work_pending) job_enter(j, JOB_ST_DONE);
}

void job_st_done(job_t *j, job_event_t ev)
{
    if (ev != JOB_EV_ENTER) return;
    j->rep.finished_ms = job__now_ms(j);
    if (j->rep.result == JOB_RESULT_NONE) j->rep.result = JOB_RESULT_FAIL;
    job__free_prep(&j->prep);
    job__finish(j);
}
