/* SPDX-License-Identifier: MIT */
/* fuzz_sbv2.c — fuzz target for the Secure Boot v2 signature-sector parser and verifier
 * (jobs/prov/sbv2.c, docs/SECURITY-PROVISIONING.md §"Secure Boot v2"). Input: an image as it
 * would be written. It is checked as given, padded with 0xFF to whole 4 KiB sectors, and with
 * the CRC32 of every block in the last sector recomputed (so that mutations reach the code
 * behind the CRC check). Invariants: 0..3 blocks; every parsed block has magic 0xE7, a known
 * version, a digest of 32/48 bytes and key/signature fields inside the block; the key digest is
 * the SHA-256 of the key material; verification against the reference keys succeeds only with
 * a block that names that key and covers the image. Must not: keep state between inputs
 * (the keys are loaded once and never change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "fuzz.h"
#include "sbv2.h"

#define KEY_DIR ESTN_SOURCE_DIR "/tests/data/vectors/security/"

static sbv2_pubkey_t g_keys[2];
static size_t g_n_keys;

static void load_keys(void)
{
    static const char *const names[] = {"sbv2_rsa3072_pub.pem", "sbv2_ecdsa256_pub.pem"};
    static int done;
    if (done) return;
    done = 1;
    for (unsigned i = 0; i < 2; i++) {
        char path[512], pem[4096];
        FILE *f;
        size_t n;
        snprintf(path, sizeof path, KEY_DIR "%s", names[i]);
        f = fopen(path, "rb");
        if (!f) continue;
        n = fread(pem, 1, sizeof pem, f);
        fclose(f);
        if (sbv2_pubkey_load_pem(pem, n, &g_keys[g_n_keys], NULL, 0) == 0) g_n_keys++;
    }
}

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

static void check_blocks(const uint8_t *img, size_t len, const sbv2_block_t *b, int n)
{
    const uint8_t *sector = img + len - SBV2_SECTOR;
    FUZZ_CHECK(n >= 0 && n <= SBV2_MAX_BLOCKS);
    for (int i = 0; i < n; i++) {
        const uint8_t *blk = sector + (size_t)i * SBV2_BLOCK_LEN, *end = blk + SBV2_BLOCK_LEN;
        uint8_t d[32];
        FUZZ_CHECK(b[i].index == (unsigned)i);
        FUZZ_CHECK(blk[0] == SBV2_MAGIC && b[i].version == blk[1]);
        FUZZ_CHECK(b[i].version == SBV2_VERSION_RSA || b[i].version == SBV2_VERSION_ECDSA);
        FUZZ_CHECK(b[i].digest_len == 32 || b[i].digest_len == 48);
        FUZZ_CHECK(b[i].key_type != SBV2_KEY_NONE);
        FUZZ_CHECK(b[i].image_digest == blk + 4);
        FUZZ_CHECK(b[i].key_material >= blk && b[i].key_material + b[i].key_material_len <= end);
        FUZZ_CHECK(b[i].signature >= blk && b[i].signature + b[i].signature_len <= end);
        FUZZ_CHECK(b[i].pubkey >= blk && b[i].pubkey + b[i].pubkey_len <= end);
        SHA256(b[i].key_material, b[i].key_material_len, d);
        FUZZ_CHECK(memcmp(d, b[i].key_digest, 32) == 0);
    }
}

static void run(const uint8_t *img, size_t len)
{
    sbv2_block_t b[SBV2_MAX_BLOCKS];
    sbv2_verify_result_t r;
    char err[256];
    int n;
    err[0] = 0;
    n = sbv2_parse_image(img, len, b, err, sizeof err);
    if (len < SBV2_SECTOR || len % SBV2_SECTOR) {
        FUZZ_CHECK(n == 0 && strstr(err, "no signature block"));
        return;
    }
    check_blocks(img, len, b, n);
    if (n == 0) FUZZ_CHECK(strstr(err, "no signature block") != NULL);
    for (size_t k = 0; k < g_n_keys; k++) {
        int rc = sbv2_verify_image(img, len, &g_keys[k], 1, &r, err, sizeof err);
        FUZZ_CHECK(rc == 0 || rc == -1);
        FUZZ_CHECK(r.n_blocks == n);
        if (rc == 0) { /* the passing block names the key and covers the image */
            uint8_t d[48];
            FUZZ_CHECK(r.block >= 0 && r.block < n && r.key == 0);
            FUZZ_CHECK(memcmp(b[r.block].key_digest, g_keys[k].digest, 32) == 0);
            if (b[r.block].digest_len == 32) SHA256(img, len - SBV2_SECTOR, d);
            else SHA384(img, len - SBV2_SECTOR, d);
            FUZZ_CHECK(memcmp(d, b[r.block].image_digest, b[r.block].digest_len) == 0);
        } else {
            FUZZ_CHECK(r.block == -1 && err[0]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t padded = (size + SBV2_SECTOR - 1) / SBV2_SECTOR * SBV2_SECTOR;
    uint8_t *work;
    sbv2_block_t one;
    load_keys();
    if (size >= SBV2_BLOCK_LEN) { /* the block parser on its own, at the start of the input */
        if (sbv2_parse_block(data, size, 0, &one, NULL, 0) == 0)
            FUZZ_CHECK(data[0] == SBV2_MAGIC);
    }
    run(data, size);
    if (padded == 0 || padded > (8u << 20)) return 0;
    work = malloc(padded);
    FUZZ_CHECK(work != NULL);
    memset(work, 0xFF, padded);
    memcpy(work, data, size);
    run(work, padded);
    for (unsigned i = 0; i < SBV2_MAX_BLOCKS; i++) { /* fix up the CRCs */
        uint8_t *blk = work + padded - SBV2_SECTOR + (size_t)i * SBV2_BLOCK_LEN;
        uint32_t c = crc32_ieee(blk, SBV2_BLOCK_CRC_LEN);
        for (unsigned k = 0; k < 4; k++)
            blk[SBV2_BLOCK_CRC_LEN + k] = (uint8_t)(c >> (8 * k));
    }
    run(work, padded);
    free(work);
    return 0;
}
