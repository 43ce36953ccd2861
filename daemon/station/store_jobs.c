/* SPDX-License-Identifier: MIT */
/* store_jobs.c — writing job rows: the running row, events, and the final row with its images in
 * one durable transaction (the columns of the final row come from store_cols.h).
 * Must not: log, or make a result visible before its commit. */
#include "store_int.h"
#include "store_cols.h"
#include "est_util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value for one parameter of the final UPDATE (store_cols.h, column `value`). */
typedef enum { STORE_V_NULL, STORE_V_INT, STORE_V_TEXT, STORE_V_STR } store_vtype_t;
typedef struct store_val_s {
    store_vtype_t type;
    int64_t i;
    const char *s;
} store_val_t;
#define V_NULL ((store_val_t){STORE_V_NULL, 0, NULL})
#define V_INT(x) ((store_val_t){STORE_V_INT, (int64_t)(x), NULL})
#define V_TEXT(x) ((store_val_t){STORE_V_TEXT, 0, (x)})
#define V_STR(x) ((store_val_t){STORE_V_STR, 0, (x)})

int store_job_begin(store_t *s, const store_job_start_t *b)
{
    char started[STORE_TIME_LEN];
    sqlite3_stmt *st;
    int rc;

    if (!b || !b->uuid || !b->slot || !b->port)
        return store_refuse(s, "store_job_begin: uuid, slot and port are required");
    store_fmt_time(b->started_unix_ms ? b->started_unix_ms : store_now_ms(), started);
    if (store_prepare(s,
                      "INSERT INTO jobs (uuid, slot, port, recipe_hash, baud, attempt, started_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, b->uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, b->slot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, b->port, -1, SQLITE_TRANSIENT);
    store_bind_text(st, 4, b->recipe_hash);
    if (b->baud)
        sqlite3_bind_int64(st, 5, b->baud);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, b->attempt ? b->attempt : 1);
    sqlite3_bind_text(st, 7, started, -1, SQLITE_TRANSIENT);
    /* the row and what the hooks write (store.h) commit together (also when there are none:
     * the hooks may be another connection's, see store_run_hooks) */
    if (store_exec(s, "BEGIN IMMEDIATE")) {
        sqlite3_finalize(st);
        return EST_EDB;
    }
    rc = store_step_done(s, st, "inserting job");
    if (rc == 0)
        rc = store_run_hooks(s, false, b->uuid, NULL, NULL, -1);
    if (rc == 0)
        rc = store_exec(s, "COMMIT");
    if (rc != 0)
        store_rollback(s);
    return rc;
}

int store_job_event(store_t *s, const char *uuid, uint64_t t_ms, const char *kind,
                    const char *state, const char *detail_json)
{
    sqlite3_stmt *st;
    if (!uuid || !kind || !*kind)
        return store_refuse(s, "store_job_event: uuid and kind are required");
    if (t_ms > INT64_MAX) return store_refuse(s, "store_job_event: time out of range");
    /* n = next number within the job; max() over no rows gives one NULL row, hence coalesce */
    if (store_prepare(s,
                      "INSERT INTO job_events (job_uuid, n, t_ms, kind, state, detail) "
                      "SELECT ?1, coalesce(max(n) + 1, 0), ?2, ?3, ?4, ?5 FROM job_events "
                      "WHERE job_uuid = ?1",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)t_ms);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
    store_bind_text(st, 4, state);
    store_bind_text(st, 5, detail_json);
    return store_step_done(s, st, "inserting job event");
}

/* {"sync":120,"data":4310,...}: the states the job spent time in, in state order. */
static void store_state_ms_json(const job_report_t *r, char *buf, size_t cap)
{
    size_t n = 0;
    bool first = true;
    n += (size_t)snprintf(buf, cap, "{");
    for (int i = 0; i < JOB_ST__COUNT && n < cap; i++) {
        if (!r->state_ms[i]) continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\":%" PRIu64, first ? "" : ",",
                              job_state_name((job_state_t)i), r->state_ms[i]);
        first = false;
    }
    if (n < cap) snprintf(buf + n, cap - n, "}");
    if (n + 1 >= cap) /* cannot happen with the state table's size; never store broken JSON */
        snprintf(buf, cap, "{}");
}

static store_result_t store_result_of(const job_report_t *r)
{
    switch (r->result) {
    case JOB_RESULT_PASS: return STORE_RESULT_PASS;
    case JOB_RESULT_FAIL: return STORE_RESULT_FAIL;
    case JOB_RESULT_CANCELLED: return STORE_RESULT_CANCELLED;
    case JOB_RESULT_NONE: return STORE_RESULT_RUNNING;
    }
    return STORE_RESULT_RUNNING;
}

static int store_insert_images(store_t *s, const char *uuid, const job_report_t *r)
{
    sqlite3_stmt *st;
    int rc = 0;
    size_t n = r->n_images < PLAN_MAX_IMAGES ? r->n_images : PLAN_MAX_IMAGES;
    if (n == 0) return 0;
    if (store_prepare(s,
                      "INSERT INTO job_images (job_uuid, idx, offset, size, compressed_size, md5, "
                      "patched, verified, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                      &st))
        return EST_EDB;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const job_image_stat_t *im = &r->images[i];
        char md5[33];
        est_hex(im->md5, sizeof im->md5, md5);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, im->offset);
        sqlite3_bind_int64(st, 4, im->size);
        sqlite3_bind_int64(st, 5, im->compressed_size);
        sqlite3_bind_text(st, 6, md5, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 7, im->patched);
        sqlite3_bind_int(st, 8, im->verified);
        sqlite3_bind_int64(st, 9, (int64_t)im->duration_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_fail(s, "inserting image %zu of job %s", i, uuid);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The finish context the `value` column of STORE_JOB_COLUMNS reads (store_cols.h). */
typedef struct store_fin_s {
    const job_report_t *r;
    store_result_t res;
    bool pass, retried;
    int64_t seq;
    store_val_t duration;
    char finished[STORE_TIME_LEN], rev[16], mac[18], fid[8], state_ms[1024];
} store_fin_t;

static void store_bind_val(sqlite3_stmt *st, int i, store_val_t v)
{
    switch (v.type) {
    case STORE_V_NULL: sqlite3_bind_null(st, i); return;
    case STORE_V_INT: sqlite3_bind_int64(st, i, v.i); return;
    case STORE_V_TEXT: store_bind_text(st, i, v.s); return;
    case STORE_V_STR: sqlite3_bind_text(st, i, v.s ? v.s : "", -1, SQLITE_TRANSIENT); return;
    }
    assert(!"store_val_t type");
}

/* The UPDATE that makes a row final, generated from the column table: "name = ?" per SET column,
 * "name = COALESCE(?, name)" per KEEP column; the anonymous parameters are numbered in order. */
#define UPD_RO(name)
#define UPD_SET(name) ", " #name " = ?"
#define UPD_KEEP(name) ", " #name " = COALESCE(?, " #name ")"
#define UPD(name, sql, TYPE, json, JSON, WRITE, value) UPD_##WRITE(name)
static const char store_update_sql[] =
    "UPDATE jobs SET id = id" STORE_JOB_COLUMNS(UPD) " WHERE id = ?";
#undef UPD

#define BIND_RO(value)
#define BIND_SET(value) store_bind_val(st, ++k, (value));
#define BIND_KEEP(value) store_bind_val(st, ++k, (value));
#define BIND(name, sql, TYPE, json, JSON, WRITE, value) BIND_##WRITE(value)

static int store_update_final(store_t *s, int64_t id, store_fin_t *f, uint64_t finished_unix_ms)
{
    const job_report_t *r = f->r;
    sqlite3_stmt *st;
    int k = 0;

    store_fmt_time(finished_unix_ms, f->finished);
    /* started_ms/finished_ms are the loop's monotonic clock: fine for a duration, not a date */
    f->duration = r->finished_ms >= r->started_ms && r->finished_ms
                      ? V_INT(r->finished_ms - r->started_ms)
                      : V_NULL;
    if (r->have_rev) snprintf(f->rev, sizeof f->rev, "v%u.%u", r->chip_rev / 100, r->chip_rev % 100);
    if (r->have_mac) job_fmt_mac(r->mac, f->mac);
    if (r->have_flash_id) snprintf(f->fid, sizeof f->fid, "%06" PRIx32, r->flash_id & 0xffffffu);
    store_state_ms_json(r, f->state_ms, sizeof f->state_ms);
    if (store_prepare(s, store_update_sql, &st)) return EST_EDB;
    STORE_JOB_COLUMNS(BIND)
    sqlite3_bind_int64(st, ++k, id);
    return store_step_done(s, st, "writing the job's final row");
}
#undef BIND

int store_job_finish(store_t *s, const char *uuid, const job_report_t *r,
                     const store_job_end_t *end, int64_t *seq_out)
{
    store_result_t res;
    sqlite3_stmt *st;
    int64_t id = 0, seq = 0;
    int rc, step;

    if (!uuid || !r) return store_refuse(s, "store_job_finish: uuid and report are required");
    res = end && end->result != STORE_RESULT_RUNNING ? end->result : store_result_of(r);
    if (res == STORE_RESULT_RUNNING || res >= STORE_RESULT__COUNT)
        return store_refuse(s, "job %s: the report has no final result", uuid);

    if (store_begin_durable(s)) return EST_EDB;
    rc = store_prepare(s, "SELECT id, result FROM jobs WHERE uuid = ?1", &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
        step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            rc = store_refuse(s, "job %s is unknown (store_job_begin first)", uuid);
        else if (step != SQLITE_ROW)
            rc = store_fail(s, "looking up job %s", uuid);
        else if (strcmp((const char *)sqlite3_column_text(st, 1), "running") != 0)
            rc = store_refuse(s, "job %s already has its result (%s); a result is recorded once",
                              uuid, (const char *)sqlite3_column_text(st, 1));
        else
            id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (rc == 0) rc = store_next_seq(s, &seq);
    if (rc == 0) {
        store_fin_t f = {.r = r, .res = res, .pass = res == STORE_RESULT_PASS, .seq = seq,
                         .retried = end && end->retried};
        rc = store_update_final(s, id, &f,
                                end && end->finished_unix_ms ? end->finished_unix_ms
                                                             : store_now_ms());
    }
    if (rc == 0) rc = store_insert_images(s, uuid, r);
    if (rc == 0) rc = store_run_hooks(s, true, uuid, r, end, seq);
    rc = store_end_durable(s, rc);
    if (rc == 0 && seq_out) *seq_out = seq;
    return rc;
}

