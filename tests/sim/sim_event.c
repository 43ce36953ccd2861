// SPDX-License-Identifier: MIT
// sim_event: JSON-lines output of espsim. Every line is a complete object flushed at once so a
// harness reading stdout line by line never sees a partial event.
#include "sim_event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sim_ev_quiet;

static void ev_raw(sim_ev_t *e, const char *s)
{
    size_t n = strlen(s);
    if (e->len + n + 4 >= sizeof(e->buf))
        return; // truncated events stay valid JSON because the closing brace is always room-kept
    memcpy(e->buf + e->len, s, n);
    e->len += (unsigned)n;
}

static void ev_quoted(sim_ev_t *e, const char *s)
{
    ev_raw(e, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            tmp[2] = 0;
        } else if (*p < 0x20 || *p >= 0x7F) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
        } else {
            tmp[0] = (char)*p;
            tmp[1] = 0;
        }
        ev_raw(e, tmp);
    }
    ev_raw(e, "\"");
}

static void ev_key(sim_ev_t *e, const char *key)
{
    if (!e->first) ev_raw(e, ",");
    e->first = 0;
    ev_quoted(e, key);
    ev_raw(e, ":");
}

void sim_ev_begin(sim_ev_t *e, const char *event)
{
    e->len = 0;
    e->first = 1;
    ev_raw(e, "{");
    sim_ev_str(e, "event", event);
}

void sim_ev_str(sim_ev_t *e, const char *key, const char *val)
{
    ev_key(e, key);
    ev_quoted(e, val ? val : "");
}

void sim_ev_num(sim_ev_t *e, const char *key, int64_t val)
{
    char tmp[32];
    ev_key(e, key);
    snprintf(tmp, sizeof(tmp), "%" PRId64, val);
    ev_raw(e, tmp);
}

void sim_ev_hex(sim_ev_t *e, const char *key, uint32_t val)
{
    char tmp[16];
    snprintf(tmp, sizeof(tmp), "0x%" PRIx32, val);
    sim_ev_str(e, key, tmp);
}

void sim_ev_bool(sim_ev_t *e, const char *key, int val)
{
    ev_key(e, key);
    ev_raw(e, val ? "true" : "false");
}

void sim_ev_end(sim_ev_t *e)
{
    // the time goes last so the ready line keeps the documented key order
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sim_ev_num(e, "t_ms", (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    e->buf[e->len++] = '}';
    e->buf[e->len++] = '\n';
    const char *name = e->buf + 10; // after {"event":"
    int always = strncmp(name, "ready\"", 6) == 0 || strncmp(name, "exit\"", 5) == 0;
    if (sim_ev_quiet && !always) return;
    size_t off = 0;
    while (off < e->len) {
        ssize_t w = write(STDOUT_FILENO, e->buf + off, e->len - off);
        if (w <= 0) break; // stdout gone: events are best effort, the device keeps running
        off += (size_t)w;
    }
}

void sim_event_simple(const char *event, const char *detail)
{
    sim_ev_t e;
    sim_ev_begin(&e, event);
    if (detail) sim_ev_str(&e, "detail", detail);
    sim_ev_end(&e);
}
