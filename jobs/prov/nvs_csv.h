/* SPDX-License-Identifier: MIT */
/* nvs_csv.h — the NVS generator's CSV input (docs/DEVICE-DATA.md "Input CSV"): a reader for
 * the comma-separated format the reference tools read (quoted fields, doubled quotes, line
 * breaks inside quotes, '#' comment lines), the four-column key,type,encoding,value rows turned
 * into NVS items, and a writer for the same format (CRLF, quotes only where needed).
 * Must not: print; files named in a CSV are read only through the loader in the options. */
#ifndef NVS_CSV_H
#define NVS_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvs.h"

/* A growing byte string (always NUL-terminated when p != NULL). */
typedef struct nvs_buf {
    char *p;
    size_t len, cap;
} nvs_buf_t;

int nvs_buf_add(nvs_buf_t *b, const void *d, size_t n); /* 0 or NVS_ENOMEM */
void nvs_buf_free(nvs_buf_t *b);

/* One CSV record: its fields (NUL-terminated copies) and the line it starts on (1-based, in
 * the file as given, comment lines counted). A blank line is a record with n == 0. */
typedef struct nvs_csv_rec {
    char **f;
    size_t n;
    unsigned line;
} nvs_csv_rec_t;

typedef struct nvs_csv {
    nvs_csv_rec_t *r;
    size_t n;
} nvs_csv_t;

/* Read CSV text. Line ends \n, \r\n and \r; a UTF-8 byte-order mark is skipped; with
 * `skip_comments` a physical line starting with '#' is dropped. NUL bytes are refused.
 * Returns 0, NVS_EINPUT (message with the line) or NVS_ENOMEM. */
int nvs_csv_read(const char *text, size_t len, bool skip_comments, nvs_csv_t *out, char *err,
                 size_t errlen);
void nvs_csv_free(nvs_csv_t *c);

/* Append one record: fields quoted when they hold ',', '"', CR or LF (quotes doubled), joined
 * by ',', ended by CRLF; a record of one empty field is written "". 0 or NVS_ENOMEM. */
int nvs_csv_write_row(nvs_buf_t *b, const char *const *fields, size_t n);

/* Reads the file a "file" row names: the whole content into a malloc'd *data. Returns 0, or
 * NVS_EIO with a message. */
typedef int (*nvs_load_fn)(void *ctx, const char *path, uint8_t **data, size_t *len, char *err,
                           size_t errlen);

typedef struct nvs_csv_opts {
    /* "file" rows: relative paths are taken from base_dir (NULL: the current directory, as the
     * reference does) */
    const char *base_dir;
    nvs_load_fn load; /* NULL: read from the file system */
    void *load_ctx;
    size_t max_file; /* largest file a row may name; 0: 16 MiB */
} nvs_csv_opts_t;

/* Add the items of one input CSV (a header row naming the columns key, type, encoding, value,
 * then one row per namespace or item) to a generator. Errors name the CSV line and the key.
 * Returns 0 or an nvs_err. */
int nvs_csv_feed(nvs_gen_t *g, const char *text, size_t len, const nvs_csv_opts_t *opts, char *err,
                 size_t errlen);

/* The whole path: generator of `size` bytes and version, optional 64-byte XTS keys, one CSV;
 * *img (malloc'd, `size` bytes) on success. */
int nvs_csv_generate(const char *text, size_t len, size_t size, int version,
                     const uint8_t *xts_keys, const nvs_csv_opts_t *opts, uint8_t **img,
                     size_t *img_len, char *err, size_t errlen);

/* Value conversions the CSV rows use (exposed for tests and other value sources).
 * Integer text as the reference reads it (decimal, optional sign, surrounding white space,
 * '_' between digits) into the two's-complement bits for `type`: 0 or NVS_EINPUT. */
int nvs_parse_int(const char *s, size_t n, enum nvs_type type, uint64_t *out);
/* hex2bin: white space around is ignored, an even number of hex digits. malloc'd *out. */
int nvs_decode_hex(const char *s, size_t n, uint8_t **out, size_t *outlen);
/* base64 (lenient like Python's binascii: characters outside the alphabet are skipped, data
 * after complete padding ignored). malloc'd *out. */
int nvs_decode_base64(const char *s, size_t n, uint8_t **out, size_t *outlen);
/* The encoding names (u8 … i64, string, hex2bin, base64, binary), case-insensitive: the integer
 * type, NVS_TYPE_STR for string, NVS_TYPE_BLOB for the binary ones (*kind: 'i', 's', 'h',
 * 'b' (base64), 'r' (raw binary)); 0 when unknown. */
int nvs_encoding(const char *name, char *kind);

#endif
