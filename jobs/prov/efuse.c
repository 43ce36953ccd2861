/* SPDX-License-Identifier: MIT */
/* efuse.c — eFuse field access, the burn planner, the register program of a burn and its
 * read-back check (efuse.h; docs/SECURITY-PROVISIONING.md §"Burn planner"). Tables live in
 * efuse_tables.c. Must not: do I/O, log, or put key bytes into any text it produces. */
#include "efuse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "secinfo.h"

const efuse_chip_t *efuse_chip_table(size_t *n); /* efuse_tables.c */

__attribute__((format(printf, 3, 4))) static int ef_fail(char *err, size_t cap, const char *fmt,
                                                          ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *efuse_coding_name(efuse_coding_t c)
{
    return c == EFUSE_CODING_RS ? "Reed-Solomon" : c == EFUSE_CODING_34 ? "3/4" : "none";
}

const efuse_chip_t *efuse_chip(const char *name)
{
    size_t n;
    const efuse_chip_t *t = efuse_chip_table(&n);
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(t[i].name, name)) return &t[i];
    return NULL;
}

const char *efuse_chip_names(void)
{
    return "esp32, esp32s2, esp32s3, esp32c3, esp32c6";
}

const efuse_field_def_t *efuse_field(const efuse_chip_t *c, const char *name)
{
    for (unsigned i = 0; name && i < c->n_fields; i++)
        if (!strcmp(c->fields[i].name, name) ||
            (c->fields[i].alias && !strcmp(c->fields[i].alias, name)))
            return &c->fields[i];
    return NULL;
}

const efuse_block_def_t *efuse_block(const efuse_chip_t *c, unsigned index)
{
    return index < c->n_blocks ? &c->blocks[index] : NULL;
}

const efuse_block_def_t *efuse_block_by_name(const efuse_chip_t *c, const char *name)
{
    for (unsigned i = 0; name && i < c->n_blocks; i++)
        if (!strcmp(c->blocks[i].name, name) ||
            (c->blocks[i].alias && !strcmp(c->blocks[i].alias, name)))
            return &c->blocks[i];
    return NULL;
}

/* ---- bits ---- */

static unsigned bit_get(const uint8_t *blk, unsigned bit)
{
    return (blk[bit / 8] >> (bit % 8)) & 1u;
}

static void bit_put(uint8_t *blk, unsigned bit, unsigned v)
{
    if (v) blk[bit / 8] |= (uint8_t)(1u << (bit % 8));
    else blk[bit / 8] &= (uint8_t)~(1u << (bit % 8));
}

static uint64_t bits_get(const uint8_t *blk, unsigned bit, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len && i < 64; i++)
        v |= (uint64_t)bit_get(blk, bit + i) << i;
    return v;
}

void efuse_state_set_words(efuse_state_t *s, unsigned index, const uint32_t *words, size_t n)
{
    if (index >= EFUSE_MAX_BLOCKS) return;
    memset(s->blk[index], 0, EFUSE_BLOCK_BYTES);
    if (n > 8) n = 8;
    efuse_words_to_bytes(words, n, s->blk[index]);
}

uint64_t efuse_get(const efuse_state_t *s, const efuse_field_def_t *f)
{
    return bits_get(s->blk[f->block], f->bit, f->len);
}

efuse_coding_t efuse_block_coding(const efuse_chip_t *c, const efuse_state_t *s, unsigned index)
{
    const efuse_field_def_t *cs;
    if (index >= c->n_blocks) return EFUSE_CODING_NONE;
    if (!c->has_key_purposes && index >= 1 && index <= 3 && (cs = efuse_field(c, "CODING_SCHEME")))
        return efuse_get(s, cs) == 1 ? EFUSE_CODING_34 : EFUSE_CODING_NONE;
    return c->blocks[index].coding;
}

bool efuse_is_write_protected(const efuse_chip_t *c, const efuse_state_t *s, int wr_dis_bit)
{
    const efuse_field_def_t *wd = efuse_field(c, "WR_DIS");
    return wr_dis_bit >= 0 && wd && bit_get(s->blk[0], wd->bit + (unsigned)wr_dis_bit);
}

static bool read_protected(const efuse_chip_t *c, const efuse_state_t *s, int rd_dis_bit)
{
    const efuse_field_def_t *rd = efuse_field(c, "RD_DIS");
    return rd_dis_bit >= 0 && rd && bit_get(s->blk[0], rd->bit + (unsigned)rd_dis_bit);
}

static bool block_empty(const uint8_t *blk)
{
    for (unsigned i = 0; i < EFUSE_BLOCK_BYTES; i++)
        if (blk[i]) return false;
    return true;
}

/* ---- planner ---- */

void efuse_plan_init(efuse_plan_t *p, const efuse_chip_t *c, const efuse_state_t *cur)
{
    memset(p, 0, sizeof *p);
    p->chip = c;
    p->cur = *cur;
    p->want = *cur;
}

static efuse_change_t *add_change(efuse_plan_t *p, const efuse_field_def_t *f, uint8_t block,
                                  char *err, size_t cap)
{
    efuse_change_t *ch;
    if (p->n_changes >= EFUSE_MAX_REQ) {
        ef_fail(err, cap, "too many eFuse requests in one plan (at most %d)", EFUSE_MAX_REQ);
        return NULL;
    }
    ch = &p->changes[p->n_changes++];
    memset(ch, 0, sizeof *ch);
    ch->field = f;
    ch->block = block;
    return ch;
}

/* May the data of block `b` be written by this plan? (protection, coding) */
static int block_writable(efuse_plan_t *p, unsigned b, char *err, size_t cap)
{
    const efuse_block_def_t *bd = &p->chip->blocks[b];
    if (b == 0) return 0;
    if (efuse_is_write_protected(p->chip, &p->cur, bd->wr_dis_bit))
        return ef_fail(err, cap, "%s is write-protected (WR_DIS bit %d): nothing more can be "
                                 "burnt into it", bd->name, bd->wr_dis_bit);
    if (read_protected(p->chip, &p->cur, bd->rd_dis_bit))
        return ef_fail(err, cap, "%s is read-protected: a burn could not be verified, refused",
                       bd->name);
    return 0;
}

/* Checks shared by all field requests: recipe field, not protected, block writable. */
static int field_checks(efuse_plan_t *p, const efuse_field_def_t *f, char *err, size_t cap)
{
    if (!f->recipe)
        return ef_fail(err, cap, "%s is not a field a recipe may burn (set by the station itself "
                                 "or the factory)", f->name);
    if (efuse_is_write_protected(p->chip, &p->cur, f->wr_dis))
        return ef_fail(err, cap, "%s is write-protected (WR_DIS bit %d): it cannot change",
                       f->name, f->wr_dis);
    return block_writable(p, f->block, err, cap);
}

/* The value `v` (field-relative bits, LE bytes) against current and already planned bits. */
static int field_compare(efuse_plan_t *p, const efuse_field_def_t *f, const uint8_t *v,
                         bool *noop, bool *dup, char *err, size_t cap)
{
    const uint8_t *cur = p->cur.blk[f->block], *want = p->want.blk[f->block];
    bool cur_set = false, same = true, planned = false, planned_same = true, clears = false;
    efuse_coding_t coding = efuse_block_coding(p->chip, &p->cur, f->block);
    for (unsigned i = 0; i < f->len; i++) {
        unsigned o = bit_get(cur, f->bit + i), n = bit_get(v, i), w = bit_get(want, f->bit + i);
        cur_set |= o;
        same &= o == n;
        clears |= o && !n;
        planned |= w != o;
        planned_same &= w == n;
        if (n && coding == EFUSE_CODING_34 && f->bit + i >= 192)
            return ef_fail(err, cap, "%s: with the 3/4 coding scheme only 192 bits of the block "
                                     "exist", f->name);
    }
    *noop = same;
    if (dup) *dup = planned && planned_same; /* the same request again */
    if (same) return 0;
    if (planned && !planned_same)
        return ef_fail(err, cap, "%s requested twice with different values", f->name);
    if (f->kind == EFUSE_KIND_ONCE && cur_set)
        return ef_fail(err, cap, "%s is already set to a different value; eFuses cannot be "
                                 "rewritten", f->name);
    if (clears)
        return ef_fail(err, cap, "%s: the new value would clear bit(s) already burnt (0x%llx -> "
                                 "0x%llx); an eFuse bit can only go from 0 to 1", f->name,
                       (unsigned long long)bits_get(cur, f->bit, f->len),
                       (unsigned long long)bits_get(v, 0, f->len));
    if (coding != EFUSE_CODING_NONE && !block_empty(cur))
        return ef_fail(err, cap, "%s already holds data and uses %s coding: such a block can be "
                                 "programmed only once", p->chip->blocks[f->block].name,
                       efuse_coding_name(coding));
    return 0;
}

static int apply_field(efuse_plan_t *p, const efuse_field_def_t *f, const uint8_t *v, bool secret,
                       const char *note, char *err, size_t cap)
{
    bool noop = false, dup = false;
    efuse_change_t *ch;
    if (field_checks(p, f, err, cap) != 0) return -1;
    if (f->protect) { /* WR_DIS / RD_DIS: collected for the final burn */
        uint32_t add = (uint32_t)bits_get(v, 0, f->len);
        if (!strcmp(f->name, "WR_DIS")) p->wr_dis_add |= add;
        else p->rd_dis_add |= add;
        if (!(ch = add_change(p, f, 0, err, cap))) return -1;
        ch->old_value = efuse_get(&p->cur, f);
        ch->new_value = ch->old_value | add;
        return 0;
    }
    if (field_compare(p, f, v, &noop, &dup, err, cap) != 0) return -1;
    if (dup) return 0; /* already in this plan */
    if (!(ch = add_change(p, f, f->block, err, cap))) return -1;
    ch->old_value = efuse_get(&p->cur, f);
    ch->bytes = f->len >= 48 && f->len % 8 == 0; /* MACs, user data: shown as bytes */
    ch->secret = secret;
    if (note) snprintf(ch->note, sizeof ch->note, "%s", note);
    if (noop) {
        ch->new_value = ch->old_value;
        snprintf(ch->note, sizeof ch->note, "already set, nothing to burn");
        return 0;
    }
    for (unsigned i = 0; i < f->len; i++)
        if (bit_get(v, i)) bit_put(f->lockdown ? p->lock : p->want.blk[f->block], f->bit + i, 1);
    ch->new_value = f->lockdown ? ch->old_value | bits_get(p->lock, f->bit, f->len)
                                : efuse_get(&p->want, f);
    if (f->lockdown) snprintf(ch->note, sizeof ch->note, "lockdown: burnt last");
    p->touched |= (uint16_t)(1u << f->block);
    if (secret) p->secret_blocks |= (uint16_t)(1u << f->block);
    return 0;
}

int efuse_plan_set(efuse_plan_t *p, const char *name, uint64_t value, char *err, size_t cap)
{
    const efuse_field_def_t *f = efuse_field(p->chip, name);
    uint8_t v[8];
    if (!f) return ef_fail(err, cap, "%s has no eFuse field %s", p->chip->pretty, name);
    if (f->len > 64)
        return ef_fail(err, cap, "%s is a %u-bit field: give its bytes", f->name, f->len);
    if (f->len < 64 && value >> f->len)
        return ef_fail(err, cap, "%s is %u bits wide: 0x%llx does not fit", f->name, f->len,
                       (unsigned long long)value);
    for (unsigned i = 0; i < 8; i++)
        v[i] = (uint8_t)(value >> (8 * i));
    return apply_field(p, f, v, false, NULL, err, cap);
}

int efuse_plan_set_bytes(efuse_plan_t *p, const char *name, const uint8_t *data, size_t len,
                         char *err, size_t cap)
{
    const efuse_field_def_t *f = efuse_field(p->chip, name);
    uint8_t v[EFUSE_BLOCK_BYTES] = {0};
    if (!f) return ef_fail(err, cap, "%s has no eFuse field %s", p->chip->pretty, name);
    if (len != (f->len + 7u) / 8u || len > sizeof v)
        return ef_fail(err, cap, "%s takes %u bytes, got %zu", f->name, (f->len + 7u) / 8u, len);
    memcpy(v, data, len);
    return apply_field(p, f, v, false, NULL, err, cap);
}

/* CRC-8 of the ESP32 custom MAC: polynomial 0x8C (reflected 0x31), initial value 0. */
static uint8_t mac_crc8(const uint8_t *d, size_t n)
{
    uint8_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= d[i];
        for (unsigned k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint8_t)((crc >> 1) ^ 0x8C) : (uint8_t)(crc >> 1);
    }
    return crc;
}

int efuse_plan_custom_mac(efuse_plan_t *p, const uint8_t mac[6], char *err, size_t cap)
{
    const efuse_field_def_t *f = efuse_field(p->chip, "CUSTOM_MAC");
    if (!f) return ef_fail(err, cap, "%s has no custom MAC field", p->chip->pretty);
    if (mac[0] & 1) return ef_fail(err, cap, "a custom MAC must be unicast (first byte even)");
    if (efuse_plan_set_bytes(p, "CUSTOM_MAC", mac, 6, err, cap) != 0) return -1;
    if (p->chip->has_key_purposes) return 0;
    { /* ESP32: CRC and MAC_VERSION = 1 (fields a recipe does not set directly) */
        const efuse_field_def_t *crc = efuse_field(p->chip, "CUSTOM_MAC_CRC");
        const efuse_field_def_t *ver = efuse_field(p->chip, "MAC_VERSION");
        uint8_t c = mac_crc8(mac, 6), one = 1;
        bool noop;
        if (field_compare(p, crc, &c, &noop, NULL, err, cap) != 0 ||
            field_compare(p, ver, &one, &noop, NULL, err, cap) != 0)
            return -1;
        for (unsigned i = 0; i < 8; i++) {
            bit_put(p->want.blk[3], crc->bit + i, (c >> i) & 1u);
            bit_put(p->want.blk[3], ver->bit + i, i == 0);
        }
    }
    return 0;
}

/* ---- keys ---- */

static bool purpose_is_xts(int purpose)
{
    return purpose == KEY_PURPOSE_XTS_AES_128_KEY || purpose == KEY_PURPOSE_XTS_AES_256_KEY_1 ||
           purpose == KEY_PURPOSE_XTS_AES_256_KEY_2;
}

/* Keys that must stay secret (read-protected): XTS and HMAC keys; digests are public. */
static bool purpose_is_secret(int purpose)
{
    return purpose >= KEY_PURPOSE_XTS_AES_256_KEY_1 && purpose <= KEY_PURPOSE_HMAC_UP;
}

static const efuse_field_def_t *purpose_field(const efuse_chip_t *c, int slot)
{
    char name[24];
    snprintf(name, sizeof name, "KEY_PURPOSE_%d", slot);
    return efuse_field(c, name);
}

/* RD_DIS itself write-protected (WR_DIS bit of the RD_DIS field): no more read protection. */
static bool rd_dis_locked(const efuse_plan_t *p)
{
    const efuse_field_def_t *rd = efuse_field(p->chip, "RD_DIS");
    return rd && efuse_is_write_protected(p->chip, &p->cur, rd->wr_dis);
}

/* Is key block `b` free in the current state and not yet claimed by this plan? */
static bool key_block_free(const efuse_plan_t *p, const efuse_block_def_t *bd)
{
    const efuse_field_def_t *pf = bd->key_slot >= 0 ? purpose_field(p->chip, bd->key_slot) : NULL;
    if (!bd->key_block || !block_empty(p->cur.blk[bd->index]) ||
        !block_empty(p->want.blk[bd->index]) ||
        efuse_is_write_protected(p->chip, &p->cur, bd->wr_dis_bit) ||
        read_protected(p->chip, &p->cur, bd->rd_dis_bit))
        return false;
    if (pf && (efuse_get(&p->cur, pf) != 0 || efuse_get(&p->want, pf) != 0 ||
               efuse_is_write_protected(p->chip, &p->cur, pf->wr_dis)))
        return false;
    return true;
}

/* Write one key block: data (reversed for XTS), purpose, protection. */
static int put_key(efuse_plan_t *p, const efuse_block_def_t *bd, int purpose, const uint8_t *key,
                   size_t len, char *err, size_t cap)
{
    uint8_t *dst = p->want.blk[bd->index];
    bool reverse = purpose_is_xts(purpose);
    bool secret = purpose_is_secret(purpose); /* read-protected */
    /* never shown: everything but a Secure Boot digest (a USER key may be anyone's secret) */
    bool hidden = purpose < KEY_PURPOSE_SECURE_BOOT_DIGEST0 ||
                  purpose > KEY_PURPOSE_SECURE_BOOT_DIGEST2;
    efuse_change_t *ch;
    if (!key_block_free(p, bd))
        return ef_fail(err, cap, "%s is not free (holds data, has a purpose, or is protected): "
                                 "refusing to burn a key into it", bd->name);
    if (secret && bd->rd_dis_bit >= 0 && rd_dis_locked(p))
        return ef_fail(err, cap, "RD_DIS is write-protected: the key in %s could never be "
                                 "read-protected, refusing to burn a readable secret key (burn "
                                 "flash-encryption keys before write-protecting RD_DIS)", bd->name);
    if (!(ch = add_change(p, NULL, bd->index, err, cap))) return -1;
    for (size_t i = 0; i < len; i++)
        dst[i] = reverse ? key[len - 1 - i] : key[i];
    ch->bytes = true;
    ch->secret = hidden;
    snprintf(ch->note, sizeof ch->note, "%u-byte key, purpose %s", (unsigned)len,
             p->chip->has_key_purposes ? secinfo_key_purpose_name((uint8_t)purpose)
             : purpose == KEY_PURPOSE_XTS_AES_128_KEY ? "flash encryption"
                                                      : "Secure Boot v2 digest");
    p->touched |= (uint16_t)(1u << bd->index);
    if (hidden) p->secret_blocks |= (uint16_t)(1u << bd->index);
    if (bd->wr_dis_bit >= 0) p->wr_dis_add |= 1u << bd->wr_dis_bit;
    if (secret && bd->rd_dis_bit >= 0) p->rd_dis_add |= 1u << bd->rd_dis_bit;
    if (bd->key_slot >= 0) {
        const efuse_field_def_t *pf = purpose_field(p->chip, bd->key_slot);
        uint8_t v = (uint8_t)purpose;
        if (apply_field(p, pf, &v, false, secinfo_key_purpose_name(v), err, cap) != 0) return -1;
        if (pf->wr_dis >= 0) p->wr_dis_add |= 1u << pf->wr_dis;
    }
    return 0;
}

static int plan_key_esp32(efuse_plan_t *p, int block, int purpose, const uint8_t *key, size_t len,
                          int *used, char *err, size_t cap)
{
    int b = purpose == KEY_PURPOSE_XTS_AES_128_KEY ? 1 : purpose == KEY_PURPOSE_SECURE_BOOT_DIGEST0 ? 2 : -1;
    efuse_coding_t coding;
    size_t want_len;
    if (b < 0)
        return ef_fail(err, cap, "ESP32 keys: purpose XTS_AES_128_KEY (flash encryption, BLOCK1) "
                                 "or SECURE_BOOT_DIGEST0 (Secure Boot v2 digest, BLOCK2)");
    if (block >= 0 && block != b)
        return ef_fail(err, cap, "on the ESP32 this key goes to BLOCK%d, not BLOCK%d", b, block);
    coding = efuse_block_coding(p->chip, &p->cur, (unsigned)b);
    if (b == 2 && coding != EFUSE_CODING_NONE)
        return ef_fail(err, cap, "ESP32 Secure Boot v2 needs the NONE coding scheme (this chip "
                                 "uses 3/4 coding: its BLOCK2 holds only 24 bytes)");
    want_len = coding == EFUSE_CODING_34 ? 24 : 32;
    if (len != want_len)
        return ef_fail(err, cap, "BLOCK%d takes a %zu-byte key here, got %zu", b, want_len, len);
    if (block_writable(p, (unsigned)b, err, cap) != 0) return -1;
    if (used) *used = b;
    /* The flash-encryption key is stored byte-reversed, as espefuse burn-key does for it. */
    return put_key(p, &p->chip->blocks[b], purpose, key, len, err, cap);
}

/* First free key block for `purpose`, starting at `from`. */
static const efuse_block_def_t *first_free(const efuse_plan_t *p, int purpose, unsigned from)
{
    for (unsigned i = from; i < p->chip->n_blocks; i++) {
        const efuse_block_def_t *bd = &p->chip->blocks[i];
        if (purpose_is_xts(purpose) && bd->key_slot == p->chip->no_xts_slot) continue;
        if (key_block_free(p, bd)) return bd;
    }
    return NULL;
}

int efuse_plan_key(efuse_plan_t *p, int block, int purpose, const uint8_t *key, size_t len,
                   int *used, char *err, size_t cap)
{
    const efuse_block_def_t *bd;
    bool xts256 = purpose == KEY_PURPOSE_XTS_AES_256_KEY_1 && len == 64;
    if (used) *used = -1;
    if (purpose < 0 || purpose > 15 || !(p->chip->purposes & (1u << purpose)))
        return ef_fail(err, cap, "%s does not accept key purpose %s", p->chip->pretty,
                       secinfo_key_purpose_name((uint8_t)(purpose < 0 ? 255 : purpose)));
    if (!p->chip->has_key_purposes) return plan_key_esp32(p, block, purpose, key, len, used, err, cap);
    if (len != 32 && !xts256)
        return ef_fail(err, cap, "a key block takes 32 bytes (64 for XTS_AES_256_KEY_1, split over "
                                 "two blocks), got %zu", len);
    if (block >= 0) {
        bd = efuse_block(p->chip, (unsigned)block);
        if (!bd || !bd->key_block)
            return ef_fail(err, cap, "BLOCK%d is not a key block of the %s", block, p->chip->pretty);
        if (purpose_is_xts(purpose) && bd->key_slot == p->chip->no_xts_slot)
            return ef_fail(err, cap, "%s cannot hold an XTS-AES key (hardware erratum)", bd->name);
    } else if (!(bd = first_free(p, purpose, 0))) {
        return ef_fail(err, cap, "no free key block left on this %s", p->chip->pretty);
    }
    if (put_key(p, bd, purpose, key, 32, err, cap) != 0) return -1;
    if (used) *used = bd->index;
    if (xts256) { /* second half: next free block, purpose XTS_AES_256_KEY_2 */
        const efuse_block_def_t *b2 = first_free(p, purpose, bd->index + 1u);
        if (!b2) return ef_fail(err, cap, "no second free key block for XTS-AES-256");
        if (put_key(p, b2, KEY_PURPOSE_XTS_AES_256_KEY_2, key + 32, 32, err, cap) != 0) return -1;
    }
    return 0;
}

int efuse_plan_protect_block(efuse_plan_t *p, const char *name, bool read_protect, char *err,
                             size_t cap)
{
    const efuse_block_def_t *bd = efuse_block_by_name(p->chip, name);
    int bit;
    if (!bd) return ef_fail(err, cap, "%s has no eFuse block %s", p->chip->pretty, name);
    bit = read_protect ? bd->rd_dis_bit : bd->wr_dis_bit;
    if (bit < 0)
        return ef_fail(err, cap, "%s cannot be %s-protected", bd->name, read_protect ? "read" : "write");
    if (read_protect && rd_dis_locked(p))
        return ef_fail(err, cap, "RD_DIS is write-protected: %s can no longer be read-protected",
                       bd->name);
    if (read_protect) p->rd_dis_add |= 1u << bit;
    else p->wr_dis_add |= 1u << bit;
    return 0;
}

/* ---- burns ---- */

static void block_words(const uint8_t *blk, uint32_t w[8])
{
    efuse_bytes_to_words(blk, EFUSE_BLOCK_BYTES, w);
}

/* Fill burn `bn` for block `b`: program words from cur -> want and the expected read-back. */
static void make_burn(efuse_plan_t *p, efuse_burn_t *bn, unsigned b, const uint8_t *from,
                      const uint8_t *to)
{
    const efuse_block_def_t *bd = &p->chip->blocks[b];
    uint32_t wf[8], wt[8];
    memset(bn, 0, sizeof *bn);
    bn->block = (uint8_t)b;
    bn->coding = efuse_block_coding(p->chip, &p->cur, b);
    bn->secret = (p->secret_blocks >> b) & 1u;
    block_words(from, wf);
    block_words(to, wt);
    if (bn->coding == EFUSE_CODING_RS) { /* the block was empty: code the whole block */
        efuse_rs_encode(to, bn->pgm);
        bn->n_pgm = EFUSE_RS_WORDS;
    } else if (bn->coding == EFUSE_CODING_34) {
        efuse_34_encode(to, bn->pgm);
        bn->n_pgm = EFUSE_34_WORDS;
    } else { /* no coding: program only the bits that change (1 = burn) */
        for (unsigned i = 0; i < bd->words; i++)
            bn->pgm[i] = wt[i] & ~wf[i];
        bn->n_pgm = bd->words;
    }
    bn->n_expect = bn->coding == EFUSE_CODING_34 ? 6 : bd->words;
    memcpy(bn->expect, wt, sizeof bn->expect);
}

int efuse_plan_finish(efuse_plan_t *p, char *err, size_t cap)
{
    const efuse_field_def_t *wd = efuse_field(p->chip, "WR_DIS");
    const efuse_field_def_t *rd = efuse_field(p->chip, "RD_DIS");
    uint8_t blk0[EFUSE_BLOCK_BYTES];
    if (p->finished) return ef_fail(err, cap, "plan already finished");
    p->n_burns = 0;
    /* 1: data blocks, ascending */
    for (unsigned b = 1; b < p->chip->n_blocks; b++)
        if (memcmp(p->cur.blk[b], p->want.blk[b], EFUSE_BLOCK_BYTES) != 0)
            make_burn(p, &p->burns[p->n_burns++], b, p->cur.blk[b], p->want.blk[b]);
    /* 2: BLOCK0 without protection bits */
    if (memcmp(p->cur.blk[0], p->want.blk[0], EFUSE_BLOCK_BYTES) != 0)
        make_burn(p, &p->burns[p->n_burns++], 0, p->cur.blk[0], p->want.blk[0]);
    /* 3: protection bits (WR_DIS, RD_DIS) last */
    memcpy(blk0, p->want.blk[0], sizeof blk0);
    for (unsigned i = 0; i < wd->len; i++)
        if ((p->wr_dis_add >> i) & 1u) bit_put(p->want.blk[0], wd->bit + i, 1);
    for (unsigned i = 0; i < rd->len; i++)
        if ((p->rd_dis_add >> i) & 1u) bit_put(p->want.blk[0], rd->bit + i, 1);
    if (p->rd_dis_add >> rd->len)
        return ef_fail(err, cap, "RD_DIS has only %u bits", rd->len);
    if (wd->len < 32 && p->wr_dis_add >> wd->len)
        return ef_fail(err, cap, "WR_DIS has only %u bits", wd->len);
    if (memcmp(blk0, p->want.blk[0], sizeof blk0) != 0) {
        efuse_burn_t *bn = &p->burns[p->n_burns++];
        make_burn(p, bn, 0, blk0, p->want.blk[0]);
        bn->protect_pass = true;
    }
    /* 4: lockdown bits (download mode off, Secure Download Mode) at the very end: after them the
     * ROM may refuse register access, so nothing may follow */
    memcpy(blk0, p->want.blk[0], sizeof blk0);
    for (unsigned i = 0; i < EFUSE_BLOCK_BYTES; i++)
        p->want.blk[0][i] |= p->lock[i];
    if (memcmp(blk0, p->want.blk[0], sizeof blk0) != 0) {
        efuse_burn_t *bn = &p->burns[p->n_burns++];
        make_burn(p, bn, 0, blk0, p->want.blk[0]);
        bn->lockdown = true;
    }
    p->finished = true;
    return 0;
}

/* ---- dry run ---- */

__attribute__((format(printf, 4, 5))) static void app(char *buf, size_t cap, size_t *pos,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*pos + 1 >= cap) return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n;
    if (*pos >= cap) *pos = cap - 1;
}

static void describe_change(const efuse_plan_t *p, const efuse_change_t *ch, char *buf,
                            size_t cap, size_t *pos)
{
    const efuse_block_def_t *bd = &p->chip->blocks[ch->block];
    if (!ch->field) {
        app(buf, cap, pos, "  %s: <%s>", bd->name, ch->secret ? "secret key" : "digest");
    } else if (ch->bytes || ch->field->len > 64) {
        unsigned nb = (ch->field->len + 7u) / 8u;
        app(buf, cap, pos, "  %s (%s bits %u..%u): ", ch->field->name, bd->name, ch->field->bit,
            ch->field->bit + ch->field->len - 1u);
        if (ch->secret) app(buf, cap, pos, "<secret, %u bytes>", nb);
        for (unsigned i = 0; !ch->secret && i < nb; i++)
            app(buf, cap, pos, "%02x",
                (unsigned)bits_get(p->want.blk[ch->block], ch->field->bit + 8 * i, 8));
    } else {
        app(buf, cap, pos, "  %s (%s bit%s %u%s%.0u): 0x%llx -> 0x%llx", ch->field->name,
            bd->name, ch->field->len > 1 ? "s" : "", ch->field->bit,
            ch->field->len > 1 ? ".." : "", ch->field->len > 1 ? ch->field->bit + ch->field->len - 1u : 0u,
            (unsigned long long)ch->old_value, (unsigned long long)ch->new_value);
    }
    if (ch->note[0]) app(buf, cap, pos, " (%s)", ch->note);
    app(buf, cap, pos, "\n");
}

size_t efuse_plan_describe(const efuse_plan_t *p, char *buf, size_t cap)
{
    size_t pos = 0;
    if (!cap) return 0;
    buf[0] = 0;
    app(buf, cap, &pos, "eFuse plan for %s: %u change(s), %u burn(s)%s\n", p->chip->pretty,
        p->n_changes, p->n_burns, p->finished ? "" : " (not finished)");
    for (unsigned i = 0; i < p->n_changes; i++)
        describe_change(p, &p->changes[i], buf, cap, &pos);
    if (p->wr_dis_add) app(buf, cap, &pos, "  write-protect: WR_DIS |= 0x%08x\n", p->wr_dis_add);
    if (p->rd_dis_add) app(buf, cap, &pos, "  read-protect: RD_DIS |= 0x%02x\n", p->rd_dis_add);
    for (unsigned i = 0; i < p->n_burns; i++) {
        const efuse_burn_t *bn = &p->burns[i];
        const efuse_block_def_t *bd = &p->chip->blocks[bn->block];
        app(buf, cap, &pos, "burn %u/%u: %s%s%s%s, coding %s, %u program word(s)", i + 1,
            p->n_burns, bd->name, bd->alias ? " (" : "", bd->alias ? bd->alias : "",
            bd->alias ? ")" : "", efuse_coding_name(bn->coding), bn->n_pgm);
        if (bn->protect_pass) app(buf, cap, &pos, ", protection bits");
        if (bn->lockdown) app(buf, cap, &pos, ", lockdown (last; ends register access)");
        if (bn->secret) {
            app(buf, cap, &pos, ": <secret>\n");
            continue;
        }
        app(buf, cap, &pos, ":");
        for (unsigned w = 0; w < bn->n_pgm; w++)
            app(buf, cap, &pos, " %08x", bn->pgm[w]);
        app(buf, cap, &pos, "\n");
    }
    if (p->n_burns) app(buf, cap, &pos, "Every burn is irreversible.\n");
    else app(buf, cap, &pos, "Nothing to burn.\n");
    return pos;
}

/* ---- register program of one burn ---- */

static size_t push(efuse_step_t *s, size_t n, efuse_op_t op, uint32_t addr, uint32_t value,
                   uint32_t mask, uint8_t slot)
{
    if (n < EFUSE_MAX_STEPS) s[n] = (efuse_step_t){op, addr, value, mask, slot};
    return n + 1;
}

size_t efuse_burn_steps(const efuse_plan_t *p, unsigned i, unsigned xtal_mhz,
                        efuse_step_t steps[EFUSE_MAX_STEPS], char *err, size_t cap)
{
    const efuse_ctrl_t *c = p->chip->ctrl;
    const efuse_burn_t *bn;
    const efuse_block_def_t *bd;
    size_t n = 0;
    int t = -1;
    uint32_t pgm0;
    if (!p->finished || i >= p->n_burns) {
        ef_fail(err, cap, "no burn %u in this plan", i);
        return 0;
    }
    bn = &p->burns[i];
    bd = &p->chip->blocks[bn->block];
    for (int k = 0; k < 2; k++)
        if (c->xtal_mhz[k] && c->xtal_mhz[k] == xtal_mhz) t = k;
    if (t < 0) {
        ef_fail(err, cap, "the %s eFuse timing is known for a %u MHz crystal only, not %u MHz",
                p->chip->pretty, c->xtal_mhz[0], xtal_mhz);
        return 0;
    }
    for (unsigned k = 0; k < c->n_timing; k++)
        n = push(steps, n, EFUSE_OP_UPDATE, c->timing[t][k].addr, c->timing[t][k].value,
                 c->timing[t][k].mask, 0);
    n = push(steps, n, EFUSE_OP_POLL, c->cmd_reg, 0, c->cmd_mask, 0);
    pgm0 = c->shared_pgm ? c->pgm_data0 : bd->wr_addr;
    for (unsigned w = 0; w < 8 && w < bn->n_pgm; w++)
        n = push(steps, n, EFUSE_OP_WRITE, pgm0 + 4 * w, bn->pgm[w], 0, 0);
    if (c->shared_pgm)
        for (unsigned w = 0; w < 3; w++)
            n = push(steps, n, EFUSE_OP_WRITE, c->check_value0 + 4 * w,
                     bn->n_pgm > 8 + w ? bn->pgm[8 + w] : 0, 0, 0);
    n = push(steps, n, EFUSE_OP_WRITE, c->conf_reg, c->write_opcode, 0, 0);
    n = push(steps, n, EFUSE_OP_WRITE, c->cmd_reg,
             c->pgm_cmd | (c->block_shift >= 0 ? (uint32_t)bn->block << c->block_shift : 0u), 0, 0);
    n = push(steps, n, EFUSE_OP_POLL, c->cmd_reg, 0, c->cmd_mask, 0);
    /* clear the program registers so that no later command burns them again */
    for (unsigned w = 0; w < (c->shared_pgm ? 11u : bn->n_pgm); w++)
        n = push(steps, n, EFUSE_OP_WRITE,
                 c->shared_pgm && w >= 8 ? c->check_value0 + 4 * (w - 8) : pgm0 + 4 * w, 0, 0, 0);
    n = push(steps, n, EFUSE_OP_WRITE, c->conf_reg, c->read_opcode, 0, 0);
    n = push(steps, n, EFUSE_OP_WRITE, c->cmd_reg, c->read_cmd, 0, 0);
    n = push(steps, n, EFUSE_OP_POLL, c->cmd_reg, 0, c->cmd_mask, 0);
    for (unsigned w = 0; w < bn->n_expect; w++)
        n = push(steps, n, EFUSE_OP_READ, bd->rd_addr + 4 * w, 0, 0, (uint8_t)w);
    n = push(steps, n, EFUSE_OP_READ,
             bn->coding == EFUSE_CODING_34 ? c->dec_status_reg : bd->err_reg, 0, 0, EFUSE_SLOT_ERR);
    if (n > EFUSE_MAX_STEPS) {
        ef_fail(err, cap, "register program too long");
        return 0;
    }
    return n;
}

int efuse_burn_verify(const efuse_plan_t *p, unsigned i, const uint32_t *words, size_t n,
                      uint32_t err_reg, char *err, size_t cap)
{
    const efuse_burn_t *bn;
    const efuse_block_def_t *bd;
    if (!p->finished || i >= p->n_burns) return ef_fail(err, cap, "no burn %u in this plan", i);
    bn = &p->burns[i];
    bd = &p->chip->blocks[bn->block];
    if (n < bn->n_expect)
        return ef_fail(err, cap, "%s: %zu words read back, %u expected", bd->name, n, bn->n_expect);
    for (unsigned w = 0; w < bn->n_expect; w++)
        if (words[w] != bn->expect[w])
            return ef_fail(err, cap, "%s reads back differently after the burn (word %u)%s",
                           bd->name, w, bn->secret ? "" : "; see the dry run for the value");
    if (bn->coding == EFUSE_CODING_34 && (err_reg & p->chip->ctrl->dec_status_mask))
        return ef_fail(err, cap, "%s: 3/4 coding errors reported (0x%x)", bd->name,
                       err_reg & p->chip->ctrl->dec_status_mask);
    if (bn->coding == EFUSE_CODING_RS && bd->err_shift >= 0) {
        unsigned cnt = (err_reg >> bd->err_shift) & 7u;
        bool fail = bd->fail_bit >= 0 && ((err_reg >> bd->fail_bit) & 1u);
        if (cnt || fail)
            return ef_fail(err, cap, "%s: Reed-Solomon reports %u error(s)%s", bd->name, cnt,
                           fail ? " and an uncorrectable block" : "");
    }
    if (bn->block == 0 && p->chip->has_key_purposes && err_reg)
        return ef_fail(err, cap, "BLOCK0: repeat-copy errors reported (0x%08x)", err_reg);
    return 0;
}

/* ---- reading and summarising the state ---- */

size_t efuse_block_read_addrs(const efuse_chip_t *c, const efuse_state_t *s, unsigned index,
                              uint32_t addrs[8])
{
    const efuse_block_def_t *bd = efuse_block(c, index);
    efuse_state_t blank;
    size_t n;
    if (!bd) return 0;
    if (!s) {
        memset(&blank, 0, sizeof blank);
        s = &blank;
    }
    n = efuse_block_coding(c, s, index) == EFUSE_CODING_34 ? 6 : bd->words;
    for (size_t i = 0; i < n; i++)
        addrs[i] = bd->rd_addr + 4 * (uint32_t)i;
    return n;
}

/* Value of the first of the named fields the chip has (0 if none). */
static uint64_t get_any(const efuse_chip_t *c, const efuse_state_t *s, const char *a,
                        const char *b)
{
    const efuse_field_def_t *f = efuse_field(c, a);
    if (!f && b) f = efuse_field(c, b);
    return f ? efuse_get(s, f) : 0;
}

void efuse_summarize(const efuse_chip_t *c, const efuse_state_t *s, efuse_summary_t *sum)
{
    const efuse_field_def_t *cnt = efuse_field(c, c->crypt_cnt);
    uint64_t v = efuse_get(s, cnt);
    memset(sum, 0, sizeof *sum);
    sum->crypt_cnt_len = cnt->len;
    for (; v; v &= v - 1)
        sum->crypt_cnt_bits++;
    sum->flash_encryption = sum->crypt_cnt_bits & 1u;
    sum->release_mode = sum->flash_encryption &&
                        (sum->crypt_cnt_bits == cnt->len ||
                         efuse_is_write_protected(c, s, cnt->wr_dis));
    sum->download_encrypt_off = get_any(c, s, "DIS_DOWNLOAD_MANUAL_ENCRYPT", NULL) != 0;
    sum->secure_boot = get_any(c, s, "SECURE_BOOT_EN", NULL) != 0;
    for (unsigned i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "SECURE_BOOT_KEY_REVOKE%u", i);
        sum->key_revoked[i] = get_any(c, s, name, NULL) != 0;
    }
    sum->jtag_disabled = get_any(c, s, "DIS_PAD_JTAG", NULL) != 0;
    sum->usb_jtag_disabled = get_any(c, s, "DIS_USB_JTAG", NULL) != 0;
    sum->download_disabled = get_any(c, s, "DIS_DOWNLOAD_MODE", NULL) != 0;
    sum->secure_download = get_any(c, s, "ENABLE_SECURITY_DOWNLOAD", NULL) != 0;
    sum->rd_dis_locked = efuse_is_write_protected(c, s, efuse_field(c, "RD_DIS")->wr_dis);
    for (unsigned i = 0; i < c->n_blocks && i < EFUSE_MAX_BLOCKS; i++) {
        const efuse_block_def_t *bd = &c->blocks[i];
        sum->read_protected[i] = read_protected(c, s, bd->rd_dis_bit);
        sum->write_protected[i] = efuse_is_write_protected(c, s, bd->wr_dis_bit);
        if (bd->key_block) sum->key_used[i] = !block_empty(s->blk[i]);
        if (bd->key_slot >= 0 && bd->key_slot < 6) {
            sum->key_purpose[bd->key_slot] = (uint8_t)efuse_get(s, purpose_field(c, bd->key_slot));
            sum->key_used[i] |= sum->key_purpose[bd->key_slot] != 0;
        }
    }
}

size_t efuse_summary_describe(const efuse_chip_t *c, const efuse_summary_t *sum, char *buf,
                              size_t cap)
{
    size_t pos = 0;
    if (!cap) return 0;
    buf[0] = 0;
    app(buf, cap, &pos, "flash encryption %s%s (%s %u/%u bits)%s\n",
        sum->flash_encryption ? "on" : "off",
        sum->flash_encryption ? (sum->release_mode ? ", release mode" : ", development mode") : "",
        c->crypt_cnt, sum->crypt_cnt_bits, sum->crypt_cnt_len,
        sum->download_encrypt_off ? ", download-mode encryption disabled" : "");
    app(buf, cap, &pos, "Secure Boot %s", sum->secure_boot ? "on" : "off");
    for (unsigned i = 0; i < 3; i++)
        if (sum->key_revoked[i]) app(buf, cap, &pos, ", digest %u revoked", i);
    app(buf, cap, &pos, "\nJTAG %s%s\n", sum->jtag_disabled ? "disabled" : "enabled",
        sum->usb_jtag_disabled ? ", USB JTAG disabled" : "");
    app(buf, cap, &pos, "download mode %s\n",
        sum->download_disabled  ? "disabled"
        : sum->secure_download ? "Secure Download Mode"
                               : "open");
    if (sum->rd_dis_locked) app(buf, cap, &pos, "RD_DIS write-protected (no more read protection)\n");
    for (unsigned i = 0; i < c->n_blocks && i < EFUSE_MAX_BLOCKS; i++) {
        const efuse_block_def_t *bd = &c->blocks[i];
        if (!bd->key_block) continue;
        app(buf, cap, &pos, "%s: %s", bd->name, sum->key_used[i] ? "used" : "free");
        if (bd->key_slot >= 0 && bd->key_slot < 6 && sum->key_used[i])
            app(buf, cap, &pos, ", purpose %s", secinfo_key_purpose_name(sum->key_purpose[bd->key_slot]));
        app(buf, cap, &pos, "%s%s\n", sum->read_protected[i] ? ", read-protected" : "",
            sum->write_protected[i] ? ", write-protected" : "");
    }
    return pos;
}

/* ---- the plan as JSON (job record) ---- */

static cJSON *change_json(const efuse_plan_t *p, const efuse_change_t *ch)
{
    cJSON *o = cJSON_CreateObject();
    char hexv[2 * EFUSE_BLOCK_BYTES + 3];
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "field", ch->field ? ch->field->name : p->chip->blocks[ch->block].name);
    cJSON_AddNumberToObject(o, "block", ch->block);
    if (ch->secret) {
        cJSON_AddBoolToObject(o, "secret", true);
    } else if (ch->bytes && ch->field) {
        unsigned nb = (ch->field->len + 7u) / 8u;
        for (unsigned i = 0; i < nb; i++)
            snprintf(hexv + 2 * i, 3, "%02x",
                     (unsigned)bits_get(p->want.blk[ch->block], ch->field->bit + 8 * i, 8));
        cJSON_AddStringToObject(o, "bytes", hexv);
    } else if (ch->field) {
        snprintf(hexv, sizeof hexv, "0x%llx", (unsigned long long)ch->old_value);
        cJSON_AddStringToObject(o, "old", hexv);
        snprintf(hexv, sizeof hexv, "0x%llx", (unsigned long long)ch->new_value);
        cJSON_AddStringToObject(o, "new", hexv);
    } else {
        cJSON_AddBoolToObject(o, "secret", false); /* a Secure Boot digest: public */
    }
    if (ch->note[0]) cJSON_AddStringToObject(o, "note", ch->note);
    return o;
}

static cJSON *burn_json(const efuse_plan_t *p, const efuse_burn_t *bn)
{
    cJSON *o = cJSON_CreateObject(), *prog;
    char w[16];
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "block", bn->block);
    cJSON_AddStringToObject(o, "name", p->chip->blocks[bn->block].name);
    cJSON_AddStringToObject(o, "coding", efuse_coding_name(bn->coding));
    cJSON_AddStringToObject(o, "kind", bn->lockdown       ? "lockdown"
                                       : bn->protect_pass ? "protection"
                                       : bn->block == 0   ? "block0"
                                                          : "data");
    if (bn->secret) {
        cJSON_AddBoolToObject(o, "secret", true);
        return o;
    }
    prog = cJSON_AddArrayToObject(o, "program");
    for (unsigned i = 0; prog && i < bn->n_pgm; i++) {
        snprintf(w, sizeof w, "0x%08x", bn->pgm[i]);
        cJSON_AddItemToArray(prog, cJSON_CreateString(w));
    }
    return o;
}

void *efuse_plan_to_json(const efuse_plan_t *p)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    char w[16];
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "chip", p->chip->name);
    arr = cJSON_AddArrayToObject(root, "changes");
    for (unsigned i = 0; arr && i < p->n_changes; i++)
        cJSON_AddItemToArray(arr, change_json(p, &p->changes[i]));
    snprintf(w, sizeof w, "0x%08x", p->wr_dis_add);
    cJSON_AddStringToObject(root, "write_protect", w);
    snprintf(w, sizeof w, "0x%02x", p->rd_dis_add);
    cJSON_AddStringToObject(root, "read_protect", w);
    arr = cJSON_AddArrayToObject(root, "burns");
    for (unsigned i = 0; arr && i < p->n_burns; i++)
        cJSON_AddItemToArray(arr, burn_json(p, &p->burns[i]));
    return root;
}
