/* SPDX-License-Identifier: MIT */
/* test_sbv2.c — Secure Boot v2 against espsecure's outputs (tests/data/vectors/security):
 * public-key digests equal digest-sbv2-public-key, signed images verify with their key, the
 * tampered image, the wrong key and the unsigned image are refused with their own reasons, and
 * damaged signature blocks are not accepted (jobs/prov/sbv2.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "sbv2.h"

#include "vectors.h"

static void load_key(const char *name, sbv2_pubkey_t *k)
{
    size_t n;
    char err[200] = "";
    uint8_t *pem = load(name, &n);
    int rc = sbv2_pubkey_load_pem((const char *)pem, n, k, err, sizeof err);
    free(pem);
    if (rc != 0) fail_msg("%s: %s", name, err);
}

static void check_digest(const char *pem, const char *digest, sbv2_key_type_t type)
{
    sbv2_pubkey_t k;
    size_t n;
    uint8_t *want = load(digest, &n);
    load_key(pem, &k);
    assert_int_equal(n, 32);
    assert_int_equal(k.type, type);
    assert_memory_equal(k.digest, want, 32);
    sbv2_pubkey_free(&k);
    free(want);
}

static void test_digest_rsa3072(void **state)
{
    (void)state;
    check_digest("sbv2_rsa3072_pub.pem", "sbv2_rsa3072_digest.bin", SBV2_KEY_RSA3072);
}

static void test_digest_ecdsa256(void **state)
{
    (void)state;
    check_digest("sbv2_ecdsa256_pub.pem", "sbv2_ecdsa256_digest.bin", SBV2_KEY_ECDSA_P256);
}

/* Verify `image` against the named keys; returns rc, err copied out. */
static int verify(const char *image, const char *const *pems, size_t n_keys,
                  sbv2_verify_result_t *res, char *err, size_t cap)
{
    sbv2_pubkey_t keys[SBV2_MAX_KEYS];
    size_t len;
    uint8_t *img = load(image, &len);
    int rc;
    for (size_t i = 0; i < n_keys; i++)
        load_key(pems[i], &keys[i]);
    rc = sbv2_verify_image(img, len, keys, n_keys, res, err, cap);
    for (size_t i = 0; i < n_keys; i++)
        sbv2_pubkey_free(&keys[i]);
    free(img);
    return rc;
}

static void test_rsa_signed_passes(void **state)
{
    const char *keys[] = {"sbv2_rsa3072_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    if (verify("c3_app_signed_rsa3072.bin", keys, 1, &r, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(r.block, 0);
    assert_int_equal(r.key, 0);
    assert_true(r.n_blocks >= 1);
}

static void test_ecdsa_signed_passes(void **state)
{
    const char *keys[] = {"sbv2_ecdsa256_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    if (verify("c3_app_signed_ecdsa256.bin", keys, 1, &r, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(r.key, 0);
}

/* With several recipe keys, the one that signed is found. */
static void test_second_of_two_keys(void **state)
{
    const char *keys[] = {"sbv2_ecdsa256_pub.pem", "sbv2_rsa3072_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    if (verify("c3_app_signed_rsa3072.bin", keys, 2, &r, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(r.key, 1);
}

static void test_tampered_fails(void **state)
{
    const char *keys[] = {"sbv2_rsa3072_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    assert_int_equal(verify("c3_app_signed_rsa3072_tampered.bin", keys, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "image digest mismatch"));
    assert_int_equal(r.block, -1);
}

static void test_wrong_key_fails(void **state)
{
    const char *keys[] = {"sbv2_ecdsa256_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    assert_int_equal(verify("c3_app_signed_rsa3072.bin", keys, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "not signed by any of the given keys"));
}

static void test_unsigned_fails(void **state)
{
    const char *keys[] = {"sbv2_rsa3072_pub.pem"};
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    assert_int_equal(verify("c3_app_unsigned.bin", keys, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "no signature block"));
    assert_int_equal(r.n_blocks, 0);
}

/* An unsigned image padded to whole sectors (0xFF) has no block either. */
static void test_padded_unsigned_fails(void **state)
{
    sbv2_pubkey_t k;
    sbv2_verify_result_t r;
    size_t len;
    uint8_t *img = load("c3_app_unsigned.bin", &len), *pad = malloc(3 * SBV2_SECTOR);
    char err[300] = "";
    (void)state;
    memset(pad, 0xFF, 3 * SBV2_SECTOR);
    memcpy(pad, img, len);
    load_key("sbv2_rsa3072_pub.pem", &k);
    assert_int_equal(sbv2_verify_image(pad, 3 * SBV2_SECTOR, &k, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "no signature block"));
    sbv2_pubkey_free(&k);
    free(img);
    free(pad);
}

/* The parsed block names the key it was made with; a flipped bit inside the block (caught by
 * its CRC32) or a wrong magic leaves the image without a valid signature block. */
static void test_damaged_block(void **state)
{
    sbv2_pubkey_t k;
    sbv2_verify_result_t r;
    sbv2_block_t blocks[SBV2_MAX_BLOCKS];
    size_t len;
    uint8_t *img = load("c3_app_signed_ecdsa256.bin", &len);
    uint8_t *blk = img + len - SBV2_SECTOR;
    char err[300] = "";
    (void)state;
    assert_int_equal(sbv2_parse_image(img, len, blocks, err, sizeof err), 1);
    assert_int_equal(blocks[0].key_type, SBV2_KEY_ECDSA_P256);
    assert_int_equal(blocks[0].digest_len, 32);
    load_key("sbv2_ecdsa256_pub.pem", &k);
    assert_memory_equal(blocks[0].key_digest, k.digest, 32);
    blk[120] ^= 0x01; /* inside the signature: the CRC no longer matches */
    assert_int_equal(sbv2_parse_image(img, len, blocks, err, sizeof err), 0);
    assert_non_null(strstr(err, "CRC32"));
    assert_int_equal(sbv2_verify_image(img, len, &k, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "no signature block"));
    blk[120] ^= 0x01;
    blk[0] = 0x00;
    assert_int_equal(sbv2_parse_image(img, len, blocks, err, sizeof err), 0);
    assert_non_null(strstr(err, "magic"));
    sbv2_pubkey_free(&k);
    free(img);
}

static void test_bad_keys_refused(void **state)
{
    static const char priv[] = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
    static const char junk[] = "hello";
    sbv2_pubkey_t k;
    sbv2_verify_result_t r;
    uint8_t img[SBV2_SECTOR] = {0};
    char err[300] = "";
    (void)state;
    assert_int_equal(sbv2_pubkey_load_pem(priv, sizeof priv - 1, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "private key"));
    assert_int_equal(sbv2_pubkey_load_pem(junk, sizeof junk - 1, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "PEM"));
    assert_int_equal(sbv2_verify_image(img, sizeof img, &k, 0, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "1 to 3"));
}

/* ---- ECDSA signature blocks built here from the layout in docs/SECURITY-PROVISIONING.md §8.2,
 * signed with keys generated by OpenSSL: the P-384 (SHA-384) and multi-block paths. ---- */

#define BODY_LEN (2 * SBV2_SECTOR)

static void put_le(uint8_t *dst, const BIGNUM *bn, int len)
{
    assert_int_equal(BN_bn2lebinpad(bn, dst, len), len);
}

/* Fill `blk` with an ECDSA block over `body` signed by `pk` (curve P-256 or P-384). When
 * `break_sig` the signature is altered before the CRC is computed. */
static void ecdsa_block(EVP_PKEY *pk, bool p384, const uint8_t *body, size_t body_len,
                        uint8_t blk[SBV2_BLOCK_LEN], bool break_sig)
{
    size_t clen = p384 ? 48 : 32, dlen = p384 ? 48 : 32, base = p384 ? 52 : 36, field = p384 ? 96 : 64;
    uint8_t digest[48], der[160];
    size_t der_len = sizeof der;
    const unsigned char *q = der;
    BIGNUM *x = NULL, *y = NULL;
    const BIGNUM *r, *s;
    ECDSA_SIG *sig;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    uint32_t crc;
    if (p384) SHA384(body, body_len, digest);
    else SHA256(body, body_len, digest);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, digest, dlen), 1);
    EVP_PKEY_CTX_free(ctx);
    sig = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &s);
    memset(blk, 0, SBV2_BLOCK_LEN);
    blk[0] = 0xE7;
    blk[1] = 3;
    blk[2] = p384 ? 1 : 0;
    memcpy(blk + 4, digest, dlen);
    blk[base] = p384 ? 3 : 2;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    put_le(blk + base + 1, x, (int)clen);
    put_le(blk + base + 1 + clen, y, (int)clen);
    put_le(blk + base + 1 + field, r, (int)clen);
    put_le(blk + base + 1 + field + clen, s, (int)clen);
    if (break_sig) blk[base + 1 + field + 3] ^= 0x10;
    crc = (uint32_t)crc32(0, blk, SBV2_BLOCK_CRC_LEN);
    for (unsigned i = 0; i < 4; i++)
        blk[SBV2_BLOCK_CRC_LEN + i] = (uint8_t)(crc >> (8 * i));
    BN_free(x);
    BN_free(y);
    ECDSA_SIG_free(sig);
}

static void pub_of(EVP_PKEY *pk, sbv2_pubkey_t *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, err[200] = "";
    long n;
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    n = BIO_get_mem_data(b, &data);
    if (sbv2_pubkey_load_pem(data, (size_t)n, out, err, sizeof err) != 0) fail_msg("%s", err);
    BIO_free(b);
}

static void test_generated_p384_and_multi_block(void **state)
{
    EVP_PKEY *k384 = EVP_EC_gen("P-384"), *k256 = EVP_EC_gen("P-256");
    uint8_t *img = malloc(BODY_LEN + SBV2_SECTOR);
    sbv2_pubkey_t pub384, pub256;
    sbv2_block_t blocks[SBV2_MAX_BLOCKS];
    sbv2_verify_result_t r;
    char err[300] = "";
    (void)state;
    assert_non_null(k384);
    assert_non_null(k256);
    for (size_t i = 0; i < BODY_LEN; i++)
        img[i] = (uint8_t)(i * 7 + 3);
    memset(img + BODY_LEN, 0xFF, SBV2_SECTOR);
    /* block 0: P-256 with a broken signature; block 1: valid P-384 */
    ecdsa_block(k256, false, img, BODY_LEN, img + BODY_LEN, true);
    ecdsa_block(k384, true, img, BODY_LEN, img + BODY_LEN + SBV2_BLOCK_LEN, false);
    pub_of(k384, &pub384);
    pub_of(k256, &pub256);
    assert_int_equal(pub384.type, SBV2_KEY_ECDSA_P384);
    assert_int_equal(sbv2_parse_image(img, BODY_LEN + SBV2_SECTOR, blocks, err, sizeof err), 2);
    assert_int_equal(blocks[1].digest_len, 48);
    assert_memory_equal(blocks[1].key_digest, pub384.digest, 32);
    {
        sbv2_pubkey_t both[2] = {pub256, pub384};
        assert_int_equal(sbv2_verify_image(img, BODY_LEN + SBV2_SECTOR, both, 2, &r, err, sizeof err), 0);
        assert_int_equal(r.block, 1);
        assert_int_equal(r.key, 1);
        assert_int_equal(r.n_blocks, 2);
    }
    /* only the P-256 key: its block names it but the signature is bad */
    assert_int_equal(sbv2_verify_image(img, BODY_LEN + SBV2_SECTOR, &pub256, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "signature does not verify"));
    /* a change in the body after signing */
    img[100] ^= 1;
    assert_int_equal(sbv2_verify_image(img, BODY_LEN + SBV2_SECTOR, &pub384, 1, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "image digest mismatch"));
    sbv2_pubkey_free(&pub384);
    sbv2_pubkey_free(&pub256);
    EVP_PKEY_free(k384);
    EVP_PKEY_free(k256);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_rsa3072),      cmocka_unit_test(test_digest_ecdsa256),
        cmocka_unit_test(test_rsa_signed_passes),   cmocka_unit_test(test_ecdsa_signed_passes),
        cmocka_unit_test(test_second_of_two_keys),  cmocka_unit_test(test_tampered_fails),
        cmocka_unit_test(test_wrong_key_fails),     cmocka_unit_test(test_unsigned_fails),
        cmocka_unit_test(test_padded_unsigned_fails), cmocka_unit_test(test_damaged_block),
        cmocka_unit_test(test_bad_keys_refused),
        cmocka_unit_test(test_generated_p384_and_multi_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
