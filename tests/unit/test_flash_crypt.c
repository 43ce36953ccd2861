/* SPDX-License-Identifier: MIT */
/* test_flash_crypt.c — host-side flash encryption against espsecure's outputs
 * (tests/data/vectors/security: c3_xts128_0x10000.bin, s3_xts256_0x20000.bin,
 * esp32_aes256_0x10000.bin from plain_app.bin and the key files), decryption back to the
 * plaintext, address dependence, unaligned starts and refused parameters
 * (jobs/prov/flash_crypt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flash_crypt.h"

#include "vectors.h"

typedef enum { XTS, ESP32 } scheme_t;

static void check_vector(const char *keyfile, const char *expect, uint32_t addr, scheme_t s)
{
    size_t klen, plen, clen;
    uint8_t *key = load(keyfile, &klen), *plain = load("plain_app.bin", &plen);
    uint8_t *want = load(expect, &clen), *got = malloc(plen), *back = malloc(plen);
    char err[160] = "";
    assert_int_equal(plen, clen);
    if (s == XTS) {
        assert_int_equal(flash_crypt_xts(key, klen, addr, plain, got, plen, false, err, sizeof err), 0);
    } else {
        assert_int_equal(
            flash_crypt_esp32(key, klen, addr, 0xF, plain, got, plen, false, err, sizeof err), 0);
    }
    assert_memory_equal(got, want, plen);
    /* decrypting the reference ciphertext gives the plaintext back */
    if (s == XTS)
        assert_int_equal(flash_crypt_xts(key, klen, addr, want, back, plen, true, err, sizeof err), 0);
    else
        assert_int_equal(
            flash_crypt_esp32(key, klen, addr, 0xF, want, back, plen, true, err, sizeof err), 0);
    assert_memory_equal(back, plain, plen);
    /* in place works too */
    memcpy(back, plain, plen);
    if (s == XTS)
        assert_int_equal(flash_crypt_xts(key, klen, addr, back, back, plen, false, err, sizeof err), 0);
    else
        assert_int_equal(
            flash_crypt_esp32(key, klen, addr, 0xF, back, back, plen, false, err, sizeof err), 0);
    assert_memory_equal(back, want, plen);
    /* the same plaintext at another address encrypts differently */
    if (s == XTS)
        assert_int_equal(
            flash_crypt_xts(key, klen, addr + 0x1000, plain, got, plen, false, err, sizeof err), 0);
    else
        assert_int_equal(flash_crypt_esp32(key, klen, addr + 0x1000, 0xF, plain, got, plen, false,
                                           err, sizeof err),
                         0);
    assert_memory_not_equal(got, want, 128);
    free(key);
    free(plain);
    free(want);
    free(got);
    free(back);
}

static void test_c3_xts128(void **state)
{
    (void)state;
    check_vector("xts128_key.bin", "c3_xts128_0x10000.bin", 0x10000, XTS);
}

static void test_s3_xts256(void **state)
{
    (void)state;
    check_vector("xts256_key.bin", "s3_xts256_0x20000.bin", 0x20000, XTS);
}

static void test_esp32_aes256(void **state)
{
    (void)state;
    check_vector("esp32_fe_key.bin", "esp32_aes256_0x10000.bin", 0x10000, ESP32);
}

/* A range that starts and ends inside 128-byte units gives the same bytes as the matching
 * slice of the aligned encryption (XTS), and the same for the ESP32 scheme at 16-byte steps. */
static void test_unaligned_slices(void **state)
{
    size_t klen, plen, clen, k2len, c2len;
    uint8_t *key = load("xts128_key.bin", &klen), *plain = load("plain_app.bin", &plen);
    uint8_t *want = load("c3_xts128_0x10000.bin", &clen);
    uint8_t *k2 = load("esp32_fe_key.bin", &k2len), *want2 = load("esp32_aes256_0x10000.bin", &c2len);
    uint8_t got[512];
    char err[160];
    (void)state;
    assert_int_equal(flash_crypt_xts(key, klen, 0x10000 + 48, plain + 48, got, 400, false, err,
                                     sizeof err),
                     0);
    assert_memory_equal(got, want + 48, 400);
    assert_int_equal(flash_crypt_esp32(k2, k2len, 0x10000 + 16, 0xF, plain + 16, got, 256, false,
                                       err, sizeof err),
                     0);
    assert_memory_equal(got, want2 + 16, 256);
    free(key);
    free(plain);
    free(want);
    free(k2);
    free(want2);
}

static void test_refused_parameters(void **state)
{
    uint8_t key[64] = {1, 2, 3}, buf[64] = {0};
    char err[160];
    (void)state;
    err[0] = 0;
    assert_int_equal(flash_crypt_xts(key, 16, 0x1000, buf, buf, 32, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "32 bytes"));
    assert_int_equal(flash_crypt_xts(key, 32, 0x1001, buf, buf, 32, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiples of 16"));
    assert_int_equal(flash_crypt_xts(key, 32, 0x1000, buf, buf, 20, false, err, sizeof err), -1);
    assert_int_equal(flash_crypt_xts(key, 32, 0x1000, buf, buf, 0, false, err, sizeof err), -1);
    assert_int_equal(flash_crypt_esp32(key, 64, 0x1000, 0xF, buf, buf, 32, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "32 bytes"));
    assert_int_equal(flash_crypt_esp32(key, 32, 0x1000, 16, buf, buf, 32, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "FLASH_CRYPT_CONFIG"));
    assert_int_equal(
        flash_crypt_esp32(key, 32, 0xFFFFFFF0u, 0xF, buf, buf, 32, false, err, sizeof err), -1);
}

/* FLASH_CRYPT_CONFIG 0 applies no tweak: every block uses the plain key. */
static void test_esp32_tweak_config(void **state)
{
    uint8_t key[32], k0[32], k1[32];
    (void)state;
    for (unsigned i = 0; i < 32; i++)
        key[i] = (uint8_t)(0xA5 ^ i);
    flash_crypt_esp32_block_key(key, 0x123460, 0, k0);
    assert_memory_equal(k0, key, 32);
    flash_crypt_esp32_block_key(key, 0x0, 0xF, k0);
    assert_memory_equal(k0, key, 32); /* address 0: no bits to flip */
    flash_crypt_esp32_block_key(key, 0x20, 0xF, k0);
    flash_crypt_esp32_block_key(key, 0x40, 0xF, k1);
    assert_memory_not_equal(k0, key, 32);
    assert_memory_not_equal(k0, k1, 32);
}

/* Keys from the CSPRNG: right lengths only, different every time, usable for encryption. */
static void test_generate_key(void **state)
{
    uint8_t a[64], b[64], buf[128] = {1, 2, 3}, out[128];
    char err[160];
    (void)state;
    assert_int_equal(flash_crypt_generate_key(a, 32, err, sizeof err), 0);
    assert_int_equal(flash_crypt_generate_key(b, 32, err, sizeof err), 0);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, a + 16, 16);
    assert_int_equal(flash_crypt_generate_key(a, 64, err, sizeof err), 0);
    assert_memory_not_equal(a, a + 32, 32);
    assert_int_equal(flash_crypt_xts(a, 64, 0x1000, buf, out, sizeof buf, false, err, sizeof err), 0);
    assert_int_equal(flash_crypt_generate_key(a, 16, err, sizeof err), -1);
    assert_non_null(strstr(err, "32 or 64"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c3_xts128),        cmocka_unit_test(test_s3_xts256),
        cmocka_unit_test(test_esp32_aes256),     cmocka_unit_test(test_unaligned_slices),
        cmocka_unit_test(test_refused_parameters), cmocka_unit_test(test_esp32_tweak_config),
        cmocka_unit_test(test_generate_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
