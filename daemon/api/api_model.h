/* SPDX-License-Identifier: MIT */
/* api_model.h — JSON of the live model (api_json.c): slots, the station, a job row, recipes,
 * and the per-slot result counts. Built on api_int.h only. */
#ifndef API_MODEL_H
#define API_MODEL_H

#include "api_int.h"

cJSON *api__slot_json(api_t *a, size_t i);
cJSON *api__station_json(api_t *a);
/* The Job object of docs/API.md; `detail` adds the members only GET /api/v1/jobs/{uuid} has. */
cJSON *api__job_json(const store_job_row_t *row, bool detail);
cJSON *api__recipe_ref(const recipe_t *r);
/* slots that currently use `hash` (a JSON array of names) */
cJSON *api__recipe_slots(api_t *a, const char *hash);
void api__count_add(api_t *a, const char *slot, const char *result, uint64_t n);

#endif
