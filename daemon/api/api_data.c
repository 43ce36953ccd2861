/* SPDX-License-Identifier: MIT */
/* api_data.c — the API's reads of the record: the MES cursor (jobs, filters, CSV export in
 * chunks), one job with its images and events, a board's history, recipes, statistics and the
 * Prometheus metrics. Must not: hold a statement across loop turns (the CSV export re-queries
 * from its cursor for every chunk), or change anything. */
#include "api_model.h"
#include "api_routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_CSV_CHUNK 500

/* ---- filters shared by /jobs and /jobs.csv ---- */

typedef struct api_filter_s {
    int64_t after, limit;
    char result[16], mac[18], slot[65], since[STORE_TIME_LEN], until[STORE_TIME_LEN];
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
    if (api__param_time(c, "until", &ms, &have) < 0) return -1;
    if (have) {
        store_fmt_time(ms, f->until);
        f->f.until = f->until;
    }
    if ((v = api__param(c, "final")) != NULL) {
        if (strcmp(v, "true") && strcmp(v, "false")) {
            api__problem(c->resp, 400, "bad_request", "query parameter final: true or false");
            return -1;
        }
        f->f.final = strcmp(v, "true") ? -1 : 1;
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
    cJSON_AddItemToArray(p->arr, api__job_json(row, false));
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
    if (c->a->o.database_id && *c->a->o.database_id) /* docs/MES.md "A new database" */
        cJSON_AddStringToObject(o, "database_id", c->a->o.database_id);
    else
        cJSON_AddNullToObject(o, "database_id");
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
    cJSON *j = api__job_json(row, false), *it;
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
    j = api__job_json(&row, false);
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
    o = api__job_json(row, true);
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
    cJSON_AddItemToArray(data, api__job_json(row, false));
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

/* The event loop's delay (jobmgr_loop_stats) and the store writer: what a slow disk or a heavy
 * request would cost the jobs' timers. */
static void api_loop_metrics(api_t *a, api_csv_t *b)
{
    jobmgr_loop_stats_t ls;
    jobmgr_loop_stats(a->o.mgr, &ls);
    prom_printf(b,
                "# HELP espstation_loop_lag_max_seconds Longest delay of the event loop over the "
                "last minute.\n# TYPE espstation_loop_lag_max_seconds gauge\n"
                "espstation_loop_lag_max_seconds %.6f\n",
                (double)ls.lag_max_1m_us / 1e6);
    prom_printf(b, "# HELP espstation_loop_lag_seconds Delay of the event loop, sampled every "
                   "%d ms.\n# TYPE espstation_loop_lag_seconds histogram\n",
                JOBMGR_LAG_PERIOD_MS);
    for (size_t k = 0; k < JOBMGR_LAG_BUCKETS; k++)
        prom_printf(b, "espstation_loop_lag_seconds_bucket{le=\"%g\"} %llu\n",
                    jobmgr_lag_le_s[k], (unsigned long long)ls.lag_bucket[k]);
    prom_printf(b, "espstation_loop_lag_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)ls.lag_count);
    prom_printf(b, "espstation_loop_lag_seconds_sum %.6f\n", ls.lag_sum_s);
    prom_printf(b, "espstation_loop_lag_seconds_count %llu\n", (unsigned long long)ls.lag_count);
    prom_printf(b,
                "# HELP espstation_store_write_max_seconds Longest single write (a job's row, "
                "event or final commit) of the store writer thread since start.\n"
                "# TYPE espstation_store_write_max_seconds gauge\n"
                "espstation_store_write_max_seconds %.3f\n"
                "# HELP espstation_store_writes_pending Writes queued for the store writer.\n"
                "# TYPE espstation_store_writes_pending gauge\nespstation_store_writes_pending %zu\n",
                (double)ls.store_write_max_ms / 1e3, ls.store_pending);
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
    api_loop_metrics(a, &b);
    if (a->o.metrics_extra) {
        char extra[4096];
        size_t n = a->o.metrics_extra(a->o.extra_data, extra, sizeof extra);
        csv_put(&b, extra, n < sizeof extra ? n : sizeof extra - 1);
    }
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
