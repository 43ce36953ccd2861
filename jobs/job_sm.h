/* SPDX-License-Identifier: MIT */
/* job_sm.h — what the state machine's files share: the per-state handlers (one file per phase:
 * job_connect.c open → read_efuse, job_link.c stub and baud, job_flash.c attach → erase,
 * job_write.c prepare → verify, job_read.c, job_finish.c after_reset → done) and the helpers
 * every state uses (job_sm.c). Must not: be included outside jobs/ (tests excepted). */
#ifndef JOB_SM_H
#define JOB_SM_H

#include "job_int.h"

#define UNSUPP_DRAIN_MS                                                                            \
    200 /* wait for a late reply / the ROM's extra error frames (PROTOCOL.md §3.7) */
#define BAUD_SETTLE_MS 50 /* after switching the host UART (esptool, PROTOCOL.md §9) */
#define DEFAULT_FLASH 0x400000u
#define ROM_ADDR_LIMIT                                                                             \
    0x1000000u /* ROM flash commands use 24-bit addresses (PROTOCOL.md §14.12)                    \
                */
/* esptool master after v5.3.1 (30 before): the ROM's erase at FLASH_BEGIN / FLASH_DEFL_BEGIN,
 * ERASE_REGION, and the scale of a whole-chip erase (PROTOCOL.md §4.4) */
#define ERASE_REGION_TIMEOUT_PER_MB 40
/* GET_SECURITY_INFO flag bit 0: Secure Boot enabled; bit 2: Secure Download Mode (PROTOCOL.md §5.4)
 */
#define SEC_FLAG_SECURE_BOOT 0x1u
#define SEC_FLAG_SDM 0x4u

/* ---- job_sm.c: helpers ---- */
/* esptool's size-scaled timeout: secs per 10^6 bytes, 3 s .. 240 s (PROTOCOL.md §4.4) */
uint32_t job_timeout_per_mb(uint32_t secs_per_mb, uint64_t bytes);
/* Stub writes: how long the reply after a block of `out` flash bytes may take (PROTOCOL.md §4.4) */
uint32_t job_stub_wait_ms(uint64_t out);
/* A device NAK of the request in flight: keeps the command and status, fails the job. */
void job_nak(job_t *j, const char *what);
/* Send j->req (built by the caller) awaiting `op`; a write error fails the job. */
void job_send_or_fail(job_t *j, uint8_t op, size_t out_len, uint32_t timeout_ms);
/* Re-send the request in flight after a timeout, within the state's retry budget. */
void job_retry_or_fail(job_t *j, const char *what);
/* Drop buffered input and any half-decoded frame. */
void job_flush_rx(job_t *j);
bool job_secure_boot(const job_t *j);
/* The plan asks for the post-flash test (flashing jobs with images only). */
bool job_has_test(const job_t *j);
void job_pass(job_t *j);

/* ---- shared across phases ---- */
bool job_run_reset_steps(job_t *j);                         /* job_connect.c */
void job_test_text(job_t *j, const uint8_t *buf, size_t n); /* job_finish.c */
void job_prefetch_images(job_t *j);                         /* job_write.c */
const char *job_stub_excluded(const job_t *j);              /* job_link.c */

/* ---- the handlers, one per state (the dispatcher's table in job_sm.c) ---- */
void job_st_open(job_t *j, job_event_t ev);
void job_st_reset(job_t *j, job_event_t ev);
void job_st_sync(job_t *j, job_event_t ev);
void job_st_detect(job_t *j, job_event_t ev);
void job_st_read_efuse(job_t *j, job_event_t ev);
void job_st_stub(job_t *j, job_event_t ev);
void job_st_baud(job_t *j, job_event_t ev);
void job_st_attach(job_t *j, job_event_t ev);
void job_st_flash_id(job_t *j, job_event_t ev);
void job_st_params(job_t *j, job_event_t ev);
void job_st_erase(job_t *j, job_event_t ev);
void job_st_prepare(job_t *j, job_event_t ev);
void job_st_compare(job_t *j, job_event_t ev);
void job_st_begin(job_t *j, job_event_t ev);
void job_st_data(job_t *j, job_event_t ev);
void job_st_verify(job_t *j, job_event_t ev);
void job_st_read(job_t *j, job_event_t ev);
void job_st_after_reset(job_t *j, job_event_t ev);
void job_st_test(job_t *j, job_event_t ev);
void job_st_closing(job_t *j, job_event_t ev);
void job_st_done(job_t *j, job_event_t ev);

/* An event the state's `handles` mask lets through but the handler has no case for: a bug. */
void job_bad_event(const job_t *j, job_event_t ev);

#endif
