// SPDX-License-Identifier: MIT
// sim_dev: one simulated Espressif chip: reset/boot-mode model, ROM download-mode loader
// (docs/SIMULATOR.md "ROM loader"), flasher-stub emulation after an upload (docs/SIMULATOR.md
// "Flasher stub"), UART rates of chip and host, register file with eFuse/SPI controller, NOR flash,
// faults and the optional realtime model. Bytes come in and go out through sim_dev_io_t; it never
// does I/O on its own (only --flash-in/--flash-out files). Uploaded code is never executed.
// Protocol facts and their sources: docs/SIMULATOR.md.
#include "sim_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "sim_event.h"
#include "sim_flash.h"
#include "sim_nvs.h"
#include "sim_md5.h"
#include "sim_slip.h"
#include "sim_efuse.h"
#include "sim_flashenc.h"
#include "sim_secure.h"
#include "sim_stubid.h"

// Opcodes (docs/SIMULATOR.md "ROM loader").
enum {
    OP_FLASH_BEGIN = 0x02,
    OP_FLASH_DATA = 0x03,
    OP_FLASH_END = 0x04,
    OP_MEM_BEGIN = 0x05,
    OP_MEM_END = 0x06,
    OP_MEM_DATA = 0x07,
    OP_SYNC = 0x08,
    OP_WRITE_REG = 0x09,
    OP_READ_REG = 0x0A,
    OP_SPI_SET_PARAMS = 0x0B,
    OP_SPI_ATTACH = 0x0D,
    OP_READ_FLASH_SLOW = 0x0E,
    OP_CHANGE_BAUDRATE = 0x0F,
    OP_FLASH_DEFL_BEGIN = 0x10,
    OP_FLASH_DEFL_DATA = 0x11,
    OP_FLASH_DEFL_END = 0x12,
    OP_SPI_FLASH_MD5 = 0x13,
    OP_GET_SECURITY_INFO = 0x14,
};

// ROM error codes (docs/SIMULATOR.md "ROM loader").
enum {
    ROM_OK = 0x00,
    ROM_EINVAL_MSG = 0x05, // invalid message: bad length or command not supported
    ROM_EFAILED = 0x06,    // message fine, operation failed
    ROM_ECHECKSUM = 0x07,
    ROM_EFLASH_WRITE = 0x08,
    ROM_EFLASH_READ = 0x09,
    ROM_EINFLATE = 0x0B,
    ROM_EADLER = 0x0C,
    ROM_ERAM_SIZE = 0x0E,
};

static const struct {
    const char *name;
    int op;
} op_names[] = {
    {"FLASH_BEGIN", 0x02},
    {"FLASH_DATA", 0x03},
    {"FLASH_END", 0x04},
    {"MEM_BEGIN", 0x05},
    {"MEM_END", 0x06},
    {"MEM_DATA", 0x07},
    {"SYNC", 0x08},
    {"WRITE_REG", 0x09},
    {"READ_REG", 0x0A},
    {"SPI_SET_PARAMS", 0x0B},
    {"SPI_ATTACH", 0x0D},
    {"READ_FLASH_SLOW", 0x0E},
    {"CHANGE_BAUDRATE", 0x0F},
    {"FLASH_DEFL_BEGIN", 0x10},
    {"FLASH_DEFL_DATA", 0x11},
    {"FLASH_DEFL_END", 0x12},
    {"SPI_FLASH_MD5", 0x13},
    {"GET_SECURITY_INFO", 0x14},
    {"ERASE_FLASH", 0xD0},
    {"ERASE_REGION", 0xD1},
    {"READ_FLASH", 0xD2},
    {"RUN_USER_CODE", 0xD3},
};

typedef enum {
    MODE_RESET,    // EN held low: no output, input ignored
    MODE_DOWNLOAD, // ROM serial loader
    MODE_APP,      // the application from flash runs (or fails to boot)
    MODE_DEAD,     // jumped to a RAM program we do not emulate: silent
    MODE_RAMAPP,   // an uploaded program that is not a flasher stub runs: prints, never listens
} dev_mode_t;

// Which loader answers in download mode: the ROM, or the flasher stub started by MEM_END with an
// entry point inside an upload identified as a stub ("OHAI", 2 status bytes, 16 KiB blocks,
// ACK-then-write); which stub it is (legacy or esp-flasher-stub) is in stub_kind.
typedef enum {
    LOADER_ROM,
    LOADER_STUB,
} dev_loader_t;

// A RAM area announced by MEM_BEGIN and what MEM_DATA filled it with (crc32, first bytes).
typedef sim_upload_t ram_area_t;

#define RAM_AREAS 8

typedef struct {
    uint32_t addr, val;
} reg_t;

typedef struct {
    uint64_t due_us;
    uint32_t baud;
    size_t len, off;
    uint8_t *data;
} chunk_t;

typedef struct {
    uint64_t due_us;
    size_t len;
    uint8_t *data;
} inframe_t;

#define RAM_MAX (512u * 1024u)
#define RT_TX_QUANTUM_US 500u // realtime output granularity
#define REGS_MAX 8192
#define SPI_CMD_USR (1u << 18)
#define ROM_DEFAULT_FLASH_SIZE (2u * 1024u * 1024u) // ROM's idea before SPI_SET_PARAMS
#define STUB_FLASH_SIZE (16u * 1024u * 1024u) // legacy stub: SPIParamCfg(FLASH_MAX_SIZE) at start
#define STUB_MAX_BLOCK 0x4000u   // legacy stub MAX_WRITE_BLOCK (docs/SIMULATOR.md "ROM loader")
#define USB_OTG_MAX_BLOCK 0x800u // esptool USB_RAM_BLOCK (docs/SIMULATOR.md "ROM loader")

struct sim_dev_s {
    sim_dev_cfg_t cfg;
    const sim_chip_t *chip;
    sim_dev_io_t io;
    sim_flash_t flash;
    dev_mode_t mode;
    dev_loader_t loader;
    sim_prog_kind_t stub_kind; // which stub runs when loader == LOADER_STUB
    uint8_t st_pending;        // esp-flasher-stub: error of the last command's second half,
                               // answered to the next command instead of running it
    uint32_t baud;         // chip UART rate (what its divider really gives)
    uint32_t nominal_baud; // rate a correct host uses: 115200/auto-baud, then CHANGE_BAUDRATE's
    int uart_dead;         // legacy stub got old baud 0: divider 0, the UART is unusable
    int baud_locked;       // ROM auto-baud done (first valid SYNC since reset)
    uint32_t host_baud;    // 0 = unknown
    int strict_baud;
    int strap_download; // boot strap latched at the last chip (EN/power) reset
    // auto-reset circuit
    int dtr, rts, en;
    uint64_t sample_at_us; // 0 = no pending boot-pin sample
    // registers written by the host (override computed values)
    reg_t *regs;
    size_t nregs, capregs;
    // SPI flash state
    int attached;
    uint32_t rom_flash_size;
    int dpd;
    uint8_t sr[3];
    int wel;
    // flash write session
    int fl_mode; // 0 none, 1 FLASH_BEGIN, 2 FLASH_DEFL_BEGIN
    uint32_t fl_off, fl_erase, fl_nblocks, fl_blksize, fl_seq, fl_written;
    z_stream z;
    int z_init, z_end;
    int fl_bitflip_done;
    // RAM download
    int mem_active;
    uint32_t mem_total, mem_nblocks, mem_blksize, mem_addr, mem_seq, mem_written;
    uint8_t *mem_buf;
    ram_area_t ram[RAM_AREAS];
    int nram;
    // stub flash session (legacy stub stub_write_flash.c semantics, docs/SIMULATOR.md "Flasher
    // stub")
    uint32_t st_next_write, st_remaining, st_next_erase, st_erase_left, st_comp_left;
    uint8_t st_last_error; // deferred write/inflate error, reported by the next DATA/END
    // stub READ_FLASH (docs/SIMULATOR.md "Flasher stub")
    int rf_active;
    uint32_t rf_addr, rf_len, rf_pkt, rf_inflight, rf_sent, rf_acked;
    sim_md5_t rf_md5;
    // protocol bookkeeping
    int last_op;       // opcode of the last command the ROM accepted (unsupported-op frames)
    uint64_t requests; // answered requests (fault counters count these)
    uint64_t data_blocks;
    uint64_t boards; // boards swapped in after the first (SIGUSR2)
    int synced;
    int sync_dropped;
    int cur_drop; // the request being handled has its reply dropped
    int noise_done, drop_done, hangup_done, brownout_done, rom_garble_done;
    // RTC watchdog (esptool's watchdog_reset, docs/SIMULATOR.md "Watchdog reset")
    uint64_t wdt_at_us; // 0 = not armed
    // application model
    uint64_t app_next_us;
    uint64_t app_tick;
    int app_valid;
    uint32_t app_word;
    // input framing
    sim_slip_dec_t slip;
    // time
    uint64_t now_us;      // wall time of the current entry point
    uint64_t vt_us;       // realtime: time at which the current output becomes ready
    uint64_t rx_clock_ns; // realtime: end of the last byte received (ns: 10.85 us per byte at
                          // 921600 must not be rounded to 10)
    uint64_t busy_until_us;
    uint64_t tx_clock_ns; // realtime: end of the last byte sent
    // realtime queues
    chunk_t *outq;
    size_t nout, capout;
    inframe_t *inq;
    size_t nin, capin;
    uint32_t rng;
    // eFuses and security (sim_efuse.h, sim_secure.h; docs/SIMULATOR.md "eFuses and security")
    sim_efuse_t *efuse;       // NULL: no controller model for this chip
    sim_fe_writer_t fl_enc;   // the current flash session writes encrypted
    int app_refused;          // Secure Boot refused the image: the chip stays halted
};

// ---------------------------------------------------------------------------------------------
// small helpers

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t rng_next(sim_dev_t *d)
{
    // xorshift32: deterministic per --seed, good enough for noise bytes
    uint32_t x = d->rng ? d->rng : 0x12345678u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rng = x;
    return x;
}

static const char *op_name(int op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (op_names[i].op == op) return op_names[i].name;
    return "UNKNOWN";
}

int sim_dev_opcode_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (strcasecmp(op_names[i].name, s) == 0) return op_names[i].op;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < 0 || v > 0xFF) return -1;
    return (int)v;
}

// ---------------------------------------------------------------------------------------------
// UART model: a byte stream sent at tx_baud as seen by a receiver at rx_baud (8N1, LSB first).
// Used for the ESP8266 boot log (74880 baud) and for baud mismatches on RFC 2217.

static int uart_bit(const uint8_t *p, size_t n, uint64_t j)
{
    uint64_t byte = j / 10, bit = j % 10;
    if (byte >= n) return 1; // idle line
    if (bit == 0) return 0;  // start bit
    if (bit == 9) return 1;  // stop bit
    return (p[byte] >> (bit - 1)) & 1;
}

static size_t uart_resample(const uint8_t *in, size_t n, uint32_t tx, uint32_t rx, uint8_t *out,
                            size_t cap)
{
    size_t o = 0;
    uint64_t nbits = (uint64_t)n * 10;
    double t = 0.0; // seconds
    while (o < cap) {
        // next falling edge at or after t: a transmitted 0 bit preceded by a 1 bit
        uint64_t j = (uint64_t)(t * tx);
        int found = 0;
        for (; j < nbits; j++) {
            if ((double)j / tx < t) continue;
            if (uart_bit(in, n, j) == 0 && (j == 0 || uart_bit(in, n, j - 1) == 1)) {
                found = 1;
                break;
            }
        }
        if (!found) break;
        double t0 = (double)j / tx;
        uint8_t v = 0;
        for (int b = 0; b < 8; b++) {
            double ts = t0 + (1.5 + b) / rx;
            if (uart_bit(in, n, (uint64_t)(ts * tx))) v |= (uint8_t)(1u << b);
        }
        out[o++] = v; // a framing error still delivers a byte (Linux default without PARMRK)
        t = t0 + 9.5 / rx;
    }
    return o;
}

static int baud_close(uint32_t a, uint32_t b)
{
    // UARTs tolerate a few percent of rate difference
    double r = (double)a / (double)b;
    return r > 0.97 && r < 1.03;
}

// ---------------------------------------------------------------------------------------------
// output path: realtime queue or straight to the transport

// The rate the host's UART runs at. A transport that sees it (RFC 2217 SET-BAUDRATE, a pty with
// --strict-baud) reports it; otherwise the host is assumed to do what the protocol told it: 115200
// (or the rate the ROM auto-bauded to), then the rate of the last CHANGE_BAUDRATE
// (docs/SIMULATOR.md "Baud rate").
static uint32_t host_rate(const sim_dev_t *d)
{
    if (d->strict_baud && d->host_baud) return d->host_baud;
    return d->nominal_baud ? d->nominal_baud : 115200;
}

// Time on the wire of one byte: start bit, 8 data bits, stop bit (8N1).
static uint64_t byte_ns(uint32_t baud)
{
    return 10000000000ull / (baud ? baud : 115200);
}

static void out_push(sim_dev_t *d, const uint8_t *p, size_t n, uint32_t baud)
{
    if (n == 0 || d->cfg.f_silent || d->uart_dead) return;
    // What a host at a different rate receives: the ESP8266's 74880-baud ROM text, a stub whose
    // divider went wrong, an RFC 2217 host that did not follow CHANGE_BAUDRATE.
    uint8_t *conv = NULL;
    uint32_t host = host_rate(d);
    if (!baud_close(host, baud)) {
        size_t cap = n * 10 + 16;
        conv = malloc(cap);
        if (!conv) return;
        n = uart_resample(p, n, baud, host, conv, cap);
        p = conv;
        if (n == 0) {
            free(conv);
            return;
        }
    }
    if (!d->cfg.realtime) {
        d->io.write(d->io.ctx, p, n, baud);
        free(conv);
        return;
    }
    if (d->nout == d->capout) {
        size_t nc = d->capout ? d->capout * 2 : 16;
        chunk_t *q = realloc(d->outq, nc * sizeof(*q));
        if (!q) {
            free(conv);
            return;
        }
        d->outq = q;
        d->capout = nc;
    }
    uint8_t *copy = malloc(n);
    if (!copy) {
        free(conv);
        return;
    }
    memcpy(copy, p, n);
    free(conv);
    d->outq[d->nout++] = (chunk_t){.due_us = d->vt_us, .baud = baud, .len = n, .data = copy};
}

static void out_text(sim_dev_t *d, const char *text, uint32_t baud)
{
    out_push(d, (const uint8_t *)text, strlen(text), baud);
}

static void out_frame(sim_dev_t *d, const uint8_t *pkt, size_t len)
{
    uint8_t enc[2 * 4096 +
                8]; // largest frame: a stub READ_FLASH packet (docs/SIMULATOR.md "Flasher stub")
    size_t n = sim_slip_encode(pkt, len, enc, sizeof(enc));
    out_push(d, enc, n, d->baud);
}

// ---------------------------------------------------------------------------------------------
// registers

static reg_t *reg_find(sim_dev_t *d, uint32_t addr)
{
    for (size_t i = 0; i < d->nregs; i++)
        if (d->regs[i].addr == addr) return &d->regs[i];
    return NULL;
}

static void reg_store(sim_dev_t *d, uint32_t addr, uint32_t val)
{
    reg_t *r = reg_find(d, addr);
    if (r) {
        r->val = val;
        return;
    }
    if (d->nregs >= REGS_MAX)
        return; // a host writing this many distinct addresses is broken; writes are dropped
    if (d->nregs == d->capregs) {
        size_t nc = d->capregs ? d->capregs * 2 : 64;
        reg_t *q = realloc(d->regs, nc * sizeof(*q));
        if (!q) return;
        d->regs = q;
        d->capregs = nc;
    }
    d->regs[d->nregs++] = (reg_t){addr, val};
}

static uint32_t uart_clkdiv(const sim_dev_t *d)
{
    uint32_t clk = d->chip->uart_clk_hz, b = d->baud ? d->baud : 115200;
    uint32_t integ = clk / b;
    uint32_t frag = (uint32_t)(((uint64_t)(clk % b) * 16) / b);
    return (integ & 0xFFFFF) | (frag & 0xF) << 20;
}

// eFuse words holding the chip revision (docs/SIMULATOR.md "Chips").
static uint32_t rev_bits(const sim_dev_t *d, uint32_t addr)
{
    const sim_chip_t *c = d->chip;
    uint32_t maj = (uint32_t)d->cfg.rev_major, min = (uint32_t)d->cfg.rev_minor, v = 0;
    switch (c->rev_kind) {
    case SIM_REV_NONE: break;
    case SIM_REV_ESP32: {
        static const uint32_t code[4] = {0, 1, 3, 7}; // major -> b2b1b0
        uint32_t b = code[maj & 3];
        if (addr == c->rev_w_a && (b & 1)) v |= 1u << 15;
        if (addr == c->rev_w_b) {
            if (b & 2) v |= 1u << 20;
            v |= (min & 3) << 24;
        }
        if (addr == 0x3FF6607C && (b & 4)) // APB_CTL_DATE bit 31
            v |= 1u << 31;
        break;
    }
    case SIM_REV_S2:
        if (addr == c->rev_w_a) v |= (maj & 3) << 18 | ((min >> 3) & 1) << 20;
        if (addr == c->rev_w_b) v |= (min & 7) << 4;
        break;
    case SIM_REV_S3C3:
        if (addr == c->rev_w_a) v |= (min & 7) << 18;
        if (addr == c->rev_w_b) v |= (maj & 3) << 24 | ((min >> 3) & 1) << 23;
        break;
    case SIM_REV_C2:
        if (addr == c->rev_w_a) v |= (maj & 3) << 20 | (min & 0xF) << 16;
        break;
    case SIM_REV_C6:
        if (addr == c->rev_w_a) v |= (maj & 3) << 22 | (min & 0xF) << 18;
        break;
    case SIM_REV_H2:
        if (addr == c->rev_w_a) v |= (maj & 3) << 21 | (min & 7) << 18;
        break;
    }
    return v;
}

// Value of a register nobody wrote: ROM constants, eFuse, clocks (docs/SIMULATOR.md "Chips").
static uint32_t reg_default(const sim_dev_t *d, uint32_t addr)
{
    const sim_chip_t *c = d->chip;
    const uint8_t *m = d->cfg.mac;
    uint32_t v = 0;
    if (addr == 0x40001000) return c->magic;
    if (addr == c->uart_clkdiv_reg) return uart_clkdiv(d);
    if (c->usb_buf_no &&
        addr == c->usb_buf_no) // the ROM's console number (docs/SIMULATOR.md "ROM loader")
        return (uint32_t)(d->cfg.usb_otg ? c->usb_otg_no : d->cfg.usb_jtag ? c->usb_jtag_no : 0);
    if (c->fam == SIM_FAM_8266) {
        // OTP MAC words and OUI rules (docs/SIMULATOR.md "Chips", esptool ESP8266ROM.read_mac)
        int oui_fe34 = m[0] == 0x18 && m[1] == 0xFE && m[2] == 0x34;
        int oui_acd0 = m[0] == 0xAC && m[1] == 0xD0 && m[2] == 0x74;
        if (addr == 0x3FF00050) return (uint32_t)m[5] << 24;
        if (addr == 0x3FF00054)
            return (uint32_t)(oui_acd0 ? 1 : 0) << 16 | (uint32_t)m[3] << 8 | m[4];
        if (addr == 0x3FF0005C)
            return (oui_fe34 || oui_acd0) ? 0 : ((uint32_t)m[0] << 16 | (uint32_t)m[1] << 8 | m[2]);
        return 0;
    }
    if (addr == c->mac_reg)
        v |= (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5];
    if (addr == c->mac_reg + 4) {
        v |= (uint32_t)m[0] << 8 | m[1];
        if (c->mac_ext) v |= 0xFFFEu << 16; // MAC_EXT FF:FE (docs/SIMULATOR.md "Chips")
    }
    v |= rev_bits(d, addr);
    if (c->fam == SIM_FAM_ESP32) {
        // ROM baud correction inputs (docs/SIMULATOR.md "Baud rate"): chosen so that the ROM's
        // computed clock is exactly 40 MHz, i.e. the corrected rate esptool sends equals the real
        // rate.
        if (addr == 0x3FF5F06C) v |= 1024u << 7; // RTC calibration value
        if (addr == 0x3FF5A010) v |= 100; // eFuse CK8M_FREQ: 1024 * 15625 * 100 / 40 = 40 MHz
        if (addr == 0x60000078) v |= 0x15122500; // UART_DATE, seen in esptool traces of ESP32 ROMs
    }
    return v;
}

static uint32_t reg_read(sim_dev_t *d, uint32_t addr)
{
    if (sim_efuse_owns(d->efuse, addr)) return sim_efuse_read(d->efuse, addr);
    reg_t *r = reg_find(d, addr);
    return r ? r->val : reg_default(d, addr);
}

// ---------------------------------------------------------------------------------------------
// SPI flash controller "user command" (docs/SIMULATOR.md "ROM loader")

static uint8_t sfdp_byte(const sim_dev_t *d, uint32_t a)
{
    // Minimal SFDP: signature, one parameter header pointing at a basic table whose second
    // DWORD is the density in bits - 1. Enough for esptool's signature check (v5.3+).
    static const uint8_t head[16] = {'S',  'F',  'D',  'P',  0x06, 0x01, 0x00, 0xFF,
                                     0x00, 0x06, 0x01, 0x10, 0x30, 0x00, 0x00, 0xFF};
    if (a < sizeof(head)) return head[a];
    if (a >= 0x30 && a < 0x70) {
        uint32_t off = a - 0x30;
        if (off >= 4 && off < 8) {
            uint32_t bits = d->flash.size * 8u - 1u;
            return (uint8_t)(bits >> (8 * (off - 4)));
        }
        if (off < 4) {
            static const uint8_t dw1[4] = {0xE5, 0x20, 0xF1, 0xFF};
            return dw1[off];
        }
        return 0xFF;
    }
    return 0xFF;
}

static void spi_run_user_cmd(sim_dev_t *d)
{
    const sim_chip_t *c = d->chip;
    uint32_t base = c->spi_base;
    uint32_t user = reg_read(d, base + c->off_user);
    uint32_t user1 = reg_read(d, base + c->off_user1);
    uint32_t user2 = reg_read(d, base + c->off_user2);
    uint8_t opcode = (uint8_t)(user2 & 0xFF);
    int has_addr = (user >> 30) & 1, miso = (user >> 28) & 1, mosi = (user >> 27) & 1;
    uint32_t miso_bits = 0, mosi_bits = 0;
    if (c->fam == SIM_FAM_8266) {
        // ESP8266 keeps the data lengths in USER1 (docs/SIMULATOR.md "ROM loader")
        if (miso) miso_bits = ((user1 >> 8) & 0x1FF) + 1;
        if (mosi) mosi_bits = ((user1 >> 17) & 0x1FF) + 1;
    } else {
        if (miso) miso_bits = (reg_read(d, base + c->off_miso_dlen) & 0xFFFFFF) + 1;
        if (mosi) mosi_bits = (reg_read(d, base + c->off_mosi_dlen) & 0xFFFFFF) + 1;
    }
    uint32_t addr_bits = has_addr ? ((user1 >> 26) & 0x3F) + 1 : 0;
    uint32_t addr = reg_read(d, base + 0x04);
    if (addr_bits) {
        if (c->addr_msb)
            addr = addr_bits >= 32 ? addr : addr >> (32 - addr_bits);
        else if (addr_bits < 32)
            addr &= (1u << addr_bits) - 1;
    }
    uint8_t tx[64] = {0}, rx[64];
    uint32_t ntx = (mosi_bits + 7) / 8, nrx = (miso_bits + 7) / 8;
    if (ntx > 64) ntx = 64;
    if (nrx > 64) nrx = 64;
    for (uint32_t i = 0; i < ntx; i++)
        tx[i] = (uint8_t)(reg_read(d, base + c->off_w0 + (i & ~3u)) >> (8 * (i & 3)));
    memset(rx, 0xFF, sizeof(rx)); // MISO idles high when nothing drives it
    int responding = d->attached && !d->dpd;
    if (d->dpd && opcode == 0xAB) d->dpd = 0; // release from deep power-down
    if (responding) {
        uint32_t jedec = d->cfg.jedec;
        switch (opcode) {
        case 0x9F: // RDID: manufacturer, memory type, capacity (docs/SIMULATOR.md "ROM loader")
            rx[0] = (uint8_t)(jedec >> 16);
            rx[1] = (uint8_t)(jedec >> 8);
            rx[2] = (uint8_t)jedec;
            break;
        case 0x05:
            rx[0] = (uint8_t)(d->sr[0] | (d->wel ? 0x02 : 0));
            rx[1] = rx[0];
            break;
        case 0x35: rx[0] = d->sr[1]; break;
        case 0x15: rx[0] = d->sr[2]; break;
        case 0x06: d->wel = 1; break;
        case 0x50:
            d->wel = 1; // volatile status write enable
            break;
        case 0x04: d->wel = 0; break;
        case 0x01:
            if (d->wel) {
                d->sr[0] = (uint8_t)(tx[0] & 0xFC);
                if (ntx > 1) d->sr[1] = tx[1];
            }
            d->wel = 0;
            break;
        case 0x31:
            if (d->wel) d->sr[1] = tx[0];
            d->wel = 0;
            break;
        case 0x11:
            if (d->wel) d->sr[2] = tx[0];
            d->wel = 0;
            break;
        case 0x5A: // RDSFDP
            for (uint32_t i = 0; i < nrx; i++)
                rx[i] = sfdp_byte(d, addr + i);
            break;
        case 0x03: // READ
        case 0x0B: // FAST_READ
            sim_flash_read(&d->flash, addr % d->flash.size, rx, nrx);
            break;
        case 0x4B: // unique ID: derived from the seed so each simulated part differs
            for (uint32_t i = 0; i < nrx; i++)
                rx[i] = (uint8_t)((d->cfg.seed >> (8 * (i & 3))) ^ (0x5A + i));
            break;
        case 0xB9:
            d->dpd = 1; // deep power-down: ignores everything but 0xAB
            break;
        default: // 0x66/0x99 reset, 0x79/0xFF/0xAB etc.: accepted, no visible effect
            break;
        }
    }
    // the controller shifts MISO bytes into W0.. (only the bytes it read)
    for (uint32_t i = 0; i < nrx; i++) {
        uint32_t waddr = base + c->off_w0 + (i & ~3u);
        uint32_t w = reg_read(d, waddr);
        unsigned sh = 8 * (i & 3);
        w = (w & ~(0xFFu << sh)) | (uint32_t)rx[i] << sh;
        reg_store(d, waddr, w);
    }
}

static void efuse_write(sim_dev_t *d, uint32_t addr, uint32_t val);

static void reg_write(sim_dev_t *d, uint32_t addr, uint32_t val, uint32_t mask)
{
    if (sim_efuse_owns(d->efuse, addr)) {
        efuse_write(d, addr, (val & mask) | (sim_efuse_read(d->efuse, addr) & ~mask));
        return;
    }
    uint32_t old = reg_read(d, addr);
    uint32_t nv = (val & mask) | (old & ~mask);
    reg_store(d, addr, nv);
    if (addr == d->chip->spi_base && (nv & SPI_CMD_USR)) {
        spi_run_user_cmd(d);
        reg_store(d, addr, nv & ~SPI_CMD_USR); // "hardware clears it when done"
    }
}

// ---------------------------------------------------------------------------------------------
// replies

static int status_len(const sim_dev_t *d)
{
    return d->loader == LOADER_STUB ? 2 : d->chip->status_len; // docs/SIMULATOR.md "ROM loader"
}

static void send_raw_reply(sim_dev_t *d, uint8_t op, uint32_t val, const uint8_t *out,
                           size_t outlen, uint8_t st, uint8_t err)
{
    uint8_t pkt[8 + 128];
    size_t sl = (size_t)status_len(d);
    if (outlen > 128 - sl) outlen = 128 - sl;
    pkt[0] = 0x01;
    pkt[1] = op;
    pkt[2] = (uint8_t)(outlen + sl);
    pkt[3] = (uint8_t)((outlen + sl) >> 8);
    put32(pkt + 4, val);
    if (outlen) memcpy(pkt + 8, out, outlen);
    memset(pkt + 8 + outlen, 0, sl);
    pkt[8 + outlen] = st;
    pkt[8 + outlen + 1] = err;
    if (d->cur_drop) return;
    out_frame(d, pkt, 8 + outlen + sl);
}

static void reply(sim_dev_t *d, uint8_t op, uint32_t val, const uint8_t *out, size_t outlen,
                  uint8_t err)
{
    send_raw_reply(d, op, val, out, outlen, err ? 1 : 0, err);
}

// ---------------------------------------------------------------------------------------------
// resets and boot

static void app_begin(sim_dev_t *d, int with_rom_banner, const char *rst_text);
static void rt_queues_clear(sim_dev_t *d);

static void loader_state_clear(sim_dev_t *d)
{
    d->loader = LOADER_ROM;
    d->stub_kind = SIM_PROG_APP;
    d->st_pending = 0;
    d->wdt_at_us = 0; // every reset stops the RTC watchdog
    d->baud = 115200;
    d->nominal_baud = 115200;
    d->uart_dead = 0;
    d->baud_locked = 0;
    d->rf_active = 0;
    d->nram = 0;
    d->st_last_error = 0;
    d->attached = 0;
    // ESP32-family ROMs assume 2 MB until SPI_SET_PARAMS (docs/SIMULATOR.md "ROM loader"). The
    // ESP8266 ROM has no such command, so no such limit is modelled there (only the chip's size).
    d->rom_flash_size = d->chip->fam == SIM_FAM_8266 ? d->flash.size : ROM_DEFAULT_FLASH_SIZE;
    d->dpd = 0;
    d->wel = 0;
    if (d->z_init) {
        inflateEnd(&d->z);
        d->z_init = 0;
    }
    d->fl_mode = 0;
    d->mem_active = 0;
    free(d->mem_buf);
    d->mem_buf = NULL;
    d->nregs = 0; // registers return to their reset values
    if (d->efuse) sim_efuse_reset(d->efuse); // the eFuse controller reloads its read registers
    d->fl_enc.on = 0;
    d->last_op = 0;
    d->sync_dropped = 0;
    sim_slip_dec_init(&d->slip);
}

static void ev_reset(const char *mode, const char *reason)
{
    sim_ev_t e;
    sim_ev_begin(&e, "reset");
    sim_ev_str(&e, "mode", mode);
    sim_ev_str(&e, "reason", reason);
    sim_ev_end(&e);
}

// DIS_DOWNLOAD_MODE burnt and the strap asks for download mode: the ROM prints its banner and
// does not enter the loader; the chip stays silent until reset (docs/SIMULATOR.md).
static void efuse_download_disabled(sim_dev_t *d, const char *rst_text, const char *reason)
{
    const sim_chip_t *c = d->chip;
    d->mode = MODE_DEAD;
    ev_reset("download_disabled", reason);
    char banner[512];
    snprintf(banner, sizeof(banner), "%s%s%s", c->rom_header, rst_text,
             sim_sec_download_banner(d->efuse, c->boot_download));
    out_text(d, banner, c->rom_log_baud);
}

// A chip reset: EN/power (strap sampled), software or brown-out (strap latched earlier).
static void chip_boot(sim_dev_t *d, int download, const char *rst_text, const char *reason)
{
    loader_state_clear(d);
    const sim_chip_t *c = d->chip;
    if (download && !d->cfg.f_app && sim_sec_download_disabled(d->efuse)) {
        efuse_download_disabled(d, rst_text, reason); // DIS_DOWNLOAD_MODE burnt
        return;
    }
    if (download && !d->cfg.f_app) {
        d->mode = MODE_DOWNLOAD;
        ev_reset("download", reason);
        char banner[512];
        snprintf(banner, sizeof(banner), "%s%s%s", c->rom_header, rst_text,
                 sim_sec_download_banner(d->efuse, c->boot_download));
        out_text(d, banner, c->rom_log_baud);
        return;
    }
    ev_reset("app", reason);
    app_begin(d, 1, rst_text);
}

// A write to the eFuse controller; the burn faults act on the device (docs/SIMULATOR.md).
static void efuse_write(sim_dev_t *d, uint32_t addr, uint32_t val)
{
    sim_efuse_ev_t ev = sim_efuse_write(d->efuse, addr, val);
    if (ev != SIM_EFUSE_EV_HANGUP && ev != SIM_EFUSE_EV_BROWNOUT) return;
    sim_ev_t e;
    sim_ev_begin(&e, "fault");
    sim_ev_str(&e, "fault", ev == SIM_EFUSE_EV_HANGUP ? "efuse-hangup" : "efuse-brownout");
    sim_ev_end(&e);
    d->cur_drop = 1; // the reply to the WRITE_REG that started the burn never leaves
    if (ev == SIM_EFUSE_EV_HANGUP) {
        if (d->io.hangup) d->io.hangup(d->io.ctx);
    } else {
        chip_boot(d, d->strap_download, d->chip->rst_brownout, "brownout");
    }
}

static void app_line(sim_dev_t *d)
{
    char line[512];
    if (d->app_refused) return; // Secure Boot refused the image: the chip stays halted
    if (!d->app_valid && !d->cfg.f_app) {
        snprintf(line, sizeof(line), "invalid header: 0x%08x\r\n", d->app_word);
    } else if (d->cfg.app_text) {
        snprintf(line, sizeof(line), "%s\r\n", d->cfg.app_text);
    } else {
        const uint8_t *m = d->cfg.mac;
        snprintf(line, sizeof(line),
                 "I (%llu) espsim: app running on %s, mac %02x:%02x:%02x:%02x:%02x:%02x, "
                 "tick %llu\r\n",
                 (unsigned long long)(300 + d->app_tick * d->cfg.app_period_ms), d->chip->display,
                 m[0], m[1], m[2], m[3], m[4], m[5], (unsigned long long)d->app_tick);
    }
    d->app_tick++;
    out_text(d, line, 115200);
}

static void app_begin(sim_dev_t *d, int with_rom_banner, const char *rst_text)
{
    const sim_chip_t *c = d->chip;
    d->mode = MODE_APP;
    sim_boot_t bt; // image magic (docs/SIMULATOR.md "Boot and modes"), flash decryption, Secure
                   // Boot (sim_secure.h)
    sim_sec_boot(d->efuse, c, &d->flash, &bt);
    d->app_word = bt.first_word;
    d->app_valid = bt.result == SIM_BOOT_OK;
    d->app_refused = bt.result == SIM_BOOT_REFUSED;
    if (with_rom_banner) {
        char banner[512];
        snprintf(banner, sizeof(banner), "%s%s%s", c->rom_header, rst_text, c->boot_flash);
        out_text(d, banner, c->rom_log_baud);
    }
    if (bt.msg[0]) out_text(d, bt.msg, c->rom_log_baud);
    if (d->app_valid || d->cfg.f_app) {
        if (d->cfg.boot_log) {
            out_text(d, d->cfg.boot_log, 115200);
            out_text(d, "\r\n", 115200);
        } else if (c->fam == SIM_FAM_8266) {
            out_text(d,
                     "load 0x40100000, len 27728, room 16 \r\ntail 0\r\nchksum 0x2a\r\n"
                     "load 0x3ffe8000, len 2124, room 8 \r\ntail 4\r\nchksum 0x93\r\n",
                     c->rom_log_baud);
            out_text(d, "\r\nI (42) espsim: application started\r\n", 115200);
        } else {
            char log[1024];
            snprintf(log, sizeof(log),
                     "%smode:DIO, clock div:%d\r\nload:0x3fff0030,len:7104\r\n"
                     "load:0x40078000,len:15576\r\nentry 0x40080650\r\n"
                     "I (29) boot: ESP-IDF v5.1.2 2nd stage bootloader\r\n"
                     "I (29) boot: chip revision: v%d.%d\r\n"
                     "I (31) boot: Loaded app from partition at offset 0x10000\r\n"
                     "I (240) cpu_start: Starting scheduler.\r\n"
                     "I (250) espsim: application started on %s\r\n",
                     c->fam == SIM_FAM_ESP32 ? "configsip: 0, SPIWP:0xee\r\n" : "SPIWP:0xee\r\n",
                     c->fam == SIM_FAM_ESP32 ? 2 : 1, d->cfg.rev_major, d->cfg.rev_minor,
                     c->display);
            out_text(d, log, 115200);
        }
        // --app-print: what the application says once it runs (e.g. "station ready"), at the
        // application's 115200 baud, after the ROM log (74880 on the ESP8266) and boot log
        for (int i = 0; i < d->cfg.n_app_print; i++) {
            out_text(d, d->cfg.app_print[i], 115200);
            out_text(d, "\r\n", 115200);
        }
        if (d->cfg.app_nvs_print) { // per-device data from the NVS partition (sim_nvs.c)
            char nvs[2048];
            sim_nvs_report(&d->flash, d->cfg.nvs_offset, d->cfg.nvs_size, d->cfg.app_nvs_print,
                           nvs, sizeof(nvs));
            out_text(d, nvs, 115200);
        }
        if (d->cfg.n_app_print) {
            sim_ev_t e;
            sim_ev_begin(&e, "app_print");
            sim_ev_num(&e, "lines", d->cfg.n_app_print);
            sim_ev_end(&e);
        }
    }
    d->app_tick = 0;
    d->app_next_us = d->now_us + (uint64_t)d->cfg.app_period_ms * 1000;
}

// ---------------------------------------------------------------------------------------------
// flash helpers

static uint32_t erase_cost_us(uint32_t first, uint32_t count)
{
    // docs/SIMULATOR.md "Timing": ~45 ms per 4 KiB sector, ~200 ms per 64 KiB block (ROM uses
    // blocks when the region is block aligned)
    uint64_t us = 0;
    uint32_t s = first, end = first + count;
    while (s < end) {
        if (s % 16 == 0 && end - s >= 16) {
            us += 200000;
            s += 16;
        } else {
            us += 45000;
            s++;
        }
    }
    return us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void do_erase(sim_dev_t *d, uint32_t first, uint32_t count)
{
    if (count == 0) return;
    sim_flash_erase_sectors(&d->flash, first, count);
    if (d->cfg.realtime) d->vt_us += erase_cost_us(first, count);
}

static int do_program(sim_dev_t *d, uint32_t off, const uint8_t *p, uint32_t n)
{
    // an encrypted session: the flash controller encrypts what reaches the flash (sim_flashenc.h)
    uint8_t *enc = d->fl_enc.on ? sim_fe_writer_feed(&d->fl_enc, &off, p, &n) : NULL;
    int ok = n == 0 || sim_flash_program(&d->flash, off, enc ? enc : p, n);
    free(enc);
    if (d->cfg.realtime) d->vt_us += (uint64_t)((n + 255) / 256) * 500; // 0.5 ms per 256-byte page
    if (d->cfg.f_bitflip && !d->fl_bitflip_done && n > 0 && off < d->flash.size) {
        // fault bitflip: one bit rots after the ROM's write check, so only MD5 notices
        sim_flash_flip_bit(&d->flash, off, 0);
        d->fl_bitflip_done = 1;
        sim_ev_t e;
        sim_ev_begin(&e, "fault");
        sim_ev_str(&e, "fault", "bitflip");
        sim_ev_hex(&e, "offset", off);
        sim_ev_end(&e);
    }
    return ok;
}

// Region check for ROM flash operations: 24-bit addressing and the size the ROM believes.
static int rom_range_ok(const sim_dev_t *d, uint32_t off, uint32_t len)
{
    uint64_t end = (uint64_t)off + len;
    if (end > d->rom_flash_size || end > d->flash.size) return 0;
    if (end > 16u * 1024u * 1024u)
        return 0; // ROM flash commands use 24-bit addresses (docs/SIMULATOR.md "ROM loader")
    return 1;
}

// ---------------------------------------------------------------------------------------------
// fault hooks after a data block

static void after_data_block(sim_dev_t *d)
{
    d->data_blocks++;
    if (d->cfg.f_hangup_after >= 0 && !d->hangup_done &&
        d->data_blocks >= (uint64_t)d->cfg.f_hangup_after) {
        d->hangup_done = 1;
        sim_ev_t e;
        sim_ev_begin(&e, "fault");
        sim_ev_str(&e, "fault", "hangup");
        sim_ev_num(&e, "block", (int64_t)d->data_blocks);
        sim_ev_end(&e);
        if (d->io.hangup) d->io.hangup(d->io.ctx);
        return;
    }
    if (d->cfg.f_brownout_after >= 0 && !d->brownout_done &&
        d->data_blocks >= (uint64_t)d->cfg.f_brownout_after) {
        d->brownout_done = 1;
        sim_ev_t e;
        sim_ev_begin(&e, "fault");
        sim_ev_str(&e, "fault", "brownout");
        sim_ev_num(&e, "block", (int64_t)d->data_blocks);
        sim_ev_end(&e);
        chip_boot(d, d->strap_download, d->chip->rst_brownout, "brownout");
    }
}

// ---------------------------------------------------------------------------------------------
// RTC watchdog reset (docs/SIMULATOR.md "Watchdog reset")

#define WDT_WKEY 0x50D83AA1u   // RTC/LP watchdog write-protect key
#define WDT_SLOW_CLK_HZ 150000 // RTC slow clock the timeout counts (about 150 kHz)

// esptool's watchdog_reset(): unlock the write protection, CONFIG1 = timeout, CONFIG0 = enable
// (bit 31) with a stage-0 action (bits 30:28), lock. A CONFIG0 write that enables the watchdog
// with an action while it is unlocked arms the reset; one that disables it disarms.
static void wdt_after_write(sim_dev_t *d, uint32_t addr)
{
    const sim_chip_t *c = d->chip;
    if (!c->wdt_cfg0 || addr != c->wdt_cfg0) return;
    if (reg_read(d, c->wdt_wprot) != WDT_WKEY) return; // locked: the write has no effect
    uint32_t v = reg_read(d, addr);
    if (!(v & (1u << 31)) || ((v >> 28) & 7) == 0) {
        d->wdt_at_us = 0;
        return;
    }
    uint64_t us = (uint64_t)reg_read(d, c->wdt_cfg0 + 4) * 1000000u / WDT_SLOW_CLK_HZ;
    if (us < 1000) us = 1000;
    if (us > 60000000u) us = 60000000u;
    d->wdt_at_us = d->now_us + us;
    sim_ev_t e;
    sim_ev_begin(&e, "watchdog_armed");
    sim_ev_num(&e, "timeout_us", (int64_t)us);
    sim_ev_end(&e);
}

// The watchdog fires: a system reset that samples the boot strap again (the lines as the host
// holds them; without modem lines nothing pulls the boot pin low, so the chip boots from flash).
static void wdt_fire(sim_dev_t *d)
{
    d->wdt_at_us = 0;
    int download = d->cfg.has_lines && d->en && d->dtr && !d->rts;
    d->strap_download = download;
    chip_boot(d, download, d->chip->rst_rtcwdt ? d->chip->rst_rtcwdt : d->chip->rst_sw,
              "watchdog");
}

// ---------------------------------------------------------------------------------------------
// An uploaded program that is not a flasher stub runs (docs/SIMULATOR.md "Uploaded programs"):
// it prints --ram-log once and --ram-text every --app-period ms at the UART rate the loader
// left, and never listens to the host, until the chip is reset.

static void ramapp_start(sim_dev_t *d)
{
    d->mode = MODE_RAMAPP;
    d->rf_active = 0;
    if (d->cfg.ram_log && *d->cfg.ram_log) {
        out_text(d, d->cfg.ram_log, d->baud);
        out_text(d, "\r\n", d->baud);
    }
    d->app_tick = 0;
    d->app_next_us = d->now_us; // the first line right away
}

static void ramapp_line(sim_dev_t *d)
{
    if (!d->cfg.ram_text || !*d->cfg.ram_text) return;
    out_text(d, d->cfg.ram_text, d->baud);
    out_text(d, "\r\n", d->baud);
    d->app_tick++;
}

// ---------------------------------------------------------------------------------------------
// RAM downloads and the jump to uploaded code

static void ram_area_add(sim_dev_t *d, uint32_t addr, uint32_t size)
{
    if (d->nram == RAM_AREAS) { // keep the latest areas: a stub upload is 2 of them
        memmove(d->ram, d->ram + 1, (RAM_AREAS - 1) * sizeof(d->ram[0]));
        d->nram--;
    }
    d->ram[d->nram++] = (ram_area_t){addr, size, 0};
}

// MEM_DATA bytes that landed in the newest RAM area: count, crc32 and first bytes, which is
// what identifies the program later (sim_stubid.h).
static void ram_area_fill(sim_dev_t *d, const uint8_t *p, uint32_t n)
{
    if (d->nram == 0) return;
    sim_upload_fill(&d->ram[d->nram - 1], p, n);
}

static void stub_start(sim_dev_t *d, uint32_t entry, const sim_prog_id_t *id);

// The loader jumps to uploaded code. The bytes are not executed. What runs is decided from the
// upload as docs/SIMULATOR.md "Uploaded programs" says: a known flasher stub greets with "OHAI"
// and then answers as that stub does (docs/SIMULATOR.md "Flasher stub"); any other program runs and
// prints its output (--ram-log / --ram-text); an entry point outside what was uploaded crashes the
// chip: silent until reset.
static void ram_jump(sim_dev_t *d, uint32_t entry)
{
    const ram_area_t *text = NULL;
    for (int i = 0; i < d->nram; i++) {
        const ram_area_t *a = &d->ram[i];
        if (entry >= a->addr && (uint64_t)entry < (uint64_t)a->addr + a->got) text = a;
    }
    int ohai = 0;
    for (int i = 0; i < d->nram; i++)
        ohai |= d->ram[i].has_ohai;
    sim_prog_id_t id;
    sim_prog_identify(d->chip, text, entry, ohai, &id);
    int stub = text && id.kind != SIM_PROG_APP && !d->cfg.f_no_stub;
    sim_ev_t e;
    sim_ev_begin(&e, "jump"); // every jump, so harnesses that look for it see stub uploads too
    sim_ev_hex(&e, "entry", entry);
    sim_ev_bool(&e, "stub", stub);
    if (text) {
        sim_ev_str(&e, "program", sim_prog_kind_name(id.kind));
        sim_ev_str(&e, "label", id.label);
        sim_ev_str(&e, "identified_by", id.how);
    }
    sim_ev_str(&e, "detail",
               stub ? "flasher stub started (emulated)"
               : !text ? "entry outside uploaded RAM: the chip crashes, silent until reset"
               : id.kind != SIM_PROG_APP
                   ? "fault no-stub: the uploaded stub hangs, chip silent until reset"
                   : "not a flasher stub: the uploaded program runs (--ram-log, --ram-text)");
    sim_ev_end(&e);
    if (stub) {
        stub_start(d, entry, &id);
        return;
    }
    if (text && id.kind == SIM_PROG_APP) {
        ramapp_start(d);
        return;
    }
    d->mode = MODE_DEAD;
}

// ---------------------------------------------------------------------------------------------
// ROM command handlers. Each returns after sending exactly one reply (or none when it must not).

static int rom_supports(const sim_dev_t *d, int op)
{
    switch (d->chip->fam) {
    case SIM_FAM_8266: return op >= 0x02 && op <= 0x0A;
    case SIM_FAM_ESP32: return (op >= 0x02 && op <= 0x0B) || (op >= 0x0D && op <= 0x13);
    case SIM_FAM_S2PLUS: return (op >= 0x02 && op <= 0x0B) || (op >= 0x0D && op <= 0x14);
    }
    return 0;
}

// Checks the data-packet sub-header (docs/SIMULATOR.md "ROM loader"). Returns the ROM error or 0.
static int check_data_packet(const uint8_t *data, size_t len, uint32_t chk, uint32_t *seq,
                             const uint8_t **payload, uint32_t *plen)
{
    if (len < 16) return ROM_EINVAL_MSG;
    uint32_t n = get32(data);
    if (n != len - 16) return ROM_EINVAL_MSG;
    *seq = get32(data + 4);
    *payload = data + 16;
    *plen = n;
    uint8_t x = 0xEF;
    for (uint32_t i = 0; i < n; i++)
        x ^= data[16 + i];
    if ((chk & 0xFF) != x) return ROM_ECHECKSUM;
    return 0;
}

static void ev_flash_begin(const char *name, uint32_t size, uint32_t nblocks, uint32_t blk,
                           uint32_t off, uint32_t er_first, uint32_t er_count, int enc)
{
    sim_ev_t e;
    sim_ev_begin(&e, name);
    sim_ev_hex(&e, "offset", off);
    sim_ev_num(&e, "size", size);
    sim_ev_num(&e, "blocks", nblocks);
    sim_ev_num(&e, "block_size", blk);
    sim_ev_hex(&e, "erase_start", er_first * SIM_FLASH_SECTOR);
    sim_ev_num(&e, "erase_len", (int64_t)er_count * SIM_FLASH_SECTOR);
    if (enc >= 0) sim_ev_num(&e, "encrypted", enc);
    sim_ev_end(&e);
}

// A FLASH_BEGIN / FLASH_DEFL_BEGIN session, the part the ROM and the stub share: where the data
// goes, the block bookkeeping and (compressed) a fresh inflater. -1 when the inflater cannot be
// set up (no session then); the caller answers with its loader's error status.
static int flash_session_begin(sim_dev_t *d, uint8_t op, uint32_t off, uint32_t size,
                               uint32_t nblocks, uint32_t blk)
{
    if (d->z_init) {
        inflateEnd(&d->z);
        d->z_init = 0;
    }
    d->fl_mode = op == OP_FLASH_DEFL_BEGIN ? 2 : 1;
    d->fl_off = off;
    d->fl_erase = size;
    d->fl_nblocks = nblocks;
    d->fl_blksize = blk;
    d->fl_seq = 0;
    d->fl_written = 0;
    d->z_end = 0;
    d->fl_bitflip_done = 0;
    sim_fe_writer_start(&d->fl_enc, d->efuse, 0); // the caller turns encryption on
    if (d->fl_mode == 2) {
        memset(&d->z, 0, sizeof(d->z));
        if (inflateInit(&d->z) != Z_OK) {
            d->fl_mode = 0;
            return -1;
        }
        d->z_init = 1;
    }
    return 0;
}

static void h_flash_begin(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    const sim_chip_t *c = d->chip;
    // S2+ ROMs need the 5th "encrypted" word, older ROMs reject it (docs/SIMULATOR.md "ROM loader")
    size_t want = c->fam == SIM_FAM_S2PLUS ? 20 : 16;
    if (len != want) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t size = get32(data), nblocks = get32(data + 4), blk = get32(data + 8);
    uint32_t off = get32(data + 12);
    int enc = len == 20 ? (int)get32(data + 16) : -1;
    if (c->fam == SIM_FAM_8266)
        d->attached = 1; // FLASH_BEGIN attaches the SPI flash on the ESP8266 ROM
    if (!d->attached || (op == OP_FLASH_DEFL_BEGIN && c->fam == SIM_FAM_8266)) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    if (blk == 0 || blk > 0x4000 || (size > 0 && !rom_range_ok(d, off, size)) ||
        (enc == 1 && sim_sec_manual_encrypt_disabled(d->efuse))) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    uint32_t first = off / SIM_FLASH_SECTOR, count = 0;
    if (c->fam == SIM_FAM_8266) {
        // ESP8266 ROM erase bug (docs/SIMULATOR.md "ROM loader"): SPIEraseArea erases the sectors
        // up to the next 64 KiB boundary ("head") and then still the full requested count after
        // them, i.e. n + min(head, n) sectors. esptool's get_erase_size() sends a reduced size so
        // that this covers the data; a host that sends the plain size erases too much.
        uint32_t n = (size + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR;
        uint32_t head = 16 - (first % 16);
        if (head > n) head = n;
        count = n + head;
    } else if (size > 0) {
        uint64_t end = (uint64_t)off + size;
        count = (uint32_t)((end + SIM_FLASH_SECTOR - 1) / SIM_FLASH_SECTOR) - first;
    }
    do_erase(d, first, count);
    if (flash_session_begin(d, op, off, size, nblocks, blk) != 0) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    sim_fe_writer_start(&d->fl_enc, d->efuse, enc == 1); // encrypted write (sim_flashenc.h)
    ev_flash_begin(op == OP_FLASH_DEFL_BEGIN ? "defl_begin" : "flash_begin", size, nblocks, blk,
                   off, first, count, enc);
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void ev_write_done(sim_dev_t *d)
{
    sim_ev_t e;
    sim_ev_begin(&e, d->fl_mode == 2 ? "defl_done" : "flash_done");
    sim_ev_hex(&e, "offset", d->fl_off);
    sim_ev_num(&e, "written", d->fl_written);
    sim_ev_num(&e, "blocks", d->fl_seq);
    sim_ev_end(&e);
}

// Fault rom-garble:K (docs/SIMULATOR.md "Faults"): data block K reaches the ROM corrupted. It
// answers 0x07 and, as Espressif's ESP32 ROM did in an emulator run, has counted the block: the
// same sequence number sent again is refused with 0x05; only a new BEGIN recovers.
static int rom_garble(sim_dev_t *d, uint8_t op)
{
    if (d->cfg.f_rom_garble <= 0 || d->rom_garble_done ||
        d->data_blocks + 1 != (uint64_t)d->cfg.f_rom_garble)
        return 0;
    d->rom_garble_done = 1;
    sim_ev_t e;
    sim_ev_begin(&e, "fault");
    sim_ev_str(&e, "fault", "rom-garble");
    sim_ev_num(&e, "block", (int64_t)d->data_blocks + 1);
    sim_ev_num(&e, "seq", d->fl_seq);
    sim_ev_end(&e);
    if (d->fl_mode) d->fl_seq++;
    reply(d, op, 0, NULL, 0, ROM_ECHECKSUM);
    return 1;
}

static void h_flash_data(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len, uint32_t chk)
{
    uint32_t seq = 0, plen = 0;
    if (rom_garble(d, op)) return;
    const uint8_t *pl = NULL;
    int err = check_data_packet(data, len, chk, &seq, &pl, &plen);
    if (err) {
        reply(d, op, 0, NULL, 0, (uint8_t)err);
        return;
    }
    int want_mode = op == OP_FLASH_DEFL_DATA ? 2 : 1;
    if (d->fl_mode != want_mode) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    if (seq != d->fl_seq) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    if (plen > d->fl_blksize) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    if (want_mode == 1) {
        uint32_t at = d->fl_off + seq * d->fl_blksize;
        // the ROM writes the block before it answers and reads it back (error 0x08)
        int ok = do_program(d, at, pl, plen);
        d->fl_written += plen;
        d->fl_seq++;
        reply(d, op, 0, NULL, 0, ok ? ROM_OK : ROM_EFLASH_WRITE);
    } else {
        uint8_t outbuf[16384];
        int zerr = Z_OK, ok = 1;
        d->z.next_in = (Bytef *)(uintptr_t)pl;
        d->z.avail_in = plen;
        while (!d->z_end && (d->z.avail_in > 0 || zerr == Z_OK)) {
            d->z.next_out = outbuf;
            d->z.avail_out = sizeof(outbuf);
            zerr = inflate(&d->z, Z_NO_FLUSH);
            size_t got = sizeof(outbuf) - d->z.avail_out;
            if (got) {
                if (!do_program(d, d->fl_off + d->fl_written, outbuf, (uint32_t)got)) ok = 0;
                d->fl_written += (uint32_t)got;
            }
            if (zerr == Z_STREAM_END) {
                d->z_end = 1;
                break;
            }
            if (zerr == Z_BUF_ERROR || (zerr == Z_OK && got == 0 && d->z.avail_in == 0)) break;
            if (zerr != Z_OK) break;
        }
        d->fl_seq++;
        if (zerr == Z_DATA_ERROR || zerr == Z_NEED_DICT || zerr == Z_MEM_ERROR ||
            zerr == Z_STREAM_ERROR) {
            int adler = zerr == Z_DATA_ERROR && d->z.msg &&
                        strstr(d->z.msg, "incorrect data check") != NULL;
            reply(d, op, 0, NULL, 0, adler ? ROM_EADLER : ROM_EINFLATE);
            return;
        }
        reply(d, op, 0, NULL, 0, ok ? ROM_OK : ROM_EFLASH_WRITE);
    }
    if (d->fl_seq == d->fl_nblocks) ev_write_done(d);
}

static void h_flash_end(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 4) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t flag = get32(data);
    sim_ev_t e;
    sim_ev_begin(&e, op == OP_FLASH_DEFL_END ? "defl_end" : "flash_end");
    sim_ev_num(&e, "flag", flag);
    sim_ev_end(&e);
    reply(d, op, 0, NULL, 0, ROM_OK);
    // Sending FLASH_END to a ROM leaves the loader (docs/SIMULATOR.md "ROM loader"): 0 reboots (the
    // strap was latched at the last chip reset, so a download-strapped chip comes back to download
    // mode), 1 runs the user code from flash without a reset.
    if (flag == 0)
        chip_boot(d, d->strap_download, d->chip->rst_sw, "flash_end");
    else {
        loader_state_clear(d);
        ev_reset("app", "run_user_code");
        app_begin(d, 0, NULL);
    }
}

static void h_mem_begin(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 16) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t total = get32(data), nblocks = get32(data + 4), blk = get32(data + 8);
    uint32_t addr = get32(data + 12);
    if (total > RAM_MAX || blk == 0) {
        reply(d, op, 0, NULL, 0, ROM_ERAM_SIZE);
        return;
    }
    free(d->mem_buf);
    d->mem_buf = calloc(1, total ? total : 1);
    if (!d->mem_buf) {
        d->mem_active = 0;
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    d->mem_active = 1;
    d->mem_total = total;
    d->mem_nblocks = nblocks;
    d->mem_blksize = blk;
    d->mem_addr = addr;
    d->mem_seq = 0;
    d->mem_written = 0;
    ram_area_add(d, addr, total);
    sim_ev_t e;
    sim_ev_begin(&e, "mem_begin");
    sim_ev_hex(&e, "addr", addr);
    sim_ev_num(&e, "size", total);
    sim_ev_end(&e);
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void h_mem_data(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len, uint32_t chk)
{
    uint32_t seq = 0, plen = 0;
    const uint8_t *pl = NULL;
    int err = check_data_packet(data, len, chk, &seq, &pl, &plen);
    if (err) {
        reply(d, op, 0, NULL, 0, (uint8_t)err);
        return;
    }
    if (!d->mem_active) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    if (seq != d->mem_seq) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint64_t at = (uint64_t)seq * d->mem_blksize;
    if (at + plen > d->mem_total) {
        reply(d, op, 0, NULL, 0, ROM_ERAM_SIZE);
        return;
    }
    memcpy(d->mem_buf + at, pl, plen);
    d->mem_written += plen;
    ram_area_fill(d, pl, plen);
    d->mem_seq++;
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void h_mem_end(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 8) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t flag = get32(data), entry = get32(data + 4);
    sim_ev_t e;
    sim_ev_begin(&e, "mem_end");
    sim_ev_num(&e, "flag", flag);
    sim_ev_hex(&e, "entry", entry);
    sim_ev_num(&e, "loaded", d->mem_written);
    sim_ev_end(&e);
    reply(d, op, 0, NULL, 0, ROM_OK);
    if (flag == 0) ram_jump(d, entry); // flag 0 = jump to entry (docs/SIMULATOR.md "ROM loader")
}

static void h_sync(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    static const uint8_t hdr[4] = {0x07, 0x07, 0x12, 0x20};
    if (len != 36 || memcmp(data, hdr, 4) != 0)
        return; // not a SYNC pattern: the ROM's baud detection does not lock, no answer
    for (int i = 4; i < 36; i++)
        if (data[i] != 0x55) return;
    if (d->sync_dropped < d->cfg.f_sync_drop) {
        d->sync_dropped++; // the first SYNCs after reset may be lost while the ROM auto-bauds
        return;
    }
    if (!d->baud_locked && d->strict_baud && d->host_baud)
        d->baud = d->nominal_baud = d->host_baud; // auto-baud: the ROM adopts the host's rate
    d->baud_locked = 1;
    int first = !d->synced;
    for (int i = 0; i < 8; i++) // 8 replies per SYNC (docs/SIMULATOR.md "ROM loader")
        reply(d, op, d->chip->sync_value, NULL, 0, ROM_OK);
    d->synced = 1;
    if (first) sim_event_simple("sync", NULL);
}

static void h_read_reg(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 4) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    reply(d, op, reg_read(d, get32(data)), NULL, 0, ROM_OK);
}

static void h_write_reg(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len == 0 || len % 16 != 0) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    for (size_t i = 0; i < len; i += 16) {
        uint32_t delay = get32(data + i + 12);
        if (d->cfg.realtime) d->vt_us += delay;
        reg_write(d, get32(data + i), get32(data + i + 4), get32(data + i + 8));
        wdt_after_write(d, get32(data + i));
    }
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void h_spi_set_params(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 24) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    d->rom_flash_size = get32(data + 4);
    sim_ev_t e;
    sim_ev_begin(&e, "spi_set_params");
    sim_ev_num(&e, "size", d->rom_flash_size);
    sim_ev_end(&e);
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void h_spi_attach(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    // ROM form: {config, is_legacy, 0, 0, 0} = 8 bytes; the 4-byte stub form is invalid here
    if (len != 8) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t cfg = get32(data);
    // Only the default pins (0) reach the simulated module's flash; other pin sets "attach"
    // but nothing answers on them, as on a real module.
    d->attached = cfg == 0;
    sim_ev_t e;
    sim_ev_begin(&e, "spi_attach");
    sim_ev_hex(&e, "config", cfg);
    sim_ev_bool(&e, "flash_reachable", d->attached);
    sim_ev_end(&e);
    reply(d, op, 0, NULL, 0, ROM_OK);
}

static void h_read_flash_slow(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    uint8_t buf[64];
    memset(buf, 0, sizeof(buf));
    if (len != 8) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t off = get32(data), n = get32(data + 4);
    if (n > 64) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    if (!d->attached || !rom_range_ok(d, off, n)) {
        reply(d, op, 0, NULL, 0, ROM_EFLASH_READ);
        return;
    }
    sim_flash_read(&d->flash, off, buf, n);
    if (d->cfg.realtime) d->vt_us += 25000; // ~20 kbit/s observed (docs/SIMULATOR.md "ROM loader")
    reply(d, op, 0, buf, 64, ROM_OK);       // always 64 data bytes, then status
}

static void h_change_baud(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 8) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t nb = get32(data), old = get32(data + 4);
    if (nb == 0) {
        reply(d, op, 0, NULL, 0, ROM_EFAILED);
        return;
    }
    reply(d, op, 0, NULL, 0, ROM_OK); // the reply still goes out at the old rate ("Baud rate")
    uint32_t prev = d->baud;
    d->baud = nb; // ESP32 clock correction modelled as exact (see reg_default)
    d->nominal_baud = nb;
    d->baud_locked = 1;
    sim_ev_t e;
    sim_ev_begin(&e, "change_baudrate");
    sim_ev_num(&e, "baud", nb);
    sim_ev_num(&e, "old_field", old);
    sim_ev_num(&e, "previous", prev);
    sim_ev_end(&e);
}

static void h_md5(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 16) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint32_t off = get32(data), n = get32(data + 4);
    if (!d->attached || !rom_range_ok(d, off, n)) {
        reply(d, op, 0, NULL, 0, ROM_EFLASH_READ);
        return;
    }
    sim_md5_t m;
    sim_md5_init(&m);
    uint8_t buf[4096];
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < sizeof(buf) ? n - done : (uint32_t)sizeof(buf);
        sim_flash_read(&d->flash, off + done, buf, k);
        sim_md5_update(&m, buf, k);
        done += k;
    }
    uint8_t dig[16];
    sim_md5_final(&m, dig);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    if (d->cfg.realtime) d->vt_us += (uint64_t)n * 2; // ROM MD5: ~0.5 MB/s (esptool allows 8 s/MB)
    sim_ev_t e;
    sim_ev_begin(&e, "md5");
    sim_ev_hex(&e, "offset", off);
    sim_ev_num(&e, "size", n);
    sim_ev_str(&e, "md5", hex);
    sim_ev_end(&e);
    // ROM: 32 lower-case hex characters then the status (docs/SIMULATOR.md "ROM loader")
    reply(d, op, 0, (const uint8_t *)hex, 32, ROM_OK);
}

static void h_security_info(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    (void)data;
    if (len != 0) {
        reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        return;
    }
    uint8_t out[20]; // from the eFuses: flags, crypt count, key purposes, chip id (sim_secure.h)
    reply(d, op, 0, out, sim_sec_info(d->efuse, d->chip, out), ROM_OK);
}

// The ROM's answer to an opcode it does not implement. esptool (loader.py command()) documents
// that the "unsupported command" response is sent 8 times, 14 bytes each on the wire for the
// ESP32 family, and recognises it only because its opcode differs from the request's while the
// status is (non-zero, 0x05). We echo the last accepted command's opcode (see SIMULATOR.md).
static void rom_unsupported(sim_dev_t *d, int op)
{
    sim_ev_t e;
    sim_ev_begin(&e, "unsupported");
    sim_ev_hex(&e, "op", (uint32_t)op);
    sim_ev_str(&e, "name", op_name(op));
    sim_ev_end(&e);
    for (int i = 0; i < 8; i++)
        send_raw_reply(d, (uint8_t)d->last_op, 0, NULL, 0, 1, ROM_EINVAL_MSG);
}

// ---------------------------------------------------------------------------------------------
// Flasher stub emulation: the legacy stub (esptool-legacy-flasher-stub stub_flasher.c,
// stub_commands.c, stub_write_flash.c; docs/SIMULATOR.md "Flasher stub"). The uploaded
// bytes are never run; after "OHAI" this code answers instead. Differences from the reference's
// tables are listed in docs/SIMULATOR.md ("Stub").

enum {
    STUB_OK = 0x00,
    // The legacy stub computes `error = verify_data_len(...) || handler(...)`: C's || yields 1,
    // so every failure of those commands (bad length, ERASE_REGION alignment 0x32/0x33, MD5 read
    // error 0x63, MEM_END short 0xC8...) reaches the host as status byte 0x01.
    STUB_EANY = 0x01,
    STUB_EBAD_DATA_LEN = 0xC0,
    STUB_EBAD_DATA_CHECKSUM = 0xC1,
    STUB_EBAD_BLOCKSIZE = 0xC2,
    STUB_EFAILED_SPI_OP = 0xC4,
    STUB_ENOT_IN_FLASH_MODE = 0xC6,
    STUB_EINFLATE = 0xC7,
    STUB_ENOT_ENOUGH_DATA = 0xC8,
    STUB_ETOO_MUCH_DATA = 0xC9,
    STUB_EINVALID_COMMAND = 0xC3, // esp-flasher-stub: opcode it does not have
    STUB_ECMD_NOT_IMPLEMENTED = 0xFF,
};

// The two stubs answer some errors differently (docs/SIMULATOR.md "Flasher stubs"). `lg` is the
// legacy stub's code, `nw` esp-flasher-stub's.
static int stub_is_new(const sim_dev_t *d)
{
    return d->stub_kind == SIM_PROG_NEW;
}

static uint8_t stub_code(const sim_dev_t *d, uint8_t lg, uint8_t nw)
{
    return stub_is_new(d) ? nw : lg;
}

#define STUB_MD5_US_PER_KB 250u    // stub MD5: ~4 MB/s (flash read + MD5 on the CPU; estimate)
#define STUB_START_US 1000u        // BSS clear, flash attach before "OHAI" (estimate)
#define STUB_BAUD_SWITCH_US 11000u // reply flushed, 10 ms, divider, 1 ms (stub_io.c)

// Stub response: header whose size field the stub fills in before it runs the command (2 for most
// commands, 18 for MD5, the info length for GET_SECURITY_INFO), output, then [error, extra].
static void stub_reply(sim_dev_t *d, uint8_t op, uint32_t val, const uint8_t *out, size_t outlen,
                       uint16_t size, uint8_t err, uint8_t extra)
{
    uint8_t pkt[8 + 32 + 2];
    if (outlen > 32) outlen = 32;
    pkt[0] = 0x01;
    pkt[1] = op;
    pkt[2] = (uint8_t)size;
    pkt[3] = (uint8_t)(size >> 8);
    put32(pkt + 4, val);
    if (outlen) memcpy(pkt + 8, out, outlen);
    pkt[8 + outlen] = err;
    pkt[9 + outlen] = extra;
    if (d->cur_drop) return;
    out_frame(d, pkt, 10 + outlen);
}

static void stub_status(sim_dev_t *d, uint8_t op, uint8_t err)
{
    stub_reply(d, op, 0, NULL, 0, 2, err, 0);
}

static void stub_session_clear(sim_dev_t *d)
{
    if (d->z_init) {
        inflateEnd(&d->z);
        d->z_init = 0;
    }
    d->fl_mode = 0;
    d->mem_active = 0;
    free(d->mem_buf);
    d->mem_buf = NULL;
    d->rf_active = 0;
    d->st_last_error = 0;
}

static void stub_start(sim_dev_t *d, uint32_t entry, const sim_prog_id_t *id)
{
    stub_session_clear(d);
    d->loader = LOADER_STUB;
    d->stub_kind = id->kind;
    d->st_pending = 0;
    // The stub attaches the flash on the default pins and calls SPIParamCfg(FLASH_MAX_SIZE =
    // 16 MB) itself (stub_main); the UART keeps the rate the ROM used (docs/SIMULATOR.md "Flasher
    // stub").
    d->attached = 1;
    d->dpd = 0;
    d->rom_flash_size = STUB_FLASH_SIZE;
    sim_ev_t e;
    sim_ev_begin(&e, "stub");
    sim_ev_hex(&e, "entry", entry);
    sim_ev_num(&e, "baud", d->baud);
    sim_ev_str(&e, "kind", sim_prog_kind_name(id->kind));
    sim_ev_str(&e, "label", id->label);
    sim_ev_end(&e);
    if (d->cfg.realtime) d->vt_us += STUB_START_US;
    static const uint8_t ohai[4] = {'O', 'H', 'A', 'I'};
    if (!d->cur_drop) out_frame(d, ohai, sizeof(ohai)); // C0 4F 48 41 49 C0, unrequested
}

// Flash access of the stub. The ROM SPI routines it calls refuse anything beyond the size set
// with SPIParamCfg (16 MB at start, or SPI_SET_PARAMS); inside that size, addresses beyond the
// physical part wrap around as on a NOR part that ignores its upper address bits.
static int stub_in_range(const sim_dev_t *d, uint32_t off, uint32_t len)
{
    // 24-bit flash addresses unless the part is larger (the legacy stub's 4-byte-address mode on
    // S3/P4/C5, docs/SIMULATOR.md "Flasher stub"); this also bounds what one command can make us
    // hash or erase
    uint64_t lim = d->flash.size > STUB_FLASH_SIZE ? d->flash.size : STUB_FLASH_SIZE;
    if (d->rom_flash_size < lim) lim = d->rom_flash_size;
    return (uint64_t)off + len <= lim;
}

// Both stubs address flash with 24 bits on every simulated chip but the ESP32-S3 (legacy
// stub_flasher.h FLASH_MAX_SIZE; esp-flasher-stub modelled alike): on a larger part, addresses
// from 16 MB up alias to the low 16 MB as on real parts (docs/SIMULATOR.md "16 MB").
static int stub_24bit(const sim_dev_t *d)
{
    return strcmp(d->chip->name, "esp32s3") != 0;
}

// One contiguous piece of a stub flash access at `off`: the physical address and how many of
// `n` bytes follow it without wrapping (24-bit alias, then the part's own size).
static uint32_t stub_piece(const sim_dev_t *d, uint32_t off, uint32_t n, uint32_t *phys)
{
    uint32_t a = stub_24bit(d) ? off & 0xFFFFFFu : off;
    uint32_t p = a & (d->flash.size - 1), k = d->flash.size - p;
    if (stub_24bit(d) && k > 0x1000000u - a) k = 0x1000000u - a;
    *phys = p;
    return k < n ? k : n;
}

static void stub_flash_read(sim_dev_t *d, uint32_t off, uint8_t *out, uint32_t n)
{
    while (n > 0) {
        uint32_t p, k = stub_piece(d, off, n, &p);
        sim_flash_read(&d->flash, p, out, k);
        off += k;
        out += k;
        n -= k;
    }
}

static void stub_flash_program(sim_dev_t *d, uint32_t off, const uint8_t *data, uint32_t n)
{
    while (n > 0) {
        uint32_t p, k = stub_piece(d, off, n, &p);
        (void)do_program(d, p, data, k); // SPIWrite does not read back: no write check
        off += k;
        data += k;
        n -= k;
    }
}

// One erase command: a 4 KiB sector or a 64 KiB block (docs/SIMULATOR.md "Timing" times).
static void stub_erase_unit(sim_dev_t *d, uint32_t sector, int block)
{
    uint32_t nsec = d->flash.size / SIM_FLASH_SECTOR;
    if (stub_24bit(d)) sector &= 0xFFFu; // 16 MB / 4 KiB sectors (24-bit addresses)
    sim_flash_erase_sectors(&d->flash, sector % nsec, block ? 16 : 1);
    if (d->cfg.realtime) d->vt_us += block ? 200000 : 45000;
}

// stub_write_flash.c start_next_erase(): a block when 16 sectors remain and the next sector is
// block aligned, else one sector. Beyond the configured size the ROM refuses the erase and the
// write that follows fails.
static void stub_erase_next(sim_dev_t *d)
{
    int block = d->st_erase_left >= 16 && d->st_next_erase % 16 == 0;
    uint32_t cnt = block ? 16 : 1;
    if ((uint64_t)(d->st_next_erase + cnt) * SIM_FLASH_SECTOR <= d->rom_flash_size)
        stub_erase_unit(d, d->st_next_erase, block);
    d->st_erase_left -= cnt;
    d->st_next_erase += cnt;
}

// handle_flash_data(): trim to the announced size (the last FLASH_DATA block is padded), erase
// just in time up to the sector the write ends in, program.
static void stub_write(sim_dev_t *d, const uint8_t *p, uint32_t n)
{
    if (n > d->st_remaining) n = d->st_remaining;
    if (n == 0) return;
    uint32_t last = (d->st_next_write + n) / SIM_FLASH_SECTOR;
    while (d->st_erase_left > 0 && d->st_next_erase <= last)
        stub_erase_next(d);
    if (stub_in_range(d, d->st_next_write, n))
        stub_flash_program(d, d->st_next_write, p, n);
    else
        d->st_last_error = STUB_EFAILED_SPI_OP; // reported with the next DATA/END
    d->st_next_write += n;
    d->st_remaining -= n;
    d->fl_written += n;
}

// handle_flash_deflated_data(): inflate while output is still announced; errors are deferred.
static void stub_inflate(sim_dev_t *d, const uint8_t *p, uint32_t n)
{
    if (d->st_remaining == 0 && n > 4) {
        d->st_last_error = STUB_ETOO_MUCH_DATA; // only the Adler-32 trailer may come late
        return;
    }
    uint8_t out[16384];
    int zerr = Z_OK;
    d->z.next_in = (Bytef *)(uintptr_t)p;
    d->z.avail_in = n;
    while (!d->z_end && d->st_remaining > 0) {
        d->z.next_out = out;
        d->z.avail_out = sizeof(out);
        zerr = inflate(&d->z, Z_NO_FLUSH);
        uint32_t got = (uint32_t)(sizeof(out) - d->z.avail_out);
        if (got) stub_write(d, out, got);
        if (zerr == Z_STREAM_END) {
            d->z_end = 1;
            break;
        }
        if (zerr != Z_OK) break;
        if (d->z.avail_in == 0 && d->z.avail_out != 0) break; // all input used, no output pending
    }
    uint32_t used = n - d->z.avail_in;
    d->st_comp_left = used > d->st_comp_left ? 0 : d->st_comp_left - used;
    if (zerr == Z_DATA_ERROR || zerr == Z_NEED_DICT || zerr == Z_MEM_ERROR ||
        zerr == Z_STREAM_ERROR)
        d->st_last_error = STUB_EINFLATE;
    // legacy: a stream that ends short is reported at once; esp-flasher-stub notices it only at
    // FLASH_DEFL_END (bytes still missing: 0xC0)
    if (d->z_end && d->st_remaining > 0 && !stub_is_new(d))
        d->st_last_error = STUB_ENOT_ENOUGH_DATA;
}

static void stub_flash_begin(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    // Both stubs take 16 or 20 bytes (the 5th word: "encrypted"), other lengths get 0xC0
    // (legacy stub since v1.10.0; esp-flasher-stub). The legacy stub checks the block size
    // first (0xC2 above 16 KiB); esp-flasher-stub does not, but starts erasing at once, so a
    // region outside the flash fails here (0xC4). Exact size used (docs/SIMULATOR.md).
    if (len != 16 && len != 20) {
        stub_status(d, op, STUB_EBAD_DATA_LEN);
        return;
    }
    if (!stub_is_new(d) && get32(data + 8) > STUB_MAX_BLOCK) {
        stub_status(d, op, STUB_EBAD_BLOCKSIZE);
        return;
    }
    uint32_t size = get32(data), nblocks = get32(data + 4), blk = get32(data + 8);
    uint32_t off = get32(data + 12);
    if (stub_is_new(d) && size > 0 && !stub_in_range(d, off - off % SIM_FLASH_SECTOR, 1)) {
        stub_status(d, op, STUB_EFAILED_SPI_OP);
        return;
    }
    stub_session_clear(d);
    d->st_next_write = off;
    d->st_next_erase = off / SIM_FLASH_SECTOR;
    d->st_remaining = size;
    d->st_erase_left =
        (uint32_t)(((uint64_t)(off % SIM_FLASH_SECTOR) + size + SIM_FLASH_SECTOR - 1) /
                   SIM_FLASH_SECTOR);
    d->st_comp_left =
        (uint32_t)((uint64_t)nblocks * blk > UINT32_MAX ? UINT32_MAX : (uint64_t)nblocks * blk);
    if (flash_session_begin(d, op, off, size, nblocks, blk) != 0) {
        stub_status(d, op, STUB_EFAILED_SPI_OP);
        return;
    }
    // esp-flasher-stub honours the "encrypted" word; the legacy stub ignores it and has
    // FLASH_ENCRYPT_DATA instead (docs/SIMULATOR.md "eFuses and security")
    if (stub_is_new(d))
        sim_fe_writer_start(&d->fl_enc, d->efuse, len == 20 && get32(data + 16) == 1);
    ev_flash_begin(op == OP_FLASH_DEFL_BEGIN ? "defl_begin" : "flash_begin", size, nblocks, blk,
                   off, off / SIM_FLASH_SECTOR, d->st_erase_left,
                   len == 20 ? (int)get32(data + 16) : -1);
    stub_status(d, op, STUB_OK);
}

// esp-flasher-stub's checks of a FLASH_DATA / FLASH_DEFL_DATA request, in its order. It does
// not tell the two sessions apart (only "a flash session is open").
static uint8_t nstub_data_err(const sim_dev_t *d, int want, const uint8_t *data, size_t len,
                              uint32_t chk)
{
    if (len < 16) return want == 1 ? STUB_ENOT_ENOUGH_DATA : STUB_EBAD_DATA_LEN;
    if (d->fl_mode == 0) return STUB_ENOT_IN_FLASH_MODE;
    uint32_t n = get32(data);
    if (want == 1 && n != len - 16) return STUB_ETOO_MUCH_DATA;
    if (want == 2 && d->st_remaining == 0) return STUB_ETOO_MUCH_DATA; // all output written
    if (n > len - 16) n = (uint32_t)(len - 16);
    uint8_t x = 0xEF;
    for (uint32_t i = 0; i < n; i++)
        x ^= data[16 + i];
    return (chk & 0xFF) != x ? STUB_EBAD_DATA_CHECKSUM : STUB_OK;
}

// esp-flasher-stub, FLASH_DEFL_DATA with sequence number 0: a new zlib stream starts.
static void nstub_inflate_restart(sim_dev_t *d, const uint8_t *data)
{
    if (!d->z_init) {
        memset(&d->z, 0, sizeof(d->z));
        d->z_init = inflateInit(&d->z) == Z_OK;
    } else if (get32(data + 4) == 0 && d->fl_seq > 0) {
        inflateReset(&d->z);
    }
    if (get32(data + 4) == 0) d->z_end = 0;
}

// FLASH_DATA / FLASH_DEFL_DATA: ACK after the length and checksum check, then write.
// Errors of the write itself are deferred: the legacy stub reports them with the next DATA or
// END, esp-flasher-stub to the next command of any kind, which it then does not run.
static void stub_flash_data(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len, uint32_t chk)
{
    int want = op == OP_FLASH_DEFL_DATA ? 2 : 1;
    uint8_t err;
    if (stub_is_new(d)) {
        err = nstub_data_err(d, want, data, len, chk);
    } else if (d->fl_mode != want) {
        err = STUB_ENOT_IN_FLASH_MODE;
    } else {
        err = d->st_last_error; // the deferred error of an earlier block
        if (len < 16 || get32(data) != len - 16) {
            err = STUB_EBAD_DATA_LEN;
        } else {
            uint8_t x = 0xEF;
            for (size_t i = 16; i < len; i++)
                x ^= data[i];
            if ((chk & 0xFF) != x) err = STUB_EBAD_DATA_CHECKSUM;
        }
    }
    stub_status(d, op, err);
    if (err) return;
    // the reply is on its way; the write now overlaps the receipt of the next block
    if (stub_is_new(d) && want == 2) nstub_inflate_restart(d, data);
    d->fl_seq++;
    if (want == 1)
        stub_write(d, data + 16, (uint32_t)(len - 16));
    else if (d->z_init)
        stub_inflate(d, data + 16, (uint32_t)(len - 16));
    if (stub_is_new(d) && d->st_last_error) {
        d->st_pending = d->st_last_error;
        d->st_last_error = 0;
    }
    if (d->fl_seq == d->fl_nblocks) ev_write_done(d);
}

// FLASH_END / FLASH_DEFL_END: the barrier (every earlier block is written before this command
// runs) that reports a deferred error; flag 0 reboots (software reset) when all went well.
static void stub_flash_end(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    uint32_t flag = len >= 4 ? get32(data) : 1;
    uint8_t err;
    if (stub_is_new(d) && len != 4)
        err = STUB_EBAD_DATA_LEN;
    else if (d->fl_mode == 0)
        err = STUB_ENOT_IN_FLASH_MODE;
    else if (d->st_remaining > 0)
        err = stub_code(d, STUB_ENOT_ENOUGH_DATA, STUB_EBAD_DATA_LEN);
    else {
        err = d->st_last_error;
        stub_session_clear(d);
    }
    sim_ev_t e;
    sim_ev_begin(&e, op == OP_FLASH_DEFL_END ? "defl_end" : "flash_end");
    sim_ev_num(&e, "flag", flag);
    sim_ev_hex(&e, "status", err);
    sim_ev_end(&e);
    stub_status(d, op, err);
    // the legacy stub reboots on flag 0; esp-flasher-stub does not (its reboot is a TODO) and
    // keeps answering
    if (err == STUB_OK && flag == 0 && !stub_is_new(d))
        chip_boot(d, d->strap_download, d->chip->rst_sw, "flash_end");
}

static void stub_md5(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    // legacy: the size field says 18 before the command runs, failures collapse to 0x01;
    // esp-flasher-stub: an error reply has no digest and size 2 (0xC0 length, 0xC4 read)
    if (len != 16 || !stub_in_range(d, get32(data), get32(data + 4))) {
        if (stub_is_new(d))
            stub_status(d, op, len != 16 ? STUB_EBAD_DATA_LEN : STUB_EFAILED_SPI_OP);
        else
            stub_reply(d, op, 0, NULL, 0, 18, STUB_EANY, 0);
        return;
    }
    uint32_t off = get32(data), n = get32(data + 4);
    sim_md5_t m;
    sim_md5_init(&m);
    uint8_t buf[4096];
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < sizeof(buf) ? n - done : (uint32_t)sizeof(buf);
        stub_flash_read(d, off + done, buf, k);
        sim_md5_update(&m, buf, k);
        done += k;
    }
    uint8_t dig[16];
    sim_md5_final(&m, dig);
    if (d->cfg.realtime) d->vt_us += (uint64_t)n * STUB_MD5_US_PER_KB / 1024;
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    sim_ev_t e;
    sim_ev_begin(&e, "md5");
    sim_ev_hex(&e, "offset", off);
    sim_ev_num(&e, "size", n);
    sim_ev_str(&e, "md5", hex);
    sim_ev_end(&e);
    stub_reply(d, op, 0, dig, 16, 18, STUB_OK, 0); // raw digest (docs/SIMULATOR.md "ROM loader")
}

static void stub_erase_flash(sim_dev_t *d, uint8_t op, size_t len)
{
    if (len != 0 && !stub_is_new(d)) { // esp-flasher-stub does not look at the length
        stub_status(d, op, STUB_EANY);
        return;
    }
    // SPIEraseChip; timed as one 64 KiB block erase per block (no chip-erase figure in "Timing")
    for (uint32_t b = 0; b < d->flash.size / SIM_FLASH_BLOCK; b++)
        stub_erase_unit(d, b * 16, 1);
    sim_ev_t e;
    sim_ev_begin(&e, "erase_flash");
    sim_ev_num(&e, "size", d->flash.size);
    sim_ev_end(&e);
    stub_status(d, op, STUB_OK);
}

static void stub_erase_region(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 8) {
        stub_status(d, op, stub_code(d, STUB_EANY, STUB_EBAD_DATA_LEN));
        return;
    }
    uint32_t addr = get32(data), n = get32(data + 4);
    int aligned = addr % SIM_FLASH_SECTOR == 0 && n % SIM_FLASH_SECTOR == 0;
    sim_ev_t e;
    sim_ev_begin(&e, "erase_region");
    sim_ev_hex(&e, "offset", addr);
    sim_ev_num(&e, "size", n);
    // handle_flash_erase(): 0x32 unaligned address, 0x33 unaligned length, 0x35-0x37 failed
    // erase (here: beyond the configured size) - all seen by the host as 0x01 (see STUB_EANY)
    // esp-flasher-stub: 0xC0 for misalignment, 0xC4 for a failed erase
    int ok = aligned && stub_in_range(d, addr, n);
    sim_ev_bool(&e, "ok", ok);
    sim_ev_end(&e);
    if (!ok) {
        stub_status(d, op,
                    stub_code(d, STUB_EANY, aligned ? STUB_EFAILED_SPI_OP : STUB_EBAD_DATA_LEN));
        return;
    }
    // sectors up to a block boundary, blocks while MORE than 64 KiB remain, sectors for the rest
    while (n > 0 && addr % SIM_FLASH_BLOCK != 0) {
        stub_erase_unit(d, addr / SIM_FLASH_SECTOR, 0);
        addr += SIM_FLASH_SECTOR;
        n -= SIM_FLASH_SECTOR;
    }
    while (n > SIM_FLASH_BLOCK) {
        stub_erase_unit(d, addr / SIM_FLASH_SECTOR, 1);
        addr += SIM_FLASH_BLOCK;
        n -= SIM_FLASH_BLOCK;
    }
    while (n > 0) {
        stub_erase_unit(d, addr / SIM_FLASH_SECTOR, 0);
        addr += SIM_FLASH_SECTOR;
        n -= SIM_FLASH_SECTOR;
    }
    stub_status(d, op, STUB_OK);
}

static void stub_read_flash_finish(sim_dev_t *d)
{
    uint8_t dig[16];
    sim_md5_final(&d->rf_md5, dig);
    d->rf_active = 0;
    sim_ev_t e;
    sim_ev_begin(&e, "read_flash_done");
    sim_ev_num(&e, "sent", d->rf_sent);
    sim_ev_num(&e, "acked", d->rf_acked);
    sim_ev_end(&e);
    out_frame(d, dig, sizeof(dig)); // raw MD5 of the data sent (docs/SIMULATOR.md "Flasher stub")
}

// handle_flash_read()'s inner loop: send while fewer than max_in_flight BYTES are unacknowledged
// (the legacy stub compares bytes, so with esptool's 64 only one packet is in flight).
static void stub_read_flash_send(sim_dev_t *d)
{
    uint8_t buf[4096];
    while (d->rf_sent < d->rf_len && d->rf_sent - d->rf_acked < d->rf_inflight) {
        uint32_t n = d->rf_len - d->rf_sent;
        if (n > d->rf_pkt) n = d->rf_pkt;
        if (!stub_in_range(d, d->rf_addr, n))
            return; // SPIRead fails: nothing sent, the stub waits for an ACK that never comes
        stub_flash_read(d, d->rf_addr, buf, n);
        sim_md5_update(&d->rf_md5, buf, n);
        out_frame(d, buf, n); // a bare SLIP frame: no header, no status
        d->rf_addr += n;
        d->rf_sent += n;
    }
}

static void stub_read_flash(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 16) {
        stub_status(d, op, STUB_EBAD_DATA_LEN);
        return;
    }
    stub_status(d, op, STUB_OK);
    d->rf_addr = get32(data);
    d->rf_len = get32(data + 4);
    d->rf_pkt = get32(data + 8);
    d->rf_inflight = get32(data + 12);
    if (stub_is_new(d)) d->rf_inflight = d->rf_pkt; // esp-flasher-stub: 1 packet, hard-coded
    d->rf_sent = d->rf_acked = 0;
    sim_ev_t e;
    sim_ev_begin(&e, "read_flash");
    sim_ev_hex(&e, "offset", d->rf_addr);
    sim_ev_num(&e, "size", d->rf_len);
    sim_ev_num(&e, "packet", d->rf_pkt);
    sim_ev_num(&e, "in_flight", d->rf_inflight);
    sim_ev_end(&e);
    if (d->rf_pkt > 4096) { // the stub returns at once: no data, no MD5
        if (stub_is_new(d)) d->st_pending = STUB_EBAD_DATA_LEN; // reported to the next command
        return;
    }
    sim_md5_init(&d->rf_md5);
    d->rf_active = 1;
    if (d->rf_len == 0) {
        stub_read_flash_finish(d);
        return;
    }
    stub_read_flash_send(d);
}

// A frame from the host while READ_FLASH runs: the stub reads it synchronously as the 4-byte
// count of bytes received so far; anything else ends the transfer (MD5 sent at once).
static void stub_read_flash_ack(sim_dev_t *d, const uint8_t *frame, size_t flen)
{
    if (flen != 4) {
        stub_read_flash_finish(d);
        return;
    }
    d->rf_acked = get32(frame);
    if (!(d->rf_acked < d->rf_len && d->rf_acked <= d->rf_sent)) {
        stub_read_flash_finish(d);
        return;
    }
    stub_read_flash_send(d);
}

static void stub_change_baud(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    if (len != 8) {
        stub_status(d, op, STUB_EBAD_DATA_LEN);
        return;
    }
    uint32_t nb = get32(data), old = get32(data + 4);
    stub_status(d, op, STUB_OK); // at the old rate; the stub switches after it went out
    uint32_t prev = d->baud;
    // stub_io.c: new divider = divider * old / new, i.e. the real rate becomes rate * new / old.
    // A wrong old rate gives a wrong real rate; 0 gives divider 0, a UART that no longer works.
    if (stub_is_new(d)) {
        d->baud = nb; // esp-flasher-stub sets the new rate and ignores the second word
    } else if (old == 0 || nb == 0) {
        d->uart_dead = 1;
    } else {
        uint64_t r = (uint64_t)prev * nb / old;
        d->baud = r == 0 ? 1 : r > 100000000u ? 100000000u : (uint32_t)r;
    }
    d->nominal_baud = nb;
    if (d->cfg.realtime) d->vt_us += STUB_BAUD_SWITCH_US;
    sim_ev_t e;
    sim_ev_begin(&e, "change_baudrate");
    sim_ev_num(&e, "baud", nb);
    sim_ev_num(&e, "old_field", old);
    sim_ev_num(&e, "previous", prev);
    sim_ev_num(&e, "actual", d->uart_dead ? 0 : d->baud);
    sim_ev_str(&e, "loader", "stub");
    sim_ev_end(&e);
}

static void stub_mem_data(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    // legacy handle_mem_data(): no checksum check; length against the announced size, whole
    // words. esp-flasher-stub: header (0xC8), session (0xC6), size word against what is left
    // and against the payload (0xC9).
    uint64_t plen = len >= 16 ? len - 16 : UINT64_MAX;
    uint32_t left = d->mem_total - d->mem_written;
    uint8_t err = STUB_OK;
    if (stub_is_new(d)) {
        if (len < 16)
            err = STUB_ENOT_ENOUGH_DATA;
        else if (!d->mem_active)
            err = STUB_ENOT_IN_FLASH_MODE;
        else if (get32(data) > left || get32(data) != plen)
            err = STUB_ETOO_MUCH_DATA;
    } else if (!d->mem_active && plen > 0)
        err = STUB_ENOT_IN_FLASH_MODE;
    else if (plen > left)
        err = STUB_ETOO_MUCH_DATA;
    else if (plen % 4 != 0)
        err = STUB_EBAD_DATA_LEN;
    if (!err) {
        d->mem_written += (uint32_t)plen;
        ram_area_fill(d, data + 16, (uint32_t)plen);
    }
    stub_status(d, op, err);
}

// The commands esp-flasher-stub (src/command_handler.c) answers differently from the legacy
// stub in ways the simulator models: length checks (0xC0, WRITE_REG 0xC8), MEM_BEGIN/MEM_END
// (execute flag), SPI_ATTACH/SPI_SET_PARAMS lengths, RUN_USER_CODE (no effect). Returns 1 when
// handled; everything else goes through the shared code (with stub_is_new() branches).
static int nstub_exec(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len)
{
    switch (op) {
    case OP_WRITE_REG:
        if (len == 0 || len % 16 != 0) {
            stub_status(d, op, STUB_ENOT_ENOUGH_DATA);
            return 1;
        }
        return 0;
    case OP_SPI_SET_PARAMS:
        if (len != 24) {
            stub_status(d, op, STUB_EBAD_DATA_LEN);
            return 1;
        }
        return 0;
    case OP_SPI_ATTACH:
        if (len != 4) {
            stub_status(d, op, STUB_EBAD_DATA_LEN);
            return 1;
        }
        return 0;
    case OP_MEM_BEGIN:
        if (len != 16) {
            stub_status(d, op, STUB_EBAD_DATA_LEN);
            return 1;
        }
        d->mem_active = 1;
        d->mem_total = get32(data);
        d->mem_written = 0;
        ram_area_add(d, get32(data + 12), d->mem_total);
        stub_status(d, op, STUB_OK);
        return 1;
    case OP_MEM_END: {
        uint8_t err = len != 8 ? STUB_EBAD_DATA_LEN : !d->mem_active ? STUB_ENOT_IN_FLASH_MODE : 0;
        stub_status(d, op, err);
        if (err) return 1;
        d->mem_active = 0;
        if (get32(data) == 0) ram_jump(d, get32(data + 4)); // flag 0 = execute
        return 1;
    }
    case 0xD3: // RUN_USER_CODE: no reply and, in this stub, no effect
        return 1;
    default: return 0;
    }
}

static void stub_exec(sim_dev_t *d, uint8_t op, const uint8_t *data, size_t len, uint32_t chk)
{
    const sim_chip_t *c = d->chip;
    if (len > STUB_MAX_BLOCK + 16) {
        stub_reply(d, op, 0, NULL, 0, 2, STUB_EBAD_DATA_LEN, 0xEE); // larger than its buffer
        return;
    }
    if (stub_is_new(d) && d->st_pending) {
        // esp-flasher-stub: the error of the previous command's second half (write, inflate,
        // read) answers this command, which is not run
        uint8_t err = d->st_pending;
        d->st_pending = 0;
        stub_status(d, op, err);
        return;
    }
    if (stub_is_new(d) && nstub_exec(d, op, data, len)) return;
    switch (op) {
    case OP_SYNC:
        if (len != 36) {
            stub_status(d, op, STUB_EBAD_DATA_LEN);
            break;
        }
        for (int i = 0; i < 8;
             i++) // 8 replies like the ROM, value 0 (docs/SIMULATOR.md "ROM loader")
            stub_status(d, op, STUB_OK);
        break;
    case OP_READ_REG:
        if (len != 4)
            stub_status(d, op, STUB_EBAD_DATA_LEN);
        else
            stub_reply(d, op, reg_read(d, get32(data)), NULL, 0, 2, STUB_OK, 0);
        break;
    case OP_WRITE_REG:
        if (len % 16 != 0) {
            stub_status(d, op, STUB_EBAD_DATA_LEN);
            break;
        }
        for (size_t i = 0; i < len; i += 16) {
            if (d->cfg.realtime) d->vt_us += get32(data + i + 12);
            reg_write(d, get32(data + i), get32(data + i + 4), get32(data + i + 8));
            wdt_after_write(d, get32(data + i));
        }
        stub_status(d, op, STUB_OK);
        break;
    case OP_FLASH_BEGIN:
    case OP_FLASH_DEFL_BEGIN: stub_flash_begin(d, op, data, len); break;
    case OP_FLASH_DATA:
    case OP_FLASH_DEFL_DATA: stub_flash_data(d, op, data, len, chk); break;
    case OP_FLASH_END:
    case OP_FLASH_DEFL_END: stub_flash_end(d, op, data, len); break;
    case OP_SPI_FLASH_MD5: stub_md5(d, op, data, len); break;
    case 0xD0: stub_erase_flash(d, op, len); break;
    case 0xD1: stub_erase_region(d, op, data, len); break;
    case 0xD2: stub_read_flash(d, op, data, len); break;
    case OP_CHANGE_BAUDRATE: stub_change_baud(d, op, data, len); break;
    case OP_SPI_SET_PARAMS:
        if (len != 24) {
            stub_status(d, op, STUB_EANY);
            break;
        }
        d->rom_flash_size = get32(data + 4);
        {
            sim_ev_t e;
            sim_ev_begin(&e, "spi_set_params");
            sim_ev_num(&e, "size", d->rom_flash_size);
            sim_ev_end(&e);
        }
        stub_reply(d, op, 0, NULL, 0, 2, STUB_OK, 0); // extra byte: SPIParamCfg result (0)
        break;
    case OP_SPI_ATTACH:
        if (len != 4) { // the stub form is 4 bytes (docs/SIMULATOR.md "ROM loader")
            stub_status(d, op, STUB_EANY);
            break;
        }
        d->attached = get32(data) == 0;
        {
            sim_ev_t e;
            sim_ev_begin(&e, "spi_attach");
            sim_ev_hex(&e, "config", get32(data));
            sim_ev_bool(&e, "flash_reachable", d->attached);
            sim_ev_end(&e);
        }
        stub_status(d, op, STUB_OK);
        break;
    case OP_MEM_BEGIN:
        if (len != 16) {
            stub_status(d, op, STUB_EANY);
            break;
        }
        d->mem_active = 1;
        d->mem_total = get32(data);
        d->mem_written = 0;
        ram_area_add(d, get32(data + 12), d->mem_total);
        stub_status(d, op, STUB_OK);
        break;
    case OP_MEM_DATA: stub_mem_data(d, op, data, len); break;
    case OP_MEM_END: {
        // legacy stub: MEM_END jumps when entry != 0 (the flag is not looked at)
        int short_load = d->mem_active && d->mem_written < d->mem_total;
        if (len != 8 || short_load) {
            stub_status(d, op, STUB_EANY);
            d->mem_active = 0;
            break;
        }
        d->mem_active = 0;
        uint32_t entry = get32(data + 4);
        stub_status(d, op, STUB_OK);
        if (entry != 0) ram_jump(d, entry);
        break;
    }
    case OP_GET_SECURITY_INFO:
        if (c->fam == SIM_FAM_S2PLUS) {
            uint8_t out[20];
            uint16_t n = (uint16_t)sim_sec_info(d->efuse, c, out); // size: info without status
            if (len != 0)
                stub_reply(d, op, 0, NULL, 0, n, STUB_EANY, 0);
            else
                stub_reply(d, op, 0, out, n, n, STUB_OK, 0);
            break;
        }
        stub_status(d, op, STUB_ECMD_NOT_IMPLEMENTED);
        break;
    case 0xD4: // FLASH_ENCRYPT_DATA (legacy stub, not ESP8266): FLASH_DATA through the encryption
        if (stub_is_new(d) || c->fam == SIM_FAM_8266) {
            stub_status(d, op, STUB_ECMD_NOT_IMPLEMENTED);
            break;
        }
        if (!d->fl_enc.on && d->fl_mode == 1) sim_fe_writer_start(&d->fl_enc, d->efuse, 1);
        stub_flash_data(d, op, data, len, chk);
        after_data_block(d); // a data block for the hangup / brown-out faults
        break;
    case 0xD3: // RUN_USER_CODE: no reply; the ESP8266 stub returns into the user code
        if (c->fam == SIM_FAM_8266) {
            loader_state_clear(d);
            ev_reset("app", "run_user_code");
            app_begin(d, 0, NULL);
        } else {
            d->mode = MODE_DEAD;
            sim_event_simple("jump", "RUN_USER_CODE outside the ESP8266 stub: chip silent");
        }
        break;
    default:
        stub_status(d, op, stub_code(d, STUB_ECMD_NOT_IMPLEMENTED, STUB_EINVALID_COMMAND));
        break;
    }
}

// One request frame: fault hooks shared by both loaders, then the ROM or the stub.
static void dispatch(sim_dev_t *d, const uint8_t *frame, size_t flen)
{
    if (flen < 8 || frame[0] != 0x00) return; // not a request: ignored like any malformed frame
    uint8_t op = frame[1];
    uint32_t size = (uint32_t)frame[2] | (uint32_t)frame[3] << 8;
    uint32_t chk = get32(frame + 4);
    const uint8_t *data = frame + 8;
    size_t len = flen - 8;
    if (size != len) return; // size field disagrees with the frame: malformed, dropped
    d->requests++;
    d->cur_drop = 0;
    if (d->cfg.f_drop_reply >= 0 && !d->drop_done && d->requests == (uint64_t)d->cfg.f_drop_reply) {
        d->cur_drop = 1;
        d->drop_done = 1;
        sim_ev_t e;
        sim_ev_begin(&e, "fault");
        sim_ev_str(&e, "fault", "drop-reply");
        sim_ev_hex(&e, "op", op);
        sim_ev_end(&e);
    }
    if (d->cfg.f_drop_replies && d->synced && op != OP_SYNC) d->cur_drop = 1;
    for (int i = 0; i < d->cfg.n_naks; i++) {
        if (d->cfg.naks[i].op == op) {
            sim_ev_t e;
            sim_ev_begin(&e, "fault");
            sim_ev_str(&e, "fault", "nak");
            sim_ev_hex(&e, "op", op);
            sim_ev_str(&e, "name", op_name(op));
            sim_ev_hex(&e, "code", (uint32_t)d->cfg.naks[i].code);
            sim_ev_end(&e);
            if (d->loader == LOADER_STUB) // stub codes go into the first status byte
                stub_status(d, op, (uint8_t)d->cfg.naks[i].code);
            else
                send_raw_reply(d, op, 0, NULL, 0, 1, (uint8_t)d->cfg.naks[i].code);
            goto done;
        }
    }
    if (d->cfg.usb_otg && (op == OP_MEM_DATA || op == OP_FLASH_DATA || op == OP_FLASH_DEFL_DATA) &&
        len >= 16 && get32(data) > USB_OTG_MAX_BLOCK) {
        // Native USB-OTG: the ROM's CDC buffer holds 0x800 bytes (esptool's USB_RAM_BLOCK,
        // docs/SIMULATOR.md "ROM loader"). Real chips tend to stall; the simulator refuses the
        // block at once (ROM 0x05, stub 0xC0) so that a host sending big blocks fails fast and
        // visibly.
        sim_ev_t e;
        sim_ev_begin(&e, "usb_block_refused");
        sim_ev_str(&e, "name", op_name(op));
        sim_ev_num(&e, "size", get32(data));
        sim_ev_end(&e);
        if (d->loader == LOADER_STUB)
            stub_status(d, op, STUB_EBAD_DATA_LEN);
        else
            reply(d, op, 0, NULL, 0, ROM_EINVAL_MSG);
        goto done;
    }
    if (d->loader == LOADER_STUB) {
        stub_exec(d, op, data, len, chk);
        if (op == OP_FLASH_DATA || op == OP_FLASH_DEFL_DATA) after_data_block(d);
        goto done;
    }
    if (!rom_supports(d, op) || (sim_sec_sdm(d->efuse) && sim_sec_sdm_refuses(op))) {
        rom_unsupported(
            d, op); // Secure Download Mode refuses as unsupported (docs/SIMULATOR.md "ROM loader")
        goto done;
    }
    switch (op) {
    case OP_FLASH_BEGIN:
    case OP_FLASH_DEFL_BEGIN: h_flash_begin(d, op, data, len); break;
    case OP_FLASH_DATA:
    case OP_FLASH_DEFL_DATA: h_flash_data(d, op, data, len, chk); break;
    case OP_FLASH_END:
    case OP_FLASH_DEFL_END: h_flash_end(d, op, data, len); break;
    case OP_MEM_BEGIN: h_mem_begin(d, op, data, len); break;
    case OP_MEM_DATA: h_mem_data(d, op, data, len, chk); break;
    case OP_MEM_END: h_mem_end(d, op, data, len); break;
    case OP_SYNC: h_sync(d, op, data, len); break;
    case OP_WRITE_REG: h_write_reg(d, op, data, len); break;
    case OP_READ_REG: h_read_reg(d, op, data, len); break;
    case OP_SPI_SET_PARAMS: h_spi_set_params(d, op, data, len); break;
    case OP_SPI_ATTACH: h_spi_attach(d, op, data, len); break;
    case OP_READ_FLASH_SLOW: h_read_flash_slow(d, op, data, len); break;
    case OP_CHANGE_BAUDRATE: h_change_baud(d, op, data, len); break;
    case OP_SPI_FLASH_MD5: h_md5(d, op, data, len); break;
    case OP_GET_SECURITY_INFO: h_security_info(d, op, data, len); break;
    default: rom_unsupported(d, op); goto done;
    }
    if (d->mode == MODE_DOWNLOAD) d->last_op = op;
    if (op == OP_FLASH_DATA || op == OP_FLASH_DEFL_DATA)
        after_data_block(d); // faults counted in data blocks (hangup, brown-out)
done:
    if (d->cfg.f_noise_after >= 0 && !d->noise_done &&
        d->requests >= (uint64_t)d->cfg.f_noise_after) {
        d->noise_done = 1;
        uint8_t noise[24];
        for (size_t i = 0; i < sizeof(noise); i++) {
            uint8_t b = (uint8_t)rng_next(d);
            noise[i] = b == 0xC0 ? 0x3F : b; // garbage between frames, never a frame delimiter
        }
        sim_ev_t e;
        sim_ev_begin(&e, "fault");
        sim_ev_str(&e, "fault", "noise");
        sim_ev_num(&e, "bytes", (int64_t)sizeof(noise));
        sim_ev_end(&e);
        out_push(d, noise, sizeof(noise), d->baud);
    }
    d->cur_drop = 0;
}

static void process_frame(sim_dev_t *d, const uint8_t *frame, size_t len)
{
    if (d->mode != MODE_DOWNLOAD || d->cfg.f_silent) return;
    if (d->loader == LOADER_STUB && d->rf_active) {
        stub_read_flash_ack(d, frame, len); // READ_FLASH reads ACK frames synchronously
        return;
    }
    dispatch(d, frame, len);
}

// ---------------------------------------------------------------------------------------------
// public API

static uint32_t efuse_factory_word(void *ctx, uint32_t addr)
{
    return reg_default(ctx, addr); // MAC, revision, clock calibration as before
}

// The chip's eFuses (docs/SIMULATOR.md "eFuses and security"): factory state, file, faults.
static int efuse_setup(sim_dev_t *d, char *err, size_t errlen)
{
    d->efuse = sim_efuse_new(d->chip);
    if (!d->efuse) {
        if (!d->cfg.efuse_file && d->cfg.f_efuse_bad_block < 0 && d->cfg.f_efuse_hangup < 0 &&
            d->cfg.f_efuse_brownout < 0)
            return 0;
        snprintf(err, errlen, "--efuse-file / efuse faults: the %s has no eFuse model "
                              "(docs/SIMULATOR.md \"eFuses and security\")", d->chip->display);
        return -1;
    }
    sim_efuse_factory(d->efuse, efuse_factory_word, d);
    sim_efuse_set_faults(d->efuse, d->cfg.f_efuse_bad_block, d->cfg.f_efuse_hangup,
                         d->cfg.f_efuse_brownout);
    if (d->cfg.efuse_file && sim_efuse_attach_file(d->efuse, d->cfg.efuse_file, err, errlen) != 0)
        return -1;
    return 0;
}

sim_dev_t *sim_dev_new(const sim_dev_cfg_t *cfg, const sim_dev_io_t *io, char *err, size_t errlen)
{
    sim_dev_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    d->chip = cfg->chip;
    d->io = *io;
    d->rng = cfg->seed ? cfg->seed : 1;
    d->strap_download = 1;
    d->dtr = 0;
    d->rts = 0;
    d->en = 1;
    d->mode = MODE_RESET;
    if (sim_flash_init(&d->flash, cfg->flash_size) != 0) {
        snprintf(err, errlen, "cannot allocate %u bytes of flash", cfg->flash_size);
        free(d);
        return NULL;
    }
    if (cfg->flash_in) {
        int r = sim_flash_load(&d->flash, cfg->flash_in);
        if (r) {
            snprintf(err, errlen, "cannot read --flash-in %s: %s", cfg->flash_in, strerror(-r));
            sim_flash_free(&d->flash);
            free(d);
            return NULL;
        }
    }
    if (efuse_setup(d, err, errlen) != 0) {
        sim_efuse_free(d->efuse);
        sim_flash_free(&d->flash);
        free(d);
        return NULL;
    }
    sim_slip_dec_init(&d->slip);
    loader_state_clear(d);
    return d;
}

void sim_dev_free(sim_dev_t *d)
{
    if (!d) return;
    if (d->z_init) inflateEnd(&d->z);
    free(d->mem_buf);
    free(d->regs);
    rt_queues_clear(d);
    free(d->outq);
    free(d->inq);
    sim_flash_free(&d->flash);
    sim_efuse_free(d->efuse);
    free(d);
}

void sim_dev_start(sim_dev_t *d, uint64_t now_us)
{
    d->now_us = now_us;
    d->vt_us = now_us;
    d->tx_clock_ns = now_us * 1000;
    d->strap_download = 1;
    if (d->cfg.f_app) {
        loader_state_clear(d);
        ev_reset("app", "start");
        app_begin(d, 1, d->chip->rst_poweron);
    } else {
        // "as if the host had reset it": in download mode. The banner went out before anybody
        // listened, so it is not printed.
        loader_state_clear(d);
        int off = sim_sec_download_disabled(d->efuse); // DIS_DOWNLOAD_MODE: no loader at all
        d->mode = off ? MODE_DEAD : MODE_DOWNLOAD;
        ev_reset(off ? "download_disabled" : "download", "start");
    }
}

static void queue_frame(sim_dev_t *d, const uint8_t *p, size_t n, uint64_t due)
{
    if (d->nin == d->capin) {
        size_t nc = d->capin ? d->capin * 2 : 16;
        inframe_t *q = realloc(d->inq, nc * sizeof(*q));
        if (!q) return;
        d->inq = q;
        d->capin = nc;
    }
    uint8_t *copy = malloc(n);
    if (!copy) return;
    memcpy(copy, p, n);
    d->inq[d->nin++] = (inframe_t){.due_us = due, .len = n, .data = copy};
}

void sim_dev_input(sim_dev_t *d, const uint8_t *p, size_t n, uint64_t now_us)
{
    d->now_us = now_us;
    if (d->mode == MODE_RESET || d->mode == MODE_DEAD || d->mode == MODE_RAMAPP) return;
    if (d->uart_dead) return; // divider 0: nothing intelligible is received
    uint8_t *conv = NULL;
    uint32_t wire_baud = host_rate(d);
    if (d->baud_locked && !baud_close(wire_baud, d->baud)) {
        // the host talks at another rate than the chip listens: the chip receives garbage
        size_t cap = n * 10 + 16;
        conv = malloc(cap);
        if (!conv) return;
        n = uart_resample(p, n, wire_baud, d->baud, conv, cap);
        p = conv;
    }
    for (size_t i = 0; i < n; i++) {
        if (d->cfg.realtime) {
            uint64_t start = d->rx_clock_ns > now_us * 1000 ? d->rx_clock_ns : now_us * 1000;
            d->rx_clock_ns = start + byte_ns(wire_baud);
        }
        if (!sim_slip_dec_feed(&d->slip, p[i])) continue;
        if (d->cfg.realtime) {
            queue_frame(d, d->slip.buf, d->slip.len, (d->rx_clock_ns + 999) / 1000);
        } else {
            d->vt_us = now_us;
            process_frame(d, d->slip.buf, d->slip.len);
        }
    }
    free(conv);
}

void sim_dev_set_host_baud(sim_dev_t *d, uint32_t baud, int strict)
{
    d->host_baud = baud;
    d->strict_baud = strict;
}

static void rt_queues_clear(sim_dev_t *d)
{
    for (size_t i = 0; i < d->nout; i++)
        free(d->outq[i].data);
    d->nout = 0;
    for (size_t i = 0; i < d->nin; i++)
        free(d->inq[i].data);
    d->nin = 0;
}

void sim_dev_set_lines(sim_dev_t *d, int dtr, int rts, uint64_t now_us)
{
    d->now_us = now_us;
    d->vt_us = now_us;
    // Usual two-transistor auto-reset circuit (docs/SIMULATOR.md "Auto-reset circuit")
    int en = !(rts && !dtr);
    if (d->en && !en) {
        d->mode = MODE_RESET; // chip held in reset: silent, deaf
        d->sample_at_us = 0;
        sim_slip_dec_init(&d->slip);
        rt_queues_clear(d); // the UART FIFOs are reset too
        ev_reset("hold", "en_low");
    } else if (!d->en && en) {
        // EN rises through the RC network. The boot pin counts as low if it is pulled low at
        // any moment before the rise completes (see en_delay in SIMULATOR.md: RFC 2217 clients
        // such as pyserial take ~50 ms per line change, so esptool's classic sequence spends
        // that long in the D=1,R=1 state before RTS is released).
        d->sample_at_us = now_us + (uint64_t)d->cfg.en_delay_ms * 1000;
    }
    d->en = en;
    d->dtr = dtr;
    d->rts = rts;
    if (d->sample_at_us && dtr && !rts) {
        // boot pin low while EN is still rising: the chip comes up in download mode now
        d->sample_at_us = 0;
        d->strap_download = 1;
        chip_boot(d, 1, d->chip->rst_poweron, "en");
    }
}

void sim_dev_client_connected(sim_dev_t *d, uint64_t now_us)
{
    d->now_us = now_us;
    d->vt_us = now_us;
    if (d->mode == MODE_APP && d->cfg.f_app) {
        // fault app: a host that connects sees the application's boot log (docs/SIMULATOR.md "Boot
        // and modes")
        ev_reset("app", "connect");
        app_begin(d, 1, d->chip->rst_poweron);
    }
}

static void realtime_pump(sim_dev_t *d, uint64_t now)
{
    // process received frames whose last byte has arrived, one command at a time
    while (d->nin > 0 && d->inq[0].due_us <= now) {
        inframe_t f = d->inq[0];
        uint64_t start = f.due_us > d->busy_until_us ? f.due_us : d->busy_until_us;
        if (start > now) break;
        memmove(d->inq, d->inq + 1, (d->nin - 1) * sizeof(*d->inq));
        d->nin--;
        d->vt_us = start;
        process_frame(d, f.data, f.len);
        d->busy_until_us = d->vt_us;
        free(f.data);
    }
    // transmit queued output at the chip's UART rate, 10 bits per byte
    while (d->nout > 0) {
        chunk_t *c = &d->outq[0];
        uint64_t start = c->due_us * 1000 > d->tx_clock_ns ? c->due_us * 1000 : d->tx_clock_ns;
        if (start > now * 1000) break;
        uint64_t per = byte_ns(c->baud);
        uint64_t can = (now * 1000 - start) / per + 1; // bytes whose start bit has begun
        size_t left = c->len - c->off;
        size_t k = can < left ? (size_t)can : left;
        d->io.write(d->io.ctx, c->data + c->off, k, c->baud);
        c->off += k;
        d->tx_clock_ns = start + k * per;
        if (c->off < c->len) break;
        free(c->data);
        memmove(d->outq, d->outq + 1, (d->nout - 1) * sizeof(*d->outq));
        d->nout--;
    }
}

uint64_t sim_dev_tick(sim_dev_t *d, uint64_t now_us)
{
    d->now_us = now_us;
    d->vt_us = now_us;
    uint64_t next = UINT64_MAX;
    if (d->sample_at_us && now_us >= d->sample_at_us) {
        // EN is up and the boot pin was never low meanwhile: normal boot from flash
        d->sample_at_us = 0;
        d->strap_download = 0;
        chip_boot(d, 0, d->chip->rst_poweron, "en");
    }
    if (d->sample_at_us && d->sample_at_us < next) next = d->sample_at_us;
    if (d->wdt_at_us && now_us >= d->wdt_at_us && d->mode != MODE_RESET) wdt_fire(d);
    if (d->wdt_at_us && d->wdt_at_us < next) next = d->wdt_at_us;
    if (d->mode == MODE_RAMAPP && !d->cfg.f_silent) {
        if (now_us >= d->app_next_us && d->app_next_us != UINT64_MAX) {
            d->vt_us = now_us;
            ramapp_line(d);
            d->app_next_us = d->cfg.app_period_ms
                                 ? now_us + (uint64_t)d->cfg.app_period_ms * 1000
                                 : UINT64_MAX; // period 0: the line once
        }
        if (d->app_next_us < next) next = d->app_next_us;
    }
    if (d->mode == MODE_APP && !d->cfg.f_silent && d->cfg.app_period_ms > 0) {
        if (now_us >= d->app_next_us) {
            d->vt_us = now_us;
            app_line(d);
            d->app_next_us = now_us + (uint64_t)d->cfg.app_period_ms * 1000;
        }
        if (d->app_next_us < next) next = d->app_next_us;
    }
    if (d->cfg.realtime) {
        realtime_pump(d, now_us);
        if (d->nin > 0) {
            uint64_t due =
                d->inq[0].due_us > d->busy_until_us ? d->inq[0].due_us : d->busy_until_us;
            if (due < next) next = due;
        }
        if (d->nout > 0) {
            chunk_t *c = &d->outq[0];
            uint64_t start_ns =
                c->due_us * 1000 > d->tx_clock_ns ? c->due_us * 1000 : d->tx_clock_ns;
            uint64_t t = (start_ns + 999) / 1000;
            // A chunk on the wire is handed over every 0.5 ms (not per byte: a wake-up every
            // 11 us at 921600 costs a core); the host sees its bytes at most 0.5 ms late.
            uint64_t min_t = now_us + (c->off > 0 ? RT_TX_QUANTUM_US : 1);
            if (t < min_t) t = min_t;
            if (t < next) next = t;
        }
    }
    return next;
}

void sim_dev_new_board(sim_dev_t *d, uint64_t now_us)
{
    d->now_us = now_us;
    d->vt_us = now_us;
    uint8_t *m = d->cfg.mac;
    uint32_t nic = ((uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5]) + 1;
    m[3] = (uint8_t)(nic >> 16);
    m[4] = (uint8_t)(nic >> 8);
    m[5] = (uint8_t)nic;
    d->boards++;
    sim_flash_erase_sectors(&d->flash, 0, d->flash.size / SIM_FLASH_SECTOR);
    if (d->efuse) // a new chip: blank eFuses but its factory words (the file follows the board)
        sim_efuse_factory(d->efuse, efuse_factory_word, d);
    rt_queues_clear(d);
    // every board meets the same one-shot faults
    d->requests = 0;
    d->data_blocks = 0;
    d->synced = 0;
    d->noise_done = d->drop_done = d->hangup_done = d->brownout_done = 0;
    d->rom_garble_done = 0;
    char macs[18];
    snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
             m[5]);
    sim_ev_t e;
    sim_ev_begin(&e, "new_board");
    sim_ev_str(&e, "mac", macs);
    sim_ev_num(&e, "board", (int64_t)d->boards);
    sim_ev_end(&e);
    d->sample_at_us = 0;
    if (!d->cfg.has_lines) {
        sim_dev_start(d, now_us); // like the first board: download mode, banner unseen
        return;
    }
    // power-on with the lines as the host holds them (docs/SIMULATOR.md "Auto-reset circuit")
    if (!d->en) {
        loader_state_clear(d);
        d->mode = MODE_RESET;
        ev_reset("hold", "new_board");
        return;
    }
    int boot_low = d->dtr && !d->rts;
    d->strap_download = boot_low;
    chip_boot(d, boot_low, d->chip->rst_poweron, "new_board");
}

uint32_t sim_dev_baud(const sim_dev_t *d)
{
    return d->baud;
}

uint32_t sim_dev_flash_size(const sim_dev_t *d)
{
    return d->flash.size;
}

int sim_dev_dump_flash(sim_dev_t *d, const char *path)
{
    return sim_flash_dump(&d->flash, path);
}
