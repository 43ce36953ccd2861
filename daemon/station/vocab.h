/* SPDX-License-Identifier: MIT */
/* vocab.h — one vocabulary for every layer (docs/ARCHITECTURE.md): job states, slot states,
 * results, error classes with their operator words and remedy hints, and the chips with their
 * properties, from the tables of the code that defines them (jobs/job.h, jobmgr.h, est_err.h,
 * the chip table). The API serves it (GET /api/v1/vocabulary); the dashboard and the command
 * line use these words instead of copies of their own. */
#ifndef VOCAB_H
#define VOCAB_H

#include <cJSON.h>

#include "est_err.h"
#include "job.h"

/* An operator's words for a job state ("Writing the flash"); "" only if the table lacks it. */
const char *vocab_job_state_words(job_state_t s);
/* A few plain words for an error class ("No answer from the board"). */
const char *vocab_class_words(est_class_t c);
/* What the operator should do about an error class (the remedy hint shown with a failed job;
 * "" for none). Named as it was when it lived in est_err.h, where the command line finds it. */
const char *est_class_hint(est_class_t c);
/* {"job_states": [{name, words}], "slot_states": [..], "results": [..],
 *  "error_classes": [{name, words, hint}], "chips": [{name, words, bootloader_offset, ...}]} */
cJSON *vocab_json(void);

#endif
