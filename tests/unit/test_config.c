/* SPDX-License-Identifier: MIT */
/* test_config.c — the station config: defaults, relative paths, and errors that name the JSON
 * path for every kind of mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config.h"

static int parse(const char *text, station_cfg_t *cfg, char *err)
{
    return config_parse(text, strlen(text), "/etc/espstation", cfg, err, 512);
}

static void test_minimal_defaults(void **state)
{
    station_cfg_t cfg;
    char err[512];
    (void)state;
    assert_int_equal(parse("{\"slots\":[{\"port\":\"/dev/ttyUSB0\"}]}", &cfg, err), 0);
    assert_string_equal(cfg.id, "station");
    assert_string_equal(cfg.database, "/etc/espstation/espstation.db");
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_int_equal(cfg.probe_interval_ms, 2000);
    assert_int_equal(cfg.n_slots, 1);
    assert_string_equal(cfg.slots[0].name, "S1");
    assert_int_equal(cfg.slots[0].start, SLOT_START_MANUAL);
    assert_int_equal(cfg.slots[0].before, PLAN_BEFORE_DEFAULT);
    assert_int_equal(cfg.slots[0].after, PLAN_AFTER_HARD_RESET);
    assert_null(cfg.slots[0].recipe);
    config_free(&cfg);
}

static void test_full(void **state)
{
    station_cfg_t cfg;
    char err[512];
    (void)state;
    assert_int_equal(
        parse("{\"id\":\"l3\",\"name\":\"Line 3\",\"database\":\"/var/lib/x.db\","
              "\"recipe\":\"r/a.json\",\"probe_interval_ms\":500,\"slots\":["
              "{\"name\":\"A1\",\"port\":\"rfc2217://10.0.0.2:4001\",\"start\":\"loop\","
              "\"before\":\"no-reset\",\"after\":\"no_reset\",\"recipe\":\"/abs/b.json\"},"
              "{\"name\":\"A2\",\"port\":\"socket://10.0.0.2:4002\",\"start\":\"auto\"}]}",
              &cfg, err),
        0);
    assert_string_equal(cfg.name, "Line 3");
    assert_string_equal(cfg.database, "/var/lib/x.db");
    assert_string_equal(cfg.recipe, "/etc/espstation/r/a.json");
    assert_int_equal(cfg.slots[0].start, SLOT_START_LOOP);
    assert_int_equal(cfg.slots[0].before, PLAN_BEFORE_NO_RESET);
    assert_int_equal(cfg.slots[0].after, PLAN_AFTER_NO_RESET);
    assert_string_equal(cfg.slots[0].recipe, "/abs/b.json");
    assert_int_equal(cfg.slots[1].start, SLOT_START_AUTO);
    assert_non_null(config_slot(&cfg, "A2"));
    assert_null(config_slot(&cfg, "A3"));
    config_free(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
    station_cfg_t cfg;
    char err[512] = "";
    assert_int_not_equal(parse(text, &cfg, err), 0);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static void test_errors_name_the_path(void **state)
{
    (void)state;
    expect_error("{", "not valid JSON");
    expect_error("[]", "$: must be a JSON object");
    expect_error("{\"slots\":[]}", "$.slots");
    expect_error("{\"slot\":[{\"port\":\"/dev/x\"}]}", "$.slot: unknown setting");
    expect_error("{\"slots\":[{\"name\":\"A1\"}]}", "$.slots[0].port: required");
    expect_error("{\"slots\":[{\"port\":\"/dev/x\",\"start\":\"sometimes\"}]}",
                 "$.slots[0].start");
    expect_error("{\"slots\":[{\"port\":\"/dev/x\",\"before\":\"kick\"}]}", "$.slots[0].before");
    expect_error("{\"slots\":[{\"port\":\"/dev/x\",\"colour\":\"red\"}]}",
                 "$.slots[0].colour: unknown setting");
    expect_error("{\"slots\":[{\"port\":\"/dev/x\"},{\"port\":\"/dev/x\"}]}",
                 "$.slots[1].port: \"/dev/x\" is already used");
    expect_error("{\"slots\":[{\"name\":\"A\",\"port\":\"/dev/x\"},{\"name\":\"A\",\"port\":\"/dev/y\"}]}",
                 "$.slots[1].name");
    expect_error("{\"slots\":[{\"name\":\"A 1\",\"port\":\"/dev/x\"}]}", "$.slots[0].name");
    expect_error("{\"probe_interval_ms\":5,\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.probe_interval_ms");
    expect_error("{\"database\":7,\"slots\":[{\"port\":\"/dev/x\"}]}", "$.database");
}

static void test_many_slots(void **state)
{
    char text[16384], *p = text;
    station_cfg_t cfg;
    char err[512];
    (void)state;
    p += sprintf(p, "{\"slots\":[");
    for (int i = 0; i < 32; i++)
        p += sprintf(p, "%s{\"port\":\"socket://127.0.0.1:%d\",\"start\":\"auto\"}", i ? "," : "",
                     4000 + i);
    sprintf(p, "]}");
    assert_int_equal(parse(text, &cfg, err), 0);
    assert_int_equal(cfg.n_slots, 32);
    assert_string_equal(cfg.slots[31].name, "S32");
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors_name_the_path),
        cmocka_unit_test(test_many_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
