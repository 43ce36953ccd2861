// SPDX-License-Identifier: MIT
// espsim: command line, event loop (ppoll) and the three transports (pty, raw TCP, RFC 2217
// telnet) of the device simulator. The chip itself lives in sim_dev.c; this file only moves
// bytes and modem-line changes between a host and the device. Loopback addresses only.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sim_chip.h"
#include "sim_dev.h"
#include "sim_nvs.h"
#include "sim_event.h"

typedef enum { T_NONE, T_PTY, T_TCP, T_RFC2217 } transport_t;

// RFC 854 / RFC 2217 constants
enum {
    T_SE = 240,
    T_SB = 250,
    T_WILL = 251,
    T_WONT = 252,
    T_DO = 253,
    T_DONT = 254,
    T_IAC = 255,
    OPT_BINARY = 0,
    OPT_ECHO = 1,
    OPT_SGA = 3,
    OPT_COMPORT = 44,
};

enum { TN_DATA, TN_IAC, TN_OPT, TN_SB, TN_SB_IAC };

// A UART with nobody listening loses data; so do we. On a pty the kernel already buffers ~4 KiB
// for a slave nobody reads, so we keep little more: a host opening the port later must not get
// minutes of stale application output.
#define OUTBUF_MAX (256u * 1024u)
#define OUTBUF_MAX_PTY (8u * 1024u)

typedef struct {
    transport_t kind;
    int master, slave; // pty
    int lfd, cfd;      // tcp / rfc2217
    uint16_t port;
    char spec[256];
    uint8_t *out;
    size_t outlen, outcap;
    int hangup_pending;
    int gone; // port vanished (fault hangup on a pty)
    sim_dev_t *dev;
    // telnet
    int tn_state, tn_verb;
    uint8_t sb[256];
    size_t sblen;
    uint8_t us[256], him[256]; // option states we agreed to (RFC 1143, simplified)
    uint32_t host_baud;
    uint8_t datasize, parity, stopsize;
    int dtr, rts;
    uint8_t linestate_mask, modemstate_mask; // RFC 2217 SET-*STATE-MASK (default: all, 255)
    int comport_notified; // the first NOTIFY-MODEMSTATE after the client agreed to RFC 2217
    int strict_pty;       // --strict-baud: the host's rate is read from the pty's termios
    uint32_t pty_baud;    // last rate seen there
    uint8_t data_run[4096];
    size_t data_len;
    uint64_t accept_wait_us; // a new client waits while the old one's last bytes are read
} app_t;

static volatile sig_atomic_t g_stop, g_dump, g_new_board;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_dump = 1;
    else if (sig == SIGUSR2)
        g_new_board = 1;
    else
        g_stop = sig;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

// ---------------------------------------------------------------------------------------------
// output buffer towards the host

static void out_flush(app_t *a)
{
    int fd = a->kind == T_PTY ? a->master : a->cfd;
    while (a->outlen > 0 && fd >= 0) {
        ssize_t w = write(fd, a->out, a->outlen);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            a->outlen = 0; // peer gone: drop, the disconnect is noticed on read
            return;
        }
        memmove(a->out, a->out + w, a->outlen - (size_t)w);
        a->outlen -= (size_t)w;
    }
}

static void out_append(app_t *a, const uint8_t *p, size_t n)
{
    int fd = a->kind == T_PTY ? a->master : a->cfd;
    if (fd < 0 || a->gone)
        return; // nobody connected: the chip's output is lost, as on an open UART line
    if (a->outlen + n > (a->kind == T_PTY ? OUTBUF_MAX_PTY : OUTBUF_MAX)) return;
    if (a->outlen + n > a->outcap) {
        size_t nc = a->outcap ? a->outcap : 4096;
        while (nc < a->outlen + n)
            nc *= 2;
        uint8_t *q = realloc(a->out, nc);
        if (!q) return;
        a->out = q;
        a->outcap = nc;
    }
    memcpy(a->out + a->outlen, p, n);
    a->outlen += n;
}

static void dev_write_cb(void *ctx, const uint8_t *p, size_t n, uint32_t baud)
{
    app_t *a = ctx;
    (void)baud;
    if (a->kind == T_RFC2217) {
        // IAC bytes in data are doubled (RFC 854)
        for (size_t i = 0; i < n; i++) {
            uint8_t b[2] = {p[i], T_IAC};
            out_append(a, b, p[i] == T_IAC ? 2 : 1);
        }
    } else {
        out_append(a, p, n);
    }
    out_flush(a);
}

static void dev_hangup_cb(void *ctx)
{
    app_t *a = ctx;
    a->hangup_pending = 1;
}

// ---------------------------------------------------------------------------------------------
// telnet / RFC 2217 server side

static void tn_send(app_t *a, const uint8_t *p, size_t n)
{
    out_append(a, p, n);
}

static void tn_option(app_t *a, uint8_t verb, uint8_t opt)
{
    uint8_t b[3] = {T_IAC, verb, opt};
    tn_send(a, b, 3);
}

static void tn_sb_reply(app_t *a, uint8_t code, const uint8_t *val, size_t n)
{
    uint8_t b[64];
    size_t o = 0;
    b[o++] = T_IAC;
    b[o++] = T_SB;
    b[o++] = OPT_COMPORT;
    b[o++] = code;
    for (size_t i = 0; i < n && o < sizeof(b) - 4; i++) {
        b[o++] = val[i];
        if (val[i] == T_IAC) b[o++] = T_IAC;
    }
    b[o++] = T_IAC;
    b[o++] = T_SE;
    tn_send(a, b, o);
}

static void tn_flush_data(app_t *a)
{
    if (a->data_len) {
        sim_dev_input(a->dev, a->data_run, a->data_len, mono_us());
        a->data_len = 0;
    }
}

static void tn_data(app_t *a, uint8_t b)
{
    a->data_run[a->data_len++] = b;
    if (a->data_len == sizeof(a->data_run)) tn_flush_data(a);
}

static int tn_supported(uint8_t opt)
{
    return opt == OPT_BINARY || opt == OPT_SGA || opt == OPT_COMPORT;
}

static void rfc2217_notify_modemstate(app_t *a);

static void tn_negotiate(app_t *a, uint8_t verb, uint8_t opt)
{
    switch (verb) {
    case T_WILL: // client offers to do opt
        if (tn_supported(opt)) {
            if (!a->him[opt]) {
                a->him[opt] = 1;
                tn_option(a, T_DO, opt);
            }
            // the client speaks RFC 2217 now: tell it the modem state once, as pyserial's
            // server does, so that reading CTS/DSR works before any change (RFC 2217 §3)
            if (opt == OPT_COMPORT && !a->comport_notified) {
                a->comport_notified = 1;
                rfc2217_notify_modemstate(a);
            }
        } else {
            tn_option(a, T_DONT, opt);
        }
        break;
    case T_WONT:
        if (a->him[opt]) {
            a->him[opt] = 0;
            tn_option(a, T_DONT, opt);
        }
        break;
    case T_DO: // client asks us to do opt
        if (tn_supported(opt)) {
            if (!a->us[opt]) {
                a->us[opt] = 1;
                tn_option(a, T_WILL, opt);
            }
        } else {
            tn_option(a, T_WONT, opt); // e.g. ECHO: we do not echo
        }
        break;
    case T_DONT:
        if (a->us[opt]) {
            a->us[opt] = 0;
            tn_option(a, T_WONT, opt);
        }
        break;
    default: break;
    }
}

static void rfc2217_lines(app_t *a)
{
    sim_ev_t e;
    sim_ev_begin(&e, "lines");
    sim_ev_bool(&e, "dtr", a->dtr);
    sim_ev_bool(&e, "rts", a->rts);
    sim_ev_end(&e);
    sim_dev_set_lines(a->dev, a->dtr, a->rts, mono_us());
}

// RFC 2217 §3 NOTIFY-MODEMSTATE (server code 107): the adapter's modem inputs. The simulated
// adapter (like a CP2102 whose CTS/DSR/RI/DCD pins are not wired on a devkit) reports all four
// inactive and no changes; the byte is filtered by the client's SET-MODEMSTATE-MASK.
static void rfc2217_notify_modemstate(app_t *a)
{
    uint8_t st = (uint8_t)(0x00 & a->modemstate_mask);
    tn_sb_reply(a, 107, &st, 1);
}

// NOTIFY-LINESTATE (server code 106): transmit registers empty (0x60), no errors, no data
// waiting in the sense of the RFC (the server forwards everything), filtered by the mask.
static void rfc2217_notify_linestate(app_t *a)
{
    uint8_t st = (uint8_t)(0x60 & a->linestate_mask);
    tn_sb_reply(a, 106, &st, 1);
}

static void tn_comport(app_t *a, const uint8_t *sb, size_t n)
{
    if (n < 1) return;
    uint8_t cmd = sb[0];
    const uint8_t *v = sb + 1;
    size_t vn = n - 1;
    switch (cmd) {
    case 0: { // SIGNATURE
        const char *sig = "espsim " ESTN_VERSION;
        tn_sb_reply(a, 100, (const uint8_t *)sig, strlen(sig));
        break;
    }
    case 1: { // SET-BAUDRATE, 4 bytes network order; 0 = query
        if (vn >= 4) {
            uint32_t b = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
            if (b) {
                a->host_baud = b;
                sim_dev_set_host_baud(a->dev, b, 1);
                sim_ev_t e;
                sim_ev_begin(&e, "host_baud");
                sim_ev_num(&e, "baud", b);
                sim_ev_end(&e);
            }
        }
        uint8_t r[4] = {(uint8_t)(a->host_baud >> 24), (uint8_t)(a->host_baud >> 16),
                        (uint8_t)(a->host_baud >> 8), (uint8_t)a->host_baud};
        tn_sb_reply(a, 101, r, 4);
        break;
    }
    case 2: // SET-DATASIZE
        if (vn >= 1 && v[0]) a->datasize = v[0];
        tn_sb_reply(a, 102, &a->datasize, 1);
        break;
    case 3: // SET-PARITY
        if (vn >= 1 && v[0]) a->parity = v[0];
        tn_sb_reply(a, 103, &a->parity, 1);
        break;
    case 4: // SET-STOPSIZE
        if (vn >= 1 && v[0]) a->stopsize = v[0];
        tn_sb_reply(a, 104, &a->stopsize, 1);
        break;
    case 5: { // SET-CONTROL
        if (vn < 1) break;
        uint8_t c = v[0], r = c;
        int changed = 0;
        switch (c) {
        case 0: r = 1; break; // request flow setting: none
        case 4: r = 6; break; // request break state: off
        case 7: r = a->dtr ? 8 : 9; break;
        case 10: r = a->rts ? 11 : 12; break;
        case 13: r = 14; break; // request inbound flow: none
        case 8:
            changed = !a->dtr;
            a->dtr = 1;
            break;
        case 9:
            changed = a->dtr;
            a->dtr = 0;
            break;
        case 11:
            changed = !a->rts;
            a->rts = 1;
            break;
        case 12:
            changed = a->rts;
            a->rts = 0;
            break;
        default: break; // flow-control and break settings: accepted, no effect
        }
        // answer first (pyserial waits for it), then let the lines act on the chip
        tn_sb_reply(a, 105, &r, 1);
        if (changed) rfc2217_lines(a);
        break;
    }
    case 10: // SET-LINESTATE-MASK
    case 11: // SET-MODEMSTATE-MASK
        if (vn >= 1 && cmd == 10) a->linestate_mask = v[0];
        if (vn >= 1 && cmd == 11) a->modemstate_mask = v[0];
        tn_sb_reply(a, (uint8_t)(100 + cmd), v, vn >= 1 ? 1 : 0);
        break;
    case 6: // NOTIFY-LINESTATE from a client: a poll, answered with the current line state
        rfc2217_notify_linestate(a);
        break;
    case 7: // NOTIFY-MODEMSTATE from a client: a poll (pyserial's get_modem_state)
        rfc2217_notify_modemstate(a);
        break;
    case 12: // PURGE-DATA: drop what we still hold for the client, then confirm
        if (vn >= 1 && (v[0] == 1 || v[0] == 3)) a->outlen = 0;
        tn_sb_reply(a, 112, v, vn >= 1 ? 1 : 0);
        break;
    default: // FLOWCONTROL-SUSPEND/RESUME and unknown: harmless
        break;
    }
}

static void tn_feed(app_t *a, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        switch (a->tn_state) {
        case TN_DATA:
            if (b == T_IAC)
                a->tn_state = TN_IAC;
            else
                tn_data(a, b);
            break;
        case TN_IAC:
            if (b == T_IAC) {
                tn_data(a, T_IAC);
                a->tn_state = TN_DATA;
            } else if (b == T_WILL || b == T_WONT || b == T_DO || b == T_DONT) {
                a->tn_verb = b;
                a->tn_state = TN_OPT;
            } else if (b == T_SB) {
                a->sblen = 0;
                a->tn_state = TN_SB;
            } else {
                a->tn_state = TN_DATA; // NOP, AYT, BRK...: ignored
            }
            break;
        case TN_OPT:
            tn_flush_data(a);
            tn_negotiate(a, (uint8_t)a->tn_verb, b);
            a->tn_state = TN_DATA;
            break;
        case TN_SB:
            if (b == T_IAC)
                a->tn_state = TN_SB_IAC;
            else if (a->sblen < sizeof(a->sb))
                a->sb[a->sblen++] = b;
            break;
        case TN_SB_IAC:
            if (b == T_IAC) {
                if (a->sblen < sizeof(a->sb)) a->sb[a->sblen++] = T_IAC;
                a->tn_state = TN_SB;
            } else if (b == T_SE) {
                tn_flush_data(a);
                if (a->sblen >= 1 && a->sb[0] == OPT_COMPORT)
                    tn_comport(a, a->sb + 1, a->sblen - 1);
                a->tn_state = TN_DATA;
            } else {
                a->tn_state = TN_DATA;
            }
            break;
        }
    }
    tn_flush_data(a);
}

// ---------------------------------------------------------------------------------------------
// connections

static void client_reset_state(app_t *a)
{
    a->tn_state = TN_DATA;
    a->sblen = 0;
    a->data_len = 0;
    memset(a->us, 0, sizeof(a->us));
    memset(a->him, 0, sizeof(a->him));
    a->outlen = 0;
    a->linestate_mask = 0xFF;
    a->modemstate_mask = 0xFF;
    a->comport_notified = 0;
}

static void client_close(app_t *a, const char *why)
{
    if (a->cfd < 0) return;
    close(a->cfd);
    a->cfd = -1;
    a->outlen = 0;
    sim_ev_t e;
    sim_ev_begin(&e, "disconnect");
    sim_ev_str(&e, "reason", why);
    sim_ev_end(&e);
    if (a->kind == T_RFC2217 && (a->dtr || a->rts)) {
        // closing the port releases both lines (the server drops DTR/RTS)
        a->dtr = 0;
        a->rts = 0;
        rfc2217_lines(a);
    }
}

static void client_accept(app_t *a)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (a->cfd >= 0) {
        // A host that closes and at once reconnects (a probe, then the job) can have its new
        // connection seen before the old one's end: if the old client is gone, drop it first;
        // if it still has unread bytes, read those (and its end) first, for at most 0.5 s.
        char peek;
        ssize_t pk = recv(a->cfd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
        if (pk == 0 || (pk < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            client_close(a, "peer closed");
        } else if (pk > 0) {
            if (!a->accept_wait_us) a->accept_wait_us = mono_us();
            if (mono_us() - a->accept_wait_us < 500000u) return;
        }
    }
    a->accept_wait_us = 0;
    int fd = accept4(a->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (a->cfd >= 0) {
        // one client at a time, like a serial port opened exclusively
        close(fd);
        sim_event_simple("connect_rejected", "another client is connected");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    a->cfd = fd;
    client_reset_state(a);
    char peer[64];
    inet_ntop(AF_INET, &sa.sin_addr, peer, sizeof(peer));
    sim_ev_t e;
    sim_ev_begin(&e, "connect");
    sim_ev_str(&e, "peer", peer);
    sim_ev_num(&e, "peer_port", ntohs(sa.sin_port));
    sim_ev_end(&e);
    if (a->kind == T_RFC2217) {
        // offer binary transmission both ways (RFC 856); the client drives the rest
        a->us[OPT_BINARY] = 1;
        a->him[OPT_BINARY] = 1;
        tn_option(a, T_WILL, OPT_BINARY);
        tn_option(a, T_DO, OPT_BINARY);
        out_flush(a);
    }
    sim_dev_client_connected(a->dev, mono_us());
}

static int open_listener(app_t *a, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    a->lfd = fd;
    a->port = ntohs(sa.sin_port);
    return 0;
}

static int open_pty(app_t *a)
{
    int m, s;
    char name[256];
    struct termios tio;
    if (openpty(&m, &s, name, NULL, NULL) < 0) return -errno;
    // raw, 8N1: the protocol is binary (docs/SIMULATOR.md "ROM loader")
    if (tcgetattr(s, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, B115200);
        cfsetospeed(&tio, B115200);
        tcsetattr(s, TCSANOW, &tio);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    fcntl(m, F_SETFD, FD_CLOEXEC);
    fcntl(s, F_SETFD, FD_CLOEXEC);
    // We keep our own slave fd open so the host may close and reopen the slave without the
    // master seeing EIO/POLLHUP.
    a->master = m;
    a->slave = s;
    snprintf(a->spec, sizeof(a->spec), "%s", name);
    return 0;
}

// The host's baud rate on a pty. On Linux tcgetattr() on the master reports the termios the host
// set on the slave (checked on Debian 12, kernel 6.x), so the host's cfsetspeed() is visible.
// Custom rates (BOTHER) are not decoded: reported as 0 = unknown.
static uint32_t pty_read_baud(int fd)
{
    static const struct {
        speed_t code;
        uint32_t baud;
    } rates[] = {
        {B9600, 9600},       {B19200, 19200},     {B38400, 38400},     {B57600, 57600},
        {B115200, 115200},   {B230400, 230400},   {B460800, 460800},   {B500000, 500000},
        {B576000, 576000},   {B921600, 921600},   {B1000000, 1000000}, {B1152000, 1152000},
        {B1500000, 1500000}, {B2000000, 2000000}, {B2500000, 2500000}, {B3000000, 3000000},
    };
    struct termios tio;
    if (fd < 0 || tcgetattr(fd, &tio) != 0) return 0;
    speed_t sp = cfgetospeed(&tio);
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
        if (rates[i].code == sp) return rates[i].baud;
    return 0;
}

static void pty_sync_baud(app_t *a)
{
    if (!a->strict_pty) return;
    uint32_t b = pty_read_baud(a->master);
    if (b == 0 || b == a->pty_baud) return;
    a->pty_baud = b;
    sim_dev_set_host_baud(a->dev, b, 1);
    sim_ev_t e;
    sim_ev_begin(&e, "host_baud");
    sim_ev_num(&e, "baud", b);
    sim_ev_end(&e);
}

// ---------------------------------------------------------------------------------------------
// command line

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: espsim --chip CHIP (--pty | --tcp PORT | --rfc2217 PORT) [options]\n"
        "  --chip CHIP            %s\n"
        "  --pty                  serve on a new pseudo terminal\n"
        "  --tcp PORT             raw TCP on 127.0.0.1 (0 = pick a free port)\n"
        "  --rfc2217 PORT         RFC 2217 telnet on 127.0.0.1 (DTR/RTS drive EN/boot)\n"
        "  --mac AA:BB:CC:DD:EE:FF  factory MAC (default: from --seed, Espressif OUI)\n"
        "  --flash-jedec 0xMMTTCC JEDEC ID, manufacturer first (default 0xEF4016)\n"
        "  --flash-in FILE        initial flash contents (rest erased)\n"
        "  --flash-out FILE       write the flash here on SIGTERM/SIGINT/SIGUSR1\n"
        "                         (SIGUSR2 swaps in a new board: next MAC, blank flash)\n"
        "  --rev MAJOR.MINOR      chip revision in eFuse (default per chip)\n"
        "  --seed N               identity seed (MAC, unique ID, noise)\n"
        "  --realtime             bytes at the current baud, datasheet erase/program times\n"
        "  --fault SPEC           repeatable: silent, app, nak:OP:CODE, noise:K,\n"
        "                         drop-reply:K, drop-replies, bitflip, hangup:K,\n"
        "                         brownout:K, flash-size:SIZE, sync-drop:N, no-stub,\n"
        "                         efuse-bad-block:N, efuse-hangup:K, efuse-brownout:K,\n"
        "                         rom-garble:K\n"
        "  --efuse-file FILE      the chip's eFuses as JSON: loaded if it exists, else created;\n"
        "                         rewritten after every burn and for a new board (SIGUSR2)\n"
        "  --boot-log TEXT        application boot log (replaces the generated one)\n"
        "  --app-text TEXT        periodic application line\n"
        "  --app-period MS        period of the application line (default 200)\n"
        "  --app-print TEXT       repeatable: printed (with CR LF) once each time the\n"
        "                         application starts, after its boot log; \\n \\r \\t \\\\\n"
        "  --app-nvs-print NS:KEY[,NS:KEY]  the application prints these NVS values at start\n"
        "                         (after --app-print), read from the NVS partition\n"
        "  --nvs-offset OFF       the NVS partition's offset (default 0x9000)\n"
        "  --nvs-size SIZE        the NVS partition's size (default 0x6000)\n"
        "  --en-delay MS          EN rise time; boot pin low meanwhile = download (default 100)\n"
        "  --quiet                only the ready and exit events on stdout\n"
        "  --strict-baud          pty: read the host's baud from the pty (Linux), garble on a\n"
        "                         mismatch (default: assume the host follows CHANGE_BAUDRATE)\n"
        "  --ram-log TEXT         printed once by an uploaded RAM program that is not a\n"
        "                         flasher stub when it starts (default: nothing)\n"
        "  --ram-text TEXT        printed by it every --app-period ms (default \"Hello world!\")\n"
        "  --usb-otg              the host talks to the ROM over native USB-OTG (S2, S3):\n"
        "                         reported in UARTDEV_BUF_NO, blocks > 0x800 bytes refused\n"
        "  --usb-serial-jtag      ... over USB-Serial/JTAG (S3, C3, C6, H2): reported only\n"
        "  --help\n",
        sim_chip_names());
}

static int parse_size(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s) return -1;
    if (*end) {
        if (!strcasecmp(end, "k") || !strcasecmp(end, "kb"))
            v *= 1024;
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb"))
            v *= 1024 * 1024;
        else
            return -1;
    }
    if (v < 65536 || v > 256ull * 1024 * 1024 || (v & (v - 1)))
        return -1; // flash parts are powers of two from 64 KiB to 256 MiB
    *out = (uint32_t)v;
    return 0;
}

// --app-print TEXT: \n, \r, \t and \\ in TEXT stand for those characters (in place).
static int unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        switch (*++r) {
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case '\\': *w++ = '\\'; break;
        default: return -1; // an unknown escape, or a lone backslash at the end
        }
    }
    *w = 0;
    return 0;
}

static int parse_long(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

static int parse_fault(sim_dev_cfg_t *c, const char *spec, uint32_t *flash_override)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *arg = strchr(buf, ':');
    if (arg) *arg++ = 0;
    long k = 0;
    if (!strcmp(buf, "silent") && !arg)
        c->f_silent = 1;
    else if (!strcmp(buf, "app") && !arg)
        c->f_app = 1;
    else if (!strcmp(buf, "drop-replies") && !arg)
        c->f_drop_replies = 1;
    else if (!strcmp(buf, "bitflip") && !arg)
        c->f_bitflip = 1;
    else if (!strcmp(buf, "no-stub") && !arg)
        c->f_no_stub = 1;
    else if (!strcmp(buf, "noise") && arg && !parse_long(arg, &k))
        c->f_noise_after = k;
    else if (!strcmp(buf, "drop-reply") && arg && !parse_long(arg, &k) && k > 0)
        c->f_drop_reply = k;
    else if (!strcmp(buf, "hangup") && arg && !parse_long(arg, &k))
        c->f_hangup_after = k;
    else if (!strcmp(buf, "brownout") && arg && !parse_long(arg, &k))
        c->f_brownout_after = k;
    else if (!strcmp(buf, "efuse-bad-block") && arg && !parse_long(arg, &k) && k >= 0 && k <= 10)
        c->f_efuse_bad_block = (int)k;
    else if (!strcmp(buf, "efuse-hangup") && arg && !parse_long(arg, &k) && k > 0)
        c->f_efuse_hangup = k;
    else if (!strcmp(buf, "efuse-brownout") && arg && !parse_long(arg, &k) && k > 0)
        c->f_efuse_brownout = k;
    else if (!strcmp(buf, "rom-garble") && arg && !parse_long(arg, &k) && k > 0)
        c->f_rom_garble = k;
    else if (!strcmp(buf, "sync-drop") && arg && !parse_long(arg, &k))
        c->f_sync_drop = (int)k;
    else if (!strcmp(buf, "flash-size") && arg && !parse_size(arg, flash_override))
        ;
    else if (!strcmp(buf, "nak") && arg) {
        char *codes = strchr(arg, ':');
        if (!codes || c->n_naks >= SIM_MAX_NAKS) return -1;
        *codes++ = 0;
        int op = sim_dev_opcode_from_name(arg);
        long code = 0;
        char *end = NULL;
        code = strtol(codes, &end, 0);
        if (op < 0 || !end || *end || code < 0 || code > 255) return -1;
        c->naks[c->n_naks].op = op;
        c->naks[c->n_naks].code = (int)code;
        c->n_naks++;
    } else
        return -1;
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
        6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352d;
    x ^= x >> 15;
    x *= 0x846ca68b;
    x ^= x >> 16;
    return x;
}

int main(int argc, char **argv)
{
    enum {
        O_CHIP = 1000,
        O_PTY,
        O_TCP,
        O_RFC,
        O_MAC,
        O_JEDEC,
        O_FOUT,
        O_FIN,
        O_RT,
        O_FAULT,
        O_REV,
        O_SEED,
        O_BOOTLOG,
        O_APPTEXT,
        O_APPPER,
        O_ENDELAY,
        O_QUIET,
        O_STRICT,
        O_NEWSTUB,
        O_RAMLOG,
        O_RAMTEXT,
        O_USBOTG,
        O_USBJTAG,
        O_APPPRINT,
        O_NVSPRINT,
        O_NVSOFF,
        O_NVSSIZE,
        O_EFUSE,
        O_HELP
    };
    static const struct option opts[] = {
        {"chip", required_argument, 0, O_CHIP},
        {"pty", no_argument, 0, O_PTY},
        {"tcp", required_argument, 0, O_TCP},
        {"rfc2217", required_argument, 0, O_RFC},
        {"mac", required_argument, 0, O_MAC},
        {"flash-jedec", required_argument, 0, O_JEDEC},
        {"flash-out", required_argument, 0, O_FOUT},
        {"flash-in", required_argument, 0, O_FIN},
        {"realtime", no_argument, 0, O_RT},
        {"fault", required_argument, 0, O_FAULT},
        {"rev", required_argument, 0, O_REV},
        {"seed", required_argument, 0, O_SEED},
        {"boot-log", required_argument, 0, O_BOOTLOG},
        {"app-text", required_argument, 0, O_APPTEXT},
        {"app-period", required_argument, 0, O_APPPER},
        {"en-delay", required_argument, 0, O_ENDELAY},
        {"quiet", no_argument, 0, O_QUIET},
        {"strict-baud", no_argument, 0, O_STRICT},
        {"new-stub", no_argument, 0, O_NEWSTUB},
        {"ram-log", required_argument, 0, O_RAMLOG},
        {"ram-text", required_argument, 0, O_RAMTEXT},
        {"usb-otg", no_argument, 0, O_USBOTG},
        {"usb-serial-jtag", no_argument, 0, O_USBJTAG},
        {"app-print", required_argument, 0, O_APPPRINT},
        {"app-nvs-print", required_argument, 0, O_NVSPRINT},
        {"nvs-offset", required_argument, 0, O_NVSOFF},
        {"nvs-size", required_argument, 0, O_NVSSIZE},
        {"efuse-file", required_argument, 0, O_EFUSE},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    sim_dev_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.jedec = 0xEF4016;
    cfg.rev_major = -1;
    cfg.app_period_ms = 200;
    // esptool's RAM test programs (test/images/ram_helloworld) print this line in a loop
    cfg.ram_text = "Hello world!";
    cfg.en_delay_ms = 100;
    cfg.f_noise_after = -1;
    cfg.f_drop_reply = -1;
    cfg.f_hangup_after = -1;
    cfg.f_brownout_after = -1;
    cfg.f_efuse_bad_block = -1;
    cfg.f_efuse_hangup = -1;
    cfg.f_efuse_brownout = -1;
    transport_t kind = T_NONE;
    long port = 0;
    int have_mac = 0, have_seed = 0;
    uint32_t flash_override = 0;
    const char *flash_out = NULL;
    int ntransport = 0;
    int strict_baud = 0;

    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long v = 0;
        switch (ch) {
        case O_CHIP:
            cfg.chip = sim_chip_find(optarg);
            if (!cfg.chip) {
                fprintf(stderr, "espsim: unknown chip '%s' (known: %s)\n", optarg,
                        sim_chip_names());
                return 2;
            }
            break;
        case O_PTY:
            kind = T_PTY;
            ntransport++;
            break;
        case O_TCP:
        case O_RFC:
            if (parse_long(optarg, &port) || port > 65535) {
                fprintf(stderr, "espsim: bad port '%s'\n", optarg);
                return 2;
            }
            kind = ch == O_TCP ? T_TCP : T_RFC2217;
            ntransport++;
            break;
        case O_MAC:
            if (parse_mac(optarg, cfg.mac)) {
                fprintf(stderr, "espsim: bad --mac '%s' (want AA:BB:CC:DD:EE:FF)\n", optarg);
                return 2;
            }
            have_mac = 1;
            break;
        case O_JEDEC: {
            char *end = NULL;
            unsigned long j = strtoul(optarg, &end, 16);
            if (!end || *end || j > 0xFFFFFF) {
                fprintf(stderr, "espsim: bad --flash-jedec '%s' (want 0xMMTTCC)\n", optarg);
                return 2;
            }
            cfg.jedec = (uint32_t)j;
            break;
        }
        case O_FOUT: flash_out = optarg; break;
        case O_FIN: cfg.flash_in = optarg; break;
        case O_EFUSE: cfg.efuse_file = optarg; break;
        case O_RT: cfg.realtime = 1; break;
        case O_FAULT:
            if (parse_fault(&cfg, optarg, &flash_override)) {
                fprintf(stderr, "espsim: bad --fault '%s'\n", optarg);
                return 2;
            }
            break;
        case O_REV: {
            int ma, mi;
            char tail;
            if (sscanf(optarg, "%d.%d%c", &ma, &mi, &tail) != 2 || ma < 0 || ma > 3 || mi < 0 ||
                mi > 15) {
                fprintf(stderr, "espsim: bad --rev '%s' (want MAJOR.MINOR)\n", optarg);
                return 2;
            }
            cfg.rev_major = ma;
            cfg.rev_minor = mi;
            break;
        }
        case O_SEED:
            if (parse_long(optarg, &v)) {
                fprintf(stderr, "espsim: bad --seed '%s'\n", optarg);
                return 2;
            }
            cfg.seed = (uint32_t)v;
            have_seed = 1;
            break;
        case O_BOOTLOG: cfg.boot_log = optarg; break;
        case O_APPTEXT: cfg.app_text = optarg; break;
        case O_APPPER:
            if (parse_long(optarg, &v) || v > 60000) {
                fprintf(stderr, "espsim: bad --app-period '%s'\n", optarg);
                return 2;
            }
            cfg.app_period_ms = (unsigned)v;
            break;
        case O_ENDELAY:
            if (parse_long(optarg, &v) || v > 10000) {
                fprintf(stderr, "espsim: bad --en-delay '%s'\n", optarg);
                return 2;
            }
            cfg.en_delay_ms = (unsigned)v;
            break;
        case O_QUIET: sim_ev_quiet = 1; break;
        case O_STRICT: strict_baud = 1; break;
        case O_NEWSTUB:
            // the stub is identified from the upload now (docs/SIMULATOR.md "Uploaded programs")
            fprintf(stderr, "espsim: --new-stub has no effect any more: the stub's behaviour "
                            "follows what was uploaded (mkstub.py --stub new for a synthetic "
                            "esp-flasher-stub)\n");
            break;
        case O_RAMLOG:
        case O_RAMTEXT:
            if (unescape(optarg) != 0) {
                fprintf(stderr, "espsim: bad escape in --%s (\\n \\r \\t \\\\ only)\n",
                        ch == O_RAMLOG ? "ram-log" : "ram-text");
                return 2;
            }
            if (ch == O_RAMLOG)
                cfg.ram_log = optarg;
            else
                cfg.ram_text = optarg;
            break;
        case O_USBOTG: cfg.usb_otg = 1; break;
        case O_USBJTAG: cfg.usb_jtag = 1; break;
        case O_APPPRINT:
            if (cfg.n_app_print == SIM_MAX_APP_PRINT || unescape(optarg) != 0) {
                fprintf(stderr, "espsim: bad or too many --app-print (at most %d)\n",
                        SIM_MAX_APP_PRINT);
                return 2;
            }
            cfg.app_print[cfg.n_app_print++] = optarg;
            break;
        case O_NVSPRINT:
        case O_NVSOFF:
        case O_NVSSIZE:
            if (sim_nvs_option(ch == O_NVSPRINT ? "app-nvs-print"
                               : ch == O_NVSOFF ? "nvs-offset"
                                                : "nvs-size",
                               optarg, &cfg.app_nvs_print, &cfg.nvs_offset, &cfg.nvs_size))
                return 2;
            break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!cfg.chip || ntransport != 1 || optind != argc || (strict_baud && kind != T_PTY)) {
        usage(stderr);
        return 2;
    }
    if (((cfg.usb_otg || cfg.usb_jtag) && !cfg.chip->usb_buf_no) ||
        (cfg.usb_otg && cfg.chip->usb_otg_no < 0) || (cfg.usb_jtag && cfg.chip->usb_jtag_no < 0) ||
        (cfg.usb_otg && cfg.usb_jtag)) {
        fprintf(stderr, "espsim: %s has no %s console\n", cfg.chip->display,
                cfg.usb_otg && cfg.usb_jtag ? "second USB"
                : cfg.usb_otg               ? "USB-OTG"
                                            : "USB-Serial/JTAG");
        return 2;
    }
    if (cfg.rev_major < 0) {
        cfg.rev_major = cfg.chip->def_major;
        cfg.rev_minor = cfg.chip->def_minor;
    }
    if (!have_seed) cfg.seed = mix32((uint32_t)getpid() ^ (uint32_t)time(NULL));
    if (!have_mac) {
        uint32_t r = mix32(cfg.seed ^ 0x9E3779B9u);
        memcpy(cfg.mac, cfg.chip->oui, 3);
        cfg.mac[3] = (uint8_t)(r >> 16);
        cfg.mac[4] = (uint8_t)(r >> 8);
        cfg.mac[5] = (uint8_t)r;
    }
    cfg.flash_size = sim_chip_flash_size_from_jedec(cfg.jedec);
    if (flash_override) cfg.flash_size = flash_override;
    if (!cfg.flash_size) {
        fprintf(stderr,
                "espsim: unknown capacity code 0x%02x in --flash-jedec; using 4 MB (add "
                "--fault flash-size:SIZE to choose)\n",
                cfg.jedec & 0xFF);
        cfg.flash_size = 4u * 1024u * 1024u;
    }

    app_t a;
    memset(&a, 0, sizeof(a));
    a.kind = kind;
    a.master = a.slave = a.lfd = a.cfd = -1;
    a.datasize = 8;
    a.parity = 1;
    a.stopsize = 1;
    a.host_baud = 115200;
    int r = kind == T_PTY ? open_pty(&a) : open_listener(&a, (unsigned)port);
    if (r) {
        fprintf(stderr, "espsim: cannot open transport: %s\n", strerror(-r));
        return 1;
    }
    if (kind == T_TCP)
        snprintf(a.spec, sizeof(a.spec), "socket://127.0.0.1:%u", a.port);
    else if (kind == T_RFC2217)
        snprintf(a.spec, sizeof(a.spec), "rfc2217://127.0.0.1:%u", a.port);

    sim_dev_io_t io = {.ctx = &a, .write = dev_write_cb, .hangup = dev_hangup_cb};
    char err[256];
    cfg.has_lines = kind == T_RFC2217;
    a.dev = sim_dev_new(&cfg, &io, err, sizeof(err));
    if (!a.dev) {
        fprintf(stderr, "espsim: %s\n", err);
        return 1;
    }
    a.strict_pty = strict_baud; // first read in the loop, after the ready line

    // signals are only delivered inside ppoll()
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &orig);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t waitmask = orig;
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGUSR1);
    sigdelset(&waitmask, SIGUSR2);

    char macs[18], fid[7];
    snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", cfg.mac[0], cfg.mac[1],
             cfg.mac[2], cfg.mac[3], cfg.mac[4], cfg.mac[5]);
    snprintf(fid, sizeof(fid), "%06x", cfg.jedec);
    char revs[16];
    snprintf(revs, sizeof(revs), "v%d.%d", cfg.rev_major, cfg.rev_minor);
    {
        sim_ev_t e;
        sim_ev_begin(&e, "ready");
        sim_ev_str(&e, "port", a.spec);
        sim_ev_str(&e, "chip", cfg.chip->name);
        sim_ev_str(&e, "mac", macs);
        sim_ev_str(&e, "flash_id", fid);
        sim_ev_num(&e, "flash_size", cfg.flash_size);
        sim_ev_str(&e, "transport", kind == T_PTY ? "pty" : kind == T_TCP ? "tcp" : "rfc2217");
        sim_ev_str(&e, "revision", revs);
        sim_ev_num(&e, "seed", cfg.seed);
        sim_ev_num(&e, "pid", getpid());
        sim_ev_bool(&e, "realtime", cfg.realtime);
        // only RFC 2217 carries DTR/RTS: over a pty or raw TCP nothing can reset the chip
        // (esptool says "Chip was NOT reset"); it starts in download mode
        sim_ev_bool(&e, "reset_lines", kind == T_RFC2217);
        if (kind != T_RFC2217)
            sim_ev_str(&e, "note",
                       kind == T_PTY ? "a pty has no modem lines: nothing resets the chip"
                                     : "raw TCP has no modem lines: nothing resets the chip");
        sim_ev_end(&e);
    }
    sim_dev_start(a.dev, mono_us());

    int exit_code = 0;
    while (!g_stop) {
        if (g_dump) {
            g_dump = 0;
            if (flash_out) {
                int dr = sim_dev_dump_flash(a.dev, flash_out);
                sim_ev_t e;
                sim_ev_begin(&e, "flash_dump");
                sim_ev_str(&e, "file", flash_out);
                sim_ev_bool(&e, "ok", dr == 0);
                sim_ev_end(&e);
            }
        }
        if (g_new_board) {
            g_new_board = 0;
            sim_dev_new_board(a.dev, mono_us());
            out_flush(&a);
        }
        if (a.hangup_pending) {
            a.hangup_pending = 0;
            out_flush(&a);
            if (kind == T_PTY) {
                // the port vanishes like an unplugged USB adapter
                close(a.master);
                close(a.slave);
                a.master = a.slave = -1;
                a.gone = 1;
                sim_event_simple("hangup", "pty closed");
            } else {
                client_close(&a, "fault hangup");
            }
        }
        pty_sync_baud(&a);
        uint64_t now = mono_us();
        uint64_t next = sim_dev_tick(a.dev, now);
        struct pollfd pf[3];
        int np = 0, i_in = -1, i_l = -1;
        int fd = kind == T_PTY ? a.master : a.cfd;
        if (fd >= 0) {
            pf[np] = (struct pollfd){.fd = fd, .events = POLLIN | (a.outlen ? POLLOUT : 0)};
            i_in = np++;
        }
        if (a.lfd >= 0) {
            pf[np] = (struct pollfd){.fd = a.lfd, .events = POLLIN};
            i_l = np++;
        }
        struct timespec ts, *tsp = NULL;
        if (next != UINT64_MAX) {
            uint64_t wait = next > now ? next - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000u);
            ts.tv_nsec = (long)(wait % 1000000u) * 1000;
            tsp = &ts;
        }
        int pr = ppoll(pf, (nfds_t)np, tsp, &waitmask);
        if (pr < 0) {
            if (errno == EINTR) continue;
            perror("espsim: ppoll");
            exit_code = 1;
            break;
        }
        if (i_l >= 0 && (pf[i_l].revents & POLLIN)) client_accept(&a);
        if (i_in >= 0 && pf[i_in].revents) {
            if (pf[i_in].revents & POLLOUT) out_flush(&a);
            if (pf[i_in].revents & (POLLIN | POLLHUP | POLLERR)) {
                uint8_t buf[8192];
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n > 0) {
                    if (kind == T_RFC2217) {
                        tn_feed(&a, buf, (size_t)n);
                    } else {
                        pty_sync_baud(&a); // the host may have switched just before sending
                        sim_dev_input(a.dev, buf, (size_t)n, mono_us());
                    }
                    out_flush(&a);
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    if (kind == T_PTY) {
                        // cannot happen while we hold the slave; avoid a busy loop anyway
                        struct timespec pause = {0, 10000000};
                        nanosleep(&pause, NULL);
                    } else {
                        client_close(&a, n == 0 ? "peer closed" : strerror(errno));
                    }
                }
            }
        }
        out_flush(&a);
    }

    if (g_stop && flash_out) {
        int dr = sim_dev_dump_flash(a.dev, flash_out);
        if (dr) fprintf(stderr, "espsim: cannot write %s: %s\n", flash_out, strerror(-dr));
    }
    {
        sim_ev_t e;
        sim_ev_begin(&e, "exit");
        sim_ev_str(&e, "reason",
                   g_stop == SIGINT    ? "SIGINT"
                   : g_stop == SIGTERM ? "SIGTERM"
                                       : "error");
        if (flash_out) sim_ev_str(&e, "flash_out", flash_out);
        sim_ev_end(&e);
    }
    if (a.cfd >= 0) close(a.cfd);
    if (a.lfd >= 0) close(a.lfd);
    if (a.master >= 0) close(a.master);
    if (a.slave >= 0) close(a.slave);
    sim_dev_free(a.dev);
    free(a.out);
    return exit_code;
}
