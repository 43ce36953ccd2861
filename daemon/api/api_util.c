/* SPDX-License-Identifier: MIT */
/* api_util.c — the bottom of the API: status texts, problem+json and JSON responses, the log
 * line, request-target parsing (percent-decoding, query parameters) and the value parsers.
 * Must not: call any other api_*.c file (everything else in daemon/api builds on this one). */
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- responses ---- */

const char *api_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Error";
}

static cJSON *api_problem_obj(int status, const char *code, const char *detail)
{
    cJSON *p = cJSON_CreateObject();
    char type[128];
    if (!p) return NULL;
    snprintf(type, sizeof type, "https://espstation.dev/problems/%s", code);
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "title", api_status_text(status));
    cJSON_AddNumberToObject(p, "status", status);
    cJSON_AddStringToObject(p, "detail", detail);
    cJSON_AddStringToObject(p, "code", code);
    return p;
}

char *api_problem_text(int status, const char *code, const char *detail, size_t *len)
{
    cJSON *p = api_problem_obj(status, code, detail);
    char *s = p ? cJSON_PrintUnformatted(p) : NULL;
    cJSON_Delete(p);
    *len = s ? strlen(s) : 0;
    return s;
}

static void api_set_body(api_resp_t *r, int status, const char *ctype, char *body)
{
    free(r->body);
    r->status = status;
    r->content_type = ctype;
    r->body = body;
    r->body_len = body ? strlen(body) : 0;
    if (!body) { /* out of memory: a bare 500 */
        r->status = 500;
        r->content_type = "application/problem+json";
    }
}

void api__problem(api_resp_t *r, int status, const char *code, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    size_t n;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    api_set_body(r, status, "application/problem+json", api_problem_text(status, code, detail, &n));
    r->www_authenticate = status == 401;
}

void api__json(api_resp_t *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    api_set_body(r, status, "application/json; charset=utf-8", s);
}

void api__log(api_t *a, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (!a->o.log_cb) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->o.log_cb(a->o.log_data, line);
}

/* ---- parsing ---- */

static int api_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string ('+' as space when `plus`). NULL when malformed or
 * when it would contain a NUL. */
static char *api_decode(const char *s, size_t n, bool plus)
{
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = api_hex(s[i + 1])) < 0 || (l = api_hex(s[i + 2])) < 0 ||
                (h == 0 && l == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else if (s[i] == '+' && plus) {
            *o++ = ' ';
        } else if (s[i] == 0) {
            free(out);
            return NULL;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

/* Split the target: path segments percent-decoded one by one (so "%2F" stays inside its
 * segment), then the query parameters. */
bool api__parse_target(api_ctx_t *c)
{
    const char *t = c->req->target, *q, *s, *end;
    size_t n = c->req->target_len, plen, used = 0;
    if (!t || n == 0 || t[0] != '/') return false;
    q = memchr(t, '?', n);
    plen = q ? (size_t)(q - t) : n;
    c->path = malloc(plen + 1);
    c->full = malloc(plen + 1);
    if (!c->path || !c->full) return false;
    c->full[0] = 0;
    s = t + 1;
    end = t + plen;
    for (;;) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *e = slash ? slash : end;
        char *seg = api_decode(s, (size_t)(e - s), false);
        size_t sl;
        if (!seg) return false;
        sl = strlen(seg);
        if (strchr(seg, '/')) c->slash_in_segment = true;
        if (c->n_seg < API_MAX_SEGMENTS) {
            memcpy(c->path + used, seg, sl + 1);
            c->seg[c->n_seg++] = c->path + used;
            used += sl + 1;
        } else {
            c->too_deep = true;
        }
        /* the whole decoded path, for static files */
        strcat(c->full, "/");
        strcat(c->full, seg);
        free(seg);
        if (!slash) break;
        s = slash + 1;
    }
    if (q) {
        const char *qs = q + 1, *qend = t + n;
        while (qs < qend && c->n_params < API_MAX_PARAMS) {
            const char *amp = memchr(qs, '&', (size_t)(qend - qs));
            const char *e = amp ? amp : qend, *eq = memchr(qs, '=', (size_t)(e - qs));
            if (e > qs) {
                api_param_t *pp = &c->params[c->n_params];
                pp->key = api_decode(qs, (size_t)((eq ? eq : e) - qs), true);
                pp->val = eq ? api_decode(eq + 1, (size_t)(e - eq - 1), true) : strdup("");
                if (!pp->key || !pp->val) {
                    free(pp->key);
                    free(pp->val);
                    return false;
                }
                c->n_params++;
            }
            qs = e + 1;
        }
    }
    return true;
}

const char *api__param(const api_ctx_t *c, const char *key)
{
    for (size_t i = 0; i < c->n_params; i++)
        if (!strcmp(c->params[i].key, key)) return c->params[i].val;
    return NULL;
}

int api__param_int(api_ctx_t *c, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = api__param(c, key);
    char *end;
    long long n;
    if (!v) return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi || !(v[0] >= '0' && v[0] <= '9')) {
        api__problem(c->resp, 400, "bad_request",
                     "query parameter %s: an integer from %lld to %lld", key, (long long)lo,
                     (long long)hi);
        return -1;
    }
    *out = n;
    return 0;
}

int api__param_time(api_ctx_t *c, const char *key, uint64_t *out, bool *present)
{
    const char *v = api__param(c, key);
    *present = v != NULL;
    if (!v) return 0;
    if (!api_parse_time(v, strlen(v), out)) {
        api__problem(c->resp, 400, "bad_request",
                     "query parameter %s: an ISO-8601 time such as 2026-11-21T10:04:05Z or "
                     "2026-11-21T10:04:05.123+02:00, or a date 2026-11-21",
                     key);
        return -1;
    }
    return 0;
}

bool api_parse_mac(const char *s, size_t len, char out[18])
{
    char hex[12];
    size_t k = 0;
    if (len == 12) {
        memcpy(hex, s, 12);
    } else if (len == 17 && (s[2] == ':' || s[2] == '-')) {
        for (size_t i = 0; i < 17; i++) {
            if (i % 3 == 2) {
                if (s[i] != s[2]) return false;
            } else {
                hex[k++] = s[i];
            }
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < 12; i++) {
        int h = api_hex(hex[i]);
        if (h < 0) return false;
        hex[i] = "0123456789abcdef"[h];
    }
    snprintf(out, 18, "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s", hex, hex + 2, hex + 4, hex + 6, hex + 8,
             hex + 10);
    return true;
}

/* Read exactly `n` digits at *p into *v. */
static bool api_digits(const char **p, const char *end, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9') return false;
        *v = *v * 10 + (**p - '0');
        (*p)++;
    }
    return true;
}

bool api_parse_time(const char *s, size_t len, uint64_t *unix_ms)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    struct tm tm;
    time_t t;
    if (!api_digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !api_digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !api_digits(&p, end, 2, &d))
        return false;
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (!api_digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !api_digits(&p, end, 2, &mi))
            return false;
        if (p < end && *p == ':') {
            p++;
            if (!api_digits(&p, end, 2, &sec)) return false;
            if (p < end && (*p == '.' || *p == ',')) {
                int scale = 100, digits = 0;
                p++;
                while (p < end && *p >= '0' && *p <= '9') {
                    ms += scale * (*p - '0');
                    scale /= 10;
                    p++;
                    if (++digits > 9) return false;
                }
                if (!digits) return false;
            }
        }
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!api_digits(&p, end, 2, &oh)) return false;
            if (p < end && *p == ':') p++;
            if (!api_digits(&p, end, 2, &om) || oh > 23 || om > 59) return false;
            off = sign * (oh * 60 + om);
        }
    }
    if (p != end || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) /* Feb 30 normalises to March: refuse */
        return false;
    t -= (time_t)off * 60;
    if (t < 0) return false;
    *unix_ms = (uint64_t)t * 1000u + (uint64_t)ms;
    return true;
}
