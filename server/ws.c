/*
 * ws — otj.v1 sessions: reassembly, decode, dispatch, queued output.
 * See ws.h for the design.
 */
#include "ws.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "http.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "otj_assert.h"

#define WS_PATH           "/ws"
#define WS_MAX_BAD_HELLOS 3            /* wrong tokens before the socket is closed */
#define WS_RING_MIN       8            /* first size of a session's send ring */
#define WS_COALESCE_MAX   WS_TX_PACKET /* bytes of frames written at once */
#define WS_HEADER_MAX     10           /* the longest websocket frame header */
#define WS_BUDGET_BUCKETS 1024         /* hash table of per-user message budgets */

typedef struct ws_budget ws_budget;

/* A frame to send: refcounted, because one event is queued on every
 * member's session; payload after LWS_PRE bytes of headroom. */
struct ws_frame {
  uint32_t refs;
  size_t len;
  uint64_t made_ns; /* for the fan-out latency of /metrics */
  uint8_t buf[];
};

struct ws_sess {
  struct lws *wsi;
  otjd *d;
  uint64_t id;                  /* this process's number of the connection, for the log */
  ws_sess *prev, *next;         /* otjd.sessions */
  ws_sess *arm_prev, *arm_next; /* otjd.arm_head, when on_arm_list */
  const char *close_why;        /* static text, sent when closing */
  int64_t user_id;
  ws_ref *ref; /* for replies that arrive after a Redis round trip; only while one is out */
  void *live;  /* live rooms' attachments of this session (live_room.c) */
  /* malloc'd: until hello the session cookie's token of the upgrade (used up
   * by hello), after it the display name; `authed` tells which */
  char *name;
  ws_budget *budget; /* the user's budget, shared by their sessions */
  uint8_t *rx;       /* reassembly of a fragmented message, only while one arrives */

  /* The send queue, frames waiting for the socket: a ring of ring_cap slots,
   * `one` (inline, capacity 1) until two frames wait at once, then malloc'd;
   * an empty malloc'd ring goes back to `one` at the idle sweep. */
  ws_frame **ring;
  ws_frame *one;
  uint32_t ring_cap, ring_head, q_count, q_bytes;

  unsigned char token_digest[AUTH_TOKEN_HASH_LEN]; /* of the session it said hello with */
  uint64_t opened_ms;                              /* loop time of the upgrade */
  /* loop times in ms, kept to 32 bits: only differences of seconds to
   * minutes are taken of them (unsigned wrap-around is exact) */
  uint32_t last_rx_ms; /* of the last frame received */
  uint32_t rate_window_ms;
  uint32_t budget_err_ms; /* of the last "over budget" err, or 0 */
  uint32_t rate_count;
  uint32_t rx_len, rx_cap;
  uint16_t peer_close; /* the close code the client sent, 0 if none */
  uint16_t close_code; /* an enum lws_close_status, sent when closing */
  uint8_t bad_hellos;
  unsigned on_arm_list : 1, closing : 1, close_sent : 1, authed : 1, responsible : 1,
      rx_oversize : 1; /* the current message passed max_frame: drop it */
};

size_t ws_sess_size(void) { return sizeof(ws_sess); }

/* One decode target and one encode buffer for the whole loop: a decoded
 * message is about 8 KiB and lives only while one frame is handled. */
static proto_msg g_msg;
static proto_buf g_out;
static int g_out_ready;

static proto_buf *outbuf(void) {
  if (!g_out_ready) {
    proto_buf_init(&g_out, 0);
    g_out_ready = 1;
  }
  proto_buf_clear(&g_out);
  return &g_out;
}

/* ---- output queue ------------------------------------------------------ */

static int on_writeable(ws_sess *s);

/* Runs only so that the poll phase does not block while arms wait. */
static void on_arm_idle(uv_idle_t *h) { (void)h; }

static void arm_add(ws_sess *s) {
  if (s->on_arm_list) return;
  otjd *d = s->d;
  if (!d->arm_head) uv_idle_start(&d->arm_idle, on_arm_idle);
  s->arm_prev = NULL;
  s->arm_next = d->arm_head;
  if (d->arm_head) d->arm_head->arm_prev = s;
  d->arm_head = s;
  s->on_arm_list = 1;
}

static void arm_remove(ws_sess *s) {
  if (!s->on_arm_list) return;
  if (s->arm_prev)
    s->arm_prev->arm_next = s->arm_next;
  else
    s->d->arm_head = s->arm_next;
  if (s->arm_next) s->arm_next->arm_prev = s->arm_prev;
  s->on_arm_list = 0;
  s->arm_prev = s->arm_next = NULL;
}

static void on_arm_check(uv_check_t *h) {
  otjd *d = h->data;
  ws_sess *s = d->arm_head;
  d->arm_head = NULL;
  uv_idle_stop(&d->arm_idle);
  while (s) {
    ws_sess *next = s->arm_next;
    s->on_arm_list = 0;
    s->arm_prev = s->arm_next = NULL;
    if (s->closing && !s->q_count) {
      /* Start the closing handshake outside any callback of this wsi: lws
       * 4.1 drops a socket without a close frame when WRITEABLE returns
       * -1, but a close it is asked for here sends the frame first. */
      if (!s->close_sent) {
        s->close_sent = 1;
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_why, strlen(s->close_why));
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
      }
    } else if (s->q_count && !lws_partial_buffered(s->wsi)) {
      /* Nothing of this socket is waiting inside lws: write now, from
       * here, rather than ask lws for a WRITEABLE callback. Asking costs
       * two epoll_ctl calls (POLLOUT on, then off) per burst, which
       * measured a third of otjd's CPU under fan-out. A write the kernel
       * takes only partly is kept by lws, which then arms POLLOUT itself,
       * and the next batch waits for WRITEABLE (lws_partial_buffered). */
      if (on_writeable(s) < 0) lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else {
      lws_callback_on_writable(s->wsi);
    }
    s = next;
  }
}

static void close_session(ws_sess *s, enum lws_close_status code, const char *reason) {
  if (s->closing) return;
  s->closing = 1;
  s->close_code = (uint16_t)code;
  s->close_why = reason;
  arm_add(s);
}

/* Made by the first ws_ref_get and freed when only the session's own
 * reference is left: an idle connection holds none. */
struct ws_ref {
  ws_sess *s;
  int refs; /* the holders', plus one of the session while it lives */
};

ws_ref *ws_ref_get(ws_sess *s) {
  if (!s->ref) {
    s->ref = malloc(sizeof *s->ref);
    OTJ_ASSERT(s->ref != NULL); /* 16 bytes: out of memory here is not survivable */
    s->ref->s = s;
    s->ref->refs = 1;
  }
  OTJ_ASSERT(s->ref->refs > 0 && s->ref->s == s);
  s->ref->refs++;
  return s->ref;
}

ws_sess *ws_ref_sess(const ws_ref *r) { return r->s; }

void ws_ref_put(ws_ref *r) {
  OTJ_ASSERT(r->refs > 0);
  if (--r->refs == 1 && r->s) { /* only the session's own is left */
    OTJ_ASSERT(r->s->ref == r);
    r->s->ref = NULL;
    r->refs = 0;
  }
  if (r->refs == 0) free(r);
}

int64_t ws_user(const ws_sess *s) { return s->user_id; }
uint64_t ws_id(const ws_sess *s) { return s->id; }
const char *ws_user_name(const ws_sess *s) { return s->authed && s->name ? s->name : ""; }
int ws_is_responsible(const ws_sess *s) { return s->responsible; }
void **ws_live_slot(ws_sess *s) { return &s->live; }

void ws_each_of_user(otjd *d, int64_t user, void (*fn)(ws_sess *, void *), void *arg) {
  for (ws_sess *s = d->sessions, *next; s; s = next) {
    next = s->next;
    if (s->authed && !s->closing && s->user_id == user) fn(s, arg);
  }
}

void ws_close_user(otjd *d, int64_t user, int code, const char *reason) {
  for (ws_sess *s = d->sessions; s; s = s->next)
    if (s->authed && s->user_id == user) close_session(s, (enum lws_close_status)code, reason);
}

void ws_close_token(otjd *d, const unsigned char digest[AUTH_TOKEN_HASH_LEN], int code,
                    const char *reason) {
  for (ws_sess *s = d->sessions; s; s = s->next)
    if (s->authed && !memcmp(s->token_digest, digest, sizeof s->token_digest))
      close_session(s, (enum lws_close_status)code, reason);
}

void ws_each_responsible(otjd *d, void (*fn)(ws_sess *, void *), void *arg) {
  for (ws_sess *s = d->sessions, *next; s; s = next) {
    next = s->next;
    if (s->authed && !s->closing && s->responsible) fn(s, arg);
  }
}

static void free_queue(ws_sess *s);

ws_frame *ws_frame_new(const uint8_t *data, size_t len) {
  ws_frame *f = malloc(sizeof *f + LWS_PRE + len);
  if (!f) return NULL;
  f->refs = 1;
  f->len = len;
  f->made_ns = metrics_now_ns();
  memcpy(f->buf + LWS_PRE, data, len);
  return f;
}

void ws_frame_put(ws_frame *f) {
  if (!f) return;
  OTJ_ASSERT(f->refs > 0);
  if (--f->refs == 0) free(f);
}

int ws_send_frame(ws_sess *s, ws_frame *f) {
  otjd *d = s->d;
  if (s->closing) return -1;
  if (s->q_count >= d->cfg.max_send_queue || (size_t)s->q_bytes + f->len > d->cfg.max_send_bytes) {
    /* A reader this far behind gets nothing more: its queue is dropped
     * (it resyncs on reconnect) and it is closed, without waiting for the
     * socket to drain. */
    d->st.dropped_slow++;
    free_queue(s);
    close_session(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too slow: reconnect and sync");
    return -1;
  }
  if (s->q_count == s->ring_cap) {
    if (!s->ring_cap) { /* the inline slot holds the first frame */
      s->ring = &s->one;
      s->ring_cap = 1;
      s->ring_head = 0;
    } else { /* grow the ring, keeping the order */
      uint32_t cap = s->ring_cap > 1 ? s->ring_cap * 2 : WS_RING_MIN;
      ws_frame **r = malloc(cap * sizeof *r);
      if (!r) {
        close_session(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return -1;
      }
      for (uint32_t i = 0; i < s->q_count; i++) r[i] = s->ring[(s->ring_head + i) % s->ring_cap];
      if (s->ring != &s->one) free(s->ring);
      s->ring = r;
      s->ring_cap = cap;
      s->ring_head = 0;
    }
  }
  OTJ_ASSERT(f->refs > 0 && s->q_count < s->ring_cap);
  f->refs++;
  s->ring[(s->ring_head + s->q_count) % s->ring_cap] = f;
  s->q_count++;
  s->q_bytes += (uint32_t)f->len;
  arm_add(s);
  return 0;
}

int ws_send(ws_sess *s, const uint8_t *data, size_t len) {
  if (s->closing) return -1;
  ws_frame *f = ws_frame_new(data, len);
  if (!f) {
    close_session(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return -1;
  }
  int rc = ws_send_frame(s, f);
  ws_frame_put(f);
  return rc;
}

static void send_buf(ws_sess *s, proto_buf *b) {
  if (b->failed || proto_buf_size(b) == 0) return;
  ws_send(s, proto_buf_bytes(b), proto_buf_size(b));
}

static void count_err(ws_sess *s, proto_code code) {
  _Static_assert(PROTO_INTERNAL < OTJD_ERR_CODES, "raise OTJD_ERR_CODES");
  s->d->st.ws_errors[(unsigned)code < OTJD_ERR_CODES ? code : PROTO_INTERNAL]++;
}

void ws_send_err(ws_sess *s, proto_rid rid, proto_code code, const char *msg) {
  count_err(s, code);
  log_event(LOG_DEBUG, "ws err sent", "session=%llu user=%lld code=%s", (unsigned long long)s->id,
            (long long)s->user_id, proto_code_name(code));
  proto_buf *b = outbuf();
  if (proto_encode_err(b, rid, code, msg) == 0) send_buf(s, b);
}

static ws_frame *ring_pop(ws_sess *s) {
  OTJ_ASSERT(s->q_count > 0 && s->ring_head < s->ring_cap);
  ws_frame *f = s->ring[s->ring_head];
  OTJ_ASSERT(f->refs > 0 && s->q_bytes >= f->len);
  s->ring_head = (s->ring_head + 1) % s->ring_cap;
  s->q_count--;
  s->q_bytes -= (uint32_t)f->len;
  return f;
}

/* An empty send ring goes back to the inline slot (an idle connection
 * keeps no ring on the heap). */
static void ring_shrink(ws_sess *s) {
  OTJ_ASSERT(s->q_count == 0);
  if (s->ring != &s->one) free(s->ring);
  s->ring = NULL;
  s->ring_cap = s->ring_head = 0;
}

static void free_queue(ws_sess *s) {
  while (s->q_count) ws_frame_put(ring_pop(s));
  ring_shrink(s);
}

/* Writes a websocket header for a final binary frame of `len` bytes (a
 * server's frames are not masked). Returns its length. */
static size_t frame_header(uint8_t *p, size_t len) {
  p[0] = 0x82;
  if (len < 126) {
    p[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    p[1] = 126;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    return 4;
  }
  p[1] = 127;
  for (int i = 0; i < 8; i++) p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  return 10;
}

/* Frames queued for one socket leave together: as many as fit are laid
 * end to end, headers included, and go out in ONE write (lws passes
 * LWS_WRITE_RAW bytes through unframed). A write costs the kernel about the
 * same for one small frame as for sixteen, so this is the main lever on
 * CPU per delivered message.
 *
 * One write per turn: from the arm check when lws holds nothing unsent for
 * the socket, else from WRITEABLE, which lws calls only once its own buffer
 * of unsent bytes is drained. So what we write never piles up inside lws;
 * a socket that does not drain keeps its frames in our bounded queue, and a
 * full queue drops the client. */
static uint8_t g_coalesce[LWS_PRE + WS_COALESCE_MAX];

/* Writes the next batch of queued frames. Returns -1 to have lws drop the
 * connection (a write failed). */
static int on_writeable(ws_sess *s) {
  otjd *d = s->d;
  if (s->q_count) {
    ws_frame *f = s->ring[s->ring_head];
    if (f->len + WS_HEADER_MAX > WS_COALESCE_MAX) {
      /* a big frame on its own: lws frames it */
      d->st.frames_out++;
      d->st.bytes_out += f->len;
      d->st.writes_out++;
      metrics_observe(&metrics.fanout, metrics_now_ns() - f->made_ns);
      int n = lws_write(s->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_BINARY);
      ws_frame_put(ring_pop(s));
      if (n < 0) return -1;
    } else {
      uint8_t *out = g_coalesce + LWS_PRE;
      size_t off = 0;
      uint64_t now_ns = metrics_now_ns();
      while (s->q_count) {
        f = s->ring[s->ring_head];
        if (off + f->len + WS_HEADER_MAX > WS_COALESCE_MAX) break;
        off += frame_header(out + off, f->len);
        memcpy(out + off, f->buf + LWS_PRE, f->len);
        off += f->len;
        d->st.frames_out++;
        d->st.bytes_out += f->len;
        metrics_observe(&metrics.fanout, now_ns - f->made_ns);
        ws_frame_put(ring_pop(s));
      }
      d->st.writes_out++;
      if (lws_write(s->wsi, out, off, LWS_WRITE_RAW) < 0) return -1;
    }
  }
  if (s->q_count || s->closing) arm_add(s); /* more later, or the close */
  return 0;
}

/* ---- handshake --------------------------------------------------------- */

/* Reads the otj_session cookie from the upgrade request into `out`.
 * Returns 1 when one was present. */
static int read_cookie_token(struct lws *wsi, char *out, size_t cap) {
  char hdr[2048];
  if (lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_COOKIE) <= 0) return 0;
  return http_cookie_value(hdr, HTTP_SESSION_COOKIE, out, cap) == 0;
}

/* The upgrade is refused unless it is for /ws; with a session cookie the
 * Origin must be allowed (a page elsewhere must not ride on the cookie). */
static int filter_connection(struct lws *wsi) {
  otjd *d = otjd_of(wsi);
  char uri[64];
  if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, WS_PATH) != 0)
    return 1;
  if (d->shutting_down) return 1;
  if (d->st.ws_open >= d->cfg.max_connections) return 1;
  char tok[AUTH_TOKEN_LEN + 1];
  if (read_cookie_token(wsi, tok, sizeof tok) && !http_origin_allowed(wsi, d)) return 1;
  return 0;
}

/* ---- per-user message budget -------------------------------------------- */

/* All of one person's connections on this instance draw on one token
 * bucket, so three tabs do not triple what one may send. It refills at
 * max_user_msgs_per_sec and holds at most one second's worth; it lives
 * while the person has a connection here (counted by sessions). Per
 * instance, not global: a user spread over n instances gets n budgets. */
struct ws_budget {
  ws_budget *next;
  int64_t user;
  uint32_t refs;
  uint64_t at_ms; /* loop time of the last refill */
  uint64_t milli; /* tokens left, in thousandths */
};

static ws_budget *g_budgets[WS_BUDGET_BUCKETS];

/* The user's budget with one more reference (a full one when new), or NULL
 * when out of memory (then only the per-connection limit applies). */
static ws_budget *budget_get(int64_t user, uint64_t now, uint32_t rate) {
  ws_budget **head = &g_budgets[(uint64_t)user % WS_BUDGET_BUCKETS];
  for (ws_budget *b = *head; b; b = b->next)
    if (b->user == user) {
      b->refs++;
      return b;
    }
  ws_budget *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->user = user;
  b->refs = 1;
  b->at_ms = now;
  b->milli = (uint64_t)rate * 1000;
  b->next = *head;
  *head = b;
  return b;
}

static void budget_put(ws_budget *b) {
  if (--b->refs) return;
  for (ws_budget **pp = &g_budgets[(uint64_t)b->user % WS_BUDGET_BUCKETS]; *pp; pp = &(*pp)->next)
    if (*pp == b) {
      *pp = b->next;
      break;
    }
  free(b);
}

/* Takes one message from the budget. Returns 0 when it is spent. */
static int budget_take(ws_budget *b, uint64_t now, uint32_t rate) {
  uint64_t cap = (uint64_t)rate * 1000;
  if (now > b->at_ms) {
    uint64_t dt = now - b->at_ms;
    b->milli = dt >= 1000 ? cap : b->milli + dt * rate;
    if (b->milli > cap) b->milli = cap;
    b->at_ms = now;
  }
  if (b->milli < 1000) return 0;
  b->milli -= 1000;
  return 1;
}

/* ---- messages ---------------------------------------------------------- */

static void handle_hello(ws_sess *s, const proto_msg *m) {
  otjd *d = s->d;
  proto_rid rid = proto_rid_of(m);
  if (s->authed) {
    ws_send_err(s, rid, PROTO_CONFLICT, "This connection already said hello.");
    return;
  }
  const char *tok = NULL;
  size_t toklen = 0;
  if (m->hello.has_token) {
    tok = m->hello.token.ptr;
    toklen = m->hello.token.len;
  } else if (s->name) { /* before hello: the session cookie's token */
    tok = s->name;
    toklen = strlen(s->name);
  }
  unsigned char digest[AUTH_TOKEN_HASH_LEN];
  store_user u;
  int ok = tok && auth_token_digest(tok, toklen, digest) == 0 &&
           store_session_user(d->db, digest, (int64_t)time(NULL), &u) == 0;
  if (!ok) {
    log_event(LOG_INFO, "ws hello refused", "session=%llu reason=%s tries=%d",
              (unsigned long long)s->id, tok ? "unknown_session" : "no_token", s->bad_hellos + 1);
    if (++s->bad_hellos >= WS_MAX_BAD_HELLOS) {
      ws_send_err(s, rid, PROTO_UNAUTHORIZED, "Too many unknown tokens; log in again.");
      close_session(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "unauthorized");
      return;
    }
    ws_send_err(s, rid, PROTO_UNAUTHORIZED,
                tok ? "That session is unknown or has expired; log in again."
                    : "Send hello with the token from /api/login.");
    return;
  }
  free(s->name); /* the cookie's token, used up: not kept per connection */
  s->name = strdup(u.name);
  s->authed = 1;
  s->user_id = u.id;
  s->budget = budget_get(u.id, otjd_now_ms(d), d->cfg.max_user_msgs_per_sec);
  memcpy(s->token_digest, digest, sizeof s->token_digest);
  s->responsible = store_user_is_responsible(&u) != 0;
  d->st.ws_authed++;
  log_event(LOG_INFO, "ws hello", "session=%llu user=%lld responsible=%d",
            (unsigned long long)s->id, (long long)s->user_id, s->responsible);
  proto_user pu = {
      .id = (uint64_t)u.id, .name = proto_s(ws_user_name(s)), .responsible = s->responsible != 0};
  proto_buf *b = outbuf();
  if (proto_encode_welcome(b, rid, &pu) == 0) send_buf(s, b);
  live_session_ready(s);
}

static int rate_ok(ws_sess *s) {
  otjd *d = s->d;
  uint32_t now = (uint32_t)otjd_now_ms(d);
  if ((uint32_t)(now - s->rate_window_ms) >= 1000) {
    s->rate_window_ms = now;
    s->rate_count = 0;
  }
  return ++s->rate_count <= d->cfg.max_msgs_per_sec;
}

static void handle_frame(ws_sess *s, const uint8_t *buf, size_t len, int binary) {
  otjd *d = s->d;
  d->st.frames_in++;
  if (!rate_ok(s)) {
    d->st.rate_limited++;
    /* One err per window: a flood must not turn into a flood back. */
    if (s->rate_count == d->cfg.max_msgs_per_sec + 1)
      ws_send_err(s, PROTO_NO_RID, PROTO_RATE_LIMITED,
                  "Too many messages: slow down; messages in this second are "
                  "dropped.");
    return;
  }
  if (s->budget && !budget_take(s->budget, otjd_now_ms(d), d->cfg.max_user_msgs_per_sec)) {
    d->st.rate_limited++;
    /* at most one err per second on each connection, as above */
    uint32_t now = (uint32_t)otjd_now_ms(d);
    if (!s->budget_err_ms || (uint32_t)(now - s->budget_err_ms) >= 1000) {
      s->budget_err_ms = now ? now : 1;
      ws_send_err(s, PROTO_NO_RID, PROTO_RATE_LIMITED,
                  "Too many messages from your connections together: slow "
                  "down; messages over the budget are dropped.");
    }
    return;
  }
  if (!binary) {
    d->st.bad_frames++;
    ws_send_err(s, PROTO_NO_RID, PROTO_BAD_REQUEST,
                "Text frames are not understood: send one msgpack map per "
                "binary frame.");
    return;
  }
  proto_limits lim = proto_limits_default();
  lim.max_frame = d->cfg.max_frame;
  proto_error perr;
  if (proto_decode(buf, len, &lim, &g_msg, &perr) != 0) {
    d->st.bad_frames++;
    count_err(s, perr.code);
    proto_buf *b = outbuf();
    if (proto_encode_decode_error(b, &perr) == 0) send_buf(s, b);
    return;
  }
  const proto_msg *m = &g_msg;
  proto_rid rid = proto_rid_of(m);
  log_event(LOG_DEBUG, "ws message", "session=%llu user=%lld type=%s bytes=%zu",
            (unsigned long long)s->id, (long long)s->user_id, proto_type_name(m->type), len);
  if (m->type == PROTO_T_HELLO) {
    handle_hello(s, m);
    return;
  }
  if (!s->authed) {
    ws_send_err(s, rid, PROTO_UNAUTHORIZED, "Say hello with your token before anything else.");
    return;
  }
  switch (m->type) {
  case PROTO_T_PING: {
    proto_buf *b = outbuf();
    if (proto_encode_pong(b, rid) == 0) send_buf(s, b);
    break;
  }
  default: live_handle(s, m); break;
  }
}

/* Appends a fragment; on the last one, handles the whole message. */
static void on_receive(ws_sess *s, const uint8_t *in, size_t len) {
  otjd *d = s->d;
  struct lws *wsi = s->wsi;
  int first = lws_is_first_fragment(wsi);
  int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
  int binary = lws_frame_is_binary(wsi);
  if (first && s->rx_len == 0) s->rx_oversize = 0;

  if (final && s->rx_len == 0 && !s->rx_oversize) {
    /* the usual case: the whole message in one piece, no copy */
    if (len > d->cfg.max_frame) goto too_large;
    handle_frame(s, in, len, binary);
    return;
  }
  if (!s->rx_oversize) {
    if (s->rx_len + len > d->cfg.max_frame) {
      s->rx_oversize = 1;
      free(s->rx);
      s->rx = NULL;
      s->rx_len = s->rx_cap = 0;
    } else {
      if (s->rx_len + len > s->rx_cap) {
        /* the rest of this frame is known: room for all of it at once */
        size_t cap = s->rx_len + len + lws_remaining_packet_payload(wsi);
        if (s->rx_cap && cap < (size_t)s->rx_cap * 2) cap = (size_t)s->rx_cap * 2;
        if (cap > d->cfg.max_frame) cap = d->cfg.max_frame;
        uint8_t *n = realloc(s->rx, cap);
        if (!n) {
          close_session(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
          return;
        }
        s->rx = n;
        s->rx_cap = (uint32_t)cap;
      }
      memcpy(s->rx + s->rx_len, in, len);
      s->rx_len += (uint32_t)len;
    }
  }
  if (!final) return;
  if (s->rx_oversize) goto too_large;
  handle_frame(s, s->rx, s->rx_len, binary);
  /* not kept: a buffer per connection that once sent a long message would
   * stay with every idle connection */
  free(s->rx);
  s->rx = NULL;
  s->rx_len = s->rx_cap = 0;
  return;
too_large:
  s->rx_oversize = 0;
  s->rx_len = 0;
  d->st.bad_frames++;
  {
    char msg[128];
    snprintf(msg, sizeof msg, "A message may be at most %u bytes.", d->cfg.max_frame);
    ws_send_err(s, PROTO_NO_RID, PROTO_TOO_LARGE, msg);
  }
}

/* ---- the lws callback -------------------------------------------------- */

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len) {
  ws_sess *s = user;
  otjd *d;
  switch (reason) {
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return filter_connection(wsi);

  case LWS_CALLBACK_ESTABLISHED:
    d = otjd_of(wsi);
    memset(s, 0, sizeof *s);
    s->wsi = wsi;
    s->d = d;
    {
      char tok[AUTH_TOKEN_LEN + 1];
      if (read_cookie_token(wsi, tok, sizeof tok)) s->name = strdup(tok); /* until hello */
    }
    s->next = d->sessions;
    if (d->sessions) d->sessions->prev = s;
    d->sessions = s;
    d->st.ws_accepted++;
    d->st.ws_open++;
    s->id = d->st.ws_accepted;
    s->opened_ms = otjd_now_ms(d);
    s->last_rx_ms = (uint32_t)otjd_now_ms(d);
    {
      char addr[64] = "";
      lws_get_peer_simple(wsi, addr, sizeof addr);
      log_event(LOG_INFO, "ws accepted", "session=%llu addr=%s open=%llu",
                (unsigned long long)s->id, addr, (unsigned long long)d->st.ws_open);
    }
    return 0;

  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    /* the client's close frame: a 2-byte code (none: 1005), then a reason we do not keep */
    if (s && s->d)
      s->peer_close =
          len >= 2 ? (uint16_t)(((const uint8_t *)in)[0] << 8 | ((const uint8_t *)in)[1]) : 1005;
    return 0;

  case LWS_CALLBACK_RECEIVE:
    if (!s || !s->d || s->closing) return 0;
    s->last_rx_ms = (uint32_t)otjd_now_ms(s->d);
    on_receive(s, in, len);
    return 0;

  case LWS_CALLBACK_SERVER_WRITEABLE:
    if (!s || !s->d) return 0;
    return on_writeable(s);

  case LWS_CALLBACK_CLOSED:
    if (!s || !s->d) return 0;
    d = s->d;
    log_event(LOG_INFO, "ws closed", "session=%llu user=%lld code=%d by=%s reason=%s secs=%llu",
              (unsigned long long)s->id, (long long)s->user_id,
              s->closing      ? (int)s->close_code
              : s->peer_close ? s->peer_close
                              : 1006,
              s->closing      ? "server"
              : s->peer_close ? "client"
                              : "network",
              s->closing ? s->close_why : "",
              (unsigned long long)(otjd_now_ms(d) - s->opened_ms) / 1000);
    live_session_closed(s);
    if (s->ref) {
      s->ref->s = NULL;
      ws_ref_put(s->ref);
      s->ref = NULL;
    }
    arm_remove(s);
    if (s->prev)
      s->prev->next = s->next;
    else
      d->sessions = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->authed) d->st.ws_authed--;
    if (s->budget) budget_put(s->budget);
    s->budget = NULL;
    d->st.ws_open--;
    free_queue(s);
    free(s->rx);
    s->rx = NULL;
    free(s->name);
    s->name = NULL;
    s->d = NULL;
    return 0;

  default: return 0;
  }
}

/* Milliseconds since the client last sent any bytes, websocket control
 * frames included (lws answers a ping itself and tells no callback), from
 * the kernel's TCP_INFO; UINT64_MAX when unknown. */
static uint64_t ms_since_peer_sent(ws_sess *s) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  int fd = (int)lws_get_socket_fd(s->wsi);
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_last_data_recv) + sizeof ti.tcpi_last_data_recv)
    return UINT64_MAX;
  return ti.tcpi_last_data_recv;
}

/* Idle connections: a sweep every quarter of the shorter timeout closes the
 * sessions that did not say hello in time, or sent nothing (not even a
 * ping, of otj.v1 or of the websocket) for the whole idle timeout. One
 * walk over the sessions per sweep costs less than re-arming a per-socket
 * timer on every message; the kernel is asked only about the sessions
 * that look idle. */
static void on_idle_sweep(uv_timer_t *t) {
  otjd *d = t->data;
  uint64_t now = otjd_now_ms(d), limit = (uint64_t)d->cfg.idle_timeout_s * 1000,
           hello = (uint64_t)d->cfg.hello_timeout_s * 1000;
  for (ws_sess *s = d->sessions; s; s = s->next) {
    if (s->closing) continue;
    if (!s->q_count && s->ring_cap > 1) ring_shrink(s); /* a burst's ring, drained */
    if (!s->authed && now - s->opened_ms > hello)
      close_session(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "hello expected");
    else if ((uint32_t)((uint32_t)now - s->last_rx_ms) > limit) {
      uint64_t quiet = ms_since_peer_sent(s);
      if (quiet < limit)
        s->last_rx_ms = (uint32_t)(now - quiet);
      else
        close_session(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                      "idle: send a ping at least every minute");
    }
  }
}

int ws_init(otjd *d) {
  uv_timer_init(d->loop, &d->idle_sweep);
  d->idle_sweep.data = d;
  /* lws's own per-socket timeouts are kept in a sorted list (an O(n)
   * insert per new connection, the main cost of a join storm): the hello
   * and idle limits are enforced by this sweep instead */
  uint32_t shortest = d->cfg.hello_timeout_s < d->cfg.idle_timeout_s ? d->cfg.hello_timeout_s
                                                                     : d->cfg.idle_timeout_s;
  uint64_t every = (uint64_t)shortest * 250;
  uv_timer_start(&d->idle_sweep, on_idle_sweep, every, every);
  uv_unref((uv_handle_t *)&d->idle_sweep);
  uv_check_init(d->loop, &d->arm_check);
  d->arm_check.data = d;
  uv_check_start(&d->arm_check, on_arm_check);
  uv_unref((uv_handle_t *)&d->arm_check);
  uv_idle_init(d->loop, &d->arm_idle);
  uv_unref((uv_handle_t *)&d->arm_idle);
  return 0;
}

size_t ws_close_all(otjd *d) {
  size_t n = 0;
  for (ws_sess *s = d->sessions; s; s = s->next) {
    close_session(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    n++;
  }
  return n;
}

void ws_fini(otjd *d) {
  uv_timer_stop(&d->idle_sweep);
  uv_close((uv_handle_t *)&d->idle_sweep, NULL);
  uv_check_stop(&d->arm_check);
  uv_close((uv_handle_t *)&d->arm_check, NULL);
  uv_idle_stop(&d->arm_idle);
  uv_close((uv_handle_t *)&d->arm_idle, NULL);
  if (g_out_ready) {
    proto_buf_free(&g_out);
    g_out_ready = 0;
  }
}
