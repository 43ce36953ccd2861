/* SPDX-License-Identifier: MIT */
/* api_data.c — the API's reads of the record: the MES cursor (jobs, filters, CSV export in
 * chunks), one job with its images and events, a board's history, recipes, statistics and the
 * Prometheus metrics. Must not: hold a statement across loop turns (the CSV export re-queries
 * from its cursor for every chunk), or change anything. */
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_CSV_CHUNK 500

/* ---- filters shared by /jobs and /jobs.csv ---- */

typedef struct api_filter_s {
    int64_t after, limit;
    char result[16], mac[18], slot[65], since[STORE_TIME_LEN];
    store_job_filter_t f;
} api_filter_t;

static int api_filter(api_ctx_t *c, api_filter_t *f, int64_t dflt, int64_t max)
{
    const char *v;
    uint64_t ms;
    bool have;
    memset(f, 0, sizeof *f);
    f->limit = dflt;
    if (api__param_int(c, "after", 0, INT64_MAX, &f->after) < 0 ||
        api__param_int(c, "limit", 1, max, &f->limit) < 0)
        return -1;
    if ((v = api__param(c, "result")) != NULL) {
        if (strcmp(v, "pass") && strcmp(v, "fail") && strcmp(v, "cancelled") &&
            strcmp(v, "interrupted")) {
            api__problem(c->resp, 400, "bad_request",
                         "query parameter result: one of pass, fail, cancelled, interrupted");
            return -1;
        }
        snprintf(f->result, sizeof f->result, "%s", v);
        f->f.result = f->result;
    }
    if ((v = api__param(c, "mac")) != NULL) {
        if (!api_parse_mac(v, strlen(v), f->mac)) {
            api__problem(c->resp, 400, "bad_request",
                         "query parameter mac: six hex bytes, e.g. 24:0a:c4:12:34:56");
            return -1;
        }
        f->f.mac = f->mac;
    }
    if ((v = api__param(c, "slot")) != NULL) {
        if (strlen(v) >= sizeof f->slot) {
            api__problem(c->resp, 400, "bad_request", "query parameter slot: too long");
            return -1;
        }
        snprintf(f->slot, sizeof f->slot, "%s", v);
        f->f.slot = f->slot;
    }
    if (api__param_time(c, "since", &ms, &have) < 0) return -1;
    if (have) {
        store_fmt_time(ms, f->since); /* fixed width: compares as text like the instants */
        f->f.since = f->since;
    }
    return 0;
}

/* ---- GET /api/v1/jobs ---- */

typedef struct api_page_s {
    cJSON *arr;
    int64_t last_seq;
    int64_t want, got;
} api_page_t;

static int api_page_cb(const store_job_row_t *row, void *data)
{
    api_page_t *p = data;
    if (p->got == p->want) return 1; /* the extra row only says has_more */
    cJSON_AddItemToArray(p->arr, api__job_json(row));
    p->last_seq = row->seq;
    p->got++;
    return 0;
}

void api__get_jobs(api_ctx_t *c)
{
    api_filter_t f;
    api_page_t p;
    cJSON *o;
    int n;
    if (api_filter(c, &f, 100, 1000) < 0) return;
    o = cJSON_CreateObject();
    memset(&p, 0, sizeof p);
    p.arr = cJSON_AddArrayToObject(o, "jobs");
    p.last_seq = f.after;
    p.want = f.limit;
    n = store_jobs_query(c->a->o.store, f.after, (size_t)f.limit + 1, &f.f, api_page_cb, &p);
    if (n < 0) {
        cJSON_Delete(o);
        api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
        return;
    }
    cJSON_AddNumberToObject(o, "next_after", (double)p.last_seq);
    cJSON_AddBoolToObject(o, "has_more", n > p.got);
    api__json(c->resp, 200, o);
}

/* ---- GET /api/v1/jobs.csv ---- */

struct api_stream_s {
    api_filter_t f;
    int64_t left; /* rows still to send */
    bool done;
};

typedef struct api_csv_s {
    char *buf;
    size_t len, cap;
    int64_t last_seq, rows;
    bool oom;
} api_csv_t;

static void csv_put(api_csv_t *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = true;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

/* One field, quoted per RFC 4180 when it holds a comma, quote, CR or LF. */
static void csv_field(api_csv_t *b, const cJSON *v, bool first)
{
    char num[32];
    const char *s = NULL;
    if (!first) csv_put(b, ",", 1);
    if (cJSON_IsString(v))
        s = v->valuestring;
    else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%.0f", v->valuedouble);
        s = num;
    } else if (cJSON_IsBool(v))
        s = cJSON_IsTrue(v) ? "true" : "false";
    if (!s) return; /* null: empty field */
    if (strpbrk(s, ",\"\r\n")) {
        csv_put(b, "\"", 1);
        for (const char *p = s; *p; p++) {
            if (*p == '"') csv_put(b, "\"", 1); /* a quote inside is doubled */
            csv_put(b, p, 1);
        }
        csv_put(b, "\"", 1);
    } else {
        csv_put(b, s, strlen(s));
    }
}

static int api_csv_cb(const store_job_row_t *row, void *data)
{
    api_csv_t *b = data;
    cJSON *j = api__job_json(row), *it;
    bool first = true;
    cJSON_ArrayForEach(it, j)
    {
        csv_field(b, it, first);
        first = false;
    }
    csv_put(b, "\r\n", 2);
    cJSON_Delete(j);
    b->last_seq = row->seq;
    b->rows++;
    return 0;
}

void api__get_jobs_csv(api_ctx_t *c)
{
    api_stream_t *s = calloc(1, sizeof *s);
    store_job_row_t row;
    api_csv_t b = {0};
    cJSON *j, *it;
    bool first = true;
    if (!s) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    if (api_filter(c, &s->f, 10000, 100000) < 0) {
        free(s);
        return;
    }
    s->left = s->f.limit;
    /* the header row: the Job fields in order (names from a blank Job) */
    memset(&row, 0, sizeof row);
    j = api__job_json(&row);
    cJSON_ArrayForEach(it, j)
    {
        if (!first) csv_put(&b, ",", 1);
        csv_put(&b, it->string, strlen(it->string));
        first = false;
    }
    cJSON_Delete(j);
    csv_put(&b, "\r\n", 2);
    if (b.oom) {
        free(b.buf);
        free(s);
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    c->resp->status = 200;
    c->resp->content_type = "text/csv; charset=utf-8";
    c->resp->body = b.buf;
    c->resp->body_len = b.len;
    c->resp->stream = s;
}

int api__stream_next(api_t *a, api_stream_t *s, char **buf, size_t *len)
{
    api_csv_t b = {0};
    int64_t want = s->left < API_CSV_CHUNK ? s->left : API_CSV_CHUNK;
    int n;
    *buf = NULL;
    *len = 0;
    if (s->done || want <= 0) return 0;
    n = store_jobs_query(a->o.store, s->f.after, (size_t)want, &s->f.f, api_csv_cb, &b);
    if (n < 0 || b.oom) {
        free(b.buf);
        return -1;
    }
    s->f.after = b.last_seq > s->f.after ? b.last_seq : s->f.after;
    s->left -= n;
    if (n < want || s->left <= 0) s->done = true;
    *buf = b.buf;
    *len = b.len;
    return s->done ? 0 : 1;
}

void api__stream_free(api_stream_t *s)
{
    free(s);
}

/* ---- GET /api/v1/jobs/{uuid} ---- */

static int api_img_cb(const store_image_row_t *r, void *data)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", (double)r->idx);
    cJSON_AddNumberToObject(o, "offset", (double)r->offset);
    cJSON_AddNumberToObject(o, "size", (double)r->size);
    cJSON_AddNumberToObject(o, "compressed_size", (double)r->compressed_size);
    cJSON_AddStringToObject(o, "md5", r->md5 ? r->md5 : "");
    cJSON_AddBoolToObject(o, "patched", r->patched);
    cJSON_AddBoolToObject(o, "verified", r->verified);
    if (r->duration_ms >= 0)
        cJSON_AddNumberToObject(o, "duration_ms", (double)r->duration_ms);
    else
        cJSON_AddNullToObject(o, "duration_ms");
    cJSON_AddItemToArray(data, o);
    return 0;
}

static int api_ev_cb(const store_event_row_t *r, void *data)
{
    cJSON *o = cJSON_CreateObject(), *d = r->detail ? cJSON_Parse(r->detail) : NULL;
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    cJSON_AddNumberToObject(o, "t_ms", (double)r->t_ms);
    cJSON_AddStringToObject(o, "kind", r->kind ? r->kind : "");
    if (r->state)
        cJSON_AddStringToObject(o, "state", r->state);
    else
        cJSON_AddNullToObject(o, "state");
    if (cJSON_IsObject(d))
        cJSON_AddItemToObject(o, "detail", d);
    else {
        cJSON_Delete(d);
        cJSON_AddNullToObject(o, "detail");
    }
    cJSON_AddItemToArray(data, o);
    return 0;
}

void api__get_job(api_ctx_t *c)
{
    store_job_row_t *row = malloc(sizeof *row);
    cJSON *o, *sm, *imgs, *evs;
    int rc;
    if (!row) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    rc = strlen(c->seg[3]) == 36 ? store_job_get(c->a->o.store, c->seg[3], row) : 1;
    if (rc != 0) {
        free(row);
        if (rc < 0)
            api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
        else
            api__problem(c->resp, 404, "not_found", "no job with uuid \"%.64s\"", c->seg[3]);
        return;
    }
    o = api__job_json(row);
    sm = row->state_ms[0] ? cJSON_Parse(row->state_ms) : NULL;
    if (!cJSON_IsObject(sm)) {
        cJSON_Delete(sm);
        sm = cJSON_CreateObject();
        /* a running job: its live per-state times */
        for (size_t i = 0; i < c->a->n_slots; i++) {
            slot_view_t v;
            jobmgr_slot_view(c->a->o.mgr, i, &v);
            if (v.report && !strcmp(v.job_uuid, row->uuid))
                for (int st = 0; st < JOB_ST__COUNT; st++)
                    if (v.report->state_ms[st])
                        cJSON_AddNumberToObject(sm, job_state_name((job_state_t)st),
                                                (double)v.report->state_ms[st]);
        }
    }
    cJSON_AddItemToObject(o, "state_ms", sm);
    imgs = cJSON_AddArrayToObject(o, "images");
    evs = cJSON_AddArrayToObject(o, "events");
    if (store_job_images(c->a->o.store, row->uuid, api_img_cb, imgs) < 0 ||
        store_job_events(c->a->o.store, row->uuid, API_EVENTS_PER_JOB_MAX, api_ev_cb, evs) < 0) {
        cJSON_Delete(o);
        free(row);
        api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
        return;
    }
    free(row);
    api__json(c->resp, 200, o);
}

/* ---- GET /api/v1/devices/{mac} ---- */

static int api_list_cb(const store_job_row_t *row, void *data)
{
    cJSON_AddItemToArray(data, api__job_json(row));
    return 0;
}

void api__get_device(api_ctx_t *c)
{
    char mac[18];
    cJSON *o, *arr;
    if (!api_parse_mac(c->seg[3], strlen(c->seg[3]), mac)) {
        api__problem(c->resp, 400, "bad_request",
                     "\"%.64s\" is not a MAC: six hex bytes with ':' or '-' separators or none",
                     c->seg[3]);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "mac", mac);
    arr = cJSON_AddArrayToObject(o, "jobs");
    if (store_jobs_by_mac(c->a->o.store, mac, API_DEVICE_JOBS_MAX, api_list_cb, arr) < 0) {
        cJSON_Delete(o);
        api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
        return;
    }
    api__json(c->resp, 200, o);
}

/* ---- recipes ---- */

typedef struct api_rec_s {
    api_t *a;
    cJSON *out;
    bool with_json;
} api_rec_t;

static int api_recipe_cb(const store_recipe_row_t *r, void *data)
{
    api_rec_t *x = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "hash", r->hash);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "version", r->version);
    cJSON_AddStringToObject(o, "created_at", r->created_at);
    cJSON_AddItemToObject(o, "slots", api__recipe_slots(x->a, r->hash));
    if (x->with_json) {
        cJSON *j = cJSON_ParseWithLength(r->json, r->json_len);
        cJSON_AddItemToObject(o, "recipe", j ? j : cJSON_CreateObject());
        x->out = o;
    } else {
        cJSON_AddItemToArray(x->out, o);
    }
    return 0;
}

void api__get_recipes(api_ctx_t *c)
{
    cJSON *o = cJSON_CreateObject();
    api_rec_t x = {c->a, cJSON_AddArrayToObject(o, "recipes"), false};
    if (store_recipes_list(c->a->o.store, api_recipe_cb, &x) < 0) {
        cJSON_Delete(o);
        api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
        return;
    }
    api__json(c->resp, 200, o);
}

void api__get_recipe(api_ctx_t *c)
{
    api_rec_t x = {c->a, NULL, true};
    int rc = store_recipe_get(c->a->o.store, c->seg[3], api_recipe_cb, &x);
    if (rc < 0)
        api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(c->a->o.store));
    else if (rc == 1)
        api__problem(c->resp, 404, "not_found", "no recipe with hash \"%.64s\"", c->seg[3]);
    else
        api__json(c->resp, 200, x.out);
}

/* ---- GET /api/v1/stats ---- */

typedef struct api_grp_s {
    char name[65];
    uint64_t n[4];
    int64_t *dur;
    size_t n_dur, cap_dur;
    char first_start[STORE_TIME_LEN]; /* earliest started_at of the group's jobs */
    bool any;
} api_grp_t;

typedef struct api_stats_s {
    api_grp_t station;
    api_grp_t *slots;
    size_t n_slots;
    cJSON *classes;
    bool oom;
} api_stats_t;

static void grp_add(api_grp_t *g, const store_stat_row_t *r, bool *oom)
{
    static const char *const res[4] = {"pass", "fail", "cancelled", "interrupted"};
    for (size_t k = 0; k < 4; k++)
        if (!strcmp(r->result, res[k])) g->n[k]++;
    if (!g->any || strcmp(r->started_at, g->first_start) < 0)
        snprintf(g->first_start, sizeof g->first_start, "%s", r->started_at);
    g->any = true;
    if (!strcmp(r->result, "pass") && r->duration_ms >= 0) {
        if (g->n_dur == g->cap_dur) {
            size_t cap = g->cap_dur ? g->cap_dur * 2 : 64;
            int64_t *nd = realloc(g->dur, cap * sizeof *nd);
            if (!nd) {
                *oom = true;
                return;
            }
            g->dur = nd;
            g->cap_dur = cap;
        }
        g->dur[g->n_dur++] = r->duration_ms;
    }
}

static int api_stat_cb(const store_stat_row_t *r, void *data)
{
    api_stats_t *s = data;
    size_t i;
    grp_add(&s->station, r, &s->oom);
    for (i = 0; i < s->n_slots; i++)
        if (!strcmp(s->slots[i].name, r->slot)) break;
    if (i == s->n_slots) {
        api_grp_t *ns = realloc(s->slots, (s->n_slots + 1) * sizeof *ns);
        if (!ns) {
            s->oom = true;
            return 1;
        }
        s->slots = ns;
        memset(&ns[i], 0, sizeof ns[i]);
        snprintf(ns[i].name, sizeof ns[i].name, "%s", r->slot);
        s->n_slots++;
    }
    grp_add(&s->slots[i], r, &s->oom);
    if (!strcmp(r->result, "fail")) {
        const char *cls = r->error_class && *r->error_class ? r->error_class : "unknown";
        cJSON *n = cJSON_GetObjectItemCaseSensitive(s->classes, cls);
        if (n)
            cJSON_SetNumberValue(n, n->valuedouble + 1);
        else
            cJSON_AddNumberToObject(s->classes, cls, 1);
    }
    return s->oom;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static cJSON *grp_json(api_grp_t *g, const char *name, uint64_t since_ms, uint64_t until_ms)
{
    static const char *const res[4] = {"pass", "fail", "cancelled", "interrupted"};
    cJSON *o = cJSON_CreateObject(), *d;
    uint64_t first;
    if (name) cJSON_AddStringToObject(o, "name", name);
    for (size_t k = 0; k < 4; k++)
        cJSON_AddNumberToObject(o, res[k], (double)g->n[k]);
    if (g->n[0] + g->n[1])
        cJSON_AddNumberToObject(o, "yield", (double)g->n[0] / (double)(g->n[0] + g->n[1]));
    else
        cJSON_AddNullToObject(o, "yield");
    d = cJSON_AddObjectToObject(o, "duration_ms");
    if (g->n_dur) {
        double sum = 0;
        qsort(g->dur, g->n_dur, sizeof *g->dur, cmp_i64);
        for (size_t k = 0; k < g->n_dur; k++)
            sum += (double)g->dur[k];
        cJSON_AddNumberToObject(d, "mean", (double)(int64_t)(sum / (double)g->n_dur + 0.5));
        /* nearest rank: the smallest value with at least 95 % of the values at or below it
         * (rank = ceil(0.95 n), in integers; libm is not linked) */
        size_t rank = (95 * g->n_dur + 99) / 100;
        cJSON_AddNumberToObject(d, "p95", (double)g->dur[rank ? rank - 1 : 0]);
    } else {
        cJSON_AddNullToObject(d, "mean");
        cJSON_AddNullToObject(d, "p95");
    }
    /* boards per hour from the first job's start (not before the window) to the window's end */
    if (g->n[0] && api_parse_time(g->first_start, strlen(g->first_start), &first)) {
        uint64_t from = first > since_ms ? first : since_ms;
        if (until_ms > from)
            cJSON_AddNumberToObject(
                o, "devices_per_hour",
                (double)(int64_t)((double)g->n[0] * 3600000.0 / (double)(until_ms - from) * 10.0 +
                                  0.5) /
                    10.0);
        else
            cJSON_AddNullToObject(o, "devices_per_hour");
    } else {
        cJSON_AddNullToObject(o, "devices_per_hour");
    }
    return o;
}

/* The statistics of one window from `st` (any thread: touches only its arguments). `names` are
 * the configured slots, listed first even when they ran nothing. NULL with `err` on failure. */
cJSON *api__stats_build(store_t *db, uint64_t since, uint64_t until, const char (*names)[65],
                        size_t n_names, char *err, size_t errlen)
{
    char s_txt[STORE_TIME_LEN], u_txt[STORE_TIME_LEN], u_excl[STORE_TIME_LEN];
    api_stats_t st;
    cJSON *o = NULL, *arr;
    memset(&st, 0, sizeof st);
    st.classes = cJSON_CreateObject();
    st.slots = calloc(n_names ? n_names : 1, sizeof *st.slots);
    if (!st.slots || !st.classes) {
        free(st.slots);
        cJSON_Delete(st.classes);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n_names; i++)
        snprintf(st.slots[i].name, sizeof st.slots[i].name, "%s", names[i]);
    st.n_slots = n_names;
    store_fmt_time(since, s_txt);
    store_fmt_time(until, u_txt);
    store_fmt_time(until + 1, u_excl); /* the window includes `until` */
    if (store_stats_rows(db, s_txt, u_excl, api_stat_cb, &st) < 0 || st.oom) {
        snprintf(err, errlen, "database: %s", st.oom ? "out of memory" : store_errmsg(db));
    } else {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "since", s_txt);
        cJSON_AddStringToObject(o, "until", u_txt);
        cJSON_AddItemToObject(o, "station", grp_json(&st.station, NULL, since, until));
        arr = cJSON_AddArrayToObject(o, "slots");
        for (size_t i = 0; i < st.n_slots; i++)
            cJSON_AddItemToArray(arr, grp_json(&st.slots[i], st.slots[i].name, since, until));
        cJSON_AddItemToObject(o, "failures_by_class", st.classes);
        st.classes = NULL;
    }
    free(st.station.dur);
    for (size_t i = 0; i < st.n_slots; i++)
        free(st.slots[i].dur);
    free(st.slots);
    cJSON_Delete(st.classes);
    return o;
}

void api__get_stats(api_ctx_t *c)
{
    uint64_t since, until;
    bool have_since, have_until;
    if (api__param_time(c, "until", &until, &have_until) < 0 ||
        api__param_time(c, "since", &since, &have_since) < 0)
        return;
    if (!have_until) until = store_now_ms();
    if (!have_since) since = until > 86400000u ? until - 86400000u : 0;
    if (since > until) {
        api__problem(c->resp, 400, "bad_request", "since is after until");
        return;
    }
    /* a long window over a big record takes a while: computed on a worker with its own
     * query-only connection, so the loop (and every running job) never waits for it */
    c->resp->defer = api__defer_stats(c, since, until);
    if (!c->resp->defer) api__problem(c->resp, 500, "internal", "out of memory");
}

/* ---- GET /metrics ---- */

/* A label value per the exposition format: backslash, quote and newline escaped. */
static void prom_label(api_csv_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            csv_put(b, "\\", 1), csv_put(b, s, 1);
        else if (*s == '\n')
            csv_put(b, "\\n", 2);
        else
            csv_put(b, s, 1);
    }
}

static void prom_printf(api_csv_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prom_printf(api_csv_t *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) csv_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void api__get_metrics(api_ctx_t *c)
{
    static const char *const res[4] = {"pass", "fail", "cancelled", "interrupted"};
    static const char *const le[API_DURATION_BUCKETS] = {"1",  "2",  "5",   "10",  "20",
                                                         "30", "60", "120", "+Inf"};
    api_t *a = c->a;
    api_csv_t b = {0};

    prom_printf(&b, "# HELP espstation_jobs_total Finished jobs (boards: final attempts) by slot "
                    "and result, from the database.\n# TYPE espstation_jobs_total counter\n");
    for (size_t i = 0; i < a->n_counts; i++)
        for (size_t r = 0; r < 4; r++) {
            csv_put(&b, "espstation_jobs_total{slot=\"", 28);
            prom_label(&b, a->counts[i].slot);
            prom_printf(&b, "\",result=\"%s\"} %llu\n", res[r],
                        (unsigned long long)a->counts[i].n[r]);
        }
    prom_printf(&b, "# HELP espstation_slot_state 1 for the state each slot is in.\n"
                    "# TYPE espstation_slot_state gauge\n");
    for (size_t i = 0; i < a->n_slots; i++) {
        slot_view_t v;
        jobmgr_slot_view(a->o.mgr, i, &v);
        for (int s = SLOT_ST_IDLE; s <= SLOT_ST_STOPPED; s++) {
            csv_put(&b, "espstation_slot_state{slot=\"", 28);
            prom_label(&b, v.name);
            prom_printf(&b, "\",state=\"%s\"} %d\n", slot_state_name((slot_state_t)s),
                        v.state == (slot_state_t)s);
        }
    }
    prom_printf(&b, "# HELP espstation_slot_bytes_done Bytes written by the slot's running job.\n"
                    "# TYPE espstation_slot_bytes_done gauge\n");
    for (size_t i = 0; i < a->n_slots; i++) {
        slot_view_t v;
        jobmgr_slot_view(a->o.mgr, i, &v);
        csv_put(&b, "espstation_slot_bytes_done{slot=\"", 33);
        prom_label(&b, v.name);
        prom_printf(&b, "\"} %llu\n",
                    (unsigned long long)(v.state == SLOT_ST_RUNNING ? v.bytes_done : 0));
    }
    prom_printf(&b, "# HELP espstation_job_duration_seconds Duration of passed jobs since the "
                    "daemon started.\n# TYPE espstation_job_duration_seconds histogram\n");
    for (size_t k = 0; k < API_DURATION_BUCKETS; k++)
        prom_printf(&b, "espstation_job_duration_seconds_bucket{le=\"%s\"} %llu\n", le[k],
                    (unsigned long long)a->dur_bucket[k]);
    prom_printf(&b, "espstation_job_duration_seconds_sum %.3f\n", a->dur_sum_s);
    prom_printf(&b, "espstation_job_duration_seconds_count %llu\n",
                (unsigned long long)a->dur_count);
    prom_printf(&b,
                "# HELP espstation_uptime_seconds Seconds since the daemon started.\n"
                "# TYPE espstation_uptime_seconds gauge\nespstation_uptime_seconds %.3f\n",
                (double)(uv_hrtime() - a->started_hr) / 1e9);
    prom_printf(&b, "# HELP espstation_http_requests_total HTTP responses by status code.\n"
                    "# TYPE espstation_http_requests_total counter\n");
    for (int s = 100; s < 600; s++)
        if (a->status_n[s])
            prom_printf(&b, "espstation_http_requests_total{code=\"%d\"} %llu\n", s,
                        (unsigned long long)a->status_n[s]);
    prom_printf(&b,
                "# HELP espstation_events_clients Connected event-stream clients.\n"
                "# TYPE espstation_events_clients gauge\nespstation_events_clients %zu\n",
                events_client_count(a->ev));
    prom_printf(&b,
                "# HELP espstation_build_info The running version.\n"
                "# TYPE espstation_build_info gauge\n"
                "espstation_build_info{version=\"%s\"} 1\n",
                ESTN_VERSION);
    if (b.oom) {
        free(b.buf);
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    c->resp->body = b.buf;
    c->resp->body_len = b.len;
}
