/* SPDX-License-Identifier: MIT */
/* api_int.h — the bottom layer of the API files: the api object, per-slot live data (rates, the
 * last job, progress coalescing), the parsed request and the helpers that build responses
 * (api_util.c). The layers above it: api_defer.h (work off the loop), api_model.h (JSON of the
 * model), api_routes.h (the endpoints, used only by the router in api.c). A file includes the
 * headers of its own layer and below, never above, so the api files do not call in a circle.
 * Must not: be included outside daemon/api/api*.c. */
#ifndef API_INT_H
#define API_INT_H

#include <cJSON.h>

#include "api.h"

#define API_RATE_SAMPLES 32
#define API_RATE_WINDOW_MS 2000
#define API_PROGRESS_MIN_MS 250 /* progress events: at most 4/s per slot */
#define API_MAX_PARAMS 32
#define API_MAX_SEGMENTS 8
#define API_DEVICE_JOBS_MAX 1000
#define API_EVENTS_PER_JOB_MAX 5000
#define API_STATIC_MAX (16u * 1024u * 1024u)

typedef struct api_slot_s {
    /* bytes written over time, for rate_bps */
    uint64_t rate_t[API_RATE_SAMPLES], rate_b[API_RATE_SAMPLES];
    unsigned rate_n, rate_i;
    char rate_uuid[STORE_UUID_LEN];
    uint64_t progress_at; /* uv_now of the last progress event */
    bool have_last;
    store_job_row_t last; /* last finished job (from the store) */
} api_slot_t;

/* Finished-job counts per slot name, final rows (docs/API.md: boards, not attempts). */
typedef struct api_count_s {
    char slot[64];
    uint64_t n[4]; /* pass, fail, cancelled, interrupted */
} api_count_t;

#define API_DURATION_BUCKETS 9
struct api_s {
    api_opts_t o;
    events_t *ev;
    api_slot_t *slots;
    size_t n_slots;
    api_count_t *counts;
    size_t n_counts;
    uint64_t started_unix_ms, started_hr;
    /* passed-job duration histogram since start (seconds buckets of docs/API.md) */
    uint64_t dur_bucket[API_DURATION_BUCKETS + 1];
    uint64_t dur_count;
    double dur_sum_s;
    /* responses by status */
    uint64_t status_n[600];
    char image_dir_real[4096]; /* "" when the image directory does not exist yet */
    char alarm[512];           /* api_set_alarm; "" = none */
};

/* A request split up: decoded path segments and query parameters. */
typedef struct api_param_s {
    char *key, *val;
} api_param_t;

typedef struct api_ctx_s {
    api_t *a;
    const api_req_t *req;
    api_resp_t *resp;
    char *path;            /* decoded, NUL-terminated, split into seg[] in place */
    char *full;            /* the decoded path, whole */
    bool slash_in_segment; /* a segment held "%2F" */
    bool too_deep;         /* more segments than any route has */
    char *seg[API_MAX_SEGMENTS];
    size_t n_seg;
    api_param_t params[API_MAX_PARAMS];
    size_t n_params;
    auth_role_t role;
} api_ctx_t;

/* ---- responses (api_util.c) ---- */
void api__problem(api_resp_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 200-style JSON body from `j` (deleted). */
void api__json(api_resp_t *r, int status, cJSON *j);
/* Query parameter by name (first one), NULL if absent. */
const char *api__param(const api_ctx_t *c, const char *key);
/* Small parsers for query values: 0 ok (or absent: *out untouched), -1 malformed (a 400 has
 * been put in c->resp). */
int api__param_int(api_ctx_t *c, const char *key, int64_t lo, int64_t hi, int64_t *out);
int api__param_time(api_ctx_t *c, const char *key, uint64_t *out, bool *present);
void api__log(api_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Split c->req->target into c->path, c->seg and c->params; false when malformed. */
bool api__parse_target(api_ctx_t *c);

#endif
