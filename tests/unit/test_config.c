/* SPDX-License-Identifier: MIT */
/* test_config.c — the station config: defaults, relative paths, and errors that name the JSON
 * path for every kind of mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void test_http_defaults_and_values(void **state)
{
    station_cfg_t cfg;
    char err[512];
    (void)state;
    assert_int_equal(parse("{\"slots\":[{\"port\":\"/dev/x\"}]}", &cfg, err), 0);
    assert_false(cfg.http.read_token);
    assert_int_equal(cfg.http.max_connections, 64);
    assert_int_equal(cfg.http.max_header_bytes, 16384);
    assert_int_equal(cfg.http.max_body_bytes, 1048576);
    assert_int_equal(cfg.http.max_upload_bytes, 134217728);
    assert_int_equal(cfg.http.idle_timeout_ms, 30000);
    assert_null(cfg.web_root);
    config_free(&cfg);

    assert_int_equal(parse("{\"token_file\":\"tokens\",\"web_root\":\"web\",\"http\":{"
                           "\"read_access\":\"token\",\"max_connections\":4,"
                           "\"max_header_bytes\":2048,\"max_body_bytes\":4096,"
                           "\"max_upload_bytes\":8192,\"idle_timeout_ms\":1500},"
                           "\"slots\":[{\"port\":\"/dev/x\"}]}",
                           &cfg, err),
                     0);
    assert_true(cfg.http.read_token);
    assert_int_equal(cfg.http.max_connections, 4);
    assert_int_equal(cfg.http.max_header_bytes, 2048);
    assert_int_equal(cfg.http.max_body_bytes, 4096);
    assert_int_equal(cfg.http.max_upload_bytes, 8192);
    assert_int_equal(cfg.http.idle_timeout_ms, 1500);
    assert_string_equal(cfg.web_root, "/etc/espstation/web");
    assert_string_equal(cfg.token_file, "/etc/espstation/tokens");
    config_free(&cfg);
}

static void test_http_errors(void **state)
{
    (void)state;
    expect_error("{\"http\":[],\"slots\":[{\"port\":\"/dev/x\"}]}", "$.http: must be an object");
    expect_error("{\"http\":{\"port\":1},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.http.port: unknown setting");
    expect_error("{\"http\":{\"read_access\":\"closed\"},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.http.read_access: one of open, token");
    expect_error("{\"http\":{\"read_access\":\"token\"},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "needs \"token_file\"");
    expect_error("{\"http\":{\"max_connections\":0},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.http.max_connections: an integer from 1 to 4096");
    expect_error("{\"http\":{\"max_body_bytes\":1.5},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.http.max_body_bytes");
    expect_error("{\"http\":{\"idle_timeout_ms\":\"1s\"},\"slots\":[{\"port\":\"/dev/x\"}]}",
                 "$.http.idle_timeout_ms");
    expect_error("{\"web_root\":\"\",\"slots\":[{\"port\":\"/dev/x\"}]}", "$.web_root");
}

/* Two spellings of one device node (a by-path style symlink and the node itself) are one port. */
static void test_same_device_refused(void **state)
{
    char dir[] = "/tmp/estn-cfg-XXXXXX", node[64], link1[64], text[512], err[512] = "";
    station_cfg_t cfg;
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(node, sizeof node, "%s/ttyUSB0", dir);
    snprintf(link1, sizeof link1, "%s/by-path-port0", dir);
    f = fopen(node, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(symlink(node, link1), 0);
    snprintf(text, sizeof text,
             "{\"slots\":[{\"name\":\"A1\",\"port\":\"%s\"},{\"name\":\"A2\",\"port\":\"%s\"}]}",
             node, link1);
    assert_int_not_equal(parse(text, &cfg, err), 0);
    if (!strstr(err, "$.slots[1].port") || !strstr(err, "A1") || !strstr(err, "A2") ||
        !strstr(err, "same device"))
        fail_msg("unexpected error \"%s\"", err);
    /* a path that does not exist (yet) is not an error by itself */
    snprintf(text, sizeof text,
             "{\"slots\":[{\"name\":\"A1\",\"port\":\"%s\"},{\"name\":\"A2\",\"port\":\"%s/gone\"}]}",
             node, dir);
    assert_int_equal(parse(text, &cfg, err), 0);
    config_free(&cfg);
    unlink(link1);
    unlink(node);
    rmdir(dir);
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
        cmocka_unit_test(test_http_defaults_and_values),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_same_device_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
