/* SPDX-License-Identifier: MIT */
/* serve_guard.c — the start-up guards of `espstation serve` (serve_guard.h): lock files and the
 * descriptor limit. A lock is an flock on a file that holds the holder's pid (for the message
 * the next one prints); flock belongs to the open file, so it goes away with a process that
 * crashes, and a file taken over by a new holder is checked (same inode as the path) so that
 * removing it at release cannot let two holders in.
 * Must not: open the database or a port (store.c, jobs/port*.c). */
#include "serve_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- descriptors ---- */

unsigned long long serve_guard_fds_needed(const station_cfg_t *cfg)
{
    /* refused connections are closed at once but exist for a moment: 16 of them (http.c) */
    return SERVE_FDS_BASE + SERVE_FDS_PER_SLOT * (unsigned long long)cfg->n_slots +
           cfg->http.max_connections + 16u;
}

int serve_guard_nofile(const station_cfg_t *cfg, unsigned long long *limit_out, char *err,
                       size_t errlen)
{
    struct rlimit rl;
    unsigned long long need = serve_guard_fds_needed(cfg);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    *limit_out = (unsigned long long)rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur < need) {
        unsigned long long room = (unsigned long long)rl.rlim_cur;
        unsigned long long fixed = need - cfg->http.max_connections;
        snprintf(err, errlen,
                 "%zu slot(s) and http.max_connections %u need %llu file descriptors, but the "
                 "limit is %llu (hard limit, ulimit -n): raise LimitNOFILE in the systemd unit "
                 "(docs/DEPLOY.md) or lower http.max_connections to at most %llu",
                 cfg->n_slots, (unsigned)cfg->http.max_connections, need, room,
                 room > fixed ? room - fixed : 0ull);
        return -1;
    }
    return 0;
}

/* ---- lock files ---- */

/* The pid written in a lock file, or 0. */
static long guard_holder(const char *path)
{
    char buf[64];
    ssize_t n;
    long pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = 0;
        pid = strtol(buf, NULL, 10);
    }
    return pid > 0 ? pid : 0;
}

/* Lock `path` (created when missing). The descriptor, -2 when another process holds it (*holder
 * = its pid or 0), -1 on another error (errno). */
static int guard_lock(const char *path, const char *what, long *holder)
{
    for (int tries = 0; tries < 10; tries++) {
        struct stat a, b;
        char line[600];
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno == EACCES) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e != EWOULDBLOCK) {
                errno = e;
                return -1;
            }
            *holder = guard_holder(path);
            return -2;
        }
        /* the previous holder may have removed the file between our open and our lock */
        if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino ||
            a.st_dev != b.st_dev) {
            close(fd);
            continue;
        }
        snprintf(line, sizeof line, "%ld espstation serve: %s\n", (long)getpid(), what);
        if (ftruncate(fd, 0) == 0 && pwrite(fd, line, strlen(line), 0) < 0) {
            /* read-only lock file (another user's): the lock holds, the pid is not shown */
        }
        return fd;
    }
    errno = EAGAIN;
    return -1;
}

static void guard_unlock(int fd, const char *path)
{
    if (fd < 0) return;
    if (path) unlink(path); /* still locked: nobody can hold this inode meanwhile */
    close(fd);
}

/* "<real directory>/<name>.lock" beside the database (the database need not exist yet). */
static char *guard_db_lock_path(const char *db)
{
    char dirbuf[PATH_MAX], basebuf[PATH_MAX], real[PATH_MAX], *out = NULL;
    snprintf(dirbuf, sizeof dirbuf, "%s", db);
    snprintf(basebuf, sizeof basebuf, "%s", db);
    if (realpath(db, real)) {
        if (asprintf(&out, "%s.lock", real) < 0) out = NULL;
        return out;
    }
    if (!realpath(dirname(dirbuf), real)) return NULL;
    if (asprintf(&out, "%s/%s.lock", real, basename(basebuf)) < 0) out = NULL;
    return out;
}

void serve_guard_endpoint(const char *spec, char *out, size_t outlen)
{
    const char *hp = NULL;
    char host[256], port[16];
    const char *colon;
    struct addrinfo hints, *res = NULL;
    out[0] = 0;
    if (!strncasecmp(spec, "socket://", 9))
        hp = spec + 9;
    else if (!strncasecmp(spec, "rfc2217://", 10))
        hp = spec + 10;
    if (!hp) return;
    colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        snprintf(out, outlen, "%s", hp);
        return;
    }
    if (hp[0] == '[' && colon > hp + 1 && colon[-1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(colon - hp - 2), hp + 1);
    else
        snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
    snprintf(port, sizeof port, "%s", colon + 1);
    {
        char *q = strpbrk(port, "?/"); /* "socket://h:p?opt" */
        if (q) *q = 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) == 0 && res) {
        char ip[NI_MAXHOST], sv[NI_MAXSERV];
        if (getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof ip, sv, sizeof sv,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
            snprintf(out, outlen, res->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, sv);
            freeaddrinfo(res);
            return;
        }
    }
    if (res) freeaddrinfo(res);
    /* not resolvable now (the device server is off): the spelling, lower-cased */
    snprintf(out, outlen, "%s:%s", host, port);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
}

/* Where port locks live: $ESPSTATION_LOCK_DIR, /run/lock (every daemon of the machine sees the
 * same files), else /tmp. */
static const char *guard_lock_dir(void)
{
    const char *env = getenv("ESPSTATION_LOCK_DIR");
    if (env && *env) return env;
    if (access("/run/lock", W_OK | X_OK) == 0) return "/run/lock";
    return "/tmp";
}

static char *guard_port_lock_path(const char *endpoint)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    char hex[33], *out = NULL;
    EVP_Digest(endpoint, strlen(endpoint), md, &ml, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (asprintf(&out, "%s/espstation-port-%s.lock", guard_lock_dir(), hex) < 0) out = NULL;
    return out;
}

static int guard_ports(const station_cfg_t *cfg, serve_guard_t *g, char *err, size_t errlen)
{
    char(*seen)[300] = calloc(cfg->n_slots ? cfg->n_slots : 1, sizeof *seen);
    g->port_fds = calloc(cfg->n_slots ? cfg->n_slots : 1, sizeof *g->port_fds);
    g->port_locks = calloc(cfg->n_slots ? cfg->n_slots : 1, sizeof *g->port_locks);
    if (!seen || !g->port_fds || !g->port_locks) {
        free(seen);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_slots; i++) {
        char ep[300], what[400];
        bool dup = false;
        long holder = 0;
        int fd;
        serve_guard_endpoint(cfg->slots[i].port, ep, sizeof ep);
        if (!ep[0]) continue;
        for (size_t k = 0; k < g->n_ports && !dup; k++)
            dup = !strcmp(seen[k], ep); /* two slots of this daemon: the job manager's business */
        if (dup) continue;
        snprintf(seen[g->n_ports], sizeof seen[0], "%s", ep);
        g->port_locks[g->n_ports] = guard_port_lock_path(ep);
        if (!g->port_locks[g->n_ports]) {
            free(seen);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(what, sizeof what, "port %s (slot %s)", ep, cfg->slots[i].name);
        fd = guard_lock(g->port_locks[g->n_ports], what, &holder);
        if (fd < 0) {
            if (fd == -2)
                snprintf(err, errlen,
                         "slot %s: the network port %s (%s) is used by another espstation "
                         "(pid %ld, lock %s): two daemons would flash the same boards; stop "
                         "the other one or give this station other ports",
                         cfg->slots[i].name, cfg->slots[i].port, ep, holder,
                         g->port_locks[g->n_ports]);
            else
                snprintf(err, errlen, "cannot lock %s for the port %s: %s",
                         g->port_locks[g->n_ports], ep, strerror(errno));
            free(g->port_locks[g->n_ports]);
            g->port_locks[g->n_ports] = NULL;
            free(seen);
            return -1;
        }
        g->port_fds[g->n_ports++] = fd;
    }
    free(seen);
    return 0;
}

int serve_guard_take(const station_cfg_t *cfg, serve_guard_t *g, char *err, size_t errlen)
{
    long holder = 0;
    char what[PATH_MAX + 32];
    memset(g, 0, sizeof *g);
    g->db_fd = -1;
    g->db_lock = guard_db_lock_path(cfg->database);
    if (!g->db_lock) {
        snprintf(err, errlen, "database %s: its directory does not exist (%s)", cfg->database,
                 strerror(errno));
        return -1;
    }
    snprintf(what, sizeof what, "database %s", cfg->database);
    g->db_fd = guard_lock(g->db_lock, what, &holder);
    if (g->db_fd == -2) {
        snprintf(err, errlen,
                 "the database %s is in use by another espstation (pid %ld, lock file %s): one "
                 "daemon per database — a second one would mark the first one's running jobs "
                 "interrupted; stop the other daemon first, or give this config its own "
                 "\"database\"",
                 cfg->database, holder, g->db_lock);
        g->db_fd = -1;
        serve_guard_release(g);
        return -1;
    }
    if (g->db_fd < 0) {
        snprintf(err, errlen,
                 "cannot create the lock file %s beside the database: %s (the database's "
                 "directory must be writable by the daemon: SQLite writes its -wal file there "
                 "too; a read-only or full file system, or another owner?)",
                 g->db_lock, strerror(errno));
        serve_guard_release(g);
        return -1;
    }
    {
        /* an existing database the daemon cannot write would take no result: say so now */
        int fd = open(cfg->database, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
            snprintf(err, errlen,
                     "the database %s cannot be opened for writing: %s (every result is "
                     "written to it: fix its owner or mode, or the mount)",
                     cfg->database, strerror(errno));
            serve_guard_release(g);
            return -1;
        }
        if (fd >= 0) close(fd);
    }
    if (guard_ports(cfg, g, err, errlen) != 0) {
        serve_guard_release(g);
        return -1;
    }
    return 0;
}

void serve_guard_release(serve_guard_t *g)
{
    for (size_t i = 0; i < g->n_ports; i++)
        guard_unlock(g->port_fds[i], g->port_locks[i]);
    for (size_t i = 0; g->port_locks && i < g->n_ports; i++)
        free(g->port_locks[i]);
    free(g->port_locks);
    free(g->port_fds);
    guard_unlock(g->db_fd, g->db_lock);
    free(g->db_lock);
    memset(g, 0, sizeof *g);
    g->db_fd = -1;
}
