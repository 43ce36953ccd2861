/* SPDX-License-Identifier: MIT */
/* store_int.h — what the store_*.c files share (not for use outside daemon/station/store*.c):
 * the connection and the helpers of store.c. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <sqlite3.h>

#include "store.h"

#define STORE_MAX_PAGE 1000

typedef struct store_hook_s {
    store_finish_hook_fn fn;
    void *ud;
} store_hook_t;

struct store_s {
    sqlite3 *db;
    unsigned version;
    char err[512];
    store_hook_t begin_hooks[STORE_MAX_HOOKS], finish_hooks[STORE_MAX_HOOKS];
    size_t n_begin_hooks, n_finish_hooks;
    const store_t *hooks_from; /* a writer connection runs the hooks of the store it serves */
};

/* Run the begin (finish == false) or finish hooks inside the open transaction: 0 or EST_EDB. */
int store_run_hooks(store_t *s, bool finish, const char *uuid, const job_report_t *r,
                    const store_job_end_t *end, int64_t seq);

/* Record "<what we were doing>: <SQLite's message>" and return EST_EDB. */
int store_fail(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same without SQLite's message (the failure is ours, not SQLite's). */
int store_refuse(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int store_exec(store_t *s, const char *sql);
int store_prepare(store_t *s, const char *sql, sqlite3_stmt **st);
/* NULL or "" binds NULL. */
void store_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Run a statement that returns no rows (or whose rows do not matter) and finalize it. */
int store_step_done(store_t *s, sqlite3_stmt *st, const char *what);
int store_query_int(store_t *s, const char *sql, int64_t *out);
void store_rollback(store_t *s);
/* A write transaction committed with synchronous=FULL (store.c explains). */
int store_begin_durable(store_t *s);
int store_end_durable(store_t *s, int rc);
/* Next value of the MES cursor (inside a write transaction). */
int store_next_seq(store_t *s, int64_t *seq);

/* Step `st` to its end calling row(st, data) per row (non-zero stops early), then finalize it.
 * The number of rows passed to row, or EST_EDB with "<what>: <SQLite's message>". */
int store_each(store_t *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *data), void *data,
               const char *what);

#endif
