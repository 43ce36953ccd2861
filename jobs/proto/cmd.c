/* SPDX-License-Identifier: MIT */
/* cmd.c — request builders, data-packet checksum, response and status parsing (PROTOCOL.md
 * §3.2–§3.7, §4.2). Owns: the unescaped byte layout of every loader request and the interpretation
 * of responses. Must not: do I/O, allocate, SLIP-encode, or know about timing, retries or chip
 * selection (the caller picks the variant, e.g. 8- vs 4-byte SPI_ATTACH, with the flags it passes).
 */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "est_err.h"

const char *cmd_op_name(uint8_t op)
{
    switch (op) {
#define XX(name, code)                                                                             \
    case (code): return #name;
        CMD_OP_MAP(XX)
#undef XX
    default: return "UNKNOWN";
    }
}

uint8_t cmd_checksum(const uint8_t *data, size_t n)
{
    uint8_t c = CMD_CHECKSUM_SEED;
    for (size_t i = 0; i < n; i++)
        c ^= data[i];
    return c;
}

/* Write the 8-byte request header; returns false if the request does not fit. */
static bool cmd_put_hdr(uint8_t *out, size_t cap, uint8_t op, size_t n, uint32_t checksum)
{
    if (n > 0xFFFF || cap < CMD_HDR_LEN || n > cap - CMD_HDR_LEN) return false;
    out[0] = 0x00; /* direction: host → chip (PROTOCOL.md §3.2) */
    out[1] = op;
    cmd_put_le16(out + 2, (uint16_t)n);
    cmd_put_le32(out + 4, checksum);
    return true;
}

size_t cmd_build(uint8_t *out, size_t cap, uint8_t op, const uint8_t *data, size_t n,
                 uint32_t checksum)
{
    if (n > 0 && !data) return 0;
    if (!cmd_put_hdr(out, cap, op, n, checksum)) return 0;
    if (n > 0) memmove(out + CMD_HDR_LEN, data, n);
    return CMD_HDR_LEN + n;
}

/* Build a request whose data is `n` little-endian words. */
static size_t cmd_build_words(uint8_t *out, size_t cap, uint8_t op, const uint32_t *w, size_t n)
{
    if (!cmd_put_hdr(out, cap, op, 4 * n, 0)) return 0;
    for (size_t i = 0; i < n; i++)
        cmd_put_le32(out + CMD_HDR_LEN + 4 * i, w[i]);
    return CMD_HDR_LEN + 4 * n;
}

size_t cmd_build_sync(uint8_t *out, size_t cap)
{
    /* PROTOCOL.md §4.2: 07 07 12 20 followed by 32 × 0x55 (the 0x55 run lets the ROM measure the
     * baud). */
    if (!cmd_put_hdr(out, cap, CMD_SYNC, 36, 0)) return 0;
    uint8_t *d = out + CMD_HDR_LEN;
    d[0] = 0x07;
    d[1] = 0x07;
    d[2] = 0x12;
    d[3] = 0x20;
    memset(d + 4, 0x55, 32);
    return CMD_HDR_LEN + 36;
}

size_t cmd_build_read_reg(uint8_t *out, size_t cap, uint32_t addr)
{
    return cmd_build_words(out, cap, CMD_READ_REG, &addr, 1);
}

size_t cmd_build_write_reg(uint8_t *out, size_t cap, uint32_t addr, uint32_t value, uint32_t mask,
                           uint32_t delay_us)
{
    const uint32_t w[4] = {addr, value, mask, delay_us};
    return cmd_build_words(out, cap, CMD_WRITE_REG, w, 4);
}

size_t cmd_build_begin(uint8_t *out, size_t cap, uint8_t op, uint32_t size, uint32_t num_blocks,
                       uint32_t block_size, uint32_t offset, bool with_enc_word, uint32_t encrypted)
{
    if (op != CMD_FLASH_BEGIN && op != CMD_FLASH_DEFL_BEGIN && op != CMD_MEM_BEGIN) return 0;
    /* The 5th word exists only for the flash forms (PROTOCOL.md §4.2: S2+ ROMs require it). */
    if (with_enc_word && op == CMD_MEM_BEGIN) return 0;
    const uint32_t w[5] = {size, num_blocks, block_size, offset, encrypted};
    return cmd_build_words(out, cap, op, w, with_enc_word ? 5 : 4);
}

size_t cmd_build_data(uint8_t *out, size_t cap, uint8_t op, uint32_t seq, const uint8_t *data,
                      size_t n)
{
    if (op != CMD_MEM_DATA && op != CMD_FLASH_DATA && op != CMD_FLASH_DEFL_DATA) return 0;
    if (n > CMD_MAX_REQ - CMD_HDR_LEN - CMD_DATA_HDR_LEN || (n > 0 && !data)) return 0;
    /* PROTOCOL.md §3.4: the checksum covers only the data bytes, not the 16-byte sub-header. */
    if (!cmd_put_hdr(out, cap, op, CMD_DATA_HDR_LEN + n, cmd_checksum(data, n))) return 0;
    uint8_t *d = out + CMD_HDR_LEN;
    if (n > 0) memmove(d + CMD_DATA_HDR_LEN, data, n); /* data may already sit in place */
    cmd_put_le32(d, (uint32_t)n);
    cmd_put_le32(d + 4, seq);
    cmd_put_le32(d + 8, 0);
    cmd_put_le32(d + 12, 0);
    return CMD_HDR_LEN + CMD_DATA_HDR_LEN + n;
}

size_t cmd_build_end(uint8_t *out, size_t cap, uint8_t op, uint32_t flag)
{
    if (op != CMD_FLASH_END && op != CMD_FLASH_DEFL_END) return 0;
    return cmd_build_words(out, cap, op, &flag, 1);
}

size_t cmd_build_mem_end(uint8_t *out, size_t cap, uint32_t entry)
{
    /* esptool sends flag = 1 when there is no entry point; flag 0 means "jump to entry". */
    const uint32_t w[2] = {entry == 0 ? 1u : 0u, entry};
    return cmd_build_words(out, cap, CMD_MEM_END, w, 2);
}

size_t cmd_build_spi_attach(uint8_t *out, size_t cap, uint32_t config, bool stub)
{
    /* ROM: {config, is_legacy=0 + 3 pad bytes} = 8 bytes; the legacy stub rejects 8 bytes with
     * 0xC0, so a stub gets {config} only (PROTOCOL.md §4.2, pitfall PROTOCOL.md §14.6). */
    const uint32_t w[2] = {config, 0};
    return cmd_build_words(out, cap, CMD_SPI_ATTACH, w, stub ? 1 : 2);
}

size_t cmd_build_spi_set_params(uint8_t *out, size_t cap, uint32_t total_size)
{
    const uint32_t w[6] = {0, total_size, 0x10000, 0x1000, 0x100, 0xFFFF};
    return cmd_build_words(out, cap, CMD_SPI_SET_PARAMS, w, 6);
}

size_t cmd_build_change_baud(uint8_t *out, size_t cap, uint32_t new_baud, uint32_t old_baud)
{
    if (new_baud == 0) return 0;
    const uint32_t w[2] = {new_baud, old_baud};
    return cmd_build_words(out, cap, CMD_CHANGE_BAUDRATE, w, 2);
}

size_t cmd_build_md5(uint8_t *out, size_t cap, uint32_t addr, uint32_t size)
{
    const uint32_t w[4] = {addr, size, 0, 0};
    return cmd_build_words(out, cap, CMD_SPI_FLASH_MD5, w, 4);
}

size_t cmd_build_get_security_info(uint8_t *out, size_t cap)
{
    return cmd_build_words(out, cap, CMD_GET_SECURITY_INFO, NULL, 0);
}

size_t cmd_build_read_flash_slow(uint8_t *out, size_t cap, uint32_t offset, uint32_t len)
{
    /* PROTOCOL.md §4.2: at most 64 bytes per command (the reply always carries 64). */
    if (len == 0 || len > 64) return 0;
    const uint32_t w[2] = {offset, len};
    return cmd_build_words(out, cap, CMD_READ_FLASH_SLOW, w, 2);
}

size_t cmd_build_erase_flash(uint8_t *out, size_t cap)
{
    return cmd_build_words(out, cap, CMD_ERASE_FLASH, NULL, 0);
}

size_t cmd_build_erase_region(uint8_t *out, size_t cap, uint32_t offset, uint32_t size)
{
    /* PROTOCOL.md §4.2: both must be multiples of 4096 (the stub answers 0x32/0x33 or 0xC0
     * otherwise). */
    if ((offset & 0xFFFu) || (size & 0xFFFu)) return 0;
    const uint32_t w[2] = {offset, size};
    return cmd_build_words(out, cap, CMD_ERASE_REGION, w, 2);
}

size_t cmd_build_read_flash(uint8_t *out, size_t cap, uint32_t offset, uint32_t len,
                            uint32_t packet_size, uint32_t max_in_flight)
{
    /* PROTOCOL.md §4.6: packets larger than 4096 bytes are not allowed. */
    if (packet_size == 0 || packet_size > 0x1000 || max_in_flight == 0) return 0;
    const uint32_t w[4] = {offset, len, packet_size, max_in_flight};
    return cmd_build_words(out, cap, CMD_READ_FLASH, w, 4);
}

size_t cmd_build_read_flash_ack(uint8_t *out, size_t cap, uint32_t total)
{
    /* PROTOCOL.md §4.6: a bare frame, no command header. */
    if (cap < 4) return 0;
    cmd_put_le32(out, total);
    return 4;
}

int cmd_parse_resp(const uint8_t *frame, size_t len, size_t out_len, cmd_resp_t *r)
{
    if (!frame || len < CMD_HDR_LEN + 2 || frame[0] != 0x01) return EST_EPROTO;
    /* PROTOCOL.md §3.3: the size field is not reliable (the legacy stub puts 2 in it); use the
     * frame length. */
    size_t data_len = len - CMD_HDR_LEN;
    const uint8_t *d = frame + CMD_HDR_LEN;
    r->op = frame[1];
    r->size = cmd_get_le16(frame + 2);
    r->value = cmd_get_le32(frame + 4);
    r->data_len = data_len;
    if (data_len >= out_len + 2) {
        /* PROTOCOL.md §3.5: status = the two bytes right after the output, for 2- and 4-byte
         * status. */
        r->out = out_len ? d : NULL;
        r->out_len = out_len;
        r->status = d[out_len];
        r->error = d[out_len + 1];
        return 0;
    }
    /* Too short for the expected output: a loader that fails a command sends no output, only
     * the status (e.g. ESP32 ROM answering GET_SECURITY_INFO or MD5 with "01 05 00 00"). Accept
     * that as a failure so the caller sees the real status; a short success frame is malformed. */
    if (d[0] != 0) {
        r->out = NULL;
        r->out_len = 0;
        r->status = d[0];
        r->error = d[1];
        return 0;
    }
    return EST_EPROTO;
}

bool cmd_resp_unsupported(const cmd_resp_t *r)
{
    /* PROTOCOL.md §3.7: ROMs answer an unknown/forbidden opcode with status (non-zero, 0x05),
     * sometimes echoing a different opcode; the opcode is therefore not checked. */
    return r->status != 0 && r->error == 0x05;
}

size_t cmd_secinfo_out_len(size_t data_len)
{
    /* 20-byte output + at least 2 status bytes; otherwise the 12-byte ESP32-S2 form (PROTOCOL.md
     * §4.2). */
    return data_len >= 22 ? 20 : 12;
}

int cmd_parse_secinfo(const cmd_resp_t *r, cmd_secinfo_t *si)
{
    if (r->status != 0 || !r->out || (r->out_len != 12 && r->out_len != 20)) return EST_EPROTO;
    memset(si, 0, sizeof(*si));
    si->flags = cmd_get_le32(r->out);
    si->flash_crypt_cnt = r->out[4];
    memcpy(si->key_purposes, r->out + 5, 7);
    if (r->out_len == 20) {
        si->has_chip_id = true;
        si->chip_id = cmd_get_le32(r->out + 12);
        si->api_version = cmd_get_le32(r->out + 16);
    }
    return 0;
}

static int cmd_hex_nibble(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cmd_parse_md5(const cmd_resp_t *r, uint8_t md5[16])
{
    if (r->status != 0 || !r->out) return EST_EPROTO;
    if (r->out_len == 16) { /* stub: raw digest (PROTOCOL.md §10) */
        memcpy(md5, r->out, 16);
        return 0;
    }
    if (r->out_len == 32) { /* ROM: 32 lowercase hex characters (PROTOCOL.md §10) */
        for (size_t i = 0; i < 16; i++) {
            int hi = cmd_hex_nibble(r->out[2 * i]);
            int lo = cmd_hex_nibble(r->out[2 * i + 1]);
            if (hi < 0 || lo < 0) return EST_EPROTO;
            md5[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    return EST_EPROTO;
}

const char *cmd_rom_err_text(uint8_t code)
{
    switch (code) {
#define XX(name, c, text)                                                                          \
    case (c): return (text);
        ROM_ERR_MAP(XX)
#undef XX
    default: return NULL;
    }
}

const char *cmd_stub_err_text(uint8_t code)
{
    switch (code) {
#define XX(name, c, text)                                                                          \
    case (c): return (text);
        STUB_ERR_MAP(XX)
#undef XX
    default: return NULL;
    }
}

/* Raw codes of the legacy stub outside the 0xCx table (PROTOCOL.md §3.6). */
static const char *cmd_stub_raw_text(uint8_t code)
{
    switch (code) {
    case 0x32: return "erase address not sector-aligned";
    case 0x33: return "erase length not sector-aligned";
    case 0x34: return "flash unlock failed";
    case 0x35: return "sector erase failed";
    case 0x36: return "64 KiB block erase failed";
    case 0x37: return "tail sector erase failed";
    case 0x63: return "flash read failed";
    default: return NULL;
    }
}

const char *cmd_status_text(uint8_t status, uint8_t error, bool stub, char *buf, size_t cap)
{
    if (!buf || cap == 0) return "";
    const char *t = NULL;
    if (status == 0) {
        t = "success";
    } else if (!stub) {
        /* ROM: first byte 1, meaning in the second (PROTOCOL.md §3.5). */
        t = status == 1 ? cmd_rom_err_text(error) : NULL;
    } else {
        t = cmd_stub_err_text(status);
        if (!t) t = cmd_stub_raw_text(status);
    }
    snprintf(buf, cap, "status 0x%02X%02X: %s", status, error, t ? t : "unknown error");
    return buf;
}
