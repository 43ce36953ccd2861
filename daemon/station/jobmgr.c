/* SPDX-License-Identifier: MIT */
/* jobmgr.c — fixture slots: start modes, board-presence detection, one job per slot, and the
 * record of every job in the store (committed before anyone is told the result).
 * Must not: print or speak HTTP; block the loop. */
#include "jobmgr.h"
#include "est_util.h"
#include "store_writer.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define PATH_POLL_MS 500 /* how often a device path is checked for presence */

typedef struct slot_s {
    jobmgr_t *mgr;
    size_t idx;
    const slot_cfg_t *cfg;
    recipe_t *recipe;
    char recipe_err[700];
    plan_t plan;       /* shallow copy of the recipe's plan with this slot's reset modes */
    plan_t probe_plan; /* identify only */
    slot_state_t st;
    job_t *job;
    bool probing;
    bool stop_asked; /* cancelled: go idle when the job or probe ends, whatever the start mode */
    bool starting;   /* the job's row is being inserted (store writer): the job starts after */
    bool recording;  /* the job ended; its final row is being committed (s->job kept until) */
    bool retry_after; /* the recorded job is retried */
    bool ev_err_logged; /* a failed event insert of this job was logged */
    char uuid[STORE_UUID_LEN];
    unsigned attempt; /* of the current / last job: 1, 2, ... (retry policy) */
    uint64_t t0_ms;
    job_state_t stage;
    uint64_t bytes_before, bytes_cur, bytes_total;
    /* last finished job */
    char last_uuid[STORE_UUID_LEN];
    job_result_t last_result;
    est_class_t last_class;
    char last_msg[512];
    char last_mac[18];
    uint64_t n_pass, n_fail;
    /* presence */
    bool path_mode;       /* the port is a device node: presence = the node exists */
    bool wait_gone;       /* loop, path mode: the finished board must go away first */
    bool have_finished;   /* loop, probe mode: a finished board's MAC is known */
    char finished_mac[18];
    bool probe_err_logged;
    uv_timer_t timer;
    bool timer_closing;
} slot_t;

struct jobmgr_s {
    uv_loop_t *loop;
    const station_cfg_t *cfg;
    store_t *store;
    jobmgr_cbs_t cbs;
    void *data;
    size_t n;
    slot_t *slots;
    recipe_t *recipes; /* distinct recipe files */
    char **recipe_paths;
    char **recipe_errs; /* why recipes[i] failed to load (NULL when it loaded) */
    size_t n_recipes;
    recipe_t **adopted; /* recipes handed over by jobmgr_slot_set_recipe (owned) */
    size_t n_adopted;
    store_writer_t *writer; /* every job row and event is written on its thread */
    /* loop lag (jobmgr_loop_stats) */
    uv_timer_t lag_timer;
    uint64_t lag_due_hr;             /* uv_hrtime() the timer should fire at */
    uint64_t lag_sec_max_us[60];     /* per-second maxima, the last minute */
    uint64_t lag_sec_of[60];         /* the second (hrtime) each entry is for */
    uint64_t lag_bucket[JOBMGR_LAG_BUCKETS], lag_count;
    double lag_sum_s;
    bool writer_closing;
    bool shutdown;
    void (*shutdown_cb)(jobmgr_t *m);
    size_t timers_open;
};

/* A job of the slot is in progress: its row being inserted, the job running, or its result
 * being committed. */
static bool slot_busy(const slot_t *s)
{
    return s->starting || (s->job && !s->probing);
}

const char *slot_state_name(slot_state_t s)
{
    switch (s) {
#define XX(e, n)                                                                                   \
    case SLOT_ST_##e: return n;
        SLOT_STATE_MAP(XX)
#undef XX
    }
    return "?";
}

static void slot_log(slot_t *s, job_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slot_log(slot_t *s, job_log_level_t lvl, const char *fmt, ...)
{
    char buf[700];
    va_list ap;
    if (!s->mgr->cbs.log_cb)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->mgr->cbs.log_cb(s->mgr, s->idx, lvl, buf);
}

void jobmgr_slot_view(jobmgr_t *m, size_t i, slot_view_t *v)
{
    slot_t *s = &m->slots[i];
    memset(v, 0, sizeof *v);
    v->name = s->cfg->name;
    v->port = s->cfg->port;
    v->start = s->cfg->start;
    v->state = s->st;
    v->recipe = s->recipe;
    v->recipe_error = s->recipe_err;
    v->job_uuid = slot_busy(s) ? s->uuid : "";
    v->stage = s->stage;
    v->bytes_done = s->bytes_before + s->bytes_cur;
    v->bytes_total = s->bytes_total;
    v->elapsed_ms = slot_busy(s) ? uv_now(m->loop) - s->t0_ms : 0;
    v->report = s->job && !s->probing ? job_report(s->job) : NULL;
    v->last_uuid = s->last_uuid;
    v->last_result = s->last_result;
    v->last_class = s->last_class;
    v->last_message = s->last_msg;
    memcpy(v->last_mac, s->last_mac, sizeof v->last_mac);
    v->jobs_pass = s->n_pass;
    v->jobs_fail = s->n_fail;
    v->attempt = s->attempt;
    v->attempts = s->recipe ? s->recipe->attempts : 1;
    v->retrying = !slot_busy(s) && s->st == SLOT_ST_RUNNING && uv_is_active((uv_handle_t *)&s->timer);
}

static void slot_notify(slot_t *s)
{
    slot_view_t v;
    if (!s->mgr->cbs.slot_cb)
        return;
    jobmgr_slot_view(s->mgr, s->idx, &v);
    s->mgr->cbs.slot_cb(s->mgr, s->idx, &v);
}

static void slot_set(slot_t *s, slot_state_t st)
{
    if (s->st == st)
        return;
    s->st = st;
    slot_notify(s);
}

static void slot_arm(slot_t *s, uint32_t ms);

/* ---- job callbacks ---- */

/* An event insert came back: a failure is logged (once per job: the disk is the same for all). */
static void slot_event_done(void *data, int rc, int64_t seq, const char *errmsg)
{
    slot_t *s = data;
    (void)seq;
    if (rc != 0 && !s->ev_err_logged) {
        s->ev_err_logged = true;
        slot_log(s, JOB_LOG_ERROR, "an event of job %s could not be recorded: %s", s->uuid,
                 errmsg);
    }
}

/* Append an event to the current job's record (on the writer thread, in order). */
static void slot_event(slot_t *s, const char *kind, const char *state, const char *detail)
{
    int rc = store_writer_event(s->mgr->writer, s->uuid, uv_now(s->mgr->loop) - s->t0_ms, kind,
                                state, detail, slot_event_done, s);
    if (rc != 0) slot_event_done(s, rc, -1, est_strerror(rc));
}

static void slot_job_state_cb(job_t *j, job_state_t from, job_state_t to)
{
    slot_t *s = job_data(j);
    (void)from;
    if (s->probing)
        return;
    s->stage = to;
    if (to == JOB_ST_PREPARE && job_report(j)->n_images > 0) {
        /* an image finished: fold its bytes into the total done */
        s->bytes_before += s->bytes_cur;
        s->bytes_cur = 0;
    }
    slot_event(s, "state", job_state_name(to), NULL);
    slot_notify(s);
}

static void slot_job_progress_cb(job_t *j, size_t idx, uint64_t done, uint64_t total)
{
    slot_t *s = job_data(j);
    slot_view_t v;
    (void)idx;
    (void)total;
    s->bytes_cur = done;
    if (s->mgr->cbs.progress_cb) {
        jobmgr_slot_view(s->mgr, s->idx, &v);
        s->mgr->cbs.progress_cb(s->mgr, s->idx, &v);
    }
}

static void slot_job_log_cb(job_t *j, job_log_level_t lvl, const char *msg)
{
    slot_t *s = job_data(j);
    if (s->probing)
        return; /* probes fail all the time while no board is there */
    /* warnings and errors (the post-flash test's output is recorded from the report: the job's
     * test_output column and a "test" event, slot_record_test) */
    if (lvl >= JOB_LOG_WARN) {
        char detail[5000];
        cJSON *o = cJSON_CreateObject();
        char *txt;
        cJSON_AddStringToObject(o, "level", lvl == JOB_LOG_WARN    ? "warning"
                                            : lvl == JOB_LOG_ERROR ? "error"
                                                                   : "info");
        cJSON_AddStringToObject(o, "message", msg);
        txt = cJSON_PrintUnformatted(o);
        snprintf(detail, sizeof detail, "%s", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(o);
        slot_event(s, "log", job_state_name(job_state(j)), detail);
    }
    if (s->mgr->cbs.log_cb)
        s->mgr->cbs.log_cb(s->mgr, s->idx, lvl, msg);
}

static int slot_job_check_cb(job_t *j, const job_report_t *r, est_class_t *cls, char *msg,
                             size_t cap)
{
    slot_t *s = job_data(j);
    recipe_err_t err;
    if (s->probing || !s->recipe || !r->chip)
        return 0;
    if (recipe_check_device(s->recipe, r->chip, r->chip_rev, r->flash_size, &err) == 0)
        return 0;
    *cls = err.cls;
    snprintf(msg, cap, "recipe %s: %s", s->recipe->name, err.msg);
    return -1;
}

static void slot_after_job(slot_t *s);
static void jobmgr_maybe_finish_shutdown(jobmgr_t *m);
static int slot_start_attempt(slot_t *s, unsigned attempt);

#define RETRY_DELAY_MS 300 /* between attempts: lets a browned-out board's supply settle */

/* Failures a new attempt on the same board can cure (link, timing, power, a flipped bit).
 * Not retried: what would fail the same way again (wrong chip, flash too small, bad images or
 * recipe), a port that is gone or held elsewhere (the board was removed, or a program holds
 * it), and cancellations. */
static bool slot_retryable(est_class_t c)
{
    switch (c) {
    case EST_CLASS_NO_SYNC:
    case EST_CLASS_WRONG_BOOT_MODE:
    case EST_CLASS_TIMEOUT:
    case EST_CLASS_NAK:
    case EST_CLASS_PROTOCOL:
    case EST_CLASS_MD5_MISMATCH:
    case EST_CLASS_FLASH_NOT_DETECTED:
    case EST_CLASS_BROWNOUT:
    case EST_CLASS_PORT_ERROR: return true;
    /* the same again would fail the same way, or it is not a failure of the board at all; a
     * new class must be placed in one of the two lists (-Wswitch: no default here) */
    case EST_CLASS_NONE:
    case EST_CLASS_USAGE:
    case EST_CLASS_IMAGE_MISSING:
    case EST_CLASS_IMAGE_INVALID:
    case EST_CLASS_RECIPE_INVALID:
    case EST_CLASS_BAD_OFFSET:
    case EST_CLASS_FLASH_TOO_SMALL:
    case EST_CLASS_PORT_NOT_FOUND:
    case EST_CLASS_PORT_BUSY:
    case EST_CLASS_PORT_GONE:
    case EST_CLASS_UNSUPPORTED:
    case EST_CLASS_WRONG_CHIP:
    case EST_CLASS_STUB_FAILED:
    case EST_CLASS_TEST_FAILED:
    case EST_CLASS_CANCELLED:
    case EST_CLASS_INTERNAL:
    case EST_CLASS__COUNT: return false;
    }
    return false; /* not an est_class_t value */
}

static void slot_retry_cb(uv_timer_t *t)
{
    slot_t *s = container_of(t, slot_t, timer);
    if (s->mgr->shutdown || s->job || s->starting)
        return;
    if (slot_start_attempt(s, s->attempt + 1) != 0)
        slot_after_job(s);
}

/* The post-flash test in the job's events (kind "test", docs/API.md): whether it passed, how
 * long it took and what the application printed (also when it passed). */
static void slot_record_test(slot_t *s, const job_report_t *r)
{
    cJSON *o = cJSON_CreateObject();
    char *txt;
    cJSON_AddBoolToObject(o, "passed", r->test_passed);
    cJSON_AddNumberToObject(o, "ms", r->test_ms);
    cJSON_AddStringToObject(o, "output", r->test_output);
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt)
        slot_event(s, "test", job_state_name(JOB_ST_TEST), txt);
    else
        slot_event_done(s, UV_ENOMEM, -1, "out of memory");
    free(txt);
}

static void slot_recorded_cb(void *data, int rc, int64_t seq, const char *errmsg);

static void slot_job_done_cb(job_t *j, const job_report_t *r)
{
    slot_t *s = job_data(j);
    jobmgr_t *m = s->mgr;

    if (s->probing) {
        bool board = r->result == JOB_RESULT_PASS && r->have_mac;
        char mac[18] = "";
        if (board)
            job_fmt_mac(r->mac, mac);
        else if (!s->probe_err_logged && r->error_class != EST_CLASS_NO_SYNC &&
                 r->error_class != EST_CLASS_CANCELLED) {
            slot_log(s, JOB_LOG_WARN, "probe of %s: %s: %s", s->cfg->port,
                     est_class_name(r->error_class), r->message);
            s->probe_err_logged = true;
        }
        job_free(j);
        s->job = NULL;
        s->probing = false;
        if (m->shutdown) {
            slot_set(s, SLOT_ST_STOPPED);
            jobmgr_maybe_finish_shutdown(m);
            return;
        }
        if (s->stop_asked) {
            s->stop_asked = false;
            slot_set(s, SLOT_ST_IDLE);
            return;
        }
        if (!board) {
            s->have_finished = false; /* nothing answers: the finished board was removed */
            slot_set(s, SLOT_ST_WAITING);
            slot_arm(s, m->cfg->probe_interval_ms);
            return;
        }
        s->probe_err_logged = false;
        if (s->have_finished && strcmp(mac, s->finished_mac) == 0) {
            slot_set(s, SLOT_ST_WAITING); /* the same board is still in the fixture */
            slot_arm(s, m->cfg->probe_interval_ms);
            return;
        }
        if (jobmgr_slot_start(m, s->idx) != 0) {
            slot_set(s, SLOT_ST_WAITING);
            slot_arm(s, m->cfg->probe_interval_ms);
        }
        return;
    }

    /* retry policy: a failure another attempt can cure, attempts left, still running */
    s->retry_after = r->result == JOB_RESULT_FAIL && !m->shutdown && !s->stop_asked &&
                     s->recipe && s->attempt < s->recipe->attempts &&
                     slot_retryable(r->error_class);
    /* the record first: nobody hears of the result before it is committed (slot_recorded_cb,
     * on the loop once the writer thread has committed; the job and its report live until) */
    store_job_end_t end = {0,
                           m->shutdown && r->result == JOB_RESULT_CANCELLED
                               ? STORE_RESULT_INTERRUPTED
                               : STORE_RESULT_RUNNING,
                           s->retry_after};
    if (r->test_ran) slot_record_test(s, r);
    s->recording = true;
    int rc = store_writer_finish(m->writer, s->uuid, r, &end, slot_recorded_cb, s);
    if (rc != 0) slot_recorded_cb(s, rc, -1, est_strerror(rc));
}

static void slot_recorded_cb(void *data, int rc, int64_t seq, const char *errmsg)
{
    slot_t *s = data;
    jobmgr_t *m = s->mgr;
    job_t *j = s->job;
    const job_report_t *r = job_report(j);
    bool retry = s->retry_after;
    s->recording = false;
    snprintf(s->last_uuid, sizeof s->last_uuid, "%s", s->uuid);
    s->last_result = r->result;
    s->last_class = r->error_class;
    snprintf(s->last_msg, sizeof s->last_msg, "%s", r->message);
    if (r->have_mac)
        job_fmt_mac(r->mac, s->last_mac);
    else
        s->last_mac[0] = 0;
    if (r->result == JOB_RESULT_PASS)
        s->n_pass++;
    else if (r->result == JOB_RESULT_FAIL && !retry)
        s->n_fail++;
    if (r->have_mac && r->result != JOB_RESULT_CANCELLED) {
        s->have_finished = true;
        memcpy(s->finished_mac, s->last_mac, sizeof s->finished_mac);
    }
    if (rc != 0)
        slot_log(s, JOB_LOG_ERROR, "job %s could not be recorded: %s", s->uuid, errmsg);
    else if (m->cbs.result_cb)
        m->cbs.result_cb(m, s->idx, s->uuid, seq, r);
    est_class_t cls = r->error_class; /* r lives in the job: not after job_free */
    job_free(j);
    s->job = NULL;
    s->uuid[0] = 0;
    s->stage = JOB_ST_IDLE;
    if (retry && rc == 0 && !m->shutdown) {
        slot_log(s, JOB_LOG_WARN, "attempt %u of %u failed (%s): trying the board again",
                 s->attempt, s->recipe->attempts, est_class_name(cls));
        uv_timer_start(&s->timer, slot_retry_cb, RETRY_DELAY_MS, 0);
        slot_notify(s); /* observers see `retrying` */
        return;
    }
    slot_after_job(s);
}

static const job_cbs_t slot_job_cbs = {
    .state_cb = slot_job_state_cb,
    .progress_cb = slot_job_progress_cb,
    .log_cb = slot_job_log_cb,
    .check_cb = slot_job_check_cb,
    .done_cb = slot_job_done_cb,
};

/* ---- presence ---- */

static bool slot_port_present(const slot_t *s)
{
    return access(s->cfg->port, F_OK) == 0;
}

static void slot_probe(slot_t *s)
{
    s->job = job_new(s->mgr->loop, s->cfg->port, &s->probe_plan, &slot_job_cbs, NULL, s);
    if (!s->job) {
        slot_arm(s, s->mgr->cfg->probe_interval_ms);
        return;
    }
    s->probing = true;
    slot_set(s, SLOT_ST_PROBING);
    job_start(s->job);
}

static void slot_timer_cb(uv_timer_t *t)
{
    slot_t *s = container_of(t, slot_t, timer);
    if (s->mgr->shutdown || s->job || s->st != SLOT_ST_WAITING)
        return;
    if (!s->path_mode) {
        slot_probe(s);
        return;
    }
    if (slot_port_present(s)) {
        if (!s->wait_gone && jobmgr_slot_start(s->mgr, s->idx) == 0)
            return;
    } else if (s->wait_gone) {
        s->wait_gone = false; /* the finished board's port went away: the next one is new */
        slot_log(s, JOB_LOG_INFO, "board removed from %s", s->cfg->port);
    }
    slot_arm(s, PATH_POLL_MS);
}

static void slot_arm(slot_t *s, uint32_t ms)
{
    if (!s->timer_closing && !s->mgr->shutdown)
        uv_timer_start(&s->timer, slot_timer_cb, ms, 0);
}

static void slot_wait(slot_t *s)
{
    slot_set(s, SLOT_ST_WAITING);
    slot_arm(s, s->path_mode ? PATH_POLL_MS : 0);
}

static void slot_timer_closed_cb(uv_handle_t *h)
{
    slot_t *s = container_of((uv_timer_t *)h, slot_t, timer);
    jobmgr_t *m = s->mgr;
    if (--m->timers_open == 0 && m->shutdown_cb)
        m->shutdown_cb(m);
}

const double jobmgr_lag_le_s[JOBMGR_LAG_BUCKETS] = {0.001, 0.002, 0.005, 0.01, 0.02,
                                                    0.05,  0.1,   0.25,  0.5,  1.0};

static void jobmgr_lag_cb(uv_timer_t *t)
{
    jobmgr_t *m = container_of(t, jobmgr_t, lag_timer);
    uint64_t now = uv_hrtime(), sec = now / 1000000000u;
    uint64_t lag_us = now > m->lag_due_hr ? (now - m->lag_due_hr) / 1000u : 0;
    size_t k = (size_t)(sec % 60);
    bool first = m->lag_due_hr == 0; /* armed before the loop ran: nothing to measure yet */
    m->lag_due_hr = now + JOBMGR_LAG_PERIOD_MS * 1000000u;
    if (first) return;
    if (m->lag_sec_of[k] != sec) { /* a new second in this entry */
        m->lag_sec_of[k] = sec;
        m->lag_sec_max_us[k] = 0;
    }
    if (lag_us > m->lag_sec_max_us[k]) m->lag_sec_max_us[k] = lag_us;
    for (size_t i = 0; i < JOBMGR_LAG_BUCKETS; i++)
        if ((double)lag_us / 1e6 <= jobmgr_lag_le_s[i]) m->lag_bucket[i]++;
    m->lag_count++;
    m->lag_sum_s += (double)lag_us / 1e6;
}

void jobmgr_loop_stats(const jobmgr_t *m, jobmgr_loop_stats_t *out)
{
    uint64_t sec = uv_hrtime() / 1000000000u;
    memset(out, 0, sizeof *out);
    for (size_t k = 0; k < 60; k++)
        if (m->lag_sec_of[k] + 60 > sec && m->lag_sec_max_us[k] > out->lag_max_1m_us)
            out->lag_max_1m_us = m->lag_sec_max_us[k];
    memcpy(out->lag_bucket, m->lag_bucket, sizeof out->lag_bucket);
    out->lag_count = m->lag_count;
    out->lag_sum_s = m->lag_sum_s;
    if (m->writer) {
        out->store_write_max_ms = store_writer_max_ms(m->writer);
        out->store_pending = store_writer_pending(m->writer);
    }
}

static void jobmgr_writer_closed_cb(void *data)
{
    jobmgr_t *m = data;
    m->writer = NULL;
    if (--m->timers_open == 0 && m->shutdown_cb)
        m->shutdown_cb(m);
}

static void jobmgr_lag_closed_cb(uv_handle_t *h)
{
    jobmgr_t *m = container_of((uv_timer_t *)h, jobmgr_t, lag_timer);
    if (--m->timers_open == 0 && m->shutdown_cb)
        m->shutdown_cb(m);
}

static void jobmgr_maybe_finish_shutdown(jobmgr_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->slots[i].job || m->slots[i].starting)
            return;
    if (!uv_is_closing((uv_handle_t *)&m->lag_timer))
        uv_close((uv_handle_t *)&m->lag_timer, jobmgr_lag_closed_cb);
    if (m->writer && !m->writer_closing) { /* every record is committed: stop the writer */
        m->writer_closing = true;
        store_writer_close(m->writer, jobmgr_writer_closed_cb, m);
    }
    for (size_t i = 0; i < m->n; i++) {
        slot_t *s = &m->slots[i];
        if (!s->timer_closing) {
            s->timer_closing = true;
            uv_close((uv_handle_t *)&s->timer, slot_timer_closed_cb);
        }
    }
}

static void slot_after_job(slot_t *s)
{
    jobmgr_t *m = s->mgr;
    if (m->shutdown) {
        slot_set(s, SLOT_ST_STOPPED);
        jobmgr_maybe_finish_shutdown(m);
        return;
    }
    if (s->stop_asked) { /* cancelled: presence detection stays off until the next start */
        s->stop_asked = false;
        slot_set(s, SLOT_ST_IDLE);
        return;
    }
    switch (s->cfg->start) {
    case SLOT_START_MANUAL:
    case SLOT_START_AUTO: slot_set(s, SLOT_ST_IDLE); return;
    case SLOT_START_LOOP:
        if (s->path_mode)
            s->wait_gone = true;
        if (!s->path_mode) {
            /* give the operator time to take the board out before asking again */
            slot_set(s, SLOT_ST_WAITING);
            slot_arm(s, m->cfg->probe_interval_ms);
            return;
        }
        slot_wait(s);
        return;
    }
}

/* ---- public ---- */

/* Load each recipe file once; slots naming the same file share it (and its error). */
/* Point a slot at `r` (NULL = none) and rebuild its plan from it: the slot's settings applied by
 * the one precedence rule (plan_apply_slot: the recipe's explicit before/after win over the
 * slot's defaults unless the slot has "reset_override"), then plan_finalize(), as the command
 * line and the recipe loader do. A recipe the slot makes inconsistent (a test with after no_reset
 * forced by the slot) is refused here, before any board, with the reason in `err`; the slot then
 * keeps what it had. Returns 0 or UV_EINVAL. */
static int slot_use_recipe(slot_t *s, const recipe_t *r, char *err, size_t errlen)
{
    plan_err_t perr;
    plan_t plan;
    plan_slot_t sl = {s->cfg->before, s->cfg->after, s->cfg->reset_override};
    memset(&plan, 0, sizeof plan);
    if (r) {
        plan = r->plan; /* shallow: the images stay the recipe's */
        plan_apply_slot(&plan, &sl);
        /* the station's stub directory, unless the recipe names its own stub (or none) */
        if (!plan.stub_dir && !plan.stub_file)
            plan.stub_dir = s->mgr->cfg->stub_dir;
        if (plan_finalize(&plan, &perr) != 0) {
            snprintf(err, errlen, "recipe %s cannot run on slot %s: %s", r->name, s->cfg->name,
                     perr.msg);
            return UV_EINVAL;
        }
        s->recipe_err[0] = 0;
    }
    s->recipe = (recipe_t *)r;
    s->plan = plan;
    return 0;
}

static recipe_t *jobmgr_recipe(jobmgr_t *m, const char *path, char *err, size_t errlen)
{
    recipe_err_t rerr;
    char why[700];
    size_t i;
    for (i = 0; i < m->n_recipes; i++)
        if (!strcmp(m->recipe_paths[i], path))
            break;
    if (i == m->n_recipes) {
        m->n_recipes++;
        m->recipe_paths[i] = strdup(path);
        why[0] = 0;
        if (recipe_load_file(path, 0, &m->recipes[i], &rerr) != 0) {
            snprintf(why, sizeof why, "recipe %s: %s", path, rerr.msg);
            memset(&m->recipes[i], 0, sizeof m->recipes[i]);
        } else if (store_recipe_put(m->store, m->recipes[i].hash, m->recipes[i].name,
                                    m->recipes[i].version, m->recipes[i].text,
                                    m->recipes[i].text_len) != 0) {
            snprintf(why, sizeof why, "recipe %s: cannot store it: %s", path,
                     store_errmsg(m->store));
            recipe_free(&m->recipes[i]);
            memset(&m->recipes[i], 0, sizeof m->recipes[i]);
        }
        m->recipe_errs[i] = why[0] ? strdup(why) : NULL;
    }
    if (m->recipe_errs[i]) {
        snprintf(err, errlen, "%s", m->recipe_errs[i]);
        return NULL;
    }
    return &m->recipes[i];
}

int jobmgr_new(uv_loop_t *loop, const station_cfg_t *cfg, store_t *store,
               const jobmgr_cbs_t *cbs, void *data, jobmgr_t **out)
{
    jobmgr_t *m = calloc(1, sizeof *m);
    if (!m)
        return UV_ENOMEM;
    m->loop = loop;
    m->cfg = cfg;
    m->store = store;
    if (cbs)
        m->cbs = *cbs;
    m->data = data;
    m->n = cfg->n_slots;
    m->slots = calloc(m->n, sizeof *m->slots);
    m->recipes = calloc(m->n + 1, sizeof *m->recipes);
    m->recipe_paths = calloc(m->n + 1, sizeof *m->recipe_paths);
    m->recipe_errs = calloc(m->n + 1, sizeof *m->recipe_errs);
    if (!m->slots || !m->recipes || !m->recipe_paths || !m->recipe_errs) {
        jobmgr_free(m);
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        slot_t *s = &m->slots[i];
        const char *rp = cfg->slots[i].recipe ? cfg->slots[i].recipe : cfg->recipe;
        s->mgr = m;
        s->idx = i;
        s->cfg = &cfg->slots[i];
        s->st = SLOT_ST_IDLE;
        s->path_mode = s->cfg->port[0] == '/';
        uv_timer_init(loop, &s->timer);
        m->timers_open++;
        plan_init(&s->probe_plan);
        s->probe_plan.before = s->cfg->before;
        s->probe_plan.after = PLAN_AFTER_NO_RESET;
        s->probe_plan.connect_attempts = 1;
        if (!rp) {
            snprintf(s->recipe_err, sizeof s->recipe_err,
                     "no recipe configured for slot %s (set \"recipe\" for the station or the "
                     "slot)",
                     s->cfg->name);
            continue;
        }
        const recipe_t *use = jobmgr_recipe(m, rp, s->recipe_err, sizeof s->recipe_err);
        if (use)
            slot_use_recipe(s, use, s->recipe_err, sizeof s->recipe_err);
    }
    {
        char err[700];
        int rc = store_writer_new(loop, store, &m->writer, err, sizeof err);
        if (rc != 0) { /* the caller reports est_strerror(rc) and exits */
            jobmgr_free(m);
            return rc;
        }
        m->timers_open++; /* the writer's handle closes with the timers (jobmgr_shutdown) */
    }
    uv_timer_init(loop, &m->lag_timer);
    m->timers_open++;
    uv_timer_start(&m->lag_timer, jobmgr_lag_cb, JOBMGR_LAG_PERIOD_MS, JOBMGR_LAG_PERIOD_MS);
    uv_unref((uv_handle_t *)&m->lag_timer); /* keeps no loop alive */
    *out = m;
    return 0;
}

void *jobmgr_data(const jobmgr_t *m)
{
    return m->data;
}
size_t jobmgr_slot_count(const jobmgr_t *m)
{
    return m->n;
}
int jobmgr_slot_index(const jobmgr_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->slots[i].cfg->name, name))
            return (int)i;
    return -1;
}

void jobmgr_run(jobmgr_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        slot_t *s = &m->slots[i];
        if (s->cfg->start == SLOT_START_MANUAL)
            continue;
        if (!s->recipe) {
            slot_log(s, JOB_LOG_ERROR, "slot %s cannot start: %s", s->cfg->name, s->recipe_err);
            continue;
        }
        slot_wait(s);
    }
}

int jobmgr_slot_start(jobmgr_t *m, size_t i)
{
    return slot_start_attempt(&m->slots[i], 1);
}

static void slot_begun_cb(void *data, int rc, int64_t seq, const char *errmsg);

static int slot_start_attempt(slot_t *s, unsigned attempt)
{
    jobmgr_t *m = s->mgr;
    store_job_start_t st;
    if (m->shutdown)
        return UV_ECANCELED;
    if (s->starting || (s->job && !s->probing))
        return UV_EBUSY;
    if (s->job && s->probing)
        return UV_EAGAIN; /* a probe holds the port; it starts the job itself if a board is there */
    if (!s->recipe)
        return UV_ENOENT;
    if (m->cbs.may_start_cb && !m->cbs.may_start_cb(m, s->idx))
        return EST_EDB;
    uv_timer_stop(&s->timer);
    /* retry.lower_baud: each retry at half the previous attempt's flashing rate */
    s->plan.flash_baud = s->recipe->plan.flash_baud;
    if (attempt > 1 && s->recipe->retry_lower_baud && s->plan.flash_baud > 115200) {
        uint32_t b = s->plan.flash_baud >> (attempt - 1 < 8 ? attempt - 1 : 8);
        s->plan.flash_baud = b < 115200 ? 115200 : b;
        slot_log(s, JOB_LOG_INFO, "attempt %u at %u baud (retry.lower_baud)", attempt,
                 (unsigned)s->plan.flash_baud);
    }
    store_new_uuid(s->uuid);
    memset(&st, 0, sizeof st);
    st.uuid = s->uuid;
    st.slot = s->cfg->name;
    st.port = s->cfg->port;
    st.recipe_hash = s->recipe->hash;
    st.baud = s->plan.baud;
    st.attempt = attempt;
    s->starting = true;
    s->stop_asked = false;
    s->ev_err_logged = false;
    s->attempt = attempt;
    s->t0_ms = uv_now(m->loop);
    s->stage = JOB_ST_OPEN;
    s->bytes_before = s->bytes_cur = 0;
    s->bytes_total = 0;
    for (size_t k = 0; k < s->plan.n_images; k++)
        s->bytes_total += (s->plan.images[k].size + 3) & ~(size_t)3;
    /* the job's row first (writer thread); the job starts when it is in (slot_begun_cb) */
    int rc = store_writer_begin(m->writer, &st, slot_begun_cb, s);
    if (rc != 0) {
        s->starting = false;
        slot_log(s, JOB_LOG_ERROR, "cannot record a new job: %s", est_strerror(rc));
        return rc;
    }
    slot_set(s, SLOT_ST_RUNNING);
    return 0;
}

/* The job's 'running' row is committed: the job itself starts (or, cancelled or shut down
 * meanwhile, starts and is cancelled at once, so that its row is completed as usual). */
static void slot_begun_cb(void *data, int rc, int64_t seq, const char *errmsg)
{
    slot_t *s = data;
    jobmgr_t *m = s->mgr;
    (void)seq;
    s->starting = false;
    if (rc != 0) {
        slot_log(s, JOB_LOG_ERROR, "cannot record a new job: %s", errmsg);
        s->uuid[0] = 0;
        slot_after_job(s);
        return;
    }
    s->job = job_new(m->loop, s->cfg->port, &s->plan, &slot_job_cbs, NULL, s);
    if (!s->job) {
        /* the row stays 'running' until the next start marks it interrupted */
        slot_log(s, JOB_LOG_ERROR, "cannot start job %s: out of memory", s->uuid);
        s->uuid[0] = 0;
        slot_after_job(s);
        return;
    }
    s->probing = false;
    job_start(s->job);
    if (s->stop_asked || m->shutdown) job_cancel(s->job);
}

int jobmgr_slot_cancel(jobmgr_t *m, size_t i)
{
    slot_t *s = &m->slots[i];
    uv_timer_stop(&s->timer);
    if (s->starting || s->recording) { /* cancelled once it starts / goes idle once recorded */
        s->stop_asked = true;
        return 0;
    }
    if (s->job) {
        s->stop_asked = true;
        job_cancel(s->job);
        return 0;
    }
    slot_set(s, SLOT_ST_IDLE);
    return 0;
}

void jobmgr_shutdown(jobmgr_t *m, void (*done_cb)(jobmgr_t *m))
{
    if (m->shutdown)
        return;
    m->shutdown = true;
    m->shutdown_cb = done_cb;
    for (size_t i = 0; i < m->n; i++) {
        slot_t *s = &m->slots[i];
        uv_timer_stop(&s->timer);
        if (s->job && !s->recording)
            job_cancel(s->job);
        else if (!s->starting && !s->recording)
            slot_set(s, SLOT_ST_STOPPED);
    }
    jobmgr_maybe_finish_shutdown(m);
}

const recipe_t *jobmgr_find_recipe(const jobmgr_t *m, const char *hash)
{
    for (size_t i = 0; i < m->n_recipes; i++)
        if (!m->recipe_errs[i] && !strcmp(m->recipes[i].hash, hash))
            return &m->recipes[i];
    for (size_t i = 0; i < m->n_adopted; i++)
        if (!strcmp(m->adopted[i]->hash, hash))
            return m->adopted[i];
    return NULL;
}

int jobmgr_slot_set_recipe(jobmgr_t *m, size_t i, recipe_t *r, char *err, size_t errlen)
{
    slot_t *s = &m->slots[i];
    const recipe_t *use;
    if (err && errlen)
        err[0] = 0;
    if (slot_busy(s)) {
        if (r) {
            recipe_free(r);
            free(r);
        }
        if (err)
            snprintf(err, errlen, "slot %s is running a job: cancel it or wait for its result",
                     s->cfg->name);
        return UV_EBUSY;
    }
    if (!r) { /* back to the configuration's recipe */
        const char *rp = s->cfg->recipe ? s->cfg->recipe : m->cfg->recipe;
        if (!rp) {
            slot_use_recipe(s, NULL, NULL, 0);
            snprintf(s->recipe_err, sizeof s->recipe_err,
                     "no recipe configured for slot %s (set \"recipe\" for the station or the "
                     "slot)",
                     s->cfg->name);
            return 0;
        }
        use = jobmgr_recipe(m, rp, s->recipe_err, sizeof s->recipe_err);
        if (!use || slot_use_recipe(s, use, s->recipe_err, sizeof s->recipe_err) != 0) {
            char why[sizeof s->recipe_err];
            snprintf(why, sizeof why, "%s", s->recipe_err);
            slot_use_recipe(s, NULL, NULL, 0); /* the configured recipe cannot be used: none */
            snprintf(s->recipe_err, sizeof s->recipe_err, "%s", why);
            if (err)
                snprintf(err, errlen, "%s", why);
            return UV_ENOENT;
        }
        return 0;
    }
    use = jobmgr_find_recipe(m, r->hash);
    if (use) { /* the same bytes are loaded already: share them */
        recipe_free(r);
        free(r);
    } else {
        recipe_t **na = realloc(m->adopted, (m->n_adopted + 1) * sizeof *na);
        if (!na) {
            recipe_free(r);
            free(r);
            return UV_ENOMEM;
        }
        m->adopted = na;
        m->adopted[m->n_adopted++] = r;
        use = r;
    }
    { /* refused (the slot's settings make it inconsistent): the slot keeps its recipe */
        char why[700];
        if (slot_use_recipe(s, use, why, sizeof why) != 0) {
            if (err)
                snprintf(err, errlen, "%s", why);
            return UV_EINVAL;
        }
    }
    return 0;
}

void jobmgr_free(jobmgr_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_adopted; i++) {
        recipe_free(m->adopted[i]);
        free(m->adopted[i]);
    }
    free(m->adopted);
    for (size_t i = 0; i < m->n_recipes; i++) {
        recipe_free(&m->recipes[i]);
        free(m->recipe_paths[i]);
        free(m->recipe_errs[i]);
    }
    free(m->recipes);
    free(m->recipe_paths);
    free(m->recipe_errs);
    free(m->slots);
    free(m);
}
