/*
 * evidence — the rows of uploaded evidence (see store_evidence.h).
 *
 * The one design idea: who may attach and who may see are answered from
 * durable rows only (the room's history row, the module's tasks, R1 reach),
 * never from Redis, so a file stays reachable for its learner and host
 * after the live room is gone.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "store_evidence.h"
#include "store_int.h"

int store_evidence_target(store *s, const char *room, int64_t uploader, int64_t learner,
                          uint32_t task) {
  sqlite3_stmt *st = store_prepare(
      s, "SELECT r.host_id, (SELECT t.kind FROM tasks t WHERE t.module_id = r.module_id"
         " AND t.position = ?2), m.learner_evidence"
         " FROM otj_rooms r JOIN modules m ON m.id = r.module_id"
         " WHERE r.id = ?1 AND r.closed_at IS NULL");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)task);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_fail(s, rc);
    return store_failf(s, STORE_NOTFOUND, "There is no open room with that id.");
  }
  int64_t host = sqlite3_column_int64(st, 0);
  const unsigned char *kind = sqlite3_column_text(st, 1);
  int observe = kind && !strcmp((const char *)kind, "observe");
  int exists = kind != NULL;
  int learners_may = sqlite3_column_int(st, 2);
  sqlite3_finalize(st);
  if (host != uploader && !(uploader == learner && learners_may))
    return store_failf(s, STORE_FORBIDDEN,
                       uploader == learner
                           ? "This module does not let learners attach evidence; your "
                             "responsible can attach a photo to your mark."
                           : "Only the responsible who runs this room, or the learner "
                             "themself where the module allows it, may attach evidence "
                             "in it.");
  if (!exists) return store_failf(s, STORE_INVALID, "There is no task with that number.");
  if (!observe)
    return store_failf(s, STORE_INVALID,
                       "Evidence goes with observe tasks; that task is a question.");
  /* a learner attaches to their own task in a room of a responsible who
   * reaches them (their room membership is checked where the hash is used) */
  rc = store_responsible_reaches(s, host, learner);
  if (rc < 0) return rc;
  if (rc != 1)
    return store_failf(s, STORE_FORBIDDEN,
                       host == uploader ? "That learner is not within your reach."
                                        : "You are not a learner of this room.");
  return 0;
}

int store_evidence_add(store *s, const store_evidence *e) {
  sqlite3_stmt *st = store_prepare(
      s, "INSERT INTO evidence(hash, type, size, uploader_id, room_id, learner_id, task,"
         " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
         " ON CONFLICT(hash, uploader_id, room_id, learner_id, task) DO NOTHING");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, e->hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, e->type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, e->size);
  sqlite3_bind_int64(st, 4, e->uploader);
  sqlite3_bind_text(st, 5, e->room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, e->learner);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)e->task);
  sqlite3_bind_int64(st, 8, e->created_at);
  int rc = store_step_done(s, st);
  sqlite3_finalize(st);
  return rc;
}

int store_evidence_owned(store *s, const char *hash, int64_t uploader, const char *room,
                         int64_t learner, uint32_t task) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT EXISTS (SELECT 1 FROM evidence WHERE hash = ?1 AND uploader_id = ?2"
                       " AND room_id = ?3 AND learner_id = ?4 AND task = ?5)");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, uploader);
  sqlite3_bind_text(st, 3, room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, learner);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)task);
  int rc = store_step_int(s, st);
  sqlite3_finalize(st);
  return rc;
}

int store_evidence_visible(store *s, const char *hash, int64_t viewer, int is_admin,
                           char type[STORE_EVIDENCE_TYPE_MAX], int64_t *size) {
  sqlite3_stmt *st = store_prepare(
      s, "SELECT e.type, e.size FROM evidence e LEFT JOIN otj_rooms r ON r.id = e.room_id"
         " WHERE e.hash = ?1 AND (?3 OR e.learner_id = ?2 OR r.host_id = ?2) LIMIT 1");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, viewer);
  sqlite3_bind_int(st, 3, is_admin ? 1 : 0);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(type, STORE_EVIDENCE_TYPE_MAX, "%s", t ? (const char *)t : "");
    *size = sqlite3_column_int64(st, 1);
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? store_failf(s, STORE_NOTFOUND, "There is no such evidence.")
                           : store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return rc;
}

int store_evidence_known(store *s, const char *hash) {
  sqlite3_stmt *st = store_prepare(s, "SELECT EXISTS (SELECT 1 FROM evidence WHERE hash = ?1)");
  if (!st) return STORE_ERR;
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  int rc = store_step_int(s, st);
  sqlite3_finalize(st);
  return rc;
}
