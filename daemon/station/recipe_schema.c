/* SPDX-License-Identifier: MIT */
/* recipe_schema.c — recipe validation: a hand-written validator following
 * schema/recipe.schema.json (Debian has no maintained C JSON-Schema validator), driven by a table
 * of the schema's properties; errors with JSON paths; value readers for the loader.
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


/* ---- the rules (schema/recipe.schema.json, kept in agreement by tests/unit/test_recipe.c) ---- */

static const char *const recipe_chip_names[] = {"esp8266", "esp32",   "esp32s2", "esp32s3",
                                                "esp32c2", "esp32c3", "esp32c6", "esp32h2",
                                                "esp32c5", "esp32p4", NULL};
const char *const recipe_modes[] = {"keep", "qio", "qout", "dio", "dout", NULL};
const char *const recipe_sizes[] = {"keep", "detect", "256KB",  "512KB",  "1MB",
                                           "2MB",  "4MB",    "8MB",    "16MB",   "32MB",
                                           "64MB", "128MB",  "2MB-c1", "4MB-c1", NULL};
static const char *const recipe_min_sizes[] = {"256KB", "512KB", "1MB",  "2MB",   "4MB", "8MB",
                                               "16MB",  "32MB",  "64MB", "128MB", NULL};
const char *const recipe_freqs[] = {"keep", "80m", "60m", "48m", "40m", "30m", "26m",
                                           "24m",  "20m", "16m", "15m", "12m", NULL};
static const char *const recipe_erases[] = {"regions", "all", NULL};
/* stub.h stub_pick_parse() spellings */
static const char *const recipe_stub_versions[] = {"default", "1", "legacy", "2",
                                                   "esp-flasher-stub", NULL};
const char *const recipe_befores[] = {"default-reset", "no-reset", "usb-reset", NULL};
const char *const recipe_afters[] = {"hard-reset", "no-reset", NULL};

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
    {.path = "$.baud", /* ranges: plan.h, held against the schema file by test_plan */
     .types = T_INT,
     .has_range = true,
     .minimum = PLAN_BAUD_MIN,
     .maximum = PLAN_BAUD_MAX,
     .dflt = "115200"},
    {.path = "$.stub",
     .types = T_BOOL | T_STR,
     .pattern = PATH_RE,
     .form = PATH_FORM,
     .min_len = 1,
     .max_len = 4096,
     .dflt = "true"},
    {.path = "$.stub_version", .types = T_STR, .enums = recipe_stub_versions,
     .dflt = "\"default\""},
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
     .minimum = PLAN_BAUD_MIN,
     .maximum = PLAN_BAUD_MAX,
     .dflt = "115200"},
    {.path = "$.test.expect",
     .types = T_STR,
     .required = true,
     .min_len = 1,
     .max_len = PLAN_TEST_EXPECT_MAX},
    {.path = "$.test.timeout_ms",
     .types = T_INT,
     .has_range = true,
     .minimum = PLAN_TEST_TIMEOUT_MIN,
     .maximum = PLAN_TEST_TIMEOUT_MAX,
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

const recipe_field_t *recipe_field(const char *path)
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

void recipe_err_reset(recipe_err_t *e)
{
    memset(e, 0, sizeof *e);
    e->cls = EST_CLASS_NONE;
    e->cls_name = "none";
}

/* Add a problem; the first one decides the class and code. Returns the error code. */
int recipe_fail(recipe_err_t *e, const char *cls, int code, const char *path,
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
int recipe_parse_number(const char *s, uint64_t *out)
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
bool recipe_json_int(const cJSON *v, int64_t *out)
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

void recipe_enum_words(const char *const *e, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (; *e && n < cap; e++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"", n ? ", " : "", *e);
}

bool recipe_in_enum(const char *const *e, const char *v)
{
    for (; *e; e++)
        if (strcmp(*e, v) == 0) return true;
    return false;
}

/* JSON path of a member: $.a.b, or $["0x1000"] when the key is not an identifier. */
void recipe_path_key(char *out, size_t cap, const char *parent, const char *key)
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

/* Validate a parsed recipe against the rules; problems go into `err`. */
void recipe_validate_root(const cJSON *root, recipe_err_t *err)
{
    recipe_vctx_t *vc = malloc(sizeof *vc);
    if (!vc) {
        recipe_fail(err, "internal", -ENOMEM, "$", "out of memory");
        return;
    }
    recipe_vctx_init(vc, err);
    recipe_validate(vc, recipe_field("$"), root, "$");
    recipe_vctx_free(vc);
    free(vc);
}

/* ---- reading values (after validation: types are right) ---- */

/* The member at a field path, or the field's default (parsed from the table) when absent. */
const cJSON *recipe_get(const cJSON *obj, const char *fpath, cJSON **dflt)
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

const char *recipe_get_str(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    const cJSON *v = recipe_get(obj, fpath, dflt);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t recipe_get_int(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    const cJSON *v = recipe_get(obj, fpath, dflt);
    int64_t i = 0;
    recipe_json_int(v, &i);
    return i;
}

bool recipe_get_bool(const cJSON *obj, const char *fpath, cJSON **dflt)
{
    return cJSON_IsTrue(recipe_get(obj, fpath, dflt));
}

unsigned recipe_parse_rev(const char *s)
{
    unsigned major, minor;
    if (*s == 'v') s++;
    if (sscanf(s, "%u.%u", &major, &minor) != 2) return 0;
    return major * 100 + minor;
}

