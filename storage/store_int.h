/* store_int.h — the inside of the durable store: what store.c, org.c,
 * completions.c, migrations.c, demo.c and bulk.c share, and nobody else
 * (rstore.c, the Redis side, does not include it).
 *
 * The handle keeps one lazily prepared statement per hot query (session
 * lookup, user by id, ...); store_stmt() hands it out reset and unbound.
 * Every other statement is prepared with store_prepare(), stepped with
 * store_step_done() / store_step_int() or a row loop, and finalized by the
 * function that prepared it (store_run_id does all three for a write by
 * id); a write transaction ends with store_finish().
 */
#ifndef OTJ_STORE_INT_H
#define OTJ_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

typedef enum store_stmt_id {
  ST_USER_BY_ID,
  ST_USER_BY_LOGIN,
  ST_SESSION_USER,
  ST_SESSION_CREATE,
  ST_SESSION_DELETE,
  ST_AUDIT_APPEND,
  ST_WITHIN_REACH,
  ST_COMPLETION_EXISTS,
  ST_READ_BEGIN,
  ST_READ_END,
  /* org.c's (its SQL lives there) */
  ST_ORG_LEARNER_PATHS,
  ST_ORG_REACHES,
  ST_ORG_OTJ_WAITING,
  ST_ORG_PENDING,
  ST_ORG_PENDING_COUNT,
  ST__COUNT
} store_stmt_id;

struct store {
  sqlite3 *db;
  sqlite3_stmt *stmt[ST__COUNT];
  char err[STORE_ERRMSG_MAX];
};

/* The cached statement of slot `id`, reset and with bindings cleared; NULL
 * on error (the message is in s->err). `sql` is prepared the first time the
 * slot is asked for: a slot always comes with the same SQL, which lives next
 * to the one function that asks for it. Owned by the handle (store_close
 * finalizes it): never finalize it. */
sqlite3_stmt *store_stmt(store *s, store_stmt_id id, const char *sql);

/* Registers otj_audit_hash() on a connection (audit.c); the audit chain's
 * trigger calls it. Returns a SQLite result code. */
int store_audit_register(sqlite3 *db);

/* Maps a SQLite result code to a STORE_ code and records the message. */
int store_fail(store *s, int rc);

/* Records a message of our own (printf-style) and returns code. */
int store_failf(store *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fresh statement (the caller finalizes it); NULL on error, the message
 * in s->err. */
sqlite3_stmt *store_prepare(store *s, const char *sql);

/* Steps a statement that returns no rows, then resets it (its bindings
 * stay). Returns 0 or a STORE_ code with the message in s->err.
 * sqlite3_changes() and sqlite3_last_insert_rowid() still answer for it; a
 * one-shot statement is finalized by its caller afterwards. */
int store_step_done(store *s, sqlite3_stmt *st);

/* A one-shot statement that returns no rows: prepares `sql`, binds `id` to
 * ?1, steps and finalizes it. Returns 0 or a STORE_ code with the message
 * in s->err; sqlite3_changes() answers for it afterwards. */
int store_run_id(store *s, const char *sql, int64_t id);

/* Steps a statement whose first row answers one integer that is never
 * negative (a count, an EXISTS), then resets it. Returns the integer, or a
 * STORE_ code (negative) with the message in s->err. */
int store_step_int(store *s, sqlite3_stmt *st);

/* The columns of a user (password hash aside) and of a module, in the order
 * store_user_row and store_module_row read them: a query that selects them
 * first (then anything else) can hand its rows to the reader. */
#define STORE_SQL_USER_COLUMNS                                                                     \
  "u.id, u.login, u.name, u.department_id, d.name, u.is_admin,"                                    \
  " coalesce(p.management, 0), coalesce(p.facilitate_otj, 0), u.active"
#define STORE_SQL_USER_FROM                                                                        \
  "users u JOIN departments d ON d.id = u.department_id"                                           \
  " LEFT JOIN permissions p ON p.user_id = u.id"
#define STORE_SQL_MODULE_COLUMNS                                                                   \
  "m.id, m.title, m.type, m.otj, m.created_at, m.updated_at,"                                      \
  " (SELECT count(*) FROM tasks t WHERE t.module_id = m.id), coalesce(m.validity_months, 0),"      \
  " m.learner_confirm, m.learner_evidence"

/* When completion `c` of module `m` (SQL aliases) expires: NULL for never
 * (no validity, or OTJ off). */
#define STORE_SQL_EXPIRES(c, m)                                                                    \
  "(CASE WHEN " m ".otj = 1 AND " m ".validity_months IS NOT NULL THEN unixepoch(" c               \
  ".completed_at, 'unixepoch', '+' || " m ".validity_months || ' months') END)"

/* From when completion `c` of module `m` is due for a re-drill, given the
 * window `w` in seconds (SQL): the window before its expiry, but at most
 * half its validity, so a fresh approval is never due at once. NULL for
 * never. */
#define STORE_SQL_DUE_FROM(c, m, w)                                                                \
  "(" STORE_SQL_EXPIRES(c, m) " - min(" w ", (" STORE_SQL_EXPIRES(c, m) " - " c                    \
                                                                        ".completed_at) / 2))"

/* 1 when completion `c` of module `m` still counts at time `t` (SQL). */
#define STORE_SQL_VALID_AT(c, m, t) "coalesce(" STORE_SQL_EXPIRES(c, m) " > " t ", 1)"

/* Fills `out` from the current row (password_hash left empty). */
void store_user_row(sqlite3_stmt *st, store_user *out);
void store_module_row(sqlite3_stmt *st, store_module *out);

/* Binds `id` when > 0, else NULL (0 stands for "none"/"system" in the API). */
void store_bind_id(sqlite3_stmt *st, int idx, int64_t id);

/* Binds a copy of `text`, or NULL when text is NULL. */
void store_bind_text(sqlite3_stmt *st, int idx, const char *text);

/* Runs SQL without results. Returns 0 or a STORE_ code. */
int store_exec(store *s, const char *sql);

/* Transactions: BEGIN IMMEDIATE (take the write lock now, so a transaction
 * never fails half-way for a lock), COMMIT, ROLLBACK (ignores errors). */
int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

/* Ends a write transaction the caller began: commits when code is 0, rolls
 * back otherwise (or when the commit fails). Returns the final code. */
int store_finish(store *s, int code);

/* The bodies of store_set_permission and store_module_set_otj for a caller
 * that already holds a write transaction (the demo loader). */
int store_set_permission_in_tx(store *s, int64_t now, int64_t actor_id, int64_t user_id,
                               int management, int facilitate_otj);
int store_module_set_otj_in_tx(store *s, int64_t now, int64_t actor_id, int64_t module_id, int otj);

/* Audit entries of admin writes (admin_audit.c), inside the caller's write
 * transaction. store_audit_json appends `detail` (its reference is taken)
 * as the entry of `action` on subject "<kind>:<id>". store_path_state: the
 * path's {title, modules} (NULL on error). store_audit_path: "path.created"
 * when `before` is NULL, else "path.updated" with what differs from
 * `before` (taken; nothing when nothing changed). */
struct json_t;
int store_audit_json(store *s, int64_t now, int64_t actor_id, const char *action, const char *kind,
                     int64_t id, struct json_t *detail);
struct json_t *store_path_state(store *s, int64_t id);
int store_audit_path(store *s, int64_t now, int64_t actor_id, int64_t id, struct json_t *before);

/* Brings the schema up to date (migrations.c). Returns 0 or a STORE_ code
 * with the reason in s->err. */
int store_migrate(store *s);

/* Learner confirmation (confirm.c), inside store_approvals_commit's
 * transaction. store_confirm_hold: when the approval's module requires the
 * learner's confirmation (and the learner has no completion yet), stores it
 * as waiting and sets a->pending: returns 1; 0 when the approval goes on as
 * usual; <0 on error. store_confirm_withdraw: a "not approved" withdraws a
 * waiting approval of the same room. store_confirm_apply: the learner's
 * confirmation becomes the completion (or a refusal with a reason).
 * store_confirm_lapse: the room closed; what still waits lapses. */
int store_confirm_hold(store *s, store_approval *a);
int store_confirm_withdraw(store *s, const store_approval *a);
int store_confirm_apply(store *s, store_approval *a);
int store_confirm_lapse(store *s, const char *room);

#endif /* OTJ_STORE_INT_H */
