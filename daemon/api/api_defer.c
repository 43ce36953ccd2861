/* SPDX-License-Identifier: MIT */
/* api_defer.c — deferred work (api_defer.h): creation, the outcome, running the work and the
 * finish, and file hashing for the workers. */
#include "api_defer.h"
#include "est_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

void api__defer_set(api_defer_t *d, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    d->status = status;
    d->code = code;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

api_defer_t *api__defer_new(api_ctx_t *c, api_defer_work_fn work, api_defer_finish_fn finish,
                            bool copy_body)
{
    api_defer_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->work = work;
    d->finish = finish;
    d->image_dir = strdup(c->a->o.cfg->image_dir);
    if (copy_body) {
        d->len = c->req->body_len;
        d->body = malloc(d->len + 1);
        if (d->body) {
            if (d->len) memcpy(d->body, c->req->body, d->len);
            d->body[d->len] = 0;
        }
    }
    if (!d->image_dir || (copy_body && !d->body)) {
        api__defer_free(d);
        return NULL;
    }
    return d;
}

void api__defer_free(api_defer_t *d)
{
    if (!d) return;
    free(d->body);
    free(d->image_dir);
    free(d->db_path);
    free(d->names);
    for (size_t i = 0; i < d->n_files; i++)
        free(d->files[i]);
    if (d->recipe) {
        recipe_free(d->recipe);
        free(d->recipe);
    }
    cJSON_Delete(d->list);
    free(d);
}

void api__defer_work(api_defer_t *d)
{
    d->work(d);
}

void api__defer_finish(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    d->finish(a, d, resp);
}

void api__defer_finish_list(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    (void)a;
    if (d->status >= 400) {
        api__problem(resp, d->status, d->code, "%s", d->msg);
    } else {
        api__json(resp, 200, d->list);
        d->list = NULL;
    }
}

/* SHA-256 of an open file (worker thread). */
static int api_hash_fd(int fd, char out[65], uint64_t *size)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32], *buf = malloc(1 << 20);
    unsigned int ml = sizeof md;
    ssize_t n;
    int rc = 0;
    *size = 0;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = -ENOMEM;
        goto out;
    }
    while ((n = read(fd, buf, 1 << 20)) > 0) {
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    if (n < 0)
        rc = -errno;
    else if (EVP_DigestFinal_ex(ctx, md, &ml) != 1)
        rc = -EIO;
    else
        est_hex(md, sizeof md, out);
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

int api__hash_path(const char *path, bool follow, char out[65], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)), rc;
    if (fd < 0) return -errno;
    rc = api_hash_fd(fd, out, size);
    close(fd);
    return rc;
}
