/* SPDX-License-Identifier: MIT */
/* efuse_tables.c — eFuse blocks, recipe fields and controller registers of the ESP32, ESP32-S3
 * and ESP32-C3, as data (efuse.h). Values from esptool's espefuse tables (efuse_defs/<chip>.yaml,
 * efuse/<chip>/mem_definition.py, fields.py) and ESP-IDF's components/efuse/<chip>/
 * esp_efuse_table.csv, cited in docs/SECURITY-PROVISIONING.md §"eFuse tables".
 * Must not: hold logic. */
#include "efuse.h"

#include <stddef.h>

#define NA (-1)

/* ---------------- ESP32 ---------------- */

#define E32 0x3FF5A000u
static const efuse_ctrl_t ESP32_CTRL = {
    .base = E32,
    .conf_reg = E32 + 0x0FC,
    .cmd_reg = E32 + 0x104,
    .write_opcode = 0x5A5A,
    .read_opcode = 0x5AA5,
    .pgm_cmd = 0x2,
    .read_cmd = 0x1,
    .cmd_mask = 0x3,
    .block_shift = -1,
    .shared_pgm = false,
    .dec_status_reg = E32 + 0x11C,
    .dec_status_mask = 0xFFF,
    /* EFUSE_CLK_REG SEL0 (bits 7:0) / SEL1 (15:8), EFUSE_DAC_CONF_REG DAC_CLK_DIV (7:0) */
    .xtal_mhz = {40, 26},
    .timing = {{{E32 + 0x0F8, 0xFFFF, 160 | 255u << 8}, {E32 + 0x118, 0xFF, 80}},
               {{E32 + 0x0F8, 0xFFFF, 250 | 255u << 8}, {E32 + 0x118, 0xFF, 52}}},
    .n_timing = 2,
};

static const efuse_block_def_t ESP32_BLOCKS[] = {
    {0, "BLOCK0", NULL, 7, EFUSE_CODING_NONE, E32 + 0x000, E32 + 0x01C, NA, NA, NA, false,
     E32 + 0x11C, NA, NA},
    {1, "BLOCK1", "flash_encryption", 8, EFUSE_CODING_NONE, E32 + 0x038, E32 + 0x098, 7, 0, NA,
     true, E32 + 0x11C, NA, NA},
    {2, "BLOCK2", "secure_boot_v2", 8, EFUSE_CODING_NONE, E32 + 0x058, E32 + 0x0B8, 8, 1, NA, true,
     E32 + 0x11C, NA, NA},
    {3, "BLOCK3", NULL, 8, EFUSE_CODING_NONE, E32 + 0x078, E32 + 0x0D8, 9, 2, NA, false,
     E32 + 0x11C, NA, NA},
};

static const efuse_field_def_t ESP32_FIELDS[] = {
    {"WR_DIS", NULL, 0, 0, 16, 1, EFUSE_KIND_BITS, true, true, "write protection bits"},
    {"RD_DIS", NULL, 0, 16, 4, 0, EFUSE_KIND_BITS, true, true, "read protection of BLOCK1-3"},
    {"FLASH_CRYPT_CNT", NULL, 0, 20, 7, 2, EFUSE_KIND_BITS, false, true,
     "flash encryption on while an odd number of bits is set"},
    {"UART_DOWNLOAD_DIS", "DIS_DOWNLOAD_MODE", 0, 27, 1, 2, EFUSE_KIND_BITS, false, true,
     "UART download mode off (ESP32 v3 and later)", true},
    {"FLASH_CRYPT_CONFIG", "ENCRYPT_CONFIG", 0, 188, 4, 10, EFUSE_KIND_BITS, false, true,
     "flash encryption key tweak range (0xF in production)"},
    {"CODING_SCHEME", NULL, 0, 192, 2, 10, EFUSE_KIND_ONCE, false, false,
     "BLOCK1-3 coding: 0 none, 1 3/4"},
    {"CONSOLE_DEBUG_DISABLE", NULL, 0, 194, 1, 15, EFUSE_KIND_BITS, false, true,
     "ROM BASIC console off"},
    {"ABS_DONE_0", NULL, 0, 196, 1, 12, EFUSE_KIND_BITS, false, true, "Secure Boot v1 on"},
    {"ABS_DONE_1", "SECURE_BOOT_EN", 0, 197, 1, 13, EFUSE_KIND_BITS, false, true,
     "Secure Boot v2 on (ESP32 v3)"},
    {"JTAG_DISABLE", "DIS_PAD_JTAG", 0, 198, 1, 14, EFUSE_KIND_BITS, false, true, "JTAG off"},
    {"DISABLE_DL_ENCRYPT", "DIS_DOWNLOAD_MANUAL_ENCRYPT", 0, 199, 1, 15, EFUSE_KIND_BITS, false,
     true, "no flash encryption from download mode"},
    {"DISABLE_DL_DECRYPT", NULL, 0, 200, 1, 15, EFUSE_KIND_BITS, false, true,
     "no flash decryption in download mode"},
    {"DISABLE_DL_CACHE", NULL, 0, 201, 1, 15, EFUSE_KIND_BITS, false, true,
     "no flash cache in download mode"},
    {"CUSTOM_MAC_CRC", NULL, 3, 0, 8, 9, EFUSE_KIND_ONCE, false, false, "CRC-8 of CUSTOM_MAC"},
    {"CUSTOM_MAC", NULL, 3, 8, 48, 9, EFUSE_KIND_ONCE, false, true, "custom MAC address"},
    {"MAC_VERSION", "MAC_CUSTOM_VER", 3, 184, 8, 9, EFUSE_KIND_ONCE, false, false,
     "1 = CUSTOM_MAC is used"},
    {"BLOCK3", "USER_DATA", 3, 0, 256, 9, EFUSE_KIND_ONCE, false, true, "user data block"},
};

/* ---------------- ESP32-S3 and ESP32-C3 (same controller) ---------------- */

#define S3B 0x60007000u
#define C3B 0x60008800u
#define C6B 0x600B0800u

#define NEWCTRL(B)                                                                                 \
    {.base = (B),                                                                                  \
     .conf_reg = (B) + 0x1CC,                                                                      \
     .cmd_reg = (B) + 0x1D4,                                                                       \
     .write_opcode = 0x5A5A,                                                                       \
     .read_opcode = 0x5AA5,                                                                        \
     .pgm_cmd = 0x2,                                                                               \
     .read_cmd = 0x1,                                                                              \
     .cmd_mask = 0x3,                                                                              \
     .block_shift = 2,                                                                             \
     .shared_pgm = true,                                                                           \
     .pgm_data0 = (B),                                                                             \
     .check_value0 = (B) + 0x020,                                                                  \
     .xtal_mhz = {40, 0},                                                                          \
     .timing = {{{(B) + 0x1E8, 0xFFu << 9, 0xFFu << 9},                                            \
                 {(B) + 0x1E8, 0xFF, 0x28},                                                        \
                 {(B) + WR_TIM1, 0xFFFFu << 8, 0x3000u << 8},                                      \
                 {(B) + WR_TIM2, 0xFFFF, 0x190}}},                                                 \
     .n_timing = 4}

#define WR_TIM1 0x1F4 /* S3: EFUSE_WR_TIM_CONF1_REG */
#define WR_TIM2 0x1F8
static const efuse_ctrl_t S3_CTRL = NEWCTRL(S3B);
#undef WR_TIM1
#undef WR_TIM2
#define WR_TIM1 0x1F0 /* C3, C6 */
#define WR_TIM2 0x1F4
static const efuse_ctrl_t C3_CTRL = NEWCTRL(C3B);
static const efuse_ctrl_t C6_CTRL = NEWCTRL(C6B);
#undef WR_TIM1
#undef WR_TIM2

/* ESP32-S2: the same controller, its own base and RS error registers, and a longer timing
 * set-up at 40 MHz (espefuse esp32s2 mem_definition.py/fields.py: programming timing TSUP_A 1,
 * TPGM 0x190, THP_A 1, TPGM_INACTIVE 2; VDDQ DAC_CLK_DIV 0x50, PWR_ON 0x5100, PWR_OFF 0x80). */
#define S2B 0x3F41A000u
static const efuse_ctrl_t S2_CTRL = {
    .base = S2B,
    .conf_reg = S2B + 0x1CC,
    .cmd_reg = S2B + 0x1D4,
    .write_opcode = 0x5A5A,
    .read_opcode = 0x5AA5,
    .pgm_cmd = 0x2,
    .read_cmd = 0x1,
    .cmd_mask = 0x3,
    .block_shift = 2,
    .shared_pgm = true,
    .pgm_data0 = S2B,
    .check_value0 = S2B + 0x020,
    .xtal_mhz = {40, 0},
    .timing = {{{S2B + 0x1F4, 0xFF, 0x1},
                {S2B + 0x1F0, 0xFFFFu << 16, 0x190u << 16},
                {S2B + 0x1F0, 0xFF, 0x1},
                {S2B + 0x1F0, 0xFFu << 8, 0x2u << 8},
                {S2B + 0x1E8, 0xFF, 0x50},
                {S2B + 0x1F4, 0xFFFFu << 8, 0x5100u << 8},
                {S2B + 0x1F8, 0xFFFF, 0x80}}},
    .n_timing = 7,
};

/* name, alias, index, words, rd offset, wr_dis, rd_dis, key slot, key block, err reg offset,
 * err shift, fail bit */
#define BLK(B, i, n, a, w, rd, wd, rdd, ks, kb, er, es, fb)                                        \
    {i, n, a, w, (i) == 0 ? EFUSE_CODING_NONE : EFUSE_CODING_RS, (B) + (rd), (B), wd, rdd, ks, kb,  \
     (B) + (er), es, fb}

/* E0/E1: offsets of EFUSE_RD_RS_ERR0/1_REG (0x1C0/0x1C4; ESP32-S2 0x194/0x198) */
#define NEWBLOCKS_ERR(B, E0, E1, F1, F2, F3, F4, F5, F6, F7, F8, F9, F10)                          \
    {BLK(B, 0, "BLOCK0", NULL, 6, 0x02C, NA, NA, NA, false, 0x17C, NA, NA),                        \
     BLK(B, 1, "MAC_SPI_8M_0", "BLOCK1", 6, 0x044, 20, NA, NA, false, E0, 0, F1),                  \
     BLK(B, 2, "BLOCK_SYS_DATA", "BLOCK2", 8, 0x05C, 21, NA, NA, false, E0, 4, F2),                \
     BLK(B, 3, "BLOCK_USR_DATA", "BLOCK3", 8, 0x07C, 22, NA, NA, false, E0, 8, F3),                \
     BLK(B, 4, "BLOCK_KEY0", "BLOCK4", 8, 0x09C, 23, 0, 0, true, E0, 12, F4),                      \
     BLK(B, 5, "BLOCK_KEY1", "BLOCK5", 8, 0x0BC, 24, 1, 1, true, E0, 16, F5),                      \
     BLK(B, 6, "BLOCK_KEY2", "BLOCK6", 8, 0x0DC, 25, 2, 2, true, E0, 20, F6),                      \
     BLK(B, 7, "BLOCK_KEY3", "BLOCK7", 8, 0x0FC, 26, 3, 3, true, E0, 24, F7),                      \
     BLK(B, 8, "BLOCK_KEY4", "BLOCK8", 8, 0x11C, 27, 4, 4, true, E0, 28, F8),                      \
     BLK(B, 9, "BLOCK_KEY5", "BLOCK9", 8, 0x13C, 28, 5, 5, true, E1, 0, F9),                       \
     BLK(B, 10, "BLOCK_SYS_DATA2", "BLOCK10", 8, 0x15C, 29, 6, NA, false, E1, 4, F10)}
#define NEWBLOCKS(B, ...) NEWBLOCKS_ERR(B, 0x1C0, 0x1C4, __VA_ARGS__)

/* S3: fail bit = 4n+3 of the same nibble; C3: the fail bits sit one block later (hardware
 * erratum noted in espefuse), BLOCK10 has none. */
static const efuse_block_def_t S3_BLOCKS[] = NEWBLOCKS(S3B, 3, 7, 11, 15, 19, 23, 27, 31, 3, 7);
static const efuse_block_def_t C3_BLOCKS[] = NEWBLOCKS(C3B, 7, 11, 15, 19, 23, 27, 31, NA, 7, NA);
static const efuse_block_def_t C6_BLOCKS[] = NEWBLOCKS(C6B, 3, 7, 11, 15, 19, 23, 27, 31, 3, 7);
static const efuse_block_def_t S2_BLOCKS[] =
    NEWBLOCKS_ERR(S2B, 0x194, 0x198, 3, 7, 11, 15, 19, 23, 27, 31, 3, 7);
/* C3's BLOCK_KEY4 has its error count in RD_RS_ERR0 [30:28] but its fail bit in RD_RS_ERR1
 * (bit 3): only the count is checked for it. */

#define KP(n, bit, wd)                                                                             \
    {"KEY_PURPOSE_" #n, "KEY" #n "_PURPOSE", 0, bit, 4, wd, EFUSE_KIND_ONCE, false, true,          \
     "purpose of BLOCK_KEY" #n}

#define COMMON_FIELDS                                                                              \
    {"WR_DIS", NULL, 0, 0, 32, NA, EFUSE_KIND_BITS, true, true, "write protection bits"},          \
        {"RD_DIS", NULL, 0, 32, 7, 0, EFUSE_KIND_BITS, true, true,                                 \
         "read protection of BLOCK_KEY0-5 and BLOCK_SYS_DATA2"},                                   \
        {"DIS_DOWNLOAD_ICACHE", NULL, 0, 42, 1, 2, EFUSE_KIND_BITS, false, true,                   \
         "no instruction cache in download mode"},                                                 \
        {"DIS_FORCE_DOWNLOAD", NULL, 0, 44, 1, 2, EFUSE_KIND_BITS, false, true,                    \
         "no forced download mode"},                                                               \
        {"SOFT_DIS_JTAG", NULL, 0, 48, 3, 31, EFUSE_KIND_BITS, false, true,                        \
         "JTAG off while an odd number of bits is set (HMAC can re-enable)"},                      \
        {"DIS_PAD_JTAG", "HARD_DIS_JTAG", 0, 51, 1, 2, EFUSE_KIND_BITS, false, true,               \
         "pad JTAG permanently off"},                                                              \
        {"DIS_DOWNLOAD_MANUAL_ENCRYPT", NULL, 0, 52, 1, 2, EFUSE_KIND_BITS, false, true,           \
         "no flash encryption from download mode"},                                                \
        {"SPI_BOOT_CRYPT_CNT", "FLASH_CRYPT_CNT", 0, 82, 3, 4, EFUSE_KIND_BITS, false, true,       \
         "flash encryption on while 1 or 3 bits are set"},                                         \
        {"SECURE_BOOT_KEY_REVOKE0", NULL, 0, 85, 1, 5, EFUSE_KIND_BITS, false, true,               \
         "Secure Boot digest 0 revoked"},                                                          \
        {"SECURE_BOOT_KEY_REVOKE1", NULL, 0, 86, 1, 6, EFUSE_KIND_BITS, false, true,               \
         "Secure Boot digest 1 revoked"},                                                          \
        {"SECURE_BOOT_KEY_REVOKE2", NULL, 0, 87, 1, 7, EFUSE_KIND_BITS, false, true,               \
         "Secure Boot digest 2 revoked"},                                                          \
        KP(0, 88, 8), KP(1, 92, 9), KP(2, 96, 10), KP(3, 100, 11), KP(4, 104, 12),                 \
        KP(5, 108, 13),                                                                            \
        {"SECURE_BOOT_EN", NULL, 0, 116, 1, 15, EFUSE_KIND_BITS, false, true, "Secure Boot v2 on"}, \
        {"SECURE_BOOT_AGGRESSIVE_REVOKE", NULL, 0, 117, 1, 16, EFUSE_KIND_BITS, false, true,       \
         "revoke a digest as soon as its signature fails"},                                        \
        {"DIS_DOWNLOAD_MODE", NULL, 0, 128, 1, 18, EFUSE_KIND_BITS, false, true,                   \
         "all download modes off", true},                                                                \
        {"DIS_DIRECT_BOOT", "DIS_LEGACY_SPI_BOOT", 0, 129, 1, 18, EFUSE_KIND_BITS, false, true,    \
         "direct (legacy SPI) boot off"},                                                          \
        {"DIS_USB_SERIAL_JTAG_ROM_PRINT", NULL, 0, 130, 1, 18, EFUSE_KIND_BITS, false, true,       \
         "no ROM messages on USB-Serial/JTAG"},                                                    \
        {"DIS_USB_SERIAL_JTAG_DOWNLOAD_MODE", "DIS_USB_DOWNLOAD_MODE", 0, 132, 1, 18,              \
         EFUSE_KIND_BITS, false, true, "no download mode over USB-Serial/JTAG", true},                   \
        {"ENABLE_SECURITY_DOWNLOAD", NULL, 0, 133, 1, 18, EFUSE_KIND_BITS, false, true,            \
         "Secure Download Mode", true},                                                                  \
        {"UART_PRINT_CONTROL", NULL, 0, 134, 2, 18, EFUSE_KIND_BITS, false, true,                  \
         "ROM UART messages (3 = off)"},                                                           \
        {"SECURE_VERSION", NULL, 0, 142, 16, 18, EFUSE_KIND_BITS, false, true,                     \
         "anti-rollback secure version (bit field)"},                                              \
        {"USER_DATA", "BLOCK_USR_DATA", 3, 0, 192, 22, EFUSE_KIND_ONCE, false, true,               \
         "user data (BLOCK3 bytes 0-23)"},                                                         \
        {"CUSTOM_MAC", "MAC_CUSTOM", 3, 200, 48, 22, EFUSE_KIND_ONCE, false, true,                 \
         "custom MAC address"},                                                                    \
        {"BLOCK_SYS_DATA2", "SYS_DATA_PART2", 10, 0, 256, 29, EFUSE_KIND_ONCE, false, true,        \
         "system data part 2 (free for the user)"}

static const efuse_field_def_t S3_FIELDS[] = {
    COMMON_FIELDS,
    {"DIS_DOWNLOAD_DCACHE", NULL, 0, 43, 1, 2, EFUSE_KIND_BITS, false, true,
     "no data cache in download mode"},
    {"DIS_USB_OTG", "DIS_USB", 0, 45, 1, 2, EFUSE_KIND_BITS, false, true, "USB-OTG off"},
    {"DIS_USB_JTAG", NULL, 0, 118, 1, 2, EFUSE_KIND_BITS, false, true, "USB JTAG off"},
    {"DIS_USB_SERIAL_JTAG", "DIS_USB_DEVICE", 0, 119, 1, 2, EFUSE_KIND_BITS, false, true,
     "USB-Serial/JTAG off"},
    {"STRAP_JTAG_SEL", NULL, 0, 120, 1, 2, EFUSE_KIND_BITS, false, true,
     "JTAG source chosen by GPIO3"},
    {"DIS_USB_OTG_DOWNLOAD_MODE", NULL, 0, 159, 1, 19, EFUSE_KIND_BITS, false, true,
     "no download mode over USB-OTG", true},
};

/* ESP32-S2 (efuse_defs/esp32s2.yaml): the JTAG and manual-encryption bits and SECURE_VERSION
 * sit elsewhere than on the later chips; the rest matches. */
static const efuse_field_def_t S2_FIELDS[] = {
    {"WR_DIS", NULL, 0, 0, 32, NA, EFUSE_KIND_BITS, true, true, "write protection bits"},
    {"RD_DIS", NULL, 0, 32, 7, 0, EFUSE_KIND_BITS, true, true,
     "read protection of BLOCK_KEY0-5 and BLOCK_SYS_DATA2"},
    {"DIS_DOWNLOAD_ICACHE", NULL, 0, 42, 1, 2, EFUSE_KIND_BITS, false, true,
     "no instruction cache in download mode"},
    {"DIS_DOWNLOAD_DCACHE", NULL, 0, 43, 1, 2, EFUSE_KIND_BITS, false, true,
     "no data cache in download mode"},
    {"DIS_FORCE_DOWNLOAD", NULL, 0, 44, 1, 2, EFUSE_KIND_BITS, false, true, "no forced download mode"},
    {"DIS_USB", "DIS_USB_OTG", 0, 45, 1, 2, EFUSE_KIND_BITS, false, true, "USB-OTG off"},
    {"DIS_BOOT_REMAP", NULL, 0, 47, 1, 2, EFUSE_KIND_BITS, false, true, "no RAM-to-ROM remap"},
    {"SOFT_DIS_JTAG", NULL, 0, 49, 1, 2, EFUSE_KIND_BITS, false, true,
     "JTAG off (HMAC can re-enable)"},
    {"HARD_DIS_JTAG", "DIS_PAD_JTAG", 0, 50, 1, 2, EFUSE_KIND_BITS, false, true,
     "JTAG permanently off"},
    {"DIS_DOWNLOAD_MANUAL_ENCRYPT", NULL, 0, 51, 1, 2, EFUSE_KIND_BITS, false, true,
     "no flash encryption from download mode"},
    {"SPI_BOOT_CRYPT_CNT", "FLASH_CRYPT_CNT", 0, 82, 3, 4, EFUSE_KIND_BITS, false, true,
     "flash encryption on while 1 or 3 bits are set"},
    {"SECURE_BOOT_KEY_REVOKE0", NULL, 0, 85, 1, 5, EFUSE_KIND_BITS, false, true,
     "Secure Boot digest 0 revoked"},
    {"SECURE_BOOT_KEY_REVOKE1", NULL, 0, 86, 1, 6, EFUSE_KIND_BITS, false, true,
     "Secure Boot digest 1 revoked"},
    {"SECURE_BOOT_KEY_REVOKE2", NULL, 0, 87, 1, 7, EFUSE_KIND_BITS, false, true,
     "Secure Boot digest 2 revoked"},
    KP(0, 88, 8), KP(1, 92, 9), KP(2, 96, 10), KP(3, 100, 11), KP(4, 104, 12), KP(5, 108, 13),
    {"SECURE_BOOT_EN", NULL, 0, 116, 1, 15, EFUSE_KIND_BITS, false, true, "Secure Boot v2 on"},
    {"SECURE_BOOT_AGGRESSIVE_REVOKE", NULL, 0, 117, 1, 16, EFUSE_KIND_BITS, false, true,
     "revoke a digest as soon as its signature fails"},
    {"DIS_DOWNLOAD_MODE", NULL, 0, 128, 1, 18, EFUSE_KIND_BITS, false, true,
     "all download modes off", true},
    {"DIS_LEGACY_SPI_BOOT", "DIS_DIRECT_BOOT", 0, 129, 1, 18, EFUSE_KIND_BITS, false, true,
     "legacy SPI boot off"},
    {"DIS_USB_DOWNLOAD_MODE", NULL, 0, 132, 1, 18, EFUSE_KIND_BITS, false, true,
     "no download mode over USB-OTG", true},
    {"ENABLE_SECURITY_DOWNLOAD", NULL, 0, 133, 1, 18, EFUSE_KIND_BITS, false, true,
     "Secure Download Mode", true},
    {"UART_PRINT_CONTROL", NULL, 0, 134, 2, 18, EFUSE_KIND_BITS, false, true,
     "ROM UART messages (3 = off)"},
    {"SECURE_VERSION", NULL, 0, 139, 16, 18, EFUSE_KIND_BITS, false, true,
     "anti-rollback secure version (bit field)"},
    {"USER_DATA", "BLOCK_USR_DATA", 3, 0, 192, 22, EFUSE_KIND_ONCE, false, true,
     "user data (BLOCK3 bytes 0-23)"},
    {"CUSTOM_MAC", "MAC_CUSTOM", 3, 200, 48, 22, EFUSE_KIND_ONCE, false, true, "custom MAC address"},
    {"BLOCK_SYS_DATA2", "SYS_DATA_PART2", 10, 0, 256, 29, EFUSE_KIND_ONCE, false, true,
     "system data part 2 (free for the user)"},
};

/* The ESP32-C6 has the C3's positions for every field a recipe burns (efuse_defs/esp32c6.yaml). */
static const efuse_field_def_t C3_FIELDS[] = {
    COMMON_FIELDS,
    {"DIS_USB_JTAG", NULL, 0, 41, 1, 2, EFUSE_KIND_BITS, false, true, "USB JTAG off"},
    {"DIS_USB_SERIAL_JTAG", "DIS_USB_DEVICE", 0, 43, 1, 2, EFUSE_KIND_BITS, false, true,
     "USB-Serial/JTAG off"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PURPOSE_BIT(p) (1u << (p))
/* S3: USER, XTS-256 halves, XTS-128, HMAC x4, digests; C3: no XTS-256. */
#define NEW_PURPOSES (PURPOSE_BIT(0) | 0xFF0u | PURPOSE_BIT(9) | PURPOSE_BIT(10) | PURPOSE_BIT(11))

static const efuse_chip_t CHIPS[] = {
    {"esp32", "ESP32", &ESP32_CTRL, ESP32_BLOCKS, N(ESP32_BLOCKS), ESP32_FIELDS, N(ESP32_FIELDS),
     PURPOSE_BIT(4) | PURPOSE_BIT(9), false, NA, "FLASH_CRYPT_CNT"},
    {"esp32s2", "ESP32-S2", &S2_CTRL, S2_BLOCKS, N(S2_BLOCKS), S2_FIELDS, N(S2_FIELDS),
     NEW_PURPOSES | PURPOSE_BIT(2) | PURPOSE_BIT(3), true, 5, "SPI_BOOT_CRYPT_CNT"},
    {"esp32s3", "ESP32-S3", &S3_CTRL, S3_BLOCKS, N(S3_BLOCKS), S3_FIELDS, N(S3_FIELDS),
     NEW_PURPOSES | PURPOSE_BIT(2) | PURPOSE_BIT(3), true, 5, "SPI_BOOT_CRYPT_CNT"},
    {"esp32c3", "ESP32-C3", &C3_CTRL, C3_BLOCKS, N(C3_BLOCKS), C3_FIELDS, N(C3_FIELDS),
     NEW_PURPOSES, true, 5, "SPI_BOOT_CRYPT_CNT"},
    {"esp32c6", "ESP32-C6", &C6_CTRL, C6_BLOCKS, N(C6_BLOCKS), C3_FIELDS, N(C3_FIELDS),
     NEW_PURPOSES, true, 5, "SPI_BOOT_CRYPT_CNT"},
};

const efuse_chip_t *efuse_chip_table(size_t *n);
const efuse_chip_t *efuse_chip_table(size_t *n)
{
    *n = N(CHIPS);
    return CHIPS;
}
