/* SPDX-License-Identifier: MIT */
/* devdata.c — value templates, counters, MAC formats, random bytes (docs/DEVICE-DATA.md
 * "Value sources"). One walker serves the syntax check, the needs and the rendering.
 * Must not: do I/O or keep state. */
#include "devdata.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

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

typedef struct emit {
    char *out; /* NULL: check only */
    size_t cap, len;
    bool overflow;
} emit_t;

static void put(emit_t *e, const char *s, size_t n)
{
    if (!e->out) return;
    if (e->len + n + 1 > e->cap) {
        e->overflow = true;
        return;
    }
    memcpy(e->out + e->len, s, n);
    e->len += n;
    e->out[e->len] = '\0';
}

static void put_str(emit_t *e, const char *s, bool upper)
{
    for (; *s; s++) {
        char c = upper ? (char)toupper((unsigned char)*s) : *s;
        put(e, &c, 1);
    }
}

/* A placeholder being handled: its name and spec (both NUL-terminated copies), position. */
typedef struct ph {
    char name[16], spec[16];
    size_t pos;
} ph_t;

static const char *const mac_styles[] = {"colon", "COLON", "dash",  "DASH",
                                         "hex",   "HEX",   "last3", "LAST3"};

int devdata_format_mac(const uint8_t mac[6], const char *style, char *out, size_t cap)
{
    int k = -1;
    const char *sep = ":";
    bool upper;
    size_t o = 0;
    if (!style || !*style) style = "colon";
    for (int i = 0; i < 8; i++)
        if (strcmp(style, mac_styles[i]) == 0) k = i;
    if (k < 0) return DEVDATA_EFORMAT;
    upper = k % 2 == 1;
    if (k >= 4)
        sep = "";
    else if (k >= 2)
        sep = "-";
    if (cap < 18) return DEVDATA_ERANGE;
    for (int i = k >= 6 ? 3 : 0; i < 6; i++)
        o += (size_t)snprintf(out + o, cap - o, upper ? "%s%02X" : "%s%02x", o ? sep : "", mac[i]);
    return (int)o;
}

/* {n:spec}: [0][width][d|x|X]. */
typedef struct cspec {
    bool zero;
    unsigned width;
    char conv; /* 'd', 'x', 'X' */
} cspec_t;

static bool counter_spec(const char *spec, cspec_t *c)
{
    const char *p = spec;
    memset(c, 0, sizeof *c);
    c->conv = 'd';
    if (*p == '0') c->zero = true, p++;
    while (isdigit((unsigned char)*p)) {
        c->width = c->width * 10 + (unsigned)(*p++ - '0');
        if (c->width > 20) return false;
    }
    if (*p == 'd' || *p == 'x' || *p == 'X') c->conv = *p++;
    return *p == '\0' && !(c->zero && c->width == 0);
}

static void counter_render(const cspec_t *c, uint64_t v, char *buf)
{
    const char *dig = c->conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    unsigned base = c->conv == 'd' ? 10 : 16, n = 0;
    char tmp[24];
    size_t o = 0;
    do {
        tmp[n++] = dig[v % base];
        v /= base;
    } while (v);
    for (unsigned k = n; k < c->width; k++)
        buf[o++] = c->zero ? '0' : ' ';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
}

static int date_field(const ph_t *ph, const struct tm *t, char *buf, size_t cap)
{
    if (strcmp(ph->name, "year") == 0) return snprintf(buf, cap, "%04d", t->tm_year + 1900);
    if (strcmp(ph->name, "yy") == 0) return snprintf(buf, cap, "%02d", (t->tm_year + 1900) % 100);
    if (strcmp(ph->name, "month") == 0) return snprintf(buf, cap, "%02d", t->tm_mon + 1);
    if (strcmp(ph->name, "day") == 0) return snprintf(buf, cap, "%02d", t->tm_mday);
    if (strcmp(ph->name, "hour") == 0) return snprintf(buf, cap, "%02d", t->tm_hour);
    if (strcmp(ph->name, "minute") == 0) return snprintf(buf, cap, "%02d", t->tm_min);
    if (strcmp(ph->name, "doy") == 0) return snprintf(buf, cap, "%03d", t->tm_yday + 1);
    if (strcmp(ph->name, "week") == 0) return (int)strftime(buf, cap, "%V", t);
    return -1;
}

static bool is_date(const char *name)
{
    static const char *const d[] = {"year", "yy", "month", "day", "hour", "minute", "doy", "week"};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (strcmp(name, d[i]) == 0) return true;
    return false;
}

static int missing(const ph_t *ph, const char *what, char *err, size_t errlen)
{
    fail(err, errlen, "{%s} needs %s, which is not known yet", ph->name, what);
    return DEVDATA_EMISSING;
}

static int bad_spec(const ph_t *ph, const char *allowed, char *err, size_t errlen)
{
    fail(err, errlen, "position %zu: {%s:%s}: the spec can be %s", ph->pos + 1, ph->name, ph->spec,
         allowed);
    return DEVDATA_EFORMAT;
}

/* Check (ctx NULL) or render one placeholder; *needs collects what it uses. */
static int placeholder(const ph_t *ph, const devdata_ctx_t *ctx, emit_t *e, unsigned *needs,
                       char *err, size_t errlen)
{
    char buf[64];
    const char *s = ph->spec;
    if (strcmp(ph->name, "n") == 0) {
        cspec_t cs;
        *needs |= DEVDATA_NEEDS_N;
        if (!counter_spec(s, &cs))
            return bad_spec(ph, "[0][width][d|x|X], e.g. 06 or 08X", err, errlen);
        if (!ctx) return 0;
        if (!ctx->has_n) return missing(ph, "a counter value", err, errlen);
        counter_render(&cs, ctx->n, buf);
    } else if (is_date(ph->name)) {
        *needs |= DEVDATA_NEEDS_TIME;
        if (*s) return bad_spec(ph, "empty", err, errlen);
        if (!ctx) return 0;
        if (!ctx->has_time) return missing(ph, "the date", err, errlen);
        if (date_field(ph, &ctx->when, buf, sizeof buf) <= 0) buf[0] = '\0';
    } else if (strcmp(ph->name, "mac") == 0) {
        uint8_t zero[6] = {0};
        *needs |= DEVDATA_NEEDS_MAC;
        if (devdata_format_mac(zero, s, buf, sizeof buf) < 0)
            return bad_spec(ph, "colon, COLON, dash, DASH, hex, HEX, last3 or LAST3", err, errlen);
        if (!ctx) return 0;
        if (!ctx->has_mac)
            return missing(ph, "the device's MAC (read after connecting)", err, errlen);
        devdata_format_mac(ctx->mac, s, buf, sizeof buf);
    } else if (strcmp(ph->name, "flash_id") == 0) {
        *needs |= DEVDATA_NEEDS_FLASH_ID;
        if (*s && strcmp(s, "hex") != 0 && strcmp(s, "HEX") != 0)
            return bad_spec(ph, "hex or HEX", err, errlen);
        if (!ctx) return 0;
        if (!ctx->has_flash_id)
            return missing(ph, "the flash ID (read after connecting)", err, errlen);
        snprintf(buf, sizeof buf, strcmp(s, "HEX") == 0 ? "%06X" : "%06x",
                 (unsigned)(ctx->flash_id & 0xFFFFFF));
    } else if (strcmp(ph->name, "chip") == 0 || strcmp(ph->name, "rev") == 0 ||
               strcmp(ph->name, "serial") == 0) {
        const char *v = NULL;
        bool chip = ph->name[0] == 'c', rev = ph->name[0] == 'r';
        *needs |= chip ? DEVDATA_NEEDS_CHIP : rev ? DEVDATA_NEEDS_REV : DEVDATA_NEEDS_SERIAL;
        if (*s && strcmp(s, "upper") != 0) return bad_spec(ph, "upper", err, errlen);
        if (!ctx) return 0;
        v = chip ? ctx->chip : rev ? ctx->rev : ctx->serial;
        if (!v)
            return missing(ph,
                           chip  ? "the chip"
                           : rev ? "the chip revision"
                                 : "the serial",
                           err, errlen);
        put_str(e, v, *s != '\0');
        return 0;
    } else {
        fail(err, errlen,
             "position %zu: unknown placeholder {%s} (n, year, yy, month, day, hour, minute, "
             "doy, week, mac, flash_id, chip, rev, serial; {{ and }} for braces)",
             ph->pos + 1, ph->name);
        return DEVDATA_EFORMAT;
    }
    put(e, buf, strlen(buf));
    return 0;
}

/* Parse "{name[:spec]}" at fmt[i] ('{'); on success *end is the index after '}'. */
static int parse_ph(const char *fmt, size_t i, ph_t *ph, size_t *end, char *err, size_t errlen)
{
    const char *close = strchr(fmt + i + 1, '}'), *colon, *open;
    size_t nlen, slen;
    if (!close) {
        fail(err, errlen, "position %zu: '{' without '}' (write {{ for a brace)", i + 1);
        return DEVDATA_EFORMAT;
    }
    open = memchr(fmt + i + 1, '{', (size_t)(close - fmt - i - 1));
    if (open) {
        fail(err, errlen, "position %zu: '{' inside a placeholder", (size_t)(open - fmt) + 1);
        return DEVDATA_EFORMAT;
    }
    colon = memchr(fmt + i + 1, ':', (size_t)(close - fmt - i - 1));
    nlen = (size_t)((colon ? colon : close) - (fmt + i + 1));
    slen = colon ? (size_t)(close - colon - 1) : 0;
    if (nlen == 0 || nlen >= sizeof ph->name || slen >= sizeof ph->spec) {
        fail(err, errlen, "position %zu: %s placeholder", i + 1, nlen ? "overlong" : "empty");
        return DEVDATA_EFORMAT;
    }
    memcpy(ph->name, fmt + i + 1, nlen);
    ph->name[nlen] = '\0';
    memcpy(ph->spec, colon ? colon + 1 : "", slen);
    ph->spec[slen] = '\0';
    ph->pos = i;
    *end = (size_t)(close - fmt) + 1;
    return 0;
}

static int walk(const char *fmt, const devdata_ctx_t *ctx, emit_t *e, unsigned *needs, char *err,
                size_t errlen)
{
    size_t i = 0;
    *needs = 0;
    if (!fmt) {
        fail(err, errlen, "no template");
        return DEVDATA_EFORMAT;
    }
    while (fmt[i]) {
        if ((fmt[i] == '{' || fmt[i] == '}') && fmt[i + 1] == fmt[i]) {
            put(e, fmt + i, 1);
            i += 2;
        } else if (fmt[i] == '}') {
            fail(err, errlen, "position %zu: '}' without '{' (write }} for a brace)", i + 1);
            return DEVDATA_EFORMAT;
        } else if (fmt[i] == '{') {
            ph_t ph;
            size_t end;
            int rc = parse_ph(fmt, i, &ph, &end, err, errlen);
            if (rc == 0) rc = placeholder(&ph, ctx, e, needs, err, errlen);
            if (rc) return rc;
            i = end;
        } else {
            put(e, fmt + i, 1);
            i++;
        }
    }
    return 0;
}

int devdata_format_check(const char *fmt, char *err, size_t errlen)
{
    emit_t e = {0};
    unsigned needs;
    return walk(fmt, NULL, &e, &needs, err, errlen);
}

unsigned devdata_format_needs(const char *fmt)
{
    emit_t e = {0};
    unsigned needs = 0;
    if (walk(fmt, NULL, &e, &needs, NULL, 0) != 0) return 0;
    return needs ? needs : DEVDATA_NEEDS_NOTHING;
}

int devdata_format(const char *fmt, const devdata_ctx_t *ctx, char *out, size_t cap, char *err,
                   size_t errlen)
{
    static const devdata_ctx_t empty;
    emit_t e = {.out = out, .cap = cap};
    unsigned needs;
    int rc;
    if (!out || cap == 0) return DEVDATA_ERANGE;
    out[0] = '\0';
    rc = walk(fmt, ctx ? ctx : &empty, &e, &needs, err, errlen);
    if (rc) {
        out[0] = '\0';
        return rc;
    }
    if (e.overflow || e.len > DEVDATA_MAX_VALUE) {
        out[0] = '\0';
        fail(err, errlen, "the value is longer than %zu bytes",
             cap - 1 < DEVDATA_MAX_VALUE ? cap - 1 : (size_t)DEVDATA_MAX_VALUE);
        return DEVDATA_ERANGE;
    }
    return (int)e.len;
}

int devdata_counter(uint64_t start, uint64_t step, uint64_t index, uint64_t *n)
{
    if (step && index > (UINT64_MAX - start) / step) return DEVDATA_ERANGE;
    *n = start + step * index;
    return 0;
}

int devdata_random(uint8_t *buf, size_t n)
{
    if (n > (size_t)1 << 30) return DEVDATA_ERANGE;
    return n == 0 || RAND_bytes(buf, (int)n) == 1 ? 0 : DEVDATA_ERANDOM;
}

void devdata_hex(const uint8_t *d, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void devdata_sha256_hex(const uint8_t *d, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int len = 0;
    EVP_Digest(d, n, md, &len, EVP_sha256(), NULL);
    devdata_hex(md, sizeof md, out);
}
