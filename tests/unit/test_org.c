/* test_org.c — unit tests of storage/org.c: the rules that span rows.
 *
 * Every test opens a fresh database in its own mkdtemp folder with the demo
 * organisation of DESIGN §10 loaded at T0, and checks one rule both ways: the
 * case the rule allows works, the case it forbids is refused (or not listed)
 * and leaves the data as it was. R1 reach, R2 responsible, R3 OTJ on quizzes
 * through the admin update, R4 sharing (sub-departments, people who join
 * later), R5 next module and self-completion, R6 pending, R11 audit, and the
 * organisation import (all or nothing, the first error named by its place).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

static int setup(void **state) {
  /* approvals expire by the store's clock: make it read T0, the demo's time */
  store_clock_configure(T0 - (int64_t)time(NULL), 30 * 86400);
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/otj-test-org-XXXXXX");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof f->path, "%s/otj.db", f->dir);
  char err[256] = "";
  if (store_open(f->path, &f->s, err, sizeof err) != 0 ||
      store_load_demo_at(f->s, DEMO_HASH, T0) != 0) {
    fprintf(stderr, "setup: %s %s\n", err, f->s ? store_errmsg(f->s) : "");
    store_close(f->s);
    free(f);
    return -1;
  }
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

static int64_t id_of(store *s, store_entity kind, const char *key) {
  int64_t id = 0;
  if (store_find_id(s, kind, key, &id) != 0) fail_msg("no %s", key);
  return id;
}

#define USER(name)    id_of(f->s, STORE_USER, name)
#define MODULE(title) id_of(f->s, STORE_MODULE, title)
#define DEPT(name)    id_of(f->s, STORE_DEPARTMENT, name)
#define PATH(title)   id_of(f->s, STORE_PATH, title)

/* --- Collectors ------------------------------------------------------------ */

#define MAX_ROWS 32

typedef struct steps {
  int n;
  char path[MAX_ROWS][64];
  char module[MAX_ROWS][64];
  int state[MAX_ROWS];
} steps;

static int collect_step(const store_path_step *st, void *ud) {
  steps *c = ud;
  if (c->n >= MAX_ROWS) return 1;
  snprintf(c->path[c->n], sizeof c->path[0], "%s", st->path_title);
  snprintf(c->module[c->n], sizeof c->module[0], "%s", st->module_title);
  c->state[c->n] = st->state;
  c->n++;
  return 0;
}

static steps paths_of(store *s, int64_t learner) {
  steps c;
  memset(&c, 0, sizeof c);
  assert_int_equal(store_learner_paths(s, learner, collect_step, &c), 0);
  return c;
}

/* The state of module `title` in the learner's paths, or 0 when not shared. */
static int state_of(store *s, int64_t learner, const char *title) {
  steps c = paths_of(s, learner);
  for (int i = 0; i < c.n; i++)
    if (!strcmp(c.module[i], title)) return c.state[i];
  return 0;
}

typedef struct pendings {
  int n;
  char login[MAX_ROWS][64];
  char module[MAX_ROWS][64];
  int64_t since[MAX_ROWS];
} pendings;

static int collect_pending(const store_pending *p, void *ud) {
  pendings *c = ud;
  if (c->n >= MAX_ROWS) return 1;
  snprintf(c->login[c->n], sizeof c->login[0], "%s", p->learner_login);
  snprintf(c->module[c->n], sizeof c->module[0], "%s", p->module_title);
  c->since[c->n] = p->waiting_since;
  c->n++;
  return 0;
}

static pendings pending_of(store *s, int64_t responsible) {
  pendings c;
  memset(&c, 0, sizeof c);
  assert_int_equal(store_pending_list(s, responsible, collect_pending, &c), 0);
  assert_int_equal(store_pending_count(s, responsible), c.n);
  return c;
}

static int has_login(const pendings *c, const char *login) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->login[i], login)) return 1;
  return 0;
}

static int collect_person(const store_person *p, void *ud) {
  char *out = ud;
  size_t used = strlen(out);
  snprintf(out + used, 256 - used, "%s%s", used ? "," : "", p->login);
  return 0;
}

/* --- R1 reach ------------------------------------------------------------- */

static void test_r1_reach_follows_the_tree(void **state) {
  fixture *f = *state;
  /* positive: own department and below (Kitchen > Cold kitchen) */
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("lea")), 1);
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("liv")), 1);
  assert_int_equal(store_responsible_reaches(f->s, USER("sam"), USER("omar")), 1);
  /* negative: a sibling branch, another branch, above */
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("nina")), 0);
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("omar")), 0);
  assert_int_equal(store_responsible_reaches(f->s, USER("sam"), USER("lea")), 0);
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("admin")), 0);
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), 999999), 0);

  /* moving Cold kitchen under Ward 3 takes liv out of rita's reach */
  assert_int_equal(store_department_move(f->s, DEPT("Cold kitchen"), DEPT("Ward 3")), 0);
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("liv")), 0);
  pendings p = pending_of(f->s, USER("rita"));
  assert_false(has_login(&p, "lars"));
  assert_int_equal(p.n, 2);
}

/* --- R2 responsible -------------------------------------------------------- */

static void test_r2_only_responsibles(void **state) {
  fixture *f = *state;
  int64_t mark = USER("mark");
  /* negative: Management without Facilitate OTJ reaches nobody, sees nothing */
  assert_int_equal(store_responsible_reaches(f->s, mark, USER("lea")), 0);
  assert_int_equal(store_pending_count(f->s, mark), 0);
  assert_int_equal(store_pending_count(f->s, USER("lea")), 0);
  /* nobody reaches themselves */
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), USER("rita")), 0);

  char names[256] = "";
  assert_int_equal(store_responsibles_of(f->s, USER("lea"), collect_person, names), 0);
  assert_string_equal(names, "rita");

  /* positive: with the flag, mark becomes a responsible for the Kitchen */
  assert_int_equal(store_set_permission(f->s, T0 + 1, USER("admin"), mark, 1, 1), 0);
  assert_int_equal(store_responsible_reaches(f->s, mark, USER("lea")), 1);
  assert_int_equal(store_pending_count(f->s, mark), 3);
  names[0] = '\0';
  assert_int_equal(store_responsibles_of(f->s, USER("lars"), collect_person, names), 0);
  assert_string_equal(names, "mark,rita");
}

/* --- R3 OTJ only on quizzes, through the admin update ------------------------ */

static void test_r3_module_update(void **state) {
  fixture *f = *state;
  int64_t video = MODULE("Welcome video"), hand = MODULE("Hand hygiene");
  int64_t admin = USER("admin");
  int audits = store_audit_count(f->s);
  store_module m;

  /* negative: OTJ on a content module, quiz -> content with OTJ on */
  store_module_in on = {NULL, NULL, 1, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 1, admin, video, &on), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "quiz"));
  store_module_in to_content = {NULL, "content", -1, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 1, admin, hand, &to_content), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "must stay a quiz"));
  assert_int_equal(store_module_by_id(f->s, video, &m), 0);
  assert_int_equal(m.otj, 0);
  assert_int_equal(m.updated_at, T0);
  assert_int_equal(store_module_by_id(f->s, hand, &m), 0);
  assert_string_equal(m.type, "quiz");
  assert_int_equal(m.otj, 1);
  assert_int_equal(m.task_count, 4);
  assert_int_equal(store_audit_count(f->s), audits);
  store_module_in clip = {"Clip", "video", 1, NULL, 0, 0};
  int64_t id = 0;
  assert_int_equal(store_module_create_full(f->s, T0, admin, &clip, &id), STORE_INVALID);
  assert_int_equal(store_find_id(f->s, STORE_MODULE, "Clip", &id), STORE_NOTFOUND);

  /* positive: OTJ off and type change in one call; OTJ on for a quiz */
  store_module_in off = {NULL, "content", 0, NULL, 0, 0};
  assert_int_equal(store_module_update(f->s, T0 + 2, admin, hand, &off), 0);
  assert_int_equal(store_module_by_id(f->s, hand, &m), 0);
  assert_string_equal(m.type, "content");
  assert_int_equal(m.otj, 0);
  assert_int_equal(m.task_count, 0);
  store_module_in allergen_on = {NULL, NULL, 1, NULL, -1, 0};
  assert_int_equal(
      store_module_update(f->s, T0 + 3, admin, MODULE("Allergen handling"), &allergen_on), 0);
  /* two OTJ toggles, and the type change as module.updated */
  assert_int_equal(store_audit_count(f->s), audits + 3);
  store_task_in tasks[] = {{"question", "Ready?", "[\"yes\",\"no\"]", "0"},
                           {"observe", "Does it", NULL, NULL}};
  store_module_in drill = {"Fire drill", "quiz", 1, tasks, 2, 0};
  assert_int_equal(store_module_create_full(f->s, T0, admin, &drill, &id), 0);
  assert_int_equal(store_module_by_id(f->s, id, &m), 0);
  assert_int_equal(m.otj, 1);
  assert_int_equal(m.task_count, 2);
}

/* --- R4 sharing -------------------------------------------------------------- */

static void test_r4_sharing_reaches_subdepartments_and_newcomers(void **state) {
  fixture *f = *state;
  /* positive: shared with Kitchen reaches Kitchen and Cold kitchen */
  assert_int_equal(paths_of(f->s, USER("lea")).n, 3);
  steps liv = paths_of(f->s, USER("liv"));
  assert_int_equal(liv.n, 3);
  assert_string_equal(liv.path[0], "Kitchen starter");
  /* a person who joins Cold kitchen later gets it too */
  int64_t kim = 0;
  assert_int_equal(
      store_user_create(f->s, T0 + 50, "kim", "Kim Lund", DEPT("Cold kitchen"), DEMO_HASH, 0, &kim),
      0);
  assert_int_equal(state_of(f->s, kim, "Food safety basics"), STORE_STEP_AVAILABLE);

  /* negative: Ward 3 and the plant do not get the kitchen path */
  assert_int_equal(paths_of(f->s, USER("nina")).n, 0);
  assert_int_equal(state_of(f->s, USER("omar"), "Food safety basics"), 0);

  /* a user sharing reaches that one person only */
  int64_t sid = 0;
  assert_int_equal(
      store_sharing_create(f->s, T0 + 9, PATH("Kitchen starter"), USER("nina"), 0, &sid), 0);
  assert_int_equal(paths_of(f->s, USER("nina")).n, 3);
  assert_int_equal(
      store_sharing_create(f->s, T0 + 9, PATH("Kitchen starter"), USER("nina"), 0, NULL),
      STORE_CONFLICT);
  assert_int_equal(store_sharing_create(f->s, T0, PATH("Kitchen starter"), 0, 0, NULL),
                   STORE_INVALID);
  assert_int_equal(store_sharing_delete(f->s, sid), 0);
  assert_int_equal(paths_of(f->s, USER("nina")).n, 0);
}

/* --- R5 progress -------------------------------------------------------------------- */

static void test_r5_states_and_self_completion(void **state) {
  fixture *f = *state;
  int64_t lea = USER("lea"), liv = USER("liv");
  int64_t food = MODULE("Food safety basics"), hand = MODULE("Hand hygiene");
  int64_t allergen = MODULE("Allergen handling");

  assert_int_equal(state_of(f->s, lea, "Food safety basics"), STORE_STEP_COMPLETED);
  assert_int_equal(state_of(f->s, lea, "Hand hygiene"), STORE_STEP_OTJ_WAITING);
  assert_int_equal(state_of(f->s, lea, "Allergen handling"), STORE_STEP_LOCKED);
  assert_int_equal(state_of(f->s, liv, "Food safety basics"), STORE_STEP_AVAILABLE);
  assert_int_equal(state_of(f->s, liv, "Hand hygiene"), STORE_STEP_LOCKED);

  /* negative: an OTJ module, a module that is not next, one done already */
  int64_t cid = 0, pid = 0;
  assert_int_equal(store_complete_self(f->s, T0 + 5, lea, hand, NULL, &cid, &pid), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "On-the-Job"));
  assert_int_equal(store_complete_self(f->s, T0 + 5, liv, allergen, NULL, &cid, &pid),
                   STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "not your next module"));
  assert_int_equal(store_complete_self(f->s, T0 + 5, lea, food, NULL, &cid, &pid), STORE_CONFLICT);
  assert_int_equal(store_complete_self(f->s, T0 + 5, USER("nina"), food, NULL, &cid, &pid),
                   STORE_INVALID);
  assert_int_equal(store_completion_exists(f->s, lea, hand, NULL), 0);
  assert_int_equal(store_completion_exists(f->s, liv, allergen, NULL), 0);
  assert_int_equal(store_learner_next_in_path(f->s, liv, allergen, NULL), 0);

  /* positive: liv completes Food safety; Hand hygiene now waits for OTJ */
  assert_int_equal(store_learner_next_in_path(f->s, liv, food, &pid), 1);
  assert_int_equal(pid, PATH("Kitchen starter"));
  assert_int_equal(store_complete_self(f->s, T0 + 60, liv, food, "{\"0\":0}", &cid, &pid), 0);
  assert_true(cid > 0);
  assert_int_equal(pid, PATH("Kitchen starter"));
  assert_int_equal(store_completion_exists(f->s, liv, food, NULL), 1);
  assert_int_equal(state_of(f->s, liv, "Food safety basics"), STORE_STEP_COMPLETED);
  assert_int_equal(state_of(f->s, liv, "Hand hygiene"), STORE_STEP_OTJ_WAITING);
}

/* --- R6 pending ------------------------------------------------------------------------- */

static void test_r6_pending(void **state) {
  fixture *f = *state;
  int64_t rita = USER("rita"), sam = USER("sam");
  int64_t hand = MODULE("Hand hygiene"), lockout = MODULE("Lock-out/tag-out");

  pendings r = pending_of(f->s, rita);
  assert_int_equal(r.n, 3);
  assert_true(has_login(&r, "lea") && has_login(&r, "leo") && has_login(&r, "lars"));
  for (int i = 0; i < r.n; i++) {
    assert_string_equal(r.module[i], "Hand hygiene");
    assert_int_equal(r.since[i], T0); /* completed Food safety at T0 */
  }
  pendings sp = pending_of(f->s, sam);
  assert_int_equal(sp.n, 2);
  assert_true(has_login(&sp, "omar") && has_login(&sp, "ola"));
  assert_string_equal(sp.module[0], "Lock-out/tag-out");

  int64_t pid = 0, since = 0;
  assert_int_equal(store_learner_otj_pending(f->s, USER("lea"), hand, &pid, &since), 1);
  assert_int_equal(pid, PATH("Kitchen starter"));
  assert_int_equal(since, T0);
  assert_int_equal(store_learner_otj_pending(f->s, USER("omar"), lockout, &pid, &since), 1);
  assert_int_equal(pid, PATH("Line safety"));
  assert_int_equal(since, T0); /* first module: since the sharing */

  /* negative: not next, not OTJ, not shared */
  assert_int_equal(store_learner_otj_pending(f->s, USER("liv"), hand, &pid, &since), 0);
  assert_int_equal(
      store_learner_otj_pending(f->s, USER("liv"), MODULE("Food safety basics"), NULL, NULL), 0);
  assert_int_equal(store_learner_otj_pending(f->s, USER("nina"), hand, NULL, NULL), 0);
  assert_false(has_login(&r, "liv"));
  assert_false(has_login(&r, "mark"));

  /* liv completes Food safety: she joins the list, waiting since then */
  assert_int_equal(store_complete_self(f->s, T0 + 100, USER("liv"), MODULE("Food safety basics"),
                                       NULL, NULL, NULL),
                   0);
  r = pending_of(f->s, rita);
  assert_int_equal(r.n, 4);
  assert_string_equal(r.login[3], "liv"); /* longest waiting first */
  assert_int_equal(r.since[3], T0 + 100);

  /* an approval (a completion of the OTJ module) takes lea off the list */
  store_module_in off = {NULL, NULL, 0, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 101, USER("admin"), hand, &off), 0);
  assert_int_equal(store_complete_self(f->s, T0 + 102, USER("lea"), hand, NULL, NULL, NULL), 0);
  store_module_in on = {NULL, NULL, 1, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 103, USER("admin"), hand, &on), 0);
  r = pending_of(f->s, rita);
  assert_int_equal(r.n, 3);
  assert_false(has_login(&r, "lea"));
  assert_int_equal(state_of(f->s, USER("lea"), "Allergen handling"), STORE_STEP_AVAILABLE);
}

/* The join's R7 query (store_learner_otj_waiting) and the full walk of the
 * learner's paths (store_learner_otj_pending) agree for every person and
 * module; returns how many pairs are waiting. */
static int waiting_agree(store *s) {
  int waiting = 0;
  for (int64_t u = 1; u <= 40; u++)
    for (int64_t m = 1; m <= 12; m++) {
      int full = store_learner_otj_pending(s, u, m, NULL, NULL);
      int fast = store_learner_otj_waiting(s, u, m);
      if (full != fast)
        fail_msg("user %lld module %lld: pending %d, waiting %d", (long long)u, (long long)m, full,
                 fast);
      waiting += fast == 1;
    }
  return waiting;
}

static void test_r7_join_query_agrees(void **state) {
  fixture *f = *state;
  int64_t hand = MODULE("Hand hygiene"), food = MODULE("Food safety basics");
  /* the demo: lea, leo, lars wait for Hand hygiene, omar and ola for
   * Lock-out/tag-out */
  assert_int_equal(waiting_agree(f->s), 5);
  assert_int_equal(store_learner_otj_waiting(f->s, USER("lea"), hand), 1);
  assert_int_equal(store_learner_otj_waiting(f->s, USER("liv"), hand), 0);  /* not next */
  assert_int_equal(store_learner_otj_waiting(f->s, USER("lea"), food), 0);  /* not OTJ */
  assert_int_equal(store_learner_otj_waiting(f->s, USER("nina"), hand), 0); /* not shared */

  /* liv completes the module before: she waits too */
  assert_int_equal(store_complete_self(f->s, T0 + 100, USER("liv"), food, NULL, NULL, NULL), 0);
  assert_int_equal(waiting_agree(f->s), 6);
  assert_int_equal(store_learner_otj_waiting(f->s, USER("liv"), hand), 1);

  /* lea's Hand hygiene approved (made ordinary for a moment to complete it):
   * no longer waiting */
  store_module_in off = {NULL, NULL, 0, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 101, USER("admin"), hand, &off), 0);
  assert_int_equal(waiting_agree(f->s), 2); /* only Lock-out/tag-out's two */
  assert_int_equal(store_complete_self(f->s, T0 + 102, USER("lea"), hand, NULL, NULL, NULL), 0);
  store_module_in on = {.otj = 1, .task_count = -1, .validity_months = 1}; /* for a month */
  assert_int_equal(store_module_update(f->s, T0 + 103, USER("admin"), hand, &on), 0);
  assert_int_equal(store_learner_otj_waiting(f->s, USER("lea"), hand), 0);
  int before = waiting_agree(f->s); /* the demo's older approvals have expired by now */

  /* two months on, lea's approval has expired too: Hand hygiene waits again */
  store_clock_configure(T0 + 62 * 86400 - (int64_t)time(NULL), 30 * 86400);
  assert_int_equal(store_learner_otj_waiting(f->s, USER("lea"), hand), 1);
  assert_int_equal(waiting_agree(f->s), before + 1);
  store_clock_configure(T0 - (int64_t)time(NULL), 30 * 86400);
}

/* --- R11 audit ------------------------------------------------------------------------------ */

typedef struct audits {
  int n;
  int64_t id[MAX_ROWS];
  char action[MAX_ROWS][32];
} audits;

static int collect_audit(const store_audit_entry *e, void *ud) {
  audits *a = ud;
  if (a->n >= MAX_ROWS) return 1;
  a->id[a->n] = e->id;
  snprintf(a->action[a->n], sizeof a->action[0], "%s", e->action);
  a->n++;
  return 0;
}

static void test_r11_audit_listing(void **state) {
  fixture *f = *state;
  int64_t admin = USER("admin");
  audits a = {0};
  /* positive: a permission change and an admin change are listed newest first */
  assert_int_equal(store_set_permission(f->s, T0 + 1, admin, USER("lea"), 1, 0), 0);
  assert_int_equal(store_user_update(f->s, T0 + 2, admin, USER("leo"), NULL, 0, 1), 0);
  assert_int_equal(store_audit_list(f->s, 0, 2, collect_audit, &a), 0);
  assert_int_equal(a.n, 2);
  assert_string_equal(a.action[0], "user.admin");
  assert_string_equal(a.action[1], "permission.set");
  assert_true(a.id[0] > a.id[1]);
  /* paging goes on below the last id seen */
  audits b = {0};
  assert_int_equal(store_audit_list(f->s, a.id[1], 100, collect_audit, &b), 0);
  assert_true(b.n > 0);
  assert_true(b.id[0] < a.id[1]);

  /* negative: refusals and non-changes write nothing */
  int before = store_audit_count(f->s);
  store_module_in on = {NULL, NULL, 1, NULL, -1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 3, admin, MODULE("Welcome video"), &on),
                   STORE_INVALID);
  assert_int_equal(store_set_permission(f->s, T0 + 3, admin, USER("lea"), 0, 1), STORE_INVALID);
  assert_int_equal(store_user_update(f->s, T0 + 3, admin, USER("leo"), NULL, 0, 1), 0);
  assert_int_equal(store_audit_count(f->s), before);

  /* a rename is one "user.updated" entry; the same name again writes none */
  assert_int_equal(store_user_update(f->s, T0 + 4, admin, USER("leo"), "Leo N.", 0, 1), 0);
  audits c = {0};
  assert_int_equal(store_audit_list(f->s, 0, 1, collect_audit, &c), 0);
  assert_string_equal(c.action[0], "user.updated");
  assert_int_equal(store_audit_count(f->s), before + 1);
  assert_int_equal(store_user_update(f->s, T0 + 5, admin, USER("leo"), "Leo N.", 0, 1), 0);
  assert_int_equal(store_audit_count(f->s), before + 1);
}

/* --- Deactivation and the approver's rights at commit time ------------------------------- */

static void test_deactivated_user(void **state) {
  fixture *f = *state;
  int64_t admin = USER("admin"), rita = USER("rita"), lea = USER("lea");
  unsigned char tok[32] = {7};
  assert_int_equal(store_session_create(f->s, lea, tok, T0, T0 + 3600), 0);
  store_user su;
  assert_int_equal(store_session_user(f->s, tok, T0 + 1, &su), 0);
  assert_int_equal(su.id, lea);
  assert_int_equal(store_responsible_reaches(f->s, rita, lea), 1);
  int before = store_audit_count(f->s), changed = -1;

  assert_int_equal(store_user_set_active(f->s, T0 + 2, admin, lea, 0, &changed), 0);
  assert_int_equal(changed, 1);
  store_user u;
  assert_int_equal(store_user_by_id(f->s, lea, &u), 0);
  assert_int_equal(u.active, 0);
  /* no way in, nobody reaches her, the audit says so; her completion stays */
  assert_int_equal(store_session_user(f->s, tok, T0 + 3, &su), STORE_NOTFOUND);
  assert_int_equal(store_responsible_reaches(f->s, rita, lea), 0);
  assert_int_equal(store_audit_count(f->s), before + 1);
  assert_int_equal(store_completion_exists(f->s, lea, MODULE("Food safety basics"), NULL), 1);
  /* the same state again changes and audits nothing */
  assert_int_equal(store_user_set_active(f->s, T0 + 4, admin, lea, 0, &changed), 0);
  assert_int_equal(changed, 0);
  assert_int_equal(store_audit_count(f->s), before + 1);
  /* a deactivated responsible reaches nobody either */
  assert_int_equal(store_user_set_active(f->s, T0 + 5, admin, rita, 0, NULL), 0);
  assert_int_equal(store_responsible_reaches(f->s, rita, USER("leo")), 0);
  /* reactivated: reach is back */
  assert_int_equal(store_user_set_active(f->s, T0 + 6, admin, rita, 1, NULL), 0);
  assert_int_equal(store_user_set_active(f->s, T0 + 6, admin, lea, 1, NULL), 0);
  assert_int_equal(store_responsible_reaches(f->s, rita, lea), 1);
  assert_int_equal(store_user_set_active(f->s, T0 + 7, admin, 999999, 0, NULL), STORE_NOTFOUND);
}

static void test_approver_checked_at_commit(void **state) {
  fixture *f = *state;
  int64_t rita = USER("rita"), leo = USER("leo"), mark = USER("mark");
  int64_t hh = MODULE("Hand hygiene");
  store_approval a[2] = {
      {.learner = leo,
       .module = hh,
       .approver = mark,
       .now = T0 + 1,
       .outcome = STORE_APPROVED,
       .check_waiting = 1,
       .check_approver = 1},
      {.learner = leo,
       .module = hh,
       .approver = rita,
       .now = T0 + 2,
       .outcome = STORE_APPROVED,
       .check_waiting = 1,
       .check_approver = 1},
  };
  /* negative: mark has Management without Facilitate OTJ */
  assert_int_equal(store_approvals_commit(f->s, &a[0], 1), 0);
  assert_int_equal(a[0].rc, 0);
  assert_int_equal(a[0].forbidden, 1);
  assert_int_equal(a[0].outcome, STORE_REFUSED);
  assert_int_equal(store_completion_exists(f->s, leo, hh, NULL), 0);
  /* positive: rita may */
  assert_int_equal(store_approvals_commit(f->s, &a[1], 1), 0);
  assert_int_equal(a[1].rc, 0);
  assert_int_equal(a[1].forbidden, 0);
  assert_int_equal(a[1].outcome, STORE_APPROVED);
  assert_true(a[1].completion > 0);
  assert_int_equal(store_completion_exists(f->s, leo, hh, NULL), 1);
}

/* --- Import --------------------------------------------------------------------------------- */

static void test_import_second_org(void **state) {
  fixture *f = *state;
  store_import_department depts[] = {{"Harbour Ltd", NULL}, {"Kitchen", "Harbour Ltd"}};
  store_import_user users[] = {
      {"hanna", "Hanna Holm", "Kitchen", DEMO_HASH, 0, 1, 1},
      {"hugo", "Hugo Hagen", "Kitchen", DEMO_HASH, 0, 0, 0},
  };
  store_task_in tasks[] = {{"observe", "Ties the knot", NULL, NULL}};
  store_import_module mods[] = {{"Knots", "quiz", 1, tasks, 1, 0}};
  const char *path_mods[] = {"Knots"};
  store_import_path paths[] = {{"Deck basics", path_mods, 1}};
  const char *share_depts[] = {"Kitchen"};
  store_import_sharing shares[] = {{"Deck basics", NULL, 0, share_depts, 1}};
  store_import doc = {depts, 2, users, 2, mods, 1, paths, 1, shares, 1, NULL, 0};

  int users_before = store_user_count(f->s);
  assert_int_equal(store_import_org(f->s, T0 + 10, USER("admin"), &doc), 0);
  assert_int_equal(store_user_count(f->s), users_before + 2);
  /* "Kitchen" in the document means the document's own Kitchen */
  store_user hugo;
  assert_int_equal(store_user_by_login(f->s, "hugo", &hugo), 0);
  assert_int_not_equal(hugo.department_id, DEPT("Kitchen"));
  pendings p = pending_of(f->s, USER("hanna"));
  assert_int_equal(p.n, 1);
  assert_string_equal(p.login[0], "hugo");
  assert_int_equal(p.since[0], T0 + 10);
  /* the demo's responsibles do not reach the new organisation */
  assert_int_equal(store_responsible_reaches(f->s, USER("rita"), hugo.id), 0);
  assert_int_equal(store_pending_count(f->s, USER("rita")), 3);
}

static void test_import_all_or_nothing(void **state) {
  fixture *f = *state;
  store_import_department depts[] = {{"Harbour Ltd", NULL}, {"Galley", "Harbour Ltd"}};
  store_import_user users[] = {
      {"hanna", "Hanna Holm", "Galley", DEMO_HASH, 0, 1, 1},
      {"hugo", "Hugo Hagen", "Galley", DEMO_HASH, 0, 0, 0},
      {"hilde", "Hilde Hauge", "Galey", DEMO_HASH, 0, 0, 0},
  };
  store_import doc = {depts, 2, users, 3, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
  int users_before = store_user_count(f->s), audits_before = store_audit_count(f->s);
  int64_t id = 0;

  assert_int_equal(store_import_org(f->s, T0, USER("admin"), &doc), STORE_INVALID);
  assert_string_equal(store_errmsg(f->s), "users[2].department: no department named \"Galey\"");
  assert_int_equal(store_user_count(f->s), users_before);
  assert_int_equal(store_audit_count(f->s), audits_before);
  assert_int_equal(store_find_id(f->s, STORE_DEPARTMENT, "Harbour Ltd", &id), STORE_NOTFOUND);

  /* a login that exists already, an OTJ content module, a name listed twice */
  store_import_user taken[] = {{"lea", "Lea Two", "Kitchen", DEMO_HASH, 0, 0, 0}};
  store_import doc2 = {NULL, 0, taken, 1, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
  assert_int_equal(store_import_org(f->s, T0, 0, &doc2), STORE_CONFLICT);
  assert_non_null(strstr(store_errmsg(f->s), "users[0].login"));
  store_import_module otjvideo[] = {{"Clip", "video", 1, NULL, 0, 0}};
  store_import doc3 = {NULL, 0, NULL, 0, otjvideo, 1, NULL, 0, NULL, 0, NULL, 0};
  assert_int_equal(store_import_org(f->s, T0, 0, &doc3), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "modules[0]"));
  store_import_department twice[] = {{"A", NULL}, {"A", NULL}};
  store_import doc4 = {twice, 2, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
  assert_int_equal(store_import_org(f->s, T0, 0, &doc4), STORE_CONFLICT);
  assert_non_null(strstr(store_errmsg(f->s), "departments[1].name"));
  assert_int_equal(store_user_count(f->s), users_before);
  assert_int_equal(store_audit_count(f->s), audits_before);

  /* positive: the same document with the typo fixed goes in */
  users[2].department = "Galley";
  assert_int_equal(store_import_org(f->s, T0, USER("admin"), &doc), 0);
  assert_int_equal(store_user_count(f->s), users_before + 3);
}

/* --- Caps on a module's tasks (DESIGN §6) -------------------------------------------------------
 */

static void test_module_caps(void **state) {
  fixture *f = *state;
  int64_t hand = MODULE("Hand hygiene"), admin = USER("admin");
  static store_task_in many[STORE_MAX_TASKS + 1];
  for (int i = 0; i < STORE_MAX_TASKS + 1; i++)
    many[i] = (store_task_in){"observe", "Does it right", NULL, NULL};
  store_limit l;
  char msg[STORE_ERRMSG_MAX];

  /* the shared check: at the cap fits, one more names the limit */
  assert_int_equal(store_tasks_check(many, STORE_MAX_TASKS, &l), 0);
  assert_int_equal(store_tasks_check(many, STORE_MAX_TASKS + 1, &l), STORE_INVALID);
  assert_string_equal(l.limit, "tasks_per_module");
  assert_int_equal(l.max, 256);
  assert_int_equal(l.got, 257);
  store_limit_describe(&l, "tasks", msg, sizeof msg);
  assert_string_equal(msg, "tasks: a module has at most 256 tasks; this one has 257");

  char opts[33 * 8 + 3] = "[", text[STORE_MAX_TASK_TEXT + 2];
  for (int i = 0; i < 33; i++) strcat(opts, i ? ",\"opt\"" : "\"opt\"");
  strcat(opts, "]");
  store_task_in q[] = {{"observe", "Fine", NULL, NULL}, {"question", "Pick", opts, NULL}};
  assert_int_equal(store_tasks_check(q, 2, &l), STORE_INVALID);
  assert_string_equal(l.limit, "options_per_question");
  assert_int_equal(l.task, 1);
  store_limit_where(&l, "modules[0].tasks", msg, sizeof msg);
  assert_string_equal(msg, "modules[0].tasks[1].options");
  char longopt[STORE_MAX_OPTION_TEXT + 16];
  snprintf(longopt, sizeof longopt, "[\"a\",\"%0*d\"]", STORE_MAX_OPTION_TEXT + 1, 0);
  q[1].options_json = longopt;
  assert_int_equal(store_tasks_check(q, 2, &l), STORE_INVALID);
  assert_string_equal(l.limit, "option_text");
  assert_int_equal(l.option, 1);
  memset(text, 'w', sizeof text - 1);
  text[sizeof text - 1] = '\0';
  q[1] = (store_task_in){"observe", text, NULL, NULL};
  assert_int_equal(store_tasks_check(q, 2, &l), STORE_INVALID);
  assert_string_equal(l.limit, "task_text");
  text[STORE_MAX_TASK_TEXT] = '\0'; /* exactly at the cap */
  assert_int_equal(store_tasks_check(q, 2, &l), 0);

  /* every path into the store refuses, and changes nothing */
  store_module m;
  uint64_t before, after;
  assert_int_equal(store_module_tasks_digest(f->s, hand, &before), 0);
  store_module_in patch = {NULL, NULL, -1, many, STORE_MAX_TASKS + 1, 0};
  assert_int_equal(store_module_update(f->s, T0 + 1, admin, hand, &patch), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "at most 256 tasks"));
  assert_int_equal(store_module_by_id(f->s, hand, &m), 0);
  assert_int_equal(m.task_count, 4);
  assert_int_equal(store_module_tasks_digest(f->s, hand, &after), 0);
  assert_true(before == after);
  int64_t id = 0;
  store_module_in big = {"Big drill", "quiz", 1, many, STORE_MAX_TASKS + 1, 0};
  assert_int_equal(store_module_create_full(f->s, T0, admin, &big, &id), STORE_INVALID);
  assert_int_equal(store_find_id(f->s, STORE_MODULE, "Big drill", &id), STORE_NOTFOUND);
  store_import_module mods[] = {{"Big drill", "quiz", 1, many, STORE_MAX_TASKS + 1, 0}};
  store_import doc = {NULL, 0, NULL, 0, mods, 1, NULL, 0, NULL, 0, NULL, 0};
  assert_int_equal(store_import_org(f->s, T0, admin, &doc), STORE_INVALID);
  assert_non_null(strstr(store_errmsg(f->s), "modules[0]"));
  assert_int_equal(store_find_id(f->s, STORE_MODULE, "Big drill", &id), STORE_NOTFOUND);

  /* positive: 256 tasks go in */
  big.task_count = STORE_MAX_TASKS;
  assert_int_equal(store_module_create_full(f->s, T0, admin, &big, &id), 0);
  assert_int_equal(store_module_by_id(f->s, id, &m), 0);
  assert_int_equal(m.task_count, 256);
}

/* --- R9: an approval is judged on the tasks the room showed
 * ---------------------------------------- */

static void test_approval_refused_when_tasks_changed(void **state) {
  fixture *f = *state;
  int64_t hand = MODULE("Hand hygiene"), admin = USER("admin");
  uint64_t room_tasks, now;
  assert_int_equal(store_module_tasks_digest(f->s, hand, &room_tasks), 0);

  /* the same tasks written again: the digest stays; a text edited: it moves */
  store_task_in same[] = {{"question", "How long should you rub your hands with soap?",
                           "[\"5 seconds\",\"20 seconds\",\"60 seconds\"]", "1"},
                          {"observe", "Wets hands and applies soap", NULL, NULL},
                          {"observe", "Rubs all surfaces for at least 20 seconds", NULL, NULL},
                          {"observe", "Dries with a single-use towel", NULL, NULL}};
  store_module_in rewrite = {NULL, NULL, -1, same, 4, 0};
  assert_int_equal(store_module_update(f->s, T0 + 1, admin, hand, &rewrite), 0);
  assert_int_equal(store_module_tasks_digest(f->s, hand, &now), 0);
  assert_true(now == room_tasks);

  /* positive: leo, approved on the tasks the room showed */
  store_approval ok = {.learner = USER("leo"),
                       .module = hand,
                       .approver = USER("rita"),
                       .now = T0 + 2,
                       .outcome = STORE_APPROVED,
                       .check_waiting = 1,
                       .room = "r-same",
                       .check_tasks = 1,
                       .tasks_digest = room_tasks};
  assert_int_equal(store_approvals_commit(f->s, &ok, 1), 0);
  assert_int_equal(ok.rc, 0);
  assert_int_equal(ok.outcome, STORE_APPROVED);
  assert_int_equal(ok.tasks_changed, 0);
  assert_true(ok.completion > 0);

  /* the module edited while the room is open: same count, one text changed */
  same[3].text = "Dries with the kitchen towel";
  assert_int_equal(store_module_update(f->s, T0 + 3, admin, hand, &rewrite), 0);
  assert_int_equal(store_module_tasks_digest(f->s, hand, &now), 0);
  assert_true(now != room_tasks);
  store_approval late = {.learner = USER("lea"),
                         .module = hand,
                         .approver = USER("rita"),
                         .now = T0 + 4,
                         .outcome = STORE_APPROVED,
                         .check_waiting = 1,
                         .room = "r-old",
                         .check_tasks = 1,
                         .tasks_digest = room_tasks};
  assert_int_equal(store_approvals_commit(f->s, &late, 1), 0);
  assert_int_equal(late.rc, 0);
  assert_int_equal(late.outcome, STORE_REFUSED);
  assert_int_equal(late.tasks_changed, 1);
  assert_int_equal(late.completion, 0);
  assert_int_equal(store_completion_exists(f->s, USER("lea"), hand, NULL), 0);

  /* R10 still holds: leo approved again (a retry) keeps his completion */
  store_approval again = ok;
  again.now = T0 + 5;
  again.outcome = STORE_APPROVED;
  assert_int_equal(store_approvals_commit(f->s, &again, 1), 0);
  assert_int_equal(again.outcome, STORE_APPROVED);
  assert_int_equal(again.tasks_changed, 0);
  assert_true(again.completion == ok.completion);
  assert_int_equal(again.created, 0);
}

/* --- Completions listing scope -----------------------------------------------------------------
 */

static int count_row(const store_completion_row *c, void *ud) {
  (void)c;
  (*(int *)ud)++;
  return 0;
}

static void test_completions_scope(void **state) {
  fixture *f = *state;
  int all = 0, reach = 0, own = 0, none = 0;
  assert_int_equal(
      store_complete_self(f->s, T0 + 1, USER("omar"), MODULE("Lock-out/tag-out"), NULL, NULL, NULL),
      STORE_INVALID);
  assert_int_equal(store_completions_list(f->s, STORE_SCOPE_ALL, 0, count_row, &all), 0);
  assert_int_equal(all, 7); /* with kai and ida (Food safety, Hand hygiene) */
  assert_int_equal(store_completions_list(f->s, STORE_SCOPE_REACH, USER("rita"), count_row, &reach),
                   0);
  assert_int_equal(reach, 7);
  assert_int_equal(store_completions_list(f->s, STORE_SCOPE_OWN, USER("lea"), count_row, &own), 0);
  assert_int_equal(own, 1);
  assert_int_equal(store_completions_list(f->s, STORE_SCOPE_REACH, USER("sam"), count_row, &none),
                   0);
  assert_int_equal(none, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_r1_reach_follows_the_tree, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r2_only_responsibles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r3_module_update, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r4_sharing_reaches_subdepartments_and_newcomers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_r5_states_and_self_completion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r6_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r7_join_query_agrees, setup, teardown),
      cmocka_unit_test_setup_teardown(test_r11_audit_listing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_second_org, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_completions_scope, setup, teardown),
      cmocka_unit_test_setup_teardown(test_module_caps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approval_refused_when_tasks_changed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deactivated_user, setup, teardown),
      cmocka_unit_test_setup_teardown(test_approver_checked_at_commit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
