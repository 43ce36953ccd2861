/* SPDX-License-Identifier: MIT */
/* recipe_plan.c — loading a recipe: the validated values, images and files into the plan (the
 * plan building), the checks that span fields and files, and the device checks.
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


/* ---- files ---- */

/* Read a whole regular file of at most `limit` bytes, NUL-terminated. -errno, or -EFBIG. */
int recipe_read_file(const char *path, size_t limit, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    if ((uint64_t)st.st_size > limit) {
        close(fd);
        return -EFBIG;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            free(buf);
            return -e;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

void recipe_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    uint8_t d[32];
    image_sha256(data, len, d);
    est_hex(d, sizeof d, out);
}

/* dir + "/" + rel (malloc'ed) */
char *recipe_join(const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static bool recipe_has_parent_ref(const char *p)
{
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.') return true;
        s += n;
        while (*s == '/')
            s++;
    }
    return false;
}

/* ---- loading ---- */

static bool recipe_allows(const recipe_t *r, chip_id_t id)
{
    for (size_t i = 0; i < r->n_chips; i++)
        if (r->chips[i] == id) return true;
    return false;
}

static void recipe_chip_list(const recipe_t *r, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_chips && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", chip_get(r->chips[i])->name);
}

/* Flash parameters must be ones every allowed chip can encode (PROTOCOL.md §12). */
static void recipe_check_params(const recipe_t *r, recipe_err_t *err)
{
    char fs[24], ff[16];
    plan_flash_size_name(&r->plan, fs, sizeof fs);
    snprintf(ff, sizeof ff, "%um", r->plan.flash_freq_mhz);
    for (size_t i = 0; i < r->n_chips; i++) {
        const chip_info_t *c = chip_get(r->chips[i]);
        if (r->plan.flash_size_mode == PLAN_FSIZE_SET && chip_flash_size_code_name(c, fs) < 0)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_size",
                        "\"%s\" is not a flash size %s can have in its image header", fs, c->name);
        if (r->plan.flash_freq_mhz && chip_flash_freq_code(c, ff) < 0) {
            char known[64];
            size_t n = 0;
            known[0] = '\0';
            for (size_t k = 0; c->freq_names[k] && n < sizeof known; k++)
                n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", k ? ", " : "",
                                      c->freq_names[k]);
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_freq",
                        "%s has no %s flash frequency (it knows %s)", c->name, ff, known);
        }
    }
}

/* An image built for another chip fails at boot: catch it now when its header says so. Only
 * for ESP32-family recipes (the ESP8266 layout has no chip ID), and only for data that parses
 * as an image with a correct checksum, so data partitions are left alone. */
static void recipe_check_image_chip(const recipe_t *r, const recipe_image_t *im,
                                    const uint8_t *data, size_t len, const char *jpath,
                                    recipe_err_t *err)
{
    image_info_t info;
    const chip_info_t *ic;
    char list[128];
    if (recipe_allows(r, CHIP_ESP8266) || len == 0 || data[0] != IMAGE_MAGIC) return;
    if (image_parse(data, len, false, &info) != 0 || !info.has_ext || !info.checksum_ok) return;
    ic = chip_by_image_id(info.chip_id);
    if (!ic || recipe_allows(r, ic->id)) return;
    recipe_chip_list(r, list, sizeof list);
    recipe_fail(err, "image_invalid", EST_EIMAGE, jpath,
                "%s is an image for %s (chip ID %u in its header), but the recipe allows %s",
                im->file, ic->name, info.chip_id, list);
}

static void recipe_load_image(recipe_t *r, recipe_image_t *im, unsigned flags, const char *jpath,
                              recipe_err_t *err)
{
    char fpath[160], got[65];
    char *full;
    uint8_t *data = NULL;
    size_t len = 0;
    plan_err_t perr;
    int rc;

    snprintf(fpath, sizeof fpath, "%s.file", jpath);
    if ((flags & RECIPE_NO_PARENT) && recipe_has_parent_ref(im->file)) {
        recipe_fail(err, INVALID, EST_ERECIPE, fpath,
                    "must stay inside the recipe's directory (no \"..\")");
        return;
    }
    if (flags & RECIPE_NO_IMAGES) return;
    full = recipe_join(r->dir, im->file);
    if (!full) {
        recipe_fail(err, "internal", -ENOMEM, fpath, "out of memory");
        return;
    }
    rc = recipe_read_file(full, PLAN_MAX_IMAGE_SIZE, &data, &len);
    if (rc == -EFBIG)
        recipe_fail(err, "image_invalid", EST_EIMAGE, fpath, "%s is larger than any flash (128MB)",
                    full);
    else if (rc == -ENOMEM)
        recipe_fail(err, "internal", rc, fpath, "out of memory reading %s", full);
    else if (rc)
        recipe_fail(err, "image_missing", rc, fpath, "cannot read %s: %s", full, strerror(-rc));
    free(full);
    if (rc) return;
    im->size = len;
    recipe_sha256_hex(data, len, got);
    if (strcmp(got, im->sha256) != 0) {
        snprintf(fpath, sizeof fpath, "%s.sha256", jpath);
        recipe_fail(err, "image_invalid", EST_EIMAGE, fpath,
                    "%s has sha256 %s, not the one the recipe gives; rebuild the recipe (or "
                    "check that the right file is in place)",
                    im->file, got);
        free(data);
        return;
    }
    if ((uint64_t)im->offset + len > RECIPE_MAX_FLASH) {
        recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                    "%s (%zu bytes at 0x%x) ends beyond the largest flash (128MB)", im->file, len,
                    im->offset);
        free(data);
        return;
    }
    recipe_check_image_chip(r, im, data, len, fpath, err);
    /* the plan labels images with the path as the recipe writes it: short, and stable */
    if (plan_add_image_mem(&r->plan, im->offset, im->file, data, len, &perr) != 0)
        recipe_fail(err, est_class_name(perr.cls), EST_EIMAGE, jpath, "%s", perr.msg);
}

/* Image ends against the flash sizes the recipe itself names. */
static void recipe_check_fit(const recipe_t *r, recipe_err_t *err)
{
    uint32_t fixed = r->plan.flash_size_mode == PLAN_FSIZE_SET ? r->plan.flash_size_bytes : 0;
    char sz[32], jpath[48], fs[24];
    plan_flash_size_name(&r->plan, fs, sizeof fs);
    for (size_t i = 0; i < r->n_images; i++) {
        const recipe_image_t *im = &r->images[i];
        uint64_t end = (uint64_t)im->offset + im->size;
        snprintf(jpath, sizeof jpath, "$.images[%zu]", i);
        if (fixed && end > fixed)
            recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                        "%s ends at 0x%" PRIx64 ", beyond flash_size %s", im->file, end, fs);
        else if (r->min_flash_size && end > r->min_flash_size)
            recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                        "%s ends at 0x%" PRIx64 ", beyond checks.min_flash_size %s: a board "
                        "with that flash would pass the check and still not hold the image",
                        im->file, end, plan_fmt_size(r->min_flash_size, sz, sizeof sz));
    }
}

static bool recipe_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* before/after (the schema's spelling, "hard-reset"; plan_parse_* takes it). A value the recipe
 * names is its own choice (before_set/after_set) and wins over a slot's default
 * (plan_apply_slot, docs/STATION.md "Reset modes"). */
static void recipe_reset_modes(recipe_t *r, const cJSON *root, cJSON **d)
{
    if (plan_parse_before(recipe_get_str(root, "$.before", d), &r->plan.before) != 0)
        r->plan.before = PLAN_BEFORE_DEFAULT;
    if (plan_parse_after(recipe_get_str(root, "$.after", d), &r->plan.after) != 0)
        r->plan.after = PLAN_AFTER_HARD_RESET;
    r->plan.before_set = cJSON_GetObjectItemCaseSensitive(root, "before") != NULL;
    r->plan.after_set = cJSON_GetObjectItemCaseSensitive(root, "after") != NULL;
}

/* "test": the post-flash test (the job runs it: state test); the plan borrows the text. */
static void recipe_extract_test(recipe_t *r, const cJSON *root, cJSON **d, recipe_err_t *err)
{
    const cJSON *test;
    test = cJSON_GetObjectItemCaseSensitive(root, "test");
    if (test) {
        r->test = true;
        r->test_baud = (uint32_t)recipe_get_int(test, "$.test.baud", d);
        r->test_expect = strdup(recipe_get_str(test, "$.test.expect", d));
        r->test_timeout_ms = (uint32_t)recipe_get_int(test, "$.test.timeout_ms", d);
        if (!r->test_expect)
            recipe_fail(err, "internal", -ENOMEM, "$.test.expect", "out of memory");
        /* the test reads what the application prints after the reset: without the reset the
         * chip stays in its loader and the test could only fail. A test is the recipe's choice
         * of after hard_reset: it wins over a slot's default (docs/RECIPES.md "before/after") */
        if (r->plan.after_set && r->plan.after == PLAN_AFTER_NO_RESET)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.test",
                        "a post-flash test needs \"after\": \"hard-reset\" (the board is reset "
                        "into its application and its output read), but the recipe says "
                        "\"no-reset\"");
        r->plan.after = PLAN_AFTER_HARD_RESET;
        r->plan.after_set = true;
        /* the job runs it (jobs/job_sm.c, state test); the plan borrows the text */
        r->plan.test = true;
        r->plan.test_baud = r->test_baud;
        r->plan.test_expect = r->test_expect;
        r->plan.test_timeout_ms = r->test_timeout_ms;
    }
}

/* "images": each file loaded (unless RECIPE_NO_IMAGES) and checked against its sha256. */
static void recipe_extract_images(recipe_t *r, const cJSON *root, unsigned flags, cJSON **d,
                                  recipe_err_t *err)
{
    const cJSON *images, *it;
    const char *s;
    size_t i = 0;
    images = cJSON_GetObjectItemCaseSensitive(root, "images");
    cJSON_ArrayForEach(it, images)
    {
        recipe_image_t *im = &r->images[r->n_images++];
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "offset");
        char jpath[48];
        int64_t o = 0;
        uint64_t u = 0;
        if (cJSON_IsString(off)) {
            recipe_parse_number(off->valuestring, &u);
            o = (int64_t)u;
        } else {
            recipe_json_int(off, &o);
        }
        im->offset = (uint32_t)o;
        im->file = strdup(recipe_get_str(it, "$.images[*].file", d));
        snprintf(im->sha256, sizeof im->sha256, "%s", recipe_get_str(it, "$.images[*].sha256", d));
        s = recipe_get_str(it, "$.images[*].label", d);
        snprintf(im->label, sizeof im->label, "%s", s ? s : "");
        snprintf(jpath, sizeof jpath, "$.images[%zu]", i++);
        if (!im->file) {
            recipe_fail(err, "internal", -ENOMEM, jpath, "out of memory");
            continue;
        }
        recipe_load_image(r, im, flags, jpath, err);
    }
}

/* Fill r from a validated document. */
static void recipe_extract(recipe_t *r, const cJSON *root, unsigned flags, recipe_err_t *err)
{
    cJSON *d = NULL;
    const cJSON *v, *checks, *rev, *retry, *it;
    const char *s;

    snprintf(r->name, sizeof r->name, "%s", recipe_get_str(root, "$.name", &d));
    snprintf(r->version, sizeof r->version, "%s", recipe_get_str(root, "$.version", &d));

    v = cJSON_GetObjectItemCaseSensitive(root, "chip");
    if (cJSON_IsString(v)) {
        r->chips[r->n_chips++] = chip_by_name(v->valuestring)->id;
    } else {
        cJSON_ArrayForEach(it, v) r->chips[r->n_chips++] = chip_by_name(it->valuestring)->id;
    }
    r->plan.chip = r->n_chips == 1 ? r->chips[0] : CHIP_UNKNOWN;

    r->baud = (uint32_t)recipe_get_int(root, "$.baud", &d);
    v = recipe_get(root, "$.stub", &d);
    if (cJSON_IsString(v)) {
        r->stub = RECIPE_STUB_FILE;
        if ((flags & RECIPE_NO_PARENT) && recipe_has_parent_ref(v->valuestring))
            recipe_fail(err, INVALID, EST_ERECIPE, "$.stub",
                        "must stay inside the recipe's directory (no \"..\")");
        r->stub_path = recipe_join(r->dir, v->valuestring);
        if (!(flags & RECIPE_NO_IMAGES) && r->stub_path && access(r->stub_path, R_OK) != 0)
            recipe_fail(err, "image_missing", -errno, "$.stub", "cannot read stub file %s: %s",
                        r->stub_path, strerror(errno));
        /* a stub JSON file, or a directory of them (searched like the station's stub_dir) */
        if (r->stub_path && recipe_is_dir(r->stub_path))
            r->plan.stub_dir = r->stub_path;
        else
            r->plan.stub_file = r->stub_path;
    } else {
        r->stub = cJSON_IsTrue(v) ? RECIPE_STUB_AUTO : RECIPE_STUB_OFF;
    }
    r->plan.stub = r->stub != RECIPE_STUB_OFF;
    /* 1/ or 2/ of a stub_flasher directory (the station's or the recipe's; stub.h) */
    if (stub_pick_parse(recipe_get_str(root, "$.stub_version", &d), &r->plan.stub_pick) != 0)
        recipe_fail(err, INVALID, EST_ERECIPE, "$.stub_version",
                    "must be default, 1, legacy, 2 or esp-flasher-stub");
    /* CHANGE_BAUDRATE to this after sync; the sync rate (115200) means no change */
    r->plan.flash_baud = r->baud;

    s = recipe_get_str(root, "$.flash_mode", &d);
    r->plan.flash_mode = strcmp(s, "keep") == 0 ? -1 : chip_flash_mode_code(s);
    {
        plan_err_t perr;
        if (plan_set_flash_size(&r->plan, recipe_get_str(root, "$.flash_size", &d), &perr) != 0)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_size", "%s", perr.msg);
        if (plan_set_flash_freq(&r->plan, recipe_get_str(root, "$.flash_freq", &d), &perr) != 0)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_freq", "%s", perr.msg);
    }
    r->erase = strcmp(recipe_get_str(root, "$.erase", &d), "all") == 0 ? RECIPE_ERASE_ALL
                                                                       : RECIPE_ERASE_REGIONS;
    r->plan.compress = recipe_get_bool(root, "$.compress", &d);
    r->plan.verify = recipe_get_bool(root, "$.verify", &d);
    r->plan.skip_unchanged = recipe_get_bool(root, "$.skip_unchanged", &d);
    r->plan.erase_all = r->erase == RECIPE_ERASE_ALL;
    recipe_reset_modes(r, root, &d);
    recipe_check_params(r, err);

    checks = cJSON_GetObjectItemCaseSensitive(root, "checks");
    s = recipe_get_str(checks, "$.checks.min_flash_size", &d);
    r->min_flash_size = s ? chip_parse_size(s) : 0;
    rev = cJSON_GetObjectItemCaseSensitive(checks, "chip_revision");
    r->rev_min = 0;
    r->rev_max = 9999;
    if ((s = recipe_get_str(rev, "$.checks.chip_revision.min", &d)))
        r->rev_min = recipe_parse_rev(s);
    if ((s = recipe_get_str(rev, "$.checks.chip_revision.max", &d)))
        r->rev_max = recipe_parse_rev(s);
    if (r->rev_min > r->rev_max)
        recipe_fail(err, INVALID, EST_ERECIPE, "$.checks.chip_revision",
                    "min (v%u.%u) is above max (v%u.%u)", r->rev_min / 100, r->rev_min % 100,
                    r->rev_max / 100, r->rev_max % 100);

    recipe_extract_test(r, root, &d, err);
    retry = cJSON_GetObjectItemCaseSensitive(root, "retry");
    r->attempts = (unsigned)recipe_get_int(retry, "$.retry.attempts", &d);
    r->retry_lower_baud = recipe_get_bool(retry, "$.retry.lower_baud", &d);

    recipe_extract_images(r, root, flags, &d, err);
    cJSON_Delete(d);
    if (err->n || (flags & RECIPE_NO_IMAGES)) return;
    {
        plan_err_t perr;
        if (plan_finish(&r->plan, &perr) != 0)
            recipe_fail(err, est_class_name(perr.cls), EST_EOFFSET, "$.images", "%s", perr.msg);
        else if (plan_finalize(&r->plan, &perr) != 0) /* the rules spanning fields */
            recipe_fail(err, INVALID, EST_ERECIPE, "$", "%s", perr.msg);
    }
    recipe_check_fit(r, err);
}

/* Line and column of a byte offset, for JSON syntax errors. */
void recipe_line_col(const char *text, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

void recipe_free(recipe_t *r)
{
    if (!r) return;
    free(r->text);
    free(r->dir);
    free(r->stub_path);
    free(r->test_expect);
    for (size_t i = 0; i < r->n_images; i++)
        free(r->images[i].file);
    plan_free(&r->plan);
    memset(r, 0, sizeof *r);
    plan_init(&r->plan);
}

int recipe_load_mem(const char *text, size_t len, const char *base_dir, unsigned flags, recipe_t *r,
                    recipe_err_t *err_out)
{
    recipe_err_t local;
    recipe_err_t *err = err_out ? err_out : &local;
    cJSON *root;
    const char *end = NULL;
    uint8_t digest[32];

    recipe_err_reset(err);
    memset(r, 0, sizeof *r);
    plan_init(&r->plan);
    if (len > RECIPE_MAX_BYTES)
        return recipe_fail(err, INVALID, EST_ERECIPE, "$",
                           "the recipe is %zu bytes; the limit is %u bytes (1 MiB)", len,
                           RECIPE_MAX_BYTES);
    if (memchr(text, '\0', len))
        return recipe_fail(err, INVALID, EST_ERECIPE, "$",
                           "the recipe contains a NUL byte; it must be JSON text");
    r->text = malloc(len + 1);
    r->dir = strdup(base_dir ? base_dir : ".");
    if (!r->text || !r->dir) {
        recipe_free(r);
        return recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
    }
    memcpy(r->text, text, len);
    r->text[len] = '\0';
    r->text_len = len;
    /* identity = the exact bytes: `sha256sum recipe.json` gives the hash jobs record */
    image_sha256((const uint8_t *)text, len, digest);
    est_hex(digest, sizeof digest, r->hash);

    root = cJSON_ParseWithOpts(r->text, &end, true);
    if (!root) {
        unsigned line, col;
        size_t off = end ? (size_t)(end - r->text) : 0;
        recipe_line_col(r->text, off, &line, &col);
        recipe_free(r);
        return recipe_fail(err, INVALID, EST_ERECIPE, "$",
                           "not valid JSON (syntax error near line %u, column %u)", line, col);
    }
    recipe_validate_root(root, err);
    if (err->n == 0) recipe_extract(r, root, flags, err);
    cJSON_Delete(root);
    if (err->n) {
        recipe_free(r);
        return err->code;
    }
    return 0;
}

int recipe_load_file(const char *path, unsigned flags, recipe_t *r, recipe_err_t *err_out)
{
    recipe_err_t local;
    recipe_err_t *err = err_out ? err_out : &local;
    uint8_t *buf;
    size_t len;
    char *copy, *dir;
    int rc;

    recipe_err_reset(err);
    memset(r, 0, sizeof *r);
    plan_init(&r->plan);
    rc = recipe_read_file(path, RECIPE_MAX_BYTES, &buf, &len);
    if (rc == -EFBIG)
        return recipe_fail(err, INVALID, EST_ERECIPE, "$",
                           "%s is larger than the recipe limit of %u bytes (1 MiB)", path,
                           RECIPE_MAX_BYTES);
    if (rc)
        return recipe_fail(err, INVALID, rc, "$", "cannot read recipe %s: %s", path, strerror(-rc));
    copy = strdup(path);
    if (!copy) {
        free(buf);
        return recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
    }
    dir = dirname(copy);
    rc = recipe_load_mem((const char *)buf, len, dir, flags, r, err);
    free(copy);
    free(buf);
    return rc;
}

int recipe_check_device(const recipe_t *r, const chip_info_t *chip, unsigned rev,
                        uint32_t flash_size, recipe_err_t *err_out)
{
    recipe_err_t local;
    recipe_err_t *err = err_out ? err_out : &local;
    char list[128], a[32], b[32];
    plan_err_t perr;

    recipe_err_reset(err);
    if (!chip || !recipe_allows(r, chip->id)) {
        recipe_chip_list(r, list, sizeof list);
        return recipe_fail(err, "wrong_chip", EST_ECHIP, "$.chip",
                           "the board has %s; recipe %s %s allows %s",
                           chip ? chip->pretty : "an unknown chip", r->name, r->version, list);
    }
    if (rev < r->rev_min || rev > r->rev_max)
        return recipe_fail(err, "wrong_chip", EST_ECHIP, "$.checks.chip_revision",
                           "the board's %s is revision v%u.%u; the recipe allows v%u.%u to "
                           "v%u.%u",
                           chip->pretty, rev / 100, rev % 100, r->rev_min / 100, r->rev_min % 100,
                           r->rev_max / 100, r->rev_max % 100);
    if (r->min_flash_size && flash_size < r->min_flash_size) {
        if (flash_size == 0)
            return recipe_fail(err, "flash_too_small", EST_ETOOBIG, "$.checks.min_flash_size",
                               "the flash size could not be read (unknown JEDEC ID); the recipe "
                               "requires at least %s",
                               plan_fmt_size(r->min_flash_size, b, sizeof b));
        return recipe_fail(err, "flash_too_small", EST_ETOOBIG, "$.checks.min_flash_size",
                           "the board has %s of flash; the recipe requires at least %s",
                           plan_fmt_size(flash_size, a, sizeof a),
                           plan_fmt_size(r->min_flash_size, b, sizeof b));
    }
    if (flash_size && plan_check_flash(&r->plan, flash_size, &perr) != 0)
        return recipe_fail(err, est_class_name(perr.cls), EST_ETOOBIG, "$.images", "%s", perr.msg);
    return 0;
}

