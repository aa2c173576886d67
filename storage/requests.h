/* requests.h — "Ask for OTJ": a learner's request that a responsible run an
 * OTJ module with them (table otj_requests, see migrations.c).
 *
 * A request is open from the moment it is made until the learner completes
 * the module (a trigger on completions ends it). A learner asks again for
 * the same module only after a cool-down. Every function returns 0 (or a
 * count) or a negative STORE_ code, with the message in store_errmsg.
 */
#ifndef OTJ_REQUESTS_H
#define OTJ_REQUESTS_H

#include <stdint.h>

#include "store.h"

/* One responsible the request was shown to, and whether they were online. */
typedef struct store_recipient {
  int64_t responsible_id;
  int online;
} store_recipient;

/* In one write transaction: refuses (STORE_CONFLICT, *last_at set to the
 * learner's latest request for the module) when that request is younger
 * than cooldown_s at `now`; else stores the request and its n recipients and
 * sets *id. The caller has checked that the module waits for the learner. */
int store_request_create(store *s, int64_t now, int64_t learner_id, int64_t module_id,
                         int64_t path_id, uint32_t cooldown_s, const store_recipient *to, size_t n,
                         int64_t *id, int64_t *last_at);

/* The learner's open requests for the module: 1 with *first_at (the oldest
 * open one: since when they wait for an answer) and *last_at (the newest:
 * the cool-down counts from it), 0 when there is none open. Either pointer
 * may be NULL. */
int store_request_open(store *s, int64_t learner_id, int64_t module_id, int64_t *first_at,
                       int64_t *last_at);

/* The latest request of the learner for the module, open or not: 1 with
 * *at, or 0. */
int store_request_last(store *s, int64_t learner_id, int64_t module_id, int64_t *at);

/* The dashboard's count of open requests is store_pending_asked_by_learner
 * (store.h): only what still waits for the learner counts. */

#endif
