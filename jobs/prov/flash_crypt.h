/* SPDX-License-Identifier: MIT */
/* flash_crypt.h — host-side flash encryption of an image for its flash address, byte for byte
 * what the chip's flash-encryption engine would produce (docs/SECURITY-PROVISIONING.md
 * §"Flash encryption"), so an image can be written already encrypted (release-mode factory
 * flow). Owns: XTS-AES-128/256 as ESP32-S2 and later use it, and the original ESP32's AES-256
 * scheme with its per-32-byte key tweak. Decryption too (recovery of a flash dump with an
 * escrowed key). Must not: do I/O, log or keep key material after returning. */
#ifndef FLASH_CRYPT_H
#define FLASH_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* XTS-AES (ESP32-S2, S3, C3, C6, H2, C5, P4...): `key` is the key file as espsecure reads it:
 * 32 bytes = XTS-AES-128 (two 128-bit halves), 64 bytes = XTS-AES-256. Data unit 128 bytes,
 * tweak = the unit's flash address (little-endian, 16 bytes), each unit byte-reversed on the way
 * in and out. `addr` and `len` must be multiples of 16; `len` > 0. `out` may equal `in`.
 * Returns 0, or -1 with a reason in err. */
int flash_crypt_xts(const uint8_t *key, size_t key_len, uint32_t addr, const uint8_t *in,
                    uint8_t *out, size_t len, bool decrypt, char *err, size_t err_cap);

/* ESP32 flash encryption: AES-256 with the key tweaked per 32-byte flash block according to
 * FLASH_CRYPT_CONFIG (`crypt_conf`, 0..15; production value 0xF), each 16-byte block
 * byte-reversed, and the AES direction inverted (encrypting flash uses AES decryption).
 * `key` is the 32-byte key file (a 24-byte 3/4-coding key is extended as the hardware does).
 * `addr` and `len` multiples of 16. Returns 0, or -1 with a reason in err. */
int flash_crypt_esp32(const uint8_t *key, size_t key_len, uint32_t addr, unsigned crypt_conf,
                      const uint8_t *in, uint8_t *out, size_t len, bool decrypt, char *err,
                      size_t err_cap);

/* A new per-unit flash-encryption key from the OS's CSPRNG (OpenSSL RAND_priv_bytes): 32 bytes
 * (XTS-AES-128 or the ESP32's AES-256) or 64 (XTS-AES-256). XTS keys never have two equal
 * halves (OpenSSL refuses those). Returns 0, or -1 with err (bad length, no entropy). The caller
 * escrows it before use and cleanses it afterwards (OPENSSL_cleanse). */
int flash_crypt_generate_key(uint8_t *key, size_t len, char *err, size_t err_cap);

/* The ESP32's tweaked AES-256 key for the 32-byte flash block at `addr` (exposed for tests and
 * the simulator's independent check). */
void flash_crypt_esp32_block_key(const uint8_t key[32], uint32_t addr, unsigned crypt_conf,
                                 uint8_t out[32]);

#endif
