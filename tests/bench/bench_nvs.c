/* SPDX-License-Identifier: MIT */
/* bench_nvs.c — what one device's NVS image costs (docs/DEVICE-DATA.md "Performance"): a
 * 24 KiB partition from a per-device CSV like the manufacturing vectors' (serial, MAC label,
 * hardware revision, batch, a 16-byte secret, a 2 KiB certificate string, a 700-byte blob),
 * generated N times plain and N times encrypted; prints wall-clock min / median / p99 / max
 * and the thread's CPU time (what the work costs, without preemption by other processes), in µs.
 * Not a test: nothing is asserted. Usage: bench_nvs [N] (default 2000).
 * Must not: touch files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvs.h"
#include "nvs_csv.h"

static double now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void device_csv(nvs_buf_t *b, unsigned n)
{
    char line[256];
    b->len = 0;
    snprintf(line, sizeof line,
             "key,type,encoding,value\ndevice,namespace,,\nserial_no,data,string,SN-2026-%06u\n"
             "hw_rev,data,u8,3\nmac_label,data,string,24:0a:c4:%02x:%02x:%02x\n"
             "batch,data,u32,77\nsecret,data,hex2bin,%08x%08x%08x%08x\n"
             "creds,namespace,,\ncert,data,string,",
             n, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, n * 2654435761u, n ^ 0x5a5a5a5au,
             n * 40503u, ~n);
    nvs_buf_add(b, line, strlen(line));
    for (int i = 0; i < 32; i++) /* a 2 KiB PEM-like body */
        nvs_buf_add(b, "MIIBszCCAVmgAwIBAgIUK0a1bXJ4dGVzdGNlcnRpZmljYXRlMAoGCCqGSM49BAMC", 64);
    nvs_buf_add(b, "\nblob,data,hex2bin,", 19);
    for (int i = 0; i < 700; i++) {
        snprintf(line, sizeof line, "%02x", (unsigned)(i * 7 + n) & 0xFF);
        nvs_buf_add(b, line, 2);
    }
    nvs_buf_add(b, "\n", 1);
}

static void run(const char *what, unsigned iters, const uint8_t *keys)
{
    nvs_buf_t csv = {0};
    double *t = malloc(iters * sizeof *t), *c = malloc(iters * sizeof *c);
    char err[512];
    if (!t || !c) return;
    for (unsigned i = 0; i < iters; i++) {
        uint8_t *img = NULL;
        size_t len;
        double t0, c0;
        device_csv(&csv, 1000 + i);
        t0 = now_us(CLOCK_MONOTONIC);
        c0 = now_us(CLOCK_THREAD_CPUTIME_ID);
        if (nvs_csv_generate(csv.p, csv.len, 0x6000, 2, keys, NULL, &img, &len, err, sizeof err) !=
            0) {
            fprintf(stderr, "bench_nvs: %s\n", err);
            exit(1);
        }
        t[i] = now_us(CLOCK_MONOTONIC) - t0;
        c[i] = now_us(CLOCK_THREAD_CPUTIME_ID) - c0;
        free(img);
    }
    qsort(t, iters, sizeof *t, cmp_d);
    qsort(c, iters, sizeof *c, cmp_d);
    printf("%-10s 24 KiB image, %u devices: wall min %.0f / median %.0f / p99 %.0f / max %.0f us;"
           " CPU median %.0f / p99 %.0f / max %.0f us\n",
           what, iters, t[0], t[iters / 2], t[iters * 99 / 100], t[iters - 1], c[iters / 2],
           c[iters * 99 / 100], c[iters - 1]);
    free(t);
    free(c);
    nvs_buf_free(&csv);
}

int main(int argc, char **argv)
{
    static const uint8_t keys[NVS_XTS_KEYS_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000;
    if (iters < 1 || iters > 1000000) iters = 2000;
    run("plain", iters, NULL);
    run("encrypted", iters, keys);
    return 0;
}
