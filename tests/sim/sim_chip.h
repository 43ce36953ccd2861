// SPDX-License-Identifier: MIT
// sim_chip: the per-chip facts the simulator needs (magic, IDs, registers, banners).
// Only constant data and pure helpers; no device state lives here.
#ifndef ESPSIM_CHIP_H
#define ESPSIM_CHIP_H

#include <stdint.h>

typedef enum {
    SIM_FAM_8266,   // ESP8266 ROM: 2 status bytes, small command set
    SIM_FAM_ESP32,  // ESP32 ROM: 4 status bytes, no GET_SECURITY_INFO, 16-byte FLASH_BEGIN
    SIM_FAM_S2PLUS, // ESP32-S2 and later ROMs: GET_SECURITY_INFO, 20-byte FLASH_BEGIN
} sim_family_t;

// How the chip revision is spread over eFuse words (docs/SIMULATOR.md "Chips").
typedef enum {
    SIM_REV_NONE,
    SIM_REV_ESP32,
    SIM_REV_S2,
    SIM_REV_S3C3, // S3 and C3 share the layout at different bases
    SIM_REV_C2,
    SIM_REV_C6,
    SIM_REV_H2,
} sim_rev_kind_t;

typedef struct {
    const char *name;    // command-line name, e.g. "esp32c3"
    const char *display; // e.g. "ESP32-C3"
    sim_family_t fam;
    uint32_t magic;  // word at 0x40001000 (docs/SIMULATOR.md "Chips")
    int chip_id;     // GET_SECURITY_INFO chip_id, -1 if the ROM has no 20-byte form
    int secinfo_len; // 0 (no command), 12 (S2 short form) or 20
    int status_len;  // ROM status bytes: 2 (ESP8266) or 4
    // SPI flash controller (docs/SIMULATOR.md "ROM loader")
    uint32_t spi_base;
    uint8_t off_user, off_user1, off_user2, off_mosi_dlen, off_miso_dlen, off_w0;
    int addr_msb; // address register MSB-aligned (ESP8266, ESP32)
    // UART and clocks
    uint32_t uart_clkdiv_reg;
    uint32_t uart_clk_hz; // clock the ROM's UART divider counts (crystal, x2 on ESP8266)
    uint32_t xtal_mhz;
    // eFuse
    uint32_t mac_reg; // mac0 word (ESP32-family); ESP8266 uses its OTP words instead
    int mac_ext;      // mac1[31:16] = MAC_EXT 0xFFFE (C6, H2)
    sim_rev_kind_t rev_kind;
    uint32_t rev_w_a, rev_w_b; // revision words (meaning per rev_kind)
    int def_major, def_minor;
    uint8_t oui[3]; // default OUI for generated MACs
    uint32_t bootloader_off;
    uint32_t sync_value; // value field of ROM SYNC replies
    // Boot log pieces (docs/SIMULATOR.md "Boot and modes"; see docs/SIMULATOR.md for provenance)
    uint32_t rom_log_baud;   // 74880 for ESP8266, else 115200
    const char *rom_header;  // printed before the rst: line
    const char *rst_poweron; // e.g. "rst:0x1 (POWERON_RESET)"
    const char *rst_sw;      // software reset (FLASH_END / brown-out use their own)
    const char *rst_brownout;
    const char *rst_rtcwdt;    // RTC watchdog reset (esptool watchdog_reset), NULL = not modelled
    const char *boot_download; // e.g. "boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))"
    const char *boot_flash;    // e.g. "boot:0x13 (SPI_FAST_FLASH_BOOT)"
    // The ROM's console variable (docs/SIMULATOR.md "ROM loader"): 0 = the chip has no USB console;
    // its low byte is usb_otg_no / usb_jtag_no (-1: not on this chip) when that port is used.
    uint32_t usb_buf_no;
    int usb_otg_no, usb_jtag_no;
    // RTC (LP) watchdog: CONFIG0 (CONFIG1 = +4) and write-protect registers, 0 = none
    uint32_t wdt_cfg0, wdt_wprot;
} sim_chip_t;

const sim_chip_t *sim_chip_find(const char *name);
const char *sim_chip_names(void); // "esp8266, esp32, ..." for help texts
// Flash size in bytes for a JEDEC capacity code (docs/SIMULATOR.md "ROM loader"), 0 if unknown.
uint32_t sim_chip_flash_size_from_jedec(uint32_t jedec_mmttcc);

#endif
