/*
 * otj-load — the load generator of OTJ live (DESIGN §7).
 *
 * One libuv loop, shared with a libwebsockets client context, drives every
 * simulated person: responsibles who open rooms and approve, learners who
 * join and answer, idle connections that only say hello. It provisions its
 * own organisation first (admin login, POST /api/admin/import, then
 * POST /api/admin/tokens for session tokens without argon2id per user).
 *
 * The one design idea: every request has an INTENDED send time fixed by the
 * schedule before the run starts (open loop). Latency is measured from that
 * time, not from when the generator got round to sending, so a server that
 * stalls is charged for the whole stall (no coordinated omission); how late
 * the generator itself sent is measured too, and a run where it fell behind
 * says so. Every receiver checks that each room's `seq` grows by exactly
 * one, and counts what was lost or duplicated.
 *
 * Scenarios: connections, fanout, join-storm, approvals, mixed, reconnect-storm
 * (README.md; the reconnect storm is its own section below the world).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <libwebsockets.h>
#include <jansson.h>
#include <msgpack.h>

#include "hist.h"
#include "lhttp.h"
#include "mpobj.h"
#include "procstat.h"
#include "reconnect.h"
#include "rxparse.h"

#define WS_PROTOCOL          "otj.v1"
#define MAX_SERVERS          16
#define MAX_PIDS             16
#define ROOM_MAX_LEARNERS    200   /* otjd's default learners per room */
#define IMPORT_USERS_PER_DOC 5000  /* keeps an import under 1 MiB */
#define TOKENS_PER_CALL      10000 /* POST /api/admin/tokens limit */
#define PORTS_PER_SOURCE     10000 /* bind(0) gets ~14k ports per address fast */
#define UNBOUND_MAX          20000 /* connect() alone: ~28k ports per server (32768-60999) */
#define TICK_MS              1
#define DRAIN_MAX_MS         5000
#define BEHIND_LAG_MS        10.0 /* p99 send lag above this: fell behind */
#define ERR_PRINT_MAX        8
#define RX_MAX               (1u << 20)

#define NS 1000000000ull
#define MS 1000000ull

/* ---- model ---------------------------------------------------------------- */

typedef enum { ROLE_HOST, ROLE_FANOUT, ROLE_STORM, ROLE_IDLE } role_t;
typedef enum { KIND_FANOUT, KIND_STORM, KIND_APPROVE } kind_t;
typedef enum { C_NEW, C_CONNECTING, C_HELLO, C_AUTHED, C_JOINING, C_READY, C_DEAD } cstate;

typedef struct qframe {
  struct qframe *next;
  uint64_t due; /* intended send time of an answer, 0 for others */
  size_t len;
  uint8_t buf[]; /* LWS_PRE headroom, then the payload */
} qframe;

struct room;

typedef struct conn {
  struct lws *wsi;
  struct room *room;
  int idx;
  int user; /* index into G.users */
  int server;
  role_t role;
  cstate st;
  int want_write;
  int in_flight; /* counted in G.connecting: connect or hello unanswered */
  int have_seq;
  uint64_t last; /* last in-order seq of its room */
  uint64_t due;  /* storm: the intended start of its join */
  qframe *qh, *qt;
  uint8_t *rx;
  size_t rx_len, rx_cap;
} conn;

typedef struct room {
  kind_t kind;
  int idx;
  conn *host;
  int first_learner, nlearners; /* users [first, first+n) */
  int opened;
  char id[72];
  char code[24];
  uint64_t max_seq;
  int next_approve; /* learners already sent for approval */
  conn **members;   /* connected learners (fanout and storm) */
  int nmembers;
} room;

typedef struct luser {
  char login[40];
  char token[64];
  int64_t id;
} luser;

typedef struct server {
  char host[128];
  int port;
  pid_t pid;
} server;

typedef enum { PH_PROVISION, PH_SETUP, PH_HOLD, PH_RUN, PH_DRAIN, PH_DONE } phase_t;

static const char *phase_name[] = {"provision", "setup", "hold", "run", "drain", "done"};

/* ---- configuration and state ---------------------------------------------- */

static struct {
  /* configuration */
  const char *scenario;
  server servers[MAX_SERVERS];
  int nservers;
  char admin_login[64], admin_password[128];
  int fanout_rooms, learners;
  double answer_rate; /* answers per second, all fanout rooms */
  double duration;    /* seconds of the run phase */
  int idle_conns;     /* connections scenario */
  int held_conns;     /* connections scenario: all it holds (idle and in rooms) */
  double hold;
  int storm_n;
  double storm_window, storm_at;
  double approve_rate; /* approvals (decisions) per second */
  int approve_batch;
  int nsources;
  int max_connecting;
  const char *json_path;
  const char *floor_path;
  int no_floor;
  pid_t otjd_pids[MAX_PIDS];
  int notjd;
  pid_t redis_pids[MAX_PIDS];
  int nredis;
  int redis_port;
  double timeout;
  int pool; /* users whose tokens idle connections share */
  int quiet;
  const char *label;
  const char *source_net; /* "B.C": sources 127.B.C.2.. (several generators) */
  int sync_fd;            /* -1, or where to say "provisioned" and "ready" */
  double ping_s;          /* each held connection pings this often (0: never) */

  /* derived */
  int storm_rooms, approve_rooms, approve_pool;
  char run_id[16];
  char dept[64], module_title[96], path_title[96];
  int64_t module_id;
  char admin_token[128];

  /* the world */
  luser *users;
  int nusers, nhosts; /* hosts first: users [0, nhosts) */
  room *rooms;
  int nrooms;
  conn *conns;
  int nconns;
  conn **fanout_order; /* learners interleaved across rooms */
  int nfanout;
  conn **storm_order;
  int setup_expected, setup_ready, setup_failed;
  int next_setup; /* next conn to connect in setup */
  int connecting;

  /* loop */
  uv_loop_t loop;
  uv_timer_t tick;
  struct lws_context *ctx;
  phase_t phase;
  uint64_t t_start, t_phase, t_run0, t_run_end, t_drain_end;
  uint64_t t_last_progress;
  int prov_step, prov_doc, prov_docs, prov_tok;

  /* counters */
  uint64_t answers_sent, answers_due, acks, deliveries, deliveries_run, ev_bytes;
  uint64_t approves_sent, approves_due, approve_replies, approvals_ok, approvals_other;
  uint64_t storm_started, joins_ok;
  uint64_t lost, dup, errors, conn_failed, conn_closed, early_ev;
  uint64_t rate_limited;
  int errs_printed;
  uint64_t last_deliv, last_deliv_t;
  double last_rate;
  int pool_exhausted;
  unsigned drain_checks;
  double loadavg0, self_cpu0, self_cpu1;
  int src_b, src_c; /* source addresses 127.b.c.2.. of this run */

  hist h_answer, h_ack, h_join, h_approve, h_lag;

  procstat otjd0[MAX_PIDS], otjd1[MAX_PIDS], redis0[MAX_PIDS], redis1[MAX_PIDS];
  procstat otjd_idle[MAX_PIDS];
  uint64_t t_cpu0, t_cpu1;
  int aborted;
  char abort_why[256];
  int sig;
  volatile sig_atomic_t go; /* SIGUSR1s received: 1 = set up, 2 = end the hold */
  uint64_t pings, pongs, ping_t0, ping_passed;
  int ping_next;
} G;

/* The reconnect storm (reconnect-storm; its section is after the world):
 * its settings, and the hooks the rest of the generator calls. */
static struct {
  int on;
  int rooms, storm, stay_pct, victim;
  double kill_at, bound, affected_rate;
  recon_backoff backoff;
  pid_t victim_pid;
  conn **stayers; /* learners of affected rooms on a surviving instance */
  int nstayers;
  uint64_t affected_sent, affected_answers, affected_acks; /* due, sent, acked */
  int killed, cpu_done;
  procstat victim_last, otjd0[MAX_PIDS], otjd1[MAX_PIDS], redis0[MAX_PIDS], redis1[MAX_PIDS];
  double self0, self1;
  uint64_t t_cpu0, t_cpu1;
  int *queue; /* attempts due while --max-connecting were in flight (FIFO) */
  int qhead, qtail, qcap;
  uint64_t queued;
} RS;

static int rs_drop(conn *c, const char *why);
static void rs_send_sync(conn *c);
static void rs_on_ok(conn *c, const msgpack_object *m, uint64_t t);
static int rs_on_snapshot(conn *c, const msgpack_object *m, uint64_t t);
static void rs_on_err(conn *c, const msgpack_object *m);
static void rs_drive(uint64_t t);
static int rs_may_end(void);
static void rs_cpu(recon_cpu *out);
static json_t *rs_json(const recon_cpu *cpu);
static int rs_find_victim(void);
static void rs_retry(int idx);

static msgpack_sbuffer g_sb;
/* OTJ_LOAD_FAULT="drop:N dup:M": the N-th ev frame received is dropped, the
 * M-th handled twice, as if the server had lost or repeated it; shows that
 * the checks catch both (test load.fault). */
static struct { uint64_t drop, dup, evs; } g_fault;
static uint8_t g_tx[LWS_PRE + 4096]; /* a message written at once, with lws's headroom */
static msgpack_zone g_zone;

static uint64_t now_ns(void) { return uv_hrtime(); }

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  if (G.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("otj-load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void finish_run(void);

static void fail_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_run(const char *fmt, ...) {
  if (G.aborted) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(G.abort_why, sizeof G.abort_why, fmt, ap);
  va_end(ap);
  G.aborted = 1;
  fprintf(stderr, "otj-load: %s\n", G.abort_why);
  finish_run();
}

/* Tells whoever runs several generators where this one is (--sync-fd). */
static void sync_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sync_say(const char *fmt, ...) {
  if (G.sync_fd < 0) return;
  char line[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0 && write(G.sync_fd, line, (size_t)n) != n) G.sync_fd = -1;
}

/* ---- msgpack helpers ------------------------------------------------------ */

static msgpack_packer *pk_begin(void) {
  static msgpack_packer pk;
  g_sb.size = 0;
  msgpack_packer_init(&pk, &g_sb, msgpack_sbuffer_write);
  return &pk;
}

static void pk_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void mp_copy(const msgpack_object *o, char *dst, size_t cap) {
  dst[0] = '\0';
  if (!o || o->type != MSGPACK_OBJECT_STR) return;
  size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
  memcpy(dst, o->via.str.ptr, n);
  dst[n] = '\0';
}

/* ---- output queue ------------------------------------------------------------ */

static void want_write(conn *c) {
  if (c->want_write || !c->wsi) return;
  c->want_write = 1;
  lws_callback_on_writable(c->wsi);
}

/* Queues the packed message in g_sb on c. A scheduled message (due != 0,
 * sent from the tick, outside any lws callback) on a socket with nothing
 * queued and nothing left unsent inside lws is written at once: asking lws
 * for WRITEABLE first costs two epoll_ctl (POLLOUT on, then off) per
 * message. A write the kernel takes only partly is kept by lws, which arms
 * POLLOUT itself; the next message then waits in the queue. */
static void send_packed(conn *c, uint64_t due) {
  if (due && !c->qh && c->wsi && !lws_partial_buffered(c->wsi)) {
    uint8_t *b = g_sb.size + LWS_PRE <= sizeof g_tx ? g_tx : NULL;
    if (b) {
      memcpy(b + LWS_PRE, g_sb.data, g_sb.size);
      if (lws_write(c->wsi, b + LWS_PRE, g_sb.size, LWS_WRITE_BINARY) < (int)g_sb.size) {
        G.errors++;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
      }
      uint64_t t = now_ns();
      hist_record(&G.h_lag, t > due ? t - due : 0);
      return;
    }
  }
  qframe *f = malloc(sizeof *f + LWS_PRE + g_sb.size);
  if (!f) return;
  f->next = NULL;
  f->due = due;
  f->len = g_sb.size;
  memcpy(f->buf + LWS_PRE, g_sb.data, g_sb.size);
  if (c->qt)
    c->qt->next = f;
  else
    c->qh = f;
  c->qt = f;
  want_write(c);
}

static void free_queue(conn *c) {
  for (qframe *f = c->qh, *n; f; f = n) {
    n = f->next;
    free(f);
  }
  c->qh = c->qt = NULL;
}

static int on_writeable(conn *c) {
  c->want_write = 0;
  uint64_t t = 0;
  while (c->qh && !lws_send_pipe_choked(c->wsi)) {
    qframe *f = c->qh;
    if (lws_write(c->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_BINARY) < (int)f->len) return -1;
    if (f->due) {
      if (!t) t = now_ns();
      hist_record(&G.h_lag, t > f->due ? t - f->due : 0);
      if (RS.on) recon_send_lag(f->due, t);
    }
    c->qh = f->next;
    if (!c->qh) c->qt = NULL;
    free(f);
  }
  if (c->qh) want_write(c);
  return 0;
}

/* ---- messages out ------------------------------------------------------------ */

static void send_hello(conn *c) {
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 3);
  pk_str(pk, "t");
  pk_str(pk, "hello");
  pk_str(pk, "v");
  msgpack_pack_uint8(pk, 1);
  pk_str(pk, "token");
  pk_str(pk, G.users[c->user].token);
  send_packed(c, 0);
}

static void send_ping(conn *c) {
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 1);
  pk_str(pk, "t");
  pk_str(pk, "ping");
  send_packed(c, 0);
  G.pings++;
}

static void send_open(conn *c) {
  room *r = c->room;
  int listed = r->kind == KIND_STORM ? 0 : r->nlearners;
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 3);
  pk_str(pk, "t");
  pk_str(pk, "open");
  pk_str(pk, "module");
  msgpack_pack_int64(pk, G.module_id);
  pk_str(pk, "learners");
  msgpack_pack_array(pk, (size_t)listed);
  for (int i = 0; i < listed; i++) msgpack_pack_int64(pk, G.users[r->first_learner + i].id);
  send_packed(c, 0);
}

static void send_join(conn *c) {
  room *r = c->room;
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 2);
  pk_str(pk, "t");
  pk_str(pk, "join");
  if (r->kind == KIND_STORM) {
    pk_str(pk, "code");
    pk_str(pk, r->code);
  } else {
    pk_str(pk, "room");
    pk_str(pk, r->id);
  }
  c->st = C_JOINING;
  send_packed(c, 0);
}

/* The answer carries its intended send time in `value` (free text), so the
 * responsible's copy of the event tells the latency; the key carries it too,
 * for the ack. */
/* Packs an `answer` to task 0 of c's room with this value and key. */
static void pack_answer(conn *c, const char *val, const char *key) {
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 5);
  pk_str(pk, "t");
  pk_str(pk, "answer");
  pk_str(pk, "room");
  pk_str(pk, c->room->id);
  pk_str(pk, "task");
  msgpack_pack_uint8(pk, 0);
  pk_str(pk, "value");
  pk_str(pk, val);
  pk_str(pk, "key");
  pk_str(pk, key);
}

static void send_answer(conn *c, uint64_t due) {
  char val[32], key[48];
  snprintf(val, sizeof val, "T%" PRIu64, due);
  snprintf(key, sizeof key, "%" PRIu64 "-%d", due, c->idx);
  pack_answer(c, val, key);
  send_packed(c, due);
  G.answers_sent++;
}

static int send_approve(room *r, uint64_t n, uint64_t due) {
  int k = r->nlearners - r->next_approve;
  if (k > G.approve_batch) k = G.approve_batch;
  if (k <= 0) return -1;
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 4);
  pk_str(pk, "t");
  pk_str(pk, "approve");
  pk_str(pk, "rid");
  msgpack_pack_uint64(pk, n + 1);
  pk_str(pk, "room");
  pk_str(pk, r->id);
  pk_str(pk, "decisions");
  msgpack_pack_array(pk, (size_t)k);
  for (int i = 0; i < k; i++) {
    msgpack_pack_map(pk, 2);
    pk_str(pk, "learner");
    msgpack_pack_int64(pk, G.users[r->first_learner + r->next_approve + i].id);
    pk_str(pk, "approved");
    msgpack_pack_true(pk);
  }
  r->next_approve += k;
  send_packed(r->host, due);
  G.approves_sent++;
  return 0;
}

/* ---- setup progress ------------------------------------------------------------ */

static void setup_done_one(conn *c, int ok) {
  if (c->role == ROLE_STORM) return;
  if (ok)
    G.setup_ready++;
  else
    G.setup_failed++;
}

static void learners_may_join(room *r) {
  for (int i = 0; i < r->nmembers; i++) {
    conn *l = r->members[i];
    if (l->role == ROLE_FANOUT && l->st == C_AUTHED) send_join(l);
  }
}

static void note_error(conn *c, const msgpack_object *m) {
  const msgpack_object *code = mp_get(m, "code");
  G.errors++;
  if (mp_is(code, "rate_limited")) G.rate_limited++;
  if (G.errs_printed++ < ERR_PRINT_MAX) {
    char cs[32], msg[200];
    mp_copy(code, cs, sizeof cs);
    mp_copy(mp_get(m, "msg"), msg, sizeof msg);
    fprintf(stderr, "\notj-load: conn %d (%s) got err %s: %s\n", c->idx,
            c->role == ROLE_HOST ? "host" : "learner", cs, msg);
  }
}

/* A connect is in flight until the hello is answered (or it failed): the
 * setup's bound on connects in flight covers the hello too, so a slow
 * server is not buried under hellos it cannot answer within its timeout. */
static void flight_done(conn *c) {
  if (!c->in_flight) return;
  c->in_flight = 0;
  G.connecting--;
}

/* ---- messages in ---------------------------------------------------------------- */

/* m: what rx_read found in the frame (seq; for an answer, its intended time) */
static void on_event(conn *c, const rx_msg *m, size_t bytes) {
  uint64_t seq = m->seq;
  G.deliveries++;
  G.ev_bytes += bytes;
  if (G.phase == PH_RUN) G.deliveries_run++;
  if (!c->have_seq) {
    G.early_ev++;
    return;
  }
  uint64_t lost0 = G.lost, dup0 = G.dup;
  seq_check(&c->last, seq, &G.lost, &G.dup);
  if (RS.on && (G.lost != lost0 || G.dup != dup0)) recon_flaw(c->idx);
  room *r = c->room;
  if (r && seq > r->max_seq) r->max_seq = seq;
  if (c->role == ROLE_HOST && m->answer) {
    uint64_t t = now_ns(), due = rx_due(m);
    if (due && t > due) hist_record(&G.h_answer, t - due);
    if (due && RS.on) recon_calm_latency(due, t);
  }
}

static void on_snapshot(conn *c, const msgpack_object *m, uint64_t t) {
  room *r = c->room;
  uint64_t seq = mp_u64(mp_get(m, "seq"));
  if (!r) return;
  if (RS.on && rs_on_snapshot(c, m, t)) return;
  if (c->role == ROLE_HOST && !r->opened) {
    mp_copy(mp_get(m, "room"), r->id, sizeof r->id);
    mp_copy(mp_get(m, "code"), r->code, sizeof r->code);
    r->opened = 1;
  }
  c->have_seq = 1;
  c->last = seq;
  if (seq > r->max_seq) r->max_seq = seq;
  if (c->st != C_READY) {
    c->st = C_READY;
    setup_done_one(c, 1);
    if (c->role == ROLE_STORM) {
      G.joins_ok++;
      hist_record(&G.h_join, t > c->due ? t - c->due : 0);
    }
  }
  if (c->role == ROLE_HOST) learners_may_join(r);
}

static void on_authed(conn *c) {
  flight_done(c);
  c->st = C_AUTHED;
  if (RS.on && recon_rejoining(c->idx)) {
    recon_welcomed(c->idx, now_ns());
    rs_send_sync(c);
    return;
  }
  switch (c->role) {
  case ROLE_HOST: send_open(c); break;
  case ROLE_FANOUT:
    if (c->room->opened) send_join(c);
    break;
  case ROLE_STORM: send_join(c); break;
  case ROLE_IDLE:
    c->st = C_READY;
    setup_done_one(c, 1);
    break;
  }
}

static void handle_msg(conn *c, const uint8_t *buf, size_t len) {
  /* ev and ack, nearly every frame: read in place, no unpacking */
  rx_msg rm;
  switch (rx_read(buf, len, &rm)) {
  case RX_EV:
    if (g_fault.drop | g_fault.dup) {
      g_fault.evs++;
      if (g_fault.evs == g_fault.drop) return;
      if (g_fault.evs == g_fault.dup) on_event(c, &rm, len);
    }
    on_event(c, &rm, len);
    return;
  case RX_ACK: {
    if (RS.on && rm.due_s && rm.due_n && rm.due_s[0] == 's')
      RS.affected_acks++; /* an affected room's answer (reconnect-storm): counted apart */
    else
      G.acks++;
    if (c->room && rm.seq > c->room->max_seq) c->room->max_seq = rm.seq;
    uint64_t t = now_ns(), due = rx_due(&rm);
    if (due && t > due) hist_record(&G.h_ack, t - due);
    return;
  }
  case RX_OTHER: break; /* anything else, or malformed: unpacked in full below */
  }
  uint64_t t = now_ns();
  size_t off = 0;
  msgpack_object o;
  if (msgpack_unpack((const char *)buf, len, &off, &g_zone, &o) != MSGPACK_UNPACK_SUCCESS ||
      o.type != MSGPACK_OBJECT_MAP) {
    G.errors++;
    msgpack_zone_clear(&g_zone);
    return;
  }
  const msgpack_object *ty = mp_get(&o, "t");
  if (mp_is(ty, "ev") || mp_is(ty, "ack")) {
    /* rx_read reads every well-formed ev and ack; msgpack-c accepted one
     * it did not */
    G.errors++;
  } else if (mp_is(ty, "snapshot")) {
    on_snapshot(c, &o, t);
  } else if (mp_is(ty, "welcome")) {
    const msgpack_object *u = mp_get(&o, "user");
    if (u && G.users[c->user].id == 0) G.users[c->user].id = (int64_t)mp_u64(mp_get(u, "id"));
    on_authed(c);
  } else if (mp_is(ty, "approved")) {
    G.approve_replies++;
    uint64_t rid = mp_u64(mp_get(&o, "rid"));
    const msgpack_object *res = mp_get(&o, "results");
    if (res && res->type == MSGPACK_OBJECT_ARRAY) {
      for (uint32_t i = 0; i < res->via.array.size; i++) {
        const msgpack_object *st = mp_get(&res->via.array.ptr[i], "status");
        if (mp_is(st, "approved")) {
          G.approvals_ok++;
        } else {
          G.approvals_other++;
          if (G.errs_printed++ < ERR_PRINT_MAX) {
            char why[200];
            mp_copy(mp_get(&res->via.array.ptr[i], "reason"), why, sizeof why);
            fprintf(stderr, "\notj-load: approval not approved: %s\n", why);
          }
        }
      }
    }
    if (rid) {
      double per = G.approve_rate / G.approve_batch;
      uint64_t due = G.t_run0 + (uint64_t)((double)(rid - 1) * 1e9 / per);
      hist_record(&G.h_approve, t > due ? t - due : 0);
    }
  } else if (mp_is(ty, "ok")) {
    if (RS.on) rs_on_ok(c, &o, t);
  } else if (RS.on && mp_is(ty, "err") && recon_rejoining(c->idx)) {
    rs_on_err(c, &o);
  } else if (mp_is(ty, "err")) {
    note_error(c, &o);
    if (c->st == C_HELLO) flight_done(c);
    if (c->st == C_HELLO || c->st == C_JOINING || (c->role == ROLE_HOST && !c->room->opened)) {
      if (c->st != C_READY) {
        setup_done_one(c, 0);
        c->st = C_DEAD;
      }
    }
  } else if (mp_is(ty, "pong")) {
    G.pongs++;
  }
  /* welcome for an idle conn, dashboard, invite, ok: nothing to do */
  msgpack_zone_clear(&g_zone);
}

/* Reassembles fragments; hands whole messages on. */
static void on_receive(conn *c, struct lws *wsi, const uint8_t *in, size_t len) {
  int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
  if (final && c->rx_len == 0) {
    handle_msg(c, in, len);
    return;
  }
  if (c->rx_len + len > RX_MAX) {
    G.errors++;
    c->rx_len = 0;
    return;
  }
  if (c->rx_len + len > c->rx_cap) {
    size_t cap = c->rx_cap ? c->rx_cap : 8192;
    while (cap < c->rx_len + len) cap *= 2;
    uint8_t *n = realloc(c->rx, cap);
    if (!n) return;
    c->rx = n;
    c->rx_cap = cap;
  }
  memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
  if (!final) return;
  handle_msg(c, c->rx, c->rx_len);
  c->rx_len = 0;
}

/* ---- the websocket callback ---------------------------------------------------- */

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len) {
  conn *c = lws_get_opaque_user_data(wsi);
  switch (reason) {
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    if (!c) return 0;
    flight_done(c);
    if (RS.on && rs_drop(c, in ? (const char *)in : "?")) return 0;
    G.conn_failed++;
    if (G.errs_printed++ < ERR_PRINT_MAX)
      fprintf(stderr, "\notj-load: connection %d failed: %s\n", c->idx,
              in ? (const char *)in : "?");
    c->wsi = NULL;
    if (c->st != C_READY) setup_done_one(c, 0);
    c->st = C_DEAD;
    free_queue(c);
    return 0;
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (!c) return 0;
    if (RS.on) recon_connected(c->idx, now_ns());
    c->st = C_HELLO;
    send_hello(c);
    return 0;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (c) on_receive(c, wsi, in, len);
    return 0;
  case LWS_CALLBACK_CLIENT_WRITEABLE:
    if (!c) return 0;
    return on_writeable(c);
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (!c) return 0;
    flight_done(c);
    if (RS.on && G.phase != PH_DONE && rs_drop(c, NULL)) return 0;
    if (G.phase != PH_DONE) {
      G.conn_closed++;
      if (G.errs_printed++ < ERR_PRINT_MAX)
        fprintf(stderr, "\notj-load: connection %d closed by the server\n", c->idx);
    }
    if (c->st != C_READY) setup_done_one(c, 0);
    c->st = C_DEAD;
    c->wsi = NULL;
    free_queue(c);
    return 0;
  default: return 0;
  }
}

static const struct lws_protocols protocols[] = {{WS_PROTOCOL, ws_callback, 0, 0, 0, NULL, 0},
                                                 {LHTTP_PROTOCOL, lhttp_callback, 0, 0, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

/* No lws validity timer per connection: lws would re-insert it into a
 * sorted list of every connection's timer on every frame received. It must
 * be given per connection: a context's policy with secs_since_valid_ping 0
 * leaves clients on lws's default (300 s). */
static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static void start_connect(conn *c) {
  server *s = &G.servers[c->server];
  char iface[32] = "";
  if (G.nsources > 0)
    snprintf(iface, sizeof iface, "127.%d.%d.%d", G.src_b, G.src_c, 2 + c->idx % G.nsources);
  struct lws_client_connect_info i;
  memset(&i, 0, sizeof i);
  i.context = G.ctx;
  i.address = s->host;
  i.host = s->host;
  i.port = s->port;
  i.path = "/ws";
  i.protocol = WS_PROTOCOL;
  i.opaque_user_data = c;
  i.iface = G.nsources > 0 ? iface : NULL;
  i.pwsi = &c->wsi;
  i.retry_and_idle_policy = &no_validity;
  c->st = C_CONNECTING;
  G.connecting++;
  c->in_flight = 1;
  if (!lws_client_connect_via_info(&i)) {
    if (c->st == C_CONNECTING) { /* no error callback came */
      flight_done(c);
      if (RS.on && rs_drop(c, "cannot start")) return;
      G.conn_failed++;
      c->st = C_DEAD;
      setup_done_one(c, 0);
    }
    c->wsi = NULL;
  }
}

/* ---- reports ---------------------------------------------------------------------- */

static double ms_of(uint64_t ns) { return (double)ns / 1e6; }

static json_t *hist_json(const hist *h) {
  if (!h->count) return json_pack("{s:I}", "count", (json_int_t)0);
  return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)h->count, "p50_ms",
                   ms_of(hist_quantile(h, 0.5)), "p90_ms", ms_of(hist_quantile(h, 0.9)), "p99_ms",
                   ms_of(hist_quantile(h, 0.99)), "p999_ms", ms_of(hist_quantile(h, 0.999)),
                   "max_ms", ms_of(h->max), "mean_ms",
                   ms_of((uint64_t)(h->sum / (double)h->count)));
}

static void hist_line(FILE *f, const char *name, const hist *h) {
  if (!h->count) return;
  fprintf(f, "  %-28s n=%-9" PRIu64 " p50 %8.2f  p90 %8.2f  p99 %8.2f  p99.9 %8.2f  max %8.2f ms\n",
          name, h->count, ms_of(hist_quantile(h, 0.5)), ms_of(hist_quantile(h, 0.9)),
          ms_of(hist_quantile(h, 0.99)), ms_of(hist_quantile(h, 0.999)), ms_of(h->max));
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void machine_json(json_t *rep) {
  struct utsname u;
  uname(&u);
  char model[128] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "model name", 10)) {
        char *p = strchr(line, ':');
        if (p) {
          snprintf(model, sizeof model, "%s", p + 2);
          model[strcspn(model, "\n")] = '\0';
        }
        break;
      }
    fclose(f);
  }
  double la = 0;
  f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &la) != 1) la = 0;
    fclose(f);
  }
  json_object_set_new(
      rep, "machine",
      json_pack(
          "{s:f, s:f, s:i, s:I, s:s, s:s}", "loadavg_1m_at_start", G.loadavg0, "loadavg_1m_at_end",
          la, "nproc", (int)sysconf(_SC_NPROCESSORS_ONLN), "mem_mib",
          (json_int_t)((uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) >> 20),
          "kernel", u.release, "cpu", model));
}

/* Runs the floor program with this run's frame size, fan-out and rate. */
static json_t *run_floor(double rate, size_t frame_bytes, int fanout, int receivers) {
  if (G.no_floor || !G.floor_path || rate <= 0 || receivers <= 0) return NULL;
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "'%s' --receivers %d --fanout %d --frame-bytes %zu --rate %.0f --seconds 2 --json",
           G.floor_path, receivers, fanout, frame_bytes, rate);
  FILE *p = popen(cmd, "r");
  if (!p) return NULL;
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  buf[n] = '\0';
  pclose(p);
  json_error_t err;
  json_t *j = json_loads(buf, 0, &err);
  if (!j) fprintf(stderr, "otj-load: the floor program said: %s\n", buf);
  return j;
}

static json_t *procs_json(const procstat *a, const procstat *b, int n, uint64_t deliveries,
                          double *cpu_total) {
  json_t *arr = json_array();
  double tot = 0;
  for (int i = 0; i < n; i++) {
    double cpu = b[i].cpu_s - a[i].cpu_s;
    tot += cpu;
    json_array_append_new(arr, json_pack("{s:f, s:I, s:I, s:I, s:I}", "cpu_s", cpu,
                                         "rss_before_kib", (json_int_t)a[i].rss_kib,
                                         "rss_after_kib", (json_int_t)b[i].rss_kib,
                                         "anon_before_kib", (json_int_t)a[i].anon_kib,
                                         "anon_after_kib", (json_int_t)b[i].anon_kib));
  }
  (void)deliveries;
  *cpu_total = tot;
  return arr;
}

static int report(void) {
  double win = (double)(G.t_cpu1 - G.t_cpu0) / 1e9;
  double runs = G.duration;
  uint64_t lost = G.lost, dup = G.dup;
  /* the tail: what a receiver never got of its room's last events */
  uint64_t tail = 0;
  for (int i = 0; i < G.nconns; i++) {
    conn *c = &G.conns[i];
    if (c->st == C_READY && c->room && c->have_seq && c->room->max_seq > c->last)
      tail += c->room->max_seq - c->last;
  }
  lost += tail;
  double otjd_cpu = 0, redis_cpu = 0;
  json_t *otjd = procs_json(G.otjd0, G.otjd1, G.notjd, G.deliveries, &otjd_cpu);
  json_t *redis = procs_json(G.redis0, G.redis1, G.nredis, G.deliveries, &redis_cpu);
  double us_per = G.deliveries ? otjd_cpu * 1e6 / (double)G.deliveries : 0;
  double redis_us = G.deliveries ? redis_cpu * 1e6 / (double)G.deliveries : 0;
  double self_cpu = G.self_cpu1 - G.self_cpu0;
  double self_us = G.deliveries ? self_cpu * 1e6 / (double)G.deliveries : 0;
  double lag99 = ms_of(hist_quantile(&G.h_lag, 0.99));
  int behind = lag99 > BEHIND_LAG_MS || G.answers_sent < G.answers_due ||
               G.approves_sent + (uint64_t)G.pool_exhausted < G.approves_due;
  int fanout_receivers = 0;
  for (int i = 0; i < G.nrooms; i++)
    if (G.rooms[i].kind == KIND_FANOUT) fanout_receivers += 1 + G.rooms[i].nmembers;
  size_t frame = G.deliveries ? (size_t)(G.ev_bytes / G.deliveries) + 2 : 0;
  double deliv_rate = runs > 0 ? (double)G.deliveries_run / runs : 0;
  json_t *floor = NULL;
  if (!G.aborted && G.fanout_rooms > 0)
    floor = run_floor(deliv_rate, frame, G.learners + 1,
                      fanout_receivers < 3000 ? fanout_receivers : 3000);

  int ok = !G.aborted && G.approve_replies >= G.approves_sent && lost == 0 && dup == 0 &&
           G.errors == 0 && G.conn_failed == 0 && G.conn_closed == 0 && G.approvals_other == 0 &&
           G.early_ev == 0;
  recon_cpu rcpu = {0};
  if (RS.on) {
    rs_cpu(&rcpu);
    ok = ok && recon_ok(RS.bound);
  }

  /* held connections: memory per connection beyond the idle footprint */
  double per_conn = 0;
  if (G.held_conns > 0 && G.notjd > 0) {
    uint64_t a = 0, b = 0;
    for (int i = 0; i < G.notjd; i++) {
      a += G.otjd_idle[i].anon_kib;
      b += G.otjd0[i].anon_kib;
    }
    per_conn = b > a ? (double)(b - a) * 1024.0 / G.held_conns : 0;
  }

  json_t *rep = json_object();
  json_object_set_new(rep, "scenario", json_string(G.scenario));
  if (G.label) json_object_set_new(rep, "label", json_string(G.label));
  machine_json(rep);
  json_t *srv = json_array();
  for (int i = 0; i < G.nservers; i++)
    json_array_append_new(
        srv, json_pack("{s:s, s:i}", "host", G.servers[i].host, "port", G.servers[i].port));
  json_object_set_new(rep, "servers", srv);
  json_object_set_new(rep, "params",
                      json_pack("{s:i, s:i, s:f, s:f, s:i, s:f, s:i, s:f, s:f, s:f, s:i, s:i}",
                                "fanout_rooms", G.fanout_rooms, "learners_per_room", G.learners,
                                "answer_rate", G.answer_rate, "duration_s", G.duration,
                                "connections", G.held_conns, "hold_s", G.hold, "storm_joins",
                                G.storm_n, "storm_window_s", G.storm_window, "storm_at_s",
                                G.storm_at, "approve_rate", G.approve_rate, "approve_batch",
                                G.approve_batch, "sources", G.nsources));
  json_object_set_new(
      rep, "achieved",
      json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:f, s:I, s:f, s:f, s:I}", "answers_sent",
                (json_int_t)G.answers_sent, "acks", (json_int_t)G.acks, "deliveries",
                (json_int_t)G.deliveries, "deliveries_run", (json_int_t)G.deliveries_run,
                "deliveries_per_s", deliv_rate, "offered_deliveries_per_s",
                G.answer_rate * (G.learners + 1), "joins", (json_int_t)G.joins_ok, "joins_per_s",
                G.storm_window > 0 ? (double)G.joins_ok / G.storm_window : 0.0, "approvals",
                (json_int_t)G.approvals_ok, "approvals_per_s",
                runs > 0 ? (double)G.approvals_ok / runs : 0.0, "window_s", win, "connections_held",
                (json_int_t)G.setup_ready));
  json_object_set_new(rep, "latency",
                      json_pack("{s:o, s:o, s:o, s:o}", "answer_to_responsible",
                                hist_json(&G.h_answer), "ack", hist_json(&G.h_ack), "join",
                                hist_json(&G.h_join), "approve", hist_json(&G.h_approve)));
  json_object_set_new(
      rep, "schedule",
      json_pack("{s:b, s:f, s:f, s:I, s:I, s:I, s:I, s:b}", "behind", behind, "send_lag_p99_ms",
                lag99, "send_lag_max_ms", ms_of(G.h_lag.max), "answers_due",
                (json_int_t)G.answers_due, "answers_sent", (json_int_t)G.answers_sent,
                "approves_due", (json_int_t)G.approves_due, "approves_sent",
                (json_int_t)G.approves_sent, "approval_pool_exhausted", G.pool_exhausted));
  json_object_set_new(rep, "correctness",
                      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "lost",
                                (json_int_t)lost, "lost_tail", (json_int_t)tail, "duplicated",
                                (json_int_t)dup, "errors", (json_int_t)G.errors, "rate_limited",
                                (json_int_t)G.rate_limited, "conn_failed",
                                (json_int_t)G.conn_failed, "conn_closed", (json_int_t)G.conn_closed,
                                "not_approved", (json_int_t)G.approvals_other,
                                "events_before_snapshot", (json_int_t)G.early_ev, "ok", ok));
  json_object_set_new(json_object_get(rep, "correctness"), "approves_unanswered",
                      json_integer((json_int_t)(G.approves_sent - G.approve_replies)));
  json_object_set_new(rep, "otjd", otjd);
  json_object_set_new(rep, "redis", redis);
  json_object_set_new(rep, "cpu",
                      json_pack("{s:f, s:f, s:f, s:f, s:f}", "otj_load_s",
                                G.self_cpu1 - G.self_cpu0, "otjd_s", otjd_cpu, "redis_s", redis_cpu,
                                "otjd_us_per_delivery", us_per, "redis_us_per_delivery", redis_us));
  json_object_set_new(json_object_get(rep, "cpu"), "otj_load_us_per_delivery", json_real(self_us));
  json_object_set_new(json_object_get(rep, "cpu"), "otjd_us_per_approval",
                      json_real(G.approvals_ok ? otjd_cpu * 1e6 / (double)G.approvals_ok : 0.0));
  json_t *per_srv = json_array();
  for (int s = 0; s < G.nservers; s++) {
    int n = 0;
    for (int i = 0; i < G.nconns; i++) n += G.conns[i].server == s && G.conns[i].st == C_READY;
    json_array_append_new(per_srv, json_integer(n));
  }
  json_object_set_new(json_object_get(rep, "achieved"), "held_per_server", per_srv);
  json_object_set_new(json_object_get(rep, "achieved"), "pings", json_integer((json_int_t)G.pings));
  json_object_set_new(json_object_get(rep, "achieved"), "pongs", json_integer((json_int_t)G.pongs));
  if (G.held_conns > 0)
    json_object_set_new(rep, "memory",
                        json_pack("{s:f}", "otjd_anon_bytes_per_connection", per_conn));
  if (floor) json_object_set_new(rep, "floor", floor);
  if (RS.on) json_object_set_new(rep, "reconnect", rs_json(&rcpu));
  if (G.aborted) json_object_set_new(rep, "aborted", json_string(G.abort_why));

  /* the human summary */
  FILE *o = stdout;
  fprintf(o, "\n== otj-load %s%s%s: %s ==\n", G.scenario, G.label ? " / " : "",
          G.label ? G.label : "", ok ? "OK" : "FAILED");
  if (G.aborted) fprintf(o, "  aborted: %s\n", G.abort_why);
  if (G.held_conns > 0)
    fprintf(o,
            "  connections held %d; otjd anon memory %.0f bytes per connection; %" PRIu64
            " pings, %" PRIu64 " pongs\n",
            G.setup_ready, per_conn, G.pings, G.pongs);
  if (G.fanout_rooms > 0)
    fprintf(o,
            "  fan-out: %d rooms x (1 + %d), %.0f answers/s offered, %" PRIu64 " answers, %" PRIu64
            " deliveries (%.0f/s in run)\n",
            G.fanout_rooms, G.learners, G.answer_rate, G.answers_sent, G.deliveries, deliv_rate);
  if (G.storm_n > 0)
    fprintf(o, "  join storm: %" PRIu64 " of %d joins in a %.1f s window (%.0f joins/s offered)\n",
            G.joins_ok, G.storm_n, G.storm_window, G.storm_n / G.storm_window);
  if (G.approve_rate > 0)
    fprintf(o,
            "  approvals: %" PRIu64 " approved (%.0f/s over the run), %" PRIu64 " other; %" PRIu64
            " of %" PRIu64 " approve messages unanswered at the end; "
            "otjd %.1f us CPU per approval\n",
            G.approvals_ok, runs > 0 ? G.approvals_ok / runs : 0, G.approvals_other,
            G.approves_sent - G.approve_replies, G.approves_sent,
            G.approvals_ok ? otjd_cpu * 1e6 / (double)G.approvals_ok : 0.0);
  if (RS.on) recon_summary(o, RS.bound, &rcpu);
  hist_line(o, "answer -> responsible", &G.h_answer);
  hist_line(o, "answer -> ack", &G.h_ack);
  hist_line(o, "join (connect -> snapshot)", &G.h_join);
  hist_line(o, "approve -> approved", &G.h_approve);
  hist_line(o, "generator send lag", &G.h_lag);
  fprintf(o, "  schedule: %s (send lag p99 %.2f ms)\n",
          behind ? "FELL BEHIND - latency figures do not count" : "kept", lag99);
  fprintf(o,
          "  correctness: lost %" PRIu64 " (tail %" PRIu64 "), duplicated %" PRIu64
          ", errors %" PRIu64 ", failed connects %" PRIu64 ", closed %" PRIu64 "\n",
          lost, tail, dup, G.errors, G.conn_failed, G.conn_closed);
  fprintf(o,
          "  CPU over %.1f s: otjd %.2f s (%.2f us per delivered message), redis %.2f s (%.2f us), "
          "otj-load %.2f s (%.2f us)\n",
          win, otjd_cpu, us_per, redis_cpu, redis_us, self_cpu, self_us);
  if (floor) {
    json_t *pw = json_object_get(floor, "per_write_us"),
           *pt = json_object_get(floor, "per_turn_us");
    fprintf(o,
            "  kernel floor (same frames, %zu B, fan-out %d): %.2f us/msg one write per frame, "
            "%.2f us/msg one write per socket per 1 ms turn\n",
            frame, G.learners + 1, json_number_value(pw), json_number_value(pt));
  }
  if (G.json_path) {
    if (json_dump_file(rep, G.json_path, JSON_INDENT(2)) != 0)
      fprintf(stderr, "otj-load: cannot write %s\n", G.json_path);
  }
  json_decref(rep);
  fflush(o);
  return ok ? 0 : 1;
}

static void sample_procs(procstat *otjd, procstat *redis) {
  for (int i = 0; i < G.notjd; i++)
    if (procstat_read(G.otjd_pids[i], &otjd[i]) != 0 && RS.killed &&
        G.otjd_pids[i] == RS.victim_pid)
      otjd[i] = RS.victim_last; /* killed: its counters as they were then */
  for (int i = 0; i < G.nredis; i++) procstat_read(G.redis_pids[i], &redis[i]);
}

static void finish_run(void) {
  if (G.phase == PH_DONE) return;
  G.self_cpu1 = self_cpu_s();
  if (!G.t_cpu1) {
    sample_procs(G.otjd1, G.redis1);
    G.t_cpu1 = now_ns();
    if (!G.t_cpu0) {
      G.t_cpu0 = G.t_cpu1;
      memcpy(G.otjd0, G.otjd1, sizeof G.otjd0);
      memcpy(G.redis0, G.redis1, sizeof G.redis0);
    }
  }
  G.phase = PH_DONE;
  if (isatty(2) && !G.quiet) fputc('\n', stderr);
  int rc = report();
  fflush(stdout);
  /* the connections go with the process; the server sees them close */
  exit(rc);
}

/* ---- the world --------------------------------------------------------------------- */

static int build_world(void) {
  int L = G.learners;
  G.storm_rooms = G.storm_n > 0 ? (G.storm_n + L - 1) / L : 0;
  G.approve_pool = G.approve_rate > 0 ? (int)ceil(G.approve_rate * G.duration) : 0;
  G.approve_rooms =
      G.approve_pool > 0 ? (G.approve_pool + ROOM_MAX_LEARNERS - 1) / ROOM_MAX_LEARNERS : 0;
  G.nrooms = G.fanout_rooms + G.storm_rooms + G.approve_rooms;
  G.nhosts = G.nrooms;
  int idle_users = G.idle_conns > 0 ? (G.idle_conns < G.pool ? G.idle_conns : G.pool) : 0;
  int learners = G.fanout_rooms * L + G.storm_n + G.approve_pool + idle_users;
  G.nusers = G.nhosts + learners;
  G.users = calloc((size_t)G.nusers, sizeof *G.users);
  G.rooms = calloc((size_t)(G.nrooms ? G.nrooms : 1), sizeof *G.rooms);
  G.nconns = G.nrooms + G.fanout_rooms * L + G.storm_n + G.idle_conns;
  G.conns = calloc((size_t)(G.nconns ? G.nconns : 1), sizeof *G.conns);
  G.fanout_order = calloc((size_t)(G.fanout_rooms * L + 1), sizeof *G.fanout_order);
  G.storm_order = calloc((size_t)(G.storm_n + 1), sizeof *G.storm_order);
  if (!G.users || !G.rooms || !G.conns || !G.fanout_order || !G.storm_order) return -1;
  for (int i = 0; i < G.nhosts; i++)
    snprintf(G.users[i].login, sizeof G.users[i].login, "h%s-%d", G.run_id, i);
  for (int i = G.nhosts; i < G.nusers; i++)
    snprintf(G.users[i].login, sizeof G.users[i].login, "l%s-%d", G.run_id, i - G.nhosts);

  int u = G.nhosts, ci = 0;
  /* rooms: fanout, storm, approve; each host connection first */
  for (int r = 0; r < G.nrooms; r++) {
    room *rm = &G.rooms[r];
    rm->idx = r;
    rm->kind = r < G.fanout_rooms                   ? KIND_FANOUT
               : r < G.fanout_rooms + G.storm_rooms ? KIND_STORM
                                                    : KIND_APPROVE;
    conn *h = &G.conns[ci];
    h->idx = ci++;
    h->user = r;
    h->role = ROLE_HOST;
    h->room = rm;
    h->server = r % G.nservers;
    rm->host = h;
  }
  for (int r = 0; r < G.fanout_rooms; r++) {
    room *rm = &G.rooms[r];
    rm->first_learner = u;
    rm->nlearners = L;
    u += L;
    rm->members = calloc((size_t)L, sizeof *rm->members);
    if (!rm->members) return -1;
  }
  for (int j = 0; j < L; j++)
    for (int r = 0; r < G.fanout_rooms; r++) {
      room *rm = &G.rooms[r];
      conn *c = &G.conns[ci];
      c->idx = ci++;
      c->user = rm->first_learner + j;
      c->role = ROLE_FANOUT;
      c->room = rm;
      c->server = (r + 1 + j) % G.nservers;
      rm->members[rm->nmembers++] = c;
      G.fanout_order[G.nfanout++] = c;
    }
  for (int r = G.fanout_rooms; r < G.fanout_rooms + G.storm_rooms; r++) {
    room *rm = &G.rooms[r];
    rm->members = calloc((size_t)L, sizeof *rm->members);
    if (!rm->members) return -1;
  }
  for (int k = 0; k < G.storm_n; k++) {
    room *rm = &G.rooms[G.fanout_rooms + k % G.storm_rooms];
    conn *c = &G.conns[ci];
    c->idx = ci++;
    c->user = u++;
    c->role = ROLE_STORM;
    c->room = rm;
    c->server = (rm->idx + 1 + k) % G.nservers;
    rm->members[rm->nmembers++] = c;
    G.storm_order[k] = c;
  }
  for (int r = G.fanout_rooms + G.storm_rooms; r < G.nrooms; r++) {
    room *rm = &G.rooms[r];
    rm->first_learner = u;
    int left = G.approve_pool - (r - G.fanout_rooms - G.storm_rooms) * ROOM_MAX_LEARNERS;
    rm->nlearners = left < ROOM_MAX_LEARNERS ? left : ROOM_MAX_LEARNERS;
    u += rm->nlearners;
  }
  int idle_first = u;
  for (int k = 0; k < G.idle_conns; k++) {
    conn *c = &G.conns[ci];
    c->idx = ci++;
    c->user = idle_first + k % (idle_users ? idle_users : 1);
    c->role = ROLE_IDLE;
    c->server = k % G.nservers;
  }
  G.setup_expected = G.nconns - G.storm_n;
  return 0;
}

/* ---- the reconnect storm -------------------------------------------------------------
 *
 * Two kinds of rooms. Affected rooms: their learners are mostly on the
 * victim instance (a share --stay of each room on a surviving one, which
 * keeps answering at --affected-rate), and every other room's responsible
 * too. Unaffected rooms: host and learners wholly on a surviving instance,
 * with the steady fan-out of --rate. At --kill-at the victim gets SIGKILL;
 * each connection it held waits as the client would (reconnect.c), then
 * connects to a surviving instance, says hello and sends `sync` {room,
 * since: its last seq}: the events it missed come as `ev`, then `ok`
 * {seq}. It is back when that ok arrives and its seq is gapless. */

#define RS_SYNC_RID 7

/* The k-th surviving instance, round robin. */
static int rs_survivor(int k) {
  int i = k % (G.nservers - 1);
  return i >= RS.victim ? i + 1 : i;
}

static void rs_learner(conn *c, room *rm, int user, int srv) {
  c->idx = (int)(c - G.conns);
  c->user = user;
  c->role = ROLE_FANOUT;
  c->room = rm;
  c->server = srv;
  rm->members[rm->nmembers++] = c;
}

/* The world of reconnect-storm: G.fanout_rooms unaffected rooms of 1 + L
 * (all on survivors), then RS.rooms affected rooms sharing RS.storm
 * learners on the victim, plus their stayers. Hosts first, as build_world. */
static int rs_build_world(void) {
  int L = G.learners, calm = G.fanout_rooms, ar = RS.rooms;
  int per = RS.storm / ar, extra = RS.storm % ar, affected = 0, stayers = 0;
  for (int r = 0; r < ar; r++) {
    int v = per + (r < extra), st = (v * RS.stay_pct + 50) / 100;
    affected += v + st;
    stayers += st;
  }
  G.nrooms = calm + ar;
  G.nhosts = G.nrooms;
  G.nusers = G.nhosts + calm * L + affected;
  G.nconns = G.nusers; /* one connection per person */
  G.users = calloc((size_t)G.nusers, sizeof *G.users);
  G.rooms = calloc((size_t)G.nrooms, sizeof *G.rooms);
  G.conns = calloc((size_t)G.nconns, sizeof *G.conns);
  G.fanout_order = calloc((size_t)(calm * L + 1), sizeof *G.fanout_order);
  G.storm_order = calloc(1, sizeof *G.storm_order);
  RS.stayers = calloc((size_t)(stayers + 1), sizeof *RS.stayers);
  if (!G.users || !G.rooms || !G.conns || !G.fanout_order || !G.storm_order || !RS.stayers)
    return -1;
  for (int i = 0; i < G.nhosts; i++)
    snprintf(G.users[i].login, sizeof G.users[i].login, "h%s-%d", G.run_id, i);
  for (int i = G.nhosts; i < G.nusers; i++)
    snprintf(G.users[i].login, sizeof G.users[i].login, "l%s-%d", G.run_id, i - G.nhosts);
  int u = G.nhosts, ci = 0;
  for (int r = 0; r < G.nrooms; r++) {
    room *rm = &G.rooms[r];
    rm->idx = r;
    rm->kind = KIND_FANOUT;
    conn *h = &G.conns[ci++];
    h->idx = r;
    h->user = r;
    h->role = ROLE_HOST;
    h->room = rm;
    /* every other affected room's responsible is on the victim */
    h->server = r >= calm && (r - calm) % 2 == 0 ? RS.victim : rs_survivor(r);
    rm->host = h;
    rm->first_learner = u;
    rm->nlearners = r < calm ? L : per + (r - calm < extra);
    if (r >= calm) rm->nlearners += (rm->nlearners * RS.stay_pct + 50) / 100;
    u += rm->nlearners;
    rm->members = calloc((size_t)rm->nlearners, sizeof *rm->members);
    if (!rm->members) return -1;
  }
  for (int j = 0; j < L; j++) /* unaffected learners, interleaved as build_world */
    for (int r = 0; r < calm; r++) {
      room *rm = &G.rooms[r];
      conn *c = &G.conns[ci++];
      rs_learner(c, rm, rm->first_learner + j, rs_survivor(r + 1 + j));
      G.fanout_order[G.nfanout++] = c;
    }
  for (int r = calm; r < G.nrooms; r++) {
    room *rm = &G.rooms[r];
    int v = per + (r - calm < extra);
    for (int k = 0; k < rm->nlearners; k++) {
      conn *c = &G.conns[ci++];
      rs_learner(c, rm, rm->first_learner + k, k < v ? RS.victim : rs_survivor(k));
      if (k >= v) RS.stayers[RS.nstayers++] = c;
    }
  }
  G.setup_expected = G.nconns;
  return 0;
}

/* A connection of the storm went away (closed, or an attempt failed: why):
 * the storm schedules its next attempt. Returns 0 when it is not the
 * storm's. */
static int rs_drop(conn *c, const char *why) {
  if (!recon_lost(c->idx, now_ns())) return 0;
  if (why && G.errs_printed++ < ERR_PRINT_MAX)
    fprintf(stderr, "\notj-load: reconnect of connection %d failed: %s\n", c->idx, why);
  c->wsi = NULL;
  c->st = C_DEAD;
  c->want_write = 0;
  c->rx_len = 0;
  free_queue(c);
  return 1;
}

static void rs_start(int idx) {
  conn *c = &G.conns[idx];
  c->server = rs_survivor(idx);
  recon_started(idx, now_ns());
  start_connect(c);
}

/* recon's call: connection idx tries again, on a surviving instance, at
 * once or when one of the --max-connecting slots is free: lws's cost per
 * connect grows with the connects in flight (its timeouts are a sorted
 * list), and the generator must not be what limits the storm. */
static void rs_retry(int idx) {
  if (G.connecting < G.max_connecting && RS.qhead == RS.qtail) {
    rs_start(idx);
    return;
  }
  RS.queue[RS.qtail++ % RS.qcap] = idx; /* each idx is queued at most once */
  RS.queued++;
}

static void rs_unqueue(void) {
  while (RS.qhead != RS.qtail && G.connecting < G.max_connecting)
    rs_start(RS.queue[RS.qhead++ % RS.qcap]);
}

static void rs_send_sync(conn *c) {
  msgpack_packer *pk = pk_begin();
  msgpack_pack_map(pk, 4);
  pk_str(pk, "t");
  pk_str(pk, "sync");
  pk_str(pk, "room");
  pk_str(pk, c->room->id);
  pk_str(pk, "since");
  msgpack_pack_uint64(pk, c->last);
  pk_str(pk, "rid");
  msgpack_pack_uint8(pk, RS_SYNC_RID);
  c->st = C_JOINING;
  send_packed(c, 0);
}

/* The `ok` that ends a sync: back, and gapless when it has every event up
 * to the room's seq (the events came before it, in order). */
static void rs_on_ok(conn *c, const msgpack_object *m, uint64_t t) {
  if (!recon_rejoining(c->idx) || c->st != C_JOINING || mp_u64(mp_get(m, "rid")) != RS_SYNC_RID)
    return;
  uint64_t seq = mp_u64(mp_get(m, "seq"));
  if (seq > c->room->max_seq) c->room->max_seq = seq;
  if (c->last != seq) recon_flaw(c->idx); /* short: the tail check counts it lost */
  c->st = C_READY;
  recon_back(c->idx, t, 0);
}

/* A sync answered with a snapshot: the room's log no longer reached back. */
static int rs_on_snapshot(conn *c, const msgpack_object *m, uint64_t t) {
  if (!recon_rejoining(c->idx)) return 0;
  uint64_t seq = mp_u64(mp_get(m, "seq"));
  c->have_seq = 1;
  c->last = seq;
  if (seq > c->room->max_seq) c->room->max_seq = seq;
  c->st = C_READY;
  recon_back(c->idx, t, 1);
  return 1;
}

/* The server refused the hello or the sync: counted, the connection is
 * dropped and the client tries again after its backoff. */
static void rs_on_err(conn *c, const msgpack_object *m) {
  recon_refused(c->idx);
  if (G.errs_printed++ < ERR_PRINT_MAX) {
    char cs[32], msg[200];
    mp_copy(mp_get(m, "code"), cs, sizeof cs);
    mp_copy(mp_get(m, "msg"), msg, sizeof msg);
    fprintf(stderr, "\notj-load: reconnecting conn %d got err %s: %s\n", c->idx, cs, msg);
  }
  if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static void rs_send_affected(conn *c, uint64_t due) {
  char val[32], key[48];
  snprintf(val, sizeof val, "S%" PRIu64, due); /* not 'T': not a latency sample */
  snprintf(key, sizeof key, "s%" PRIu64 "-%d", due, c->idx);
  pack_answer(c, val, key);
  send_packed(c, 0);
  RS.affected_answers++;
}

static void rs_sample(procstat *otjd, procstat *redis) {
  for (int i = 0; i < G.notjd; i++)
    if (G.otjd_pids[i] != RS.victim_pid) procstat_read(G.otjd_pids[i], &otjd[i]);
  for (int i = 0; i < G.nredis; i++) procstat_read(G.redis_pids[i], &redis[i]);
}

/* The victim's pid: the process listening on its port, which must be the
 * --otjd-pid given in the same place (run.mjs passes them in the order of
 * --server) and be an otjd. Nothing else is ever killed. */
static int rs_find_victim(void) {
  pid_t lp = G.servers[RS.victim].pid;
  pid_t gp = G.notjd == G.nservers ? G.otjd_pids[RS.victim] : -1;
  RS.victim_pid = lp > 0 ? lp : gp;
  if (lp > 0 && gp > 0 && lp != gp) {
    fprintf(stderr, "otj-load: --otjd-pid %d is not the process listening on port %d (%d)\n",
            (int)gp, G.servers[RS.victim].port, (int)lp);
    return -1;
  }
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)RS.victim_pid);
  FILE *f = RS.victim_pid > 1 ? fopen(path, "r") : NULL;
  if (f) {
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
  }
  if (RS.victim_pid <= 1 || RS.victim_pid == getpid() || strncmp(comm, "otjd", 4) != 0) {
    fprintf(stderr, "otj-load: reconnect-storm: no local otjd found behind %s:%d to kill\n",
            G.servers[RS.victim].host, G.servers[RS.victim].port);
    return -1;
  }
  return 0;
}

static void rs_kill(void) {
  RS.killed = 1;
  for (int i = 0; i < G.nconns; i++)
    if (G.conns[i].server == RS.victim) recon_track(i, G.conns[i].role == ROLE_HOST);
  rs_sample(RS.otjd0, RS.redis0);
  procstat_read(RS.victim_pid, &RS.victim_last);
  RS.self0 = self_cpu_s();
  RS.t_cpu0 = now_ns();
  recon_killed(RS.t_cpu0);
  logf_("killing otjd pid %d (%s:%d) with SIGKILL", (int)RS.victim_pid, G.servers[RS.victim].host,
        G.servers[RS.victim].port);
  if (kill(RS.victim_pid, SIGKILL) != 0)
    fail_run("cannot kill pid %d: %s", (int)RS.victim_pid, strerror(errno));
}

static void rs_drive(uint64_t t) {
  if (!RS.killed && t >= G.t_run0 + (uint64_t)(RS.kill_at * 1e9)) rs_kill();
  rs_unqueue();
  if (RS.nstayers > 0 && RS.affected_rate > 0) {
    uint64_t end = t < G.t_run_end ? t - G.t_run0 : G.t_run_end - G.t_run0;
    uint64_t due = (uint64_t)((double)end * RS.affected_rate / 1e9) + 1;
    uint64_t total = (uint64_t)ceil(G.duration * RS.affected_rate);
    if (due > total) due = total;
    while (RS.affected_sent < due) {
      uint64_t n = RS.affected_sent++;
      conn *c = RS.stayers[n % (uint64_t)RS.nstayers];
      if (c->st == C_READY)
        rs_send_affected(c, G.t_run0 + (uint64_t)((double)n * 1e9 / RS.affected_rate));
    }
  }
  if (RS.killed && !RS.cpu_done &&
      (recon_pending() == 0 || t >= RS.t_cpu0 + (uint64_t)(RS.bound * 1e9))) {
    RS.cpu_done = 1;
    rs_sample(RS.otjd1, RS.redis1);
    RS.self1 = self_cpu_s();
    RS.t_cpu1 = now_ns();
  }
}

/* The run may end once every connection is back, or the bound is over
 * (and its --duration is over too). */
static int rs_may_end(void) { return RS.cpu_done; }

static void rs_cpu(recon_cpu *out) {
  memset(out, 0, sizeof *out);
  if (!RS.cpu_done) return;
  out->window_s = (double)(RS.t_cpu1 - RS.t_cpu0) / 1e9;
  for (int i = 0; i < G.notjd; i++)
    if (G.otjd_pids[i] != RS.victim_pid) out->otjd_s += RS.otjd1[i].cpu_s - RS.otjd0[i].cpu_s;
  for (int i = 0; i < G.nredis; i++) out->redis_s += RS.redis1[i].cpu_s - RS.redis0[i].cpu_s;
  out->otj_load_s = RS.self1 - RS.self0;
}

static json_t *rs_json(const recon_cpu *cpu) {
  json_t *j = recon_json(RS.bound, cpu);
  json_object_set_new(
      j, "params",
      json_pack("{s:i, s:i, s:i, s:i, s:f, s:f, s:s, s:i, s:i, s:I, s:I}", "affected_rooms",
                RS.rooms, "victim_learners", RS.storm, "stay_pct", RS.stay_pct, "unaffected_rooms",
                G.fanout_rooms, "kill_at_s", RS.kill_at, "affected_rate", RS.affected_rate,
                "victim", G.servers[RS.victim].host, "victim_port", G.servers[RS.victim].port,
                "stayers", RS.nstayers, "affected_answers", (json_int_t)RS.affected_answers,
                "affected_acks", (json_int_t)RS.affected_acks));
  json_object_set_new(j, "generator_queued", json_integer((json_int_t)RS.queued));
  json_object_set_new(j, "max_connecting", json_integer(G.max_connecting));
  return j;
}

/* ---- provisioning ------------------------------------------------------------------- */

static void prov_next(void);

static const char *LOAD_HASH = "$argon2id$v=19$m=65536,t=2,p=1$bG9hZC1vbmx5LXNhbHQ$"
                               "bG9hZCB1c2VycyBuZXZlciBsb2cgaW4gYnkgcGFzc3dvcmQ";

/* An import document: the org on the first, then users in slices. */
static char *import_doc(int part, size_t *len) {
  json_t *doc = json_pack("{s:s}", "format", "otj-org/1");
  if (part == 0) {
    json_object_set_new(doc, "departments", json_pack("[{s:s}]", "name", G.dept));
    json_object_set_new(doc, "modules",
                        json_pack("[{s:s, s:s, s:b, s:[{s:s, s:s}]}]", "title", G.module_title,
                                  "type", "quiz", "otj", 1, "tasks", "kind", "question", "text",
                                  "Type anything (otj-load sends its clock)"));
    json_object_set_new(
        doc, "paths",
        json_pack("[{s:s, s:[s]}]", "title", G.path_title, "modules", G.module_title));
    json_object_set_new(doc, "sharings",
                        json_pack("[{s:s, s:[s]}]", "path", G.path_title, "departments", G.dept));
  }
  json_t *us = json_array();
  int from = part * IMPORT_USERS_PER_DOC, to = from + IMPORT_USERS_PER_DOC;
  if (to > G.nusers) to = G.nusers;
  for (int i = from; i < to; i++) {
    int host = i < G.nhosts;
    json_t *row = json_pack("{s:s, s:s, s:s, s:s}", "login", G.users[i].login, "name",
                            G.users[i].login, "department", G.dept, "password_hash", LOAD_HASH);
    if (host) {
      json_object_set_new(row, "management", json_true());
      json_object_set_new(row, "facilitate_otj", json_true());
    }
    json_array_append_new(us, row);
  }
  json_object_set_new(doc, "users", us);
  char *s = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  *len = s ? strlen(s) : 0;
  return s;
}

static void prov_http(const char *method, const char *path, const char *bearer, char *body,
                      size_t len, lhttp_done_fn *done) {
  server *s = &G.servers[0];
  if (lhttp_request(G.ctx, s->host, s->port, method, path, bearer, body, len, done, NULL) != 0)
    fail_run("cannot reach %s:%d for provisioning", s->host, s->port);
}

static void on_tokens(void *ud, int status, const char *body, size_t len) {
  (void)ud;
  (void)len;
  json_error_t e;
  json_t *j = json_loads(body, 0, &e);
  json_t *tok = json_object_get(j, "tokens"), *ids = json_object_get(j, "ids");
  if (status != 200 || !tok) {
    json_decref(j);
    fail_run("POST /api/admin/tokens answered %d: %.300s", status, body);
    return;
  }
  int from = G.prov_tok * TOKENS_PER_CALL;
  int to = from + TOKENS_PER_CALL < G.nusers ? from + TOKENS_PER_CALL : G.nusers;
  for (int i = from; i < to; i++) {
    const char *t = json_string_value(json_object_get(tok, G.users[i].login));
    if (!t) {
      json_decref(j);
      fail_run("no token for %s", G.users[i].login);
      return;
    }
    snprintf(G.users[i].token, sizeof G.users[i].token, "%s", t);
    G.users[i].id = json_integer_value(json_object_get(ids, G.users[i].login));
  }
  json_decref(j);
  G.prov_tok++;
  prov_next();
}

static void on_modules(void *ud, int status, const char *body, size_t len) {
  (void)ud;
  (void)len;
  json_t *j = json_loads(body, 0, NULL);
  json_t *items = json_object_get(j, "items");
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *t = json_string_value(json_object_get(it, "title"));
    if (t && !strcmp(t, G.module_title))
      G.module_id = json_integer_value(json_object_get(it, "id"));
  }
  json_decref(j);
  if (status != 200 || !G.module_id) {
    fail_run("module \"%s\" not found after the import (%d)", G.module_title, status);
    return;
  }
  G.prov_step++;
  prov_next();
}

static void on_import(void *ud, int status, const char *body, size_t len) {
  (void)ud;
  (void)len;
  if (status != 200) {
    fail_run("POST /api/admin/import answered %d: %.300s", status, body);
    return;
  }
  G.prov_doc++;
  prov_next();
}

static void on_login(void *ud, int status, const char *body, size_t len) {
  (void)ud;
  (void)len;
  json_t *j = json_loads(body, 0, NULL);
  const char *t = json_string_value(json_object_get(j, "token"));
  if (status != 200 || !t) {
    json_decref(j);
    fail_run("admin login as %s answered %d: %.200s", G.admin_login, status, body);
    return;
  }
  snprintf(G.admin_token, sizeof G.admin_token, "%s", t);
  json_decref(j);
  G.prov_step++;
  prov_next();
}

static void begin_setup(void);

static void prov_next(void) {
  if (G.aborted) return;
  switch (G.prov_step) {
  case 0: {
    json_t *b = json_pack("{s:s, s:s}", "login", G.admin_login, "password", G.admin_password);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    prov_http("POST", "/api/login", NULL, s, strlen(s), on_login);
    free(s);
    return;
  }
  case 1:
    if (G.prov_doc < G.prov_docs) {
      size_t len;
      char *s = import_doc(G.prov_doc, &len);
      prov_http("POST", "/api/admin/import", G.admin_token, s, len, on_import);
      free(s);
      return;
    }
    G.prov_step++;
    /* fall through */
  case 2: prov_http("GET", "/api/admin/modules", G.admin_token, NULL, 0, on_modules); return;
  case 3:
    if (G.prov_tok * TOKENS_PER_CALL < G.nusers) {
      json_t *logins = json_array();
      int from = G.prov_tok * TOKENS_PER_CALL;
      for (int i = from; i < G.nusers && i < from + TOKENS_PER_CALL; i++)
        json_array_append_new(logins, json_string(G.users[i].login));
      json_t *b = json_pack("{s:o}", "logins", logins);
      char *s = json_dumps(b, JSON_COMPACT);
      json_decref(b);
      prov_http("POST", "/api/admin/tokens", G.admin_token, s, strlen(s), on_tokens);
      free(s);
      return;
    }
    logf_("provisioned %d users, %d rooms to open, in %.1f s", G.nusers, G.nrooms,
          (double)(now_ns() - G.t_start) / 1e9);
    begin_setup();
    return;
  }
}

/* ---- phases ---------------------------------------------------------------------------- */

static void set_phase(phase_t p) {
  G.phase = p;
  G.t_phase = now_ns();
}

static void begin_setup(void) {
  set_phase(PH_SETUP);
  /* the idle footprint, before any connection of ours */
  for (int i = 0; i < G.notjd; i++) procstat_read(G.otjd_pids[i], &G.otjd_idle[i]);
  sync_say("provisioned %d\n", G.nusers);
}

static void begin_run(void) {
  sample_procs(G.otjd0, G.redis0);
  G.self_cpu0 = self_cpu_s();
  G.t_cpu0 = now_ns();
  set_phase(PH_RUN);
  G.t_run0 = G.t_phase;
  G.t_run_end = G.t_run0 + (uint64_t)(G.duration * 1e9);
  G.last_deliv = G.deliveries_run;
  G.last_deliv_t = G.t_run0;
}

static int all_drained(void) {
  if (G.acks + 0 < G.answers_sent && G.errors == 0) return 0;
  if (G.approve_replies < G.approves_sent) return 0;
  if (RS.affected_acks < RS.affected_answers) return 0;
  for (int i = 0; i < G.nconns; i++) {
    conn *c = &G.conns[i];
    if (c->st == C_READY && c->room && c->have_seq && c->last < c->room->max_seq) return 0;
  }
  return 1;
}

static void drive_setup(uint64_t t) {
  /* hosts first: learners of a room join once it is open */
  if (G.sync_fd >= 0 && G.go < 1) return; /* the other generators are provisioning */
  int budget = 256;
  while (G.next_setup < G.nconns && G.connecting < G.max_connecting && budget-- > 0) {
    conn *c = &G.conns[G.next_setup++];
    if (c->role == ROLE_STORM) continue;
    start_connect(c);
  }
  if (G.setup_ready + G.setup_failed >= G.setup_expected && G.next_setup >= G.nconns) {
    if (G.setup_failed > 0) {
      fail_run("%d of %d connections could not be set up", G.setup_failed, G.setup_expected);
      return;
    }
    logf_("set up %d connections in %.1f s", G.setup_ready, (double)(t - G.t_phase) / 1e9);
    sync_say("ready %d\n", G.setup_ready);
    if (G.held_conns > 0 && G.hold > 0) {
      sample_procs(G.otjd0, G.redis0); /* memory with every connection held */
      G.self_cpu0 = self_cpu_s();
      G.t_cpu0 = now_ns();
      set_phase(PH_HOLD);
    } else {
      begin_run();
    }
  }
}

static void drive_run(uint64_t t) {
  uint64_t el = t - G.t_run0;
  uint64_t end = t < G.t_run_end ? el : G.t_run_end - G.t_run0;
  if (G.nfanout > 0 && G.answer_rate > 0) {
    /* answer n is due at n / rate: n = 0 at once */
    uint64_t due = (uint64_t)((double)end * G.answer_rate / 1e9) + 1;
    uint64_t total = (uint64_t)ceil(G.duration * G.answer_rate);
    if (due > total) due = total;
    G.answers_due = due;
    while (G.answers_sent < due) {
      uint64_t n = G.answers_sent;
      conn *c = G.fanout_order[n % (uint64_t)G.nfanout];
      uint64_t at = G.t_run0 + (uint64_t)((double)n * 1e9 / G.answer_rate);
      if (c->st == C_READY) {
        send_answer(c, at);
      } else {
        G.answers_sent++; /* a dead learner: counted, never acked */
        G.errors++;
      }
    }
  }
  if (G.approve_rooms > 0 && !G.pool_exhausted) {
    double per = G.approve_rate / G.approve_batch;
    uint64_t due = (uint64_t)((double)end * per / 1e9) + 1;
    uint64_t total = (uint64_t)ceil(G.duration * per);
    if (due > total) due = total;
    G.approves_due = due;
    while (G.approves_sent < due) {
      uint64_t n = G.approves_sent;
      int base = G.fanout_rooms + G.storm_rooms;
      room *r = &G.rooms[base + (int)(n % (uint64_t)G.approve_rooms)];
      uint64_t at = G.t_run0 + (uint64_t)((double)n * 1e9 / per);
      if (send_approve(r, n, at) != 0) {
        G.pool_exhausted = 1;
        break;
      }
    }
  }
  if (G.storm_n > 0) {
    uint64_t s0 = G.t_run0 + (uint64_t)(G.storm_at * 1e9);
    if (t >= s0) {
      uint64_t due = G.storm_window > 0
                         ? (uint64_t)((double)(t - s0) * G.storm_n / (G.storm_window * 1e9)) + 1
                         : (uint64_t)G.storm_n;
      if (due > (uint64_t)G.storm_n) due = (uint64_t)G.storm_n;
      while (G.storm_started < due) {
        conn *c = G.storm_order[G.storm_started];
        c->due = s0 + (uint64_t)((double)G.storm_started * G.storm_window * 1e9 / G.storm_n);
        hist_record(&G.h_lag, t > c->due ? t - c->due : 0);
        G.storm_started++;
        start_connect(c);
      }
    }
  }
  uint64_t storm_end = G.t_run0 + (uint64_t)((G.storm_at + G.storm_window) * 1e9);
  if (RS.on) rs_drive(t);
  if (t >= G.t_run_end && (G.storm_n == 0 || G.storm_started >= (uint64_t)G.storm_n) &&
      (G.storm_n == 0 || t >= storm_end) && (!RS.on || rs_may_end())) {
    set_phase(PH_DRAIN);
  }
}

/* Keep-alive: one sweep over the connections per --ping seconds, each ready
 * one sends `ping` as it is passed (otjd closes a connection that sent
 * nothing for its idle timeout, 120 s by default; the browser pings every
 * 10 s). */
static void drive_pings(uint64_t t) {
  if (!G.ping_t0) G.ping_t0 = t;
  uint64_t due = (uint64_t)((double)(t - G.ping_t0) / 1e9 * G.nconns / G.ping_s);
  while (G.ping_passed < due) {
    conn *c = &G.conns[G.ping_next];
    G.ping_next = (G.ping_next + 1) % G.nconns;
    G.ping_passed++;
    if (c->st == C_READY) send_ping(c);
  }
}

static void progress(uint64_t t) {
  if (G.quiet || !isatty(2)) return;
  if (t - G.t_last_progress < 1000 * MS) return;
  G.t_last_progress = t;
  if (G.phase == PH_RUN) {
    double dt = (double)(t - G.last_deliv_t) / 1e9;
    G.last_rate = dt > 0 ? (double)(G.deliveries_run - G.last_deliv) / dt : 0;
    G.last_deliv = G.deliveries_run;
    G.last_deliv_t = t;
  }
  fprintf(stderr,
          "\r[%-9s %5.1fs] conns %d/%d  answers %" PRIu64 "  deliv/s %7.0f  p99 %6.2f ms  "
          "joins %" PRIu64 "  approved %" PRIu64 "  lost %" PRIu64 " dup %" PRIu64 " err %" PRIu64
          "   ",
          phase_name[G.phase], (double)(t - G.t_start) / 1e9, G.setup_ready, G.setup_expected,
          G.answers_sent, G.last_rate, ms_of(hist_quantile(&G.h_answer, 0.99)), G.joins_ok,
          G.approvals_ok, G.lost, G.dup, G.errors);
}

static void on_tick(uv_timer_t *h) {
  (void)h;
  uint64_t t = now_ns();
  if (G.sig) {
    fail_run("stopped by signal %d", G.sig);
    return;
  }
  if ((double)(t - G.t_start) / 1e9 > G.timeout) {
    fail_run("the run took longer than its bound of %.0f s (phase %s)", G.timeout,
             phase_name[G.phase]);
    return;
  }
  if (G.ping_s > 0 && (G.phase == PH_SETUP || G.phase == PH_HOLD)) drive_pings(t);
  switch (G.phase) {
  case PH_PROVISION: break;
  case PH_SETUP: drive_setup(t); break;
  case PH_HOLD:
    if (G.sync_fd >= 0 ? G.go >= 2 : t - G.t_phase >= (uint64_t)(G.hold * 1e9)) {
      sample_procs(G.otjd1, G.redis1);
      G.t_cpu1 = now_ns();
      finish_run();
    }
    break;
  case PH_RUN: drive_run(t); break;
  case PH_DRAIN:
    /* every 10th tick: a walk over every connection */
    if (++G.drain_checks % 10 != 0 && t - G.t_phase < DRAIN_MAX_MS * MS) break;
    if (t - G.t_phase >= DRAIN_MAX_MS * MS || all_drained()) {
      sample_procs(G.otjd1, G.redis1);
      G.t_cpu1 = now_ns();
      finish_run();
    }
    break;
  case PH_DONE: break;
  }
  progress(t);
}

/* ---- command line ------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: otj-load SCENARIO [options]\n"
          "Scenarios: connections, fanout, join-storm, approvals, mixed, reconnect-storm.\n\n"
          "  --server URL         ws://HOST:PORT of an otjd (repeat for several; default\n"
          "                       ws://127.0.0.1:8080). Provisioning uses the first.\n"
          "  --admin LOGIN:PASS   an administrator (default admin:otj-demo)\n"
          "  --duration S         seconds of the measured run (default 10)\n"
          "  --rooms R            fan-out rooms (fanout, mixed); connections: R rooms of\n"
          "                       1 + L among the N held, every one joined\n"
          "  --learners L         learners per room (default 29)\n"
          "  --rate A             answers per second over all fan-out rooms\n"
          "  --deliveries D       or: offered deliveries per second (A = D / (L + 1))\n"
          "  --connections N      connections to hold (connections)\n"
          "  --hold S             seconds to hold them (default 5)\n"
          "  --storm N            learners joining in the storm (join-storm, mixed)\n"
          "  --storm-window S     seconds the storm's joins are spread over (default 1)\n"
          "  --storm-at S         when in the run the storm starts\n"
          "  --approvals A        approvals per second (approvals, mixed)\n"
          "  --approve-batch B    decisions per approve message (default 1)\n"
          "reconnect-storm (two or more --server; --rooms, --storm, --learners and --rate\n"
          "mean the following there):\n"
          "  --rooms R            affected rooms (default 300)\n"
          "  --storm N            their learners on the victim, spread over them (10000)\n"
          "  --stay P             and P %% more per room on a surviving instance (10)\n"
          "  --affected-rate A    answers/s of those staying learners (default 100)\n"
          "  --calm-rooms K       unaffected rooms, wholly on a surviving instance, of\n"
          "                       1 + --learners, answering at --rate (default 20, 100/s)\n"
          "  --victim I           which --server (0-based) gets SIGKILL (default: the last)\n"
          "  --kill-at S          when in the run (default 3; --duration default S + 5)\n"
          "  --backoff web|otjd   the retry schedule: the web client's (300, 1000, 2000,\n"
          "                       4000 ms + 0..300 ms jitter) or server/backoff.h (default web)\n"
          "  --bound S            every learner back and gapless within S of the kill, or\n"
          "                       exit 1 (default 30)\n"
          "  --max-connecting N   also bounds the storm's attempts in flight (default 1500\n"
          "                       there; the wait for a slot is reported)\n"
          "  --sources K          source addresses 127.B.C.2.. to bind (a fresh B.C per\n"
          "                       run; 0: none, the kernel's choice; default: none up to\n"
          "                       %d connections, else enough for %d each)\n"
          "  --source-net B.C     the B.C of those addresses (one per generator process)\n"
          "  --ping S             each held connection sends `ping` every S seconds\n"
          "                       (connections: default 30; 0: never)\n"
          "  --sync-fd FD         several generators: write \"provisioned N\" and \"ready N\"\n"
          "                       lines to FD; connect on the first SIGUSR1, end the hold\n"
          "                       on the second (instead of --hold)\n"
          "  --max-connecting N   connects in flight (until hello is answered) while\n"
          "                       setting up (default 400)\n"
          "  --otjd-pid PID       otjd to measure (default: who listens on each port)\n"
          "  --redis-pid PID      redis-server to measure; or --redis-port P\n"
          "  --floor PATH         the floor program (default: otj-floor beside otj-load)\n"
          "  --no-floor           skip the kernel floor measurement\n"
          "  --json FILE          write the report as JSON\n"
          "  --label TEXT         a name for this run in the report\n"
          "  --timeout S          hard bound of the whole run (default: duration + 180)\n"
          "  --quiet              no progress line\n"
          "Exit: 0 when every message arrived once and in order and nothing failed,\n"
          "1 when something was lost, duplicated, refused or failed, 2 on bad usage.\n",
          UNBOUND_MAX, PORTS_PER_SOURCE);
}

static int parse_server(const char *url) {
  if (G.nservers >= MAX_SERVERS) return -1;
  const char *p = url;
  if (!strncmp(p, "ws://", 5))
    p += 5;
  else if (!strncmp(p, "http://", 7))
    p += 7;
  const char *colon = strrchr(p, ':');
  if (!colon) return -1;
  server *s = &G.servers[G.nservers];
  size_t hl = (size_t)(colon - p);
  if (hl == 0 || hl >= sizeof s->host) return -1;
  memcpy(s->host, p, hl);
  s->host[hl] = '\0';
  s->port = atoi(colon + 1);
  if (s->port <= 0 || s->port > 65535) return -1;
  G.nservers++;
  return 0;
}

static void on_signal(int sig) { G.sig = sig; }

static void on_go(int sig) {
  (void)sig;
  G.go++;
}

int main(int argc, char **argv) {
  G.duration = 10;
  G.learners = 29;
  G.hold = 5;
  G.storm_window = 1;
  G.storm_at = -1;
  G.approve_batch = 1;
  G.max_connecting = 400;
  G.pool = 10000;
  G.nsources = -1;
  G.timeout = -1;
  G.sync_fd = -1;
  G.ping_s = -1;
  snprintf(G.admin_login, sizeof G.admin_login, "admin");
  snprintf(G.admin_password, sizeof G.admin_password, "otj-demo");
  double deliveries = -1;
  int rooms = -1, conns = -1, storm = -1;
  double rate = -1, approvals = -1;
  int calm = -1, duration_given = 0, maxc_given = 0;
  RS.stay_pct = 10;
  RS.affected_rate = 100;
  RS.victim = -1;
  RS.kill_at = 3;
  RS.bound = 30;

  enum {
    O_SERVER = 256,
    O_ADMIN,
    O_DURATION,
    O_ROOMS,
    O_LEARNERS,
    O_RATE,
    O_DELIV,
    O_CONNS,
    O_HOLD,
    O_STORM,
    O_STORMW,
    O_STORMAT,
    O_APPR,
    O_BATCH,
    O_SOURCES,
    O_MAXC,
    O_OPID,
    O_RPID,
    O_RPORT,
    O_FLOOR,
    O_NOFLOOR,
    O_JSON,
    O_LABEL,
    O_TIMEOUT,
    O_QUIET,
    O_SRCNET,
    O_SYNCFD,
    O_PING,
    O_STAY,
    O_ARATE,
    O_CALM,
    O_VICTIM,
    O_KILLAT,
    O_BACKOFF,
    O_BOUND,
    O_HELP
  };
  static const struct option opts[] = {{"server", required_argument, NULL, O_SERVER},
                                       {"admin", required_argument, NULL, O_ADMIN},
                                       {"duration", required_argument, NULL, O_DURATION},
                                       {"rooms", required_argument, NULL, O_ROOMS},
                                       {"learners", required_argument, NULL, O_LEARNERS},
                                       {"rate", required_argument, NULL, O_RATE},
                                       {"deliveries", required_argument, NULL, O_DELIV},
                                       {"connections", required_argument, NULL, O_CONNS},
                                       {"hold", required_argument, NULL, O_HOLD},
                                       {"storm", required_argument, NULL, O_STORM},
                                       {"storm-window", required_argument, NULL, O_STORMW},
                                       {"storm-at", required_argument, NULL, O_STORMAT},
                                       {"approvals", required_argument, NULL, O_APPR},
                                       {"approve-batch", required_argument, NULL, O_BATCH},
                                       {"sources", required_argument, NULL, O_SOURCES},
                                       {"max-connecting", required_argument, NULL, O_MAXC},
                                       {"otjd-pid", required_argument, NULL, O_OPID},
                                       {"redis-pid", required_argument, NULL, O_RPID},
                                       {"redis-port", required_argument, NULL, O_RPORT},
                                       {"floor", required_argument, NULL, O_FLOOR},
                                       {"no-floor", no_argument, NULL, O_NOFLOOR},
                                       {"json", required_argument, NULL, O_JSON},
                                       {"label", required_argument, NULL, O_LABEL},
                                       {"timeout", required_argument, NULL, O_TIMEOUT},
                                       {"quiet", no_argument, NULL, O_QUIET},
                                       {"source-net", required_argument, NULL, O_SRCNET},
                                       {"sync-fd", required_argument, NULL, O_SYNCFD},
                                       {"ping", required_argument, NULL, O_PING},
                                       {"stay", required_argument, NULL, O_STAY},
                                       {"affected-rate", required_argument, NULL, O_ARATE},
                                       {"calm-rooms", required_argument, NULL, O_CALM},
                                       {"victim", required_argument, NULL, O_VICTIM},
                                       {"kill-at", required_argument, NULL, O_KILLAT},
                                       {"backoff", required_argument, NULL, O_BACKOFF},
                                       {"bound", required_argument, NULL, O_BOUND},
                                       {"help", no_argument, NULL, O_HELP},
                                       {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case O_SERVER:
      if (parse_server(optarg)) {
        fprintf(stderr, "otj-load: --server wants ws://HOST:PORT, got %s\n", optarg);
        return 2;
      }
      break;
    case O_ADMIN: {
      const char *c = strchr(optarg, ':');
      if (!c) {
        fprintf(stderr, "otj-load: --admin wants LOGIN:PASSWORD\n");
        return 2;
      }
      snprintf(G.admin_login, sizeof G.admin_login, "%.*s", (int)(c - optarg), optarg);
      snprintf(G.admin_password, sizeof G.admin_password, "%s", c + 1);
      break;
    }
    case O_DURATION:
      G.duration = atof(optarg);
      duration_given = 1;
      break;
    case O_ROOMS: rooms = atoi(optarg); break;
    case O_LEARNERS: G.learners = atoi(optarg); break;
    case O_RATE: rate = atof(optarg); break;
    case O_DELIV: deliveries = atof(optarg); break;
    case O_CONNS: conns = atoi(optarg); break;
    case O_HOLD: G.hold = atof(optarg); break;
    case O_STORM: storm = atoi(optarg); break;
    case O_STORMW: G.storm_window = atof(optarg); break;
    case O_STORMAT: G.storm_at = atof(optarg); break;
    case O_APPR: approvals = atof(optarg); break;
    case O_BATCH: G.approve_batch = atoi(optarg); break;
    case O_SOURCES: G.nsources = atoi(optarg); break;
    case O_MAXC:
      G.max_connecting = atoi(optarg);
      maxc_given = 1;
      break;
    case O_OPID:
      if (G.notjd < MAX_PIDS) G.otjd_pids[G.notjd++] = (pid_t)atoi(optarg);
      break;
    case O_RPID:
      if (G.nredis < MAX_PIDS) G.redis_pids[G.nredis++] = (pid_t)atoi(optarg);
      break;
    case O_RPORT: G.redis_port = atoi(optarg); break;
    case O_FLOOR: G.floor_path = optarg; break;
    case O_NOFLOOR: G.no_floor = 1; break;
    case O_JSON: G.json_path = optarg; break;
    case O_LABEL: G.label = optarg; break;
    case O_TIMEOUT: G.timeout = atof(optarg); break;
    case O_QUIET: G.quiet = 1; break;
    case O_SRCNET: G.source_net = optarg; break;
    case O_SYNCFD: G.sync_fd = atoi(optarg); break;
    case O_PING: G.ping_s = atof(optarg); break;
    case O_STAY: RS.stay_pct = atoi(optarg); break;
    case O_ARATE: RS.affected_rate = atof(optarg); break;
    case O_CALM: calm = atoi(optarg); break;
    case O_VICTIM: RS.victim = atoi(optarg); break;
    case O_KILLAT: RS.kill_at = atof(optarg); break;
    case O_BACKOFF:
      if (!strcmp(optarg, "web"))
        RS.backoff = RECON_BACKOFF_WEB;
      else if (!strcmp(optarg, "otjd"))
        RS.backoff = RECON_BACKOFF_SERVER;
      else {
        fprintf(stderr, "otj-load: --backoff is web or otjd\n");
        return 2;
      }
      break;
    case O_BOUND: RS.bound = atof(optarg); break;
    case O_HELP:
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return 2;
  }
  G.scenario = argv[optind];
  int sc_conn = !strcmp(G.scenario, "connections"), sc_fan = !strcmp(G.scenario, "fanout"),
      sc_storm = !strcmp(G.scenario, "join-storm"), sc_appr = !strcmp(G.scenario, "approvals"),
      sc_mixed = !strcmp(G.scenario, "mixed"), sc_rs = !strcmp(G.scenario, "reconnect-storm");
  if (!(sc_conn || sc_fan || sc_storm || sc_appr || sc_mixed || sc_rs)) {
    fprintf(stderr, "otj-load: unknown scenario %s\n", G.scenario);
    return 2;
  }
  if (G.learners < 1 || G.learners > ROOM_MAX_LEARNERS || G.duration <= 0 || G.approve_batch < 1 ||
      G.approve_batch > ROOM_MAX_LEARNERS) {
    fprintf(stderr, "otj-load: learners 1..%d, duration > 0, approve-batch 1..%d\n",
            ROOM_MAX_LEARNERS, ROOM_MAX_LEARNERS);
    if (sc_rs)
      fprintf(stderr, "otj-load: reconnect-storm: the learners on the victim are --storm\n");
    return 2;
  }
  if (!G.nservers) parse_server("ws://127.0.0.1:8080");
  if (sc_rs) {
    RS.on = 1;
    RS.rooms = rooms > 0 ? rooms : 300;
    RS.storm = storm > 0 ? storm : 10000;
    G.fanout_rooms = calm >= 0 ? calm : 20;
    G.answer_rate = rate > 0 ? rate : deliveries > 0 ? deliveries / (G.learners + 1) : 100;
    if (G.fanout_rooms == 0) G.answer_rate = 0;
    if (RS.victim < 0) RS.victim = G.nservers - 1;
    if (!duration_given) G.duration = RS.kill_at + 5;
    if (!maxc_given) G.max_connecting = 1500; /* the storm's attempts too (rs_retry) */
    G.no_floor = 1;
    int per = (RS.storm + RS.rooms - 1) / RS.rooms;
    if (G.nservers < 2 || RS.victim >= G.nservers || RS.kill_at <= 0 || RS.kill_at >= G.duration ||
        RS.bound <= 0 || RS.stay_pct < 0 || RS.storm < RS.rooms ||
        per + (per * RS.stay_pct + 50) / 100 > ROOM_MAX_LEARNERS) {
      fprintf(stderr,
              "otj-load: reconnect-storm needs two or more --server, --victim one of "
              "them, 0 < --kill-at < --duration, --bound > 0, and --storm / --rooms "
              "(plus --stay) between 1 and %d learners per room\n",
              ROOM_MAX_LEARNERS);
      return 2;
    }
  }
  /* what each scenario does, unless told otherwise */
  if (sc_conn) G.held_conns = G.idle_conns = conns > 0 ? conns : 10000;
  if (sc_conn && rooms > 0) {
    /* held in rooms: R rooms of 1 + L, every connection joined (no answers);
     * the rest of --connections idle */
    G.fanout_rooms = rooms;
    G.answer_rate = 0;
    G.idle_conns -= rooms * (G.learners + 1);
    if (G.idle_conns < 0) {
      fprintf(stderr, "otj-load: connections: --rooms R needs --connections >= R * (1 + L)\n");
      return 2;
    }
  }
  if (G.ping_s < 0) G.ping_s = sc_conn ? 30 : 0;
  if (sc_fan || sc_mixed) {
    G.fanout_rooms = rooms > 0 ? rooms : 100;
    if (rate > 0)
      G.answer_rate = rate;
    else
      G.answer_rate = (deliveries > 0 ? deliveries : 50000) / (G.learners + 1);
  }
  if (sc_storm || sc_mixed) {
    G.storm_n = storm > 0 ? storm : 10000;
    if (G.storm_at < 0) G.storm_at = sc_mixed ? G.duration / 3 : 0;
    if (sc_storm && G.storm_window > G.duration) G.duration = G.storm_window;
  }
  if (G.storm_at < 0) G.storm_at = 0;
  if (sc_appr || sc_mixed) G.approve_rate = approvals > 0 ? approvals : (sc_mixed ? 1000 : 5000);
  if (sc_conn) G.duration = 0;
  /* connections, plus the hosts of storm and approval rooms (bounded) */
  int total_conns = (G.fanout_rooms * (G.learners + 1)) + G.storm_n + G.idle_conns +
                    G.storm_n / (G.learners > 0 ? G.learners : 1) + 1 +
                    (int)(G.approve_rate * G.duration / ROOM_MAX_LEARNERS) + 1;
  if (sc_rs) total_conns += RS.rooms + RS.storm + RS.storm * RS.stay_pct / 100 + RS.rooms;
  /* Source addresses are bound only when one address's ports would not
   * do: unbound, connect() picks 127.0.0.1 and a port unique per server (the
   * ephemeral range, ~28,000 here, for each), while a bound address costs a
   * getifaddrs() per connect inside lws (a netlink dump: 18 % of the
   * generator's CPU in the reconnect storm). */
  if (G.nsources < 0)
    G.nsources = !G.source_net && total_conns <= UNBOUND_MAX
                     ? 0
                     : (total_conns + PORTS_PER_SOURCE - 1) / PORTS_PER_SOURCE;
  if (G.nsources < 1 && G.source_net) G.nsources = 1;
  if (G.nsources < 0) G.nsources = 0;
  if (G.nsources > 250) G.nsources = 250;
  if (G.timeout <= 0) G.timeout = G.duration + G.hold + 180 + total_conns / 500.0 + RS.bound;

  /* descriptors: one per connection, and some */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = (rlim_t)total_conns + 64;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
      rl.rlim_max = want; /* allowed for root */
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)total_conns + 32) {
      fprintf(stderr,
              "otj-load: %d connections need as many descriptors; the limit is %lu "
              "(raise it: ulimit -n)\n",
              total_conns, (unsigned long)rl.rlim_cur);
      return 2;
    }
  }

  /* who to measure */
  for (int i = 0; i < G.nservers; i++) G.servers[i].pid = procstat_listener(G.servers[i].port);
  if (!G.notjd)
    for (int i = 0; i < G.nservers; i++)
      if (G.servers[i].pid > 0) {
        int dup = 0;
        for (int k = 0; k < G.notjd; k++) dup |= G.otjd_pids[k] == G.servers[i].pid;
        if (!dup) G.otjd_pids[G.notjd++] = G.servers[i].pid;
      }
  if (!G.nredis && G.redis_port > 0) {
    pid_t p = procstat_listener(G.redis_port);
    if (p > 0) G.redis_pids[G.nredis++] = p;
  }
  if (!G.nredis) G.nredis = procstat_by_comm("redis-server", G.redis_pids, MAX_PIDS);
  if (RS.on && rs_find_victim() != 0) return 2;
  if (!G.notjd) logf_("no otjd process found to measure (is it local?)");
  for (int i = 0; i < G.notjd; i++) logf_("measuring otjd pid %d", (int)G.otjd_pids[i]);
  for (int i = 0; i < G.nredis; i++) logf_("measuring redis-server pid %d", (int)G.redis_pids[i]);

  static char floor_buf[1100];
  if (!G.floor_path) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      self[n] = '\0';
      char *slash = strrchr(self, '/');
      if (slash) *slash = '\0';
      snprintf(floor_buf, sizeof floor_buf, "%s/otj-floor", self);
      if (access(floor_buf, X_OK) == 0) G.floor_path = floor_buf;
    }
  }

  snprintf(G.run_id, sizeof G.run_id, "%lx",
           (unsigned long)(time(NULL) ^ (getpid() << 16)) & 0xffffffful);
  snprintf(G.dept, sizeof G.dept, "load-%s", G.run_id);
  snprintf(G.module_title, sizeof G.module_title, "Load drill %s", G.run_id);
  snprintf(G.path_title, sizeof G.path_title, "Load path %s", G.run_id);
  /* a fresh /24 of 127/8 per run: the ports the last run left in
   * TIME_WAIT do not slow this one's binds */
  G.src_b = 1 + (int)((unsigned)getpid() % 254u);
  G.src_c = (int)((unsigned)time(NULL) % 256u);
  if (G.source_net && (sscanf(G.source_net, "%d.%d", &G.src_b, &G.src_c) != 2 || G.src_b < 0 ||
                       G.src_b > 255 || G.src_c < 0 || G.src_c > 255)) {
    fprintf(stderr, "otj-load: --source-net wants B.C (0..255 each), got %s\n", G.source_net);
    return 2;
  }
  if ((RS.on ? rs_build_world() : build_world()) != 0) {
    fprintf(stderr, "otj-load: out of memory\n");
    return 2;
  }
  G.prov_docs = (G.nusers + IMPORT_USERS_PER_DOC - 1) / IMPORT_USERS_PER_DOC;
  if (G.prov_docs < 1) G.prov_docs = 1;

  const char *fault = getenv("OTJ_LOAD_FAULT");
  if (fault) {
    const char *d = strstr(fault, "drop:"), *u = strstr(fault, "dup:");
    if (d) g_fault.drop = strtoull(d + 5, NULL, 10);
    if (u) g_fault.dup = strtoull(u + 4, NULL, 10);
    logf_("injecting faults: ev frame %" PRIu64 " dropped, %" PRIu64 " doubled", g_fault.drop,
          g_fault.dup);
  }
  hist_init(&G.h_answer);
  hist_init(&G.h_ack);
  hist_init(&G.h_join);
  hist_init(&G.h_approve);
  hist_init(&G.h_lag);
  msgpack_sbuffer_init(&g_sb);
  msgpack_zone_init(&g_zone, 8192);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGUSR1, on_go);

  uv_loop_init(&G.loop);
  RS.qcap = G.nconns + 1;
  RS.queue = RS.on ? calloc((size_t)RS.qcap, sizeof *RS.queue) : NULL;
  if (RS.on &&
      (!RS.queue || recon_init(&G.loop, G.nconns, RS.backoff,
                               (uint64_t)getpid() * 2654435761u ^ now_ns(), rs_retry) != 0)) {
    fprintf(stderr, "otj-load: out of memory\n");
    return 2;
  }
  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {&G.loop};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV;
  info.foreign_loops = loops;
  /* No fd_limit_per_thread: a limit below the process's descriptor limit
   * makes lws find the connection of every ready socket by a linear scan of
   * its fd table (wsi_from_fd), measured at 18 % of otj-load's CPU under
   * fan-out; the limit was raised above to what the connections need. (No
   * validity timer either: start_connect turns it off per connection.) */
  info.connect_timeout_secs = 30;
  G.ctx = lws_create_context(&info);
  if (!G.ctx) {
    fprintf(stderr, "otj-load: cannot create the lws context (libwebsockets-evlib-uv?)\n");
    return 2;
  }
  G.t_start = now_ns();
  {
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
      if (fscanf(la, "%lf", &G.loadavg0) != 1) G.loadavg0 = 0;
      fclose(la);
    }
  }
  logf_("%s: %d rooms, %d connections, %d users, %d server(s), %d source address(es)", G.scenario,
        G.nrooms, G.nconns, G.nusers, G.nservers, G.nsources);
  uv_timer_init(&G.loop, &G.tick);
  uv_timer_start(&G.tick, on_tick, TICK_MS, TICK_MS);
  set_phase(PH_PROVISION);
  prov_next();
  uv_run(&G.loop, UV_RUN_DEFAULT);
  return 1; /* finish_run exits */
}
