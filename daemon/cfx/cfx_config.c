/* SPDX-License-Identifier: MIT */
/* cfx_config.c — the station config's "cfx" section (docs/STATION.md "cfx", docs/CFX.md
 * "Setting up"): parsed here so that config.c only keeps the section's text; errors name the
 * JSON path like config.c's. The credentials file is read here and refused when other users may
 * read it (as the API token file is).
 * Must not: connect anywhere. */
#include "cfx.h"
#include "est_err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define CFX_CRED_MAX 1024

static int cc_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cc_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* the message is one log line: control characters of echoed keys and values shown as '?' */
    for (char *c = err; errlen && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
    return EST_EUSAGE;
}

static char *cc_path(const char *dir, const char *p)
{
    char *out;
    size_t n;
    if (p[0] == '/' || !dir)
        return strdup(p);
    n = strlen(dir) + strlen(p) + 2;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

/* Optional string `key` of `o` into *out (strdup'ed; path resolved when dir != NULL). */
static int cc_str(const cJSON *o, const char *key, const char *path, const char *dir,
                  size_t maxlen, char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return cc_err(err, errlen, "%s.%s: must be a non-empty string", path, key);
    if (strlen(v->valuestring) > maxlen)
        return cc_err(err, errlen, "%s.%s: longer than %zu characters", path, key, maxlen);
    free(*out);
    *out = dir ? cc_path(dir, v->valuestring) : strdup(v->valuestring);
    return *out ? 0 : cc_err(err, errlen, "out of memory");
}

static int cc_uint(const cJSON *o, const char *key, const char *path, double lo, double hi,
                   double *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return cc_err(err, errlen, "%s.%s: an integer from %.0f to %.0f", path, key, lo, hi);
    *out = v->valuedouble;
    return 0;
}

static int cc_keys(const cJSON *o, const char *path, const char *const *keys, char *err,
                   size_t errlen)
{
    if (!cJSON_IsObject(o))
        return cc_err(err, errlen, "%s: must be an object", path);
    for (const cJSON *it = o->child; it; it = it->next) {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = !strcmp(it->string, keys[i]);
        if (!ok)
            return cc_err(err, errlen, "%s.%s: unknown setting (see docs/STATION.md \"cfx\")",
                          path, it->string);
    }
    return 0;
}

/* "user:password" on the first line; the file must not be readable by group or others. */
static int cc_credentials(cfx_cfg_t *c, char *err, size_t errlen)
{
    const char *p = c->credentials_file;
    char buf[CFX_CRED_MAX + 1], *colon, *nl;
    struct stat st;
    ssize_t n;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not hang us */
    if (fd < 0)
        return cc_err(err, errlen, "$.cfx.credentials_file: cannot open %s: %s", p,
                      strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cc_err(err, errlen, "$.cfx.credentials_file: %s is not a regular file", p);
    }
    if (st.st_mode & 0077) {
        close(fd);
        return cc_err(err, errlen,
                      "$.cfx.credentials_file: %s can be read by other users (mode %04o): run "
                      "'chmod 600 %s'",
                      p, (unsigned)(st.st_mode & 07777), p);
    }
    n = read(fd, buf, CFX_CRED_MAX);
    close(fd);
    if (n < 0)
        return cc_err(err, errlen, "$.cfx.credentials_file: reading %s: %s", p, strerror(errno));
    buf[n] = 0;
    if ((nl = strpbrk(buf, "\r\n")))
        *nl = 0;
    colon = strchr(buf, ':');
    if (!colon || colon == buf) {
        memset(buf, 0, sizeof buf);
        return cc_err(err, errlen,
                      "$.cfx.credentials_file: %s must hold one line \"user:password\"", p);
    }
    *colon = 0;
    c->user = strdup(buf);
    c->password = strdup(colon + 1);
    memset(buf, 0, sizeof buf);
    return c->user && c->password ? 0 : cc_err(err, errlen, "out of memory");
}

static int cc_tls(const cJSON *t, const char *dir, cfx_cfg_t *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", NULL};
    int rc;
    if (!t)
        return 0;
    if ((rc = cc_keys(t, "$.cfx.tls", keys, err, errlen)) != 0 ||
        (rc = cc_str(t, "ca_file", "$.cfx.tls", dir, PATH_MAX, &c->ca_file, err, errlen)) != 0 ||
        (rc = cc_str(t, "cert_file", "$.cfx.tls", dir, PATH_MAX, &c->cert_file, err, errlen)) !=
            0 ||
        (rc = cc_str(t, "key_file", "$.cfx.tls", dir, PATH_MAX, &c->key_file, err, errlen)) != 0)
        return rc;
    if (!c->cert_file != !c->key_file)
        return cc_err(err, errlen, "$.cfx.tls: cert_file and key_file go together");
    return 0;
}

static int cc_interlock(const cJSON *il, cfx_cfg_t *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"enabled", "timeout_ms", NULL};
    const cJSON *en;
    double d = c->interlock_timeout_ms;
    int rc;
    if (!il)
        return 0;
    if ((rc = cc_keys(il, "$.cfx.interlock", keys, err, errlen)) != 0)
        return rc;
    en = cJSON_GetObjectItemCaseSensitive(il, "enabled");
    if (en && !cJSON_IsBool(en))
        return cc_err(err, errlen, "$.cfx.interlock.enabled: true or false");
    c->interlock = cJSON_IsTrue(en);
    if ((rc = cc_uint(il, "timeout_ms", "$.cfx.interlock", 100, 600000, &d, err, errlen)) != 0)
        return rc;
    c->interlock_timeout_ms = (uint32_t)d;
    return 0;
}

static int cc_parse(const cJSON *o, const char *dir, const char *station_id, cfx_cfg_t *c,
                    char *err, size_t errlen)
{
    static const char *const keys[] = {"handle",    "broker",     "address",    "request_address",
                                       "credentials_file", "mechanisms", "tls", "heartbeat_s",
                                       "outbox_max", "interlock", "reconnect_max_s", NULL};
    char def[160];
    double d;
    int rc;
    if ((rc = cc_keys(o, "$.cfx", keys, err, errlen)) != 0)
        return rc;
    if ((rc = cc_str(o, "broker", "$.cfx", NULL, 1024, &c->broker, err, errlen)) != 0)
        return rc;
    if (!c->broker)
        return cc_err(err, errlen, "$.cfx.broker: required (amqp://host:5672 or "
                                   "amqps://host:5671) when the \"cfx\" section is there");
    if (strncmp(c->broker, "amqp://", 7) && strncmp(c->broker, "amqps://", 8))
        return cc_err(err, errlen, "$.cfx.broker: must start with amqp:// or amqps:// (got \"%s\")",
                      c->broker);
    snprintf(def, sizeof def, "espstation.%s", station_id ? station_id : "station");
    c->handle = strdup(def);
    c->address = strdup("/queue/cfx");
    if ((rc = cc_str(o, "handle", "$.cfx", NULL, 128, &c->handle, err, errlen)) != 0 ||
        (rc = cc_str(o, "address", "$.cfx", NULL, 512, &c->address, err, errlen)) != 0)
        return rc;
    snprintf(def, sizeof def, "/queue/%s", c->handle);
    c->request_address = strdup(def);
    if ((rc = cc_str(o, "request_address", "$.cfx", NULL, 512, &c->request_address, err,
                     errlen)) != 0 ||
        (rc = cc_str(o, "mechanisms", "$.cfx", NULL, 128, &c->mechanisms, err, errlen)) != 0 ||
        (rc = cc_str(o, "credentials_file", "$.cfx", dir, PATH_MAX, &c->credentials_file, err,
                     errlen)) != 0)
        return rc;
    d = 60;
    if ((rc = cc_uint(o, "heartbeat_s", "$.cfx", 1, 300, &d, err, errlen)) != 0)
        return rc;
    c->heartbeat_s = (uint32_t)d;
    d = 100000;
    if ((rc = cc_uint(o, "outbox_max", "$.cfx", 100, 10000000, &d, err, errlen)) != 0)
        return rc;
    c->outbox_max = (int64_t)d;
    d = 60;
    if ((rc = cc_uint(o, "reconnect_max_s", "$.cfx", 1, 3600, &d, err, errlen)) != 0)
        return rc;
    c->reconnect_max_s = (uint32_t)d;
    if ((rc = cc_tls(cJSON_GetObjectItemCaseSensitive(o, "tls"), dir, c, err, errlen)) != 0 ||
        (rc = cc_interlock(cJSON_GetObjectItemCaseSensitive(o, "interlock"), c, err, errlen)) != 0)
        return rc;
    if (!strncmp(c->broker, "amqps://", 8) && !c->ca_file)
        return cc_err(err, errlen, "$.cfx.tls.ca_file: required with an amqps:// broker (the CA "
                                   "that signed the broker's certificate)");
    if (c->credentials_file && (rc = cc_credentials(c, err, errlen)) != 0)
        return rc;
    c->enabled = true;
    return 0;
}

int cfx_config_parse(const char *json, const char *dir, const char *station_id, cfx_cfg_t *c,
                     char *err, size_t errlen)
{
    cJSON *o;
    int rc;
    memset(c, 0, sizeof *c);
    c->heartbeat_s = 60;
    c->outbox_max = 100000;
    c->interlock_timeout_ms = 10000;
    if (!json)
        return 0;
    o = cJSON_Parse(json);
    if (!o)
        return cc_err(err, errlen, "$.cfx: not valid JSON");
    rc = cc_parse(o, dir, station_id, c, err, errlen);
    cJSON_Delete(o);
    if (rc != 0)
        cfx_config_free(c);
    return rc;
}

void cfx_config_free(cfx_cfg_t *c)
{
    if (c->password)
        memset(c->password, 0, strlen(c->password));
    free(c->handle);
    free(c->broker);
    free(c->address);
    free(c->request_address);
    free(c->credentials_file);
    free(c->user);
    free(c->password);
    free(c->mechanisms);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    memset(c, 0, sizeof *c);
}
