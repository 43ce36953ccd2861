/* SPDX-License-Identifier: MIT */
/* test_job_sm.c — the flashing job's state machine driven by injected events: a scripted fake
 * ESP32 ROM sits behind the job's I/O interface (job_io_t), answers requests on the next loop
 * turn, and can be told to stay silent, NAK, drop a reply, print a banner, or vanish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cmd.h"
#include "job.h"
#include "job_int.h"
#include "slip.h"

typedef struct fake_s {
    uv_loop_t loop;
    uv_timer_t deliver;
    job_t *job;
    slip_dec_t dec;
    uint8_t decbuf[0x5000];
    uint8_t out[65536];
    size_t out_len;
    /* device model */
    uint32_t spi_w0, spi_cmd;
    bool silent;           /* never answer */
    bool app_text;         /* print application text instead of answering */
    uint8_t nak_op;        /* NAK this opcode with ROM error 6 */
    int drop_data_reply;   /* drop the reply to this FLASH_DEFL_DATA seq once (-1 none) */
    int banner_at_seq;     /* print a ROM banner after this data seq (-1 none) */
    int vanish_at_seq;     /* report a port error at this data seq (-1 none) */
    int cancel_at_seq;     /* cancel the job at this data seq (-1 none) */
    int nak_data_seq;      /* NAK this data seq once with a checksum error (-1 none) */
    bool drop_mac1_once;   /* drop the first reply to READ_REG of the second MAC word */
    bool big_burst;        /* one 6000-byte burst of text while connecting */
    uint32_t jedec;        /* W0 answer of the JEDEC command */
    uint8_t expect_md5[16];
    /* observations */
    job_state_t path[64];
    size_t n_path;
    const job_report_t *rep;
    bool done;
    unsigned syncs;
    bool closed;
} fake_t;

static fake_t F;

/* ---- fake device ---- */

static void fake_queue(const uint8_t *raw, size_t n)
{
    size_t e = slip_encode(F.out + F.out_len, sizeof F.out - F.out_len, raw, n);
    assert_true(e > 0);
    F.out_len += e;
}

/* ESP32 ROM response: header, output, 4 status bytes */
static void fake_reply(uint8_t op, uint32_t value, const uint8_t *o, size_t on, uint8_t st,
                       uint8_t er)
{
    uint8_t r[128];
    size_t dl = on + 4;
    r[0] = 1;
    r[1] = op;
    cmd_put_le16(r + 2, (uint16_t)dl);
    cmd_put_le32(r + 4, value);
    if (on)
        memcpy(r + 8, o, on);
    r[8 + on] = st;
    r[9 + on] = er;
    r[10 + on] = 0;
    r[11 + on] = 0;
    fake_queue(r, 8 + dl);
}

static uint32_t fake_read_reg(uint32_t a)
{
    switch (a) {
    case 0x40001000: return 0x00F01D83;     /* ESP32 magic */
    case 0x3FF5A004: return 0x12345678;     /* mac0 */
    case 0x3FF5A008: return 0x00AB0024;     /* mac1: bytes 00 24 → 00:24:12:34:56:78 */
    case 0x3FF42000: return F.spi_cmd;      /* SPI CMD */
    case 0x3FF42080: return F.spi_w0;       /* SPI W0 */
    default: return 0;
    }
}

static void fake_request(void *ud, const uint8_t *f, size_t n)
{
    uint8_t op;
    (void)ud;
    if (n < 8 || f[0] != 0)
        return;
    op = f[1];
    if (F.silent)
        return;
    if (op == F.nak_op) {
        fake_reply(op, 0, NULL, 0, 1, 6);
        return;
    }
    switch (op) {
    case CMD_SYNC:
        F.syncs++;
        for (int i = 0; i < 8; i++)
            fake_reply(op, 0x20120707, NULL, 0, 0, 0);
        return;
    case CMD_GET_SECURITY_INFO: fake_reply(op, 0, NULL, 0, 1, 5); return; /* ESP32: unsupported */
    case CMD_READ_REG:
        if (F.drop_mac1_once && cmd_get_le32(f + 8) == 0x3FF5A008) {
            F.drop_mac1_once = false;
            return;
        }
        fake_reply(op, fake_read_reg(cmd_get_le32(f + 8)), NULL, 0, 0, 0);
        return;
    case CMD_WRITE_REG: {
        uint32_t a = cmd_get_le32(f + 8), v = cmd_get_le32(f + 12);
        if (a == 0x3FF42000 && (v & (1u << 18)))
            F.spi_w0 = F.jedec; /* the command completes at once */
        if (a == 0x3FF42080)
            F.spi_w0 = v;
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    }
    case CMD_FLASH_DEFL_DATA: {
        int seq = (int)cmd_get_le32(f + 8 + 4);
        if (seq == F.cancel_at_seq) {
            F.cancel_at_seq = -1;
            job_cancel(F.job);
            return;
        }
        if (seq == F.vanish_at_seq) {
            F.vanish_at_seq = -1;
            job_io_error(F.job, UV_EIO);
            return;
        }
        if (seq == F.nak_data_seq) {
            F.nak_data_seq = -1;
            fake_reply(op, 0, NULL, 0, 1, 7); /* checksum error, as line noise would cause */
            return;
        }
        if (seq == F.drop_data_reply) {
            F.drop_data_reply = -1;
            return;
        }
        fake_reply(op, 0, NULL, 0, 0, 0);
        if (seq == F.banner_at_seq) {
            static const char b[] = "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET)";
            memcpy(F.out + F.out_len, b, sizeof b - 1);
            F.out_len += sizeof b - 1;
        }
        return;
    }
    case CMD_SPI_FLASH_MD5: {
        char hex[33];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", F.expect_md5[i]);
        fake_reply(op, 0, (const uint8_t *)hex, 32, 0, 0);
        return;
    }
    default: fake_reply(op, 0, NULL, 0, 0, 0); return;
    }
}

static void fake_deliver_cb(uv_timer_t *t)
{
    (void)t;
    if (F.big_burst && !F.closed) {
        static uint8_t burst[6000];
        F.big_burst = false;
        memset(burst, 'A', sizeof burst);
        job_io_read(F.job, burst, sizeof burst);
    }
    if (F.app_text && !F.closed) {
        static const char txt[] = "I (312) app: hello from the application, counting 42\r\n";
        job_io_read(F.job, (const uint8_t *)txt, sizeof txt - 1);
    }
    if (F.out_len && !F.closed) {
        uint8_t tmp[sizeof F.out];
        size_t n = F.out_len;
        memcpy(tmp, F.out, n);
        F.out_len = 0;
        job_io_read(F.job, tmp, n);
    }
}

/* ---- job_io_t of the fake ---- */

static void fake_opened_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    job_io_opened(F.job, 0);
}
static int fake_open(job_t *j, const char *spec, uint32_t baud)
{
    uv_timer_t *t = malloc(sizeof *t);
    (void)j;
    (void)spec;
    (void)baud;
    uv_timer_init(&F.loop, t);
    uv_timer_start(t, fake_opened_cb, 0, 0);
    return 0;
}
static int fake_write(job_t *j, const uint8_t *buf, size_t n)
{
    (void)j;
    slip_dec_feed(&F.dec, buf, n, fake_request, NULL);
    return 0;
}
static int fake_set_lines(job_t *j, int dtr, int rts)
{
    (void)j;
    (void)dtr;
    (void)rts;
    return UV_ENOTSUP; /* like a pty: no reset */
}
static int fake_set_baud(job_t *j, uint32_t b)
{
    (void)j;
    (void)b;
    return 0;
}
static void fake_flush(job_t *j)
{
    (void)j;
}
static void fake_closed_cb(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    job_io_closed(F.job);
}
static void fake_close(job_t *j)
{
    uv_timer_t *t = malloc(sizeof *t);
    (void)j;
    F.closed = true;
    uv_timer_init(&F.loop, t);
    uv_timer_start(t, fake_closed_cb, 0, 0);
}
static const job_io_t fake_io = {fake_open, fake_write, fake_set_lines, fake_set_baud, fake_flush,
                                 fake_close};

/* ---- job callbacks ---- */

static void t_state_cb(job_t *j, job_state_t from, job_state_t to)
{
    (void)j;
    (void)from;
    if (F.n_path < 64)
        F.path[F.n_path++] = to;
}
static void t_done_cb(job_t *j, const job_report_t *r)
{
    (void)j;
    F.rep = r;
    F.done = true;
    uv_close((uv_handle_t *)&F.deliver, NULL);
}
static const job_cbs_t t_cbs = {.state_cb = t_state_cb, .done_cb = t_done_cb};

/* ---- harness ---- */

static plan_t P;

static void setup_fake(void)
{
    memset(&F, 0, sizeof F);
    F.drop_data_reply = F.banner_at_seq = F.vanish_at_seq = F.cancel_at_seq = -1;
    F.nak_data_seq = -1;
    F.jedec = 0x1640EF; /* EF 40 16: 4 MB */
    uv_loop_init(&F.loop);
    slip_dec_init(&F.dec, F.decbuf, sizeof F.decbuf);
    uv_timer_init(&F.loop, &F.deliver);
    uv_timer_start(&F.deliver, fake_deliver_cb, 1, 1);

    plan_init(&P);
    size_t n = 64 * 1024 + 3; /* not a multiple of 4: the job pads with 0xFF */
    uint8_t *img = malloc(n);
    uint32_t x = 2463534242u; /* xorshift32: the first half does not compress */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        img[i] = (uint8_t)(i < n / 2 ? x >> 24 : i % 7);
    }
    plan_err_t err;
    assert_int_equal(plan_add_image_mem(&P, 0x10000, "app.bin", img, n, &err), 0);
    assert_int_equal(plan_finish(&P, &err), 0);
    /* what the device must hold: image padded to 4 with 0xFF */
    uint8_t *padded = malloc(n + 1);
    memcpy(padded, img, n);
    padded[n] = 0xFF;
    unsigned int ml = 16;
    EVP_Digest(padded, n + 1, F.expect_md5, &ml, EVP_md5(), NULL);
    free(padded);
}

static void run_job(void)
{
    F.job = job_new(&F.loop, "fake://dut", &P, &t_cbs, &fake_io, NULL);
    assert_non_null(F.job);
    assert_int_equal(job_start(F.job), 0);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_true(F.done);
}

static void teardown_fake(void)
{
    job_free(F.job);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    plan_free(&P);
}

static bool path_has(job_state_t s)
{
    for (size_t i = 0; i < F.n_path; i++)
        if (F.path[i] == s)
            return true;
    return false;
}

/* ---- tests ---- */

static void test_happy_path(void **state)
{
    (void)state;
    setup_fake();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->error_class, EST_CLASS_NONE);
    /* the whole path, in order (reset skipped: the fake port has no DTR/RTS) */
    static const job_state_t want[] = {
        JOB_ST_OPEN,   JOB_ST_RESET,   JOB_ST_SYNC, JOB_ST_DETECT, JOB_ST_READ_EFUSE,
        JOB_ST_STUB,   JOB_ST_BAUD,    JOB_ST_ATTACH, JOB_ST_FLASH_ID, JOB_ST_PARAMS,
        JOB_ST_PREPARE, JOB_ST_BEGIN,  JOB_ST_DATA, JOB_ST_VERIFY, JOB_ST_AFTER_RESET,
        JOB_ST_CLOSING, JOB_ST_DONE};
    assert_int_equal(F.n_path, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < F.n_path; i++)
        assert_int_equal(F.path[i], want[i]);
    assert_non_null(F.rep->chip);
    assert_int_equal(F.rep->chip->id, CHIP_ESP32);
    assert_true(F.rep->have_mac);
    static const uint8_t mac[6] = {0x00, 0x24, 0x12, 0x34, 0x56, 0x78};
    assert_memory_equal(F.rep->mac, mac, 6);
    assert_int_equal(F.rep->flash_id, 0xEF4016);
    assert_int_equal(F.rep->flash_size, 4 * 1024 * 1024);
    assert_int_equal(F.rep->n_images, 1);
    assert_int_equal(F.rep->images[0].size, 64 * 1024 + 4);
    assert_true(F.rep->images[0].verified);
    assert_true(F.rep->images[0].compressed_size < F.rep->images[0].size);
    assert_int_equal(F.rep->bytes_written, 64 * 1024 + 4);
    assert_int_equal(F.rep->retries, 0);
    /* more than two compressed blocks, so the fault tests below hit the middle of a write */
    assert_true(F.rep->images[0].compressed_size > 3 * 0x400);
    teardown_fake();
}

static void test_no_sync(void **state)
{
    (void)state;
    setup_fake();
    F.silent = true;
    P.connect_attempts = 2;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_FAIL);
    assert_int_equal(F.rep->error_class, EST_CLASS_NO_SYNC);
    assert_int_equal(F.rep->failed_state, JOB_ST_SYNC);
    assert_false(path_has(JOB_ST_DETECT));
    teardown_fake();
}

static void test_app_text_is_wrong_boot_mode(void **state)
{
    (void)state;
    setup_fake();
    F.silent = true;
    F.app_text = true;
    P.connect_attempts = 1;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_WRONG_BOOT_MODE);
    teardown_fake();
}

static void test_nak_keeps_command_and_status(void **state)
{
    (void)state;
    setup_fake();
    F.nak_op = CMD_FLASH_DEFL_BEGIN;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_FAIL);
    assert_int_equal(F.rep->error_class, EST_CLASS_NAK);
    assert_int_equal(F.rep->failed_state, JOB_ST_BEGIN);
    assert_int_equal(F.rep->nak_op, CMD_FLASH_DEFL_BEGIN);
    assert_int_equal(F.rep->nak_code, 0x0106);
    assert_non_null(strstr(F.rep->message, "FLASH_DEFL_BEGIN"));
    assert_non_null(strstr(F.rep->message, "0x0106"));
    teardown_fake();
}

static void test_dropped_reply_is_retried(void **state)
{
    (void)state;
    setup_fake();
    F.drop_data_reply = 1;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->retries, 1);
    teardown_fake();
}

static void test_banner_mid_write_is_brownout(void **state)
{
    (void)state;
    setup_fake();
    F.banner_at_seq = 2;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_BROWNOUT);
    assert_int_equal(F.rep->failed_state, JOB_ST_DATA);
    teardown_fake();
}

static void test_port_vanishes(void **state)
{
    (void)state;
    setup_fake();
    F.vanish_at_seq = 1;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_PORT_GONE);
    assert_true(F.closed);
    teardown_fake();
}

static void test_cancel(void **state)
{
    (void)state;
    setup_fake();
    F.cancel_at_seq = 1;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_CANCELLED);
    assert_int_equal(F.rep->error_class, EST_CLASS_CANCELLED);
    teardown_fake();
}

static void test_wrong_chip(void **state)
{
    (void)state;
    setup_fake();
    P.chip = CHIP_ESP32S3;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_WRONG_CHIP);
    assert_int_equal(F.rep->failed_state, JOB_ST_DETECT);
    assert_non_null(strstr(F.rep->message, "ESP32-S3"));
    teardown_fake();
}

static void test_image_beyond_flash(void **state)
{
    (void)state;
    setup_fake();
    P.images[0].offset = 0x3F8000; /* 64 KiB + 4 from here runs past 4 MB */
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_FLASH_TOO_SMALL);
    assert_int_equal(F.rep->failed_state, JOB_ST_PARAMS);
    assert_false(path_has(JOB_ST_BEGIN));
    teardown_fake();
}

static void test_data_nak_is_sent_again(void **state)
{
    (void)state;
    setup_fake();
    F.nak_data_seq = 2;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->retries, 1);
    teardown_fake();
}

static void test_dropped_register_reply_restarts_sequence(void **state)
{
    (void)state;
    setup_fake();
    F.drop_mac1_once = true;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->retries, 1);
    static const uint8_t mac[6] = {0x00, 0x24, 0x12, 0x34, 0x56, 0x78};
    assert_memory_equal(F.rep->mac, mac, 6); /* no reply was credited to the wrong word */
    teardown_fake();
}

static void test_big_text_burst_while_connecting(void **state)
{
    (void)state;
    setup_fake();
    F.big_burst = true; /* larger than the boot-log buffer in one read */
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    teardown_fake();
}

static void test_rom_cannot_reach_beyond_16mb(void **state)
{
    (void)state;
    setup_fake();
    F.jedec = 0x1940EF; /* 32 MB flash */
    P.images[0].offset = 0x1000000;
    run_job();
    assert_int_equal(F.rep->flash_size, 32 * 1024 * 1024);
    assert_int_equal(F.rep->error_class, EST_CLASS_BAD_OFFSET);
    assert_false(path_has(JOB_ST_BEGIN));
    teardown_fake();
}

static void test_prepared_image_is_shared(void **state)
{
    (void)state;
    setup_fake();
    uint64_t before = job_prep_count();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(job_prep_count(), before + 1);
    job_free(F.job);
    /* a second board with the same plan: the deflated image is reused, not made again */
    F.done = false;
    F.closed = false;
    F.n_path = 0;
    uv_timer_init(&F.loop, &F.deliver); /* the first run's done_cb closed it */
    uv_timer_start(&F.deliver, fake_deliver_cb, 1, 1);
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->images[0].verified);
    assert_int_equal(job_prep_count(), before + 1);
    teardown_fake();
}

static void test_state_table(void **state)
{
    (void)state;
    /* every state has a distinct name; the ones that wait for replies have a timeout */
    for (int a = 0; a < JOB_ST__COUNT; a++)
        for (int b = a + 1; b < JOB_ST__COUNT; b++)
            assert_string_not_equal(job_state_name((job_state_t)a), job_state_name((job_state_t)b));
    assert_int_equal(job_state_timeout_ms(JOB_ST_SYNC), 100);
    assert_true(job_state_timeout_ms(JOB_ST_DETECT) > 0);
    assert_int_equal(job_state_retries(JOB_ST_DATA), 2); /* 3 sends in total, as esptool */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_table),
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_no_sync),
        cmocka_unit_test(test_app_text_is_wrong_boot_mode),
        cmocka_unit_test(test_nak_keeps_command_and_status),
        cmocka_unit_test(test_dropped_reply_is_retried),
        cmocka_unit_test(test_banner_mid_write_is_brownout),
        cmocka_unit_test(test_port_vanishes),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_wrong_chip),
        cmocka_unit_test(test_image_beyond_flash),
        cmocka_unit_test(test_data_nak_is_sent_again),
        cmocka_unit_test(test_dropped_register_reply_restarts_sequence),
        cmocka_unit_test(test_big_text_burst_while_connecting),
        cmocka_unit_test(test_rom_cannot_reach_beyond_16mb),
        cmocka_unit_test(test_prepared_image_is_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
