/* SPDX-License-Identifier: MIT */
/* api_defer.h — work an endpoint hands to a worker thread (api.h: api_resp_t.defer): the
 * endpoint copies its inputs into an api_defer_t with a work function (worker thread: touches
 * only the defer) and a finish function (the loop: fills the response in), plus the
 * worker-side helpers several endpoints share (file hashing). Built on api_int.h only. */
#ifndef API_DEFER_H
#define API_DEFER_H

#include "api_int.h"

typedef void (*api_defer_work_fn)(api_defer_t *d);
typedef void (*api_defer_finish_fn)(api_t *a, api_defer_t *d, api_resp_t *resp);

struct api_defer_s {
    api_defer_work_fn work;     /* on a worker thread: only the fields below */
    api_defer_finish_fn finish; /* on the loop: fills the response */
    /* inputs (copies: the request may be gone when the worker runs) */
    char *body;
    size_t len;
    char *image_dir;
    char name[129];
    char sha[65];
    char slot[CONFIG_NAME_MAX + 1];
    char hash[65];
    size_t n_files; /* slot verify: resolved paths, their sha256 ("" = a stub: readable) */
    char *files[PLAN_MAX_IMAGES + 1];
    char file_sha[PLAN_MAX_IMAGES + 1][65];
    char file_path[PLAN_MAX_IMAGES + 1][40]; /* JSON path for the error */
    /* statistics */
    char *db_path;
    uint64_t since, until;
    char (*names)[65];
    size_t n_names;
    /* outputs */
    int rc;
    recipe_t *recipe;
    recipe_err_t err;
    int status;
    const char *code;
    char msg[600];
    uint64_t size;
    cJSON *list;
};

/* A defer for request `c` (copies the image directory, and the body when `copy_body`). NULL:
 * out of memory. */
api_defer_t *api__defer_new(api_ctx_t *c, api_defer_work_fn work, api_defer_finish_fn finish,
                            bool copy_body);
void api__defer_free(api_defer_t *d);
/* The outcome (worker side): status, problem code (NULL when it succeeded) and message. */
void api__defer_set(api_defer_t *d, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void api__defer_work(api_defer_t *d);
void api__defer_finish(api_t *a, api_defer_t *d, api_resp_t *resp);
/* A finish for work that leaves d->status and d->list: the list as JSON, or the problem. */
void api__defer_finish_list(api_t *a, api_defer_t *d, api_resp_t *resp);
/* SHA-256 (lower-case hex) and size of the file at `path`; 0 or -errno (worker thread). A file
 * hashed before and unchanged since (same device, inode, size and mtime) is not read again. */
int api__hash_path(const char *path, bool follow, char out[65], uint64_t *size);

#endif
