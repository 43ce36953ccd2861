/* SPDX-License-Identifier: MIT */
/* test_chip.c — unit tests of the chip table (jobs/proto/chip.c): detection, MAC and revision
 * decoding from constructed eFuse words, flash-size detection, header encodings and the SPI
 * register program (run against a small controller model). Must not: do I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chip.h"
#include "est_err.h"

#define KB(x) ((uint32_t)(x) << 10)
#define MB(x) ((uint32_t)(x) << 20)

static const chip_info_t *C(chip_id_t id)
{
    const chip_info_t *c = chip_get(id);
    assert_non_null(c);
    return c;
}

static void test_table_sanity(void **state)
{
    (void)state;
    for (int i = 0; i < CHIP__COUNT; i++) {
        const chip_info_t *c = C((chip_id_t)i);
        assert_int_equal(c->id, i);
        assert_ptr_equal(chip_by_name(c->name), c);
        assert_ptr_equal(chip_by_name(c->pretty), c);
        assert_non_null(c->freq_names);
        assert_non_null(c->freq_codes);
        assert_non_null(strstr(chip_names_list(), c->name));
        assert_int_equal(c->rom_flash_block, 0x400);
        assert_int_equal(c->stub_flash_block, 0x4000);
        assert_int_equal(c->ram_block, 0x1800);
        assert_true(c->max_flash_size >= MB(16));
        bool is8266 = i == CHIP_ESP8266, is32 = i == CHIP_ESP32;
        assert_int_equal(c->rom_status_len, is8266 ? 2 : 4);
        assert_int_equal(c->rom_begin_enc_word, !is8266 && !is32);
        assert_int_equal(c->rom_secinfo, !is8266 && !is32);
        assert_int_equal(c->rom_md5, !is8266);
        assert_int_equal(c->rom_spi_attach, !is8266);
        assert_int_equal(c->detect_by_magic, i <= CHIP_ESP32S2);
        if (c->image_chip_id >= 0)
            assert_ptr_equal(chip_by_image_id((uint32_t)c->image_chip_id), c);
    }
    assert_null(chip_get(CHIP_UNKNOWN));
    assert_null(chip_get(CHIP__COUNT));
    assert_null(chip_by_name("esp32c61"));
    assert_null(chip_by_name(NULL));
    /* Spot checks from PROTOCOL.md §5.3, §12. */
    assert_int_equal(C(CHIP_ESP8266)->image_chip_id, -1);
    assert_int_equal(C(CHIP_ESP32C3)->image_chip_id, 5);
    assert_int_equal(C(CHIP_ESP32P4)->image_chip_id, 18);
    assert_int_equal(C(CHIP_ESP32C5)->image_chip_id, 23);
    assert_int_equal(C(CHIP_ESP32)->bootloader_offset, 0x1000);
    assert_int_equal(C(CHIP_ESP32S2)->bootloader_offset, 0x1000);
    assert_int_equal(C(CHIP_ESP32S3)->bootloader_offset, 0);
    assert_int_equal(C(CHIP_ESP32C5)->bootloader_offset, 0x2000);
    assert_int_equal(C(CHIP_ESP32P4)->bootloader_offset, 0x2000);
    assert_int_equal(C(CHIP_ESP8266)->bootloader_offset, 0);
    assert_int_equal(C(CHIP_ESP32)->uart_clkdiv_reg, 0x3FF40014);
    assert_int_equal(C(CHIP_ESP32S2)->uart_clkdiv_reg, 0x3F400014);
    assert_int_equal(C(CHIP_ESP32C2)->uart_clkdiv_reg, 0x60000014);
    assert_int_equal(C(CHIP_ESP32S3)->max_flash_size, MB(128));
    assert_int_equal(C(CHIP_ESP32P4)->max_flash_size, MB(64));
    assert_int_equal(C(CHIP_ESP32C5)->max_flash_size, MB(32));
    assert_int_equal(C(CHIP_ESP32C3)->max_flash_size, MB(16));
}

static void test_detect_by_magic_and_id(void **state)
{
    (void)state;
    assert_ptr_equal(chip_by_magic(0xFFF0C101), C(CHIP_ESP8266));
    assert_ptr_equal(chip_by_magic(0x00F01D83), C(CHIP_ESP32));
    assert_ptr_equal(chip_by_magic(0x000007C6), C(CHIP_ESP32S2));
    /* Fallback to the magic values older esptool listed. */
    assert_ptr_equal(chip_by_magic(0x1B31506F), C(CHIP_ESP32C3));
    assert_ptr_equal(chip_by_magic(0x4361606F), C(CHIP_ESP32C3));
    assert_ptr_equal(chip_by_magic(0x0C21E06F), C(CHIP_ESP32C2));
    assert_ptr_equal(chip_by_magic(0x00000009), C(CHIP_ESP32S3));
    assert_ptr_equal(chip_by_magic(0x2CE0806F), C(CHIP_ESP32C6));
    assert_ptr_equal(chip_by_magic(0xD7B73E80), C(CHIP_ESP32H2));
    assert_ptr_equal(chip_by_magic(0x5FD1406F), C(CHIP_ESP32C5));
    /* Unknown values, and P4's unusable ones. */
    assert_null(chip_by_magic(0x12345678));
    assert_null(chip_by_magic(0x0));
    assert_null(chip_by_magic(0x0ADDBAD0));

    assert_ptr_equal(chip_by_image_id(0), C(CHIP_ESP32));
    assert_ptr_equal(chip_by_image_id(2), C(CHIP_ESP32S2));
    assert_ptr_equal(chip_by_image_id(9), C(CHIP_ESP32S3));
    assert_ptr_equal(chip_by_image_id(12), C(CHIP_ESP32C2));
    assert_ptr_equal(chip_by_image_id(13), C(CHIP_ESP32C6));
    assert_ptr_equal(chip_by_image_id(16), C(CHIP_ESP32H2));
    assert_null(chip_by_image_id(20)); /* C61: not in the table */
    assert_null(chip_by_image_id(0xFFFFFFFF));
}

static void mac_of(chip_id_t id, uint32_t w0, uint32_t w1, uint32_t w2, uint8_t mac[6], int exp_rc)
{
    const uint32_t words[CHIP_MAX_REGS] = {w0, w1, w2, 0};
    assert_int_equal(chip_mac_decode(C(id), words, mac), exp_rc);
}

static void test_mac_esp32_family(void **state)
{
    (void)state;
    uint32_t a[CHIP_MAX_REGS];
    assert_int_equal(chip_mac_regs(C(CHIP_ESP32), a), 2);
    assert_int_equal(a[0], 0x3FF5A004);
    assert_int_equal(a[1], 0x3FF5A008);
    const uint8_t exp[6] = {0x24, 0x0A, 0xC4, 0x12, 0x34, 0x56};
    uint8_t mac[6];
    /* ESP32: the MAC CRC8 in mac1[23:16] is ignored. */
    mac_of(CHIP_ESP32, 0xC4123456, 0x00AB240A, 0, mac, 0);
    assert_memory_equal(mac, exp, 6);
    /* C6: mac1[31:16] is MAC_EXT (FF:FE), not part of the MAC. */
    mac_of(CHIP_ESP32C6, 0xC4123456, 0xFFFE240A, 0, mac, 0);
    assert_memory_equal(mac, exp, 6);
    const struct {
        chip_id_t id;
        uint32_t base;
    } bases[] = {
        {CHIP_ESP32S2, 0x3F41A044}, {CHIP_ESP32S3, 0x60007044}, {CHIP_ESP32C3, 0x60008844},
        {CHIP_ESP32C2, 0x60008840}, {CHIP_ESP32C6, 0x600B0844}, {CHIP_ESP32H2, 0x600B0844},
        {CHIP_ESP32C5, 0x600B4844}, {CHIP_ESP32P4, 0x5012D044},
    };
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        assert_int_equal(chip_mac_regs(C(bases[i].id), a), 2);
        assert_int_equal(a[0], bases[i].base);
        assert_int_equal(a[1], bases[i].base + 4);
        mac_of(bases[i].id, 0xC4123456, 0x0000240A, 0, mac, 0);
        assert_memory_equal(mac, exp, 6);
    }
}

static void test_mac_esp8266(void **state)
{
    (void)state;
    uint32_t a[CHIP_MAX_REGS];
    assert_int_equal(chip_mac_regs(C(CHIP_ESP8266), a), 3);
    assert_int_equal(a[0], 0x3FF00050);
    assert_int_equal(a[1], 0x3FF00054);
    assert_int_equal(a[2], 0x3FF0005C);
    uint8_t mac[6];
    /* OUI from mac3 when it is non-zero. */
    const uint8_t e1[6] = {0x5C, 0xCF, 0x7F, 0x12, 0x34, 0x56};
    mac_of(CHIP_ESP8266, 0x56000000, 0x00AA1234, 0x005CCF7F, mac, 0);
    assert_memory_equal(mac, e1, 6);
    /* mac3 == 0: mac1[23:16] selects 18:FE:34 (0) or AC:D0:74 (1). */
    const uint8_t e2[6] = {0x18, 0xFE, 0x34, 0x12, 0x34, 0x56};
    mac_of(CHIP_ESP8266, 0x56ABCDEF, 0x00001234, 0, mac, 0);
    assert_memory_equal(mac, e2, 6);
    const uint8_t e3[6] = {0xAC, 0xD0, 0x74, 0x12, 0x34, 0x56};
    mac_of(CHIP_ESP8266, 0x56000000, 0x00011234, 0, mac, 0);
    assert_memory_equal(mac, e3, 6);
    /* Anything else is an unknown OUI. */
    mac_of(CHIP_ESP8266, 0x56000000, 0x00021234, 0, mac, EST_ECHIP);
    mac_of(CHIP_ESP8266, 0x56000000, 0x00FF1234, 0, mac, EST_ECHIP);
}

static unsigned rev_of(chip_id_t id, uint32_t w0, uint32_t w1, uint32_t w2)
{
    const uint32_t words[CHIP_MAX_REGS] = {w0, w1, w2, 0};
    return chip_rev_decode(C(id), words);
}

static void test_revision(void **state)
{
    (void)state;
    uint32_t a[CHIP_MAX_REGS];
    /* ESP32: b0 = W3[15], b1 = W5[20], b2 = DATE[31]; 0→0, 1→1, 3→2, 7→3, else 0. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32), a), 3);
    assert_int_equal(a[0], 0x3FF5A00C);
    assert_int_equal(a[1], 0x3FF5A014);
    assert_int_equal(a[2], 0x3FF6607C);
    assert_int_equal(rev_of(CHIP_ESP32, 0, 0, 0), 0);
    assert_int_equal(rev_of(CHIP_ESP32, 1u << 15, 0, 0), 100);
    assert_int_equal(rev_of(CHIP_ESP32, 1u << 15, 1u << 20 | 1u << 24, 0), 201);
    assert_int_equal(rev_of(CHIP_ESP32, 1u << 15, 1u << 20 | 1u << 24, 1u << 31), 301);
    assert_int_equal(rev_of(CHIP_ESP32, 0, 1u << 20, 0), 0);        /* b = 2 */
    assert_int_equal(rev_of(CHIP_ESP32, 0, 3u << 24, 1u << 31), 3); /* b = 4, minor 3 */
    /* ESP32-S2: major W3[19:18], minor W3[20]*8 + W4[6:4]. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32S2), a), 2);
    assert_int_equal(a[0], 0x3F41A050);
    assert_int_equal(a[1], 0x3F41A054);
    assert_int_equal(rev_of(CHIP_ESP32S2, 1u << 18 | 1u << 20, 3u << 4, 0), 111);
    assert_int_equal(rev_of(CHIP_ESP32S2, 0, 1u << 4, 0), 1);
    /* ESP32-S3: words W3, W5, BLK_VERSION_MAJOR word. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32S3), a), 3);
    assert_int_equal(a[0], 0x60007050);
    assert_int_equal(a[1], 0x60007058);
    assert_int_equal(a[2], 0x6000706C);
    assert_int_equal(rev_of(CHIP_ESP32S3, 2u << 18, 1u << 24, 0), 102);
    assert_int_equal(rev_of(CHIP_ESP32S3, 2u << 18, 1u << 24 | 1u << 23, 0), 110);
    /* v0.0 work-around: block version v1.1 and minor&7 == 0 → 0 even with the major bits set. */
    assert_int_equal(rev_of(CHIP_ESP32S3, 1u << 24, 1u << 24, 1), 0);
    assert_int_equal(rev_of(CHIP_ESP32S3, 1u << 24, 1u << 24 | 1u << 23, 1), 0);
    assert_int_equal(rev_of(CHIP_ESP32S3, 1u << 24, 1u << 24, 0), 100); /* blk major 0 */
    assert_int_equal(rev_of(CHIP_ESP32S3, 1u << 24 | 1u << 18, 1u << 24, 1), 101);
    /* ESP32-C3: major W5[25:24], minor W5[23]*8 + W3[20:18]. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32C3), a), 2);
    assert_int_equal(a[0], 0x60008850);
    assert_int_equal(a[1], 0x60008858);
    assert_int_equal(rev_of(CHIP_ESP32C3, 3u << 18, 1u << 23, 0), 11);
    assert_int_equal(rev_of(CHIP_ESP32C3, 4u << 18, 0, 0), 4);
    /* ESP32-C2: W1 of BLOCK2, major [21:20], minor [19:16]. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32C2), a), 1);
    assert_int_equal(a[0], 0x60008844);
    assert_int_equal(rev_of(CHIP_ESP32C2, 1u << 20 | 2u << 16, 0, 0), 102);
    /* ESP32-C6 vs H2: same word, different fields. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32C6), a), 1);
    assert_int_equal(a[0], 0x600B0850);
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32H2), a), 1);
    assert_int_equal(a[0], 0x600B0850);
    assert_int_equal(rev_of(CHIP_ESP32C6, 1u << 22 | 2u << 18, 0, 0), 102);
    assert_int_equal(rev_of(CHIP_ESP32H2, 1u << 21 | 2u << 18, 0, 0), 102);
    assert_int_equal(rev_of(CHIP_ESP32H2, 1u << 22 | 2u << 18, 0, 0), 202);
    /* ESP32-C5: W2[5:4] / W2[3:0]; ESP32-P4: major W2[23]*4 + W2[5:4]. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32C5), a), 1);
    assert_int_equal(a[0], 0x600B484C);
    assert_int_equal(rev_of(CHIP_ESP32C5, 1u << 4 | 2, 0, 0), 102);
    assert_int_equal(chip_rev_regs(C(CHIP_ESP32P4), a), 1);
    assert_int_equal(a[0], 0x5012D04C);
    assert_int_equal(rev_of(CHIP_ESP32P4, 3u << 4 | 2, 0, 0), 302);
    assert_int_equal(rev_of(CHIP_ESP32P4, 1u << 23 | 1, 0, 0), 401);
    /* ESP8266: no revision layout. */
    assert_int_equal(chip_rev_regs(C(CHIP_ESP8266), a), 0);
    assert_int_equal(rev_of(CHIP_ESP8266, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), 0);
}

static void test_flash_size_from_jedec(void **state)
{
    (void)state;
    assert_int_equal(chip_flash_size_from_jedec(0x1640EF), MB(4));  /* Winbond W25Q32 */
    assert_int_equal(chip_flash_size_from_jedec(0x1840C8), MB(16)); /* GigaDevice */
    assert_int_equal(chip_flash_size_from_jedec(0x1260C8), KB(256));
    assert_int_equal(chip_flash_size_from_jedec(0x134020), KB(512)); /* XMC */
    assert_int_equal(chip_flash_size_from_jedec(0x3980C2), MB(32));
    assert_int_equal(chip_flash_size_from_jedec(0x2040EF), MB(64));
    assert_int_equal(chip_flash_size_from_jedec(0x1B40EF), MB(128));
    assert_int_equal(chip_flash_size_from_jedec(0x2240EF), MB(256));
    assert_int_equal(chip_flash_size_from_jedec(0x3A40EF), MB(64));
    /* Unknown capacity codes: 0 (the caller falls back to 4MB like esptool). */
    assert_int_equal(chip_flash_size_from_jedec(0x1140EF), 0);
    assert_int_equal(chip_flash_size_from_jedec(0x2340EF), 0);
    /* Adesto (0x1F): size from bits 12:8 of the ID. AT25SF041 = 1F 84 01 → 512KB, although
     * the capacity byte 0x01 means nothing in the normal table. */
    assert_int_equal(chip_flash_size_from_jedec(0x01841F), KB(512));
    assert_int_equal(chip_flash_size_from_jedec(0x01891F), MB(16));
    assert_int_equal(chip_flash_size_from_jedec(0x16861F), MB(2)); /* not the 0x16 = 4MB rule */
    assert_int_equal(chip_flash_size_from_jedec(0x01831F), 0);
    /* "Flash not talking". */
    assert_true(chip_jedec_invalid(0x000000));
    assert_true(chip_jedec_invalid(0xFFFFFF));
    assert_true(chip_jedec_invalid(0xFFFF3F));
    assert_false(chip_jedec_invalid(0x1640EF));
    assert_int_equal(chip_flash_size_from_jedec(0xFFFFFF), 0);
    assert_int_equal(chip_flash_size_from_jedec(0x000000), 0);
    assert_int_equal(chip_flash_size_from_jedec(0xFFFF3F), 0);
}

static void test_header_encodings(void **state)
{
    (void)state;
    assert_int_equal(chip_flash_mode_code("qio"), 0);
    assert_int_equal(chip_flash_mode_code("qout"), 1);
    assert_int_equal(chip_flash_mode_code("dio"), 2);
    assert_int_equal(chip_flash_mode_code("dout"), 3);
    assert_int_equal(chip_flash_mode_code("opi"), -1);
    assert_int_equal(chip_flash_mode_code(NULL), -1);

    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32), "80m"), 0xF);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32), "26m"), 0x1);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP8266), "20m"), 0x2);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C2), "60m"), 0xF);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C2), "15m"), 0x2);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C2), "80m"), -1);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32H2), "48m"), 0xF);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32H2), "16m"), 0x1);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C6), "80m"), 0x0); /* ROM divider bug */
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C6), "40m"), 0x0);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C6), "26m"), -1);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C5), "26m"), -1);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32C5), "80m"), 0xF);
    assert_int_equal(chip_flash_freq_code(C(CHIP_ESP32P4), "80m"), 0xF);

    /* Size codes: the ESP8266 table differs (PROTOCOL.md §12). */
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), KB(512)), 0x0);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), KB(256)), 0x1);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), MB(1)), 0x2);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), MB(4)), 0x4);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), MB(8)), 0x8);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), MB(16)), 0x9);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP8266), MB(32)), -1);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP32), MB(1)), 0x0);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP32), MB(4)), 0x2);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP32S3), MB(128)), 0x7);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP32), KB(512)), -1);
    assert_int_equal(chip_flash_size_code(C(CHIP_ESP32), MB(3)), -1);
    assert_int_equal(chip_flash_size_code_name(C(CHIP_ESP8266), "2MB-c1"), 0x5);
    assert_int_equal(chip_flash_size_code_name(C(CHIP_ESP8266), "4MB-c1"), 0x6);
    assert_int_equal(chip_flash_size_code_name(C(CHIP_ESP8266), "2MB"), 0x3);
    assert_int_equal(chip_flash_size_code_name(C(CHIP_ESP32), "2MB-c1"), -1);
    assert_int_equal(chip_flash_size_code_name(C(CHIP_ESP32), "16MB"), 0x4);

    assert_int_equal(chip_parse_size("256KB"), KB(256));
    assert_int_equal(chip_parse_size("512KB"), KB(512));
    assert_int_equal(chip_parse_size("1MB"), MB(1));
    assert_int_equal(chip_parse_size("4MB"), MB(4));
    assert_int_equal(chip_parse_size("128MB"), MB(128));
    assert_int_equal(chip_parse_size("3MB"), 0);
    assert_int_equal(chip_parse_size("256MB"), 0);
    assert_int_equal(chip_parse_size("2MB-c1"), 0);
    assert_int_equal(chip_parse_size("detect"), 0);
    assert_int_equal(chip_parse_size(""), 0);
    assert_int_equal(chip_parse_size(NULL), 0);
}

/* A tiny model of the SPI flash controller, enough to run a step program: writing CMD with the
 * USR bit "executes" the configured user command and clears the bit. */
typedef struct {
    const chip_info_t *c;
    uint32_t user, user1, user2, miso_dlen, w0, cmd;
    uint32_t jedec;
    int executed;
} spi_model_t;

static uint32_t *model_reg(spi_model_t *m, uint32_t addr)
{
    const chip_spi_regs_t *s = &m->c->spi;
    uint32_t off = addr - s->base;
    if (off == s->user) return &m->user;
    if (off == s->user1) return &m->user1;
    if (off == s->user2) return &m->user2;
    if (off == s->w0) return &m->w0;
    if (off == s->cmd) return &m->cmd;
    if (s->has_dlen && off == s->miso_dlen) return &m->miso_dlen;
    fail_msg("unexpected register 0x%08x", addr);
    return NULL;
}

static void model_exec(spi_model_t *m)
{
    unsigned bits;
    if (m->c->spi.has_dlen)
        bits = m->miso_dlen + 1;
    else
        bits = ((m->user1 >> 8) & 0x1FF) + 1;
    assert_int_equal(m->user2 >> 28, 7); /* 8-bit command phase */
    assert_true(m->user & (1u << 31));   /* USR_COMMAND */
    assert_true(m->user & (1u << 28));   /* USR_MISO */
    assert_false(m->user & (1u << 30));  /* no address */
    assert_false(m->user & (1u << 29));  /* no dummy */
    assert_false(m->user & (1u << 27));  /* no MOSI */
    assert_int_equal(m->user2 & 0xFF, 0x9F);
    assert_int_equal(bits, 24);
    m->w0 = m->jedec;
    m->executed++;
}

static uint32_t run_program(spi_model_t *m, const chip_spi_step_t *st, size_t n)
{
    uint32_t saved[2] = {0, 0}, result = 0xDEADBEEF;
    for (size_t i = 0; i < n; i++) {
        uint32_t *r = model_reg(m, st[i].addr);
        switch (st[i].op) {
        case CHIP_SPI_SAVE: saved[st[i].slot] = *r; break;
        case CHIP_SPI_WRITE:
            *r = st[i].value;
            if (r == &m->cmd && (m->cmd & (1u << 18))) {
                model_exec(m);
                m->cmd &= ~(1u << 18);
            }
            break;
        case CHIP_SPI_POLL: assert_int_equal(*r & st[i].value, 0); break;
        case CHIP_SPI_RESULT: result = *r; break;
        case CHIP_SPI_RESTORE: *r = saved[st[i].slot]; break;
        }
    }
    return result;
}

static void check_program(chip_id_t id, const chip_spi_step_t *exp, size_t n_exp)
{
    chip_spi_step_t st[CHIP_SPI_MAX_STEPS];
    size_t n = chip_spi_cmd_steps(C(id), 0x9F, 24, st);
    assert_int_equal(n, n_exp);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(st[i].op, exp[i].op);
        assert_int_equal(st[i].addr, exp[i].addr);
        assert_int_equal(st[i].value, exp[i].value);
        if (st[i].op == CHIP_SPI_SAVE || st[i].op == CHIP_SPI_RESTORE)
            assert_int_equal(st[i].slot, exp[i].slot);
    }
    /* Run it: the JEDEC ID comes back and USER/USER2 are restored. */
    spi_model_t m = {.c = C(id), .user = 0x80000040, .user2 = 0x70000003, .jedec = 0x1640EF};
    assert_int_equal(run_program(&m, st, n), 0x1640EF);
    assert_int_equal(m.executed, 1);
    assert_int_equal(m.user, 0x80000040);
    assert_int_equal(m.user2, 0x70000003);
}

static void test_spi_program(void **state)
{
    (void)state;
    /* ESP32: lengths in MISO_DLEN, W0 at +0x80. */
    const chip_spi_step_t esp32[] = {
        {CHIP_SPI_SAVE, 0x3FF4201C, 0, 0},           {CHIP_SPI_SAVE, 0x3FF42024, 0, 1},
        {CHIP_SPI_WRITE, 0x3FF4202C, 23, 0},         {CHIP_SPI_WRITE, 0x3FF4201C, 0x90000000, 0},
        {CHIP_SPI_WRITE, 0x3FF42024, 0x7000009F, 0}, {CHIP_SPI_WRITE, 0x3FF42080, 0, 0},
        {CHIP_SPI_WRITE, 0x3FF42000, 0x40000, 0},    {CHIP_SPI_POLL, 0x3FF42000, 0x40000, 0},
        {CHIP_SPI_RESULT, 0x3FF42080, 0, 0},         {CHIP_SPI_RESTORE, 0x3FF4201C, 0, 0},
        {CHIP_SPI_RESTORE, 0x3FF42024, 0, 1},
    };
    check_program(CHIP_ESP32, esp32, sizeof(esp32) / sizeof(esp32[0]));
    /* ESP8266: no DLEN registers, MISO length - 1 at bit 8 of USER1; W0 at +0x40. */
    const chip_spi_step_t esp8266[] = {
        {CHIP_SPI_SAVE, 0x6000021C, 0, 0},           {CHIP_SPI_SAVE, 0x60000224, 0, 1},
        {CHIP_SPI_WRITE, 0x60000220, 23u << 8, 0},   {CHIP_SPI_WRITE, 0x6000021C, 0x90000000, 0},
        {CHIP_SPI_WRITE, 0x60000224, 0x7000009F, 0}, {CHIP_SPI_WRITE, 0x60000240, 0, 0},
        {CHIP_SPI_WRITE, 0x60000200, 0x40000, 0},    {CHIP_SPI_POLL, 0x60000200, 0x40000, 0},
        {CHIP_SPI_RESULT, 0x60000240, 0, 0},         {CHIP_SPI_RESTORE, 0x6000021C, 0, 0},
        {CHIP_SPI_RESTORE, 0x60000224, 0, 1},
    };
    check_program(CHIP_ESP8266, esp8266, sizeof(esp8266) / sizeof(esp8266[0]));
    /* ESP32-S3: S2-style offsets at 0x60002000, W0 at +0x58. */
    const chip_spi_step_t s3[] = {
        {CHIP_SPI_SAVE, 0x60002018, 0, 0},           {CHIP_SPI_SAVE, 0x60002020, 0, 1},
        {CHIP_SPI_WRITE, 0x60002028, 23, 0},         {CHIP_SPI_WRITE, 0x60002018, 0x90000000, 0},
        {CHIP_SPI_WRITE, 0x60002020, 0x7000009F, 0}, {CHIP_SPI_WRITE, 0x60002058, 0, 0},
        {CHIP_SPI_WRITE, 0x60002000, 0x40000, 0},    {CHIP_SPI_POLL, 0x60002000, 0x40000, 0},
        {CHIP_SPI_RESULT, 0x60002058, 0, 0},         {CHIP_SPI_RESTORE, 0x60002018, 0, 0},
        {CHIP_SPI_RESTORE, 0x60002020, 0, 1},
    };
    check_program(CHIP_ESP32S3, s3, sizeof(s3) / sizeof(s3[0]));
    /* Every chip's program runs against the model. */
    for (int i = 0; i < CHIP__COUNT; i++) {
        chip_spi_step_t st[CHIP_SPI_MAX_STEPS];
        size_t n = chip_spi_cmd_steps(C((chip_id_t)i), 0x9F, 24, st);
        spi_model_t m = {.c = C((chip_id_t)i), .jedec = 0x1840C8};
        assert_int_equal(run_program(&m, st, n), 0x1840C8);
    }
    /* No read phase: no MISO bit, no MISO length; too many bits: refused. */
    chip_spi_step_t st[CHIP_SPI_MAX_STEPS];
    size_t n = chip_spi_cmd_steps(C(CHIP_ESP32), 0x06, 0, st);
    assert_int_equal(n, 10);
    assert_int_equal(st[2].addr, 0x3FF4201C);
    assert_int_equal(st[2].value, 0x80000000);
    assert_int_equal(st[3].value, 0x70000006);
    assert_int_equal(chip_spi_cmd_steps(C(CHIP_ESP32), 0x9F, 33, st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_sanity),     cmocka_unit_test(test_detect_by_magic_and_id),
        cmocka_unit_test(test_mac_esp32_family), cmocka_unit_test(test_mac_esp8266),
        cmocka_unit_test(test_revision),         cmocka_unit_test(test_flash_size_from_jedec),
        cmocka_unit_test(test_header_encodings), cmocka_unit_test(test_spi_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
