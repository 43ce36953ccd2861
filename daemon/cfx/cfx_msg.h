/* SPDX-License-Identifier: MIT */
/* cfx_msg.h — IPC-CFX (IPC-2591) messages as the station writes them (docs/CFX.md): the
 * envelope (MessageName, Version, TimeStamp with zone, UniqueID, Source, Target, RequestID,
 * MessageBody) and the message bodies, built from a job's facts with cJSON.
 * Owns: field names, enumerations and the mappings of our states/results/classes onto CFX's.
 * Must not: do I/O, touch SQLite or libuv (pure functions; unit-tested in test_cfx_msg.c). */
#ifndef CFX_MSG_H
#define CFX_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The CFX version our envelopes declare (the message set of docs/CFX.md "Catalogue"). */
#define CFX_VERSION "1.3"

/* Message names (the SDK's fully qualified class names, docs/CFX.md "Catalogue"). */
#define CFX_ENDPOINT_CONNECTED "CFX.EndpointConnected"
#define CFX_ENDPOINT_SHUTTING_DOWN "CFX.EndpointShuttingDown"
#define CFX_HEARTBEAT "CFX.Heartbeat"
#define CFX_WORK_STARTED "CFX.Production.WorkStarted"
#define CFX_WORK_COMPLETED "CFX.Production.WorkCompleted"
#define CFX_UNITS_PERSONALIZED "CFX.Production.Assembly.UnitsPersonalized"
#define CFX_UNITS_TESTED "CFX.Production.TestAndInspection.UnitsTested"
#define CFX_STATION_STATE_CHANGED "CFX.ResourcePerformance.StationStateChanged"
#define CFX_STAGE_STATE_CHANGED "CFX.ResourcePerformance.StageStateChanged"
#define CFX_FAULT_OCCURRED "CFX.ResourcePerformance.FaultOccurred"
#define CFX_FAULT_CLEARED "CFX.ResourcePerformance.FaultCleared"
#define CFX_RECIPE_ACTIVATED "CFX.Production.RecipeActivated"

/* ResourceState values (SEMI E10 codes as the SDK serializes them). */
#define CFX_STATE_PRD_REGULAR_WORK "1100"
#define CFX_STATE_SBY_NO_PRODUCT "2200"
#define CFX_STATE_USD "5000"
#define CFX_STATE_NST_SHUTDOWN_STARTUP "6500"

#define CFX_TIME_LEN 40 /* "2026-12-07T20:52:59.123+01:00" and room */
#define CFX_SPAN_LEN 32 /* "1.02:03:04.5670000" */

/* TimeStamp form: local time with its UTC offset, milliseconds ("...T21:52:59.123+01:00"). */
const char *cfx_fmt_time(uint64_t unix_ms, char *buf);
/* TimeSpan form of .NET ("hh:mm:ss", "d.hh:mm:ss", with ".fffffff" when there are ms). */
const char *cfx_fmt_span(uint64_t ms, char *buf);

/* The envelope around `body` (taken over, also on failure). unique_id: a UUID; target and
 * request_id may be NULL (JSON null). Returns the JSON text (malloc) or NULL (no memory). */
char *cfx_envelope(const char *name, const char *unique_id, uint64_t unix_ms, const char *source,
                   const char *target, const char *request_id, cJSON *body);

/* What a job message needs, read from the job row and the report. NULL strings: not known. */
typedef struct cfx_job_s {
    const char *uuid;        /* TransactionID */
    const char *slot;        /* the slot's name: Stage */
    unsigned lane;           /* the slot's 1-based position in the config: Lane */
    const char *result;      /* jobs.result: pass, fail, cancelled, interrupted */
    const char *error_class; /* jobs.error_class (fail) */
    const char *message;
    const char *mac;         /* "aa:bb:cc:dd:ee:ff": the unit's identifier */
    const char *chip;
    uint64_t started_ms, finished_ms; /* unix ms, 0 = unknown */
    bool verify_ran, verify_passed;   /* MD5 verification of the written images */
    bool test_ran, test_passed;       /* the post-flash test (recipe "test") */
} cfx_job_t;

/* "Completed" (pass), "Failed" (fail), "Aborted" (cancelled, interrupted). */
const char *cfx_work_result(const char *result);
/* FaultCause for one of our error classes (docs/CFX.md "Faults"). */
const char *cfx_fault_cause(const char *error_class);

/* Message bodies (NULL: no memory). */
cJSON *cfx_body_endpoint(const char *handle, const char *request_uri, const char *request_addr);
cJSON *cfx_body_handle(const char *handle); /* EndpointShuttingDown */
cJSON *cfx_body_heartbeat(const char *handle, unsigned interval_s);
cJSON *cfx_body_work_started(const cfx_job_t *j);
cJSON *cfx_body_work_completed(const cfx_job_t *j);
/* UnitsPersonalized: the MAC as characteristic "MAC Address" (NULL when the MAC is unknown). */
cJSON *cfx_body_units_personalized(const cfx_job_t *j);
/* UnitsTested: "FLASH_VERIFY" and "POST_FLASH_TEST" tests (NULL when neither ran). */
cJSON *cfx_body_units_tested(const cfx_job_t *j, const char *verify_id, const char *test_id);
/* A Fault structure for a failed job (occurrence id given). */
cJSON *cfx_fault(const cfx_job_t *j, const char *occurrence_id);
cJSON *cfx_body_fault_occurred(const cfx_job_t *j, const char *occurrence_id);
cJSON *cfx_body_fault_cleared(const char *occurrence_id);
/* StageStateChanged (stage != NULL) or StationStateChanged (stage == NULL); fault may be NULL
 * (taken over). */
cJSON *cfx_body_state_changed(const char *stage, unsigned lane, const char *old_state,
                              uint64_t old_ms, const char *new_state, cJSON *fault);
/* RecipeActivated for a slot's recipe (name and version, hash as the revision). */
cJSON *cfx_body_recipe_activated(const char *name, const char *version, const char *hash,
                                 unsigned lane);

#endif
