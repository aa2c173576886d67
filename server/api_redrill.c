/*
 * api_redrill — recertification on the responsible's side of the HTTP API:
 * GET /api/otj/due, the learners within reach whose approval of an OTJ
 * module expires within the re-drill window (redrill_window_days) or has
 * expired, grouped by module, so that one room can re-drill them together
 * (the room itself is opened over the websocket, `open`, under R7).
 */
#include <stdio.h>
#include <string.h>

#include "api_util.h"

typedef struct due_ctx {
  json_t *groups;
  json_t *cur; /* the group of the module being filled */
  int64_t cur_module;
  int count;
  int failed;
} due_ctx;

static int due_item(const store_due *d, void *ud) {
  due_ctx *c = ud;
  if (!c->cur || d->module_id != c->cur_module) {
    c->cur_module = d->module_id;
    c->cur = json_pack("{s:{s:I, s:s, s:i}, s:[], s:i}", "module", "id", (json_int_t)d->module_id,
                       "title", d->module_title, "validity_months", d->validity_months, "learners",
                       "may_join", 0);
    if (!c->cur) return c->failed = 1;
    json_array_append_new(c->groups, c->cur);
  }
  json_t *l = json_pack("{s:I, s:s, s:s, s:{s:I, s:s}, s:I, s:I, s:I, s:b, s:b}", "id",
                        (json_int_t)d->learner_id, "login", d->learner_login, "name",
                        d->learner_name, "department", "id", (json_int_t)d->department_id, "name",
                        d->department, "completion", (json_int_t)d->completion_id, "completed_at",
                        (json_int_t)d->completed_at, "expires_at", (json_int_t)d->expires_at,
                        "expired", d->expired, "may_join", d->may_join);
  if (!l) return c->failed = 1;
  json_array_append_new(json_object_get(c->cur, "learners"), l);
  if (d->may_join)
    json_object_set_new(c->cur, "may_join",
                        json_integer(json_integer_value(json_object_get(c->cur, "may_join")) + 1));
  c->count++;
  return 0;
}

static void api_due(http_req *r, const int64_t *ids) {
  (void)ids;
  store_user u;
  if (require_user(r, &u)) return;
  if (!store_user_is_responsible(&u)) {
    http_reply_error(r, 403, "forbidden",
                     "Only a responsible (Management with Facilitate OTJ) sees who is due "
                     "for a re-drill.");
    return;
  }
  uint32_t days = r->d->cfg.redrill_window_days;
  due_ctx c = {.groups = json_array()};
  int code =
      c.groups ? store_redrill_due(r->d->db, u.id, (int64_t)days * 86400, due_item, &c) : STORE_ERR;
  if (code < 0 || c.failed) {
    json_decref(c.groups);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  reply_json(r, 200,
             json_pack("{s:i, s:I, s:i, s:o}", "window_days", (int)days, "now",
                       (json_int_t)store_now(), "count", c.count, "groups", c.groups));
}

static const api_route REDRILL_ROUTES[] = {
    {HTTP_GET, "/api/otj/due", api_due},
};

int api_redrill_handle(http_req *r) {
  return api_dispatch(r, REDRILL_ROUTES, sizeof REDRILL_ROUTES / sizeof REDRILL_ROUTES[0]);
}
