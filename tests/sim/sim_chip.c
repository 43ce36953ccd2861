// SPDX-License-Identifier: MIT
// sim_chip: chip table for espsim. Values come from the protocol reference (sections noted per
// field) and esptool's targets/*.py; boot-log texts from public logs (docs/SIMULATOR.md).
// Must stay constant data: no device state, no I/O.
#include "sim_chip.h"

#include <string.h>

// SPI register offsets: ESP8266/ESP32 layout vs. the S2-and-later layout (docs/SIMULATOR.md "ROM
// loader").
#define SPI_OLD 0x1C, 0x20, 0x24, 0x28, 0x2C
#define SPI_NEW 0x18, 0x1C, 0x20, 0x24, 0x28

static const sim_chip_t chips[] = {
    {
        .name = "esp8266",
        .display = "ESP8266",
        .fam = SIM_FAM_8266,
        .magic = 0xFFF0C101,
        .chip_id = -1,
        .secinfo_len = 0,
        .status_len = 2,
        .spi_base = 0x60000200,
        .off_user = 0x1C,
        .off_user1 = 0x20,
        .off_user2 = 0x24,
        .off_mosi_dlen = 0,
        .off_miso_dlen = 0,
        .off_w0 = 0x40,
        .addr_msb = 1,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 52000000,
        .xtal_mhz = 26,
        .mac_reg = 0,
        .rev_kind = SIM_REV_NONE,
        .oui = {0x18, 0xFE, 0x34},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 74880,
        .rom_header = "\r\n ets Jan  8 2013,",
        .rst_poweron = "rst cause:2, ",
        .rst_sw = "rst cause:4, ",
        .rst_brownout = "rst cause:2, ",
        .boot_download = "boot mode:(1,7)\r\n\r\n",
        .boot_flash = "boot mode:(3,6)\r\n\r\n",
    },
    {
        .name = "esp32",
        .display = "ESP32",
        .fam = SIM_FAM_ESP32,
        .magic = 0x00F01D83,
        .chip_id = -1,
        .secinfo_len = 0,
        .status_len = 4,
        .spi_base = 0x3FF42000,
        .off_user = 0x1C,
        .off_user1 = 0x20,
        .off_user2 = 0x24,
        .off_mosi_dlen = 0x28,
        .off_miso_dlen = 0x2C,
        .off_w0 = 0x80,
        .addr_msb = 1,
        .uart_clkdiv_reg = 0x3FF40014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x3FF5A004,
        .rev_kind = SIM_REV_ESP32,
        .rev_w_a = 0x3FF5A00C,
        .rev_w_b = 0x3FF5A014,
        .def_major = 3,
        .def_minor = 0,
        .oui = {0x24, 0x0A, 0xC4},
        .bootloader_off = 0x1000,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ets Jun  8 2016 00:22:57\r\n\r\n",
        .rst_poweron = "rst:0x1 (POWERON_RESET),",
        .rst_sw = "rst:0xc (SW_CPU_RESET),",
        .rst_brownout = "rst:0xf (BROWNOUT_RST),",
        .rst_rtcwdt = "rst:0x10 (RTCWDT_RTC_RESET),",
        .wdt_cfg0 = 0x3FF4808C,
        .wdt_wprot = 0x3FF480A4,
        .boot_download = "boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                         "waiting for download\r\n",
        .boot_flash = "boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    },
    {
        .name = "esp32s2",
        .display = "ESP32-S2",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0x000007C6,
        .chip_id = 2,
        .secinfo_len = 12,
        .status_len = 4,
        .spi_base = 0x3F402000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x3F400014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x3F41A044,
        .rev_kind = SIM_REV_S2,
        .rev_w_a = 0x3F41A050,
        .rev_w_b = 0x3F41A054,
        .def_major = 0,
        .def_minor = 0,
        .oui = {0x7C, 0xDF, 0xA1},
        .bootloader_off = 0x1000,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp32s2-rc4-20191025\r\nBuild:Oct 25 2019\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0x3 (RTC_SW_SYS_RST),",
        .rst_brownout = "rst:0xf (BROWN_OUT_RST),",
        .rst_rtcwdt = "rst:0x10 (RTCWDT_RTC_RST),",
        .wdt_cfg0 = 0x3F408094,
        .wdt_wprot = 0x3F4080AC,
        .boot_download = "boot:0x0 (DOWNLOAD(USB/UART0/1))\r\nwaiting for download\r\n",
        .boot_flash = "boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n",
        // ROM .bss UARTDEV_BUF_NO and its USB values (esptool uses_usb_otg/_jtag_serial)
        .usb_buf_no = 0x3FFFFD14,
        .usb_otg_no = 2,
        .usb_jtag_no = -1,
    },
    {
        .name = "esp32s3",
        .display = "ESP32-S3",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0x00000009,
        .chip_id = 9,
        .secinfo_len = 20,
        .status_len = 4,
        .spi_base = 0x60002000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x60007044,
        .rev_kind = SIM_REV_S3C3,
        .rev_w_a = 0x60007050,
        .rev_w_b = 0x60007058,
        .def_major = 0,
        .def_minor = 2,
        .oui = {0x34, 0x85, 0x18},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0x3 (RTC_SW_SYS_RST),",
        .rst_brownout = "rst:0xf (BROWN_OUT_RST),",
        .rst_rtcwdt = "rst:0x10 (RTCWDT_RTC_RST),",
        .wdt_cfg0 = 0x60008098,
        .wdt_wprot = 0x600080B0,
        .boot_download = "boot:0x23 (DOWNLOAD(USB/UART0))\r\nwaiting for download\r\n",
        .boot_flash = "boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n",
        // ROM .bss UARTDEV_BUF_NO and its USB values (esptool uses_usb_otg/_jtag_serial)
        .usb_buf_no = 0x3FCEF14C,
        .usb_otg_no = 3,
        .usb_jtag_no = 4,
    },
    {
        .name = "esp32c2",
        .display = "ESP32-C2",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0x7C41A06F,
        .chip_id = 12,
        .secinfo_len = 20,
        .status_len = 4,
        .spi_base = 0x60002000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x60008840,
        .rev_kind = SIM_REV_C2,
        .rev_w_a = 0x60008844,
        .rev_w_b = 0,
        .def_major = 1,
        .def_minor = 0,
        .oui = {0x08, 0x3A, 0xF2},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp8684-api2-20220127\r\nBuild:Jan 27 2022\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0x3 (RTC_SW_SYS_RST),",
        .rst_brownout = "rst:0xf (BROWNOUT_RST),",
        .rst_rtcwdt = "rst:0x10 (RTCWDT_RTC_RST),",
        .wdt_cfg0 = 0x60008084,
        .wdt_wprot = 0x6000809C,
        .boot_download = "boot:0x4 (DOWNLOAD(UART0))\r\nwaiting for download\r\n",
        .boot_flash = "boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
    },
    {
        .name = "esp32c3",
        .display = "ESP32-C3",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0x1B31506F,
        .chip_id = 5,
        .secinfo_len = 20,
        .status_len = 4,
        .spi_base = 0x60002000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x60008844,
        .rev_kind = SIM_REV_S3C3,
        .rev_w_a = 0x60008850,
        .rev_w_b = 0x60008858,
        .def_major = 0,
        .def_minor = 4,
        .oui = {0x60, 0x55, 0xF9},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0x3 (RTC_SW_SYS_RST),",
        .rst_brownout = "rst:0xf (BROWNOUT_RST),",
        .rst_rtcwdt = "rst:0x10 (RTCWDT_RTC_RST),",
        .wdt_cfg0 = 0x60008090,
        .wdt_wprot = 0x600080A8,
        .boot_download = "boot:0x5 (DOWNLOAD(USB/UART0/1))\r\nwaiting for download\r\n",
        .boot_flash = "boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
        // ROM .bss UARTDEV_BUF_NO and its USB values (esptool uses_usb_otg/_jtag_serial)
        .usb_buf_no = 0x3FCDF07C,
        .usb_otg_no = -1,
        .usb_jtag_no = 3,
    },
    {
        .name = "esp32c6",
        .display = "ESP32-C6",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0x2CE0806F,
        .chip_id = 13,
        .secinfo_len = 20,
        .status_len = 4,
        .spi_base = 0x60003000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 40000000,
        .xtal_mhz = 40,
        .mac_reg = 0x600B0844,
        .mac_ext = 1,
        .rev_kind = SIM_REV_C6,
        .rev_w_a = 0x600B0850,
        .rev_w_b = 0,
        .def_major = 0,
        .def_minor = 0,
        .oui = {0x40, 0x4C, 0xCA},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp32c6-20220919\r\nBuild:Sep 19 2022\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0xc (SW_CPU),",
        .rst_brownout = "rst:0xf (BROWNOUT_RST),",
        .rst_rtcwdt = "rst:0x10 (LP_WDT_SYS),",
        .wdt_cfg0 = 0x600B1C00,
        .wdt_wprot = 0x600B1C18,
        .boot_download = "boot:0x4 (DOWNLOAD(USB/UART0/SDIO_FEI_FEO))\r\n"
                         "waiting for download\r\n",
        .boot_flash = "boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
        // ROM .bss UARTDEV_BUF_NO and its USB values (esptool uses_usb_otg/_jtag_serial)
        .usb_buf_no = 0x4087F580,
        .usb_otg_no = -1,
        .usb_jtag_no = 3,
    },
    {
        .name = "esp32h2",
        .display = "ESP32-H2",
        .fam = SIM_FAM_S2PLUS,
        .magic = 0xD7B73E80,
        .chip_id = 16,
        .secinfo_len = 20,
        .status_len = 4,
        .spi_base = 0x60003000,
        .off_user = 0x18,
        .off_user1 = 0x1C,
        .off_user2 = 0x20,
        .off_mosi_dlen = 0x24,
        .off_miso_dlen = 0x28,
        .off_w0 = 0x58,
        .addr_msb = 0,
        .uart_clkdiv_reg = 0x60000014,
        .uart_clk_hz = 32000000,
        .xtal_mhz = 32,
        .mac_reg = 0x600B0844,
        .mac_ext = 1,
        .rev_kind = SIM_REV_H2,
        .rev_w_a = 0x600B0850,
        .rev_w_b = 0,
        .def_major = 0,
        .def_minor = 1,
        .oui = {0x74, 0x4D, 0xBD},
        .bootloader_off = 0x0,
        .sync_value = 0x55201207,
        .rom_log_baud = 115200,
        .rom_header = "ESP-ROM:esp32h2-20221101\r\nBuild:Nov  1 2022\r\n",
        .rst_poweron = "rst:0x1 (POWERON),",
        .rst_sw = "rst:0xc (SW_CPU),",
        .rst_brownout = "rst:0xf (BROWNOUT_RST),",
        .rst_rtcwdt = "rst:0x10 (LP_WDT_SYS),",
        .wdt_cfg0 = 0x600B1C00,
        .wdt_wprot = 0x600B1C1C,
        .boot_download = "boot:0x4 (DOWNLOAD(USB/UART0))\r\nwaiting for download\r\n",
        .boot_flash = "boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
        // ROM .bss UARTDEV_BUF_NO and its USB values (esptool uses_usb_otg/_jtag_serial)
        .usb_buf_no = 0x4084FEFC,
        .usb_otg_no = -1,
        .usb_jtag_no = 3,
    },
};

const sim_chip_t *sim_chip_find(const char *name)
{
    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++)
        if (strcmp(chips[i].name, name) == 0) return &chips[i];
    return NULL;
}

const char *sim_chip_names(void)
{
    return "esp8266, esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c6, esp32h2";
}

uint32_t sim_chip_flash_size_from_jedec(uint32_t jedec)
{
    uint32_t mfr = (jedec >> 16) & 0xFF;
    uint32_t type = (jedec >> 8) & 0xFF;
    uint32_t cap = jedec & 0xFF;
    const uint32_t KB = 1024, MB = 1024 * 1024;
    if (mfr == 0x1F) {
        // Adesto: esptool v5+ reads the size from bits 12:8 of its ID (docs/SIMULATOR.md "ROM
        // loader")
        switch (type & 0x1F) {
        case 0x04: return 512 * KB;
        case 0x05: return 1 * MB;
        case 0x06: return 2 * MB;
        case 0x07: return 4 * MB;
        case 0x08: return 8 * MB;
        case 0x09: return 16 * MB;
        default: break;
        }
    }
    switch (cap) {
    case 0x12:
    case 0x32: return 256 * KB;
    case 0x13:
    case 0x33: return 512 * KB;
    case 0x14:
    case 0x34: return 1 * MB;
    case 0x15:
    case 0x35: return 2 * MB;
    case 0x16:
    case 0x36: return 4 * MB;
    case 0x17:
    case 0x37: return 8 * MB;
    case 0x18:
    case 0x38: return 16 * MB;
    case 0x19:
    case 0x39: return 32 * MB;
    case 0x1A:
    case 0x20:
    case 0x3A: return 64 * MB;
    case 0x1B:
    case 0x21: return 128 * MB;
    case 0x1C:
    case 0x22: return 256 * MB;
    default: return 0;
    }
}
