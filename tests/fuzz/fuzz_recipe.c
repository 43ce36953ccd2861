/* SPDX-License-Identifier: MIT */
/* fuzz_recipe.c — fuzz target for recipe parsing and validation (daemon/station/recipe_schema.c and recipe_plan.c,
 * docs/RECIPES.md). Input: a recipe file, loaded text-only and with its images from a scratch
 * copy of tests/data/flasher_args ("flasher_args/idf-v5.x/station.bin"; ".." refused), then
 * checked against every chip. Must not: write outside the scratch directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "est_err.h"
#include "fuzz.h"
#include "image.h"
#include "recipe.h"

/* Checks: errors are well-formed and name a JSON path; a recipe that loads with images also
 * loads text-only; its identity is the sha256 of its bytes; the plan is sorted without overlaps;
 * device checks for every chip, a few revisions and flash sizes give a result or a good error. */

static const char *scratch(void)
{
    static char dir[4096];
    if (!dir[0]) {
        char fa[4200], stub[4200];
        snprintf(dir, sizeof dir, "%s", fuzz_tmpdir());
        snprintf(fa, sizeof fa, "%s/flasher_args", dir);
        snprintf(stub, sizeof stub, "%s/stub.json", dir);
        if (fuzz_copy_tree(ESTN_SOURCE_DIR "/tests/data/flasher_args", fa) != 0 ||
            fuzz_write_file(stub, "{}\n", 3) != 0) {
            fprintf(stderr, "fuzz_recipe: cannot set up %s\n", dir);
            abort();
        }
    }
    return dir;
}

static void check_err(int rc, const recipe_err_t *e)
{
    FUZZ_CHECK(rc < 0 && e->n >= 1 && e->cls_name != NULL && e->cls_name[0] != '\0');
    FUZZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL && e->msg[0] != '\0');
    for (size_t i = 0; i < e->n && i < RECIPE_MAX_ERRORS; i++) {
        FUZZ_CHECK(memchr(e->items[i].path, '\0', sizeof e->items[i].path) != NULL);
        FUZZ_CHECK(e->items[i].path[0] == '$' || strcmp(e->items[i].path, "chip option") == 0);
        FUZZ_CHECK(memchr(e->items[i].text, '\0', sizeof e->items[i].text) != NULL);
    }
}

static void check_loaded(const recipe_t *r, const uint8_t *data, size_t size, bool images)
{
    uint8_t d[32];
    char hex[65];
    FUZZ_CHECK(r->text_len == size && memcmp(r->text, data, size) == 0 && r->text[size] == '\0');
    image_sha256(data, size, d);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    FUZZ_CHECK(strcmp(hex, r->hash) == 0);
    FUZZ_CHECK(r->name[0] != '\0' && r->version[0] != '\0');
    FUZZ_CHECK(r->n_chips >= 1 && r->n_chips <= CHIP__COUNT);
    FUZZ_CHECK(r->n_images >= 1 && r->n_images <= PLAN_MAX_IMAGES);
    FUZZ_CHECK(r->rev_min <= r->rev_max && r->attempts >= 1);
    for (size_t i = 0; i < r->n_images; i++)
        FUZZ_CHECK(r->images[i].offset % 0x1000 == 0 && r->images[i].file != NULL);
    if (!images) {
        FUZZ_CHECK(r->plan.n_images == 0);
        return;
    }
    /* plan: every image, sorted by offset, no overlap, each the size of its file */
    FUZZ_CHECK(r->plan.n_images == r->n_images);
    for (size_t i = 0; i < r->plan.n_images; i++) {
        const plan_image_t *p = &r->plan.images[i];
        FUZZ_CHECK(p->data != NULL && p->size > 0);
        if (i > 0) {
            const plan_image_t *q = &r->plan.images[i - 1];
            FUZZ_CHECK((uint64_t)q->offset + q->size <= p->offset);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned revs[] = {0, 3, 100, 199, 300};
    static const uint32_t flash[] = {0, 0x80000, 0x400000, 0x1000000};
    const char *dir = scratch();
    recipe_t r;
    recipe_err_t err;
    int rc_text, rc;

    rc_text = recipe_load_mem((const char *)data, size, dir, RECIPE_NO_PARENT | RECIPE_NO_IMAGES,
                              &r, &err);
    if (rc_text == 0) {
        check_loaded(&r, data, size, false);
        recipe_free(&r);
    } else {
        check_err(rc_text, &err);
    }

    rc = recipe_load_mem((const char *)data, size, dir, RECIPE_NO_PARENT, &r, &err);
    if (rc != 0) {
        check_err(rc, &err);
        recipe_free(&r); /* documented as harmless after a failure */
        return 0;
    }
    FUZZ_CHECK(rc_text == 0); /* images only add checks */
    check_loaded(&r, data, size, true);
    for (int id = 0; id < CHIP__COUNT; id++) {
        for (size_t k = 0; k < sizeof revs / sizeof revs[0]; k++) {
            for (size_t f = 0; f < sizeof flash / sizeof flash[0]; f++) {
                rc = recipe_check_device(&r, chip_get((chip_id_t)id), revs[k], flash[f], &err);
                if (rc != 0) check_err(rc, &err);
            }
        }
    }
    rc = recipe_check_device(&r, NULL, 0, 0, &err);
    check_err(rc, &err);
    recipe_free(&r);
    recipe_free(&r); /* twice: recipe_free must leave an empty recipe */
    return 0;
}
