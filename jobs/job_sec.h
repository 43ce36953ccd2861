/* SPDX-License-Identifier: MIT */
/* job_sec.h — the security read-out of every job (issue 17 part 1,
 * docs/SECURITY-PROVISIONING.md §9): the GET_SECURITY_INFO answer kept from DETECT and the eFuse
 * blocks read through the controller's read registers (one register program per block, BLOCK0
 * first), decoded into the report's `security` JSON (secstate.h).
 * Must not: fail a job because the read-out is incomplete (the record says why instead). */
#ifndef JOB_SEC_H
#define JOB_SEC_H

#include <stdbool.h>
#include <stdint.h>

#include "chip.h"
#include "efuse.h"

typedef struct job_s job_t;

typedef struct job_sec_s {
    uint8_t si_raw[20]; /* GET_SECURITY_INFO output as received in DETECT */
    uint8_t si_len;     /* 0: none (the ESP32 / ESP8266 ROM refuses the command) */
    const efuse_chip_t *ec;
    efuse_state_t ef;
    unsigned blk; /* block being read */
    void (*next)(job_t *j);
    /* Secure Download Mode (issue 17 part 3): the ROM answers no register access, stub, MD5,
     * compressed write or read-back; j->chip then points at sdm_chip, the chip's entry with
     * those ROM features off, so the write path takes the ROM's plain FLASH_DATA way and the
     * images are recorded "not verified" (j->rep.unverified says why) */
    bool sdm;
    chip_info_t sdm_chip;
} job_sec_t;

/* DETECT: keep the command output (12 or 20 bytes; others ignored). */
void job_sec_keep_secinfo(job_t *j, const uint8_t *out, size_t len);
/* DETECT found the Secure Download Mode flag: check the plan can run (a write with the flash
 * size given) and switch the job to the allowed path. False: the job failed (job_fail). */
bool job_sec_sdm_begin(job_t *j, const chip_info_t *c);
/* Read the eFuse blocks (chips with a table), fill j->rep.security, then call next(j). */
void job_sec_read(job_t *j, void (*next)(job_t *j));

#endif
