/*
 * live_join — how a connection comes into a room: open (a responsible
 * makes a room and its join code), join (by room id or code), sync (a
 * connection that comes back) and the snapshot that each of them ends with.
 *
 * The one design idea: a connection is attached only after this instance
 * has subscribed to the room's channel, and the script's reply (snapshot or
 * sync) carries the room's seq as of that moment. Every later event then
 * comes on the channel, events that raced ahead of the reply wait in the
 * ring, and room_catch_up hands them over: nothing is missed, nothing twice.
 */
#include "live_int.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

/* ---- the meta of a room ---------------------------------------------------- */

static const char *meta_get(const redisReply *pairs, const char *key) {
  if (!pairs || pairs->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t i = 0; i + 1 < pairs->elements; i += 2)
    if (pairs->element[i]->str && !strcmp(pairs->element[i]->str, key))
      return pairs->element[i + 1]->str;
  return NULL;
}

/* Reads flat HGETALL pairs into the room's meta cache. */
static void meta_from(lroom *r, const redisReply *pairs) {
  if (!pairs || pairs->type != REDIS_REPLY_ARRAY) return;
  for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
    const char *k = pairs->element[i]->str, *v = pairs->element[i + 1]->str;
    if (!k || !v) continue;
    if (!strcmp(k, "host"))
      r->host = strtoll(v, NULL, 10);
    else if (!strcmp(k, "module"))
      r->module = strtoll(v, NULL, 10);
    else if (!strcmp(k, "ntasks"))
      r->opened_ntasks = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "digest")) {
      r->digest = (uint64_t)strtoll(v, NULL, 10); /* written as an int64 */
      r->digest_known = 1;
    } else if (!strcmp(k, "code"))
      snprintf(r->code, sizeof r->code, "%s", v);
  }
  if (r->host && !r->meta_known) {
    store_user u;
    if (store_user_by_id(L.d->db, r->host, &u) == 0)
      snprintf(r->host_name, sizeof r->host_name, "%s", u.name);
    if (!r->mod) room_module_load(L.d->db, r->module, &r->mod);
    r->meta_known = r->mod != NULL;
  }
}

/* ---- snapshots ------------------------------------------------------------------ */

/* The outcomes hash of a snapshot reply (HGETALL: learner, stored outcome,
 * ...) into out, which holds h->elements / 2; returns how many it wrote. */
static uint32_t snapshot_outcomes(const redisReply *h, proto_outcome_rec *out) {
  uint32_t n = 0;
  for (size_t i = 0; i + 1 < h->elements; i += 2) {
    const redisReply *k = h->element[i], *v = h->element[i + 1];
    int st;
    uint64_t done;
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        rstore_outcome_parse(v->str, v->len, &st, &done) != 0 || st < PROTO_STATUS_APPROVED ||
        st > PROTO_STATUS_PENDING)
      continue;
    out[n++] = (proto_outcome_rec){.learner = strtoull(k->str, NULL, 10),
                                   .status = (proto_status)st,
                                   .has_completion = st == PROTO_STATUS_APPROVED,
                                   .completion = done};
  }
  return n;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The users with a live entry in a room's raw presence hash (HGETALL:
 * "user|instance", "connections:last beat ms", ...), sorted, into out
 * (room for h->elements / 2); returns how many. The rule is room.lua's
 * is_online: some instance holds a connection and beat within the
 * staleness. */
static size_t presence_live(const redisReply *h, uint64_t *out) {
  int64_t now = live_wall_ms(), stale = (int64_t)L.d->cfg.presence_stale_s * 1000;
  size_t n = 0;
  for (size_t i = 0; h && i + 1 < h->elements; i += 2) {
    const redisReply *k = h->element[i], *v = h->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    char *end;
    unsigned long long user = strtoull(k->str, &end, 10);
    if (*end != '|') continue;
    long conns = strtol(v->str, &end, 10);
    if (conns <= 0 || *end != ':') continue;
    long long beat = strtoll(end + 1, NULL, 10);
    if (now - beat <= stale) out[n++] = user;
  }
  qsort(out, n, sizeof *out, cmp_u64);
  return n;
}

/* A snapshot (the reads after op snapshot or join, rstore_snapshot_read)
 * read once into what the codec takes: a gathered join answers all its
 * joiners from one read, each encoded for its viewer. */
typedef struct snap_read {
  proto_snapshot sn;
  msgpack_unpacked *ua; /* the records the answers and marks point into */
  size_t nua;
  uint64_t *online;
} snap_read;

static void snap_read_free(snap_read *x) {
  for (size_t i = 0; x->ua && i < x->nua; i++) msgpack_unpacked_destroy(&x->ua[i]);
  free(x->ua);
  free((void *)x->sn.learners);
  free((void *)x->sn.answers);
  free((void *)x->sn.marks);
  free((void *)x->sn.outcomes);
  free(x->online);
  memset(x, 0, sizeof *x);
}

/* The snapshot read of an op's reply (o->snap), or NULL when it is not
 * there or not in the shape sent. */
static const redisReply *snap_of(const live_op *o) {
  const redisReply *s = o->snap;
  if (!s) return NULL;
  for (int i = 0; i < RSTORE_SNAP_READS; i++)
    if (s->element[1 + i]->type != REDIS_REPLY_ARRAY) return NULL;
  return s;
}

/* Reads snap (snap_of, as of seq) into x (snap_read_free it either way).
 * 0, or the refusal to send: PROTO_INTERNAL with *why. */
static int snap_read_reply(lroom *r, const redisReply *snap, uint64_t seq, snap_read *x,
                           const char **why) {
  memset(x, 0, sizeof *x);
  if (!snap) {
    *why = "The room answered in an unknown shape.";
    return -1;
  }
  if (!r->mod) {
    *why = "This room's module is gone.";
    return -1;
  }
  redisReply *const *part = snap->element + 1;
  const redisReply *meta = part[RSTORE_SNAP_META], *mem = part[RSTORE_SNAP_MEMBERS],
                   *pres = part[RSTORE_SNAP_PRESENCE], *ans = part[RSTORE_SNAP_ANSWERS],
                   *marks = part[RSTORE_SNAP_MARKS], *outs = part[RSTORE_SNAP_OUTCOMES];
  size_t nm = mem->elements / 2;
  proto_member *members = calloc(nm ? nm : 1, sizeof *members);
  proto_answer_rec *answers = calloc(ans->elements ? ans->elements : 1, sizeof *answers);
  proto_mark_rec *mrecs = calloc(marks->elements ? marks->elements : 1, sizeof *mrecs);
  proto_outcome_rec *orecs = calloc(outs->elements / 2 + 1, sizeof *orecs);
  x->ua = calloc(ans->elements + marks->elements + 1, sizeof *x->ua);
  x->nua = ans->elements + marks->elements;
  x->online = calloc(pres->elements / 2 + 1, sizeof *x->online);
  x->sn.learners = members;
  x->sn.answers = answers;
  x->sn.marks = mrecs;
  x->sn.outcomes = orecs;
  if (!members || !answers || !mrecs || !orecs || !x->ua || !x->online) {
    *why = "Out of memory.";
    return -1;
  }
  size_t nonline = presence_live(pres, x->online);
  for (size_t i = 0; i < nm; i++) {
    members[i].id = strtoull(mem->element[2 * i]->str, NULL, 10);
    members[i].name =
        (proto_str){mem->element[2 * i + 1]->str, (uint32_t)mem->element[2 * i + 1]->len};
    members[i].online =
        bsearch(&members[i].id, x->online, nonline, sizeof *x->online, cmp_u64) != NULL;
  }
  size_t na = 0, nk = 0, nu = 0;
  for (size_t i = 0; i < ans->elements; i++) {
    msgpack_object *f = rec_fields(&x->ua[nu++], ans->element[i], REC_ANSWER_FIELDS);
    if (!f) continue;
    answers[na].learner = f[0].via.u64;
    answers[na].task = (uint32_t)f[1].via.u64;
    answers[na].by = f[2].via.u64;
    answers[na].value.kind = PROTO_VALUE_RAW;
    answers[na].value.raw = (proto_str){f[4].via.str.ptr, f[4].via.str.size};
    na++;
  }
  for (size_t i = 0; i < marks->elements; i++) {
    msgpack_object *f = rec_fields(&x->ua[nu++], marks->element[i], REC_MARK_FIELDS);
    if (!f) continue;
    mrecs[nk].learner = f[0].via.u64;
    mrecs[nk].task = (uint32_t)f[1].via.u64;
    mrecs[nk].result = f[2].via.u64 == 1 ? PROTO_RESULT_PASS : PROTO_RESULT_FAIL;
    if (f[3].type == MSGPACK_OBJECT_STR) {
      mrecs[nk].has_note = true;
      mrecs[nk].note = (proto_str){f[3].via.str.ptr, f[3].via.str.size};
    }
    mrecs[nk].evidence = rec_mark_evidence(&x->ua[nu - 1]);
    mrecs[nk].has_evidence = mrecs[nk].evidence.len > 0;
    nk++;
  }
  const char *task = meta_get(meta, "task"), *state = meta_get(meta, "state");
  x->sn = (proto_snapshot){
      .room = proto_s(r->id),
      .seq = seq,
      .code = proto_s(r->code),
      .module = {.id = (uint64_t)r->module,
                 .title = proto_s(r->mod->title),
                 .n_tasks = r->mod->n_tasks,
                 .tasks = r->mod->infos,
                 .confirm = r->mod->learner_confirm != 0,
                 .learner_evidence = r->mod->learner_evidence != 0},
      .task = task ? (uint32_t)strtoul(task, NULL, 10) : 0,
      .host = {.id = (uint64_t)r->host, .name = proto_s(r->host_name)},
      .n_learners = (uint32_t)nm,
      .learners = members,
      .n_answers = (uint32_t)na,
      .answers = answers,
      .n_marks = (uint32_t)nk,
      .marks = mrecs,
      .n_outcomes = snapshot_outcomes(outs, orecs),
      .outcomes = orecs,
      .closed = state && strcmp(state, "open") != 0,
  };
  if (x->sn.closed) r->closed = 1;
  return 0;
}

/* The snapshot x as attachment a may see it. */
static void snap_send(attach *a, proto_rid rid, const snap_read *x) {
  proto_viewer v = {.user = (uint64_t)ws_user(a->s), .is_host = a->host != 0};
  proto_buf_clear(&L.tmp);
  if (proto_encode_snapshot(&L.tmp, rid, &x->sn, v) == 0)
    ws_send(a->s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* Reads a snapshot (snap_of) and sends it to one attachment. */
static void send_snapshot(attach *a, proto_rid rid, const redisReply *snap, uint64_t seq) {
  snap_read x;
  const char *why = NULL;
  if (snap_read_reply(a->r, snap, seq, &x, &why) == 0)
    snap_send(a, rid, &x);
  else
    ws_send_err(a->s, rid, PROTO_INTERNAL, why);
  snap_read_free(&x);
}

/* The attachment is up to date as of `seq`: it is ready for the channel,
 * and gets what the ring has after seq. */
static void att_ready(attach *a, uint64_t seq) {
  a->last = seq;
  a->ready = 1;
  room_catch_up(a);
}

static void snapshot_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (live_reply_failed(o, rep) || !s) return;
  attach *a = att_find(s, proto_s(o->r->id));
  if (!a) return;
  uint64_t seq = live_reply_parse(rep).seq;
  room_learn_seq(o->r, seq);
  send_snapshot(a, o->rid, snap_of(o), seq);
  att_ready(a, seq);
}

void live_resnapshot(lroom *r) {
  for (attach *a = r->atts; a; a = a->rnext) {
    rstore_call rc = live_rcall(r);
    rstore_cmd c;
    rstore_snapshot(&c, &rc);
    a->ready = 0;
    live_call_snap(&c, snapshot_reply, a->s, PROTO_NO_RID, r);
  }
}

/* ---- sync ------------------------------------------------------------------------- */

/* Sends the events of a sync reply after `since` to one attachment. */
static uint64_t send_events(attach *a, redisReply *rep, uint64_t since) {
  uint64_t last = since;
  for (size_t i = 2; i < rep->elements; i++) {
    redisReply *x = rep->element[i];
    if (x->type != REDIS_REPLY_STRING) continue;
    ev_msg *e = ev_parse(x->str, x->len);
    if (!e) continue;
    if (e->seq > since) {
      room_send_event(a, e);
      last = e->seq;
    }
    free(e);
  }
  return last;
}

static void sync_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (s && live_reply_parse(rep).kind == LIVE_REPLY_OLD) {
    /* the log no longer reaches back that far: a fresh snapshot */
    rstore_call rc = live_rcall(o->r);
    rstore_cmd c;
    rstore_snapshot(&c, &rc);
    o->fn = snapshot_reply;
    live_op_send_snap(o, &c);
    return;
  }
  if (live_reply_failed(o, rep) || !s) return;
  attach *a = att_find(s, proto_s(o->r->id));
  if (!a) return;
  room_learn_seq(o->r, live_reply_parse(rep).seq);
  uint64_t last = send_events(a, rep, o->since);
  if (last > a->last || !a->ready) a->last = last > o->since ? last : o->since;
  att_ready(a, a->last);
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, o->rid, true, a->last) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* ---- join ------------------------------------------------------------------------- */

/* Joins to one room go to Redis together: the first after a quiet spell at
 * once, those that follow within cfg.join_batch_ms (or while a call is in
 * flight) gathered into one call. The room then hears one `joined` event
 * for all of them instead of one per person, and Redis runs the script
 * once: at 07:00, when a shift scans the code, that is most of a join's
 * cost. Each joiner still gets its own verdict and snapshot. */
#define JOIN_BATCH_MAX 64

static void join_flush(lroom *r);

/* The refusal of one joiner (room.lua's verdict). */
static void join_refused(ws_sess *s, proto_rid rid, const char *verdict) {
  if (!strcmp(verdict, "forbidden"))
    ws_send_err(s, rid, PROTO_FORBIDDEN, "You are not a learner of this room.");
  else if (!strcmp(verdict, "too_large"))
    ws_send_err(s, rid, PROTO_TOO_LARGE, "This room is full.");
  else
    ws_send_err(s, rid, PROTO_NOT_FOUND, "This room does not exist or has ended.");
}

/* One joiner of a call the script accepted: attached, then its snapshot
 * (or, for a sync from outside the room, what it missed). */
/* A gathered call's snapshot, read for its first joiner that needs it and
 * sent from that one read to every other. */
typedef struct batch_snap {
  const redisReply *snap; /* snap_of the call's reply */
  int state;              /* 0 not read yet, 1 read, -1 cannot be sent (why) */
  snap_read x;
  const char *why;
} batch_snap;

static void join_one(live_op *o, batch_snap *bs, uint64_t seq) {
  lroom *r = o->r;
  ws_sess *s = live_op_sess(o);
  if (!s) return;
  attach *a = att_find(s, proto_s(r->id));
  if (!a) {
    if (att_count(s) >= LIVE_ATTACH_MAX && !live_let_go_closed(s)) {
      ws_send_err(s, o->rid, PROTO_TOO_LARGE, LIVE_TOO_MANY_ROOMS);
      return;
    }
    a = att_add(s, r, ws_user(s) == r->host);
    if (!a) return;
    log_event(LOG_INFO, "room joined", "room=%s user=%lld session=%llu role=%s", r->id,
              (long long)ws_user(s), (unsigned long long)ws_id(s), a->host ? "host" : "learner");
  } else {
    att_touch(a);
  }
  if (o->is_sync) {
    /* a sync from a connection that was not in the room: now it is; send
     * what it missed */
    rstore_call rc = live_rcall(r);
    rstore_cmd c;
    rstore_sync(&c, &rc, o->since);
    o->fn = sync_reply;
    live_op_send(o, &c);
    return;
  }
  if (bs->state == 0) bs->state = snap_read_reply(r, bs->snap, seq, &bs->x, &bs->why) == 0 ? 1 : -1;
  if (bs->state == 1)
    snap_send(a, o->rid, &bs->x);
  else
    ws_send_err(s, o->rid, PROTO_INTERNAL, bs->why);
  att_ready(a, seq);
}

/* Keeps the learners a join reply lists (HGETALL members) as the room's
 * hint of who is a member. */
static void learn_members(lroom *r, const redisReply *mem) {
  size_t n = mem && mem->type == REDIS_REPLY_ARRAY ? mem->elements / 2 : 0;
  if (!n) {
    free(r->known);
    r->known = NULL;
    r->n_known = 0;
    return;
  }
  uint64_t *k = realloc(r->known, n * sizeof *k);
  if (!k) return; /* keep the old hint */
  for (size_t i = 0; i < n; i++) k[i] = strtoull(mem->element[2 * i]->str, NULL, 10);
  qsort(k, n, sizeof *k, cmp_u64);
  r->known = k;
  r->n_known = (uint32_t)n;
}

static int seems_member(const lroom *r, int64_t user) {
  uint64_t u = (uint64_t)user;
  return r->n_known && bsearch(&u, r->known, r->n_known, sizeof u, cmp_u64) != NULL;
}

static void join_send(live_op *o);

/* The script's reply to a gathered call: {"ok", seq, verdicts} and the
 * snapshot reads after it, or a failure that every joiner of it hears. */
static void join_batch_reply(live_op *b, redisReply *rep) {
  lroom *r = b->r;
  live_op *list = b->extra;
  b->extra = NULL;
  r->join_inflight = 0;
  live_reply pr = live_reply_parse(rep);
  const redisReply *verdicts = NULL, *snap = snap_of(b);
  if (pr.kind == LIVE_REPLY_OK && rep->elements == 3 && rep->element[2]->type == REDIS_REPLY_ARRAY)
    verdicts = rep->element[2];
  if (verdicts) room_learn_seq(r, pr.seq);
  if (verdicts && snap) {
    meta_from(r, snap->element[1 + RSTORE_SNAP_META]);
    learn_members(r, snap->element[1 + RSTORE_SNAP_MEMBERS]);
  }
  batch_snap bs = {.snap = snap};
  size_t i = 0;
  for (live_op *o = list, *next; o; o = next, i++) {
    next = o->jnext;
    o->jnext = NULL;
    o->in_cb = 1; /* as in its own reply: a send that fails leaves it to us */
    ws_sess *s = live_op_sess(o);
    if (!verdicts) {
      if (!live_reply_failed(o, rep) && s)
        ws_send_err(s, o->rid, PROTO_INTERNAL, "The room answered in an unknown shape.");
    } else if (s) {
      const redisReply *v = i < verdicts->elements ? verdicts->element[i] : NULL;
      const char *verdict = v && v->type == REDIS_REPLY_STRING ? v->str : "not_found";
      if (!strcmp(verdict, "ok")) {
        join_one(o, &bs, pr.seq);
      } else if (!strcmp(verdict, "forbidden") && o->r7_skipped == 1) {
        /* the hint was stale (the learner was taken out): ask R7 this time */
        o->r7_skipped = -1;
        o->in_cb = 0;
        join_send(o);
        continue;
      } else {
        join_refused(s, o->rid, verdict);
      }
    }
    o->in_cb = 0;
    if (!o->inflight) live_op_free(o);
  }
  if (bs.state) snap_read_free(&bs.x);
  join_flush(r); /* those that came meanwhile */
}

/* Sends the room's queued joins as one call (a host's join alone, since the
 * event names one role); nothing while a call is in flight. */
static void join_flush(lroom *r) {
  if (r->join_inflight || !r->jq) return;
  room_hold(r);
  rstore_joiner j[JOIN_BATCH_MAX];
  live_op *list = NULL, **tail = &list;
  uint32_t n = 0;
  int snap = 0; /* some joiner needs the snapshot (a sync's gets what it missed) */
  while (r->jq && n < JOIN_BATCH_MAX) {
    live_op *o = r->jq;
    ws_sess *s = live_op_sess(o);
    int host = s && ws_user(s) == r->host;
    if (s && n > 0 && (host || j[0].is_host)) break;
    r->jq = o->jnext;
    o->jnext = NULL;
    if (!s) { /* gone while it waited */
      live_op_free(o);
      continue;
    }
    j[n++] = (rstore_joiner){
        .user = ws_user(s), .is_host = host, .may_add = o->may_add, .name = ws_user_name(s)};
    snap |= !o->is_sync;
    *tail = o;
    tail = &o->jnext;
  }
  if (!r->jq) r->jq_tail = &r->jq;
  if (n > 0) {
    live_op *b = live_op_new(join_batch_reply, NULL, PROTO_NO_RID, r);
    if (b && live_redis_ready()) {
      rstore_call rc = live_rcall(r);
      rstore_cmd c;
      rstore_join(&c, &rc, j, n, L.d->cfg.max_room_learners);
      b->extra = list;
      r->join_inflight = 1;
      r->jq_last_ms = uv_now(L.d->loop);
      if ((snap ? live_op_send_snap(b, &c) : live_op_send(b, &c)) != 0) {
        /* not sent (b is freed): every joiner hears it */
        r->join_inflight = 0;
        b = NULL;
      } else {
        list = NULL;
      }
    } else if (b) {
      live_op_free(b);
    }
    for (live_op *o = list, *next; o; o = next) {
      next = o->jnext;
      ws_sess *s = live_op_sess(o);
      if (s)
        ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                    "Live rooms are unavailable for a moment; try again shortly.");
      live_op_free(o);
    }
  }
  room_release(r);
}

static void on_join_tick(uv_timer_t *t) {
  (void)t;
  L.joins.armed = 0;
  lroom *due = L.joins.due;
  L.joins.due = NULL;
  for (lroom *r = due, *next; r; r = next) {
    next = r->jq_next;
    r->jq_next = NULL;
    r->jq_listed = 0;
    join_flush(r);
    room_release(r); /* the list's hold (join_send) */
  }
}

/* Queues the op's join on its room; it leaves now, or with the others that
 * come within cfg.join_batch_ms. */
static void join_send(live_op *o) {
  lroom *r = o->r;
  ws_sess *s = live_op_sess(o);
  OTJ_ASSERT(!o->in_cb); /* the queue owns it from here */
  if (!s) {
    live_op_free(o);
    return;
  }
  /* a learner who is not a member yet comes in only under R7; one the room
   * lists needs no query (room.lua checks membership itself, and a stale
   * hint comes back as a refusal that is retried with the query) */
  int host = ws_user(s) == r->host;
  o->r7_skipped = !host && o->r7_skipped == 0 && seems_member(r, ws_user(s));
  o->may_add = !host && !o->r7_skipped && room_may_join(L.d->db, r->host, ws_user(s), r->module);
  if (!r->jq) r->jq_tail = &r->jq;
  *r->jq_tail = o;
  r->jq_tail = &o->jnext;
  uint64_t now = uv_now(L.d->loop), wait = L.d->cfg.join_batch_ms;
  if (!r->join_inflight && (wait == 0 || now - r->jq_last_ms >= wait)) {
    join_flush(r); /* the first after a quiet spell goes at once */
    return;
  }
  if (r->join_inflight || r->jq_listed) return; /* the reply or the tick takes it */
  /* the list holds the room: a reply may send and finish its queue before
   * the tick, and the room must not be freed while listed */
  room_hold(r);
  r->jq_listed = 1;
  r->jq_next = L.joins.due;
  L.joins.due = r;
  if (!L.joins.armed) {
    L.joins.armed = 1;
    uv_timer_start(&L.joins.timer, on_join_tick, wait, 0);
  }
}

void live_join_start(otjd *d) {
  uv_timer_init(d->loop, &L.joins.timer);
  uv_unref((uv_handle_t *)&L.joins.timer);
  L.joins.timer_ready = 1;
}

void live_join_stop(void) {
  if (L.joins.timer_ready) {
    uv_timer_stop(&L.joins.timer);
    uv_close((uv_handle_t *)&L.joins.timer, NULL);
    L.joins.timer_ready = 0;
  }
  lroom *due = L.joins.due;
  L.joins.due = NULL;
  /* what still waits is dropped (the connections close with the server);
   * freed after the walk, since a freed op may free its room */
  live_op *drop = NULL;
  for (size_t i = 0; i < LIVE_BUCKETS; i++)
    for (lroom *r = L.tab[i]; r; r = r->hnext) {
      while (r->jq) {
        live_op *o = r->jq;
        r->jq = o->jnext;
        o->jnext = drop;
        drop = o;
      }
      r->jq_tail = &r->jq;
    }
  for (lroom *r = due, *next; r; r = next) { /* the list's holds */
    next = r->jq_next;
    r->jq_next = NULL;
    r->jq_listed = 0;
    room_release(r);
  }
  for (live_op *o = drop, *next; o; o = next) {
    next = o->jnext;
    live_op_free(o);
  }
}

static void join_meta_reply(live_op *o, redisReply *rep) {
  if (live_reply_failed(o, rep) || !live_op_sess(o)) return;
  if (rep->elements >= 3) meta_from(o->r, rep->element[2]);
  if (!o->r->meta_known) {
    ws_send_err(live_op_sess(o), o->rid, PROTO_NOT_FOUND, "This room's module no longer exists.");
    return;
  }
  /* the join goes on as an op of its own: this one is freed after its
   * reply, while the join may wait in the room's queue */
  live_op *j = live_op_new(NULL, live_op_sess(o), o->rid, o->r);
  if (!j) return;
  j->is_sync = o->is_sync;
  j->since = o->since;
  join_send(j);
}

static void join_subscribed(void *arg, int ok) {
  live_op *o = arg;
  ws_sess *s = live_op_sess(o);
  if (!ok || !s) {
    if (s)
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "Could not reach the room; try again shortly.");
    live_op_free(o);
    return;
  }
  if (o->r->meta_known) {
    join_send(o);
    return;
  }
  /* who hosts it and which module it is decide who may come in */
  rstore_call rc = live_rcall(o->r);
  rstore_cmd c;
  rstore_meta(&c, &rc);
  o->fn = join_meta_reply;
  live_op_send(o, &c);
}

/* Joins s to room_id: subscribe, (meta,) join script, snapshot or sync. */
static void start_join(ws_sess *s, proto_rid rid, const char *room_id, int is_sync,
                       uint64_t since) {
  lroom *r = room_get(room_id);
  if (!r) {
    ws_send_err(s, rid, PROTO_INTERNAL, "Out of memory.");
    return;
  }
  live_op *o = live_op_new(NULL, s, rid, r);
  if (!o) return;
  o->is_sync = is_sync;
  o->since = since;
  live_when_subscribed(r, join_subscribed, o);
}

/* Wrong codes per user and minute: a code is 6 digits, guessing stays slow. */
static int code_throttled(int64_t user, int count) {
  size_t i = (size_t)((uint64_t)user % LIVE_THROTTLE_SLOTS);
  uint64_t minute = (uint64_t)time(NULL) / 60;
  if (L.wrong[i].minute != minute) {
    L.wrong[i].minute = minute;
    L.wrong[i].n = 0;
  }
  if (count) L.wrong[i].n++;
  return L.wrong[i].n >= LIVE_WRONG_CODES;
}

static void code_reply(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  live_op *o = priv;
  redisReply *rep = reply;
  ws_sess *s = live_op_sess(o);
  if (s) {
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "Could not look the code up; try again shortly.");
    } else if (rep->type != REDIS_REPLY_STRING || rep->len > PROTO_MAX_ROOM) {
      code_throttled(ws_user(s), 1);
      ws_send_err(s, o->rid, PROTO_NOT_FOUND,
                  "No live room has that code; check the code on the "
                  "responsible's screen.");
    } else {
      char room[PROTO_MAX_ROOM + 1];
      memcpy(room, rep->str, rep->len);
      room[rep->len] = '\0';
      start_join(s, o->rid, room, 0, 0);
    }
  }
  live_op_free(o);
}

void live_join(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  if (m->join.has_room) {
    char room[PROTO_MAX_ROOM + 1];
    live_copy_str(room, sizeof room, m->join.room);
    start_join(s, rid, room, 0, 0);
    return;
  }
  if (code_throttled(ws_user(s), 0)) {
    ws_send_err(s, rid, PROTO_RATE_LIMITED, "Too many wrong codes; wait a minute and try again.");
    return;
  }
  char code[PROTO_MAX_CODE + 1], key[64];
  live_copy_str(code, sizeof code, m->join.code);
  rstore_code_key(code, key, sizeof key);
  live_op *o = live_op_new(NULL, s, rid, NULL);
  if (!o) return;
  if (!live_redis_ready() || rconn_command(L.d->redis, code_reply, o, "GET %s", key) != 0) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
    live_op_free(o);
  }
}

void live_sync(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = att_find(s, m->sync.room);
  if (a) att_touch(a);
  if (!a) {
    char room[PROTO_MAX_ROOM + 1];
    live_copy_str(room, sizeof room, m->sync.room);
    start_join(s, rid, room, 1, m->sync.since);
    return;
  }
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_sync(&c, &rc, m->sync.since);
  live_op *o = live_call(&c, sync_reply, s, rid, a->r);
  if (o) o->since = m->sync.since;
}

/* ---- open ------------------------------------------------------------------------- */

typedef struct open_ctx {
  char room[LIVE_ROOM_ID_LEN + 1];
  char code[8];
  int64_t module;
  int64_t host; /* the responsible who opens it */
  char title[128];
  uint32_t n;
  int64_t ids[PROTO_MAX_LEARNERS];
  char names[PROTO_MAX_LEARNERS][128];
  int tries;
  room_module *mod; /* the tasks as the room opens with them, until the room holds them */
} open_ctx;

static void open_ctx_free(void *p) {
  open_ctx *x = p;
  if (x) room_module_free(x->mod);
  free(x);
}

void live_drop_code(const char *code) {
  char key[64];
  rstore_code_key(code, key, sizeof key);
  rconn_command(L.d->redis, NULL, NULL, "DEL %s", key);
}

static void open_reply(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  open_ctx *x = o->extra;
  if (live_reply_failed(o, rep)) {
    /* no room in Redis: its history row and join code go too */
    live_record_closed(x->room, NULL, (proto_rid){0}, 0);
    live_drop_code(x->code);
    return;
  }
  log_event(LOG_INFO, "room opened", "room=%s module=%lld host=%lld learners=%u", x->room,
            (long long)x->module, (long long)x->host, x->n);
  if (!s) return;
  for (uint32_t i = 0; i < x->n; i++)
    dash_invite(x->ids[i], x->room, x->code, x->module, x->title, ws_user(s), ws_user_name(s));
  start_join(s, o->rid, x->room, 0, 0);
}

/* The code is ours: the room goes into the history, then into Redis. */
static void open_room(live_op *o, ws_sess *s, open_ctx *x) {
  uint32_t ntasks = x->mod->n_tasks;
  uint64_t digest = x->mod->digest;
  lroom *r = room_get(x->room);
  if (!r) {
    live_record_closed(x->room, NULL, (proto_rid){0}, 0);
    live_drop_code(x->code);
    live_op_free(o);
    return;
  }
  if (!r->mod) { /* the room's tasks are those the module had as it opened */
    r->mod = x->mod;
    x->mod = NULL;
  }
  o->r = r;
  room_hold(r);
  rstore_member learners[PROTO_MAX_LEARNERS];
  for (uint32_t i = 0; i < x->n; i++) learners[i] = (rstore_member){x->ids[i], x->names[i]};
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_open(&c, &rc, ws_user(s), x->module, x->code, ntasks, digest, learners, x->n);
  o->fn = open_reply;
  live_op_send(o, &c);
}

static void open_try_code(live_op *o); /* a cycle: a taken code tries again */

static void open_code_reply(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  live_op *o = priv;
  redisReply *rep = reply;
  ws_sess *s = live_op_sess(o);
  open_ctx *x = o->extra;
  if (!s) {
    live_op_free(o);
    return;
  }
  if (!rep || rep->type == REDIS_REPLY_ERROR) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "Could not open the room; try again shortly.");
    live_op_free(o);
    return;
  }
  if (rep->type == REDIS_REPLY_NIL) { /* taken: another code */
    if (++x->tries >= LIVE_CODE_TRIES) {
      ws_send_err(s, o->rid, PROTO_INTERNAL, "No free join code was found.");
      live_op_free(o);
      return;
    }
    open_try_code(o);
    return;
  }
  /* the code is ours. The room goes into SQLite's history first: a room
   * that is not there has no QR code and escapes the rooms-per-responsible
   * cap, so when it cannot be written (a lock held elsewhere, a full disk)
   * the open is refused and the code let go. d->db waits only briefly for a
   * lock (cfg.db_loop_busy_ms). */
  unsigned char secret[STORE_CONFIRM_SECRET_LEN]; /* learner confirmation's codes */
  randombytes_buf(secret, sizeof secret);
  int rec = store_room_opened(L.d->db, x->room, x->module, ws_user(s), x->code, (int64_t)time(NULL),
                              secret);
  sodium_memzero(secret, sizeof secret);
  if (rec != 0) {
    live_drop_code(x->code);
    if (rec == STORE_CONFLICT && ++x->tries < LIVE_CODE_TRIES) {
      /* the code of a room that expired from Redis without a close */
      open_try_code(o);
      return;
    }
    if (rec != STORE_BUSY)
      log_event(LOG_ERROR, "recording the opening of a room failed", "room=%s error=%s", x->room,
                store_errmsg(L.d->db));
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The room could not be recorded; try again shortly.");
    live_op_free(o);
    return;
  }
  open_room(o, s, x);
}

static void open_try_code(live_op *o) {
  open_ctx *x = o->extra;
  snprintf(x->code, sizeof x->code, "%06u", (unsigned)randombytes_uniform(1000000));
  char key[64];
  rstore_code_key(x->code, key, sizeof key);
  if (rconn_command(L.d->redis, open_code_reply, o, "SET %s %s NX EX %u", key, x->room,
                    L.d->cfg.room_idle_ttl_s) != 0) {
    ws_sess *s = live_op_sess(o);
    if (s)
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                  "Live rooms are unavailable for a moment; try again shortly.");
    live_op_free(o);
  }
}

/* The learners of an open: each once, each under R7. Returns 0, or -1 with
 * the refusal sent. */
static int open_learners(ws_sess *s, proto_rid rid, const proto_msg *m, const store_module *mod,
                         open_ctx *x) {
  for (uint32_t i = 0; i < m->open.n_learners; i++) {
    int64_t id = (int64_t)m->open.learners[i];
    int dup = 0;
    for (uint32_t k = 0; k < x->n; k++) dup |= x->ids[k] == id;
    if (dup) continue;
    store_user u;
    if (store_user_by_id(L.d->db, id, &u) != 0 ||
        !room_may_join(L.d->db, ws_user(s), id, mod->id)) {
      char msg[256];
      snprintf(msg, sizeof msg, "Learner %lld is not waiting for \"%s\" within your reach.",
               (long long)id, mod->title);
      ws_send_err(s, rid, PROTO_FORBIDDEN, msg);
      return -1;
    }
    x->ids[x->n] = id;
    snprintf(x->names[x->n], sizeof x->names[0], "%s", u.name);
    x->n++;
  }
  return 0;
}

/* The module's tasks as the room will hold them. Returns 0, or -1 with the
 * refusal sent. */
static int open_module(ws_sess *s, proto_rid rid, const store_module *mod, open_ctx *x) {
  int lc = room_module_load(L.d->db, mod->id, &x->mod);
  if (lc == 0) return 0;
  if (lc == STORE_INVALID) {
    char msg[PROTO_ERR_MSG_MAX];
    snprintf(msg, sizeof msg,
             "\"%.40s\" does not fit a room (at most %d tasks, %d options "
             "per question); an administrator must shorten it first.",
             mod->title, ROOM_MAX_TASKS, ROOM_MAX_OPTIONS);
    ws_send_err(s, rid, PROTO_TOO_LARGE, msg);
  } else {
    ws_send_err(s, rid, PROTO_INTERNAL, "The module's tasks could not be read.");
  }
  return -1;
}

void live_open(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  if (!ws_is_responsible(s)) {
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "Only a responsible (Management with Facilitate OTJ) may open "
                "a room.");
    return;
  }
  store_module mod;
  if (m->open.module > INT64_MAX ||
      store_module_by_id(L.d->db, (int64_t)m->open.module, &mod) != 0) {
    ws_send_err(s, rid, PROTO_NOT_FOUND, "There is no such module.");
    return;
  }
  if (!mod.otj) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST, "That module is not an On-the-Job training module.");
    return;
  }
  if (!live_redis_ready()) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
    return;
  }
  if (m->open.n_learners > L.d->cfg.max_room_learners) {
    ws_send_err(s, rid, PROTO_TOO_LARGE, "Too many learners for one room.");
    return;
  }
  /* before the room is made: a room its host cannot be in would stay open
   * with nobody to run it */
  if (att_count(s) >= LIVE_ATTACH_MAX && !live_let_go_closed(s)) {
    ws_send_err(s, rid, PROTO_TOO_LARGE, LIVE_TOO_MANY_ROOMS);
    return;
  }
  int64_t now = (int64_t)time(NULL);
  int open_rooms =
      store_rooms_open_count(L.d->db, ws_user(s), now - (int64_t)L.d->cfg.room_idle_ttl_s);
  if (open_rooms >= (int)L.d->cfg.max_rooms_per_responsible) {
    ws_send_err(s, rid, PROTO_RATE_LIMITED, "You have too many open rooms; close one first.");
    return;
  }
  open_ctx *x = calloc(1, sizeof *x);
  if (!x) return;
  if (open_module(s, rid, &mod, x) != 0 || open_learners(s, rid, m, &mod, x) != 0) {
    open_ctx_free(x);
    return;
  }
  x->module = mod.id;
  x->host = ws_user(s);
  snprintf(x->title, sizeof x->title, "%s", mod.title);
  static const char alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
  for (int i = 0; i < LIVE_ROOM_ID_LEN; i++)
    x->room[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
  live_op *o = live_op_new(NULL, s, rid, NULL);
  if (!o) {
    open_ctx_free(x);
    return;
  }
  o->extra = x;
  o->extra_free = open_ctx_free;
  open_try_code(o);
}
