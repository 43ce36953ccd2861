/* SPDX-License-Identifier: MIT */
/* api_live.c — the GET endpoints of the live model: the station, the vocabulary, the caller's
 * role, the slots, one slot, and the event stream (docs/API.md). Built on api_model.h. */
#include "api_model.h"
#include "api_routes.h"
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api__get_station(api_ctx_t *c)
{
    api__json(c->resp, 200, api__station_json(c->a));
}

/* What the caller's token may do, so that a dashboard can show the right controls without
 * trying a change. An Authorization header with a token the file does not list is a 401: a
 * sign-in with a mistyped token must fail visibly. */
void api__get_auth(api_ctx_t *c)
{
    const api_t *a = c->a;
    cJSON *o, *may;
    bool read;
    if (c->req->authorization && c->role == AUTH_ROLE_NONE) {
        api__problem(c->resp, 401, "unauthorized", "unknown token");
        return;
    }
    read = !a->o.cfg->http.read_token || auth_allows(c->role, AUTH_PERM_READ);
    o = cJSON_CreateObject();
    if (c->role == AUTH_ROLE_NONE)
        cJSON_AddNullToObject(o, "role");
    else
        cJSON_AddStringToObject(o, "role", auth_role_name(c->role));
    cJSON_AddStringToObject(o, "read_access", a->o.cfg->http.read_token ? "token" : "open");
    cJSON_AddBoolToObject(o, "tokens_configured", a->o.auth != NULL);
    may = cJSON_AddObjectToObject(o, "may");
    cJSON_AddBoolToObject(may, "read", read);
    cJSON_AddBoolToObject(may, "export", a->o.auth && auth_allows(c->role, AUTH_PERM_EXPORT));
    cJSON_AddBoolToObject(may, "operate", a->o.auth && auth_allows(c->role, AUTH_PERM_OPERATE));
    cJSON_AddBoolToObject(may, "engineer",
                          a->o.auth && auth_allows(c->role, AUTH_PERM_ENGINEER));
    api__json(c->resp, 200, o);
}

void api__get_slots(api_ctx_t *c)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "slots");
    for (size_t i = 0; i < c->a->n_slots; i++)
        cJSON_AddItemToArray(arr, api__slot_json(c->a, i));
    api__json(c->resp, 200, o);
}

void api__get_slot(api_ctx_t *c)
{
    int i = jobmgr_slot_index(c->a->o.mgr, c->seg[3]);
    if (i < 0) {
        api__problem(c->resp, 404, "not_found", "no slot named \"%.64s\"", c->seg[3]);
        return;
    }
    api__json(c->resp, 200, api__slot_json(c->a, (size_t)i));
}

void api__get_events(api_ctx_t *c)
{
    const char *q = api__param(c, "last_event_id");
    char boot[EVENTS_BOOT_ID_LEN];
    uint64_t seq;
    events_client_t *ec;
    if (q && !events_parse_id(q, strlen(q), boot, &seq)) {
        api__problem(c->resp, 400, "bad_request",
                     "last_event_id: expected <boot_id>:<seq> as sent in the events' id field");
        return;
    }
    /* the query parameter wins over the header (a page reload keeps its URL) */
    ec = q ? events_attach(c->a->ev, q, strlen(q), api__station_json(c->a))
           : events_attach(c->a->ev, c->req->last_event_id, c->req->last_event_id_len,
                           api__station_json(c->a));
    if (!ec) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    c->resp->status = 200;
    c->resp->content_type = "text/event-stream; charset=utf-8";
    c->resp->cache_control = "no-cache";
    c->resp->events = ec;
}

/* The station's words (daemon/station/vocab.c): what the dashboard shows for states, classes
 * and chips, so it keeps no copy of its own. */
void api__get_vocabulary(api_ctx_t *c)
{
    cJSON *v = vocab_json();
    if (!v) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    api__json(c->resp, 200, v);
}
