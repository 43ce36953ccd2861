/* SPDX-License-Identifier: MIT */
/* fuzz_espsim_efuse.c — fuzz target for espsim's --efuse-file loader (tests/sim/sim_efuse.c,
 * docs/SIMULATOR.md "eFuses and security"). Input: a file body.
 * Checks, for both controller designs (ESP32, ESP32-C3): a refused file leaves the chip as it
 * was; an accepted one saves and loads back to the same state; every register of the
 * controller window reads and the decoded security state is computed without crashing.
 * Must not: keep state between inputs; write outside the scratch directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sim_chip.h"
#include "sim_efuse.h"
#include "sim_event.h"

static uint32_t zero_word(void *ctx, uint32_t addr)
{
    (void)ctx;
    (void)addr;
    return 0;
}

/* The chip's state as its file text (sim_efuse_save into the scratch directory). */
static char *state_text(const sim_efuse_t *e)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/efuse.json", fuzz_tmpdir());
    FUZZ_CHECK(sim_efuse_save(e, path) == 0);
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL);
    char *buf = calloc(1, 1u << 16);
    FUZZ_CHECK(buf != NULL);
    size_t n = fread(buf, 1, (1u << 16) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void one_chip(const char *name, uint32_t base, const char *text)
{
    sim_efuse_t *e = sim_efuse_new(sim_chip_find(name));
    FUZZ_CHECK(e != NULL);
    sim_efuse_factory(e, zero_word, NULL);
    char *before = state_text(e);
    char err[256] = "";
    int rc = sim_efuse_load_text(e, text, err, sizeof(err));
    char *after = state_text(e);
    if (rc != 0) {
        FUZZ_CHECK(err[0] != 0 && memchr(err, 0, sizeof(err)) != NULL);
        FUZZ_CHECK(strcmp(before, after) == 0); /* refused: nothing changed */
    } else {
        sim_efuse_t *e2 = sim_efuse_new(sim_chip_find(name));
        FUZZ_CHECK(e2 != NULL);
        FUZZ_CHECK(sim_efuse_load_text(e2, after, err, sizeof(err)) == 0);
        char *again = state_text(e2);
        FUZZ_CHECK(strcmp(after, again) == 0); /* save -> load -> save is stable */
        free(again);
        sim_efuse_free(e2);
    }
    for (uint32_t a = base; a < base + 0x200; a += 4)
        if (sim_efuse_owns(e, a)) (void)sim_efuse_read(e, a);
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    uint8_t blk[32];
    for (int b = 0; b < SIM_EFUSE_BLOCKS; b++)
        FUZZ_CHECK(sim_efuse_block_data(e, b, blk) <= 32);
    free(before);
    free(after);
    sim_efuse_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_ev_quiet = 1;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    one_chip("esp32", 0x3FF5A000, text);
    one_chip("esp32c3", 0x60008800, text);
    free(text);
    return 0;
}
