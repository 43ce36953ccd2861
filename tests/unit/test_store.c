/* SPDX-License-Identifier: MIT */
/* test_store.c — unit tests of the SQLite store (daemon/station/store.c): migrations and user_version,
 * crash recovery (running → interrupted, also after a real SIGKILL), the MES cursor, foreign
 * keys, durable final rows, events, that the sqlite3 shell can read the jobs table, and the
 * HTTP API's queries (filters and paging, a board's jobs, details, counts, stats, recipes).
 * Must not: leave files behind (every test works in its own mkdtemp directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chip.h"
#include "est_err.h"
#include "job.h"
#include "store.h"

typedef struct {
    char dir[64];
    char db[128];
} tmp_t;

static int tmp_setup(void **state)
{
    tmp_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/estn-store-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof t->db, "%s/station.db", t->dir);
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmp_t *t = *state;
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", t->db, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
    free(t);
    return 0;
}

static store_t *open_ok(const tmp_t *t, int expect_interrupted)
{
    store_t *s = NULL;
    int rc = store_open(t->db, &s);
    if (rc < 0) fail_msg("store_open: %s", store_errmsg(s));
    assert_int_equal(rc, expect_interrupted);
    return s;
}

static void begin(store_t *s, const char *uuid, const char *slot, const char *recipe)
{
    store_job_start_t st = {.uuid = uuid,
                            .slot = slot,
                            .port = "rfc2217://127.0.0.1:4000",
                            .recipe_hash = recipe,
                            .baud = 115200,
                            .attempt = 1};
    if (store_job_begin(s, &st) != 0) fail_msg("store_job_begin %s: %s", uuid, store_errmsg(s));
}

/* A plausible finished report: ESP32-C3 v0.4, two verified images. */
static void fill_report(job_report_t *r, job_result_t res, uint8_t mac_last)
{
    memset(r, 0, sizeof *r);
    r->result = res;
    r->chip = chip_get(CHIP_ESP32C3);
    r->chip_rev = 4;
    r->have_rev = true;
    r->have_mac = true;
    memcpy(r->mac, (const uint8_t[6]){0x58, 0xCF, 0x79, 0x0A, 0xB1, mac_last}, 6);
    r->have_flash_id = true;
    r->flash_id = 0xC84016; /* GigaDevice, type 0x40, 4 MB */
    r->flash_size = 4u << 20;
    r->started_ms = 1000;
    r->finished_ms = 3500;
    r->state_ms[JOB_ST_SYNC] = 120;
    r->state_ms[JOB_ST_DATA] = 2100;
    r->bytes_written = 0x30000;
    r->bytes_sent = 0x12345;
    r->retries = 1;
    r->sync_attempts = 2;
    r->n_images = 2;
    r->images[0] = (job_image_stat_t){.offset = 0x0,
                                      .size = 0x10000,
                                      .compressed_size = 0x8000,
                                      .patched = true,
                                      .verified = true,
                                      .duration_ms = 500};
    r->images[1] = (job_image_stat_t){.offset = 0x10000,
                                      .size = 0x20000,
                                      .compressed_size = 0xA345,
                                      .verified = true,
                                      .duration_ms = 1600};
    memset(r->images[0].md5, 0xAB, 16);
    memset(r->images[1].md5, 0x01, 16);
    if (res == JOB_RESULT_FAIL) {
        r->error_class = EST_CLASS_MD5_MISMATCH;
        r->error_code = EST_EMD5;
        r->failed_state = JOB_ST_VERIFY;
        snprintf(r->message, sizeof r->message, "MD5 of flash differs at 0x10000");
    }
}

static int64_t finish(store_t *s, const char *uuid, job_result_t res, uint8_t mac_last)
{
    job_report_t r;
    int64_t seq = -1;
    fill_report(&r, res, mac_last);
    if (store_job_finish(s, uuid, &r, NULL, &seq) != 0)
        fail_msg("store_job_finish %s: %s", uuid, store_errmsg(s));
    return seq;
}

/* Open the file directly (no store) for checks the store API does not offer. */
static sqlite3 *raw_open(const tmp_t *t)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static const char *U1 = "11111111-1111-4111-8111-111111111111";
static const char *U2 = "22222222-2222-4222-8222-222222222222";
static const char *U3 = "33333333-3333-4333-8333-333333333333";
static const char *U4 = "44444444-4444-4444-8444-444444444444";

/* ---- tests ---- */

static void test_migrations_apply_and_are_idempotent(void **state)
{
    tmp_t *t = *state;
    size_t n;
    const store_migration_t *m = store_migrations(&n);
    store_t *s;
    sqlite3 *db;
    char mode[16];

    assert_true(n >= 1);
    s = open_ok(t, 0);
    assert_int_equal(store_schema_version(s), m[n - 1].version);
    store_close(s);

    db = raw_open(t);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), m[n - 1].version);
    raw_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                 "name IN ('recipes', 'jobs', 'job_images', 'job_events')"),
                     4);
    /* a marker row: a second open must not re-run 001 (it would fail or wipe the table) */
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO recipes VALUES ('"
                                  "0000000000000000000000000000"
                                  "000000000000000000000000000000000000', 'm', '1', '{}', 'x')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    s = open_ok(t, 0);
    assert_int_equal(store_schema_version(s), m[n - 1].version);
    assert_int_equal(store_check(s), 0);
    store_close(s);
    db = raw_open(t);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM recipes"), 1);
    sqlite3_close(db);
}

/* The compiled-in migrations are exactly schema/NNN_*.sql, numbered 1..n. */
static void test_migrations_match_source_tree(void **state)
{
    (void)state;
    size_t n;
    const store_migration_t *m = store_migrations(&n);
    for (size_t i = 0; i < n; i++) {
        char path[512], num[4];
        FILE *f;
        long len;
        char *buf;
        assert_int_equal(m[i].version, i + 1);
        snprintf(num, sizeof num, "%03u", m[i].version);
        assert_memory_equal(m[i].name, num, 3);
        snprintf(path, sizeof path, "%s/schema/%s", ESTN_SOURCE_DIR, m[i].name);
        f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        buf = calloc(1, (size_t)len + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        assert_string_equal(buf, m[i].sql);
        free(buf);
    }
}

static void test_newer_schema_refused(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    sqlite3 *db;
    store_close(s);
    db = raw_open(t);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(t->db, &s), EST_EDB);
    assert_non_null(strstr(store_errmsg(s), "schema version 999"));
    store_close(s);
}

static void test_running_becomes_interrupted_at_reopen(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t row;
    int64_t seq1;

    begin(s, U1, "A1", NULL);
    begin(s, U2, "A2", NULL);
    begin(s, U3, "A3", NULL);
    seq1 = finish(s, U2, JOB_RESULT_PASS, 2);
    assert_int_equal(seq1, 1);
    store_close(s); /* U1 and U3 are left running, as a crash would leave them */

    s = open_ok(t, 2);
    assert_int_equal(store_job_get(s, U1, &row), 0);
    assert_string_equal(row.result, "interrupted");
    assert_int_equal(row.seq, 2); /* in start order, after the job that finished */
    assert_int_equal(strlen(row.finished_at), STORE_TIME_LEN - 1);
    assert_non_null(strstr(row.message, "stopped while the job was running"));
    assert_int_equal(store_job_get(s, U3, &row), 0);
    assert_string_equal(row.result, "interrupted");
    assert_int_equal(row.seq, 3);
    assert_int_equal(store_job_get(s, U2, &row), 0);
    assert_string_equal(row.result, "pass");
    assert_int_equal(row.seq, 1);
    store_close(s);

    s = open_ok(t, 0); /* nothing left to mark */
    store_close(s);
}

typedef struct {
    size_t n;
    char uuids[8][STORE_UUID_LEN];
    int64_t seqs[8];
} page_t;

static int page_cb(const store_job_row_t *row, void *data)
{
    page_t *p = data;
    assert_true(p->n < 8);
    snprintf(p->uuids[p->n], STORE_UUID_LEN, "%s", row->uuid);
    p->seqs[p->n++] = row->seq;
    return 0;
}

static void test_seq_is_finish_order_and_only_for_finished(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t row;
    job_report_t r;
    page_t p;
    int64_t n;

    begin(s, U1, "A1", NULL);
    begin(s, U2, "A2", NULL);
    begin(s, U3, "A3", NULL);
    begin(s, U4, "A4", NULL);
    assert_int_equal(store_job_get(s, U1, &row), 0);
    assert_int_equal(row.seq, -1);
    assert_string_equal(row.result, "running");

    /* finish in an order different from the start order */
    assert_int_equal(finish(s, U3, JOB_RESULT_PASS, 3), 1);
    assert_int_equal(finish(s, U1, JOB_RESULT_FAIL, 1), 2);
    assert_int_equal(finish(s, U2, JOB_RESULT_CANCELLED, 2), 3);

    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_after(s, 0, 100, page_cb, &p), 3);
    assert_string_equal(p.uuids[0], U3);
    assert_string_equal(p.uuids[1], U1);
    assert_string_equal(p.uuids[2], U2);
    assert_int_equal(p.seqs[2], 3);

    /* the cursor: after 1, limit 1 → only U1; U4 (running) is never listed */
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_after(s, 1, 1, page_cb, &p), 1);
    assert_string_equal(p.uuids[0], U1);
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_after(s, 3, 100, page_cb, &p), 0);
    assert_int_equal(store_jobs_after(s, 0, 5000, page_cb, &p), EST_EDB);

    /* a result is recorded once; unknown jobs are refused; a report without result too */
    fill_report(&r, JOB_RESULT_PASS, 9);
    assert_int_equal(store_job_finish(s, U3, &r, NULL, NULL), EST_EDB);
    assert_non_null(strstr(store_errmsg(s), "already has its result"));
    assert_int_equal(store_job_finish(s, "55555555-5555-4555-8555-555555555555", &r, NULL, NULL),
                     EST_EDB);
    fill_report(&r, JOB_RESULT_NONE, 9);
    assert_int_equal(store_job_finish(s, U4, &r, NULL, NULL), EST_EDB);
    /* refused attempts do not consume a seq */
    fill_report(&r, JOB_RESULT_PASS, 4);
    store_job_end_t end = {.result = STORE_RESULT_INTERRUPTED, .finished_unix_ms = 1714566896789};
    int64_t seq = 0;
    assert_int_equal(store_job_finish(s, U4, &r, &end, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(store_job_get(s, U4, &row), 0);
    assert_string_equal(row.result, "interrupted");
    assert_string_equal(row.finished_at, "2024-05-01T12:34:56.789Z");

    assert_int_equal(store_count_jobs(s, "pass", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_count_jobs(s, NULL, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(store_count_jobs(s, "running", &n), 0);
    assert_int_equal(n, 0);
    store_close(s);

    /* the counter continues across restarts */
    s = open_ok(t, 0);
    begin(s, "66666666-6666-4666-8666-666666666666", "A1", NULL);
    assert_int_equal(finish(s, "66666666-6666-4666-8666-666666666666", JOB_RESULT_PASS, 6), 5);
    store_close(s);
}

static void test_foreign_keys_and_recipes(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    /* sha256("{}") */
    const char *h = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    store_job_start_t st = {.uuid = U1, .slot = "A1", .port = "/dev/ttyUSB0", .recipe_hash = h};
    store_job_row_t row;

    /* a job may not point at a recipe the store does not have */
    assert_int_equal(store_job_begin(s, &st), EST_EDB);
    assert_non_null(strstr(store_errmsg(s), "FOREIGN KEY"));
    /* events need their job */
    assert_int_equal(store_job_event(s, U1, 0, "state", "open", NULL), EST_EDB);
    assert_non_null(strstr(store_errmsg(s), "FOREIGN KEY"));

    /* the hash must be the recipe's */
    assert_int_equal(store_recipe_put(s, h, "r", "1", "{ }", 3), EST_EDB);
    assert_int_equal(store_recipe_put(s, "ABC", "r", "1", "{}", 2), EST_EDB);
    assert_int_equal(store_recipe_put(s, h, "r", "1", "{}", 2), 0);
    assert_int_equal(store_recipe_put(s, h, "r", "1", "{}", 2), 0); /* idempotent */
    assert_int_equal(store_job_begin(s, &st), 0);
    assert_int_equal(store_job_get(s, U1, &row), 0);
    assert_string_equal(row.recipe_hash, h);
    /* the same uuid twice is refused */
    assert_int_equal(store_job_begin(s, &st), EST_EDB);
    assert_non_null(strstr(store_errmsg(s), "UNIQUE"));
    store_close(s);

    /* deleting a recipe that jobs use is refused by the database itself */
    sqlite3 *db = raw_open(t);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM recipes", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_final_row_survives_reopen(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t row;
    sqlite3 *db;
    char buf[128];

    begin(s, U1, "B7", NULL);
    begin(s, U2, "B8", NULL);
    assert_int_equal(finish(s, U1, JOB_RESULT_PASS, 0xEE), 1);
    assert_int_equal(finish(s, U2, JOB_RESULT_FAIL, 0x0F), 2);
    store_close(s);

    s = open_ok(t, 0);
    assert_int_equal(store_job_get(s, U1, &row), 0);
    assert_int_equal(row.seq, 1);
    assert_string_equal(row.slot, "B7");
    assert_string_equal(row.port, "rfc2217://127.0.0.1:4000");
    assert_string_equal(row.chip, "esp32c3");
    assert_string_equal(row.revision, "v0.4");
    assert_string_equal(row.mac, "58:cf:79:0a:b1:ee");
    assert_string_equal(row.flash_id, "c84016");
    assert_int_equal(row.flash_size, 4 << 20);
    assert_string_equal(row.result, "pass");
    assert_string_equal(row.error_class, "");
    assert_string_equal(row.failed_state, "");
    assert_int_equal(row.duration_ms, 2500);
    assert_string_equal(row.state_ms, "{\"sync\":120,\"data\":2100}");
    assert_int_equal(row.bytes_written, 0x30000);
    assert_int_equal(row.bytes_sent, 0x12345);
    assert_int_equal(row.retries, 1);
    assert_int_equal(row.baud, 115200);
    assert_int_equal(row.attempt, 1);
    assert_int_equal(row.n_images, 2);

    assert_int_equal(store_job_get(s, U2, &row), 0);
    assert_string_equal(row.result, "fail");
    assert_string_equal(row.error_class, "md5_mismatch");
    assert_string_equal(row.failed_state, "verify");
    assert_string_equal(row.message, "MD5 of flash differs at 0x10000");
    assert_int_equal(store_job_get(s, U3, &row), 1);
    assert_int_equal(store_check(s), 0);
    store_close(s);

    db = raw_open(t);
    raw_text(db,
             "SELECT md5 || ' ' || offset || ' ' || size || ' ' || compressed_size || ' ' || "
             "patched || verified FROM job_images WHERE job_uuid = '11111111-1111-4111-8111-"
             "111111111111' AND idx = 0",
             buf, sizeof buf);
    assert_string_equal(buf, "abababababababababababababababab 0 65536 32768 11");
    assert_int_equal(raw_int(db, "SELECT json_extract(state_ms, '$.data') FROM jobs WHERE seq = 1"),
                     2100);
    sqlite3_close(db);
}

/* The post-flash test's output has its own column (schema/004): written from the report when a
 * test ran (also an empty output), NULL when none ran; a row's other columns are unchanged. */
static void test_test_output_column(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t *row = malloc(sizeof *row);
    job_report_t r;
    sqlite3 *db;
    char buf[64];
    assert_non_null(row);
    begin(s, U1, "T1", NULL);
    begin(s, U2, "T2", NULL);
    fill_report(&r, JOB_RESULT_PASS, 0x11);
    r.test_ran = r.test_passed = true;
    snprintf(r.test_output, sizeof r.test_output, "I (300) app: station ready\n");
    r.test_output_len = strlen(r.test_output);
    assert_int_equal(store_job_finish(s, U1, &r, NULL, NULL), 0);
    assert_int_equal(finish(s, U2, JOB_RESULT_PASS, 0x12), 2);
    assert_int_equal(store_job_get(s, U1, row), 0);
    assert_string_equal(row->test_output, "I (300) app: station ready\n");
    assert_string_equal(row->mac, "58:cf:79:0a:b1:11");
    assert_string_equal(row->result, "pass");
    assert_int_equal(store_job_get(s, U2, row), 0);
    assert_string_equal(row->test_output, "");
    store_close(s);
    db = raw_open(t);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM jobs WHERE test_output IS NULL"), 1);
    raw_text(db, "SELECT slot FROM jobs WHERE test_output LIKE '%station ready%'", buf,
             sizeof buf);
    assert_string_equal(buf, "T1");
    sqlite3_close(db);
    free(row);
}

/* The flasher stub that ran has its own column (schema/008): the report's stub_name, NULL when
 * none ran (issue 12). */
static void test_stub_name_column(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t *row = malloc(sizeof *row);
    job_report_t r;
    sqlite3 *db;
    char buf[128];
    assert_non_null(row);
    begin(s, U1, "S1", NULL);
    begin(s, U2, "S2", NULL);
    fill_report(&r, JOB_RESULT_PASS, 0x21);
    r.stub = true;
    snprintf(r.stub_name, sizeof r.stub_name, "1/esp32.json (legacy stub, esptool 4.12.0)");
    assert_int_equal(store_job_finish(s, U1, &r, NULL, NULL), 0);
    assert_int_equal(finish(s, U2, JOB_RESULT_PASS, 0x22), 2);
    assert_int_equal(store_job_get(s, U1, row), 0);
    assert_string_equal(row->stub_name, "1/esp32.json (legacy stub, esptool 4.12.0)");
    assert_int_equal(store_job_get(s, U2, row), 0);
    assert_string_equal(row->stub_name, "");
    store_close(s);
    db = raw_open(t);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM jobs WHERE stub_name IS NULL"), 1);
    raw_text(db, "SELECT stub_name FROM jobs WHERE slot = 'S1'", buf, sizeof buf);
    assert_string_equal(buf, "1/esp32.json (legacy stub, esptool 4.12.0)");
    sqlite3_close(db);
    free(row);
}

/* Migration 009: the security read-out (JSON) and the reason the images were not verified are
 * written by the final UPDATE and read back; NULL when the report has none. */
static void test_security_columns(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    store_job_row_t *row = malloc(sizeof *row);
    job_report_t *r = malloc(sizeof *r);
    sqlite3 *db;
    assert_non_null(row);
    assert_non_null(r);
    begin(s, U1, "S1", NULL);
    begin(s, U2, "S2", NULL);
    fill_report(r, JOB_RESULT_PASS, 0x21);
    snprintf(r->security, sizeof r->security, "{\"source\":\"secinfo\",\"secure_download\":true}");
    snprintf(r->unverified, sizeof r->unverified, "Secure Download Mode: no MD5");
    assert_int_equal(store_job_finish(s, U1, r, NULL, NULL), 0);
    assert_int_equal(finish(s, U2, JOB_RESULT_PASS, 0x22), 2);
    assert_int_equal(store_job_get(s, U1, row), 0);
    assert_string_equal(row->security, "{\"source\":\"secinfo\",\"secure_download\":true}");
    assert_string_equal(row->not_verified_reason, "Secure Download Mode: no MD5");
    assert_int_equal(store_job_get(s, U2, row), 0);
    assert_string_equal(row->security, "");
    assert_string_equal(row->not_verified_reason, "");
    store_close(s);
    db = raw_open(t);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM jobs WHERE security IS NULL AND "
                                 "not_verified_reason IS NULL"),
                     1);
    sqlite3_close(db);
    free(r);
    free(row);
}

static void test_events_are_numbered_per_job(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    sqlite3 *db;
    char buf[128];

    begin(s, U1, "A1", NULL);
    begin(s, U2, "A2", NULL);
    assert_int_equal(store_job_event(s, U1, 0, "state", "open", NULL), 0);
    assert_int_equal(store_job_event(s, U2, 3, "state", "open", NULL), 0);
    assert_int_equal(store_job_event(s, U1, 12, "state", "sync", "{\"attempt\":1}"), 0);
    assert_int_equal(store_job_event(s, U1, 40, "log", NULL, "{\"text\":\"hi\"}"), 0);
    /* detail must be JSON */
    assert_int_equal(store_job_event(s, U1, 41, "log", NULL, "{not json"), EST_EDB);
    assert_int_equal(store_job_event(s, U1, 41, "", NULL, NULL), EST_EDB);
    store_close(s);

    db = raw_open(t);
    raw_text(db,
             "SELECT group_concat(n || ':' || t_ms || ':' || kind || ':' || coalesce(state, '-'),"
             " ' ') FROM (SELECT * FROM job_events WHERE job_uuid = "
             "'11111111-1111-4111-8111-111111111111' ORDER BY n)",
             buf, sizeof buf);
    assert_string_equal(buf, "0:0:state:open 1:12:state:sync 2:40:log:-");
    assert_int_equal(raw_int(db, "SELECT max(n) FROM job_events WHERE job_uuid = "
                                 "'22222222-2222-4222-8222-222222222222'"),
                     0);
    sqlite3_close(db);
}

/* A quality engineer's query, run by the real sqlite3 shell against the file. */
static void test_sqlite3_shell_can_query_jobs(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    char cmd[512], line[256];
    FILE *p;

    if (system("command -v sqlite3 >/dev/null 2>&1") != 0) {
        store_close(s);
        skip();
    }
    begin(s, U1, "A1", NULL);
    begin(s, U2, "A2", NULL);
    finish(s, U2, JOB_RESULT_FAIL, 0x22);
    finish(s, U1, JOB_RESULT_PASS, 0x11);
    /* the store stays open: the shell reads next to the daemon thanks to WAL */
    snprintf(cmd, sizeof cmd,
             "sqlite3 -readonly -separator '|' '%s' 'SELECT uuid, slot, chip, mac, flash_id, "
             "result, error_class FROM jobs ORDER BY seq' 2>&1",
             t->db);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_string_equal(line, "22222222-2222-4222-8222-222222222222|A2|esp32c3|58:cf:79:0a:b1:22|"
                              "c84016|fail|md5_mismatch\n");
    assert_non_null(fgets(line, sizeof line, p));
    assert_string_equal(line, "11111111-1111-4111-8111-111111111111|A1|esp32c3|58:cf:79:0a:b1:11|"
                              "c84016|pass|\n");
    assert_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    store_close(s);
}

/* A real kill -9 of a process holding the store mid-job: the finished job is kept, the running
 * one becomes interrupted, the file is intact. */
static void test_survives_sigkill(void **state)
{
    tmp_t *t = *state;
    store_t *s;
    store_job_row_t row;
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        store_t *c = NULL;
        job_report_t r;
        if (store_open(t->db, &c) < 0) _exit(2);
        store_job_start_t a = {.uuid = U1, .slot = "A1", .port = "p"};
        store_job_start_t b = {.uuid = U2, .slot = "A2", .port = "p"};
        fill_report(&r, JOB_RESULT_PASS, 1);
        if (store_job_begin(c, &a) || store_job_begin(c, &b) ||
            store_job_event(c, U2, 5, "state", "data", NULL) ||
            store_job_finish(c, U1, &r, NULL, NULL))
            _exit(3);
        raise(SIGKILL); /* no close, no checkpoint: the WAL holds everything */
        _exit(4);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    s = open_ok(t, 1);
    assert_int_equal(store_check(s), 0);
    assert_int_equal(store_job_get(s, U1, &row), 0);
    assert_string_equal(row.result, "pass");
    assert_int_equal(row.seq, 1);
    assert_int_equal(store_job_get(s, U2, &row), 0);
    assert_string_equal(row.result, "interrupted");
    assert_int_equal(row.seq, 2);
    store_close(s);
}

static void test_open_errors_are_reported(void **state)
{
    tmp_t *t = *state;
    store_t *s = NULL;
    char path[160];
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", t->dir);
    assert_int_equal(store_open(path, &s), EST_EDB);
    assert_non_null(s);
    assert_non_null(strstr(store_errmsg(s), "no/such/dir"));
    store_close(s);
}

static void test_time_and_uuid(void **state)
{
    (void)state;
    char b[STORE_TIME_LEN], u1[STORE_UUID_LEN], u2[STORE_UUID_LEN];
    assert_string_equal(store_fmt_time(0, b), "1970-01-01T00:00:00.000Z");
    assert_string_equal(store_fmt_time(1714566896789, b), "2024-05-01T12:34:56.789Z");
    assert_true(store_now_ms() > 1700000000000ull);

    assert_int_equal(store_new_uuid(u1), 0);
    assert_int_equal(store_new_uuid(u2), 0);
    assert_int_equal(strlen(u1), 36);
    assert_string_not_equal(u1, u2);
    assert_true(u1[8] == '-' && u1[13] == '-' && u1[18] == '-' && u1[23] == '-');
    assert_int_equal(u1[14], '4');
    assert_non_null(strchr("89ab", u1[19]));
    for (int i = 0; i < 36; i++)
        assert_non_null(strchr("0123456789abcdef-", u1[i]));
}

/* ---- the API's queries ---- */

typedef struct {
    int n;
    char uuids[16][STORE_UUID_LEN];
    char names[16][65];
    int64_t seqs[16];
} qpage_t;

static int qpage_cb(const store_job_row_t *row, void *data)
{
    qpage_t *p = data;
    if (p->n < 16) {
        snprintf(p->uuids[p->n], sizeof p->uuids[0], "%s", row->uuid);
        snprintf(p->names[p->n], sizeof p->names[0], "%s", row->recipe_name);
        p->seqs[p->n] = row->seq;
    }
    p->n++;
    return 0;
}

static const char *const QU[6] = {
    "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002",
    "a0000000-0000-4000-8000-000000000003", "a0000000-0000-4000-8000-000000000004",
    "a0000000-0000-4000-8000-000000000005", "a0000000-0000-4000-8000-000000000006"};

static void test_api_job_queries(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    const char *h = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    store_job_filter_t f;
    store_job_row_t row;
    qpage_t p;
    job_report_t r;
    store_job_end_t end;

    assert_int_equal(store_recipe_put(s, h, "rname", "1.2", "{}", 2), 0);
    /* 6 jobs: A1 pass (mac ..:01), A2 fail (..:02), A1 pass (..:01 again), A2 cancelled,
     * A1 fail at a fixed old time, A3 still running */
    for (int i = 0; i < 6; i++)
        begin(s, QU[i], i == 5 ? "A3" : i % 2 ? "A2" : "A1", h);
    assert_int_equal(finish(s, QU[0], JOB_RESULT_PASS, 1), 1);
    assert_int_equal(finish(s, QU[1], JOB_RESULT_FAIL, 2), 2);
    assert_int_equal(finish(s, QU[2], JOB_RESULT_PASS, 1), 3);
    assert_int_equal(finish(s, QU[3], JOB_RESULT_CANCELLED, 2), 4);
    fill_report(&r, JOB_RESULT_FAIL, 3);
    end = (store_job_end_t){.finished_unix_ms = 1000000000000}; /* 2001 */
    assert_int_equal(store_job_finish(s, QU[4], &r, &end, NULL), 0);

    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 0, 100, NULL, qpage_cb, &p), 5);
    assert_string_equal(p.names[0], "rname");
    memset(&f, 0, sizeof f);
    f.result = "pass";
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 0, 100, &f, qpage_cb, &p), 2);
    assert_int_equal(p.seqs[0], 1);
    assert_int_equal(p.seqs[1], 3);
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 1, 100, &f, qpage_cb, &p), 1); /* paging + filter */
    assert_int_equal(p.seqs[0], 3);
    memset(&f, 0, sizeof f);
    f.mac = "58:cf:79:0a:b1:02";
    f.slot = "A2";
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 0, 100, &f, qpage_cb, &p), 2);
    memset(&f, 0, sizeof f);
    f.since = "2020-01-01T00:00:00.000Z"; /* the 2001 job is left out */
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 0, 100, &f, qpage_cb, &p), 4);
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_query(s, 0, 2, NULL, qpage_cb, &p), 2);
    assert_int_equal(store_jobs_query(s, 0, STORE_QUERY_MAX + 1, NULL, qpage_cb, &p), EST_EDB);

    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_by_mac(s, "58:cf:79:0a:b1:01", 100, qpage_cb, &p), 2);
    assert_string_equal(p.uuids[0], QU[0]);
    assert_string_equal(p.uuids[1], QU[2]);
    memset(&p, 0, sizeof p);
    assert_int_equal(store_jobs_by_mac(s, "00:00:00:00:00:00", 100, qpage_cb, &p), 0);

    assert_int_equal(store_job_last_of_slot(s, "A1", &row), 0);
    assert_string_equal(row.uuid, QU[4]);
    assert_string_equal(row.recipe_version, "1.2");
    assert_int_equal(store_job_last_of_slot(s, "A3", &row), 1); /* running only */
    assert_int_equal(store_job_last_of_slot(s, "Z9", &row), 1);
    store_close(s);
}

typedef struct {
    int n;
    char text[8][128];
} strs_t;

static int img_cb(const store_image_row_t *r, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%lld %lld %lld %lld %s %d %d %lld", (long long)r->idx,
             (long long)r->offset, (long long)r->size, (long long)r->compressed_size, r->md5,
             r->patched, r->verified, (long long)r->duration_ms);
    return 0;
}

static int ev_cb(const store_event_row_t *r, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%lld %lld %s %s %s", (long long)r->n, (long long)r->t_ms,
             r->kind, r->state ? r->state : "-", r->detail ? r->detail : "-");
    return 0;
}

static int count_cb(const char *slot, const char *result, bool final, int64_t n, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%s %s %d %lld", slot, result, final, (long long)n);
    return 0;
}

static int stat_cb(const store_stat_row_t *r, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%s %s %s %lld", r->slot, r->result,
             r->error_class ? r->error_class : "-", (long long)r->duration_ms);
    return 0;
}

static int rec_cb(const store_recipe_row_t *r, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%s %s %s %.*s", r->name, r->version,
             r->created_at[4] == '-' ? "t" : "?", (int)r->json_len, r->json ? r->json : "");
    return 0;
}

static int sr_cb(const char *slot, const char *hash, void *data)
{
    strs_t *x = data;
    snprintf(x->text[x->n++ & 7], 128, "%s %.8s", slot, hash);
    return 0;
}

static void test_api_details_counts_recipes(void **state)
{
    tmp_t *t = *state;
    store_t *s = open_ok(t, 0);
    const char *h = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    strs_t x;
    char now[STORE_TIME_LEN];
    job_report_t r;
    store_job_end_t end = {.retried = true};

    begin(s, QU[0], "A1", NULL);
    assert_int_equal(store_job_event(s, QU[0], 0, "state", "open", NULL), 0);
    assert_int_equal(store_job_event(s, QU[0], 7, "log", "sync", "{\"level\":\"warning\"}"), 0);
    assert_int_equal(finish(s, QU[0], JOB_RESULT_PASS, 1), 1);
    memset(&x, 0, sizeof x);
    assert_int_equal(store_job_images(s, QU[0], img_cb, &x), 2);
    assert_string_equal(x.text[0], "0 0 65536 32768 abababababababababababababababab 1 1 500");
    assert_string_equal(x.text[1],
                        "1 65536 131072 41797 01010101010101010101010101010101 0 1 1600");
    memset(&x, 0, sizeof x);
    assert_int_equal(store_job_events(s, QU[0], 100, ev_cb, &x), 2);
    assert_string_equal(x.text[0], "0 0 state open -");
    assert_string_equal(x.text[1], "1 7 log sync {\"level\":\"warning\"}");
    memset(&x, 0, sizeof x);
    assert_int_equal(store_job_events(s, QU[0], 1, ev_cb, &x), 1);

    /* a retried attempt is counted apart and left out of the stats */
    begin(s, QU[1], "A1", NULL);
    fill_report(&r, JOB_RESULT_FAIL, 1);
    assert_int_equal(store_job_finish(s, QU[1], &r, &end, NULL), 0);
    begin(s, QU[2], "A2", NULL);
    assert_int_equal(finish(s, QU[2], JOB_RESULT_FAIL, 2), 3);
    begin(s, QU[3], "A2", NULL);
    memset(&x, 0, sizeof x);
    assert_int_equal(store_job_counts(s, count_cb, &x), 0);
    assert_int_equal(x.n, 4);
    assert_string_equal(x.text[0], "A1 fail 0 1");
    assert_string_equal(x.text[1], "A1 pass 1 1");
    assert_string_equal(x.text[2], "A2 fail 1 1");
    assert_string_equal(x.text[3], "A2 running 1 1");
    memset(&x, 0, sizeof x);
    store_fmt_time(store_now_ms() + 1000, now);
    assert_int_equal(store_stats_rows(s, "2000-01-01T00:00:00.000Z", now, stat_cb, &x), 2);
    memset(&x, 0, sizeof x);
    assert_int_equal(store_stats_rows(s, now, "2999-01-01T00:00:00.000Z", stat_cb, &x), 0);

    /* recipes, slot choices */
    memset(&x, 0, sizeof x);
    assert_int_equal(store_recipes_list(s, rec_cb, &x), 0);
    assert_int_equal(store_recipe_put(s, h, "r", "1", "{}", 2), 0);
    assert_int_equal(store_recipes_list(s, rec_cb, &x), 1);
    assert_string_equal(x.text[0], "r 1 t ");
    memset(&x, 0, sizeof x);
    assert_int_equal(store_recipe_get(s, h, rec_cb, &x), 0);
    assert_string_equal(x.text[0], "r 1 t {}");
    assert_int_equal(store_recipe_get(s, "00", rec_cb, &x), 1);
    assert_int_equal(store_slot_recipe_set(s, "A1", "0000"), EST_EDB); /* not stored */
    assert_int_equal(store_slot_recipe_set(s, "A1", h), 0);
    assert_int_equal(store_slot_recipe_set(s, "A2", h), 0);
    assert_int_equal(store_slot_recipe_set(s, "A2", h), 0);
    assert_int_equal(store_slot_recipe_set(s, "A2", NULL), 0);
    store_close(s);
    s = open_ok(t, 1); /* QU[3] was left running */
    memset(&x, 0, sizeof x);
    assert_int_equal(store_slot_recipes(s, sr_cb, &x), 0);
    assert_int_equal(x.n, 1);
    assert_string_equal(x.text[0], "A1 44136fa3");
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_apply_and_are_idempotent, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test(test_migrations_match_source_tree),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_running_becomes_interrupted_at_reopen, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_seq_is_finish_order_and_only_for_finished, tmp_setup,
                                        tmp_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_and_recipes, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_final_row_survives_reopen, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_test_output_column, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_stub_name_column, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_security_columns, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_events_are_numbered_per_job, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite3_shell_can_query_jobs, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_survives_sigkill, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_open_errors_are_reported, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_time_and_uuid),
        cmocka_unit_test_setup_teardown(test_api_job_queries, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_api_details_counts_recipes, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
