/* SPDX-License-Identifier: MIT */
/* port_tcp.c — raw TCP ports ("socket://host:port", as pyserial/esptool spell them) and the
 * connect machinery the RFC 2217 backend reuses: asynchronous name resolution, non-blocking
 * connect() tried address by address under one overall timeout, TCP_NODELAY.
 * Must not: block (no getaddrinfo on the loop thread), or pretend to drive modem lines. */
#include "port_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
