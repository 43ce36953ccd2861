/* SPDX-License-Identifier: MIT */
/* test_regprog.c — register programs (docs/PROTOCOL.md §16): the pure interpreter
 * (jobs/proto/regprog.c) step by step, the chip table's programs, and the job's one runner
 * (jobs/job_regprog.c) against a scripted register device behind the job's I/O interface: the
 * happy path, a dropped reply whose late copy must not be credited to the next register, a
 * device that never answers, a poll that never matches, and a refused request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "chip.h"
#include "cmd.h"
#include "job_int.h"
#include "regprog.h"
#include "slip.h"

/* ---- the interpreter ---- */

static void expect_req(const rp_run_t *r, rp_req_kind_t kind, uint32_t addr, uint32_t value)
{
    rp_req_t q = rp_next(r);
    assert_int_equal(q.kind, kind);
    assert_int_equal(q.addr, addr);
    if (kind == RP_REQ_WRITE) assert_int_equal(q.value, value);
}

static void test_interpreter_steps(void **state)
{
    rp_prog_t p;
    rp_run_t r;
    (void)state;
    rp_init(&p);
    assert_true(rp_read(&p, 0x100, 0)); /* save */
    assert_true(rp_write(&p, 0x104, 0xAB));
    assert_true(rp_modify(&p, 0x108, 0xF0, 0x05)); /* (old & ~0xF0) | 0x05 */
    assert_true(rp_poll(&p, 0x10C, 0x4, 0, 3, 2)); /* until bit 2 clears, <= 3 reads */
    assert_true(rp_write_slot(&p, 0x100, 0));      /* restore */
    assert_int_equal(rp_start(&r, &p), RP_CONTINUE);
    expect_req(&r, RP_REQ_READ, 0x100, 0);
    assert_int_equal(rp_reply(&r, 0x1234), RP_CONTINUE);
    expect_req(&r, RP_REQ_WRITE, 0x104, 0xAB);
    expect_req(&r, RP_REQ_WRITE, 0x104, 0xAB); /* pure: asking again gives the same request */
    assert_int_equal(rp_reply(&r, 0xDEAD), RP_CONTINUE); /* a write's value is ignored */
    expect_req(&r, RP_REQ_READ, 0x108, 0);
    assert_int_equal(rp_reply(&r, 0xFFFF), RP_CONTINUE);
    expect_req(&r, RP_REQ_WRITE, 0x108, 0xFF0F | 0x05);
    assert_int_equal(rp_reply(&r, 0), RP_CONTINUE);
    expect_req(&r, RP_REQ_READ, 0x10C, 0);
    assert_int_equal(rp_reply(&r, 0x4), RP_CONTINUE); /* still busy */
    expect_req(&r, RP_REQ_READ, 0x10C, 0);
    assert_int_equal(rp_reply(&r, 0x3), RP_CONTINUE); /* done: bit 2 clear */
    assert_int_equal(r.slots[2], 0x3);
    expect_req(&r, RP_REQ_WRITE, 0x100, 0x1234);
    assert_int_equal(rp_reply(&r, 0), RP_DONE);
    assert_int_equal(rp_next(&r).kind, RP_REQ_NONE);
    assert_int_equal(rp_reply(&r, 0), RP_BAD); /* nothing outstanding */
    assert_int_equal(r.requests, 7);
    /* restart: from the top, slots cleared */
    assert_int_equal(rp_start(&r, &p), RP_CONTINUE);
    assert_int_equal(r.slots[0], 0);
    expect_req(&r, RP_REQ_READ, 0x100, 0);
}

static void test_interpreter_poll_limit_and_bad_programs(void **state)
{
    rp_prog_t p;
    rp_run_t r;
    (void)state;
    rp_init(&p);
    rp_poll(&p, 0x200, 0x1, 0, 4, RP_NO_SLOT);
    assert_int_equal(rp_start(&r, &p), RP_CONTINUE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rp_reply(&r, 1), RP_CONTINUE);
    assert_int_equal(rp_reply(&r, 1), RP_POLL_LIMIT); /* the 4th read still busy */
    /* the default limit */
    rp_init(&p);
    rp_poll(&p, 0x200, 0x1, 0, 0, RP_NO_SLOT);
    rp_start(&r, &p);
    for (int i = 0; i < RP_POLL_DEFAULT - 1; i++)
        assert_int_equal(rp_reply(&r, 1), RP_CONTINUE);
    assert_int_equal(rp_reply(&r, 1), RP_POLL_LIMIT);
    /* a poll for a value, not only a cleared mask */
    rp_init(&p);
    rp_poll(&p, 0x200, 0xF0, 0x30, 5, 0);
    rp_start(&r, &p);
    assert_int_equal(rp_reply(&r, 0x20), RP_CONTINUE);
    assert_int_equal(rp_reply(&r, 0x3F), RP_DONE);
    /* overflow and bad slots are refused at start; an empty program is done at once */
    rp_init(&p);
    for (int i = 0; i < RP_MAX_INSNS; i++)
        assert_true(rp_write(&p, 0x300, (uint32_t)i));
    assert_false(rp_write(&p, 0x300, 99));
    assert_int_equal(rp_start(&r, &p), RP_BAD);
    rp_init(&p);
    rp_read(&p, 0x300, RP_MAX_SLOTS);
    assert_int_equal(rp_start(&r, &p), RP_BAD);
    rp_init(&p);
    rp_write_slot(&p, 0x300, RP_NO_SLOT);
    assert_int_equal(rp_start(&r, &p), RP_BAD);
    rp_init(&p);
    assert_int_equal(rp_start(&r, &p), RP_DONE);
}

/* The shape of the later eFuse burn (docs/PROTOCOL.md §16): write N program-data registers, write
 * the command register, poll until its bit clears, read back M registers. */
static void test_interpreter_efuse_burn_shape(void **state)
{
    rp_prog_t p;
    rp_run_t r;
    (void)state;
    rp_init(&p);
    for (uint32_t i = 0; i < 11; i++)
        assert_true(rp_write(&p, 0x6000 + 4 * i, 0x11111111u * (i % 16)));
    assert_true(rp_write(&p, 0x6100, 0x5A5A0002));
    assert_true(rp_poll(&p, 0x6100, 0x2, 0, 50, RP_NO_SLOT));
    for (uint8_t i = 0; i < 8; i++)
        assert_true(rp_read(&p, 0x6200 + 4u * i, i));
    assert_int_equal(p.n, 21);
    assert_int_equal(rp_start(&r, &p), RP_CONTINUE);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(rp_next(&r).kind, RP_REQ_WRITE);
        assert_int_equal(rp_reply(&r, 0), RP_CONTINUE);
    }
    assert_int_equal(rp_reply(&r, 2), RP_CONTINUE); /* burning */
    assert_int_equal(rp_reply(&r, 0), RP_CONTINUE); /* done */
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(rp_reply(&r, 0xA0 + i), i == 7 ? RP_DONE : RP_CONTINUE);
    assert_int_equal(r.slots[7], 0xA7);
}

/* ---- the chip table's programs ---- */

static void test_chip_programs(void **state)
{
    rp_prog_t p;
    uint32_t slots[RP_MAX_SLOTS] = {0};
    uint64_t corr[2];
    (void)state;
    /* the SPI user command keeps the chip_spi_cmd_steps order: save, save, ..., poll, result,
     * restore, restore */
    assert_true(chip_prog_spi_cmd(chip_get(CHIP_ESP32), 0x9F, 24, &p));
    assert_int_equal(p.insn[0].op, RP_READ);
    assert_int_equal(p.insn[p.n - 4].op, RP_POLL);
    assert_int_equal(p.insn[p.n - 3].op, RP_READ);
    assert_int_equal(p.insn[p.n - 3].slot, CHIP_RP_SPI_RESULT);
    assert_int_equal(p.insn[p.n - 1].op, RP_WRITE_SLOT);
    /* watchdogs: the super watchdog's auto-feed bit is a read-modify-write (OR) */
    assert_true(chip_prog_wdt_disable(chip_get(CHIP_ESP32C3), &p));
    assert_int_equal(p.n, 6);
    assert_int_equal(p.insn[4].op, RP_MODIFY);
    assert_int_equal(p.insn[4].mask, 0);
    assert_int_equal(p.insn[4].value, 1u << 31);
    assert_false(chip_prog_wdt_disable(chip_get(CHIP_ESP32), &p));
    /* MAC + revision in one program, in their slot ranges */
    assert_true(chip_prog_identify(chip_get(CHIP_ESP32), &p));
    assert_int_equal(p.n, 5);
    assert_int_equal(p.insn[2].slot, CHIP_RP_REV);
    /* formulas are hooks of the table: only the chips that need them have them */
    assert_true(chip_prog_attach(chip_get(CHIP_ESP32), &p));
    assert_false(chip_prog_attach(chip_get(CHIP_ESP32S3), &p));
    slots[0] = 6 | 7 << 5; /* clk 6, q 7 */
    assert_int_equal(chip_attach_config(chip_get(CHIP_ESP32), slots), 7u << 6 | 6);
    assert_true(chip_prog_clock(chip_get(CHIP_ESP32C2), &p));
    assert_false(chip_prog_clock(chip_get(CHIP_ESP32S3), &p));
    slots[0] = 26000000 / 115200; /* UART_CLKDIV of a 26 MHz crystal at 115200 */
    chip_clock_correction(chip_get(CHIP_ESP32C2), slots, 115200, corr);
    assert_int_equal(corr[0], 40);
    assert_int_equal(corr[1], 26);
    chip_clock_correction(chip_get(CHIP_ESP32C3), slots, 115200, corr);
    assert_int_equal(corr[0], 1);
    assert_int_equal(corr[1], 1);
    assert_true(chip_prog_rom_eco(chip_get(CHIP_ESP32C5), &p));
    assert_false(chip_prog_rom_eco(chip_get(CHIP_ESP32S3), &p));
    assert_true(chip_addr32_ok(chip_get(CHIP_ESP32S3), true, false, 0));
    assert_false(chip_addr32_ok(chip_get(CHIP_ESP32S3), false, false, 0));
    assert_false(chip_addr32_ok(chip_get(CHIP_ESP32C5), true, true, 1));
    assert_true(chip_addr32_ok(chip_get(CHIP_ESP32C5), true, true, 2));
    assert_non_null(chip_stub_exclusion(chip_get(CHIP_ESP32C2), 0, false));
    assert_null(chip_stub_exclusion(chip_get(CHIP_ESP32C2), 100, false));
    assert_non_null(chip_stub_exclusion(chip_get(CHIP_ESP32S3), 0, true));
    assert_null(chip_stub_exclusion(chip_get(CHIP_ESP32), 0, true));
}

/* ---- the runner, against a register device behind job_io_t ---- */

#define DEV_REGS 8
static struct {
    uv_loop_t loop;
    uv_timer_t deliver, late;
    job_t *job;
    plan_t plan;
    slip_dec_t dec;
    uint8_t decbuf[512];
    uint8_t out[4096];
    size_t out_len;
    uint8_t late_buf[64];
    size_t late_len;
    uint32_t reg_addr[DEV_REGS], reg_val[DEV_REGS];
    unsigned busy_polls; /* reads of 0x10C answered "busy" before it clears */
    bool always_busy;    /* 0x10C never clears */
    bool silent;         /* never answer */
    int drop_nth;        /* hold back the reply to this request (1-based) and send it late */
    bool nak_writes;     /* refuse WRITE_REG */
    unsigned requests, reads_10c, flushes;
    uint32_t writes[16][2];
    unsigned n_writes;
    bool done_called;
    job_rp_result_t res;
    uint32_t slots[RP_MAX_SLOTS];
    job_report_t rep;
    bool finished;
} D;

static uint32_t dev_get(uint32_t a)
{
    for (int i = 0; i < DEV_REGS; i++)
        if (D.reg_addr[i] == a) return D.reg_val[i];
    return 0;
}

static void dev_set(uint32_t a, uint32_t v)
{
    for (int i = 0; i < DEV_REGS; i++)
        if (D.reg_addr[i] == a || D.reg_addr[i] == 0) {
            D.reg_addr[i] = a;
            D.reg_val[i] = v;
            return;
        }
}

/* A ROM response (4 status bytes), SLIP-encoded into `out`. */
static size_t dev_frame(uint8_t *out, size_t cap, uint8_t op, uint32_t value, uint8_t status)
{
    uint8_t r[12] = {1, op, 4, 0};
    cmd_put_le32(r + 4, value);
    r[8] = status;
    r[9] = status ? 5 : 0;
    r[10] = r[11] = 0;
    return slip_encode(out, cap, r, sizeof r);
}

static void dev_request(void *ud, const uint8_t *f, size_t n)
{
    uint8_t op = f[1];
    uint32_t addr = cmd_get_le32(f + 8), value = 0, st = 0;
    uint8_t *dst = D.out + D.out_len;
    size_t cap = sizeof D.out - D.out_len, e;
    (void)ud;
    assert_true(n >= 12 && f[0] == 0);
    D.requests++;
    if (op == CMD_READ_REG) {
        value = dev_get(addr);
        if (addr == 0x10C) {
            D.reads_10c++;
            value = D.always_busy || D.reads_10c <= D.busy_polls ? 0x4 : 0x0;
        }
    } else {
        assert_int_equal(op, CMD_WRITE_REG);
        if (D.nak_writes) {
            st = 1;
        } else {
            dev_set(addr, cmd_get_le32(f + 12));
            D.writes[D.n_writes][0] = addr;
            D.writes[D.n_writes++][1] = cmd_get_le32(f + 12);
        }
    }
    if (D.silent) return;
    if ((int)D.requests == D.drop_nth) { /* answered only after the job gave up waiting */
        D.late_len = dev_frame(D.late_buf, sizeof D.late_buf, op, value, (uint8_t)st);
        return;
    }
    e = dev_frame(dst, cap, op, value, (uint8_t)st);
    D.out_len += e;
}

static void deliver_cb(uv_timer_t *t)
{
    (void)t;
    if (D.out_len && D.job) {
        uint8_t buf[sizeof D.out];
        size_t n = D.out_len;
        memcpy(buf, D.out, n);
        D.out_len = 0;
        job_io_read(D.job, buf, n);
    }
}

static void late_cb(uv_timer_t *t)
{
    (void)t;
    if (D.late_len && D.job) job_io_read(D.job, D.late_buf, D.late_len);
    D.late_len = 0;
}

static int dev_write(job_t *j, const uint8_t *buf, size_t n)
{
    (void)j;
    slip_dec_feed(&D.dec, buf, n, dev_request, NULL);
    if (D.late_len) uv_timer_start(&D.late, late_cb, 150, 0); /* after the 100 ms timeout */
    return 0;
}

static int dev_open(job_t *j, const char *spec, uint32_t baud)
{
    (void)j, (void)spec, (void)baud;
    return 0;
}
static int dev_lines(job_t *j, int dtr, int rts)
{
    (void)j, (void)dtr, (void)rts;
    return 0;
}
static int dev_baud(job_t *j, uint32_t b)
{
    (void)j, (void)b;
    return 0;
}
static void dev_flush(job_t *j)
{
    (void)j;
    D.flushes++;
}
static void dev_close(job_t *j)
{
    (void)j;
}

static const job_io_t dev_io = {dev_open,  dev_write, dev_lines, dev_baud,
                                dev_flush, dev_close, NULL};

static void done_cb(job_t *j, const job_report_t *r)
{
    (void)j;
    D.rep = *r;
    D.finished = true;
    uv_timer_stop(&D.deliver);
    uv_close((uv_handle_t *)&D.deliver, NULL);
    uv_close((uv_handle_t *)&D.late, NULL);
}

static const job_cbs_t cbs = {.done_cb = done_cb};

static void setup(void)
{
    memset(&D, 0, sizeof D);
    uv_loop_init(&D.loop);
    uv_timer_init(&D.loop, &D.deliver);
    uv_timer_init(&D.loop, &D.late);
    uv_timer_start(&D.deliver, deliver_cb, 1, 1);
    slip_dec_init(&D.dec, D.decbuf, sizeof D.decbuf);
    plan_init(&D.plan);
    D.job = job_new(&D.loop, "dev", &D.plan, &cbs, &dev_io, NULL);
    assert_non_null(D.job);
    D.job->started = true; /* driven directly, without the states before */
    D.job->chip = chip_get(CHIP_ESP32);
    D.job->status_len = 4;
}

static void prog_done(job_t *j, job_rp_result_t res)
{
    D.done_called = true;
    D.res = res;
    memcpy(D.slots, j->rp.run.slots, sizeof D.slots);
    job_cancel(j); /* finish the job: closing, done */
}

/* Run `p` with a 100 ms reply timeout and one restart; the job finishes after it. */
static void run(const rp_prog_t *p)
{
    D.job->rp.prog = *p;
    job_rp_start_ex(D.job, "test registers", 100, 1, prog_done);
    uv_run(&D.loop, UV_RUN_DEFAULT);
    assert_true(D.finished);
    job_free(D.job);
    assert_int_equal(uv_loop_close(&D.loop), 0);
}

static void sample(rp_prog_t *p)
{
    rp_init(p);
    rp_read(p, 0x100, 0);
    rp_read(p, 0x104, 1);
    rp_modify(p, 0x108, 0, 0x80);
    rp_poll(p, 0x10C, 0x4, 0, 5, RP_NO_SLOT);
    rp_read(p, 0x110, 2);
}

static void dev_values(void)
{
    dev_set(0x100, 0x11111111);
    dev_set(0x104, 0x22222222);
    dev_set(0x108, 0x03);
    dev_set(0x110, 0x33333333);
}

static void test_runner_happy_path(void **state)
{
    rp_prog_t p;
    (void)state;
    setup();
    dev_values();
    D.busy_polls = 2;
    sample(&p);
    run(&p);
    assert_true(D.done_called);
    assert_int_equal(D.res, JOB_RP_DONE);
    assert_int_equal(D.slots[0], 0x11111111);
    assert_int_equal(D.slots[1], 0x22222222);
    assert_int_equal(D.slots[2], 0x33333333);
    assert_int_equal(D.n_writes, 1);
    assert_int_equal(D.writes[0][1], 0x83); /* read, OR, write */
    assert_int_equal(D.reads_10c, 3);
    assert_int_equal(D.requests, 2 + 2 + 3 + 1);
    assert_int_equal(D.rep.retries, 0);
    assert_int_equal(D.rep.error_class, EST_CLASS_CANCELLED);
}

/* The reply to the second read is lost and arrives late, after the timeout: the runner must not
 * re-send that one read (the late reply would be taken for the next register): it waits the
 * late reply out, drops the input, and runs the whole program again. */
static void test_runner_late_reply_restarts_program(void **state)
{
    rp_prog_t p;
    (void)state;
    setup();
    dev_values();
    D.drop_nth = 2;
    sample(&p);
    run(&p);
    assert_true(D.done_called);
    assert_int_equal(D.res, JOB_RP_DONE);
    assert_int_equal(D.slots[0], 0x11111111);
    assert_int_equal(D.slots[1], 0x22222222); /* not the late copy of another register */
    assert_int_equal(D.slots[2], 0x33333333);
    assert_int_equal(D.rep.retries, 1);
    assert_true(D.flushes >= 1);
    assert_int_equal(D.requests, 2 + 6); /* two lost, then the whole program again */
}

/* A device that never answers: one restart, then the job fails with timeout. */
static void test_runner_timeout_fails(void **state)
{
    rp_prog_t p;
    (void)state;
    setup();
    D.silent = true;
    sample(&p);
    run(&p);
    assert_false(D.done_called);
    assert_int_equal(D.rep.result, JOB_RESULT_FAIL);
    assert_int_equal(D.rep.error_class, EST_CLASS_TIMEOUT);
    assert_non_null(strstr(D.rep.message, "no reply to READ_REG (test registers) within 100 ms"));
    assert_int_equal(D.requests, 2); /* the first read, then once more after the restart */
    assert_int_equal(D.rep.retries, 1);
}

/* A poll that never matches ends the program with JOB_RP_POLL_LIMIT after exactly its limit. */
static void test_runner_poll_never_matches(void **state)
{
    rp_prog_t p;
    (void)state;
    setup();
    dev_values();
    D.always_busy = true;
    sample(&p);
    run(&p);
    assert_true(D.done_called);
    assert_int_equal(D.res, JOB_RP_POLL_LIMIT);
    assert_int_equal(D.reads_10c, 5);
}

/* A refused request ends the program with JOB_RP_NAK and the reply kept for the message. */
static void test_runner_nak(void **state)
{
    rp_prog_t p;
    (void)state;
    setup();
    dev_values();
    D.nak_writes = true;
    sample(&p);
    run(&p);
    assert_true(D.done_called);
    assert_int_equal(D.res, JOB_RP_NAK);
    assert_int_equal(D.requests, 4); /* read, read, read of the modify, its refused write */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interpreter_steps),
        cmocka_unit_test(test_interpreter_poll_limit_and_bad_programs),
        cmocka_unit_test(test_interpreter_efuse_burn_shape),
        cmocka_unit_test(test_chip_programs),
        cmocka_unit_test(test_runner_happy_path),
        cmocka_unit_test(test_runner_late_reply_restarts_program),
        cmocka_unit_test(test_runner_timeout_fails),
        cmocka_unit_test(test_runner_poll_never_matches),
        cmocka_unit_test(test_runner_nak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
