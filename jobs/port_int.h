/* SPDX-License-Identifier: MIT */
/* port_int.h — private to jobs/port*.c: the port object, the backend ops table and the shared
 * fd machinery (uv_poll read/write, tx buffer, open/fail/close bookkeeping) in port.c.
 * Must not: be included outside jobs/port*.c (tests use only port.h). */
#ifndef PORT_INT_H
#define PORT_INT_H

#include "port.h"

#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

/* Most bytes port_write accepts to have pending (port.h contract). */
#define PORT_TX_MAX (1024u * 1024u)
/* TCP / RFC 2217 connect timeout, all addresses together. */
#define PORT_CONNECT_TIMEOUT_MS 5000u

typedef enum {
    PORT_ST_OPENING, /* deferred start / resolving / connecting */
    PORT_ST_OPEN,
    PORT_ST_FAILED, /* open failed or error_cb reported; waiting for port_close */
} port_state_t;

/* Telnet receive parser state (RFC 854 / RFC 2217), kept across reads. */
typedef enum {
    PORT_TN_DATA,
    PORT_TN_IAC,    /* after IAC */
    PORT_TN_OPT,    /* after IAC WILL/WONT/DO/DONT: the option byte follows */
    PORT_TN_SB,     /* inside IAC SB ... */
    PORT_TN_SB_IAC, /* IAC inside a subnegotiation */
} port_tn_state_t;

#define PORT_TN_SB_MAX 32

typedef struct port_tn_s {
    port_tn_state_t st;
    uint8_t verb;                  /* WILL/WONT/DO/DONT being parsed */
    uint8_t sb[PORT_TN_SB_MAX];    /* subnegotiation payload (option byte first) */
    size_t sb_len;                 /* may exceed PORT_TN_SB_MAX: the rest is dropped */
    uint8_t we[256 / 8];           /* options we announced (WILL) — no repeats, no loops */
    uint8_t they[256 / 8];         /* options we requested (DO) */
    uint8_t we_refused[256 / 8];   /* options we already answered WONT */
    uint8_t they_refused[256 / 8]; /* options we already answered DONT */
    uint32_t sb_seen;              /* subnegotiations received (tests/debugging) */
} port_tn_t;

typedef struct port_ops_s {
    port_kind_t kind;
    /* set_baud/set_lines only queue bytes in the data stream (RFC 2217): they work before the
     * port is open and stay ordered with the data. */
    bool cmds_in_stream;
    /* At port_open: validate the spec (malformed → negative UV error, no callbacks) and set up
     * backend state. May be NULL. */
    int (*prepare)(port_t *p);
    /* From the deferred timer (never inside port_open): begin opening; finishes with
     * port__open_done() now or later. */
    void (*start)(port_t *p);
    int (*set_baud)(port_t *p, uint32_t baud);
    int (*set_lines)(port_t *p, int dtr, int rts);
    void (*flush_input)(port_t *p);
    /* Queue user bytes (escaping them if the transport needs it). NULL: port__queue. */
    int (*write)(port_t *p, const uint8_t *buf, size_t n);
    /* Turn received bytes into data in place; returns the data length. NULL: all data. */
    size_t (*filter_rx)(port_t *p, uint8_t *buf, size_t n);
    /* Release OS resources (fd, libserialport port) and backend memory. May be NULL. */
    void (*release)(port_t *p);
} port_ops_t;

struct port_s {
    uv_loop_t *loop;
    const port_ops_t *ops;
    port_kind_t kind;
    char *spec;
    uint32_t baud;
    port_cbs_t cbs;
    void *data;

    port_state_t state;
    int err;      /* first failure, once state is FAILED */
    bool closing; /* port_close was called */
    bool has_lines;
    bool is_socket;  /* send/recv with MSG_NOSIGNAL instead of write/read */
    bool connecting; /* waiting for a non-blocking connect() to finish */
    bool drain_due;  /* drain_cb owed once tx empties */
    bool eof_is_eio; /* read() == 0 / EIO means "device gone" (USB) rather than UV_EOF */
    bool started;    /* the deferred start ran; the timer now guards the connect */

    int fd;      /* -1 when none */
    int lock_fd; /* extra fd holding the flock (serial backend), -1 when none */

    unsigned pending; /* handles and requests whose close/completion is outstanding */
    uv_timer_t timer; /* deferred start, then connect timeout */
    uv_poll_t poll;
    bool poll_inited;
    int poll_events;
    uv_getaddrinfo_t gai;
    bool gai_busy;

    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap; /* pending bytes are tx[tx_off, tx_len) */

    /* TCP / RFC 2217 */
    char *host;
    char service[8];
    struct addrinfo *ai;      /* resolved list (uv_freeaddrinfo) */
    struct addrinfo *ai_next; /* next address to try */
    int conn_err;             /* last connect error, reported if all addresses fail */
    port_tn_t *tn;            /* RFC 2217 only */
    /* The endpoint this port connects or is connected to, claimed in a process-wide list so
     * that no two ports of this process use one device server port (port_tcp.c). */
    bool claimed;
    struct sockaddr_storage claim_addr;
    socklen_t claim_len;
    struct port_s *claim_prev, *claim_next;

    /* libserialport (struct sp_port *), kept opaque here */
    void *sp;
};

extern const port_ops_t port__tty_ops;
extern const port_ops_t port__sp_ops;
extern const port_ops_t port__tcp_ops;
extern const port_ops_t port__rfc2217_ops;

/* Shared machinery (port.c). */
/* Opening finished: status 0 (port open: start polling, call open_cb) or a negative UV error
 * (open_cb(status), then the port closes itself). Ignored once port_close was called. */
void port__open_done(port_t *p, int status);
/* Failure: during opening like port__open_done(p, status); afterwards error_cb once. */
void port__fail(port_t *p, int status);
/* Drop one pending close/completion; the last one frees the port (after close_cb). */
void port__unref(port_t *p);
/* (Re)arm the port's timer as an opening deadline: port__tcp_timeout runs when it fires. */
void port__arm_timeout(port_t *p, uint64_t ms);
/* Start polling fd (takes ownership: closed by port.c on release). 0 or a UV error. */
int port__poll_fd(port_t *p, int fd);
/* Close the poll handle; the close callback then calls the backend's next step via
 * port__tcp_poll_closed (used between connect attempts). */
void port__poll_close(port_t *p);
/* Recompute and apply the poll event mask. */
void port__update_events(port_t *p);
/* Append raw bytes to the tx buffer (no limit check); 0 or UV_ENOMEM. */
int port__queue(port_t *p, const uint8_t *buf, size_t n);
size_t port__tx_pending(const port_t *p);
/* Try to hand pending bytes to the OS now; returns 0 or a negative error (caller decides). */
int port__flush_tx(port_t *p);
/* recv/read until EAGAIN into nowhere (bounded); used by flush_input on sockets. Bytes go through
 * the backend filter first so telnet commands are still seen. */
void port__drain_socket(port_t *p);

/* errno → UV error, and "this ioctl is not supported here" → UV_ENOTSUP. */
int port__errno(int e);
/* Modem lines on a tty fd with one TIOCMGET + one TIOCMSET (esptool UnixTight). */
int port__fd_set_lines(int fd, int dtr, int rts);
/* Exclusive use of a tty fd: flock(LOCK_EX|LOCK_NB) held elsewhere, or TIOCEXCL set by another
 * process that has the tty open → UV_EBUSY; else TIOCEXCL on fd when excl_ioctl. */
int port__fd_lock(int fd, bool excl_ioctl);
/* Raw 8N1, no flow control, CLOCAL|CREAD, no HUPCL, VMIN=1 VTIME=0 (see port_tty.c) at `baud`
 * (termios2 for rates without a Bxxx constant). */
int port__fd_configure(int fd, uint32_t baud);
int port__fd_set_baud(int fd, uint32_t baud);
struct termios;
void port__termios_nonblock_read(struct termios *t);

/* TCP connect machinery shared by the raw TCP and RFC 2217 backends (port_tcp.c). */
int port__tcp_prepare(port_t *p, const char *prefix);
void port__tcp_start(port_t *p);
void port__tcp_connect_ready(port_t *p, int status);
void port__tcp_poll_closed(port_t *p);
void port__tcp_timeout(port_t *p);
/* Give up the claimed endpoint (no-op when none); port.c calls it when the port is freed. */
void port__tcp_unclaim(port_t *p);

/* USB serial lookups (port_sp.c). */
bool port__sp_is_usb_tty(const char *path);

#endif
