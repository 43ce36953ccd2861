/* SPDX-License-Identifier: MIT */
/* store.c — SQLite store: open with pragmas, compiled-in migrations, crash recovery (running →
 * interrupted), recipes, slot recipe choices, and the helpers the store_*.c files share
 * (store_int.h). Job rows: store_jobs.c (writes), store_read.c (reads).
 * Must not: log (errors go to store_errmsg), block on anything but SQLite's own file locks, or
 * share its connection between threads. */
#include "store_int.h"
#include "est_util.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#define STORE_BUSY_TIMEOUT_MS 5000

static const char *const store_result_names[STORE_RESULT__COUNT] = {
    "running", "pass", "fail", "interrupted", "cancelled",
};

const char *store_result_name(store_result_t r)
{
    return (unsigned)r < STORE_RESULT__COUNT ? store_result_names[r] : "?";
}

/* ---- errors ---- */

/* Record "<what we were doing>: <SQLite's message>" and return EST_EDB. */
int store_fail(store_t *s, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    if (s->db && n >= 0 && (size_t)n < sizeof s->err)
        snprintf(s->err + n, sizeof s->err - (size_t)n, ": %s", sqlite3_errmsg(s->db));
    return EST_EDB;
}

/* The same without SQLite's message (the failure is ours, not SQLite's). */
int store_refuse(store_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return EST_EDB;
}

const char *store_errmsg(const store_t *s)
{
    return s ? s->err : "out of memory";
}

/* ---- small helpers ---- */

uint64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *store_fmt_time(uint64_t unix_ms, char *buf)
{
    time_t secs = (time_t)(unix_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, STORE_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, STORE_TIME_LEN - n, ".%03uZ", (unsigned)(unix_ms % 1000u));
    return buf;
}

int store_new_uuid(char *buf)
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1) return -EIO;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 (RFC 9562 §5.4) */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(buf, STORE_UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

int store_exec(store_t *s, const char *sql)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return store_fail(s, "%s", sql);
    return 0;
}

int store_prepare(store_t *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_fail(s, "preparing a statement");
    return 0;
}

void store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Run a statement that returns no rows (or whose rows do not matter) and finalize it. */
int store_step_done(store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        store_fail(s, "%s", what);
        sqlite3_finalize(st);
        return EST_EDB;
    }
    sqlite3_finalize(st);
    return 0;
}

/* A one-integer query (PRAGMA user_version and the like). */
int store_query_int(store_t *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s, sql, &st)) return EST_EDB;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        store_fail(s, "%s", sql);
        sqlite3_finalize(st);
        return EST_EDB;
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

void store_rollback(store_t *s)
{
    /* Keep the first error's message: the rollback's own outcome matters less. */
    if (sqlite3_get_autocommit(s->db) == 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Durable commit. In WAL mode, synchronous=NORMAL makes a commit survive a crash of this
 * process but not a power loss or OS crash (the WAL is synced only at checkpoints); FULL syncs
 * the WAL at every commit. Results must survive power loss once shown to an operator, so the
 * transactions that make a job final commit with FULL; since the sync covers the whole WAL, it
 * also makes every earlier NORMAL commit (events, begun jobs, recipes) durable. Events are many
 * and cheap to lose, so they do not pay an fsync each. (SQLite docs: "WAL mode" / "synchronous")
 * The pragma is set outside the transaction; it applies to the next commit. */
int store_begin_durable(store_t *s)
{
    if (store_exec(s, "PRAGMA synchronous = FULL")) return EST_EDB;
    if (store_exec(s, "BEGIN IMMEDIATE")) {
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        return EST_EDB;
    }
    return 0;
}

int store_end_durable(store_t *s, int rc)
{
    if (rc == 0) rc = store_exec(s, "COMMIT");
    if (rc) store_rollback(s);
    if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK &&
        rc == 0)
        rc = store_fail(s, "restoring synchronous = NORMAL");
    return rc;
}

/* Next value of the MES cursor. Inside a write transaction; a counter row rather than max(seq)
 * + 1 so that a value is never handed out twice even if rows were deleted. */
int store_next_seq(store_t *s, int64_t *seq)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s,
                      "UPDATE counters SET value = value + 1 WHERE name = 'job_seq' "
                      "RETURNING value",
                      &st))
        return EST_EDB;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            store_refuse(s, "the job_seq counter is missing from table counters");
        else
            store_fail(s, "advancing the job sequence");
        sqlite3_finalize(st);
        return EST_EDB;
    }
    *seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* ---- open: pragmas, migrations, crash recovery ---- */

static int store_migrate(store_t *s)
{
    size_t n;
    const store_migration_t *m = store_migrations(&n);
    int64_t cur;
    unsigned latest = n ? m[n - 1].version : 0;

    if (store_query_int(s, "PRAGMA user_version", &cur)) return EST_EDB;
    if (cur > (int64_t)latest)
        return store_refuse(s,
                            "the database has schema version %" PRId64 " but this espstation "
                            "knows versions up to %u; use a newer espstation",
                            cur, latest);
    for (size_t i = 0; i < n; i++) {
        char sql[64];
        if (m[i].version <= (unsigned)cur) continue;
        if (store_exec(s, "BEGIN IMMEDIATE")) return EST_EDB;
        /* Another process may have migrated while we waited for the write lock: look again. */
        if (store_query_int(s, "PRAGMA user_version", &cur)) {
            store_rollback(s);
            return EST_EDB;
        }
        if (m[i].version <= (unsigned)cur) {
            store_exec(s, "COMMIT");
            continue;
        }
        if (sqlite3_exec(s->db, m[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
            store_fail(s, "applying migration %s", m[i].name);
            store_rollback(s);
            return EST_EDB;
        }
        /* user_version lives in the database header: the change is part of the transaction. */
        snprintf(sql, sizeof sql, "PRAGMA user_version = %u", m[i].version);
        if (store_exec(s, sql) || store_exec(s, "COMMIT")) {
            store_rollback(s);
            return EST_EDB;
        }
        cur = m[i].version;
    }
    s->version = (unsigned)cur;
    return 0;
}

/* Jobs still 'running' at open were cut off by a crash, kill or power loss: they will never
 * finish, so they become 'interrupted' (a final result, with a seq, so the MES sees them). */
static int store_recover(store_t *s)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    char now[STORE_TIME_LEN];
    int rc, count = 0;

    store_fmt_time(store_now_ms(), now);
    if (store_begin_durable(s)) return EST_EDB;
    rc = store_prepare(s, "SELECT id FROM jobs WHERE result = 'running' ORDER BY id", &sel);
    if (rc == 0)
        rc = store_prepare(s,
                           "UPDATE jobs SET result = 'interrupted', seq = ?1, finished_at = ?2, "
                           "message = 'the station stopped while the job was running (crash, "
                           "kill or power loss); marked at the next start' WHERE id = ?3",
                           &upd);
    while (rc == 0) {
        int step = sqlite3_step(sel);
        int64_t seq;
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = store_fail(s, "looking for interrupted jobs");
            break;
        }
        rc = store_next_seq(s, &seq);
        if (rc) break;
        sqlite3_reset(upd);
        sqlite3_bind_int64(upd, 1, seq);
        sqlite3_bind_text(upd, 2, now, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 3, sqlite3_column_int64(sel, 0));
        if (sqlite3_step(upd) != SQLITE_DONE)
            rc = store_fail(s, "marking a job interrupted");
        else
            count++;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    rc = store_end_durable(s, rc);
    return rc ? rc : count;
}

/* ---- the slow-fsync test VFS ----
 * For the test that the loop never waits for the disk (tests/integration/test_slow_disk.py):
 * when the environment variable ESTN_TEST_SLOW_FSYNC_MS is set (1..5000), every connection the
 * store opens for writing goes through a VFS that sleeps that long in each file sync, like an
 * SD card or a busy eMMC. Unset (production), the default VFS is used. */
static sqlite3_vfs store_slow_vfs;
static unsigned store_slow_ms;
static pthread_mutex_t store_slow_mu = PTHREAD_MUTEX_INITIALIZER;

/* The file is the default VFS's own (same size, same methods) except for xSync: each method
 * table the default VFS uses (one per locking style) gets a copy with our xSync. */
#define STORE_SLOW_TABLES 8
static struct {
    const sqlite3_io_methods *real;
    sqlite3_io_methods wrapped;
} store_slow_tab[STORE_SLOW_TABLES];
static size_t store_slow_n;

static int store_slow_sync(sqlite3_file *f, int flags)
{
    struct timespec ts = {store_slow_ms / 1000, (long)(store_slow_ms % 1000) * 1000000L};
    const sqlite3_io_methods *real = NULL;
    pthread_mutex_lock(&store_slow_mu);
    for (size_t i = 0; i < store_slow_n; i++)
        if (f->pMethods == &store_slow_tab[i].wrapped) real = store_slow_tab[i].real;
    pthread_mutex_unlock(&store_slow_mu);
    nanosleep(&ts, NULL);
    return real ? real->xSync(f, flags) : SQLITE_IOERR_FSYNC;
}

static int store_slow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                           int *out_flags)
{
    sqlite3_vfs *real = vfs->pAppData;
    int rc = real->xOpen(real, name, f, flags, out_flags);
    size_t i;
    if (rc != SQLITE_OK || !f->pMethods) return rc;
    pthread_mutex_lock(&store_slow_mu);
    for (i = 0; i < store_slow_n && store_slow_tab[i].real != f->pMethods; i++)
        ;
    if (i == store_slow_n && i < STORE_SLOW_TABLES) {
        store_slow_tab[i].real = f->pMethods;
        store_slow_tab[i].wrapped = *f->pMethods;
        store_slow_tab[i].wrapped.xSync = store_slow_sync;
        store_slow_n++;
    }
    if (i < store_slow_n) f->pMethods = &store_slow_tab[i].wrapped;
    pthread_mutex_unlock(&store_slow_mu);
    return SQLITE_OK;
}

static void store_slow_init(void)
{
    const char *env = getenv("ESTN_TEST_SLOW_FSYNC_MS");
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    long ms = env ? strtol(env, NULL, 10) : 0;
    if (ms <= 0 || ms > 5000 || !real) return;
    store_slow_ms = (unsigned)ms;
    store_slow_vfs = *real;
    store_slow_vfs.zName = "estn-slow-fsync";
    store_slow_vfs.pAppData = real;
    store_slow_vfs.xOpen = store_slow_open;
    store_slow_vfs.pNext = NULL;
    if (sqlite3_vfs_register(&store_slow_vfs, 0) != SQLITE_OK) store_slow_ms = 0;
}

/* NULL (the default VFS), or the slow-fsync test VFS when ESTN_TEST_SLOW_FSYNC_MS is set. */
static const char *store_vfs_name(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, store_slow_init);
    return store_slow_ms ? store_slow_vfs.zName : NULL;
}

int store_open(const char *path, store_t **out)
{
    store_t *s = calloc(1, sizeof *s);
    sqlite3_stmt *st;
    int rc;

    *out = s;
    if (!s) return EST_EDB;
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         store_vfs_name());
    if (rc != SQLITE_OK) {
        if (!s->db) return store_refuse(s, "opening %s: out of memory", path);
        return store_fail(s, "opening %s", path);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

    /* journal_mode answers with the mode in force: a file system without shared memory (or
     * ":memory:") cannot do WAL, and we would rather refuse than run without it. */
    if (store_prepare(s, "PRAGMA journal_mode = WAL", &st)) return EST_EDB;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        store_fail(s, "setting journal_mode = WAL on %s", path);
        sqlite3_finalize(st);
        return EST_EDB;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        store_refuse(s, "%s: journal_mode is '%s', WAL is required", path,
                     (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return EST_EDB;
    }
    sqlite3_finalize(st);
    if (store_exec(s, "PRAGMA foreign_keys = ON") || store_exec(s, "PRAGMA synchronous = NORMAL"))
        return EST_EDB;
    if (store_migrate(s)) return EST_EDB;
    return store_recover(s);
}

int store_open_writer(const store_t *main, store_t **out)
{
    const char *path = sqlite3_db_filename(main->db, "main");
    store_t *s = calloc(1, sizeof *s);
    int64_t v;
    *out = s;
    if (!s) return EST_EDB;
    s->hooks_from = main;
    if (!path || !*path) return store_refuse(s, "the store has no file to open a writer on");
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, store_vfs_name()) != SQLITE_OK) {
        if (!s->db) return store_refuse(s, "opening %s: out of memory", path);
        return store_fail(s, "opening %s", path);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (store_exec(s, "PRAGMA foreign_keys = ON") || store_exec(s, "PRAGMA synchronous = NORMAL") ||
        store_query_int(s, "PRAGMA user_version", &v))
        return EST_EDB;
    s->version = (unsigned)v;
    return 0;
}

int store_open_query(const char *path, store_t **out)
{
    store_t *s = calloc(1, sizeof *s);
    int64_t v;
    *out = s;
    if (!s) return EST_EDB;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        if (!s->db) return store_refuse(s, "opening %s: out of memory", path);
        return store_fail(s, "opening %s", path);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if (store_exec(s, "PRAGMA query_only = 1") || store_query_int(s, "PRAGMA user_version", &v))
        return EST_EDB;
    s->version = (unsigned)v;
    return 0;
}

void store_close(store_t *s)
{
    if (!s) return;
    /* sqlite3_close_v2 also checkpoints the WAL when we are the last connection. */
    sqlite3_close_v2(s->db);
    free(s);
}

unsigned store_schema_version(const store_t *s)
{
    return s->version;
}

int store_check(store_t *s)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s, "PRAGMA integrity_check", &st)) return EST_EDB;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        if (rc == SQLITE_ROW)
            store_refuse(s, "integrity_check: %s", (const char *)sqlite3_column_text(st, 0));
        else
            store_fail(s, "integrity_check");
        sqlite3_finalize(st);
        return EST_EDB;
    }
    sqlite3_finalize(st);
    if (store_prepare(s, "PRAGMA foreign_key_check", &st)) return EST_EDB;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_refuse(s, "foreign_key_check: table %s has a row pointing at nothing",
                     (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        store_fail(s, "foreign_key_check");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : EST_EDB;
}

/* ---- recipes ---- */

static bool store_is_hex(const char *v, size_t len)
{
    if (!v || strlen(v) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'))) return false;
    return true;
}

int store_recipe_put(store_t *s, const char *hash, const char *name, const char *version,
                     const char *json, size_t json_len)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    char now[STORE_TIME_LEN];
    sqlite3_stmt *st;

    if (!store_is_hex(hash, 64))
        return store_refuse(s, "recipe hash '%s' is not 64 lower-case hex digits",
                            hash ? hash : "(null)");
    /* The hash is the recipe's identity in every job row: make sure it is the bytes' hash. */
    SHA256((const unsigned char *)json, json_len, digest);
    est_hex(digest, sizeof digest, hex);
    if (strcmp(hex, hash) != 0)
        return store_refuse(s, "recipe hash %s is not the sha256 of the recipe text (%s)", hash,
                            hex);
    if (json_len > INT32_MAX) return store_refuse(s, "recipe text too large");
    if (store_prepare(s,
                      "INSERT INTO recipes (hash, name, version, json, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (hash) DO NOTHING",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, version ? version : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, json, (int)json_len, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, store_fmt_time(store_now_ms(), now), -1, SQLITE_TRANSIENT);
    return store_step_done(s, st, "storing a recipe");
}

int store_slot_recipe_set(store_t *s, const char *slot, const char *hash)
{
    char now[STORE_TIME_LEN];
    sqlite3_stmt *st;
    if (!slot) return store_refuse(s, "store_slot_recipe_set: slot is required");
    if (!hash) {
        if (store_prepare(s, "DELETE FROM slot_recipes WHERE slot = ?1", &st)) return EST_EDB;
        sqlite3_bind_text(st, 1, slot, -1, SQLITE_TRANSIENT);
        return store_step_done(s, st, "clearing a slot's recipe");
    }
    if (store_prepare(
            s,
            "INSERT INTO slot_recipes (slot, recipe_hash, assigned_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (slot) DO UPDATE SET recipe_hash = excluded.recipe_hash, "
            "assigned_at = excluded.assigned_at",
            &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, slot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, store_fmt_time(store_now_ms(), now), -1, SQLITE_TRANSIENT);
    return store_step_done(s, st, "setting a slot's recipe");
}

/* ---- hooks of other modules (store.h) ---- */

int store_add_begin_hook(store_t *s, store_finish_hook_fn fn, void *ud)
{
    if (!fn || s->n_begin_hooks >= STORE_MAX_HOOKS)
        return store_refuse(s, "store_add_begin_hook: no function or too many hooks");
    s->begin_hooks[s->n_begin_hooks++] = (store_hook_t){fn, ud};
    return 0;
}

int store_add_finish_hook(store_t *s, store_finish_hook_fn fn, void *ud)
{
    if (!fn || s->n_finish_hooks >= STORE_MAX_HOOKS)
        return store_refuse(s, "store_add_finish_hook: no function or too many hooks");
    s->finish_hooks[s->n_finish_hooks++] = (store_hook_t){fn, ud};
    return 0;
}

int store_run_hooks(store_t *s, bool finish, const char *uuid, const job_report_t *r,
                    const store_job_end_t *end, int64_t seq)
{
    const store_t *hs = s->hooks_from ? s->hooks_from : s;
    const store_hook_t *h = finish ? hs->finish_hooks : hs->begin_hooks;
    size_t n = finish ? hs->n_finish_hooks : hs->n_begin_hooks;
    for (size_t i = 0; i < n; i++) {
        int rc = h[i].fn(s->db, uuid, r, end, seq, h[i].ud);
        if (rc != 0)
            return store_refuse(s, "job %s: a %s hook failed: %s", uuid,
                                finish ? "finish" : "begin", sqlite3_errstr(rc));
    }
    return 0;
}
