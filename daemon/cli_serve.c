/* SPDX-License-Identifier: MIT */
/* cli_serve.c — `espstation serve`: the station daemon. One libuv loop: the job manager's slots
 * and the store; SIGTERM/SIGINT stop it gracefully (running jobs are cancelled and recorded as
 * interrupted, every handle closed). Logs one line per result on stderr.
 * Must not: implement slot logic (jobmgr.c) or storage (store.c). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "config.h"
#include "jobmgr.h"
#include "serve.h"
#include "store.h"

typedef struct serve_s {
    uv_loop_t *loop;
    const station_cfg_t *cfg;
    store_t *store;
    jobmgr_t *mgr;
    uv_signal_t sigint, sigterm;
    bool verbose;
    bool stopping;
    const serve_hooks_t *hooks;
} serve_t;

static void serve_slot_cb(jobmgr_t *m, size_t i, const slot_view_t *v)
{
    serve_t *sv = jobmgr_data(m);
    (void)i;
    if (sv->verbose)
        fprintf(stderr, "[%s] %s%s%s\n", v->name, slot_state_name(v->state),
                v->state == SLOT_ST_RUNNING ? ": " : "",
                v->state == SLOT_ST_RUNNING ? job_state_name(v->stage) : "");
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
    if (sv->hooks && sv->hooks->result_cb)
        sv->hooks->result_cb(sv->hooks->data, v.name, uuid, r);
}

static void serve_log_cb(jobmgr_t *m, size_t i, job_log_level_t lvl, const char *msg)
{
    serve_t *sv = jobmgr_data(m);
    slot_view_t v;
    if (lvl < JOB_LOG_WARN && !sv->verbose)
        return;
    jobmgr_slot_view(m, i, &v);
    fprintf(stderr, "[%s] %s: %s\n", v.name,
            lvl == JOB_LOG_ERROR  ? "error"
            : lvl == JOB_LOG_WARN ? "warning"
                                  : "info",
            msg);
}

static void serve_stopped_cb(jobmgr_t *m)
{
    serve_t *sv = jobmgr_data(m);
    uv_close((uv_handle_t *)&sv->sigint, NULL);
    uv_close((uv_handle_t *)&sv->sigterm, NULL);
    if (sv->hooks && sv->hooks->stop_cb)
        sv->hooks->stop_cb(sv->hooks->data);
}

static void serve_signal_cb(uv_signal_t *h, int signum)
{
    serve_t *sv = h->data;
    if (sv->stopping)
        return;
    sv->stopping = true;
    fprintf(stderr, "espstation: %s: stopping (running jobs are recorded as interrupted)\n",
            strsignal(signum));
    jobmgr_shutdown(sv->mgr, serve_stopped_cb);
}

int serve_run(const station_cfg_t *cfg, bool verbose, const serve_hooks_t *hooks)
{
    static const jobmgr_cbs_t cbs = {.slot_cb = serve_slot_cb,
                                     .result_cb = serve_result_cb,
                                     .log_cb = serve_log_cb};
    serve_t sv;
    int rc;

    memset(&sv, 0, sizeof sv);
    sv.loop = uv_default_loop();
    sv.cfg = cfg;
    sv.verbose = verbose;
    sv.hooks = hooks;
    signal(SIGPIPE, SIG_IGN);

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
    rc = jobmgr_new(sv.loop, cfg, sv.store, &cbs, &sv, &sv.mgr);
    if (rc != 0) {
        fprintf(stderr, "espstation: cannot create the slots: %s\n", uv_strerror(rc));
        store_close(sv.store);
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
    uv_signal_init(sv.loop, &sv.sigint);
    uv_signal_init(sv.loop, &sv.sigterm);
    sv.sigint.data = sv.sigterm.data = &sv;
    uv_signal_start(&sv.sigint, serve_signal_cb, SIGINT);
    uv_signal_start(&sv.sigterm, serve_signal_cb, SIGTERM);
    if (hooks && hooks->start_cb)
        hooks->start_cb(hooks->data, sv.loop, sv.mgr);
    jobmgr_run(sv.mgr);
    uv_run(sv.loop, UV_RUN_DEFAULT);
    jobmgr_free(sv.mgr);
    store_close(sv.store);
    rc = 0;
    uv_loop_close(sv.loop);
    fprintf(stderr, "espstation: stopped\n");
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static const char serve_help[] =
    "usage: espstation serve --config FILE [--verbose]\n"
    "\n"
    "Run the station daemon: every slot of the station config runs its recipe on its port, all\n"
    "concurrently; every job is recorded in the SQLite database. SIGTERM or Ctrl-C stops it\n"
    "(running jobs are recorded as interrupted). See docs/STATION.md.\n";

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
