/* SPDX-License-Identifier: MIT */
/* test_efuse_plan.c — eFuse tables and the burn planner (jobs/prov/efuse.c, efuse_tables.c):
 * table sanity and spot checks against the cited ESP-IDF/esptool positions; full secure plans
 * for ESP32-C3, ESP32-S3 and ESP32 (one burn per block, protection last, keys reversed and
 * Reed-Solomon/3/4 coded, secrets never in the dry run); every refusal (clearing a bit,
 * conflicting value, write-protected field, key block not free, coded block already written);
 * the register program of a burn and its read-back check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "efuse.h"
#include "secinfo.h"

static const efuse_chip_t *chip(const char *name)
{
    const efuse_chip_t *c = efuse_chip(name);
    assert_non_null(c);
    return c;
}

static uint8_t bitv(const efuse_state_t *s, unsigned blk, unsigned bit)
{
    return (s->blk[blk][bit / 8] >> (bit % 8)) & 1u;
}

static void setbit(efuse_state_t *s, unsigned blk, unsigned bit)
{
    s->blk[blk][bit / 8] |= (uint8_t)(1u << (bit % 8));
}

#define OK(expr)                                                                                   \
    do {                                                                                           \
        char err_[256] = "";                                                                       \
        if ((expr) != 0) fail_msg("%s: %s", #expr, err_);                                          \
    } while (0)
/* the macro's err_ is what the calls below pass as err */
#define E err_, sizeof err_

static void expect_refused(int rc, const char *err, const char *needle)
{
    if (rc != -1) fail_msg("accepted, expected a refusal with '%s'", needle);
    if (!strstr(err, needle)) fail_msg("expected '%s' in '%s'", needle, err);
}

/* Fields lie inside their blocks, protect bits inside WR_DIS, names unique, and recipe fields
 * of BLOCK0 never overlap (aliases are one field). */
static void test_tables_sane(void **state)
{
    static const char *const names[] = {"esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6"};
    (void)state;
    assert_null(efuse_chip("esp8266"));
    for (unsigned k = 0; k < 5; k++) {
        const efuse_chip_t *c = chip(names[k]);
        const efuse_field_def_t *wd = efuse_field(c, "WR_DIS");
        assert_non_null(wd);
        assert_non_null(efuse_field(c, c->crypt_cnt));
        for (unsigned i = 0; i < c->n_blocks; i++) {
            assert_int_equal(c->blocks[i].index, i);
            for (unsigned j = 0; j < i; j++)
                assert_int_not_equal(c->blocks[i].rd_addr, c->blocks[j].rd_addr);
            assert_true(c->blocks[i].wr_dis_bit < (int)wd->len);
        }
        for (unsigned i = 0; i < c->n_fields; i++) {
            const efuse_field_def_t *f = &c->fields[i];
            assert_true(f->block < c->n_blocks);
            assert_true(f->bit + f->len <= c->blocks[f->block].words * 32u);
            assert_true(f->wr_dis < (int)wd->len);
            assert_ptr_equal(efuse_field(c, f->name), f);
            if (f->alias) assert_ptr_equal(efuse_field(c, f->alias), f);
            for (unsigned j = 0; j < i; j++) {
                const efuse_field_def_t *g = &c->fields[j];
                bool overlap = f->block == g->block && f->bit < g->bit + g->len &&
                               g->bit < f->bit + f->len;
                assert_string_not_equal(f->name, g->name);
                if (f->block == 0) assert_false(overlap);
            }
        }
    }
}

/* Spot checks against ESP-IDF esp_efuse_table.csv / espefuse efuse_defs (docs cite them). */
static void test_positions(void **state)
{
    const efuse_chip_t *c3 = chip("esp32c3"), *s3 = chip("esp32s3"), *e = chip("esp32");
    (void)state;
    assert_int_equal(efuse_field(c3, "SPI_BOOT_CRYPT_CNT")->bit, 82);
    assert_int_equal(efuse_field(c3, "SPI_BOOT_CRYPT_CNT")->len, 3);
    assert_int_equal(efuse_field(c3, "SECURE_BOOT_EN")->bit, 116);
    assert_int_equal(efuse_field(c3, "KEY_PURPOSE_0")->bit, 88);
    assert_int_equal(efuse_field(c3, "DIS_USB_JTAG")->bit, 41);
    assert_int_equal(efuse_field(s3, "DIS_USB_JTAG")->bit, 118);
    assert_int_equal(efuse_field(s3, "DIS_USB_OTG_DOWNLOAD_MODE")->bit, 159);
    assert_int_equal(efuse_field(c3, "ENABLE_SECURITY_DOWNLOAD")->bit, 133);
    assert_int_equal(efuse_field(c3, "CUSTOM_MAC")->bit, 200);
    assert_ptr_equal(efuse_field(c3, "DIS_LEGACY_SPI_BOOT"), efuse_field(c3, "DIS_DIRECT_BOOT"));
    assert_int_equal(efuse_field(e, "FLASH_CRYPT_CNT")->bit, 20);
    assert_int_equal(efuse_field(e, "FLASH_CRYPT_CNT")->len, 7);
    assert_int_equal(efuse_field(e, "JTAG_DISABLE")->bit, 198);
    assert_int_equal(efuse_field(e, "ABS_DONE_1")->bit, 197);
    assert_int_equal(efuse_block(c3, 4)->rd_addr, 0x6000889Cu);
    assert_int_equal(efuse_block(s3, 4)->rd_addr, 0x6000709Cu);
    assert_int_equal(efuse_block(chip("esp32c6"), 4)->rd_addr, 0x600B089Cu);
    assert_int_equal(efuse_block(chip("esp32c6"), 9)->fail_bit, 3);
    assert_int_equal(efuse_field(chip("esp32c6"), "SECURE_BOOT_EN")->bit, 116);
    {
        const efuse_chip_t *s2 = chip("esp32s2");
        efuse_step_t st[EFUSE_MAX_STEPS];
        static efuse_plan_t p;
        efuse_state_t blank;
        char err[200];
        bool tpgm = false;
        size_t n;
        assert_int_equal(efuse_field(s2, "DIS_PAD_JTAG")->bit, 50);
        assert_int_equal(efuse_field(s2, "DIS_DOWNLOAD_MANUAL_ENCRYPT")->bit, 51);
        assert_int_equal(efuse_field(s2, "SECURE_VERSION")->bit, 139);
        assert_int_equal(efuse_block(s2, 4)->rd_addr, 0x3F41A09Cu);
        assert_int_equal(efuse_block(s2, 4)->err_reg, 0x3F41A194u);
        /* its programming timing (TPGM in EFUSE_WR_TIM_CONF0_REG) is part of every burn */
        memset(&blank, 0, sizeof blank);
        efuse_plan_init(&p, s2, &blank);
        assert_int_equal(efuse_plan_set(&p, "HARD_DIS_JTAG", 1, err, sizeof err), 0);
        assert_int_equal(efuse_plan_finish(&p, err, sizeof err), 0);
        n = efuse_burn_steps(&p, 0, 40, st, err, sizeof err);
        assert_true(n > 0);
        for (size_t i = 0; i < n; i++)
            if (st[i].op == EFUSE_OP_UPDATE && st[i].addr == 0x3F41A1F0u && st[i].value == 0x190u << 16)
                tpgm = true;
        assert_true(tpgm);
    }
    assert_int_equal(efuse_block(e, 1)->wr_addr, 0x3FF5A098u);
    assert_int_equal(efuse_block_by_name(c3, "BLOCK4"), efuse_block(c3, 4));
}

/* ESP32-C3 release-mode flash encryption + Secure Boot v2 from a blank chip. */
static void test_c3_secure_plan(void **state)
{
    const efuse_chip_t *c = chip("esp32c3");
    static efuse_plan_t p;
    efuse_state_t blank;
    uint8_t key[32], digest[32], rev[32];
    uint32_t want_pgm[EFUSE_RS_WORDS];
    char text[4096], hex[8];
    int used = -1;
    (void)state;
    memset(&blank, 0, sizeof blank);
    for (unsigned i = 0; i < 32; i++) {
        key[i] = (uint8_t)(0xC0 + i);
        digest[i] = (uint8_t)(0x10 + i);
        rev[i] = (uint8_t)(0xC0 + 31 - i);
    }
    efuse_plan_init(&p, c, &blank);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, &used, E));
    assert_int_equal(used, 4);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_SECURE_BOOT_DIGEST0, digest, 32, &used, E));
    assert_int_equal(used, 5);
    OK(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 1, E));
    OK(efuse_plan_set(&p, "DIS_DOWNLOAD_MANUAL_ENCRYPT", 1, E));
    OK(efuse_plan_set(&p, "SECURE_BOOT_EN", 1, E));
    OK(efuse_plan_set(&p, "SECURE_BOOT_KEY_REVOKE1", 1, E));
    OK(efuse_plan_set(&p, "DIS_PAD_JTAG", 1, E));
    OK(efuse_plan_set(&p, "DIS_USB_JTAG", 1, E));
    OK(efuse_plan_set(&p, "ENABLE_SECURITY_DOWNLOAD", 1, E));
    OK(efuse_plan_finish(&p, E));
    /* one burn per block, BLOCK0 fields, protection, then the lockdown bit on its own */
    assert_int_equal(p.n_burns, 5);
    assert_int_equal(p.burns[0].block, 4);
    assert_int_equal(p.burns[1].block, 5);
    assert_int_equal(p.burns[2].block, 0);
    assert_false(p.burns[2].protect_pass);
    assert_int_equal(p.burns[3].block, 0);
    assert_true(p.burns[3].protect_pass);
    assert_int_equal(p.burns[4].block, 0);
    assert_true(p.burns[4].lockdown);
    assert_int_equal(p.burns[4].pgm[4], 1u << (133 - 128)); /* ENABLE_SECURITY_DOWNLOAD only */
    for (unsigned w = 0; w < 6; w++)
        if (w != 4) assert_int_equal(p.burns[4].pgm[w], 0);
    assert_int_equal(p.burns[2].pgm[4] & (1u << 5), 0);
    assert_int_equal(bitv(&p.want, 0, 133), 1);
    /* the XTS key is stored reversed and Reed-Solomon coded */
    assert_true(p.burns[0].secret);
    assert_int_equal(p.burns[0].coding, EFUSE_CODING_RS);
    efuse_rs_encode(rev, want_pgm);
    assert_memory_equal(p.burns[0].pgm, want_pgm, sizeof want_pgm);
    assert_false(p.burns[1].secret); /* a digest is public */
    /* purposes, counter, protection in the final state */
    assert_int_equal(efuse_get(&p.want, efuse_field(c, "KEY_PURPOSE_0")), 4);
    assert_int_equal(efuse_get(&p.want, efuse_field(c, "KEY_PURPOSE_1")), 9);
    assert_int_equal(efuse_get(&p.want, efuse_field(c, "SPI_BOOT_CRYPT_CNT")), 1);
    assert_int_equal(p.wr_dis_add, (1u << 23) | (1u << 24) | (1u << 8) | (1u << 9));
    assert_int_equal(p.rd_dis_add, 1u); /* BLOCK_KEY0 only: the digest stays readable */
    /* the protection burn programs exactly the protection bits */
    assert_int_equal(p.burns[3].pgm[0], p.wr_dis_add);
    assert_int_equal(p.burns[3].pgm[1], 1u);
    for (unsigned w = 2; w < 6; w++)
        assert_int_equal(p.burns[3].pgm[w], 0);
    /* BLOCK0 fields burn does not carry protection bits */
    assert_int_equal(p.burns[2].pgm[0], 0);
    assert_int_equal(p.burns[2].pgm[1] & 0x7F, 0);
    /* the dry run names everything and never shows the key */
    efuse_plan_describe(&p, text, sizeof text);
    assert_non_null(strstr(text, "burn 1/5: BLOCK_KEY0 (BLOCK4), coding Reed-Solomon"));
    assert_non_null(strstr(text, "burn 5/5: BLOCK0, coding none, 6 program word(s), lockdown"));
    assert_non_null(strstr(text, "<secret>"));
    assert_non_null(strstr(text, "SPI_BOOT_CRYPT_CNT (BLOCK0 bits 82..84): 0x0 -> 0x1"));
    assert_non_null(strstr(text, "XTS_AES_128_KEY"));
    assert_non_null(strstr(text, "irreversible"));
    for (unsigned i = 0; i + 4 <= 32; i++) {
        snprintf(hex, sizeof hex, "%02x%02x", key[i], key[i + 1]);
        assert_null(strstr(text, hex));
        snprintf(hex, sizeof hex, "%02x%02x", rev[i], rev[i + 1]);
        assert_null(strstr(text, hex));
    }
    /* the JSON record: every change and burn, no key material */
    {
        cJSON *j = efuse_plan_to_json(&p), *burns, *b0;
        char *js = cJSON_PrintUnformatted(j);
        assert_non_null(js);
        burns = cJSON_GetObjectItemCaseSensitive(j, "burns");
        assert_int_equal(cJSON_GetArraySize(burns), 5);
        b0 = cJSON_GetArrayItem(burns, 0);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(b0, "name")->valuestring, "BLOCK_KEY0");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b0, "secret")));
        assert_null(cJSON_GetObjectItemCaseSensitive(b0, "program"));
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(burns, 4), "kind")
                                ->valuestring,
                            "lockdown");
        assert_non_null(strstr(js, "\"field\":\"SPI_BOOT_CRYPT_CNT\",\"block\":0,\"old\":\"0x0\",\"new\":\"0x1\""));
        assert_non_null(strstr(js, "\"write_protect\":\"0x01800300\""));
        for (unsigned i = 0; i + 4 <= 32; i++) {
            snprintf(hex, sizeof hex, "%02x%02x", key[i], key[i + 1]);
            assert_null(strstr(js, hex));
            snprintf(hex, sizeof hex, "%02x%02x", rev[i], rev[i + 1]);
            assert_null(strstr(js, hex));
        }
        cJSON_free(js);
        cJSON_Delete(j);
    }
}

static void test_refusals(void **state)
{
    const efuse_chip_t *c = chip("esp32c3");
    static efuse_plan_t p;
    efuse_state_t s;
    uint8_t key[32] = {1}, ud[24] = {7};
    char err[256];
    (void)state;
    memset(&s, 0, sizeof s);
    setbit(&s, 0, 82);          /* SPI_BOOT_CRYPT_CNT = 1 */
    s.blk[0][11] = 0x04;        /* KEY_PURPOSE_0 (bits 88..91) = 4 */
    s.blk[4][0] = 0xAA;         /* BLOCK_KEY0 holds data */
    s.blk[3][0] = 0x55;         /* BLOCK_USR_DATA written */
    efuse_plan_init(&p, c, &s);
    expect_refused(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 0, err, sizeof err), err, "clear");
    expect_refused(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 2, err, sizeof err), err, "clear");
    assert_int_equal(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 3, err, sizeof err), 0);
    expect_refused(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 7, err, sizeof err), err, "twice");
    expect_refused(efuse_plan_set(&p, "KEY_PURPOSE_0", 9, err, sizeof err), err, "already set");
    assert_int_equal(efuse_plan_set(&p, "KEY_PURPOSE_0", 4, err, sizeof err), 0); /* same: no-op */
    expect_refused(efuse_plan_key(&p, 4, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, err, sizeof err),
                   err, "not free");
    expect_refused(efuse_plan_set_bytes(&p, "USER_DATA", ud, 24, err, sizeof err), err,
                   "already set");
    expect_refused(efuse_plan_custom_mac(&p, (const uint8_t[6]){0x24, 0x0A, 0xC4, 1, 2, 3}, err,
                                         sizeof err),
                   err, "programmed only once");
    expect_refused(efuse_plan_key(&p, 9, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, err, sizeof err),
                   err, "erratum");
    expect_refused(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_256_KEY_1, key, 32, NULL, err,
                                  sizeof err),
                   err, "does not accept");
    expect_refused(efuse_plan_key(&p, 2, KEY_PURPOSE_HMAC_UP, key, 32, NULL, err, sizeof err), err,
                   "not a key block");
    expect_refused(efuse_plan_set(&p, "NO_SUCH_FIELD", 1, err, sizeof err), err, "no eFuse field");
    expect_refused(efuse_plan_set(&p, "SOFT_DIS_JTAG", 8, err, sizeof err), err, "does not fit");
    expect_refused(efuse_plan_set(&p, "USER_DATA", 1, err, sizeof err), err, "bytes");
    expect_refused(efuse_plan_set_bytes(&p, "CUSTOM_MAC", ud, 5, err, sizeof err), err, "6 bytes");
    /* the next free key block is taken automatically */
    {
        int used = -1;
        assert_int_equal(efuse_plan_key(&p, -1, KEY_PURPOSE_HMAC_UP, key, 32, &used, err, sizeof err), 0);
        assert_int_equal(used, 5);
    }
    /* write protection: WR_DIS bit 4 protects SPI_BOOT_CRYPT_CNT, bit 22 BLOCK_USR_DATA */
    memset(&s, 0, sizeof s);
    setbit(&s, 0, 4);
    setbit(&s, 0, 22);
    setbit(&s, 0, 32 + 1); /* RD_DIS bit 1: BLOCK_KEY1 read-protected */
    efuse_plan_init(&p, c, &s);
    expect_refused(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 1, err, sizeof err), err,
                   "write-protected");
    expect_refused(efuse_plan_set_bytes(&p, "USER_DATA", ud, 24, err, sizeof err), err,
                   "write-protected");
    expect_refused(efuse_plan_key(&p, 5, KEY_PURPOSE_HMAC_UP, key, 32, NULL, err, sizeof err), err,
                   "not free");
    expect_refused(efuse_plan_set(&p, "CUSTOM_MAC_NOPE", 1, err, sizeof err), err, "no eFuse field");
    /* RD_DIS write-protected (WR_DIS bit 0, as the Secure Boot flow does): a flash key could
     * never be read-protected, so it is refused; a digest (public) is still fine */
    memset(&s, 0, sizeof s);
    setbit(&s, 0, 0);
    efuse_plan_init(&p, c, &s);
    expect_refused(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, err, sizeof err),
                   err, "RD_DIS is write-protected");
    expect_refused(efuse_plan_protect_block(&p, "BLOCK_KEY3", true, err, sizeof err), err,
                   "RD_DIS is write-protected");
    expect_refused(efuse_plan_set(&p, "RD_DIS", 1, err, sizeof err), err, "write-protected");
    assert_int_equal(efuse_plan_key(&p, -1, KEY_PURPOSE_SECURE_BOOT_DIGEST1, key, 32, NULL, err,
                                    sizeof err),
                     0);
    expect_refused(efuse_plan_custom_mac(&p, (const uint8_t[6]){0x01, 2, 3, 4, 5, 6}, err, sizeof err),
                   err, "unicast");
}

/* Nothing to do: requesting what is already burnt gives no burn. */
static void test_noop_plan(void **state)
{
    const efuse_chip_t *c = chip("esp32s3");
    static efuse_plan_t p;
    efuse_state_t s;
    char text[1024];
    (void)state;
    memset(&s, 0, sizeof s);
    setbit(&s, 0, 116);
    efuse_plan_init(&p, c, &s);
    OK(efuse_plan_set(&p, "SECURE_BOOT_EN", 1, E));
    OK(efuse_plan_finish(&p, E));
    assert_int_equal(p.n_burns, 0);
    efuse_plan_describe(&p, text, sizeof text);
    assert_non_null(strstr(text, "Nothing to burn"));
    assert_non_null(strstr(text, "already set"));
}

/* ESP32-S3 XTS-AES-256: a 64-byte key fills two blocks, each half reversed, purposes 2 and 3. */
static void test_s3_xts256(void **state)
{
    const efuse_chip_t *c = chip("esp32s3");
    static efuse_plan_t p;
    efuse_state_t blank;
    uint8_t key[64], mac[6] = {0x24, 0x0A, 0xC4, 0x11, 0x22, 0x33};
    int used;
    (void)state;
    memset(&blank, 0, sizeof blank);
    for (unsigned i = 0; i < 64; i++)
        key[i] = (uint8_t)i;
    efuse_plan_init(&p, c, &blank);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_256_KEY_1, key, 64, &used, E));
    assert_int_equal(used, 4);
    OK(efuse_plan_custom_mac(&p, mac, E));
    OK(efuse_plan_finish(&p, E));
    assert_int_equal(p.want.blk[4][0], 0x1F);
    assert_int_equal(p.want.blk[4][31], 0x00);
    assert_int_equal(p.want.blk[5][0], 0x3F);
    assert_int_equal(p.want.blk[5][31], 0x20);
    assert_int_equal(efuse_get(&p.want, efuse_field(c, "KEY_PURPOSE_0")), 2);
    assert_int_equal(efuse_get(&p.want, efuse_field(c, "KEY_PURPOSE_1")), 3);
    assert_int_equal(p.rd_dis_add, 3u);
    /* custom MAC in BLOCK3 bytes 25..30, mac[0] first */
    assert_memory_equal(&p.want.blk[3][25], mac, 6);
    assert_int_equal(p.n_burns, 5); /* BLOCK3, KEY0, KEY1, BLOCK0, protection */
    assert_int_equal(p.burns[0].block, 3);
}

/* ESP32: flash key into BLOCK1 (reversed), custom MAC with its CRC-8 and version, release bits;
 * with the 3/4 coding scheme the blocks are 3/4 coded and Secure Boot v2 is refused. */
static void test_esp32_plans(void **state)
{
    const efuse_chip_t *c = chip("esp32");
    static efuse_plan_t p;
    efuse_state_t s;
    uint8_t key[32], mac[6] = {0x24, 0x0A, 0xC4, 0x01, 0x02, 0x03};
    char err[256];
    uint32_t w34[8];
    (void)state;
    memset(&s, 0, sizeof s);
    for (unsigned i = 0; i < 32; i++)
        key[i] = (uint8_t)(0x80 | i);
    efuse_plan_init(&p, c, &s);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, E));
    OK(efuse_plan_custom_mac(&p, mac, E));
    OK(efuse_plan_set(&p, "FLASH_CRYPT_CONFIG", 0xF, E));
    OK(efuse_plan_set(&p, "FLASH_CRYPT_CNT", 1, E));
    OK(efuse_plan_set(&p, "DISABLE_DL_ENCRYPT", 1, E));
    OK(efuse_plan_set(&p, "DISABLE_DL_DECRYPT", 1, E));
    OK(efuse_plan_set(&p, "DISABLE_DL_CACHE", 1, E));
    OK(efuse_plan_set(&p, "JTAG_DISABLE", 1, E));
    OK(efuse_plan_set(&p, "WR_DIS", 1u << 2, E)); /* release mode: counter write-protected */
    OK(efuse_plan_finish(&p, E));
    assert_int_equal(p.want.blk[1][0], 0x9F);
    assert_memory_equal(&p.want.blk[3][1], mac, 6);
    /* CRC-8/MAXIM of the MAC (check value of "123456789" is 0xA1 for this polynomial) */
    {
        uint8_t crc = 0;
        for (unsigned i = 0; i < 6; i++) {
            crc ^= mac[i];
            for (unsigned k = 0; k < 8; k++)
                crc = (crc & 1) ? (uint8_t)((crc >> 1) ^ 0x8C) : (uint8_t)(crc >> 1);
        }
        assert_int_equal(p.want.blk[3][0], crc);
    }
    assert_int_equal(p.want.blk[3][23], 1); /* MAC_VERSION */
    assert_int_equal(p.wr_dis_add, (1u << 2) | (1u << 7));
    assert_int_equal(p.rd_dis_add, 1u);
    assert_int_equal(p.burns[0].block, 1);
    assert_int_equal(p.burns[0].coding, EFUSE_CODING_NONE);
    assert_int_equal(p.burns[p.n_burns - 1].block, 0);
    assert_true(p.burns[p.n_burns - 1].protect_pass);
    /* 3/4 coding scheme */
    memset(&s, 0, sizeof s);
    s.blk[0][24] = 0x01; /* CODING_SCHEME = 1 (bits 192..193) */
    efuse_plan_init(&p, c, &s);
    expect_refused(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, err, sizeof err),
                   err, "24-byte");
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 24, NULL, E));
    expect_refused(efuse_plan_key(&p, -1, KEY_PURPOSE_SECURE_BOOT_DIGEST0, key, 32, NULL, err,
                                  sizeof err),
                   err, "NONE coding");
    OK(efuse_plan_finish(&p, E));
    assert_int_equal(p.burns[0].coding, EFUSE_CODING_34);
    efuse_34_encode(p.want.blk[1], w34);
    assert_memory_equal(p.burns[0].pgm, w34, sizeof w34);
    assert_int_equal(p.burns[0].n_expect, 6);
    /* 3/4 block already written: refused */
    s.blk[3][0] = 0x11;
    efuse_plan_init(&p, c, &s);
    expect_refused(efuse_plan_custom_mac(&p, mac, err, sizeof err), err, "programmed only once");
}

/* The register program of a C3 key burn and of an ESP32 burn; the read-back check. */
static void test_steps_and_verify(void **state)
{
    const efuse_chip_t *c = chip("esp32c3");
    static efuse_plan_t p;
    efuse_state_t blank;
    efuse_step_t st[EFUSE_MAX_STEPS];
    uint8_t key[32];
    uint32_t words[8];
    char err[256];
    size_t n;
    bool saw_cmd = false, saw_conf = false, saw_check = false;
    unsigned reads = 0;
    (void)state;
    memset(&blank, 0, sizeof blank);
    memset(key, 0x42, sizeof key);
    efuse_plan_init(&p, c, &blank);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_HMAC_UP, key, 32, NULL, E));
    OK(efuse_plan_finish(&p, E));
    n = efuse_burn_steps(&p, 0, 40, st, err, sizeof err);
    assert_true(n > 0 && n <= EFUSE_MAX_STEPS);
    for (size_t i = 0; i < n; i++) {
        if (st[i].op == EFUSE_OP_WRITE && st[i].addr == 0x60008800u + 0x1D4 && st[i].value == (2u | 4u << 2))
            saw_cmd = true;
        if (st[i].op == EFUSE_OP_WRITE && st[i].addr == 0x60008800u + 0x1CC && st[i].value == 0x5A5A)
            saw_conf = true;
        if (st[i].op == EFUSE_OP_WRITE && st[i].addr == 0x60008820u && st[i].value == p.burns[0].pgm[8])
            saw_check = true;
        if (st[i].op == EFUSE_OP_READ && st[i].slot < 8) {
            assert_int_equal(st[i].addr, 0x6000889Cu + 4 * st[i].slot);
            reads++;
        }
    }
    assert_true(saw_cmd && saw_conf && saw_check);
    assert_int_equal(reads, 8);
    assert_int_equal(st[0].op, EFUSE_OP_UPDATE);
    assert_int_equal(efuse_burn_steps(&p, 0, 26, st, err, sizeof err), 0);
    assert_non_null(strstr(err, "40 MHz"));
    assert_int_equal(efuse_burn_steps(&p, 9, 40, st, err, sizeof err), 0);
    /* read-back */
    memcpy(words, p.burns[0].expect, sizeof words);
    assert_int_equal(efuse_burn_verify(&p, 0, words, 8, 0, err, sizeof err), 0);
    expect_refused(efuse_burn_verify(&p, 0, words, 8, 1u << 12, err, sizeof err), err, "Reed-Solomon");
    words[3] ^= 0x100;
    expect_refused(efuse_burn_verify(&p, 0, words, 8, 0, err, sizeof err), err, "reads back");
    /* the secret block's values are not echoed */
    assert_null(strstr(err, "4242"));
    /* ESP32 at 26 MHz: its own clock settings, program registers of the block itself */
    efuse_plan_init(&p, chip("esp32"), &blank);
    OK(efuse_plan_set(&p, "JTAG_DISABLE", 1, E));
    OK(efuse_plan_finish(&p, E));
    n = efuse_burn_steps(&p, 0, 26, st, err, sizeof err);
    assert_true(n > 0);
    assert_int_equal(st[0].addr, 0x3FF5A0F8u);
    assert_int_equal(st[0].value, 250u | 255u << 8);
    {
        bool wrote = false;
        for (size_t i = 0; i < n; i++)
            if (st[i].op == EFUSE_OP_WRITE && st[i].addr == 0x3FF5A01Cu + 4 * 6 && st[i].value == (1u << 6))
                wrote = true;
        assert_true(wrote);
    }
    assert_int_equal(efuse_burn_verify(&p, 0, p.burns[0].expect, 7, 0, err, sizeof err), 0);
    assert_int_equal(bitv(&p.want, 0, 198), 1);
}

/* The state after a secure plan, decoded: what the job records and shows. */
static void test_summary(void **state)
{
    const efuse_chip_t *c = chip("esp32c3"), *e = chip("esp32");
    static efuse_plan_t p;
    efuse_state_t s;
    efuse_summary_t sum;
    uint8_t key[32] = {5}, digest[32] = {6};
    uint32_t addrs[8];
    char text[2048];
    (void)state;
    memset(&s, 0, sizeof s);
    efuse_summarize(c, &s, &sum);
    assert_false(sum.flash_encryption);
    efuse_summary_describe(c, &sum, text, sizeof text);
    assert_non_null(strstr(text, "flash encryption off (SPI_BOOT_CRYPT_CNT 0/3 bits)"));
    assert_non_null(strstr(text, "download mode open"));
    assert_non_null(strstr(text, "BLOCK_KEY0: free\n"));
    efuse_plan_init(&p, c, &s);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, E));
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_SECURE_BOOT_DIGEST0, digest, 32, NULL, E));
    OK(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 7, E));
    OK(efuse_plan_set(&p, "SECURE_BOOT_EN", 1, E));
    OK(efuse_plan_set(&p, "SECURE_BOOT_KEY_REVOKE2", 1, E));
    OK(efuse_plan_set(&p, "DIS_PAD_JTAG", 1, E));
    OK(efuse_plan_set(&p, "ENABLE_SECURITY_DOWNLOAD", 1, E));
    OK(efuse_plan_finish(&p, E));
    efuse_summarize(c, &p.want, &sum);
    /* 0b111: three bits, odd: on, and the counter is exhausted (release) */
    assert_true(sum.flash_encryption && sum.release_mode);
    assert_int_equal(sum.crypt_cnt_bits, 3);
    efuse_plan_init(&p, c, &s);
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_XTS_AES_128_KEY, key, 32, NULL, E));
    OK(efuse_plan_key(&p, -1, KEY_PURPOSE_SECURE_BOOT_DIGEST0, digest, 32, NULL, E));
    OK(efuse_plan_set(&p, "SPI_BOOT_CRYPT_CNT", 1, E));
    OK(efuse_plan_set(&p, "WR_DIS", 1u << 4, E)); /* counter write-protected: release mode */
    OK(efuse_plan_set(&p, "SECURE_BOOT_EN", 1, E));
    OK(efuse_plan_set(&p, "SECURE_BOOT_KEY_REVOKE2", 1, E));
    OK(efuse_plan_set(&p, "DIS_PAD_JTAG", 1, E));
    OK(efuse_plan_set(&p, "ENABLE_SECURITY_DOWNLOAD", 1, E));
    OK(efuse_plan_finish(&p, E));
    efuse_summarize(c, &p.want, &sum);
    assert_true(sum.flash_encryption && sum.release_mode && sum.secure_boot);
    assert_true(sum.key_revoked[2] && !sum.key_revoked[0]);
    assert_true(sum.jtag_disabled && sum.secure_download && !sum.download_disabled);
    assert_int_equal(sum.key_purpose[0], 4);
    assert_int_equal(sum.key_purpose[1], 9);
    assert_true(sum.key_used[4] && sum.read_protected[4] && sum.write_protected[4]);
    assert_true(sum.key_used[5] && !sum.read_protected[5] && sum.write_protected[5]);
    assert_false(sum.key_used[6]);
    efuse_summary_describe(c, &sum, text, sizeof text);
    assert_non_null(strstr(text, "flash encryption on, release mode (SPI_BOOT_CRYPT_CNT 1/3 bits)"));
    assert_non_null(strstr(text, "Secure Boot on, digest 2 revoked"));
    assert_non_null(strstr(text, "download mode Secure Download Mode"));
    assert_non_null(strstr(text, "BLOCK_KEY0: used, purpose XTS_AES_128_KEY, read-protected, write-protected"));
    assert_non_null(strstr(text, "BLOCK_KEY1: used, purpose SECURE_BOOT_DIGEST0, write-protected"));
    /* read registers */
    assert_int_equal(efuse_block_read_addrs(c, NULL, 4, addrs), 8);
    assert_int_equal(addrs[0], 0x6000889Cu);
    assert_int_equal(addrs[7], 0x6000889Cu + 28);
    assert_int_equal(efuse_block_read_addrs(c, NULL, 0, addrs), 6);
    assert_int_equal(efuse_block_read_addrs(c, NULL, 11, addrs), 0);
    /* ESP32: development mode until FLASH_CRYPT_CNT is write-protected; 3/4 reads 6 words */
    memset(&s, 0, sizeof s);
    setbit(&s, 0, 20);
    efuse_summarize(e, &s, &sum);
    assert_true(sum.flash_encryption && !sum.release_mode);
    assert_int_equal(sum.crypt_cnt_len, 7);
    setbit(&s, 0, 2);
    setbit(&s, 0, 198);
    setbit(&s, 0, 27);
    efuse_summarize(e, &s, &sum);
    assert_true(sum.release_mode && sum.jtag_disabled && sum.download_disabled);
    assert_int_equal(efuse_block_read_addrs(e, &s, 1, addrs), 8);
    s.blk[0][24] = 1;
    assert_int_equal(efuse_block_read_addrs(e, &s, 1, addrs), 6);
    assert_int_equal(addrs[0], 0x3FF5A038u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_sane),    cmocka_unit_test(test_positions),
        cmocka_unit_test(test_c3_secure_plan), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_noop_plan),      cmocka_unit_test(test_s3_xts256),
        cmocka_unit_test(test_esp32_plans),    cmocka_unit_test(test_steps_and_verify),
        cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
