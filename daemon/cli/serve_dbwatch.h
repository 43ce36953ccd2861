/* SPDX-License-Identifier: MIT */
/* serve_dbwatch.h — the database file under watch (issue 14, docs/STATION.md "One daemon per
 * database"): a database deleted or replaced under a running daemon would take every later
 * result into an unlinked file, and a restart would begin the `seq`s again at 1. The watch
 * remembers the file's device and inode at start, looks again every 2 s and before every job,
 * and on a change raises an alarm once: the caller stops taking jobs. Also reads the
 * database's id (schema/006_database_id.sql) for the API.
 * Owns: its timer. Must not: write to the database. */
#ifndef SERVE_DBWATCH_H
#define SERVE_DBWATCH_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#define SERVE_DBWATCH_MS 2000

typedef struct serve_dbwatch_s {
    uv_timer_t timer;
    bool timer_open;
    char *path;
    dev_t dev;
    ino_t ino;
    char id[33];     /* "" when the database has none */
    char alarm[400]; /* "" while all is well */
    void (*alarm_cb)(void *data, const char *alarm);
    void *data;
} serve_dbwatch_t;

/* After the store opened `db` (migrations applied): remember its file, read its id, start the
 * timer. 0, or -1 with `err`. */
int serve_dbwatch_start(uv_loop_t *loop, const char *db, serve_dbwatch_t *w,
                        void (*alarm_cb)(void *data, const char *alarm), void *data, char *err,
                        size_t errlen);
/* Is the database still the file the daemon opened? Raises the alarm (once) when not. */
bool serve_dbwatch_ok(serve_dbwatch_t *w);
/* Stop the timer (closed on the loop) and free what the watch holds. */
void serve_dbwatch_stop(serve_dbwatch_t *w);

#endif
