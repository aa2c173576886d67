/* requests.c — "Ask for OTJ" requests (requests.h).
 *
 * The one design idea: a request records a moment and an audience, nothing
 * derived. Whether the learner still waits and who reaches them is asked of
 * the organisation when it matters (org.c); the only state a request has is
 * whether it ended, and that is set by the completion itself (a trigger), so
 * no writer of completions needs to know requests exist.
 */
#include <stdio.h>

#include "requests.h"
#include "store_int.h"

static int one_row_times(store *s, sqlite3_stmt *st, int64_t *a, int64_t *b) {
  int rc = sqlite3_step(st);
  int found = 0;
  if (rc == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
      found = 1;
      if (a) *a = sqlite3_column_int64(st, 0);
      if (b) *b = sqlite3_column_int64(st, 1);
    }
    rc = SQLITE_DONE;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? found : store_fail(s, rc);
}

int store_request_last(store *s, int64_t learner_id, int64_t module_id, int64_t *at) {
  sqlite3_stmt *st = store_prepare(s, "SELECT max(requested_at), 0 FROM otj_requests"
                                      " WHERE learner_id = ?1 AND module_id = ?2");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, module_id);
  return one_row_times(s, st, at, NULL);
}

int store_request_open(store *s, int64_t learner_id, int64_t module_id, int64_t *first_at,
                       int64_t *last_at) {
  sqlite3_stmt *st =
      store_prepare(s, "SELECT min(requested_at), max(requested_at) FROM otj_requests"
                       " WHERE learner_id = ?1 AND module_id = ?2 AND ended_at IS NULL");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, module_id);
  return one_row_times(s, st, first_at, last_at);
}

int store_request_create(store *s, int64_t now, int64_t learner_id, int64_t module_id,
                         int64_t path_id, uint32_t cooldown_s, const store_recipient *to, size_t n,
                         int64_t *id, int64_t *last_at) {
  int code = store_begin(s);
  if (code < 0) return code;
  int64_t last = 0;
  int had = store_request_last(s, learner_id, module_id, &last);
  if (had < 0) {
    code = had;
    goto out;
  }
  if (had && now - last < (int64_t)cooldown_s) {
    if (last_at) *last_at = last;
    code = store_failf(s, STORE_CONFLICT, "asked already at %lld", (long long)last);
    goto out;
  }
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO otj_requests(learner_id, module_id, path_id,"
                                      " requested_at) VALUES (?1, ?2, ?3, ?4)");
  if (!st) {
    code = STORE_ERR;
    goto out;
  }
  sqlite3_bind_int64(st, 1, learner_id);
  sqlite3_bind_int64(st, 2, module_id);
  store_bind_id(st, 3, path_id);
  sqlite3_bind_int64(st, 4, now);
  code = store_step_done(s, st);
  sqlite3_finalize(st);
  if (code < 0) goto out;
  int64_t rid = sqlite3_last_insert_rowid(s->db);
  st = store_prepare(s, "INSERT OR IGNORE INTO otj_request_recipients(request_id,"
                        " responsible_id, online) VALUES (?1, ?2, ?3)");
  if (!st) {
    code = STORE_ERR;
    goto out;
  }
  for (size_t i = 0; i < n && code == 0; i++) {
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, to[i].responsible_id);
    sqlite3_bind_int(st, 3, to[i].online ? 1 : 0);
    code = store_step_done(s, st);
  }
  sqlite3_finalize(st);
  if (code == 0 && id) *id = rid;
out:
  return store_finish(s, code);
}
