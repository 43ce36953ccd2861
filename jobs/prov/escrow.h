/* SPDX-License-Identifier: MIT */
/* escrow.h — key escrow: a per-unit secret (flash-encryption key, NVS key, ...) is wrapped for
 * the recipe's escrow public key before it is stored anywhere, so the station never keeps it
 * in plain text; only the holder of the escrow private key can unwrap it
 * (docs/SECURITY-PROVISIONING.md §"Key escrow and recovery": format, algorithm and why).
 * Algorithm: RSA-OAEP with SHA-256 and MGF1-SHA-256, empty OAEP label, RSA key >= 3072 bits.
 * Blob v1 (integers little-endian):
 *   0  "ESKW"            magic
 *   4  u8  version = 1
 *   5  u8  algorithm = 1 (RSA-OAEP-SHA-256)
 *   6  u8  label length L (0..64)
 *   7  u8  0
 *   8  32  key id = SHA-256 of the escrow public key (DER SubjectPublicKeyInfo)
 *   40 u16 secret length
 *   42 u16 ciphertext length C (= RSA modulus bytes)
 *   44 L   label (printable ASCII: what the secret is, e.g. "flash_encryption_key")
 *   44+L C ciphertext
 * Must not: log, or leave a plain secret in memory it allocated. */
#ifndef ESCROW_H
#define ESCROW_H

#include <stddef.h>
#include <stdint.h>

#define ESCROW_VERSION 1
#define ESCROW_ALG_RSA_OAEP_SHA256 1
#define ESCROW_HDR_LEN 44u
#define ESCROW_MAX_LABEL 64u
#define ESCROW_MIN_RSA_BITS 3072

typedef struct escrow_info_s {
    uint8_t version, algorithm;
    uint8_t key_id[32];
    char label[ESCROW_MAX_LABEL + 1];
    size_t secret_len;
    const uint8_t *ciphertext; /* into the blob */
    size_t ciphertext_len;
} escrow_info_t;

/* Key id of a PEM public key (SHA-256 of its DER SubjectPublicKeyInfo, = `openssl pkey -pubin
 * -outform DER | sha256sum`). Returns 0 or -1 with err. */
int escrow_key_id(const char *pub_pem, size_t pem_len, uint8_t id[32], char *err, size_t cap);

/* Wrap `secret` for the escrow public key. On success *blob (malloc'd, free with free()) holds
 * the blob. Returns 0, or -1 (not an RSA public key, key under 3072 bits, secret too long or
 * empty, bad label) with err. */
int escrow_wrap(const char *pub_pem, size_t pem_len, const char *label, const uint8_t *secret,
                size_t secret_len, uint8_t **blob, size_t *blob_len, char *err, size_t cap);

/* Parse a blob's header (no key needed). Returns 0 or -1 with err. */
int escrow_parse(const uint8_t *blob, size_t len, escrow_info_t *info, char *err, size_t cap);

/* Unwrap with the escrow private key (PEM): the key id must match the blob's, the plaintext
 * length must match the header. Writes the secret to `out` (cap bytes). Returns 0 or -1. */
int escrow_unwrap(const char *priv_pem, size_t pem_len, const uint8_t *blob, size_t blob_len,
                  uint8_t *out, size_t out_cap, size_t *out_len, escrow_info_t *info, char *err,
                  size_t cap);

#endif
