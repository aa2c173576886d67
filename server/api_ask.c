/*
 * api_ask — POST /api/otj/requests: a learner asks for On-the-Job training
 * ("Ask for OTJ" in the pop-up).
 *
 * The one design idea: the checks that need only SQLite come first and
 * answer at once; then one round trip to Redis tells which responsibles
 * within reach are online now (live_online_read); then the request and
 * everyone it was shown to are stored in one transaction (which checks the
 * cool-down again, so two taps at once make one request); only then is it
 * pushed to the responsibles (live_ask_arrived) and answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_util.h"
#include "live.h"
#include "requests.h"

#define ASK_MAX_RECIPIENTS 256 /* responsibles one request is shown to */

typedef struct ask_job {
  http_req *r;
  int64_t learner;
  char learner_name[128];
  int64_t module;
  char title[128];
  int64_t path;
  size_t n;
  int64_t ids[ASK_MAX_RECIPIENTS];
  json_t *people; /* [{id, name, department}] in the order of ids */
} ask_job;

static int collect(const store_person *p, void *ud) {
  ask_job *j = ud;
  if (j->n == ASK_MAX_RECIPIENTS) return 1;
  j->ids[j->n++] = p->id;
  json_array_append_new(j->people, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)p->id, "name",
                                             p->name, "department", p->department));
  return 0;
}

static void cooldown_reply(http_req *r, const char *title, int64_t last, int64_t now) {
  int64_t again = last + (int64_t)r->d->cfg.ask_cooldown_s;
  int64_t wait = again > now ? again - now : 1;
  char ra[24];
  snprintf(ra, sizeof ra, "%lld", (long long)wait);
  http_add_header(r, "Retry-After", ra);
  reply_error_json(r, 429, "cooldown",
                   json_pack("{s:I, s:I, s:I}", "requested_at", (json_int_t)last, "ask_again_at",
                             (json_int_t)again, "retry_after", (json_int_t)wait),
                   "You asked for \"%s\" a moment ago; your responsibles have been told. You can "
                   "ask again in %lld minute%s.",
                   title, (long long)((wait + 59) / 60), (wait + 59) / 60 == 1 ? "" : "s");
}

static void ask_free(ask_job *j) {
  json_decref(j->people);
  http_req_unref(j->r);
  free(j);
}

/* Presence is known (online[i] for ids[i]): store, push, answer. */
static void ask_store(void *ud, const int *online, size_t n) {
  ask_job *j = ud;
  http_req *r = j->r;
  store_recipient to[ASK_MAX_RECIPIENTS];
  for (size_t i = 0; i < j->n; i++)
    to[i] = (store_recipient){j->ids[i], online && i < n ? online[i] : 0};
  int64_t now = (int64_t)time(NULL), id = 0, last = 0;
  int code = store_request_create(r->d->db, now, j->learner, j->module, j->path,
                                  r->d->cfg.ask_cooldown_s, to, j->n, &id, &last);
  if (code == STORE_CONFLICT) {
    cooldown_reply(r, j->title, last, now);
    ask_free(j);
    return;
  }
  if (code < 0) {
    reply_store_error(r, code);
    ask_free(j);
    return;
  }
  proto_ask ask = {(uint64_t)j->learner, proto_s(j->learner_name), (uint64_t)j->module,
                   proto_s(j->title), (uint64_t)now};
  live_ask_arrived(r->d, &ask, j->ids, j->n);
  json_t *online_names = json_array();
  for (size_t i = 0; i < j->n; i++) {
    json_t *p = json_array_get(j->people, i);
    json_object_set_new(p, "online", json_boolean(to[i].online));
    if (to[i].online) json_array_append(online_names, json_object_get(p, "name"));
  }
  reply_json(r, 201,
             json_pack("{s:{s:I, s:{s:I, s:s}, s:I, s:I, s:O}, s:o}", "request", "id",
                       (json_int_t)id, "module", "id", (json_int_t)j->module, "title", j->title,
                       "requested_at", (json_int_t)now, "ask_again_at",
                       (json_int_t)(now + (int64_t)r->d->cfg.ask_cooldown_s), "responsibles",
                       j->people, "online", online_names));
  ask_free(j);
}

static void api_ask(http_req *r, const int64_t *ids) {
  (void)ids;
  store_user u;
  if (require_user(r, &u)) return;
  store *s = r->d->db;
  json_t *body = body_object(r);
  if (!body) return;
  json_t *mv = json_object_get(body, "module");
  json_int_t module = json_is_integer(mv) ? json_integer_value(mv) : 0;
  json_decref(body);
  if (module <= 0) {
    http_reply_error(r, 400, "bad_request",
                     "Send {\"module\": ID}: the id of the On-the-Job training to ask for.");
    return;
  }
  store_module m;
  int code = store_module_by_id(s, (int64_t)module, &m);
  if (code) {
    reply_store_error(r, code);
    return;
  }
  int done = store_completion_exists(s, u.id, m.id, NULL);
  if (done < 0) {
    reply_store_error(r, done);
    return;
  }
  if (done) {
    reply_error_json(r, 409, "already_completed", NULL,
                     "You have completed \"%s\" already; there is nothing to ask for.", m.title);
    return;
  }
  int64_t path = 0;
  int waits = m.otj ? store_learner_otj_pending(s, u.id, m.id, &path, NULL) : 0;
  if (waits < 0) {
    reply_store_error(r, waits);
    return;
  }
  if (!waits) {
    reply_error_json(r, 403, "not_waiting", NULL,
                     "\"%s\" is not On-the-Job training you wait for: ask when it is the next "
                     "module of one of your learning paths.",
                     m.title);
    return;
  }
  int64_t last = 0;
  int had = store_request_last(s, u.id, m.id, &last);
  if (had < 0) {
    reply_store_error(r, had);
    return;
  }
  int64_t now = (int64_t)time(NULL);
  if (had && now - last < (int64_t)r->d->cfg.ask_cooldown_s) {
    cooldown_reply(r, m.title, last, now);
    return;
  }
  ask_job *j = calloc(1, sizeof *j);
  if (!j || !(j->people = json_array())) {
    free(j);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  j->learner = u.id;
  snprintf(j->learner_name, sizeof j->learner_name, "%s", u.name);
  j->module = m.id;
  snprintf(j->title, sizeof j->title, "%s", m.title);
  j->path = path;
  code = store_responsibles_of(s, u.id, collect, j);
  if (code < 0) {
    json_decref(j->people);
    free(j);
    reply_store_error(r, code);
    return;
  }
  if (j->n == 0) {
    json_decref(j->people);
    free(j);
    reply_error_json(r, 409, "no_responsible", NULL,
                     "Nobody can facilitate \"%s\" for your department yet, so there is nobody "
                     "to ask; tell your manager or an administrator.",
                     m.title);
    return;
  }
  j->r = r;
  http_req_ref(r);
  if (live_online_read(j->ids, j->n, ask_store, j) != 0)
    ask_store(j, NULL, 0); /* Redis is away: asked all the same, nobody known online */
}

static const api_route ASK_ROUTES[] = {
    {HTTP_POST, "/api/otj/requests", api_ask},
};

int api_ask_handle(http_req *r) {
  return api_dispatch(r, ASK_ROUTES, sizeof ASK_ROUTES / sizeof ASK_ROUTES[0]);
}
