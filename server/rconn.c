/*
 * rconn — connect, time out, back off, reconnect (see rconn.h).
 */
#include "rconn.h"

#include "backoff.h"
#include "log.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rconn {
  uv_loop_t *loop;
  uv_timer_t timer;      /* connect timeout or backoff delay */
  redisAsyncContext *ac; /* NULL when neither connecting nor connected */
  int connected;
  int closing;
  unsigned attempt; /* failures in a row, for the backoff */
  unsigned long losses;
  unsigned long stalls; /* connections dropped for a Redis that stopped answering */
  uv_timer_t watch;     /* the stall watchdog (rconn_set_reply_timeout) */
  uint32_t reply_timeout_ms;
  uint64_t reads;       /* times the socket had something to read */
  uint64_t watch_reads; /* reads at the watchdog's last look */
  uint64_t quiet_since; /* ms: when the watchdog last saw a read or no reply owed */
  int handles;          /* open uv handles of this struct, freed at 0 */
  char host[256];
  int port; /* 0: host is a unix socket path */
  rconn_state_fn *cb;
  void *ud;
};

static void start_connect(rconn *r);

/* ---- hiredis on the libuv loop ------------------------------------------
 * Our own copy of hiredis 0.14.1's adapters/libuv.h, with one difference:
 * that adapter returns from its poll callback without a word when libuv
 * reports an error (status != 0). libuv does so, and stops the poll, when
 * the socket has an error pending (EPOLLERR): for instance ECONNRESET after
 * the redis-server died with a command of ours still unread in its socket.
 * hiredis then never hears of the loss, the context stays "connected"
 * forever, commands get no reply and nothing reconnects. Here an error is
 * handed to hiredis as the events we were waiting for: its read or write
 * meets the error and it disconnects (as hiredis 1.0's adapter does).
 *
 * And one more: commands are written from the loop's check phase, once per
 * turn, without asking the poll for write readiness. A connected socket
 * takes them at once but for a full buffer, and each uv_poll_start costs
 * an epoll_ctl DEL and ADD even when the events did not change: asking for
 * writability per command (hiredis asks at each one) was two system calls
 * per command, ~17 per join. Write interest is asked only for a write that
 * did not finish, and while connecting (hiredis learns of the connection by
 * it). A command given after the check waits for the next turn; an idle
 * handle keeps that turn from blocking meanwhile. */

typedef struct rconn_ev {
  redisAsyncContext *ac; /* NULL once hiredis has let go */
  uv_poll_t poll;
  uv_check_t flush; /* writes what hiredis holds */
  uv_idle_t turn;   /* runs while a write waits for the check */
  int events;       /* what hiredis wants polled */
  int polled;       /* what the poll was started with */
  int pending;      /* hiredis holds output for the check to write */
  int flushing;     /* in the check's write: hiredis asking means a write left over */
  int handles;      /* open handles, freed at 0 */
} rconn_ev;

static void ev_on_poll(uv_poll_t *h, int status, int events) {
  rconn_ev *e = h->data;
  int ev = status != 0 ? e->events : events;
  if (e->ac && (ev & UV_READABLE)) {
    rconn *r = e->ac->data;
    if (r) r->reads++; /* Redis is answering: the watchdog's sign of life */
    redisAsyncHandleRead(e->ac);
  }
  if (e->ac && (ev & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void ev_update(rconn_ev *e) {
  if (e->events == e->polled) return;
  e->polled = e->events;
  if (e->events)
    uv_poll_start(&e->poll, e->events, ev_on_poll);
  else
    uv_poll_stop(&e->poll);
}

static void ev_on_turn(uv_idle_t *h) { (void)h; }

static void ev_on_flush(uv_check_t *h) {
  rconn_ev *e = h->data;
  if (!e->pending) return;
  e->pending = 0;
  uv_idle_stop(&e->turn);
  if (!e->ac) return;
  e->flushing = 1;
  redisAsyncHandleWrite(e->ac); /* a write left over asks again: the poll waits for it */
  e->flushing = 0;
}

static void ev_add_read(void *pd) {
  rconn_ev *e = pd;
  e->events |= UV_READABLE;
  ev_update(e);
}

static void ev_del_read(void *pd) {
  rconn_ev *e = pd;
  e->events &= ~UV_READABLE;
  ev_update(e);
}

static void ev_add_write(void *pd) {
  rconn_ev *e = pd;
  if (!e->flushing && e->ac && (e->ac->c.flags & REDIS_CONNECTED)) {
    if (!e->pending) {
      e->pending = 1;
      uv_idle_start(&e->turn, ev_on_turn);
    }
    return;
  }
  e->events |= UV_WRITABLE;
  ev_update(e);
}

static void ev_del_write(void *pd) {
  rconn_ev *e = pd;
  e->events &= ~UV_WRITABLE;
  ev_update(e);
}

static void ev_closed(uv_handle_t *h) {
  rconn_ev *e = h->data;
  if (--e->handles == 0) free(e);
}

static void ev_cleanup(void *pd) {
  rconn_ev *e = pd;
  e->ac = NULL; /* the context is being freed */
  uv_close((uv_handle_t *)&e->poll, ev_closed);
  uv_close((uv_handle_t *)&e->flush, ev_closed);
  uv_close((uv_handle_t *)&e->turn, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  if (ac->ev.data) return -1;
  rconn_ev *e = calloc(1, sizeof *e);
  if (!e) return -1;
  if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
    free(e);
    return -1;
  }
  uv_check_init(loop, &e->flush);
  uv_idle_init(loop, &e->turn);
  e->handles = 3;
  e->flush.data = e;
  e->turn.data = e;
  uv_check_start(&e->flush, ev_on_flush);
  uv_unref((uv_handle_t *)&e->flush);
  e->ac = ac;
  e->poll.data = e;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  ac->ev.data = e;
  return 0;
}

static void on_retry_timer(uv_timer_t *t) { start_connect(t->data); }

static void schedule_retry(rconn *r) {
  if (r->closing) return;
  uint64_t delay = backoff_delay_ms(r->attempt);
  r->attempt++;
  uv_timer_stop(&r->timer);
  uv_timer_start(&r->timer, on_retry_timer, delay, 0);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rconn *r = ac->data;
  if (!r) return;
  uv_timer_stop(&r->timer);
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback */
    if (r->attempt == 0 || r->attempt % 10 == 0)
      log_event(LOG_WARN, "redis: connect failed; retrying", "redis=%s port=%d error=%s", r->host,
                r->port, ac->errstr);
    r->ac = NULL;
    schedule_retry(r);
    return;
  }
  r->connected = 1;
  r->attempt = 0;
  log_event(LOG_INFO, "redis: connected", "redis=%s port=%d", r->host, r->port);
  if (r->cb) r->cb(r->ud, 1);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rconn *r = ac->data;
  if (!r) return;
  /* hiredis frees the context after this callback: forget it now. */
  r->ac = NULL;
  int was = r->connected;
  r->connected = 0;
  if (r->closing) return;
  r->losses++;
  log_event(LOG_WARN, "redis: connection lost; reconnecting", "redis=%s port=%d error=%s", r->host,
            r->port, status == REDIS_OK ? "closed" : ac->errstr);
  if (was && r->cb) r->cb(r->ud, 0);
  schedule_retry(r);
}

static void on_connect_timeout(uv_timer_t *t) {
  rconn *r = t->data;
  if (r->ac && !r->connected) {
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac); /* never connected: no disconnect callback */
    if (r->attempt == 0 || r->attempt % 10 == 0)
      log_event(LOG_WARN, "redis: connect timed out; retrying", "redis=%s port=%d", r->host,
                r->port);
    schedule_retry(r);
  }
}

static void start_connect(rconn *r) {
  if (r->closing) return;
  redisAsyncContext *ac =
      r->port ? redisAsyncConnect(r->host, r->port) : redisAsyncConnectUnix(r->host);
  if (!ac) {
    schedule_retry(r);
    return;
  }
  if (ac->err) {
    if (r->attempt == 0 || r->attempt % 10 == 0)
      log_event(LOG_WARN, "redis: connect failed; retrying", "redis=%s port=%d error=%s", r->host,
                r->port, ac->errstr);
    redisAsyncFree(ac);
    schedule_retry(r);
    return;
  }
  if (ev_attach(ac, r->loop) != 0) {
    redisAsyncFree(ac);
    schedule_retry(r);
    return;
  }
  ac->data = r;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  r->ac = ac;
  uv_timer_stop(&r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_connect_timeout, RCONN_CONNECT_TIMEOUT_MS, 0);
}

/* ---- the stall watchdog ----------------------------------------------------
 * A Redis that is stopped (SIGSTOP, a frozen VM, a network path that drops
 * packets without a reset) keeps its TCP connection: nothing fails, every
 * command waits for ever and the output piles up in hiredis. While replies
 * are owed and nothing at all has come back for reply_timeout_ms, the
 * connection is dropped like a lost one: the waiting commands get their
 * NULL reply (their clients hear `unavailable` and retry), new commands are
 * refused at once, and the reconnect backoff takes over. */

static void on_watch(uv_timer_t *t) {
  rconn *r = t->data;
  uint64_t now = uv_now(r->loop);
  int owed = r->connected && r->ac && r->ac->replies.head;
  if (!owed || r->reads != r->watch_reads) {
    r->watch_reads = r->reads;
    r->quiet_since = now;
    return;
  }
  if (now - r->quiet_since < r->reply_timeout_ms) return;
  r->stalls++;
  log_event(LOG_WARN, "redis: no reply; dropping the connection and reconnecting",
            "redis=%s port=%d waited_ms=%llu", r->host, r->port,
            (unsigned long long)(now - r->quiet_since));
  r->quiet_since = now;
  redisAsyncFree(r->ac); /* NULL replies, then on_disconnect: the backoff */
}

void rconn_set_reply_timeout(rconn *r, uint32_t ms) {
  r->reply_timeout_ms = ms;
  uv_timer_stop(&r->watch);
  if (!ms) return;
  uint64_t every = ms / 4 ? ms / 4 : 1;
  r->quiet_since = uv_now(r->loop);
  uv_timer_start(&r->watch, on_watch, every, every);
}

unsigned long rconn_stalls(const rconn *r) { return r ? r->stalls : 0; }

rconn *rconn_create(uv_loop_t *loop, const char *addr, rconn_state_fn *cb, void *ud) {
  rconn *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  r->cb = cb;
  r->ud = ud;
  if (addr[0] == '/') {
    if (strlen(addr) >= sizeof r->host) goto fail;
    strcpy(r->host, addr);
  } else {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof r->host) goto fail;
    memcpy(r->host, addr, (size_t)(colon - addr));
    r->port = atoi(colon + 1);
    if (r->port <= 0 || r->port > 65535) goto fail;
  }
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_init(loop, &r->watch);
  r->watch.data = r;
  uv_unref((uv_handle_t *)&r->watch);
  r->handles = 2;
  start_connect(r);
  return r;
fail:
  free(r);
  return NULL;
}

static void free_after_close(uv_handle_t *h) {
  rconn *r = h->data;
  if (--r->handles == 0) free(r);
}

void rconn_destroy(rconn *r) {
  if (!r) return;
  r->closing = 1;
  uv_timer_stop(&r->timer);
  if (r->ac) {
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    ac->data = NULL; /* r is freed before hiredis may call back */
    if (r->connected)
      redisAsyncDisconnect(ac); /* pending replies first, then the close */
    else
      redisAsyncFree(ac);
  }
  r->connected = 0;
  r->timer.data = r;
  uv_timer_stop(&r->watch);
  uv_close((uv_handle_t *)&r->timer, free_after_close);
  uv_close((uv_handle_t *)&r->watch, free_after_close);
}

int rconn_up(const rconn *r) { return r && r->connected && r->ac; }

unsigned long rconn_losses(const rconn *r) { return r ? r->losses : 0; }

/* ---- round-trip timing ----------------------------------------------------
 * Every command goes out with a small record of when it left; its reply
 * (or the NULL reply of a lost connection, which is not timed) comes back
 * through timed_reply, which counts the round trip and calls the caller's
 * callback. The record never points at the rconn: a reply may arrive after
 * rconn_destroy. No command here is a SUBSCRIBE (psub.c has its own
 * connection), so each callback runs exactly once. */

typedef struct timed_cmd {
  redisCallbackFn *fn;
  void *privdata;
  uint64_t sent_ns;
} timed_cmd;

static void timed_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  timed_cmd *t = privdata;
  if (reply) metrics_observe(&metrics.redis_rtt, metrics_now_ns() - t->sent_ns);
  if (t->fn) t->fn(ac, reply, t->privdata);
  free(t);
}

static timed_cmd *timed_new(redisCallbackFn *fn, void *privdata) {
  timed_cmd *t = malloc(sizeof *t);
  if (t) *t = (timed_cmd){fn, privdata, metrics_now_ns()};
  return t;
}

int rconn_command(rconn *r, redisCallbackFn *fn, void *privdata, const char *fmt, ...) {
  if (!rconn_up(r)) return -1;
  timed_cmd *t = timed_new(fn, privdata);
  if (!t) return -1;
  va_list ap;
  va_start(ap, fmt);
  int rc = redisvAsyncCommand(r->ac, timed_reply, t, fmt, ap);
  va_end(ap);
  if (rc != REDIS_OK) free(t);
  return rc == REDIS_OK ? 0 : -1;
}

/* A transaction in flight: a command Redis refused to queue (out of
 * memory, say) makes EXEC answer only "EXECABORT ..."; the caller hears the
 * refusal itself instead, as if it had sent that command alone. */
typedef struct txn_cmd {
  timed_cmd t;
  int refs;      /* callbacks still to come */
  char err[200]; /* the first refusal to queue, "" if none */
} txn_cmd;

static void txn_put(txn_cmd *x) {
  if (--x->refs == 0) free(x);
}

static void txn_queued(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  txn_cmd *x = privdata;
  redisReply *rep = reply;
  if (rep && rep->type == REDIS_REPLY_ERROR && !x->err[0])
    snprintf(x->err, sizeof x->err, "%s", rep->str);
  txn_put(x);
}

static void txn_exec(redisAsyncContext *ac, void *reply, void *privdata) {
  txn_cmd *x = privdata;
  redisReply *rep = reply;
  if (rep) metrics_observe(&metrics.redis_rtt, metrics_now_ns() - x->t.sent_ns);
  redisReply refused = {.type = REDIS_REPLY_ERROR, .str = x->err, .len = strlen(x->err)};
  if (rep && rep->type == REDIS_REPLY_ERROR && x->err[0] && !strncmp(rep->str, "EXECABORT", 9))
    rep = &refused;
  if (x->t.fn) x->t.fn(ac, rep, x->t.privdata);
  txn_put(x);
}

int rconn_transaction(rconn *r, redisCallbackFn *fn, void *privdata, int n, const int *argc,
                      const char **const *argv, const size_t *const *argvlen) {
  if (!rconn_up(r)) return -1;
  txn_cmd *x = malloc(sizeof *x);
  if (!x) return -1;
  x->t = (timed_cmd){fn, privdata, metrics_now_ns()};
  x->refs = 1;
  x->err[0] = '\0';
  /* hiredis refuses a command only while its context is going away; after
   * MULTI went, nothing else of ours is written on this connection then */
  if (redisAsyncCommand(r->ac, NULL, NULL, "MULTI") != REDIS_OK) {
    free(x);
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (redisAsyncCommandArgv(r->ac, txn_queued, x, argc[i], argv[i], argvlen[i]) == REDIS_OK)
      x->refs++;
  if (redisAsyncCommand(r->ac, txn_exec, x, "EXEC") != REDIS_OK) {
    x->t.fn = NULL; /* the queued ones may still be answered */
    txn_put(x);
    return -1;
  }
  return 0;
}

int rconn_command_argv(rconn *r, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                       const size_t *argvlen) {
  if (!rconn_up(r)) return -1;
  timed_cmd *t = timed_new(fn, privdata);
  if (!t) return -1;
  if (redisAsyncCommandArgv(r->ac, timed_reply, t, argc, argv, argvlen) != REDIS_OK) {
    free(t);
    return -1;
  }
  return 0;
}
