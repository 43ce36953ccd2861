/* SPDX-License-Identifier: MIT */
/* api_json.c — the API's view of the model: Slot, Station and Job objects (docs/API.md, the
 * schemas of schema/openapi.json), the live per-slot data behind them (rates, last job,
 * counters) and the job manager observers that publish events.
 * Must not: change slots or jobs; every field documented is always present (null when absent). */
#include "api_model.h"
#include "store_cols.h"
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const api_results[4] = {"pass", "fail", "cancelled", "interrupted"};

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void add_int_or_null(cJSON *o, const char *k, int64_t v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, k, (double)v);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *api__recipe_ref(const recipe_t *r)
{
    cJSON *o;
    if (!r) return cJSON_CreateNull();
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "version", r->version);
    cJSON_AddStringToObject(o, "hash", r->hash);
    return o;
}

cJSON *api__recipe_slots(api_t *a, const char *hash)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < a->n_slots; i++) {
        slot_view_t v;
        jobmgr_slot_view(a->o.mgr, i, &v);
        if (v.recipe && !strcmp(v.recipe->hash, hash))
            cJSON_AddItemToArray(arr, cJSON_CreateString(v.name));
    }
    return arr;
}

void api__count_add(api_t *a, const char *slot, const char *result, uint64_t n)
{
    size_t r, i;
    for (r = 0; r < 4; r++)
        if (!strcmp(result, api_results[r])) break;
    if (r == 4) return; /* running: not a finished job */
    for (i = 0; i < a->n_counts; i++)
        if (!strcmp(a->counts[i].slot, slot)) break;
    if (i == a->n_counts) {
        api_count_t *nc = realloc(a->counts, (a->n_counts + 1) * sizeof *nc);
        if (!nc) return;
        a->counts = nc;
        memset(&nc[i], 0, sizeof nc[i]);
        snprintf(nc[i].slot, sizeof nc[i].slot, "%s", slot);
        a->n_counts++;
    }
    a->counts[i].n[r] += n;
}

/* ---- Job ---- */

/* A stored JSON text as a member (null when empty or unreadable). */
static void add_json_or_null(cJSON *o, const char *k, const char *text)
{
    cJSON *v = text && *text ? cJSON_Parse(text) : NULL;
    if (v)
        cJSON_AddItemToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* The operator hint of a job that did not pass (docs/API.md: null for a pass or while running). */
static void add_hint(cJSON *o, const char *k, const store_job_row_t *row)
{
    bool running = !strcmp(row->result, "running");
    est_class_t cls = row->error_class[0] ? est_class_from_name(row->error_class) : EST_CLASS__COUNT;
    add_str_or_null(o, k,
                    !running && strcmp(row->result, "pass") != 0 && cls != EST_CLASS__COUNT
                        ? est_class_hint(cls)
                        : NULL);
}

/* The Job object, generated from the column table (daemon/station/store_cols.h, column JSON). */
#define JSON_STR(k, name) cJSON_AddStringToObject(o, k, row->name);
#define JSON_STRN(k, name) add_str_or_null(o, k, row->name);
#define JSON_INT(k, name) cJSON_AddNumberToObject(o, k, (double)row->name);
#define JSON_INTN(k, name) add_int_or_null(o, k, row->name);
#define JSON_BOOL(k, name) cJSON_AddBoolToObject(o, k, row->name);
#define JSON_HINT(k, name) add_hint(o, k, row);
#define JSON_DETAIL(k, name)                                                                       \
    if (detail) add_str_or_null(o, k, row->name);
#define JSON_DETAILJSON(k, name)                                                                   \
    if (detail) add_json_or_null(o, k, row->name);
#define JSON_NONE(k, name)
#define JSON_COL(name, sql, TYPE, json, JSON, WRITE, value) JSON_##JSON(json, name)

cJSON *api__job_json(const store_job_row_t *row, bool detail)
{
    cJSON *o = cJSON_CreateObject();
    STORE_JOB_COLUMNS(JSON_COL)
    return o;
}
#undef JSON_COL

/* ---- Slot ---- */

static void api_rate_reset(api_slot_t *s, const char *uuid)
{
    s->rate_n = s->rate_i = 0;
    snprintf(s->rate_uuid, sizeof s->rate_uuid, "%s", uuid);
}

static void api_rate_sample(api_t *a, api_slot_t *s, const slot_view_t *v)
{
    uint64_t now = uv_now(a->o.loop);
    unsigned last;
    if (strcmp(s->rate_uuid, v->job_uuid) != 0) api_rate_reset(s, v->job_uuid);
    last = (s->rate_i + API_RATE_SAMPLES - 1) % API_RATE_SAMPLES;
    if (s->rate_n && now - s->rate_t[last] < API_RATE_WINDOW_MS / API_RATE_SAMPLES * 2)
        return; /* enough samples in the window already */
    s->rate_t[s->rate_i] = now;
    s->rate_b[s->rate_i] = v->bytes_done;
    s->rate_i = (s->rate_i + 1) % API_RATE_SAMPLES;
    if (s->rate_n < API_RATE_SAMPLES) s->rate_n++;
}

/* Bytes per second over the last ~2 s (from the oldest sample inside the window to now's
 * bytes), or -1 when there are not two samples yet. */
static int64_t api_rate(api_t *a, const api_slot_t *s, const slot_view_t *v)
{
    uint64_t now = uv_now(a->o.loop), t0 = 0, b0 = 0;
    bool found = false;
    if (strcmp(s->rate_uuid, v->job_uuid) != 0 || s->rate_n == 0) return -1;
    for (unsigned k = 0; k < s->rate_n; k++) {
        unsigned idx = (s->rate_i + API_RATE_SAMPLES - s->rate_n + k) % API_RATE_SAMPLES;
        if (now - s->rate_t[idx] <= API_RATE_WINDOW_MS) {
            t0 = s->rate_t[idx];
            b0 = s->rate_b[idx];
            found = true;
            break;
        }
    }
    if (!found || now <= t0 || v->bytes_done < b0) return -1;
    return (int64_t)((v->bytes_done - b0) * 1000u / (now - t0));
}

cJSON *api__slot_json(api_t *a, size_t i)
{
    slot_view_t v;
    api_slot_t *s = &a->slots[i];
    cJSON *o = cJSON_CreateObject(), *x;
    bool running;
    char mac[18], fid[8];
    const job_report_t *r;
    jobmgr_slot_view(a->o.mgr, i, &v);
    running = v.state == SLOT_ST_RUNNING && v.job_uuid && v.job_uuid[0];
    r = running ? v.report : NULL;
    cJSON_AddStringToObject(o, "name", v.name);
    cJSON_AddStringToObject(o, "port", v.port);
    cJSON_AddStringToObject(o, "start", config_start_name(v.start));
    cJSON_AddStringToObject(o, "state", slot_state_name(v.state));
    add_str_or_null(o, "stage", running ? job_state_name(v.stage) : NULL);
    add_str_or_null(o, "job_uuid", running ? v.job_uuid : NULL);
    add_int_or_null(o, "bytes_done", running ? (int64_t)v.bytes_done : -1);
    add_int_or_null(o, "bytes_total", running ? (int64_t)v.bytes_total : -1);
    if (running) {
        double pct = v.bytes_total ? (double)v.bytes_done * 100.0 / (double)v.bytes_total : 0.0;
        if (pct > 100.0) pct = 100.0;
        cJSON_AddNumberToObject(o, "percent", (double)(int64_t)(pct * 10.0 + 0.5) / 10.0);
    } else {
        cJSON_AddNullToObject(o, "percent");
    }
    add_int_or_null(o, "rate_bps", running ? api_rate(a, s, &v) : -1);
    if (r) {
        add_str_or_null(o, "chip", r->chip ? r->chip->name : NULL);
        add_str_or_null(o, "mac", r->have_mac ? job_fmt_mac(r->mac, mac) : NULL);
        if (r->have_flash_id)
            snprintf(fid, sizeof fid, "%06x", (unsigned)(r->flash_id & 0xffffffu));
        add_str_or_null(o, "flash_id", r->have_flash_id ? fid : NULL);
    } else if (running) {
        cJSON_AddNullToObject(o, "chip");
        cJSON_AddNullToObject(o, "mac");
        cJSON_AddNullToObject(o, "flash_id");
    } else {
        add_str_or_null(o, "chip", s->have_last ? s->last.chip : NULL);
        add_str_or_null(o, "mac", s->have_last ? s->last.mac : NULL);
        add_str_or_null(o, "flash_id", s->have_last ? s->last.flash_id : NULL);
    }
    add_int_or_null(o, "elapsed_ms", running ? (int64_t)v.elapsed_ms : -1);
    cJSON_AddItemToObject(o, "recipe", api__recipe_ref(v.recipe));
    add_str_or_null(o, "recipe_error", v.recipe ? NULL : v.recipe_error);
    if (s->have_last) {
        const store_job_row_t *l = &s->last;
        est_class_t cls =
            l->error_class[0] ? est_class_from_name(l->error_class) : EST_CLASS__COUNT;
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "job_uuid", l->uuid);
        cJSON_AddNumberToObject(x, "seq", (double)l->seq);
        cJSON_AddStringToObject(x, "result", l->result);
        add_str_or_null(x, "error_class", l->error_class);
        add_str_or_null(x, "message", l->message);
        add_str_or_null(
            x, "hint",
            strcmp(l->result, "pass") != 0 && cls != EST_CLASS__COUNT ? est_class_hint(cls) : NULL);
        add_str_or_null(x, "mac", l->mac);
        cJSON_AddStringToObject(x, "finished_at", l->finished_at);
        cJSON_AddItemToObject(o, "last", x);
    } else {
        cJSON_AddNullToObject(o, "last");
    }
    x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "pass", (double)v.jobs_pass);
    cJSON_AddNumberToObject(x, "fail", (double)v.jobs_fail);
    cJSON_AddItemToObject(o, "counters", x);
    x = cJSON_CreateObject();
    cJSON_AddBoolToObject(x, "start",
                          (v.state == SLOT_ST_IDLE || v.state == SLOT_ST_WAITING) && v.recipe);
    cJSON_AddBoolToObject(x, "cancel",
                          v.state == SLOT_ST_WAITING || v.state == SLOT_ST_PROBING ||
                              v.state == SLOT_ST_RUNNING);
    cJSON_AddItemToObject(o, "actions", x);
    /* retry policy: the attempt of the current / last job of the allowed number */
    if (v.attempt)
        cJSON_AddNumberToObject(o, "attempt", v.attempt);
    else
        cJSON_AddNullToObject(o, "attempt");
    cJSON_AddNumberToObject(o, "attempts", v.attempts ? v.attempts : 1);
    cJSON_AddBoolToObject(o, "retrying", v.retrying);
    return o;
}

/* ---- Station ---- */

cJSON *api__station_json(api_t *a)
{
    cJSON *o = cJSON_CreateObject(), *arr, *cnt;
    char when[STORE_TIME_LEN];
    uint64_t tot[4] = {0}, running = 0;
    cJSON_AddStringToObject(o, "id", a->o.cfg->id);
    cJSON_AddStringToObject(o, "name", a->o.cfg->name);
    cJSON_AddStringToObject(o, "version", ESTN_VERSION);
    cJSON_AddStringToObject(o, "started_at", store_fmt_time(a->started_unix_ms, when));
    cJSON_AddNumberToObject(o, "uptime_ms", (double)((uv_hrtime() - a->started_hr) / 1000000u));
    cJSON_AddStringToObject(o, "boot_id", events_boot_id(a->ev));
    arr = cJSON_AddArrayToObject(o, "slots");
    for (size_t i = 0; i < a->n_slots; i++) {
        slot_view_t v;
        cJSON *s = cJSON_CreateObject();
        jobmgr_slot_view(a->o.mgr, i, &v);
        cJSON_AddStringToObject(s, "name", v.name);
        cJSON_AddItemToObject(s, "recipe", api__recipe_ref(v.recipe));
        cJSON_AddItemToArray(arr, s);
        running += v.state == SLOT_ST_RUNNING;
    }
    for (size_t i = 0; i < a->n_counts; i++)
        for (size_t r = 0; r < 4; r++)
            tot[r] += a->counts[i].n[r];
    cnt = cJSON_AddObjectToObject(o, "counters");
    cJSON_AddNumberToObject(cnt, "jobs_total", (double)(tot[0] + tot[1] + tot[2] + tot[3]));
    for (size_t r = 0; r < 4; r++)
        cJSON_AddNumberToObject(cnt, api_results[r], (double)tot[r]);
    cJSON_AddNumberToObject(cnt, "running", (double)running);
    cJSON_AddStringToObject(o, "read_access", a->o.cfg->http.read_token ? "token" : "open");
    if (a->o.database_id && *a->o.database_id)
        cJSON_AddStringToObject(o, "database_id", a->o.database_id);
    else
        cJSON_AddNullToObject(o, "database_id");
    if (a->alarm[0])
        cJSON_AddStringToObject(o, "alarm", a->alarm);
    else
        cJSON_AddNullToObject(o, "alarm");
    if (a->o.station_extra)
        a->o.station_extra(a->o.extra_data, o);
    return o;
}

/* ---- observers ---- */

void api_on_slot(api_t *a, size_t i, const slot_view_t *v)
{
    cJSON *d;
    if (i >= a->n_slots) return;
    if (v->state == SLOT_ST_RUNNING && v->job_uuid[0] &&
        strcmp(a->slots[i].rate_uuid, v->job_uuid) != 0)
        api_rate_reset(&a->slots[i], v->job_uuid);
    d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "slot", api__slot_json(a, i));
    events_publish(a->ev, "slot", d);
}

void api_on_progress(api_t *a, size_t i, const slot_view_t *v)
{
    api_slot_t *s;
    uint64_t now;
    cJSON *d;
    double pct;
    if (i >= a->n_slots || !v->job_uuid || !v->job_uuid[0]) return;
    s = &a->slots[i];
    api_rate_sample(a, s, v);
    now = uv_now(a->o.loop);
    if (s->progress_at && now - s->progress_at < API_PROGRESS_MIN_MS)
        return; /* coalesced: the next one carries the newer byte count */
    s->progress_at = now;
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "slot", v->name);
    cJSON_AddStringToObject(d, "job_uuid", v->job_uuid);
    cJSON_AddStringToObject(d, "stage", job_state_name(v->stage));
    cJSON_AddNumberToObject(d, "bytes_done", (double)v->bytes_done);
    cJSON_AddNumberToObject(d, "bytes_total", (double)v->bytes_total);
    pct = v->bytes_total ? (double)v->bytes_done * 100.0 / (double)v->bytes_total : 0.0;
    cJSON_AddNumberToObject(d, "percent",
                            (double)(int64_t)((pct > 100 ? 100 : pct) * 10 + 0.5) / 10);
    add_int_or_null(d, "rate_bps", api_rate(a, s, v));
    events_publish(a->ev, "progress", d);
}

void api_on_result(api_t *a, size_t i, const char *uuid, int64_t seq, const job_report_t *r)
{
    store_job_row_t *row = malloc(sizeof *row);
    cJSON *d;
    (void)seq;
    (void)r;
    if (!row) return;
    if (store_job_get(a->o.store, uuid, row) != 0) {
        api__log(a, "job %s: cannot read its row back for the event stream: %s", uuid,
                 store_errmsg(a->o.store));
        free(row);
        return;
    }
    if (row->final) api__count_add(a, row->slot, row->result, 1);
    if (!strcmp(row->result, "pass") && row->duration_ms >= 0) {
        static const double le[API_DURATION_BUCKETS] = {1, 2, 5, 10, 20, 30, 60, 120, 1e300};
        double s = (double)row->duration_ms / 1000.0;
        for (size_t b = 0; b < API_DURATION_BUCKETS; b++)
            if (s <= le[b]) a->dur_bucket[b]++;
        a->dur_count++;
        a->dur_sum_s += s;
    }
    if (i < a->n_slots) {
        a->slots[i].last = *row;
        a->slots[i].have_last = true;
    }
    d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "job", api__job_json(row, false));
    events_publish(a->ev, "job", d);
    free(row);
}

void api_on_log(api_t *a, size_t i, job_log_level_t lvl, const char *msg)
{
    slot_view_t v;
    cJSON *d;
    if (lvl < JOB_LOG_WARN || i >= a->n_slots) return;
    jobmgr_slot_view(a->o.mgr, i, &v);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "slot", v.name);
    add_str_or_null(d, "job_uuid", v.state == SLOT_ST_RUNNING ? v.job_uuid : NULL);
    cJSON_AddStringToObject(d, "level", lvl == JOB_LOG_WARN ? "warn" : "error");
    cJSON_AddStringToObject(d, "message", msg);
    events_publish(a->ev, "log", d);
}
