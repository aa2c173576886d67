/*
 * confirm — sign-off that both sides confirm: the durable half.
 *
 * A module may require the learner's confirmation (modules.learner_confirm).
 * Then an approval does not write a completion: it writes a row of
 * otj_confirmations in state 'pending', with everything the completion will
 * keep (approver, decision time, answers, marks, note, path). When the
 * learner types the room's current code (checked by the server, which knows
 * the room's secret), the row becomes the completion, with both times:
 * decided_at and confirmed_at. Until then nothing counts (R6, R10): the
 * learner still waits for the module. Every step runs inside
 * store_approvals_commit's transaction, so it is durable before anyone is
 * told, and each is audited (R11).
 *
 * The one design idea: a waiting approval belongs to its room. A "not
 * approved" in the same room withdraws it; the room's close lapses it; a
 * confirmation is accepted only for a waiting row of that room.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static int audit(store *s, int64_t at, int64_t actor, const char *action, const store_approval *a,
                 int64_t completion) {
  sqlite3_stmt *st = store_prepare(
      s, "INSERT INTO audit(at, actor_id, action, subject, detail)"
         " VALUES (?1, ?2, ?3, ?4, json_object('learner', ?5, 'module', ?6, 'room', ?4,"
         " 'completion', NULLIF(?7, 0), 'note', ?8, 'reason', ?9))");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, at);
  sqlite3_bind_int64(st, 2, actor);
  sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
  store_bind_text(st, 4, a->room);
  sqlite3_bind_int64(st, 5, a->learner);
  sqlite3_bind_int64(st, 6, a->module);
  sqlite3_bind_int64(st, 7, completion);
  store_bind_text(st, 8, a->confirm ? NULL : a->note);
  store_bind_text(st, 9, a->reason);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  return rc;
}

/* 1 when the module requires the learner's confirmation. */
static int module_requires(store *s, int64_t module) {
  sqlite3_stmt *st = store_prepare(s, "SELECT learner_confirm FROM modules WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, module);
  int n = store_step_int(s, st);
  sqlite3_finalize(st);
  return n;
}

int store_confirm_hold(store *s, store_approval *a) {
  if (!a->room) return 0;
  int need = module_requires(s, a->module);
  if (need <= 0) return need;
  if (store_completion_exists(s, a->learner, a->module, NULL) == 1) return 0; /* R10 */
  sqlite3_stmt *st = store_prepare(
      s, "INSERT INTO otj_confirmations(user_id, module_id, path_id, room_id, approved_by,"
         " decided_at, answers, marks, note, state, attendance)"
         " VALUES (?1, ?2, NULLIF(?3, 0), ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10)"
         " ON CONFLICT(user_id, module_id, room_id) DO UPDATE SET path_id = excluded.path_id,"
         " approved_by = excluded.approved_by, decided_at = excluded.decided_at,"
         " answers = excluded.answers, marks = excluded.marks, note = excluded.note,"
         " attendance = excluded.attendance, state = 'pending' WHERE state <> 'confirmed'");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, a->learner);
  sqlite3_bind_int64(st, 2, a->module);
  sqlite3_bind_int64(st, 3, a->path);
  store_bind_text(st, 4, a->room);
  sqlite3_bind_int64(st, 5, a->approver);
  sqlite3_bind_int64(st, 6, a->now);
  store_bind_text(st, 7, a->answers_json);
  store_bind_text(st, 8, a->marks_json);
  store_bind_text(st, 9, a->note);
  store_bind_text(st, 10, a->attendance_json);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  if (rc < 0) return rc;
  if ((rc = audit(s, a->now, a->approver, "otj.approved_awaiting_confirmation", a, 0)) < 0)
    return rc;
  a->pending = 1;
  return 1;
}

int store_confirm_withdraw(store *s, const store_approval *a) {
  if (!a->room) return 0;
  sqlite3_stmt *st =
      store_prepare(s, "UPDATE otj_confirmations SET state = 'withdrawn' WHERE user_id = ?1"
                       " AND module_id = ?2 AND room_id = ?3 AND state = 'pending'");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, a->learner);
  sqlite3_bind_int64(st, 2, a->module);
  store_bind_text(st, 3, a->room);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  return rc;
}

int store_confirm_lapse(store *s, const char *room) {
  sqlite3_stmt *st = store_prepare(s, "UPDATE otj_confirmations SET state = 'lapsed'"
                                      " WHERE room_id = ?1 AND state = 'pending'");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  return rc;
}

/* Refuses the confirmation with a sentence for the learner (audited). */
static int refuse(store *s, store_approval *a, const char *why) {
  a->outcome = STORE_REFUSED;
  a->reason = why;
  return audit(s, a->now, a->learner, "otj.confirmation_refused", a, 0);
}

int store_confirm_apply(store *s, store_approval *a) {
  a->decided_at = 0;
  sqlite3_stmt *st = store_prepare(
      s, "SELECT c.id, coalesce(c.path_id, 0), c.approved_by, c.decided_at, c.answers, c.marks,"
         " c.note, r.closed_at IS NULL, c.attendance FROM otj_confirmations c"
         " LEFT JOIN otj_rooms r ON r.id = c.room_id"
         " WHERE c.user_id = ?1 AND c.module_id = ?2 AND c.room_id = ?3 AND c.state = 'pending'");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, a->learner);
  sqlite3_bind_int64(st, 2, a->module);
  store_bind_text(st, 3, a->room);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_fail(s, rc);
    return refuse(s, a, "Nothing of yours waits for confirmation in this room.");
  }
  int64_t row = sqlite3_column_int64(st, 0);
  int open = sqlite3_column_int(st, 7); /* a room without history counts as open */
  if (!open) {
    sqlite3_finalize(st);
    return refuse(s, a, "This room is closed; the approval lapsed.");
  }
  a->path = sqlite3_column_int64(st, 1);
  a->approver = sqlite3_column_int64(st, 2);
  a->decided_at = sqlite3_column_int64(st, 3);
  sqlite3_stmt *ins =
      store_prepare(s, "INSERT INTO completions(user_id, module_id, path_id, approved_by, room_id,"
                       " completed_at, answers, marks, note, decided_at, confirmed_at, renewal,"
                       " attendance)"
                       " SELECT ?1, ?2, NULLIF(?3, 0), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6,"
                       "  (SELECT count(*) FROM completions WHERE user_id = ?1 AND module_id = ?2),"
                       "  ?11"
                       " WHERE NOT EXISTS (SELECT 1 FROM completions c"
                       "   JOIN modules m ON m.id = c.module_id"
                       "   WHERE c.user_id = ?1 AND c.module_id = ?2"
                       "     AND " STORE_SQL_VALID_AT(
                           "c", "m", "?6") ")"
                                           " ON CONFLICT(user_id, module_id, renewal) DO NOTHING");
  if (!ins) {
    sqlite3_finalize(st);
    return STORE_ERR;
  }
  sqlite3_bind_int64(ins, 1, a->learner);
  sqlite3_bind_int64(ins, 2, a->module);
  sqlite3_bind_int64(ins, 3, a->path);
  sqlite3_bind_int64(ins, 4, a->approver);
  store_bind_text(ins, 5, a->room);
  sqlite3_bind_int64(ins, 6, a->now);
  sqlite3_bind_value(ins, 7, sqlite3_column_value(st, 4));
  sqlite3_bind_value(ins, 8, sqlite3_column_value(st, 5));
  sqlite3_bind_value(ins, 9, sqlite3_column_value(st, 6));
  sqlite3_bind_int64(ins, 10, a->decided_at);
  sqlite3_bind_value(ins, 11, sqlite3_column_value(st, 8));
  rc = store_step_done(s, ins);
  sqlite3_finalize(ins);
  sqlite3_finalize(st);
  if (rc < 0) return rc;
  if (sqlite3_changes(s->db) == 1) {
    a->completion = sqlite3_last_insert_rowid(s->db);
    a->created = 1;
  } else if (store_completion_exists(s, a->learner, a->module, &a->completion) != 1) {
    return STORE_ERR;
  }
  sqlite3_stmt *up =
      store_prepare(s, "UPDATE otj_confirmations SET state = 'confirmed', confirmed_at = ?2,"
                       " completion_id = ?3 WHERE id = ?1");
  if (!up) return STORE_ERR;
  sqlite3_bind_int64(up, 1, row);
  sqlite3_bind_int64(up, 2, a->now);
  sqlite3_bind_int64(up, 3, a->completion);
  rc = store_step_done(s, up);
  sqlite3_finalize(up);
  if (rc < 0) return rc;
  a->outcome = STORE_APPROVED;
  return audit(s, a->now, a->learner, "otj.confirmed", a, a->completion);
}

_Static_assert(STORE_CONFIRM_SECRET_LEN == 32, "the query below and the schema say 32");

int store_room_confirm_secret(store *s, const char *room, unsigned char *out) {
  sqlite3_stmt *st = store_prepare(s, "SELECT confirm_secret FROM otj_rooms WHERE id = ?1"
                                      " AND length(confirm_secret) = 32");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    memcpy(out, sqlite3_column_blob(st, 0), STORE_CONFIRM_SECRET_LEN);
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? STORE_NOTFOUND : store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return rc;
}
