/* SPDX-License-Identifier: MIT */
/* cfx.h — the station as an IPC-CFX endpoint (docs/CFX.md): its "cfx" config section, the
 * store hooks that write each job's messages into the outbox in the job's own transaction, and
 * the sender that drains the outbox to an AMQP 1.0 broker on the daemon's loop.
 * Owns: the cfx config, its own SQLite connection to the station database (outbox reads and
 * deletes), the AMQP connection, the heartbeat. Must not: delay a flashing job (hooks only
 * insert rows; everything else runs on the loop without blocking on the broker). */
#ifndef CFX_H
#define CFX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "jobmgr.h"
#include "store.h"

typedef struct cfx_cfg_s {
    bool enabled;            /* a "cfx" section with a broker */
    char *handle;            /* CFX handle [espstation.<station id>] */
    char *broker;            /* amqp://host[:port] or amqps://host[:port] */
    char *address;           /* sending link's target [/queue/cfx] */
    char *request_address;   /* where requests to this station go [/queue/<handle>] */
    char *credentials_file;  /* "user:password" (SASL PLAIN), mode 0600 or stricter */
    char *user, *password;   /* from credentials_file */
    char *mechanisms;        /* SASL mechanisms allowed [auto: PLAIN / EXTERNAL / ANONYMOUS] */
    char *ca_file, *cert_file, *key_file; /* "tls": {...} */
    uint32_t heartbeat_s;    /* [60], 1 to 300 */
    int64_t outbox_max;      /* messages kept while the broker is away [100000] */
    uint32_t reconnect_max_s; /* longest wait between reconnects (backoff from 1 s) [60] */
    bool interlock;          /* "interlock": {"enabled"} [false] */
    uint32_t interlock_timeout_ms; /* [10000] */
} cfx_cfg_t;

/* Parse the station config's "cfx" object (JSON text, NULL when the section is absent: CFX
 * off). Relative paths resolve against `dir`. Reads the credentials file (refused when group or
 * others may read it). 0, or EST_EUSAGE with err "$.cfx.<key>: <problem>". */
int cfx_config_parse(const char *json, const char *dir, const char *station_id, cfx_cfg_t *c,
                     char *err, size_t errlen);
void cfx_config_free(cfx_cfg_t *c);

typedef struct cfx_s cfx_t;

/* Register the store hooks (so every job from now on writes its messages), open the module's
 * own connection to the database, write the end messages of jobs a crash interrupted. Call
 * after store_open and before the job manager starts jobs. `scfg` and `c` must outlive it.
 * 0, or -1 with err. */
int cfx_new(uv_loop_t *loop, const station_cfg_t *scfg, const cfx_cfg_t *c, store_t *store,
            cfx_t **out, char *err, size_t errlen);
/* Where connection changes are told (one line each, no newline); NULL: nowhere. A failure that
 * repeats the same error at every retry is told once. */
void cfx_set_log(cfx_t *x, void (*log_cb)(void *data, const char *line), void *data);
/* Connect (and keep reconnecting), heartbeat, drain the outbox. */
void cfx_start(cfx_t *x);
/* Send EndpointShuttingDown when connected, close the connection and every handle; done_cb
 * runs when all is closed (then cfx_free). */
void cfx_stop(cfx_t *x, void (*done_cb)(void *data), void *data);
/* RecipeActivated (through the outbox) for every slot that has a recipe: at start, after the
 * job manager loaded them. x may be NULL. */
void cfx_recipes_activated(cfx_t *x, jobmgr_t *m);
void cfx_free(cfx_t *x);

/* For GET /api/v1/station, /metrics and the dashboard header. */
typedef struct cfx_status_s {
    bool enabled;
    const char *state;       /* cfx_amqp_state_name: disabled, connecting, connected, ... */
    const char *error;       /* the last connection error, "" when none */
    const char *broker;      /* the URL (no credentials) */
    int64_t outbox_waiting;  /* messages not yet accepted by the broker */
    int64_t outbox_parked;   /* refused by the broker (kept, not retried) */
    int64_t outbox_dropped;  /* lost because the outbox was full */
    int64_t outbox_max;
    bool alarm;              /* outbox >= 80 % full, or anything parked or dropped */
    uint64_t sent, accepted; /* since start */
} cfx_status_t;
void cfx_status(const cfx_t *x, cfx_status_t *st);
/* The same as a JSON object for GET /api/v1/station's "cfx" member: {"enabled", "state", and
 * when enabled "broker", "error" (null when none), "outbox", "outbox_max", "parked", "dropped",
 * "alarm"} (NULL: no memory). x may be NULL ({"enabled": false, "state": "disabled"}). */
cJSON *cfx_status_json(const cfx_t *x);
/* Prometheus text (espstation_cfx_*; nothing when x is NULL) into buf; returns its length. */
size_t cfx_metrics_text(const cfx_t *x, char *buf, size_t cap);

#endif
