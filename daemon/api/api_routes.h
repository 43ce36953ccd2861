/* SPDX-License-Identifier: MIT */
/* api_routes.h — the endpoints, one function per route, for the router (api.c) and the files
 * that define them: api_json.c (live model), api_data.c (the record), api_stats.c (statistics),
 * api_write.c (slots, recipes), api_images.c (images). An endpoint file never calls another
 * endpoint file: what two of them share goes down into api_model.h, api_defer.h or api_int.h. */
#ifndef API_ROUTES_H
#define API_ROUTES_H

#include "api_int.h"

void api__get_station(api_ctx_t *c);
void api__get_vocabulary(api_ctx_t *c);
void api__get_auth(api_ctx_t *c);
void api__get_slots(api_ctx_t *c);
void api__get_slot(api_ctx_t *c);
void api__get_events(api_ctx_t *c);
void api__get_jobs(api_ctx_t *c);
void api__get_jobs_csv(api_ctx_t *c);
void api__get_job(api_ctx_t *c);
void api__get_device(api_ctx_t *c);
void api__get_metrics(api_ctx_t *c);
void api__get_recipes(api_ctx_t *c);
void api__get_recipe(api_ctx_t *c);
void api__get_stats(api_ctx_t *c);
void api__get_images(api_ctx_t *c);
void api__put_image(api_ctx_t *c);
void api__post_start(api_ctx_t *c);
void api__post_cancel(api_ctx_t *c);
void api__put_slot_recipe(api_ctx_t *c);
void api__post_recipe(api_ctx_t *c);
void api__get_static(api_ctx_t *c);
/* pools (api_pools.c) */
void api__get_pools(api_ctx_t *c);
void api__post_pool(api_ctx_t *c);
void api__get_pool_items(api_ctx_t *c);
void api__post_pool_import(api_ctx_t *c);
void api__post_pool_void(api_ctx_t *c);

/* the CSV export's chunks (api_data.c) */
void api__stream_free(api_stream_t *s);
int api__stream_next(api_t *a, api_stream_t *s, char **buf, size_t *len);
/* apply the slot recipe choices stored in the database (api_write.c; api_new) */
void api__apply_slot_recipes(api_t *a);

#endif
