/* SPDX-License-Identifier: MIT */
/* serve.h — run the station daemon on a loaded config (used by `serve` and `demo`).
 * Hooks let a caller (the demo) act on the loop: at start, on each recorded result, at stop. */
#ifndef SERVE_H
#define SERVE_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "jobmgr.h"

typedef struct serve_hooks_s {
    void *data;
    void (*start_cb)(void *data, uv_loop_t *loop, jobmgr_t *mgr);
    void (*result_cb)(void *data, const char *slot, const char *uuid, const job_report_t *r);
    void (*stop_cb)(void *data); /* every slot has stopped; close your handles */
} serve_hooks_t;

/* Returns the process exit status. */
int serve_run(const station_cfg_t *cfg, bool verbose, const serve_hooks_t *hooks);

#endif
