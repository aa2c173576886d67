/*
 * audit — the tamper-evident chain of the audit log (R11, DESIGN §8).
 *
 * Every audit row carries prev_hash, the hash of the row before it (NULL for
 * the first), and hash = BLAKE2b-256 (libsodium crypto_generichash) of its
 * own canonical content and prev_hash. The one design idea: the chain is
 * computed by the database itself, in the transaction that inserts the row.
 * store_open registers the SQL function otj_audit_hash() (below) on every
 * handle, and a trigger (migration AUDIT_CHAIN) fills prev_hash and hash
 * right after each INSERT INTO audit, reading the previous row inside the
 * write transaction. SQLite has one writer at a time, so several otjd
 * processes on one data folder (and the writer thread, the worker pool and
 * the loop of one otjd) extend one chain and never fork it. Whatever path
 * inserts an audit row is chained: nobody has to remember to.
 *
 * Canonical content, hashed in this order (integers 8 bytes big-endian,
 * texts as a 4-byte big-endian length and their UTF-8 bytes, a nullable
 * field after one byte 0 = NULL or 1 = present):
 *   "otj-audit-1" | prev_hash (32 bytes; 32 zero bytes for the first row)
 *   | id | at | ?actor_id | action | ?subject | ?detail
 * store_audit_verify recomputes it row by row with the same function.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

#define AUDIT_DOMAIN "otj-audit-1"

typedef struct audit_fields {
  int64_t id, at, actor;
  int has_actor;
  const unsigned char *action, *subject, *detail;
  int action_len, subject_len, detail_len; /* -1 = NULL */
  const unsigned char *prev;               /* NULL or STORE_AUDIT_HASH_BYTES */
} audit_fields;

static void put_int(crypto_generichash_state *h, int64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
  crypto_generichash_update(h, b, sizeof b);
}

static void put_text(crypto_generichash_state *h, const unsigned char *p, int len, int nullable) {
  if (nullable) {
    unsigned char tag = len < 0 ? 0 : 1;
    crypto_generichash_update(h, &tag, 1);
    if (len < 0) return;
  }
  if (len < 0) len = 0;
  unsigned char b[4] = {(unsigned char)((uint32_t)len >> 24), (unsigned char)((uint32_t)len >> 16),
                        (unsigned char)((uint32_t)len >> 8), (unsigned char)len};
  crypto_generichash_update(h, b, sizeof b);
  if (len) crypto_generichash_update(h, p, (unsigned long long)len);
}

static void audit_hash(const audit_fields *f, unsigned char out[STORE_AUDIT_HASH_BYTES]) {
  static const unsigned char zero[STORE_AUDIT_HASH_BYTES];
  crypto_generichash_state h;
  crypto_generichash_init(&h, NULL, 0, STORE_AUDIT_HASH_BYTES);
  crypto_generichash_update(&h, (const unsigned char *)AUDIT_DOMAIN, sizeof AUDIT_DOMAIN - 1);
  crypto_generichash_update(&h, f->prev ? f->prev : zero, STORE_AUDIT_HASH_BYTES);
  put_int(&h, f->id);
  put_int(&h, f->at);
  unsigned char tag = f->has_actor ? 1 : 0;
  crypto_generichash_update(&h, &tag, 1);
  if (f->has_actor) put_int(&h, f->actor);
  put_text(&h, f->action, f->action_len, 0);
  put_text(&h, f->subject, f->subject_len, 1);
  put_text(&h, f->detail, f->detail_len, 1);
  crypto_generichash_final(&h, out, STORE_AUDIT_HASH_BYTES);
}

/* Reads a text value (NULL -> len -1). */
static const unsigned char *value_text(sqlite3_value *v, int *len) {
  if (sqlite3_value_type(v) == SQLITE_NULL) {
    *len = -1;
    return NULL;
  }
  const unsigned char *p = sqlite3_value_text(v);
  *len = sqlite3_value_bytes(v);
  return p;
}

/* otj_audit_hash(id, at, actor_id, action, subject, detail, prev_hash):
 * the 32-byte hash of one row; NULL when prev_hash is neither NULL nor 32
 * bytes. */
static void sql_audit_hash(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  audit_fields f = {0};
  f.id = sqlite3_value_int64(argv[0]);
  f.at = sqlite3_value_int64(argv[1]);
  f.has_actor = sqlite3_value_type(argv[2]) != SQLITE_NULL;
  f.actor = sqlite3_value_int64(argv[2]);
  f.action = value_text(argv[3], &f.action_len);
  f.subject = value_text(argv[4], &f.subject_len);
  f.detail = value_text(argv[5], &f.detail_len);
  if (sqlite3_value_type(argv[6]) != SQLITE_NULL) {
    if (sqlite3_value_bytes(argv[6]) != STORE_AUDIT_HASH_BYTES) {
      sqlite3_result_null(ctx);
      return;
    }
    f.prev = sqlite3_value_blob(argv[6]);
  }
  unsigned char out[STORE_AUDIT_HASH_BYTES];
  audit_hash(&f, out);
  sqlite3_result_blob(ctx, out, sizeof out, SQLITE_TRANSIENT);
}

int store_audit_register(sqlite3 *db) {
  return sqlite3_create_function_v2(db, "otj_audit_hash", 7,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                    sql_audit_hash, NULL, NULL, NULL);
}

void store_audit_hex(const unsigned char h[STORE_AUDIT_HASH_BYTES],
                     char out[STORE_AUDIT_HASH_BYTES * 2 + 1]) {
  sodium_bin2hex(out, STORE_AUDIT_HASH_BYTES * 2 + 1, h, STORE_AUDIT_HASH_BYTES);
}

static int verify_db(sqlite3 *db, store_audit_check *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->ok = 1;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT id, at, actor_id, action, subject, detail, prev_hash, hash"
                              " FROM audit ORDER BY id",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return rc == SQLITE_BUSY ? STORE_BUSY : STORE_ERR;
  }
  unsigned char head[STORE_AUDIT_HASH_BYTES];
  int have_head = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    out->entries++;
    if (!out->ok) continue; /* count the rest */
    audit_fields f = {0};
    f.id = sqlite3_column_int64(st, 0);
    f.at = sqlite3_column_int64(st, 1);
    f.has_actor = sqlite3_column_type(st, 2) != SQLITE_NULL;
    f.actor = sqlite3_column_int64(st, 2);
    f.action = value_text(sqlite3_column_value(st, 3), &f.action_len);
    f.subject = value_text(sqlite3_column_value(st, 4), &f.subject_len);
    f.detail = value_text(sqlite3_column_value(st, 5), &f.detail_len);
    int prev_null = sqlite3_column_type(st, 6) == SQLITE_NULL;
    const void *prev = sqlite3_column_blob(st, 6);
    int prev_len = sqlite3_column_bytes(st, 6);
    const void *hash = sqlite3_column_blob(st, 7);
    int hash_len = sqlite3_column_bytes(st, 7);
    /* the link: prev_hash is the hash of the row before (none: NULL) */
    int link_ok = have_head ? (prev_len == STORE_AUDIT_HASH_BYTES &&
                               memcmp(prev, head, STORE_AUDIT_HASH_BYTES) == 0)
                            : prev_null;
    unsigned char h[STORE_AUDIT_HASH_BYTES];
    f.prev = have_head ? head : NULL;
    audit_hash(&f, h);
    if (!link_ok || hash_len != STORE_AUDIT_HASH_BYTES ||
        memcmp(hash, h, STORE_AUDIT_HASH_BYTES) != 0) {
      out->ok = 0;
      out->first_bad = f.id;
      continue;
    }
    memcpy(head, h, sizeof head);
    have_head = 1;
  }
  int code = 0;
  if (rc != SQLITE_DONE) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    code = (rc & 0xff) == SQLITE_BUSY ? STORE_BUSY : STORE_ERR;
  }
  sqlite3_finalize(st);
  if (code == 0 && out->ok && have_head) store_audit_hex(head, out->head);
  return code;
}

int store_audit_verify(store *s, store_audit_check *out) {
  /* one read transaction: a consistent snapshot while others append */
  int code = store_exec(s, "BEGIN");
  if (code < 0) return code;
  code = verify_db(s->db, out, s->err, sizeof s->err);
  store_exec(s, "COMMIT");
  return code;
}

int store_audit_verify_file(const char *path, store_audit_check *out, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  int code = STORE_ERR;
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    goto out;
  }
  sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  char why[STORE_ERRMSG_MAX] = "";
  code = verify_db(db, out, why, sizeof why);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (code < 0) snprintf(err, errlen, "%s: %s", path, why);
out:
  sqlite3_close(db);
  return code;
}

int store_audit_hash_of_completion(store *s, int64_t completion, int64_t *entry_id,
                                   char hex[STORE_AUDIT_HASH_BYTES * 2 + 1]) {
  sqlite3_stmt *st = store_prepare(s, "SELECT id, hash FROM audit WHERE action = 'otj.approved'"
                                      " AND json_extract(detail, '$.completion') = ?1"
                                      " ORDER BY id LIMIT 1");
  if (!st) return STORE_ERR;
  sqlite3_bind_int64(st, 1, completion);
  int rc = sqlite3_step(st), code = 0;
  if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == STORE_AUDIT_HASH_BYTES) {
    *entry_id = sqlite3_column_int64(st, 0);
    store_audit_hex(sqlite3_column_blob(st, 1), hex);
  } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
    code = store_failf(s, STORE_NOTFOUND, "no approval entry for completion %lld",
                       (long long)completion);
  } else {
    code = store_fail(s, rc);
  }
  sqlite3_finalize(st);
  return code;
}
