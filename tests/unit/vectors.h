/* SPDX-License-Identifier: MIT */
/* vectors.h — loading a reference vector of tests/data/vectors/security/ in the unit tests that
 * check jobs/prov against them (include after <cmocka.h>). */
#ifndef TESTS_UNIT_VECTORS_H
#define TESTS_UNIT_VECTORS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define VEC ESTN_SOURCE_DIR "/tests/data/vectors/security/"

/* The whole file, with a NUL after its last byte (for PEM text); the test fails if it is missing. */
static inline uint8_t *load(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    uint8_t *buf;
    long n;
    snprintf(path, sizeof path, VEC "%s", name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

#endif
