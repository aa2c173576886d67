/*
 * live_op — the life of a request to Redis for a live room: the op that
 * carries it, the room script it calls, the room subscription it may wait
 * for, and the reading of the script's reply.
 *
 * The one design idea: every room message reaches Redis the same way, by
 * live_call: the caller encodes its event (live_event), builds the script
 * command with the op's rstore_ function, and live_call sends it with an op
 * that holds the client (a ws_ref: the session may close meanwhile) and the
 * room (a reference). The reply comes to the op's handler once; the op is
 * freed after it, unless the handler sent it on (live_op_send). A call that
 * cannot be sent tells the client "unavailable" and is freed at once.
 */
#include "live_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sending --------------------------------------------------------------- */

rstore_call live_rcall(const lroom *r) {
  return (rstore_call){
      .sha = L.sha,
      .keys = &r->keys,
      .now_ms = live_wall_ms(),
      .ttl_s = L.d->cfg.room_idle_ttl_s,
      .sharded = psub_sharded(L.ps),
      .instance = L.instance,
      .stale_ms = L.d->cfg.presence_stale_s * 1000,
      .log_keep = L.d->cfg.room_log_keep,
  };
}

static rstore_bytes buf_bytes(const proto_buf *b) {
  return (rstore_bytes){proto_buf_size(b) ? proto_buf_bytes(b) : (const void *)"",
                        proto_buf_size(b)};
}

rstore_event live_event(const proto_event *ev, int slot) {
  OTJ_ASSERT(slot == 0 || slot == 1);
  proto_buf *w = &L.evb[slot][0], *red = &L.evb[slot][1];
  proto_buf_clear(w);
  proto_buf_clear(red);
  /* the redacted body is what any other learner sees */
  proto_viewer other = {.user = 0, .is_host = false};
  if (proto_encode_event_body(w, ev, false) != 0 ||
      (proto_event_hidden_for(ev, other) && proto_encode_event_body(red, ev, true) != 0))
    return (rstore_event){{NULL, 0}, {NULL, 0}}; /* the command will not be sent */
  return (rstore_event){buf_bytes(w), buf_bytes(red)};
}

static int op_send(live_op *o, rstore_cmd *c, int snap);

static live_op *call(rstore_cmd *c, live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r, int snap) {
  live_op *o = live_op_new(fn, s, rid, r);
  if (!o) {
    rstore_cmd_free(c);
    return NULL;
  }
  return op_send(o, c, snap) == 0 ? o : NULL;
}

live_op *live_call(rstore_cmd *c, live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r) {
  return call(c, fn, s, rid, r, 0);
}

live_op *live_call_snap(rstore_cmd *c, live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r) {
  return call(c, fn, s, rid, r, 1);
}

live_op *live_op_new(live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r) {
  live_op *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->fn = fn;
  o->rid = rid;
  if (s) o->ref = ws_ref_get(s);
  if (r) {
    o->r = r;
    room_hold(r);
  }
  return o;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

/* The script call, then (snap) the snapshot reads of the op's room. */
static int op_send(live_op *o, rstore_cmd *c, int snap) {
  int rc = -1;
  OTJ_ASSERT(!snap || o->r);
  if (!c->failed && live_redis_ready() && !snap) {
    rc = rconn_command_argv(L.d->redis, on_reply, o, c->argc, c->argv, c->len);
  } else if (!c->failed && live_redis_ready()) {
    int argc[1 + RSTORE_SNAP_READS];
    const char *reads[RSTORE_SNAP_READS][2];
    const char **argv[1 + RSTORE_SNAP_READS];
    const size_t *lens[1 + RSTORE_SNAP_READS];
    argc[0] = c->argc;
    argv[0] = c->argv;
    lens[0] = c->len;
    for (int i = 0; i < RSTORE_SNAP_READS; i++) {
      rstore_snapshot_read(&o->r->keys, i, reads[i]);
      argc[1 + i] = 2;
      argv[1 + i] = reads[i];
      lens[1 + i] = NULL;
    }
    rc = rconn_transaction(L.d->redis, on_reply, o, 1 + RSTORE_SNAP_READS, argc, argv, lens);
  }
  rstore_cmd_free(c);
  if (rc == 0) {
    o->inflight = 1;
    o->snap_sent = snap;
    return 0;
  }
  if (!L.sha_ok && rconn_up(L.d->redis)) live_load_script();
  ws_sess *s = live_op_sess(o);
  if (s)
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "Live rooms are unavailable for a moment; try again shortly.");
  if (!o->in_cb) live_op_free(o); /* else on_reply frees it */
  return -1;
}

int live_op_send(live_op *o, rstore_cmd *c) { return op_send(o, c, 0); }

int live_op_send_snap(live_op *o, rstore_cmd *c) { return op_send(o, c, 1); }

/* The reply is valid only during the call (hiredis). */
static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  live_op *o = priv;
  redisReply *rep = reply;
  OTJ_ASSERT(o->inflight && !o->in_cb);
  const redisReply *snap = NULL;
  if (o->snap_sent && rep && rep->type == REDIS_REPLY_ARRAY) {
    /* EXEC ran: the script's reply first, then the reads */
    if (rep->elements == 1 + RSTORE_SNAP_READS) {
      snap = rep;
      rep = rep->element[0];
    } else {
      rep = NULL; /* not what was sent: as if the connection had dropped */
    }
  }
  if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOSCRIPT") && L.sha_ok) {
    /* scripts were flushed: load it again now (a join's queue does not
     * send while it is away, so waiting for the next call could wait for
     * the next heartbeat) */
    L.sha_ok = 0;
    if (rconn_up(L.d->redis)) live_load_script();
  }
  o->inflight = 0;
  o->snap_sent = 0;
  o->in_cb = 1;
  o->snap = snap;
  if (o->fn) o->fn(o, rep);
  o->snap = NULL;
  o->in_cb = 0;
  if (!o->inflight) live_op_free(o); /* unless the handler sent it on */
}

ws_sess *live_op_sess(const live_op *o) { return o->ref ? ws_ref_sess(o->ref) : NULL; }

void live_op_free(live_op *o) {
  if (o->ref) ws_ref_put(o->ref);
  if (o->extra_free) o->extra_free(o->extra);
  if (o->r) room_release(o->r);
  free(o);
}

int live_redis_ready(void) { return L.up && L.sha_ok && rconn_up(L.d->redis) && psub_up(L.ps); }

/* ---- replies ----------------------------------------------------------------- */

static proto_code code_of(const char *name) {
  static const struct {
    const char *n;
    proto_code c;
  } t[] = {
      {"not_found", PROTO_NOT_FOUND}, {"forbidden", PROTO_FORBIDDEN},
      {"conflict", PROTO_CONFLICT},   {"bad_request", PROTO_BAD_REQUEST},
      {"too_large", PROTO_TOO_LARGE}, {"rate_limited", PROTO_RATE_LIMITED},
  };
  for (size_t i = 0; name && i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].n, name)) return t[i].c;
  return PROTO_INTERNAL;
}

static const char *str_of(const redisReply *x) {
  return x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS ? x->str : NULL;
}

live_reply live_reply_parse(const redisReply *rep) {
  live_reply y = {.kind = LIVE_REPLY_BAD, .code = PROTO_INTERNAL};
  if (!rep) {
    y.kind = LIVE_REPLY_NONE;
    return y;
  }
  if (rep->type == REDIS_REPLY_ERROR) {
    /* OOM: Redis is at its maxmemory (noeviction): the write was not made,
     * nothing was evicted */
    y.kind = !rep->str                           ? LIVE_REPLY_REFUSED
             : !strncmp(rep->str, "OOM", 3)      ? LIVE_REPLY_FULL
             : !strncmp(rep->str, "NOSCRIPT", 8) ? LIVE_REPLY_NOSCRIPT
                                                 : LIVE_REPLY_REFUSED;
    y.msg = rep->str;
    return y;
  }
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
      rep->element[0]->type != REDIS_REPLY_STRING)
    return y;
  const char *k = rep->element[0]->str;
  if (!strcmp(k, "ok") || !strcmp(k, "old")) {
    y.kind = k[1] == 'k' ? LIVE_REPLY_OK : LIVE_REPLY_OLD;
    y.seq = rep->element[1]->type == REDIS_REPLY_INTEGER ? (uint64_t)rep->element[1]->integer : 0;
  } else if (!strcmp(k, "err") && rep->elements >= 3 && str_of(rep->element[1]) &&
             str_of(rep->element[2])) {
    y.kind = LIVE_REPLY_ERR;
    y.err_name = rep->element[1]->str;
    y.code = code_of(y.err_name);
    y.msg = rep->element[2]->str;
  }
  return y;
}

int live_reply_failed(live_op *o, redisReply *rep) {
  live_reply y = live_reply_parse(rep);
  if (y.kind == LIVE_REPLY_OK) return 0;
  ws_sess *s = live_op_sess(o);
  if (!s) return 1;
  switch (y.kind) {
  case LIVE_REPLY_NONE:
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The room store did not answer; try again shortly.");
    break;
  case LIVE_REPLY_ERR: ws_send_err(s, o->rid, y.code, y.msg); break;
  case LIVE_REPLY_FULL: /* the client retries later */
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE,
                "The room store is full for a moment; try again shortly.");
    break;
  case LIVE_REPLY_NOSCRIPT: /* nothing was done; the script is on its way back */
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The room store is restarting; try again shortly.");
    break;
  case LIVE_REPLY_REFUSED:
    ws_send_err(s, o->rid, PROTO_INTERNAL, "The room store refused the request; try again.");
    break;
  default: ws_send_err(s, o->rid, PROTO_INTERNAL, "Unexpected room store reply."); break;
  }
  return 1;
}

/* ---- the room script ------------------------------------------------------ */

static void script_loaded(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  (void)priv;
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_STRING && rep->len < sizeof L.sha) {
    memcpy(L.sha, rep->str, rep->len);
    L.sha[rep->len] = '\0';
    L.sha_ok = 1;
    live_resync_rooms();
  } else {
    log_event(LOG_ERROR, "loading the room script failed", "error=%s",
              rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
  }
}

void live_load_script(void) {
  size_t len;
  const char *text = rstore_script(&len);
  const char *argv[3] = {"SCRIPT", "LOAD", text};
  size_t lens[3] = {6, 4, len};
  rconn_command_argv(L.d->redis, script_loaded, NULL, 3, argv, lens);
}

/* ---- subscriptions ---------------------------------------------------------- */

static void sub_done(void *arg, int ok) {
  lroom *r = arg;
  r->sub = ok ? LROOM_SUBSCRIBED : LROOM_UNSUBSCRIBED;
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
  if (r->sub != LROOM_UNSUBSCRIBED) return;
  r->sub = LROOM_SUBSCRIBING;
  if (psub_subscribe(L.ps, r->keys.chan, sub_done, r) != 0) sub_done(r, 0);
}

void live_when_subscribed(lroom *r, void (*fn)(void *, int), void *o) {
  if (r->sub == LROOM_SUBSCRIBED) {
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
