/* SPDX-License-Identifier: MIT */
/* events.h — the live event stream behind GET /api/v1/events (docs/API.md): a ring of the last
 * EVENTS_RING events formatted as server-sent events, a random boot id per daemon start, the
 * resume rules (replay after a Last-Event-ID, or hello + reset). A client is a cursor into the
 * ring plus a small buffer (retry, hello, reset, keep-alives): its backlog costs no memory of its
 * own, and a client that falls a whole ring behind (or whose small buffer overflows) is dropped.
 * Owns: event numbering, formatting and buffering. Must not: touch sockets, h2o or libuv; the
 * HTTP layer moves each client's pending bytes to its connection. */
#ifndef EVENTS_H
#define EVENTS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_RING 4096
#define EVENTS_META_MAX (64u * 1024u)  /* a client's own buffer (hello, reset, keep-alives) */
#define EVENTS_TAKE_MAX (256u * 1024u) /* bytes handed out per events_client_take() */
#define EVENTS_BOOT_ID_LEN 9           /* 8 hex digits + NUL */

typedef struct events_s events_t;
typedef struct events_client_s events_client_t;

/* Called when a client has new pending bytes, or was dropped (events_client_dropped). */
typedef void (*events_notify_cb)(events_client_t *c, void *data);

/* boot_id NULL = random (RAND_bytes); tests pass their own 8 hex digits. */
events_t *events_new(const char *boot_id);
/* Frees the ring and every client still attached. */
void events_free(events_t *ev);
const char *events_boot_id(const events_t *ev);
uint64_t events_last_seq(const events_t *ev);
size_t events_client_count(const events_t *ev);

/* Publish one event of `type` ("slot", "progress", "job", "log"): `data` (an object, taken over)
 * gets "seq", "boot_id" and "time" in front of its members. Returns the event's seq (0 when out
 * of memory). Every attached client is told; one that still needed the event the ring drops now
 * is dropped itself. */
uint64_t events_publish(events_t *ev, const char *type, cJSON *data);

/* Parse "<boot_id>:<seq>" (8 lower-case hex digits, a decimal seq). */
bool events_parse_id(const char *s, size_t len, char boot[EVENTS_BOOT_ID_LEN], uint64_t *seq);

/* Attach a client. `resume` is the Last-Event-ID value (NULL = a new client, len ignored);
 * `station` (taken over) is the hello event's payload. The client's stream starts with `retry:`,
 * hello, then either every kept event after the resume point or a reset (docs/API.md: other boot
 * id, events dropped from the ring, an id from the future, a malformed id). NULL when out of
 * memory. */
events_client_t *events_attach(events_t *ev, const char *resume, size_t len, cJSON *station);
void events_client_set_notify(events_client_t *c, events_notify_cb cb, void *data);
/* Take the client's next pending bytes, at most about EVENTS_TAKE_MAX (malloc'ed, caller frees;
 * NULL with *len 0 when none). */
char *events_client_take(events_client_t *c, size_t *len);
/* Bytes waiting for the client. */
size_t events_client_pending(const events_client_t *c);
/* True once the client fell behind for good: nothing more is queued for it; detach it. */
bool events_client_dropped(const events_client_t *c);
void events_detach(events_client_t *c);
/* Append ": keep-alive" to every client (the HTTP layer calls it every 15 s). */
void events_keepalive(events_t *ev);

#endif
