// SPDX-License-Identifier: MIT
// sim_stubid: identifies an uploaded RAM program (docs/SIMULATOR.md "Uploaded programs").
// Order: the synthetic-stub marker of tests/data/mkstub.py; a known build (text load address,
// length and crc32); the load address of a stub family's text (where both families load at the
// same address, the text length decides); anything else is an application that runs.
#include "sim_stubid.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

// Builds whose text we know exactly (length and zlib crc32 of the decoded "text" segment).
// esp-flasher-stub as esptool-js 0.7.0 ships it (lib/targets/stub_flasher/<chip>.json).
static const struct {
    const char *chip;
    sim_prog_kind_t kind;
    uint32_t text_start, text_len, crc;
    const char *label;
} builds[] = {
    {"esp8266", SIM_PROG_NEW, 0x4010C500, 11456, 0x546520CF, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32", SIM_PROG_NEW, 0x400A8000, 6456, 0x20160F4A, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32s2", SIM_PROG_NEW, 0x40028000, 6600, 0xADAA3638, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32s3", SIM_PROG_NEW, 0x40378000, 7832, 0x0CAB211B, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32c2", SIM_PROG_NEW, 0x40380000, 5816, 0x3FC3155D, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32c3", SIM_PROG_NEW, 0x40380000, 5880, 0x36B50AEA, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32c6", SIM_PROG_NEW, 0x40800000, 6900, 0xC9CC71AA, "esp-flasher-stub (esptool-js 0.7.0)"},
    {"esp32h2", SIM_PROG_NEW, 0x40800000, 5864, 0xE913C14B, "esp-flasher-stub (esptool-js 0.7.0)"},
};

// Where each family's linker script puts the text (IRAM origin), per chip. Legacy: the
// text_start of esptool's stub_flasher/1/<chip>.json; new: esp-flasher-stub src/ld/<chip>.ld
// (ESP8266: two origins seen in its history). `split`: where both families share the address,
// a text at least this long is taken for esp-flasher-stub (legacy builds are 3.3-5.7 KiB,
// esp-flasher-stub 5.8-7.8 KiB; see docs/SIMULATOR.md).
static const struct {
    const char *chip;
    uint32_t legacy, new1, new2, split;
} origins[] = {
    {"esp8266", 0x4010D000, 0x4010C500, 0x40104800, 0},
    {"esp32", 0x400BE000, 0x400A8000, 0, 0},
    {"esp32s2", 0x40028000, 0x40028000, 0, 5632},
    {"esp32s3", 0x40378000, 0x40378000, 0, 6912},
    {"esp32c2", 0x40380000, 0x40380000, 0, 4864},
    {"esp32c3", 0x40380000, 0x40380000, 0, 4864},
    {"esp32c6", 0x40800000, 0x40800000, 0, 4864},
    {"esp32h2", 0x40800000, 0x40800000, 0, 4864},
};

#define STUB_MIN_TEXT 2048u // smaller texts at a stub's load address are not taken for a stub

const char *sim_prog_kind_name(sim_prog_kind_t k)
{
    switch (k) {
    case SIM_PROG_LEGACY: return "legacy";
    case SIM_PROG_NEW: return "esp-flasher-stub";
    case SIM_PROG_APP: break;
    }
    return "app";
}

static void set(sim_prog_id_t *out, sim_prog_kind_t k, const char *how, const char *label)
{
    out->kind = k;
    out->how = how;
    snprintf(out->label, sizeof(out->label), "%s", label);
}

void sim_upload_fill(sim_upload_t *a, const uint8_t *p, uint32_t n)
{
    // "OHAI" across the previous block's last 3 bytes and this one's first 3
    uint8_t seam[6];
    uint32_t have = a->got < 3 ? a->got : 3, k = n < 3 ? n : 3;
    memcpy(seam, a->tail + 3 - have, have);
    memcpy(seam + have, p, k);
    for (uint32_t i = 0; i + 4 <= have + k; i++)
        if (memcmp(seam + i, "OHAI", 4) == 0) a->has_ohai = 1;
    for (uint32_t i = 0; !a->has_ohai && i + 4 <= n; i++)
        if (memcmp(p + i, "OHAI", 4) == 0) a->has_ohai = 1;
    for (uint32_t i = 0; i < n && a->got + i < sizeof(a->head); i++)
        a->head[a->got + i] = p[i];
    if (n >= 3) {
        memcpy(a->tail, p + n - 3, 3);
    } else {
        memmove(a->tail, a->tail + n, 3 - n);
        memcpy(a->tail + 3 - n, p, n);
    }
    a->crc = (uint32_t)crc32(a->crc, p, n);
    a->got += n;
}

// Which family an unlisted build at an unknown address belongs to: the one whose load address
// on this chip is nearer (chips where both share one: by the size rule).
static sim_prog_kind_t nearest_family(const char *chip, uint32_t addr, uint32_t len)
{
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        if (strcmp(origins[i].chip, chip) != 0) continue;
        if (origins[i].legacy == origins[i].new1)
            return len >= origins[i].split ? SIM_PROG_NEW : SIM_PROG_LEGACY;
        uint32_t dl =
            addr > origins[i].legacy ? addr - origins[i].legacy : origins[i].legacy - addr;
        uint32_t dn = addr > origins[i].new1 ? addr - origins[i].new1 : origins[i].new1 - addr;
        return dn < dl ? SIM_PROG_NEW : SIM_PROG_LEGACY;
    }
    return SIM_PROG_LEGACY;
}

void sim_prog_identify(const sim_chip_t *chip, const sim_upload_t *text, uint32_t entry, int ohai,
                       sim_prog_id_t *out)
{
    (void)entry;
    set(out, SIM_PROG_APP, "unknown", "unknown program");
    if (!text) return;
    size_t ml = strlen(SIM_STUB_MARKER);
    if (text->got >= ml + 4 && memcmp(text->head, SIM_STUB_MARKER, ml) == 0) {
        const char *fam = (const char *)text->head + ml;
        size_t room = sizeof(text->head) - ml;
        if (strncmp(fam, "legacy", room) == 0) {
            set(out, SIM_PROG_LEGACY, "marker", "synthetic legacy stub (mkstub.py)");
            return;
        }
        if (strncmp(fam, "new", room) == 0) {
            set(out, SIM_PROG_NEW, "marker", "synthetic esp-flasher-stub (mkstub.py)");
            return;
        }
    }
    for (size_t i = 0; i < sizeof(builds) / sizeof(builds[0]); i++) {
        if (strcmp(builds[i].chip, chip->name) == 0 && builds[i].text_start == text->addr &&
            builds[i].text_len == text->got && builds[i].crc == text->crc) {
            set(out, builds[i].kind, "build", builds[i].label);
            return;
        }
    }
    // Every stub build is at least 3 KiB of text; a small program at a stub's address is not a
    // stub (esptool's ESP32-S3 RAM test program loads at 0x40378000 too, with ~100 bytes).
    if (text->got < STUB_MIN_TEXT) return;
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        if (strcmp(origins[i].chip, chip->name) != 0) continue;
        int leg = text->addr == origins[i].legacy;
        int neu =
            text->addr == origins[i].new1 || (origins[i].new2 && text->addr == origins[i].new2);
        if (leg && neu) {
            if (text->got >= origins[i].split)
                set(out, SIM_PROG_NEW, "load address and size",
                    "esp-flasher-stub (unlisted build)");
            else
                set(out, SIM_PROG_LEGACY, "load address and size", "legacy stub (unlisted build)");
        } else if (leg) {
            set(out, SIM_PROG_LEGACY, "load address", "legacy stub (unlisted build)");
        } else if (neu) {
            set(out, SIM_PROG_NEW, "load address", "esp-flasher-stub (unlisted build)");
        }
        if (leg || neu) return;
    }
    // A build at an address not in the table (a later release moved it) still carries the
    // greeting it sends: "OHAI" as bytes in its text or data (the Xtensa builds)
    if (ohai) {
        sim_prog_kind_t k = nearest_family(chip->name, text->addr, text->got);
        set(out, k, "OHAI in the upload",
            k == SIM_PROG_NEW ? "esp-flasher-stub (unlisted build)"
                              : "legacy stub (unlisted build)");
    }
}
