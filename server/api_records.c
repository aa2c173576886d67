/*
 * api_records — records an inspector trusts (DESIGN §8):
 *
 *   GET /api/admin/audit/verify   the audit chain checked end to end (admins)
 *   GET /api/completions/{id}     one completion's printable record
 *
 * The check walks the whole audit log on libuv's worker pool with a
 * read-only connection of its own (WAL: it reads a snapshot while otjd
 * writes on), so neither the loop nor the workers' shared handle wait for
 * it. A record names the audit entry of its approval and that entry's hash,
 * which the chain vouches for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_util.h"
#include "otjd.h"

/* ---- GET /api/admin/audit/verify ---------------------------------------- */

typedef struct verify_job {
  uv_work_t work;
  http_req *r;
  char path[4200];
  int code;
  store_audit_check check;
  char err[STORE_ERRMSG_MAX + 64];
} verify_job;

static void verify_work(uv_work_t *w) {
  verify_job *j = w->data;
  j->code = store_audit_verify_file(j->path, &j->check, j->err, sizeof j->err);
}

/* The verdict as both the API and `otjd verify-audit` print it. */
json_t *api_audit_verdict(const store_audit_check *c) {
  if (c->ok)
    return json_pack("{s:b, s:I, s:s}", "ok", 1, "entries", (json_int_t)c->entries, "head",
                     c->head);
  return json_pack("{s:b, s:I, s:I}", "ok", 0, "entries", (json_int_t)c->entries, "first_bad",
                   (json_int_t)c->first_bad);
}

static void verify_done(uv_work_t *w, int status) {
  verify_job *j = w->data;
  http_req *r = j->r;
  if (status != 0)
    http_reply_error(r, 503, "unavailable", "The check was cancelled; try again.");
  else if (j->code != 0)
    reply_store_error_msg(r, j->code, j->err);
  else
    reply_json(r, 200, api_audit_verdict(&j->check));
  http_req_unref(r);
  free(j);
}

static void audit_verify(http_req *r, const int64_t *ids) {
  (void)ids;
  store_user a;
  if (require_admin(r, &a)) return;
  verify_job *j = calloc(1, sizeof *j);
  if (!j) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  j->r = r;
  snprintf(j->path, sizeof j->path, "%s/otj.db", r->d->cfg.data_dir);
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, verify_work, verify_done) != 0) {
    http_req_unref(r);
    free(j);
    http_reply_error(r, 500, "internal", "Could not start the check.");
  }
}

/* ---- GET /api/completions/{id} -------------------------------------------- */

typedef struct record_ctx {
  http_req *r;
  const store_user *viewer;
  json_t *out;
  int hidden;
} record_ctx;

static json_t *time_json(int64_t t) {
  if (!t) return json_null();
  char buf[32];
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_pack("{s:I, s:s}", "at", (json_int_t)t, "iso", buf);
}

/* The answer to task i as the completion kept it: an array of
 * {task, value, by}, or (older completions) an object {"<task>": value}. */
static json_t *answer_of(json_t *answers, size_t i) {
  if (json_is_array(answers)) {
    size_t k;
    json_t *a;
    json_array_foreach(answers, k, a) {
      if (json_integer_value(json_object_get(a, "task")) == (json_int_t)i)
        return json_pack("{s:O, s:O?}", "value", json_object_get(a, "value"), "by",
                         json_object_get(a, "by"));
    }
  } else if (json_is_object(answers)) {
    char key[24];
    snprintf(key, sizeof key, "%zu", i);
    json_t *v = json_object_get(answers, key);
    if (v) return json_pack("{s:O}", "value", v);
  }
  return json_null();
}

static json_t *mark_of(json_t *marks, size_t i) {
  size_t k;
  json_t *m;
  if (json_is_array(marks)) json_array_foreach(marks, k, m) {
      if (json_integer_value(json_object_get(m, "task")) == (json_int_t)i)
        return json_pack("{s:O, s:O?, s:O*}", "result", json_object_get(m, "result"), "note",
                         json_object_get(m, "note"), "evidence", json_object_get(m, "evidence"));
    }
  return json_null();
}

static int record_cb(const store_record *c, void *ud) {
  record_ctx *x = ud;
  store *s = x->r->d->db;
  int v = store_record_visible(s, x->viewer, c);
  if (v < 0) return v;
  if (v == 0) {
    x->hidden = 1;
    return 0;
  }
  json_t *answers = c->answers_json ? json_loads(c->answers_json, 0, NULL) : NULL;
  json_t *marks = c->marks_json ? json_loads(c->marks_json, 0, NULL) : NULL;
  json_t *tasks = api_tasks_json(s, c->module_id, 0);
  if (!tasks) tasks = json_array();
  size_t i;
  json_t *t;
  json_array_foreach(tasks, i, t) {
    json_object_set_new(t, "index", json_integer((json_int_t)i));
    json_object_set_new(t, "answer", answer_of(answers, i));
    json_object_set_new(t, "mark", mark_of(marks, i));
  }
  json_decref(answers);
  json_decref(marks);

  json_t *o = json_pack("{s:I, s:{s:I, s:s, s:s}, s:{s:I, s:s}, s:{s:I, s:s}, s:o, s:o, s:s?}",
                        "id", (json_int_t)c->id, "learner", "id", (json_int_t)c->learner_id,
                        "login", c->learner_login, "name", c->learner_name, "department", "id",
                        (json_int_t)c->department_id, "name", c->department, "module", "id",
                        (json_int_t)c->module_id, "title", c->module_title, "completed",
                        time_json(c->completed_at), "tasks", tasks, "note", c->note);
  if (!o) return STORE_ERR;
  json_object_set_new(
      o, "path",
      c->path_title ? json_pack("{s:I, s:s}", "id", (json_int_t)c->path_id, "title", c->path_title)
                    : json_null());
  json_object_set_new(o, "approved_by",
                      c->approved_by ? json_pack("{s:I, s:s?}", "id", (json_int_t)c->approved_by,
                                                 "name", c->approved_by_name)
                                     : json_null());
  json_object_set_new(o, "room",
                      c->room_id ? json_pack("{s:s, s:s?, s:o, s:o}", "id", c->room_id, "code",
                                             c->room_code, "opened", time_json(c->room_opened_at),
                                             "closed", time_json(c->room_closed_at))
                                 : json_null());
  /* when the learner was present in the room, as the completion kept it:
   * {seconds, intervals, minutes}; null when none was kept (completed
   * alone, or approved before attendance was kept) */
  json_object_set_new(o, "attendance", attendance_json(c->attendance_json));
  /* both sides of the sign-off: the responsible's decision and, where the
   * module asks for it, the learner's confirmation */
  int64_t decided = c->decided_at ? c->decided_at : c->approved_by ? c->completed_at : 0;
  json_object_set_new(o, "decided", time_json(decided)); /* older rows: approval = completion */
  json_object_set_new(o, "confirmed", c->confirmed_at ? time_json(c->confirmed_at) : json_null());
  int64_t entry = 0;
  char hex[STORE_AUDIT_HASH_BYTES * 2 + 1];
  int code =
      c->approved_by ? store_audit_hash_of_completion(s, c->id, &entry, hex) : STORE_NOTFOUND;
  if (code < 0 && code != STORE_NOTFOUND) {
    json_decref(o);
    return code;
  }
  json_object_set_new(o, "audit",
                      code == 0 ? json_pack("{s:I, s:s}", "entry", (json_int_t)entry, "hash", hex)
                                : json_null());
  x->out = o;
  return 0;
}

static void completion_record(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  record_ctx x = {.r = r, .viewer = &u};
  int code = store_completion_get(r->d->db, ids[0], record_cb, &x);
  if (code == STORE_NOTFOUND || (code == 0 && x.hidden)) {
    /* the same answer whether it does not exist or is not the caller's */
    http_reply_error(r, 404, "not_found", "There is no completion with that id that you may see.");
    return;
  }
  if (code != 0 || !x.out) {
    json_decref(x.out);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  reply_json(r, 200, x.out);
}

/* ---- routes ------------------------------------------------------------- */

static const api_route RECORD_ROUTES[] = {
    {HTTP_GET, "/api/admin/audit/verify", audit_verify},
    {HTTP_GET, "/api/completions/{id}", completion_record},
};

int api_records_handle(http_req *r) {
  return api_dispatch(r, RECORD_ROUTES, sizeof RECORD_ROUTES / sizeof RECORD_ROUTES[0]);
}
