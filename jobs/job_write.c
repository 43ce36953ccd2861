/* SPDX-License-Identifier: MIT */
/* job_write.c — the write phase of the job, per image: PREPARE (pad, patch, MD5, deflate on the
 * worker pool, shared between jobs), COMPARE (skip an image already there), BEGIN, DATA (blocks,
 * re-sends, the stub's END barrier) and VERIFY. Must not: block, do I/O except through job.c. */
#include "job_sm.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

/* Header codes for the image at the bootloader offset; -1 keeps a field. Returns 0, or -1 with
 * the reason in msg (a setting this chip cannot encode). */
static int job_image_params(const job_t *j, image_params_t *p, char *msg, size_t cap)
{
    const plan_t *pl = j->plan;
    p->mode = pl->flash_mode;
    p->size_code = -1;
    p->freq_code = -1;
    char name[24];
    switch (pl->flash_size_mode) {
    case PLAN_FSIZE_KEEP: break;
    case PLAN_FSIZE_DETECT:
        p->size_code =
            chip_flash_size_code(j->chip, j->rep.flash_size ? j->rep.flash_size : DEFAULT_FLASH);
        break;
    case PLAN_FSIZE_SET: /* by name: also the ESP8266's "2MB-c1" / "4MB-c1" layouts */
        p->size_code =
            chip_flash_size_code_name(j->chip, plan_flash_size_name(pl, name, sizeof name));
        break;
    }
    if (pl->flash_size_mode != PLAN_FSIZE_KEEP && p->size_code < 0) {
        snprintf(msg, cap, "flash size %s is not valid for %s",
                 plan_flash_size_name(pl, name, sizeof name), j->chip->pretty);
        return -1;
    }
    if (pl->flash_freq_mhz) {
        snprintf(name, sizeof name, "%um", pl->flash_freq_mhz);
        p->freq_code = chip_flash_freq_code(j->chip, name);
        if (p->freq_code < 0) {
            snprintf(msg, cap, "flash frequency %s is not valid for %s", name, j->chip->pretty);
            return -1;
        }
    }
    return 0;
}

/* The inputs of image `idx`'s preparation (the shared cache's key). Header parameters matter
 * only at the bootloader offset; elsewhere they are "keep", so that every job shares one
 * preparation whatever it was told. `compress` is the caller's. Returns 0 or -1 (msg set). */
static int job_prep_inputs(const job_t *j, size_t idx, job_prep_t *p, char *msg, size_t cap)
{
    const plan_image_t *im = &j->plan->images[idx];
    static const image_params_t keep = {-1, -1, -1};
    memset(p, 0, sizeof *p);
    if (job_image_params(j, &p->params, msg, cap) != 0) return -1;
    if (im->offset != j->chip->bootloader_offset) p->params = keep;
    p->src_id = im->id;
    p->src = im->data;
    p->src_len = im->size;
    p->offset = im->offset;
    p->chip = j->chip;
    /* Secure Boot: a signed bootloader must never be patched (PROTOCOL.md §11.4, §14.24) */
    p->no_patch = job_secure_boot(j);
    return 0;
}

/* Once the chip is known, prepare (pad, patch, MD5, deflate) the images on the worker while the
 * stub upload, baud change and flash detection go on: the first board of a batch does not wait
 * for the deflate later. Guesses what PREPARE will ask for (compressed when the stub is expected
 * or the ROM can inflate); a wrong guess only costs a second preparation. Not for an image at
 * the bootloader offset with flash size "detect" (its header needs the detected size). */
void job_prefetch_images(job_t *j)
{
    const plan_t *pl = j->plan;
    bool stub_likely =
        pl->stub && (pl->stub_dir || pl->stub_file || j->sync_zero) && !job_stub_excluded(j);
    char msg[160];
    if (pl->op != PLAN_OP_FLASH) return;
    for (size_t i = 0; i < pl->n_images; i++) {
        job_prep_t in;
        if (pl->images[i].offset == j->chip->bootloader_offset &&
            pl->flash_size_mode == PLAN_FSIZE_DETECT)
            continue;
        if (job_prep_inputs(j, i, &in, msg, sizeof msg) != 0) return; /* PREPARE reports it */
        in.compress = pl->compress && (stub_likely || j->chip->rom_defl);
        j->prep = in;
        if (job__prefetch_prep(j) != 0) break;
    }
    memset(&j->prep, 0, sizeof j->prep);
}

/* ---- per image ---- */

void job_st_prepare(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    int rc;
    switch (ev) {
    case JOB_EV_ENTER: {
        char msg[160];
        job__free_prep(p);
        if (job_prep_inputs(j, j->img, p, msg, sizeof msg) != 0) {
            job_fail(j, EST_CLASS_USAGE, EST_EUSAGE, "%s", msg);
            return;
        }
        j->defl = j->plan->compress && (j->stub || j->chip->rom_defl);
        /* USB-OTG: 0x800 for stub writes as esptool's stub class does (PROTOCOL.md §4.3) */
        j->block_size = j->stub ? j->stub_block : j->chip->rom_flash_block;
        if (p->no_patch &&
            (p->params.mode >= 0 || p->params.size_code >= 0 || p->params.freq_code >= 0))
            job__log(j, JOB_LOG_WARN,
                     "Secure Boot is enabled: flash parameters in the header are left unchanged");
        /* one deflate serves ROM and stub jobs alike (block sizes are multiples of 1 KiB) */
        p->compress = j->defl;
        j->img_t0_ms = job__now_ms(j);
        j->img_restarted = false;
        rc = job__queue_prep(j);
        if (rc != 0)
            job_fail(j, EST_CLASS_INTERNAL, rc, "cannot queue image preparation: %s",
                     uv_strerror(rc));
        return;
    }
    case JOB_EV_WORK_DONE: {
        job_image_stat_t *is = &j->rep.images[j->img];
        const char *why = NULL;
        if (p->status != 0) {
            job_fail(j, p->cls, p->status, "%s: %s", im->path, p->msg);
            return;
        }
        /* esptool refuses an image built for another chip or revision range (PROTOCOL.md §11.3) */
        if (p->have_info && image_check_chip(&p->info, j->chip, j->rep.chip_rev, &why) != 0) {
            job_fail(j, EST_CLASS_WRONG_CHIP, EST_ECHIP,
                     "%s: image does not suit this %s (v%u.%u): %s", im->path, j->chip->pretty,
                     j->rep.chip_rev / 100, j->rep.chip_rev % 100, why ? why : "?");
            return;
        }
        /* esptool master sends uncompressed when deflate does not shrink the data */
        if (j->defl && p->zlen >= p->len) j->defl = false;
        j->nblocks = (uint32_t)(((j->defl ? p->zlen : p->len) + j->block_size - 1) / j->block_size);
        is->offset = im->offset;
        is->size = (uint32_t)p->len;
        is->compressed_size = (uint32_t)(j->defl ? p->zlen : p->len);
        memcpy(is->md5, p->md5, 16);
        is->patched = p->patched;
        j->rep.n_images = j->img + 1;
        if (p->patched)
            job__log(j, JOB_LOG_INFO, "flash parameters patched in the header at 0x%x", im->offset);
        /* after a chip erase every region is blank: nothing to compare */
        if (j->plan->skip_unchanged && !j->plan->erase_all && (j->stub || j->chip->rom_md5))
            job_enter(j, JOB_ST_COMPARE);
        else
            job_enter(j, JOB_ST_BEGIN);
        return;
    }
    default: job_bad_event(j, ev); return;
    }
}

static void job_next_image(job_t *j)
{
    j->rep.images[j->img].duration_ms = job__now_ms(j) - j->img_t0_ms;
    j->img++;
    job_enter(j, j->img < j->plan->n_images ? JOB_ST_PREPARE : JOB_ST_AFTER_RESET);
}

/* COMPARE: the device's MD5 of the image's region; equal → the image is already there. */
void job_st_compare(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER:
        j->req_len = cmd_build_md5(j->req, sizeof j->req, im->offset, (uint32_t)p->len);
        job_send_or_fail(j, CMD_SPI_FLASH_MD5, j->stub ? 16 : 32, job_timeout_per_mb(8, p->len));
        return;
    case JOB_EV_RESP: {
        uint8_t dev[16];
        job_image_stat_t *is = &j->rep.images[j->img];
        if (j->resp.status != 0 || cmd_parse_md5(&j->resp, dev) != 0 ||
            memcmp(dev, p->md5, 16) != 0) {
            job_enter(j, JOB_ST_BEGIN); /* differs (or cannot tell): write it */
            return;
        }
        is->skipped = true;
        is->verified = true; /* the device's MD5 of the region is the image's */
        job__log(j, JOB_LOG_INFO, "0x%x: the device already holds this image (MD5 %s): skipped",
                 im->offset, est_hex(dev, 16, (char[33]){0}));
        if (j->cbs.progress_cb) j->cbs.progress_cb(j, j->img, p->len, p->len);
        job_next_image(j);
        return;
    }
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash MD5 before writing"); return;
    default: job_bad_event(j, ev); return;
    }
}

void job_st_begin(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    /* The 5th "encrypted" word: S2+ ROMs require it; the legacy stub checks for exactly 16
     * bytes (verify_data_len(16), else 0xC0). esptool 4.x adds it only for a ROM that supports
     * encrypted flash; esptool >= 5.2 sends it to stubs too because the new stub accepts both,
     * but 16 bytes work with either stub. */
    bool enc = !j->stub && j->chip->rom_begin_enc_word;
    uint32_t size_field;
    switch (ev) {
    case JOB_EV_ENTER:
        j->end_sent = false;
        if (j->defl) {
            /* ROM: uncompressed size rounded up to 1 KiB, which it erases now; stub: the exact
             * size, erased as it writes (PROTOCOL.md §4.2) */
            size_field = j->stub ? (uint32_t)p->len : (uint32_t)((p->len + 0x3FF) & ~0x3FFu);
            j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_DEFL_BEGIN, size_field,
                                         j->nblocks, j->block_size, im->offset, enc, 0);
            job_send_or_fail(j, CMD_FLASH_DEFL_BEGIN, 0,
                             j->stub ? 3000
                                     : job_timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size_field));
        } else {
            size_field = (uint32_t)p->len;
            if (!j->stub && j->chip->rom_erase_size_bug)
                size_field = image_esp8266_erase_size(im->offset, (uint32_t)p->len);
            j->req_len = cmd_build_begin(j->req, sizeof j->req, CMD_FLASH_BEGIN, size_field,
                                         j->nblocks, j->block_size, im->offset, enc, 0);
            job_send_or_fail(j, CMD_FLASH_BEGIN, 0,
                             j->stub ? 3000
                                     : job_timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, p->len));
        }
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            char what[64];
            snprintf(what, sizeof what, "at 0x%x (%zu bytes)", im->offset, p->len);
            job_nak(j, what);
            return;
        }
        j->seq = 0;
        j->img_done = 0;
        job_enter(j, JOB_ST_DATA);
        return;
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "erase before write"); return;
    default: job_bad_event(j, ev); return;
    }
}

/* Flash bytes block k of the current image writes: the sum of its zlib slices' outputs, or the
 * plain bytes it carries (without the 0xFF padding of the last block). */
static uint64_t job_block_out(const job_t *j, uint32_t k)
{
    const job_prep_t *p = &j->prep;
    size_t start = (size_t)k * j->block_size;
    if (j->defl) {
        size_t first = start / JOB_ZGRAIN, end = (start + j->block_size) / JOB_ZGRAIN;
        uint64_t sum = 0;
        for (size_t s = first; s < end && s < p->nslices; s++)
            sum += p->blk_out[s];
        return sum;
    }
    return p->len - start < j->block_size ? p->len - start : j->block_size;
}

/* How long the reply to block k may take (PROTOCOL.md §4.4): the ROM writes block k before
 * answering; the stub answers on receipt, but only after it has written block k-1. */
static uint32_t job_block_timeout(const job_t *j, uint32_t k)
{
    if (!j->stub) return job_timeout_per_mb(40, j->defl ? job_block_out(j, k) : j->block_size);
    return k == 0 ? job_state_timeout_ms(JOB_ST_DATA) : job_stub_wait_ms(job_block_out(j, k - 1));
}

static void job_send_block(job_t *j)
{
    job_prep_t *p = &j->prep;
    size_t start = (size_t)j->seq * j->block_size;
    if (j->defl) {
        size_t n = p->zlen - start < j->block_size ? p->zlen - start : j->block_size;
        j->req_len =
            cmd_build_data(j->req, sizeof j->req, CMD_FLASH_DEFL_DATA, j->seq, p->z + start, n);
        job_send_or_fail(j, CMD_FLASH_DEFL_DATA, 0, job_block_timeout(j, j->seq));
    } else {
        /* every FLASH_DATA block carries block_size bytes; pad the last with 0xFF (PROTOCOL.md
         * §4.2) */
        static uint8_t blk[0x4000];
        size_t n = p->len - start < j->block_size ? p->len - start : j->block_size;
        memcpy(blk, p->data + start, n);
        memset(blk + n, 0xFF, j->block_size - n);
        j->req_len =
            cmd_build_data(j->req, sizeof j->req, CMD_FLASH_DATA, j->seq, blk, j->block_size);
        job_send_or_fail(j, CMD_FLASH_DATA, 0, job_block_timeout(j, j->seq));
    }
}

/* Stub: FLASH_DEFL_END(1) / FLASH_END(1) after the last block: "stay in the loader", and the
 * barrier that reports the last blocks' write errors (PROTOCOL.md §4.5.6, §8.5). */
static void job_send_end(job_t *j)
{
    uint8_t op = j->defl ? CMD_FLASH_DEFL_END : CMD_FLASH_END;
    j->end_sent = true;
    j->req_len = cmd_build_end(j->req, sizeof j->req, op, 1);
    job_send_or_fail(j, op, 0, job_stub_wait_ms(job_block_out(j, j->nblocks - 1)));
}

/* Stub status codes that concern the block just sent (sending it again can help); any other
 * failure is a deferred write error of an earlier block (PROTOCOL.md §8.5). */
static bool job_stub_resendable(uint8_t status)
{
    return status == 0xC0 || status == 0xC1;
}

/* ROM: the block just sent was refused in a way that a resend cannot fix (PROTOCOL.md §4.5.7):
 * 0x07 (checksum) — the ROM has already counted the block — or 0x05 for a block sent again. */
static bool job_rom_block_counted(const job_t *j)
{
    return !j->stub && j->resp.status != 0 &&
           (j->resp.error == 0x07 || (j->resp.error == 0x05 && j->tries > 0));
}

/* Begin the image again from its FLASH_(DEFL_)BEGIN (the ROM erases the region again and
 * starts a new zlib stream; the blocks go from 0), once per image; a second time it fails. */
static void job_rom_restart_image(job_t *j)
{
    char what[96];
    if (j->img_restarted) {
        snprintf(what, sizeof what, "block %u of %u (refused again after beginning the image anew)",
                 j->seq + 1, j->nblocks);
        job_nak(j, what);
        return;
    }
    j->img_restarted = true;
    j->rep.retries++;
    job__log(j, JOB_LOG_WARN,
             "block %u rejected (status 0x%04x): the ROM has counted it, so it cannot be sent "
             "again; beginning the image at 0x%x again",
             j->seq + 1, cmd_resp_code(&j->resp), j->plan->images[j->img].offset);
    j->rep.bytes_written -= j->img_done;
    j->img_done = 0;
    if (j->cbs.progress_cb) j->cbs.progress_cb(j, j->img, 0, j->prep.len);
    job_enter(j, JOB_ST_BEGIN);
}

void job_st_data(job_t *j, job_event_t ev)
{
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER: job_send_block(j); return;
    case JOB_EV_RESP: {
        uint64_t add;
        if (j->end_sent) {
            if (j->resp.status != 0) {
                job_nak(j, "(the stub reports that writing the image failed)");
                return;
            }
            job_enter(j, JOB_ST_VERIFY);
            return;
        }
        if (job_rom_block_counted(j)) {
            job_rom_restart_image(j);
            return;
        }
        if (j->resp.status != 0) {
            char what[96];
            /* esptool sends a rejected block again too (e.g. a checksum error from noise) */
            if (!j->resp_unsupported && j->tries < job_state_retries(j->st) &&
                (!j->stub || job_stub_resendable(j->resp.status))) {
                j->tries++;
                j->rep.retries++;
                job__log(j, JOB_LOG_WARN, "block %u rejected (status 0x%04x), sending again",
                         j->seq + 1, cmd_resp_code(&j->resp));
                job_send_block(j);
                return;
            }
            if (j->stub && !job_stub_resendable(j->resp.status) && j->seq > 0)
                snprintf(what, sizeof what, "block %u of %u (writing an earlier block failed)",
                         j->seq + 1, j->nblocks);
            else
                snprintf(what, sizeof what, "block %u of %u", j->seq + 1, j->nblocks);
            job_nak(j, what);
            return;
        }
        add = job_block_out(j, j->seq);
        j->img_done += add;
        j->rep.bytes_written += add;
        if (j->cbs.progress_cb) j->cbs.progress_cb(j, j->img, j->img_done, p->len);
        j->seq++;
        j->tries = 0;
        if (j->seq < j->nblocks) {
            job_send_block(j);
            return;
        }
        if (j->stub) {
            job_send_end(j);
            return;
        }
        job_enter(j, JOB_ST_VERIFY);
        return;
    }
    case JOB_EV_TIMEOUT:
        if (j->end_sent) {
            /* not sent again: a second END finds the stub out of flash mode */
            job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT,
                     "no reply to %s within %u ms: the stub did not finish writing",
                     cmd_op_name(j->expect_op), j->req_timeout_ms);
            return;
        }
        /* esptool sends each block at most 3 times with the same sequence number */
        job_retry_or_fail(j, "data block");
        return;
    default: job_bad_event(j, ev); return;
    }
}

/* True when `md5` is the MD5 of `len` bytes of 0xFF: nothing was written (esptool's check). */
static bool job_md5_is_erased(const uint8_t md5[16], size_t len)
{
    static uint8_t ff[4096];
    uint8_t want[16];
    unsigned int ml = 16;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool eq;
    memset(ff, 0xFF, sizeof ff);
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    for (size_t done = 0; done < len; done += sizeof ff)
        EVP_DigestUpdate(c, ff, len - done < sizeof ff ? len - done : sizeof ff);
    EVP_DigestFinal_ex(c, want, &ml);
    EVP_MD_CTX_free(c);
    eq = memcmp(want, md5, 16) == 0;
    return eq;
}

void job_st_verify(job_t *j, job_event_t ev)
{
    const plan_image_t *im = &j->plan->images[j->img];
    job_prep_t *p = &j->prep;
    switch (ev) {
    case JOB_EV_ENTER:
        if (!j->plan->verify || (!j->stub && !j->chip->rom_md5)) {
            if (j->plan->verify)
                job__log(j, JOB_LOG_WARN,
                         "the %s ROM loader cannot compute MD5: image at 0x%x not verified",
                         j->chip->pretty, im->offset);
            job_next_image(j);
            return;
        }
        j->req_len = cmd_build_md5(j->req, sizeof j->req, im->offset, (uint32_t)p->len);
        job_send_or_fail(j, CMD_SPI_FLASH_MD5, j->stub ? 16 : 32, job_timeout_per_mb(8, p->len));
        return;
    case JOB_EV_RESP: {
        uint8_t dev[16];
        if (j->resp.status != 0) {
            job_nak(j, "(verify)");
            return;
        }
        if (cmd_parse_md5(&j->resp, dev) != 0) {
            job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "malformed MD5 reply");
            return;
        }
        if (memcmp(dev, p->md5, 16) != 0) {
            char a[33], b[33];
            est_hex(p->md5, 16, a);
            est_hex(dev, 16, b);
            job_fail(j, EST_CLASS_MD5_MISMATCH, EST_EMD5,
                     "MD5 of flash at 0x%x (%zu bytes) is %s, image is %s%s", im->offset, p->len, b,
                     a,
                     job_md5_is_erased(dev, p->len)
                         ? ": the written flash region is empty (write failed)"
                         : "");
            return;
        }
        j->rep.images[j->img].verified = true;
        job_next_image(j);
        return;
    }
    case JOB_EV_TIMEOUT: job_retry_or_fail(j, "flash MD5"); return;
    default: job_bad_event(j, ev); return;
    }
}
