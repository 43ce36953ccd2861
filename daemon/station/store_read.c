/* SPDX-License-Identifier: MIT */
/* store_read.c — reading the record back: job rows (the SELECT list and the reader generated
 * from store_cols.h), the queries of the HTTP API, images, events, counts, statistics rows,
 * recipes and the slots' recipe choices; every loop goes through store_each().
 * Must not: write. */
#include "store_int.h"
#include "store_cols.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_each(store_t *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *data), void *data,
               const char *what)
{
    int rc, count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        count++;
        if (row(st, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "%s", what);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : EST_EDB;
}

/* The SELECT list and the reader, generated from the column table (store_cols.h). A leading
 * constant keeps the list free of a trailing comma; the indices count from 1. */
#define SEL_TEXT(sql) ", " sql
#define SEL_INT(sql) ", " sql
#define SEL_BOOL(sql) ", " sql
#define SEL_NONE(sql)
#define SEL(name, sql, TYPE, json, JSON, WRITE, value) SEL_##TYPE(sql)
#define STORE_ROW_COLUMNS "0" STORE_JOB_COLUMNS(SEL)

#define IDX_TEXT(name) STORE_COL_##name,
#define IDX_INT(name) STORE_COL_##name,
#define IDX_BOOL(name) STORE_COL_##name,
#define IDX_NONE(name)
#define IDX(name, sql, TYPE, json, JSON, WRITE, value) IDX_##TYPE(name)
enum { STORE_COL__ZERO, STORE_JOB_COLUMNS(IDX) STORE_COL__COUNT };
#undef IDX

static void store_col_text(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    snprintf(buf, cap, "%s", v ? (const char *)v : "");
}

static int64_t store_col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

#define READ_TEXT(name) store_col_text(st, STORE_COL_##name, row->name, sizeof row->name);
#define READ_INT(name) row->name = store_col_int(st, STORE_COL_##name);
#define READ_BOOL(name) row->name = sqlite3_column_int64(st, STORE_COL_##name) != 0;
#define READ_NONE(name)
#define READ(name, sql, TYPE, json, JSON, WRITE, value) READ_##TYPE(name)

static void store_read_row(sqlite3_stmt *st, store_job_row_t *row)
{
    memset(row, 0, sizeof *row);
    STORE_JOB_COLUMNS(READ)
}
#undef READ

/* store_each adapter: a job row into a heap row for the caller's callback. */
typedef struct store_job_each_s {
    store_job_row_t *row;
    store_job_cb cb;
    void *data;
} store_job_each_t;

static int store_job_row_cb(sqlite3_stmt *st, void *data)
{
    store_job_each_t *e = data;
    store_read_row(st, e->row);
    return e->cb(e->row, e->data);
}

/* Step `st` to the end, reading a job row per step into a heap row for cb. */
static int store_each_job(store_t *s, sqlite3_stmt *st, store_job_cb cb, void *data,
                          const char *what)
{
    store_job_each_t e = {malloc(sizeof *e.row), cb, data};
    int rc;
    if (!e.row) {
        sqlite3_finalize(st);
        return store_refuse(s, "out of memory");
    }
    rc = store_each(s, st, store_job_row_cb, &e, what);
    free(e.row);
    return rc;
}

static int store_first_row(const store_job_row_t *row, void *data)
{
    memcpy(data, row, sizeof *row);
    return 1;
}

int store_job_get(store_t *s, const char *uuid, store_job_row_t *row)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s, "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE uuid = ?1", &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    rc = store_each_job(s, st, store_first_row, row, "reading a job");
    return rc < 0 ? rc : rc == 0 ? 1 : 0;
}

int store_jobs_after(store_t *s, int64_t after, size_t limit, store_job_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (limit > STORE_MAX_PAGE)
        return store_refuse(s, "limit %zu is above the maximum of %d", limit, STORE_MAX_PAGE);
    if (store_prepare(s,
                      "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE seq > ?1 ORDER BY seq "
                      "LIMIT ?2",
                      &st))
        return EST_EDB;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    return store_each_job(s, st, cb, data, "listing jobs");
}

int store_count_jobs(store_t *s, const char *result, int64_t *count)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(
            s, result ? "SELECT count(*) FROM jobs WHERE result = ?1" : "SELECT count(*) FROM jobs",
            &st))
        return EST_EDB;
    if (result) sqlite3_bind_text(st, 1, result, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        store_fail(s, "counting jobs");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : EST_EDB;
}

/* ---- queries of the HTTP API ---- */

int store_jobs_query(store_t *s, int64_t after, size_t limit, const store_job_filter_t *f,
                     store_job_cb cb, void *data)
{
    static const store_job_filter_t none = {0};
    sqlite3_stmt *st;
    if (limit > STORE_QUERY_MAX)
        return store_refuse(s, "limit %zu is above the maximum of %d", limit, STORE_QUERY_MAX);
    if (!f) f = &none;
    /* Only the filters given are in the statement, so that SQLite can pick an index for them
     * (a board's few jobs by jobs_mac instead of a walk along seq). */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " STORE_ROW_COLUMNS
             " FROM jobs WHERE seq > ?1%s%s%s%s%s%s ORDER BY seq LIMIT ?2",
             f->result ? " AND result = ?3" : "", f->mac ? " AND mac = ?4" : "",
             f->slot ? " AND slot = ?5" : "", f->since ? " AND finished_at >= ?6" : "",
             f->until ? " AND finished_at < ?7" : "",
             f->final > 0 ? " AND final = 1" : f->final < 0 ? " AND final = 0" : "");
    if (store_prepare(s, sql, &st)) return EST_EDB;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    /* numbered parameters keep their numbers; binding one the text lacks is a no-op */
    if (f->result) store_bind_text(st, 3, f->result);
    if (f->mac) store_bind_text(st, 4, f->mac);
    if (f->slot) store_bind_text(st, 5, f->slot);
    if (f->since) store_bind_text(st, 6, f->since);
    if (f->until) store_bind_text(st, 7, f->until);
    return store_each_job(s, st, cb, data, "listing jobs");
}

int store_jobs_by_mac(store_t *s, const char *mac, size_t limit, store_job_cb cb, void *data)
{
    sqlite3_stmt *st;
    if (store_prepare(s,
                      "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE mac = ?1 AND seq IS NOT NULL "
                      "ORDER BY id LIMIT ?2",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, mac, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
    return store_each_job(s, st, cb, data, "listing a board's jobs");
}

int store_job_last_of_slot(store_t *s, const char *slot, store_job_row_t *row)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s,
                      "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE slot = ?1 AND seq IS NOT NULL "
                      "ORDER BY seq DESC LIMIT 1",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, slot, -1, SQLITE_TRANSIENT);
    rc = store_each_job(s, st, store_first_row, row, "reading a slot's last job");
    return rc < 0 ? rc : rc == 0 ? 1 : 0;
}

static const char *store_col_str(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* The caller's typed callback, for the store_each adapters below. */
typedef void (*store_fn)(void);
typedef struct store_cb_s {
    store_fn fn;
    void *data;
    bool with_json;
} store_cb_t;

typedef int (*store_image_cb)(const store_image_row_t *, void *);
typedef int (*store_event_cb)(const store_event_row_t *, void *);
typedef int (*store_count_cb)(const char *, const char *, bool, int64_t, void *);
typedef int (*store_stat_cb)(const store_stat_row_t *, void *);
typedef int (*store_recipe_cb)(const store_recipe_row_t *, void *);
typedef int (*store_choice_cb)(const char *, const char *, void *);

static int store_image_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    store_image_row_t r = {
        .idx = sqlite3_column_int64(st, 0),
        .offset = sqlite3_column_int64(st, 1),
        .size = sqlite3_column_int64(st, 2),
        .compressed_size = sqlite3_column_int64(st, 3),
        .md5 = store_col_str(st, 4),
        .patched = sqlite3_column_int(st, 5) != 0,
        .verified = sqlite3_column_int(st, 6) != 0,
        .duration_ms = store_col_int(st, 7),
    };
    return ((store_image_cb)c->fn)(&r, c->data);
}

int store_job_images(store_t *s, const char *uuid, int (*cb)(const store_image_row_t *, void *),
                     void *data)
{
    store_cb_t c = {(store_fn)cb, data, false};
    sqlite3_stmt *st;
    if (store_prepare(s,
                      "SELECT idx, offset, size, compressed_size, md5, patched, verified, "
                      "duration_ms FROM job_images WHERE job_uuid = ?1 ORDER BY idx",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    return store_each(s, st, store_image_row, &c, "reading the images of a job");
}

static int store_event_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    store_event_row_t r = {
        .n = sqlite3_column_int64(st, 0),
        .t_ms = sqlite3_column_int64(st, 1),
        .kind = store_col_str(st, 2),
        .state = store_col_str(st, 3),
        .detail = store_col_str(st, 4),
    };
    return ((store_event_cb)c->fn)(&r, c->data);
}

int store_job_events(store_t *s, const char *uuid, size_t limit,
                     int (*cb)(const store_event_row_t *, void *), void *data)
{
    store_cb_t c = {(store_fn)cb, data, false};
    sqlite3_stmt *st;
    if (store_prepare(s,
                      "SELECT n, t_ms, kind, state, detail FROM job_events WHERE job_uuid = ?1 "
                      "ORDER BY n LIMIT ?2",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
    return store_each(s, st, store_event_row, &c, "reading the events of a job");
}

static int store_count_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    return ((store_count_cb)c->fn)(store_col_str(st, 0), store_col_str(st, 1),
                                   sqlite3_column_int(st, 2) != 0, sqlite3_column_int64(st, 3),
                                   c->data);
}

int store_job_counts(store_t *s,
                     int (*cb)(const char *slot, const char *result, bool final, int64_t n, void *),
                     void *data)
{
    store_cb_t c = {(store_fn)cb, data, false};
    sqlite3_stmt *st;
    if (store_prepare(s,
                      "SELECT slot, result, final, count(*) FROM jobs GROUP BY slot, result, "
                      "final",
                      &st))
        return EST_EDB;
    return store_each(s, st, store_count_row, &c, "counting jobs per slot") < 0 ? EST_EDB : 0;
}

static int store_stat_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    store_stat_row_t r = {
        .slot = store_col_str(st, 0),
        .result = store_col_str(st, 1),
        .error_class = store_col_str(st, 2),
        .started_at = store_col_str(st, 3),
        .duration_ms = store_col_int(st, 4),
    };
    return ((store_stat_cb)c->fn)(&r, c->data);
}

int store_stats_rows(store_t *s, const char *since, const char *until,
                     int (*cb)(const store_stat_row_t *, void *), void *data)
{
    store_cb_t c = {(store_fn)cb, data, false};
    sqlite3_stmt *st;
    /* final rows only: a retried attempt is not a board (docs/API.md) */
    if (store_prepare(s,
                      "SELECT slot, result, error_class, started_at, duration_ms FROM jobs "
                      "WHERE finished_at >= ?1 AND finished_at < ?2 AND final = 1",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, since, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, until, -1, SQLITE_TRANSIENT);
    return store_each(s, st, store_stat_row, &c, "reading jobs for statistics");
}

static int store_recipe_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    store_recipe_row_t r = {
        .hash = store_col_str(st, 0),
        .name = store_col_str(st, 1),
        .version = store_col_str(st, 2),
        .created_at = store_col_str(st, 3),
    };
    if (c->with_json) {
        r.json = store_col_str(st, 4);
        r.json_len = (size_t)sqlite3_column_bytes(st, 4);
    }
    return ((store_recipe_cb)c->fn)(&r, c->data);
}

static int store_each_recipe(store_t *s, sqlite3_stmt *st, bool with_json,
                             int (*cb)(const store_recipe_row_t *, void *), void *data)
{
    store_cb_t c = {(store_fn)cb, data, with_json};
    return store_each(s, st, store_recipe_row, &c, "reading recipes");
}

int store_recipes_list(store_t *s, int (*cb)(const store_recipe_row_t *, void *), void *data)
{
    sqlite3_stmt *st;
    if (store_prepare(s,
                      "SELECT hash, name, version, created_at FROM recipes "
                      "ORDER BY created_at DESC, hash",
                      &st))
        return EST_EDB;
    return store_each_recipe(s, st, false, cb, data);
}

int store_recipe_get(store_t *s, const char *hash, int (*cb)(const store_recipe_row_t *, void *),
                     void *data)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(
            s, "SELECT hash, name, version, created_at, json FROM recipes WHERE hash = ?1", &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    rc = store_each_recipe(s, st, true, cb, data);
    return rc < 0 ? rc : rc == 0 ? 1 : 0;
}


static int store_choice_row(sqlite3_stmt *st, void *data)
{
    const store_cb_t *c = data;
    return ((store_choice_cb)c->fn)(store_col_str(st, 0), store_col_str(st, 1), c->data);
}

int store_slot_recipes(store_t *s, int (*cb)(const char *slot, const char *hash, void *),
                       void *data)
{
    store_cb_t c = {(store_fn)cb, data, false};
    sqlite3_stmt *st;
    if (store_prepare(s, "SELECT slot, recipe_hash FROM slot_recipes ORDER BY slot", &st))
        return EST_EDB;
    return store_each(s, st, store_choice_row, &c, "reading the slots' recipes") < 0 ? EST_EDB
                                                                                      : 0;
}
