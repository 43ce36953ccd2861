/* SPDX-License-Identifier: MIT */
/* recipe_int.h — what the recipe_*.c files share (not for use outside daemon/station/recipe*.c):
 *   recipe_schema.c  the rules (schema/recipe.schema.json as a table), the validator, errors,
 *                    value readers and small parsers;
 *   recipe_plan.c    loading: a validated recipe's values, images and files into the plan, and
 *                    the device checks (the plan building);
 *   recipe_import.c  writing recipe JSON and importing ESP-IDF's flasher_args.json. */
#ifndef RECIPE_INT_H
#define RECIPE_INT_H

#include <cJSON.h>

#include "recipe.h"

#define RECIPE_MAX_FLASH (128u * 1024 * 1024) /* largest flash any supported chip addresses */
#define RECIPE_MAX_OFFSET (RECIPE_MAX_FLASH - PLAN_SECTOR)
#define INVALID "recipe_invalid"

/* value lists of the schema's enums (NULL-terminated) */
extern const char *const recipe_afters[];
extern const char *const recipe_befores[];
extern const char *const recipe_freqs[];
extern const char *const recipe_modes[];
extern const char *const recipe_sizes[];

/* Validate a parsed recipe against the rules; problems go into `err`. */
void recipe_validate_root(const cJSON *root, recipe_err_t *err);
void recipe_enum_words(const char *const *e, char *buf, size_t cap);
void recipe_err_reset(recipe_err_t *e);
int recipe_fail(recipe_err_t *e, const char *cls, int code, const char *path, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
const recipe_field_t *recipe_field(const char *path);
const cJSON *recipe_get(const cJSON *obj, const char *fpath, cJSON **dflt);
bool recipe_get_bool(const cJSON *obj, const char *fpath, cJSON **dflt);
int64_t recipe_get_int(const cJSON *obj, const char *fpath, cJSON **dflt);
const char *recipe_get_str(const cJSON *obj, const char *fpath, cJSON **dflt);
bool recipe_in_enum(const char *const *e, const char *v);
bool recipe_json_int(const cJSON *v, int64_t *out);
int recipe_parse_number(const char *s, uint64_t *out);
unsigned recipe_parse_rev(const char *s);
void recipe_path_key(char *out, size_t cap, const char *parent, const char *key);
char *recipe_join(const char *dir, const char *rel);
void recipe_line_col(const char *text, size_t off, unsigned *line, unsigned *col);
int recipe_read_file(const char *path, size_t limit, uint8_t **out, size_t *len);
void recipe_sha256_hex(const uint8_t *data, size_t len, char out[65]);

#endif
