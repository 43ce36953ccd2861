/* SPDX-License-Identifier: MIT */
/* secinfo.c — GET_SECURITY_INFO decoding and summary (secinfo.h, docs/SECURITY-PROVISIONING.md
 * §"Reading the security state"). Must not: do I/O. */
#include "secinfo.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const PURPOSE_NAMES[] = {
    "USER",           "RESERVED",      "XTS_AES_256_KEY_1",
    "XTS_AES_256_KEY_2", "XTS_AES_128_KEY", "HMAC_DOWN_ALL",
    "HMAC_DOWN_JTAG", "HMAC_DOWN_DIGITAL_SIGNATURE", "HMAC_UP",
    "SECURE_BOOT_DIGEST0", "SECURE_BOOT_DIGEST1", "SECURE_BOOT_DIGEST2",
};
#define N_PURPOSES (sizeof PURPOSE_NAMES / sizeof PURPOSE_NAMES[0])

const char *secinfo_key_purpose_name(uint8_t purpose)
{
    static const char *const other[16] = {
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        "PURPOSE_12", "PURPOSE_13", "PURPOSE_14", "PURPOSE_15"};
    if (purpose < N_PURPOSES) return PURPOSE_NAMES[purpose];
    if (purpose < 16) return other[purpose];
    return "PURPOSE_INVALID";
}

int secinfo_key_purpose_from_name(const char *name)
{
    for (size_t i = 0; name && i < N_PURPOSES; i++)
        if (!strcmp(name, PURPOSE_NAMES[i])) return (int)i;
    return -1;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int secinfo_parse(const uint8_t *out, size_t len, secinfo_t *si, char *err, size_t err_cap)
{
    memset(si, 0, sizeof *si);
    if (len != 12 && len != 20) {
        if (err && err_cap)
            snprintf(err, err_cap,
                     "GET_SECURITY_INFO returned %zu bytes; expected 12 (ESP32-S2) or 20", len);
        return -1;
    }
    si->flags = le32(out);
    si->flash_crypt_cnt = out[4];
    memcpy(si->key_purposes, out + 5, 7);
    if (len == 20) {
        si->has_chip_id = true;
        si->chip_id = le32(out + 12);
        si->api_version = le32(out + 16);
    }
    return 0;
}

static unsigned popcount(uint32_t v)
{
    unsigned n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

void secinfo_summarize(const secinfo_t *si, secinfo_summary_t *s)
{
    uint32_t f = si->flags;
    memset(s, 0, sizeof *s);
    s->crypt_cnt_bits = popcount(si->flash_crypt_cnt);
    s->flash_encryption = (s->crypt_cnt_bits & 1u) != 0;
    s->crypt_cnt_exhausted = (si->flash_crypt_cnt & 0x7) == 0x7;
    s->secure_boot = f & SECINFO_SECURE_BOOT_EN;
    s->aggressive_revoke = f & SECINFO_SECURE_BOOT_AGGRESSIVE_REVOKE;
    s->secure_download = f & SECINFO_SECURE_DOWNLOAD_ENABLE;
    s->key_revoked[0] = f & SECINFO_SECURE_BOOT_KEY_REVOKE0;
    s->key_revoked[1] = f & SECINFO_SECURE_BOOT_KEY_REVOKE1;
    s->key_revoked[2] = f & SECINFO_SECURE_BOOT_KEY_REVOKE2;
    s->jtag_soft_disabled = f & SECINFO_SOFT_DIS_JTAG;
    s->jtag_hard_disabled = f & SECINFO_HARD_DIS_JTAG;
    s->usb_disabled = f & SECINFO_DIS_USB;
    s->download_dcache_disabled = f & SECINFO_DIS_DOWNLOAD_DCACHE;
    s->download_icache_disabled = f & SECINFO_DIS_DOWNLOAD_ICACHE;
    s->unknown_flags = f & ~SECINFO_KNOWN_FLAGS;
    for (unsigned i = 0; i < 7; i++) {
        uint8_t p = si->key_purposes[i];
        if (p >= KEY_PURPOSE_SECURE_BOOT_DIGEST0 && p <= KEY_PURPOSE_SECURE_BOOT_DIGEST2)
            s->n_secure_boot_digests++;
        if (p == KEY_PURPOSE_XTS_AES_128_KEY || p == KEY_PURPOSE_XTS_AES_256_KEY_1 ||
            p == KEY_PURPOSE_XTS_AES_256_KEY_2)
            s->n_flash_keys++;
    }
}

/* Append to buf at *pos without overflowing. */
__attribute__((format(printf, 4, 5)))
static void app(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*pos >= cap) return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n;
    if (*pos >= cap) *pos = cap - 1;
}

size_t secinfo_describe(const secinfo_summary_t *s, char *buf, size_t cap)
{
    size_t pos = 0;
    if (!cap) return 0;
    buf[0] = 0;
    app(buf, cap, &pos, "flash encryption %s (counter %u/3 bits%s)",
        s->flash_encryption ? "on" : "off", s->crypt_cnt_bits,
        s->crypt_cnt_exhausted ? ", exhausted" : "");
    app(buf, cap, &pos, ", Secure Boot %s", s->secure_boot ? "on" : "off");
    if (s->n_secure_boot_digests)
        app(buf, cap, &pos, " (%d digest%s", s->n_secure_boot_digests,
            s->n_secure_boot_digests == 1 ? "" : "s");
    if (s->n_secure_boot_digests) {
        for (unsigned i = 0; i < 3; i++)
            if (s->key_revoked[i]) app(buf, cap, &pos, ", key %u revoked", i);
        app(buf, cap, &pos, ")");
    }
    if (s->jtag_hard_disabled) app(buf, cap, &pos, ", JTAG disabled (hard)");
    else if (s->jtag_soft_disabled) app(buf, cap, &pos, ", JTAG disabled (soft)");
    else app(buf, cap, &pos, ", JTAG enabled");
    if (s->secure_download) app(buf, cap, &pos, ", Secure Download Mode");
    if (s->usb_disabled) app(buf, cap, &pos, ", USB disabled");
    if (s->n_flash_keys)
        app(buf, cap, &pos, ", %d flash-encryption key block%s", s->n_flash_keys,
            s->n_flash_keys == 1 ? "" : "s");
    if (s->unknown_flags) app(buf, cap, &pos, ", unknown flags 0x%x", s->unknown_flags);
    return pos;
}
