/* SPDX-License-Identifier: MIT */
/* slip.c — SLIP encoder and the streaming, size-capped, self-resynchronising decoder (PROTOCOL.md
 * §3.1). Owns: byte-level framing only. Must not: allocate, do I/O, or look inside frames. The
 * decoder treats every END as a delimiter (see slip.h); a candidate that overflows the buffer or
 * holds a bad escape is discarded up to the next END, so framing recovers by itself. */
#include "slip.h"

enum {
    SLIP__ST_DATA = 0, /* inside a candidate, collecting bytes */
    SLIP__ST_ESC,      /* previous byte was ESC */
    SLIP__ST_DROP      /* candidate rejected; skip to the next END */
};

size_t slip_encode(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
    size_t need = 2;
    for (size_t i = 0; i < n; i++)
        need += (in[i] == SLIP_END || in[i] == SLIP_ESC) ? 2 : 1;
    if (need > cap) return 0;
    size_t o = 0;
    out[o++] = SLIP_END;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == SLIP_END) {
            out[o++] = SLIP_ESC;
            out[o++] = SLIP_ESC_END;
        } else if (in[i] == SLIP_ESC) {
            out[o++] = SLIP_ESC;
            out[o++] = SLIP_ESC_ESC;
        } else {
            out[o++] = in[i];
        }
    }
    out[o++] = SLIP_END;
    return o;
}

void slip_dec_init(slip_dec_t *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    d->len = 0;
    d->state = SLIP__ST_DATA;
    d->frames = 0;
    d->oversize = 0;
    d->bad_escape = 0;
}

void slip_dec_reset(slip_dec_t *d)
{
    d->len = 0;
    d->state = SLIP__ST_DATA;
}

/* Append one decoded byte; on overflow drop the candidate (counted once). */
static void slip_dec_put(slip_dec_t *d, uint8_t b)
{
    if (d->len >= d->cap) {
        d->oversize++;
        d->len = 0;
        d->state = SLIP__ST_DROP;
        return;
    }
    d->buf[d->len++] = b;
    d->state = SLIP__ST_DATA;
}

void slip_dec_feed(slip_dec_t *d, const uint8_t *in, size_t n, slip_frame_cb cb, void *ud)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = in[i];
        if (b == SLIP_END) {
            if (d->state == SLIP__ST_ESC) {
                /* ESC END: the escape is incomplete, so the candidate is malformed. */
                d->bad_escape++;
            } else if (d->state == SLIP__ST_DATA && d->len > 0) {
                d->frames++;
                if (cb) cb(ud, d->buf, d->len);
            }
            d->len = 0;
            d->state = SLIP__ST_DATA;
            continue;
        }
        switch (d->state) {
        case SLIP__ST_DROP: break;
        case SLIP__ST_ESC:
            if (b == SLIP_ESC_END) {
                slip_dec_put(d, SLIP_END);
            } else if (b == SLIP_ESC_ESC) {
                slip_dec_put(d, SLIP_ESC);
            } else {
                /* Any other byte after ESC is a protocol error (PROTOCOL.md §3.1). */
                d->bad_escape++;
                d->len = 0;
                d->state = SLIP__ST_DROP;
            }
            break;
        default:
            if (b == SLIP_ESC)
                d->state = SLIP__ST_ESC;
            else
                slip_dec_put(d, b);
            break;
        }
    }
}
