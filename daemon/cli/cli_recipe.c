/* SPDX-License-Identifier: MIT */
/* cli_recipe.c — `espstation recipe check FILE` and `espstation recipe import
 * build/flasher_args.json [-o recipe.json]`: the test engineer's tools for recipes.
 * Must not: validate by itself (recipe.c does). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "recipe.h"

static const char recipe_help[] =
    "usage: espstation recipe check FILE\n"
    "       espstation recipe import FLASHER_ARGS_JSON [-o RECIPE_JSON] [--name NAME]\n"
    "                                [--version VERSION] [--chip CHIP] [--force]\n"
    "\n"
    "check   validate a recipe: its JSON against schema/recipe.schema.json, its image files\n"
    "        and their sha256; prints every problem with its JSON path.\n"
    "import  turn an ESP-IDF build (build/flasher_args.json, IDF v4.x to v6.x) into a recipe;\n"
    "        image paths in it are relative to the recipe's directory (default ./recipe.json;\n"
    "        an existing file is kept unless --force).\n"
    "\n"
    "import options:\n"
    "  -o, --output RECIPE_JSON  where to write the recipe (default ./recipe.json)\n"
    "  --name NAME               recipe name (default: the project name of the build)\n"
    "  --version VERSION         recipe version (default: the project version)\n"
    "  --chip CHIP               chip (default: from the build's esptool arguments or image)\n"
    "  -f, --force               overwrite an existing recipe file\n"
    "See docs/RECIPES.md.\n";

static void recipe_print_err(const char *what, const recipe_err_t *e)
{
    fprintf(stderr, "%s: %s [%s]\n", what, e->n ? "invalid" : e->msg, e->cls_name);
    for (size_t i = 0; i < e->n && i < RECIPE_MAX_ERRORS; i++)
        fprintf(stderr, "  %s: %s\n", e->items[i].path, e->items[i].text);
    if (e->n > RECIPE_MAX_ERRORS)
        fprintf(stderr, "  (and %zu more problems)\n", e->n - RECIPE_MAX_ERRORS);
}

static int recipe_check(const char *path)
{
    recipe_t r;
    recipe_err_t e;
    if (recipe_load_file(path, 0, &r, &e) != 0) {
        recipe_print_err(path, &e);
        return CLI_EXIT_FAIL;
    }
    printf("%s: OK: %s %s, sha256 %s\n  chips:", path, r.name, r.version, r.hash);
    for (size_t i = 0; i < r.n_chips; i++)
        printf(" %s", chip_get(r.chips[i])->name);
    printf("\n");
    for (size_t i = 0; i < r.n_images; i++)
        printf("  0x%08x %-24s %zu bytes  sha256 %.16s...\n", r.images[i].offset,
               r.images[i].file, r.images[i].size, r.images[i].sha256);
    recipe_free(&r);
    return CLI_EXIT_OK;
}

static int recipe_import_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"version", required_argument, NULL, 'V'},
                                         {"chip", required_argument, NULL, 'c'},
                                         {"force", no_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    recipe_import_opts_t io = {NULL, NULL, NULL};
    const char *out = "recipe.json";
    bool force = false;
    recipe_err_t e;
    char *json = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:f", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'n': io.name = optarg; break;
        case 'V': io.version = optarg; break;
        case 'c': io.chip = optarg; break;
        case 'f': force = true; break;
        default: fputs(recipe_help, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(recipe_help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (recipe_import(argv[optind], out, &io, &json, &e) != 0) {
        recipe_print_err(argv[optind], &e);
        return CLI_EXIT_FAIL;
    }
    if (recipe_write_file(out, json, force, &e) != 0) {
        fprintf(stderr, "%s: %s\n", out, e.msg);
        free(json);
        return CLI_EXIT_FAIL;
    }
    free(json);
    printf("wrote %s\n", out);
    return recipe_check(out);
}

int cli_recipe(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(recipe_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "check")) {
        if (argc != 3) {
            fputs(recipe_help, stderr);
            return CLI_EXIT_USAGE;
        }
        return recipe_check(argv[2]);
    }
    if (!strcmp(argv[1], "import"))
        return recipe_import_cmd(argc - 1, argv + 1);
    fprintf(stderr, "espstation recipe: unknown subcommand '%s'\n%s", argv[1], recipe_help);
    return CLI_EXIT_USAGE;
}
