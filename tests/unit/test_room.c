/*
 * test_room — the room rules that need no network: which answers fit a
 * task (R8) and when a learner may be approved (R9), on the demo's Hand
 * hygiene module loaded from a real SQLite database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "room.h"
#include "store.h"

typedef struct fixture {
  char dir[64];
  store *db;
  room_module *hh; /* Hand hygiene: question, observe, observe, observe */
  room_module *fs; /* Food safety basics: questions only */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  strcpy(f->dir, "/tmp/otj-room-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  char path[128], err[256];
  snprintf(path, sizeof path, "%s/otj.db", f->dir);
  if (store_open(path, &f->db, err, sizeof err) != 0) return -1;
  if (store_load_demo(f->db, "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g") != 0)
    return -1;
  int64_t hh, fs;
  if (store_find_id(f->db, STORE_MODULE, "Hand hygiene", &hh) != 0 ||
      store_find_id(f->db, STORE_MODULE, "Food safety basics", &fs) != 0)
    return -1;
  if (room_module_load(f->db, hh, &f->hh) != 0 || room_module_load(f->db, fs, &f->fs) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  room_module_free(f->hh);
  room_module_free(f->fs);
  store_close(f->db);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  if (system(cmd) != 0) return -1;
  free(f);
  return 0;
}

static void module_loads_with_its_tasks(void **state) {
  fixture *f = *state;
  assert_string_equal(f->hh->title, "Hand hygiene");
  assert_true(f->hh->otj);
  assert_int_equal(f->hh->n_tasks, 4);
  assert_int_equal(f->hh->tasks[0].kind, PROTO_TASK_QUESTION);
  assert_int_equal(f->hh->tasks[0].n_options, 3);
  assert_string_equal(f->hh->tasks[0].options[1], "20 seconds");
  for (int i = 1; i < 4; i++) assert_int_equal(f->hh->tasks[i].kind, PROTO_TASK_OBSERVE);
  assert_string_equal(f->hh->tasks[3].text, "Dries with a single-use towel");
  /* the snapshot view matches */
  assert_int_equal(f->hh->infos[0].n_options, 3);
  assert_true(proto_str_eq(f->hh->infos[0].options[2], "60 seconds"));
  room_module *none;
  assert_int_equal(room_module_load(f->db, 99999, &none), STORE_NOTFOUND);
  assert_null(none);
}

static void answer_fits_question_tasks_only(void **state) {
  fixture *f = *state;
  char msg[160];
  proto_value one = {.kind = PROTO_VALUE_INT, .i = 1};
  assert_int_equal(room_check_answer(f->hh, 0, &one, msg, sizeof msg), PROTO_OK);
  /* R8: an observe task is marked by the responsible, never answered */
  assert_int_equal(room_check_answer(f->hh, 1, &one, msg, sizeof msg), PROTO_CONFLICT);
  assert_non_null(strstr(msg, "observed"));
  /* no such task */
  assert_int_equal(room_check_answer(f->hh, 4, &one, msg, sizeof msg), PROTO_BAD_REQUEST);
}

static void answer_must_be_an_option(void **state) {
  fixture *f = *state;
  char msg[160];
  proto_value v = {.kind = PROTO_VALUE_INT, .i = 3};
  assert_int_equal(room_check_answer(f->hh, 0, &v, msg, sizeof msg), PROTO_BAD_REQUEST);
  v.i = -1;
  assert_int_equal(room_check_answer(f->hh, 0, &v, msg, sizeof msg), PROTO_BAD_REQUEST);
  v.i = 2;
  assert_int_equal(room_check_answer(f->hh, 0, &v, msg, sizeof msg), PROTO_OK);
  int64_t items[2] = {0, 2};
  proto_value many = {.kind = PROTO_VALUE_INTS, .n_items = 2, .items = items};
  assert_int_equal(room_check_answer(f->hh, 0, &many, msg, sizeof msg), PROTO_OK);
  items[1] = 7;
  assert_int_equal(room_check_answer(f->hh, 0, &many, msg, sizeof msg), PROTO_BAD_REQUEST);
  proto_value text = {.kind = PROTO_VALUE_STR, .s = proto_s("twenty")};
  assert_int_equal(room_check_answer(f->hh, 0, &text, msg, sizeof msg), PROTO_BAD_REQUEST);
}

static void approval_needs_every_observe_task_passed(void **state) {
  fixture *f = *state;
  char reason[256];
  room_mark all_pass[4] = {ROOM_UNMARKED, ROOM_PASS, ROOM_PASS, ROOM_PASS};
  assert_int_equal(room_may_approve(f->hh, all_pass, reason, sizeof reason), 1);
  /* R9: one fail refuses, and the reason names the task */
  room_mark one_fail[4] = {ROOM_UNMARKED, ROOM_PASS, ROOM_FAIL, ROOM_PASS};
  assert_int_equal(room_may_approve(f->hh, one_fail, reason, sizeof reason), 0);
  assert_non_null(strstr(reason, "Rubs all surfaces"));
  assert_non_null(strstr(reason, "fail"));
  /* R9: not marked refuses too */
  room_mark unmarked[4] = {ROOM_PASS, ROOM_PASS, ROOM_PASS, ROOM_UNMARKED};
  assert_int_equal(room_may_approve(f->hh, unmarked, reason, sizeof reason), 0);
  assert_non_null(strstr(reason, "not marked"));
  /* a module of questions only needs no marks */
  room_mark none[3] = {ROOM_UNMARKED, ROOM_UNMARKED, ROOM_UNMARKED};
  assert_int_equal(room_may_approve(f->fs, none, reason, sizeof reason), 1);
}

/* Runs SQL on the fixture's database file through a second connection, the
 * way a module stored before the caps (or by hand) would be there. */
static void raw_sql(fixture *f, const char *sql) {
  char path[128];
  snprintf(path, sizeof path, "%s/otj.db", f->dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) fail_msg("%s", err ? err : "sqlite3_exec");
  sqlite3_close(db);
}

static void a_module_that_does_not_fit_is_refused_not_cut(void **state) {
  fixture *f = *state;
  /* 257 observe tasks, and a question of 33 options */
  raw_sql(f, "INSERT INTO modules(title, type, otj, created_at, updated_at)"
             " VALUES ('Legacy drill', 'quiz', 1, 0, 0), ('Wide quiz', 'quiz', 1, 0, 0);"
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 256)"
             " INSERT INTO tasks(module_id, position, kind, text)"
             " SELECT (SELECT id FROM modules WHERE title = 'Legacy drill'), i, 'observe',"
             " 'Step ' || i FROM n;"
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 32)"
             " INSERT INTO tasks(module_id, position, kind, text, options)"
             " SELECT (SELECT id FROM modules WHERE title = 'Wide quiz'), 0, 'question', 'Pick',"
             " json_group_array('option ' || i) FROM n;");
  int64_t legacy, wide;
  assert_int_equal(store_find_id(f->db, STORE_MODULE, "Legacy drill", &legacy), 0);
  assert_int_equal(store_find_id(f->db, STORE_MODULE, "Wide quiz", &wide), 0);
  room_module *m = (room_module *)1;
  assert_int_equal(room_module_load(f->db, legacy, &m), STORE_INVALID);
  assert_null(m);
  m = (room_module *)1;
  assert_int_equal(room_module_load(f->db, wide, &m), STORE_INVALID);
  assert_null(m);
  /* one task fewer fits, whole, with the store's digest of its tasks */
  raw_sql(f, "DELETE FROM tasks WHERE module_id = (SELECT id FROM modules"
             " WHERE title = 'Legacy drill') AND position = 256");
  assert_int_equal(room_module_load(f->db, legacy, &m), 0);
  assert_int_equal(m->n_tasks, ROOM_MAX_TASKS);
  assert_string_equal(m->tasks[255].text, "Step 255");
  uint64_t d;
  assert_int_equal(store_module_tasks_digest(f->db, legacy, &d), 0);
  assert_true(m->digest == d);
  room_module_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(module_loads_with_its_tasks),
      cmocka_unit_test(answer_fits_question_tasks_only),
      cmocka_unit_test(answer_must_be_an_option),
      cmocka_unit_test(approval_needs_every_observe_task_passed),
      cmocka_unit_test(a_module_that_does_not_fit_is_refused_not_cut),
  };
  return cmocka_run_group_tests_name("room", tests, setup, teardown);
}
