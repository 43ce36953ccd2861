/* SPDX-License-Identifier: MIT */
/* test_plan.c — one owner of the plan (jobs/plan.c): typed settings parsed once; the station's
 * precedence between a recipe's before/after and a slot's (plan_apply_slot, docs/STATION.md
 * "Reset modes"); every rule plan_finalize() checks, one by one; the ranges held against
 * schema/recipe.schema.json; and the three ways to a plan giving the same answer: the command
 * line (the espstation program), the recipe loader, and the station (recipe plan + slot). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "est_util.h"
#include "plan.h"
#include "recipe.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* A plan with one image (in memory), as the command line or a recipe would build it. */
static void one_image(plan_t *p)
{
    plan_err_t err;
    uint8_t *d = malloc(4096);
    assert_non_null(d);
    memset(d, 0xA5, 4096);
    plan_init(p);
    assert_int_equal(plan_add_image_mem(p, 0x10000, "app.bin", d, 4096, &err), 0);
    assert_int_equal(plan_finish(p, &err), 0);
}

static void expect_refused(const plan_t *p, const char *needle)
{
    plan_err_t err;
    memset(&err, 0, sizeof err);
    assert_int_not_equal(plan_finalize(p, &err), 0);
    assert_int_equal(err.cls, EST_CLASS_USAGE);
    if (!strstr(err.msg, needle)) fail_msg("\"%s\" does not say \"%s\"", err.msg, needle);
}

static void test_typed_settings(void **state)
{
    plan_t p;
    plan_err_t err;
    char b[24];
    (void)state;
    plan_init(&p);
    assert_int_equal(p.flash_size_mode, PLAN_FSIZE_KEEP);
    assert_string_equal(plan_flash_size_name(&p, b, sizeof b), "keep");
    assert_int_equal(plan_set_flash_size(&p, "detect", &err), 0);
    assert_int_equal(p.flash_size_mode, PLAN_FSIZE_DETECT);
    assert_int_equal(plan_set_flash_size(&p, "4MB", &err), 0);
    assert_int_equal(p.flash_size_mode, PLAN_FSIZE_SET);
    assert_int_equal(p.flash_size_bytes, 4u << 20);
    assert_false(p.flash_size_c1);
    assert_int_equal(plan_set_flash_size(&p, "2MB-c1", &err), 0);
    assert_true(p.flash_size_c1);
    assert_string_equal(plan_flash_size_name(&p, b, sizeof b), "2MB-c1");
    assert_int_equal(plan_set_flash_size(&p, "512KB", &err), 0);
    assert_string_equal(plan_flash_size_name(&p, b, sizeof b), "512KB");
    assert_int_not_equal(plan_set_flash_size(&p, "8MB-c1", &err), 0); /* only 2MB/4MB layouts */
    assert_int_not_equal(plan_set_flash_size(&p, "4MB-c2", &err), 0);
    assert_int_not_equal(plan_set_flash_size(&p, "lots", &err), 0);
    assert_int_not_equal(plan_set_flash_size(&p, "", &err), 0);
    assert_int_equal(err.cls, EST_CLASS_USAGE);
    assert_int_equal(plan_set_flash_freq(&p, "40m", &err), 0);
    assert_int_equal(p.flash_freq_mhz, 40);
    assert_string_equal(plan_flash_freq_name(&p, b, sizeof b), "40m");
    assert_int_equal(plan_set_flash_freq(&p, "keep", &err), 0);
    assert_int_equal(p.flash_freq_mhz, 0);
    assert_int_not_equal(plan_set_flash_freq(&p, "40", &err), 0);
    assert_int_not_equal(plan_set_flash_freq(&p, "0m", &err), 0);
    assert_int_not_equal(plan_set_flash_freq(&p, "fast", &err), 0);
    /* reset modes: one name each; the hyphen spelling parses and is reported as deprecated */
    plan_before_t bf;
    plan_after_t af;
    assert_int_equal(plan_parse_after("hard_reset", &af), 0);
    assert_false(plan_spelling_deprecated("hard_reset"));
    assert_int_equal(plan_parse_after("hard-reset", &af), 0);
    assert_true(plan_spelling_deprecated("hard-reset"));
    assert_int_equal(plan_parse_before("usb_reset", &bf), 0);
    assert_string_equal(plan_before_name(bf), "usb_reset");
    assert_string_equal(plan_after_name(PLAN_AFTER_NO_RESET), "no_reset");
    plan_free(&p);
}

/* The slot's before/after are defaults: a recipe's explicit value wins, unless the slot says
 * "reset_override". */
static void test_precedence(void **state)
{
    plan_t p;
    plan_slot_t slot = {PLAN_BEFORE_NO_RESET, PLAN_AFTER_NO_RESET, false};
    (void)state;
    plan_init(&p); /* the recipe names neither */
    plan_apply_slot(&p, &slot);
    assert_int_equal(p.before, PLAN_BEFORE_NO_RESET);
    assert_int_equal(p.after, PLAN_AFTER_NO_RESET);
    plan_init(&p); /* the recipe names both */
    p.before = PLAN_BEFORE_USB_RESET;
    p.after = PLAN_AFTER_HARD_RESET;
    p.before_set = p.after_set = true;
    plan_apply_slot(&p, &slot);
    assert_int_equal(p.before, PLAN_BEFORE_USB_RESET);
    assert_int_equal(p.after, PLAN_AFTER_HARD_RESET);
    plan_init(&p); /* only after */
    p.after = PLAN_AFTER_HARD_RESET;
    p.after_set = true;
    plan_apply_slot(&p, &slot);
    assert_int_equal(p.before, PLAN_BEFORE_NO_RESET);
    assert_int_equal(p.after, PLAN_AFTER_HARD_RESET);
    slot.force = true; /* the slot overrides */
    plan_apply_slot(&p, &slot);
    assert_int_equal(p.after, PLAN_AFTER_NO_RESET);
}

/* Every rule plan_finalize checks, each alone on an otherwise valid plan. */
static void test_finalize_rules(void **state)
{
    plan_t p;
    plan_err_t err;
    (void)state;
    one_image(&p);
    assert_int_equal(plan_finalize(&p, &err), 0);
    p.baud = PLAN_BAUD_MIN - 1;
    expect_refused(&p, "baud rate 9599 is out of range (9600..5000000)");
    p.baud = PLAN_DEFAULT_BAUD;
    p.flash_baud = PLAN_BAUD_MAX + 1;
    expect_refused(&p, "flash baud rate");
    p.flash_baud = 0; /* 0 = stay at the sync rate */
    assert_int_equal(plan_finalize(&p, &err), 0);
    p.connect_attempts = 0;
    expect_refused(&p, "connect attempts");
    p.connect_attempts = PLAN_CONNECT_ATTEMPTS_MAX + 1;
    expect_refused(&p, "connect attempts");
    p.connect_attempts = 7;
    p.flash_mode = 4;
    expect_refused(&p, "flash mode");
    p.flash_mode = -1;
    /* the post-flash test */
    p.test = true;
    p.test_expect = "ready";
    assert_int_equal(plan_finalize(&p, &err), 0);
    p.after = PLAN_AFTER_NO_RESET;
    expect_refused(&p, "needs after hard_reset");
    p.after = PLAN_AFTER_HARD_RESET;
    p.test_expect = "";
    expect_refused(&p, "expected text");
    {
        char big[PLAN_TEST_EXPECT_MAX + 2];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        p.test_expect = big;
        expect_refused(&p, "expected text");
    }
    p.test_expect = "ready";
    p.test_baud = 1200;
    expect_refused(&p, "test baud rate");
    p.test_baud = PLAN_DEFAULT_BAUD;
    p.test_timeout_ms = PLAN_TEST_TIMEOUT_MIN - 1;
    expect_refused(&p, "test timeout");
    p.test_timeout_ms = PLAN_TEST_TIMEOUT_MAX + 1;
    expect_refused(&p, "test timeout");
    p.test_timeout_ms = 10000;
    p.op = PLAN_OP_READ;
    expect_refused(&p, "only after writing images");
    plan_free(&p);
    plan_init(&p); /* no images: identify only */
    p.test = true;
    p.test_expect = "ready";
    expect_refused(&p, "only after writing images");
    /* erase and read ranges */
    plan_init(&p);
    p.op = PLAN_OP_ERASE;
    expect_refused(&p, "region is empty");
    p.erase_all = true;
    assert_int_equal(plan_finalize(&p, &err), 0);
    p.op = PLAN_OP_READ;
    p.op_offset = 0xFFFFF000u;
    p.op_size = 0x2000;
    expect_refused(&p, "beyond any flash address");
}

/* The limits in plan.h are the schema's. */
static void test_ranges_match_schema(void **state)
{
    char path[1024];
    char *text;
    cJSON *s, *props, *test;
    (void)state;
    snprintf(path, sizeof path, "%s/schema/recipe.schema.json", ESTN_SOURCE_DIR);
    text = slurp(path);
    assert_non_null(text);
    s = cJSON_Parse(text);
    assert_non_null(s);
    props = cJSON_GetObjectItem(s, "properties");
    test = cJSON_GetObjectItem(cJSON_GetObjectItem(props, "test"), "properties");
#define NUM(obj, key, field) cJSON_GetObjectItem(cJSON_GetObjectItem(obj, key), field)->valuedouble
    assert_int_equal((uint32_t)NUM(props, "baud", "minimum"), PLAN_BAUD_MIN);
    assert_int_equal((uint32_t)NUM(props, "baud", "maximum"), PLAN_BAUD_MAX);
    assert_int_equal((uint32_t)NUM(test, "baud", "minimum"), PLAN_BAUD_MIN);
    assert_int_equal((uint32_t)NUM(test, "baud", "maximum"), PLAN_BAUD_MAX);
    assert_int_equal((uint32_t)NUM(test, "timeout_ms", "minimum"), PLAN_TEST_TIMEOUT_MIN);
    assert_int_equal((uint32_t)NUM(test, "timeout_ms", "maximum"), PLAN_TEST_TIMEOUT_MAX);
    assert_int_equal((int)NUM(test, "expect", "maxLength"), PLAN_TEST_EXPECT_MAX);
#undef NUM
    cJSON_Delete(s);
    free(text);
}

/* ---- the three paths give one answer ---- */

static char g_dir[256];

static void write_file(const char *name, const void *d, size_t n)
{
    char p[512];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* A recipe with a test, `after` as given (NULL: not named); loaded with its image. */
static int load_recipe(const char *after, recipe_t *r, recipe_err_t *e)
{
    uint8_t img[4096], h[32];
    char hex[65], text[1024];
    memset(img, 0x5A, sizeof img);
    write_file("app.bin", img, sizeof img);
    SHA256(img, sizeof img, h);
    est_hex(h, 32, hex);
    snprintf(text, sizeof text,
             "{\"name\": \"t\", \"version\": \"1\", \"chip\": \"esp32\", %s%s%s"
             "\"test\": {\"expect\": \"ready\"}, \"images\": [{\"offset\": \"0x10000\", "
             "\"file\": \"app.bin\", \"sha256\": \"%s\"}]}",
             after ? "\"after\": \"" : "", after ? after : "", after ? "\", " : "", hex);
    memset(r, 0, sizeof *r);
    return recipe_load_mem(text, strlen(text), g_dir, 0, r, e);
}

/* The espstation program's answer for `flash --after A --test-expect ready` (JSON line). */
static void cli_answer(const char *after, char *cls, size_t ccap, char *msg, size_t mcap)
{
    char cmd[1024], line[2048];
    FILE *f;
    cJSON *o;
    snprintf(cmd, sizeof cmd,
             "%s/espstation flash --json --port /dev/null --after %s --test-expect ready "
             "0x10000 %s/app.bin 2>/dev/null",
             ESTN_BINARY_DIR, after, g_dir);
    f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    pclose(f);
    o = cJSON_Parse(line);
    assert_non_null(o);
    snprintf(cls, ccap, "%s", cJSON_GetObjectItem(o, "error_class")->valuestring);
    snprintf(msg, mcap, "%s", cJSON_GetObjectItem(o, "message")->valuestring);
    cJSON_Delete(o);
}

static void test_paths_agree(void **state)
{
    recipe_t r;
    recipe_err_t e;
    plan_t p, station;
    plan_err_t direct;
    char cls[64], msg[1024];
    plan_slot_t slot = {PLAN_BEFORE_DEFAULT, PLAN_AFTER_NO_RESET, false};
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_plan.XXXXXX");
    assert_non_null(mkdtemp(g_dir));

    /* the rule itself, on a plan built by hand */
    one_image(&p);
    p.test = true;
    p.test_expect = "ready";
    p.after = PLAN_AFTER_NO_RESET;
    assert_int_not_equal(plan_finalize(&p, &direct), 0);
    plan_free(&p);

    /* command line: the same class and the same words */
    assert_int_equal(load_recipe(NULL, &r, &e), 0); /* writes app.bin */
    cli_answer("no_reset", cls, sizeof cls, msg, sizeof msg);
    assert_string_equal(cls, "usage");
    assert_string_equal(msg, direct.msg);
    cli_answer("hard_reset", cls, sizeof cls, msg, sizeof msg);
    assert_null(strstr(msg, "post-flash test")); /* consistent: it goes on to open the port */

    /* station: the recipe names no after (its test chooses hard_reset), the slot's no_reset is
     * only a default: consistent, and the job resets the board (the bug: the slot's value used
     * to replace the recipe's, and every board failed with usage) */
    station = r.plan;
    plan_apply_slot(&station, &slot);
    assert_int_equal(station.after, PLAN_AFTER_HARD_RESET);
    assert_int_equal(plan_finalize(&station, &direct), 0);
    /* a slot that forces no_reset makes it inconsistent: refused with the same words */
    slot.force = true;
    station = r.plan;
    plan_apply_slot(&station, &slot);
    assert_int_not_equal(plan_finalize(&station, &direct), 0);
    cli_answer("no_reset", cls, sizeof cls, msg, sizeof msg);
    assert_string_equal(msg, direct.msg);
    recipe_free(&r);

    /* recipe: "after": "no-reset" with a test is refused at load, naming the test */
    assert_int_not_equal(load_recipe("no-reset", &r, &e), 0);
    assert_string_equal(e.items[0].path, "$.test");
    assert_non_null(strstr(e.msg, "hard-reset"));
    recipe_free(&r);
    /* and "hard-reset" loads, with after chosen by the recipe */
    assert_int_equal(load_recipe("hard-reset", &r, &e), 0);
    assert_true(r.plan.after_set);
    assert_int_equal(r.plan.after, PLAN_AFTER_HARD_RESET);
    recipe_free(&r);

    {
        char p2[512];
        snprintf(p2, sizeof p2, "%s/app.bin", g_dir);
        unlink(p2);
        rmdir(g_dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_settings), cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_finalize_rules), cmocka_unit_test(test_ranges_match_schema),
        cmocka_unit_test(test_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
