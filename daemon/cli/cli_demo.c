/* SPDX-License-Identifier: MIT */
/* cli_demo.c — `espstation demo`: the station daemon with N simulated boards of mixed chips
 * (espsim over RFC 2217, in real time), a generated demo recipe, every slot in loop mode, and
 * after each job the simulator "swaps in a new board" (new MAC, erased flash) the way an
 * operator would. Lets a newcomer watch a working station without hardware.
 * Must not: be needed by anything else; everything it starts it stops. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "serve.h"

#define DEMO_MAX_SLOTS 64
#define DEMO_SWAP_MS 1000 /* how long the "operator" takes to put in the next board */
#define DEMO_PROBE_MS 2500 /* slots look for a new board this often: after the swap */

extern char **environ;

static const char *const demo_chips[] = {"esp32",   "esp32s3", "esp32c3", "esp32",
                                         "esp32c6", "esp32s2", "esp8266", "esp32h2"};

typedef struct demo_sim_s {
    pid_t pid;
    char port[128];
    uv_timer_t swap;
    bool timer_init;
} demo_sim_t;

typedef struct demo_s {
    size_t n;
    demo_sim_t sims[DEMO_MAX_SLOTS];
    jobmgr_t *mgr;
} demo_t;

static int demo_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    if (fwrite(data, 1, n, f) != n) {
        fclose(f);
        return -EIO;
    }
    return fclose(f) == 0 ? 0 : -errno;
}

/* A 192 KiB stand-in application: random first half, text-like second half (so deflate has
 * something to do, as with real firmware). */
static int demo_make_recipe(const char *dir, char *recipe_path, size_t cap)
{
    size_t n = 192 * 1024;
    uint8_t *img = malloc(n), md[32];
    unsigned int ml = sizeof md;
    char path[PATH_MAX], hex[65], *json = NULL;
    uint32_t x = 0x9E3779B9u;
    int rc;
    if (!img)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        img[i] = i < n / 2 ? (uint8_t)(x >> 24) : (uint8_t)"espstation demo firmware "[i % 25];
    }
    EVP_Digest(img, n, md, &ml, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(path, sizeof path, "%s/demo-app.bin", dir);
    rc = demo_write(path, img, n);
    free(img);
    if (rc)
        return rc;
    if (asprintf(&json,
                 "{\n  \"name\": \"demo-firmware\",\n  \"version\": \"1.0.0\",\n"
                 "  \"description\": \"espstation demo: one application image\",\n"
                 "  \"chip\": [\"esp8266\", \"esp32\", \"esp32s2\", \"esp32s3\", \"esp32c3\", "
                 "\"esp32c6\", \"esp32h2\"],\n"
                 "  \"images\": [{\"label\": \"app\", \"offset\": \"0x10000\", "
                 "\"file\": \"demo-app.bin\", \"sha256\": \"%s\"}]\n}\n",
                 hex) < 0)
        return -ENOMEM;
    snprintf(recipe_path, cap, "%s/demo-recipe.json", dir);
    rc = demo_write(recipe_path, json, strlen(json));
    free(json);
    return rc;
}

/* A token file for the demo's API (docs/API.md): one random engineer token, so that the
 * dashboard's start/cancel buttons and recipe uploads can be tried. Mode 0600 like a real one. */
static int demo_make_tokens(const char *dir, char *path, size_t cap, char tok[33])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[32];
    char line[64];
    int fd;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    for (size_t i = 0; i < 32; i++)
        tok[i] = abc[rnd[i] % (sizeof abc - 1)];
    tok[32] = 0;
    snprintf(path, cap, "%s/.tokens", dir); /* hidden: not listed as an image */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    snprintf(line, sizeof line, "engineer %s\n", tok);
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
        close(fd);
        return -EIO;
    }
    return close(fd) == 0 ? 0 : -errno;
}

/* Start one espsim and read its ready line (bounded wait). */
static int demo_spawn_sim(const char *espsim, const char *chip, unsigned idx, bool realtime,
                          demo_sim_t *sim)
{
    int pfd[2];
    posix_spawn_file_actions_t fa;
    char seed[32], mac[32], line[512];
    char *argv[16];
    int argc = 0, rc;
    size_t got = 0;

    snprintf(seed, sizeof seed, "%u", 1000 + idx);
    /* a recognisable MAC per slot: the simulator counts up from it for every new board */
    snprintf(mac, sizeof mac, "24:0a:c4:d0:%02x:00", idx & 0xFF);
    argv[argc++] = (char *)espsim;
    argv[argc++] = "--chip";
    argv[argc++] = (char *)chip;
    argv[argc++] = "--rfc2217";
    argv[argc++] = "0";
    argv[argc++] = "--mac";
    argv[argc++] = mac;
    argv[argc++] = "--seed";
    argv[argc++] = seed;
    argv[argc++] = "--quiet";
    if (realtime)
        argv[argc++] = "--realtime";
    argv[argc] = NULL;

    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    rc = posix_spawn(&sim->pid, espsim, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return -rc;
    }
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 10000) <= 0)
            break;
        r = read(pfd[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        line[got] = 0;
        if (strchr(line, '\n'))
            break;
        if (got >= sizeof line - 1)
            break;
    }
    close(pfd[0]); /* --quiet: nothing more but the exit event, which it may drop */
    line[got] = 0;
    char *p = strstr(line, "\"port\":\"");
    if (!p)
        return -EPROTO;
    p += 8;
    size_t k = strcspn(p, "\"");
    if (k >= sizeof sim->port)
        return -EPROTO;
    memcpy(sim->port, p, k);
    sim->port[k] = 0;
    return 0;
}

static void demo_stop_sims(demo_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->sims[i].pid > 0)
            kill(d->sims[i].pid, SIGTERM);
    for (size_t i = 0; i < d->n; i++)
        if (d->sims[i].pid > 0) {
            waitpid(d->sims[i].pid, NULL, 0);
            d->sims[i].pid = 0;
        }
}

/* ---- serve hooks ---- */

static void demo_swap_cb(uv_timer_t *t)
{
    demo_sim_t *sim = t->data;
    if (sim->pid > 0)
        kill(sim->pid, SIGUSR2); /* espsim: take the board out, put a new one in */
}

static void demo_start_cb(void *data, uv_loop_t *loop, jobmgr_t *mgr)
{
    demo_t *d = data;
    d->mgr = mgr;
    for (size_t i = 0; i < d->n; i++) {
        uv_timer_init(loop, &d->sims[i].swap);
        d->sims[i].swap.data = &d->sims[i];
        d->sims[i].timer_init = true;
    }
}

static void demo_result_cb(void *data, const char *slot, const char *uuid, const job_report_t *r)
{
    demo_t *d = data;
    int i = jobmgr_slot_index(d->mgr, slot);
    (void)uuid;
    if (i < 0 || r->result == JOB_RESULT_CANCELLED)
        return;
    uv_timer_start(&d->sims[i].swap, demo_swap_cb, DEMO_SWAP_MS, 0);
}

static void demo_stop_cb(void *data)
{
    demo_t *d = data;
    for (size_t i = 0; i < d->n; i++)
        if (d->sims[i].timer_init)
            uv_close((uv_handle_t *)&d->sims[i].swap, NULL);
}

static const char demo_help[] =
    "usage: espstation demo [--slots N] [--db FILE] [--listen ADDR:PORT] [--fast] [--verbose]\n"
    "\n"
    "Run the station daemon with N (default 8) simulated boards of mixed chips (espsim over\n"
    "RFC 2217, in real time at 115200 baud), a demo recipe, and every slot in loop mode: after\n"
    "each job the simulator swaps in a new board (new MAC). Every job is recorded in the\n"
    "database (default ./espstation-demo.db). The dashboard and the HTTP API listen on\n"
    "127.0.0.1:8080 (--listen to change); the demo prints an engineer token for API writes.\n"
    "Ctrl-C stops everything.\n"
    "\n"
    "  --slots N           number of simulated boards (default 8)\n"
    "  --db FILE           the database (default ./espstation-demo.db)\n"
    "  --listen ADDR:PORT  where the dashboard and API listen (default 127.0.0.1:8080)\n"
    "  --fast              simulators answer as fast as possible instead of in real time\n"
    "  --verbose           log every slot state change\n"
    "  --help              print this help\n";

int cli_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"slots", required_argument, NULL, 's'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"fast", no_argument, NULL, 'f'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static demo_t d; /* large; one per process */
    const char *db = "espstation-demo.db", *listen = "127.0.0.1:8080";
    bool realtime = true, verbose = false;
    unsigned long nslots = 8;
    char self[PATH_MAX], espsim[PATH_MAX + 16], dir[] = "/tmp/espstation-demo.XXXXXX";
    char recipe[PATH_MAX], dbabs[PATH_MAX], err[512], tokens[PATH_MAX], token[33];
    char *cfgtext = NULL;
    size_t cap = 0;
    FILE *cf;
    station_cfg_t cfg;
    ssize_t sl;
    int c, rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:d:l:fvh", opts, NULL)) != -1) {
        switch (c) {
        case 's': {
            char *end;
            nslots = strtoul(optarg, &end, 10);
            if (*end || nslots < 1 || nslots > DEMO_MAX_SLOTS) {
                fprintf(stderr, "espstation demo: --slots needs 1 to %d\n", DEMO_MAX_SLOTS);
                return CLI_EXIT_USAGE;
            }
            break;
        }
        case 'd': db = optarg; break;
        case 'l': listen = optarg; break;
        case 'f': realtime = false; break;
        case 'v': verbose = true; break;
        case 'h': fputs(demo_help, stdout); return CLI_EXIT_OK;
        default: fputs(demo_help, stderr); return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(demo_help, stderr);
        return CLI_EXIT_USAGE;
    }
    sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) {
        fprintf(stderr, "espstation demo: cannot find my own executable\n");
        return CLI_EXIT_FAIL;
    }
    self[sl] = 0;
    snprintf(espsim, sizeof espsim, "%s/espsim", dirname(self));
    if (access(espsim, X_OK) != 0) {
        fprintf(stderr, "espstation demo: the simulator %s is missing: build it (cmake --build "
                        "build) and run build/espstation demo\n",
                espsim);
        return CLI_EXIT_FAIL;
    }
    if (!mkdtemp(dir) || demo_make_recipe(dir, recipe, sizeof recipe) != 0 ||
        demo_make_tokens(dir, tokens, sizeof tokens, token) != 0) {
        fprintf(stderr, "espstation demo: cannot prepare the demo recipe: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (db[0] != '/' && getcwd(dbabs, sizeof dbabs) && strlen(dbabs) + strlen(db) + 2 < sizeof dbabs)
        snprintf(dbabs + strlen(dbabs), sizeof dbabs - strlen(dbabs), "/%s", db);
    else
        snprintf(dbabs, sizeof dbabs, "%s", db);

    d.n = nslots;
    for (size_t i = 0; i < d.n; i++) {
        const char *chip = demo_chips[i % (sizeof demo_chips / sizeof demo_chips[0])];
        if ((rc = demo_spawn_sim(espsim, chip, (unsigned)i, realtime, &d.sims[i])) != 0) {
            fprintf(stderr, "espstation demo: simulator %zu (%s) did not start: %s\n", i + 1,
                    chip, strerror(-rc));
            demo_stop_sims(&d);
            return CLI_EXIT_FAIL;
        }
    }
    cf = open_memstream(&cfgtext, &cap);
    fprintf(cf, "{\"id\": \"demo\", \"name\": \"espstation demo (%zu simulated boards)\", "
                "\"database\": \"%s\", \"listen\": \"%s\", \"recipe\": \"%s\", "
                "\"token_file\": \"%s\", \"image_dir\": \"%s\", \"probe_interval_ms\": %d, "
                "\"slots\": [",
            d.n, dbabs, listen, recipe, tokens, dir, DEMO_PROBE_MS);
    for (size_t i = 0; i < d.n; i++)
        fprintf(cf, "%s{\"name\": \"%c%zu\", \"port\": \"%s\", \"start\": \"loop\"}", i ? ", " : "",
                'A' + (int)(i / 8), i % 8 + 1, d.sims[i].port);
    fprintf(cf, "]}");
    fclose(cf);
    rc = config_parse(cfgtext, strlen(cfgtext), dir, &cfg, err, sizeof err);
    free(cfgtext);
    if (rc != 0) {
        fprintf(stderr, "espstation demo: %s\n", err);
        demo_stop_sims(&d);
        return CLI_EXIT_FAIL;
    }
    fprintf(stderr,
            "espstation demo: %zu simulated boards (%s), recipe %s\n"
            "  every slot loops: flash, then the simulator swaps in a new board after %.1f s.\n"
            "  results: sqlite3 %s \"SELECT slot, chip, mac, flash_id, result FROM jobs\"\n"
            "  dashboard: http://%s/  (API writes, demo only: Authorization: Bearer %s)\n"
            "  Ctrl-C stops the demo.\n",
            d.n, realtime ? "real time, 115200 baud" : "fast", recipe, DEMO_SWAP_MS / 1000.0,
            dbabs, listen, token);
    serve_hooks_t hooks = {&d, demo_start_cb, demo_result_cb, demo_stop_cb};
    rc = serve_run(&cfg, verbose, &hooks);
    config_free(&cfg);
    demo_stop_sims(&d);
    {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/demo-app.bin", dir);
        unlink(p);
        unlink(recipe);
        unlink(tokens);
        rmdir(dir);
    }
    return rc;
}
