// SPDX-License-Identifier: MIT
// sim_secure: what the simulated ROM does with the security eFuses (docs/SIMULATOR.md "eFuses
// and security"): GET_SECURITY_INFO, Secure Download Mode, download mode disabled, and the SPI
// boot with flash decryption and the Secure Boot v2 signature check.
#ifndef ESPSIM_SECURE_H
#define ESPSIM_SECURE_H

#include <stddef.h>
#include <stdint.h>

#include "sim_chip.h"
#include "sim_efuse.h"
#include "sim_flash.h"

// GET_SECURITY_INFO output (chip->secinfo_len bytes: 12 on the S2, 20 later) from the eFuses;
// a chip without an eFuse model (e == NULL) reports a virgin chip.
size_t sim_sec_info(const sim_efuse_t *e, const sim_chip_t *c, uint8_t out[20]);

// ENABLE_SECURITY_DOWNLOAD is burnt (S2 and later): the ROM is in Secure Download Mode.
int sim_sec_sdm(const sim_efuse_t *e);
// Secure Download Mode refuses this ROM opcode (answered as an unsupported command).
int sim_sec_sdm_refuses(int op);
// DIS_DOWNLOAD_MODE (ESP32: UART_DOWNLOAD_DIS) is burnt: the strap cannot select download mode.
int sim_sec_download_disabled(const sim_efuse_t *e);
// FLASH_BEGIN / FLASH_DEFL_BEGIN with encrypted = 1 is refused (DIS_DOWNLOAD_MANUAL_ENCRYPT).
int sim_sec_manual_encrypt_disabled(const sim_efuse_t *e);
// The part of the download-mode banner after the rst: text (the chip's boot_download lines):
// in Secure Download Mode the last line reads "wait uart download(secure mode)"; with download
// mode disabled only the boot: line remains.
const char *sim_sec_download_banner(const sim_efuse_t *e, const char *boot_download);
// Flash encryption is on: an odd number of crypt counter bits.
int sim_sec_flash_encrypted(const sim_efuse_t *e);

typedef enum {
    SIM_BOOT_OK,      // the application starts
    SIM_BOOT_INVALID, // no image header at the bootloader offset ("invalid header: 0x...")
    SIM_BOOT_REFUSED, // Secure Boot refused the image: msg is printed, nothing starts
} sim_boot_result_t;

typedef struct {
    sim_boot_result_t result;
    uint32_t first_word; // first word at the bootloader offset, as the CPU sees it (decrypted)
    char msg[256];       // ROM / bootloader text printed before anything else (may be empty)
} sim_boot_t;

// SPI boot: decrypts what it reads when flash encryption is on; with Secure Boot checks the
// image at the bootloader offset and, when one is there, the application at 0x10000.
void sim_sec_boot(const sim_efuse_t *e, const sim_chip_t *c, const sim_flash_t *flash,
                  sim_boot_t *out);

#endif
