/* SPDX-License-Identifier: MIT */
/* test_cfx.c — daemon/cfx without a broker: time and TimeSpan forms, the envelope, the result
 * and fault mappings (docs/CFX.md "Mappings"), the "cfx" config section and its credentials
 * file, and the outbox the store hooks write (order per job, faults cleared by the next job,
 * the bound, the end messages of jobs a crash interrupted).
 * Must not: leave files behind (each test works in its own mkdtemp directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cfx.h"
#include "cfx_msg.h"
#include "cfx_outbox.h"
#include "est_err.h"
#include "store.h"

typedef struct {
    char dir[64];
    char db[128];
} tmp_t;

static int tmp_setup(void **state)
{
    tmp_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/estn-cfx-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->db, sizeof t->db, "%s/station.db", t->dir);
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmp_t *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

/* ---- formats ---- */

static void test_span_and_time(void **state)
{
    char b[CFX_SPAN_LEN], tb[CFX_TIME_LEN];
    (void)state;
    assert_string_equal(cfx_fmt_span(0, b), "00:00:00");
    assert_string_equal(cfx_fmt_span(61000, b), "00:01:01");
    assert_string_equal(cfx_fmt_span(60000, b), "00:01:00");
    assert_string_equal(cfx_fmt_span(90061500, b), "1.01:01:01.5000000");
    assert_string_equal(cfx_fmt_span(20, b), "00:00:00.0200000");
    setenv("TZ", "UTC0", 1);
    tzset();
    assert_string_equal(cfx_fmt_time(1796678626610ull, tb), "2026-12-07T21:23:46.610+00:00");
    setenv("TZ", "XYZ-5:30", 1); /* POSIX: 5 h 30 east of UTC */
    tzset();
    assert_string_equal(cfx_fmt_time(1796678626610ull, tb), "2026-12-08T02:53:46.610+05:30");
    setenv("TZ", "ABC3", 1);
    tzset();
    assert_string_equal(cfx_fmt_time(1796678626001ull, tb), "2026-12-07T18:23:46.001-03:00");
    unsetenv("TZ");
    tzset();
}

static void test_envelope(void **state)
{
    cJSON *e;
    char *txt;
    (void)state;
    txt = cfx_envelope(CFX_HEARTBEAT, "0b8e1f2d-3f3b-4a52-9f5e-9c0e5a4e7c11", 1796678626610ull,
                       "acme.st1", NULL, NULL, cfx_body_heartbeat("acme.st1", 60));
    assert_non_null(txt);
    e = cJSON_Parse(txt);
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItem(e, "MessageName")->valuestring, "CFX.Heartbeat");
    assert_string_equal(cJSON_GetObjectItem(e, "Version")->valuestring, "1.3");
    assert_string_equal(cJSON_GetObjectItem(e, "UniqueID")->valuestring,
                        "0b8e1f2d-3f3b-4a52-9f5e-9c0e5a4e7c11");
    assert_string_equal(cJSON_GetObjectItem(e, "Source")->valuestring, "acme.st1");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e, "Target")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e, "RequestID")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "MessageBody"),
                                            "HeartbeatFrequency")->valuestring,
                        "00:01:00");
    cJSON_Delete(e);
    cJSON_free(txt);
    /* a body that could not be built gives no envelope (and no leak) */
    assert_null(cfx_envelope(CFX_HEARTBEAT, "x", 0, "s", NULL, NULL, NULL));
}

static void test_mappings(void **state)
{
    cfx_job_t j = {.uuid = "u", .slot = "A1", .lane = 3, .result = "fail",
                   .error_class = "md5_mismatch", .mac = NULL};
    cJSON *b;
    (void)state;
    assert_string_equal(cfx_work_result("pass"), "Completed");
    assert_string_equal(cfx_work_result("fail"), "Failed");
    assert_string_equal(cfx_work_result("cancelled"), "Aborted");
    assert_string_equal(cfx_work_result("interrupted"), "Aborted");
    assert_string_equal(cfx_fault_cause("no_sync"), "LoadError");
    assert_string_equal(cfx_fault_cause("md5_mismatch"), "QualityCheck");
    assert_string_equal(cfx_fault_cause("brownout"), "PowerFailure");
    assert_string_equal(cfx_fault_cause("something_new"), "SoftwareFailure");
    assert_string_equal(cfx_fault_cause(NULL), "SoftwareFailure");
    /* no MAC: no personalization; no test ran: no UnitsTested */
    assert_null(cfx_body_units_personalized(&j));
    assert_null(cfx_body_units_tested(&j, "a", "b"));
    j.verify_ran = true;
    b = cfx_body_units_tested(&j, "a", "b");
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "TestedUnits"),
                                                               0),
                                            "OverallResult")->valuestring,
                        "Failed");
    cJSON_Delete(b);
    b = cfx_body_fault_occurred(&j, "occ");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "Fault"), "Lane")->valuestring,
                        "3");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "Fault"), "FaultCode")
                            ->valuestring,
                        "md5_mismatch");
    cJSON_Delete(b);
}

/* ---- config ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void expect_error(const char *json, const char *dir, const char *part)
{
    cfx_cfg_t c;
    char err[512] = "";
    assert_int_equal(cfx_config_parse(json, dir, "st1", &c, err, sizeof err), EST_EUSAGE);
    if (!strstr(err, part))
        fail_msg("config %s: error \"%s\" does not say \"%s\"", json, err, part);
}

static void test_config(void **state)
{
    tmp_t *t = *state;
    cfx_cfg_t c;
    char err[512], path[160];
    assert_int_equal(cfx_config_parse(NULL, t->dir, "st1", &c, err, sizeof err), 0);
    assert_false(c.enabled);
    cfx_config_free(&c);
    assert_int_equal(cfx_config_parse("{\"broker\":\"amqp://mq:5672\"}", t->dir, "st1", &c, err,
                                      sizeof err),
                     0);
    assert_true(c.enabled);
    assert_string_equal(c.handle, "espstation.st1");
    assert_string_equal(c.address, "/queue/cfx");
    assert_string_equal(c.request_address, "/queue/espstation.st1");
    assert_int_equal(c.heartbeat_s, 60);
    assert_int_equal(c.outbox_max, 100000);
    assert_null(c.user);
    cfx_config_free(&c);
    expect_error("{}", t->dir, "$.cfx.broker: required");
    expect_error("{\"broker\":\"http://mq\"}", t->dir, "amqp:// or amqps://");
    expect_error("{\"broker\":\"amqp://mq\",\"brokr\":1}", t->dir, "$.cfx.brokr: unknown");
    expect_error("{\"broker\":\"amqp://mq\",\"heartbeat_s\":0}", t->dir, "$.cfx.heartbeat_s");
    expect_error("{\"broker\":\"amqps://mq\"}", t->dir, "$.cfx.tls.ca_file: required");
    expect_error("{\"broker\":\"amqp://mq\",\"tls\":{\"cert_file\":\"c.pem\"}}", t->dir,
                 "go together");
    expect_error("{\"broker\":\"amqp://mq\",\"credentials_file\":\"nope\"}", t->dir,
                 "$.cfx.credentials_file: cannot open");
    snprintf(path, sizeof path, "%s/cred", t->dir);
    write_file(path, "mes:s3cret:with:colons\n", 0644);
    expect_error("{\"broker\":\"amqp://mq\",\"credentials_file\":\"cred\"}", t->dir, "chmod 600");
    write_file(path, "no-colon\n", 0600);
    expect_error("{\"broker\":\"amqp://mq\",\"credentials_file\":\"cred\"}", t->dir, "user:password");
    write_file(path, "mes:s3cret:with:colons\n", 0600);
    assert_int_equal(cfx_config_parse("{\"broker\":\"amqp://mq\",\"credentials_file\":\"cred\"}",
                                      t->dir, "st1", &c, err, sizeof err),
                     0);
    assert_string_equal(c.user, "mes");
    assert_string_equal(c.password, "s3cret:with:colons");
    cfx_config_free(&c);
}

/* ---- the outbox through the store hooks ---- */

static const char *const slots[] = {"A1", "A2"};

static int hook_begin(void *db, const char *uuid, const job_report_t *r, const store_job_end_t *e,
                      int64_t seq, void *ud)
{
    (void)r, (void)e, (void)seq;
    return cfx_outbox_job_begin(db, ud, uuid);
}

static int hook_end(void *db, const char *uuid, const job_report_t *r, const store_job_end_t *e,
                    int64_t seq, void *ud)
{
    (void)e, (void)seq;
    return cfx_outbox_job_end(db, ud, uuid, r);
}

static store_t *open_store(const tmp_t *t, cfx_outbox_cfg_t *c)
{
    store_t *s = NULL;
    if (store_open(t->db, &s) < 0)
        fail_msg("store_open: %s", store_errmsg(s));
    assert_int_equal(store_add_begin_hook(s, hook_begin, c), 0);
    assert_int_equal(store_add_finish_hook(s, hook_end, c), 0);
    return s;
}

static void job(store_t *s, const char *uuid, const char *slot, job_result_t res)
{
    store_job_start_t st = {.uuid = uuid, .slot = slot, .port = "socket://127.0.0.1:1",
                            .attempt = 1};
    job_report_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(store_job_begin(s, &st), 0);
    if (res == JOB_RESULT_NONE)
        return;
    r.result = res;
    r.have_mac = true;
    memcpy(r.mac, "\x24\x0a\xc4\x00\x00\x01", 6);
    r.n_images = 1;
    r.images[0].verified = res == JOB_RESULT_PASS;
    if (res == JOB_RESULT_FAIL) {
        r.error_class = EST_CLASS_MD5_MISMATCH;
        r.failed_state = JOB_ST_VERIFY;
        snprintf(r.message, sizeof r.message, "MD5 differs");
    }
    if (store_job_finish(s, uuid, &r, NULL, NULL) != 0)
        fail_msg("store_job_finish: %s", store_errmsg(s));
}

typedef struct {
    char kinds[64][64];
    size_t n;
} kinds_t;

static int collect(const cfx_outbox_row_t *row, void *ud)
{
    kinds_t *k = ud;
    const char *dot = strrchr(row->kind, '.');
    if (k->n < 64)
        snprintf(k->kinds[k->n++], sizeof k->kinds[0], "%s", dot ? dot + 1 : row->kind);
    return 0;
}

static void expect_kinds(sqlite3 *db, const char *const *want, size_t n)
{
    kinds_t k = {.n = 0};
    assert_int_equal(cfx_outbox_fetch(db, CFX_SINK, 0, 64, collect, &k), (int)n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(k.kinds[i], want[i]) != 0)
            fail_msg("outbox row %zu is %s, expected %s", i, k.kinds[i], want[i]);
}

static void test_outbox_order_and_faults(void **state)
{
    tmp_t *t = *state;
    cfx_outbox_cfg_t c = {CFX_SINK, "acme.st1", slots, 2, 1000};
    static const char *const want[] = {
        "WorkStarted", "StageStateChanged", "StationStateChanged", /* pass on A1 */
        "UnitsPersonalized", "UnitsTested", "WorkCompleted", "StageStateChanged",
        "StationStateChanged",
        "WorkStarted", "StageStateChanged", "StationStateChanged", /* fail on A2 */
        "UnitsTested", "FaultOccurred", "WorkCompleted", "StageStateChanged",
        "StationStateChanged",
        "FaultCleared", "WorkStarted", "StageStateChanged", "StationStateChanged", /* A2 again */
    };
    store_t *s = open_store(t, &c);
    sqlite3 *db;
    cfx_outbox_depth_t d;
    int64_t ids[3];
    job(s, "11111111-1111-4111-8111-111111111111", "A1", JOB_RESULT_PASS);
    job(s, "22222222-2222-4222-8222-222222222222", "A2", JOB_RESULT_FAIL);
    job(s, "33333333-3333-4333-8333-333333333333", "A2", JOB_RESULT_NONE);
    assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
    expect_kinds(db, want, sizeof want / sizeof want[0]);
    assert_int_equal(cfx_outbox_depth(db, CFX_SINK, &d), SQLITE_OK);
    assert_int_equal(d.waiting, 20);
    /* accepted rows go, a refused one is parked and no longer fetched */
    ids[0] = 1, ids[1] = 2, ids[2] = 3;
    assert_int_equal(cfx_outbox_delete(db, ids, 3), SQLITE_OK);
    assert_int_equal(cfx_outbox_park(db, 4, "rejected by the broker: too big"), SQLITE_OK);
    assert_int_equal(cfx_outbox_depth(db, CFX_SINK, &d), SQLITE_OK);
    assert_int_equal(d.waiting, 16);
    assert_int_equal(d.parked, 1);
    expect_kinds(db, want + 4, 16);
    sqlite3_close(db);
    store_close(s);
}

static void test_outbox_bound_and_recovery(void **state)
{
    tmp_t *t = *state;
    cfx_outbox_cfg_t c = {CFX_SINK, "acme.st1", slots, 2, 3};
    static const char *const want[] = {"WorkStarted", "StageStateChanged", "StationStateChanged"};
    static const char *const after[] = {"WorkStarted", "StageStateChanged", "StationStateChanged",
                                        "WorkCompleted", "StageStateChanged",
                                        "StationStateChanged"};
    store_t *s = open_store(t, &c);
    sqlite3 *db;
    cfx_outbox_depth_t d;
    /* a crash leaves the job running: its row and WorkStarted are recorded together */
    job(s, "44444444-4444-4444-8444-444444444444", "A1", JOB_RESULT_NONE);
    /* the bound is 3: the next job's messages are counted, not written (the job is recorded) */
    job(s, "55555555-5555-4555-8555-555555555555", "A2", JOB_RESULT_PASS);
    assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
    expect_kinds(db, want, 3);
    assert_int_equal(cfx_outbox_depth(db, CFX_SINK, &d), SQLITE_OK);
    assert_true(d.dropped >= 5);
    store_close(s); /* no finish for job 4444: as after kill -9 */
    c.max_rows = 1000;
    s = open_store(t, &c); /* marks it interrupted */
    assert_int_equal(cfx_outbox_recover(db, &c), 1);
    assert_int_equal(cfx_outbox_recover(db, &c), 0); /* once */
    expect_kinds(db, after, 6);
    sqlite3_close(db);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_and_time),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_mappings),
        cmocka_unit_test_setup_teardown(test_config, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_order_and_faults, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_bound_and_recovery, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
