/* SPDX-License-Identifier: MIT */
/* job_int.h — the job object, shared by job.c (libuv glue, I/O, worker) and job_sm.c (the state
 * machine). Must not: be included outside jobs/ (tests excepted). */
#ifndef JOB_INT_H
#define JOB_INT_H

#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>

#include "cmd.h"
#include "est_util.h" /* container_of */
#include "image.h"
#include "job.h"
#include "regprog.h"
#include "slip.h"
#include "stub.h"
#include "job_sec.h"

#define JOB_RX_FRAME_MAX 4096 /* largest frame we accept (READ_FLASH data is 4 KiB) */
#define JOB_ZGRAIN 0x400 /* block outputs counted per 1 KiB of zlib stream (PROTOCOL.md §4.3) */
#define JOB_BOOTLOG_MAX 4096  /* raw text kept for boot-mode detection */
#define JOB_SECINFO_OUT ((size_t)-1) /* "output length depends on the frame" marker */

/* One image made ready for the wire by the worker thread. */
typedef struct job_prep_s {
    /* inputs (copied before the work starts) */
    uint64_t src_id; /* plan_image_t.id */
    const uint8_t *src;
    size_t src_len;
    uint32_t offset;
    const chip_info_t *chip;
    bool no_patch; /* Secure Boot / SDM: never touch the header (PROTOCOL.md §11.4) */
    image_params_t params;
    bool compress;
    /* outputs */
    int status;             /* 0 or negative */
    est_class_t cls;
    char msg[256];
    uint8_t *data;          /* padded, patched image */
    size_t len;
    bool patched;
    const char *patch_note; /* why not patched (static text) */
    uint8_t md5[16];
    bool have_info;         /* an image header was parsed: the job checks chip and revision */
    image_info_t info;
    uint8_t *z;             /* zlib stream (compress only) */
    size_t zlen;
    uint32_t *blk_out;      /* per JOB_ZGRAIN slice of the zlib stream: bytes it inflates to;
                             * any block size that is a multiple of it sums its slices, so ROM
                             * (1 KiB) and stub (16 KiB, 2 KiB) jobs share one deflate */
    size_t nslices;
    struct job_cache_entry_s *entry; /* the shared entry the outputs belong to */
} job_prep_t;

/* A prepared image shared by every job that writes it the same way (job.c). */
typedef struct job_cache_entry_s {
    job_prep_t p;          /* inputs of the first job, then the outputs */
    uv_work_t work;
    bool running;          /* on the worker */
    unsigned refs;         /* jobs using the outputs */
    struct job_s *waiters; /* jobs waiting for it */
    struct job_cache_entry_s *next;
} job_cache_entry_t;

typedef enum {
    JOB_EV_ENTER,
    JOB_EV_RESP,     /* j->resp holds the awaited response */
    JOB_EV_TIMEOUT,
    JOB_EV_WORK_DONE,
    JOB_EV_IO_OPENED,
    JOB_EV_IO_CLOSED,
    JOB_EV_RAW,      /* raw mode: j->raw holds a frame that is not a response (OHAI, READ_FLASH) */
} job_event_t;
#define JOB_EVS(ev) (1u << (ev)) /* a set of events: a state's `handles` mask (job_sm.c) */

/* Sub-steps of the states that have them (per-state scratch, job_t.u). */
typedef enum { SYNC_AWAIT_FIRST, SYNC_PAUSE, SYNC_COLLECT } job_sync_phase_t;
typedef enum { DETECT_SECINFO, DETECT_DRAIN, DETECT_MAGIC } job_detect_phase_t;
typedef enum { EFUSE_IDENTIFY, EFUSE_CONSOLE, EFUSE_WDT } job_efuse_phase_t;
typedef enum { STUB_MEM_BEGIN, STUB_MEM_DATA, STUB_MEM_END } job_stub_phase_t;
typedef enum { BAUD_CLOCK, BAUD_CHANGE, BAUD_SETTLE, BAUD_PROBE } job_baud_phase_t;
typedef enum { ATTACH_PADS, ATTACH_SENT } job_attach_phase_t;
typedef enum { PARAMS_ROM_ECO, PARAMS_SET } job_params_phase_t;
typedef enum { READ_CMD, READ_PACKETS, READ_MD5_FRAME, READ_SLOW, READ_SLOW_MD5 } job_read_phase_t;
typedef enum { AFTER_PULSE, AFTER_BAUD_BACK, AFTER_SETTLE } job_after_phase_t;

/* The register-program runner (job_regprog.c, docs/PROTOCOL.md §16): one program at a time, with
 * one set of rules for timeouts, draining and late replies. */
typedef enum {
    JOB_RP_DONE,       /* ran to the end: j->rp.run.slots hold the captures */
    JOB_RP_NAK,        /* the device refused a request: j->resp holds the reply */
    JOB_RP_POLL_LIMIT, /* a poll never matched */
} job_rp_result_t;
typedef void (*job_rp_done_fn)(job_t *j, job_rp_result_t res);
typedef struct job_rp_s {
    rp_prog_t prog; /* filled by the state (chip_prog_*), then started */
    rp_run_t run;
    const char *what;      /* for messages: "eFuse read" */
    uint32_t timeout_ms;   /* per request */
    unsigned max_restarts; /* whole-program restarts after a timeout */
    job_rp_done_fn done;
    bool active;
    bool draining; /* waiting out a late reply before the restart */
} job_rp_t;

struct job_s {
    uv_loop_t *loop;
    uv_timer_t timer;
    char *spec;
    const plan_t *plan;
    job_cbs_t cbs;
    const job_io_t *io;
    void *data;
    void *io_data;

    job_state_t st;
    uint64_t st_enter_ms;
    unsigned tries;   /* re-sends in this state */
    unsigned attempt; /* connect attempt (reset + sync tries) */
    uint8_t rs_idx;   /* RESET / AFTER_RESET: position in the DTR/RTS sequence */
    /* per-state scratch, zeroed by job_enter: only the current state's member is valid */
    union {
        struct {
            job_sync_phase_t phase;
            unsigned replies; /* replies seen to the SYNC that was answered */
        } sync;
        job_detect_phase_t detect;
        job_efuse_phase_t efuse;
        struct {
            job_stub_phase_t phase;
            unsigned seg; /* 0 text, 1 data */
            uint32_t mem_seq, mem_blocks;
        } stub;
        job_baud_phase_t baud;
        job_attach_phase_t attach;
        job_params_phase_t params;
        job_read_phase_t read;
        job_after_phase_t after;
    } u;

    /* lifecycle */
    bool started, io_active, io_close_sent, work_pending, timer_closing, finished;
    bool failing;
    int open_status; /* result of io->open, for JOB_EV_IO_OPENED */
    bool io_abandoned; /* the port never confirmed its close: never free (it may call back) */
    struct job_s *cache_next; /* in a cache entry's list of waiting jobs */
    unsigned restarts; /* register-program restarts in this state */
    job_rp_t rp;       /* the register program running (if rp.active) */

    /* receive */
    slip_dec_t dec;
    uint8_t rxbuf[JOB_RX_FRAME_MAX];
    char bootlog[JOB_BOOTLOG_MAX];
    size_t bootlog_len;
    uint32_t text_bytes;  /* printable bytes seen while connecting */
    bool saw_frame;       /* any valid response frame seen while connecting */
    bool watch_banner;    /* after sync: a ROM banner means the chip reset (brown-out) */
    uint8_t banner_tail[16]; /* last bytes, to find a banner split across reads */
    uint8_t banner_len;

    /* request in flight */
    uint8_t req[CMD_MAX_REQ];
    size_t req_len;
    uint8_t expect_op;
    size_t expect_out;
    bool awaiting;
    bool raw_mode;        /* every frame goes to the state as JOB_EV_RAW */
    const uint8_t *raw;   /* the frame, valid during JOB_EV_RAW */
    size_t raw_len;
    uint32_t req_timeout_ms;
    cmd_resp_t resp;
    bool resp_unsupported;

    /* device */
    const chip_info_t *chip;
    uint8_t status_len;
    bool stub;            /* the flasher stub answers (uploaded, or found running at sync) */
    bool sync_zero; /* the SYNC reply's value was 0: a stub is already running (PROTOCOL.md §4.2) */
    bool usb_otg;   /* the ROM talks over native USB-OTG (UARTDEV_BUF_NO, PROTOCOL.md §4.3) */
    bool usb_jtag;  /* ... over USB-Serial/JTAG (PROTOCOL.md §14.10) */
    uint32_t ram_block;   /* MEM_DATA block for this job (0x800 on USB-OTG) */
    uint32_t stub_block;  /* stub FLASH_(DEFL_)DATA block for this job (0x800 on USB-OTG) */

    /* STUB: upload */
    const stub_t *stub_img; /* cache reference while uploading */

    /* BAUD */
    uint32_t cur_baud;      /* the rate host and chip use now */
    uint32_t baud_target;   /* the rate being switched to */
    uint32_t baud_cap;      /* after a failed switch: the highest rate still to try (0 none) */
    uint64_t baud_corr[2];  /* ROM clock correction (PROTOCOL.md §9): send rate × [0] / [1] */
    bool lines_ok, lines_warned;

    /* flash */
    uint32_t flash_size_used; /* what SPI_SET_PARAMS got */
    bool rom_eco_known;       /* ESP32-C5: the ROM's ECO version was read (PARAMS) */
    uint32_t rom_eco;

    /* images */
    size_t img;
    job_prep_t prep;
    bool defl;
    uint32_t block_size, nblocks, seq;
    bool end_sent;          /* stub: FLASH_(DEFL_)END(1) sent after the last block */
    bool img_restarted;     /* ROM: this image was begun again after a refused block */
    uint64_t img_done, img_t0_ms;

    /* TEST: the application's raw output, the newest JOB_TEST_OUTPUT_MAX bytes */
    uint8_t test_buf[JOB_TEST_OUTPUT_MAX];
    size_t test_len;

    /* READ */
    uint32_t op_size;       /* plan op_size, or (READ of 0 bytes) up to the end of the flash */
    uint32_t rd_done;       /* bytes received */
    EVP_MD_CTX *rd_md5;     /* over the bytes received */

    job_sec_t sec; /* security read-out (job_security.c) */

    job_report_t rep;
};

/* job.c: glue used by the state machine */
uint64_t job__now_ms(const job_t *j);
void job__arm(job_t *j, uint32_t ms);
void job__disarm(job_t *j);
/* SLIP-encode j->req[0..req_len) and write it; await `op` with `out_len` output bytes. */
int job__send(job_t *j, uint8_t op, size_t out_len, uint32_t timeout_ms);
/* SLIP-encode and write a frame that expects no response (READ_FLASH acknowledgements). */
int job__send_raw(job_t *j, const uint8_t *buf, size_t n);
/* Prepared images are shared: jobs that write the same plan image with the same chip and
 * parameters use one entry (deflated once, on a worker thread). job__queue_prep delivers
 * JOB_EV_WORK_DONE when the entry is ready (at once if it already is). */
int job__queue_prep(job_t *j);
/* Start preparing j->prep's inputs now, without waiting for it (a later job__queue_prep with
 * the same inputs finds the entry). Returns 0 or a negative error. */
int job__prefetch_prep(job_t *j);
/* A job that waits for an entry stops waiting (it is closing). */
void job__leave_prep(job_t *j);
/* Give back the job's reference to its entry. */
void job__free_prep(job_prep_t *p);
void job__log(job_t *j, job_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Close the timer; done_cb follows from its close callback. */
void job__finish(job_t *j);

/* job_sm.c: the dispatcher and what every state uses */
void job_step(job_t *j, job_event_t ev);
void job_enter(job_t *j, job_state_t next);
void job_fail(job_t *j, est_class_t cls, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* job_connect.c: text while connecting (boot log), the brown-out banner, the test's output */
void job__on_text(job_t *j, const uint8_t *buf, size_t n);

/* job_regprog.c: run j->rp.prog (filled by the caller) with the state's reply timeout and retry
 * budget; RESP and TIMEOUT go to the runner while it is active, and `done` follows. */
void job_rp_start(job_t *j, const char *what, job_rp_done_fn done);
/* The same with an explicit timeout per request and restart budget. */
void job_rp_start_ex(job_t *j, const char *what, uint32_t timeout_ms, unsigned max_restarts,
                     job_rp_done_fn done);
/* The dispatcher hands events to the runner first; true when it took the event. */
bool job_rp_event(job_t *j, job_event_t ev);

#endif
