/* SPDX-License-Identifier: MIT */
/* http_guard.c — the HTTP layer against a hostile or careless network (docs/API.md "Limits",
 * docs/RELIABILITY.md "Attacks and site faults"): which connections are admitted (per client
 * address, the reserve for operator/engineer requests, room made by closing silent ones), and
 * every request's headers checked before h2o reads them (body limit from the route and token,
 * request framing, header deadline, Host).
 * Must not: decide what an endpoint answers (api.c) or hold h2o objects past a callback. */
#include "http_int.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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
void http_answer_close(http_t *h, uv_tcp_t *tcp, int status, const char *code, const char *detail)
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

void http_peer_addr(uv_tcp_t *tcp, char *out, size_t outlen)
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
static bool http_silent(const http_t *h, const http_conn_t *c, uint64_t now)
{
    uv_os_fd_t fd;
    char b;
    if (c->shut || c->evicted || !c->sock || c->sock->bytes_read || c->head_since) return false;
    if (now - c->accepted_at < HTTP_SILENT_MS) return false; /* its request may be on the way */
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0) return false;
    (void)h;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0; /* nothing waiting (and no EOF) */
}

static bool http_evict_silent(http_t *h, bool reserve)
{
    http_conn_t *victim = NULL;
    uint64_t now = uv_now(h->loop);
    if (h->n_evicted >= 16) return false;           /* closing ones still hold their descriptors */
    for (http_conn_t *c = h->conns; c; c = c->next) /* newest first: the last match is oldest */
        if (c->reserve == reserve && http_silent(h, c, now)) victim = c;
    if (!victim) return false;
    http_answer_close(h, &victim->tcp, 503, "too_many_connections",
                      "closed to make room: this connection had sent nothing");
    victim->shut = victim->evicted = true;
    h->n_evicted++;
    return true;
}

/* May a new connection from `addr` be served, and in the reserve? NULL = yes (*reserve says
 * where), else why not (the 503's detail). docs/API.md "Limits". */
const char *http_admit(http_t *h, const char *addr, bool *reserve)
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

void http_io_hook(uv_loop_t *loop, struct uv__io_s *w, unsigned int events)
{
    http_conn_t *c = container_of(w, http_conn_t, tcp.io_watcher);
    http_t *h = c->h;
    if ((events & (POLLIN | POLLHUP | POLLERR)) && !c->shut && !c->head_done) http_head_check(c);
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

/* A problem+json response built here (the HTTP layer's own refusals). */
void http_problem_resp(api_resp_t *r, int status, const char *code, const char *detail)
{
    size_t n = 0;
    free(r->body);
    r->status = status;
    r->content_type = "application/problem+json";
    r->body = api_problem_text(status, code, detail, &n);
    r->body_len = r->body ? n : 0;
}

/* Bookkeeping when h2o hands a request over; false when it was answered here (*r filled). */
bool http_req_admit(http_t *h, http_conn_t *c, h2o_req_t *req, const api_req_t *ar, api_resp_t *r)
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
        int minor,
            ret = phr_parse_request(in->bytes, in->size, &mt, &ml, &pt, &pl, &minor, hd, &nh, 0);
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

void http_guard_tick(http_t *h, uint64_t now)
{
    /* a request's headers must arrive within header_timeout_ms (slowloris) */
    for (http_conn_t *c = h->conns; c; c = c->next)
        if (!c->head_done && c->head_since && now - c->head_since > h->cfg.header_timeout_ms &&
            !c->shut) {
            http_answer_close(h, &c->tcp, 408, "request_timeout",
                              "the request's headers did not arrive within "
                              "http.header_timeout_ms");
            c->shut = true;
        }
}
