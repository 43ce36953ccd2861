/* SPDX-License-Identifier: MIT */
/* image.c — firmware image parsing (PROTOCOL.md §11.1–§11.3), bootloader header patching with
 * SHA-256 fix-up (PROTOCOL.md §11.4), the image chip/revision check (PROTOCOL.md §11.3) and the
 * ESP8266 ROM erase-size rule (PROTOCOL.md §4.5.3). Must not: do I/O, allocate, or decide whether
 * to patch beyond esptool's rules (the caller owns Secure Boot / SDM decisions, PROTOCOL.md §11.4
 * item 4). */
#include "image.h"

#include <string.h>

#include <openssl/sha.h>

#include "est_err.h"

#define IMAGE__SEG_HDR_LEN 8
#define IMAGE__MAX_SEG_LEN (16u << 20) /* esptool rejects segments of 16 MiB or more */
#define IMAGE__SHA_LEN 32
#define IMAGE__HASH_APPENDED_OFF 23 /* ext header byte 15 (PROTOCOL.md §11.2) */

static uint32_t image_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t image_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint8_t image_checksum(const uint8_t *data, size_t n)
{
    uint8_t c = 0xEF;
    for (size_t i = 0; i < n; i++)
        c ^= data[i];
    return c;
}

void image_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
    SHA256(data, len, out);
}

int image_parse(const uint8_t *img, size_t len, bool esp8266, image_info_t *info)
{
    if (!img || !info) return EST_EIMAGE;
    memset(info, 0, sizeof(*info));
    if (len < IMAGE_HDR_LEN || img[0] != IMAGE_MAGIC) return EST_EIMAGE;
    info->magic = img[0];
    info->n_segments = img[1];
    info->flash_mode = img[2];
    info->size_freq = img[3];
    info->entry = image_le32(img + 4);
    if (info->n_segments > IMAGE_MAX_SEGMENTS) return EST_EIMAGE;

    size_t pos = IMAGE_HDR_LEN;
    if (!esp8266) {
        /* ESP32 family: 16-byte extended header (PROTOCOL.md §11.2). The ESP8266 v1 layout has
         * none. */
        if (len < IMAGE_HDR_LEN + IMAGE_EXT_HDR_LEN) return EST_EIMAGE;
        const uint8_t *x = img + IMAGE_HDR_LEN;
        info->has_ext = true;
        info->chip_id = image_le16(x + 4);
        info->min_rev = x[6];
        info->min_rev_full = image_le16(x + 7);
        info->max_rev_full = image_le16(x + 9);
        info->hash_appended = x[15] == 1;
        pos += IMAGE_EXT_HDR_LEN;
    }

    uint8_t sum = 0xEF;
    for (unsigned i = 0; i < info->n_segments; i++) {
        if (len - pos < IMAGE__SEG_HDR_LEN) return EST_EIMAGE;
        uint32_t seg_len = image_le32(img + pos + 4);
        pos += IMAGE__SEG_HDR_LEN;
        if (seg_len >= IMAGE__MAX_SEG_LEN || len - pos < seg_len) return EST_EIMAGE;
        for (uint32_t k = 0; k < seg_len; k++)
            sum ^= img[pos + k];
        pos += seg_len;
    }

    /* PROTOCOL.md §11.3: zero padding up to file offset ≡ 15 (mod 16), then the checksum byte. */
    size_t cks = pos | 15u;
    if (cks >= len) return EST_EIMAGE;
    info->checksum_ok = img[cks] == sum;
    info->data_len = cks + 1;

    if (info->hash_appended && len - info->data_len >= IMAGE__SHA_LEN) {
        uint8_t digest[IMAGE__SHA_LEN];
        image_sha256(img, info->data_len, digest);
        info->sha_ok = memcmp(digest, img + info->data_len, IMAGE__SHA_LEN) == 0;
    }
    return 0;
}

static void image_set_why(const char **why, const char *text)
{
    if (why) *why = text;
}

int image_patch_params(uint8_t *img, size_t len, const chip_info_t *c, uint32_t offset,
                       const image_params_t *p, const char **why)
{
    image_set_why(why, NULL);
    if (!img || !c || !p) return EST_EUSAGE;
    if (p->mode > 3 || p->size_code > 0xF || p->freq_code > 0xF || p->mode < -1 ||
        p->size_code < -1 || p->freq_code < -1)
        return EST_EUSAGE;

    /* PROTOCOL.md §11.4, in esptool's order. */
    if (offset != c->bootloader_offset) {
        image_set_why(why, "not written at the bootloader offset");
        return 0;
    }
    if (p->mode < 0 && p->size_code < 0 && p->freq_code < 0) {
        image_set_why(why, "all flash parameters are 'keep'");
        return 0;
    }
    if (len < IMAGE_HDR_LEN || img[0] != IMAGE_MAGIC) {
        image_set_why(why, "does not look like an image file");
        return 0;
    }
    bool esp8266 = c->id == CHIP_ESP8266;
    image_info_t info;
    /* "Parses as an image of that chip": header, segments, checksum and (when present) the
     * appended digest must all be right; this protects encrypted data that happens to start
     * with 0xE9. */
    if (image_parse(img, len, esp8266, &info) != 0 || !info.checksum_ok ||
        (info.hash_appended && !info.sha_ok)) {
        image_set_why(why, "not a valid image for this chip");
        return 0;
    }
    if (!esp8266 && (c->image_chip_id < 0 || info.chip_id != (uint32_t)c->image_chip_id)) {
        image_set_why(why, "image chip ID does not match the chip");
        return 0;
    }

    uint8_t mode = p->mode >= 0 ? (uint8_t)p->mode : img[2];
    uint8_t size = p->size_code >= 0 ? (uint8_t)p->size_code : (uint8_t)(img[3] >> 4);
    uint8_t freq = p->freq_code >= 0 ? (uint8_t)p->freq_code : (uint8_t)(img[3] & 0xF);
    uint8_t b3 = (uint8_t)(size << 4 | freq);
    if (img[2] == mode && img[3] == b3) {
        image_set_why(why, "header already has these flash parameters");
        return 0;
    }
    img[2] = mode;
    img[3] = b3;

    /* The bootloader checks the appended digest, so it must follow the new header. Only the
     * 32 digest bytes change; anything after them (merged binaries) is kept. Never for ESP8266
     * (PROTOCOL.md §11.4: esptool's own guard is unreliable). */
    if (!esp8266 && info.hash_appended) image_sha256(img, info.data_len, img + info.data_len);
    return 1;
}

uint32_t image_esp8266_erase_size(uint32_t offset, uint32_t size)
{
    /* PROTOCOL.md §4.5.3 (esptool ESP8266ROM.get_erase_size): the ROM erases about twice the
     * sectors inside the first 64 KiB block, so ask for less; the result still covers the data. */
    const uint64_t sector = 4096, per_block = 16;
    uint64_t num = ((uint64_t)size + sector - 1) / sector;
    uint64_t start = offset / sector;
    uint64_t head = per_block - (start % per_block);
    if (num < head) head = num;
    if (num < 2 * head) return (uint32_t)((num + 1) / 2 * sector);
    return (uint32_t)((num - head) * sector);
}

int image_check_chip(const image_info_t *info, const chip_info_t *c, unsigned chip_rev,
                     const char **why)
{
    image_set_why(why, NULL);
    if (!info || !c) return EST_EUSAGE;
    if (!info->has_ext || c->image_chip_id < 0) return 0; /* ESP8266: no chip ID, no revision */
    if (info->chip_id != (uint32_t)c->image_chip_id) {
        image_set_why(why, "image is built for a different chip");
        return EST_ECHIP;
    }
    /* PROTOCOL.md §11.3, esptool write_flash: which revision fields to use. */
    bool full;
    if (info->max_rev_full == 0)
        full = false; /* fields absent */
    else if (info->max_rev_full == 0xFFFF)
        full = !(info->min_rev_full == 0 && info->min_rev != 0);
    else
        full = true;
    if (full) {
        if (chip_rev < info->min_rev_full) {
            image_set_why(why, "chip revision is below the image's minimum revision");
            return EST_ECHIP;
        }
        if (chip_rev > info->max_rev_full) {
            image_set_why(why, "chip revision is above the image's maximum revision");
            return EST_ECHIP;
        }
        return 0;
    }
    /* Legacy byte: the major revision, except on ESP32-C3 where ESP-IDF stores the minor. */
    unsigned rev = c->id == CHIP_ESP32C3 ? chip_rev % 100 : chip_rev / 100;
    if (rev < info->min_rev) {
        image_set_why(why, "chip revision is below the image's minimum revision");
        return EST_ECHIP;
    }
    return 0;
}
