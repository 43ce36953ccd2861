// SPDX-License-Identifier: MIT
// sim_slip: SLIP framing for the simulator (own codec, independent of jobs/proto).
// Owns only byte-level framing; it knows nothing about packet contents or transports.
#ifndef ESPSIM_SLIP_H
#define ESPSIM_SLIP_H

#include <stddef.h>
#include <stdint.h>

#define SIM_SLIP_END 0xC0
#define SIM_SLIP_ESC 0xDB
#define SIM_SLIP_ESC_END 0xDC
#define SIM_SLIP_ESC_ESC 0xDD

// Largest frame the decoder keeps; longer frames are dropped whole (a ROM's receive buffer is
// far smaller, the stub accepts up to 0x4000 + header; 64 KiB leaves room for any client).
#define SIM_SLIP_MAX 65536

typedef struct {
    uint8_t buf[SIM_SLIP_MAX];
    size_t len;
    int in_frame;
    int esc;
    int overflow;
    int bad_escape;
    int ready;
    uint64_t garbage; // bytes seen outside any frame
} sim_slip_dec_t;

void sim_slip_dec_init(sim_slip_dec_t *d);
// Feeds one byte; returns 1 when a complete, non-empty, well-formed frame is in d->buf/d->len.
int sim_slip_dec_feed(sim_slip_dec_t *d, uint8_t byte);

// Encodes one frame (with leading and trailing END) into out (capacity cap). Returns the encoded
// length, or 0 if it does not fit. Worst case needs 2 * n + 2 bytes.
size_t sim_slip_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

#endif
