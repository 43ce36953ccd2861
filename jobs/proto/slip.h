/* SPDX-License-Identifier: MIT */
/* slip.h — SLIP (RFC 1055) framing as the ESP loaders use it (PROTOCOL.md §3.1).
 * Owns: encoding one packet, and a streaming, size-capped decoder that resynchronises on garbage.
 * Must not: allocate, do I/O, or interpret frame contents (cmd.c does that).
 *
 * Decoder model: every END (0xC0) byte is a delimiter. The bytes between two ENDs form a
 * candidate frame; empty candidates (C0 C0) are ignored, candidates longer than the buffer and
 * candidates with an invalid escape are dropped whole (counted) and decoding resumes at the next
 * END. Line noise therefore surfaces as a short or malformed candidate that the response parser
 * rejects, and it can never shift the framing of later packets (a stray 0xC0 in noise only splits
 * the noise). Bytes before the first END are also a candidate (usually boot log text). */
#ifndef SLIP_H
#define SLIP_H

#include <stddef.h>
#include <stdint.h>

#define SLIP_END 0xC0
#define SLIP_ESC 0xDB
#define SLIP_ESC_END 0xDC
#define SLIP_ESC_ESC 0xDD

/* Worst-case encoded size of n payload bytes (each byte escaped, plus both END bytes). */
#define SLIP_ENC_BOUND(n) (2 * (size_t)(n) + 2)

/* Encode `n` bytes as one frame (leading and trailing END) into `out`.
 * Returns the encoded length, or 0 if `cap` is too small. */
size_t slip_encode(uint8_t *out, size_t cap, const uint8_t *in, size_t n);

typedef void (*slip_frame_cb)(void *ud, const uint8_t *frame, size_t len);

typedef struct slip_dec_s {
    uint8_t *buf;   /* caller-provided storage for one decoded frame */
    size_t cap;     /* its size: the maximum frame length accepted */
    size_t len;     /* bytes of the current candidate */
    int state;      /* private */
    /* statistics, for logs and tests */
    uint64_t frames;    /* non-empty frames delivered */
    uint64_t oversize;  /* candidates dropped for exceeding cap */
    uint64_t bad_escape;/* candidates dropped for an invalid escape sequence */
} slip_dec_t;

void slip_dec_init(slip_dec_t *d, uint8_t *buf, size_t cap);
/* Forget any partial candidate (e.g. after a baud change or a port flush). */
void slip_dec_reset(slip_dec_t *d);
/* Feed `n` received bytes; calls `cb` once per complete non-empty frame, in order. The frame
 * pointer is valid only during the callback. */
void slip_dec_feed(slip_dec_t *d, const uint8_t *in, size_t n, slip_frame_cb cb, void *ud);

#endif
