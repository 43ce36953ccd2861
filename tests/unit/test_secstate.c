/* SPDX-License-Identifier: MIT */
/* test_secstate.c — the job's security record (jobs/prov/secstate.c,
 * docs/SECURITY-PROVISIONING.md §9): merged facts from GET_SECURITY_INFO and the eFuse blocks,
 * and the expect check a recipe's pre-check will use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "secstate.h"

/* A blank ESP32-C3 read from both sources: nothing secured, every key block free. */
static void test_blank_c3(void **state)
{
    efuse_state_t s;
    secinfo_t si;
    char *js;
    (void)state;
    memset(&s, 0, sizeof s);
    memset(&si, 0, sizeof si);
    si.has_chip_id = true;
    si.chip_id = 5;
    js = secstate_json(&si, efuse_chip("esp32c3"), &s, NULL);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"source\":\"secinfo+efuse\""));
    assert_non_null(strstr(js, "\"flash_encryption\":false"));
    assert_non_null(strstr(js, "\"flash_encryption_mode\":\"off\""));
    assert_non_null(strstr(js, "\"download_mode\":\"open\""));
    assert_int_equal(secstate_check(js, "{\"flash_encryption\": false, \"secure_boot\": false}",
                                    (char[128]){0}, 128),
                     0);
    free(js);
}

/* The ROM's answer alone (Secure Download Mode: no register reads): flags and counter decide. */
static void test_secinfo_only_sdm(void **state)
{
    secinfo_t si;
    char why[160], *js;
    (void)state;
    memset(&si, 0, sizeof si);
    si.flags = SECINFO_SECURE_DOWNLOAD_ENABLE | SECINFO_SECURE_BOOT_EN;
    si.flash_crypt_cnt = 1;
    js = secstate_json(&si, NULL, NULL, "the unit is in Secure Download Mode");
    assert_non_null(js);
    assert_non_null(strstr(js, "\"source\":\"secinfo\""));
    assert_non_null(strstr(js, "\"flash_encryption\":true"));
    assert_non_null(strstr(js, "\"secure_download\":true"));
    assert_non_null(strstr(js, "\"efuse\":null"));
    assert_non_null(strstr(js, "\"efuse_error\":\"the unit is in Secure Download Mode\""));
    assert_int_equal(secstate_check(js, "{\"flash_encryption\": false}", why, sizeof why), 1);
    assert_string_equal(why, "flash encryption is on on this unit (the recipe expects it off)");
    free(js);
}

/* ESP32 blocks: FLASH_CRYPT_CNT all bits = release mode. Nothing read: the check cannot tell. */
static void test_esp32_release_and_unknown(void **state)
{
    efuse_state_t s;
    char why[160], *js;
    (void)state;
    memset(&s, 0, sizeof s);
    s.blk[0][2] = 0xF0; /* word 0 bits 20..23 */
    s.blk[0][3] = 0x07; /* bits 24..26 */
    js = secstate_json(NULL, efuse_chip("esp32"), &s, NULL);
    assert_non_null(strstr(js, "\"flash_encryption_mode\":\"release\""));
    assert_non_null(strstr(js, "\"secinfo\":null"));
    free(js);
    js = secstate_json(NULL, NULL, NULL, NULL);
    assert_non_null(strstr(js, "\"source\":\"none\""));
    assert_int_equal(secstate_check(js, "{\"secure_boot\": false}", why, sizeof why), -1);
    assert_non_null(strstr(why, "could not be read"));
    assert_int_equal(secstate_check("", "{\"secure_boot\": false}", why, sizeof why), -1);
    assert_int_equal(secstate_check(js, "{\"colour\": true}", why, sizeof why), -1);
    assert_non_null(strstr(why, "security.expect.colour"));
    assert_int_equal(secstate_check(js, "[1", why, sizeof why), -1);
    free(js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_c3),
        cmocka_unit_test(test_secinfo_only_sdm),
        cmocka_unit_test(test_esp32_release_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
