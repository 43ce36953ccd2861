/* SPDX-License-Identifier: MIT */
/* secstate.c — the `security` record of a job and the pre-check against a recipe's expectation
 * (secstate.h, docs/SECURITY-PROVISIONING.md §9). Must not: do I/O or print key bytes. */
#include "secstate.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

const char *const secstate_expect_keys[] = {"flash_encryption", "secure_boot", "secure_download",
                                            "jtag_disabled", NULL};

static const char *const FLAG_NAMES[] = {
    "SECURE_BOOT_EN",         "SECURE_BOOT_AGGRESSIVE_REVOKE", "SECURE_DOWNLOAD_ENABLE",
    "SECURE_BOOT_KEY_REVOKE0", "SECURE_BOOT_KEY_REVOKE1",      "SECURE_BOOT_KEY_REVOKE2",
    "SOFT_DIS_JTAG",          "HARD_DIS_JTAG",                 "DIS_USB",
    "DIS_DOWNLOAD_DCACHE",    "DIS_DOWNLOAD_ICACHE",
};

static cJSON *secinfo_obj(const secinfo_t *si)
{
    cJSON *o = cJSON_CreateObject(), *names = cJSON_CreateArray(), *kp = cJSON_CreateArray();
    cJSON_AddItemToObject(o, "flag_names", names);
    cJSON_AddNumberToObject(o, "flags", si->flags);
    for (unsigned i = 0; i < sizeof FLAG_NAMES / sizeof FLAG_NAMES[0]; i++)
        if (si->flags & (1u << i)) cJSON_AddItemToArray(names, cJSON_CreateString(FLAG_NAMES[i]));
    cJSON_AddNumberToObject(o, "flash_crypt_cnt", si->flash_crypt_cnt);
    for (unsigned i = 0; i < 7; i++)
        cJSON_AddItemToArray(kp, cJSON_CreateString(secinfo_key_purpose_name(si->key_purposes[i])));
    cJSON_AddItemToObject(o, "key_purposes", kp);
    if (si->has_chip_id) {
        cJSON_AddNumberToObject(o, "chip_id", si->chip_id);
        cJSON_AddNumberToObject(o, "api_version", si->api_version);
    } else {
        cJSON_AddNullToObject(o, "chip_id");
        cJSON_AddNullToObject(o, "api_version");
    }
    return o;
}

static cJSON *efuse_obj(const efuse_chip_t *c, const efuse_summary_t *sum)
{
    cJSON *o = cJSON_CreateObject(), *rev = cJSON_CreateArray(), *kb = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "chip", c->name);
    cJSON_AddNumberToObject(o, "crypt_cnt_bits", sum->crypt_cnt_bits);
    cJSON_AddNumberToObject(o, "crypt_cnt_len", sum->crypt_cnt_len);
    cJSON_AddBoolToObject(o, "release_mode", sum->release_mode);
    cJSON_AddBoolToObject(o, "download_encrypt_off", sum->download_encrypt_off);
    for (unsigned i = 0; i < 3; i++) cJSON_AddItemToArray(rev, cJSON_CreateBool(sum->key_revoked[i]));
    cJSON_AddItemToObject(o, "key_revoked", rev);
    cJSON_AddBoolToObject(o, "usb_jtag_disabled", sum->usb_jtag_disabled);
    cJSON_AddBoolToObject(o, "rd_dis_locked", sum->rd_dis_locked);
    for (unsigned i = 0; i < c->n_blocks && i < EFUSE_MAX_BLOCKS; i++) {
        const efuse_block_def_t *bd = &c->blocks[i];
        cJSON *b;
        if (!bd->key_block) continue;
        b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "block", bd->name);
        cJSON_AddBoolToObject(b, "used", sum->key_used[i]);
        if (bd->key_slot >= 0 && bd->key_slot < 6 && sum->key_used[i])
            cJSON_AddStringToObject(b, "purpose",
                                    secinfo_key_purpose_name(sum->key_purpose[bd->key_slot]));
        else
            cJSON_AddNullToObject(b, "purpose");
        cJSON_AddBoolToObject(b, "read_protected", sum->read_protected[i]);
        cJSON_AddBoolToObject(b, "write_protected", sum->write_protected[i]);
        cJSON_AddItemToArray(kb, b);
    }
    cJSON_AddItemToObject(o, "key_blocks", kb);
    return o;
}

/* The merged facts: the eFuse blocks say more (mode, download state), the ROM's answer is the
 * only source in Secure Download Mode (no register reads). */
static void add_facts(cJSON *o, const secinfo_summary_t *ss, const efuse_summary_t *es)
{
    bool fe = es ? es->flash_encryption : ss ? ss->flash_encryption : false;
    bool sdm = (es && es->secure_download) || (ss && ss->secure_download);
    if (!ss && !es) {
        for (unsigned i = 0; secstate_expect_keys[i]; i++)
            cJSON_AddNullToObject(o, secstate_expect_keys[i]);
        cJSON_AddNullToObject(o, "flash_encryption_mode");
        cJSON_AddNullToObject(o, "download_mode");
        return;
    }
    cJSON_AddBoolToObject(o, "flash_encryption", fe);
    cJSON_AddStringToObject(o, "flash_encryption_mode",
                            !fe ? "off"
                            : es ? (es->release_mode ? "release" : "development")
                                 : (ss->crypt_cnt_exhausted ? "release" : "development"));
    cJSON_AddBoolToObject(o, "secure_boot", (es && es->secure_boot) || (ss && ss->secure_boot));
    cJSON_AddBoolToObject(o, "secure_download", sdm);
    cJSON_AddBoolToObject(o, "jtag_disabled",
                          (es && es->jtag_disabled) || (ss && ss->jtag_hard_disabled));
    if (es)
        cJSON_AddStringToObject(o, "download_mode", es->download_disabled ? "disabled"
                                                    : sdm                 ? "secure"
                                                                          : "open");
    else
        cJSON_AddStringToObject(o, "download_mode", sdm ? "secure" : "open");
}

char *secstate_json(const secinfo_t *si, const efuse_chip_t *c, const efuse_state_t *s,
                    const char *efuse_error)
{
    secinfo_summary_t ss;
    efuse_summary_t es;
    char text[1536] = "";
    size_t pos = 0;
    char *out;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (si) secinfo_summarize(si, &ss);
    if (c && s) efuse_summarize(c, s, &es);
    cJSON_AddStringToObject(o, "source", si && c ? "secinfo+efuse" : si ? "secinfo" : c ? "efuse"
                                                                                          : "none");
    add_facts(o, si ? &ss : NULL, c && s ? &es : NULL);
    if (c && s) pos = efuse_summary_describe(c, &es, text, sizeof text);
    else if (si) pos = secinfo_describe(&ss, text, sizeof text);
    else pos = (size_t)snprintf(text, sizeof text, "security state not read");
    while (pos && text[pos - 1] == '\n') text[--pos] = 0;
    cJSON_AddStringToObject(o, "summary", text);
    if (si) cJSON_AddItemToObject(o, "secinfo", secinfo_obj(si));
    else cJSON_AddNullToObject(o, "secinfo");
    if (c && s) cJSON_AddItemToObject(o, "efuse", efuse_obj(c, &es));
    else cJSON_AddNullToObject(o, "efuse");
    if (efuse_error && *efuse_error) cJSON_AddStringToObject(o, "efuse_error", efuse_error);
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static const char *fact_words(const char *key)
{
    if (!strcmp(key, "flash_encryption")) return "flash encryption";
    if (!strcmp(key, "secure_boot")) return "Secure Boot";
    if (!strcmp(key, "secure_download")) return "Secure Download Mode";
    return "JTAG disabled";
}

int secstate_check(const char *record, const char *expect, char *why, size_t cap)
{
    cJSON *rec = record && *record ? cJSON_Parse(record) : NULL;
    cJSON *exp = expect ? cJSON_Parse(expect) : NULL;
    int rc = 0;
    if (cap) why[0] = 0;
    if (!exp || !cJSON_IsObject(exp)) {
        snprintf(why, cap, "the recipe's security.expect is not a JSON object");
        rc = -1;
        goto out;
    }
    for (const cJSON *e = exp->child; e; e = e->next) {
        const cJSON *have = rec ? cJSON_GetObjectItemCaseSensitive(rec, e->string) : NULL;
        bool known = false;
        for (unsigned i = 0; secstate_expect_keys[i]; i++)
            known |= !strcmp(secstate_expect_keys[i], e->string);
        if (!known || !cJSON_IsBool(e)) {
            snprintf(why, cap, "security.expect.%s is not a known true/false fact", e->string);
            rc = -1;
            goto out;
        }
        if (!cJSON_IsBool(have)) {
            snprintf(why, cap, "the unit's security state could not be read, so %s cannot be checked",
                     fact_words(e->string));
            rc = -1;
            goto out;
        }
        if (cJSON_IsTrue(have) != cJSON_IsTrue(e)) {
            snprintf(why, cap, "%s is %s on this unit (the recipe expects it %s)",
                     fact_words(e->string), cJSON_IsTrue(have) ? "on" : "off",
                     cJSON_IsTrue(e) ? "on" : "off");
            rc = 1;
            goto out;
        }
    }
out:
    cJSON_Delete(rec);
    cJSON_Delete(exp);
    return rc;
}
