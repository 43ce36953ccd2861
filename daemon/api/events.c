/* SPDX-License-Identifier: MIT */
/* events.c — event ring, SSE formatting, resume rules and client cursors (docs/API.md "GET
 * /api/v1/events"). Must not: block, or give one client memory beyond EVENTS_META_MAX. */
#include "events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "store.h"

typedef struct events_slot_s {
    uint64_t seq;
    char *frame; /* "id: ...\nevent: ...\ndata: ...\n\n" */
    size_t len;
} events_slot_t;

struct events_client_s {
    events_t *ev;
    events_client_t *prev, *next;
    char *buf; /* sent before the ring events: retry, hello, reset, keep-alives */
    size_t len, cap;
    uint64_t next_seq; /* the next ring event this client gets */
    bool dropped;
    events_notify_cb cb;
    void *data;
};

struct events_s {
    char boot[EVENTS_BOOT_ID_LEN];
    uint64_t last; /* seq of the newest event (0: none yet) */
    events_slot_t ring[EVENTS_RING];
    events_client_t *clients;
    size_t n_clients;
};

events_t *events_new(const char *boot_id)
{
    events_t *ev = calloc(1, sizeof *ev);
    if (!ev) return NULL;
    if (boot_id) {
        snprintf(ev->boot, sizeof ev->boot, "%s", boot_id);
    } else {
        unsigned char b[4] = {0};
        if (RAND_bytes(b, sizeof b) != 1) {
            /* never seen in practice; a fixed id would make resumes across restarts wrong, so
             * fall back to something that differs per start */
            uint64_t t = store_now_ms();
            memcpy(b, &t, sizeof b);
        }
        snprintf(ev->boot, sizeof ev->boot, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    }
    return ev;
}

void events_free(events_t *ev)
{
    if (!ev) return;
    while (ev->clients)
        events_detach(ev->clients);
    for (size_t i = 0; i < EVENTS_RING; i++)
        free(ev->ring[i].frame);
    free(ev);
}

const char *events_boot_id(const events_t *ev)
{
    return ev->boot;
}
uint64_t events_last_seq(const events_t *ev)
{
    return ev->last;
}
size_t events_client_count(const events_t *ev)
{
    return ev->n_clients;
}

static void events_client_drop(events_client_t *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    c->dropped = true;
}

/* Append to a client's own buffer; past its cap the client is dropped (and told). */
static void events_client_add(events_client_t *c, const char *s, size_t n, bool notify)
{
    if (c->dropped) return;
    if (c->len + n > EVENTS_META_MAX) {
        events_client_drop(c);
    } else {
        if (c->len + n > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n)
                cap *= 2;
            char *nb = realloc(c->buf, cap);
            if (!nb) {
                events_client_drop(c);
                goto tell;
            }
            c->buf = nb;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, s, n);
        c->len += n;
    }
tell:
    if (notify && c->cb) c->cb(c, c->data);
}

/* "id: B:S\nevent: T\ndata: {...}\n\n" with seq/boot_id/time first in the data object. */
static char *events_frame(const events_t *ev, uint64_t seq, const char *type, cJSON *data,
                          size_t *len)
{
    cJSON *o = cJSON_CreateObject(), *it;
    char when[STORE_TIME_LEN], *json, *frame = NULL;
    int n;
    if (!o || !data) {
        cJSON_Delete(o);
        cJSON_Delete(data);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    cJSON_AddStringToObject(o, "boot_id", ev->boot);
    cJSON_AddStringToObject(o, "time", store_fmt_time(store_now_ms(), when));
    while ((it = data->child) != NULL) {
        cJSON_DetachItemViaPointer(data, it);
        cJSON_AddItemToObject(o, it->string, it); /* keeps the key (it->string) */
    }
    cJSON_Delete(data);
    json = cJSON_PrintUnformatted(o); /* one line: JSON strings escape newlines */
    cJSON_Delete(o);
    if (!json) return NULL;
    n = asprintf(&frame, "id: %s:%" PRIu64 "\nevent: %s\ndata: %s\n\n", ev->boot, seq, type, json);
    free(json);
    if (n < 0) return NULL;
    *len = (size_t)n;
    return frame;
}

uint64_t events_publish(events_t *ev, const char *type, cJSON *data)
{
    size_t len;
    uint64_t seq = ev->last + 1;
    char *frame = events_frame(ev, seq, type, data, &len);
    events_slot_t *slot;
    if (!frame) return 0;
    ev->last = seq;
    slot = &ev->ring[seq % EVENTS_RING];
    free(slot->frame);
    slot->seq = seq;
    slot->frame = frame;
    slot->len = len;
    for (events_client_t *c = ev->clients, *next; c; c = next) {
        next = c->next; /* a notify callback may detach c */
        /* the event just overwritten (seq - RING) is one this client has not had yet: it fell
         * a whole ring behind and can only resume (and get a reset) */
        if (!c->dropped && seq > EVENTS_RING && c->next_seq <= seq - EVENTS_RING)
            events_client_drop(c);
        if (c->cb) c->cb(c, c->data);
    }
    return seq;
}

bool events_parse_id(const char *s, size_t len, char boot[EVENTS_BOOT_ID_LEN], uint64_t *seq)
{
    uint64_t v = 0;
    if (len < 10 || len > 8 + 1 + 20 || s[8] != ':') return false;
    for (size_t i = 0; i < 8; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    for (size_t i = 9; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    memcpy(boot, s, 8);
    boot[8] = 0;
    *seq = v;
    return true;
}

/* Oldest seq still in the ring. */
static uint64_t events_oldest(const events_t *ev)
{
    return ev->last > EVENTS_RING ? ev->last - EVENTS_RING + 1 : 1;
}

/* hello / reset are not numbered themselves: they carry the position the stream continues
 * after, so a client that drops right after them resumes without a gap (docs/API.md). */
static bool events_client_meta(events_client_t *c, const char *type, uint64_t at, cJSON *data)
{
    size_t len;
    char *f = events_frame(c->ev, at, type, data, &len);
    if (!f) return false;
    events_client_add(c, f, len, false);
    free(f);
    return true;
}

events_client_t *events_attach(events_t *ev, const char *resume, size_t len, cJSON *station)
{
    static const char retry[] = "retry: 2000\n\n";
    events_client_t *c = calloc(1, sizeof *c);
    const char *reason = NULL;
    char boot[EVENTS_BOOT_ID_LEN];
    uint64_t at = ev->last, from = 0;
    cJSON *hello = cJSON_CreateObject();
    bool replay = false;

    if (!c || !hello) {
        free(c);
        cJSON_Delete(hello);
        cJSON_Delete(station);
        return NULL;
    }
    c->ev = ev;
    if (resume) {
        if (!events_parse_id(resume, len, boot, &from))
            reason = "malformed Last-Event-ID (expected <boot_id>:<seq>)";
        else if (strcmp(boot, ev->boot) != 0)
            reason = "the daemon restarted (another boot id): reload the state";
        else if (from > ev->last)
            reason = "the event id is ahead of the stream";
        else if (from + 1 < events_oldest(ev) && from < ev->last)
            reason = "the events after that id were dropped from the buffer: reload the state";
        else {
            replay = true;
            at = from;
        }
    }
    events_client_add(c, retry, sizeof retry - 1, false);
    if (station)
        cJSON_AddItemToObject(hello, "station", station);
    else
        cJSON_AddNullToObject(hello, "station");
    if (!events_client_meta(c, "hello", at, hello)) goto fail;
    if (reason) {
        cJSON *r = cJSON_CreateObject();
        if (!r) goto fail;
        cJSON_AddStringToObject(r, "reason", reason);
        if (!events_client_meta(c, "reset", at, r)) goto fail;
    }
    /* the replay is the cursor: kept events are read from the ring as the client drains */
    c->next_seq = replay ? from + 1 : ev->last + 1;
    if (c->dropped) goto fail;
    c->next = ev->clients;
    if (ev->clients) ev->clients->prev = c;
    ev->clients = c;
    ev->n_clients++;
    return c;
fail:
    free(c->buf);
    free(c);
    return NULL;
}

void events_client_set_notify(events_client_t *c, events_notify_cb cb, void *data)
{
    c->cb = cb;
    c->data = data;
}

char *events_client_take(events_client_t *c, size_t *len)
{
    const events_t *ev = c->ev;
    size_t n = c->len;
    uint64_t s = c->next_seq;
    char *b;
    *len = 0;
    if (c->dropped) return NULL;
    /* how much of the ring goes with it: at least one event, about EVENTS_TAKE_MAX in all */
    while (s <= ev->last &&
           (s == c->next_seq || n + ev->ring[s % EVENTS_RING].len <= EVENTS_TAKE_MAX))
        n += ev->ring[s++ % EVENTS_RING].len;
    if (n == 0) return NULL;
    b = malloc(n);
    if (!b) {
        events_client_drop(c);
        return NULL;
    }
    if (c->len) memcpy(b, c->buf, c->len);
    *len = c->len;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    for (; c->next_seq < s; c->next_seq++) {
        const events_slot_t *e = &ev->ring[c->next_seq % EVENTS_RING];
        memcpy(b + *len, e->frame, e->len);
        *len += e->len;
    }
    return b;
}

size_t events_client_pending(const events_client_t *c)
{
    size_t n = c->len;
    if (c->dropped) return 0;
    for (uint64_t s = c->next_seq; s <= c->ev->last; s++)
        n += c->ev->ring[s % EVENTS_RING].len;
    return n;
}

bool events_client_dropped(const events_client_t *c)
{
    return c->dropped;
}

void events_detach(events_client_t *c)
{
    events_t *ev;
    if (!c) return;
    ev = c->ev;
    if (c->prev)
        c->prev->next = c->next;
    else
        ev->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    ev->n_clients--;
    free(c->buf);
    free(c);
}

void events_keepalive(events_t *ev)
{
    static const char ka[] = ": keep-alive\n\n";
    for (events_client_t *c = ev->clients, *next; c; c = next) {
        next = c->next;
        events_client_add(c, ka, sizeof ka - 1, true);
    }
}
