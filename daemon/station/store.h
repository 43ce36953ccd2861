/* SPDX-License-Identifier: MIT */
/* store.h — the station's permanent record in SQLite: recipes (by content hash), jobs, the
 * images each job wrote and its events, the recipe chosen per slot through the API; the queries
 * behind the HTTP API (filters, paging, stats); schema migrations compiled in from
 * schema/NNN_*.sql.
 * Owns: the database file, its pragmas and schema version, and the MES cursor (`jobs.seq`,
 * assigned in finish order). Must not: log, know about libuv, or be used from two threads.
 * Every function returns 0 (or a count) on success and EST_EDB on failure; store_errmsg() then
 * says why (SQLite's message with what the store was doing). */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

typedef struct store_s store_t;

/* One migration compiled into the binary (generated from schema/NNN_name.sql). */
typedef struct store_migration_s {
    unsigned version; /* NNN: becomes PRAGMA user_version once applied */
    const char *name; /* "001_init.sql" */
    const char *sql;
} store_migration_t;

/* The migrations built into this binary, in version order (1, 2, ... without gaps). */
const store_migration_t *store_migrations(size_t *n);

/* Open or create the database at `path`: WAL, foreign keys on, synchronous NORMAL (durable
 * writes switch to FULL, see store_job_finish), busy timeout 5 s; apply the missing migrations,
 * each in its own transaction; then mark jobs a crash left 'running' as 'interrupted'.
 * *out is set even on failure (unless out of memory) so that store_errmsg() can say why; the
 * caller closes it either way. Returns the number of jobs marked interrupted (>= 0), or EST_EDB
 * (also when the file's schema is newer than this program knows). */
int store_open(const char *path, store_t **out);
/* A second, query-only connection to an existing, migrated database: for long reads on a worker
 * thread (statistics) while the daemon's connection goes on writing (WAL lets both proceed).
 * One thread per connection. 0 or EST_EDB (*out set as with store_open). */
int store_open_query(const char *path, store_t **out);
/* A second read-write connection to the database `main` has open (migrated), for the store
 * writer thread (store_writer.h): it runs `main`'s hooks. One thread per connection. 0 or EST_EDB
 * (*out set as with store_open). */
int store_open_writer(const store_t *main, store_t **out);
void store_close(store_t *s);
/* The last error: never NULL ("" when none). */
const char *store_errmsg(const store_t *s);
/* PRAGMA user_version of the open database. */
unsigned store_schema_version(const store_t *s);
/* PRAGMA integrity_check and foreign_key_check: 0 when both are clean, EST_EDB otherwise. */
int store_check(store_t *s);

/* Wall-clock time in unix milliseconds, and its ISO-8601 UTC form "2024-05-01T12:34:56.789Z"
 * (buf >= STORE_TIME_LEN bytes), the form stored in every *_at column. */
#define STORE_TIME_LEN 25
uint64_t store_now_ms(void);
const char *store_fmt_time(uint64_t unix_ms, char *buf);
/* A random (version 4) UUID in lower case, from OpenSSL's RAND_bytes; buf >= 37 bytes. */
#define STORE_UUID_LEN 37
int store_new_uuid(char *buf);

/* Record a recipe by content: `hash` must be the sha256 (lower-case hex) of `json`'s exact bytes
 * (checked: EST_EDB otherwise). Idempotent: putting the same recipe again changes nothing. */
int store_recipe_put(store_t *s, const char *hash, const char *name, const char *version,
                     const char *json, size_t json_len);

typedef struct store_job_start_s {
    const char *uuid;         /* from store_new_uuid() */
    const char *slot;         /* "A1" */
    const char *port;         /* port spec */
    const char *recipe_hash;  /* NULL when the job runs without a recipe; else must be stored */
    uint64_t started_unix_ms; /* 0 = now */
    uint32_t baud;            /* 0 = not recorded */
    unsigned attempt;         /* 1 for the first try of a board; 0 is taken as 1 */
} store_job_start_t;

/* Insert the job's 'running' row. */
int store_job_begin(store_t *s, const store_job_start_t *st);

/* Append an event to a job's log: `t_ms` since the job started, `kind` e.g. "state", "log",
 * `state` a job state name (may be NULL), `detail_json` a JSON text (may be NULL). */
int store_job_event(store_t *s, const char *uuid, uint64_t t_ms, const char *kind,
                    const char *state, const char *detail_json);

typedef enum {
    STORE_RESULT_RUNNING,
    STORE_RESULT_PASS,
    STORE_RESULT_FAIL,
    STORE_RESULT_INTERRUPTED,
    STORE_RESULT_CANCELLED,
    STORE_RESULT__COUNT
} store_result_t;
/* "running", "pass", "fail", "interrupted", "cancelled" (the jobs.result values). */
const char *store_result_name(store_result_t r);

typedef struct store_job_end_s {
    uint64_t finished_unix_ms; /* 0 = now */
    /* STORE_RESULT_RUNNING = from the report (pass / fail / cancelled). The daemon may say
     * STORE_RESULT_INTERRUPTED for a job it had to abandon (shutdown). */
    store_result_t result;
    /* The job failed and the board is tried again (retry policy): stored with final = 0, so
     * that counts of boards leave it out. */
    bool retried;
} store_job_end_t;

/* Complete the job's running row from `r` (chip, revision, MAC, flash ID and size, result,
 * error class, message, failed state, NAK detail, per-state durations, bytes, retries) and
 * insert its images, in ONE transaction committed with synchronous=FULL: once this returns 0
 * the result survives a crash or power loss and may be shown. Assigns the job's `seq` (the MES
 * cursor, finish order) and returns it in *seq (may be NULL). `end` may be NULL. A job that is
 * not running (unknown uuid, or already finished) is refused: a result is recorded once. */
int store_job_finish(store_t *s, const char *uuid, const job_report_t *r,
                     const store_job_end_t *end, int64_t *seq);

/* Hooks of other modules (the CFX outbox, docs/CFX.md "Delivery") run INSIDE the transaction
 * that records a job, with that transaction's connection (`db`, a sqlite3 *), on whatever thread
 * commits it: a begin hook after the 'running' row is inserted (r == NULL, end == NULL, seq -1),
 * a finish hook after the final row is written (seq assigned). A non-zero return (an SQLite
 * error code) rolls the whole transaction back: the job is then not recorded. A hook must use
 * only `db` and its own immutable data. At most STORE_MAX_HOOKS of each; 0 or EST_EDB. */
#define STORE_MAX_HOOKS 4
typedef int (*store_finish_hook_fn)(void *db /* sqlite3 * */, const char *uuid,
                                    const job_report_t *r, const store_job_end_t *end,
                                    int64_t seq, void *ud);
int store_add_finish_hook(store_t *s, store_finish_hook_fn fn, void *ud);
int store_add_begin_hook(store_t *s, store_finish_hook_fn fn, void *ud);

/* A job row as read back (for tests, the CLI and the API). NULL columns read as "" / -1. The
 * fields and their columns: store_cols.h. */
typedef struct store_job_row_s {
    int64_t id, seq; /* seq -1 while running */
    char uuid[STORE_UUID_LEN];
    char slot[64];
    char port[256];
    char recipe_hash[65];
    char recipe_name[65], recipe_version[65]; /* of recipe_hash in table recipes */
    char chip[16];
    char revision[16];
    char mac[18];
    char flash_id[7];
    int64_t flash_size;
    char started_at[STORE_TIME_LEN], finished_at[STORE_TIME_LEN];
    int64_t duration_ms;
    char result[16];
    char error_class[32];
    char message[512];
    char failed_state[32];
    char stub_name[96];  /* the flasher stub that ran (job_report_t.stub_name); "" when none */
    char state_ms[1024]; /* JSON object */
    int64_t bytes_written, bytes_sent, retries, baud, attempt;
    int64_t n_images;
    bool final; /* false: a failed attempt that was retried */
    char test_output[JOB_TEST_OUTPUT_MAX + 1]; /* the post-flash test's output; "" when none */
    char security[JOB_SECURITY_MAX]; /* security read-out JSON (secstate.h); "" when none */
    char not_verified_reason[160];   /* why the images were not verified; "" when nothing */
} store_job_row_t;

/* Read one job by uuid: 0 found, 1 not found, EST_EDB. */
int store_job_get(store_t *s, const char *uuid, store_job_row_t *row);
/* Finished jobs with seq > after, in seq order, at most `limit` (<= 1000): cb per row; a non-zero
 * return from cb stops early. Returns the number of rows passed to cb, or EST_EDB. */
typedef int (*store_job_cb)(const store_job_row_t *row, void *data);
int store_jobs_after(store_t *s, int64_t after, size_t limit, store_job_cb cb, void *data);
/* Number of jobs with the given result (NULL = all jobs) into *count. */
int store_count_jobs(store_t *s, const char *result, int64_t *count);

/* ---- queries of the HTTP API ---- */

#define STORE_QUERY_MAX 5000 /* rows per store_jobs_query call */

/* Filters of GET /api/v1/jobs; NULL members do not filter. `mac` in the stored form
 * (aa:bb:cc:dd:ee:ff), `since`/`until` in store_fmt_time's fixed-width form (compared as text). */
typedef struct store_job_filter_s {
    const char *result;
    const char *mac;
    const char *slot;
    const char *since; /* finished_at >= since */
    const char *until; /* finished_at < until (same form) */
    int final;         /* 0 no filter, 1 final rows only, -1 retried attempts only */
} store_job_filter_t;

/* Finished jobs with seq > after matching `f` (may be NULL), in seq order, at most `limit`
 * (<= STORE_QUERY_MAX). Returns the number of rows passed to cb, or EST_EDB. */
int store_jobs_query(store_t *s, int64_t after, size_t limit, const store_job_filter_t *f,
                     store_job_cb cb, void *data);
/* Finished jobs of one board, oldest first (start order), at most `limit`. */
int store_jobs_by_mac(store_t *s, const char *mac, size_t limit, store_job_cb cb, void *data);
/* The last finished job of a slot: 0 found, 1 none, EST_EDB. */
int store_job_last_of_slot(store_t *s, const char *slot, store_job_row_t *row);

/* Rows valid only during the callback. */
typedef struct store_image_row_s {
    int64_t idx, offset, size, compressed_size, duration_ms; /* duration -1 when NULL */
    const char *md5;
    bool patched, verified;
} store_image_row_t;
typedef struct store_event_row_s {
    int64_t n, t_ms;
    const char *kind;
    const char *state;  /* NULL when none */
    const char *detail; /* JSON text or NULL */
} store_event_row_t;
/* A job's images in index order / events in order (at most `limit`); count or EST_EDB. */
int store_job_images(store_t *s, const char *uuid, int (*cb)(const store_image_row_t *, void *),
                     void *data);
int store_job_events(store_t *s, const char *uuid, size_t limit,
                     int (*cb)(const store_event_row_t *, void *), void *data);

/* Job counts per (slot, result, final) over the whole table; cb per non-empty group. */
int store_job_counts(store_t *s,
                     int (*cb)(const char *slot, const char *result, bool final, int64_t n, void *),
                     void *data);

/* Final finished jobs (not retried attempts) with since <= finished_at < until (fixed-width
 * text), any order: what the stats need of each. duration_ms -1 when unknown; error_class NULL
 * when none. */
typedef struct store_stat_row_s {
    const char *slot, *result, *error_class, *started_at;
    int64_t duration_ms;
} store_stat_row_t;
int store_stats_rows(store_t *s, const char *since, const char *until,
                     int (*cb)(const store_stat_row_t *, void *), void *data);

/* Recipes, newest first (created_at, then hash). Text only valid during the callback. */
typedef struct store_recipe_row_s {
    const char *hash, *name, *version, *created_at;
    const char *json; /* only from store_recipe_get */
    size_t json_len;
} store_recipe_row_t;
int store_recipes_list(store_t *s, int (*cb)(const store_recipe_row_t *, void *), void *data);
/* One recipe by hash: cb once; 0 found, 1 not found, EST_EDB. */
int store_recipe_get(store_t *s, const char *hash, int (*cb)(const store_recipe_row_t *, void *),
                     void *data);

/* The recipe chosen for a slot through the API: set (hash must be stored) or cleared (NULL). */
int store_slot_recipe_set(store_t *s, const char *slot, const char *hash);
/* Every slot → recipe choice; cb per row. */
int store_slot_recipes(store_t *s, int (*cb)(const char *slot, const char *hash, void *),
                       void *data);

#endif
