/* SPDX-License-Identifier: MIT */
/* store_cols.h — the job columns, one line each: everything that reads, writes or shows a column
 * of table `jobs` is generated from STORE_JOB_COLUMNS (docs/ARCHITECTURE.md "How to add a job
 * column"):
 *   the SELECT list and the row reader   (store_read.c: TYPE, `sql`, field `name` of
 *                                          store_job_row_t)
 *   the UPDATE that makes a row final    (store_jobs.c: WRITE and `value`, from the report)
 *   the Job JSON of the API              (daemon/api/api_json.c: `json`, JSON)
 *
 * X(name, sql, TYPE, json, JSON, WRITE, value)
 *   name   the column, and the store_job_row_t field when TYPE is not NONE
 *   sql    what the SELECT list reads (the column, or a sub-select)
 *   TYPE   TEXT (char array, NULL reads as ""), INT (int64_t, NULL reads as -1), BOOL, or NONE
 *          (not read back)
 *   json   the member name in the Job object
 *   JSON   STR (always a string), STRN (string, null when empty), INT, INTN (null when -1),
 *          BOOL, HINT (the operator hint of error_class, computed), DETAIL (string or null, only
 *          in GET /api/v1/jobs/{uuid}), DETAILJSON (a JSON text as an object or null, only in
 *          the detail), NONE (not in the JSON)
 *   WRITE  RO (written when the job begins, or computed), SET (`name = ?` at finish), KEEP
 *          (`name = COALESCE(?, name)`: kept when the report has no value)
 *   value  for SET/KEEP: a store_val_t from the finish context `f` (store_jobs.c: f->r the
 *          job_report_t, f->res the result, f->pass, f->seq, f->retried and the formatted texts
 *          f->finished, f->rev, f->mac, f->fid, f->state_ms). V_NULL, V_INT(x), V_TEXT(s) (NULL
 *          or "" binds NULL), V_STR(s) ("" is kept).
 * Columns are read in this order and appear in the JSON in this order. */
#ifndef STORE_COLS_H
#define STORE_COLS_H

#define STORE_JOB_COLUMNS(X)                                                                       \
    X(id, "id", INT, "id", NONE, RO, _)                                                            \
    X(seq, "seq", INT, "seq", INTN, SET, V_INT(f->seq))                                            \
    X(uuid, "uuid", TEXT, "uuid", STR, RO, _)                                                      \
    X(slot, "slot", TEXT, "slot", STR, RO, _)                                                      \
    X(port, "port", TEXT, "port", STR, RO, _)                                                      \
    X(recipe_hash, "recipe_hash", TEXT, "recipe_hash", STRN, RO, _)                                \
    X(recipe_name, "(SELECT name FROM recipes WHERE hash = jobs.recipe_hash)", TEXT,              \
      "recipe_name", STRN, RO, _)                                                                  \
    X(recipe_version, "(SELECT version FROM recipes WHERE hash = jobs.recipe_hash)", TEXT,        \
      "recipe_version", STRN, RO, _)                                                               \
    X(chip, "chip", TEXT, "chip", STRN, SET, (f->r->chip ? V_TEXT(f->r->chip->name) : V_NULL))    \
    X(revision, "revision", TEXT, "revision", STRN, SET, V_TEXT(f->rev))                           \
    X(revision_full, "revision_full", NONE, "", NONE, SET,                                        \
      (f->r->have_rev ? V_INT(f->r->chip_rev) : V_NULL))                                               \
    X(mac, "mac", TEXT, "mac", STRN, SET, V_TEXT(f->mac))                                          \
    X(flash_id, "flash_id", TEXT, "flash_id", STRN, SET, V_TEXT(f->fid))                           \
    X(flash_size, "flash_size", INT, "flash_size", INTN, SET,                                      \
      (f->r->flash_size ? V_INT(f->r->flash_size) : V_NULL))                                       \
    X(security_flags, "security_flags", NONE, "", NONE, SET,                                       \
      (f->r->have_sec_info ? V_INT(f->r->sec_flags) : V_NULL))                                     \
    X(started_at, "started_at", TEXT, "started_at", STR, RO, _)                                    \
    X(finished_at, "finished_at", TEXT, "finished_at", STRN, SET, V_TEXT(f->finished))             \
    X(duration_ms, "duration_ms", INT, "duration_ms", INTN, SET, f->duration)                      \
    X(result, "result", TEXT, "result", STR, SET, V_TEXT(store_result_name(f->res)))               \
    X(error_class, "error_class", TEXT, "error_class", STRN, SET,                                  \
      (!f->pass && f->r->error_class != EST_CLASS_NONE ? V_TEXT(est_class_name(f->r->error_class)) \
                                                       : V_NULL))                                  \
    X(error_code, "error_code", NONE, "", NONE, SET,                                               \
      (!f->pass && f->r->error_code ? V_INT(f->r->error_code) : V_NULL))                           \
    X(message, "message", TEXT, "message", STRN, SET, V_TEXT(f->r->message))                       \
    X(hint, "NULL", NONE, "hint", HINT, RO, _)                                                     \
    X(failed_state, "failed_state", TEXT, "failed_state", STRN, SET,                               \
      (!f->pass && f->r->result != JOB_RESULT_NONE ? V_TEXT(job_state_name(f->r->failed_state))  \
                                                   : V_NULL))                                      \
    X(nak_op, "nak_op", NONE, "", NONE, SET,                                                       \
      (!f->pass && f->r->error_class == EST_CLASS_NAK ? V_INT(f->r->nak_op) : V_NULL))             \
    X(nak_code, "nak_code", NONE, "", NONE, SET,                                                   \
      (!f->pass && f->r->error_class == EST_CLASS_NAK ? V_INT(f->r->nak_code) : V_NULL))           \
    X(state_ms, "state_ms", TEXT, "", NONE, SET, V_TEXT(f->state_ms))                              \
    X(baud, "baud", INT, "baud", INTN, KEEP, (f->r->baud ? V_INT(f->r->baud) : V_NULL))            \
    X(stub_name, "stub_name", TEXT, "stub_name", STRN, SET, V_TEXT(f->r->stub_name))               \
    X(attempt, "attempt", INT, "attempt", INT, RO, _)                                              \
    X(final, "final", BOOL, "final", BOOL, SET, V_INT(f->retried ? 0 : 1))                         \
    X(retries, "retries", INT, "retries", INTN, SET, V_INT(f->r->retries))                         \
    X(sync_attempts, "sync_attempts", NONE, "", NONE, SET, V_INT(f->r->sync_attempts))             \
    X(bytes_written, "bytes_written", INT, "bytes_written", INTN, SET,                             \
      V_INT(f->r->bytes_written))                                                                  \
    X(bytes_sent, "bytes_sent", INT, "bytes_sent", INTN, SET, V_INT(f->r->bytes_sent))             \
    X(n_images, "(SELECT count(*) FROM job_images WHERE job_uuid = jobs.uuid)", INT, "", NONE,    \
      RO, _)                                                                                       \
    X(test_output, "test_output", TEXT, "test_output", DETAIL, SET,                                \
      (f->r->test_ran ? V_STR(f->r->test_output) : V_NULL))                                        \
    X(security, "security", TEXT, "security", DETAILJSON, SET, V_TEXT(f->r->security))            \
    X(not_verified_reason, "not_verified_reason", TEXT, "not_verified_reason", DETAIL, SET,        \
      V_TEXT(f->r->unverified))

#endif
