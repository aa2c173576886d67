/*
 * api_org — the learner's and the responsible's side of the HTTP API:
 * GET /api/me/paths (R4, R5), POST /api/modules/{id}/complete (R5),
 * GET /api/otj/pending (R6) and GET /api/completions (JSON or CSV).
 *
 * Every answer is computed from the store when asked (nothing is cached
 * here), on the loop thread's SQLite handle: these are short reads and one
 * small write per completion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_util.h"
#include "requests.h"

#define RESPONSIBLES_IN_MESSAGE 3 /* names spelled out in the pop-up text */

/* ---- responsibles within reach (the R5 pop-up) ---------------------------- */

static int person_to_json(const store_person *p, void *ud) {
  json_array_append_new(ud, json_pack("{s:I, s:s, s:s, s:{s:I, s:s}}", "id", (json_int_t)p->id,
                                      "login", p->login, "name", p->name, "department", "id",
                                      (json_int_t)p->department_id, "name", p->department));
  return 0;
}

/* The responsibles who reach the learner, as a JSON array; NULL on error. */
static json_t *responsibles_json(store *s, int64_t learner_id) {
  json_t *arr = json_array();
  if (arr && store_responsibles_of(s, learner_id, person_to_json, arr) != 0) {
    json_decref(arr);
    return NULL;
  }
  return arr;
}

/* "Reach out to ...": the sentence the pop-up shows. */
static void reach_out_message(char *out, size_t cap, const char *module, const json_t *resp) {
  size_t n = json_array_size(resp);
  if (n == 0) {
    snprintf(out, cap,
             "\"%s\" is On-the-Job training and must be done with a "
             "responsible, but nobody can facilitate it for your department "
             "yet; ask your manager or an administrator.",
             module);
    return;
  }
  int used = snprintf(out, cap,
                      "\"%s\" is On-the-Job training: a responsible runs it "
                      "with you and approves it. Reach out to ",
                      module);
  for (size_t i = 0; i < n && i < RESPONSIBLES_IN_MESSAGE && used > 0 && (size_t)used < cap; i++) {
    const json_t *p = json_array_get(resp, i);
    used += snprintf(out + used, cap - (size_t)used, "%s%s (%s)",
                     i == 0 ? "" : (i + 1 == n ? " or " : ", "),
                     json_string_value(json_object_get(p, "name")),
                     json_string_value(json_object_get(json_object_get(p, "department"), "name")));
  }
  if (used > 0 && (size_t)used < cap)
    snprintf(out + used, cap - (size_t)used, "%s.",
             n > RESPONSIBLES_IN_MESSAGE ? " or another responsible" : "");
}

/* ---- GET /api/me/paths ----------------------------------------------------- */

typedef struct paths_ctx {
  store *s;
  int64_t learner_id;
  json_t *paths; /* the answer's array */
  json_t *cur;   /* the path being filled */
  int64_t cur_id;
  json_t *responsibles; /* fetched once, when some module waits for OTJ */
  int64_t cooldown_s;   /* between two asks for one module */
  int failed;
} paths_ctx;

static int path_step(const store_path_step *st, void *ud) {
  paths_ctx *c = ud;
  if (st->path_id != c->cur_id) {
    c->cur_id = st->path_id;
    c->cur = json_pack("{s:I, s:s, s:I, s:n, s:[]}", "id", (json_int_t)st->path_id, "title",
                       st->path_title, "shared_at", (json_int_t)st->shared_at, "next", "modules");
    if (!c->cur) return c->failed = 1;
    json_array_append_new(c->paths, c->cur);
  }
  json_t *m =
      json_pack("{s:I, s:s, s:s, s:b, s:i, s:i, s:s}", "id", (json_int_t)st->module_id, "title",
                st->module_title, "type", st->module_type, "otj", st->otj, "position", st->position,
                "tasks", st->task_count, "state", store_step_state_name(st->state));
  if (!m) return c->failed = 1;
  if (st->state == STORE_STEP_COMPLETED)
    json_object_set_new(m, "completed_at", json_integer(st->completed_at));
  if (st->state == STORE_STEP_COMPLETED && st->expires_at)
    json_object_set_new(m, "valid_until", json_integer(st->expires_at));
  if (st->expired_at) json_object_set_new(m, "expired_at", json_integer(st->expired_at));
  if (st->state == STORE_STEP_AVAILABLE || st->state == STORE_STEP_OTJ_WAITING)
    json_object_set_new(c->cur, "next", json_integer(st->module_id));
  if (st->state == STORE_STEP_OTJ_WAITING) {
    /* the cached statement of store_learner_paths is busy: a different
     * query (store_responsibles_of) is fine here */
    if (!c->responsibles && !(c->responsibles = responsibles_json(c->s, c->learner_id)))
      return c->failed = 1;
    char msg[API_MESSAGE_MAX];
    reach_out_message(msg, sizeof msg, st->module_title, c->responsibles);
    json_object_set(m, "responsibles", c->responsibles);
    json_object_set_new(m, "message", json_string(msg));
    /* Ask for OTJ: the learner's open request, and when they may ask again */
    int64_t first = 0, last = 0;
    int open = store_request_open(c->s, c->learner_id, st->module_id, &first, &last);
    if (open < 0) return c->failed = 1;
    if (open) {
      json_object_set_new(m, "requested_at", json_integer(last));
      json_object_set_new(m, "ask_again_at", json_integer(last + c->cooldown_s));
    }
  }
  json_array_append_new(json_object_get(c->cur, "modules"), m);
  return 0;
}

static void api_me_paths(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  paths_ctx c = {.s = r->d->db,
                 .learner_id = u.id,
                 .paths = json_array(),
                 .cooldown_s = (int64_t)r->d->cfg.ask_cooldown_s};
  int code = c.paths ? store_learner_paths(r->d->db, u.id, path_step, &c) : -1;
  json_decref(c.responsibles);
  if (code < 0 || c.failed) {
    json_decref(c.paths);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  reply_json(r, 200, json_pack("{s:o}", "paths", c.paths));
}

/* ---- who may see a module (R4) ------------------------------------------- */

typedef struct module_find {
  int64_t module_id;
  int found;
  int state;
  int64_t path_id;
  char path_title[128];
} module_find;

static int find_in_paths(const store_path_step *st, void *ud) {
  module_find *f = ud;
  if (st->module_id != f->module_id) return 0;
  /* the most useful place: where it is next, else the first seen */
  if (!f->found || st->state == STORE_STEP_AVAILABLE || st->state == STORE_STEP_OTJ_WAITING) {
    f->found = 1;
    f->state = st->state;
    f->path_id = st->path_id;
    snprintf(f->path_title, sizeof f->path_title, "%s", st->path_title);
  }
  return 0;
}

/* R4: reads module f->module_id into *m and where it sits in u's paths into
 * *f. Returns 0 when u may see it (on a path shared with u, or u is an
 * administrator); otherwise answers (404 for an unknown module and for one
 * u cannot see, alike) and returns -1. */
static int module_visible(http_req *r, const store_user *u, store_module *m, module_find *f) {
  store *s = r->d->db;
  int code = store_module_by_id(s, f->module_id, m);
  if (code) {
    reply_store_error(r, code);
    return -1;
  }
  code = store_learner_paths(s, u->id, find_in_paths, f);
  if (code < 0) {
    reply_store_error(r, code);
    return -1;
  }
  if (!f->found && !u->is_admin) {
    http_reply_error(r, 404, "not_found",
                     "That module is not on any learning path shared with you.");
    return -1;
  }
  return 0;
}

/* ---- POST /api/modules/{id}/complete ------------------------------------- */

typedef struct check_ctx {
  const json_t *answers; /* array, one value per task index; may be NULL */
  json_t *wrong;         /* task indexes */
  json_t *given;         /* {"index": value} of the question tasks */
  int checked;           /* question tasks with a correct answer */
} check_ctx;

static int int_cmp(const void *a, const void *b) {
  json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
  return (x > y) - (x < y);
}

/* 1 when `answer` is `correct`: the same index, or the same set of them. */
static int answer_matches(const json_t *correct, const json_t *answer) {
  if (json_is_integer(correct))
    return json_is_integer(answer) && json_integer_value(answer) == json_integer_value(correct);
  if (!json_is_array(correct) || !json_is_array(answer)) return 0;
  size_t n = json_array_size(correct);
  if (json_array_size(answer) != n || n == 0) return 0;
  json_int_t a[n], c[n];
  for (size_t i = 0; i < n; i++) {
    if (!json_is_integer(json_array_get(answer, i))) return 0;
    a[i] = json_integer_value(json_array_get(answer, i));
    c[i] = json_integer_value(json_array_get(correct, i));
  }
  qsort(a, n, sizeof a[0], int_cmp);
  qsort(c, n, sizeof c[0], int_cmp);
  return memcmp(a, c, sizeof a) == 0;
}

static int check_task(const store_task *t, void *ud) {
  check_ctx *c = ud;
  if (strcmp(t->kind, "question") != 0) return 0;
  const json_t *a = json_array_get(c->answers, (size_t)t->position);
  if (a && !json_is_null(a)) {
    char key[16];
    snprintf(key, sizeof key, "%d", t->position);
    json_object_set(c->given, key, (json_t *)a);
  }
  if (!t->correct_json) return 0;
  c->checked++;
  json_t *correct = json_loads(t->correct_json, JSON_DECODE_ANY, NULL);
  if (!a || !answer_matches(correct, a)) json_array_append_new(c->wrong, json_integer(t->position));
  json_decref(correct);
  return 0;
}

/* The path's next module after a completion, for the answer. */
typedef struct next_ctx {
  int64_t path_id;
  json_t *next; /* {id, title, state} or stays NULL */
} next_ctx;

static int find_path_next(const store_path_step *st, void *ud) {
  next_ctx *c = ud;
  if (st->path_id != c->path_id) return 0;
  if (st->state == STORE_STEP_AVAILABLE || st->state == STORE_STEP_OTJ_WAITING) {
    c->next =
        json_pack("{s:I, s:s, s:b, s:s}", "id", (json_int_t)st->module_id, "title",
                  st->module_title, "otj", st->otj, "state", store_step_state_name(st->state));
    return 1;
  }
  return 0;
}

static void api_complete(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  store *s = r->d->db;
  int64_t module_id = ids[0];
  store_module m;
  module_find f = {.module_id = module_id};
  if (module_visible(r, &u, &m, &f)) return; /* the same 404 as GET */
  int code;
  int failed = 0;
  json_t *body = body_object_opt(r, &failed);
  if (failed) return;

  if (m.otj) {
    json_t *resp = responsibles_json(s, u.id);
    char msg[API_MESSAGE_MAX];
    reach_out_message(msg, sizeof msg, m.title, resp);
    json_decref(body);
    reply_error_json(r, 409, "otj_required", json_pack("{s:o*}", "responsibles", resp), "%s", msg);
    return;
  }
  int done = store_completion_exists(s, u.id, module_id, NULL);
  if (done != 0) {
    json_decref(body);
    if (done < 0)
      reply_store_error(r, done);
    else
      reply_error_json(r, 409, "conflict", NULL, "You have completed \"%s\" already.", m.title);
    return;
  }
  int next = store_learner_next_in_path(s, u.id, module_id, NULL);
  if (next != 1) {
    json_decref(body);
    if (next < 0)
      reply_store_error(r, next);
    else
      reply_error_json(r, 409, "not_next", NULL,
                       "\"%s\" is not your next module: finish the modules "
                       "before it in your learning path first.",
                       m.title);
    return;
  }

  const json_t *answers = body ? json_object_get(body, "answers") : NULL;
  if (answers && !json_is_array(answers)) {
    json_decref(body);
    http_reply_error(r, 400, "bad_request",
                     "\"answers\" must be an array with one value per task.");
    return;
  }
  check_ctx c = {answers, json_array(), json_object(), 0};
  code = store_module_tasks(s, module_id, check_task, &c);
  if (code != 0 || !c.wrong || !c.given) {
    json_decref(c.wrong);
    json_decref(c.given);
    json_decref(body);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  if (json_array_size(c.wrong) > 0) {
    size_t nw = json_array_size(c.wrong);
    json_decref(c.given);
    json_decref(body);
    reply_error_json(r, 422, "wrong_answers", json_pack("{s:o}", "wrong", c.wrong),
                     "%zu of %d answers %s not right; nothing was recorded. "
                     "Look at the questions again and retry.",
                     nw, c.checked, nw == 1 ? "is" : "are");
    return;
  }
  json_decref(c.wrong);
  char *answers_json = json_object_size(c.given) ? json_dumps(c.given, JSON_COMPACT) : NULL;
  json_decref(c.given);
  json_decref(body);

  int64_t now = (int64_t)time(NULL), completion_id = 0, path_id = 0;
  code = store_complete_self(s, now, u.id, module_id, answers_json, &completion_id, &path_id);
  free(answers_json);
  if (code < 0) {
    reply_store_error(r, code);
    return;
  }
  next_ctx nc = {path_id, NULL};
  store_learner_paths(s, u.id, find_path_next, &nc);
  reply_json(r, 200,
             json_pack("{s:{s:I, s:I, s:I, s:I}, s:o?}", "completion", "id",
                       (json_int_t)completion_id, "module_id", (json_int_t)module_id, "path_id",
                       (json_int_t)path_id, "completed_at", (json_int_t)now, "next", nc.next));
}

/* ---- GET /api/otj/pending (R6) ------------------------------------------- */

typedef struct pending_ctx {
  store *s;
  json_t *items;
  json_t *tasks_by_module; /* "id" -> [{kind, text}], fetched once each */
  json_t *asked;           /* "learner:module" keys counted in requests */
  int requests;            /* learners and modules asked for */
  int failed;
} pending_ctx;

/* Asked first, oldest ask first; then the rest in the list's own order
 * (longest waiting first). */
static int by_request(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  const json_t *rx = json_object_get(x, "requested_at"), *ry = json_object_get(y, "requested_at");
  if (rx && ry) {
    json_int_t p = json_integer_value(rx), q = json_integer_value(ry);
    if (p != q) return p < q ? -1 : 1;
  } else if (rx || ry) {
    return rx ? -1 : 1;
  }
  json_int_t i = json_integer_value(json_object_get(x, "_at")),
             k = json_integer_value(json_object_get(y, "_at"));
  return (i > k) - (i < k);
}

/* Sorts the items by_request, keeping the order of equals. */
static void sort_asked_first(json_t *items) {
  size_t n = json_array_size(items);
  if (n < 2) return;
  json_t **v = malloc(n * sizeof *v);
  if (!v) return;
  for (size_t i = 0; i < n; i++) {
    v[i] = json_incref(json_array_get(items, i));
    json_object_set_new(v[i], "_at", json_integer((json_int_t)i));
  }
  qsort(v, n, sizeof *v, by_request);
  json_array_clear(items);
  for (size_t i = 0; i < n; i++) {
    json_object_del(v[i], "_at");
    json_array_append_new(items, v[i]);
  }
  free(v);
}

/* [{kind, text}] of a module, cached per request. */
static json_t *short_tasks(pending_ctx *c, int64_t module_id) {
  char key[24];
  snprintf(key, sizeof key, "%lld", (long long)module_id);
  json_t *t = json_object_get(c->tasks_by_module, key);
  if (t) return t;
  json_t *full = api_tasks_json(c->s, module_id, 0);
  if (!full) return NULL;
  size_t i;
  json_t *v;
  json_array_foreach(full, i, v) json_object_del(v, "options");
  json_object_set_new(c->tasks_by_module, key, full);
  return full;
}

static int pending_item(const store_pending *p, void *ud) {
  pending_ctx *c = ud;
  json_t *tasks = short_tasks(c, p->module_id);
  if (!tasks) return c->failed = 1;
  json_t *item =
      json_pack("{s:{s:I, s:s, s:s, s:{s:I, s:s}}, s:{s:I, s:s, s:O}, s:{s:I, s:s}, s:I}",
                "learner", "id", (json_int_t)p->learner_id, "login", p->learner_login, "name",
                p->learner_name, "department", "id", (json_int_t)p->department_id, "name",
                p->department, "module", "id", (json_int_t)p->module_id, "title", p->module_title,
                "tasks", tasks, "path", "id", (json_int_t)p->path_id, "title", p->path_title,
                "waiting_since", (json_int_t)p->waiting_since);
  if (!item) return c->failed = 1;
  /* Ask for OTJ: since when the learner asks (their oldest open request) */
  int64_t first = 0;
  int open = store_request_open(c->s, p->learner_id, p->module_id, &first, NULL);
  if (open < 0) {
    json_decref(item);
    return c->failed = 1;
  }
  if (open) {
    json_object_set_new(item, "requested_at", json_integer(first));
    /* one per learner and module asked for, whatever the paths */
    char key[48];
    snprintf(key, sizeof key, "%lld:%lld", (long long)p->learner_id, (long long)p->module_id);
    if (!json_object_get(c->asked, key)) {
      json_object_set_new(c->asked, key, json_true());
      c->requests++;
    }
  }
  json_array_append_new(c->items, item);
  return 0;
}

static void api_pending(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  if (!store_user_is_responsible(&u)) {
    http_reply_error(r, 403, "forbidden",
                     "Only a responsible (Management with Facilitate OTJ) "
                     "sees who waits for On-the-Job training.");
    return;
  }
  pending_ctx c = {r->d->db, json_array(), json_object(), json_object(), 0, 0};
  int code = c.items && c.tasks_by_module && c.asked
                 ? store_pending_list(r->d->db, u.id, pending_item, &c)
                 : STORE_ERR;
  json_decref(c.tasks_by_module);
  json_decref(c.asked);
  if (code < 0 || c.failed) {
    json_decref(c.items);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  sort_asked_first(c.items);
  reply_json(r, 200,
             json_pack("{s:I, s:i, s:o}", "count", (json_int_t)json_array_size(c.items), "requests",
                       c.requests, "items", c.items));
}

/* ---- GET /api/completions (JSON or CSV) ------------------------------------ */

static void iso_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int completion_json(const store_completion_row *c, void *ud) {
  char when[32];
  iso_time(c->completed_at, when);
  json_t *o = json_pack("{s:I, s:{s:I, s:s, s:s, s:s}, s:{s:I, s:s}, s:I, s:s}", "id",
                        (json_int_t)c->id, "learner", "id", (json_int_t)c->user_id, "login",
                        c->login, "name", c->name, "department", c->department, "module", "id",
                        (json_int_t)c->module_id, "title", c->module_title, "completed_at",
                        (json_int_t)c->completed_at, "completed_at_iso", when);
  if (!o) return -1;
  json_object_set_new(
      o, "path",
      c->path_title ? json_pack("{s:I, s:s}", "id", (json_int_t)c->path_id, "title", c->path_title)
                    : json_null());
  json_object_set_new(
      o, "approved_by",
      c->approved_by_name
          ? json_pack("{s:I, s:s}", "id", (json_int_t)c->approved_by, "name", c->approved_by_name)
          : json_null());
  json_object_set_new(o, "room", c->room_id ? json_string(c->room_id) : json_null());
  json_object_set_new(o, "attendance", attendance_json(c->attendance));
  json_object_set_new(o, "expires_at", c->expires_at ? json_integer(c->expires_at) : json_null());
  json_object_set_new(o, "expired", json_boolean(c->expired));
  json_object_set_new(o, "decided_at", c->decided_at ? json_integer(c->decided_at) : json_null());
  json_object_set_new(o, "confirmed_at",
                      c->confirmed_at ? json_integer(c->confirmed_at) : json_null());
  json_array_append_new(ud, o);
  return 0;
}

/* One RFC 4180 field: quoted when it holds a comma, quote, CR or LF, with
 * quotes doubled. A field a spreadsheet would run as a formula (it starts
 * with = + - @, a tab or a CR) is neutralised the way OWASP advises: a single
 * quote in front, inside a quoted field; the text stays readable. */
static void csv_field(FILE *f, const char *v, int last) {
  if (!v) v = "";
  int formula = *v && strchr("=+-@\t\r", *v) != NULL;
  if (formula || strpbrk(v, ",\"\r\n")) {
    fputc('"', f);
    if (formula) fputc('\'', f);
    for (const char *p = v; *p; p++) {
      if (*p == '"') fputc('"', f);
      fputc(*p, f);
    }
    fputc('"', f);
  } else {
    fputs(v, f);
  }
  fputs(last ? "\r\n" : ",", f);
}

static int completion_csv(const store_completion_row *c, void *ud) {
  FILE *f = ud;
  char id[24], when[32];
  snprintf(id, sizeof id, "%lld", (long long)c->id);
  iso_time(c->completed_at, when);
  csv_field(f, id, 0);
  csv_field(f, when, 0);
  csv_field(f, c->login, 0);
  csv_field(f, c->name, 0);
  csv_field(f, c->department, 0);
  csv_field(f, c->module_title, 0);
  csv_field(f, c->path_title, 0);
  csv_field(f, c->approved_by_name, 0);
  csv_field(f, c->room_id, 0);
  char minutes[24] = "";
  json_t *att = attendance_json(c->attendance);
  if (json_is_object(att))
    snprintf(minutes, sizeof minutes, "%lld",
             (long long)json_integer_value(json_object_get(att, "minutes")));
  json_decref(att);
  csv_field(f, minutes, 0);
  char expires[32] = "";
  if (c->expires_at) iso_time(c->expires_at, expires);
  csv_field(f, expires, 0);
  csv_field(f, c->expired ? "yes" : "no", 0);
  char decided[32] = "", confirmed[32] = "";
  if (c->decided_at) iso_time(c->decided_at, decided);
  if (c->confirmed_at) iso_time(c->confirmed_at, confirmed);
  csv_field(f, decided, 0);
  csv_field(f, confirmed, 1);
  return 0;
}

static void api_completions(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  store_scope scope = u.is_admin                      ? STORE_SCOPE_ALL
                      : store_user_is_responsible(&u) ? STORE_SCOPE_REACH
                                                      : STORE_SCOPE_OWN;
  char format[16] = "json";
  http_query(r, "format", format, sizeof format);
  if (!strcmp(format, "csv")) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
      http_reply_error(r, 500, "internal", "Out of memory.");
      return;
    }
    fputs("id,completed_at,login,name,department,module,path,approved_by,"
          "room,minutes_present,expires_at,expired,decided_at,confirmed_at\r\n",
          f);
    int code = store_completions_list(r->d->db, scope, u.id, completion_csv, f);
    fclose(f);
    if (code < 0) {
      free(buf);
      reply_store_error(r, code);
      return;
    }
    http_add_header(r, "Content-Disposition", "attachment; filename=\"completions.csv\"");
    http_reply_take(r, 200, "text/csv; charset=utf-8", buf, len);
    return;
  }
  if (strcmp(format, "json") != 0) {
    http_reply_error(r, 400, "bad_request", "format is json or csv.");
    return;
  }
  json_t *items = json_array();
  int code =
      items ? store_completions_list(r->d->db, scope, u.id, completion_json, items) : STORE_ERR;
  if (code != 0) {
    json_decref(items);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  static const char *const scope_names[] = {"all", "reach", "own"};
  reply_json(r, 200,
             json_pack("{s:s, s:I, s:o}", "scope", scope_names[scope], "count",
                       (json_int_t)json_array_size(items), "items", items));
}

/* ---- GET /api/modules/{id} ------------------------------------------------ */

/* A module as its learner sees it: the tasks without their correct
 * answers. Only for modules on a path shared with the caller (R4), or for
 * an administrator. */
static void api_module(http_req *r, const int64_t *ids) {
  store_user u;
  if (require_user(r, &u)) return;
  store *s = r->d->db;
  store_module m;
  module_find f = {.module_id = ids[0]};
  if (module_visible(r, &u, &m, &f)) return;
  json_t *tasks = api_tasks_json(s, m.id, 0);
  if (!tasks) {
    http_reply_error(r, 500, "internal", "Could not read the module's tasks.");
    return;
  }
  json_t *j = json_pack("{s:I, s:s, s:s, s:b, s:o}", "id", (json_int_t)m.id, "title", m.title,
                        "type", m.type, "otj", m.otj, "tasks", tasks);
  if (f.found) {
    json_object_set_new(j, "state", json_string(store_step_state_name(f.state)));
    json_object_set_new(
        j, "path", json_pack("{s:I, s:s}", "id", (json_int_t)f.path_id, "title", f.path_title));
  }
  reply_json(r, 200, j);
}

/* ---- routes ------------------------------------------------------------- */

static const api_route ORG_ROUTES[] = {
    {HTTP_GET, "/api/me/paths", api_me_paths},
    {HTTP_GET, "/api/modules/{id}", api_module},
    {HTTP_POST, "/api/modules/{id}/complete", api_complete},
    {HTTP_GET, "/api/otj/pending", api_pending},
    {HTTP_GET, "/api/completions", api_completions},
};

int api_org_handle(http_req *r) {
  return api_dispatch(r, ORG_ROUTES, sizeof ORG_ROUTES / sizeof ORG_ROUTES[0]);
}
