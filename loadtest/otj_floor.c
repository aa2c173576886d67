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

static void usage(FILE *f) {
  fprintf(f, "Usage: otj-floor --receivers N --fanout F --frame-bytes B --rate FRAMES_PER_S "
             "[--seconds S] [--json]\n");
}

int main(int argc, char **argv) {
  g_n = 300;
  g_fanout = 30;
  g_frame = 120;
  g_rate = 50000;
  g_seconds = 2;
  static const struct option opts[] = {{"receivers", required_argument, NULL, 'n'},
                                       {"fanout", required_argument, NULL, 'f'},
                                       {"frame-bytes", required_argument, NULL, 'b'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'n': g_n = atoi(optarg); break;
    case 'f': g_fanout = atoi(optarg); break;
    case 'b': g_frame = atoi(optarg); break;
    case 'r': g_rate = atof(optarg); break;
    case 's': g_seconds = atof(optarg); break;
    case 'j': g_json = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
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
