/*
 * api — HTTP routes. JSON in and out through jansson.
 *
 * Login is the one slow call: argon2id verification takes ~100 ms and 64 MiB,
 * so it runs on libuv's worker pool with its own SQLite handle, bounded by
 * cfg.login_inflight, and attempts are counted against per-name, per-address
 * and global budgets before the check (see "login throttle"). Unknown
 * logins are checked against a dummy hash, so the answer time does not
 * tell which logins exist.
 */
#include "api.h"

#include <jansson.h>
#include <sodium.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "api_util.h"
#include "auth.h"
#include "evidence.h"
#include "live.h"
#include "metrics.h"
#include "proto.h"
#include "qr.h"
#include "store.h"

#define LOGIN_MAX      64
#define PASSWORD_MAX   1024
#define THROTTLE_SLOTS 8192 /* login budgets in use, hashed by key */
#define THROTTLE_PROBE 8    /* slots looked at per key */

/* reply_json, body_object, user_json, require_user: api_util.c */

/* ---- login throttle ---------------------------------------------------- *
 *
 * Four budgets, each for cfg.login_window_s seconds from its first count:
 *   - attempts at one login name from one address (cfg.login_per_minute),
 *   - attempts at one login name from every address (cfg.login_per_name),
 *   - failed logins from one address over every name (cfg.login_per_address),
 *   - failed logins in all (cfg.login_global).
 * An attempt at a name is counted BEFORE its password is checked (the check
 * is slow, so parallel guesses would otherwise all pass while the first are
 * still being verified); a successful login gives that count back.
 * Login names are case-folded the way the users table compares them
 * (ASCII, COLLATE NOCASE), so "MARK" and "mark" share their budgets.
 * Guesses from elsewhere use up the per-name budget only at a higher
 * count, so the real user is seldom locked out by them, and a lockout never
 * lasts longer than one window. */

typedef struct tslot {
  uint64_t key;      /* hash of the budget's key; 0 = free */
  uint64_t start_ms; /* first attempt of the window */
  uint32_t n;        /* attempts counted in the window */
} tslot;

static tslot throttle[THROTTLE_SLOTS];
static tslot throttle_all; /* the global budget */

enum { TK_NAME_ADDR, TK_NAME, TK_ADDR, TK__COUNT };

static uint64_t fnv(uint64_t h, const char *p, int fold) {
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (fold && c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    h = (h ^ c) * 1099511628211ULL;
  }
  return h;
}

/* The keys of an attempt's budgets (never 0). */
static void throttle_keys(const char *login, const char *addr, uint64_t k[TK__COUNT]) {
  const uint64_t seed = 1469598103934665603ULL; /* FNV-1a */
  uint64_t name = fnv(seed, login, 1);
  k[TK_NAME_ADDR] = fnv((name ^ 0x1f) * 1099511628211ULL, addr, 0) | 1;
  k[TK_NAME] = (name ^ 'n') | 1;
  k[TK_ADDR] = fnv((seed ^ 'a') * 1099511628211ULL, addr, 0) | 1;
}

static int slot_live(const otjd *d, const tslot *t, uint64_t now) {
  return t->n > 0 && now - t->start_ms < (uint64_t)d->cfg.login_window_s * 1000;
}

/* The live slot of `key`, or (create) a fresh one for it; NULL when there
 * is none (and create is 0). A table full of live budgets shares the first
 * slot: counting too much is the safe side. */
static tslot *slot_of(const otjd *d, uint64_t key, uint64_t now, int create) {
  size_t i0 = (size_t)(key % THROTTLE_SLOTS);
  tslot *spare = NULL;
  for (size_t k = 0; k < THROTTLE_PROBE; k++) {
    tslot *t = &throttle[(i0 + k) % THROTTLE_SLOTS];
    int live = slot_live(d, t, now);
    if (live && t->key == key) return t;
    if (!live && !spare) spare = t;
  }
  if (!create) return NULL;
  if (!spare) return &throttle[i0];
  spare->key = key;
  spare->start_ms = now;
  spare->n = 0;
  return spare;
}

/* Seconds until the budget of `t` opens again, when it is used up; else 0. */
static uint64_t wait_of(const otjd *d, const tslot *t, uint32_t budget, uint64_t now) {
  if (!t || !slot_live(d, t, now) || t->n < budget) return 0;
  uint64_t end = t->start_ms + (uint64_t)d->cfg.login_window_s * 1000;
  return (end - now + 999) / 1000;
}

/* 0 when the attempt may go on, else the seconds to wait. */
static uint64_t throttled(const otjd *d, const uint64_t k[TK__COUNT]) {
  uint64_t now = otjd_now_ms(d), w = 0, x;
  const uint32_t budget[TK__COUNT] = {d->cfg.login_per_minute, d->cfg.login_per_name,
                                      d->cfg.login_per_address};
  for (int i = 0; i < TK__COUNT; i++)
    if ((x = wait_of(d, slot_of(d, k[i], now, 0), budget[i], now)) > w) w = x;
  if ((x = wait_of(d, &throttle_all, d->cfg.login_global, now)) > w) w = x;
  return w;
}

/* Counts an attempt against the budgets of its login name: before the
 * password check, so parallel guesses at one account cannot all slip in. */
static void throttle_count(const otjd *d, const uint64_t k[TK__COUNT]) {
  uint64_t now = otjd_now_ms(d);
  slot_of(d, k[TK_NAME_ADDR], now, 1)->n++;
  slot_of(d, k[TK_NAME], now, 1)->n++;
}

/* Gives back the count of an attempt that turned out well. */
static void throttle_refund(const otjd *d, const uint64_t k[TK__COUNT]) {
  uint64_t now = otjd_now_ms(d);
  for (int i = TK_NAME_ADDR; i <= TK_NAME; i++) {
    tslot *t = slot_of(d, k[i], now, 0);
    if (t && t->n > 0) t->n--;
  }
}

/* Counts a failed attempt against the address and global budgets. These
 * count failures only, once known: a class of learners behind one address
 * logging in together must not be refused for being many at once (how many
 * checks run at once is bounded by cfg.login_inflight anyway). */
static void throttle_failed(const otjd *d, const uint64_t k[TK__COUNT]) {
  uint64_t now = otjd_now_ms(d);
  slot_of(d, k[TK_ADDR], now, 1)->n++;
  if (!slot_live(d, &throttle_all, now)) {
    throttle_all.start_ms = now;
    throttle_all.n = 0;
  }
  throttle_all.n++;
}

/* ---- POST /api/login --------------------------------------------------- */

/* The session cookie's last attribute: "; Secure" when users come over
 * https (TLS here or at a proxy whose public URL is https), so a browser
 * never sends it over plain http. */
static const char *cookie_secure(const otjd *d) { return config_https(&d->cfg) ? "; Secure" : ""; }

typedef struct login_job {
  uv_work_t work;
  http_req *r;
  char login[LOGIN_MAX + 1];
  char password[PASSWORD_MAX + 1];
  uint64_t keys[TK__COUNT]; /* its throttle budgets */
  int ok; /* 1: logged in; 0: wrong; 2: right password, deactivated; -1: internal */
  store_user user;
  char token[AUTH_TOKEN_LEN + 1];
} login_job;

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[AUTH_HASH_MAX];
static void make_dummy_hash(void) {
  if (auth_hash_password("not a password of anyone", dummy_hash) != 0) dummy_hash[0] = '\0';
}

static void login_work(uv_work_t *w) {
  login_job *j = w->data;
  otjd *d = j->r->d;
  uv_mutex_lock(&d->db_worker_lock);
  int rc = store_user_by_login(d->db_worker, j->login, &j->user);
  uv_mutex_unlock(&d->db_worker_lock);
  if (rc == STORE_NOTFOUND) {
    pthread_once(&dummy_once, make_dummy_hash);
    auth_verify_password(dummy_hash, j->password);
    j->ok = 0;
    return;
  }
  if (rc != 0) {
    j->ok = -1;
    return;
  }
  if (auth_verify_password(j->user.password_hash, j->password) != 0) {
    j->ok = 0;
    return;
  }
  if (!j->user.active) { /* told only to who knows the password */
    j->ok = 2;
    return;
  }
  unsigned char digest[AUTH_TOKEN_HASH_LEN];
  auth_new_token(j->token, digest);
  int64_t now = (int64_t)time(NULL);
  uv_mutex_lock(&d->db_worker_lock);
  rc = store_session_create(d->db_worker, j->user.id, digest, now,
                            now + (int64_t)d->cfg.session_ttl_s);
  uv_mutex_unlock(&d->db_worker_lock);
  j->ok = rc == 0 ? 1 : -1;
}

static void login_done(uv_work_t *w, int status) {
  login_job *j = w->data;
  http_req *r = j->r;
  otjd *d = r->d;
  d->login_inflight--;
  if (status != 0 || j->ok < 0) {
    throttle_refund(d, j->keys); /* not the caller's fault */
    http_reply_error(r, 500, "internal", "Logging in failed on our side; try again.");
  } else if (j->ok == 0) {
    d->st.logins_failed++;
    throttle_failed(d, j->keys);
    http_reply_error(r, 401, "unauthorized", "Wrong login or password.");
  } else if (j->ok == 2) {
    /* Saying so is safe (only the right password gets here) and it tells
     * the person to see an administrator instead of retrying. */
    d->st.logins_failed++;
    throttle_failed(d, j->keys);
    http_reply_error(r, 403, "forbidden",
                     "This account has been deactivated; ask an administrator.");
  } else {
    throttle_refund(d, j->keys);
    d->st.logins_ok++;
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%u%s",
             HTTP_SESSION_COOKIE, j->token, d->cfg.session_ttl_s, cookie_secure(d));
    http_add_header(r, "Set-Cookie", cookie);
    reply_json(r, 200, json_pack("{s:s, s:o}", "token", j->token, "user", user_json(&j->user)));
  }
  memset(j->password, 0, sizeof j->password);
  http_req_unref(r);
  free(j);
}

static void api_login(http_req *r) {
  otjd *d = r->d;
  json_t *b = body_object(r);
  if (!b) return;
  const char *login = json_string_value(json_object_get(b, "login"));
  const char *password = json_string_value(json_object_get(b, "password"));
  if (!login || !password || !*login) {
    json_decref(b);
    http_reply_error(r, 400, "bad_request", "Send {\"login\": ..., \"password\": ...} as strings.");
    return;
  }
  if (strlen(login) > LOGIN_MAX || strlen(password) > PASSWORD_MAX) {
    json_decref(b);
    http_reply_error(r, 401, "unauthorized", "Wrong login or password.");
    return;
  }
  char addr[CONFIG_ADDR_MAX];
  http_client_addr(r->wsi, d, addr, sizeof addr);
  uint64_t keys[TK__COUNT];
  throttle_keys(login, addr, keys);
  uint64_t wait = throttled(d, keys);
  if (wait) {
    json_decref(b);
    d->st.logins_throttled++;
    char secs[24];
    snprintf(secs, sizeof secs, "%llu", (unsigned long long)wait);
    http_add_header(r, "Retry-After", secs);
    reply_error_json(r, 429, "rate_limited", NULL,
                     "Too many login attempts; wait %llu seconds and try again.",
                     (unsigned long long)wait);
    return;
  }
  if ((uint32_t)d->login_inflight >= d->cfg.login_inflight) {
    json_decref(b);
    d->st.logins_busy++;
    http_add_header(r, "Retry-After", "1");
    http_reply_error(r, 503, "unavailable",
                     "Many people are logging in right now; try again in a "
                     "second.");
    return;
  }
  login_job *j = calloc(1, sizeof *j);
  if (!j) {
    json_decref(b);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  snprintf(j->login, sizeof j->login, "%s", login);
  snprintf(j->password, sizeof j->password, "%s", password);
  memcpy(j->keys, keys, sizeof j->keys);
  json_decref(b);
  j->r = r;
  j->work.data = j;
  http_req_ref(r);
  d->login_inflight++;
  throttle_count(d, keys); /* before the slow check, not after */
  if (uv_queue_work(d->loop, &j->work, login_work, login_done) != 0) {
    throttle_refund(d, keys);
    d->login_inflight--;
    http_req_unref(r);
    free(j);
    http_reply_error(r, 500, "internal", "Could not start the login check.");
  }
}

/* ---- POST /api/logout, GET /api/me -------------------------------------- */

static void api_logout(http_req *r) {
  unsigned char digest[AUTH_TOKEN_HASH_LEN];
  if (r->token[0] && auth_token_digest(r->token, strlen(r->token), digest) == 0 &&
      store_session_delete(r->d->db, digest) == 0)
    live_token_ended(r->d, digest); /* its open sockets close too */
  char cookie[128];
  snprintf(cookie, sizeof cookie, "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
           HTTP_SESSION_COOKIE, cookie_secure(r->d));
  http_add_header(r, "Set-Cookie", cookie);
  reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

static void api_me(http_req *r) {
  store_user u;
  if (require_user(r, &u)) return;
  reply_json(r, 200, user_json(&u));
}

/* ---- GET /healthz and GET /readyz ---------------------------------------- */

/* /healthz is a liveness check: the process serves, Redis and SQLite answer.
 * /readyz says whether the server can do its work right now, and if not,
 * what is wrong: Redis answers, SQLite can take its write lock, and the data
 * folder's disk has at least cfg.min_free_mb free. */

#define HEALTH_TIMEOUT_MS   1000
#define HEALTH_PROBLEMS_MAX 3

typedef struct health_job {
  http_req *r;
  uv_timer_t timer;
  int sqlite_ok;
  int ready; /* answering /readyz */
  int disk_ok;
  uint64_t free_mb;
  const char *problems[HEALTH_PROBLEMS_MAX]; /* static sentences */
  int nproblems;
  int done;
  int refs; /* the timer handle and the Redis callback */
} health_job;

static void health_problem(health_job *h, const char *what) {
  if (h->nproblems < HEALTH_PROBLEMS_MAX) h->problems[h->nproblems++] = what;
}

static void ready_answer(health_job *h, int redis_ok) {
  if (!redis_ok) health_problem(h, "Redis does not answer: live rooms cannot run.");
  json_t *problems = json_array();
  for (int i = 0; problems && i < h->nproblems; i++)
    json_array_append_new(problems, json_string(h->problems[i]));
  int ok = redis_ok && h->sqlite_ok && h->disk_ok;
  reply_json(h->r, ok ? 200 : 503,
             json_pack("{s:s, s:{s:b}, s:{s:b}, s:{s:b, s:I, s:I}, s:o*}", "status",
                       ok ? "ready" : "not_ready", "redis", "ok", redis_ok, "sqlite", "ok",
                       h->sqlite_ok, "disk", "ok", h->disk_ok, "free_mb", (json_int_t)h->free_mb,
                       "min_free_mb", (json_int_t)h->r->d->cfg.min_free_mb, "problems", problems));
}

static void health_answer(health_job *h, int redis_ok) {
  if (h->done) return;
  h->done = 1;
  uv_timer_stop(&h->timer);
  if (h->ready) {
    ready_answer(h, redis_ok);
    return;
  }
  if (!redis_ok) health_problem(h, "Redis does not answer: live rooms cannot run.");
  if (!h->sqlite_ok) health_problem(h, "The database does not answer.");
  json_t *problems = json_array();
  for (int i = 0; problems && i < h->nproblems; i++)
    json_array_append_new(problems, json_string(h->problems[i]));
  int ok = redis_ok && h->sqlite_ok;
  reply_json(h->r, ok ? 200 : 503,
             json_pack("{s:s, s:{s:b}, s:{s:b}, s:o*}", "status", ok ? "ok" : "degraded", "redis",
                       "ok", redis_ok, "sqlite", "ok", h->sqlite_ok, "problems", problems));
}

static void health_unref(health_job *h) {
  if (--h->refs > 0) return;
  http_req_unref(h->r);
  free(h);
}

static void health_timer_closed(uv_handle_t *t) { health_unref(t->data); }

static void health_finish(health_job *h, int redis_ok) {
  health_answer(h, redis_ok);
  if (!uv_is_closing((uv_handle_t *)&h->timer))
    uv_close((uv_handle_t *)&h->timer, health_timer_closed);
}

static void health_pong(redisAsyncContext *ac, void *reply, void *priv) {
  health_job *h = priv;
  redisReply *rep = reply;
  int ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
  health_finish(h, ok);
  health_unref(h);
}

static void health_timeout(uv_timer_t *t) { health_finish(t->data, 0); }

/* /readyz: SQLite takes its write lock (d->db waits only briefly) and the
 * disk has room. */
static void ready_checks(health_job *h) {
  const otjd *d = h->r->d;
  int rc = store_check_writable(d->db);
  h->sqlite_ok = rc == 0;
  if (rc == STORE_BUSY)
    health_problem(h, "The database is locked by another connection: writes "
                      "would be refused.");
  else if (rc != 0)
    health_problem(h, "The database cannot be written.");
  struct statvfs sv;
  if (statvfs(d->cfg.data_dir, &sv) != 0) {
    health_problem(h, "The free space of the data folder's disk cannot be read.");
    return;
  }
  h->free_mb = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize / (1024 * 1024);
  h->disk_ok = h->free_mb >= d->cfg.min_free_mb;
  if (!h->disk_ok) health_problem(h, "The data folder's disk is (nearly) full.");
}

static void health_start(http_req *r, int ready) {
  health_job *h = calloc(1, sizeof *h);
  if (!h) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  h->r = r;
  h->ready = ready;
  http_req_ref(r);
  if (ready)
    ready_checks(h);
  else
    h->sqlite_ok = store_ping(r->d->db) == 0;
  uv_timer_init(r->d->loop, &h->timer);
  h->timer.data = h;
  h->refs = 1;
  if (rconn_command(r->d->redis, health_pong, h, "PING") == 0) {
    h->refs++;
    uv_timer_start(&h->timer, health_timeout, HEALTH_TIMEOUT_MS, 0);
  } else {
    health_finish(h, 0);
  }
}

static void api_healthz(http_req *r) { health_start(r, 0); }
static void api_readyz(http_req *r) { health_start(r, 1); }

/* ---- GET /metrics ------------------------------------------------------ */

/* 1 when the request came in on the --metrics-listen vhost. */
static int on_metrics_vhost(const http_req *r) {
  if (!r->wsi) return 0;
  const char *name = lws_get_vhost_name(lws_get_vhost(r->wsi));
  return name && !strcmp(name, API_METRICS_VHOST);
}

/* /metrics is for the monitoring system, not the public: it answers on the
 * metrics listener, or on the main one to a request with
 * "Authorization: Bearer <metrics_token>". Without either configured it is
 * 404 on the main listener (as if it did not exist); with a token, a
 * request without the right one gets 401. Returns 1 when allowed, else
 * answers and returns 0. */
static int metrics_allowed(http_req *r) {
  const otjd *d = r->d;
  if (on_metrics_vhost(r)) return 1;
  const char *want = d->cfg.metrics_token;
  if (!want[0]) {
    http_reply_error(r, 404, "not_found", "There is no such API call.");
    return 0;
  }
  size_t n = strlen(want);
  if (!r->token_from_cookie && strlen(r->token) == n && sodium_memcmp(r->token, want, n) == 0)
    return 1;
  http_add_header(r, "WWW-Authenticate", "Bearer realm=\"otjd metrics\"");
  http_reply_error(r, 401, "unauthorized",
                   "/metrics wants \"Authorization: Bearer\" with the metrics token.");
  return 0;
}

static void api_metrics(http_req *r) {
  if (!metrics_allowed(r)) return;
  const otjd *d = r->d;
  const otjd_stats *s = &d->st;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
#define HEAD(name, help, type) fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type)
#define G(name, help, type, val)                                                                   \
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,                \
          (unsigned long long)(val))
  G("otj_ws_connections", "Open websocket connections.", "gauge", s->ws_open);
  G("otj_ws_authenticated", "Websocket connections past hello.", "gauge", s->ws_authed);
  G("otj_ws_accepted_total", "Websocket connections accepted.", "counter", s->ws_accepted);
  G("otj_rooms_followed",
    "Live rooms with members on this instance (their "
    "fan-out channel is subscribed).",
    "gauge", (uint64_t)atomic_load_explicit(&metrics.rooms_followed, memory_order_relaxed));
  G("otj_rooms_open",
    "Live rooms this instance holds: with a connection here or an "
    "operation on the way.",
    "gauge", (uint64_t)live_room_count());
  G("otj_frames_in_total", "Websocket messages received.", "counter", s->frames_in);
  G("otj_frames_out_total", "Websocket messages sent.", "counter", s->frames_out);
  G("otj_bytes_out_total", "Websocket payload bytes sent.", "counter", s->bytes_out);
  G("otj_writes_out_total",
    "Socket writes carrying websocket messages "
    "(several messages per write when they queue up).",
    "counter", s->writes_out);
  G("otj_bad_frames_total", "Messages refused as malformed or too large.", "counter",
    s->bad_frames);
  G("otj_rate_limited_total",
    "Messages dropped by the per-connection rate "
    "limit.",
    "counter", s->rate_limited);
  G("otj_dropped_slow_total", "Connections dropped for a full send queue.", "counter",
    s->dropped_slow);
  HEAD("otj_ws_errors_total", "err messages sent to websocket clients, by code.", "counter");
  for (int c = PROTO_BAD_REQUEST; c <= PROTO_INTERNAL; c++)
    fprintf(f, "otj_ws_errors_total{code=\"%s\"} %llu\n", proto_code_name((proto_code)c),
            (unsigned long long)s->ws_errors[c]);
  G("otj_http_requests_total", "HTTP API requests.", "counter", s->http_requests);
  G("otj_http_busy_total",
    "HTTP requests refused 503 because the bodies held at once were at max_http_bodies.", "counter",
    s->http_busy);
  G("otj_http_body_bytes", "Bytes of HTTP request bodies held now.", "gauge", s->http_body_bytes);
  HEAD("otj_http_errors_total", "HTTP API answers with an error status, by status.", "counter");
  for (int i = 0; i < OTJD_HTTP_ERRORS; i++)
    if (s->http_errors[i] || i == 4 || i == 100) /* 404 and 500 always */
      fprintf(f, "otj_http_errors_total{status=\"%d\"} %llu\n", 400 + i,
              (unsigned long long)s->http_errors[i]);
  G("otj_logins_ok_total", "Successful logins.", "counter", s->logins_ok);
  HEAD("otj_logins_refused_total",
       "Logins refused, by reason: a wrong password "
       "or a deactivated account, the attempt budgets, too many checks at once.",
       "counter");
  fprintf(f,
          "otj_logins_refused_total{reason=\"credentials\"} %llu\n"
          "otj_logins_refused_total{reason=\"throttled\"} %llu\n"
          "otj_logins_refused_total{reason=\"busy\"} %llu\n",
          (unsigned long long)s->logins_failed, (unsigned long long)s->logins_throttled,
          (unsigned long long)s->logins_busy);
  HEAD("otj_approvals_total",
       "OTJ decisions committed, by outcome (failed: "
       "nothing written, the responsible was told).",
       "counter");
  static const char *outcomes[METRICS_DECISIONS] = {"approved", "not_approved", "refused",
                                                    "failed"};
  for (int i = 0; i < METRICS_DECISIONS; i++)
    fprintf(f, "otj_approvals_total{outcome=\"%s\"} %llu\n", outcomes[i],
            (unsigned long long)atomic_load_explicit(&metrics.decisions[i], memory_order_relaxed));
  G("otj_redis_up", "1 when Redis is connected.", "gauge", rconn_up(d->redis) ? 1 : 0);
  G("otj_redis_losses_total", "Redis connections lost.", "counter", rconn_losses(d->redis));
  G("otj_redis_stalls_total", "Redis connections dropped because Redis stopped answering.",
    "counter", rconn_stalls(d->redis));
  metrics_write_hist(f, "otj_redis_roundtrip_seconds", "Redis commands, from sent to answered.",
                     &metrics.redis_rtt);
  metrics_write_hist(f, "otj_sqlite_commit_seconds",
                     "Group commits of OTJ decisions, fsync included.", &metrics.sqlite_commit);
  metrics_write_hist(f, "otj_fanout_latency_seconds",
                     "Websocket messages (room events, replies), from made on this "
                     "instance to written to each recipient's socket.",
                     &metrics.fanout);
  metrics_write_hist(f, "otj_pubsub_latency_seconds",
                     "Room events, from the script call that made them (on any instance, by "
                     "its clock) to received on this instance's Redis channel, in whole "
                     "milliseconds.",
                     &metrics.pubsub);
  G("otj_uptime_seconds", "Seconds since start.", "gauge", (otjd_now_ms(d) - d->started_ms) / 1000);
#undef G
#undef HEAD
  fclose(f);
  http_reply_take(r, 200, "text/plain; version=0.0.4", buf, len);
}

/* ---- POST /api/admin/tokens: sessions for load provisioning ------------ */

#define API_TOKENS_MAX 10000 /* logins per call */

/* Up to API_TOKENS_MAX sessions in one transaction: written on the worker
 * pool with the workers' handle, so neither its length nor a lock held
 * elsewhere holds up the loop. */
typedef struct tokens_job {
  uv_work_t work;
  http_req *r;
  json_t *body; /* the logins point into it */
  store_bulk_session *items;
  char (*tokens)[AUTH_TOKEN_LEN + 1];
  size_t n;
  int64_t admin;
  int code;
  char errmsg[STORE_ERRMSG_MAX];
} tokens_job;

static void tokens_job_free(tokens_job *j) {
  sodium_memzero(j->tokens, j->n * sizeof *j->tokens);
  free(j->tokens);
  free(j->items);
  json_decref(j->body);
  free(j);
}

static void tokens_work(uv_work_t *w) {
  tokens_job *j = w->data;
  otjd *d = j->r->d;
  int64_t now = (int64_t)time(NULL);
  uv_mutex_lock(&d->db_worker_lock);
  j->code = store_sessions_bulk(d->db_worker, now, now + (int64_t)d->cfg.session_ttl_s, j->admin,
                                j->items, j->n);
  snprintf(j->errmsg, sizeof j->errmsg, "%s", store_errmsg(d->db_worker));
  uv_mutex_unlock(&d->db_worker_lock);
}

static void tokens_done(uv_work_t *w, int status) {
  tokens_job *j = w->data;
  http_req *r = j->r;
  if (status != 0) {
    reply_store_error_msg(r, STORE_ERR, "creating the sessions was cancelled");
  } else if (j->code != 0) {
    reply_store_error_msg(r, j->code, j->errmsg);
  } else {
    json_t *tok = json_object(), *ids = json_object();
    for (size_t i = 0; i < j->n; i++) {
      json_object_set_new(tok, j->items[i].login, json_string(j->tokens[i]));
      json_object_set_new(ids, j->items[i].login, json_integer((json_int_t)j->items[i].user_id));
    }
    reply_json(r, 200, json_pack("{s:o, s:o}", "tokens", tok, "ids", ids));
  }
  http_req_unref(r);
  tokens_job_free(j);
}

/* {"logins": [login, ...]} -> {"tokens": {login: token}, "ids": {login: id}}.
 * Admin only. Every session is created in one transaction with one audit
 * entry for the call (store_sessions_bulk): a load generator gets tokens
 * for thousands of users without an argon2id verification per user. */
static void api_admin_tokens(http_req *r) {
  store_user admin;
  if (require_admin(r, &admin)) return;
  json_t *b = body_object(r);
  if (!b) return;
  json_t *logins = json_object_get(b, "logins");
  size_t n = json_array_size(logins);
  if (!json_is_array(logins) || n == 0 || n > API_TOKENS_MAX) {
    json_decref(b);
    http_reply_error(r, 400, "bad_request", "Send {\"logins\": [...]} with 1 to 10000 logins.");
    return;
  }
  store_bulk_session *items = calloc(n, sizeof *items);
  char(*tokens)[AUTH_TOKEN_LEN + 1] = calloc(n, sizeof *tokens);
  if (!items || !tokens) {
    free(items);
    free(tokens);
    json_decref(b);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    items[i].login = json_string_value(json_array_get(logins, i));
    if (!items[i].login || !*items[i].login) {
      free(items);
      free(tokens);
      json_decref(b);
      http_reply_error(r, 400, "bad_request", "Each login must be a non-empty string.");
      return;
    }
    auth_new_token(tokens[i], items[i].token_hash);
  }
  tokens_job *j = calloc(1, sizeof *j);
  if (!j) {
    free(items);
    free(tokens);
    json_decref(b);
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  *j = (tokens_job){.r = r, .body = b, .items = items, .tokens = tokens, .n = n, .admin = admin.id};
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, tokens_work, tokens_done) != 0) {
    http_req_unref(r);
    tokens_job_free(j);
    http_reply_error(r, 500, "internal", "Could not start creating the sessions.");
  }
}

/* ---- routing ----------------------------------------------------------- */

/* ---- GET /api/rooms/{room}/qr.svg ------------------------------------ */

/* The QR code of a live room's join link, for the room's responsible only
 * (anyone holding the code could join if they may; the image is for the
 * wall screen of the one who runs the drill). */
static void api_room_qr(http_req *r, const char *room) {
  store_user u;
  if (require_user(r, &u)) return;
  int64_t host;
  char code[32];
  int open;
  if (store_room_get(r->d->db, room, &host, code, sizeof code, &open) != 0 || !open) {
    http_reply_error(r, 404, "not_found", "There is no open room with that id.");
    return;
  }
  if (host != u.id) {
    http_reply_error(r, 403, "forbidden",
                     "Only the responsible who runs this room may show its QR code.");
    return;
  }
  char url[700], hostname[256] = "localhost";
  if (r->d->cfg.public_url[0]) {
    snprintf(url, sizeof url, "%s/join/%s", r->d->cfg.public_url, code);
  } else {
    if (r->wsi) lws_hdr_copy(r->wsi, hostname, sizeof hostname, WSI_TOKEN_HOST);
    snprintf(url, sizeof url, "%s://%s/join/%s", r->d->cfg.tls_cert[0] ? "https" : "http", hostname,
             code);
  }
  size_t len;
  char *svg = qr_svg(url, &len);
  if (!svg) {
    http_reply_error(r, 500, "internal", "Could not draw the QR code.");
    return;
  }
  http_reply_take(r, 200, "image/svg+xml", svg, len);
}

static int room_qr_path(const char *p, char *room, size_t cap) {
  static const char pre[] = "/api/rooms/", post[] = "/qr.svg";
  size_t pl = sizeof pre - 1, ql = sizeof post - 1, n = strlen(p);
  if (n <= pl + ql || strncmp(p, pre, pl) || strcmp(p + n - ql, post)) return 0;
  size_t idl = n - pl - ql;
  if (idl >= cap) return 0;
  memcpy(room, p + pl, idl);
  room[idl] = '\0';
  for (size_t i = 0; i < idl; i++)
    if (!((room[i] >= 'a' && room[i] <= 'z') || (room[i] >= '0' && room[i] <= '9'))) return 0;
  return 1;
}

/* ---- GET /join and /join/CODE: the web client's page for joining ------- */

static void api_join_page(http_req *r) {
  char path[700];
  snprintf(path, sizeof path, "%s/index.html", r->d->cfg.web_root);
  FILE *f = fopen(path, "rb");
  if (!f) {
    http_reply_error(r, 404, "not_found", "The web client is not installed.");
    return;
  }
  char *buf = NULL;
  size_t n = 0;
  FILE *out = open_memstream(&buf, &n);
  char chunk[8192];
  size_t k;
  while (out && (k = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, k, out);
  fclose(f);
  if (!out || fclose(out) != 0) {
    free(buf);
    http_reply_error(r, 500, "internal", "Could not read the web client.");
    return;
  }
  http_reply_take(r, 200, "text/html; charset=utf-8", buf, n);
}

void api_handle(http_req *r) {
  const char *p = r->path;
  http_method m = r->method;
  char room[65];
  if (on_metrics_vhost(r) && strcmp(p, "/metrics") && strcmp(p, "/healthz") &&
      strcmp(p, "/readyz")) {
    http_reply_error(r, 404, "not_found",
                     "The metrics listener serves /metrics, /healthz and /readyz only.");
    return;
  }
  if (evidence_handle(r)) return; /* uploads are files, not JSON: their own CSRF rule */
  /* Cross-site request forgery: a browser sends the session cookie with a
   * request that any page may make (a form, a "simple" fetch). A change
   * that the cookie authorises must come from one of our own pages, and be
   * JSON, which a page elsewhere cannot send without asking first (CORS). */
  if (r->token_from_cookie && m != HTTP_GET && m != HTTP_OTHER) {
    if (r->other_site) {
      http_reply_error(r, 403, "forbidden",
                       "A change made with the session cookie must come from "
                       "this site's own pages (Origin); send the token as "
                       "\"Authorization: Bearer\" from elsewhere.");
      return;
    }
    if (!r->json_body) {
      http_reply_error(r, 403, "forbidden",
                       "A change made with the session cookie must send its "
                       "body as Content-Type: application/json.");
      return;
    }
  }
  if (!strcmp(p, "/healthz")) {
    if (m == HTTP_GET)
      api_healthz(r);
    else
      http_reply_error(r, 405, "bad_request", "Use GET.");
  } else if (!strcmp(p, "/readyz")) {
    if (m == HTTP_GET)
      api_readyz(r);
    else
      http_reply_error(r, 405, "bad_request", "Use GET.");
  } else if (!strcmp(p, "/metrics")) {
    if (m == HTTP_GET)
      api_metrics(r);
    else
      http_reply_error(r, 405, "bad_request", "Use GET.");
  } else if (!strcmp(p, "/api/login")) {
    if (m == HTTP_POST)
      api_login(r);
    else
      http_reply_error(r, 405, "bad_request", "Use POST.");
  } else if (!strcmp(p, "/api/logout")) {
    if (m == HTTP_POST)
      api_logout(r);
    else
      http_reply_error(r, 405, "bad_request", "Use POST.");
  } else if (!strcmp(p, "/api/me")) {
    if (m == HTTP_GET)
      api_me(r);
    else
      http_reply_error(r, 405, "bad_request", "Use GET.");
  } else if ((!strcmp(p, "/join") || !strncmp(p, "/join/", 6)) && m == HTTP_GET) {
    api_join_page(r);
  } else if (room_qr_path(p, room, sizeof room)) {
    if (m == HTTP_GET)
      api_room_qr(r, room);
    else
      http_reply_error(r, 405, "bad_request", "Use GET.");
  } else if (!strcmp(p, "/api/admin/tokens")) {
    if (m == HTTP_POST)
      api_admin_tokens(r);
    else
      http_reply_error(r, 405, "bad_request", "Use POST.");
  } else if (api_ask_handle(r)) {
    /* an ask pushes to the responsibles it reaches itself (api_ask.c) */
  } else if (api_org_handle(r) || api_admin_handle(r) || api_records_handle(r) ||
             api_redrill_handle(r)) {
    /* answered by a route of api_org.c / api_admin.c (or a 405). A change
     * may change who waits for OTJ: dashboards refresh their counts (a
     * refresh that finds nothing new costs one count query per
     * responsible online). */
    if (m != HTTP_GET && r->answered && r->status < 300) live_pending_changed(r->d);
  } else {
    http_reply_error(r, 404, "not_found", "There is no such API call.");
  }
}
