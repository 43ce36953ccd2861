/* SPDX-License-Identifier: MIT */
/* fuzz_devdata.c — fuzz target for value templates (jobs/prov/devdata.c, docs/DEVICE-DATA.md
 * "Value sources"). Input: a template such as "SN-{year}-{n:06}". Invariants: the syntax check,
 * the needs and rendering agree (a template that checks renders with a full context, one that
 * does not is refused the same way); the returned length is the output's; rendering is
 * deterministic; a template that does not use the MAC renders the same without one; with an
 * empty context exactly the templates that need nothing render; an error leaves an empty output
 * and a message. Must not: keep state between inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devdata.h"
#include "fuzz.h"

static devdata_ctx_t full(void)
{
    devdata_ctx_t c;
    memset(&c, 0, sizeof c);
    c.has_n = true;
    c.n = 0xFFFFFFFFFFFFFFFFull;
    c.has_time = true;
    c.when.tm_year = 126;
    c.when.tm_mon = 11;
    c.when.tm_mday = 31;
    c.when.tm_yday = 364;
    c.when.tm_wday = 4;
    c.has_mac = true;
    memcpy(c.mac, "\xff\x00\x10\xab\xcd\xef", 6);
    c.has_flash_id = true;
    c.flash_id = 0xFFFFFFFF;
    c.chip = "esp32c6";
    c.rev = "v0.1";
    c.serial = "SN-{n}";
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[8192], out2[8192];
    char err[512], *fmt;
    devdata_ctx_t c = full(), nomac, none;
    int rc, rc2, chk;
    unsigned needs;
    if (size > 4096) return 0;
    fmt = malloc(size + 1);
    FUZZ_CHECK(fmt != NULL);
    memcpy(fmt, data, size);
    fmt[size] = 0; /* a NUL inside ends the template, as for a C string from JSON */
    err[0] = 0;
    chk = devdata_format_check(fmt, err, sizeof err);
    needs = devdata_format_needs(fmt);
    FUZZ_CHECK((chk == 0) == (needs != 0));
    FUZZ_CHECK(chk == 0 || (chk == DEVDATA_EFORMAT && err[0]));
    rc = devdata_format(fmt, &c, out, sizeof out, err, sizeof err);
    if (chk != 0) {
        FUZZ_CHECK(rc == DEVDATA_EFORMAT && out[0] == 0);
    } else {
        FUZZ_CHECK(rc >= 0 || rc == DEVDATA_ERANGE);
        if (rc >= 0) {
            FUZZ_CHECK((size_t)rc == strlen(out) && rc <= DEVDATA_MAX_VALUE);
            rc2 = devdata_format(fmt, &c, out2, sizeof out2, err, sizeof err);
            FUZZ_CHECK(rc2 == rc && strcmp(out, out2) == 0);
            nomac = c;
            nomac.has_mac = false;
            rc2 = devdata_format(fmt, &nomac, out2, sizeof out2, err, sizeof err);
            if (needs & DEVDATA_NEEDS_MAC)
                FUZZ_CHECK(rc2 == DEVDATA_EMISSING && !out2[0]);
            else
                FUZZ_CHECK(rc2 == rc && strcmp(out, out2) == 0);
        } else {
            FUZZ_CHECK(out[0] == 0);
        }
        memset(&none, 0, sizeof none);
        rc2 = devdata_format(fmt, &none, out2, sizeof out2, err, sizeof err);
        if (needs == DEVDATA_NEEDS_NOTHING)
            FUZZ_CHECK(rc2 >= 0 || rc2 == DEVDATA_ERANGE);
        else
            FUZZ_CHECK(rc2 == DEVDATA_EMISSING);
    }
    free(fmt);
    return 0;
}
