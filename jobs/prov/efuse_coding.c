/* SPDX-License-Identifier: MIT */
/* efuse_coding.c — Reed-Solomon (44,32) and the ESP32 3/4 coding of eFuse blocks
 * (docs/SECURITY-PROVISIONING.md §"eFuse coding"). Table-free GF(2^8) arithmetic: a block is
 * 32 bytes, speed does not matter. Must not: do I/O or keep state. */
#include "efuse_coding.h"

#include <string.h>

#define GF_PRIM 0x11D

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    unsigned r = 0, x = a;
    while (b) {
        if (b & 1) r ^= x;
        x <<= 1;
        if (x & 0x100) x ^= GF_PRIM;
        b >>= 1;
    }
    return (uint8_t)r;
}

/* Generator polynomial g(x) = prod_{i=0}^{11} (x - alpha^i), alpha = 2; g[0] is the x^12
 * coefficient (= 1), g[12] the constant term. */
static void rs_generator(uint8_t g[EFUSE_RS_CHECK_LEN + 1])
{
    uint8_t root = 1;
    memset(g, 0, EFUSE_RS_CHECK_LEN + 1);
    g[0] = 1;
    for (unsigned i = 0; i < EFUSE_RS_CHECK_LEN; i++) {
        /* multiply by (x + root): degree grows by one */
        for (unsigned j = i + 1; j > 0; j--)
            g[j] ^= gf_mul(g[j - 1], root);
        root = gf_mul(root, 2);
    }
}

void efuse_rs_check_bytes(const uint8_t data[EFUSE_RS_DATA_LEN], uint8_t check[EFUSE_RS_CHECK_LEN])
{
    uint8_t g[EFUSE_RS_CHECK_LEN + 1];
    uint8_t rem[EFUSE_RS_CHECK_LEN];
    rs_generator(g);
    memset(rem, 0, sizeof rem);
    /* systematic encoding: remainder of data(x) * x^12 divided by g(x); data[0] is the
     * highest-degree coefficient */
    for (unsigned i = 0; i < EFUSE_RS_DATA_LEN; i++) {
        uint8_t coef = data[i] ^ rem[0];
        memmove(rem, rem + 1, EFUSE_RS_CHECK_LEN - 1);
        rem[EFUSE_RS_CHECK_LEN - 1] = 0;
        if (coef)
            for (unsigned j = 0; j < EFUSE_RS_CHECK_LEN; j++)
                rem[j] ^= gf_mul(g[j + 1], coef);
    }
    memcpy(check, rem, EFUSE_RS_CHECK_LEN);
}

void efuse_words_to_bytes(const uint32_t *words, size_t n_words, uint8_t *bytes)
{
    for (size_t i = 0; i < n_words; i++)
        for (unsigned b = 0; b < 4; b++)
            bytes[i * 4 + b] = (uint8_t)(words[i] >> (8 * b));
}

void efuse_bytes_to_words(const uint8_t *bytes, size_t n_bytes, uint32_t *words)
{
    for (size_t i = 0; i < n_bytes / 4; i++)
        words[i] = (uint32_t)bytes[i * 4] | (uint32_t)bytes[i * 4 + 1] << 8 |
                   (uint32_t)bytes[i * 4 + 2] << 16 | (uint32_t)bytes[i * 4 + 3] << 24;
}

void efuse_rs_encode(const uint8_t data[EFUSE_RS_DATA_LEN], uint32_t words[EFUSE_RS_WORDS])
{
    uint8_t all[EFUSE_RS_DATA_LEN + EFUSE_RS_CHECK_LEN];
    memcpy(all, data, EFUSE_RS_DATA_LEN);
    efuse_rs_check_bytes(data, all + EFUSE_RS_DATA_LEN);
    efuse_bytes_to_words(all, sizeof all, words);
}

bool efuse_rs_ok(const uint32_t words[EFUSE_RS_WORDS])
{
    uint8_t all[EFUSE_RS_DATA_LEN + EFUSE_RS_CHECK_LEN], check[EFUSE_RS_CHECK_LEN];
    efuse_words_to_bytes(words, EFUSE_RS_WORDS, all);
    efuse_rs_check_bytes(all, check);
    return memcmp(check, all + EFUSE_RS_DATA_LEN, EFUSE_RS_CHECK_LEN) == 0;
}

static unsigned popcount8(uint8_t b)
{
    unsigned n = 0;
    for (; b; b &= (uint8_t)(b - 1))
        n++;
    return n;
}

/* The two check bytes of one 6-byte group. The weighted sum is at most 8 * 21 = 168. */
static void c34_group(const uint8_t g[6], uint8_t *xor_out, uint8_t *sum_out)
{
    uint8_t x = 0;
    unsigned s = 0;
    for (unsigned i = 0; i < 6; i++) {
        x ^= g[i];
        s += (i + 1) * popcount8(g[i]);
    }
    *xor_out = x;
    *sum_out = (uint8_t)s;
}

void efuse_34_encode(const uint8_t data[EFUSE_34_DATA_LEN], uint32_t words[EFUSE_34_WORDS])
{
    uint8_t out[EFUSE_34_WORDS * 4];
    for (unsigned grp = 0; grp < 4; grp++) {
        memcpy(out + grp * 8, data + grp * 6, 6);
        c34_group(data + grp * 6, &out[grp * 8 + 6], &out[grp * 8 + 7]);
    }
    efuse_bytes_to_words(out, sizeof out, words);
}

void efuse_34_decode(const uint32_t words[EFUSE_34_WORDS], uint8_t data[EFUSE_34_DATA_LEN])
{
    uint8_t in[EFUSE_34_WORDS * 4];
    efuse_words_to_bytes(words, EFUSE_34_WORDS, in);
    for (unsigned grp = 0; grp < 4; grp++)
        memcpy(data + grp * 6, in + grp * 8, 6);
}

bool efuse_34_ok(const uint32_t words[EFUSE_34_WORDS])
{
    uint8_t in[EFUSE_34_WORDS * 4];
    efuse_words_to_bytes(words, EFUSE_34_WORDS, in);
    for (unsigned grp = 0; grp < 4; grp++) {
        uint8_t x, s;
        c34_group(in + grp * 8, &x, &s);
        if (x != in[grp * 8 + 6] || s != in[grp * 8 + 7]) return false;
    }
    return true;
}
