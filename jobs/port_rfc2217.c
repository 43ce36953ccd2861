/* SPDX-License-Identifier: MIT */
/* port_rfc2217.c — "rfc2217://host:port": an RFC 2217 (telnet COM-PORT-OPTION) client as
 * pyserial, esptool and ser2net speak it. Owns: the option negotiation (BINARY, SGA,
 * COM-PORT-OPTION both ways), the initial 8N1 / no-flow-control settings, baud and DTR/RTS as
 * in-stream commands, PURGE-DATA, IAC escaping out and a telnet parser in (state kept across
 * reads). Connecting is port_tcp.c's. Must not: wait for the server's answers (some never
 * send them) — they are parsed and ignored. */
#include "port_int.h"

#include <stdlib.h>
#include <string.h>

/* Telnet (RFC 854/855) */
enum {
    TN_SE = 240,
    TN_SB = 250,
    TN_WILL = 251,
    TN_WONT = 252,
    TN_DO = 253,
    TN_DONT = 254,
    TN_IAC = 255,
    TN_OPT_BINARY = 0, /* RFC 856 */
    TN_OPT_SGA = 3,    /* RFC 858 */
    TN_OPT_COMPORT = 44,
};

/* RFC 2217 client → server commands (the server answers with the same code + 100). */
enum {
    CPO_SET_BAUDRATE = 1,
    CPO_SET_DATASIZE = 2,
    CPO_SET_PARITY = 3,
    CPO_SET_STOPSIZE = 4,
    CPO_SET_CONTROL = 5,
    CPO_PURGE_DATA = 12,
    CPO_SERVER_BASE = 100,
};

enum {
    CPO_PARITY_NONE = 1,
    CPO_STOPSIZE_1 = 1,
    CPO_CONTROL_NO_FLOW = 1,
    CPO_CONTROL_DTR_ON = 8,
    CPO_CONTROL_DTR_OFF = 9,
    CPO_CONTROL_RTS_ON = 11,
    CPO_CONTROL_RTS_OFF = 12,
    CPO_PURGE_RX = 1, /* the access server's receive buffer: data from the device to us */
};

static bool tn_bit(const uint8_t *set, uint8_t opt)
{
    return (set[opt / 8] >> (opt % 8)) & 1u;
}

static void tn_set(uint8_t *set, uint8_t opt, bool on)
{
    if (on)
        set[opt / 8] |= (uint8_t)(1u << (opt % 8));
    else
        set[opt / 8] &= (uint8_t) ~(1u << (opt % 8));
}

static bool tn_supported(uint8_t opt)
{
    return opt == TN_OPT_BINARY || opt == TN_OPT_SGA || opt == TN_OPT_COMPORT;
}

static int tn_send_verb(port_t *p, uint8_t verb, uint8_t opt)
{
    const uint8_t b[3] = {TN_IAC, verb, opt};
    return port__queue(p, b, sizeof(b));
}

/* IAC SB COM-PORT-OPTION cmd <value, 0xFF doubled> IAC SE */
static int tn_send_cpo(port_t *p, uint8_t cmd, const uint8_t *val, size_t n)
{
    uint8_t b[4 + 2 * 4 + 2];
    size_t k = 0;
    b[k++] = TN_IAC;
    b[k++] = TN_SB;
    b[k++] = TN_OPT_COMPORT;
    b[k++] = cmd;
    for (size_t i = 0; i < n && i < 4; i++) {
        b[k++] = val[i];
        if (val[i] == TN_IAC) b[k++] = TN_IAC;
    }
    b[k++] = TN_IAC;
    b[k++] = TN_SE;
    return port__queue(p, b, k);
}

static int tn_send_cpo1(port_t *p, uint8_t cmd, uint8_t v)
{
    return tn_send_cpo(p, cmd, &v, 1);
}

static int tn_send_baud(port_t *p, uint32_t baud)
{
    /* Network byte order (RFC 2217 SET-BAUDRATE). */
    const uint8_t v[4] = {(uint8_t)(baud >> 24), (uint8_t)(baud >> 16), (uint8_t)(baud >> 8),
                          (uint8_t)baud};
    return tn_send_cpo(p, CPO_SET_BAUDRATE, v, sizeof(v));
}

/* Push queued commands out now if the port is open (else they wait for the open). */
static void rfc_kick(port_t *p)
{
    if (p->state == PORT_ST_OPEN) {
        (void)port__flush_tx(p);
        port__update_events(p);
    }
}

static int rfc_prepare(port_t *p)
{
    int rc = port__tcp_prepare(p, "rfc2217://");
    if (rc < 0) return rc;
    p->tn = calloc(1, sizeof(*p->tn));
    if (!p->tn) return UV_ENOMEM;
    p->has_lines = true;
    /* Queued now, sent first once connected: anything written before the open follows it. We
     * offer and request each option once and remember it, so the server's answers (or its
     * own requests for the same options) never make us repeat — no negotiation loops. */
    port_tn_t *tn = p->tn;
    static const uint8_t opts[] = {TN_OPT_BINARY, TN_OPT_SGA, TN_OPT_COMPORT};
    for (size_t i = 0; i < sizeof(opts); i++) {
        if ((rc = tn_send_verb(p, TN_WILL, opts[i])) < 0 ||
            (rc = tn_send_verb(p, TN_DO, opts[i])) < 0)
            return rc;
        tn_set(tn->we, opts[i], true);
        tn_set(tn->they, opts[i], true);
    }
    /* Then the line settings: 8N1, no flow control, the opening rate. */
    if ((rc = tn_send_baud(p, p->baud)) < 0 || (rc = tn_send_cpo1(p, CPO_SET_DATASIZE, 8)) < 0 ||
        (rc = tn_send_cpo1(p, CPO_SET_PARITY, CPO_PARITY_NONE)) < 0 ||
        (rc = tn_send_cpo1(p, CPO_SET_STOPSIZE, CPO_STOPSIZE_1)) < 0 ||
        (rc = tn_send_cpo1(p, CPO_SET_CONTROL, CPO_CONTROL_NO_FLOW)) < 0)
        return rc;
    return 0;
}

static void tn_negotiate(port_t *p, uint8_t verb, uint8_t opt)
{
    port_tn_t *tn = p->tn;
    switch (verb) {
    case TN_DO: /* the server wants us to use opt */
        if (tn_supported(opt)) {
            if (!tn_bit(tn->we, opt)) {
                tn_set(tn->we, opt, true);
                (void)tn_send_verb(p, TN_WILL, opt);
            }
        } else if (!tn_bit(tn->we_refused, opt)) {
            tn_set(tn->we_refused, opt, true);
            (void)tn_send_verb(p, TN_WONT, opt);
        }
        break;
    case TN_DONT:
        if (tn_bit(tn->we, opt)) {
            tn_set(tn->we, opt, false);
            (void)tn_send_verb(p, TN_WONT, opt);
        }
        break;
    case TN_WILL: /* the server offers opt; ECHO and the rest are declined */
        if (tn_supported(opt)) {
            if (!tn_bit(tn->they, opt)) {
                tn_set(tn->they, opt, true);
                (void)tn_send_verb(p, TN_DO, opt);
            }
        } else if (!tn_bit(tn->they_refused, opt)) {
            tn_set(tn->they_refused, opt, true);
            (void)tn_send_verb(p, TN_DONT, opt);
        }
        break;
    case TN_WONT:
        if (tn_bit(tn->they, opt)) {
            tn_set(tn->they, opt, false);
            (void)tn_send_verb(p, TN_DONT, opt);
        }
        break;
    default: break;
    }
}

static void tn_sb_add(port_tn_t *tn, uint8_t c)
{
    if (tn->sb_len < PORT_TN_SB_MAX) tn->sb[tn->sb_len] = c;
    tn->sb_len++;
}

/* Data bytes are compacted in place (output never outruns input); commands and
 * subnegotiations are consumed. A command split across reads resumes from the saved state. */
static size_t rfc_filter_rx(port_t *p, uint8_t *buf, size_t n)
{
    port_tn_t *tn = p->tn;
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = buf[i];
        switch (tn->st) {
        case PORT_TN_DATA:
            if (c == TN_IAC)
                tn->st = PORT_TN_IAC;
            else
                buf[out++] = c;
            break;
        case PORT_TN_IAC:
            tn->st = PORT_TN_DATA;
            if (c == TN_IAC) {
                buf[out++] = TN_IAC; /* escaped 0xFF data byte */
            } else if (c >= TN_WILL && c <= TN_DONT) {
                tn->verb = c;
                tn->st = PORT_TN_OPT;
            } else if (c == TN_SB) {
                tn->sb_len = 0;
                tn->st = PORT_TN_SB;
            }
            /* NOP, DM, BRK, GA, AYT, … and a stray SE carry nothing for us. */
            break;
        case PORT_TN_OPT:
            tn_negotiate(p, tn->verb, c);
            tn->st = PORT_TN_DATA;
            break;
        case PORT_TN_SB:
            if (c == TN_IAC)
                tn->st = PORT_TN_SB_IAC;
            else
                tn_sb_add(tn, c);
            break;
        case PORT_TN_SB_IAC:
            if (c == TN_SE) {
                /* Server answers (SET-BAUDRATE + 100, NOTIFY-LINESTATE, …) are not waited
                 * for; they are only counted. */
                tn->sb_seen++;
                tn->st = PORT_TN_DATA;
            } else if (c == TN_IAC) {
                tn_sb_add(tn, TN_IAC);
                tn->st = PORT_TN_SB;
            } else {
                /* IAC <cmd> inside SB without SE: a broken server. End the subnegotiation
                 * and read the byte as a command so that data resumes. */
                tn->st = PORT_TN_IAC;
                i--;
            }
            break;
        }
    }
    if (port__tx_pending(p) > 0) port__update_events(p); /* negotiation replies queued above */
    return out;
}

static int rfc_write(port_t *p, const uint8_t *buf, size_t n)
{
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += buf[i] == TN_IAC;
    if (port__tx_pending(p) + n + extra > PORT_TX_MAX) return UV_ENOBUFS;
    /* 0xFF is doubled in the data stream (RFC 854). Copy the runs between them. */
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != TN_IAC) continue;
        int rc = port__queue(p, buf + start, i + 1 - start);
        if (rc == 0) rc = port__queue(p, buf + i, 1);
        if (rc < 0) return rc;
        start = i + 1;
    }
    return port__queue(p, buf + start, n - start);
}

static int rfc_set_baud(port_t *p, uint32_t baud)
{
    int rc = tn_send_baud(p, baud);
    if (rc == 0) rfc_kick(p);
    return rc;
}

static int rfc_set_lines(port_t *p, int dtr, int rts)
{
    /* RFC 2217 has no "both at once": each line is its own SET-CONTROL, DTR first, in stream
     * order with the data (esptool uses only the sequential resets over RFC 2217, PROTOCOL.md
     * §2.3). */
    int rc = 0;
    if (dtr >= 0)
        rc = tn_send_cpo1(p, CPO_SET_CONTROL, dtr ? CPO_CONTROL_DTR_ON : CPO_CONTROL_DTR_OFF);
    if (rc == 0 && rts >= 0)
        rc = tn_send_cpo1(p, CPO_SET_CONTROL, rts ? CPO_CONTROL_RTS_ON : CPO_CONTROL_RTS_OFF);
    rfc_kick(p);
    return rc;
}

static void rfc_flush_input(port_t *p)
{
    /* Ask the server to drop what it holds for us, then drop what already reached our socket
     * (through the parser, so commands in it still count). */
    (void)tn_send_cpo1(p, CPO_PURGE_DATA, CPO_PURGE_RX);
    port__drain_socket(p);
    rfc_kick(p);
}

const port_ops_t port__rfc2217_ops = {
    .kind = PORT_KIND_RFC2217,
    .cmds_in_stream = true,
    .prepare = rfc_prepare,
    .start = port__tcp_start,
    .set_baud = rfc_set_baud,
    .set_lines = rfc_set_lines,
    .flush_input = rfc_flush_input,
    .write = rfc_write,
    .filter_rx = rfc_filter_rx,
};
