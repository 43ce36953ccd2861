/* SPDX-License-Identifier: MIT */
/* est_util.h — the two small helpers every layer uses, defined once: container_of and lower-case
 * hex encoding. Header only, C library only (jobs/proto's layering rule). */
#ifndef EST_UTIL_H
#define EST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The struct that holds `ptr` as its member `member` (libuv handles embedded in our objects). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* `n` bytes as 2n lower-case hex digits plus a NUL in `out` (2n + 1 bytes). Returns `out`. */
static inline char *est_hex(const void *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = bytes;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
    return out;
}

#endif
