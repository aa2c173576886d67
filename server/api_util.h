/*
 * api_util — what the route files of the HTTP API share (api.c, api_org.c,
 * api_admin.c, api_import.c), and nobody else: JSON bodies in and out, the
 * caller's identity, mapping store codes onto HTTP statuses, routing by
 * method and path pattern, module tasks as JSON, and hashing passwords on
 * libuv's worker pool.
 *
 * Every reply_* / require_* function answers the request itself when it
 * fails; the caller just returns.
 */
#ifndef OTJ_API_UTIL_H
#define OTJ_API_UTIL_H

#include <jansson.h>
#include <stdint.h>

#include "auth.h"
#include "http.h"
#include "store.h"

#define API_MAX_IDS       4 /* {id} segments in one route pattern */
#define API_HASH_JOBS_MAX 2 /* admin password-hash jobs running at once */
#define API_MESSAGE_MAX   512

/* Answers `j` (consumed) as JSON with `status`. */
void reply_json(http_req *r, int status, json_t *j);

/* Answers a list: {"items": items} when `code` is 0, else the store error
 * (and items is released). Consumes items. */
void reply_items(http_req *r, int code, json_t *items);

/* Parses the body as a JSON object, or answers 400 and returns NULL. */
json_t *body_object(http_req *r);

/* Like body_object, but an empty body is fine: returns NULL with *failed 0.
 * A body that is not a JSON object answers 400 and sets *failed to 1. */
json_t *body_object_opt(http_req *r, int *failed);

/* The public face of a user (no hash). */
json_t *user_json(const store_user *u);

/* A completion's attendance as the API shows it, from the stored JSON
 * {seconds, intervals}: that object with `minutes` (rounded) added, or
 * JSON null when none was kept (NULL, unreadable, or no seconds). */
json_t *attendance_json(const char *stored);

/* Resolves the caller. Returns 0 and fills *u, or answers 401 and returns -1. */
int require_user(http_req *r, store_user *u);

/* As require_user, and answers 403 (returning -1) when the caller is not an
 * administrator. */
int require_admin(http_req *r, store_user *u);

/* Answers a failed store call: NOTFOUND 404, CONFLICT 409, INVALID 422,
 * BUSY 503, else 500, with store_errmsg as the message. */
void reply_store_error(http_req *r, int code);

/* 422 for a task list over a cap of the store (store_tasks_check):
 * {error:"too_large", limit, max, where, message}. `place` is where the list
 * sits in the request ("tasks", "modules[2].tasks"); `lead` and `tail` are
 * sentences before and after the breach ("" for none). */
void reply_tasks_limit(http_req *r, const store_limit *l, const char *place, const char *lead,
                       const char *tail);
/* As reply_store_error, with the message of another handle (a worker's). */
void reply_store_error_msg(http_req *r, int code, const char *msg);

/* {"error": code, "message": printf(...)} with extra members from `extra`
 * (consumed, may be NULL). */
void reply_error_json(http_req *r, int status, const char *code, json_t *extra, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));

/* One route: method, pattern with "{id}" segments (a positive integer). */
typedef struct api_route {
  http_method method;
  const char *pattern;
  void (*fn)(http_req *r, const int64_t *ids);
} api_route;

/* Finds the route for r->path. Returns 0 when no pattern matches (nothing
 * answered); 1 when one does: its handler ran, or a 405 naming the methods
 * that would work was sent. */
int api_dispatch(http_req *r, const api_route *routes, size_t n);

/* A query argument as an int64 (def when absent or not a number). */
int64_t query_int(const http_req *r, const char *name, int64_t def);

/* Tasks as the admin API and the import take them:
 * [{kind:"question"|"observe", text, options?:[string...], correct?: int|[int...]}].
 * The parsed form points into the JSON (keep it alive) and owns the option
 * and answer texts it made. */
typedef struct api_tasks {
  store_task_in *items;
  int n;
  char **owned;
  int owned_n;
} api_tasks;

/* Parses `arr`; on a bad task writes "<place>[i].<field>: why" into err and
 * returns -1. */
int api_tasks_parse(const json_t *arr, const char *place, api_tasks *out, char *err, size_t errlen);
void api_tasks_free(api_tasks *t);

/* The module's tasks as a JSON array: {kind, text, options?} and, when
 * `with_correct`, correct. NULL on a store error. */
json_t *api_tasks_json(store *s, int64_t module_id, int with_correct);

/* Hashes n passwords (argon2id, ~100 ms each) on a worker thread, one after
 * another, then calls done(r, ctx, ok) on the loop thread with hashes[]
 * filled (ok = 0 when a hash failed). passwords and hashes must stay valid
 * until done runs; the request is kept alive until then. Returns 0 when the
 * work is queued, -1 (nothing queued, done never called) when too many jobs
 * run already or libuv refused. */
typedef void (*api_hashed_fn)(http_req *r, void *ctx, int ok);
int api_hash_passwords(http_req *r, const char *const *passwords, char (*hashes)[AUTH_HASH_MAX],
                       int n, api_hashed_fn done, void *ctx);

/* Route tables of the other files; each returns api_dispatch's value. */
int api_org_handle(http_req *r);
int api_admin_handle(http_req *r);
int api_records_handle(http_req *r);

/* The audit check's verdict as JSON: {ok:true, entries, head} or
 * {ok:false, entries, first_bad} (api_records.c; `otjd verify-audit` too). */
json_t *api_audit_verdict(const store_audit_check *c);

/* POST /api/otj/requests (api_ask.c). */
int api_ask_handle(http_req *r);
int api_redrill_handle(http_req *r); /* api_redrill.c */

/* POST /api/admin/import (api_import.c); the caller is an administrator. */
void api_import(http_req *r, const store_user *admin);

#endif
