/* SPDX-License-Identifier: MIT */
/* pool.h — per-device values allocated exactly once (docs/DEVICE-DATA.md "Pools and
 * exactly-once allocation"): value pools imported from a CSV and counters, in the station's
 * SQLite database (schema/007_pools.sql). Every state change is one write transaction
 * (BEGIN IMMEDIATE, committed with synchronous=FULL), and the reservation picks and binds an
 * item in one UPDATE, so a kill -9 or a power loss at any point leaves each item either before
 * or after a change, never given to two MACs.
 * Pure SQLite on the connection given: call it on ONE thread per connection (a worker with its
 * own connection from pool_db_open, or the store writer's thread with its connection); it
 * blocks on the disk, so never on the loop. pool_finish_hook runs inside the store's own
 * transaction that records a job (store_add_finish_hook), so a pass and its consumed items
 * commit together.
 * Must not: log, know about libuv or HTTP. */
#ifndef POOL_H
#define POOL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "store.h"

enum pool_err {
    POOL_OK = 0,
    POOL_EDB = -1,        /* SQLite failed (message says what) */
    POOL_EINPUT = -2,     /* bad name / CSV / format / request: the message says what to fix */
    POOL_ENOENT = -3,     /* no such pool or item */
    POOL_EEMPTY = -4,     /* no free item left: import more */
    POOL_EREFUSED = -5,   /* already_provisioned under policy refuse (message names the job) */
    POOL_EDUPLICATE = -6, /* the MAC is being provisioned by another running job: cloned MAC */
    POOL_ESTATE = -7,     /* the item's state does not allow it (void of a consumed item) */
};

/* What to do for a MAC that already consumed an item of the pool (docs/DEVICE-DATA.md
 * "Rework policies"). */
typedef enum {
    POOL_SAME_IDENTITY = 0, /* the same item again (default) */
    POOL_REFUSE,            /* POOL_EREFUSED naming the earlier job */
    POOL_NEW_IDENTITY,      /* a new item; the old one stays consumed */
} pool_policy_t;
/* "same_identity", "refuse", "new_identity" -> 0 and *out, else POOL_EINPUT. */
int pool_policy_parse(const char *s, pool_policy_t *out);

#define POOL_NAME_MAX 63
#define POOL_VALUE_MAX 4000

/* A connection of its own to the station's (migrated) database: WAL, foreign keys, busy timeout
 * 5 s. 0 or POOL_EDB with err. */
int pool_db_open(const char *path, sqlite3 **out, char *err, size_t errlen);

/* Create a values pool from CSV text (header naming columns, one row per device; the first
 * column is the item's label and must be unique), or append the rows to an existing values pool
 * with the same header. One transaction: a bad row, a duplicate label (in the file or already in
 * the pool) refuses the whole import, naming the line. low_water < 0 keeps the pool's (0 for a
 * new one). *added (may be NULL) = rows added. */
int pool_import_csv(sqlite3 *db, const char *name, const char *csv, size_t len, int64_t low_water,
                    int64_t *added, char *err, size_t errlen);
/* Create a counter: items minted on demand, value = format rendered with n = start + step * idx
 * and the time of minting ({n} required; device fields refused: those are device sources). */
int pool_create_counter(sqlite3 *db, const char *name, const char *format, uint64_t start,
                        uint64_t step, char *err, size_t errlen);

typedef struct pool_item_s {
    int64_t id, idx;
    char pool[POOL_NAME_MAX + 1];
    char label[POOL_VALUE_MAX + 1];
    char value[POOL_VALUE_MAX + 1]; /* values: JSON object of the row; counter: the value */
    char state[12];
    char slot[64], job_uuid[STORE_UUID_LEN], mac[18];
    char changed_at[STORE_TIME_LEN];
    bool reused; /* reserve: the board had this item before (rework) */
} pool_item_t;

/* Reserve an item of `pool` for the job `job_uuid` (slot, MAC aa:bb:cc:dd:ee:ff) once its MAC is
 * known. A live (reserved / bound) item of that MAC is taken over (the board's earlier data); a
 * consumed one is reused, refused or left by `policy`; else the lowest free item (a counter:
 * a released one, else a new one). 0 with *out, or POOL_EEMPTY / POOL_EREFUSED /
 * POOL_EDUPLICATE / POOL_ENOENT / POOL_EDB with the message. */
int pool_reserve(sqlite3 *db, const char *pool, const char *slot, const char *job_uuid,
                 const char *mac, pool_policy_t policy, pool_item_t *out, char *err, size_t errlen);
/* The job is about to write its device data: its reserved items become bound (to the MAC), durably
 * before the first byte goes out. Returns the number of items bound or POOL_EDB. */
int pool_mark_written(sqlite3 *db, const char *job_uuid, char *err, size_t errlen);
/* The job ended: passed -> its items consumed; else reserved ones are released (free), bound ones
 * stay bound to the MAC. Idempotent. Its own transaction (for a job not recorded through the
 * store's hook). Count of items changed or POOL_EDB. */
int pool_job_end(sqlite3 *db, const char *job_uuid, bool passed, char *err, size_t errlen);
/* store_finish_hook_fn: pool_job_end inside the store's transaction that records the job (a
 * retried or failed job releases, a pass consumes). Register with store_add_finish_hook(s,
 * pool_finish_hook, NULL) on the store whose connections record jobs. */
int pool_finish_hook(void *db, const char *uuid, const job_report_t *r, const store_job_end_t *end,
                     int64_t seq, void *ud);
/* After a restart (store_open has marked crashed jobs interrupted): items reserved by jobs not
 * running any more are released, items of passed jobs consumed, bound ones kept. Count changed. */
int pool_recover(sqlite3 *db, char *err, size_t errlen);
/* For the daemon at start (before any job): register pool_finish_hook on `s` (the store whose
 * connections record jobs) and run pool_recover on a connection of its own to `path`. The number
 * of items recovered (>= 0), or POOL_EDB with the message. */
int pool_attach(store_t *s, const char *path, char *err, size_t errlen);
/* Void an item by label (any state but consumed; not while reserved by a running job). */
int pool_void(sqlite3 *db, const char *pool, const char *label, const char *reason, char *err,
              size_t errlen);

typedef struct pool_info_s {
    const char *name, *kind, *format, *created_at;
    int64_t low_water, next_idx;
    int64_t n_free, n_reserved, n_bound, n_consumed, n_void;
    bool low; /* a values pool with n_free < low_water */
} pool_info_t;
/* Every pool with its counts, by name; cb per pool (text valid during the call). Count or POOL_EDB.
 */
int pool_list(sqlite3 *db, int (*cb)(const pool_info_t *, void *), void *data, char *err,
              size_t errlen);
/* Items of a pool with idx > after (state NULL: any), at most limit, in idx order. */
int pool_items(sqlite3 *db, const char *pool, const char *state, int64_t after, size_t limit,
               int (*cb)(const pool_item_t *, void *), void *data, char *err, size_t errlen);
/* The items a job used (pool_uses), any order. */
int pool_job_items(sqlite3 *db, const char *job_uuid, int (*cb)(const pool_item_t *, void *),
                   void *data, char *err, size_t errlen);

/* The exactly-once invariants (tests, `serve` start): no item bound/consumed for two MACs across
 * its uses, every consumed item's last job passed, every reserved item's job running, no label
 * of a pool twice. 0, or POOL_EINPUT naming the first violation. */
int pool_check(sqlite3 *db, char *err, size_t errlen);

#endif
