/* SPDX-License-Identifier: MIT */
/* job_flash.c — the flash phase of the job: ATTACH (SPI_ATTACH; the pin word from the chip
 * table's eFuse program), FLASH_ID (the JEDEC ID by the chip's SPI user-command program),
 * PARAMS (images against the flash, the 24/32-bit address rule of the chip table,
 * SPI_SET_PARAMS) and ERASE. Must not: block, do I/O except through job.c. */
#include "job_sm.h"

#include <stdio.h>
#include <string.h>

#define CHIP_ERASE_MS 120000 /* esptool's chip_erase_timeout (PROTOCOL.md §4.4) */

/* ---- ATTACH ---- */

static void job_send_attach(job_t *j, uint32_t config)
{
    j->u.attach = ATTACH_SENT;
    if (j->chip->rom_spi_attach || j->stub) {
        j->req_len = cmd_build_spi_attach(j->req, sizeof j->req, config, j->stub);
        job_send_or_fail(j, CMD_SPI_ATTACH, 0, job_state_timeout_ms(j->st));
    } else {
        /* ESP8266 ROM: FLASH_BEGIN(0, 0) attaches the flash (PROTOCOL.md §4.2) */
        j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_BEGIN, 0, 0,
                                     j->chip->rom_flash_block, 0, false, 0);
        job_send_or_fail(j, CMD_FLASH_BEGIN, 0, job_state_timeout_ms(j->st));
    }
}

static void job_attach_pads_done(job_t *j, job_rp_result_t res)
{
    uint32_t cfg;
    if (res != JOB_RP_DONE) {
        job_nak(j, "(SPI pad eFuse)");
        return;
    }
    cfg = chip_attach_config(j->chip, j->rp.run.slots);
    if (cfg) job__log(j, JOB_LOG_INFO, "SPI flash pins from eFuse: config 0x%08x", cfg);
    job_send_attach(j, cfg);
}

void job_st_attach(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER:
        if (j->stub) {
            /* the stub attaches the flash itself at start-up; esptool sends SPI_ATTACH to it
             * only for custom pins (PROTOCOL.md §4.5.1) */
            job_enter(j, JOB_ST_FLASH_ID);
            return;
        }
        if (chip_prog_attach(j->chip, &j->rp.prog)) { /* ESP32: the SPI-pad eFuse words */
            j->u.attach = ATTACH_PADS;
            job_rp_start(j, "SPI pad eFuse read", job_attach_pads_done);
        } else {
            job_send_attach(j, 0); /* 0 = pins from eFuse on later chips */
        }
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, "(flash attach)");
            return;
        }
        job_enter(j, JOB_ST_FLASH_ID);
        return;
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash attach"); return;
    default: job_bad_event(j, ev); return;
    }
}

/* ---- FLASH_ID ---- */

static void job_flash_id_done(job_t *j, job_rp_result_t res)
{
    uint32_t raw, size;
    char sz[32];
    if (res == JOB_RP_NAK) {
        job_nak(j, "(SPI flash register access)");
        return;
    }
    if (res == JOB_RP_POLL_LIMIT) {
        job_fail(j, EST_CLASS_FLASH_NOT_DETECTED, EST_EFLASHID,
                 "SPI flash command did not complete in time");
        return;
    }
    raw = j->rp.run.slots[CHIP_RP_SPI_RESULT] & 0xFFFFFF;
    j->rep.have_flash_id = true;
    j->rep.flash_id = (raw & 0xFF) << 16 | (raw & 0xFF00) | (raw >> 16 & 0xFF);
    if (chip_jedec_invalid(raw)) {
        job_fail(j, EST_CLASS_FLASH_NOT_DETECTED, EST_EFLASHID,
                 "flash JEDEC ID reads %06x: the SPI flash is not answering", j->rep.flash_id);
        return;
    }
    size = chip_flash_size_from_jedec(raw);
    j->rep.flash_size = size;
    if (size)
        job__log(j, JOB_LOG_INFO, "flash %06x, %s", j->rep.flash_id,
                 plan_fmt_size(size, sz, sizeof sz));
    else
        job__log(j, JOB_LOG_WARN, "flash %06x has an unknown size code; assuming 4MB",
                 j->rep.flash_id);
    job_enter(j, JOB_ST_PARAMS);
}

/* Only ENTER reaches the handler: the register-program runner takes the replies and timeouts. */
void job_st_flash_id(job_t *j, job_event_t ev)
{
    if (ev != JOB_EV_ENTER) {
        job_bad_event(j, ev);
        return;
    }
    if (j->sec.sdm) { /* no register access: the plan's flash size (job_sec_sdm_begin) */
        job__log(j, JOB_LOG_INFO, "Secure Download Mode: flash ID not read, size from the plan");
        job_enter(j, JOB_ST_PARAMS);
        return;
    }
    /* JEDEC ID: opcode 0x9F, 24 bits, by the SPI controller's user command (PROTOCOL.md §7.2) */
    chip_prog_spi_cmd(j->chip, 0x9F, 24, &j->rp.prog);
    job_rp_start(j, "SPI flash register access", job_flash_id_done);
}

/* ---- PARAMS ---- */

/* After the flash parameters: the operation of the plan. */
static void job_after_params(job_t *j)
{
    switch (j->plan->op) {
    case PLAN_OP_READ: job_enter(j, JOB_ST_READ); return;
    case PLAN_OP_ERASE: job_enter(j, JOB_ST_ERASE); return;
    case PLAN_OP_FLASH: job_enter(j, j->plan->erase_all ? JOB_ST_ERASE : JOB_ST_PREPARE); return;
    }
}

/* The size the job tells the loader (SPI_SET_PARAMS): the configured one, else the detected one,
 * else 4 MB. */
static uint32_t job_params_size(const job_t *j)
{
    uint32_t size = j->rep.flash_size;
    if (j->plan->flash_size_mode == PLAN_FSIZE_SET) size = j->plan->flash_size_bytes;
    return size ? size : DEFAULT_FLASH;
}

/* The ECO version read, or the read refused: on to the parameters. */
static void job_params_apply(job_t *j);
static void job_rom_eco_done(job_t *j, job_rp_result_t res)
{
    if (res == JOB_RP_DONE) {
        j->rom_eco_known = true;
        j->rom_eco = j->rp.run.slots[0];
        job__log(j, JOB_LOG_DEBUG, "%s ROM ECO version %u", j->chip->pretty, j->rom_eco);
    }
    job_params_apply(j);
}

/* Call the station's device check (recipe chips, revisions, flash size). False: the job failed. */
static bool job_params_check(job_t *j)
{
    est_class_t cls = EST_CLASS_INTERNAL;
    char msg[400];
    if (!j->cbs.check_cb) return true;
    msg[0] = 0;
    if (j->cbs.check_cb(j, &j->rep, &cls, msg, sizeof msg) != 0) {
        job_fail(j, cls, EST_ECHIP, "%s", msg[0] ? msg : "device check failed");
        return false;
    }
    return true;
}

static void job_params_apply(job_t *j)
{
    plan_err_t perr;
    uint32_t size = job_params_size(j);
    char sz[32];
    j->u.params = PARAMS_SET;
    j->flash_size_used = size;
    /* What fits: the configured size the ROM is told, the physical flash if smaller, and the
     * loader's address width (ROM: 24 bits; writes above 16 MB wrap onto the bootloader and even
     * verify: PROTOCOL.md §14.12; the stub: per the chip table's rule). */
    if (j->rep.flash_size && j->rep.flash_size < size) size = j->rep.flash_size;
    if (size > ROM_ADDR_LIMIT && !chip_addr32_ok(j->chip, j->stub, j->rom_eco_known, j->rom_eco)) {
        if (j->stub && j->chip->addr32 == CHIP_ADDR32_STUB_ECO2)
            job__log(j, JOB_LOG_INFO,
                     "%s %s: the stub addresses only the first 16 MB of the %s flash",
                     j->chip->pretty, j->rom_eco_known ? "ROM ECO below 2" : "ROM ECO unknown",
                     plan_fmt_size(size, sz, sizeof sz));
        size = ROM_ADDR_LIMIT;
    }
    j->op_size = j->plan->op_size;
    if (j->plan->op == PLAN_OP_READ && j->op_size == 0 && j->plan->op_offset < size)
        j->op_size = size - j->plan->op_offset; /* "read to the end of the flash" */
    if (plan_check_flash(j->plan, size, &perr) != 0) {
        job_fail(j, perr.cls, perr.cls == EST_CLASS_BAD_OFFSET ? EST_EOFFSET : EST_ETOOBIG, "%s",
                 perr.msg);
        return;
    }
    if (!job_params_check(j)) return;
    if (j->plan->op == PLAN_OP_FLASH && j->plan->n_images == 0) { /* identify only */
        job_enter(j, JOB_ST_AFTER_RESET);
        return;
    }
    if (!j->stub && !j->chip->rom_set_params) {
        job_after_params(j);
        return;
    }
    j->req_len = cmd_build_spi_set_params(j->req, sizeof j->req, j->flash_size_used);
    job_send_or_fail(j, CMD_SPI_SET_PARAMS, 0, job_state_timeout_ms(j->st));
}

static void job_params_enter(job_t *j)
{
    uint32_t size;
    /* the plan was checked (plan_finalize: a test needs after hard_reset); the port's lines are
     * known only now: a test needs the board reset into its application, say so before
     * anything is written */
    if (job_has_test(j) && (j->plan->after == PLAN_AFTER_NO_RESET || !j->lines_ok)) {
        if (j->plan->after == PLAN_AFTER_NO_RESET)
            job_fail(j, EST_CLASS_USAGE, EST_EUSAGE,
                     "the post-flash test needs a hard reset after flashing, but the job is set "
                     "to after no_reset: nothing was written");
        else
            job_fail(j, EST_CLASS_USAGE, EST_EUSAGE,
                     "the post-flash test needs a hard reset after flashing, but port %s cannot "
                     "drive RTS: nothing was written",
                     j->spec);
        return;
    }
    size = job_params_size(j);
    if (j->rep.flash_size && j->rep.flash_size < size) size = j->rep.flash_size;
    if (size > ROM_ADDR_LIMIT && j->stub && !j->rom_eco_known &&
        chip_prog_rom_eco(j->chip, &j->rp.prog)) {
        j->u.params = PARAMS_ROM_ECO;
        job_rp_start(j, "ROM ECO version", job_rom_eco_done);
        return;
    }
    job_params_apply(j);
}

void job_st_params(job_t *j, job_event_t ev)
{
    switch (ev) {
    case JOB_EV_ENTER: job_params_enter(j); return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, "(flash size)");
            return;
        }
        job_after_params(j);
        return;
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash parameters"); return;
    default: job_bad_event(j, ev); return;
    }
}

/* ---- ERASE: the whole chip (stub) or a region ---- */

/* ERASE_FLASH: esptool's 120 s, but a large part takes longer (a 16 MB NOR chip erase is up to a
 * few minutes by datasheet): the region rate over the whole flash when that is more, never more
 * than esptool's 240 s cap on any command (timeout_per_mb caps). */
static uint32_t job_chip_erase_ms(const job_t *j)
{
    uint32_t size = j->rep.flash_size ? j->rep.flash_size : j->flash_size_used;
    uint32_t ms = job_timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size);
    return ms > CHIP_ERASE_MS ? ms : CHIP_ERASE_MS;
}

void job_st_erase(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    bool all = pl->op != PLAN_OP_ERASE || pl->erase_all;
    uint32_t off = pl->op_offset, size = pl->op_size;
    char sz[32];
    switch (ev) {
    case JOB_EV_ENTER:
        if (all) {
            if (!j->stub) {
                job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                         "erasing the whole flash needs the flasher stub (the %s ROM loader has "
                         "no chip erase): give a stub directory",
                         j->chip->pretty);
                return;
            }
            job__log(j, JOB_LOG_INFO, "erasing the whole flash (this can take a while)");
            j->req_len = cmd_build_erase_flash(j->req, sizeof j->req);
            job_send_or_fail(j, CMD_ERASE_FLASH, 0, job_chip_erase_ms(j));
            return;
        }
        if (j->stub) {
            j->req_len = cmd_build_erase_region(j->req, sizeof j->req, off, size);
            job_send_or_fail(j, CMD_ERASE_REGION, 0,
                             job_timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size));
            return;
        }
        /* ROM: FLASH_BEGIN erases the region up front; no data follows and no FLASH_END is sent
         * (it would leave the loader), as esptool master does without a stub (PROTOCOL.md §4.2) */
        j->req_len = cmd_build_begin(
            j->req, sizeof j->req, CMD_FLASH_BEGIN,
            j->chip->rom_erase_size_bug ? image_esp8266_erase_size(off, size) : size,
            (size + j->chip->rom_flash_block - 1) / j->chip->rom_flash_block,
            j->chip->rom_flash_block, off, j->chip->rom_begin_enc_word, 0);
        job_send_or_fail(j, CMD_FLASH_BEGIN, 0,
                         job_timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size));
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, all ? "(chip erase)" : "(region erase)");
            return;
        }
        if (all)
            job__log(j, JOB_LOG_INFO, "flash erased");
        else
            job__log(j, JOB_LOG_INFO, "erased 0x%x..0x%x (%s)", off, off + size,
                     plan_fmt_size(size, sz, sizeof sz));
        job_enter(j, pl->op == PLAN_OP_ERASE ? JOB_ST_AFTER_RESET : JOB_ST_PREPARE);
        return;
    case JOB_EV_TIMEOUT:
        job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT, "no reply to %s within %u ms",
                 cmd_op_name(j->expect_op), j->req_timeout_ms);
        return;
    default: job_bad_event(j, ev); return;
    }
}
