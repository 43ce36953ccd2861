/* SPDX-License-Identifier: MIT */
/* api_images.c — the image directory through the API: PUT /api/v1/images/{name} (checked
 * against its SHA-256, written to a temporary file, fsynced, linked in: never replaced) and
 * GET /api/v1/images (names, sizes, hashes). Hashing and writing run on a worker thread.
 * Must not: touch a file outside the image directory, or replace an image. */
#include "api_defer.h"
#include "api_routes.h"
#include "est_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define API_IMAGES_MAX 10000

static void api_work_image_put(api_defer_t *d);
static void api_finish_image_put(api_t *a, api_defer_t *d, api_resp_t *resp);
static void api_work_image_list(api_defer_t *d);

static bool api_image_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128 ||
        !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
          (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

void api__put_image(api_ctx_t *c)
{
    const char *sha = api__param(c, "sha256");
    api_defer_t *d;
    char low[65];
    static const char oct[] = "application/octet-stream";
    if (!api_image_name_ok(c->seg[3])) {
        api__problem(c->resp, 400, "bad_request",
                     "image names are one path component: a letter or digit, then up to 127 "
                     "letters, digits, '.', '_' or '-'");
        return;
    }
    if (!sha || strlen(sha) != 64) {
        api__problem(c->resp, 400, "bad_request",
                     "query parameter sha256 (64 hex digits, the body's SHA-256) is required");
        return;
    }
    for (size_t i = 0; i < 64; i++) {
        char ch = sha[i];
        if (ch >= 'A' && ch <= 'F') ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            api__problem(c->resp, 400, "bad_request", "query parameter sha256: 64 hex digits");
            return;
        }
        low[i] = ch;
    }
    low[64] = 0;
    if (!c->req->content_type || !(c->req->content_type_len >= sizeof oct - 1 &&
                                   !strncasecmp(c->req->content_type, oct, sizeof oct - 1))) {
        api__problem(c->resp, 415, "unsupported_media_type",
                     "send the image as application/octet-stream");
        return;
    }
    d = api__defer_new(c, api_work_image_put, api_finish_image_put, true);
    if (!d) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    snprintf(d->name, sizeof d->name, "%s", c->seg[3]);
    memcpy(d->sha, low, sizeof low);
    c->resp->defer = d;
}

void api__get_images(api_ctx_t *c)
{
    api_defer_t *d = api__defer_new(c, api_work_image_list, api__defer_finish_list, false);
    if (!d) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    c->resp->defer = d;
}

/* The existing file at `path` against the upload: 200 identical, 409 different. */
static void api_image_compare(api_defer_t *d, const char *path)
{
    char have[65];
    uint64_t size;
    int rc = api__hash_path(path, false, have, &size);
    if (rc != 0)
        api__defer_set(d, 409, "conflict",
                      "%s exists in the image directory and cannot be read as a file (%s)", d->name,
                      strerror(-rc));
    else if (strcmp(have, d->sha) != 0 || size != d->len)
        api__defer_set(d, 409, "conflict",
                      "a different file named %s is already in the image directory (images are "
                      "immutable: upload under a new name)",
                      d->name);
    else
        api__defer_set(d, 200, NULL, "identical");
}

static void api_work_image_put(api_defer_t *d)
{
    unsigned char md[32];
    unsigned int ml = sizeof md;
    char got[65], path[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    int fd, dfd;
    size_t off = 0;
    d->size = d->len;
    if (EVP_Digest(d->body, d->len, md, &ml, EVP_sha256(), NULL) != 1) {
        api__defer_set(d, 500, "internal", "cannot compute SHA-256");
        return;
    }
    est_hex(md, sizeof md, got);
    if (strcmp(got, d->sha) != 0) {
        api__defer_set(d, 422, "checksum_mismatch",
                      "the body's SHA-256 is %s, not the %s given: the upload was damaged or the "
                      "wrong file was sent",
                      got, d->sha);
        return;
    }
    if (mkdir(d->image_dir, 0755) != 0 && errno != EEXIST) {
        api__defer_set(d, 500, "internal", "cannot create the image directory %s: %s", d->image_dir,
                      strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/%s", d->image_dir, d->name);
    if (lstat(path, &st) == 0) {
        api_image_compare(d, path);
        return;
    }
    snprintf(tmp, sizeof tmp, "%s/.upload-XXXXXX", d->image_dir);
    fd = mkstemp(tmp);
    if (fd < 0) {
        api__defer_set(d, 500, "internal", "cannot write into %s: %s", d->image_dir,
                      strerror(errno));
        return;
    }
    while (off < d->len) {
        ssize_t n = write(fd, d->body + off, d->len - off);
        if (n <= 0) {
            api__defer_set(d, 500, "internal", "writing %s: %s", d->name,
                          n < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(tmp);
            return;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        api__defer_set(d, 500, "internal", "writing %s: %s", d->name, strerror(errno));
        unlink(tmp);
        return;
    }
    /* link() never replaces: a file that appeared meanwhile is compared instead */
    if (link(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST)
            api_image_compare(d, path);
        else
            api__defer_set(d, 500, "internal", "storing %s: %s", d->name, strerror(e));
        return;
    }
    unlink(tmp);
    dfd = open(d->image_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the new name survives a power cut */
        close(dfd);
    }
    api__defer_set(d, 201, NULL, "stored");
}

static int api_name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void api_work_image_list(api_defer_t *d)
{
    DIR *dir = opendir(d->image_dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    cJSON *arr;
    d->list = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(d->list, "images");
    if (!dir) {
        if (errno != ENOENT)
            api__defer_set(d, 500, "internal", "cannot read the image directory %s: %s",
                          d->image_dir, strerror(errno));
        else
            api__defer_set(d, 200, NULL, "empty");
        return;
    }
    while ((e = readdir(dir)) != NULL && n < API_IMAGES_MAX) {
        if (!api_image_name_ok(e->d_name)) continue; /* dot files, upload temporaries */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) break;
            names = nn;
            cap = nc;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(dir);
    if (n) qsort(names, n, sizeof *names, api_name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX], sha[65], when[STORE_TIME_LEN];
        struct stat st;
        uint64_t size;
        snprintf(path, sizeof path, "%s/%s", d->image_dir, names[i]);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            api__hash_path(path, false, sha, &size) == 0) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", names[i]);
            cJSON_AddNumberToObject(o, "size", (double)size);
            cJSON_AddStringToObject(o, "sha256", sha);
            cJSON_AddStringToObject(o, "modified_at",
                                    store_fmt_time((uint64_t)st.st_mtim.tv_sec * 1000u +
                                                       (uint64_t)st.st_mtim.tv_nsec / 1000000u,
                                                   when));
            cJSON_AddItemToArray(arr, o);
        }
        free(names[i]);
    }
    free(names);
    api__defer_set(d, 200, NULL, "listed");
}

static void api_finish_image_put(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    (void)a;
    if (d->status >= 400) {
        api__problem(resp, d->status, d->code, "%s", d->msg);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddNumberToObject(o, "size", (double)d->size);
        cJSON_AddStringToObject(o, "sha256", d->sha);
        api__json(resp, d->status, o);
    }
}
