/*
 * room — the rules of a live room that need neither Redis nor sockets:
 * what a module's tasks are, which answer fits a task, who may be in a
 * room (R7) and whether a learner may be approved (R8, R9). The live_*.c
 * files ask these questions; the tests ask them directly.
 */
#ifndef OTJ_ROOM_H
#define OTJ_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

/* A room holds every task of its module: the store's caps (DESIGN §6). */
#define ROOM_MAX_TASKS   STORE_MAX_TASKS
#define ROOM_MAX_OPTIONS STORE_MAX_OPTIONS

typedef struct room_task {
  proto_task_kind kind;
  char *text;
  uint32_t n_options;
  char **options;
} room_task;

typedef struct room_module {
  int64_t id;
  char title[128];
  int otj;
  uint32_t n_tasks;
  room_task *tasks;
  proto_task_info *infos; /* the same tasks, as the snapshot encoder wants */
  proto_str *option_strs; /* storage behind infos[].options */
  uint64_t digest;        /* store_tasks_digest_add over the tasks */
  int learner_confirm;    /* approvals wait for the learner's confirmation */
  int learner_evidence;   /* learners may attach evidence to their observe tasks */
} room_module;

/* Loads a module and its tasks. Returns 0, STORE_NOTFOUND, STORE_INVALID
 * when the module does not fit a room (more than ROOM_MAX_TASKS tasks, or a
 * question with more than ROOM_MAX_OPTIONS options: a room never cuts a
 * module short), or another negative code. Free with room_module_free. */
int room_module_load(store *db, int64_t id, room_module **out);
void room_module_free(room_module *m);

/* R7: may `learner` be in a room of `host` for `module`? 1 when the
 * learner is within the host's reach (R1) and waiting for that module's OTJ
 * (R6), or their approval of it has expired or is due for a re-drill
 * (store_completion_renewable); 0 when not, or when the store cannot say. The one home of this
 * rule: opening a room with learners, a learner joining who is not a member
 * yet, and a host adding a learner all ask it (server/live_join.c,
 * live_act.c); the writer asks "still waiting" again at approval. */
int room_may_join(store *db, int64_t host, int64_t learner, int64_t module);

/* A mark's result for one task of one learner. */
typedef enum room_mark { ROOM_UNMARKED = 0, ROOM_PASS = 1, ROOM_FAIL = 2 } room_mark;

/* R8: may `value` answer task `task`? Returns PROTO_OK, or a code with a
 * sentence in msg: an observe task is not answered (conflict), an index out
 * of range or a value that is not one of the options (bad_request). */
proto_code room_check_answer(const room_module *m, uint32_t task, const proto_value *value,
                             char *msg, size_t cap);

/* R9: may a learner whose marks are `marks` (one per task) be approved?
 * Returns 1 when every observe task is marked pass; otherwise 0 and a
 * sentence naming the first task that is failed or not marked. */
int room_may_approve(const room_module *m, const room_mark *marks, char *reason, size_t cap);

#endif
