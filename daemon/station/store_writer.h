/* SPDX-License-Identifier: MIT */
/* store_writer.h — the job record's writes on a thread of their own, so that a slow disk (a
 * commit's fsync on an SD card, another process holding the write lock) never holds the loop
 * that runs every slot's job. One writer thread with its own connection (store_open_writer)
 * takes the operations in order (a job's begin, its events, its final row) and runs each one's
 * completion back on the loop. "Recorded before reported" holds: the caller tells nobody of a
 * result before its completion says the final row is committed.
 * Owns: the thread, its queue and connection. Must not: call back anywhere but on the loop. */
#ifndef STORE_WRITER_H
#define STORE_WRITER_H

#include <stdint.h>
#include <uv.h>

#include "store.h"

typedef struct store_writer_s store_writer_t;

/* Completion on the loop: rc 0 or EST_EDB with `errmsg` (store_errmsg of the writer's
 * connection, valid during the call); `seq` of a finished job (else -1). */
typedef void (*store_done_fn)(void *data, int rc, int64_t seq, const char *errmsg);

/* Start the thread with a connection to the database `main` has open (main's hooks run in the
 * writer's transactions). 0, or EST_EDB / UV_ENOMEM with `err` filled. */
int store_writer_new(uv_loop_t *loop, const store_t *main, store_writer_t **out, char *err,
                     size_t errlen);
/* Queue an operation (its inputs are copied). `cb` may be NULL. 0, or UV_ENOMEM / UV_ECANCELED
 * (closing) without queueing: then `cb` is not called. */
int store_writer_begin(store_writer_t *w, const store_job_start_t *st, store_done_fn cb,
                       void *data);
int store_writer_event(store_writer_t *w, const char *uuid, uint64_t t_ms, const char *kind,
                       const char *state, const char *detail_json, store_done_fn cb, void *data);
int store_writer_finish(store_writer_t *w, const char *uuid, const job_report_t *r,
                        const store_job_end_t *end, store_done_fn cb, void *data);
/* Operations queued and not yet completed on the loop. */
size_t store_writer_pending(const store_writer_t *w);
/* The longest a single operation took on the writer thread since start (ms), for /metrics. */
uint64_t store_writer_max_ms(const store_writer_t *w);
/* Finish what is queued (completions still run), stop the thread, close the connection and the
 * loop handle; closed_cb(data) on the loop when all is released. */
void store_writer_close(store_writer_t *w, void (*closed_cb)(void *data), void *data);

#endif
