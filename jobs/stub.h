/* SPDX-License-Identifier: MIT */
/* stub.h — esptool's flasher-stub JSON files (PROTOCOL.md §8.1–§8.2): which file of a stub
 * directory serves a chip (esptool 4.2–4.7, 4.8+ and esp-flasher-stub layouts, the ESP32-P4
 * revision rule), parsing and checking a file (base64 segments, load addresses, entry point),
 * and a small cache so that many jobs share one parsed file.
 * Must not: talk to a device, log, or ship stub files (users point at an installed esptool). */
#ifndef STUB_H
#define STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"

#define STUB_MAX_FILE (2u * 1024 * 1024) /* a stub JSON file (legacy ~20 KB, new stub < 200 KB) */
#define STUB_MAX_SEGMENT (512u * 1024)   /* decoded text or data: far more than any chip's RAM */

typedef struct stub_s {
    uint32_t text_start, data_start, bss_start, entry;
    uint8_t *text;
    size_t text_len;
    uint8_t *data; /* NULL when the file has no data segment */
    size_t data_len;
    bool has_bss;
    char *path; /* the file it came from (stub_load_file / stub_get), else NULL */
} stub_t;

/* Parse stub JSON `json[0..len)`: text + text_start + entry required, data + data_start
 * together or not at all, bss_start optional; other keys (the new stub's plugin table) are
 * ignored. Checks: valid base64, segments non-empty and <= STUB_MAX_SEGMENT, addresses 32-bit
 * integers, entry inside text, text and data not overlapping. Returns 0, or EST_ESTUB with a
 * message in err (which names the key). */
int stub_parse(const char *json, size_t len, stub_t *s, char *err, size_t cap);
/* Read (<= STUB_MAX_FILE) and parse a file. Returns 0, or EST_ESTUB / -errno with err set. */
int stub_load_file(const char *path, stub_t *s, char *err, size_t cap);
void stub_free(stub_t *s);

/* Which stub of a directory holding both 1/ (legacy esptool-legacy-flasher-stub) and 2/
 * (esp-flasher-stub), i.e. esptool's targets/stub_flasher (docs/CLI.md "Flasher stubs"). */
typedef enum {
    STUB_PICK_DEFAULT = 0, /* what the esptool the directory came from uses by default */
    STUB_PICK_LEGACY,      /* 1/ */
    STUB_PICK_NEW,         /* 2/ */
} stub_pick_t;

/* What stub_find_pick() chose, for the log and the job report. */
typedef struct {
    char esptool_version[32]; /* version of the esptool the directory came from, "" = unknown */
    char name[96];            /* e.g. "2/esp32c3.json (esp-flasher-stub, esptool 5.3.1)" */
} stub_choice_t;

/* "default", "1" / "legacy", "2" / "esp-flasher-stub" (case as written) → *out; -1 if none. */
int stub_pick_parse(const char *s, stub_pick_t *out);
const char *stub_pick_name(stub_pick_t p); /* "default", "legacy", "esp-flasher-stub" */

/* The version of the esptool a stub directory belongs to, from (first found): dir/VERSION
 * (one line, e.g. "5.3.1"; what an operator writes beside a copied stub_flasher), the
 * `__version__ = "..."` of dir/../../__init__.py (dir is an installed esptool's
 * targets/stub_flasher or one of its 1/ 2/ subdirectories: then ../../../__init__.py), or an
 * esptool-X.dist-info directory beside the esptool package. 0 with the version in `out`, -1
 * when none says. */
int stub_esptool_version(const char *dir, char *out, size_t cap);

/* Find the file for `chip` (revision `chip_rev` = major*100+minor) under `dir`, in this order:
 *   dir/<chip>.json                 esptool >= 4.8 (targets/stub_flasher/1 or /2), esp-flasher-stub
 *   dir/stub_flasher_<short>.json   esptool 4.2–4.7 (e.g. stub_flasher_32c3.json)
 *   dir/1/<chip>.json, dir/2/<chip>.json   dir is esptool's targets/stub_flasher itself: first
 *                                   the one its esptool uses by default (esptool < 5: 1/,
 *                                   5.x: 2/; version unknown: 1/), then the other
 * stub_find() is stub_find_pick(..., STUB_PICK_DEFAULT, ..., NULL).
 * ESP32-P4 below revision 3.00 uses esp32p4-rev1.json, else esp32p4rc1.json (esptool 5.x's
 * name), instead of esp32p4.json (PROTOCOL.md §8.1); the 4.2–4.7 stub_flasher_32p4.json was
 * built before v3.00 silicon and is used only below v3.00.
 * Returns 0 with the path in `path`; UV_ENOENT when the directory is fine but holds nothing for
 * this chip (`why` says what was looked for); EST_ESTUB when `dir` is not a readable directory. */
int stub_find(const char *dir, const chip_info_t *chip, unsigned chip_rev, char *path, size_t cap,
              char *why, size_t why_cap);
/* The same with an explicit choice between 1/ and 2/: STUB_PICK_LEGACY / STUB_PICK_NEW take
 * only that subdirectory of a stub_flasher directory (EST_ESTUB when it has no file for the
 * chip: the recipe asked for it); a flat directory is used as it is. `choice` (may be NULL)
 * says what was chosen and why. */
int stub_find_pick(const char *dir, const chip_info_t *chip, unsigned chip_rev, stub_pick_t pick,
                   char *path, size_t cap, stub_choice_t *choice, char *why, size_t why_cap);

/* The chip a stub file name is for ("esp32c3.json", "stub_flasher_32c3.json",
 * "esp32p4-rev1.json", "esp32p4rc1.json"), or NULL when the name says nothing. Used to refuse a
 * recipe's stub file that belongs to another chip. */
const chip_info_t *stub_file_chip(const char *path);
/* 0 when `path` is an ESP32-P4 stub whose name says it is for the other side of v3.00 than
 * `chip_rev` (esp32p4-rev1 / esp32p4rc1 / stub_flasher_32p4 below, esp32p4 from v3.00), else 1
 * (right, or not a P4 name). */
int stub_file_p4_rev_ok(const char *path, unsigned chip_rev);

/* Shared, parsed files (loop thread only): the file at `path` parsed once and reused while its
 * size and modification time stay the same. Returns a reference to release with stub_put, or
 * NULL with err set. */
const stub_t *stub_get(const char *path, char *err, size_t cap);
void stub_put(const stub_t *s);
/* Drop every unreferenced cached file (tests; the cache also trims itself). */
void stub_cache_clear(void);

#endif
