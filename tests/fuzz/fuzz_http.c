/* SPDX-License-Identifier: MIT */
/* fuzz_http.c — fuzz target for HTTP request handling without sockets (api_handle_sync in
 * daemon/api/api*.c, docs/API.md). Input: a raw HTTP/1.1 request, answered by an API over a scratch
 * station; checks below. Must not: write outside the scratch directory, or connect anywhere but
 * the slots' loopback ports (127.0.0.1:9 and :10, where nothing listens). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "api.h"
#include "auth.h"
#include "chip.h"
#include "config.h"
#include "fuzz.h"
#include "image.h"
#include "jobmgr.h"
#include "store.h"

/* The request is split the way the HTTP layer hands it to the API (method, target,
 * Authorization, Content-Type, Last-Event-ID, body, header size), each field in a buffer of its
 * own exact size. The station: two slots, a token file of four roles, an image directory and a
 * web root each holding a symlink to a secret file outside them, three finished jobs; the job
 * manager's callbacks feed the API's live events as in espstation serve. Checks: a
 * sane status; JSON and problem+json bodies parse and agree with the status; 401/405 carry
 * their headers; no body holds the secret (unless the request itself did); no recipe naming
 * the secret through the symlink is accepted; no log line holds a token. Files written to the
 * image directory are removed after each input. */

/* The seeds in corpus/http/ use these tokens and names. */
static const char *const tokens[] = {"viewer-token-000000000001", "mes-token-000000000000002",
                                     "operator-token-0000000003", "engineer-token-0000000004"};
#define SECRET "ESTN-FUZZ-SECRET-3b9e1c"
/* images/ and web/ hold these files; anything else in images/ was written by a request */
static const char *const image_files[] = {"app.bin", "r.json", "leak.bin", NULL};

static struct {
    char dir[4096];
    char images[4200];
    char secret_sha[65];
    uv_loop_t loop;
    station_cfg_t cfg;
    store_t *store;
    jobmgr_t *mgr;
    auth_t *auth;
    api_t *api;
} F;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http: setup: %s\n", what);
    abort();
}

static void put(const char *rel, const void *data, size_t n)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", F.dir, rel);
    if (fuzz_write_file(p, data, n) != 0) die(p);
}

static void link_to(const char *target, const char *rel)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", F.dir, rel);
    if (symlink(target, p) != 0) die(p);
}

static void sha_hex(const void *d, size_t n, char out[65])
{
    uint8_t md[32];
    image_sha256(d, n, md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The log callback: a token must never reach a log line (docs/API.md). */
static void log_line(void *data, const char *line)
{
    (void)data;
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        FUZZ_CHECK(strstr(line, tokens[i]) == NULL);
}

/* The job manager's callbacks feed the API's live events, as espstation serve wires them. */
static void mgr_slot(jobmgr_t *m, size_t i, const slot_view_t *v)
{
    (void)m;
    if (F.api) api_on_slot(F.api, i, v);
}

static void mgr_progress(jobmgr_t *m, size_t i, const slot_view_t *v)
{
    (void)m;
    if (F.api) api_on_progress(F.api, i, v);
}

static void mgr_result(jobmgr_t *m, size_t i, const char *uuid, int64_t seq, const job_report_t *r)
{
    (void)m;
    if (F.api) api_on_result(F.api, i, uuid, seq, r);
}

static void mgr_log(jobmgr_t *m, size_t i, job_log_level_t lvl, const char *msg)
{
    (void)m;
    log_line(NULL, msg);
    if (F.api) api_on_log(F.api, i, lvl, msg);
}

static void add_job(const char *uuid, const char *slot, job_result_t res, uint8_t mac,
                    const char *recipe_hash)
{
    store_job_start_t st = {.uuid = uuid,
                            .slot = slot,
                            .port = "socket://127.0.0.1:9",
                            .attempt = 1,
                            .recipe_hash = recipe_hash,
                            .baud = 460800};
    job_report_t r;
    memset(&r, 0, sizeof r);
    r.result = res;
    r.chip = chip_get(CHIP_ESP32C3);
    r.chip_rev = 4;
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
    snprintf(r.message, sizeof r.message, "fuzz job \"%u\", with, commas", mac);
    if (store_job_begin(F.store, &st) != 0 ||
        store_job_event(F.store, uuid, 0, "state", "open", NULL) != 0 ||
        store_job_finish(F.store, uuid, &r, NULL, NULL) != 0)
        die("store job");
}

static void setup(void)
{
    static uint8_t img[8192];
    static const jobmgr_cbs_t cbs = {.slot_cb = mgr_slot,
                                     .progress_cb = mgr_progress,
                                     .result_cb = mgr_result,
                                     .log_cb = mgr_log};
    static char web[4200];
    char cfg[1024], recipe[512], sha[65], rhash[65], err[512];
    const char *tok;
    api_opts_t o;

    snprintf(F.dir, sizeof F.dir, "%s", fuzz_tmpdir());
    snprintf(F.images, sizeof F.images, "%s/images", F.dir);
    snprintf(web, sizeof web, "%s/web", F.dir);
    if (mkdir(F.images, 0700) != 0 || mkdir(web, 0700) != 0) die("mkdir");
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(i * 7 + 3);
    put("images/app.bin", img, sizeof img);
    sha_hex(img, sizeof img, sha);
    snprintf(recipe, sizeof recipe,
             "{\"name\":\"fuzz\",\"version\":\"1.0\",\"chip\":\"esp32c3\",\"images\":[{\"offset\":"
             "\"0x10000\",\"file\":\"app.bin\",\"sha256\":\"%s\"}]}",
             sha);
    put("images/r.json", recipe, strlen(recipe));
    sha_hex(recipe, strlen(recipe), rhash);
    put("secret.txt", SECRET "\n", sizeof SECRET);
    sha_hex(SECRET "\n", sizeof SECRET, F.secret_sha);
    link_to("../secret.txt", "images/leak.bin");
    put("web/index.html", "<h1>station</h1>", 16);
    put("web/app.js", "let x = 1;", 10);
    link_to("../secret.txt", "web/leak.txt");

    snprintf(cfg, sizeof cfg,
             "{\"id\":\"fuzz\",\"name\":\"Fuzz \\\"station\\\"\",\"database\":\"db.sqlite\","
             "\"recipe\":\"images/r.json\",\"image_dir\":\"images\",\"token_file\":\"tokens\","
             "\"http\":{\"max_body_bytes\":8192,\"max_header_bytes\":2048,"
             "\"max_upload_bytes\":16384},"
             "\"slots\":[{\"name\":\"A1\",\"port\":\"socket://127.0.0.1:9\"},"
             "{\"name\":\"A2\",\"port\":\"socket://127.0.0.1:10\",\"recipe\":\"missing.json\"}]}");
    if (config_parse(cfg, strlen(cfg), F.dir, &F.cfg, err, sizeof err) != 0) die(err);
    if (store_open(F.cfg.database, &F.store) < 0) die("store_open");
    if (uv_loop_init(&F.loop) != 0) die("uv_loop_init");
    if (jobmgr_new(&F.loop, &F.cfg, F.store, &cbs, NULL, &F.mgr) != 0) die("jobmgr_new");
    tok = "viewer viewer-token-000000000001\nmes mes-token-000000000000002\n"
          "operator operator-token-0000000003\n# comment\n\nengineer engineer-token-0000000004\n";
    if (auth_parse(tok, strlen(tok), "tokens", &F.auth, err, sizeof err) != 0) die(err);
    add_job("f0000000-0000-4000-8000-000000000001", "A1", JOB_RESULT_PASS, 1, rhash);
    add_job("f0000000-0000-4000-8000-000000000002", "A1", JOB_RESULT_FAIL, 2, rhash);
    add_job("f0000000-0000-4000-8000-000000000003", "A2", JOB_RESULT_CANCELLED, 3, NULL);
    memset(&o, 0, sizeof o);
    o.loop = &F.loop;
    o.cfg = &F.cfg;
    o.store = F.store;
    o.mgr = F.mgr;
    o.auth = F.auth;
    o.web_root = web;
    o.boot_id = "0badf00d";
    o.log_cb = log_line;
    if (api_new(&o, &F.api, err, sizeof err) != 0) die(err);
}

/* ---- the request: raw HTTP/1.1 text split into the fields api_req_t has ---- */

typedef struct {
    api_req_t q;
    char *own[6]; /* exact-size copies */
} req_t;

static const char *field(req_t *r, int k, const uint8_t *p, size_t n, size_t *len)
{
    r->own[k] = malloc(n ? n : 1);
    FUZZ_CHECK(r->own[k] != NULL);
    if (n) memcpy(r->own[k], p, n);
    *len = n;
    return r->own[k];
}

static bool header_is(const uint8_t *line, size_t n, const char *name, size_t *vstart)
{
    size_t k = strlen(name), i;
    if (n <= k || strncasecmp((const char *)line, name, k) != 0 || line[k] != ':') return false;
    for (i = k + 1; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
        ;
    *vstart = i;
    return true;
}

static void parse_request(const uint8_t *d, size_t n, req_t *r)
{
    size_t head = n, body = n, pos = 0, line_end, v;
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i + 1 < n; i++) {
        if (d[i] == '\n' && d[i + 1] == '\n') {
            head = i + 1, body = i + 2;
            break;
        }
        if (i + 3 < n && !memcmp(d + i, "\r\n\r\n", 4)) {
            head = i + 2, body = i + 4;
            break;
        }
    }
    r->q.header_bytes = head;
    if (body <= n && head < n) r->q.body = field(r, 5, d + body, n - body, &r->q.body_len);
    /* request line: METHOD SP TARGET [SP VERSION] */
    for (line_end = 0; line_end < head && d[line_end] != '\n'; line_end++)
        ;
    {
        size_t e = line_end > 0 && d[line_end - 1] == '\r' ? line_end - 1 : line_end, m, t;
        for (m = 0; m < e && d[m] != ' '; m++)
            ;
        r->q.method = field(r, 0, d, m, &r->q.method_len);
        t = m < e ? m + 1 : e;
        for (v = t; v < e && d[v] != ' '; v++)
            ;
        r->q.target = field(r, 1, d + t, v - t, &r->q.target_len);
    }
    pos = line_end + 1;
    while (pos < head) {
        const uint8_t *line = d + pos;
        size_t len, e;
        for (len = 0; pos + len < head && line[len] != '\n'; len++)
            ;
        e = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
        if (!r->own[2] && header_is(line, e, "Authorization", &v))
            r->q.authorization = field(r, 2, line + v, e - v, &r->q.authorization_len);
        else if (!r->own[3] && header_is(line, e, "Content-Type", &v))
            r->q.content_type = field(r, 3, line + v, e - v, &r->q.content_type_len);
        else if (!r->own[4] && header_is(line, e, "Last-Event-ID", &v))
            r->q.last_event_id = field(r, 4, line + v, e - v, &r->q.last_event_id_len);
        pos += len + 1;
    }
}

static void free_request(req_t *r)
{
    for (size_t k = 0; k < sizeof r->own / sizeof r->own[0]; k++)
        free(r->own[k]);
}

static bool starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return s && n >= k && memcmp(s, prefix, k) == 0;
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; hay && i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

static void check_response(const uint8_t *in, size_t n, const req_t *r, const api_resp_t *s)
{
    bool json, problem;
    FUZZ_CHECK(s->status >= 100 && s->status <= 599);
    FUZZ_CHECK(s->body_len == 0 || s->body != NULL);
    FUZZ_CHECK(s->status != 405 || (s->allow != NULL && s->allow[0] != '\0'));
    FUZZ_CHECK(s->status != 401 || s->www_authenticate);
    /* (error details may quote the request: only a secret the request did not bring counts) */
    if (!contains((const char *)in, n, SECRET)) FUZZ_CHECK(!contains(s->body, s->body_len, SECRET));
    /* a recipe naming the secret's digest can only be the symlink out of images/ */
    if (starts(r->q.method, r->q.method_len, "POST") && s->status >= 200 && s->status < 300 &&
        contains(r->q.body, r->q.body_len, F.secret_sha))
        FUZZ_CHECK(!"recipe with an image outside the image directory accepted");
    json = s->content_type && !strncmp(s->content_type, "application/json", 16);
    problem = s->content_type && !strcmp(s->content_type, "application/problem+json");
    if ((json || problem) && !s->events && s->body_len) {
        cJSON *j = cJSON_ParseWithLength(s->body, s->body_len);
        if (!j)
            fprintf(stderr, "not JSON (%d %s): %.*s\n", s->status, s->content_type,
                    (int)s->body_len, s->body);
        FUZZ_CHECK(j != NULL);
        if (problem) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
            const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
            FUZZ_CHECK(cJSON_IsNumber(st) && st->valueint == s->status);
            FUZZ_CHECK(cJSON_IsString(code) && code->valuestring[0] != '\0');
            FUZZ_CHECK(s->status >= 400);
        }
        cJSON_Delete(j);
    }
    if (s->status >= 400) FUZZ_CHECK(problem);
}

/* Remove what requests wrote into images/ so that inputs do not pile up files. */
static void undo_writes(void)
{
    DIR *d = opendir(F.images);
    struct dirent *e;
    FUZZ_CHECK(d != NULL);
    while ((e = readdir(d))) {
        bool keep = e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, ".."));
        char p[4600];
        for (size_t i = 0; !keep && image_files[i]; i++)
            keep = !strcmp(e->d_name, image_files[i]);
        if (keep) continue;
        snprintf(p, sizeof p, "%s/%s", F.images, e->d_name);
        unlink(p);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    req_t r;
    api_resp_t s;
    if (!F.api) setup();
    parse_request(data, size, &r);
    memset(&s, 0, sizeof s);
    api_handle_sync(F.api, &r.q, &s);
    check_response(data, size, &r, &s);
    api_resp_free(&s);
    /* let what the request started (a job on a loopback port that refuses) move on */
    uv_run(&F.loop, UV_RUN_NOWAIT);
    if (!starts(r.q.method, r.q.method_len, "GET")) undo_writes();
    free_request(&r);
    return 0;
}
