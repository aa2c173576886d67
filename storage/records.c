/*
 * records — one completion as its printable record shows it: the learner
 * and their department, the module and path, who approved it in which room
 * and when, every answer and mark with its note (as the completion kept
 * them), and who may see it. The audit hash of its approval comes from
 * audit.c (store_audit_hash_of_completion).
 */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static const char *text_at(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

int store_completion_get(store *s, int64_t id, store_record_cb cb, void *ud) {
  sqlite3_stmt *st = store_prepare(
      s, "SELECT c.id, u.id, u.login, u.name, d.id, d.name, m.id, m.title, c.path_id, p.title,"
         "       c.approved_by, a.name, c.room_id, r.code, r.opened_at, r.closed_at,"
         "       c.completed_at, c.answers, c.marks, c.note, c.attendance, c.decided_at,"
         "       c.confirmed_at"
         "  FROM completions c JOIN users u ON u.id = c.user_id"
         "  JOIN departments d ON d.id = u.department_id"
         "  JOIN modules m ON m.id = c.module_id"
         "  LEFT JOIN paths p ON p.id = c.path_id"
         "  LEFT JOIN users a ON a.id = c.approved_by"
         "  LEFT JOIN otj_rooms r ON r.id = c.room_id"
         " WHERE c.id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st), code;
  if (rc == SQLITE_ROW) {
    store_record rec = {
        .id = sqlite3_column_int64(st, 0),
        .learner_id = sqlite3_column_int64(st, 1),
        .learner_login = text_at(st, 2),
        .learner_name = text_at(st, 3),
        .department_id = sqlite3_column_int64(st, 4),
        .department = text_at(st, 5),
        .module_id = sqlite3_column_int64(st, 6),
        .module_title = text_at(st, 7),
        .path_id = sqlite3_column_int64(st, 8),
        .path_title = text_at(st, 9),
        .approved_by = sqlite3_column_int64(st, 10),
        .approved_by_name = text_at(st, 11),
        .room_id = text_at(st, 12),
        .room_code = text_at(st, 13),
        .room_opened_at = sqlite3_column_int64(st, 14),
        .room_closed_at = sqlite3_column_int64(st, 15),
        .completed_at = sqlite3_column_int64(st, 16),
        .answers_json = text_at(st, 17),
        .marks_json = text_at(st, 18),
        .note = text_at(st, 19),
        .attendance_json = text_at(st, 20),
        .decided_at = sqlite3_column_int64(st, 21),
        .confirmed_at = sqlite3_column_int64(st, 22),
    };
    code = cb(&rec, ud);
  } else if (rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no completion with id %lld", (long long)id);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}

int store_record_visible(store *s, const store_user *viewer, const store_record *rec) {
  if (viewer->is_admin || viewer->id == rec->learner_id) return 1;
  if (!store_user_is_responsible(viewer)) return 0;
  if (viewer->id == rec->approved_by) return 1;
  return store_responsible_reaches(s, viewer->id, rec->learner_id);
}
