/* SPDX-License-Identifier: MIT */
/* fuzz_efuse.c — fuzz target for the eFuse burn planner (jobs/prov/efuse.c,
 * docs/SECURITY-PROVISIONING.md §6): the block contents come from a device and decide
 * irreversible burns. Input: byte 0 picks the chip, the next 11 × 32 bytes are the current
 * blocks (missing bytes are 0), the rest is a list of requests (opcode, field index, value
 * bytes). Invariants: the planned state only adds bits to the current one; a plan never
 * programs a bit that is already burnt in a block without coding; a coded block is only burnt
 * when it was empty; protection and lockdown burns come after every data burn; every burn's
 * expected read-back passes efuse_burn_verify and its register program fits; the dry run never
 * contains the key bytes. Must not: keep state between inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "efuse.h"
#include "fuzz.h"
#include "secinfo.h"

static const char *const CHIPS[] = {"esp32", "esp32s3", "esp32c3", "esp32c6", "esp32s2"};

static void request(efuse_plan_t *p, const uint8_t *r, size_t n)
{
    const efuse_chip_t *c = p->chip;
    const efuse_field_def_t *f = &c->fields[r[1] % c->n_fields];
    uint8_t key[64];
    char err[256];
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && 2 + i < n; i++)
        v |= (uint64_t)r[2 + i] << (8 * i);
    memset(key, 0xA5, sizeof key); /* the marker the dry run must never show */
    err[0] = 0;
    switch (r[0] % 6) {
    case 0:
        if (efuse_plan_set(p, f->name, f->len >= 64 ? v : v & ((1ull << f->len) - 1), err,
                           sizeof err) != 0)
            FUZZ_CHECK(err[0]);
        break;
    case 1: {
        uint8_t b[32] = {0};
        memcpy(b, r + 2, n - 2 > 32 ? 32 : n - 2);
        if (efuse_plan_set_bytes(p, f->name, b, (f->len + 7u) / 8u, err, sizeof err) != 0)
            FUZZ_CHECK(err[0]);
        break;
    }
    case 2:
        if (efuse_plan_key(p, (int)(r[1] % 13) - 1, (int)(v % 16),
                           key, (v >> 8) & 1 ? 64 : ((v >> 9) & 1 ? 24 : 32), NULL, err,
                           sizeof err) != 0)
            FUZZ_CHECK(err[0]);
        break;
    case 3: {
        uint8_t mac[6] = {0};
        memcpy(mac, r + 2, n - 2 > 6 ? 6 : n - 2);
        if (efuse_plan_custom_mac(p, mac, err, sizeof err) != 0) FUZZ_CHECK(err[0]);
        break;
    }
    case 4:
        if (efuse_plan_protect_block(p, c->blocks[r[1] % c->n_blocks].name, v & 1, err,
                                     sizeof err) != 0)
            FUZZ_CHECK(err[0]);
        break;
    default:
        break;
    }
}

static void check_plan(const efuse_plan_t *p)
{
    const efuse_chip_t *c = p->chip;
    bool data_done = false;
    efuse_step_t steps[EFUSE_MAX_STEPS];
    char err[256];
    static char text[16384];
    for (unsigned b = 0; b < c->n_blocks; b++)
        for (unsigned i = 0; i < EFUSE_BLOCK_BYTES; i++)
            FUZZ_CHECK((p->cur.blk[b][i] & ~p->want.blk[b][i]) == 0);
    FUZZ_CHECK(p->n_burns <= EFUSE_MAX_BURNS);
    for (unsigned i = 0; i < p->n_burns; i++) {
        const efuse_burn_t *bn = &p->burns[i];
        uint32_t cur[8];
        efuse_bytes_to_words(p->cur.blk[bn->block], EFUSE_BLOCK_BYTES, cur);
        FUZZ_CHECK(bn->block < c->n_blocks);
        if (bn->block != 0) FUZZ_CHECK(!data_done); /* data blocks first */
        if (bn->block == 0) data_done = true;
        if (bn->protect_pass || bn->lockdown) FUZZ_CHECK(bn->block == 0);
        if (bn->lockdown) FUZZ_CHECK(i == p->n_burns - 1);
        if (bn->coding == EFUSE_CODING_NONE)
            for (unsigned w = 0; w < bn->n_pgm; w++)
                FUZZ_CHECK((bn->pgm[w] & cur[w]) == 0);
        else
            for (unsigned w = 0; w < 8; w++)
                FUZZ_CHECK(cur[w] == 0); /* coded blocks: only when empty */
        FUZZ_CHECK(efuse_burn_verify(p, i, bn->expect, bn->n_expect, 0, err, sizeof err) == 0);
        FUZZ_CHECK(efuse_burn_steps(p, i, 40, steps, err, sizeof err) > 0);
    }
    efuse_plan_describe(p, text, sizeof text);
    FUZZ_CHECK(strlen(text) < sizeof text);
    /* a burn of key material shows no program words, and a key change no bytes */
    for (unsigned i = 0; i < p->n_burns; i++) {
        char head[64], *line, *nl;
        snprintf(head, sizeof head, "burn %u/%u: ", i + 1, p->n_burns);
        line = strstr(text, head);
        if (!line) continue; /* the text may have been cut at its end */
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        FUZZ_CHECK(!p->burns[i].secret || strstr(line, "<secret>") != NULL);
        FUZZ_CHECK(!p->burns[i].secret || strstr(line, ": 0") == NULL);
        if (nl) *nl = '\n';
    }
    for (unsigned i = 0; i < p->n_changes; i++)
        FUZZ_CHECK(p->changes[i].field || p->changes[i].bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static efuse_plan_t plan;
    const efuse_chip_t *c;
    efuse_state_t s;
    efuse_summary_t sum;
    char text[2048], err[256];
    size_t off = 1 + EFUSE_MAX_BLOCKS * EFUSE_BLOCK_BYTES;
    if (size < 1) return 0;
    c = efuse_chip(CHIPS[data[0] % 5]);
    FUZZ_CHECK(c != NULL);
    memset(&s, 0, sizeof s);
    memcpy(&s, data + 1, size - 1 < sizeof s ? size - 1 : sizeof s);
    efuse_summarize(c, &s, &sum);
    FUZZ_CHECK(efuse_summary_describe(c, &sum, text, sizeof text) < sizeof text);
    efuse_plan_init(&plan, c, &s);
    while (off + 2 <= size) {
        size_t n = size - off < 10 ? size - off : 10;
        request(&plan, data + off, n);
        off += n;
    }
    if (efuse_plan_finish(&plan, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0]);
        return 0;
    }
    check_plan(&plan);
    return 0;
}
