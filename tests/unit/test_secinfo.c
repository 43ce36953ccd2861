/* SPDX-License-Identifier: MIT */
/* test_secinfo.c — GET_SECURITY_INFO decoding (jobs/prov/secinfo.c): the 12-byte (ESP32-S2)
 * and 20-byte forms, every flag bit, the crypt-counter rule (odd popcount = encryption on), key
 * purposes, the one-line summary, and refused lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "secinfo.h"

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A fresh ESP32-C3 as its ROM answers (chip ID 5, API version 3 here). */
static void test_fresh_c3_20_bytes(void **state)
{
    uint8_t out[20] = {0};
    secinfo_t si;
    secinfo_summary_t s;
    char line[256];
    (void)state;
    put32(out + 12, 5);
    put32(out + 16, 3);
    assert_int_equal(secinfo_parse(out, 20, &si, NULL, 0), 0);
    assert_true(si.has_chip_id);
    assert_int_equal(si.chip_id, 5);
    assert_int_equal(si.api_version, 3);
    secinfo_summarize(&si, &s);
    assert_false(s.flash_encryption);
    assert_false(s.secure_boot);
    assert_false(s.secure_download);
    secinfo_describe(&s, line, sizeof line);
    assert_string_equal(line, "flash encryption off (counter 0/3 bits), Secure Boot off, JTAG enabled");
}

static void test_s2_12_bytes(void **state)
{
    uint8_t out[12] = {0};
    secinfo_t si;
    (void)state;
    put32(out, SECINFO_SECURE_DOWNLOAD_ENABLE);
    out[4] = 1;
    out[5] = KEY_PURPOSE_XTS_AES_256_KEY_1;
    out[6] = KEY_PURPOSE_XTS_AES_256_KEY_2;
    assert_int_equal(secinfo_parse(out, 12, &si, NULL, 0), 0);
    assert_false(si.has_chip_id);
    assert_int_equal(si.flags, SECINFO_SECURE_DOWNLOAD_ENABLE);
    assert_int_equal(si.key_purposes[0], 2);
    assert_int_equal(si.key_purposes[1], 3);
}

/* Encryption is on exactly when an odd number of counter bits is set. */
static void test_crypt_counter(void **state)
{
    static const struct {
        uint8_t cnt;
        bool on;
        unsigned bits;
        bool exhausted;
    } cases[] = {{0, false, 0, false}, {1, true, 1, false}, {2, true, 1, false},
                 {3, false, 2, false}, {5, false, 2, false}, {7, true, 3, true}};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[20] = {0};
        secinfo_t si;
        secinfo_summary_t s;
        out[4] = cases[i].cnt;
        assert_int_equal(secinfo_parse(out, 20, &si, NULL, 0), 0);
        secinfo_summarize(&si, &s);
        assert_int_equal(s.flash_encryption, cases[i].on);
        assert_int_equal(s.crypt_cnt_bits, cases[i].bits);
        assert_int_equal(s.crypt_cnt_exhausted, cases[i].exhausted);
    }
}

/* Each flag bit lands in its own summary field and nowhere else. */
static void test_every_flag(void **state)
{
    (void)state;
    for (unsigned bit = 0; bit < 12; bit++) {
        uint8_t out[20] = {0};
        secinfo_t si;
        secinfo_summary_t s;
        bool *fields[11];
        put32(out, 1u << bit);
        assert_int_equal(secinfo_parse(out, 20, &si, NULL, 0), 0);
        secinfo_summarize(&si, &s);
        fields[0] = &s.secure_boot;
        fields[1] = &s.aggressive_revoke;
        fields[2] = &s.secure_download;
        fields[3] = &s.key_revoked[0];
        fields[4] = &s.key_revoked[1];
        fields[5] = &s.key_revoked[2];
        fields[6] = &s.jtag_soft_disabled;
        fields[7] = &s.jtag_hard_disabled;
        fields[8] = &s.usb_disabled;
        fields[9] = &s.download_dcache_disabled;
        fields[10] = &s.download_icache_disabled;
        for (unsigned k = 0; k < 11; k++)
            assert_int_equal(*fields[k], k == bit);
        assert_int_equal(s.unknown_flags, bit == 11 ? 1u << 11 : 0);
    }
}

static void test_secured_unit_summary(void **state)
{
    uint8_t out[20] = {0};
    secinfo_t si;
    secinfo_summary_t s;
    char line[256];
    (void)state;
    put32(out, SECINFO_SECURE_BOOT_EN | SECINFO_SECURE_BOOT_KEY_REVOKE1 |
                   SECINFO_SECURE_BOOT_KEY_REVOKE2 | SECINFO_HARD_DIS_JTAG |
                   SECINFO_SECURE_DOWNLOAD_ENABLE);
    out[4] = 1;
    out[5] = KEY_PURPOSE_XTS_AES_128_KEY;
    out[6] = KEY_PURPOSE_SECURE_BOOT_DIGEST0;
    assert_int_equal(secinfo_parse(out, 20, &si, NULL, 0), 0);
    secinfo_summarize(&si, &s);
    assert_int_equal(s.n_secure_boot_digests, 1);
    assert_int_equal(s.n_flash_keys, 1);
    secinfo_describe(&s, line, sizeof line);
    assert_string_equal(line, "flash encryption on (counter 1/3 bits), Secure Boot on (1 digest, "
                              "key 1 revoked, key 2 revoked), JTAG disabled (hard), Secure "
                              "Download Mode, 1 flash-encryption key block");
    /* truncation is safe */
    assert_int_equal(secinfo_describe(&s, line, 10), 9);
    assert_int_equal(strlen(line), 9);
}

static void test_bad_lengths_and_names(void **state)
{
    uint8_t out[24] = {0};
    secinfo_t si;
    char err[120] = "";
    (void)state;
    for (size_t len = 0; len <= 24; len++)
        if (len != 12 && len != 20)
            assert_int_equal(secinfo_parse(out, len, &si, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected 12"));
    assert_string_equal(secinfo_key_purpose_name(4), "XTS_AES_128_KEY");
    assert_string_equal(secinfo_key_purpose_name(11), "SECURE_BOOT_DIGEST2");
    assert_string_equal(secinfo_key_purpose_name(13), "PURPOSE_13");
    assert_string_equal(secinfo_key_purpose_name(200), "PURPOSE_INVALID");
    assert_int_equal(secinfo_key_purpose_from_name("SECURE_BOOT_DIGEST1"), 10);
    assert_int_equal(secinfo_key_purpose_from_name("nope"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_c3_20_bytes), cmocka_unit_test(test_s2_12_bytes),
        cmocka_unit_test(test_crypt_counter),     cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_secured_unit_summary), cmocka_unit_test(test_bad_lengths_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
