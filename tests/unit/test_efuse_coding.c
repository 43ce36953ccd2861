/* SPDX-License-Identifier: MIT */
/* test_efuse_coding.c — eFuse block coding against Espressif's reference vectors
 * (tests/data/vectors/security/efuse_coding.json: reedsolo.RSCodec(12) as espefuse uses it, and
 * the ESP32 3/4 scheme), one cmocka test per vector, plus the check on read: every single-bit
 * flip of a coded block is detected (jobs/prov/efuse_coding.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "efuse_coding.h"

#define VEC_PATH ESTN_SOURCE_DIR "/tests/data/vectors/security/efuse_coding.json"
#define MAX_VECTORS 32

static cJSON *g_json;

typedef struct {
    const char *set; /* "rs_44_32" or "esp32_34" */
    int index;
} vec_ref_t;

static cJSON *load_json(void)
{
    FILE *f = fopen(VEC_PATH, "rb");
    char *buf;
    long n;
    cJSON *j;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = 0;
    fclose(f);
    j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), n * 2);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* Load vector `ref` and its expected words. Returns the number of words. */
static size_t get_vector(const vec_ref_t *ref, uint8_t *data, size_t data_len, uint32_t *words,
                         size_t max_words)
{
    cJSON *set = cJSON_GetObjectItemCaseSensitive(g_json, ref->set);
    cJSON *v = cJSON_GetArrayItem(set, ref->index);
    cJSON *w = cJSON_GetObjectItemCaseSensitive(v, "words");
    size_t n = (size_t)cJSON_GetArraySize(w);
    assert_non_null(v);
    hex_to_bytes(cJSON_GetObjectItemCaseSensitive(v, "data")->valuestring, data, data_len);
    assert_true(n <= max_words);
    for (size_t i = 0; i < n; i++)
        words[i] = (uint32_t)strtoul(cJSON_GetArrayItem(w, (int)i)->valuestring, NULL, 16);
    return n;
}

static void test_rs_vector(void **state)
{
    const vec_ref_t *ref = *state;
    uint8_t data[EFUSE_RS_DATA_LEN];
    uint32_t want[EFUSE_RS_WORDS], got[EFUSE_RS_WORDS];
    assert_int_equal(get_vector(ref, data, sizeof data, want, EFUSE_RS_WORDS), EFUSE_RS_WORDS);
    efuse_rs_encode(data, got);
    for (unsigned i = 0; i < EFUSE_RS_WORDS; i++)
        assert_int_equal(got[i], want[i]);
    assert_true(efuse_rs_ok(want));
    /* every single-bit error in data or check words is detected */
    for (unsigned bit = 0; bit < EFUSE_RS_WORDS * 32; bit++) {
        uint32_t bad[EFUSE_RS_WORDS];
        memcpy(bad, want, sizeof bad);
        bad[bit / 32] ^= 1u << (bit % 32);
        assert_false(efuse_rs_ok(bad));
    }
}

static void test_34_vector(void **state)
{
    const vec_ref_t *ref = *state;
    uint8_t data[EFUSE_34_DATA_LEN], back[EFUSE_34_DATA_LEN];
    uint32_t want[EFUSE_34_WORDS], got[EFUSE_34_WORDS];
    assert_int_equal(get_vector(ref, data, sizeof data, want, EFUSE_34_WORDS), EFUSE_34_WORDS);
    efuse_34_encode(data, got);
    for (unsigned i = 0; i < EFUSE_34_WORDS; i++)
        assert_int_equal(got[i], want[i]);
    assert_true(efuse_34_ok(want));
    efuse_34_decode(want, back);
    assert_memory_equal(back, data, sizeof data);
    for (unsigned bit = 0; bit < EFUSE_34_WORDS * 32; bit++) {
        uint32_t bad[EFUSE_34_WORDS];
        memcpy(bad, want, sizeof bad);
        bad[bit / 32] ^= 1u << (bit % 32);
        assert_false(efuse_34_ok(bad));
    }
}

/* Both vector sets are present and non-trivial (a missing file must not pass as "0 tests"). */
static void test_vector_sets_present(void **state)
{
    (void)state;
    assert_non_null(g_json);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g_json, "rs_44_32")) >= 4);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g_json, "esp32_34")) >= 4);
}

int main(void)
{
    static vec_ref_t refs[2 * MAX_VECTORS];
    static char names[2 * MAX_VECTORS][48];
    struct CMUnitTest tests[2 * MAX_VECTORS + 1];
    size_t n = 0;
    int rc;
    g_json = load_json();
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_vector_sets_present);
    if (g_json) {
        static const char *const sets[2] = {"rs_44_32", "esp32_34"};
        for (unsigned s = 0; s < 2; s++) {
            int cnt = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g_json, sets[s]));
            for (int i = 0; i < cnt && i < MAX_VECTORS; i++) {
                size_t k = n - 1;
                refs[k] = (vec_ref_t){sets[s], i};
                snprintf(names[k], sizeof names[k], "%s[%d]", sets[s], i);
                tests[n++] = (struct CMUnitTest){names[k], s == 0 ? test_rs_vector : test_34_vector,
                                                 NULL, NULL, &refs[k]};
            }
        }
    }
    rc = _cmocka_run_group_tests("efuse_coding", tests, n, NULL, NULL);
    cJSON_Delete(g_json);
    return rc;
}
