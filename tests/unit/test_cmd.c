/* SPDX-License-Identifier: MIT */
/* test_cmd.c — unit tests of request building and response parsing (jobs/proto/cmd.c,
 * PROTOCOL.md §3–§4) and of the error texts (est_err.c). Byte vectors are written out by hand from
 * the reference tables. Must not: touch the network or the file system. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cmd.h"
#include "est_err.h"

static void test_sync_vector(void **state)
{
    (void)state;
    uint8_t exp[44] = {0x00, 0x08, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x07, 0x12, 0x20};
    memset(exp + 12, 0x55, 32);
    uint8_t out[64];
    assert_int_equal(cmd_build_sync(out, sizeof(out)), 44);
    assert_memory_equal(out, exp, 44);
    assert_int_equal(cmd_build_sync(out, 43), 0);
}

static void test_checksum(void **state)
{
    (void)state;
    const uint8_t a[] = {0xEF};
    const uint8_t b[] = {0x01, 0x02, 0x04};
    const uint8_t c[] = {0xFF, 0xFF};
    assert_int_equal(cmd_checksum(NULL, 0), 0xEF); /* seed only */
    assert_int_equal(cmd_checksum(a, 1), 0x00);
    assert_int_equal(cmd_checksum(b, 3), 0xE8); /* 0xEF ^ 0x07 */
    assert_int_equal(cmd_checksum(c, 2), 0xEF);
}

static void test_read_write_reg(void **state)
{
    (void)state;
    uint8_t out[64];
    const uint8_t rr[] = {0x00, 0x0A, 0x04, 0x00, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x40};
    assert_int_equal(cmd_build_read_reg(out, sizeof(out), 0x40001000), sizeof(rr));
    assert_memory_equal(out, rr, sizeof(rr));
    const uint8_t wr[] = {0x00, 0x09, 0x10, 0x00, 0,    0,    0,    0,    0x00, 0x20, 0x00, 0x60,
                          0x00, 0x00, 0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0A, 0,    0,    0};
    assert_int_equal(cmd_build_write_reg(out, sizeof(out), 0x60002000, 0x40000, 0xFFFFFFFF, 10),
                     sizeof(wr));
    assert_memory_equal(out, wr, sizeof(wr));
}

static void test_flash_begin_16_vs_20(void **state)
{
    (void)state;
    uint8_t out[64];
    /* ESP32 ROM: 16 bytes {size, blocks, block_size, offset}. */
    const uint8_t b16[] = {0x00, 0x02, 0x10, 0x00, 0, 0, 0, 0, 0x00, 0x50, 0x00, 0x00,
                           0x14, 0x00, 0x00, 0x00, 0, 4, 0, 0, 0x00, 0x10, 0x00, 0x00};
    assert_int_equal(
        cmd_build_begin(out, sizeof(out), CMD_FLASH_BEGIN, 0x5000, 20, 0x400, 0x1000, false, 0),
        sizeof(b16));
    assert_memory_equal(out, b16, sizeof(b16));
    /* S2+ ROM: 20 bytes with the `encrypted` word. */
    size_t n =
        cmd_build_begin(out, sizeof(out), CMD_FLASH_DEFL_BEGIN, 0x5000, 2, 0x400, 0x10000, true, 0);
    assert_int_equal(n, 28);
    assert_int_equal(out[1], 0x10);
    assert_int_equal(cmd_get_le16(out + 2), 20);
    assert_int_equal(cmd_get_le32(out + 8), 0x5000);
    assert_int_equal(cmd_get_le32(out + 12), 2);
    assert_int_equal(cmd_get_le32(out + 16), 0x400);
    assert_int_equal(cmd_get_le32(out + 20), 0x10000);
    assert_int_equal(cmd_get_le32(out + 24), 0);
    n = cmd_build_begin(out, sizeof(out), CMD_FLASH_BEGIN, 0, 0, 0x400, 0, true, 1);
    assert_int_equal(cmd_get_le32(out + 24), 1);
    /* MEM_BEGIN has no 5th word; unrelated opcodes are refused. */
    assert_int_equal(
        cmd_build_begin(out, sizeof(out), CMD_MEM_BEGIN, 1, 1, 0x1800, 0x40000000, true, 0), 0);
    assert_int_equal(
        cmd_build_begin(out, sizeof(out), CMD_MEM_BEGIN, 1, 1, 0x1800, 0x40000000, false, 0), 24);
    assert_int_equal(cmd_build_begin(out, sizeof(out), CMD_SYNC, 1, 1, 1, 1, false, 0), 0);
    assert_int_equal(cmd_build_begin(out, 27, CMD_FLASH_BEGIN, 1, 1, 1, 1, true, 0), 0);
}

static void test_spi_attach_8_vs_4(void **state)
{
    (void)state;
    uint8_t out[32];
    const uint8_t rom[] = {0x00, 0x0D, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t stub[] = {0x00, 0x0D, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(cmd_build_spi_attach(out, sizeof(out), 0, false), sizeof(rom));
    assert_memory_equal(out, rom, sizeof(rom));
    assert_int_equal(cmd_build_spi_attach(out, sizeof(out), 0, true), sizeof(stub));
    assert_memory_equal(out, stub, sizeof(stub));
    /* A pin configuration lands in the first word. */
    assert_int_equal(cmd_build_spi_attach(out, sizeof(out), 1, false), 16);
    assert_int_equal(cmd_get_le32(out + 8), 1);
    assert_int_equal(cmd_get_le32(out + 12), 0);
}

static void test_change_baud(void **state)
{
    (void)state;
    uint8_t out[32];
    /* ROM: {921600, 0}; stub: {921600, 115200} (PROTOCOL.md §9). 921600 = 0x000E1000, 115200 =
     * 0x0001C200. */
    const uint8_t rom[] = {0x00, 0x0F, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x10, 0x0E, 0x00, 0, 0, 0, 0};
    const uint8_t stub[] = {0x00, 0x0F, 0x08, 0x00, 0,    0,    0,    0,
                            0x00, 0x10, 0x0E, 0x00, 0x00, 0xC2, 0x01, 0x00};
    assert_int_equal(cmd_build_change_baud(out, sizeof(out), 921600, 0), sizeof(rom));
    assert_memory_equal(out, rom, sizeof(rom));
    assert_int_equal(cmd_build_change_baud(out, sizeof(out), 921600, 115200), sizeof(stub));
    assert_memory_equal(out, stub, sizeof(stub));
    assert_int_equal(cmd_build_change_baud(out, sizeof(out), 0, 0), 0);
}

static void test_data_packet(void **state)
{
    (void)state;
    uint8_t out[CMD_MAX_REQ];
    const uint8_t data[] = {0x01, 0x02, 0x04, 0xC0};
    size_t n = cmd_build_data(out, sizeof(out), CMD_FLASH_DATA, 7, data, sizeof(data));
    const uint8_t exp[] = {0x00, 0x03, 0x14, 0x00, 0x28, 0, 0, 0, /* checksum 0xEF^0x07^0xC0 */
                           0x04, 0,    0,    0,    0x07, 0, 0, 0, /* n, seq */
                           0,    0,    0,    0,    0,    0, 0, 0, /* two zero words */
                           0x01, 0x02, 0x04, 0xC0};
    assert_int_equal(n, sizeof(exp));
    assert_memory_equal(out, exp, sizeof(exp));

    /* Data already placed at its final position (zero-copy use) builds the same packet. */
    uint8_t inplace[64] = {0};
    memcpy(inplace + CMD_HDR_LEN + CMD_DATA_HDR_LEN, data, sizeof(data));
    n = cmd_build_data(inplace, sizeof(inplace), CMD_FLASH_DATA, 7,
                       inplace + CMD_HDR_LEN + CMD_DATA_HDR_LEN, sizeof(data));
    assert_int_equal(n, sizeof(exp));
    assert_memory_equal(inplace, exp, sizeof(exp));

    /* A full 16 KiB stub block fits CMD_MAX_REQ; more does not. MEM_DATA/DEFL forms share it. */
    static uint8_t block[0x4001];
    memset(block, 0xFF, sizeof(block));
    assert_int_equal(cmd_build_data(out, sizeof(out), CMD_FLASH_DEFL_DATA, 0, block, 0x4000),
                     CMD_MAX_REQ);
    assert_int_equal(cmd_get_le16(out + 2), 0x4010);
    assert_int_equal(cmd_get_le32(out + 4), 0xEF); /* even number of 0xFF bytes */
    assert_int_equal(cmd_build_data(out, sizeof(out), CMD_FLASH_DEFL_DATA, 0, block, 0x4001), 0);
    assert_int_equal(cmd_build_data(out, sizeof(out), CMD_MEM_DATA, 3, block, 0x1800),
                     8 + 16 + 0x1800);
    assert_int_equal(out[1], 0x07);
    assert_int_equal(cmd_build_data(out, sizeof(out), CMD_READ_REG, 0, block, 4), 0);
}

static void test_misc_builders(void **state)
{
    (void)state;
    uint8_t out[64];
    /* MEM_END: flag = 1 without entry point, 0 with one. */
    assert_int_equal(cmd_build_mem_end(out, sizeof(out), 0x4010D004), 16);
    assert_int_equal(cmd_get_le32(out + 8), 0);
    assert_int_equal(cmd_get_le32(out + 12), 0x4010D004);
    cmd_build_mem_end(out, sizeof(out), 0);
    assert_int_equal(cmd_get_le32(out + 8), 1);
    /* FLASH_END / FLASH_DEFL_END one word. */
    assert_int_equal(cmd_build_end(out, sizeof(out), CMD_FLASH_DEFL_END, 1), 12);
    assert_int_equal(out[1], 0x12);
    assert_int_equal(cmd_get_le32(out + 8), 1);
    assert_int_equal(cmd_build_end(out, sizeof(out), CMD_MEM_END, 1), 0);
    /* SPI_SET_PARAMS as esptool sends it. */
    assert_int_equal(cmd_build_spi_set_params(out, sizeof(out), 4u << 20), 32);
    const uint32_t sp[6] = {0, 4u << 20, 0x10000, 0x1000, 0x100, 0xFFFF};
    for (int i = 0; i < 6; i++)
        assert_int_equal(cmd_get_le32(out + 8 + 4 * i), sp[i]);
    /* MD5 {addr, size, 0, 0}. */
    assert_int_equal(cmd_build_md5(out, sizeof(out), 0x10000, 0x2345), 24);
    assert_int_equal(out[1], 0x13);
    assert_int_equal(cmd_get_le32(out + 8), 0x10000);
    assert_int_equal(cmd_get_le32(out + 12), 0x2345);
    assert_int_equal(cmd_get_le32(out + 16), 0);
    assert_int_equal(cmd_get_le32(out + 20), 0);
    /* No-data commands. */
    const uint8_t gsi[] = {0x00, 0x14, 0x00, 0x00, 0, 0, 0, 0};
    assert_int_equal(cmd_build_get_security_info(out, sizeof(out)), 8);
    assert_memory_equal(out, gsi, 8);
    assert_int_equal(cmd_build_erase_flash(out, sizeof(out)), 8);
    assert_int_equal(out[1], 0xD0);
    /* READ_FLASH_SLOW: at most 64 bytes. */
    assert_int_equal(cmd_build_read_flash_slow(out, sizeof(out), 0, 64), 16);
    assert_int_equal(cmd_build_read_flash_slow(out, sizeof(out), 0, 65), 0);
    /* ERASE_REGION: sector-aligned only. */
    assert_int_equal(cmd_build_erase_region(out, sizeof(out), 0x1000, 0x2000), 16);
    assert_int_equal(cmd_build_erase_region(out, sizeof(out), 0x1001, 0x2000), 0);
    /* READ_FLASH {off, len, 0x1000, 64}; the ack is a bare u32. */
    assert_int_equal(cmd_build_read_flash(out, sizeof(out), 0, 0x8000, 0x1000, 64), 24);
    assert_int_equal(cmd_get_le32(out + 16), 0x1000);
    assert_int_equal(cmd_get_le32(out + 20), 64);
    assert_int_equal(cmd_build_read_flash(out, sizeof(out), 0, 0x8000, 0x1001, 64), 0);
    assert_int_equal(cmd_build_read_flash_ack(out, sizeof(out), 0x3000), 4);
    const uint8_t ack[] = {0x00, 0x30, 0x00, 0x00};
    assert_memory_equal(out, ack, 4);
    /* Generic builder with a too-small buffer. */
    assert_int_equal(cmd_build(out, 7, CMD_SYNC, NULL, 0, 0), 0);
    assert_int_equal(cmd_build(out, 8, CMD_SYNC, NULL, 0, 0), 8);
}

static void test_resp_status_2_and_4(void **state)
{
    (void)state;
    cmd_resp_t r;
    /* ESP8266 ROM READ_REG: 2 status bytes. */
    const uint8_t r8266[] = {0x01, 0x0A, 0x02, 0x00, 0x01, 0xC1, 0xF0, 0xFF, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(r8266, sizeof(r8266), 0, &r), 0);
    assert_int_equal(r.op, CMD_READ_REG);
    assert_int_equal(r.value, 0xFFF0C101);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.data_len, 2);
    /* ESP32 ROM: 4 status bytes [status, error, 0, 0]; "last two bytes" would read zeros. */
    const uint8_t r32fail[] = {0x01, 0x02, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x07, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(r32fail, sizeof(r32fail), 0, &r), 0);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.error, 7);
    assert_int_equal(cmd_resp_code(&r), 0x0107);
    assert_false(cmd_resp_unsupported(&r));
    /* Stub: 2 bytes [code, extra]; the size field lies (legacy stub always says 2). */
    const uint8_t rstub[] = {0x01, 0x03, 0x02, 0x00, 0, 0, 0, 0, 0xC1, 0x00};
    assert_int_equal(cmd_parse_resp(rstub, sizeof(rstub), 0, &r), 0);
    assert_int_equal(r.status, 0xC1);
    assert_int_equal(cmd_resp_code(&r), 0xC100);
    /* Not a response / too short. */
    const uint8_t req[] = {0x00, 0x0A, 0x02, 0x00, 0, 0, 0, 0, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(req, sizeof(req), 0, &r), EST_EPROTO);
    assert_int_equal(cmd_parse_resp(r8266, 9, 0, &r), EST_EPROTO);
    assert_int_equal(cmd_parse_resp(r8266, 0, 0, &r), EST_EPROTO);
}

static void test_resp_md5(void **state)
{
    (void)state;
    const uint8_t digest[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
                                0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};
    cmd_resp_t r;
    uint8_t md5[16];
    /* ROM: 32 lowercase hex chars + 4 status bytes (data length 36). */
    uint8_t rom[8 + 36] = {0x01, 0x13, 0x24, 0x00};
    memcpy(rom + 8, "d41d8cd98f00b204e9800998ecf8427e", 32);
    assert_int_equal(cmd_parse_resp(rom, sizeof(rom), 32, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out_len, 32);
    assert_int_equal(r.data_len, 36);
    assert_int_equal(cmd_parse_md5(&r, md5), 0);
    assert_memory_equal(md5, digest, 16);
    /* Same hex with a non-hex character is rejected. */
    rom[8 + 5] = 'g';
    assert_int_equal(cmd_parse_resp(rom, sizeof(rom), 32, &r), 0);
    assert_int_equal(cmd_parse_md5(&r, md5), EST_EPROTO);
    /* Stub: 16 raw bytes + 2 status bytes. */
    uint8_t stub[8 + 18] = {0x01, 0x13, 0x12, 0x00};
    memcpy(stub + 8, digest, 16);
    assert_int_equal(cmd_parse_resp(stub, sizeof(stub), 16, &r), 0);
    assert_int_equal(cmd_parse_md5(&r, md5), 0);
    assert_memory_equal(md5, digest, 16);
    /* A ROM MD5 failure carries no output, only the status: reported as a failure, not junk. */
    const uint8_t fail[] = {0x01, 0x13, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x06, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(fail, sizeof(fail), 32, &r), 0);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.error, 6);
    assert_null(r.out);
    assert_int_equal(cmd_parse_md5(&r, md5), EST_EPROTO);
    /* A short *success* frame is malformed. */
    const uint8_t shortok[] = {0x01, 0x13, 0x04, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(shortok, sizeof(shortok), 32, &r), EST_EPROTO);
}

static void test_resp_secinfo(void **state)
{
    (void)state;
    cmd_resp_t r;
    cmd_secinfo_t si;
    /* ROM of ESP32-S3: 20-byte output + 4 status bytes. flags = SDM bit (4), crypt cnt 1. */
    uint8_t s3[8 + 24] = {0x01, 0x14, 0x18, 0x00};
    cmd_put_le32(s3 + 8, 0x4);
    s3[12] = 0x01;
    for (int i = 0; i < 7; i++)
        s3[13 + i] = (uint8_t)i;
    cmd_put_le32(s3 + 20, 9);
    cmd_put_le32(s3 + 24, 0x1234);
    size_t dl = sizeof(s3) - CMD_HDR_LEN;
    assert_int_equal(cmd_secinfo_out_len(dl), 20);
    assert_int_equal(cmd_parse_resp(s3, sizeof(s3), cmd_secinfo_out_len(dl), &r), 0);
    assert_int_equal(cmd_parse_secinfo(&r, &si), 0);
    assert_int_equal(si.flags, 0x4);
    assert_int_equal(si.flash_crypt_cnt, 1);
    assert_int_equal(si.key_purposes[6], 6);
    assert_true(si.has_chip_id);
    assert_int_equal(si.chip_id, 9);
    assert_int_equal(si.api_version, 0x1234);
    /* Stub form of the same: 20 + 2. */
    uint8_t st[8 + 22] = {0x01, 0x14, 0x14, 0x00};
    memcpy(st + 8, s3 + 8, 20);
    dl = sizeof(st) - CMD_HDR_LEN;
    assert_int_equal(cmd_secinfo_out_len(dl), 20);
    assert_int_equal(cmd_parse_resp(st, sizeof(st), cmd_secinfo_out_len(dl), &r), 0);
    assert_int_equal(cmd_parse_secinfo(&r, &si), 0);
    assert_int_equal(si.chip_id, 9);
    /* ESP32-S2 ROM: 12-byte form + 4 status (data 16) and stub 12 + 2 (data 14). */
    uint8_t s2[8 + 16] = {0x01, 0x14, 0x10, 0x00};
    cmd_put_le32(s2 + 8, 0x1);
    dl = sizeof(s2) - CMD_HDR_LEN;
    assert_int_equal(cmd_secinfo_out_len(dl), 12);
    assert_int_equal(cmd_parse_resp(s2, sizeof(s2), cmd_secinfo_out_len(dl), &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(cmd_parse_secinfo(&r, &si), 0);
    assert_false(si.has_chip_id);
    assert_int_equal(si.flags, 1);
    assert_int_equal(cmd_secinfo_out_len(14), 12);
}

static void test_resp_unsupported(void **state)
{
    (void)state;
    cmd_resp_t r;
    cmd_secinfo_t si;
    /* ESP32 ROM answering GET_SECURITY_INFO: 4 status bytes, no output. */
    const uint8_t esp32[] = {0x01, 0x14, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x05, 0x00, 0x00};
    size_t dl = sizeof(esp32) - CMD_HDR_LEN;
    assert_int_equal(cmd_parse_resp(esp32, sizeof(esp32), cmd_secinfo_out_len(dl), &r), 0);
    assert_true(cmd_resp_unsupported(&r));
    assert_int_equal(cmd_parse_secinfo(&r, &si), EST_EPROTO);
    /* ESP8266 ROM: 2 status bytes. */
    const uint8_t esp8266[] = {0x01, 0x14, 0x02, 0x00, 0, 0, 0, 0, 0x01, 0x05};
    assert_int_equal(cmd_parse_resp(esp8266, sizeof(esp8266), 12, &r), 0);
    assert_true(cmd_resp_unsupported(&r));
    /* Echoing a different opcode (PROTOCOL.md §3.7) still counts as "unsupported". */
    const uint8_t other[] = {0x01, 0x00, 0x04, 0x00, 0, 0, 0, 0, 0x01, 0x05, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(other, sizeof(other), 0, &r), 0);
    assert_int_not_equal(r.op, CMD_GET_SECURITY_INFO);
    assert_true(cmd_resp_unsupported(&r));
    /* Success and other errors are not "unsupported". */
    const uint8_t ok[] = {0x01, 0x0A, 0x04, 0x00, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x00};
    assert_int_equal(cmd_parse_resp(ok, sizeof(ok), 0, &r), 0);
    assert_false(cmd_resp_unsupported(&r));
}

static void test_status_texts(void **state)
{
    (void)state;
    char buf[96];
    assert_string_equal(cmd_status_text(1, 5, false, buf, sizeof(buf)),
                        "status 0x0105: invalid message format or command not supported");
    assert_string_equal(cmd_status_text(0xC1, 0, true, buf, sizeof(buf)),
                        "status 0xC100: bad data checksum");
    assert_string_equal(cmd_status_text(0x33, 0, true, buf, sizeof(buf)),
                        "status 0x3300: erase length not sector-aligned");
    assert_string_equal(cmd_status_text(0x01, 0x99, false, buf, sizeof(buf)),
                        "status 0x0199: unknown error");
    assert_string_equal(cmd_rom_err_text(0x08), "flash write error");
    assert_null(cmd_rom_err_text(0x10));
    assert_string_equal(cmd_stub_err_text(0xFF), "command not implemented");
    assert_null(cmd_stub_err_text(0x01));
    /* Truncation is safe. */
    assert_string_equal(cmd_status_text(1, 5, false, buf, 7), "status");
}

static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(cmd_op_name(0x08), "SYNC");
    assert_string_equal(cmd_op_name(0x11), "FLASH_DEFL_DATA");
    assert_string_equal(cmd_op_name(0xD2), "READ_FLASH");
    assert_string_equal(cmd_op_name(0x0C), "UNKNOWN");
}

static void test_est_strerror(void **state)
{
    (void)state;
    assert_string_equal(est_strerror(EST_ENAK), "device answered with an error status");
    assert_string_equal(est_strerror(EST_EUSAGE), "invalid arguments");
    assert_string_equal(est_strerror(-ENOENT), "No such file or directory");
    assert_string_equal(est_strerror(-4095), "end of file"); /* UV_EOF */
    assert_non_null(est_strerror(-9999));
    assert_non_null(est_strerror(12345));
    assert_string_equal(est_class_name(EST_CLASS_NO_SYNC), "no_sync");
    assert_int_equal(est_class_from_name("md5_mismatch"), EST_CLASS_MD5_MISMATCH);
    assert_int_equal(est_class_from_name("nope"), EST_CLASS__COUNT);
    /* the class hints moved to the daemon's vocabulary: test_vocab.c */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_vector),         cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_read_write_reg),      cmocka_unit_test(test_flash_begin_16_vs_20),
        cmocka_unit_test(test_spi_attach_8_vs_4),   cmocka_unit_test(test_change_baud),
        cmocka_unit_test(test_data_packet),         cmocka_unit_test(test_misc_builders),
        cmocka_unit_test(test_resp_status_2_and_4), cmocka_unit_test(test_resp_md5),
        cmocka_unit_test(test_resp_secinfo),        cmocka_unit_test(test_resp_unsupported),
        cmocka_unit_test(test_status_texts),        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_est_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
