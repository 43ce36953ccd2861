/* SPDX-License-Identifier: MIT */
/* test_devdata.c — value sources' pure parts (jobs/prov/devdata.c, docs/DEVICE-DATA.md "Value
 * sources"): templates (counter widths and bases, dates incl. ISO weeks, MAC styles, flash ID,
 * chip/revision/serial, literal braces), refusals with positions, what a template needs,
 * counters and their overflow, random bytes and their SHA-256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devdata.h"

static devdata_ctx_t full_ctx(void)
{
    devdata_ctx_t c;
    memset(&c, 0, sizeof c);
    c.has_n = true;
    c.n = 1042;
    c.has_time = true;
    c.when.tm_year = 2026 - 1900;
    c.when.tm_mon = 0; /* 2026-01-01 is a Thursday: ISO week 1 */
    c.when.tm_mday = 1;
    c.when.tm_wday = 4;
    c.when.tm_yday = 0;
    c.when.tm_hour = 7;
    c.when.tm_min = 5;
    c.has_mac = true;
    memcpy(c.mac, "\x24\x0a\xc4\x00\x10\xaf", 6);
    c.has_flash_id = true;
    c.flash_id = 0xEF4016;
    c.chip = "esp32s3";
    c.rev = "v0.2";
    c.serial = "SN-2026-001042";
    return c;
}

static void expect(const char *fmt, const char *want)
{
    devdata_ctx_t c = full_ctx();
    char out[256], err[256] = "";
    int n = devdata_format(fmt, &c, out, sizeof out, err, sizeof err);
    if (n < 0) fail_msg("%s: %s", fmt, err);
    assert_string_equal(out, want);
    assert_int_equal(n, (int)strlen(want));
    assert_int_equal(devdata_format_check(fmt, err, sizeof err), 0);
}

static void test_render(void **s)
{
    (void)s;
    expect("SN-{year}-{n:06}", "SN-2026-001042");
    expect("{n}", "1042");
    expect("{n:8}", "    1042");
    expect("{n:x}/{n:X}/{n:08X}/{n:d}", "412/412/00000412/1042");
    expect("{yy}{month}{day}-{hour}{minute} d{doy} w{week}", "260101-0705 d001 w01");
    expect("{mac}", "24:0a:c4:00:10:af");
    expect("{mac:COLON}|{mac:dash}|{mac:DASH}",
           "24:0A:C4:00:10:AF|24-0a-c4-00-10-af|24-0A-C4-00-10-AF");
    expect("ACME-{mac:HEX}-{mac:hex}", "ACME-240AC40010AF-240ac40010af");
    expect("{mac:last3}.{mac:LAST3}", "0010af.0010AF");
    expect("{flash_id}/{flash_id:HEX}", "ef4016/EF4016");
    expect("{chip}:{chip:upper}:{rev}:{serial}", "esp32s3:ESP32S3:v0.2:SN-2026-001042");
    expect("{{literal}} {{{n}}}", "{literal} {1042}");
    expect("plain text", "plain text");
    expect("", "");
}

static void expect_error(const char *fmt, int rc_want, const char *needle)
{
    devdata_ctx_t c = full_ctx();
    char out[64] = "x", err[256] = "";
    int rc = devdata_format(fmt, &c, out, sizeof out, err, sizeof err);
    if (rc != rc_want) fail_msg("%s: rc %d, want %d (%s)", fmt, rc, rc_want, err);
    assert_string_equal(out, "");
    if (!strstr(err, needle)) fail_msg("%s: `%s` not in: %s", fmt, needle, err);
}

static void test_refusals(void **s)
{
    devdata_ctx_t none;
    char out[64], err[256];
    (void)s;
    expect_error("SN-{serial_no}", DEVDATA_EFORMAT, "unknown placeholder {serial_no}");
    expect_error("SN-{n", DEVDATA_EFORMAT, "position 4: '{' without '}'");
    expect_error("SN-}", DEVDATA_EFORMAT, "position 4: '}' without '{'");
    expect_error("{}", DEVDATA_EFORMAT, "empty placeholder");
    expect_error("{n:{year}}", DEVDATA_EFORMAT, "inside a placeholder");
    expect_error("{n:6q}", DEVDATA_EFORMAT, "{n:6q}");
    expect_error("{n:0}", DEVDATA_EFORMAT, "[0][width]");
    expect_error("{n:021}", DEVDATA_EFORMAT, "[0][width]");
    expect_error("{mac:weird}", DEVDATA_EFORMAT, "last3");
    expect_error("{year:4}", DEVDATA_EFORMAT, "empty");
    expect_error("{chip:lower}", DEVDATA_EFORMAT, "upper");
    expect_error("{flash_id:x}", DEVDATA_EFORMAT, "HEX");
    expect_error("{averyveryverylongname}", DEVDATA_EFORMAT, "overlong");
    /* things not known yet */
    memset(&none, 0, sizeof none);
    assert_int_equal(devdata_format("{mac}", &none, out, sizeof out, err, sizeof err),
                     DEVDATA_EMISSING);
    assert_non_null(strstr(err, "MAC"));
    assert_int_equal(devdata_format("{n}", NULL, out, sizeof out, err, sizeof err),
                     DEVDATA_EMISSING);
    assert_int_equal(devdata_format("{serial}", &none, out, sizeof out, err, sizeof err),
                     DEVDATA_EMISSING);
    /* too long for the buffer */
    assert_int_equal(devdata_format("0123456789{n}", NULL, out, 8, err, sizeof err),
                     DEVDATA_EMISSING); /* what is missing is reported before the length */
    {
        devdata_ctx_t c = full_ctx();
        assert_int_equal(devdata_format("0123456789-{n}", &c, out, 8, err, sizeof err),
                         DEVDATA_ERANGE);
        assert_string_equal(out, "");
    }
}

static void test_needs(void **s)
{
    (void)s;
    assert_int_equal(devdata_format_needs("SN-{year}-{n:06}"),
                     DEVDATA_NEEDS_TIME | DEVDATA_NEEDS_N);
    assert_int_equal(devdata_format_needs("{mac:HEX}{flash_id}{chip}{rev}{serial}"),
                     DEVDATA_NEEDS_MAC | DEVDATA_NEEDS_FLASH_ID | DEVDATA_NEEDS_CHIP |
                         DEVDATA_NEEDS_REV | DEVDATA_NEEDS_SERIAL);
    assert_int_equal(devdata_format_needs("fixed {{x}}"), DEVDATA_NEEDS_NOTHING);
    assert_int_equal(devdata_format_needs("{bad}"), 0);
    assert_int_equal(devdata_format_needs(NULL), 0);
}

static void test_counter(void **s)
{
    uint64_t n = 0;
    (void)s;
    assert_int_equal(devdata_counter(1000, 1, 0, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(devdata_counter(1000, 5, 7, &n), 0);
    assert_int_equal(n, 1035);
    assert_int_equal(devdata_counter(UINT64_MAX - 10, 1, 10, &n), 0);
    assert_int_equal(n, UINT64_MAX);
    assert_int_equal(devdata_counter(UINT64_MAX - 10, 1, 11, &n), DEVDATA_ERANGE);
    assert_int_equal(devdata_counter(1, UINT64_MAX / 2, 3, &n), DEVDATA_ERANGE);
    assert_int_equal(devdata_counter(7, 0, UINT64_MAX, &n), 0);
    assert_int_equal(n, 7);
}

static void test_mac_styles(void **s)
{
    const uint8_t mac[6] = {0xAA, 0xBB, 0xCC, 0x01, 0x02, 0x03};
    char out[18];
    (void)s;
    assert_int_equal(devdata_format_mac(mac, NULL, out, sizeof out), 17);
    assert_string_equal(out, "aa:bb:cc:01:02:03");
    assert_int_equal(devdata_format_mac(mac, "HEX", out, sizeof out), 12);
    assert_string_equal(out, "AABBCC010203");
    assert_int_equal(devdata_format_mac(mac, "last3", out, sizeof out), 6);
    assert_string_equal(out, "010203");
    assert_int_equal(devdata_format_mac(mac, "Hex", out, sizeof out), DEVDATA_EFORMAT);
    assert_int_equal(devdata_format_mac(mac, "hex", out, 12), DEVDATA_ERANGE);
}

static void test_random(void **s)
{
    uint8_t a[32], b[32];
    char hex[65], sha[65];
    (void)s;
    assert_int_equal(devdata_random(a, sizeof a), 0);
    assert_int_equal(devdata_random(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    devdata_hex((const uint8_t *)"\x00\x7f\xff", 3, hex);
    assert_string_equal(hex, "007fff");
    devdata_sha256_hex((const uint8_t *)"abc", 3, sha);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(devdata_random(a, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_needs),      cmocka_unit_test(test_counter),
        cmocka_unit_test(test_mac_styles), cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
