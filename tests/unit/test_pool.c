/* SPDX-License-Identifier: MIT */
/* test_pool.c — unit tests of the exactly-once pools (daemon/station/pool.c, docs/DEVICE-DATA.md
 * "Pools and exactly-once allocation"): CSV import (refusals import nothing), counters, the
 * states free -> reserved -> bound -> consumed through the store's finish hook, release before
 * writing, kept after writing, the rework policies, the duplicate-MAC guard, void, and a crash
 * test: a child process allocating for many boards is killed with SIGKILL again and again; after
 * each restart pool_recover and pool_check find no value written to two MACs, every consumed
 * value belongs to a passed job, no stale reservation.
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
#include <time.h>
#include <unistd.h>

#include "est_err.h"
#include "job.h"
#include "pool.h"
#include "store.h"

/* In the crash test's child a failure must end the process (cmocka's teardown would delete the
 * parent's files): the parent sees a child that ended by itself and fails. */
static bool in_child;
#define die(...)                                                                                   \
    do {                                                                                           \
        if (in_child) _exit(9);                                                                    \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

typedef struct {
    char dir[64];
    char path[128];
    store_t *s;
    sqlite3 *db;
    char err[512];
} env_t;

static void env_open(env_t *e)
{
    int rc = store_open(e->path, &e->s);
    if (rc < 0) die("store_open: %s", store_errmsg(e->s));
    if (store_add_finish_hook(e->s, pool_finish_hook, NULL)) die("hook");
    if (pool_db_open(e->path, &e->db, e->err, sizeof e->err)) die("pool_db_open: %s", e->err);
}

static void env_close(env_t *e)
{
    sqlite3_close(e->db);
    store_close(e->s);
    e->db = NULL;
    e->s = NULL;
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    snprintf(e->dir, sizeof e->dir, "/tmp/estn-pool-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/station.db", e->dir);
    env_open(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    env_close(e);
    char p[256];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", e->path, sfx[i]);
        unlink(p);
    }
    rmdir(e->dir);
    free(e);
    return 0;
}

static void mac_of(unsigned n, char out[18])
{
    snprintf(out, 18, "24:0a:c4:%02x:%02x:%02x", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

static void job_begin(env_t *e, char uuid[STORE_UUID_LEN], const char *slot)
{
    assert_int_equal(store_new_uuid(uuid), 0);
    store_job_start_t st = {.uuid = uuid, .slot = slot, .port = "rfc2217://127.0.0.1:1"};
    if (store_job_begin(e->s, &st)) die("begin: %s", store_errmsg(e->s));
}

static void job_finish(env_t *e, const char *uuid, bool pass)
{
    job_report_t r;
    memset(&r, 0, sizeof r);
    r.result = pass ? JOB_RESULT_PASS : JOB_RESULT_FAIL;
    if (!pass) {
        r.error_class = EST_CLASS_MD5_MISMATCH;
        snprintf(r.message, sizeof r.message, "test failure");
    }
    if (store_job_finish(e->s, uuid, &r, NULL, NULL)) die("finish: %s", store_errmsg(e->s));
}

static const char CSV[] = "serial,batch\nSN-A1,7\nSN-A2,7\n# comment\nSN-A3,8\n";

static int count_cb(const pool_item_t *it, void *d)
{
    (void)it;
    (*(int *)d)++;
    return 0;
}

static int64_t n_items(env_t *e, const char *pool, const char *state)
{
    int n = 0;
    int rc = pool_items(e->db, pool, state, -1, 1000, count_cb, &n, e->err, sizeof e->err);
    if (rc < 0) fail_msg("pool_items: %s", e->err);
    return n;
}

static void test_import(void **state)
{
    env_t *e = *state;
    int64_t added = 0;
    assert_int_equal(
        pool_import_csv(e->db, "serials", CSV, strlen(CSV), 2, &added, e->err, sizeof e->err), 0);
    assert_int_equal(added, 3);
    assert_int_equal(n_items(e, "serials", "free"), 3);
    /* a duplicate label (here and in the pool) refuses the whole file */
    const char dup[] = "serial,batch\nSN-A9,1\nSN-A2,9\n";
    assert_int_equal(
        pool_import_csv(e->db, "serials", dup, strlen(dup), -1, &added, e->err, sizeof e->err),
        POOL_EINPUT);
    assert_non_null(strstr(e->err, "line 3"));
    assert_non_null(strstr(e->err, "SN-A2"));
    assert_int_equal(n_items(e, "serials", NULL), 3);
    const char other[] = "serial,lot\nSN-B1,1\n";
    assert_int_equal(
        pool_import_csv(e->db, "serials", other, strlen(other), -1, NULL, e->err, sizeof e->err),
        POOL_EINPUT);
    assert_non_null(strstr(e->err, "columns"));
    const char more[] = "serial,batch\r\nSN-A4,9\r\n";
    assert_int_equal(
        pool_import_csv(e->db, "serials", more, strlen(more), -1, &added, e->err, sizeof e->err),
        0);
    assert_int_equal(added, 1);
    const char ragged[] = "serial,batch\nSN-C1\n";
    assert_int_equal(
        pool_import_csv(e->db, "p2", ragged, strlen(ragged), -1, NULL, e->err, sizeof e->err),
        POOL_EINPUT);
    assert_int_equal(
        pool_import_csv(e->db, "bad name", CSV, strlen(CSV), -1, NULL, e->err, sizeof e->err),
        POOL_EINPUT);
    assert_int_equal(pool_import_csv(e->db, "p3", "", 0, -1, NULL, e->err, sizeof e->err),
                     POOL_EINPUT);
    assert_int_equal(pool_check(e->db, e->err, sizeof e->err), 0);
}

static void test_lifecycle(void **state)
{
    env_t *e = *state;
    assert_int_equal(
        pool_import_csv(e->db, "serials", CSV, strlen(CSV), 2, NULL, e->err, sizeof e->err), 0);
    char j1[37], j2[37], j3[37], m1[18], m2[18];
    mac_of(1, m1);
    mac_of(2, m2);
    pool_item_t it, it2;
    /* failure before writing: released */
    job_begin(e, j1, "A1");
    assert_int_equal(pool_reserve(e->db, "serials", "A1", j1, m1, POOL_SAME_IDENTITY, &it, e->err,
                                  sizeof e->err),
                     0);
    assert_string_equal(it.label, "SN-A1");
    assert_string_equal(it.state, "reserved");
    assert_non_null(strstr(it.value, "\"batch\":\"7\""));
    job_finish(e, j1, false);
    assert_int_equal(n_items(e, "serials", "free"), 3);
    /* failure after writing: bound to the MAC; the rework gets it again and consumes it */
    job_begin(e, j2, "A2");
    assert_int_equal(pool_reserve(e->db, "serials", "A2", j2, m2, POOL_SAME_IDENTITY, &it, e->err,
                                  sizeof e->err),
                     0);
    assert_string_equal(it.label, "SN-A1");
    assert_int_equal(pool_mark_written(e->db, j2, e->err, sizeof e->err), 1);
    job_finish(e, j2, false);
    assert_int_equal(n_items(e, "serials", "bound"), 1);
    job_begin(e, j3, "A3");
    assert_int_equal(pool_reserve(e->db, "serials", "A3", j3, m2, POOL_NEW_IDENTITY, &it2, e->err,
                                  sizeof e->err),
                     0);
    assert_string_equal(it2.label, "SN-A1"); /* written to that board: kept under any policy */
    assert_true(it2.reused);
    assert_int_equal(pool_check(e->db, e->err, sizeof e->err), 0);
    job_finish(e, j3, true);
    assert_int_equal(n_items(e, "serials", "consumed"), 1);
    assert_int_equal(pool_check(e->db, e->err, sizeof e->err), 0);
    /* consumed: same_identity gives it again, refuse names the job, new_identity a new one */
    char j4[37], j5[37], j6[37];
    job_begin(e, j4, "A4");
    assert_int_equal(pool_reserve(e->db, "serials", "A4", j4, m2, POOL_SAME_IDENTITY, &it, e->err,
                                  sizeof e->err),
                     0);
    assert_string_equal(it.label, "SN-A1");
    assert_true(it.reused);
    job_finish(e, j4, true);
    job_begin(e, j5, "A5");
    assert_int_equal(
        pool_reserve(e->db, "serials", "A5", j5, m2, POOL_REFUSE, &it, e->err, sizeof e->err),
        POOL_EREFUSED);
    assert_non_null(strstr(e->err, "already_provisioned"));
    assert_non_null(strstr(e->err, j3));
    job_finish(e, j5, false);
    job_begin(e, j6, "A6");
    assert_int_equal(
        pool_reserve(e->db, "serials", "A6", j6, m2, POOL_NEW_IDENTITY, &it, e->err, sizeof e->err),
        0);
    assert_string_equal(it.label, "SN-A2");
    job_finish(e, j6, true);
    assert_int_equal(n_items(e, "serials", "consumed"), 2);
    assert_int_equal(pool_check(e->db, e->err, sizeof e->err), 0);
    /* pool_job_items: what a job used */
    int n = 0;
    assert_int_equal(pool_job_items(e->db, j4, count_cb, &n, e->err, sizeof e->err), 1);
}

static void test_duplicate_mac_and_void(void **state)
{
    env_t *e = *state;
    assert_int_equal(
        pool_import_csv(e->db, "serials", CSV, strlen(CSV), 5, NULL, e->err, sizeof e->err), 0);
    char j1[37], j2[37], m[18];
    mac_of(7, m);
    pool_item_t it;
    job_begin(e, j1, "B1");
    job_begin(e, j2, "B2");
    assert_int_equal(
        pool_reserve(e->db, "serials", "B1", j1, m, POOL_SAME_IDENTITY, &it, e->err, sizeof e->err),
        0);
    /* the same MAC in another slot while the first job runs: flagged */
    assert_int_equal(
        pool_reserve(e->db, "serials", "B2", j2, m, POOL_SAME_IDENTITY, &it, e->err, sizeof e->err),
        POOL_EDUPLICATE);
    assert_non_null(strstr(e->err, "duplicate_mac"));
    assert_non_null(strstr(e->err, "B1"));
    /* void: not while reserved by a running job; never a consumed one; else the item is gone */
    assert_int_equal(pool_void(e->db, "serials", "SN-A1", "torn label", e->err, sizeof e->err),
                     POOL_ESTATE);
    assert_int_equal(pool_void(e->db, "serials", "SN-A2", "torn label", e->err, sizeof e->err), 0);
    assert_int_equal(pool_void(e->db, "serials", "SN-X", NULL, e->err, sizeof e->err), POOL_ENOENT);
    job_finish(e, j1, true);
    job_finish(e, j2, false);
    assert_int_equal(pool_void(e->db, "serials", "SN-A1", NULL, e->err, sizeof e->err),
                     POOL_ESTATE);
    char j3[37], m3[18];
    mac_of(8, m3);
    job_begin(e, j3, "B1");
    assert_int_equal(pool_reserve(e->db, "serials", "B1", j3, m3, POOL_SAME_IDENTITY, &it, e->err,
                                  sizeof e->err),
                     0);
    assert_string_equal(it.label, "SN-A3"); /* SN-A2 was voided */
    job_finish(e, j3, true);
    char j4[37], m4[18];
    mac_of(9, m4);
    job_begin(e, j4, "B1");
    assert_int_equal(pool_reserve(e->db, "serials", "B1", j4, m4, POOL_SAME_IDENTITY, &it, e->err,
                                  sizeof e->err),
                     POOL_EEMPTY);
    assert_non_null(strstr(e->err, "import more"));
    job_finish(e, j4, false);
}

static int low_cb(const pool_info_t *in, void *d)
{
    if (strcmp(in->name, "serials") == 0)
        *(pool_info_t *)d = (pool_info_t){.low = in->low,
                                          .n_free = in->n_free,
                                          .n_consumed = in->n_consumed,
                                          .n_void = in->n_void};
    return 0;
}

static void test_counter_and_list(void **state)
{
    env_t *e = *state;
    assert_int_equal(
        pool_create_counter(e->db, "sn", "SN-{year}-{n:06}", 1000, 10, e->err, sizeof e->err), 0);
    assert_int_equal(pool_create_counter(e->db, "sn", "SN-{n}", 1, 1, e->err, sizeof e->err),
                     POOL_EINPUT);
    assert_int_equal(pool_create_counter(e->db, "m", "X-{mac}-{n}", 1, 1, e->err, sizeof e->err),
                     POOL_EINPUT);
    assert_int_equal(pool_create_counter(e->db, "m", "X-{year}", 1, 1, e->err, sizeof e->err),
                     POOL_EINPUT);
    assert_int_equal(pool_create_counter(e->db, "m", "X-{n", 1, 1, e->err, sizeof e->err),
                     POOL_EINPUT);
    char j1[37], j2[37], j3[37], m1[18], m2[18], m3[18];
    mac_of(1, m1);
    mac_of(2, m2);
    mac_of(3, m3);
    pool_item_t a, b, c;
    job_begin(e, j1, "A1");
    job_begin(e, j2, "A2");
    assert_int_equal(pool_reserve(e->db, "sn", "A1", j1, m1, 0, &a, e->err, sizeof e->err), 0);
    assert_int_equal(pool_reserve(e->db, "sn", "A2", j2, m2, 0, &b, e->err, sizeof e->err), 0);
    char want[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(want, sizeof want, "SN-%04d-001000", tm.tm_year + 1900);
    assert_string_equal(a.label, want);
    want[strlen(want) - 2] = '1';
    assert_string_equal(b.label, want);
    job_finish(e, j1, false); /* released: the next board gets the lowest free number */
    job_begin(e, j3, "A1");
    assert_int_equal(pool_reserve(e->db, "sn", "A1", j3, m3, 0, &c, e->err, sizeof e->err), 0);
    assert_string_equal(c.label, a.label);
    job_finish(e, j2, true);
    job_finish(e, j3, true);
    assert_int_equal(pool_check(e->db, e->err, sizeof e->err), 0);
    /* the low-level warning of a values pool */
    assert_int_equal(
        pool_import_csv(e->db, "serials", CSV, strlen(CSV), 4, NULL, e->err, sizeof e->err), 0);
    pool_info_t in = {0};
    assert_int_equal(pool_list(e->db, low_cb, &in, e->err, sizeof e->err), 2);
    assert_true(in.low);
    assert_int_equal(in.n_free, 3);
}

/* ---- crash test ---- */

/* The child: boards 1..60 (MACs repeat, so reworks happen) through reserve, write, pass or fail,
 * forever until killed. */
static void child_run(const char *path, unsigned seed)
{
    env_t e = {0};
    in_child = true;
    snprintf(e.path, sizeof e.path, "%s", path);
    env_open(&e);
    srand(seed);
    for (;;) {
        char uuid[37], mac[18];
        mac_of(1 + (unsigned)rand() % 60, mac);
        job_begin(&e, uuid, "C1");
        pool_item_t it;
        pool_policy_t pol = (pool_policy_t)(rand() % 3);
        int r1 = pool_reserve(e.db, "sn", "C1", uuid, mac, pol, &it, e.err, sizeof e.err);
        int r2 = pool_reserve(e.db, "serials", "C1", uuid, mac, pol, &it, e.err, sizeof e.err);
        if (r1 < 0 && r1 != POOL_EREFUSED) _exit(3);
        if (r2 < 0 && r2 != POOL_EREFUSED && r2 != POOL_EEMPTY) _exit(4);
        if (rand() % 3 && pool_mark_written(e.db, uuid, e.err, sizeof e.err) < 0) _exit(5);
        job_finish(&e, uuid, rand() % 4 != 0);
    }
}

static void test_crash(void **state)
{
    env_t *e = *state;
    assert_int_equal(pool_create_counter(e->db, "sn", "SN-{n:06}", 1, 1, e->err, sizeof e->err), 0);
    char csv[16384] = "serial,secret\n";
    for (int i = 0; i < 400; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "P-%04d,%08x\n", i, i * 2654435761u);
    assert_int_equal(
        pool_import_csv(e->db, "serials", csv, strlen(csv), 10, NULL, e->err, sizeof e->err), 0);
    env_close(e);
    srand(42);
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) child_run(e->path, (unsigned)round + 1);
        struct timespec ts = {0, (long)(30 + rand() % 120) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st)) fail_msg("child ended by itself: status %d", WEXITSTATUS(st));
        env_open(e); /* marks the killed job interrupted */
        int rc = pool_recover(e->db, e->err, sizeof e->err);
        if (rc < 0) fail_msg("pool_recover: %s", e->err);
        if (pool_check(e->db, e->err, sizeof e->err)) fail_msg("round %d: %s", round, e->err);
        assert_int_equal(n_items(e, "serials", "reserved"), 0);
        assert_int_equal(n_items(e, "sn", "reserved"), 0);
        env_close(e);
    }
    env_open(e);
    assert_int_equal(store_check(e->s), 0);
    /* no MAC holds two consumed values of a pool unless new_identity gave it a second; no value
     * has two MACs (one row, one MAC); every pass with a use of a pool is recorded */
    int64_t consumed = n_items(e, "serials", "consumed") + n_items(e, "sn", "consumed");
    assert_true(consumed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_mac_and_void, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
