/* SPDX-License-Identifier: MIT */
/* nvs_mfg.h — the mass-manufacturing formats of Espressif's manufacturing utility
 * (docs/DEVICE-DATA.md "Manufacturing: config and values"): a config CSV (key,type,encoding,
 * with REPEAT as an optional fourth field; "name,namespace," opens a namespace) and a values
 * CSV (a header of keys, one row per device; REPEAT keys take the first row's value; columns
 * the config does not name are metadata). Each device row becomes the generator's four-column
 * CSV (nvs_csv.h), byte for byte what the reference writes.
 * Must not: print or touch files. */
#ifndef NVS_MFG_H
#define NVS_MFG_H

#include <stdbool.h>
#include <stddef.h>

#include "nvs_csv.h"

typedef struct nvs_mfg_item {
    char *key, *type, *encoding; /* type "namespace": encoding NULL */
    bool repeat;
    unsigned line; /* in the config file */
} nvs_mfg_item_t;

typedef struct nvs_mfg_conf {
    nvs_mfg_item_t *items;
    size_t n;
} nvs_mfg_conf_t;

/* Parse a config CSV. Errors (NVS_EINPUT) name the line: empty lines, a wrong number of fields,
 * an unknown type or encoding, a key over 15 bytes, a fourth field other than REPEAT.
 * '#' lines are comments. */
int nvs_mfg_conf_parse(const char *text, size_t len, nvs_mfg_conf_t *conf, char *err,
                       size_t errlen);
void nvs_mfg_conf_free(nvs_mfg_conf_t *conf);

/* The value of a config key for one device, or NULL when there is none. */
typedef const char *(*nvs_mfg_lookup_fn)(void *ctx, const char *key);

/* Render the four-column CSV for one device: header, namespace rows, one row per config key
 * with its value from `lookup`. Appends to *out. NVS_EINPUT (key named) when a value is
 * missing. */
int nvs_mfg_render(const nvs_mfg_conf_t *conf, nvs_mfg_lookup_fn lookup, void *ctx, nvs_buf_t *out,
                   char *err, size_t errlen);

/* One device's image in one call (what a station job does once the device's values are known):
 * render the CSV from `conf` and `lookup`, generate a partition of `size` bytes, version 1 or 2,
 * encrypted when `xts_keys` (64 bytes) is given; files named by "file" rows through `opts`
 * (NULL: relative to the current directory). *img is malloc'd (size bytes); the rendered CSV is
 * appended to *csv when csv is not NULL. Returns 0 or an nvs_err with a message. */
int nvs_mfg_image(const nvs_mfg_conf_t *conf, nvs_mfg_lookup_fn lookup, void *ctx, size_t size,
                  int version, const uint8_t *xts_keys, const nvs_csv_opts_t *opts, nvs_buf_t *csv,
                  uint8_t **img, size_t *img_len, char *err, size_t errlen);

typedef struct nvs_mfg_values {
    nvs_csv_t csv;     /* csv.r[0] the header */
    size_t fileid_col; /* (size_t)-1: file ids are 1, 2, 3, ... */
} nvs_mfg_values_t;

/* Parse a values CSV against a config: every config key must be a column; every row has as
 * many fields as the header; no empty lines; `fileid` (may be NULL) must be a column.
 * REPEAT keys' cells are replaced by the first row's. */
int nvs_mfg_values_parse(const char *text, size_t len, const nvs_mfg_conf_t *conf,
                         const char *fileid, nvs_mfg_values_t *vals, char *err, size_t errlen);
void nvs_mfg_values_free(nvs_mfg_values_t *vals);

/* Device rows in the values file. */
size_t nvs_mfg_rows(const nvs_mfg_values_t *vals);

/* Device `i` (0-based): its CSV (appended to *out) and its file id (the --fileid column's
 * value, or i + 1) in `id`. The id must be usable as a file name: NVS_EINPUT otherwise. */
int nvs_mfg_row(const nvs_mfg_conf_t *conf, const nvs_mfg_values_t *vals, size_t i, nvs_buf_t *out,
                char *id, size_t idlen, char *err, size_t errlen);

#endif
