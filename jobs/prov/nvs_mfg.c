/* SPDX-License-Identifier: MIT */
/* nvs_mfg.c — manufacturing config and values CSVs to per-device generator CSVs
 * (docs/DEVICE-DATA.md "Manufacturing: config and values").
 * Must not: print or touch files. */
#include "nvs_mfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bool rec_blank(const nvs_csv_rec_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (const char *p = r->f[i]; *p; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return false;
    return true;
}

static int conf_item(const nvs_csv_rec_t *r, nvs_mfg_item_t *it, char *err, size_t errlen)
{
    bool ns = r->n >= 2 && strcmp(r->f[1], "namespace") == 0;
    memset(it, 0, sizeof *it);
    it->line = r->line;
    if (strlen(r->f[0]) == 0 || strlen(r->f[0]) > NVS_KEY_MAX) {
        fail(err, errlen, "config line %u: key `%s` must have 1 to %u bytes", r->line, r->f[0],
             NVS_KEY_MAX);
        return NVS_EINPUT;
    }
    if (ns) {
        if (r->n > 3 || (r->n == 3 && r->f[2][0])) {
            fail(err, errlen, "config line %u: a namespace line is `name,namespace,`", r->line);
            return NVS_EINPUT;
        }
    } else {
        if (r->n < 3 || r->n > 4) {
            fail(err, errlen,
                 "config line %u: %zu field(s); the format is key,type,encoding[,REPEAT] or "
                 "name,namespace,",
                 r->line, r->n);
            return NVS_EINPUT;
        }
        if (strcmp(r->f[1], "data") != 0 && strcmp(r->f[1], "file") != 0) {
            fail(err, errlen, "config line %u: type `%s` is not data, file or namespace", r->line,
                 r->f[1]);
            return NVS_EINPUT;
        }
        if (!nvs_encoding(r->f[2], NULL)) {
            fail(err, errlen,
                 "config line %u: unknown encoding `%s` (u8, i8, u16, i16, u32, i32, u64, i64, "
                 "string, hex2bin, base64, binary)",
                 r->line, r->f[2]);
            return NVS_EINPUT;
        }
        if (r->n == 4 && strcmp(r->f[3], "REPEAT") != 0) {
            fail(err, errlen, "config line %u: the fourth field can only be REPEAT, not `%s`",
                 r->line, r->f[3]);
            return NVS_EINPUT;
        }
        it->repeat = r->n == 4;
    }
    it->key = strdup(r->f[0]);
    it->type = strdup(ns ? "namespace" : r->f[1]);
    it->encoding = ns ? NULL : strdup(r->f[2]);
    if (!it->key || !it->type || (!ns && !it->encoding)) {
        fail(err, errlen, "out of memory");
        return NVS_ENOMEM;
    }
    return 0;
}

int nvs_mfg_conf_parse(const char *text, size_t len, nvs_mfg_conf_t *conf, char *err, size_t errlen)
{
    nvs_csv_t csv;
    int rc = nvs_csv_read(text, len, true, &csv, err, errlen);
    memset(conf, 0, sizeof *conf);
    if (rc) return rc;
    if (csv.n == 0) {
        fail(err, errlen, "the config file is empty");
        rc = NVS_EINPUT;
    } else if (!(conf->items = calloc(csv.n, sizeof *conf->items))) {
        fail(err, errlen, "out of memory");
        rc = NVS_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < csv.n; i++) {
        if (rec_blank(&csv.r[i])) {
            fail(err, errlen, "config line %u: empty line (not allowed in a config file)",
                 csv.r[i].line);
            rc = NVS_EINPUT;
            break;
        }
        rc = conf_item(&csv.r[i], &conf->items[conf->n], err, errlen);
        conf->n++; /* also a failed one: its strings are freed with the rest */
    }
    if (rc == 0 && strcmp(conf->items[0].type, "namespace") != 0) {
        fail(err, errlen,
             "config line %u: the first line must open a namespace (`name,namespace,`)",
             conf->items[0].line);
        rc = NVS_EINPUT;
    }
    nvs_csv_free(&csv);
    if (rc) nvs_mfg_conf_free(conf);
    return rc;
}

void nvs_mfg_conf_free(nvs_mfg_conf_t *conf)
{
    for (size_t i = 0; i < conf->n; i++) {
        free(conf->items[i].key);
        free(conf->items[i].type);
        free(conf->items[i].encoding);
    }
    free(conf->items);
    memset(conf, 0, sizeof *conf);
}

int nvs_mfg_render(const nvs_mfg_conf_t *conf, nvs_mfg_lookup_fn lookup, void *ctx, nvs_buf_t *out,
                   char *err, size_t errlen)
{
    static const char *const header[4] = {"key", "type", "encoding", "value"};
    if (nvs_csv_write_row(out, header, 4)) goto nomem;
    for (size_t i = 0; i < conf->n; i++) {
        const nvs_mfg_item_t *it = &conf->items[i];
        const char *row[4] = {it->key, it->type, "", ""};
        if (it->encoding) {
            row[2] = it->encoding;
            row[3] = lookup(ctx, it->key);
            if (!row[3]) {
                fail(err, errlen, "config line %u: no value for key `%s`", it->line, it->key);
                return NVS_EINPUT;
            }
        }
        if (nvs_csv_write_row(out, row, 4)) goto nomem;
    }
    return 0;
nomem:
    fail(err, errlen, "out of memory");
    return NVS_ENOMEM;
}

int nvs_mfg_image(const nvs_mfg_conf_t *conf, nvs_mfg_lookup_fn lookup, void *ctx, size_t size,
                  int version, const uint8_t *xts_keys, const nvs_csv_opts_t *opts, nvs_buf_t *csv,
                  uint8_t **img, size_t *img_len, char *err, size_t errlen)
{
    nvs_buf_t local = {0}, *b = csv ? csv : &local;
    size_t start = b->len;
    int rc = nvs_mfg_render(conf, lookup, ctx, b, err, errlen);
    *img = NULL;
    if (rc == 0)
        rc = nvs_csv_generate(b->p + start, b->len - start, size, version, xts_keys, opts, img,
                              img_len, err, errlen);
    nvs_buf_free(&local);
    return rc;
}

static size_t column(const nvs_csv_rec_t *header, const char *key)
{
    for (size_t i = 0; i < header->n; i++)
        if (strcmp(header->f[i], key) == 0) return i;
    return (size_t)-1;
}

static int values_check(const nvs_mfg_conf_t *conf, const char *fileid, nvs_mfg_values_t *v,
                        char *err, size_t errlen)
{
    const nvs_csv_rec_t *h = &v->csv.r[0];
    for (size_t i = 0; i < v->csv.n; i++) {
        const nvs_csv_rec_t *r = &v->csv.r[i];
        if (r->n == 0 || rec_blank(r)) {
            fail(err, errlen, "values line %u: empty line (not allowed in a values file)", r->line);
            return NVS_EINPUT;
        }
        if (r->n != h->n) {
            fail(err, errlen, "values line %u: %zu value(s) for %zu column(s) in the header",
                 r->line, r->n, h->n);
            return NVS_EINPUT;
        }
    }
    for (size_t i = 0; i < conf->n; i++)
        if (conf->items[i].encoding && column(h, conf->items[i].key) == (size_t)-1) {
            fail(err, errlen, "config line %u: key `%s` is not a column of the values file",
                 conf->items[i].line, conf->items[i].key);
            return NVS_EINPUT;
        }
    v->fileid_col = (size_t)-1;
    if (fileid && (v->fileid_col = column(h, fileid)) == (size_t)-1) {
        fail(err, errlen, "--fileid `%s` is not a column of the values file", fileid);
        return NVS_EINPUT;
    }
    if (v->csv.n < 2) {
        fail(err, errlen, "the values file has a header but no device rows");
        return NVS_EINPUT;
    }
    return 0;
}

int nvs_mfg_values_parse(const char *text, size_t len, const nvs_mfg_conf_t *conf,
                         const char *fileid, nvs_mfg_values_t *vals, char *err, size_t errlen)
{
    int rc = nvs_csv_read(text, len, false, &vals->csv, err, errlen);
    if (rc) return rc;
    if (vals->csv.n == 0) {
        fail(err, errlen, "the values file is empty");
        rc = NVS_EINPUT;
    } else {
        rc = values_check(conf, fileid, vals, err, errlen);
    }
    /* REPEAT: every row takes the first row's value */
    for (size_t i = 0; rc == 0 && i < conf->n; i++) {
        size_t c;
        if (!conf->items[i].repeat) continue;
        c = column(&vals->csv.r[0], conf->items[i].key);
        for (size_t r = 2; r < vals->csv.n; r++) {
            char *dup = strdup(vals->csv.r[1].f[c]);
            if (!dup) {
                fail(err, errlen, "out of memory");
                rc = NVS_ENOMEM;
                break;
            }
            free(vals->csv.r[r].f[c]);
            vals->csv.r[r].f[c] = dup;
        }
    }
    if (rc) nvs_mfg_values_free(vals);
    return rc;
}

void nvs_mfg_values_free(nvs_mfg_values_t *vals)
{
    nvs_csv_free(&vals->csv);
}

size_t nvs_mfg_rows(const nvs_mfg_values_t *vals)
{
    return vals->csv.n ? vals->csv.n - 1 : 0;
}

typedef struct row_ctx {
    const nvs_csv_rec_t *header, *row;
} row_ctx_t;

static const char *row_lookup(void *ctx, const char *key)
{
    row_ctx_t *rc = ctx;
    size_t c = column(rc->header, key);
    return c == (size_t)-1 ? NULL : rc->row->f[c];
}

int nvs_mfg_row(const nvs_mfg_conf_t *conf, const nvs_mfg_values_t *vals, size_t i, nvs_buf_t *out,
                char *id, size_t idlen, char *err, size_t errlen)
{
    row_ctx_t ctx;
    const char *v;
    if (i >= nvs_mfg_rows(vals)) {
        fail(err, errlen, "no device row %zu", i + 1);
        return NVS_EINPUT;
    }
    ctx.header = &vals->csv.r[0];
    ctx.row = &vals->csv.r[i + 1];
    if (vals->fileid_col != (size_t)-1) {
        v = ctx.row->f[vals->fileid_col];
        if (!v[0] || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 ||
            strlen(v) >= idlen) {
            fail(err, errlen,
                 "values line %u: file id `%s` cannot be part of a file name (empty, '/', . or "
                 "..)",
                 ctx.row->line, v);
            return NVS_EINPUT;
        }
        snprintf(id, idlen, "%s", v);
    } else {
        snprintf(id, idlen, "%zu", i + 1);
    }
    return nvs_mfg_render(conf, row_lookup, &ctx, out, err, errlen);
}
