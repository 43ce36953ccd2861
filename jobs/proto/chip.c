/* SPDX-License-Identifier: MIT */
/* chip.c — the chip table and pure decoders for MAC, revision, flash size and the SPI "user
 * command" register program (PROTOCOL.md §4.1, §4.3, §5, §6, §7, §12; values checked against
 * esptool's the esptool target classes). Must not: do I/O, keep mutable state, or decide policy
 * (which command to send when is the job's business). */
#include "chip.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "est_err.h"

#define KB(x) ((uint32_t)(x) << 10)
#define MB(x) ((uint32_t)(x) << 20)

/* Flash frequency names and header codes (PROTOCOL.md §12). */
static const char *const chip__freq_names_std[] = {"80m", "40m", "26m", "20m", NULL};
static const uint8_t chip__freq_codes_std[] = {0xF, 0x0, 0x1, 0x2};
static const char *const chip__freq_names_c2[] = {"60m", "30m", "20m", "15m", NULL};
static const uint8_t chip__freq_codes_c2[] = {0xF, 0x0, 0x1, 0x2};
static const char *const chip__freq_names_h2[] = {"48m", "24m", "16m", "12m", NULL};
static const uint8_t chip__freq_codes_h2[] = {0xF, 0x0, 0x1, 0x2};
static const char *const chip__freq_names_c5[] = {"80m", "40m", "20m", NULL};
static const uint8_t chip__freq_codes_c5[] = {0xF, 0x0, 0x2};
/* ESP32-C6: esptool maps 80m to code 0x0 like 40m, working around a wrong MSPI divider in the
 * ROM (PROTOCOL.md §12; esptool targets/esp32c6.py FLASH_FREQUENCY). */
static const char *const chip__freq_names_c6[] = {"80m", "40m", "20m", NULL};
static const uint8_t chip__freq_codes_c6[] = {0x0, 0x0, 0x2};

/* SPI controller layouts (PROTOCOL.md §7.1). Offsets: cmd, addr, ctrl, user, user1, user2,
 * mosi_dlen, miso_dlen, w0. */
#define CHIP__SPI_S2_LAYOUT(b)                                                                     \
    {                                                                                              \
        (b), 0x00, 0x04, 0x08, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x58, true, false                     \
    }

/* ROM command support (PROTOCOL.md §4.1): ESP32-S2 and later ROMs support everything listed, and
 * need the 5th FLASH_BEGIN word. */
#define CHIP__ROM_S2PLUS                                                                           \
    .rom_status_len = 4, .rom_secinfo = true, .rom_defl = true, .rom_md5 = true,                   \
    .rom_spi_attach = true, .rom_set_params = true, .rom_change_baud = true,                       \
    .rom_read_flash_slow = true, .rom_begin_enc_word = true

#define CHIP__BLOCKS .rom_flash_block = 0x400, .stub_flash_block = 0x4000, .ram_block = 0x1800

/* ---- formula hooks of the chip table (chip_hooks_t) --------------------------------------- */

static const chip_hooks_t chip__hooks_none = {0};

/* ESP32: the ROM does not attach in-package flash (PICO-D4, D2WD, U4WDH) by itself; esptool
 * builds SPI_ATTACH's pin word from the SPI-pad eFuses, BLK0 words 5 and 3 (PROTOCOL.md §4.2). */
#define CHIP__ESP32_EFUSE_RDATA5 0x3FF5A014u
#define CHIP__ESP32_EFUSE_RDATA3 0x3FF5A00Cu

static bool chip__esp32_attach_prog(rp_prog_t *p)
{
    rp_init(p);
    rp_read(p, CHIP__ESP32_EFUSE_RDATA5, 0);
    rp_read(p, CHIP__ESP32_EFUSE_RDATA3, 1);
    return true;
}

static uint32_t chip__esp32_attach_config(const uint32_t slots[RP_MAX_SLOTS])
{
    uint32_t w5 = slots[0], w3 = slots[1];
    uint32_t clk = w5 & 0x1F, q = w5 >> 5 & 0x1F, d = w5 >> 10 & 0x1F, cs = w5 >> 15 & 0x1F;
    uint32_t hd = w3 >> 4 & 0x1F;
    if (!clk && !q && !d && !cs && !hd) return 0; /* default pins */
    return hd << 24 | cs << 18 | d << 12 | q << 6 | clk;
}

/* Crystal estimate from UART_CLKDIV at the rate it was read at (PROTOCOL.md §5.6, §9). */
static unsigned chip__xtal_mhz(const chip_info_t *c, uint32_t cur_baud, uint32_t clkdiv)
{
    uint64_t hz = (uint64_t)cur_baud * (clkdiv & 0xFFFFF);
    unsigned mhz;
    if (c->id == CHIP_ESP8266) hz /= 2;
    mhz = (unsigned)(hz / 1000000);
    return mhz > 45 ? 48 : mhz > 33 ? 40 : 26;
}

/* ESP32: the ROM derives its divider from the drifting 8 MHz clock (esptool >= 4.5): RTC_CNTL
 * calibration [31:7] and the CK8M frequency in eFuse word 4 [7:0]. */
static bool chip__esp32_clock_prog(const chip_info_t *c, rp_prog_t *p)
{
    (void)c;
    rp_init(p);
    rp_read(p, 0x3FF5F06C, 0);
    rp_read(p, 0x3FF5A010, 1);
    return true;
}

static void chip__esp32_clock(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS],
                              uint32_t cur_baud, uint64_t corr[2])
{
    uint64_t cali = slots[0] >> 7 & 0x1FFFFFF, ck8m = slots[1] & 0xFF;
    (void)c, (void)cur_baud;
    if (cali && ck8m) {
        uint64_t rom_freq = cali * 15625 * ck8m / 40;
        corr[0] = rom_freq;
        corr[1] = rom_freq > 33000000 ? 40000000 : 26000000;
    }
}

/* ESP32-C2: with a 26 MHz crystal the ROM still believes it has 40 MHz. */
static bool chip__clkdiv_prog(const chip_info_t *c, rp_prog_t *p)
{
    rp_init(p);
    rp_read(p, c->uart_clkdiv_reg, 0);
    return true;
}

static void chip__c2_clock(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS],
                           uint32_t cur_baud, uint64_t corr[2])
{
    if (chip__xtal_mhz(c, cur_baud, slots[0]) == 26) {
        corr[0] = 40;
        corr[1] = 26;
    }
}

/* ESP32-C5: the crystal the ROM assumes (MHz in [30:24] of 0x60096110) against the real one. */
static bool chip__c5_clock_prog(const chip_info_t *c, rp_prog_t *p)
{
    rp_init(p);
    rp_read(p, 0x60096110, 0);
    rp_read(p, c->uart_clkdiv_reg, 1);
    return true;
}

static void chip__c5_clock(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS],
                           uint32_t cur_baud, uint64_t corr[2])
{
    unsigned rom = slots[0] >> 24 & 0x7F, real = chip__xtal_mhz(c, cur_baud, slots[1]);
    if ((real == 48 && rom == 40) || (real == 40 && rom == 48)) {
        corr[0] = rom;
        corr[1] = real;
    }
}

/* esptool's stub exclusions (PROTOCOL.md §8.3, §14.23). */
static const char *chip__c3_stub_exclusion(unsigned rev, bool secure_boot)
{
    (void)rev;
    return secure_boot ? "ESP32-C3 with Secure Boot enabled: esptool does not run the stub there"
                       : NULL;
}

static const char *chip__s3_stub_exclusion(unsigned rev, bool secure_boot)
{
    (void)rev;
    return secure_boot ? "ESP32-S3 with Secure Boot enabled needs esptool's ROM-hook start, which "
                         "this station does not do"
                       : NULL;
}

static const char *chip__c2_stub_exclusion(unsigned rev, bool secure_boot)
{
    (void)secure_boot;
    return rev < 100 ? "ESP32-C2 revision v0.x: esptool does not run the stub there" : NULL;
}

static const chip_hooks_t chip__hooks_esp32 = {
    .attach_prog = chip__esp32_attach_prog,
    .attach_config = chip__esp32_attach_config,
    .clock_prog = chip__esp32_clock_prog,
    .clock_correction = chip__esp32_clock,
};
static const chip_hooks_t chip__hooks_c2 = {.clock_prog = chip__clkdiv_prog,
                                            .clock_correction = chip__c2_clock,
                                            .stub_exclusion = chip__c2_stub_exclusion};
static const chip_hooks_t chip__hooks_c3 = {.stub_exclusion = chip__c3_stub_exclusion};
static const chip_hooks_t chip__hooks_s3 = {.stub_exclusion = chip__s3_stub_exclusion};
static const chip_hooks_t chip__hooks_c5 = {.clock_prog = chip__c5_clock_prog,
                                            .clock_correction = chip__c5_clock};

/* Magic words (PROTOCOL.md §5.2). Only ESP8266, ESP32 and ESP32-S2 are detected by magic in current
 * esptool (detect_by_magic). The other chips keep the values esptool <= v4.8 listed; chip_by_magic
 * uses them only as a fallback (see there). ESP32-P4 has no usable magic value. */
static const chip_info_t chip__table[CHIP__COUNT] = {
    [CHIP_ESP8266] =
        {
            .id = CHIP_ESP8266,
            .name = "esp8266",
            .pretty = "ESP8266",
            .image_chip_id = -1,
            .detect_by_magic = true,
            .magic = {0xFFF0C101},
            .n_magic = 1,
            .rom_status_len = 2,
            .rom_erase_size_bug = true,
            /* PROTOCOL.md §4.1: the ESP8266 ROM has only the basic commands; SPI_ATTACH is replaced
             * by FLASH_BEGIN(0,0). */
            .mac_layout = CHIP_MAC_ESP8266,
            .mac_base = 0x3FF00050,
            .spi = {0x60000200, 0x00, 0x04, 0x08, 0x1C, 0x20, 0x24, 0, 0, 0x40, false, true},
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_none,
        },
    [CHIP_ESP32] =
        {
            .id = CHIP_ESP32,
            .name = "esp32",
            .pretty = "ESP32",
            .image_chip_id = 0,
            .detect_by_magic = true,
            .magic = {0x00F01D83},
            .n_magic = 1,
            .rom_status_len = 4,
            .rom_defl = true,
            .rom_md5 = true,
            .rom_spi_attach = true,
            .rom_set_params = true,
            .rom_change_baud = true,
            .rom_read_flash_slow = true,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x3FF5A004,
            .spi = {0x3FF42000, 0x00, 0x04, 0x08, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x80, true, true},
            .bootloader_offset = 0x1000,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x3FF40014,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_esp32,
        },
    [CHIP_ESP32S2] =
        {
            .id = CHIP_ESP32S2,
            .name = "esp32s2",
            .pretty = "ESP32-S2",
            .image_chip_id = 2,
            .detect_by_magic = true,
            .magic = {0x000007C6},
            .n_magic = 1,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x3F41A044,
            .spi = CHIP__SPI_S2_LAYOUT(0x3F402000),
            .bootloader_offset = 0x1000,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x3F400014,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(128),
            .hooks = &chip__hooks_none,
        },
    [CHIP_ESP32S3] =
        {
            .id = CHIP_ESP32S3,
            .name = "esp32s3",
            .pretty = "ESP32-S3",
            .image_chip_id = 9,
            .magic = {0x00000009},
            .n_magic = 1,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x60007044,
            .spi = CHIP__SPI_S2_LAYOUT(0x60002000),
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(128),
            .addr32 = CHIP_ADDR32_STUB,
            .hooks = &chip__hooks_s3,
        },
    [CHIP_ESP32C2] =
        {
            .id = CHIP_ESP32C2,
            .name = "esp32c2",
            .pretty = "ESP32-C2",
            .image_chip_id = 12,
            .magic = {0x6F51306F, 0x7C41A06F, 0x0C21E06F},
            .n_magic = 3,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x60008840,
            .spi = CHIP__SPI_S2_LAYOUT(0x60002000),
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_c2,
            .freq_codes = chip__freq_codes_c2,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_c2,
        },
    [CHIP_ESP32C3] =
        {
            .id = CHIP_ESP32C3,
            .name = "esp32c3",
            .pretty = "ESP32-C3",
            .image_chip_id = 5,
            .magic = {0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F},
            .n_magic = 4,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x60008844,
            .spi = CHIP__SPI_S2_LAYOUT(0x60002000),
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_c3,
        },
    [CHIP_ESP32C6] =
        {
            .id = CHIP_ESP32C6,
            .name = "esp32c6",
            .pretty = "ESP32-C6",
            .image_chip_id = 13,
            .magic = {0x2CE0806F},
            .n_magic = 1,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x600B0844,
            .spi = CHIP__SPI_S2_LAYOUT(0x60003000),
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            /* Not in PROTOCOL.md §5.6: esptool's C6 class inherits the C3 value (UART0 at
             * 0x60000000) and reports a fixed 40 MHz crystal without reading it. */
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_c6,
            .freq_codes = chip__freq_codes_c6,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_none,
        },
    [CHIP_ESP32H2] =
        {
            .id = CHIP_ESP32H2,
            .name = "esp32h2",
            .pretty = "ESP32-H2",
            .image_chip_id = 16,
            .magic = {0xD7B73E80},
            .n_magic = 1,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x600B0844,
            .spi = CHIP__SPI_S2_LAYOUT(0x60003000),
            .bootloader_offset = 0x0,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014, /* inherited as on C6; crystal fixed at 32 MHz */
            .freq_names = chip__freq_names_h2,
            .freq_codes = chip__freq_codes_h2,
            .max_flash_size = MB(16),
            .hooks = &chip__hooks_none,
        },
    [CHIP_ESP32C5] =
        {
            .id = CHIP_ESP32C5,
            .name = "esp32c5",
            .pretty = "ESP32-C5",
            .image_chip_id = 23,
            .magic = {0x1101406F, 0x5FD1406F},
            .n_magic = 2,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x600B4844,
            .spi = CHIP__SPI_S2_LAYOUT(0x60003000),
            .bootloader_offset = 0x2000,
            CHIP__BLOCKS,
            .uart_clkdiv_reg = 0x60000014,
            .freq_names = chip__freq_names_c5,
            .freq_codes = chip__freq_codes_c5,
            .max_flash_size = MB(32),
            /* the legacy stub turns its 32-bit mode on only from ROM ECO 2 (stub_flasher.c:
             * `_rom_eco_version >= 2 && flash_larger_than_16mb()`); `_rom_eco_version` at
             * 0x40000014 (the stub's rom_32c5.ld), PROTOCOL.md §14.12 */
            .addr32 = CHIP_ADDR32_STUB_ECO2,
            .rom_eco_reg = 0x40000014,
            .hooks = &chip__hooks_c5,
        },
    [CHIP_ESP32P4] =
        {
            .id = CHIP_ESP32P4,
            .name = "esp32p4",
            .pretty = "ESP32-P4",
            .image_chip_id = 18,
            .n_magic = 0,
            CHIP__ROM_S2PLUS,
            .mac_layout = CHIP_MAC_ESP32FAM,
            .mac_base = 0x5012D044,
            .spi = CHIP__SPI_S2_LAYOUT(0x5008D000),
            .bootloader_offset = 0x2000,
            CHIP__BLOCKS,
            /* Unknown: PROTOCOL.md §5.6 has no P4 value (esptool reports a fixed 40 MHz crystal).
             */
            .uart_clkdiv_reg = 0,
            .freq_names = chip__freq_names_std,
            .freq_codes = chip__freq_codes_std,
            .max_flash_size = MB(64),
            .addr32 = CHIP_ADDR32_STUB,
            .hooks = &chip__hooks_none,
        },
};

const chip_info_t *chip_get(chip_id_t id)
{
    if ((int)id < 0 || id >= CHIP__COUNT) return NULL;
    return &chip__table[id];
}

const chip_info_t *chip_by_name(const char *name)
{
    if (!name) return NULL;
    /* esptool's spelling ("esp32s3"); the pretty form ("ESP32-S3") is accepted as well. */
    for (int i = 0; i < CHIP__COUNT; i++)
        if (strcasecmp(chip__table[i].name, name) == 0 ||
            strcasecmp(chip__table[i].pretty, name) == 0)
            return &chip__table[i];
    return NULL;
}

const chip_info_t *chip_by_magic(uint32_t magic)
{
    /* Decision: first the chips current esptool detects by magic (ESP8266, ESP32, ESP32-S2).
     * Then, for compatibility with esptool <= v4.8, the other chips' listed magic values. That
     * fallback only matters when GET_SECURITY_INFO failed on a chip that normally supports it;
     * the values are all distinct, and a later chip-ID check (image header, secinfo) still
     * catches a silicon revision whose magic changed. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < CHIP__COUNT; i++) {
            const chip_info_t *c = &chip__table[i];
            if (c->detect_by_magic != (pass == 0)) continue;
            for (unsigned k = 0; k < c->n_magic; k++)
                if (c->magic[k] == magic) return c;
        }
    }
    return NULL;
}

const chip_info_t *chip_by_image_id(uint32_t id)
{
    for (int i = 0; i < CHIP__COUNT; i++)
        if (chip__table[i].image_chip_id >= 0 && (uint32_t)chip__table[i].image_chip_id == id)
            return &chip__table[i];
    return NULL;
}

const char *chip_names_list(void)
{
    return "esp8266, esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c6, esp32h2, esp32c5, "
           "esp32p4";
}

/* ---- MAC (PROTOCOL.md §6)
 * ---------------------------------------------------------------------------- */

size_t chip_mac_regs(const chip_info_t *c, uint32_t addrs[CHIP_MAX_REGS])
{
    if (!c) return 0;
    if (c->mac_layout == CHIP_MAC_ESP8266) {
        /* OTP words mac0, mac1, mac3 (esptool ESP8266ROM.read_mac). */
        addrs[0] = c->mac_base;
        addrs[1] = c->mac_base + 4;
        addrs[2] = c->mac_base + 12;
        return 3;
    }
    addrs[0] = c->mac_base;
    addrs[1] = c->mac_base + 4;
    return 2;
}

int chip_mac_decode(const chip_info_t *c, const uint32_t words[CHIP_MAX_REGS], uint8_t mac[6])
{
    if (!c) return EST_ECHIP;
    uint32_t mac0 = words[0], mac1 = words[1];
    if (c->mac_layout == CHIP_MAC_ESP8266) {
        uint32_t mac3 = words[2];
        if (mac3 != 0) {
            mac[0] = (uint8_t)(mac3 >> 16);
            mac[1] = (uint8_t)(mac3 >> 8);
            mac[2] = (uint8_t)mac3;
        } else if (((mac1 >> 16) & 0xFF) == 0) {
            mac[0] = 0x18, mac[1] = 0xFE, mac[2] = 0x34;
        } else if (((mac1 >> 16) & 0xFF) == 1) {
            mac[0] = 0xAC, mac[1] = 0xD0, mac[2] = 0x74;
        } else {
            return EST_ECHIP; /* esptool: "Unknown OUI" */
        }
        mac[3] = (uint8_t)(mac1 >> 8);
        mac[4] = (uint8_t)mac1;
        mac[5] = (uint8_t)(mac0 >> 24);
        return 0;
    }
    /* ESP32 family: mac1[15:8], mac1[7:0], then mac0 big-endian. On ESP32, mac1[23:16] is the
     * MAC CRC8; on C6/H2/C5 mac1[31:16] is MAC_EXT — both ignored, as esptool does. */
    mac[0] = (uint8_t)(mac1 >> 8);
    mac[1] = (uint8_t)mac1;
    mac[2] = (uint8_t)(mac0 >> 24);
    mac[3] = (uint8_t)(mac0 >> 16);
    mac[4] = (uint8_t)(mac0 >> 8);
    mac[5] = (uint8_t)mac0;
    return 0;
}

/* ---- Revision (PROTOCOL.md §5.5)
 * --------------------------------------------------------------------- */

static uint32_t chip_bits(uint32_t w, unsigned shift, uint32_t mask)
{
    return (w >> shift) & mask;
}

size_t chip_rev_regs(const chip_info_t *c, uint32_t addrs[CHIP_MAX_REGS])
{
    if (!c) return 0;
    switch (c->id) {
    case CHIP_ESP32:
        addrs[0] = 0x3FF5A00C; /* eFuse BLK0 word 3 */
        addrs[1] = 0x3FF5A014; /* word 5 */
        addrs[2] = 0x3FF6607C; /* APB_CTL_DATE */
        return 3;
    case CHIP_ESP32S2:
        addrs[0] = 0x3F41A050; /* BLOCK1 word 3 */
        addrs[1] = 0x3F41A054; /* BLOCK1 word 4 */
        return 2;
    case CHIP_ESP32S3:
        addrs[0] = 0x60007050; /* BLOCK1 word 3 */
        addrs[1] = 0x60007058; /* BLOCK1 word 5 */
        addrs[2] = 0x6000706C; /* BLOCK2 word 4: BLK_VERSION_MAJOR */
        return 3;
    case CHIP_ESP32C3:
        addrs[0] = 0x60008850; /* BLOCK1 word 3 */
        addrs[1] = 0x60008858; /* BLOCK1 word 5 */
        return 2;
    case CHIP_ESP32C2:
        addrs[0] = 0x60008844; /* BLOCK2 word 1 */
        return 1;
    case CHIP_ESP32C6:
    case CHIP_ESP32H2:
        addrs[0] = 0x600B0850; /* BLOCK1 word 3 */
        return 1;
    case CHIP_ESP32C5:
        addrs[0] = 0x600B484C; /* BLOCK1 word 2 */
        return 1;
    case CHIP_ESP32P4:
        addrs[0] = 0x5012D04C; /* BLOCK1 word 2 */
        return 1;
    case CHIP_ESP8266:
    case CHIP__COUNT:
    case CHIP_UNKNOWN: break;
    }
    return 0;
}

unsigned chip_rev_decode(const chip_info_t *c, const uint32_t words[CHIP_MAX_REGS])
{
    if (!c) return 0;
    uint32_t major = 0, minor = 0;
    switch (c->id) {
    case CHIP_ESP32: {
        /* Major from three scattered bits b2b1b0 (W3[15], W5[20], APB_CTL_DATE[31]). */
        uint32_t v = chip_bits(words[2], 31, 1) << 2 | chip_bits(words[1], 20, 1) << 1 |
                     chip_bits(words[0], 15, 1);
        major = v == 1 ? 1 : v == 3 ? 2 : v == 7 ? 3 : 0;
        minor = chip_bits(words[1], 24, 3);
        break;
    }
    case CHIP_ESP32S2:
        major = chip_bits(words[0], 18, 3);
        minor = chip_bits(words[0], 20, 1) << 3 | chip_bits(words[1], 4, 7);
        break;
    case CHIP_ESP32S3:
        major = chip_bits(words[1], 24, 3);
        minor = chip_bits(words[1], 23, 1) << 3 | chip_bits(words[0], 18, 7);
        /* v0.0 silicon reused the major field: with block version v1.1 (BLK_VERSION_MAJOR == 1,
         * BLK_VERSION_MINOR == W3[26:24] == 1) and minor&7 == 0, esptool reports v0.0. */
        if ((minor & 7) == 0 && chip_bits(words[2], 0, 3) == 1 && chip_bits(words[0], 24, 7) == 1)
            major = minor = 0;
        break;
    case CHIP_ESP32C3:
        major = chip_bits(words[1], 24, 3);
        minor = chip_bits(words[1], 23, 1) << 3 | chip_bits(words[0], 18, 7);
        break;
    case CHIP_ESP32C2:
        major = chip_bits(words[0], 20, 3);
        minor = chip_bits(words[0], 16, 0xF);
        break;
    case CHIP_ESP32C6:
        major = chip_bits(words[0], 22, 3);
        minor = chip_bits(words[0], 18, 0xF);
        break;
    case CHIP_ESP32H2:
        major = chip_bits(words[0], 21, 3);
        minor = chip_bits(words[0], 18, 7);
        break;
    case CHIP_ESP32C5:
        major = chip_bits(words[0], 4, 3);
        minor = chip_bits(words[0], 0, 0xF);
        break;
    case CHIP_ESP32P4:
        major = chip_bits(words[0], 23, 1) << 2 | chip_bits(words[0], 4, 3);
        minor = chip_bits(words[0], 0, 0xF);
        break;
    case CHIP_ESP8266:
    case CHIP__COUNT:
    case CHIP_UNKNOWN: break;
    }
    return (unsigned)(major * 100 + minor);
}

/* ---- Flash ID and size (PROTOCOL.md §7.3)
 * ------------------------------------------------------------ */

uint32_t chip_flash_size_from_jedec(uint32_t jedec)
{
    if (chip_jedec_invalid(jedec)) return 0;
    if ((jedec & 0xFF) == 0x1F) {
        /* Adesto (manufacturer 0x1F): esptool >= v5.0 reads the size from bits 12:8. */
        switch ((jedec >> 8) & 0x1F) {
        case 0x04: return KB(512);
        case 0x05: return MB(1);
        case 0x06: return MB(2);
        case 0x07: return MB(4);
        case 0x08: return MB(8);
        case 0x09: return MB(16);
        default: return 0;
        }
    }
    switch ((jedec >> 16) & 0xFF) {
    case 0x12:
    case 0x32: return KB(256);
    case 0x13:
    case 0x33: return KB(512);
    case 0x14:
    case 0x34: return MB(1);
    case 0x15:
    case 0x35: return MB(2);
    case 0x16:
    case 0x36: return MB(4);
    case 0x17:
    case 0x37: return MB(8);
    case 0x18:
    case 0x38: return MB(16);
    case 0x19:
    case 0x39: return MB(32);
    case 0x1A:
    case 0x20:
    case 0x3A: return MB(64);
    case 0x1B:
    case 0x21: return MB(128);
    case 0x1C:
    case 0x22: return MB(256);
    default: return 0;
    }
}

bool chip_jedec_invalid(uint32_t jedec)
{
    jedec &= 0xFFFFFF;
    return jedec == 0x000000 || jedec == 0xFFFFFF || jedec == 0xFFFF3F;
}

/* ---- Header encodings (PROTOCOL.md §12)
 * -------------------------------------------------------------- */

int chip_flash_mode_code(const char *name)
{
    static const char *const modes[] = {"qio", "qout", "dio", "dout"};
    if (!name) return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(modes[i], name) == 0) return i;
    return -1;
}

int chip_flash_freq_code(const chip_info_t *c, const char *name)
{
    if (!c || !name) return -1;
    for (size_t i = 0; c->freq_names[i]; i++)
        if (strcasecmp(c->freq_names[i], name) == 0) return c->freq_codes[i];
    return -1;
}

int chip_flash_size_code(const chip_info_t *c, uint32_t bytes)
{
    if (!c) return -1;
    if (c->id == CHIP_ESP8266) {
        /* The ESP8266 table is not monotonic (PROTOCOL.md §12); the -c1 layouts have no byte size
         * and are reached through chip_flash_size_code_name. */
        switch (bytes) {
        case KB(512): return 0x0;
        case KB(256): return 0x1;
        case MB(1): return 0x2;
        case MB(2): return 0x3;
        case MB(4): return 0x4;
        case MB(8): return 0x8;
        case MB(16): return 0x9;
        default: return -1;
        }
    }
    /* ESP32 family: 1MB << code, codes 0..7. esptool accepts every code for every chip of the
     * family (PROTOCOL.md §12); max_flash_size says what the bootloader really supports. */
    for (int code = 0; code <= 7; code++)
        if (bytes == MB(1) << code) return code;
    return -1;
}

int chip_flash_size_code_name(const chip_info_t *c, const char *name)
{
    if (!c || !name) return -1;
    if (c->id == CHIP_ESP8266) {
        if (strcasecmp(name, "2MB-c1") == 0) return 0x5;
        if (strcasecmp(name, "4MB-c1") == 0) return 0x6;
    }
    uint32_t bytes = chip_parse_size(name);
    return bytes ? chip_flash_size_code(c, bytes) : -1;
}

uint32_t chip_parse_size(const char *s)
{
    static const struct {
        const char *name;
        uint32_t bytes;
    } sizes[] = {
        {"256KB", KB(256)}, {"512KB", KB(512)}, {"1MB", MB(1)},   {"2MB", MB(2)},
        {"4MB", MB(4)},     {"8MB", MB(8)},     {"16MB", MB(16)}, {"32MB", MB(32)},
        {"64MB", MB(64)},   {"128MB", MB(128)},
    };
    if (!s) return 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        if (strcasecmp(sizes[i].name, s) == 0) return sizes[i].bytes;
    return 0;
}

/* ---- SPI user command (PROTOCOL.md §7.2)
 * ------------------------------------------------------------- */

#define CHIP__SPI_USR_COMMAND (1u << 31)
#define CHIP__SPI_USR_MISO (1u << 28)
#define CHIP__SPI_CMD_USR (1u << 18)

size_t chip_spi_cmd_steps(const chip_info_t *c, uint8_t opcode, unsigned read_bits,
                          chip_spi_step_t steps[CHIP_SPI_MAX_STEPS])
{
    if (!c || read_bits > 32) return 0;
    const chip_spi_regs_t *s = &c->spi;
    size_t n = 0;
#define STEP(o, a, v, sl)                                                                          \
    (steps[n++] = (chip_spi_step_t){.op = (o), .addr = (a), .value = (v), .slot = (sl)})
    /* 1. Save USER and USER2: the ROM's own flash reads use the same controller. */
    STEP(CHIP_SPI_SAVE, s->base + s->user, 0, 0);
    STEP(CHIP_SPI_SAVE, s->base + s->user2, 0, 1);
    /* 2. Lengths. No address and no dummy here, so USER1 is left alone on the ESP32 family;
     * the ESP8266 keeps MISO length (bit 8) and MOSI length (bit 17) in USER1 and esptool always
     * writes it there. */
    if (s->has_dlen) {
        if (read_bits > 0) STEP(CHIP_SPI_WRITE, s->base + s->miso_dlen, read_bits - 1, 0);
    } else {
        STEP(CHIP_SPI_WRITE, s->base + s->user1, (read_bits > 0 ? read_bits - 1 : 0) << 8, 0);
    }
    /* 3–4. Command phase plus MISO phase when reading; 8-bit opcode. */
    STEP(CHIP_SPI_WRITE, s->base + s->user,
         CHIP__SPI_USR_COMMAND | (read_bits > 0 ? CHIP__SPI_USR_MISO : 0), 0);
    STEP(CHIP_SPI_WRITE, s->base + s->user2, 7u << 28 | opcode, 0);
    /* 6. Nothing transmitted: W0 = 0. */
    STEP(CHIP_SPI_WRITE, s->base + s->w0, 0, 0);
    /* 7–8. Start, then poll until the hardware clears USR. */
    STEP(CHIP_SPI_WRITE, s->base + s->cmd, CHIP__SPI_CMD_USR, 0);
    STEP(CHIP_SPI_POLL, s->base + s->cmd, CHIP__SPI_CMD_USR, 0);
    /* 9. Result, 10. restore. */
    STEP(CHIP_SPI_RESULT, s->base + s->w0, 0, 0);
    STEP(CHIP_SPI_RESTORE, s->base + s->user, 0, 0);
    STEP(CHIP_SPI_RESTORE, s->base + s->user2, 0, 1);
#undef STEP
    return n;
}

/* ---- console port and watchdogs (PROTOCOL.md §4.3, §14.10)
 * ------------------------------------------- */

/* UARTDEV_BUF_NO addresses and values as esptool's target classes list them (uses_usb_otg(),
 * uses_usb_jtag_serial()); ESP32-P4: .bss UartDev at 0x4FF3FEB0 below v3.00, 0x4FFBFEB0 from
 * v3.00 on, buff_uart_no at +24. */
bool chip_console(const chip_info_t *c, unsigned rev, chip_console_t *out)
{
    chip_console_t k = {0, -1, -1};
    if (!c) return false;
    switch (c->id) {
    case CHIP_ESP32S2: k = (chip_console_t){0x3FFFFD14, 2, -1}; break;
    case CHIP_ESP32S3: k = (chip_console_t){0x3FCEF14C, 3, 4}; break;
    case CHIP_ESP32C3: k = (chip_console_t){0x3FCDF07C, -1, 3}; break;
    case CHIP_ESP32C6: k = (chip_console_t){0x4087F580, -1, 3}; break;
    case CHIP_ESP32H2: k = (chip_console_t){0x4084FEFC, -1, 3}; break;
    case CHIP_ESP32C5: k = (chip_console_t){0x4085F51C, -1, 3}; break;
    case CHIP_ESP32P4:
        k = (chip_console_t){(rev < 300 ? 0x4FF3FEB0u : 0x4FFBFEB0u) + 24, 5, 6};
        break;
    case CHIP_ESP8266:
    case CHIP_ESP32:
    case CHIP_ESP32C2:
    case CHIP__COUNT:
    case CHIP_UNKNOWN: break;
    }
    if (out) *out = k;
    return k.buf_no_addr != 0;
}

#define CHIP__WDT_KEY 0x50D83AA1u     /* RTC / LP watchdog write-protect key */
#define CHIP__SWD_KEY_RTC 0x8F1D312Au /* super watchdog key on the RTC_CNTL chips (C3, S3) */

/* esptool's order: unlock, RTC WDT config 0 = off, lock; unlock the super watchdog, set its
 * auto-feed bit, lock. Register offsets per chip from esptool (ESP32-H2's LP_WDT block has the
 * protect and SWD registers one word further than C6/C5/P4). */
size_t chip_wdt_disable_steps(const chip_info_t *c, chip_wdt_step_t steps[CHIP_WDT_MAX_STEPS])
{
    uint32_t wprot, cfg0, swd_prot, swd_conf, swd_bit, swd_key;
    if (!c) return 0;
    switch (c->id) {
    case CHIP_ESP32C3: /* RTC_CNTL at 0x60008000 */
        cfg0 = 0x60008090, wprot = 0x600080A8, swd_conf = 0x600080AC, swd_prot = 0x600080B0;
        swd_bit = 1u << 31, swd_key = CHIP__SWD_KEY_RTC;
        break;
    case CHIP_ESP32S3:
        cfg0 = 0x60008098, wprot = 0x600080B0, swd_conf = 0x600080B4, swd_prot = 0x600080B8;
        swd_bit = 1u << 31, swd_key = CHIP__SWD_KEY_RTC;
        break;
    case CHIP_ESP32C6:
    case CHIP_ESP32C5: /* LP_WDT at 0x600B1C00 (the C5 class inherits the C6 values) */
        cfg0 = 0x600B1C00, wprot = 0x600B1C18, swd_conf = 0x600B1C1C, swd_prot = 0x600B1C20;
        swd_bit = 1u << 18, swd_key = CHIP__WDT_KEY;
        break;
    case CHIP_ESP32H2:
        cfg0 = 0x600B1C00, wprot = 0x600B1C1C, swd_conf = 0x600B1C20, swd_prot = 0x600B1C24;
        swd_bit = 1u << 18, swd_key = CHIP__WDT_KEY;
        break;
    case CHIP_ESP32P4: /* LP_WDT at 0x50116000 */
        cfg0 = 0x50116000, wprot = 0x50116018, swd_conf = 0x5011601C, swd_prot = 0x50116020;
        swd_bit = 1u << 18, swd_key = CHIP__WDT_KEY;
        break;
    case CHIP_ESP8266:
    case CHIP_ESP32:
    case CHIP_ESP32S2:
    case CHIP_ESP32C2:
    case CHIP__COUNT:
    case CHIP_UNKNOWN:
    default: return 0;
    }
    steps[0] = (chip_wdt_step_t){wprot, CHIP__WDT_KEY, false};
    steps[1] = (chip_wdt_step_t){cfg0, 0, false};
    steps[2] = (chip_wdt_step_t){wprot, 0, false};
    steps[3] = (chip_wdt_step_t){swd_prot, swd_key, false};
    steps[4] = (chip_wdt_step_t){swd_conf, swd_bit, true};
    steps[5] = (chip_wdt_step_t){swd_prot, 0, false};
    return 6;
}

/* ---- register programs for the job (docs/PROTOCOL.md §16) -------------------------------- */

bool chip_prog_identify(const chip_info_t *c, rp_prog_t *p)
{
    uint32_t a[CHIP_MAX_REGS];
    size_t n;
    rp_init(p);
    if (!c) return false;
    n = chip_mac_regs(c, a);
    for (size_t i = 0; i < n; i++)
        rp_read(p, a[i], (uint8_t)(CHIP_RP_MAC + i));
    n = chip_rev_regs(c, a);
    for (size_t i = 0; i < n; i++)
        rp_read(p, a[i], (uint8_t)(CHIP_RP_REV + i));
    return true;
}

bool chip_prog_console(const chip_info_t *c, unsigned rev, rp_prog_t *p)
{
    chip_console_t k;
    rp_init(p);
    if (!chip_console(c, rev, &k)) return false;
    rp_read(p, k.buf_no_addr, 0);
    return true;
}

bool chip_prog_wdt_disable(const chip_info_t *c, rp_prog_t *p)
{
    chip_wdt_step_t w[CHIP_WDT_MAX_STEPS];
    size_t n = chip_wdt_disable_steps(c, w);
    rp_init(p);
    for (size_t i = 0; i < n; i++) {
        if (w[i].set_bits)
            rp_modify(p, w[i].addr, 0, w[i].value); /* read, OR, write (esptool) */
        else
            rp_write(p, w[i].addr, w[i].value);
    }
    return n > 0;
}

bool chip_prog_spi_cmd(const chip_info_t *c, uint8_t opcode, unsigned read_bits, rp_prog_t *p)
{
    chip_spi_step_t st[CHIP_SPI_MAX_STEPS];
    size_t n = chip_spi_cmd_steps(c, opcode, read_bits, st);
    rp_init(p);
    for (size_t i = 0; i < n; i++) {
        switch (st[i].op) {
        case CHIP_SPI_SAVE: rp_read(p, st[i].addr, st[i].slot & 1); break;
        case CHIP_SPI_WRITE: rp_write(p, st[i].addr, st[i].value); break;
        case CHIP_SPI_POLL:
            rp_poll(p, st[i].addr, st[i].value, 0, RP_POLL_DEFAULT, RP_NO_SLOT);
            break;
        case CHIP_SPI_RESULT: rp_read(p, st[i].addr, CHIP_RP_SPI_RESULT); break;
        case CHIP_SPI_RESTORE: rp_write_slot(p, st[i].addr, st[i].slot & 1); break;
        }
    }
    return n > 0;
}

bool chip_prog_attach(const chip_info_t *c, rp_prog_t *p)
{
    rp_init(p);
    return c && c->hooks->attach_prog && c->hooks->attach_prog(p);
}

uint32_t chip_attach_config(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS])
{
    return c && c->hooks->attach_config ? c->hooks->attach_config(slots) : 0;
}

bool chip_prog_clock(const chip_info_t *c, rp_prog_t *p)
{
    rp_init(p);
    return c && c->hooks->clock_prog && c->hooks->clock_prog(c, p);
}

void chip_clock_correction(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS],
                           uint32_t cur_baud, uint64_t corr[2])
{
    corr[0] = corr[1] = 1;
    if (c && c->hooks->clock_correction) c->hooks->clock_correction(c, slots, cur_baud, corr);
}

bool chip_prog_rom_eco(const chip_info_t *c, rp_prog_t *p)
{
    rp_init(p);
    if (!c || c->addr32 != CHIP_ADDR32_STUB_ECO2) return false;
    rp_read(p, c->rom_eco_reg, 0);
    return true;
}

bool chip_addr32_ok(const chip_info_t *c, bool stub, bool eco_known, uint32_t eco)
{
    if (!c || !stub) return false;
    switch (c->addr32) {
    case CHIP_ADDR32_NEVER: return false;
    case CHIP_ADDR32_STUB: return true;
    case CHIP_ADDR32_STUB_ECO2: return eco_known && eco >= 2;
    }
    return false;
}

const char *chip_stub_exclusion(const chip_info_t *c, unsigned rev, bool secure_boot)
{
    return c && c->hooks->stub_exclusion ? c->hooks->stub_exclusion(rev, secure_boot) : NULL;
}
