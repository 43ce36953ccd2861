/* SPDX-License-Identifier: MIT */
/* test_api.c — the HTTP API without sockets (api_handle_sync): routing, 404/405, the role matrix
 * (open and tokened reads, missing token file), limits, cursor paging with filters, CSV, job
 * details, devices, stats, metrics, the event stream's entry, recipes (confinement, storing,
 * slot choices that survive a restart), image uploads, static files that cannot escape the web
 * root, and the MAC/time parsers. Must not: open sockets or leave files behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "api.h"
#include "auth.h"

#define TOK_V "viewer-token-000000000001"
#define TOK_M "mes-token-000000000000002"
#define TOK_O "operator-token-0000000003"
#define TOK_E "engineer-token-0000000004"

typedef struct fx_s {
    char dir[64];
    char path[256];
    uv_loop_t loop;
    station_cfg_t cfg;
    store_t *store;
    jobmgr_t *mgr;
    auth_t *auth;
    api_t *api;
    char img_sha[65], recipe_hash[65];
} fx_t;

static void sha_hex(const void *d, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int ml = sizeof md;
    EVP_Digest(d, n, md, &ml, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static void fx_path(fx_t *f, const char *rel)
{
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir, rel);
}

/* Config, store, job manager (never run: nothing touches a port) and the API. */
static void fx_open(fx_t *f, bool read_token, bool with_tokens)
{
    char text[2048], err[512];
    api_opts_t o;
    int rc;
    snprintf(text, sizeof text,
             "{\"id\":\"t1\",\"name\":\"Test \\\"station\\\"\",\"database\":\"db.sqlite\","
             "\"recipe\":\"images/r.json\",\"image_dir\":\"images\"%s%s,"
             "\"slots\":[{\"name\":\"A1\",\"port\":\"socket://127.0.0.1:9\"},"
             "{\"name\":\"A2\",\"port\":\"socket://127.0.0.1:10\",\"recipe\":\"missing.json\"}]}",
             with_tokens ? ",\"token_file\":\"tokens\"" : "",
             read_token ? ",\"http\":{\"read_access\":\"token\",\"max_body_bytes\":4096,"
                          "\"max_header_bytes\":2048}"
                        : ",\"http\":{\"max_body_bytes\":4096,\"max_header_bytes\":2048}");
    assert_int_equal(config_parse(text, strlen(text), f->dir, &f->cfg, err, sizeof err), 0);
    assert_true(store_open(f->cfg.database, &f->store) >= 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(jobmgr_new(&f->loop, &f->cfg, f->store, NULL, NULL, &f->mgr), 0);
    f->auth = NULL;
    if (with_tokens) {
        const char *t = "viewer " TOK_V "\nmes " TOK_M "\noperator " TOK_O "\nengineer " TOK_E "\n";
        assert_int_equal(auth_parse(t, strlen(t), "tokens", &f->auth, err, sizeof err), 0);
    }
    memset(&o, 0, sizeof o);
    o.loop = &f->loop;
    o.cfg = &f->cfg;
    o.store = f->store;
    o.mgr = f->mgr;
    o.auth = f->auth;
    fx_path(f, "web");
    o.web_root = f->path;
    o.boot_id = "0badf00d";
    rc = api_new(&o, &f->api, err, sizeof err);
    if (rc != 0) fail_msg("api_new: %s", err);
}

static void fx_done_cb(jobmgr_t *m)
{
    (void)m;
}

static void fx_close(fx_t *f)
{
    api_free(f->api);
    jobmgr_shutdown(f->mgr, fx_done_cb);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    jobmgr_free(f->mgr);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    store_close(f->store);
    auth_free(f->auth);
    config_free(&f->cfg);
}

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    static unsigned char img[8192];
    char json[1024];
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/estn-api-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fx_path(f, "images");
    assert_int_equal(mkdir(f->path, 0755), 0);
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (unsigned char)(i * 7 + 3);
    fx_path(f, "images/app.bin");
    write_file(f->path, img, sizeof img);
    sha_hex(img, sizeof img, f->img_sha);
    snprintf(json, sizeof json,
             "{\"name\":\"unit\",\"version\":\"1.0\",\"chip\":\"esp32\",\"images\":[{\"offset\":"
             "\"0x10000\",\"file\":\"app.bin\",\"sha256\":\"%s\"}]}",
             f->img_sha);
    fx_path(f, "images/r.json");
    write_file(f->path, json, strlen(json));
    sha_hex(json, strlen(json), f->recipe_hash);
    fx_path(f, "web");
    assert_int_equal(mkdir(f->path, 0755), 0);
    fx_path(f, "web/index.html");
    write_file(f->path, "<h1>station</h1>", 16);
    fx_path(f, "web/app.js");
    write_file(f->path, "let x = 1;", 10);
    fx_path(f, "secret.txt");
    write_file(f->path, "secret", 6);
    fx_path(f, "web/leak.txt");
    assert_int_equal(symlink("../secret.txt", f->path), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- requests ---- */

typedef struct hdrs_s {
    const char *token;
    const char *ctype;
    const char *last_id;
    size_t header_bytes;
} hdrs_t;

static void req(fx_t *f, const char *method, const char *target, const hdrs_t *h, const char *body,
                size_t blen, api_resp_t *r)
{
    api_req_t q;
    char auth[300];
    memset(&q, 0, sizeof q);
    q.method = method;
    q.method_len = strlen(method);
    q.target = target;
    q.target_len = strlen(target);
    if (h && h->token) {
        snprintf(auth, sizeof auth, "Bearer %s", h->token);
        q.authorization = auth;
        q.authorization_len = strlen(auth);
    }
    if (h && h->ctype) {
        q.content_type = h->ctype;
        q.content_type_len = strlen(h->ctype);
    }
    if (h && h->last_id) {
        q.last_event_id = h->last_id;
        q.last_event_id_len = strlen(h->last_id);
    }
    if (h) q.header_bytes = h->header_bytes;
    q.body = body;
    q.body_len = blen;
    api_handle_sync(f->api, &q, r);
}

static cJSON *get_json(fx_t *f, const char *target, const char *token, int status)
{
    api_resp_t r;
    hdrs_t h = {.token = token};
    cJSON *j;
    req(f, "GET", target, &h, NULL, 0, &r);
    if (r.status != status)
        fail_msg("GET %s: status %d, expected %d: %.*s", target, r.status, status, (int)r.body_len,
                 r.body ? r.body : "");
    j = cJSON_ParseWithLength(r.body, r.body_len);
    assert_non_null(j);
    api_resp_free(&r);
    return j;
}

static int status_of(fx_t *f, const char *method, const char *target, const char *token)
{
    api_resp_t r;
    hdrs_t h = {.token = token, .ctype = "application/json"};
    int s;
    req(f, method, target, &h, "{}", 2, &r);
    s = r.status;
    api_resp_free(&r);
    return s;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("%s is not a number", k);
    return v->valuedouble;
}

/* ---- jobs in the store ---- */

static void add_job(fx_t *f, const char *uuid, const char *slot, job_result_t res, uint8_t mac,
                    const char *msg)
{
    store_job_start_t st = {.uuid = uuid,
                            .slot = slot,
                            .port = "socket://x",
                            .attempt = 1,
                            .recipe_hash = f->recipe_hash};
    job_report_t r;
    memset(&r, 0, sizeof r);
    r.result = res;
    r.chip = chip_get(CHIP_ESP32);
    r.chip_rev = 300;
    r.have_mac = true;
    memcpy(r.mac, (const uint8_t[6]){0x24, 0x0a, 0xc4, 0x00, 0x00, mac}, 6);
    r.have_flash_id = true;
    r.flash_id = 0xc84016;
    r.flash_size = 4u << 20;
    r.started_ms = 100;
    r.finished_ms = 100 + 1000u * mac;
    r.state_ms[JOB_ST_SYNC] = 50;
    r.n_images = 1;
    r.images[0].offset = 0x10000;
    r.images[0].size = 8192;
    r.images[0].compressed_size = 4000;
    r.images[0].verified = true;
    if (res == JOB_RESULT_FAIL) {
        r.error_class = EST_CLASS_NO_SYNC;
        r.failed_state = JOB_ST_SYNC;
    }
    snprintf(r.message, sizeof r.message, "%s", msg);
    assert_int_equal(store_job_begin(f->store, &st), 0);
    assert_int_equal(store_job_event(f->store, uuid, 0, "state", "open", NULL), 0);
    assert_int_equal(store_job_finish(f->store, uuid, &r, NULL, NULL), 0);
}

static const char *const U[5] = {
    "b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002",
    "b0000000-0000-4000-8000-000000000003", "b0000000-0000-4000-8000-000000000004",
    "b0000000-0000-4000-8000-000000000005"};

/* ---- tests ---- */

static void test_station_slots_and_routing(void **state)
{
    fx_t *f = *state;
    cJSON *j, *s;
    api_resp_t r;
    fx_open(f, false, true);
    j = get_json(f, "/api/v1/station", NULL, 200);
    assert_string_equal(jstr(j, "id"), "t1");
    assert_string_equal(jstr(j, "name"), "Test \"station\"");
    assert_string_equal(jstr(j, "boot_id"), "0badf00d");
    assert_string_equal(jstr(j, "read_access"), "open");
    s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "slots"), 0);
    assert_string_equal(jstr(cJSON_GetObjectItem(s, "recipe"), "hash"), f->recipe_hash);
    s = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "slots"), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "recipe")));
    cJSON_Delete(j);

    j = get_json(f, "/api/v1/slots/A2", NULL, 200);
    assert_string_equal(jstr(j, "state"), "idle");
    assert_non_null(strstr(jstr(j, "recipe_error"), "missing.json"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "stage")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "last")));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "actions"), "start")));
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/slots", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "slots")), 2);
    cJSON_Delete(j);
    cJSON_Delete(get_json(f, "/api/v1/slots/%41%31", NULL, 200)); /* percent-decoded */
    cJSON_Delete(get_json(f, "/api/v1/slots/B9", NULL, 404));
    cJSON_Delete(get_json(f, "/api/v1/nothing", NULL, 404));
    cJSON_Delete(get_json(f, "/api/v1/slots/A1/start", NULL, 405));
    req(f, "DELETE", "/api/v1/recipes", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, POST");
    assert_string_equal(r.content_type, "application/problem+json");
    api_resp_free(&r);
    req(f, "GET", "/api/v1/slots/%zz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    api_resp_free(&r);
    req(f, "GET", "/api/v1/slots/A%00", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    api_resp_free(&r);
    /* a problem has every documented member */
    j = get_json(f, "/api/v1/slots/B9", NULL, 404);
    assert_string_equal(jstr(j, "type"), "https://espstation.dev/problems/not_found");
    assert_string_equal(jstr(j, "title"), "Not Found");
    assert_int_equal((int)jnum(j, "status"), 404);
    assert_non_null(jstr(j, "detail"));
    assert_string_equal(jstr(j, "code"), "not_found");
    cJSON_Delete(j);
    fx_close(f);
}

static void test_role_matrix(void **state)
{
    fx_t *f = *state;
    api_resp_t r;
    static const char *const toks[] = {NULL, "not-a-known-token-at-all", TOK_V, TOK_M, TOK_O,
                                       TOK_E};
    /* expected status per token (index as toks) */
    static const struct {
        const char *method, *target;
        int want[6];
    } m[] = {
        {"GET", "/api/v1/station", {200, 200, 200, 200, 200, 200}},
        {"GET", "/metrics", {200, 200, 200, 200, 200, 200}},
        {"GET", "/api/v1/jobs.csv", {401, 401, 403, 200, 200, 200}},
        {"POST", "/api/v1/slots/A2/start", {401, 401, 403, 403, 409, 409}},
        {"POST", "/api/v1/slots/A1/cancel", {401, 401, 403, 403, 409, 409}},
        {"PUT", "/api/v1/slots/A1/recipe", {401, 401, 403, 403, 403, 400}},
        {"POST", "/api/v1/recipes", {401, 401, 403, 403, 403, 422}},
    };
    fx_open(f, false, true);
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        for (size_t t = 0; t < 6; t++) {
            int s = status_of(f, m[i].method, m[i].target, toks[t]);
            if (s != m[i].want[t])
                fail_msg("%s %s with token %zu: %d, expected %d", m[i].method, m[i].target, t, s,
                         m[i].want[t]);
        }
    req(f, "POST", "/api/v1/slots/A1/start", NULL, NULL, 0, &r);
    assert_true(r.www_authenticate);
    api_resp_free(&r);
    fx_close(f);

    /* tokened reads: every GET needs a token; the dashboard files do not */
    fx_open(f, true, true);
    assert_int_equal(status_of(f, "GET", "/api/v1/station", NULL), 401);
    assert_int_equal(status_of(f, "GET", "/api/v1/events", NULL), 401);
    assert_int_equal(status_of(f, "GET", "/metrics", "not-a-known-token-at-all"), 401);
    assert_int_equal(status_of(f, "GET", "/api/v1/station", TOK_V), 200);
    assert_int_equal(status_of(f, "GET", "/", NULL), 200);
    assert_int_equal(status_of(f, "GET", "/app.js", NULL), 200);
    fx_close(f);

    /* no token file: reads open, writes impossible (403 naming token_file) */
    fx_open(f, false, false);
    req(f, "POST", "/api/v1/slots/A1/start", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "token_file"));
    api_resp_free(&r);
    assert_int_equal(status_of(f, "GET", "/api/v1/jobs.csv", TOK_E), 403);
    assert_int_equal(status_of(f, "GET", "/api/v1/jobs", NULL), 200);
    fx_close(f);
}

static void test_limits(void **state)
{
    fx_t *f = *state;
    api_resp_t r;
    hdrs_t h = {.token = TOK_E, .ctype = "application/json", .header_bytes = 4096};
    static char big[5000];
    fx_open(f, false, true);
    req(f, "GET", "/api/v1/station", &h, NULL, 0, &r);
    assert_int_equal(r.status, 431);
    assert_non_null(strstr(r.body, "header_too_large"));
    api_resp_free(&r);
    h.header_bytes = 100;
    memset(big, ' ', sizeof big);
    req(f, "POST", "/api/v1/recipes", &h, big, sizeof big, &r);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "max_body_bytes"));
    api_resp_free(&r);
    /* the upload limit is separate (128 MiB by default) */
    h.ctype = "application/octet-stream";
    req(f, "PUT",
        "/api/v1/images/x.bin?sha256="
        "0000000000000000000000000000000000000000000000000000000000000000",
        &h, big, sizeof big, &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "checksum_mismatch"));
    api_resp_free(&r);
    fx_close(f);
}

static void test_jobs_paging_filters_csv(void **state)
{
    fx_t *f = *state;
    cJSON *j, *jobs, *x;
    api_resp_t r;
    hdrs_t h = {.token = TOK_M};
    char *p;
    fx_path(f, "db.sqlite"); /* the store is created by fx_open; jobs go in before the api starts */
    fx_open(f, false, true);
    add_job(f, U[0], "A1", JOB_RESULT_PASS, 1, "");
    add_job(f, U[1], "A2", JOB_RESULT_FAIL, 2, "no answer, \"quoted\"\nsecond line");
    add_job(f, U[2], "A1", JOB_RESULT_PASS, 3, "");
    add_job(f, U[3], "A1", JOB_RESULT_CANCELLED, 1, "cancelled");

    j = get_json(f, "/api/v1/jobs?limit=2", NULL, 200);
    jobs = cJSON_GetObjectItem(j, "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 2);
    assert_int_equal((int)jnum(j, "next_after"), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "has_more")));
    x = cJSON_GetArrayItem(jobs, 1);
    assert_string_equal(jstr(x, "result"), "fail");
    assert_string_equal(jstr(x, "error_class"), "no_sync");
    assert_non_null(jstr(x, "hint"));
    assert_string_equal(jstr(x, "recipe_name"), "unit");
    assert_string_equal(jstr(x, "mac"), "24:0a:c4:00:00:02");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(x, "final")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "hint")));
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/jobs?after=2&limit=2", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 2);
    assert_int_equal((int)jnum(j, "next_after"), 4);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "has_more")));
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/jobs?after=4", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 0);
    assert_int_equal((int)jnum(j, "next_after"), 4); /* nothing new: the cursor stays */
    cJSON_Delete(j);
    /* a parameter the endpoint does not take is refused, not ignored (docs/API.md) */
    j = get_json(f, "/api/v1/jobs?result=pass&slot=A1&mac=240AC4000003&unknown=1", NULL, 400);
    assert_non_null(strstr(jstr(j, "detail"), "'unknown'"));
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/jobs?result=pass&slot=A1&mac=240AC4000003", NULL, 200);
    jobs = cJSON_GetObjectItem(j, "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jobs, 0), "uuid"), U[2]);
    assert_int_equal((int)jnum(j, "next_after"), 3);
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/jobs?since=2000-01-01", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 4);
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/jobs?since=2999-01-01T00:00:00%2B02:00", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 0);
    cJSON_Delete(j);
    static const char *const bad[] = {"limit=0",         "limit=1001",      "limit=abc",
                                      "after=-1",        "result=ok",       "mac=24:0a",
                                      "since=yesterday", "since=2026-02-30"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[128];
        snprintf(t, sizeof t, "/api/v1/jobs?%s", bad[i]);
        cJSON_Delete(get_json(f, t, NULL, 400));
    }

    req(f, "GET", "/api/v1/jobs.csv?limit=3", &h, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/csv; charset=utf-8");
    assert_non_null(r.body);
    assert_memory_equal(r.body, "seq,uuid,slot,port,recipe_hash,", 31);
    assert_non_null(strstr(r.body, ",\"no answer, \"\"quoted\"\"\nsecond line\","));
    int lines = 0;
    for (p = r.body; (p = strstr(p, "\r\n")) != NULL; p += 2)
        lines++;
    assert_int_equal(lines, 4); /* header + 3 */
    api_resp_free(&r);
    req(f, "GET", "/api/v1/jobs.csv?limit=100001", &h, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    api_resp_free(&r);

    /* one job; a board's jobs in any MAC spelling */
    j = get_json(f, "/api/v1/jobs/b0000000-0000-4000-8000-000000000002", NULL, 200);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "state_ms"), "sync"), 50);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "images")), 1);
    x = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "events"), 0);
    assert_string_equal(jstr(x, "kind"), "state");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(x, "detail")));
    cJSON_Delete(j);
    cJSON_Delete(get_json(f, "/api/v1/jobs/b0000000-0000-4000-8000-000000000009", NULL, 404));
    cJSON_Delete(get_json(f, "/api/v1/jobs/nope", NULL, 404));
    j = get_json(f, "/api/v1/devices/24-0A-C4-00-00-01", NULL, 200);
    assert_string_equal(jstr(j, "mac"), "24:0a:c4:00:00:01");
    jobs = cJSON_GetObjectItem(j, "jobs");
    assert_int_equal(cJSON_GetArraySize(jobs), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(jobs, 0), "uuid"), U[0]); /* oldest first */
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/devices/ffffffffffff", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 0);
    cJSON_Delete(j);
    cJSON_Delete(get_json(f, "/api/v1/devices/24:0a:c4:00:00", NULL, 400));
    cJSON_Delete(get_json(f, "/api/v1/devices/24:0a-c4:00:00:01", NULL, 400));
    fx_close(f);
}

static void test_stats_metrics_counters(void **state)
{
    fx_t *f = *state;
    cJSON *j, *st, *sl;
    api_resp_t r;
    fx_open(f, false, true);
    add_job(f, U[0], "A1", JOB_RESULT_PASS, 1, "");
    add_job(f, U[1], "A1", JOB_RESULT_PASS, 2, "");
    add_job(f, U[2], "A2", JOB_RESULT_FAIL, 3, "x");
    add_job(f, U[3], "A1", JOB_RESULT_PASS, 4, "");
    api_free(f->api); /* a restart: counters come from the database */
    {
        api_opts_t o;
        char err[256];
        memset(&o, 0, sizeof o);
        o.loop = &f->loop;
        o.cfg = &f->cfg;
        o.store = f->store;
        o.mgr = f->mgr;
        o.auth = f->auth;
        assert_int_equal(api_new(&o, &f->api, err, sizeof err), 0);
    }
    j = get_json(f, "/api/v1/station", NULL, 200);
    st = cJSON_GetObjectItem(j, "counters");
    assert_int_equal((int)jnum(st, "jobs_total"), 4);
    assert_int_equal((int)jnum(st, "pass"), 3);
    assert_int_equal((int)jnum(st, "fail"), 1);
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/slots/A1", NULL, 200);
    assert_string_equal(jstr(cJSON_GetObjectItem(j, "last"), "job_uuid"), U[3]);
    assert_string_equal(jstr(j, "mac"), "24:0a:c4:00:00:04"); /* of the last job */
    cJSON_Delete(j);

    j = get_json(f, "/api/v1/stats?since=2000-01-01T00:00Z", NULL, 200);
    st = cJSON_GetObjectItem(j, "station");
    assert_int_equal((int)jnum(st, "pass"), 3);
    assert_int_equal((int)jnum(st, "fail"), 1);
    assert_true(jnum(st, "yield") > 0.74 && jnum(st, "yield") < 0.76);
    /* durations 1000, 2000, 4000 ms: mean 2333, p95 = the largest */
    assert_int_equal((int)jnum(cJSON_GetObjectItem(st, "duration_ms"), "mean"), 2333);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(st, "duration_ms"), "p95"), 4000);
    assert_true(jnum(st, "devices_per_hour") >= 0);
    sl = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "slots"), 1);
    assert_string_equal(jstr(sl, "name"), "A2");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(sl, "duration_ms"), "mean")));
    assert_int_equal((int)jnum(sl, "yield"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(sl, "devices_per_hour"))); /* none passed */
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "failures_by_class"), "no_sync"), 1);
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/stats?since=2999-01-01&until=2999-01-02", NULL, 200);
    st = cJSON_GetObjectItem(j, "station");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(st, "yield")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(st, "devices_per_hour")));
    assert_string_equal(jstr(j, "since"), "2999-01-01T00:00:00.000Z");
    cJSON_Delete(j);
    cJSON_Delete(get_json(f, "/api/v1/stats?since=2999-01-02&until=2999-01-01", NULL, 400));

    req(f, "GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "espstation_jobs_total{slot=\"A1\",result=\"pass\"} 3\n"));
    assert_non_null(strstr(r.body, "espstation_slot_state{slot=\"A2\",state=\"idle\"} 1\n"));
    assert_non_null(strstr(r.body, "espstation_job_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(r.body, "espstation_build_info{version=\"" ESTN_VERSION "\"} 1\n"));
    assert_non_null(strstr(r.body, "# TYPE espstation_uptime_seconds gauge\n"));
    api_resp_free(&r);
    fx_close(f);
}

/* The client's pending bytes as a string. */
static char *take_str(events_client_t *c)
{
    size_t n;
    char *b = events_client_take(c, &n), *s = calloc(1, n + 1);
    assert_non_null(s);
    if (n) memcpy(s, b, n);
    free(b);
    return s;
}

static void test_events_entry(void **state)
{
    fx_t *f = *state;
    api_resp_t r;
    hdrs_t h = {.last_id = "0badf00d:0"};
    char *b;
    fx_open(f, false, true);
    req(f, "GET", "/api/v1/events", &h, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/event-stream; charset=utf-8");
    assert_non_null(r.events);
    b = take_str(r.events);
    assert_non_null(strstr(b, "event: hello\n"));
    assert_null(strstr(b, "event: reset\n"));
    assert_non_null(strstr(b, "\"station\":{\"id\":\"t1\""));
    free(b);
    api_resp_free(&r); /* detaches the client */
    req(f, "GET", "/api/v1/events?last_event_id=11111111:5", NULL, NULL, 0, &r);
    b = take_str(r.events);
    assert_non_null(strstr(b, "event: reset\n"));
    free(b);
    api_resp_free(&r);
    req(f, "GET", "/api/v1/events?last_event_id=bogus", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    assert_null(r.events);
    api_resp_free(&r);
    assert_int_equal(events_client_count(api_events(f->api)), 0);
    fx_close(f);
}

static void test_recipes_images_and_choices(void **state)
{
    fx_t *f = *state;
    api_resp_t r;
    hdrs_t h = {.token = TOK_E, .ctype = "application/json"};
    char body[1024], t[256], other_hash[65];
    cJSON *j;
    fx_open(f, false, true);

    /* upload an image, then a recipe using it */
    static const char img[] = "second image bytes";
    char sha[65];
    sha_hex(img, sizeof img - 1, sha);
    hdrs_t ho = {.token = TOK_E, .ctype = "application/octet-stream"};
    snprintf(t, sizeof t, "/api/v1/images/b.bin?sha256=%s", sha);
    req(f, "PUT", t, &ho, img, sizeof img - 1, &r);
    assert_int_equal(r.status, 201);
    api_resp_free(&r);
    req(f, "PUT", t, &ho, img, sizeof img - 1, &r);
    assert_int_equal(r.status, 200); /* identical */
    api_resp_free(&r);
    req(f, "PUT", t, &ho, "different", 9, &r);
    assert_int_equal(r.status, 422); /* checksum first */
    api_resp_free(&r);
    {
        char sha2[65];
        sha_hex("different", 9, sha2);
        snprintf(t, sizeof t, "/api/v1/images/b.bin?sha256=%s", sha2);
        req(f, "PUT", t, &ho, "different", 9, &r);
        assert_int_equal(r.status, 409);
        api_resp_free(&r);
        snprintf(t, sizeof t, "/api/v1/images/.hidden?sha256=%s", sha2);
        req(f, "PUT", t, &ho, "different", 9, &r);
        assert_int_equal(r.status, 400);
        api_resp_free(&r);
        req(f, "PUT", "/api/v1/images/c.bin", &ho, "different", 9, &r);
        assert_int_equal(r.status, 400); /* sha256 missing */
        api_resp_free(&r);
        hdrs_t hj = {.token = TOK_E, .ctype = "text/plain"};
        snprintf(t, sizeof t, "/api/v1/images/c.bin?sha256=%s", sha2);
        req(f, "PUT", t, &hj, "different", 9, &r);
        assert_int_equal(r.status, 415);
        api_resp_free(&r);
    }
    j = get_json(f, "/api/v1/images", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "images")), 3); /* app, b, r.json */
    assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 1), "sha256"),
                        sha);
    cJSON_Delete(j);

    snprintf(body, sizeof body,
             "{\"name\":\"posted\",\"version\":\"2\",\"chip\":\"esp32\",\"images\":[{\"offset\":"
             "\"0x1000\",\"file\":\"b.bin\",\"sha256\":\"%s\"}]}",
             sha);
    sha_hex(body, strlen(body), other_hash);
    req(f, "POST", "/api/v1/recipes", &h, body, strlen(body), &r);
    assert_int_equal(r.status, 201);
    j = cJSON_Parse(r.body);
    assert_string_equal(jstr(j, "hash"), other_hash);
    cJSON_Delete(j);
    api_resp_free(&r);
    req(f, "POST", "/api/v1/recipes", &h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    api_resp_free(&r);

    /* confinement: absolute, "..", a symlink leading out, a stub path */
    static const char *const bad[] = {"/etc/passwd", "../secret.txt", "sub/../../secret.txt",
                                      "leak"};
    fx_path(f, "images/leak");
    assert_int_equal(symlink("../secret.txt", f->path), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"bad\",\"version\":\"1\",\"chip\":\"esp32\",\"images\":[{\"offset\":"
                 "\"0x1000\",\"file\":\"%s\",\"sha256\":\"%s\"}]}",
                 bad[i], sha);
        req(f, "POST", "/api/v1/recipes", &h, body, strlen(body), &r);
        if (r.status != 422 || !strstr(r.body, "\"path\":\"$.images[0].file\""))
            fail_msg("%s: %d %s", bad[i], r.status, r.body);
        api_resp_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"name\":\"bad\",\"version\":\"1\",\"chip\":\"esp32\",\"stub\":\"../secret.txt\","
             "\"images\":[{\"offset\":\"0x1000\",\"file\":\"b.bin\",\"sha256\":\"%s\"}]}",
             sha);
    req(f, "POST", "/api/v1/recipes", &h, body, strlen(body), &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "$.stub"));
    api_resp_free(&r);
    /* a missing image and a bad field: 422 with the class as code */
    req(f, "POST", "/api/v1/recipes", &h,
        "{\"name\":\"m\",\"version\":\"1\",\"chip\":\"esp32\",\"images\":[{\"offset\":\"0x1000\","
        "\"file\":\"none.bin\",\"sha256\":\""
        "00000000000000000000000000000000000000000000000000"
        "00000000000000\"}]}",
        strlen("{\"name\":\"m\",\"version\":\"1\",\"chip\":\"esp32\",\"images\":[{\"offset\":"
               "\"0x1000\","
               "\"file\":\"none.bin\",\"sha256\":\""
               "00000000000000000000000000000000000000000000"
               "00000000000000000000\"}]}"),
        &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "\"code\":\"image_missing\""));
    api_resp_free(&r);
    req(f, "POST", "/api/v1/recipes", &h, "{\"name\":1}", 10, &r);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "\"errors\":[{\"path\":\"$"));
    api_resp_free(&r);
    req(f, "POST", "/api/v1/recipes", &(hdrs_t){.token = TOK_E, .ctype = "text/plain"}, "{}", 2,
        &r);
    assert_int_equal(r.status, 415);
    api_resp_free(&r);

    /* the slot choice: stored, shown, survives a restart of the API; null goes back */
    snprintf(body, sizeof body, "{\"hash\":\"%s\"}", other_hash);
    req(f, "PUT", "/api/v1/slots/A2/recipe", &h, body, strlen(body), &r);
    if (r.status != 200) fail_msg("PUT recipe: %d %s", r.status, r.body);
    assert_non_null(strstr(r.body, "\"recipe\":{\"name\":\"posted\""));
    api_resp_free(&r);
    req(f, "PUT", "/api/v1/slots/A2/recipe", &h, "{\"hash\":\"abc\"}", 14, &r);
    assert_int_equal(r.status, 400);
    api_resp_free(&r);
    snprintf(body, sizeof body, "{\"hash\":\"%064d\"}", 0);
    req(f, "PUT", "/api/v1/slots/A2/recipe", &h, body, strlen(body), &r);
    assert_int_equal(r.status, 404);
    api_resp_free(&r);
    snprintf(body, sizeof body, "{\"hash\":\"%s\"}", f->recipe_hash); /* the config's, loaded */
    req(f, "PUT", "/api/v1/slots/A1/recipe", &h, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    api_resp_free(&r);
    snprintf(t, sizeof t, "/api/v1/recipes/%s", other_hash);
    j = get_json(f, t, NULL, 200);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "slots"), 0)->valuestring, "A2");
    assert_string_equal(jstr(cJSON_GetObjectItem(j, "recipe"), "name"), "posted");
    cJSON_Delete(j);
    j = get_json(f, "/api/v1/recipes", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recipes")), 2);
    cJSON_Delete(j);
    cJSON_Delete(get_json(f, "/api/v1/recipes/0000", NULL, 404));
    fx_close(f);

    fx_open(f, false, true); /* a restart: the choice is applied again */
    j = get_json(f, "/api/v1/slots/A2", NULL, 200);
    assert_string_equal(jstr(cJSON_GetObjectItem(j, "recipe"), "hash"), other_hash);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "recipe_error")));
    cJSON_Delete(j);
    req(f, "PUT", "/api/v1/slots/A2/recipe", &h, "{\"hash\":null}", 13, &r);
    assert_int_equal(r.status, 422); /* back to its configured recipe, which does not load */
    api_resp_free(&r);
    j = get_json(f, "/api/v1/slots/A2", NULL, 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "recipe")));
    cJSON_Delete(j);
    fx_close(f);
}

static void test_static_files(void **state)
{
    fx_t *f = *state;
    api_resp_t r;
    fx_open(f, false, true);
    req(f, "GET", "/", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    assert_string_equal(r.cache_control, "no-cache");
    assert_int_equal(r.body_len, 16);
    api_resp_free(&r);
    req(f, "GET", "/app.js?v=3", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/javascript; charset=utf-8");
    api_resp_free(&r);
    static const char *const escape[] = {
        "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/leak.txt",
        "/nope.html",     "/./index.html",      "/a/../../secret.txt"};
    for (size_t i = 0; i < sizeof escape / sizeof escape[0]; i++) {
        req(f, "GET", escape[i], NULL, NULL, 0, &r);
        if (r.status != 404) fail_msg("GET %s: %d", escape[i], r.status);
        api_resp_free(&r);
    }
    req(f, "POST", "/index.html", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    api_resp_free(&r);
    fx_close(f);
}

static void test_parsers(void **state)
{
    char mac[18];
    uint64_t ms;
    (void)state;
    assert_true(api_parse_mac("240AC4123456", 12, mac));
    assert_string_equal(mac, "24:0a:c4:12:34:56");
    assert_true(api_parse_mac("24-0a-c4-12-34-56", 17, mac));
    assert_false(api_parse_mac("24:0a-c4:12:34:56", 17, mac));
    assert_false(api_parse_mac("240AC412345G", 12, mac));
    assert_false(api_parse_mac("240AC41234", 10, mac));
    assert_true(api_parse_time("2024-05-01T12:34:56.789Z", 24, &ms));
    assert_int_equal(ms, 1714566896789ull);
    assert_true(api_parse_time("2024-05-01T14:34:56.789+02:00", 29, &ms));
    assert_int_equal(ms, 1714566896789ull);
    assert_true(api_parse_time("2024-05-01", 10, &ms));
    assert_int_equal(ms, 1714521600000ull);
    assert_true(api_parse_time("2024-05-01T12:34Z", 17, &ms));
    assert_false(api_parse_time("2024-13-01", 10, &ms));
    assert_false(api_parse_time("2024-02-30", 10, &ms));
    assert_false(api_parse_time("2024-05-01T12:34:56.Z", 21, &ms));
    assert_false(api_parse_time("2024-05-01T25:00Z", 17, &ms));
    assert_false(api_parse_time("1969-12-31", 10, &ms));
    assert_false(api_parse_time("2024-05-01 extra", 16, &ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_station_slots_and_routing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_role_matrix, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_paging_filters_csv, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stats_metrics_counters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_events_entry, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_recipes_images_and_choices, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_static_files, fx_setup, fx_teardown),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
