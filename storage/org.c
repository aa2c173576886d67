/* org.c — the organisation, learning paths and progress: the rules that span
 * rows (R1 reach, R2 responsible, R4 sharing, R5 next module, R6 pending),
 * the admin writes, the organisation import and the audit read-back.
 *
 * The one design idea: nothing derived is stored. Who a path is shared with,
 * which module comes next and who waits for OTJ are computed by recursive
 * queries at the moment they are asked, from departments, sharings, path
 * modules and completions; so a person who joins a department later, a moved
 * department or a new completion is reflected at once and there is no copy
 * to keep in step. The queries the live rooms ask often (a learner's paths,
 * "does this responsible reach this learner", the pending count) are
 * prepared once per handle.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* --- Statements --------------------------------------------------------------- */

/* Departments from the user's own one up to the root. ?1 = user. */
#define SQL_UP_OF_USER                                                                             \
  "up(id) AS (SELECT department_id FROM users WHERE id = ?1"                                       \
  "  UNION SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id"                          \
  "  WHERE d.parent_id IS NOT NULL)"

/* R4 + R5 for one learner (?1): every module of every shared path with its
 * latest completion (?2 = now). Columns: path id, title, shared_at, position,
 * module id, title, type, otj, task count, completion id, completed_at,
 * expires_at (NULL: never), whether it still counts. */
#define SQL_PATH_EXPIRES STORE_SQL_EXPIRES("c", "m")
#define SQL_PATH_VALID   STORE_SQL_VALID_AT("c", "m", "?2")
static const char SQL_LEARNER_PATHS[] =
    "WITH RECURSIVE " SQL_UP_OF_USER ","
    " shared(path_id, since) AS ("
    "  SELECT path_id, min(created_at) FROM sharings"
    "   WHERE user_id = ?1 OR department_id IN (SELECT id FROM up)"
    "   GROUP BY path_id)"
    "SELECT p.id, p.title, max(sh.since, (SELECT created_at FROM users WHERE id = ?1)),"
    "       pm.position, m.id, m.title, m.type, m.otj,"
    "       (SELECT count(*) FROM tasks t WHERE t.module_id = m.id),"
    "       c.id, c.completed_at, " SQL_PATH_EXPIRES ", " SQL_PATH_VALID
    "  FROM shared sh JOIN paths p ON p.id = sh.path_id"
    "  JOIN path_modules pm ON pm.path_id = p.id"
    "  JOIN modules m ON m.id = pm.module_id"
    "  LEFT JOIN completions c ON c.id = (SELECT cc.id FROM completions cc"
    "    WHERE cc.user_id = ?1 AND cc.module_id = m.id ORDER BY cc.renewal DESC LIMIT 1)"
    " ORDER BY p.title, p.id, pm.position";

/* R1 + R2: ?1 reaches ?2: the learner's department is at or below the
 * responsible's (dept_ancestors: primary-key lookups only, no walk). Asked
 * at every join, so it must stay free of SQLite's temporary tables. */
static const char SQL_REACHES[] =
    "SELECT EXISTS (SELECT 1 FROM users r JOIN permissions p ON p.user_id = r.id,"
    "  users l, dept_ancestors a"
    " WHERE r.id = ?1 AND l.id = ?2 AND r.id <> ?2 AND p.management = 1"
    "   AND p.facilitate_otj = 1 AND r.active = 1 AND l.active = 1"
    "   AND a.dept_id = l.department_id AND a.ancestor_id = r.department_id)";

/* R5 + R7 for learner ?1 and module ?2 at ?3 (now): 1 when the module is
 * OTJ, in a path shared with the learner, without a completion that counts,
 * and every module before it in that path has one that counts, i.e. the
 * path's next module (what SQL_LEARNER_PATHS and next_cb decide from all of
 * the learner's steps). A module's completion that counts is its latest
 * renewal, unexpired. Asked at every join, so EXISTS and primary-key
 * lookups only (a path shared with the learner, or with a department at or
 * above theirs: dept_ancestors): SQLite builds no temporary table for it. */
#define SQL_COUNTS(module)                                                                         \
  "EXISTS (SELECT 1 FROM completions c JOIN modules cm ON cm.id = c.module_id"                     \
  "  WHERE c.id = (SELECT cc.id FROM completions cc WHERE cc.user_id = ?1"                         \
  "    AND cc.module_id = " module " ORDER BY cc.renewal DESC LIMIT 1)"                            \
  "  AND " STORE_SQL_VALID_AT("c", "cm", "?3") ")"
static const char SQL_OTJ_WAITING[] =
    "SELECT EXISTS (SELECT 1 FROM path_modules pm"
    "  JOIN modules m ON m.id = pm.module_id AND m.otj = 1"
    " WHERE pm.module_id = ?2"
    "   AND EXISTS (SELECT 1 FROM sharings s WHERE s.path_id = pm.path_id"
    "     AND (s.user_id = ?1 OR EXISTS (SELECT 1 FROM users u"
    "       JOIN dept_ancestors a ON a.dept_id = u.department_id"
    "       WHERE u.id = ?1 AND a.ancestor_id = s.department_id)))"
    "   AND NOT " SQL_COUNTS(
        "?2") "   AND NOT EXISTS (SELECT 1 FROM path_modules pb WHERE pb.path_id = pm.path_id"
              "     AND pb.position < pm.position AND NOT " SQL_COUNTS("pb.module_id") "))";

/* R6 for responsible ?1: the reached learners, the paths shared with each
 * (directly or through a department at or above theirs), the first module of
 * each path without a completion that counts at ?3 (now: an expired approval
 * does not), kept when it is OTJ. */
#define SQL_PENDING_CTE                                                                            \
  "WITH RECURSIVE"                                                                                 \
  " resp(dept) AS (SELECT u.department_id FROM users u JOIN permissions p ON p.user_id = u.id"     \
  "   WHERE u.id = ?1 AND p.management = 1 AND p.facilitate_otj = 1 AND u.active = "               \
  "1)," SQL_PENDING_CTE_REST

/* The same from a department ?1 instead of a responsible (bound with
 * ?2 = 0: nobody is left out). */
#define SQL_PENDING_DEPT_CTE                                                                       \
  "WITH RECURSIVE"                                                                                 \
  " resp(dept) AS (SELECT ?1)," SQL_PENDING_CTE_REST

/* a completion c of module cm that counts at ?3 */
#define SQL_PENDING_VALID STORE_SQL_VALID_AT("c", "cm", "?3")
#define SQL_PENDING_CTE_REST                                                                       \
  " reach(id) AS (SELECT dept FROM resp"                                                           \
  "   UNION SELECT d.id FROM departments d JOIN reach ON d.parent_id = reach.id),"                 \
  " learners(uid, dept) AS (SELECT id, department_id FROM users"                                   \
  "   WHERE department_id IN (SELECT id FROM reach) AND id <> ?2 AND active = 1),"                 \
  " up(uid, dept) AS (SELECT uid, dept FROM learners"                                              \
  "   UNION SELECT up.uid, d.parent_id FROM departments d JOIN up ON d.id = up.dept"               \
  "   WHERE d.parent_id IS NOT NULL),"                                                             \
  " shared(uid, path_id, since) AS (SELECT uid, path_id, min(created_at) FROM ("                   \
  "   SELECT s.user_id AS uid, s.path_id, s.created_at FROM sharings s"                            \
  "     JOIN learners l ON l.uid = s.user_id"                                                      \
  "   UNION ALL SELECT up.uid, s.path_id, s.created_at FROM sharings s"                            \
  "     JOIN up ON s.department_id = up.dept) GROUP BY uid, path_id),"                             \
  " nxt(uid, path_id, since, pos) AS (SELECT sh.uid, sh.path_id, sh.since, min(pm.position)"       \
  "   FROM shared sh JOIN path_modules pm ON pm.path_id = sh.path_id"                              \
  "   WHERE NOT EXISTS (SELECT 1 FROM completions c JOIN modules cm ON cm.id = c.module_id"        \
  "     WHERE c.user_id = sh.uid AND c.module_id = pm.module_id AND " SQL_PENDING_VALID ")"        \
  "   GROUP BY sh.uid, sh.path_id),"                                                               \
  " pending(uid, path_id, module_id, since) AS (SELECT nxt.uid, nxt.path_id, m.id,"                \
  "   coalesce((SELECT c.completed_at FROM path_modules pp JOIN completions c"                     \
  "       ON c.module_id = pp.module_id AND c.user_id = nxt.uid"                                   \
  "     WHERE pp.path_id = nxt.path_id AND pp.position < nxt.pos"                                  \
  "     ORDER BY pp.position DESC, c.renewal DESC LIMIT 1),"                                       \
  "     max(nxt.since, (SELECT created_at FROM users WHERE id = nxt.uid)))"                        \
  "   FROM nxt JOIN path_modules pm ON pm.path_id = nxt.path_id AND pm.position = nxt.pos"         \
  "   JOIN modules m ON m.id = pm.module_id AND m.otj = 1)"

static const char SQL_PENDING[] = SQL_PENDING_CTE
    "SELECT u.id, u.login, u.name, d.id, d.name, m.id, m.title, p.id, p.title, pd.since"
    "  FROM pending pd JOIN users u ON u.id = pd.uid"
    "  JOIN departments d ON d.id = u.department_id"
    "  JOIN modules m ON m.id = pd.module_id JOIN paths p ON p.id = pd.path_id"
    " ORDER BY pd.since, u.name, p.title";

static const char SQL_PENDING_COUNT[] = SQL_PENDING_CTE "SELECT count(*) FROM pending";

static const char SQL_PENDING_BY_LEARNER[] =
    SQL_PENDING_DEPT_CTE "SELECT uid, count(*) FROM pending GROUP BY uid";

static const char SQL_PENDING_ASKED_BY_LEARNER[] =
    SQL_PENDING_DEPT_CTE "SELECT uid, count(*) FROM (SELECT DISTINCT uid, module_id FROM pending) p"
                         " WHERE EXISTS (SELECT 1 FROM otj_requests r WHERE r.learner_id = p.uid"
                         "   AND r.module_id = p.module_id AND r.ended_at IS NULL) GROUP BY uid";

static const char *col_text(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

/* Ends a listing loop: the callback's value, or the step's error. */
static int loop_end(store *s, int rc, int cbcode) {
  if (cbcode != 0) return cbcode;
  return rc == SQLITE_DONE ? 0 : store_fail(s, rc);
}

/* Prefixes the handle's message with a place ("users[3].login: ..."). */
static int at_place(store *s, int code, const char *place) {
  char why[STORE_ERRMSG_MAX];
  snprintf(why, sizeof why, "%s", s->err);
  return store_failf(s, code, "%s: %s", place, why);
}

/* --- R1/R2 reach --------------------------------------------------------------- */

int store_responsible_reaches(store *s, int64_t responsible_id, int64_t learner_id) {
  sqlite3_stmt *st = store_stmt(s, ST_ORG_REACHES, SQL_REACHES);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, responsible_id);
  sqlite3_bind_int64(st, 2, learner_id);
  return store_step_int(s, st); /* EXISTS: 0 or 1 */
}

int store_responsibles_of(store *s, int64_t learner_id, store_person_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(
      s, "WITH RECURSIVE " SQL_UP_OF_USER "SELECT r.id, r.login, r.name, d.id, d.name FROM users r"
         "  JOIN permissions p ON p.user_id = r.id AND p.management = 1 AND p.facilitate_otj = 1"
         "  JOIN departments d ON d.id = r.department_id"
         " WHERE r.department_id IN (SELECT id FROM up) AND r.id <> ?1 AND r.active = 1"
         " ORDER BY r.name, r.id");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, learner_id);
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_person p = {sqlite3_column_int64(st, 0), col_text(st, 1), col_text(st, 2),
                      sqlite3_column_int64(st, 3), col_text(st, 4)};
    code = cb(&p, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- R4/R5 paths and progress -------------------------------------------------- */

const char *store_step_state_name(int state) {
  switch (state) {
  case STORE_STEP_COMPLETED: return "completed";
  case STORE_STEP_AVAILABLE: return "available";
  case STORE_STEP_LOCKED: return "locked";
  case STORE_STEP_OTJ_WAITING: return "otj_waiting";
  default: return "unknown";
  }
}

int store_learner_paths(store *s, int64_t learner_id, store_path_step_cb cb, void *ud) {
  sqlite3_stmt *st = store_stmt(s, ST_ORG_LEARNER_PATHS, SQL_LEARNER_PATHS);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, store_now());
  int rc = SQLITE_DONE, code = 0;
  int64_t cur_path = 0;
  int next_seen = 0; /* the next module of the current path was passed */
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_path_step step = {
        .path_id = sqlite3_column_int64(st, 0),
        .path_title = col_text(st, 1),
        .shared_at = sqlite3_column_int64(st, 2),
        .position = sqlite3_column_int(st, 3),
        .module_id = sqlite3_column_int64(st, 4),
        .module_title = col_text(st, 5),
        .module_type = col_text(st, 6),
        .otj = sqlite3_column_int(st, 7),
        .task_count = sqlite3_column_int(st, 8),
        .completion_id = sqlite3_column_int64(st, 9),
        .completed_at = sqlite3_column_int64(st, 10),
    };
    if (step.path_id != cur_path) {
      cur_path = step.path_id;
      next_seen = 0;
    }
    int has = sqlite3_column_type(st, 9) != SQLITE_NULL;
    if (has && !sqlite3_column_int(st, 12)) {
      /* the approval expired: the module is to be done again */
      step.expired_at = sqlite3_column_int64(st, 11);
      step.completion_id = 0;
      step.completed_at = 0;
      has = 0;
    } else if (has) {
      step.expires_at = sqlite3_column_int64(st, 11);
    }
    if (has) {
      step.state = STORE_STEP_COMPLETED;
    } else if (!next_seen) {
      step.state = step.otj ? STORE_STEP_OTJ_WAITING : STORE_STEP_AVAILABLE;
      next_seen = 1;
    } else {
      step.state = STORE_STEP_LOCKED;
    }
    code = cb(&step, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_reset(st);
  return code;
}

typedef struct next_query {
  int64_t module_id;
  int otj_only;
  int found;
  int64_t path_id;
  int64_t since;
  int64_t prev_completed_at; /* of the step before, in the current path */
  int64_t prev_path;
} next_query;

static int next_cb(const store_path_step *st, void *ud) {
  next_query *q = ud;
  if (st->path_id != q->prev_path) {
    q->prev_path = st->path_id;
    q->prev_completed_at = 0;
  }
  if (st->module_id == q->module_id && (st->state == STORE_STEP_OTJ_WAITING ||
                                        (!q->otj_only && st->state == STORE_STEP_AVAILABLE))) {
    q->found = 1;
    q->path_id = st->path_id;
    q->since = q->prev_completed_at ? q->prev_completed_at : st->shared_at;
    return 1;
  }
  q->prev_completed_at = st->completed_at;
  return 0;
}

static int find_next(store *s, int64_t learner_id, int64_t module_id, int otj_only, next_query *q) {
  memset(q, 0, sizeof *q);
  q->module_id = module_id;
  q->otj_only = otj_only;
  int code = store_learner_paths(s, learner_id, next_cb, q);
  if (code < 0) return code;
  return q->found;
}

int store_learner_next_in_path(store *s, int64_t learner_id, int64_t module_id, int64_t *path_id) {
  next_query q;
  int found = find_next(s, learner_id, module_id, 0, &q);
  if (found == 1 && path_id) *path_id = q.path_id;
  return found;
}

int store_learner_otj_pending(store *s, int64_t learner_id, int64_t module_id, int64_t *path_id,
                              int64_t *since) {
  next_query q;
  int found = find_next(s, learner_id, module_id, 1, &q);
  if (found == 1) {
    if (path_id) *path_id = q.path_id;
    if (since) *since = q.since;
  }
  return found;
}

int store_learner_otj_waiting(store *s, int64_t learner_id, int64_t module_id) {
  sqlite3_stmt *st = store_stmt(s, ST_ORG_OTJ_WAITING, SQL_OTJ_WAITING);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, module_id);
  sqlite3_bind_int64(st, 3, store_now());
  return store_step_int(s, st);
}

int store_complete_self(store *s, int64_t now, int64_t learner_id, int64_t module_id,
                        const char *answers_json, int64_t *completion_id, int64_t *path_id) {
  int code = store_begin(s);
  if (code < 0) return code;

  store_module m;
  if ((code = store_module_by_id(s, module_id, &m)) < 0) goto out;
  if (m.otj) {
    code = store_failf(s, STORE_INVALID,
                       "\"%s\" is On-the-Job training: a responsible must run it with you "
                       "and approve it",
                       m.title);
    goto out;
  }
  int64_t existing = 0;
  int done = store_completion_exists(s, learner_id, module_id, &existing);
  if (done < 0) {
    code = done;
    goto out;
  }
  if (done) {
    code = store_failf(s, STORE_CONFLICT, "you have completed \"%s\" already", m.title);
    goto out;
  }
  next_query q;
  int found = find_next(s, learner_id, module_id, 0, &q);
  if (found < 0) {
    code = found;
    goto out;
  }
  if (!found) {
    code = store_failf(s, STORE_INVALID,
                       "\"%s\" is not your next module in any of your learning paths", m.title);
    goto out;
  }

  sqlite3_stmt *st = store_prepare(s, "INSERT INTO completions(user_id, module_id, path_id,"
                                      " completed_at, answers) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!st) {
    code = STORE_ERR;
    goto out;
  }
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, module_id);
  sqlite3_bind_int64(st, 3, q.path_id);
  sqlite3_bind_int64(st, 4, now);
  store_bind_text(st, 5, answers_json);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code < 0) goto out;
  if (completion_id) *completion_id = sqlite3_last_insert_rowid(s->db);
  if (path_id) *path_id = q.path_id;
out:
  return store_finish(s, code);
}

/* --- R6 pending ------------------------------------------------------------------ */

int store_pending_list(store *s, int64_t responsible_id, store_pending_cb cb, void *ud) {
  sqlite3_stmt *st = store_stmt(s, ST_ORG_PENDING, SQL_PENDING);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, responsible_id);
  sqlite3_bind_int64(st, 2, responsible_id);
  sqlite3_bind_int64(st, 3, store_now());
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_pending p = {
        .learner_id = sqlite3_column_int64(st, 0),
        .learner_login = col_text(st, 1),
        .learner_name = col_text(st, 2),
        .department_id = sqlite3_column_int64(st, 3),
        .department = col_text(st, 4),
        .module_id = sqlite3_column_int64(st, 5),
        .module_title = col_text(st, 6),
        .path_id = sqlite3_column_int64(st, 7),
        .path_title = col_text(st, 8),
        .waiting_since = sqlite3_column_int64(st, 9),
    };
    code = cb(&p, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_reset(st);
  return code;
}

int store_pending_count(store *s, int64_t responsible_id) {
  sqlite3_stmt *st = store_stmt(s, ST_ORG_PENDING_COUNT, SQL_PENDING_COUNT);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, responsible_id);
  sqlite3_bind_int64(st, 2, responsible_id);
  sqlite3_bind_int64(st, 3, store_now());
  return store_step_int(s, st);
}

int store_pending_by_learner(store *s, int64_t department_id, store_count_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(s, SQL_PENDING_BY_LEARNER);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, department_id);
  sqlite3_bind_int64(st, 2, 0);
  sqlite3_bind_int64(st, 3, store_now());
  int rc, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
    code = cb(sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), ud);
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

int store_pending_asked_by_learner(store *s, int64_t department_id, store_count_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(s, SQL_PENDING_ASKED_BY_LEARNER);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, department_id);
  sqlite3_bind_int64(st, 2, 0);
  sqlite3_bind_int64(st, 3, store_now());
  int rc, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
    code = cb(sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), ud);
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- Completions listing ----------------------------------------------------------- */

int store_completions_list(store *s, store_scope scope, int64_t viewer_id, store_completion_cb cb,
                           void *ud) {
  sqlite3_stmt *st = store_prepare(
      s,
      "WITH RECURSIVE reach(id) AS (SELECT department_id FROM users WHERE id = ?2"
      "  UNION SELECT d.id FROM departments d JOIN reach ON d.parent_id = reach.id)"
      "SELECT c.id, u.id, u.login, u.name, d.name, m.id, m.title, c.path_id, p.title,"
      "       c.approved_by, a.name, c.room_id, c.completed_at, " STORE_SQL_EXPIRES(
          "c",
          "m") ","
               "       NOT " STORE_SQL_VALID_AT(
                   "c", "m",
                   "?3") " OR EXISTS (SELECT 1 FROM completions r"
                         "         WHERE r.user_id = c.user_id AND r.module_id = c.module_id"
                         "           AND r.renewal > c.renewal), c.attendance,"
                         "       CASE WHEN c.approved_by IS NOT NULL"
                         "         THEN coalesce(c.decided_at, c.completed_at) END,"
                         "       c.confirmed_at"
                         "  FROM completions c JOIN users u ON u.id = c.user_id"
                         "  JOIN departments d ON d.id = u.department_id"
                         "  JOIN modules m ON m.id = c.module_id"
                         "  LEFT JOIN paths p ON p.id = c.path_id"
                         "  LEFT JOIN users a ON a.id = c.approved_by"
                         " WHERE ?1 = 0 OR (?1 = 1 AND u.department_id IN (SELECT id FROM reach))"
                         "    OR (?1 = 2 AND u.id = ?2)"
                         " ORDER BY c.completed_at, c.id");
  if (!st) return STORE_ERR;
  sqlite3_bind_int(st, 1, (int)scope);
  sqlite3_bind_int64(st, 2, viewer_id);
  sqlite3_bind_int64(st, 3, store_now());
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_completion_row c = {
        .id = sqlite3_column_int64(st, 0),
        .user_id = sqlite3_column_int64(st, 1),
        .login = col_text(st, 2),
        .name = col_text(st, 3),
        .department = col_text(st, 4),
        .module_id = sqlite3_column_int64(st, 5),
        .module_title = col_text(st, 6),
        .path_id = sqlite3_column_int64(st, 7),
        .path_title = col_text(st, 8),
        .approved_by = sqlite3_column_int64(st, 9),
        .approved_by_name = col_text(st, 10),
        .room_id = col_text(st, 11),
        .completed_at = sqlite3_column_int64(st, 12),
        .expires_at = sqlite3_column_int64(st, 13),
        .expired = sqlite3_column_int(st, 14),
        .attendance = col_text(st, 15),
        .decided_at = sqlite3_column_int64(st, 16),
        .confirmed_at = sqlite3_column_int64(st, 17),
    };
    code = cb(&c, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- Admin: departments, users ------------------------------------------------------ */

int store_departments_list(store *s, store_department_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(
      s, "WITH RECURSIVE t(id, depth) AS (SELECT id, 0 FROM departments WHERE parent_id IS NULL"
         "  UNION ALL SELECT d.id, t.depth + 1 FROM departments d JOIN t ON d.parent_id = t.id)"
         "SELECT d.id, d.name, coalesce(d.parent_id, 0) FROM t JOIN departments d ON d.id = t.id"
         " ORDER BY t.depth, d.name, d.id");
  if (!st) return STORE_ERR;
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_department d = {sqlite3_column_int64(st, 0), col_text(st, 1),
                          sqlite3_column_int64(st, 2)};
    code = cb(&d, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

int store_department_rename(store *s, int64_t id, const char *name) {
  sqlite3_stmt *st = store_prepare(s, "UPDATE departments SET name = ?2 WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  store_bind_text(st, 2, name);
  int code = store_step_done(s, st);
  if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no department with id %lld", (long long)id);
  else if (code == STORE_INVALID)
    store_failf(s, code, "a department name has 1 to 127 characters");
  sqlite3_finalize(st);
  return code;
}

int store_users_list(store *s, store_user_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(s, "SELECT " STORE_SQL_USER_COLUMNS " FROM " STORE_SQL_USER_FROM
                                      " ORDER BY u.login");
  if (!st) return STORE_ERR;
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_user u;
    store_user_row(st, &u);
    code = cb(&u, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

int store_user_update(store *s, int64_t now, int64_t actor_id, int64_t user_id, const char *name,
                      int64_t department_id, int is_admin) {
  int code = store_begin(s);
  if (code < 0) return code;
  store_user u;
  if ((code = store_user_by_id(s, user_id, &u)) < 0) {
    store_failf(s, code, "no user with id %lld", (long long)user_id);
    return store_finish(s, code);
  }
  sqlite3_stmt *st = store_prepare(s, "UPDATE users SET name = coalesce(?2, name),"
                                      " department_id = coalesce(?3, department_id),"
                                      " is_admin = coalesce(?4, is_admin) WHERE id = ?1");
  if (!st) return store_finish(s, STORE_ERR);
  sqlite3_bind_int64(st, 1, user_id);
  store_bind_text(st, 2, name);
  store_bind_id(st, 3, department_id);
  if (is_admin >= 0) sqlite3_bind_int(st, 4, is_admin ? 1 : 0);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == STORE_INVALID)
    store_failf(s, code, "a name has 1 to 127 characters and the department must exist");
  /* one entry: "user.admin" {admin} when only that flag changed (as ever),
   * else "user.updated" with each changed field as {from, to} */
  int admin_changed = is_admin >= 0 && (is_admin ? 1 : 0) != u.is_admin;
  int name_changed = name && strcmp(name, u.name) != 0;
  int dept_changed = department_id > 0 && department_id != u.department_id;
  if (code == 0 && admin_changed && !name_changed && !dept_changed) {
    char subject[32];
    snprintf(subject, sizeof subject, "user:%lld", (long long)user_id);
    code = store_audit_append(s, now, actor_id, "user.admin", subject,
                              is_admin ? "{\"admin\":true}" : "{\"admin\":false}");
  } else if (code == 0 && (name_changed || dept_changed)) {
    json_t *d = json_object();
    if (name_changed)
      json_object_set_new(d, "name", json_pack("{s:s, s:s}", "from", u.name, "to", name));
    if (dept_changed)
      json_object_set_new(d, "department_id",
                          json_pack("{s:I, s:I}", "from", (json_int_t)u.department_id, "to",
                                    (json_int_t)department_id));
    if (admin_changed)
      json_object_set_new(d, "admin",
                          json_pack("{s:b, s:b}", "from", u.is_admin, "to", is_admin ? 1 : 0));
    code = store_audit_json(s, now, actor_id, "user.updated", "user", user_id, d);
  }
  return store_finish(s, code);
}

int store_user_set_active(store *s, int64_t now, int64_t actor_id, int64_t user_id, int active,
                          int *changed) {
  active = active ? 1 : 0;
  if (changed) *changed = 0;
  int code = store_begin(s);
  if (code < 0) return code;
  store_user u;
  if ((code = store_user_by_id(s, user_id, &u)) < 0) {
    store_failf(s, code, "no user with id %lld", (long long)user_id);
    return store_finish(s, code);
  }
  if (u.active == active) return store_finish(s, 0);
  sqlite3_stmt *st = store_prepare(s, "UPDATE users SET active = ?2 WHERE id = ?1");
  if (!st) return store_finish(s, STORE_ERR);
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_int(st, 2, active);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == 0 && !active) {
    /* nobody keeps a way in: every session of the user goes */
    code = store_run_id(s, "DELETE FROM login_sessions WHERE user_id = ?1", user_id);
  }
  if (code == 0) {
    char subject[32];
    snprintf(subject, sizeof subject, "user:%lld", (long long)user_id);
    code = store_audit_append(s, now, actor_id, active ? "user.reactivated" : "user.deactivated",
                              subject, NULL);
  }
  code = store_finish(s, code);
  if (code == 0 && changed) *changed = 1;
  return code;
}

/* --- Admin: modules ------------------------------------------------------------------- */

static int valid_type(const char *type) {
  static const char *const types[] = {"quiz", "content", "video", "document"};
  for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
    if (!strcmp(type, types[i])) return 1;
  return 0;
}

/* --- Caps on a module's tasks, and the digest a room compares --------------------------- */

static int breach(store_limit *out, const char *limit, int64_t max, int64_t got, int task,
                  int option) {
  if (out) *out = (store_limit){limit, max, got, task, option};
  return STORE_INVALID;
}

int store_tasks_check(const store_task_in *tasks, int n, store_limit *out) {
  if (n > STORE_MAX_TASKS) return breach(out, "tasks_per_module", STORE_MAX_TASKS, n, -1, -1);
  for (int i = 0; i < n; i++) {
    size_t len = tasks[i].text ? strlen(tasks[i].text) : 0;
    if (len > STORE_MAX_TASK_TEXT)
      return breach(out, "task_text", STORE_MAX_TASK_TEXT, (int64_t)len, i, -1);
    if (!tasks[i].options_json) continue;
    json_t *opts = json_loads(tasks[i].options_json, 0, NULL);
    if (!json_is_array(opts)) { /* not ours to judge: the database refuses it */
      json_decref(opts);
      continue;
    }
    size_t nopt = json_array_size(opts);
    int code = 0;
    if (nopt > STORE_MAX_OPTIONS)
      code = breach(out, "options_per_question", STORE_MAX_OPTIONS, (int64_t)nopt, i, -1);
    for (size_t k = 0; code == 0 && k < nopt; k++) {
      const json_t *o = json_array_get(opts, k);
      size_t olen = json_is_string(o) ? json_string_length(o) : 0;
      if (olen > STORE_MAX_OPTION_TEXT)
        code = breach(out, "option_text", STORE_MAX_OPTION_TEXT, (int64_t)olen, i, (int)k);
    }
    json_decref(opts);
    if (code) return code;
  }
  return 0;
}

void store_limit_where(const store_limit *l, const char *place, char *buf, size_t cap) {
  if (l->task < 0)
    snprintf(buf, cap, "%s", place);
  else if (!strcmp(l->limit, "task_text"))
    snprintf(buf, cap, "%s[%d].text", place, l->task);
  else if (l->option >= 0)
    snprintf(buf, cap, "%s[%d].options[%d]", place, l->task, l->option);
  else
    snprintf(buf, cap, "%s[%d].options", place, l->task);
}

void store_limit_describe(const store_limit *l, const char *place, char *buf, size_t cap) {
  char where[128];
  store_limit_where(l, place, where, sizeof where);
  const char *subject = "an option", *unit = "bytes";
  if (!strcmp(l->limit, "tasks_per_module"))
    subject = "a module", unit = "tasks";
  else if (!strcmp(l->limit, "options_per_question"))
    subject = "a question", unit = "options";
  else if (!strcmp(l->limit, "task_text"))
    subject = "a task's text";
  char sentence[160];
  snprintf(sentence, sizeof sentence, "%s has at most %lld %s; this one has %lld", subject,
           (long long)l->max, unit, (long long)l->got);
  snprintf(buf, cap, "%s: %s", where, sentence);
}

/* FNV-1a over a length-prefixed field (NULL differs from ""). */
static uint64_t digest_field(uint64_t h, const char *s) {
  uint64_t len = s ? (uint64_t)strlen(s) : UINT64_MAX;
  for (int i = 0; i < 8; i++) {
    h ^= (len >> (8 * i)) & 0xffu;
    h *= 1099511628211u;
  }
  for (const unsigned char *p = (const unsigned char *)s; s && *p; p++) {
    h ^= *p;
    h *= 1099511628211u;
  }
  return h;
}

uint64_t store_tasks_digest_add(uint64_t digest, const store_task *t) {
  digest = digest_field(digest, t->kind);
  digest = digest_field(digest, t->text);
  return digest_field(digest, t->options_json);
}

static int digest_one(const store_task *t, void *ud) {
  uint64_t *d = ud;
  *d = store_tasks_digest_add(*d, t);
  return 0;
}

int store_module_tasks_digest(store *s, int64_t module_id, uint64_t *out) {
  uint64_t d = STORE_TASKS_DIGEST_INIT;
  int code = store_module_tasks(s, module_id, digest_one, &d);
  if (code < 0) return code;
  *out = d;
  return 0;
}

/* Replaces the module's tasks with `tasks`. */
static int put_tasks(store *s, int64_t module_id, const store_task_in *tasks, int n) {
  store_limit lim;
  if (store_tasks_check(tasks, n, &lim) != 0) {
    char why[STORE_ERRMSG_MAX];
    store_limit_describe(&lim, "tasks", why, sizeof why);
    return store_failf(s, STORE_INVALID, "%s", why);
  }
  int code = store_run_id(s, "DELETE FROM tasks WHERE module_id = ?1", module_id);
  if (code < 0) return code;
  sqlite3_stmt *ins = store_prepare(s, "INSERT INTO tasks(module_id, position, kind, text, options,"
                                       " correct) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!ins) return STORE_ERR;
  for (int i = 0; i < n && code == 0; i++) {
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    sqlite3_bind_int64(ins, 1, module_id);
    sqlite3_bind_int(ins, 2, i);
    store_bind_text(ins, 3, tasks[i].kind);
    store_bind_text(ins, 4, tasks[i].text);
    store_bind_text(ins, 5, tasks[i].options_json);
    store_bind_text(ins, 6, tasks[i].correct_json);
    code = store_step_done(s, ins);
    if (code == STORE_INVALID)
      code = store_failf(s, code,
                         "tasks[%d]: a task is a question (with options) or an observe "
                         "task (without), and has a text",
                         i);
  }
  sqlite3_finalize(ins);
  return code;
}

static int module_set_type_title(store *s, int64_t now, int64_t id, const char *title,
                                 const char *type) {
  sqlite3_stmt *st = store_prepare(s, "UPDATE modules SET title = coalesce(?2, title),"
                                      " type = coalesce(?3, type), updated_at = ?4 WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  store_bind_text(st, 2, title);
  store_bind_text(st, 3, type);
  sqlite3_bind_int64(st, 4, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == STORE_INVALID) store_failf(s, code, "a module title has 1 to 127 characters");
  return code;
}

/* A module switch besides OTJ: its column and the audit actions of its
 * two states. */
typedef struct module_switch {
  const char *set_sql, *on, *off;
} module_switch;

static const module_switch SWITCH_CONFIRM = {
    "UPDATE modules SET learner_confirm = ?2, updated_at = ?3"
    " WHERE id = ?1 AND learner_confirm <> ?2",
    "module.learner_confirm_on", "module.learner_confirm_off"};
static const module_switch SWITCH_LEARNER_EVIDENCE = {
    "UPDATE modules SET learner_evidence = ?2, updated_at = ?3"
    " WHERE id = ?1 AND learner_evidence <> ?2",
    "module.learner_evidence_on", "module.learner_evidence_off"};

/* Sets a module switch (whether approvals wait for the learner's
 * confirmation, whether learners may attach evidence), audited like the
 * OTJ switch (R11). */
static int module_set_switch(store *s, const module_switch *sw, int64_t now, int64_t actor_id,
                             int64_t id, int on) {
  sqlite3_stmt *st = store_prepare(s, sw->set_sql);
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int(st, 2, on ? 1 : 0);
  sqlite3_bind_int64(st, 3, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code < 0 || sqlite3_changes(s->db) == 0) return code;
  st = store_prepare(s, "INSERT INTO audit(at, actor_id, action, subject, detail)"
                        " VALUES (?1, ?2, ?3, 'module:' || ?4, json_object('module', ?4))");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, now);
  store_bind_id(st, 2, actor_id);
  sqlite3_bind_text(st, 3, on ? sw->on : sw->off, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, id); /* subject "module:<id>", like every module entry */
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  return code;
}

static int module_set_switch_tx(store *s, const module_switch *sw, int64_t now, int64_t actor_id,
                                int64_t id, int on) {
  int code = store_begin(s);
  if (code < 0) return code;
  store_module m;
  if ((code = store_module_by_id(s, id, &m)) == 0)
    code = module_set_switch(s, sw, now, actor_id, id, on);
  return store_finish(s, code);
}

int store_module_set_confirm(store *s, int64_t now, int64_t actor_id, int64_t id, int on) {
  return module_set_switch_tx(s, &SWITCH_CONFIRM, now, actor_id, id, on);
}

int store_module_set_learner_evidence(store *s, int64_t now, int64_t actor_id, int64_t id, int on) {
  return module_set_switch_tx(s, &SWITCH_LEARNER_EVIDENCE, now, actor_id, id, on);
}

/* The body of store_module_update inside the caller's transaction. */
static int module_update_in_tx(store *s, int64_t now, int64_t actor_id, int64_t id,
                               const store_module_in *in) {
  store_module m;
  int code = store_module_by_id(s, id, &m);
  if (code < 0) return code;
  const char *type = in->type ? in->type : m.type;
  int otj = in->otj < 0 ? m.otj : (in->otj ? 1 : 0);
  if (in->type && !valid_type(in->type))
    return store_failf(s, STORE_INVALID,
                       "\"%s\" is not a module type; use quiz, content, video or document",
                       in->type);
  if (otj && strcmp(type, "quiz") != 0) {
    if (in->otj > 0 && !m.otj)
      return store_failf(s, STORE_INVALID,
                         "On-the-Job training can only be switched on for quiz modules; "
                         "\"%s\" is a %s module",
                         m.title, type);
    return store_failf(s, STORE_INVALID,
                       "\"%s\" has On-the-Job training switched on, so it must stay a quiz; "
                       "switch OTJ off first to make it a %s module",
                       m.title, type);
  }
  if (m.otj && !otj && (code = store_module_set_otj_in_tx(s, now, actor_id, id, 0)) < 0)
    return code;
  if ((in->title || in->type) &&
      (code = module_set_type_title(s, now, id, in->title, in->type)) < 0)
    return code;
  if (in->task_count >= 0 && (code = put_tasks(s, id, in->tasks, in->task_count)) < 0) return code;
  if (!m.otj && otj && (code = store_module_set_otj_in_tx(s, now, actor_id, id, 1)) < 0)
    return code;
  if (in->validity_months != 0 &&
      (code = store_module_set_validity_in_tx(
           s, now, actor_id, id, in->validity_months < 0 ? 0 : in->validity_months)) < 0)
    return code;
  return 0;
}

/* An admin's module change in the audit log (R11): what was set, the
 * number of tasks when they were replaced. The OTJ switch has its own entry
 * (module.otj); the organisation import audits itself once. */
static int module_audit(store *s, int64_t now, int64_t actor_id, const char *action, int64_t id,
                        const store_module_in *in) {
  sqlite3_stmt *st = store_prepare(s, "SELECT json_object('title', ?1, 'type', ?2, 'tasks', ?3)");
  if (!st) return STORE_ERR;
  store_bind_text(st, 1, in->title);
  store_bind_text(st, 2, in->type);
  if (in->task_count >= 0) sqlite3_bind_int(st, 3, in->task_count);
  int rc = sqlite3_step(st);
  char detail[1024] = "{}";
  if (rc == SQLITE_ROW && col_text(st, 0)) snprintf(detail, sizeof detail, "%s", col_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return store_fail(s, rc);
  char subject[32];
  snprintf(subject, sizeof subject, "module:%lld", (long long)id);
  return store_audit_append(s, now, actor_id, action, subject, detail);
}

int store_module_update(store *s, int64_t now, int64_t actor_id, int64_t id,
                        const store_module_in *in) {
  int code = store_begin(s);
  if (code < 0) return code;
  code = module_update_in_tx(s, now, actor_id, id, in);
  if (code == 0 && (in->title || in->type || in->task_count >= 0))
    code = module_audit(s, now, actor_id, "module.updated", id, in);
  return store_finish(s, code);
}

/* The body of store_module_create_full inside the caller's transaction. */
static int module_create_in_tx(store *s, int64_t now, int64_t actor_id, const store_module_in *in,
                               int64_t *id) {
  if (!valid_type(in->type))
    return store_failf(s, STORE_INVALID,
                       "\"%s\" is not a module type; use quiz, content, video or document",
                       in->type ? in->type : "");
  if (in->otj > 0 && strcmp(in->type, "quiz") != 0)
    return store_failf(s, STORE_INVALID,
                       "On-the-Job training can only be switched on for quiz modules; "
                       "\"%s\" is a %s module",
                       in->title ? in->title : "", in->type);
  int64_t mid = 0;
  int code = store_module_create(s, now, in->title, in->type, &mid);
  if (code == STORE_INVALID) return store_failf(s, code, "a module title has 1 to 127 characters");
  if (code < 0) return code;
  if (in->task_count > 0 && (code = put_tasks(s, mid, in->tasks, in->task_count)) < 0) return code;
  if (in->otj > 0 && (code = store_module_set_otj_in_tx(s, now, actor_id, mid, 1)) < 0) return code;
  if (in->validity_months > 0 &&
      (code = store_module_set_validity_in_tx(s, now, actor_id, mid, in->validity_months)) < 0)
    return code;
  if (id) *id = mid;
  return 0;
}

int store_module_create_full(store *s, int64_t now, int64_t actor_id, const store_module_in *in,
                             int64_t *id) {
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t mid = 0;
  code = module_create_in_tx(s, now, actor_id, in, &mid);
  if (code == 0) code = module_audit(s, now, actor_id, "module.created", mid, in);
  if (code == 0 && id) *id = mid;
  return store_finish(s, code);
}

int store_modules_list(store *s, store_module_cb cb, void *ud) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT " STORE_SQL_MODULE_COLUMNS " FROM modules m ORDER BY m.title, m.id");
  if (!st) return STORE_ERR;
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_module m;
    store_module_row(st, &m);
    code = cb(&m, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- Admin: paths and sharings ----------------------------------------------------------- */

static int put_path_modules(store *s, int64_t path_id, const int64_t *ids, int n) {
  int code = store_run_id(s, "DELETE FROM path_modules WHERE path_id = ?1", path_id);
  if (code < 0) return code;
  sqlite3_stmt *ins = store_prepare(s, "INSERT INTO path_modules(path_id, position, module_id)"
                                       " VALUES (?1, ?2, ?3)");
  if (!ins) return STORE_ERR;
  for (int i = 0; i < n && code == 0; i++) {
    sqlite3_reset(ins);
    sqlite3_bind_int64(ins, 1, path_id);
    sqlite3_bind_int(ins, 2, i);
    sqlite3_bind_int64(ins, 3, ids[i]);
    code = store_step_done(s, ins);
    if (code == STORE_CONFLICT)
      code = store_failf(s, STORE_INVALID, "modules[%d]: module %lld is in the path twice", i,
                         (long long)ids[i]);
    else if (code == STORE_INVALID)
      code = store_failf(s, code, "modules[%d]: there is no module with id %lld", i,
                         (long long)ids[i]);
  }
  sqlite3_finalize(ins);
  return code;
}

static int path_create_in_tx(store *s, int64_t now, const char *title, const int64_t *ids, int n,
                             int64_t *id) {
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO paths(title, created_at) VALUES (?1, ?2)");
  if (!st) return STORE_ERR;
  store_bind_text(st, 1, title);
  sqlite3_bind_int64(st, 2, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == STORE_INVALID) return store_failf(s, code, "a path title has 1 to 127 characters");
  if (code < 0) return code;
  int64_t pid = sqlite3_last_insert_rowid(s->db);
  if ((code = put_path_modules(s, pid, ids, n)) < 0) return code;
  if (id) *id = pid;
  return 0;
}

int store_path_create(store *s, int64_t now, int64_t actor_id, const char *title,
                      const int64_t *module_ids, int n, int64_t *id) {
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t pid = 0;
  code = path_create_in_tx(s, now, title, module_ids, n, &pid);
  if (code == 0) code = store_audit_path(s, now, actor_id, pid, NULL);
  if (code == 0 && id) *id = pid;
  return store_finish(s, code);
}

int store_path_update(store *s, int64_t now, int64_t actor_id, int64_t id, const char *title,
                      const int64_t *module_ids, int n) {
  int code = store_begin(s);
  if (code < 0) return code;
  json_t *before = store_path_state(s, id); /* NULL: not found, said below */
  sqlite3_stmt *st = store_prepare(s, "UPDATE paths SET title = coalesce(?2, title) WHERE id = ?1");
  if (!st) {
    json_decref(before);
    return store_finish(s, STORE_ERR);
  }
  sqlite3_bind_int64(st, 1, id);
  store_bind_text(st, 2, title);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == STORE_INVALID)
    code = store_failf(s, code, "a path title has 1 to 127 characters");
  else if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no path with id %lld", (long long)id);
  if (code == 0 && n >= 0) code = put_path_modules(s, id, module_ids, n);
  if (code == 0 && !before) code = store_failf(s, STORE_ERR, "the path could not be read");
  if (code == 0) code = store_audit_path(s, now, actor_id, id, json_incref(before));
  json_decref(before);
  return store_finish(s, code);
}

int store_paths_list(store *s, int64_t id, store_path_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(
      s, "SELECT p.id, p.title, p.created_at, (SELECT json_group_array(module_id) FROM"
         "  (SELECT module_id FROM path_modules WHERE path_id = p.id ORDER BY position))"
         "  FROM paths p WHERE ?1 = 0 OR p.id = ?1 ORDER BY p.title, p.id");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  int rc = SQLITE_DONE, code = 0, rows = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_path_info p = {sqlite3_column_int64(st, 0), col_text(st, 1), sqlite3_column_int64(st, 2),
                         col_text(st, 3)};
    rows++;
    code = cb(&p, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  if (code == 0 && id > 0 && rows == 0)
    code = store_failf(s, STORE_NOTFOUND, "no path with id %lld", (long long)id);
  return code;
}

int store_sharing_create(store *s, int64_t now, int64_t path_id, int64_t user_id,
                         int64_t department_id, int64_t *id) {
  if ((user_id > 0) == (department_id > 0))
    return store_failf(s, STORE_INVALID, "share a path with one user or one department");
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO sharings(path_id, user_id, department_id,"
                                      " created_at) VALUES (?1, ?2, ?3, ?4)");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, path_id);
  store_bind_id(st, 2, user_id);
  store_bind_id(st, 3, department_id);
  sqlite3_bind_int64(st, 4, now);
  int code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code == STORE_CONFLICT)
    store_failf(s, code, "the path is shared with this %s already",
                user_id > 0 ? "user" : "department");
  else if (code == STORE_INVALID)
    store_failf(s, code, "no such path, user or department");
  else if (code == 0 && id)
    *id = sqlite3_last_insert_rowid(s->db);
  return code;
}

int store_sharing_delete(store *s, int64_t id) {
  int code = store_run_id(s, "DELETE FROM sharings WHERE id = ?1", id);
  if (code == 0 && sqlite3_changes(s->db) == 0)
    code = store_failf(s, STORE_NOTFOUND, "no sharing with id %lld", (long long)id);
  return code;
}

int store_sharings_list(store *s, int64_t path_id, store_sharing_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(s, "SELECT id, path_id, coalesce(user_id, 0),"
                                      " coalesce(department_id, 0), created_at FROM sharings"
                                      " WHERE ?1 = 0 OR path_id = ?1 ORDER BY created_at, id");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, path_id);
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_sharing sh = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                        sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                        sqlite3_column_int64(st, 4)};
    code = cb(&sh, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- Audit read back ----------------------------------------------------------------------- */

int store_audit_list(store *s, int64_t before_id, int limit, store_audit_cb cb, void *ud) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT a.id, a.at, coalesce(a.actor_id, 0), u.login, a.action,"
                       " a.subject, a.detail FROM audit a"
                       " LEFT JOIN users u ON u.id = a.actor_id"
                       " WHERE ?1 <= 0 OR a.id < ?1 ORDER BY a.id DESC LIMIT ?2");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, before_id);
  sqlite3_bind_int(st, 2, limit);
  int rc = SQLITE_DONE, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_audit_entry e = {sqlite3_column_int64(st, 0),
                           sqlite3_column_int64(st, 1),
                           sqlite3_column_int64(st, 2),
                           col_text(st, 3),
                           col_text(st, 4),
                           col_text(st, 5),
                           col_text(st, 6)};
    code = cb(&e, ud);
  }
  code = loop_end(s, code ? SQLITE_DONE : rc, code);
  sqlite3_finalize(st);
  return code;
}

/* --- Organisation import --------------------------------------------------------------------- */

/* Ids of the rows the document created, parallel to its arrays. */
typedef struct import_ids {
  int64_t *departments, *users, *modules, *paths;
} import_ids;

#define IMPORT_PLACE_MAX 96

/* A name's index among the first n names of an array of structs (by the
 * string member at `off`), or -1. */
static int doc_index(const void *base, size_t stride, size_t off, int n, const char *name) {
  for (int i = 0; i < n; i++) {
    const char *v = *(const char *const *)((const char *)base + (size_t)i * stride + off);
    if (v && name && !strcmp(v, name)) return i;
  }
  return -1;
}

#define DOC_INDEX(arr, member, n, name)                                                            \
  doc_index((arr), sizeof *(arr), offsetof(__typeof__(*(arr)), member), (n), (name))

/* Resolves a name: the document's rows first (ids[] of the first `known`
 * rows; a row further down the document is an error: `later` names it), then
 * the database. Returns 0 and *id, or STORE_INVALID with the reason. */
static int resolve(store *s, store_entity kind, const char *what, const char *name, int doc_i,
                   int known, const int64_t *ids, int64_t *id) {
  if (doc_i >= 0 && doc_i < known) {
    *id = ids[doc_i];
    return 0;
  }
  if (doc_i >= known)
    return store_failf(s, STORE_INVALID, "%s \"%s\" is listed further down; list it first", what,
                       name);
  int code = store_find_id(s, kind, name, id);
  if (code == STORE_NOTFOUND)
    return store_failf(s, STORE_INVALID, "no %s named \"%s\"", what, name);
  return code;
}

/* Refuses a name that the document lists twice. */
static int check_unique(store *s, const void *base, size_t stride, size_t off, int n,
                        const char *array, const char *member) {
  for (int i = 0; i < n; i++) {
    const char *v = *(const char *const *)((const char *)base + (size_t)i * stride + off);
    int first = doc_index(base, stride, off, i, v);
    if (first >= 0)
      return store_failf(s, STORE_CONFLICT, "%s[%d].%s: \"%s\" is listed twice (also at %s[%d])",
                         array, i, member, v ? v : "", array, first);
  }
  return 0;
}

static int import_people(store *s, int64_t now, int64_t actor_id, const store_import *doc,
                         import_ids *ids) {
  char place[IMPORT_PLACE_MAX];
  int code = 0;
  for (int i = 0; i < doc->department_count; i++) {
    const store_import_department *d = &doc->departments[i];
    int64_t parent = 0;
    if (d->parent) {
      snprintf(place, sizeof place, "departments[%d].parent", i);
      int di = DOC_INDEX(doc->departments, name, doc->department_count, d->parent);
      if (di == i)
        return store_failf(s, STORE_INVALID, "%s: a department cannot be its own parent", place);
      if ((code = resolve(s, STORE_DEPARTMENT, "department", d->parent, di, i, ids->departments,
                          &parent)) < 0)
        return at_place(s, code, place);
    }
    snprintf(place, sizeof place, "departments[%d].name", i);
    if ((code = store_department_create(s, d->name, parent, &ids->departments[i])) < 0) {
      if (code == STORE_INVALID) store_failf(s, code, "a department name has 1 to 127 characters");
      return at_place(s, code, place);
    }
  }

  for (int i = 0; i < doc->user_count; i++) {
    const store_import_user *u = &doc->users[i];
    int64_t dept = 0;
    snprintf(place, sizeof place, "users[%d].department", i);
    int di = DOC_INDEX(doc->departments, name, doc->department_count, u->department);
    if ((code = resolve(s, STORE_DEPARTMENT, "department", u->department, di, doc->department_count,
                        ids->departments, &dept)) < 0)
      return at_place(s, code, place);
    snprintf(place, sizeof place, "users[%d].login", i);
    code = store_user_create(s, now, u->login, u->name, dept, u->password_hash, u->admin,
                             &ids->users[i]);
    if (code == STORE_CONFLICT)
      return store_failf(s, code, "%s: the login \"%s\" is taken", place, u->login);
    if (code == STORE_INVALID)
      return store_failf(s, code, "users[%d]: a login has 1 to 63 characters, a name 1 to 127", i);
    if (code < 0) return at_place(s, code, place);
    if (u->management || u->facilitate_otj) {
      snprintf(place, sizeof place, "users[%d].facilitate_otj", i);
      if ((code = store_set_permission_in_tx(s, now, actor_id, ids->users[i], u->management,
                                             u->facilitate_otj)) < 0)
        return at_place(s, code, place);
    }
  }
  return 0;
}

static int import_switches(store *s, int64_t now, int64_t actor_id, const store_import *doc,
                           const import_ids *ids, const int *module_flags) {
  int code = 0;
  for (int i = 0; module_flags && i < doc->module_count && code == 0; i++) {
    if (module_flags[i] & STORE_MODULE_CONFIRM)
      code = module_set_switch(s, &SWITCH_CONFIRM, now, actor_id, ids->modules[i], 1);
    if (code == 0 && (module_flags[i] & STORE_MODULE_LEARNER_EVIDENCE))
      code = module_set_switch(s, &SWITCH_LEARNER_EVIDENCE, now, actor_id, ids->modules[i], 1);
  }
  return code;
}

static int import_learning(store *s, int64_t now, int64_t actor_id, const store_import *doc,
                           import_ids *ids) {
  char place[IMPORT_PLACE_MAX];
  int code = 0;
  for (int i = 0; i < doc->module_count; i++) {
    const store_import_module *m = &doc->modules[i];
    store_module_in in = {m->title, m->type, m->otj, m->tasks, m->task_count, m->validity_months};
    snprintf(place, sizeof place, "modules[%d]", i);
    if ((code = module_create_in_tx(s, now, actor_id, &in, &ids->modules[i])) < 0)
      return at_place(s, code, place);
  }

  int64_t *mids = NULL;
  for (int i = 0; i < doc->path_count && code == 0; i++) {
    const store_import_path *p = &doc->paths[i];
    free(mids);
    mids = calloc((size_t)(p->module_count > 0 ? p->module_count : 1), sizeof *mids);
    if (!mids) return store_failf(s, STORE_ERR, "out of memory");
    for (int k = 0; k < p->module_count && code == 0; k++) {
      snprintf(place, sizeof place, "paths[%d].modules[%d]", i, k);
      int mi = DOC_INDEX(doc->modules, title, doc->module_count, p->modules[k]);
      if ((code = resolve(s, STORE_MODULE, "module", p->modules[k], mi, doc->module_count,
                          ids->modules, &mids[k])) < 0)
        code = at_place(s, code, place);
    }
    if (code == 0) {
      snprintf(place, sizeof place, "paths[%d]", i);
      if ((code = path_create_in_tx(s, now, p->title, mids, p->module_count, &ids->paths[i])) < 0)
        code = at_place(s, code, place);
    }
  }
  free(mids);
  return code;
}

static int import_progress(store *s, int64_t now, const store_import *doc, import_ids *ids) {
  char place[IMPORT_PLACE_MAX];
  int code = 0;
  for (int i = 0; i < doc->sharing_count; i++) {
    const store_import_sharing *sh = &doc->sharings[i];
    int64_t path = 0;
    snprintf(place, sizeof place, "sharings[%d].path", i);
    int pi = DOC_INDEX(doc->paths, title, doc->path_count, sh->path);
    if ((code = resolve(s, STORE_PATH, "path", sh->path, pi, doc->path_count, ids->paths, &path)) <
        0)
      return at_place(s, code, place);
    for (int k = 0; k < sh->user_count; k++) {
      int64_t uid = 0;
      snprintf(place, sizeof place, "sharings[%d].users[%d]", i, k);
      int ui = DOC_INDEX(doc->users, login, doc->user_count, sh->users[k]);
      if ((code = resolve(s, STORE_USER, "user with login", sh->users[k], ui, doc->user_count,
                          ids->users, &uid)) < 0 ||
          (code = store_sharing_create(s, now, path, uid, 0, NULL)) < 0)
        return at_place(s, code, place);
    }
    for (int k = 0; k < sh->department_count; k++) {
      int64_t did = 0;
      snprintf(place, sizeof place, "sharings[%d].departments[%d]", i, k);
      int di = DOC_INDEX(doc->departments, name, doc->department_count, sh->departments[k]);
      if ((code = resolve(s, STORE_DEPARTMENT, "department", sh->departments[k], di,
                          doc->department_count, ids->departments, &did)) < 0 ||
          (code = store_sharing_create(s, now, path, 0, did, NULL)) < 0)
        return at_place(s, code, place);
    }
  }

  sqlite3_stmt *st = store_prepare(s, "INSERT INTO completions(user_id, module_id, path_id,"
                                      " completed_at) VALUES (?1, ?2, ?3, ?4)");
  if (!st) return STORE_ERR;
  for (int i = 0; i < doc->completion_count && code == 0; i++) {
    const store_import_completion *c = &doc->completions[i];
    int64_t uid = 0, mid = 0, pid = 0;
    snprintf(place, sizeof place, "completions[%d].login", i);
    int ui = DOC_INDEX(doc->users, login, doc->user_count, c->login);
    if ((code = resolve(s, STORE_USER, "user with login", c->login, ui, doc->user_count, ids->users,
                        &uid)) < 0) {
      code = at_place(s, code, place);
      break;
    }
    snprintf(place, sizeof place, "completions[%d].module", i);
    int mi = DOC_INDEX(doc->modules, title, doc->module_count, c->module);
    if ((code = resolve(s, STORE_MODULE, "module", c->module, mi, doc->module_count, ids->modules,
                        &mid)) < 0) {
      code = at_place(s, code, place);
      break;
    }
    if (c->path) {
      snprintf(place, sizeof place, "completions[%d].path", i);
      int pi = DOC_INDEX(doc->paths, title, doc->path_count, c->path);
      if ((code = resolve(s, STORE_PATH, "path", c->path, pi, doc->path_count, ids->paths, &pid)) <
          0) {
        code = at_place(s, code, place);
        break;
      }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_int64(st, 1, uid);
    sqlite3_bind_int64(st, 2, mid);
    store_bind_id(st, 3, pid);
    sqlite3_bind_int64(st, 4, c->completed_at > 0 ? c->completed_at : now);
    if ((code = store_step_done(s, st)) < 0) {
      snprintf(place, sizeof place, "completions[%d]", i);
      if (code == STORE_CONFLICT)
        store_failf(s, code, "\"%s\" has completed \"%s\" already", c->login, c->module);
      code = at_place(s, code, place);
    }
  }
  sqlite3_finalize(st);
  return code;
}

static int import_check_names(store *s, const store_import *doc) {
  int code;
  if ((code = check_unique(s, doc->departments, sizeof *doc->departments,
                           offsetof(store_import_department, name), doc->department_count,
                           "departments", "name")) < 0 ||
      (code = check_unique(s, doc->users, sizeof *doc->users, offsetof(store_import_user, login),
                           doc->user_count, "users", "login")) < 0 ||
      (code =
           check_unique(s, doc->modules, sizeof *doc->modules, offsetof(store_import_module, title),
                        doc->module_count, "modules", "title")) < 0 ||
      (code = check_unique(s, doc->paths, sizeof *doc->paths, offsetof(store_import_path, title),
                           doc->path_count, "paths", "title")) < 0)
    return code;
  return 0;
}

int store_import_org(store *s, int64_t now, int64_t actor_id, const store_import *doc) {
  return store_import_org_with(s, now, actor_id, doc, NULL);
}

int store_import_org_with(store *s, int64_t now, int64_t actor_id, const store_import *doc,
                          const int *module_flags) {
  int code = import_check_names(s, doc);
  if (code < 0) return code;

  import_ids ids = {
      calloc((size_t)doc->department_count + 1, sizeof(int64_t)),
      calloc((size_t)doc->user_count + 1, sizeof(int64_t)),
      calloc((size_t)doc->module_count + 1, sizeof(int64_t)),
      calloc((size_t)doc->path_count + 1, sizeof(int64_t)),
  };
  if (!ids.departments || !ids.users || !ids.modules || !ids.paths) {
    code = store_failf(s, STORE_ERR, "out of memory for the import");
    goto out;
  }
  if ((code = store_begin(s)) < 0) goto out;
  if ((code = import_people(s, now, actor_id, doc, &ids)) == 0 &&
      (code = import_learning(s, now, actor_id, doc, &ids)) == 0 &&
      (code = import_switches(s, now, actor_id, doc, &ids, module_flags)) == 0 &&
      (code = import_progress(s, now, doc, &ids)) == 0) {
    char detail[200];
    snprintf(detail, sizeof detail,
             "{\"departments\":%d,\"users\":%d,\"modules\":%d,\"paths\":%d,\"sharings\":%d,"
             "\"completions\":%d}",
             doc->department_count, doc->user_count, doc->module_count, doc->path_count,
             doc->sharing_count, doc->completion_count);
    code = store_audit_append(s, now, actor_id, "org.import", "organisation", detail);
  }
  code = store_finish(s, code);
out:
  free(ids.departments);
  free(ids.users);
  free(ids.modules);
  free(ids.paths);
  return code;
}
