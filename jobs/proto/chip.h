/* SPDX-License-Identifier: MIT */
/* chip.h — per-chip facts of the ROM loaders (PROTOCOL.md §5, §6, §7, §12).
 * Owns: the chip table (detection values, status length, supported ROM commands, eFuse MAC and
 * revision layout, SPI controller registers, flash size/freq/mode encodings, bootloader offset,
 * block sizes), and pure helpers that turn register words into MAC, revision and flash size, and
 * the register sequence that reads the JEDEC ID. Must not: do I/O or keep mutable state. */
#ifndef CHIP_H
#define CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "regprog.h"

typedef enum {
    CHIP_ESP8266,
    CHIP_ESP32,
    CHIP_ESP32S2,
    CHIP_ESP32S3,
    CHIP_ESP32C2,
    CHIP_ESP32C3,
    CHIP_ESP32C6,
    CHIP_ESP32H2,
    CHIP_ESP32C5,
    CHIP_ESP32P4,
    CHIP__COUNT,
    CHIP_UNKNOWN = -1
} chip_id_t;

#define CHIP_MAGIC_REG 0x40001000u
#define CHIP_MAX_MAGIC 4
#define CHIP_MAX_REGS 4

/* SPI flash controller registers used for "user commands" (PROTOCOL.md §7.1). */
typedef struct chip_spi_regs_s {
    uint32_t base;
    uint8_t cmd, addr, ctrl, user, user1, user2, mosi_dlen, miso_dlen, w0;
    bool has_dlen;   /* false on ESP8266: lengths live in USER1 */
    bool addr_msb;   /* address left-aligned (ESP8266, ESP32) */
} chip_spi_regs_t;

typedef enum { CHIP_MAC_ESP32FAM, CHIP_MAC_ESP8266 } chip_mac_layout_t;

/* Which flash addresses above 16 MB a loader reaches (docs/PROTOCOL.md §14.12): ROM flash commands
 * carry 24-bit addresses; the stub goes further on some chips only. */
typedef enum {
    CHIP_ADDR32_NEVER,     /* 24-bit only, stub or not */
    CHIP_ADDR32_STUB,      /* the stub takes 32-bit addresses (ESP32-S3, -P4) */
    CHIP_ADDR32_STUB_ECO2, /* the stub does when the ROM's ECO word (rom_eco_reg) is >= 2 (C5) */
} chip_addr32_t;

struct chip_info_s;
/* Formula hooks of the chip table (NULL: the chip has none), as esp-serial-flasher's target
 * table keeps per-chip functions. Each program hook fills `p` and returns false when the chip
 * needs no such program; each decode hook reads the slots the program captured. */
typedef struct chip_hooks_s {
    /* SPI_ATTACH pin word from eFuse (ESP32: the SPI-pad words, PROTOCOL.md §4.2) */
    bool (*attach_prog)(rp_prog_t *p);
    uint32_t (*attach_config)(const uint32_t slots[RP_MAX_SLOTS]);
    /* ROM clock correction for CHANGE_BAUDRATE (PROTOCOL.md §9): registers, then send rate ×
     * corr[0] / corr[1] (`cur_baud`: the rate the UART divider was read at) */
    bool (*clock_prog)(const struct chip_info_s *c, rp_prog_t *p);
    void (*clock_correction)(const struct chip_info_s *c, const uint32_t slots[RP_MAX_SLOTS],
                             uint32_t cur_baud, uint64_t corr[2]);
    /* why esptool does not run the stub on this chip (revision, Secure Boot), or NULL (PROTOCOL.md
     * §8.3, §14.23) */
    const char *(*stub_exclusion)(unsigned rev, bool secure_boot);
} chip_hooks_t;

typedef struct chip_info_s {
    chip_id_t id;
    const char *name;        /* esptool's --chip spelling: "esp32s3" */
    const char *pretty;      /* "ESP32-S3" */
    int32_t image_chip_id;   /* extended-header / GET_SECURITY_INFO chip ID; -1 for ESP8266 */
    bool detect_by_magic;    /* identified by the magic word (ESP8266, ESP32, ESP32-S2) */
    uint32_t magic[CHIP_MAX_MAGIC];
    uint8_t n_magic;
    uint8_t rom_status_len;  /* 2 (ESP8266) or 4 */
    /* ROM command support (PROTOCOL.md §4.1) */
    bool rom_secinfo;        /* GET_SECURITY_INFO */
    bool rom_defl;           /* FLASH_DEFL_* */
    bool rom_md5;            /* SPI_FLASH_MD5 */
    bool rom_spi_attach;     /* SPI_ATTACH (ESP8266: FLASH_BEGIN(0,0) instead) */
    bool rom_set_params;     /* SPI_SET_PARAMS */
    bool rom_change_baud;    /* CHANGE_BAUDRATE */
    bool rom_read_flash_slow;
    bool rom_begin_enc_word; /* FLASH_BEGIN/FLASH_DEFL_BEGIN need the 5th word (S2+) */
    bool rom_erase_size_bug; /* ESP8266: FLASH_BEGIN's size needs esptool's work-around (PROTOCOL.md
                              * §4.5.3, image_esp8266_erase_size) */
    /* eFuse */
    chip_mac_layout_t mac_layout;
    uint32_t mac_base;       /* address of mac0 (mac1 = +4; ESP8266: see chip_mac_regs) */
    chip_spi_regs_t spi;
    uint32_t bootloader_offset;
    uint32_t rom_flash_block; /* FLASH_WRITE_SIZE in ROM mode: 0x400 */
    uint32_t stub_flash_block;/* 0x4000 */
    uint32_t ram_block;       /* MEM_DATA block: 0x1800 */
    uint32_t uart_clkdiv_reg;
    /* header encodings (PROTOCOL.md §12): flash frequency names and codes, and whether the size
     * nibble uses the ESP8266 table */
    const char *const *freq_names; /* NULL-terminated */
    const uint8_t *freq_codes;
    uint32_t max_flash_size;  /* largest size the bootloader supports */
    chip_addr32_t addr32;     /* flash beyond 16 MB (PROTOCOL.md §14.12) */
    uint32_t rom_eco_reg;     /* CHIP_ADDR32_STUB_ECO2: the ROM's ECO version word */
    const chip_hooks_t *hooks; /* formulas; never NULL */
} chip_info_t;

const chip_info_t *chip_get(chip_id_t id);
const chip_info_t *chip_by_name(const char *name); /* esptool spelling; NULL if unknown */
/* Chip whose magic word (READ_REG 0x40001000) is `magic`, among chips detected by magic. */
const chip_info_t *chip_by_magic(uint32_t magic);
/* Chip with GET_SECURITY_INFO / image header chip ID `id`. */
const chip_info_t *chip_by_image_id(uint32_t id);
/* "esp8266, esp32, ..." list for messages. */
const char *chip_names_list(void);

/* MAC: the register addresses to READ_REG (returns their count, <= CHIP_MAX_REGS), then decode
 * the words read in that order. Returns 0 or EST_ECHIP (ESP8266 with an unknown OUI). */
size_t chip_mac_regs(const chip_info_t *c, uint32_t addrs[CHIP_MAX_REGS]);
int chip_mac_decode(const chip_info_t *c, const uint32_t words[CHIP_MAX_REGS], uint8_t mac[6]);
/* Revision (major*100+minor): registers to read, then decode. Chips without a known layout
 * return 0 registers and revision 0. */
size_t chip_rev_regs(const chip_info_t *c, uint32_t addrs[CHIP_MAX_REGS]);
unsigned chip_rev_decode(const chip_info_t *c, const uint32_t words[CHIP_MAX_REGS]);

/* Flash size in bytes from a JEDEC ID word (bits 7:0 manufacturer, 15:8 type, 23:16 capacity),
 * 0 if unknown (PROTOCOL.md §7.3, Adesto rule included). */
uint32_t chip_flash_size_from_jedec(uint32_t jedec);
/* True for IDs that mean "flash not talking" (0x000000, 0xFFFFFF, 0xFFFF3F). */
bool chip_jedec_invalid(uint32_t jedec);

/* Header encodings. Each returns the code, or -1 if the name/size is not valid for the chip. */
int chip_flash_mode_code(const char *name); /* qio 0, qout 1, dio 2, dout 3 */
int chip_flash_freq_code(const chip_info_t *c, const char *name);
int chip_flash_size_code(const chip_info_t *c, uint32_t bytes);
/* Parse "4MB", "512KB", "2MB-c1"(ESP8266 only as a code) into bytes; 0 if invalid. */
uint32_t chip_parse_size(const char *s);
/* Size code from a size name, including the ESP8266-only "2MB-c1" / "4MB-c1" layouts (codes 5, 6);
 * -1 if the name is not valid for the chip. */
int chip_flash_size_code_name(const chip_info_t *c, const char *name);

/* The READ_REG/WRITE_REG program that runs one SPI flash "user command" (PROTOCOL.md §7.2). The job
 * runs the steps in order; CHIP_SPI_POLL re-reads `addr` until (value & mask) == 0, at most 10
 * times. CHIP_SPI_SAVE reads `addr` into save slot `slot`; CHIP_SPI_RESTORE writes it back.
 * CHIP_SPI_RESULT reads the result word. */
typedef enum {
    CHIP_SPI_SAVE,
    CHIP_SPI_WRITE,
    CHIP_SPI_POLL,
    CHIP_SPI_RESULT,
    CHIP_SPI_RESTORE
} chip_spi_op_t;
typedef struct chip_spi_step_s {
    chip_spi_op_t op;
    uint32_t addr;
    uint32_t value; /* WRITE value; POLL mask */
    uint8_t slot;   /* SAVE/RESTORE slot 0..1 */
} chip_spi_step_t;
#define CHIP_SPI_MAX_STEPS 16
/* Program for a command with no address, no dummy, no data out, reading `read_bits` (<= 32).
 * Returns the number of steps. JEDEC ID: opcode 0x9F, 24 bits. */
size_t chip_spi_cmd_steps(const chip_info_t *c, uint8_t opcode, unsigned read_bits,
                          chip_spi_step_t steps[CHIP_SPI_MAX_STEPS]);

/* ---- the ROM's console port: UART, native USB-OTG or USB-Serial/JTAG (PROTOCOL.md §4.3,
 * PROTOCOL.md §14.10) ---- */

/* The ROM keeps the number of the port it talks on in a .bss variable (UARTDEV_BUF_NO); the
 * low byte read with READ_REG tells UART from USB. */
typedef struct chip_console_s {
    uint32_t buf_no_addr; /* 0: the chip has no USB console */
    int otg_value;        /* value meaning native USB-OTG (S2, S3, P4), -1 none */
    int jtag_value;       /* value meaning USB-Serial/JTAG (S3, C3, C6, H2, C5, P4), -1 none */
} chip_console_t;
/* The variable for `c` at revision `rev` (ESP32-P4 moved it at v3.00). Returns false for chips
 * without a USB console (ESP8266, ESP32, ESP32-C2). */
bool chip_console(const chip_info_t *c, unsigned rev, chip_console_t *out);

/* Block sizes over native USB-OTG: the ROM's CDC buffer takes at most 0x800 bytes, for RAM
 * downloads and (as esptool does for the stub) flash writes (PROTOCOL.md §4.3). */
#define CHIP_USB_OTG_BLOCK 0x800u

/* Disabling the RTC watchdog and making the super watchdog feed itself, which the ROM does not
 * do over USB-Serial/JTAG (PROTOCOL.md §14.10; esptool disable_watchdogs()). A step writes `value`
 * to `addr`, or with `set_bits` reads `addr` and writes it back with `value` ORed in. */
typedef struct chip_wdt_step_s {
    uint32_t addr, value;
    bool set_bits;
} chip_wdt_step_t;
#define CHIP_WDT_MAX_STEPS 6
/* Returns the number of steps, 0 for chips without USB-Serial/JTAG. */
size_t chip_wdt_disable_steps(const chip_info_t *c, chip_wdt_step_t steps[CHIP_WDT_MAX_STEPS]);

/* ---- register programs for the job (regprog.h, docs/PROTOCOL.md §16) ---- */

/* MAC and revision words in one program: MAC words in slots CHIP_RP_MAC.., revision words in
 * CHIP_RP_REV.. (chip_mac_decode / chip_rev_decode read them there). */
#define CHIP_RP_MAC 0
#define CHIP_RP_REV CHIP_MAX_REGS
bool chip_prog_identify(const chip_info_t *c, rp_prog_t *p);
/* The ROM's console variable (UARTDEV_BUF_NO) into slot 0; false: no USB console. */
bool chip_prog_console(const chip_info_t *c, unsigned rev, rp_prog_t *p);
/* The watchdog program of chip_wdt_disable_steps; false: none for this chip. */
bool chip_prog_wdt_disable(const chip_info_t *c, rp_prog_t *p);
/* An SPI user command (chip_spi_cmd_steps): the result word in slot CHIP_RP_SPI_RESULT. */
#define CHIP_RP_SPI_RESULT 2
bool chip_prog_spi_cmd(const chip_info_t *c, uint8_t opcode, unsigned read_bits, rp_prog_t *p);
/* SPI_ATTACH's pin word: the program (false: attach with 0) and the word from its slots. */
bool chip_prog_attach(const chip_info_t *c, rp_prog_t *p);
uint32_t chip_attach_config(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS]);
/* ROM clock correction for CHANGE_BAUDRATE (ROM loader only): program (false: none needed) and
 * factors: the rate to send is target × corr[0] / corr[1] ({1, 1} when nothing is known). */
bool chip_prog_clock(const chip_info_t *c, rp_prog_t *p);
void chip_clock_correction(const chip_info_t *c, const uint32_t slots[RP_MAX_SLOTS],
                           uint32_t cur_baud, uint64_t corr[2]);
/* The ROM's ECO version word into slot 0 (CHIP_ADDR32_STUB_ECO2 chips); false: not needed. */
bool chip_prog_rom_eco(const chip_info_t *c, rp_prog_t *p);
/* Whether flash addresses beyond 16 MB work: the stub runs, and the chip's rule allows it
 * (`eco`: the ROM's ECO version when `eco_known`). */
bool chip_addr32_ok(const chip_info_t *c, bool stub, bool eco_known, uint32_t eco);
/* Why the stub is not used on this chip, or NULL (esptool's exclusions, PROTOCOL.md §8.3, §14.23).
 */
const char *chip_stub_exclusion(const chip_info_t *c, unsigned rev, bool secure_boot);

#endif
