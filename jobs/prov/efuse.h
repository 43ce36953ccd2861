/* SPDX-License-Identifier: MIT */
/* efuse.h — per-chip eFuse tables and the burn planner (docs/SECURITY-PROVISIONING.md
 * §"eFuse tables" and §"Burn planner"; bit positions and controller registers from the
 * ESP-IDF/esptool eFuse tables cited there).
 * Owns: for ESP32, ESP32-S2, ESP32-S3, ESP32-C3 and ESP32-C6 the blocks (read/program addresses, coding, protect
 * bits, key-purpose slot), the fields a recipe may burn, the controller registers and opcodes;
 * a planner that turns the current block contents (as read from the chip) plus requested
 * values into one burn per block (protection bits last), refusing anything that would clear a
 * bit, change a field already set, touch a protected field/block or reuse a key block; the
 * register program that performs one burn; the read-back check; a dry-run description.
 * Must not: do I/O, log, or print secret values (key data is marked secret in the plan). */
#ifndef EFUSE_H
#define EFUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "efuse_coding.h"

#define EFUSE_MAX_BLOCKS 11
#define EFUSE_BLOCK_BYTES 32
#define EFUSE_MAX_REQ 48
#define EFUSE_MAX_BURNS (EFUSE_MAX_BLOCKS + 2)

typedef enum { EFUSE_CODING_NONE, EFUSE_CODING_34, EFUSE_CODING_RS } efuse_coding_t;
const char *efuse_coding_name(efuse_coding_t c);

typedef struct efuse_block_def_s {
    uint8_t index;
    const char *name;      /* "BLOCK_KEY0" */
    const char *alias;     /* "BLOCK4" */
    uint8_t words;         /* data words: 6, 7 or 8 */
    efuse_coding_t coding; /* ESP32 BLOCK1-3: NONE here, 3/4 when CODING_SCHEME = 1 */
    uint32_t rd_addr;      /* first read register */
    uint32_t wr_addr;      /* first program-data register */
    int8_t wr_dis_bit;     /* WR_DIS bit protecting the block, -1 none */
    int8_t rd_dis_bit;     /* RD_DIS bit, -1 none */
    int8_t key_slot;       /* KEY_PURPOSE_<n> slot (S3/C3), -1 none */
    bool key_block;        /* may receive a key (efuse_plan_key) */
    /* read-error reporting: errors = (err_reg >> err_shift) & 7, fail = err_reg bit fail_bit */
    uint32_t err_reg;
    int8_t err_shift, fail_bit; /* -1: not reported */
} efuse_block_def_t;

typedef enum {
    EFUSE_KIND_ONCE, /* a value: once non-zero it may not change */
    EFUSE_KIND_BITS, /* a bit set / counter: bits may be added, never cleared */
} efuse_kind_t;

typedef struct efuse_field_def_s {
    const char *name;
    const char *alias; /* another accepted name, or NULL */
    uint8_t block;
    uint16_t bit, len; /* start bit in the block and length in bits */
    int8_t wr_dis;     /* WR_DIS bit that write-protects it, -1 none */
    efuse_kind_t kind;
    bool protect;      /* WR_DIS/RD_DIS themselves: burnt in the final burn */
    bool recipe;       /* a recipe may request it */
    const char *what;  /* plain words, for the dry run */
    bool lockdown;     /* ends the station's access (download mode off / Secure Download Mode):
                          burnt in a burn of its own after everything else */
} efuse_field_def_t;

/* One register update of the controller's clock/timing set-up: reg = (reg & ~mask) | value. */
typedef struct efuse_reg_update_s {
    uint32_t addr, mask, value;
} efuse_reg_update_t;

typedef struct efuse_ctrl_s {
    uint32_t base;
    uint32_t conf_reg, cmd_reg;
    uint32_t write_opcode, read_opcode; /* written to conf_reg: 0x5A5A / 0x5AA5 */
    uint32_t pgm_cmd, read_cmd, cmd_mask;
    int8_t block_shift;  /* cmd = pgm_cmd | block << block_shift; -1: no block field (ESP32) */
    bool shared_pgm;     /* S3/C3: one set of program registers (pgm_data0, check_value0) */
    uint32_t pgm_data0, check_value0;
    uint32_t dec_status_reg, dec_status_mask; /* ESP32 3/4 coding errors, 0 if none */
    unsigned xtal_mhz[2];                     /* crystal frequencies the timing below is for */
    efuse_reg_update_t timing[2][8];          /* per xtal_mhz entry */
    uint8_t n_timing;
} efuse_ctrl_t;

typedef struct efuse_chip_s {
    const char *name;   /* esptool spelling: "esp32c3" */
    const char *pretty; /* "ESP32-C3" */
    const efuse_ctrl_t *ctrl;
    const efuse_block_def_t *blocks;
    uint8_t n_blocks;
    const efuse_field_def_t *fields;
    uint16_t n_fields;
    uint16_t purposes;        /* bit mask of key purposes this chip accepts (S3/C3) */
    bool has_key_purposes;    /* false: ESP32 (fixed-use BLOCK1/BLOCK2) */
    int8_t no_xts_slot;       /* key slot that may not hold an XTS key (hardware quirk), -1 */
    const char *crypt_cnt;    /* "SPI_BOOT_CRYPT_CNT" / "FLASH_CRYPT_CNT" */
} efuse_chip_t;

/* Table for a chip by esptool name ("esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6");
 * NULL if not tabled. */
const efuse_chip_t *efuse_chip(const char *name);
/* "esp32, esp32s2, esp32s3, esp32c3, esp32c6" */
const char *efuse_chip_names(void);
const efuse_field_def_t *efuse_field(const efuse_chip_t *c, const char *name);
const efuse_block_def_t *efuse_block(const efuse_chip_t *c, unsigned index);
/* Block by name or alias ("BLOCK_KEY0", "BLOCK4"); NULL if unknown. */
const efuse_block_def_t *efuse_block_by_name(const efuse_chip_t *c, const char *name);

/* Block contents as read from the chip (decoded data, register byte order, 32 bytes per block;
 * unused tail bytes zero). */
typedef struct efuse_state_s {
    uint8_t blk[EFUSE_MAX_BLOCKS][EFUSE_BLOCK_BYTES];
} efuse_state_t;
/* Fill block `index` from the words read at its read registers (n = block words). */
void efuse_state_set_words(efuse_state_t *s, unsigned index, const uint32_t *words, size_t n);

/* The read registers of block `index` (as many words as the block holds; an ESP32 3/4-coded
 * block reads 6 words — pass the state with BLOCK0 already read, or NULL to assume no coding).
 * Returns the number of addresses (0 for an unknown block). The job reads BLOCK0 first, then the
 * others, and fills an efuse_state_t with efuse_state_set_words. */
size_t efuse_block_read_addrs(const efuse_chip_t *c, const efuse_state_t *s, unsigned index,
                              uint32_t addrs[8]);

/* The security state decoded from the blocks (the ESP32 has no GET_SECURITY_INFO; on the
 * other chips this adds what the ROM does not report: protection, mode, download state). */
typedef struct efuse_summary_s {
    bool flash_encryption;      /* odd number of crypt-counter bits */
    bool release_mode;          /* encryption on and the counter can no longer change */
    unsigned crypt_cnt_bits, crypt_cnt_len;
    bool download_encrypt_off;  /* DIS_DOWNLOAD_MANUAL_ENCRYPT / DISABLE_DL_ENCRYPT */
    bool secure_boot;           /* SECURE_BOOT_EN / ABS_DONE_1 */
    bool key_revoked[3];
    bool jtag_disabled;         /* DIS_PAD_JTAG / JTAG_DISABLE */
    bool usb_jtag_disabled;
    bool download_disabled;     /* DIS_DOWNLOAD_MODE / UART_DOWNLOAD_DIS */
    bool secure_download;       /* ENABLE_SECURITY_DOWNLOAD */
    bool rd_dis_locked;         /* RD_DIS write-protected: no more read protection */
    uint8_t key_purpose[6];     /* S3/C3/C6: KEY_PURPOSE_0..5 */
    bool key_used[EFUSE_MAX_BLOCKS];  /* key block holds data or a purpose */
    bool read_protected[EFUSE_MAX_BLOCKS];
    bool write_protected[EFUSE_MAX_BLOCKS];
} efuse_summary_t;
void efuse_summarize(const efuse_chip_t *c, const efuse_state_t *s, efuse_summary_t *sum);
/* Several lines: the summary and one line per key block (purpose, read/write protection),
 * never key bytes. Returns the length written (truncated to cap-1). */
size_t efuse_summary_describe(const efuse_chip_t *c, const efuse_summary_t *sum, char *buf,
                              size_t cap);

/* Field value (fields up to 64 bits). */
uint64_t efuse_get(const efuse_state_t *s, const efuse_field_def_t *f);
/* The coding of a block in this state: ESP32 BLOCK1-3 follow CODING_SCHEME (1 = 3/4). */
efuse_coding_t efuse_block_coding(const efuse_chip_t *c, const efuse_state_t *s, unsigned index);
bool efuse_is_write_protected(const efuse_chip_t *c, const efuse_state_t *s, int wr_dis_bit);

/* One burn: program one block. */
typedef struct efuse_burn_s {
    uint8_t block;
    bool protect_pass;              /* the BLOCK0 burn of WR_DIS/RD_DIS */
    bool lockdown;                  /* the very last BLOCK0 burn: download-mode bits; after it
                                       READ_REG may be refused, verify with GET_SECURITY_INFO */
    bool secret;                    /* the block holds key material: never print its data */
    efuse_coding_t coding;
    uint32_t pgm[EFUSE_RS_WORDS];   /* words for the program registers (coded) */
    uint8_t n_pgm;                  /* 6..8 data words (+3 RS check words) */
    uint32_t expect[8];             /* the block's read-back after this burn */
    uint8_t n_expect;
} efuse_burn_t;

/* One requested change, kept for the dry run and the job record. */
typedef struct efuse_change_s {
    const efuse_field_def_t *field; /* NULL for a whole key block */
    uint8_t block;
    uint64_t old_value, new_value;  /* fields up to 64 bits */
    bool bytes;                     /* a byte field (MAC, user data, key): see secret */
    bool secret;
    char note[64];                  /* e.g. "purpose XTS_AES_128_KEY" */
} efuse_change_t;

typedef struct efuse_plan_s {
    const efuse_chip_t *chip;
    efuse_state_t cur, want;
    uint32_t wr_dis_add, rd_dis_add; /* protection bits for the protection burn */
    uint8_t lock[EFUSE_BLOCK_BYTES]; /* BLOCK0 bits of lockdown fields, burnt last */
    uint16_t touched;                /* blocks this plan writes (bit per block) */
    uint16_t secret_blocks;
    efuse_change_t changes[EFUSE_MAX_REQ];
    unsigned n_changes;
    efuse_burn_t burns[EFUSE_MAX_BURNS];
    unsigned n_burns;
    bool finished;
} efuse_plan_t;

/* Start a plan from the state read from the chip. */
void efuse_plan_init(efuse_plan_t *p, const efuse_chip_t *c, const efuse_state_t *cur);
/* Request field = value (fields up to 64 bits; WR_DIS/RD_DIS add protection bits). */
int efuse_plan_set(efuse_plan_t *p, const char *field, uint64_t value, char *err, size_t cap);
/* Request a byte field (USER_DATA, CUSTOM_MAC...) = bytes, in register byte order. */
int efuse_plan_set_bytes(efuse_plan_t *p, const char *field, const uint8_t *data, size_t len,
                         char *err, size_t cap);
/* Custom MAC (bytes in the usual order, mac[0] first): ESP32 also gets CUSTOM_MAC_CRC (CRC-8,
 * polynomial 0x8C reflected, as the ROM) and MAC_VERSION = 1. Refuses multicast MACs. */
int efuse_plan_custom_mac(efuse_plan_t *p, const uint8_t mac[6], char *err, size_t cap);
/* Burn a key (or digest) with its purpose into `block` (-1: the first free key block). A 64-byte
 * XTS-AES-256 key takes two blocks (XTS_AES_256_KEY_1 and _2). XTS keys are stored byte-reversed
 * and read-protected; every key block and its purpose are write-protected (final burn). On ESP32
 * purpose XTS_AES_128_KEY means the flash-encryption key (BLOCK1) and SECURE_BOOT_DIGEST0 the
 * Secure Boot v2 digest (BLOCK2). Writes the block used to *used (may be NULL). */
int efuse_plan_key(efuse_plan_t *p, int block, int purpose, const uint8_t *key, size_t len,
                   int *used, char *err, size_t cap);
/* Read- or write-protect a block by name (final burn). */
int efuse_plan_protect_block(efuse_plan_t *p, const char *block, bool read_protect, char *err,
                             size_t cap);
/* Compute the burns: data blocks first (ascending), BLOCK0, the protection burn (WR_DIS,
 * RD_DIS), and last the lockdown burn (DIS_DOWNLOAD_MODE, ENABLE_SECURITY_DOWNLOAD, ...).
 * Returns 0 (possibly with no burns: nothing to do) or -1. */
int efuse_plan_finish(efuse_plan_t *p, char *err, size_t cap);
/* Dry run: what would be burnt, one line per change and per burn; secrets as "<secret, N bytes>".
 * Returns the length written (truncated to cap-1). */
size_t efuse_plan_describe(const efuse_plan_t *p, char *buf, size_t cap);

/* The plan as JSON for the job record (cJSON *; the caller frees it with cJSON_Delete):
 * {"chip", "changes": [{"field", "block", "old", "new" | "bytes" | "secret": true, "note"}],
 *  "write_protect", "read_protect", "burns": [{"block", "name", "coding", "kind": "data" |
 *  "block0" | "protection" | "lockdown", "program": ["0x...", ...] (omitted for secrets)}]}.
 * Key material never appears in it. NULL when out of memory. */
void *efuse_plan_to_json(const efuse_plan_t *p);

/* ---- the register program of one burn, for the job's READ_REG/WRITE_REG steps ---- */
typedef enum {
    EFUSE_OP_WRITE,  /* write value to addr */
    EFUSE_OP_UPDATE, /* read addr, write (old & ~mask) | value */
    EFUSE_OP_POLL,   /* read addr until (v & mask) == 0 (the job bounds it, ~100 ms) */
    EFUSE_OP_READ,   /* read addr into result slot `slot` */
} efuse_op_t;
typedef struct efuse_step_s {
    efuse_op_t op;
    uint32_t addr, value, mask;
    uint8_t slot; /* READ: 0..7 block words, 8 = error/status register */
} efuse_step_t;
#define EFUSE_MAX_STEPS 72
#define EFUSE_SLOT_ERR 8
/* Steps for burn `i` of a finished plan with crystal `xtal_mhz` (40; ESP32 also 26): timing
 * set-up, program registers, program command, wait, clear, reload (read command), wait, read
 * back the block and its error register. Returns the step count, 0 on error (err says why). */
size_t efuse_burn_steps(const efuse_plan_t *p, unsigned i, unsigned xtal_mhz,
                        efuse_step_t steps[EFUSE_MAX_STEPS], char *err, size_t cap);
/* Check the read-back of burn `i` (slots 0..n_expect-1 and the error register value).
 * Returns 0 when the block reads back as planned without coding errors, else -1 with err. */
int efuse_burn_verify(const efuse_plan_t *p, unsigned i, const uint32_t *words, size_t n,
                      uint32_t err_reg, char *err, size_t cap);

#endif
