/* SPDX-License-Identifier: MIT */
/* fuzz_config.c — fuzz target for the station configuration parser (config_parse in
 * daemon/station/config.c, docs/STATION.md). Input: a config file, parsed with and without a base
 * directory. Must not: open anything (config_parse only resolves paths, and realpath()s device
 * paths). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "est_err.h"
#include "fuzz.h"

/* A parse error must be one line naming a JSON path ("$..."); a parsed config must have
 * 1..CONFIG_MAX_SLOTS slots with unique names and ports, resolved paths, and "http" limits
 * inside their documented bounds. */

static void parse(const uint8_t *data, size_t size, const char *dir)
{
    station_cfg_t cfg;
    char err[512];
    int rc;

    memset(err, 0, sizeof err);
    rc = config_parse((const char *)data, size, dir, &cfg, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == EST_EUSAGE);
        FUZZ_CHECK(err[0] == '$' && memchr(err, '\0', sizeof err) != NULL);
        config_free(&cfg);
        return;
    }
    FUZZ_CHECK(cfg.n_slots >= 1 && cfg.n_slots <= CONFIG_MAX_SLOTS && cfg.slots != NULL);
    FUZZ_CHECK(cfg.database != NULL && cfg.listen != NULL && cfg.probe_interval_ms > 0);
    /* the documented bounds of the "http" limits (docs/API.md "Limits") */
    FUZZ_CHECK(cfg.http.max_connections >= 1 && cfg.http.max_connections <= 4096);
    FUZZ_CHECK(cfg.http.max_header_bytes >= 1024 && cfg.http.max_header_bytes <= 262144);
    FUZZ_CHECK(cfg.http.max_body_bytes >= 1024 && cfg.http.max_body_bytes <= 64u << 20);
    FUZZ_CHECK(cfg.http.max_upload_bytes >= 1024 && cfg.http.max_upload_bytes <= 1ull << 30);
    FUZZ_CHECK(cfg.http.idle_timeout_ms >= 1000 && cfg.http.idle_timeout_ms <= 3600000);
    if (dir) FUZZ_CHECK(cfg.dir != NULL && strcmp(cfg.dir, dir) == 0);
    for (size_t i = 0; i < cfg.n_slots; i++) {
        const slot_cfg_t *s = &cfg.slots[i];
        FUZZ_CHECK(s->name[0] != '\0' && s->port != NULL && s->port[0] != '\0');
        FUZZ_CHECK(config_slot(&cfg, s->name) == s); /* names are unique */
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(cfg.slots[k].port, s->port) != 0);
        FUZZ_CHECK(config_start_name(s->start)[0] != '?');
        if (dir && s->recipe && s->recipe[0] != '/')
            FUZZ_CHECK(strncmp(s->recipe, dir, strlen(dir)) == 0);
    }
    config_free(&cfg);
    config_free(&cfg); /* config_free leaves an empty config */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, "/etc/espstation");
    parse(data, size, NULL);
    return 0;
}
