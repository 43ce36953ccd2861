/* SPDX-License-Identifier: MIT */
/* cli_ports.c — `espstation ports [--json]`: the machine's serial ports with USB VID/PID,
 * serial number and their stable /dev/serial/by-path and by-id names, to bind fixture slots to
 * positions. Must not: open any port. */
#include <cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "port.h"

#define PORTS_MAX 256

/* The link in `dir` that resolves to `path`, or "" (first match). */
static void ports_link(const char *dir, const char *path, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char real_target[PATH_MAX], real_link[PATH_MAX], link[PATH_MAX + 300];
    out[0] = 0;
    if (!d || !realpath(path, real_target)) {
        if (d)
            closedir(d);
        return;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        if (realpath(link, real_link) && !strcmp(real_link, real_target)) {
            snprintf(out, cap, "%s", link);
            break;
        }
    }
    closedir(d);
}

int cli_ports(int argc, char **argv)
{
    static port_info_t ports[PORTS_MAX];
    bool json = false;
    int n;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: espstation ports [--json]\n\nList serial ports with USB VID:PID, serial "
                 "number and stable names\n(/dev/serial/by-path/... names a USB socket: use it "
                 "for fixture slots).");
            return CLI_EXIT_OK;
        } else {
            fprintf(stderr, "espstation ports: unknown argument '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    n = port_list(ports, PORTS_MAX);
    if (n < 0) {
        fprintf(stderr, "espstation ports: cannot list ports: %s\n", uv_strerror(n));
        return CLI_EXIT_FAIL;
    }
    if (n > PORTS_MAX)
        n = PORTS_MAX;
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json && n == 0)
        puts("no serial ports found");
    for (int i = 0; i < n; i++) {
        char by_path[PATH_MAX + 300], by_id[PATH_MAX + 300];
        ports_link("/dev/serial/by-path", ports[i].path, by_path, sizeof by_path);
        ports_link("/dev/serial/by-id", ports[i].path, by_id, sizeof by_id);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            char vp[16];
            cJSON_AddStringToObject(o, "path", ports[i].path);
            cJSON_AddStringToObject(o, "description", ports[i].description);
            cJSON_AddBoolToObject(o, "usb", ports[i].usb);
            if (ports[i].usb) {
                snprintf(vp, sizeof vp, "%04x", ports[i].usb_vid);
                cJSON_AddStringToObject(o, "vid", vp);
                snprintf(vp, sizeof vp, "%04x", ports[i].usb_pid);
                cJSON_AddStringToObject(o, "pid", vp);
            }
            cJSON_AddStringToObject(o, "serial", ports[i].serial);
            cJSON_AddStringToObject(o, "by_path", by_path);
            cJSON_AddStringToObject(o, "by_id", by_id);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("%-16s", ports[i].path);
            if (ports[i].usb)
                printf(" %04x:%04x", ports[i].usb_vid, ports[i].usb_pid);
            printf(" %s", ports[i].description);
            if (ports[i].serial[0])
                printf("  usb-serial:%s", ports[i].serial);
            printf("\n");
            if (by_path[0])
                printf("    %s\n", by_path);
            if (by_id[0])
                printf("    %s\n", by_id);
        }
    }
    if (json) {
        char *s = cJSON_Print(arr);
        puts(s);
        free(s);
        cJSON_Delete(arr);
    }
    return CLI_EXIT_OK;
}
