// SPDX-License-Identifier: MIT
// sim_slip: SLIP encoder/decoder used by espsim. Frames are delimited by 0xC0 with 0xDB
// escapes (docs/SIMULATOR.md "ROM loader"). Must not interpret packet contents.
#include "sim_slip.h"

#include <string.h>

void sim_slip_dec_init(sim_slip_dec_t *d)
{
    d->len = 0;
    d->in_frame = 0;
    d->esc = 0;
    d->overflow = 0;
    d->bad_escape = 0;
    d->garbage = 0;
    d->ready = 0;
}

int sim_slip_dec_feed(sim_slip_dec_t *d, uint8_t byte)
{
    if (d->ready) {
        // the previous call delivered a frame; the caller has consumed it by now
        d->ready = 0;
        d->len = 0;
    }
    if (byte == SIM_SLIP_END) {
        if (d->in_frame && d->len > 0) {
            int ok = !d->overflow && !d->bad_escape && !d->esc;
            d->in_frame = 1; // an END may both close a frame and open the next one
            d->esc = 0;
            d->overflow = 0;
            d->bad_escape = 0;
            if (ok) {
                d->ready = 1; // caller consumes buf/len before the next feed
                return 1;
            }
            d->len = 0;
            return 0;
        }
        // Empty frame (two adjacent ENDs) or start of a frame: ignore, docs/SIMULATOR.md "ROM
        // loader".
        d->in_frame = 1;
        d->len = 0;
        d->esc = 0;
        d->overflow = 0;
        d->bad_escape = 0;
        return 0;
    }
    if (!d->in_frame) {
        d->garbage++;
        return 0;
    }
    uint8_t v = byte;
    if (d->esc) {
        d->esc = 0;
        if (byte == SIM_SLIP_ESC_END)
            v = SIM_SLIP_END;
        else if (byte == SIM_SLIP_ESC_ESC)
            v = SIM_SLIP_ESC;
        else {
            d->bad_escape = 1;
            return 0;
        }
    } else if (byte == SIM_SLIP_ESC) {
        d->esc = 1;
        return 0;
    }
    if (d->len >= sizeof(d->buf)) {
        d->overflow = 1;
        return 0;
    }
    d->buf[d->len++] = v;
    return 0;
}

size_t sim_slip_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    if (cap < 2) return 0;
    out[o++] = SIM_SLIP_END;
    for (size_t i = 0; i < n; i++) {
        if (o + 3 > cap) return 0;
        if (in[i] == SIM_SLIP_END) {
            out[o++] = SIM_SLIP_ESC;
            out[o++] = SIM_SLIP_ESC_END;
        } else if (in[i] == SIM_SLIP_ESC) {
            out[o++] = SIM_SLIP_ESC;
            out[o++] = SIM_SLIP_ESC_ESC;
        } else {
            out[o++] = in[i];
        }
    }
    out[o++] = SIM_SLIP_END;
    return o;
}
