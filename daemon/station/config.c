/* SPDX-License-Identifier: MIT */
/* config.c — parse and validate the station configuration (docs/STATION.md).
 * Must not: open anything but the config file itself (realpath() of device paths, to refuse two
 * slots on one device, only looks at the file system). */
#include "config.h"
#include "port.h"

#include <cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "est_err.h"

const char *config_start_name(slot_start_t s)
{
    switch (s) {
    case SLOT_START_MANUAL: return "manual";
    case SLOT_START_AUTO: return "auto";
    case SLOT_START_LOOP: return "loop";
    }
    return "?";
}

static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return EST_EUSAGE;
}

/* Resolve `p` against `dir` unless absolute. */
static char *cfg_path(const char *dir, const char *p)
{
    char *out;
    if (p[0] == '/' || !dir)
        return strdup(p);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

/* Only the listed keys are allowed in an object: a typo must not be silently ignored. */
static int cfg_known_keys(const cJSON *obj, const char *path, const char *const *keys, char *err,
                          size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        bool ok = false;
        for (size_t k = 0; keys[k]; k++)
            if (strcmp(it->string, keys[k]) == 0)
                ok = true;
        if (!ok)
            return cfg_err(err, errlen, "%s.%s: unknown setting (see docs/STATION.md)", path,
                           it->string);
    }
    return 0;
}

/* Optional string member: 0 absent, 1 present (into *out), error if not a non-empty string. */
static int cfg_str(const cJSON *obj, const char *key, const char *path, size_t maxlen,
                   const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return cfg_err(err, errlen, "%s.%s: must be a non-empty string", path, key);
    if (strlen(v->valuestring) > maxlen)
        return cfg_err(err, errlen, "%s.%s: longer than %zu characters", path, key, maxlen);
    *out = v->valuestring;
    return 1;
}

static bool cfg_name_ok(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return *s != 0;
}

static int cfg_slot(const cJSON *o, size_t i, station_cfg_t *cfg, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",  "port",   "before",         "after",
                                       "start", "recipe", "reset_override", NULL};
    slot_cfg_t *s = &cfg->slots[i];
    char path[48];
    const char *v;
    int rc;
    snprintf(path, sizeof path, "$.slots[%zu]", i);
    if (!cJSON_IsObject(o))
        return cfg_err(err, errlen, "%s: must be an object", path);
    if ((rc = cfg_known_keys(o, path, keys, err, errlen)) != 0)
        return rc;
    s->before = PLAN_BEFORE_DEFAULT;
    s->after = PLAN_AFTER_HARD_RESET;
    s->start = SLOT_START_MANUAL;
    if ((rc = cfg_str(o, "name", path, CONFIG_NAME_MAX, &v, err, errlen)) < 0)
        return rc;
    if (rc == 0)
        snprintf(s->name, sizeof s->name, "S%zu", i + 1);
    else if (!cfg_name_ok(v))
        return cfg_err(err, errlen, "%s.name: use letters, digits, '-', '_' or '.' (got \"%s\")",
                       path, v);
    else
        snprintf(s->name, sizeof s->name, "%s", v);
    if ((rc = cfg_str(o, "port", path, 1024, &v, err, errlen)) < 0)
        return rc;
    if (rc == 0)
        return cfg_err(err, errlen, "%s.port: required (a device path, usb-serial:<serial>, "
                                    "socket://host:port or rfc2217://host:port)",
                       path);
    if (port_spec_check(v) != 0) /* a typo is an error at load, not an empty fixture */
        return cfg_err(err, errlen, "%s.port: \"%s\" is not a port spec (a device path such as "
                                    "/dev/ttyUSB0, usb-serial:<serial>, socket://host:port or "
                                    "rfc2217://host:port, port 1..65535)",
                       path, v);
    s->port = strdup(v);
    if ((rc = cfg_str(o, "before", path, 32, &v, err, errlen)) < 0)
        return rc;
    if (rc && plan_parse_before(v, &s->before) != 0)
        return cfg_err(err, errlen, "%s.before: one of default_reset, usb_reset, no_reset", path);
    if ((rc = cfg_str(o, "after", path, 32, &v, err, errlen)) < 0)
        return rc;
    if (rc && plan_parse_after(v, &s->after) != 0)
        return cfg_err(err, errlen, "%s.after: one of hard_reset, no_reset", path);
    {
        const cJSON *ov = cJSON_GetObjectItemCaseSensitive(o, "reset_override");
        if (ov && !cJSON_IsBool(ov))
            return cfg_err(err, errlen, "%s.reset_override: true or false", path);
        s->reset_override = cJSON_IsTrue(ov);
    }
    if ((rc = cfg_str(o, "start", path, 32, &v, err, errlen)) < 0)
        return rc;
    if (rc) {
        if (!strcmp(v, "manual"))
            s->start = SLOT_START_MANUAL;
        else if (!strcmp(v, "auto"))
            s->start = SLOT_START_AUTO;
        else if (!strcmp(v, "loop"))
            s->start = SLOT_START_LOOP;
        else
            return cfg_err(err, errlen, "%s.start: one of manual, auto, loop", path);
    }
    if ((rc = cfg_str(o, "recipe", path, PATH_MAX, &v, err, errlen)) < 0)
        return rc;
    if (rc)
        s->recipe = cfg_path(cfg->dir, v);
    for (size_t k = 0; k < i; k++) {
        char rk[PATH_MAX], rs[PATH_MAX];
        if (!strcmp(cfg->slots[k].name, s->name))
            return cfg_err(err, errlen, "%s.name: \"%s\" is already used by $.slots[%zu]", path,
                           s->name, k);
        if (!strcmp(cfg->slots[k].port, s->port))
            return cfg_err(err, errlen,
                           "%s.port: \"%s\" is already used by slot %s (one job per port)", path,
                           s->port, cfg->slots[k].name);
        /* /dev/ttyUSB0 and /dev/serial/by-path/... may name the same adapter: compare the
         * nodes they resolve to (a node that is not there yet cannot be compared; it is then
         * checked again when the slot opens it, as an exclusive open). */
        if (s->port[0] == '/' && cfg->slots[k].port[0] == '/' && realpath(s->port, rs) &&
            realpath(cfg->slots[k].port, rk) && !strcmp(rs, rk))
            return cfg_err(err, errlen,
                           "%s.port: slots %s (\"%s\") and %s (\"%s\") are the same device %s "
                           "(one job per port)",
                           path, cfg->slots[k].name, cfg->slots[k].port, s->name, s->port, rs);
    }
    return 0;
}

/* Optional integer member in [lo, hi]: 0 absent, 1 present (into *out), error otherwise. */
static int cfg_uint(const cJSON *obj, const char *key, const char *path, uint64_t lo, uint64_t hi,
                    uint64_t *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return cfg_err(err, errlen, "%s.%s: an integer from %llu to %llu", path, key,
                       (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)v->valuedouble;
    return 1;
}

/* The "http" keys against a hostile network (docs/API.md "Limits"). */
static int cfg_http_guard(const cJSON *o, http_cfg_t *h, char *err, size_t errlen)
{
    static const struct {
        const char *key;
        uint64_t lo, hi;
        size_t off;
    } nums[] = {
        {"max_connections_per_client", 1, 4096, offsetof(http_cfg_t, max_connections_per_client)},
        {"max_streams_per_client", 1, 4096, offsetof(http_cfg_t, max_streams_per_client)},
        {"reserved_connections", 0, 1024, offsetof(http_cfg_t, reserved_connections)},
        {"header_timeout_ms", 500, 600000, offsetof(http_cfg_t, header_timeout_ms)},
    };
    const cJSON *hosts = o ? cJSON_GetObjectItemCaseSensitive(o, "allowed_hosts") : NULL, *it;
    uint64_t n;
    int rc;
    h->max_connections_per_client = 16;
    h->max_streams_per_client = 4;
    h->reserved_connections = 8;
    h->header_timeout_ms = 10000;
    h->n_allowed_hosts = 0;
    for (size_t i = 0; o && i < sizeof nums / sizeof nums[0]; i++) {
        if ((rc = cfg_uint(o, nums[i].key, "$.http", nums[i].lo, nums[i].hi, &n, err, errlen)) < 0)
            return rc;
        if (rc)
            *(uint32_t *)((char *)h + nums[i].off) = (uint32_t)n;
    }
    if (!hosts)
        return 0;
    if (!cJSON_IsArray(hosts) || cJSON_GetArraySize(hosts) > CONFIG_MAX_HOSTS)
        return cfg_err(err, errlen, "$.http.allowed_hosts: a list of at most %d host names",
                       CONFIG_MAX_HOSTS);
    cJSON_ArrayForEach(it, hosts)
    {
        const char *s = cJSON_GetStringValue(it);
        if (!s || !*s || strlen(s) > CONFIG_HOST_MAX || strspn(s, "abcdefghijklmnopqrstuvwxyz"
                                                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                  "0123456789.-") != strlen(s))
            return cfg_err(err, errlen,
                           "$.http.allowed_hosts[%zu]: a host name (letters, digits, '.', '-'; "
                           "without a port)",
                           h->n_allowed_hosts);
        snprintf(h->allowed_hosts[h->n_allowed_hosts++], CONFIG_HOST_MAX + 1, "%s", s);
    }
    return 0;
}

/* "http": {"read_access", "max_connections", "max_header_bytes", "max_body_bytes",
 * "max_upload_bytes", "idle_timeout_ms"}; defaults per docs/API.md. */
static int cfg_http(const cJSON *o, http_cfg_t *h, char *err, size_t errlen)
{
    static const char *const keys[] = {"read_access",      "max_connections", "max_header_bytes",
                                       "max_body_bytes",   "max_upload_bytes", "idle_timeout_ms",
                                       "max_connections_per_client", "max_streams_per_client",
                                       "reserved_connections", "header_timeout_ms",
                                       "allowed_hosts", NULL};
    const char *v = NULL;
    uint64_t n;
    int rc;
    h->read_token = false;
    h->max_connections = 64;
    h->max_header_bytes = 16384;
    h->max_body_bytes = 1024 * 1024;
    h->max_upload_bytes = 128u * 1024 * 1024;
    h->idle_timeout_ms = 30000;
    if (!o)
        return cfg_http_guard(NULL, h, err, errlen);
    if (!cJSON_IsObject(o))
        return cfg_err(err, errlen, "$.http: must be an object");
    if ((rc = cfg_known_keys(o, "$.http", keys, err, errlen)) != 0)
        return rc;
    if ((rc = cfg_str(o, "read_access", "$.http", 16, &v, err, errlen)) < 0)
        return rc;
    if (rc) {
        if (!strcmp(v, "token"))
            h->read_token = true;
        else if (strcmp(v, "open") != 0)
            return cfg_err(err, errlen, "$.http.read_access: one of open, token");
    }
    /* The bounds keep the server's memory per connection and per request sane. */
    if ((rc = cfg_uint(o, "max_connections", "$.http", 1, 4096, &n, err, errlen)) < 0)
        return rc;
    if (rc)
        h->max_connections = (uint32_t)n;
    if ((rc = cfg_uint(o, "max_header_bytes", "$.http", 1024, 262144, &n, err, errlen)) < 0)
        return rc;
    if (rc)
        h->max_header_bytes = (uint32_t)n;
    if ((rc = cfg_uint(o, "max_body_bytes", "$.http", 1024, 64u * 1024 * 1024, &n, err,
                       errlen)) < 0)
        return rc;
    if (rc)
        h->max_body_bytes = n;
    if ((rc = cfg_uint(o, "max_upload_bytes", "$.http", 1024, 1024ull * 1024 * 1024, &n, err,
                       errlen)) < 0)
        return rc;
    if (rc)
        h->max_upload_bytes = n;
    if ((rc = cfg_uint(o, "idle_timeout_ms", "$.http", 1000, 3600000, &n, err, errlen)) < 0)
        return rc;
    if (rc)
        h->idle_timeout_ms = (uint32_t)n;
    return cfg_http_guard(o, h, err, errlen);
}

int config_parse(const char *text, size_t len, const char *dir, station_cfg_t *cfg, char *err,
                 size_t errlen)
{
    static const char *const keys[] = {"id",         "name",      "database", "listen",
                                       "stub_dir",   "token_file", "image_dir", "recipe",
                                       "probe_interval_ms", "slots", "http", "web_root",
                                       "cfx", NULL};
    cJSON *root;
    const cJSON *slots, *pi;
    const char *v;
    int rc;

    memset(cfg, 0, sizeof *cfg);
    if (len > CONFIG_MAX_BYTES)
        return cfg_err(err, errlen, "$: the config is larger than %u bytes", CONFIG_MAX_BYTES);
    root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        size_t line = 1;
        for (size_t k = 0; k < off; k++)
            line += text[k] == '\n';
        return cfg_err(err, errlen, "$: not valid JSON (near line %zu)", line);
    }
    cfg->dir = dir ? strdup(dir) : NULL;
    rc = EST_EUSAGE;
    if (!cJSON_IsObject(root)) {
        cfg_err(err, errlen, "$: must be a JSON object");
        goto out;
    }
    if (cfg_known_keys(root, "$", keys, err, errlen) != 0)
        goto out;
    snprintf(cfg->id, sizeof cfg->id, "station");
    snprintf(cfg->name, sizeof cfg->name, "espstation");
    v = NULL;
    if (cfg_str(root, "id", "$", 64, &v, err, errlen) < 0)
        goto out;
    if (v)
        snprintf(cfg->id, sizeof cfg->id, "%s", v);
    v = NULL;
    if (cfg_str(root, "name", "$", 128, &v, err, errlen) < 0)
        goto out;
    if (v)
        snprintf(cfg->name, sizeof cfg->name, "%s", v);
    v = "espstation.db";
    if (cfg_str(root, "database", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->database = cfg_path(cfg->dir, v);
    v = "127.0.0.1:8080";
    if (cfg_str(root, "listen", "$", 128, &v, err, errlen) < 0)
        goto out;
    cfg->listen = strdup(v);
    v = NULL;
    if (cfg_str(root, "stub_dir", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->stub_dir = v ? cfg_path(cfg->dir, v) : NULL;
    v = NULL;
    if (cfg_str(root, "token_file", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->token_file = v ? cfg_path(cfg->dir, v) : NULL;
    v = "images";
    if (cfg_str(root, "image_dir", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->image_dir = cfg_path(cfg->dir, v);
    v = NULL;
    if (cfg_str(root, "recipe", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->recipe = v ? cfg_path(cfg->dir, v) : NULL;
    v = NULL;
    if (cfg_str(root, "web_root", "$", PATH_MAX, &v, err, errlen) < 0)
        goto out;
    cfg->web_root = v ? cfg_path(cfg->dir, v) : NULL;
    /* "cfx": kept as text, parsed by daemon/cfx (cfx_config_parse, docs/STATION.md "cfx") */
    if (cJSON_GetObjectItemCaseSensitive(root, "cfx") &&
        !(cfg->cfx_json = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "cfx")))) {
        cfg_err(err, errlen, "$.cfx: out of memory");
        goto out;
    }
    if (cfg_http(cJSON_GetObjectItemCaseSensitive(root, "http"), &cfg->http, err, errlen) != 0)
        goto out;
    if (cfg->http.read_token && !cfg->token_file) {
        cfg_err(err, errlen, "$.http.read_access: \"token\" needs \"token_file\" (the API tokens)");
        goto out;
    }
    cfg->probe_interval_ms = 2000;
    pi = cJSON_GetObjectItemCaseSensitive(root, "probe_interval_ms");
    if (pi) {
        if (!cJSON_IsNumber(pi) || pi->valuedouble < 200 || pi->valuedouble > 600000 ||
            pi->valuedouble != (double)(uint32_t)pi->valuedouble) {
            cfg_err(err, errlen, "$.probe_interval_ms: an integer from 200 to 600000");
            goto out;
        }
        cfg->probe_interval_ms = (uint32_t)pi->valuedouble;
    }
    slots = cJSON_GetObjectItemCaseSensitive(root, "slots");
    if (!cJSON_IsArray(slots) || cJSON_GetArraySize(slots) == 0) {
        cfg_err(err, errlen, "$.slots: required: a non-empty list of fixture slots");
        goto out;
    }
    if (cJSON_GetArraySize(slots) > CONFIG_MAX_SLOTS) {
        cfg_err(err, errlen, "$.slots: at most %d slots", CONFIG_MAX_SLOTS);
        goto out;
    }
    cfg->n_slots = (size_t)cJSON_GetArraySize(slots);
    cfg->slots = calloc(cfg->n_slots, sizeof *cfg->slots);
    if (!cfg->slots) {
        cfg_err(err, errlen, "$: out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg->n_slots; i++)
        if (cfg_slot(cJSON_GetArrayItem(slots, (int)i), i, cfg, err, errlen) != 0)
            goto out;
    if (!cfg->database || !cfg->listen || !cfg->image_dir) {
        cfg_err(err, errlen, "$: out of memory");
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

int config_load(const char *path, station_cfg_t *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf, *dcopy, *dir;
    long n;
    int rc;
    memset(cfg, 0, sizeof *cfg);
    if (!f)
        return cfg_err(err, errlen, "cannot open config %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return cfg_err(err, errlen, "cannot read config %s", path);
    }
    if ((unsigned long)n > CONFIG_MAX_BYTES) {
        fclose(f);
        return cfg_err(err, errlen, "config %s is larger than %u bytes", path, CONFIG_MAX_BYTES);
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return cfg_err(err, errlen, "cannot read config %s", path);
    }
    fclose(f);
    buf[n] = 0;
    dcopy = strdup(path);
    dir = dcopy ? dirname(dcopy) : NULL;
    rc = config_parse(buf, (size_t)n, dir, cfg, err, errlen);
    free(dcopy);
    free(buf);
    return rc;
}

void config_free(station_cfg_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; cfg->slots && i < cfg->n_slots; i++) {
        free(cfg->slots[i].port);
        free(cfg->slots[i].recipe);
    }
    free(cfg->slots);
    free(cfg->dir);
    free(cfg->database);
    free(cfg->listen);
    free(cfg->stub_dir);
    free(cfg->token_file);
    free(cfg->image_dir);
    free(cfg->recipe);
    free(cfg->web_root);
    free(cfg->cfx_json);
    memset(cfg, 0, sizeof *cfg);
}

const slot_cfg_t *config_slot(const station_cfg_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_slots; i++)
        if (!strcmp(cfg->slots[i].name, name))
            return &cfg->slots[i];
    return NULL;
}
