/* SPDX-License-Identifier: MIT */
/* api_stats.c — GET /api/v1/stats: pass/fail counts, durations and failure classes per slot and
 * for the station over a time window, computed on a worker thread with its own query-only
 * database connection (a long window never holds the loop). */
#include "api_defer.h"
#include "api_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void api_work_stats(api_defer_t *d);

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
static cJSON *api_stats_build(store_t *db, uint64_t since, uint64_t until, const char (*names)[65],
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

static api_defer_t *api_defer_stats(api_ctx_t *c, uint64_t since, uint64_t until)
{
    api_defer_t *d = api__defer_new(c, api_work_stats, api__defer_finish_list, false);
    if (!d) return NULL;
    d->since = since;
    d->until = until;
    d->db_path = strdup(c->a->o.cfg->database);
    d->names = calloc(c->a->n_slots ? c->a->n_slots : 1, sizeof *d->names);
    if (!d->db_path || !d->names) {
        api__defer_free(d);
        return NULL;
    }
    for (size_t i = 0; i < c->a->n_slots; i++) {
        slot_view_t v;
        jobmgr_slot_view(c->a->o.mgr, i, &v);
        snprintf(d->names[i], sizeof d->names[i], "%s", v.name);
    }
    d->n_names = c->a->n_slots;
    return d;
}

static void api_work_stats(api_defer_t *d)
{
    store_t *db = NULL;
    if (store_open_query(d->db_path, &db) != 0) {
        api__defer_set(d, 500, "internal", "database: %s", store_errmsg(db));
    } else {
        d->list = api_stats_build(db, d->since, d->until, (const char(*)[65])d->names, d->n_names,
                                   d->msg, sizeof d->msg);
        if (d->list) {
            api__defer_set(d, 200, NULL, "computed");
        } else {
            d->status = 500; /* msg says why */
            d->code = "internal";
        }
    }
    store_close(db);
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
    c->resp->defer = api_defer_stats(c, since, until);
    if (!c->resp->defer) api__problem(c->resp, 500, "internal", "out of memory");
}
