/*
 * live — rooms across instances (see live.h for the design).
 *
 * Pieces, top to bottom: events and the per-instance room (lroom) with its
 * ring of recent events; delivery in seq order with gap repair; Redis
 * plumbing (script calls, the pub/sub connection); then one handler per
 * client message; then approvals through the writer; then the dashboard.
 */
#include "live.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "psub.h"
#include "room.h"
#include "rstore.h"
#include "store.h"
#include "writer.h"
#include "ws.h"

#define LIVE_BUCKETS 4096         /* rooms hash table */
#define LIVE_RING 256             /* recent events an instance keeps per room */
#define LIVE_PENDING_MAX 4096     /* out-of-order events held per room */
#define LIVE_ATTACH_MAX 16        /* rooms one connection may be in */
#define LIVE_CODE_TRIES 20        /* attempts to find a free join code */
#define LIVE_WRONG_CODES 10       /* wrong join codes per user per minute */
#define LIVE_THROTTLE_SLOTS 4096
#define LIVE_ROOM_ID_LEN 12

/* ---- events ------------------------------------------------------------ */

/* One room event as the log and the channel carry it. */
typedef struct ev_msg {
  struct ev_msg *next; /* in a pending list */
  uint64_t seq;
  uint64_t subject;    /* learner the event is about, 0 for none */
  size_t wlen, rlen;   /* rlen 0: the same for everyone */
  uint8_t *whole, *red;
  uint8_t bytes[];
} ev_msg;

/* Parses {seq, subject, whole, redacted} (msgpack, written by room.lua). */
static ev_msg *ev_parse(const char *data, size_t len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ev_msg *e = NULL;
  if (msgpack_unpack_next(&u, data, len, NULL) != MSGPACK_UNPACK_SUCCESS)
    goto out;
  msgpack_object o = u.data;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4) goto out;
  msgpack_object *a = o.via.array.ptr;
  if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) ||
      a[2].type != MSGPACK_OBJECT_STR || a[3].type != MSGPACK_OBJECT_STR)
    goto out;
  size_t wl = a[2].via.str.size, rl = a[3].via.str.size;
  e = malloc(sizeof *e + wl + rl);
  if (!e) goto out;
  e->next = NULL;
  e->seq = a[0].via.u64;
  e->subject = a[1].via.u64;
  e->wlen = wl;
  e->rlen = rl;
  e->whole = e->bytes;
  e->red = e->bytes + wl;
  memcpy(e->whole, a[2].via.str.ptr, wl);
  memcpy(e->red, a[3].via.str.ptr, rl);
out:
  msgpack_unpacked_destroy(&u);
  return e;
}

/* The event type (first key of e is "type"); for a few actions on delivery. */
static int ev_is(const ev_msg *e, const char *type) {
  size_t tl = strlen(type);
  /* e = {type: "<t>", ...}: fixmap, fixstr "type", fixstr <t> */
  return e->wlen > 7 + tl && e->whole[1] == 0xa4 &&
         !memcmp(e->whole + 2, "type", 4) && e->whole[6] == (0xa0 | tl) &&
         !memcmp(e->whole + 7, type, tl);
}

/* ---- rooms and attachments --------------------------------------------- */

typedef struct lroom lroom;

typedef struct attach {
  struct attach *rnext, *rprev; /* in the room */
  struct attach *snext;         /* in the session */
  ws_sess *s;
  lroom *r;
  uint64_t last;   /* last seq this connection has */
  int host;
  int ready;       /* 0 while its snapshot or sync is on the way */
} attach;

typedef struct waiter { /* an op waiting for the room's subscription */
  struct waiter *next;
  void (*fn)(void *op, int ok);
  void *op;
} waiter;

struct lroom {
  lroom *hnext;
  char id[PROTO_MAX_ROOM + 1];
  rstore_keys keys;
  int sub;          /* 0 not subscribed, 1 subscribing, 2 subscribed */
  waiter *waiters;
  int seq_known;
  uint64_t seq;     /* highest seq delivered in order on this instance */
  ev_msg *ring[LIVE_RING];
  ev_msg *pend;     /* events after a gap, sorted by seq */
  size_t npend;
  int fetching;
  int meta_known;
  int64_t host, module;
  uint32_t ntasks;
  int digest_known; /* the room's record has the digest (rooms opened before it do not) */
  uint64_t digest;  /* its module's tasks as the room opened with them */
  char code[PROTO_MAX_CODE + 1];
  char host_name[128];
  room_module *mod;
  attach *atts;
  int refs;         /* ops in flight */
};

typedef struct live {
  otjd *d;
  char instance[17];  /* this process's name in presence entries */
  uv_timer_t beat;    /* presence heartbeat */
  int beat_ready;
  psub *ps;
  writer *w;
  char sha[48];
  int sha_ok;
  int up;
  lroom *tab[LIVE_BUCKETS];
  proto_buf fw, fr; /* frames of the event being delivered */
  proto_buf tmp;
  struct { uint64_t minute; uint32_t n; } wrong[LIVE_THROTTLE_SLOTS];
} live;

static live L;

static uint32_t hash_id(const char *id) {
  uint32_t h = 2166136261u;
  for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
  return h % LIVE_BUCKETS;
}

static lroom *room_find(const char *id) {
  for (lroom *r = L.tab[hash_id(id)]; r; r = r->hnext)
    if (!strcmp(r->id, id)) return r;
  return NULL;
}

static void room_subscribe(lroom *r);

static lroom *room_get(const char *id) {
  lroom *r = room_find(id);
  if (r) return r;
  r = calloc(1, sizeof *r);
  if (!r) return NULL;
  snprintf(r->id, sizeof r->id, "%s", id);
  rstore_room_keys(id, &r->keys);
  uint32_t h = hash_id(id);
  r->hnext = L.tab[h];
  L.tab[h] = r;
  return r;
}

/* Frees the room when no connection and no op needs it any more. */
static void room_maybe_free(lroom *r) {
  if (r->atts || r->refs > 0 || r->waiters) return;
  uint32_t h = hash_id(r->id);
  for (lroom **pp = &L.tab[h]; *pp; pp = &(*pp)->hnext)
    if (*pp == r) {
      *pp = r->hnext;
      break;
    }
  if (r->sub && L.ps) psub_unsubscribe(L.ps, r->keys.chan);
  for (int i = 0; i < LIVE_RING; i++) free(r->ring[i]);
  for (ev_msg *e = r->pend, *n; e; e = n) {
    n = e->next;
    free(e);
  }
  room_module_free(r->mod);
  free(r);
}

static attach *att_find(ws_sess *s, proto_str room) {
  for (attach *a = *ws_live_slot(s); a; a = a->snext)
    if (proto_str_eq(room, a->r->id)) return a;
  return NULL;
}

static size_t att_count(ws_sess *s) {
  size_t n = 0;
  for (attach *a = *ws_live_slot(s); a; a = a->snext) n++;
  return n;
}

static attach *att_add(ws_sess *s, lroom *r, int host) {
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

static void att_remove(attach *a) {
  lroom *r = a->r;
  if (a->rprev) a->rprev->rnext = a->rnext;
  else r->atts = a->rnext;
  if (a->rnext) a->rnext->rprev = a->rprev;
  for (attach **pp = (attach **)ws_live_slot(a->s); *pp; pp = &(*pp)->snext)
    if (*pp == a) {
      *pp = a->snext;
      break;
    }
  free(a);
  room_maybe_free(r);
}

/* ---- delivery ---------------------------------------------------------- */

/* The two frames of an event being delivered (whole, redacted), each made
 * at most once and shared by every session that gets it. */
static ws_frame *g_variant[2];

static void variants_reset(void) {
  for (int i = 0; i < 2; i++) {
    ws_frame_put(g_variant[i]);
    g_variant[i] = NULL;
  }
}

static void send_frame_to(attach *a, const ev_msg *e) {
  /* visibility: an event about another learner reaches a learner redacted */
  int red = e->rlen > 0 && !a->host && (uint64_t)ws_user(a->s) != e->subject;
  if (!g_variant[red]) {
    proto_buf *b = red ? &L.fr : &L.fw;
    proto_buf_clear(b);
    const uint8_t *body = red ? e->red : e->whole;
    size_t len = red ? e->rlen : e->wlen;
    if (proto_encode_ev_raw(b, proto_s(a->r->id), e->seq, body, len) != 0) return;
    g_variant[red] = ws_frame_new(proto_buf_bytes(b), proto_buf_size(b));
    if (!g_variant[red]) return;
  }
  ws_send_frame(a->s, g_variant[red]);
}

static void after_delivery(lroom *r, const ev_msg *e);

/* Delivers one in-order event to every ready attachment that lacks it. */
static void deliver(lroom *r, const ev_msg *e) {
  variants_reset();
  for (attach *a = r->atts; a; a = a->rnext) {
    if (!a->ready || e->seq <= a->last) continue;
    send_frame_to(a, e);
    a->last = e->seq;
  }
  variants_reset();
  after_delivery(r, e);
}

/* Sends an attachment every ring event after `a->last`. */
static void catch_up(attach *a) {
  lroom *r = a->r;
  if (!r->seq_known) return;
  uint64_t from = a->last + 1;
  if (r->seq >= LIVE_RING && from <= r->seq - LIVE_RING) from = r->seq - LIVE_RING + 1;
  for (uint64_t q = from; q <= r->seq; q++) {
    ev_msg *e = r->ring[q % LIVE_RING];
    if (!e || e->seq != q) continue;
    variants_reset();
    send_frame_to(a, e);
    variants_reset();
    a->last = q;
  }
}

static void fetch_gap(lroom *r);

/* An event arrived (channel or log): keep order, fill gaps, deliver. Takes
 * ownership of e. */
static void accept_event(lroom *r, ev_msg *e) {
  if (!r->seq_known) {
    /* the first event after subscribing: it defines where we are */
    r->seq_known = 1;
    r->seq = e->seq - 1;
  }
  if (e->seq <= r->seq) {
    free(e);
    return;
  }
  if (e->seq > r->seq + 1) {
    /* a gap: hold it, fetch what is missing from the room's log */
    ev_msg **pp = &r->pend;
    while (*pp && (*pp)->seq < e->seq) pp = &(*pp)->next;
    if ((*pp && (*pp)->seq == e->seq) || r->npend >= LIVE_PENDING_MAX) {
      free(e);
    } else {
      e->next = *pp;
      *pp = e;
      r->npend++;
    }
    fetch_gap(r);
    return;
  }
  r->seq = e->seq;
  free(r->ring[e->seq % LIVE_RING]);
  r->ring[e->seq % LIVE_RING] = e;
  deliver(r, e);
  /* held events that now follow on */
  while (r->pend && r->pend->seq <= r->seq + 1) {
    ev_msg *n = r->pend;
    r->pend = n->next;
    r->npend--;
    n->next = NULL;
    if (n->seq <= r->seq) {
      free(n);
      continue;
    }
    r->seq = n->seq;
    free(r->ring[n->seq % LIVE_RING]);
    r->ring[n->seq % LIVE_RING] = n;
    deliver(r, n);
  }
}

/* Learns the room's current seq from a script reply (read after the
 * subscription, so every later event comes on the channel). */
static void learn_seq(lroom *r, uint64_t seq) {
  if (!r->seq_known) {
    r->seq_known = 1;
    r->seq = seq;
    /* events that raced ahead of this reply */
    while (r->pend && r->pend->seq <= r->seq + 1) {
      ev_msg *n = r->pend;
      r->pend = n->next;
      r->npend--;
      n->next = NULL;
      accept_event(r, n);
    }
  }
}

/* ---- Redis plumbing ---------------------------------------------------- */

typedef struct op op;
typedef void op_fn(op *o, redisReply *rep);

struct op {
  op_fn *fn;
  ws_ref *ref;          /* the client that asked, if any */
  proto_rid rid;
  lroom *r;             /* holds a room reference */
  int64_t i1, i2, i3;
  char s1[PROTO_MAX_KEY + 1];
  char s2[PROTO_MAX_ROOM + 1];
  uint64_t since;
  int flag;
  int inflight;         /* sent to Redis again from its own callback */
  int in_cb;
  void *extra;
  void (*extra_free)(void *);
};

static op *op_new(op_fn *fn, ws_sess *s, proto_rid rid, lroom *r) {
  op *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->fn = fn;
  o->rid = rid;
  if (s) o->ref = ws_ref_get(s);
  if (r) {
    o->r = r;
    r->refs++;
  }
  return o;
}

static void op_free(op *o) {
  if (o->ref) ws_ref_put(o->ref);
  if (o->extra_free) o->extra_free(o->extra);
  if (o->r) {
    o->r->refs--;
    room_maybe_free(o->r);
  }
  free(o);
}

static ws_sess *op_sess(op *o) { return o->ref ? ws_ref_sess(o->ref) : NULL; }

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  op *o = priv;
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOSCRIPT"))
    L.sha_ok = 0; /* scripts were flushed: load again on the next call */
  o->inflight = 0;
  o->in_cb = 1;
  o->fn(o, rep);
  o->in_cb = 0;
  if (!o->inflight) op_free(o); /* unless the callback sent it on */
}

static int redis_ready(void) {
  return L.up && L.sha_ok && rconn_up(L.d->redis) && psub_up(L.ps);
}

static void resync_rooms(void);

static void script_loaded(redisAsyncContext *ac, void *reply, void *priv) {
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_STRING && rep->len < sizeof L.sha) {
    memcpy(L.sha, rep->str, rep->len);
    L.sha[rep->len] = '\0';
    L.sha_ok = 1;
    resync_rooms();
  } else {
    fprintf(stderr, "otjd: loading the room script failed: %s\n",
            rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
  }
}

static void load_script(void) {
  size_t len;
  const char *text = rstore_script(&len);
  const char *argv[3] = {"SCRIPT", "LOAD", text};
  size_t lens[3] = {6, 4, len};
  rconn_command_argv(L.d->redis, script_loaded, NULL, 3, argv, lens);
}

/* Sends a room script call; `cmd` is freed here. Returns 0, or -1 when
 * Redis is not there: the client is told, and the op is freed (by on_reply
 * when this runs inside the op's own callback). */
static int op_send(op *o, rstore_cmd *cmd) {
  int rc = -1;
  if (!cmd->failed && redis_ready())
    rc = rconn_command_argv(L.d->redis, on_reply, o, cmd->argc, cmd->argv, cmd->len);
  rstore_cmd_free(cmd);
  if (rc == 0) {
    o->inflight = 1;
    return 0;
  }
  if (!L.sha_ok && rconn_up(L.d->redis)) load_script();
  ws_sess *s = op_sess(o);
  if (s)
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
  if (!o->in_cb) op_free(o);
  return -1;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void room_cmd(rstore_cmd *c, lroom *r, const char *op_name) {
  rstore_cmd_init(c);
  rstore_cmd_room(c, L.sha, &r->keys, op_name, wall_ms(), L.d->cfg.room_idle_ttl_s,
                  psub_sharded(L.ps), L.instance, L.d->cfg.presence_stale_s * 1000,
                  L.d->cfg.room_log_keep);
}

/* Script replies: {"ok", seq, ...}, {"err", code, msg}, {"old", seq}. */
static const char *rep_kind(const redisReply *rep) {
  if (!rep) return NULL;
  if (rep->type == REDIS_REPLY_ERROR) return "error";
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
      rep->element[0]->type != REDIS_REPLY_STRING)
    return NULL;
  return rep->element[0]->str;
}

static uint64_t rep_seq(const redisReply *rep) {
  return rep->element[1]->type == REDIS_REPLY_INTEGER
             ? (uint64_t)rep->element[1]->integer
             : 0;
}

static proto_code code_of(const char *name) {
  static const struct { const char *n; proto_code c; } t[] = {
      {"not_found", PROTO_NOT_FOUND}, {"forbidden", PROTO_FORBIDDEN},
      {"conflict", PROTO_CONFLICT},   {"bad_request", PROTO_BAD_REQUEST},
      {"too_large", PROTO_TOO_LARGE},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].n, name)) return t[i].c;
  return PROTO_INTERNAL;
}

/* Tells the client why a script call failed. Returns 1 when it did. */
static int reply_failed(op *o, redisReply *rep) {
  const char *k = rep_kind(rep);
  if (k && !strcmp(k, "ok")) return 0;
  ws_sess *s = op_sess(o);
  if (!s) return 1;
  if (!rep) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "The room store did not answer; try again shortly.");
  } else if (k && !strcmp(k, "err") && rep->elements >= 3) {
    ws_send_err(s, o->rid, code_of(rep->element[1]->str), rep->element[2]->str);
  } else if (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "OOM", 3)) {
    /* Redis is at its maxmemory (noeviction): the write was not made,
     * nothing was evicted; the client retries later */
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "The room store is full for a moment; try again shortly.");
  } else {
    ws_send_err(s, o->rid, PROTO_INTERNAL,
                rep->type == REDIS_REPLY_ERROR ? "The room store refused the "
                                                 "request; try again."
                                               : "Unexpected room store reply.");
  }
  return 1;
}

/* ---- subscription ------------------------------------------------------ */

static void sub_done(void *arg, int ok) {
  lroom *r = arg;
  r->sub = ok ? 2 : 0;
  waiter *w = r->waiters;
  r->waiters = NULL;
  while (w) {
    waiter *n = w->next;
    w->fn(w->op, ok);
    free(w);
    w = n;
  }
  room_maybe_free(r);
}

static void room_subscribe(lroom *r) {
  if (r->sub) return;
  r->sub = 1;
  if (psub_subscribe(L.ps, r->keys.chan, sub_done, r) != 0) sub_done(r, 0);
}

/* Runs fn(op, ok) once the room's channel is subscribed. */
static void when_subscribed(lroom *r, void (*fn)(void *, int), void *o) {
  if (r->sub == 2) {
    fn(o, 1);
    return;
  }
  waiter *w = malloc(sizeof *w);
  if (!w) {
    fn(o, 0);
    return;
  }
  w->fn = fn;
  w->op = o;
  w->next = r->waiters;
  r->waiters = w;
  room_subscribe(r);
}

static void on_channel(void *ud, const char *chan, size_t chanlen,
                       const char *data, size_t len);

/* ---- the meta of a room ------------------------------------------------- */

/* Reads flat HGETALL pairs into the room's meta cache. */
static void meta_from(lroom *r, const redisReply *pairs) {
  if (!pairs || pairs->type != REDIS_REPLY_ARRAY) return;
  for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
    const char *k = pairs->element[i]->str, *v = pairs->element[i + 1]->str;
    if (!k || !v) continue;
    if (!strcmp(k, "host")) r->host = strtoll(v, NULL, 10);
    else if (!strcmp(k, "module")) r->module = strtoll(v, NULL, 10);
    else if (!strcmp(k, "ntasks")) r->ntasks = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "digest")) {
      r->digest = (uint64_t)strtoll(v, NULL, 10); /* written as an int64 */
      r->digest_known = 1;
    }
    else if (!strcmp(k, "code")) snprintf(r->code, sizeof r->code, "%s", v);
  }
  if (r->host && !r->meta_known) {
    store_user u;
    if (store_user_by_id(L.d->db, r->host, &u) == 0)
      snprintf(r->host_name, sizeof r->host_name, "%s", u.name);
    if (!r->mod) room_module_load(L.d->db, r->module, &r->mod);
    r->meta_known = r->mod != NULL;
  }
}

static const char *meta_get(const redisReply *pairs, const char *key) {
  if (!pairs || pairs->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t i = 0; i + 1 < pairs->elements; i += 2)
    if (pairs->element[i]->str && !strcmp(pairs->element[i]->str, key))
      return pairs->element[i + 1]->str;
  return NULL;
}

/* Stored records (room.lua keeps them as otjd wrote them): an answer is
 * [learner, task, by, 0, value bytes], a mark [learner, task, result
 * (1 pass, 2 fail), note or nil]. Unpacks one into u and returns its
 * fields, or NULL when it is not such a record. */
#define REC_ANSWER_FIELDS 5
#define REC_MARK_FIELDS 4

static msgpack_object *rec_fields(msgpack_unpacked *u, const redisReply *x, uint32_t n) {
  msgpack_unpacked_init(u);
  if (x->type != REDIS_REPLY_STRING ||
      msgpack_unpack_next(u, x->str, x->len, NULL) != MSGPACK_UNPACK_SUCCESS)
    return NULL;
  msgpack_object o = u->data;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != n) return NULL;
  msgpack_object *f = o.via.array.ptr;
  for (uint32_t i = 0; i < 3; i++)
    if (f[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return NULL;
  if (n == REC_ANSWER_FIELDS && f[4].type != MSGPACK_OBJECT_STR) return NULL;
  return f;
}

/* ---- snapshots ----------------------------------------------------------- */

/* The outcomes hash of a snapshot reply (HGETALL: learner, stored outcome,
 * ...) into out, which holds h->elements / 2; returns how many it wrote. */
static uint32_t snapshot_outcomes(const redisReply *h, proto_outcome_rec *out) {
  uint32_t n = 0;
  for (size_t i = 0; i + 1 < h->elements; i += 2) {
    const redisReply *k = h->element[i], *v = h->element[i + 1];
    int st;
    uint64_t done;
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        rstore_outcome_parse(v->str, v->len, &st, &done) != 0 ||
        st < PROTO_STATUS_APPROVED || st > PROTO_STATUS_REFUSED)
      continue;
    out[n++] = (proto_outcome_rec){.learner = strtoull(k->str, NULL, 10),
                                   .status = (proto_status)st,
                                   .has_completion = st == PROTO_STATUS_APPROVED,
                                   .completion = done};
  }
  return n;
}

/* Builds and sends the snapshot in a script reply {"ok", seq, meta,
 * members, presence, answers, marks, outcomes} to one attachment. */
static void send_snapshot(attach *a, proto_rid rid, redisReply *rep) {
  lroom *r = a->r;
  if (!r->mod || rep->elements < 8) {
    ws_send_err(a->s, rid, PROTO_INTERNAL, "This room's module is gone.");
    return;
  }
  redisReply *meta = rep->element[2], *mem = rep->element[3],
             *pres = rep->element[4], *ans = rep->element[5],
             *marks = rep->element[6], *outs = rep->element[7];
  size_t nm = mem->elements / 2;
  proto_member *members = calloc(nm ? nm : 1, sizeof *members);
  proto_answer_rec *answers = calloc(ans->elements ? ans->elements : 1, sizeof *answers);
  proto_mark_rec *mrecs = calloc(marks->elements ? marks->elements : 1, sizeof *mrecs);
  msgpack_unpacked *ua = calloc(ans->elements + marks->elements + 1, sizeof *ua);
  proto_outcome_rec *orecs = calloc(outs->elements / 2 + 1, sizeof *orecs);
  if (!members || !answers || !mrecs || !ua || !orecs) goto out;
  for (size_t i = 0; i < nm; i++) {
    const char *id = mem->element[2 * i]->str;
    members[i].id = strtoull(id, NULL, 10);
    members[i].name = (proto_str){mem->element[2 * i + 1]->str,
                                  (uint32_t)mem->element[2 * i + 1]->len};
    members[i].online = meta_get(pres, id) != NULL;
  }
  size_t na = 0, nk = 0, nu = 0;
  for (size_t i = 0; i < ans->elements; i++) {
    msgpack_object *f = rec_fields(&ua[nu++], ans->element[i], REC_ANSWER_FIELDS);
    if (!f) continue;
    answers[na].learner = f[0].via.u64;
    answers[na].task = (uint32_t)f[1].via.u64;
    answers[na].by = f[2].via.u64;
    answers[na].value.kind = PROTO_VALUE_RAW;
    answers[na].value.raw = (proto_str){f[4].via.str.ptr, f[4].via.str.size};
    na++;
  }
  for (size_t i = 0; i < marks->elements; i++) {
    msgpack_object *f = rec_fields(&ua[nu++], marks->element[i], REC_MARK_FIELDS);
    if (!f) continue;
    mrecs[nk].learner = f[0].via.u64;
    mrecs[nk].task = (uint32_t)f[1].via.u64;
    mrecs[nk].result = f[2].via.u64 == 1 ? PROTO_RESULT_PASS : PROTO_RESULT_FAIL;
    if (f[3].type == MSGPACK_OBJECT_STR) {
      mrecs[nk].has_note = true;
      mrecs[nk].note = (proto_str){f[3].via.str.ptr, f[3].via.str.size};
    }
    nk++;
  }
  const char *task = meta_get(meta, "task"), *state = meta_get(meta, "state");
  proto_snapshot sn = {
      .room = proto_s(r->id),
      .seq = rep_seq(rep),
      .code = proto_s(r->code),
      .module = {.id = (uint64_t)r->module, .title = proto_s(r->mod->title),
                 .n_tasks = r->mod->n_tasks, .tasks = r->mod->infos},
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
  proto_viewer v = {.user = (uint64_t)ws_user(a->s), .is_host = a->host != 0};
  proto_buf_clear(&L.tmp);
  if (proto_encode_snapshot(&L.tmp, rid, &sn, v) == 0)
    ws_send(a->s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
out:
  for (size_t i = 0; ua && i < ans->elements + marks->elements; i++)
    msgpack_unpacked_destroy(&ua[i]);
  free(ua);
  free(members);
  free(answers);
  free(mrecs);
  free(orecs);
}

/* ---- event encoding helpers ---------------------------------------------- */

/* Encodes an event's bodies: whole into `w`, redacted into `red` when the
 * event has private fields (otherwise red stays empty). */
static int encode_bodies(const proto_event *ev, proto_buf *w, proto_buf *red) {
  proto_buf_init(w, 0);
  proto_buf_init(red, 0);
  if (proto_encode_event_body(w, ev, false) != 0) return -1;
  proto_viewer other = {.user = 0, .is_host = false};
  if (proto_event_hidden_for(ev, other) &&
      proto_encode_event_body(red, ev, true) != 0)
    return -1;
  return 0;
}

static void cmd_buf(rstore_cmd *c, const proto_buf *b) {
  rstore_cmd_arg(c, proto_buf_size(b) ? (const char *)proto_buf_bytes(b) : "",
                 proto_buf_size(b));
}

/* ---- join and sync --------------------------------------------------------- */

static void join_reply(op *o, redisReply *rep);
static void sync_reply(op *o, redisReply *rep);

/* Sends the join script for the op's client. */
static void join_send(op *o) {
  lroom *r = o->r;
  ws_sess *s = op_sess(o);
  if (!s) return;
  int host = ws_user(s) == r->host;
  proto_event added = {.type = PROTO_EV_ADDED};
  added.added.learner = (uint64_t)ws_user(s);
  proto_event joined = {.type = PROTO_EV_JOINED};
  joined.joined.user = (uint64_t)ws_user(s);
  joined.joined.role = host ? PROTO_ROLE_HOST : PROTO_ROLE_LEARNER;
  proto_buf aw, ar, jw, jr;
  encode_bodies(&added, &aw, &ar);
  encode_bodies(&joined, &jw, &jr);
  /* R7: a learner who is not a member yet comes in only when within the
   * host's reach and waiting for this module */
  int may_add = 0;
  if (!host) {
    int64_t path, since;
    may_add = store_responsible_reaches(L.d->db, r->host, ws_user(s)) == 1 &&
              store_learner_otj_pending(L.d->db, ws_user(s), r->module, &path,
                                        &since) == 1;
  }
  rstore_cmd c;
  room_cmd(&c, r, "join");
  rstore_cmd_int(&c, ws_user(s));
  rstore_cmd_str(&c, host ? "host" : "learner");
  rstore_cmd_str(&c, may_add ? "1" : "0");
  rstore_cmd_str(&c, ws_user_name(s));
  cmd_buf(&c, &aw);
  cmd_buf(&c, &jw);
  rstore_cmd_int(&c, L.d->cfg.max_room_learners);
  o->fn = join_reply;
  op_send(o, &c);
  proto_buf_free(&aw);
  proto_buf_free(&ar);
  proto_buf_free(&jw);
  proto_buf_free(&jr);
}

static void join_meta_reply(op *o, redisReply *rep) {
  if (reply_failed(o, rep) || !op_sess(o)) return;
  if (rep->elements >= 3) meta_from(o->r, rep->element[2]);
  if (!o->r->meta_known) {
    ws_send_err(op_sess(o), o->rid, PROTO_NOT_FOUND,
                "This room's module no longer exists.");
    return;
  }
  join_send(o);
}

static void join_subscribed(void *arg, int ok) {
  op *o = arg;
  ws_sess *s = op_sess(o);
  if (!ok || !s) {
    if (s)
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                  "Could not reach the room; try again shortly.");
    op_free(o);
    return;
  }
  if (o->r->meta_known) {
    join_send(o);
    return;
  }
  /* who hosts it and which module it is decide who may come in */
  rstore_cmd c;
  room_cmd(&c, o->r, "meta");
  o->fn = join_meta_reply;
  op_send(o, &c);
}

static void start_join(ws_sess *s, proto_rid rid, const char *room_id,
                       int is_sync, uint64_t since) {
  lroom *r = room_get(room_id);
  if (!r) {
    ws_send_err(s, rid, PROTO_INTERNAL, "Out of memory.");
    return;
  }
  op *o = op_new(join_reply, s, rid, r);
  if (!o) return;
  o->flag = is_sync;
  o->since = since;
  when_subscribed(r, join_subscribed, o);
}

/* Sends the events of a sync reply after `since` to one attachment. */
static uint64_t send_events(attach *a, redisReply *rep, uint64_t since) {
  uint64_t last = since;
  for (size_t i = 2; i < rep->elements; i++) {
    redisReply *x = rep->element[i];
    if (x->type != REDIS_REPLY_STRING) continue;
    ev_msg *e = ev_parse(x->str, x->len);
    if (!e) continue;
    if (e->seq > since) {
      variants_reset();
      send_frame_to(a, e);
      variants_reset();
      last = e->seq;
    }
    free(e);
  }
  return last;
}

static void snapshot_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep) || !s) return;
  attach *a = att_find(s, proto_s(o->r->id));
  if (!a) return;
  learn_seq(o->r, rep_seq(rep));
  send_snapshot(a, o->rid, rep);
  a->last = rep_seq(rep);
  a->ready = 1;
  catch_up(a);
}

static void sync_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  const char *k = rep_kind(rep);
  if (s && k && !strcmp(k, "old")) {
    /* the log no longer reaches back that far: a fresh snapshot */
    rstore_cmd c;
    room_cmd(&c, o->r, "snapshot");
    o->fn = snapshot_reply;
    op_send(o, &c);
    return;
  }
  if (reply_failed(o, rep) || !s) return;
  attach *a = att_find(s, proto_s(o->r->id));
  if (!a) return;
  learn_seq(o->r, rep_seq(rep));
  uint64_t last = send_events(a, rep, o->since);
  if (last > a->last || !a->ready) a->last = last > o->since ? last : o->since;
  a->ready = 1;
  catch_up(a);
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, o->rid, true, a->last) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

static void join_reply(op *o, redisReply *rep) {
  lroom *r = o->r;
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep) || !s) return;
  if (rep->elements >= 3) meta_from(r, rep->element[2]);
  learn_seq(r, rep_seq(rep));
  attach *a = att_find(s, proto_s(r->id));
  if (!a) {
    if (att_count(s) >= LIVE_ATTACH_MAX) {
      ws_send_err(s, o->rid, PROTO_TOO_LARGE,
                  "This connection is in too many rooms; leave one first.");
      return;
    }
    a = att_add(s, r, ws_user(s) == r->host);
    if (!a) return;
  }
  if (o->flag) {
    /* a sync from a connection that was not in the room: now it is; send
     * what it missed */
    rstore_cmd c;
    room_cmd(&c, r, "sync");
    rstore_cmd_int(&c, (int64_t)o->since);
    o->fn = sync_reply;
    op_send(o, &c);
    return;
  }
  send_snapshot(a, o->rid, rep);
  a->last = rep_seq(rep);
  a->ready = 1;
  catch_up(a);
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
  op *o = priv;
  redisReply *rep = reply;
  ws_sess *s = op_sess(o);
  if (s) {
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                  "Could not look the code up; try again shortly.");
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
  op_free(o);
}

static void copy_str(char *dst, size_t cap, proto_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

static void handle_join(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  if (m->join.has_room) {
    char room[PROTO_MAX_ROOM + 1];
    copy_str(room, sizeof room, m->join.room);
    start_join(s, rid, room, 0, 0);
    return;
  }
  if (code_throttled(ws_user(s), 0)) {
    ws_send_err(s, rid, PROTO_RATE_LIMITED,
                "Too many wrong codes; wait a minute and try again.");
    return;
  }
  char code[PROTO_MAX_CODE + 1], key[64];
  copy_str(code, sizeof code, m->join.code);
  rstore_code_key(code, key, sizeof key);
  op *o = op_new(NULL, s, rid, NULL);
  if (!o) return;
  if (!redis_ready() || rconn_command(L.d->redis, code_reply, o, "GET %s", key) != 0) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
    op_free(o);
  }
}

static void handle_sync(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = att_find(s, m->sync.room);
  if (!a) {
    char room[PROTO_MAX_ROOM + 1];
    copy_str(room, sizeof room, m->sync.room);
    start_join(s, rid, room, 1, m->sync.since);
    return;
  }
  op *o = op_new(sync_reply, s, rid, a->r);
  if (!o) return;
  o->since = m->sync.since;
  rstore_cmd c;
  room_cmd(&c, a->r, "sync");
  rstore_cmd_int(&c, (int64_t)m->sync.since);
  op_send(o, &c);
}

/* ---- the dashboard channel: pending counts and invitations ----------------- */

static void publish_dash(const void *data, size_t len) {
  if (!rconn_up(L.d->redis)) return;
  const char *argv[3] = {psub_sharded(L.ps) ? "SPUBLISH" : "PUBLISH",
                         RSTORE_DASH_CHANNEL, data};
  size_t lens[3] = {strlen(argv[0]), strlen(RSTORE_DASH_CHANNEL), len};
  rconn_command_argv(L.d->redis, NULL, NULL, 3, argv, lens);
}

void live_pending_changed(otjd *d) {
  (void)d;
  publish_dash("P", 1);
}

static void send_invite(int64_t user, lroom *r, const char *room,
                        const char *code, int64_t module, const char *title,
                        int64_t host, const char *host_name) {
  (void)r;
  proto_buf b;
  proto_buf_init(&b, 9);
  if (proto_encode_invite(&b, proto_s(room), proto_s(code), (uint64_t)module,
                          proto_s(title), (uint64_t)host, proto_s(host_name)) == 0) {
    /* 'I', the user id (8 bytes, big-endian), then the frame */
    uint8_t *p = proto_buf_bytes(&b) - 9;
    p[0] = 'I';
    for (int i = 0; i < 8; i++) p[1 + i] = (uint8_t)((uint64_t)user >> (56 - 8 * i));
    publish_dash(p, proto_buf_size(&b) + 9);
    /* kept for the learner's later connections, until the room ends */
    if (rconn_up(L.d->redis)) {
      char key[64], ttl[16];
      snprintf(key, sizeof key, "otj:inv:%lld", (long long)user);
      snprintf(ttl, sizeof ttl, "%u", L.d->cfg.room_idle_ttl_s);
      const char *a1[4] = {"HSET", key, room, (const char *)proto_buf_bytes(&b)};
      size_t l1[4] = {4, strlen(key), strlen(room), proto_buf_size(&b)};
      rconn_command_argv(L.d->redis, NULL, NULL, 4, a1, l1);
      const char *a2[3] = {"EXPIRE", key, ttl};
      size_t l2[3] = {6, strlen(key), strlen(ttl)};
      rconn_command_argv(L.d->redis, NULL, NULL, 3, a2, l2);
    }
  }
  proto_buf_free(&b);
}

/* Dashboard counts are computed on libuv's worker pool with the worker
 * SQLite handle: a count walks every learner within the responsible's
 * reach, and the loop must not. "Pending changed" notices arriving in a
 * burst (one per approval commit, on every instance) are folded into one
 * refresh per LIVE_DASH_DELAY_MS; one refresh runs at a time. */
#define LIVE_DASH_DELAY_MS 300

typedef struct dash_job {
  uv_work_t work;
  uint64_t took_ms;  /* how long the counts took: paces the next refresh */
  size_t n;
  ws_ref **refs;
  int64_t *users;
  int *counts;
} dash_job;

static int dash_running, dash_again;
static uint64_t dash_delay_ms = LIVE_DASH_DELAY_MS;
static uv_timer_t dash_timer;
static int dash_timer_ready;

/* One query per department of the responsibles online: every learner's
 * pending items within that department's reach; each responsible's count
 * is the total less their own items. */
typedef struct dept_sum {
  int total;
  size_t n;
  int64_t *users;   /* the job's responsibles in this department */
  int *own;         /* their own pending items */
} dept_sum;

static int dept_add(int64_t learner, int count, void *ud) {
  dept_sum *ds = ud;
  ds->total += count;
  for (size_t i = 0; i < ds->n; i++)
    if (ds->users[i] == learner) ds->own[i] = count;
  return 0;
}

static void dash_work(uv_work_t *w) {
  dash_job *j = w->data;
  otjd *d = L.d;
  uint64_t t0 = uv_hrtime();
  int64_t *dept = calloc(j->n ? j->n : 1, sizeof *dept);
  int *own = calloc(j->n ? j->n : 1, sizeof *own);
  if (!dept || !own) {
    free(dept);
    free(own);
    for (size_t i = 0; i < j->n; i++) j->counts[i] = -1;
    return;
  }
  uv_mutex_lock(&d->db_worker_lock);
  for (size_t i = 0; i < j->n; i++) {
    store_user u;
    j->counts[i] = -1;
    dept[i] = store_user_by_id(d->db_worker, j->users[i], &u) == 0 ? u.department_id : 0;
  }
  for (size_t i = 0; i < j->n; i++) {
    if (!dept[i] || j->counts[i] >= 0) continue;
    /* every responsible of this department in the job, counted at once */
    size_t m = 0;
    int64_t *users = malloc(j->n * sizeof *users);
    size_t *at = malloc(j->n * sizeof *at);
    if (!users || !at) {
      free(users);
      free(at);
      continue;
    }
    for (size_t k = i; k < j->n; k++)
      if (dept[k] == dept[i] && j->counts[k] < 0) {
        users[m] = j->users[k];
        at[m++] = k;
      }
    memset(own, 0, j->n * sizeof *own);
    dept_sum ds = {0, m, users, own};
    if (store_pending_by_learner(d->db_worker, dept[i], dept_add, &ds) == 0)
      for (size_t k = 0; k < m; k++) j->counts[at[k]] = ds.total - own[k];
    else /* no count rather than a wrong one */
      for (size_t k = 0; k < m; k++) j->counts[at[k]] = -2;
    free(users);
    free(at);
  }
  uv_mutex_unlock(&d->db_worker_lock);
  for (size_t i = 0; i < j->n; i++)
    if (j->counts[i] < 0) j->counts[i] = -1;
  free(dept);
  free(own);
  j->took_ms = (uv_hrtime() - t0) / 1000000;
}

static void dash_free(dash_job *j) {
  for (size_t i = 0; i < j->n; i++) ws_ref_put(j->refs[i]);
  free(j->refs);
  free(j->users);
  free(j->counts);
  free(j);
}

static void dash_refresh_all(void);
static void dash_schedule(void);

static void dash_done(uv_work_t *w, int status) {
  dash_job *j = w->data;
  for (size_t i = 0; status == 0 && i < j->n; i++) {
    ws_sess *s = ws_ref_sess(j->refs[i]);
    if (!s || j->counts[i] < 0) continue;
    proto_buf_clear(&L.tmp);
    if (proto_encode_dashboard(&L.tmp, (uint64_t)j->counts[i]) == 0)
      ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  }
  /* big organisations count slowly: the counting may take a tenth of a
   * worker thread at most */
  dash_delay_ms = j->took_ms * 10 > LIVE_DASH_DELAY_MS ? j->took_ms * 10 : LIVE_DASH_DELAY_MS;
  dash_free(j);
  dash_running = 0;
  if (dash_again) { /* notices came in while counting: once more, later */
    dash_again = 0;
    dash_schedule();
  }
}

typedef struct dash_collect { dash_job *j; size_t cap; } dash_collect;

static void dash_add(ws_sess *s, void *arg) {
  dash_collect *c = arg;
  dash_job *j = c->j;
  if (j->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    ws_ref **r = realloc(j->refs, cap * sizeof *r);
    if (r) j->refs = r;
    int64_t *u = realloc(j->users, cap * sizeof *u);
    if (u) j->users = u;
    int *k = realloc(j->counts, cap * sizeof *k);
    if (k) j->counts = k;
    if (!r || !u || !k) return;
    c->cap = cap;
  }
  j->refs[j->n] = ws_ref_get(s);
  j->users[j->n] = ws_user(s);
  j->n++;
}

/* Counts for every responsible online on this instance. */
static void dash_start(void) {
  dash_job *j = calloc(1, sizeof *j);
  if (!j) return;
  dash_collect c = {j, 0};
  ws_each_responsible(L.d, dash_add, &c);
  if (j->n == 0) {
    dash_free(j);
    return;
  }
  j->work.data = j;
  dash_running = 1;
  if (uv_queue_work(L.d->loop, &j->work, dash_work, dash_done) != 0) {
    dash_running = 0;
    dash_free(j);
  }
}

static void dash_refresh_all(void) {
  if (dash_running) {
    dash_again = 1;
    return;
  }
  dash_start();
}

static void on_dash_timer(uv_timer_t *t) {
  (void)t;
  dash_refresh_all();
}

static void dash_schedule(void) {
  if (!dash_timer_ready) return;
  if (!uv_is_active((uv_handle_t *)&dash_timer))
    uv_timer_start(&dash_timer, on_dash_timer, dash_delay_ms, 0);
}

typedef struct frame_arg { const uint8_t *p; size_t n; } frame_arg;

static void send_frame(ws_sess *s, void *arg) {
  frame_arg *f = arg;
  ws_send(s, f->p, f->n);
}

/* ---- sessions that change under open sockets --------------------------- */

/* "User X's rights changed / X was deactivated" ('U') and "this token was
 * logged out" ('T') go out on the dashboard channel, so every instance
 * closes its own sockets of that user or token; the instance that made the
 * change has already closed its own, and skips its own message. */
#define LIVE_REASON_RIGHTS "your rights changed: reconnect"
#define LIVE_REASON_DEACTIVATED "account deactivated: ask an administrator"
#define LIVE_REASON_LOGOUT "logged out: log in again"
#define LIVE_INSTANCE_LEN 16

static void user_change_apply(int64_t user, char kind) {
  if (kind == 'D')
    ws_close_user(L.d, user, WS_CLOSE_SESSION_ENDED, LIVE_REASON_DEACTIVATED);
  else
    ws_close_user(L.d, user, WS_CLOSE_RIGHTS_CHANGED, LIVE_REASON_RIGHTS);
}

void live_user_changed(otjd *d, int64_t user, int deactivated) {
  (void)d;
  char kind = deactivated ? 'D' : 'R';
  user_change_apply(user, kind);
  uint8_t m[1 + LIVE_INSTANCE_LEN + 8 + 1];
  m[0] = 'U';
  memcpy(m + 1, L.instance, LIVE_INSTANCE_LEN);
  for (int i = 0; i < 8; i++)
    m[1 + LIVE_INSTANCE_LEN + i] = (uint8_t)((uint64_t)user >> (56 - 8 * i));
  m[sizeof m - 1] = (uint8_t)kind;
  publish_dash(m, sizeof m);
}

void live_token_ended(otjd *d, const unsigned char digest[32]) {
  (void)d;
  ws_close_token(L.d, digest, WS_CLOSE_SESSION_ENDED, LIVE_REASON_LOGOUT);
  uint8_t m[1 + LIVE_INSTANCE_LEN + 32];
  m[0] = 'T';
  memcpy(m + 1, L.instance, LIVE_INSTANCE_LEN);
  memcpy(m + 1 + LIVE_INSTANCE_LEN, digest, 32);
  publish_dash(m, sizeof m);
}

static void on_session_change(const char *data, size_t len) {
  if (len < 1 + LIVE_INSTANCE_LEN || !memcmp(data + 1, L.instance, LIVE_INSTANCE_LEN))
    return; /* ours: acted on already */
  const uint8_t *p = (const uint8_t *)data + 1 + LIVE_INSTANCE_LEN;
  size_t n = len - 1 - LIVE_INSTANCE_LEN;
  if (data[0] == 'U' && n == 9) {
    uint64_t user = 0;
    for (int i = 0; i < 8; i++) user = (user << 8) | p[i];
    user_change_apply((int64_t)user, (char)p[8]);
  } else if (data[0] == 'T' && n == 32) {
    ws_close_token(L.d, p, WS_CLOSE_SESSION_ENDED, LIVE_REASON_LOGOUT);
  }
}

static void on_dash(const char *data, size_t len) {
  if (len == 1 && data[0] == 'P') {
    dash_schedule();
  } else if (len > 0 && (data[0] == 'U' || data[0] == 'T')) {
    on_session_change(data, len);
  } else if (len > 9 && data[0] == 'I') {
    uint64_t user = 0;
    for (int i = 0; i < 8; i++) user = (user << 8) | (uint8_t)data[1 + i];
    frame_arg f = {(const uint8_t *)data + 9, len - 9};
    ws_each_of_user(L.d, (int64_t)user, send_frame, &f);
  }
}

/* Invitations that wait for a learner who connects later: each is sent
 * when its room is still open, and forgotten when it is not. */
typedef struct invite_check {
  ws_ref *ref;
  int64_t user;
  char room[PROTO_MAX_ROOM + 1];
  size_t len;
  uint8_t frame[];
} invite_check;

static void invite_state(redisAsyncContext *ac, void *reply, void *priv) {
  invite_check *c = priv;
  redisReply *rep = reply;
  ws_sess *s = ws_ref_sess(c->ref);
  if (rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "open")) {
    if (s) ws_send(s, c->frame, c->len);
  } else if (rep && rconn_up(L.d->redis)) {
    rconn_command(L.d->redis, NULL, NULL, "HDEL otj:inv:%lld %s",
                  (long long)c->user, c->room);
  }
  ws_ref_put(c->ref);
  free(c);
}

static void invites_read(redisAsyncContext *ac, void *reply, void *priv) {
  ws_ref *ref = priv;
  redisReply *rep = reply;
  ws_sess *s = ws_ref_sess(ref);
  if (s && rep && rep->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
      redisReply *room = rep->element[i], *frame = rep->element[i + 1];
      if (room->type != REDIS_REPLY_STRING || room->len > PROTO_MAX_ROOM) continue;
      invite_check *c = malloc(sizeof *c + frame->len);
      if (!c) break;
      c->ref = ws_ref_get(s);
      c->user = ws_user(s);
      memcpy(c->room, room->str, room->len);
      c->room[room->len] = '\0';
      c->len = frame->len;
      memcpy(c->frame, frame->str, frame->len);
      rstore_keys k;
      rstore_room_keys(c->room, &k);
      if (rconn_command(L.d->redis, invite_state, c, "HGET %s state", k.key[0]) != 0) {
        ws_ref_put(c->ref);
        free(c);
      }
    }
  }
  ws_ref_put(ref);
}

void live_session_ready(ws_sess *s) {
  /* the count comes with the next (folded) refresh: a hundred responsibles
   * logging in at once cost one query per department, not a hundred */
  if (ws_is_responsible(s)) dash_schedule();
  if (!rconn_up(L.d->redis)) return;
  ws_ref *ref = ws_ref_get(s);
  if (rconn_command(L.d->redis, invites_read, ref, "HGETALL otj:inv:%lld",
                    (long long)ws_user(s)) != 0)
    ws_ref_put(ref);
}

/* ---- channel messages --------------------------------------------------- */

static void on_channel(void *ud, const char *chan, size_t chanlen,
                       const char *data, size_t len) {
  (void)ud;
  size_t dl = strlen(RSTORE_DASH_CHANNEL);
  if (chanlen == dl && !memcmp(chan, RSTORE_DASH_CHANNEL, dl)) {
    on_dash(data, len);
    return;
  }
  char id[PROTO_MAX_ROOM + 1];
  if (!rstore_room_of_channel(chan, chanlen, id, sizeof id)) return;
  lroom *r = room_find(id);
  if (!r) return;
  ev_msg *e = ev_parse(data, len);
  if (e) accept_event(r, e);
}

/* Gap repair: fetch the events after r->seq from the room's log. */
static void gap_reply(op *o, redisReply *rep) {
  lroom *r = o->r;
  r->fetching = 0;
  const char *k = rep_kind(rep);
  if (!k) return;
  if (!strcmp(k, "err") && rep->elements >= 3 &&
      !strcmp(rep->element[1]->str, "not_found")) {
    /* the room is gone from the store (it expired, or a Redis without
     * persistence restarted): its connections are told and let go */
    for (attach *a = r->atts, *n; a; a = n) {
      n = a->rnext;
      ws_send_err(a->s, PROTO_NO_RID, PROTO_NOT_FOUND,
                  "This room has ended; ask the responsible to open a new one.");
      att_remove(a);
    }
    return;
  }
  if (!strcmp(k, "ok")) {
    for (size_t i = 2; i < rep->elements; i++) {
      redisReply *x = rep->element[i];
      if (x->type != REDIS_REPLY_STRING) continue;
      ev_msg *e = ev_parse(x->str, x->len);
      if (e) accept_event(r, e);
    }
  } else if (!strcmp(k, "old")) {
    /* too far behind: every connection here gets a fresh snapshot */
    r->seq = rep_seq(rep);
    for (ev_msg *e = r->pend, *n; e; e = n) {
      n = e->next;
      free(e);
    }
    r->pend = NULL;
    r->npend = 0;
    for (attach *a = r->atts; a; a = a->rnext) {
      op *o2 = op_new(snapshot_reply, a->s, PROTO_NO_RID, r);
      if (!o2) continue;
      a->ready = 0;
      rstore_cmd c;
      room_cmd(&c, r, "snapshot");
      op_send(o2, &c);
    }
  }
}

static void fetch_gap(lroom *r) {
  if (r->fetching || !redis_ready()) return;
  op *o = op_new(gap_reply, NULL, PROTO_NO_RID, r);
  if (!o) return;
  r->fetching = 1;
  rstore_cmd c;
  room_cmd(&c, r, "sync");
  rstore_cmd_int(&c, (int64_t)r->seq);
  if (op_send(o, &c) != 0) r->fetching = 0;
}

static void after_delivery(lroom *r, const ev_msg *e) {
  if (!ev_is(e, "removed")) return;
  /* a removed learner's connections leave the room after the news */
  for (attach *a = r->atts, *n; a; a = n) {
    n = a->rnext;
    if (!a->host && (uint64_t)ws_user(a->s) == e->subject) att_remove(a);
  }
}

/* ---- room history: a close is written on the worker pool ----------------- */

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
  ws_ref *ref;   /* the host who asked, or NULL */
  proto_rid rid;
  uint64_t seq;  /* the close event's seq */
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
    fprintf(stderr, "otjd: recording the close of room %s failed: %s\n",
            j->room, status != 0 ? "cancelled" : j->msg);
  closed_tell(j->ref, j->rid, j->seq);
  free(j);
}

/* Records the close of `room`; then tells `s` (if not NULL) `ok` for `rid`. */
static void record_room_closed(const char *room, ws_sess *s, proto_rid rid, uint64_t seq) {
  closed_job *j = calloc(1, sizeof *j);
  if (j) {
    snprintf(j->room, sizeof j->room, "%s", room);
    j->at = (int64_t)time(NULL);
    j->ref = s ? ws_ref_get(s) : NULL;
    j->rid = rid;
    j->seq = seq;
    j->work.data = j;
    if (uv_queue_work(L.d->loop, &j->work, closed_work, closed_done) == 0)
      return;
    if (j->ref) ws_ref_put(j->ref);
    free(j);
  }
  /* no worker: the loop's handle, which waits only briefly */
  if (store_room_closed(L.d->db, room, (int64_t)time(NULL)) != 0)
    fprintf(stderr, "otjd: recording the close of room %s failed: %s\n",
            room, store_errmsg(L.d->db));
  closed_tell(s ? ws_ref_get(s) : NULL, rid, seq);
}

/* ---- open ------------------------------------------------------------------ */

typedef struct open_ctx {
  char room[LIVE_ROOM_ID_LEN + 1];
  char code[8];
  int64_t module;
  uint32_t ntasks;
  uint64_t digest; /* of its tasks */
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

static void open_try_code(op *o);

static void drop_code(const char *code) {
  char key[64];
  rstore_code_key(code, key, sizeof key);
  rconn_command(L.d->redis, NULL, NULL, "DEL %s", key);
}

static void open_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  open_ctx *x = o->extra;
  if (reply_failed(o, rep)) {
    /* no room in Redis: its history row and join code go too */
    record_room_closed(x->room, NULL, (proto_rid){0}, 0);
    drop_code(x->code);
    return;
  }
  if (!s) return;
  for (uint32_t i = 0; i < x->n; i++)
    send_invite(x->ids[i], NULL, x->room, x->code, x->module, x->title,
                ws_user(s), ws_user_name(s));
  start_join(s, o->rid, x->room, 0, 0);
}

static void open_code_reply(redisAsyncContext *ac, void *reply, void *priv) {
  op *o = priv;
  redisReply *rep = reply;
  ws_sess *s = op_sess(o);
  open_ctx *x = o->extra;
  if (!s) {
    op_free(o);
    return;
  }
  if (!rep || rep->type == REDIS_REPLY_ERROR) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "Could not open the room; try again shortly.");
    op_free(o);
    return;
  }
  if (rep->type == REDIS_REPLY_NIL) { /* taken: another code */
    if (++x->tries >= LIVE_CODE_TRIES) {
      ws_send_err(s, o->rid, PROTO_INTERNAL, "No free join code was found.");
      op_free(o);
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
  int rec = store_room_opened(L.d->db, x->room, x->module, ws_user(s), x->code,
                              (int64_t)time(NULL));
  if (rec != 0) {
    drop_code(x->code);
    if (rec == STORE_CONFLICT && ++x->tries < LIVE_CODE_TRIES) {
      /* the code of a room that expired from Redis without a close */
      open_try_code(o);
      return;
    }
    if (rec != STORE_BUSY)
      fprintf(stderr, "otjd: recording room %s failed: %s\n", x->room,
              store_errmsg(L.d->db));
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "The room could not be recorded; try again shortly.");
    op_free(o);
    return;
  }
  /* create the room */
  lroom *r = room_get(x->room);
  if (!r) {
    record_room_closed(x->room, NULL, (proto_rid){0}, 0);
    drop_code(x->code);
    op_free(o);
    return;
  }
  if (!r->mod) { /* the room's tasks are those the module had as it opened */
    r->mod = x->mod;
    x->mod = NULL;
  }
  o->r = r;
  r->refs++;
  rstore_cmd c;
  room_cmd(&c, r, "open");
  rstore_cmd_int(&c, ws_user(s));
  rstore_cmd_int(&c, x->module);
  rstore_cmd_str(&c, x->code);
  rstore_cmd_int(&c, x->ntasks);
  rstore_cmd_int(&c, (int64_t)x->digest);
  for (uint32_t i = 0; i < x->n; i++) {
    rstore_cmd_int(&c, x->ids[i]);
    rstore_cmd_str(&c, x->names[i]);
  }
  o->fn = open_reply;
  op_send(o, &c);
}

static void open_try_code(op *o) {
  open_ctx *x = o->extra;
  snprintf(x->code, sizeof x->code, "%06u", (unsigned)randombytes_uniform(1000000));
  char key[64];
  rstore_code_key(x->code, key, sizeof key);
  if (rconn_command(L.d->redis, open_code_reply, o, "SET %s %s NX EX %u", key,
                    x->room, L.d->cfg.room_idle_ttl_s) != 0) {
    ws_sess *s = op_sess(o);
    if (s)
      ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                  "Live rooms are unavailable for a moment; try again shortly.");
    op_free(o);
  }
}

static void handle_open(ws_sess *s, const proto_msg *m) {
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
    ws_send_err(s, rid, PROTO_BAD_REQUEST,
                "That module is not an On-the-Job training module.");
    return;
  }
  if (!redis_ready()) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
    return;
  }
  if (m->open.n_learners > L.d->cfg.max_room_learners) {
    ws_send_err(s, rid, PROTO_TOO_LARGE, "Too many learners for one room.");
    return;
  }
  int64_t now = (int64_t)time(NULL);
  int open_rooms = store_rooms_open_count(L.d->db, ws_user(s),
                                          now - (int64_t)L.d->cfg.room_idle_ttl_s);
  if (open_rooms >= (int)L.d->cfg.max_rooms_per_responsible) {
    ws_send_err(s, rid, PROTO_RATE_LIMITED,
                "You have too many open rooms; close one first.");
    return;
  }
  open_ctx *x = calloc(1, sizeof *x);
  if (!x) return;
  int lc = room_module_load(L.d->db, mod.id, &x->mod);
  if (lc != 0) {
    if (lc == STORE_INVALID) {
      char msg[PROTO_ERR_MSG_MAX];
      snprintf(msg, sizeof msg,
               "\"%.40s\" does not fit a room (at most %d tasks, %d options "
               "per question); an administrator must shorten it first.",
               mod.title, ROOM_MAX_TASKS, ROOM_MAX_OPTIONS);
      ws_send_err(s, rid, PROTO_TOO_LARGE, msg);
    } else
      ws_send_err(s, rid, PROTO_INTERNAL, "The module's tasks could not be read.");
    open_ctx_free(x);
    return;
  }
  x->module = mod.id;
  x->ntasks = x->mod->n_tasks;
  x->digest = x->mod->digest;
  snprintf(x->title, sizeof x->title, "%s", mod.title);
  for (uint32_t i = 0; i < m->open.n_learners; i++) {
    int64_t id = (int64_t)m->open.learners[i];
    int dup = 0;
    for (uint32_t k = 0; k < x->n; k++) dup |= x->ids[k] == id;
    if (dup) continue;
    store_user u;
    int64_t path, since;
    if (store_user_by_id(L.d->db, id, &u) != 0 ||
        store_responsible_reaches(L.d->db, ws_user(s), id) != 1 ||
        store_learner_otj_pending(L.d->db, id, mod.id, &path, &since) != 1) {
      char msg[256];
      snprintf(msg, sizeof msg,
               "Learner %lld is not waiting for \"%s\" within your reach.",
               (long long)id, mod.title);
      ws_send_err(s, rid, PROTO_FORBIDDEN, msg);
      open_ctx_free(x);
      return;
    }
    x->ids[x->n] = id;
    snprintf(x->names[x->n], sizeof x->names[0], "%s", u.name);
    x->n++;
  }
  static const char alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
  for (int i = 0; i < LIVE_ROOM_ID_LEN; i++)
    x->room[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
  op *o = op_new(NULL, s, rid, NULL);
  if (!o) {
    open_ctx_free(x);
    return;
  }
  o->extra = x;
  o->extra_free = open_ctx_free;
  open_try_code(o);
}

/* ---- actions inside a room ---------------------------------------------- */

/* The client's attachment to m's room, or an err sent and NULL. */
static attach *member_of(ws_sess *s, proto_rid rid, proto_str room, int host_only) {
  attach *a = att_find(s, room);
  if (!a) {
    ws_send_err(s, rid, PROTO_NOT_FOUND, "Join the room first.");
    return NULL;
  }
  if (host_only && !a->host) {
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "Only the responsible who runs this room may do that.");
    return NULL;
  }
  if (!a->r->mod) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE, "The room is still loading.");
    return NULL;
  }
  return a;
}

/* ok {rid, seq} for a script reply {"ok", seq}. */
static void ok_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep) || !s) return;
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, o->rid, true, rep_seq(rep)) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* Sends an event-making op: `op_name`, the args appended by `args`, the
 * event's bodies last (for ops whose script takes them last). */
static void send_event_op(ws_sess *s, proto_rid rid, lroom *r, const char *op_name,
                          rstore_cmd *c, const proto_event *ev, op_fn *fn) {
  proto_buf w, red;
  if (encode_bodies(ev, &w, &red) != 0) {
    rstore_cmd_free(c);
    proto_buf_free(&w);
    proto_buf_free(&red);
    ws_send_err(s, rid, PROTO_INTERNAL, "Out of memory.");
    return;
  }
  (void)op_name;
  cmd_buf(c, &w);
  cmd_buf(c, &red);
  op *o = op_new(fn, s, rid, r);
  if (o) op_send(o, c);
  else rstore_cmd_free(c);
  proto_buf_free(&w);
  proto_buf_free(&red);
}

static void handle_step(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->step.room, 1);
  if (!a) return;
  if (m->step.task >= a->r->mod->n_tasks) {
    ws_send_err(s, rid, PROTO_BAD_REQUEST, "There is no task with that number.");
    return;
  }
  proto_event ev = {.type = PROTO_EV_STEP};
  ev.step.task = m->step.task;
  rstore_cmd c;
  room_cmd(&c, a->r, "step");
  rstore_cmd_int(&c, m->step.task);
  proto_buf w, red;
  encode_bodies(&ev, &w, &red);
  cmd_buf(&c, &w);
  op *o = op_new(ok_reply, s, rid, a->r);
  if (o) op_send(o, &c);
  else rstore_cmd_free(&c);
  proto_buf_free(&w);
  proto_buf_free(&red);
}

static void ack_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep) || !s) return;
  proto_buf_clear(&L.tmp);
  if (proto_encode_ack(&L.tmp, o->rid, proto_s(o->s1), rep_seq(rep)) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* Packs a stored record with msgpack-c into `sb` (caller destroys it). */
static void pack_answer_record(msgpack_sbuffer *sb, uint64_t learner, uint32_t task,
                               uint64_t by, proto_str raw) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 5);
  msgpack_pack_uint64(&pk, learner);
  msgpack_pack_uint32(&pk, task);
  msgpack_pack_uint64(&pk, by);
  msgpack_pack_uint8(&pk, 0);
  msgpack_pack_str_with_body(&pk, raw.ptr, raw.len);
}

static void handle_answer(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->answer.room, 0);
  if (!a) return;
  uint64_t learner;
  if (a->host) {
    if (!m->answer.has_learner) {
      ws_send_err(s, rid, PROTO_BAD_REQUEST,
                  "Say which learner you answer for ('learner').");
      return;
    }
    learner = m->answer.learner;
  } else {
    if (m->answer.has_learner && m->answer.learner != (uint64_t)ws_user(s)) {
      ws_send_err(s, rid, PROTO_FORBIDDEN, "You can only answer for yourself.");
      return;
    }
    learner = (uint64_t)ws_user(s);
  }
  char msg[160];
  proto_code code = room_check_answer(a->r->mod, m->answer.task, &m->answer.value,
                                      msg, sizeof msg);
  if (code != PROTO_OK) {
    ws_send_err(s, rid, code, msg);
    return;
  }
  msgpack_sbuffer rec;
  pack_answer_record(&rec, learner, m->answer.task, (uint64_t)ws_user(s),
                     m->answer.value.raw);
  proto_event ev = {.type = PROTO_EV_ANSWER};
  ev.answer.learner = learner;
  ev.answer.task = m->answer.task;
  ev.answer.value = m->answer.value;
  ev.answer.by = (uint64_t)ws_user(s);
  proto_buf w, red;
  if (encode_bodies(&ev, &w, &red) != 0) {
    ws_send_err(s, rid, PROTO_INTERNAL, "Out of memory.");
    goto out;
  }
  rstore_cmd c;
  room_cmd(&c, a->r, "answer");
  rstore_cmd_int(&c, ws_user(s));
  rstore_cmd_int(&c, (int64_t)learner);
  rstore_cmd_int(&c, m->answer.task);
  rstore_cmd_arg(&c, m->answer.key.ptr, m->answer.key.len);
  rstore_cmd_arg(&c, rec.data, rec.size);
  cmd_buf(&c, &w);
  cmd_buf(&c, &red);
  rstore_cmd_str(&c, "1"); /* the current task only (R8) */
  op *o = op_new(ack_reply, s, rid, a->r);
  if (o) {
    copy_str(o->s1, sizeof o->s1, m->answer.key);
    op_send(o, &c);
  } else {
    rstore_cmd_free(&c);
  }
out:
  proto_buf_free(&w);
  proto_buf_free(&red);
  msgpack_sbuffer_destroy(&rec);
}

static void handle_mark(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->mark.room, 1);
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
  msgpack_sbuffer rec;
  msgpack_packer pk;
  msgpack_sbuffer_init(&rec);
  msgpack_packer_init(&pk, &rec, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_uint64(&pk, m->mark.learner);
  msgpack_pack_uint32(&pk, m->mark.task);
  msgpack_pack_uint8(&pk, m->mark.result == PROTO_RESULT_PASS ? 1 : 2);
  if (m->mark.has_note) msgpack_pack_str_with_body(&pk, m->mark.note.ptr, m->mark.note.len);
  else msgpack_pack_nil(&pk);
  proto_event ev = {.type = PROTO_EV_MARK};
  ev.mark.learner = m->mark.learner;
  ev.mark.task = m->mark.task;
  ev.mark.result = m->mark.result;
  ev.mark.has_note = m->mark.has_note;
  ev.mark.note = m->mark.note;
  rstore_cmd c;
  room_cmd(&c, a->r, "mark");
  rstore_cmd_int(&c, (int64_t)m->mark.learner);
  rstore_cmd_int(&c, m->mark.task);
  rstore_cmd_arg(&c, rec.data, rec.size);
  send_event_op(s, rid, a->r, "mark", &c, &ev, ok_reply);
  msgpack_sbuffer_destroy(&rec);
}

static void add_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep) || !s) return;
  lroom *r = o->r;
  send_invite(o->i1, r, r->id, r->code, r->module, r->mod ? r->mod->title : "",
              r->host, r->host_name);
  ok_reply(o, rep);
}

static void handle_add(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->add.room, 1);
  if (!a) return;
  store_user u;
  int64_t id = (int64_t)m->add.learner, path, since;
  if (m->add.learner > INT64_MAX || store_user_by_id(L.d->db, id, &u) != 0 ||
      store_responsible_reaches(L.d->db, ws_user(s), id) != 1 ||
      store_learner_otj_pending(L.d->db, id, a->r->module, &path, &since) != 1) {
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "That learner is not waiting for this module within your reach.");
    return;
  }
  proto_event ev = {.type = PROTO_EV_ADDED};
  ev.added.learner = (uint64_t)id;
  proto_buf w, red;
  encode_bodies(&ev, &w, &red);
  rstore_cmd c;
  room_cmd(&c, a->r, "add");
  rstore_cmd_int(&c, id);
  rstore_cmd_str(&c, u.name);
  cmd_buf(&c, &w);
  rstore_cmd_int(&c, L.d->cfg.max_room_learners);
  op *o = op_new(add_reply, s, rid, a->r);
  if (o) {
    o->i1 = id;
    op_send(o, &c);
  } else {
    rstore_cmd_free(&c);
  }
  proto_buf_free(&w);
  proto_buf_free(&red);
}

static void handle_remove(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->remove.room, 1);
  if (!a) return;
  proto_event ev = {.type = PROTO_EV_REMOVED};
  ev.removed.learner = m->remove.learner;
  proto_buf w, red;
  encode_bodies(&ev, &w, &red);
  rstore_cmd c;
  room_cmd(&c, a->r, "remove");
  rstore_cmd_int(&c, (int64_t)m->remove.learner);
  cmd_buf(&c, &w);
  op *o = op_new(ok_reply, s, rid, a->r);
  if (o) op_send(o, &c);
  else rstore_cmd_free(&c);
  proto_buf_free(&w);
  proto_buf_free(&red);
}

/* Presence: this connection leaves the room (the person only when it was
 * their last connection there). `s` may be NULL: nobody to answer. */
static void send_leave(lroom *r, int64_t user, ws_sess *s, proto_rid rid) {
  proto_event ev = {.type = PROTO_EV_LEFT};
  ev.left.user = (uint64_t)user;
  ev.left.role = user == r->host ? PROTO_ROLE_HOST : PROTO_ROLE_LEARNER;
  proto_buf w, red;
  encode_bodies(&ev, &w, &red);
  rstore_cmd c;
  room_cmd(&c, r, "leave");
  rstore_cmd_int(&c, user);
  cmd_buf(&c, &w);
  op *o = op_new(ok_reply, s, rid, r);
  if (o) {
    if (!redis_ready()) {
      rstore_cmd_free(&c);
      op_free(o); /* presence is rebuilt by the next join */
    } else {
      op_send(o, &c);
    }
  } else {
    rstore_cmd_free(&c);
  }
  proto_buf_free(&w);
  proto_buf_free(&red);
}

static void handle_leave(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = att_find(s, m->leave.room);
  if (!a) {
    ws_send_err(s, rid, PROTO_NOT_FOUND, "You are not in that room.");
    return;
  }
  lroom *r = a->r;
  r->refs++; /* keep it while the leave is sent */
  att_remove(a);
  send_leave(r, ws_user(s), s, rid);
  r->refs--;
  room_maybe_free(r);
}

static void close_reply(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  if (reply_failed(o, rep)) return;
  lroom *r = o->r;
  drop_code(r->code);
  record_room_closed(r->id, s, o->rid, rep_seq(rep));
}

static void handle_close(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->close.room, 1);
  if (!a) return;
  proto_event ev = {.type = PROTO_EV_CLOSED};
  proto_buf w, red;
  encode_bodies(&ev, &w, &red);
  rstore_cmd c;
  room_cmd(&c, a->r, "close");
  cmd_buf(&c, &w);
  op *o = op_new(close_reply, s, rid, a->r);
  if (o) op_send(o, &c);
  else rstore_cmd_free(&c);
  proto_buf_free(&w);
  proto_buf_free(&red);
}

/* ---- approve (R9, R10): read marks, commit through the writer, then tell -- */

/* One approve message on its way to the disk; sized to its decisions. */
#define APPROVE_OWNED_PER_ITEM 4 /* answers, marks, note, reason */

typedef struct approve_ctx {
  writer_job job;
  ws_ref *ref;
  proto_rid rid;
  lroom *r;
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
  if (x->r) {
    x->r->refs--;
    room_maybe_free(x->r);
  }
  free(x);
}

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

static void outcomes_done(op *o, redisReply *rep) { (void)o; (void)rep; }

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

/* The fingerprint of the tasks the room opened with, as its record keeps it
 * (a room recorded without one: the tasks this instance loaded). */
static uint64_t room_digest(const lroom *r) {
  return r->digest_known ? r->digest : r->mod->digest;
}

/* 1 when the writer refused a decision because the module's tasks changed. */
static int tasks_changed(const approve_ctx *x) {
  for (uint32_t i = 0; i < x->n; i++)
    if (x->items[i].rc == 0 && x->items[i].tasks_changed) return 1;
  return 0;
}

static void approve_committed(writer_job *job, void *arg) {
  approve_ctx *x = arg;
  lroom *r = x->r;
  ws_sess *s = ws_ref_sess(x->ref);
  if (tasks_changed(x)) {
    if (s) refuse_changed_tasks(s, x->rid, r);
    approve_ctx_free(x);
    return;
  }
  proto_approval_result res[PROTO_MAX_DECISIONS];
  int any_approved = 0;
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
  for (uint32_t i = 0; i < x->n; i++) {
    store_approval *it = &x->items[i];
    memset(&res[i], 0, sizeof res[i]);
    res[i].learner = (uint64_t)it->learner;
    if (it->rc != 0) {
      res[i].status = PROTO_STATUS_REFUSED;
      res[i].reason = proto_s("The decision could not be saved; try again.");
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
  if (s) {
    proto_buf_clear(&L.tmp);
    if (proto_encode_approved(&L.tmp, x->rid, res, x->n) == 0)
      ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  }
  /* the room hears the outcomes (learners see only their own) */
  rstore_cmd c;
  room_cmd(&c, r, "outcomes");
  proto_buf bufs[PROTO_MAX_DECISIONS][2];
  char st[PROTO_MAX_DECISIONS][RSTORE_OUTCOME_MAX];
  uint32_t nb = 0;
  for (uint32_t i = 0; i < x->n; i++) {
    if (x->items[i].rc != 0 || x->items[i].forbidden) continue;
    proto_event ev = {.type = PROTO_EV_APPROVED};
    ev.approved.learner = res[i].learner;
    ev.approved.status = res[i].status;
    ev.approved.has_completion = res[i].has_completion;
    ev.approved.completion = res[i].completion;
    encode_bodies(&ev, &bufs[nb][0], &bufs[nb][1]);
    rstore_outcome_format(st[nb], sizeof st[nb], (int)res[i].status, res[i].completion);
    if (res[i].status == PROTO_STATUS_APPROVED && rconn_up(L.d->redis))
      rconn_command(L.d->redis, NULL, NULL, "HDEL otj:inv:%lld %s",
                    (long long)x->items[i].learner, r->id);
    rstore_cmd_int(&c, x->items[i].learner);
    rstore_cmd_str(&c, st[nb]);
    cmd_buf(&c, &bufs[nb][0]);
    cmd_buf(&c, &bufs[nb][1]);
    nb++;
  }
  if (nb) {
    op *o = op_new(outcomes_done, NULL, PROTO_NO_RID, r);
    if (o) op_send(o, &c);
    else rstore_cmd_free(&c);
  } else {
    rstore_cmd_free(&c);
  }
  for (uint32_t i = 0; i < nb; i++) {
    proto_buf_free(&bufs[i][0]);
    proto_buf_free(&bufs[i][1]);
  }
  if (any_approved) live_pending_changed(L.d);
  approve_ctx_free(x);
}

/* The learner's answers and marks in this room, from a snapshot reply. */
static void learner_records(approve_ctx *x, redisReply *answers, redisReply *marks_rep,
                            int64_t learner, room_mark *marks, uint32_t ntasks,
                            char **answers_json, char **marks_json) {
  json_t *ans = json_array(), *mk = json_array();
  redisReply *arr[2] = {answers, marks_rep};
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; arr[k]->type == REDIS_REPLY_ARRAY && i < arr[k]->elements; i++) {
      msgpack_unpacked u;
      msgpack_object *f = rec_fields(&u, arr[k]->element[i],
                                     k == 0 ? REC_ANSWER_FIELDS : REC_MARK_FIELDS);
      if (f && f[0].via.u64 == (uint64_t)learner) {
        uint32_t task = (uint32_t)f[1].via.u64;
        if (k == 0) {
          /* the value is stored as its own msgpack bytes */
          msgpack_unpacked v;
          msgpack_unpacked_init(&v);
          json_t *jv = msgpack_unpack_next(&v, f[4].via.str.ptr, f[4].via.str.size, NULL) ==
                               MSGPACK_UNPACK_SUCCESS
                           ? json_of_msgpack(&v.data)
                           : json_null();
          msgpack_unpacked_destroy(&v);
          json_array_append_new(ans, json_pack("{s:i, s:o, s:I}", "task", (int)task,
                                               "value", jv, "by",
                                               (json_int_t)f[2].via.u64));
        } else {
          int pass = f[2].via.u64 == 1;
          if (task < ntasks) marks[task] = pass ? ROOM_PASS : ROOM_FAIL;
          json_t *jm = json_pack("{s:i, s:s}", "task", (int)task, "result",
                                 pass ? "pass" : "fail");
          if (f[3].type == MSGPACK_OBJECT_STR)
            json_object_set_new(jm, "note",
                                json_stringn(f[3].via.str.ptr, f[3].via.str.size));
          json_array_append_new(mk, jm);
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

static void approve_read(op *o, redisReply *rep) {
  ws_sess *s = op_sess(o);
  approve_ctx *x = o->extra;
  if (reply_failed(o, rep) || !s || rep->elements < 2 + 3 * (size_t)x->n) return;
  lroom *r = o->r;
  int64_t now = (int64_t)time(NULL);
  for (uint32_t i = 0; i < x->n; i++) {
    store_approval *it = &x->items[i];
    /* {member, answers, marks} of this learner, from the records op */
    redisReply *member = rep->element[2 + 3 * i];
    it->module = r->module;
    it->approver = ws_user(s);
    it->check_approver = 1; /* R1/R2 again, in the writer's transaction */
    it->now = now;
    it->room = r->id;
    it->check_tasks = 1; /* the writer compares them with the module's, R9 */
    it->tasks_digest = room_digest(r);
    if (member->type != REDIS_REPLY_INTEGER || member->integer != 1) {
      it->outcome = STORE_REFUSED;
      it->reason = "That learner is not in this room.";
      continue;
    }
    room_mark marks[ROOM_MAX_TASKS] = {0};
    char *aj = NULL, *mj = NULL;
    learner_records(x, rep->element[3 + 3 * i], rep->element[4 + 3 * i], it->learner,
                    marks, r->mod->n_tasks, &aj, &mj);
    it->answers_json = aj;
    it->marks_json = mj;
    if (it->outcome != STORE_APPROVED) continue; /* a "not approved" */
    if (store_completion_exists(L.d->db, it->learner, r->module, NULL) == 1)
      continue; /* R10: the same completion again (an indexed lookup) */
    /* "still waiting" (R6/R7, a costly query) is checked by the writer, in
     * the same transaction as the insert: off the loop, and no race
     * between the check and the write */
    it->check_waiting = 1;
    char reason[256];
    if (!room_may_approve(r->mod, marks, reason, sizeof reason)) {
      it->outcome = STORE_REFUSED;
      it->reason = ctx_own(x, strdup(reason));
    }
  }
  /* from here the writer owns the context until approve_committed */
  o->extra = NULL;
  o->extra_free = NULL;
  x->ref = ws_ref_get(s);
  x->rid = o->rid;
  x->r = r;
  r->refs++;
  x->job.items = x->items;
  x->job.n = x->n;
  x->job.done = approve_committed;
  x->job.arg = x;
  if (writer_submit(L.w, &x->job) != 0) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The server is stopping.");
    approve_ctx_free(x);
  }
}

static void handle_approve(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = member_of(s, rid, m->approve.room, 1);
  if (!a) return;
  if ((a->r->ntasks && a->r->ntasks != a->r->mod->n_tasks) ||
      room_digest(a->r) != a->r->mod->digest) {
    /* this instance read the module after it was edited */
    refuse_changed_tasks(s, rid, a->r);
    return;
  }
  uint32_t nd = m->approve.n_decisions;
  approve_ctx *x = calloc(1, sizeof *x + nd * sizeof x->items[0]);
  if (!x) return;
  x->owned_cap = (size_t)nd * APPROVE_OWNED_PER_ITEM;
  x->owned = calloc(x->owned_cap, sizeof *x->owned);
  if (!x->owned) {
    free(x);
    return;
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
  op *o = op_new(approve_read, s, rid, a->r);
  if (!o) {
    approve_ctx_free(x);
    return;
  }
  o->extra = x;
  o->extra_free = (void (*)(void *))approve_ctx_free;
  /* only the decided learners' records, not the whole room */
  rstore_cmd c;
  room_cmd(&c, a->r, "records");
  rstore_cmd_int(&c, a->r->mod->n_tasks);
  for (uint32_t i = 0; i < x->n; i++) rstore_cmd_int(&c, x->items[i].learner);
  op_send(o, &c);
}

/* ---- dispatch and lifecycle ------------------------------------------------ */

void live_handle(ws_sess *s, const proto_msg *m) {
  switch (m->type) {
  case PROTO_T_OPEN: handle_open(s, m); break;
  case PROTO_T_JOIN: handle_join(s, m); break;
  case PROTO_T_ADD: handle_add(s, m); break;
  case PROTO_T_REMOVE: handle_remove(s, m); break;
  case PROTO_T_STEP: handle_step(s, m); break;
  case PROTO_T_ANSWER: handle_answer(s, m); break;
  case PROTO_T_MARK: handle_mark(s, m); break;
  case PROTO_T_APPROVE: handle_approve(s, m); break;
  case PROTO_T_SYNC: handle_sync(s, m); break;
  case PROTO_T_LEAVE: handle_leave(s, m); break;
  case PROTO_T_CLOSE: handle_close(s, m); break;
  default:
    ws_send_err(s, proto_rid_of(m), PROTO_BAD_REQUEST, "Unexpected message.");
    break;
  }
}

void live_session_closed(ws_sess *s) {
  attach *a;
  while ((a = *ws_live_slot(s)) != NULL) {
    lroom *r = a->r;
    int64_t user = ws_user(s);
    r->refs++;
    att_remove(a);
    send_leave(r, user, NULL, PROTO_NO_RID);
    r->refs--;
    room_maybe_free(r);
  }
}

/* Presence heartbeat: for every room with connections here, tell Redis
 * which users this instance still holds; the same call drops the entries
 * of instances that stopped beating (they died) and announces who left. */
static void beat_done(op *o, redisReply *rep) { (void)o; (void)rep; }

/* Beats are spread: each tick serves one slice of the rooms, so a
 * thousand rooms do not land on Redis in the same millisecond. */
#define LIVE_BEAT_SLICES 10

static void on_beat(uv_timer_t *t) {
  (void)t;
  static unsigned tick;
  tick = (tick + 1) % LIVE_BEAT_SLICES;
  if (!redis_ready()) return;
  for (size_t i = tick; i < LIVE_BUCKETS; i += LIVE_BEAT_SLICES)
    for (lroom *r = L.tab[i]; r; r = r->hnext) {
      if (!r->atts) continue;
      rstore_cmd c;
      room_cmd(&c, r, "beat");
      int64_t seen[64];
      size_t ns = 0;
      for (attach *a = r->atts; a; a = a->rnext) {
        int64_t u = ws_user(a->s);
        int dup = 0;
        for (size_t k = 0; k < ns; k++) dup |= seen[k] == u;
        if (dup) continue;
        if (ns < sizeof seen / sizeof seen[0]) seen[ns++] = u;
        rstore_cmd_int(&c, u);
      }
      op *o = op_new(beat_done, NULL, PROTO_NO_RID, r);
      if (o) op_send(o, &c);
      else rstore_cmd_free(&c);
    }
}

/* Back after a loss: every room fetches what it missed. Runs when the
 * pub/sub connection is back and when the room script is loaded again,
 * whichever comes last finds both ready. */
static void resync_rooms(void) {
  if (!redis_ready()) return;
  for (size_t i = 0; i < LIVE_BUCKETS; i++)
    for (lroom *r = L.tab[i]; r; r = r->hnext)
      if (r->seq_known) fetch_gap(r);
}

static void on_psub_state(void *ud, int up) {
  (void)ud;
  if (up) resync_rooms();
}

void live_redis_state(otjd *d, int up) {
  L.up = up;
  if (up) {
    L.sha_ok = 0;
    load_script();
  } else {
    /* tell every connection in a room; they resync when it is back */
    for (size_t i = 0; i < LIVE_BUCKETS; i++)
      for (lroom *r = L.tab[i]; r; r = r->hnext)
        for (attach *a = r->atts; a; a = a->rnext)
          ws_send_err(a->s, PROTO_NO_RID, PROTO_UNAVAILABLE,
                      "The connection to the room store was lost; the room "
                      "resumes when it is back.");
  }
}

int live_init(otjd *d) {
  memset(&L, 0, sizeof L);
  L.d = d;
  proto_buf_init(&L.fw, 0);
  proto_buf_init(&L.fr, 0);
  proto_buf_init(&L.tmp, 0);
  char path[600], err[256];
  snprintf(path, sizeof path, "%s/otj.db", d->cfg.data_dir);
  L.w = writer_start(d->loop, path, err, sizeof err);
  if (!L.w) {
    fprintf(stderr, "otjd: cannot start the approval writer: %s\n", err);
    return -1;
  }
  uv_timer_init(d->loop, &dash_timer);
  dash_timer_ready = 1;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) L.instance[i] = hex[randombytes_uniform(16)];
  L.instance[16] = '\0';
  uv_timer_init(d->loop, &L.beat);
  L.beat_ready = 1;
  /* every room beats three times per staleness window, in slices */
  uint64_t every = (uint64_t)d->cfg.presence_stale_s * 1000 / 3 / LIVE_BEAT_SLICES;
  if (every == 0) every = 1;
  uv_timer_start(&L.beat, on_beat, every, every);
  uv_unref((uv_handle_t *)&L.beat);
  L.ps = psub_create(d->loop, d->redis_addr, RSTORE_DASH_CHANNEL, on_channel,
                     on_psub_state, NULL);
  if (!L.ps) {
    fprintf(stderr, "otjd: bad Redis address for pub/sub\n");
    return -1;
  }
  return 0;
}

void live_fini(otjd *d) {
  (void)d;
  writer_stop(L.w); /* commits what is queued, answers it */
  L.w = NULL;
  psub_destroy(L.ps);
  L.ps = NULL;
  if (L.beat_ready) {
    uv_timer_stop(&L.beat);
    uv_close((uv_handle_t *)&L.beat, NULL);
    L.beat_ready = 0;
  }
  if (dash_timer_ready) {
    uv_timer_stop(&dash_timer);
    uv_close((uv_handle_t *)&dash_timer, NULL);
    dash_timer_ready = 0;
  }
  /* rooms that ops still hold are freed by live_free, after the loop */
}

void live_free(otjd *d) {
  (void)d;
  for (size_t i = 0; i < LIVE_BUCKETS; i++) {
    lroom *r = L.tab[i];
    while (r) {
      lroom *n = r->hnext;
      for (attach *a = r->atts, *an; a; a = an) {
        an = a->rnext;
        free(a);
      }
      for (waiter *w = r->waiters, *wn; w; w = wn) {
        wn = w->next;
        free(w);
      }
      for (int k = 0; k < LIVE_RING; k++) free(r->ring[k]);
      for (ev_msg *e = r->pend, *en; e; e = en) {
        en = e->next;
        free(e);
      }
      room_module_free(r->mod);
      free(r);
      r = n;
    }
    L.tab[i] = NULL;
  }
  proto_buf_free(&L.fw);
  proto_buf_free(&L.fr);
  proto_buf_free(&L.tmp);
}
