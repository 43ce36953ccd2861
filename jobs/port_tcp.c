/* SPDX-License-Identifier: MIT */
/* port_tcp.c — raw TCP ports ("socket://host:port", as pyserial/esptool spell them) and the
 * connect machinery the RFC 2217 backend reuses: asynchronous name resolution, non-blocking
 * connect() tried address by address under one overall timeout, TCP_NODELAY, and one port of
 * this process per server endpoint (a TCP endpoint is one serial device).
 * Must not: block (no getaddrinfo on the loop thread), or pretend to drive modem lines. */
#include "port_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int port__tcp_prepare(port_t *p, const char *prefix)
{
    const char *s = p->spec + strlen(prefix);
    /* pyserial accepts "?option&..." after the address; none of them matter to us. */
    size_t len = strcspn(s, "?");
    const char *host = s, *colon;
    size_t host_len;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':') return UV_EINVAL;
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':') colon = s + i;
        if (!colon) return UV_EINVAL;
        host_len = (size_t)(colon - s);
        if (memchr(s, ':', host_len)) return UV_EINVAL; /* a bare IPv6 address needs brackets */
    }
    if (host_len == 0) return UV_EINVAL;
    const char *port = colon + 1;
    size_t port_len = (size_t)(s + len - port);
    if (port_len == 0 || port_len > 5) return UV_EINVAL;
    unsigned long v = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9') return UV_EINVAL;
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v == 0 || v > 65535) return UV_EINVAL;
    p->host = strndup(host, host_len);
    if (!p->host) return UV_ENOMEM;
    memcpy(p->service, port, port_len);
    p->service[port_len] = '\0';
    return 0;
}

/* ---- one port per endpoint ---------------------------------------------------------------
 * A device server port (ser2net, esp_rfc2217_server, espsim) carries one serial device: two
 * slots naming it differently (localhost and 127.0.0.1, socket:// and rfc2217://) must not run
 * two jobs on it. Ports of this process claim the resolved address they connect to; a second
 * claim of the same address and port fails with UV_EBUSY. Other processes are the server's
 * business (most accept one client). The list is shared by every loop, hence the mutex. */

static pthread_mutex_t port_claims_mu = PTHREAD_MUTEX_INITIALIZER;
static port_t *port_claims;

static bool port_same_endpoint(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* Claim `ai`'s endpoint for p (releasing p's previous claim): 0, or UV_EBUSY when another port
 * of this process has it. */
static int port_tcp_claim(port_t *p, const struct addrinfo *ai)
{
    if (ai->ai_addrlen > sizeof(p->claim_addr)) return 0; /* unknown family: nothing to compare */
    port__tcp_unclaim(p);
    pthread_mutex_lock(&port_claims_mu);
    for (port_t *q = port_claims; q; q = q->claim_next) {
        if (port_same_endpoint((const struct sockaddr *)&q->claim_addr, ai->ai_addr)) {
            pthread_mutex_unlock(&port_claims_mu);
            return UV_EBUSY;
        }
    }
    memcpy(&p->claim_addr, ai->ai_addr, ai->ai_addrlen);
    p->claim_len = ai->ai_addrlen;
    p->claimed = true;
    p->claim_prev = NULL;
    p->claim_next = port_claims;
    if (port_claims) port_claims->claim_prev = p;
    port_claims = p;
    pthread_mutex_unlock(&port_claims_mu);
    return 0;
}

void port__tcp_unclaim(port_t *p)
{
    if (!p->claimed) return;
    pthread_mutex_lock(&port_claims_mu);
    if (p->claim_prev)
        p->claim_prev->claim_next = p->claim_next;
    else
        port_claims = p->claim_next;
    if (p->claim_next) p->claim_next->claim_prev = p->claim_prev;
    p->claim_prev = p->claim_next = NULL;
    p->claimed = false;
    pthread_mutex_unlock(&port_claims_mu);
}

static void port_tcp_try_next(port_t *p);

static void port_tcp_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    port_t *p = container_of(req, port_t, gai);
    p->gai_busy = false;
    if (p->closing) {
        if (res) uv_freeaddrinfo(res);
        port__unref(p);
        return;
    }
    p->pending--; /* not the last: the timer is open while we are not closing */
    if (status < 0) {
        /* An unknown host name is "no such port" to the user. */
        port__open_done(p, status == UV_EAI_NONAME || status == UV_EAI_NODATA ? UV_ENOENT : status);
        return;
    }
    p->ai = p->ai_next = res;
    p->conn_err = UV_ECONNREFUSED;
    port_tcp_try_next(p);
}

void port__tcp_start(port_t *p)
{
    /* One deadline for resolution and every connect attempt together. */
    port__arm_timeout(p, PORT_CONNECT_TIMEOUT_MS);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = uv_getaddrinfo(p->loop, &p->gai, port_tcp_gai_cb, p->host, p->service, &hints);
    if (rc < 0) {
        port__open_done(p, rc);
        return;
    }
    p->gai_busy = true;
    p->pending++;
}

static void port_tcp_connected(port_t *p)
{
    int one = 1;
    /* Loader packets are small and latency-bound; Nagle would hold them back. */
    (void)setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->connecting = false;
    port__open_done(p, 0);
}

static void port_tcp_try_next(port_t *p)
{
    while (p->ai_next) {
        struct addrinfo *ai = p->ai_next;
        p->ai_next = ai->ai_next;
        if (port_tcp_claim(p, ai) < 0) {
            port__open_done(p, UV_EBUSY);
            return;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            p->conn_err = port__errno(errno);
            continue;
        }
        int r;
        do {
            r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        } while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EINPROGRESS) {
            p->conn_err = port__errno(errno);
            close(fd);
            port__tcp_unclaim(p);
            continue;
        }
        p->is_socket = true;
        p->connecting = (r < 0);
        int rc = port__poll_fd(p, fd);
        if (rc < 0) {
            if (!p->poll_inited) {
                close(fd);
                p->fd = -1;
            }
            p->connecting = false;
            port__open_done(p, rc);
            return;
        }
        if (!p->connecting) port_tcp_connected(p);
        return;
    }
    port__tcp_unclaim(p);
    port__open_done(p, p->conn_err);
}

void port__tcp_connect_ready(port_t *p, int status)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0 && status < 0) err = -status;
    if (err == 0) {
        port_tcp_connected(p);
        return;
    }
    /* This address failed: close its socket (after the poll handle) and try the next one. */
    p->conn_err = port__errno(err);
    p->connecting = false;
    port__poll_close(p);
}

void port__tcp_poll_closed(port_t *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    if (p->state == PORT_ST_OPENING) port_tcp_try_next(p);
}

void port__tcp_timeout(port_t *p)
{
    port__open_done(p, UV_ETIMEDOUT);
}

static int port_tcp_prepare(port_t *p)
{
    return port__tcp_prepare(p, "socket://");
}

static int port_tcp_set_baud(port_t *p, uint32_t baud)
{
    /* Raw TCP carries no line settings: the rate is only remembered (port_baud). */
    (void)p;
    (void)baud;
    return 0;
}

static void port_tcp_flush_input(port_t *p)
{
    port__drain_socket(p);
}

const port_ops_t port__tcp_ops = {
    .kind = PORT_KIND_TCP,
    .prepare = port_tcp_prepare,
    .start = port__tcp_start,
    .set_baud = port_tcp_set_baud,
    .set_lines = NULL, /* UV_ENOTSUP */
    .flush_input = port_tcp_flush_input,
};
