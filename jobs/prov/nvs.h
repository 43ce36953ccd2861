/* SPDX-License-Identifier: MIT */
/* nvs.h — NVS partition image generator (ESP-IDF's non-volatile storage format, see
 * docs/DEVICE-DATA.md "The NVS format"): 4,096-byte pages with a 32-byte header and an
 * entry-state bitmap, 126 entries of 32 bytes, namespaces, integers, strings, version 1 blobs
 * and version 2 multi-page blobs (data chunks plus an index entry), optional NVS encryption
 * (AES-256-XTS per 32-byte entry, keys from an nvs_keys partition or derived by the HMAC
 * scheme). Entries are placed exactly as Espressif's reference generator places them, so the
 * same input gives the same bytes.
 * Must not: do file I/O, print, or keep global state (libcrypto only for AES-XTS and HMAC). */
#ifndef NVS_H
#define NVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NVS_PAGE_SIZE 4096u
#define NVS_ENTRY_SIZE 32u
#define NVS_ENTRIES 126u         /* entries per page */
#define NVS_KEY_MAX 15u          /* key and namespace names, bytes, without the NUL */
#define NVS_NS_MAX 254u          /* namespaces per partition (index 1..254) */
#define NVS_V1_VALUE_MAX 1984u   /* version 1: strings and blobs, bytes (a string with its NUL) */
#define NVS_V2_STR_MAX 4000u     /* version 2: strings, bytes with the NUL */
#define NVS_STR_PAGE_MAX 3968u   /* what a single page can take (124 data entries + header) */
#define NVS_XTS_KEYS_LEN 64u     /* XTS data key (32) + tweak key (32) */
#define NVS_KEYS_PART_SIZE 4096u /* nvs_keys partition image */

/* Item types (byte 1 of an entry). */
enum nvs_type {
    NVS_TYPE_U8 = 0x01,
    NVS_TYPE_I8 = 0x11,
    NVS_TYPE_U16 = 0x02,
    NVS_TYPE_I16 = 0x12,
    NVS_TYPE_U32 = 0x04,
    NVS_TYPE_I32 = 0x14,
    NVS_TYPE_U64 = 0x08,
    NVS_TYPE_I64 = 0x18,
    NVS_TYPE_STR = 0x21,
    NVS_TYPE_BLOB = 0x41, /* version 1 single-page blob */
    NVS_TYPE_BLOB_DATA = 0x42,
    NVS_TYPE_BLOB_IDX = 0x48,
};

/* Errors (negative returns); the text goes to the caller's err buffer. */
enum nvs_err {
    NVS_OK = 0,
    NVS_EINPUT = -1, /* bad key, value, encoding or CSV: the input must be fixed */
    NVS_ESIZE = -2,  /* the data does not fit in the partition size */
    NVS_ENOMEM = -3,
    NVS_ECRYPTO = -4, /* libcrypto refused (e.g. XTS key halves equal) */
    NVS_EIO = -5,     /* a file named by the input cannot be read (nvs_csv.c) */
};

typedef struct nvs_gen nvs_gen_t;

/* A generator for a partition of `size` bytes (a multiple of 4,096, at least 4,096), format
 * version 1 or 2, encrypted with `xts_keys` (64 bytes: data key then tweak key) or plain (NULL).
 * Partitions of 12 KiB and more keep their last page free (NVS needs a spare page to
 * garbage-collect); smaller ones are read-only partitions and use every page.
 * Returns NULL with a message in err (NVS_EINPUT-type problems or no memory). */
nvs_gen_t *nvs_gen_new(size_t size, int version, const uint8_t *xts_keys, char *err, size_t errlen);
void nvs_gen_free(nvs_gen_t *g);

/* Open a namespace: later items go into it. A name opened before is reused (no new entry). */
int nvs_gen_namespace(nvs_gen_t *g, const char *name, char *err, size_t errlen);

/* An integer item. `type` one of the eight integer types; `v` the value's two's-complement bits
 * (range checked against the type: a value that does not fit is NVS_EINPUT). */
int nvs_gen_int(nvs_gen_t *g, const char *key, enum nvs_type type, uint64_t v, char *err,
                size_t errlen);

/* A string item: `len` bytes of `s` (no NUL inside expected; the terminating NUL is added). */
int nvs_gen_str(nvs_gen_t *g, const char *key, const uint8_t *s, size_t len, char *err,
                size_t errlen);

/* A blob item (version 1: single page, at most 1,984 bytes; version 2: chunks over pages). */
int nvs_gen_blob(nvs_gen_t *g, const char *key, const uint8_t *d, size_t len, char *err,
                 size_t errlen);

/* The finished image (`size` bytes; the generator keeps ownership; valid until free). Adding
 * items after this is not allowed. */
const uint8_t *nvs_gen_image(nvs_gen_t *g, size_t *len);

/* Pages that hold items so far (for reports). */
unsigned nvs_gen_pages_used(const nvs_gen_t *g);

/* Decrypt an encrypted NVS partition image in place (the reverse of the generator's encryption):
 * every entry of a used page that the bitmap does not mark empty is decrypted with AES-256-XTS,
 * tweak = its offset; headers, bitmaps and empty entries stay. `len` a multiple of 4096.
 * Returns 0, NVS_EINPUT (length) or NVS_ECRYPTO (keys refused). */
int nvs_decrypt(uint8_t *img, size_t len, const uint8_t keys[NVS_XTS_KEYS_LEN], char *err,
                size_t errlen);

/* CRC-32 as NVS computes it (zlib's CRC-32 continued from 0xFFFFFFFF: no initial inversion). */
uint32_t nvs_crc32(const uint8_t *d, size_t n);

/* Parse a partition size the way the reference does (Python int(x, 0): decimal, 0x, 0o, 0b,
 * underscores between digits). Returns 0, or NVS_EINPUT. No range check. */
int nvs_parse_size(const char *s, size_t *out);

/* The HMAC-based key derivation: XTS data key = HMAC-SHA256(hmac_key, 0x5A 0x5A 0xBE 0xAE x 8),
 * tweak key = HMAC-SHA256(hmac_key, 0xA5 0xA5 0xDE 0xCE x 8). Returns 0 or NVS_ECRYPTO. */
int nvs_keys_from_hmac(const uint8_t *hmac_key, size_t n, uint8_t keys[NVS_XTS_KEYS_LEN]);

/* The nvs_keys partition image: keys (64 bytes), CRC-32 of them (little endian), 0xFF up to
 * 4,096 bytes. */
void nvs_keys_partition(const uint8_t keys[NVS_XTS_KEYS_LEN], uint8_t part[NVS_KEYS_PART_SIZE]);

/* Read keys from an nvs_keys image (at least 64 bytes). *crc_ok (may be NULL) tells whether the
 * CRC after the keys matches (false when the buffer is shorter than 68 bytes). 0 or NVS_EINPUT. */
int nvs_keys_parse(const uint8_t *buf, size_t len, uint8_t keys[NVS_XTS_KEYS_LEN], bool *crc_ok);

#endif
