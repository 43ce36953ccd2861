/* SPDX-License-Identifier: MIT */
/* test_port.c — the port backends against real OS objects on this machine: an openpty pair
 * (tty backend, exclusive use against other paths and other processes), an in-test libuv TCP
 * server on 127.0.0.1 (raw TCP) and an in-test recording telnet server (RFC 2217 client bytes,
 * escaping, telnet stripping across reads).
 * Must not: touch real serial adapters or non-loopback addresses, or run unbounded (every loop
 * run has a timer guard). */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "port.h"

#define GUARD_MS 5000

/* ---- test context ------------------------------------------------------------------------ */

typedef struct srv_s {
    uv_tcp_t listener;
    uv_tcp_t conn;
    bool listening, has_conn, conn_closing;
    bool echo;
    int port;
    uint8_t rec[65536];
    size_t rec_len;
} srv_t;

typedef struct ctx_s {
    uv_loop_t loop;
    uv_timer_t guard;
    bool timed_out;

    port_t *port;
    int opens, open_status;
    int errors, error_status;
    int drains;
    int closes;
    uint8_t rx[1 << 20];
    size_t rx_len;
    bool close_in_read; /* call port_close from read_cb */

    /* pty */
    int master;
    char slave[64];
    uv_poll_t mpoll;
    bool mpoll_on;
    uint8_t *mrx;
    size_t mrx_len, mrx_cap;

    srv_t srv;
} ctx_t;

static ctx_t *ctx_new(void)
{
    ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    c->master = -1;
    return c;
}

static void guard_cb(uv_timer_t *t)
{
    ctx_t *c = t->data;
    c->timed_out = true;
    uv_stop(&c->loop);
}

typedef bool (*cond_fn)(ctx_t *c);

/* Run the loop until cond holds or ms pass; returns whether cond held. */
static bool run_until(ctx_t *c, cond_fn cond, uint64_t ms)
{
    c->timed_out = false;
    uv_timer_init(&c->loop, &c->guard);
    c->guard.data = c;
    uv_timer_start(&c->guard, guard_cb, ms, 0);
    /* Every test callback calls uv_stop, so the loop returns after each event batch and the
     * condition is checked again; the guard timer stops it too. */
    while (!(cond && cond(c)) && !c->timed_out)
        uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return cond ? cond(c) : true;
}

static void run_for(ctx_t *c, uint64_t ms)
{
    (void)run_until(c, NULL, ms);
}

static bool c_opened(ctx_t *c)
{
    return c->opens > 0;
}
static bool c_closed(ctx_t *c)
{
    return c->closes > 0;
}
static bool c_errored(ctx_t *c)
{
    return c->errors > 0;
}
static bool c_drained(ctx_t *c)
{
    return c->drains > 0;
}

static void on_open(port_t *p, int status)
{
    ctx_t *c = port_data(p);
    uv_stop(&c->loop);
    c->opens++;
    c->open_status = status;
}

static void on_read(port_t *p, const uint8_t *buf, size_t n)
{
    ctx_t *c = port_data(p);
    uv_stop(&c->loop);
    assert_true(c->rx_len + n <= sizeof(c->rx));
    memcpy(c->rx + c->rx_len, buf, n);
    c->rx_len += n;
    if (c->close_in_read) port_close(p);
}

static void on_error(port_t *p, int status)
{
    ctx_t *c = port_data(p);
    uv_stop(&c->loop);
    c->errors++;
    c->error_status = status;
}

static void on_drain(port_t *p)
{
    ctx_t *c = port_data(p);
    uv_stop(&c->loop);
    c->drains++;
}

static void on_close(port_t *p)
{
    ctx_t *c = port_data(p);
    uv_stop(&c->loop);
    c->closes++;
    if (c->port == p) c->port = NULL;
}

static const port_cbs_t cbs = {on_open, on_read, on_error, on_drain, on_close};

static void open_ok(ctx_t *c, const char *spec, uint32_t baud)
{
    assert_int_equal(port_open(&c->loop, spec, baud, &cbs, c, &c->port), 0);
    assert_non_null(c->port);
    assert_int_equal(c->opens, 0); /* never from inside port_open */
    assert_true(run_until(c, c_opened, GUARD_MS));
    assert_int_equal(c->open_status, 0);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void ctx_free(ctx_t *c)
{
    if (c->port) {
        port_close(c->port);
        assert_true(run_until(c, c_closed, GUARD_MS));
    }
    if (c->master >= 0) close(c->master);
    uv_walk(&c->loop, walk_close, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    free(c->mrx);
    free(c);
}

/* ---- pty helpers ------------------------------------------------------------------------- */

static void make_pty(ctx_t *c)
{
    int slave = -1;
    assert_int_equal(openpty(&c->master, &slave, c->slave, NULL, NULL), 0);
    /* Like the simulator: only the master stays with the "device"; the port opens the slave. */
    close(slave);
    int fl = fcntl(c->master, F_GETFL);
    assert_int_equal(fcntl(c->master, F_SETFL, fl | O_NONBLOCK), 0);
}

static void mpoll_cb(uv_poll_t *h, int status, int events)
{
    ctx_t *c = h->data;
    (void)events;
    uv_stop(&c->loop);
    if (status < 0) return;
    for (;;) {
        if (c->mrx_len == c->mrx_cap) {
            c->mrx_cap = c->mrx_cap ? c->mrx_cap * 2 : 65536;
            c->mrx = realloc(c->mrx, c->mrx_cap);
            assert_non_null(c->mrx);
        }
        ssize_t n = read(c->master, c->mrx + c->mrx_len, c->mrx_cap - c->mrx_len);
        if (n <= 0) break;
        c->mrx_len += (size_t)n;
    }
}

static void master_poll_start(ctx_t *c)
{
    assert_int_equal(uv_poll_init(&c->loop, &c->mpoll, c->master), 0);
    c->mpoll.data = c;
    assert_int_equal(uv_poll_start(&c->mpoll, UV_READABLE, mpoll_cb), 0);
    c->mpoll_on = true;
}

static void master_write(ctx_t *c, const void *buf, size_t n)
{
    assert_int_equal(write(c->master, buf, n), (ssize_t)n);
}

static size_t want_mrx;
static bool c_mrx(ctx_t *c)
{
    return c->mrx_len >= want_mrx;
}
static size_t want_rx;
static bool c_rx(ctx_t *c)
{
    return c->rx_len >= want_rx;
}

/* ---- tty backend ------------------------------------------------------------------------- */

static void test_kind_of_spec(void **state)
{
    (void)state;
    assert_int_equal(port_kind_of_spec("socket://127.0.0.1:4000"), PORT_KIND_TCP);
    assert_int_equal(port_kind_of_spec("rfc2217://localhost:4000"), PORT_KIND_RFC2217);
    assert_int_equal(port_kind_of_spec("/dev/pts/7"), PORT_KIND_TTY);
    assert_int_equal(port_kind_of_spec("/dev/ptmx"), PORT_KIND_TTY);
    assert_int_equal(port_kind_of_spec("usb-serial:A50285BI"), PORT_KIND_SERIAL);
    assert_int_equal(port_kind_of_spec("/dev/serial/by-id/usb-FTDI_x-if00-port0"),
                     PORT_KIND_SERIAL);
    assert_int_equal(port_kind_of_spec("/dev/ttyUSB7"), PORT_KIND_SERIAL);
    assert_int_equal(port_kind_of_spec("/dev/ttyACM3"), PORT_KIND_SERIAL);
    /* A real pty behind its path */
    ctx_t *c = ctx_new();
    make_pty(c);
    assert_int_equal(port_kind_of_spec(c->slave), PORT_KIND_TTY);
    ctx_free(c);
}

static void test_tty_both_ways(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    make_pty(c);
    open_ok(c, c->slave, 115200);
    assert_int_equal(port_kind(c->port), PORT_KIND_TTY);
    assert_string_equal(port_spec(c->port), c->slave);
    assert_int_equal(port_baud(c->port), 115200);
    master_poll_start(c);

    /* port → master, including bytes a cooked tty would mangle (XON/XOFF, CR, LF, ^C). */
    const uint8_t out[] = {0xC0, 0x11, 0x13, '\r', '\n', 0x03, 0x00, 0xFF, 0xC0};
    assert_int_equal(port_write(c->port, out, sizeof(out)), 0);
    assert_int_equal(c->drains, 0); /* never from inside port_write */
    want_mrx = sizeof(out);
    assert_true(run_until(c, c_mrx, GUARD_MS));
    assert_int_equal(c->mrx_len, sizeof(out));
    assert_memory_equal(c->mrx, out, sizeof(out));
    assert_true(run_until(c, c_drained, GUARD_MS));
    assert_int_equal(port_tx_pending(c->port), 0);

    /* master → port */
    const uint8_t in[] = {0xC0, 0x01, 0x08, 0x11, 0x13, '\r', 0x7F, 0x04, 0xC0};
    master_write(c, in, sizeof(in));
    want_rx = sizeof(in);
    assert_true(run_until(c, c_rx, GUARD_MS));
    assert_int_equal(c->rx_len, sizeof(in));
    assert_memory_equal(c->rx, in, sizeof(in));

    /* A baud change works on a pty (it is only remembered by the driver), also a rate
     * without a Bxxx constant (ESP8266 boot log rate). */
    assert_int_equal(port_set_baud(c->port, 921600), 0);
    assert_int_equal(port_baud(c->port), 921600);
    assert_int_equal(port_set_baud(c->port, 74880), 0);
    assert_int_equal(port_baud(c->port), 74880);
    assert_int_equal(port_set_baud(c->port, 0), UV_EINVAL);

    /* Ptys have no modem lines. */
    assert_false(port_has_lines(c->port));
    assert_int_equal(port_set_lines(c->port, 1, 0), UV_ENOTSUP);
    assert_int_equal(c->errors, 0);
    uv_close((uv_handle_t *)&c->mpoll, NULL);
    ctx_free(c);
}

static void test_tty_large_write(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    make_pty(c);
    open_ok(c, c->slave, 921600);
    master_poll_start(c);
    /* Far more than a pty buffer holds: most of it must wait in the port's tx buffer and go
     * out as the reader drains the master. */
    size_t n = 600 * 1024;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
    assert_int_equal(port_write(c->port, big, n), 0);
    assert_true(port_tx_pending(c->port) > 0);
    want_mrx = n;
    assert_true(run_until(c, c_mrx, GUARD_MS));
    assert_int_equal(c->mrx_len, n);
    assert_memory_equal(c->mrx, big, n);
    assert_true(run_until(c, c_drained, GUARD_MS));
    assert_int_equal(port_tx_pending(c->port), 0);

    /* The 1 MiB limit on pending bytes */
    uint8_t *huge = calloc(1, (1u << 20) + 1);
    assert_non_null(huge);
    assert_int_equal(port_write(c->port, huge, (1u << 20) + 1), UV_ENOBUFS);
    free(huge);
    free(big);
    uv_close((uv_handle_t *)&c->mpoll, NULL);
    ctx_free(c);
}

static void test_tty_flush_input(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    make_pty(c);
    open_ok(c, c->slave, 115200);
    /* Bytes that arrive while the loop does not run sit in the slave's input queue... */
    master_write(c, "boot noise", 10);
    usleep(100 * 1000); /* the pty hands bytes over from a kernel work queue */
    port_flush_input(c->port);
    run_for(c, 100);
    assert_int_equal(c->rx_len, 0); /* ...and are gone after the flush */
    master_write(c, "SYNC", 4);
    want_rx = 4;
    assert_true(run_until(c, c_rx, GUARD_MS));
    assert_int_equal(c->rx_len, 4);
    assert_memory_equal(c->rx, "SYNC", 4);
    ctx_free(c);
}

static void test_tty_busy(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    make_pty(c);
    open_ok(c, c->slave, 115200);

    ctx_t *c2 = ctx_new();
    assert_int_equal(port_open(&c2->loop, c->slave, 115200, &cbs, c2, &c2->port), 0);
    assert_true(run_until(c2, c_closed, GUARD_MS));
    assert_int_equal(c2->opens, 1);
    assert_int_equal(c2->open_status, UV_EBUSY);
    ctx_free(c2);

    /* After the owner closes, the next open succeeds (lock and TIOCEXCL released). */
    port_close(c->port);
    port_close(c->port); /* idempotent */
    assert_true(run_until(c, c_closed, GUARD_MS));
    assert_int_equal(c->closes, 1);
    c->opens = 0;
    open_ok(c, c->slave, 115200);
    ctx_free(c);
}

/* ---- exclusive use: other paths, other processes ---------------------------------------- */

#ifndef TIOCGEXCL
#define TIOCGEXCL _IOR('T', 0x40, int)
#endif

/* Open `spec` on a fresh context and return the open status (the port is closed again). */
static int open_status_of(const char *spec)
{
    ctx_t *c = ctx_new();
    assert_int_equal(port_open(&c->loop, spec, 115200, &cbs, c, &c->port), 0);
    assert_true(run_until(c, c_opened, GUARD_MS));
    int st = c->open_status;
    ctx_free(c);
    return st;
}

static int tty_excl_flag(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == EBUSY) return 1; /* not root: the flag's very effect */
    assert_true(fd >= 0);
    int excl = -1;
    assert_int_equal(ioctl(fd, TIOCGEXCL, &excl), 0);
    close(fd);
    return excl;
}

static void test_tty_busy_other_path(void **state)
{
    (void)state;
    /* Another slot naming the same device through a symlink (as /dev/serial/by-path/... names a
     * USB adapter) must not get it while the first holds it, in either order. */
    ctx_t *c = ctx_new();
    make_pty(c);
    char link[] = "/tmp/estn-port-link-XXXXXX";
    int fd = mkstemp(link);
    assert_true(fd >= 0);
    close(fd);
    unlink(link);
    assert_int_equal(symlink(c->slave, link), 0);

    open_ok(c, c->slave, 115200);
    assert_int_equal(open_status_of(link), UV_EBUSY);
    port_close(c->port);
    assert_true(run_until(c, c_closed, GUARD_MS));

    c->opens = c->closes = 0;
    open_ok(c, link, 115200);
    assert_string_equal(port_spec(c->port), link);
    assert_int_equal(open_status_of(c->slave), UV_EBUSY);
    /* the holder is this process (the pty's master is ours too, but its slave is held) */
    char who[256];
    assert_int_equal(port_holders(link, who, sizeof(who)), 0); /* the owner is not counted */
    port_close(c->port);
    assert_true(run_until(c, c_closed, GUARD_MS));
    /* our TIOCEXCL is gone with our port */
    assert_int_equal(tty_excl_flag(c->slave), 0);
    unlink(link);
    ctx_free(c);
}

/* A child process that opens `path` and holds it: "flock" (pyserial exclusive=True, esptool,
 * another espstation) or "excl" (TIOCEXCL only, like screen). Returns its pid once it holds. */
static pid_t hold_in_child(const char *path, const char *how, int master)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Not the pty's owner: without the master fd inherited from us; and gone with us if an
         * assertion ends the test early. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (master >= 0) close(master);
        close(pfd[0]);
        int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
        bool lock = strcmp(how, "excl") != 0, excl = strcmp(how, "flock") != 0;
        int ok = fd >= 0 && (!lock || flock(fd, LOCK_EX | LOCK_NB) == 0) &&
                 (!excl || ioctl(fd, TIOCEXCL) == 0);
        if (write(pfd[1], ok ? "1" : "0", 1) != 1) _exit(2);
        for (;;)
            pause(); /* killed by the test: no TIOCNXCL, no unlock */
    }
    close(pfd[1]);
    char r = 0;
    assert_int_equal(read(pfd[0], &r, 1), 1);
    close(pfd[0]);
    assert_int_equal(r, '1');
    return pid;
}

static void kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* A process that owns a pty as espsim does: master and slave open, nothing else. The test
 * itself must not hold the master, or it would count as the owner. */
static pid_t spawn_pty_owner(char slave[64])
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        int m = -1, sl = -1;
        char name[64] = "";
        if (openpty(&m, &sl, name, NULL, NULL) != 0) _exit(2);
        if (write(pfd[1], name, sizeof(name)) != (ssize_t)sizeof(name)) _exit(2);
        for (;;)
            pause();
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], slave, 64), 64);
    close(pfd[0]);
    assert_true(strncmp(slave, "/dev/", 5) == 0);
    return pid;
}

static void test_tty_busy_other_process(void **state)
{
    (void)state;
    /* flock: pyserial's exclusive=True (esptool); excl: TIOCEXCL only (screen); both: another
     * espstation. */
    static const char *const hows[] = {"flock", "excl", "both"};
    for (size_t i = 0; i < 3; i++) {
        char slave[64];
        pid_t owner = spawn_pty_owner(slave);
        pid_t pid = hold_in_child(slave, hows[i], -1);
        /* A non-root open is refused by the kernel (TIOCEXCL); root is let in and must see
         * the flag itself (TIOCGEXCL) or the lock. */
        assert_int_equal(open_status_of(slave), UV_EBUSY);
        char who[256], want[32];
        assert_int_equal(port_holders(slave, who, sizeof(who)), 1); /* not the owner */
        snprintf(want, sizeof(want), "pid %ld (", (long)pid);
        if (!strstr(who, want)) fail_msg("port_holders: \"%s\" does not name %s", who, want);
        assert_int_equal(port_holders("socket://127.0.0.1:1", who, sizeof(who)), 0);
        assert_string_equal(who, "");

        /* The holder dies without releasing anything (a crashed espstation): its lock goes
         * with it; a pty's TIOCEXCL flag stays set (the pty lives on with its owner), which
         * root may ignore once nobody else has the tty open. Without CAP_SYS_ADMIN the kernel
         * still refuses. */
        kill_child(pid);
        assert_int_equal(port_holders(slave, who, sizeof(who)), 0);
        bool excl = strcmp(hows[i], "flock") != 0;
        if (excl) assert_int_equal(tty_excl_flag(slave), 1);
        ctx_t *c = ctx_new();
        if (!excl || geteuid() == 0) {
            open_ok(c, slave, 115200);
            assert_int_equal(tty_excl_flag(slave), 1); /* ours now */
            /* and while we hold it, we are who holds it */
            assert_int_equal(port_holders(slave, who, sizeof(who)), 1);
            if (!strstr(who, "this process")) fail_msg("port_holders: \"%s\"", who);
        } else {
            assert_int_equal(open_status_of(slave), UV_EBUSY);
        }
        ctx_free(c);
        kill_child(owner);
    }
}

static void test_tty_hangup(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    make_pty(c);
    open_ok(c, c->slave, 115200);
    close(c->master);
    c->master = -1;
    assert_true(run_until(c, c_errored, GUARD_MS));
    assert_int_equal(c->error_status, UV_EOF);
    run_for(c, 50);
    assert_int_equal(c->errors, 1); /* at most once */
    assert_int_equal(port_write(c->port, (const uint8_t *)"x", 1), UV_EOF);
    ctx_free(c);
}

static void test_open_errors(void **state)
{
    (void)state;
    static const char *const specs[] = {"/dev/ttyUSB_estn_no_such_port",
                                        "/tmp/estn-no-such-dir/tty0", "usb-serial:ESTN-NO-SUCH"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ctx_t *c = ctx_new();
        assert_int_equal(port_open(&c->loop, specs[i], 115200, &cbs, c, &c->port), 0);
        assert_int_equal(c->opens, 0);
        assert_true(run_until(c, c_closed, GUARD_MS));
        assert_int_equal(c->opens, 1);
        assert_int_equal(c->open_status, UV_ENOENT);
        assert_int_equal(c->errors, 0);
        ctx_free(c);
    }
    /* A regular file is not a tty. */
    ctx_t *c = ctx_new();
    char path[] = "/tmp/estn-port-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(port_open(&c->loop, path, 115200, &cbs, c, &c->port), 0);
    assert_true(run_until(c, c_closed, GUARD_MS));
    assert_int_equal(c->opens, 1);
    assert_int_equal(c->open_status, UV_ENOTTY);
    unlink(path);
    ctx_free(c);
}

static void test_malformed_specs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "ttyUSB0",
        "usb-serial:",
        "socket://",
        "socket://host",
        "socket://:4000",
        "socket://host:",
        "socket://host:0",
        "socket://host:65536",
        "socket://host:40a0",
        "socket://::1:4000",
        "rfc2217://[::1]",
        "rfc2217://[::1]4000",
        "rfc2217://127.0.0.1:123456",
    };
    ctx_t *c = ctx_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        port_t *p = (port_t *)&c; /* must be reset to NULL */
        int rc = port_open(&c->loop, bad[i], 115200, &cbs, c, &p);
        if (rc >= 0) fail_msg("spec \"%s\" accepted", bad[i]);
        assert_null(p);
    }
    port_t *p = NULL;
    assert_int_equal(port_open(&c->loop, "socket://127.0.0.1:1", 0, &cbs, c, &p), UV_EINVAL);
    assert_int_equal(port_open(&c->loop, NULL, 115200, &cbs, c, &p), UV_EINVAL);
    run_for(c, 20);
    assert_int_equal(c->opens + c->closes + c->errors, 0); /* no callbacks */
    ctx_free(c);
}

static void test_close_before_open(void **state)
{
    (void)state;
    static const char *const specs[] = {"/dev/ptmx", "socket://127.0.0.1:9",
                                        "rfc2217://localhost:9"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        ctx_t *c = ctx_new();
        assert_int_equal(port_open(&c->loop, specs[i], 115200, &cbs, c, &c->port), 0);
        port_close(c->port);
        assert_int_equal(c->closes, 0); /* asynchronous */
        assert_true(run_until(c, c_closed, GUARD_MS));
        assert_int_equal(c->opens, 0); /* closed before the open finished: no open_cb */
        ctx_free(c);
    }
}

/* ---- in-test TCP server ------------------------------------------------------------------ */

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(sz);
    buf->len = buf->base ? sz : 0;
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    srv_t *srv = s->data;
    uv_stop(s->loop);
    if (n > 0) {
        assert_true(srv->rec_len + (size_t)n <= sizeof(srv->rec));
        memcpy(srv->rec + srv->rec_len, buf->base, (size_t)n);
        srv->rec_len += (size_t)n;
        if (srv->echo) {
            uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
            assert_int_equal(uv_try_write(s, &b, 1), (int)n);
        }
    }
    free(buf->base);
}

static void srv_on_conn(uv_stream_t *l, int status)
{
    srv_t *srv = l->data;
    uv_stop(l->loop);
    assert_int_equal(status, 0);
    assert_false(srv->has_conn);
    uv_tcp_init(l->loop, &srv->conn);
    srv->conn.data = srv;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&srv->conn), 0);
    srv->has_conn = true;
    uv_read_start((uv_stream_t *)&srv->conn, srv_alloc, srv_read);
}

static void srv_start(ctx_t *c, bool echo)
{
    srv_t *srv = &c->srv;
    srv->echo = echo;
    uv_tcp_init(&c->loop, &srv->listener);
    srv->listener.data = srv;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 4, srv_on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &len);
    srv->port = ntohs(got.sin_port);
    srv->listening = true;
}

static void srv_send(ctx_t *c, const void *buf, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
    assert_true(c->srv.has_conn);
    assert_int_equal(uv_try_write((uv_stream_t *)&c->srv.conn, &b, 1), (int)n);
}

static void spec_of(char *out, size_t cap, const char *scheme, const char *host, int port)
{
    snprintf(out, cap, "%s://%s:%d", scheme, host, port);
}

static size_t want_rec;
static bool c_rec(ctx_t *c)
{
    return c->srv.rec_len >= want_rec;
}
static bool c_has_conn(ctx_t *c)
{
    return c->srv.has_conn;
}

/* ---- TCP backend ------------------------------------------------------------------------- */

static void test_tcp_echo_and_eof(void **state)
{
    (void)state;
    /* Both a literal address and a name (localhost may resolve to ::1 first, where nothing
     * listens: the next address must be tried). */
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    for (size_t h = 0; h < 2; h++) {
        ctx_t *c = ctx_new();
        srv_start(c, true);
        char spec[96];
        spec_of(spec, sizeof(spec), "socket", hosts[h], c->srv.port);
        open_ok(c, spec, 115200);
        assert_int_equal(port_kind(c->port), PORT_KIND_TCP);
        assert_true(run_until(c, c_has_conn, GUARD_MS));

        const uint8_t msg[] = {0xC0, 0x00, 0x08, 0xFF, 0xFF, 0x11, 0xC0};
        assert_int_equal(port_write(c->port, msg, sizeof(msg)), 0);
        want_rx = sizeof(msg);
        assert_true(run_until(c, c_rx, GUARD_MS));
        assert_int_equal(c->rx_len, sizeof(msg));
        assert_memory_equal(c->rx, msg, sizeof(msg)); /* raw: no telnet escaping */
        assert_true(c->drains >= 1);

        assert_false(port_has_lines(c->port));
        assert_int_equal(port_set_lines(c->port, 0, 1), UV_ENOTSUP);
        assert_int_equal(port_set_baud(c->port, 460800), 0);
        assert_int_equal(port_baud(c->port), 460800);

        /* Flush drops what the peer sent and we did not deliver yet. */
        srv_send(c, "noise", 5);
        usleep(50 * 1000);
        port_flush_input(c->port);
        run_for(c, 50);
        assert_int_equal(c->rx_len, sizeof(msg));

        /* Peer closes → error_cb(UV_EOF) once. */
        uv_close((uv_handle_t *)&c->srv.conn, NULL);
        assert_true(run_until(c, c_errored, GUARD_MS));
        assert_int_equal(c->error_status, UV_EOF);
        run_for(c, 30);
        assert_int_equal(c->errors, 1);
        ctx_free(c);
    }
}

static void test_tcp_refused(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    /* A port that was free a moment ago and has no listener. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    char spec[64];
    spec_of(spec, sizeof(spec), "socket", "127.0.0.1", ntohs(a.sin_port));
    assert_int_equal(port_open(&c->loop, spec, 115200, &cbs, c, &c->port), 0);
    assert_true(run_until(c, c_closed, GUARD_MS));
    assert_int_equal(c->opens, 1);
    assert_int_equal(c->open_status, UV_ECONNREFUSED);
    ctx_free(c);
}

static void test_tcp_order_and_close(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    srv_start(c, true);
    char spec[64];
    spec_of(spec, sizeof(spec), "socket", "127.0.0.1", c->srv.port);
    assert_int_equal(port_open(&c->loop, spec, 115200, &cbs, c, &c->port), 0);
    /* Written before the open finished: queued, sent once connected. Lines cannot be set
     * before the open; the baud rate is only remembered. */
    assert_int_equal(port_write(c->port, (const uint8_t *)"early", 5), 0);
    assert_int_equal(port_tx_pending(c->port), 5);
    assert_int_equal(port_set_baud(c->port, 230400), 0);
    assert_int_equal(port_baud(c->port), 230400);
    assert_true(run_until(c, c_opened, GUARD_MS));
    assert_int_equal(c->open_status, 0);
    assert_int_equal(port_write(c->port, (const uint8_t *)"+late", 5), 0);
    want_rx = 10;
    assert_true(run_until(c, c_rx, GUARD_MS));
    assert_int_equal(c->rx_len, 10);
    assert_memory_equal(c->rx, "early+late", 10);
    assert_true(c->drains >= 1);

    /* port_close from inside read_cb: no further reads, close_cb exactly once. */
    c->close_in_read = true;
    srv_send(c, "x", 1);
    assert_true(run_until(c, c_closed, GUARD_MS));
    assert_int_equal(c->rx_len, 11);
    run_for(c, 30);
    assert_int_equal(c->closes, 1);
    assert_int_equal(c->rx_len, 11);
    assert_int_equal(c->errors, 0);
    ctx_free(c);
}

static void test_tcp_reset(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    srv_start(c, false);
    char spec[64];
    spec_of(spec, sizeof(spec), "socket", "127.0.0.1", c->srv.port);
    open_ok(c, spec, 115200);
    assert_true(run_until(c, c_has_conn, GUARD_MS));
    /* An abortive close (RST) is an error of its own, not an orderly end of stream. */
    assert_int_equal(uv_tcp_close_reset(&c->srv.conn, NULL), 0);
    assert_true(run_until(c, c_errored, GUARD_MS));
    assert_int_equal(c->error_status, UV_ECONNRESET);
    ctx_free(c);
}

static void test_tcp_one_port_per_endpoint(void **state)
{
    (void)state;
    /* One device server port is one serial device: no second port of this process on it,
     * however the spec spells it (host name, scheme). */
    ctx_t *c = ctx_new();
    srv_start(c, false);
    char spec[64], alias[64], rfc[64];
    spec_of(spec, sizeof(spec), "socket", "127.0.0.1", c->srv.port);
    spec_of(alias, sizeof(alias), "socket", "localhost", c->srv.port);
    spec_of(rfc, sizeof(rfc), "rfc2217", "127.0.0.1", c->srv.port);
    open_ok(c, spec, 115200);
    assert_true(run_until(c, c_has_conn, GUARD_MS));
    assert_int_equal(open_status_of(alias), UV_EBUSY);
    assert_int_equal(open_status_of(rfc), UV_EBUSY);
    assert_int_equal(open_status_of(spec), UV_EBUSY);
    /* Another endpoint is not affected (nobody listens there: refused, not busy). */
    char other[64];
    spec_of(other, sizeof(other), "socket", "127.0.0.1",
            c->srv.port == 65535 ? 1 : c->srv.port + 1);
    assert_int_not_equal(open_status_of(other), UV_EBUSY);
    /* Freed with the port. */
    port_close(c->port);
    assert_true(run_until(c, c_closed, GUARD_MS));
    uv_close((uv_handle_t *)&c->srv.conn, NULL);
    c->srv.has_conn = false;
    assert_int_equal(open_status_of(rfc), 0);
    ctx_free(c);
}

static void test_tcp_connect_timeout(void **state)
{
    (void)state;
    /* A listener that never accepts, with its accept queue full: further SYNs are dropped on
     * loopback, so the connect neither succeeds nor fails until our timeout (~5 s). */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 0), 0);
    socklen_t len = sizeof(a);
    getsockname(l, (struct sockaddr *)&a, &len);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50 * 1000);
    ctx_t *c = ctx_new();
    char spec[64];
    spec_of(spec, sizeof(spec), "socket", "127.0.0.1", ntohs(a.sin_port));
    assert_int_equal(port_open(&c->loop, spec, 115200, &cbs, c, &c->port), 0);
    uint64_t t0 = uv_hrtime();
    assert_true(run_until(c, c_closed, 15000));
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(c->opens, 1);
    assert_int_equal(c->open_status, UV_ETIMEDOUT);
    assert_true(ms >= 4000 && ms < 10000);
    ctx_free(c);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
}

static void test_port_list(void **state)
{
    (void)state;
    /* Whatever this machine has (often nothing): a count, entries sorted, no crash. */
    int n = port_list(NULL, 0);
    assert_true(n >= 0);
    if (n > 0) {
        port_info_t *all = calloc((size_t)n, sizeof(*all));
        assert_non_null(all);
        assert_int_equal(port_list(all, (size_t)n), n);
        for (int i = 1; i < n; i++)
            assert_true(strcmp(all[i - 1].path, all[i].path) <= 0);
        free(all);
    }
}

/* ---- RFC 2217 backend -------------------------------------------------------------------- */

#define IAC 255
#define SB 250
#define SE 240
#define WILL 251
#define WONT 252
#define DO 253
#define DONT 254
#define CPO 44

static void test_rfc2217_client_bytes(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    srv_start(c, false);
    char spec[64];
    spec_of(spec, sizeof(spec), "rfc2217", "127.0.0.1", c->srv.port);
    /* The server never answers: the open must complete anyway. */
    open_ok(c, spec, 115200);
    assert_int_equal(port_kind(c->port), PORT_KIND_RFC2217);
    assert_true(port_has_lines(c->port));

    assert_int_equal(port_set_baud(c->port, 460800), 0);
    assert_int_equal(port_set_lines(c->port, 1, 0), 0);  /* DTR on, RTS off */
    assert_int_equal(port_set_lines(c->port, -1, 1), 0); /* RTS on only */
    assert_int_equal(port_set_lines(c->port, 0, -1), 0); /* DTR off only */
    const uint8_t data[] = {0x01, 0xFF, 0x02, 0xFF, 0xFF};
    assert_int_equal(port_write(c->port, data, sizeof(data)), 0);
    assert_int_equal(port_set_baud(c->port, 0x0001FFFF), 0); /* 0xFF inside a subnegotiation */
    port_flush_input(c->port);

    /* clang-format off */
    static const uint8_t want[] = {
        /* negotiation */
        IAC, WILL, 0, IAC, DO, 0, IAC, WILL, 3, IAC, DO, 3, IAC, WILL, CPO, IAC, DO, CPO,
        /* SET-BAUDRATE 115200, DATASIZE 8, PARITY NONE, STOPSIZE 1, CONTROL no flow */
        IAC, SB, CPO, 1, 0x00, 0x01, 0xC2, 0x00, IAC, SE,
        IAC, SB, CPO, 2, 8, IAC, SE,
        IAC, SB, CPO, 3, 1, IAC, SE,
        IAC, SB, CPO, 4, 1, IAC, SE,
        IAC, SB, CPO, 5, 1, IAC, SE,
        /* SET-BAUDRATE 460800 */
        IAC, SB, CPO, 1, 0x00, 0x07, 0x08, 0x00, IAC, SE,
        /* DTR on (8), RTS off (12), RTS on (11), DTR off (9) */
        IAC, SB, CPO, 5, 8, IAC, SE,
        IAC, SB, CPO, 5, 12, IAC, SE,
        IAC, SB, CPO, 5, 11, IAC, SE,
        IAC, SB, CPO, 5, 9, IAC, SE,
        /* data, 0xFF doubled */
        0x01, 0xFF, 0xFF, 0x02, 0xFF, 0xFF, 0xFF, 0xFF,
        /* SET-BAUDRATE 0x0001FFFF, 0xFF doubled inside SB too */
        IAC, SB, CPO, 1, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, IAC, SE,
        /* PURGE-DATA: receive buffer */
        IAC, SB, CPO, 12, 1, IAC, SE,
    };
    /* clang-format on */
    want_rec = sizeof(want);
    assert_true(run_until(c, c_rec, GUARD_MS));
    run_for(c, 30);
    assert_int_equal(c->srv.rec_len, sizeof(want));
    assert_memory_equal(c->srv.rec, want, sizeof(want));
    ctx_free(c);
}

static void test_rfc2217_before_open(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    srv_start(c, false);
    char spec[64];
    spec_of(spec, sizeof(spec), "rfc2217", "127.0.0.1", c->srv.port);
    assert_int_equal(port_open(&c->loop, spec, 74880, &cbs, c, &c->port), 0);
    /* In-stream commands are queued before the open and keep their order after the initial
     * settings; so does data. */
    assert_int_equal(port_set_lines(c->port, 0, 1), 0);
    assert_int_equal(port_write(c->port, (const uint8_t *)"z", 1), 0);
    assert_true(run_until(c, c_opened, GUARD_MS));
    assert_int_equal(c->open_status, 0);
    /* clang-format off */
    static const uint8_t want_tail[] = {
        IAC, SB, CPO, 1, 0x00, 0x01, 0x24, 0x80, IAC, SE, /* 74880 */
        IAC, SB, CPO, 2, 8, IAC, SE,
        IAC, SB, CPO, 3, 1, IAC, SE,
        IAC, SB, CPO, 4, 1, IAC, SE,
        IAC, SB, CPO, 5, 1, IAC, SE,
        IAC, SB, CPO, 5, 9, IAC, SE,  /* DTR off */
        IAC, SB, CPO, 5, 11, IAC, SE, /* RTS on */
        'z',
    };
    /* clang-format on */
    want_rec = 18 + sizeof(want_tail);
    assert_true(run_until(c, c_rec, GUARD_MS));
    run_for(c, 20);
    assert_int_equal(c->srv.rec_len, 18 + sizeof(want_tail));
    assert_memory_equal(c->srv.rec + 18, want_tail, sizeof(want_tail));
    ctx_free(c);

    /* Refused like raw TCP. */
    c = ctx_new();
    srv_start(c, false);
    int port = c->srv.port;
    uv_close((uv_handle_t *)&c->srv.listener, NULL);
    run_for(c, 10);
    spec_of(spec, sizeof(spec), "rfc2217", "127.0.0.1", port);
    assert_int_equal(port_open(&c->loop, spec, 115200, &cbs, c, &c->port), 0);
    assert_true(run_until(c, c_closed, GUARD_MS));
    assert_int_equal(c->opens, 1);
    assert_int_equal(c->open_status, UV_ECONNREFUSED);
    ctx_free(c);
}

static void test_rfc2217_server_stream(void **state)
{
    (void)state;
    ctx_t *c = ctx_new();
    srv_start(c, false);
    char spec[64];
    spec_of(spec, sizeof(spec), "rfc2217", "127.0.0.1", c->srv.port);
    open_ok(c, spec, 115200);
    assert_true(run_until(c, c_has_conn, GUARD_MS));
    want_rec = 18 + 5 * 7 + 3; /* everything the open sends */
    assert_true(run_until(c, c_rec, GUARD_MS));
    size_t base = c->srv.rec_len;

    /* Answers to our own requests (no reply expected), escaped data, a server answer
     * subnegotiation, NOP, and requests for options we refuse. */
    /* clang-format off */
    static const uint8_t s1[] = {
        IAC, WILL, CPO, IAC, DO, CPO, IAC, WILL, 0, IAC, DO, 0, IAC, WILL, 3, IAC, DO, 3,
        'A', IAC, IAC, 'B',
        IAC, SB, CPO, 101, 0x00, 0x01, 0xC2, 0x00, IAC, SE,
        'C', IAC, 241 /* NOP */, 'D',
        IAC, DO, 24 /* TERMINAL-TYPE */, IAC, WILL, 1 /* ECHO */,
        IAC, SB, CPO, 107, 0x30, IAC, SE, /* NOTIFY-MODEMSTATE */
        'E', IAC,
    };
    /* clang-format on */
    srv_send(c, s1, sizeof(s1));
    /* The trailing IAC waits in the parser for its second half. */
    want_rx = 6;
    assert_true(run_until(c, c_rx, GUARD_MS));
    run_for(c, 20);
    assert_int_equal(c->rx_len, 6);
    assert_memory_equal(c->rx,
                        "A\xff"
                        "BCDE",
                        6);
    /* Split across reads: IAC | IAC (data 0xFF) 'G' IAC SB CPO | 105 0 3 IAC | SE 'F' ... */
    static const uint8_t s2[] = {IAC, 'G', IAC, SB, CPO};
    srv_send(c, s2, sizeof(s2));
    want_rx = 8;
    assert_true(run_until(c, c_rx, GUARD_MS));
    run_for(c, 20);
    static const uint8_t s3[] = {105, 0x00, 0x03, IAC};
    srv_send(c, s3, sizeof(s3));
    run_for(c, 30);
    assert_int_equal(c->rx_len, 8);
    static const uint8_t s4[] = {SE, 'F', IAC, IAC};
    srv_send(c, s4, sizeof(s4));
    want_rx = 10;
    assert_true(run_until(c, c_rx, GUARD_MS));
    run_for(c, 20);
    assert_int_equal(c->rx_len, 10);
    assert_memory_equal(c->rx,
                        "A\xff"
                        "BCDE\xff"
                        "GF\xff",
                        10);

    /* The client refused TERMINAL-TYPE and ECHO, and sent nothing else in reply. */
    static const uint8_t reply[] = {IAC, WONT, 24, IAC, DONT, 1};
    want_rec = base + sizeof(reply);
    assert_true(run_until(c, c_rec, GUARD_MS));
    run_for(c, 30);
    assert_int_equal(c->srv.rec_len - base, sizeof(reply));
    assert_memory_equal(c->srv.rec + base, reply, sizeof(reply));

    /* Data from the port after all this still flows unescaped → escaped. */
    const uint8_t d[] = {0xFF};
    assert_int_equal(port_write(c->port, d, 1), 0);
    want_rec = base + sizeof(reply) + 2;
    assert_true(run_until(c, c_rec, GUARD_MS));
    assert_int_equal(c->srv.rec[base + sizeof(reply)], 0xFF);
    assert_int_equal(c->srv.rec[base + sizeof(reply) + 1], 0xFF);

    /* Peer close → UV_EOF */
    uv_close((uv_handle_t *)&c->srv.conn, NULL);
    assert_true(run_until(c, c_errored, GUARD_MS));
    assert_int_equal(c->error_status, UV_EOF);
    ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_of_spec),
        cmocka_unit_test(test_malformed_specs),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_close_before_open),
        cmocka_unit_test(test_tty_both_ways),
        cmocka_unit_test(test_tty_large_write),
        cmocka_unit_test(test_tty_flush_input),
        cmocka_unit_test(test_tty_busy),
        cmocka_unit_test(test_tty_hangup),
        cmocka_unit_test(test_tcp_echo_and_eof),
        cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_order_and_close),
        cmocka_unit_test(test_tcp_reset),
        cmocka_unit_test(test_tcp_connect_timeout),
        cmocka_unit_test(test_port_list),
        cmocka_unit_test(test_rfc2217_client_bytes),
        cmocka_unit_test(test_rfc2217_before_open),
        cmocka_unit_test(test_rfc2217_server_stream),
        cmocka_unit_test(test_tty_busy_other_path),
        cmocka_unit_test(test_tty_busy_other_process),
        cmocka_unit_test(test_tcp_one_port_per_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
