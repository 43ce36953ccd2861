/* SPDX-License-Identifier: MIT */
/* cli_serve.c — `espstation serve`: the station daemon. One libuv loop: the job manager's slots,
 * the store and the HTTP API; SIGTERM/SIGINT stop it gracefully (no new connections, running
 * jobs cancelled and recorded as interrupted, then event streams ended and connections closed,
 * every handle closed). Logs one line per result on stderr.
 * Must not: implement slot logic (jobmgr.c), storage (store.c) or endpoints (api*.c). */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api.h"
#include "auth.h"
#include "cfx.h"
#include "cli.h"
#include "config.h"
#include "http.h"
#include "jobmgr.h"
#include "pool.h"
#include "serve.h"
#include "serve_dbwatch.h"
#include "serve_guard.h"
#include "store.h"

typedef struct serve_s {
    uv_loop_t *loop;
    const station_cfg_t *cfg;
    store_t *store;
    jobmgr_t *mgr;
    auth_t *auth;
    api_t *api;
    cfx_t *cfx; /* NULL: no "cfx" section (docs/CFX.md) */
    http_t *http;
    char *web_root;
    uv_signal_t sigint, sigterm;
    bool verbose;
    bool stopping;
    const serve_hooks_t *hooks;
    serve_dbwatch_t dbw; /* the database file under watch (replaced: no new jobs) */
} serve_t;

static void serve_slot_cb(jobmgr_t *m, size_t i, const slot_view_t *v)
{
    serve_t *sv = jobmgr_data(m);
    if (sv->verbose)
        fprintf(stderr, "[%s] %s%s%s\n", v->name, slot_state_name(v->state),
                v->state == SLOT_ST_RUNNING ? ": " : "",
                v->state == SLOT_ST_RUNNING ? job_state_name(v->stage) : "");
    if (sv->api)
        api_on_slot(sv->api, i, v);
}

static void serve_progress_cb(jobmgr_t *m, size_t i, const slot_view_t *v)
{
    serve_t *sv = jobmgr_data(m);
    if (sv->api)
        api_on_progress(sv->api, i, v);
}

static void serve_result_cb(jobmgr_t *m, size_t i, const char *uuid, int64_t seq,
                            const job_report_t *r)
{
    serve_t *sv = jobmgr_data(m);
    slot_view_t v;
    char mac[18] = "-";
    jobmgr_slot_view(m, i, &v);
    if (r->have_mac)
        job_fmt_mac(r->mac, mac);
    if (r->result == JOB_RESULT_PASS)
        fprintf(stderr, "[%s] PASS %s %s flash %06x in %.1f s (job %s, seq %lld)\n", v.name,
                r->chip ? r->chip->name : "?", mac, r->flash_id,
                (r->finished_ms - r->started_ms) / 1000.0, uuid, (long long)seq);
    else
        fprintf(stderr, "[%s] %s %s %s: %s (job %s, seq %lld)\n     hint: %s\n", v.name,
                r->result == JOB_RESULT_CANCELLED ? "CANCELLED" : "FAIL",
                est_class_name(r->error_class), mac, r->message, uuid, (long long)seq,
                est_class_hint(r->error_class));
    if (sv->api)
        api_on_result(sv->api, i, uuid, seq, r);
    if (sv->hooks && sv->hooks->result_cb)
        sv->hooks->result_cb(sv->hooks->data, v.name, uuid, r);
}

static void serve_log_cb(jobmgr_t *m, size_t i, job_log_level_t lvl, const char *msg)
{
    serve_t *sv = jobmgr_data(m);
    slot_view_t v;
    if (sv->api)
        api_on_log(sv->api, i, lvl, msg);
    if (lvl < JOB_LOG_WARN && !sv->verbose)
        return;
    jobmgr_slot_view(m, i, &v);
    fprintf(stderr, "[%s] %s: %s\n", v.name,
            lvl == JOB_LOG_ERROR  ? "error"
            : lvl == JOB_LOG_WARN ? "warning"
                                  : "info",
            msg);
}

static void serve_http_done_cb(http_t *h, void *data)
{
    serve_t *sv = data;
    (void)h;
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    serve_dbwatch_stop(&sv->dbw);
    cfx_stop(sv->cfx, NULL, NULL); /* after the interrupted jobs' messages are in the outbox */
    if (sv->hooks && sv->hooks->stop_cb)
        sv->hooks->stop_cb(sv->hooks->data);
}

/* Every slot has stopped (the interrupted results are recorded and were published): now end
 * the event streams and close the connections. */
static void serve_stopped_cb(jobmgr_t *m)
{
    serve_t *sv = jobmgr_data(m);
    http_stop(sv->http, serve_http_done_cb, sv);
}

static void serve_api_log(void *data, const char *line)
{
    (void)data;
    fprintf(stderr, "espstation: %s\n", line);
}

/* The CFX endpoint's state in GET /api/v1/station ("cfx") and /metrics (docs/CFX.md). */
static void serve_station_extra(void *data, struct cJSON *station)
{
    const serve_t *sv = data;
    cJSON *x = cfx_status_json(sv->cfx);
    if (x)
        cJSON_AddItemToObject(station, "cfx", x);
}

static size_t serve_metrics_extra(void *data, char *buf, size_t cap)
{
    const serve_t *sv = data;
    return cfx_metrics_text(sv->cfx, buf, cap);
}

/* Before every job: is the database still the file this daemon opened? */
static bool serve_may_start_cb(jobmgr_t *m, size_t slot)
{
    serve_t *sv = jobmgr_data(m);
    (void)slot;
    return serve_dbwatch_ok(&sv->dbw);
}

static void serve_db_alarm_cb(void *data, const char *alarm)
{
    serve_t *sv = data;
    if (sv->api)
        api_set_alarm(sv->api, alarm);
}

/* Start failed after the manager existed: close its handles (and the listener) before freeing. */
static void serve_abort_cb(jobmgr_t *m)
{
    (void)m;
}

static void serve_signal_cb(uv_signal_t *h, int signum)
{
    serve_t *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = true;
    fprintf(stderr, "espstation: %s: stopping (running jobs are recorded as interrupted)\n",
            strsignal(signum));
    http_close_listener(sv->http);
    jobmgr_shutdown(sv->mgr, serve_stopped_cb);
}

static int serve_run_locked(serve_t *svp, const serve_hooks_t *hooks);

int serve_run(const station_cfg_t *cfg, bool verbose, const serve_hooks_t *hooks)
{
    serve_t sv;
    serve_guard_t guard;
    char err[700];
    int rc;

    memset(&sv, 0, sizeof sv);
    sv.loop = uv_default_loop();
    sv.cfg = cfg;
    sv.verbose = verbose;
    sv.hooks = hooks;
    signal(SIGPIPE, SIG_IGN);

    /* A stub directory that is not there would fail every job with stub_failed: say it once,
     * before any board is touched. */
    if (cfg->stub_dir) {
        struct stat sst;
        const char *why = stat(cfg->stub_dir, &sst) != 0 ? strerror(errno)
                          : !S_ISDIR(sst.st_mode)       ? "not a directory"
                                                        : NULL;
        if (why) {
            fprintf(stderr,
                    "espstation: stub_dir %s: %s: copy an esptool's targets/stub_flasher/1 (or "
                    "/2) there, or remove \"stub_dir\" from the config to flash with the ROM "
                    "loader (docs/DEPLOY.md)\n",
                    cfg->stub_dir, why);
            return CLI_EXIT_USAGE;
        }
    }

    /* One daemon per database and per network port, and descriptors for every slot, before
     * anything is written: crash recovery below rewrites rows (serve_guard.h). */
    {
        unsigned long long nofile = 0;
        if (serve_guard_nofile(cfg, &nofile, err, sizeof err) != 0) {
            fprintf(stderr, "espstation: %s\n", err);
            return CLI_EXIT_USAGE;
        }
        if (serve_guard_take(cfg, &guard, err, sizeof err) != 0) {
            fprintf(stderr, "espstation: %s\n", err);
            return CLI_EXIT_FAIL;
        }
    }
    rc = serve_run_locked(&sv, hooks);
    serve_guard_release(&guard);
    return rc;
}

/* serve_run once the guards hold. */
static int serve_run_locked(serve_t *svp, const serve_hooks_t *hooks)
{
    static const jobmgr_cbs_t cbs = {.slot_cb = serve_slot_cb,
                                     .progress_cb = serve_progress_cb,
                                     .result_cb = serve_result_cb,
                                     .log_cb = serve_log_cb,
                                     .may_start_cb = serve_may_start_cb};
    serve_t sv = *svp;
    const station_cfg_t *cfg = sv.cfg;
    api_opts_t ao;
    cfx_cfg_t cfxc;
    char err[700];
    int rc;

    rc = store_open(cfg->database, &sv.store);
    if (rc < 0) {
        fprintf(stderr, "espstation: cannot open the database %s: %s\n", cfg->database,
                sv.store ? store_errmsg(sv.store) : "out of memory");
        store_close(sv.store);
        return CLI_EXIT_FAIL;
    }
    if (rc > 0)
        fprintf(stderr, "espstation: %d job(s) left running by an earlier crash marked "
                        "interrupted\n",
                rc);
    /* the exactly-once pools (docs/DEVICE-DATA.md): a job's pass consumes its pool items in the
     * transaction that records it; reservations a crash left behind are released now */
    rc = pool_attach(sv.store, cfg->database, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "espstation: the value pools: %s\n", err);
        store_close(sv.store);
        return CLI_EXIT_FAIL;
    }
    if (rc > 0) fprintf(stderr, "espstation: %d pool item(s) of crashed jobs recovered\n", rc);
    if (cfg->token_file && auth_load(cfg->token_file, &sv.auth, err, sizeof err) != 0) {
        fprintf(stderr, "espstation: %s\n", err);
        store_close(sv.store);
        return CLI_EXIT_USAGE;
    }
    rc = jobmgr_new(sv.loop, cfg, sv.store, &cbs, &sv, &sv.mgr);
    if (rc != 0) {
        fprintf(stderr, "espstation: cannot create the slots: %s\n", uv_strerror(rc));
        auth_free(sv.auth);
        store_close(sv.store);
        return CLI_EXIT_FAIL;
    }
    if (serve_dbwatch_start(sv.loop, cfg->database, &sv.dbw, serve_db_alarm_cb, &sv, err,
                            sizeof err) != 0)
        fprintf(stderr, "espstation: %s (the database file is not watched)\n", err);
    sv.web_root = http_web_root(cfg);
    memset(&ao, 0, sizeof ao);
    ao.loop = sv.loop;
    ao.cfg = cfg;
    ao.store = sv.store;
    ao.mgr = sv.mgr;
    ao.auth = sv.auth;
    ao.web_root = sv.web_root;
    ao.log_cb = serve_api_log;
    ao.database_id = sv.dbw.id;
    ao.station_extra = serve_station_extra;
    ao.metrics_extra = serve_metrics_extra;
    ao.extra_data = &sv;
    rc = api_new(&ao, &sv.api, err, sizeof err);
    if (rc == 0)
        rc = http_start(sv.loop, cfg->listen, &cfg->http, sv.api, &sv.http, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "espstation: %s\n", err);
        serve_dbwatch_stop(&sv.dbw);
        jobmgr_shutdown(sv.mgr, serve_abort_cb);
        uv_run(sv.loop, UV_RUN_DEFAULT);
        http_free(sv.http);
        api_free(sv.api);
        jobmgr_free(sv.mgr);
        auth_free(sv.auth);
        free(sv.web_root);
        store_close(sv.store);
        uv_loop_close(sv.loop);
        return CLI_EXIT_FAIL;
    }
    fprintf(stderr, "espstation %s: station %s (%s), %zu slot(s), database %s\n", ESTN_VERSION,
            cfg->id, cfg->name, cfg->n_slots, cfg->database);
    for (size_t i = 0; i < cfg->n_slots; i++) {
        slot_view_t v;
        jobmgr_slot_view(sv.mgr, i, &v);
        fprintf(stderr, "  slot %-6s %-32s %-6s %s\n", v.name, v.port, config_start_name(v.start),
                v.recipe ? v.recipe->name : v.recipe_error);
    }
    fprintf(stderr, "espstation: HTTP API and dashboard on %s (reads %s, %zu API token(s)%s)\n",
            http_url(sv.http), cfg->http.read_token ? "need a token" : "open",
            auth_count(sv.auth), sv.web_root ? "" : "; no dashboard files found");
    uv_signal_init(sv.loop, &sv.sigint);
    uv_signal_init(sv.loop, &sv.sigterm);
    sv.sigint.data = sv.sigterm.data = &sv;
    uv_signal_start(&sv.sigint, serve_signal_cb, SIGINT);
    uv_signal_start(&sv.sigterm, serve_signal_cb, SIGTERM);
    if (hooks && hooks->start_cb)
        hooks->start_cb(hooks->data, sv.loop, sv.mgr);
    rc = cfx_config_parse(cfg->cfx_json, cfg->dir, cfg->id, &cfxc, err, sizeof err);
    if (rc == 0 && cfx_new(sv.loop, cfg, &cfxc, sv.store, &sv.cfx, err, sizeof err) != 0)
        rc = EST_EDB;
    if (rc != 0) { /* stop as after a signal: everything closes, then the failure status */
        fprintf(stderr, "espstation: %s\n", err);
        sv.stopping = true;
        http_close_listener(sv.http);
        jobmgr_shutdown(sv.mgr, serve_stopped_cb);
    } else {
        if (sv.cfx)
            fprintf(stderr, "espstation: CFX endpoint %s to %s, address %s\n", cfxc.handle,
                    cfxc.broker, cfxc.address);
        cfx_set_log(sv.cfx, serve_api_log, NULL);
        cfx_start(sv.cfx);
        cfx_recipes_activated(sv.cfx, sv.mgr);
        jobmgr_run(sv.mgr);
    }
    uv_run(sv.loop, UV_RUN_DEFAULT);
    cfx_free(sv.cfx);
    cfx_config_free(&cfxc);
    http_free(sv.http);
    api_free(sv.api);
    jobmgr_free(sv.mgr);
    auth_free(sv.auth);
    free(sv.web_root);
    store_close(sv.store);
    uv_loop_close(sv.loop);
    fprintf(stderr, "espstation: stopped\n");
    return rc == 0 ? CLI_EXIT_OK : rc == EST_EUSAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
}

static const char serve_help[] =
    "usage: espstation serve --config FILE [--verbose]\n"
    "\n"
    "Run the station daemon: every slot of the station config runs its recipe on its port, all\n"
    "concurrently; every job is recorded in the SQLite database. The HTTP API and the dashboard\n"
    "listen on the config's \"listen\" address (default 127.0.0.1:8080). SIGTERM or Ctrl-C stops\n"
    "it (running jobs are recorded as interrupted). See docs/STATION.md and docs/API.md.\n"
    "\n"
    "  -c, --config FILE  the station config (JSON; relative paths are relative to its directory)\n"
    "  -v, --verbose      log every slot state change (results and warnings are always logged)\n"
    "  -h, --help         print this help\n";

int cli_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool verbose = false;
    station_cfg_t cfg;
    char err[512];
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'v': verbose = true; break;
        case 'h': fputs(serve_help, stdout); return CLI_EXIT_OK;
        default:
            fprintf(stderr, "espstation serve: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], serve_help);
            return CLI_EXIT_USAGE;
        }
    }
    if (!path || optind != argc) {
        fputs(serve_help, stderr);
        return CLI_EXIT_USAGE;
    }
    if (config_load(path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "espstation: config %s: %s\n", path, err);
        return CLI_EXIT_USAGE;
    }
    rc = serve_run(&cfg, verbose, NULL);
    config_free(&cfg);
    return rc;
}
