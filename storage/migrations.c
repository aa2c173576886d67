/* migrations.c — the schema of OTJ live and how a database reaches it.
 *
 * The schema is an ordered list of steps; step i (1-based) brings the
 * database from version i-1 to version i. Each step runs in its own
 * BEGIN IMMEDIATE transaction together with the row recording it in
 * `schema_version`, so a step is either wholly applied and recorded or not at
 * all. The version is re-read inside that transaction: when several handles
 * or processes open one fresh file at once, the first one migrates and the
 * others find nothing left to do. A database recording a version newer than
 * the steps below is refused untouched (an older build must not write to it).
 *
 * Steps are append-only: once a step has shipped it is never edited; a change
 * is a new step at the end of the list.
 */
#include <stdio.h>

#include "store_int.h"

/* Schema v1: the whole domain of DESIGN §2.
 *
 * Rules the database enforces by itself:
 *   - departments form a tree: a trigger refuses a parent that is the
 *     department itself or one of its descendants;
 *   - facilitate_otj requires management (CHECK, R2);
 *   - otj only on quiz modules, also when the type changes (CHECK, R3);
 *   - one completion per learner and module (UNIQUE, R10);
 *   - the audit log is append-only (triggers, R11);
 *   - JSON columns hold valid JSON (CHECK json_valid).
 * Tables are STRICT so a wrongly typed value is an error, not a silent cast.
 */
static const char MIGRATION_1[] =
    "CREATE TABLE departments ("
    "  id        INTEGER PRIMARY KEY,"
    "  name      TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 127),"
    "  parent_id INTEGER REFERENCES departments(id) ON DELETE RESTRICT"
    ") STRICT;"
    "CREATE INDEX departments_parent ON departments(parent_id);"
    "CREATE INDEX departments_name ON departments(name);"

    /* A new row has no descendants yet, so only 'its own parent' can loop. */
    "CREATE TRIGGER departments_no_self_parent AFTER INSERT ON departments"
    "  WHEN NEW.parent_id = NEW.id "
    "BEGIN SELECT RAISE(ABORT, 'a department cannot be its own parent'); END;"

    /* Moving a department: refuse when it is among the new parent's ancestors
     * (the new parent included). */
    "CREATE TRIGGER departments_no_cycle BEFORE UPDATE OF parent_id, id ON departments"
    "  WHEN NEW.parent_id IS NOT NULL AND ("
    "    NEW.parent_id = NEW.id OR OLD.id IN ("
    "      WITH RECURSIVE up(x) AS ("
    "        SELECT NEW.parent_id"
    "        UNION SELECT d.parent_id FROM departments d JOIN up ON d.id = up.x"
    "        WHERE d.parent_id IS NOT NULL)"
    "      SELECT x FROM up)) "
    "BEGIN SELECT RAISE(ABORT, 'a department cannot be moved below itself (cycle)'); END;"

    /* Logins compare without case: phones capitalise the first letter. */
    "CREATE TABLE users ("
    "  id            INTEGER PRIMARY KEY,"
    "  login         TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(login) BETWEEN 1 AND 63),"
    "  name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 127),"
    "  department_id INTEGER NOT NULL REFERENCES departments(id) ON DELETE RESTRICT,"
    "  password_hash TEXT NOT NULL CHECK (length(password_hash) < 160),"
    "  is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),"
    "  created_at    INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX users_department ON users(department_id);"

    /* No row = no permission. */
    "CREATE TABLE permissions ("
    "  user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    "  management     INTEGER NOT NULL DEFAULT 0 CHECK (management IN (0, 1)),"
    "  facilitate_otj INTEGER NOT NULL DEFAULT 0 CHECK (facilitate_otj IN (0, 1)),"
    "  updated_at     INTEGER NOT NULL,"
    "  CHECK (facilitate_otj = 0 OR management = 1)"
    ") STRICT;"
    "CREATE INDEX permissions_responsible ON permissions(user_id)"
    "  WHERE management = 1 AND facilitate_otj = 1;"

    "CREATE TABLE modules ("
    "  id         INTEGER PRIMARY KEY,"
    "  title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 127),"
    "  type       TEXT NOT NULL CHECK (type IN ('quiz', 'content', 'video', 'document')),"
    "  otj        INTEGER NOT NULL DEFAULT 0 CHECK (otj IN (0, 1)),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  CHECK (otj = 0 OR type = 'quiz')"
    ") STRICT;"
    "CREATE INDEX modules_title ON modules(title);"

    /* position is the 0-based task index the wire protocol uses. */
    "CREATE TABLE tasks ("
    "  id        INTEGER PRIMARY KEY,"
    "  module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE CASCADE,"
    "  position  INTEGER NOT NULL CHECK (position >= 0),"
    "  kind      TEXT NOT NULL CHECK (kind IN ('question', 'observe')),"
    "  text      TEXT NOT NULL CHECK (length(text) >= 1),"
    "  options   TEXT CHECK (options IS NULL OR json_valid(options)),"
    "  correct   TEXT CHECK (correct IS NULL OR json_valid(correct)),"
    "  CHECK (kind = 'question' OR (options IS NULL AND correct IS NULL)),"
    "  UNIQUE (module_id, position)"
    ") STRICT;"

    "CREATE TABLE paths ("
    "  id         INTEGER PRIMARY KEY,"
    "  title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 127),"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX paths_title ON paths(title);"

    /* A module appears at most once in a path (progress is per module). */
    "CREATE TABLE path_modules ("
    "  path_id   INTEGER NOT NULL REFERENCES paths(id) ON DELETE CASCADE,"
    "  position  INTEGER NOT NULL CHECK (position >= 0),"
    "  module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (path_id, position),"
    "  UNIQUE (path_id, module_id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX path_modules_module ON path_modules(module_id);"

    /* R4: a sharing names exactly one user or one department (which covers
     * its sub-departments, resolved at query time). */
    "CREATE TABLE sharings ("
    "  id            INTEGER PRIMARY KEY,"
    "  path_id       INTEGER NOT NULL REFERENCES paths(id) ON DELETE CASCADE,"
    "  user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,"
    "  department_id INTEGER REFERENCES departments(id) ON DELETE CASCADE,"
    "  created_at    INTEGER NOT NULL,"
    "  CHECK ((user_id IS NULL) <> (department_id IS NULL))"
    ") STRICT;"
    "CREATE UNIQUE INDEX sharings_user ON sharings(user_id, path_id) WHERE user_id IS NOT NULL;"
    "CREATE UNIQUE INDEX sharings_department ON sharings(department_id, path_id)"
    "  WHERE department_id IS NOT NULL;"
    "CREATE INDEX sharings_path ON sharings(path_id);"

    /* History of live rooms (the live state itself is in Redis). A join code
     * is unique among open rooms only. */
    "CREATE TABLE otj_rooms ("
    "  id        TEXT PRIMARY KEY,"
    "  module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,"
    "  host_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,"
    "  code      TEXT NOT NULL,"
    "  opened_at INTEGER NOT NULL,"
    "  closed_at INTEGER,"
    "  CHECK (closed_at IS NULL OR closed_at >= opened_at)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE UNIQUE INDEX otj_rooms_open_code ON otj_rooms(code) WHERE closed_at IS NULL;"
    "CREATE INDEX otj_rooms_host ON otj_rooms(host_id, opened_at);"

    /* R9/R10. approved_by NULL = the learner completed the module alone.
     * room_id is deliberately not a foreign key: an approval must commit even
     * if the room's history row is written later or never. answers and marks
     * are JSON whose shape belongs to the server. */
    "CREATE TABLE completions ("
    "  id           INTEGER PRIMARY KEY,"
    "  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  module_id    INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,"
    "  path_id      INTEGER REFERENCES paths(id) ON DELETE SET NULL,"
    "  approved_by  INTEGER REFERENCES users(id) ON DELETE RESTRICT,"
    "  room_id      TEXT,"
    "  completed_at INTEGER NOT NULL,"
    "  answers      TEXT CHECK (answers IS NULL OR json_valid(answers)),"
    "  marks        TEXT CHECK (marks IS NULL OR json_valid(marks)),"
    "  note         TEXT,"
    "  UNIQUE (user_id, module_id)"
    ") STRICT;"
    "CREATE INDEX completions_module ON completions(module_id);"
    "CREATE INDEX completions_time ON completions(completed_at);"

    "CREATE TABLE login_sessions ("
    "  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),"
    "  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX login_sessions_user ON login_sessions(user_id);"
    "CREATE INDEX login_sessions_expiry ON login_sessions(expires_at);"

    /* R11. actor_id NULL = the system; not a foreign key, so the log outlives
     * the people in it. prev_hash/hash are reserved for the tamper-evident
     * chain (DESIGN §8) and are NULL until a later step fills them. */
    "CREATE TABLE audit ("
    "  id        INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at        INTEGER NOT NULL,"
    "  actor_id  INTEGER,"
    "  action    TEXT NOT NULL CHECK (length(action) >= 1),"
    "  subject   TEXT,"
    "  detail    TEXT CHECK (detail IS NULL OR json_valid(detail)),"
    "  prev_hash BLOB,"
    "  hash      BLOB"
    ") STRICT;"
    "CREATE INDEX audit_at ON audit(at);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be deleted'); END;";

/* Schema v2: a user can be deactivated (someone who left). A deactivated
 * user cannot log in, their sessions are gone, they neither reach nor are
 * reached by anyone (R1/R2); their completions and audit entries stay. */
static const char MIGRATION_2[] =
    "ALTER TABLE users ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1));";

/* Recertification: a module's approvals can expire. modules.validity_months
 * (NULL = forever, else 1..120; it applies while OTJ is on) and, so that a
 * learner can be approved again once the earlier approval has expired, a
 * completion is one per (learner, module, renewal) instead of one per
 * (learner, module): renewal 0 is the first, 1 the re-drill after it, and so
 * on. The earlier rows stay (the record of each approval). SQLite cannot
 * drop a UNIQUE constraint, so completions is rebuilt with every row and id
 * kept; nothing refers to it by foreign key. */
static const char MIGRATION_VALIDITY[] =
    "ALTER TABLE modules ADD COLUMN validity_months INTEGER"
    "  CHECK (validity_months IS NULL OR validity_months BETWEEN 1 AND 120);"
    "CREATE TABLE completions_renewable ("
    "  id           INTEGER PRIMARY KEY,"
    "  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  module_id    INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,"
    "  path_id      INTEGER REFERENCES paths(id) ON DELETE SET NULL,"
    "  approved_by  INTEGER REFERENCES users(id) ON DELETE RESTRICT,"
    "  room_id      TEXT,"
    "  completed_at INTEGER NOT NULL,"
    "  answers      TEXT CHECK (answers IS NULL OR json_valid(answers)),"
    "  marks        TEXT CHECK (marks IS NULL OR json_valid(marks)),"
    "  note         TEXT,"
    "  renewal      INTEGER NOT NULL DEFAULT 0 CHECK (renewal >= 0),"
    "  UNIQUE (user_id, module_id, renewal)"
    ") STRICT;"
    "INSERT INTO completions_renewable(id, user_id, module_id, path_id, approved_by, room_id,"
    "  completed_at, answers, marks, note)"
    "  SELECT id, user_id, module_id, path_id, approved_by, room_id, completed_at, answers,"
    "  marks, note FROM completions;"
    "DROP TABLE completions;"
    "ALTER TABLE completions_renewable RENAME TO completions;"
    "CREATE INDEX completions_module ON completions(module_id);"
    "CREATE INDEX completions_time ON completions(completed_at);";
/* The tamper-evident audit chain (storage/audit.c): each row's prev_hash
 * is the hash of the row before it and its hash covers its own content and
 * prev_hash. The rows already there are chained in id order here; a
 * trigger chains every new row inside the transaction that inserts it
 * (otj_audit_hash() is registered by store_open on every handle). The
 * append-only guard now lets exactly one change through: filling in the
 * chain of a row that has none yet. */
static const char MIGRATION_AUDIT_CHAIN[] =
    "DROP TRIGGER audit_no_update;"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  WHEN OLD.hash IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at"
    "    OR NEW.actor_id IS NOT OLD.actor_id OR NEW.action IS NOT OLD.action"
    "    OR NEW.subject IS NOT OLD.subject OR NEW.detail IS NOT OLD.detail "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed'); END;"
    "WITH RECURSIVE chain(id, prev, h) AS ("
    "  SELECT id, NULL, otj_audit_hash(id, at, actor_id, action, subject, detail, NULL)"
    "    FROM audit WHERE id = (SELECT min(id) FROM audit)"
    "  UNION ALL"
    "  SELECT a.id, chain.h,"
    "         otj_audit_hash(a.id, a.at, a.actor_id, a.action, a.subject, a.detail, chain.h)"
    "    FROM chain JOIN audit a ON a.id = (SELECT min(id) FROM audit WHERE id > chain.id))"
    "UPDATE audit SET prev_hash = chain.prev, hash = chain.h FROM chain WHERE audit.id = chain.id;"
    "CREATE TRIGGER audit_chain AFTER INSERT ON audit BEGIN"
    "  UPDATE audit SET"
    "    prev_hash = (SELECT hash FROM audit WHERE id < NEW.id ORDER BY id DESC LIMIT 1),"
    "    hash = otj_audit_hash(NEW.id, NEW.at, NEW.actor_id, NEW.action, NEW.subject,"
    "      NEW.detail, (SELECT hash FROM audit WHERE id < NEW.id ORDER BY id DESC LIMIT 1))"
    "  WHERE id = NEW.id;"
    "END;";
/* Attendance: when the learner was present in the room of their
 * completion, from the room's presence: {"seconds": N, "intervals":
 * [{"from", "to"}, ...]} (unix seconds). NULL for completions without a
 * room, or made before it was kept. */
static const char MIGRATION_ATTENDANCE[] = "ALTER TABLE completions ADD COLUMN attendance TEXT"
                                           " CHECK (attendance IS NULL OR json_valid(attendance));";
/* Ask for OTJ: a learner's request that a responsible run an OTJ module
 * with them. Who it was shown to (every responsible within reach at that
 * moment, and whether they were online) is kept with it. A request ends when
 * the learner completes the module: the trigger closes it in the same
 * transaction that writes the completion, whoever writes it. */
static const char MIGRATION_ASK[] =
    "CREATE TABLE otj_requests ("
    "  id           INTEGER PRIMARY KEY,"
    "  learner_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  module_id    INTEGER NOT NULL REFERENCES modules(id) ON DELETE CASCADE,"
    "  path_id      INTEGER REFERENCES paths(id) ON DELETE SET NULL,"
    "  requested_at INTEGER NOT NULL,"
    "  ended_at     INTEGER"
    ") STRICT;"
    "CREATE INDEX otj_requests_open ON otj_requests(learner_id, module_id, requested_at);"
    "CREATE TABLE otj_request_recipients ("
    "  request_id     INTEGER NOT NULL REFERENCES otj_requests(id) ON DELETE CASCADE,"
    "  responsible_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  online         INTEGER NOT NULL CHECK (online IN (0, 1)),"
    "  PRIMARY KEY (request_id, responsible_id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TRIGGER otj_requests_end AFTER INSERT ON completions "
    "BEGIN UPDATE otj_requests SET ended_at = NEW.completed_at"
    "  WHERE learner_id = NEW.user_id AND module_id = NEW.module_id AND ended_at IS NULL; END;";
/* Evidence of a mark: a photo or file, stored as a file named by its
 * SHA-256 under the data folder; one row per upload (who, for which room,
 * learner and observe task, when). The mark and the completion carry the
 * hash. */
static const char MIGRATION_EVIDENCE[] =
    "CREATE TABLE evidence ("
    "  id          INTEGER PRIMARY KEY,"
    "  hash        TEXT NOT NULL CHECK (length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'),"
    "  type        TEXT NOT NULL CHECK (type IN ('image/jpeg', 'image/png', 'application/pdf')),"
    "  size        INTEGER NOT NULL CHECK (size > 0),"
    "  uploader_id INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,"
    "  room_id     TEXT NOT NULL,"
    "  learner_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  task        INTEGER NOT NULL CHECK (task >= 0),"
    "  created_at  INTEGER NOT NULL,"
    "  UNIQUE (hash, uploader_id, room_id, learner_id, task)"
    ") STRICT;"
    "CREATE INDEX evidence_learner ON evidence(learner_id);";

/* Learner confirmation (sign-off that both sides confirm). A module may
 * require it; an approval of such a module waits in otj_confirmations until
 * the learner types the code the room screen shows (derived from the room's
 * confirm_secret), and only then becomes a completion, which keeps both
 * times: decided_at (the approver's decision) and confirmed_at (the
 * learner's). state: pending, confirmed, withdrawn (the responsible decided
 * "not approved" afterwards) or lapsed (the room closed first). */
static const char MIGRATION_CONFIRM[] =
    "ALTER TABLE modules ADD COLUMN learner_confirm INTEGER NOT NULL DEFAULT 0"
    "  CHECK (learner_confirm IN (0, 1));"
    "ALTER TABLE otj_rooms ADD COLUMN confirm_secret BLOB"
    "  CHECK (confirm_secret IS NULL OR length(confirm_secret) = 32);"
    "ALTER TABLE completions ADD COLUMN decided_at INTEGER;"
    "ALTER TABLE completions ADD COLUMN confirmed_at INTEGER;"
    "CREATE TABLE otj_confirmations ("
    "  id           INTEGER PRIMARY KEY,"
    "  user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  module_id    INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,"
    "  path_id      INTEGER REFERENCES paths(id) ON DELETE SET NULL,"
    "  room_id      TEXT NOT NULL,"
    "  approved_by  INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,"
    "  decided_at   INTEGER NOT NULL,"
    "  answers      TEXT CHECK (answers IS NULL OR json_valid(answers)),"
    "  marks        TEXT CHECK (marks IS NULL OR json_valid(marks)),"
    "  note         TEXT,"
    "  state        TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending', 'confirmed', 'withdrawn', 'lapsed')),"
    "  confirmed_at INTEGER,"
    "  completion_id INTEGER REFERENCES completions(id) ON DELETE SET NULL,"
    "  UNIQUE (user_id, module_id, room_id)"
    ") STRICT;"
    "CREATE INDEX otj_confirmations_room ON otj_confirmations(room_id) WHERE state = 'pending';";

/* Learners may attach evidence: a module can let a learner attach a photo
 * or file to their own observe task (their `answer` of it names the
 * upload's hash), besides the responsible's evidence on a mark. */
static const char MIGRATION_LEARNER_EVIDENCE[] =
    "ALTER TABLE modules ADD COLUMN learner_evidence INTEGER NOT NULL DEFAULT 0"
    "  CHECK (learner_evidence IN (0, 1));";

typedef struct migration {
  const char *description;
  const char *sql;
} migration;

/* An approval that waits for the learner's confirmation keeps the
 * learner's attendance, so the completion made at confirmation has it. */
static const char MIGRATION_CONFIRM_ATTENDANCE[] =
    "ALTER TABLE otj_confirmations ADD COLUMN attendance TEXT"
    " CHECK (attendance IS NULL OR json_valid(attendance));";

/* Every department with each of its ancestors and itself, kept by triggers
 * on departments: R1's "at or below" is one indexed lookup instead of a
 * recursive walk up (a walk takes SQLite's temporary tables, which were most
 * of what the R7 check at every join cost). A move takes the moved
 * subtree off its old ancestors and puts it under the new parent's; the
 * cycle check above runs first. A department's id never changes. */
static const char MIGRATION_DEPT_ANCESTORS[] =
    "CREATE TABLE dept_ancestors ("
    "  dept_id     INTEGER NOT NULL REFERENCES departments(id) ON DELETE CASCADE,"
    "  ancestor_id INTEGER NOT NULL REFERENCES departments(id) ON DELETE CASCADE,"
    "  PRIMARY KEY (dept_id, ancestor_id)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX dept_ancestors_ancestor ON dept_ancestors(ancestor_id);"
    "INSERT INTO dept_ancestors(dept_id, ancestor_id)"
    "  WITH RECURSIVE up(dept, anc) AS (SELECT id, id FROM departments"
    "    UNION SELECT up.dept, d.parent_id FROM departments d JOIN up ON d.id = up.anc"
    "    WHERE d.parent_id IS NOT NULL)"
    "  SELECT dept, anc FROM up;"
    /* its own parent: refused by departments_no_self_parent */
    "CREATE TRIGGER departments_ancestors_insert AFTER INSERT ON departments"
    "  WHEN NEW.parent_id IS NOT NEW.id "
    "BEGIN"
    "  INSERT INTO dept_ancestors(dept_id, ancestor_id) VALUES (NEW.id, NEW.id);"
    "  INSERT INTO dept_ancestors(dept_id, ancestor_id)"
    "    SELECT NEW.id, ancestor_id FROM dept_ancestors WHERE dept_id = NEW.parent_id;"
    "END;"
    "CREATE TRIGGER departments_ancestors_move AFTER UPDATE OF parent_id ON departments"
    "  WHEN OLD.parent_id IS NOT NEW.parent_id "
    "BEGIN"
    "  DELETE FROM dept_ancestors"
    "    WHERE dept_id IN (SELECT dept_id FROM dept_ancestors WHERE ancestor_id = NEW.id)"
    "      AND ancestor_id NOT IN (SELECT dept_id FROM dept_ancestors WHERE ancestor_id = NEW.id);"
    "  INSERT INTO dept_ancestors(dept_id, ancestor_id)"
    "    SELECT sub.dept_id, sup.ancestor_id FROM dept_ancestors sub, dept_ancestors sup"
    "    WHERE sub.ancestor_id = NEW.id AND sup.dept_id = NEW.parent_id;"
    "END;"
    "CREATE TRIGGER departments_id_kept BEFORE UPDATE OF id ON departments"
    "  WHEN NEW.id IS NOT OLD.id "
    "BEGIN SELECT RAISE(ABORT, 'a department keeps its id'); END;";

static const migration MIGRATIONS[] = {
    {"domain of DESIGN §2: departments, users, permissions, modules, tasks, paths, "
     "sharings, rooms, completions, sessions, audit",
     MIGRATION_1},
    {"users.active: deactivating a user", MIGRATION_2},
    {"modules.validity_months and completions per renewal: approvals that expire",
     MIGRATION_VALIDITY},
    {"audit chain: prev_hash and hash on every audit entry", MIGRATION_AUDIT_CHAIN},
    {"completions.attendance: when the learner was present in the room", MIGRATION_ATTENDANCE},
    {"otj_requests: a learner asks for OTJ, ended by the completion", MIGRATION_ASK},
    {"evidence: photos and files attached to marks", MIGRATION_EVIDENCE},
    {"learner confirmation: modules.learner_confirm, rooms' confirm secrets, "
     "otj_confirmations, completions.decided_at/confirmed_at",
     MIGRATION_CONFIRM},
    {"modules.learner_evidence: learners may attach evidence to their observe tasks",
     MIGRATION_LEARNER_EVIDENCE},
    {"otj_confirmations.attendance: a confirmed completion keeps the learner's attendance",
     MIGRATION_CONFIRM_ATTENDANCE},
    {"dept_ancestors: every department with its ancestors, kept by triggers",
     MIGRATION_DEPT_ANCESTORS},
};

#define MIGRATION_COUNT ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int store_schema_latest(void) { return MIGRATION_COUNT; }

/* Reads MAX(version) from schema_version (0 for none) into *version. */
static int read_version(store *s, int *version) {
  sqlite3_stmt *st = store_prepare(s, "SELECT coalesce(max(version), 0) FROM schema_version");
  if (!st) return STORE_ERR;
  int v = store_step_int(s, st);
  sqlite3_finalize(st);
  if (v < 0) return v;
  *version = v;
  return 0;
}

int store_schema_version(store *s) {
  int v = 0;
  int rc = read_version(s, &v);
  return rc < 0 ? rc : v;
}

/* Applies step `target` (1-based) unless another handle did it meanwhile. */
static int apply_step(store *s, int target) {
  const migration *m = &MIGRATIONS[target - 1];
  int rc = store_begin(s);
  if (rc < 0) return rc;

  int current = 0;
  rc = read_version(s, &current);
  if (rc < 0) goto out;
  if (current >= target) { /* somebody else got there first */
    store_rollback(s);
    return 0;
  }

  rc = store_exec(s, m->sql);
  if (rc < 0) {
    char why[STORE_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", s->err);
    rc = store_failf(s, rc, "schema migration %d failed: %s", target, why);
    goto out;
  }

  sqlite3_stmt *st =
      store_prepare(s, "INSERT INTO schema_version(version, applied_at, description) "
                       "VALUES (?1, unixepoch(), ?2)");
  if (!st) {
    rc = STORE_ERR;
    goto out;
  }
  sqlite3_bind_int(st, 1, target);
  sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
  rc = store_step_done(s, st);
  sqlite3_finalize(st);

out:
  return store_finish(s, rc);
}

int store_migrate(store *s) {
  int rc = store_exec(s, "CREATE TABLE IF NOT EXISTS schema_version ("
                         "  version     INTEGER PRIMARY KEY,"
                         "  applied_at  INTEGER NOT NULL,"
                         "  description TEXT NOT NULL"
                         ") STRICT");
  if (rc < 0) return rc;

  int current = 0;
  rc = read_version(s, &current);
  if (rc < 0) return rc;
  if (current > MIGRATION_COUNT)
    return store_failf(s, STORE_ERR,
                       "the database has schema version %d but this build of otjd knows "
                       "versions up to %d only; run a newer otjd (the database was not changed)",
                       current, MIGRATION_COUNT);

  for (int v = current + 1; v <= MIGRATION_COUNT; v++) {
    rc = apply_step(s, v);
    if (rc < 0) return rc;
  }
  return 0;
}
