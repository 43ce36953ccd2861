/* SPDX-License-Identifier: MIT */
/* http.c — h2o glue: a TCP listener on the daemon's libuv loop, one h2o context, a handler that
 * turns h2o requests into api_req_t and api_resp_t into responses (buffered, streamed CSV,
 * server-sent events, deferred work on the thread pool). Connection count, idle timeout, event
 * stream keep-alives and slow-client drops, a clean stop.
 * Must not: block the loop or decide what an endpoint answers (api.c). */
#include "http.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_int.h"

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

struct http_csv_s {
    h2o_generator_t gen; /* first */
    http_t *h;
    h2o_req_t *req;
    api_stream_t *stream;
    char *inflight;
    bool last;
    struct http_csv_s *prev, *next;
};

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

void http_log(const char *fmt, ...)
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

#define HTTP_ACCEPTS_PER_TURN 32

static void http_on_accept(uv_stream_t *listener, int status)
{
    http_t *h = listener->data;
    http_conn_t *c;
    const char *why;
    bool reserve;
    if (status != 0) return;
    if (++h->accepts_this_turn > HTTP_ACCEPTS_PER_TURN && h->turn_open) {
        /* not accepted: libuv stops watching the listener until uv_accept (http_turn_cb) */
        h->accept_pending = true;
        return;
    }
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
    c->accepted_at = uv_now(h->loop);
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

/* After each loop turn's I/O: a new accept budget, and the connection left waiting. */
static void http_turn_cb(uv_check_t *t)
{
    http_t *h = t->data;
    h->accepts_this_turn = 0;
    if (h->accept_pending) {
        h->accept_pending = false;
        if (h->listening) http_on_accept((uv_stream_t *)&h->listener, 0);
    }
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
    http_guard_tick(h, now);
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

    /* A body h2o buffers beyond 4 MiB (only an engineer's upload may be that large) goes to an
     * unlinked temp file instead of memory (h2o's mmap'ed buffers) */
    h2o_socket_buffer_mmap_settings.threshold = HTTP_BODY_TO_DISK;
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
    uv_check_init(loop, &h->turn);
    h->turn.data = h;
    h->turn_open = true;
    uv_check_start(&h->turn, http_turn_cb);
    uv_unref((uv_handle_t *)&h->turn);
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
    if (h->turn_open) {
        h->turn_open = false;
        uv_close((uv_handle_t *)&h->turn, NULL);
    }
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
