/* SPDX-License-Identifier: MIT */
/* recipe.c — recipe validation (a hand-written validator following schema/recipe.schema.json:
 * Debian has no maintained C JSON-Schema validator), loading into a plan, device checks, and the
 * import of ESP-IDF's build/flasher_args.json (reference §13).
 * Must not: log, talk to a device or the database; every problem goes into recipe_err_t. */
#include "recipe.h"
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

#define RECIPE_MAX_FLASH (128u * 1024 * 1024) /* largest flash any supported chip addresses */
#define RECIPE_MAX_OFFSET (RECIPE_MAX_FLASH - PLAN_SECTOR)

/* ---- the rules (schema/recipe.schema.json, kept in agreement by tests/unit/test_recipe.c) ---- */

static const char *const recipe_chip_names[] = {"esp8266", "esp32",   "esp32s2", "esp32s3",
                                                "esp32c2", "esp32c3", "esp32c6", "esp32h2",
                                                "esp32c5", "esp32p4", NULL};
static const char *const recipe_modes[] = {"keep", "qio", "qout", "dio", "dout", NULL};
static const char *const recipe_sizes[] = {"keep", "detect", "256KB",  "512KB",  "1MB",
                                           "2MB",  "4MB",    "8MB",    "16MB",   "32MB",
                                           "64MB", "128MB",  "2MB-c1", "4MB-c1", NULL};
static const char *const recipe_min_sizes[] = {"256KB", "512KB", "1MB",  "2MB",   "4MB", "8MB",
                                               "16MB",  "32MB",  "64MB", "128MB", NULL};
static const char *const recipe_freqs[] = {"keep", "80m", "60m", "48m", "40m", "30m", "26m",
                                           "24m",  "20m", "16m", "15m", "12m", NULL};
static const char *const recipe_erases[] = {"regions", "all", NULL};
static const char *const recipe_befores[] = {"default-reset", "no-reset", "usb-reset", NULL};
static const char *const recipe_afters[] = {"hard-reset", "no-reset", NULL};

#define T_BOOL RECIPE_T_BOOL
#define T_INT RECIPE_T_INT
#define T_STR RECIPE_T_STRING
#define T_ARR RECIPE_T_ARRAY
#define T_OBJ RECIPE_T_OBJECT
#define NAME_RE "^[A-Za-z0-9][A-Za-z0-9 _.+-]*$"
#define NAME_FORM "letters, digits, space and _.+- (starting with a letter or digit)"
#define REV_RE "^v?[0-9]{1,2}[.][0-9]{1,2}$"
#define REV_FORM "a revision like \"v0.3\" or \"1.1\""
#define PATH_RE "^[^/]"
#define PATH_FORM "a relative path"

static const recipe_field_t recipe_field_table[] = {
    {.path = "$", .types = T_OBJ},
    {.path = "$.$schema", .types = T_STR, .max_len = 256},
    {.path = "$.description", .types = T_STR, .max_len = 2000},
    {.path = "$.name",
     .types = T_STR,
     .required = true,
     .pattern = NAME_RE,
     .form = NAME_FORM,
     .min_len = 1,
     .max_len = RECIPE_NAME_MAX},
    {.path = "$.version",
     .types = T_STR,
     .required = true,
     .pattern = "^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
     .form = "letters, digits and _.+- (starting with a letter or digit)",
     .min_len = 1,
     .max_len = RECIPE_NAME_MAX},
    {.path = "$.chip",
     .types = T_STR | T_ARR,
     .required = true,
     .enums = recipe_chip_names,
     .min_items = 1,
     .max_items = CHIP__COUNT,
     .unique = true},
    {.path = "$.chip[*]", .types = T_STR, .enums = recipe_chip_names},
    {.path = "$.baud",
     .types = T_INT,
     .has_range = true,
     .minimum = 9600,
     .maximum = 5000000,
     .dflt = "115200"},
    {.path = "$.stub",
     .types = T_BOOL | T_STR,
     .pattern = PATH_RE,
     .form = PATH_FORM,
     .min_len = 1,
     .max_len = 4096,
     .dflt = "true"},
    {.path = "$.flash_mode", .types = T_STR, .enums = recipe_modes, .dflt = "\"keep\""},
    {.path = "$.flash_size", .types = T_STR, .enums = recipe_sizes, .dflt = "\"keep\""},
    {.path = "$.flash_freq", .types = T_STR, .enums = recipe_freqs, .dflt = "\"keep\""},
    {.path = "$.erase", .types = T_STR, .enums = recipe_erases, .dflt = "\"regions\""},
    {.path = "$.compress", .types = T_BOOL, .dflt = "true"},
    {.path = "$.verify", .types = T_BOOL, .dflt = "true"},
    {.path = "$.skip_unchanged", .types = T_BOOL, .dflt = "false"},
    {.path = "$.before", .types = T_STR, .enums = recipe_befores, .dflt = "\"default-reset\""},
    {.path = "$.after", .types = T_STR, .enums = recipe_afters, .dflt = "\"hard-reset\""},
    {.path = "$.images",
     .types = T_ARR,
     .required = true,
     .min_items = 1,
     .max_items = PLAN_MAX_IMAGES},
    {.path = "$.images[*]", .types = T_OBJ},
    {.path = "$.images[*].offset",
     .types = T_INT | T_STR,
     .pattern = "^(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})$",
     .form = "a hex (0x...) or decimal number",
     .required = true,
     .has_range = true,
     .minimum = 0,
     .maximum = RECIPE_MAX_OFFSET,
     .multiple_of = PLAN_SECTOR},
    {.path = "$.images[*].file",
     .types = T_STR,
     .required = true,
     .pattern = PATH_RE,
     .form = PATH_FORM,
     .min_len = 1,
     .max_len = 4096},
    {.path = "$.images[*].sha256",
     .types = T_STR,
     .required = true,
     .pattern = "^[0-9a-f]{64}$",
     .form = "64 lower-case hex digits"},
    {.path = "$.images[*].label",
     .types = T_STR,
     .pattern = NAME_RE,
     .form = NAME_FORM,
     .min_len = 1,
     .max_len = RECIPE_NAME_MAX},
    {.path = "$.checks", .types = T_OBJ},
    {.path = "$.checks.min_flash_size", .types = T_STR, .enums = recipe_min_sizes},
    {.path = "$.checks.chip_revision", .types = T_OBJ},
    {.path = "$.checks.chip_revision.min", .types = T_STR, .pattern = REV_RE, .form = REV_FORM},
    {.path = "$.checks.chip_revision.max", .types = T_STR, .pattern = REV_RE, .form = REV_FORM},
    {.path = "$.test", .types = T_OBJ},
    {.path = "$.test.baud",
     .types = T_INT,
     .has_range = true,
     .minimum = 9600,
     .maximum = 5000000,
     .dflt = "115200"},
    {.path = "$.test.expect", .types = T_STR, .required = true, .min_len = 1, .max_len = 256},
    {.path = "$.test.timeout_ms",
     .types = T_INT,
     .has_range = true,
     .minimum = 100,
     .maximum = 600000,
     .dflt = "10000"},
    {.path = "$.retry", .types = T_OBJ},
    {.path = "$.retry.attempts",
     .types = T_INT,
     .has_range = true,
     .minimum = 1,
     .maximum = 10,
     .dflt = "1"},
    {.path = "$.retry.lower_baud", .types = T_BOOL, .dflt = "false"},
};
#define RECIPE_N_FIELDS (sizeof recipe_field_table / sizeof recipe_field_table[0])

const recipe_field_t *recipe_fields(size_t *n)
{
    *n = RECIPE_N_FIELDS;
    return recipe_field_table;
}

static const recipe_field_t *recipe_field(const char *path)
{
    for (size_t i = 0; i < RECIPE_N_FIELDS; i++)
        if (strcmp(recipe_field_table[i].path, path) == 0) return &recipe_field_table[i];
    return NULL;
}

/* ---- errors ---- */

/* recipe_invalid is not (yet) in est_err.h's class list: look it up by name so the right class
 * is used as soon as it is added there; until then the nearest one, usage. */
static est_class_t recipe_class(const char *name)
{
    est_class_t c = est_class_from_name(name);
    return c == EST_CLASS__COUNT ? EST_CLASS_USAGE : c;
}

static void recipe_err_reset(recipe_err_t *e)
{
    memset(e, 0, sizeof *e);
    e->cls = EST_CLASS_NONE;
    e->cls_name = "none";
}

static int recipe_fail(recipe_err_t *e, const char *cls, int code, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Add a problem; the first one decides the class and code. Returns the error code. */
static int recipe_fail(recipe_err_t *e, const char *cls, int code, const char *path,
                       const char *fmt, ...)
{
    va_list ap;
    if (e->n == 0) {
        e->cls_name = cls;
        e->cls = recipe_class(cls);
        e->code = code;
    }
    if (e->n < RECIPE_MAX_ERRORS) {
        recipe_problem_t *p = &e->items[e->n];
        snprintf(p->path, sizeof p->path, "%s", path);
        va_start(ap, fmt);
        vsnprintf(p->text, sizeof p->text, fmt, ap);
        va_end(ap);
    }
    e->n++;
    if (e->n == 1)
        snprintf(e->msg, sizeof e->msg, "%s: %s", e->items[0].path, e->items[0].text);
    else
        snprintf(e->msg, sizeof e->msg, "%s: %s (and %zu more problem%s)", e->items[0].path,
                 e->items[0].text, e->n - 1, e->n == 2 ? "" : "s");
    return e->code;
}

#define INVALID "recipe_invalid"

/* ---- small helpers ---- */

/* Characters, not bytes: JSON Schema's lengths count code points. */
static size_t recipe_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Offsets as strings: "0x..." hex or plain decimal (no octal: "010" is ten). */
static int recipe_parse_number(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s) return -1;
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            return -1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return -1;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* A JSON number that is an integer (JSON Schema 2020-12: 1.0 is an integer too). */
static bool recipe_json_int(const cJSON *v, int64_t *out)
{
    double d;
    if (!cJSON_IsNumber(v)) return false;
    d = v->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || (double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* "got ..." text for messages: strings quoted and cut, containers named. */
static const char *recipe_got(const cJSON *v, bool hex, char *buf, size_t cap)
{
    int64_t i;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        size_t k = 0;
        char cut[48];
        for (; k < n && k < 40; k++)
            cut[k] = (s[k] >= 0 && s[k] < 0x20) ? '?' : s[k];
        cut[k] = '\0';
        snprintf(buf, cap, "\"%s%s\"", cut, n > 40 ? "..." : "");
    } else if (recipe_json_int(v, &i)) {
        if (hex && i >= 0)
            snprintf(buf, cap, "0x%" PRIx64, (uint64_t)i);
        else
            snprintf(buf, cap, "%" PRId64, i);
    } else if (cJSON_IsNumber(v)) {
        snprintf(buf, cap, "%g", v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(buf, cap, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(buf, cap, "an array");
    } else {
        snprintf(buf, cap, "an object");
    }
    return buf;
}

static unsigned recipe_type_of(const cJSON *v)
{
    int64_t i;
    if (cJSON_IsBool(v)) return T_BOOL;
    if (recipe_json_int(v, &i)) return T_INT;
    if (cJSON_IsString(v)) return T_STR;
    if (cJSON_IsArray(v)) return T_ARR;
    if (cJSON_IsObject(v)) return T_OBJ;
    return 0; /* null, or a number with a fraction */
}

static const char *recipe_type_words(unsigned types, char *buf, size_t cap)
{
    static const struct {
        unsigned t;
        const char *w;
    } words[] = {{T_BOOL, "a boolean"},
                 {T_INT, "an integer"},
                 {T_STR, "a string"},
                 {T_ARR, "an array"},
                 {T_OBJ, "an object"}};
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (types & words[i].t)
            n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? " or " : "",
                                  words[i].w);
    return buf;
}

static void recipe_enum_words(const char *const *e, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (; *e && n < cap; e++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"", n ? ", " : "", *e);
}

static bool recipe_in_enum(const char *const *e, const char *v)
{
    for (; *e; e++)
        if (strcmp(*e, v) == 0) return true;
    return false;
}

/* JSON path of a member: $.a.b, or $["0x1000"] when the key is not an identifier. */
static void recipe_path_key(char *out, size_t cap, const char *parent, const char *key)
{
    bool plain = *key != '\0' && !(*key >= '0' && *key <= '9');
    for (const char *k = key; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '$'))
            plain = false;
    if (plain)
        snprintf(out, cap, "%s.%s", parent, key);
    else
        snprintf(out, cap, "%s[\"%.60s\"]", parent, key);
}

/* ---- the validator ---- */

typedef struct recipe_vctx_s {
    recipe_err_t *err;
    regex_t re[RECIPE_N_FIELDS];
    bool re_ok[RECIPE_N_FIELDS];
} recipe_vctx_t;

static void recipe_vctx_init(recipe_vctx_t *c, recipe_err_t *err)
{
    memset(c, 0, sizeof *c);
    c->err = err;
    for (size_t i = 0; i < RECIPE_N_FIELDS; i++)
        if (recipe_field_table[i].pattern)
            c->re_ok[i] =
                regcomp(&c->re[i], recipe_field_table[i].pattern, REG_EXTENDED | REG_NOSUB) == 0;
}

static void recipe_vctx_free(recipe_vctx_t *c)
{
    for (size_t i = 0; i < RECIPE_N_FIELDS; i++)
        if (c->re_ok[i]) regfree(&c->re[i]);
}

static void recipe_validate(recipe_vctx_t *c, const recipe_field_t *f, const cJSON *v,
                            const char *jpath);

static void recipe_check_int(recipe_vctx_t *c, const recipe_field_t *f, int64_t i, const cJSON *v,
                             const char *jpath)
{
    char got[64];
    bool hex = f->multiple_of >= 0x1000;
    if (f->has_range && i < f->minimum) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be at least %" PRId64 " (got %s)",
                    f->minimum, recipe_got(v, hex, got, sizeof got));
    } else if (f->has_range && i > f->maximum) {
        if (hex)
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath,
                        "must be at most 0x%" PRIx64 " (got %s)", (uint64_t)f->maximum,
                        recipe_got(v, hex, got, sizeof got));
        else
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be at most %" PRId64 " (got %s)",
                        f->maximum, recipe_got(v, hex, got, sizeof got));
    } else if (f->multiple_of && i % f->multiple_of) {
        if (hex)
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath,
                        "must be a multiple of 0x%" PRIx64 " (got %s)", (uint64_t)f->multiple_of,
                        recipe_got(v, hex, got, sizeof got));
        else
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath,
                        "must be a multiple of %" PRId64 " (got %s)", f->multiple_of,
                        recipe_got(v, hex, got, sizeof got));
    }
}

static void recipe_check_string(recipe_vctx_t *c, const recipe_field_t *f, const cJSON *v,
                                const char *jpath)
{
    const char *s = v->valuestring;
    size_t len = recipe_utf8_len(s);
    char got[64], words[512];
    size_t idx = (size_t)(f - recipe_field_table);

    if (f->min_len && len < f->min_len) {
        if (f->min_len == 1)
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must not be empty");
        else
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath,
                        "must be at least %u characters (got %zu)", f->min_len, len);
        return;
    }
    if (f->max_len && len > f->max_len) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be at most %u characters (got %zu)",
                    f->max_len, len);
        return;
    }
    if (f->enums && !recipe_in_enum(f->enums, s)) {
        recipe_enum_words(f->enums, words, sizeof words);
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be one of %s (got %s)", words,
                    recipe_got(v, false, got, sizeof got));
        return;
    }
    if (f->pattern && (!c->re_ok[idx] || regexec(&c->re[idx], s, 0, NULL, 0) != 0)) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be %s (got %s)",
                    f->form ? f->form : "of the documented form",
                    recipe_got(v, false, got, sizeof got));
        return;
    }
    /* Integer rules apply to numbers written as strings (offsets): "0x1001" is as misaligned
     * as 4097. */
    if (f->types & T_INT) {
        uint64_t u;
        if (recipe_parse_number(s, &u) != 0 || u > INT64_MAX)
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be %s (got %s)",
                        f->form ? f->form : "a number", recipe_got(v, false, got, sizeof got));
        else
            recipe_check_int(c, f, (int64_t)u, v, jpath);
    }
}

static void recipe_check_array(recipe_vctx_t *c, const recipe_field_t *f, const cJSON *v,
                               const char *jpath)
{
    size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
    char ipath[160], items_path[96];
    const recipe_field_t *fi;
    const cJSON *it;

    if (f->min_items && n < f->min_items) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must have at least %u item%s",
                    f->min_items, f->min_items == 1 ? "" : "s");
        return;
    }
    if (f->max_items && n > f->max_items) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must have at most %u items (got %zu)",
                    f->max_items, n);
        return;
    }
    snprintf(items_path, sizeof items_path, "%s[*]", f->path);
    fi = recipe_field(items_path);
    cJSON_ArrayForEach(it, v)
    {
        snprintf(ipath, sizeof ipath, "%s[%zu]", jpath, i);
        if (f->unique) {
            size_t k = 0;
            const cJSON *prev;
            cJSON_ArrayForEach(prev, v)
            {
                if (k++ >= i) break;
                if (cJSON_Compare(prev, it, true)) {
                    recipe_fail(c->err, INVALID, EST_ERECIPE, ipath,
                                "repeats item %zu; items must be unique", k - 1);
                    break;
                }
            }
        }
        if (fi) recipe_validate(c, fi, it, ipath);
        i++;
    }
}

static void recipe_check_object(recipe_vctx_t *c, const recipe_field_t *f, const cJSON *v,
                                const char *jpath)
{
    size_t plen = strlen(f->path);
    const cJSON *m;
    char cpath[160], fpath[160], words[512];

    cJSON_ArrayForEach(m, v)
    {
        const recipe_field_t *fm;
        const cJSON *prev;
        recipe_path_key(cpath, sizeof cpath, jpath, m->string);
        for (prev = v->child; prev != m; prev = prev->next)
            if (strcmp(prev->string, m->string) == 0) break;
        if (prev != m) {
            recipe_fail(c->err, INVALID, EST_ERECIPE, cpath,
                        "appears twice; a property may be given once");
            continue;
        }
        snprintf(fpath, sizeof fpath, "%s.%s", f->path, m->string);
        fm = recipe_field(fpath);
        if (!fm) {
            size_t n = 0;
            words[0] = '\0';
            for (size_t i = 0; i < RECIPE_N_FIELDS; i++) {
                const char *p = recipe_field_table[i].path;
                if (strncmp(p, f->path, plen) == 0 && p[plen] == '.' &&
                    !strpbrk(p + plen + 1, ".[") && n < sizeof words)
                    n += (size_t)snprintf(words + n, sizeof words - n, "%s%s", n ? ", " : "",
                                          p + plen + 1);
            }
            recipe_fail(c->err, INVALID, EST_ERECIPE, cpath, "unknown property (known here: %s)",
                        words);
            continue;
        }
        recipe_validate(c, fm, m, cpath);
    }
    for (size_t i = 0; i < RECIPE_N_FIELDS; i++) {
        const recipe_field_t *fr = &recipe_field_table[i];
        if (fr->required && strncmp(fr->path, f->path, plen) == 0 && fr->path[plen] == '.' &&
            !strpbrk(fr->path + plen + 1, ".[") &&
            !cJSON_GetObjectItemCaseSensitive(v, fr->path + plen + 1))
            recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "missing required property \"%s\"",
                        fr->path + plen + 1);
    }
}

static void recipe_validate(recipe_vctx_t *c, const recipe_field_t *f, const cJSON *v,
                            const char *jpath)
{
    unsigned t = recipe_type_of(v);
    char words[96], got[64];
    int64_t i = 0;

    if (!(t & f->types)) {
        recipe_fail(c->err, INVALID, EST_ERECIPE, jpath, "must be %s (got %s)",
                    recipe_type_words(f->types, words, sizeof words),
                    recipe_got(v, false, got, sizeof got));
        return;
    }
    switch (t) {
    case T_INT:
        recipe_json_int(v, &i);
        recipe_check_int(c, f, i, v, jpath);
        break;
    case T_STR: recipe_check_string(c, f, v, jpath); break;
    case T_ARR: recipe_check_array(c, f, v, jpath); break;
    case T_OBJ: recipe_check_object(c, f, v, jpath); break;
    default: break;
    }
}

/* ---- reading values (after validation: types are right) ---- */

/* The member at a field path, or the field's default (parsed from the table) when absent. */
static const cJSON *recipe_get(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    const char *key = strrchr(fpath, '.') + 1;
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    const recipe_field_t *f;
    if (v) return v;
    f = recipe_field(fpath);
    if (!f || !f->dflt) return NULL;
    cJSON_Delete(*dflt);
    *dflt = cJSON_Parse(f->dflt);
    return *dflt;
}

static const char *recipe_get_str(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    const cJSON *v = recipe_get(obj, fpath, dflt);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t recipe_get_int(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    const cJSON *v = recipe_get(obj, fpath, dflt);
    int64_t i = 0;
    recipe_json_int(v, &i);
    return i;
}

static bool recipe_get_bool(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    return cJSON_IsTrue(recipe_get(obj, fpath, dflt));
}

static unsigned recipe_parse_rev(const char *s)
{
    unsigned major, minor;
    if (*s == 'v') s++;
    if (sscanf(s, "%u.%u", &major, &minor) != 2) return 0;
    return major * 100 + minor;
}

/* ---- files ---- */

/* Read a whole regular file of at most `limit` bytes, NUL-terminated. -errno, or -EFBIG. */
static int recipe_read_file(const char *path, size_t limit, uint8_t **out, size_t *len)
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

static void recipe_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    uint8_t d[32];
    image_sha256(data, len, d);
    est_hex(d, sizeof d, out);
}

/* dir + "/" + rel (malloc'ed) */
static char *recipe_join(const char *dir, const char *rel)
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

/* Flash parameters must be ones every allowed chip can encode (reference §12). */
static void recipe_check_params(const recipe_t *r, recipe_err_t *err)
{
    for (size_t i = 0; i < r->n_chips; i++) {
        const chip_info_t *c = chip_get(r->chips[i]);
        const char *fs = r->plan.flash_size, *ff = r->plan.flash_freq;
        if (strcmp(fs, "keep") != 0 && strcmp(fs, "detect") != 0 &&
            chip_flash_size_code_name(c, fs) < 0)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.flash_size",
                        "\"%s\" is not a flash size %s can have in its image header", fs, c->name);
        if (strcmp(ff, "keep") != 0 && chip_flash_freq_code(c, ff) < 0) {
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
    uint32_t fixed = chip_parse_size(r->plan.flash_size);
    char sz[32], jpath[48];
    for (size_t i = 0; i < r->n_images; i++) {
        const recipe_image_t *im = &r->images[i];
        uint64_t end = (uint64_t)im->offset + im->size;
        snprintf(jpath, sizeof jpath, "$.images[%zu]", i);
        if (fixed && end > fixed)
            recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                        "%s ends at 0x%" PRIx64 ", beyond flash_size %s", im->file, end,
                        r->plan.flash_size);
        else if (r->min_flash_size && end > r->min_flash_size)
            recipe_fail(err, "bad_offset", EST_EOFFSET, jpath,
                        "%s ends at 0x%" PRIx64 ", beyond checks.min_flash_size %s: a board "
                        "with that flash would pass the check and still not hold the image",
                        im->file, end, plan_fmt_size(r->min_flash_size, sz, sizeof sz));
    }
}

static int recipe_enum_index(const char *const *e, const char *v)
{
    for (int i = 0; e[i]; i++)
        if (strcmp(e[i], v) == 0) return i;
    return -1;
}

static bool recipe_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Fill r from a validated document. */
static void recipe_extract(recipe_t *r, const cJSON *root, unsigned flags, recipe_err_t *err)
{
    cJSON *d = NULL;
    const cJSON *v, *checks, *rev, *test, *retry, *images, *it;
    const char *s;
    size_t i = 0;

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
    /* CHANGE_BAUDRATE to this after sync; the sync rate (115200) means no change */
    r->plan.flash_baud = r->baud;

    s = recipe_get_str(root, "$.flash_mode", &d);
    r->plan.flash_mode = strcmp(s, "keep") == 0 ? -1 : chip_flash_mode_code(s);
    snprintf(r->plan.flash_size, sizeof r->plan.flash_size, "%s",
             recipe_get_str(root, "$.flash_size", &d));
    snprintf(r->plan.flash_freq, sizeof r->plan.flash_freq, "%s",
             recipe_get_str(root, "$.flash_freq", &d));
    r->erase = strcmp(recipe_get_str(root, "$.erase", &d), "all") == 0 ? RECIPE_ERASE_ALL
                                                                       : RECIPE_ERASE_REGIONS;
    r->plan.compress = recipe_get_bool(root, "$.compress", &d);
    r->plan.verify = recipe_get_bool(root, "$.verify", &d);
    r->plan.skip_unchanged = recipe_get_bool(root, "$.skip_unchanged", &d);
    r->plan.erase_all = r->erase == RECIPE_ERASE_ALL;
    switch (recipe_enum_index(recipe_befores, recipe_get_str(root, "$.before", &d))) {
    case 1: r->plan.before = PLAN_BEFORE_NO_RESET; break;
    case 2: r->plan.before = PLAN_BEFORE_USB_RESET; break;
    default: r->plan.before = PLAN_BEFORE_DEFAULT; break;
    }
    r->plan.after = strcmp(recipe_get_str(root, "$.after", &d), "no-reset") == 0
                        ? PLAN_AFTER_NO_RESET
                        : PLAN_AFTER_HARD_RESET;
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

    test = cJSON_GetObjectItemCaseSensitive(root, "test");
    if (test) {
        r->test = true;
        r->test_baud = (uint32_t)recipe_get_int(test, "$.test.baud", &d);
        r->test_expect = strdup(recipe_get_str(test, "$.test.expect", &d));
        r->test_timeout_ms = (uint32_t)recipe_get_int(test, "$.test.timeout_ms", &d);
        if (!r->test_expect)
            recipe_fail(err, "internal", -ENOMEM, "$.test.expect", "out of memory");
        /* the test reads what the application prints after the reset: without the reset the
         * chip stays in its loader and the test could only fail */
        if (r->plan.after == PLAN_AFTER_NO_RESET)
            recipe_fail(err, INVALID, EST_ERECIPE, "$.test",
                        "a post-flash test needs \"after\": \"hard-reset\" (the board is reset "
                        "into its application and its output read), but the recipe says "
                        "\"no-reset\"");
        /* the job runs it (jobs/job_sm.c, state test); the plan borrows the text */
        r->plan.test = true;
        r->plan.test_baud = r->test_baud;
        r->plan.test_expect = r->test_expect;
        r->plan.test_timeout_ms = r->test_timeout_ms;
    }
    retry = cJSON_GetObjectItemCaseSensitive(root, "retry");
    r->attempts = (unsigned)recipe_get_int(retry, "$.retry.attempts", &d);
    r->retry_lower_baud = recipe_get_bool(retry, "$.retry.lower_baud", &d);

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
        im->file = strdup(recipe_get_str(it, "$.images[*].file", &d));
        snprintf(im->sha256, sizeof im->sha256, "%s", recipe_get_str(it, "$.images[*].sha256", &d));
        s = recipe_get_str(it, "$.images[*].label", &d);
        snprintf(im->label, sizeof im->label, "%s", s ? s : "");
        snprintf(jpath, sizeof jpath, "$.images[%zu]", i++);
        if (!im->file) {
            recipe_fail(err, "internal", -ENOMEM, jpath, "out of memory");
            continue;
        }
        recipe_load_image(r, im, flags, jpath, err);
    }
    cJSON_Delete(d);
    if (err->n || (flags & RECIPE_NO_IMAGES)) return;
    {
        plan_err_t perr;
        if (plan_finish(&r->plan, &perr) != 0)
            recipe_fail(err, est_class_name(perr.cls), EST_EOFFSET, "$.images", "%s", perr.msg);
    }
    recipe_check_fit(r, err);
}

/* Line and column of a byte offset, for JSON syntax errors. */
static void recipe_line_col(const char *text, size_t off, unsigned *line, unsigned *col)
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
    recipe_vctx_t *vc;
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
    vc = malloc(sizeof *vc);
    if (!r->text || !r->dir || !vc) {
        free(vc);
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
        free(vc);
        recipe_free(r);
        return recipe_fail(err, INVALID, EST_ERECIPE, "$",
                           "not valid JSON (syntax error near line %u, column %u)", line, col);
    }
    recipe_vctx_init(vc, err);
    recipe_validate(vc, recipe_field("$"), root, "$");
    recipe_vctx_free(vc);
    free(vc);
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

/* ---- import of ESP-IDF build/flasher_args.json (reference §13) ---- */

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
    /* name and version: options, else the project, else the app's file name */
    if (o && o->name)
        recipe_sanitize(o->name, true, name, sizeof name);
    else if (recipe_json_str(desc, "project_name"))
        recipe_sanitize(recipe_json_str(desc, "project_name"), true, name, sizeof name);
    for (size_t i = 0; !name[0] && i < n; i++)
        if (strcmp(ims[i].label, "app") == 0) {
            char *base = strdup(ims[i].abs), *dot;
            if (base) {
                char *bn = basename(base);
                if ((dot = strrchr(bn, '.'))) *dot = '\0';
                recipe_sanitize(bn, true, name, sizeof name);
                free(base);
            }
        }
    if (!name[0]) snprintf(name, sizeof name, "imported");
    if (o && o->version)
        recipe_sanitize(o->version, false, version, sizeof version);
    else if (recipe_json_str(desc, "project_version"))
        recipe_sanitize(recipe_json_str(desc, "project_version"), false, version, sizeof version);
    if (!version[0]) snprintf(version, sizeof version, "unversioned");
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
        recipe_fail(err, "usage", rc, "$", "%s exists (overwrite it explicitly)", path);
    else if (rc)
        recipe_fail(err, "usage", rc, "$", "cannot write %s: %s", path, strerror(-rc));
    free(tmp);
    return rc;
}
