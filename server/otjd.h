/*
 * otjd — the server's shared state, owned by main.c and handed to every
 * lws callback through the context's user pointer.
 *
 * Everything here lives on the one libuv loop thread, except `db_worker`,
 * the SQLite handle that worker threads (password checks, the organisation
 * import, bulk sessions, room closes) use under `db_worker_lock`. `db` waits
 * at most cfg.db_loop_busy_ms for another connection's lock.
 */
#ifndef OTJ_OTJD_H
#define OTJ_OTJD_H

#include <stdint.h>
#include <uv.h>
#include <libwebsockets.h>

#include "config.h"
#include "rconn.h"
#include "store.h"

struct ws_sess;

#define OTJD_ERR_CODES   16  /* room for every proto_code */
#define OTJD_HTTP_ERRORS 200 /* HTTP statuses 400..599 */

typedef struct otjd_stats {
  uint64_t ws_accepted, ws_open, ws_authed;
  uint64_t frames_in, frames_out, bytes_out, writes_out;
  uint64_t bad_frames, rate_limited, dropped_slow;
  uint64_t http_requests;
  uint64_t http_busy;       /* requests refused 503: the bodies held at once were at their bound */
  uint64_t http_body_bytes; /* now: bytes of request bodies held, all requests together */
  uint64_t logins_ok, logins_failed, logins_throttled;
  uint64_t logins_busy;                   /* refused: too many checks at once */
  uint64_t ws_errors[OTJD_ERR_CODES];     /* err frames sent, by proto_code */
  uint64_t http_errors[OTJD_HTTP_ERRORS]; /* answers 400..599, by status - 400 */
} otjd_stats;

typedef struct otjd {
  otj_config cfg;
  uv_loop_t *loop;
  struct lws_context *lws;
  store *db;        /* loop thread only */
  store *db_worker; /* worker threads, under db_worker_lock */
  uv_mutex_t db_worker_lock;
  rconn *redis;
  char redis_addr[512];
  pid_t redis_child; /* > 0 for the embedded redis-server */
  int shutting_down;
  int login_inflight;

  /* websocket sessions */
  struct ws_sess *sessions; /* every open session, doubly linked */
  struct ws_sess *arm_head; /* sessions with output waiting for a writable arm */
  uv_check_t arm_check;
  uv_idle_t arm_idle;    /* keeps the poll from blocking while arms wait */
  uv_timer_t idle_sweep; /* closes connections idle past the timeout */

  otjd_stats st;
  uint64_t started_ms;
} otjd;

/* Milliseconds of the loop's clock. */
static inline uint64_t otjd_now_ms(const otjd *d) { return uv_now(d->loop); }

/* The otjd of a wsi's context. */
static inline otjd *otjd_of(struct lws *wsi) {
  return (otjd *)lws_context_user(lws_get_context(wsi));
}

#endif
