/* SPDX-License-Identifier: MIT */
/* regprog.c — register programs: building and the pure interpreter (regprog.h,
 * docs/PROTOCOL.md §16). Must not: do I/O or keep state outside the rp_run_t it is given. */
#include "regprog.h"

#include <string.h>

void rp_init(rp_prog_t *p)
{
    memset(p, 0, sizeof *p);
}

static bool rp_add(rp_prog_t *p, rp_insn_t in)
{
    if (p->n >= RP_MAX_INSNS) {
        p->overflow = true;
        return false;
    }
    p->insn[p->n++] = in;
    return true;
}

bool rp_read(rp_prog_t *p, uint32_t addr, uint8_t slot)
{
    return rp_add(p, (rp_insn_t){.op = RP_READ, .slot = slot, .addr = addr});
}

bool rp_write(rp_prog_t *p, uint32_t addr, uint32_t value)
{
    return rp_add(p, (rp_insn_t){.op = RP_WRITE, .slot = RP_NO_SLOT, .addr = addr, .value = value});
}

bool rp_write_slot(rp_prog_t *p, uint32_t addr, uint8_t slot)
{
    return rp_add(p, (rp_insn_t){.op = RP_WRITE_SLOT, .slot = slot, .addr = addr});
}

bool rp_modify(rp_prog_t *p, uint32_t addr, uint32_t clear_mask, uint32_t set_bits)
{
    return rp_add(p, (rp_insn_t){.op = RP_MODIFY,
                                 .slot = RP_NO_SLOT,
                                 .addr = addr,
                                 .value = set_bits,
                                 .mask = clear_mask});
}

bool rp_poll(rp_prog_t *p, uint32_t addr, uint32_t mask, uint32_t value, uint16_t polls,
             uint8_t slot)
{
    return rp_add(p, (rp_insn_t){.op = RP_POLL,
                                 .slot = slot,
                                 .polls = polls,
                                 .addr = addr,
                                 .value = value,
                                 .mask = mask});
}

static bool rp_slot_ok(uint8_t op, uint8_t slot)
{
    switch ((rp_op_t)op) {
    case RP_READ:
    case RP_POLL: return slot == RP_NO_SLOT || slot < RP_MAX_SLOTS;
    case RP_WRITE_SLOT: return slot < RP_MAX_SLOTS;
    case RP_WRITE:
    case RP_MODIFY: return true;
    }
    return false; /* an unknown opcode */
}

rp_status_t rp_start(rp_run_t *r, const rp_prog_t *p)
{
    memset(r, 0, sizeof *r);
    r->prog = p;
    if (!p || p->overflow || p->n > RP_MAX_INSNS) return RP_BAD;
    for (size_t i = 0; i < p->n; i++)
        if (!rp_slot_ok(p->insn[i].op, p->insn[i].slot)) return RP_BAD;
    return p->n == 0 ? RP_DONE : RP_CONTINUE;
}

rp_req_t rp_next(const rp_run_t *r)
{
    const rp_insn_t *in;
    if (!r->prog || r->pc >= r->prog->n) return (rp_req_t){RP_REQ_NONE, 0, 0};
    in = &r->prog->insn[r->pc];
    switch ((rp_op_t)in->op) {
    case RP_READ:
    case RP_POLL: return (rp_req_t){RP_REQ_READ, in->addr, 0};
    case RP_WRITE: return (rp_req_t){RP_REQ_WRITE, in->addr, in->value};
    case RP_WRITE_SLOT: return (rp_req_t){RP_REQ_WRITE, in->addr, r->slots[in->slot]};
    case RP_MODIFY:
        if (!r->writing) return (rp_req_t){RP_REQ_READ, in->addr, 0};
        return (rp_req_t){RP_REQ_WRITE, in->addr, (r->old & ~in->mask) | in->value};
    }
    return (rp_req_t){RP_REQ_NONE, 0, 0};
}

static rp_status_t rp_advance(rp_run_t *r)
{
    r->pc++;
    r->writing = false;
    r->polls = 0;
    return r->pc >= r->prog->n ? RP_DONE : RP_CONTINUE;
}

static void rp_capture(rp_run_t *r, uint8_t slot, uint32_t value)
{
    if (slot < RP_MAX_SLOTS) r->slots[slot] = value;
}

rp_status_t rp_reply(rp_run_t *r, uint32_t value)
{
    const rp_insn_t *in;
    if (!r->prog || r->pc >= r->prog->n) return RP_BAD;
    in = &r->prog->insn[r->pc];
    r->requests++;
    switch ((rp_op_t)in->op) {
    case RP_READ: rp_capture(r, in->slot, value); return rp_advance(r);
    case RP_WRITE:
    case RP_WRITE_SLOT: return rp_advance(r);
    case RP_MODIFY:
        if (r->writing) return rp_advance(r);
        r->old = value;
        r->writing = true;
        return RP_CONTINUE;
    case RP_POLL:
        rp_capture(r, in->slot, value);
        if ((value & in->mask) == in->value) return rp_advance(r);
        if (++r->polls >= (in->polls ? in->polls : RP_POLL_DEFAULT)) return RP_POLL_LIMIT;
        return RP_CONTINUE;
    }
    return RP_BAD;
}
