// SPDX-License-Identifier: MIT
// sim_flashenc: the flash controller's encryption as the simulated chip applies it to encrypted
// writes and undoes it when it boots (docs/SIMULATOR.md "eFuses and security"): XTS-AES-128/256
// with 128-byte data units (ESP32-S2 and later) and the ESP32's AES-256 with the per-32-byte key
// tweak selected by FLASH_CRYPT_CONFIG. Written from the documented algorithm, on libcrypto.
#ifndef ESPSIM_FLASHENC_H
#define ESPSIM_FLASHENC_H

#include <stddef.h>
#include <stdint.h>

#include "sim_efuse.h"

typedef enum {
    SIM_FE_XTS_128,
    SIM_FE_XTS_256,
    SIM_FE_ESP32_AES256,
} sim_fe_scheme_t;

typedef struct {
    sim_fe_scheme_t scheme;
    uint8_t key[64]; // in the order of espsecure's key file (the eFuse holds it byte-reversed)
    int crypt_conf;  // ESP32 FLASH_CRYPT_CONFIG
} sim_fe_key_t;

// The key the chip's flash encryption uses, from its burnt eFuses: a key block with purpose
// XTS_AES_128_KEY, or the XTS_AES_256_KEY_1/2 pair, else (no such key) the all-zero XTS-128
// key of a blank chip; ESP32: BLOCK1 and FLASH_CRYPT_CONFIG.
void sim_fe_key_from_efuse(const sim_efuse_t *e, sim_fe_key_t *k);

// Encrypts (decrypt = 0) or decrypts buf in place as it sits at flash address addr. addr and
// len must be multiples of 16. Returns 0, or -1 if libcrypto fails.
int sim_fe_crypt(const sim_fe_key_t *k, uint32_t addr, uint8_t *buf, size_t len, int decrypt);

// An encrypted write session (FLASH_BEGIN / FLASH_DEFL_BEGIN with encrypted = 1): the flash
// controller encrypts in 16-byte units, so bytes that do not fill a unit wait for the next piece
// (inflated data arrives in arbitrary pieces). Pieces must follow each other in flash order.
typedef struct {
    int on;
    sim_fe_key_t key;
    uint32_t next; // flash address the held bytes start at
    uint8_t held[16];
    uint32_t nheld;
} sim_fe_writer_t;

void sim_fe_writer_start(sim_fe_writer_t *w, const sim_efuse_t *e, int on);
// Takes plaintext p[0..*n) for flash address *off; returns a malloc'd ciphertext to program at
// the updated *off with the updated *n (NULL and *n = 0 when nothing is complete yet).
uint8_t *sim_fe_writer_feed(sim_fe_writer_t *w, uint32_t *off, const uint8_t *p, uint32_t *n);

#endif
