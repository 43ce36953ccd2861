/* SPDX-License-Identifier: MIT */
/* devdata.h — the pure parts of per-device value sources (docs/DEVICE-DATA.md "Value
 * sources"): value templates such as "SN-{year}-{n:06}" or "ACME-{mac:HEX}" rendered from a
 * counter value, the date and what the device reported (MAC, flash ID, chip, revision);
 * counters (start + step × index, overflow checked); MAC formats; random bytes from the OS's
 * CSPRNG and their SHA-256 for the record.
 * Must not: do I/O or keep state (the caller owns counters and pools). */
#ifndef DEVDATA_H
#define DEVDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DEVDATA_MAX_VALUE 4000 /* longest rendered value (an NVS string's limit) */

enum devdata_err {
    DEVDATA_OK = 0,
    DEVDATA_EFORMAT = -1,  /* the template is malformed: fix the recipe */
    DEVDATA_EMISSING = -2, /* the template needs something the context does not have (yet) */
    DEVDATA_ERANGE = -3,   /* counter overflow, value longer than the buffer */
    DEVDATA_ERANDOM = -4,  /* the CSPRNG failed */
};

/* What a template can use. Fields not known (yet) are left unset. */
typedef struct devdata_ctx {
    bool has_n;
    uint64_t n; /* the counter value */
    bool has_time;
    struct tm when; /* date and time for {year} ... (the caller picks UTC or local) */
    bool has_mac;
    uint8_t mac[6];
    bool has_flash_id;
    uint32_t flash_id;  /* JEDEC 0xMMTTCC */
    const char *chip;   /* e.g. "esp32s3"; NULL: unknown */
    const char *rev;    /* e.g. "v0.2"; NULL: unknown */
    const char *serial; /* the unit's serial, once chosen; NULL: none */
} devdata_ctx_t;

/* Check a template's syntax without rendering it: placeholders {name} or {name:spec} with the
 * names and specs below, "{{" and "}}" for literal braces. 0 or DEVDATA_EFORMAT (message names
 * the position and what is wrong).
 *   {n}        counter value; spec [0][width][d|x|X], e.g. {n:06}, {n:x}, {n:08X} (width <= 20)
 *   {year} {yy} {month} {day} {hour} {minute} {doy} {week}
 *              date and time: 4/2/2/2/2/2/3/2 digits ({week}: ISO 8601 week number)
 *   {mac}      spec colon (default, aa:bb:..), COLON, dash, DASH, hex, HEX, last3, LAST3
 *   {flash_id} 6 hex digits (manufacturer first); spec hex (default) or HEX
 *   {chip} {rev} {serial}  as given; spec upper for upper case */
int devdata_format_check(const char *fmt, char *err, size_t errlen);

/* Render a template. Returns the length written to out (NUL-terminated), or a negative
 * devdata_err with a message: DEVDATA_EMISSING when e.g. {mac} is used before the MAC is known,
 * DEVDATA_ERANGE when `cap` is too small. */
int devdata_format(const char *fmt, const devdata_ctx_t *ctx, char *out, size_t cap, char *err,
                   size_t errlen);

/* The names a template uses, as a bit set of DEVDATA_NEEDS_* (to know when it can be rendered:
 * a template without device fields can be rendered before the board is connected).
 * Returns the set, or 0 for a malformed template. */
#define DEVDATA_NEEDS_N 0x01u
#define DEVDATA_NEEDS_TIME 0x02u
#define DEVDATA_NEEDS_MAC 0x04u
#define DEVDATA_NEEDS_FLASH_ID 0x08u
#define DEVDATA_NEEDS_CHIP 0x10u
#define DEVDATA_NEEDS_REV 0x20u
#define DEVDATA_NEEDS_SERIAL 0x40u
#define DEVDATA_NEEDS_NOTHING 0x80u /* well-formed, uses nothing */
unsigned devdata_format_needs(const char *fmt);

/* The index-th value of a counter: start + step × index. 0, or DEVDATA_ERANGE on overflow. */
int devdata_counter(uint64_t start, uint64_t step, uint64_t index, uint64_t *n);

/* A MAC as text in a style of {mac} (NULL: colon). Returns the length, or DEVDATA_EFORMAT for
 * an unknown style. out needs 18 bytes. */
int devdata_format_mac(const uint8_t mac[6], const char *style, char *out, size_t cap);

/* n random bytes from the OS's CSPRNG (OpenSSL RAND_bytes). 0 or DEVDATA_ERANDOM. */
int devdata_random(uint8_t *buf, size_t n);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void devdata_hex(const uint8_t *d, size_t n, char *out);

/* SHA-256 of n bytes as 64 hex digits (what the record keeps of a random secret). */
void devdata_sha256_hex(const uint8_t *d, size_t n, char out[65]);

#endif
