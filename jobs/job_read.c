/* SPDX-License-Identifier: MIT */
/* job_read.c — READ: a flash range into the job's data_cb: the stub's READ_FLASH (acknowledged
 * 4 KiB packets, then the MD5 frame) or the ROM's READ_FLASH_SLOW (64 bytes per command, then
 * SPI_FLASH_MD5), PROTOCOL.md §4.6. Must not: block, do I/O except through job.c. */
#include "job_sm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define READ_PACKET 0x1000 /* READ_FLASH packet size (PROTOCOL.md §4.6) */

static void job_read_finish(job_t *j)
{
    unsigned int ml = 16;
    EVP_DigestFinal_ex(j->rd_md5, j->rep.read_md5, &ml);
    EVP_MD_CTX_free(j->rd_md5);
    j->rd_md5 = NULL;
}

/* Pass bytes on; false when the job failed. */
static bool job_read_deliver(job_t *j, const uint8_t *d, size_t n)
{
    const plan_t *pl = j->plan;
    if (j->cbs.data_cb && j->cbs.data_cb(j, pl->op_offset + j->rd_done, d, n) != 0) {
        job_fail(j, EST_CLASS_INTERNAL, EST_EUSAGE, "the reader did not take the data");
        return false;
    }
    EVP_DigestUpdate(j->rd_md5, d, n);
    j->rd_done += (uint32_t)n;
    j->rep.bytes_written += n; /* bytes moved over the link, for the record */
    if (j->cbs.progress_cb) j->cbs.progress_cb(j, 0, j->rd_done, j->op_size);
    return true;
}

static void job_read_slow_next(job_t *j)
{
    uint32_t left = j->op_size - j->rd_done;
    j->req_len = cmd_build_read_flash_slow(j->req, sizeof j->req, j->plan->op_offset + j->rd_done,
                                           left < 64 ? left : 64);
    job_send_or_fail(j, CMD_READ_FLASH_SLOW, 64, job_state_timeout_ms(JOB_ST_READ));
}

static bool job_read_md5_ok(job_t *j, const uint8_t dev[16])
{
    char a[33], b[33];
    job_read_finish(j);
    if (memcmp(dev, j->rep.read_md5, 16) == 0) return true;
    job_fail(j, EST_CLASS_MD5_MISMATCH, EST_EMD5,
             "the data read from 0x%x (%u bytes) has MD5 %s, the device computed %s: the read "
             "was corrupted on the way",
             j->plan->op_offset, j->op_size, est_hex(j->rep.read_md5, 16, a), est_hex(dev, 16, b));
    return false;
}

/* READ sub-steps (job_read_phase_t): stub READ_CMD → READ_PACKETS → READ_MD5_FRAME; ROM
 * READ_SLOW → READ_SLOW_MD5. */
void job_st_read(job_t *j, job_event_t ev)
{
    const plan_t *pl = j->plan;
    uint8_t dev[16], ack[4];
    switch (ev) {
    case JOB_EV_ENTER:
        /* flash data may contain any text, "rst:0x" included: stop looking for banners */
        j->watch_banner = false;
        j->rd_done = 0;
        j->rd_md5 = EVP_MD_CTX_new();
        if (!j->rd_md5 || !EVP_DigestInit_ex(j->rd_md5, EVP_md5(), NULL)) {
            job_fail(j, EST_CLASS_INTERNAL, -ENOMEM, "out of memory");
            return;
        }
        if (j->stub) {
            /* esptool: 4 KiB packets, 64 in flight (both stubs keep one: PROTOCOL.md §4.6) */
            j->u.read = READ_CMD;
            j->req_len = cmd_build_read_flash(j->req, sizeof j->req, pl->op_offset, j->op_size,
                                              READ_PACKET, 64);
            job_send_or_fail(j, CMD_READ_FLASH, 0, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (!j->chip->rom_read_flash_slow) {
            job_fail(j, EST_CLASS_UNSUPPORTED, EST_EUNSUPP,
                     "the %s ROM loader cannot read flash: reading needs the flasher stub (give a "
                     "stub directory)",
                     j->chip->pretty);
            return;
        }
        job__log(j, JOB_LOG_INFO,
                 "no stub: reading with READ_FLASH_SLOW, 64 bytes per command (slow)");
        j->u.read = READ_SLOW;
        job_read_slow_next(j);
        return;
    case JOB_EV_RESP:
        if (j->resp.status != 0) {
            job_nak(j, "(flash read)");
            return;
        }
        if (j->u.read == READ_CMD) {
            j->u.read = READ_PACKETS;
            j->raw_mode = true; /* data frames follow, without a response header */
            job__arm(j, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (j->u.read == READ_SLOW) {
            uint32_t left = j->op_size - j->rd_done;
            if (!j->resp.out || j->resp.out_len < 64) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "short READ_FLASH_SLOW reply");
                return;
            }
            /* the reply always carries 64 bytes; the first `length` are ours (PROTOCOL.md §4.2) */
            if (!job_read_deliver(j, j->resp.out, left < 64 ? left : 64)) return;
            if (j->rd_done < j->op_size) {
                job_read_slow_next(j);
                return;
            }
            if (!j->chip->rom_md5) {
                job_read_finish(j);
                job_enter(j, JOB_ST_AFTER_RESET);
                return;
            }
            j->u.read = READ_SLOW_MD5;
            j->req_len = cmd_build_md5(j->req, sizeof j->req, pl->op_offset, j->op_size);
            job_send_or_fail(j, CMD_SPI_FLASH_MD5, 32, job_timeout_per_mb(8, j->op_size));
            return;
        }
        if (j->u.read == READ_SLOW_MD5) {
            if (cmd_parse_md5(&j->resp, dev) != 0) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO, "malformed MD5 reply");
                return;
            }
            if (job_read_md5_ok(j, dev)) job_enter(j, JOB_ST_AFTER_RESET);
        }
        return;
    case JOB_EV_RAW:
        if (j->u.read == READ_PACKETS) {
            uint32_t left = j->op_size - j->rd_done;
            uint32_t want = left < READ_PACKET ? left : READ_PACKET;
            if (j->raw_len != want) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO,
                         "READ_FLASH packet of %zu bytes at 0x%x, expected %u", j->raw_len,
                         pl->op_offset + j->rd_done, want);
                return;
            }
            if (!job_read_deliver(j, j->raw, j->raw_len)) return;
            /* acknowledge every packet with the running total (PROTOCOL.md §4.6) */
            if (job__send_raw(j, ack, cmd_build_read_flash_ack(ack, sizeof ack, j->rd_done))) {
                job_fail(j, EST_CLASS_PORT_GONE, UV_EIO, "write to %s failed", j->spec);
                return;
            }
            if (j->rd_done == j->op_size) j->u.read = READ_MD5_FRAME;
            job__arm(j, job_state_timeout_ms(JOB_ST_READ));
            return;
        }
        if (j->u.read == READ_MD5_FRAME) {
            if (j->raw_len != 16) {
                job_fail(j, EST_CLASS_PROTOCOL, EST_EPROTO,
                         "expected the 16-byte MD5 after READ_FLASH data, got %zu bytes",
                         j->raw_len);
                return;
            }
            j->raw_mode = false;
            if (job_read_md5_ok(j, j->raw)) job_enter(j, JOB_ST_AFTER_RESET);
        }
        return;
    case JOB_EV_TIMEOUT:
        if (j->u.read == READ_PACKETS || j->u.read == READ_MD5_FRAME) {
            job_fail(j, EST_CLASS_TIMEOUT, EST_ETIMEOUT,
                     "READ_FLASH stalled at 0x%x (%u of %u bytes received)",
                     pl->op_offset + j->rd_done, j->rd_done, j->op_size);
            return;
        }
        job_retry_or_fail(j, "flash read");
        return;
    default: job_bad_event(j, ev); return;
    }
}
