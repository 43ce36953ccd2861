// SPDX-License-Identifier: MIT
// sim_flashenc: flash encryption of the simulated chips (docs/SIMULATOR.md "eFuses and security"
// gives the algorithm and where each fact comes from).
#include "sim_flashenc.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

void sim_fe_key_from_efuse(const sim_efuse_t *e, sim_fe_key_t *k)
{
    memset(k, 0, sizeof(*k));
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    uint8_t blk[32];
    if (sim_efuse_block_data(e, 0, blk) == 28) {
        // ESP32 (7-word BLOCK0): the key is BLOCK1, byte-reversed (espefuse burn_key); a 3/4
        // coded 192-bit key is extended as espsecure does: key + key[8:16]
        k->scheme = SIM_FE_ESP32_AES256;
        k->crypt_conf = s.flash_crypt_conf;
        int n = sim_efuse_block_data(e, 1, blk);
        reverse(blk, (size_t)n);
        memcpy(k->key, blk, (size_t)n);
        if (n == 24) memcpy(k->key + 24, blk + 8, 8);
        return;
    }
    int k128 = -1, k1 = -1, k2 = -1;
    for (int i = 0; i < 6; i++) {
        if (s.key_purpose[i] == SIM_KP_XTS_AES_128_KEY && k128 < 0) k128 = i;
        if (s.key_purpose[i] == SIM_KP_XTS_AES_256_KEY_1 && k1 < 0) k1 = i;
        if (s.key_purpose[i] == SIM_KP_XTS_AES_256_KEY_2 && k2 < 0) k2 = i;
    }
    if (k1 >= 0 && k2 >= 0) {
        k->scheme = SIM_FE_XTS_256;
        sim_efuse_block_data(e, 4 + k1, blk);
        reverse(blk, 32);
        memcpy(k->key, blk, 32);
        sim_efuse_block_data(e, 4 + k2, blk);
        reverse(blk, 32);
        memcpy(k->key + 32, blk, 32);
        return;
    }
    k->scheme = SIM_FE_XTS_128; // no key burnt: the all-zero key of a blank chip
    if (k128 >= 0) {
        sim_efuse_block_data(e, 4 + k128, blk);
        reverse(blk, 32);
        memcpy(k->key, blk, 32);
    }
}

// XTS over one 128-byte data unit: the unit is byte-reversed, encrypted with the tweak
// (unit address, little-endian, in the first 4 of 16 bytes), reversed back.
static int xts_unit(const sim_fe_key_t *k, uint32_t unit_addr, uint8_t unit[128], int decrypt)
{
    uint8_t tweak[16] = {0};
    tweak[0] = (uint8_t)unit_addr;
    tweak[1] = (uint8_t)(unit_addr >> 8);
    tweak[2] = (uint8_t)(unit_addr >> 16);
    tweak[3] = (uint8_t)(unit_addr >> 24);
    const EVP_CIPHER *c = k->scheme == SIM_FE_XTS_256 ? EVP_aes_256_xts() : EVP_aes_128_xts();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    uint8_t in[128], out[128 + 32];
    memcpy(in, unit, 128);
    reverse(in, 128);
    int n = 0, fin = 0,
        ok = EVP_CipherInit_ex(ctx, c, NULL, k->key, tweak, decrypt ? 0 : 1) == 1 &&
             EVP_CipherUpdate(ctx, out, &n, in, 128) == 1 &&
             EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 && n + fin == 128;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) return -1;
    reverse(out, 128);
    memcpy(unit, out, 128);
    return 0;
}

// ESP32 key tweak: every 32-byte block of flash uses the key XOR a pattern of its address bits
// 5..23, limited to the key bit ranges FLASH_CRYPT_CONFIG selects (espsecure's mul1/mul2
// formulation; key as a 256-bit big-endian number).
static void esp32_block_key(const sim_fe_key_t *k, uint32_t offset, uint8_t out[32])
{
    static const uint8_t mul1[32] = {0x00, 0x00, 0x20, 0x00, 0x04, 0x00, 0x00, 0x80,
                                     0x00, 0x00, 0x04, 0x00, 0x00, 0x80, 0x00, 0x10,
                                     0x00, 0x00, 0x02, 0x00, 0x00, 0x40, 0x00, 0x08,
                                     0x00, 0x00, 0x04, 0x00, 0x00, 0x80, 0x00, 0x10};
    static const uint8_t mul2[32] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t mul2_mask[32] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f,
                                          0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
                                          0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
                                          0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f};
    // FLASH_CRYPT_CONFIG bit i selects key bits (MSB first) [0,67), [67,132), [132,195), [195,256)
    static const int range_start[5] = {0, 67, 132, 195, 256};
    uint8_t range[32] = {0};
    for (int r = 0; r < 4; r++)
        if (k->crypt_conf >> r & 1)
            for (int bit = range_start[r]; bit < range_start[r + 1]; bit++)
                range[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
    // mul1 * addr and mul2 * addr are sums of shifted copies that never overlap (the set bits of
    // mul1/mul2 are >= 19 apart and addr has 19 bits), so they are an OR of one pattern per
    // address bit, computed once
    static uint8_t pat[19][32];
    static int have_pat;
    if (!have_pat) {
        for (int j = 0; j < 19; j++) {
            uint8_t s1[32] = {0}, s2[32] = {0};
            for (int bit = j; bit < 256; bit++) { // bit index from the LSB of the 256-bit number
                int sb = bit - j, byte = 31 - sb / 8, m = 1 << (sb % 8);
                if (mul1[byte] & m) s1[31 - bit / 8] |= (uint8_t)(1 << (bit % 8));
                if (mul2[byte] & m) s2[31 - bit / 8] |= (uint8_t)(1 << (bit % 8));
            }
            for (int i = 0; i < 32; i++)
                pat[j][i] = (uint8_t)(s1[i] | (s2[i] & mul2_mask[i]));
        }
        have_pat = 1;
    }
    uint32_t addr = offset >> 5;
    uint8_t t[32] = {0};
    for (int j = 0; j < 19; j++)
        if (addr >> j & 1)
            for (int i = 0; i < 32; i++)
                t[i] |= pat[j][i];
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(k->key[i] ^ (t[i] & range[i]));
}

static int esp32_crypt(const sim_fe_key_t *k, uint32_t addr, uint8_t *buf, size_t len, int decrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += 16) {
        uint8_t bk[32], in[16], out[32];
        esp32_block_key(k, addr + (uint32_t)off, bk);
        memcpy(in, buf + off, 16);
        reverse(in, 16);
        // the ESP32 hardware runs AES backwards: encrypting flash is AES decryption
        int n = 0;
        if (EVP_CipherInit_ex(ctx, EVP_aes_256_ecb(), NULL, bk, NULL, decrypt ? 1 : 0) != 1 ||
            EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
            EVP_CipherUpdate(ctx, out, &n, in, 16) != 1 || n != 16)
            rc = -1;
        reverse(out, 16);
        memcpy(buf + off, out, 16);
    }
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int sim_fe_crypt(const sim_fe_key_t *k, uint32_t addr, uint8_t *buf, size_t len, int decrypt)
{
    if (addr % 16 || len % 16) return -1;
    if (k->scheme == SIM_FE_ESP32_AES256) return esp32_crypt(k, addr, buf, len, decrypt);
    size_t done = 0;
    while (done < len) {
        uint32_t a = addr + (uint32_t)done, unit = a & ~0x7Fu, in_unit = a - unit;
        size_t n = 128 - in_unit;
        if (n > len - done) n = len - done;
        uint8_t u[128] = {0}; // the other 16-byte blocks of the unit do not influence these
        memcpy(u + in_unit, buf + done, n);
        if (xts_unit(k, unit, u, decrypt) != 0) return -1;
        memcpy(buf + done, u + in_unit, n);
        done += n;
    }
    return 0;
}

void sim_fe_writer_start(sim_fe_writer_t *w, const sim_efuse_t *e, int on)
{
    memset(w, 0, sizeof(*w));
    w->on = on && e;
    if (w->on) sim_fe_key_from_efuse(e, &w->key);
}

uint8_t *sim_fe_writer_feed(sim_fe_writer_t *w, uint32_t *off, const uint8_t *p, uint32_t *n)
{
    if (w->nheld && *off != w->next + w->nheld) w->nheld = 0; // not a continuation: drop
    if (!w->nheld) w->next = *off & ~15u;
    uint32_t lead = w->nheld ? w->nheld : (*off & 15u); // bytes before p in its first unit
    uint64_t total = (uint64_t)lead + *n;
    uint32_t whole = (uint32_t)(total & ~(uint64_t)15);
    uint8_t *buf = malloc(total ? (size_t)total : 1);
    if (!buf) {
        *n = 0;
        return NULL;
    }
    if (w->nheld)
        memcpy(buf, w->held, w->nheld);
    else
        memset(buf, 0xFF, lead); // an unaligned start: the rest of the unit is erased flash
    memcpy(buf + lead, p, *n);
    uint32_t start = w->next;
    w->nheld = (uint32_t)(total - whole);
    memcpy(w->held, buf + whole, w->nheld);
    w->next = start + whole;
    if (whole == 0 || sim_fe_crypt(&w->key, start, buf, whole, 0) != 0) {
        free(buf);
        *n = 0;
        return NULL;
    }
    *off = start;
    *n = whole;
    return buf;
}
