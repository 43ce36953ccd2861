/* SPDX-License-Identifier: MIT */
/* port.c — what every port backend shares: spec → backend selection, the port object and its
 * lifetime (asynchronous open, pending-close counting, free in the last close callback), the tx
 * buffer and the uv_poll read/write loop on the backend's fd, and tty fd helpers.
 * Must not: know the loader protocol, block the loop, log, or call user callbacks from inside
 * the user's own call into this module (open_cb, drain_cb and error_cb are always deferred). */
#include "port_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

/* Reads per poll wake-up before yielding to the rest of the loop (level-triggered poll wakes
 * us again at once if more is waiting). */
#define PORT_READS_PER_WAKE 64
#define PORT_RX_CHUNK 8192

static bool port_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

port_kind_t port_kind_of_spec(const char *spec)
{
    if (!spec) return PORT_KIND_SERIAL;
    if (port_has_prefix(spec, "socket://")) return PORT_KIND_TCP;
    if (port_has_prefix(spec, "rfc2217://")) return PORT_KIND_RFC2217;
    if (port_has_prefix(spec, "usb-serial:") || port_has_prefix(spec, "/dev/serial/"))
        return PORT_KIND_SERIAL;
    /* libserialport 0.1.1 cannot open ptys (its open fails on the modem-line ioctls), and
     * anything that is not a tty with a hardware device behind it in sysfs is not its business
     * either: those go to the plain termios backend. */
    char real[PATH_MAX];
    const char *path = realpath(spec, real) ? real : spec;
    if (port_has_prefix(path, "/dev/pts/") || strcmp(path, "/dev/ptmx") == 0) return PORT_KIND_TTY;
    return port__sp_is_usb_tty(path) ? PORT_KIND_SERIAL : PORT_KIND_TTY;
}

int port_spec_check(const char *spec)
{
    port_t p;
    int rc;
    if (!spec || !*spec) return UV_EINVAL;
    port_kind_t kind = port_kind_of_spec(spec);
    if (kind == PORT_KIND_SERIAL || kind == PORT_KIND_TTY) {
        if (port_has_prefix(spec, "usb-serial:")) return spec[strlen("usb-serial:")] ? 0 : UV_EINVAL;
        return spec[0] == '/' ? 0 : UV_EINVAL;
    }
    memset(&p, 0, sizeof p);
    p.spec = (char *)spec; /* read only */
    rc = port__tcp_prepare(&p, kind == PORT_KIND_TCP ? "socket://" : "rfc2217://");
    free(p.host);
    return rc;
}

static const port_ops_t *port_ops_for(port_kind_t kind)
{
    switch (kind) {
    case PORT_KIND_SERIAL: return &port__sp_ops;
    case PORT_KIND_TTY: return &port__tty_ops;
    case PORT_KIND_TCP: return &port__tcp_ops;
    case PORT_KIND_RFC2217: return &port__rfc2217_ops;
    }
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void port_finish(port_t *p)
{
    port__tcp_unclaim(p);
    if (p->ops->release) p->ops->release(p);
    if (p->fd >= 0) close(p->fd);
    if (p->lock_fd >= 0) close(p->lock_fd);
    p->fd = p->lock_fd = -1;
    if (p->ai) uv_freeaddrinfo(p->ai);
    p->ai = p->ai_next = NULL;
    if (p->cbs.close_cb) p->cbs.close_cb(p);
    free(p->tx);
    free(p->host);
    free(p->tn);
    free(p->spec);
    free(p);
}

void port__unref(port_t *p)
{
    if (--p->pending == 0) port_finish(p);
}

static void port_timer_close_cb(uv_handle_t *h)
{
    port__unref(container_of((uv_timer_t *)h, port_t, timer));
}

static void port_poll_close_cb(uv_handle_t *h)
{
    port_t *p = container_of((uv_poll_t *)h, port_t, poll);
    p->poll_inited = false;
    p->poll_events = 0;
    if (p->closing) {
        port__unref(p);
        return;
    }
    /* Closed between connect attempts (port__poll_close): hand back to the TCP code. */
    p->pending--;
    port__tcp_poll_closed(p);
}

static void port_timer_cb(uv_timer_t *t)
{
    port_t *p = container_of(t, port_t, timer);
    if (p->closing) return;
    if (!p->started) {
        p->started = true;
        p->ops->start(p);
    } else if (p->state == PORT_ST_OPENING) {
        port__tcp_timeout(p);
    }
}

void port__arm_timeout(port_t *p, uint64_t ms)
{
    uv_timer_start(&p->timer, port_timer_cb, ms, 0);
}

int port_open(uv_loop_t *loop, const char *spec, uint32_t baud, const port_cbs_t *cbs, void *data,
              port_t **out)
{
    if (out) *out = NULL;
    if (!loop || !spec || !*spec || !cbs || !out || baud == 0) return UV_EINVAL;
    port_kind_t kind = port_kind_of_spec(spec);
    /* Paths must be absolute: a bare "ttyUSB0" is most likely a typo in a config file. */
    if ((kind == PORT_KIND_SERIAL || kind == PORT_KIND_TTY) && spec[0] != '/' &&
        !port_has_prefix(spec, "usb-serial:"))
        return UV_EINVAL;
    if (port_has_prefix(spec, "usb-serial:") && spec[strlen("usb-serial:")] == '\0')
        return UV_EINVAL;

    port_t *p = calloc(1, sizeof(*p));
    if (!p) return UV_ENOMEM;
    p->spec = strdup(spec);
    if (!p->spec) {
        free(p);
        return UV_ENOMEM;
    }
    p->loop = loop;
    p->kind = kind;
    p->ops = port_ops_for(kind);
    p->baud = baud;
    p->cbs = *cbs;
    p->data = data;
    p->state = PORT_ST_OPENING;
    p->fd = p->lock_fd = -1;

    int rc = p->ops->prepare ? p->ops->prepare(p) : 0;
    if (rc < 0) {
        free(p->host);
        free(p->tn);
        free(p->tx);
        free(p->spec);
        free(p);
        return rc;
    }
    /* The open itself runs from a zero timer so that open_cb is never called from inside
     * port_open, even when the result is known at once. */
    uv_timer_init(loop, &p->timer);
    p->pending = 1;
    uv_timer_start(&p->timer, port_timer_cb, 0, 0);
    *out = p;
    return 0;
}

void port_close(port_t *p)
{
    if (!p || p->closing) return;
    p->closing = true;
    p->connecting = false;
    p->tx_off = p->tx_len = 0; /* pending writes are dropped */
    p->drain_due = false;
    if (p->gai_busy)
        uv_cancel((uv_req_t *)&p->gai); /* its callback still runs and drops the reference */
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, port_timer_close_cb);
    if (p->poll_inited && !uv_is_closing((uv_handle_t *)&p->poll))
        uv_close((uv_handle_t *)&p->poll, port_poll_close_cb);
}

void port__open_done(port_t *p, int status)
{
    if (p->closing || p->state != PORT_ST_OPENING) return;
    p->connecting = false;
    uv_timer_stop(&p->timer);
    if (status == 0) {
        p->state = PORT_ST_OPEN;
        /* Bytes queued before the open (RFC 2217 negotiation, early writes) go out first; an
         * error here is seen again and reported by the poll callback. */
        (void)port__flush_tx(p);
        port__update_events(p);
        if (p->cbs.open_cb) p->cbs.open_cb(p, 0);
        return;
    }
    p->state = PORT_ST_FAILED;
    p->err = status;
    port__update_events(p);
    if (p->cbs.open_cb) p->cbs.open_cb(p, status);
    port_close(p); /* port.h: after a failed open the port closes itself */
}

void port__fail(port_t *p, int status)
{
    if (p->closing || p->state == PORT_ST_FAILED) return;
    if (p->state == PORT_ST_OPENING) {
        port__open_done(p, status);
        return;
    }
    p->state = PORT_ST_FAILED;
    p->err = status;
    p->drain_due = false;
    port__update_events(p); /* stop polling: a hung-up fd would wake us forever */
    if (p->cbs.error_cb) p->cbs.error_cb(p, status);
}

/* ---- accessors --------------------------------------------------------------------------- */

void *port_data(const port_t *p)
{
    return p ? p->data : NULL;
}

port_kind_t port_kind(const port_t *p)
{
    return p->kind;
}

const char *port_spec(const port_t *p)
{
    return p->spec;
}

uint32_t port_baud(const port_t *p)
{
    return p->baud;
}

bool port_has_lines(const port_t *p)
{
    return p->state == PORT_ST_OPEN && p->has_lines;
}

size_t port_tx_pending(const port_t *p)
{
    return port__tx_pending(p);
}

/* ---- control ----------------------------------------------------------------------------- */

int port_set_baud(port_t *p, uint32_t baud)
{
    if (baud == 0) return UV_EINVAL;
    if (p->closing || p->state == PORT_ST_FAILED) return p->closing ? UV_EBADF : p->err;
    if (p->state == PORT_ST_OPENING && !p->ops->cmds_in_stream) {
        /* Not open yet: the backend applies p->baud when it opens. */
        p->baud = baud;
        return 0;
    }
    int rc = p->ops->set_baud ? p->ops->set_baud(p, baud) : 0;
    if (rc == 0) p->baud = baud;
    return rc;
}

int port_set_lines(port_t *p, int dtr, int rts)
{
    if (dtr < -1 || dtr > 1 || rts < -1 || rts > 1) return UV_EINVAL;
    if (p->closing) return UV_EBADF;
    if (p->state == PORT_ST_FAILED) return p->err;
    if (p->state != PORT_ST_OPEN && !p->ops->cmds_in_stream) return UV_EAGAIN;
    if (!p->ops->set_lines) return UV_ENOTSUP;
    if (dtr < 0 && rts < 0) return 0;
    return p->ops->set_lines(p, dtr, rts);
}

void port_flush_input(port_t *p)
{
    if (p->closing || p->state != PORT_ST_OPEN) return;
    if (p->ops->flush_input) p->ops->flush_input(p);
}

/* ---- tx ---------------------------------------------------------------------------------- */

size_t port__tx_pending(const port_t *p)
{
    return p->tx_len - p->tx_off;
}

int port__queue(port_t *p, const uint8_t *buf, size_t n)
{
    if (n == 0) return 0;
    if (p->tx_off > 0 && p->tx_len + n > p->tx_cap) {
        memmove(p->tx, p->tx + p->tx_off, p->tx_len - p->tx_off);
        p->tx_len -= p->tx_off;
        p->tx_off = 0;
    }
    if (p->tx_len + n > p->tx_cap) {
        size_t cap = p->tx_cap ? p->tx_cap : 4096;
        while (cap < p->tx_len + n)
            cap *= 2;
        uint8_t *nb = realloc(p->tx, cap);
        if (!nb) return UV_ENOMEM;
        p->tx = nb;
        p->tx_cap = cap;
    }
    memcpy(p->tx + p->tx_len, buf, n);
    p->tx_len += n;
    return 0;
}

int port__flush_tx(port_t *p)
{
    if (p->fd < 0 || p->state != PORT_ST_OPEN) return 0;
    while (p->tx_off < p->tx_len) {
        size_t left = p->tx_len - p->tx_off;
        ssize_t n = p->is_socket ? send(p->fd, p->tx + p->tx_off, left, MSG_NOSIGNAL)
                                 : write(p->fd, p->tx + p->tx_off, left);
        if (n > 0) {
            p->tx_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return n < 0 ? port__errno(errno) : UV_EIO;
    }
    if (p->tx_off == p->tx_len) p->tx_off = p->tx_len = 0;
    return 0;
}

int port_write(port_t *p, const uint8_t *buf, size_t n)
{
    if (p->closing) return UV_EBADF;
    if (p->state == PORT_ST_FAILED) return p->err;
    if (n == 0) return 0;
    int rc;
    if (p->ops->write) {
        rc = p->ops->write(p, buf, n);
    } else {
        if (port__tx_pending(p) + n > PORT_TX_MAX) return UV_ENOBUFS;
        rc = port__queue(p, buf, n);
    }
    if (rc < 0) return rc;
    if (p->cbs.drain_cb)
        p->drain_due = true; /* delivered from the poll callback, never from here */
    /* A write error here is left for the poll callback to see again and report through
     * error_cb: reporting it from inside port_write would re-enter the caller. */
    (void)port__flush_tx(p);
    port__update_events(p);
    return 0;
}

/* ---- poll -------------------------------------------------------------------------------- */

static int port_wanted_events(const port_t *p)
{
    if (p->closing) return 0;
    if (p->state == PORT_ST_OPENING) return p->connecting ? UV_WRITABLE : 0;
    if (p->state != PORT_ST_OPEN) return 0;
    int ev = UV_READABLE;
    if (port__tx_pending(p) > 0 || p->drain_due) ev |= UV_WRITABLE;
    return ev;
}

static void port_poll_cb(uv_poll_t *h, int status, int events);

void port__update_events(port_t *p)
{
    if (!p->poll_inited || uv_is_closing((uv_handle_t *)&p->poll)) return;
    int ev = port_wanted_events(p);
    if (ev == p->poll_events) return;
    if (ev) {
        int rc = uv_poll_start(&p->poll, ev, port_poll_cb);
        if (rc < 0) {
            /* Only when the fd cannot be polled at all; report it like any I/O error. */
            uv_poll_stop(&p->poll);
            p->poll_events = 0;
            port__fail(p, rc);
            return;
        }
    } else {
        uv_poll_stop(&p->poll);
    }
    p->poll_events = ev;
}

int port__poll_fd(port_t *p, int fd)
{
    p->fd = fd;
    int rc = uv_poll_init(p->loop, &p->poll, fd);
    if (rc < 0) return rc;
    p->poll_inited = true;
    p->poll_events = 0;
    p->pending++;
    port__update_events(p);
    return 0;
}

void port__poll_close(port_t *p)
{
    if (p->poll_inited && !uv_is_closing((uv_handle_t *)&p->poll))
        uv_close((uv_handle_t *)&p->poll, port_poll_close_cb);
}

/* A read of 0 bytes or a hang-up: a socket peer or pty master closed (UV_EOF), or a USB
 * adapter went away (UV_EIO, the tty is hung up). */
static int port_eof_status(const port_t *p)
{
    return p->eof_is_eio ? UV_EIO : UV_EOF;
}

static void port_do_read(port_t *p)
{
    uint8_t buf[PORT_RX_CHUNK];
    for (int i = 0; i < PORT_READS_PER_WAKE; i++) {
        ssize_t n = p->is_socket ? recv(p->fd, buf, sizeof(buf), 0) : read(p->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* A pty slave whose master closed reads EIO: that is the pty's end of file. */
            if (errno == EIO)
                port__fail(p, port_eof_status(p));
            else
                port__fail(p, port__errno(errno));
            return;
        }
        if (n == 0) {
            port__fail(p, port_eof_status(p));
            return;
        }
        size_t m = p->ops->filter_rx ? p->ops->filter_rx(p, buf, (size_t)n) : (size_t)n;
        if (m > 0 && p->cbs.read_cb) p->cbs.read_cb(p, buf, m);
        if (p->closing || p->state != PORT_ST_OPEN) return;
    }
}

void port__drain_socket(port_t *p)
{
    uint8_t buf[PORT_RX_CHUNK];
    /* Bounded: a peer that streams faster than we discard must not keep us here. */
    for (int i = 0; i < PORT_READS_PER_WAKE; i++) {
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* EAGAIN, or EOF/error that the poll callback will see and report */
        if (p->ops->filter_rx) (void)p->ops->filter_rx(p, buf, (size_t)n);
    }
}

static void port_poll_cb(uv_poll_t *h, int status, int events)
{
    port_t *p = container_of(h, port_t, poll);
    if (p->closing || p->state == PORT_ST_FAILED) return;
    if (p->connecting) {
        port__tcp_connect_ready(p, status);
        return;
    }
    if (p->state != PORT_ST_OPEN) return;
    if (status < 0) {
        /* libuv reports POLLERR as UV_EBADF and has stopped the handle. The fd itself knows
         * better: a pty whose master closed reads EIO (→ UV_EOF), a reset socket ECONNRESET. */
        p->poll_events = 0;
        port_do_read(p);
        if (!p->closing && p->state == PORT_ST_OPEN) port__fail(p, p->eof_is_eio ? UV_EIO : status);
        return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        port_do_read(p);
        if (p->closing || p->state != PORT_ST_OPEN) return;
    }
    if (port__tx_pending(p) > 0) {
        int rc = port__flush_tx(p);
        if (rc < 0) {
            port__fail(p, rc == UV_EPIPE || rc == UV_EIO ? port_eof_status(p) : rc);
            return;
        }
    }
    if (port__tx_pending(p) == 0 && p->drain_due) {
        p->drain_due = false;
        p->cbs.drain_cb(p);
        if (p->closing || p->state != PORT_ST_OPEN) return;
    }
    port__update_events(p);
}

/* ---- fd helpers shared by the tty and libserialport backends ----------------------------- */

int port__errno(int e)
{
    /* UV codes are -errno on Linux; 0 would read as success, so an unknown failure is EIO. */
    return e > 0 ? -e : UV_EIO;
}

/* ---- who else has a tty open ------------------------------------------------------------ */

#ifndef TIOCGEXCL
#define TIOCGEXCL _IOR('T', 0x40, int) /* Linux 3.8+: is exclusive mode (TIOCEXCL) set? */
#endif
/* /dev/pts/N is 136:N (Linux UNIX98_PTY_SLAVE_MAJOR, 20-bit minors); the master side is an fd
 * on /dev/ptmx (5:2) whose /proc/PID/fdinfo says "tty-index: N". */
#define PORT_PTS_MAJOR 136u
#define PORT_PTMX_DEV makedev(5, 2)
/* Bounds of the /proc walk: it runs on the loop thread, only after a busy open. */
#define PORT_SCAN_MAX_PIDS 4096
#define PORT_SCAN_MAX_FDS 1024

static bool port_is_pid(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* The pty index a ptmx fd of process `pid` stands for, or -1. */
static long port_ptmx_index(const char *pid, const char *fd)
{
    char path[2 * NAME_MAX + 32], line[128];
    long idx = -1;
    snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", pid, fd);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "tty-index: %ld", &idx) == 1) break;
    fclose(f);
    return idx;
}

/* What process `pid` has open: does it hold the device `rdev`, and does it hold the master of
 * pty `pty_index` (-1: rdev is not a pty slave)? */
static void port_scan_pid(const char *pid, dev_t rdev, long pty_index, bool *holds,
                          bool *owns_master)
{
    char path[NAME_MAX + 16];
    snprintf(path, sizeof(path), "/proc/%s/fd", pid);
    DIR *d = opendir(path); /* another user's process: EACCES unless we are root; skipped */
    if (!d) return;
    struct dirent *e;
    for (int n = 0; (e = readdir(d)) != NULL && n < PORT_SCAN_MAX_FDS; n++) {
        if (!port_is_pid(e->d_name)) continue;
        char fdpath[2 * NAME_MAX + 32];
        struct stat st;
        snprintf(fdpath, sizeof(fdpath), "/proc/%s/fd/%s", pid, e->d_name);
        /* stat follows the link to the file without opening it (no side effects on ttys) */
        if (stat(fdpath, &st) < 0 || !S_ISCHR(st.st_mode)) continue;
        if (st.st_rdev == rdev)
            *holds = true;
        else if (pty_index >= 0 && st.st_rdev == PORT_PTMX_DEV &&
                 port_ptmx_index(pid, e->d_name) == pty_index)
            *owns_master = true;
    }
    closedir(d);
}

/* Processes that have the character device `rdev` open, as "pid 12 (name), ..." in buf. A
 * process that also holds the pty's master is its owner (a simulator, a serial-over-network
 * server), not a competing user, and is not counted; nor is this process unless `self`.
 * Returns the count. */
static int port_scan_holders(dev_t rdev, bool self, char *buf, size_t cap)
{
    long pty_index = major(rdev) == PORT_PTS_MAJOR ? (long)minor(rdev) : -1;
    char me[24];
    snprintf(me, sizeof(me), "%ld", (long)getpid());
    if (buf && cap) buf[0] = '\0';
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int count = 0;
    size_t used = 0;
    struct dirent *e;
    for (int n = 0; (e = readdir(d)) != NULL && n < PORT_SCAN_MAX_PIDS; n++) {
        if (!port_is_pid(e->d_name) || (!self && strcmp(e->d_name, me) == 0)) continue;
        bool holds = false, owns_master = false;
        port_scan_pid(e->d_name, rdev, pty_index, &holds, &owns_master);
        if (!holds || owns_master) continue;
        count++;
        if (!buf || used + 1 >= cap) continue;
        char comm[64] = "?", path[NAME_MAX + 16];
        snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "re");
        if (f) {
            if (fgets(comm, sizeof(comm), f)) comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        int w = snprintf(buf + used, cap - used, "%spid %s (%s%s)", used ? ", " : "", e->d_name,
                         comm, strcmp(e->d_name, me) == 0 ? ", this process" : "");
        if (w > 0) used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
    closedir(d);
    return count;
}

int port_holders(const char *spec, char *buf, size_t cap)
{
    if (buf && cap) buf[0] = '\0';
    if (!spec || spec[0] != '/') return 0;
    struct stat st;
    if (stat(spec, &st) < 0 || !S_ISCHR(st.st_mode)) return 0;
    /* our own process too: another slot may name the same device by another path */
    return port_scan_holders(st.st_rdev, true, buf, cap);
}

int port__fd_lock(int fd, bool excl_ioctl)
{
    /* flock: held by another espstation (another slot of this one too: the lock belongs to the
     * open file description, so two open()s of one device conflict even in one process, whatever
     * path names it) or by pyserial's exclusive=True (esptool). */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? UV_EBUSY : port__errno(errno);
    /* TIOCEXCL set by another program (screen, minicom): the kernel refuses further open()s
     * with EBUSY, except to root (CAP_SYS_ADMIN), so a daemon run as root gets here and must
     * ask. On a pty the flag outlives a holder killed before its TIOCNXCL (the tty lives on
     * with its master, e.g. espsim; a crashed espstation leaves it so), so it counts only while
     * another process has the tty open. Our own process is not asked: every fd it opens on a
     * tty holds the flock above, so another slot of ours was refused already (and this fd is
     * ours). On a failure the caller closes fd without TIOCNXCL: the flag is the other's. */
    int excl = 0;
    struct stat st;
    if (ioctl(fd, TIOCGEXCL, &excl) == 0 && excl && fstat(fd, &st) == 0 &&
        port_scan_holders(st.st_rdev, false, NULL, 0) > 0)
        return UV_EBUSY;
    /* Our own TIOCEXCL keeps other non-root programs out while we hold the port. Not fatal:
     * some drivers refuse it. */
    if (excl_ioctl) (void)ioctl(fd, TIOCEXCL);
    return 0;
}

int port__fd_set_lines(int fd, int dtr, int rts)
{
    int st;
    /* One TIOCMGET + one TIOCMSET so DTR and RTS change together (PROTOCOL.md §2.2,
     * UnixTightReset). Ptys have no modem lines: ENOTTY/EINVAL → "cannot drive the lines". */
    if (ioctl(fd, TIOCMGET, &st) < 0)
        return (errno == ENOTTY || errno == EINVAL || errno == ENOTSUP) ? UV_ENOTSUP
                                                                        : port__errno(errno);
    if (dtr == 1)
        st |= TIOCM_DTR;
    else if (dtr == 0)
        st &= ~TIOCM_DTR;
    if (rts == 1)
        st |= TIOCM_RTS;
    else if (rts == 0)
        st &= ~TIOCM_RTS;
    if (ioctl(fd, TIOCMSET, &st) < 0)
        return (errno == ENOTTY || errno == EINVAL || errno == ENOTSUP) ? UV_ENOTSUP
                                                                        : port__errno(errno);
    return 0;
}
