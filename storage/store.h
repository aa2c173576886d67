/* store.h — the durable store of OTJ live (SQLite).
 *
 * Everything that must survive a restart lives here: departments, users and
 * their permissions, modules and their tasks, learning paths and sharings,
 * completions, login sessions, live-room history and the audit log.
 *
 * The one design idea: the database itself enforces the domain rules that a
 * row can break on its own (R3 "OTJ only on quiz modules", R10 "one completion
 * per learner and module", R11 "audit is append-only", no department cycles),
 * so no caller — API, import or a hand-typed sqlite3 session — can store a
 * state the product does not allow. The C functions add the rules that span
 * several rows (R1 reach, R2 responsible) and report failures as codes.
 *
 * Threads: a `store` is ONE SQLite connection. A handle may be used by one
 * thread at a time (it is opened without SQLite's own mutex, and it caches
 * prepared statements). A process that works from several threads opens one
 * handle per thread; several handles — in one or several processes — may
 * share one database file (WAL mode, busy timeout).
 *
 * Times are unix seconds (int64_t) chosen by the caller, so tests control them.
 * Strings returned in structs are copied into the struct; nothing returned by
 * this API needs freeing unless a function says so.
 */
#ifndef OTJ_STORE_H
#define OTJ_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Return codes. 0 is success. */
#define STORE_OK 0
#define STORE_ERR (-1)      /* SQLite or I/O error; see store_errmsg() */
#define STORE_NOTFOUND (-2) /* no such row */
#define STORE_CONFLICT (-3) /* the row exists already / state forbids it (UNIQUE) */
#define STORE_BUSY (-4)     /* the database stayed locked past the busy timeout: try later */
#define STORE_INVALID (-5)  /* refused by a domain rule (CHECK, trigger, foreign key) */

/* Defaults; each is a named limit, not a magic number in the logic. */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_ERRMSG_MAX 256

typedef struct store store;

/* --- Lifetime ------------------------------------------------------------ */

/* Opens (creating when absent) the database at `path` and brings its schema up
 * to date. Sets journal_mode=WAL, foreign_keys=ON, busy_timeout and
 * synchronous=NORMAL. On success returns 0 and *out owns the handle (free it
 * with store_close). On failure returns a negative code, sets *out=NULL and
 * writes a sentence saying why into err (when err is not NULL). A database
 * whose schema is newer than this build knows is refused, never touched. */
int store_open(const char *path, store **out, char *err, size_t errlen);

/* Closes the handle and frees it. NULL is accepted. */
void store_close(store *s);

/* The last error message of this handle (valid until the next call on it). */
const char *store_errmsg(const store *s);

/* A short English name of a return code ("not found", ...). Static string. */
const char *store_strerror(int code);

/* Switches this handle between synchronous=FULL (full != 0; for the writer
 * that commits completions) and synchronous=NORMAL. Returns 0 or STORE_ERR. */
int store_set_durable(store *s, int full);

/* Reads a PRAGMA of this connection as text into out (e.g. "journal_mode" ->
 * "wal", "foreign_keys" -> "1"), for diagnostics and tests. name must be a
 * plain pragma name ([a-z_]); anything else is STORE_INVALID. */
int store_pragma(store *s, const char *name, char *out, size_t outlen);

/* --- Schema and health --------------------------------------------------- */

/* The schema version this build creates and understands. */
int store_schema_latest(void);

/* The schema version recorded in the database, or a negative code. */
int store_schema_version(store *s);

/* 0 when SQLite answers a trivial query, a negative code otherwise. */
int store_ping(store *s);

/* Number of users, or a negative code. */
int store_user_count(store *s);

/* --- Generic lookups by name --------------------------------------------- */

typedef enum store_entity {
    STORE_DEPARTMENT, /* key: name (first match by id when names repeat) */
    STORE_USER,       /* key: login */
    STORE_MODULE,     /* key: title */
    STORE_PATH        /* key: title */
} store_entity;

/* Finds the id of the entity whose name/login/title is `key`.
 * Returns 0 and sets *id, STORE_NOTFOUND, or another negative code. */
int store_find_id(store *s, store_entity kind, const char *key, int64_t *id);

/* --- Departments (R1) ---------------------------------------------------- */

/* Creates a department under parent_id (0 = a root). Returns 0 and sets *id
 * (when id is not NULL), STORE_INVALID for an unknown parent. */
int store_department_create(store *s, const char *name, int64_t parent_id, int64_t *id);

/* Moves a department under a new parent (0 = make it a root). Returns
 * STORE_INVALID when that would put it under itself or one of its own
 * descendants (a cycle), STORE_NOTFOUND for an unknown department. */
int store_department_move(store *s, int64_t id, int64_t new_parent_id);

/* Sets *parent_id to the parent (0 for a root). STORE_NOTFOUND if unknown. */
int store_department_parent(store *s, int64_t id, int64_t *parent_id);

/* R1: 1 when `dept` is `responsible_dept` itself or any department below it,
 * 0 when not (or when either is unknown), a negative code on error. */
int store_dept_within_reach(store *s, int64_t responsible_dept, int64_t dept);

/* --- Users and permissions (R2) ------------------------------------------ */

typedef struct store_user {
    int64_t id;
    char login[64];
    char name[128];
    int64_t department_id;
    char department[128];
    int is_admin;
    int management;
    int facilitate_otj;
    char password_hash[160];
} store_user;

/* Creates a user without permissions. Returns 0 and sets *id (when not NULL),
 * STORE_CONFLICT when the login is taken, STORE_INVALID for an unknown
 * department or an over-long field. */
int store_user_create(store *s, int64_t now, const char *login, const char *name,
                      int64_t department_id, const char *password_hash, int is_admin,
                      int64_t *id);

/* Fill *out. STORE_NOTFOUND when there is no such user. */
int store_user_by_login(store *s, const char *login, store_user *out);
int store_user_by_id(store *s, int64_t id, store_user *out);

/* R2: 1 when the user holds Management with the Facilitate OTJ flag, else 0. */
int store_user_is_responsible(const store_user *u);

/* Sets a user's Management and Facilitate OTJ flags and appends the change to
 * the audit log, in one transaction (R11). actor_id 0 = system.
 * Returns STORE_INVALID when facilitate_otj is asked without management,
 * STORE_NOTFOUND for an unknown user. */
int store_set_permission(store *s, int64_t now, int64_t actor_id, int64_t user_id,
                         int management, int facilitate_otj);

/* --- Modules and tasks (R3, R8) ------------------------------------------ */

#define STORE_MODULE_TYPE_MAX 16
typedef struct store_module {
    int64_t id;
    char title[128];
    char type[STORE_MODULE_TYPE_MAX]; /* "quiz", "content", "video", "document" */
    int otj;
    int task_count;
    int64_t created_at;
    int64_t updated_at;
} store_module;

/* Fills *out. STORE_NOTFOUND when there is no such module. */
int store_module_by_id(store *s, int64_t id, store_module *out);

/* Creates a module (otj off). STORE_INVALID for an unknown type. */
int store_module_create(store *s, int64_t now, const char *title, const char *type, int64_t *id);

/* R3: switches OTJ on or off and appends the toggle to the audit log (R11),
 * in one transaction. STORE_INVALID when turning it on for a module that is
 * not a quiz; STORE_NOTFOUND for an unknown module. */
int store_module_set_otj(store *s, int64_t now, int64_t actor_id, int64_t module_id, int otj);

/* R3: changes a module's type. STORE_INVALID when the type is unknown, or
 * when OTJ is on and the new type is not "quiz". */
int store_module_set_type(store *s, int64_t now, int64_t module_id, const char *type);

/* One task as the callback of store_module_tasks sees it. The strings are
 * owned by the store and valid only during the callback; options_json and
 * correct_json are NULL when the task has none. */
typedef struct store_task {
    int64_t id;
    int position; /* 0-based, gapless order within the module */
    const char *kind; /* "question" or "observe" */
    const char *text;
    const char *options_json;
    const char *correct_json;
} store_task;

/* Return non-zero from the callback to stop early (store_module_tasks then
 * returns that value). */
typedef int (*store_task_cb)(const store_task *t, void *ud);

/* Calls cb for every task of the module in position order. Returns 0, the
 * callback's non-zero value, or a negative code. A module without tasks
 * calls nothing and returns 0. */
int store_module_tasks(store *s, int64_t module_id, store_task_cb cb, void *ud);

/* --- Completions (R9, R10) ----------------------------------------------- */

/* 1 when the learner has a completion of the module, 0 when not, <0 on error.
 * When completion_id is not NULL and the result is 1, it is set. */
int store_completion_exists(store *s, int64_t user_id, int64_t module_id, int64_t *completion_id);

/* --- Login sessions ------------------------------------------------------ */

#define STORE_TOKEN_HASH_LEN 32

/* Records a session for the (already hashed) token. STORE_CONFLICT if that
 * hash exists, STORE_INVALID for an unknown user. */
int store_session_create(store *s, int64_t user_id, const unsigned char token_hash[32],
                         int64_t now, int64_t expires_at);

/* Sets *user_id for a live session: one with now < expires_at.
 * STORE_NOTFOUND when absent or expired. */
int store_session_user(store *s, const unsigned char token_hash[32], int64_t now,
                       int64_t *user_id);

/* Deletes the session. STORE_NOTFOUND when there was none. */
int store_session_delete(store *s, const unsigned char token_hash[32]);

/* Deletes every session expired at `now`; returns how many, or <0. */
int store_session_purge(store *s, int64_t now);

/* --- Audit (R11) --------------------------------------------------------- */

/* Appends one entry. actor_id 0 = the system. subject and detail_json may be
 * NULL; detail_json, when given, must be valid JSON (else STORE_INVALID).
 * The database refuses every UPDATE or DELETE of audit rows. The hash-chain
 * columns (prev_hash, hash) exist but are left NULL for now. */
int store_audit_append(store *s, int64_t now, int64_t actor_id, const char *action,
                       const char *subject, const char *detail_json);

/* Number of audit entries, or <0. */
int store_audit_count(store *s);

/* --- Demo organisation (DESIGN §10) -------------------------------------- */

/* Loads the demo organisation in one transaction. Every demo user gets the
 * given (already hashed) password_hash. Returns STORE_CONFLICT and changes
 * nothing when the database already has users. store_load_demo uses the
 * current time; store_load_demo_at takes it from the caller. */
int store_load_demo(store *s, const char *password_hash);
int store_load_demo_at(store *s, const char *password_hash, int64_t now);

#endif /* OTJ_STORE_H */
