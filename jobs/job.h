/* SPDX-License-Identifier: MIT */
/* job.h — one flashing job on one port, run as a state machine on a libuv loop.
 * Owns: the public face of a job: its states (one X-macro: name, timeout, retry budget, what it
 * does), the events it reports (state changes, progress, log lines, the final result) and the
 * result record. Must not: print, store, or know about other jobs. */
#ifndef JOB_H
#define JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "chip.h"
#include "est_err.h"
#include "plan.h"

/* XX(ENUM, "name", timeout_ms, retries, "what the state does")
 * timeout_ms is the default wait for one reply (0 = the state sets its own or needs none);
 * retries is how many times the same request is re-sent after a timeout before the job fails.
 * The typical path runs top to bottom; PREPARE..VERIFY repeat per image. STUB and BAUD pass
 * straight on when there is nothing to do; ERASE, COMPARE and READ run only when asked for. */
#define JOB_STATE_MAP(XX)                                                                          \
    XX(IDLE, "idle", 0, 0, "not started")                                                          \
    XX(OPEN, "open", 10000, 0, "open the port (115200 8N1, raw, exclusive)")                       \
    XX(RESET, "reset", 0, 0, "drive DTR/RTS to reset into the ROM bootloader (timer steps)")       \
    XX(SYNC, "sync", 100, 4, "SYNC until the ROM answers: per attempt 5 tries of 100 ms")          \
    XX(DETECT, "detect", 3000, 1, "GET_SECURITY_INFO (chip ID), else READ_REG of the magic word")  \
    XX(READ_EFUSE, "read_efuse", 3000, 1, "MAC, revision eFuse words; USB console; watchdogs off") \
    XX(STUB, "stub", 3000, 0, "upload the flasher stub (MEM_BEGIN/DATA/END), wait for OHAI")       \
    XX(BAUD, "baud", 3000, 0, "CHANGE_BAUDRATE, then check the link; lower rates if it fails")     \
    XX(ATTACH, "attach", 3000, 1, "SPI_ATTACH (ROM only); on the ESP8266 ROM FLASH_BEGIN(0,0)")    \
    XX(FLASH_ID, "flash_id", 3000, 1, "JEDEC ID through the SPI controller registers")             \
    XX(PARAMS, "params", 3000, 1, "check images against the flash; SPI_SET_PARAMS(size)")          \
    XX(ERASE, "erase", 3000, 0, "ERASE_FLASH / ERASE_REGION (stub), FLASH_BEGIN (ROM region)")     \
    XX(PREPARE, "prepare", 0, 0, "pad, patch the header, MD5 and deflate one image (worker)")      \
    XX(COMPARE, "compare", 3000, 0, "SPI_FLASH_MD5 before writing: skip an image already there")   \
    XX(BEGIN, "begin", 3000, 0, "FLASH_DEFL_BEGIN / FLASH_BEGIN: the ROM erases the region")       \
    XX(DATA, "data", 3000, 2, "FLASH_DEFL_DATA / FLASH_DATA blocks, each acknowledged; stub: END") \
    XX(VERIFY, "verify", 3000, 0, "SPI_FLASH_MD5 of the written region, compared")                 \
    XX(READ, "read", 3000, 0, "READ_FLASH (stub, acknowledged packets) or READ_FLASH_SLOW (ROM)")  \
    XX(AFTER_RESET, "after_reset", 0, 0, "hard reset (RTS pulse) to run the application")          \
    XX(TEST, "test", 0, 0, "post-flash test: read the application's output for the expected text") \
    XX(CLOSING, "closing", 5000, 0, "close the port, finish pending work")                         \
    XX(DONE, "done", 0, 0, "finished: result recorded")

typedef enum {
#define XX(e, name, tmo, retries, what) JOB_ST_##e,
    JOB_STATE_MAP(XX)
#undef XX
        JOB_ST__COUNT
} job_state_t;

const char *job_state_name(job_state_t s);
const char *job_state_what(job_state_t s);
uint32_t job_state_timeout_ms(job_state_t s);
unsigned job_state_retries(job_state_t s);

typedef struct job_s job_t;

typedef enum { JOB_RESULT_NONE, JOB_RESULT_PASS, JOB_RESULT_FAIL, JOB_RESULT_CANCELLED } job_result_t;
const char *job_result_name(job_result_t r);

#define JOB_SECURITY_MAX 4096    /* the security read-out JSON kept in the report */
#define JOB_TEST_OUTPUT_MAX 2048 /* application output kept in the report (the last bytes) */

typedef struct job_image_stat_s {
    uint32_t offset;
    uint32_t size;            /* bytes written (after padding) */
    uint32_t compressed_size; /* bytes sent (== size when not compressed) */
    uint8_t md5[16];          /* of the written bytes */
    bool patched;             /* flash parameters patched in the header */
    bool verified;            /* MD5 checked on the device */
    bool skipped;             /* not written: the device already held it (plan.skip_unchanged) */
    uint64_t duration_ms;
} job_image_stat_t;

/* The record of a job: filled as the job goes, final when done_cb runs. */
typedef struct job_report_s {
    job_result_t result;
    est_class_t error_class;
    int error_code;              /* EST_* / UV_E* */
    job_state_t failed_state;
    char message[512];
    const chip_info_t *chip;     /* NULL until detected */
    unsigned chip_rev;           /* major*100 + minor; valid when have_rev */
    bool have_rev;               /* false: never read (recorded null, not v0.0) */
    bool have_mac;
    uint8_t mac[6];
    bool have_flash_id;
    uint32_t flash_id;           /* JEDEC order: manufacturer << 16 | type << 8 | capacity */
    uint32_t flash_size;         /* detected (0 unknown) */
    uint32_t sec_flags;          /* GET_SECURITY_INFO flags when available */
    bool have_sec_info;
    /* security read-out (docs/SECURITY-PROVISIONING.md §9): JSON, secstate.h; "" = not read */
    char security[JOB_SECURITY_MAX];
    /* why the written images could not be verified ("" = nothing in the way), e.g. Secure
     * Download Mode (issue 17 part 3): the job passes with images[].verified false */
    char unverified[160];
    uint8_t nak_op;              /* for error_class nak: the command and its status */
    uint16_t nak_code;
    uint64_t started_ms, finished_ms;
    uint64_t state_ms[JOB_ST__COUNT]; /* time spent per state */
    uint64_t bytes_written, bytes_sent;
    unsigned retries;
    unsigned sync_attempts;
    uint32_t baud;               /* the rate the images went at (0 = not known; stored when set) */
    bool stub;                   /* the flasher stub ran (else the ROM loader) */
    char stub_name[96]; /* the stub file that ran (stub.h stub_choice_t.name), "" = ROM/none */
    unsigned baud_fallbacks;     /* reconnects to go on at a lower rate after a failed change */
    uint8_t read_md5[16];        /* PLAN_OP_READ: MD5 of the range read (checked on the device) */
    /* post-flash test (plan.test): ran, passed, and the last JOB_TEST_OUTPUT_MAX bytes the
     * application printed (non-printable bytes shown as '.', NUL-terminated) */
    bool test_ran, test_passed;
    uint32_t test_ms; /* from entering TEST to the expected text (or the timeout) */
    size_t test_output_len;
    char test_output[JOB_TEST_OUTPUT_MAX + 1];
    size_t n_images;
    job_image_stat_t images[PLAN_MAX_IMAGES];
} job_report_t;

typedef enum { JOB_LOG_DEBUG, JOB_LOG_INFO, JOB_LOG_WARN, JOB_LOG_ERROR } job_log_level_t;

typedef struct job_cbs_s {
    void (*state_cb)(job_t *j, job_state_t from, job_state_t to);
    /* image `idx`: `done` of `total` bytes (uncompressed equivalent) written */
    void (*progress_cb)(job_t *j, size_t idx, uint64_t done, uint64_t total);
    void (*log_cb)(job_t *j, job_log_level_t lvl, const char *msg);
    /* Optional device check before anything is erased (after the flash is identified): return
     * 0 to go on, or non-zero with *cls and msg filled to fail the job (e.g. a recipe's allowed
     * chips, revision range, minimum flash size). */
    int (*check_cb)(job_t *j, const job_report_t *r, est_class_t *cls, char *msg, size_t cap);
    /* Final: every handle of the job is closed; the owner may job_free() from here. */
    void (*done_cb)(job_t *j, const job_report_t *r);
    /* PLAN_OP_READ: the flash bytes at `offset`, in order, as they arrive (not yet verified: the
     * job checks the MD5 of the whole range at the end and fails with md5_mismatch if it is
     * wrong). Return non-zero to fail the job (e.g. the output file cannot be written). */
    int (*data_cb)(job_t *j, uint32_t offset, const uint8_t *buf, size_t n);
} job_cbs_t;

/* The job's link to its device. The default goes through port.h; tests substitute their own.
 * The implementation reports back through job_io_opened/read/error/closed. */
typedef struct job_io_s {
    int (*open)(job_t *j, const char *spec, uint32_t baud);
    int (*write)(job_t *j, const uint8_t *buf, size_t n);
    int (*set_lines)(job_t *j, int dtr, int rts); /* UV_ENOTSUP when the port cannot */
    int (*set_baud)(job_t *j, uint32_t baud);
    void (*flush_input)(job_t *j);
    void (*close)(job_t *j);
    /* Optional, asked before CHANGE_BAUDRATE: 0 when the port can run at `baud` and the device's
     * line follows; UV_ENOTSUP when the port cannot change the device's line rate at all (raw
     * TCP: ser2net raw, a terminal server's TCP mode); another negative error when it refuses
     * this rate. It must leave the port at the rate it had. NULL: every rate is taken. */
    int (*check_baud)(job_t *j, uint32_t baud);
} job_io_t;

/* Create a job. `plan` must outlive the job. `io` NULL = real ports. */
job_t *job_new(uv_loop_t *loop, const char *port_spec, const plan_t *plan, const job_cbs_t *cbs,
               const job_io_t *io, void *data);
int job_start(job_t *j);
/* Ask the job to stop; it finishes with result "cancelled" through done_cb. */
void job_cancel(job_t *j);
/* Free a finished job (after done_cb) or one never started. */
void job_free(job_t *j);
void *job_data(const job_t *j);
void *job_io_data(const job_t *j);
void job_set_io_data(job_t *j, void *d);
job_state_t job_state(const job_t *j);
const job_report_t *job_report(const job_t *j);
const char *job_port_spec(const job_t *j);

/* Entry points for an io implementation. */
void job_io_opened(job_t *j, int status);
void job_io_read(job_t *j, const uint8_t *buf, size_t n);
void job_io_error(job_t *j, int status);
void job_io_closed(job_t *j);

/* How many image preparations (pad, patch, MD5, deflate) ran on the worker pool so far: jobs
 * that write the same plan image the same way share one (for tests and metrics). */
uint64_t job_prep_count(void);

/* "aa:bb:cc:dd:ee:ff" into buf (>= 18 bytes). */
const char *job_fmt_mac(const uint8_t mac[6], char *buf);

#endif
