/* SPDX-License-Identifier: MIT */
/* sbv2.c — Secure Boot v2 signature blocks, public-key digests and signature checks with
 * OpenSSL (docs/SECURITY-PROVISIONING.md §"Secure Boot v2" has the layout and its source).
 * Must not: do I/O or log; the parsers only read inside the buffer they are given. */
#include "sbv2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#define RSA_LEN 384u

__attribute__((format(printf, 3, 4)))
static int sb_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *sbv2_key_type_name(sbv2_key_type_t t)
{
    switch (t) {
    case SBV2_KEY_RSA3072: return "RSA-3072";
    case SBV2_KEY_ECDSA_P192: return "ECDSA-P192";
    case SBV2_KEY_ECDSA_P256: return "ECDSA-P256";
    case SBV2_KEY_ECDSA_P384: return "ECDSA-P384";
    case SBV2_KEY_NONE: break;
    }
    return "none";
}

static size_t ec_coord_len(sbv2_key_type_t t)
{
    return t == SBV2_KEY_ECDSA_P192 ? 24 : t == SBV2_KEY_ECDSA_P256 ? 32 : 48;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32) */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (unsigned k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ECDSA part of a block; `b` already has version/index/crc. */
static int parse_ecdsa(const uint8_t *blk, sbv2_block_t *b, char *err, size_t cap)
{
    uint8_t sha = blk[2];
    size_t base = sha == 1 ? 52 : 36, field = sha == 1 ? 96 : 64, clen;
    uint8_t curve;
    if (sha > 1)
        return sb_fail(err, cap, "signature block %u: unknown ECDSA hash type %u", b->index, sha);
    curve = blk[base];
    if (sha == 0 && curve == 1) b->key_type = SBV2_KEY_ECDSA_P192;
    else if (sha == 0 && curve == 2) b->key_type = SBV2_KEY_ECDSA_P256;
    else if (sha == 1 && curve == 3) b->key_type = SBV2_KEY_ECDSA_P384;
    else
        return sb_fail(err, cap, "signature block %u: unsupported curve id %u for hash type %u",
                       b->index, curve, sha);
    clen = ec_coord_len(b->key_type);
    b->digest_len = sha == 1 ? 48 : 32;
    b->image_digest = blk + 4;
    b->key_material = blk + base;
    b->key_material_len = 1 + field;
    b->pubkey = blk + base + 1;
    b->pubkey_len = 2 * clen;
    b->signature = blk + base + 1 + field;
    b->signature_len = 2 * clen;
    return 0;
}

int sbv2_parse_block(const uint8_t *blk, size_t len, unsigned index, sbv2_block_t *out, char *err,
                     size_t cap)
{
    uint32_t crc;
    memset(out, 0, sizeof *out);
    out->index = index;
    if (len < SBV2_BLOCK_LEN)
        return sb_fail(err, cap, "signature block %u: only %zu bytes", index, len);
    if (blk[0] != SBV2_MAGIC)
        return sb_fail(err, cap, "signature block %u: magic 0x%02x, not 0xE7", index, blk[0]);
    if (blk[1] != SBV2_VERSION_RSA && blk[1] != SBV2_VERSION_ECDSA)
        return sb_fail(err, cap, "signature block %u: unknown version %u", index, blk[1]);
    crc = le32(blk + SBV2_BLOCK_CRC_LEN);
    if (crc != crc32_ieee(blk, SBV2_BLOCK_CRC_LEN))
        return sb_fail(err, cap, "signature block %u: CRC32 mismatch", index);
    out->version = blk[1];
    out->crc = crc;
    if (blk[1] == SBV2_VERSION_RSA) {
        out->key_type = SBV2_KEY_RSA3072;
        out->digest_len = 32;
        out->image_digest = blk + 4;
        out->key_material = blk + 36; /* n, e, rinv, m */
        out->key_material_len = RSA_LEN + 4 + RSA_LEN + 4;
        out->pubkey = blk + 36;
        out->pubkey_len = RSA_LEN + 4;
        out->signature = blk + 36 + out->key_material_len;
        out->signature_len = RSA_LEN;
    } else if (parse_ecdsa(blk, out, err, cap) != 0) {
        return -1;
    }
    SHA256(out->key_material, out->key_material_len, out->key_digest);
    return 0;
}

int sbv2_parse_image(const uint8_t *img, size_t len, sbv2_block_t blocks[SBV2_MAX_BLOCKS],
                     char *err, size_t cap)
{
    const uint8_t *sector;
    char why[160] = "";
    int n = 0;
    if (len < SBV2_SECTOR || len % SBV2_SECTOR != 0) {
        sb_fail(err, cap,
                "no signature block: the image is %zu bytes, not a whole number of 4 KiB sectors "
                "ending in a signature sector; sign it with 'espsecure sign-data --version 2'",
                len);
        return 0;
    }
    sector = img + len - SBV2_SECTOR;
    while (n < SBV2_MAX_BLOCKS &&
           sbv2_parse_block(sector + (size_t)n * SBV2_BLOCK_LEN, SBV2_BLOCK_LEN, (unsigned)n,
                            &blocks[n], why, sizeof why) == 0)
        n++;
    if (n == 0)
        sb_fail(err, cap,
                "no signature block in the last 4 KiB sector (%s); sign the image with "
                "'espsecure sign-data --version 2'",
                why);
    return n;
}

/* ---- public keys ---- */

static int rsa_key_material(EVP_PKEY *pk, uint8_t out[RSA_LEN * 2 + 8], char *err, size_t cap)
{
    BIGNUM *n = NULL, *e = NULL, *rr = BN_new(), *rinv = BN_new();
    BN_CTX *ctx = BN_CTX_new();
    int rc = -1;
    if (!rr || !rinv || !ctx || EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        sb_fail(err, cap, "cannot read the RSA key's modulus/exponent");
        goto out;
    }
    if (BN_num_bits(n) != 3072) {
        sb_fail(err, cap, "RSA key has %d bits; Secure Boot v2 supports RSA-3072 only",
                BN_num_bits(n));
        goto out;
    }
    if (BN_num_bits(e) > 32) {
        sb_fail(err, cap, "RSA public exponent does not fit 32 bits");
        goto out;
    }
    /* rinv = 2^(2*3072) mod n; m = -n^-1 mod 2^32 (Montgomery constants for the ROM's RSA
     * peripheral) */
    if (BN_set_word(rr, 1) != 1 || BN_lshift(rr, rr, 2 * 3072) != 1 ||
        BN_mod(rinv, rr, n, ctx) != 1 || BN_bn2lebinpad(n, out, RSA_LEN) != (int)RSA_LEN ||
        BN_bn2lebinpad(rinv, out + RSA_LEN + 4, RSA_LEN) != (int)RSA_LEN) {
        sb_fail(err, cap, "RSA key arithmetic failed");
        goto out;
    }
    {
        uint32_t ev = (uint32_t)BN_get_word(e), n0 = le32(out), inv = n0;
        for (unsigned i = 0; i < 5; i++) /* Newton: n0 * inv == 1 mod 2^32 (n0 is odd) */
            inv *= 2u - n0 * inv;
        uint32_t m = 0u - inv;
        for (unsigned i = 0; i < 4; i++) {
            out[RSA_LEN + i] = (uint8_t)(ev >> (8 * i));
            out[2 * RSA_LEN + 4 + i] = (uint8_t)(m >> (8 * i));
        }
    }
    rc = 0;
out:
    BN_free(n);
    BN_free(e);
    BN_free(rr);
    BN_free(rinv);
    BN_CTX_free(ctx);
    return rc;
}

static int ec_key_material(EVP_PKEY *pk, sbv2_key_type_t *type, uint8_t out[97], size_t *out_len,
                           char *err, size_t cap)
{
    char group[64] = "";
    BIGNUM *x = NULL, *y = NULL;
    size_t clen, field;
    int rc = -1;
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       NULL) != 1)
        return sb_fail(err, cap, "cannot read the EC key's curve");
    if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) *type = SBV2_KEY_ECDSA_P256;
    else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384")) *type = SBV2_KEY_ECDSA_P384;
    else if (!strcmp(group, "prime192v1") || !strcmp(group, "P-192")) *type = SBV2_KEY_ECDSA_P192;
    else
        return sb_fail(err, cap,
                       "EC key on curve %s; Secure Boot v2 supports P-192, P-256 and P-384", group);
    clen = ec_coord_len(*type);
    field = *type == SBV2_KEY_ECDSA_P384 ? 96 : 64;
    memset(out, 0, 97);
    out[0] = *type == SBV2_KEY_ECDSA_P192 ? 1 : *type == SBV2_KEY_ECDSA_P256 ? 2 : 3;
    if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2lebinpad(x, out + 1, (int)clen) != (int)clen ||
        BN_bn2lebinpad(y, out + 1 + clen, (int)clen) != (int)clen) {
        sb_fail(err, cap, "cannot read the EC key's point");
        goto out;
    }
    *out_len = 1 + field;
    rc = 0;
out:
    BN_free(x);
    BN_free(y);
    return rc;
}

int sbv2_pubkey_load_pem(const char *pem, size_t len, sbv2_pubkey_t *out, char *err, size_t cap)
{
    BIO *bio;
    EVP_PKEY *pk;
    uint8_t mat[RSA_LEN * 2 + 8];
    size_t mat_len = 0;
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (len > (size_t)1 << 20) return sb_fail(err, cap, "public key file larger than 1 MiB");
    if (memmem(pem, len, "PRIVATE KEY", 11))
        return sb_fail(err, cap, "a private key was given: the station needs only the public key "
                                 "(espsecure extract-public-key --version 2); keep signing keys "
                                 "off the station");
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return sb_fail(err, cap, "out of memory");
    pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return sb_fail(err, cap, "not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')");
    if (EVP_PKEY_is_a(pk, "RSA")) {
        out->type = SBV2_KEY_RSA3072;
        mat_len = sizeof mat;
        rc = rsa_key_material(pk, mat, err, cap);
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        rc = ec_key_material(pk, &out->type, mat, &mat_len, err, cap);
    } else {
        sb_fail(err, cap, "public key is neither RSA nor EC");
    }
    if (rc != 0) {
        EVP_PKEY_free(pk);
        out->type = SBV2_KEY_NONE;
        return -1;
    }
    SHA256(mat, mat_len, out->digest);
    out->pkey = pk;
    return 0;
}

void sbv2_pubkey_free(sbv2_pubkey_t *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
    k->type = SBV2_KEY_NONE;
}

/* ---- verification ---- */

static int verify_rsa(EVP_PKEY *pk, const sbv2_block_t *b, const uint8_t *digest)
{
    uint8_t sig[RSA_LEN];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    int ok = 0;
    for (unsigned i = 0; i < RSA_LEN; i++)
        sig[i] = b->signature[RSA_LEN - 1 - i];
    if (ctx && EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) == 1)
        ok = EVP_PKEY_verify(ctx, sig, sizeof sig, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int verify_ecdsa(EVP_PKEY *pk, const sbv2_block_t *b, const uint8_t *digest)
{
    size_t clen = b->signature_len / 2;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_lebin2bn(b->signature, (int)clen, NULL);
    BIGNUM *s = BN_lebin2bn(b->signature + clen, (int)clen, NULL);
    unsigned char *der = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int der_len, ok = 0;
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return 0;
    }
    der_len = i2d_ECDSA_SIG(sig, &der);
    ctx = EVP_PKEY_CTX_new(pk, NULL);
    if (der_len > 0 && ctx && EVP_PKEY_verify_init(ctx) == 1)
        ok = EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, b->digest_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

static void hex8(const uint8_t *d, char out[17])
{
    for (unsigned i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int sbv2_verify_image(const uint8_t *img, size_t len, const sbv2_pubkey_t *keys, size_t n_keys,
                      sbv2_verify_result_t *res, char *err, size_t cap)
{
    sbv2_block_t blocks[SBV2_MAX_BLOCKS];
    uint8_t d256[32], d384[48];
    bool digest_bad = false, key_seen = false;
    char bkey[17] = "";
    int n;
    res->n_blocks = 0;
    res->block = res->key = -1;
    if (n_keys == 0 || n_keys > SBV2_MAX_KEYS)
        return sb_fail(err, cap, "give 1 to %d Secure Boot v2 public keys (got %zu)", SBV2_MAX_KEYS,
                       n_keys);
    n = sbv2_parse_image(img, len, blocks, err, cap);
    res->n_blocks = n;
    if (n <= 0) return -1;
    SHA256(img, len - SBV2_SECTOR, d256);
    SHA384(img, len - SBV2_SECTOR, d384);
    for (int i = 0; i < n; i++) {
        const sbv2_block_t *b = &blocks[i];
        const uint8_t *digest = b->digest_len == 48 ? d384 : d256;
        if (memcmp(b->image_digest, digest, b->digest_len) != 0) {
            digest_bad = true;
            continue;
        }
        if (!bkey[0]) hex8(b->key_digest, bkey);
        for (size_t k = 0; k < n_keys; k++) {
            int ok;
            if (!keys[k].pkey || memcmp(keys[k].digest, b->key_digest, 32) != 0) continue;
            key_seen = true;
            ok = b->key_type == SBV2_KEY_RSA3072 ? verify_rsa(keys[k].pkey, b, digest)
                                                 : verify_ecdsa(keys[k].pkey, b, digest);
            if (ok) {
                res->block = i;
                res->key = (int)k;
                return 0;
            }
        }
    }
    if (key_seen)
        return sb_fail(err, cap, "signature does not verify: a signature block names one of the "
                                 "given keys but its signature is invalid");
    if (digest_bad && !bkey[0])
        return sb_fail(err, cap, "image digest mismatch: the image was changed after it was "
                                 "signed (the signature block's SHA digest differs); re-sign it");
    return sb_fail(err, cap,
                   "not signed by any of the given keys: the image's signature block is for key "
                   "digest %s..., which is none of the %zu recipe key(s)",
                   bkey, n_keys);
}
