/* SPDX-License-Identifier: MIT */
/* serve_guard.h — what `espstation serve` makes sure of before it touches anything
 * (docs/STATION.md "One daemon per database", docs/RELIABILITY.md "Attacks and site faults"):
 * one daemon per database (an flock on "<database>.lock", taken before the store is opened, so
 * before crash recovery rewrites any row), one daemon per network port across processes (an
 * flock per normalised endpoint in /run/lock), and enough file descriptors (the soft
 * RLIMIT_NOFILE raised to the hard limit; http.max_connections refused when the slots, the
 * database and the HTTP connections would not fit).
 * Owns: the lock files and their descriptors. Must not: open the database or a port. */
#ifndef SERVE_GUARD_H
#define SERVE_GUARD_H

#include <stddef.h>

#include "config.h"

typedef struct serve_guard_s {
    int db_fd;     /* the database lock (-1 = none) */
    char *db_lock; /* its path */
    size_t n_ports;
    int *port_fds; /* one per distinct network endpoint */
    char **port_locks;
} serve_guard_t;

/* Descriptors the daemon keeps for itself besides slots and HTTP connections: stdio, the loop
 * (epoll, signals, async), SQLite (two connections: database, WAL, shared memory), lock files,
 * images read by the pool and static files. */
#define SERVE_FDS_BASE 48u
/* Per slot: its port (tty, or socket and the resolver's socket), a dup for the lock, spare. */
#define SERVE_FDS_PER_SLOT 4u

/* Raise the soft RLIMIT_NOFILE to the hard limit and check that `cfg` fits in it. 0, or -1 with
 * `err` saying which limit to raise or what to lower. *limit_out: the soft limit now. */
int serve_guard_nofile(const station_cfg_t *cfg, unsigned long long *limit_out, char *err,
                       size_t errlen);
/* The descriptors the daemon needs with this config (for the check above and the docs). */
unsigned long long serve_guard_fds_needed(const station_cfg_t *cfg);

/* Take the database lock, then one lock per network endpoint of the slots. 0, or -1 with `err`
 * naming the holder's pid (everything taken so far is released). */
int serve_guard_take(const station_cfg_t *cfg, serve_guard_t *g, char *err, size_t errlen);
/* Release every lock (and remove the lock files). */
void serve_guard_release(serve_guard_t *g);

/* "127.0.0.1:4000" for "socket://localhost:4000" or "rfc2217://127.0.0.1:4000"; "" when the spec
 * is not a network port. Resolves the host (getaddrinfo: start-up only). */
void serve_guard_endpoint(const char *spec, char *out, size_t outlen);

#endif
