/* SPDX-License-Identifier: MIT */
/* test_escrow.c — key escrow (jobs/prov/escrow.c): a secret wrapped for an escrow public key
 * generated here unwraps with the matching private key only; the blob is self-describing and
 * never contains the secret; damaged blobs and weak keys are refused; and an escrowed
 * flash-encryption key decrypts espsecure's ciphertext back to the plain image (recovery). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "escrow.h"
#include "flash_crypt.h"

#include "vectors.h"

typedef struct {
    char *pub, *priv;
    size_t pub_len, priv_len;
} pem_pair_t;

static pem_pair_t g_key, g_other, g_small;

static char *bio_text(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = 0;
    *len = (size_t)n;
    return out;
}

static int make_pair(pem_pair_t *p, unsigned bits)
{
    EVP_PKEY *pk = EVP_RSA_gen(bits);
    BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
    if (!pk || !a || !b || PEM_write_bio_PUBKEY(a, pk) != 1 ||
        PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1)
        return -1;
    p->pub = bio_text(a, &p->pub_len);
    p->priv = bio_text(b, &p->priv_len);
    BIO_free(a);
    BIO_free(b);
    EVP_PKEY_free(pk);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return make_pair(&g_key, 3072) || make_pair(&g_other, 3072) || make_pair(&g_small, 2048);
}

static int teardown(void **state)
{
    pem_pair_t *all[] = {&g_key, &g_other, &g_small};
    (void)state;
    for (unsigned i = 0; i < 3; i++) {
        free(all[i]->pub);
        free(all[i]->priv);
    }
    return 0;
}

static void test_roundtrip(void **state)
{
    uint8_t secret[64], back[64], *blob, id[32];
    size_t blob_len, back_len;
    escrow_info_t info;
    char err[200] = "";
    (void)state;
    for (unsigned i = 0; i < sizeof secret; i++)
        secret[i] = (uint8_t)(0x3C + 7 * i);
    if (escrow_wrap(g_key.pub, g_key.pub_len, "flash_encryption_key", secret, sizeof secret, &blob,
                    &blob_len, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(blob_len, ESCROW_HDR_LEN + strlen("flash_encryption_key") + 384);
    assert_memory_equal(blob, "ESKW", 4);
    /* self-describing header */
    assert_int_equal(escrow_parse(blob, blob_len, &info, err, sizeof err), 0);
    assert_int_equal(info.version, 1);
    assert_int_equal(info.algorithm, ESCROW_ALG_RSA_OAEP_SHA256);
    assert_string_equal(info.label, "flash_encryption_key");
    assert_int_equal(info.secret_len, 64);
    assert_int_equal(escrow_key_id(g_key.pub, g_key.pub_len, id, err, sizeof err), 0);
    assert_memory_equal(info.key_id, id, 32);
    /* the secret does not appear in the blob (no 8-byte window of it) */
    for (size_t off = 0; off + 8 <= blob_len; off++)
        for (size_t s = 0; s + 8 <= sizeof secret; s++)
            assert_memory_not_equal(blob + off, secret + s, 8);
    if (escrow_unwrap(g_key.priv, g_key.priv_len, blob, blob_len, back, sizeof back, &back_len,
                      &info, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(back_len, sizeof secret);
    assert_memory_equal(back, secret, sizeof secret);
    free(blob);
}

/* OAEP is randomised: the same secret wraps differently each time. */
static void test_randomised(void **state)
{
    uint8_t secret[32] = {1, 2, 3}, *a, *b;
    size_t al, bl;
    char err[200];
    (void)state;
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "k", secret, 32, &a, &al, err, sizeof err), 0);
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "k", secret, 32, &b, &bl, err, sizeof err), 0);
    assert_int_equal(al, bl);
    assert_memory_not_equal(a, b, al);
    free(a);
    free(b);
}

static void test_wrong_key_and_damage(void **state)
{
    uint8_t secret[32], back[64], *blob;
    size_t blob_len, back_len;
    escrow_info_t info;
    char err[200];
    (void)state;
    memset(secret, 0x5A, sizeof secret);
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "nvs_key", secret, sizeof secret, &blob,
                                 &blob_len, err, sizeof err),
                     0);
    assert_int_equal(escrow_unwrap(g_other.priv, g_other.priv_len, blob, blob_len, back,
                                   sizeof back, &back_len, &info, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "another escrow key"));
    blob[blob_len - 10] ^= 0x40;
    assert_int_equal(escrow_unwrap(g_key.priv, g_key.priv_len, blob, blob_len, back, sizeof back,
                                   &back_len, &info, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "damaged"));
    assert_int_equal(back_len, 0);
    assert_int_equal(escrow_parse(blob, blob_len - 1, &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    blob[4] = 9;
    assert_int_equal(escrow_parse(blob, blob_len, &info, err, sizeof err), -1);
    assert_non_null(strstr(err, "version"));
    assert_int_equal(escrow_parse((const uint8_t *)"hello", 5, &info, err, sizeof err), -1);
    free(blob);
}

static void test_refused_inputs(void **state)
{
    uint8_t secret[400] = {0}, *blob;
    size_t blob_len;
    char err[200];
    (void)state;
    assert_int_equal(escrow_wrap(g_small.pub, g_small.pub_len, "k", secret, 32, &blob, &blob_len,
                                 err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "3072"));
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "k", secret, 0, &blob, &blob_len, err,
                                 sizeof err),
                     -1);
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "k", secret, 400, &blob, &blob_len,
                                 err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "1..318"));
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "bad\nlabel", secret, 32, &blob,
                                 &blob_len, err, sizeof err),
                     -1);
    assert_int_equal(escrow_wrap("junk", 4, "k", secret, 32, &blob, &blob_len, err, sizeof err), -1);
    assert_non_null(strstr(err, "PEM public key"));
    assert_null(blob);
}

/* Recovery: the flash-encryption key is escrowed, unwrapped by the engineer and decrypts the
 * flash dump (espsecure's ciphertext of plain_app.bin at 0x10000) to the original image. */
static void test_recover_flash_dump(void **state)
{
    size_t klen, plen, clen, blob_len, back_len;
    uint8_t *key = load("xts128_key.bin", &klen), *plain = load("plain_app.bin", &plen);
    uint8_t *dump = load("c3_xts128_0x10000.bin", &clen), *blob, back[64];
    escrow_info_t info;
    char err[200];
    (void)state;
    assert_int_equal(escrow_wrap(g_key.pub, g_key.pub_len, "flash_encryption_key", key, klen,
                                 &blob, &blob_len, err, sizeof err),
                     0);
    memset(key, 0, klen); /* the station forgets it */
    assert_int_equal(escrow_unwrap(g_key.priv, g_key.priv_len, blob, blob_len, back, sizeof back,
                                   &back_len, &info, err, sizeof err),
                     0);
    assert_int_equal(back_len, 32);
    assert_int_equal(flash_crypt_xts(back, back_len, 0x10000, dump, dump, clen, true, err, sizeof err), 0);
    assert_memory_equal(dump, plain, plen);
    free(key);
    free(plain);
    free(dump);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),           cmocka_unit_test(test_randomised),
        cmocka_unit_test(test_wrong_key_and_damage), cmocka_unit_test(test_refused_inputs),
        cmocka_unit_test(test_recover_flash_dump),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
