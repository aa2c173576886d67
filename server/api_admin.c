/*
 * api_admin — the administrator's HTTP API: departments (a tree), users and
 * their permissions, modules with their tasks and the OTJ switch (R3),
 * learning paths, sharings (R4), the organisation import and the audit log
 * (R11). Every call answers 401 without a session and 403 for anyone who is
 * not an administrator.
 *
 * Rule refusals come back as 422 with a sentence a person can act on; R3
 * refusals also carry {"rule": "R3"} and are checked here before the store
 * is asked, so nothing changes and nothing is audited. The store enforces
 * the same rules again underneath.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_util.h"
#include "live.h"

#define AUDIT_PAGE_DEFAULT 50
#define AUDIT_PAGE_MAX     500
#define NAME_MAX_LEN       127
#define LOGIN_MAX_LEN      63
#define PASSWORD_MIN_LEN   8
#define PASSWORD_MAX_LEN   1024

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* Reads an optional id member: 0 when absent, 1 when a positive integer
 * (into *out), 2 when null (*out = 0), -1 otherwise. */
static int get_id(const json_t *o, const char *key, int64_t *out) {
  const json_t *v = json_object_get(o, key);
  if (!v) return 0;
  if (json_is_null(v)) {
    *out = 0;
    return 2;
  }
  if (!json_is_integer(v) || json_integer_value(v) <= 0) return -1;
  *out = json_integer_value(v);
  return 1;
}

/* An optional boolean: -1 when absent, 0/1, or -2 when of another type. */
static int get_bool(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  if (!v) return -1;
  return json_is_boolean(v) ? json_is_true(v) : -2;
}

/* An optional string of 1..max characters: NULL when absent; *bad set when
 * present but not such a string. */
static const char *get_name(const json_t *o, const char *key, size_t max, int *bad) {
  const json_t *v = json_object_get(o, key);
  if (!v) return NULL;
  const char *s = json_string_value(v);
  if (!s || !*s || strlen(s) > max) {
    *bad = 1;
    return NULL;
  }
  return s;
}

static void reply_bad_field(http_req *r, const char *field, const char *want) {
  reply_error_json(r, 400, "bad_request", json_pack("{s:s}", "field", field), "%s: %s", field,
                   want);
}

/* ---- departments ----------------------------------------------------------- */

static int department_json(const store_department *d, void *ud) {
  json_t *o = json_pack("{s:I, s:s}", "id", (json_int_t)d->id, "name", d->name);
  json_object_set_new(o, "parent_id", d->parent_id ? json_integer(d->parent_id) : json_null());
  json_array_append_new(ud, o);
  return 0;
}

static void departments_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *items = json_array();
  int code = store_departments_list(r->d->db, department_json, items);
  reply_items(r, code, items);
}

static void department_reply(http_req *r, int status, int64_t id) {
  int64_t parent = 0;
  int code = store_department_parent(r->d->db, id, &parent);
  json_t *items = json_array();
  if (code == 0) code = store_departments_list(r->d->db, department_json, items);
  json_t *found = NULL, *v;
  size_t i;
  json_array_foreach(items, i, v) if (json_integer_value(json_object_get(v, "id")) == id) found = v;
  if (code || !found) {
    json_decref(items);
    reply_store_error(r, code ? code : STORE_NOTFOUND);
    return;
  }
  json_incref(found);
  json_decref(items);
  reply_json(r, status, found);
}

static void departments_create(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0;
  int64_t parent = 0, id = 0;
  const char *name = get_name(b, "name", NAME_MAX_LEN, &bad);
  if (!name) {
    json_decref(b);
    reply_bad_field(r, "name", "a department needs a name of 1 to 127 characters");
    return;
  }
  if (get_id(b, "parent_id", &parent) < 0) {
    json_decref(b);
    reply_bad_field(r, "parent_id", "the id of an existing department, or null");
    return;
  }
  int code = store_admin_department_create(r->d->db, now_s(), a.id, name, parent, &id);
  json_decref(b);
  if (code == STORE_INVALID) {
    reply_error_json(r, 422, "invalid", NULL,
                     "There is no department with id %lld to put it under.", (long long)parent);
    return;
  }
  if (code) {
    reply_store_error(r, code);
    return;
  }
  department_reply(r, 201, id);
}

static void departments_update(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0;
  int64_t parent = 0;
  const char *name = get_name(b, "name", NAME_MAX_LEN, &bad);
  int has_parent = get_id(b, "parent_id", &parent);
  if (bad || has_parent < 0) {
    json_decref(b);
    reply_bad_field(r, bad ? "name" : "parent_id",
                    bad ? "1 to 127 characters"
                        : "the id of an existing department, or null for a root");
    return;
  }
  /* one transaction with its audit entry ("department.updated") */
  int code =
      store_admin_department_update(r->d->db, now_s(), a.id, ids[0], name, has_parent > 0, parent);
  json_decref(b);
  if (code == STORE_INVALID && has_parent > 0) {
    reply_error_json(r, 422, "invalid", json_pack("{s:s}", "rule", "R1"),
                     "Departments form a tree: %s.",
                     strstr(store_errmsg(r->d->db), "cycle")
                         ? "a department cannot be moved below itself or one of its own "
                           "sub-departments (that would make a cycle)"
                         : "the new parent department does not exist");
    return;
  }
  if (code) {
    reply_store_error(r, code);
    return;
  }
  department_reply(r, 200, ids[0]);
}

/* ---- users and permissions -------------------------------------------------- */

static int user_item(const store_user *u, void *ud) {
  json_array_append_new(ud, user_json(u));
  return 0;
}

static void users_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *items = json_array();
  int code = store_users_list(r->d->db, user_item, items);
  reply_items(r, code, items);
}

static void user_reply(http_req *r, int status, int64_t id) {
  store_user u;
  int code = store_user_by_id(r->d->db, id, &u);
  if (code)
    reply_store_error(r, code);
  else
    reply_json(r, status, user_json(&u));
}

typedef struct new_user {
  json_t *body;
  int64_t actor;
  const char *password;
  char hash[1][AUTH_HASH_MAX];
} new_user;

/* Creates the user of `nu` with nu->hash[0]; answers. Frees nu. */
static void user_create_apply(http_req *r, void *ctx, int ok) {
  new_user *nu = ctx;
  json_t *b = nu->body;
  store *s = r->d->db;
  if (!ok) {
    http_reply_error(r, 500, "internal", "Could not hash the password.");
    goto out;
  }
  int64_t dept = 0, id = 0;
  get_id(b, "department_id", &dept);
  /* the user, their permissions and the audit entry in one transaction */
  store_user_in in = {json_string_value(json_object_get(b, "login")),
                      json_string_value(json_object_get(b, "name")),
                      dept,
                      nu->hash[0],
                      get_bool(b, "admin") == 1,
                      get_bool(b, "management") == 1,
                      get_bool(b, "facilitate_otj") == 1};
  int code = store_admin_user_create(s, now_s(), nu->actor, &in, &id);
  if (code == STORE_CONFLICT) {
    reply_error_json(r, 409, "conflict", NULL, "The login \"%s\" is taken.",
                     json_string_value(json_object_get(b, "login")));
    goto out;
  }
  if (code == STORE_INVALID) {
    reply_error_json(r, 422, "invalid", NULL, "There is no department with id %lld.",
                     (long long)dept);
    goto out;
  }
  if (code)
    reply_store_error(r, code);
  else
    user_reply(r, 201, id);
out:
  json_decref(b);
  free(nu);
}

static void users_create(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0;
  int64_t dept = 0;
  const char *login = get_name(b, "login", LOGIN_MAX_LEN, &bad);
  const char *name = get_name(b, "name", NAME_MAX_LEN, &bad);
  const char *password = json_string_value(json_object_get(b, "password"));
  const char *hash = json_string_value(json_object_get(b, "password_hash"));
  const char *why = NULL, *field = NULL;
  if (!login)
    field = "login", why = "1 to 63 characters";
  else if (!name)
    field = "name", why = "1 to 127 characters";
  else if (get_id(b, "department_id", &dept) != 1)
    field = "department_id", why = "the id of the user's department";
  else if (!password == !hash)
    field = "password", why = "give a password (or an argon2id password_hash)";
  else if (password && (strlen(password) < PASSWORD_MIN_LEN || strlen(password) > PASSWORD_MAX_LEN))
    field = "password", why = "8 to 1024 characters";
  else if (hash && (strncmp(hash, "$argon2id$", 10) || strlen(hash) >= AUTH_HASH_MAX))
    field = "password_hash", why = "an argon2id hash as crypto_pwhash_str makes it";
  else if (get_bool(b, "admin") == -2 || get_bool(b, "management") == -2 ||
           get_bool(b, "facilitate_otj") == -2)
    field = "admin", why = "admin, management and facilitate_otj are true or false";
  else if (get_bool(b, "facilitate_otj") == 1 && get_bool(b, "management") != 1)
    field = "facilitate_otj", why = "Facilitate OTJ is a flag of Management: grant management too";
  if (field) {
    json_decref(b);
    reply_bad_field(r, field, why);
    return;
  }
  new_user *nu = calloc(1, sizeof *nu);
  if (!nu) {
    json_decref(b);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  nu->body = b;
  nu->actor = a.id;
  nu->password = password;
  if (hash) {
    snprintf(nu->hash[0], sizeof nu->hash[0], "%s", hash);
    user_create_apply(r, nu, 1);
    return;
  }
  if (api_hash_passwords(r, &nu->password, nu->hash, 1, user_create_apply, nu)) {
    json_decref(b);
    free(nu);
    http_add_header(r, "Retry-After", "1");
    http_reply_error(r, 503, "unavailable",
                     "Passwords are being hashed for other requests; try again "
                     "in a moment.");
  }
}

static void users_update(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0;
  int64_t dept = 0;
  const char *name = get_name(b, "name", NAME_MAX_LEN, &bad);
  int has_dept = get_id(b, "department_id", &dept);
  int admin = get_bool(b, "admin");
  int active = get_bool(b, "active");
  if (bad || has_dept < 0 || has_dept == 2 || admin == -2 || active == -2) {
    json_decref(b);
    reply_bad_field(r,
                    bad            ? "name"
                    : admin == -2  ? "admin"
                    : active == -2 ? "active"
                                   : "department_id",
                    bad                           ? "1 to 127 characters"
                    : admin == -2 || active == -2 ? "true or false"
                                                  : "the id of an existing department");
    return;
  }
  if ((admin == 0 || active == 0) && ids[0] == a.id) {
    json_decref(b);
    reply_error_json(r, 409, "conflict", NULL,
                     admin == 0 ? "You cannot take away your own administrator right; ask "
                                  "another administrator."
                                : "You cannot deactivate yourself; ask another "
                                  "administrator.");
    return;
  }
  store_user was;
  int code = store_user_by_id(r->d->db, ids[0], &was);
  if (code == 0 && (name || dept || admin >= 0))
    code = store_user_update(r->d->db, now_s(), a.id, ids[0], name, dept, admin);
  int deactivated = 0;
  if (code == 0 && active >= 0) {
    /* sessions deleted and audited in the same transaction */
    code = store_user_set_active(r->d->db, now_s(), a.id, ids[0], active, &deactivated);
    deactivated = deactivated && !active;
  }
  json_decref(b);
  store_user now;
  if (code == 0) code = store_user_by_id(r->d->db, ids[0], &now);
  if (code) {
    reply_store_error(r, code);
    return;
  }
  /* open sockets of the user: closed for good when deactivated; when the
   * rights changed, closed so that they reconnect with the new ones */
  if (deactivated)
    live_user_changed(r->d, ids[0], 1);
  else if (now.department_id != was.department_id || now.is_admin != was.is_admin)
    live_user_changed(r->d, ids[0], 0);
  reply_json(r, 200, user_json(&now));
}

static void users_permissions(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int mgmt = get_bool(b, "management"), fac = get_bool(b, "facilitate_otj");
  json_decref(b);
  if (mgmt < 0 || fac < 0) {
    reply_bad_field(r, mgmt < 0 ? "management" : "facilitate_otj",
                    "send {\"management\": bool, \"facilitate_otj\": bool}");
    return;
  }
  if (fac && !mgmt) {
    reply_error_json(r, 422, "invalid", json_pack("{s:s}", "rule", "R2"),
                     "Facilitate OTJ is a flag of the Management permission: "
                     "grant Management too.");
    return;
  }
  store_user was;
  int code = store_user_by_id(r->d->db, ids[0], &was);
  if (code == 0) code = store_set_permission(r->d->db, now_s(), a.id, ids[0], mgmt, fac);
  if (code) {
    reply_store_error(r, code);
    return;
  }
  /* the user's open sockets reconnect with their new rights */
  if (was.management != mgmt || was.facilitate_otj != fac) live_user_changed(r->d, ids[0], 0);
  user_reply(r, 200, ids[0]);
}

/* ---- modules ------------------------------------------------------------------ */

static json_t *module_json(store *s, const store_module *m) {
  json_t *tasks = api_tasks_json(s, m->id, 1);
  if (!tasks) return NULL;
  json_t *o =
      json_pack("{s:I, s:s, s:s, s:b, s:b, s:b, s:o, s:I, s:I}", "id", (json_int_t)m->id, "title",
                m->title, "type", m->type, "otj", m->otj, "learner_confirm", m->learner_confirm,
                "learner_evidence", m->learner_evidence, "tasks", tasks, "created_at",
                (json_int_t)m->created_at, "updated_at", (json_int_t)m->updated_at);
  if (o)
    json_object_set_new(o, "validity_months",
                        m->validity_months ? json_integer(m->validity_months) : json_null());
  return o;
}

typedef struct modules_ctx {
  store *s;
  json_t *items;
} modules_ctx;

static int module_item(const store_module *m, void *ud) {
  modules_ctx *c = ud;
  json_t *o = module_json(c->s, m);
  if (!o) return -1;
  json_array_append_new(c->items, o);
  return 0;
}

static void modules_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  /* a second handle is not needed: module_item's query differs from the
   * listing's */
  modules_ctx c = {r->d->db, json_array()};
  int code = store_modules_list(r->d->db, module_item, &c);
  if (code) {
    json_decref(c.items);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  reply_json(r, 200, json_pack("{s:o}", "items", c.items));
}

static void module_reply(http_req *r, int status, int64_t id) {
  store_module m;
  int code = store_module_by_id(r->d->db, id, &m);
  json_t *o = code ? NULL : module_json(r->d->db, &m);
  if (!o)
    reply_store_error(r, code ? code : STORE_ERR);
  else
    reply_json(r, status, o);
}

static void modules_get(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  module_reply(r, 200, ids[0]);
}

static int known_type(const char *t) {
  return t && (!strcmp(t, "quiz") || !strcmp(t, "content") || !strcmp(t, "video") ||
               !strcmp(t, "document"));
}

/* Reads {title?, type?, otj?, validity_months?, tasks?} into *in (tasks into *tasks). Answers
 * 400 and returns -1 on a malformed field. */
static int module_fields(http_req *r, const json_t *b, store_module_in *in, api_tasks *tasks) {
  int bad = 0;
  memset(tasks, 0, sizeof *tasks);
  *in = (store_module_in){NULL, NULL, -1, NULL, -1, 0};
  in->title = get_name(b, "title", NAME_MAX_LEN, &bad);
  if (bad) {
    reply_bad_field(r, "title", "1 to 127 characters");
    return -1;
  }
  const json_t *type = json_object_get(b, "type");
  if (type && !known_type(json_string_value(type))) {
    reply_bad_field(r, "type", "quiz, content, video or document");
    return -1;
  }
  in->type = json_string_value(type);
  in->otj = get_bool(b, "otj");
  if (in->otj == -2) {
    reply_bad_field(r, "otj", "true or false");
    return -1;
  }
  const json_t *v = json_object_get(b, "validity_months");
  if (v) {
    /* months after its approval that a completion expires; null: never */
    json_int_t months = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_null(v) && (months < 1 || months > STORE_MAX_VALIDITY_MONTHS)) {
      reply_error_json(r, 422, "invalid", json_pack("{s:s}", "field", "validity_months"),
                       "validity_months is a whole number of months from 1 to %d, or null "
                       "(approvals never expire). Nothing was changed.",
                       STORE_MAX_VALIDITY_MONTHS);
      return -1;
    }
    in->validity_months = json_is_null(v) ? -1 : (int)months;
  }
  if (get_bool(b, "learner_confirm") == -2) {
    reply_bad_field(r, "learner_confirm", "true or false");
    return -1;
  }
  if (get_bool(b, "learner_evidence") == -2) {
    reply_bad_field(r, "learner_evidence", "true or false");
    return -1;
  }
  const json_t *t = json_object_get(b, "tasks");
  if (t) {
    char err[API_MESSAGE_MAX];
    if (api_tasks_parse(t, "tasks", tasks, err, sizeof err)) {
      reply_error_json(r, 400, "bad_request", NULL, "%s", err);
      return -1;
    }
    store_limit lim;
    if (store_tasks_check(tasks->items, tasks->n, &lim) != 0) {
      reply_tasks_limit(r, &lim, "tasks", "", " Nothing was changed.");
      api_tasks_free(tasks);
      return -1;
    }
    in->tasks = tasks->items;
    in->task_count = tasks->n;
  }
  return 0;
}

/* R3 checked before the store is asked: answers 422 with the rule named. */
static int refuse_r3(http_req *r, const char *title, const char *old_type, int old_otj,
                     const store_module_in *in) {
  const char *type = in->type ? in->type : old_type;
  int otj = in->otj < 0 ? old_otj : in->otj;
  if (!otj || !strcmp(type, "quiz")) return 0;
  if (in->otj == 1 && !old_otj)
    reply_error_json(r, 422, "rule_violation", json_pack("{s:s}", "rule", "R3"),
                     "Rule R3: On-the-Job training is a setting of quiz "
                     "modules only, and \"%s\" is a %s module. Nothing was "
                     "changed.",
                     title, type);
  else
    reply_error_json(r, 422, "rule_violation", json_pack("{s:s}", "rule", "R3"),
                     "Rule R3: \"%s\" has On-the-Job training switched on, so "
                     "it must stay a quiz. Switch OTJ off first (or in the "
                     "same request) to make it a %s module. Nothing was "
                     "changed.",
                     title, type);
  return 1;
}

static void modules_create(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  store_module_in in;
  api_tasks tasks;
  if (module_fields(r, b, &in, &tasks)) {
    json_decref(b);
    return;
  }
  if (!in.title || !in.type) {
    reply_bad_field(r, in.title ? "type" : "title",
                    in.title ? "quiz, content, video or document" : "a module needs a title");
  } else if (!refuse_r3(r, in.title, in.type, 0, &in)) {
    int64_t id = 0;
    int code = store_module_create_full(r->d->db, now_s(), a.id, &in, &id);
    if (code == 0 && get_bool(b, "learner_confirm") == 1)
      code = store_module_set_confirm(r->d->db, now_s(), a.id, id, 1);
    if (code == 0 && get_bool(b, "learner_evidence") == 1)
      code = store_module_set_learner_evidence(r->d->db, now_s(), a.id, id, 1);
    if (code)
      reply_store_error(r, code);
    else
      module_reply(r, 201, id);
  }
  api_tasks_free(&tasks);
  json_decref(b);
}

static void modules_update(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  store_module m;
  int code = store_module_by_id(r->d->db, ids[0], &m);
  if (code) {
    reply_store_error(r, code);
    return;
  }
  json_t *b = body_object(r);
  if (!b) return;
  store_module_in in;
  api_tasks tasks;
  if (module_fields(r, b, &in, &tasks)) {
    json_decref(b);
    return;
  }
  if (!refuse_r3(r, m.title, m.type, m.otj, &in)) {
    code = store_module_update(r->d->db, now_s(), a.id, ids[0], &in);
    int confirm = get_bool(b, "learner_confirm"); /* -1: left as it is */
    if (code == 0 && confirm >= 0)
      code = store_module_set_confirm(r->d->db, now_s(), a.id, ids[0], confirm);
    int evidence = get_bool(b, "learner_evidence"); /* -1: left as it is */
    if (code == 0 && evidence >= 0)
      code = store_module_set_learner_evidence(r->d->db, now_s(), a.id, ids[0], evidence);
    if (code)
      reply_store_error(r, code);
    else
      module_reply(r, 200, ids[0]);
  }
  api_tasks_free(&tasks);
  json_decref(b);
}

/* ---- paths and sharings ------------------------------------------------------ */

static int path_item(const store_path_info *p, void *ud) {
  json_t *o =
      json_pack("{s:I, s:s, s:I, s:o}", "id", (json_int_t)p->id, "title", p->title, "created_at",
                (json_int_t)p->created_at, "modules", json_loads(p->modules_json, 0, NULL));
  if (!o) return -1;
  json_array_append_new(ud, o);
  return 0;
}

static void paths_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *items = json_array();
  int code = store_paths_list(r->d->db, 0, path_item, items);
  if (code) {
    json_decref(items);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static void path_reply(http_req *r, int status, int64_t id) {
  json_t *items = json_array();
  int code = store_paths_list(r->d->db, id, path_item, items);
  if (code || json_array_size(items) != 1) {
    json_decref(items);
    reply_store_error(r, code ? code : STORE_NOTFOUND);
    return;
  }
  json_t *p = json_incref(json_array_get(items, 0));
  json_decref(items);
  reply_json(r, status, p);
}

static void paths_get(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  path_reply(r, 200, ids[0]);
}

/* Reads "modules": [ids...] into a malloc'd array (*n = -1 when absent).
 * Answers 400 and returns -1 when malformed. */
static int path_modules(http_req *r, const json_t *b, int64_t **ids, int *n) {
  const json_t *mods = json_object_get(b, "modules");
  *ids = NULL;
  *n = -1;
  if (!mods) return 0;
  if (!json_is_array(mods)) {
    reply_bad_field(r, "modules", "an array of module ids, in order");
    return -1;
  }
  size_t k = json_array_size(mods);
  *ids = calloc(k ? k : 1, sizeof **ids);
  if (!*ids) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return -1;
  }
  for (size_t i = 0; i < k; i++) {
    const json_t *v = json_array_get(mods, i);
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
      free(*ids);
      *ids = NULL;
      reply_bad_field(r, "modules", "an array of module ids, in order");
      return -1;
    }
    (*ids)[i] = json_integer_value(v);
  }
  *n = (int)k;
  return 0;
}

static void paths_create(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0, n;
  int64_t *mods, id = 0;
  const char *title = get_name(b, "title", NAME_MAX_LEN, &bad);
  if (!title) {
    json_decref(b);
    reply_bad_field(r, "title", "a path needs a title of 1 to 127 characters");
    return;
  }
  if (path_modules(r, b, &mods, &n)) {
    json_decref(b);
    return;
  }
  int code = store_path_create(r->d->db, now_s(), a.id, title, mods, n < 0 ? 0 : n, &id);
  free(mods);
  json_decref(b);
  if (code)
    reply_store_error(r, code);
  else
    path_reply(r, 201, id);
}

static void paths_update(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int bad = 0, n;
  int64_t *mods;
  const char *title = get_name(b, "title", NAME_MAX_LEN, &bad);
  if (bad) {
    json_decref(b);
    reply_bad_field(r, "title", "1 to 127 characters");
    return;
  }
  if (path_modules(r, b, &mods, &n)) {
    json_decref(b);
    return;
  }
  int code = store_path_update(r->d->db, now_s(), a.id, ids[0], title, mods, n);
  free(mods);
  json_decref(b);
  if (code)
    reply_store_error(r, code);
  else
    path_reply(r, 200, ids[0]);
}

static int sharing_item(const store_sharing *sh, void *ud) {
  json_t *o = json_pack("{s:I, s:I, s:I}", "id", (json_int_t)sh->id, "path_id",
                        (json_int_t)sh->path_id, "created_at", (json_int_t)sh->created_at);
  json_object_set_new(o, "user_id", sh->user_id ? json_integer(sh->user_id) : json_null());
  json_object_set_new(o, "department_id",
                      sh->department_id ? json_integer(sh->department_id) : json_null());
  json_array_append_new(ud, o);
  return 0;
}

static void sharings_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *items = json_array();
  int code = store_sharings_list(r->d->db, query_int(r, "path", 0), sharing_item, items);
  reply_items(r, code, items);
}

static void sharings_create(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  json_t *b = body_object(r);
  if (!b) return;
  int64_t path = 0, user = 0, dept = 0, id = 0;
  int p = get_id(b, "path_id", &path), u = get_id(b, "user_id", &user),
      d = get_id(b, "department_id", &dept);
  json_decref(b);
  if (p != 1 || u < 0 || d < 0 || (user > 0) == (dept > 0)) {
    reply_bad_field(r, p != 1 ? "path_id" : "user_id",
                    "send {path_id, user_id} or {path_id, department_id}");
    return;
  }
  int code = store_admin_sharing_create(r->d->db, now_s(), a.id, path, user, dept, &id);
  if (code) {
    reply_store_error(r, code);
    return;
  }
  reply_json(r, 201,
             json_pack("{s:I, s:I, s:o, s:o}", "id", (json_int_t)id, "path_id", (json_int_t)path,
                       "user_id", user ? json_integer(user) : json_null(), "department_id",
                       dept ? json_integer(dept) : json_null()));
}

static void sharings_delete(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  int code = store_admin_sharing_delete(r->d->db, now_s(), a.id, ids[0]);
  if (code)
    reply_store_error(r, code);
  else
    reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

/* ---- import, audit ----------------------------------------------------------- */

static void admin_import(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  api_import(r, &a);
}

static int audit_item(const store_audit_entry *e, void *ud) {
  json_t *o = json_pack("{s:I, s:I, s:s}", "id", (json_int_t)e->id, "at", (json_int_t)e->at,
                        "action", e->action);
  if (!o) return -1;
  json_object_set_new(
      o, "actor",
      e->actor_id ? json_pack("{s:I, s:s?}", "id", (json_int_t)e->actor_id, "login", e->actor_login)
                  : json_null());
  json_object_set_new(o, "subject", e->subject ? json_string(e->subject) : json_null());
  json_object_set_new(o, "detail",
                      e->detail_json ? json_loads(e->detail_json, 0, NULL) : json_null());
  json_array_append_new(ud, o);
  return 0;
}

static void audit_list(http_req *r, const int64_t *ids) {
  store_user a;
  if (require_admin(r, &a)) return;
  int64_t before = query_int(r, "before", 0);
  int64_t limit = query_int(r, "limit", AUDIT_PAGE_DEFAULT);
  if (limit < 1 || limit > AUDIT_PAGE_MAX || before < 0) {
    reply_error_json(r, 400, "bad_request", NULL, "limit is 1 to %d and before an entry id.",
                     AUDIT_PAGE_MAX);
    return;
  }
  json_t *items = json_array();
  int code = store_audit_list(r->d->db, before, (int)limit, audit_item, items);
  if (code) {
    json_decref(items);
    reply_store_error(r, code < 0 ? code : STORE_ERR);
    return;
  }
  size_t n = json_array_size(items);
  json_t *last = n ? json_object_get(json_array_get(items, n - 1), "id") : NULL;
  reply_json(
      r, 200,
      json_pack("{s:o, s:O?}", "items", items, "next_before", (size_t)limit == n ? last : NULL));
}

/* ---- routes ------------------------------------------------------------- */

static const api_route ADMIN_ROUTES[] = {
    {HTTP_GET, "/api/admin/departments", departments_list},
    {HTTP_POST, "/api/admin/departments", departments_create},
    {HTTP_PATCH, "/api/admin/departments/{id}", departments_update},
    {HTTP_GET, "/api/admin/users", users_list},
    {HTTP_POST, "/api/admin/users", users_create},
    {HTTP_PATCH, "/api/admin/users/{id}", users_update},
    {HTTP_PUT, "/api/admin/users/{id}/permissions", users_permissions},
    {HTTP_GET, "/api/admin/modules", modules_list},
    {HTTP_POST, "/api/admin/modules", modules_create},
    {HTTP_GET, "/api/admin/modules/{id}", modules_get},
    {HTTP_PATCH, "/api/admin/modules/{id}", modules_update},
    {HTTP_GET, "/api/admin/paths", paths_list},
    {HTTP_POST, "/api/admin/paths", paths_create},
    {HTTP_GET, "/api/admin/paths/{id}", paths_get},
    {HTTP_PATCH, "/api/admin/paths/{id}", paths_update},
    {HTTP_GET, "/api/admin/sharings", sharings_list},
    {HTTP_POST, "/api/admin/sharings", sharings_create},
    {HTTP_DELETE, "/api/admin/sharings/{id}", sharings_delete},
    {HTTP_POST, "/api/admin/import", admin_import},
    {HTTP_GET, "/api/admin/audit", audit_list},
};

int api_admin_handle(http_req *r) {
  return api_dispatch(r, ADMIN_ROUTES, sizeof ADMIN_ROUTES / sizeof ADMIN_ROUTES[0]);
}
