/*
 * live_act — the small actions inside a room: step, answer, mark, add,
 * remove, leave, close; the records answers and marks are stored as; and
 * the room's history row when it closes.
 *
 * The one design idea: an action checks here only what needs no Redis (is
 * this the host? does the answer fit the task? R7 for an added learner),
 * then makes its event and hands everything to one room.lua op through
 * live_call; the script decides the rest atomically (is the room open, is
 * the learner a member, is the task current) and the client's ok or ack
 * carries the event's seq. The event itself reaches every member through
 * the room's channel like any other (live_room.c), the sender included.
 */
#include "live_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "store_evidence.h"

/* ---- who may act --------------------------------------------------------- */

attach *live_member_of(ws_sess *s, proto_rid rid, proto_str room, int host_only) {
  attach *a = att_find(s, room);
  if (!a) {
    ws_send_err(s, rid, PROTO_NOT_FOUND, "Join the room first.");
    return NULL;
  }
  att_touch(a);
  if (host_only && !a->host) {
    ws_send_err(s, rid, PROTO_FORBIDDEN, "Only the responsible who runs this room may do that.");
    return NULL;
  }
  if (!a->r->mod) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE, "The room is still loading.");
    return NULL;
  }
  return a;
}

void live_ok_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (live_reply_failed(o, rep) || !s) return;
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, o->rid, true, live_reply_parse(rep).seq) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* ---- step ------------------------------------------------------------------ */

void live_step(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->step.room, 1);
  if (!a) return;
  if (m->step.task >= a->r->mod->n_tasks) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST, "There is no task with that number.");
    return;
  }
  proto_event ev = {.type = PROTO_EV_STEP, .step.task = m->step.task};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_step(&c, &rc, m->step.task, live_event(&ev, 0));
  live_call(&c, live_ok_reply, s, rid, a->r);
}

/* ---- stored records: answers and marks -------------------------------------- */

msgpack_object *rec_fields(msgpack_unpacked *u, const redisReply *x, uint32_t n) {
  msgpack_unpacked_init(u);
  if (x->type != REDIS_REPLY_STRING ||
      msgpack_unpack_next(u, x->str, x->len, NULL) != MSGPACK_UNPACK_SUCCESS)
    return NULL;
  msgpack_object o = u->data;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < n) return NULL;
  msgpack_object *f = o.via.array.ptr;
  for (uint32_t i = 0; i < 3; i++)
    if (f[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return NULL;
  if (n == REC_ANSWER_FIELDS && f[4].type != MSGPACK_OBJECT_STR) return NULL;
  return f;
}

proto_str rec_mark_evidence(const msgpack_unpacked *u) {
  const msgpack_object *o = &u->data;
  if (o->via.array.size > REC_MARK_FIELDS &&
      o->via.array.ptr[REC_MARK_FIELDS].type == MSGPACK_OBJECT_STR)
    return (proto_str){o->via.array.ptr[REC_MARK_FIELDS].via.str.ptr,
                       o->via.array.ptr[REC_MARK_FIELDS].via.str.size};
  return (proto_str){"", 0};
}

static void rec_start(msgpack_sbuffer *sb, msgpack_packer *pk, uint32_t fields) {
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(pk, fields);
}

static void pack_answer_record(msgpack_sbuffer *sb, uint64_t learner, uint32_t task, uint64_t by,
                               proto_str raw) {
  msgpack_packer pk;
  rec_start(sb, &pk, REC_ANSWER_FIELDS);
  msgpack_pack_uint64(&pk, learner);
  msgpack_pack_uint32(&pk, task);
  msgpack_pack_uint64(&pk, by);
  msgpack_pack_uint8(&pk, 0);
  msgpack_pack_str_with_body(&pk, raw.ptr, raw.len);
}

static void pack_mark_record(msgpack_sbuffer *sb, const proto_msg *m) {
  msgpack_packer pk;
  rec_start(sb, &pk, REC_MARK_FIELDS + (m->mark.has_evidence ? 1u : 0u));
  msgpack_pack_uint64(&pk, m->mark.learner);
  msgpack_pack_uint32(&pk, m->mark.task);
  msgpack_pack_uint8(&pk, m->mark.result == PROTO_RESULT_PASS ? 1 : 2);
  if (m->mark.has_note)
    msgpack_pack_str_with_body(&pk, m->mark.note.ptr, m->mark.note.len);
  else
    msgpack_pack_nil(&pk);
  if (m->mark.has_evidence)
    msgpack_pack_str_with_body(&pk, m->mark.evidence.ptr, m->mark.evidence.len);
}

static rstore_bytes sb_bytes(const msgpack_sbuffer *sb) {
  return (rstore_bytes){sb->data ? sb->data : "", sb->size};
}

/* ---- answer ------------------------------------------------------------------ */

static int evidence_owned(ws_sess *s, proto_rid rid, const attach *a, proto_str evidence,
                          uint64_t learner, uint32_t task);

/* A learner's answer of an observe task is their evidence, where the
 * module lets learners attach it: `value` is the hash of a photo or file
 * they uploaded for this room and task (POST /api/evidence). The event and
 * the snapshot then show it to the host and to that learner only (an
 * answer's value is private, PROTOCOL.md section 7). Returns 1 when the
 * answer is such evidence and may be recorded, 0 when the answer is not
 * one (the ordinary rules apply), -1 with the refusal sent. */
static int learner_evidence(ws_sess *s, proto_rid rid, const attach *a, const proto_msg *m,
                            uint64_t learner) {
  const room_module *mod = a->r->mod;
  if (a->host || !mod->learner_evidence || m->answer.task >= mod->n_tasks ||
      mod->tasks[m->answer.task].kind != PROTO_TASK_OBSERVE)
    return 0;
  const proto_value *v = &m->answer.value;
  if (v->kind != PROTO_VALUE_STR || !proto_is_evidence(v->s)) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST,
                "On an observe task your answer is a photo or file: send as 'value' the 64 hex "
                "digits that its upload answered with.");
    return -1;
  }
  return evidence_owned(s, rid, a, v->s, learner, m->answer.task) ? 1 : -1;
}

static void ack_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (live_reply_failed(o, rep) || !s) return;
  proto_buf_clear(&L.tmp);
  if (proto_encode_ack(&L.tmp, o->rid, proto_s(o->key), live_reply_parse(rep).seq) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* Whom an answer is for: the host names the learner, a learner answers for
 * themself. Returns 0, or -1 with the refusal sent. */
static int answer_for(ws_sess *s, proto_rid rid, const attach *a, const proto_msg *m,
                      uint64_t *learner) {
  if (a->host) {
    if (!m->answer.has_learner) {
      ws_send_err(s, rid, PROTO_BAD_REQUEST, "Say which learner you answer for ('learner').");
      return -1;
    }
    *learner = m->answer.learner;
    return 0;
  }
  if (m->answer.has_learner && m->answer.learner != (uint64_t)ws_user(s)) {
    ws_send_err(s, rid, PROTO_FORBIDDEN, "You can only answer for yourself.");
    return -1;
  }
  *learner = (uint64_t)ws_user(s);
  return 0;
}

void live_answer(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->answer.room, 0);
  uint64_t learner;
  if (!a || answer_for(s, rid, a, m, &learner) != 0) return;
  int evidence = learner_evidence(s, rid, a, m, learner);
  if (evidence < 0) return;
  char msg[160];
  proto_code code =
      evidence ? PROTO_OK
               : room_check_answer(a->r->mod, m->answer.task, &m->answer.value, msg, sizeof msg);
  if (code != PROTO_OK) {
    ws_send_err(s, rid, code, msg);
    return;
  }
  msgpack_sbuffer rec;
  pack_answer_record(&rec, learner, m->answer.task, (uint64_t)ws_user(s), m->answer.value.raw);
  proto_event ev = {.type = PROTO_EV_ANSWER,
                    .answer = {.learner = learner,
                               .task = m->answer.task,
                               .value = m->answer.value,
                               .by = (uint64_t)ws_user(s)}};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_answer(&c, &rc, ws_user(s), (int64_t)learner, m->answer.task,
                (rstore_bytes){m->answer.key.ptr, m->answer.key.len}, sb_bytes(&rec),
                live_event(&ev, 0), 1 /* the current task only (R8) */);
  msgpack_sbuffer_destroy(&rec);
  live_op *o = live_call(&c, ack_reply, s, rid, a->r);
  if (o) live_copy_str(o->key, sizeof o->key, m->answer.key);
}

/* ---- mark ---------------------------------------------------------------------- */

/* Once Redis holds the mark: its audit entry (o->extra, live_audit.c), then
 * the host's ok. */
static void mark_reply(live_op *o, redisReply *rep) {
  if (live_reply_failed(o, rep)) return;
  char subject[PROTO_MAX_ROOM + 8];
  snprintf(subject, sizeof subject, "room:%s", o->r->id);
  live_audit(o->r->host, "otj.mark", subject, o->extra);
  o->extra = NULL;
  ws_sess *s = live_op_sess(o);
  if (!s) return;
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, o->rid, true, live_reply_parse(rep).seq) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* A mark (or a learner's evidence answer) may carry only evidence its
 * sender uploaded for exactly this room, learner and task
 * (server/evidence.c). Returns 1, or 0 with the refusal sent. */
static int evidence_owned(ws_sess *s, proto_rid rid, const attach *a, proto_str evidence,
                          uint64_t learner, uint32_t task) {
  char hash[PROTO_EVIDENCE_LEN + 1];
  live_copy_str(hash, sizeof hash, evidence);
  int rc = learner > INT64_MAX
               ? 0
               : store_evidence_owned(L.d->db, hash, ws_user(s), a->r->id, (int64_t)learner, task);
  if (rc == 1) return 1;
  if (rc == STORE_BUSY)
    ws_send_err(s, rid, PROTO_UNAVAILABLE, "The database is busy; send it again.");
  else if (rc < 0)
    ws_send_err(s, rid, PROTO_INTERNAL, "The evidence could not be checked.");
  else
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "That file was not uploaded by you for this learner and task; upload it "
                "first (POST /api/evidence).");
  return 0;
}

void live_mark(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->mark.room, 1);
  if (!a) return;
  const room_module *mod = a->r->mod;
  if (m->mark.task >= mod->n_tasks) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST, "There is no task with that number.");
    return;
  }
  if (mod->tasks[m->mark.task].kind != PROTO_TASK_OBSERVE) {
    ws_send_err(s, rid, PROTO_CONFLICT,
                "That task is a question the learner answers; only observe "
                "tasks are marked.");
    return;
  }
  if (m->mark.n_learners > 0 && m->mark.has_evidence) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST,
                "Evidence belongs to one learner's mark: send it with `learner`, not `learners`.");
    return;
  }
  if (m->mark.n_learners > 0) {
    /* a group: room.lua checks that each is a learner of the room, skips
     * those marked already, and records one event for the others */
    int64_t ids[PROTO_MAX_LEARNERS];
    for (uint32_t i = 0; i < m->mark.n_learners; i++) ids[i] = (int64_t)m->mark.learners[i];
    rstore_call rc = live_rcall(a->r);
    rstore_cmd c;
    rstore_mark_group(&c, &rc, ids, m->mark.n_learners, m->mark.task,
                      m->mark.result == PROTO_RESULT_PASS, m->mark.has_note,
                      (rstore_bytes){m->mark.note.ptr ? m->mark.note.ptr : "", m->mark.note.len});
    live_op *o = live_call(&c, mark_reply, s, rid, a->r);
    if (o) {
      o->extra = live_audit_group_mark_detail(a->r->id, m->mark.learners, m->mark.n_learners,
                                              m->mark.task, m->mark.result == PROTO_RESULT_PASS,
                                              m->mark.has_note ? m->mark.note.ptr : NULL,
                                              m->mark.has_note ? m->mark.note.len : 0);
      o->extra_free = free;
    }
    return;
  }
  if (m->mark.has_evidence &&
      !evidence_owned(s, rid, a, m->mark.evidence, m->mark.learner, m->mark.task))
    return;
  msgpack_sbuffer rec;
  pack_mark_record(&rec, m);
  proto_event ev = {.type = PROTO_EV_MARK,
                    .mark = {m->mark.learner, m->mark.task, m->mark.result, m->mark.has_note,
                             m->mark.note, m->mark.has_evidence, m->mark.evidence}};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_mark(&c, &rc, (int64_t)m->mark.learner, m->mark.task, sb_bytes(&rec), live_event(&ev, 0));
  msgpack_sbuffer_destroy(&rec);
  live_op *o = live_call(&c, mark_reply, s, rid, a->r);
  if (o) {
    o->extra = live_audit_mark_detail(
        a->r->id, m->mark.learner, m->mark.task, m->mark.result == PROTO_RESULT_PASS,
        m->mark.has_note ? m->mark.note.ptr : NULL, m->mark.has_note ? m->mark.note.len : 0);
    o->extra_free = free;
  }
}

/* ---- add and remove ------------------------------------------------------------- */

static void add_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (live_reply_failed(o, rep) || !s) return;
  lroom *r = o->r;
  dash_invite(o->added, r->id, r->code, r->module, r->mod ? r->mod->title : "", r->host,
              r->host_name);
  live_ok_reply(o, rep);
}

void live_add(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->add.room, 1);
  if (!a) return;
  store_user u;
  int64_t id = (int64_t)m->add.learner;
  if (m->add.learner > INT64_MAX || store_user_by_id(L.d->db, id, &u) != 0 ||
      !room_may_join(L.d->db, ws_user(s), id, a->r->module)) {
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "That learner is not waiting for this module within your reach.");
    return;
  }
  proto_event ev = {.type = PROTO_EV_ADDED, .added.learner = (uint64_t)id};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_add(&c, &rc, id, u.name, live_event(&ev, 0), L.d->cfg.max_room_learners);
  live_op *o = live_call(&c, add_reply, s, rid, a->r);
  if (o) o->added = id;
}

void live_remove(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->remove.room, 1);
  if (!a) return;
  proto_event ev = {.type = PROTO_EV_REMOVED, .removed.learner = m->remove.learner};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_remove(&c, &rc, (int64_t)m->remove.learner, live_event(&ev, 0));
  live_call(&c, live_ok_reply, s, rid, a->r);
}

/* ---- leave -------------------------------------------------------------------- */

void live_send_leave(lroom *r, int64_t user, ws_sess *s, proto_rid rid) {
  if (!live_redis_ready()) return; /* presence is rebuilt by the next join */
  proto_event ev = {.type = PROTO_EV_LEFT};
  ev.left.user = (uint64_t)user;
  ev.left.role = user == r->host ? PROTO_ROLE_HOST : PROTO_ROLE_LEARNER;
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_leave(&c, &rc, user, live_event(&ev, 0));
  live_call(&c, live_ok_reply, s, rid, r);
}

/* A responsible who runs drill after drill in one browser tab holds every
 * room she closed: without this, the 17th room was refused until a reload. */
int live_let_go_closed(ws_sess *s) {
  attach *old = NULL;
  for (attach *a = *ws_live_slot(s); a; a = a->snext)
    if (a->r->closed && a->ready) old = a; /* the list runs from the most recently used */
  if (!old) return 0;
  lroom *r = old->r;
  log_event(LOG_INFO, "room let go", "room=%s user=%lld session=%llu reason=closed", r->id,
            (long long)ws_user(s), (unsigned long long)ws_id(s));
  room_hold(r);
  att_remove(old);
  live_send_leave(r, ws_user(s), NULL, PROTO_NO_RID);
  room_release(r);
  return 1;
}

void live_leave(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = att_find(s, m->leave.room);
  if (!a) {
    ws_send_err(s, rid, PROTO_NOT_FOUND, "You are not in that room.");
    return;
  }
  lroom *r = a->r;
  log_event(LOG_INFO, "room left", "room=%s user=%lld session=%llu", r->id, (long long)ws_user(s),
            (unsigned long long)ws_id(s));
  room_hold(r); /* kept while the leave is sent */
  att_remove(a);
  live_send_leave(r, ws_user(s), s, rid);
  room_release(r);
}

/* ---- close, and the room's history ------------------------------------------------ */

/* The close of a room is written with the workers' handle, which may wait
 * for a lock held elsewhere without holding up the loop. The host's `ok`
 * (when `ref` is set) goes out once the history says closed, so that the
 * room's join address and QR code answer 404 as soon as the host is told. */
typedef struct closed_job {
  uv_work_t work;
  char room[PROTO_MAX_ROOM + 1];
  int64_t at;
  int code;
  char msg[STORE_ERRMSG_MAX];
  ws_ref *ref; /* the host who asked, or NULL */
  proto_rid rid;
  uint64_t seq; /* the close event's seq */
} closed_job;

static void closed_tell(ws_ref *ref, proto_rid rid, uint64_t seq) {
  ws_sess *s = ref ? ws_ref_sess(ref) : NULL;
  if (s) {
    proto_buf_clear(&L.tmp);
    if (proto_encode_ok(&L.tmp, rid, true, seq) == 0)
      ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  }
  if (ref) ws_ref_put(ref);
}

/* On a worker thread. */
static void closed_work(uv_work_t *w) {
  closed_job *j = w->data;
  otjd *d = L.d;
  uv_mutex_lock(&d->db_worker_lock);
  j->code = store_room_closed(d->db_worker, j->room, j->at);
  if (j->code) snprintf(j->msg, sizeof j->msg, "%s", store_errmsg(d->db_worker));
  uv_mutex_unlock(&d->db_worker_lock);
}

static void closed_done(uv_work_t *w, int status) {
  closed_job *j = w->data;
  if (status != 0 || j->code != 0)
    log_event(LOG_ERROR, "recording the close of a room failed", "room=%s error=%s", j->room,
              status != 0 ? "cancelled" : j->msg);
  closed_tell(j->ref, j->rid, j->seq);
  free(j);
}

void live_record_closed(const char *room, ws_sess *s, proto_rid rid, uint64_t seq) {
  closed_job *j = calloc(1, sizeof *j);
  if (j) {
    snprintf(j->room, sizeof j->room, "%s", room);
    j->at = (int64_t)time(NULL);
    j->ref = s ? ws_ref_get(s) : NULL;
    j->rid = rid;
    j->seq = seq;
    j->work.data = j;
    if (uv_queue_work(L.d->loop, &j->work, closed_work, closed_done) == 0) return;
    if (j->ref) ws_ref_put(j->ref);
    free(j);
  }
  /* no worker: the loop's handle, which waits only briefly */
  if (store_room_closed(L.d->db, room, (int64_t)time(NULL)) != 0)
    log_event(LOG_ERROR, "recording the close of a room failed", "room=%s error=%s", room,
              store_errmsg(L.d->db));
  closed_tell(s ? ws_ref_get(s) : NULL, rid, seq);
}

static void close_reply(live_op *o, redisReply *rep) {
  if (live_reply_failed(o, rep)) return;
  lroom *r = o->r;
  log_event(LOG_INFO, "room closed", "room=%s module=%lld host=%lld", r->id, (long long)r->module,
            (long long)r->host);
  live_drop_code(r->code);
  live_record_closed(r->id, live_op_sess(o), o->rid, live_reply_parse(rep).seq);
}

void live_close(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->close.room, 1);
  if (!a) return;
  proto_event ev = {.type = PROTO_EV_CLOSED};
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_close(&c, &rc, live_event(&ev, 0));
  live_call(&c, close_reply, s, rid, a->r);
}
