/* SPDX-License-Identifier: MIT */
/* job_security.c — the security read-out of every job (job_sec.h; issue 17 part 1,
 * docs/SECURITY-PROVISIONING.md §9 and docs/PROTOCOL.md §16 for the register programs): after
 * READ_EFUSE identified the chip, each eFuse block of a chip with a table (efuse_chip) is read
 * through the controller's read registers, BLOCK0 first (on the ESP32 its CODING_SCHEME decides
 * how many words BLOCK1-3 have), and the result with the GET_SECURITY_INFO answer kept from
 * DETECT becomes j->rep.security (secstate_json). A refused or incomplete read is recorded and
 * logged, never a failure: the job goes on.
 * Must not: hold chip facts (the eFuse tables do), or log key bytes. */
#include "job_sm.h"
#include "secstate.h"

#include <cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void job_sec_keep_secinfo(job_t *j, const uint8_t *out, size_t len)
{
    if (!out || (len != 12 && len != 20)) return;
    memcpy(j->sec.si_raw, out, len);
    j->sec.si_len = (uint8_t)len;
}

static void job_sec_finish(job_t *j, const char *efuse_error)
{
    secinfo_t si;
    char err[96], *js;
    bool have_si = j->sec.si_len &&
                   secinfo_parse(j->sec.si_raw, j->sec.si_len, &si, err, sizeof err) == 0;
    const efuse_chip_t *ec = efuse_error ? NULL : j->sec.ec;
    js = secstate_json(have_si ? &si : NULL, ec, ec ? &j->sec.ef : NULL, efuse_error);
    if (js && strlen(js) < sizeof j->rep.security) {
        cJSON *o = cJSON_Parse(js);
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(o, "summary");
        memcpy(j->rep.security, js, strlen(js) + 1);
        if (cJSON_IsString(sum)) job__log(j, JOB_LOG_INFO, "security: %s", sum->valuestring);
        cJSON_Delete(o);
    } else {
        job__log(j, JOB_LOG_WARN, "security read-out not recorded (%s)",
                 js ? "too long" : "out of memory");
    }
    free(js);
    if (efuse_error) job__log(j, JOB_LOG_WARN, "eFuse blocks not read: %s", efuse_error);
    j->sec.next(j);
}

static void job_sec_block_done(job_t *j, job_rp_result_t res);

/* Start the program of the next block that has read registers; false when none is left. */
static bool job_sec_next_block(job_t *j)
{
    uint32_t addrs[8];
    for (; j->sec.blk < EFUSE_MAX_BLOCKS; j->sec.blk++) {
        size_t n = efuse_block(j->sec.ec, j->sec.blk)
                       ? efuse_block_read_addrs(j->sec.ec, &j->sec.ef, j->sec.blk, addrs)
                       : 0;
        if (!n) continue;
        rp_init(&j->rp.prog);
        for (size_t i = 0; i < n; i++) rp_read(&j->rp.prog, addrs[i], (uint8_t)i);
        job_rp_start(j, "eFuse block read", job_sec_block_done);
        return true;
    }
    return false;
}

static void job_sec_block_done(job_t *j, job_rp_result_t res)
{
    uint32_t addrs[8];
    char why[96];
    size_t n = efuse_block_read_addrs(j->sec.ec, &j->sec.ef, j->sec.blk, addrs);
    if (res != JOB_RP_DONE) {
        snprintf(why, sizeof why, "the ROM refused to read eFuse block %u (status 0x%02x 0x%02x)",
                 j->sec.blk, j->resp.status, j->resp.error);
        job_sec_finish(j, why);
        return;
    }
    efuse_state_set_words(&j->sec.ef, j->sec.blk, j->rp.run.slots, n);
    j->sec.blk++;
    if (!job_sec_next_block(j)) job_sec_finish(j, NULL);
}

void job_sec_read(job_t *j, void (*next)(job_t *j))
{
    j->sec.next = next;
    j->sec.ec = j->chip ? efuse_chip(j->chip->name) : NULL;
    j->sec.blk = 0;
    memset(&j->sec.ef, 0, sizeof j->sec.ef);
    j->rep.security[0] = 0;
    if (j->sec.sdm) {
        job_sec_finish(j, "the unit is in Secure Download Mode: the ROM refuses register reads");
        return;
    }
    if (!j->sec.ec) {
        job_sec_finish(j, j->chip && j->chip->id == CHIP_ESP8266
                              ? NULL
                              : "this chip has no eFuse table in this station");
        return;
    }
    if (!job_sec_next_block(j)) job_sec_finish(j, "the chip's eFuse table has no read registers");
}

bool job_sec_sdm_begin(job_t *j, const chip_info_t *c)
{
    if (j->plan->op != PLAN_OP_FLASH) {
        job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                 "%s is in Secure Download Mode: its ROM allows writing flash only (no reading, "
                 "no erase of the whole chip); nothing was done",
                 c->pretty);
        return false;
    }
    if (j->plan->n_images && j->plan->flash_size_mode != PLAN_FSIZE_SET) {
        job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                 "%s is in Secure Download Mode: the station cannot read its flash ID, so the "
                 "flash size must be given (recipe flash_size / --flash-size); nothing was "
                 "written",
                 c->pretty);
        return false;
    }
    j->sec.sdm = true;
    j->sec.sdm_chip = *c;
    j->sec.sdm_chip.rom_defl = false;
    j->sec.sdm_chip.rom_md5 = false;
    j->sec.sdm_chip.rom_read_flash_slow = false;
    snprintf(j->rep.unverified, sizeof j->rep.unverified,
             "Secure Download Mode: the ROM computes no MD5 and reads no flash back");
    job__log(j, JOB_LOG_WARN,
             "%s is in Secure Download Mode: ROM loader only, uncompressed writes, flash size "
             "from the plan, no MAC or flash ID, and the images cannot be verified",
             c->pretty);
    return true;
}
