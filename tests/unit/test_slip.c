/* SPDX-License-Identifier: MIT */
/* test_slip.c — unit tests of the SLIP codec (jobs/proto/slip.c, PROTOCOL.md §3.1).
 * Owns: encoder vectors, decoder behaviour on split reads, garbage, bad escapes, oversize frames.
 * Must not: touch the network or the file system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "slip.h"

#define MAX_FRAMES 16
#define MAX_LEN 512

/* Collects delivered frames. */
typedef struct {
    size_t n;
    size_t len[MAX_FRAMES];
    uint8_t data[MAX_FRAMES][MAX_LEN];
} sink_t;

static void sink_cb(void *ud, const uint8_t *frame, size_t len)
{
    sink_t *s = ud;
    assert_true(s->n < MAX_FRAMES);
    assert_true(len <= MAX_LEN);
    memcpy(s->data[s->n], frame, len);
    s->len[s->n] = len;
    s->n++;
}

static void assert_frame(const sink_t *s, size_t i, const uint8_t *exp, size_t len)
{
    assert_true(i < s->n);
    assert_int_equal(s->len[i], len);
    assert_memory_equal(s->data[i], exp, len);
}

static void test_encode_vector(void **state)
{
    (void)state;
    const uint8_t in[] = {0x01, 0xC0, 0xDB, 0x02};
    const uint8_t exp[] = {0xC0, 0x01, 0xDB, 0xDC, 0xDB, 0xDD, 0x02, 0xC0};
    uint8_t out[32];
    assert_int_equal(slip_encode(out, sizeof(out), in, sizeof(in)), sizeof(exp));
    assert_memory_equal(out, exp, sizeof(exp));
    /* Exact capacity works, one byte less does not. */
    assert_int_equal(slip_encode(out, sizeof(exp), in, sizeof(in)), sizeof(exp));
    assert_int_equal(slip_encode(out, sizeof(exp) - 1, in, sizeof(in)), 0);
    /* Empty payload: just the two END bytes. */
    assert_int_equal(slip_encode(out, 2, in, 0), 2);
    assert_int_equal(out[0], 0xC0);
    assert_int_equal(out[1], 0xC0);
    assert_true(SLIP_ENC_BOUND(4) >= sizeof(exp));
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t in[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(in); i++) {
        x = x * 1103515245u + 12345u;
        /* Bias towards the special bytes so escapes are frequent. */
        uint8_t r = (uint8_t)(x >> 16);
        in[i] = (r % 4 == 0) ? 0xC0 : (r % 4 == 1) ? 0xDB : r;
    }
    uint8_t enc[SLIP_ENC_BOUND(sizeof(in))];
    size_t n = slip_encode(enc, sizeof(enc), in, sizeof(in));
    assert_true(n > sizeof(in) + 2);
    /* No END inside the encoded body. */
    for (size_t i = 1; i + 1 < n; i++)
        assert_int_not_equal(enc[i], 0xC0);

    uint8_t buf[512];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, enc, n, sink_cb, &s);
    assert_int_equal(s.n, 1);
    assert_frame(&s, 0, in, sizeof(in));
    assert_int_equal(d.frames, 1);
}

/* Two frames, each with escapes, fed as two reads split at every position (and byte by byte). */
static void test_split_every_position(void **state)
{
    (void)state;
    const uint8_t f1[] = {0x01, 0x08, 0xC0, 0x00, 0xDB, 0x55};
    const uint8_t f2[] = {0x01, 0x0A, 0x02, 0x00, 0xDB, 0xDB, 0xC0};
    uint8_t stream[64];
    size_t n1 = slip_encode(stream, sizeof(stream), f1, sizeof(f1));
    size_t n2 = slip_encode(stream + n1, sizeof(stream) - n1, f2, sizeof(f2));
    size_t n = n1 + n2;
    uint8_t buf[64];
    for (size_t split = 0; split <= n; split++) {
        slip_dec_t d;
        slip_dec_init(&d, buf, sizeof(buf));
        sink_t s = {0};
        slip_dec_feed(&d, stream, split, sink_cb, &s);
        slip_dec_feed(&d, stream + split, n - split, sink_cb, &s);
        assert_int_equal(s.n, 2);
        assert_frame(&s, 0, f1, sizeof(f1));
        assert_frame(&s, 1, f2, sizeof(f2));
        assert_int_equal(d.bad_escape, 0);
        assert_int_equal(d.oversize, 0);
    }
    /* Three-way splits too: every pair of cut points. */
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            slip_dec_t d;
            slip_dec_init(&d, buf, sizeof(buf));
            sink_t s = {0};
            slip_dec_feed(&d, stream, a, sink_cb, &s);
            slip_dec_feed(&d, stream + a, b - a, sink_cb, &s);
            slip_dec_feed(&d, stream + b, n - b, sink_cb, &s);
            assert_int_equal(s.n, 2);
            assert_frame(&s, 0, f1, sizeof(f1));
            assert_frame(&s, 1, f2, sizeof(f2));
        }
    }
}

static void test_several_frames_one_read(void **state)
{
    (void)state;
    /* Eight SYNC-like replies back to back (§4.2), shared END bytes between some of them. */
    uint8_t stream[256];
    size_t n = 0;
    const uint8_t f[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00};
    for (int i = 0; i < 8; i++) {
        size_t k = slip_encode(stream + n, sizeof(stream) - n, f, sizeof(f));
        assert_true(k > 0);
        /* Drop the leading END of every other frame: "C0 f C0 f C0" is also valid framing. */
        if (i % 2 == 1) {
            memmove(stream + n, stream + n + 1, k - 1);
            k--;
        }
        n += k;
    }
    uint8_t buf[64];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, stream, n, sink_cb, &s);
    assert_int_equal(s.n, 8);
    for (size_t i = 0; i < 8; i++)
        assert_frame(&s, i, f, sizeof(f));
    assert_int_equal(d.frames, 8);
}

static void test_garbage_between_frames(void **state)
{
    (void)state;
    /* Boot-log text before the first END, then a frame, noise, another frame. Noise surfaces as
     * its own candidate and never shifts the framing of the real frames. */
    const char *boot = "ets Jun  8 2016 00:22:57\r\nwaiting for download\r\n";
    const uint8_t f1[] = {0x01, 0x0A, 0x02, 0x00, 0x83, 0x1D, 0xF0, 0x00, 0x00, 0x00};
    const uint8_t noise[] = {0x17, 0x00, 0xFF};
    const uint8_t f2[] = {0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    uint8_t stream[256];
    size_t n = strlen(boot);
    memcpy(stream, boot, n);
    n += slip_encode(stream + n, sizeof(stream) - n, f1, sizeof(f1));
    memcpy(stream + n, noise, sizeof(noise));
    n += sizeof(noise);
    n += slip_encode(stream + n, sizeof(stream) - n, f2, sizeof(f2));

    uint8_t buf[128];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, stream, n, sink_cb, &s);
    assert_int_equal(s.n, 4);
    assert_frame(&s, 0, (const uint8_t *)boot, strlen(boot));
    assert_frame(&s, 1, f1, sizeof(f1));
    assert_frame(&s, 2, noise, sizeof(noise));
    assert_frame(&s, 3, f2, sizeof(f2));
}

static void test_empty_frames_ignored(void **state)
{
    (void)state;
    /* Extra END bytes (e.g. after a baud change) produce no frames. */
    const uint8_t stream[] = {0xC0, 0xC0, 0xC0, 0xC0, 0xAA, 0xC0, 0xC0, 0xC0};
    uint8_t buf[16];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, stream, 4, sink_cb, &s);
    assert_int_equal(s.n, 0);
    slip_dec_feed(&d, stream + 4, sizeof(stream) - 4, sink_cb, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.len[0], 1);
    assert_int_equal(s.data[0][0], 0xAA);
    assert_int_equal(d.frames, 1);
    assert_int_equal(d.bad_escape, 0);
    assert_int_equal(d.oversize, 0);
}

static void test_escape_split_across_reads(void **state)
{
    (void)state;
    const uint8_t r1[] = {0xC0, 0x01, 0xDB};
    const uint8_t r2[] = {0xDC, 0x02, 0xDB};
    const uint8_t r3[] = {0xDD, 0xC0};
    const uint8_t exp[] = {0x01, 0xC0, 0x02, 0xDB};
    uint8_t buf[16];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, r1, sizeof(r1), sink_cb, &s);
    slip_dec_feed(&d, r2, sizeof(r2), sink_cb, &s);
    assert_int_equal(s.n, 0);
    slip_dec_feed(&d, r3, sizeof(r3), sink_cb, &s);
    assert_int_equal(s.n, 1);
    assert_frame(&s, 0, exp, sizeof(exp));
}

static void test_bad_escape_dropped(void **state)
{
    (void)state;
    /* DB followed by a byte other than DC/DD: the whole candidate is dropped, the next frame is
     * intact. Also DB directly followed by END. */
    const uint8_t stream[] = {0xC0, 0x01, 0xDB, 0x05, 0x02, 0x03, 0xC0, /* bad escape */
                              0xC0, 0x11, 0x22, 0xC0,                   /* good */
                              0x44, 0xDB, 0xC0,                         /* ESC END */
                              0x33, 0xDB, 0xDD, 0xC0};                  /* good */
    uint8_t buf[16];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    slip_dec_feed(&d, stream, sizeof(stream), sink_cb, &s);
    assert_int_equal(d.bad_escape, 2);
    assert_int_equal(s.n, 2);
    const uint8_t g1[] = {0x11, 0x22};
    const uint8_t g2[] = {0x33, 0xDB};
    assert_frame(&s, 0, g1, sizeof(g1));
    assert_frame(&s, 1, g2, sizeof(g2));
    assert_int_equal(d.frames, 2);
}

static void test_oversize_dropped_resync(void **state)
{
    (void)state;
    uint8_t buf[8];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    /* Exactly cap bytes is accepted. */
    const uint8_t ok8[] = {0xC0, 1, 2, 3, 4, 5, 6, 7, 8, 0xC0};
    slip_dec_feed(&d, ok8, sizeof(ok8), sink_cb, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.len[0], 8);
    /* cap + 1 (the last one escaped) is dropped, the frame after it survives. */
    const uint8_t big[] = {0xC0, 1, 2, 3, 4, 5, 6, 7, 8, 0xDB, 0xDC, 0xC0, 0x0A, 0x0B, 0xC0};
    slip_dec_feed(&d, big, sizeof(big), sink_cb, &s);
    assert_int_equal(d.oversize, 1);
    assert_int_equal(s.n, 2);
    const uint8_t exp[] = {0x0A, 0x0B};
    assert_frame(&s, 1, exp, sizeof(exp));
    /* A very long run (boot log without END) is counted once and resyncs at the next END. */
    uint8_t lng[100];
    memset(lng, 'x', sizeof(lng));
    slip_dec_feed(&d, lng, sizeof(lng), sink_cb, &s);
    slip_dec_feed(&d, lng, sizeof(lng), sink_cb, &s);
    const uint8_t tail[] = {0xC0, 0x42, 0xC0};
    slip_dec_feed(&d, tail, sizeof(tail), sink_cb, &s);
    assert_int_equal(d.oversize, 2);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.len[2], 1);
    assert_int_equal(s.data[2][0], 0x42);
}

static void test_reset_forgets_partial(void **state)
{
    (void)state;
    uint8_t buf[16];
    slip_dec_t d;
    slip_dec_init(&d, buf, sizeof(buf));
    sink_t s = {0};
    const uint8_t part[] = {0xC0, 0x01, 0x02, 0xDB};
    slip_dec_feed(&d, part, sizeof(part), sink_cb, &s);
    slip_dec_reset(&d);
    const uint8_t rest[] = {0x03, 0xC0};
    slip_dec_feed(&d, rest, sizeof(rest), sink_cb, &s);
    /* After the reset only 0x03 is left of the candidate: no escape error, no stale bytes. */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.len[0], 1);
    assert_int_equal(s.data[0][0], 0x03);
    assert_int_equal(d.bad_escape, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vector),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_split_every_position),
        cmocka_unit_test(test_several_frames_one_read),
        cmocka_unit_test(test_garbage_between_frames),
        cmocka_unit_test(test_empty_frames_ignored),
        cmocka_unit_test(test_escape_split_across_reads),
        cmocka_unit_test(test_bad_escape_dropped),
        cmocka_unit_test(test_oversize_dropped_resync),
        cmocka_unit_test(test_reset_forgets_partial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
