/* SPDX-License-Identifier: MIT */
/* http_int.h — what http.c (h2o glue) and http_guard.c (admission and the checks on a request's
 * headers before h2o reads them, docs/API.md "Limits") share: the server and connection structs.
 * Private to daemon/api/http*.c. */
#ifndef HTTP_INT_H
#define HTTP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "http.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define HTTP_TICK_MS 1000            /* event streams: closed peers noticed, keep-alives counted */
#define HTTP_HEAD_PEEK (24u * 1024u) /* header bytes looked at before h2o reads them */
#define HTTP_MAX_HEADER_LINES 100    /* h2o's H2O_MAX_HEADERS: more are answered here */
#define HTTP_LOG_EVERY_MS 60000      /* "not HTTP" logged at most once a minute */
#define HTTP_BODY_TO_DISK (4u * 1024u * 1024u) /* larger buffered bodies: a temp file */
#define HTTP_SILENT_MS 500                     /* closed for room only after this long silent */

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
typedef struct http_csv_s http_csv_t;

struct http_conn_s {
    uv_tcp_t tcp; /* first: h2o closes it and hands it back to http_conn_closed */
    http_t *h;
    h2o_socket_t *sock;
    http_conn_t *prev, *next;
    bool shut;
    bool reserve;         /* one of the reserved connections: operator/engineer requests only */
    bool evicted;         /* closed to make room (it had sent nothing) */
    uint64_t accepted_at; /* uv_now at accept */
    bool head_done;       /* the current request's headers are complete (checked here) */
    uint64_t head_since;  /* uv_now when its first bytes were seen; 0 = none pending */
    uint64_t body_limit;  /* its body limit (api_early), h2o's for this connection's reads */
    char addr[INET6_ADDRSTRLEN]; /* the client's address */
};

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
    /* accepts per loop turn are bounded (a flood would keep libuv accepting and starve every
     * other socket): over the budget one connection waits in libuv until the check handle */
    uv_check_t turn;
    bool turn_open, accept_pending;
    unsigned accepts_this_turn;
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

void http_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- http_guard.c ---- */

/* May a new connection from `addr` be served, and in the reserve? NULL = yes, else why not. */
const char *http_admit(http_t *h, const char *addr, bool *reserve);
/* The client's address of an accepted connection ("127.0.0.1", "::1"). */
void http_peer_addr(uv_tcp_t *tcp, char *out, size_t outlen);
/* Answer problem+json straight on the socket, then shut both directions. */
void http_answer_close(http_t *h, uv_tcp_t *tcp, int status, const char *code, const char *detail);
/* Every read of a connection passes here first (installed as its libuv I/O callback). */
void http_io_hook(uv_loop_t *loop, struct uv__io_s *w, unsigned int events);
/* A problem+json response built by the HTTP layer. */
void http_problem_resp(api_resp_t *r, int status, const char *code, const char *detail);
/* When h2o hands a request over: false when it is answered here (*r filled). */
bool http_req_admit(http_t *h, http_conn_t *c, h2o_req_t *req, const api_req_t *ar, api_resp_t *r);
/* Each tick: close connections whose request headers are late (header_timeout_ms). */
void http_guard_tick(http_t *h, uint64_t now);

#endif
