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
#define STORE_OK       0
#define STORE_ERR      (-1) /* SQLite or I/O error; see store_errmsg() */
#define STORE_NOTFOUND (-2) /* no such row */
#define STORE_CONFLICT (-3) /* the row exists already / state forbids it (UNIQUE) */
#define STORE_BUSY     (-4) /* the database stayed locked past the busy timeout: try later */
#define STORE_INVALID  (-5) /* refused by a domain rule (CHECK, trigger, foreign key) */

/* Defaults; each is a named limit, not a magic number in the logic. */
#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_ERRMSG_MAX      256

typedef struct store store;

/* --- The clock of expiry (recertification) ------------------------------ */

/* "Now" wherever an approval's expiry is judged, and the re-drill window.
 * Process-wide, set once at start before any thread uses a store:
 * offset_s shifts the clock (tests only: OTJ_TEST_NOW_OFFSET), window_s is
 * how long before its expiry an approval is due for a re-drill. */
void store_clock_configure(int64_t offset_s, int64_t redrill_window_s);

/* The wall clock plus the offset, in seconds since the epoch. */
int64_t store_now(void);

/* The re-drill window in seconds. */
int64_t store_redrill_window(void);

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

/* Sets how long a statement on this handle waits for another connection's
 * lock before it fails with STORE_BUSY (ms 0: it fails at once). A handle
 * used on an event loop takes a short wait; threads keep the default
 * STORE_BUSY_TIMEOUT_MS. Returns 0 or STORE_ERR. */
int store_set_busy_timeout(store *s, int ms);

/* 0 when this handle could take the database's write lock right now (it
 * takes it and lets it go at once, writing nothing), STORE_BUSY when another
 * connection holds it past the busy timeout, another code on error. */
int store_check_writable(store *s);

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
  int active; /* 0: deactivated (cannot log in, reaches nobody) */
} store_user;

/* Creates a user without permissions. Returns 0 and sets *id (when not NULL),
 * STORE_CONFLICT when the login is taken, STORE_INVALID for an unknown
 * department or an over-long field. */
int store_user_create(store *s, int64_t now, const char *login, const char *name,
                      int64_t department_id, const char *password_hash, int is_admin, int64_t *id);

/* Fill *out. STORE_NOTFOUND when there is no such user. */
int store_user_by_login(store *s, const char *login, store_user *out);
int store_user_by_id(store *s, int64_t id, store_user *out);

/* Deactivates (active = 0) or reactivates a user, in one transaction with
 * its audit entry ("user.deactivated" / "user.reactivated", R11).
 * Deactivating also deletes every login session of the user; completions
 * and audit entries stay. Setting the state the user already has changes
 * nothing and audits nothing. Sets *changed (when not NULL) to 1 when the
 * state changed. STORE_NOTFOUND for an unknown user. */
int store_user_set_active(store *s, int64_t now, int64_t actor_id, int64_t user_id, int active,
                          int *changed);

/* R2: 1 when the user holds Management with the Facilitate OTJ flag, else 0. */
int store_user_is_responsible(const store_user *u);

/* Sets a user's Management and Facilitate OTJ flags and appends the change to
 * the audit log, in one transaction (R11). actor_id 0 = system.
 * Returns STORE_INVALID when facilitate_otj is asked without management,
 * STORE_NOTFOUND for an unknown user. */
int store_set_permission(store *s, int64_t now, int64_t actor_id, int64_t user_id, int management,
                         int facilitate_otj);

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
  int validity_months;  /* 0: approvals never expire; else 1..120 (while OTJ is on) */
  int learner_confirm;  /* an approval waits for the learner's confirmation */
  int learner_evidence; /* learners may attach evidence to their observe tasks */
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
  int position;     /* 0-based, gapless order within the module */
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

/* A fingerprint of a task list as a live room shows it (kind, text and
 * options of every task, in order): two lists with the same digest are the
 * same list. Start from STORE_TASKS_DIGEST_INIT and fold in each task. */
#define STORE_TASKS_DIGEST_INIT 14695981039346656037u
uint64_t store_tasks_digest_add(uint64_t digest, const store_task *t);

/* The digest of the module's tasks as they are stored now. Returns 0 (and
 * *out) or a negative code; a module without tasks has the initial digest. */
int store_module_tasks_digest(store *s, int64_t module_id, uint64_t *out);

/* --- Completions (R9, R10) ----------------------------------------------- */

/* 1 when the learner has a completion of the module that stands: not
 * expired and not due for a re-drill (store_redrill_window) at store_now();
 * 0 when not, <0 on error. When completion_id is not NULL and the result is
 * 1, it is set. A module without validity: any completion stands. */
int store_completion_exists(store *s, int64_t user_id, int64_t module_id, int64_t *completion_id);

/* R7 for a re-drill: 1 when the learner's latest completion of the OTJ
 * module has expired or expires within the re-drill window at store_now(),
 * 0 when not, <0 on error. */
int store_completion_renewable(store *s, int64_t user_id, int64_t module_id);

/* A read transaction around queries that should see one state of the
 * database and take its read lock once (each query alone takes and drops
 * it). Returns 1 when it began one, 0 when the caller is in a transaction
 * already (store_read_end then leaves it alone), or a STORE_ code. Every
 * statement run inside must be reset before store_read_end. */
int store_read_begin(store *s);
void store_read_end(store *s, int began);

/* --- Login sessions ------------------------------------------------------ */

#define STORE_TOKEN_HASH_LEN 32

/* Records a session for the (already hashed) token. STORE_CONFLICT if that
 * hash exists, STORE_INVALID for an unknown user. */
int store_session_create(store *s, int64_t user_id, const unsigned char token_hash[32], int64_t now,
                         int64_t expires_at);

/* Fills *out with the user of a live session (one with now < expires_at,
 * of an active user), as store_user_by_id would, in one query. STORE_NOTFOUND
 * when absent or expired. */
int store_session_user(store *s, const unsigned char token_hash[32], int64_t now, store_user *out);

/* Deletes the session. STORE_NOTFOUND when there was none. */
int store_session_delete(store *s, const unsigned char token_hash[32]);

/* Deletes every session expired at `now`; returns how many, or <0. */
int store_session_purge(store *s, int64_t now);

/* --- Audit (R11) --------------------------------------------------------- */

/* Appends one entry. actor_id 0 = the system. subject and detail_json may be
 * NULL; detail_json, when given, must be valid JSON (else STORE_INVALID).
 * The database refuses every UPDATE or DELETE of audit rows. Every row is
 * chained (prev_hash, hash) by the database in the inserting transaction
 * (audit.c), whoever inserts it. */
int store_audit_append(store *s, int64_t now, int64_t actor_id, const char *action,
                       const char *subject, const char *detail_json);

/* Number of audit entries, or <0. */
int store_audit_count(store *s);

/* --- The audit chain (audit.c) ------------------------------------------- */

#define STORE_AUDIT_HASH_BYTES 32 /* BLAKE2b-256 */

typedef struct store_audit_check {
  int ok;            /* 1: every row's link and hash hold */
  int64_t entries;   /* rows in the log */
  int64_t first_bad; /* when !ok: the id of the first row that does not hold */
  char head[STORE_AUDIT_HASH_BYTES * 2 + 1]; /* when ok: the last row's hash, hex ("" if none) */
} store_audit_check;

/* Walks the whole log in id order in one read transaction and recomputes
 * each row's hash from its content and the row before. Returns 0 with the
 * verdict in *out, or <0 when the log could not be read. */
int store_audit_verify(store *s, store_audit_check *out);

/* The same on a database file opened read-only (no migration, no write):
 * for `otjd verify-audit`. Returns 0 with the verdict, or <0 with a
 * sentence in err. */
int store_audit_verify_file(const char *path, store_audit_check *out, char *err, size_t errlen);

/* The approval entry of a completion (the first "otj.approved" entry whose
 * detail names it), for the record that cites it: its id and its hash as
 * hex. STORE_NOTFOUND when there is none. */
int store_audit_hash_of_completion(store *s, int64_t completion, int64_t *entry_id,
                                   char hex[STORE_AUDIT_HASH_BYTES * 2 + 1]);

void store_audit_hex(const unsigned char h[STORE_AUDIT_HASH_BYTES],
                     char out[STORE_AUDIT_HASH_BYTES * 2 + 1]);

/* --- Demo organisation (DESIGN §10) -------------------------------------- */

/* Loads the demo organisation in one transaction. Every demo user gets the
 * given (already hashed) password_hash. Returns STORE_CONFLICT and changes
 * nothing when the database already has users. store_load_demo uses the
 * current time; store_load_demo_at takes it from the caller. */
int store_load_demo(store *s, const char *password_hash);
int store_load_demo_at(store *s, const char *password_hash, int64_t now);

/* ========================================================================= *
 * Organisation, learning paths and progress (org.c)                         *
 * ========================================================================= *
 *
 * The rules that span rows: R1 reach, R2 responsible, R4 sharing, R5 next
 * module, R6 pending; the admin side of departments, users, modules, paths
 * and sharings; the organisation import; reading the audit log back.
 *
 * Sharings are resolved when asked, never materialised: a path shared with
 * a department reaches everybody in it and in every department below it,
 * including people who join later. "Next module" (R5) is the first module
 * of a path, in order, that the learner has no completion of; a completion
 * belongs to (learner, module), so it counts in every path holding that
 * module.
 *
 * Strings handed to a callback are owned by the store and valid only during
 * that callback. A callback returns 0 to go on, non-zero to stop (the listing
 * function then returns that value). A callback must not call the same
 * listing function again on the same handle.
 */

/* --- R1/R2 reach --------------------------------------------------------- */

/* 1 when responsible_id is an active responsible (R2) and learner_id is a
 * different active user whose department is the responsible's own or below
 * it (R1); 0 when not (also for unknown or deactivated users); <0 on error.
 * Nobody reaches themselves: a responsible does not approve their own OTJ. */
int store_responsible_reaches(store *s, int64_t responsible_id, int64_t learner_id);

/* A person as listings show them. */
typedef struct store_person {
  int64_t id;
  const char *login;
  const char *name;
  int64_t department_id;
  const char *department;
} store_person;
typedef int (*store_person_cb)(const store_person *p, void *ud);

/* R5 pop-up: every responsible who reaches the learner (R1, R2), by name.
 * Returns 0, the callback's value, or <0. */
int store_responsibles_of(store *s, int64_t learner_id, store_person_cb cb, void *ud);

/* --- R4/R5 paths and progress -------------------------------------------- */

typedef enum store_step_state {
  STORE_STEP_COMPLETED = 1, /* the learner has a completion of the module */
  STORE_STEP_AVAILABLE,     /* the next module, ordinary: the learner may complete it */
  STORE_STEP_LOCKED,        /* after the next module */
  STORE_STEP_OTJ_WAITING    /* the next module is OTJ: waits for a responsible */
} store_step_state;

/* "completed", "available", "locked", "otj_waiting". Static string. */
const char *store_step_state_name(int state);

/* One module of one path shared with a learner. */
typedef struct store_path_step {
  int64_t path_id;
  const char *path_title;
  int64_t shared_at; /* when the path reached the learner: the earliest
                        sharing, or the learner's creation when later */
  int position;      /* the module's place in the path */
  int64_t module_id;
  const char *module_title;
  const char *module_type;
  int otj;
  int task_count;
  int state;             /* store_step_state */
  int64_t completion_id; /* 0 when not completed */
  int64_t completed_at;  /* 0 when not completed */
  int64_t expires_at;    /* completed: when the approval expires (0: never) */
  int64_t expired_at;    /* not completed because the last approval expired then */
} store_path_step;
typedef int (*store_path_step_cb)(const store_path_step *st, void *ud);

/* R4 + R5: every module of every path shared with the learner (directly or
 * through their department or one above it), path by path (by title, then
 * id), each in order, with its state. Returns 0, the callback's value, <0. */
int store_learner_paths(store *s, int64_t learner_id, store_path_step_cb cb, void *ud);

/* R5: 1 when module_id is the learner's next module in some path shared
 * with them (ordinary or OTJ), setting *path_id (may be NULL) to the first
 * such path; 0 when not; <0 on error. */
int store_learner_next_in_path(store *s, int64_t learner_id, int64_t module_id, int64_t *path_id);

/* R6/R7: 1 when module_id is an OTJ module, the learner's next module in some
 * shared path, and not completed: sets *path_id to that path and *since
 * (either may be NULL) to when the learner started waiting (the completion
 * of the module before it in that path, or when the path reached the learner
 * if it is the first). 0 when not, <0 on error. */
int store_learner_otj_pending(store *s, int64_t learner_id, int64_t module_id, int64_t *path_id,
                              int64_t *since);

/* The same answer as store_learner_otj_pending (1, 0, <0) without the path
 * and the time: one query over the paths that hold the module, where the
 * other reads every module of every path of the learner. It is what a join
 * asks (R7), at every connection of a shift that scans a room's code. */
int store_learner_otj_waiting(store *s, int64_t learner_id, int64_t module_id);

/* R5: the learner completes an ordinary module alone. In one transaction:
 * checks that the module is not OTJ and is the learner's next module in a
 * shared path, then writes the completion (approved_by NULL) with
 * answers_json (may be NULL; must be JSON). Sets *completion_id and *path_id
 * (either may be NULL). STORE_CONFLICT when already completed, STORE_INVALID
 * (with a sentence in store_errmsg) when OTJ or not the next module,
 * STORE_NOTFOUND for an unknown module. */
int store_complete_self(store *s, int64_t now, int64_t learner_id, int64_t module_id,
                        const char *answers_json, int64_t *completion_id, int64_t *path_id);

/* --- R6 pending OTJ ------------------------------------------------------ */

typedef struct store_pending {
  int64_t learner_id;
  const char *learner_login;
  const char *learner_name;
  int64_t department_id;
  const char *department;
  int64_t module_id;
  const char *module_title;
  int64_t path_id;
  const char *path_title;
  int64_t waiting_since;
} store_pending;
typedef int (*store_pending_cb)(const store_pending *p, void *ud);

/* R6: every (learner, module, path) where the learner is reached by the
 * responsible, the learner's next module in a shared path is OTJ and not
 * completed; longest waiting first. Nothing for a user who is not a
 * responsible. Returns 0, the callback's value, or <0. */
int store_pending_list(store *s, int64_t responsible_id, store_pending_cb cb, void *ud);

/* The number of items store_pending_list would give (the dashboard count),
 * or <0. */
int store_pending_count(store *s, int64_t responsible_id);

/* R6 for every responsible of one department at once: the pending items of
 * every learner within reach of `department_id`, as (learner, items) per
 * learner. A responsible of that department has the sum less their own
 * items (nobody waits on themselves). For dashboards: one query per
 * department instead of one per responsible. Returns 0, cb's value, <0. */
typedef int (*store_count_cb)(int64_t learner_id, int count, void *ud);
int store_pending_by_learner(store *s, int64_t department_id, store_count_cb cb, void *ud);

/* The same reach, for the dashboard's count of open "Ask for OTJ" requests
 * (requests.h): per learner, the modules they wait for (pending now, R6)
 * and have an open request for. A request of a module that no longer waits
 * (completed, OTJ switched off, path no longer shared) does not count, nor
 * a learner out of reach; a module pending in two paths counts once. As
 * GET /api/otj/pending's `requests`. Returns 0, cb's value, <0. */
int store_pending_asked_by_learner(store *s, int64_t department_id, store_count_cb cb, void *ud);

/* --- Recertification (storage/recert.c) ----------------------------------- */

#define STORE_MAX_VALIDITY_MONTHS 120

/* Sets a module's validity in months (0: none) inside the caller's
 * transaction; a change is audited ("module.validity"). STORE_INVALID out
 * of 0..120. */
int store_module_set_validity_in_tx(store *s, int64_t now, int64_t actor_id, int64_t module_id,
                                    int months);

/* One learner whose approval of a module expires within the window or has
 * expired. */
typedef struct store_due {
  int64_t module_id;
  const char *module_title;
  int validity_months;
  int64_t learner_id;
  const char *learner_login;
  const char *learner_name;
  int64_t department_id;
  const char *department;
  int64_t completion_id; /* the latest completion */
  int64_t completed_at;
  int64_t expires_at;
  int expired;  /* at store_now() */
  int may_join; /* due for a re-drill now (store_completion_renewable) */
} store_due;
typedef int (*store_due_cb)(const store_due *d, void *ud);

/* The learners within the responsible's reach (R1/R2) whose latest
 * approval of an OTJ module with a validity expires before store_now() +
 * window_s (expired ones included), by module title, soonest first.
 * Nothing for a user who is not a responsible. Returns 0, cb's value, <0. */
int store_redrill_due(store *s, int64_t responsible_id, int64_t window_s, store_due_cb cb,
                      void *ud);

/* --- Completions listing ---------------------------------------------------- */

typedef enum store_scope {
  STORE_SCOPE_ALL = 0,   /* every completion (admin) */
  STORE_SCOPE_REACH = 1, /* learners in the viewer's department or below (responsible) */
  STORE_SCOPE_OWN = 2    /* the viewer's own */
} store_scope;

typedef struct store_completion_row {
  int64_t id;
  int64_t user_id;
  const char *login;
  const char *name;
  const char *department;
  int64_t module_id;
  const char *module_title;
  int64_t path_id;        /* 0 when none */
  const char *path_title; /* NULL when none */
  int64_t approved_by;    /* 0 when completed alone */
  const char *approved_by_name;
  const char *room_id; /* NULL when not in a room */
  int64_t completed_at;
  const char *attendance; /* JSON {"seconds", "intervals"}, NULL when none was kept */
  int64_t expires_at;     /* 0: never */
  int expired;            /* expired at store_now(), or replaced by a re-drill's */
  int64_t decided_at;     /* the responsible's approval (0: completed alone) */
  int64_t confirmed_at;   /* the learner's confirmation (0: not required) */
} store_completion_row;
typedef int (*store_completion_cb)(const store_completion_row *c, void *ud);

/* Completions the scope allows, oldest first. Returns 0, the callback's
 * value, or <0. */
int store_completions_list(store *s, store_scope scope, int64_t viewer_id, store_completion_cb cb,
                           void *ud);

/* --- One completion's record (records.c) ---------------------------------- */

typedef struct store_record {
  int64_t id;
  int64_t learner_id;
  const char *learner_login, *learner_name;
  int64_t department_id;
  const char *department;
  int64_t module_id;
  const char *module_title;
  int64_t path_id;        /* 0 when none */
  const char *path_title; /* NULL when none */
  int64_t approved_by;    /* 0 when completed alone */
  const char *approved_by_name;
  const char *room_id, *room_code;        /* NULL when not in a room */
  int64_t room_opened_at, room_closed_at; /* 0 when unknown / still open */
  int64_t completed_at;
  const char *answers_json, *marks_json, *note; /* as the completion kept them; may be NULL */
  const char *attendance_json; /* {seconds, intervals} or NULL when none was kept */
  int64_t decided_at;          /* the responsible's decision (0: completed alone) */
  int64_t confirmed_at;        /* the learner's confirmation (0: not required) */
} store_record;
typedef int (*store_record_cb)(const store_record *rec, void *ud);

/* Calls cb once with completion `id` (strings valid during the call).
 * Returns cb's value, STORE_NOTFOUND, or <0. */
int store_completion_get(store *s, int64_t id, store_record_cb cb, void *ud);

/* Who may read a completion's record: the learner, an administrator, the
 * responsible who approved it, or a responsible who reaches the learner
 * (R1/R2). 1 yes, 0 no, <0 on error. */
int store_record_visible(store *s, const store_user *viewer, const store_record *rec);

/* --- Admin: departments, users ------------------------------------------- */

typedef struct store_department {
  int64_t id;
  const char *name;
  int64_t parent_id; /* 0 for a root */
} store_department;
typedef int (*store_department_cb)(const store_department *d, void *ud);

/* Every department, parents before children (by depth, then name). */
int store_departments_list(store *s, store_department_cb cb, void *ud);

/* Renames a department. STORE_NOTFOUND, STORE_INVALID for a bad name. */
int store_department_rename(store *s, int64_t id, const char *name);

typedef int (*store_user_cb)(const store_user *u, void *ud);

/* Every user by login; password_hash is left empty. */
int store_users_list(store *s, store_user_cb cb, void *ud);

/* Changes a user: name (NULL keeps), department (0 keeps), is_admin (<0
 * keeps). A change of is_admin is audited ("user.admin", R11) in the same
 * transaction. STORE_NOTFOUND, STORE_INVALID for an unknown department or a
 * bad name. */
int store_user_update(store *s, int64_t now, int64_t actor_id, int64_t user_id, const char *name,
                      int64_t department_id, int is_admin);

/* --- Admin: modules with tasks (R3) --------------------------------------- */

/* A task as a caller gives it; options_json / correct_json may be NULL. */
typedef struct store_task_in {
  const char *kind;
  const char *text;
  const char *options_json;
  const char *correct_json;
} store_task_in;

/* Caps on a module's content (DESIGN §6), checked wherever tasks enter the
 * store (create, update, import) so that a live room never has to cut a
 * module short. Bytes are UTF-8 bytes. */
#define STORE_MAX_TASKS       256  /* tasks in one module */
#define STORE_MAX_OPTIONS     32   /* options of one question */
#define STORE_MAX_TASK_TEXT   2000 /* bytes of a task's text */
#define STORE_MAX_OPTION_TEXT 200  /* bytes of one option */

/* The first cap a task list breaks. */
typedef struct store_limit {
  const char *limit; /* "tasks_per_module", "options_per_question", "task_text",
                        "option_text" (static strings) */
  int64_t max;       /* the cap */
  int64_t got;       /* what the list has */
  int task;          /* the task's index, -1 for the list as a whole */
  int option;        /* the option's index for "option_text", else -1 */
} store_limit;

/* The one check of the caps above, for every path that stores tasks.
 * Returns 0 when the list fits, else STORE_INVALID with *out filled (out may
 * be NULL). Malformed options JSON is not this check's business (the
 * database refuses it). */
int store_tasks_check(const store_task_in *tasks, int n, store_limit *out);

/* Where the breach is, under `place` (the task list's own place, e.g.
 * "tasks" or "modules[2].tasks"): "tasks", "tasks[3].text",
 * "tasks[3].options" or "tasks[3].options[1]". */
void store_limit_where(const store_limit *l, const char *place, char *buf, size_t cap);

/* The breach as "<where>: <sentence>", e.g. "tasks[3].options: a question
 * has at most 32 options; this one has 40". */
void store_limit_describe(const store_limit *l, const char *place, char *buf, size_t cap);

/* A module as a caller gives it. For an update, NULL title/type, otj < 0
 * and task_count < 0 keep what is there. */
typedef struct store_module_in {
  const char *title;
  const char *type;
  int otj;
  const store_task_in *tasks;
  int task_count;
  int validity_months; /* 1..120; 0 keeps what is there (none for a new module); -1 none */
} store_module_in;

/* Creates a module with its tasks and OTJ setting in one transaction (the
 * OTJ switch is audited, R11). STORE_INVALID (with a sentence) for a bad
 * type, OTJ on a non-quiz (R3) or a bad task. */
int store_module_create_full(store *s, int64_t now, int64_t actor_id, const store_module_in *in,
                             int64_t *id);

/* Changes a module in one transaction: OTJ off first, then title, type and
 * tasks, then OTJ on, so {type:"content", otj:false} works on an OTJ quiz.
 * A refusal (R3: OTJ on a non-quiz, or a type away from quiz while OTJ
 * stays on) changes nothing and writes no audit entry; an OTJ change is
 * audited (R11). STORE_NOTFOUND, STORE_INVALID. */
int store_module_update(store *s, int64_t now, int64_t actor_id, int64_t id,
                        const store_module_in *in);

typedef int (*store_module_cb)(const store_module *m, void *ud);

/* Every module by title. */
int store_modules_list(store *s, store_module_cb cb, void *ud);

/* --- Admin: paths and sharings (R4) --------------------------------------- */

typedef struct store_path_info {
  int64_t id;
  const char *title;
  int64_t created_at;
  const char *modules_json; /* JSON array of module ids, in order */
} store_path_info;
typedef int (*store_path_cb)(const store_path_info *p, void *ud);

/* Creates a path with its modules in this order, audited ("path.created"
 * {title, modules}, R11). STORE_INVALID for an unknown module or a module
 * listed twice. */
int store_path_create(store *s, int64_t now, int64_t actor_id, const char *title,
                      const int64_t *module_ids, int n, int64_t *id);

/* Changes a path's title (NULL keeps) and/or its modules (n < 0 keeps),
 * audited ("path.updated" with what changed, R11). */
int store_path_update(store *s, int64_t now, int64_t actor_id, int64_t id, const char *title,
                      const int64_t *module_ids, int n);

/* Every path by title; id > 0 limits it to that path (STORE_NOTFOUND). */
int store_paths_list(store *s, int64_t id, store_path_cb cb, void *ud);

typedef struct store_sharing {
  int64_t id;
  int64_t path_id;
  int64_t user_id;       /* 0 when a department sharing */
  int64_t department_id; /* 0 when a user sharing */
  int64_t created_at;
} store_sharing;
typedef int (*store_sharing_cb)(const store_sharing *sh, void *ud);

/* Shares a path with exactly one of a user or a department. STORE_CONFLICT
 * when that sharing exists, STORE_INVALID for unknown ids. */
int store_sharing_create(store *s, int64_t now, int64_t path_id, int64_t user_id,
                         int64_t department_id, int64_t *id);

/* Removes a sharing. STORE_NOTFOUND. */
int store_sharing_delete(store *s, int64_t id);

/* Every sharing (path_id 0) or those of one path, oldest first. */
int store_sharings_list(store *s, int64_t path_id, store_sharing_cb cb, void *ud);

/* --- Admin writes, each audited in its own transaction (admin_audit.c, R11) --
 * The entry names the actor, the action and subject ("department.updated",
 * "department:4") and the fields set or changed ({"from", "to"}); never a
 * password or its hash. A change that changes nothing writes no entry. */

/* "department.created" {name, parent_id}. Codes as store_department_create. */
int store_admin_department_create(store *s, int64_t now, int64_t actor_id, const char *name,
                                  int64_t parent_id, int64_t *id);

/* Renames (name NULL keeps) and/or moves (when `move`, under parent_id; 0 =
 * a root): "department.updated". Codes as store_department_move / _rename. */
int store_admin_department_update(store *s, int64_t now, int64_t actor_id, int64_t id,
                                  const char *name, int move, int64_t parent_id);

typedef struct store_user_in {
  const char *login, *name;
  int64_t department_id;
  const char *password_hash;
  int admin, management, facilitate_otj;
} store_user_in;

/* A user with their permissions: "user.created" {login, name,
 * department_id, admin, management, facilitate_otj}. Codes as
 * store_user_create; STORE_INVALID for Facilitate OTJ without Management. */
int store_admin_user_create(store *s, int64_t now, int64_t actor_id, const store_user_in *in,
                            int64_t *id);

/* "sharing.created" / "sharing.deleted" {path_id, user_id | department_id}. */
int store_admin_sharing_create(store *s, int64_t now, int64_t actor_id, int64_t path_id,
                               int64_t user_id, int64_t department_id, int64_t *id);
int store_admin_sharing_delete(store *s, int64_t now, int64_t actor_id, int64_t id);

/* --- Audit read back (R11) ------------------------------------------------ */

typedef struct store_audit_entry {
  int64_t id;
  int64_t at;
  int64_t actor_id;        /* 0 = the system */
  const char *actor_login; /* NULL for the system or a deleted user */
  const char *action;
  const char *subject;     /* may be NULL */
  const char *detail_json; /* may be NULL */
} store_audit_entry;
typedef int (*store_audit_cb)(const store_audit_entry *e, void *ud);

/* Audit entries newest first, those with id < before_id (0 = from the
 * newest), at most limit of them. */
int store_audit_list(store *s, int64_t before_id, int limit, store_audit_cb cb, void *ud);

/* --- Organisation import ---------------------------------------------------- */

/* A whole organisation as plain data (the server builds it from JSON; see
 * docs/import-format.md). Rows refer to each other by name: a name is looked
 * up among the document's own rows first, then in the database. */
typedef struct store_import_department {
  const char *name;
  const char *parent; /* NULL for a root; must come earlier or exist */
} store_import_department;

typedef struct store_import_user {
  const char *login;
  const char *name;
  const char *department;
  const char *password_hash; /* already hashed */
  int admin, management, facilitate_otj;
} store_import_user;

typedef struct store_import_module {
  const char *title;
  const char *type;
  int otj;
  const store_task_in *tasks;
  int task_count;
  int validity_months; /* 0: none */
} store_import_module;

typedef struct store_import_path {
  const char *title;
  const char *const *modules; /* titles, in order */
  int module_count;
} store_import_path;

typedef struct store_import_sharing {
  const char *path;
  const char *const *users; /* logins */
  int user_count;
  const char *const *departments; /* names */
  int department_count;
} store_import_sharing;

typedef struct store_import_completion {
  const char *login;
  const char *module;
  const char *path;     /* may be NULL */
  int64_t completed_at; /* 0 = now */
} store_import_completion;

typedef struct store_import {
  const store_import_department *departments;
  int department_count;
  const store_import_user *users;
  int user_count;
  const store_import_module *modules;
  int module_count;
  const store_import_path *paths;
  int path_count;
  const store_import_sharing *sharings;
  int sharing_count;
  const store_import_completion *completions;
  int completion_count;
} store_import;

/* Applies the whole document in ONE transaction, or nothing. On failure
 * store_errmsg names the first offending place, e.g.
 * `users[3].department: no department named "Kitchn"`, and the code is
 * STORE_INVALID (a bad reference or a refused value), STORE_CONFLICT (a
 * name taken or repeated) or another negative code. Permission grants and
 * OTJ switches are audited one by one, and the import as a whole once. */
int store_import_org(store *s, int64_t now, int64_t actor_id, const store_import *doc);
/* The module switches besides OTJ, as bits of the flags the import takes. */
#define STORE_MODULE_CONFIRM          1 /* modules.learner_confirm */
#define STORE_MODULE_LEARNER_EVIDENCE 2 /* modules.learner_evidence */

/* The same, and module i gets the switches in module_flags[i]
 * (STORE_MODULE_* bits; module_flags may be NULL). */
int store_import_org_with(store *s, int64_t now, int64_t actor_id, const store_import *doc,
                          const int *module_flags);

/* Whether approvals of module `id` wait for the learner's confirmation
 * (modules.learner_confirm); a change is audited (R11). 0, STORE_NOTFOUND
 * or another negative code. */
int store_module_set_confirm(store *s, int64_t now, int64_t actor_id, int64_t id, int on);

/* Whether learners may attach evidence to their own observe tasks in rooms
 * of module `id` (modules.learner_evidence); audited the same way. */
int store_module_set_learner_evidence(store *s, int64_t now, int64_t actor_id, int64_t id, int on);

/* --- OTJ decisions and room history (R9, R10, R11) ----------------------- */

typedef enum store_outcome {
  STORE_APPROVED = 0,     /* write (or find) the completion */
  STORE_NOT_APPROVED = 1, /* the responsible said no: audit only */
  STORE_REFUSED = 2       /* a rule refused the approval (R9): audit only */
} store_outcome;

/* One decision of a batch. Inputs are the caller's; answers_json and
 * marks_json must be valid JSON (or NULL); room, note and reason may be NULL.
 * path 0 = none. The outputs are set by store_approvals_commit. */
typedef struct store_approval {
  int64_t learner, module, path, approver, now;
  store_outcome outcome;
  int check_waiting;  /* STORE_APPROVED: first check (in the transaction)
                         that the learner waits for the module (R6/R7),
                         unless they completed it already (R10); sets
                         path, or turns the decision into STORE_REFUSED */
  int check_approver; /* any outcome: first check (in the transaction) that
                         the approver is an active responsible who reaches
                         the learner (R1, R2); when not, the decision turns
                         into STORE_REFUSED with `forbidden` set and no
                         completion is written */
  const char *room, *answers_json, *marks_json, *note, *reason;
  /* when the learner was in the room (JSON); may be NULL */
  const char *attendance_json;
  int check_tasks;       /* first check (in the transaction) that the module's
                            tasks still have tasks_digest (R9 was judged on
                            them); if not, STORE_REFUSED and tasks_changed
                            (an approval of a learner who has the completion
                            already keeps it, R10) */
  uint64_t tasks_digest; /* store_tasks_digest_add over the room's tasks */
  /* out */
  int tasks_changed;  /* 1 when refused because the module's tasks changed */
  int rc;             /* 0, or the STORE_ code of this decision */
  int64_t completion; /* STORE_APPROVED: the completion's id */
  int created;        /* 1 when this call created it, 0 when it existed */
  int forbidden;      /* 1 when check_approver refused the approver */
  /* learner confirmation (storage/confirm.c) */
  int confirm;        /* in: this item is not a decision but the learner's
                         confirmation (learner, module, room, now) of the
                         approval waiting in that room: it becomes the
                         completion (decided_at, confirmed_at = now), or
                         STORE_REFUSED with a reason when none waits */
  int pending;        /* out: an approval of a module that requires the
                         learner's confirmation was stored as waiting for it
                         (no completion yet) */
  int64_t decided_at; /* out, confirm: the approver's decision time */
} store_approval;

/* Applies n decisions in one transaction (group commit: with
 * synchronous=FULL, one fsync for the batch). An approval of a learner who
 * already completed the module returns the existing completion (R10). Each
 * decision is audited (R11). A decision that fails on its own gets its rc;
 * the others still commit. Returns 0 when the transaction committed (check
 * each rc), or a STORE_ code when nothing was written. */
int store_approvals_commit(store *s, store_approval *a, size_t n);

/* Room history: a live room opened / closed, each audited ("room.opened",
 * "room.closed", actor the host, subject "room:<id>") in the same
 * transaction. A close of a room already closed changes and audits nothing. */
int store_room_opened(store *s, const char *room, int64_t module, int64_t host, const char *code,
                      int64_t now, const unsigned char *confirm_secret);
/* The room's confirmation secret (STORE_CONFIRM_SECRET_LEN bytes, made at
 * open; never sent to learners) into out. 0, or STORE_NOTFOUND when the
 * room is unknown or has none. */
#define STORE_CONFIRM_SECRET_LEN 32
int store_room_confirm_secret(store *s, const char *room, unsigned char *out);
/* Also lapses the approvals of the room that still wait for a learner's
 * confirmation (they never become completions). */
int store_room_closed(store *s, const char *room, int64_t now);
/* Rooms `host` opened since `since` and has not closed (a room left open
 * expires from Redis after its idle time; `since` excludes those). */
int store_rooms_open_count(store *s, int64_t host, int64_t since);
/* A room of the history: its host, join code and whether it is still open.
 * STORE_NOTFOUND for an unknown room. */
int store_room_get(store *s, const char *room, int64_t *host, char *code, size_t code_cap,
                   int *open);

/* --- Load provisioning (bulk.c) ------------------------------------------ */

/* One login session to create in bulk: the caller fills login and the
 * token's digest; the store fills user_id. */
typedef struct store_bulk_session {
  const char *login;
  unsigned char token_hash[STORE_TOKEN_HASH_LEN];
  int64_t user_id; /* out */
} store_bulk_session;

/* Creates one session per item and appends ONE audit entry ("session.bulk",
 * actor_id, detail {"count": n}), all in one transaction: either every
 * session exists afterwards or none does. For load tests, which cannot log
 * in thousands of users through argon2id. Returns 0; STORE_NOTFOUND (with
 * the login in store_errmsg) when a login does not exist; another code on
 * error. */
int store_sessions_bulk(store *s, int64_t now, int64_t expires_at, int64_t actor_id,
                        store_bulk_session *items, size_t n);

#endif /* OTJ_STORE_H */
