/* SPDX-License-Identifier: MIT */
/* secstate.h — a unit's security state as one JSON object for the job record (issue 17 part 1,
 * docs/SECURITY-PROVISIONING.md §9 "Reading the security state"): GET_SECURITY_INFO decoded
 * (secinfo.h) and the eFuse blocks summarized (efuse.h), merged into a few top-level facts the
 * pre-check policy compares with a recipe's `security.expect` (docs/RECIPES.md).
 * Owns: the JSON layout of the `security` job column and the expect check.
 * Must not: do I/O, or put key bytes in the JSON (only purposes and protection). */
#ifndef SECSTATE_H
#define SECSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "efuse.h"
#include "secinfo.h"

/* The record, as a malloc'd JSON text (the caller frees it), NULL when out of memory:
 * {"source": "secinfo+efuse" | "secinfo" | "efuse" | "none",
 *  "flash_encryption", "flash_encryption_mode": "off"|"development"|"release", "secure_boot",
 *  "secure_download", "jtag_disabled", "download_mode": "open"|"secure"|"disabled"|null,
 *  "summary": "plain words, several lines",
 *  "secinfo": {"flags", "flag_names": [...], "flash_crypt_cnt", "key_purposes": [...],
 *              "chip_id", "api_version"} | null,
 *  "efuse": {"chip", "crypt_cnt_bits", "crypt_cnt_len", "release_mode", "download_encrypt_off",
 *            "key_revoked": [3 bools], "usb_jtag_disabled", "rd_dis_locked",
 *            "key_blocks": [{"block", "used", "purpose", "read_protected", "write_protected"}]}
 *           | null,
 *  "efuse_error": "why the blocks were not read" (only when given)}
 * si and c may be NULL (not available); s is read only with c. */
char *secstate_json(const secinfo_t *si, const efuse_chip_t *c, const efuse_state_t *s,
                    const char *efuse_error);

/* The facts a recipe may expect (docs/RECIPES.md `security.expect`), NULL-terminated. */
extern const char *const secstate_expect_keys[];

/* Compare a record (secstate_json text) with an expect object's JSON text ({"flash_encryption":
 * false, ...}). Returns 0 when every expected fact holds, 1 when one does not (why says which,
 * in plain words), -1 when the record cannot tell (e.g. no read-out; why says so). */
int secstate_check(const char *record, const char *expect, char *why, size_t cap);

#endif
