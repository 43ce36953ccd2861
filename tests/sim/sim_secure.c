// SPDX-License-Identifier: MIT
// sim_secure: the simulated ROM's security behaviour (docs/SIMULATOR.md "eFuses and security").
#include "sim_secure.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sim_event.h"
#include "sim_flashenc.h"

#define SECTOR 4096u
#define SIG_BLOCK 1216u
#define APP_OFFSET 0x10000u // where the simulated bootloader looks for the application

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

size_t sim_sec_info(const sim_efuse_t *e, const sim_chip_t *c, uint8_t out[20])
{
    memset(out, 0, 20);
    if (e) {
        sim_efuse_sec_t s;
        sim_efuse_security(e, &s);
        // flag bits: docs/SIMULATOR.md "eFuses and security"
        uint32_t f = (uint32_t)s.secure_boot_en | (uint32_t)s.aggressive_revoke << 1 |
                     (uint32_t)s.security_download << 2 | (uint32_t)s.revoke[0] << 3 |
                     (uint32_t)s.revoke[1] << 4 | (uint32_t)s.revoke[2] << 5 |
                     (uint32_t)s.soft_dis_jtag << 6 | (uint32_t)s.hard_dis_jtag << 7 |
                     (uint32_t)s.dis_usb << 8 | (uint32_t)s.dis_dl_dcache << 9 |
                     (uint32_t)s.dis_dl_icache << 10;
        put32le(out, f);
        out[4] = (uint8_t)s.crypt_cnt;
        for (int i = 0; i < 6; i++)
            out[5 + i] = (uint8_t)s.key_purpose[i];
    }
    if (c->secinfo_len == 20) {
        put32le(out + 12, (uint32_t)c->chip_id);
        put32le(out + 16, 0); // api/eco version
    }
    return (size_t)c->secinfo_len;
}

int sim_sec_sdm(const sim_efuse_t *e)
{
    if (!e) return 0;
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    return s.security_download;
}

int sim_sec_sdm_refuses(int op)
{
    switch (op) {
    case 0x02: // FLASH_BEGIN
    case 0x03: // FLASH_DATA
    case 0x04: // FLASH_END
    case 0x08: // SYNC
    case 0x0B: // SPI_SET_PARAMS
    case 0x0D: // SPI_ATTACH
    case 0x0F: // CHANGE_BAUDRATE
    case 0x14: // GET_SECURITY_INFO
        return 0;
    default: return 1; // everything else, READ_REG and MEM_* included (docs/SIMULATOR.md)
    }
}

int sim_sec_download_disabled(const sim_efuse_t *e)
{
    if (!e) return 0;
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    return s.dis_download_mode;
}

int sim_sec_manual_encrypt_disabled(const sim_efuse_t *e)
{
    if (!e) return 0;
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    return s.dis_dl_manual_enc;
}

const char *sim_sec_download_banner(const sim_efuse_t *e, const char *boot_download)
{
    static char buf[256];
    int sdm = sim_sec_sdm(e), off = sim_sec_download_disabled(e);
    if (!sdm && !off) return boot_download;
    const char *nl = strchr(boot_download, '\n'); // end of the boot: line
    int n = nl ? (int)(nl - boot_download + 1) : (int)strlen(boot_download);
    // the observed ESP32-S3 text (docs/SIMULATOR.md); "disabled": nothing after the boot: line
    snprintf(buf, sizeof(buf), "%.*s%s", n, boot_download,
             off ? "" : "wait uart download(secure mode)\r\n");
    return buf;
}

int sim_sec_flash_encrypted(const sim_efuse_t *e)
{
    if (!e) return 0;
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    return __builtin_popcount((unsigned)s.crypt_cnt) & 1;
}

// ---------------------------------------------------------------------------------------------
// flash as the CPU reads it (through the decryption when flash encryption is on)

typedef struct {
    const sim_flash_t *flash;
    int enc;
    sim_fe_key_t key;
} reader_t;

static void read_plain(const reader_t *r, uint32_t off, uint8_t *out, uint32_t n)
{
    if (!r->enc) {
        sim_flash_read(r->flash, off, out, n);
        return;
    }
    uint32_t a = off & ~15u, end = (off + n + 15) & ~15u;
    uint8_t *tmp = malloc(end - a);
    if (!tmp) {
        memset(out, 0xFF, n);
        return;
    }
    sim_flash_read(r->flash, a, tmp, end - a);
    if (sim_fe_crypt(&r->key, a, tmp, end - a, 1) != 0) memset(tmp, 0xFF, end - a);
    memcpy(out, tmp + (off - a), n);
    free(tmp);
}

// Length of the ESP image at off (header, segments, checksum padding, appended SHA-256), or 0
// when it does not parse (docs/SIMULATOR.md "eFuses and security", the boot).
static uint32_t image_length(const reader_t *r, uint32_t off)
{
    uint8_t h[24];
    read_plain(r, off, h, sizeof(h));
    if (h[0] != 0xE9 || h[1] == 0 || h[1] > 16) return 0;
    uint32_t pos = 24;
    for (int i = 0; i < h[1]; i++) {
        uint8_t sh[8];
        read_plain(r, off + pos, sh, 8);
        uint32_t len =
            (uint32_t)sh[4] | (uint32_t)sh[5] << 8 | (uint32_t)sh[6] << 16 | (uint32_t)sh[7] << 24;
        if (len > r->flash->size || pos + 8 + len > r->flash->size) return 0;
        pos += 8 + len;
    }
    pos = (pos + 16) & ~15u; // padding, then the checksum byte ends a 16-byte line
    if (h[23] == 1) pos += 32;
    return (uint64_t)off + pos <= r->flash->size ? pos : 0;
}

static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && pctx && EVP_PKEY_fromdata_init(pctx) == 1)
        (void)EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return pkey;
}

// RSA-3072 signature block: PSS, SHA-256, salt 32, numbers little-endian (espsecure format).
static int verify_rsa(const uint8_t *blk, const uint8_t digest[32])
{
    BIGNUM *n = BN_lebin2bn(blk + 36, 384, NULL);
    BIGNUM *ex = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    uint32_t ev = (uint32_t)blk[420] | (uint32_t)blk[421] << 8 | (uint32_t)blk[422] << 16 |
                  (uint32_t)blk[423] << 24;
    EVP_PKEY *pkey = NULL;
    if (n && ex && bld && BN_set_word(ex, ev) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) == 1)
        pkey = key_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(ex);
    if (!pkey) return 0;
    uint8_t sig[384];
    for (int i = 0; i < 384; i++)
        sig[i] = blk[812 + 383 - i];
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pkey, NULL);
    int ok = v && EVP_PKEY_verify_init(v) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(v, 32) == 1 &&
             EVP_PKEY_verify(v, sig, sizeof(sig), digest, 32) == 1;
    EVP_PKEY_CTX_free(v);
    EVP_PKEY_free(pkey);
    return ok;
}

// ECDSA signature block: curve id, point and (r, s) little-endian at koff (espsecure format).
static int verify_ecdsa(const uint8_t *blk, int koff, int field, const uint8_t *digest, int dlen)
{
    int curve = blk[koff];
    const char *group = curve == 1   ? "prime192v1"
                        : curve == 2 ? "prime256v1"
                        : curve == 3 ? "secp384r1"
                                     : NULL;
    int clen = curve == 1 ? 24 : curve == 2 ? 32 : 48;
    if (!group || 2 * clen > field) return 0;
    uint8_t pub[1 + 96];
    pub[0] = 0x04;
    for (int i = 0; i < clen; i++) {
        pub[1 + i] = blk[koff + 1 + clen - 1 - i];
        pub[1 + clen + i] = blk[koff + 1 + 2 * clen - 1 - i];
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                         (size_t)(1 + 2 * clen)) == 1)
        pkey = key_from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey) return 0;
    const uint8_t *rs = blk + koff + 1 + field;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_lebin2bn(rs, clen, NULL), *s = BN_lebin2bn(rs + clen, clen, NULL);
    unsigned char *der = NULL;
    int derlen = -1;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; // owned by sig now
        derlen = i2d_ECDSA_SIG(sig, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new(pkey, NULL);
    int ok = derlen > 0 && v && EVP_PKEY_verify_init(v) == 1 &&
             EVP_PKEY_verify(v, der, (size_t)derlen, digest, (size_t)dlen) == 1;
    EVP_PKEY_CTX_free(v);
    EVP_PKEY_free(pkey);
    OPENSSL_free(der);
    return ok;
}

typedef struct {
    uint8_t digest[3][32];
    int n;
} sb_keys_t;

// The public-key digests the chip trusts: key blocks with purpose SECURE_BOOT_DIGEST0..2 that
// are not revoked (ESP32: BLOCK2 with ABS_DONE_1).
static void trusted_digests(const sim_efuse_t *e, sb_keys_t *k)
{
    sim_efuse_sec_t s;
    sim_efuse_security(e, &s);
    k->n = 0;
    uint8_t blk[32];
    if (sim_efuse_block_data(e, 0, blk) == 28) {
        sim_efuse_block_data(e, 2, blk);
        memcpy(k->digest[k->n++], blk, 32);
        return;
    }
    for (int i = 0; i < 6; i++) {
        int p = s.key_purpose[i] - SIM_KP_SECURE_BOOT_DIGEST0;
        if (p < 0 || p > 2 || s.revoke[p]) continue;
        sim_efuse_block_data(e, 4 + i, blk);
        memcpy(k->digest[k->n++], blk, 32);
        if (k->n == 3) break;
    }
}

// One signature block: format, CRC, image digest, trusted key, signature. 1 = valid.
static int check_sig_block(const uint8_t *blk, const uint8_t *img, uint32_t img_len,
                           const sb_keys_t *keys)
{
    if (blk[0] != 0xE7 || (blk[1] != 2 && blk[1] != 3)) return 0;
    uint32_t crc = (uint32_t)blk[1196] | (uint32_t)blk[1197] << 8 | (uint32_t)blk[1198] << 16 |
                   (uint32_t)blk[1199] << 24;
    if ((uint32_t)crc32(0L, blk, 1196) != crc) return 0;
    int sha384 = blk[1] == 3 && blk[2] == 1;
    int dlen = sha384 ? 48 : 32, koff = sha384 ? 52 : 36;
    int keylen = blk[1] == 2 ? 776 : (sha384 ? 97 : 65);
    uint8_t digest[48], kd[32];
    unsigned int dl = 0;
    if (EVP_Digest(img, img_len, digest, &dl, sha384 ? EVP_sha384() : EVP_sha256(), NULL) != 1 ||
        memcmp(digest, blk + 4, (size_t)dlen) != 0)
        return 0;
    if (EVP_Digest(blk + koff, (size_t)keylen, kd, &dl, EVP_sha256(), NULL) != 1) return 0;
    int trusted = 0;
    for (int i = 0; i < keys->n; i++)
        if (memcmp(kd, keys->digest[i], 32) == 0) trusted = 1;
    if (!trusted) return 0;
    if (blk[1] == 2) return verify_rsa(blk, digest);
    return verify_ecdsa(blk, koff, sha384 ? 96 : 64, digest, dlen);
}

// Secure Boot v2 check of the image at off: one of the (up to 3) signature blocks in the sector
// after the 4 KiB-padded image must verify with a trusted key.
static int verify_image(const reader_t *r, uint32_t off, const sb_keys_t *keys)
{
    uint32_t len = image_length(r, off);
    if (len == 0) return 0;
    uint32_t sig_off = (len + SECTOR - 1) & ~(SECTOR - 1);
    if ((uint64_t)off + sig_off + SECTOR > r->flash->size) return 0;
    uint8_t *img = malloc(sig_off + SECTOR);
    if (!img) return 0;
    read_plain(r, off, img, sig_off + SECTOR);
    int ok = 0;
    for (int i = 0; i < 3 && !ok; i++)
        ok = check_sig_block(img + sig_off + (uint32_t)i * SIG_BLOCK, img, sig_off, keys);
    free(img);
    return ok;
}

static void boot_event(const char *check, int ok, int keys)
{
    sim_ev_t ev;
    sim_ev_begin(&ev, "boot_check");
    sim_ev_str(&ev, "check", check);
    sim_ev_bool(&ev, "ok", ok);
    sim_ev_num(&ev, "keys", keys);
    sim_ev_end(&ev);
}

// Secure Boot v2 at SPI boot: the ROM checks the bootloader, the bootloader the application.
static void boot_secure(const sim_efuse_t *e, const sim_chip_t *c, const reader_t *rp,
                        sim_boot_t *out)
{
    const reader_t r = *rp;
    sb_keys_t keys;
    trusted_digests(e, &keys);
    // ROM texts: modelled on public ESP32-C3 boot logs ("Valid secure boot key blocks: N",
    // "secure boot verification succeeded"); the failure line is our inference
    int ok = verify_image(&r, c->bootloader_off, &keys);
    boot_event("bootloader", ok, keys.n);
    if (!ok) {
        snprintf(out->msg, sizeof(out->msg),
                 "Valid secure boot key blocks: %d\r\nsecure boot verification failed\r\n", keys.n);
        out->result = SIM_BOOT_REFUSED;
        return;
    }
    snprintf(out->msg, sizeof(out->msg),
             "Valid secure boot key blocks: %d\r\nsecure boot verification succeeded\r\n", keys.n);
    uint8_t app[1];
    read_plain(&r, APP_OFFSET, app, 1);
    if (APP_OFFSET == c->bootloader_off || app[0] != 0xE9) return;
    ok = verify_image(&r, APP_OFFSET, &keys);
    boot_event("app", ok, keys.n);
    if (!ok) {
        // the second-stage bootloader's words (ESP-IDF esp_image / boot log lines)
        snprintf(out->msg + strlen(out->msg), sizeof(out->msg) - strlen(out->msg),
                 "E (312) esp_image: Secure boot signature verification failed\r\n"
                 "E (320) boot: Factory app partition is not bootable\r\n"
                 "E (326) boot: No bootable app partitions in the partition table\r\n");
        out->result = SIM_BOOT_REFUSED;
    }
}

void sim_sec_boot(const sim_efuse_t *e, const sim_chip_t *c, const sim_flash_t *flash,
                  sim_boot_t *out)
{
    memset(out, 0, sizeof(*out));
    reader_t r = {.flash = flash, .enc = sim_sec_flash_encrypted(e)};
    if (r.enc) sim_fe_key_from_efuse(e, &r.key);
    uint8_t hdr[4];
    read_plain(&r, c->bootloader_off, hdr, 4);
    out->first_word =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (r.enc) boot_event("flash_encryption", hdr[0] == 0xE9, 0);
    if (hdr[0] != 0xE9) {
        out->result = SIM_BOOT_INVALID;
        return;
    }
    out->result = SIM_BOOT_OK;
    sim_efuse_sec_t s;
    if (!e) return;
    sim_efuse_security(e, &s);
    if (!s.secure_boot_en) return;
    boot_secure(e, c, &r, out);
}
