/* SPDX-License-Identifier: MIT */
/* serve_dbwatch.c — the database file under watch (serve_dbwatch.h).
 * Must not: write to the database (its own read-only connection reads the id once). */
#include "serve_dbwatch.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void dbwatch_read_id(serve_dbwatch_t *w)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    w->id[0] = 0;
    if (sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT id FROM database_identity LIMIT 1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(w->id, sizeof w->id, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

bool serve_dbwatch_ok(serve_dbwatch_t *w)
{
    struct stat st;
    const char *what = NULL;
    if (w->alarm[0]) return false;
    if (!w->path) return true; /* not started (yet) */
    if (stat(w->path, &st) != 0)
        what = errno == ENOENT ? "was deleted" : "can no longer be examined";
    else if (st.st_dev != w->dev || st.st_ino != w->ino)
        what = "was replaced by another file";
    if (!what) return true;
    snprintf(w->alarm, sizeof w->alarm,
             "the database %s %s while the daemon ran: no new jobs are started (results would "
             "be lost); restore it or restart the daemon",
             w->path, what);
    fprintf(stderr, "espstation: ALARM: %s\n", w->alarm);
    if (w->alarm_cb) w->alarm_cb(w->data, w->alarm);
    return false;
}

static void dbwatch_timer_cb(uv_timer_t *t)
{
    serve_dbwatch_ok(t->data);
}

int serve_dbwatch_start(uv_loop_t *loop, const char *db, serve_dbwatch_t *w,
                        void (*alarm_cb)(void *data, const char *alarm), void *data, char *err,
                        size_t errlen)
{
    struct stat st;
    memset(w, 0, sizeof *w);
    w->alarm_cb = alarm_cb;
    w->data = data;
    w->path = strdup(db);
    if (!w->path || stat(db, &st) != 0) {
        snprintf(err, errlen, "database %s: %s", db, w->path ? strerror(errno) : "out of memory");
        return -1;
    }
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    dbwatch_read_id(w);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->timer_open = true;
    uv_timer_start(&w->timer, dbwatch_timer_cb, SERVE_DBWATCH_MS, SERVE_DBWATCH_MS);
    uv_unref((uv_handle_t *)&w->timer); /* never what keeps the loop running */
    return 0;
}

void serve_dbwatch_stop(serve_dbwatch_t *w)
{
    if (w->timer_open) {
        w->timer_open = false;
        uv_close((uv_handle_t *)&w->timer, NULL);
    }
    free(w->path);
    w->path = NULL;
}
