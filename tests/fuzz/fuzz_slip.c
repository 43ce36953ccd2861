/* SPDX-License-Identifier: MIT */
/* fuzz_slip.c — fuzz target for the streaming SLIP decoder (jobs/proto/slip.c, PROTOCOL.md §3.1).
 * Input: a received byte stream. Checks that framing does not depend on how reads split the
 * stream, the size cap, the encode/decode round trip and resynchronisation (details below).
 * Must not: keep state between inputs. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fuzz.h"
#include "slip.h"

/* The stream is decoded whole, byte by byte and in chunks of arbitrary size (0-byte feeds
 * included), with a small and a full-size frame buffer: all three must deliver the same frames
 * and counters. Every frame must fit the cap and survive re-encoding; a valid frame sent after
 * the stream must arrive intact (slip.h: a stray END can never shift later framing). */

/* Frames and counters one way of feeding produced: each frame as a 4-byte length + its bytes. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    size_t cap_seen; /* the decoder's cap: every frame must fit */
    uint64_t count;
} rec_t;

static void rec_cb(void *ud, const uint8_t *frame, size_t len)
{
    rec_t *r = ud;
    FUZZ_CHECK(frame != NULL && len > 0 && len <= r->cap_seen);
    FUZZ_CHECK(r->len + 4 + len <= r->cap);
    cmd_put_le32(r->p + r->len, (uint32_t)len);
    memcpy(r->p + r->len + 4, frame, len);
    r->len += 4 + len;
    r->count++;
}

/* One frame, for the round-trip check. */
typedef struct {
    size_t n;
    uint8_t *buf;
    size_t len;
} one_t;

static void one_cb(void *ud, const uint8_t *frame, size_t len)
{
    one_t *o = ud;
    o->n++;
    memcpy(o->buf, frame, len);
    o->len = len;
}

/* xorshift32, seeded from the input, so chunking is arbitrary but reproducible. */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

enum { FEED_WHOLE, FEED_BYTES, FEED_CHUNKS, FEED__N };

static void decode(const uint8_t *in, size_t n, size_t cap, int how, rec_t *rec, slip_dec_t *d,
                   uint8_t *buf)
{
    rec->count = 0;
    slip_dec_init(d, buf, cap);
    rec->len = 0;
    rec->cap_seen = cap;
    if (how == FEED_WHOLE) {
        slip_dec_feed(d, in, n, rec_cb, rec);
    } else if (how == FEED_BYTES) {
        for (size_t i = 0; i < n; i++)
            slip_dec_feed(d, in + i, 1, rec_cb, rec);
    } else {
        uint32_t seed = 2166136261u;
        for (size_t i = 0; i < n; i++)
            seed = (seed ^ in[i]) * 16777619u;
        seed |= 1;
        for (size_t i = 0; i < n;) {
            size_t k = rnd(&seed) % 19; /* 0..18: empty feeds too */
            if (k > n - i) k = n - i;
            slip_dec_feed(d, in + i, k, rec_cb, rec);
            i += k;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 64: forces the oversize path; full: the largest response a job accepts is far smaller. */
    static const size_t caps[] = {64, CMD_MAX_REQ};
    static uint8_t buf2[CMD_MAX_REQ];
    uint8_t *buf[FEED__N];
    static uint8_t enc[SLIP_ENC_BOUND(CMD_MAX_REQ)];
    /* Each delivered frame has >= 1 byte and consumed >= 1 input byte plus an END: 4-byte length
     * headers take at most 4 * (size / 2 + 1) bytes. */
    size_t rcap = size + 4 * (size / 2 + 1) + 16;
    rec_t rec[FEED__N];
    slip_dec_t dec[FEED__N];

    for (int h = 0; h < FEED__N; h++) {
        rec[h].p = malloc(rcap);
        rec[h].cap = rcap;
        FUZZ_CHECK(rec[h].p != NULL);
    }
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        /* frame buffers of exactly the cap, so that ASan sees a write past it */
        for (int h = 0; h < FEED__N; h++) {
            buf[h] = malloc(caps[c]);
            FUZZ_CHECK(buf[h] != NULL);
            decode(data, size, caps[c], h, &rec[h], &dec[h], buf[h]);
        }
        FUZZ_CHECK(dec[0].frames == rec[0].count);
        for (int h = 1; h < FEED__N; h++) {
            FUZZ_CHECK(rec[h].len == rec[0].len);
            FUZZ_CHECK(memcmp(rec[h].p, rec[0].p, rec[0].len) == 0);
            FUZZ_CHECK(dec[h].frames == dec[0].frames);
            FUZZ_CHECK(dec[h].oversize == dec[0].oversize);
            FUZZ_CHECK(dec[h].bad_escape == dec[0].bad_escape);
            FUZZ_CHECK(dec[h].len == dec[0].len && dec[h].state == dec[0].state);
        }
        FUZZ_CHECK(dec[0].len <= caps[c]);

        /* Round trip: every frame, encoded again, decodes to itself (and only itself). */
        for (size_t off = 0; off < rec[0].len;) {
            size_t len = cmd_get_le32(rec[0].p + off);
            const uint8_t *frame = rec[0].p + off + 4;
            slip_dec_t d2;
            one_t one = {0, buf2, 0};
            size_t m = slip_encode(enc, sizeof enc, frame, len);
            FUZZ_CHECK(m >= len + 2 && m <= SLIP_ENC_BOUND(len));
            FUZZ_CHECK(enc[0] == SLIP_END && enc[m - 1] == SLIP_END);
            FUZZ_CHECK(memchr(enc + 1, SLIP_END, m - 2) == NULL);
            slip_dec_init(&d2, buf2, sizeof buf2);
            slip_dec_feed(&d2, enc, m, one_cb, &one);
            FUZZ_CHECK(one.n == 1 && one.len == len);
            FUZZ_CHECK(memcmp(buf2, frame, len) == 0);
            off += 4 + len;
        }

        /* Resynchronisation: whatever came before, a complete frame that follows arrives whole
         * and last (PROTOCOL.md §3.1: its leading END closes any partial candidate, which may come
         * out first as one more frame). */
        {
            static const uint8_t sync_reply[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07,
                                                 0x12, 0x20, 0x00, 0x00, 0xC0, 0xDB};
            one_t one = {0, buf2, 0};
            size_t m = slip_encode(enc, sizeof enc, sync_reply, sizeof sync_reply);
            slip_dec_feed(&dec[FEED_WHOLE], enc, m, one_cb, &one);
            FUZZ_CHECK(one.n >= 1 && one.n <= 2 && one.len == sizeof sync_reply);
            FUZZ_CHECK(memcmp(buf2, sync_reply, sizeof sync_reply) == 0);
        }
        /* reset forgets the partial candidate: a frame fed next arrives alone. */
        {
            static const uint8_t body[] = {0x01, 0x0A, 0x02, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, 0, 0};
            slip_dec_t *d = &dec[FEED_BYTES];
            one_t one = {0, buf2, 0};
            size_t m = slip_encode(enc, sizeof enc, body, sizeof body);
            slip_dec_reset(d);
            slip_dec_feed(d, enc + 1, m - 1, one_cb, &one); /* no leading END needed */
            FUZZ_CHECK(one.n == 1 && one.len == sizeof body);
            FUZZ_CHECK(memcmp(buf2, body, sizeof body) == 0);
        }
        for (int h = 0; h < FEED__N; h++)
            free(buf[h]);
    }
    for (int h = 0; h < FEED__N; h++)
        free(rec[h].p);
    return 0;
}
