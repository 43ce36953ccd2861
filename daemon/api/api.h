/* SPDX-License-Identifier: MIT */
/* api.h — the HTTP API of docs/API.md without sockets: one parsed request in, one response out
 * (routing, roles, limits, JSON and problem+json, CSV, static dashboard files), plus the
 * observers that turn the job manager's callbacks into live events. The h2o glue (http.c), the
 * unit tests and the fuzzer all drive api_handle().
 * Owns: what every endpoint answers. Must not: touch sockets or h2o, block the loop (slow work is
 * handed back as an api_defer_t for a worker thread), or log a token. */
#ifndef API_H
#define API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "events.h"
#include "jobmgr.h"
#include "store.h"

typedef struct api_s api_t;
typedef struct api_stream_s api_stream_t;
typedef struct api_defer_s api_defer_t;

typedef struct api_opts_s {
    uv_loop_t *loop;          /* uv_now() for rates and coalescing */
    const station_cfg_t *cfg; /* id, name, slots, image_dir, http limits; outlives the api */
    store_t *store;
    jobmgr_t *mgr;
    const auth_t *auth;   /* NULL: no token file (writes impossible) */
    const char *web_root; /* NULL: no dashboard files (404) */
    const char *boot_id;  /* NULL: random (events_new) */
    /* The database's id (schema/006_database_id.sql), in the station and every jobs page;
     * NULL = null. Outlives the api. */
    const char *database_id;
    /* Log lines (slot recipe choices that no longer load, ...); NULL = silent. */
    void (*log_cb)(void *data, const char *line);
    void *log_data;
    /* What modules outside the API (the CFX endpoint, docs/CFX.md) add: members of the
     * GET /api/v1/station object, and Prometheus text for /metrics (written into buf, its
     * length returned). NULL = nothing. Called on the loop. */
    void (*station_extra)(void *data, struct cJSON *station);
    size_t (*metrics_extra)(void *data, char *buf, size_t cap);
    void *extra_data;
} api_opts_t;

/* Create the API: counters and each slot's last job from the store, and the slot recipes chosen
 * through the API applied to the job manager. 0, or a negative code with `err` filled. */
int api_new(const api_opts_t *o, api_t **out, char *err, size_t errlen);
void api_free(api_t *a);
events_t *api_events(api_t *a);

/* One request as the HTTP layer parsed it. Strings are not NUL-terminated; NULL = absent. */
typedef struct api_req_s {
    const char *method;
    size_t method_len;
    const char *target; /* the request target as sent: "/api/v1/jobs?after=3" */
    size_t target_len;
    const char *authorization; /* Authorization header value */
    size_t authorization_len;
    const char *content_type;
    size_t content_type_len;
    const char *last_event_id; /* Last-Event-ID header value */
    size_t last_event_id_len;
    const char *body; /* NULL = none */
    size_t body_len;
    size_t header_bytes; /* request line + headers, for max_header_bytes (0 = not checked) */
} api_req_t;

/* The answer. Exactly one of these follows the headers: `body`; `body` then the chunks of
 * `stream` (api_stream_next); the events of `events` (an attached SSE client: the caller sends
 * its pending bytes and detaches it when the connection ends); or, when `defer` is set, nothing
 * yet: run api_defer_work(defer) on a worker thread, then api_defer_finish() on the loop, which
 * fills this response (status and body) in. */
typedef struct api_resp_s {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'ed */
    size_t body_len;
    const char *allow;         /* 405: the Allow header */
    bool www_authenticate;     /* 401: WWW-Authenticate: Bearer realm="espstation" */
    const char *cache_control; /* static string or NULL */
    const char *role;          /* the caller's role name, for access logs */
    api_stream_t *stream;
    events_client_t *events;
    api_defer_t *defer;
} api_resp_t;

/* The station's alarm (GET /api/v1/station "alarm"; NULL or "" clears it): a condition that
 * stops the station from taking jobs, such as its database file replaced under it. */
void api_set_alarm(api_t *a, const char *text);

/* What the HTTP layer decides from the request line and the Authorization header alone, before
 * it reads a body (docs/API.md "Limits"): the largest body it may have (max_upload_bytes only
 * for an upload route the caller's token may use, else max_body_bytes), and whether the caller
 * is an operator or engineer (the reserved connections serve only those). Body fields unused. */
typedef struct api_early_s {
    uint64_t body_limit;
    bool privileged;
} api_early_t;
void api_early(api_t *a, const api_req_t *req, api_early_t *out);

/* Answer one request. Never fails: errors are problem+json responses. */
void api_handle(api_t *a, const api_req_t *req, api_resp_t *resp);
/* The next chunk of a streamed body (malloc'ed into *buf): 1 more follow, 0 this was the last
 * (possibly empty), < 0 error (end the response abruptly). Each call does a bounded amount of
 * work (a few hundred rows). */
int api_stream_next(api_t *a, api_stream_t *s, char **buf, size_t *len);
/* Thread-safe part of a deferred request: touches only the defer's own copies. */
void api_defer_work(api_defer_t *d);
/* On the loop, after api_defer_work: fills resp (status, body) and frees resp->defer. */
void api_defer_finish(api_t *a, api_resp_t *resp);
/* Free what a response holds (body, stream, defer; an events client is detached too). */
void api_resp_free(api_resp_t *resp);
/* For tests and the fuzzer: api_handle, deferred work run inline, a stream collected into body. */
void api_handle_sync(api_t *a, const api_req_t *req, api_resp_t *resp);

/* The reason phrase of a status ("Not Found"). */
const char *api_status_text(int status);
/* Problem+json for errors the HTTP layer answers itself (too many connections, ...). */
char *api_problem_text(int status, const char *code, const char *detail, size_t *len);
/* Count a response by status for /metrics (the HTTP layer calls it for every response). */
void api_count_status(api_t *a, int status);

/* Job manager observers (serve wires them). */
void api_on_slot(api_t *a, size_t slot, const slot_view_t *v);
void api_on_progress(api_t *a, size_t slot, const slot_view_t *v);
void api_on_result(api_t *a, size_t slot, const char *uuid, int64_t seq, const job_report_t *r);
void api_on_log(api_t *a, size_t slot, job_log_level_t lvl, const char *msg);

/* Helpers shared with tests: "aa:bb:cc:dd:ee:ff" from any accepted spelling (':' or '-'
 * separators or none, any case); ISO-8601 text to unix ms. Both false when malformed. */
bool api_parse_mac(const char *s, size_t len, char out[18]);
bool api_parse_time(const char *s, size_t len, uint64_t *unix_ms);

#endif
