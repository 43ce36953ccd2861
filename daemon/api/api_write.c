/* SPDX-License-Identifier: MIT */
/* api_write.c — the API's writes: start/cancel a slot, choose a slot's recipe, store a posted
 * recipe; plus the stored slot recipe choices applied at start (images: api_images.c).
 * Image and recipe paths are confined to the image directory (no absolute paths, no "..", no
 * symlink leading out). Loading a recipe (hashing its images), hashing an upload and writing it
 * run on a worker thread (api_defer_t) so a running job never waits for them.
 * Must not: let a worker touch the api, the store or the job manager (only the defer's copies). */
#include "api_defer.h"
#include "api_model.h"
#include "api_routes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static bool api_is_json(const api_req_t *req)
{
    static const char j[] = "application/json";
    size_t n = sizeof j - 1;
    return req->content_type && req->content_type_len >= n &&
           !strncasecmp(req->content_type, j, n) &&
           (req->content_type_len == n || req->content_type[n] == ';' ||
            req->content_type[n] == ' ');
}

static int api_slot_arg(api_ctx_t *c)
{
    int i = jobmgr_slot_index(c->a->o.mgr, c->seg[3]);
    if (i < 0) api__problem(c->resp, 404, "not_found", "no slot named \"%.64s\"", c->seg[3]);
    return i;
}

static void api_slot_reply(api_t *a, api_resp_t *resp, int status, size_t i)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "slot", api__slot_json(a, i));
    api__json(resp, status, o);
}

/* Publish the slot's new state (its recipe changed without a job manager callback). */
static void api_slot_changed(api_t *a, size_t i)
{
    slot_view_t v;
    jobmgr_slot_view(a->o.mgr, i, &v);
    api_on_slot(a, i, &v);
}

/* ---- start / cancel ---- */

void api__post_start(api_ctx_t *c)
{
    slot_view_t v;
    int i = api_slot_arg(c), rc;
    if (i < 0) return;
    rc = jobmgr_slot_start(c->a->o.mgr, (size_t)i);
    jobmgr_slot_view(c->a->o.mgr, (size_t)i, &v);
    switch (rc) {
    case 0: api_slot_reply(c->a, c->resp, 202, (size_t)i); return;
    case UV_EBUSY:
        api__problem(c->resp, 409, "slot_busy", "slot %s is running job %s: cancel it or wait",
                     v.name, v.job_uuid);
        return;
    case UV_EAGAIN:
        api__problem(c->resp, 409, "slot_busy",
                     "slot %s is probing its port for a board; it starts a job by itself when "
                     "one is there",
                     v.name);
        return;
    case UV_ENOENT:
        api__problem(c->resp, 409, "no_recipe", "slot %s has no recipe: %s", v.name,
                     v.recipe_error && *v.recipe_error ? v.recipe_error : "none configured");
        return;
    case UV_ECANCELED: api__problem(c->resp, 409, "conflict", "the station is stopping"); return;
    default:
        api__problem(c->resp, 500, "internal", "cannot start a job on slot %s: %s", v.name,
                     est_strerror(rc));
        return;
    }
}

void api__post_cancel(api_ctx_t *c)
{
    slot_view_t v;
    int i = api_slot_arg(c), rc;
    if (i < 0) return;
    jobmgr_slot_view(c->a->o.mgr, (size_t)i, &v);
    if (v.state == SLOT_ST_IDLE || v.state == SLOT_ST_STOPPED) {
        api__problem(c->resp, 409, "conflict", "nothing runs or waits on slot %s (it is %s)",
                     v.name, slot_state_name(v.state));
        return;
    }
    rc = jobmgr_slot_cancel(c->a->o.mgr, (size_t)i);
    if (rc != 0) {
        api__problem(c->resp, 500, "internal", "cannot cancel slot %s: %s", v.name,
                     est_strerror(rc));
        return;
    }
    api_slot_reply(c->a, c->resp, 202, (size_t)i);
}

/* ---- recipe problems ---- */

static void api_recipe_problem(api_resp_t *resp, const recipe_err_t *e)
{
    cJSON *errs;
    const char *code;
    if (!e->cls_name) {
        api__problem(resp, 500, "internal", "%s", e->msg[0] ? e->msg : "cannot load the recipe");
        return;
    }
    code = !strcmp(e->cls_name, "image_missing") ? "image_missing" : "recipe_invalid";
    api__problem(resp, 422, code, "%s (%s)", e->msg, e->cls_name);
    /* add the problem list to the problem object */
    cJSON *p = cJSON_ParseWithLength(resp->body, resp->body_len);
    if (!p) return;
    errs = cJSON_AddArrayToObject(p, "errors");
    for (size_t k = 0; k < e->n && k < RECIPE_MAX_ERRORS; k++) {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "path", e->items[k].path);
        cJSON_AddStringToObject(it, "message", e->items[k].text);
        cJSON_AddItemToArray(errs, it);
    }
    if (e->n == 0) {
        cJSON *it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "path", "$");
        cJSON_AddStringToObject(it, "message", e->msg);
        cJSON_AddItemToArray(errs, it);
    }
    char *s = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (s) {
        free(resp->body);
        resp->body = s;
        resp->body_len = strlen(s);
    }
}

/* Is `file` (as a recipe names it) inside the image directory? NULL when fine (or when it does
 * not exist: the loader reports image_missing), else why not. */
static const char *api_confine_path(const char *image_dir, const char *file)
{
    char real_dir[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX];
    size_t n;
    if (file[0] == '/')
        return "absolute paths are not allowed: name a file inside the station's image "
               "directory (upload it with PUT /api/v1/images/{name})";
    for (const char *s = file;;) {
        size_t k = strcspn(s, "/");
        if (k == 2 && s[0] == '.' && s[1] == '.')
            return "'..' is not allowed: name a file inside the station's image directory";
        if (!s[k]) break;
        s += k + 1;
    }
    if (!realpath(image_dir, real_dir)) return NULL;
    snprintf(full, sizeof full, "%s/%s", real_dir, file);
    if (!realpath(full, real)) return NULL;
    n = strlen(real_dir);
    if (strncmp(real, real_dir, n) != 0 || real[n] != '/')
        return "the path leads outside the station's image directory (a symlink)";
    return NULL;
}

/* Check every file a recipe text names (images[].file, a stub path). 0 fine, -1 with a 422 in
 * resp. A text that is not JSON passes: the loader reports it with its JSON path. */
static int api_confine_recipe(const char *image_dir, const char *text, size_t len, api_resp_t *resp)
{
    cJSON *root = cJSON_ParseWithLength(text, len), *imgs, *it, *errs = NULL;
    const char *why;
    char path[64], first[700] = "";
    int i = 0;
    if (!root) return 0;
    errs = cJSON_CreateArray();
    imgs = cJSON_GetObjectItemCaseSensitive(root, "images");
    if (!cJSON_IsArray(imgs)) imgs = NULL;
    cJSON_ArrayForEach(it, imgs)
    {
        cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "file");
        snprintf(path, sizeof path, "$.images[%d].file", i++);
        if (cJSON_IsString(f) && (why = api_confine_path(image_dir, f->valuestring)) != NULL) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "path", path);
            cJSON_AddStringToObject(e, "message", why);
            cJSON_AddItemToArray(errs, e);
            if (!first[0]) snprintf(first, sizeof first, "%s: %s", path, why);
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(root, "stub");
    if (cJSON_IsString(it) && (why = api_confine_path(image_dir, it->valuestring)) != NULL) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", "$.stub");
        cJSON_AddStringToObject(e, "message", why);
        cJSON_AddItemToArray(errs, e);
        if (!first[0]) snprintf(first, sizeof first, "$.stub: %s", why);
    }
    cJSON_Delete(root);
    if (!first[0]) {
        cJSON_Delete(errs);
        return 0;
    }
    if (resp) {
        api__problem(resp, 422, "recipe_invalid", "%s", first);
        cJSON *p = cJSON_ParseWithLength(resp->body, resp->body_len);
        if (p) {
            cJSON_AddItemToObject(p, "errors", errs);
            errs = NULL;
            char *s = cJSON_PrintUnformatted(p);
            cJSON_Delete(p);
            if (s) {
                free(resp->body);
                resp->body = s;
                resp->body_len = strlen(s);
            }
        }
    }
    cJSON_Delete(errs);
    return -1;
}

static void api_defer_load(api_defer_t *d)
{
    d->recipe = calloc(1, sizeof *d->recipe);
    if (!d->recipe) {
        d->rc = -ENOMEM;
        snprintf(d->err.msg, sizeof d->err.msg, "out of memory");
        return;
    }
    d->rc = recipe_load_mem(d->body, d->len, d->image_dir, RECIPE_NO_PARENT, d->recipe, &d->err);
    if (d->rc != 0) {
        recipe_free(d->recipe);
        free(d->recipe);
        d->recipe = NULL;
    }
}

/* ---- PUT /api/v1/slots/{name}/recipe ---- */

static void api_finish_slot_recipe(api_t *a, api_defer_t *d, api_resp_t *resp);
static void api_work_slot_verify(api_defer_t *d);
static void api_finish_slot_verify(api_t *a, api_defer_t *d, api_resp_t *resp);

/* A recipe the job manager already has loaded: hand it a stand-in carrying only the hash; it
 * shares its loaded copy and frees the stand-in (jobmgr_slot_set_recipe). */
static int api_share_recipe(api_t *a, size_t i, const char *hash, char *err, size_t errlen)
{
    recipe_t *r = calloc(1, sizeof *r);
    if (!r) return UV_ENOMEM;
    snprintf(r->hash, sizeof r->hash, "%s", hash);
    return jobmgr_slot_set_recipe(a->o.mgr, i, r, err, errlen);
}

static bool api_hex64(const char *s)
{
    if (strlen(s) != 64) return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

typedef struct api_text_s {
    char *text;
    size_t len;
} api_text_t;

static int api_text_cb(const store_recipe_row_t *r, void *data)
{
    api_text_t *t = data;
    t->text = malloc(r->json_len + 1);
    if (t->text) {
        memcpy(t->text, r->json, r->json_len);
        t->text[r->json_len] = 0;
        t->len = r->json_len;
    }
    return 0;
}

void api__put_slot_recipe(api_ctx_t *c)
{
    api_t *a = c->a;
    slot_view_t v;
    cJSON *body, *h;
    char err[700], hash[65];
    api_text_t t = {0};
    int i = api_slot_arg(c), rc;
    if (i < 0) return;
    if (!api_is_json(c->req)) {
        api__problem(c->resp, 415, "unsupported_media_type",
                     "send {\"hash\": \"<recipe hash>\"} as application/json");
        return;
    }
    body = c->req->body ? cJSON_ParseWithLength(c->req->body, c->req->body_len) : NULL;
    h = cJSON_GetObjectItemCaseSensitive(body, "hash");
    if (!cJSON_IsObject(body) || !h || cJSON_GetArraySize(body) != 1 ||
        !(cJSON_IsNull(h) || (cJSON_IsString(h) && api_hex64(h->valuestring)))) {
        cJSON_Delete(body);
        api__problem(c->resp, 400, "bad_request",
                     "the body must be {\"hash\": \"<64 lower-case hex digits>\"} or "
                     "{\"hash\": null}");
        return;
    }
    hash[0] = 0;
    if (cJSON_IsString(h)) snprintf(hash, sizeof hash, "%s", h->valuestring);
    cJSON_Delete(body);
    jobmgr_slot_view(a->o.mgr, (size_t)i, &v);
    if (v.state == SLOT_ST_RUNNING) {
        api__problem(c->resp, 409, "slot_busy", "slot %s is running job %s: cancel it or wait",
                     v.name, v.job_uuid);
        return;
    }
    if (!hash[0]) { /* back to the configuration's recipe */
        rc = jobmgr_slot_set_recipe(a->o.mgr, (size_t)i, NULL, err, sizeof err);
        if (rc == UV_EBUSY) {
            api__problem(c->resp, 409, "slot_busy", "%s", err);
            return;
        }
        if (store_slot_recipe_set(a->o.store, v.name, NULL) != 0)
            api__log(a, "slot %s: cannot store the recipe choice: %s", v.name,
                     store_errmsg(a->o.store));
        api_slot_changed(a, (size_t)i);
        if (rc == UV_ENOENT) {
            api__problem(c->resp, 422, "recipe_invalid",
                         "slot %s is back on its configured recipe, which does not load: %s",
                         v.name, err);
            return;
        }
        api_slot_reply(a, c->resp, 200, (size_t)i);
        return;
    }
    const recipe_t *loaded = jobmgr_find_recipe(a->o.mgr, hash);
    if (loaded) {
        /* loaded once, but "the recipe no longer loads" if a file went away or changed since:
         * check its files again (on a worker: hashing) before the slot uses it */
        api_defer_t *d = api__defer_new(c, api_work_slot_verify, api_finish_slot_verify, false);
        if (!d) {
            api__problem(c->resp, 500, "internal", "out of memory");
            return;
        }
        snprintf(d->slot, sizeof d->slot, "%s", v.name);
        snprintf(d->hash, sizeof d->hash, "%s", hash);
        for (size_t k = 0; k < loaded->n_images && d->n_files < PLAN_MAX_IMAGES; k++) {
            const recipe_image_t *im = &loaded->images[k];
            if (im->file[0] == '/')
                d->files[d->n_files] = strdup(im->file);
            else if (asprintf(&d->files[d->n_files], "%s/%s", loaded->dir ? loaded->dir : ".",
                              im->file) < 0)
                d->files[d->n_files] = NULL;
            snprintf(d->file_sha[d->n_files], sizeof d->file_sha[0], "%s", im->sha256);
            snprintf(d->file_path[d->n_files], sizeof d->file_path[0], "$.images[%zu].file", k);
            d->n_files++;
        }
        if (loaded->stub == RECIPE_STUB_FILE && loaded->stub_path) {
            d->files[d->n_files] = strdup(loaded->stub_path);
            snprintf(d->file_path[d->n_files], sizeof d->file_path[0], "$.stub");
            d->n_files++;
        }
        for (size_t k = 0; k < d->n_files; k++)
            if (!d->files[k]) {
                api__defer_free(d);
                api__problem(c->resp, 500, "internal", "out of memory");
                return;
            }
        c->resp->defer = d;
        return;
    }
    rc = store_recipe_get(a->o.store, hash, api_text_cb, &t);
    if (rc != 0 || !t.text) {
        free(t.text);
        if (rc < 0)
            api__problem(c->resp, 500, "internal", "database: %s", store_errmsg(a->o.store));
        else
            api__problem(c->resp, 404, "not_found",
                         "no recipe with hash %s: store it first with POST /api/v1/recipes", hash);
        return;
    }
    if (api_confine_recipe(a->o.cfg->image_dir, t.text, t.len, c->resp) != 0) {
        free(t.text);
        return;
    }
    api_defer_t *d = api__defer_new(c, api_defer_load, api_finish_slot_recipe, false);
    if (!d) {
        free(t.text);
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    d->body = t.text;
    d->len = t.len;
    snprintf(d->slot, sizeof d->slot, "%s", v.name);
    c->resp->defer = d;
}

static void api_finish_slot_recipe(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    char err[700];
    int i = jobmgr_slot_index(a->o.mgr, d->slot), rc;
    recipe_t *r;
    if (!d->recipe) {
        api_recipe_problem(resp, &d->err);
        return;
    }
    if (i < 0) {
        api__problem(resp, 404, "not_found", "no slot named \"%s\"", d->slot);
        return;
    }
    r = d->recipe;
    d->recipe = NULL; /* the job manager takes it over, also on failure */
    rc = jobmgr_slot_set_recipe(a->o.mgr, (size_t)i, r, err, sizeof err);
    if (rc == UV_EINVAL) { /* the slot's settings make the recipe inconsistent (jobmgr.h) */
        api__problem(resp, 422, "recipe_invalid", "%s", err);
        return;
    }
    if (rc != 0) {
        api__problem(resp, rc == UV_EBUSY ? 409 : 500, rc == UV_EBUSY ? "slot_busy" : "internal",
                     "%s", err[0] ? err : est_strerror(rc));
        return;
    }
    {
        slot_view_t v;
        jobmgr_slot_view(a->o.mgr, (size_t)i, &v);
        if (v.recipe && store_slot_recipe_set(a->o.store, d->slot, v.recipe->hash) != 0)
            api__log(a, "slot %s: cannot store the recipe choice: %s", d->slot,
                     store_errmsg(a->o.store));
    }
    api_slot_changed(a, (size_t)i);
    api_slot_reply(a, resp, 200, (size_t)i);
}

static void api_work_slot_verify(api_defer_t *d)
{
    recipe_err_t *e = &d->err;
    memset(e, 0, sizeof *e);
    for (size_t k = 0; k < d->n_files; k++) {
        char got[65];
        uint64_t size;
        int rc = api__hash_path(d->files[k], true, got, &size);
        recipe_problem_t *it = &e->items[e->n < RECIPE_MAX_ERRORS ? e->n : RECIPE_MAX_ERRORS - 1];
        if (rc != 0) {
            if (!e->cls_name) {
                e->cls = EST_CLASS_IMAGE_MISSING;
                e->cls_name = "image_missing";
                snprintf(e->msg, sizeof e->msg, "%s: cannot read %s: %s", d->file_path[k],
                         d->files[k], strerror(-rc));
            }
            snprintf(it->path, sizeof it->path, "%s", d->file_path[k]);
            snprintf(it->text, sizeof it->text, "cannot read %s: %s", d->files[k], strerror(-rc));
            e->n++;
        } else if (d->file_sha[k][0] && strcmp(got, d->file_sha[k]) != 0) {
            if (!e->cls_name) {
                e->cls = EST_CLASS_IMAGE_INVALID;
                e->cls_name = "image_invalid";
                snprintf(e->msg, sizeof e->msg,
                         "%s: %s has changed since the recipe was loaded (sha256 %s)",
                         d->file_path[k], d->files[k], got);
            }
            snprintf(it->path, sizeof it->path, "%s", d->file_path[k]);
            snprintf(it->text, sizeof it->text, "%s has sha256 %s, not the recipe's", d->files[k],
                     got);
            e->n++;
        }
    }
    d->rc = e->cls_name ? EST_ERECIPE : 0;
}

static void api_finish_slot_verify(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    char err[700];
    int i = jobmgr_slot_index(a->o.mgr, d->slot), rc;
    if (d->rc != 0) {
        api_recipe_problem(resp, &d->err);
        return;
    }
    if (i < 0) {
        api__problem(resp, 404, "not_found", "no slot named \"%s\"", d->slot);
        return;
    }
    if (!jobmgr_find_recipe(a->o.mgr, d->hash)) {
        api__problem(resp, 500, "internal", "recipe %s is no longer loaded", d->hash);
        return;
    }
    rc = api_share_recipe(a, (size_t)i, d->hash, err, sizeof err);
    if (rc != 0) {
        api__problem(resp, rc == UV_EBUSY ? 409 : 500, rc == UV_EBUSY ? "slot_busy" : "internal",
                     "%s", err[0] ? err : est_strerror(rc));
        return;
    }
    if (store_slot_recipe_set(a->o.store, d->slot, d->hash) != 0)
        api__log(a, "slot %s: cannot store the recipe choice: %s", d->slot,
                 store_errmsg(a->o.store));
    api_slot_changed(a, (size_t)i);
    api_slot_reply(a, resp, 200, (size_t)i);
}

/* ---- POST /api/v1/recipes ---- */

static void api_finish_recipe_post(api_t *a, api_defer_t *d, api_resp_t *resp);

void api__post_recipe(api_ctx_t *c)
{
    api_defer_t *d;
    if (!api_is_json(c->req)) {
        api__problem(c->resp, 415, "unsupported_media_type", "send the recipe as application/json");
        return;
    }
    if (!c->req->body || !c->req->body_len) {
        api__problem(c->resp, 400, "bad_request", "the body must be a recipe (JSON)");
        return;
    }
    if (api_confine_recipe(c->a->o.cfg->image_dir, c->req->body, c->req->body_len, c->resp) != 0)
        return;
    d = api__defer_new(c, api_defer_load, api_finish_recipe_post, true);
    if (!d) {
        api__problem(c->resp, 500, "internal", "out of memory");
        return;
    }
    c->resp->defer = d;
}

static int api_exists_cb(const store_recipe_row_t *r, void *data)
{
    (void)r;
    *(bool *)data = true;
    return 0;
}

typedef struct api_one_s {
    api_t *a;
    cJSON *o;
} api_one_t;

static int api_summary_cb(const store_recipe_row_t *r, void *data)
{
    api_one_t *x = data;
    x->o = cJSON_CreateObject();
    cJSON_AddStringToObject(x->o, "hash", r->hash);
    cJSON_AddStringToObject(x->o, "name", r->name);
    cJSON_AddStringToObject(x->o, "version", r->version);
    cJSON_AddStringToObject(x->o, "created_at", r->created_at);
    cJSON_AddItemToObject(x->o, "slots", api__recipe_slots(x->a, r->hash));
    return 0;
}

static void api_finish_recipe_post(api_t *a, api_defer_t *d, api_resp_t *resp)
{
    const recipe_t *r = d->recipe;
    bool existed = false;
    api_one_t x = {a, NULL};
    if (!r) {
        api_recipe_problem(resp, &d->err);
        return;
    }
    if (store_recipe_get(a->o.store, r->hash, api_exists_cb, &existed) < 0 ||
        store_recipe_put(a->o.store, r->hash, r->name, r->version, r->text, r->text_len) != 0 ||
        store_recipe_get(a->o.store, r->hash, api_summary_cb, &x) != 0 || !x.o) {
        cJSON_Delete(x.o);
        api__problem(resp, 500, "internal", "database: %s", store_errmsg(a->o.store));
        return;
    }
    api__json(resp, existed ? 200 : 201, x.o);
}

/* ---- the slot recipe choices stored in the database ---- */

typedef struct api_choice_s {
    char slot[65], hash[65];
} api_choice_t;

typedef struct api_choices_s {
    api_choice_t *c;
    size_t n;
} api_choices_t;

static int api_choice_cb(const char *slot, const char *hash, void *data)
{
    api_choices_t *x = data;
    api_choice_t *nc = realloc(x->c, (x->n + 1) * sizeof *nc);
    if (!nc) return 1;
    x->c = nc;
    snprintf(nc[x->n].slot, sizeof nc[x->n].slot, "%s", slot);
    snprintf(nc[x->n].hash, sizeof nc[x->n].hash, "%s", hash);
    x->n++;
    return 0;
}

void api__apply_slot_recipes(api_t *a)
{
    api_choices_t x = {0};
    char err[700];
    if (store_slot_recipes(a->o.store, api_choice_cb, &x) != 0) {
        api__log(a, "cannot read the slots' recipe choices: %s", store_errmsg(a->o.store));
        free(x.c);
        return;
    }
    for (size_t k = 0; k < x.n; k++) {
        int i = jobmgr_slot_index(a->o.mgr, x.c[k].slot), rc;
        api_text_t t = {0};
        recipe_t *r;
        recipe_err_t rerr;
        if (i < 0) continue; /* a slot the config no longer has */
        if (jobmgr_find_recipe(a->o.mgr, x.c[k].hash)) {
            rc = api_share_recipe(a, (size_t)i, x.c[k].hash, err, sizeof err);
            if (rc != 0)
                api__log(a, "slot %s: cannot use recipe %.12s: %s", x.c[k].slot, x.c[k].hash, err);
            continue;
        }
        if (store_recipe_get(a->o.store, x.c[k].hash, api_text_cb, &t) != 0 || !t.text) {
            free(t.text);
            api__log(a,
                     "slot %s: recipe %.12s chosen through the API is not stored; the slot "
                     "keeps its configured recipe",
                     x.c[k].slot, x.c[k].hash);
            continue;
        }
        r = calloc(1, sizeof *r);
        snprintf(rerr.msg, sizeof rerr.msg, "a file path leads outside the image directory");
        if (!r || api_confine_recipe(a->o.cfg->image_dir, t.text, t.len, NULL) != 0 ||
            recipe_load_mem(t.text, t.len, a->o.cfg->image_dir, RECIPE_NO_PARENT, r, &rerr) != 0) {
            api__log(a,
                     "slot %s: recipe %.12s chosen through the API no longer loads (%s); the "
                     "slot keeps its configured recipe",
                     x.c[k].slot, x.c[k].hash, r ? rerr.msg : "out of memory");
            free(r);
            free(t.text);
            continue;
        }
        free(t.text);
        rc = jobmgr_slot_set_recipe(a->o.mgr, (size_t)i, r, err, sizeof err);
        if (rc != 0)
            api__log(a, "slot %s: cannot use recipe %.12s: %s", x.c[k].slot, x.c[k].hash, err);
    }
    free(x.c);
}
