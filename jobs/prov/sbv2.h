/* SPDX-License-Identifier: MIT */
/* sbv2.h — Secure Boot v2 on the host (docs/SECURITY-PROVISIONING.md §"Secure Boot v2"):
 * the public-key digest that is burnt into a key block (purpose SECURE_BOOT_DIGESTn), the
 * signature sector appended to a signed image (up to three 1216-byte signature blocks at the
 * start of the image's last 4 KiB sector: magic 0xE7, version 2 = RSA-3072-PSS, 3 = ECDSA, image
 * digest, key material, signature, CRC32), and the check that an image carries a valid
 * signature for one of the recipe's public keys, done with OpenSSL before any eFuse is burnt.
 * Must not: do I/O or log; sbv2_parse_* never allocate and accept any bytes (fuzzed). */
#ifndef SBV2_H
#define SBV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBV2_SECTOR 4096u
#define SBV2_BLOCK_LEN 1216u
#define SBV2_BLOCK_CRC_LEN 1196u /* bytes covered by the CRC32 */
#define SBV2_MAX_BLOCKS 3
#define SBV2_MAX_KEYS 3
#define SBV2_MAGIC 0xE7
#define SBV2_VERSION_RSA 0x02
#define SBV2_VERSION_ECDSA 0x03

typedef enum {
    SBV2_KEY_NONE = 0,
    SBV2_KEY_RSA3072,
    SBV2_KEY_ECDSA_P192,
    SBV2_KEY_ECDSA_P256,
    SBV2_KEY_ECDSA_P384,
} sbv2_key_type_t;

const char *sbv2_key_type_name(sbv2_key_type_t t); /* "RSA-3072", "ECDSA-P256", ... */

/* One parsed signature block. Pointers point into the caller's buffer. */
typedef struct sbv2_block_s {
    unsigned index;            /* 0..2 */
    uint8_t version;           /* SBV2_VERSION_RSA / _ECDSA */
    sbv2_key_type_t key_type;
    size_t digest_len;         /* 32 (SHA-256) or 48 (SHA-384, P-384) */
    const uint8_t *image_digest;
    const uint8_t *key_material; /* what the key digest is computed over */
    size_t key_material_len;
    uint8_t key_digest[32];    /* SHA-256 of key_material: must equal a burnt digest */
    const uint8_t *signature;  /* RSA: 384 bytes little-endian; ECDSA: r||s little-endian */
    size_t signature_len;
    const uint8_t *pubkey;     /* RSA: n (384 LE) then e; ECDSA: x||y little-endian */
    size_t pubkey_len;
    uint32_t crc;
} sbv2_block_t;

/* Parse one 1216-byte block. Returns 0, or -1 with the reason (bad magic, unknown version or
 * curve, CRC mismatch) in err. */
int sbv2_parse_block(const uint8_t *blk, size_t len, unsigned index, sbv2_block_t *out, char *err,
                     size_t err_cap);

/* Parse the signature sector of a signed image: `img` must be a non-empty multiple of 4 KiB;
 * the blocks are read from the start of the last sector until the first invalid one, as the ROM
 * does. Returns the number of valid blocks (1..3), 0 when there is none ("no signature block":
 * unsigned image), or -1 when the image cannot hold a signature sector (err says why). */
int sbv2_parse_image(const uint8_t *img, size_t len, sbv2_block_t blocks[SBV2_MAX_BLOCKS],
                     char *err, size_t err_cap);

/* A Secure Boot v2 public key (RSA-3072, ECDSA P-192/P-256/P-384) with its eFuse digest. */
typedef struct sbv2_pubkey_s {
    void *pkey; /* EVP_PKEY * */
    sbv2_key_type_t type;
    uint8_t digest[32]; /* = espsecure digest-sbv2-public-key */
} sbv2_pubkey_t;

/* Load a PEM public key (or the public half of a PEM private key). Returns 0, or -1 (not PEM,
 * RSA not 3072 bits, unsupported curve) with the reason in err. Free with sbv2_pubkey_free. */
int sbv2_pubkey_load_pem(const char *pem, size_t len, sbv2_pubkey_t *out, char *err,
                         size_t err_cap);
void sbv2_pubkey_free(sbv2_pubkey_t *k);

typedef struct sbv2_verify_result_s {
    int n_blocks;          /* valid signature blocks found */
    int block;             /* block that verified, -1 if none */
    int key;               /* index into keys[] that verified it, -1 if none */
} sbv2_verify_result_t;

/* Verify that `img` (a signed image as it will be written) carries a signature block that
 * (a) covers this image (SHA-256/384 of everything before the signature sector),
 * (b) names one of `keys` (block key digest == key digest) and
 * (c) whose signature verifies with that key.
 * Returns 0 when one block passes all three; -1 otherwise with the reason in err: "no signature
 * block", "image digest mismatch" (image changed after signing), or "not signed by any of the
 * given keys". */
int sbv2_verify_image(const uint8_t *img, size_t len, const sbv2_pubkey_t *keys, size_t n_keys,
                      sbv2_verify_result_t *res, char *err, size_t err_cap);

#endif
