/* SPDX-License-Identifier: MIT */
/* cfx.c — the CFX endpoint (docs/CFX.md): store hooks write each job's messages into the
 * outbox inside the job's transaction; on the loop, the sender reads the outbox in id order over
 * its own SQLite connection, sends each row as a durable AMQP message whose message-id is the
 * CFX UniqueID, and deletes the row only once the broker has accepted it. EndpointConnected (at
 * every connect), Heartbeat and EndpointShuttingDown are sent directly (not kept).
 * Must not: block the loop on the broker, or hold anything in memory that a crash would lose. */
#include "cfx.h"
#include "cfx_amqp.h"
#include "cfx_msg.h"
#include "cfx_outbox.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include <sqlite3.h>

#define CX_WINDOW 64          /* unsettled messages at most */
#define CX_POLL_MS 1000       /* outbox read and depth refresh without a wake-up */
#define CX_FLUSH_MS 20        /* accepted rows are deleted in batches */
#define CX_TRANSIENT (1ull << 63) /* tags of messages not from the outbox */

struct cfx_s {
    uv_loop_t *loop;
    const station_cfg_t *scfg;
    const cfx_cfg_t *c;
    cfx_outbox_cfg_t ob;
    const char **slot_names;
    sqlite3 *db; /* the module's own connection (loop thread only) */
    cfx_amqp_t *amqp;
    uv_async_t wake; /* from the hooks, whatever thread the store commits on */
    atomic_bool wake_open; /* false once `wake` is closing: the hooks then only write rows */
    uv_timer_t poll, flush, heartbeat;
    int open_handles;
    bool started, stopping, pumping;
    void (*done_cb)(void *);
    void *done_data;
    /* sending */
    int64_t last_sent; /* highest outbox id sent on this connection */
    int inflight;
    int64_t *done_ids; /* accepted, to delete */
    size_t n_done, cap_done;
    uint64_t transient_seq, sent, accepted;
    cfx_outbox_depth_t depth;
    void (*log_cb)(void *data, const char *line);
    void *log_data;
    char logged_error[512]; /* the last error logged: a retry failing the same way is quiet */
};

/* ---- store hooks: any thread, only the handle they are given ---- */

static int cx_begin_hook(void *db, const char *uuid, const job_report_t *r,
                         const store_job_end_t *end, int64_t seq, void *ud)
{
    cfx_t *x = ud;
    (void)r, (void)end, (void)seq;
    int rc = cfx_outbox_job_begin(db, &x->ob, uuid);
    if (rc == SQLITE_OK && atomic_load(&x->wake_open))
        uv_async_send(&x->wake);
    return rc;
}

static int cx_finish_hook(void *db, const char *uuid, const job_report_t *r,
                          const store_job_end_t *end, int64_t seq, void *ud)
{
    cfx_t *x = ud;
    (void)end, (void)seq;
    int rc = cfx_outbox_job_end(db, &x->ob, uuid, r);
    if (rc == SQLITE_OK && atomic_load(&x->wake_open))
        uv_async_send(&x->wake);
    return rc;
}

/* ---- sending ---- */

static void cx_send_transient(cfx_t *x, const char *kind, cJSON *body)
{
    char uid[STORE_UUID_LEN];
    char *env;
    if (cfx_amqp_credit(x->amqp) <= 0 || store_new_uuid(uid) != 0) {
        cJSON_Delete(body);
        return;
    }
    env = cfx_envelope(kind, uid, store_now_ms(), x->c->handle, NULL, NULL, body);
    if (!env)
        return;
    if (cfx_amqp_send(x->amqp, CX_TRANSIENT | ++x->transient_seq, uid, kind, env, strlen(env)) ==
        0)
        x->sent++;
    cJSON_free(env);
}

static int cx_send_row(const cfx_outbox_row_t *row, void *ud)
{
    cfx_t *x = ud;
    if (row->id <= x->last_sent)
        return 0; /* sent meanwhile (cannot happen with the pumping guard; kept cheap) */
    if (cfx_amqp_send(x->amqp, (uint64_t)row->id, row->unique_id, row->kind, row->body,
                      strlen(row->body)) != 0)
        return 1;
    x->last_sent = row->id;
    x->inflight++;
    x->sent++;
    return 0;
}

/* Send outbox rows in id order while the link has credit and the window room. */
static void cx_pump(cfx_t *x)
{
    /* sending runs the connection's events, which may ask for more (credit): not re-entered */
    if (x->stopping || !x->db || x->pumping)
        return;
    x->pumping = true;
    for (;;) {
        int credit = cfx_amqp_credit(x->amqp), room = CX_WINDOW - x->inflight, n;
        int max = credit < room ? credit : room;
        if (max <= 0)
            break;
        n = cfx_outbox_fetch(x->db, CFX_SINK, x->last_sent, (size_t)max, cx_send_row, x);
        if (n <= 0 || n < max)
            break;
    }
    x->pumping = false;
}

static void cx_flush_deletes(cfx_t *x)
{
    if (!x->n_done || !x->db)
        return;
    /* SQLITE_BUSY (the store is committing): keep them for the next round */
    if (cfx_outbox_delete(x->db, x->done_ids, x->n_done) == SQLITE_OK)
        x->n_done = 0;
}

static void cx_flush_cb(uv_timer_t *t)
{
    cfx_t *x = t->data;
    cx_flush_deletes(x);
    cx_pump(x);
}

static void cx_outcome_cb(void *ud, uint64_t tag, cfx_outcome_t o, const char *why)
{
    cfx_t *x = ud;
    if (tag & CX_TRANSIENT) {
        if (o == CFX_OUT_ACCEPTED)
            x->accepted++;
        return;
    }
    if (x->inflight > 0)
        x->inflight--;
    if (o == CFX_OUT_ACCEPTED) {
        x->accepted++;
        if (x->n_done == x->cap_done) {
            size_t cap = x->cap_done ? x->cap_done * 2 : 128;
            int64_t *n = realloc(x->done_ids, cap * sizeof *n);
            if (!n)
                return; /* not deleted: sent again after a reconnect (same UniqueID) */
            x->done_ids = n;
            x->cap_done = cap;
        }
        x->done_ids[x->n_done++] = (int64_t)tag;
    } else if (o == CFX_OUT_REJECTED) {
        cfx_outbox_park(x->db, (int64_t)tag, why);
    } else if ((int64_t)tag - 1 < x->last_sent) {
        x->last_sent = (int64_t)tag - 1; /* released: send it (and what followed) again */
    }
    if (!uv_is_active((uv_handle_t *)&x->flush))
        uv_timer_start(&x->flush, cx_flush_cb, CX_FLUSH_MS, 0);
}

static void cx_credit_cb(void *ud)
{
    cx_pump(ud);
}

static void cx_log(cfx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cx_log(cfx_t *x, const char *fmt, ...)
{
    char line[700];
    va_list ap;
    if (!x->log_cb)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    x->log_cb(x->log_data, line);
}

static void cx_state_cb(void *ud, cfx_amqp_state_t st, const char *error)
{
    cfx_t *x = ud;
    if (st == CFX_AMQP_CONNECTED) {
        cx_log(x, "CFX: connected to %s (%s), %" PRId64 " message(s) waiting in the outbox",
               x->c->broker, x->c->address, x->depth.waiting);
        x->logged_error[0] = 0;
    } else if (st == CFX_AMQP_DISCONNECTED && error && strcmp(error, x->logged_error) != 0) {
        cx_log(x, "CFX: %s: %s; retrying (messages stay in the outbox)", x->c->broker, error);
        snprintf(x->logged_error, sizeof x->logged_error, "%s", error);
    }
    if (st == CFX_AMQP_CONNECTED) {
        cx_send_transient(x, CFX_ENDPOINT_CONNECTED,
                          cfx_body_endpoint(x->c->handle, x->c->broker, x->c->request_address));
        cx_pump(x);
    } else {
        /* what was unsettled on the lost connection goes again, in order, same UniqueIDs */
        x->last_sent = 0;
        x->inflight = 0;
    }
}

static void cx_wake_cb(uv_async_t *a)
{
    cx_pump(a->data);
}

static void cx_poll_cb(uv_timer_t *t)
{
    cfx_t *x = t->data;
    cx_flush_deletes(x);
    cx_pump(x);
    cfx_outbox_depth(x->db, CFX_SINK, &x->depth);
}

static void cx_heartbeat_cb(uv_timer_t *t)
{
    cfx_t *x = t->data;
    if (cfx_amqp_state(x->amqp) == CFX_AMQP_CONNECTED)
        cx_send_transient(x, CFX_HEARTBEAT, cfx_body_heartbeat(x->c->handle, x->c->heartbeat_s));
}

static void cx_closed(uv_handle_t *h)
{
    cfx_t *x = h->data;
    if (--x->open_handles == 0 && x->done_cb)
        x->done_cb(x->done_data);
}

static void cx_amqp_closed_cb(void *ud)
{
    cfx_t *x = ud;
    cx_flush_deletes(x); /* what the broker accepted before the close */
    if (--x->open_handles == 0 && x->done_cb)
        x->done_cb(x->done_data);
}

/* ---- life cycle ---- */

static int cx_open_db(cfx_t *x, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(x->scfg->database, &x->db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        /* short: a delete that meets the store's commit is simply tried again later */
        sqlite3_busy_timeout(x->db, 200);
        rc = sqlite3_exec(x->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cfx: opening %s: %s", x->scfg->database,
                 x->db ? sqlite3_errmsg(x->db) : "out of memory");
        return -1;
    }
    return 0;
}

static int cx_amqp_new(cfx_t *x, char *err, size_t errlen)
{
    cfx_amqp_opts_t o;
    char e[400];
    memset(&o, 0, sizeof o);
    o.loop = x->loop;
    o.url = x->c->broker;
    o.address = x->c->address;
    o.user = x->c->user;
    o.password = x->c->password;
    o.mechs = x->c->mechanisms;
    o.ca_file = x->c->ca_file;
    o.cert_file = x->c->cert_file;
    o.key_file = x->c->key_file;
    o.container_id = x->c->handle;
    o.idle_timeout_ms = 60000;
    o.backoff_min_ms = 1000;
    o.backoff_max_ms = x->c->reconnect_max_s * 1000;
    o.state_cb = cx_state_cb;
    o.credit_cb = cx_credit_cb;
    o.outcome_cb = cx_outcome_cb;
    o.closed_cb = cx_amqp_closed_cb;
    o.ud = x;
    if (cfx_amqp_new(&o, &x->amqp, e, sizeof e) != 0) {
        snprintf(err, errlen, "$.cfx: %s", e);
        return -1;
    }
    return 0;
}

static void cx_timer(cfx_t *x, uv_timer_t *t)
{
    uv_timer_init(x->loop, t);
    t->data = x;
    x->open_handles++;
}

int cfx_new(uv_loop_t *loop, const station_cfg_t *scfg, const cfx_cfg_t *c, store_t *store,
            cfx_t **out, char *err, size_t errlen)
{
    cfx_t *x;
    int n;
    *out = NULL;
    if (!c->enabled)
        return 0;
    x = calloc(1, sizeof *x);
    if (!x || !(x->slot_names = calloc(scfg->n_slots + 1, sizeof *x->slot_names))) {
        free(x);
        snprintf(err, errlen, "cfx: out of memory");
        return -1;
    }
    x->loop = loop;
    x->scfg = scfg;
    x->c = c;
    for (size_t i = 0; i < scfg->n_slots; i++)
        x->slot_names[i] = scfg->slots[i].name;
    x->ob = (cfx_outbox_cfg_t){CFX_SINK, c->handle, x->slot_names, scfg->n_slots, c->outbox_max};
    if (cx_open_db(x, err, errlen) != 0 || cx_amqp_new(x, err, errlen) != 0) {
        cfx_free(x);
        return -1;
    }
    n = cfx_outbox_recover(x->db, &x->ob);
    if (n < 0) {
        snprintf(err, errlen, "cfx: completing the messages of interrupted jobs: %s",
                 sqlite3_errstr(-n));
        cfx_free(x);
        return -1;
    }
    uv_async_init(loop, &x->wake, cx_wake_cb);
    x->wake.data = x;
    x->open_handles = 2; /* wake and the AMQP connection */
    atomic_store(&x->wake_open, true);
    cx_timer(x, &x->poll);
    cx_timer(x, &x->flush);
    cx_timer(x, &x->heartbeat);
    if (store_add_begin_hook(store, cx_begin_hook, x) != 0 ||
        store_add_finish_hook(store, cx_finish_hook, x) != 0) {
        snprintf(err, errlen, "cfx: cannot register the store hooks");
        *out = x; /* handles are open: the caller stops it */
        return -1;
    }
    cfx_outbox_depth(x->db, CFX_SINK, &x->depth);
    *out = x;
    return 0;
}

void cfx_start(cfx_t *x)
{
    if (!x || x->started)
        return;
    x->started = true;
    cfx_amqp_start(x->amqp);
    uv_timer_start(&x->poll, cx_poll_cb, CX_POLL_MS, CX_POLL_MS);
    uv_timer_start(&x->heartbeat, cx_heartbeat_cb, (uint64_t)x->c->heartbeat_s * 1000,
                   (uint64_t)x->c->heartbeat_s * 1000);
}

void cfx_stop(cfx_t *x, void (*done_cb)(void *data), void *data)
{
    if (!x) {
        if (done_cb)
            done_cb(data);
        return;
    }
    x->done_cb = done_cb;
    x->done_data = data;
    if (cfx_amqp_state(x->amqp) == CFX_AMQP_CONNECTED)
        cx_send_transient(x, CFX_ENDPOINT_SHUTTING_DOWN, cfx_body_handle(x->c->handle));
    x->stopping = true;
    atomic_store(&x->wake_open, false);
    uv_close((uv_handle_t *)&x->wake, cx_closed);
    uv_close((uv_handle_t *)&x->poll, cx_closed);
    uv_close((uv_handle_t *)&x->flush, cx_closed);
    uv_close((uv_handle_t *)&x->heartbeat, cx_closed);
    cfx_amqp_close(x->amqp);
}

void cfx_free(cfx_t *x)
{
    if (!x)
        return;
    cfx_amqp_free(x->amqp);
    if (x->db)
        sqlite3_close(x->db);
    free(x->done_ids);
    free(x->slot_names);
    free(x);
}

void cfx_status(const cfx_t *x, cfx_status_t *st)
{
    memset(st, 0, sizeof *st);
    st->state = cfx_amqp_state_name(CFX_AMQP_DISABLED);
    st->error = "";
    if (!x)
        return;
    st->enabled = true;
    st->state = cfx_amqp_state_name(cfx_amqp_state(x->amqp));
    st->error = cfx_amqp_error(x->amqp);
    st->broker = x->c->broker;
    st->outbox_waiting = x->depth.waiting;
    st->outbox_parked = x->depth.parked;
    st->outbox_dropped = x->depth.dropped;
    st->outbox_max = x->c->outbox_max;
    st->alarm = x->depth.waiting * 5 >= x->c->outbox_max * 4 || x->depth.parked > 0 ||
                x->depth.dropped > 0;
    st->sent = x->sent;
    st->accepted = x->accepted;
}

void cfx_set_log(cfx_t *x, void (*log_cb)(void *data, const char *line), void *data)
{
    if (!x)
        return;
    x->log_cb = log_cb;
    x->log_data = data;
}

cJSON *cfx_status_json(const cfx_t *x)
{
    cfx_status_t st;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cfx_status(x, &st);
    cJSON_AddBoolToObject(o, "enabled", st.enabled);
    cJSON_AddStringToObject(o, "state", st.state);
    if (!st.enabled)
        return o;
    cJSON_AddStringToObject(o, "broker", st.broker);
    if (st.error[0])
        cJSON_AddStringToObject(o, "error", st.error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddNumberToObject(o, "outbox", (double)st.outbox_waiting);
    cJSON_AddNumberToObject(o, "outbox_max", (double)st.outbox_max);
    cJSON_AddNumberToObject(o, "parked", (double)st.outbox_parked);
    cJSON_AddNumberToObject(o, "dropped", (double)st.outbox_dropped);
    cJSON_AddBoolToObject(o, "alarm", st.alarm);
    return o;
}

size_t cfx_metrics_text(const cfx_t *x, char *buf, size_t cap)
{
    cfx_status_t st;
    int n;
    if (!x || !cap)
        return 0;
    cfx_status(x, &st);
    n = snprintf(buf, cap,
                 "# HELP espstation_cfx_connected 1 while the CFX broker connection is up.\n"
                 "# TYPE espstation_cfx_connected gauge\nespstation_cfx_connected %d\n"
                 "# HELP espstation_cfx_outbox_messages CFX messages not yet accepted by the "
                 "broker.\n# TYPE espstation_cfx_outbox_messages gauge\n"
                 "espstation_cfx_outbox_messages %" PRId64 "\n"
                 "# HELP espstation_cfx_outbox_max The outbox bound (cfx.outbox_max).\n"
                 "# TYPE espstation_cfx_outbox_max gauge\nespstation_cfx_outbox_max %" PRId64 "\n"
                 "# HELP espstation_cfx_parked_messages CFX messages the broker refused.\n"
                 "# TYPE espstation_cfx_parked_messages gauge\n"
                 "espstation_cfx_parked_messages %" PRId64 "\n"
                 "# HELP espstation_cfx_dropped_messages_total CFX messages lost to a full "
                 "outbox.\n# TYPE espstation_cfx_dropped_messages_total counter\n"
                 "espstation_cfx_dropped_messages_total %" PRId64 "\n"
                 "# HELP espstation_cfx_alarm 1 when the outbox is 80 %% full or messages were "
                 "refused or lost.\n# TYPE espstation_cfx_alarm gauge\nespstation_cfx_alarm %d\n",
                 strcmp(st.state, "connected") == 0, st.outbox_waiting, st.outbox_max,
                 st.outbox_parked, st.outbox_dropped, st.alarm);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

void cfx_recipes_activated(cfx_t *x, jobmgr_t *m)
{
    if (!x || !m)
        return;
    for (size_t i = 0; i < jobmgr_slot_count(m); i++) {
        slot_view_t v;
        jobmgr_slot_view(m, i, &v);
        if (!v.recipe)
            continue;
        /* its own transaction; a failure (busy database) only loses this announcement */
        cfx_outbox_put_station(x->db, &x->ob, v.name, CFX_RECIPE_ACTIVATED,
                               cfx_body_recipe_activated(v.recipe->name, v.recipe->version,
                                                         v.recipe->hash, (unsigned)i + 1));
    }
    cx_pump(x);
}
