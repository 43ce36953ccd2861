/* SPDX-License-Identifier: MIT */
/* api.c — the top of the API: creation, routing with roles and limits, the dashboard's static
 * files, and the public entry points (api.h) over the endpoint files (api_routes.h).
 * Must not: block (slow endpoints defer their work), or put a token in a response or log. */
#include "api_defer.h"
#include "api_model.h"
#include "api_routes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- creation ---- */

static int api_count_cb(const char *slot, const char *result, bool final, int64_t n, void *data)
{
    if (final && n > 0) api__count_add(data, slot, result, (uint64_t)n);
    return 0;
}

int api_new(const api_opts_t *o, api_t **out, char *err, size_t errlen)
{
    api_t *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->o = *o;
    a->ev = events_new(o->boot_id);
    a->n_slots = jobmgr_slot_count(o->mgr);
    a->slots = calloc(a->n_slots ? a->n_slots : 1, sizeof *a->slots);
    if (!a->ev || !a->slots) {
        api_free(a);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->started_unix_ms = store_now_ms();
    a->started_hr = uv_hrtime();
    if (store_job_counts(o->store, api_count_cb, a) != 0) {
        snprintf(err, errlen, "reading the job counts: %s", store_errmsg(o->store));
        api_free(a);
        return EST_EDB;
    }
    for (size_t i = 0; i < a->n_slots; i++) {
        slot_view_t v;
        int rc;
        jobmgr_slot_view(o->mgr, i, &v);
        rc = store_job_last_of_slot(o->store, v.name, &a->slots[i].last);
        if (rc < 0) {
            snprintf(err, errlen, "reading the last job of slot %s: %s", v.name,
                     store_errmsg(o->store));
            api_free(a);
            return EST_EDB;
        }
        a->slots[i].have_last = rc == 0;
    }
    if (!realpath(o->cfg->image_dir, a->image_dir_real)) a->image_dir_real[0] = 0;
    api__apply_slot_recipes(a);
    *out = a;
    return 0;
}

void api_free(api_t *a)
{
    if (!a) return;
    events_free(a->ev);
    free(a->slots);
    free(a->counts);
    free(a);
}

void api_set_alarm(api_t *a, const char *text)
{
    snprintf(a->alarm, sizeof a->alarm, "%s", text ? text : "");
}

events_t *api_events(api_t *a)
{
    return a->ev;
}

void api_count_status(api_t *a, int status)
{
    if (status >= 100 && status < 600) a->status_n[status]++;
}

/* ---- static files ---- */

static const char *api_mime(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

void api__get_static(api_ctx_t *c)
{
    char root[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX];
    const char *rel = c->full + 1;
    struct stat st;
    size_t rl;
    int fd;
    char *buf;
    ssize_t got;
    size_t total = 0;

    if (c->slash_in_segment) { /* "%2F": not a file name */
        api__problem(c->resp, 404, "not_found", "no such file");
        return;
    }
    if (!c->a->o.web_root || !realpath(c->a->o.web_root, root)) {
        api__problem(c->resp, 404, "not_found", "no dashboard files are installed (web_root)");
        return;
    }
    /* no "." or ".." component anywhere (also after decoding: %2e%2e) */
    for (const char *s = rel;;) {
        size_t n = strcspn(s, "/");
        if (n >= 1 && s[0] == '.') { /* also dotfiles: ".git", ".env" (issue 14) */
            api__problem(c->resp, 404, "not_found", "no such file");
            return;
        }
        if (!s[n]) break;
        s += n + 1;
    }
    if (!*rel) rel = "index.html";
    snprintf(full, sizeof full, "%s/%s", root, rel);
    rl = strlen(root);
    /* symlinks that lead outside the web root count as absent */
    if (!realpath(full, real) || strncmp(real, root, rl) != 0 || (real[rl] != '/' && real[rl]) ||
        stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        api__problem(c->resp, 404, "not_found", "no such file");
        return;
    }
    if ((uint64_t)st.st_size > API_STATIC_MAX) {
        api__problem(c->resp, 500, "internal", "the file is too large to serve");
        return;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC);
    buf = fd >= 0 ? malloc((size_t)st.st_size + 1) : NULL;
    if (!buf) {
        if (fd >= 0) close(fd);
        api__problem(c->resp, 404, "not_found", "no such file");
        return;
    }
    while (total < (size_t)st.st_size &&
           (got = read(fd, buf + total, (size_t)st.st_size - total)) > 0)
        total += (size_t)got;
    close(fd);
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = api_mime(real);
    c->resp->body = buf;
    c->resp->body_len = total;
    c->resp->cache_control = "no-cache";
}

/* ---- routing ---- */

typedef enum { M_GET, M_POST, M_PUT, M_OTHER } api_method_t;

typedef struct api_route_s {
    const char *pattern[API_MAX_SEGMENTS]; /* "*" = any one segment */
    api_method_t method;
    auth_perm_t perm;
    int body; /* 0 none, 1 JSON (max_body_bytes), 2 upload (max_upload_bytes) */
    void (*fn)(api_ctx_t *c);
} api_route_t;

#define R(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }
static const api_route_t api_routes[] = {
    {R("api", "v1", "station"), M_GET, AUTH_PERM_READ, 0, api__get_station},
    {R("api", "v1", "vocabulary"), M_GET, AUTH_PERM_READ, 0, api__get_vocabulary},
    {R("api", "v1", "auth"), M_GET, AUTH_PERM_NONE, 0, api__get_auth},
    {R("api", "v1", "slots"), M_GET, AUTH_PERM_READ, 0, api__get_slots},
    {R("api", "v1", "slots", "*"), M_GET, AUTH_PERM_READ, 0, api__get_slot},
    {R("api", "v1", "slots", "*", "start"), M_POST, AUTH_PERM_OPERATE, 1, api__post_start},
    {R("api", "v1", "slots", "*", "cancel"), M_POST, AUTH_PERM_OPERATE, 1, api__post_cancel},
    {R("api", "v1", "slots", "*", "recipe"), M_PUT, AUTH_PERM_ENGINEER, 1, api__put_slot_recipe},
    {R("api", "v1", "jobs"), M_GET, AUTH_PERM_READ, 0, api__get_jobs},
    {R("api", "v1", "jobs.csv"), M_GET, AUTH_PERM_EXPORT, 0, api__get_jobs_csv},
    {R("api", "v1", "jobs", "*"), M_GET, AUTH_PERM_READ, 0, api__get_job},
    {R("api", "v1", "devices", "*"), M_GET, AUTH_PERM_READ, 0, api__get_device},
    {R("api", "v1", "recipes"), M_GET, AUTH_PERM_READ, 0, api__get_recipes},
    {R("api", "v1", "recipes"), M_POST, AUTH_PERM_ENGINEER, 1, api__post_recipe},
    {R("api", "v1", "recipes", "*"), M_GET, AUTH_PERM_READ, 0, api__get_recipe},
    {R("api", "v1", "images"), M_GET, AUTH_PERM_READ, 0, api__get_images},
    {R("api", "v1", "images", "*"), M_PUT, AUTH_PERM_ENGINEER, 2, api__put_image},
    {R("api", "v1", "stats"), M_GET, AUTH_PERM_READ, 0, api__get_stats},
    {R("api", "v1", "events"), M_GET, AUTH_PERM_READ, 0, api__get_events},
    {R("api", "v1", "pools"), M_GET, AUTH_PERM_READ, 0, api__get_pools},
    {R("api", "v1", "pools"), M_POST, AUTH_PERM_ENGINEER, 1, api__post_pool},
    {R("api", "v1", "pools", "*", "items"), M_GET, AUTH_PERM_READ, 0, api__get_pool_items},
    {R("api", "v1", "pools", "*", "import"), M_POST, AUTH_PERM_ENGINEER, 2, api__post_pool_import},
    {R("api", "v1", "pools", "*", "void"), M_POST, AUTH_PERM_ENGINEER, 1, api__post_pool_void},
    {R("metrics"), M_GET, AUTH_PERM_READ, 0, api__get_metrics},
};
#undef R

static const char *const api_method_names[] = {"GET", "POST", "PUT"};

/* The query parameters each endpoint reads (docs/API.md); every other endpoint takes none. A
 * parameter not listed is refused, never ignored (issue 15 item 10: a filter the station does not
 * know must not return every row). */
static const struct {
    void (*fn)(api_ctx_t *c);
    const char *names; /* space-separated */
} api_route_params[] = {
    {api__get_jobs, "after limit result mac slot since until final"},
    {api__get_jobs_csv, "after limit result mac slot since until final"},
    {api__get_stats, "since until"},
    {api__get_events, "last_event_id"},
    {api__put_image, "sha256"},
    {api__get_pool_items, "after limit state"},
    {api__post_pool_import, "low_water"},
};

/* Refuses (400, naming it) the first query parameter `fn` does not read. */
static bool api_params_known(api_ctx_t *c, void (*fn)(api_ctx_t *c))
{
    const char *names = "";
    for (size_t i = 0; i < sizeof api_route_params / sizeof api_route_params[0]; i++)
        if (api_route_params[i].fn == fn) names = api_route_params[i].names;
    for (size_t i = 0; i < c->n_params; i++) {
        const char *k = c->params[i].key, *p = names;
        size_t n = strlen(k);
        bool ok = false;
        while (n && !ok && (p = strstr(p, k)) != NULL) {
            ok = (p == names || p[-1] == ' ') && (p[n] == ' ' || !p[n]);
            p += n;
        }
        if (!ok) {
            api__problem(c->resp, 400, "bad_request",
                         "unknown query parameter '%s'%s%s (see docs/API.md)", k,
                         *names ? "; this endpoint takes: " : "; this endpoint takes none",
                         names);
            return false;
        }
    }
    return true;
}

static bool api_route_matches(const api_route_t *rt, const api_ctx_t *c)
{
    size_t k = 0;
    for (; k < API_MAX_SEGMENTS && rt->pattern[k]; k++) {
        if (k >= c->n_seg || c->too_deep) return false;
        if (strcmp(rt->pattern[k], "*") ? strcmp(rt->pattern[k], c->seg[k]) != 0 : !c->seg[k][0])
            return false;
    }
    return k == c->n_seg;
}

/* May the caller do `perm`? Puts the 401/403 in the response when not. */
static bool api_authorize(api_ctx_t *c, auth_perm_t perm)
{
    const api_t *a = c->a;
    if (perm == AUTH_PERM_NONE) return true;
    if (perm == AUTH_PERM_READ && !a->o.cfg->http.read_token) return true;
    if (!a->o.auth) {
        api__problem(c->resp, 403, "forbidden",
                     "this station has no API tokens: set \"token_file\" in the station config "
                     "(docs/API.md) to allow %s",
                     perm == AUTH_PERM_EXPORT ? "the CSV export" : "changes through the API");
        return false;
    }
    if (c->role == AUTH_ROLE_NONE) {
        api__problem(c->resp, 401, "unauthorized", "%s",
                     c->req->authorization ? "unknown token" : "a bearer token is needed");
        return false;
    }
    if (!auth_allows(c->role, perm)) {
        api__problem(c->resp, 403, "forbidden", "role %s may not do this (it needs %s)",
                     auth_role_name(c->role),
                     perm == AUTH_PERM_EXPORT     ? "mes, operator or engineer"
                     : perm == AUTH_PERM_OPERATE  ? "operator or engineer"
                     : perm == AUTH_PERM_ENGINEER ? "engineer"
                                                  : "any role");
        return false;
    }
    return true;
}

static api_method_t api_method(const api_req_t *req)
{
    for (size_t i = 0; i < 3; i++)
        if (req->method && req->method_len == strlen(api_method_names[i]) &&
            !memcmp(req->method, api_method_names[i], req->method_len))
            return (api_method_t)i;
    return M_OTHER;
}

/* Non-empty '&'-separated parameters of the query. */
static size_t api_count_params(const api_req_t *req)
{
    const char *q = req->target ? memchr(req->target, '?', req->target_len) : NULL;
    const char *end = req->target + req->target_len;
    size_t n = 0;
    for (const char *s = q ? q + 1 : end; s < end;) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        n += e > s;
        s = e + 1;
    }
    return n;
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF). */
static bool api_utf8_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p, *e = s + n;
    while (s < e) {
        unsigned c = *s++, need, cp, min;
        if (c < 0x80) continue;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            need = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            need = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if ((size_t)(e - s) < need) return false;
        for (unsigned k = 0; k < need; k++) {
            if ((s[k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[k] & 0x3F);
        }
        s += need;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    }
    return true;
}

static void api_ctx_free(api_ctx_t *c)
{
    free(c->path);
    free(c->full);
    for (size_t i = 0; i < c->n_params; i++) {
        free(c->params[i].key);
        free(c->params[i].val);
    }
}

void api_early(api_t *a, const api_req_t *req, api_early_t *out)
{
    api_ctx_t c;
    api_resp_t resp;
    api_method_t m = api_method(req);
    memset(&c, 0, sizeof c);
    memset(&resp, 0, sizeof resp);
    c.a = a;
    c.req = req;
    c.resp = &resp;
    c.role = auth_check(a->o.auth, req->authorization, req->authorization_len);
    out->body_limit = a->o.cfg->http.max_body_bytes;
    out->privileged = c.role != AUTH_ROLE_NONE && auth_allows(c.role, AUTH_PERM_OPERATE);
    if (m == M_PUT && api__parse_target(&c)) {
        for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
            const api_route_t *rt = &api_routes[i];
            if (rt->body == 2 && rt->method == m && api_route_matches(rt, &c) &&
                api_authorize(&c, rt->perm))
                out->body_limit = a->o.cfg->http.max_upload_bytes;
        }
    }
    api_ctx_free(&c);
    api_resp_free(&resp);
}

static void api_route(api_ctx_t *c)
{
    const api_t *a = c->a;
    api_method_t m = api_method(c->req);
    bool path_known = false;
    char allow[32] = "";

    if (c->req->header_bytes && c->req->header_bytes > a->o.cfg->http.max_header_bytes) {
        api__problem(c->resp, 431, "header_too_large",
                     "the request line and headers are %zu bytes; the limit is %u "
                     "(http.max_header_bytes)",
                     c->req->header_bytes, (unsigned)a->o.cfg->http.max_header_bytes);
        return;
    }
    if (api_count_params(c->req) > API_MAX_PARAMS) { /* not silently dropped (issue 14) */
        api__problem(c->resp, 400, "bad_request", "more than %d query parameters",
                     API_MAX_PARAMS);
        return;
    }
    if (!api__parse_target(c)) {
        api__problem(c->resp, 400, "bad_request", "malformed request target (percent-encoding)");
        return;
    }
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
        const api_route_t *rt = &api_routes[i];
        uint64_t limit;
        if (!api_route_matches(rt, c)) continue;
        path_known = true;
        if (rt->method != m) {
            size_t n = strlen(allow);
            snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                     api_method_names[rt->method]);
            continue;
        }
        c->resp->role = auth_role_name(c->role);
        if (!api_authorize(c, rt->perm)) return;
        limit = rt->body == 2 ? a->o.cfg->http.max_upload_bytes : a->o.cfg->http.max_body_bytes;
        if (c->req->body_len > limit) {
            api__problem(c->resp, 413, "payload_too_large",
                         "the request body is %zu bytes; the limit is %llu (http.%s)",
                         c->req->body_len, (unsigned long long)limit,
                         rt->body == 2 ? "max_upload_bytes" : "max_body_bytes");
            return;
        }
        if (rt->body == 1 && c->req->body && !api_utf8_valid(c->req->body, c->req->body_len)) {
            api__problem(c->resp, 400, "bad_request",
                         "the body is not valid UTF-8 (JSON text must be UTF-8, RFC 8259)");
            return;
        }
        if (!api_params_known(c, rt->fn)) return;
        rt->fn(c);
        return;
    }
    if (path_known) {
        /* the Allow value must outlive this call: pick the static string that matches */
        static const char *const allows[] = {"GET", "POST", "PUT", "GET, POST"};
        for (size_t i = 0; i < sizeof allows / sizeof allows[0]; i++)
            if (!strcmp(allow, allows[i])) c->resp->allow = allows[i];
        api__problem(c->resp, 405, "method_not_allowed", "use %s for this resource", allow);
        return;
    }
    if (c->n_seg >= 1 && !strcmp(c->seg[0], "api")) {
        api__problem(c->resp, 404, "not_found", "no such API resource (see docs/API.md)");
        return;
    }
    if (m != M_GET) {
        c->resp->allow = "GET";
        api__problem(c->resp, 405, "method_not_allowed", "the dashboard files can only be read");
        return;
    }
    api__get_static(c);
}

void api_handle(api_t *a, const api_req_t *req, api_resp_t *resp)
{
    api_ctx_t c;
    memset(resp, 0, sizeof *resp);
    memset(&c, 0, sizeof c);
    c.a = a;
    c.req = req;
    c.resp = resp;
    c.role = auth_check(a->o.auth, req->authorization, req->authorization_len);
    resp->role = auth_role_name(c.role);
    api_route(&c);
    if (!resp->status) api__problem(resp, 500, "internal", "the request was not answered");
    api_ctx_free(&c);
}

int api_stream_next(api_t *a, api_stream_t *s, char **buf, size_t *len)
{
    return api__stream_next(a, s, buf, len);
}

void api_defer_work(api_defer_t *d)
{
    api__defer_work(d);
}

void api_defer_finish(api_t *a, api_resp_t *resp)
{
    api_defer_t *d = resp->defer;
    resp->defer = NULL;
    api__defer_finish(a, d, resp);
    api__defer_free(d);
}

void api_resp_free(api_resp_t *resp)
{
    free(resp->body);
    api__stream_free(resp->stream);
    api__defer_free(resp->defer);
    events_detach(resp->events);
    memset(resp, 0, sizeof *resp);
}

void api_handle_sync(api_t *a, const api_req_t *req, api_resp_t *resp)
{
    api_handle(a, req, resp);
    if (resp->defer) {
        api_defer_work(resp->defer);
        api_defer_finish(a, resp);
    }
    while (resp->stream) {
        char *chunk = NULL, *nb;
        size_t n = 0;
        int rc = api_stream_next(a, resp->stream, &chunk, &n);
        if (rc < 0) {
            free(chunk);
            api__stream_free(resp->stream);
            resp->stream = NULL;
            break;
        }
        nb = realloc(resp->body, resp->body_len + n + 1);
        if (nb) {
            if (n) memcpy(nb + resp->body_len, chunk, n);
            resp->body = nb;
            resp->body_len += n;
            nb[resp->body_len] = 0;
        }
        free(chunk);
        if (rc == 0) {
            api__stream_free(resp->stream);
            resp->stream = NULL;
        }
    }
}
