/* SPDX-License-Identifier: MIT */
/* jobmgr.h — the station's fixture slots: one job per slot, all concurrent on one loop; start
 * modes (manual, auto, loop) with board-presence detection; every job recorded in the store
 * (its final row committed before the result is reported to anyone).
 * Owns: slots, their jobs and presence timers, and the recipes they run. Must not: speak HTTP
 * or print; observers get callbacks. */
#ifndef JOBMGR_H
#define JOBMGR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "job.h"
#include "recipe.h"
#include "store.h"

typedef struct jobmgr_s jobmgr_t;

/* XX(ENUM, "name") — what a slot is doing, as the dashboard and API show it. */
#define SLOT_STATE_MAP(XX)                                                                         \
    XX(IDLE, "idle")             /* nothing to do until started */                                \
    XX(WAITING, "waiting")       /* waiting for a board to appear / be replaced */                \
    XX(PROBING, "probing")       /* asking the port whether a (new) board is there */             \
    XX(RUNNING, "running")       /* a flashing job runs */                                         \
    XX(STOPPED, "stopped")       /* shut down */

typedef enum {
#define XX(e, n) SLOT_ST_##e,
    SLOT_STATE_MAP(XX)
#undef XX
} slot_state_t;
const char *slot_state_name(slot_state_t s);

/* A snapshot of one slot for observers (valid until the next callback). */
typedef struct slot_view_s {
    const char *name;
    const char *port;
    slot_start_t start;
    slot_state_t state;
    const recipe_t *recipe;      /* NULL: none configured / loaded */
    const char *recipe_error;    /* why the recipe could not be loaded ("" if none) */
    /* current job (state RUNNING) */
    const char *job_uuid;        /* "" when none */
    job_state_t stage;
    uint64_t bytes_done, bytes_total; /* of all images of the job */
    uint64_t elapsed_ms;
    const job_report_t *report;  /* live report of the current job, NULL when none */
    /* last finished job */
    const char *last_uuid;       /* "" when none */
    job_result_t last_result;
    est_class_t last_class;
    const char *last_message;
    char last_mac[18];
    uint64_t jobs_pass, jobs_fail; /* boards (a retried attempt counts only once decided) */
    /* retry policy: attempt of the current / last job (1-based) of `attempts` allowed;
     * `retrying`: an attempt failed and the next one starts in a moment (state stays RUNNING) */
    unsigned attempt, attempts;
    bool retrying;
} slot_view_t;

typedef struct jobmgr_cbs_s {
    void (*slot_cb)(jobmgr_t *m, size_t slot, const slot_view_t *v);     /* state or stage */
    void (*progress_cb)(jobmgr_t *m, size_t slot, const slot_view_t *v); /* bytes */
    /* A job's result, after its row is committed: seq is the MES cursor value. */
    void (*result_cb)(jobmgr_t *m, size_t slot, const char *uuid, int64_t seq,
                      const job_report_t *r);
    void (*log_cb)(jobmgr_t *m, size_t slot, job_log_level_t lvl, const char *msg);
    /* Before every job (NULL: always yes): false = start none now; the caller has raised an
     * alarm (the database file was replaced, serve_dbwatch.h). Starting fails with EST_EDB. */
    bool (*may_start_cb)(jobmgr_t *m, size_t slot);
} jobmgr_cbs_t;

/* Create the slots of `cfg` (which must outlive the manager), load their recipes (a recipe that
 * fails to load leaves its slot unable to start, with the error in the view) and store them. */
int jobmgr_new(uv_loop_t *loop, const station_cfg_t *cfg, store_t *store,
               const jobmgr_cbs_t *cbs, void *data, jobmgr_t **out);
void *jobmgr_data(const jobmgr_t *m);
/* Start presence detection for auto/loop slots. */
void jobmgr_run(jobmgr_t *m);
size_t jobmgr_slot_count(const jobmgr_t *m);
int jobmgr_slot_index(const jobmgr_t *m, const char *name); /* -1 if unknown */
void jobmgr_slot_view(jobmgr_t *m, size_t slot, slot_view_t *v);
/* Start a job now on an idle/waiting slot: 0, UV_EBUSY (running), UV_ENOENT (no recipe). */
int jobmgr_slot_start(jobmgr_t *m, size_t slot);
/* Cancel the slot's job (it is recorded as cancelled) and stop its presence detection. */
int jobmgr_slot_cancel(jobmgr_t *m, size_t slot);
/* Give slot `slot` another recipe: `r` (malloc'ed, loaded; the manager takes it over, also on
 * failure) or NULL to go back to the configuration's recipe. Refused with UV_EBUSY while a job
 * runs (a presence probe is fine: the next job uses the new recipe). UV_ENOENT when the config's
 * recipe does not load or cannot run on this slot (the slot then has none; err says why);
 * UV_EINVAL when `r` cannot run on this slot (its test needs after hard_reset, which the slot's
 * "reset_override" forbids: docs/STATION.md "Reset modes"; the slot keeps its recipe). The caller
 * stores the choice. */
int jobmgr_slot_set_recipe(jobmgr_t *m, size_t slot, recipe_t *r, char *err, size_t errlen);
/* A loaded recipe (from the configuration or set through the API) by content hash, or NULL. */
const recipe_t *jobmgr_find_recipe(const jobmgr_t *m, const char *hash);
/* Stop everything: running jobs are cancelled and recorded as interrupted; when the last
 * handle is closed, done_cb runs (the manager may then be freed). */
void jobmgr_shutdown(jobmgr_t *m, void (*done_cb)(jobmgr_t *m));
void jobmgr_free(jobmgr_t *m);

/* How late the event loop runs (a timer every JOBMGR_LAG_PERIOD_MS measures its own delay; a
 * delay is time every slot's reply timers lose), and the store writer's state, for /metrics. */
#define JOBMGR_LAG_PERIOD_MS 50
#define JOBMGR_LAG_BUCKETS 10
extern const double jobmgr_lag_le_s[JOBMGR_LAG_BUCKETS]; /* bucket bounds, seconds */
typedef struct jobmgr_loop_stats_s {
    uint64_t lag_max_1m_us;                     /* longest delay over the last minute */
    uint64_t lag_bucket[JOBMGR_LAG_BUCKETS];    /* samples with delay <= jobmgr_lag_le_s[k] */
    uint64_t lag_count;                         /* samples since start */
    double lag_sum_s;
    uint64_t store_write_max_ms; /* longest single write of the writer thread since start */
    size_t store_pending;        /* writes queued, not yet completed */
} jobmgr_loop_stats_t;
void jobmgr_loop_stats(const jobmgr_t *m, jobmgr_loop_stats_t *out);

#endif
