/* SPDX-License-Identifier: MIT */
/* http.h — the HTTP server: h2o (libuv build) on the daemon's loop, listening where the station
 * config says; every request goes to api_handle(). Limits: connections (503 beyond), header
 * and body sizes, idle timeout; the event stream's keep-alives and slow-client drops; deferred
 * API work on the libuv thread pool. No TLS (docs/API.md: put a reverse proxy in front).
 * Owns: sockets, h2o objects and their lifetimes. Must not: decide what an endpoint answers. */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <uv.h>

#include "api.h"
#include "config.h"

#define HTTP_KEEPALIVE_MS 15000 /* ": keep-alive" on every event stream */

typedef struct http_s http_t;

/* Listen on `listen` ("127.0.0.1:8080", "[::1]:8080", "localhost:0" = any free port) and serve
 * `api`. 0, or a negative UV code with `err` saying what went wrong (e.g. the port is taken). */
int http_start(uv_loop_t *loop, const char *listen, const http_cfg_t *cfg, api_t *api, http_t **out,
               char *err, size_t errlen);
/* "http://127.0.0.1:8080/" with the port actually bound. */
const char *http_url(const http_t *h);
/* No new connections (SIGTERM); what is open goes on. */
void http_close_listener(http_t *h);
/* End every event stream cleanly, let deferred work and running responses finish, close every
 * connection; then done_cb. The loop may still have h2o handles closing: free after uv_run. */
void http_stop(http_t *h, void (*done_cb)(http_t *h, void *data), void *data);
void http_free(http_t *h);

/* The dashboard directory (docs/API.md): the config's web_root, else $ESPSTATION_WEB_ROOT, else
 * <executable dir>/../share/espstation/web when it exists, else the source tree's web-static/
 * when it exists; NULL when none (malloc'ed). */
char *http_web_root(const station_cfg_t *cfg);

#endif
