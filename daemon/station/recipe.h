/* SPDX-License-Identifier: MIT */
/* recipe.h — JSON recipes written by test engineers (docs/RECIPES.md, schema/recipe.schema.json):
 * validation with JSON-path error messages, image files checked against their sha256, the
 * device checks a recipe asks for, and the import of an ESP-IDF build/flasher_args.json.
 * Owns: turning recipe bytes into a recipe_t with a filled plan_t. Must not: log, talk to a
 * device, or touch the database (the caller stores recipe_t.text under recipe_t.hash). */
#ifndef RECIPE_H
#define RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "est_err.h"
#include "plan.h"

#define RECIPE_MAX_BYTES (1024u * 1024u) /* a recipe file (and a flasher_args.json) */
#define RECIPE_MAX_ERRORS 8              /* problems reported per check */
#define RECIPE_NAME_MAX 64

/* What is wrong. `cls_name` is the stable error class name: "recipe_invalid" (the recipe text
 * itself), "image_missing", "image_invalid", "bad_offset", "wrong_chip", "flash_too_small".
 * `cls` is the same class as an est_class_t; until est_err.h lists recipe_invalid it holds
 * EST_CLASS_USAGE for that one (cls_name is always right). Each item names a JSON path. */
typedef struct recipe_problem_s {
    char path[128]; /* "$.images[1].offset" */
    char text[384]; /* "must be a multiple of 0x1000 (got \"0x1001\")" */
} recipe_problem_t;

typedef struct recipe_err_s {
    est_class_t cls;
    const char *cls_name;
    int code;      /* EST_ERECIPE, EST_EIMAGE, EST_EOFFSET, EST_ECHIP, EST_ETOOBIG, -errno */
    char msg[640]; /* the first problem as "<path>: <text>", plus "(and N more problems)" */
    size_t n;      /* problems found (items holds the first RECIPE_MAX_ERRORS) */
    recipe_problem_t items[RECIPE_MAX_ERRORS];
} recipe_err_t;

typedef enum { RECIPE_ERASE_REGIONS, RECIPE_ERASE_ALL } recipe_erase_t;
typedef enum { RECIPE_STUB_OFF, RECIPE_STUB_AUTO, RECIPE_STUB_FILE } recipe_stub_t;

/* One image as the recipe lists it (recipe order; plan.images is sorted by offset). */
typedef struct recipe_image_s {
    uint32_t offset;
    char label[RECIPE_NAME_MAX + 1]; /* "" when the recipe gives none */
    char *file;                      /* as written in the recipe, relative to its directory */
    char sha256[65];
    size_t size; /* 0 when loaded with RECIPE_NO_IMAGES */
} recipe_image_t;

typedef struct recipe_s {
    char name[RECIPE_NAME_MAX + 1];
    char version[RECIPE_NAME_MAX + 1];
    char hash[65]; /* sha256 hex of the exact recipe bytes: the recipe's identity */
    char *text;    /* those bytes, NUL-terminated (for store_recipe_put) */
    size_t text_len;
    char *dir;      /* directory relative image paths start from */
    size_t n_chips; /* allowed chips */
    chip_id_t chips[CHIP__COUNT];
    uint32_t baud; /* flashing baud (CHANGE_BAUDRATE); 115200 = stay at the sync baud */
    recipe_stub_t stub;
    char *stub_path; /* RECIPE_STUB_FILE: resolved path */
    recipe_erase_t erase;
    uint32_t min_flash_size;   /* checks.min_flash_size in bytes, 0 = no check */
    unsigned rev_min, rev_max; /* checks.chip_revision as major*100+minor (0 .. 9999 = any) */
    bool test;                 /* post-flash test present */
    uint32_t test_baud;
    char *test_expect;
    uint32_t test_timeout_ms;
    unsigned attempts; /* retry.attempts */
    bool retry_lower_baud; /* retry.lower_baud: each retry at half the previous flashing baud */
    size_t n_images;
    recipe_image_t images[PLAN_MAX_IMAGES];
    plan_t plan; /* chip (when exactly one is allowed), reset modes, flash params,
                  * compress, verify, flash_baud, stub (stub_file / stub_dir from a "stub"
                  * path: borrowed from stub_path), erase_all, skip_unchanged and the loaded
                  * images. The station's stub_dir is the job manager's to add. */
} recipe_t;

/* Load flags. */
#define RECIPE_NO_PARENT 0x1u /* refuse image paths that climb out of the recipe's directory */
#define RECIPE_NO_IMAGES 0x2u /* check the text only: do not open image files (plan has none) */

/* Load, validate and check a recipe file (<= RECIPE_MAX_BYTES). Image paths are relative to the
 * file's directory. Returns 0, or a negative code with *err filled; r is then empty (no need to
 * free, recipe_free is harmless). */
int recipe_load_file(const char *path, unsigned flags, recipe_t *r, recipe_err_t *err);
/* The same for bytes in memory; `base_dir` anchors relative image paths. */
int recipe_load_mem(const char *text, size_t len, const char *base_dir, unsigned flags, recipe_t *r,
                    recipe_err_t *err);
void recipe_free(recipe_t *r);

/* The checks a recipe asks for before any write, against what the job detected: chip in the
 * allowed list and revision in range (wrong_chip), flash at least checks.min_flash_size and
 * every image inside it (flash_too_small / bad_offset). flash_size 0 = unknown, which fails a
 * min_flash_size check. */
int recipe_check_device(const recipe_t *r, const chip_info_t *chip, unsigned chip_rev,
                        uint32_t flash_size, recipe_err_t *err);

/* Import an ESP-IDF build/flasher_args.json (IDF v4.x–v6.x, PROTOCOL.md §13): flash_files are the
 * images, named entries give labels, flash_settings (else write_flash_args) the flash
 * parameters, extra_esptool_args chip/before/after/stub. Image paths in the result are relative
 * to the directory of `out_path` (which need not exist yet; its directory must), each with its
 * sha256. Name/version/chip come from `opts` when set, else build/project_description.json,
 * else defaults (chip also from the bootloader image header). The result is checked by loading
 * it like any recipe. On success *json is the recipe text (malloc'ed, caller frees). */
typedef struct recipe_import_opts_s {
    const char *name;    /* NULL: project_name, else the app file's name */
    const char *version; /* NULL: project_version, else "unversioned" */
    const char *chip;    /* NULL: extra_esptool_args.chip, project target, image header */
} recipe_import_opts_t;
int recipe_import(const char *flasher_args_path, const char *out_path,
                  const recipe_import_opts_t *opts, char **json, recipe_err_t *err);

/* Write `text` to `path` atomically (temporary file, fsync, rename). Without `overwrite`, an
 * existing file is left alone and -EEXIST returned. */
int recipe_write_file(const char *path, const char *text, bool overwrite, recipe_err_t *err);

/* ---- the validator's rules, exported so a unit test can hold them against the schema ---- */

#define RECIPE_T_BOOL 0x1u
#define RECIPE_T_INT 0x2u
#define RECIPE_T_STRING 0x4u
#define RECIPE_T_ARRAY 0x8u
#define RECIPE_T_OBJECT 0x10u

/* One property of the schema. Absent limits are 0 / NULL / false. Objects accept only the
 * properties listed under them (additionalProperties: false). */
typedef struct recipe_field_s {
    const char *path; /* "$.images[*].offset" */
    unsigned types;   /* RECIPE_T_* */
    bool required;
    const char *const *enums;  /* allowed string values, NULL-terminated */
    const char *pattern;       /* strings: ERE that is also an ECMA-262 regex, anchored */
    const char *form;          /* the pattern in words, for messages */
    unsigned min_len, max_len; /* strings, in characters */
    bool has_range;            /* integers: minimum .. maximum */
    int64_t minimum, maximum;
    int64_t multiple_of;           /* integers */
    unsigned min_items, max_items; /* arrays */
    bool unique;                   /* arrays: uniqueItems */
    const char *dflt;              /* JSON text of the default, NULL when none */
} recipe_field_t;

const recipe_field_t *recipe_fields(size_t *n);

#endif
