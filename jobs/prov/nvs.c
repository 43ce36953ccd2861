/* SPDX-License-Identifier: MIT */
/* nvs.c — the NVS partition image generator (docs/DEVICE-DATA.md "The NVS format"; placement
 * rules in "Compatibility with the reference generator"). The image is built in place in one
 * buffer of the partition's size, erased (0xFF) to start with.
 * Must not: do file I/O or print. */
#include "nvs.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Page header (docs/DEVICE-DATA.md): state, sequence number, version, CRC-32 of bytes 4..27. */
#define PAGE_STATE_ACTIVE 0xFFFFFFFEu
#define PAGE_STATE_FULL 0xFFFFFFFCu
#define PAGE_BITMAP_OFF 32u
#define PAGE_FIRST_ENTRY 64u
#define CHUNK_ANY 0xFFu
#define VERSION1_BYTE 0xFFu
#define VERSION2_BYTE 0xFEu
#define MAX_CHUNKS 255u /* chunk indexes 0..254; 0xFF means "any" */

struct nvs_gen {
    uint8_t *img;
    size_t size;
    unsigned max_pages; /* pages items may use (all but the spare page) */
    int page;           /* current page, -1 before the first */
    unsigned entry;     /* next free entry of the current page */
    int version;
    EVP_CIPHER_CTX *xts; /* NULL: plain */
    unsigned ns_count;
    uint8_t cur_ns; /* 0: none opened yet */
    char ns_names[NVS_NS_MAX][NVS_KEY_MAX + 1];
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void put_le16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t nvs_crc32(const uint8_t *d, size_t n)
{
    static uint32_t table[256];
    static int ready; /* written once with the same values by any thread: benign */
    uint32_t c = 0;   /* zlib's crc32(0xFFFFFFFF, ...) starts from the inverted value, 0 */
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i;
            for (int k = 0; k < 8; k++)
                r = (r & 1) ? (r >> 1) ^ 0xEDB88320u : r >> 1;
            table[i] = r;
        }
        ready = 1;
    }
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ d[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

static uint8_t *page_ptr(nvs_gen_t *g, int page)
{
    return g->img + (size_t)page * NVS_PAGE_SIZE;
}

/* Start the next page; the current one (if any) becomes FULL. */
static int new_page(nvs_gen_t *g, char *err, size_t errlen)
{
    uint8_t *p;
    if (g->page >= 0) put_le32(page_ptr(g, g->page), PAGE_STATE_FULL);
    if ((unsigned)(g->page + 1) >= g->max_pages) {
        fail(err, errlen,
             "the data does not fit in a partition of %zu bytes (0x%zx): %u page(s) of 4096 "
             "bytes are usable%s; give a larger size",
             g->size, g->size, g->max_pages,
             g->max_pages * NVS_PAGE_SIZE < g->size ? " (one is kept free)" : "");
        return NVS_ESIZE;
    }
    g->page++;
    g->entry = 0;
    p = page_ptr(g, g->page);
    put_le32(p, PAGE_STATE_ACTIVE);
    put_le32(p + 4, (uint32_t)g->page); /* sequence number */
    p[8] = g->version == 1 ? VERSION1_BYTE : VERSION2_BYTE;
    put_le32(p + 28, nvs_crc32(p + 4, 24));
    return 0;
}

/* Write `count` entries from `data` (`len` bytes, the rest of the last entry 0xFF) at the
 * current position, encrypting each 32-byte entry when keys are set (tweak: the entry's byte
 * offset in the partition, 16 bytes little endian), and mark them written in the bitmap. */
static int put_entries(nvs_gen_t *g, const uint8_t *data, size_t len, unsigned count)
{
    uint8_t *page = page_ptr(g, g->page);
    for (unsigned i = 0; i < count; i++) {
        uint8_t blk[NVS_ENTRY_SIZE];
        size_t off = (size_t)i * NVS_ENTRY_SIZE;
        size_t n = off < len ? len - off : 0;
        uint8_t *dst = page + PAGE_FIRST_ENTRY + (size_t)g->entry * NVS_ENTRY_SIZE;
        unsigned bit = g->entry * 2;
        memset(blk, 0xFF, sizeof blk);
        memcpy(blk, data + off, n > NVS_ENTRY_SIZE ? NVS_ENTRY_SIZE : n);
        if (g->xts) {
            uint8_t tweak[16] = {0};
            uint32_t addr = (uint32_t)(dst - g->img);
            int outl = 0;
            put_le32(tweak, addr);
            if (EVP_EncryptInit_ex(g->xts, NULL, NULL, NULL, tweak) != 1 ||
                EVP_EncryptUpdate(g->xts, dst, &outl, blk, (int)sizeof blk) != 1 ||
                outl != (int)sizeof blk)
                return NVS_ECRYPTO;
        } else {
            memcpy(dst, blk, sizeof blk);
        }
        page[PAGE_BITMAP_OFF + bit / 8] &= (uint8_t) ~(1u << (bit & 7)); /* 11 -> 10: written */
        g->entry++;
    }
    return 0;
}

/* An entry header: namespace, type, span, chunk index, key; data bytes 24..31 left 0xFF. */
static void entry_init(uint8_t e[NVS_ENTRY_SIZE], uint8_t ns, uint8_t type, uint8_t span,
                       uint8_t chunk, const char *key)
{
    memset(e, 0xFF, NVS_ENTRY_SIZE);
    e[0] = ns;
    e[1] = type;
    e[2] = span;
    e[3] = chunk;
    memset(e + 8, 0, 16);
    memcpy(e + 8, key, strlen(key));
}

/* Entry CRC-32 over bytes 0..3 and 8..31, stored at 4. */
static void entry_seal(uint8_t e[NVS_ENTRY_SIZE])
{
    uint8_t buf[28];
    memcpy(buf, e, 4);
    memcpy(buf + 4, e + 8, 24);
    put_le32(e + 4, nvs_crc32(buf, sizeof buf));
}

static int check_key(const nvs_gen_t *g, const char *key, bool need_ns, char *err, size_t errlen)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0) {
        fail(err, errlen, "empty key: every item and namespace needs a name");
        return NVS_EINPUT;
    }
    if (n > NVS_KEY_MAX) {
        fail(err, errlen, "key `%s` is %zu bytes long: keys have at most %u", key, n, NVS_KEY_MAX);
        return NVS_EINPUT;
    }
    if (need_ns && g->cur_ns == 0) {
        fail(err, errlen, "key `%s` comes before any namespace: open one first", key);
        return NVS_EINPUT;
    }
    return 0;
}

static int crypto_fail(char *err, size_t errlen)
{
    fail(err, errlen, "AES-XTS encryption failed");
    return NVS_ECRYPTO;
}

/* One single-entry item (integers, namespace entries). */
static int write_primitive(nvs_gen_t *g, uint8_t ns, const char *key, uint8_t type, uint64_t v,
                           unsigned width, char *err, size_t errlen)
{
    uint8_t e[NVS_ENTRY_SIZE];
    int rc;
    if (g->entry >= NVS_ENTRIES && (rc = new_page(g, err, errlen)) != 0) return rc;
    entry_init(e, ns, type, 1, CHUNK_ANY, key);
    for (unsigned i = 0; i < width; i++)
        e[24 + i] = (uint8_t)(v >> (8 * i));
    entry_seal(e);
    return put_entries(g, e, sizeof e, 1) ? crypto_fail(err, errlen) : 0;
}

nvs_gen_t *nvs_gen_new(size_t size, int version, const uint8_t *xts_keys, char *err, size_t errlen)
{
    nvs_gen_t *g;
    if (version != 1 && version != 2) {
        fail(err, errlen, "version %d: the NVS format versions are 1 and 2", version);
        return NULL;
    }
    if (size < NVS_PAGE_SIZE || size % NVS_PAGE_SIZE != 0 || size > (256u << 20)) {
        fail(err, errlen,
             "partition size %zu (0x%zx) must be a multiple of 4096 between 0x1000 and "
             "0x10000000",
             size, size);
        return NULL;
    }
    g = calloc(1, sizeof *g);
    if (!g || !(g->img = malloc(size))) {
        free(g);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    memset(g->img, 0xFF, size);
    g->size = size;
    /* from 3 pages on, the last page stays free for NVS's garbage collection */
    g->max_pages = (unsigned)(size / NVS_PAGE_SIZE) - (size >= 3 * NVS_PAGE_SIZE ? 1 : 0);
    g->page = -1;
    g->version = version;
    if (xts_keys) {
        g->xts = EVP_CIPHER_CTX_new();
        if (!g->xts || EVP_EncryptInit_ex(g->xts, EVP_aes_256_xts(), NULL, xts_keys, NULL) != 1) {
            fail(err, errlen,
                 "the encryption keys are refused by AES-XTS (the data key and the tweak key "
                 "must differ): check the keys file");
            nvs_gen_free(g);
            return NULL;
        }
    }
    if (new_page(g, err, errlen) != 0) {
        nvs_gen_free(g);
        return NULL;
    }
    return g;
}

void nvs_gen_free(nvs_gen_t *g)
{
    if (!g) return;
    if (g->xts) EVP_CIPHER_CTX_free(g->xts);
    free(g->img);
    free(g);
}

int nvs_gen_namespace(nvs_gen_t *g, const char *name, char *err, size_t errlen)
{
    int rc = check_key(g, name, false, err, errlen);
    if (rc) return rc;
    for (unsigned i = 0; i < g->ns_count; i++)
        if (strcmp(g->ns_names[i], name) == 0) {
            g->cur_ns = (uint8_t)(i + 1);
            return 0;
        }
    if (g->ns_count >= NVS_NS_MAX) {
        fail(err, errlen, "namespace `%s`: NVS holds at most %u namespaces", name, NVS_NS_MAX);
        return NVS_EINPUT;
    }
    rc = write_primitive(g, 0, name, NVS_TYPE_U8, g->ns_count + 1, 1, err, errlen);
    if (rc) return rc;
    snprintf(g->ns_names[g->ns_count], sizeof g->ns_names[0], "%s", name);
    g->cur_ns = (uint8_t)++g->ns_count;
    return 0;
}

int nvs_gen_int(nvs_gen_t *g, const char *key, enum nvs_type type, uint64_t v, char *err,
                size_t errlen)
{
    unsigned width = (unsigned)type & 0x0F;
    bool is_signed = ((unsigned)type & 0xF0) == 0x10;
    int rc = check_key(g, key, true, err, errlen);
    if (rc) return rc;
    if ((type & 0xE0) != 0 || (width != 1 && width != 2 && width != 4 && width != 8)) {
        fail(err, errlen, "key `%s`: type 0x%02x is not an integer type", key, (unsigned)type);
        return NVS_EINPUT;
    }
    if (width < 8) {
        unsigned bits = width * 8;
        if (is_signed) {
            int64_t s = (int64_t)v, lim = (int64_t)1 << (bits - 1);
            if (s < -lim || s >= lim) {
                fail(err, errlen, "key `%s`: %lld does not fit in i%u (%lld..%lld)", key,
                     (long long)s, bits, (long long)-lim, (long long)(lim - 1));
                return NVS_EINPUT;
            }
        } else if (v >> bits) {
            fail(err, errlen, "key `%s`: %llu does not fit in u%u (0..%llu)", key,
                 (unsigned long long)v, bits, (unsigned long long)((1ull << bits) - 1));
            return NVS_EINPUT;
        }
    }
    return write_primitive(g, g->cur_ns, key, (uint8_t)type, v, width, err, errlen);
}

/* A string or version 1 blob: header entry plus data entries, all on one page. */
static int write_single_page(nvs_gen_t *g, const char *key, uint8_t type, const uint8_t *d,
                             size_t len, char *err, size_t errlen)
{
    unsigned dec = (unsigned)((len + 31) / 32);
    uint8_t e[NVS_ENTRY_SIZE];
    int rc;
    /* the reference moves on when the item would reach the page's last entry */
    if (g->entry >= NVS_ENTRIES || g->entry + dec + 1 >= NVS_ENTRIES) {
        if ((rc = new_page(g, err, errlen)) != 0) return rc;
        if (dec + 1 >= NVS_ENTRIES) {
            fail(err, errlen,
                 "key `%s`: %zu bytes do not fit in one page (at most %u for a string with its "
                 "NUL)",
                 key, len, NVS_STR_PAGE_MAX);
            return NVS_EINPUT;
        }
    }
    entry_init(e, g->cur_ns, type, (uint8_t)(dec + 1), CHUNK_ANY, key);
    put_le16(e + 24, (uint32_t)len);
    put_le32(e + 28, nvs_crc32(d, len));
    entry_seal(e);
    if (put_entries(g, e, sizeof e, 1) || put_entries(g, d, len, dec))
        return crypto_fail(err, errlen);
    return 0;
}

/* A version 2 blob: data chunks filling each page's free entries (one entry kept after the
 * last chunk of a page for the next header), then the index entry. */
static int write_multi_page_blob(nvs_gen_t *g, const char *key, const uint8_t *d, size_t len,
                                 char *err, size_t errlen)
{
    size_t off = 0, remaining = len;
    unsigned chunks = 0;
    uint8_t e[NVS_ENTRY_SIZE];
    int rc;
    if (g->entry >= NVS_ENTRIES && (rc = new_page(g, err, errlen)) != 0) return rc;
    for (;;) {
        size_t tailroom = (size_t)(NVS_ENTRIES - g->entry - 1) * NVS_ENTRY_SIZE;
        size_t chunk = tailroom < remaining ? tailroom : remaining;
        unsigned dec = (unsigned)((chunk + 31) / 32);
        if (chunks >= MAX_CHUNKS) {
            fail(err, errlen, "key `%s`: a blob of %zu bytes needs more than %u chunks", key, len,
                 MAX_CHUNKS);
            return NVS_EINPUT;
        }
        remaining -= chunk;
        entry_init(e, g->cur_ns, NVS_TYPE_BLOB_DATA, (uint8_t)(dec + 1), (uint8_t)chunks, key);
        put_le16(e + 24, (uint32_t)chunk);
        put_le32(e + 28, nvs_crc32(d + off, chunk));
        entry_seal(e);
        if (put_entries(g, e, sizeof e, 1) || put_entries(g, d + off, chunk, dec))
            return crypto_fail(err, errlen);
        chunks++;
        off += chunk;
        if ((remaining || tailroom - chunk < NVS_ENTRY_SIZE) &&
            (rc = new_page(g, err, errlen)) != 0)
            return rc;
        if (!remaining) break;
    }
    entry_init(e, g->cur_ns, NVS_TYPE_BLOB_IDX, 1, CHUNK_ANY, key);
    put_le32(e + 24, (uint32_t)len);
    e[28] = (uint8_t)chunks;
    e[29] = 0; /* chunk start */
    entry_seal(e);
    return put_entries(g, e, sizeof e, 1) ? crypto_fail(err, errlen) : 0;
}

int nvs_gen_str(nvs_gen_t *g, const char *key, const uint8_t *s, size_t len, char *err,
                size_t errlen)
{
    size_t max = g->version == 1 ? NVS_V1_VALUE_MAX : NVS_V2_STR_MAX;
    uint8_t *buf;
    int rc = check_key(g, key, true, err, errlen);
    if (rc) return rc;
    if (len + 1 > max) {
        fail(err, errlen,
             "key `%s`: the string is %zu bytes with its NUL; version %d allows at most %zu", key,
             len + 1, g->version, max);
        return NVS_EINPUT;
    }
    if (!(buf = malloc(len + 1))) {
        fail(err, errlen, "out of memory");
        return NVS_ENOMEM;
    }
    if (len) memcpy(buf, s, len);
    buf[len] = 0;
    rc = write_single_page(g, key, NVS_TYPE_STR, buf, len + 1, err, errlen);
    free(buf);
    return rc;
}

int nvs_gen_blob(nvs_gen_t *g, const char *key, const uint8_t *d, size_t len, char *err,
                 size_t errlen)
{
    int rc = check_key(g, key, true, err, errlen);
    if (rc) return rc;
    if (g->version == 2) return write_multi_page_blob(g, key, d, len, err, errlen);
    if (len > NVS_V1_VALUE_MAX) {
        fail(err, errlen, "key `%s`: the value is %zu bytes; version 1 allows at most %u", key, len,
             NVS_V1_VALUE_MAX);
        return NVS_EINPUT;
    }
    return write_single_page(g, key, NVS_TYPE_BLOB, d, len, err, errlen);
}

const uint8_t *nvs_gen_image(nvs_gen_t *g, size_t *len)
{
    if (len) *len = g->size;
    return g->img;
}

unsigned nvs_gen_pages_used(const nvs_gen_t *g)
{
    return (unsigned)(g->page + 1);
}

int nvs_decrypt(uint8_t *img, size_t len, const uint8_t keys[NVS_XTS_KEYS_LEN], char *err,
                size_t errlen)
{
    EVP_CIPHER_CTX *ctx;
    int rc = 0;
    if (len % NVS_PAGE_SIZE != 0) {
        fail(err, errlen, "%zu bytes: an NVS partition image is a multiple of 4096 bytes", len);
        return NVS_EINPUT;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_xts(), NULL, keys, NULL) != 1) {
        fail(err, errlen, "the keys are refused by AES-XTS (data key and tweak key must differ)");
        EVP_CIPHER_CTX_free(ctx);
        return NVS_ECRYPTO;
    }
    for (size_t p = 0; p < len / NVS_PAGE_SIZE && rc == 0; p++) {
        uint8_t *page = img + p * NVS_PAGE_SIZE;
        if (page[0] == 0xFF && page[1] == 0xFF && page[2] == 0xFF && page[3] == 0xFF) continue;
        for (unsigned i = 0; i < NVS_ENTRIES && rc == 0; i++) {
            size_t off = p * NVS_PAGE_SIZE + PAGE_FIRST_ENTRY + (size_t)i * NVS_ENTRY_SIZE;
            uint8_t tweak[16] = {0}, out[NVS_ENTRY_SIZE];
            int ol = 0;
            if (((page[PAGE_BITMAP_OFF + i / 4] >> ((i % 4) * 2)) & 3) == 3) continue;
            put_le32(tweak, (uint32_t)off);
            if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, tweak) != 1 ||
                EVP_DecryptUpdate(ctx, out, &ol, img + off, NVS_ENTRY_SIZE) != 1 ||
                ol != NVS_ENTRY_SIZE) {
                fail(err, errlen, "AES-XTS decryption failed");
                rc = NVS_ECRYPTO;
            } else {
                memcpy(img + off, out, NVS_ENTRY_SIZE);
            }
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static int digit_val(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    return 99;
}

int nvs_parse_size(const char *s, size_t *out)
{
    unsigned base = 10;
    unsigned long long v = 0;
    int ndig = 0;
    bool last_us = false;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '+') s++;
    if (s[0] == '0' && s[1] && strchr("xXoObB", s[1])) {
        base = strchr("xX", s[1]) ? 16 : strchr("oO", s[1]) ? 8 : 2;
        s += 2;
        last_us = true; /* "0x_1000" is valid, "0x" alone is not */
        if (*s == '_') s++;
        last_us = false;
    } else if (s[0] == '0') {
        /* Python refuses leading zeros in decimal unless every digit is 0 */
        for (const char *p = s; *p && *p != ' ' && *p != '\t'; p++)
            if (*p != '0' && *p != '_') return NVS_EINPUT;
    }
    for (; *s && *s != ' ' && *s != '\t'; s++) {
        int d;
        if (*s == '_') {
            if (last_us || ndig == 0) return NVS_EINPUT;
            last_us = true;
            continue;
        }
        d = digit_val((unsigned char)*s);
        if (d >= (int)base) return NVS_EINPUT;
        if (v > (~0ull - (unsigned)d) / base) return NVS_EINPUT;
        v = v * base + (unsigned)d;
        ndig++;
        last_us = false;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s || ndig == 0 || last_us || v > SIZE_MAX) return NVS_EINPUT;
    *out = (size_t)v;
    return 0;
}

int nvs_keys_from_hmac(const uint8_t *hmac_key, size_t n, uint8_t keys[NVS_XTS_KEYS_LEN])
{
    static const uint8_t ekey_elem[4] = {0x5A, 0x5A, 0xBE, 0xAE};
    static const uint8_t tkey_elem[4] = {0xA5, 0xA5, 0xDE, 0xCE};
    uint8_t seed[32];
    unsigned int len = 0;
    for (int half = 0; half < 2; half++) {
        for (int i = 0; i < 8; i++)
            memcpy(seed + 4 * i, half ? tkey_elem : ekey_elem, 4);
        if (!HMAC(EVP_sha256(), hmac_key, (int)n, seed, sizeof seed, keys + 32 * half, &len) ||
            len != 32)
            return NVS_ECRYPTO;
    }
    return 0;
}

void nvs_keys_partition(const uint8_t keys[NVS_XTS_KEYS_LEN], uint8_t part[NVS_KEYS_PART_SIZE])
{
    memset(part, 0xFF, NVS_KEYS_PART_SIZE);
    memcpy(part, keys, NVS_XTS_KEYS_LEN);
    put_le32(part + NVS_XTS_KEYS_LEN, nvs_crc32(keys, NVS_XTS_KEYS_LEN));
}

int nvs_keys_parse(const uint8_t *buf, size_t len, uint8_t keys[NVS_XTS_KEYS_LEN], bool *crc_ok)
{
    if (len < NVS_XTS_KEYS_LEN) return NVS_EINPUT;
    memcpy(keys, buf, NVS_XTS_KEYS_LEN);
    if (crc_ok) {
        uint32_t c = nvs_crc32(buf, NVS_XTS_KEYS_LEN);
        *crc_ok = len >= NVS_XTS_KEYS_LEN + 4 && buf[64] == (uint8_t)c &&
                  buf[65] == (uint8_t)(c >> 8) && buf[66] == (uint8_t)(c >> 16) &&
                  buf[67] == (uint8_t)(c >> 24);
    }
    return 0;
}
