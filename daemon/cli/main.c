/* SPDX-License-Identifier: MIT */
/* main.c — espstation's entry point: dispatches to the subcommands.
 * Must not: contain subcommand logic (see cli_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void main_usage(FILE *f)
{
    fputs("usage: espstation <command> [options]\n"
          "\n"
          "Production-station tool for flashing Espressif chips (ESP8266, ESP32 family) over\n"
          "their ROM serial bootloader.\n"
          "\n"
          "commands:\n"
          "  flash       write images to one device and verify them\n"
          "  info        identify one device: chip, revision, MAC, flash ID and size\n"
          "  read-flash  read a flash range of one device into a file\n"
          "  erase       erase a flash region (or all of it) on one device\n"
          "  serve       run the station daemon (all fixture slots) from a config file\n"
          "  recipe      check a recipe, or import one from an ESP-IDF build\n"
          "  demo        the station daemon with simulated boards (no hardware needed)\n"
          "  ports       list serial ports (USB IDs, serial numbers, by-path names)\n"
          "  nvs         NVS partition images (per-device data) from CSV files\n"
          "  escrow      escrowed per-unit keys: inspect, unwrap, decrypt a flash dump\n"
          "\n"
          "Run 'espstation <command> --help' for the options of a command.\n"
          "Documentation: man espstation; docs/ in the source tree or\n"
          "/usr/share/doc/espstation when installed (CLI.md, STATION.md, API.md, ...).\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("espstation %s\n", ESTN_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "flash") == 0)
        return cli_flash(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return cli_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "read-flash") == 0 || strcmp(argv[1], "read_flash") == 0)
        return cli_read_flash(argc - 1, argv + 1);
    if (strcmp(argv[1], "erase") == 0)
        return cli_erase(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "recipe") == 0)
        return cli_recipe(argc - 1, argv + 1);
    if (strcmp(argv[1], "demo") == 0)
        return cli_demo(argc - 1, argv + 1);
    if (strcmp(argv[1], "ports") == 0)
        return cli_ports(argc - 1, argv + 1);
    if (strcmp(argv[1], "nvs") == 0)
        return cli_nvs(argc - 1, argv + 1);
    if (strcmp(argv[1], "escrow") == 0)
        return cli_escrow(argc - 1, argv + 1);
    fprintf(stderr, "espstation: unknown command '%s'\n\n", argv[1]);
    main_usage(stderr);
    return CLI_EXIT_USAGE;
}
