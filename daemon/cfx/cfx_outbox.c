/* SPDX-License-Identifier: MIT */
/* cfx_outbox.c — what each job event writes into the outbox, and the sender's reads and
 * deletes (docs/CFX.md "Delivery", schema/005_outbox.sql).
 * Must not: open a transaction inside the hooks (the store's is already open), log, or use
 * libuv. */
#include "cfx_outbox.h"
#include "cfx_msg.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small SQLite helpers ---- */

static int ob_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL);
}

static void ob_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Run a statement that returns no rows; params are text (NULL binds NULL). */
static int ob_exec(sqlite3 *db, const char *sql, int n, const char *const *p)
{
    sqlite3_stmt *st;
    int rc = ob_prepare(db, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    for (int i = 0; i < n; i++)
        ob_text(st, i + 1, p[i]);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int ob_count(sqlite3 *db, const char *sql, const char *p1, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = ob_prepare(db, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    ob_text(st, 1, p1);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static unsigned ob_lane(const cfx_outbox_cfg_t *c, const char *slot)
{
    for (size_t i = 0; slot && i < c->n_slots; i++)
        if (!strcmp(c->slots[i], slot))
            return (unsigned)i + 1;
    return 0;
}

/* ---- writing one message ---- */

/* Append `body` (taken over) as message `kind` of `stream`. The bound: a full outbox counts the
 * message as dropped instead (the job is still recorded; the alarm says so). */
static int ob_put(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *stream, const char *kind,
                  const char *job_uuid, cJSON *body)
{
    char uid[STORE_UUID_LEN], now[STORE_TIME_LEN], counter[64];
    uint64_t ms = store_now_ms();
    int64_t depth = 0;
    sqlite3_stmt *st;
    char *env;
    int rc;

    if (!body)
        return SQLITE_NOMEM;
    rc = ob_count(db, "SELECT count(*) FROM outbox WHERE sink = ?1", c->sink, &depth);
    if (rc != SQLITE_OK) {
        cJSON_Delete(body);
        return rc;
    }
    if (depth >= c->max_rows) {
        const char *p[1] = {counter};
        cJSON_Delete(body);
        snprintf(counter, sizeof counter, "outbox_dropped_%s", c->sink);
        rc = ob_exec(db, "INSERT OR IGNORE INTO counters (name, value) VALUES (?1, 0)", 1, p);
        return rc ? rc : ob_exec(db, "UPDATE counters SET value = value + 1 WHERE name = ?1", 1, p);
    }
    if (store_new_uuid(uid) != 0) {
        cJSON_Delete(body);
        return SQLITE_ERROR;
    }
    env = cfx_envelope(kind, uid, ms, c->handle, NULL, NULL, body);
    if (!env)
        return SQLITE_NOMEM;
    rc = ob_prepare(db,
                    "INSERT INTO outbox (sink, stream, unique_id, kind, job_uuid, body, created_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &st);
    if (rc == SQLITE_OK) {
        ob_text(st, 1, c->sink);
        ob_text(st, 2, stream);
        ob_text(st, 3, uid);
        ob_text(st, 4, kind);
        ob_text(st, 5, job_uuid);
        ob_text(st, 6, env);
        ob_text(st, 7, store_fmt_time(ms, now));
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_finalize(st);
    }
    cJSON_free(env);
    return rc;
}

/* ---- states (outbox_state) ---- */

typedef struct ob_state_s {
    char state[40];
    uint64_t since_ms;
    bool found;
} ob_state_t;

static int ob_state_get(sqlite3 *db, const char *sink, const char *key, ob_state_t *s)
{
    sqlite3_stmt *st;
    int rc = ob_prepare(db, "SELECT state, since_ms FROM outbox_state WHERE sink = ?1 AND key = ?2",
                        &st);
    memset(s, 0, sizeof *s);
    if (rc != SQLITE_OK)
        return rc;
    ob_text(st, 1, sink);
    ob_text(st, 2, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(s->state, sizeof s->state, "%s", (const char *)sqlite3_column_text(st, 0));
        s->since_ms = (uint64_t)sqlite3_column_int64(st, 1);
        s->found = true;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int ob_state_set(sqlite3 *db, const char *sink, const char *key, const char *state)
{
    char since[24];
    const char *p[4] = {sink, key, state, since};
    if (!state)
        return ob_exec(db, "DELETE FROM outbox_state WHERE sink = ?1 AND key = ?2", 2, p);
    snprintf(since, sizeof since, "%llu", (unsigned long long)store_now_ms());
    return ob_exec(db,
                   "INSERT INTO outbox_state (sink, key, state, since_ms) VALUES (?1, ?2, ?3, "
                   "CAST(?4 AS INTEGER)) ON CONFLICT (sink, key) DO UPDATE SET state = "
                   "excluded.state, since_ms = excluded.since_ms",
                   4, p);
}

/* A slot's (stage != NULL) or the station's state becomes `to`: the change message if it is one. */
static int ob_state_change(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *stage,
                           unsigned lane, const char *to, cJSON *fault)
{
    char key[80];
    ob_state_t old;
    uint64_t now = store_now_ms();
    int rc;
    snprintf(key, sizeof key, "%s%s", stage ? "stage:" : "station", stage ? stage : "");
    rc = ob_state_get(db, c->sink, key, &old);
    if (rc == SQLITE_OK && old.found && !strcmp(old.state, to)) {
        cJSON_Delete(fault);
        return SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = ob_put(db, c, stage ? stage : "station",
                    stage ? CFX_STAGE_STATE_CHANGED : CFX_STATION_STATE_CHANGED, NULL,
                    cfx_body_state_changed(stage, lane,
                                           old.found ? old.state : CFX_STATE_SBY_NO_PRODUCT,
                                           old.found && now > old.since_ms ? now - old.since_ms : 0,
                                           to, fault));
    else
        cJSON_Delete(fault);
    return rc ? rc : ob_state_set(db, c->sink, key, to);
}

/* The station is productive while any slot works, down while a slot has an uncleared fault
 * and none works, else waiting for product (docs/CFX.md "States"). */
static int ob_station_state(sqlite3 *db, const cfx_outbox_cfg_t *c)
{
    int64_t running = 0, faults = 0;
    int rc = ob_count(db, "SELECT count(*) FROM outbox_open_work WHERE sink = ?1", c->sink,
                      &running);
    if (rc == SQLITE_OK)
        rc = ob_count(db,
                      "SELECT count(*) FROM outbox_state WHERE sink = ?1 AND key LIKE 'fault:%'",
                      c->sink, &faults);
    if (rc != SQLITE_OK)
        return rc;
    return ob_state_change(db, c, NULL, 0,
                           running   ? CFX_STATE_PRD_REGULAR_WORK
                           : faults  ? CFX_STATE_USD
                                     : CFX_STATE_SBY_NO_PRODUCT,
                           NULL);
}

/* ---- the job's facts ---- */

typedef struct ob_job_s {
    cfx_job_t j;
    char slot[64], result[16], error_class[32], message[512], mac[18], chip[16];
} ob_job_t;

static void ob_col(sqlite3_stmt *st, int i, char *buf, size_t cap, const char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t) {
        *out = NULL;
        return;
    }
    snprintf(buf, cap, "%s", (const char *)t);
    *out = buf;
}

/* 0 found, SQLITE_NOTFOUND, or an SQLite error. */
static int ob_job_read(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *uuid, ob_job_t *o)
{
    sqlite3_stmt *st;
    int rc = ob_prepare(db,
                        "SELECT slot, result, error_class, message, mac, chip FROM jobs WHERE "
                        "uuid = ?1",
                        &st);
    memset(o, 0, sizeof *o);
    if (rc != SQLITE_OK)
        return rc;
    ob_text(st, 1, uuid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ob_col(st, 0, o->slot, sizeof o->slot, &o->j.slot);
        ob_col(st, 1, o->result, sizeof o->result, &o->j.result);
        ob_col(st, 2, o->error_class, sizeof o->error_class, &o->j.error_class);
        ob_col(st, 3, o->message, sizeof o->message, &o->j.message);
        ob_col(st, 4, o->mac, sizeof o->mac, &o->j.mac);
        ob_col(st, 5, o->chip, sizeof o->chip, &o->j.chip);
        o->j.uuid = uuid;
        o->j.lane = ob_lane(c, o->j.slot);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The verify and the post-flash test, from the report (docs/CFX.md "UnitsTested"). */
static void ob_job_tests(cfx_job_t *j, const job_report_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_images && i < PLAN_MAX_IMAGES; i++)
        j->verify_ran = j->verify_ran || r->images[i].verified;
    if (r->result == JOB_RESULT_FAIL && r->failed_state == JOB_ST_VERIFY)
        j->verify_ran = true;
    j->verify_passed = j->verify_ran && !(r->result == JOB_RESULT_FAIL &&
                                          (r->failed_state == JOB_ST_VERIFY ||
                                           r->error_class == EST_CLASS_MD5_MISMATCH));
    j->test_ran = r->test_ran;
    j->test_passed = r->test_ran && r->test_passed;
}

/* ---- job events ---- */

int cfx_outbox_job_begin(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *uuid)
{
    ob_job_t o;
    ob_state_t fault;
    char key[80];
    const char *p[2] = {c->sink, uuid};
    int rc = ob_job_read(db, c, uuid, &o);
    if (rc != SQLITE_OK)
        return rc;
    /* a new board in the slot (or the retry) ends the slot's fault */
    snprintf(key, sizeof key, "fault:%s", o.j.slot);
    rc = ob_state_get(db, c->sink, key, &fault);
    if (rc == SQLITE_OK && fault.found) {
        rc = ob_put(db, c, o.j.slot, CFX_FAULT_CLEARED, NULL, cfx_body_fault_cleared(fault.state));
        if (rc == SQLITE_OK)
            rc = ob_state_set(db, c->sink, key, NULL);
    }
    if (rc == SQLITE_OK)
        rc = ob_put(db, c, o.j.slot, CFX_WORK_STARTED, uuid, cfx_body_work_started(&o.j));
    if (rc == SQLITE_OK)
        rc = ob_exec(db, "INSERT OR IGNORE INTO outbox_open_work (sink, job_uuid) VALUES (?1, ?2)",
                     2, p);
    if (rc == SQLITE_OK)
        rc = ob_state_change(db, c, o.j.slot, o.j.lane, CFX_STATE_PRD_REGULAR_WORK, NULL);
    return rc == SQLITE_OK ? ob_station_state(db, c) : rc;
}

/* FaultOccurred for a failed job, remembered as the slot's active fault. */
static int ob_job_fault(sqlite3 *db, const cfx_outbox_cfg_t *c, const cfx_job_t *j,
                        char *occ /* STORE_UUID_LEN */)
{
    char key[80];
    int rc;
    if (store_new_uuid(occ) != 0)
        return SQLITE_ERROR;
    rc = ob_put(db, c, j->slot, CFX_FAULT_OCCURRED, j->uuid, cfx_body_fault_occurred(j, occ));
    snprintf(key, sizeof key, "fault:%s", j->slot);
    return rc ? rc : ob_state_set(db, c->sink, key, occ);
}

int cfx_outbox_job_end(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *uuid,
                       const job_report_t *r)
{
    ob_job_t o;
    char vid[STORE_UUID_LEN], tid[STORE_UUID_LEN], occ[STORE_UUID_LEN] = "";
    const char *p[2] = {c->sink, uuid};
    bool fail;
    int rc = ob_job_read(db, c, uuid, &o);
    if (rc != SQLITE_OK)
        return rc;
    ob_job_tests(&o.j, r);
    fail = o.j.result && !strcmp(o.j.result, "fail");
    if (o.j.result && !strcmp(o.j.result, "pass") && o.j.mac && *o.j.mac)
        rc = ob_put(db, c, o.j.slot, CFX_UNITS_PERSONALIZED, uuid,
                    cfx_body_units_personalized(&o.j));
    if (rc == SQLITE_OK && (o.j.verify_ran || o.j.test_ran)) {
        if (store_new_uuid(vid) != 0 || store_new_uuid(tid) != 0)
            return SQLITE_ERROR;
        rc = ob_put(db, c, o.j.slot, CFX_UNITS_TESTED, uuid,
                    cfx_body_units_tested(&o.j, vid, tid));
    }
    if (rc == SQLITE_OK && fail)
        rc = ob_job_fault(db, c, &o.j, occ);
    if (rc == SQLITE_OK)
        rc = ob_put(db, c, o.j.slot, CFX_WORK_COMPLETED, uuid, cfx_body_work_completed(&o.j));
    if (rc == SQLITE_OK)
        rc = ob_exec(db, "DELETE FROM outbox_open_work WHERE sink = ?1 AND job_uuid = ?2", 2, p);
    if (rc == SQLITE_OK)
        rc = ob_state_change(db, c, o.j.slot, o.j.lane,
                             fail ? CFX_STATE_USD : CFX_STATE_SBY_NO_PRODUCT,
                             fail ? cfx_fault(&o.j, occ) : NULL);
    return rc == SQLITE_OK ? ob_station_state(db, c) : rc;
}

/* ---- own transactions (the sender's connection) ---- */

static int ob_begin(sqlite3 *db)
{
    return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
}

static int ob_end(sqlite3 *db, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int cfx_outbox_recover(sqlite3 *db, const cfx_outbox_cfg_t *c)
{
    sqlite3_stmt *st;
    char uuids[64][STORE_UUID_LEN];
    int n = 0, total = 0, rc;
    do { /* 64 at a time: the statement is finished before the writes */
        n = 0;
        rc = ob_begin(db);
        if (rc != SQLITE_OK)
            return -rc;
        rc = ob_prepare(db,
                        "SELECT w.job_uuid FROM outbox_open_work w LEFT JOIN jobs j ON "
                        "j.uuid = w.job_uuid WHERE w.sink = ?1 AND (j.result IS NULL OR "
                        "j.result <> 'running') LIMIT 64",
                        &st);
        if (rc == SQLITE_OK) {
            ob_text(st, 1, c->sink);
            while (n < 64 && sqlite3_step(st) == SQLITE_ROW)
                snprintf(uuids[n++], STORE_UUID_LEN, "%s",
                         (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        for (int i = 0; i < n && rc == SQLITE_OK; i++) {
            const char *p[2] = {c->sink, uuids[i]};
            rc = cfx_outbox_job_end(db, c, uuids[i], NULL);
            if (rc == SQLITE_NOTFOUND) /* the job row is gone: nothing to tell */
                rc = ob_exec(db, "DELETE FROM outbox_open_work WHERE sink = ?1 AND job_uuid = ?2",
                             2, p);
        }
        rc = ob_end(db, rc);
        if (rc != SQLITE_OK)
            return -rc;
        total += n;
    } while (n == 64);
    return total;
}

int cfx_outbox_put_station(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *stream,
                           const char *kind, void *cjson_body)
{
    int rc = ob_begin(db);
    if (rc != SQLITE_OK) {
        cJSON_Delete(cjson_body);
        return rc;
    }
    return ob_end(db, ob_put(db, c, stream, kind, NULL, cjson_body));
}

int cfx_outbox_fetch(sqlite3 *db, const char *sink, int64_t after, size_t max,
                     int (*cb)(const cfx_outbox_row_t *row, void *ud), void *ud)
{
    sqlite3_stmt *st;
    int n = 0, rc = ob_prepare(db,
                               "SELECT id, unique_id, kind, stream, body FROM outbox WHERE sink = "
                               "?1 AND parked = 0 AND id > ?2 ORDER BY id LIMIT ?3",
                               &st);
    if (rc != SQLITE_OK)
        return -rc;
    ob_text(st, 1, sink);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, (int64_t)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cfx_outbox_row_t row = {sqlite3_column_int64(st, 0),
                                (const char *)sqlite3_column_text(st, 1),
                                (const char *)sqlite3_column_text(st, 2),
                                (const char *)sqlite3_column_text(st, 3),
                                (const char *)sqlite3_column_text(st, 4)};
        n++;
        if (cb(&row, ud) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : -rc;
}

int cfx_outbox_delete(sqlite3 *db, const int64_t *ids, size_t n)
{
    sqlite3_stmt *st;
    int rc;
    if (n == 0)
        return SQLITE_OK;
    rc = ob_begin(db);
    if (rc != SQLITE_OK)
        return rc;
    rc = ob_prepare(db, "DELETE FROM outbox WHERE id = ?1", &st);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(st);
    return ob_end(db, rc);
}

int cfx_outbox_park(sqlite3 *db, int64_t id, const char *why)
{
    sqlite3_stmt *st;
    int rc = ob_prepare(db,
                        "UPDATE outbox SET parked = 1, attempts = attempts + 1, last_error = ?2 "
                        "WHERE id = ?1",
                        &st);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    ob_text(st, 2, why);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int cfx_outbox_depth(sqlite3 *db, const char *sink, cfx_outbox_depth_t *d)
{
    char counter[64];
    int rc;
    memset(d, 0, sizeof *d);
    snprintf(counter, sizeof counter, "outbox_dropped_%s", sink);
    rc = ob_count(db, "SELECT count(*) FROM outbox WHERE sink = ?1 AND parked = 0", sink,
                  &d->waiting);
    if (rc == SQLITE_OK)
        rc = ob_count(db, "SELECT count(*) FROM outbox WHERE sink = ?1 AND parked = 1", sink,
                      &d->parked);
    if (rc == SQLITE_OK)
        rc = ob_count(db, "SELECT value FROM counters WHERE name = ?1", counter, &d->dropped);
    return rc;
}
