/* SPDX-License-Identifier: MIT */
/* api_pools.c — the exactly-once pools through the API (docs/API.md "Pools", docs/DEVICE-DATA.md
 * "Pools and exactly-once allocation"): GET /api/v1/pools (counts, low-level warning), GET
 * /api/v1/pools/{name}/items, POST /api/v1/pools (a counter), POST /api/v1/pools/{name}/import
 * (a values CSV), POST /api/v1/pools/{name}/void. Every one runs on a worker with a connection
 * of its own (pool_db_open): a pool change commits with synchronous=FULL and never holds the
 * loop. */
#include "api_defer.h"
#include "api_routes.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_LIST, OP_ITEMS, OP_IMPORT, OP_VOID, OP_COUNTER } pool_op_t;

/* The defer's fields used here: name (pool), body (CSV or JSON), slot (state filter), since
 * (after + 1), until (limit), size (low_water + 1; 0 = keep), hash[0] (the operation). */

static void set_err(api_defer_t *d, int rc, const char *msg)
{
    switch (rc) {
    case POOL_EINPUT: api__defer_set(d, 400, "bad_request", "%s", msg); break;
    case POOL_ENOENT: api__defer_set(d, 404, "not_found", "%s", msg); break;
    case POOL_ESTATE: api__defer_set(d, 409, "conflict", "%s", msg); break;
    default: api__defer_set(d, 500, "internal", "%s", msg); break;
    }
}

static int list_cb(const pool_info_t *in, void *data)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", in->name);
    cJSON_AddStringToObject(o, "kind", in->kind);
    if (in->format && *in->format) cJSON_AddStringToObject(o, "format", in->format);
    cJSON_AddStringToObject(o, "created_at", in->created_at);
    cJSON_AddNumberToObject(o, "low_water", (double)in->low_water);
    cJSON_AddNumberToObject(o, "free", (double)in->n_free);
    cJSON_AddNumberToObject(o, "reserved", (double)in->n_reserved);
    cJSON_AddNumberToObject(o, "bound", (double)in->n_bound);
    cJSON_AddNumberToObject(o, "consumed", (double)in->n_consumed);
    cJSON_AddNumberToObject(o, "void", (double)in->n_void);
    cJSON_AddBoolToObject(o, "low", in->low);
    cJSON_AddItemToArray(data, o);
    return 0;
}

typedef struct {
    cJSON *arr;
    int64_t last;
} items_t;

static int item_cb(const pool_item_t *it, void *data)
{
    items_t *t = data;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "idx", (double)it->idx);
    cJSON_AddStringToObject(o, "label", it->label);
    cJSON *v = it->value[0] == '{' ? cJSON_Parse(it->value) : NULL;
    cJSON_AddItemToObject(o, "value", v ? v : cJSON_CreateString(it->value));
    cJSON_AddStringToObject(o, "state", it->state);
    if (it->slot[0]) cJSON_AddStringToObject(o, "slot", it->slot);
    if (it->job_uuid[0]) cJSON_AddStringToObject(o, "job", it->job_uuid);
    if (it->mac[0]) cJSON_AddStringToObject(o, "mac", it->mac);
    cJSON_AddStringToObject(o, "changed_at", it->changed_at);
    cJSON_AddItemToArray(t->arr, o);
    t->last = it->idx;
    return 0;
}

static bool pool_exists(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pools WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    return found;
}

static void work_items(api_defer_t *d, sqlite3 *db)
{
    char err[600];
    if (!pool_exists(db, d->name)) {
        api__defer_set(d, 404, "not_found", "no pool `%s`", d->name);
        return;
    }
    items_t t = {cJSON_CreateArray(), -1};
    int n = pool_items(db, d->name, d->slot[0] ? d->slot : NULL, (int64_t)d->since - 1,
                       (size_t)d->until, item_cb, &t, err, sizeof err);
    if (n < 0) {
        cJSON_Delete(t.arr);
        set_err(d, n, err);
        return;
    }
    d->list = cJSON_CreateObject();
    cJSON_AddStringToObject(d->list, "pool", d->name);
    cJSON_AddItemToObject(d->list, "items", t.arr);
    if ((uint64_t)n == d->until)
        cJSON_AddNumberToObject(d->list, "next_after", (double)t.last);
    else
        cJSON_AddNullToObject(d->list, "next_after");
    api__defer_set(d, 200, NULL, "ok");
}

static void work_change(api_defer_t *d, sqlite3 *db, pool_op_t op)
{
    char err[600];
    int rc;
    int64_t added = 0;
    cJSON *in = op == OP_IMPORT ? NULL : cJSON_Parse(d->body);
    if (op != OP_IMPORT && !cJSON_IsObject(in)) {
        cJSON_Delete(in);
        api__defer_set(d, 400, "bad_request", "the body must be a JSON object");
        return;
    }
    if (op == OP_IMPORT) {
        rc = pool_import_csv(db, d->name, d->body, d->len, (int64_t)d->size - 1, &added, err,
                             sizeof err);
    } else if (op == OP_VOID) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(in, "label"),
                    *r = cJSON_GetObjectItemCaseSensitive(in, "reason");
        if (!cJSON_IsString(l) || (r && !cJSON_IsString(r))) {
            snprintf(err, sizeof err, "give \"label\" (and optionally \"reason\") as strings");
            rc = POOL_EINPUT;
        } else {
            rc = pool_void(db, d->name, l->valuestring, r ? r->valuestring : NULL, err, sizeof err);
            if (!rc) {
                d->list = cJSON_CreateObject();
                cJSON_AddStringToObject(d->list, "label", l->valuestring);
                cJSON_AddStringToObject(d->list, "state", "void");
            }
        }
    } else {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(in, "name"),
                    *f = cJSON_GetObjectItemCaseSensitive(in, "format"),
                    *s = cJSON_GetObjectItemCaseSensitive(in, "start"),
                    *st = cJSON_GetObjectItemCaseSensitive(in, "step");
        if (!cJSON_IsString(nm) || !cJSON_IsString(f) || (s && !cJSON_IsNumber(s)) ||
            (st && !cJSON_IsNumber(st)) || (s && s->valuedouble < 0) ||
            (st && st->valuedouble < 1) || (s && s->valuedouble > 9007199254740991.0) ||
            (st && st->valuedouble > 9007199254740991.0)) {
            snprintf(err, sizeof err,
                     "give \"name\" and \"format\" (strings), \"start\" >= 0 and \"step\" >= 1 "
                     "(integers)");
            rc = POOL_EINPUT;
        } else {
            snprintf(d->name, sizeof d->name, "%s", nm->valuestring);
            rc = pool_create_counter(db, nm->valuestring, f->valuestring,
                                     s ? (uint64_t)s->valuedouble : 0,
                                     st ? (uint64_t)st->valuedouble : 1, err, sizeof err);
        }
    }
    cJSON_Delete(in);
    if (rc) {
        set_err(d, rc, err);
        return;
    }
    if (!d->list) d->list = cJSON_CreateObject();
    cJSON_AddStringToObject(d->list, "pool", d->name);
    if (op == OP_IMPORT) cJSON_AddNumberToObject(d->list, "added", (double)added);
    api__defer_set(d, op == OP_COUNTER ? 201 : 200, NULL, "ok");
}

static void work_pools(api_defer_t *d)
{
    sqlite3 *db = NULL;
    char err[600];
    pool_op_t op = (pool_op_t)d->hash[0];
    if (pool_db_open(d->db_path, &db, err, sizeof err)) {
        api__defer_set(d, 500, "internal", "database: %s", err);
        return;
    }
    if (op == OP_LIST) {
        cJSON *arr = cJSON_CreateArray();
        int n = pool_list(db, list_cb, arr, err, sizeof err);
        if (n < 0) {
            cJSON_Delete(arr);
            set_err(d, n, err);
        } else {
            d->list = cJSON_CreateObject();
            cJSON_AddItemToObject(d->list, "pools", arr);
            api__defer_set(d, 200, NULL, "ok");
        }
    } else if (op == OP_ITEMS) {
        work_items(d, db);
    } else {
        work_change(d, db, op);
    }
    sqlite3_close(db);
}

static void finish_pools(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    (void)a;
    if (d->status >= 400) {
        api__problem(resp, d->status, d->code, "%s", d->msg);
    } else {
        api__json(resp, d->status, d->list);
        d->list = NULL;
    }
}

/* Queue the operation; `name` the pool (may be NULL). */
static api_defer_t *pools_defer(api_ctx_t *c, pool_op_t op, const char *name, bool body)
{
    api_defer_t *d = api__defer_new(c, work_pools, finish_pools, body);
    if (!d) return NULL;
    d->hash[0] = (char)op;
    d->db_path = strdup(c->a->o.cfg->database);
    if (name) snprintf(d->name, sizeof d->name, "%s", name);
    if (!d->db_path) {
        api__defer_free(d);
        return NULL;
    }
    c->resp->defer = d;
    return d;
}

static void pools_queue(api_ctx_t *c, pool_op_t op, const char *name, bool body)
{
    if (!pools_defer(c, op, name, body)) api__problem(c->resp, 500, "internal", "out of memory");
}

void api__get_pools(api_ctx_t *c)
{
    pools_queue(c, OP_LIST, NULL, false);
}

void api__post_pool(api_ctx_t *c)
{
    pools_queue(c, OP_COUNTER, NULL, true);
}

void api__get_pool_items(api_ctx_t *c)
{
    int64_t after = -1, limit = 100;
    if (api__param_int(c, "after", -1, INT64_MAX - 1, &after) < 0 ||
        api__param_int(c, "limit", 1, 1000, &limit) < 0)
        return;
    const char *state = api__param(c, "state");
    static const char *const states[] = {"free", "reserved", "bound", "consumed", "void"};
    bool ok = !state;
    for (size_t i = 0; state && i < 5; i++)
        ok |= strcmp(state, states[i]) == 0;
    if (!ok) {
        api__problem(c->resp, 400, "bad_request",
                     "state is one of free, reserved, bound, consumed, void");
        return;
    }
    api_defer_t *d = pools_defer(c, OP_ITEMS, c->seg[3], false);
    if (!d) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    if (state) snprintf(d->slot, sizeof d->slot, "%s", state);
    d->since = (uint64_t)(after + 1);
    d->until = (uint64_t)limit;
}

void api__post_pool_import(api_ctx_t *c)
{
    int64_t low = -1;
    if (api__param_int(c, "low_water", 0, INT64_MAX - 1, &low) < 0) return;
    api_defer_t *d = pools_defer(c, OP_IMPORT, c->seg[3], true);
    if (!d)
        api__problem(c->resp, 500, "internal", "out of memory");
    else
        d->size = (uint64_t)(low + 1);
}

void api__post_pool_void(api_ctx_t *c)
{
    pools_queue(c, OP_VOID, c->seg[3], true);
}
