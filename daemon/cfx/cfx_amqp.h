/* SPDX-License-Identifier: MIT */
/* cfx_amqp.h — an AMQP 1.0 sender on the daemon's libuv loop (docs/CFX.md "Transport"): Qpid
 * Proton-C's I/O-free connection driver fed by a uv_tcp_t, no extra thread, nothing blocking.
 * SASL ANONYMOUS / PLAIN / EXTERNAL, TLS with a CA file and an optional client certificate,
 * reconnect with exponential backoff and jitter, one sending link to the configured address.
 * Owns: the socket, the Proton connection and its timers. Must not: know CFX or the outbox
 * (messages are opaque bytes with a 64-bit tag; outcomes come back by tag). */
#ifndef CFX_AMQP_H
#define CFX_AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cfx_amqp_s cfx_amqp_t;

/* XX(ENUM, "name") — the connection's state as /api/v1/station and /metrics show it. */
#define CFX_AMQP_STATE_MAP(XX)                                                                     \
    XX(DISABLED, "disabled")         /* no broker configured */                                   \
    XX(CONNECTING, "connecting")     /* resolving, TCP connect, TLS, SASL, attach */              \
    XX(CONNECTED, "connected")       /* the link is attached: messages flow */                    \
    XX(DISCONNECTED, "disconnected") /* lost or refused; a reconnect is scheduled (see error) */  \
    XX(CLOSED, "closed")             /* shut down */

typedef enum {
#define XX(e, n) CFX_AMQP_##e,
    CFX_AMQP_STATE_MAP(XX)
#undef XX
} cfx_amqp_state_t;
const char *cfx_amqp_state_name(cfx_amqp_state_t s);

typedef enum { CFX_OUT_ACCEPTED, CFX_OUT_REJECTED, CFX_OUT_RELEASED } cfx_outcome_t;

typedef struct cfx_amqp_opts_s {
    uv_loop_t *loop;
    const char *url;          /* amqp://host[:5672] or amqps://host[:5671] */
    const char *address;      /* target address of the sending link, e.g. /queue/cfx */
    const char *user, *password; /* SASL PLAIN when set */
    const char *mechs;        /* allowed SASL mechanisms ("PLAIN", "EXTERNAL ANONYMOUS"); NULL: auto */
    const char *ca_file, *cert_file, *key_file; /* amqps: CA (required), client cert + key */
    const char *container_id; /* the CFX handle */
    uint32_t idle_timeout_ms; /* AMQP idle timeout we announce (0: none) */
    uint32_t backoff_min_ms, backoff_max_ms; /* reconnect delays [1000, 60000] */
    void (*state_cb)(void *ud, cfx_amqp_state_t st, const char *error);
    void (*credit_cb)(void *ud);   /* the link can take messages (again) */
    void (*outcome_cb)(void *ud, uint64_t tag, cfx_outcome_t o, const char *why);
    void (*closed_cb)(void *ud);   /* after cfx_amqp_close: every handle is closed */
    void *ud;
} cfx_amqp_opts_t;

/* Check the options (URL, TLS files readable) without connecting. 0 or -1 with err. */
int cfx_amqp_new(const cfx_amqp_opts_t *o, cfx_amqp_t **out, char *err, size_t errlen);
void cfx_amqp_start(cfx_amqp_t *a);
cfx_amqp_state_t cfx_amqp_state(const cfx_amqp_t *a);
/* The last connection error ("" when none). */
const char *cfx_amqp_error(const cfx_amqp_t *a);
/* Messages the link takes now (0 unless connected). */
int cfx_amqp_credit(const cfx_amqp_t *a);
/* Send one durable message (body: JSON text, content type application/json). Its outcome comes
 * back through outcome_cb with `tag`, unless the connection drops first (then nothing comes:
 * the caller sends it again after the reconnect). 0, or -1 when not connected / no credit. */
int cfx_amqp_send(cfx_amqp_t *a, uint64_t tag, const char *message_id, const char *subject,
                  const char *body, size_t len);
/* Close the connection politely (pending writes flushed, bounded by a 2 s timer), then every
 * handle; closed_cb runs at the end. */
void cfx_amqp_close(cfx_amqp_t *a);
void cfx_amqp_free(cfx_amqp_t *a);

#endif
