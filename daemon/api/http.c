/* SPDX-License-Identifier: MIT */
/* http.c — h2o glue: a TCP listener on the daemon's libuv loop, one h2o context, a handler that
 * turns h2o requests into api_req_t and api_resp_t into responses (buffered, streamed CSV,
 * server-sent events, deferred work on the thread pool). Connection count, idle timeout, event
 * stream keep-alives and slow-client drops, a clean stop.
 * Must not: block the loop or decide what an endpoint answers (api.c). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define H2O_USE_LIBUV 1
#include <h2o.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define HTTP_TICK_MS 1000 /* event streams: closed peers noticed, keep-alives counted */
#define HTTP_HEAD_PEEK (24u * 1024u) /* header bytes looked at before h2o reads them */
#define HTTP_MAX_HEADER_LINES 100   /* h2o's H2O_MAX_HEADERS: more are answered here */
#define HTTP_LOG_EVERY_MS 60000     /* "not HTTP" logged at most once a minute */

/* picohttpparser, as built into libh2o (h2o parses requests with it; the header is not
 * installed). The same call h2o makes, so both see one request the same way. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

typedef struct http_conn_s http_conn_t;
typedef struct http_sse_s http_sse_t;

struct http_conn_s {
    uv_tcp_t tcp; /* first: h2o closes it and hands it back to http_conn_closed */
    http_t *h;
    h2o_socket_t *sock;
    http_conn_t *prev, *next;
    bool shut;
    bool reserve;       /* one of the reserved connections: operator/engineer requests only */
    bool evicted;       /* closed to make room (it had sent nothing) */
    bool head_done;     /* the current request's headers are complete (checked here) */
    uint64_t head_since; /* uv_now when its first bytes were seen; 0 = none pending */
    uint64_t body_limit; /* its body limit (api_early), h2o's for this connection's reads */
    char addr[INET6_ADDRSTRLEN]; /* the client's address */
};

struct http_sse_s {
    h2o_generator_t gen; /* first */
    http_t *h;
    h2o_req_t *req;
    events_client_t *client;
    char *inflight;
    uint64_t sent_at; /* uv_now when the in-flight chunk was handed to h2o */
    bool sending, ending, ended, stopped;
    http_sse_t *prev, *next;
};

typedef struct http_csv_s {
    h2o_generator_t gen; /* first */
    http_t *h;
    h2o_req_t *req;
    api_stream_t *stream;
    char *inflight;
    bool last;
    struct http_csv_s *prev, *next;
} http_csv_t;

/* A request whose answer is computed on the thread pool. */
typedef struct http_work_s {
    uv_work_t work;
    http_t *h;
    h2o_req_t *req;               /* NULL once h2o disposed the request (client gone) */
    struct http_work_s **backref; /* in the request's pool: cleared by the pool's dispose */
    api_resp_t resp;
} http_work_t;

typedef struct http_handler_s {
    h2o_handler_t super;
    http_t *h;
} http_handler_t;

struct http_s {
    uv_loop_t *loop;
    api_t *api;
    http_cfg_t cfg;
    h2o_globalconf_t gconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    bool ctx_init;
    uv_tcp_t listener;
    bool listening, listener_closing;
    uv_timer_t keepalive;
    bool keepalive_open;
    unsigned ticks;
    char url[96];
    http_conn_t *conns;
    size_t n_conns, n_refused, n_work, n_csv, n_reserve, reserve_max, n_evicted;
    void (*orig_io)(uv_loop_t *loop, struct uv__io_s *w, unsigned int events);
    char head[HTTP_HEAD_PEEK];
    uint64_t garbage_logged_at;
    unsigned garbage_unlogged;
    http_sse_t *sses;
    http_csv_t *csvs;
    bool stopping, stopped;
    void (*done_cb)(http_t *h, void *data);
    void *done_data;
};

static void http_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void http_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("espstation: http: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void http_maybe_done(http_t *h);

/* ---- connections ---- */

static http_conn_t *http_conn_of(http_t *h, h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    for (http_conn_t *c = h->conns; c && sock; c = c->next)
        if (c->sock == sock) return c;
    return NULL;
}

/* Make h2o close a connection: both directions shut, its pending read or write fails. */
static void http_conn_shut(http_conn_t *c)
{
    uv_os_fd_t fd;
    if (!c || c->shut) return;
    c->shut = true;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) shutdown(fd, SHUT_RDWR);
}

static void http_conn_closed(uv_handle_t *hd)
{
    http_conn_t *c = (http_conn_t *)hd;
    http_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    h->n_conns--;
    h->n_reserve -= c->reserve;
    h->n_evicted -= c->evicted;
    free(c);
    http_maybe_done(h);
}

/* Read and drop what the peer has sent so far (bounded), so that closing does not reset the
 * connection before it has read an answer. */
static void http_drain(uv_os_fd_t fd)
{
    char sink[4096];
    for (int i = 0; i < 64 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++) {
    }
}

/* A problem+json answer written straight to the socket, then both directions shut: for
 * connections h2o does not own (refused) or whose request h2o must not see (answered from
 * the headers). uv_try_write: a few hundred bytes fit in any socket buffer. */
static void http_answer_close(http_t *h, uv_tcp_t *tcp, int status, const char *code,
                              const char *detail)
{
    char head[320], *body;
    size_t blen;
    uv_buf_t bufs[2];
    uv_os_fd_t fd;
    body = api_problem_text(status, code, detail, &blen);
    snprintf(head, sizeof head,
             "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
             status, api_status_text(status), body ? blen : 0,
             status == 503 ? "Retry-After: 1\r\n" : "");
    bufs[0] = uv_buf_init(head, (unsigned)strlen(head));
    bufs[1] = uv_buf_init(body ? body : "", body ? (unsigned)blen : 0);
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) http_drain(fd);
    uv_try_write((uv_stream_t *)tcp, bufs, 2);
    free(body);
    api_count_status(h->api, status);
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) shutdown(fd, SHUT_RDWR);
}

static void http_refused_closed(uv_handle_t *hd)
{
    http_t *h = hd->data;
    free(hd);
    h->n_refused--;
    http_maybe_done(h);
}

static void http_free_closed(uv_handle_t *hd)
{
    free(hd);
}

/* Connections of one client address (and how many of them are in the reserve). */
static size_t http_count_addr(const http_t *h, const char *addr, size_t *in_reserve)
{
    size_t n = 0;
    *in_reserve = 0;
    for (const http_conn_t *c = h->conns; c; c = c->next)
        if (!c->evicted && !strcmp(c->addr, addr)) {
            n++;
            *in_reserve += c->reserve;
        }
    return n;
}

static void http_peer_addr(uv_tcp_t *tcp, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(out, outlen, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, outlen);
    else if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, out, outlen);
}

/* Make room for a new connection: the oldest connection that never sent a byte (a flood's;
 * every real client sends its request at once) is answered 503 and closed. */
static bool http_evict_silent(http_t *h, bool reserve)
{
    http_conn_t *victim = NULL;
    if (h->n_evicted >= 16) return false; /* closing ones still hold their descriptors */
    for (http_conn_t *c = h->conns; c; c = c->next) /* newest first: the last match is oldest */
        if (!c->shut && !c->evicted && c->reserve == reserve && c->sock &&
            c->sock->bytes_read == 0 && !c->head_since)
            victim = c;
    if (!victim) return false;
    http_answer_close(h, &victim->tcp, 503, "too_many_connections",
                      "closed to make room: this connection had sent nothing");
    victim->shut = victim->evicted = true;
    h->n_evicted++;
    return true;
}

/* May a new connection from `addr` be served, and in the reserve? NULL = yes (*reserve says
 * where), else why not (the 503's detail). docs/API.md "Limits". */
static const char *http_admit(http_t *h, const char *addr, bool *reserve)
{
    size_t in_res, per = http_count_addr(h, addr, &in_res);
    size_t plain_max = h->cfg.max_connections - h->reserve_max;
    size_t live = h->n_conns - h->n_evicted;
    *reserve = false;
    if (h->stopping) return "the station is stopping";
    if (per - in_res < h->cfg.max_connections_per_client) {
        if (live - h->n_reserve < plain_max) return NULL;
        if (http_evict_silent(h, false)) return NULL;
    }
    if (h->n_reserve < h->reserve_max || http_evict_silent(h, true)) {
        *reserve = true; /* its requests must come with an operator or engineer token */
        return NULL;
    }
    return per - in_res >= h->cfg.max_connections_per_client
               ? "this client address has http.max_connections_per_client connections open; "
                 "close some or try again later"
               : "the station serves at most http.max_connections connections; try again later";
}

static void http_io_hook(uv_loop_t *loop, struct uv__io_s *w, unsigned int events);

static void http_on_accept(uv_stream_t *listener, int status)
{
    http_t *h = listener->data;
    http_conn_t *c;
    const char *why;
    bool reserve;
    if (status != 0) return;
    c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(h->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, http_free_closed);
        return;
    }
    http_peer_addr(&c->tcp, c->addr, sizeof c->addr);
    why = http_admit(h, c->addr, &reserve);
    if (why) {
        /* refused: answered and closed at once, so a flood cannot pile up descriptors */
        http_answer_close(h, &c->tcp, 503, "too_many_connections", why);
        c->tcp.data = h;
        h->n_refused++;
        uv_close((uv_handle_t *)&c->tcp, http_refused_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->h = h;
    c->reserve = reserve;
    h->n_reserve += reserve;
    c->body_limit = h->cfg.max_body_bytes;
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, http_conn_closed);
    h2o_accept(&h->accept_ctx, c->sock);
    /* every read of this connection passes http_io_hook first (see there) */
    if (!h->orig_io) h->orig_io = c->tcp.io_watcher.cb;
    c->tcp.io_watcher.cb = http_io_hook;
}

/* ---- a request's headers, before h2o reads them ---- */

/* h2o (2.2) reads a whole request body before any handler runs, up to the one
 * max_request_entity_size of its global config, and answers some malformed requests itself in
 * plain text. So every read of a connection passes here first (the connection's libuv I/O
 * callback is wrapped): while a request's headers are arriving, what h2o has buffered plus
 * what the socket holds (MSG_PEEK) is parsed as h2o will parse it; a request that must not go
 * further is answered here and closed; otherwise the route and the token decide the body limit
 * (api_early), which h2o then applies to this read (it checks Content-Length against it from the
 * headers: a large body is refused before it is read). Outside these reads the limit is
 * max_body_bytes. Everything runs on the loop thread, so the global is this connection's for
 * the length of the call. */

static void http_log_garbage(http_t *h, const http_conn_t *c)
{
    uint64_t now = uv_now(h->loop);
    if (h->garbage_logged_at && now - h->garbage_logged_at < HTTP_LOG_EVERY_MS) {
        h->garbage_unlogged++;
        return;
    }
    if (h->garbage_unlogged)
        http_log("a client at %s sent something that is not HTTP (answered 400 and closed; %u "
                 "more such connections in the last minute)",
                 c->addr, h->garbage_unlogged);
    else
        http_log("a client at %s sent something that is not HTTP (answered 400 and closed; "
                 "more are logged at most once a minute)",
                 c->addr);
    h->garbage_logged_at = now;
    h->garbage_unlogged = 0;
}

static bool http_hdr_is(const struct phr_header *hd, const char *name)
{
    return hd->name_len == strlen(name) && !strncasecmp(hd->name, name, hd->name_len);
}

/* Check the request whose headers are arriving on `c`: false when it was answered here. */
static bool http_head_check(http_conn_t *c)
{
    http_t *h = c->h;
    h2o_buffer_t *in = c->sock ? c->sock->input : NULL;
    size_t have = in ? in->size : 0, nh = HTTP_MAX_HEADER_LINES + 64, n_cl = 0, n_te = 0;
    struct phr_header hd[HTTP_MAX_HEADER_LINES + 64];
    const char *method, *path;
    size_t mlen, plen;
    int minor, ret;
    ssize_t got;
    uv_os_fd_t fd;
    api_req_t ar;
    api_early_t early;

    if (have >= sizeof h->head || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return true;
    if (have) memcpy(h->head, in->bytes, have);
    got = recv(fd, h->head + have, sizeof h->head - have, MSG_PEEK | MSG_DONTWAIT);
    if (got > 0) have += (size_t)got;
    if (!have) return true;
    if (!c->head_since) c->head_since = uv_now(h->loop);
    ret = phr_parse_request(h->head, have, &method, &mlen, &path, &plen, &minor, hd, &nh, 0);
    if (ret == -2) return true; /* incomplete: h2o's limits and the header deadline apply */
    if (ret == -1) {
        /* "GET /x HTTP/1.1" then lines h2o cannot take (too many or malformed), or not HTTP */
        const char *sp = memchr(h->head, ' ', have < 32 ? have : 32);
        bool http_like = sp && memmem(h->head, have, " HTTP/1.", 8) != NULL;
        if (http_like)
            http_answer_close(h, &c->tcp, 431, "header_too_large",
                              "the request has malformed header lines or more than "
                              "100 of them");
        else {
            http_log_garbage(h, c);
            http_answer_close(h, &c->tcp, 400, "bad_request", "this is an HTTP server");
        }
        c->shut = true;
        return false;
    }
    c->head_done = true;
    if (nh > HTTP_MAX_HEADER_LINES) {
        http_answer_close(h, &c->tcp, 431, "header_too_large",
                          "the request has more than 100 header lines");
        c->shut = true;
        return false;
    }
    for (size_t i = 0; i < nh; i++) {
        n_cl += hd[i].name && http_hdr_is(&hd[i], "content-length");
        n_te += hd[i].name && http_hdr_is(&hd[i], "transfer-encoding");
    }
    if (n_cl > 1 || (n_cl && n_te)) {
        /* RFC 9112 §6.3: the body's length would be ambiguous (request smuggling); §6.1: a
         * request with both must be handled as an error and the connection closed */
        http_answer_close(h, &c->tcp, 400, "bad_request",
                          n_cl > 1 ? "more than one Content-Length header (RFC 9112 §6.3)"
                                   : "both Content-Length and Transfer-Encoding (RFC 9112 "
                                     "§6.1); the connection is closed");
        c->shut = true;
        return false;
    }
    memset(&ar, 0, sizeof ar);
    ar.method = method;
    ar.method_len = mlen;
    ar.target = path;
    ar.target_len = plen;
    for (size_t i = 0; i < nh; i++)
        if (hd[i].name && http_hdr_is(&hd[i], "authorization")) {
            ar.authorization = hd[i].value;
            ar.authorization_len = hd[i].value_len;
        }
    api_early(h->api, &ar, &early);
    c->body_limit = early.body_limit;
    return true;
}

static void http_io_hook(uv_loop_t *loop, struct uv__io_s *w, unsigned int events)
{
    http_conn_t *c = container_of(w, http_conn_t, tcp.io_watcher);
    http_t *h = c->h;
    if ((events & (POLLIN | POLLHUP | POLLERR)) && !c->shut && !c->head_done)
        http_head_check(c);
    h->gconf.max_request_entity_size = (size_t)c->body_limit;
    h->orig_io(loop, w, events);
    h->gconf.max_request_entity_size = (size_t)h->cfg.max_body_bytes;
}

/* The request of `c` is over (answered, or the connection is closing): the next one's headers
 * are checked again. A pool object of the request, disposed with it. */
typedef struct http_req_mark_s {
    http_t *h;
    h2o_socket_t *sock;
} http_req_mark_t;

static void http_req_mark_dispose(void *p)
{
    http_req_mark_t *m = p;
    for (http_conn_t *c = m->h->conns; c; c = c->next)
        if (c->sock == m->sock) {
            c->head_done = false;
            c->head_since = 0;
            c->body_limit = m->h->cfg.max_body_bytes;
        }
}

/* Host header (DNS rebinding, docs/API.md "Limits"): an IP literal, localhost or one of
 * http.allowed_hosts, with or without a port; absent (HTTP/1.0) is fine. */
static bool http_host_ok(const http_t *h, const char *v, size_t len)
{
    char host[260];
    const char *colon;
    unsigned char buf[16];
    if (!v || !len) return true;
    if (v[0] == '[') {
        const char *rb = memchr(v, ']', len);
        if (!rb || (size_t)(rb - v - 1) >= sizeof host) return false;
        memcpy(host, v + 1, (size_t)(rb - v - 1));
        host[rb - v - 1] = 0;
        return inet_pton(AF_INET6, host, buf) == 1;
    }
    colon = memchr(v, ':', len);
    if (colon) len = (size_t)(colon - v);
    if (len >= sizeof host) return false;
    memcpy(host, v, len);
    host[len] = 0;
    if (inet_pton(AF_INET, host, buf) == 1 || !strcasecmp(host, "localhost")) return true;
    for (size_t i = 0; i < h->cfg.n_allowed_hosts; i++)
        if (!strcasecmp(host, h->cfg.allowed_hosts[i])) return true;
    return false;
}

/* ---- responses ---- */

static void http_headers(h2o_req_t *req, const api_resp_t *r)
{
    req->res.status = r->status;
    req->res.reason = api_status_text(r->status);
    if (r->content_type)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, r->content_type,
                       strlen(r->content_type));
    if (r->cache_control)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       r->cache_control, strlen(r->cache_control));
    if (r->allow)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, r->allow,
                       strlen(r->allow));
    if (r->www_authenticate)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"espstation\""));
}

static void http_send_buffered(http_t *h, h2o_req_t *req, api_resp_t *r)
{
    static h2o_generator_t none = {NULL, NULL};
    h2o_iovec_t body = h2o_strdup(&req->pool, r->body ? r->body : "", r->body_len);
    http_headers(req, r);
    req->res.content_length = r->body_len;
    api_count_status(h->api, r->status);
    h2o_start_response(req, &none);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/* ---- CSV stream ---- */

static void http_csv_unlink(http_csv_t *s)
{
    if (!s->h) return;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->h->csvs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->h->n_csv--;
    s->h = NULL;
}

static void http_csv_dispose(void *p)
{
    http_csv_t *s = p;
    http_t *h = s->h;
    free(s->inflight);
    s->inflight = NULL;
    api_resp_t tmp = {0};
    tmp.stream = s->stream; /* api_resp_free knows how to free a stream */
    api_resp_free(&tmp);
    s->stream = NULL;
    http_csv_unlink(s);
    if (h) http_maybe_done(h);
}

static void http_csv_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    http_csv_t *s = (http_csv_t *)g;
    h2o_iovec_t iov;
    size_t n = 0;
    int rc;
    free(s->inflight);
    s->inflight = NULL;
    if (s->last || !s->h) return;
    rc = api_stream_next(s->h->api, s->stream, &s->inflight, &n);
    if (rc < 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    s->last = rc == 0;
    iov = h2o_iovec_init(s->inflight ? s->inflight : "", n);
    h2o_send(req, &iov, 1, s->last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void http_csv_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    ((http_csv_t *)g)->last = true;
}

static void http_send_stream(http_t *h, h2o_req_t *req, api_resp_t *r)
{
    http_csv_t *s = h2o_mem_alloc_shared(&req->pool, sizeof *s, http_csv_dispose);
    h2o_iovec_t iov;
    memset(s, 0, sizeof *s);
    s->gen.proceed = http_csv_proceed;
    s->gen.stop = http_csv_stop;
    s->h = h;
    s->req = req;
    s->stream = r->stream;
    r->stream = NULL;
    s->inflight = r->body; /* the header row goes first */
    iov = h2o_iovec_init(r->body ? r->body : "", r->body_len);
    r->body = NULL;
    s->next = h->csvs;
    if (h->csvs) h->csvs->prev = s;
    h->csvs = s;
    h->n_csv++;
    http_headers(req, r);
    api_count_status(h->api, r->status);
    h2o_start_response(req, &s->gen);
    h2o_send(req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* ---- event stream ---- */

static void http_sse_flush(http_sse_t *s);

static void http_sse_unlink(http_sse_t *s)
{
    if (!s->h) return;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->h->sses = s->next;
    if (s->next) s->next->prev = s->prev;
    s->h = NULL;
}

static void http_sse_dispose(void *p)
{
    http_sse_t *s = p;
    http_t *h = s->h;
    events_detach(s->client);
    s->client = NULL;
    free(s->inflight);
    s->inflight = NULL;
    http_sse_unlink(s);
    if (h) http_maybe_done(h);
}

/* End the response: a final empty chunk when nothing is in flight, else after it. */
static void http_sse_end(http_sse_t *s)
{
    s->ending = true;
    if (s->sending || s->ended || s->stopped) return;
    s->ended = true;
    h2o_send(s->req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void http_sse_flush(http_sse_t *s)
{
    h2o_iovec_t iov;
    size_t n;
    if (s->sending || s->ended || s->stopped || !s->client) return;
    if (events_client_dropped(s->client)) {
        /* the client did not read: its backlog overflowed; it can resume with its last id */
        http_log("event stream client dropped: it fell %u events behind", EVENTS_RING);
        http_sse_end(s);
        return;
    }
    if (s->ending) {
        http_sse_end(s);
        return;
    }
    s->inflight = events_client_take(s->client, &n);
    if (!s->inflight) return;
    iov = h2o_iovec_init(s->inflight, n);
    s->sending = true;
    s->sent_at = uv_now(s->h ? s->h->loop : uv_default_loop());
    h2o_send(s->req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void http_sse_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    http_sse_t *s = (http_sse_t *)g;
    (void)req;
    free(s->inflight);
    s->inflight = NULL;
    s->sending = false;
    if (s->ending)
        http_sse_end(s);
    else
        http_sse_flush(s);
}

static void http_sse_stop(h2o_generator_t *g, h2o_req_t *req)
{
    http_sse_t *s = (http_sse_t *)g;
    (void)req;
    s->stopped = true;
}

static void http_sse_notify(events_client_t *c, void *data)
{
    http_sse_t *s = data;
    (void)c;
    if (s->sending && events_client_dropped(s->client)) {
        /* a write is stuck on this client: make h2o give up on the connection */
        http_log("event stream client dropped: it fell %u events behind", EVENTS_RING);
        s->ending = true;
        if (s->h) http_conn_shut(http_conn_of(s->h, s->req));
        return;
    }
    http_sse_flush(s);
}

static void http_send_events(http_t *h, h2o_req_t *req, api_resp_t *r)
{
    http_sse_t *s = h2o_mem_alloc_shared(&req->pool, sizeof *s, http_sse_dispose);
    memset(s, 0, sizeof *s);
    s->gen.proceed = http_sse_proceed;
    s->gen.stop = http_sse_stop;
    s->h = h;
    s->req = req;
    s->client = r->events;
    r->events = NULL;
    events_client_set_notify(s->client, http_sse_notify, s);
    s->next = h->sses;
    if (h->sses) h->sses->prev = s;
    h->sses = s;
    http_headers(req, r);
    /* no proxy buffering (nginx honours this), so events arrive as they happen */
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL,
                          H2O_STRLIT("no"));
    api_count_status(h->api, r->status);
    h2o_start_response(req, &s->gen);
    if (h->stopping)
        s->ending = true; /* asked for on a kept-alive connection while stopping: hello, end */
    http_sse_flush(s);
}

/* Has the peer of an event stream closed its end? h2o does not read while a response is in
 * progress, so a client that went away would only be noticed at the next write that fails; a
 * non-blocking peek says it at once (0 bytes = end of stream). */
static bool http_peer_closed(http_conn_t *c)
{
    uv_os_fd_t fd;
    char b;
    if (!c || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return false;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void http_keepalive_cb(uv_timer_t *t)
{
    http_t *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (http_sse_t *s = h->sses, *next; s; s = next) {
        http_conn_t *c = http_conn_of(h, s->req);
        next = s->next;
        if (!s->ending && http_peer_closed(c)) {
            /* end the response: h2o then finds the connection closed and disposes of it */
            http_conn_shut(c);
            http_sse_end(s);
        }
    }
    /* a request's headers must arrive within header_timeout_ms (slowloris) */
    for (http_conn_t *c = h->conns; c; c = c->next)
        if (!c->head_done && c->head_since && now - c->head_since > h->cfg.header_timeout_ms &&
            !c->shut) {
            http_answer_close(h, &c->tcp, 408, "request_timeout",
                              "the request's headers did not arrive within "
                              "http.header_timeout_ms");
            c->shut = true;
        }
    if (++h->ticks % (HTTP_KEEPALIVE_MS / HTTP_TICK_MS) != 0) return;
    events_keepalive(api_events(h->api));
    /* a chunk that has not left in an idle timeout's time: the client is gone or stuck */
    for (http_sse_t *s = h->sses; s; s = s->next)
        if (s->sending && now - s->sent_at > h->cfg.idle_timeout_ms) {
            http_log("event stream client dropped: nothing read for %u ms",
                     (unsigned)h->cfg.idle_timeout_ms);
            s->ending = true;
            http_conn_shut(http_conn_of(h, s->req));
        }
}

/* ---- deferred work ---- */

static void http_work_dispose(void *p)
{
    http_work_t **ref = p;
    if (*ref) (*ref)->req = NULL; /* the client went away before the answer was ready */
}

static void http_respond(http_t *h, h2o_req_t *req, api_resp_t *r);

static void http_work_cb(uv_work_t *w)
{
    http_work_t *hw = container_of(w, http_work_t, work);
    api_defer_work(hw->resp.defer);
}

static void http_after_work_cb(uv_work_t *w, int status)
{
    http_work_t *hw = container_of(w, http_work_t, work);
    http_t *h = hw->h;
    (void)status;
    api_defer_finish(h->api, &hw->resp);
    if (hw->req) {
        *hw->backref = NULL;
        http_respond(h, hw->req, &hw->resp);
    }
    api_resp_free(&hw->resp);
    free(hw);
    h->n_work--;
    http_maybe_done(h);
}

static void http_defer(http_t *h, h2o_req_t *req, api_resp_t *r)
{
    http_work_t *hw = calloc(1, sizeof *hw);
    if (!hw) {
        api_resp_free(r);
        r->status = 500;
        http_send_buffered(h, req, r);
        return;
    }
    hw->h = h;
    hw->req = req;
    hw->resp = *r;
    memset(r, 0, sizeof *r);
    hw->backref = h2o_mem_alloc_shared(&req->pool, sizeof *hw->backref, http_work_dispose);
    *hw->backref = hw;
    h->n_work++;
    if (uv_queue_work(h->loop, &hw->work, http_work_cb, http_after_work_cb) != 0) {
        /* cannot happen with a valid loop; answer from here rather than never */
        api_defer_work(hw->resp.defer);
        http_after_work_cb(&hw->work, 0);
    }
}

static void http_respond(http_t *h, h2o_req_t *req, api_resp_t *r)
{
    if (r->defer)
        http_defer(h, req, r);
    else if (r->events)
        http_send_events(h, req, r);
    else if (r->stream)
        http_send_stream(h, req, r);
    else
        http_send_buffered(h, req, r);
}

/* ---- h2o's own error answers as problem+json ---- */

/* h2o answers some requests itself, before any handler, in text/plain: a body over
 * max_request_entity_size (413), an unparsable request or one over its header limit (400).
 * This ostream filter, on the fallback path those answers take and on "/", swaps such a body
 * for the problem+json every other error has (docs/API.md). */
typedef struct http_problem_os_s {
    h2o_ostream_t super;
    http_t *h;
} http_problem_os_t;

typedef struct http_filter_s {
    h2o_filter_t super;
    http_t *h;
} http_filter_t;

static void http_problem_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                              h2o_send_state_t state)
{
    http_problem_os_t *o = (http_problem_os_t *)self;
    char detail[512], *json;
    size_t len = 0, dl = 0;
    const char *code;
    h2o_iovec_t out;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state); /* h2o sends these bodies at once */
        return;
    }
    for (size_t i = 0; i < n && dl < sizeof detail - 1; i++) {
        size_t k = bufs[i].len < sizeof detail - 1 - dl ? bufs[i].len : sizeof detail - 1 - dl;
        memcpy(detail + dl, bufs[i].base, k);
        dl += k;
    }
    detail[dl] = 0;
    code = req->res.status == 413   ? "payload_too_large"
           : req->res.status == 431 ? "header_too_large"
           : req->res.status == 404 ? "not_found"
           : req->res.status == 405 ? "method_not_allowed"
           : req->res.status < 500  ? "bad_request"
                                    : "internal";
    if (req->res.status == 413)
        snprintf(detail, sizeof detail,
                 "the request body is larger than the station accepts (http.max_body_bytes; "
                 "http.max_upload_bytes for an image upload with an engineer token)");
    json = api_problem_text(req->res.status, code, detail[0] ? detail : "malformed request", &len);
    out = h2o_strdup(&req->pool, json ? json : "", json ? len : 0);
    free(json);
    req->res.content_length = out.len;
    if (o->h) api_count_status(o->h->api, req->res.status);
    h2o_ostream_send_next(self, req, &out, 1, state);
}

static void http_filter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && i >= 0 &&
        h2o_memis(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len,
                  H2O_STRLIT("text/plain; charset=utf-8"))) {
        http_problem_os_t *o = (http_problem_os_t *)h2o_add_ostream(req, sizeof *o, slot);
        o->super.do_send = http_problem_send;
        o->h = ((http_filter_t *)self)->h;
        req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/problem+json"));
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

static void http_add_filter(http_t *h, h2o_pathconf_t *path)
{
    http_filter_t *f = (http_filter_t *)h2o_create_filter(path, sizeof *f);
    f->super.on_setup_ostream = http_filter_setup;
    f->h = h;
}

/* ---- the handler ---- */

static void http_header(h2o_req_t *req, const h2o_token_t *tok, const char *name, size_t nlen,
                        const char **v, size_t *len)
{
    ssize_t i = tok ? h2o_find_header(&req->headers, tok, -1)
                    : h2o_find_header_by_str(&req->headers, name, nlen, -1);
    if (i >= 0) {
        *v = req->headers.entries[i].value.base;
        *len = req->headers.entries[i].value.len;
    }
}

/* A problem+json response built here (the HTTP layer's own refusals). */
static void http_problem_resp(api_resp_t *r, int status, const char *code, const char *detail)
{
    size_t n = 0;
    free(r->body);
    r->status = status;
    r->content_type = "application/problem+json";
    r->body = api_problem_text(status, code, detail, &n);
    r->body_len = r->body ? n : 0;
}

/* Event streams of the client address `addr`. */
static size_t http_streams_of(http_t *h, const char *addr)
{
    size_t n = 0;
    for (http_sse_t *s = h->sses; s; s = s->next) {
        http_conn_t *sc = http_conn_of(h, s->req);
        /* one its client has just closed counts no more (the tick would end it within 1 s) */
        n += sc && !s->ending && !strcmp(sc->addr, addr) && !http_peer_closed(sc);
    }
    return n;
}

/* Bookkeeping when h2o hands a request over; false when it was answered here (*r filled). */
static bool http_req_admit(http_t *h, http_conn_t *c, h2o_req_t *req, const api_req_t *ar,
                           api_resp_t *r)
{
    http_req_mark_t *m;
    h2o_buffer_t *in = c->sock->input;
    size_t used = in->size;
    api_early_t early;
    c->head_done = true;
    c->head_since = 0;
    m = h2o_mem_alloc_shared(&req->pool, sizeof *m, http_req_mark_dispose);
    m->h = h;
    m->sock = c->sock;
    /* pipelined requests behind this one would bypass the checks on a request's headers
     * (http_head_check): answer this one and close */
    if (req->entity.base && req->entity.base >= in->bytes &&
        req->entity.base + req->entity.len <= in->bytes + in->size)
        used = (size_t)(req->entity.base + req->entity.len - in->bytes);
    else if (!req->entity.base) {
        struct phr_header hd[HTTP_MAX_HEADER_LINES];
        const char *mt, *pt;
        size_t ml, pl, nh = HTTP_MAX_HEADER_LINES;
        int minor, ret = phr_parse_request(in->bytes, in->size, &mt, &ml, &pt, &pl, &minor, hd,
                                           &nh, 0);
        if (ret > 0) used = (size_t)ret;
    }
    if (in->size > used) req->http1_is_persistent = 0;
    memset(r, 0, sizeof *r);
    if (!http_host_ok(h, req->input.authority.base, req->input.authority.len)) {
        http_problem_resp(r, 421, "misdirected_request",
                          "this station does not answer to that Host name; use its IP address "
                          "or a name in http.allowed_hosts (docs/API.md)");
        return false;
    }
    if (c->reserve) {
        api_early(h->api, ar, &early);
        if (!early.privileged) {
            req->http1_is_persistent = 0;
            http_problem_resp(r, 503, "too_many_connections",
                              "the station is busy; the last connections are kept for "
                              "operator and engineer requests (http.reserved_connections)");
            return false;
        }
    }
    return true;
}

static int http_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_t *h = ((http_handler_t *)self)->h;
    http_conn_t *c = http_conn_of(h, req);
    api_req_t ar;
    api_resp_t r;
    memset(&ar, 0, sizeof ar);
    ar.method = req->input.method.base;
    ar.method_len = req->input.method.len;
    ar.target = req->input.path.base;
    ar.target_len = req->input.path.len;
    http_header(req, H2O_TOKEN_AUTHORIZATION, NULL, 0, &ar.authorization, &ar.authorization_len);
    http_header(req, H2O_TOKEN_CONTENT_TYPE, NULL, 0, &ar.content_type, &ar.content_type_len);
    http_header(req, NULL, H2O_STRLIT("last-event-id"), &ar.last_event_id, &ar.last_event_id_len);
    ar.body = req->entity.base;
    ar.body_len = req->entity.base ? req->entity.len : 0;
    /* what the client sent before the body: request line and header lines */
    ar.header_bytes = req->input.method.len + req->input.path.len + 12;
    for (size_t i = 0; i < req->headers.size; i++)
        ar.header_bytes +=
            req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (c && !http_req_admit(h, c, req, &ar, &r)) {
        http_send_buffered(h, req, &r);
        api_resp_free(&r);
        return 0;
    }
    api_handle(h->api, &ar, &r);
    if (r.events && c && http_streams_of(h, c->addr) >= h->cfg.max_streams_per_client) {
        api_resp_free(&r);
        http_problem_resp(&r, 503, "too_many_connections",
                          "this client address has http.max_streams_per_client event streams "
                          "open; close one first");
    }
    http_respond(h, req, &r);
    api_resp_free(&r);
    return 0;
}

/* ---- start / stop ---- */

static int http_parse_listen(const char *listen, struct sockaddr_storage *ss, char *err,
                             size_t errlen)
{
    char host[128];
    const char *colon;
    long port;
    char *end;
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof host) goto bad;
        memcpy(host, listen + 1, (size_t)(rb - listen - 1));
        host[rb - listen - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host) goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = 0;
    }
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) goto bad;
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    if (!host[0]) snprintf(host, sizeof host, "0.0.0.0");
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
bad:
    snprintf(err, errlen,
             "listen address \"%s\": expected <IPv4>:<port>, [<IPv6>]:<port> or "
             "localhost:<port>",
             listen);
    return UV_EINVAL;
}

int http_start(uv_loop_t *loop, const char *listen, const http_cfg_t *cfg, api_t *api, http_t **out,
               char *err, size_t errlen)
{
    struct sockaddr_storage ss, bound;
    int len = sizeof bound, rc;
    char ip[64];
    http_t *h;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    http_handler_t *handler;

    *out = NULL;
    memset(&ss, 0, sizeof ss);
    if ((rc = http_parse_listen(listen, &ss, err, errlen)) != 0) return rc;
    h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    h->loop = loop;
    h->api = api;
    h->cfg = *cfg;
    uv_tcp_init(loop, &h->listener);
    h->listener.data = h;
    h->listening = true;
    rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&h->listener, 128, http_on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s%s", listen, uv_strerror(rc),
                 rc == UV_EADDRINUSE ? " (another program, or another espstation, uses that "
                                       "port: stop it or choose another address with \"listen\")"
                                     : "");
        h->listener_closing = true;
        uv_close((uv_handle_t *)&h->listener, NULL);
        h->listening = false;
        /* h is freed by http_free after the loop ran the close */
        *out = h;
        return rc;
    }
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len);
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        snprintf(h->url, sizeof h->url, "http://[%s]:%u/", ip,
                 ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        snprintf(h->url, sizeof h->url, "http://%s:%u/", ip,
                 ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }

    h2o_config_init(&h->gconf);
    h->gconf.server_name = h2o_iovec_init(H2O_STRLIT("espstation"));
    /* h2o buffers a whole request body and refuses larger ones itself (413, plain text) */
    /* larger only for a read of an upload the caller may make (http_io_hook) */
    h->gconf.max_request_entity_size = (size_t)cfg->max_body_bytes;
    h->reserve_max = cfg->reserved_connections < cfg->max_connections / 4
                         ? cfg->reserved_connections
                         : cfg->max_connections / 4;
    h->gconf.http1.req_timeout = cfg->idle_timeout_ms;
    h->gconf.http2.idle_timeout = cfg->idle_timeout_ms;
    h->gconf.http1.upgrade_to_http2 = 0;
    host = h2o_config_register_host(&h->gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = (http_handler_t *)h2o_create_handler(path, sizeof *handler);
    handler->super.on_req = http_on_req;
    handler->h = h;
    http_add_filter(h, path);
    http_add_filter(h, &host->fallback_path);
    h2o_context_init(&h->ctx, loop, &h->gconf);
    h->ctx_init = true;
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->gconf.hosts;

    uv_timer_init(loop, &h->keepalive);
    h->keepalive.data = h;
    h->keepalive_open = true;
    uv_timer_start(&h->keepalive, http_keepalive_cb, HTTP_TICK_MS, HTTP_TICK_MS);
    *out = h;
    return 0;
}

const char *http_url(const http_t *h)
{
    return h->url;
}

void http_close_listener(http_t *h)
{
    if (!h || !h->listening || h->listener_closing) return;
    h->listener_closing = true;
    h->listening = false;
    uv_close((uv_handle_t *)&h->listener, NULL);
}

static void http_maybe_done(http_t *h)
{
    if (!h->stopping || h->stopped) return;
    if (h->n_work || h->n_csv) return; /* answers being computed or streamed: let them finish */
    /* what is left is idle (keep-alive) or an ended event stream: make h2o close it */
    for (http_conn_t *c = h->conns; c; c = c->next)
        http_conn_shut(c);
    if (h->n_conns || h->n_refused || h->sses) return;
    h->stopped = true;
    if (h->ctx_init) {
        h2o_context_dispose(&h->ctx);
        h->ctx_init = false;
    }
    if (h->done_cb) h->done_cb(h, h->done_data);
}

void http_stop(http_t *h, void (*done_cb)(http_t *h, void *data), void *data)
{
    if (h->stopping) return;
    h->stopping = true;
    h->done_cb = done_cb;
    h->done_data = data;
    http_close_listener(h);
    if (h->keepalive_open) {
        h->keepalive_open = false;
        uv_close((uv_handle_t *)&h->keepalive, NULL);
    }
    for (http_sse_t *s = h->sses, *next; s; s = next) {
        next = s->next;
        if (s->sending) /* a client that does not read would hold the stop forever */
            http_conn_shut(http_conn_of(h, s->req));
        http_sse_end(s);
    }
    http_maybe_done(h);
}

void http_free(http_t *h)
{
    if (!h) return;
    if (h->ctx_init) h2o_context_dispose(&h->ctx);
    if (h->gconf.hosts) h2o_config_dispose(&h->gconf);
    free(h);
}

char *http_web_root(const station_cfg_t *cfg)
{
    char self[PATH_MAX], p[PATH_MAX + 64], *dir;
    const char *env = getenv("ESPSTATION_WEB_ROOT");
    ssize_t n;
    if (cfg->web_root) return strdup(cfg->web_root);
    if (env && *env) return strdup(env);
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        dir = dirname(self);
        snprintf(p, sizeof p, "%s/../share/espstation/web", dir);
        if (access(p, R_OK | X_OK) == 0) return realpath(p, NULL);
    }
    /* the source tree this file was compiled from (a build directory run) */
    snprintf(p, sizeof p, "%s", __FILE__);
    dir = dirname(p);
    snprintf(self, sizeof self, "%s/../web-static", dir);
    if (self[0] == '/' && access(self, R_OK | X_OK) == 0) return realpath(self, NULL);
    return NULL;
}
