/* SPDX-License-Identifier: MIT */
/* test_image.c — unit tests of image parsing, bootloader header patching (with SHA-256 fix-up),
 * the chip/revision check and the ESP8266 erase-size rule (jobs/proto/image.c, PROTOCOL.md §4.5.3,
 * §11). Images are built synthetically here. Must not: read image files from disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "chip.h"
#include "est_err.h"
#include "image.h"

typedef struct {
    uint32_t addr;
    uint32_t len;
} seg_t;

typedef struct {
    bool esp8266;
    uint16_t chip_id;
    uint8_t min_rev;
    uint16_t min_rev_full, max_rev_full;
    bool hash;
    uint8_t b23; /* ESP8266: value forced at byte 23 (inside segment data) */
    size_t trailer;
} spec_t;

static const chip_info_t *C(chip_id_t id)
{
    const chip_info_t *c = chip_get(id);
    assert_non_null(c);
    return c;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Build an image; returns its length and stores the expected data length (through checksum). */
static size_t build(uint8_t *b, size_t cap, const spec_t *sp, const seg_t *segs, unsigned n,
                    size_t *data_len)
{
    memset(b, 0, cap);
    b[0] = 0xE9;
    b[1] = (uint8_t)n;
    b[2] = 0x02;              /* dio */
    b[3] = 0x20;              /* 4MB (ESP32 table), 40m */
    put32(b + 4, 0x40080400); /* entry */
    size_t pos = 8;
    if (!sp->esp8266) {
        b[8] = 0xEE; /* WP pin disabled */
        b[12] = (uint8_t)sp->chip_id;
        b[13] = (uint8_t)(sp->chip_id >> 8);
        b[14] = sp->min_rev;
        b[15] = (uint8_t)sp->min_rev_full;
        b[16] = (uint8_t)(sp->min_rev_full >> 8);
        b[17] = (uint8_t)sp->max_rev_full;
        b[18] = (uint8_t)(sp->max_rev_full >> 8);
        b[23] = sp->hash ? 1 : 0;
        pos = 24;
    }
    uint8_t sum = 0xEF;
    for (unsigned s = 0; s < n; s++) {
        put32(b + pos, segs[s].addr);
        put32(b + pos + 4, segs[s].len);
        pos += 8;
        for (uint32_t i = 0; i < segs[s].len; i++) {
            uint8_t v = (uint8_t)(i * 7 + s * 13 + 1);
            if (sp->esp8266 && pos + i == 23) v = sp->b23;
            b[pos + i] = v;
            sum ^= v;
        }
        pos += segs[s].len;
    }
    while (pos % 16 != 15)
        b[pos++] = 0;
    b[pos++] = sum;
    *data_len = pos;
    if (sp->hash) {
        SHA256(b, pos, b + pos);
        pos += 32;
    }
    for (size_t i = 0; i < sp->trailer; i++)
        b[pos++] = (uint8_t)(0xA5 ^ i);
    assert_true(pos <= cap);
    return pos;
}

static const seg_t segs2[] = {{0x3FFF0000, 0x40}, {0x40078000, 0x124}};

static void test_parse_esp32(void **state)
{
    (void)state;
    uint8_t b[1024];
    size_t dl;
    spec_t sp = {.chip_id = 9, .min_rev = 0, .min_rev_full = 1, .max_rev_full = 199, .hash = true};
    size_t n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    image_info_t in;
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_int_equal(in.magic, 0xE9);
    assert_int_equal(in.n_segments, 2);
    assert_int_equal(in.flash_mode, 2);
    assert_int_equal(in.size_freq, 0x20);
    assert_int_equal(in.entry, 0x40080400);
    assert_true(in.has_ext);
    assert_int_equal(in.chip_id, 9);
    assert_int_equal(in.min_rev_full, 1);
    assert_int_equal(in.max_rev_full, 199);
    assert_true(in.hash_appended);
    assert_int_equal(in.data_len, dl);
    assert_int_equal(in.data_len % 16, 0);
    assert_true(in.checksum_ok);
    assert_true(in.sha_ok);

    /* Without hash. */
    sp.hash = false;
    n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_false(in.hash_appended);
    assert_false(in.sha_ok);
    assert_true(in.checksum_ok);
    assert_int_equal(in.data_len, n);
}

static void test_parse_esp8266_and_checksum_position(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t dl;
    spec_t sp = {.esp8266 = true};
    /* Segments end at offset 31 (≡ 15 mod 16): the checksum byte follows directly. */
    seg_t s15 = {0x40100000, 15};
    size_t n = build(b, sizeof(b), &sp, &s15, 1, &dl);
    assert_int_equal(dl, 32);
    image_info_t in;
    assert_int_equal(image_parse(b, n, true, &in), 0);
    assert_false(in.has_ext);
    assert_int_equal(in.data_len, 32);
    assert_true(in.checksum_ok);
    /* Segments end at offset 32 (≡ 0): 15 padding bytes, checksum at 47. */
    seg_t s16 = {0x40100000, 16};
    n = build(b, sizeof(b), &sp, &s16, 1, &dl);
    assert_int_equal(dl, 48);
    assert_int_equal(image_parse(b, n, true, &in), 0);
    assert_int_equal(in.data_len, 48);
    assert_true(in.checksum_ok);
    /* Byte 23 == 1 means nothing on ESP8266 (no extended header). */
    sp.b23 = 1;
    sp.trailer = 32;
    n = build(b, sizeof(b), &sp, &s16, 1, &dl);
    assert_int_equal(b[23], 1);
    assert_int_equal(image_parse(b, n, true, &in), 0);
    assert_false(in.hash_appended);
    assert_true(in.checksum_ok);
    /* An empty image (no segments) is still an image: checksum 0xEF at offset 15. */
    seg_t none = {0};
    n = build(b, sizeof(b), &sp, &none, 0, &dl);
    assert_int_equal(image_parse(b, 16, true, &in), 0);
    assert_int_equal(in.data_len, 16);
    assert_int_equal(b[15], 0xEF);
}

static void test_parse_errors(void **state)
{
    (void)state;
    uint8_t b[1024];
    size_t dl;
    spec_t sp = {.chip_id = 0, .hash = true};
    size_t n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    image_info_t in;
    /* Truncations: header, ext header, segment, checksum byte. */
    assert_int_equal(image_parse(b, 7, false, &in), EST_EIMAGE);
    assert_int_equal(image_parse(b, 20, false, &in), EST_EIMAGE);
    assert_int_equal(image_parse(b, 24 + 8 + 0x3F, false, &in), EST_EIMAGE);
    assert_int_equal(image_parse(b, dl - 1, false, &in), EST_EIMAGE);
    /* Checksum present but digest truncated: parses, digest not OK. */
    assert_int_equal(image_parse(b, dl + 31, false, &in), 0);
    assert_false(in.sha_ok);
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_true(in.sha_ok);
    /* Wrong magic; too many segments; absurd segment length. */
    b[0] = 0xEA;
    assert_int_equal(image_parse(b, n, false, &in), EST_EIMAGE);
    b[0] = 0xE9;
    b[1] = 17;
    assert_int_equal(image_parse(b, n, false, &in), EST_EIMAGE);
    b[1] = 2;
    put32(b + 24 + 4, 16u << 20);
    assert_int_equal(image_parse(b, n, false, &in), EST_EIMAGE);
    put32(b + 24 + 4, 0xFFFFFFF0); /* must not overflow the bounds check */
    assert_int_equal(image_parse(b, n, false, &in), EST_EIMAGE);
    put32(b + 24 + 4, 0x40);
    assert_int_equal(image_parse(b, n, false, &in), 0);
    /* Corrupt segment data: checksum and digest both fail, parse still succeeds. */
    b[24 + 8 + 3] ^= 0x01;
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_false(in.checksum_ok);
    assert_false(in.sha_ok);
    assert_int_equal(image_parse(NULL, 0, false, &in), EST_EIMAGE);
}

static void test_patch_esp32_with_sha(void **state)
{
    (void)state;
    uint8_t b[1024], orig[1024];
    size_t dl;
    spec_t sp = {.chip_id = 0, .max_rev_full = 0xFFFF, .hash = true, .trailer = 100};
    size_t n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    memcpy(orig, b, n);
    const image_params_t p = {.mode = 3, .size_code = 4, .freq_code = 0xF};
    const char *why = "x";
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &p, &why), 1);
    assert_null(why);
    assert_int_equal(b[2], 3);
    assert_int_equal(b[3], 0x4F);
    /* Only bytes 2, 3 and the digest changed; the digest covers the new header. */
    assert_memory_equal(b, orig, 2);
    assert_memory_equal(b + 4, orig + 4, dl - 4);
    uint8_t digest[32];
    SHA256(b, dl, digest);
    assert_memory_equal(b + dl, digest, 32);
    assert_memory_not_equal(b + dl, orig + dl, 32);
    assert_memory_equal(b + dl + 32, orig + dl + 32, n - dl - 32); /* merged-binary tail kept */
    image_info_t in;
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_true(in.checksum_ok);
    assert_true(in.sha_ok);

    /* Partial "keep": only the size nibble changes (mode and freq kept). */
    const image_params_t ps = {.mode = -1, .size_code = 2, .freq_code = -1};
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &ps, NULL), 1);
    assert_int_equal(b[2], 3);
    assert_int_equal(b[3], 0x2F);
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_true(in.sha_ok);
    /* Same parameters again: nothing to do. */
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &ps, &why), 0);
    assert_non_null(why);

    /* ESP32-S3 bootloader sits at 0x0. */
    sp.chip_id = 9;
    n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    const image_params_t pf = {.mode = -1, .size_code = -1, .freq_code = 0x0};
    b[3] = 0x2F;
    SHA256(b, dl, b + dl); /* start from a valid image with freq 80m */
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32S3), 0x0, &pf, NULL), 1);
    assert_int_equal(b[3], 0x20);
    assert_int_equal(image_parse(b, n, false, &in), 0);
    assert_true(in.sha_ok);
}

static void test_patch_refusals(void **state)
{
    (void)state;
    uint8_t b[1024], orig[1024];
    size_t dl;
    spec_t sp = {.chip_id = 0, .hash = true};
    size_t n = build(b, sizeof(b), &sp, segs2, 2, &dl);
    memcpy(orig, b, n);
    const image_params_t p = {.mode = 3, .size_code = 4, .freq_code = 0xF};
    const image_params_t keep = {.mode = -1, .size_code = -1, .freq_code = -1};
    const char *why;
    /* Other offsets (including the S3 bootloader offset 0 for an ESP32). */
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x0, &p, &why), 0);
    assert_non_null(why);
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x10000, &p, &why), 0);
    /* All "keep". */
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &keep, &why), 0);
    assert_memory_equal(b, orig, n);
    /* Wrong chip: an ESP32 image written to an ESP32-S2 (same bootloader offset). */
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32S2), 0x1000, &p, &why), 0);
    assert_non_null(strstr(why, "chip ID"));
    assert_memory_equal(b, orig, n);
    /* Not an image: wrong magic. */
    b[0] = 0x00;
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &p, &why), 0);
    b[0] = 0xE9;
    /* Starts with 0xE9 but is not valid (checksum broken, like encrypted data). */
    b[30] ^= 0xFF;
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &p, &why), 0);
    assert_non_null(strstr(why, "valid"));
    b[30] ^= 0xFF;
    /* Digest wrong (e.g. a signed/modified bootloader): left alone. */
    b[dl + 5] ^= 0x01;
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &p, &why), 0);
    b[dl + 5] ^= 0x01;
    assert_memory_equal(b, orig, n);
    /* Random data that starts with 0xE9. */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    junk[0] = 0xE9;
    junk[1] = 0x03;
    assert_int_equal(image_patch_params(junk, sizeof(junk), C(CHIP_ESP32), 0x1000, &p, &why), 0);
    /* Too short to be an image. */
    assert_int_equal(image_patch_params(b, 4, C(CHIP_ESP32), 0x1000, &p, &why), 0);
    /* Out-of-range parameters are a programming error. */
    const image_params_t bad = {.mode = 4, .size_code = -1, .freq_code = -1};
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &bad, &why), EST_EUSAGE);
    const image_params_t bad2 = {.mode = -1, .size_code = 16, .freq_code = -1};
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP32), 0x1000, &bad2, &why), EST_EUSAGE);
    assert_memory_equal(b, orig, n);
}

static void test_patch_esp8266_no_sha(void **state)
{
    (void)state;
    uint8_t b[256], orig[256];
    size_t dl;
    /* Byte 23 happens to be 1 and 32 bytes follow the checksum: an ESP32-style SHA fix-up would
     * overwrite them. It must not happen on ESP8266. */
    spec_t sp = {.esp8266 = true, .b23 = 1, .trailer = 40};
    seg_t s = {0x40100000, 0x30};
    size_t n = build(b, sizeof(b), &sp, &s, 1, &dl);
    memcpy(orig, b, n);
    const image_params_t p = {.mode = 0, .size_code = 4, .freq_code = 0};
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP8266), 0x0, &p, NULL), 1);
    assert_int_equal(b[2], 0);
    assert_int_equal(b[3], 0x40);
    assert_memory_equal(b + 4, orig + 4, n - 4);
    /* Not at offset 0. */
    memcpy(b, orig, n);
    assert_int_equal(image_patch_params(b, n, C(CHIP_ESP8266), 0x1000, &p, NULL), 0);
    assert_memory_equal(b, orig, n);
}

static void test_esp8266_erase_size(void **state)
{
    (void)state;
    /* Examples from §4.5.3. */
    assert_int_equal(image_esp8266_erase_size(0, 0x10000), 0x8000);
    assert_int_equal(image_esp8266_erase_size(0, 0x40000), 0x30000);
    /* Inside one block: half the sectors, rounded up. */
    assert_int_equal(image_esp8266_erase_size(0, 0x1000), 0x1000);
    assert_int_equal(image_esp8266_erase_size(0, 0x3000), 0x2000);
    assert_int_equal(image_esp8266_erase_size(0x1000, 0x1001), 0x1000); /* 2 sectors */
    assert_int_equal(image_esp8266_erase_size(0, 0), 0);
    /* Crossing a 64 KiB block boundary: head = sectors up to the boundary. */
    /* 0xF000 + 2 sectors: head 1, num 2 → (2 - 1) sectors. */
    assert_int_equal(image_esp8266_erase_size(0xF000, 0x2000), 0x1000);
    /* 0xC000 + 5 sectors: head 4, num 5 < 8 → 3 sectors. */
    assert_int_equal(image_esp8266_erase_size(0xC000, 0x5000), 0x3000);
    /* 0x8000 + 16 sectors: head 8, num 16 → 8 sectors. */
    assert_int_equal(image_esp8266_erase_size(0x8000, 0x10000), 0x8000);
    /* 0x1E000 + 0x22000: head 2, num 34 → 32 sectors. */
    assert_int_equal(image_esp8266_erase_size(0x1E000, 0x22000), 0x20000);
    /* Unaligned size rounds up to whole sectors first. */
    assert_int_equal(image_esp8266_erase_size(0x10000, 0x10001), 0x9000); /* num 17 < 2*16 */
    /* Large sizes do not overflow. */
    assert_int_equal(image_esp8266_erase_size(0, 0xFFFFF000), 0xFFFFF000 - 0x10000);
}

static image_info_t info_ext(uint16_t chip_id, uint8_t min_rev, uint16_t min_full,
                             uint16_t max_full)
{
    image_info_t in;
    memset(&in, 0, sizeof(in));
    in.magic = 0xE9;
    in.has_ext = true;
    in.chip_id = chip_id;
    in.min_rev = min_rev;
    in.min_rev_full = min_full;
    in.max_rev_full = max_full;
    return in;
}

static void test_check_chip(void **state)
{
    (void)state;
    const char *why;
    image_info_t in = info_ext(9, 0, 0, 0xFFFF);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32S3), 2, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32C3), 2, &why), EST_ECHIP);
    assert_non_null(why);
    /* Full fields: [min, max] inclusive. */
    in = info_ext(9, 0, 100, 199);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32S3), 99, &why), EST_ECHIP);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32S3), 100, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32S3), 199, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32S3), 200, &why), EST_ECHIP);
    /* max 0xFFFF = no upper limit. */
    in = info_ext(0, 0, 300, 0xFFFF);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 301, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 201, &why), EST_ECHIP);
    /* max 0xFFFF, min_rev_full 0 but legacy byte set: the legacy byte (major) is used. */
    in = info_ext(0, 3, 0, 0xFFFF);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 201, &why), EST_ECHIP);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 300, &why), 0);
    /* max 0: fields absent, legacy byte vs major revision... */
    in = info_ext(0, 1, 500, 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 100, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32), 3, &why), EST_ECHIP);
    /* ...except on ESP32-C3, where it is the minor revision. */
    in = info_ext(5, 3, 0, 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32C3), 4, &why), 0);
    assert_int_equal(image_check_chip(&in, C(CHIP_ESP32C3), 102, &why), EST_ECHIP);
    /* ESP8266 images (no extended header) and ESP8266 chips are never rejected here. */
    image_info_t v1;
    memset(&v1, 0, sizeof(v1));
    assert_int_equal(image_check_chip(&v1, C(CHIP_ESP8266), 0, &why), 0);
    assert_int_equal(image_check_chip(&v1, C(CHIP_ESP32), 0, &why), 0);
}

static void test_hash_helpers(void **state)
{
    (void)state;
    /* FIPS 180-2 test vector "abc". */
    const uint8_t exp[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                             0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                             0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t out[32];
    image_sha256((const uint8_t *)"abc", 3, out);
    assert_memory_equal(out, exp, 32);
    const uint8_t d[] = {0x10, 0x20, 0x30};
    assert_int_equal(image_checksum(d, 3), 0xEF ^ 0x10 ^ 0x20 ^ 0x30);
    assert_int_equal(image_checksum(d, 0), 0xEF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_esp32),
        cmocka_unit_test(test_parse_esp8266_and_checksum_position),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_patch_esp32_with_sha),
        cmocka_unit_test(test_patch_refusals),
        cmocka_unit_test(test_patch_esp8266_no_sha),
        cmocka_unit_test(test_esp8266_erase_size),
        cmocka_unit_test(test_check_chip),
        cmocka_unit_test(test_hash_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
