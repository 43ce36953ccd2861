/* SPDX-License-Identifier: MIT */
/* test_auth.c — the API token file (format, permission check, errors by line that never quote a
 * token), bearer header parsing and the role table of docs/API.md.
 * Must not: leave files behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

#define TOK_V "viewer-token-0123456789"
#define TOK_M "mes.token_0123456789~+/="
#define TOK_O "operator-token-0123456789"
#define TOK_E "engineer-token-0123456789"

static const char good[] = "# station tokens\n"
                           "\n"
                           "viewer " TOK_V "\n"
                           "  mes\t" TOK_M "  \r\n"
                           "operator " TOK_O "\n"
                           "engineer " TOK_E;

static auth_role_t check(const auth_t *a, const char *h)
{
    return auth_check(a, h, h ? strlen(h) : 0);
}

static void test_parse_and_check(void **state)
{
    auth_t *a;
    char err[256];
    (void)state;
    assert_int_equal(auth_parse(good, strlen(good), "t", &a, err, sizeof err), 0);
    assert_int_equal(auth_count(a), 4);
    assert_int_equal(check(a, "Bearer " TOK_V), AUTH_ROLE_VIEWER);
    assert_int_equal(check(a, "Bearer " TOK_M), AUTH_ROLE_MES);
    assert_int_equal(check(a, "bearer  " TOK_O " "), AUTH_ROLE_OPERATOR);
    assert_int_equal(check(a, "BEARER " TOK_E), AUTH_ROLE_ENGINEER);
    assert_int_equal(check(a, NULL), AUTH_ROLE_NONE);
    assert_int_equal(check(a, ""), AUTH_ROLE_NONE);
    assert_int_equal(check(a, "Basic " TOK_E), AUTH_ROLE_NONE);
    assert_int_equal(check(a, TOK_E), AUTH_ROLE_NONE);
    assert_int_equal(check(a, "Bearer " TOK_E "x"), AUTH_ROLE_NONE);               /* longer */
    assert_int_equal(check(a, "Bearer engineer-token-012345678"), AUTH_ROLE_NONE); /* prefix */
    assert_int_equal(check(a, "Bearer " TOK_E " extra"), AUTH_ROLE_NONE);
    assert_int_equal(check(a, "Bearer short"), AUTH_ROLE_NONE);
    assert_int_equal(check(NULL, "Bearer " TOK_E), AUTH_ROLE_NONE);
    /* the header length is what counts, not a NUL */
    assert_int_equal(auth_check(a, "Bearer " TOK_E "zzz", 7 + strlen(TOK_E)), AUTH_ROLE_ENGINEER);
    auth_free(a);
}

static void expect_parse_error(const char *text, const char *needle)
{
    auth_t *a = NULL;
    char err[256] = "";
    assert_int_not_equal(auth_parse(text, strlen(text), "tokens", &a, err, sizeof err), 0);
    assert_null(a);
    if (!strstr(err, needle)) fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
    if (strstr(err, "0123456789")) fail_msg("error \"%s\" quotes a token", err);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("admin " TOK_E "\n", "tokens line 1: the role");
    expect_parse_error("# c\nviewer\n", "tokens line 2: expected");
    expect_parse_error("viewer 0123456789\n", "line 1: expected"); /* 10 chars: too short */
    expect_parse_error("viewer " TOK_V " " TOK_M "\n", "line 1: expected");
    expect_parse_error("viewer abc0123456789!@#$\n", "may only contain");
    expect_parse_error("viewer " TOK_V "\nmes " TOK_V "\n", "line 2: the same token");
}

static void test_roles(void **state)
{
    (void)state;
    assert_false(auth_allows(AUTH_ROLE_NONE, AUTH_PERM_READ));
    assert_true(auth_allows(AUTH_ROLE_VIEWER, AUTH_PERM_READ));
    assert_false(auth_allows(AUTH_ROLE_VIEWER, AUTH_PERM_EXPORT));
    assert_true(auth_allows(AUTH_ROLE_MES, AUTH_PERM_EXPORT));
    assert_false(auth_allows(AUTH_ROLE_MES, AUTH_PERM_OPERATE));
    assert_true(auth_allows(AUTH_ROLE_OPERATOR, AUTH_PERM_EXPORT));
    assert_true(auth_allows(AUTH_ROLE_OPERATOR, AUTH_PERM_OPERATE));
    assert_false(auth_allows(AUTH_ROLE_OPERATOR, AUTH_PERM_ENGINEER));
    assert_true(auth_allows(AUTH_ROLE_ENGINEER, AUTH_PERM_ENGINEER));
    assert_true(auth_allows(AUTH_ROLE_ENGINEER, AUTH_PERM_OPERATE));
    assert_string_equal(auth_role_name(AUTH_ROLE_MES), "mes");
}

static void test_file_permissions(void **state)
{
    char dir[] = "/tmp/estn-auth-XXXXXX", path[64], err[512] = "";
    auth_t *a = NULL;
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(good, f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_not_equal(auth_load(path, &a, err, sizeof err), 0);
    assert_null(a);
    assert_non_null(strstr(err, "chmod o-rwx"));
    assert_non_null(strstr(err, "0644"));
    assert_int_equal(chmod(path, 0602), 0); /* writable by others is as bad */
    assert_int_not_equal(auth_load(path, &a, err, sizeof err), 0);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(auth_load(path, &a, err, sizeof err), 0);
    assert_int_equal(check(a, "Bearer " TOK_O), AUTH_ROLE_OPERATOR);
    auth_free(a);
    unlink(path);
    assert_int_not_equal(auth_load(path, &a, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot open the token file"));
    assert_int_not_equal(auth_load(dir, &a, err, sizeof err), 0);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_check),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_file_permissions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
