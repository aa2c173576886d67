/*
 * api_util — helpers shared by the HTTP route files (see api_util.h).
 *
 * Routing is a table per file of (method, pattern, handler); a pattern's
 * "{id}" segment takes a positive decimal number, handed to the handler in
 * order. A path that matches a pattern with another method is a 405 that
 * says which methods work; a path that matches nothing is left to the
 * caller (404).
 */
#include "api_util.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- JSON in and out ---------------------------------------------------- */

void reply_json(http_req *r, int status, json_t *j) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!s) {
    http_reply_error(r, 500, "internal", "Could not build the answer.");
    return;
  }
  http_reply_take(r, status, "application/json", s, strlen(s));
}

static json_t *parse_body(http_req *r) {
  json_error_t e;
  json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
  if (!j) {
    char msg[300];
    snprintf(msg, sizeof msg, "The body is not valid JSON (line %d: %s).", e.line, e.text);
    http_reply_error(r, 400, "bad_request", msg);
    return NULL;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    http_reply_error(r, 400, "bad_request", "The body must be a JSON object.");
    return NULL;
  }
  return j;
}

void reply_items(http_req *r, int code, json_t *items) {
  if (code) {
    json_decref(items);
    reply_store_error(r, code);
    return;
  }
  reply_json(r, 200, json_pack("{s:o}", "items", items));
}

json_t *body_object(http_req *r) {
  if (!r->body || r->body_len == 0) {
    http_reply_error(r, 400, "bad_request", "The request needs a JSON body.");
    return NULL;
  }
  return parse_body(r);
}

json_t *body_object_opt(http_req *r, int *failed) {
  *failed = 0;
  if (!r->body || r->body_len == 0) return NULL;
  json_t *j = parse_body(r);
  if (!j) *failed = 1;
  return j;
}

json_t *attendance_json(const char *stored) {
  json_t *a = stored ? json_loads(stored, 0, NULL) : NULL;
  json_t *sec = a ? json_object_get(a, "seconds") : NULL;
  if (!json_is_integer(sec)) {
    json_decref(a);
    return json_null();
  }
  json_object_set_new(a, "minutes", json_integer((json_integer_value(sec) + 30) / 60));
  return a;
}

json_t *user_json(const store_user *u) {
  return json_pack("{s:I, s:s, s:s, s:{s:I, s:s}, s:b, s:b, s:b, s:b, s:b}", "id",
                   (json_int_t)u->id, "login", u->login, "name", u->name, "department", "id",
                   (json_int_t)u->department_id, "name", u->department, "responsible",
                   store_user_is_responsible(u), "admin", u->is_admin, "management", u->management,
                   "facilitate_otj", u->facilitate_otj, "active", u->active);
}

int require_user(http_req *r, store_user *u) {
  unsigned char digest[AUTH_TOKEN_HASH_LEN];
  if (r->token[0] && auth_token_digest(r->token, strlen(r->token), digest) == 0 &&
      store_session_user(r->d->db, digest, (int64_t)time(NULL), u) == 0)
    return 0;
  http_reply_error(r, 401, "unauthorized",
                   r->token[0] ? "Your session has expired; log in again." : "Log in first.");
  return -1;
}

int require_admin(http_req *r, store_user *u) {
  if (require_user(r, u)) return -1;
  if (u->is_admin) return 0;
  http_reply_error(r, 403, "forbidden", "Only an administrator may do this.");
  return -1;
}

void reply_error_json(http_req *r, int status, const char *code, json_t *extra, const char *fmt,
                      ...) {
  char msg[API_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
  if (j && extra) json_object_update(j, extra);
  json_decref(extra);
  reply_json(r, status, j);
}

void reply_tasks_limit(http_req *r, const store_limit *l, const char *place, const char *lead,
                       const char *tail) {
  char where[128], why[API_MESSAGE_MAX];
  store_limit_where(l, place, where, sizeof where);
  store_limit_describe(l, place, why, sizeof why);
  reply_error_json(
      r, 422, "too_large",
      json_pack("{s:s, s:I, s:s}", "limit", l->limit, "max", (json_int_t)l->max, "where", where),
      "%s%s.%s", lead, why, tail);
}

void reply_store_error(http_req *r, int code) {
  reply_store_error_msg(r, code, store_errmsg(r->d->db));
}

void reply_store_error_msg(http_req *r, int code, const char *msg) {
  switch (code) {
  case STORE_NOTFOUND: reply_error_json(r, 404, "not_found", NULL, "%s", msg); break;
  case STORE_CONFLICT: reply_error_json(r, 409, "conflict", NULL, "%s", msg); break;
  case STORE_INVALID: reply_error_json(r, 422, "invalid", NULL, "%s", msg); break;
  case STORE_BUSY:
    http_add_header(r, "Retry-After", "1");
    reply_error_json(r, 503, "unavailable", NULL, "The database is busy; try again in a moment.");
    break;
  default:
    log_event(LOG_ERROR, "storage error", "error=%s", msg);
    reply_error_json(r, 500, "internal", NULL, "Something went wrong on our side; try again.");
  }
}

/* ---- routing ------------------------------------------------------------- */

/* 1 when path matches pattern; fills ids[] from its {id} segments. */
static int match(const char *path, const char *pattern, int64_t *ids) {
  int k = 0;
  while (*pattern && *path) {
    if (!strncmp(pattern, "{id}", 4)) {
      if (*path < '1' || *path > '9') return 0;
      char *end;
      errno = 0;
      long long v = strtoll(path, &end, 10);
      if (errno || (*end && *end != '/') || k >= API_MAX_IDS) return 0;
      ids[k++] = v;
      path = end;
      pattern += 4;
      continue;
    }
    if (*pattern != *path) return 0;
    pattern++;
    path++;
  }
  if (*path == '/' && path[1] == '\0') path++; /* a trailing slash is fine */
  return *pattern == '\0' && *path == '\0';
}

static const char *method_name(http_method m) {
  switch (m) {
  case HTTP_GET: return "GET";
  case HTTP_POST: return "POST";
  case HTTP_PUT: return "PUT";
  case HTTP_PATCH: return "PATCH";
  case HTTP_DELETE: return "DELETE";
  default: return "?";
  }
}

int api_dispatch(http_req *r, const api_route *routes, size_t n) {
  char allow[64] = "";
  int64_t ids[API_MAX_IDS];
  for (size_t i = 0; i < n; i++) {
    memset(ids, 0, sizeof ids);
    if (!match(r->path, routes[i].pattern, ids)) continue;
    if (routes[i].method == r->method) {
      routes[i].fn(r, ids);
      return 1;
    }
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
             method_name(routes[i].method));
  }
  if (!allow[0]) return 0;
  http_add_header(r, "Allow", allow);
  reply_error_json(r, 405, "bad_request", NULL, "Use %s for this address.", allow);
  return 1;
}

int64_t query_int(const http_req *r, const char *name, int64_t def) {
  char v[32];
  if (http_query(r, name, v, sizeof v) <= 0) return def;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  return errno || *end ? def : (int64_t)x;
}

/* ---- tasks ------------------------------------------------------------- */

static char *own(api_tasks *t, char *s) {
  if (!s) return NULL;
  char **grown = realloc(t->owned, sizeof *grown * (size_t)(t->owned_n + 1));
  if (!grown) {
    free(s);
    return NULL;
  }
  t->owned = grown;
  t->owned[t->owned_n++] = s;
  return s;
}

void api_tasks_free(api_tasks *t) {
  for (int i = 0; i < t->owned_n; i++) free(t->owned[i]);
  free(t->owned);
  free(t->items);
  memset(t, 0, sizeof *t);
}

/* 1 when v is an integer index into an options array of n entries. */
static int option_index(const json_t *v, size_t n) {
  return json_is_integer(v) && json_integer_value(v) >= 0 && (size_t)json_integer_value(v) < n;
}

int api_tasks_parse(const json_t *arr, const char *place, api_tasks *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!json_is_array(arr)) {
    snprintf(err, errlen, "%s: must be an array of tasks", place);
    return -1;
  }
  size_t n = json_array_size(arr);
  out->items = calloc(n ? n : 1, sizeof *out->items);
  if (!out->items) {
    snprintf(err, errlen, "%s: out of memory", place);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *t = json_array_get(arr, i);
    store_task_in *ti = &out->items[i];
    if (!json_is_object(t)) {
      snprintf(err, errlen, "%s[%zu]: a task is an object {kind, text, ...}", place, i);
      goto fail;
    }
    const char *kind = json_string_value(json_object_get(t, "kind"));
    const char *text = json_string_value(json_object_get(t, "text"));
    const json_t *options = json_object_get(t, "options");
    const json_t *correct = json_object_get(t, "correct");
    if (!kind || (strcmp(kind, "question") && strcmp(kind, "observe"))) {
      snprintf(err, errlen, "%s[%zu].kind: must be \"question\" or \"observe\"", place, i);
      goto fail;
    }
    if (!text || !*text) {
      snprintf(err, errlen, "%s[%zu].text: a task needs a text", place, i);
      goto fail;
    }
    if (!strcmp(kind, "observe") &&
        ((options && !json_is_null(options)) || (correct && !json_is_null(correct)))) {
      snprintf(err, errlen,
               "%s[%zu]: an observe task is marked pass/fail by the "
               "responsible; it has no options or correct answer",
               place, i);
      goto fail;
    }
    size_t nopt = 0;
    if (options && !json_is_null(options)) {
      nopt = json_array_size(options);
      int ok = json_is_array(options) && nopt >= 2;
      for (size_t k = 0; ok && k < nopt; k++) ok = json_is_string(json_array_get(options, k));
      if (!ok) {
        snprintf(err, errlen, "%s[%zu].options: must be an array of at least two strings", place,
                 i);
        goto fail;
      }
    }
    if (correct && !json_is_null(correct)) {
      int ok = nopt > 0;
      if (ok && json_is_array(correct)) {
        ok = json_array_size(correct) > 0;
        for (size_t k = 0; ok && k < json_array_size(correct); k++)
          ok = option_index(json_array_get(correct, k), nopt);
      } else if (ok) {
        ok = option_index(correct, nopt);
      }
      if (!ok) {
        snprintf(err, errlen,
                 "%s[%zu].correct: must be the index of an option (or an "
                 "array of indexes), counting from 0",
                 place, i);
        goto fail;
      }
    }
    ti->kind = kind;
    ti->text = text;
    if (nopt && !(ti->options_json = own(out, json_dumps(options, JSON_COMPACT)))) goto oom;
    if (correct && !json_is_null(correct) &&
        !(ti->correct_json = own(out, json_dumps(correct, JSON_COMPACT | JSON_ENCODE_ANY))))
      goto oom;
  }
  out->n = (int)n;
  return 0;
oom:
  snprintf(err, errlen, "%s: out of memory", place);
fail:
  api_tasks_free(out);
  return -1;
}

typedef struct tasks_ctx {
  json_t *arr;
  int with_correct;
} tasks_ctx;

static int task_to_json(const store_task *t, void *ud) {
  tasks_ctx *c = ud;
  json_t *o = json_pack("{s:s, s:s}", "kind", t->kind, "text", t->text);
  if (!o) return -1;
  if (t->options_json) json_object_set_new(o, "options", json_loads(t->options_json, 0, NULL));
  if (c->with_correct && t->correct_json)
    json_object_set_new(o, "correct", json_loads(t->correct_json, JSON_DECODE_ANY, NULL));
  json_array_append_new(c->arr, o);
  return 0;
}

json_t *api_tasks_json(store *s, int64_t module_id, int with_correct) {
  tasks_ctx c = {json_array(), with_correct};
  if (!c.arr) return NULL;
  if (store_module_tasks(s, module_id, task_to_json, &c) != 0) {
    json_decref(c.arr);
    return NULL;
  }
  return c.arr;
}

/* ---- password hashing on the worker pool -------------------------------- */

typedef struct hash_job {
  uv_work_t work;
  http_req *r;
  const char *const *passwords;
  char (*hashes)[AUTH_HASH_MAX];
  int n;
  int ok;
  api_hashed_fn done;
  void *ctx;
} hash_job;

static int hash_jobs_running;

static void hash_work(uv_work_t *w) {
  hash_job *j = w->data;
  j->ok = 1;
  for (int i = 0; i < j->n && j->ok; i++)
    if (auth_hash_password(j->passwords[i], j->hashes[i]) != 0) j->ok = 0;
}

static void hash_after(uv_work_t *w, int status) {
  hash_job *j = w->data;
  hash_jobs_running--;
  http_req *r = j->r;
  j->done(r, j->ctx, status == 0 && j->ok);
  http_req_unref(r);
  free(j);
}

int api_hash_passwords(http_req *r, const char *const *passwords, char (*hashes)[AUTH_HASH_MAX],
                       int n, api_hashed_fn done, void *ctx) {
  if (hash_jobs_running >= API_HASH_JOBS_MAX) return -1;
  hash_job *j = calloc(1, sizeof *j);
  if (!j) return -1;
  *j = (hash_job){
      .r = r, .passwords = passwords, .hashes = hashes, .n = n, .done = done, .ctx = ctx};
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, hash_work, hash_after) != 0) {
    http_req_unref(r);
    free(j);
    return -1;
  }
  hash_jobs_running++;
  return 0;
}
