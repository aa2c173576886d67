/* store.c — opening the database and the queries of the durable store.
 *
 * Every public function works on one connection and maps SQLite's result
 * codes onto the small STORE_ set: a lock held past the busy timeout is
 * STORE_BUSY (try later), a UNIQUE/PRIMARY KEY clash is STORE_CONFLICT, and a
 * CHECK, trigger or foreign-key refusal is STORE_INVALID with SQLite's message
 * (for our triggers, a sentence a person can act on) kept in the handle.
 *
 * Hot queries use statements prepared once per handle (store_stmt); the rest
 * prepare, run and finalize on the spot.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "store_int.h"

/* The statements kept in the handle (store_stmt), one per hot query. */
#define SQL_USER_SELECT                                                                            \
  "SELECT " STORE_SQL_USER_COLUMNS ", u.password_hash FROM " STORE_SQL_USER_FROM
static const char SQL_USER_BY_ID[] = SQL_USER_SELECT " WHERE u.id = ?1";
static const char SQL_USER_BY_LOGIN[] = SQL_USER_SELECT " WHERE u.login = ?1";
/* a deactivated user's sessions are deleted; `active` makes sure. One
 * statement: every websocket hello and API request asks it. */
static const char SQL_SESSION_USER[] =
    SQL_USER_SELECT " JOIN login_sessions s ON s.user_id = u.id"
                    " WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.active = 1";
static const char SQL_SESSION_CREATE[] =
    "INSERT INTO login_sessions(token_hash, user_id, created_at, expires_at)"
    " VALUES (?1, ?2, ?3, ?4)";
static const char SQL_SESSION_DELETE[] = "DELETE FROM login_sessions WHERE token_hash = ?1";
static const char SQL_AUDIT_APPEND[] = "INSERT INTO audit(at, actor_id, action, subject, detail)"
                                       " VALUES (?1, ?2, ?3, ?4, ?5)";
/* Walk up from `dept`; it is within reach when the walk meets the
 * responsible's department. Walking up touches depth rows, not the
 * whole subtree. */
static const char SQL_WITHIN_REACH[] =
    "WITH RECURSIVE up(id) AS ("
    "  SELECT id FROM departments WHERE id = ?2"
    "  UNION SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id"
    "  WHERE d.parent_id IS NOT NULL)"
    "SELECT EXISTS (SELECT 1 FROM up WHERE id = ?1)";
/* ?3 now, ?4 the re-drill window: the latest completion that stands */
#define SQL_DUE_FROM STORE_SQL_DUE_FROM("c", "m", "?4")
static const char SQL_COMPLETION_EXISTS[] =
    "SELECT c.id FROM completions c JOIN modules m ON m.id = c.module_id"
    " WHERE c.user_id = ?1 AND c.module_id = ?2 AND coalesce(" SQL_DUE_FROM " > ?3, 1)"
    " ORDER BY c.renewal DESC LIMIT 1";
static const char SQL_COMPLETION_RENEWABLE[] =
    "SELECT coalesce((SELECT " SQL_DUE_FROM " <= ?3"
    "  FROM completions c JOIN modules m ON m.id = c.module_id"
    " WHERE c.user_id = ?1 AND c.module_id = ?2 ORDER BY c.renewal DESC LIMIT 1), 0)";

/* --- The clock of expiry ------------------------------------------------------ */

/* Set once at start, before other threads exist; read-only afterwards. */
static int64_t clock_offset_s;
static int64_t redrill_window_s = 30 * 86400;

void store_clock_configure(int64_t offset_s, int64_t window_s) {
  clock_offset_s = offset_s;
  redrill_window_s = window_s;
}

int64_t store_now(void) { return (int64_t)time(NULL) + clock_offset_s; }

int64_t store_redrill_window(void) { return redrill_window_s; }

/* --- Errors ----------------------------------------------------------------- */

static int map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE: return STORE_OK;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return STORE_BUSY;
  case SQLITE_CONSTRAINT:
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return STORE_CONFLICT;
    return STORE_INVALID;
  case SQLITE_NOTFOUND: return STORE_NOTFOUND;
  default: return STORE_ERR;
  }
}

int store_fail(store *s, int rc) {
  int code = map_rc(rc);
  if (code == STORE_OK) code = STORE_ERR; /* a caller only gets here on failure */
  snprintf(s->err, sizeof s->err, "%s", sqlite3_errmsg(s->db));
  return code;
}

int store_failf(store *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
  return code;
}

const char *store_errmsg(const store *s) { return s ? s->err : "no store handle"; }

const char *store_strerror(int code) {
  switch (code) {
  case STORE_OK: return "ok";
  case STORE_ERR: return "storage error";
  case STORE_NOTFOUND: return "not found";
  case STORE_CONFLICT: return "conflict";
  case STORE_BUSY: return "database busy, try later";
  case STORE_INVALID: return "refused by a rule";
  default: return "unknown storage result";
  }
}

/* --- Small helpers -------------------------------------------------------- */

int store_exec(store *s, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK) return 0;
  int code = map_rc(rc);
  if (code == STORE_OK) code = STORE_ERR;
  snprintf(s->err, sizeof s->err, "%s", msg ? msg : sqlite3_errstr(rc));
  sqlite3_free(msg);
  return code;
}

int store_begin(store *s) { return store_exec(s, "BEGIN IMMEDIATE"); }
int store_commit(store *s) { return store_exec(s, "COMMIT"); }

int store_read_begin(store *s) {
  if (!sqlite3_get_autocommit(s->db)) return 0; /* the caller's transaction holds */
  sqlite3_stmt *st = store_stmt(s, ST_READ_BEGIN, "BEGIN");
  if (!st) return STORE_ERR;
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 1 : store_fail(s, rc);
}

void store_read_end(store *s, int began) {
  if (began != 1 || sqlite3_get_autocommit(s->db)) return;
  sqlite3_stmt *st = store_stmt(s, ST_READ_END, "COMMIT");
  int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
  if (st) sqlite3_reset(st);
  if (rc != SQLITE_DONE) store_rollback(s);
}

void store_rollback(store *s) {
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *store_stmt(store *s, store_stmt_id id, const char *sql) {
  sqlite3_stmt *st = s->stmt[id];
  if (st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
  }
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK) {
    store_fail(s, rc);
    return NULL;
  }
  s->stmt[id] = st;
  return st;
}

int store_step_done(store *s, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  int code = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
  sqlite3_reset(st);
  return code;
}

int store_step_int(store *s, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  int result = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : store_fail(s, rc);
  sqlite3_reset(st);
  return result;
}

int store_finish(store *s, int code) {
  if (code == 0) code = store_commit(s);
  if (code < 0) store_rollback(s);
  return code;
}

sqlite3_stmt *store_prepare(store *s, const char *sql) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) {
    store_fail(s, rc);
    return NULL;
  }
  return st;
}

int store_run_id(store *s, const char *sql, int64_t id) {
  sqlite3_stmt *st = store_prepare(s, sql);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  return code;
}

/* Runs a one-shot statement with one int64 parameter that returns one
 * integer; 0 and *out on a row, STORE_NOTFOUND when no row. */
static int query_int64(store *s, const char *sql, int64_t param, int64_t *out) {
  sqlite3_stmt *st = store_prepare(s, sql);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, param);
  int rc = sqlite3_step(st);
  int code;
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    code = 0;
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no row");
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
  snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

void store_bind_id(sqlite3_stmt *st, int idx, int64_t id) {
  if (id > 0)
    sqlite3_bind_int64(st, idx, id);
  else
    sqlite3_bind_null(st, idx);
}

void store_bind_text(sqlite3_stmt *st, int idx, const char *text) {
  if (text)
    sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, idx);
}

/* --- Lifetime ------------------------------------------------------------- */

#define STORE_OPEN_RETRY_MS 20

static int apply_pragmas(store *s) {
  int rc = sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK) return store_fail(s, rc);
  if ((rc = store_exec(s, "PRAGMA foreign_keys = ON")) < 0) return rc;

  /* journal_mode answers with the mode now in force; a file that cannot do
   * WAL (or an in-memory database) answers something else. */
  sqlite3_stmt *st = store_prepare(s, "PRAGMA journal_mode = WAL");
  if (!st) return STORE_ERR;
  rc = sqlite3_step(st);
  char mode[16] = "";
  if (rc == SQLITE_ROW) copy_text(mode, sizeof mode, sqlite3_column_text(st, 0));
  int code = rc == SQLITE_ROW ? 0 : store_fail(s, rc);
  sqlite3_finalize(st);
  if (code < 0) return code;
  if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)
    return store_failf(s, STORE_ERR, "could not switch the database to WAL mode (it is in %s mode)",
                       mode);

  return store_set_durable(s, 0);
}

int store_open(const char *path, store **out, char *err, size_t errlen) {
  *out = NULL;
  store *s = calloc(1, sizeof *s);
  if (!s) {
    if (err && errlen) snprintf(err, errlen, "out of memory opening the database");
    return STORE_ERR;
  }

  int code;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
  if (rc != SQLITE_OK) {
    if (s->db)
      store_fail(s, rc);
    else
      snprintf(s->err, sizeof s->err, "%s", sqlite3_errstr(rc));
    code = STORE_ERR;
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 1);
  if ((rc = store_audit_register(s->db)) != SQLITE_OK) {
    code = store_fail(s, rc);
    goto fail;
  }

  /* Several processes opening a fresh file at once can meet a lock SQLite
   * does not wait for (the switch to WAL; two connections each waiting for
   * the other's): both steps are safe to run again, so try again for as
   * long as the busy timeout would have waited. */
  for (int waited_ms = 0;; waited_ms += STORE_OPEN_RETRY_MS) {
    code = apply_pragmas(s);
    if (code == 0) code = store_migrate(s);
    if (code != STORE_BUSY || waited_ms >= STORE_BUSY_TIMEOUT_MS) break;
    usleep(STORE_OPEN_RETRY_MS * 1000);
  }
  if (code < 0) goto fail;

  *out = s;
  return 0;

fail:
  if (err && errlen) snprintf(err, errlen, "%s: %s", path, s->err);
  store_close(s);
  return code;
}

void store_close(store *s) {
  if (!s) return;
  for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(s->stmt[i]);
  sqlite3_close(s->db); /* every statement is finalized, so this closes */
  free(s);
}

int store_set_durable(store *s, int full) {
  return store_exec(s, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

int store_set_busy_timeout(store *s, int ms) {
  int rc = sqlite3_busy_timeout(s->db, ms < 0 ? 0 : ms);
  return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

int store_check_writable(store *s) {
  int code = store_begin(s);
  if (code == 0) store_rollback(s);
  return code;
}

int store_pragma(store *s, const char *name, char *out, size_t outlen) {
  if (!name || !*name || strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name) ||
      strlen(name) > 64)
    return store_failf(s, STORE_INVALID, "not a pragma name: %s", name ? name : "(none)");
  char sql[80];
  snprintf(sql, sizeof sql, "PRAGMA %s", name);
  sqlite3_stmt *st = store_prepare(s, sql);
  if (!st) return STORE_ERR;
  int rc = sqlite3_step(st);
  int code = 0;
  if (rc == SQLITE_ROW)
    copy_text(out, outlen, sqlite3_column_text(st, 0));
  else if (rc == SQLITE_DONE)
    code = store_failf(s, STORE_NOTFOUND, "pragma %s has no value", name);
  else
    code = store_fail(s, rc);
  sqlite3_finalize(st);
  return code;
}

/* --- Health ----------------------------------------------------------------- */

int store_ping(store *s) {
  int64_t one = 0;
  sqlite3_stmt *st = store_prepare(s, "SELECT 1");
  if (!st) return STORE_ERR;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) one = sqlite3_column_int64(st, 0);
  int code = rc == SQLITE_ROW ? 0 : store_fail(s, rc);
  sqlite3_finalize(st);
  if (code == 0 && one != 1)
    code = store_failf(s, STORE_ERR, "SQLite answered SELECT 1 with %lld", (long long)one);
  return code;
}

static int count_rows(store *s, const char *sql) {
  sqlite3_stmt *st = store_prepare(s, sql);
  if (!st) return STORE_ERR;
  int rc = sqlite3_step(st);
  int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  int code = rc == SQLITE_ROW ? 0 : store_fail(s, rc);
  sqlite3_finalize(st);
  if (code < 0) return code;
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

int store_user_count(store *s) { return count_rows(s, "SELECT count(*) FROM users"); }
int store_audit_count(store *s) { return count_rows(s, "SELECT count(*) FROM audit"); }

/* --- Lookups by name ------------------------------------------------------- */

int store_find_id(store *s, store_entity kind, const char *key, int64_t *id) {
  const char *sql;
  switch (kind) {
  case STORE_DEPARTMENT: sql = "SELECT min(id) FROM departments WHERE name = ?1"; break;
  case STORE_USER: sql = "SELECT id FROM users WHERE login = ?1"; break;
  case STORE_MODULE: sql = "SELECT min(id) FROM modules WHERE title = ?1"; break;
  case STORE_PATH: sql = "SELECT min(id) FROM paths WHERE title = ?1"; break;
  default: return store_failf(s, STORE_ERR, "unknown entity kind %d", (int)kind);
  }
  if (!key) return store_failf(s, STORE_NOTFOUND, "no key given");
  sqlite3_stmt *st = store_prepare(s, sql);
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int code;
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    *id = sqlite3_column_int64(st, 0);
    code = 0;
  } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no such name: %s", key);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}

/* --- Departments ------------------------------------------------------------ */

int store_department_create(store *s, const char *name, int64_t parent_id, int64_t *id) {
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO departments(name, parent_id) VALUES (?1, ?2)");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  store_bind_id(st, 2, parent_id);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == 0 && id) *id = sqlite3_last_insert_rowid(s->db);
  return code;
}

int store_department_move(store *s, int64_t id, int64_t new_parent_id) {
  sqlite3_stmt *st = store_prepare(s, "UPDATE departments SET parent_id = ?2 WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  store_bind_id(st, 2, new_parent_id);
  int code = store_step_done(s, st);
  if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no department with id %lld", (long long)id);
  sqlite3_finalize(st);
  return code;
}

int store_department_parent(store *s, int64_t id, int64_t *parent_id) {
  int code =
      query_int64(s, "SELECT coalesce(parent_id, 0) FROM departments WHERE id = ?1", id, parent_id);
  if (code == STORE_NOTFOUND) store_failf(s, code, "no department with id %lld", (long long)id);
  return code;
}

int store_dept_within_reach(store *s, int64_t responsible_dept, int64_t dept) {
  sqlite3_stmt *st = store_stmt(s, ST_WITHIN_REACH, SQL_WITHIN_REACH);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, responsible_dept);
  sqlite3_bind_int64(st, 2, dept);
  return store_step_int(s, st); /* EXISTS: 0 or 1 */
}

/* --- Users and permissions -------------------------------------------------- */

int store_user_create(store *s, int64_t now, const char *login, const char *name,
                      int64_t department_id, const char *password_hash, int is_admin, int64_t *id) {
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO users(login, name, department_id, password_hash,"
                                      " is_admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, department_id);
  sqlite3_bind_text(st, 4, password_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 5, is_admin ? 1 : 0);
  sqlite3_bind_int64(st, 6, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == 0 && id) *id = sqlite3_last_insert_rowid(s->db);
  return code;
}

void store_user_row(sqlite3_stmt *st, store_user *out) {
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(st, 0);
  copy_text(out->login, sizeof out->login, sqlite3_column_text(st, 1));
  copy_text(out->name, sizeof out->name, sqlite3_column_text(st, 2));
  out->department_id = sqlite3_column_int64(st, 3);
  copy_text(out->department, sizeof out->department, sqlite3_column_text(st, 4));
  out->is_admin = sqlite3_column_int(st, 5);
  out->management = sqlite3_column_int(st, 6);
  out->facilitate_otj = sqlite3_column_int(st, 7);
  out->active = sqlite3_column_int(st, 8);
}

/* One user of SQL_USER_SELECT: the columns, then the password hash. */
static int read_user(store *s, sqlite3_stmt *st, store_user *out) {
  int rc = sqlite3_step(st);
  int code;
  if (rc == SQLITE_ROW) {
    store_user_row(st, out);
    copy_text(out->password_hash, sizeof out->password_hash, sqlite3_column_text(st, 9));
    code = 0;
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no such user");
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_reset(st);
  return code;
}

int store_user_by_login(store *s, const char *login, store_user *out) {
  if (!login) return store_failf(s, STORE_NOTFOUND, "no login given");
  sqlite3_stmt *st = store_stmt(s, ST_USER_BY_LOGIN, SQL_USER_BY_LOGIN);
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
  return read_user(s, st, out);
}

int store_user_by_id(store *s, int64_t id, store_user *out) {
  sqlite3_stmt *st = store_stmt(s, ST_USER_BY_ID, SQL_USER_BY_ID);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  return read_user(s, st, out);
}

int store_user_is_responsible(const store_user *u) {
  return u && u->management && u->facilitate_otj;
}

/* Appends an audit entry without a transaction of its own. */
static int audit_insert(store *s, int64_t now, int64_t actor_id, const char *action,
                        const char *subject, const char *detail_json) {
  if (!action || !*action) return store_failf(s, STORE_INVALID, "an audit entry needs an action");
  sqlite3_stmt *st = store_stmt(s, ST_AUDIT_APPEND, SQL_AUDIT_APPEND);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, now);
  store_bind_id(st, 2, actor_id);
  sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
  if (subject) sqlite3_bind_text(st, 4, subject, -1, SQLITE_STATIC);
  if (detail_json) sqlite3_bind_text(st, 5, detail_json, -1, SQLITE_STATIC);
  return store_step_done(s, st);
}

int store_audit_append(store *s, int64_t now, int64_t actor_id, const char *action,
                       const char *subject, const char *detail_json) {
  return audit_insert(s, now, actor_id, action, subject, detail_json);
}

int store_set_permission_in_tx(store *s, int64_t now, int64_t actor_id, int64_t user_id,
                               int management, int facilitate_otj) {
  management = management ? 1 : 0;
  facilitate_otj = facilitate_otj ? 1 : 0;
  if (facilitate_otj && !management)
    return store_failf(s, STORE_INVALID,
                       "Facilitate OTJ is a flag of the Management permission: grant "
                       "Management too");

  int64_t found = 0;
  int code = query_int64(s, "SELECT id FROM users WHERE id = ?1", user_id, &found);
  if (code == STORE_NOTFOUND) store_failf(s, code, "no user with id %lld", (long long)user_id);
  if (code < 0) return code;

  sqlite3_stmt *st =
      store_prepare(s, "INSERT INTO permissions(user_id, management, facilitate_otj,"
                       " updated_at) VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT(user_id) DO UPDATE SET management = excluded.management,"
                       " facilitate_otj = excluded.facilitate_otj,"
                       " updated_at = excluded.updated_at");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_int(st, 2, management);
  sqlite3_bind_int(st, 3, facilitate_otj);
  sqlite3_bind_int64(st, 4, now);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code < 0) return code;

  char subject[32], detail[96];
  snprintf(subject, sizeof subject, "user:%lld", (long long)user_id);
  snprintf(detail, sizeof detail, "{\"management\":%s,\"facilitate_otj\":%s}",
           management ? "true" : "false", facilitate_otj ? "true" : "false");
  return audit_insert(s, now, actor_id, "permission.set", subject, detail);
}

int store_set_permission(store *s, int64_t now, int64_t actor_id, int64_t user_id, int management,
                         int facilitate_otj) {
  int code = store_begin(s);
  if (code < 0) return code;
  return store_finish(
      s, store_set_permission_in_tx(s, now, actor_id, user_id, management, facilitate_otj));
}

/* --- Modules and tasks ------------------------------------------------------ */

int store_module_by_id(store *s, int64_t id, store_module *out) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT " STORE_SQL_MODULE_COLUMNS " FROM modules m WHERE m.id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  int code;
  if (rc == SQLITE_ROW) {
    store_module_row(st, out);
    code = 0;
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no module with id %lld", (long long)id);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}

void store_module_row(sqlite3_stmt *st, store_module *out) {
  memset(out, 0, sizeof *out);
  out->id = sqlite3_column_int64(st, 0);
  copy_text(out->title, sizeof out->title, sqlite3_column_text(st, 1));
  copy_text(out->type, sizeof out->type, sqlite3_column_text(st, 2));
  out->otj = sqlite3_column_int(st, 3);
  out->created_at = sqlite3_column_int64(st, 4);
  out->updated_at = sqlite3_column_int64(st, 5);
  out->task_count = sqlite3_column_int(st, 6);
  out->validity_months = sqlite3_column_int(st, 7);
  out->learner_confirm = sqlite3_column_int(st, 8);
  out->learner_evidence = sqlite3_column_int(st, 9);
}

int store_module_create(store *s, int64_t now, const char *title, const char *type, int64_t *id) {
  sqlite3_stmt *st =
      store_prepare(s, "INSERT INTO modules(title, type, otj, created_at, updated_at)"
                       " VALUES (?1, ?2, 0, ?3, ?3)");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, title, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == 0 && id) *id = sqlite3_last_insert_rowid(s->db);
  return code;
}

int store_module_set_otj_in_tx(store *s, int64_t now, int64_t actor_id, int64_t module_id,
                               int otj) {
  otj = otj ? 1 : 0;
  store_module m;
  int code = store_module_by_id(s, module_id, &m);
  if (code < 0) return code;
  if (otj && strcmp(m.type, "quiz") != 0)
    return store_failf(s, STORE_INVALID,
                       "On-the-Job training can only be switched on for quiz modules; "
                       "\"%s\" is a %s module",
                       m.title, m.type);

  sqlite3_stmt *st = store_prepare(s, "UPDATE modules SET otj = ?2, updated_at = ?3 WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, module_id);
  sqlite3_bind_int(st, 2, otj);
  sqlite3_bind_int64(st, 3, now);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code < 0) return code;

  char subject[32];
  snprintf(subject, sizeof subject, "module:%lld", (long long)module_id);
  return audit_insert(s, now, actor_id, "module.otj", subject,
                      otj ? "{\"otj\":true}" : "{\"otj\":false}");
}

int store_module_set_otj(store *s, int64_t now, int64_t actor_id, int64_t module_id, int otj) {
  int code = store_begin(s);
  if (code < 0) return code;
  return store_finish(s, store_module_set_otj_in_tx(s, now, actor_id, module_id, otj));
}

int store_module_set_type(store *s, int64_t now, int64_t module_id, const char *type) {
  sqlite3_stmt *st =
      store_prepare(s, "UPDATE modules SET type = ?2, updated_at = ?3 WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, module_id);
  sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now);
  int code = store_step_done(s, st);
  if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no module with id %lld", (long long)module_id);
  sqlite3_finalize(st);
  if (code == STORE_INVALID)
    store_failf(s, code,
                "the module type cannot be \"%s\": the type must be quiz, content, video or "
                "document, and a module with On-the-Job training on must stay a quiz",
                type ? type : "(none)");
  return code;
}

int store_module_tasks(store *s, int64_t module_id, store_task_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(s, "SELECT id, position, kind, text, options, correct FROM tasks"
                                      " WHERE module_id = ?1 ORDER BY position");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, module_id);
  int rc, code = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_task t = {
        .id = sqlite3_column_int64(st, 0),
        .position = sqlite3_column_int(st, 1),
        .kind = (const char *)sqlite3_column_text(st, 2),
        .text = (const char *)sqlite3_column_text(st, 3),
        .options_json = (const char *)sqlite3_column_text(st, 4),
        .correct_json = (const char *)sqlite3_column_text(st, 5),
    };
    if ((code = cb(&t, ud)) != 0) break;
  }
  if (code == 0 && rc != SQLITE_DONE) code = store_fail(s, rc);
  sqlite3_finalize(st);
  return code;
}

/* --- Completions ------------------------------------------------------------ */

int store_completion_exists(store *s, int64_t user_id, int64_t module_id, int64_t *completion_id) {
  sqlite3_stmt *st = store_stmt(s, ST_COMPLETION_EXISTS, SQL_COMPLETION_EXISTS);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_int64(st, 2, module_id);
  sqlite3_bind_int64(st, 3, store_now());
  sqlite3_bind_int64(st, 4, store_redrill_window());
  int rc = sqlite3_step(st);
  int result;
  if (rc == SQLITE_ROW) {
    if (completion_id) *completion_id = sqlite3_column_int64(st, 0);
    result = 1;
  } else if (rc == SQLITE_DONE) {
    result = 0;
  } else {
    result = store_fail(s, rc);
  }
  sqlite3_reset(st);
  return result;
}

/* --- Login sessions ----------------------------------------------------------- */

int store_session_create(store *s, int64_t user_id, const unsigned char token_hash[32], int64_t now,
                         int64_t expires_at) {
  sqlite3_stmt *st = store_stmt(s, ST_SESSION_CREATE, SQL_SESSION_CREATE);
  if (!st) return STORE_ERR;
  sqlite3_bind_blob(st, 1, token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int64(st, 3, now);
  sqlite3_bind_int64(st, 4, expires_at);
  return store_step_done(s, st);
}

int store_session_user(store *s, const unsigned char token_hash[32], int64_t now, store_user *out) {
  sqlite3_stmt *st = store_stmt(s, ST_SESSION_USER, SQL_SESSION_USER);
  if (!st) return STORE_ERR;
  sqlite3_bind_blob(st, 1, token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  int code = read_user(s, st, out);
  if (code == STORE_NOTFOUND) store_failf(s, STORE_NOTFOUND, "no live session for this token");
  return code;
}

int store_session_delete(store *s, const unsigned char token_hash[32]) {
  sqlite3_stmt *st = store_stmt(s, ST_SESSION_DELETE, SQL_SESSION_DELETE);
  if (!st) return STORE_ERR;
  sqlite3_bind_blob(st, 1, token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  int code = store_step_done(s, st);
  if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no session for this token");
  return code;
}

int store_session_purge(store *s, int64_t now) {
  int code = store_run_id(s, "DELETE FROM login_sessions WHERE expires_at <= ?1", now);
  return code < 0 ? code : sqlite3_changes(s->db);
}

int store_completion_renewable(store *s, int64_t user_id, int64_t module_id) {
  sqlite3_stmt *st = store_prepare(s, SQL_COMPLETION_RENEWABLE);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_int64(st, 2, module_id);
  sqlite3_bind_int64(st, 3, store_now());
  sqlite3_bind_int64(st, 4, store_redrill_window());
  int rc = store_step_int(s, st);
  sqlite3_finalize(st);
  return rc;
}
