// SPDX-License-Identifier: MIT
// Self-test of espsim's eFuse controller and flash encryption models (sim_efuse.c,
// sim_flashenc.c) against the Espressif reference vectors in tests/data/vectors/security:
// Reed-Solomon and 3/4 coding (efuse_coding.json), XTS-AES-128/256 and the ESP32 AES-256
// ciphertexts. The keys get into the chip the way espefuse burns them (byte-reversed, through
// the program registers), so the whole path register -> eFuse -> key -> ciphertext is checked.
// Usage: test_sim_security VECTOR_DIR
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_chip.h"
#include "sim_efuse.h"
#include "sim_event.h"
#include "sim_flashenc.h"

static int failures;
static const char *vdir;

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", vdir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) exit(2);
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

static void hex_to_bytes(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static uint32_t zero_word(void *ctx, uint32_t addr)
{
    (void)ctx;
    (void)addr;
    return 0;
}

// espefuse's program sequence on S2 and later: data + check words, CONF write opcode, PGM_CMD
// with the block number, then CONF read opcode and READ_CMD.
static void burn_new(sim_efuse_t *e, uint32_t base, int block, const uint32_t *w, int nw)
{
    uint8_t data[32] = {0}, ck[12];
    for (int i = 0; i < nw; i++) {
        sim_efuse_write(e, base + 4u * (uint32_t)i, w[i]);
        for (int k = 0; k < 4; k++)
            data[4 * i + k] = (uint8_t)(w[i] >> (8 * k));
    }
    if (block > 0) {
        sim_efuse_rs_encode(data, ck);
        for (int i = 0; i < 3; i++)
            sim_efuse_write(e, base + 0x20u + 4u * (uint32_t)i,
                            (uint32_t)ck[4 * i] | (uint32_t)ck[4 * i + 1] << 8 |
                                (uint32_t)ck[4 * i + 2] << 16 | (uint32_t)ck[4 * i + 3] << 24);
    }
    sim_efuse_write(e, base + 0x1CC, 0x5A5A);
    sim_efuse_write(e, base + 0x1D4, 0x2u | (uint32_t)block << 2);
    sim_efuse_write(e, base + 0x1CC, 0x5AA5);
    sim_efuse_write(e, base + 0x1D4, 0x1);
}

static void key_words(const uint8_t *key32, uint32_t w[8])
{
    uint8_t r[32];
    for (int i = 0; i < 32; i++) // espefuse burn_key reverses XTS keys
        r[i] = key32[31 - i];
    for (int i = 0; i < 8; i++)
        w[i] = (uint32_t)r[4 * i] | (uint32_t)r[4 * i + 1] << 8 | (uint32_t)r[4 * i + 2] << 16 |
               (uint32_t)r[4 * i + 3] << 24;
}

static void test_rs_vectors(void)
{
    size_t n;
    char *text = (char *)slurp("efuse_coding.json", &n);
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL, "efuse_coding.json parses");
    const cJSON *v;
    int count = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "rs_44_32"))
    {
        uint8_t data[32], ck[12];
        hex_to_bytes(cJSON_GetObjectItem(v, "data")->valuestring, data, 32);
        sim_efuse_rs_encode(data, ck);
        const cJSON *words = cJSON_GetObjectItem(v, "words");
        for (int i = 0; i < 3; i++) {
            uint32_t want =
                (uint32_t)strtoul(cJSON_GetArrayItem(words, 8 + i)->valuestring, NULL, 16);
            uint32_t got = (uint32_t)ck[4 * i] | (uint32_t)ck[4 * i + 1] << 8 |
                           (uint32_t)ck[4 * i + 2] << 16 | (uint32_t)ck[4 * i + 3] << 24;
            CHECK(got == want, "rs vector %d check word %d: 0x%08x, want 0x%08x", count, i, got,
                  want);
        }
        count++;
    }
    CHECK(count >= 4, "rs vectors present");
    // ESP32 3/4: the encoded words burnt with CODING_SCHEME = 1 read back as the data, no error
    count = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "esp32_34"))
    {
        sim_efuse_t *e = sim_efuse_new(sim_chip_find("esp32"));
        sim_efuse_factory(e, zero_word, NULL);
        sim_efuse_write(e, 0x3FF5A01C + 6 * 4, 1); // BLK0 word 6: CODING_SCHEME = 1
        const cJSON *words = cJSON_GetObjectItem(v, "words");
        for (int i = 0; i < 8; i++)
            sim_efuse_write(e, 0x3FF5A0D8 + 4u * (uint32_t)i, // BLOCK3 write registers
                            (uint32_t)strtoul(cJSON_GetArrayItem(words, i)->valuestring, NULL, 16));
        sim_efuse_write(e, 0x3FF5A0FC, 0x5A5A);
        sim_efuse_write(e, 0x3FF5A104, 2);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5AA5);
        sim_efuse_write(e, 0x3FF5A104, 1);
        uint8_t data[24];
        hex_to_bytes(cJSON_GetObjectItem(v, "data")->valuestring, data, 24);
        for (int i = 0; i < 6; i++) {
            uint32_t want = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                            (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
            CHECK(sim_efuse_read(e, 0x3FF5A078 + 4u * (uint32_t)i) == want, "3/4 vector %d word %d",
                  count, i);
        }
        CHECK(sim_efuse_read(e, 0x3FF5A11C) == 0, "3/4 vector %d: DEC_STATUS clean", count);
        // a second burn that changes the data without new check bytes fails the check on read
        uint32_t w0 = sim_efuse_read(e, 0x3FF5A078), bit = 1;
        while (bit && (w0 & bit))
            bit <<= 1; // a data bit of group 0 that is still 0
        sim_efuse_write(e, 0x3FF5A0D8, bit);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5A5A);
        sim_efuse_write(e, 0x3FF5A104, 2);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5AA5);
        sim_efuse_write(e, 0x3FF5A104, 1);
        CHECK((sim_efuse_read(e, 0x3FF5A11C) & 0xF00) != 0, "3/4 vector %d: re-burn flagged",
              count);
        sim_efuse_free(e);
        count++;
    }
    CHECK(count >= 2, "3/4 vectors present");
    cJSON_Delete(root);
    free(text);
}

static void test_controller(void)
{
    sim_efuse_t *e = sim_efuse_new(sim_chip_find("esp32c3"));
    const uint32_t B = 0x60008800;
    sim_efuse_factory(e, zero_word, NULL);
    uint32_t w[8] = {0x11111111, 0x22222222, 0, 0, 0, 0, 0, 0x80000001};
    burn_new(e, B, 3, w, 8); // BLOCK_USR_DATA
    CHECK(sim_efuse_read(e, B + 0x7C) == 0x11111111 && sim_efuse_read(e, B + 0x98) == 0x80000001,
          "user block reads back");
    CHECK(sim_efuse_read(e, B + 0x1D4) == 0, "CMD clears when done");
    CHECK(sim_efuse_read(e, B + 0x00) == 0, "program registers cleared after the burn");
    CHECK(sim_efuse_read(e, B + 0x1C0) == 0, "consistent RS block: no error bits");
    // write-once: a second burn only ORs, and its check bytes no longer fit -> error bits
    uint32_t w2[8] = {0x00000004, 0, 0, 0, 0, 0, 0, 0};
    burn_new(e, B, 3, w2, 8);
    CHECK(sim_efuse_read(e, B + 0x7C) == 0x11111115, "bits only go 0 -> 1 (OR)");
    uint32_t err = sim_efuse_read(e, B + 0x1C0);
    CHECK((err >> 8 & 7) != 0, "BLOCK3 err_num set after a second burn (0x%08x)", err);
    CHECK((err >> 15 & 1) == 1, "C3: BLOCK3 fail bit at bit 15 (espefuse BLOCK_FAIL_BIT quirk)");
    // Reed-Solomon correction: data bits burnt later without check bytes are corrected away
    // while at most 6 bytes differ (ERR_NUM = bytes corrected, no FAIL); 8 bytes cannot be
    uint32_t d5[8] = {0x0a0b0c0d, 0, 0, 0, 0, 0, 0, 0};
    burn_new(e, B, 5, d5, 8);
    sim_efuse_write(e, B + 0x04, 0x00010101); // 3 more bytes, no check words
    sim_efuse_write(e, B + 0x1CC, 0x5A5A);
    sim_efuse_write(e, B + 0x1D4, 0x2u | 5u << 2);
    sim_efuse_write(e, B + 0x1CC, 0x5AA5);
    sim_efuse_write(e, B + 0x1D4, 0x1);
    err = sim_efuse_read(e, B + 0x1C0);
    CHECK(sim_efuse_read(e, B + 0xBC + 4) == 0 && (err >> 16 & 0xF) == 3,
          "3 byte errors corrected, ERR_NUM 3, no FAIL (0x%08x)", err);
    sim_efuse_write(e, B + 0x08, 0x01010101);
    sim_efuse_write(e, B + 0x0C, 0x01010101);
    sim_efuse_write(e, B + 0x1CC, 0x5A5A);
    sim_efuse_write(e, B + 0x1D4, 0x2u | 5u << 2);
    sim_efuse_write(e, B + 0x1CC, 0x5AA5);
    sim_efuse_write(e, B + 0x1D4, 0x1);
    err = sim_efuse_read(e, B + 0x1C0);
    CHECK(
        sim_efuse_read(e, B + 0xBC + 8) == 0x01010101 && (err >> 16 & 7) == 7 &&
            (err >> 23 & 1) == 1,
        "11 byte errors: uncorrectable, raw bits, FAIL (C3: at BLOCK_KEY1's fail bit +1) (0x%08x)",
        err);
    // RD_DIS bit 0 hides BLOCK_KEY0; WR_DIS bit 23 stops burning it
    uint32_t key[8] = {0xdeadbeef, 1, 2, 3, 4, 5, 6, 7};
    burn_new(e, B, 4, key, 8);
    CHECK(sim_efuse_read(e, B + 0x9C) == 0xdeadbeef, "key block readable before RD_DIS");
    uint32_t b0[6] = {1u << 23, 1u, 0, 0, 0, 0}; // WR_DIS bit 23 (BLOCK_KEY0), RD_DIS bit 0
    burn_new(e, B, 0, b0, 6);
    CHECK(sim_efuse_read(e, B + 0x9C) == 0, "read-protected key block reads zero");
    uint8_t raw[32];
    sim_efuse_block_data(e, 4, raw);
    CHECK(raw[0] == 0xef, "the hardware still sees the key");
    uint32_t more[8] = {0xFFFFFFFF, 0, 0, 0, 0, 0, 0, 0};
    burn_new(e, B, 4, more, 8);
    sim_efuse_block_data(e, 4, raw);
    CHECK(raw[0] == 0xef && raw[1] == 0xbe, "write-protected block is not burnt");
    // bad-block fault: 8 bytes of BLOCK3 read back wrong, too many to correct: flagged
    sim_efuse_set_faults(e, 3, -1, -1);
    CHECK(sim_efuse_read(e, B + 0x7C) == (0x11111115u ^ 0x01010101u), "bad block reads back wrong");
    CHECK((sim_efuse_read(e, B + 0x1C0) >> 8 & 7) == 7, "bad block: ERR_NUM 7");
    // faults on the program command: brownout before the burn, hangup after it
    sim_efuse_blank(e);
    sim_efuse_set_faults(e, -1, 2, 1);
    uint32_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    sim_efuse_write(e, B, 1);
    sim_efuse_write(e, B + 0x1CC, 0x5A5A);
    CHECK(sim_efuse_write(e, B + 0x1D4, 0x2u | 3u << 2) == SIM_EFUSE_EV_BROWNOUT, "brownout fires");
    sim_efuse_block_data(e, 3, raw);
    CHECK(raw[0] == 0, "brownout: nothing burnt");
    sim_efuse_write(e, B, one[0]);
    sim_efuse_write(e, B + 0x1CC, 0x5A5A);
    CHECK(sim_efuse_write(e, B + 0x1D4, 0x2u | 3u << 2) == SIM_EFUSE_EV_HANGUP, "hangup fires");
    sim_efuse_block_data(e, 3, raw);
    CHECK(raw[0] == 1, "hangup: the burn happened");
    sim_efuse_free(e);
}

static void test_cipher(const char *chip, const char *keyfile, const char *vector, uint32_t addr)
{
    size_t kn, pn, cn;
    uint8_t *key = slurp(keyfile, &kn), *plain = slurp("plain_app.bin", &pn),
            *want = slurp(vector, &cn);
    const sim_chip_t *c = sim_chip_find(chip);
    sim_efuse_t *e = sim_efuse_new(c);
    sim_efuse_factory(e, zero_word, NULL);
    uint32_t w[8];
    if (strcmp(chip, "esp32") == 0) {
        key_words(key, w); // espefuse burn_key flash_encryption: reversed into BLOCK1
        for (int i = 0; i < 8; i++)
            sim_efuse_write(e, 0x3FF5A098 + 4u * (uint32_t)i, w[i]);
        sim_efuse_write(e, 0x3FF5A01C + 5 * 4, 0xFu << 28); // FLASH_CRYPT_CONFIG = 0xF
        sim_efuse_write(e, 0x3FF5A0FC, 0x5A5A);
        sim_efuse_write(e, 0x3FF5A104, 2);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5AA5);
        sim_efuse_write(e, 0x3FF5A104, 1);
    } else {
        uint32_t base = strcmp(chip, "esp32s3") == 0 ? 0x60007000 : 0x60008800;
        uint32_t b0[6] = {0};
        for (size_t k = 0; k < kn / 32; k++) {
            key_words(key + 32 * k, w);
            burn_new(e, base, 4 + (int)k, w, 8);
        }
        // KEY_PURPOSE_0 (word 2 [27:24]) / _1 ([31:28]): XTS_AES_128_KEY = 4 or 256_KEY_1/2 = 2/3
        b0[2] = kn == 32 ? 4u << 24 : (2u << 24 | 3u << 28);
        burn_new(e, base, 0, b0, 6);
    }
    sim_fe_key_t k;
    sim_fe_key_from_efuse(e, &k);
    uint8_t *buf = malloc(pn);
    memcpy(buf, plain, pn);
    CHECK(sim_fe_crypt(&k, addr, buf, pn, 0) == 0, "%s encrypt", vector);
    CHECK(cn == pn && memcmp(buf, want, cn) == 0, "%s: ciphertext differs from the vector", vector);
    // the same data encrypted in 16-byte pieces (as the flash controller does per write)
    memcpy(buf, plain, pn);
    for (size_t off = 0; off < pn; off += 16)
        sim_fe_crypt(&k, addr + (uint32_t)off, buf + off, 16, 0);
    CHECK(memcmp(buf, want, cn) == 0, "%s: piecewise encryption differs", vector);
    if (strcmp(chip, "esp32") == 0) { // RD_DIS bit 3 hides FLASH_CRYPT_CONFIG; AES still uses it
        sim_efuse_write(e, 0x3FF5A01C, 1u << 19);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5A5A);
        sim_efuse_write(e, 0x3FF5A104, 2);
        sim_efuse_write(e, 0x3FF5A0FC, 0x5AA5);
        sim_efuse_write(e, 0x3FF5A104, 1);
        CHECK(sim_efuse_read(e, 0x3FF5A014) >> 28 == 0, "RD_DIS bit 3: FLASH_CRYPT_CONFIG reads 0");
        sim_fe_key_from_efuse(e, &k);
        CHECK(k.crypt_conf == 0xF, "the hardware still sees FLASH_CRYPT_CONFIG");
    }
    CHECK(sim_fe_crypt(&k, addr, buf, pn, 1) == 0 && memcmp(buf, plain, pn) == 0,
          "%s decrypts back", vector);
    free(buf);
    free(key);
    free(plain);
    free(want);
    sim_efuse_free(e);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTOR_DIR\n", argv[0]);
        return 2;
    }
    vdir = argv[1];
    sim_ev_quiet = 1; // the controller reports burns as events; not wanted here
    test_rs_vectors();
    test_controller();
    test_cipher("esp32c3", "xts128_key.bin", "c3_xts128_0x10000.bin", 0x10000);
    test_cipher("esp32s3", "xts256_key.bin", "s3_xts256_0x20000.bin", 0x20000);
    test_cipher("esp32", "esp32_fe_key.bin", "esp32_aes256_0x10000.bin", 0x10000);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("sim security: all checks passed\n");
    return 0;
}
