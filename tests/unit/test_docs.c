/* SPDX-License-Identifier: MIT */
/* test_docs.c — docs/PROTOCOL.md's state table must say what JOB_STATE_MAP says: same states in
 * the same order, same timeouts, retry budgets and descriptions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

static void test_protocol_state_table(void **state)
{
    char path[1024], line[1024], want[1024];
    FILE *f;
    int in_table = 0, row = 0;
    (void)state;
    snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", ESTN_SOURCE_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "<!-- state-table:begin -->")) {
            in_table = 1;
            continue;
        }
        if (strstr(line, "<!-- state-table:end -->"))
            break;
        if (!in_table || strncmp(line, "| ", 2) != 0 || strstr(line, "| # |"))
            continue;
        assert_true(row < JOB_ST__COUNT);
        snprintf(want, sizeof want, "| %d | `%s` | %u | %u | %s |\n", row,
                 job_state_name((job_state_t)row), job_state_timeout_ms((job_state_t)row),
                 job_state_retries((job_state_t)row), job_state_what((job_state_t)row));
        assert_string_equal(line, want);
        row++;
    }
    fclose(f);
    assert_int_equal(row, JOB_ST__COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_protocol_state_table)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
