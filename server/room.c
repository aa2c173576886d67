/*
 * room — module tasks, answer fit and the approval rule (see room.h).
 */
#include "room.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void room_module_free(room_module *m) {
  if (!m) return;
  for (uint32_t i = 0; i < m->n_tasks; i++) {
    free(m->tasks[i].text);
    for (uint32_t k = 0; k < m->tasks[i].n_options; k++) free(m->tasks[i].options[k]);
    free(m->tasks[i].options);
  }
  free(m->tasks);
  free(m->infos);
  free(m->option_strs);
  free(m);
}

typedef struct load_ctx {
  room_module *m;
  uint32_t cap;
  int failed;    /* out of memory */
  int too_large; /* the module does not fit a room */
} load_ctx;

static int add_task(const store_task *t, void *ud) {
  load_ctx *c = ud;
  room_module *m = c->m;
  if (m->n_tasks >= ROOM_MAX_TASKS) {
    c->too_large = 1;
    return 1;
  }
  m->digest = store_tasks_digest_add(m->digest, t);
  if (m->n_tasks == c->cap) {
    uint32_t cap = c->cap ? c->cap * 2 : 8;
    room_task *n = realloc(m->tasks, cap * sizeof *n);
    if (!n) {
      c->failed = 1;
      return 1;
    }
    m->tasks = n;
    c->cap = cap;
  }
  room_task *rt = &m->tasks[m->n_tasks];
  memset(rt, 0, sizeof *rt);
  rt->kind = strcmp(t->kind, "observe") ? PROTO_TASK_QUESTION : PROTO_TASK_OBSERVE;
  rt->text = strdup(t->text ? t->text : "");
  if (!rt->text) {
    c->failed = 1;
    return 1;
  }
  m->n_tasks++;
  if (t->options_json) {
    json_t *arr = json_loads(t->options_json, 0, NULL);
    if (json_is_array(arr)) {
      size_t n = json_array_size(arr);
      if (n > ROOM_MAX_OPTIONS) {
        json_decref(arr);
        c->too_large = 1;
        return 1;
      }
      rt->options = calloc(n ? n : 1, sizeof *rt->options);
      if (!rt->options) c->failed = 1;
      for (size_t i = 0; rt->options && i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        rt->options[i] = strdup(s ? s : "");
        if (!rt->options[i]) {
          c->failed = 1;
          break;
        }
        rt->n_options++;
      }
    }
    json_decref(arr);
  }
  return c->failed;
}

int room_module_load(store *db, int64_t id, room_module **out) {
  *out = NULL;
  store_module sm;
  int rc = store_module_by_id(db, id, &sm);
  if (rc != 0) return rc;
  room_module *m = calloc(1, sizeof *m);
  if (!m) return STORE_ERR;
  m->id = sm.id;
  snprintf(m->title, sizeof m->title, "%s", sm.title);
  m->otj = sm.otj;
  m->learner_confirm = sm.learner_confirm;
  m->learner_evidence = sm.learner_evidence;
  m->digest = STORE_TASKS_DIGEST_INIT;
  load_ctx c = {.m = m};
  rc = store_module_tasks(db, id, add_task, &c);
  if (rc < 0 || c.failed || c.too_large) {
    room_module_free(m);
    return rc < 0 ? rc : c.too_large ? STORE_INVALID : STORE_ERR;
  }
  /* the encoder's view of the same tasks */
  size_t n_opts = 0;
  for (uint32_t i = 0; i < m->n_tasks; i++) n_opts += m->tasks[i].n_options;
  m->infos = calloc(m->n_tasks ? m->n_tasks : 1, sizeof *m->infos);
  m->option_strs = calloc(n_opts ? n_opts : 1, sizeof *m->option_strs);
  if (!m->infos || !m->option_strs) {
    room_module_free(m);
    return STORE_ERR;
  }
  size_t o = 0;
  for (uint32_t i = 0; i < m->n_tasks; i++) {
    room_task *t = &m->tasks[i];
    m->infos[i].kind = t->kind;
    m->infos[i].text = proto_s(t->text);
    m->infos[i].n_options = t->n_options;
    m->infos[i].options = &m->option_strs[o];
    for (uint32_t k = 0; k < t->n_options; k++) m->option_strs[o++] = proto_s(t->options[k]);
  }
  *out = m;
  return 0;
}

int room_may_join(store *db, int64_t host, int64_t learner, int64_t module) {
  int began = store_read_begin(db); /* one read lock for the two or three */
  int ok = store_responsible_reaches(db, host, learner) == 1 &&
           (store_learner_otj_waiting(db, learner, module) == 1 ||
            store_completion_renewable(db, learner, module) == 1); /* a re-drill */
  store_read_end(db, began);
  return ok;
}

proto_code room_check_answer(const room_module *m, uint32_t task, const proto_value *value,
                             char *msg, size_t cap) {
  if (task >= m->n_tasks) {
    snprintf(msg, cap, "This module has %u tasks; there is no task %u.", m->n_tasks, task);
    return PROTO_BAD_REQUEST;
  }
  const room_task *t = &m->tasks[task];
  if (t->kind == PROTO_TASK_OBSERVE) {
    snprintf(msg, cap, "Task %u is observed by the responsible, not answered.", task);
    return PROTO_CONFLICT;
  }
  if (t->n_options == 0) return PROTO_OK; /* free text or a number */
  switch (value->kind) {
  case PROTO_VALUE_INT:
    if (value->i < 0 || (uint64_t)value->i >= t->n_options) {
      snprintf(msg, cap, "Pick one of the %u options (0 to %u).", t->n_options, t->n_options - 1);
      return PROTO_BAD_REQUEST;
    }
    return PROTO_OK;
  case PROTO_VALUE_INTS:
    for (uint32_t i = 0; i < value->n_items; i++)
      if (value->items[i] < 0 || (uint64_t)value->items[i] >= t->n_options) {
        snprintf(msg, cap, "Each choice must be an option from 0 to %u.", t->n_options - 1);
        return PROTO_BAD_REQUEST;
      }
    return PROTO_OK;
  default:
    snprintf(msg, cap, "Task %u is answered by picking an option.", task);
    return PROTO_BAD_REQUEST;
  }
}

int room_may_approve(const room_module *m, const room_mark *marks, char *reason, size_t cap) {
  for (uint32_t i = 0; i < m->n_tasks; i++) {
    if (m->tasks[i].kind != PROTO_TASK_OBSERVE) continue;
    if (marks[i] == ROOM_PASS) continue;
    snprintf(reason, cap, "Task %u (\"%s\") is %s.", i + 1, m->tasks[i].text,
             marks[i] == ROOM_FAIL ? "marked fail" : "not marked yet");
    return 0;
  }
  return 1;
}
