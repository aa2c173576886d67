/* recert.c — recertification: approvals that expire and re-drills.
 *
 * A module's validity (months) makes each completion of it expire at its
 * approval time plus that many months (storage/store_int.h:
 * STORE_SQL_EXPIRES). An expired completion no longer counts for R5/R6/R7;
 * it stays in the records, and a re-drill's approval is a new completion
 * with the next `renewal` number. Here: setting the validity, and the list
 * of learners due for a re-drill within a responsible's reach.
 */
#include <stdio.h>

#include "store_int.h"

int store_module_set_validity_in_tx(store *s, int64_t now, int64_t actor_id, int64_t module_id,
                                    int months) {
  if (months < 0 || months > STORE_MAX_VALIDITY_MONTHS)
    return store_failf(s, STORE_INVALID, "a validity is 1 to %d months, or none",
                       STORE_MAX_VALIDITY_MONTHS);
  sqlite3_stmt *st = store_prepare(s, "UPDATE modules SET validity_months = NULLIF(?2, 0),"
                                      " updated_at = ?3 WHERE id = ?1"
                                      " AND validity_months IS NOT NULLIF(?2, 0)");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, module_id);
  sqlite3_bind_int(st, 2, months);
  sqlite3_bind_int64(st, 3, now);
  int code = store_step_done(s, st);
  int changed = sqlite3_changes(s->db);
  sqlite3_finalize(st);
  if (code < 0 || changed == 0) return code;
  char subject[32], detail[48];
  snprintf(subject, sizeof subject, "module:%lld", (long long)module_id);
  if (months)
    snprintf(detail, sizeof detail, "{\"validity_months\":%d}", months);
  else
    snprintf(detail, sizeof detail, "{\"validity_months\":null}");
  return store_audit_append(s, now, actor_id, "module.validity", subject, detail);
}

/* The learners within reach of responsible ?1 (R1/R2, as for R6) and, for
 * each OTJ module with a validity, their latest completion when it is due
 * from ?2 (now + window; expired ones too). ?3 = now, ?4 = the window. */
#define SQL_DUE_EXPIRES STORE_SQL_EXPIRES("c", "m")
#define SQL_DUE_NOW     STORE_SQL_DUE_FROM("c", "m", "?4") " <= ?3"
static const char SQL_DUE[] =
    "WITH RECURSIVE"
    " resp(dept) AS (SELECT u.department_id FROM users u JOIN permissions p ON p.user_id = u.id"
    "   WHERE u.id = ?1 AND p.management = 1 AND p.facilitate_otj = 1 AND u.active = 1),"
    " reach(id) AS (SELECT dept FROM resp"
    "   UNION SELECT d.id FROM departments d JOIN reach ON d.parent_id = reach.id),"
    " latest(cid) AS (SELECT max(c.id) FROM completions c JOIN users u ON u.id = c.user_id"
    "   JOIN modules m ON m.id = c.module_id"
    "   WHERE u.department_id IN (SELECT id FROM reach) AND u.id <> ?1 AND u.active = 1"
    "     AND m.otj = 1 AND m.validity_months IS NOT NULL"
    "   GROUP BY c.user_id, c.module_id)"
    "SELECT m.id, m.title, m.validity_months, u.id, u.login, u.name, d.id, d.name,"
    "       c.id, c.completed_at, " SQL_DUE_EXPIRES ", " SQL_DUE_NOW
    "  FROM latest JOIN completions c ON c.id = latest.cid"
    "  JOIN users u ON u.id = c.user_id JOIN departments d ON d.id = u.department_id"
    "  JOIN modules m ON m.id = c.module_id"
    " WHERE " SQL_DUE_EXPIRES " <= ?2"
    " ORDER BY m.title, m.id, 11, u.name, u.id";

int store_redrill_due(store *s, int64_t responsible_id, int64_t window_s, store_due_cb cb,
                      void *ud) {
  sqlite3_stmt *st = store_prepare(s, SQL_DUE);
  if (!st) return STORE_ERR;
  int64_t now = store_now();
  sqlite3_bind_int64(st, 1, responsible_id);
  sqlite3_bind_int64(st, 2, now + window_s);
  sqlite3_bind_int64(st, 3, now);
  sqlite3_bind_int64(st, 4, store_redrill_window());
  int rc, code = 0;
  while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_due d = {
        .module_id = sqlite3_column_int64(st, 0),
        .module_title = (const char *)sqlite3_column_text(st, 1),
        .validity_months = sqlite3_column_int(st, 2),
        .learner_id = sqlite3_column_int64(st, 3),
        .learner_login = (const char *)sqlite3_column_text(st, 4),
        .learner_name = (const char *)sqlite3_column_text(st, 5),
        .department_id = sqlite3_column_int64(st, 6),
        .department = (const char *)sqlite3_column_text(st, 7),
        .completion_id = sqlite3_column_int64(st, 8),
        .completed_at = sqlite3_column_int64(st, 9),
        .expires_at = sqlite3_column_int64(st, 10),
        .expired = sqlite3_column_int64(st, 10) <= now,
        .may_join = sqlite3_column_int(st, 11),
    };
    code = cb(&d, ud);
  }
  if (code == 0 && rc != SQLITE_DONE) code = store_fail(s, rc);
  sqlite3_finalize(st);
  return code;
}
