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

#include "room.h"
#include "store.h"

typedef struct fixture {
  char dir[64];
  store *db;
  room_module *hh;  /* Hand hygiene: question, observe, observe, observe */
  room_module *fs;  /* Food safety basics: questions only */
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(module_loads_with_its_tasks),
      cmocka_unit_test(answer_fits_question_tasks_only),
      cmocka_unit_test(answer_must_be_an_option),
      cmocka_unit_test(approval_needs_every_observe_task_passed),
  };
  return cmocka_run_group_tests_name("room", tests, setup, teardown);
}
