// SPDX-License-Identifier: MIT
// sim_nvs: reading an NVS partition the way the device's nvs_flash does for a lookup
// (docs/DEVICE-DATA.md "The NVS format"): valid pages (ACTIVE, FULL or FREEING, header CRC
// good) in sequence-number order, written entries per the state bitmap, entry and data CRCs,
// namespaces, integers, strings, version 1 blobs and version 2 blobs (index + data chunks).
#include "sim_nvs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PAGE 4096u
#define ENTRIES 126u
#define ENT 32u
#define MAX_PAGES 4096u
#define MAX_SPEC_KEYS 16

enum {
    T_U8 = 0x01,
    T_I8 = 0x11,
    T_U16 = 0x02,
    T_I16 = 0x12,
    T_U32 = 0x04,
    T_I32 = 0x14,
    T_U64 = 0x08,
    T_I64 = 0x18,
    T_SZ = 0x21,
    T_BLOB = 0x41,
    T_BLOB_DATA = 0x42,
    T_BLOB_IDX = 0x48
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// NVS's CRC-32: zlib's, continued from 0xFFFFFFFF
static uint32_t nvs_crc(const uint8_t *d, size_t n)
{
    return (uint32_t)crc32(0xFFFFFFFFul, d, (uInt)n);
}

static bool page_valid(const uint8_t *p)
{
    uint32_t st = le32(p);
    if (st != 0xFFFFFFFEu && st != 0xFFFFFFFCu && st != 0xFFFFFFF8u) return false;
    return nvs_crc(p + 4, 24) == le32(p + 28);
}

static bool entry_ok(const uint8_t *e)
{
    uint8_t buf[28];
    memcpy(buf, e, 4);
    memcpy(buf + 4, e + 8, 24);
    return nvs_crc(buf, sizeof buf) == le32(e + 4);
}

typedef struct pages {
    const uint8_t *p[MAX_PAGES];
    unsigned n;
} pages_t;

// Valid pages by sequence number (insertion sort: a partition has few pages).
static void collect(const uint8_t *part, uint32_t size, pages_t *pg)
{
    pg->n = 0;
    for (uint32_t off = 0; off + PAGE <= size && pg->n < MAX_PAGES; off += PAGE) {
        const uint8_t *p = part + off;
        unsigned k;
        if (!page_valid(p)) continue;
        for (k = pg->n; k > 0 && le32(pg->p[k - 1] + 4) > le32(p + 4); k--)
            pg->p[k] = pg->p[k - 1];
        pg->p[k] = p;
        pg->n++;
    }
}

typedef bool (*visit_fn)(void *ctx, const uint8_t *page, unsigned idx, const uint8_t *e);

// Every written entry with a good CRC, in page order; spans skipped. Stops when fn returns true.
static void each_entry(const pages_t *pg, visit_fn fn, void *ctx)
{
    for (unsigned k = 0; k < pg->n; k++) {
        const uint8_t *p = pg->p[k];
        for (unsigned i = 0; i < ENTRIES;) {
            const uint8_t *e = p + 64 + i * ENT;
            unsigned state = (p[32 + i / 4] >> ((i % 4) * 2)) & 3, span = e[2];
            if (state != 2 || span == 0 || i + span > ENTRIES || !entry_ok(e)) {
                i++;
                continue;
            }
            if (fn(ctx, p, i, e)) return;
            i += span;
        }
    }
}

typedef struct find {
    const char *key;
    uint8_t ns;
    const uint8_t *hit, *hit_page; // the last match (newest page wins)
    unsigned hit_idx;
} find_t;

static bool key_is(const uint8_t *e, const char *key)
{
    char k[17];
    memcpy(k, e + 8, 16);
    k[16] = 0;
    return strcmp(k, key) == 0;
}

static bool find_ns(void *ctx, const uint8_t *page, unsigned idx, const uint8_t *e)
{
    find_t *f = ctx;
    (void)page, (void)idx;
    if (e[0] == 0 && e[1] == T_U8 && key_is(e, f->key)) f->ns = e[24];
    return false;
}

static bool find_item(void *ctx, const uint8_t *page, unsigned idx, const uint8_t *e)
{
    find_t *f = ctx;
    if (e[0] == f->ns && e[1] != T_BLOB_DATA && key_is(e, f->key)) {
        f->hit = e;
        f->hit_page = page;
        f->hit_idx = idx;
    }
    return false;
}

typedef struct chunks {
    const char *key;
    uint8_t ns, start, count;
    uint8_t *buf;
    uint32_t size, got;
    bool bad;
} chunks_t;

// Data of a data-carrying entry (string, blob, chunk): NULL when its CRC or length is wrong.
static const uint8_t *entry_data(const uint8_t *e, unsigned idx, uint32_t *len)
{
    uint32_t n = (uint32_t)e[24] | (uint32_t)e[25] << 8;
    if (n > (uint32_t)(e[2] - 1) * ENT || idx + e[2] > ENTRIES) return NULL;
    if (nvs_crc(e + ENT, n) != le32(e + 28)) return NULL;
    *len = n;
    return e + ENT;
}

static bool gather(void *ctx, const uint8_t *page, unsigned idx, const uint8_t *e)
{
    chunks_t *c = ctx;
    const uint8_t *d;
    uint32_t n;
    (void)page;
    if (e[0] != c->ns || e[1] != T_BLOB_DATA || !key_is(e, c->key)) return false;
    if (e[3] < c->start || e[3] >= c->start + c->count) return false;
    if (!(d = entry_data(e, idx, &n))) {
        c->bad = true;
        return false;
    }
    // chunks are written in index order; a generator image has each once
    if (c->got + n > c->size) {
        c->bad = true;
        return true;
    }
    memcpy(c->buf + c->got, d, n);
    c->got += n;
    return false;
}

static void hex_out(const uint8_t *d, uint32_t n, char *out, size_t cap)
{
    size_t o = 0;
    uint32_t shown = n > 64 ? 64 : n;
    out[0] = 0;
    for (uint32_t i = 0; i < shown && o + 3 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", d[i]);
    if (shown < n && o < cap) snprintf(out + o, cap - o, "... (%u bytes)", (unsigned)n);
}

static void str_out(const uint8_t *d, uint32_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (n && d[n - 1] == 0) n--; // the terminating NUL
    for (uint32_t i = 0; i < n && o + 5 < cap; i++) {
        if (d[i] >= 0x20 && d[i] < 0x7F && d[i] != '\\')
            out[o++] = (char)d[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", d[i]);
    }
    out[o] = 0;
}

static void int_out(const uint8_t *e, char *out, size_t cap)
{
    unsigned w = e[1] & 0x0F;
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v |= (uint64_t)e[24 + i] << (8 * i);
    if ((e[1] & 0xF0) == 0x10 && w < 8 && (v >> (w * 8 - 1)) & 1) v |= ~0ull << (w * 8);
    if ((e[1] & 0xF0) == 0x10)
        snprintf(out, cap, "%lld", (long long)(int64_t)v);
    else
        snprintf(out, cap, "%llu", (unsigned long long)v);
}

static int blob_v2(const pages_t *pg, const find_t *f, char *out, size_t cap)
{
    chunks_t c = {.key = f->key, .ns = f->ns, .size = le32(f->hit + 24)};
    c.count = f->hit[28];
    c.start = f->hit[29];
    if (c.size > 1u << 20 || !(c.buf = malloc(c.size ? c.size : 1))) return 0;
    each_entry(pg, gather, &c);
    if (c.bad || c.got != c.size) {
        free(c.buf);
        return 0;
    }
    hex_out(c.buf, c.size, out, cap);
    free(c.buf);
    return 1;
}

int sim_nvs_get(const uint8_t *part, uint32_t size, const char *ns, const char *key, char *out,
                size_t cap)
{
    static pages_t pg; // espsim is single-threaded
    find_t f = {.key = ns};
    const uint8_t *d;
    uint32_t n;
    collect(part, size, &pg);
    if (pg.n == 0) return -1;
    each_entry(&pg, find_ns, &f);
    if (f.ns == 0 || f.ns == 0xFF) return 0;
    f.key = key;
    each_entry(&pg, find_item, &f);
    if (!f.hit) return 0;
    switch (f.hit[1]) {
    case T_U8:
    case T_I8:
    case T_U16:
    case T_I16:
    case T_U32:
    case T_I32:
    case T_U64:
    case T_I64: int_out(f.hit, out, cap); return 1;
    case T_SZ:
    case T_BLOB:
        if (!(d = entry_data(f.hit, f.hit_idx, &n))) return 0;
        if (f.hit[1] == T_SZ)
            str_out(d, n, out, cap);
        else
            hex_out(d, n, out, cap);
        return 1;
    case T_BLOB_IDX: return blob_v2(&pg, &f, out, cap);
    default: return 0;
    }
}

int sim_nvs_spec_ok(const char *spec)
{
    int keys = 0;
    const char *p = spec;
    if (!spec || !*spec) return -1;
    while (*p) {
        size_t a = strcspn(p, ":,"), b;
        if (a == 0 || a > 15 || p[a] != ':') return -1;
        p += a + 1;
        b = strcspn(p, ",:");
        if (b == 0 || b > 15 || p[b] == ':') return -1;
        p += b;
        if (++keys > MAX_SPEC_KEYS) return -1;
        if (*p == ',') {
            p++;
            if (!*p) return -1;
        }
    }
    return 0;
}

int sim_nvs_option(const char *name, const char *arg, const char **spec, uint32_t *offset,
                   uint32_t *size)
{
    char *end = NULL;
    unsigned long long v;
    if (strcmp(name, "app-nvs-print") == 0) {
        if (sim_nvs_spec_ok(arg) != 0) {
            fprintf(stderr,
                    "espsim: bad --app-nvs-print '%s' (want ns:key[,ns:key...], names "
                    "of 1-15 characters, at most %d keys)\n",
                    arg, MAX_SPEC_KEYS);
            return -1;
        }
        *spec = arg;
        return 0;
    }
    v = strtoull(arg, &end, 0);
    if (!*arg || *end || v == 0 || v % PAGE || v > 0x10000000ull) {
        fprintf(stderr, "espsim: bad --%s '%s' (a multiple of 0x1000)\n", name, arg);
        return -1;
    }
    if (strcmp(name, "nvs-offset") == 0)
        *offset = (uint32_t)v;
    else
        *size = (uint32_t)v;
    return 0;
}

size_t sim_nvs_report(const sim_flash_t *flash, uint32_t offset, uint32_t size, const char *spec,
                      char *out, size_t cap)
{
    size_t o = 0;
    const char *p = spec;
    uint32_t flash_size = flash->size;
    uint8_t *part = NULL;
    out[0] = 0;
    if (!offset) offset = SIM_NVS_DEFAULT_OFFSET;
    if (!size) size = SIM_NVS_DEFAULT_SIZE;
    if (offset % PAGE || size % PAGE || size == 0 || offset > flash_size ||
        size > flash_size - offset) {
        snprintf(out, cap, "E (260) nvs: partition 0x%x+0x%x is not inside the %u-byte flash\r\n",
                 (unsigned)offset, (unsigned)size, (unsigned)flash_size);
        return strlen(out);
    }
    if (!(part = malloc(size))) {
        snprintf(out, cap, "E (260) nvs: out of memory\r\n");
        return strlen(out);
    }
    sim_flash_read(flash, offset, part, size); // the flash model keeps its bits inverted
    while (*p && o + 1 < cap) {
        char ns[16], key[16], val[320];
        size_t a = strcspn(p, ":"), b;
        int r;
        snprintf(ns, sizeof ns, "%.*s", (int)a, p);
        p += a + (p[a] == ':');
        b = strcspn(p, ",");
        snprintf(key, sizeof key, "%.*s", (int)b, p);
        p += b + (p[b] == ',');
        r = sim_nvs_get(part, size, ns, key, val, sizeof val);
        if (r < 0) {
            snprintf(out, cap, "E (260) nvs: no NVS partition at 0x%x\r\n", (unsigned)offset);
            break;
        }
        if (r == 1)
            snprintf(out + o, cap - o, "I (260) nvs: %s:%s = %s\r\n", ns, key, val);
        else
            snprintf(out + o, cap - o, "W (260) nvs: %s:%s not found\r\n", ns, key);
        o = strlen(out);
    }
    free(part);
    return strlen(out);
}
