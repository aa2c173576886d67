/*
 * live_presence — who of the responsibles is online now, on any otjd
 * instance and outside rooms: the "online now" of the learner's OTJ pop-up
 * (the `watch` extension) and the audience of an "Ask for OTJ".
 *
 * The one design idea: presence is kept per person and per instance, like a
 * room's, but only for responsibles (the only people anyone asks about), in
 * "otj:on:<user>" (rstore_online_key): a hash instance -> last beat (ms). An
 * instance writes its field when the first connection of a responsible says
 * hello there, deletes it when the last one closes, and beats for everyone it
 * holds three times per presence staleness; a field older than that is an
 * instance that died. A change is announced on otj:dash ('O' + user);
 * instances with watchers of that user read the hash again and push `online`
 * to the watchers whose view changed. Watchers are read again on every beat
 * too, which is how the death of another instance reaches them.
 */
#include "live_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* ---- reading presence -------------------------------------------------------- */

typedef struct online_read {
  live_online_fn *fn;
  void *ud;
  size_t n, left;
  int64_t now_ms;
  struct online_slot {
    struct online_read *job;
    size_t i;
  } * slots;
  int online[];
} online_read;

static int entry_fresh(const redisReply *rep, int64_t now_ms) {
  if (!rep || rep->type != REDIS_REPLY_ARRAY) return 0;
  int64_t stale = (int64_t)L.d->cfg.presence_stale_s * 1000;
  for (size_t i = 0; i + 1 < rep->elements; i += 2) {
    const redisReply *v = rep->element[i + 1];
    if (v->type != REDIS_REPLY_STRING) continue;
    int64_t t = strtoll(v->str, NULL, 10);
    if (t > 0 && now_ms - t <= stale) return 1;
  }
  return 0;
}

static void online_finish(online_read *j) {
  j->fn(j->ud, j->online, j->n);
  free(j->slots);
  free(j);
}

static void on_online_reply(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct online_slot *sl = priv;
  online_read *j = sl->job;
  j->online[sl->i] = entry_fresh(reply, j->now_ms);
  if (--j->left == 0) online_finish(j);
}

int live_online_read(const int64_t *users, size_t n, live_online_fn *fn, void *ud) {
  if (!L.d || !rconn_up(L.d->redis)) return -1;
  online_read *j = calloc(1, sizeof *j + (n ? n : 1) * sizeof(int));
  if (!j) return -1;
  j->slots = calloc(n ? n : 1, sizeof *j->slots);
  if (!j->slots) {
    free(j);
    return -1;
  }
  j->fn = fn;
  j->ud = ud;
  j->n = n;
  j->left = n + 1; /* one more, let go below: no answer before every ask is out */
  j->now_ms = live_wall_ms();
  for (size_t i = 0; i < n; i++) {
    char key[48];
    rstore_online_key(users[i], key, sizeof key);
    j->slots[i] = (struct online_slot){j, i};
    if (rconn_command(L.d->redis, on_online_reply, &j->slots[i], "HGETALL %s", key) != 0)
      j->left--; /* lost meanwhile: that one counts as offline */
  }
  if (--j->left == 0) online_finish(j);
  return 0;
}

/* ---- this instance's responsibles ------------------------------------------------ */

static void publish_online(int64_t user) {
  uint8_t m[DASH_ONLINE_LEN];
  dash_online_msg(m, user);
  dash_publish(m, sizeof m);
}

/* Writes this instance's beat for `user` (and keeps the hash alive). */
static void beat_user(int64_t user) {
  char key[48], inst[LIVE_INSTANCE_LEN + 1], now[24], ttl[24];
  rstore_online_key(user, key, sizeof key);
  memcpy(inst, L.instance, sizeof inst);
  snprintf(now, sizeof now, "%lld", (long long)live_wall_ms());
  snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)L.d->cfg.presence_stale_s * 2000ULL);
  rconn_command(L.d->redis, NULL, NULL, "HSET %s %s %s", key, inst, now);
  rconn_command(L.d->redis, NULL, NULL, "PEXPIRE %s %s", key, ttl);
}

typedef struct count_arg {
  const ws_sess *skip;
  int n;
} count_arg;

static void count_resp(ws_sess *s, void *arg) {
  count_arg *c = arg;
  if (s != c->skip && ws_is_responsible(s)) c->n++;
}

void presence_session_ready(ws_sess *s) {
  if (!ws_is_responsible(s) || !rconn_up(L.d->redis)) return;
  count_arg c = {s, 0};
  ws_each_of_user(L.d, ws_user(s), count_resp, &c);
  if (c.n > 0) return; /* this instance holds them already */
  beat_user(ws_user(s));
  publish_online(ws_user(s));
}

/* ---- watchers ------------------------------------------------------------------------ */

/* One open pop-up: a connection that follows its responsibles. It lives in
 * the list while its connection does; each read in flight holds it too. */
typedef struct watcher {
  struct watcher *next;
  ws_ref *ref;
  int refs;
  int dead;           /* unwatched or closed: freed when the last read ends */
  int reading, again; /* one read at a time; a change meanwhile reads again */
  int sent;           /* the first `online` went out */
  proto_rid rid;      /* of the `watch`, for the first answer */
  size_t n;           /* responsibles followed */
  int64_t ids[LIVE_WATCH_MAX];
  char *names[LIVE_WATCH_MAX];
  int online[LIVE_WATCH_MAX]; /* as last sent */
} watcher;

static watcher *watchers;

static void watcher_put(watcher *w) {
  if (--w->refs > 0) return;
  ws_ref_put(w->ref);
  for (size_t i = 0; i < w->n; i++) free(w->names[i]);
  free(w);
}

static void watcher_unlink(watcher *w) {
  for (watcher **p = &watchers; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
  w->dead = 1;
  watcher_put(w);
}

static void watcher_read(watcher *w);

static void watcher_send(watcher *w, const int *online) {
  ws_sess *s = ws_ref_sess(w->ref);
  if (!s) return;
  proto_online people[LIVE_WATCH_MAX];
  for (size_t i = 0; i < w->n; i++)
    people[i] = (proto_online){(uint64_t)w->ids[i], proto_s(w->names[i]), online[i] != 0};
  proto_buf_clear(&L.tmp);
  if (proto_encode_online(&L.tmp, w->sent ? PROTO_NO_RID : w->rid, people, (uint32_t)w->n) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  w->sent = 1;
}

static void on_watcher_read(void *ud, const int *online, size_t n) {
  watcher *w = ud;
  w->reading = 0;
  if (!w->dead && ws_ref_sess(w->ref)) {
    int changed = !w->sent;
    for (size_t i = 0; i < n; i++) changed |= (w->online[i] != 0) != (online[i] != 0);
    if (changed) {
      memcpy(w->online, online, n * sizeof *online);
      watcher_send(w, online);
    }
    if (w->again) {
      w->again = 0;
      watcher_read(w);
    }
  }
  watcher_put(w);
}

static void watcher_read(watcher *w) {
  if (w->reading) {
    w->again = 1;
    return;
  }
  w->reading = 1;
  w->refs++;
  if (live_online_read(w->ids, w->n, on_watcher_read, w) != 0) {
    w->reading = 0;
    w->refs--;
  }
}

static watcher *watcher_of(const ws_sess *s) {
  for (watcher *w = watchers; w; w = w->next)
    if (!w->dead && ws_ref_sess(w->ref) == s) return w;
  return NULL;
}

typedef struct collect_arg {
  watcher *w;
  int64_t self;
} collect_arg;

static int collect_person(const store_person *p, void *ud) {
  collect_arg *c = ud;
  watcher *w = c->w;
  if (w->n == LIVE_WATCH_MAX) return 1; /* the first ones, by name: enough for a pop-up */
  char *name = strdup(p->name ? p->name : "");
  if (!name) return -1;
  w->ids[w->n] = p->id;
  w->names[w->n] = name;
  w->n++;
  return 0;
}

void presence_watch(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  watcher *old = watcher_of(s);
  if (old) watcher_unlink(old);
  if (!live_redis_ready()) {
    ws_send_err(s, rid, PROTO_UNAVAILABLE,
                "Who is online cannot be told right now; the list still names your "
                "responsibles.");
    return;
  }
  watcher *w = calloc(1, sizeof *w);
  if (!w) {
    ws_send_err(s, rid, PROTO_INTERNAL, "Out of memory.");
    return;
  }
  collect_arg c = {w, ws_user(s)};
  int rc = store_responsibles_of(L.d->db, ws_user(s), collect_person, &c);
  if (rc < 0) {
    for (size_t i = 0; i < w->n; i++) free(w->names[i]);
    free(w);
    ws_send_err(s, rid, rc == STORE_BUSY ? PROTO_UNAVAILABLE : PROTO_INTERNAL,
                "Your responsibles could not be read; try again in a moment.");
    return;
  }
  w->ref = ws_ref_get(s);
  w->refs = 1;
  w->rid = rid;
  w->next = watchers;
  watchers = w;
  watcher_read(w);
}

void presence_unwatch(ws_sess *s, const proto_msg *m) {
  watcher *w = watcher_of(s);
  if (w) watcher_unlink(w);
  proto_buf_clear(&L.tmp);
  if (proto_encode_ok(&L.tmp, proto_rid_of(m), false, 0) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

void presence_changed(int64_t user) {
  for (watcher *w = watchers; w; w = w->next) {
    if (w->dead) continue;
    for (size_t i = 0; i < w->n; i++)
      if (w->ids[i] == user) {
        watcher_read(w);
        break;
      }
  }
}

void presence_session_closed(ws_sess *s) {
  for (watcher *w = watchers, *next; w; w = next) {
    next = w->next;
    if (ws_ref_sess(w->ref) == s) watcher_unlink(w);
  }
  if (!ws_is_responsible(s) || !rconn_up(L.d->redis)) return;
  count_arg c = {s, 0};
  ws_each_of_user(L.d, ws_user(s), count_resp, &c);
  if (c.n > 0) return; /* another connection of theirs stays here */
  char key[48], inst[LIVE_INSTANCE_LEN + 1];
  rstore_online_key(ws_user(s), key, sizeof key);
  memcpy(inst, L.instance, sizeof inst);
  rconn_command(L.d->redis, NULL, NULL, "HDEL %s %s", key, inst);
  publish_online(ws_user(s));
}

/* ---- the beat ------------------------------------------------------------------------ */

typedef struct beat_arg {
  int64_t *users;
  size_t n, cap;
} beat_arg;

static void beat_collect(ws_sess *s, void *arg) {
  beat_arg *b = arg;
  int64_t u = ws_user(s);
  for (size_t i = 0; i < b->n; i++)
    if (b->users[i] == u) return;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 32;
    int64_t *n = realloc(b->users, cap * sizeof *n);
    if (!n) return;
    b->users = n;
    b->cap = cap;
  }
  b->users[b->n++] = u;
}

static void on_presence_beat(uv_timer_t *t) {
  (void)t;
  if (!rconn_up(L.d->redis)) return;
  beat_arg b = {0};
  ws_each_responsible(L.d, beat_collect, &b);
  for (size_t i = 0; i < b.n; i++) beat_user(b.users[i]);
  free(b.users);
  for (watcher *w = watchers; w; w = w->next)
    if (!w->dead) watcher_read(w);
}

static uv_timer_t beat_timer;
static int beat_ready;

void presence_start(otjd *d) {
  uint64_t every = (uint64_t)d->cfg.presence_stale_s * 1000 / 3;
  if (every == 0) every = 1;
  uv_timer_init(d->loop, &beat_timer);
  uv_timer_start(&beat_timer, on_presence_beat, every, every);
  uv_unref((uv_handle_t *)&beat_timer);
  beat_ready = 1;
}

void presence_stop(void) {
  if (beat_ready) {
    uv_timer_stop(&beat_timer);
    uv_close((uv_handle_t *)&beat_timer, NULL);
    beat_ready = 0;
  }
  while (watchers) watcher_unlink(watchers);
}
