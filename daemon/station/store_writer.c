/* SPDX-License-Identifier: MIT */
/* store_writer.c — the store's writer thread (store_writer.h): a FIFO of operations done on the
 * thread's own connection, completions handed back to the loop through a uv_async_t. */
#include "store_writer.h"
#include "est_err.h"
#include "est_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_BEGIN, OP_EVENT, OP_FINISH } op_kind_t;

typedef struct op_s {
    struct op_s *next;
    op_kind_t kind;
    store_done_fn cb;
    void *data;
    char uuid[STORE_UUID_LEN];
    /* begin */
    store_job_start_t st;
    char *slot, *port, *recipe_hash;
    /* event */
    uint64_t t_ms;
    char *ev_kind, *ev_state, *ev_detail;
    /* finish */
    job_report_t *report;
    store_job_end_t end;
    bool have_end;
    /* outcome */
    int rc;
    int64_t seq;
    char err[512];
} op_t;

struct store_writer_s {
    uv_loop_t *loop;
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    store_t *db;
    op_t *todo, **todo_tail; /* guarded by mu */
    op_t *done, **done_tail; /* guarded by mu */
    bool stop;               /* guarded by mu */
    bool closing;            /* loop side */
    size_t pending;          /* loop side */
    uint64_t max_ms;         /* written by the thread, read for metrics (a torn read is harmless) */
    void (*closed_cb)(void *);
    void *closed_data;
};

static void op_free(op_t *o)
{
    free(o->slot);
    free(o->port);
    free(o->recipe_hash);
    free(o->ev_kind);
    free(o->ev_state);
    free(o->ev_detail);
    free(o->report);
    free(o);
}

static void op_run(store_writer_t *w, op_t *o)
{
    uint64_t t0 = uv_hrtime(), ms;
    o->seq = -1;
    switch (o->kind) {
    case OP_BEGIN: o->rc = store_job_begin(w->db, &o->st); break;
    case OP_EVENT:
        o->rc = store_job_event(w->db, o->uuid, o->t_ms, o->ev_kind, o->ev_state, o->ev_detail);
        break;
    case OP_FINISH:
        o->rc = store_job_finish(w->db, o->uuid, o->report, o->have_end ? &o->end : NULL, &o->seq);
        break;
    }
    if (o->rc != 0) snprintf(o->err, sizeof o->err, "%s", store_errmsg(w->db));
    ms = (uv_hrtime() - t0) / 1000000u;
    if (ms > w->max_ms) w->max_ms = ms;
}

static void writer_thread(void *arg)
{
    store_writer_t *w = arg;
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo && !w->stop)
            uv_cond_wait(&w->cond, &w->mu);
        if (!w->todo) break; /* stop, and nothing left */
        op_t *o = w->todo;
        w->todo = o->next;
        if (!w->todo) w->todo_tail = &w->todo;
        uv_mutex_unlock(&w->mu);
        op_run(w, o);
        uv_mutex_lock(&w->mu);
        o->next = NULL;
        *w->done_tail = o;
        w->done_tail = &o->next;
        uv_async_send(&w->async);
    }
    uv_mutex_unlock(&w->mu);
}

static void writer_closed_cb(uv_handle_t *h)
{
    store_writer_t *w = container_of((uv_async_t *)h, store_writer_t, async);
    void (*cb)(void *) = w->closed_cb;
    void *data = w->closed_data;
    uv_mutex_destroy(&w->mu);
    uv_cond_destroy(&w->cond);
    free(w);
    if (cb) cb(data);
}

/* On the loop: run the completions of what the thread has done, in order. */
static void writer_async_cb(uv_async_t *a)
{
    store_writer_t *w = container_of(a, store_writer_t, async);
    op_t *list;
    uv_mutex_lock(&w->mu);
    list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    uv_mutex_unlock(&w->mu);
    while (list) {
        op_t *o = list;
        list = o->next;
        w->pending--;
        if (o->cb) o->cb(o->data, o->rc, o->seq, o->err);
        op_free(o);
    }
    if (w->pending == 0) uv_unref((uv_handle_t *)&w->async); /* idle: keeps no loop alive */
}

int store_writer_new(uv_loop_t *loop, const store_t *main, store_writer_t **out, char *err,
                     size_t errlen)
{
    store_writer_t *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    w->loop = loop;
    w->todo_tail = &w->todo;
    w->done_tail = &w->done;
    if (store_open_writer(main, &w->db) != 0) {
        snprintf(err, errlen, "opening the writer's connection: %s", store_errmsg(w->db));
        store_close(w->db);
        free(w);
        return EST_EDB;
    }
    if (uv_mutex_init(&w->mu) != 0 || uv_cond_init(&w->cond) != 0 ||
        uv_async_init(loop, &w->async, writer_async_cb) != 0 ||
        uv_thread_create(&w->thread, writer_thread, w) != 0) {
        /* init failures of these are resource exhaustion at start: report, do not unwind
         * partially initialised primitives (the process exits) */
        snprintf(err, errlen, "cannot start the store writer thread");
        return UV_ENOMEM;
    }
    uv_unref((uv_handle_t *)&w->async);
    *out = w;
    return 0;
}

static int writer_push(store_writer_t *w, op_t *o)
{
    if (w->closing) {
        op_free(o);
        return UV_ECANCELED;
    }
    if (w->pending++ == 0) uv_ref((uv_handle_t *)&w->async); /* work in flight keeps the loop */
    uv_mutex_lock(&w->mu);
    *w->todo_tail = o;
    w->todo_tail = &o->next;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
    return 0;
}

static op_t *op_new(op_kind_t kind, const char *uuid, store_done_fn cb, void *data)
{
    op_t *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = kind;
    o->cb = cb;
    o->data = data;
    snprintf(o->uuid, sizeof o->uuid, "%s", uuid ? uuid : "");
    return o;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;
    if (!s) return NULL;
    d = strdup(s);
    if (!d) *oom = true;
    return d;
}

int store_writer_begin(store_writer_t *w, const store_job_start_t *st, store_done_fn cb,
                       void *data)
{
    op_t *o = op_new(OP_BEGIN, st->uuid, cb, data);
    bool oom = false;
    if (!o) return UV_ENOMEM;
    o->st = *st;
    o->slot = dup_or_null(st->slot, &oom);
    o->port = dup_or_null(st->port, &oom);
    o->recipe_hash = dup_or_null(st->recipe_hash, &oom);
    if (oom) {
        op_free(o);
        return UV_ENOMEM;
    }
    o->st.uuid = o->uuid;
    o->st.slot = o->slot;
    o->st.port = o->port;
    o->st.recipe_hash = o->recipe_hash;
    return writer_push(w, o);
}

int store_writer_event(store_writer_t *w, const char *uuid, uint64_t t_ms, const char *kind,
                       const char *state, const char *detail_json, store_done_fn cb, void *data)
{
    op_t *o = op_new(OP_EVENT, uuid, cb, data);
    bool oom = false;
    if (!o) return UV_ENOMEM;
    o->t_ms = t_ms;
    o->ev_kind = dup_or_null(kind, &oom);
    o->ev_state = dup_or_null(state, &oom);
    o->ev_detail = dup_or_null(detail_json, &oom);
    if (oom) {
        op_free(o);
        return UV_ENOMEM;
    }
    return writer_push(w, o);
}

int store_writer_finish(store_writer_t *w, const char *uuid, const job_report_t *r,
                        const store_job_end_t *end, store_done_fn cb, void *data)
{
    op_t *o = op_new(OP_FINISH, uuid, cb, data);
    if (!o) return UV_ENOMEM;
    o->report = malloc(sizeof *o->report);
    if (!o->report) {
        op_free(o);
        return UV_ENOMEM;
    }
    memcpy(o->report, r, sizeof *r);
    if (end) {
        o->end = *end;
        o->have_end = true;
    }
    return writer_push(w, o);
}

size_t store_writer_pending(const store_writer_t *w)
{
    return w->pending;
}

uint64_t store_writer_max_ms(const store_writer_t *w)
{
    return w->max_ms;
}

void store_writer_close(store_writer_t *w, void (*closed_cb)(void *data), void *data)
{
    if (w->closing) return;
    w->closing = true;
    w->closed_cb = closed_cb;
    w->closed_data = data;
    uv_mutex_lock(&w->mu);
    w->stop = true;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
    uv_thread_join(&w->thread); /* what was queued is done now */
    store_close(w->db);
    w->db = NULL;
    writer_async_cb(&w->async); /* the last completions */
    uv_close((uv_handle_t *)&w->async, writer_closed_cb);
}
