/* SPDX-License-Identifier: MIT */
/* config.h — the station configuration file (JSON, docs/STATION.md): identity, database, HTTP
 * address and limits, web root, stub and image directories, token file, and the fixture slots
 * with their ports, reset modes, start modes and recipes.
 * Owns: parsing and validating it, with errors that name the JSON path. Must not: open ports,
 * databases or recipes (it only resolves their paths). */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

#define CONFIG_MAX_SLOTS 256
#define CONFIG_MAX_BYTES (1024u * 1024u)
#define CONFIG_NAME_MAX 32
#define CONFIG_MAX_HOSTS 8   /* http.allowed_hosts */
#define CONFIG_HOST_MAX 253  /* a DNS name */

typedef enum { SLOT_START_MANUAL, SLOT_START_AUTO, SLOT_START_LOOP } slot_start_t;
const char *config_start_name(slot_start_t s);

typedef struct slot_cfg_s {
    char name[CONFIG_NAME_MAX + 1]; /* "A1" */
    char *port;                     /* port spec */
    plan_before_t before;           /* defaults for the recipe's before/after ... */
    plan_after_t after;
    bool reset_override;            /* ... unless "reset_override": the slot's values win */
    slot_start_t start;
    char *recipe;                   /* resolved path; NULL = the station default */
} slot_cfg_t;

/* "http": the API server's access mode and limits (docs/API.md "Limits"). */
typedef struct http_cfg_s {
    bool read_token;           /* "read_access": "token" (reads need a token); false = "open" */
    uint32_t max_connections;  /* [64] */
    uint32_t max_header_bytes; /* [16384] */
    uint64_t max_body_bytes;   /* [1 MiB] JSON bodies */
    uint64_t max_upload_bytes; /* [128 MiB] PUT /api/v1/images/{name} */
    uint32_t idle_timeout_ms;  /* [30000] */
    /* docs/API.md "Limits" (issue 14): one client address may hold at most
     * max_connections_per_client [16] connections and max_streams_per_client [4] event streams;
     * the last reserved_connections [8] (at most a quarter of max_connections) serve only
     * operator/engineer requests; a request's headers must arrive within header_timeout_ms
     * [10000]; "Host" must be an IP literal, localhost or one of allowed_hosts. */
    uint32_t max_connections_per_client;
    uint32_t max_streams_per_client;
    uint32_t reserved_connections;
    uint32_t header_timeout_ms;
    size_t n_allowed_hosts;
    char allowed_hosts[CONFIG_MAX_HOSTS][CONFIG_HOST_MAX + 1];
} http_cfg_t;

typedef struct station_cfg_s {
    char id[65];
    char name[129];
    char *dir;        /* directory of the config file: relative paths start here */
    char *database;   /* resolved path */
    char *listen;     /* "127.0.0.1:8080" */
    char *stub_dir;   /* NULL = none */
    char *token_file; /* NULL = none */
    char *image_dir;  /* NULL = <dir>/images */
    char *recipe;     /* default recipe for slots without their own; may be NULL */
    char *web_root;   /* NULL = not configured (http.c looks elsewhere) */
    char *cfx_json;   /* the "cfx" section as JSON text (daemon/cfx parses it); NULL = none */
    http_cfg_t http;
    uint32_t probe_interval_ms; /* presence probe period for always-present ports */
    size_t n_slots;
    slot_cfg_t *slots;
} station_cfg_t;

/* Parse a config file. Returns 0, or EST_EUSAGE with `err` saying "<json path>: <problem>". */
int config_load(const char *path, station_cfg_t *cfg, char *err, size_t errlen);
/* Parse config text; relative paths are resolved against `dir`. */
int config_parse(const char *text, size_t len, const char *dir, station_cfg_t *cfg, char *err,
                 size_t errlen);
void config_free(station_cfg_t *cfg);
/* Look up a slot by name; NULL if none. */
const slot_cfg_t *config_slot(const station_cfg_t *cfg, const char *name);

#endif
