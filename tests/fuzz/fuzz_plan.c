/* SPDX-License-Identifier: MIT */
/* fuzz_plan.c — fuzz target for the plan's settings parsers (jobs/plan.c: plan_set_flash_size,
 * plan_set_flash_freq, plan_parse_before/after; docs/RECIPES.md, docs/CLI.md). Input: one
 * NUL-free string (cut at the first NUL), tried as each setting.
 * Checks: a refused value leaves the plan as it was and says why; an accepted size prints back
 * (plan_flash_size_name) as a name that parses to the same setting; an accepted frequency
 * likewise; a parsed reset mode has one canonical name that parses to it, never deprecated; and
 * plan_finalize of the resulting plan never crashes and returns 0 or a usage error with a text.
 * Must not: keep state between inputs. */
#include <string.h>

#include "fuzz.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[64], name[32];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    plan_t p, q;
    plan_err_t err;
    plan_before_t b;
    plan_after_t a;
    memcpy(s, data, n);
    s[n] = 0;

    plan_init(&p);
    q = p;
    memset(&err, 0, sizeof err);
    if (plan_set_flash_size(&p, s, &err) == 0) {
        plan_flash_size_name(&p, name, sizeof name);
        FUZZ_CHECK(plan_set_flash_size(&q, name, NULL) == 0);
        FUZZ_CHECK(q.flash_size_mode == p.flash_size_mode &&
                   q.flash_size_bytes == p.flash_size_bytes &&
                   q.flash_size_c1 == p.flash_size_c1);
    } else {
        FUZZ_CHECK(p.flash_size_mode == PLAN_FSIZE_KEEP && err.msg[0] != 0);
        FUZZ_CHECK(err.cls == EST_CLASS_USAGE);
    }
    memset(&err, 0, sizeof err);
    if (plan_set_flash_freq(&p, s, &err) == 0) {
        plan_flash_freq_name(&p, name, sizeof name);
        q = p;
        FUZZ_CHECK(plan_set_flash_freq(&q, name, NULL) == 0 && q.flash_freq_mhz == p.flash_freq_mhz);
    } else {
        FUZZ_CHECK(p.flash_freq_mhz == 0 && err.msg[0] != 0);
    }
    if (plan_parse_before(s, &b) == 0) {
        plan_before_t b2;
        FUZZ_CHECK(plan_parse_before(plan_before_name(b), &b2) == 0 && b2 == b);
        FUZZ_CHECK(!plan_spelling_deprecated(plan_before_name(b)));
    }
    if (plan_parse_after(s, &a) == 0) {
        plan_after_t a2;
        FUZZ_CHECK(plan_parse_after(plan_after_name(a), &a2) == 0 && a2 == a);
        FUZZ_CHECK(!plan_spelling_deprecated(plan_after_name(a)));
    }
    /* a test with whatever text, on a plan without images: always refused, with a reason */
    p.test = true;
    p.test_expect = s;
    memset(&err, 0, sizeof err);
    FUZZ_CHECK(plan_finalize(&p, &err) != 0 && err.cls == EST_CLASS_USAGE && err.msg[0]);
    return 0;
}
