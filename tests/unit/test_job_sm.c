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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cmd.h"
#include "job.h"
#include "job_int.h"
#include "slip.h"
#include "stub.h"

#define FAKE_FLASH (4u * 1024 * 1024)

typedef struct fake_s {
    uv_loop_t loop;
    uv_timer_t deliver;
    job_t *job;
    slip_dec_t dec;
    uint8_t decbuf[0x5000];
    uint8_t out[65536];
    size_t out_len;
    /* device model: an ESP32 with 4 MB of flash (content kept), ROM or stub loader */
    uint32_t spi_w0, spi_cmd;
    bool silent;         /* never answer */
    bool app_text;       /* print application text instead of answering */
    uint8_t nak_op;      /* NAK this opcode with ROM error 6 */
    int drop_data_reply; /* drop the reply to this FLASH_DEFL_DATA seq once (-1 none) */
    int banner_at_seq;   /* print a ROM banner after this data seq (-1 none) */
    int vanish_at_seq;   /* report a port error at this data seq (-1 none) */
    int cancel_at_seq;   /* cancel the job at this data seq (-1 none) */
    int nak_data_seq;    /* NAK this data seq once with a checksum error (-1 none) */
    bool nak_data_again; /* ... and once more (the next time that seq comes) */
    int stub_err_seq;    /* stub: answer this data seq with a deferred write error (-1 none) */
    bool drop_mac1_once; /* drop the first reply to READ_REG of the second MAC word */
    bool big_burst;      /* one 6000-byte burst of text while connecting */
    uint32_t jedec;      /* W0 answer of the JEDEC command */
    bool lines;          /* the port drives DTR/RTS (an RTS release resets the chip) */
    bool no_ohai;        /* a "stub" that never greets */
    bool end_error;      /* stub: FLASH_DEFL_END reports a deferred write error (0xC4) */
    bool sync_first_zero;  /* ROM: the first reply to each SYNC carries value 0, the rest not */
    const char *app_print; /* printed when the chip boots its application (EN up, boot pin high) */
    bool in_app;           /* the application runs: nothing answers requests */
    int dtr;
    uint32_t max_baud;   /* the link fails above this rate (0: any rate works) */
    chip_id_t chip;      /* which chip the fake is (default ESP32; see fake_chips) */
    uint32_t rev_word;   /* the revision eFuse word where the chip has one (C5, P4) */
    uint32_t uart_no;    /* the ROM's UARTDEV_BUF_NO value (0 = UART0) */
    uint32_t usb_block;  /* native USB-OTG: blocks larger than this are refused (0 = any) */
    uint32_t peek_addr, peek_val; /* one more register with a value (0 = none) */
    uint32_t rom_eco;             /* ESP32-C5: the ROM's _rom_eco_version word (0x40000014) */
    bool port_fixed_rate;         /* the port cannot change the device's line rate (raw TCP) */
    uint32_t port_max;            /* the host port refuses rates above this (0: any) */
    uint32_t cali, ck8m;          /* ESP32 ROM clock-correction inputs (PROTOCOL.md §9) */
    /* state */
    bool stub_on;
    uint32_t chip_baud; /* 0 = auto-baud pending (after reset) */
    uint32_t host_baud;
    int rts;
    uint8_t flash[FAKE_FLASH];
    z_stream zs;
    bool zs_on;
    uint32_t wr_ptr, wr_left;
    uint32_t rd_off, rd_len, rd_sent; /* READ_FLASH in progress */
    bool rd_on;
    /* observations */
    job_state_t path[64];
    size_t n_path;
    const job_report_t *rep;
    bool done;
    unsigned syncs;
    bool closed;
    unsigned mem_ends, ohais, mem_bytes, attaches, erases, md5s;
    uint32_t max_mem_block; /* largest MEM_DATA payload */
    struct {
        uint32_t addr, value;
    } wr[64]; /* WRITE_REG requests outside the SPI controller, in order */
    unsigned n_wr;
    uint32_t max_block;                      /* largest FLASH_(DEFL_)DATA payload */
    uint32_t defl_size;                      /* size word of the last FLASH_DEFL_BEGIN */
    uint32_t begin_len;                      /* data length of the last FLASH_(DEFL_)BEGIN */
    uint32_t begin_tmo_ms, erase_tmo_ms;     /* the job's reply timeouts for them / ERASE_* */
    uint32_t baud_new, baud_old;             /* last CHANGE_BAUDRATE words */
    uint32_t baud_first_new, baud_first_old; /* first CHANGE_BAUDRATE words */
    unsigned baud_changes;
    unsigned ends; /* FLASH_(DEFL_)END requests */
    unsigned begins; /* FLASH_(DEFL_)BEGIN requests */
    uint32_t end_flag;
    char log[4096];
} fake_t;

static fake_t F;

/* ---- fake device ---- */

static void fake_queue(const uint8_t *raw, size_t n)
{
    size_t e = slip_encode(F.out + F.out_len, sizeof F.out - F.out_len, raw, n);
    assert_true(e > 0);
    F.out_len += e;
}

/* Response: header, output, status (ROM: 4 bytes, stub: 2 bytes, PROTOCOL.md §3.5) */
static void fake_reply(uint8_t op, uint32_t value, const uint8_t *o, size_t on, uint8_t st,
                       uint8_t er)
{
    uint8_t r[128];
    size_t sl = F.stub_on ? 2 : 4, dl = on + sl;
    assert_true(8 + dl <= sizeof r);
    r[0] = 1;
    r[1] = op;
    cmd_put_le16(r + 2, (uint16_t)dl);
    cmd_put_le32(r + 4, value);
    if (on) memcpy(r + 8, o, on);
    memset(r + 8 + on, 0, sl);
    r[8 + on] = st;
    r[9 + on] = er;
    fake_queue(r, 8 + dl);
}

/* The chips the fake can be, with the facts a job reads from them, restated from the protocol
 * reference and esptool's target classes (not taken from jobs/proto/chip.c). */
typedef struct fake_chip_s {
    chip_id_t id;
    uint32_t magic;
    int secinfo_id; /* GET_SECURITY_INFO chip ID; -1: the ROM lacks the command; 0 with
                     * short: the ESP32-S2's 12-byte form */
    bool short_secinfo;
    uint32_t mac0;     /* address of the first MAC word (the second follows) */
    uint32_t spi, w0;  /* SPI controller base and W0 offset (CMD at +0) */
    uint32_t rev_addr; /* the revision word the fake answers with rev_word (0 none) */
} fake_chip_t;

static const fake_chip_t fake_chips[] = {
    {CHIP_ESP32, 0x00F01D83, -1, false, 0x3FF5A004, 0x3FF42000, 0x80, 0},
    {CHIP_ESP32S2, 0x000007C6, 0, true, 0x3F41A044, 0x3F402000, 0x58, 0},
    {CHIP_ESP32S3, 0x00000009, 9, false, 0x60007044, 0x60002000, 0x58, 0},
    {CHIP_ESP32C3, 0x1B31506F, 5, false, 0x60008844, 0x60002000, 0x58, 0},
    {CHIP_ESP32C6, 0x2CE0806F, 13, false, 0x600B0844, 0x60003000, 0x58, 0},
    {CHIP_ESP32H2, 0xD7B73E80, 16, false, 0x600B0844, 0x60003000, 0x58, 0},
    {CHIP_ESP32C5, 0x1101406F, 23, false, 0x600B4844, 0x60003000, 0x58, 0x600B484C},
    {CHIP_ESP32P4, 0, 18, false, 0x5012D044, 0x5008D000, 0x58, 0x5012D04C},
};

static const fake_chip_t *fake_chip(void)
{
    for (size_t i = 0; i < sizeof fake_chips / sizeof fake_chips[0]; i++)
        if (fake_chips[i].id == F.chip) return &fake_chips[i];
    fail_msg("the fake cannot be chip %d", (int)F.chip);
    return NULL;
}

/* Where this chip's ROM keeps the console number (esptool UARTDEV_BUF_NO; P4 by revision). */
static uint32_t fake_buf_no_addr(void)
{
    switch (F.chip) {
    case CHIP_ESP32S2: return 0x3FFFFD14;
    case CHIP_ESP32S3: return 0x3FCEF14C;
    case CHIP_ESP32C3: return 0x3FCDF07C;
    case CHIP_ESP32C6: return 0x4087F580;
    case CHIP_ESP32H2: return 0x4084FEFC;
    case CHIP_ESP32C5: return 0x4085F51C;
    case CHIP_ESP32P4: /* major = bits 5:4 of the revision word: v3.x and later moved it */
        return ((F.rev_word >> 4) & 3) >= 3 ? 0x4FFBFEC8 : 0x4FF3FEC8;
    default: return 0;
    }
}

static uint32_t fake_read_reg(uint32_t a)
{
    const fake_chip_t *c = fake_chip();
    if (a == 0x40001000) return c->magic;
    if (a == c->mac0) return 0x12345678;                                     /* mac0 */
    if (a == c->mac0 + 4) return F.chip == CHIP_ESP32 ? 0x00AB0024 : 0x0024; /* → 00:24:12:… */
    if (a == c->spi) return F.spi_cmd;
    if (a == c->spi + c->w0) return F.spi_w0;
    if (c->rev_addr && a == c->rev_addr) return F.rev_word;
    if (a == fake_buf_no_addr()) return 0xAB00u | F.uart_no; /* only the low byte counts */
    if (F.peek_addr && a == F.peek_addr) return F.peek_val;
    if (F.chip == CHIP_ESP32C5 && a == 0x40000014) return F.rom_eco;
    if (F.chip == CHIP_ESP32 && a == 0x3FF5F06C) return F.cali << 7; /* RTC calibration */
    if (F.chip == CHIP_ESP32 && a == 0x3FF5A010) return F.ck8m;      /* eFuse word 4 */
    return 0;
}

static void fake_md5(uint32_t off, uint32_t n, uint8_t out[16])
{
    unsigned int ml = 16;
    off %= FAKE_FLASH; /* a bigger part's upper address bits are not modelled: wrap */
    assert_true((uint64_t)off + n <= FAKE_FLASH);
    EVP_Digest(F.flash + off, n, out, &ml, EVP_md5(), NULL);
}

static void fake_write_flash(const uint8_t *d, size_t n)
{
    if (n > F.wr_left) n = F.wr_left;
    memcpy(F.flash + F.wr_ptr, d, n);
    F.wr_ptr += (uint32_t)n;
    F.wr_left -= (uint32_t)n;
}

static void fake_inflate(const uint8_t *d, size_t n)
{
    uint8_t buf[16384];
    F.zs.next_in = (uint8_t *)d;
    F.zs.avail_in = (uInt)n;
    for (;;) {
        int zr;
        F.zs.next_out = buf;
        F.zs.avail_out = sizeof buf;
        zr = inflate(&F.zs, Z_NO_FLUSH);
        fake_write_flash(buf, sizeof buf - F.zs.avail_out);
        if (zr != Z_OK || (F.zs.avail_in == 0 && F.zs.avail_out != 0)) break;
    }
}

static void fake_read_packet(void)
{
    uint32_t n = F.rd_len - F.rd_sent < 0x1000 ? F.rd_len - F.rd_sent : 0x1000;
    fake_queue(F.flash + F.rd_off + F.rd_sent, n);
    F.rd_sent += n;
}

static void fake_request(void *ud, const uint8_t *f, size_t n)
{
    uint8_t op;
    (void)ud;
    if (F.silent || F.in_app) return;
    /* the link: both ends at one rate, and not above what the wire can do */
    if (F.chip_baud && (F.chip_baud != F.host_baud || (F.max_baud && F.chip_baud > F.max_baud)))
        return;
    if (F.rd_on && n == 4) { /* READ_FLASH acknowledgement: total received (PROTOCOL.md §4.6) */
        uint32_t got = cmd_get_le32(f);
        assert_int_equal(got, F.rd_sent);
        if (F.rd_sent < F.rd_len) {
            fake_read_packet();
        } else {
            uint8_t md5[16];
            fake_md5(F.rd_off, F.rd_len, md5);
            fake_queue(md5, 16);
            F.rd_on = false;
        }
        return;
    }
    if (n < 8 || f[0] != 0) return;
    op = f[1];
    if (!F.chip_baud) {
        if (op != CMD_SYNC) return; /* the ROM has not auto-bauded yet */
        F.chip_baud = F.host_baud;
    }
    if (op == F.nak_op) {
        fake_reply(op, 0, NULL, 0, 1, 6);
        return;
    }
    switch (op) {
    case CMD_SYNC:
        F.syncs++;
        for (int i = 0; i < 8; i++)
            fake_reply(op, F.stub_on || (F.sync_first_zero && i == 0) ? 0 : 0x20120707, NULL, 0, 0,
                       0);
        return;
    case CMD_GET_SECURITY_INFO: {
        const fake_chip_t *c = fake_chip();
        uint8_t info[20];
        if (c->secinfo_id < 0) {
            if (F.stub_on)
                fake_reply(op, 0, NULL, 0, 0xFF, 0); /* the ESP32 stub has no such command */
            else
                fake_reply(op, 0, NULL, 0, 1, 5); /* ESP32 ROM: unsupported */
            return;
        }
        memset(info, 0, sizeof info); /* flags 0: no Secure Boot, no SDM */
        cmd_put_le32(info + 12, (uint32_t)c->secinfo_id);
        fake_reply(op, 0, info, c->short_secinfo ? 12 : 20, 0, 0);
        return;
    }
    case CMD_READ_REG:
        if (F.drop_mac1_once && cmd_get_le32(f + 8) == 0x3FF5A008) {
            F.drop_mac1_once = false;
            return;
        }
        fake_reply(op, fake_read_reg(cmd_get_le32(f + 8)), NULL, 0, 0, 0);
        return;
    case CMD_WRITE_REG: {
        const fake_chip_t *c = fake_chip();
        uint32_t a = cmd_get_le32(f + 8), v = cmd_get_le32(f + 12);
        if (a == c->spi && (v & (1u << 18)))
            F.spi_w0 = F.jedec; /* the command completes at once */
        else if (a == c->spi + c->w0)
            F.spi_w0 = v;
        else if ((a < c->spi || a >= c->spi + 0x100) && F.n_wr < 64) {
            F.wr[F.n_wr].addr = a;
            F.wr[F.n_wr].value = v;
            F.n_wr++;
        }
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    }
    case CMD_MEM_BEGIN: fake_reply(op, 0, NULL, 0, 0, 0); return;
    case CMD_MEM_DATA: {
        uint32_t len = cmd_get_le32(f + 8);
        if (len > F.max_mem_block) F.max_mem_block = len;
        assert_true(len <= 0x1800);
        if (F.usb_block && len > F.usb_block) { /* more than the USB-OTG buffer holds */
            fake_reply(op, 0, NULL, 0, F.stub_on ? 0xC0 : 1, F.stub_on ? 0 : 5);
            return;
        }
        F.mem_bytes += len;
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    }
    case CMD_MEM_END:
        F.mem_ends++;
        fake_reply(op, 0, NULL, 0, 0, 0);
        if (cmd_get_le32(f + 8) == 0 && !F.no_ohai) {
            F.stub_on = true;
            F.ohais++;
            fake_queue((const uint8_t *)"OHAI", 4);
        }
        return;
    case CMD_SPI_ATTACH:
        F.attaches++;
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    case CMD_CHANGE_BAUDRATE:
        F.baud_new = cmd_get_le32(f + 8);
        F.baud_old = cmd_get_le32(f + 12);
        if (F.baud_changes++ == 0) {
            F.baud_first_new = F.baud_new;
            F.baud_first_old = F.baud_old;
        }
        fake_reply(op, 0, NULL, 0, 0, 0); /* still at the old rate */
        F.chip_baud = F.baud_new;
        /* the test's rates are the ones the ROM really gets (its clock correction aside) */
        if (!F.stub_on && F.cali && F.ck8m)
            F.chip_baud = (uint32_t)((uint64_t)F.baud_new * 40000000 /
                                     ((uint64_t)F.cali * 15625 * F.ck8m / 40));
        return;
    case CMD_FLASH_DEFL_BEGIN:
    case CMD_FLASH_BEGIN:
        F.begin_len = (uint32_t)(n - 8);
        F.begins++;
        F.begin_tmo_ms = F.job->req_timeout_ms; /* set before the request was written */
        /* The legacy stub takes exactly 16 bytes: `error = verify_data_len(command, 16) ||
         * handle_flash_begin(...)` refuses 20 with status 1 (the `||` turns 0xC0 into 1). The
         * ESP32 ROM has no 5th word either; S2 and later ROMs need it (PROTOCOL.md §4.2). */
        if (F.begin_len != (F.stub_on || F.chip == CHIP_ESP32 ? 16u : 20u)) {
            fake_reply(op, 0, NULL, 0, 1, F.stub_on ? 0 : 5);
            return;
        }
        F.defl_size = cmd_get_le32(f + 8);
        F.wr_ptr = cmd_get_le32(f + 20) % FAKE_FLASH;
        F.wr_left = F.stub_on ? F.defl_size : FAKE_FLASH - F.wr_ptr;
        if (op == CMD_FLASH_DEFL_BEGIN) {
            if (F.zs_on) inflateEnd(&F.zs);
            memset(&F.zs, 0, sizeof F.zs);
            assert_int_equal(inflateInit(&F.zs), Z_OK);
            F.zs_on = true;
        }
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    case CMD_FLASH_END:
    case CMD_FLASH_DEFL_END:
        F.ends++;
        F.end_flag = cmd_get_le32(f + 8);
        if (F.end_error)
            fake_reply(op, 0, NULL, 0, 0xC4, 0);
        else
            fake_reply(op, 0, NULL, 0, 0, 0);
        return;
    case CMD_FLASH_DATA:
    case CMD_FLASH_DEFL_DATA: {
        int seq = (int)cmd_get_le32(f + 8 + 4);
        uint32_t len = cmd_get_le32(f + 8);
        if (len > F.max_block) F.max_block = len;
        if (F.usb_block && len > F.usb_block) {
            fake_reply(op, 0, NULL, 0, F.stub_on ? 0xC0 : 1, F.stub_on ? 0 : 5);
            return;
        }
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
            F.nak_data_seq = F.nak_data_again ? seq : -1;
            F.nak_data_again = false;
            fake_reply(op, 0, NULL, 0, F.stub_on ? 0xC1 : 1, F.stub_on ? 0 : 7); /* checksum */
            return;
        }
        if (seq == F.drop_data_reply) {
            F.drop_data_reply = -1;
            return;
        }
        if (seq == F.stub_err_seq) {
            F.stub_err_seq = -1;
            fake_reply(op, 0, NULL, 0, 0xC7, 0); /* inflate error of the block before */
            return;
        }
        if (op == CMD_FLASH_DEFL_DATA)
            fake_inflate(f + 8 + 16, len);
        else
            fake_write_flash(f + 8 + 16, len);
        fake_reply(op, 0, NULL, 0, 0, 0);
        if (seq == F.banner_at_seq) {
            static const char b[] = "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET)";
            memcpy(F.out + F.out_len, b, sizeof b - 1);
            F.out_len += sizeof b - 1;
        }
        return;
    }
    case CMD_SPI_FLASH_MD5: {
        uint8_t md5[16];
        char hex[33];
        F.md5s++;
        fake_md5(cmd_get_le32(f + 8), cmd_get_le32(f + 12), md5);
        if (F.stub_on) {
            fake_reply(op, 0, md5, 16, 0, 0);
            return;
        }
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", md5[i]);
        fake_reply(op, 0, (const uint8_t *)hex, 32, 0, 0);
        return;
    }
    case CMD_READ_FLASH_SLOW: {
        uint8_t d[64];
        uint32_t off = cmd_get_le32(f + 8), len = cmd_get_le32(f + 12);
        assert_true(len <= 64);
        memset(d, 0, sizeof d);
        memcpy(d, F.flash + off, len);
        fake_reply(op, 0, d, 64, 0, 0);
        return;
    }
    case CMD_READ_FLASH:
        if (!F.stub_on) {
            fake_reply(op, 0, NULL, 0, 1, 5);
            return;
        }
        F.rd_off = cmd_get_le32(f + 8);
        F.rd_len = cmd_get_le32(f + 12);
        F.rd_sent = 0;
        F.rd_on = true;
        fake_reply(op, 0, NULL, 0, 0, 0);
        fake_read_packet();
        return;
    case CMD_ERASE_FLASH:
    case CMD_ERASE_REGION:
        if (!F.stub_on) {
            fake_reply(op, 0, NULL, 0, 1, 5);
            return;
        }
        F.erases++;
        F.erase_tmo_ms = F.job->req_timeout_ms;
        if (op == CMD_ERASE_FLASH)
            memset(F.flash, 0xFF, FAKE_FLASH);
        else
            memset(F.flash + cmd_get_le32(f + 8), 0xFF, cmd_get_le32(f + 12));
        fake_reply(op, 0, NULL, 0, 0, 0);
        return;
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
    F.host_baud = baud;
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
    if (!F.lines) return UV_ENOTSUP; /* like a pty: no reset */
    if (dtr >= 0) F.dtr = dtr;       /* DTR drives the boot pin (GPIO0 low while asserted) */
    if (rts == 0 && F.rts == 1) {
        /* EN released: the boot pin low boots the ROM loader, which auto-bauds again; high
         * boots the application, which prints the ROM log and then its own output */
        F.stub_on = false;
        F.chip_baud = 0;
        F.rd_on = false;
        F.in_app = F.dtr == 0;
        if (F.in_app && F.app_print) {
            static const char rom[] = "ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),"
                                      "boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n";
            size_t a = strlen(F.app_print);
            assert_true(F.out_len + sizeof rom + a < sizeof F.out);
            memcpy(F.out + F.out_len, rom, sizeof rom - 1);
            F.out_len += sizeof rom - 1;
            memcpy(F.out + F.out_len, F.app_print, a);
            F.out_len += a;
        }
    }
    if (rts >= 0) F.rts = rts;
    return 0;
}
static int fake_set_baud(job_t *j, uint32_t b)
{
    (void)j;
    if (F.port_max && b > F.port_max) return UV_EINVAL; /* the driver refuses the rate */
    if (!F.port_fixed_rate) F.host_baud = b; /* raw TCP: the far UART stays where it is */
    return 0;
}
static int fake_check_baud(job_t *j, uint32_t b)
{
    (void)j;
    if (F.port_fixed_rate) return UV_ENOTSUP;
    return F.port_max && b > F.port_max ? UV_EINVAL : 0;
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
static const job_io_t fake_io = {fake_open,  fake_write, fake_set_lines, fake_set_baud,
                                 fake_flush, fake_close, fake_check_baud};

/* ---- job callbacks ---- */

static void t_state_cb(job_t *j, job_state_t from, job_state_t to)
{
    (void)j;
    (void)from;
    if (F.n_path < 64) F.path[F.n_path++] = to;
}
static void t_done_cb(job_t *j, const job_report_t *r)
{
    (void)j;
    F.rep = r;
    F.done = true;
    uv_close((uv_handle_t *)&F.deliver, NULL);
}
static void t_log_cb(job_t *j, job_log_level_t lvl, const char *msg)
{
    size_t l = strlen(F.log);
    (void)j;
    (void)lvl;
    snprintf(F.log + l, sizeof F.log - l, "%s\n", msg);
}
static const job_cbs_t t_cbs = {.state_cb = t_state_cb, .log_cb = t_log_cb, .done_cb = t_done_cb};

/* ---- harness ---- */

static plan_t P;
#define IMG_LEN (64 * 1024 + 3)  /* not a multiple of 4: the job pads with 0xFF */
static uint8_t EXP[IMG_LEN + 1]; /* what the device must hold at 0x10000 */
static char stub_dir[64];        /* a temporary stub directory, "" when none */

static void setup_fake(void)
{
    memset(&F, 0, sizeof F);
    F.chip = CHIP_ESP32;
    F.drop_data_reply = F.banner_at_seq = F.vanish_at_seq = F.cancel_at_seq = -1;
    F.nak_data_seq = F.stub_err_seq = -1;
    F.jedec = 0x1640EF; /* EF 40 16: 4 MB */
    memset(F.flash, 0xFF, sizeof F.flash);
    uv_loop_init(&F.loop);
    slip_dec_init(&F.dec, F.decbuf, sizeof F.decbuf);
    uv_timer_init(&F.loop, &F.deliver);
    uv_timer_start(&F.deliver, fake_deliver_cb, 1, 1);

    plan_init(&P);
    size_t n = IMG_LEN;
    uint8_t *img = malloc(n);
    uint32_t x = 2463534242u; /* xorshift32: the first half does not compress */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        img[i] = (uint8_t)(i < n / 2 ? x >> 24 : i % 7);
    }
    memcpy(EXP, img, n);
    EXP[n] = 0xFF; /* padded to 4 with 0xFF */
    plan_err_t err;
    assert_int_equal(plan_add_image_mem(&P, 0x10000, "app.bin", img, n, &err), 0);
    assert_int_equal(plan_finish(&P, &err), 0);
}

/* The flash holds the image at 0x10000 and nothing else was written around it. */
static void assert_flash_has_image(void)
{
    assert_memory_equal(F.flash + 0x10000, EXP, sizeof EXP);
    assert_int_equal(F.flash[0x10000 - 1], 0xFF);
    assert_int_equal(F.flash[0x10000 + sizeof EXP], 0xFF);
}

/* A synthetic stub file (not firmware: the fake only checks the upload), esptool's format. */
static void write_stub(const char *dir, const char *name, const char *json)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

#define STUB_TEXT_LEN 7000 /* two MEM_DATA blocks */
#define STUB_DATA_LEN 300

static void make_stub_dir(void)
{
    static uint8_t text[STUB_TEXT_LEN], data[STUB_DATA_LEN];
    static char b64t[STUB_TEXT_LEN * 2], b64d[STUB_DATA_LEN * 2], json[STUB_TEXT_LEN * 2 + 1024];
    snprintf(stub_dir, sizeof stub_dir, "/tmp/estn-stub-XXXXXX");
    assert_non_null(mkdtemp(stub_dir));
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    EVP_EncodeBlock((unsigned char *)b64t, text, sizeof text);
    EVP_EncodeBlock((unsigned char *)b64d, data, sizeof data);
    snprintf(json, sizeof json,
             "{\"entry\": 1074520664, \"text\": \"%s\", \"text_start\": 1074520064, "
             "\"data\": \"%s\", \"data_start\": 1073605548, \"bss_start\": 1073606000}",
             b64t, b64d);
    /* the file the job looks for first: <chip>.json (ESP32-P4 below v3.00: esp32p4-rev1) */
    if (F.chip == CHIP_ESP32P4 && ((F.rev_word >> 4) & 3) < 3)
        write_stub(stub_dir, "esp32p4-rev1.json", json);
    else {
        char name[32];
        snprintf(name, sizeof name, "%s.json", chip_get(F.chip)->name);
        write_stub(stub_dir, name, json);
    }
    P.stub_dir = stub_dir;
}

static void remove_stub_dir(void)
{
    char cmd[128];
    if (!stub_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", stub_dir);
    assert_int_equal(system(cmd), 0);
    stub_dir[0] = 0;
    stub_cache_clear();
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
    if (F.zs_on) inflateEnd(&F.zs);
    remove_stub_dir();
}

/* Run a second job on the same fake device (its flash and loader state stay). */
static void run_again(void)
{
    job_free(F.job);
    F.done = false;
    F.closed = false;
    F.n_path = 0;
    F.log[0] = 0;
    uv_timer_init(&F.loop, &F.deliver); /* the first run's done_cb closed it */
    uv_timer_start(&F.deliver, fake_deliver_cb, 1, 1);
    run_job();
}

static bool path_has(job_state_t s)
{
    for (size_t i = 0; i < F.n_path; i++)
        if (F.path[i] == s) return true;
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
        JOB_ST_OPEN,    JOB_ST_RESET, JOB_ST_SYNC,   JOB_ST_DETECT,   JOB_ST_READ_EFUSE,
        JOB_ST_STUB,    JOB_ST_BAUD,  JOB_ST_ATTACH, JOB_ST_FLASH_ID, JOB_ST_PARAMS,
        JOB_ST_PREPARE, JOB_ST_BEGIN, JOB_ST_DATA,   JOB_ST_VERIFY,   JOB_ST_AFTER_RESET,
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
    /* ROM loader: 1 KiB blocks, size rounded up to 1 KiB, no END, SPI_ATTACH sent, 115200 */
    assert_false(F.rep->stub);
    assert_int_equal(F.max_block, 0x400);
    assert_int_equal(F.defl_size, (IMG_LEN + 1 + 0x3FF) & ~0x3FFu);
    assert_int_equal(F.ends, 0);
    assert_int_equal(F.attaches, 1);
    assert_int_equal(F.rep->baud, 115200);
    assert_int_equal(F.baud_changes, 0);
    assert_non_null(strstr(F.log, "no stub directory given"));
    assert_flash_has_image();
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
    /* refused after the MAC and revision are read, so the board can be traced (issue 15) */
    assert_int_equal(F.rep->failed_state, JOB_ST_READ_EFUSE);
    assert_true(F.rep->have_mac);
    assert_true(F.rep->have_rev);
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

/* ROM: a block refused for its checksum (0x07) has been counted by the ROM and cannot be sent
 * again; the image begins again from FLASH_DEFL_BEGIN, once (PROTOCOL.md §4.5.7). */
static void test_rom_checksum_nak_begins_image_again(void **state)
{
    (void)state;
    setup_fake();
    F.nak_data_seq = 2;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->retries, 1);
    assert_int_equal(F.begins, 2);
    assert_int_equal(F.rep->bytes_written, IMG_LEN + 1); /* not counted twice */
    assert_non_null(strstr(F.log, "beginning the image at 0x10000 again"));
    assert_flash_has_image();
    teardown_fake();
}

static void test_rom_checksum_nak_twice_fails(void **state)
{
    (void)state;
    setup_fake();
    F.nak_data_seq = 2;
    F.nak_data_again = true;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_NAK);
    assert_int_equal(F.rep->failed_state, JOB_ST_DATA);
    assert_int_equal(F.rep->nak_code, 0x0107);
    assert_int_equal(F.begins, 2);
    assert_non_null(strstr(F.rep->message, "refused again after beginning the image anew"));
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

/* ESP32-C5 with the legacy stub: flash above 16 MB only when the ROM's ECO version is 2 or
 * later (the stub turns its 32-bit mode on only then); ECO 1 keeps the 16 MB limit. */
static void test_c5_above_16mb_needs_rom_eco2(void **state)
{
    (void)state;
    for (uint32_t eco = 1; eco <= 2; eco++) {
        setup_fake();
        F.chip = CHIP_ESP32C5;
        F.rom_eco = eco;
        F.jedec = 0x1940EF; /* 32 MB */
        make_stub_dir();
        P.images[0].offset = 0x1000000;
        run_job();
        assert_int_equal(F.rep->flash_size, 32 * 1024 * 1024);
        if (eco == 1) {
            assert_int_equal(F.rep->error_class, EST_CLASS_BAD_OFFSET);
            assert_int_equal(F.rep->failed_state, JOB_ST_PARAMS);
            assert_non_null(strstr(F.log, "ECO below 2"));
            assert_false(path_has(JOB_ST_BEGIN));
        } else {
            assert_int_equal(F.rep->result, JOB_RESULT_PASS);
            assert_true(F.rep->images[0].verified);
            assert_memory_equal(F.flash, EXP, sizeof EXP); /* 16 MB wraps onto 0 in the fake */
        }
        teardown_fake();
    }
}

static void test_prepared_image_is_shared(void **state)
{
    (void)state;
    setup_fake();
    uint64_t before = job_prep_count();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(job_prep_count(), before + 1);
    /* a second board with the same plan: the deflated image is reused, not made again */
    run_again();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->images[0].verified);
    assert_int_equal(job_prep_count(), before + 1);
    teardown_fake();
}

/* The image's chip and revision range is checked by the job (not part of the shared
 * preparation's key): an ESP32 image for v3.0 and later is refused on this v0.0 chip. */
static void test_image_revision_checked(void **state)
{
    (void)state;
    setup_fake();
    plan_free(&P);
    plan_init(&P);
    uint8_t *im = calloc(1, 64);
    im[0] = 0xE9;           /* magic, 0 segments */
    im[8 + 4] = 0;          /* extended header: chip ID 0 = ESP32 */
    im[8 + 7] = 300 & 0xFF; /* min_rev_full v3.00 */
    im[8 + 8] = 300 >> 8;
    im[8 + 9] = im[8 + 10] = 0xFF; /* max_rev_full: any */
    im[31] = 0xEF;                 /* checksum of no segment data */
    plan_err_t err;
    assert_int_equal(plan_add_image_mem(&P, 0x20000, "newer.bin", im, 64, &err), 0);
    assert_int_equal(plan_finish(&P, &err), 0);
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_WRONG_CHIP);
    assert_int_equal(F.rep->failed_state, JOB_ST_PREPARE);
    assert_non_null(strstr(F.rep->message, "minimum revision"));
    assert_false(path_has(JOB_ST_BEGIN));
    teardown_fake();
}

/* ---- the flasher stub (PROTOCOL.md §8) ---- */

static void test_stub_path(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    /* both segments uploaded in MEM_DATA blocks, one MEM_END, one OHAI */
    assert_int_equal(F.mem_bytes, STUB_TEXT_LEN + STUB_DATA_LEN);
    assert_int_equal(F.mem_ends, 1);
    assert_int_equal(F.ohais, 1);
    assert_true(path_has(JOB_ST_STUB));
    /* stub behaviour: no SPI_ATTACH, exact size, 16 KiB blocks, END(1) as barrier, raw MD5,
     * FLASH_DEFL_BEGIN without the 5th word (the legacy stub refuses 20 bytes) */
    assert_int_equal(F.begin_len, 16);
    assert_int_equal(F.attaches, 0);
    assert_int_equal(F.defl_size, IMG_LEN + 1);
    assert_int_equal(F.max_block, 0x4000);
    assert_int_equal(F.ends, 1);
    assert_int_equal(F.end_flag, 1);
    assert_int_equal(F.md5s, 1);
    assert_true(F.rep->images[0].verified);
    assert_flash_has_image();
    teardown_fake();
}

static void test_stub_deferred_error_at_end(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.end_error = true; /* the last block failed to write: reported at FLASH_DEFL_END */
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_FAIL);
    assert_int_equal(F.rep->error_class, EST_CLASS_NAK);
    assert_int_equal(F.rep->failed_state, JOB_ST_DATA);
    assert_int_equal(F.rep->nak_op, CMD_FLASH_DEFL_END);
    assert_int_equal(F.rep->nak_code, 0xC400);
    assert_non_null(strstr(F.rep->message, "writing the image failed"));
    assert_false(path_has(JOB_ST_VERIFY));
    teardown_fake();
}

static void test_stub_deferred_error_mid_write(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.stub_err_seq = 1; /* block 0 failed to inflate: the answer to block 1 says so */
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_NAK);
    assert_int_equal(F.rep->nak_code, 0xC700);
    assert_int_equal(F.rep->retries, 0); /* not a transfer error: not sent again */
    assert_non_null(strstr(F.rep->message, "earlier block"));
    teardown_fake();
}

static void test_stub_checksum_error_is_sent_again(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.nak_data_seq = 1; /* 0xC1: this block arrived damaged */
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->retries, 1);
    assert_flash_has_image();
    teardown_fake();
}

static void test_stub_no_ohai(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.no_ohai = true;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_STUB_FAILED);
    assert_int_equal(F.rep->failed_state, JOB_ST_STUB);
    assert_non_null(strstr(F.rep->message, "OHAI"));
    teardown_fake();
}

static void test_stub_dir_without_this_chip(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    char from[128], to[128];
    snprintf(from, sizeof from, "%s/esp32.json", stub_dir);
    snprintf(to, sizeof to, "%s/esp32c3.json", stub_dir);
    assert_int_equal(rename(from, to), 0);
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_false(F.rep->stub);
    assert_int_equal(F.mem_ends, 0);
    assert_non_null(strstr(F.log, "no stub for ESP32 in"));
    assert_flash_has_image();
    teardown_fake();
}

static void test_stub_file_malformed(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    write_stub(stub_dir, "esp32.json",
               "{\"entry\": 1, \"text\": \"not base64!\", \"text_start\": 0}");
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_STUB_FAILED);
    assert_int_equal(F.rep->failed_state, JOB_ST_STUB);
    assert_non_null(strstr(F.rep->message, "esp32.json"));
    assert_non_null(strstr(F.rep->message, "\"text\""));
    assert_int_equal(F.mem_ends, 0);
    teardown_fake();
}

static void test_stub_file_for_other_chip(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    char file[128], other[128];
    snprintf(file, sizeof file, "%s/esp32.json", stub_dir);
    snprintf(other, sizeof other, "%s/stub_flasher_32c3.json", stub_dir);
    assert_int_equal(rename(file, other), 0);
    P.stub_dir = NULL;
    P.stub_file = other;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_STUB_FAILED);
    assert_non_null(strstr(F.rep->message, "ESP32-C3"));
    teardown_fake();
}

/* A recipe's stub file for the pre-v3.00 ESP32-P4 on a v3.1 chip: refused by name, before the
 * upload (it would load at the wrong RAM addresses and never say OHAI). */
static void test_stub_file_for_other_p4_revision(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32P4;
    F.rev_word = 0x31;
    make_stub_dir();
    char file[128], other[128];
    snprintf(file, sizeof file, "%s/esp32p4.json", stub_dir);
    snprintf(other, sizeof other, "%s/esp32p4rc1.json", stub_dir);
    assert_int_equal(rename(file, other), 0);
    P.stub_dir = NULL;
    P.stub_file = other;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_STUB_FAILED);
    assert_non_null(strstr(F.rep->message, "below v3.00"));
    assert_int_equal(F.mem_ends, 0);
    teardown_fake();
}

static void test_no_stub_option(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    P.stub = false;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_false(F.rep->stub);
    assert_int_equal(F.mem_ends, 0);
    assert_int_equal(F.max_block, 0x400);
    assert_non_null(strstr(F.log, "switched off"));
    teardown_fake();
}

static void test_stub_already_running(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.stub_on = true; /* an earlier job left it running (--after no_reset) */
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.mem_ends, 0); /* SYNC value 0: not uploaded again */
    assert_int_equal(F.max_block, 0x4000);
    assert_flash_has_image();
    teardown_fake();
}

/* ---- the ROM's console port: native USB-OTG (PROTOCOL.md §4.3) ---- */

/* ESP32-S3 over USB-OTG (UARTDEV_BUF_NO == 3): the stub upload and the stub's writes in
 * 0x800-byte blocks; the fake refuses anything bigger, as the ROM's USB buffer would. */
static void test_usb_otg_s3_stub(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32S3;
    F.uart_no = 3;
    F.usb_block = 0x800;
    make_stub_dir();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->chip->id, CHIP_ESP32S3);
    assert_true(F.rep->stub);
    assert_int_equal(F.max_mem_block, 0x800);
    assert_int_equal(F.max_block, 0x800);
    assert_int_equal(F.mem_bytes, STUB_TEXT_LEN + STUB_DATA_LEN);
    assert_non_null(strstr(F.log, "USB-OTG"));
    assert_flash_has_image();
    teardown_fake();
}

/* The same chip on a UART (value 0, the fake's default) keeps the normal sizes. */
static void test_usb_uart_s3_normal_blocks(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32S3;
    make_stub_dir();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.max_mem_block, 0x1800);
    assert_int_equal(F.max_block, 0x4000);
    assert_null(strstr(F.log, "USB-OTG"));
    teardown_fake();
}

/* ESP32-S2 (value 2) in ROM mode: 1 KiB flash blocks as always; detected and logged. */
static void test_usb_otg_s2_rom(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32S2;
    F.uart_no = 2;
    F.usb_block = 0x800;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->chip->id, CHIP_ESP32S2);
    assert_false(F.rep->stub);
    assert_int_equal(F.max_block, 0x400);
    assert_non_null(strstr(F.log, "USB-OTG"));
    assert_flash_has_image();
    teardown_fake();
}

/* ESP32-P4 (value 5): the variable moved at v3.00; both revisions are found where they are. */
static void test_usb_otg_p4_by_revision(void **state)
{
    static const uint32_t revs[] = {0x10, 0x31}; /* v1.0, v3.1 */
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        setup_fake();
        F.chip = CHIP_ESP32P4;
        F.rev_word = revs[i];
        F.uart_no = 5;
        F.usb_block = 0x800;
        make_stub_dir();
        run_job();
        assert_int_equal(F.rep->result, JOB_RESULT_PASS);
        assert_int_equal(F.rep->chip_rev, i == 0 ? 100 : 301);
        assert_true(F.rep->stub);
        assert_int_equal(F.max_mem_block, 0x800);
        assert_int_equal(F.max_block, 0x800);
        assert_flash_has_image();
        teardown_fake();
    }
}

/* ---- USB-Serial/JTAG: the watchdogs in ROM mode (PROTOCOL.md §14.10) ---- */

static void assert_writes(const uint32_t (*want)[2], unsigned n)
{
    assert_int_equal(F.n_wr, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(F.wr[i].addr, want[i][0]);
        assert_int_equal(F.wr[i].value, want[i][1]);
    }
}

/* ESP32-C3 on USB-Serial/JTAG (UARTDEV_BUF_NO == 3): esptool's disable_watchdogs() sequence on
 * the RTC_CNTL registers, the super watchdog's auto-feed bit ORed into what the register held. */
static void test_usb_jtag_watchdogs_c3(void **state)
{
    static const uint32_t want[][2] = {{0x600080A8, 0x50D83AA1}, {0x60008090, 0},
                                       {0x600080A8, 0},          {0x600080B0, 0x8F1D312A},
                                       {0x600080AC, 0x80000012}, {0x600080B0, 0}};
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32C3;
    F.uart_no = 3;
    F.peek_addr = 0x600080AC; /* SWD_CONF holds other bits */
    F.peek_val = 0x12;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_writes(want, 6);
    assert_non_null(strstr(F.log, "USB-Serial/JTAG"));
    assert_flash_has_image();
    teardown_fake();
}

/* ESP32-H2's LP_WDT registers sit one word further than the C6's; ESP32-P4 v3.x answers 6 at its
 * moved UARTDEV_BUF_NO. */
static void test_usb_jtag_watchdogs_h2_p4(void **state)
{
    static const uint32_t h2[][2] = {{0x600B1C1C, 0x50D83AA1}, {0x600B1C00, 0},
                                     {0x600B1C1C, 0},          {0x600B1C24, 0x50D83AA1},
                                     {0x600B1C20, 1u << 18},   {0x600B1C24, 0}};
    static const uint32_t p4[][2] = {{0x50116018, 0x50D83AA1}, {0x50116000, 0},
                                     {0x50116018, 0},          {0x50116020, 0x50D83AA1},
                                     {0x5011601C, 1u << 18},   {0x50116020, 0}};
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32H2;
    F.uart_no = 3;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_writes(h2, 6);
    teardown_fake();
    setup_fake();
    F.chip = CHIP_ESP32P4;
    F.rev_word = 0x30; /* v3.0 */
    F.uart_no = 6;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_writes(p4, 6);
    teardown_fake();
}

/* Not on a UART, and not when a stub already runs (it disabled them; esptool skips it then). */
static void test_no_watchdog_writes_on_uart_or_running_stub(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32C3;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.n_wr, 0);
    teardown_fake();
    setup_fake();
    F.chip = CHIP_ESP32C3;
    F.uart_no = 3;
    F.stub_on = true;
    make_stub_dir();
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.mem_ends, 0);
    assert_int_equal(F.n_wr, 0);
    teardown_fake();
}

/* "Stub already running" needs value 0 in every reply to the successful SYNC (esptool's
 * sync_stub_detected), not just the first: here the ROM answers, so the stub is uploaded. */
static void test_sync_stub_detection_uses_all_replies(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.sync_first_zero = true;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.mem_ends, 1); /* uploaded: not taken for a running stub */
    assert_null(strstr(F.log, "already running"));
    assert_flash_has_image();
    teardown_fake();
}

/* ---- CHANGE_BAUDRATE (PROTOCOL.md §9) ---- */

static void test_baud_rom(void **state)
{
    (void)state;
    setup_fake();
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.baud_first_new, 921600);
    assert_int_equal(F.baud_first_old, 0); /* ROM form */
    assert_int_equal(F.rep->baud, 921600);
    assert_flash_has_image();
    /* no reset possible (pty-like port): the loader is set back to the connect rate so that
     * the next job can sync */
    assert_int_equal(F.baud_changes, 2);
    assert_int_equal(F.baud_new, 115200);
    assert_int_equal(F.chip_baud, 115200);
    assert_int_equal(F.host_baud, 115200);
    run_again();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    teardown_fake();
}

static void test_baud_stub(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.baud_first_new, 921600);
    assert_int_equal(F.baud_first_old, 115200); /* stub form: the rate in use */
    assert_int_equal(F.rep->baud, 921600);
    assert_true(path_has(JOB_ST_BAUD));
    /* back to 115200 (stub form again: second word 921600), and the next job finds the stub
     * running at the connect rate */
    assert_int_equal(F.baud_new, 115200);
    assert_int_equal(F.baud_old, 921600);
    unsigned mem_ends = F.mem_ends;
    run_again();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.mem_ends, mem_ends);
    teardown_fake();
}

static void test_baud_esp32_rom_clock_correction(void **state)
{
    (void)state;
    setup_fake();
    F.cali = 1000;
    F.ck8m = 100; /* ROM clock 1000 * 15625 * 100 / 40 = 39.0625 MHz, taken for 40 MHz */
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.baud_first_new, 900000); /* 921600 * 39062500 / 40000000 */
    assert_int_equal(F.baud_new, 112500);       /* and back: 115200 corrected the same way */
    assert_int_equal(F.chip_baud, 115200);
    assert_int_equal(F.rep->baud, 921600);
    teardown_fake();
}

static void test_baud_fallback(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.lines = true;
    F.max_baud = 460800; /* the cable cannot do 921600 */
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->baud, 460800);
    assert_int_equal(F.rep->baud_fallbacks, 1);
    assert_true(F.rep->stub);
    assert_int_equal(F.mem_ends, 2); /* the reset lost the stub: uploaded again */
    assert_int_equal(F.baud_changes, 2);
    assert_non_null(strstr(F.log, "go on at 460800 baud"));
    assert_flash_has_image();
    teardown_fake();
}

static void test_baud_fallback_to_sync_rate(void **state)
{
    (void)state;
    setup_fake();
    F.lines = true;
    F.max_baud = 115200;
    P.flash_baud = 230400;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.rep->baud, 115200);
    assert_int_equal(F.rep->baud_fallbacks, 1);
    assert_int_equal(F.baud_changes, 1);
    assert_flash_has_image();
    teardown_fake();
}

/* Raw TCP (ser2net raw, a terminal server's TCP mode): the far UART cannot follow, so no
 * CHANGE_BAUDRATE is sent at all and the job stays at the connect rate. */
static void test_baud_port_cannot_change_rate(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.port_fixed_rate = true;
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.baud_changes, 0);
    assert_int_equal(F.rep->baud, 115200);
    assert_int_equal(F.rep->baud_fallbacks, 0);
    assert_non_null(strstr(F.log, "fake://dut cannot change its line rate: staying at 115200"));
    assert_flash_has_image();
    teardown_fake();
}

/* The host port does not take 921600: the chip is never told that rate; the next lower rate the
 * port takes is used, without a reset or a fallback. */
static void test_baud_port_refuses_rate(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.port_max = 460800;
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.baud_first_new, 460800);
    assert_int_equal(F.rep->baud, 460800);
    assert_int_equal(F.rep->baud_fallbacks, 0);
    assert_non_null(strstr(F.log, "does not take 921600 baud: using 460800"));
    assert_flash_has_image();
    teardown_fake();
}

static void test_baud_fails_without_reset_lines(void **state)
{
    (void)state;
    setup_fake();
    F.max_baud = 460800;
    P.flash_baud = 921600;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_TIMEOUT);
    assert_int_equal(F.rep->failed_state, JOB_ST_BAUD);
    assert_non_null(strstr(F.rep->message, "cannot reset"));
    teardown_fake();
}

/* ---- the post-flash test (recipe "test") ---- */

static void test_post_flash_test_passes(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    F.lines = true;
    F.app_print = "I (29) boot: ESP-IDF\r\n\x01I (300) app: station ready\r\n";
    P.flash_baud = 921600;
    P.test = true;
    P.test_expect = "station ready";
    P.test_timeout_ms = 2000;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(path_has(JOB_ST_TEST));
    assert_int_equal(F.path[F.n_path - 3], JOB_ST_TEST); /* after AFTER_RESET, then CLOSING */
    assert_int_equal(F.path[F.n_path - 4], JOB_ST_AFTER_RESET);
    assert_true(F.rep->test_ran);
    assert_true(F.rep->test_passed);
    assert_int_equal(F.host_baud, 115200); /* the port went to the test's rate */
    /* the output is kept (CR dropped, a control byte shown as '.') and logged */
    assert_non_null(strstr(F.rep->test_output, "rst:0x1 (POWERON_RESET)"));
    assert_non_null(strstr(F.rep->test_output, "\n.I (300) app: station ready\n"));
    assert_int_equal(F.rep->test_output_len, strlen(F.rep->test_output));
    assert_non_null(strstr(F.log, "test passed"));
    assert_non_null(strstr(F.log, "application output after the reset"));
    assert_flash_has_image();
    teardown_fake();
}

static void test_post_flash_test_fails(void **state)
{
    (void)state;
    setup_fake();
    F.lines = true;
    F.app_print = "I (300) app: sensor not found\r\n";
    P.test = true;
    P.test_expect = "station ready";
    P.test_timeout_ms = 300;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_FAIL);
    assert_int_equal(F.rep->error_class, EST_CLASS_TEST_FAILED);
    assert_int_equal(F.rep->failed_state, JOB_ST_TEST);
    assert_non_null(strstr(F.rep->message, "\"station ready\""));
    assert_non_null(strstr(F.rep->message, "300 ms"));
    assert_true(F.rep->test_ran);
    assert_false(F.rep->test_passed);
    assert_non_null(strstr(F.rep->test_output, "sensor not found"));
    assert_non_null(strstr(F.log, "sensor not found")); /* the log line carries the output */
    assert_true(F.rep->images[0].verified); /* flashed and verified: only the test failed */
    assert_flash_has_image();
    teardown_fake();
}

/* The test needs the board reset into its application: refused before anything is written when
 * the job is told not to reset, or the port cannot drive RTS. */
static void test_post_flash_test_needs_reset(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        setup_fake();
        F.lines = k == 0; /* k 1: a pty-like port */
        if (k == 0) P.after = PLAN_AFTER_NO_RESET;
        P.test = true;
        P.test_expect = "station ready";
        run_job();
        assert_int_equal(F.rep->error_class, EST_CLASS_USAGE);
        assert_int_equal(F.rep->failed_state, JOB_ST_PARAMS);
        assert_non_null(strstr(F.rep->message, k == 0 ? "no_reset" : "cannot drive RTS"));
        assert_false(path_has(JOB_ST_BEGIN));
        assert_false(F.rep->test_ran);
        teardown_fake();
    }
}

/* ---- skip, read, erase ---- */

static void test_skip_unchanged(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    P.skip_unchanged = true;
    run_job(); /* blank flash: compared, then written */
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(path_has(JOB_ST_COMPARE));
    assert_true(path_has(JOB_ST_BEGIN));
    assert_false(F.rep->images[0].skipped);
    unsigned ends = F.ends;
    run_again(); /* the same image again: nothing written */
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->images[0].skipped);
    assert_true(F.rep->images[0].verified);
    assert_false(path_has(JOB_ST_BEGIN));
    assert_int_equal(F.ends, ends);
    assert_non_null(strstr(F.log, "skipped"));
    F.flash[0x10000 + 5000] ^= 1; /* one bit differs: written again */
    run_again();
    assert_false(F.rep->images[0].skipped);
    assert_true(path_has(JOB_ST_BEGIN));
    assert_flash_has_image();
    teardown_fake();
}

static uint8_t RD[0x30000];
static size_t rd_len;
static int t_data_cb(job_t *j, uint32_t off, const uint8_t *buf, size_t n)
{
    (void)j;
    assert_int_equal(off, P.op_offset + rd_len);
    assert_true(rd_len + n <= sizeof RD);
    memcpy(RD + rd_len, buf, n);
    rd_len += n;
    return 0;
}
static const job_cbs_t t_read_cbs = {
    .state_cb = t_state_cb, .log_cb = t_log_cb, .done_cb = t_done_cb, .data_cb = t_data_cb};

static void run_read(void)
{
    rd_len = 0;
    for (size_t i = 0; i < 0x40000; i++)
        F.flash[0x20000 + i] = (uint8_t)(i * 31 + (i >> 9));
    F.job = job_new(&F.loop, "fake://dut", &P, &t_read_cbs, &fake_io, NULL);
    assert_int_equal(job_start(F.job), 0);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_true(F.done);
}

static void test_read_flash_stub(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    P.op = PLAN_OP_READ;
    P.op_offset = 0x21000;
    P.op_size = 0x12345; /* the last packet is short */
    run_read();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(rd_len, P.op_size);
    assert_memory_equal(RD, F.flash + P.op_offset, P.op_size);
    uint8_t md5[16];
    fake_md5(P.op_offset, P.op_size, md5);
    assert_memory_equal(F.rep->read_md5, md5, 16);
    assert_false(path_has(JOB_ST_PREPARE));
    teardown_fake();
}

static void test_read_flash_rom(void **state)
{
    (void)state;
    setup_fake();
    P.op = PLAN_OP_READ;
    P.op_offset = 0x20010;
    P.op_size = 1000; /* 16 READ_FLASH_SLOW commands, the last one partial */
    run_read();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_false(F.rep->stub);
    assert_int_equal(rd_len, 1000);
    assert_memory_equal(RD, F.flash + P.op_offset, 1000);
    assert_int_equal(F.md5s, 1); /* checked against the ROM's MD5 */
    teardown_fake();
}

static void test_erase_region_and_all(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    memset(F.flash, 0x5A, 0x100000);
    P.op = PLAN_OP_ERASE;
    P.op_offset = 0x8000;
    P.op_size = 0x3000;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.erases, 1);
    assert_int_equal(F.flash[0x7FFF], 0x5A);
    assert_int_equal(F.flash[0x8000], 0xFF);
    assert_int_equal(F.flash[0xAFFF], 0xFF);
    assert_int_equal(F.flash[0xB000], 0x5A);
    P.erase_all = true;
    run_again();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.flash[0x7FFF], 0xFF);
    assert_int_equal(F.flash[0xFFFFF], 0xFF);
    teardown_fake();
}

static void test_erase_all_needs_stub(void **state)
{
    (void)state;
    setup_fake();
    P.op = PLAN_OP_ERASE;
    P.erase_all = true;
    run_job();
    assert_int_equal(F.rep->error_class, EST_CLASS_UNSUPPORTED);
    assert_int_equal(F.rep->failed_state, JOB_ST_ERASE);
    assert_non_null(strstr(F.rep->message, "stub"));
    teardown_fake();
}

static void test_erase_all_before_flash(void **state)
{
    (void)state;
    setup_fake();
    make_stub_dir();
    memset(F.flash, 0x00, 0x8000);
    P.erase_all = true; /* recipe "erase": "all" */
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.erases, 1);
    assert_int_equal(F.flash[0], 0xFF);
    assert_flash_has_image();
    teardown_fake();
}

/* Timeouts (PROTOCOL.md §4.4): the ROM erases at FLASH_DEFL_BEGIN, 40 s per 10^6 bytes (esptool
 * master's ERASE_REGION_TIMEOUT_PER_MB); ERASE_REGION the same; ERASE_FLASH at least 120 s,
 * scaled by the flash size at that rate, at most 240 s. */
static void test_erase_timeouts(void **state)
{
    (void)state;
    setup_fake();
    plan_free(&P);
    plan_init(&P);
    uint8_t *big = malloc(2u << 20); /* 2 MiB, compresses well: few ROM blocks */
    for (size_t i = 0; i < (2u << 20); i++)
        big[i] = (uint8_t)(i >> 12);
    plan_err_t err;
    assert_int_equal(plan_add_image_mem(&P, 0x100000, "big.bin", big, 2u << 20, &err), 0);
    assert_int_equal(plan_finish(&P, &err), 0);
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_false(F.rep->stub);
    assert_int_equal(F.begin_tmo_ms, 83886); /* 40 s × 2097152 / 10^6 (30 s/MB: 62914) */
    teardown_fake();

    static const struct {
        uint32_t jedec, want_ms;
    } parts[] = {{0x1540EF, 120000}, {0x1640EF, 167772}, {0x1840EF, 240000}}; /* 2, 4, 16 MB */
    for (size_t i = 0; i < 3; i++) {
        setup_fake();
        make_stub_dir();
        F.jedec = parts[i].jedec;
        P.op = PLAN_OP_ERASE;
        P.erase_all = true;
        run_job();
        assert_int_equal(F.rep->result, JOB_RESULT_PASS);
        assert_int_equal(F.erase_tmo_ms, parts[i].want_ms);
        teardown_fake();
    }
    setup_fake();
    make_stub_dir();
    P.op = PLAN_OP_ERASE;
    P.op_offset = 0x100000;
    P.op_size = 0x200000;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_int_equal(F.erase_tmo_ms, 83886);
    teardown_fake();
}

/* One deflate serves the ROM (1 KiB blocks) and the stub (16 KiB blocks). */
static void test_prepared_image_shared_rom_and_stub(void **state)
{
    (void)state;
    setup_fake();
    uint64_t before = job_prep_count();
    run_job(); /* ROM */
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    make_stub_dir();
    memset(F.flash, 0xFF, sizeof F.flash);
    run_again(); /* stub */
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_true(F.rep->stub);
    assert_int_equal(F.max_block, 0x4000);
    assert_int_equal(job_prep_count(), before + 1);
    assert_flash_has_image();
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

/* ---- security read-out (issue 17 part 1, docs/SECURITY-PROVISIONING.md §9) ---- */

/* A blank ESP32-C3: GET_SECURITY_INFO (20-byte form) and every eFuse block read, BLOCK0 first at
 * the controller's read registers (0x60008800 + 0x2C); the record says "not secured". */
static void test_security_blank_c3(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32C3;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_non_null(strstr(F.rep->security, "\"source\":\"secinfo+efuse\""));
    assert_non_null(strstr(F.rep->security, "\"flash_encryption\":false"));
    assert_non_null(strstr(F.rep->security, "\"secure_boot\":false"));
    assert_non_null(strstr(F.rep->security, "\"download_mode\":\"open\""));
    assert_non_null(strstr(F.rep->security, "\"block\":\"BLOCK_KEY5\",\"used\":false"));
    assert_non_null(strstr(F.log, "security: flash encryption off"));
    teardown_fake();
}

/* SPI_BOOT_CRYPT_CNT (BLOCK0 word 2 bits 18..20) with one bit set: encryption on, development
 * mode, read from the blocks although GET_SECURITY_INFO's counter byte says 0. */
static void test_security_encrypted_c3(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32C3;
    F.peek_addr = 0x60008834;
    F.peek_val = 1u << 18;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_non_null(strstr(F.rep->security, "\"flash_encryption\":true"));
    assert_non_null(strstr(F.rep->security, "\"flash_encryption_mode\":\"development\""));
    teardown_fake();
}

/* The ESP32 ROM refuses GET_SECURITY_INFO: the state comes from the blocks alone; ABS_DONE_1
 * (BLOCK0 word 6 bit 5, read at 0x3FF5A018) is Secure Boot v2 on. */
static void test_security_esp32_blocks_only(void **state)
{
    (void)state;
    setup_fake();
    F.peek_addr = 0x3FF5A018;
    F.peek_val = 1u << 5;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_non_null(strstr(F.rep->security, "\"source\":\"efuse\""));
    assert_non_null(strstr(F.rep->security, "\"secinfo\":null"));
    assert_non_null(strstr(F.rep->security, "\"secure_boot\":true"));
    assert_non_null(strstr(F.rep->security, "\"flash_encryption\":false"));
    teardown_fake();
}

/* A chip without an eFuse table (ESP32-H2): GET_SECURITY_INFO only, and the record says why. */
static void test_security_secinfo_only_h2(void **state)
{
    (void)state;
    setup_fake();
    F.chip = CHIP_ESP32H2;
    run_job();
    assert_int_equal(F.rep->result, JOB_RESULT_PASS);
    assert_non_null(strstr(F.rep->security, "\"source\":\"secinfo\""));
    assert_non_null(strstr(F.rep->security, "\"efuse_error\":\"this chip has no eFuse table"));
    teardown_fake();
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
        cmocka_unit_test(test_rom_checksum_nak_begins_image_again),
        cmocka_unit_test(test_rom_checksum_nak_twice_fails),
        cmocka_unit_test(test_dropped_register_reply_restarts_sequence),
        cmocka_unit_test(test_big_text_burst_while_connecting),
        cmocka_unit_test(test_rom_cannot_reach_beyond_16mb),
        cmocka_unit_test(test_c5_above_16mb_needs_rom_eco2),
        cmocka_unit_test(test_prepared_image_is_shared),
        cmocka_unit_test(test_image_revision_checked),
        cmocka_unit_test(test_stub_path),
        cmocka_unit_test(test_stub_deferred_error_at_end),
        cmocka_unit_test(test_stub_deferred_error_mid_write),
        cmocka_unit_test(test_stub_checksum_error_is_sent_again),
        cmocka_unit_test(test_stub_no_ohai),
        cmocka_unit_test(test_stub_dir_without_this_chip),
        cmocka_unit_test(test_stub_file_malformed),
        cmocka_unit_test(test_stub_file_for_other_chip),
        cmocka_unit_test(test_stub_file_for_other_p4_revision),
        cmocka_unit_test(test_no_stub_option),
        cmocka_unit_test(test_stub_already_running),
        cmocka_unit_test(test_sync_stub_detection_uses_all_replies),
        cmocka_unit_test(test_usb_otg_s3_stub),
        cmocka_unit_test(test_usb_uart_s3_normal_blocks),
        cmocka_unit_test(test_usb_otg_s2_rom),
        cmocka_unit_test(test_usb_otg_p4_by_revision),
        cmocka_unit_test(test_usb_jtag_watchdogs_c3),
        cmocka_unit_test(test_usb_jtag_watchdogs_h2_p4),
        cmocka_unit_test(test_security_blank_c3),
        cmocka_unit_test(test_security_encrypted_c3),
        cmocka_unit_test(test_security_esp32_blocks_only),
        cmocka_unit_test(test_security_secinfo_only_h2),
        cmocka_unit_test(test_no_watchdog_writes_on_uart_or_running_stub),
        cmocka_unit_test(test_baud_rom),
        cmocka_unit_test(test_baud_stub),
        cmocka_unit_test(test_baud_esp32_rom_clock_correction),
        cmocka_unit_test(test_baud_fallback),
        cmocka_unit_test(test_baud_fallback_to_sync_rate),
        cmocka_unit_test(test_baud_fails_without_reset_lines),
        cmocka_unit_test(test_baud_port_cannot_change_rate),
        cmocka_unit_test(test_baud_port_refuses_rate),
        cmocka_unit_test(test_post_flash_test_passes),
        cmocka_unit_test(test_post_flash_test_fails),
        cmocka_unit_test(test_post_flash_test_needs_reset),
        cmocka_unit_test(test_skip_unchanged),
        cmocka_unit_test(test_read_flash_stub),
        cmocka_unit_test(test_read_flash_rom),
        cmocka_unit_test(test_erase_region_and_all),
        cmocka_unit_test(test_erase_all_needs_stub),
        cmocka_unit_test(test_erase_all_before_flash),
        cmocka_unit_test(test_prepared_image_shared_rom_and_stub),
        cmocka_unit_test(test_erase_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
