/* SPDX-License-Identifier: MIT */
/* fuzz_flasher_args.c — fuzz target for the ESP-IDF flasher_args.json import (recipe_import in
 * daemon/station/recipe_import.c, PROTOCOL.md §13). Input: a flasher_args.json, imported from each fixture build
 * directory of a scratch copy of tests/data/flasher_args. Must not: write outside the scratch
 * directory (the output recipe is never written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "est_err.h"
#include "fuzz.h"
#include "recipe.h"

/* The input becomes flasher_args.json in each fixture build directory (hard links to one file):
 * IDF v4.0, v5.x (with project_description.json), v6.0 and encrypted, so the image paths of
 * every fixture resolve; it is imported from each, and once more with name/version/chip
 * options. A successful import must give a recipe that loads from the output directory; a
 * failure must be a well-formed error. */

static const char *const builds[] = {"idf-v4.0", "idf-v5.x", "idf-v6.0", "encrypted"};
#define N_BUILDS (sizeof builds / sizeof builds[0])

static char input_path[4200], out_dir[4200], out_path[4300];
static char args_path[N_BUILDS][4300];

static void setup(void)
{
    const char *tmp = fuzz_tmpdir();
    char fa[4200];
    snprintf(fa, sizeof fa, "%s/fa", tmp);
    snprintf(input_path, sizeof input_path, "%s/input.json", tmp);
    snprintf(out_dir, sizeof out_dir, "%s/out", tmp);
    snprintf(out_path, sizeof out_path, "%s/recipe.json", out_dir);
    if (fuzz_copy_tree(ESTN_SOURCE_DIR "/tests/data/flasher_args", fa) != 0 ||
        fuzz_copy_tree(fa, out_dir) != 0 || fuzz_write_file(input_path, "", 0) != 0)
        goto fail;
    for (size_t i = 0; i < N_BUILDS; i++) {
        snprintf(args_path[i], sizeof args_path[i], "%s/%s/flasher_args.json", fa, builds[i]);
        unlink(args_path[i]);
        if (link(input_path, args_path[i]) != 0) goto fail;
    }
    return;
fail:
    fprintf(stderr, "fuzz_flasher_args: cannot set up %s\n", tmp);
    abort();
}

static void check_err(int rc, const recipe_err_t *e)
{
    FUZZ_CHECK(rc < 0 && e->n >= 1 && e->cls_name != NULL && e->cls_name[0] != '\0');
    FUZZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL && e->msg[0] != '\0');
}

static void import_one(const char *path, const recipe_import_opts_t *opts)
{
    recipe_err_t err;
    recipe_t r;
    char *json = (char *)"unset";
    int rc = recipe_import(path, out_path, opts, &json, &err);
    if (rc != 0) {
        check_err(rc, &err);
        FUZZ_CHECK(json == NULL);
        return;
    }
    FUZZ_CHECK(json != NULL && err.n == 0);
    /* what `espstation recipe import` writes must load like a hand-written recipe */
    rc = recipe_load_mem(json, strlen(json), out_dir, 0, &r, &err);
    if (rc != 0) fprintf(stderr, "import gave a recipe that does not load: %s\n%s", err.msg, json);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(r.n_images >= 1 && r.plan.n_images == r.n_images);
    if (opts && opts->chip) FUZZ_CHECK(r.n_chips == 1 && r.plan.chip != CHIP_UNKNOWN);
    recipe_free(&r);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const recipe_import_opts_t opts = {"fuzz name", "1.0-rc1", "esp32"};
    if (!input_path[0]) setup();
    FUZZ_CHECK(fuzz_write_file(input_path, data, size) == 0);
    for (size_t i = 0; i < N_BUILDS; i++)
        import_one(args_path[i], NULL);
    import_one(args_path[0], &opts);
    return 0;
}
