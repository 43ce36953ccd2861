/* SPDX-License-Identifier: MIT */
/* plan.h — the validated, immutable input of one flashing job: port, chip expectation, reset
 * modes, flash parameters and the images (file contents loaded into memory).
 * Owns: loading and checking what can be checked before touching a device (files exist and are
 * readable, offsets aligned, no overlaps, sizes sane); the ranges and limits of every field
 * (PLAN_*_MIN/MAX, compared with schema/recipe.schema.json by test_plan); the station's
 * precedence between a recipe and a slot (plan_apply_slot); and plan_finalize(), the one place
 * that checks rules spanning several fields. The command line, the recipe loader and the job
 * manager all go through plan_finalize. Must not: talk to a device or log. */
#ifndef PLAN_H
#define PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "est_err.h"
#include "stub.h"

#define PLAN_MAX_IMAGES 16
#define PLAN_MAX_IMAGE_SIZE (128u * 1024 * 1024) /* largest flash any supported chip has */
#define PLAN_SECTOR 0x1000u
#define PLAN_TEST_EXPECT_MAX 256 /* recipe test.expect */

/* Ranges, defined once (recipe schema, command line, station: test_plan compares them with
 * schema/recipe.schema.json). */
#define PLAN_BAUD_MIN 9600u
#define PLAN_BAUD_MAX 5000000u
#define PLAN_TEST_TIMEOUT_MIN 100u
#define PLAN_TEST_TIMEOUT_MAX 600000u
#define PLAN_CONNECT_ATTEMPTS_MIN 1u
#define PLAN_CONNECT_ATTEMPTS_MAX 100u
#define PLAN_DEFAULT_BAUD 115200u

typedef enum { PLAN_BEFORE_DEFAULT, PLAN_BEFORE_NO_RESET, PLAN_BEFORE_USB_RESET } plan_before_t;
typedef enum { PLAN_AFTER_HARD_RESET, PLAN_AFTER_NO_RESET } plan_after_t;
/* What the job does once the device is identified: write the images (none = identify only),
 * read a flash range into the job's data_cb, or erase (a range, or everything). */
typedef enum { PLAN_OP_FLASH, PLAN_OP_READ, PLAN_OP_ERASE } plan_op_t;
/* The flash size written into the bootloader's header: keep it, the detected size, or a size. */
typedef enum { PLAN_FSIZE_KEEP, PLAN_FSIZE_DETECT, PLAN_FSIZE_SET } plan_fsize_mode_t;

typedef struct plan_image_s {
    uint32_t offset;
    char *path;    /* as given, for messages */
    uint8_t *data; /* file content */
    size_t size;
    uint64_t id;   /* unique in the process: the prepared-image cache's key */
} plan_image_t;

typedef struct plan_s {
    chip_id_t chip;       /* CHIP_UNKNOWN = auto-detect */
    plan_before_t before;
    plan_after_t after;
    /* before/after chosen by the recipe or the command line rather than left at the default:
     * the station's precedence (plan_apply_slot) lets them win over a slot's default */
    bool before_set, after_set;
    int flash_mode;       /* -1 keep, else 0..3 */
    /* flash size and frequency, parsed once (plan_set_flash_size / plan_set_flash_freq) */
    plan_fsize_mode_t flash_size_mode;
    uint32_t flash_size_bytes; /* PLAN_FSIZE_SET */
    bool flash_size_c1;        /* ESP8266 "2MB-c1" / "4MB-c1" layouts */
    uint16_t flash_freq_mhz;   /* 0 keep, else e.g. 40 for "40m" */
    bool compress;        /* use FLASH_DEFL_* where the loader supports it */
    bool verify;          /* SPI_FLASH_MD5 after each image where supported */
    uint32_t baud;        /* initial (sync) baud */
    unsigned connect_attempts; /* reset+sync attempts (esptool: 7) */
    /* speed (PROTOCOL.md §8, §9) */
    uint32_t flash_baud;  /* CHANGE_BAUDRATE to this after sync/stub; 0 = stay at `baud` */
    bool stub;            /* use the flasher stub when a file for the chip is found */
    const char *stub_dir;  /* borrowed, may be NULL: a stub directory (see stub.h) */
    const char *stub_file; /* borrowed, may be NULL: one stub JSON file; wins over stub_dir */
    stub_pick_t stub_pick; /* 1/ or 2/ of a stub_flasher directory (stub.h; --stub-version,
                            * recipe "stub_version"); STUB_PICK_DEFAULT = its esptool's default */
    bool skip_unchanged;  /* no write when the device's MD5 of the region already matches */
    bool erase_all;       /* PLAN_OP_FLASH: ERASE_FLASH first; PLAN_OP_ERASE: the whole chip */
    plan_op_t op;
    uint32_t op_offset, op_size; /* PLAN_OP_READ (size 0: to the end of the flash) and
                                  * PLAN_OP_ERASE (region) range */
    /* Post-flash test (PLAN_OP_FLASH with images; needs PLAN_AFTER_HARD_RESET and a port that
     * can reset the board): after the hard reset, read the application's output at test_baud
     * until test_expect (a plain substring) appears, else fail with test_failed after
     * test_timeout_ms. */
    bool test;
    uint32_t test_baud;       /* default 115200 */
    const char *test_expect;  /* borrowed, 1..PLAN_TEST_EXPECT_MAX bytes */
    uint32_t test_timeout_ms; /* default 10000 */
    size_t n_images;
    plan_image_t images[PLAN_MAX_IMAGES];
} plan_t;

/* A failure found while building a plan: class + message (for the user). */
typedef struct plan_err_s {
    est_class_t cls;
    char msg[512];
} plan_err_t;

void plan_init(plan_t *p);
/* Load `path` to be written at `offset` (copies the path). Checks: file readable
 * (image_missing), not empty (image_invalid), <= PLAN_MAX_IMAGE_SIZE, offset a multiple of 4 KiB
 * (bad_offset). Returns 0 or a negative error with *err filled. */
int plan_add_image(plan_t *p, uint32_t offset, const char *path, plan_err_t *err);
/* Add an image from memory (the plan takes ownership of `data`, malloc'ed). */
int plan_add_image_mem(plan_t *p, uint32_t offset, const char *label, uint8_t *data, size_t size,
                       plan_err_t *err);
/* Sort images by offset and refuse overlaps (bad_offset). */
int plan_finish(plan_t *p, plan_err_t *err);
/* Check the images (PLAN_OP_READ / region erase: the op range) against a flash of `flash_size`
 * bytes: offset beyond the end → bad_offset; running past the end → flash_too_small. */
int plan_check_flash(const plan_t *p, uint32_t flash_size, plan_err_t *err);
void plan_free(plan_t *p);

/* esptool's --before / --after names; 0 or -1 if unknown. The spelling is `default_reset`,
 * `usb_reset`, `no_reset`, `hard_reset` everywhere; the hyphen spelling (`hard-reset`) is still
 * accepted and plan_spelling_deprecated() says so, for the caller's warning. */
int plan_parse_before(const char *s, plan_before_t *out);
int plan_parse_after(const char *s, plan_after_t *out);
bool plan_spelling_deprecated(const char *s);
const char *plan_before_name(plan_before_t b);
const char *plan_after_name(plan_after_t a);

/* "keep", "detect", a size ("4MB", "512KB") or an ESP8266 layout ("2MB-c1", "4MB-c1"). Returns
 * 0, or -1 with *err filled (usage). */
int plan_set_flash_size(plan_t *p, const char *s, plan_err_t *err);
/* "keep" or "<n>m" (e.g. "40m"; which ones a chip takes is checked against the chip). */
int plan_set_flash_freq(plan_t *p, const char *s, plan_err_t *err);
/* The flash size setting as text: "keep", "detect", "4MB", "2MB-c1". */
const char *plan_flash_size_name(const plan_t *p, char *buf, size_t cap);
/* The flash frequency setting as text: "keep", "40m". */
const char *plan_flash_freq_name(const plan_t *p, char *buf, size_t cap);

/* The station's slot settings and the one precedence rule (docs/STATION.md "Reset modes"):
 * a recipe's explicit before/after (before_set/after_set; a recipe `test` sets after hard_reset
 * explicitly) win over the slot's values, which are defaults; with `force` the slot's values
 * win. Then plan_finalize() decides whether the result is consistent. */
typedef struct plan_slot_s {
    plan_before_t before;
    plan_after_t after;
    bool force; /* slot "reset_override": true */
} plan_slot_t;
void plan_apply_slot(plan_t *p, const plan_slot_t *slot);

/* The one check of the rules that span fields, and of every range: test needs after hard_reset
 * and a flashing job with images; rates, timeouts and attempts within their ranges; an erase or
 * read range sane. Returns 0, or a negative error with *err (class usage) saying what to
 * change. */
int plan_finalize(const plan_t *p, plan_err_t *err);

/* Parse a number with base auto-detection (0x.., decimal); 0 on success. */
int plan_parse_u32(const char *s, uint32_t *out);
/* Human size "4MB" / "512KB" / bytes, for messages. */
const char *plan_fmt_size(uint32_t bytes, char *buf, size_t cap);

#endif
