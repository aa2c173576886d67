/*
 * live_room — the rooms of this instance: the room table, the attachments
 * of connections to rooms, and the path of an event from the room's channel
 * to every connection here: order, gap repair, delivery.
 *
 * The one design idea: a member never sees a hole or a repeat. Events are
 * numbered by room.lua (the room's gapless seq); each room keeps a ring of
 * the recent ones and delivers strictly in seq order. An event after a gap
 * is held, the missing ones are fetched from the room's log, and delivery
 * goes on when the hole is filled. The ring itself (ev_ring_*) knows nothing
 * of sockets or Redis, so its rules are tested alone (tests/unit/test_live.c).
 * Each event is framed at most twice per instance (whole, redacted), and the
 * same refcounted frame is queued on every session that may see it.
 */
#include "live_int.h"
#include "log.h"
#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- events ---------------------------------------------------------------- */

/* The `type` of an event's whole map, wherever the key stands (room.lua's
 * beat writes its maps with cmsgpack, whose key order is not ours). */
static void ev_read_type(ev_msg *e) {
  e->type[0] = '\0';
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)e->whole, e->wlen, NULL) == MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_MAP) {
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
      const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
      if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 4 &&
          !memcmp(k->via.str.ptr, "type", 4) && v->type == MSGPACK_OBJECT_STR &&
          v->via.str.size < sizeof e->type) {
        memcpy(e->type, v->via.str.ptr, v->via.str.size);
        e->type[v->via.str.size] = '\0';
        break;
      }
    }
  }
  msgpack_unpacked_destroy(&u);
}

static int key_is(const msgpack_object *k, const char *name) {
  size_t n = strlen(name);
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && !memcmp(k->via.str.ptr, name, n);
}

/* A group mark's learners (room.lua's group `mark`: a `learners` array in a
 * map whose type is "mark"): counts them, and with e set fills its group
 * fields (pointing into `w`, which must be e->whole). Returns the count, 0
 * for any other event. */
static uint32_t group_scan(const uint8_t *w, size_t wl, ev_msg *e) {
  uint32_t n = 0;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)w, wl, NULL) != MSGPACK_UNPACK_SUCCESS ||
      u.data.type != MSGPACK_OBJECT_MAP)
    goto out;
  const msgpack_object_map *m = &u.data.via.map;
  const msgpack_object *type = NULL, *learners = NULL, *task = NULL, *result = NULL, *note = NULL;
  for (uint32_t i = 0; i < m->size; i++) {
    const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
    if (key_is(k, "type")) type = v;
    if (key_is(k, "learners")) learners = v;
    if (key_is(k, "task")) task = v;
    if (key_is(k, "result")) result = v;
    if (key_is(k, "note")) note = v;
  }
  if (!type || !key_is(type, "mark") || !learners || learners->type != MSGPACK_OBJECT_ARRAY ||
      !task || task->type != MSGPACK_OBJECT_POSITIVE_INTEGER || task->via.u64 > UINT32_MAX)
    goto out;
  for (uint32_t i = 0; i < learners->via.array.size; i++)
    if (learners->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) goto out;
  n = learners->via.array.size;
  if (!e) goto out;
  e->ngroup = n;
  for (uint32_t i = 0; i < n; i++) e->group[i] = learners->via.array.ptr[i].via.u64;
  e->gtask = (uint32_t)task->via.u64;
  e->gresult = result && key_is(result, "fail") ? PROTO_RESULT_FAIL : PROTO_RESULT_PASS;
  e->ghas_note = note && note->type == MSGPACK_OBJECT_STR;
  if (e->ghas_note) /* the unpacker points into w: the note stays inside e */
    e->gnote = (proto_str){note->via.str.ptr, note->via.str.size};
out:
  msgpack_unpacked_destroy(&u);
  return n;
}

_Static_assert(offsetof(ev_msg, bytes) % sizeof(uint64_t) == 0, "group ids are aligned");

ev_msg *ev_parse(const char *data, size_t len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ev_msg *e = NULL;
  size_t off = 0;
  if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS) goto out;
  msgpack_object o = u.data;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4) goto out;
  msgpack_object *a = o.via.array.ptr;
  if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[2].type != MSGPACK_OBJECT_STR ||
      a[3].type != MSGPACK_OBJECT_STR)
    goto out;
  size_t wl = a[2].via.str.size, rl = a[3].via.str.size;
  uint32_t ng = a[1].via.u64 == 0 ? group_scan((const uint8_t *)a[2].via.str.ptr, wl, NULL) : 0;
  size_t gl = (size_t)ng * sizeof(uint64_t);
  e = malloc(sizeof *e + gl + wl + rl);
  if (!e) goto out;
  memset(e, 0, sizeof *e);
  e->seq = a[0].via.u64;
  e->subject = a[1].via.u64;
  e->wlen = wl;
  e->rlen = rl;
  e->group = (uint64_t *)(void *)e->bytes;
  e->whole = e->bytes + gl;
  e->red = e->bytes + gl + wl;
  memcpy(e->whole, a[2].via.str.ptr, wl);
  memcpy(e->red, a[3].via.str.ptr, rl);
  ev_read_type(e);
  if (ng) group_scan(e->whole, wl, e);
  e->sent_ms = 0;
  if (off < len && msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && u.data.via.u64 <= INT64_MAX)
    e->sent_ms = (int64_t)u.data.via.u64;
out:
  msgpack_unpacked_destroy(&u);
  return e;
}

int ev_is(const ev_msg *e, const char *type) { return !strcmp(e->type, type); }

/* ---- ordering and gaps: the ring ------------------------------------------- */

static void ring_put(ev_ring *g, ev_msg *e) {
  OTJ_ASSERT(e->seq == g->seq + 1); /* in order, never twice */
  g->seq = e->seq;
  free(g->slot[e->seq % LIVE_RING]);
  g->slot[e->seq % LIVE_RING] = e;
}

/* Holds an event that comes after a gap, sorted by seq; a duplicate, or one
 * over the cap, is dropped (the log has it). */
static void ring_hold(ev_ring *g, ev_msg *e) {
  ev_msg **pp = &g->pend;
  while (*pp && (*pp)->seq < e->seq) pp = &(*pp)->next;
  if ((*pp && (*pp)->seq == e->seq) || g->npend >= LIVE_PENDING_MAX) {
    free(e);
    return;
  }
  e->next = *pp;
  *pp = e;
  g->npend++;
}

static ev_msg *ring_pop_next(ev_ring *g) {
  if (!g->pend || g->pend->seq > g->seq + 1) return NULL;
  ev_msg *n = g->pend;
  g->pend = n->next;
  g->npend--;
  n->next = NULL;
  return n;
}

int ev_ring_accept(ev_ring *g, ev_msg *e, ev_deliver_fn *deliver, void *ud) {
  if (!g->seq_known) {
    /* the first event after subscribing: it defines where we are */
    g->seq_known = 1;
    g->seq = e->seq - 1;
  }
  if (e->seq <= g->seq) {
    free(e);
    return 0;
  }
  if (e->seq > g->seq + 1) {
    /* a gap: hold it, the caller fetches what is missing */
    ring_hold(g, e);
    return 1;
  }
  ring_put(g, e);
  deliver(ud, e);
  /* held events that now follow on */
  for (ev_msg *n; (n = ring_pop_next(g)) != NULL;) {
    if (n->seq <= g->seq) {
      free(n);
      continue;
    }
    ring_put(g, n);
    deliver(ud, n);
  }
  return 0;
}

int ev_ring_learn(ev_ring *g, uint64_t seq, ev_deliver_fn *deliver, void *ud) {
  if (g->seq_known) return 0;
  g->seq_known = 1;
  g->seq = seq;
  /* events that raced ahead of the reply that told the seq */
  int gap = 0;
  for (ev_msg *n; (n = ring_pop_next(g)) != NULL;) gap |= ev_ring_accept(g, n, deliver, ud);
  return gap;
}

static void ring_drop_held(ev_ring *g) {
  for (ev_msg *e = g->pend, *n; e; e = n) {
    n = e->next;
    free(e);
  }
  g->pend = NULL;
  g->npend = 0;
}

void ev_ring_restart(ev_ring *g, uint64_t seq) {
  g->seq = seq;
  ring_drop_held(g);
}

const ev_msg *ev_ring_get(const ev_ring *g, uint64_t seq) {
  const ev_msg *e = g->slot[seq % LIVE_RING];
  return e && e->seq == seq ? e : NULL;
}

uint64_t ev_ring_from(const ev_ring *g, uint64_t last) {
  uint64_t from = last + 1;
  if (g->seq >= LIVE_RING && from <= g->seq - LIVE_RING) from = g->seq - LIVE_RING + 1;
  return from;
}

void ev_ring_free(ev_ring *g) {
  for (int i = 0; i < LIVE_RING; i++) {
    free(g->slot[i]);
    g->slot[i] = NULL;
  }
  ring_drop_held(g);
}

/* ---- delivery ---------------------------------------------------------------- */

/* The two frames of an event being delivered (whole, redacted), each made
 * at most once and shared by every session that gets it. */
static void variants_reset(void) {
  for (int i = 0; i < 2; i++) {
    ws_frame_put(L.variant[i]);
    L.variant[i] = NULL;
  }
}

/* The visibility rule for a stored event: proto_record_hidden_for, keyed on
 * the event's subject (the learner room.lua's emit names). */
static int hidden_for(const attach *a, const ev_msg *e) {
  proto_viewer v = {.user = (uint64_t)ws_user(a->s), .is_host = a->host != 0};
  return e->rlen > 0 && proto_record_hidden_for(e->subject, v);
}

/* A learner of a group mark gets the event about them alone: a frame of
 * their own (group marks are rare; the others share the two variants). */
static int send_own_part(attach *a, const ev_msg *e) {
  proto_viewer v = {.user = (uint64_t)ws_user(a->s), .is_host = a->host != 0};
  if (!e->ngroup || proto_group_view(e->group, e->ngroup, v) != PROTO_VIEW_OWN) return 0;
  proto_event ev = {.type = PROTO_EV_MARK,
                    .mark = {.learner = v.user,
                             .task = e->gtask,
                             .result = e->gresult,
                             .has_note = e->ghas_note != 0,
                             .note = e->gnote}}; /* a group mark carries no evidence */
  proto_buf_clear(&L.fr);
  if (proto_encode_ev(&L.fr, proto_s(a->r->id), e->seq, &ev, false) == 0) {
    ws_frame *f = ws_frame_new(proto_buf_bytes(&L.fr), proto_buf_size(&L.fr));
    if (f) {
      ws_send_frame(a->s, f);
      ws_frame_put(f);
    }
  }
  return 1;
}

static void send_variant(attach *a, const ev_msg *e) {
  if (send_own_part(a, e)) return;
  int red = hidden_for(a, e);
  if (!L.variant[red]) {
    proto_buf *b = red ? &L.fr : &L.fw;
    proto_buf_clear(b);
    const uint8_t *body = red ? e->red : e->whole;
    size_t len = red ? e->rlen : e->wlen;
    if (proto_encode_ev_raw(b, proto_s(a->r->id), e->seq, body, len) != 0) return;
    L.variant[red] = ws_frame_new(proto_buf_bytes(b), proto_buf_size(b));
    if (!L.variant[red]) return;
  }
  ws_send_frame(a->s, L.variant[red]);
}

void room_send_event(attach *a, const ev_msg *e) {
  variants_reset();
  send_variant(a, e);
  variants_reset();
}

static void after_delivery(lroom *r, const ev_msg *e) {
  if (!ev_is(e, "removed")) return;
  /* a removed learner's connections leave the room after the news */
  for (attach *a = r->atts, *n; a; a = n) {
    n = a->rnext;
    if (!a->host && (uint64_t)ws_user(a->s) == e->subject) att_remove(a);
  }
}

/* Sends one in-order event to every ready attachment that lacks it. */
static void deliver_now(lroom *r, const ev_msg *e) {
  variants_reset();
  for (attach *a = r->atts; a; a = a->rnext) {
    if (!a->ready || e->seq <= a->last) continue;
    send_variant(a, e);
    a->last = e->seq;
  }
  variants_reset();
  after_delivery(r, e);
}

/* ---- presence news, held ------------------------------------------------------
 * Who came and who went waits up to cfg.presence_hold_ms for more news of
 * the room, and then all of it goes at once: each member's connection gets
 * the held events in one write, where a shift scanning the room's code made
 * one write per member per join (in a room of 30, most of a join's cost is
 * the kernel's sends of `joined` to the others). Any other event sends what
 * is held first, so answers and marks are never late and order is kept;
 * held events stay in the ring, so a connection that becomes ready meanwhile
 * gets them from there. */

static int is_presence(const ev_msg *e) {
  return !strcmp(e->type, "joined") || !strcmp(e->type, "left");
}

/* Sends what room r holds (in seq order, each event's frames made once). */
static void hold_release(lroom *r) {
  uint64_t from = r->held_from, to = r->held_to;
  r->held_from = r->held_to = 0;
  for (uint64_t q = from; from && q <= to; q++) {
    const ev_msg *e = ev_ring_get(&r->ring, q);
    if (e) deliver_now(r, e);
  }
}

static void on_hold_due(uv_timer_t *t);

/* Takes the first room off the list and sends what it holds. */
static void hold_pop(void) {
  lroom *r = L.holds.head;
  L.holds.head = r->held_next;
  if (!L.holds.head) L.holds.tail = &L.holds.head;
  r->held_next = NULL;
  r->held_due_ms = 0;
  hold_release(r);
  room_release(r); /* the list's hold */
}

static void hold_arm(void) {
  lroom *r = L.holds.head;
  if (!r) return;
  uint64_t now = uv_now(L.d->loop);
  uv_timer_start(&L.holds.timer, on_hold_due, r->held_due_ms > now ? r->held_due_ms - now : 0, 0);
}

/* Rooms are listed in the order they are due (one hold time for all). */
static void on_hold_due(uv_timer_t *t) {
  (void)t;
  uint64_t now = uv_now(L.d->loop);
  while (L.holds.head && L.holds.head->held_due_ms <= now) hold_pop();
  hold_arm();
}

/* Delivers one in-order event (the ring's deliver): presence news is held
 * while the room has nothing else to say. */
static void deliver(void *ud, const ev_msg *e) {
  lroom *r = ud;
  uint32_t hold = L.d->cfg.presence_hold_ms;
  if (hold && L.holds.timer_ready && is_presence(e)) {
    if (!r->held_from) r->held_from = e->seq;
    r->held_to = e->seq;
    if (!r->held_due_ms) { /* listed: the list holds the room */
      room_hold(r);
      r->held_due_ms = uv_now(L.d->loop) + hold;
      *L.holds.tail = r;
      L.holds.tail = &r->held_next;
      if (L.holds.head == r) hold_arm();
    }
    /* never more than the ring keeps */
    if (r->held_to - r->held_from + 1 >= LIVE_RING / 2) hold_release(r);
    return;
  }
  if (!strcmp(e->type, "closed")) r->closed = 1;
  hold_release(r);
  deliver_now(r, e);
}

void live_hold_start(otjd *d) {
  uv_timer_init(d->loop, &L.holds.timer);
  uv_unref((uv_handle_t *)&L.holds.timer);
  L.holds.head = NULL;
  L.holds.tail = &L.holds.head;
  L.holds.timer_ready = 1;
}

void live_hold_stop(void) {
  if (!L.holds.timer_ready) return;
  uv_timer_stop(&L.holds.timer);
  uv_close((uv_handle_t *)&L.holds.timer, NULL);
  L.holds.timer_ready = 0;
  while (L.holds.head) hold_pop();
}

/* Takes e. The room is held meanwhile: a delivery may detach its last
 * connection here. */
static void room_accept(lroom *r, ev_msg *e) {
  room_hold(r);
  if (ev_ring_accept(&r->ring, e, deliver, r)) room_fetch_gap(r);
  room_release(r);
}

/* A message on the room's channel. */
void room_on_event(const char *room_id, const char *data, size_t len) {
  lroom *r = room_find(room_id);
  if (!r) return; /* nobody here is in that room any more */
  ev_msg *e = ev_parse(data, len);
  if (!e) return;
  if (e->sent_ms) { /* the pub/sub hop; another host's clock may be a little ahead */
    int64_t ms = live_wall_ms() - e->sent_ms;
    metrics_observe(&metrics.pubsub, ms > 0 ? (uint64_t)ms * 1000000u : 0);
  }
  room_accept(r, e);
}

void room_learn_seq(lroom *r, uint64_t seq) {
  room_hold(r);
  if (ev_ring_learn(&r->ring, seq, deliver, r)) room_fetch_gap(r);
  room_release(r);
}

void room_catch_up(attach *a) {
  const ev_ring *g = &a->r->ring;
  if (!g->seq_known) return;
  for (uint64_t q = ev_ring_from(g, a->last); q <= g->seq; q++) {
    const ev_msg *e = ev_ring_get(g, q);
    if (!e) continue;
    room_send_event(a, e);
    a->last = q;
  }
}

/* ---- gap repair ---------------------------------------------------------------- */

/* The events after the ring's seq, from the room's log. */
static void gap_reply(live_op *o, redisReply *rep) {
  lroom *r = o->r;
  r->fetching = 0;
  live_reply y = live_reply_parse(rep);
  if (y.kind == LIVE_REPLY_ERR && y.code == PROTO_NOT_FOUND) {
    /* the room is gone from the store (it expired, or a Redis without
     * persistence restarted): its connections are told and let go */
    log_event(LOG_INFO, "room ended", "room=%s module=%lld host=%lld why=gone_from_redis", r->id,
              (long long)r->module, (long long)r->host);
    for (attach *a = r->atts, *n; a; a = n) {
      n = a->rnext;
      ws_send_err(a->s, PROTO_NO_RID, PROTO_NOT_FOUND,
                  "This room has ended; ask the responsible to open a new one.");
      att_remove(a);
    }
  } else if (y.kind == LIVE_REPLY_OK) {
    for (size_t i = 2; i < rep->elements; i++) {
      redisReply *x = rep->element[i];
      if (x->type != REDIS_REPLY_STRING) continue;
      ev_msg *e = ev_parse(x->str, x->len);
      if (e) room_accept(r, e);
    }
  } else if (y.kind == LIVE_REPLY_OLD) {
    /* too far behind: every connection here gets a fresh snapshot */
    ev_ring_restart(&r->ring, y.seq);
    live_resnapshot(r);
  }
}

void room_fetch_gap(lroom *r) {
  if (r->fetching || !live_redis_ready()) return;
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_sync(&c, &rc, r->ring.seq);
  r->fetching = 1;
  if (!live_call(&c, gap_reply, NULL, PROTO_NO_RID, r)) r->fetching = 0;
}

/* ---- the room table ---------------------------------------------------------- */

static size_t g_rooms; /* rooms in the table */

size_t live_room_count(void) { return g_rooms; }

static uint32_t hash_id(const char *id) {
  uint32_t h = 2166136261u;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
  return h % LIVE_BUCKETS;
}

lroom *room_find(const char *id) {
  for (lroom *r = L.tab[hash_id(id)]; r; r = r->hnext)
    if (!strcmp(r->id, id)) return r;
  return NULL;
}

lroom *room_get(const char *id) {
  lroom *r = room_find(id);
  if (r) return r;
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  snprintf(r->id, sizeof r->id, "%s", id);
  rstore_room_keys(id, &r->keys);
  uint32_t h = hash_id(id);
  r->hnext = L.tab[h];
  L.tab[h] = r;
  g_rooms++;
  return r;
}

void room_hold(lroom *r) { r->refs++; }

void room_release(lroom *r) {
  OTJ_ASSERT(r->refs > 0);
  r->refs--;
  room_maybe_free(r);
}

void room_maybe_free(lroom *r) {
  if (r->atts || r->refs > 0 || r->waiters) return;
  uint32_t h = hash_id(r->id);
  for (lroom **pp = &L.tab[h]; *pp; pp = &(*pp)->hnext)
    if (*pp == r) {
      *pp = r->hnext;
      g_rooms--;
      break;
    }
  if (r->sub != LROOM_UNSUBSCRIBED && L.ps) psub_unsubscribe(L.ps, r->keys.chan);
  ev_ring_free(&r->ring);
  room_module_free(r->mod);
  free(r->known);
  free(r);
}

void room_destroy(lroom *r) {
  for (attach *a = r->atts, *an; a; a = an) {
    an = a->rnext;
    free(a);
  }
  for (waiter *w = r->waiters, *wn; w; w = wn) {
    wn = w->next;
    free(w);
  }
  ev_ring_free(&r->ring);
  room_module_free(r->mod);
  free(r->known);
  free(r);
  if (g_rooms) g_rooms--;
}

/* ---- attachments ------------------------------------------------------------- */

attach *att_find(ws_sess *s, proto_str room) {
  for (attach *a = *ws_live_slot(s); a; a = a->snext)
    if (proto_str_eq(room, a->r->id)) return a;
  return NULL;
}

void att_touch(attach *a) {
  attach **head = (attach **)ws_live_slot(a->s);
  if (*head == a) return;
  for (attach **pp = head; *pp; pp = &(*pp)->snext)
    if (*pp == a) {
      *pp = a->snext;
      a->snext = *head;
      *head = a;
      return;
    }
}

size_t att_count(ws_sess *s) {
  size_t n = 0;
  for (attach *a = *ws_live_slot(s); a; a = a->snext) n++;
  return n;
}

attach *att_add(ws_sess *s, lroom *r, int host) {
  attach *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->s = s;
  a->r = r;
  a->host = host;
  a->rnext = r->atts;
  if (r->atts) r->atts->rprev = a;
  r->atts = a;
  a->snext = *ws_live_slot(s);
  *ws_live_slot(s) = a;
  return a;
}

void att_remove(attach *a) {
  lroom *r = a->r;
  if (a->rprev)
    a->rprev->rnext = a->rnext;
  else
    r->atts = a->rnext;
  if (a->rnext) a->rnext->rprev = a->rprev;
  int found = 0;
  for (attach **pp = (attach **)ws_live_slot(a->s); *pp; pp = &(*pp)->snext)
    if (*pp == a) {
      *pp = a->snext;
      found = 1;
      break;
    }
  OTJ_ASSERT(found); /* an attachment is in its session's list exactly once */
  free(a);
  room_maybe_free(r);
}
