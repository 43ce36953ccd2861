/* SPDX-License-Identifier: MIT */
/* fuzz_image.c — fuzz target for image parsing and header patching (jobs/proto/image.c,
 * PROTOCOL.md §11, §4.5.3). Input: an image file; parsed in both layouts, checked and patched for
 * every chip; a patch may change only bytes 2–3 and the appended digest, and must leave a valid
 * image. Must not: keep state between inputs. */
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "est_err.h"
#include "fuzz.h"
#include "image.h"

/* After a patch the image must parse again with a good checksum and, when a SHA-256 is
 * appended (ESP32 family), a matching digest; patching twice changes nothing. */

static void check_parse(const uint8_t *img, size_t len, bool esp8266, image_info_t *info)
{
    int rc = image_parse(img, len, esp8266, info);
    FUZZ_CHECK(rc == 0 || rc == EST_EIMAGE);
    if (rc != 0) return;
    FUZZ_CHECK(len >= IMAGE_HDR_LEN && img[0] == IMAGE_MAGIC && info->magic == IMAGE_MAGIC);
    FUZZ_CHECK(info->n_segments == img[1] && info->n_segments <= IMAGE_MAX_SEGMENTS);
    FUZZ_CHECK(info->has_ext == !esp8266);
    /* the checksum byte sits at offset 15 mod 16, inside the input */
    FUZZ_CHECK(info->data_len <= len && info->data_len % 16 == 0);
    FUZZ_CHECK(!info->sha_ok || (info->hash_appended && info->data_len + 32 <= len));
}

static void check_patch(const uint8_t *img, size_t len, const chip_info_t *c, uint32_t offset,
                        const image_params_t *p, uint8_t *work)
{
    const char *why = "unset";
    image_info_t before, after;
    bool esp8266 = c->id == CHIP_ESP8266;
    int rc;

    memcpy(work, img, len);
    rc = image_patch_params(work, len, c, offset, p, &why);
    FUZZ_CHECK(rc == 0 || rc == 1);
    if (rc == 0) {
        FUZZ_CHECK(why != NULL && memcmp(work, img, len) == 0);
        return;
    }
    FUZZ_CHECK(why == NULL && offset == c->bootloader_offset);
    /* the patcher only touches images that parse with a good checksum (and digest) */
    FUZZ_CHECK(image_parse(img, len, esp8266, &before) == 0 && before.checksum_ok);
    FUZZ_CHECK(!before.hash_appended || before.sha_ok);
    FUZZ_CHECK(p->mode < 0 || work[2] == p->mode);
    FUZZ_CHECK(p->size_code < 0 || work[3] >> 4 == p->size_code);
    FUZZ_CHECK(p->freq_code < 0 || (work[3] & 0xF) == p->freq_code);
    FUZZ_CHECK(work[2] != img[2] || work[3] != img[3]);
    for (size_t i = 0; i < len; i++) {
        bool digest =
            !esp8266 && before.hash_appended && i >= before.data_len && i < before.data_len + 32;
        if (i != 2 && i != 3 && !digest) FUZZ_CHECK(work[i] == img[i]);
    }
    FUZZ_CHECK(image_parse(work, len, esp8266, &after) == 0 && after.checksum_ok);
    FUZZ_CHECK(after.data_len == before.data_len);
    if (!esp8266 && before.hash_appended) FUZZ_CHECK(after.sha_ok);
    /* patching again with the same parameters changes nothing */
    FUZZ_CHECK(image_patch_params(work, len, c, offset, p, &why) == 0 && why != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const image_params_t params[] = {{-1, -1, -1},  {2, -1, -1}, {-1, 2, -1},
                                            {-1, -1, 0xF}, {0, 4, 0},   {3, 0xF, 0xF}};
    static const unsigned revs[] = {0, 1, 100, 101, 300, 9999};
    image_info_t info;
    uint8_t *work = malloc(size ? size : 1);
    FUZZ_CHECK(work != NULL);

    check_parse(data, size, false, &info);
    check_parse(data, size, true, &info);
    for (int id = 0; id < CHIP__COUNT; id++) {
        const chip_info_t *c = chip_get((chip_id_t)id);
        const char *why;
        FUZZ_CHECK(c != NULL);
        if (image_parse(data, size, id == CHIP_ESP8266, &info) == 0) {
            for (size_t r = 0; r < sizeof revs / sizeof revs[0]; r++) {
                int rc = image_check_chip(&info, c, revs[r], &why);
                FUZZ_CHECK(rc == 0 || (rc == EST_ECHIP && why != NULL));
            }
        }
        for (size_t k = 0; k < sizeof params / sizeof params[0]; k++)
            check_patch(data, size, c, c->bootloader_offset, &params[k], work);
        check_patch(data, size, c, c->bootloader_offset + 0x1000, &params[1], work);
    }
    /* ESP8266 erase-size rule (§4.5.3): the request never exceeds the sectors written. */
    if (size >= 8) {
        uint32_t off = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                       (uint32_t)data[3] << 24;
        uint32_t len = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 |
                       (uint32_t)data[7] << 24;
        uint64_t sectors = ((uint64_t)len + 4095) / 4096;
        FUZZ_CHECK(image_esp8266_erase_size(off, len) <= sectors * 4096);
    }
    free(work);
    return 0;
}
