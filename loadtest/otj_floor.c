/*
 * otj-floor — what the kernel alone costs to deliver otjd's frames.
 *
 * It builds the same shape as a fan-out run — `receivers` loopback TCP
 * connections in rooms of `fanout` — and writes frames of the same size at
 * the same total rate, with no server logic at all: one thread writes (the
 * server's side), another reads everything (the clients' side). The CPU
 * time of the writing thread divided by the frames delivered is the floor
 * that otjd's CPU per delivered message is compared with. Two ways of
 * writing are measured:
 *   per_write: one write() per frame per receiver (what a server without
 *              coalescing does);
 *   per_turn:  every 1 ms "loop turn", one write() per socket holding all
 *              the frames that socket got in that turn (coalescing).
 * Output: one JSON object on stdout (--json) or a line for people.
 *
 * otj-floor --join: the kernel's floor for what one JOIN costs otjd. For
 * each of --joins learners, a new loopback TCP connection and the same
 * round trips and writes otjd makes for a learner joining a room: the
 * upgrade request and its answer (REQ, RESP), hello and welcome, join and
 * snapshot, then a presence frame to some of the room's members already
 * joined (--presence-writes per join on average, what otjd's presence_hold
 * leaves). A "server" thread (one listener, one epoll, accept4, TCP_NODELAY
 * like otjd) counts the bytes of each request and writes the answer's bytes;
 * a "client" thread connects at --rate per second and keeps every
 * connection open, reading what arrives. The server thread's CPU from the
 * first connect to the last snapshot (plus a 50 ms settle), divided by the
 * joins, is the floor otjd's CPU per join is compared with. What it leaves
 * out: the websocket handshake's hashing (SHA-1, base64), websocket framing
 * and msgpack, and all of otjd's own logic (sessions in SQLite, rooms in
 * Redis, the log): only the system calls and the kernel's TCP remain.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_TURN_NS   1000000ull /* one loop turn: 1 ms */
#define FLOOR_MAX_BATCH 512        /* frames coalesced into one write at most */
#define FLOOR_READ_BUF  262144

static int g_n, g_fanout, g_frame, g_json;
static double g_rate, g_seconds;
static int *g_wfd, *g_rfd;
static atomic_uint_fast64_t g_read_bytes;
static atomic_int g_stop;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Connects n loopback pairs: g_wfd[i] (accepted, the server side) and
 * g_rfd[i] (the client side). */
static int make_pairs(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096) ||
      getsockname(ls, (struct sockaddr *)&a, &al))
    return -1;
  for (int i = 0; i < g_n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) return -1;
    int s = accept(ls, NULL, NULL);
    if (s < 0) return -1;
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    g_wfd[i] = s;
    g_rfd[i] = c;
  }
  close(ls);
  return 0;
}

static void *reader(void *arg) {
  (void)arg;
  int ep = epoll_create1(0);
  for (int i = 0; i < g_n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = g_rfd[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, g_rfd[i], &ev);
  }
  char *buf = malloc(FLOOR_READ_BUF);
  struct epoll_event evs[256];
  while (!atomic_load(&g_stop)) {
    int k = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < k; i++) {
      ssize_t r;
      while ((r = recv(evs[i].data.fd, buf, FLOOR_READ_BUF, MSG_DONTWAIT)) > 0)
        atomic_fetch_add(&g_read_bytes, (uint64_t)r);
    }
  }
  free(buf);
  close(ep);
  return NULL;
}

static void sleep_until(uint64_t t) {
  uint64_t now = mono_ns();
  if (t <= now) return;
  struct timespec ts = {.tv_sec = (time_t)((t - now) / 1000000000ull),
                        .tv_nsec = (long)((t - now) % 1000000000ull)};
  nanosleep(&ts, NULL);
}

/* Writes at g_rate frames per second for g_seconds; coalesce: one write per
 * socket per turn. Returns the writer's CPU ns and sets *frames. */
static uint64_t writer(int coalesce, uint64_t *frames) {
  int rooms = g_n / g_fanout;
  if (rooms < 1) rooms = 1;
  double events_per_s = g_rate / g_fanout;
  uint8_t *frame = malloc((size_t)g_frame * FLOOR_MAX_BATCH);
  for (int i = 0; i < g_frame * FLOOR_MAX_BATCH; i++) frame[i] = (uint8_t)(i * 31);
  int *pending = calloc((size_t)g_n, sizeof *pending);
  uint64_t sent = 0, events = 0, cpu = 0, t0 = mono_ns();
  uint64_t end = t0 + (uint64_t)(g_seconds * 1e9);
  for (uint64_t turn = t0; turn < end; turn += FLOOR_TURN_NS) {
    sleep_until(turn);
    uint64_t c0 = thread_cpu_ns(); /* the writing only, not the waiting */
    uint64_t due = (uint64_t)((double)(turn - t0 + FLOOR_TURN_NS) * events_per_s / 1e9);
    for (; events < due; events++) {
      int r = (int)(events % (uint64_t)rooms);
      for (int k = 0; k < g_fanout; k++) {
        int fd = r * g_fanout + k;
        if (fd >= g_n) break;
        if (coalesce) {
          if (pending[fd] < FLOOR_MAX_BATCH) pending[fd]++;
        } else if (send(g_wfd[fd], frame, (size_t)g_frame, MSG_DONTWAIT) == g_frame) {
          sent++;
        }
      }
    }
    if (coalesce)
      for (int fd = 0; fd < g_n; fd++)
        if (pending[fd]) {
          ssize_t w = send(g_wfd[fd], frame, (size_t)g_frame * (size_t)pending[fd], MSG_DONTWAIT);
          if (w > 0) sent += (uint64_t)w / (uint64_t)g_frame;
          pending[fd] = 0;
        }
    cpu += thread_cpu_ns() - c0;
  }
  free(pending);
  free(frame);
  *frames = sent;
  return cpu;
}

/* ---- otj-floor --join ---------------------------------------------------- */

#define JOIN_MAX_MSG   65536       /* largest message an option may ask for, bytes */
#define JOIN_READ_BUF  65536       /* one read() takes at most this much */
#define JOIN_EVENTS    256         /* events per epoll_wait */
#define JOIN_BACKLOG   4096        /* the listener's accept queue */
#define JOIN_FD_SPARE  32          /* descriptors beside the connections' two each */
#define JOIN_SETTLE_NS 50000000ull /* after the last snapshot, for presence still on its way */
#define JOIN_MILLI     1000        /* presence writes owed are counted in thousandths */

/* The messages of one join, in the order they travel; a side that has read
 * message m answers with m + 1 and then waits for m + 2. */
enum {
  JOIN_REQ,
  JOIN_RESP,
  JOIN_HELLO,
  JOIN_WELCOME,
  JOIN_JOIN,
  JOIN_SNAPSHOT,
  JOIN_PRESENCE,
  JOIN_NMSG
};
static const char *const join_msg_name[JOIN_NMSG] = {"req",  "resp",     "hello",   "welcome",
                                                     "join", "snapshot", "presence"};
#define JOIN_CONNECTING (-1)      /* client: connect() in progress */
#define JOIN_JOINED     JOIN_NMSG /* past the snapshot: presence only */

/* System calls the server thread makes, counted by it; the client thread
 * reads them at the edges of the measured window. */
enum { JC_ACCEPT4, JC_EPOLL_CTL, JC_READ, JC_WRITE, JC_EPOLL_WAIT, JC_SETSOCKOPT, JC_N };
static const char *const join_call_name[JC_N] = {"accept4", "epoll_ctl",  "read",
                                                 "write",   "epoll_wait", "setsockopt"};

struct join_opts {
  size_t bytes[JOIN_NMSG];
  int joins, room, json;
  double rate, presence_writes, timeout;
};

struct join_conn {
  int fd;      /* -1 once closed */
  int stage;   /* the message being read, JOIN_CONNECTING or JOIN_JOINED */
  int armed;   /* EPOLLOUT is asked for */
  size_t want; /* bytes of that message still to come */
  size_t out;  /* bytes still to write */
  uint64_t t0; /* client: when its connect started */
};

struct join_calls {
  atomic_uint_fast64_t n[JC_N];
};

/* Written only by the thread that owns it: a plain load and store suffice. */
static void join_count(struct join_calls *k, int call) {
  atomic_store_explicit(&k->n[call], atomic_load_explicit(&k->n[call], memory_order_relaxed) + 1,
                        memory_order_relaxed);
}

static char g_join_pattern[JOIN_MAX_MSG]; /* what every write sends; read-only once running */

/* Writes what c owes; asks for EPOLLOUT while some of it cannot go, and
 * stops asking once all went. Returns 0, or -1 when the socket failed. */
static int join_flush(struct join_conn *c, int ep, struct join_calls *k) {
  while (c->out > 0) {
    size_t len = c->out < JOIN_MAX_MSG ? c->out : JOIN_MAX_MSG;
    ssize_t w = write(c->fd, g_join_pattern, len);
    if (k) join_count(k, JC_WRITE);
    if (w > 0) {
      c->out -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  int arm = c->out > 0;
  if (arm != c->armed) {
    struct epoll_event ev = {.events = EPOLLIN | (arm ? EPOLLOUT : 0u), .data.ptr = c};
    if (k) join_count(k, JC_EPOLL_CTL);
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) return -1;
    c->armed = arm;
  }
  return 0;
}

static void join_close(struct join_conn *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* The server side: owned by its thread from pthread_create to pthread_join,
 * except the atomics, which the client thread reads. */
struct join_server {
  const struct join_opts *o;
  int ls, ep, stopfd;
  struct join_conn *conns;   /* accepted, in order (at most o->joins) */
  struct join_conn **joined; /* in order of joining: room r is [r * room, (r + 1) * room) */
  int *cursor;               /* per room: where the next round of presence writes starts */
  int naccepted, njoined;
  int64_t owed;     /* presence writes owed, thousandths: carried while a room is small */
  int64_t per_join; /* --presence-writes, thousandths */
  struct join_calls calls;
  atomic_uint_fast64_t presence; /* presence frames written or queued */
  atomic_int errors, ready;
  char error[160]; /* the first error; read after pthread_join */
  char buf[JOIN_READ_BUF];
};

static void join_server_fail(struct join_server *s, const char *what) {
  if (atomic_fetch_add(&s->errors, 1) == 0)
    snprintf(s->error, sizeof s->error, "server: %s: %s", what, strerror(errno));
}

/* A new member of its room sends presence to `n` of the members joined before
 * it, round-robin; writes owed beyond the members there are wait for the
 * next join (bounded by one room's worth). The k-th member has k before it,
 * so a full room of R takes (R - 1) / 2 writes per join at most. */
static void join_server_presence(struct join_server *s, struct join_conn *c) {
  int room = s->o->room, j = s->njoined++;
  int r = j / room, first = r * room, others = j - first;
  s->joined[j] = c;
  s->owed += s->per_join;
  int n = (int)(s->owed / JOIN_MILLI);
  if (n > others) n = others;
  s->owed -= (int64_t)n * JOIN_MILLI;
  if (s->owed > (int64_t)room * JOIN_MILLI) s->owed = (int64_t)room * JOIN_MILLI;
  for (int t = 0; t < n; t++) {
    struct join_conn *m = s->joined[first + (s->cursor[r] + t) % others];
    if (m->fd < 0) continue;
    m->out += s->o->bytes[JOIN_PRESENCE];
    atomic_fetch_add_explicit(&s->presence, 1, memory_order_relaxed);
    /* one already waiting for EPOLLOUT sends it with what it holds */
    if (!m->armed && join_flush(m, s->ep, &s->calls)) join_close(m);
  }
  if (others > 0) s->cursor[r] = (s->cursor[r] + n) % others;
}

/* c has read all of message `stage`: answer it. */
static void join_server_answer(struct join_server *s, struct join_conn *c) {
  int m = c->stage;
  c->out += s->o->bytes[m + 1];
  if (m == JOIN_JOIN) {
    c->stage = JOIN_JOINED;
  } else {
    c->stage = m + 2;
    c->want = s->o->bytes[m + 2];
  }
  if (join_flush(c, s->ep, &s->calls)) {
    join_close(c);
    return;
  }
  if (m == JOIN_JOIN) join_server_presence(s, c);
}

static void join_server_read(struct join_server *s, struct join_conn *c) {
  ssize_t n = read(c->fd, s->buf, sizeof s->buf);
  join_count(&s->calls, JC_READ);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) { /* the client left (only at the end of a run) */
    join_close(c);
    return;
  }
  size_t got = (size_t)n; /* a request may come in pieces */
  while (got > 0 && c->stage != JOIN_JOINED && c->fd >= 0) {
    size_t take = got < c->want ? got : c->want;
    c->want -= take;
    got -= take;
    if (c->want == 0) join_server_answer(s, c);
  }
}

static void join_server_accept(struct join_server *s) {
  for (;;) {
    int fd = accept4(s->ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    join_count(&s->calls, JC_ACCEPT4);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) join_server_fail(s, "accept4");
      return;
    }
    if (s->naccepted == s->o->joins) { /* not one of ours */
      close(fd);
      continue;
    }
    struct join_conn *c = &s->conns[s->naccepted++];
    *c = (struct join_conn){.fd = fd, .stage = JOIN_REQ, .want = s->o->bytes[JOIN_REQ]};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    join_count(&s->calls, JC_SETSOCKOPT);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    join_count(&s->calls, JC_EPOLL_CTL);
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev)) {
      join_server_fail(s, "epoll_ctl");
      join_close(c);
    }
  }
}

static void *join_server_main(void *arg) {
  struct join_server *s = arg;
  struct epoll_event evs[JOIN_EVENTS];
  atomic_store(&s->ready, 1);
  for (;;) {
    int k = epoll_wait(s->ep, evs, JOIN_EVENTS, -1);
    join_count(&s->calls, JC_EPOLL_WAIT);
    if (k < 0 && errno != EINTR) {
      join_server_fail(s, "epoll_wait");
      return NULL;
    }
    for (int i = 0; i < k; i++) {
      void *p = evs[i].data.ptr;
      if (p == &s->stopfd) return NULL;
      if (p == &s->ls) {
        join_server_accept(s);
        continue;
      }
      struct join_conn *c = p;
      if (c->fd >= 0 && (evs[i].events & EPOLLOUT) && join_flush(c, s->ep, &s->calls))
        join_close(c);
      if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) join_server_read(s, c);
    }
  }
}

/* The client side: the calling thread's. */
struct join_client {
  const struct join_opts *o;
  int ep;
  struct sockaddr_in addr;
  struct join_conn *conns; /* one per join, in order of connecting */
  uint64_t *lat;           /* connect started -> snapshot read, ns, of each join done */
  int started, done, failed, dropped;
  uint64_t last_ns, presence_bytes;
  char error[160]; /* the first failure */
  char buf[JOIN_READ_BUF];
};

static void join_client_fail(struct join_client *cl, struct join_conn *c, const char *what,
                             int err) {
  if (cl->failed++ == 0 && !cl->dropped)
    snprintf(cl->error, sizeof cl->error, "client: %s: %s", what, err ? strerror(err) : "closed");
  join_close(c);
}

/* Message `stage` has been read in full: the next request, or the join done. */
static void join_client_answer(struct join_client *cl, struct join_conn *c) {
  int m = c->stage;
  if (m == JOIN_SNAPSHOT) {
    cl->last_ns = mono_ns();
    cl->lat[cl->done++] = cl->last_ns - c->t0;
    c->stage = JOIN_JOINED;
    return;
  }
  c->out += cl->o->bytes[m + 1];
  c->stage = m + 2;
  c->want = cl->o->bytes[m + 2];
  if (join_flush(c, cl->ep, NULL)) join_client_fail(cl, c, "write", errno);
}

static void join_client_start(struct join_client *cl) {
  struct join_conn *c = &cl->conns[cl->started++];
  *c = (struct join_conn){.fd = -1, .stage = JOIN_CONNECTING, .t0 = mono_ns()};
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    join_client_fail(cl, c, "socket", errno);
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(c->fd, (struct sockaddr *)&cl->addr, sizeof cl->addr);
  if (r < 0 && errno != EINPROGRESS) {
    join_client_fail(cl, c, "connect", errno);
    return;
  }
  c->armed = 1; /* writable once connected */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, c->fd, &ev)) join_client_fail(cl, c, "epoll_ctl", errno);
}

static void join_client_event(struct join_client *cl, struct join_conn *c, uint32_t events) {
  if (c->fd < 0) return;
  if (c->stage == JOIN_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
      join_client_fail(cl, c, "connect", err ? err : errno);
      return;
    }
    c->stage = JOIN_RESP;
    c->want = cl->o->bytes[JOIN_RESP];
    c->out = cl->o->bytes[JOIN_REQ];
    if (join_flush(c, cl->ep, NULL)) join_client_fail(cl, c, "write", errno);
    return;
  }
  if ((events & EPOLLOUT) && join_flush(c, cl->ep, NULL)) {
    join_client_fail(cl, c, "write", errno);
    return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  ssize_t n = read(c->fd, cl->buf, sizeof cl->buf);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    if (c->stage != JOIN_JOINED) {
      join_client_fail(cl, c, "read", n < 0 ? errno : 0);
    } else { /* the server never closes one: count it against the run */
      if (cl->dropped++ == 0 && !cl->failed)
        snprintf(cl->error, sizeof cl->error, "client: a joined connection was closed");
      join_close(c);
    }
    return;
  }
  size_t got = (size_t)n; /* an answer may come in pieces, the presence with the snapshot */
  while (got > 0 && c->stage != JOIN_JOINED && c->fd >= 0) {
    size_t take = got < c->want ? got : c->want;
    c->want -= take;
    got -= take;
    if (c->want == 0) join_client_answer(cl, c);
  }
  cl->presence_bytes += got;
}

/* Runs the client's loop until `until` (ns, CLOCK_MONOTONIC), starting the
 * connects that fall due on the way when `schedule` (join i at t0 + i / rate). */
static void join_client_loop(struct join_client *cl, uint64_t t0, uint64_t until, int schedule) {
  struct epoll_event evs[JOIN_EVENTS];
  for (;;) {
    uint64_t now = mono_ns();
    if (schedule)
      while (cl->started < cl->o->joins &&
             t0 + (uint64_t)((double)cl->started * 1e9 / cl->o->rate) <= now)
        join_client_start(cl);
    if (schedule && cl->done + cl->failed == cl->o->joins) return;
    if (now >= until) return;
    uint64_t wake = until;
    if (schedule && cl->started < cl->o->joins) {
      uint64_t due = t0 + (uint64_t)((double)cl->started * 1e9 / cl->o->rate);
      if (due < wake) wake = due;
    }
    int ms = (int)((wake - now + 999999) / 1000000); /* rounded up: never early */
    int k = epoll_wait(cl->ep, evs, JOIN_EVENTS, ms);
    for (int i = 0; i < k; i++) join_client_event(cl, evs[i].data.ptr, evs[i].events);
  }
}

static int join_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest rank; v sorted, n > 0. */
static double join_quantile_ms(const uint64_t *v, int n, double q) {
  int i = (int)((double)n * q + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return (double)v[i] / 1e6;
}

static uint64_t join_clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void join_report(const struct join_opts *o, const struct join_client *cl,
                        const struct join_server *s, const uint64_t calls[JC_N], uint64_t presence,
                        uint64_t server_cpu, uint64_t client_cpu, double seconds, int timed_out) {
  double d = cl->done ? (double)cl->done : 1;
  double p50 = cl->done ? join_quantile_ms(cl->lat, cl->done, 0.50) : 0;
  double p99 = cl->done ? join_quantile_ms(cl->lat, cl->done, 0.99) : 0;
  double max = cl->done ? join_quantile_ms(cl->lat, cl->done, 1.0) : 0;
  double rate = seconds > 0 ? (double)cl->done / seconds : 0;
  if (o->json) {
    printf("{\"mode\": \"join\", \"joins\": %d, \"rate\": %.0f, \"room\": %d, "
           "\"presence_writes\": %.3f, \"bytes\": {",
           o->joins, o->rate, o->room, o->presence_writes);
    for (int m = 0; m < JOIN_NMSG; m++)
      printf("%s\"%s\": %zu", m ? ", " : "", join_msg_name[m], o->bytes[m]);
    printf("}, \"joined\": %d, \"failed\": %d, \"dropped\": %d, \"server_errors\": %d, "
           "\"timed_out\": %s, \"seconds\": %.3f, \"joins_per_s\": %.1f, "
           "\"server_cpu_per_join_us\": %.2f, \"client_cpu_per_join_us\": %.2f, "
           "\"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
           "\"presence_frames_per_join\": %.3f, \"syscalls_per_join\": {",
           cl->done, cl->failed, cl->dropped, atomic_load(&s->errors), timed_out ? "true" : "false",
           seconds, rate, (double)server_cpu / 1e3 / d, (double)client_cpu / 1e3 / d, p50, p99, max,
           (double)presence / d);
    for (int i = 0; i < JC_N; i++)
      printf("%s\"%s\": %.2f", i ? ", " : "", join_call_name[i], (double)calls[i] / d);
    printf("}}\n");
  } else {
    printf("join floor: %d of %d joins at %.0f/s (rooms of %d, %.2f presence frames per join; "
           "bytes",
           cl->done, o->joins, o->rate, o->room, (double)presence / d);
    for (int m = 0; m < JOIN_NMSG; m++) printf("%c%zu", m ? '/' : ' ', o->bytes[m]);
    printf("): server %.1f us CPU per join, client %.1f us; %.0f joins/s; latency p50 %.2f ms, "
           "p99 %.2f ms; server syscalls per join:",
           (double)server_cpu / 1e3 / d, (double)client_cpu / 1e3 / d, rate, p50, p99);
    for (int i = 0; i < JC_N; i++)
      printf("%s %s %.2f", i ? "," : "", join_call_name[i], (double)calls[i] / d);
    printf("%s\n", timed_out ? " (TIMED OUT)" : "");
  }
  if (cl->failed || cl->dropped) fprintf(stderr, "otj-floor: %s\n", cl->error);
  if (atomic_load(&s->errors)) fprintf(stderr, "otj-floor: %s\n", s->error);
  if (timed_out)
    fprintf(stderr, "otj-floor: timed out after %.0f s with %d of %d joins done\n", o->timeout,
            cl->done, o->joins);
}

/* The whole join mode: returns the exit code (0, 1 when a join failed or
 * the run timed out, 2 when the joins cannot have their descriptors). */
static int join_run(const struct join_opts *o) {
  rlim_t need = (rlim_t)o->joins * 2 + JOIN_FD_SPARE;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
      fprintf(stderr,
              "otj-floor: --joins %d needs %llu descriptors (two per join), the hard limit is "
              "%llu: at most %llu joins\n",
              o->joins, (unsigned long long)need, (unsigned long long)rl.rlim_max,
              (unsigned long long)((rl.rlim_max - JOIN_FD_SPARE) / 2));
      return 2;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl)) {
      fprintf(stderr, "otj-floor: cannot raise RLIMIT_NOFILE to %llu: %s\n",
              (unsigned long long)need, strerror(errno));
      return 2;
    }
  }
  for (int i = 0; i < JOIN_MAX_MSG; i++) g_join_pattern[i] = (char)('a' + i % 26);

  struct join_server *s = calloc(1, sizeof *s);
  struct join_client *cl = calloc(1, sizeof *cl);
  int rooms = (o->joins + o->room - 1) / o->room;
  if (!s || !cl) return 1;
  s->o = o;
  s->per_join = (int64_t)(o->presence_writes * JOIN_MILLI + 0.5);
  s->conns = calloc((size_t)o->joins, sizeof *s->conns);
  s->joined = calloc((size_t)o->joins, sizeof *s->joined);
  s->cursor = calloc((size_t)rooms, sizeof *s->cursor);
  cl->o = o;
  cl->conns = calloc((size_t)o->joins, sizeof *cl->conns);
  cl->lat = calloc((size_t)o->joins, sizeof *cl->lat);
  if (!s->conns || !s->joined || !s->cursor || !cl->conns || !cl->lat) return 1;

  cl->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof cl->addr;
  s->ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s->ep = epoll_create1(EPOLL_CLOEXEC);
  s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  cl->ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s->ls};
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &s->stopfd};
  if (s->ls < 0 || s->ep < 0 || s->stopfd < 0 || cl->ep < 0 ||
      bind(s->ls, (struct sockaddr *)&cl->addr, sizeof cl->addr) || listen(s->ls, JOIN_BACKLOG) ||
      getsockname(s->ls, (struct sockaddr *)&cl->addr, &al) ||
      epoll_ctl(s->ep, EPOLL_CTL_ADD, s->ls, &lev) ||
      epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stopfd, &sev)) {
    fprintf(stderr, "otj-floor: cannot listen on 127.0.0.1: %s\n", strerror(errno));
    return 1;
  }
  pthread_t st;
  clockid_t scpu;
  if (pthread_create(&st, NULL, join_server_main, s)) {
    fprintf(stderr, "otj-floor: cannot start the server thread\n");
    return 1;
  }
  pthread_getcpuclockid(st, &scpu);
  while (!atomic_load(&s->ready)) sleep_until(mono_ns() + 1000000);

  /* the window: first connect -> last snapshot read + the settle */
  uint64_t calls0[JC_N], calls1[JC_N];
  for (int i = 0; i < JC_N; i++) calls0[i] = atomic_load(&s->calls.n[i]);
  uint64_t pres0 = atomic_load(&s->presence);
  uint64_t scpu0 = join_clock_ns(scpu), ccpu0 = thread_cpu_ns();
  uint64_t t0 = mono_ns(), deadline = t0 + (uint64_t)(o->timeout * 1e9);
  join_client_loop(cl, t0, deadline, 1);
  int timed_out = cl->done + cl->failed < o->joins;
  uint64_t t_end = cl->done ? cl->last_ns : mono_ns();
  if (!timed_out) join_client_loop(cl, t0, mono_ns() + JOIN_SETTLE_NS, 0);
  uint64_t scpu1 = join_clock_ns(scpu), ccpu1 = thread_cpu_ns();
  uint64_t pres1 = atomic_load(&s->presence);
  for (int i = 0; i < JC_N; i++) calls1[i] = atomic_load(&s->calls.n[i]) - calls0[i];

  uint64_t one = 1;
  if (write(s->stopfd, &one, sizeof one) != sizeof one) return 1;
  pthread_join(st, NULL);
  for (int i = 0; i < cl->started; i++) join_close(&cl->conns[i]);
  for (int i = 0; i < s->naccepted; i++) join_close(&s->conns[i]);
  close(s->ls);
  close(s->ep);
  close(s->stopfd);
  close(cl->ep);

  qsort(cl->lat, (size_t)cl->done, sizeof *cl->lat, join_cmp_u64);
  join_report(o, cl, s, calls1, pres1 - pres0, scpu1 - scpu0, ccpu1 - ccpu0,
              (double)(t_end - t0) / 1e9, timed_out);
  int rc = timed_out || cl->failed || cl->dropped || atomic_load(&s->errors) ? 1 : 0;
  free(s->conns);
  free(s->joined);
  free(s->cursor);
  free(s);
  free(cl->conns);
  free(cl->lat);
  free(cl);
  return rc;
}

static void usage(FILE *f) {
  fprintf(f, "Usage: otj-floor --receivers N --fanout F --frame-bytes B --rate FRAMES_PER_S "
             "[--seconds S] [--json]\n"
             "       otj-floor --join [--joins N (3000)] [--rate JOINS_PER_S (3000)] "
             "[--room N (30)]\n"
             "                 [--presence-writes W (2.7)] [--timeout S (30)] [--json]\n"
             "                 [--req-bytes 225] [--resp-bytes 161] [--hello-bytes 69] "
             "[--welcome-bytes 55]\n"
             "                 [--join-bytes 26] [--snapshot-bytes 900] "
             "[--presence-bytes 100]\n");
}

/* Options of one mode only; the other mode refuses them. */
#define OPT_FANOUT   1
#define OPT_JOIN     2
#define OPT_JOIN_MSG 256 /* + the message: --req-bytes .. --presence-bytes */

int main(int argc, char **argv) {
  g_n = 300;
  g_fanout = 30;
  g_frame = 120;
  g_rate = 50000;
  g_seconds = 2;
  struct join_opts jo = {.bytes = {225, 161, 69, 55, 26, 900, 100}, /* otjd's, 3,000-join storm */
                         .joins = 3000,
                         .room = 30,
                         .rate = 3000,
                         .presence_writes = 2.7,
                         .timeout = 30};
  int join = 0, seen = 0;
  static const struct option opts[] = {
      {"receivers", required_argument, NULL, 'n'},
      {"fanout", required_argument, NULL, 'f'},
      {"frame-bytes", required_argument, NULL, 'b'},
      {"rate", required_argument, NULL, 'r'},
      {"seconds", required_argument, NULL, 's'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {"join", no_argument, NULL, 'J'},
      {"joins", required_argument, NULL, 'N'},
      {"room", required_argument, NULL, 'R'},
      {"presence-writes", required_argument, NULL, 'P'},
      {"timeout", required_argument, NULL, 'T'},
      {"req-bytes", required_argument, NULL, OPT_JOIN_MSG + 0},
      {"resp-bytes", required_argument, NULL, OPT_JOIN_MSG + 1},
      {"hello-bytes", required_argument, NULL, OPT_JOIN_MSG + 2},
      {"welcome-bytes", required_argument, NULL, OPT_JOIN_MSG + 3},
      {"join-bytes", required_argument, NULL, OPT_JOIN_MSG + 4},
      {"snapshot-bytes", required_argument, NULL, OPT_JOIN_MSG + 5},
      {"presence-bytes", required_argument, NULL, OPT_JOIN_MSG + 6},
      {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'n':
      g_n = atoi(optarg);
      seen |= OPT_FANOUT;
      break;
    case 'f':
      g_fanout = atoi(optarg);
      seen |= OPT_FANOUT;
      break;
    case 'b':
      g_frame = atoi(optarg);
      seen |= OPT_FANOUT;
      break;
    case 'r': g_rate = jo.rate = atof(optarg); break;
    case 's':
      g_seconds = atof(optarg);
      seen |= OPT_FANOUT;
      break;
    case 'j': g_json = jo.json = 1; break;
    case 'h': usage(stdout); return 0;
    case 'J': join = 1; break;
    case 'N':
      jo.joins = atoi(optarg);
      seen |= OPT_JOIN;
      break;
    case 'R':
      jo.room = atoi(optarg);
      seen |= OPT_JOIN;
      break;
    case 'P':
      jo.presence_writes = atof(optarg);
      seen |= OPT_JOIN;
      break;
    case 'T':
      jo.timeout = atof(optarg);
      seen |= OPT_JOIN;
      break;
    default:
      if (ch >= OPT_JOIN_MSG && ch < OPT_JOIN_MSG + JOIN_NMSG) {
        long v = atol(optarg);
        jo.bytes[ch - OPT_JOIN_MSG] = v > 0 && v <= JOIN_MAX_MSG ? (size_t)v : 0;
        seen |= OPT_JOIN;
        break;
      }
      usage(stderr);
      return 2;
    }
  }
  if (join) {
    int bad = (seen & OPT_FANOUT) || jo.joins < 1 || jo.room < 1 || jo.rate <= 0 ||
              jo.timeout <= 0 || jo.presence_writes < 0 || jo.presence_writes > (jo.room - 1) / 2.0;
    for (int m = 0; m < JOIN_NMSG; m++) bad |= jo.bytes[m] == 0;
    if (bad) {
      fprintf(stderr,
              "otj-floor --join: sizes are 1..%d bytes, --presence-writes 0..(room - 1) / 2 "
              "(what a full room can take),\n"
              "and the fan-out options do not apply\n",
              JOIN_MAX_MSG);
      usage(stderr);
      return 2;
    }
    return join_run(&jo);
  }
  if (seen & OPT_JOIN) {
    usage(stderr);
    return 2;
  }
  if (g_n < 1 || g_fanout < 1 || g_frame < 1 || g_frame > 65536 || g_rate <= 0 || g_seconds <= 0) {
    usage(stderr);
    return 2;
  }
  if (g_fanout > g_n) g_fanout = g_n;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)(2 * g_n + 64) > rl.rlim_cur)
      g_n = (int)(rl.rlim_cur - 64) / 2;
  }
  g_wfd = calloc((size_t)g_n, sizeof *g_wfd);
  g_rfd = calloc((size_t)g_n, sizeof *g_rfd);
  if (!g_wfd || !g_rfd || make_pairs() != 0) {
    fprintf(stderr, "otj-floor: cannot make %d loopback connections: %s\n", g_n, strerror(errno));
    return 1;
  }
  pthread_t rt;
  pthread_create(&rt, NULL, reader, NULL);
  uint64_t f1, f2;
  uint64_t c1 = writer(0, &f1);
  uint64_t c2 = writer(1, &f2);
  atomic_store(&g_stop, 1);
  pthread_join(rt, NULL);
  double pw = f1 ? (double)c1 / 1e3 / (double)f1 : 0, pt = f2 ? (double)c2 / 1e3 / (double)f2 : 0;
  if (g_json)
    printf("{\"receivers\": %d, \"fanout\": %d, \"frame_bytes\": %d, \"rate\": %.0f, "
           "\"seconds\": %.1f, \"per_write_us\": %.3f, \"per_turn_us\": %.3f, "
           "\"frames_one_write_each\": %llu, \"frames_coalesced\": %llu}\n",
           g_n, g_fanout, g_frame, g_rate, g_seconds, pw, pt, (unsigned long long)f1,
           (unsigned long long)f2);
  else
    printf("floor: %d receivers, fan-out %d, %d-byte frames at %.0f/s: %.3f us per frame "
           "(one write each), %.3f us per frame (one write per socket per 1 ms turn)\n",
           g_n, g_fanout, g_frame, g_rate, pw, pt);
  return 0;
}
