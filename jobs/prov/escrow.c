/* SPDX-License-Identifier: MIT */
/* escrow.c — RSA-OAEP-SHA-256 wrapping of per-unit secrets in a self-describing blob (format
 * in escrow.h, rationale in docs/SECURITY-PROVISIONING.md §"Key escrow and recovery"), on
 * OpenSSL's libcrypto. Must not: log, or keep plaintext after returning. */
#include "escrow.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

static const uint8_t MAGIC[4] = {'E', 'S', 'K', 'W'};

__attribute__((format(printf, 3, 4)))
static int es_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static EVP_PKEY *load_pub(const char *pem, size_t len, char *err, size_t cap)
{
    BIO *bio;
    EVP_PKEY *pk;
    if (len > (size_t)1 << 20) {
        es_fail(err, cap, "escrow public key file larger than 1 MiB");
        return NULL;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pk) es_fail(err, cap, "escrow key is not a PEM public key ('-----BEGIN PUBLIC KEY-----')");
    return pk;
}

static int pkey_id(EVP_PKEY *pk, uint8_t id[32])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pk, &der);
    if (n <= 0) return -1;
    SHA256(der, (size_t)n, id);
    OPENSSL_free(der);
    return 0;
}

static int check_rsa(EVP_PKEY *pk, char *err, size_t cap)
{
    if (!EVP_PKEY_is_a(pk, "RSA"))
        return es_fail(err, cap, "escrow key must be an RSA key (RSA-OAEP-SHA-256)");
    if (EVP_PKEY_get_bits(pk) < ESCROW_MIN_RSA_BITS)
        return es_fail(err, cap, "escrow RSA key has %d bits; at least %d are required",
                       EVP_PKEY_get_bits(pk), ESCROW_MIN_RSA_BITS);
    return 0;
}

static int set_oaep(EVP_PKEY_CTX *ctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
                   EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1
               ? 0
               : -1;
}

int escrow_key_id(const char *pub_pem, size_t pem_len, uint8_t id[32], char *err, size_t cap)
{
    EVP_PKEY *pk = load_pub(pub_pem, pem_len, err, cap);
    int rc;
    if (!pk) return -1;
    rc = pkey_id(pk, id) == 0 ? 0 : es_fail(err, cap, "cannot encode the escrow public key");
    EVP_PKEY_free(pk);
    return rc;
}

static bool label_ok(const char *label, size_t *len)
{
    size_t n = label ? strlen(label) : 0;
    for (size_t i = 0; i < n; i++)
        if (label[i] < 0x20 || label[i] > 0x7E) return false;
    *len = n;
    return n <= ESCROW_MAX_LABEL;
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

int escrow_wrap(const char *pub_pem, size_t pem_len, const char *label, const uint8_t *secret,
                size_t secret_len, uint8_t **blob, size_t *blob_len, char *err, size_t cap)
{
    EVP_PKEY *pk;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *out = NULL;
    size_t lab_len, ct_len = 0, max_secret;
    int rc = -1;
    *blob = NULL;
    *blob_len = 0;
    if (!label_ok(label, &lab_len))
        return es_fail(err, cap, "escrow label must be printable ASCII of at most %u characters",
                       ESCROW_MAX_LABEL);
    if (!(pk = load_pub(pub_pem, pem_len, err, cap))) return -1;
    if (check_rsa(pk, err, cap) != 0) goto out;
    max_secret = (size_t)EVP_PKEY_get_size(pk) - 2 * 32 - 2;
    if (secret_len == 0 || secret_len > max_secret) {
        es_fail(err, cap, "secret of %zu bytes: must be 1..%zu bytes for this escrow key",
                secret_len, max_secret);
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(pk, NULL);
    if (!ctx || EVP_PKEY_encrypt_init(ctx) != 1 || set_oaep(ctx) != 0 ||
        EVP_PKEY_encrypt(ctx, NULL, &ct_len, secret, secret_len) != 1 || ct_len > 0xFFFF) {
        es_fail(err, cap, "OpenSSL RSA-OAEP set-up failed");
        goto out;
    }
    out = calloc(1, ESCROW_HDR_LEN + lab_len + ct_len);
    if (!out) {
        es_fail(err, cap, "out of memory");
        goto out;
    }
    memcpy(out, MAGIC, 4);
    out[4] = ESCROW_VERSION;
    out[5] = ESCROW_ALG_RSA_OAEP_SHA256;
    out[6] = (uint8_t)lab_len;
    if (pkey_id(pk, out + 8) != 0) {
        es_fail(err, cap, "cannot encode the escrow public key");
        goto out;
    }
    put16(out + 40, secret_len);
    memcpy(out + ESCROW_HDR_LEN, label, lab_len);
    if (EVP_PKEY_encrypt(ctx, out + ESCROW_HDR_LEN + lab_len, &ct_len, secret, secret_len) != 1) {
        es_fail(err, cap, "RSA-OAEP encryption failed");
        goto out;
    }
    put16(out + 42, ct_len);
    *blob = out;
    *blob_len = ESCROW_HDR_LEN + lab_len + ct_len;
    out = NULL;
    rc = 0;
out:
    free(out);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

int escrow_parse(const uint8_t *blob, size_t len, escrow_info_t *info, char *err, size_t cap)
{
    size_t lab;
    memset(info, 0, sizeof *info);
    if (len < ESCROW_HDR_LEN || memcmp(blob, MAGIC, 4) != 0)
        return es_fail(err, cap, "not an escrow blob (no 'ESKW' header)");
    if (blob[4] != ESCROW_VERSION)
        return es_fail(err, cap, "escrow blob version %u; this build reads version %u", blob[4],
                       ESCROW_VERSION);
    if (blob[5] != ESCROW_ALG_RSA_OAEP_SHA256)
        return es_fail(err, cap, "escrow blob algorithm %u is unknown", blob[5]);
    lab = blob[6];
    info->version = blob[4];
    info->algorithm = blob[5];
    memcpy(info->key_id, blob + 8, 32);
    info->secret_len = (size_t)blob[40] | (size_t)blob[41] << 8;
    info->ciphertext_len = (size_t)blob[42] | (size_t)blob[43] << 8;
    if (lab > ESCROW_MAX_LABEL || ESCROW_HDR_LEN + lab + info->ciphertext_len != len ||
        info->ciphertext_len == 0 || info->secret_len == 0)
        return es_fail(err, cap, "escrow blob is truncated or its lengths are inconsistent");
    memcpy(info->label, blob + ESCROW_HDR_LEN, lab);
    info->label[lab] = 0;
    info->ciphertext = blob + ESCROW_HDR_LEN + lab;
    return 0;
}

int escrow_unwrap(const char *priv_pem, size_t pem_len, const uint8_t *blob, size_t blob_len,
                  uint8_t *out, size_t out_cap, size_t *out_len, escrow_info_t *info, char *err,
                  size_t cap)
{
    BIO *bio;
    EVP_PKEY *pk;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t id[32], *pt = NULL;
    size_t pt_len = 0;
    int rc = -1;
    *out_len = 0;
    if (escrow_parse(blob, blob_len, info, err, cap) != 0) return -1;
    bio = BIO_new_mem_buf(priv_pem, (int)(pem_len > 0x7FFFFFFF ? 0 : pem_len));
    pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pk) return es_fail(err, cap, "escrow private key is not an unencrypted PEM private key");
    if (check_rsa(pk, err, cap) != 0) goto out;
    if (pkey_id(pk, id) != 0 || memcmp(id, info->key_id, 32) != 0) {
        es_fail(err, cap, "this blob was wrapped for another escrow key (key id differs)");
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(pk, NULL);
    if (!ctx || EVP_PKEY_decrypt_init(ctx) != 1 || set_oaep(ctx) != 0 ||
        EVP_PKEY_decrypt(ctx, NULL, &pt_len, info->ciphertext, info->ciphertext_len) != 1 ||
        !(pt = malloc(pt_len))) {
        es_fail(err, cap, "OpenSSL RSA-OAEP set-up failed");
        goto out;
    }
    if (EVP_PKEY_decrypt(ctx, pt, &pt_len, info->ciphertext, info->ciphertext_len) != 1) {
        es_fail(err, cap, "RSA-OAEP decryption failed: the blob is damaged");
        goto out;
    }
    if (pt_len != info->secret_len || pt_len > out_cap) {
        es_fail(err, cap, "unwrapped %zu bytes, header says %zu (buffer %zu)", pt_len,
                info->secret_len, out_cap);
        goto out;
    }
    memcpy(out, pt, pt_len);
    *out_len = pt_len;
    rc = 0;
out:
    if (pt) {
        OPENSSL_cleanse(pt, pt_len);
        free(pt);
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}
