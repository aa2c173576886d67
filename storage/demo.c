/* demo.c — the demo organisation of DESIGN §10.
 *
 * A newcomer and every test see the same known world: a care group with a
 * hospital kitchen and a plant, responsibles and learners, two learning
 * paths and some progress, so the dashboard has OTJ items waiting from the
 * first minute. The organisation is plain data (tables below) loaded in one
 * transaction: either all of it is there or none of it. Rows refer to each
 * other by name, resolved to ids while loading.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store_int.h"

typedef struct demo_department {
  const char *name;
  const char *parent; /* NULL for the root */
} demo_department;

/* Parents come before their children. */
static const demo_department DEMO_DEPARTMENTS[] = {
    {"Northwind Care", NULL},          {"St. Olav Hospital", "Northwind Care"},
    {"Kitchen", "St. Olav Hospital"},  {"Cold kitchen", "Kitchen"},
    {"Ward 3", "St. Olav Hospital"},   {"Plant Bergen", "Northwind Care"},
    {"Assembly line", "Plant Bergen"},
};

typedef struct demo_user {
  const char *login;
  const char *name;
  const char *department;
  int is_admin;
  int management;
  int facilitate_otj;
} demo_user;

static const demo_user DEMO_USERS[] = {
    {"admin", "Ada Admin", "Northwind Care", 1, 0, 0},
    {"rita", "Rita Hansen", "Kitchen", 0, 1, 1},
    {"mark", "Mark Olsen", "Kitchen", 0, 1, 0},
    {"sam", "Sam Berg", "Plant Bergen", 0, 1, 1},
    {"lea", "Lea Johansen", "Kitchen", 0, 0, 0},
    {"leo", "Leo Nilsen", "Kitchen", 0, 0, 0},
    {"liv", "Liv Larsen", "Cold kitchen", 0, 0, 0},
    {"lars", "Lars Andersen", "Cold kitchen", 0, 0, 0},
    {"nina", "Nina Pedersen", "Ward 3", 0, 0, 0},
    {"omar", "Omar Haddad", "Assembly line", 0, 0, 0},
    {"ola", "Ola Nordmann", "Assembly line", 0, 0, 0},
    {"kai", "Kai Solberg", "Kitchen", 0, 0, 0},
    {"ida", "Ida Eriksen", "Kitchen", 0, 0, 0},
};

typedef struct demo_task {
  const char *kind;
  const char *text;
  const char *options; /* JSON array of strings, NULL for observe tasks */
  const char *correct; /* JSON: index of the right option */
} demo_task;

#define DEMO_MAX_TASKS 4

typedef struct demo_module {
  const char *title;
  const char *type;
  int otj;
  demo_task tasks[DEMO_MAX_TASKS]; /* ends at the first {NULL} */
  int validity_months;             /* 0: approvals never expire */
} demo_module;

static const demo_module DEMO_MODULES[] = {
    {"Food safety basics",
     "quiz",
     0,
     {{"question", "What is the highest safe temperature inside a fridge?",
       "[\"4 °C\",\"8 °C\",\"12 °C\"]", "0"},
      {"question", "Where in the fridge does raw meat go?",
       "[\"Top shelf\",\"Bottom shelf\",\"Next to ready-to-eat food\"]", "1"},
      {"question", "How long may cooked food stand at room temperature before it is chilled?",
       "[\"30 minutes\",\"2 hours\",\"6 hours\"]", "1"}},
     0},
    {"Hand hygiene",
     "quiz",
     1,
     {{"question", "How long should you rub your hands with soap?",
       "[\"5 seconds\",\"20 seconds\",\"60 seconds\"]", "1"},
      {"observe", "Wets hands and applies soap", NULL, NULL},
      {"observe", "Rubs all surfaces for at least 20 seconds", NULL, NULL},
      {"observe", "Dries with a single-use towel", NULL, NULL}},
     12},
    {"Allergen handling",
     "quiz",
     0,
     {{"question", "A guest tells you they are allergic to nuts. What do you do first?",
       "[\"Pick the nuts off the plate\",\"Check the recipe's allergen list and tell the "
       "chef\",\"Say the dish is probably fine\"]",
       "1"},
      {"question", "How many allergens must be declared on food in the EU and EEA?",
       "[\"8\",\"14\",\"20\"]", "1"}},
     0},
    {"Lock-out/tag-out",
     "quiz",
     1,
     {{"observe", "Stops the machine with its normal stop control", NULL, NULL},
      {"observe", "Isolates every energy source and fits a personal lock and tag", NULL, NULL},
      {"observe", "Tries to start the machine to prove it is without energy", NULL, NULL}},
     0},
    {"Welcome video", "content", 0, {{NULL, NULL, NULL, NULL}}, 0},
};

#define DEMO_MAX_PATH_MODULES 3

typedef struct demo_path {
  const char *title;
  const char *modules[DEMO_MAX_PATH_MODULES + 1]; /* in order, NULL-terminated */
  const char *shared_with_department;
} demo_path;

static const demo_path DEMO_PATHS[] = {
    {"Kitchen starter",
     {"Food safety basics", "Hand hygiene", "Allergen handling", NULL},
     "Kitchen"},
    {"Line safety", {"Lock-out/tag-out", NULL}, "Assembly line"},
};

typedef struct demo_completion {
  const char *login;
  const char *module;
  const char *path;
  const char *answers;     /* JSON object: task index -> answer */
  const char *approved_by; /* login, NULL: completed alone */
  const char *ago;         /* SQLite date modifiers back from now; NULL: now */
} demo_completion;

/* kai and ida were approved on Hand hygiene (valid 12 months) almost a year
 * ago: their approvals expire in 12 and 24 days, so rita's dashboard lists
 * them as due for a re-drill. */
static const demo_completion DEMO_COMPLETIONS[] = {
    {"lea", "Food safety basics", "Kitchen starter", "{\"0\":0,\"1\":1,\"2\":1}", NULL, NULL},
    {"leo", "Food safety basics", "Kitchen starter", "{\"0\":0,\"1\":1,\"2\":1}", NULL, NULL},
    {"lars", "Food safety basics", "Kitchen starter", "{\"0\":0,\"1\":1,\"2\":1}", NULL, NULL},
    {"kai", "Food safety basics", "Kitchen starter", "{\"0\":0,\"1\":1,\"2\":1}", NULL,
     "-13 months"},
    {"kai", "Hand hygiene", "Kitchen starter", "{\"0\":1}", "rita", "-12 months,+12 days"},
    {"ida", "Food safety basics", "Kitchen starter", "{\"0\":0,\"1\":1,\"2\":1}", NULL,
     "-13 months"},
    {"ida", "Hand hygiene", "Kitchen starter", "{\"0\":1}", "rita", "-12 months,+24 days"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Looks a name up and fails loudly: the tables above must be consistent. */
static int need_id(store *s, store_entity kind, const char *key, int64_t *id) {
  int code = store_find_id(s, kind, key, id);
  if (code == STORE_NOTFOUND)
    code = store_failf(s, STORE_ERR, "demo data refers to unknown \"%s\"", key);
  return code;
}

static int load_modules(store *s, int64_t now) {
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO tasks(module_id, position, kind, text, options,"
                                      " correct) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return STORE_ERR;

  int code = 0;
  for (size_t i = 0; i < COUNT(DEMO_MODULES) && code == 0; i++) {
    const demo_module *m = &DEMO_MODULES[i];
    int64_t module_id = 0;
    if ((code = store_module_create(s, now, m->title, m->type, &module_id)) < 0) break;
    for (int k = 0; k < DEMO_MAX_TASKS && m->tasks[k].kind && code == 0; k++) {
      const demo_task *t = &m->tasks[k];
      sqlite3_bind_int64(st, 1, module_id);
      sqlite3_bind_int(st, 2, k);
      sqlite3_bind_text(st, 3, t->kind, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, t->text, -1, SQLITE_STATIC);
      store_bind_text(st, 5, t->options);
      store_bind_text(st, 6, t->correct);
      code = store_step_done(s, st);
    }
    /* Switched on after the tasks exist, the way an admin would; the
     * audit entry records it (R11). */
    if (code == 0 && m->otj) code = store_module_set_otj_in_tx(s, now, 0, module_id, 1);
    if (code == 0 && m->validity_months)
      code = store_module_set_validity_in_tx(s, now, 0, module_id, m->validity_months);
  }
  sqlite3_finalize(st);
  return code;
}

static int load_paths(store *s, int64_t now) {
  sqlite3_stmt *path = NULL, *pm = NULL, *share = NULL;
  int code = 0;
  if (!(path = store_prepare(s, "INSERT INTO paths(title, created_at) VALUES (?1, ?2)")) ||
      !(pm = store_prepare(s, "INSERT INTO path_modules(path_id, position, module_id)"
                              " VALUES (?1, ?2, ?3)")) ||
      !(share = store_prepare(s, "INSERT INTO sharings(path_id, department_id, created_at)"
                                 " VALUES (?1, ?2, ?3)"))) {
    code = STORE_ERR;
    goto out;
  }

  for (size_t i = 0; i < COUNT(DEMO_PATHS) && code == 0; i++) {
    const demo_path *p = &DEMO_PATHS[i];
    sqlite3_bind_text(path, 1, p->title, -1, SQLITE_STATIC);
    sqlite3_bind_int64(path, 2, now);
    if ((code = store_step_done(s, path)) < 0) break;
    int64_t path_id = sqlite3_last_insert_rowid(s->db);

    for (int k = 0; k < DEMO_MAX_PATH_MODULES && p->modules[k] && code == 0; k++) {
      int64_t module_id = 0;
      if ((code = need_id(s, STORE_MODULE, p->modules[k], &module_id)) < 0) break;
      sqlite3_bind_int64(pm, 1, path_id);
      sqlite3_bind_int(pm, 2, k);
      sqlite3_bind_int64(pm, 3, module_id);
      code = store_step_done(s, pm);
    }
    if (code < 0) break;

    int64_t dept_id = 0;
    if ((code = need_id(s, STORE_DEPARTMENT, p->shared_with_department, &dept_id)) < 0) break;
    sqlite3_bind_int64(share, 1, path_id);
    sqlite3_bind_int64(share, 2, dept_id);
    sqlite3_bind_int64(share, 3, now);
    code = store_step_done(s, share);
  }

out:
  sqlite3_finalize(path);
  sqlite3_finalize(pm);
  sqlite3_finalize(share);
  return code;
}

static int load_completions(store *s, int64_t now) {
  /* ?6, ?7: the date modifiers of `ago` ("-12 months", "+12 days") */
  sqlite3_stmt *st = store_prepare(s, "INSERT INTO completions(user_id, module_id, path_id,"
                                      " approved_by, room_id, completed_at, answers, marks, note)"
                                      " VALUES (?1, ?2, ?3, NULLIF(?8, 0), NULL,"
                                      " unixepoch(?4, 'unixepoch', ?6, ?7), ?5, '{}', NULL)");
  if (!st) return STORE_ERR;

  int code = 0;
  for (size_t i = 0; i < COUNT(DEMO_COMPLETIONS) && code == 0; i++) {
    const demo_completion *c = &DEMO_COMPLETIONS[i];
    int64_t user_id = 0, module_id = 0, path_id = 0;
    if ((code = need_id(s, STORE_USER, c->login, &user_id)) < 0 ||
        (code = need_id(s, STORE_MODULE, c->module, &module_id)) < 0 ||
        (code = need_id(s, STORE_PATH, c->path, &path_id)) < 0)
      break;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, module_id);
    sqlite3_bind_int64(st, 3, path_id);
    int64_t approver = 0;
    if (c->approved_by && (code = need_id(s, STORE_USER, c->approved_by, &approver)) < 0) break;
    char ago[2][32] = {"+0 days", "+0 days"};
    if (c->ago) sscanf(c->ago, "%31[^,],%31[^,]", ago[0], ago[1]);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, c->answers, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, ago[0], -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, ago[1], -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, approver);
    code = store_step_done(s, st);
  }
  sqlite3_finalize(st);
  return code;
}

static int load_people(store *s, int64_t now, const char *password_hash) {
  int code = 0;
  for (size_t i = 0; i < COUNT(DEMO_DEPARTMENTS) && code == 0; i++) {
    int64_t parent = 0;
    if (DEMO_DEPARTMENTS[i].parent &&
        (code = need_id(s, STORE_DEPARTMENT, DEMO_DEPARTMENTS[i].parent, &parent)) < 0)
      break;
    code = store_department_create(s, DEMO_DEPARTMENTS[i].name, parent, NULL);
  }

  for (size_t i = 0; i < COUNT(DEMO_USERS) && code == 0; i++) {
    const demo_user *u = &DEMO_USERS[i];
    int64_t dept = 0, user_id = 0;
    if ((code = need_id(s, STORE_DEPARTMENT, u->department, &dept)) < 0) break;
    if ((code = store_user_create(s, now, u->login, u->name, dept, password_hash, u->is_admin,
                                  &user_id)) < 0)
      break;
    if (u->management)
      code = store_set_permission_in_tx(s, now, 0, user_id, u->management, u->facilitate_otj);
  }
  return code;
}

int store_load_demo_at(store *s, const char *password_hash, int64_t now) {
  if (!password_hash || !*password_hash)
    return store_failf(s, STORE_INVALID, "the demo organisation needs a password hash");

  int code = store_begin(s);
  if (code < 0) return code;

  /* Checked inside the write transaction, so two loaders cannot both pass. */
  int users = store_user_count(s);
  if (users < 0) {
    code = users;
    goto out;
  }
  if (users > 0) {
    code = store_failf(s, STORE_CONFLICT,
                       "the demo organisation loads only into an empty database; this one "
                       "has %d users",
                       users);
    goto out;
  }

  if ((code = load_people(s, now, password_hash)) == 0 && (code = load_modules(s, now)) == 0 &&
      (code = load_paths(s, now)) == 0 && (code = load_completions(s, now)) == 0)
    code =
        store_audit_append(s, now, 0, "demo.load", "organisation", "{\"name\":\"Northwind Care\"}");

out:
  return store_finish(s, code);
}

int store_load_demo(store *s, const char *password_hash) {
  return store_load_demo_at(s, password_hash, (int64_t)time(NULL));
}
