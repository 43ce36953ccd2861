/* SPDX-License-Identifier: MIT */
/* fuzz_stub_version.c — fuzz target for the stub directory's esptool version (jobs/stub.c
 * stub_esptool_version, stub_find_pick; docs/CLI.md "Flasher stubs"). Input: a file body, used
 * as a copied stub_flasher's VERSION file and as an installed esptool's __init__.py.
 * Checks: a version found is non-empty, NUL-terminated inside its buffer and starts with a digit;
 * both sources agree on what they found; with 1/ and 2/ present the default choice is 2/ exactly
 * when the version's major number is 5 or more, explicit choices take their subdirectory, and
 * the choice's name names the file chosen.
 * Must not: keep state between inputs; write outside the scratch directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chip.h"
#include "fuzz.h"
#include "stub.h"

static const char ok_json[] = "{\"entry\": 1077411840, \"text\": \"AAAA\", \"text_start\": "
                              "1077411840}";

static void mkdirs(const char *base, const char *rel)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    (void)mkdir(p, 0755);
}

static void put(const char *base, const char *rel, const void *d, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    FUZZ_CHECK(fuzz_write_file(p, d, n) == 0);
}

static void check_version(const char *v, size_t cap)
{
    FUZZ_CHECK(memchr(v, 0, cap) != NULL);
    FUZZ_CHECK(v[0] >= '0' && v[0] <= '9');
}

/* With both 1/ and 2/ under `dir`: the default follows the version, explicit choices do not. */
static void check_pick(const char *dir, const char *version)
{
    const chip_info_t *c3 = chip_get(CHIP_ESP32C3);
    char path[700], why[600];
    stub_choice_t ch;
    FUZZ_CHECK(stub_find_pick(dir, c3, 4, STUB_PICK_DEFAULT, path, sizeof path, &ch, why,
                              sizeof why) == 0);
    int want_new = version && version[0] && atoi(version) >= 5;
    FUZZ_CHECK(strstr(path, want_new ? "/2/esp32c3.json" : "/1/esp32c3.json") != NULL);
    FUZZ_CHECK(strncmp(ch.name, want_new ? "2/esp32c3.json" : "1/esp32c3.json", 14) == 0);
    FUZZ_CHECK(memchr(ch.name, 0, sizeof ch.name) != NULL);
    FUZZ_CHECK(strcmp(ch.esptool_version, version ? version : "") == 0);
    FUZZ_CHECK(stub_find_pick(dir, c3, 4, STUB_PICK_NEW, path, sizeof path, &ch, why, sizeof why) ==
               0);
    FUZZ_CHECK(strstr(path, "/2/esp32c3.json") != NULL);
    FUZZ_CHECK(
        stub_find_pick(dir, c3, 4, STUB_PICK_LEGACY, path, sizeof path, &ch, why, sizeof why) == 0);
    FUZZ_CHECK(strstr(path, "/1/esp32c3.json") != NULL);
}

/* The two trees, made once (inputs only rewrite VERSION and __init__.py). Two levels below the
 * scratch directory, so that every directory the version search looks at (up to three levels
 * above the stub directory) lies inside it. */
static const char *tree(void)
{
    static char base[400];
    if (base[0]) return base;
    snprintf(base, sizeof base, "%s/a", fuzz_tmpdir());
    (void)mkdir(base, 0755);
    mkdirs(base, "b");
    snprintf(base + strlen(base), sizeof base - strlen(base), "/b");
    mkdirs(base, "copy");
    mkdirs(base, "copy/1");
    mkdirs(base, "copy/2");
    put(base, "copy/1/esp32c3.json", ok_json, sizeof ok_json - 1);
    put(base, "copy/2/esp32c3.json", ok_json, sizeof ok_json - 1);
    mkdirs(base, "esptool");
    mkdirs(base, "esptool/targets");
    mkdirs(base, "esptool/targets/stub_flasher");
    mkdirs(base, "esptool/targets/stub_flasher/1");
    mkdirs(base, "esptool/targets/stub_flasher/2");
    put(base, "esptool/targets/stub_flasher/1/esp32c3.json", ok_json, sizeof ok_json - 1);
    put(base, "esptool/targets/stub_flasher/2/esp32c3.json", ok_json, sizeof ok_json - 1);
    return base;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *base = tree();
    char pkg[500], sf[560], v1[sizeof(((stub_choice_t *)0)->esptool_version)] = "", v2[sizeof v1];
    v2[0] = 0;
    int r1, r2;
    /* a copied stub_flasher with a VERSION file */
    put(base, "copy/VERSION", data, size);
    snprintf(sf, sizeof sf, "%s/copy", base);
    r1 = stub_esptool_version(sf, v1, sizeof v1);
    if (r1 == 0) check_version(v1, sizeof v1);
    check_pick(sf, r1 == 0 ? v1 : NULL);
    /* an installed esptool: <pkg>/__init__.py, <pkg>/targets/stub_flasher/{1,2} */
    put(base, "esptool/__init__.py", data, size);
    snprintf(pkg, sizeof pkg, "%s/esptool/targets/stub_flasher", base);
    r2 = stub_esptool_version(pkg, v2, sizeof v2);
    if (r2 == 0) check_version(v2, sizeof v2);
    check_pick(pkg, r2 == 0 ? v2 : NULL);
    /* a body that is one __version__ line gives the same version both ways */
    if (r2 == 0 && size > 11 && memcmp(data, "__version__", 11) == 0 &&
        memchr(data, '\n', size) == NULL)
        FUZZ_CHECK(r1 == 0 && strcmp(v1, v2) == 0);
    return 0;
}
