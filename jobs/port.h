/* SPDX-License-Identifier: MIT */
/* port.h — a byte pipe to one device, whatever carries it: a real serial adapter
 * (libserialport), a pty or other tty (open()+termios), raw TCP (socket://host:port) or an
 * RFC 2217 server (rfc2217://host:port).
 * Owns: opening (always asynchronous, exclusive), non-blocking reads and buffered writes on the
 * caller's libuv loop, baud rate and DTR/RTS control, closing.
 * Must not: know the loader protocol, block the loop, or log above debug. */
#ifndef PORT_H
#define PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct port_s port_t;

typedef enum { PORT_KIND_SERIAL, PORT_KIND_TTY, PORT_KIND_TCP, PORT_KIND_RFC2217 } port_kind_t;

typedef struct port_cbs_s {
    /* Open finished: status 0, or UV_ENOENT (no such port), UV_EBUSY (held elsewhere),
     * UV_EACCES, UV_ECONNREFUSED, UV_ETIMEDOUT, ... After a failed open the port is closed
     * automatically and close_cb follows. */
    void (*open_cb)(port_t *p, int status);
    /* Bytes received. */
    void (*read_cb)(port_t *p, const uint8_t *buf, size_t n);
    /* The port failed after opening: UV_EOF (peer closed / pty hung up), UV_EIO (USB adapter
     * unplugged), ... The owner should close it. Called at most once. */
    void (*error_cb)(port_t *p, int status);
    /* Every byte passed to port_write has been handed to the OS (optional). */
    void (*drain_cb)(port_t *p);
    /* The port is closed and its memory freed right after this returns. */
    void (*close_cb)(port_t *p);
} port_cbs_t;

/* What a spec names: "socket://h:p" → TCP, "rfc2217://h:p" → RFC 2217, "/dev/pts/N" or any
 * other tty path that libserialport cannot handle → TTY, otherwise SERIAL (a USB adapter path,
 * /dev/serial/by-*, or "usb-serial:<serial number>" matched against enumerated ports). */
port_kind_t port_kind_of_spec(const char *spec);

/* Is `spec` well formed (what port_open would accept: an absolute path, usb-serial:<serial>, or
 * socket:// / rfc2217:// with a host and a port 1..65535)? 0 yes, UV_EINVAL no. Opens nothing. */
int port_spec_check(const char *spec);

/* Start opening `spec` at `baud` (8N1, no flow control, raw). Returns 0 and calls open_cb later
 * (never from inside port_open), or a negative UV error for a malformed spec (no callbacks). */
int port_open(uv_loop_t *loop, const char *spec, uint32_t baud, const port_cbs_t *cbs, void *data,
              port_t **out);
void *port_data(const port_t *p);
port_kind_t port_kind(const port_t *p);
const char *port_spec(const port_t *p);

/* Queue bytes; they are copied. Returns 0, or UV_ENOBUFS when more than 1 MiB is pending. */
int port_write(port_t *p, const uint8_t *buf, size_t n);
size_t port_tx_pending(const port_t *p);
/* Discard received bytes not yet delivered and the OS input queue (tcflush on ttys). */
void port_flush_input(port_t *p);

/* Change the baud rate (takes effect for bytes written after the call; on RFC 2217 it is sent
 * as a SET-BAUDRATE option). Returns 0 or a negative UV error. */
int port_set_baud(port_t *p, uint32_t baud);
uint32_t port_baud(const port_t *p);

/* Modem lines. dtr/rts: 1 assert, 0 deassert, -1 leave unchanged. When both are given they are
 * set at once where the backend can (one TIOCMSET: esptool's UnixTight reset). Returns 0, or
 * UV_ENOTSUP when the port cannot drive the lines (ptys, raw TCP): the caller warns once and goes
 * on without reset, as esptool does. */
int port_set_lines(port_t *p, int dtr, int rts);
bool port_has_lines(const port_t *p);

/* One serial port found by port_list (libserialport enumeration). */
typedef struct port_info_s {
    char path[64];        /* e.g. /dev/ttyUSB0 */
    char description[96]; /* product string or driver name */
    char serial[64];      /* USB serial number ("usb-serial:<serial>"), "" when none */
    uint16_t usb_vid, usb_pid;
    bool usb;
} port_info_t;

/* List the machine's serial ports, sorted by path: fills up to `max` entries of `out` (may be
 * NULL with max 0) and returns how many exist, or a negative UV error. Reads sysfs (a few ms):
 * call it on demand, not per loop iteration. */
int port_list(port_info_t *out, size_t max);

/* After an open failed with UV_EBUSY: which processes have the device behind `spec` open, as
 * "pid 4242 (screen), pid 977 (ModemManager)" in buf ("" when none can be seen: not a device
 * path, or their /proc entries are not readable to us; a pty's owner such as the simulator is
 * left out). Returns how many were found. Walks /proc (a few ms): for error messages only. */
int port_holders(const char *spec, char *buf, size_t cap);

/* Close (idempotent). Pending writes are dropped. close_cb follows asynchronously. */
void port_close(port_t *p);

#endif
