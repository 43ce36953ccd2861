/* SPDX-License-Identifier: MIT */
/* test_stub.c — flasher-stub JSON files (jobs/stub.c): parsing and its refusals, base64, the
 * directory layouts of esptool 4.2–4.7, 4.8+ and the stub_flasher parent directory, the ESP32-P4
 * revision rule, and the cache. Files are synthetic (tests/data/mkstub.py or written here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "est_err.h"
#include "stub.h"

static char tmp[64];

static void mk_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/estn-test-stub-XXXXXX");
    assert_non_null(mkdtemp(tmp));
}

static void rm_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    stub_cache_clear();
}

static void put(const char *rel, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    if (strchr(rel, '/')) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%.*s", tmp, (int)(strrchr(rel, '/') - rel), rel);
        mkdir(dir, 0755);
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *b64(const uint8_t *d, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, d, (int)n);
    return out;
}

static int parse(const char *json, stub_t *s, char *err)
{
    return stub_parse(json, strlen(json), s, err, 256);
}

static void test_parse_valid(void **state)
{
    (void)state;
    /* every length mod 3, so base64 padding of 0, 1 and 2 characters is covered */
    for (size_t n = 10; n < 13; n++) {
        uint8_t text[16], data[7];
        char json[512], err[256];
        stub_t s;
        for (size_t i = 0; i < n; i++)
            text[i] = (uint8_t)(0xF0 + i);
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (uint8_t)i;
        char *t = b64(text, n), *d = b64(data, sizeof data);
        snprintf(json, sizeof json,
                 "{\"entry\": %u, \"text\": \"%s\", \"text_start\": 1074520064, \"data\": \"%s\", "
                 "\"data_start\": 1073605548, \"bss_start\": 1073606000, \"extra\": [1, 2]}",
                 1074520064u + 4, t, d);
        assert_int_equal(parse(json, &s, err), 0);
        assert_int_equal(s.text_len, n);
        assert_memory_equal(s.text, text, n);
        assert_int_equal(s.data_len, sizeof data);
        assert_memory_equal(s.data, data, sizeof data);
        assert_int_equal(s.text_start, 0x400BE000);
        assert_int_equal(s.data_start, 0x3FFDEBAC);
        assert_int_equal(s.entry, 0x400BE004);
        assert_true(s.has_bss);
        assert_int_equal(s.bss_start, 1073606000u);
        stub_free(&s);
        free(t);
        free(d);
    }
}

static void test_parse_text_only(void **state)
{
    (void)state;
    stub_t s;
    char err[256];
    /* "AAAAAAAA" = 6 zero bytes; no data segment, no bss */
    assert_int_equal(parse("{\"text\":\"AAAAAAAA\",\"text_start\":4096,\"entry\":4101}", &s, err),
                     0);
    assert_int_equal(s.text_len, 6);
    assert_null(s.data);
    assert_int_equal(s.data_len, 0);
    assert_false(s.has_bss);
    stub_free(&s);
}

static void test_parse_refusals(void **state)
{
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"text_start\": 0, \"entry\": 0}", "\"text\" is missing"},
        {"{\"text\": \"AAAA\", \"entry\": 0}", "\"text_start\" is missing"},
        {"{\"text\": \"AAAA\", \"text_start\": 0}", "\"entry\" is missing"},
        {"{\"text\": \"\", \"text_start\": 0, \"entry\": 0}", "\"text\" is empty"},
        {"{\"text\": 12, \"text_start\": 0, \"entry\": 0}", "not a base64 string"},
        {"{\"text\": \"AAA\", \"text_start\": 0, \"entry\": 0}", "not valid base64"},
        {"{\"text\": \"AA!A\", \"text_start\": 0, \"entry\": 0}", "not valid base64"},
        {"{\"text\": \"A=AA\", \"text_start\": 0, \"entry\": 0}", "not valid base64"},
        {"{\"text\": \"AA=A\", \"text_start\": 0, \"entry\": 0}", "not valid base64"},
        {"{\"text\": \"AAAA\", \"text_start\": \"0x40\", \"entry\": 0}", "not a number"},
        {"{\"text\": \"AAAA\", \"text_start\": -4, \"entry\": 0}", "not a 32-bit address"},
        {"{\"text\": \"AAAA\", \"text_start\": 4294967296, \"entry\": 0}", "not a 32-bit address"},
        {"{\"text\": \"AAAA\", \"text_start\": 1.5, \"entry\": 0}", "not a 32-bit address"},
        {"{\"text\": \"AAAA\", \"text_start\": 4096, \"entry\": 4099}", "outside the text"},
        {"{\"text\": \"AAAA\", \"text_start\": 4096, \"entry\": 4095}", "outside the text"},
        {"{\"text\": \"AAAA\", \"text_start\": 4096, \"entry\": 4096, \"data\": \"AAAA\"}",
         "\"data\" without \"data_start\""},
        {"{\"text\": \"AAAA\", \"text_start\": 4096, \"entry\": 4096, \"data_start\": 0}",
         "\"data_start\" without \"data\""},
        {"{\"text\": \"AAAAAAAA\", \"text_start\": 4096, \"entry\": 4096, \"data\": \"AAAA\", "
         "\"data_start\": 4100}",
         "overlap"},
        {"{\"text\": \"AAAA\", \"text_start\": 4294967295, \"entry\": 4294967295}",
         "32-bit address space"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stub_t s;
        char err[256] = "";
        int rc = parse(bad[i].json, &s, err);
        if (rc != EST_ESTUB || !strstr(err, bad[i].says))
            fail_msg("case %zu: %s -> rc %d, \"%s\" (want \"%s\")", i, bad[i].json, rc, err,
                     bad[i].says);
        assert_null(s.text); /* nothing left allocated */
    }
}

static void test_load_file_errors(void **state)
{
    (void)state;
    stub_t s;
    char err[512], path[256];
    mk_tmp();
    snprintf(path, sizeof path, "%s/none.json", tmp);
    assert_int_equal(stub_load_file(path, &s, err, sizeof err), UV_ENOENT);
    assert_non_null(strstr(err, "none.json"));
    put("esp32.json", "{\"text\": \"AAAA\"}");
    snprintf(path, sizeof path, "%s/esp32.json", tmp);
    assert_int_equal(stub_load_file(path, &s, err, sizeof err), EST_ESTUB);
    /* the message names the file and the key */
    assert_non_null(strstr(err, "esp32.json"));
    assert_non_null(strstr(err, "text_start"));
    assert_int_equal(stub_load_file(tmp, &s, err, sizeof err), EST_ESTUB); /* a directory */
    rm_tmp();
}

static const char *ok_json = "{\"text\":\"AAAAAAAA\",\"text_start\":4096,\"entry\":4096}";

static void test_find_layouts(void **state)
{
    (void)state;
    char path[512], why[512], want[512];
    const chip_info_t *c3 = chip_get(CHIP_ESP32C3), *e32 = chip_get(CHIP_ESP32);
    mk_tmp();
    /* nothing there: ENOENT, and the message says what was looked for */
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), UV_ENOENT);
    assert_non_null(strstr(why, "esp32c3.json"));
    assert_non_null(strstr(why, "stub_flasher_32c3.json"));
    /* esptool 4.2-4.7: stub_flasher_<short>.json */
    put("stub_flasher_32c3.json", ok_json);
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/stub_flasher_32c3.json", tmp);
    assert_string_equal(path, want);
    /* esptool >= 4.8 / esp-flasher-stub: <chip>.json wins */
    put("esp32c3.json", ok_json);
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/esp32c3.json", tmp);
    assert_string_equal(path, want);
    /* the stub_flasher parent of an unknown esptool: 1/ (esptool 4.x's default) before 2/,
     * 2/ when 1/ lacks the chip */
    put("2/esp32.json", ok_json);
    assert_int_equal(stub_find(tmp, e32, 300, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/2/esp32.json", tmp);
    assert_string_equal(path, want);
    put("1/esp32.json", ok_json);
    assert_int_equal(stub_find(tmp, e32, 300, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32.json", tmp);
    assert_string_equal(path, want);
    /* not a directory / missing: an error, not "no stub for this chip" */
    snprintf(want, sizeof want, "%s/esp32c3.json", tmp);
    assert_int_equal(stub_find(want, c3, 4, path, sizeof path, why, sizeof why), EST_ESTUB);
    assert_non_null(strstr(why, "not a directory"));
    snprintf(want, sizeof want, "%s/missing", tmp);
    assert_int_equal(stub_find(want, c3, 4, path, sizeof path, why, sizeof why), EST_ESTUB);
    rm_tmp();
}

/* A directory holding both 1/ and 2/: what the esptool it came from uses by default (4.x 1/,
 * 5.x 2/), told by VERSION, the package's __init__.py or its dist-info; explicit choices. */
static void test_find_pick(void **state)
{
    (void)state;
    char path[512], why[512], want[600], sub[512];
    const chip_info_t *c3 = chip_get(CHIP_ESP32C3);
    stub_choice_t ch;
    stub_pick_t pk;
    mk_tmp();
    put("1/esp32c3.json", ok_json);
    put("2/esp32c3.json", ok_json);
    /* no version anywhere: 1/, and the choice says so */
    assert_int_equal(
        stub_find_pick(tmp, c3, 4, STUB_PICK_DEFAULT, path, sizeof path, &ch, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32c3.json", tmp);
    assert_string_equal(path, want);
    assert_string_equal(ch.esptool_version, "");
    assert_string_equal(ch.name, "1/esp32c3.json (legacy stub)");
    /* VERSION 5.3.1: 2/ */
    put("VERSION", "5.3.1\n");
    assert_int_equal(
        stub_find_pick(tmp, c3, 4, STUB_PICK_DEFAULT, path, sizeof path, &ch, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/2/esp32c3.json", tmp);
    assert_string_equal(path, want);
    assert_string_equal(ch.esptool_version, "5.3.1");
    assert_string_equal(ch.name, "2/esp32c3.json (esp-flasher-stub, esptool 5.3.1)");
    /* stub_find() is the default choice */
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), 0);
    assert_string_equal(path, want);
    /* VERSION 4.12.0: 1/ */
    put("VERSION", "4.12.0\n");
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32c3.json", tmp);
    assert_string_equal(path, want);
    /* explicit: 2/ although esptool 4.x would take 1/; and 1/ */
    assert_int_equal(
        stub_find_pick(tmp, c3, 4, STUB_PICK_NEW, path, sizeof path, &ch, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/2/esp32c3.json", tmp);
    assert_string_equal(path, want);
    assert_int_equal(
        stub_find_pick(tmp, c3, 4, STUB_PICK_LEGACY, path, sizeof path, &ch, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32c3.json", tmp);
    assert_string_equal(path, want);
    /* explicit and missing: an error naming the choice, not a silent fallback to the other */
    snprintf(sub, sizeof sub, "%s/2/esp32c3.json", tmp);
    assert_int_equal(unlink(sub), 0);
    assert_int_equal(
        stub_find_pick(tmp, c3, 4, STUB_PICK_NEW, path, sizeof path, &ch, why, sizeof why),
        EST_ESTUB);
    assert_non_null(strstr(why, "esp-flasher-stub"));
    /* default and the preferred one missing: the other one */
    put("VERSION", "5.0.0\n");
    assert_int_equal(stub_find(tmp, c3, 4, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32c3.json", tmp);
    assert_string_equal(path, want);
    rm_tmp();

    /* an installed esptool: <pkg>/targets/stub_flasher, version in <pkg>/__init__.py */
    mk_tmp();
    put("esptool/__init__.py", "# comment\n__version__ = \"5.3.1\"\n");
    snprintf(sub, sizeof sub, "%s/esptool/targets", tmp);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof sub, "%s/esptool/targets/stub_flasher", tmp);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("esptool/targets/stub_flasher/1/esp32c3.json", ok_json);
    put("esptool/targets/stub_flasher/2/esp32c3.json", ok_json);
    char ver[32];
    assert_int_equal(stub_esptool_version(sub, ver, sizeof ver), 0);
    assert_string_equal(ver, "5.3.1");
    assert_int_equal(stub_find(sub, c3, 4, path, sizeof path, why, sizeof why), 0);
    assert_non_null(strstr(path, "/2/esp32c3.json"));
    /* its 1/ subdirectory given directly: the same version, that file */
    snprintf(want, sizeof want, "%s/1", sub);
    assert_int_equal(stub_esptool_version(want, ver, sizeof ver), 0);
    assert_string_equal(ver, "5.3.1");
    /* dist-info beside the package when __init__.py says nothing */
    put("esptool/__init__.py", "# no version here\n");
    snprintf(want, sizeof want, "%s/esptool-4.12.0.dist-info", tmp);
    assert_int_equal(mkdir(want, 0755), 0);
    assert_int_equal(stub_esptool_version(sub, ver, sizeof ver), 0);
    assert_string_equal(ver, "4.12.0");
    assert_int_equal(stub_find(sub, c3, 4, path, sizeof path, why, sizeof why), 0);
    assert_non_null(strstr(path, "/1/esp32c3.json"));
    rm_tmp();

    assert_int_equal(stub_pick_parse("2", &pk), 0);
    assert_int_equal(pk, STUB_PICK_NEW);
    assert_int_equal(stub_pick_parse("legacy", &pk), 0);
    assert_int_equal(pk, STUB_PICK_LEGACY);
    assert_int_equal(stub_pick_parse("default", &pk), 0);
    assert_int_equal(pk, STUB_PICK_DEFAULT);
    assert_int_equal(stub_pick_parse("3", &pk), -1);
    assert_string_equal(stub_pick_name(STUB_PICK_NEW), "esp-flasher-stub");
}

static void test_find_p4_revision(void **state)
{
    (void)state;
    char path[512], why[512], want[512];
    const chip_info_t *p4 = chip_get(CHIP_ESP32P4);
    mk_tmp();
    put("esp32p4.json", ok_json);
    /* below v3.00 only esp32p4-rev1.json will do (§8.1) */
    assert_int_equal(stub_find(tmp, p4, 100, path, sizeof path, why, sizeof why), UV_ENOENT);
    assert_non_null(strstr(why, "esp32p4-rev1.json"));
    assert_non_null(strstr(why, "below v3.00"));
    assert_int_equal(stub_find(tmp, p4, 300, path, sizeof path, why, sizeof why), 0);
    put("esp32p4-rev1.json", ok_json);
    assert_int_equal(stub_find(tmp, p4, 199, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/esp32p4-rev1.json", tmp);
    assert_string_equal(path, want);
    assert_int_equal(stub_find(tmp, p4, 301, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/esp32p4.json", tmp);
    assert_string_equal(path, want);
    rm_tmp();
    /* esptool 5.x's name for the pre-v3.00 build: esp32p4rc1.json, also under 1/ */
    mk_tmp();
    put("1/esp32p4rc1.json", ok_json);
    put("1/esp32p4.json", ok_json);
    assert_int_equal(stub_find(tmp, p4, 103, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/1/esp32p4rc1.json", tmp);
    assert_string_equal(path, want);
    put("2/esp32p4-rev1.json", ok_json); /* esptool 5.x: 2/ before 1/ */
    put("VERSION", "5.3.1\n");
    assert_int_equal(stub_find(tmp, p4, 103, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/2/esp32p4-rev1.json", tmp);
    assert_string_equal(path, want);
    rm_tmp();
    /* esptool 4.2-4.7's stub_flasher_32p4.json predates v3.00 silicon: below v3.00 only */
    mk_tmp();
    put("stub_flasher_32p4.json", ok_json);
    assert_int_equal(stub_find(tmp, p4, 300, path, sizeof path, why, sizeof why), UV_ENOENT);
    assert_non_null(strstr(why, "v3.00 or later"));
    assert_null(strstr(why, "stub_flasher_32p4"));
    assert_int_equal(stub_find(tmp, p4, 100, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/stub_flasher_32p4.json", tmp);
    assert_string_equal(path, want);
    put("esp32p4rc1.json", ok_json); /* the 5.x name wins over the 4.x one */
    assert_int_equal(stub_find(tmp, p4, 100, path, sizeof path, why, sizeof why), 0);
    snprintf(want, sizeof want, "%s/esp32p4rc1.json", tmp);
    assert_string_equal(path, want);
    rm_tmp();
}

static void test_file_chip(void **state)
{
    (void)state;
    assert_ptr_equal(stub_file_chip("/x/esp32c3.json"), chip_get(CHIP_ESP32C3));
    assert_ptr_equal(stub_file_chip("stub_flasher_8266.json"), chip_get(CHIP_ESP8266));
    assert_ptr_equal(stub_file_chip("/a/1/esp32s3.json"), chip_get(CHIP_ESP32S3));
    assert_ptr_equal(stub_file_chip("esp32p4-rev1.json"), chip_get(CHIP_ESP32P4));
    assert_ptr_equal(stub_file_chip("/s/1/esp32p4rc1.json"), chip_get(CHIP_ESP32P4));
    /* a P4 file for the other side of v3.00 is recognised by its name */
    assert_int_equal(stub_file_p4_rev_ok("/s/1/esp32p4rc1.json", 103), 1);
    assert_int_equal(stub_file_p4_rev_ok("/s/1/esp32p4rc1.json", 300), 0);
    assert_int_equal(stub_file_p4_rev_ok("stub_flasher_32p4.json", 301), 0);
    assert_int_equal(stub_file_p4_rev_ok("/s/esp32p4.json", 100), 0);
    assert_int_equal(stub_file_p4_rev_ok("/s/esp32p4.json", 300), 1);
    assert_int_equal(stub_file_p4_rev_ok("/s/esp32c3.json", 0), 1);
    assert_null(stub_file_chip("/x/my-stub.json"));
    assert_null(stub_file_chip("/x/esp32.bin"));
}

/* The synthetic files of tests/data/mkstub.py load for every chip, in both layouts. */
static void test_mkstub_files(void **state)
{
    (void)state;
    const char *layouts[] = {"v1", "v4.2"};
    if (system("python3 -c 'pass' >/dev/null 2>&1") != 0) skip();
    for (size_t l = 0; l < 2; l++) {
        char cmd[512];
        mk_tmp();
        snprintf(cmd, sizeof cmd, "python3 '%s/tests/data/mkstub.py' '%s' --layout %s",
                 ESTN_SOURCE_DIR, tmp, layouts[l]);
        assert_int_equal(system(cmd), 0);
        for (int c = 0; c < CHIP__COUNT; c++) {
            char path[512], why[512], err[512];
            stub_t s;
            const chip_info_t *ci = chip_get((chip_id_t)c);
            /* the 4.2-4.7 P4 file is the pre-v3.00 build */
            unsigned rev = ci->id == CHIP_ESP32P4 && l == 1 ? 100 : 300;
            int rc = stub_find(tmp, ci, rev, path, sizeof path, why, sizeof why);
            if (rc != 0) fail_msg("%s (%s layout): %s", ci->name, layouts[l], why);
            assert_int_equal(stub_load_file(path, &s, err, sizeof err), 0);
            assert_true(s.text_len > 1000);
            assert_non_null(s.data);
            assert_ptr_equal(stub_file_chip(path), ci);
            stub_free(&s);
        }
        rm_tmp();
    }
}

static void test_cache(void **state)
{
    (void)state;
    char path[256], err[512];
    const stub_t *a, *b, *c;
    mk_tmp();
    put("esp32.json", ok_json);
    snprintf(path, sizeof path, "%s/esp32.json", tmp);
    a = stub_get(path, err, sizeof err);
    assert_non_null(a);
    b = stub_get(path, err, sizeof err);
    assert_ptr_equal(a, b); /* parsed once */
    stub_put(b);
    /* changed on disk (other size): parsed again, the old one stays valid for its user */
    put("esp32.json", "{\"text\":\"AAAAAAAAAAAA\",\"text_start\":4096,\"entry\":4096}");
    c = stub_get(path, err, sizeof err);
    assert_non_null(c);
    assert_ptr_not_equal(a, c);
    assert_int_equal(c->text_len, 9);
    assert_int_equal(a->text_len, 6);
    stub_put(a);
    stub_put(c);
    /* a broken file is reported, with its name */
    put("esp32.json", "{");
    assert_null(stub_get(path, err, sizeof err));
    assert_non_null(strstr(err, "esp32.json"));
    rm_tmp();
    assert_null(stub_get(path, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),      cmocka_unit_test(test_parse_text_only),
        cmocka_unit_test(test_parse_refusals),   cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_find_layouts),     cmocka_unit_test(test_find_pick),
        cmocka_unit_test(test_find_p4_revision), cmocka_unit_test(test_file_chip),
        cmocka_unit_test(test_mkstub_files),     cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
