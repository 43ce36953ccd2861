/* SPDX-License-Identifier: MIT */
/* port_tty.c — the plain-termios backend: ptys (/dev/pts/N, e.g. the simulator's) and ttys
 * that libserialport cannot handle; also the termios helpers the libserialport backend reuses.
 * Owns: open(O_RDWR|O_NOCTTY|O_NONBLOCK), exclusivity (flock + TIOCEXCL), raw 8N1 setup,
 * arbitrary baud rates (termios2/BOTHER), TIOCMGET/TIOCMSET lines, tcflush.
 * Must not: block (no tcdrain, no blocking open), or leave TIOCEXCL set on a tty it closes. */
#include "port_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* The kernel's termios2 (asm-generic layout: 19 control characters). glibc's <termios.h> has
 * no such type and <asm/termbits.h> clashes with it, so it is declared here; TCGETS2/TCSETS2
 * come from <sys/ioctl.h>. */
struct termios2 {
    tcflag_t c_iflag;
    tcflag_t c_oflag;
    tcflag_t c_cflag;
    tcflag_t c_lflag;
    cc_t c_line;
    cc_t c_cc[19];
    speed_t c_ispeed;
    speed_t c_ospeed;
};

#ifndef BOTHER
#define BOTHER 0010000
#endif

static speed_t port_tty_speed_const(uint32_t baud)
{
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 500000: return B500000;
    case 576000: return B576000;
    case 921600: return B921600;
    case 1000000: return B1000000;
    case 1152000: return B1152000;
    case 1500000: return B1500000;
    case 2000000: return B2000000;
    case 2500000: return B2500000;
    case 3000000: return B3000000;
    case 3500000: return B3500000;
    case 4000000: return B4000000;
    default: return 0;
    }
}

/* Rates without a Bxxx constant (e.g. 74880, the ESP8266 boot log rate, PROTOCOL.md §1). */
static int port_tty_set_other_baud(int fd, uint32_t baud)
{
#if defined(TCGETS2) && defined(TCSETS2)
    struct termios2 t2;
    if (ioctl(fd, TCGETS2, &t2) < 0) return port__errno(errno);
    t2.c_cflag &= ~(tcflag_t)(CBAUD | (CBAUD << 16)); /* output and input speed fields */
    t2.c_cflag |= BOTHER | (BOTHER << 16);
    t2.c_ispeed = baud;
    t2.c_ospeed = baud;
    if (ioctl(fd, TCSETS2, &t2) < 0) return port__errno(errno);
    return 0;
#else
    (void)fd;
    (void)baud;
    return UV_ENOTSUP;
#endif
}

int port__fd_set_baud(int fd, uint32_t baud)
{
    speed_t sp = port_tty_speed_const(baud);
    if (!sp) return port_tty_set_other_baud(fd, baud);
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return port__errno(errno);
    cfsetispeed(&t, sp);
    cfsetospeed(&t, sp);
    /* TCSANOW: TCSADRAIN would block the loop until the output queue empties. Callers change
     * the rate after the loader's reply arrived (PROTOCOL.md §9), when nothing is queued. */
    if (tcsetattr(fd, TCSANOW, &t) < 0) return port__errno(errno);
    return 0;
}

void port__termios_nonblock_read(struct termios *t)
{
    /* VMIN=1, VTIME=0 on an O_NONBLOCK fd: read() never waits and returns EAGAIN when the
     * queue is empty, so 0 keeps its meaning "hung up" (unplugged adapter). With VMIN=0 the
     * n_tty driver returns 0 for "no data" as well, and a hang-up could not be told apart. */
    t->c_cc[VMIN] = 1;
    t->c_cc[VTIME] = 0;
}

int port__fd_configure(int fd, uint32_t baud)
{
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return port__errno(errno);
    cfmakeraw(&t);
    /* No software flow control: XON/XOFF would swallow 0x11/0x13, which are loader opcodes
     * (PROTOCOL.md §14.4). No hardware flow control, no parity, 8 bits, 1 stop bit. */
    t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK | ISTRIP | IGNBRK | BRKINT | PARMRK);
    t.c_cflag &= ~(tcflag_t)(CRTSCTS | CSTOPB | PARENB | CSIZE);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    /* No HUPCL: the last close must not drop DTR/RTS and so reset the DUT (PROTOCOL.md §2.1). */
    t.c_cflag &= ~(tcflag_t)HUPCL;
    port__termios_nonblock_read(&t);
    speed_t sp = port_tty_speed_const(baud);
    if (sp) {
        cfsetispeed(&t, sp);
        cfsetospeed(&t, sp);
    }
    if (tcsetattr(fd, TCSANOW, &t) < 0) return port__errno(errno);
    return sp ? 0 : port_tty_set_other_baud(fd, baud);
}

static int port_tty_open_fd(const char *path, uint32_t baud, bool *has_lines, int *out)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return port__errno(errno);
    int rc = 0;
    if (!isatty(fd)) {
        rc = UV_ENOTTY;
        goto fail;
    }
    rc = port__fd_lock(fd, true);
    if (rc < 0) goto fail;
    rc = port__fd_configure(fd, baud);
    if (rc < 0) goto fail_excl;
    int st;
    *has_lines = ioctl(fd, TIOCMGET, &st) == 0;
    tcflush(fd, TCIOFLUSH);
    *out = fd;
    return 0;
fail_excl:
    (void)ioctl(fd, TIOCNXCL);
fail:
    close(fd);
    return rc;
}

static void port_tty_start(port_t *p)
{
    int fd = -1;
    int rc = port_tty_open_fd(p->spec, p->baud, &p->has_lines, &fd);
    if (rc == 0) {
        rc = port__poll_fd(p, fd);
        if (rc < 0 && !p->poll_inited) {
            (void)ioctl(fd, TIOCNXCL);
            close(fd);
            p->fd = -1;
        }
    }
    port__open_done(p, rc);
}

static int port_tty_set_baud(port_t *p, uint32_t baud)
{
    return port__fd_set_baud(p->fd, baud);
}

static int port_tty_set_lines(port_t *p, int dtr, int rts)
{
    if (!p->has_lines) return UV_ENOTSUP;
    return port__fd_set_lines(p->fd, dtr, rts);
}

static void port_tty_flush_input(port_t *p)
{
    (void)tcflush(p->fd, TCIFLUSH);
}

static void port_tty_release(port_t *p)
{
    if (p->fd >= 0) {
        /* TIOCEXCL outlives our fd while another side (a pty master) keeps the tty alive. */
        (void)ioctl(p->fd, TIOCNXCL);
        close(p->fd);
        p->fd = -1;
    }
}

const port_ops_t port__tty_ops = {
    .kind = PORT_KIND_TTY,
    .start = port_tty_start,
    .set_baud = port_tty_set_baud,
    .set_lines = port_tty_set_lines,
    .flush_input = port_tty_flush_input,
    .release = port_tty_release,
};
