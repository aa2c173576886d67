/*
 * live_approve — approvals (R9, R10): the responsible's decisions for the
 * learners of a room become completions on disk, then outcomes in the room.
 *
 * The one design idea: nothing is acknowledged before it is durable. An
 * approve reads only the decided learners' answers and marks from Redis
 * (the `records` op), applies R9 on the loop, and hands the decisions to
 * the writer thread, which this file starts and stops (writer.c: one SQLite
 * transaction per batch, synchronous=FULL, "still waiting" and the
 * approver's rights checked again inside it). Only when the writer says the
 * batch is on disk does the host get `approved` and the room its outcome
 * events (each learner sees only their own).
 */
#include "live_int.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

/* ---- the writer ------------------------------------------------------------- */

int live_approve_start(otjd *d) {
  char path[600], err[256];
  snprintf(path, sizeof path, "%s/otj.db", d->cfg.data_dir);
  L.w = writer_start(d->loop, path, err, sizeof err);
  if (!L.w) {
    log_event(LOG_ERROR, "cannot start the approval writer", "error=%s", err);
    return -1;
  }
  return 0;
}

void live_approve_stop(void) {
  if (!L.w) return;
  writer_stop(L.w); /* commits what is queued, answers it */
  L.w = NULL;
}

/* ---- one approve on its way to the disk ------------------------------------------ */

#define APPROVE_OWNED_PER_ITEM 5 /* answers, marks, note, reason, attendance */

/* Sized to its decisions. Owned by the records op until it is submitted,
 * then by the writer until approve_committed. */
typedef struct approve_ctx {
  writer_job job;
  ws_ref *ref;
  proto_rid rid;
  lroom *r; /* held from submission */
  uint32_t n;
  char **owned; /* strings the items point to */
  size_t nowned, owned_cap;
  store_approval items[];
} approve_ctx;

static char *ctx_own(approve_ctx *x, char *s) {
  if (s && x->nowned < x->owned_cap) x->owned[x->nowned++] = s;
  return s;
}

static void approve_ctx_free(approve_ctx *x) {
  for (size_t i = 0; i < x->nowned; i++) free(x->owned[i]);
  free(x->owned);
  if (x->ref) ws_ref_put(x->ref);
  if (x->r) room_release(x->r);
  free(x);
}

/* The refusal of a whole approve whose room no longer shows the module's
 * tasks (edited while the room was open): `conflict`, nothing approved. */
static void refuse_changed_tasks(ws_sess *s, proto_rid rid, const lroom *r) {
  char msg[PROTO_ERR_MSG_MAX];
  snprintf(msg, sizeof msg,
           "\"%.40s\" was changed after this room was opened; nothing was "
           "approved. Close this room and open a new one.",
           r->mod ? r->mod->title : "");
  ws_send_err(s, rid, PROTO_CONFLICT, msg);
}

/* ---- after the commit: the host's answer, the room's outcomes -------------------- */

/* One line per decision, with ids only: never the answers, marks or note. */
static void log_decisions(const approve_ctx *x, const char *why) {
  for (uint32_t i = 0; i < x->n; i++) {
    const store_approval *it = &x->items[i];
    const char *outcome = why                                 ? "refused"
                          : it->rc != 0                       ? "failed"
                          : it->forbidden                     ? "refused"
                          : it->pending                       ? "pending"
                          : it->outcome == STORE_APPROVED     ? "approved"
                          : it->outcome == STORE_NOT_APPROVED ? "not_approved"
                                                              : "refused";
    log_event(LOG_INFO, "approval",
              "room=%s module=%lld learner=%lld approver=%lld outcome=%s completion=%lld why=%s",
              x->r->id, (long long)it->module, (long long)it->learner, (long long)it->approver,
              outcome,
              (long long)(it->rc == 0 && it->outcome == STORE_APPROVED ? it->completion : 0),
              why                                                         ? why
              : it->rc != 0                                               ? "not_saved"
              : it->forbidden                                             ? "rights_changed"
              : it->reason && it->rc == 0 && it->outcome == STORE_REFUSED ? "rule"
                                                                          : "");
  }
}

/* 1 when the writer refused a decision because the module's tasks changed. */
static int tasks_changed(const approve_ctx *x) {
  for (uint32_t i = 0; i < x->n; i++)
    if (x->items[i].rc == 0 && x->items[i].tasks_changed) return 1;
  return 0;
}

/* What the writer made of each decision, as the host is told. Returns 1
 * when at least one learner was approved. */
static int approve_results(const approve_ctx *x, proto_approval_result *res) {
  int any_approved = 0;
  for (uint32_t i = 0; i < x->n; i++) {
    const store_approval *it = &x->items[i];
    memset(&res[i], 0, sizeof res[i]);
    res[i].learner = (uint64_t)it->learner;
    if (it->rc != 0) {
      res[i].status = PROTO_STATUS_REFUSED;
      res[i].reason = proto_s("The decision could not be saved; try again.");
    } else if (it->outcome == STORE_APPROVED && it->pending) {
      res[i].status = PROTO_STATUS_PENDING; /* waits for the learner's confirmation */
    } else if (it->outcome == STORE_APPROVED) {
      res[i].status = PROTO_STATUS_APPROVED;
      res[i].has_completion = true;
      res[i].completion = (uint64_t)it->completion;
      any_approved = 1;
    } else if (it->outcome == STORE_NOT_APPROVED) {
      res[i].status = PROTO_STATUS_NOT_APPROVED;
    } else {
      res[i].status = PROTO_STATUS_REFUSED;
      res[i].reason = proto_s(it->reason ? it->reason : "");
    }
  }
  return any_approved;
}

/* The room hears the outcomes (learners see only their own); an approved
 * learner's invitation to the room is forgotten. */
static void publish_outcomes(const approve_ctx *x, const proto_approval_result *res) {
  lroom *r = x->r;
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_outcomes_start(&c, &rc);
  uint32_t nb = 0;
  for (uint32_t i = 0; i < x->n; i++) {
    if (x->items[i].rc != 0 || x->items[i].forbidden) continue;
    proto_event ev = {
        .type = PROTO_EV_APPROVED,
        .approved = {res[i].learner, res[i].status, res[i].has_completion, res[i].completion}};
    rstore_outcome(&c, x->items[i].learner, (int)res[i].status, (int64_t)res[i].completion,
                   live_event(&ev, 0));
    if (res[i].status == PROTO_STATUS_APPROVED) dash_forget_invite(x->items[i].learner, r->id);
    nb++;
  }
  if (nb)
    live_call(&c, NULL, NULL, PROTO_NO_RID, r);
  else
    rstore_cmd_free(&c);
}

static void approve_committed(writer_job *job, void *arg) {
  (void)job;
  approve_ctx *x = arg;
  ws_sess *s = ws_ref_sess(x->ref);
  if (tasks_changed(x)) {
    log_decisions(x, "tasks_changed");
    if (s) refuse_changed_tasks(s, x->rid, x->r);
    approve_ctx_free(x);
    return;
  }
  log_decisions(x, NULL);
  uint32_t forbidden = 0;
  for (uint32_t i = 0; i < x->n; i++) forbidden += x->items[i].rc == 0 && x->items[i].forbidden;
  if (forbidden && forbidden == x->n) {
    /* the approver's rights went away since the socket said hello: nothing
     * was written (the refusals are audited); the room hears nothing */
    if (s)
      ws_send_err(s, x->rid, PROTO_FORBIDDEN,
                  "You may no longer approve for these learners: your rights or "
                  "department changed. Reconnect to see what you may do now.");
    approve_ctx_free(x);
    return;
  }
  proto_approval_result res[PROTO_MAX_DECISIONS];
  int any_approved = approve_results(x, res);
  if (s) {
    proto_buf_clear(&L.tmp);
    if (proto_encode_approved(&L.tmp, x->rid, res, x->n) == 0)
      ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  }
  publish_outcomes(x, res);
  if (any_approved) live_pending_changed(L.d);
  approve_ctx_free(x);
}

/* ---- before the commit: records and R9 ------------------------------------------- */

static json_t *json_of_msgpack(const msgpack_object *o) {
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer((json_int_t)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
  case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
  case MSGPACK_OBJECT_ARRAY: {
    json_t *a = json_array();
    for (uint32_t i = 0; i < o->via.array.size; i++)
      json_array_append_new(a, json_of_msgpack(&o->via.array.ptr[i]));
    return a;
  }
  default: return json_null();
  }
}

/* An answer record as the completion keeps it: {task, value, by}. */
static json_t *answer_json(const msgpack_object *f) {
  /* the value is stored as its own msgpack bytes */
  msgpack_unpacked v;
  msgpack_unpacked_init(&v);
  json_t *jv =
      msgpack_unpack_next(&v, f[4].via.str.ptr, f[4].via.str.size, NULL) == MSGPACK_UNPACK_SUCCESS
          ? json_of_msgpack(&v.data)
          : json_null();
  msgpack_unpacked_destroy(&v);
  return json_pack("{s:i, s:o, s:I}", "task", (int)f[1].via.u64, "value", jv, "by",
                   (json_int_t)f[2].via.u64);
}

/* A mark record as the completion keeps it: {task, result, note?, evidence?}. */
static json_t *mark_json(const msgpack_unpacked *u, const msgpack_object *f) {
  json_t *jm = json_pack("{s:i, s:s}", "task", (int)f[1].via.u64, "result",
                         f[2].via.u64 == 1 ? "pass" : "fail");
  if (f[3].type == MSGPACK_OBJECT_STR)
    json_object_set_new(jm, "note", json_stringn(f[3].via.str.ptr, f[3].via.str.size));
  proto_str ev = rec_mark_evidence(u);
  if (ev.len) json_object_set_new(jm, "evidence", json_stringn(ev.ptr, ev.len));
  return jm;
}

/* The learner's answers and marks in this room, from a records reply. */
static void learner_records(approve_ctx *x, redisReply *answers, redisReply *marks_rep,
                            int64_t learner, room_mark *marks, uint32_t ntasks, char **answers_json,
                            char **marks_json) {
  json_t *ans = json_array(), *mk = json_array();
  redisReply *arr[2] = {answers, marks_rep};
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; arr[k]->type == REDIS_REPLY_ARRAY && i < arr[k]->elements; i++) {
      msgpack_unpacked u;
      msgpack_object *f =
          rec_fields(&u, arr[k]->element[i], k == 0 ? REC_ANSWER_FIELDS : REC_MARK_FIELDS);
      if (f && f[0].via.u64 == (uint64_t)learner) {
        uint32_t task = (uint32_t)f[1].via.u64;
        if (k == 0) {
          json_array_append_new(ans, answer_json(f));
        } else {
          if (task < ntasks) marks[task] = f[2].via.u64 == 1 ? ROOM_PASS : ROOM_FAIL;
          json_array_append_new(mk, mark_json(&u, f));
        }
      }
      msgpack_unpacked_destroy(&u);
    }
  }
  *answers_json = ctx_own(x, json_dumps(ans, JSON_COMPACT));
  *marks_json = ctx_own(x, json_dumps(mk, JSON_COMPACT));
  json_decref(ans);
  json_decref(mk);
}

/* The learner's attendance as the completion keeps it, from room.lua's
 * "earlier;from-to,from-to,from-" (ms): {"seconds": N, "intervals":
 * [{"from": unix s, "to": unix s}, ...]}, an interval still open ending
 * now. NULL when out of memory. */
static char *attendance_json(const char *v, size_t len, int64_t now_ms) {
  json_t *list = json_array();
  char buf[2048];
  if (!list) return NULL;
  if (len >= sizeof buf) len = 0; /* room.lua keeps at most ATT_KEPT intervals: never */
  memcpy(buf, v ? v : "", len);
  buf[len] = '\0';
  char *p = buf, *end;
  long long total = strtoll(p, &end, 10); /* the folded intervals, ms */
  if (end == p || *end != ';') total = 0;
  p = *end == ';' ? end + 1 : end;
  while (*p) {
    long long from = strtoll(p, &end, 10), to;
    if (end == p || *end != '-') break;
    p = end + 1;
    to = strtoll(p, &end, 10);
    if (end == p) to = now_ms; /* still here */
    p = *end == ',' ? end + 1 : end;
    if (to < from) to = from;
    total += to - from;
    json_array_append_new(list, json_pack("{s:I, s:I}", "from", (json_int_t)(from / 1000), "to",
                                          (json_int_t)(to / 1000)));
  }
  json_t *o = json_pack("{s:I, s:o}", "seconds", (json_int_t)(total / 1000), "intervals", list);
  char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return out;
}

/* One decision, with its learner's {member, answers, marks, attendance}
 * from the records reply. */
/* The fingerprint of the tasks the room opened with, as its record keeps it
 * (a room recorded without one: the tasks this instance loaded). */
static uint64_t room_digest(const lroom *r) { return r->digest_known ? r->digest : r->mod->digest; }

static void approve_item(approve_ctx *x, store_approval *it, const lroom *r, ws_sess *s,
                         int64_t now, redisReply **rec) {
  it->module = r->module;
  it->approver = ws_user(s);
  it->check_approver = 1; /* R1/R2 again, in the writer's transaction */
  it->now = now;
  it->room = r->id;
  it->check_tasks = 1; /* the writer compares them with the module's, R9 */
  it->tasks_digest = room_digest(r);
  if (rec[0]->type != REDIS_REPLY_INTEGER || rec[0]->integer != 1) {
    it->outcome = STORE_REFUSED;
    it->reason = "That learner is not in this room.";
    return;
  }
  room_mark marks[ROOM_MAX_TASKS] = {0};
  char *aj = NULL, *mj = NULL;
  learner_records(x, rec[1], rec[2], it->learner, marks, r->mod->n_tasks, &aj, &mj);
  it->answers_json = aj;
  it->marks_json = mj;
  it->attendance_json = ctx_own(
      x, attendance_json(rec[3]->type == REDIS_REPLY_STRING ? rec[3]->str : "",
                         rec[3]->type == REDIS_REPLY_STRING ? rec[3]->len : 0, live_wall_ms()));
  if (it->outcome != STORE_APPROVED) return; /* a "not approved" */
  if (store_completion_exists(L.d->db, it->learner, r->module, NULL) == 1)
    return; /* R10: the same completion again (an indexed lookup) */
  /* "still waiting" (R6/R7, a costly query) is checked by the writer, in
   * the same transaction as the insert: off the loop, and no race between
   * the check and the write */
  it->check_waiting = 1;
  char reason[256];
  if (!room_may_approve(r->mod, marks, reason, sizeof reason)) {
    it->outcome = STORE_REFUSED;
    it->reason = ctx_own(x, strdup(reason));
  }
}

static void approve_read(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  approve_ctx *x = o->extra;
  if (live_reply_failed(o, rep) || !s || rep->elements < 2 + 4 * (size_t)x->n) return;
  lroom *r = o->r;
  int64_t now = store_now(); /* the clock expiry is judged by */
  for (uint32_t i = 0; i < x->n; i++)
    approve_item(x, &x->items[i], r, s, now, &rep->element[2 + 4 * i]);
  /* from here the writer owns the context until approve_committed */
  o->extra = NULL;
  o->extra_free = NULL;
  x->ref = ws_ref_get(s);
  x->rid = o->rid;
  x->r = r;
  room_hold(r);
  x->job.items = x->items;
  x->job.n = x->n;
  x->job.done = approve_committed;
  x->job.arg = x;
  if (writer_submit(L.w, &x->job) != 0) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The server is stopping.");
    approve_ctx_free(x);
  }
}

/* The decisions of an approve, each learner once; NULL when out of memory. */
static approve_ctx *approve_decisions(const proto_msg *m) {
  uint32_t nd = m->approve.n_decisions;
  approve_ctx *x = calloc(1, sizeof *x + nd * sizeof x->items[0]);
  if (!x) return NULL;
  x->owned_cap = (size_t)nd * APPROVE_OWNED_PER_ITEM;
  x->owned = calloc(x->owned_cap ? x->owned_cap : 1, sizeof *x->owned);
  if (!x->owned) {
    free(x);
    return NULL;
  }
  for (uint32_t i = 0; i < nd; i++) {
    const proto_decision *d = &m->approve.decisions[i];
    int dup = 0;
    for (uint32_t k = 0; k < x->n; k++) dup |= x->items[k].learner == (int64_t)d->learner;
    if (dup || d->learner > INT64_MAX) continue;
    store_approval *it = &x->items[x->n++];
    it->learner = (int64_t)d->learner;
    it->outcome = d->approved ? STORE_APPROVED : STORE_NOT_APPROVED;
    if (d->has_note) {
      char *note = malloc(d->note.len + 1);
      if (note) {
        memcpy(note, d->note.ptr, d->note.len);
        note[d->note.len] = '\0';
      }
      it->note = ctx_own(x, note);
    }
  }
  return x;
}

void live_approve(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->approve.room, 1);
  if (!a) return;
  lroom *r = a->r;
  if ((r->opened_ntasks && r->opened_ntasks != r->mod->n_tasks) ||
      room_digest(r) != r->mod->digest) {
    /* this instance read the module after it was edited */
    refuse_changed_tasks(s, rid, r);
    return;
  }
  approve_ctx *x = approve_decisions(m);
  if (!x) return;
  live_op *o = live_op_new(approve_read, s, rid, r);
  if (!o) {
    approve_ctx_free(x);
    return;
  }
  o->extra = x;
  o->extra_free = (void (*)(void *))approve_ctx_free;
  /* only the decided learners' records, not the whole room */
  int64_t learners[PROTO_MAX_DECISIONS];
  for (uint32_t i = 0; i < x->n; i++) learners[i] = x->items[i].learner;
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_records(&c, &rc, r->mod->n_tasks, learners, x->n);
  live_op_send(o, &c);
}
