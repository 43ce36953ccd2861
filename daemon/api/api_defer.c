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
#include <pthread.h>
#include <sys/stat.h>
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

/* Hashes of files already read, by identity (device, inode, size, modification time in ns):
 * GET /api/v1/images and a slot's recipe check would otherwise read every image again for
 * each request. A file that changes gets a new mtime (or size, or inode when replaced), so a
 * stale entry is never matched. Shared by the worker threads; bounded, oldest entry replaced. */
#define API_HASH_CACHE 1024
typedef struct api_hash_entry_s {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char sha[65];
    bool used;
} api_hash_entry_t;
static api_hash_entry_t api_hash_cache[API_HASH_CACHE];
static size_t api_hash_next;
static pthread_mutex_t api_hash_mu = PTHREAD_MUTEX_INITIALIZER;

static bool api_hash_same(const api_hash_entry_t *e, const struct stat *st)
{
    return e->used && e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool api_hash_lookup(const struct stat *st, char out[65])
{
    bool hit = false;
    pthread_mutex_lock(&api_hash_mu);
    for (size_t i = 0; i < API_HASH_CACHE && !hit; i++)
        if (api_hash_same(&api_hash_cache[i], st)) {
            memcpy(out, api_hash_cache[i].sha, 65);
            hit = true;
        }
    pthread_mutex_unlock(&api_hash_mu);
    return hit;
}

static void api_hash_store(const struct stat *st, const char sha[65])
{
    api_hash_entry_t *e;
    pthread_mutex_lock(&api_hash_mu);
    e = &api_hash_cache[api_hash_next++ % API_HASH_CACHE];
    *e = (api_hash_entry_t){st->st_dev, st->st_ino, st->st_size, st->st_mtim, "", true};
    memcpy(e->sha, sha, 65);
    pthread_mutex_unlock(&api_hash_mu);
}

int api__hash_path(const char *path, bool follow, char out[65], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)), rc;
    struct stat before, after;
    bool cacheable;
    if (fd < 0) return -errno;
    cacheable = fstat(fd, &before) == 0 && S_ISREG(before.st_mode);
    if (cacheable && api_hash_lookup(&before, out)) {
        *size = (uint64_t)before.st_size;
        close(fd);
        return 0;
    }
    rc = api_hash_fd(fd, out, size);
    /* cached only when the file did not change while it was read */
    if (rc == 0 && cacheable && fstat(fd, &after) == 0 &&
        api_hash_same(&(api_hash_entry_t){before.st_dev, before.st_ino, before.st_size,
                                          before.st_mtim, "", true},
                      &after))
        api_hash_store(&after, out);
    close(fd);
    return rc;
}
