/* SPDX-License-Identifier: MIT */
/* recipe_import.c — recipe JSON output (two-space indentation) and the import of ESP-IDF's
 * build/flasher_args.json (PROTOCOL.md §13) into a recipe file.
 * Must not: log, talk to a device or the database; every problem goes into recipe_err_t. */
#include "recipe_int.h"
#include "est_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "image.h"


/* ---- output: recipe JSON with two-space indentation ---- */

typedef struct recipe_buf_s {
    char *p;
    size_t n, cap;
    bool oom;
} recipe_buf_t;

static void recipe_put(recipe_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
}

static void recipe_indent(recipe_buf_t *b, int depth)
{
    for (int i = 0; i < depth; i++)
        recipe_put(b, "  ");
}

/* Objects one member per line; arrays of scalars on one line; scalars through cJSON (escaping). */
static void recipe_print(recipe_buf_t *b, const cJSON *v, int depth)
{
    const cJSON *c;
    if (cJSON_IsObject(v) || (cJSON_IsArray(v) && v->child && cJSON_IsObject(v->child))) {
        bool obj = cJSON_IsObject(v);
        recipe_put(b, obj ? "{" : "[");
        for (c = v->child; c; c = c->next) {
            recipe_put(b, "\n");
            recipe_indent(b, depth + 1);
            if (obj) {
                cJSON *ref = cJSON_CreateStringReference(c->string);
                char *k = ref ? cJSON_PrintUnformatted(ref) : NULL;
                cJSON_Delete(ref); /* frees the node, not the referenced key */
                if (!k) {
                    b->oom = true;
                    return;
                }
                recipe_put(b, k);
                recipe_put(b, ": ");
                free(k);
            }
            recipe_print(b, c, depth + 1);
            if (c->next) recipe_put(b, ",");
        }
        recipe_put(b, "\n");
        recipe_indent(b, depth);
        recipe_put(b, obj ? "}" : "]");
    } else if (cJSON_IsArray(v)) {
        recipe_put(b, "[");
        for (c = v->child; c; c = c->next) {
            recipe_print(b, c, depth + 1);
            if (c->next) recipe_put(b, ", ");
        }
        recipe_put(b, "]");
    } else {
        char *s = cJSON_PrintUnformatted(v);
        if (!s) {
            b->oom = true;
            return;
        }
        recipe_put(b, s);
        free(s);
    }
}

/* ---- import of ESP-IDF build/flasher_args.json (PROTOCOL.md §13) ---- */

typedef struct recipe_imp_s {
    uint32_t offset;
    char label[RECIPE_NAME_MAX + 1];
    char *abs; /* resolved image path */
    char *rel; /* relative to the output recipe's directory */
    char sha[65];
    const chip_info_t *hdr_chip; /* chip named by the image header, when it is an image */
} recipe_imp_t;

/* Keep what the recipe's name/label pattern allows, '-' for the rest; "" if nothing is left. */
static void recipe_sanitize(const char *in, bool space, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++) {
        char ch = *in;
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (n == 0 && !alnum) continue; /* must start with a letter or digit */
        out[n++] = alnum || ch == '_' || ch == '.' || ch == '+' || ch == '-' || (space && ch == ' ')
                       ? ch
                       : '-';
    }
    out[n] = '\0';
}

/* Path of `to` relative to directory `from`; both absolute and free of . and .. (realpath). */
static char *recipe_relpath(const char *from, const char *to)
{
    size_t cap = strlen(from) * 2 + strlen(to) + 8, n = 0;
    char *out = malloc(cap);
    const char *a = from, *b = to;
    if (!out) return NULL;
    /* skip the common leading components */
    for (;;) {
        while (*a == '/')
            a++;
        while (*b == '/')
            b++;
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        if (la == 0 || la != lb || strncmp(a, b, la) != 0) break;
        a += la;
        b += lb;
    }
    /* one ".." per component left in `from` */
    while (*a) {
        size_t la = strcspn(a, "/");
        if (la) n += (size_t)snprintf(out + n, cap - n, "../");
        a += la;
        while (*a == '/')
            a++;
    }
    snprintf(out + n, cap - n, "%s", b);
    return out;
}

static const char *recipe_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Read and parse a JSON file (<= RECIPE_MAX_BYTES); NULL with rc set on failure. */
static cJSON *recipe_read_json(const char *path, int *rc, unsigned *line, unsigned *col)
{
    uint8_t *buf;
    size_t len;
    const char *end = NULL;
    cJSON *root;
    *rc = recipe_read_file(path, RECIPE_MAX_BYTES, &buf, &len);
    if (*rc) return NULL;
    root = cJSON_ParseWithOpts((const char *)buf, &end, true);
    if (!root) {
        recipe_line_col((const char *)buf, end ? (size_t)(end - (const char *)buf) : 0, line, col);
        *rc = EST_ERECIPE;
    }
    free(buf);
    return root;
}

/* "true"/"false" strings (IDF writes `encrypted` as a string, and `stub` as "TRUE" in v4.1) or
 * JSON booleans; -1 when it is neither. */
static int recipe_json_flag(const cJSON *v)
{
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    if (cJSON_IsString(v)) {
        if (strcasecmp(v->valuestring, "true") == 0) return 1;
        if (strcasecmp(v->valuestring, "false") == 0) return 0;
    }
    return -1;
}

/* before/after: IDF <= v5.5 writes default_reset, v6.0 default-reset; recipes use hyphens. */
static int recipe_norm_reset(const char *in, const char *const *allowed, char *out, size_t cap)
{
    snprintf(out, cap, "%s", in);
    for (char *p = out; *p; p++)
        if (*p == '_') *p = '-';
    return recipe_in_enum(allowed, out) ? 0 : -1;
}

/* flash_settings (IDF v4.0+), else the pairs in write_flash_args (--flash_mode / --flash-mode). */
static const char *recipe_flash_setting(const cJSON *root, const char *key, const char **where)
{
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(root, "flash_settings");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "write_flash_args");
    const char *v = recipe_json_str(fs, key);
    const cJSON *it;
    char under[32], hyph[32];
    if (v) {
        *where = "flash_settings";
        return v;
    }
    snprintf(under, sizeof under, "--%s", key);
    snprintf(hyph, sizeof hyph, "--%s", key);
    for (char *p = hyph; *p; p++)
        if (*p == '_') *p = '-';
    cJSON_ArrayForEach(it, args)
    {
        if (cJSON_IsString(it) &&
            (strcmp(it->valuestring, under) == 0 || strcmp(it->valuestring, hyph) == 0) &&
            cJSON_IsString(it->next)) {
            *where = "write_flash_args";
            return it->next->valuestring;
        }
    }
    return NULL;
}

static int recipe_imp_cmp(const void *x, const void *y)
{
    const recipe_imp_t *a = x, *b = y;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static void recipe_imp_free(recipe_imp_t *im, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(im[i].abs);
        free(im[i].rel);
    }
}

/* The known top-level keys; any other object with offset and file is a named image entry. */
static bool recipe_idf_key(const char *k)
{
    return strcmp(k, "write_flash_args") == 0 || strcmp(k, "flash_settings") == 0 ||
           strcmp(k, "flash_files") == 0 || strcmp(k, "extra_esptool_args") == 0;
}

/* Read one image: resolve, hash, note the chip its header names. */
static void recipe_imp_read(recipe_imp_t *im, const char *build_dir, const char *file,
                            const char *out_dir, const char *jpath, recipe_err_t *err)
{
    char *joined = file[0] == '/' ? strdup(file) : recipe_join(build_dir, file);
    uint8_t *data;
    size_t len;
    int rc;
    image_info_t info;

    if (!joined) {
        recipe_fail(err, "internal", -ENOMEM, jpath, "out of memory");
        return;
    }
    im->abs = realpath(joined, NULL);
    if (!im->abs) {
        recipe_fail(err, "image_missing", -errno, jpath, "cannot find %s: %s", joined,
                    strerror(errno));
        free(joined);
        return;
    }
    free(joined);
    rc = recipe_read_file(im->abs, PLAN_MAX_IMAGE_SIZE, &data, &len);
    if (rc) {
        recipe_fail(err, rc == -EFBIG ? "image_invalid" : "image_missing", rc, jpath,
                    "cannot read %s: %s", im->abs,
                    rc == -EFBIG ? "larger than any flash (128MB)" : strerror(-rc));
        return;
    }
    if (len == 0) recipe_fail(err, "image_invalid", EST_EIMAGE, jpath, "%s is empty", im->abs);
    recipe_sha256_hex(data, len, im->sha);
    if (len && data[0] == IMAGE_MAGIC && image_parse(data, len, false, &info) == 0 &&
        info.has_ext && info.checksum_ok)
        im->hdr_chip = chip_by_image_id(info.chip_id);
    free(data);
    im->rel = recipe_relpath(out_dir, im->abs);
    if (!im->rel) recipe_fail(err, "internal", -ENOMEM, jpath, "out of memory");
}

/* Collect flash_files with labels from the named entries; refuse encrypted ones. */
static size_t recipe_imp_images(const cJSON *root, const char *build_dir, const char *out_dir,
                                recipe_imp_t *ims, recipe_err_t *err)
{
    const cJSON *ff = cJSON_GetObjectItemCaseSensitive(root, "flash_files"), *e, *n;
    size_t count = 0;
    char jpath[160];

    if (!cJSON_IsObject(ff)) {
        recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_files",
                    "missing or not an object: this is not an ESP-IDF flasher_args.json (it is "
                    "in the build directory)");
        return 0;
    }
    if (!ff->child) {
        recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_files", "lists no images");
        return 0;
    }
    cJSON_ArrayForEach(e, ff)
    {
        recipe_imp_t *im;
        uint64_t off;
        recipe_path_key(jpath, sizeof jpath, "$.flash_files", e->string);
        if (count >= PLAN_MAX_IMAGES) {
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_files",
                        "more than %d images; a recipe holds at most %d", PLAN_MAX_IMAGES,
                        PLAN_MAX_IMAGES);
            break;
        }
        if (!cJSON_IsString(e) || !*e->valuestring) {
            recipe_fail(err, INVALID, EST_ERECIPE, jpath, "must be a file name");
            continue;
        }
        if (recipe_parse_number(e->string, &off) != 0 || off > RECIPE_MAX_OFFSET ||
            off % PLAN_SECTOR) {
            recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                        "the offset must be a multiple of 0x1000 below 128MB");
            continue;
        }
        im = &ims[count++];
        im->offset = (uint32_t)off;
        /* the named entry at the same offset gives the label and the encrypted flag */
        cJSON_ArrayForEach(n, root)
        {
            const char *o = recipe_json_str(n, "offset");
            uint64_t noff;
            int enc;
            if (!cJSON_IsObject(n) || recipe_idf_key(n->string) || !o ||
                !recipe_json_str(n, "file") || recipe_parse_number(o, &noff) != 0 || noff != off)
                continue;
            if (!im->label[0]) recipe_sanitize(n->string, false, im->label, sizeof im->label);
            enc = recipe_json_flag(cJSON_GetObjectItemCaseSensitive(n, "encrypted"));
            if (enc == 1) {
                char epath[200];
                recipe_path_key(epath, sizeof epath, "$", n->string);
                recipe_fail(err, INVALID, EST_ERECIPE, epath,
                            "is marked encrypted; espstation writes plaintext images only (a "
                            "device with flash encryption encrypts them at first boot)");
            }
        }
        recipe_imp_read(im, build_dir, e->valuestring, out_dir, jpath, err);
    }
    return count;
}

static int recipe_imp_settings(const cJSON *root, cJSON *out, recipe_err_t *err)
{
    static const struct {
        const char *key;
        const char *const *allowed;
    } keys[] = {
        {"flash_mode", recipe_modes}, {"flash_size", recipe_sizes}, {"flash_freq", recipe_freqs}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *where = NULL;
        const char *v = recipe_flash_setting(root, keys[i].key, &where);
        char jpath[64];
        if (!v) continue;
        snprintf(jpath, sizeof jpath, "$.%s.%s", where, keys[i].key);
        if (!recipe_in_enum(keys[i].allowed, v)) {
            char words[256];
            recipe_enum_words(keys[i].allowed, words, sizeof words);
            recipe_fail(err, INVALID, EST_ERECIPE, jpath, "must be one of %s (got \"%s\")", words,
                        v);
            continue;
        }
        cJSON_AddStringToObject(out, keys[i].key, v);
    }
    return err->n ? err->code : 0;
}

/* chip/before/after/stub from extra_esptool_args; the chip also from the options, the project
 * description or the image headers. */
static int recipe_imp_esptool(const cJSON *root, const cJSON *desc, const recipe_imp_t *ims,
                              size_t n, const recipe_import_opts_t *o, cJSON *out,
                              recipe_err_t *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, "extra_esptool_args");
    const char *chip = recipe_json_str(x, "chip"), *v;
    const char *where = "$.extra_esptool_args.chip";
    char norm[32];
    int stub;

    if (o && o->chip) {
        if (chip && strcmp(chip, o->chip) != 0)
            return recipe_fail(err, INVALID, EST_ERECIPE, where,
                               "the build is for %s but the chip option says %s", chip, o->chip);
        chip = o->chip;
        where = "chip option";
    }
    if (!chip && (chip = recipe_json_str(desc, "target")))
        where = "project_description.json $.target";
    for (size_t i = 0; !chip && i < n; i++)
        if (ims[i].hdr_chip) {
            chip = ims[i].hdr_chip->name;
            where = "image header";
        }
    if (!chip)
        return recipe_fail(err, INVALID, EST_ERECIPE, "$.extra_esptool_args",
                           "no chip given (IDF before v4.1 does not write it) and none found in "
                           "project_description.json or the image headers; pass the chip");
    if (!chip_by_name(chip))
        return recipe_fail(err, INVALID, EST_ERECIPE, where,
                           "espstation does not support chip \"%s\" (known: %s)", chip,
                           chip_names_list());
    cJSON_AddStringToObject(out, "chip", chip);
    if ((v = recipe_json_str(x, "before"))) {
        if (recipe_norm_reset(v, recipe_befores, norm, sizeof norm) != 0)
            return recipe_fail(err, INVALID, EST_ERECIPE, "$.extra_esptool_args.before",
                               "\"%s\" is not supported by the station (use default-reset, "
                               "no-reset or usb-reset)",
                               v);
        cJSON_AddStringToObject(out, "before", norm);
    }
    if ((v = recipe_json_str(x, "after"))) {
        if (recipe_norm_reset(v, recipe_afters, norm, sizeof norm) != 0)
            return recipe_fail(err, INVALID, EST_ERECIPE, "$.extra_esptool_args.after",
                               "\"%s\" is not supported by the station (use hard-reset or "
                               "no-reset)",
                               v);
        cJSON_AddStringToObject(out, "after", norm);
    }
    stub = recipe_json_flag(cJSON_GetObjectItemCaseSensitive(x, "stub"));
    if (stub >= 0) cJSON_AddBoolToObject(out, "stub", stub);
    return 0;
}

/* The imported recipe's name and version: the options, else the project's, else the app's file
 * name ("imported", "unversioned" when nothing says). */
static void recipe_imp_identity(const recipe_import_opts_t *o, const cJSON *desc,
                                const recipe_imp_t *ims, size_t n,
                                char name[RECIPE_NAME_MAX + 1], char version[RECIPE_NAME_MAX + 1])
{
    const size_t cap = RECIPE_NAME_MAX + 1;
    if (o && o->name)
        recipe_sanitize(o->name, true, name, cap);
    else if (recipe_json_str(desc, "project_name"))
        recipe_sanitize(recipe_json_str(desc, "project_name"), true, name, cap);
    for (size_t i = 0; !name[0] && i < n; i++)
        if (strcmp(ims[i].label, "app") == 0) {
            char *base = strdup(ims[i].abs), *dot;
            if (base) {
                char *bn = basename(base);
                if ((dot = strrchr(bn, '.'))) *dot = '\0';
                recipe_sanitize(bn, true, name, cap);
                free(base);
            }
        }
    if (!name[0]) snprintf(name, cap, "imported");
    if (o && o->version)
        recipe_sanitize(o->version, false, version, cap);
    else if (recipe_json_str(desc, "project_version"))
        recipe_sanitize(recipe_json_str(desc, "project_version"), false, version, cap);
    if (!version[0]) snprintf(version, cap, "unversioned");
}

static void recipe_imp_image_list(cJSON *arr, const recipe_imp_t *ims, size_t n)
{
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *it = cJSON_CreateObject();
        char off[16];
        if (!it) break;
        cJSON_AddItemToArray(arr, it);
        if (ims[i].label[0]) cJSON_AddStringToObject(it, "label", ims[i].label);
        snprintf(off, sizeof off, "0x%" PRIx32, ims[i].offset);
        cJSON_AddStringToObject(it, "offset", off);
        cJSON_AddStringToObject(it, "file", ims[i].rel);
        cJSON_AddStringToObject(it, "sha256", ims[i].sha);
    }
}

int recipe_import(const char *args_path, const char *out_path, const recipe_import_opts_t *o,
                  char **json, recipe_err_t *err_out)
{
    recipe_err_t local;
    recipe_err_t *err = err_out ? err_out : &local;
    recipe_imp_t ims[PLAN_MAX_IMAGES];
    char *args_abs = NULL, *build_dir = NULL, *out_copy = NULL, *out_dir = NULL, *rel_args = NULL;
    char name[RECIPE_NAME_MAX + 1] = "", version[RECIPE_NAME_MAX + 1] = "";
    cJSON *root = NULL, *desc = NULL, *out = NULL, *arr;
    recipe_buf_t b = {0};
    size_t n = 0;
    unsigned line = 0, col = 0;
    int rc;

    recipe_err_reset(err);
    memset(ims, 0, sizeof ims);
    *json = NULL;
    args_abs = realpath(args_path, NULL);
    if (!args_abs) {
        rc = recipe_fail(err, INVALID, -errno, "$", "cannot find %s: %s", args_path,
                         strerror(errno));
        goto done;
    }
    root = recipe_read_json(args_abs, &rc, &line, &col);
    if (!root) {
        if (rc == EST_ERECIPE)
            recipe_fail(err, INVALID, rc, "$",
                        "%s is not valid JSON (syntax error near line %u, column %u)", args_path,
                        line, col);
        else
            recipe_fail(err, INVALID, rc, "$", "cannot read %s: %s", args_path,
                        rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        recipe_fail(err, INVALID, EST_ERECIPE, "$", "must be an object");
        goto fail;
    }
    build_dir = strdup(args_abs);
    out_copy = strdup(out_path);
    if (!build_dir || !out_copy) {
        recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
        goto fail;
    }
    dirname(build_dir);
    /* the recipe's directory must exist: image paths are made relative to it */
    out_dir = realpath(dirname(out_copy), NULL);
    if (!out_dir) {
        recipe_fail(err, "usage", -errno, "$", "the output directory of %s: %s", out_path,
                    strerror(errno));
        goto fail;
    }
    {
        /* ESP-IDF writes project_description.json next to flasher_args.json */
        char *dp = recipe_join(build_dir, "project_description.json");
        int drc;
        desc = dp ? recipe_read_json(dp, &drc, &line, &col) : NULL;
        free(dp);
        if (desc && !cJSON_IsObject(desc)) {
            cJSON_Delete(desc);
            desc = NULL;
        }
    }

    n = recipe_imp_images(root, build_dir, out_dir, ims, err);
    if (err->n) goto fail;
    qsort(ims, n, sizeof ims[0], recipe_imp_cmp);

    out = cJSON_CreateObject();
    if (!out) {
        recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
        goto fail;
    }
    recipe_imp_identity(o, desc, ims, n, name, version);
    cJSON_AddStringToObject(out, "name", name);
    cJSON_AddStringToObject(out, "version", version);
    rel_args = recipe_relpath(out_dir, args_abs);
    {
        char d[600];
        snprintf(d, sizeof d, "Imported from ESP-IDF %s", rel_args ? rel_args : args_path);
        cJSON_AddStringToObject(out, "description", d);
    }
    if (recipe_imp_esptool(root, desc, ims, n, o, out, err) || recipe_imp_settings(root, out, err))
        goto fail;
    arr = cJSON_AddArrayToObject(out, "images");
    recipe_imp_image_list(arr, ims, n);
    recipe_print(&b, out, 0);
    recipe_put(&b, "\n");
    if (b.oom || !arr) {
        recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
        goto fail;
    }
    {
        /* the result must load like any hand-written recipe, from where it will be written */
        recipe_t r;
        if (recipe_load_mem(b.p, b.n, out_dir, 0, &r, err) != 0) goto fail;
        recipe_free(&r);
    }
    *json = b.p;
    b.p = NULL;
    rc = 0;
    goto done;
fail:
    rc = err->n ? err->code : EST_ERECIPE;
done:
    recipe_imp_free(ims, PLAN_MAX_IMAGES);
    free(b.p);
    cJSON_Delete(out);
    cJSON_Delete(root);
    cJSON_Delete(desc);
    free(args_abs);
    free(build_dir);
    free(out_copy);
    free(out_dir);
    free(rel_args);
    return rc;
}

int recipe_write_file(const char *path, const char *text, bool overwrite, recipe_err_t *err_out)
{
    recipe_err_t local;
    recipe_err_t *err = err_out ? err_out : &local;
    size_t len = strlen(text), done = 0;
    size_t tlen = strlen(path) + 16;
    char *tmp = malloc(tlen);
    int fd, rc = 0;

    recipe_err_reset(err);
    if (!tmp) return recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
    snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = recipe_fail(err, "usage", -errno, "$", "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    fchmod(fd, 0644);
    while (done < len && rc == 0) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            rc = -(w < 0 ? errno : EIO);
        else
            done += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc == 0) {
        /* link() refuses to replace an existing file: no-clobber without a race */
        if (overwrite ? rename(tmp, path) != 0 : link(tmp, path) != 0) rc = -errno;
    }
    if (rc || !overwrite) unlink(tmp);
    if (rc == -EEXIST)
        recipe_fail(err, "usage", rc, "$", "%s exists; add --force to overwrite it", path);
    else if (rc)
        recipe_fail(err, "usage", rc, "$", "cannot write %s: %s", path, strerror(-rc));
    free(tmp);
    return rc;
}

