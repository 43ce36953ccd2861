/* SPDX-License-Identifier: MIT */
/* cfx_amqp.c — AMQP 1.0 sending link over Proton-C's connection driver on libuv (docs/CFX.md
 * "Transport"). Bytes from the socket go into the driver's read buffer, the driver's write
 * buffer goes out through uv_write (copied, so the driver may reuse it at once); the driver's
 * events are handled between the two. Proton's own idle-timeout ticks run on a uv timer.
 * Must not: block, start threads, or know what the messages mean. */
#include "cfx_amqp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/connection_driver.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/ssl.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#define AM_RBUF 65536
#define AM_CLOSE_GRACE_MS 2000

enum { AM_TCP_NONE, AM_TCP_OPEN, AM_TCP_CLOSING };

struct cfx_amqp_s {
    cfx_amqp_opts_t o;
    char *url, *address, *user, *password, *mechs, *ca, *cert, *key, *container;
    char host[256], port[8];
    bool tls;
    pn_ssl_domain_t *ssl;
    cfx_amqp_state_t state;
    char err[512];
    /* handles */
    uv_tcp_t tcp;
    int tcp_state;
    uv_timer_t timer; /* reconnect backoff, Proton ticks, the close grace period */
    uv_getaddrinfo_t gai;
    bool gai_busy;
    uv_connect_t creq;
    struct addrinfo *ai, *ai_next; /* the resolved addresses, tried in turn */
    bool try_next;                 /* when the failed socket is closed, try ai_next */
    int open_handles;
    /* the connection */
    bool started, have_drv, in_process, dead, closing, closed_cb_done, link_up;
    pn_connection_driver_t drv;
    pn_link_t *sender;
    unsigned failures; /* consecutive, for the backoff */
    uint64_t rng;
    char rbuf[AM_RBUF];
};

static const char *const am_state_names[] = {
#define XX(e, n) n,
    CFX_AMQP_STATE_MAP(XX)
#undef XX
};

const char *cfx_amqp_state_name(cfx_amqp_state_t s)
{
    return (unsigned)s < sizeof am_state_names / sizeof am_state_names[0] ? am_state_names[s] : "?";
}

static void am_process(cfx_amqp_t *a);
static void am_connect(cfx_amqp_t *a);

static void am_set_state(cfx_amqp_t *a, cfx_amqp_state_t st)
{
    if (a->state == st)
        return;
    a->state = st;
    if (a->o.state_cb)
        a->o.state_cb(a->o.ud, st, a->err);
}

static void am_seterr(cfx_amqp_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void am_seterr(cfx_amqp_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
}

/* The first error condition Proton reports wins (it is the cause; later ones are effects). */
static void am_condition(cfx_amqp_t *a, pn_condition_t *c, const char *what)
{
    if (a->err[0] || !c || !pn_condition_is_set(c))
        return;
    am_seterr(a, "%s: %s: %s", what, pn_condition_get_name(c),
              pn_condition_get_description(c) ? pn_condition_get_description(c) : "");
}

/* ---- options ---- */

static int am_parse_url(cfx_amqp_t *a, char *err, size_t errlen)
{
    const char *u = a->url, *h, *end, *colon;
    size_t hl;
    if (!strncmp(u, "amqps://", 8)) {
        a->tls = true;
        h = u + 8;
    } else if (!strncmp(u, "amqp://", 7)) {
        h = u + 7;
    } else {
        snprintf(err, errlen, "broker \"%s\": must start with amqp:// or amqps://", u);
        return -1;
    }
    if (strchr(h, '@')) {
        snprintf(err, errlen, "broker: no user or password in the URL; put them in the "
                              "credentials_file (readable only by the daemon)");
        return -1;
    }
    end = h + strcspn(h, "/?");
    if (*h == '[') { /* [::1]:5672 */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb) {
            snprintf(err, errlen, "broker \"%s\": unclosed [ in the host", u);
            return -1;
        }
        hl = (size_t)(rb - h - 1);
        memcpy(a->host, h + 1, hl < sizeof a->host ? hl : 0);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hl = (size_t)((colon ? colon : end) - h);
        if (hl >= sizeof a->host)
            hl = 0;
        memcpy(a->host, h, hl);
    }
    a->host[hl] = 0;
    snprintf(a->port, sizeof a->port, "%s", a->tls ? "5671" : "5672");
    if (colon) {
        size_t pl = (size_t)(end - colon - 1);
        char *e;
        long p;
        char tmp[8] = "";
        if (pl == 0 || pl >= sizeof tmp) {
            snprintf(err, errlen, "broker \"%s\": the port must be 1 to 65535", u);
            return -1;
        }
        memcpy(tmp, colon + 1, pl);
        p = strtol(tmp, &e, 10);
        if (*e || p < 1 || p > 65535) {
            snprintf(err, errlen, "broker \"%s\": the port must be 1 to 65535", u);
            return -1;
        }
        snprintf(a->port, sizeof a->port, "%ld", p);
    }
    if (!a->host[0]) {
        snprintf(err, errlen, "broker \"%s\": no host", u);
        return -1;
    }
    return 0;
}

static int am_tls_setup(cfx_amqp_t *a, char *err, size_t errlen)
{
    if (!a->tls)
        return 0;
    if (!a->ca) {
        snprintf(err, errlen, "broker amqps://: set tls.ca_file (the CA that signed the broker's "
                              "certificate)");
        return -1;
    }
    a->ssl = pn_ssl_domain(PN_SSL_MODE_CLIENT);
    if (!a->ssl) {
        snprintf(err, errlen, "TLS is not available in this Proton build");
        return -1;
    }
    if (pn_ssl_domain_set_trusted_ca_db(a->ssl, a->ca) != 0 ||
        pn_ssl_domain_set_peer_authentication(a->ssl, PN_SSL_VERIFY_PEER_NAME, NULL) != 0) {
        snprintf(err, errlen, "tls.ca_file %s: cannot be loaded as a CA (PEM)", a->ca);
        return -1;
    }
    if (a->cert && pn_ssl_domain_set_credentials(a->ssl, a->cert, a->key, NULL) != 0) {
        snprintf(err, errlen, "tls.cert_file %s / tls.key_file %s: cannot be loaded (PEM, "
                              "unencrypted key)", a->cert, a->key ? a->key : "(none)");
        return -1;
    }
    return 0;
}

static char *am_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int cfx_amqp_new(const cfx_amqp_opts_t *o, cfx_amqp_t **out, char *err, size_t errlen)
{
    cfx_amqp_t *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->o = *o;
    a->url = am_dup(o->url);
    a->address = am_dup(o->address);
    a->user = am_dup(o->user);
    a->password = am_dup(o->password);
    a->mechs = am_dup(o->mechs);
    a->ca = am_dup(o->ca_file);
    a->cert = am_dup(o->cert_file);
    a->key = am_dup(o->key_file);
    a->container = am_dup(o->container_id ? o->container_id : "espstation");
    if (!a->o.backoff_min_ms)
        a->o.backoff_min_ms = 1000;
    if (!a->o.backoff_max_ms)
        a->o.backoff_max_ms = 60000;
    a->rng = uv_hrtime() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)a;
    a->state = CFX_AMQP_DISCONNECTED;
    if (!a->url || !a->address || am_parse_url(a, err, errlen) != 0 ||
        am_tls_setup(a, err, errlen) != 0) {
        if (!a->url || !a->address)
            snprintf(err, errlen, "broker URL and address are required");
        cfx_amqp_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

cfx_amqp_state_t cfx_amqp_state(const cfx_amqp_t *a)
{
    return a->state;
}

const char *cfx_amqp_error(const cfx_amqp_t *a)
{
    return a->err;
}

/* ---- handles ---- */

static void am_try_next(cfx_amqp_t *a);

static void am_handle_closed(uv_handle_t *h)
{
    cfx_amqp_t *a = h->data;
    if (h == (uv_handle_t *)&a->tcp) {
        a->tcp_state = AM_TCP_NONE;
        if (a->try_next && !a->closing) {
            a->try_next = false;
            am_try_next(a); /* the handle it needs is free again */
        }
    }
    if (--a->open_handles == 0 && a->closing && !a->closed_cb_done) {
        a->closed_cb_done = true;
        am_set_state(a, CFX_AMQP_CLOSED);
        if (a->o.closed_cb)
            a->o.closed_cb(a->o.ud);
    }
}

static void am_close_tcp(cfx_amqp_t *a)
{
    if (a->tcp_state != AM_TCP_OPEN)
        return;
    a->tcp_state = AM_TCP_CLOSING;
    uv_close((uv_handle_t *)&a->tcp, am_handle_closed);
}

static void am_drop_driver(cfx_amqp_t *a)
{
    if (!a->have_drv)
        return;
    pn_connection_driver_destroy(&a->drv);
    a->have_drv = false;
    a->sender = NULL;
    a->link_up = false;
}

/* ---- reconnect ---- */

static uint32_t am_backoff_ms(cfx_amqp_t *a)
{
    uint64_t d = a->o.backoff_min_ms;
    for (unsigned i = 1; i < a->failures && d < a->o.backoff_max_ms; i++)
        d *= 2;
    if (d > a->o.backoff_max_ms)
        d = a->o.backoff_max_ms;
    a->rng ^= a->rng << 13; /* xorshift: jitter only, not security */
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return (uint32_t)(d * 3 / 4 + a->rng % (d / 2 + 1)); /* d ± 25 % */
}

static void am_timer_reconnect(uv_timer_t *t)
{
    cfx_amqp_t *a = t->data;
    if (a->closing)
        return;
    if (a->tcp_state != AM_TCP_NONE || a->gai_busy) { /* the old socket is still closing */
        uv_timer_start(&a->timer, am_timer_reconnect, 50, 0);
        return;
    }
    am_connect(a);
}

/* The connection is gone (refused, lost, closed by the peer): say why, try again later. */
static void am_fail(cfx_amqp_t *a)
{
    am_drop_driver(a);
    am_close_tcp(a);
    if (a->closing) {
        uv_timer_stop(&a->timer);
        if (!uv_is_closing((uv_handle_t *)&a->timer))
            uv_close((uv_handle_t *)&a->timer, am_handle_closed);
        return;
    }
    if (!a->err[0])
        am_seterr(a, "the connection was closed");
    a->failures++;
    am_set_state(a, CFX_AMQP_DISCONNECTED);
    uv_timer_start(&a->timer, am_timer_reconnect, am_backoff_ms(a), 0);
}

/* ---- the driver ---- */

static void am_write_cb(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a read error / EOF */
    free(w);
}

static void am_flush(cfx_amqp_t *a)
{
    for (;;) {
        pn_bytes_t b = pn_connection_driver_write_buffer(&a->drv);
        uv_write_t *w;
        uv_buf_t ub;
        if (!b.size)
            return;
        if (a->tcp_state != AM_TCP_OPEN) {
            pn_connection_driver_write_close(&a->drv);
            return;
        }
        w = malloc(sizeof *w + b.size);
        if (!w) {
            pn_connection_driver_errorf(&a->drv, "amqp:internal-error", "out of memory");
            pn_connection_driver_close(&a->drv);
            return;
        }
        memcpy(w + 1, b.start, b.size);
        ub = uv_buf_init((char *)(w + 1), (unsigned)b.size);
        if (uv_write(w, (uv_stream_t *)&a->tcp, &ub, 1, am_write_cb) != 0) {
            free(w);
            pn_connection_driver_write_close(&a->drv);
            return;
        }
        pn_connection_driver_write_done(&a->drv, b.size);
    }
}

static uint64_t am_tag(pn_delivery_t *d)
{
    pn_delivery_tag_t t = pn_delivery_tag(d);
    uint64_t v = 0;
    memcpy(&v, t.start, t.size < sizeof v ? t.size : sizeof v);
    return v;
}

static void am_delivery(cfx_amqp_t *a, pn_delivery_t *d)
{
    uint64_t st;
    cfx_outcome_t o;
    char why[300] = "";
    if (pn_link_is_receiver(pn_delivery_link(d)) || !pn_delivery_updated(d))
        return;
    st = pn_delivery_remote_state(d);
    if (!st && !pn_delivery_settled(d))
        return;
    o = st == PN_ACCEPTED ? CFX_OUT_ACCEPTED : st == PN_REJECTED ? CFX_OUT_REJECTED
                                                                 : CFX_OUT_RELEASED;
    if (o == CFX_OUT_REJECTED) {
        pn_condition_t *c = pn_disposition_condition(pn_delivery_remote(d));
        snprintf(why, sizeof why, "rejected by the broker%s%s", c && pn_condition_is_set(c) ? ": " : "",
                 c && pn_condition_is_set(c) && pn_condition_get_description(c)
                     ? pn_condition_get_description(c)
                     : "");
    }
    if (a->o.outcome_cb)
        a->o.outcome_cb(a->o.ud, am_tag(d), o, why);
    pn_delivery_settle(d);
}

static void am_event(cfx_amqp_t *a, pn_event_t *e)
{
    switch (pn_event_type(e)) {
    case PN_LINK_REMOTE_OPEN:
        if (pn_event_link(e) == a->sender && !a->link_up) {
            a->link_up = true;
            a->failures = 0;
            a->err[0] = 0;
            am_set_state(a, CFX_AMQP_CONNECTED);
        }
        break;
    case PN_LINK_FLOW:
        if (a->link_up && pn_link_credit(a->sender) > 0 && a->o.credit_cb)
            a->o.credit_cb(a->o.ud);
        break;
    case PN_DELIVERY:
        am_delivery(a, pn_event_delivery(e));
        break;
    case PN_LINK_REMOTE_CLOSE:
        am_condition(a, pn_link_remote_condition(pn_event_link(e)), "the broker closed the link");
        pn_connection_close(pn_event_connection(e));
        break;
    case PN_SESSION_REMOTE_CLOSE:
        am_condition(a, pn_session_remote_condition(pn_event_session(e)), "session closed");
        pn_connection_close(pn_event_connection(e));
        break;
    case PN_CONNECTION_REMOTE_CLOSE:
        am_condition(a, pn_connection_remote_condition(pn_event_connection(e)),
                     "the broker closed the connection");
        pn_connection_close(pn_event_connection(e));
        break;
    case PN_TRANSPORT_ERROR:
        am_condition(a, pn_transport_condition(pn_event_transport(e)), "transport");
        break;
    case PN_TRANSPORT_CLOSED:
        am_condition(a, pn_transport_condition(pn_event_transport(e)), "transport");
        a->dead = true;
        break;
    default:
        break;
    }
}

static void am_timer_tick(uv_timer_t *t)
{
    cfx_amqp_t *a = t->data;
    if (!a->have_drv)
        return;
    if (a->closing) { /* the grace period is over */
        pn_connection_driver_read_close(&a->drv);
        pn_connection_driver_write_close(&a->drv);
    }
    am_process(a);
}

static void am_process(cfx_amqp_t *a)
{
    pn_event_t *e;
    int64_t next, now;
    if (!a->have_drv || a->in_process)
        return;
    /* Proton's timers first (idle timeout, our empty frames): their output goes out below */
    now = (int64_t)uv_now(a->o.loop);
    next = pn_transport_tick(a->drv.transport, now);
    a->in_process = true;
    do {
        while (!a->dead && (e = pn_connection_driver_next_event(&a->drv)))
            am_event(a, e);
        if (!a->dead)
            am_flush(a);
    } while (!a->dead && pn_connection_driver_has_event(&a->drv));
    a->in_process = false;
    if (a->dead || pn_connection_driver_finished(&a->drv)) {
        a->dead = false;
        am_fail(a);
        return;
    }
    if (a->closing)
        return; /* the grace timer runs */
    if (next > now)
        uv_timer_start(&a->timer, am_timer_tick, (uint64_t)(next - now), 0);
    else if (next)
        uv_timer_start(&a->timer, am_timer_tick, 1, 0);
}

/* ---- connecting ---- */

static void am_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cfx_amqp_t *a = h->data;
    (void)suggested;
    *buf = uv_buf_init(a->rbuf, sizeof a->rbuf);
}

static void am_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    cfx_amqp_t *a = s->data;
    size_t off = 0;
    if (!a->have_drv)
        return;
    if (n < 0) {
        if (!a->err[0] && n != UV_EOF)
            am_seterr(a, "connection to %s:%s: %s", a->host, a->port, uv_strerror((int)n));
        else if (!a->err[0] && !a->closing)
            am_seterr(a, "the broker %s:%s closed the connection", a->host, a->port);
        pn_connection_driver_read_close(&a->drv);
        pn_connection_driver_write_close(&a->drv);
        am_process(a);
        return;
    }
    while (off < (size_t)n && a->have_drv) {
        pn_rwbytes_t rb = pn_connection_driver_read_buffer(&a->drv);
        size_t k = (size_t)n - off < rb.size ? (size_t)n - off : rb.size;
        if (k == 0)
            break; /* the transport takes no more input (it is closing) */
        memcpy(rb.start, buf->base + off, k);
        pn_connection_driver_read_done(&a->drv, k);
        off += k;
        am_process(a);
    }
}

/* A fresh Proton connection for the new socket: SASL, TLS, the session and the sending link. */
static int am_driver_setup(cfx_amqp_t *a)
{
    pn_transport_t *t;
    pn_connection_t *c;
    pn_session_t *ss;
    pn_sasl_t *sasl;
    const char *mechs = a->mechs;
    if (pn_connection_driver_init(&a->drv, NULL, NULL) != 0)
        return -1;
    a->have_drv = true;
    t = a->drv.transport;
    c = a->drv.connection;
    if (a->o.idle_timeout_ms)
        pn_transport_set_idle_timeout(t, a->o.idle_timeout_ms);
    if (a->tls) {
        pn_ssl_t *ssl = pn_ssl(t);
        if (!ssl || pn_ssl_init(ssl, a->ssl, NULL) != 0)
            return -1;
        pn_ssl_set_peer_hostname(ssl, a->host);
    }
    sasl = pn_sasl(t);
    if (!mechs)
        mechs = a->user ? "PLAIN" : a->cert ? "EXTERNAL" : "ANONYMOUS";
    pn_sasl_allowed_mechs(sasl, mechs);
    /* PLAIN without TLS sends the password in clear: allowed because the config asked for it
     * (docs/CFX.md "Security" says to use amqps:// off a trusted network) */
    pn_sasl_set_allow_insecure_mechs(sasl, true);
    pn_connection_set_container(c, a->container);
    pn_connection_set_hostname(c, a->host);
    if (a->user) {
        pn_connection_set_user(c, a->user);
        pn_connection_set_password(c, a->password ? a->password : "");
    }
    pn_connection_open(c);
    ss = pn_session(c);
    pn_session_open(ss);
    a->sender = pn_sender(ss, "espstation-cfx");
    pn_terminus_set_address(pn_link_target(a->sender), a->address);
    pn_terminus_set_durability(pn_link_target(a->sender), PN_DELIVERIES);
    pn_link_set_snd_settle_mode(a->sender, PN_SND_UNSETTLED);
    pn_link_open(a->sender);
    return 0;
}

static void am_connect_cb(uv_connect_t *req, int status)
{
    cfx_amqp_t *a = req->data;
    if (a->closing) {
        am_close_tcp(a);
        return;
    }
    if (status < 0) {
        am_seterr(a, "cannot connect to %s:%s: %s", a->host, a->port, uv_strerror(status));
        if (a->ai_next) { /* another address of the host (e.g. 127.0.0.1 after ::1) */
            a->try_next = true;
            am_close_tcp(a);
            return;
        }
        uv_freeaddrinfo(a->ai);
        a->ai = NULL;
        am_fail(a);
        return;
    }
    uv_freeaddrinfo(a->ai);
    a->ai = a->ai_next = NULL;
    a->err[0] = 0;
    uv_tcp_nodelay(&a->tcp, 1);
    if (am_driver_setup(a) != 0) {
        am_seterr(a, "cannot set up the AMQP connection (TLS or memory)");
        am_fail(a);
        return;
    }
    uv_read_start((uv_stream_t *)&a->tcp, am_alloc_cb, am_read_cb);
    am_process(a);
}

static void am_try_next(cfx_amqp_t *a)
{
    struct addrinfo *ai = a->ai_next;
    int rc;
    if (!ai) {
        uv_freeaddrinfo(a->ai);
        a->ai = NULL;
        am_fail(a);
        return;
    }
    a->ai_next = ai->ai_next;
    uv_tcp_init(a->o.loop, &a->tcp);
    a->tcp.data = a;
    a->tcp_state = AM_TCP_OPEN;
    a->open_handles++;
    a->creq.data = a;
    rc = uv_tcp_connect(&a->creq, &a->tcp, ai->ai_addr, am_connect_cb);
    if (rc != 0) {
        am_seterr(a, "cannot connect to %s:%s: %s", a->host, a->port, uv_strerror(rc));
        a->try_next = a->ai_next != NULL;
        if (!a->try_next) {
            uv_freeaddrinfo(a->ai);
            a->ai = NULL;
            am_fail(a);
            return;
        }
        am_close_tcp(a);
    }
}

static void am_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    cfx_amqp_t *a = req->data;
    a->gai_busy = false;
    if (a->closing) {
        uv_freeaddrinfo(res);
        uv_close((uv_handle_t *)&a->timer, am_handle_closed);
        return;
    }
    if (status < 0 || !res) {
        am_seterr(a, "cannot resolve %s: %s", a->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        am_fail(a);
        return;
    }
    a->ai = a->ai_next = res;
    am_try_next(a);
}

static void am_connect(cfx_amqp_t *a)
{
    struct addrinfo hints;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    am_set_state(a, CFX_AMQP_CONNECTING);
    a->gai.data = a;
    a->gai_busy = true;
    rc = uv_getaddrinfo(a->o.loop, &a->gai, am_gai_cb, a->host, a->port, &hints);
    if (rc != 0) {
        a->gai_busy = false;
        am_seterr(a, "cannot resolve %s: %s", a->host, uv_strerror(rc));
        am_fail(a);
    }
}

void cfx_amqp_start(cfx_amqp_t *a)
{
    if (a->started || a->closing)
        return;
    a->started = true;
    uv_timer_init(a->o.loop, &a->timer);
    a->timer.data = a;
    a->open_handles = 1;
    am_connect(a);
}

int cfx_amqp_credit(const cfx_amqp_t *a)
{
    if (!a->have_drv || !a->link_up || a->closing)
        return 0;
    return pn_link_credit(a->sender);
}

int cfx_amqp_send(cfx_amqp_t *a, uint64_t tag, const char *message_id, const char *subject,
                  const char *body, size_t len)
{
    pn_message_t *m;
    pn_delivery_t *d;
    ssize_t n;
    if (cfx_amqp_credit(a) <= 0)
        return -1;
    m = pn_message();
    if (!m)
        return -1;
    pn_message_set_durable(m, true);
    pn_message_set_id(m, (pn_atom_t){.type = PN_STRING,
                                     .u.as_bytes = pn_bytes(strlen(message_id), message_id)});
    if (subject)
        pn_message_set_subject(m, subject);
    pn_message_set_content_type(m, "application/json; charset=\"utf-8\"");
    pn_data_put_binary(pn_message_body(m), pn_bytes(len, body));
    d = pn_delivery(a->sender, pn_dtag((const char *)&tag, sizeof tag));
    n = pn_message_send(m, a->sender, NULL);
    pn_message_free(m);
    if (n < 0) {
        if (d)
            pn_delivery_settle(d);
        return -1;
    }
    am_process(a); /* no-op inside an event: the outer loop flushes */
    return 0;
}

void cfx_amqp_close(cfx_amqp_t *a)
{
    if (a->closing)
        return;
    a->closing = true;
    if (!a->started) { /* no handle was ever opened */
        a->closed_cb_done = true;
        am_set_state(a, CFX_AMQP_CLOSED);
        if (a->o.closed_cb)
            a->o.closed_cb(a->o.ud);
        return;
    }
    uv_timer_stop(&a->timer);
    if (a->have_drv) {
        pn_connection_close(a->drv.connection);
        am_process(a);
        if (a->have_drv) { /* give the close frames AM_CLOSE_GRACE_MS to leave */
            uv_timer_start(&a->timer, am_timer_tick, AM_CLOSE_GRACE_MS, 0);
            return;
        }
        return; /* am_fail closed everything */
    }
    am_close_tcp(a);
    if (!a->gai_busy && !uv_is_closing((uv_handle_t *)&a->timer))
        uv_close((uv_handle_t *)&a->timer, am_handle_closed);
}

void cfx_amqp_free(cfx_amqp_t *a)
{
    if (!a)
        return;
    am_drop_driver(a);
    if (a->ai)
        uv_freeaddrinfo(a->ai);
    if (a->ssl)
        pn_ssl_domain_free(a->ssl);
    free(a->url);
    free(a->address);
    if (a->password)
        memset(a->password, 0, strlen(a->password));
    free(a->user);
    free(a->password);
    free(a->mechs);
    free(a->ca);
    free(a->cert);
    free(a->key);
    free(a->container);
    free(a);
}
