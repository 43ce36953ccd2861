// SPDX-License-Identifier: MIT
// sim_stubid: what a program uploaded to RAM (MEM_BEGIN/MEM_DATA/MEM_END) is, decided from the
// upload only, as a real chip "decides" by running it: one of the flasher-stub builds esptool
// ships (legacy esptool-legacy-flasher-stub or esp-flasher-stub), or an unknown program that
// simply runs. The table and the rules are in docs/SIMULATOR.md ("Uploaded programs").
// Pure functions over constant data; no device state, no I/O.
#ifndef ESPSIM_STUBID_H
#define ESPSIM_STUBID_H

#include <stddef.h>
#include <stdint.h>

#include "sim_chip.h"

typedef enum {
    SIM_PROG_APP,    // not a known flasher stub: the program runs (prints its output)
    SIM_PROG_LEGACY, // esptool-legacy-flasher-stub (esptool 4.x stub_flasher/1)
    SIM_PROG_NEW,    // esp-flasher-stub (esptool 5.x stub_flasher/2, esptool-js 0.7)
} sim_prog_kind_t;

// One uploaded RAM area as MEM_BEGIN announced it and MEM_DATA filled it.
typedef struct {
    uint32_t addr, size, got; // load address, announced size, bytes received
    uint32_t crc;             // zlib crc32 of the bytes received, in order
    uint8_t head[32];         // the first bytes received (synthetic-stub marker)
    uint8_t tail[3];          // the last bytes received (an "OHAI" split across blocks)
    int has_ohai;             // the bytes contain "OHAI", the stub greeting
} sim_upload_t;

// Account for `n` more bytes received into `a` (count, crc32, head, "OHAI").
void sim_upload_fill(sim_upload_t *a, const uint8_t *p, uint32_t n);

typedef struct {
    sim_prog_kind_t kind;
    const char *how; // "build", "marker", "load address", "load address and size", "unknown"
    char label[96];  // e.g. "esp-flasher-stub (esptool-js 0.7.0 build)"
} sim_prog_id_t;

// Marker at the start of a synthetic stub's text (tests/data/mkstub.py): the prefix, then
// "legacy" or "new", then a NUL.
#define SIM_STUB_MARKER "ESPSIM-SYNTHETIC-STUB:"

// Classifies the program whose entry point is `entry`; `text` is the uploaded area holding it,
// `ohai` whether any area uploaded with it contains the stub greeting "OHAI".
void sim_prog_identify(const sim_chip_t *chip, const sim_upload_t *text, uint32_t entry, int ohai,
                       sim_prog_id_t *out);

const char *sim_prog_kind_name(sim_prog_kind_t k); // "app", "legacy", "esp-flasher-stub"

#endif
