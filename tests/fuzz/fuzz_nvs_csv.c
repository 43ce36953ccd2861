/* SPDX-License-Identifier: MIT */
/* fuzz_nvs_csv.c — fuzz target for the NVS generator's CSV input (jobs/prov/nvs_csv.c,
 * nvs_mfg.c, nvs.c; docs/DEVICE-DATA.md). Input: a generator CSV (also read as a manufacturing
 * config). Invariants: the CSV reader and writer round-trip every record; a refused input has a
 * message and one of the documented codes; a generated image has the partition's size, valid
 * page headers (state, sequence = page index, version, CRC-32) on the used pages only, the
 * last used page ACTIVE and the others FULL, a good CRC in every written entry, nothing written
 * in the spare page; the encrypted image differs from the plain one only in written entries,
 * and each of them decrypts (AES-256-XTS, tweak = offset) to the plain entry, as nvs_decrypt
 * of the whole image does. Files named by
 * "file" rows come from a loader that never touches the file system.
 * Must not: read or write files; keep state between inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "nvs.h"
#include "nvs_csv.h"
#include "nvs_mfg.h"

#define SIZE 0x6000u
#define FUZZ_NVS_MAX_INPUT (64u << 10)

static const uint8_t g_keys[NVS_XTS_KEYS_LEN] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
    0x55, 0xaa, 0x55, 0xaa, 0x11, 0x22, 0x33, 0x44, 0x66, 0x77, 0x88, 0x99, 0xcc, 0xdd, 0xee, 0xff,
    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x21, 0x43, 0x65, 0x87, 0xa9, 0xcb, 0xed, 0x0f};

/* "file" rows: the content is the path itself (repeated to 700 bytes when it says "big"), a
 * path containing "fail" cannot be read. */
static int fake_load(void *ctx, const char *path, uint8_t **data, size_t *len, char *err,
                     size_t errlen)
{
    size_t n = strlen(path), want = strstr(path, "big") ? 700 : n;
    (void)ctx;
    if (strstr(path, "fail")) {
        snprintf(err, errlen, "cannot read file `%s`", path);
        return NVS_EIO;
    }
    *data = malloc(want + 1);
    FUZZ_CHECK(*data != NULL);
    for (size_t i = 0; i < want; i++)
        (*data)[i] = (uint8_t)path[n ? i % n : 0];
    *len = want;
    return 0;
}

static const nvs_csv_opts_t g_opts = {.load = fake_load};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_roundtrip(const uint8_t *data, size_t size)
{
    nvs_csv_t a, b;
    nvs_buf_t w = {0};
    char err[256];
    if (nvs_csv_read((const char *)data, size, true, &a, err, sizeof err) != 0) {
        FUZZ_CHECK(memchr(data, 0, size) != NULL); /* only a NUL byte is refused */
        return;
    }
    for (size_t i = 0; i < a.n; i++)
        FUZZ_CHECK(nvs_csv_write_row(&w, (const char *const *)a.r[i].f, a.r[i].n) == 0);
    FUZZ_CHECK(nvs_csv_read(w.p ? w.p : "", w.len, false, &b, err, sizeof err) == 0);
    FUZZ_CHECK(a.n == b.n);
    for (size_t i = 0; i < a.n; i++) {
        FUZZ_CHECK(a.r[i].n == b.r[i].n);
        for (size_t k = 0; k < a.r[i].n; k++)
            FUZZ_CHECK(strcmp(a.r[i].f[k], b.r[i].f[k]) == 0);
        FUZZ_CHECK(i == 0 || a.r[i].line > a.r[i - 1].line);
    }
    nvs_csv_free(&a);
    nvs_csv_free(&b);
    nvs_buf_free(&w);
}

static void check_entry_crc(const uint8_t *e)
{
    uint8_t buf[28];
    memcpy(buf, e, 4);
    memcpy(buf + 4, e + 8, 24);
    FUZZ_CHECK(nvs_crc32(buf, sizeof buf) == le32(e + 4));
}

/* Page structure of a plain image (docs/DEVICE-DATA.md "The NVS format"). */
static void check_image(const uint8_t *img, size_t len, int version)
{
    unsigned used = 0, pages = (unsigned)(len / NVS_PAGE_SIZE);
    FUZZ_CHECK(len == SIZE);
    while (used < pages && le32(img + used * NVS_PAGE_SIZE) != 0xFFFFFFFFu)
        used++;
    FUZZ_CHECK(used >= 1 && used < pages); /* the spare page stays erased */
    for (unsigned p = 0; p < pages; p++) {
        const uint8_t *pg = img + (size_t)p * NVS_PAGE_SIZE;
        if (p >= used) {
            for (size_t i = 0; i < NVS_PAGE_SIZE; i++)
                FUZZ_CHECK(pg[i] == 0xFF);
            continue;
        }
        FUZZ_CHECK(le32(pg) == (p + 1 == used ? 0xFFFFFFFEu : 0xFFFFFFFCu));
        FUZZ_CHECK(le32(pg + 4) == p && pg[8] == (version == 1 ? 0xFF : 0xFE));
        FUZZ_CHECK(nvs_crc32(pg + 4, 24) == le32(pg + 28));
        for (unsigned i = 0; i < NVS_ENTRIES;) {
            unsigned st = (pg[32 + i / 4] >> ((i % 4) * 2)) & 3;
            const uint8_t *e = pg + 64 + i * 32u;
            if (st == 3) {
                i++;
                continue;
            }
            FUZZ_CHECK(st == 2); /* written; nothing is ever erased here */
            check_entry_crc(e);
            FUZZ_CHECK(e[2] >= 1 && i + e[2] <= NVS_ENTRIES);
            for (unsigned k = 1; k < e[2]; k++) /* data entries are marked written too */
                FUZZ_CHECK(((pg[32 + (i + k) / 4] >> (((i + k) % 4) * 2)) & 3) == 2);
            i += e[2];
        }
    }
}

static void check_encrypted(const uint8_t *plain, const uint8_t *enc, size_t len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    FUZZ_CHECK(ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_xts(), NULL, g_keys, NULL) == 1);
    for (size_t p = 0; p < len / NVS_PAGE_SIZE; p++) {
        const uint8_t *pg = plain + p * NVS_PAGE_SIZE;
        FUZZ_CHECK(memcmp(pg, enc + p * NVS_PAGE_SIZE, 64) == 0);
        for (unsigned i = 0; i < NVS_ENTRIES; i++) {
            size_t off = p * NVS_PAGE_SIZE + 64 + i * 32u;
            uint8_t tweak[16] = {0}, out[32];
            int ol = 0;
            if (((pg[32 + i / 4] >> ((i % 4) * 2)) & 3) == 3) {
                FUZZ_CHECK(memcmp(plain + off, enc + off, 32) == 0);
                continue;
            }
            for (int k = 0; k < 4; k++)
                tweak[k] = (uint8_t)(off >> (8 * k));
            FUZZ_CHECK(EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, tweak) == 1);
            FUZZ_CHECK(EVP_DecryptUpdate(ctx, out, &ol, enc + off, 32) == 1 && ol == 32);
            FUZZ_CHECK(memcmp(out, plain + off, 32) == 0);
        }
    }
    EVP_CIPHER_CTX_free(ctx);
}

static void generate(const char *text, size_t size, int version)
{
    uint8_t *plain = NULL, *enc = NULL;
    size_t plen = 0, elen = 0;
    char err[512], err2[512];
    int rc, rc2;
    memset(err, 0, sizeof err);
    rc = nvs_csv_generate(text, size, SIZE, version, NULL, &g_opts, &plain, &plen, err, sizeof err);
    rc2 = nvs_csv_generate(text, size, SIZE, version, g_keys, &g_opts, &enc, &elen, err2,
                           sizeof err2);
    FUZZ_CHECK(rc == rc2); /* encryption changes no decision */
    if (rc != 0) {
        FUZZ_CHECK(rc == NVS_EINPUT || rc == NVS_ESIZE || rc == NVS_EIO);
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CHECK(strcmp(err, err2) == 0);
        FUZZ_CHECK(plain == NULL && enc == NULL);
        return;
    }
    check_image(plain, plen, version);
    FUZZ_CHECK(elen == plen);
    check_encrypted(plain, enc, plen);
    /* nvs_decrypt undoes the encryption exactly */
    FUZZ_CHECK(nvs_decrypt(enc, elen, g_keys, err2, sizeof err2) == 0);
    FUZZ_CHECK(memcmp(enc, plain, plen) == 0);
    free(plain);
    free(enc);
}

static const char *value_one(void *ctx, const char *key)
{
    (void)ctx;
    return key[0] == 'x' ? NULL : "1";
}

/* The input as a manufacturing config: what parses renders into a generator CSV. */
static void as_mfg_config(const uint8_t *data, size_t size)
{
    nvs_mfg_conf_t conf;
    nvs_buf_t csv = {0};
    char err[512];
    uint8_t *img = NULL;
    size_t len;
    int rc;
    if (nvs_mfg_conf_parse((const char *)data, size, &conf, err, sizeof err) != 0) return;
    FUZZ_CHECK(conf.n >= 1 && strcmp(conf.items[0].type, "namespace") == 0);
    rc = nvs_mfg_render(&conf, value_one, NULL, &csv, err, sizeof err);
    if (rc == 0) {
        rc = nvs_csv_generate(csv.p, csv.len, SIZE, 2, NULL, &g_opts, &img, &len, err, sizeof err);
        FUZZ_CHECK(rc == 0 || rc == NVS_EINPUT || rc == NVS_ESIZE || rc == NVS_EIO);
        if (rc == 0) check_image(img, len, 2);
    } else {
        FUZZ_CHECK(rc == NVS_EINPUT && strstr(err, "no value for key `x"));
    }
    free(img);
    nvs_buf_free(&csv);
    nvs_mfg_conf_free(&conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    if (size > FUZZ_NVS_MAX_INPUT) return 0;
    check_roundtrip(data, size);
    text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = 0;
    generate(text, size, 2);
    generate(text, size, 1);
    as_mfg_config(data, size);
    free(text);
    return 0;
}
