/*
 * live_dash — what otjd instances tell each other outside rooms, on the
 * Redis channel "otj:dash": responsibles' pending counts, invitations to
 * learners, and sessions that change under open sockets.
 *
 * The one design idea: one channel, a one-byte tag per message (framing in
 * live_int.h: 'P' pending changed, 'I' invite, 'U' user changed, 'T' token
 * ended), and every instance acts only for its own sockets. A burst of 'P'
 * (one per approval, on every instance) folds into one refresh per
 * LIVE_DASH_DELAY_MS, computed on libuv's worker pool with the worker
 * SQLite handle: a count walks every learner within a responsible's reach,
 * and the loop must not. Invitations are also kept in "otj:inv:<user>" for
 * a learner who connects later, until the room ends.
 */
#include "live_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "requests.h"
#include "store.h"

/* ---- framing (pure) -------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

dash_msg dash_parse(const uint8_t *p, size_t len) {
  dash_msg m = {0};
  if (len == 0) return m;
  const uint8_t *after = p + 1 + LIVE_INSTANCE_LEN; /* U, T: after the sender */
  switch (p[0]) {
  case DASH_PENDING:
    if (len == 1) m.tag = DASH_PENDING;
    break;
  case DASH_INVITE:
    if (len > DASH_INVITE_HEAD) {
      m.tag = DASH_INVITE;
      m.user = (int64_t)get_be64(p + 1);
      m.frame = p + DASH_INVITE_HEAD;
      m.frame_len = len - DASH_INVITE_HEAD;
    }
    break;
  case DASH_USER:
    if (len == DASH_USER_LEN) {
      m.tag = DASH_USER;
      m.instance = (const char *)p + 1;
      m.user = (int64_t)get_be64(after);
      m.kind = (char)after[8];
    }
    break;
  case DASH_TOKEN:
    if (len == DASH_TOKEN_LEN) {
      m.tag = DASH_TOKEN;
      m.instance = (const char *)p + 1;
      m.frame = after;
      m.frame_len = 32;
    }
    break;
  case DASH_ONLINE:
    if (len == DASH_ONLINE_LEN) {
      m.tag = DASH_ONLINE;
      m.user = (int64_t)get_be64(p + 1);
    }
    break;
  case DASH_ASK:
    if (len >= 9 + DASH_ASK_HEAD) {
      m.tag = DASH_ASK;
      m.user = (int64_t)get_be64(p + 1);
      m.frame = p + 9;
      m.frame_len = len - 9;
    }
    break;
  default: break;
  }
  return m;
}

void dash_online_msg(uint8_t *m, int64_t user) {
  m[0] = DASH_ONLINE;
  put_be64(m + 1, (uint64_t)user);
}

/* An ask's payload: learner(8) module(8) requested_at(8) name length(2),
 * the learner's name, the module's title. */
static size_t ask_pack(uint8_t *p, size_t cap, const proto_ask *a) {
  size_t need = DASH_ASK_HEAD + a->learner_name.len + a->module_title.len;
  if (need > cap || a->learner_name.len > 0xffff) return 0;
  put_be64(p, a->learner);
  put_be64(p + 8, a->module);
  put_be64(p + 16, a->requested_at);
  p[24] = (uint8_t)(a->learner_name.len >> 8);
  p[25] = (uint8_t)a->learner_name.len;
  memcpy(p + DASH_ASK_HEAD, a->learner_name.ptr, a->learner_name.len);
  memcpy(p + DASH_ASK_HEAD + a->learner_name.len, a->module_title.ptr, a->module_title.len);
  return need;
}

static int ask_unpack(const uint8_t *p, size_t len, proto_ask *a) {
  if (len < DASH_ASK_HEAD) return -1;
  size_t nl = (size_t)p[24] << 8 | p[25];
  if (DASH_ASK_HEAD + nl > len) return -1;
  a->learner = get_be64(p);
  a->module = get_be64(p + 8);
  a->requested_at = get_be64(p + 16);
  a->learner_name = (proto_str){(const char *)p + DASH_ASK_HEAD, (uint32_t)nl};
  a->module_title =
      (proto_str){(const char *)p + DASH_ASK_HEAD + nl, (uint32_t)(len - DASH_ASK_HEAD - nl)};
  return 0;
}

void dash_invite_head(uint8_t *head, int64_t user) {
  head[0] = DASH_INVITE;
  put_be64(head + 1, (uint64_t)user);
}

void dash_user_msg(uint8_t *m, const char *instance, int64_t user, char kind) {
  m[0] = DASH_USER;
  memcpy(m + 1, instance, LIVE_INSTANCE_LEN);
  put_be64(m + 1 + LIVE_INSTANCE_LEN, (uint64_t)user);
  m[DASH_USER_LEN - 1] = (uint8_t)kind;
}

void dash_token_msg(uint8_t *m, const char *instance, const unsigned char digest[32]) {
  m[0] = DASH_TOKEN;
  memcpy(m + 1, instance, LIVE_INSTANCE_LEN);
  memcpy(m + 1 + LIVE_INSTANCE_LEN, digest, 32);
}

static void publish_dash(otjd *d, const void *data, size_t len) {
  if (!rconn_up(d->redis)) return;
  const char *argv[3] = {psub_sharded(L.ps) ? "SPUBLISH" : "PUBLISH", RSTORE_DASH_CHANNEL, data};
  size_t lens[3] = {strlen(argv[0]), strlen(RSTORE_DASH_CHANNEL), len};
  rconn_command_argv(d->redis, NULL, NULL, 3, argv, lens);
}

void dash_publish(const void *data, size_t len) { publish_dash(L.d, data, len); }

/* ---- pending counts ---------------------------------------------------------- */

typedef struct dash_job {
  uv_work_t work;
  uint64_t took_ms; /* how long the counts took: paces the next refresh */
  size_t n;
  ws_ref **refs;
  int64_t *users;
  int *counts;
  int *requests; /* open asks among them */
  int full;      /* every responsible here (paced, one at a time), not one ask */
  size_t ask_len;
  uint8_t *ask; /* the 'Q' payload this job delivers, or NULL */
} dash_job;

/* One query per department of the responsibles online: every learner's
 * pending items within that department's reach; each responsible's count
 * is the total less their own items. */
typedef struct dept_sum {
  int total;
  size_t n;
  int64_t *users; /* the job's responsibles in this department */
  int *own;       /* their own pending items */
} dept_sum;

static int dept_add(int64_t learner, int count, void *ud) {
  dept_sum *ds = ud;
  ds->total += count;
  for (size_t i = 0; i < ds->n; i++)
    if (ds->users[i] == learner) ds->own[i] = count;
  return 0;
}

/* Counts every responsible of department dept[i] in the job at once. */
static void dash_count_dept(dash_job *j, store *db, const int64_t *dept, size_t i, int *own) {
  size_t m = 0;
  int64_t *users = malloc(j->n * sizeof *users);
  size_t *at = malloc(j->n * sizeof *at);
  if (!users || !at) {
    free(users);
    free(at);
    return;
  }
  for (size_t k = i; k < j->n; k++)
    if (dept[k] == dept[i] && j->counts[k] < 0) {
      users[m] = j->users[k];
      at[m++] = k;
    }
  memset(own, 0, j->n * sizeof *own);
  dept_sum ds = {0, m, users, own};
  if (store_pending_by_learner(db, dept[i], dept_add, &ds) == 0)
    for (size_t k = 0; k < m; k++) j->counts[at[k]] = ds.total - own[k];
  else /* no count rather than a wrong one */
    for (size_t k = 0; k < m; k++) j->counts[at[k]] = -2;
  memset(own, 0, j->n * sizeof *own);
  dept_sum rs = {0, m, users, own};
  /* asks for what waits now, counted as GET /api/otj/pending counts them */
  int rrc = store_pending_asked_by_learner(db, dept[i], dept_add, &rs);
  for (size_t k = 0; k < m; k++) j->requests[at[k]] = rrc == 0 ? rs.total - own[k] : 0;
  free(users);
  free(at);
}

/* On a worker thread. */
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
  for (size_t i = 0; i < j->n; i++)
    if (dept[i] && j->counts[i] < 0) dash_count_dept(j, d->db_worker, dept, i, own);
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
  free(j->requests);
  free(j->ask);
  free(j);
}

static void dash_done(uv_work_t *w, int status) {
  dash_job *j = w->data;
  proto_ask ask;
  int with_ask = j->ask && ask_unpack(j->ask, j->ask_len, &ask) == 0;
  for (size_t i = 0; status == 0 && i < j->n; i++) {
    ws_sess *s = ws_ref_sess(j->refs[i]);
    if (!s || j->counts[i] < 0) continue;
    proto_buf_clear(&L.tmp);
    if (proto_encode_dashboard_ask(&L.tmp, (uint64_t)j->counts[i], (uint64_t)j->requests[i],
                                   with_ask ? &ask : NULL) == 0)
      ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
  }
  if (!j->full) { /* one ask: the paced refreshes go on as they were */
    dash_free(j);
    return;
  }
  /* big organisations count slowly: the counting may take a tenth of a
   * worker thread at most */
  L.dash.delay_ms = j->took_ms * 10 > LIVE_DASH_DELAY_MS ? j->took_ms * 10 : LIVE_DASH_DELAY_MS;
  dash_free(j);
  L.dash.running = 0;
  if (L.dash.again) { /* notices came in while counting: once more, later */
    L.dash.again = 0;
    dash_schedule();
  }
}

typedef struct dash_collect {
  dash_job *j;
  size_t cap;
} dash_collect;

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
    int *q = realloc(j->requests, cap * sizeof *q);
    if (q) j->requests = q;
    if (!r || !u || !k || !q) return;
    c->cap = cap;
  }
  j->refs[j->n] = ws_ref_get(s);
  j->users[j->n] = ws_user(s);
  j->n++;
}

/* Counts for every responsible online on this instance; one at a time. */
static void dash_refresh_all(void) {
  if (L.dash.running) {
    L.dash.again = 1;
    return;
  }
  dash_job *j = calloc(1, sizeof *j);
  if (!j) return;
  dash_collect c = {j, 0};
  ws_each_responsible(L.d, dash_add, &c);
  if (j->n == 0) {
    dash_free(j);
    return;
  }
  j->work.data = j;
  j->full = 1;
  L.dash.running = 1;
  if (uv_queue_work(L.d->loop, &j->work, dash_work, dash_done) != 0) {
    L.dash.running = 0;
    dash_free(j);
  }
}

static void on_dash_timer(uv_timer_t *t) {
  (void)t;
  dash_refresh_all();
}

void dash_schedule(void) {
  if (!L.dash.timer_ready) return;
  if (!uv_is_active((uv_handle_t *)&L.dash.timer))
    uv_timer_start(&L.dash.timer, on_dash_timer, L.dash.delay_ms, 0);
}

/* An ask for responsible `user`: their connections here get their counts
 * and the ask, computed like a refresh but for them alone and at once. */
static void only_responsible(ws_sess *s, void *arg) {
  if (ws_is_responsible(s)) dash_add(s, arg);
}

static void dash_ask_for(int64_t user, const uint8_t *payload, size_t len) {
  dash_job *j = calloc(1, sizeof *j);
  if (!j) return;
  dash_collect c = {j, 0};
  ws_each_of_user(L.d, user, only_responsible, &c);
  j->ask = malloc(len ? len : 1);
  if (j->n == 0 || !j->ask) {
    dash_free(j);
    return;
  }
  memcpy(j->ask, payload, len);
  j->ask_len = len;
  j->work.data = j;
  if (uv_queue_work(L.d->loop, &j->work, dash_work, dash_done) != 0) dash_free(j);
}

void live_ask_arrived(otjd *d, const proto_ask *ask, const int64_t *to, size_t n) {
  size_t cap = 9 + DASH_ASK_HEAD + ask->learner_name.len + ask->module_title.len;
  uint8_t *m = malloc(cap);
  if (!m) return;
  size_t len = ask_pack(m + 9, cap - 9, ask);
  for (size_t i = 0; len && i < n; i++) {
    m[0] = DASH_ASK;
    put_be64(m + 1, (uint64_t)to[i]);
    publish_dash(d, m, 9 + len);
  }
  free(m);
}

void live_pending_changed(otjd *d) {
  uint8_t m = DASH_PENDING;
  publish_dash(d, &m, 1);
}

int dash_start(otjd *d) {
  L.dash.delay_ms = LIVE_DASH_DELAY_MS;
  uv_timer_init(d->loop, &L.dash.timer);
  L.dash.timer_ready = 1;
  return 0;
}

void dash_stop(void) {
  if (!L.dash.timer_ready) return;
  uv_timer_stop(&L.dash.timer);
  uv_close((uv_handle_t *)&L.dash.timer, NULL);
  L.dash.timer_ready = 0;
}

/* ---- invitations ---------------------------------------------------------------- */

void dash_invite(int64_t user, const char *room, const char *code, int64_t module,
                 const char *title, int64_t host, const char *host_name) {
  proto_buf b;
  proto_buf_init(&b, DASH_INVITE_HEAD);
  if (proto_encode_invite(&b, proto_s(room), proto_s(code), (uint64_t)module, proto_s(title),
                          (uint64_t)host, proto_s(host_name)) == 0) {
    uint8_t *p = proto_buf_bytes(&b) - DASH_INVITE_HEAD;
    dash_invite_head(p, user);
    publish_dash(L.d, p, proto_buf_size(&b) + DASH_INVITE_HEAD);
    /* kept for the learner's later connections, until the room ends */
    if (rconn_up(L.d->redis)) {
      char key[64], ttl[16];
      rstore_invites_key(user, key, sizeof key);
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

void dash_forget_invite(int64_t user, const char *room) {
  if (!rconn_up(L.d->redis)) return;
  char key[64];
  rstore_invites_key(user, key, sizeof key);
  rconn_command(L.d->redis, NULL, NULL, "HDEL %s %s", key, room);
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
  (void)ac;
  invite_check *c = priv;
  redisReply *rep = reply;
  ws_sess *s = ws_ref_sess(c->ref);
  if (rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "open")) {
    if (s) ws_send(s, c->frame, c->len);
  } else if (rep) {
    dash_forget_invite(c->user, c->room);
  }
  ws_ref_put(c->ref);
  free(c);
}

static void invites_read(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  ws_ref *ref = priv;
  redisReply *rep = reply;
  ws_sess *s = ws_ref_sess(ref);
  for (size_t i = 0; s && rep && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
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
    if (rconn_command(L.d->redis, invite_state, c, "HGET %s state", k.key[RSTORE_META]) != 0) {
      ws_ref_put(c->ref);
      free(c);
    }
  }
  ws_ref_put(ref);
}

void live_session_ready(ws_sess *s) {
  /* the count comes with the next (folded) refresh: a hundred responsibles
   * logging in at once cost one query per department, not a hundred */
  if (ws_is_responsible(s)) dash_schedule();
  presence_session_ready(s);
  if (!rconn_up(L.d->redis)) return;
  char key[64];
  rstore_invites_key(ws_user(s), key, sizeof key);
  ws_ref *ref = ws_ref_get(s);
  if (rconn_command(L.d->redis, invites_read, ref, "HGETALL %s", key) != 0) ws_ref_put(ref);
}

/* ---- sessions that change under open sockets ----------------------------------- */

/* "User X's rights changed / X was deactivated" and "this token was logged
 * out" go out on the channel, so every instance closes its own sockets of
 * that user or token; the instance that made the change has already closed
 * its own, and skips its own message. */
#define LIVE_REASON_RIGHTS      "your rights changed: reconnect"
#define LIVE_REASON_DEACTIVATED "account deactivated: ask an administrator"
#define LIVE_REASON_LOGOUT      "logged out: log in again"

static void user_change_apply(otjd *d, int64_t user, char kind) {
  if (kind == 'D')
    ws_close_user(d, user, WS_CLOSE_SESSION_ENDED, LIVE_REASON_DEACTIVATED);
  else
    ws_close_user(d, user, WS_CLOSE_RIGHTS_CHANGED, LIVE_REASON_RIGHTS);
}

void live_user_changed(otjd *d, int64_t user, int deactivated) {
  char kind = deactivated ? 'D' : 'R';
  user_change_apply(d, user, kind);
  uint8_t m[DASH_USER_LEN];
  dash_user_msg(m, L.instance, user, kind);
  publish_dash(d, m, sizeof m);
}

void live_token_ended(otjd *d, const unsigned char digest[32]) {
  ws_close_token(d, digest, WS_CLOSE_SESSION_ENDED, LIVE_REASON_LOGOUT);
  uint8_t m[DASH_TOKEN_LEN];
  dash_token_msg(m, L.instance, digest);
  publish_dash(d, m, sizeof m);
}

/* ---- a message on the channel ----------------------------------------------------- */

typedef struct frame_arg {
  const uint8_t *p;
  size_t n;
} frame_arg;

static void send_frame(ws_sess *s, void *arg) {
  frame_arg *f = arg;
  ws_send(s, f->p, f->n);
}

void dash_on_message(const char *data, size_t len) {
  dash_msg m = dash_parse((const uint8_t *)data, len);
  int ours = m.instance && !memcmp(m.instance, L.instance, LIVE_INSTANCE_LEN);
  switch (m.tag) {
  case DASH_PENDING: dash_schedule(); break;
  case DASH_INVITE: {
    frame_arg f = {m.frame, m.frame_len};
    ws_each_of_user(L.d, m.user, send_frame, &f);
    break;
  }
  case DASH_USER:
    if (!ours) user_change_apply(L.d, m.user, m.kind);
    break;
  case DASH_TOKEN:
    if (!ours) ws_close_token(L.d, m.frame, WS_CLOSE_SESSION_ENDED, LIVE_REASON_LOGOUT);
    break;
  case DASH_ONLINE: presence_changed(m.user); break;
  case DASH_ASK: dash_ask_for(m.user, m.frame, m.frame_len); break;
  default: break; /* not ours to read */
  }
}
