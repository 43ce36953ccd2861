// SPDX-License-Identifier: MIT
// sim_event: one JSON object per line on stdout for test harnesses (the ready line and events).
// Owns JSON escaping and flushing; must not decide which events exist (callers do).
#ifndef ESPSIM_EVENT_H
#define ESPSIM_EVENT_H

#include <stdint.h>

typedef struct {
    char buf[8192];
    unsigned len;
    int first;
} sim_ev_t;

void sim_ev_begin(sim_ev_t *e, const char *event);
void sim_ev_str(sim_ev_t *e, const char *key, const char *val);
void sim_ev_num(sim_ev_t *e, const char *key, int64_t val);
void sim_ev_hex(sim_ev_t *e, const char *key, uint32_t val); // "0x1000" string
void sim_ev_bool(sim_ev_t *e, const char *key, int val);
void sim_ev_end(sim_ev_t *e); // writes the line to stdout and flushes

// Shorthand for an event with only a "detail" string (or none when detail is NULL).
void sim_event_simple(const char *event, const char *detail);

// When set, events other than "ready" and "exit" are not printed.
extern int sim_ev_quiet;

#endif
