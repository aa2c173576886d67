/*
 * api_import — POST /api/admin/import: a whole organisation as one JSON
 * document (docs/import-format.md), all or nothing.
 *
 * Three steps. (1) The document's shape is checked on the loop thread,
 * every row and field, and turned into the store's plain-data form
 * (store_import), whose strings point into the parsed JSON; the first
 * problem is answered as 422 naming its place ("users[3].department: ...").
 * (2) Plain passwords are hashed with argon2id on libuv's worker pool, one
 * after another (~100 ms and 64 MiB each), so the loop never waits on them;
 * their number per import is bounded. (3) On the worker pool again, with the
 * workers' SQLite handle, the store applies the document in ONE transaction
 * and resolves names (a failure there names its place too and leaves the
 * database as it was); a long import, or one waiting for another process's
 * lock, never holds up the loop.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_util.h"
#include "live.h"

#define IMPORT_MAX_ROWS      20000 /* per array of the document */
#define IMPORT_MAX_PASSWORDS 200   /* plain passwords hashed per import */
#define IMPORT_NAME_MAX      127
#define IMPORT_LOGIN_MAX     63

typedef struct import_job {
  json_t *doc;
  int64_t actor;
  store_import imp;
  store_import_department *departments;
  store_import_user *users;
  store_import_module *modules;
  int *flags;       /* per module: STORE_MODULE_* switches */
  api_tasks *tasks; /* per module */
  store_import_path *paths;
  store_import_sharing *sharings;
  store_import_completion *completions;
  void **blocks; /* name arrays of paths and sharings */
  int nblocks;
  const char **passwords;
  char (*hashes)[AUTH_HASH_MAX];
  int *password_user; /* users[] index of each password */
  int npasswords;
  store_limit limit; /* the cap a module's tasks break, when limit_place[0] */
  char limit_place[64];
  /* applying on the worker pool */
  uv_work_t work;
  http_req *r;
  int code;                      /* store_import_org's answer */
  char errmsg[STORE_ERRMSG_MAX]; /* its message, copied under the lock */
} import_job;

static void job_free(import_job *j) {
  if (!j) return;
  for (int i = 0; i < j->imp.module_count; i++) api_tasks_free(&j->tasks[i]);
  for (int i = 0; i < j->nblocks; i++) free(j->blocks[i]);
  free(j->blocks);
  free(j->departments);
  free(j->users);
  free(j->modules);
  free(j->flags);
  free(j->tasks);
  free(j->paths);
  free(j->sharings);
  free(j->completions);
  free(j->passwords);
  free(j->hashes);
  free(j->password_user);
  json_decref(j->doc);
  free(j);
}

static void *job_block(import_job *j, size_t n, size_t size) {
  void **grown = realloc(j->blocks, sizeof *grown * (size_t)(j->nblocks + 1));
  if (!grown) return NULL;
  j->blocks = grown;
  void *b = calloc(n ? n : 1, size);
  if (b) j->blocks[j->nblocks++] = b;
  return b;
}

/* ---- shape checks (each writes "place: why" into err and returns -1) ---- */

typedef struct errbuf {
  char *s;
  size_t cap;
} errbuf;

static int fail(errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(errbuf *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->s, e->cap, fmt, ap);
  va_end(ap);
  return -1;
}

/* Refuses members not in `allowed` (a typo must not be silently ignored). */
static int only_keys(errbuf *e, const json_t *o, const char *place, const char *const *allowed) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)o, key, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, key);
    if (!ok) return fail(e, "%s.%s: unknown field", place, key);
  }
  return 0;
}

/* A required (or optional, when !required) string of 1..max bytes. */
static int str_field(errbuf *e, const json_t *o, const char *place, const char *key, size_t max,
                     int required, const char **out) {
  const json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v || (!required && json_is_null(v))) {
    if (required) return fail(e, "%s.%s: missing", place, key);
    return 0;
  }
  const char *s = json_string_value(v);
  if (!s || !*s || strlen(s) > max)
    return fail(e, "%s.%s: must be a text of 1 to %zu characters", place, key, max);
  *out = s;
  return 0;
}

static int bool_field(errbuf *e, const json_t *o, const char *place, const char *key, int *out) {
  const json_t *v = json_object_get(o, key);
  *out = 0;
  if (!v) return 0;
  if (!json_is_boolean(v)) return fail(e, "%s.%s: must be true or false", place, key);
  *out = json_is_true(v);
  return 0;
}

/* The array member `key` of the document (absent = empty). */
static int doc_array(errbuf *e, const json_t *doc, const char *key, const json_t **out, int *n) {
  const json_t *a = json_object_get(doc, key);
  *out = a;
  *n = 0;
  if (!a) return 0;
  if (!json_is_array(a)) return fail(e, "%s: must be an array", key);
  if (json_array_size(a) > IMPORT_MAX_ROWS)
    return fail(e, "%s: at most %d rows per import", key, IMPORT_MAX_ROWS);
  *n = (int)json_array_size(a);
  return 0;
}

/* A row of array `arr` must be an object; sets place to "arr[i]". */
static const json_t *row(errbuf *e, const json_t *a, const char *arr, int i, char *place,
                         size_t cap) {
  snprintf(place, cap, "%s[%d]", arr, i);
  const json_t *o = json_array_get(a, (size_t)i);
  if (!json_is_object(o)) {
    fail(e, "%s: must be an object", place);
    return NULL;
  }
  return o;
}

/* An array of names (strings) into a block of the job. */
static int names_field(errbuf *e, import_job *j, const json_t *o, const char *place,
                       const char *key, size_t max, const char *const **out, int *n) {
  const json_t *a = json_object_get(o, key);
  *out = NULL;
  *n = 0;
  if (!a) return 0;
  if (!json_is_array(a)) return fail(e, "%s.%s: must be an array of names", place, key);
  size_t k = json_array_size(a);
  const char **names = job_block(j, k, sizeof *names);
  if (!names) return fail(e, "%s: out of memory", place);
  for (size_t i = 0; i < k; i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (!s || !*s || strlen(s) > max)
      return fail(e, "%s.%s[%zu]: must be a text of 1 to %zu characters", place, key, i, max);
    names[i] = s;
  }
  *out = names;
  *n = (int)k;
  return 0;
}

static int parse_departments(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {"name", "parent", NULL};
  char place[48];
  j->departments = calloc((size_t)n + 1, sizeof *j->departments);
  if (!j->departments) return fail(e, "departments: out of memory");
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "departments", i, place, sizeof place);
    store_import_department *d = &j->departments[i];
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "name", IMPORT_NAME_MAX, 1, &d->name) ||
        str_field(e, o, place, "parent", IMPORT_NAME_MAX, 0, &d->parent))
      return -1;
  }
  j->imp.departments = j->departments;
  j->imp.department_count = n;
  return 0;
}

static int parse_users(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {"login",      "name",           "department",
                                     "password",   "password_hash",  "admin",
                                     "management", "facilitate_otj", NULL};
  char place[48];
  j->users = calloc((size_t)n + 1, sizeof *j->users);
  j->passwords = calloc((size_t)n + 1, sizeof *j->passwords);
  j->password_user = calloc((size_t)n + 1, sizeof *j->password_user);
  if (!j->users || !j->passwords || !j->password_user) return fail(e, "users: out of memory");
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "users", i, place, sizeof place);
    store_import_user *u = &j->users[i];
    const char *password = NULL, *hash = NULL;
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "login", IMPORT_LOGIN_MAX, 1, &u->login) ||
        str_field(e, o, place, "name", IMPORT_NAME_MAX, 1, &u->name) ||
        str_field(e, o, place, "department", IMPORT_NAME_MAX, 1, &u->department) ||
        str_field(e, o, place, "password", 1024, 0, &password) ||
        str_field(e, o, place, "password_hash", AUTH_HASH_MAX - 1, 0, &hash) ||
        bool_field(e, o, place, "admin", &u->admin) ||
        bool_field(e, o, place, "management", &u->management) ||
        bool_field(e, o, place, "facilitate_otj", &u->facilitate_otj))
      return -1;
    if (!password == !hash)
      return fail(e, "%s.password: give either a password or a password_hash", place);
    if (hash && strncmp(hash, "$argon2id$", 10))
      return fail(e, "%s.password_hash: must be an argon2id hash", place);
    if (password && strlen(password) < 8)
      return fail(e, "%s.password: at least 8 characters", place);
    if (u->facilitate_otj && !u->management)
      return fail(e,
                  "%s.facilitate_otj: Facilitate OTJ is a flag of the "
                  "Management permission; set management too",
                  place);
    u->password_hash = hash;
    if (password) {
      if (j->npasswords >= IMPORT_MAX_PASSWORDS)
        return fail(e,
                    "%s.password: at most %d plain passwords per import; give "
                    "password_hash for the others or import in parts",
                    place, IMPORT_MAX_PASSWORDS);
      j->password_user[j->npasswords] = i;
      j->passwords[j->npasswords++] = password;
    }
  }
  j->imp.users = j->users;
  j->imp.user_count = n;
  return 0;
}

static int parse_modules(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {
      "title",           "type", "otj", "learner_confirm", "learner_evidence", "tasks",
      "validity_months", NULL};
  char place[48];
  j->modules = calloc((size_t)n + 1, sizeof *j->modules);
  j->tasks = calloc((size_t)n + 1, sizeof *j->tasks);
  j->flags = calloc((size_t)n + 1, sizeof *j->flags);
  if (!j->modules || !j->tasks || !j->flags) return fail(e, "modules: out of memory");
  j->imp.modules = j->modules;
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "modules", i, place, sizeof place);
    store_import_module *m = &j->modules[i];
    int confirm, learner_evidence;
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "title", IMPORT_NAME_MAX, 1, &m->title) ||
        str_field(e, o, place, "type", 16, 1, &m->type) ||
        bool_field(e, o, place, "otj", &m->otj) ||
        bool_field(e, o, place, "learner_confirm", &confirm) ||
        bool_field(e, o, place, "learner_evidence", &learner_evidence))
      return -1;
    j->flags[i] = (confirm ? STORE_MODULE_CONFIRM : 0) |
                  (learner_evidence ? STORE_MODULE_LEARNER_EVIDENCE : 0);
    if (strcmp(m->type, "quiz") && strcmp(m->type, "content") && strcmp(m->type, "video") &&
        strcmp(m->type, "document"))
      return fail(e, "%s.type: must be quiz, content, video or document", place);
    if (m->otj && strcmp(m->type, "quiz"))
      return fail(e,
                  "%s.otj: rule R3: On-the-Job training is a setting of quiz "
                  "modules only, and this is a %s module",
                  place, m->type);
    const json_t *v = json_object_get(o, "validity_months");
    if (v && !json_is_null(v)) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 ||
          json_integer_value(v) > STORE_MAX_VALIDITY_MONTHS)
        return fail(e, "%s.validity_months: must be a whole number of months from 1 to %d, or null",
                    place, STORE_MAX_VALIDITY_MONTHS);
      m->validity_months = (int)json_integer_value(v);
    }
    const json_t *t = json_object_get(o, "tasks");
    if (t) {
      char tplace[64];
      snprintf(tplace, sizeof tplace, "%s.tasks", place);
      if (api_tasks_parse(t, tplace, &j->tasks[i], e->s, e->cap)) return -1;
      j->imp.module_count = i + 1; /* so job_free frees these tasks */
      if (store_tasks_check(j->tasks[i].items, j->tasks[i].n, &j->limit)) {
        snprintf(j->limit_place, sizeof j->limit_place, "%s", tplace);
        store_limit_describe(&j->limit, tplace, e->s, e->cap);
        return -1;
      }
      m->tasks = j->tasks[i].items;
      m->task_count = j->tasks[i].n;
    }
  }
  j->imp.module_count = n;
  return 0;
}

static int parse_paths(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {"title", "modules", NULL};
  char place[48];
  j->paths = calloc((size_t)n + 1, sizeof *j->paths);
  if (!j->paths) return fail(e, "paths: out of memory");
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "paths", i, place, sizeof place);
    store_import_path *p = &j->paths[i];
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "title", IMPORT_NAME_MAX, 1, &p->title) ||
        names_field(e, j, o, place, "modules", IMPORT_NAME_MAX, &p->modules, &p->module_count))
      return -1;
  }
  j->imp.paths = j->paths;
  j->imp.path_count = n;
  return 0;
}

static int parse_sharings(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {"path", "users", "departments", NULL};
  char place[48];
  j->sharings = calloc((size_t)n + 1, sizeof *j->sharings);
  if (!j->sharings) return fail(e, "sharings: out of memory");
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "sharings", i, place, sizeof place);
    store_import_sharing *s = &j->sharings[i];
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "path", IMPORT_NAME_MAX, 1, &s->path) ||
        names_field(e, j, o, place, "users", IMPORT_LOGIN_MAX, &s->users, &s->user_count) ||
        names_field(e, j, o, place, "departments", IMPORT_NAME_MAX, &s->departments,
                    &s->department_count))
      return -1;
    if (s->user_count + s->department_count == 0)
      return fail(e, "%s: share the path with some users or departments", place);
  }
  j->imp.sharings = j->sharings;
  j->imp.sharing_count = n;
  return 0;
}

static int parse_completions(errbuf *e, import_job *j, const json_t *a, int n) {
  static const char *const keys[] = {"login", "module", "path", "completed_at", NULL};
  char place[48];
  j->completions = calloc((size_t)n + 1, sizeof *j->completions);
  if (!j->completions) return fail(e, "completions: out of memory");
  for (int i = 0; i < n; i++) {
    const json_t *o = row(e, a, "completions", i, place, sizeof place);
    store_import_completion *c = &j->completions[i];
    if (!o || only_keys(e, o, place, keys) ||
        str_field(e, o, place, "login", IMPORT_LOGIN_MAX, 1, &c->login) ||
        str_field(e, o, place, "module", IMPORT_NAME_MAX, 1, &c->module) ||
        str_field(e, o, place, "path", IMPORT_NAME_MAX, 0, &c->path))
      return -1;
    const json_t *at = json_object_get(o, "completed_at");
    if (at && (!json_is_integer(at) || json_integer_value(at) <= 0))
      return fail(e, "%s.completed_at: unix seconds, a positive integer", place);
    c->completed_at = at ? json_integer_value(at) : 0;
  }
  j->imp.completions = j->completions;
  j->imp.completion_count = n;
  return 0;
}

static int parse_doc(errbuf *e, import_job *j) {
  static const char *const keys[] = {"format", "departments", "users",       "modules",
                                     "paths",  "sharings",    "completions", NULL};
  const json_t *doc = j->doc;
  if (only_keys(e, doc, "(document)", keys)) return -1;
  const json_t *format = json_object_get(doc, "format");
  if (format && !(json_is_string(format) && !strcmp(json_string_value(format), "otj-org/1")))
    return fail(e, "format: this server reads \"otj-org/1\"");
  const json_t *a;
  int n;
  if (doc_array(e, doc, "departments", &a, &n) || parse_departments(e, j, a, n) ||
      doc_array(e, doc, "users", &a, &n) || parse_users(e, j, a, n) ||
      doc_array(e, doc, "modules", &a, &n) || parse_modules(e, j, a, n) ||
      doc_array(e, doc, "paths", &a, &n) || parse_paths(e, j, a, n) ||
      doc_array(e, doc, "sharings", &a, &n) || parse_sharings(e, j, a, n) ||
      doc_array(e, doc, "completions", &a, &n) || parse_completions(e, j, a, n))
    return -1;
  return 0;
}

/* ---- answering -------------------------------------------------------- */

/* 422/409 with {error, message, where}; `where` is the place before ": ". */
static void reply_place(http_req *r, int status, const char *code, const char *msg) {
  const char *colon = strstr(msg, ": ");
  json_t *extra = colon ? json_pack("{s:s%}", "where", msg, (size_t)(colon - msg)) : NULL;
  reply_error_json(r, status, code, extra, "The import changed nothing. %s", msg);
}

static void import_work(uv_work_t *w) {
  import_job *j = w->data;
  otjd *d = j->r->d;
  uv_mutex_lock(&d->db_worker_lock);
  j->code = store_import_org_with(d->db_worker, (int64_t)time(NULL), j->actor, &j->imp, j->flags);
  snprintf(j->errmsg, sizeof j->errmsg, "%s", store_errmsg(d->db_worker));
  uv_mutex_unlock(&d->db_worker_lock);
}

static void import_done(uv_work_t *w, int status) {
  import_job *j = w->data;
  http_req *r = j->r;
  int code = status == 0 ? j->code : STORE_ERR;
  if (code == STORE_INVALID) {
    reply_place(r, 422, "invalid", j->errmsg);
  } else if (code == STORE_CONFLICT) {
    reply_place(r, 409, "conflict", j->errmsg);
  } else if (code) {
    reply_store_error_msg(r, code, status == 0 ? j->errmsg : "the import was cancelled");
  } else {
    const store_import *d = &j->imp;
    live_pending_changed(r->d); /* new people and sharings: new waiting */
    reply_json(r, 200,
               json_pack("{s:{s:i, s:i, s:i, s:i, s:i, s:i}}", "imported", "departments",
                         d->department_count, "users", d->user_count, "modules", d->module_count,
                         "paths", d->path_count, "sharings", d->sharing_count, "completions",
                         d->completion_count));
  }
  http_req_unref(r);
  job_free(j);
}

static void import_apply(http_req *r, void *ctx, int ok) {
  import_job *j = ctx;
  if (!ok) {
    http_reply_error(r, 500, "internal",
                     "Could not hash the passwords; the import changed nothing.");
    job_free(j);
    return;
  }
  for (int k = 0; k < j->npasswords; k++)
    j->users[j->password_user[k]].password_hash = j->hashes[k];
  j->r = r;
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, import_work, import_done) != 0) {
    http_req_unref(r);
    job_free(j);
    http_reply_error(r, 500, "internal", "Could not start the import.");
  }
}

void api_import(http_req *r, const store_user *admin) {
  json_t *doc = body_object(r);
  if (!doc) return;
  import_job *j = calloc(1, sizeof *j);
  if (!j) {
    json_decref(doc);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  j->doc = doc;
  j->actor = admin->id;
  char err[API_MESSAGE_MAX];
  errbuf e = {err, sizeof err};
  if (parse_doc(&e, j)) {
    if (j->limit_place[0])
      reply_tasks_limit(r, &j->limit, j->limit_place, "The import changed nothing. ", "");
    else
      reply_place(r, 422, "invalid", err);
    job_free(j);
    return;
  }
  if (j->npasswords == 0) {
    import_apply(r, j, 1);
    return;
  }
  j->hashes = calloc((size_t)j->npasswords, sizeof *j->hashes);
  if (!j->hashes ||
      api_hash_passwords(r, j->passwords, j->hashes, j->npasswords, import_apply, j)) {
    job_free(j);
    http_add_header(r, "Retry-After", "1");
    http_reply_error(r, 503, "unavailable",
                     "Passwords are being hashed for other requests; try the "
                     "import again in a moment.");
  }
}
