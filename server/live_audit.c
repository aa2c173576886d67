/*
 * live_audit — the audit entries of what happens inside a live room that
 * SQLite does not otherwise see: each mark with its note.
 *
 * A mark lives in Redis while the room is open. Once room.lua has accepted
 * it (the script's reply, on the instance that took the host's message, so
 * once per mark whatever the number of instances), its audit entry is
 * written on libuv's worker pool with the workers' handle, in a transaction
 * of its own; the trigger of storage/audit.c chains it. The host's `ok` does
 * not wait for that write (the loop never waits for a disk): a mark is
 * acknowledged when Redis holds it, and the approval that ends in a
 * completion writes the marks it was judged on into the completion, durably
 * and before it is acknowledged. An entry that cannot be written is logged.
 */
#include "live_int.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

typedef struct audit_job {
  uv_work_t work;
  int64_t at, actor;
  char action[32];
  char subject[PROTO_MAX_ROOM + 8];
  char *detail; /* owned */
  int code;
  char msg[STORE_ERRMSG_MAX];
} audit_job;

static void audit_work(uv_work_t *w) {
  audit_job *j = w->data;
  otjd *d = L.d;
  uv_mutex_lock(&d->db_worker_lock);
  j->code = store_audit_append(d->db_worker, j->at, j->actor, j->action, j->subject, j->detail);
  if (j->code) snprintf(j->msg, sizeof j->msg, "%s", store_errmsg(d->db_worker));
  uv_mutex_unlock(&d->db_worker_lock);
}

static void audit_done(uv_work_t *w, int status) {
  audit_job *j = w->data;
  if (status != 0 || j->code != 0)
    log_event(LOG_ERROR, "writing an audit entry failed", "action=%s subject=%s error=%s",
              j->action, j->subject, status != 0 ? "cancelled" : j->msg);
  free(j->detail);
  free(j);
}

void live_audit(int64_t actor, const char *action, const char *subject, char *detail) {
  audit_job *j = calloc(1, sizeof *j);
  if (!j) {
    log_event(LOG_ERROR, "writing an audit entry failed", "action=%s error=out_of_memory", action);
    free(detail);
    return;
  }
  j->at = (int64_t)time(NULL);
  j->actor = actor;
  snprintf(j->action, sizeof j->action, "%s", action);
  snprintf(j->subject, sizeof j->subject, "%s", subject);
  j->detail = detail;
  j->work.data = j;
  if (uv_queue_work(L.d->loop, &j->work, audit_work, audit_done) != 0) {
    /* no worker: the loop's handle, which waits only briefly */
    j->code = store_audit_append(L.d->db, j->at, j->actor, j->action, j->subject, j->detail);
    if (j->code) snprintf(j->msg, sizeof j->msg, "%s", store_errmsg(L.d->db));
    audit_done(&j->work, 0);
  }
}

char *live_audit_mark_detail(const char *room, uint64_t learner, uint32_t task, int pass,
                             const char *note, size_t note_len) {
  json_t *j = json_pack("{s:s, s:I, s:i, s:s}", "room", room, "learner", (json_int_t)learner,
                        "task", (int)task, "result", pass ? "pass" : "fail");
  if (j && note) json_object_set_new(j, "note", json_stringn(note, note_len));
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return s;
}

char *live_audit_group_mark_detail(const char *room, const uint64_t *learners, uint32_t n,
                                   uint32_t task, int pass, const char *note, size_t note_len) {
  json_t *ids = json_array();
  for (uint32_t i = 0; ids && i < n; i++)
    json_array_append_new(ids, json_integer((json_int_t)learners[i]));
  json_t *j = json_pack("{s:s, s:o, s:i, s:s}", "room", room, "learners", ids, "task", (int)task,
                        "result", pass ? "pass" : "fail");
  if (j && note) json_object_set_new(j, "note", json_stringn(note, note_len));
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return s;
}
