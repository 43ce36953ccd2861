/* SPDX-License-Identifier: MIT */
/* test_vocab.c — the one vocabulary (daemon/station/vocab.c): every job state and error class
 * has operator words (and every class but "none" a remedy hint), the JSON served as
 * GET /api/v1/vocabulary lists each of them once in the code's order, and the copy the
 * dashboard's Node unit test loads (tests/web/vocabulary.json) is that JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "chip.h"
#include "est_err.h"
#include "job.h"
#include "vocab.h"

static void test_every_state_has_words(void **state)
{
    (void)state;
    for (int s = 0; s < JOB_ST__COUNT; s++) {
        const char *w = vocab_job_state_words((job_state_t)s);
        if (!w || strlen(w) < 3)
            fail_msg("job state %s has no operator wording in daemon/station/vocab.c",
                     job_state_name((job_state_t)s));
    }
}

static void test_every_class_has_words_and_hint(void **state)
{
    (void)state;
    for (int c = 0; c < EST_CLASS__COUNT; c++) {
        const char *w = vocab_class_words((est_class_t)c), *h = est_class_hint((est_class_t)c);
        if (!w || strlen(w) < 3)
            fail_msg("error class %s has no operator words in daemon/station/vocab.c",
                     est_class_name((est_class_t)c));
        if (c != EST_CLASS_NONE && (!h || strlen(h) < 10))
            fail_msg("error class %s has no remedy hint in daemon/station/vocab.c",
                     est_class_name((est_class_t)c));
    }
    /* moved here from test_cmd.c with the hints */
    assert_true(strlen(est_class_hint(EST_CLASS_PORT_BUSY)) > 10);
    assert_string_equal(vocab_class_words(EST_CLASS_NO_SYNC), "No answer from the board");
    assert_string_equal(vocab_job_state_words(JOB_ST_DATA), "Writing the flash");
}

static void test_json_lists_everything_once(void **state)
{
    cJSON *v = vocab_json(), *a, *it;
    int n = 0;
    (void)state;
    a = cJSON_GetObjectItemCaseSensitive(v, "job_states");
    assert_int_equal(cJSON_GetArraySize(a), JOB_ST__COUNT);
    cJSON_ArrayForEach(it, a)
    {
        assert_string_equal(cJSON_GetObjectItem(it, "name")->valuestring,
                            job_state_name((job_state_t)n));
        n++;
    }
    a = cJSON_GetObjectItemCaseSensitive(v, "error_classes");
    assert_int_equal(cJSON_GetArraySize(a), EST_CLASS__COUNT);
    n = 0;
    cJSON_ArrayForEach(it, a)
    {
        assert_string_equal(cJSON_GetObjectItem(it, "name")->valuestring,
                            est_class_name((est_class_t)n));
        assert_non_null(cJSON_GetObjectItem(it, "hint"));
        n++;
    }
    a = cJSON_GetObjectItemCaseSensitive(v, "chips");
    assert_int_equal(cJSON_GetArraySize(a), CHIP__COUNT);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "name")->valuestring,
                        chip_get((chip_id_t)0)->name);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v, "results")), 5);
    cJSON_Delete(v);
}

/* The dashboard's Node unit test (tests/web/model.test.mjs) loads tests/web/vocabulary.json as
 * the API would serve it: it must be exactly vocab_json(). */
static void test_web_fixture_is_current(void **state)
{
    char *want, *got = NULL;
    long n;
    FILE *f = fopen(ESTN_SOURCE_DIR "/tests/web/vocabulary.json", "rb");
    cJSON *v = vocab_json(), *have;
    (void)state;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    got = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(got, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    have = cJSON_Parse(got);
    assert_non_null(have);
    if (!cJSON_Compare(v, have, 1)) {
        want = cJSON_Print(v);
        fail_msg("tests/web/vocabulary.json is not what GET /api/v1/vocabulary serves: replace "
                 "it with\n%s",
                 want);
    }
    cJSON_Delete(have);
    cJSON_Delete(v);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_state_has_words),
        cmocka_unit_test(test_every_class_has_words_and_hint),
        cmocka_unit_test(test_json_lists_everything_once),
        cmocka_unit_test(test_web_fixture_is_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
