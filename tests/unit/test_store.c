/* test_store.c — unit tests of storage/ (SQLite schema, migrations, queries, demo).
 *
 * Each test gets a fresh database file in its own mkdtemp directory, removed
 * afterwards, so tests run alone and in any order. Rules the database itself
 * must enforce (R3, R10, R11, department tree, CHECKs) are attacked through a
 * second, raw SQLite connection, the way a careless tool or a later bug
 * would; every rule is checked both ways (allowed case passes, forbidden case
 * is refused and leaves the data as it was).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define DEMO_HASH "$argon2id$v=19$m=65536,t=2,p=1$ZGVtby1zYWx0$ZGVtby1oYXNoLW5vdC1yZWFs"
#define T0        ((int64_t)1700000000)

typedef struct fixture {
  char dir[64];
  char path[128];
  store *s;
} fixture;

/* --- Fixture and helpers ---------------------------------------------------- */

static int setup(void **state) {
  /* approvals expire by the store's clock: make it read T0, the demo's time */
  store_clock_configure(T0 - (int64_t)time(NULL), 30 * 86400);
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/otj-test-store-XXXXXX");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof f->path, "%s/otj.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  store_close(f->s);
  const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char p[160];
    snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
    unlink(p);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

/* Opens the fixture's store, failing the test with the reason if it cannot. */
static store *open_store(fixture *f) {
  char err[256] = "";
  int rc = store_open(f->path, &f->s, err, sizeof err);
  if (rc != 0) fail_msg("store_open: %d %s", rc, err);
  assert_non_null(f->s);
  return f->s;
}

static store *open_demo(fixture *f) {
  store *s = open_store(f);
  int rc = store_load_demo_at(s, DEMO_HASH, T0);
  if (rc != 0) fail_msg("store_load_demo_at: %d %s", rc, store_errmsg(s));
  return s;
}

static sqlite3 *raw_open(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 2000);
  assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

/* Runs SQL on the raw connection; returns SQLite's (extended) result code. */
static int raw_exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One integer from a query; fails the test when the query fails. */
static int64_t raw_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* One text value (copied into out) from a query; "" for NULL. */
static void raw_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const unsigned char *t = sqlite3_column_text(st, 0);
  snprintf(out, cap, "%s", t ? (const char *)t : "");
  sqlite3_finalize(st);
}

static int64_t id_of(store *s, store_entity kind, const char *key) {
  int64_t id = 0;
  int rc = store_find_id(s, kind, key, &id);
  if (rc != 0) fail_msg("store_find_id(%s): %d", key, rc);
  return id;
}

static void token(unsigned char h[32], unsigned char seed) {
  for (int i = 0; i < 32; i++) h[i] = (unsigned char)(seed + i * 7);
}

/* --- Migrations ------------------------------------------------------------- */

static void test_migrations_fresh_db(void **state) {
  fixture *f = *state;
  store *s = open_store(f);

  assert_true(store_schema_latest() >= 1);
  assert_int_equal(store_schema_version(s), store_schema_latest());
  assert_int_equal(store_ping(s), 0);
  assert_int_equal(store_user_count(s), 0);

  sqlite3 *db = raw_open(f->path);
  /* one recorded row per step, numbered 1..latest */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), store_schema_latest());
  assert_int_equal(raw_int(db, "SELECT min(version) FROM schema_version"), 1);
  const char *tables[] = {"departments", "users",     "permissions",    "modules",
                          "tasks",       "paths",     "path_modules",   "sharings",
                          "completions", "otj_rooms", "login_sessions", "audit"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'", tables[i]);
    if (raw_int(db, sql) != 1) fail_msg("table %s missing", tables[i]);
  }
  /* negative: a name that is not in the schema is not found by the same check */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'nope'"), 0);
  sqlite3_close(db);
}

static void test_migrations_reopen_applies_nothing(void **state) {
  fixture *f = *state;
  store *s = open_store(f);
  int64_t dept = 0;
  assert_int_equal(store_department_create(s, "Head office", 0, &dept), 0);
  assert_int_equal(store_user_create(s, T0, "kim", "Kim Lund", dept, DEMO_HASH, 0, NULL), 0);
  store_close(s);
  f->s = NULL;

  sqlite3 *db = raw_open(f->path);
  char schema_before[64];
  raw_text(db, "SELECT count(*) || '/' || sum(length(sql)) FROM sqlite_schema", schema_before,
           sizeof schema_before);
  /* mark the recorded rows so a re-applied step would show */
  assert_int_equal(raw_exec(db, "UPDATE schema_version SET applied_at = 42"), SQLITE_OK);
  sqlite3_close(db);

  s = open_store(f);
  assert_int_equal(store_schema_version(s), store_schema_latest());
  assert_int_equal(store_user_count(s), 1);
  store_user u;
  assert_int_equal(store_user_by_login(s, "kim", &u), 0);
  assert_string_equal(u.department, "Head office");

  db = raw_open(f->path);
  char schema_after[64];
  raw_text(db, "SELECT count(*) || '/' || sum(length(sql)) FROM sqlite_schema", schema_after,
           sizeof schema_after);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version WHERE applied_at <> 42"), 0);
  assert_string_equal(schema_before, schema_after);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), store_schema_latest());
  sqlite3_close(db);
}

static void test_migrations_future_version_refused(void **state) {
  fixture *f = *state;
  store *s = open_store(f);
  store_close(s);
  f->s = NULL;

  sqlite3 *db = raw_open(f->path);
  char sql[160];
  snprintf(sql, sizeof sql,
           "INSERT INTO schema_version(version, applied_at, description) VALUES (%d, 1, 'x')",
           store_schema_latest() + 1);
  assert_int_equal(raw_exec(db, sql), SQLITE_OK);
  sqlite3_close(db);

  char err[256] = "";
  static char sentinel;
  store *out = (store *)&sentinel; /* must be overwritten with NULL */
  int rc = store_open(f->path, &out, err, sizeof err);
  assert_true(rc < 0);
  assert_null(out);
  assert_non_null(strstr(err, "newer otjd"));
  assert_non_null(strstr(err, "schema version"));

  /* the database was not touched */
  db = raw_open(f->path);
  snprintf(sql, sizeof sql, "SELECT max(version) = %d FROM schema_version",
           store_schema_latest() + 1);
  assert_int_equal(raw_int(db, sql), 1);
  /* positive: back at the version the build knows, it opens again */
  snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version = %d",
           store_schema_latest() + 1);
  assert_int_equal(raw_exec(db, sql), SQLITE_OK);
  sqlite3_close(db);
  open_store(f);
}

static void test_open_failure_says_why(void **state) {
  fixture *f = *state;
  char path[200], err[256] = "";
  snprintf(path, sizeof path, "%s/no/such/dir/otj.db", f->dir);
  store *out = NULL;
  assert_true(store_open(path, &out, err, sizeof err) < 0);
  assert_null(out);
  assert_true(strlen(err) > 0);
  assert_non_null(strstr(err, path));
}

static void test_pragmas(void **state) {
  fixture *f = *state;
  store *s = open_store(f);
  char v[32];
  assert_int_equal(store_pragma(s, "journal_mode", v, sizeof v), 0);
  assert_string_equal(v, "wal");
  assert_int_equal(store_pragma(s, "foreign_keys", v, sizeof v), 0);
  assert_string_equal(v, "1");
  assert_int_equal(store_pragma(s, "synchronous", v, sizeof v), 0);
  assert_string_equal(v, "1"); /* NORMAL */
  assert_int_equal(store_pragma(s, "busy_timeout", v, sizeof v), 0);
  assert_int_equal(atoi(v), STORE_BUSY_TIMEOUT_MS);
  assert_int_equal(store_set_durable(s, 1), 0);
  assert_int_equal(store_pragma(s, "synchronous", v, sizeof v), 0);
  assert_string_equal(v, "2"); /* FULL */
  assert_int_equal(store_set_durable(s, 0), 0);
  assert_int_equal(store_pragma(s, "synchronous", v, sizeof v), 0);
  assert_string_equal(v, "1");
  /* a pragma "name" carrying SQL is refused */
  assert_int_equal(store_pragma(s, "user_version; DROP TABLE users", v, sizeof v), STORE_INVALID);

  /* WAL is a property of the file: a fresh raw connection sees it too */
  sqlite3 *db = raw_open(f->path);
  raw_text(db, "PRAGMA journal_mode", v, sizeof v);
  assert_string_equal(v, "wal");
  sqlite3_close(db);

  /* foreign keys really act: an unknown department is refused, a known one is fine */
  assert_int_equal(store_user_create(s, T0, "ghost", "Ghost", 999, DEMO_HASH, 0, NULL),
                   STORE_INVALID);
  int64_t dept = 0;
  assert_int_equal(store_department_create(s, "Real", 0, &dept), 0);
  assert_int_equal(store_user_create(s, T0, "ghost", "Ghost", dept, DEMO_HASH, 0, NULL), 0);
}

static void test_two_handles_share_one_file(void **state) {
  fixture *f = *state;
  store *a = open_store(f);
  store *b = NULL;
  char err[256];
  assert_int_equal(store_open(f->path, &b, err, sizeof err), 0);
  assert_int_equal(store_schema_version(b), store_schema_latest());

  assert_int_equal(store_load_demo_at(a, DEMO_HASH, T0), 0);
  assert_int_equal(store_user_count(b), 13);
  store_user u;
  assert_int_equal(store_user_by_login(b, "rita", &u), 0);
  /* the second handle sees the same single loading: loading again is refused */
  assert_int_equal(store_load_demo_at(b, DEMO_HASH, T0), STORE_CONFLICT);
  store_close(b);
}

/* A handle with a short busy timeout (the event loop's) gives up at once on
 * a write lock held by another connection, while reads go on (WAL); the
 * write check takes the lock without writing. */
static void test_busy_handle_fails_fast(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  assert_int_equal(store_set_busy_timeout(s, 0), 0);
  char v[32];
  assert_int_equal(store_pragma(s, "busy_timeout", v, sizeof v), 0);
  assert_int_equal(atoi(v), 0);
  assert_int_equal(store_check_writable(s), 0);

  sqlite3 *other = raw_open(f->path);
  assert_int_equal(raw_exec(other, "BEGIN IMMEDIATE"), SQLITE_OK);
  assert_int_equal(store_check_writable(s), STORE_BUSY);
  int64_t id = 0;
  assert_int_equal(store_department_create(s, "While locked", 0, &id), STORE_BUSY);
  assert_int_equal(store_user_count(s), 13); /* reads do not wait */
  assert_int_equal(raw_exec(other, "COMMIT"), SQLITE_OK);
  sqlite3_close(other);

  assert_int_equal(store_check_writable(s), 0);
  assert_int_equal(store_department_create(s, "After the lock", 0, &id), 0);
  assert_int_equal(store_find_id(s, STORE_DEPARTMENT, "While locked", &id), STORE_NOTFOUND);
}

/* Several processes of otjd may start at once on a fresh file: every opener
 * must succeed and the schema must be applied exactly once. */
#define RACE_OPENERS 8

typedef struct race {
  const char *path;
  pthread_barrier_t *start;
  int rc;
  int version;
  char err[256];
} race;

static void *race_open(void *arg) {
  race *r = arg;
  store *s = NULL;
  pthread_barrier_wait(r->start);
  r->rc = store_open(r->path, &s, r->err, sizeof r->err);
  r->version = s ? store_schema_version(s) : -1;
  store_close(s);
  return NULL;
}

static void test_concurrent_first_open(void **state) {
  fixture *f = *state;
  pthread_barrier_t start;
  pthread_t th[RACE_OPENERS];
  race r[RACE_OPENERS];
  assert_int_equal(pthread_barrier_init(&start, NULL, RACE_OPENERS), 0);
  for (int i = 0; i < RACE_OPENERS; i++) {
    r[i] = (race){.path = f->path, .start = &start};
    assert_int_equal(pthread_create(&th[i], NULL, race_open, &r[i]), 0);
  }
  for (int i = 0; i < RACE_OPENERS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
  for (int i = 0; i < RACE_OPENERS; i++) {
    if (r[i].rc != 0) fail_msg("opener %d: %d %s", i, r[i].rc, r[i].err);
    assert_int_equal(r[i].version, store_schema_latest());
  }
  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), store_schema_latest());
  sqlite3_close(db);
}

/* --- Demo organisation ------------------------------------------------------ */

typedef struct task_log {
  int n;
  int positions[8];
  char kinds[8][16];
  char texts[8][128];
  char options[8][128];
  char correct[8][16];
} task_log;

static int log_task(const store_task *t, void *ud) {
  task_log *l = ud;
  if (l->n >= 8) return 1;
  l->positions[l->n] = t->position;
  snprintf(l->kinds[l->n], sizeof l->kinds[0], "%s", t->kind);
  snprintf(l->texts[l->n], sizeof l->texts[0], "%s", t->text);
  snprintf(l->options[l->n], sizeof l->options[0], "%s", t->options_json ? t->options_json : "");
  snprintf(l->correct[l->n], sizeof l->correct[0], "%s", t->correct_json ? t->correct_json : "");
  l->n++;
  return 0;
}

static void assert_parent(store *s, const char *child, const char *parent) {
  int64_t p = -1;
  assert_int_equal(store_department_parent(s, id_of(s, STORE_DEPARTMENT, child), &p), 0);
  int64_t want = parent ? id_of(s, STORE_DEPARTMENT, parent) : 0;
  if (p != want)
    fail_msg("parent of %s is %lld, want %s", child, (long long)p, parent ? parent : "none");
}

static void test_demo_counts_and_tree(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM departments"), 7);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM users"), 13);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM modules"), 5);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM tasks"), 3 + 4 + 2 + 3);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM paths"), 2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM path_modules"), 4);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sharings"), 2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM completions"),
                   7); /* 2 of them Hand hygiene, approved */
  /* every user carries the given hash */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM users WHERE password_hash = '" DEMO_HASH "'"),
                   13);
  assert_int_equal(store_user_count(s), 13);

  assert_parent(s, "Northwind Care", NULL);
  assert_parent(s, "St. Olav Hospital", "Northwind Care");
  assert_parent(s, "Kitchen", "St. Olav Hospital");
  assert_parent(s, "Cold kitchen", "Kitchen");
  assert_parent(s, "Ward 3", "St. Olav Hospital");
  assert_parent(s, "Plant Bergen", "Northwind Care");
  assert_parent(s, "Assembly line", "Plant Bergen");
  int64_t p;
  assert_int_equal(store_department_parent(s, 999, &p), STORE_NOTFOUND);

  /* paths: order and sharing */
  assert_int_equal(
      raw_int(db, "SELECT group_concat(m.title, ' > ') = "
                  "'Food safety basics > Hand hygiene > Allergen handling'"
                  " FROM (SELECT m.title FROM path_modules pm JOIN paths p ON p.id = pm.path_id"
                  " JOIN modules m ON m.id = pm.module_id WHERE p.title = 'Kitchen starter'"
                  " ORDER BY pm.position) m"),
      1);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sharings s JOIN paths p ON p.id = s.path_id"
                               " JOIN departments d ON d.id = s.department_id"
                               " WHERE s.user_id IS NULL AND ((p.title = 'Kitchen starter'"
                               " AND d.name = 'Kitchen') OR (p.title = 'Line safety'"
                               " AND d.name = 'Assembly line'))"),
                   2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM path_modules pm JOIN paths p ON"
                               " p.id = pm.path_id JOIN modules m ON m.id = pm.module_id"
                               " WHERE p.title = 'Line safety' AND m.title = 'Lock-out/tag-out'"
                               " AND pm.position = 0"),
                   1);
  sqlite3_close(db);
}

static void test_demo_people(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  store_user u;

  assert_int_equal(store_user_by_login(s, "rita", &u), 0);
  assert_string_equal(u.name, "Rita Hansen");
  assert_string_equal(u.department, "Kitchen");
  assert_string_equal(u.password_hash, DEMO_HASH);
  assert_true(store_user_is_responsible(&u));
  assert_false(u.is_admin);

  assert_int_equal(store_user_by_login(s, "mark", &u), 0);
  assert_true(u.management);
  assert_false(u.facilitate_otj);
  assert_false(store_user_is_responsible(&u)); /* R2: Management alone is not enough */

  assert_int_equal(store_user_by_login(s, "sam", &u), 0);
  assert_string_equal(u.department, "Plant Bergen");
  assert_true(store_user_is_responsible(&u));

  assert_int_equal(store_user_by_login(s, "admin", &u), 0);
  assert_true(u.is_admin);
  assert_false(u.management);
  assert_false(store_user_is_responsible(&u));
  assert_string_equal(u.department, "Northwind Care");

  struct {
    const char *login, *dept;
  } learners[] = {{"lea", "Kitchen"},       {"leo", "Kitchen"}, {"liv", "Cold kitchen"},
                  {"lars", "Cold kitchen"}, {"nina", "Ward 3"}, {"omar", "Assembly line"},
                  {"ola", "Assembly line"}};
  for (size_t i = 0; i < sizeof learners / sizeof learners[0]; i++) {
    assert_int_equal(store_user_by_login(s, learners[i].login, &u), 0);
    assert_string_equal(u.department, learners[i].dept);
    assert_false(u.is_admin);
    assert_false(u.management);
    assert_false(store_user_is_responsible(&u));
  }

  /* by id agrees with by login */
  store_user again;
  assert_int_equal(store_user_by_login(s, "lea", &u), 0);
  assert_int_equal(store_user_by_id(s, u.id, &again), 0);
  assert_string_equal(again.login, "lea");
  assert_int_equal(again.department_id, u.department_id);

  /* unknown users */
  assert_int_equal(store_user_by_login(s, "nobody", &u), STORE_NOTFOUND);
  assert_int_equal(store_user_by_login(s, "", &u), STORE_NOTFOUND);
  assert_int_equal(store_user_by_id(s, 999999, &u), STORE_NOTFOUND);
  int64_t id;
  assert_int_equal(store_find_id(s, STORE_USER, "nobody", &id), STORE_NOTFOUND);
  assert_int_equal(store_find_id(s, STORE_MODULE, "No such module", &id), STORE_NOTFOUND);
  /* logins compare without case (a phone capitalises "Rita") */
  assert_int_equal(store_user_by_login(s, "Rita", &u), 0);
  assert_string_equal(u.login, "rita");
  assert_int_equal(
      store_user_create(s, T0, "RITA", "Other Rita", u.department_id, DEMO_HASH, 0, NULL),
      STORE_CONFLICT);
}

static void test_demo_modules_and_tasks(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  store_module m;

  assert_int_equal(store_module_by_id(s, id_of(s, STORE_MODULE, "Hand hygiene"), &m), 0);
  assert_string_equal(m.type, "quiz");
  assert_int_equal(m.otj, 1);
  assert_int_equal(m.task_count, 4);
  task_log l = {0};
  assert_int_equal(store_module_tasks(s, m.id, log_task, &l), 0);
  assert_int_equal(l.n, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(l.positions[i], i);
  assert_string_equal(l.kinds[0], "question");
  assert_string_equal(l.texts[0], "How long should you rub your hands with soap?");
  assert_string_equal(l.options[0], "[\"5 seconds\",\"20 seconds\",\"60 seconds\"]");
  assert_string_equal(l.correct[0], "1");
  assert_string_equal(l.kinds[1], "observe");
  assert_string_equal(l.texts[1], "Wets hands and applies soap");
  assert_string_equal(l.kinds[2], "observe");
  assert_string_equal(l.texts[2], "Rubs all surfaces for at least 20 seconds");
  assert_string_equal(l.kinds[3], "observe");
  assert_string_equal(l.texts[3], "Dries with a single-use towel");
  assert_string_equal(l.options[3], ""); /* observe tasks carry no options */

  assert_int_equal(store_module_by_id(s, id_of(s, STORE_MODULE, "Welcome video"), &m), 0);
  assert_string_equal(m.type, "content");
  assert_int_equal(m.otj, 0);
  assert_int_equal(m.task_count, 0);
  memset(&l, 0, sizeof l);
  assert_int_equal(store_module_tasks(s, m.id, log_task, &l), 0);
  assert_int_equal(l.n, 0);

  assert_int_equal(store_module_by_id(s, id_of(s, STORE_MODULE, "Lock-out/tag-out"), &m), 0);
  assert_string_equal(m.type, "quiz");
  assert_int_equal(m.otj, 1);
  memset(&l, 0, sizeof l);
  assert_int_equal(store_module_tasks(s, m.id, log_task, &l), 0);
  assert_int_equal(l.n, 3);
  for (int i = 0; i < 3; i++) assert_string_equal(l.kinds[i], "observe");

  assert_int_equal(store_module_by_id(s, id_of(s, STORE_MODULE, "Food safety basics"), &m), 0);
  assert_string_equal(m.type, "quiz");
  assert_int_equal(m.otj, 0);
  assert_int_equal(m.task_count, 3);
  memset(&l, 0, sizeof l);
  assert_int_equal(store_module_tasks(s, m.id, log_task, &l), 0);
  for (int i = 0; i < 3; i++) {
    assert_string_equal(l.kinds[i], "question");
    assert_true(strlen(l.options[i]) > 2 && strlen(l.correct[i]) > 0);
  }

  assert_int_equal(store_module_by_id(s, id_of(s, STORE_MODULE, "Allergen handling"), &m), 0);
  assert_string_equal(m.type, "quiz");
  assert_int_equal(m.otj, 0);
  assert_int_equal(m.task_count, 2);

  /* a callback can stop the walk; its value comes back */
  memset(&l, 0, sizeof l);
  l.n = 8;
  assert_int_equal(store_module_tasks(s, id_of(s, STORE_MODULE, "Hand hygiene"), log_task, &l), 1);
  assert_int_equal(store_module_by_id(s, 999999, &m), STORE_NOTFOUND);
}

static void test_demo_progress(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t food = id_of(s, STORE_MODULE, "Food safety basics");
  int64_t hand = id_of(s, STORE_MODULE, "Hand hygiene");
  const char *done[] = {"lea", "leo", "lars"};
  for (size_t i = 0; i < 3; i++) {
    int64_t cid = 0;
    assert_int_equal(store_completion_exists(s, id_of(s, STORE_USER, done[i]), food, &cid), 1);
    assert_true(cid > 0);
    assert_int_equal(store_completion_exists(s, id_of(s, STORE_USER, done[i]), hand, NULL), 0);
  }
  const char *not_done[] = {"liv", "nina", "omar", "ola", "rita"};
  for (size_t i = 0; i < sizeof not_done / sizeof not_done[0]; i++)
    assert_int_equal(store_completion_exists(s, id_of(s, STORE_USER, not_done[i]), food, NULL), 0);

  sqlite3 *db = raw_open(f->path);
  /* completed alone (no approver, no room), inside the Kitchen starter path:
   * lea, leo, lars, and kai and kim (whose Hand hygiene rita approved) */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM completions c JOIN paths p ON"
                               " p.id = c.path_id WHERE p.title = 'Kitchen starter'"
                               " AND c.approved_by IS NULL AND c.room_id IS NULL"
                               " AND json_valid(c.answers)"),
                   5);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM completions c JOIN users a"
                               " ON a.id = c.approved_by AND a.login = 'rita'"),
                   2);
  sqlite3_close(db);
}

static void test_demo_twice_conflicts(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int audits = store_audit_count(s);
  assert_true(audits > 0);

  assert_int_equal(store_load_demo_at(s, DEMO_HASH, T0 + 1), STORE_CONFLICT);
  assert_non_null(strstr(store_errmsg(s), "empty database"));
  assert_int_equal(store_load_demo(s, DEMO_HASH), STORE_CONFLICT);
  assert_int_equal(store_user_count(s), 13);
  assert_int_equal(store_audit_count(s), audits);

  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM departments"), 7);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM modules"), 5);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM completions"), 7);
  sqlite3_close(db);
}

static void test_demo_refused_when_db_has_users(void **state) {
  fixture *f = *state;
  store *s = open_store(f);
  int64_t dept = 0;
  assert_int_equal(store_department_create(s, "Somewhere", 0, &dept), 0);
  assert_int_equal(store_user_create(s, T0, "kim", "Kim Lund", dept, DEMO_HASH, 0, NULL), 0);
  assert_int_equal(store_load_demo_at(s, DEMO_HASH, T0), STORE_CONFLICT);

  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM departments"), 1);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM modules"), 0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM audit"), 0);
  sqlite3_close(db);

  /* an empty hash is refused before anything is written */
  assert_int_equal(store_load_demo_at(s, "", T0), STORE_INVALID);
}

/* --- R1 reach ------------------------------------------------------------------ */

static void test_r1_within_reach(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t kitchen = id_of(s, STORE_DEPARTMENT, "Kitchen");
  int64_t cold = id_of(s, STORE_DEPARTMENT, "Cold kitchen");
  int64_t ward = id_of(s, STORE_DEPARTMENT, "Ward 3");
  int64_t olav = id_of(s, STORE_DEPARTMENT, "St. Olav Hospital");
  int64_t plant = id_of(s, STORE_DEPARTMENT, "Plant Bergen");
  int64_t line = id_of(s, STORE_DEPARTMENT, "Assembly line");
  int64_t root = id_of(s, STORE_DEPARTMENT, "Northwind Care");

  assert_int_equal(store_dept_within_reach(s, kitchen, kitchen), 1); /* own */
  assert_int_equal(store_dept_within_reach(s, kitchen, cold), 1);    /* below */
  assert_int_equal(store_dept_within_reach(s, olav, cold), 1);       /* two below */
  assert_int_equal(store_dept_within_reach(s, root, line), 1);
  assert_int_equal(store_dept_within_reach(s, plant, line), 1);

  assert_int_equal(store_dept_within_reach(s, kitchen, olav), 0);  /* parent */
  assert_int_equal(store_dept_within_reach(s, kitchen, ward), 0);  /* sibling branch */
  assert_int_equal(store_dept_within_reach(s, cold, kitchen), 0);  /* child looking up */
  assert_int_equal(store_dept_within_reach(s, plant, kitchen), 0); /* other branch */
  assert_int_equal(store_dept_within_reach(s, kitchen, 999), 0);   /* unknown */
  assert_int_equal(store_dept_within_reach(s, 999, kitchen), 0);
}

static void test_department_cycle_refused(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t root = id_of(s, STORE_DEPARTMENT, "Northwind Care");
  int64_t kitchen = id_of(s, STORE_DEPARTMENT, "Kitchen");
  int64_t cold = id_of(s, STORE_DEPARTMENT, "Cold kitchen");
  int64_t ward = id_of(s, STORE_DEPARTMENT, "Ward 3");

  assert_int_equal(store_department_move(s, root, cold), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(s), "cycle"));
  assert_int_equal(store_department_move(s, kitchen, kitchen), STORE_INVALID);
  assert_int_equal(store_department_move(s, kitchen, cold), STORE_INVALID);
  assert_parent(s, "Northwind Care", NULL);
  assert_parent(s, "Kitchen", "St. Olav Hospital");

  sqlite3 *db = raw_open(f->path);
  char sql[128];
  snprintf(sql, sizeof sql, "UPDATE departments SET parent_id = %lld WHERE id = %lld",
           (long long)cold, (long long)kitchen);
  assert_int_equal(raw_exec(db, sql), SQLITE_CONSTRAINT_TRIGGER);
  assert_int_equal(raw_exec(db, "INSERT INTO departments(id, name, parent_id)"
                                " VALUES (100, 'Loop', 100)"),
                   SQLITE_CONSTRAINT_TRIGGER);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM departments"), 7);
  sqlite3_close(db);

  /* positive: a legal move works and reach follows it */
  assert_int_equal(store_dept_within_reach(s, kitchen, cold), 1);
  assert_int_equal(store_department_move(s, cold, ward), 0);
  assert_parent(s, "Cold kitchen", "Ward 3");
  assert_int_equal(store_dept_within_reach(s, kitchen, cold), 0);
  assert_int_equal(store_dept_within_reach(s, ward, cold), 1);
  /* a department may become a root */
  assert_int_equal(store_department_move(s, cold, 0), 0);
  assert_parent(s, "Cold kitchen", NULL);
  assert_int_equal(store_department_move(s, 999, 0), STORE_NOTFOUND);
  assert_int_equal(store_department_create(s, "Orphan", 999, NULL), STORE_INVALID);
}

/* dept_ancestors (what R1 reads at every join) holds exactly the walk up
 * the parent links, after every create and move. */
static void assert_ancestors_follow_parents(fixture *f) {
  sqlite3 *db = raw_open(f->path);
  const char *differ =
      "WITH RECURSIVE up(dept, anc) AS (SELECT id, id FROM departments"
      "  UNION SELECT up.dept, d.parent_id FROM departments d JOIN up ON d.id = up.anc"
      "  WHERE d.parent_id IS NOT NULL)"
      "SELECT (SELECT count(*) FROM (SELECT dept, anc FROM up"
      "          EXCEPT SELECT dept_id, ancestor_id FROM dept_ancestors))"
      "     + (SELECT count(*) FROM (SELECT dept_id, ancestor_id FROM dept_ancestors"
      "          EXCEPT SELECT dept, anc FROM up))";
  assert_int_equal(raw_int(db, differ), 0);
  assert_true(raw_int(db, "SELECT count(*) FROM dept_ancestors") >
              raw_int(db, "SELECT count(*) FROM departments"));
  sqlite3_close(db);
}

static void test_reach_follows_department_moves(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t rita = id_of(s, STORE_USER, "rita");
  int64_t liv = id_of(s, STORE_USER, "liv"); /* in Cold kitchen, below rita's */
  int64_t plant = id_of(s, STORE_DEPARTMENT, "Plant Bergen");
  store_user u;
  assert_int_equal(store_user_by_id(s, liv, &u), 0);
  int64_t livs = u.department_id;
  assert_int_equal(store_user_by_id(s, rita, &u), 0);
  int64_t ritas = u.department_id;
  assert_ancestors_follow_parents(f);
  assert_int_equal(store_responsible_reaches(s, rita, liv), 1);

  /* a new department below liv's, and one below that: reached through both */
  int64_t sub = 0, subsub = 0;
  assert_int_equal(store_department_create(s, "Pastry", livs, &sub), 0);
  assert_int_equal(store_department_create(s, "Pastry, cold room", sub, &subsub), 0);
  assert_ancestors_follow_parents(f);
  assert_int_equal(store_dept_within_reach(s, ritas, subsub), 1);

  /* negative: liv's department (with its new subtree) moves to another
   * branch: rita no longer reaches her, at once */
  int64_t was_parent = 0;
  {
    sqlite3 *db = raw_open(f->path);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT parent_id FROM departments WHERE id = %lld", (long long)livs);
    was_parent = raw_int(db, sql);
    sqlite3_close(db);
  }
  assert_int_equal(store_department_move(s, livs, plant), 0);
  assert_ancestors_follow_parents(f);
  assert_int_equal(store_responsible_reaches(s, rita, liv), 0);

  /* a root of its own, then back where it was: reached again */
  assert_int_equal(store_department_move(s, livs, 0), 0);
  assert_ancestors_follow_parents(f);
  assert_int_equal(store_responsible_reaches(s, rita, liv), 0);
  assert_int_equal(store_department_move(s, livs, was_parent), 0);
  assert_ancestors_follow_parents(f);
  assert_int_equal(store_responsible_reaches(s, rita, liv), 1);

  /* a department's id cannot change under the table */
  sqlite3 *db = raw_open(f->path);
  char sql[96];
  snprintf(sql, sizeof sql, "UPDATE departments SET id = 1000 WHERE id = %lld", (long long)sub);
  assert_int_equal(raw_exec(db, sql), SQLITE_CONSTRAINT_TRIGGER);
  sqlite3_close(db);
  assert_ancestors_follow_parents(f);
}

/* --- R2 permissions ---------------------------------------------------------- */

static void test_r2_permissions(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t lea = id_of(s, STORE_USER, "lea");
  int64_t admin = id_of(s, STORE_USER, "admin");
  int audits = store_audit_count(s);
  store_user u;

  /* Facilitate OTJ without Management is refused, nothing changes */
  assert_int_equal(store_set_permission(s, T0 + 5, admin, lea, 0, 1), STORE_INVALID);
  assert_int_equal(store_user_by_id(s, lea, &u), 0);
  assert_false(u.management || u.facilitate_otj);
  assert_int_equal(store_audit_count(s), audits);

  /* Management alone: not responsible */
  assert_int_equal(store_set_permission(s, T0 + 6, admin, lea, 1, 0), 0);
  assert_int_equal(store_user_by_id(s, lea, &u), 0);
  assert_true(u.management);
  assert_false(store_user_is_responsible(&u));

  /* both: responsible, and each change is audited (R11) */
  assert_int_equal(store_set_permission(s, T0 + 7, admin, lea, 1, 1), 0);
  assert_int_equal(store_user_by_id(s, lea, &u), 0);
  assert_true(store_user_is_responsible(&u));
  assert_int_equal(store_audit_count(s), audits + 2);

  /* revoked */
  assert_int_equal(store_set_permission(s, T0 + 8, admin, lea, 0, 0), 0);
  assert_int_equal(store_user_by_id(s, lea, &u), 0);
  assert_false(store_user_is_responsible(&u));

  assert_int_equal(store_set_permission(s, T0, admin, 999999, 1, 1), STORE_NOTFOUND);
  assert_int_equal(store_audit_count(s), audits + 3);
  assert_false(store_user_is_responsible(NULL));

  sqlite3 *db = raw_open(f->path);
  char sql[160];
  assert_int_equal(raw_int(db, "SELECT count(*) FROM audit WHERE action = 'permission.set'"
                               " AND at = 1700000007 AND actor_id IS NOT NULL"
                               " AND json_extract(detail, '$.facilitate_otj') = 1"),
                   1);
  /* the CHECK holds for raw writes too */
  snprintf(sql, sizeof sql, "UPDATE permissions SET management = 0 WHERE user_id = %lld",
           (long long)id_of(s, STORE_USER, "rita"));
  assert_int_equal(raw_exec(db, sql), SQLITE_CONSTRAINT_CHECK);
  snprintf(sql, sizeof sql,
           "UPDATE permissions SET management = 0, facilitate_otj = 0 WHERE user_id = %lld",
           (long long)id_of(s, STORE_USER, "rita"));
  assert_int_equal(raw_exec(db, sql), SQLITE_OK);
  sqlite3_close(db);
}

/* --- R3 OTJ on quiz modules only ---------------------------------------------- */

static void test_r3_database_enforces(void **state) {
  fixture *f = *state;
  open_demo(f);
  sqlite3 *db = raw_open(f->path);

  assert_int_equal(raw_exec(db, "UPDATE modules SET otj = 1 WHERE title = 'Welcome video'"),
                   SQLITE_CONSTRAINT_CHECK);
  assert_int_equal(raw_exec(db, "UPDATE modules SET type = 'content' WHERE title = 'Hand hygiene'"),
                   SQLITE_CONSTRAINT_CHECK);
  assert_int_equal(raw_exec(db, "INSERT INTO modules(title, type, otj, created_at, updated_at)"
                                " VALUES ('Clip', 'video', 1, 0, 0)"),
                   SQLITE_CONSTRAINT_CHECK);
  assert_int_equal(raw_int(db, "SELECT otj FROM modules WHERE title = 'Welcome video'"), 0);
  char type[16];
  raw_text(db, "SELECT type FROM modules WHERE title = 'Hand hygiene'", type, sizeof type);
  assert_string_equal(type, "quiz");

  /* positive: OTJ on a quiz, type changes while OTJ is off */
  assert_int_equal(raw_exec(db, "UPDATE modules SET otj = 1 WHERE title = 'Allergen handling'"),
                   SQLITE_OK);
  assert_int_equal(raw_exec(db, "UPDATE modules SET type = 'video' WHERE title = 'Welcome video'"),
                   SQLITE_OK);
  assert_int_equal(raw_exec(db, "UPDATE modules SET otj = 0 WHERE title = 'Hand hygiene'"),
                   SQLITE_OK);
  assert_int_equal(raw_exec(db, "UPDATE modules SET type = 'content' WHERE title = 'Hand hygiene'"),
                   SQLITE_OK);
  /* unknown type */
  assert_int_equal(raw_exec(db, "UPDATE modules SET type = 'game' WHERE title = 'Welcome video'"),
                   SQLITE_CONSTRAINT_CHECK);
  sqlite3_close(db);
}

static void test_r3_api(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t admin = id_of(s, STORE_USER, "admin");
  int64_t video = id_of(s, STORE_MODULE, "Welcome video");
  int64_t hand = id_of(s, STORE_MODULE, "Hand hygiene");
  int64_t allergen = id_of(s, STORE_MODULE, "Allergen handling");
  int audits = store_audit_count(s);
  store_module m;

  assert_int_equal(store_module_set_otj(s, T0, admin, video, 1), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(s), "quiz"));
  assert_int_equal(store_module_by_id(s, video, &m), 0);
  assert_int_equal(m.otj, 0);
  assert_int_equal(store_audit_count(s), audits); /* a refusal writes nothing */

  assert_int_equal(store_module_set_type(s, T0, hand, "content"), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(s), "quiz"));
  assert_int_equal(store_module_by_id(s, hand, &m), 0);
  assert_string_equal(m.type, "quiz");

  assert_int_equal(store_module_set_otj(s, T0 + 1, admin, allergen, 1), 0);
  assert_int_equal(store_module_by_id(s, allergen, &m), 0);
  assert_int_equal(m.otj, 1);
  assert_int_equal(m.updated_at, T0 + 1);
  assert_int_equal(store_audit_count(s), audits + 1);

  assert_int_equal(store_module_set_otj(s, T0 + 2, admin, hand, 0), 0);
  assert_int_equal(store_module_set_type(s, T0 + 3, hand, "document"), 0);
  assert_int_equal(store_module_by_id(s, hand, &m), 0);
  assert_string_equal(m.type, "document");
  assert_int_equal(m.otj, 0);

  assert_int_equal(store_module_set_otj(s, T0, admin, 999999, 1), STORE_NOTFOUND);
  assert_int_equal(store_module_set_type(s, T0, 999999, "quiz"), STORE_NOTFOUND);
  int64_t mid = 0;
  assert_int_equal(store_module_create(s, T0, "Fire drill", "game", &mid), STORE_INVALID);
  assert_int_equal(store_module_create(s, T0, "Fire drill", "quiz", &mid), 0);
  assert_int_equal(store_module_set_otj(s, T0, admin, mid, 1), 0);
}

/* --- R10 one completion per learner and module -------------------------------- */

static void test_r10_one_completion(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  sqlite3 *db = raw_open(f->path);
  char sql[256];
  int64_t food = id_of(s, STORE_MODULE, "Food safety basics");
  snprintf(sql, sizeof sql,
           "INSERT INTO completions(user_id, module_id, completed_at) VALUES (%lld, %lld, 1)",
           (long long)id_of(s, STORE_USER, "lea"), (long long)food);
  assert_int_equal(raw_exec(db, sql), SQLITE_CONSTRAINT_UNIQUE);
  snprintf(sql, sizeof sql,
           "INSERT INTO completions(user_id, module_id, completed_at) VALUES (%lld, %lld, 1)",
           (long long)id_of(s, STORE_USER, "liv"), (long long)food);
  assert_int_equal(raw_exec(db, sql), SQLITE_OK);
  assert_int_equal(store_completion_exists(s, id_of(s, STORE_USER, "liv"), food, NULL), 1);
  /* answers must be JSON */
  snprintf(sql, sizeof sql,
           "INSERT INTO completions(user_id, module_id, completed_at, answers)"
           " VALUES (%lld, %lld, 1, 'not json')",
           (long long)id_of(s, STORE_USER, "nina"), (long long)food);
  assert_int_equal(raw_exec(db, sql), SQLITE_CONSTRAINT_CHECK);
  sqlite3_close(db);
}

/* --- R4 sharings name exactly one target -------------------------------------- */

static void test_sharing_target_check(void **state) {
  fixture *f = *state;
  open_demo(f);
  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_exec(db, "INSERT INTO sharings(path_id, user_id, department_id, created_at)"
                                " VALUES (1, NULL, NULL, 0)"),
                   SQLITE_CONSTRAINT_CHECK);
  assert_int_equal(raw_exec(db, "INSERT INTO sharings(path_id, user_id, department_id, created_at)"
                                " VALUES (1, 1, 1, 0)"),
                   SQLITE_CONSTRAINT_CHECK);
  assert_int_equal(raw_exec(db, "INSERT INTO sharings(path_id, user_id, department_id, created_at)"
                                " SELECT 1, id, NULL, 0 FROM users WHERE login = 'nina'"),
                   SQLITE_OK);
  /* the same department sharing twice is a conflict */
  assert_int_equal(raw_exec(db, "INSERT INTO sharings(path_id, department_id, created_at)"
                                " SELECT p.id, s.department_id, 0 FROM sharings s"
                                " JOIN paths p ON p.id = s.path_id LIMIT 1"),
                   SQLITE_CONSTRAINT_UNIQUE);
  sqlite3_close(db);
}

/* --- R11 audit ------------------------------------------------------------------ */

static void test_r11_audit_append_only(void **state) {
  fixture *f = *state;
  store *s = open_store(f);
  assert_int_equal(store_audit_count(s), 0);
  assert_int_equal(store_audit_append(s, T0, 0, "otj.approve", "user:7", "{\"module\":3}"), 0);
  assert_int_equal(store_audit_append(s, T0 + 1, 5, "otj.refuse", NULL, NULL), 0);
  assert_int_equal(store_audit_count(s), 2);
  /* bad entries are refused */
  assert_int_equal(store_audit_append(s, T0, 0, "x", NULL, "{not json"), STORE_INVALID);
  assert_int_equal(store_audit_append(s, T0, 0, "", NULL, NULL), STORE_INVALID);
  assert_int_equal(store_audit_append(s, T0, 0, NULL, NULL, NULL), STORE_INVALID);
  assert_int_equal(store_audit_count(s), 2);

  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM audit WHERE action = 'otj.approve'"
                               " AND actor_id IS NULL AND at = 1700000000"),
                   1);
  assert_int_equal(raw_exec(db, "UPDATE audit SET action = 'nothing'"), SQLITE_CONSTRAINT_TRIGGER);
  assert_int_equal(raw_exec(db, "DELETE FROM audit"), SQLITE_CONSTRAINT_TRIGGER);
  assert_int_equal(raw_exec(db, "DELETE FROM audit WHERE id = 1"), SQLITE_CONSTRAINT_TRIGGER);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM audit"), 2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM audit WHERE action = 'otj.approve'"), 1);
  /* a handle without otj_audit_hash() (the sqlite3 tool) cannot append an
   * entry the chain would not cover */
  assert_int_not_equal(raw_exec(db, "INSERT INTO audit(at, action) VALUES (1, 'raw')"), SQLITE_OK);
  sqlite3_close(db);
  /* appending stays possible after a refused edit */
  assert_int_equal(store_audit_append(s, T0 + 2, 0, "otj.approve", NULL, NULL), 0);
  assert_int_equal(store_audit_count(s), 3);
}

/* --- Sessions --------------------------------------------------------------------- */

static void test_sessions(void **state) {
  fixture *f = *state;
  store *s = open_demo(f);
  int64_t rita = id_of(s, STORE_USER, "rita");
  unsigned char h[32], other[32];
  token(h, 1);
  token(other, 2);
  store_user su = {0};

  assert_int_equal(store_session_user(s, h, T0, &su), STORE_NOTFOUND);
  assert_int_equal(store_session_create(s, rita, h, T0, T0 + 3600), 0);
  assert_int_equal(store_session_user(s, h, T0, &su), 0);
  assert_int_equal(su.id, rita);
  assert_string_equal(su.login, "rita");
  su.id = 0;
  assert_int_equal(store_session_user(s, h, T0 + 3599, &su), 0);
  assert_int_equal(su.id, rita);
  assert_int_equal(store_session_user(s, h, T0 + 3600, &su), STORE_NOTFOUND); /* expired */
  assert_int_equal(store_session_user(s, h, T0 + 99999, &su), STORE_NOTFOUND);
  assert_int_equal(store_session_user(s, other, T0, &su), STORE_NOTFOUND);

  assert_int_equal(store_session_create(s, rita, h, T0, T0 + 10), STORE_CONFLICT);
  assert_int_equal(store_session_create(s, 999999, other, T0, T0 + 10), STORE_INVALID);

  assert_int_equal(store_session_delete(s, h), 0);
  assert_int_equal(store_session_user(s, h, T0, &su), STORE_NOTFOUND);
  assert_int_equal(store_session_delete(s, h), STORE_NOTFOUND);

  /* purge removes only expired sessions */
  assert_int_equal(store_session_create(s, rita, h, T0, T0 + 10), 0);
  assert_int_equal(store_session_create(s, rita, other, T0, T0 + 100), 0);
  assert_int_equal(store_session_purge(s, T0 + 50), 1);
  assert_int_equal(store_session_user(s, other, T0 + 50, &su), 0);
  assert_int_equal(store_session_user(s, h, T0 + 5, &su), STORE_NOTFOUND);
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(store_strerror(STORE_NOTFOUND), "not found");
  assert_string_equal(store_strerror(STORE_BUSY), "database busy, try later");
  assert_string_equal(store_strerror(12345), "unknown storage result");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_migrations_fresh_db, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_reopen_applies_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_future_version_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_failure_says_why, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_handles_share_one_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy_handle_fails_fast, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_counts_and_tree, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_people, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_modules_and_tasks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_twice_conflicts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_refused_when_db_has_users, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r1_within_reach, setup, teardown),
      cmocka_unit_test_setup_teardown(test_department_cycle_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reach_follows_department_moves, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r2_permissions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r3_database_enforces, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r3_api, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r10_one_completion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sharing_target_check, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r11_audit_append_only, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
