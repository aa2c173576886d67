/*
 * completions — durable OTJ decisions (R9, R10, R11), written in batches.
 *
 * The writer thread hands a whole batch of decisions to
 * store_approvals_commit, which applies them in ONE transaction: with
 * synchronous=FULL a commit costs one fsync whatever the number of rows, so
 * concurrent approvals share it (group commit). An approval inserts the
 * completion unless the learner already has one for the module, in which
 * case the existing id is returned (R10); every decision, including a
 * refusal, is appended to the audit log in the same transaction (R11).
 * The approver's rights (R1, R2) are checked again inside that transaction
 * when the caller asks (check_approver), so a right removed a moment before
 * cannot slip a completion through.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

/* A new completion unless one stands at ?6 (the approval's time; ?10 = the
 * re-drill window): a first approval is renewal 0, a re-drill's after an
 * earlier approval expired (or became due) is the next renewal. */
#define SQL_STANDS_FROM STORE_SQL_DUE_FROM("c", "m", "?10")
#define SQL_STANDS                                                                                 \
  "SELECT c.id FROM completions c JOIN modules m ON m.id = c.module_id"                            \
  " WHERE c.user_id = ?1 AND c.module_id = ?2"                                                     \
  "   AND coalesce(" SQL_STANDS_FROM " > ?6, 1)"
static const char SQL_INSERT[] =
    "INSERT INTO completions(user_id, module_id, path_id, approved_by, room_id,"
    " completed_at, answers, marks, note, renewal, attendance)"
    " SELECT ?1, ?2, coalesce(NULLIF(?3, 0), (SELECT path_id FROM completions"
    "   WHERE user_id = ?1 AND module_id = ?2 ORDER BY renewal DESC LIMIT 1)),"
    "  ?4, ?5, ?6, ?7, ?8, ?9,"
    "  (SELECT count(*) FROM completions WHERE user_id = ?1 AND module_id = ?2), ?11"
    " WHERE NOT EXISTS (" SQL_STANDS ")"
    " ON CONFLICT(user_id, module_id, renewal) DO NOTHING";
static const char SQL_FIND[] = SQL_STANDS " ORDER BY c.renewal DESC LIMIT 1";
static const char SQL_AUDIT[] = "INSERT INTO audit(at, actor_id, action, subject, detail)"
                                " VALUES (?1, ?2, ?3, ?4, json_object('learner', ?5, 'module', ?6,"
                                " 'path', NULLIF(?7, 0), 'room', ?8, 'completion', NULLIF(?9, 0),"
                                " 'note', ?10, 'reason', ?11, 'created', ?12))";

/* R9 was judged on the room's tasks: they must still be the module's. A
 * module edited while its room was open turns the decision into a refusal,
 * unless the learner has the completion already (a repeated approve keeps
 * answering with it, R10). */
static int check_room_tasks(store *s, store_approval *a) {
  a->tasks_changed = 0;
  if (!a->check_tasks) return 0;
  if (a->outcome == STORE_APPROVED && store_completion_exists(s, a->learner, a->module, NULL) == 1)
    return 0;
  uint64_t now;
  int rc = store_module_tasks_digest(s, a->module, &now);
  if (rc < 0) return rc;
  if (now != a->tasks_digest) {
    a->outcome = STORE_REFUSED;
    a->tasks_changed = 1;
    a->reason = "The module's tasks were changed after the room was opened.";
  }
  return 0;
}

static int apply_one(store *s, sqlite3_stmt *ins, sqlite3_stmt *find, sqlite3_stmt *aud,
                     store_approval *a) {
  int rc;
  a->completion = 0;
  a->created = 0;
  a->pending = 0;
  if (a->confirm) return store_confirm_apply(s, a); /* the learner's side */
  if ((rc = check_room_tasks(s, a)) < 0) return rc;
  a->forbidden = 0;
  if (a->check_approver) {
    /* R1/R2 as they are now, not as they were when the socket said hello:
     * rights taken away, a department changed or a deactivation in the
     * meantime refuse the decision in the transaction that would write it */
    rc = store_responsible_reaches(s, a->approver, a->learner);
    if (rc < 0) return rc;
    if (rc != 1) {
      a->outcome = STORE_REFUSED;
      a->forbidden = 1;
      a->reason = "You may no longer decide for this learner: your rights or "
                  "department changed.";
    }
  }
  if (a->outcome == STORE_APPROVED && a->check_waiting &&
      store_completion_exists(s, a->learner, a->module, NULL) != 1) {
    int64_t since;
    rc = store_learner_otj_pending(s, a->learner, a->module, &a->path, &since);
    if (rc == 0) /* a re-drill: the approval expired or is due soon */
      rc = store_completion_renewable(s, a->learner, a->module);
    if (rc < 0) return rc;
    if (rc != 1) {
      a->outcome = STORE_REFUSED;
      a->reason = "That learner is not waiting for this module any more.";
    }
  }
  if (a->outcome == STORE_APPROVED && (rc = store_confirm_hold(s, a)) != 0) {
    if (rc < 0) return rc;
    return 0; /* waits for the learner's confirmation: no completion yet */
  }
  if (a->outcome == STORE_NOT_APPROVED && (rc = store_confirm_withdraw(s, a)) < 0) return rc;
  if (a->outcome == STORE_APPROVED) {
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    sqlite3_bind_int64(ins, 1, a->learner);
    sqlite3_bind_int64(ins, 2, a->module);
    sqlite3_bind_int64(ins, 3, a->path);
    sqlite3_bind_int64(ins, 4, a->approver);
    store_bind_text(ins, 5, a->room);
    sqlite3_bind_int64(ins, 6, a->now);
    store_bind_text(ins, 7, a->answers_json);
    store_bind_text(ins, 8, a->marks_json);
    store_bind_text(ins, 9, a->note);
    sqlite3_bind_int64(ins, 10, store_redrill_window());
    store_bind_text(ins, 11, a->attendance_json);
    if ((rc = store_step_done(s, ins)) < 0) return rc;
    if (sqlite3_changes(s->db) == 1) {
      a->completion = sqlite3_last_insert_rowid(s->db);
      a->created = 1;
    } else {
      sqlite3_reset(find);
      sqlite3_bind_int64(find, 1, a->learner);
      sqlite3_bind_int64(find, 2, a->module);
      sqlite3_bind_int64(find, 6, a->now);
      sqlite3_bind_int64(find, 10, store_redrill_window());
      rc = sqlite3_step(find);
      if (rc != SQLITE_ROW) return store_fail(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
      a->completion = sqlite3_column_int64(find, 0);
    }
  }
  static const char *const actions[] = {
      [STORE_APPROVED] = "otj.approved",
      [STORE_NOT_APPROVED] = "otj.not_approved",
      [STORE_REFUSED] = "otj.refused",
  };
  sqlite3_reset(aud);
  sqlite3_clear_bindings(aud);
  sqlite3_bind_int64(aud, 1, a->now);
  sqlite3_bind_int64(aud, 2, a->approver);
  sqlite3_bind_text(aud, 3, actions[a->outcome], -1, SQLITE_STATIC);
  store_bind_text(aud, 4, a->room);
  sqlite3_bind_int64(aud, 5, a->learner);
  sqlite3_bind_int64(aud, 6, a->module);
  sqlite3_bind_int64(aud, 7, a->path);
  store_bind_text(aud, 8, a->room);
  sqlite3_bind_int64(aud, 9, a->completion);
  store_bind_text(aud, 10, a->note);
  store_bind_text(aud, 11, a->reason);
  sqlite3_bind_int(aud, 12, a->created);
  return store_step_done(s, aud);
}

static void run(sqlite3_stmt *st) {
  sqlite3_step(st);
  sqlite3_reset(st);
}

int store_approvals_commit(store *s, store_approval *a, size_t n) {
  sqlite3_stmt *ins = NULL, *find = NULL, *aud = NULL, *sp = NULL, *rel = NULL, *back = NULL;
  int rc = STORE_ERR;
  if (!(ins = store_prepare(s, SQL_INSERT)) || !(find = store_prepare(s, SQL_FIND)) ||
      !(aud = store_prepare(s, SQL_AUDIT)) || !(sp = store_prepare(s, "SAVEPOINT decision")) ||
      !(rel = store_prepare(s, "RELEASE decision")) ||
      !(back = store_prepare(s, "ROLLBACK TO decision")))
    goto out;
  if ((rc = store_begin(s)) != 0) goto out;
  for (size_t i = 0; i < n; i++) {
    /* each decision in a savepoint: one that fails leaves no half (a
     * completion without its audit entry), and the others still commit */
    run(sp);
    a[i].rc = apply_one(s, ins, find, aud, &a[i]);
    if (a[i].rc != 0) {
      run(back);
      a[i].completion = 0;
      a[i].created = 0;
    }
    run(rel);
  }
  if ((rc = store_commit(s)) != 0) {
    store_rollback(s);
    for (size_t i = 0; i < n; i++) {
      a[i].rc = rc;
      a[i].completion = 0;
      a[i].created = 0;
    }
  }
out:
  sqlite3_finalize(ins);
  sqlite3_finalize(find);
  sqlite3_finalize(aud);
  sqlite3_finalize(sp);
  sqlite3_finalize(rel);
  sqlite3_finalize(back);
  return rc;
}

/* A room's opening and closing are audited in the transaction that writes
 * its history row (R11). */
static const char SQL_ROOM_AUDIT[] =
    "INSERT INTO audit(at, actor_id, action, subject, detail)"
    " SELECT ?2, host_id, ?3, 'room:' || id, json_object('module', module_id, 'code', code)"
    " FROM otj_rooms WHERE id = ?1";

static int room_audit(store *s, const char *room, int64_t now, const char *action) {
  sqlite3_stmt *st = store_prepare(s, SQL_ROOM_AUDIT);
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  return rc;
}

int store_room_opened(store *s, const char *room, int64_t module, int64_t host, const char *code,
                      int64_t now, const unsigned char *confirm_secret) {
  int rc = store_begin(s);
  if (rc < 0) return rc;
  sqlite3_stmt *st = store_prepare(
      s, "INSERT INTO otj_rooms(id, module_id, host_id, code, opened_at, confirm_secret)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return store_finish(s, STORE_ERR);
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, module);
  sqlite3_bind_int64(st, 3, host);
  sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, now);
  if (confirm_secret)
    sqlite3_bind_blob(st, 6, confirm_secret, STORE_CONFIRM_SECRET_LEN, SQLITE_STATIC);
  rc = store_step_done(s, st);
  sqlite3_finalize(st);
  if (rc == 0) rc = room_audit(s, room, now, "room.opened");
  return store_finish(s, rc);
}

int store_room_closed(store *s, const char *room, int64_t now) {
  int rc = store_begin(s);
  if (rc < 0) return rc;
  sqlite3_stmt *st = store_prepare(s, "UPDATE otj_rooms SET closed_at = max(?2, opened_at)"
                                      " WHERE id = ?1 AND closed_at IS NULL");
  if (!st) return store_finish(s, STORE_ERR);
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  rc = store_step_done(s, st);
  int closed = rc == 0 && sqlite3_changes(s->db) == 1;
  sqlite3_finalize(st);
  if (closed) rc = room_audit(s, room, now, "room.closed");
  if (rc == 0) rc = store_confirm_lapse(s, room);
  return store_finish(s, rc);
}

int store_room_get(store *s, const char *room, int64_t *host, char *code, size_t code_cap,
                   int *open) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT host_id, code, closed_at IS NULL FROM otj_rooms WHERE id = ?1");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *host = sqlite3_column_int64(st, 0);
    const unsigned char *c = sqlite3_column_text(st, 1);
    snprintf(code, code_cap, "%s", c ? (const char *)c : "");
    *open = sqlite3_column_int(st, 2);
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? STORE_NOTFOUND : store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return rc;
}

int store_rooms_open_count(store *s, int64_t host, int64_t since) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT count(*) FROM otj_rooms WHERE host_id = ?1 AND closed_at IS NULL"
                       " AND opened_at >= ?2");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, host);
  sqlite3_bind_int64(st, 2, since);
  int n = store_step_int(s, st);
  sqlite3_finalize(st);
  return n;
}
