/* SPDX-License-Identifier: MIT */
/* cfx_outbox.h — the durable outbox (schema/005_outbox.sql, docs/CFX.md "Delivery"): the CFX
 * messages of a job are written by the store's hooks inside the transaction that records the job
 * (same sqlite3 handle, whatever thread runs it), and read, deleted or parked by the sender over
 * its own connection.
 * Owns: what goes into the outbox for each job event (message order, per-slot and station
 * states, fault occurrences, the size bound). Must not: use libuv, log, or keep state in memory
 * between calls (everything lives in the database, so a crash loses nothing). */
#ifndef CFX_OUTBOX_H
#define CFX_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "job.h"

#define CFX_SINK "cfx"

typedef struct cfx_outbox_cfg_s {
    const char *sink;          /* CFX_SINK */
    const char *handle;        /* CFX handle: the envelopes' Source */
    const char *const *slots;  /* slot names in config order: Lane = index + 1 */
    size_t n_slots;
    int64_t max_rows;          /* bound of the sink's outbox; beyond it messages are counted lost */
} cfx_outbox_cfg_t;

/* ---- writers: inside the caller's write transaction; 0 or an SQLite error code ---- */

/* A job row was inserted ('running'): FaultCleared (a fault of the slot was active),
 * WorkStarted, StageStateChanged, and StationStateChanged when the station's state changes. */
int cfx_outbox_job_begin(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *uuid);
/* A job row became final: UnitsPersonalized (pass, MAC known), UnitsTested (verify or post-flash
 * test ran), FaultOccurred (fail), WorkCompleted, StageStateChanged, StationStateChanged.
 * r == NULL: a job that a crash left running and the store marked interrupted. */
int cfx_outbox_job_end(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *uuid,
                       const job_report_t *r);
/* After a restart: the end messages of every job whose WorkStarted is in the outbox's record
 * but whose row is no longer running (crash recovery marked it interrupted). Its own
 * transaction. Returns the number of jobs completed this way, or a negative SQLite code. */
int cfx_outbox_recover(sqlite3 *db, const cfx_outbox_cfg_t *c);
/* A station-level message (RecipeActivated, ...) in its own transaction; body taken over. */
int cfx_outbox_put_station(sqlite3 *db, const cfx_outbox_cfg_t *c, const char *stream,
                           const char *kind, void *cjson_body);

/* ---- sender side ---- */

typedef struct cfx_outbox_row_s {
    int64_t id;
    const char *unique_id, *kind, *stream, *body; /* valid during the callback */
} cfx_outbox_row_t;
/* Rows of `sink` not parked with id > after, in id order, at most `max`: cb per row (non-zero
 * stops). Returns the number of rows passed or a negative SQLite code. */
int cfx_outbox_fetch(sqlite3 *db, const char *sink, int64_t after, size_t max,
                     int (*cb)(const cfx_outbox_row_t *row, void *ud), void *ud);
/* Delete accepted rows (one transaction). */
int cfx_outbox_delete(sqlite3 *db, const int64_t *ids, size_t n);
/* The destination refused a row for good: keep it out of the way with the reason. */
int cfx_outbox_park(sqlite3 *db, int64_t id, const char *why);
typedef struct cfx_outbox_depth_s {
    int64_t waiting; /* rows to send */
    int64_t parked;  /* refused by the destination */
    int64_t dropped; /* not written because the outbox was full (since the database exists) */
} cfx_outbox_depth_t;
int cfx_outbox_depth(sqlite3 *db, const char *sink, cfx_outbox_depth_t *d);

#endif
