/* SPDX-License-Identifier: MIT */
/* image.h — firmware image header parsing and flash-parameter patching (PROTOCOL.md §11, §12),
 * plus the write-preparation rules that depend only on bytes and numbers (padding, ESP8266 ROM
 * erase-size work-around, PROTOCOL.md §4.5.2–§4.5.3). Must not: do I/O or allocate. */
#ifndef IMAGE_H
#define IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"

#define IMAGE_MAGIC 0xE9
#define IMAGE_HDR_LEN 8
#define IMAGE_EXT_HDR_LEN 16
#define IMAGE_MAX_SEGMENTS 16

typedef struct image_info_s {
    uint8_t magic;
    uint8_t n_segments;
    uint8_t flash_mode;     /* byte 2 */
    uint8_t size_freq;      /* byte 3: size code << 4 | freq code */
    uint32_t entry;
    bool has_ext;           /* ESP32-family extended header parsed */
    uint16_t chip_id;       /* ext header */
    uint8_t min_rev;        /* legacy byte */
    uint16_t min_rev_full, max_rev_full;
    bool hash_appended;
    size_t data_len;        /* bytes up to and including the checksum byte */
    bool checksum_ok;       /* XOR checksum over segment data matches */
    bool sha_ok;            /* hash_appended and the digest matches (false if absent) */
} image_info_t;

/* Parse an image. `esp8266` selects the layout without extended header. Returns 0 when the
 * header and all segments lie inside `len` and the checksum byte is present, else EST_EIMAGE. */
int image_parse(const uint8_t *img, size_t len, bool esp8266, image_info_t *info);

/* Flash parameter override: -1 = keep. */
typedef struct image_params_s {
    int mode;       /* 0..3 */
    int size_code;  /* header nibble */
    int freq_code;  /* header nibble */
} image_params_t;

/* esptool's rule (PROTOCOL.md §11.4): patch bytes 2–3 of an image written at the chip's bootloader
 * offset, when it parses as a valid image of that chip and at least one parameter is not "keep";
 * when a SHA-256 digest is appended (ESP32-family only), recompute it over [0, data_len). Returns 1
 * if patched, 0 if left alone (reason in *why, may be NULL), negative on error. */
int image_patch_params(uint8_t *img, size_t len, const chip_info_t *c, uint32_t offset,
                       const image_params_t *p, const char **why);

/* SHA-256 used by the patcher (OpenSSL libcrypto; pure computation). */
void image_sha256(const uint8_t *data, size_t len, uint8_t out[32]);

/* XOR-0xEF checksum of segment data, as in the image trailer. */
uint8_t image_checksum(const uint8_t *data, size_t n);

/* ESP8266 ROM FLASH_BEGIN erase-size work-around (PROTOCOL.md §4.5.3, esptool's get_erase_size). */
uint32_t image_esp8266_erase_size(uint32_t offset, uint32_t size);

/* Image check against a chip (PROTOCOL.md §11.3): chip ID and revision range. Returns 0 if
 * acceptable or not an image of the family, EST_ECHIP with a reason otherwise. */
int image_check_chip(const image_info_t *info, const chip_info_t *c, unsigned chip_rev,
                     const char **why);

#endif
