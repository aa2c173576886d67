/* store_int.h — what store.c, migrations.c and demo.c share, and nobody else.
 *
 * The handle keeps one lazily prepared statement per hot query (session
 * lookup, user by id, ...); store_stmt() hands it out reset and unbound.
 */
#ifndef OTJ_STORE_INT_H
#define OTJ_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

typedef enum store_stmt_id {
    ST_USER_BY_ID,
    ST_USER_BY_LOGIN,
    ST_SESSION_USER,
    ST_SESSION_CREATE,
    ST_SESSION_DELETE,
    ST_AUDIT_APPEND,
    ST_WITHIN_REACH,
    ST_COMPLETION_EXISTS,
    /* org.c prepares these itself (org_stmt); store_close finalizes them */
    ST_ORG_LEARNER_PATHS,
    ST_ORG_REACHES,
    ST_ORG_PENDING,
    ST_ORG_PENDING_COUNT,
    ST__COUNT
} store_stmt_id;

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST__COUNT];
    char err[STORE_ERRMSG_MAX];
};

/* A cached statement, reset and with bindings cleared; NULL on error (the
 * message is in s->err). Owned by the handle: never finalize it. */
sqlite3_stmt *store_stmt(store *s, store_stmt_id id);

/* Maps a SQLite result code to a STORE_ code and records the message. */
int store_fail(store *s, int rc);

/* Records a message of our own (printf-style) and returns code. */
int store_failf(store *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A fresh statement (the caller finalizes it); NULL on error, the message
 * in s->err. */
sqlite3_stmt *store_prepare(store *s, const char *sql);

/* Runs SQL without results. Returns 0 or a STORE_ code. */
int store_exec(store *s, const char *sql);

/* Transactions: BEGIN IMMEDIATE (take the write lock now, so a transaction
 * never fails half-way for a lock), COMMIT, ROLLBACK (ignores errors). */
int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

/* The bodies of store_set_permission and store_module_set_otj for a caller
 * that already holds a write transaction (the demo loader). */
int store_set_permission_in_tx(store *s, int64_t now, int64_t actor_id, int64_t user_id,
                               int management, int facilitate_otj);
int store_module_set_otj_in_tx(store *s, int64_t now, int64_t actor_id, int64_t module_id,
                                int otj);

/* Brings the schema up to date (migrations.c). Returns 0 or a STORE_ code
 * with the reason in s->err. */
int store_migrate(store *s);

#endif /* OTJ_STORE_INT_H */
