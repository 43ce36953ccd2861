// SPDX-License-Identifier: MIT
// sim_efuse: the eFuse controller of a simulated chip (docs/SIMULATOR.md "eFuses and security").
// Burnt bits (write-once), the program-data / read registers at the addresses espefuse uses,
// the program and read (reload) commands, the coding schemes and their check on read, write and
// read protection. No device I/O: the device routes register accesses here.
#ifndef ESPSIM_EFUSE_H
#define ESPSIM_EFUSE_H

#include <stddef.h>
#include <stdint.h>

#include "sim_chip.h"

#define SIM_EFUSE_BLOCKS 11

typedef struct sim_efuse_s sim_efuse_t;

// What a register write made the controller do (the device acts on the faults).
typedef enum {
    SIM_EFUSE_EV_NONE,
    SIM_EFUSE_EV_BURN,     // a program command burnt bits (the file, if any, was saved)
    SIM_EFUSE_EV_HANGUP,   // fault efuse-hangup: burnt, then the link drops before the reply
    SIM_EFUSE_EV_BROWNOUT, // fault efuse-brownout: nothing burnt, the chip resets
} sim_efuse_ev_t;

// Security-relevant fields, decoded from the burnt bits (not from the read registers: the chip's
// hardware sees its own fuses even where RD_DIS hides them from software).
typedef struct {
    int crypt_cnt;        // SPI_BOOT_CRYPT_CNT (3 bits) / ESP32 FLASH_CRYPT_CNT (7 bits)
    int flash_crypt_conf; // ESP32 FLASH_CRYPT_CONFIG
    int coding_34;        // ESP32 CODING_SCHEME = 1
    int secure_boot_en;   // SECURE_BOOT_EN / ESP32 ABS_DONE_1
    int aggressive_revoke;
    int revoke[3];
    int soft_dis_jtag, hard_dis_jtag, dis_usb, dis_dl_icache, dis_dl_dcache;
    int dis_download_mode; // DIS_DOWNLOAD_MODE / ESP32 UART_DOWNLOAD_DIS
    int security_download; // ENABLE_SECURITY_DOWNLOAD
    int dis_dl_manual_enc; // DIS_DOWNLOAD_MANUAL_ENCRYPT / ESP32 DISABLE_DL_ENCRYPT
    int key_purpose[6];    // KEY_PURPOSE_0..5 (S2 and later)
} sim_efuse_sec_t;

// Key purposes (ESP-IDF esp_efuse_purpose_t, S2 and later).
enum {
    SIM_KP_USER = 0,
    SIM_KP_XTS_AES_256_KEY_1 = 2,
    SIM_KP_XTS_AES_256_KEY_2 = 3,
    SIM_KP_XTS_AES_128_KEY = 4,
    SIM_KP_SECURE_BOOT_DIGEST0 = 9,
};

// NULL for chips without a modelled controller (ESP8266, ESP32-C2): their registers stay plain.
sim_efuse_t *sim_efuse_new(const sim_chip_t *chip);
void sim_efuse_free(sim_efuse_t *e);

// Factory state: every bit blank, then the words a new chip leaves the factory with (MAC,
// revision, calibration) taken from `word(ctx, read_register_address)` for each read register.
void sim_efuse_factory(sim_efuse_t *e, uint32_t (*word)(void *ctx, uint32_t addr), void *ctx);

// Faults (docs/SIMULATOR.md): block N reads back with its lowest bit inverted; program command K
// (counted from 1 over the board's life) hangs up after burning / browns out before burning.
void sim_efuse_set_faults(sim_efuse_t *e, int bad_block, long hangup_k, long brownout_k);
// Persistence: the file is loaded now if it exists (else created) and rewritten after each burn.
// Returns 0, or -1 with a message in err.
int sim_efuse_attach_file(sim_efuse_t *e, const char *path, char *err, size_t errlen);
int sim_efuse_save(const sim_efuse_t *e, const char *path);
// Parses a file body as --efuse-file does (no file I/O; the fuzz target uses it). 0 or -1.
int sim_efuse_load_text(sim_efuse_t *e, const char *text, char *err, size_t errlen);

int sim_efuse_owns(const sim_efuse_t *e, uint32_t addr);
uint32_t sim_efuse_read(sim_efuse_t *e, uint32_t addr);
sim_efuse_ev_t sim_efuse_write(sim_efuse_t *e, uint32_t addr, uint32_t val);
// Chip reset: controller registers back to their reset values, read registers reloaded.
void sim_efuse_reset(sim_efuse_t *e);
// A new board (SIGUSR2): blank again (then sim_efuse_factory), fault counters start again.
void sim_efuse_blank(sim_efuse_t *e);

void sim_efuse_security(const sim_efuse_t *e, sim_efuse_sec_t *out);
// Burnt data bytes of a block (register byte order: byte 0 = low byte of its first word), as
// the chip's own hardware (AES, Secure Boot) sees them. ESP32 3/4 coded blocks give 24 bytes.
// Returns the number of bytes.
int sim_efuse_block_data(const sim_efuse_t *e, int block, uint8_t out[32]);

// Reed-Solomon (44,32) check bytes over 32 data bytes, as the controller computes them
// (GF(2^8), polynomial 0x11D, generator 2, first root 1 = alpha^0). Exposed for tests.
void sim_efuse_rs_encode(const uint8_t data[32], uint8_t check[12]);

#endif
