/* SPDX-License-Identifier: MIT */
/* port_sp.c — real serial adapters through libserialport: open by path or by USB serial number
 * ("usb-serial:<serial>"), exclusive use, 115200 8N1 without flow control, DTR+RTS set together
 * with one TIOCMSET on the port's fd, and port enumeration (port_list).
 * Must not: use libserialport's blocking calls, or keep a port it could not lock; ttys that
 * libserialport 0.1.1 cannot open (ptys and other non-hardware ttys) go to port_tty.c. */
#include "port_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

bool port__sp_is_usb_tty(const char *path)
{
    /* A tty backed by a hardware device (USB adapter, on-board UART) has a "device" link in
     * sysfs; ptys, consoles and virtual terminals do not. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base) return false;
    char sys[PATH_MAX];
    snprintf(sys, sizeof(sys), "/sys/class/tty/%s/device", base);
    struct stat st;
    if (stat(sys, &st) == 0) return true;
    /* Not present (yet): guess from the usual USB adapter names so that a missing
     * /dev/ttyUSB3 is still reported by this backend. */
    return strncmp(base, "ttyUSB", 6) == 0 || strncmp(base, "ttyACM", 6) == 0;
}

/* libserialport result → UV error (errors are converted once, at the boundary). */
static int port_sp_err(enum sp_return r)
{
    switch (r) {
    case SP_OK: return 0;
    case SP_ERR_ARG: return UV_EINVAL;
    case SP_ERR_MEM: return UV_ENOMEM;
    case SP_ERR_SUPP: return UV_ENOTSUP;
    case SP_ERR_FAIL: {
        int e = sp_last_error_code();
        return e > 0 ? port__errno(e) : UV_EIO;
    }
    }
    return r < 0 ? UV_EIO : 0;
}

/* ---- enumeration ------------------------------------------------------------------------- */

static void port_sp_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int port_info_cmp(const void *a, const void *b)
{
    return strcmp(((const port_info_t *)a)->path, ((const port_info_t *)b)->path);
}

int port_list(port_info_t *out, size_t max)
{
    struct sp_port **list = NULL;
    enum sp_return r = sp_list_ports(&list);
    if (r != SP_OK) return port_sp_err(r);
    size_t n = 0;
    while (list[n])
        n++;
    port_info_t *all = calloc(n ? n : 1, sizeof(*all));
    if (!all) {
        sp_free_port_list(list);
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        port_info_t *pi = &all[i];
        port_sp_copy(pi->path, sizeof(pi->path), sp_get_port_name(list[i]));
        port_sp_copy(pi->description, sizeof(pi->description), sp_get_port_description(list[i]));
        if (sp_get_port_transport(list[i]) == SP_TRANSPORT_USB) {
            int vid = 0, pid = 0;
            pi->usb = true;
            if (sp_get_port_usb_vid_pid(list[i], &vid, &pid) == SP_OK) {
                pi->usb_vid = (uint16_t)vid;
                pi->usb_pid = (uint16_t)pid;
            }
            port_sp_copy(pi->serial, sizeof(pi->serial), sp_get_port_usb_serial(list[i]));
        }
    }
    sp_free_port_list(list);
    qsort(all, n, sizeof(*all), port_info_cmp);
    if (out) memcpy(out, all, (n < max ? n : max) * sizeof(*all));
    free(all);
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* "usb-serial:<serial>" → the first port (by path) of the USB device with that serial number.
 * Multi-interface adapters (FT2232…) share one serial; their first interface wins. */
static int port_sp_resolve_serial(const char *serial, char *path, size_t cap)
{
    int n = port_list(NULL, 0);
    if (n < 0) return n;
    if (n == 0) return UV_ENOENT;
    port_info_t *all = calloc((size_t)n, sizeof(*all));
    if (!all) return UV_ENOMEM;
    int m = port_list(all, (size_t)n);
    int rc = UV_ENOENT;
    for (int i = 0; i < m && i < n; i++) {
        if (all[i].usb && all[i].serial[0] && strcmp(all[i].serial, serial) == 0) {
            port_sp_copy(path, cap, all[i].path);
            rc = 0;
            break;
        }
    }
    free(all);
    return rc;
}

/* ---- the backend ------------------------------------------------------------------------- */

static void port_sp_release(port_t *p)
{
    struct sp_port *sp = p->sp;
    if (sp) {
        int fd = -1;
        if (sp_get_port_handle(sp, &fd) == SP_OK && fd >= 0) (void)ioctl(fd, TIOCNXCL);
        sp_close(sp);
        sp_free_port(sp);
        p->sp = NULL;
        p->fd = -1; /* was libserialport's; sp_close closed it */
    }
    if (p->lock_fd >= 0) {
        close(p->lock_fd);
        p->lock_fd = -1;
    }
}

static int port_sp_configure(port_t *p, struct sp_port *sp, int fd)
{
    enum sp_return r;
    if ((r = sp_set_baudrate(sp, (int)p->baud)) != SP_OK || (r = sp_set_bits(sp, 8)) != SP_OK ||
        (r = sp_set_parity(sp, SP_PARITY_NONE)) != SP_OK || (r = sp_set_stopbits(sp, 1)) != SP_OK ||
        (r = sp_set_flowcontrol(sp, SP_FLOWCONTROL_NONE)) != SP_OK)
        return port_sp_err(r);
    /* What libserialport's config does not cover: read semantics for our non-blocking fd and
     * no HUPCL (the last close must not move DTR/RTS and reset the DUT, PROTOCOL.md §2.1). */
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return port__errno(errno);
    t.c_cflag &= ~(tcflag_t)HUPCL;
    t.c_cflag |= CLOCAL | CREAD;
    port__termios_nonblock_read(&t);
    if (tcsetattr(fd, TCSANOW, &t) < 0) return port__errno(errno);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return port__errno(errno);
    return 0;
}

/* 0: opened; 1: libserialport cannot handle this tty, use the termios backend. */
static int port_sp_open(port_t *p, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return port__errno(errno);
    if (!S_ISCHR(st.st_mode)) return UV_ENOTTY;
    /* Lock before libserialport touches the settings, so that a second opener cannot change
     * the baud rate under the owner. The lock lives on this extra fd until release. */
    int lfd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (lfd < 0) return port__errno(errno);
    int rc = port__fd_lock(lfd, false);
    if (rc < 0) {
        close(lfd);
        return rc;
    }
    p->lock_fd = lfd;

    struct sp_port *sp = NULL;
    enum sp_return r = sp_get_port_by_name(path, &sp);
    if (r != SP_OK) return r == SP_ERR_MEM ? UV_ENOMEM : 1;
    r = sp_open(sp, SP_MODE_READ_WRITE);
    if (r != SP_OK) {
        int e = r == SP_ERR_FAIL ? sp_last_error_code() : 0;
        sp_free_port(sp);
        if (e == ENOENT || e == EACCES || e == EBUSY || e == EPERM || e == ENODEV || e == ENXIO)
            return port__errno(e);
        return 1;
    }
    p->sp = sp;
    int fd = -1;
    if (sp_get_port_handle(sp, &fd) != SP_OK || fd < 0) return UV_EIO;
    p->fd = fd;
    /* Other openers get EBUSY (unless root; the flock above covers that case). */
    (void)ioctl(fd, TIOCEXCL);
    rc = port_sp_configure(p, sp, fd);
    if (rc < 0) return rc;
    int lines;
    p->has_lines = ioctl(fd, TIOCMGET, &lines) == 0;
    /* An unplugged adapter's tty is hung up: reads return 0 / EIO, which means "gone". */
    p->eof_is_eio = true;
    tcflush(fd, TCIOFLUSH);
    return 0;
}

static void port_sp_start(port_t *p)
{
    char path[PATH_MAX];
    const char *spec = p->spec;
    int rc = 0;
    if (strncmp(spec, "usb-serial:", 11) == 0) {
        rc = port_sp_resolve_serial(spec + 11, path, sizeof(path));
        if (rc < 0) {
            port__open_done(p, rc);
            return;
        }
    } else {
        port_sp_copy(path, sizeof(path), spec);
    }
    rc = port_sp_open(p, path);
    if (rc == 1) {
        /* libserialport refused a tty it does not know (e.g. a pty behind a symlink): the
         * termios backend handles any tty. */
        port_sp_release(p);
        p->ops = &port__tty_ops;
        p->kind = PORT_KIND_TTY;
        p->ops->start(p);
        return;
    }
    if (rc == 0) {
        int fd = p->fd;
        p->fd = -1;
        rc = port__poll_fd(p, fd);
        /* port.c now thinks it owns fd; libserialport does, and closes it in release. */
        if (rc < 0 && !p->poll_inited) p->fd = -1;
    }
    if (rc < 0) port_sp_release(p);
    port__open_done(p, rc);
}

static int port_sp_set_baud(port_t *p, uint32_t baud)
{
    if (baud > INT_MAX) return UV_EINVAL;
    return port_sp_err(sp_set_baudrate(p->sp, (int)baud));
}

static int port_sp_set_lines(port_t *p, int dtr, int rts)
{
    if (!p->has_lines) return UV_ENOTSUP;
    /* Not sp_set_dtr + sp_set_rts: two calls would pass through an intermediate line state
     * (PROTOCOL.md §2.2, UnixTightReset needs both at once). */
    return port__fd_set_lines(p->fd, dtr, rts);
}

static void port_sp_flush_input(port_t *p)
{
    (void)sp_flush(p->sp, SP_BUF_INPUT);
}

const port_ops_t port__sp_ops = {
    .kind = PORT_KIND_SERIAL,
    .start = port_sp_start,
    .set_baud = port_sp_set_baud,
    .set_lines = port_sp_set_lines,
    .flush_input = port_sp_flush_input,
    .release = port_sp_release,
};
