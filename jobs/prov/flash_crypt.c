/* SPDX-License-Identifier: MIT */
/* flash_crypt.c — XTS-AES and ESP32 AES-256 flash encryption on the host with OpenSSL's
 * libcrypto (docs/SECURITY-PROVISIONING.md §"Flash encryption"). Key material lives only in
 * caller buffers and OpenSSL contexts, which are freed (and so cleansed) before returning.
 * Must not: do I/O or log. */
#include "flash_crypt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define XTS_UNIT 128u

__attribute__((format(printf, 3, 4)))
static int fc_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

/* One 128-byte data unit at flash address `unit_addr` (multiple of 128). */
static int xts_unit(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c, const uint8_t *key, uint32_t unit_addr,
                    uint8_t buf[XTS_UNIT], bool decrypt)
{
    uint8_t tweak[16] = {0}, tmp[XTS_UNIT];
    int outl = 0;
    for (unsigned i = 0; i < 4; i++)
        tweak[i] = (uint8_t)(unit_addr >> (8 * i));
    reverse(buf, XTS_UNIT);
    if (EVP_CipherInit_ex(ctx, c, NULL, key, tweak, decrypt ? 0 : 1) != 1 ||
        EVP_CipherUpdate(ctx, tmp, &outl, buf, XTS_UNIT) != 1 || outl != (int)XTS_UNIT)
        return -1;
    reverse(tmp, XTS_UNIT);
    memcpy(buf, tmp, XTS_UNIT);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return 0;
}

int flash_crypt_xts(const uint8_t *key, size_t key_len, uint32_t addr, const uint8_t *in,
                    uint8_t *out, size_t len, bool decrypt, char *err, size_t err_cap)
{
    const EVP_CIPHER *c;
    EVP_CIPHER_CTX *ctx;
    uint8_t unit[XTS_UNIT];
    uint64_t pos = addr, end = (uint64_t)addr + len;
    int rc = 0;

    if (key_len == 32) c = EVP_aes_128_xts();
    else if (key_len == 64) c = EVP_aes_256_xts();
    else
        return fc_fail(err, err_cap,
                       "XTS-AES key must be 32 bytes (XTS-AES-128) or 64 bytes (XTS-AES-256), "
                       "got %zu", key_len);
    if (addr % 16 || len % 16 || len == 0)
        return fc_fail(err, err_cap,
                       "flash address 0x%x and length %zu must be non-zero multiples of 16", addr,
                       len);
    if (end > 0x100000000ull)
        return fc_fail(err, err_cap, "data at 0x%x + %zu runs past the 4 GiB address space",
                       addr, len);
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return fc_fail(err, err_cap, "out of memory (cipher context)");
    /* Units are aligned to 128 bytes of flash; a partial first or last unit is padded with
     * zeros that are dropped again (espsecure does the same). */
    while (pos < end && rc == 0) {
        uint64_t unit_addr = pos & ~(uint64_t)(XTS_UNIT - 1);
        size_t off = (size_t)(pos - unit_addr);
        size_t n = XTS_UNIT - off;
        if (n > end - pos) n = (size_t)(end - pos);
        memset(unit, 0, sizeof unit);
        memcpy(unit + off, in + (pos - addr), n);
        if (xts_unit(ctx, c, key, (uint32_t)unit_addr, unit, decrypt) != 0)
            rc = fc_fail(err, err_cap, "OpenSSL XTS-AES failed (a key whose two halves are equal "
                                       "is refused)");
        else
            memcpy(out + (pos - addr), unit + off, n);
        pos += n;
    }
    OPENSSL_cleanse(unit, sizeof unit);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

/* ---- ESP32 (original) AES-256 with the address tweak ---- */

/* 256-bit big-endian numbers as 8 32-bit limbs, limb 0 least significant. */
typedef struct {
    uint32_t l[8];
} u256_t;

static u256_t u256_from_hex(const char *hex) /* 64 hex digits */
{
    u256_t r;
    for (unsigned i = 0; i < 8; i++) {
        uint32_t v = 0;
        for (unsigned k = 0; k < 8; k++) {
            char ch = hex[i * 8 + k];
            v = v << 4 | (uint32_t)(ch <= '9' ? ch - '0' : ch - 'A' + 10);
        }
        r.l[7 - i] = v;
    }
    return r;
}

static u256_t u256_mul32(u256_t a, uint32_t m) /* modulo 2^256 */
{
    u256_t r;
    uint64_t carry = 0;
    for (unsigned i = 0; i < 8; i++) {
        uint64_t t = (uint64_t)a.l[i] * m + carry;
        r.l[i] = (uint32_t)t;
        carry = t >> 32;
    }
    return r;
}

/* The tweak constants: which key bits flip with which bits of (address >> 5), and the four
 * FLASH_CRYPT_CONFIG ranges; values as in espsecure's key-tweak formula
 * (docs/SECURITY-PROVISIONING.md cites the source). */
static const char MUL1[] = "0000200004000080000004000080001000000200004000080000040000800010";
static const char MUL2[] = "0000000000000000200000000000000010000000000000002000000000000001";
static const char MUL2_MASK[] = "000000000000007FE00000000000000FF000000000000007E00000000000000F";
static const char RANGE[4][65] = {
    "FFFFFFFFFFFFFFFFE00000000000000000000000000000000000000000000000",
    "00000000000000001FFFFFFFFFFFFFFFF0000000000000000000000000000000",
    "000000000000000000000000000000000FFFFFFFFFFFFFFFE000000000000000",
    "0000000000000000000000000000000000000000000000001FFFFFFFFFFFFFFF",
};

void flash_crypt_esp32_block_key(const uint8_t key[32], uint32_t addr, unsigned crypt_conf,
                                 uint8_t out[32])
{
    uint32_t a = addr >> 5;
    u256_t m1 = u256_mul32(u256_from_hex(MUL1), a), m2 = u256_mul32(u256_from_hex(MUL2), a);
    u256_t mask = u256_from_hex(MUL2_MASK), range = {{0}};
    for (unsigned b = 0; b < 4; b++)
        if (crypt_conf & (1u << b)) {
            u256_t r = u256_from_hex(RANGE[b]);
            for (unsigned i = 0; i < 8; i++)
                range.l[i] |= r.l[i];
        }
    for (unsigned i = 0; i < 8; i++) {
        uint32_t tw = (m1.l[i] | (m2.l[i] & mask.l[i])) & range.l[i];
        /* limb i covers key bytes 28-4i .. 31-4i (big-endian key) */
        for (unsigned b = 0; b < 4; b++)
            out[31 - 4 * i - b] = key[31 - 4 * i - b] ^ (uint8_t)(tw >> (8 * b));
    }
}

int flash_crypt_esp32(const uint8_t *key, size_t key_len, uint32_t addr, unsigned crypt_conf,
                      const uint8_t *in, uint8_t *out, size_t len, bool decrypt, char *err,
                      size_t err_cap)
{
    uint8_t k[32], bk[32], blk[16], res[16];
    EVP_CIPHER_CTX *ctx;
    int rc = 0, outl;

    if (key_len == 24) { /* 3/4 coding: the hardware repeats key bytes 8..15 */
        memcpy(k, key, 24);
        memcpy(k + 24, key + 8, 8);
    } else if (key_len == 32) {
        memcpy(k, key, 32);
    } else {
        return fc_fail(err, err_cap, "ESP32 flash encryption key must be 32 bytes (or 24 with "
                                     "the 3/4 coding scheme), got %zu", key_len);
    }
    if (crypt_conf > 15) {
        OPENSSL_cleanse(k, sizeof k);
        return fc_fail(err, err_cap, "FLASH_CRYPT_CONFIG is 4 bits (0..15), got %u", crypt_conf);
    }
    if (addr % 16 || len % 16 || len == 0 || (uint64_t)addr + len > 0x100000000ull) {
        OPENSSL_cleanse(k, sizeof k);
        return fc_fail(err, err_cap,
                       "flash address 0x%x and length %zu must be non-zero multiples of 16", addr,
                       len);
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) {
        OPENSSL_cleanse(k, sizeof k);
        return fc_fail(err, err_cap, "out of memory (cipher context)");
    }
    for (size_t off = 0; off < len && rc == 0; off += 16) {
        uint32_t a = addr + (uint32_t)off;
        if (off == 0 || a % 32 == 0) {
            flash_crypt_esp32_block_key(k, a, crypt_conf, bk);
            /* inverted direction: flash encryption = AES decryption */
            if (EVP_CipherInit_ex(ctx, EVP_aes_256_ecb(), NULL, bk, NULL, decrypt ? 1 : 0) != 1 ||
                EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
                rc = fc_fail(err, err_cap, "OpenSSL AES-256 set-up failed");
                break;
            }
        }
        for (unsigned i = 0; i < 16; i++)
            blk[i] = in[off + 15 - i];
        if (EVP_CipherUpdate(ctx, res, &outl, blk, 16) != 1 || outl != 16) {
            rc = fc_fail(err, err_cap, "OpenSSL AES-256 failed");
            break;
        }
        for (unsigned i = 0; i < 16; i++)
            out[off + i] = res[15 - i];
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(bk, sizeof bk);
    OPENSSL_cleanse(blk, sizeof blk);
    OPENSSL_cleanse(res, sizeof res);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int flash_crypt_generate_key(uint8_t *key, size_t len, char *err, size_t err_cap)
{
    if (len != 32 && len != 64)
        return fc_fail(err, err_cap, "a flash-encryption key is 32 or 64 bytes, not %zu", len);
    for (unsigned tries = 0; tries < 4; tries++) {
        if (RAND_priv_bytes(key, (int)len) != 1) break;
        if (CRYPTO_memcmp(key, key + len / 2, len / 2) != 0) return 0;
    }
    OPENSSL_cleanse(key, len);
    return fc_fail(err, err_cap, "the random number generator failed; no key was made");
}
