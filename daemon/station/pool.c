/* SPDX-License-Identifier: MIT */
/* pool.c — per-device values allocated exactly once (pool.h; docs/DEVICE-DATA.md "Pools and
 * exactly-once allocation"). Every change is one BEGIN IMMEDIATE transaction; the reservation
 * picks and binds an item in one UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING, so no two
 * jobs can take the same free item, and the partial unique index pool_items_live_mac keeps a MAC
 * from holding two live items of one pool. */
#include "pool.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devdata.h"
#include "nvs_csv.h"

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
#define POOL_BUSY_MS 5000

__attribute__((format(printf, 4, 5))) static int say(char *err, size_t errlen, int rc,
                                                     const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int dbfail(sqlite3 *db, char *err, size_t errlen, const char *what)
{
    return say(err, errlen, POOL_EDB, "%s: %s", what, sqlite3_errmsg(db));
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) return dbfail(db, err, errlen, sql);
    return 0;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return dbfail(db, err, errlen, "preparing a pool query");
    }
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Commit on rc == 0, else roll back; returns rc (or POOL_EDB when the commit fails). */
static int tx_end(sqlite3 *db, int rc, char *err, size_t errlen)
{
    if (rc == 0) {
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) return 0;
        rc = dbfail(db, err, errlen, "committing a pool change");
    }
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int pool_policy_parse(const char *s, pool_policy_t *out)
{
    static const char *const names[] = {"same_identity", "refuse", "new_identity"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (pool_policy_t)i;
            return 0;
        }
    return POOL_EINPUT;
}

static int check_name(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > POOL_NAME_MAX)
        return say(err, errlen, POOL_EINPUT, "a pool name has 1 to %d characters", POOL_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return say(err, errlen, POOL_EINPUT,
                       "pool name `%s`: use only letters, digits, '_', '-' and '.'", name);
    }
    return 0;
}

int pool_db_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
    *out = NULL;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        int rc = say(err, errlen, POOL_EDB, "opening %s: %s", path,
                     db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, POOL_BUSY_MS);
    /* synchronous=FULL: a pool change is committed to the disk before the caller acts on it */
    int rc = exec(db, "PRAGMA foreign_keys = ON", err, errlen);
    if (!rc) rc = exec(db, "PRAGMA synchronous = FULL", err, errlen);
    if (!rc && sqlite3_table_column_metadata(db, NULL, "pool_items", "state", NULL, NULL, NULL,
                                             NULL, NULL) != SQLITE_OK)
        rc = say(err, errlen, POOL_EDB, "%s has no pool tables: open it with the station first",
                 path);
    if (rc) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

/* ---- creating pools ---- */

/* The pool's kind and columns: 0 found, POOL_ENOENT, POOL_EDB. */
static int pool_kind(sqlite3 *db, const char *name, char *kind, size_t kcap, char *cols,
                     size_t ccap, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc =
        prep(db, "SELECT kind, coalesce(columns, '') FROM pools WHERE name = ?", &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, name);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        col_copy(st, 0, kind, kcap);
        if (cols) col_copy(st, 1, cols, ccap);
        rc = 0;
    } else if (s == SQLITE_DONE) {
        rc = say(err, errlen, POOL_ENOENT, "no pool `%s`", name);
    } else {
        rc = dbfail(db, err, errlen, "reading a pool");
    }
    sqlite3_finalize(st);
    return rc;
}

/* The header as a JSON array; NULL when out of memory. Checks names: 0 or POOL_EINPUT. */
static int header_json(const nvs_csv_rec_t *h, char **out, char *err, size_t errlen)
{
    *out = NULL;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < h->n; i++) {
        if (!h->f[i][0] || strlen(h->f[i]) > 64) {
            cJSON_Delete(a);
            return say(err, errlen, POOL_EINPUT,
                       "line %u: column %zu of the header has no name (or one over 64 bytes)",
                       h->line, i + 1);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(h->f[i], h->f[j]) == 0) {
                cJSON_Delete(a);
                return say(err, errlen, POOL_EINPUT, "line %u: column `%s` named twice", h->line,
                           h->f[i]);
            }
        cJSON_AddItemToArray(a, cJSON_CreateString(h->f[i]));
    }
    *out = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return *out ? 0 : say(err, errlen, POOL_EDB, "out of memory");
}

static int insert_rows(sqlite3 *db, const char *name, const nvs_csv_t *c, size_t first,
                       int64_t *added, char *err, size_t errlen)
{
    const nvs_csv_rec_t *h = &c->r[first];
    sqlite3_stmt *st;
    int rc = prep(
        db,
        "INSERT INTO pool_items (pool, idx, label, value, changed_at) VALUES (?1, "
        "(SELECT coalesce(max(idx) + 1, 0) FROM pool_items WHERE pool = ?1), ?2, ?3, " NOW_SQL ")",
        &st, err, errlen);
    for (size_t i = first + 1; !rc && i < c->n; i++) {
        const nvs_csv_rec_t *r = &c->r[i];
        if (r->n == 0) continue;
        if (r->n != h->n) {
            rc = say(err, errlen, POOL_EINPUT, "line %u: %zu fields, the header has %zu", r->line,
                     r->n, h->n);
            break;
        }
        if (!r->f[0][0] || strlen(r->f[0]) > POOL_VALUE_MAX) {
            rc = say(err, errlen, POOL_EINPUT,
                     "line %u: the first column (the item's label) is empty or over %d bytes",
                     r->line, POOL_VALUE_MAX);
            break;
        }
        cJSON *o = cJSON_CreateObject();
        for (size_t k = 0; o && k < r->n; k++)
            cJSON_AddStringToObject(o, h->f[k], r->f[k]);
        char *js = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!js) {
            rc = say(err, errlen, POOL_EDB, "out of memory");
            break;
        }
        if (strlen(js) > POOL_VALUE_MAX) {
            cJSON_free(js);
            rc = say(err, errlen, POOL_EINPUT, "line %u: the row is over %d bytes", r->line,
                     POOL_VALUE_MAX);
            break;
        }
        sqlite3_reset(st);
        bind_text(st, 1, name);
        bind_text(st, 2, r->f[0]);
        sqlite3_bind_text(st, 3, js, -1, SQLITE_TRANSIENT);
        cJSON_free(js);
        int s = sqlite3_step(st);
        if (s == SQLITE_CONSTRAINT)
            rc = say(err, errlen, POOL_EINPUT,
                     "line %u: `%s` is already in pool `%s` (every label once): nothing imported",
                     r->line, r->f[0], name);
        else if (s != SQLITE_DONE)
            rc = dbfail(db, err, errlen, "adding a pool item");
        else
            (*added)++;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Create the values pool or check that its header matches. */
static int values_pool_ready(sqlite3 *db, const char *name, const char *cols, int64_t low_water,
                             char *err, size_t errlen)
{
    char kind[16], have[4096];
    int rc = pool_kind(db, name, kind, sizeof kind, have, sizeof have, err, errlen);
    sqlite3_stmt *st = NULL;
    if (rc == POOL_ENOENT) {
        rc = prep(db,
                  "INSERT INTO pools (name, kind, columns, low_water, created_at) "
                  "VALUES (?, 'values', ?, ?, " NOW_SQL ")",
                  &st, err, errlen);
        if (rc) return rc;
        bind_text(st, 1, name);
        bind_text(st, 2, cols);
        sqlite3_bind_int64(st, 3, low_water < 0 ? 0 : low_water);
    } else if (rc) {
        return rc;
    } else if (strcmp(kind, "values") != 0) {
        return say(err, errlen, POOL_EINPUT, "pool `%s` is a counter: values cannot be imported",
                   name);
    } else if (strcmp(have, cols) != 0) {
        return say(err, errlen, POOL_EINPUT,
                   "pool `%s` has the columns %s; the file's header is %s", name, have, cols);
    } else if (low_water >= 0) {
        rc = prep(db, "UPDATE pools SET low_water = ? WHERE name = ?", &st, err, errlen);
        if (rc) return rc;
        sqlite3_bind_int64(st, 1, low_water);
        bind_text(st, 2, name);
    } else {
        return 0;
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : dbfail(db, err, errlen, "writing the pool");
    sqlite3_finalize(st);
    return rc;
}

int pool_import_csv(sqlite3 *db, const char *name, const char *csv, size_t len, int64_t low_water,
                    int64_t *added, char *err, size_t errlen)
{
    int64_t n_added = 0;
    if (added) *added = 0;
    int rc = check_name(name, err, errlen);
    if (rc) return rc;
    nvs_csv_t c = {0};
    if (nvs_csv_read(csv, len, true, &c, err, errlen)) return POOL_EINPUT;
    size_t first = 0;
    while (first < c.n && c.r[first].n == 0)
        first++;
    if (first == c.n) {
        nvs_csv_free(&c);
        return say(err, errlen, POOL_EINPUT,
                   "the CSV is empty: give a header row naming the columns, then one row per "
                   "device");
    }
    char *cols = NULL;
    rc = header_json(&c.r[first], &cols, err, errlen);
    if (!rc) rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (!rc) {
        rc = values_pool_ready(db, name, cols, low_water, err, errlen);
        if (!rc) rc = insert_rows(db, name, &c, first, &n_added, err, errlen);
        if (!rc && n_added == 0)
            rc = say(err, errlen, POOL_EINPUT, "the CSV has a header but no rows");
        rc = tx_end(db, rc, err, errlen);
    }
    cJSON_free(cols);
    nvs_csv_free(&c);
    if (!rc && added) *added = n_added;
    return rc;
}

int pool_create_counter(sqlite3 *db, const char *name, const char *format, uint64_t start,
                        uint64_t step, char *err, size_t errlen)
{
    int rc = check_name(name, err, errlen);
    if (rc) return rc;
    if (!format || devdata_format_check(format, err, errlen)) return POOL_EINPUT;
    unsigned needs = devdata_format_needs(format);
    if (!(needs & DEVDATA_NEEDS_N))
        return say(err, errlen, POOL_EINPUT,
                   "counter `%s`: the format must contain {n} (else every value is the same)",
                   name);
    if (needs & (DEVDATA_NEEDS_MAC | DEVDATA_NEEDS_FLASH_ID | DEVDATA_NEEDS_CHIP |
                 DEVDATA_NEEDS_REV | DEVDATA_NEEDS_SERIAL))
        return say(err, errlen, POOL_EINPUT,
                   "counter `%s`: a counter's format uses only {n} and the date; device fields "
                   "are a value source of their own",
                   name);
    if (step == 0 || start > INT64_MAX || step > INT64_MAX)
        return say(err, errlen, POOL_EINPUT, "counter `%s`: step >= 1, start and step < 2^63",
                   name);
    sqlite3_stmt *st;
    rc = prep(db,
              "INSERT INTO pools (name, kind, format, start, step, created_at) "
              "VALUES (?, 'counter', ?, ?, ?, " NOW_SQL ")",
              &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, name);
    bind_text(st, 2, format);
    sqlite3_bind_int64(st, 3, (int64_t)start);
    sqlite3_bind_int64(st, 4, (int64_t)step);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT) return say(err, errlen, POOL_EINPUT, "pool `%s` exists", name);
    return s == SQLITE_DONE ? 0 : dbfail(db, err, errlen, "creating a counter");
}

/* ---- reservation ---- */

#define ITEM_COLS "id, idx, pool, label, value, state, slot, job_uuid, mac, changed_at"

static void item_read(sqlite3_stmt *st, pool_item_t *it)
{
    memset(it, 0, sizeof *it);
    it->id = sqlite3_column_int64(st, 0);
    it->idx = sqlite3_column_int64(st, 1);
    col_copy(st, 2, it->pool, sizeof it->pool);
    col_copy(st, 3, it->label, sizeof it->label);
    col_copy(st, 4, it->value, sizeof it->value);
    col_copy(st, 5, it->state, sizeof it->state);
    col_copy(st, 6, it->slot, sizeof it->slot);
    col_copy(st, 7, it->job_uuid, sizeof it->job_uuid);
    col_copy(st, 8, it->mac, sizeof it->mac);
    col_copy(st, 9, it->changed_at, sizeof it->changed_at);
}

/* One item by a WHERE clause with ?1 pool and ?2 text: 0 found (*it), 1 none, POOL_EDB. */
static int item_where(sqlite3 *db, const char *where, const char *pool, const char *arg,
                      pool_item_t *it, char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT " ITEM_COLS " FROM pool_items WHERE %s", where);
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, pool);
    bind_text(st, 2, arg);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        item_read(st, it);
    else if (s != SQLITE_DONE)
        rc = dbfail(db, err, errlen, "reading pool items");
    else
        rc = 1;
    sqlite3_finalize(st);
    return rc;
}

/* The job's result ("" when there is no such job). */
static void job_result(sqlite3 *db, const char *uuid, char *out, size_t cap)
{
    out[0] = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT result FROM jobs WHERE uuid = ?", -1, &st, NULL)) return;
    bind_text(st, 1, uuid);
    if (sqlite3_step(st) == SQLITE_ROW) col_copy(st, 0, out, cap);
    sqlite3_finalize(st);
}

/* Run `sql` with ?1..?4 = a, b, c, d: 0 or POOL_EDB. */
static int run4(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
                const char *d, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    bind_text(st, 3, c);
    bind_text(st, 4, d);
    int s = sqlite3_step(st);
    while (s == SQLITE_ROW)
        s = sqlite3_step(st);
    rc = s == SQLITE_DONE ? 0 : dbfail(db, err, errlen, "changing pool items");
    sqlite3_finalize(st);
    return rc;
}

/* Mint counter item number next_idx, reserved for the job. */
static int counter_mint(sqlite3 *db, const char *pool, const char *slot, const char *job,
                        const char *mac, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT format, start, step, next_idx FROM pools WHERE name = ?", &st, err,
                  errlen);
    if (rc) return rc;
    bind_text(st, 1, pool);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return dbfail(db, err, errlen, "reading a counter");
    }
    char fmt[1024];
    col_copy(st, 0, fmt, sizeof fmt);
    uint64_t start = (uint64_t)sqlite3_column_int64(st, 1),
             step = (uint64_t)sqlite3_column_int64(st, 2),
             idx = (uint64_t)sqlite3_column_int64(st, 3);
    sqlite3_finalize(st);
    devdata_ctx_t ctx = {.has_n = true, .has_time = true};
    time_t now = time(NULL);
    gmtime_r(&now, &ctx.when);
    char value[POOL_VALUE_MAX + 1];
    if (devdata_counter(start, step, idx, &ctx.n) ||
        devdata_format(fmt, &ctx, value, sizeof value, err, errlen) < 0)
        return say(err, errlen, POOL_EEMPTY, "counter `%s` cannot make value %llu: %s", pool,
                   (unsigned long long)idx, err && errlen ? err : "");
    char idxs[24];
    snprintf(idxs, sizeof idxs, "%llu", (unsigned long long)idx);
    rc = prep(db,
              "INSERT INTO pool_items (pool, idx, label, value, state, slot, job_uuid, mac, "
              "changed_at) VALUES (?1, ?2, ?3, ?3, 'reserved', ?4, ?5, ?6, " NOW_SQL ")",
              &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, pool);
    sqlite3_bind_int64(st, 2, (int64_t)idx);
    bind_text(st, 3, value);
    bind_text(st, 4, slot);
    bind_text(st, 5, job);
    bind_text(st, 6, mac);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_CONSTRAINT)
        return say(err, errlen, POOL_EEMPTY,
                   "counter `%s`: value `%s` (n index %s) was already made: the format repeats "
                   "values (give {n} more digits or a new counter)",
                   pool, value, idxs);
    if (s != SQLITE_DONE) return dbfail(db, err, errlen, "minting a counter value");
    return run4(db, "UPDATE pools SET next_idx = next_idx + 1 WHERE name = ?1", pool, NULL, NULL,
                NULL, err, errlen);
}

/* Take the lowest free item (reserve and bind in one statement); a counter mints one when none
 * is free. 0 or POOL_EEMPTY / POOL_EDB. */
static int take_free(sqlite3 *db, const char *pool, const char *kind, const char *slot,
                     const char *job, const char *mac, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "UPDATE pool_items SET state = 'reserved', slot = ?2, job_uuid = ?3, mac = ?4, "
                  "changed_at = " NOW_SQL " WHERE id = (SELECT id FROM pool_items WHERE pool = ?1 "
                  "AND state = 'free' ORDER BY idx LIMIT 1) RETURNING id",
                  &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, pool);
    bind_text(st, 2, slot);
    bind_text(st, 3, job);
    bind_text(st, 4, mac);
    int s = sqlite3_step(st), got = s == SQLITE_ROW;
    while (s == SQLITE_ROW)
        s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE) return dbfail(db, err, errlen, "reserving a pool item");
    if (got) return 0;
    if (strcmp(kind, "counter") == 0) return counter_mint(db, pool, slot, job, mac, err, errlen);
    return say(err, errlen, POOL_EEMPTY,
               "pool `%s` has no free item left: import more values (POST "
               "/api/v1/pools/%s/import)",
               pool, pool);
}

/* Set an item's slot and job (by id). */
static int item_assign(sqlite3 *db, int64_t id, const char *slot, const char *job, char *err,
                       size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "UPDATE pool_items SET slot = ?2, job_uuid = ?3, changed_at = " NOW_SQL
                  " WHERE id = ?1",
                  &st, err, errlen);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, slot);
    bind_text(st, 3, job);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : dbfail(db, err, errlen, "assigning a pool item");
    sqlite3_finalize(st);
    return rc;
}

/* The board already holds a live item: take it over unless another running job has it. */
static int take_live(sqlite3 *db, pool_item_t *live, const char *slot, const char *job, char *err,
                     size_t errlen)
{
    if (strcmp(live->job_uuid, job) != 0) {
        char res[16];
        job_result(db, live->job_uuid, res, sizeof res);
        if (strcmp(res, "running") == 0)
            return say(err, errlen, POOL_EDUPLICATE,
                       "duplicate_mac: MAC %s is being provisioned in slot %s by job %s at the "
                       "same time: two boards with one MAC (a cloned MAC?)",
                       live->mac, live->slot, live->job_uuid);
        live->reused = true;
    }
    return item_assign(db, live->id, slot, job, err, errlen);
}

/* Record the use of the item by the job (outcome decided when the job ends). */
static int use_add(sqlite3 *db, int64_t id, const char *job, const char *slot, const char *mac,
                   char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "INSERT OR IGNORE INTO pool_uses (item_id, job_uuid, slot, mac, at) "
                  "VALUES (?, ?, ?, ?, " NOW_SQL ")",
                  &st, err, errlen);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, job);
    bind_text(st, 3, slot);
    bind_text(st, 4, mac);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : dbfail(db, err, errlen, "recording a pool use");
    sqlite3_finalize(st);
    return rc;
}

static int reserve_tx(sqlite3 *db, const char *pool, const char *slot, const char *job,
                      const char *mac, pool_policy_t policy, pool_item_t *out, char *err,
                      size_t errlen)
{
    char kind[16];
    int rc = pool_kind(db, pool, kind, sizeof kind, NULL, 0, err, errlen);
    if (rc) return rc;
    rc = item_where(db, "pool = ?1 AND mac = ?2 AND state IN ('reserved', 'bound')", pool, mac, out,
                    err, errlen);
    if (rc < 0) return rc;
    if (rc == 0) {
        rc = take_live(db, out, slot, job, err, errlen);
    } else {
        rc = item_where(db,
                        "pool = ?1 AND mac = ?2 AND state = 'consumed' ORDER BY changed_at DESC, "
                        "id DESC LIMIT 1",
                        pool, mac, out, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0 && policy == POOL_REFUSE)
            return say(err, errlen, POOL_EREFUSED,
                       "already_provisioned: the board %s got `%s` from pool `%s` in job %s "
                       "(slot %s, %s); the recipe's rework policy is refuse",
                       mac, out->label, pool, out->job_uuid, out->slot, out->changed_at);
        if (rc == 0 && policy == POOL_SAME_IDENTITY) {
            out->reused = true;
            rc = 0;
        } else {
            rc = take_free(db, pool, kind, slot, job, mac, err, errlen);
            if (!rc)
                rc = item_where(db, "pool = ?1 AND job_uuid = ?2 AND state = 'reserved'", pool, job,
                                out, err, errlen);
            if (rc == 1) rc = say(err, errlen, POOL_EDB, "the reserved item vanished");
        }
    }
    if (!rc) rc = use_add(db, out->id, job, slot, mac, err, errlen);
    return rc;
}

int pool_reserve(sqlite3 *db, const char *pool, const char *slot, const char *job_uuid,
                 const char *mac, pool_policy_t policy, pool_item_t *out, char *err, size_t errlen)
{
    if (!slot || !*slot || !job_uuid || strlen(job_uuid) != 36 || !mac || strlen(mac) != 17)
        return say(err, errlen, POOL_EINPUT, "a reservation needs a slot, a job uuid and a MAC");
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) return rc;
    bool reused = false;
    rc = reserve_tx(db, pool, slot, job_uuid, mac, policy, out, err, errlen);
    reused = !rc && out->reused;
    rc = tx_end(db, rc, err, errlen);
    if (!rc && reused) out->reused = true;
    return rc;
}

static int changes_or(sqlite3 *db, int rc)
{
    return rc ? rc : sqlite3_changes(db);
}

int pool_mark_written(sqlite3 *db, const char *job_uuid, char *err, size_t errlen)
{
    return changes_or(db, run4(db,
                               "UPDATE pool_items SET state = 'bound', changed_at = " NOW_SQL
                               " WHERE job_uuid = ?1 AND state = 'reserved'",
                               job_uuid, NULL, NULL, NULL, err, errlen));
}

/* The end of a job, inside the caller's transaction. */
static int job_end_tx(sqlite3 *db, const char *job, bool passed, char *err, size_t errlen)
{
    int rc, n;
    if (passed) {
        rc = run4(db,
                  "UPDATE pool_uses SET outcome = CASE WHEN (SELECT job_uuid FROM pool_items i "
                  "WHERE i.id = item_id) = ?1 THEN 'consumed' ELSE 'reused' END "
                  "WHERE job_uuid = ?1 AND outcome IS NULL",
                  job, NULL, NULL, NULL, err, errlen);
        if (rc) return rc;
        rc = run4(db,
                  "UPDATE pool_items SET state = 'consumed', changed_at = " NOW_SQL
                  " WHERE job_uuid = ?1 AND state IN ('reserved', 'bound')",
                  job, NULL, NULL, NULL, err, errlen);
        return changes_or(db, rc);
    }
    rc = run4(db,
              "UPDATE pool_uses SET outcome = coalesce((SELECT CASE i.state WHEN 'reserved' "
              "THEN 'released' WHEN 'bound' THEN 'kept' END FROM pool_items i WHERE i.id = "
              "item_id AND i.job_uuid = ?1), 'reused') WHERE job_uuid = ?1 AND outcome IS NULL",
              job, NULL, NULL, NULL, err, errlen);
    if (rc) return rc;
    rc = run4(db,
              "UPDATE pool_items SET state = 'free', slot = NULL, job_uuid = NULL, mac = NULL, "
              "changed_at = " NOW_SQL " WHERE job_uuid = ?1 AND state = 'reserved'",
              job, NULL, NULL, NULL, err, errlen);
    n = changes_or(db, rc);
    return n;
}

int pool_job_end(sqlite3 *db, const char *job_uuid, bool passed, char *err, size_t errlen)
{
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) return rc;
    int n = job_end_tx(db, job_uuid, passed, err, errlen);
    rc = tx_end(db, n < 0 ? n : 0, err, errlen);
    return rc ? rc : n;
}

int pool_finish_hook(void *db, const char *uuid, const job_report_t *r, const store_job_end_t *end,
                     int64_t seq, void *ud)
{
    (void)seq;
    (void)ud;
    bool passed = r && r->result == JOB_RESULT_PASS && !(end && end->retried) &&
                  !(end && end->result != STORE_RESULT_RUNNING && end->result != STORE_RESULT_PASS);
    char err[256];
    int n = job_end_tx(db, uuid, passed, err, sizeof err);
    return n < 0 ? sqlite3_extended_errcode(db) ? sqlite3_extended_errcode(db) : SQLITE_ERROR : 0;
}

typedef struct {
    char job[STORE_UUID_LEN];
    bool passed;
} stale_t;

int pool_recover(sqlite3 *db, char *err, size_t errlen)
{
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) return rc;
    sqlite3_stmt *st;
    rc = prep(db,
              "SELECT DISTINCT u.job_uuid, coalesce(j.result, '') FROM pool_uses u LEFT JOIN "
              "jobs j ON j.uuid = u.job_uuid WHERE u.outcome IS NULL AND coalesce(j.result, '') "
              "<> 'running'",
              &st, err, errlen);
    stale_t *v = NULL;
    size_t n = 0, cap = 0;
    int s = SQLITE_DONE;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            stale_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = say(err, errlen, POOL_EDB, "out of memory");
                break;
            }
            v = nv;
        }
        col_copy(st, 0, v[n].job, sizeof v[n].job);
        const unsigned char *res = sqlite3_column_text(st, 1);
        v[n++].passed = res && strcmp((const char *)res, "pass") == 0;
    }
    if (!rc && s != SQLITE_DONE) rc = dbfail(db, err, errlen, "finding stale reservations");
    sqlite3_finalize(st);
    int changed = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        int c = job_end_tx(db, v[i].job, v[i].passed, err, errlen);
        if (c < 0)
            rc = c;
        else
            changed += c;
    }
    free(v);
    rc = tx_end(db, rc, err, errlen);
    return rc ? rc : changed;
}

int pool_attach(store_t *s, const char *path, char *err, size_t errlen)
{
    if (store_add_finish_hook(s, pool_finish_hook, NULL) != 0)
        return say(err, errlen, POOL_EDB, "registering the pool hook: %s", store_errmsg(s));
    sqlite3 *db = NULL;
    int rc = pool_db_open(path, &db, err, errlen);
    if (rc == 0) rc = pool_recover(db, err, errlen);
    sqlite3_close(db);
    return rc;
}

int pool_void(sqlite3 *db, const char *pool, const char *label, const char *reason, char *err,
              size_t errlen)
{
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) return rc;
    pool_item_t *it = malloc(sizeof *it);
    if (!it) rc = say(err, errlen, POOL_EDB, "out of memory");
    if (!rc) {
        rc = item_where(db, "pool = ?1 AND label = ?2", pool, label, it, err, errlen);
        if (rc == 1) rc = say(err, errlen, POOL_ENOENT, "pool `%s` has no item `%s`", pool, label);
    }
    if (!rc && strcmp(it->state, "consumed") == 0)
        rc = say(err, errlen, POOL_ESTATE,
                 "`%s` is consumed (job %s passed with it): a shipped value cannot be voided",
                 label, it->job_uuid);
    if (!rc && strcmp(it->state, "reserved") == 0) {
        char res[16];
        job_result(db, it->job_uuid, res, sizeof res);
        if (strcmp(res, "running") == 0)
            rc = say(err, errlen, POOL_ESTATE,
                     "`%s` is reserved by job %s running in slot %s: cancel it first", label,
                     it->job_uuid, it->slot);
    }
    if (!rc && strcmp(it->state, "void") != 0)
        rc = run4(db,
                  "UPDATE pool_items SET state = 'void', void_reason = ?3, changed_at = " NOW_SQL
                  " WHERE pool = ?1 AND label = ?2",
                  pool, label, reason && *reason ? reason : "voided", NULL, err, errlen);
    free(it);
    return tx_end(db, rc, err, errlen);
}

int pool_list(sqlite3 *db, int (*cb)(const pool_info_t *, void *), void *data, char *err,
              size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT p.name, p.kind, coalesce(p.format, ''), p.created_at, p.low_water, "
                  "p.next_idx, "
                  "(SELECT count(*) FROM pool_items i WHERE i.pool = p.name AND state = 'free'), "
                  "(SELECT count(*) FROM pool_items i WHERE i.pool = p.name AND state = "
                  "'reserved'), "
                  "(SELECT count(*) FROM pool_items i WHERE i.pool = p.name AND state = 'bound'), "
                  "(SELECT count(*) FROM pool_items i WHERE i.pool = p.name AND state = "
                  "'consumed'), "
                  "(SELECT count(*) FROM pool_items i WHERE i.pool = p.name AND state = 'void') "
                  "FROM pools p ORDER BY p.name",
                  &st, err, errlen);
    if (rc) return rc;
    int n = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        pool_info_t in = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .kind = (const char *)sqlite3_column_text(st, 1),
            .format = (const char *)sqlite3_column_text(st, 2),
            .created_at = (const char *)sqlite3_column_text(st, 3),
            .low_water = sqlite3_column_int64(st, 4),
            .next_idx = sqlite3_column_int64(st, 5),
            .n_free = sqlite3_column_int64(st, 6),
            .n_reserved = sqlite3_column_int64(st, 7),
            .n_bound = sqlite3_column_int64(st, 8),
            .n_consumed = sqlite3_column_int64(st, 9),
            .n_void = sqlite3_column_int64(st, 10),
        };
        in.low = strcmp(in.kind, "values") == 0 && in.n_free < in.low_water;
        n++;
        if (cb(&in, data)) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE) n = dbfail(db, err, errlen, "listing pools");
    sqlite3_finalize(st);
    return n;
}

static int each_item(sqlite3 *db, sqlite3_stmt *st, int (*cb)(const pool_item_t *, void *),
                     void *data, char *err, size_t errlen)
{
    pool_item_t *it = malloc(sizeof *it);
    int n = 0, s = SQLITE_DONE;
    if (!it) n = say(err, errlen, POOL_EDB, "out of memory");
    while (it && (s = sqlite3_step(st)) == SQLITE_ROW) {
        item_read(st, it);
        n++;
        if (cb(it, data)) break;
    }
    if (it && s != SQLITE_ROW && s != SQLITE_DONE)
        n = dbfail(db, err, errlen, "reading pool items");
    free(it);
    sqlite3_finalize(st);
    return n;
}

int pool_items(sqlite3 *db, const char *pool, const char *state, int64_t after, size_t limit,
               int (*cb)(const pool_item_t *, void *), void *data, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT " ITEM_COLS " FROM pool_items WHERE pool = ?1 AND (?2 IS NULL OR "
                  "state = ?2) AND idx > ?3 ORDER BY idx LIMIT ?4",
                  &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, pool);
    bind_text(st, 2, state);
    sqlite3_bind_int64(st, 3, after);
    sqlite3_bind_int64(st, 4, (int64_t)limit);
    return each_item(db, st, cb, data, err, errlen);
}

int pool_job_items(sqlite3 *db, const char *job_uuid, int (*cb)(const pool_item_t *, void *),
                   void *data, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT i.id, i.idx, i.pool, i.label, i.value, i.state, u.slot, u.job_uuid, "
                  "u.mac, u.at FROM pool_uses u JOIN pool_items i ON i.id = u.item_id "
                  "WHERE u.job_uuid = ?1 ORDER BY i.pool",
                  &st, err, errlen);
    if (rc) return rc;
    bind_text(st, 1, job_uuid);
    return each_item(db, st, cb, data, err, errlen);
}

/* The first row of `sql` as a violation message "what: col0 col1 ...", or 0. */
static int violation(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, err, errlen);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const unsigned char *a = sqlite3_column_text(st, 0), *b = sqlite3_column_text(st, 1);
        rc = say(err, errlen, POOL_EINPUT, "%s: %s %s", what, a ? (const char *)a : "",
                 b ? (const char *)b : "");
    } else if (s != SQLITE_DONE) {
        rc = dbfail(db, err, errlen, what);
    }
    sqlite3_finalize(st);
    return rc;
}

int pool_check(sqlite3 *db, char *err, size_t errlen)
{
    static const struct {
        const char *what, *sql;
    } rules[] = {
        {"an item written to two MACs",
         "SELECT i.pool, i.label FROM pool_uses u JOIN pool_items i ON i.id = u.item_id "
         "WHERE u.outcome IS NULL OR u.outcome <> 'released' GROUP BY u.item_id "
         "HAVING count(DISTINCT u.mac) > 1"},
        {"an item's MAC differs from a job that wrote it",
         "SELECT i.label, u.mac FROM pool_uses u JOIN pool_items i ON i.id = u.item_id "
         "WHERE u.outcome IN ('consumed', 'kept', 'reused') AND i.mac IS NOT NULL "
         "AND i.mac <> u.mac"},
        {"a consumed item whose job did not pass",
         "SELECT i.label, i.job_uuid FROM pool_items i LEFT JOIN jobs j ON j.uuid = i.job_uuid "
         "WHERE i.state = 'consumed' AND coalesce(j.result, '') <> 'pass'"},
        {"a reserved item whose job is not running",
         "SELECT i.label, i.job_uuid FROM pool_items i LEFT JOIN jobs j ON j.uuid = i.job_uuid "
         "WHERE i.state = 'reserved' AND coalesce(j.result, '') <> 'running'"},
        {"a passed job's item not consumed",
         "SELECT i.label, i.job_uuid FROM pool_items i JOIN jobs j ON j.uuid = i.job_uuid "
         "WHERE i.state IN ('reserved', 'bound') AND j.result = 'pass'"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        int rc = violation(db, rules[i].sql, rules[i].what, err, errlen);
        if (rc) return rc;
    }
    return 0;
}
