/* SPDX-License-Identifier: MIT */
/* secinfo.h — decoding of the ROM's GET_SECURITY_INFO answer (docs/PROTOCOL.md and
 * docs/SECURITY-PROVISIONING.md §"Reading the security state"): 32-bit flags, the flash-crypt
 * counter, seven key purposes, and (20-byte form, ESP32-S3/C3 and later) chip ID and API
 * version; the 12-byte form is the ESP32-S2's. The original ESP32's ROM has no such command:
 * its state comes from the eFuse blocks (efuse.h). Owns: the flag bits, key-purpose names and a
 * decoded summary. Must not: do I/O; accepts any bytes (parsers are fuzzed). */
#ifndef SECINFO_H
#define SECINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Flag bits (esptool's get_security_info flag table). */
#define SECINFO_SECURE_BOOT_EN (1u << 0)
#define SECINFO_SECURE_BOOT_AGGRESSIVE_REVOKE (1u << 1)
#define SECINFO_SECURE_DOWNLOAD_ENABLE (1u << 2)
#define SECINFO_SECURE_BOOT_KEY_REVOKE0 (1u << 3)
#define SECINFO_SECURE_BOOT_KEY_REVOKE1 (1u << 4)
#define SECINFO_SECURE_BOOT_KEY_REVOKE2 (1u << 5)
#define SECINFO_SOFT_DIS_JTAG (1u << 6)
#define SECINFO_HARD_DIS_JTAG (1u << 7)
#define SECINFO_DIS_USB (1u << 8)
#define SECINFO_DIS_DOWNLOAD_DCACHE (1u << 9)
#define SECINFO_DIS_DOWNLOAD_ICACHE (1u << 10)
#define SECINFO_KNOWN_FLAGS 0x7FFu

/* Key purpose values (KEY_PURPOSE_n eFuses, same numbering in GET_SECURITY_INFO). */
enum {
    KEY_PURPOSE_USER = 0,
    KEY_PURPOSE_RESERVED = 1,
    KEY_PURPOSE_XTS_AES_256_KEY_1 = 2,
    KEY_PURPOSE_XTS_AES_256_KEY_2 = 3,
    KEY_PURPOSE_XTS_AES_128_KEY = 4,
    KEY_PURPOSE_HMAC_DOWN_ALL = 5,
    KEY_PURPOSE_HMAC_DOWN_JTAG = 6,
    KEY_PURPOSE_HMAC_DOWN_DIGITAL_SIGNATURE = 7,
    KEY_PURPOSE_HMAC_UP = 8,
    KEY_PURPOSE_SECURE_BOOT_DIGEST0 = 9,
    KEY_PURPOSE_SECURE_BOOT_DIGEST1 = 10,
    KEY_PURPOSE_SECURE_BOOT_DIGEST2 = 11,
};
/* "XTS_AES_128_KEY" etc.; "PURPOSE_<n>" for values without a name here. Never NULL. */
const char *secinfo_key_purpose_name(uint8_t purpose);
/* Value of a purpose name, -1 if unknown. */
int secinfo_key_purpose_from_name(const char *name);

typedef struct secinfo_s {
    uint32_t flags;
    uint8_t flash_crypt_cnt;
    uint8_t key_purposes[7];
    bool has_chip_id; /* 20-byte form */
    uint32_t chip_id;
    uint32_t api_version;
} secinfo_t;

/* Parse the command output (without the status bytes): 12 or 20 bytes. Returns 0, or -1 with
 * err for any other length. */
int secinfo_parse(const uint8_t *out, size_t len, secinfo_t *si, char *err, size_t err_cap);

typedef struct secinfo_summary_s {
    bool flash_encryption;      /* odd number of bits set in the crypt counter */
    unsigned crypt_cnt_bits;    /* bits set in the counter */
    bool crypt_cnt_exhausted;   /* all 3 bits set: encryption can never be turned off again */
    bool secure_boot;
    bool aggressive_revoke;
    bool secure_download;       /* Secure Download Mode: the ROM refuses reads, stub, MD5... */
    bool key_revoked[3];
    bool jtag_soft_disabled, jtag_hard_disabled;
    bool usb_disabled;
    bool download_dcache_disabled, download_icache_disabled;
    int n_secure_boot_digests;  /* key blocks with purpose SECURE_BOOT_DIGEST0..2 */
    int n_flash_keys;           /* key blocks with an XTS_AES purpose */
    uint32_t unknown_flags;     /* bits this build has no name for */
} secinfo_summary_t;

void secinfo_summarize(const secinfo_t *si, secinfo_summary_t *sum);

/* One line for the job record and the dashboard, e.g. "flash encryption on (counter 1/3 bits),
 * Secure Boot on (1 digest), JTAG disabled (hard), Secure Download Mode". Returns the length
 * (truncated to cap-1). */
size_t secinfo_describe(const secinfo_summary_t *sum, char *buf, size_t cap);

#endif
