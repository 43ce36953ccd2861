/* SPDX-License-Identifier: MIT */
/* nvs_csv.c — CSV reading and writing for the NVS generator, and the input rows turned into
 * NVS items (docs/DEVICE-DATA.md "Input CSV").
 * Must not: print; only the loader in the options touches files. */
#include "nvs_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ERRLEN 512

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

int nvs_buf_add(nvs_buf_t *b, const void *d, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(p = realloc(b->p, cap))) return NVS_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void nvs_buf_free(nvs_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- reading ---- */

/* Line ends to '\n', comment lines dropped; lines[k] = the original number of output line k. */
typedef struct norm {
    nvs_buf_t text;
    unsigned *lines;
    size_t n_lines;
} norm_t;

static int normalize(const char *s, size_t len, bool skip_comments, norm_t *nm)
{
    size_t i = 0, cap = 0;
    unsigned orig = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < len) {
        size_t start = i, end;
        int term = 0;
        while (i < len && s[i] != '\r' && s[i] != '\n')
            i++;
        end = i;
        if (i < len) {
            term = 1;
            i += (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
        }
        orig++;
        if (skip_comments && end > start && s[start] == '#') continue;
        if (nm->n_lines == cap) {
            unsigned *p;
            cap = cap ? cap * 2 : 64;
            if (!(p = realloc(nm->lines, cap * sizeof *p))) return NVS_ENOMEM;
            nm->lines = p;
        }
        nm->lines[nm->n_lines++] = orig;
        if (nvs_buf_add(&nm->text, s + start, end - start) ||
            (term && nvs_buf_add(&nm->text, "\n", 1)))
            return NVS_ENOMEM;
    }
    if (nvs_buf_add(&nm->text, "", 0)) return NVS_ENOMEM; /* text.p non-NULL */
    return 0;
}

typedef struct parser {
    nvs_csv_t *out;
    nvs_csv_rec_t rec;
    size_t rec_cap;
    nvs_buf_t field;
} parser_t;

static int save_field(parser_t *ps)
{
    char *f;
    if (ps->rec.n == ps->rec_cap) {
        size_t cap = ps->rec_cap ? ps->rec_cap * 2 : 4;
        char **p = realloc(ps->rec.f, cap * sizeof *p);
        if (!p) return NVS_ENOMEM;
        ps->rec.f = p;
        ps->rec_cap = cap;
    }
    f = malloc(ps->field.len + 1);
    if (!f) return NVS_ENOMEM;
    if (ps->field.len) memcpy(f, ps->field.p, ps->field.len);
    f[ps->field.len] = '\0';
    ps->rec.f[ps->rec.n++] = f;
    ps->field.len = 0;
    return 0;
}

static int emit_record(parser_t *ps)
{
    nvs_csv_t *c = ps->out;
    if ((c->n & (c->n - 1)) == 0) { /* grow at powers of two */
        nvs_csv_rec_t *p = realloc(c->r, (c->n ? c->n * 2 : 1) * sizeof *p);
        if (!p) return NVS_ENOMEM;
        c->r = p;
    }
    c->r[c->n++] = ps->rec;
    memset(&ps->rec, 0, sizeof ps->rec);
    ps->rec_cap = 0;
    return 0;
}

enum { ST_RECORD, ST_FIELD_START, ST_FIELD, ST_QUOTED, ST_QUOTE_IN_QUOTED };

/* The CSV state machine (the "excel" dialect of Python's csv module, not strict). */
static int parse_norm(const norm_t *nm, parser_t *ps)
{
    const char *s = nm->text.p;
    size_t n = nm->text.len, cur = 0;
    int st = ST_RECORD, rc = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        int c = i < n ? (unsigned char)s[i] : -1; /* -1: end of input */
        if (c == -1 && st == ST_RECORD) break;
        if (st == ST_RECORD) {
            ps->rec.line = nm->lines[cur < nm->n_lines ? cur : nm->n_lines - 1];
            if (c == '\n') {
                rc = emit_record(ps);
                cur++;
                continue;
            }
            st = ST_FIELD_START;
        }
        if (c == -1 || (c == '\n' && st != ST_QUOTED)) {
            rc = save_field(ps);
            if (!rc) rc = emit_record(ps);
            cur++;
            st = ST_RECORD;
            continue;
        }
        switch (st) {
        case ST_FIELD_START:
            if (c == '"')
                st = ST_QUOTED;
            else if (c == ',')
                rc = save_field(ps);
            else {
                rc = nvs_buf_add(&ps->field, s + i, 1);
                st = ST_FIELD;
            }
            break;
        case ST_FIELD:
            if (c == ',') {
                rc = save_field(ps);
                st = ST_FIELD_START;
            } else {
                rc = nvs_buf_add(&ps->field, s + i, 1);
            }
            break;
        case ST_QUOTED:
            if (c == '"')
                st = ST_QUOTE_IN_QUOTED;
            else
                rc = nvs_buf_add(&ps->field, s + i, 1);
            if (c == '\n') cur++;
            break;
        case ST_QUOTE_IN_QUOTED:
            if (c == '"') {
                rc = nvs_buf_add(&ps->field, s + i, 1);
                st = ST_QUOTED;
            } else if (c == ',') {
                rc = save_field(ps);
                st = ST_FIELD_START;
            } else {
                rc = nvs_buf_add(&ps->field, s + i, 1);
                st = ST_FIELD;
            }
            break;
        default: break;
        }
    }
    return rc;
}

static void rec_free(nvs_csv_rec_t *r)
{
    for (size_t k = 0; k < r->n; k++)
        free(r->f[k]);
    free(r->f);
}

int nvs_csv_read(const char *text, size_t len, bool skip_comments, nvs_csv_t *out, char *err,
                 size_t errlen)
{
    norm_t nm = {0};
    parser_t ps = {0};
    const char *nul = memchr(text, '\0', len);
    int rc;
    memset(out, 0, sizeof *out);
    if (nul) {
        unsigned line = 1;
        for (const char *p = text; p < nul; p++)
            if (*p == '\n' || (*p == '\r' && p[1] != '\n')) line++;
        fail(err, errlen, "line %u: a NUL byte: the CSV must be text", line);
        return NVS_EINPUT;
    }
    rc = normalize(text, len, skip_comments, &nm);
    if (!rc) {
        ps.out = out;
        rc = parse_norm(&nm, &ps);
    }
    rec_free(&ps.rec);
    nvs_buf_free(&ps.field);
    nvs_buf_free(&nm.text);
    free(nm.lines);
    if (rc) {
        nvs_csv_free(out);
        fail(err, errlen, "out of memory");
    }
    return rc;
}

void nvs_csv_free(nvs_csv_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        rec_free(&c->r[i]);
    free(c->r);
    memset(c, 0, sizeof *c);
}

int nvs_csv_write_row(nvs_buf_t *b, const char *const *fields, size_t n)
{
    /* a lone empty field is written quoted, so that the row does not read back as blank */
    if (n == 1 && (!fields[0] || !fields[0][0])) return nvs_buf_add(b, "\"\"\r\n", 4);
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i] ? fields[i] : "";
        if (i && nvs_buf_add(b, ",", 1)) return NVS_ENOMEM;
        /* quoted also when it starts with a UTF-8 byte-order mark (read as one at the start) */
        if (strpbrk(f, ",\"\r\n") || strncmp(f, "\xEF\xBB\xBF", 3) == 0) {
            if (nvs_buf_add(b, "\"", 1)) return NVS_ENOMEM;
            for (const char *p = f; *p; p++)
                if (nvs_buf_add(b, p, 1) || (*p == '"' && nvs_buf_add(b, "\"", 1)))
                    return NVS_ENOMEM;
            if (nvs_buf_add(b, "\"", 1)) return NVS_ENOMEM;
        } else if (nvs_buf_add(b, f, strlen(f))) {
            return NVS_ENOMEM;
        }
    }
    return nvs_buf_add(b, "\r\n", 2);
}

/* ---- value conversions ---- */

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && is_space((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

int nvs_parse_int(const char *s, size_t n, enum nvs_type type, uint64_t *out)
{
    bool neg = false, last_us = true, is_signed = ((unsigned)type & 0xF0) == 0x10;
    unsigned bits = ((unsigned)type & 0x0F) * 8;
    uint64_t mag = 0, lim;
    size_t nd = 0;
    trim(&s, &n);
    if (n && (*s == '+' || *s == '-')) neg = *s == '-', s++, n--;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' && !last_us) {
            last_us = true;
            continue;
        }
        if (s[i] < '0' || s[i] > '9') return NVS_EINPUT;
        if (mag > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) return NVS_ESIZE;
        mag = mag * 10 + (uint64_t)(s[i] - '0');
        last_us = false;
        nd++;
    }
    if (nd == 0 || last_us) return NVS_EINPUT;
    if (bits == 0 || bits > 64) return NVS_EINPUT;
    if (!is_signed) {
        lim = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
        if ((neg && mag) || mag > lim) return NVS_ESIZE;
        *out = mag;
        return 0;
    }
    lim = 1ull << (bits - 1); /* |min|; max = lim - 1 */
    if (neg ? mag > lim : mag >= lim) return NVS_ESIZE;
    *out = neg ? ~mag + 1 : mag;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int nvs_decode_hex(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    uint8_t *d;
    trim(&s, &n);
    if (n % 2) return NVS_EINPUT;
    if (!(d = malloc(n / 2 + 1))) return NVS_ENOMEM;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            free(d);
            return NVS_EINPUT;
        }
        d[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *out = d;
    *outlen = n / 2;
    return 0;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int nvs_decode_base64(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    uint8_t *d = malloc(n / 4 * 3 + 3);
    size_t o = 0;
    unsigned quad = 0, pads = 0, left = 0;
    if (!d) return NVS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int v;
        if (s[i] == '=') {
            if (quad >= 2 && quad + ++pads >= 4) goto done; /* complete: the rest is ignored */
            continue;
        }
        if ((v = b64val((unsigned char)s[i])) < 0) continue; /* not in the alphabet: skipped */
        pads = 0;
        switch (quad) {
        case 0: left = (unsigned)v; break;
        case 1: d[o++] = (uint8_t)(left << 2 | (unsigned)v >> 4), left = (unsigned)v & 0x0F; break;
        case 2: d[o++] = (uint8_t)(left << 4 | (unsigned)v >> 2), left = (unsigned)v & 0x03; break;
        default: d[o++] = (uint8_t)(left << 6 | (unsigned)v); break;
        }
        quad = (quad + 1) & 3;
    }
    if (quad != 0) {
        free(d);
        return NVS_EINPUT;
    }
done:
    *out = d;
    *outlen = o;
    return 0;
}

int nvs_encoding(const char *name, char *kind)
{
    static const struct {
        const char *name;
        int type;
        char kind;
    } enc[] = {
        {"u8", NVS_TYPE_U8, 'i'},       {"i8", NVS_TYPE_I8, 'i'},
        {"u16", NVS_TYPE_U16, 'i'},     {"i16", NVS_TYPE_I16, 'i'},
        {"u32", NVS_TYPE_U32, 'i'},     {"i32", NVS_TYPE_I32, 'i'},
        {"u64", NVS_TYPE_U64, 'i'},     {"i64", NVS_TYPE_I64, 'i'},
        {"string", NVS_TYPE_STR, 's'},  {"hex2bin", NVS_TYPE_BLOB, 'h'},
        {"base64", NVS_TYPE_BLOB, 'b'}, {"binary", NVS_TYPE_BLOB, 'r'},
    };
    for (size_t i = 0; name && i < sizeof enc / sizeof enc[0]; i++)
        if (strcasecmp(name, enc[i].name) == 0) {
            if (kind) *kind = enc[i].kind;
            return enc[i].type;
        }
    return 0;
}

/* ---- rows to items ---- */

static int load_fs(void *ctx, const char *path, uint8_t **data, size_t *len, char *err,
                   size_t errlen)
{
    size_t max = *(const size_t *)ctx;
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *d;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(err, errlen, "cannot read file `%s`: %s", path,
             f ? "not a regular file" : strerror(errno));
        if (f) fclose(f);
        return NVS_EIO;
    }
    if ((uint64_t)st.st_size > max) {
        fail(err, errlen, "file `%s` is %lld bytes: more than %zu", path, (long long)st.st_size,
             max);
        fclose(f);
        return NVS_EIO;
    }
    d = malloc((size_t)st.st_size + 1);
    if (!d || fread(d, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fail(err, errlen, "cannot read file `%s`", path);
        free(d);
        fclose(f);
        return NVS_EIO;
    }
    fclose(f);
    *data = d;
    *len = (size_t)st.st_size;
    return 0;
}

typedef struct cols {
    size_t key, type, enc, value;
} cols_t;

static const char *field(const nvs_csv_rec_t *r, size_t i)
{
    return i < r->n ? r->f[i] : NULL;
}

static int find_columns(const nvs_csv_rec_t *h, cols_t *c, char *err, size_t errlen)
{
    static const char *names[4] = {"key", "type", "encoding", "value"};
    size_t *dst[4] = {&c->key, &c->type, &c->enc, &c->value};
    for (int k = 0; k < 4; k++) {
        *dst[k] = (size_t)-1;
        for (size_t i = 0; i < h->n; i++)
            if (strcmp(h->f[i], names[k]) == 0) *dst[k] = i; /* the last one wins, as in Python */
        if (*dst[k] == (size_t)-1) {
            fail(err, errlen,
                 "line %u: the first row must be the header key,type,encoding,value (column "
                 "`%s` is missing)",
                 h->line, names[k]);
            return NVS_EINPUT;
        }
    }
    return 0;
}

/* The value bytes of a data or file row: the cell itself, or the named file's content. */
static int row_bytes(const nvs_csv_rec_t *r, const char *type, const char *value,
                     const nvs_csv_opts_t *o, uint8_t **buf, const char **d, size_t *n, char *e,
                     size_t el)
{
    char path[4096];
    size_t max = o && o->max_file ? o->max_file : 16u << 20;
    int rc;
    *buf = NULL;
    if (strcmp(type, "file") != 0) {
        *d = value;
        *n = strlen(value);
        return 0;
    }
    if (value[0] == '\0') {
        fail(e, el, "line %u: a file row needs a path in the value column", r->line);
        return NVS_EINPUT;
    }
    if (value[0] != '/' && o && o->base_dir)
        snprintf(path, sizeof path, "%s/%s", o->base_dir, value);
    else
        snprintf(path, sizeof path, "%s", value);
    if (o && o->load)
        rc = o->load(o->load_ctx, path, buf, n, e, el);
    else
        rc = load_fs(&max, path, buf, n, e, el);
    if (rc == 0) *d = (const char *)*buf;
    return rc;
}

/* Convert and add one data or file row. */
static int add_item(nvs_gen_t *g, const nvs_csv_rec_t *r, const char *key, const char *type,
                    const char *encname, const char *value, const nvs_csv_opts_t *o, char *e,
                    size_t el)
{
    char kind = 0, sub[ERRLEN];
    int t = nvs_encoding(encname, &kind), rc;
    uint8_t *buf = NULL, *bin = NULL;
    const char *d;
    size_t n, binlen = 0;
    uint64_t v;
    if (!t) {
        fail(e, el,
             "line %u: key `%s`: unknown encoding `%s` (u8, i8, u16, i16, u32, i32, u64, i64, "
             "string, hex2bin, base64, binary)",
             r->line, key, encname ? encname : "");
        return NVS_EINPUT;
    }
    sub[0] = '\0';
    if ((rc = row_bytes(r, type, value, o, &buf, &d, &n, sub, sizeof sub)) != 0) {
        fail(e, el, "line %u: key `%s`: %s", r->line, key, sub);
        return rc;
    }
    switch (kind) {
    case 'i':
        rc = nvs_parse_int(d, n, (enum nvs_type)t, &v);
        if (rc == NVS_EINPUT)
            fail(e, el, "line %u: key `%s`: `%.*s` is not a whole number", r->line, key,
                 (int)(n > 40 ? 40 : n), d);
        else if (rc)
            fail(e, el, "line %u: key `%s`: `%.*s` is out of range for %s", r->line, key,
                 (int)(n > 40 ? 40 : n), d, encname);
        if (rc)
            rc = NVS_EINPUT;
        else
            rc = nvs_gen_int(g, key, (enum nvs_type)t, v, sub, sizeof sub);
        break;
    case 's': rc = nvs_gen_str(g, key, (const uint8_t *)d, n, sub, sizeof sub); break;
    case 'r': rc = nvs_gen_blob(g, key, (const uint8_t *)d, n, sub, sizeof sub); break;
    default:
        rc = kind == 'h' ? nvs_decode_hex(d, n, &bin, &binlen)
                         : nvs_decode_base64(d, n, &bin, &binlen);
        if (rc == NVS_EINPUT)
            fail(e, el, "line %u: key `%s`: %s", r->line, key,
                 kind == 'h' ? "hex2bin needs an even number of hex digits (0-9, a-f)"
                             : "incomplete base64 (check the padding)");
        else if (rc == 0)
            rc = nvs_gen_blob(g, key, bin, binlen, sub, sizeof sub);
        break;
    }
    if (rc && sub[0]) fail(e, el, "line %u: %s", r->line, sub);
    free(bin);
    free(buf);
    return rc;
}

static int feed_row(nvs_gen_t *g, const nvs_csv_rec_t *r, const cols_t *c, const nvs_csv_opts_t *o,
                    char *e, size_t el)
{
    const char *key = field(r, c->key), *type = field(r, c->type);
    const char *enc = field(r, c->enc), *value = field(r, c->value);
    char sub[ERRLEN] = "";
    int rc;
    if (!key || !type) {
        fail(e, el, "line %u: a row needs at least key and type", r->line);
        return NVS_EINPUT;
    }
    if (strlen(key) > NVS_KEY_MAX) {
        fail(e, el, "line %u: key `%s` is %zu bytes long: keys have at most %u", r->line, key,
             strlen(key), NVS_KEY_MAX);
        return NVS_EINPUT;
    }
    if (strcmp(type, "namespace") == 0) {
        rc = nvs_gen_namespace(g, key, sub, sizeof sub);
        if (rc) fail(e, el, "line %u: %s", r->line, sub);
        return rc;
    }
    if (strcmp(type, "data") != 0 && strcmp(type, "file") != 0) {
        fail(e, el, "line %u: key `%s`: type `%s` is not data, file or namespace", r->line, key,
             type);
        return NVS_EINPUT;
    }
    if (!value) {
        fail(e, el, "line %u: key `%s`: no value column", r->line, key);
        return NVS_EINPUT;
    }
    return add_item(g, r, key, type, enc, value, o, e, el);
}

int nvs_csv_feed(nvs_gen_t *g, const char *text, size_t len, const nvs_csv_opts_t *opts, char *err,
                 size_t errlen)
{
    nvs_csv_t csv;
    cols_t cols;
    size_t i = 0;
    int rc = nvs_csv_read(text, len, true, &csv, err, errlen);
    if (rc) return rc;
    while (i < csv.n && csv.r[i].n == 0)
        i++; /* blank lines are skipped everywhere */
    if (i == csv.n) {
        fail(err, errlen, "the CSV is empty: it needs the header key,type,encoding,value");
        rc = NVS_EINPUT;
    } else {
        rc = find_columns(&csv.r[i], &cols, err, errlen);
    }
    for (i++; rc == 0 && i < csv.n; i++)
        if (csv.r[i].n) rc = feed_row(g, &csv.r[i], &cols, opts, err, errlen);
    nvs_csv_free(&csv);
    return rc;
}

int nvs_csv_generate(const char *text, size_t len, size_t size, int version,
                     const uint8_t *xts_keys, const nvs_csv_opts_t *opts, uint8_t **img,
                     size_t *img_len, char *err, size_t errlen)
{
    nvs_gen_t *g = nvs_gen_new(size, version, xts_keys, err, errlen);
    const uint8_t *p;
    int rc;
    *img = NULL;
    if (!g) return NVS_EINPUT;
    rc = nvs_csv_feed(g, text, len, opts, err, errlen);
    if (rc == 0) {
        p = nvs_gen_image(g, img_len);
        if (!(*img = malloc(*img_len))) {
            fail(err, errlen, "out of memory");
            rc = NVS_ENOMEM;
        } else {
            memcpy(*img, p, *img_len);
        }
    }
    nvs_gen_free(g);
    return rc;
}
