/* bulk.c — login sessions in bulk, for load provisioning.
 *
 * A load test needs tokens for thousands of users; logging each one in
 * costs an argon2id verification (~140 ms, 64 MiB). An administrator may
 * instead ask for sessions of many users at once (POST /api/admin/tokens).
 * The one idea: every session of a call is inserted in ONE transaction,
 * with one audit entry for the whole call, so 10,000 sessions cost one
 * commit, and a call that names an unknown login leaves nothing behind.
 */
#include <stdio.h>

#include "store_int.h"

#define BULK_LOGIN_SQL "SELECT id FROM users WHERE login = ?1"
#define BULK_SESSION_SQL                                                                           \
  "INSERT INTO login_sessions(token_hash, user_id, created_at, expires_at)"                        \
  " VALUES (?1, ?2, ?3, ?4)"

static int bulk_insert(store *s, sqlite3_stmt *find, sqlite3_stmt *ins, int64_t now,
                       int64_t expires_at, store_bulk_session *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    store_bulk_session *it = &items[i];
    sqlite3_reset(find);
    sqlite3_bind_text(find, 1, it->login, -1, SQLITE_STATIC);
    int rc = sqlite3_step(find);
    if (rc == SQLITE_DONE)
      return store_failf(s, STORE_NOTFOUND, "no user with login \"%s\"", it->login);
    if (rc != SQLITE_ROW) return store_fail(s, rc);
    it->user_id = sqlite3_column_int64(find, 0);

    sqlite3_reset(ins);
    sqlite3_bind_blob(ins, 1, it->token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, it->user_id);
    sqlite3_bind_int64(ins, 3, now);
    sqlite3_bind_int64(ins, 4, expires_at);
    int code = store_step_done(s, ins);
    if (code < 0) return code;
  }
  return 0;
}

int store_sessions_bulk(store *s, int64_t now, int64_t expires_at, int64_t actor_id,
                        store_bulk_session *items, size_t n) {
  sqlite3_stmt *find = store_prepare(s, BULK_LOGIN_SQL);
  sqlite3_stmt *ins = find ? store_prepare(s, BULK_SESSION_SQL) : NULL;
  if (!ins) {
    sqlite3_finalize(find);
    return STORE_ERR;
  }
  int code = store_begin(s);
  if (code == 0) code = bulk_insert(s, find, ins, now, expires_at, items, n);
  sqlite3_finalize(find);
  sqlite3_finalize(ins);
  if (code == 0) {
    char detail[64];
    snprintf(detail, sizeof detail, "{\"count\":%zu}", n);
    code = store_audit_append(s, now, actor_id, "session.bulk", NULL, detail);
  }
  return store_finish(s, code);
}
