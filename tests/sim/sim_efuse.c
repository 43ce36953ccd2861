// SPDX-License-Identifier: MIT
// sim_efuse: eFuse controller model (docs/SIMULATOR.md "eFuses and security" lists the register
// addresses, field positions and their sources). Two controller designs: the ESP32's (four
// blocks, all programmed by one command, optional 3/4 coding of BLOCK1-3) and the one of
// ESP32-S2 and later (eleven blocks, one block per program command, Reed-Solomon (44,32) on
// BLOCK1-10). Burnt bits only ever go from 0 to 1.
#include "sim_efuse.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_event.h"

#define OP_WRITE 0x5A5Au // CONF opcode before a program command
#define OP_READ 0x5AA5u  // CONF opcode before a read (reload) command
#define CMD_READ 0x1u
#define CMD_PGM 0x2u

// Register offsets from the controller base (docs/SIMULATOR.md "eFuses and security").
// S2 and later:
#define N_PGM 0x000u     // PGM_DATA0..7, then CHECK_VALUE0..2 at 0x020
#define N_RD_BLK0 0x02Cu // RD_WR_DIS, RD_REPEAT_DATA0..4
#define N_RD_REPEAT_ERR 0x17Cu
#define N_RD_RS_ERR0 0x1C0u // ESP32-S2: 0x194
#define N_RD_RS_ERR1 0x1C4u // ESP32-S2: 0x198
#define S2_RD_RS_ERR0 0x194u
#define N_CONF 0x1CCu
#define N_STATUS 0x1D0u
#define N_CMD 0x1D4u
#define N_WINDOW 0x200u
// ESP32:
#define E_WDATA0 0x01Cu // BLK0 write data (7 words)
#define E_CONF 0x0FCu
#define E_STATUS 0x100u
#define E_CMD 0x104u
#define E_DEC_STATUS 0x11Cu
#define E_WINDOW 0x120u

static const uint32_t n_rd_off[SIM_EFUSE_BLOCKS] = {0x02C, 0x044, 0x05C, 0x07C, 0x09C, 0x0BC,
                                                    0x0DC, 0x0FC, 0x11C, 0x13C, 0x15C};
static const uint32_t e_rd_off[4] = {0x000, 0x038, 0x058, 0x078};
static const uint32_t e_wr_off[4] = {0x01C, 0x098, 0x0B8, 0x0D8};

// WR_DIS bit -> the BLOCK0 bits it protects (word, mask), from the chips' eFuse tables.
typedef struct {
    int bit, word;
    uint32_t mask;
} wr_prot_t;

static const wr_prot_t n_prot0[] = {
    {0, 1, 0x0000007Fu},  // RD_DIS
    {2, 1, 0x0018FF00u},  // DIS_ICACHE..DIS_FORCE_DOWNLOAD.., DIS_PAD_JTAG, DIS_DL_MANUAL_ENCRYPT
    {4, 2, 0x001C0000u},  // SPI_BOOT_CRYPT_CNT
    {5, 2, 1u << 21},     // SECURE_BOOT_KEY_REVOKE0
    {6, 2, 1u << 22},     // SECURE_BOOT_KEY_REVOKE1
    {7, 2, 1u << 23},     // SECURE_BOOT_KEY_REVOKE2
    {8, 2, 0x0F000000u},  // KEY_PURPOSE_0
    {9, 2, 0xF0000000u},  // KEY_PURPOSE_1
    {10, 3, 0x0000000Fu}, // KEY_PURPOSE_2
    {11, 3, 0x000000F0u}, // KEY_PURPOSE_3
    {12, 3, 0x00000F00u}, // KEY_PURPOSE_4
    {13, 3, 0x0000F000u}, // KEY_PURPOSE_5
    {15, 3, 1u << 20},    // SECURE_BOOT_EN
    {16, 3, 1u << 21},    // SECURE_BOOT_AGGRESSIVE_REVOKE
    {18, 3, 0xF0000000u}, // FLASH_TPUW
    {18, 4, 0x3FFFFFFFu}, // DIS_DOWNLOAD_MODE .. SECURE_VERSION
    {31, 1, 0x00070000u}, // SOFT_DIS_JTAG
};

static const wr_prot_t e_prot0[] = {
    {0, 0, 0x000F0000u},  // RD_DIS
    {1, 0, 0x0000FFFFu},  // WR_DIS
    {2, 0, 0x0FF00000u},  // FLASH_CRYPT_CNT, UART_DOWNLOAD_DIS
    {3, 1, 0xFFFFFFFFu},  // MAC
    {3, 2, 0x00FFFFFFu},  // MAC, MAC_CRC
    {3, 3, 0x0000000Bu},  // DISABLE_APP_CPU, DISABLE_BT, DIS_CACHE
    {10, 3, 1u << 14},    // BLK3_PART_RESERVE
    {10, 5, 0xF0000000u}, // FLASH_CRYPT_CONFIG
    {10, 6, 0x00000403u}, // CODING_SCHEME, KEY_STATUS
    {12, 6, 1u << 4},     // ABS_DONE_0
    {13, 6, 1u << 5},     // ABS_DONE_1
    {14, 6, 1u << 6},     // JTAG_DISABLE
    {15, 6, 0x00000384u}, // CONSOLE_DEBUG_DISABLE, DISABLE_DL_ENCRYPT/DECRYPT/CACHE
};

struct sim_efuse_s {
    const sim_chip_t *chip;
    int esp32;      // ESP32 controller design
    uint32_t base;  // controller base address
    int nblocks;    // 4 (ESP32) or 11
    int fail_quirk; // ESP32-C3: the fail bits sit one block further (espefuse BLOCK_FAIL_BIT)
    int s2;         // ESP32-S2: own JTAG / manual-encrypt positions, RS error registers at 0x194
    uint32_t rs_err_off;                // offset of RD_RS_ERR0 (ERR1 follows)
    uint32_t raw[SIM_EFUSE_BLOCKS][8];  // burnt data bits
    uint32_t rsck[SIM_EFUSE_BLOCKS][3]; // burnt Reed-Solomon check bits
    uint32_t rd[SIM_EFUSE_BLOCKS][8];   // read registers, latched at the last reload
    uint32_t hw0[8]; // BLOCK0 as latched, before read protection: what the hardware acts on
    uint32_t regs[N_WINDOW / 4]; // the controller's other registers (pgm/wdata, conf...)
    uint32_t rs_err[2], dec_status;
    int bad_block;
    long hangup_k, brownout_k, burns;
    char *path;
};

static int blk_words(const sim_efuse_t *e, int b)
{
    if (e->esp32) return b == 0 ? 7 : 8;
    return b <= 1 ? 6 : 8;
}

static uint32_t window(const sim_efuse_t *e)
{
    return e->esp32 ? E_WINDOW : N_WINDOW;
}

sim_efuse_t *sim_efuse_new(const sim_chip_t *chip)
{
    uint32_t base = 0;
    int esp32 = 0;
    if (strcmp(chip->name, "esp32") == 0) {
        base = 0x3FF5A000;
        esp32 = 1;
    } else if (strcmp(chip->name, "esp32s2") == 0) {
        base = 0x3F41A000;
    } else if (strcmp(chip->name, "esp32s3") == 0) {
        base = 0x60007000;
    } else if (strcmp(chip->name, "esp32c3") == 0) {
        base = 0x60008800;
    } else if (strcmp(chip->name, "esp32c6") == 0 || strcmp(chip->name, "esp32h2") == 0) {
        base = 0x600B0800;
    } else {
        return NULL; // ESP8266 (OTP, no controller model), ESP32-C2 (a smaller design)
    }
    sim_efuse_t *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->chip = chip;
    e->esp32 = esp32;
    e->base = base;
    e->nblocks = esp32 ? 4 : SIM_EFUSE_BLOCKS;
    e->fail_quirk = strcmp(chip->name, "esp32c3") == 0;
    e->s2 = strcmp(chip->name, "esp32s2") == 0;
    e->rs_err_off = e->s2 ? S2_RD_RS_ERR0 : N_RD_RS_ERR0;
    e->bad_block = -1;
    e->hangup_k = e->brownout_k = -1;
    return e;
}

void sim_efuse_free(sim_efuse_t *e)
{
    if (!e) return;
    free(e->path);
    free(e);
}

// ---------------------------------------------------------------------------------------------
// Reed-Solomon (44,32) over GF(2^8) (docs/SIMULATOR.md: the codec esptool uses, RSCodec(12))

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    uint8_t r = 0;
    while (b) {
        if (b & 1) r ^= a;
        b >>= 1;
        a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1D : 0)); // x^8 = x^4 + x^3 + x^2 + 1
    }
    return r;
}

void sim_efuse_rs_encode(const uint8_t data[32], uint8_t check[12])
{
    // generator g(x) = (x - a^0)(x - a^1)...(x - a^11), highest coefficient first
    uint8_t g[13] = {1};
    uint8_t root = 1;
    for (int i = 0; i < 12; i++) {
        uint8_t ng[13] = {0};
        for (int j = 0; j <= i; j++) {
            ng[j] ^= g[j];
            ng[j + 1] ^= gf_mul(g[j], root);
        }
        memcpy(g, ng, sizeof(g));
        root = gf_mul(root, 2);
    }
    // systematic encoding: remainder of data(x) * x^12 / g(x), data[0] the highest term
    uint8_t buf[44] = {0};
    memcpy(buf, data, 32);
    for (int i = 0; i < 32; i++) {
        uint8_t c = buf[i];
        if (!c) continue;
        for (int j = 1; j < 13; j++)
            buf[i + j] ^= gf_mul(g[j], c);
    }
    memcpy(check, buf + 32, 12);
}

static void words_to_bytes(const uint32_t *w, int n, uint8_t *out)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++)
            out[4 * i + k] = (uint8_t)(w[i] >> (8 * k));
}

static void bytes_to_words(const uint8_t *p, int n, uint32_t *w)
{
    for (int i = 0; i < n; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
}

static uint8_t gf_pow2(int n) // alpha^n, alpha = 2
{
    uint8_t r = 1;
    n %= 255;
    if (n < 0) n += 255;
    while (n--)
        r = gf_mul(r, 2);
    return r;
}

static uint8_t gf_inv(uint8_t a)
{
    uint8_t r = 1;
    for (int i = 0; i < 254; i++) // a^254 = a^-1
        r = gf_mul(r, a);
    return r;
}

// Reed-Solomon (44,32) decoding of one block as the controller reads it: c[0..31] data (c[0]
// the highest power), c[32..43] check bytes. Corrects up to 6 byte errors in place. Returns the
// number of bytes corrected, or -1 when the block cannot be corrected (left as read).
static int rs_decode(uint8_t c[44])
{
    uint8_t syn[12];
    int any = 0;
    for (int j = 0; j < 12; j++) {
        uint8_t x = gf_pow2(j), v = 0;
        for (int i = 0; i < 44; i++)
            v = (uint8_t)(gf_mul(v, x) ^ c[i]); // Horner, c[0] first
        syn[j] = v;
        any |= v;
    }
    if (!any) return 0;
    // Berlekamp-Massey: error locator lambda (lambda[0] = 1)
    uint8_t lam[13] = {1}, prev[13] = {1}, tmp[13];
    int L = 0, m = 1;
    uint8_t bq = 1;
    for (int n = 0; n < 12; n++) {
        uint8_t d = syn[n];
        for (int i = 1; i <= L; i++)
            d ^= gf_mul(lam[i], syn[n - i]);
        if (d == 0) {
            m++;
            continue;
        }
        uint8_t coef = gf_mul(d, gf_inv(bq));
        memcpy(tmp, lam, sizeof(lam));
        for (int i = 0; i + m < 13; i++)
            lam[i + m] ^= gf_mul(coef, prev[i]);
        if (2 * L <= n) {
            L = n + 1 - L;
            memcpy(prev, tmp, sizeof(prev));
            bq = d;
            m = 1;
        } else {
            m++;
        }
    }
    if (L > 6) return -1;
    // omega = syndrome polynomial x lambda mod x^12
    uint8_t om[12] = {0};
    for (int i = 0; i < 12; i++)
        for (int k = 0; k <= i && k <= L; k++)
            om[i] ^= gf_mul(lam[k], syn[i - k]);
    // Chien search over the 44 positions (position i has degree 43 - i), Forney magnitudes
    int found = 0;
    uint8_t fix[44] = {0};
    for (int i = 0; i < 44; i++) {
        int deg = 43 - i;
        uint8_t xinv = gf_pow2(-deg), v = 0, dv = 0, ov = 0, pw = 1;
        for (int k = 0; k <= L; k++) {
            v ^= gf_mul(lam[k], pw);
            if (k & 1) dv ^= gf_mul(lam[k], gf_mul(pw, gf_inv(xinv))); // lambda' at xinv
            pw = gf_mul(pw, xinv);
        }
        if (v != 0) continue;
        pw = 1;
        for (int k = 0; k < 12; k++) {
            ov ^= gf_mul(om[k], pw);
            pw = gf_mul(pw, xinv);
        }
        if (dv == 0) return -1;
        fix[i] = gf_mul(gf_pow2(deg), gf_mul(ov, gf_inv(dv))); // X * omega(1/X) / lambda'(1/X)
        found++;
    }
    if (found != L) return -1;
    for (int i = 0; i < 44; i++)
        c[i] ^= fix[i];
    return found;
}

// ESP32 3/4 coding: each 6 data bytes are followed by their XOR and the sum of (i+1) x popcount.
// Decodes 8 burnt words into 24 bytes; returns a bit mask of the groups that fail the check.
static int decode_34(const uint32_t w[8], uint8_t out[24])
{
    uint8_t raw[32];
    words_to_bytes(w, 8, raw);
    int bad = 0;
    for (int g = 0; g < 4; g++) {
        const uint8_t *p = raw + 8 * g;
        uint8_t x = 0;
        unsigned sum = 0;
        for (int i = 0; i < 6; i++) {
            x ^= p[i];
            sum += (unsigned)(i + 1) * (unsigned)__builtin_popcount(p[i]);
        }
        if (x != p[6] || (sum & 0xFF) != p[7]) bad |= 1 << g;
        memcpy(out + 6 * g, p, 6);
    }
    return bad;
}

static int coding_34(const sim_efuse_t *e)
{
    return e->esp32 && (e->raw[0][6] & 3) == 1;
}

// ---------------------------------------------------------------------------------------------
// reload: the read registers latch the burnt bits, checked and protected

static int read_protected(const sim_efuse_t *e, int b)
{
    if (e->esp32) return b >= 1 && b <= 3 && (e->raw[0][0] >> (16 + b - 1) & 1);
    return b >= 4 && (e->raw[0][1] >> (b - 4) & 1); // RD_DIS bits 0..6: BLOCK4..10
}

// nerr: bytes corrected (1..6), or -1 = uncorrectable (ERR_NUM 7 and the FAIL bit).
static void set_rs_err(sim_efuse_t *e, int b, int nerr)
{
    // RD_RS_ERR0: 4 bits per block from BLOCK1 (err_num[2:0], fail bit 3); BLOCK9/10 in ERR1
    int idx = b - 1, reg = idx / 8, sh = (idx % 8) * 4;
    e->rs_err[reg] |= (uint32_t)(nerr < 0 || nerr > 7 ? 7 : nerr) << sh;
    if (nerr >= 0) return;
    int fidx = e->fail_quirk ? idx + 1 : idx; // C3: the fail bit of block N is at block N+1's
    if (fidx < 10) e->rs_err[fidx / 8] |= 1u << ((fidx % 8) * 4 + 3); // (C3 BLOCK10: none)
}

static void reload(sim_efuse_t *e)
{
    memset(e->rd, 0, sizeof(e->rd));
    e->rs_err[0] = e->rs_err[1] = 0;
    e->dec_status = 0;
    for (int b = 0; b < e->nblocks; b++) {
        uint32_t w[8] = {0};
        int n = blk_words(e, b);
        uint32_t cells[8];
        memcpy(cells, e->raw[b], sizeof(cells));
        if (b == e->bad_block) { // fault efuse-bad-block: 8 cells (bit 0 of 8 bytes) read wrong
            cells[0] ^= 0x01010101u;
            cells[1] ^= 0x01010101u;
        }
        if (coding_34(e) && b >= 1) {
            uint8_t dec[24];
            int bad = decode_34(cells, dec);
            bytes_to_words(dec, 6, w);
            e->dec_status |= (uint32_t)bad << (4 * (b - 1));
        } else if (!e->esp32 && b >= 1) {
            uint8_t cw[44] = {0};
            words_to_bytes(cells, n, cw); // BLOCK1: 24 bytes + 8 zero bytes
            words_to_bytes(e->rsck[b], 3, cw + 32);
            int nerr = rs_decode(cw);
            if (nerr != 0) set_rs_err(e, b, nerr);
            if (nerr < 0) // uncorrectable: the bits as read
                memcpy(w, cells, (size_t)n * 4);
            else
                bytes_to_words(cw, n, w);
        } else {
            memcpy(w, cells, (size_t)n * 4);
        }
        if (b == 0) memcpy(e->hw0, w, sizeof(e->hw0));
        if (read_protected(e, b)) memset(w, 0, sizeof(w));
        if (b == 0 && e->esp32 && (e->raw[0][0] >> 19 & 1)) {
            // ESP32 RD_DIS bit 3: BLK3_PART_RESERVE, FLASH_CRYPT_CONFIG, CODING_SCHEME,
            // KEY_STATUS read as 0
            w[3] &= ~(1u << 14);
            w[5] &= ~0xF0000000u;
            w[6] &= ~0x00000403u;
        }
        memcpy(e->rd[b], w, sizeof(w));
    }
}

// ---------------------------------------------------------------------------------------------
// programming

static uint32_t wr_dis(const sim_efuse_t *e)
{
    return e->esp32 ? (e->raw[0][0] & 0xFFFF) : e->raw[0][0];
}

// Bits of word w of block b that WR_DIS forbids burning.
static uint32_t protected_mask(const sim_efuse_t *e, int b, int w)
{
    uint32_t wd = wr_dis(e);
    if (b > 0) {
        int bit = e->esp32 ? 6 + b : 19 + b; // ESP32: 7..9 for BLOCK1..3; later: 20..29
        return (wd >> bit & 1) ? 0xFFFFFFFFu : 0;
    }
    const wr_prot_t *t = e->esp32 ? e_prot0 : n_prot0;
    size_t n =
        e->esp32 ? sizeof(e_prot0) / sizeof(e_prot0[0]) : sizeof(n_prot0) / sizeof(n_prot0[0]);
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t mask = t[i].mask;
        if (e->s2 && t[i].bit == 2 && t[i].word == 1) mask = 0x000EFF00u; // incl. S2's JTAG bits
        if (e->s2 && t[i].bit == 31) mask = 0; // the S2's SOFT_DIS_JTAG is under bit 2
        if (t[i].word == w && (wd >> t[i].bit & 1)) m |= mask;
    }
    return m;
}

static void burn_block(sim_efuse_t *e, int b, const uint32_t *data, const uint32_t *check)
{
    int n = blk_words(e, b);
    uint32_t prot[8];
    for (int w = 0; w < n; w++) // WR_DIS as it was before this burn
        prot[w] = protected_mask(e, b, w);
    for (int w = 0; w < n; w++)
        e->raw[b][w] |= data[w] & ~prot[w];
    if (check && !prot[0])
        for (int i = 0; i < 3; i++)
            e->rsck[b][i] |= check[i];
}

static sim_efuse_ev_t program(sim_efuse_t *e, int block)
{
    e->burns++;
    if (e->brownout_k > 0 && e->burns == e->brownout_k)
        return SIM_EFUSE_EV_BROWNOUT; // the supply collapses before the cells are blown
    if (e->esp32) {
        for (int b = 0; b < 4; b++) // one command programs every block from its wdata
            burn_block(e, b, &e->regs[e_wr_off[b] / 4], NULL);
        for (int b = 0; b < 4; b++)
            memset(&e->regs[e_wr_off[b] / 4], 0, (size_t)blk_words(e, b) * 4);
    } else {
        burn_block(e, block, &e->regs[N_PGM / 4], block >= 1 ? &e->regs[N_PGM / 4 + 8] : NULL);
        memset(&e->regs[N_PGM / 4], 0, 11 * 4); // PGM_DATA0..7 and CHECK_VALUE0..2 cleared
    }
    if (e->path) (void)sim_efuse_save(e, e->path);
    sim_ev_t ev;
    sim_ev_begin(&ev, "efuse_burn");
    sim_ev_num(&ev, "block", e->esp32 ? -1 : block); // ESP32: one command burns every block
    sim_ev_num(&ev, "burn", e->burns);
    sim_ev_end(&ev);
    if (e->hangup_k > 0 && e->burns == e->hangup_k) return SIM_EFUSE_EV_HANGUP;
    return SIM_EFUSE_EV_BURN;
}

// ---------------------------------------------------------------------------------------------
// register interface

int sim_efuse_owns(const sim_efuse_t *e, uint32_t addr)
{
    return e && addr >= e->base && addr - e->base < window(e) && (addr & 3) == 0;
}

// Block and word of a read register, or -1.
static int rd_index(const sim_efuse_t *e, uint32_t off, int *word)
{
    for (int b = 0; b < e->nblocks; b++) {
        uint32_t start = e->esp32 ? e_rd_off[b] : n_rd_off[b];
        if (off >= start && off < start + (uint32_t)blk_words(e, b) * 4) {
            *word = (int)(off - start) / 4;
            return b;
        }
    }
    return -1;
}

uint32_t sim_efuse_read(sim_efuse_t *e, uint32_t addr)
{
    uint32_t off = addr - e->base;
    int w = 0, b = rd_index(e, off, &w);
    if (b >= 0) return e->rd[b][w];
    if (e->esp32) {
        if (off == E_DEC_STATUS) return e->dec_status;
        if (off == E_STATUS) return 0;
    } else {
        if (off == e->rs_err_off) return e->rs_err[0];
        if (off == e->rs_err_off + 4) return e->rs_err[1];
        if (off >= N_RD_REPEAT_ERR && off < N_RD_REPEAT_ERR + 20) return 0; // BLOCK0 backups agree
        if (off == N_STATUS) return 1;                                      // state: idle
    }
    return e->regs[off / 4]; // program data, CONF, CMD (commands complete at once), timing...
}

sim_efuse_ev_t sim_efuse_write(sim_efuse_t *e, uint32_t addr, uint32_t val)
{
    uint32_t off = addr - e->base;
    int w = 0;
    if (rd_index(e, off, &w) >= 0) return SIM_EFUSE_EV_NONE; // read registers are read-only
    uint32_t conf = e->regs[(e->esp32 ? E_CONF : N_CONF) / 4] & 0xFFFF;
    if (off == (e->esp32 ? E_CMD : N_CMD)) {
        sim_efuse_ev_t ev = SIM_EFUSE_EV_NONE;
        int blk = e->esp32 ? 0 : (int)((val >> 2) & 0xF); // ESP32: one command, every block
        if ((val & CMD_PGM) && conf == OP_WRITE && blk < e->nblocks) // no block 11-15: nothing
            ev = program(e, blk);
        else if ((val & CMD_READ) && conf == OP_READ)
            reload(e);
        e->regs[off / 4] = 0; // the command bits clear when the controller is done
        return ev;
    }
    if (e->esp32 && off == E_DEC_STATUS) return SIM_EFUSE_EV_NONE;
    if (!e->esp32 && (off == e->rs_err_off || off == e->rs_err_off + 4 || off == N_STATUS))
        return SIM_EFUSE_EV_NONE;
    e->regs[off / 4] = val;
    return SIM_EFUSE_EV_NONE;
}

void sim_efuse_reset(sim_efuse_t *e)
{
    memset(e->regs, 0, sizeof(e->regs));
    reload(e);
}

void sim_efuse_blank(sim_efuse_t *e)
{
    memset(e->raw, 0, sizeof(e->raw));
    memset(e->rsck, 0, sizeof(e->rsck));
    e->burns = 0;
    sim_efuse_reset(e);
}

void sim_efuse_factory(sim_efuse_t *e, uint32_t (*word)(void *ctx, uint32_t addr), void *ctx)
{
    memset(e->raw, 0, sizeof(e->raw));
    memset(e->rsck, 0, sizeof(e->rsck));
    for (int b = 0; b < e->nblocks; b++) {
        uint32_t start = e->base + (e->esp32 ? e_rd_off[b] : n_rd_off[b]);
        for (int w = 0; w < blk_words(e, b); w++)
            e->raw[b][w] = word(ctx, start + 4u * (uint32_t)w);
        if (!e->esp32 && b >= 1) { // the factory burns its blocks with their check bytes
            uint8_t data[32] = {0}, ck[12];
            words_to_bytes(e->raw[b], blk_words(e, b), data);
            sim_efuse_rs_encode(data, ck);
            bytes_to_words(ck, 3, e->rsck[b]);
        }
    }
    e->burns = 0; // the burn faults count this chip's program commands
    sim_efuse_reset(e);
    if (e->path) (void)sim_efuse_save(e, e->path);
}

void sim_efuse_set_faults(sim_efuse_t *e, int bad_block, long hangup_k, long brownout_k)
{
    e->bad_block = bad_block;
    e->hangup_k = hangup_k;
    e->brownout_k = brownout_k;
    reload(e);
}

// ---------------------------------------------------------------------------------------------
// decoded security state and key material

void sim_efuse_security(const sim_efuse_t *e, sim_efuse_sec_t *s)
{
    memset(s, 0, sizeof(*s));
    // BLOCK0 as the read registers latched it at the last reload (what the ROM and the
    // hardware act on: a burn takes effect with the reload or reset that follows it)
    const uint32_t *b0 = e->hw0;
    if (e->esp32) {
        s->crypt_cnt = (int)((b0[0] >> 20) & 0x7F);
        s->dis_download_mode = (int)((b0[0] >> 27) & 1);
        s->flash_crypt_conf = (int)((b0[5] >> 28) & 0xF);
        s->coding_34 = (b0[6] & 3) == 1;
        s->secure_boot_en = (int)((b0[6] >> 5) & 1); // ABS_DONE_1: Secure Boot v2
        s->hard_dis_jtag = (int)((b0[6] >> 6) & 1);
        s->dis_dl_manual_enc = (int)((b0[6] >> 7) & 1);
        return;
    }
    s->dis_dl_icache = (int)((b0[1] >> 10) & 1);
    if (strcmp(e->chip->name, "esp32s2") == 0 || strcmp(e->chip->name, "esp32s3") == 0) {
        // S2/S3 only: on the C3/C6/H2 these bits are DIS_USB_SERIAL_JTAG and a reserved bit
        s->dis_dl_dcache = (int)((b0[1] >> 11) & 1);
        s->dis_usb = (int)((b0[1] >> 13) & 1); // DIS_USB (S2) / DIS_USB_OTG (S3)
    }
    if (e->s2) { // ESP32-S2: one SOFT_DIS_JTAG bit and the two fields after it one lower
        s->soft_dis_jtag = (int)((b0[1] >> 17) & 1);
        s->hard_dis_jtag = (int)((b0[1] >> 18) & 1);
        s->dis_dl_manual_enc = (int)((b0[1] >> 19) & 1);
    } else {
        s->soft_dis_jtag = __builtin_popcount((b0[1] >> 16) & 7) & 1;
        s->hard_dis_jtag = (int)((b0[1] >> 19) & 1);
        s->dis_dl_manual_enc = (int)((b0[1] >> 20) & 1);
    }
    s->crypt_cnt = (int)((b0[2] >> 18) & 7);
    for (int i = 0; i < 3; i++)
        s->revoke[i] = (int)((b0[2] >> (21 + i)) & 1);
    s->key_purpose[0] = (int)((b0[2] >> 24) & 0xF);
    s->key_purpose[1] = (int)((b0[2] >> 28) & 0xF);
    for (int i = 0; i < 4; i++)
        s->key_purpose[2 + i] = (int)((b0[3] >> (4 * i)) & 0xF);
    s->secure_boot_en = (int)((b0[3] >> 20) & 1);
    s->aggressive_revoke = (int)((b0[3] >> 21) & 1);
    s->dis_download_mode = (int)(b0[4] & 1);
    s->security_download = (int)((b0[4] >> 5) & 1);
}

int sim_efuse_block_data(const sim_efuse_t *e, int b, uint8_t out[32])
{
    memset(out, 0, 32);
    if (b < 0 || b >= e->nblocks) return 0;
    if (coding_34(e) && b >= 1) {
        (void)decode_34(e->raw[b], out);
        return 24;
    }
    words_to_bytes(e->raw[b], blk_words(e, b), out);
    return 4 * blk_words(e, b);
}

// ---------------------------------------------------------------------------------------------
// --efuse-file: {"chip": "...", "blocks": [{"block": N, "words": ["0x...", ...],
//                 "rs": ["0x...", "0x...", "0x..."]}, ...]}

int sim_efuse_save(const sim_efuse_t *e, const char *path)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return -1;
    cJSON_AddStringToObject(root, "chip", e->chip->name);
    cJSON *arr = cJSON_AddArrayToObject(root, "blocks");
    char hex[16];
    for (int b = 0; arr && b < e->nblocks; b++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "block", b);
        cJSON *ws = cJSON_AddArrayToObject(o, "words");
        for (int w = 0; ws && w < blk_words(e, b); w++) {
            snprintf(hex, sizeof(hex), "0x%08x", e->raw[b][w]);
            cJSON_AddItemToArray(ws, cJSON_CreateString(hex));
        }
        if (!e->esp32 && b >= 1) {
            cJSON *rs = cJSON_AddArrayToObject(o, "rs");
            for (int i = 0; rs && i < 3; i++) {
                snprintf(hex, sizeof(hex), "0x%08x", e->rsck[b][i]);
                cJSON_AddItemToArray(rs, cJSON_CreateString(hex));
            }
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return -1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        if (ok && rename(tmp, path) == 0)
            rc = 0;
        else
            unlink(tmp);
    }
    free(text);
    return rc;
}

static int parse_hex_words(const cJSON *arr, uint32_t *out, int n)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsString(s)) return -1;
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(s->valuestring, &end, 16);
        if (errno || !end || *end || end == s->valuestring || v > 0xFFFFFFFFul) return -1;
        out[i] = (uint32_t)v;
    }
    return 0;
}

// Loads burnt bits from JSON text; on error leaves the state untouched.
static int load_text(sim_efuse_t *e, const char *text, char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        snprintf(err, errlen, "not valid JSON");
        return -1;
    }
    int rc = -1;
    uint32_t raw[SIM_EFUSE_BLOCKS][8] = {{0}}, rsck[SIM_EFUSE_BLOCKS][3] = {{0}};
    const cJSON *chip = cJSON_GetObjectItemCaseSensitive(root, "chip");
    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(root, "blocks");
    if (!cJSON_IsString(chip) || strcmp(chip->valuestring, e->chip->name) != 0) {
        snprintf(err, errlen, "\"chip\" must be \"%s\"", e->chip->name);
        goto out;
    }
    if (!cJSON_IsArray(blocks) || cJSON_GetArraySize(blocks) != e->nblocks) {
        snprintf(err, errlen, "\"blocks\" must list the %d blocks", e->nblocks);
        goto out;
    }
    for (int b = 0; b < e->nblocks; b++) {
        const cJSON *o = cJSON_GetArrayItem(blocks, b);
        const cJSON *num = cJSON_GetObjectItemCaseSensitive(o, "block");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "rs");
        if (!cJSON_IsNumber(num) || num->valueint != b ||
            parse_hex_words(cJSON_GetObjectItemCaseSensitive(o, "words"), raw[b],
                            blk_words(e, b)) != 0 ||
            (!e->esp32 && b >= 1 && rs && parse_hex_words(rs, rsck[b], 3) != 0)) {
            snprintf(err, errlen, "block %d: needs \"block\": %d, \"words\": %d hex strings%s", b,
                     b, blk_words(e, b),
                     (!e->esp32 && b >= 1) ? " (and optionally \"rs\": 3 hex strings)" : "");
            goto out;
        }
        if (!e->esp32 && b >= 1 && !rs) { // no check words given: burnt consistently
            uint8_t data[32] = {0}, ck[12];
            words_to_bytes(raw[b], blk_words(e, b), data);
            sim_efuse_rs_encode(data, ck);
            bytes_to_words(ck, 3, rsck[b]);
        }
    }
    memcpy(e->raw, raw, sizeof(raw));
    memcpy(e->rsck, rsck, sizeof(rsck));
    reload(e);
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

int sim_efuse_attach_file(sim_efuse_t *e, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f) {
        char *buf = malloc(1u << 20);
        size_t n = buf ? fread(buf, 1, (1u << 20) - 1, f) : 0;
        fclose(f);
        if (!buf) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        buf[n] = 0;
        char why[160];
        int rc = load_text(e, buf, why, sizeof(why));
        free(buf);
        if (rc != 0) {
            snprintf(err, errlen, "--efuse-file %s: %s (delete it to start with a new chip)", path,
                     why);
            return -1;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "--efuse-file %s: %s", path, strerror(errno));
        return -1;
    }
    free(e->path);
    e->path = strdup(path);
    if (!e->path || sim_efuse_save(e, path) != 0) {
        snprintf(err, errlen, "--efuse-file %s: cannot write it", path);
        return -1;
    }
    return 0;
}

int sim_efuse_load_text(sim_efuse_t *e, const char *text, char *err, size_t errlen)
{
    return load_text(e, text, err, errlen);
}
