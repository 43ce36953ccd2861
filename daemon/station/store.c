/* SPDX-License-Identifier: MIT */
/* store.c — SQLite store: open with pragmas, compiled-in migrations, crash recovery (running →
 * interrupted), job rows, images, events and recipes; the MES cursor `jobs.seq`.
 * Must not: log (errors go to store_errmsg), block on anything but SQLite's own file locks, or
 * share its connection between threads. */
#include "store.h"
#include "est_util.h"

#include <errno.h>
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
#define STORE_MAX_PAGE 1000

struct store_s {
    sqlite3 *db;
    unsigned version;
    char err[512];
};

static const char *const store_result_names[STORE_RESULT__COUNT] = {
    "running", "pass", "fail", "interrupted", "cancelled",
};

const char *store_result_name(store_result_t r)
{
    return (unsigned)r < STORE_RESULT__COUNT ? store_result_names[r] : "?";
}

/* ---- errors ---- */

static int store_fail(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record "<what we were doing>: <SQLite's message>" and return EST_EDB. */
static int store_fail(store_t *s, const char *fmt, ...)
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
static int store_refuse(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int store_refuse(store_t *s, const char *fmt, ...)
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

static int store_exec(store_t *s, const char *sql)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return store_fail(s, "%s", sql);
    return 0;
}

static int store_prepare(store_t *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_fail(s, "preparing a statement");
    return 0;
}

static void store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Run a statement that returns no rows (or whose rows do not matter) and finalize it. */
static int store_step_done(store_t *s, sqlite3_stmt *st, const char *what)
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
static int store_query_int(store_t *s, const char *sql, int64_t *out)
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

static void store_rollback(store_t *s)
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
static int store_begin_durable(store_t *s)
{
    if (store_exec(s, "PRAGMA synchronous = FULL")) return EST_EDB;
    if (store_exec(s, "BEGIN IMMEDIATE")) {
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        return EST_EDB;
    }
    return 0;
}

static int store_end_durable(store_t *s, int rc)
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
static int store_next_seq(store_t *s, int64_t *seq)
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

int store_open(const char *path, store_t **out)
{
    store_t *s = calloc(1, sizeof *s);
    sqlite3_stmt *st;
    int rc;

    *out = s;
    if (!s) return EST_EDB;
    rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
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

/* ---- jobs ---- */

int store_job_begin(store_t *s, const store_job_start_t *b)
{
    char started[STORE_TIME_LEN];
    sqlite3_stmt *st;

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
    return store_step_done(s, st, "inserting job");
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

static int store_update_final(store_t *s, int64_t id, int64_t seq, const job_report_t *r,
                              store_result_t res, uint64_t finished_unix_ms, bool retried)
{
    char finished[STORE_TIME_LEN], rev[16], mac[18], fid[8], state_ms[1024];
    sqlite3_stmt *st;
    const bool pass = res == STORE_RESULT_PASS;

    if (store_prepare(s,
                      "UPDATE jobs SET seq = ?1, finished_at = ?2, duration_ms = ?3, result = ?4, "
                      "chip = ?5, revision = ?6, revision_full = ?7, mac = ?8, flash_id = ?9, "
                      "flash_size = ?10, security_flags = ?11, error_class = ?12, "
                      "error_code = ?13, message = ?14, failed_state = ?15, nak_op = ?16, "
                      "nak_code = ?17, state_ms = ?18, bytes_written = ?19, bytes_sent = ?20, "
                      "retries = ?21, sync_attempts = ?22, baud = COALESCE(?24, baud), final = ?25 "
                      "WHERE id = ?23",
                      &st))
        return EST_EDB;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, store_fmt_time(finished_unix_ms, finished), -1, SQLITE_TRANSIENT);
    /* started_ms/finished_ms are the loop's monotonic clock: fine for a duration, not a date */
    if (r->finished_ms >= r->started_ms && r->finished_ms)
        sqlite3_bind_int64(st, 3, (int64_t)(r->finished_ms - r->started_ms));
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, store_result_name(res), -1, SQLITE_STATIC);
    if (r->chip) {
        snprintf(rev, sizeof rev, "v%u.%u", r->chip_rev / 100, r->chip_rev % 100);
        sqlite3_bind_text(st, 5, r->chip->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, rev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, r->chip_rev);
    }
    if (r->have_mac) sqlite3_bind_text(st, 8, job_fmt_mac(r->mac, mac), -1, SQLITE_TRANSIENT);
    if (r->have_flash_id) {
        snprintf(fid, sizeof fid, "%06" PRIx32, r->flash_id & 0xffffffu);
        sqlite3_bind_text(st, 9, fid, -1, SQLITE_TRANSIENT);
    }
    if (r->flash_size) sqlite3_bind_int64(st, 10, r->flash_size);
    if (r->have_sec_info) sqlite3_bind_int64(st, 11, r->sec_flags);
    if (!pass && r->error_class != EST_CLASS_NONE)
        sqlite3_bind_text(st, 12, est_class_name(r->error_class), -1, SQLITE_STATIC);
    if (!pass && r->error_code) sqlite3_bind_int64(st, 13, r->error_code);
    store_bind_text(st, 14, r->message);
    if (!pass && r->result != JOB_RESULT_NONE)
        sqlite3_bind_text(st, 15, job_state_name(r->failed_state), -1, SQLITE_STATIC);
    if (!pass && r->error_class == EST_CLASS_NAK) {
        sqlite3_bind_int64(st, 16, r->nak_op);
        sqlite3_bind_int64(st, 17, r->nak_code);
    }
    store_state_ms_json(r, state_ms, sizeof state_ms);
    sqlite3_bind_text(st, 18, state_ms, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 19, (int64_t)r->bytes_written);
    sqlite3_bind_int64(st, 20, (int64_t)r->bytes_sent);
    sqlite3_bind_int64(st, 21, r->retries);
    sqlite3_bind_int64(st, 22, r->sync_attempts);
    sqlite3_bind_int64(st, 23, id);
    if (r->baud) sqlite3_bind_int64(st, 24, r->baud); /* the rate the job ended up using */
    sqlite3_bind_int64(st, 25, retried ? 0 : 1);
    return store_step_done(s, st, "writing the job's final row");
}

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
    if (rc == 0)
        rc = store_update_final(s, id, seq, r, res,
                                end && end->finished_unix_ms ? end->finished_unix_ms
                                                             : store_now_ms(),
                                end && end->retried);
    if (rc == 0) rc = store_insert_images(s, uuid, r);
    rc = store_end_durable(s, rc);
    if (rc == 0 && seq_out) *seq_out = seq;
    return rc;
}

/* ---- reading back ---- */

#define STORE_ROW_COLUMNS                                                                          \
    "id, seq, uuid, slot, port, recipe_hash, chip, revision, mac, flash_id, flash_size, "          \
    "started_at, finished_at, duration_ms, result, error_class, message, failed_state, "           \
    "state_ms, bytes_written, bytes_sent, retries, baud, attempt, "                                \
    "(SELECT count(*) FROM job_images WHERE job_uuid = jobs.uuid), final, "                        \
    "(SELECT name FROM recipes WHERE hash = jobs.recipe_hash), "                                   \
    "(SELECT version FROM recipes WHERE hash = jobs.recipe_hash)"

static void store_col_text(sqlite3_stmt *st, int i, char *buf, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    snprintf(buf, cap, "%s", v ? (const char *)v : "");
}

static int64_t store_col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static void store_read_row(sqlite3_stmt *st, store_job_row_t *row)
{
    memset(row, 0, sizeof *row);
    row->id = sqlite3_column_int64(st, 0);
    row->seq = store_col_int(st, 1);
    store_col_text(st, 2, row->uuid, sizeof row->uuid);
    store_col_text(st, 3, row->slot, sizeof row->slot);
    store_col_text(st, 4, row->port, sizeof row->port);
    store_col_text(st, 5, row->recipe_hash, sizeof row->recipe_hash);
    store_col_text(st, 6, row->chip, sizeof row->chip);
    store_col_text(st, 7, row->revision, sizeof row->revision);
    store_col_text(st, 8, row->mac, sizeof row->mac);
    store_col_text(st, 9, row->flash_id, sizeof row->flash_id);
    row->flash_size = store_col_int(st, 10);
    store_col_text(st, 11, row->started_at, sizeof row->started_at);
    store_col_text(st, 12, row->finished_at, sizeof row->finished_at);
    row->duration_ms = store_col_int(st, 13);
    store_col_text(st, 14, row->result, sizeof row->result);
    store_col_text(st, 15, row->error_class, sizeof row->error_class);
    store_col_text(st, 16, row->message, sizeof row->message);
    store_col_text(st, 17, row->failed_state, sizeof row->failed_state);
    store_col_text(st, 18, row->state_ms, sizeof row->state_ms);
    row->bytes_written = store_col_int(st, 19);
    row->bytes_sent = store_col_int(st, 20);
    row->retries = store_col_int(st, 21);
    row->baud = store_col_int(st, 22);
    row->attempt = store_col_int(st, 23);
    row->n_images = store_col_int(st, 24);
    row->final = sqlite3_column_int64(st, 25) != 0;
    store_col_text(st, 26, row->recipe_name, sizeof row->recipe_name);
    store_col_text(st, 27, row->recipe_version, sizeof row->recipe_version);
}

int store_job_get(store_t *s, const char *uuid, store_job_row_t *row)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s, "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE uuid = ?1", &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_read_row(st, row);
    else if (rc != SQLITE_DONE)
        store_fail(s, "reading job %s", uuid);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : EST_EDB;
}

int store_jobs_after(store_t *s, int64_t after, size_t limit, store_job_cb cb, void *data)
{
    sqlite3_stmt *st;
    store_job_row_t *row;
    int rc, count = 0;

    if (limit > STORE_MAX_PAGE)
        return store_refuse(s, "limit %zu is above the maximum of %d", limit, STORE_MAX_PAGE);
    row = malloc(sizeof *row);
    if (!row) return store_refuse(s, "out of memory");
    if (store_prepare(s,
                      "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE seq > ?1 ORDER BY seq "
                      "LIMIT ?2",
                      &st)) {
        free(row);
        return EST_EDB;
    }
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_read_row(st, row);
        count++;
        if (cb(row, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "listing jobs after %" PRId64, after);
    sqlite3_finalize(st);
    free(row);
    return rc == SQLITE_DONE ? count : EST_EDB;
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

/* Step `st` to the end, reading a job row per step into a heap row for cb. */
static int store_each_job(store_t *s, sqlite3_stmt *st, store_job_cb cb, void *data,
                          const char *what)
{
    store_job_row_t *row = malloc(sizeof *row);
    int rc, count = 0;
    if (!row) {
        sqlite3_finalize(st);
        return store_refuse(s, "out of memory");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_read_row(st, row);
        count++;
        if (cb(row, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "%s", what);
    sqlite3_finalize(st);
    free(row);
    return rc == SQLITE_DONE ? count : EST_EDB;
}

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
             "SELECT " STORE_ROW_COLUMNS " FROM jobs WHERE seq > ?1%s%s%s%s ORDER BY seq LIMIT ?2",
             f->result ? " AND result = ?3" : "", f->mac ? " AND mac = ?4" : "",
             f->slot ? " AND slot = ?5" : "", f->since ? " AND finished_at >= ?6" : "");
    if (store_prepare(s, sql, &st)) return EST_EDB;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    /* numbered parameters keep their numbers; binding one the text lacks is a no-op */
    if (f->result) store_bind_text(st, 3, f->result);
    if (f->mac) store_bind_text(st, 4, f->mac);
    if (f->slot) store_bind_text(st, 5, f->slot);
    if (f->since) store_bind_text(st, 6, f->since);
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

static int store_first_row(const store_job_row_t *row, void *data)
{
    memcpy(data, row, sizeof *row);
    return 1;
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

int store_job_images(store_t *s, const char *uuid, int (*cb)(const store_image_row_t *, void *),
                     void *data)
{
    sqlite3_stmt *st;
    int rc, count = 0;
    if (store_prepare(s,
                      "SELECT idx, offset, size, compressed_size, md5, patched, verified, "
                      "duration_ms FROM job_images WHERE job_uuid = ?1 ORDER BY idx",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
        count++;
        if (cb(&r, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "reading the images of job %s", uuid);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : EST_EDB;
}

int store_job_events(store_t *s, const char *uuid, size_t limit,
                     int (*cb)(const store_event_row_t *, void *), void *data)
{
    sqlite3_stmt *st;
    int rc, count = 0;
    if (store_prepare(s,
                      "SELECT n, t_ms, kind, state, detail FROM job_events WHERE job_uuid = ?1 "
                      "ORDER BY n LIMIT ?2",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (int64_t)(limit > INT64_MAX ? INT64_MAX : limit));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_event_row_t r = {
            .n = sqlite3_column_int64(st, 0),
            .t_ms = sqlite3_column_int64(st, 1),
            .kind = store_col_str(st, 2),
            .state = store_col_str(st, 3),
            .detail = store_col_str(st, 4),
        };
        count++;
        if (cb(&r, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "reading the events of job %s", uuid);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : EST_EDB;
}

int store_job_counts(store_t *s,
                     int (*cb)(const char *slot, const char *result, bool final, int64_t n, void *),
                     void *data)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s,
                      "SELECT slot, result, final, count(*) FROM jobs GROUP BY slot, result, "
                      "final",
                      &st))
        return EST_EDB;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(store_col_str(st, 0), store_col_str(st, 1), sqlite3_column_int(st, 2) != 0,
               sqlite3_column_int64(st, 3), data)) {
            rc = SQLITE_DONE;
            break;
        }
    if (rc != SQLITE_DONE) store_fail(s, "counting jobs per slot");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : EST_EDB;
}

int store_stats_rows(store_t *s, const char *since, const char *until,
                     int (*cb)(const store_stat_row_t *, void *), void *data)
{
    sqlite3_stmt *st;
    int rc, count = 0;
    /* final rows only: a retried attempt is not a board (docs/API.md) */
    if (store_prepare(s,
                      "SELECT slot, result, error_class, started_at, duration_ms FROM jobs "
                      "WHERE finished_at >= ?1 AND finished_at < ?2 AND final = 1",
                      &st))
        return EST_EDB;
    sqlite3_bind_text(st, 1, since, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, until, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_stat_row_t r = {
            .slot = store_col_str(st, 0),
            .result = store_col_str(st, 1),
            .error_class = store_col_str(st, 2),
            .started_at = store_col_str(st, 3),
            .duration_ms = store_col_int(st, 4),
        };
        count++;
        if (cb(&r, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "reading jobs for statistics");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : EST_EDB;
}

static int store_each_recipe(store_t *s, sqlite3_stmt *st, bool with_json,
                             int (*cb)(const store_recipe_row_t *, void *), void *data)
{
    int rc, count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_recipe_row_t r = {
            .hash = store_col_str(st, 0),
            .name = store_col_str(st, 1),
            .version = store_col_str(st, 2),
            .created_at = store_col_str(st, 3),
        };
        if (with_json) {
            r.json = store_col_str(st, 4);
            r.json_len = (size_t)sqlite3_column_bytes(st, 4);
        }
        count++;
        if (cb(&r, data) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_fail(s, "reading recipes");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : EST_EDB;
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

int store_slot_recipes(store_t *s, int (*cb)(const char *slot, const char *hash, void *),
                       void *data)
{
    sqlite3_stmt *st;
    int rc;
    if (store_prepare(s, "SELECT slot, recipe_hash FROM slot_recipes ORDER BY slot", &st))
        return EST_EDB;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(store_col_str(st, 0), store_col_str(st, 1), data)) {
            rc = SQLITE_DONE;
            break;
        }
    if (rc != SQLITE_DONE) store_fail(s, "reading the slots' recipes");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : EST_EDB;
}
