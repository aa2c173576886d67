/*
 * psub — a pub/sub connection of our own on the libuv loop (see psub.h).
 */
#include "psub.h"
#include "otj_assert.h"

#include "backoff.h"
#include "log.h"
#include "metrics.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PSUB_CONNECT_TIMEOUT_MS 2000
#define PSUB_READ_CHUNK         65536

typedef struct chan {
  struct chan *next;
  int confirmed;
  psub_done_fn *done; /* cleared once called */
  void *arg;
  size_t len;
  char name[];
} chan;

struct psub {
  uv_loop_t *loop;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  int handle_open; /* h is initialised and not yet closed */
  int connected;
  int up;
  int sharded; /* -1 unknown, 0 classic pub/sub, 1 sharded */
  int closing;
  int refs; /* the struct, the timer, the stream */
  unsigned attempt;
  uv_connect_t creq;
  uv_timer_t timer;
  redisReader *rd;
  char host[256];
  int port; /* 0: unix socket path in host */
  chan *chans;
  long followed; /* channels of psub_subscribe (not base): for /metrics */
  char *base;
  psub_msg_fn *on_msg;
  psub_state_fn *on_state;
  void *ud;
  char readbuf[PSUB_READ_CHUNK];
};

static void start_connect(psub *p);

static void on_retry_timer(uv_timer_t *t) { start_connect(t->data); }

static void unref(psub *p) {
  OTJ_ASSERT(p->refs > 0);
  if (--p->refs > 0) return;
  for (chan *c = p->chans, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  if (p->rd) redisReaderFree(p->rd);
  free(p->base);
  free(p);
}

static void on_timer_closed(uv_handle_t *h) { unref(h->data); }

static void call_done(chan *c, int ok) {
  psub_done_fn *fn = c->done;
  c->done = NULL;
  if (fn) fn(c->arg, ok);
}

/* ---- writing ----------------------------------------------------------- */

typedef struct wreq {
  uv_write_t req;
  char *cmd;
} wreq;

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  redisFreeCommand(w->cmd);
  free(w);
}

static int send_argv(psub *p, int argc, const char **argv, const size_t *lens) {
  if (!p->connected) return -1;
  wreq *w = malloc(sizeof *w);
  if (!w) return -1;
  int n = redisFormatCommandArgv(&w->cmd, argc, argv, lens);
  if (n < 0) {
    free(w);
    return -1;
  }
  uv_buf_t b = uv_buf_init(w->cmd, (unsigned)n);
  if (uv_write(&w->req, &p->h.stream, &b, 1, on_written) != 0) {
    redisFreeCommand(w->cmd);
    free(w);
    return -1;
  }
  return 0;
}

/* (S)SUBSCRIBE every channel not yet confirmed, in one command. */
static void subscribe_pending(psub *p) {
  size_t n = 0;
  for (chan *c = p->chans; c; c = c->next)
    if (!c->confirmed) n++;
  if (n == 0) return;
  const char **argv = malloc((n + 1) * sizeof *argv);
  size_t *lens = malloc((n + 1) * sizeof *lens);
  if (!argv || !lens) {
    free(argv);
    free(lens);
    return;
  }
  argv[0] = p->sharded ? "SSUBSCRIBE" : "SUBSCRIBE";
  lens[0] = strlen(argv[0]);
  size_t i = 1;
  for (chan *c = p->chans; c; c = c->next)
    if (!c->confirmed) {
      argv[i] = c->name;
      lens[i] = c->len;
      i++;
    }
  send_argv(p, (int)i, argv, lens);
  free(argv);
  free(lens);
}

/* ---- connection loss and retry ----------------------------------------- */

static void on_stream_closed(uv_handle_t *h) {
  psub *p = h->data;
  p->handle_open = 0;
  if (!p->closing) {
    uint64_t delay = backoff_delay_ms(p->attempt);
    p->attempt++;
    uv_timer_start(&p->timer, on_retry_timer, delay, 0);
  }
  unref(p);
}

static void drop_connection(psub *p, const char *why) {
  int was_up = p->up;
  p->connected = 0;
  p->up = 0;
  uv_timer_stop(&p->timer);
  for (chan *c = p->chans; c; c = c->next) {
    c->confirmed = 0;
    call_done(c, 0);
  }
  if (p->handle_open && !uv_is_closing(&p->h.handle)) uv_close(&p->h.handle, on_stream_closed);
  if (!p->closing && (p->attempt == 0 || p->attempt % 10 == 0))
    log_event(LOG_WARN, "redis pub/sub: connection lost; reconnecting", "error=%s", why);
  if (was_up && p->on_state && !p->closing) p->on_state(p->ud, 0);
}

/* ---- reading ----------------------------------------------------------- */

static chan *find_chan(psub *p, const char *name, size_t len) {
  for (chan *c = p->chans; c; c = c->next)
    if (c->len == len && !memcmp(c->name, name, len)) return c;
  return NULL;
}

static void check_all_confirmed(psub *p) {
  if (p->up) return;
  for (chan *c = p->chans; c; c = c->next)
    if (!c->confirmed) return;
  p->up = 1;
  p->attempt = 0;
  if (p->on_state) p->on_state(p->ud, 1);
}

static void handle_reply(psub *p, redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    if (p->sharded < 0 || (p->sharded == 1 && strcasestr(r->str, "unknown command"))) {
      /* no sharded pub/sub here: classic SUBSCRIBE for everything */
      p->sharded = 0;
      subscribe_pending(p);
      return;
    }
    log_event(LOG_WARN, "redis pub/sub: error", "error=%s", r->str);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = r->element[0]->str;
  redisReply *name = r->element[1];
  if (!strcasecmp(kind, "smessage") || !strcasecmp(kind, "message")) {
    redisReply *data = r->element[2];
    if (data->type == REDIS_REPLY_STRING && p->on_msg)
      p->on_msg(p->ud, name->str, name->len, data->str, data->len);
  } else if (!strcasecmp(kind, "ssubscribe") || !strcasecmp(kind, "subscribe")) {
    if (p->sharded < 0) {
      p->sharded = kind[0] == 's' || kind[0] == 'S';
      subscribe_pending(p); /* the others, now that the mode is known */
    }
    chan *c = find_chan(p, name->str, name->len);
    if (c && !c->confirmed) {
      c->confirmed = 1;
      call_done(c, 1);
    }
    check_all_confirmed(p);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  psub *p = h->data;
  *buf = uv_buf_init(p->readbuf, sizeof p->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  psub *p = s->data;
  if (n < 0) {
    drop_connection(p, n == UV_EOF ? "closed by the server" : uv_strerror((int)n));
    return;
  }
  if (n == 0) return;
  if (redisReaderFeed(p->rd, buf->base, (size_t)n) != REDIS_OK) {
    drop_connection(p, "unreadable reply");
    return;
  }
  for (;;) {
    void *reply = NULL;
    if (redisReaderGetReply(p->rd, &reply) != REDIS_OK) {
      drop_connection(p, "protocol error");
      return;
    }
    if (!reply) break;
    handle_reply(p, reply);
    freeReplyObject(reply);
    if (!p->connected) break; /* a callback may have dropped us */
  }
}

/* ---- connecting -------------------------------------------------------- */

static void on_connected(uv_connect_t *req, int status) {
  psub *p = req->data;
  if (p->closing) return;
  uv_timer_stop(&p->timer);
  if (status != 0) {
    p->connected = 0;
    drop_connection(p, uv_strerror(status));
    return;
  }
  p->connected = 1;
  if (p->rd) redisReaderFree(p->rd);
  p->rd = redisReaderCreate();
  uv_read_start(&p->h.stream, on_alloc, on_read);
  /* the base channel first: its answer tells whether SSUBSCRIBE exists */
  p->sharded = -1;
  const char *argv[2] = {"SSUBSCRIBE", p->base};
  size_t lens[2] = {10, strlen(p->base)};
  send_argv(p, 2, argv, lens);
}

static void on_connect_timeout(uv_timer_t *t) {
  psub *p = t->data;
  if (!p->connected) drop_connection(p, "connect timed out");
}

static void start_connect(psub *p) {
  if (p->closing || p->handle_open) return;
  int rc;
  if (p->port) {
    struct sockaddr_storage sa;
    const char *host = strcmp(p->host, "localhost") ? p->host : "127.0.0.1";
    if (uv_ip4_addr(host, p->port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, p->port, (struct sockaddr_in6 *)&sa) != 0) {
      log_event(LOG_ERROR, "redis pub/sub: cannot use the address", "redis=%s", p->host);
      return;
    }
    uv_tcp_init(p->loop, &p->h.tcp);
    p->h.handle.data = p;
    p->handle_open = 1;
    p->refs++;
    uv_tcp_nodelay(&p->h.tcp, 1);
    p->creq.data = p;
    rc = uv_tcp_connect(&p->creq, &p->h.tcp, (struct sockaddr *)&sa, on_connected);
  } else {
    uv_pipe_init(p->loop, &p->h.pipe, 0);
    p->h.handle.data = p;
    p->handle_open = 1;
    p->refs++;
    p->creq.data = p;
    uv_pipe_connect(&p->creq, &p->h.pipe, p->host, on_connected);
    rc = 0;
  }
  if (rc != 0) {
    drop_connection(p, uv_strerror(rc));
    return;
  }
  uv_timer_start(&p->timer, on_connect_timeout, PSUB_CONNECT_TIMEOUT_MS, 0);
}

/* ---- public ------------------------------------------------------------ */

static chan *add_chan(psub *p, const char *name, psub_done_fn *done, void *arg) {
  size_t len = strlen(name);
  chan *c = calloc(1, sizeof *c + len + 1);
  if (!c) return NULL;
  memcpy(c->name, name, len + 1);
  c->len = len;
  c->done = done;
  c->arg = arg;
  c->next = p->chans;
  p->chans = c;
  return c;
}

psub *psub_create(uv_loop_t *loop, const char *addr, const char *base_chan, psub_msg_fn *on_msg,
                  psub_state_fn *on_state, void *ud) {
  psub *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->loop = loop;
  p->on_msg = on_msg;
  p->on_state = on_state;
  p->ud = ud;
  p->sharded = -1;
  p->refs = 1;
  p->base = strdup(base_chan);
  if (!p->base) goto fail;
  if (addr[0] == '/') {
    if (strlen(addr) >= sizeof p->host) goto fail;
    strcpy(p->host, addr);
  } else {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof p->host) goto fail;
    memcpy(p->host, addr, (size_t)(colon - addr));
    p->port = atoi(colon + 1);
    if (p->port <= 0 || p->port > 65535) goto fail;
  }
  if (!add_chan(p, base_chan, NULL, NULL)) goto fail;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  p->refs++;
  start_connect(p);
  return p;
fail:
  free(p->base);
  free(p);
  return NULL;
}

int psub_subscribe(psub *p, const char *chan_name, psub_done_fn *done, void *arg) {
  chan *c = add_chan(p, chan_name, done, arg);
  if (!c) return -1;
  p->followed++;
  atomic_fetch_add_explicit(&metrics.rooms_followed, 1, memory_order_relaxed);
  if (!p->connected || p->sharded < 0) {
    /* sent once the connection (and the mode) is there */
    if (!p->connected) call_done(c, 0);
    return 0;
  }
  const char *argv[2] = {p->sharded ? "SSUBSCRIBE" : "SUBSCRIBE", c->name};
  size_t lens[2] = {strlen(argv[0]), c->len};
  if (send_argv(p, 2, argv, lens) != 0) call_done(c, 0);
  return 0;
}

void psub_unsubscribe(psub *p, const char *chan_name) {
  size_t len = strlen(chan_name);
  for (chan **pp = &p->chans; *pp; pp = &(*pp)->next) {
    chan *c = *pp;
    if (c->len != len || memcmp(c->name, chan_name, len)) continue;
    *pp = c->next;
    if (strcmp(c->name, p->base) != 0) {
      p->followed--;
      atomic_fetch_sub_explicit(&metrics.rooms_followed, 1, memory_order_relaxed);
    }
    call_done(c, 0);
    if (p->connected && p->sharded >= 0) {
      const char *argv[2] = {p->sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", c->name};
      size_t lens[2] = {strlen(argv[0]), c->len};
      send_argv(p, 2, argv, lens);
    }
    free(c);
    return;
  }
}

int psub_up(const psub *p) { return p && p->up; }

int psub_sharded(const psub *p) { return p && p->sharded == 1; }

void psub_destroy(psub *p) {
  if (!p) return;
  p->closing = 1;
  p->connected = 0;
  p->up = 0;
  atomic_fetch_sub_explicit(&metrics.rooms_followed, p->followed, memory_order_relaxed);
  p->followed = 0;
  for (chan *c = p->chans; c; c = c->next) call_done(c, 0);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_timer_closed);
  if (p->handle_open && !uv_is_closing(&p->h.handle)) uv_close(&p->h.handle, on_stream_closed);
  unref(p);
}
