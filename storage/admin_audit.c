/*
 * admin_audit — an administrator's change of the organisation, written in
 * one transaction with its audit entry (R11, DESIGN §8 "records an inspector
 * trusts").
 *
 * The one design idea: the entry says who (actor), what (action and
 * subject, e.g. "department.updated" on "department:4") and the fields that
 * changed, each as {"from", "to"} when something was there before, read
 * inside the same write transaction as the change; a change that changes
 * nothing writes no entry. Passwords and their hashes never go into an
 * entry. The chain (prev_hash, hash) is filled by the trigger of audit.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Appends {detail} as the entry's JSON; takes the reference. */
int store_audit_json(store *s, int64_t now, int64_t actor_id, const char *action, const char *kind,
                     int64_t id, json_t *detail) {
  char subject[48];
  snprintf(subject, sizeof subject, "%s:%lld", kind, (long long)id);
  char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(detail);
  if (!text) return store_failf(s, STORE_ERR, "out of memory for an audit entry");
  int code = store_audit_append(s, now, actor_id, action, subject, text);
  free(text);
  return code;
}

static json_t *id_or_null(int64_t id) { return id > 0 ? json_integer(id) : json_null(); }

/* {"from": a, "to": b} (takes both references). */
static json_t *change(json_t *from, json_t *to) {
  return json_pack("{s:o, s:o}", "from", from, "to", to);
}

/* ---- departments ---------------------------------------------------------------- */

/* The name and parent of department `id` (0 = root); STORE_NOTFOUND. */
static int department_row(store *s, int64_t id, char *name, size_t cap, int64_t *parent) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT name, coalesce(parent_id, 0) FROM departments WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st), code = 0;
  if (rc == SQLITE_ROW) {
    snprintf(name, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    *parent = sqlite3_column_int64(st, 1);
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no department with id %lld", (long long)id);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}

int store_admin_department_create(store *s, int64_t now, int64_t actor_id, const char *name,
                                  int64_t parent_id, int64_t *id) {
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t did = 0;
  code = store_department_create(s, name, parent_id, &did);
  if (code == 0)
    code =
        store_audit_json(s, now, actor_id, "department.created", "department", did,
                         json_pack("{s:s, s:o}", "name", name, "parent_id", id_or_null(parent_id)));
  code = store_finish(s, code);
  if (code == 0 && id) *id = did;
  return code;
}

int store_admin_department_update(store *s, int64_t now, int64_t actor_id, int64_t id,
                                  const char *name, int move, int64_t parent_id) {
  int code = store_begin(s);
  if (code < 0) return code;
  char was_name[256];
  int64_t was_parent = 0;
  if ((code = department_row(s, id, was_name, sizeof was_name, &was_parent)) < 0)
    return store_finish(s, code);
  if (move && parent_id != was_parent && (code = store_department_move(s, id, parent_id)) < 0)
    return store_finish(s, code);
  if (name && strcmp(name, was_name) != 0 && (code = store_department_rename(s, id, name)) < 0)
    return store_finish(s, code);
  json_t *d = json_object();
  if (name && strcmp(name, was_name) != 0)
    json_object_set_new(d, "name", change(json_string(was_name), json_string(name)));
  if (move && parent_id != was_parent)
    json_object_set_new(d, "parent_id", change(id_or_null(was_parent), id_or_null(parent_id)));
  if (json_object_size(d) == 0)
    json_decref(d); /* nothing changed: nothing to audit */
  else
    code = store_audit_json(s, now, actor_id, "department.updated", "department", id, d);
  return store_finish(s, code);
}

/* ---- users ------------------------------------------------------------------------ */

int store_admin_user_create(store *s, int64_t now, int64_t actor_id, const store_user_in *in,
                            int64_t *id) {
  int mgmt = in->management || in->facilitate_otj ? 1 : 0, fac = in->facilitate_otj ? 1 : 0;
  if (fac && !in->management)
    return store_failf(s, STORE_INVALID,
                       "Facilitate OTJ is a flag of the Management permission: grant "
                       "Management too");
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t uid = 0;
  code = store_user_create(s, now, in->login, in->name, in->department_id, in->password_hash,
                           in->admin, &uid);
  if (code == 0 && mgmt) {
    sqlite3_stmt *st = store_prepare(s, "INSERT INTO permissions(user_id, management,"
                                        " facilitate_otj, updated_at) VALUES (?1, 1, ?2, ?3)");
    if (!st) return store_finish(s, STORE_ERR);
    sqlite3_bind_int64(st, 1, uid);
    sqlite3_bind_int(st, 2, fac);
    sqlite3_bind_int64(st, 3, now);
    code = store_step_done(s, st);
    sqlite3_finalize(st);
  }
  if (code == 0) /* never the password or its hash */
    code = store_audit_json(s, now, actor_id, "user.created", "user", uid,
                            json_pack("{s:s, s:s, s:I, s:b, s:b, s:b}", "login", in->login, "name",
                                      in->name, "department_id", (json_int_t)in->department_id,
                                      "admin", in->admin ? 1 : 0, "management", mgmt,
                                      "facilitate_otj", fac));
  code = store_finish(s, code);
  if (code == 0 && id) *id = uid;
  return code;
}

/* ---- sharings ------------------------------------------------------------------------ */

static json_t *sharing_detail(int64_t path_id, int64_t user_id, int64_t department_id) {
  json_t *d = json_pack("{s:I}", "path_id", (json_int_t)path_id);
  if (d && user_id > 0) json_object_set_new(d, "user_id", json_integer(user_id));
  if (d && department_id > 0) json_object_set_new(d, "department_id", json_integer(department_id));
  return d;
}

int store_admin_sharing_create(store *s, int64_t now, int64_t actor_id, int64_t path_id,
                               int64_t user_id, int64_t department_id, int64_t *id) {
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t sid = 0;
  code = store_sharing_create(s, now, path_id, user_id, department_id, &sid);
  if (code == 0)
    code = store_audit_json(s, now, actor_id, "sharing.created", "sharing", sid,
                            sharing_detail(path_id, user_id, department_id));
  code = store_finish(s, code);
  if (code == 0 && id) *id = sid;
  return code;
}

int store_admin_sharing_delete(store *s, int64_t now, int64_t actor_id, int64_t id) {
  int code = store_begin(s);
  if (code < 0) return code;
  sqlite3_stmt *st = store_prepare(s, "SELECT path_id, coalesce(user_id, 0),"
                                      " coalesce(department_id, 0) FROM sharings WHERE id = ?1");
  if (!st) return store_finish(s, STORE_ERR);
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  int64_t path = 0, user = 0, dept = 0;
  if (rc == SQLITE_ROW) {
    path = sqlite3_column_int64(st, 0);
    user = sqlite3_column_int64(st, 1);
    dept = sqlite3_column_int64(st, 2);
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no sharing with id %lld", (long long)id);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  if (code == 0) code = store_sharing_delete(s, id);
  if (code == 0)
    code = store_audit_json(s, now, actor_id, "sharing.deleted", "sharing", id,
                            sharing_detail(path, user, dept));
  return store_finish(s, code);
}

/* ---- paths (called by org.c inside its transaction) ------------------------------------ */

static int path_state_cb(const store_path_info *p, void *ud) {
  json_t **out = ud;
  *out = json_pack("{s:s, s:o}", "title", p->title, "modules",
                   json_loads(p->modules_json ? p->modules_json : "[]", 0, NULL));
  return 0;
}

json_t *store_path_state(store *s, int64_t id) {
  json_t *out = NULL;
  if (store_paths_list(s, id, path_state_cb, &out) != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

int store_audit_path(store *s, int64_t now, int64_t actor_id, int64_t id, json_t *before) {
  json_t *after = store_path_state(s, id);
  if (!after) {
    json_decref(before);
    return store_failf(s, STORE_ERR, "the path %lld could not be read back", (long long)id);
  }
  if (!before) return store_audit_json(s, now, actor_id, "path.created", "path", id, after);
  json_t *d = json_object();
  const char *keys[] = {"title", "modules"};
  for (size_t i = 0; i < 2; i++) {
    json_t *a = json_object_get(before, keys[i]), *b = json_object_get(after, keys[i]);
    if (!json_equal(a, b)) json_object_set_new(d, keys[i], change(json_incref(a), json_incref(b)));
  }
  json_decref(before);
  json_decref(after);
  if (json_object_size(d) == 0) {
    json_decref(d); /* nothing changed: nothing to audit */
    return 0;
  }
  return store_audit_json(s, now, actor_id, "path.updated", "path", id, d);
}
