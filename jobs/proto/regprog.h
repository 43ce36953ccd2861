/* SPDX-License-Identifier: MIT */
/* regprog.h — register programs: a small declarative form for "read, write or modify device
 * registers, poll until a mask matches, capture values", as pure data, and a pure interpreter
 * that says which READ_REG / WRITE_REG to send next and takes the replies (docs/PROTOCOL.md §16).
 * Owns: the instruction set, program building, the interpreter state. Must not: do I/O, time
 * anything, or decide what a NAK or a timeout means (the job's runner, jobs/job_regprog.c, does:
 * one set of timeout, drain and late-reply rules for every program). */
#ifndef REGPROG_H
#define REGPROG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_MAX_INSNS 32 /* an eFuse burn: 8 + 3 program words, command, poll, 8 read-backs ... */
#define RP_MAX_SLOTS 16 /* captured values */
#define RP_NO_SLOT 0xFF
#define RP_POLL_DEFAULT 10 /* polls before giving up when an instruction does not say */

typedef enum {
    RP_READ,       /* READ_REG addr → slots[slot] (RP_NO_SLOT: discard) */
    RP_WRITE,      /* WRITE_REG addr = value */
    RP_WRITE_SLOT, /* WRITE_REG addr = slots[slot] (restore what an RP_READ saved) */
    RP_MODIFY,     /* READ_REG addr, then WRITE_REG addr = (old & ~mask) | value (mask 0: OR) */
    RP_POLL,       /* READ_REG addr until (v & mask) == value, at most `polls` reads; the last
                    * value read → slots[slot] */
} rp_op_t;

typedef struct rp_insn_s {
    uint8_t op;     /* rp_op_t */
    uint8_t slot;   /* RP_READ / RP_WRITE_SLOT / RP_POLL */
    uint16_t polls; /* RP_POLL: read limit (0: RP_POLL_DEFAULT) */
    uint32_t addr;
    uint32_t value;
    uint32_t mask;
} rp_insn_t;

typedef struct rp_prog_s {
    rp_insn_t insn[RP_MAX_INSNS];
    uint8_t n;
    bool overflow; /* an add did not fit: rp_start refuses the program */
} rp_prog_t;

/* Building (each returns false when the program is full, and marks it overflowed). */
void rp_init(rp_prog_t *p);
bool rp_read(rp_prog_t *p, uint32_t addr, uint8_t slot);
bool rp_write(rp_prog_t *p, uint32_t addr, uint32_t value);
bool rp_write_slot(rp_prog_t *p, uint32_t addr, uint8_t slot);
bool rp_modify(rp_prog_t *p, uint32_t addr, uint32_t clear_mask, uint32_t set_bits);
bool rp_poll(rp_prog_t *p, uint32_t addr, uint32_t mask, uint32_t value, uint16_t polls,
             uint8_t slot);

/* What to send next. */
typedef enum { RP_REQ_READ, RP_REQ_WRITE, RP_REQ_NONE } rp_req_kind_t;
typedef struct rp_req_s {
    rp_req_kind_t kind;
    uint32_t addr, value; /* value: RP_REQ_WRITE only */
} rp_req_t;

/* Result of feeding a reply. */
typedef enum {
    RP_CONTINUE,   /* send rp_next() */
    RP_DONE,       /* the program ran to its end: slots hold the captures */
    RP_POLL_LIMIT, /* an RP_POLL never matched within its limit (slots[slot]: the last value) */
    RP_BAD,        /* a malformed program or a reply with nothing outstanding */
} rp_status_t;

typedef struct rp_run_s {
    const rp_prog_t *prog;
    uint8_t pc;
    bool writing;   /* RP_MODIFY: the read is done, the write is outstanding */
    uint16_t polls; /* RP_POLL: reads so far */
    uint32_t old;   /* RP_MODIFY: the value read */
    uint32_t slots[RP_MAX_SLOTS];
    uint32_t requests; /* requests the program asked for so far (for logs and tests) */
} rp_run_t;

/* Start (or restart) `p` from its first instruction; slots are cleared. RP_BAD for an
 * overflowed program or a slot out of range, RP_DONE for an empty one, else RP_CONTINUE. */
rp_status_t rp_start(rp_run_t *r, const rp_prog_t *p);
/* The request for the current instruction (RP_REQ_NONE at the end). Pure: may be asked again,
 * e.g. to send the same request once more. */
rp_req_t rp_next(const rp_run_t *r);
/* The reply to the request rp_next() gave: `value` is READ_REG's value (ignored for writes). */
rp_status_t rp_reply(rp_run_t *r, uint32_t value);

#endif
