/* SPDX-License-Identifier: MIT */
/* cmd.h — loader request builders and response parsing (PROTOCOL.md §3.2–§3.7, §4.2).
 * Owns: the byte layout of every request (unescaped; the caller SLIP-encodes it), the data-packet
 * checksum, response header/status parsing that is right for 2- and 4-byte status, and status
 * texts. Must not: do I/O, allocate, or know about timing and retries. */
#ifndef CMD_H
#define CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

typedef enum {
#define XX(name, code) CMD_##name = (code),
    CMD_OP_MAP(XX)
#undef XX
} cmd_op_t;

#define CMD_HDR_LEN 8        /* request/response header */
#define CMD_DATA_HDR_LEN 16  /* sub-header of MEM_DATA / FLASH_DATA / FLASH_DEFL_DATA */
#define CMD_CHECKSUM_SEED 0xEF
/* Largest request we build: 16-byte data sub-header + a 16 KiB stub block. */
#define CMD_MAX_REQ (CMD_HDR_LEN + CMD_DATA_HDR_LEN + 0x4000)

/* Name of an opcode ("FLASH_DEFL_DATA"), or "UNKNOWN". */
const char *cmd_op_name(uint8_t op);

/* Little-endian helpers. */
static inline uint32_t cmd_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t cmd_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline void cmd_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void cmd_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* 0xEF XOR every byte (PROTOCOL.md §3.4). */
uint8_t cmd_checksum(const uint8_t *data, size_t n);

/* All builders write an unescaped request into out[cap] and return its length, or 0 if cap is
 * too small or an argument is out of range. */
size_t cmd_build(uint8_t *out, size_t cap, uint8_t op, const uint8_t *data, size_t n,
                 uint32_t checksum);
size_t cmd_build_sync(uint8_t *out, size_t cap);
size_t cmd_build_read_reg(uint8_t *out, size_t cap, uint32_t addr);
/* One WRITE_REG entry {addr, value, mask, delay_us}. */
size_t cmd_build_write_reg(uint8_t *out, size_t cap, uint32_t addr, uint32_t value, uint32_t mask,
                           uint32_t delay_us);
/* FLASH_BEGIN / FLASH_DEFL_BEGIN / MEM_BEGIN: {size, num_blocks, block_size, offset[, enc]}.
 * `with_enc_word` appends the 5th word (`encrypted`); only valid for the FLASH_* forms. */
size_t cmd_build_begin(uint8_t *out, size_t cap, uint8_t op, uint32_t size, uint32_t num_blocks,
                       uint32_t block_size, uint32_t offset, bool with_enc_word, uint32_t encrypted);
/* MEM_DATA / FLASH_DATA / FLASH_DEFL_DATA with sub-header {n, seq, 0, 0} and checksum. */
size_t cmd_build_data(uint8_t *out, size_t cap, uint8_t op, uint32_t seq, const uint8_t *data,
                      size_t n);
/* FLASH_END / FLASH_DEFL_END: one word (0 = reboot, 1 = run user code / stay). */
size_t cmd_build_end(uint8_t *out, size_t cap, uint8_t op, uint32_t flag);
/* MEM_END {flag, entry}: flag = (entry == 0) as esptool sends it. */
size_t cmd_build_mem_end(uint8_t *out, size_t cap, uint32_t entry);
/* SPI_ATTACH: 8 bytes for a ROM {config, 0}, 4 bytes for a stub {config}. */
size_t cmd_build_spi_attach(uint8_t *out, size_t cap, uint32_t config, bool stub);
/* SPI_SET_PARAMS {0, total_size, 0x10000, 0x1000, 0x100, 0xFFFF}. */
size_t cmd_build_spi_set_params(uint8_t *out, size_t cap, uint32_t total_size);
/* CHANGE_BAUDRATE {new, old}; old is 0 for a ROM, the current baud for a stub (PROTOCOL.md §9). */
size_t cmd_build_change_baud(uint8_t *out, size_t cap, uint32_t new_baud, uint32_t old_baud);
/* SPI_FLASH_MD5 {addr, size, 0, 0}. */
size_t cmd_build_md5(uint8_t *out, size_t cap, uint32_t addr, uint32_t size);
size_t cmd_build_get_security_info(uint8_t *out, size_t cap);
/* READ_FLASH_SLOW {offset, length<=64} (ROM only). */
size_t cmd_build_read_flash_slow(uint8_t *out, size_t cap, uint32_t offset, uint32_t len);
/* Stub: ERASE_FLASH (no data), ERASE_REGION {offset, size}, READ_FLASH {off, len, pkt, inflight}. */
size_t cmd_build_erase_flash(uint8_t *out, size_t cap);
size_t cmd_build_erase_region(uint8_t *out, size_t cap, uint32_t offset, uint32_t size);
size_t cmd_build_read_flash(uint8_t *out, size_t cap, uint32_t offset, uint32_t len,
                            uint32_t packet_size, uint32_t max_in_flight);
/* The bare READ_FLASH acknowledgement frame: one u32 = total bytes received so far. */
size_t cmd_build_read_flash_ack(uint8_t *out, size_t cap, uint32_t total);

/* A parsed response (pointers into the frame). */
typedef struct cmd_resp_s {
    uint8_t op;          /* echoed opcode */
    uint16_t size;       /* header size field (informational; not trusted, PROTOCOL.md §3.3) */
    uint32_t value;      /* READ_REG result / SYNC value */
    const uint8_t *out;  /* command output (e.g. MD5), `out_len` bytes */
    size_t out_len;
    uint8_t status;      /* first status byte: 0 = success */
    uint8_t error;       /* second status byte */
    size_t data_len;     /* length of the whole data field (output + all status bytes) */
} cmd_resp_t;

/* Parse a decoded frame as a response expecting `out_len` bytes of command output before the
 * status (0 for most commands, 32 ROM MD5, 16 stub MD5, 64 READ_FLASH_SLOW, see
 * cmd_secinfo_out_len). Status = the two bytes right after the output, which is right for 2- and
 * 4-byte status (PROTOCOL.md §3.5). Returns 0, or EST_EPROTO for a frame that is not a response
 * (direction byte != 1, shorter than header + output + 2). */
int cmd_parse_resp(const uint8_t *frame, size_t len, size_t out_len, cmd_resp_t *r);

/* 16-bit failure code as esptool shows it: status<<8 | error (0 = success). */
static inline uint16_t cmd_resp_code(const cmd_resp_t *r)
{
    return (uint16_t)(r->status << 8 | r->error);
}
/* True when a response is the loaders' "command not supported" answer (status != 0, error 0x05),
 * with the echoed opcode either equal to `sent_op` or not (PROTOCOL.md §3.7). */
bool cmd_resp_unsupported(const cmd_resp_t *r);

/* GET_SECURITY_INFO output length from the response's data length: 20 (with chip_id and
 * api_version) when data_len >= 22, else 12 (ESP32-S2 form). */
size_t cmd_secinfo_out_len(size_t data_len);

typedef struct cmd_secinfo_s {
    uint32_t flags;
    uint8_t flash_crypt_cnt;
    uint8_t key_purposes[7];
    bool has_chip_id;
    uint32_t chip_id;
    uint32_t api_version;
} cmd_secinfo_t;
int cmd_parse_secinfo(const cmd_resp_t *r, cmd_secinfo_t *si);

/* MD5 output → 16 raw bytes: ROM form (32 lowercase hex chars) or stub form (16 raw bytes). */
int cmd_parse_md5(const cmd_resp_t *r, uint8_t md5[16]);

/* Describe a failure status in words into buf, e.g. "status 0x0105: invalid message format or
 * command not supported". `stub` selects the stub table. Returns buf. */
const char *cmd_status_text(uint8_t status, uint8_t error, bool stub, char *buf, size_t cap);
const char *cmd_rom_err_text(uint8_t code);  /* NULL if unknown */
const char *cmd_stub_err_text(uint8_t code); /* NULL if unknown */

#endif
