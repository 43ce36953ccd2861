/* SPDX-License-Identifier: MIT */
/* test_recipe.c — unit tests of recipes (daemon/station/recipe_*.c): a valid recipe becomes a plan; each
 * kind of error names its JSON path and class; image files (missing, sha256 mismatch, overlap,
 * wrong chip); device checks; flasher_args.json import of the IDF v4.0 / v5.x / v6.0 fixtures;
 * import → write → load round trip; and schema/recipe.schema.json held against the validator.
 * Must not: write outside its mkdtemp directories (fixtures under tests/data are read-only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chip.h"
#include "est_err.h"
#include "image.h"
#include "plan.h"
#include "recipe.h"

#define DATA ESTN_SOURCE_DIR "/tests/data"
#define FA DATA "/flasher_args"

/* ---- helpers ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    image_sha256(data, len, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void file_sha(const char *path, char out[65])
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    sha_hex(b, len, out);
    free(b);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

typedef struct {
    char dir[64];
} tmp_t;

static int tmp_setup(void **state)
{
    tmp_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/estn-recipe-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmp_t *t = *state;
    nftw(t->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static void tmp_path(const tmp_t *t, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", t->dir, name);
}

/* Load text as a recipe anchored in `dir`; expect failure with class/path/text. */
static void expect_err(const char *text, const char *dir, unsigned flags, const char *cls,
                       const char *path, const char *text_part)
{
    recipe_t r;
    recipe_err_t e;
    int rc = recipe_load_mem(text, strlen(text), dir, flags, &r, &e);
    if (rc == 0) fail_msg("accepted, expected %s at %s: %s\n%s", cls, path, text_part, text);
    assert_true(e.n >= 1);
    if (strcmp(e.cls_name, cls) != 0 || strcmp(e.items[0].path, path) != 0 ||
        !strstr(e.items[0].text, text_part))
        fail_msg("expected %s %s: ...%s...\n     got %s %s", cls, path, text_part, e.cls_name,
                 e.msg);
    assert_int_equal(e.cls, est_class_from_name(cls) == EST_CLASS__COUNT
                                ? EST_CLASS_USAGE
                                : est_class_from_name(cls));
    /* the message starts with the path */
    assert_memory_equal(e.msg, path, strlen(path));
    assert_int_equal(r.n_images, 0);
    assert_null(r.text);
    recipe_free(&r);
}

/* A base recipe (schema-valid) as cJSON, for mutation. */
static cJSON *base_recipe(void)
{
    cJSON *j = cJSON_Parse("{\"name\": \"blink\", \"version\": \"1.0\", \"chip\": \"esp32c3\","
                           " \"images\": [{\"offset\": \"0x0\", \"file\": \"a.bin\", \"sha256\": "
                           "\""
                           "0000000000000000000000000000000000000000000000000000000000000000"
                           "\"}, {\"offset\": \"0x10000\", \"file\": \"b.bin\", \"sha256\": "
                           "\""
                           "0000000000000000000000000000000000000000000000000000000000000000"
                           "\"}]}");
    assert_non_null(j);
    return j;
}

/* Set `key` of the object at `where` ("" = root, "images.1", "checks") to JSON `value`, or
 * delete it when value is NULL. */
static char *mutate(const char *where, const char *key, const char *value)
{
    cJSON *root = base_recipe(), *obj = root;
    char buf[64], *save = NULL, *tok;
    char *out;
    snprintf(buf, sizeof buf, "%s", where);
    for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        cJSON *next = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(obj, atoi(tok))
                                                   : cJSON_GetObjectItem(obj, tok);
        if (!next) {
            next = cJSON_CreateObject();
            cJSON_AddItemToObject(obj, tok, next);
        }
        obj = next;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (value) {
        cJSON *v = cJSON_Parse(value);
        assert_non_null(v);
        cJSON_AddItemToObject(obj, key, v);
    }
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- a valid recipe ---- */

static void test_valid_recipe_to_plan(void **state)
{
    (void)state;
    recipe_t r;
    recipe_err_t e;
    char sha[65];
    size_t len;
    uint8_t *app;

    if (recipe_load_file(DATA "/recipes/c3-station.json", 0, &r, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(e.n, 0);
    assert_string_equal(r.name, "station");
    assert_string_equal(r.version, "1.4.2");
    file_sha(DATA "/recipes/c3-station.json", sha); /* the identity is the file's bytes */
    assert_string_equal(r.hash, sha);
    assert_int_equal(strlen(r.text), r.text_len);
    assert_int_equal(r.n_chips, 1);
    assert_int_equal(r.chips[0], CHIP_ESP32C3);
    assert_int_equal(r.plan.chip, CHIP_ESP32C3);
    assert_int_equal(r.baud, 460800);
    assert_int_equal(r.stub, RECIPE_STUB_OFF);
    assert_int_equal(r.plan.flash_baud, 460800); /* what the job acts on */
    assert_false(r.plan.stub);
    assert_int_equal(r.plan.flash_mode, 2); /* dio */
    assert_string_equal(plan_flash_size_name(&r.plan, (char[24]){0}, 24), "4MB");
    assert_string_equal(plan_flash_freq_name(&r.plan, (char[24]){0}, 24), "80m");
    assert_int_equal(r.erase, RECIPE_ERASE_REGIONS);
    assert_true(r.plan.compress);
    assert_true(r.plan.verify);
    assert_int_equal(r.plan.before, PLAN_BEFORE_DEFAULT);
    assert_int_equal(r.plan.after, PLAN_AFTER_HARD_RESET);
    assert_int_equal(r.min_flash_size, 4u << 20);
    assert_int_equal(r.rev_min, 3);
    assert_int_equal(r.rev_max, 199);
    assert_true(r.test);
    assert_int_equal(r.test_baud, 115200);
    assert_string_equal(r.test_expect, "station ready");
    assert_int_equal(r.test_timeout_ms, 8000);
    /* the job runs the test from the plan */
    assert_true(r.plan.test);
    assert_int_equal(r.plan.test_baud, 115200);
    assert_string_equal(r.plan.test_expect, "station ready");
    assert_int_equal(r.plan.test_timeout_ms, 8000);
    assert_int_equal(r.attempts, 2);

    /* recipe order kept in images[], plan sorted by offset with the data loaded */
    assert_int_equal(r.n_images, 3);
    assert_string_equal(r.images[0].label, "app");
    assert_int_equal(r.images[0].offset, 0x10000);
    assert_int_equal(r.images[1].offset, 0);
    assert_int_equal(r.images[2].offset, 0x8000);
    assert_int_equal(r.plan.n_images, 3);
    assert_int_equal(r.plan.images[0].offset, 0);
    assert_int_equal(r.plan.images[1].offset, 0x8000);
    assert_int_equal(r.plan.images[2].offset, 0x10000);
    assert_string_equal(r.plan.images[2].path, "../flasher_args/idf-v5.x/station.bin");
    app = slurp(FA "/idf-v5.x/station.bin", &len);
    assert_int_equal(r.plan.images[2].size, len);
    assert_memory_equal(r.plan.images[2].data, app, len);
    assert_int_equal(r.images[0].size, len);
    free(app);
    recipe_free(&r);
    recipe_free(&r); /* harmless twice */
}

static void test_defaults(void **state)
{
    (void)state;
    recipe_t r;
    recipe_err_t e;
    if (recipe_load_file(DATA "/recipes/minimal.json", 0, &r, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(r.n_chips, 2);
    assert_int_equal(r.plan.chip, CHIP_UNKNOWN); /* two allowed: detect, then check */
    assert_int_equal(r.baud, 115200);
    assert_int_equal(r.stub, RECIPE_STUB_AUTO);
    assert_int_equal(r.plan.flash_baud, 115200); /* = the sync rate: no change */
    assert_true(r.plan.stub);
    assert_null(r.plan.stub_dir);
    assert_null(r.plan.stub_file);
    assert_false(r.plan.skip_unchanged);
    assert_false(r.plan.erase_all);
    assert_int_equal(r.plan.flash_mode, -1);
    assert_int_equal(r.plan.stub_pick, STUB_PICK_DEFAULT);
    assert_string_equal(plan_flash_size_name(&r.plan, (char[24]){0}, 24), "keep");
    assert_string_equal(plan_flash_freq_name(&r.plan, (char[24]){0}, 24), "keep");
    assert_int_equal(r.erase, RECIPE_ERASE_REGIONS);
    assert_true(r.plan.compress && r.plan.verify);
    assert_int_equal(r.plan.before, PLAN_BEFORE_DEFAULT);
    assert_int_equal(r.plan.after, PLAN_AFTER_HARD_RESET);
    assert_int_equal(r.min_flash_size, 0);
    assert_int_equal(r.rev_min, 0);
    assert_int_equal(r.rev_max, 9999);
    assert_false(r.test);
    assert_false(r.plan.test);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.images[0].label, "");
    recipe_free(&r);
}

/* baud, stub (file or directory), erase and skip_unchanged reach the plan the job acts on */
static void test_speed_fields_to_plan(void **state)
{
    tmp_t *t = *state;
    char path[256], *text;
    recipe_t r;
    recipe_err_t e;
    FILE *f;
    tmp_path(t, "stubs", path, sizeof path);
    assert_int_equal(mkdir(path, 0755), 0);
    tmp_path(t, "esp32c3.json", path, sizeof path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{}", f);
    fclose(f);

    text = mutate("", "stub", "\"stubs\"");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_int_equal(r.stub, RECIPE_STUB_FILE);
    assert_true(r.plan.stub);
    assert_non_null(r.plan.stub_dir);
    assert_non_null(strstr(r.plan.stub_dir, "/stubs"));
    assert_null(r.plan.stub_file);
    recipe_free(&r);
    free(text);

    text = mutate("", "stub", "\"esp32c3.json\"");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_non_null(r.plan.stub_file);
    assert_non_null(strstr(r.plan.stub_file, "/esp32c3.json"));
    assert_null(r.plan.stub_dir);
    recipe_free(&r);
    free(text);

    text = mutate("", "stub", "false");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_false(r.plan.stub);
    recipe_free(&r);
    free(text);

    text = mutate("", "baud", "921600");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_int_equal(r.plan.flash_baud, 921600);
    assert_int_equal(r.plan.baud, 115200); /* the sync rate stays */
    recipe_free(&r);
    free(text);

    text = mutate("", "erase", "\"all\"");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_true(r.plan.erase_all);
    recipe_free(&r);
    free(text);

    text = mutate("", "skip_unchanged", "true");
    assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
    assert_true(r.plan.skip_unchanged);
    recipe_free(&r);
    free(text);

    text = mutate("", "skip_unchanged", "\"yes\"");
    expect_err(text, t->dir, RECIPE_NO_IMAGES, "recipe_invalid", "$.skip_unchanged",
               "must be a boolean");
    free(text);

    /* stub_version: 1/ or 2/ of a stub_flasher directory (stub.h stub_pick_parse spellings) */
    static const struct {
        const char *v;
        stub_pick_t want;
    } picks[] = {{"\"default\"", STUB_PICK_DEFAULT},
                 {"\"1\"", STUB_PICK_LEGACY},
                 {"\"legacy\"", STUB_PICK_LEGACY},
                 {"\"2\"", STUB_PICK_NEW},
                 {"\"esp-flasher-stub\"", STUB_PICK_NEW}};
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
        text = mutate("", "stub_version", picks[i].v);
        assert_int_equal(recipe_load_mem(text, strlen(text), t->dir, RECIPE_NO_IMAGES, &r, &e), 0);
        assert_int_equal(r.plan.stub_pick, picks[i].want);
        recipe_free(&r);
        free(text);
    }
    text = mutate("", "stub_version", "\"3\"");
    expect_err(text, t->dir, RECIPE_NO_IMAGES, "recipe_invalid", "$.stub_version", "one of");
    free(text);
}

/* ---- errors in the recipe text ---- */

typedef struct {
    const char *where, *key, *value; /* mutation of the base recipe */
    const char *path, *text;         /* expected first problem */
} case_t;

static void test_schema_errors_name_the_path(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"images.1", "offset", "\"0x1001\"", "$.images[1].offset",
         "must be a multiple of 0x1000 (got \"0x1001\")"},
        {"images.0", "offset", "4097", "$.images[0].offset",
         "must be a multiple of 0x1000 (got 0x1001)"},
        {"images.0", "offset", "\"0x8000000\"", "$.images[0].offset",
         "must be at most 0x7fff000 (got \"0x8000000\")"},
        {"images.0", "offset", "-4096", "$.images[0].offset", "must be at least 0"},
        {"images.0", "offset", "\"12abc\"", "$.images[0].offset",
         "must be a hex (0x...) or decimal number (got \"12abc\")"},
        {"images.0", "offset", "4096.5", "$.images[0].offset",
         "must be an integer or a string (got 4096.5)"},
        {"images.0", "offset", NULL, "$.images[0]", "missing required property \"offset\""},
        {"images.0", "sha256", "\"ABCDEF\"", "$.images[0].sha256",
         "must be 64 lower-case hex digits"},
        {"images.0", "file", "\"/srv/fw/app.bin\"", "$.images[0].file",
         "must be a relative path (got \"/srv/fw/app.bin\")"},
        {"images.0", "file", "\"\"", "$.images[0].file", "must not be empty"},
        {"images.0", "size", "1", "$.images[0].size", "unknown property (known here: offset, "},
        {"images.0", "label", "\"boot loader!\"", "$.images[0].label", "must be letters"},
        {"", "images", "[]", "$.images", "must have at least 1 item"},
        {"", "images", "{}", "$.images", "must be an array (got an object)"},
        {"", "name", NULL, "$", "missing required property \"name\""},
        {"", "name", "\"\"", "$.name", "must not be empty"},
        {"", "name", "\"-x\"", "$.name", "must be letters, digits, space and _.+-"},
        {"", "name",
         "\""
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "\"",
         "$.name", "must be at most 64 characters (got 70)"},
        {"", "version", "1", "$.version", "must be a string (got 1)"},
        {"", "chip", "\"esp31\"", "$.chip", "must be one of \"esp8266\", \"esp32\""},
        {"", "chip", "[]", "$.chip", "must have at least 1 item"},
        {"", "chip", "[\"esp32\", \"esp32\"]", "$.chip[1]", "repeats item 0"},
        {"", "chip", "[\"esp32\", 5]", "$.chip[1]", "must be a string (got 5)"},
        {"", "chip", "null", "$.chip", "must be a string or an array (got null)"},
        {"", "baud", "\"fast\"", "$.baud", "must be an integer (got \"fast\")"},
        {"", "baud", "100", "$.baud", "must be at least 9600 (got 100)"},
        {"", "stub", "\"/opt/stub.json\"", "$.stub", "must be a relative path"},
        {"", "stub", "1", "$.stub", "must be a boolean or a string (got 1)"},
        {"", "verfy", "true", "$.verfy", "unknown property (known here: $schema, description"},
        {"", "verify", "\"yes\"", "$.verify", "must be a boolean (got \"yes\")"},
        {"", "flash_mode", "\"fast\"", "$.flash_mode",
         "must be one of \"keep\", \"qio\", \"qout\", \"dio\", \"dout\" (got \"fast\")"},
        {"", "flash_size", "\"3MB\"", "$.flash_size", "must be one of \"keep\", \"detect\""},
        {"", "flash_size", "\"2MB-c1\"", "$.flash_size",
         "\"2MB-c1\" is not a flash size esp32c3 can have"},
        {"", "flash_freq", "\"60m\"", "$.flash_freq",
         "esp32c3 has no 60m flash frequency (it knows 80m, 40m, 26m, 20m)"},
        {"", "before", "\"default_reset\"", "$.before", "must be one of \"default-reset\""},
        {"", "after", "\"soft-reset\"", "$.after", "must be one of \"hard-reset\", \"no-reset\""},
        {"", "erase", "\"some\"", "$.erase", "must be one of \"regions\", \"all\""},
        {"checks", "min_flash_size", "\"detect\"", "$.checks.min_flash_size",
         "must be one of \"256KB\""},
        {"checks", "max_flash_size", "\"4MB\"", "$.checks.max_flash_size",
         "unknown property (known here: min_flash_size, chip_revision)"},
        {"checks.chip_revision", "min", "\"0.3.1\"", "$.checks.chip_revision.min",
         "must be a revision like \"v0.3\" or \"1.1\" (got \"0.3.1\")"},
        {"checks.chip_revision", "max", "\"v0.2\"", "$.checks.chip_revision", "is above max"},
        {"test", "baud", "115200", "$.test", "missing required property \"expect\""},
        {"test", "expect", "\"\"", "$.test.expect", "must not be empty"},
        {"test", "timeout_ms", "5", "$.test.timeout_ms", "must be at least 100"},
        {"retry", "attempts", "11", "$.retry.attempts", "must be at most 10 (got 11)"},
        {"", "retry", "true", "$.retry", "must be an object (got true)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const case_t *c = &cases[i];
        char *text;
        if (strcmp(c->path, "$.checks.chip_revision") == 0) {
            /* needs min too: build by hand */
            cJSON *root = base_recipe();
            cJSON_AddItemToObject(root, "checks",
                                  cJSON_Parse("{\"chip_revision\": {\"min\": \"v1.0\", "
                                              "\"max\": \"v0.2\"}}"));
            text = cJSON_PrintUnformatted(root);
            cJSON_Delete(root);
        } else {
            text = mutate(c->where, c->key, c->value);
        }
        expect_err(text, "/nonexistent", RECIPE_NO_IMAGES, "recipe_invalid", c->path, c->text);
        free(text);
    }
    /* and the base itself is fine (the cases fail for their own reason) */
    {
        char *text = mutate("", "flash_size", "\"4MB\"");
        recipe_t r;
        recipe_err_t e;
        if (recipe_load_mem(text, strlen(text), "/nonexistent", RECIPE_NO_IMAGES, &r, &e) != 0)
            fail_msg("%s", e.msg);
        recipe_free(&r);
        free(text);
    }
}

/* A post-flash test reads the application's output after the hard reset: a recipe that has one
 * and says "after": "no-reset" is refused, naming the test. Defaults reach the plan. */
static void test_test_needs_hard_reset(void **state)
{
    (void)state;
    recipe_t r;
    recipe_err_t e;
    cJSON *j = base_recipe();
    char *txt;
    cJSON_AddItemToObject(j, "test", cJSON_Parse("{\"expect\": \"station ready\"}"));
    cJSON_AddStringToObject(j, "after", "no-reset");
    txt = cJSON_PrintUnformatted(j);
    expect_err(txt, ".", RECIPE_NO_IMAGES, "recipe_invalid", "$.test", "\"hard-reset\"");
    free(txt);
    cJSON_ReplaceItemInObject(j, "after", cJSON_CreateString("hard-reset"));
    txt = cJSON_PrintUnformatted(j);
    if (recipe_load_mem(txt, strlen(txt), ".", RECIPE_NO_IMAGES, &r, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(r.plan.test);
    assert_int_equal(r.plan.test_baud, 115200);
    assert_int_equal(r.plan.test_timeout_ms, 10000);
    assert_string_equal(r.plan.test_expect, "station ready");
    assert_int_equal(r.plan.after, PLAN_AFTER_HARD_RESET);
    recipe_free(&r);
    free(txt);
    cJSON_Delete(j);
}

static void test_text_level_errors(void **state)
{
    (void)state;
    recipe_t r;
    recipe_err_t e;
    char *big;
    const size_t big_len = RECIPE_MAX_BYTES + 1;

    expect_err("{\"name\": }", ".", 0, "recipe_invalid", "$",
               "not valid JSON (syntax error near line 1, column 10)");
    expect_err("{\n  \"name\": \"a\",\n  \"version\": 1.0.0\n}", ".", 0, "recipe_invalid", "$",
               "near line 3");
    expect_err("[]", ".", 0, "recipe_invalid", "$", "must be an object (got an array)");
    expect_err("{\"name\": \"a\", \"name\": \"b\"}", ".", 0, "recipe_invalid", "$.name",
               "appears twice");
    expect_err("{\"a b\": 1}", ".", 0, "recipe_invalid", "$[\"a b\"]", "unknown property");

    /* several problems are all listed */
    const char *many = "{\"name\": \"\", \"version\": 2, \"chip\": \"x\", \"images\": []}";
    assert_int_equal(recipe_load_mem(many, strlen(many), ".", 0, &r, &e), EST_ERECIPE);
    assert_int_equal(e.n, 4);
    assert_string_equal(e.items[0].path, "$.name");
    assert_string_equal(e.items[1].path, "$.version");
    assert_string_equal(e.items[2].path, "$.chip");
    assert_string_equal(e.items[3].path, "$.images");
    assert_non_null(strstr(e.msg, "(and 3 more problems)"));

    /* size limit, and NUL bytes */
    big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    assert_int_equal(recipe_load_mem(big, big_len, ".", 0, &r, &e), EST_ERECIPE);
    assert_non_null(strstr(e.msg, "limit is 1048576 bytes"));
    free(big);
    assert_int_equal(recipe_load_mem("{}\0{}", 5, ".", 0, &r, &e), EST_ERECIPE);
    assert_non_null(strstr(e.msg, "NUL"));
}

static void test_recipe_file_errors(void **state)
{
    tmp_t *t = *state;
    recipe_t r;
    recipe_err_t e;
    char p[160];
    char *big;

    assert_int_not_equal(recipe_load_file("/nonexistent/recipe.json", 0, &r, &e), 0);
    assert_string_equal(e.cls_name, "recipe_invalid");
    assert_non_null(strstr(e.msg, "cannot read recipe /nonexistent/recipe.json"));
    tmp_path(t, "big.json", p, sizeof p);
    big = calloc(1, RECIPE_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, ' ', RECIPE_MAX_BYTES + 1);
    spit(p, big, RECIPE_MAX_BYTES + 1);
    free(big);
    assert_int_equal(recipe_load_file(p, 0, &r, &e), EST_ERECIPE);
    assert_non_null(strstr(e.msg, "larger than the recipe limit"));
}

/* ---- image files ---- */

/* A small valid ESP32-family image with the given header chip ID. */
static size_t make_image(uint8_t *b, size_t cap, uint16_t chip_id)
{
    assert_true(cap >= 64);
    memset(b, 0, cap);
    b[0] = 0xE9;
    b[1] = 1;
    b[2] = 2;
    b[3] = 0x20;
    b[8] = 0xEE;
    b[12] = (uint8_t)chip_id;
    b[13] = (uint8_t)(chip_id >> 8);
    b[17] = b[18] = 0xFF; /* max_rev_full */
    /* segment: addr, len 16, data */
    b[24 + 4] = 16;
    uint8_t sum = 0xEF;
    for (int i = 0; i < 16; i++) {
        b[32 + i] = (uint8_t)(i * 7 + 1);
        sum ^= b[32 + i];
    }
    b[63] = sum; /* segment data ends at 48; the checksum sits at 48 | 15 = 63 */
    return 64;
}

#define C3 "\"esp32c3\""

/* Write a recipe (chip: a JSON value) with the given images ("offset", "file", sha or NULL = real)
 * into dir. */
static void write_recipe(const tmp_t *t, const char *name, const char *chip,
                         const char *const (*imgs)[3], size_t n, const char *extra)
{
    char p[160], line[512], sha[65], fp[200];
    size_t cap = 8192, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len,
                            "{\"name\": \"t\", \"version\": \"1\", \"chip\": %s,%s "
                            "\"images\": [",
                            chip, extra ? extra : "");
    for (size_t i = 0; i < n; i++) {
        if (imgs[i][2]) {
            snprintf(sha, sizeof sha, "%s", imgs[i][2]);
        } else {
            snprintf(fp, sizeof fp, "%s/%s", t->dir, imgs[i][1]);
            file_sha(fp, sha);
        }
        snprintf(line, sizeof line, "%s{\"offset\": \"%s\", \"file\": \"%s\", \"sha256\": \"%s\"}",
                 i ? ", " : "", imgs[i][0], imgs[i][1], sha);
        len += (size_t)snprintf(text + len, cap - len, "%s", line);
    }
    len += (size_t)snprintf(text + len, cap - len, "]}");
    tmp_path(t, name, p, sizeof p);
    spit(p, text, len);
    free(text);
}

static void expect_file_err(const tmp_t *t, const char *name, unsigned flags, const char *cls,
                            const char *path, const char *part)
{
    char p[160];
    recipe_t r;
    recipe_err_t e;
    tmp_path(t, name, p, sizeof p);
    if (recipe_load_file(p, flags, &r, &e) == 0) fail_msg("%s accepted", name);
    if (strcmp(e.cls_name, cls) != 0 || strcmp(e.items[0].path, path) != 0 ||
        !strstr(e.items[0].text, part))
        fail_msg("expected %s %s: ...%s...\n     got %s %s", cls, path, part, e.cls_name, e.msg);
}

static void test_image_file_errors(void **state)
{
    tmp_t *t = *state;
    uint8_t img[64], s3[64], blob[0x2000];
    char p[160], sub[160];
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";

    make_image(img, sizeof img, 5); /* ESP32-C3 */
    make_image(s3, sizeof s3, 9);   /* ESP32-S3 */
    memset(blob, 0x5A, sizeof blob);
    tmp_path(t, "boot.bin", p, sizeof p);
    spit(p, img, sizeof img);
    tmp_path(t, "s3.bin", p, sizeof p);
    spit(p, s3, sizeof s3);
    tmp_path(t, "blob.bin", p, sizeof p);
    spit(p, blob, sizeof blob);
    tmp_path(t, "empty.bin", p, sizeof p);
    spit(p, "", 0);
    tmp_path(t, "sub", sub, sizeof sub);
    assert_int_equal(mkdir(sub, 0755), 0);

    {
        const char *const ok[][3] = {{"0x0", "boot.bin", NULL}, {"0x1000", "blob.bin", NULL}};
        write_recipe(t, "ok.json", C3, ok, 2, NULL);
        recipe_t r;
        recipe_err_t e;
        tmp_path(t, "ok.json", p, sizeof p);
        if (recipe_load_file(p, 0, &r, &e) != 0) fail_msg("%s", e.msg);
        assert_int_equal(r.plan.n_images, 2);
        recipe_free(&r);
        /* a recipe in a sub directory climbs with "..": allowed unless refused */
        char sha[65], full[400];
        tmp_path(t, "boot.bin", p, sizeof p);
        file_sha(p, sha);
        snprintf(full, sizeof full,
                 "{\"name\": \"t\", \"version\": \"1\", \"chip\": \"esp32c3\", \"images\": "
                 "[{\"offset\": 0, \"file\": \"../boot.bin\", \"sha256\": \"%s\"}]}",
                 sha);
        tmp_path(t, "sub/up.json", p, sizeof p);
        spit(p, full, strlen(full));
        if (recipe_load_file(p, 0, &r, &e) != 0) fail_msg("%s", e.msg);
        recipe_free(&r);
        expect_file_err(t, "sub/up.json", RECIPE_NO_PARENT, "recipe_invalid", "$.images[0].file",
                        "must stay inside the recipe's directory");
    }
    {
        const char *const m[][3] = {{"0x0", "boot.bin", NULL}, {"0x1000", "nope.bin", zeros}};
        write_recipe(t, "missing.json", C3, m, 2, NULL);
        expect_file_err(t, "missing.json", 0, "image_missing", "$.images[1].file",
                        "nope.bin: No such file or directory");
        /* RECIPE_NO_IMAGES: the text alone is fine */
        recipe_t r;
        recipe_err_t e;
        tmp_path(t, "missing.json", p, sizeof p);
        assert_int_equal(recipe_load_file(p, RECIPE_NO_IMAGES, &r, &e), 0);
        assert_int_equal(r.plan.n_images, 0);
        assert_int_equal(r.n_images, 2);
        recipe_free(&r);
    }
    {
        const char *const m[][3] = {{"0x0", "boot.bin", zeros}};
        write_recipe(t, "sha.json", C3, m, 1, NULL);
        expect_file_err(t, "sha.json", 0, "image_invalid", "$.images[0].sha256",
                        "boot.bin has sha256 ");
    }
    {
        const char *const m[][3] = {{"0x0", "sub", zeros}};
        write_recipe(t, "dir.json", C3, m, 1, NULL);
        expect_file_err(t, "dir.json", 0, "image_missing", "$.images[0].file", "Is a directory");
    }
    {
        const char *const m[][3] = {{"0x0", "empty.bin", NULL}};
        write_recipe(t, "empty.json", C3, m, 1, NULL);
        expect_file_err(t, "empty.json", 0, "image_invalid", "$.images[0]", "is empty");
    }
    {
        /* blob is 8 KiB: at 0x0 it runs into the image at 0x1000 */
        const char *const m[][3] = {{"0x1000", "boot.bin", NULL}, {"0x0", "blob.bin", NULL}};
        write_recipe(t, "overlap.json", C3, m, 2, NULL);
        expect_file_err(t, "overlap.json", 0, "bad_offset", "$.images", "images overlap");
    }
    {
        const char *const m[][3] = {{"0x0", "boot.bin", NULL}, {"0x3ff000", "blob.bin", NULL}};
        write_recipe(t, "beyond.json", C3, m, 2, " \"flash_size\": \"4MB\",");
        expect_file_err(t, "beyond.json", 0, "bad_offset", "$.images[1]",
                        "ends at 0x401000, beyond flash_size 4MB");
        write_recipe(t, "beyond2.json", C3, m, 2, " \"checks\": {\"min_flash_size\": \"4MB\"},");
        expect_file_err(t, "beyond2.json", 0, "bad_offset", "$.images[1]",
                        "beyond checks.min_flash_size 4MB");
    }
    {
        const char *const m[][3] = {{"0x0", "boot.bin", NULL}, {"0x10000", "s3.bin", NULL}};
        write_recipe(t, "chip.json", C3, m, 2, NULL);
        expect_file_err(t, "chip.json", 0, "image_invalid", "$.images[1].file",
                        "s3.bin is an image for esp32s3 (chip ID 9 in its header), but the "
                        "recipe allows esp32c3");
        /* allowed when the recipe lists that chip */
        write_recipe(t, "chip2.json", "[\"esp32s3\", \"esp32c3\"]", m, 2, NULL);
        recipe_t r;
        recipe_err_t e;
        tmp_path(t, "chip2.json", p, sizeof p);
        if (recipe_load_file(p, 0, &r, &e) != 0) fail_msg("%s", e.msg);
        recipe_free(&r);
    }
    {
        const char *const m[][3] = {{"0x0", "boot.bin", NULL}};
        write_recipe(t, "stub.json", C3, m, 1, " \"stub\": \"stubs/c3.json\",");
        expect_file_err(t, "stub.json", 0, "image_missing", "$.stub", "cannot read stub file");
    }
}

/* ---- device checks ---- */

static void test_check_device(void **state)
{
    (void)state;
    recipe_t r;
    recipe_err_t e;
    if (recipe_load_file(DATA "/recipes/c3-station.json", 0, &r, &e) != 0) fail_msg("%s", e.msg);

    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 4, 4u << 20, &e), 0);
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 101, 16u << 20, &e), 0);

    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32S3), 4, 4u << 20, &e), EST_ECHIP);
    assert_string_equal(e.cls_name, "wrong_chip");
    assert_int_equal(e.cls, EST_CLASS_WRONG_CHIP);
    assert_non_null(strstr(e.msg, "$.chip: the board has ESP32-S3; recipe station 1.4.2 allows "
                                  "esp32c3"));
    assert_int_equal(recipe_check_device(&r, NULL, 0, 0, &e), EST_ECHIP);

    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 2, 4u << 20, &e), EST_ECHIP);
    assert_string_equal(e.cls_name, "wrong_chip");
    assert_non_null(strstr(e.msg, "revision v0.2; the recipe allows v0.3 to v1.99"));
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 200, 4u << 20, &e), EST_ECHIP);

    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 4, 2u << 20, &e), EST_ETOOBIG);
    assert_string_equal(e.cls_name, "flash_too_small");
    assert_int_equal(e.cls, EST_CLASS_FLASH_TOO_SMALL);
    assert_non_null(strstr(e.msg, "the board has 2MB of flash; the recipe requires at least 4MB"));
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 4, 0, &e), EST_ETOOBIG);
    assert_non_null(strstr(e.msg, "could not be read"));
    recipe_free(&r);

    /* without min_flash_size: images must still fit the detected flash */
    if (recipe_load_file(DATA "/recipes/minimal.json", 0, &r, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32), 0, 1u << 20, &e), 0);
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32), 0, 64u << 10, &e), EST_ETOOBIG);
    assert_string_equal(e.cls_name, "bad_offset"); /* 0x10000 is the end of a 64 KiB flash */
    assert_int_equal(recipe_check_device(&r, chip_get(CHIP_ESP32C3), 0, 1u << 20, &e), EST_ECHIP);
    assert_non_null(strstr(e.msg, "allows esp32, esp32s3"));
    recipe_free(&r);
}

/* ---- flasher_args.json import ---- */

typedef struct {
    const char *fixture;
    const char *chip, *name, *version, *mode, *size, *freq, *before, *after;
    int stub; /* -1 absent */
    size_t n;
    uint32_t offsets[4];
    const char *labels[4];
    const char *files[4]; /* relative to the fixture */
} import_case_t;

static const import_case_t import_cases[] = {
    {"idf-v4.0",
     "esp32",
     "hello-world",
     "unversioned",
     "dio",
     "detect",
     "40m",
     "default-reset",
     "hard-reset",
     -1,
     3,
     {0x1000, 0x8000, 0x10000},
     {"bootloader", "partition_table", "app"},
     {"bootloader/bootloader.bin", "partition_table/partition-table.bin", "hello-world.bin"}},
    {"idf-v5.x",
     "esp32c3",
     "station",
     "1.4.2",
     "dio",
     "4MB",
     "80m",
     "default-reset",
     "hard-reset",
     1,
     4,
     {0x0, 0x8000, 0xd000, 0x10000},
     {"bootloader", "partition-table", "otadata", "app"},
     {"bootloader/bootloader.bin", "partition_table/partition-table.bin", "ota_data_initial.bin",
      "station.bin"}},
    {"idf-v6.0",
     "esp32s3",
     "app-s3",
     "unversioned",
     "dio",
     "8MB",
     "80m",
     "default-reset",
     "no-reset",
     1,
     4,
     {0x0, 0x8000, 0x10000, 0x110000},
     {"bootloader", "partition-table", "app", "storage"},
     {"bootloader/bootloader.bin", "partition_table/partition-table.bin", "app-s3.bin",
      "storage.bin"}},
};

static void check_imported(const import_case_t *c, const char *text, const char *out_dir,
                           const char *rel_prefix)
{
    cJSON *j = cJSON_Parse(text), *imgs;
    recipe_t r;
    recipe_err_t e;
    char fdir[256], fp[512], sha[65], want[512];

    assert_non_null(j);
    snprintf(fdir, sizeof fdir, FA "/%s", c->fixture);
    if (!out_dir) out_dir = fdir;
    assert_string_equal(cJSON_GetObjectItem(j, "chip")->valuestring, c->chip);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, c->name);
    assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, c->version);
    assert_string_equal(cJSON_GetObjectItem(j, "flash_mode")->valuestring, c->mode);
    assert_string_equal(cJSON_GetObjectItem(j, "flash_size")->valuestring, c->size);
    assert_string_equal(cJSON_GetObjectItem(j, "flash_freq")->valuestring, c->freq);
    assert_string_equal(cJSON_GetObjectItem(j, "before")->valuestring, c->before);
    assert_string_equal(cJSON_GetObjectItem(j, "after")->valuestring, c->after);
    if (c->stub < 0)
        assert_null(cJSON_GetObjectItem(j, "stub"));
    else
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(j, "stub")), c->stub);
    imgs = cJSON_GetObjectItem(j, "images");
    assert_int_equal(cJSON_GetArraySize(imgs), c->n);
    for (size_t i = 0; i < c->n; i++) {
        cJSON *im = cJSON_GetArrayItem(imgs, (int)i);
        char off[16];
        snprintf(off, sizeof off, "0x%x", c->offsets[i]);
        assert_string_equal(cJSON_GetObjectItem(im, "offset")->valuestring, off);
        assert_string_equal(cJSON_GetObjectItem(im, "label")->valuestring, c->labels[i]);
        snprintf(want, sizeof want, "%s%s", rel_prefix, c->files[i]);
        assert_string_equal(cJSON_GetObjectItem(im, "file")->valuestring, want);
        snprintf(fp, sizeof fp, "%s/%s", fdir, c->files[i]);
        file_sha(fp, sha);
        assert_string_equal(cJSON_GetObjectItem(im, "sha256")->valuestring, sha);
    }
    cJSON_Delete(j);

    /* it loads as a recipe from where it is meant to be, with the right bytes in the plan */
    if (recipe_load_mem(text, strlen(text), out_dir, 0, &r, &e) != 0)
        fail_msg("%s: %s", c->fixture, e.msg);
    assert_int_equal(r.plan.chip, chip_by_name(c->chip)->id);
    assert_int_equal(r.plan.n_images, c->n);
    for (size_t i = 0; i < c->n; i++) {
        size_t len;
        uint8_t *b;
        snprintf(fp, sizeof fp, "%s/%s", fdir, c->files[i]);
        b = slurp(fp, &len);
        assert_int_equal(r.plan.images[i].offset, c->offsets[i]);
        assert_int_equal(r.plan.images[i].size, len);
        assert_memory_equal(r.plan.images[i].data, b, len);
        free(b);
    }
    recipe_free(&r);
}

static void test_import_fixtures(void **state)
{
    tmp_t *t = *state;
    for (size_t i = 0; i < sizeof import_cases / sizeof import_cases[0]; i++) {
        const import_case_t *c = &import_cases[i];
        char args[256], out[256], prefix[PATH_MAX + 64], real_fa[PATH_MAX];
        char *text = NULL;
        recipe_err_t e;

        snprintf(args, sizeof args, FA "/%s/flasher_args.json", c->fixture);
        /* a recipe next to flasher_args.json: plain relative paths (nothing is written) */
        snprintf(out, sizeof out, FA "/%s/recipe.json", c->fixture);
        if (recipe_import(args, out, NULL, &text, &e) != 0) fail_msg("%s: %s", c->fixture, e.msg);
        check_imported(c, text, NULL, "");
        free(text);

        /* a recipe elsewhere: paths climb out of the temporary directory */
        snprintf(out, sizeof out, "%s/r.json", t->dir);
        if (recipe_import(args, out, NULL, &text, &e) != 0) fail_msg("%s: %s", c->fixture, e.msg);
        assert_non_null(realpath(FA, real_fa));
        {
            /* from the temporary directory up to the deepest directory it shares with the
             * fixtures (/ when the checkout is not under /tmp), then down to the fixture */
            char *tmp_real = realpath(t->dir, NULL);
            const char *x, *y, *rest;
            size_t n = 0;
            assert_non_null(tmp_real);
            x = tmp_real;
            y = real_fa;
            for (;;) { /* skip whole components both paths share */
                size_t lx, ly;
                while (*x == '/') x++;
                while (*y == '/') y++;
                lx = strcspn(x, "/");
                ly = strcspn(y, "/");
                if (!lx || lx != ly || strncmp(x, y, lx)) break;
                x += lx;
                y += ly;
            }
            rest = y;
            while (*x) { /* one ../ per component of the temporary dir left */
                x += strcspn(x, "/");
                while (*x == '/') x++;
                n += (size_t)snprintf(prefix + n, sizeof prefix - n, "../");
            }
            snprintf(prefix + n, sizeof prefix - n, "%s/%s/", rest, c->fixture);
            free(tmp_real);
        }
        check_imported(c, text, t->dir, prefix);
        free(text);
    }
}

static void test_import_options_and_variants(void **state)
{
    tmp_t *t = *state;
    char args[160], out[160], bin[160];
    char *text = NULL;
    recipe_err_t e;
    recipe_import_opts_t o = {.name = "Blink Demo", .version = "2.0.0-rc1", .chip = "esp32"};
    cJSON *j;

    /* options win over the defaults; a chip option that agrees with the header is fine */
    snprintf(out, sizeof out, "%s/r.json", t->dir);
    if (recipe_import(FA "/idf-v4.0/flasher_args.json", out, &o, &text, &e) != 0)
        fail_msg("%s", e.msg);
    j = cJSON_Parse(text);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "Blink Demo");
    assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, "2.0.0-rc1");
    cJSON_Delete(j);
    free(text);
    /* a chip option that contradicts the build is refused */
    o.chip = "esp32s3";
    assert_int_equal(recipe_import(FA "/idf-v5.x/flasher_args.json", out, &o, &text, &e),
                     EST_ERECIPE);
    assert_non_null(strstr(e.msg, "the build is for esp32c3 but the chip option says esp32s3"));
    assert_null(text);

    /* IDF v4.1 style: stub "TRUE" as a string; no flash_settings (write_flash_args with
     * hyphens instead); before/after with underscores */
    snprintf(bin, sizeof bin, "%s/app.bin", t->dir);
    spit(bin, "\x5a\x01\x02\x03", 4);
    snprintf(args, sizeof args, "%s/flasher_args.json", t->dir);
    const char *v41 =
        "{\"write_flash_args\": [\"--flash-mode\", \"qio\", \"--flash-size\", \"2MB\", "
        "\"--flash-freq\", \"26m\"], \"flash_files\": {\"0x10000\": \"app.bin\"}, "
        "\"app\": {\"offset\": \"0x10000\", \"file\": \"app.bin\"}, "
        "\"extra_esptool_args\": {\"after\": \"no_reset\", \"before\": \"no_reset\", "
        "\"stub\": \"TRUE\", \"chip\": \"esp32\"}}";
    spit(args, v41, strlen(v41));
    if (recipe_import(args, out, NULL, &text, &e) != 0) fail_msg("%s", e.msg);
    j = cJSON_Parse(text);
    assert_string_equal(cJSON_GetObjectItem(j, "flash_mode")->valuestring, "qio");
    assert_string_equal(cJSON_GetObjectItem(j, "flash_size")->valuestring, "2MB");
    assert_string_equal(cJSON_GetObjectItem(j, "flash_freq")->valuestring, "26m");
    assert_string_equal(cJSON_GetObjectItem(j, "before")->valuestring, "no-reset");
    assert_string_equal(cJSON_GetObjectItem(j, "after")->valuestring, "no-reset");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stub")));
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "app");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "images"), 0), "file")
            ->valuestring,
        "app.bin");
    cJSON_Delete(j);
    free(text);
}

static void expect_import_err(const tmp_t *t, const char *json, const char *cls, const char *path,
                              const char *part)
{
    char args[160], out[160];
    char *text = NULL;
    recipe_err_t e;
    snprintf(args, sizeof args, "%s/fa.json", t->dir);
    snprintf(out, sizeof out, "%s/r.json", t->dir);
    spit(args, json, strlen(json));
    if (recipe_import(args, out, NULL, &text, &e) == 0) fail_msg("imported: %s", json);
    assert_null(text);
    if (strcmp(e.cls_name, cls) != 0 || strcmp(e.items[0].path, path) != 0 ||
        !strstr(e.items[0].text, part))
        fail_msg("expected %s %s: ...%s...\n     got %s %s", cls, path, part, e.cls_name, e.msg);
}

static void test_import_errors(void **state)
{
    tmp_t *t = *state;
    char out[160], bin[160];
    char *text = NULL;
    recipe_err_t e;

    snprintf(out, sizeof out, "%s/r.json", t->dir);
    assert_int_equal(recipe_import(FA "/encrypted/flasher_args.json", out, NULL, &text, &e),
                     EST_ERECIPE);
    assert_string_equal(e.cls_name, "recipe_invalid");
    assert_string_equal(e.items[0].path, "$.app");
    assert_non_null(strstr(e.msg, "is marked encrypted"));

    snprintf(bin, sizeof bin, "%s/a.bin", t->dir);
    spit(bin, "\x01\x02", 2);
    expect_import_err(t, "{}", "recipe_invalid", "$.flash_files", "not an ESP-IDF");
    expect_import_err(t, "{\"flash_files\": {}}", "recipe_invalid", "$.flash_files",
                      "lists no images");
    expect_import_err(t, "[1]", "recipe_invalid", "$", "must be an object");
    expect_import_err(t, "{\"flash_files\": ", "recipe_invalid", "$", "is not valid JSON");
    expect_import_err(t,
                      "{\"flash_files\": {\"0x10000\": \"a.bin\", \"0x20000\": \"gone.bin\"}, "
                      "\"extra_esptool_args\": {\"chip\": \"esp32\"}}",
                      "image_missing", "$.flash_files[\"0x20000\"]", "gone.bin");
    expect_import_err(t,
                      "{\"flash_files\": {\"0x10800\": \"a.bin\"}, \"extra_esptool_args\": "
                      "{\"chip\": \"esp32\"}}",
                      "bad_offset", "$.flash_files[\"0x10800\"]", "multiple of 0x1000");
    expect_import_err(t,
                      "{\"flash_files\": {\"0x10000\": \"a.bin\"}, \"extra_esptool_args\": "
                      "{\"chip\": \"esp32c61\"}}",
                      "recipe_invalid", "$.extra_esptool_args.chip",
                      "does not support chip \"esp32c61\"");
    expect_import_err(t, "{\"flash_files\": {\"0x10000\": \"a.bin\"}}", "recipe_invalid",
                      "$.extra_esptool_args", "no chip given");
    expect_import_err(t,
                      "{\"flash_files\": {\"0x10000\": \"a.bin\"}, \"extra_esptool_args\": "
                      "{\"chip\": \"esp32\", \"after\": \"watchdog_reset\"}}",
                      "recipe_invalid", "$.extra_esptool_args.after", "\"watchdog_reset\"");
    expect_import_err(t,
                      "{\"flash_settings\": {\"flash_freq\": \"55m\"}, \"flash_files\": "
                      "{\"0x10000\": \"a.bin\"}, \"extra_esptool_args\": {\"chip\": \"esp32\"}}",
                      "recipe_invalid", "$.flash_settings.flash_freq", "(got \"55m\")");
    /* the result is checked like any recipe: 60m is not an ESP32 frequency */
    expect_import_err(t,
                      "{\"flash_settings\": {\"flash_freq\": \"60m\"}, \"flash_files\": "
                      "{\"0x10000\": \"a.bin\"}, \"extra_esptool_args\": {\"chip\": \"esp32\"}}",
                      "recipe_invalid", "$.flash_freq", "esp32 has no 60m");
    /* overlapping images */
    expect_import_err(t,
                      "{\"flash_files\": {\"0x10000\": \"a.bin\", \"0x10000\": \"a.bin\"}, "
                      "\"extra_esptool_args\": {\"chip\": \"esp32\"}}",
                      "bad_offset", "$.images", "overlap");
    /* output directory must exist */
    assert_int_equal(
        recipe_import(FA "/idf-v5.x/flasher_args.json", "/nonexistent/dir/r.json", NULL, &text, &e),
        -ENOENT);
    assert_non_null(strstr(e.msg, "output directory"));
}

static void test_import_write_load_round_trip(void **state)
{
    tmp_t *t = *state;
    char out[160], sha[65];
    char *text = NULL;
    recipe_t r;
    recipe_err_t e;

    snprintf(out, sizeof out, "%s/station.json", t->dir);
    if (recipe_import(FA "/idf-v5.x/flasher_args.json", out, NULL, &text, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(recipe_write_file(out, text, false, &e), 0);
    assert_int_equal(recipe_write_file(out, text, false, &e), -EEXIST); /* no clobber */
    assert_non_null(strstr(e.msg, "exists"));
    assert_int_equal(recipe_write_file(out, text, true, &e), 0);
    if (recipe_load_file(out, 0, &r, &e) != 0) fail_msg("%s", e.msg);
    sha_hex(text, strlen(text), sha);
    assert_string_equal(r.hash, sha);
    assert_string_equal(r.name, "station");
    assert_int_equal(r.plan.n_images, 4);
    assert_int_equal(r.stub, RECIPE_STUB_AUTO);
    recipe_free(&r);
    /* importing twice gives the same bytes: the recipe hash is stable */
    {
        char *again = NULL;
        assert_int_equal(recipe_import(FA "/idf-v5.x/flasher_args.json", out, NULL, &again, &e), 0);
        assert_string_equal(again, text);
        free(again);
    }
    free(text);
    /* nothing but the recipe is left in the directory (no temporary files) */
    {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", t->dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* ---- the schema file and the validator agree ---- */

typedef struct {
    char path[96];
    unsigned types;
    bool required;
    const cJSON *enums, *pattern, *form, *min_len, *max_len, *minimum, *maximum, *multiple_of,
        *min_items, *max_items, *unique, *dflt;
} sfield_t;

#define MAX_SFIELDS 64

static const cJSON *resolve(const cJSON *root, const cJSON *node)
{
    const cJSON *ref = cJSON_GetObjectItem(node, "$ref");
    if (cJSON_IsString(ref)) {
        assert_int_equal(strncmp(ref->valuestring, "#/$defs/", 8), 0);
        node = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "$defs"), ref->valuestring + 8);
        assert_non_null(node);
    }
    return node;
}

static unsigned type_bits(const cJSON *type)
{
    static const struct {
        const char *n;
        unsigned t;
    } m[] = {{"boolean", RECIPE_T_BOOL},
             {"integer", RECIPE_T_INT},
             {"string", RECIPE_T_STRING},
             {"array", RECIPE_T_ARRAY},
             {"object", RECIPE_T_OBJECT}};
    unsigned bits = 0;
    const cJSON *it;
    if (cJSON_IsString(type)) {
        for (size_t i = 0; i < 5; i++)
            if (strcmp(type->valuestring, m[i].n) == 0) bits |= m[i].t;
        assert_int_not_equal(bits, 0);
        return bits;
    }
    cJSON_ArrayForEach(it, type) bits |= type_bits(it);
    return bits;
}

static void set_kw(const cJSON **slot, const cJSON *node, const char *kw)
{
    const cJSON *v = cJSON_GetObjectItem(node, kw);
    if (!v) return;
    if (*slot) fail_msg("keyword %s given twice for one property", kw);
    *slot = v;
}

static void walk(const cJSON *root, const cJSON *node, const char *path, bool required,
                 sfield_t *out, size_t *n);

/* Merge one schema branch (after $ref) into f; recurse into items/properties. */
static void merge(const cJSON *root, const cJSON *node, sfield_t *f, sfield_t *out, size_t *n)
{
    const cJSON *one = cJSON_GetObjectItem(node, "oneOf"), *b;
    node = resolve(root, node);
    cJSON_ArrayForEach(b, one) merge(root, b, f, out, n);
    if (cJSON_GetObjectItem(node, "type")) f->types |= type_bits(cJSON_GetObjectItem(node, "type"));
    set_kw(&f->enums, node, "enum");
    set_kw(&f->pattern, node, "pattern");
    set_kw(&f->form, node, "x-form");
    set_kw(&f->min_len, node, "minLength");
    set_kw(&f->max_len, node, "maxLength");
    set_kw(&f->minimum, node, "minimum");
    set_kw(&f->maximum, node, "maximum");
    set_kw(&f->multiple_of, node, "multipleOf");
    set_kw(&f->min_items, node, "minItems");
    set_kw(&f->max_items, node, "maxItems");
    set_kw(&f->unique, node, "uniqueItems");
    set_kw(&f->dflt, node, "default");
    if (cJSON_GetObjectItem(node, "items")) {
        char p[sizeof f->path + 4];
        snprintf(p, sizeof p, "%s[*]", f->path);
        walk(root, cJSON_GetObjectItem(node, "items"), p, false, out, n);
    }
    if (cJSON_GetObjectItem(node, "properties")) {
        const cJSON *props = cJSON_GetObjectItem(node, "properties"), *req, *p;
        /* every object is closed: unknown properties are errors (typos must not pass) */
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(node, "additionalProperties")));
        req = cJSON_GetObjectItem(node, "required");
        cJSON_ArrayForEach(p, props)
        {
            char cp[sizeof f->path + 64];
            bool r = false;
            const cJSON *k;
            cJSON_ArrayForEach(k, req) r |= strcmp(k->valuestring, p->string) == 0;
            snprintf(cp, sizeof cp, "%s.%s", f->path, p->string);
            walk(root, p, cp, r, out, n);
        }
    }
}

static void walk(const cJSON *root, const cJSON *node, const char *path, bool required,
                 sfield_t *out, size_t *n)
{
    sfield_t *f;
    assert_true(strlen(path) < sizeof f->path);
    assert_true(*n < MAX_SFIELDS);
    f = &out[(*n)++];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->required = required;
    merge(root, node, f, out, n);
}

static void same_int(const cJSON *schema_v, bool c_has, int64_t c_v, const char *what,
                     const char *path)
{
    if (!schema_v && !c_has) return;
    if (!schema_v || !c_has || (int64_t)schema_v->valuedouble != c_v)
        fail_msg("%s %s: schema %s, validator %s %" PRId64, path, what,
                 schema_v ? "has it" : "has none", c_has ? "has" : "has none", c_v);
}

static void test_schema_agrees_with_validator(void **state)
{
    (void)state;
    size_t len, nf, ns = 0;
    uint8_t *text = slurp(ESTN_SOURCE_DIR "/schema/recipe.schema.json", &len);
    cJSON *root = cJSON_Parse((const char *)text);
    const recipe_field_t *cf = recipe_fields(&nf);
    sfield_t *sf = calloc(MAX_SFIELDS, sizeof *sf);

    assert_non_null(root);
    assert_non_null(sf);
    assert_string_equal(cJSON_GetObjectItem(root, "$schema")->valuestring,
                        "https://json-schema.org/draft/2020-12/schema");
    walk(root, root, "$", false, sf, &ns);
    assert_int_equal(ns, nf);
    for (size_t i = 0; i < nf; i++) {
        const recipe_field_t *c = &cf[i];
        const sfield_t *s = NULL;
        for (size_t k = 0; k < ns; k++)
            if (strcmp(sf[k].path, c->path) == 0) s = &sf[k];
        if (!s) fail_msg("%s is in the validator but not in the schema", c->path);
        if (s->types != c->types)
            fail_msg("%s: types differ (schema %#x, validator %#x)", c->path, s->types, c->types);
        if (s->required != c->required) fail_msg("%s: required differs", c->path);
        /* enum: same values, same order */
        if (!!s->enums != !!c->enums) fail_msg("%s: enum in one only", c->path);
        if (c->enums) {
            size_t k = 0;
            const cJSON *v;
            cJSON_ArrayForEach(v, s->enums)
            {
                if (!c->enums[k] || strcmp(c->enums[k], v->valuestring) != 0)
                    fail_msg("%s: enum value %zu differs", c->path, k);
                k++;
            }
            assert_null(c->enums[k]);
        }
        if (!!s->pattern != !!c->pattern ||
            (c->pattern && strcmp(s->pattern->valuestring, c->pattern) != 0))
            fail_msg("%s: pattern differs", c->path);
        if (!!s->form != !!c->form || (c->form && strcmp(s->form->valuestring, c->form) != 0))
            fail_msg("%s: x-form differs", c->path);
        same_int(s->min_len, c->min_len != 0, c->min_len, "minLength", c->path);
        same_int(s->max_len, c->max_len != 0, c->max_len, "maxLength", c->path);
        same_int(s->minimum, c->has_range, c->minimum, "minimum", c->path);
        same_int(s->maximum, c->has_range, c->maximum, "maximum", c->path);
        same_int(s->multiple_of, c->multiple_of != 0, c->multiple_of, "multipleOf", c->path);
        same_int(s->min_items, c->min_items != 0, c->min_items, "minItems", c->path);
        same_int(s->max_items, c->max_items != 0, c->max_items, "maxItems", c->path);
        if (cJSON_IsTrue(s->unique) != c->unique) fail_msg("%s: uniqueItems differs", c->path);
        if (!!s->dflt != !!c->dflt) fail_msg("%s: default in one only", c->path);
        if (c->dflt) {
            cJSON *d = cJSON_Parse(c->dflt);
            assert_non_null(d);
            if (!cJSON_Compare(d, s->dflt, true)) fail_msg("%s: default differs", c->path);
            cJSON_Delete(d);
        }
    }
    /* the chip names are the chip table's, in its order */
    {
        const recipe_field_t *chip = NULL;
        for (size_t i = 0; i < nf; i++)
            if (strcmp(cf[i].path, "$.chip") == 0) chip = &cf[i];
        assert_non_null(chip);
        for (int i = 0; i < CHIP__COUNT; i++)
            assert_string_equal(chip->enums[i], chip_get((chip_id_t)i)->name);
        assert_null(chip->enums[CHIP__COUNT]);
    }
    free(sf);
    cJSON_Delete(root);
    free(text);
}

/* docs/RECIPES.md documents every property. */
static void test_docs_cover_every_field(void **state)
{
    (void)state;
    size_t len, nf;
    uint8_t *doc = slurp(ESTN_SOURCE_DIR "/docs/RECIPES.md", &len);
    const recipe_field_t *cf = recipe_fields(&nf);
    for (size_t i = 1; i < nf; i++) {
        const char *key = strrchr(cf[i].path, '.') + 1;
        char want[80];
        if (strchr(key, '[')) /* "$.chip[*]": items of a documented field */
            continue;
        snprintf(want, sizeof want, "`%s`", key);
        if (!strstr((const char *)doc, want))
            fail_msg("docs/RECIPES.md does not mention %s (%s)", want, cf[i].path);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_recipe_to_plan),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_speed_fields_to_plan, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_schema_errors_name_the_path),
        cmocka_unit_test(test_test_needs_hard_reset),
        cmocka_unit_test(test_text_level_errors),
        cmocka_unit_test_setup_teardown(test_recipe_file_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_image_file_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_check_device),
        cmocka_unit_test_setup_teardown(test_import_fixtures, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_options_and_variants, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_import_write_load_round_trip, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_schema_agrees_with_validator),
        cmocka_unit_test(test_docs_cover_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
