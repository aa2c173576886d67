/*
 * main — otjd's commands, start and stop.
 *
 * `otjd [settings]` serves; `otjd COMMAND ...` runs one of `commands`
 * (check-config, ...): a command is one row of that table and a function.
 *
 * Start: settings, the data folder, SQLite (migrations, the demo
 * organisation on request), Redis (a private redis-server unless --redis),
 * then one libuv loop that libwebsockets (as a foreign loop) and hiredis
 * share. Stop, on SIGINT or SIGTERM: every websocket gets a close frame with
 * "going away", the loop drains, lws lets go of the loop, Redis is
 * disconnected and the private redis-server is stopped and reaped.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <libwebsockets.h>

#include "api.h"
#include "auth.h"
#include "backoff.h"
#include "backup_cmd.h"
#include "clock.h"
#include "verify_cmd.h"
#include "config.h"
#include "http.h"
#include "live.h"
#include "log.h"
#include "otjd.h"
#include "proto.h"
#include "rconn.h"
#include "redischild.h"
#include "store.h"
#include "ws.h"

#define SHUTDOWN_GRACE_MS 2000 /* time given to clients to take the close */
#define SHUTDOWN_POLL_MS  50
#define DEMO_PASSWORD     "otj-demo"

static otjd g_d;
static uv_signal_t sig_int, sig_term, sig_chld;
static uv_timer_t shutdown_timer;
static uv_timer_t redis_retry; /* the next try at a private redis-server that did not start */
static unsigned redis_tries;   /* failed starts in a row */
static uint64_t shutdown_started;

static int mkdir_p(const char *path) {
  char tmp[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
  return 0;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 64 &&
      g_d.cfg.max_connections > rl.rlim_cur - 64) {
    /* stay below the descriptor limit: lws spins when accept() fails */
    g_d.cfg.max_connections = (uint32_t)(rl.rlim_cur - 64);
  }
}

static void on_redis_state(void *ud, int up) { live_redis_state(ud, up); }

/* ---- shutdown ---------------------------------------------------------- */

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static uv_check_t log_check;

static void on_log_check(uv_check_t *h) {
  (void)h;
  log_flush();
}

static void finish_shutdown(void) {
  otjd *d = &g_d;
  uv_timer_stop(&shutdown_timer);
  close_handle((uv_handle_t *)&shutdown_timer);
  uv_timer_stop(&redis_retry);
  close_handle((uv_handle_t *)&redis_retry);
  if (d->lws) {
    lws_context_destroy(d->lws);
    d->lws = NULL;
  }
  ws_fini(d);
  live_fini(d);
  rconn_destroy(d->redis);
  d->redis = NULL;
  uv_check_stop(&log_check);
  close_handle((uv_handle_t *)&log_check);
  uv_signal_stop(&sig_int);
  uv_signal_stop(&sig_term);
  uv_signal_stop(&sig_chld);
  close_handle((uv_handle_t *)&sig_int);
  close_handle((uv_handle_t *)&sig_term);
  close_handle((uv_handle_t *)&sig_chld);
}

static void on_shutdown_tick(uv_timer_t *t) {
  otjd *d = &g_d;
  if (d->st.ws_open == 0 || otjd_now_ms(d) - shutdown_started >= SHUTDOWN_GRACE_MS)
    finish_shutdown();
}

static void begin_shutdown(const char *why) {
  otjd *d = &g_d;
  if (d->shutting_down) return;
  d->shutting_down = 1;
  size_t n = ws_close_all(d);
  log_event(LOG_INFO, "stopping", "why=%s connections=%zu", why, n);
  shutdown_started = otjd_now_ms(d);
  uv_timer_start(&shutdown_timer, on_shutdown_tick, SHUTDOWN_POLL_MS, SHUTDOWN_POLL_MS);
}

static void on_signal(uv_signal_t *h, int signum) {
  begin_shutdown(signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* Starts the private redis-server again; one that does not start is tried
 * again after a backoff, so live rooms come back without an operator (a
 * fork that found no memory, say). */
static void restart_private_redis(uv_timer_t *t) {
  (void)t;
  otjd *d = &g_d;
  if (d->shutting_down || d->redis_child > 0) return;
  char err[512], sock[512];
  pid_t pid = redischild_start(d->cfg.redis_server_bin, d->cfg.data_dir, d->cfg.redis_maxmemory_mb,
                               sock, sizeof sock, err, sizeof err);
  if (pid > 0) {
    d->redis_child = pid;
    redis_tries = 0;
    log_event(LOG_INFO, "private redis-server started", "pid=%d socket=%s", (int)pid, sock);
    return; /* rconn reconnects to the same socket path by itself */
  }
  uint64_t wait = backoff_delay_ms(redis_tries++);
  log_event(LOG_ERROR, "private redis-server did not start; trying again", "error=%s retry_ms=%llu",
            err, (unsigned long long)wait);
  uv_timer_start(&redis_retry, restart_private_redis, wait, 0);
}

/* The private redis-server died under us: start a new one (its rooms are
 * gone; clients resync) unless we are stopping anyway. */
static void on_sigchld(uv_signal_t *h, int signum) {
  otjd *d = &g_d;
  if (d->redis_child <= 0) return;
  int status;
  if (waitpid(d->redis_child, &status, WNOHANG) != d->redis_child) return;
  d->redis_child = 0;
  if (d->shutting_down) return;
  log_event(LOG_ERROR, "private redis-server exited; starting a new one", "status=%d", status);
  restart_private_redis(NULL);
}

/* ---- start ------------------------------------------------------------- */

/* The clock approvals expire by: the re-drill window, and for tests only
 * OTJ_TEST_NOW_OFFSET (seconds, may be negative) that shifts "now" so that
 * expiry can be tested without waiting. Returns 0 or an exit code. */
static int configure_clock(const otjd *d) {
  const char *v = getenv(CLOCK_TEST_OFFSET_ENV);
  int64_t offset_ms;
  if (clock_test_offset_ms(&offset_ms) != 0) {
    log_event(LOG_ERROR, "OTJ_TEST_NOW_OFFSET must be a number of seconds", "value=%s", v);
    return EX_USAGE;
  }
  /* fractions are for the confirmation code's clock (confirm.c); expiry
   * counts whole seconds */
  int64_t offset = offset_ms / 1000;
  if (v && *v)
    log_event(LOG_WARN,
              "test clock: OTJ_TEST_NOW_OFFSET shifts the time approvals expire by; for tests "
              "only, never in production",
              "offset_s=%lld", (long long)offset);
  store_clock_configure(offset, (int64_t)d->cfg.redrill_window_days * 86400);
  return 0;
}

static int open_storage(otjd *d) {
  int crc = configure_clock(d);
  if (crc) return crc;
  char path[600], err[512];
  snprintf(path, sizeof path, "%s/otj.db", d->cfg.data_dir);
  if (store_open(path, &d->db, err, sizeof err) != 0) {
    log_event(LOG_ERROR, "cannot open the database", "path=%s error=%s", path, err);
    return EX_CANTCREAT;
  }
  if (store_open(path, &d->db_worker, err, sizeof err) != 0) {
    log_event(LOG_ERROR, "cannot open the database", "path=%s error=%s", path, err);
    return EX_CANTCREAT;
  }
  uv_mutex_init(&d->db_worker_lock);
  if (d->cfg.demo) {
    int users = store_user_count(d->db);
    if (users < 0) {
      log_event(LOG_ERROR, "cannot read the database", "path=%s error=%s", path,
                store_errmsg(d->db));
      return EX_CANTCREAT;
    }
    if (users > 0) {
      log_event(LOG_WARN, "demo: the database already has users; leaving it as it is", NULL);
    } else {
      char hash[AUTH_HASH_MAX];
      if (auth_hash_password(DEMO_PASSWORD, hash) != 0 || store_load_demo(d->db, hash) != 0) {
        log_event(LOG_ERROR, "loading the demo organisation failed", "error=%s",
                  store_errmsg(d->db));
        return EX_SOFTWARE;
      }
      /* the demo password is in README.md: never in the log */
      log_event(LOG_INFO, "demo organisation loaded", "passwords=README.md");
    }
  }
  /* From here d->db serves the event loop: it waits for another
   * connection's lock only briefly (an in-process group commit), and a
   * longer lock answers "busy, retry" instead of stalling every socket. */
  uint32_t busy_ms = d->cfg.db_loop_busy_ms;
  if (store_set_busy_timeout(d->db, busy_ms > INT32_MAX ? INT32_MAX : (int)busy_ms) != 0) {
    log_event(LOG_ERROR, "cannot set the busy timeout", "path=%s error=%s", path,
              store_errmsg(d->db));
    return EX_SOFTWARE;
  }
  return 0;
}

static int start_redis(otjd *d) {
  if (d->cfg.redis[0]) {
    snprintf(d->redis_addr, sizeof d->redis_addr, "%s", d->cfg.redis);
    return 0;
  }
  char err[600];
  pid_t pid = redischild_start(d->cfg.redis_server_bin, d->cfg.data_dir, d->cfg.redis_maxmemory_mb,
                               d->redis_addr, sizeof d->redis_addr, err, sizeof err);
  if (pid <= 0) {
    log_event(LOG_ERROR, "private redis-server did not start", "error=%s", err);
    return EX_UNAVAILABLE;
  }
  d->redis_child = pid;
  log_event(LOG_INFO, "private redis-server started", "pid=%d socket=%s", (int)pid, d->redis_addr);
  return 0;
}

static struct lws_protocols protocols[3];
static struct lws_protocols metrics_protocols[2];
static struct lws_http_mount mounts[6];
static struct lws_http_mount metrics_mounts[3];

/* The options every vhost shares. */
#define OTJ_LWS_OPTIONS                                                                            \
  (LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |                         \
   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |                                \
   LWS_SERVER_OPTION_DISABLE_IPV6)

/* No lws validity timer per connection: lws would re-insert it into a
 * sorted list on every frame received (O(connections) each). Idle and
 * hello limits are enforced by ws.c's sweep instead. */
static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static void callback_mounts(struct lws_http_mount *m, const char **points, int n) {
  for (int i = 0; i < n; i++) {
    m[i] = (struct lws_http_mount){
        .mount_next = i + 1 < n ? &m[i + 1] : NULL,
        .mountpoint = points[i],
        .mountpoint_len = (unsigned char)strlen(points[i]),
        .origin = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
  }
}

static const char *lws_iface(const char *addr) { return strcmp(addr, "0.0.0.0") ? addr : NULL; }

/* The main listener: the web client, the API and /ws; https and wss when
 * TLS is configured (a plain-http request to it then fails the handshake). */
static int start_main_vhost(otjd *d) {
  protocols[0] = (struct lws_protocols){
      .name = "http",
      .callback = http_callback,
      .per_session_data_size = http_pss_size(),
  };
  protocols[1] = (struct lws_protocols){
      .name = PROTO_SUBPROTOCOL,
      .callback = ws_callback,
      .per_session_data_size = ws_sess_size(),
      /* small: lws keeps this much per connection (with LWS_PRE), and at
       * 100,000 connections every byte counts; a client's messages are
       * mostly under 128 bytes (hello, join, answer, mark), and longer
       * ones arrive in pieces that ws.c puts together */
      .rx_buffer_size = 128,
      .tx_packet_size = WS_TX_PACKET,
  };
  /* protocols[2] stays zeroed: the end of the list */

  /* lws picks the longest matching mountpoint */
  /* /join/CODE is a page of the web client: the callback serves index.html */
  static const char *api_points[] = {"/api", "/healthz", "/readyz", "/metrics", "/join"};
  callback_mounts(mounts, api_points, 5);
  mounts[4].mount_next = &mounts[5];
  mounts[5] = (struct lws_http_mount){
      .mountpoint = "/",
      .mountpoint_len = 1,
      .origin = d->cfg.web_root,
      .def = "index.html",
      .origin_protocol = LWSMPRO_FILE,
      .protocol = "http", /* http.c adds "connection: close" */
  };

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.options = OTJ_LWS_OPTIONS;
  info.port = d->cfg.listen_port;
  info.iface = lws_iface(d->cfg.listen_addr);
  info.protocols = protocols;
  info.mounts = mounts;
  info.vhost_name = "otjd";
  info.retry_and_idle_policy = &no_validity;
  info.ka_time = 0;
  if (d->cfg.tls_cert[0]) {
    /* lws reads this option per vhost too: without it, no TLS here */
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = d->cfg.tls_cert;
    info.ssl_private_key_filepath = d->cfg.tls_key;
    /* HTTP/1.1 only: http.c answers one request per connection with
     * "connection: close", which HTTP/2 does not have */
    info.alpn = "http/1.1";
  }
  if (!lws_create_vhost(d->lws, &info)) {
    log_event(LOG_ERROR,
              d->cfg.tls_cert[0] ? "cannot serve (is the port in use? do tls_cert and tls_key "
                                   "hold a PEM certificate and its key?)"
                                 : "cannot serve (is the port in use?)",
              "listen=%s:%d", d->cfg.listen_addr, d->cfg.listen_port);
    return EX_SOFTWARE;
  }
  return 0;
}

/* The metrics listener: /metrics, /healthz and /readyz only, plain http,
 * for the monitoring network (api.c refuses everything else on it). */
static int start_metrics_vhost(otjd *d) {
  if (!d->cfg.metrics_port) return 0;
  metrics_protocols[0] = (struct lws_protocols){
      .name = "http",
      .callback = http_callback,
      .per_session_data_size = http_pss_size(),
  };
  static const char *points[] = {"/metrics", "/healthz", "/readyz"};
  callback_mounts(metrics_mounts, points, 3);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.options = OTJ_LWS_OPTIONS;
  info.port = d->cfg.metrics_port;
  info.iface = lws_iface(d->cfg.metrics_addr);
  info.protocols = metrics_protocols;
  info.mounts = metrics_mounts;
  info.vhost_name = API_METRICS_VHOST;
  info.retry_and_idle_policy = &no_validity;
  if (!lws_create_vhost(d->lws, &info)) {
    log_event(LOG_ERROR, "cannot serve metrics (is the port in use?)", "listen=%s:%d",
              d->cfg.metrics_addr, d->cfg.metrics_port);
    return EX_SOFTWARE;
  }
  return 0;
}

static int start_lws(otjd *d) {
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {d->loop};
  info.options = OTJ_LWS_OPTIONS | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  if (d->cfg.tls_cert[0]) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = loops;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.user = d;
  info.server_string = "otjd";
  info.timeout_secs = 20;
  d->lws = lws_create_context(&info);
  if (!d->lws) {
    log_event(LOG_ERROR, "libwebsockets did not start (is libwebsockets-evlib-uv installed?)",
              NULL);
    return EX_SOFTWARE;
  }
  int rc = start_main_vhost(d);
  if (rc == 0) rc = start_metrics_vhost(d);
  return rc;
}

/* ---- commands ------------------------------------------------------------ */

#ifndef OTJ_VERSION
#define OTJ_VERSION "unknown"
#endif

static int serve(int argc, char **argv);
static int cmd_check_config(int argc, char **argv);

/* `otjd COMMAND ...`: argv[0] of `run` is the command's name. Without a
 * command, otjd serves. */
typedef struct otjd_command {
  const char *name;
  const char *args;
  const char *help;
  int (*run)(int argc, char **argv);
} otjd_command;

static const otjd_command commands[] = {
    {"check-config", "[--print] [--config FILE] [settings]",
     "check the settings (file, environment, flags) and exit: 0 when they "
     "are good, 64 naming the bad one; --print shows each value and where "
     "it came from",
     cmd_check_config},
    {"backup", "[--data DIR] FILE",
     "copy the database of a running (or stopped) otjd into FILE "
     "consistently, and check the copy",
     backup_main},
    {"verify-audit", "[--data DIR]",
     "check the audit log's hash chain (read-only) and print {\"ok\",\"entries\",\"head\"} "
     "or {\"ok\":false,...,\"first_bad\"}; exit 0 intact, 1 not",
     verify_audit_main},
};

static void usage(FILE *out) {
  fprintf(out, "Usage: otjd [settings]                serve\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "       otjd %s %s\n", commands[i].name, commands[i].args);
  fprintf(out, "OTJ live %s: realtime On-the-Job training server.\n\n", OTJ_VERSION);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %s: %s.\n", commands[i].name, commands[i].help);
  fputc('\n', out);
  config_usage(out);
  fprintf(out, "\nExit codes: 0 stopped cleanly, 64 bad usage or settings, 69 Redis "
               "unavailable,\n70 internal error, 73 data folder or database unusable.\n");
}

/* Loads the settings into `c`. Returns -1 to go on, else the exit code. */
static int load_settings(otj_config *c, int argc, char **argv) {
  switch (config_load(c, argc, argv)) {
  case CONFIG_RUN: return -1;
  case CONFIG_HELP: usage(stdout); return 0;
  case CONFIG_VERSION: printf("otjd %s\n", OTJ_VERSION); return 0;
  default: return EX_USAGE;
  }
}

static int cmd_check_config(int argc, char **argv) {
  int print = 0, n = 0;
  char **args = calloc((size_t)argc + 1, sizeof *args);
  if (!args) return EX_SOFTWARE;
  for (int i = 0; i < argc; i++) {
    if (i > 0 && !strcmp(argv[i], "--print"))
      print = 1;
    else
      args[n++] = argv[i];
  }
  otj_config *c = calloc(1, sizeof *c);
  int rc = c ? load_settings(c, n, args) : EX_SOFTWARE;
  if (rc < 0) {
    if (print) config_print(stdout, c);
    log_event(LOG_INFO, "the settings are good", "config=%s",
              c->config_file[0] ? c->config_file : "none");
    rc = 0;
  }
  free(c);
  free(args);
  return rc;
}

int main(int argc, char **argv) {
  for (size_t i = 0; argc > 1 && i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  return serve(argc, argv);
}

static int serve(int argc, char **argv) {
  otjd *d = &g_d;
  int rc = load_settings(&d->cfg, argc, argv);
  if (rc >= 0) return rc;
  log_set_level((log_level)d->cfg.log_level);
  log_route_lws();
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  if (auth_init() != 0) {
    log_event(LOG_ERROR, "libsodium did not start", NULL);
    return EX_SOFTWARE;
  }
  raise_nofile();
  if (mkdir_p(d->cfg.data_dir) != 0) {
    log_event(LOG_ERROR, "cannot create the data folder", "path=%s error=%s", d->cfg.data_dir,
              strerror(errno));
    return EX_CANTCREAT;
  }
  if ((rc = open_storage(d)) != 0) goto out_store;
  if ((rc = start_redis(d)) != 0) goto out_store;

  d->loop = malloc(sizeof *d->loop);
  if (!d->loop || uv_loop_init(d->loop) != 0) {
    rc = EX_SOFTWARE;
    goto out_redis;
  }
  d->started_ms = uv_now(d->loop);
  uv_signal_init(d->loop, &sig_int);
  uv_signal_init(d->loop, &sig_term);
  uv_signal_init(d->loop, &sig_chld);
  uv_timer_init(d->loop, &shutdown_timer);
  uv_timer_init(d->loop, &redis_retry);
  /* the loop's info lines leave once per turn (log.h) */
  uv_check_init(d->loop, &log_check);
  uv_check_start(&log_check, on_log_check);
  uv_unref((uv_handle_t *)&log_check);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_chld, on_sigchld, SIGCHLD);
  ws_init(d);

  if ((rc = start_lws(d)) != 0) {
    finish_shutdown();
    uv_run(d->loop, UV_RUN_DEFAULT);
    goto out_loop;
  }
  d->redis = rconn_create(d->loop, d->redis_addr, on_redis_state, d);
  if (d->redis) rconn_set_reply_timeout(d->redis, d->cfg.redis_reply_timeout_ms);
  if (d->redis && live_init(d) != 0) {
    rc = EX_SOFTWARE;
    begin_shutdown("cannot start live rooms");
  } else if (!d->redis) {
    log_event(LOG_ERROR, "bad Redis address (want HOST:PORT or /path/to.sock)", "redis=%s",
              d->redis_addr);
    rc = EX_USAGE;
    begin_shutdown("bad configuration");
  } else {
    log_event(LOG_INFO, "serving", "url=%s://%s:%d web=%s version=%s log_level=%s",
              d->cfg.tls_cert[0] ? "https" : "http", d->cfg.listen_addr, d->cfg.listen_port,
              d->cfg.web_root, OTJ_VERSION, log_level_name((log_level)d->cfg.log_level));
    if (d->cfg.metrics_port)
      log_event(LOG_INFO, "serving metrics", "url=http://%s:%d/metrics", d->cfg.metrics_addr,
                d->cfg.metrics_port);
  }
  /* held from here on: what start-up said is out before anything is
   * served (a client that got its first answer may read the log for
   * "serving") */
  log_hold_begin();
  uv_run(d->loop, UV_RUN_DEFAULT);

out_loop:
  log_hold_end();
  live_free(d);
  if (uv_loop_close(d->loop) != 0) {
    /* something still holds the loop; say so rather than hang */
    log_event(LOG_WARN, "the loop still had handles at exit", NULL);
  }
  free(d->loop);
out_redis:
  if (d->redis_child > 0) {
    redischild_stop(d->redis_child);
    d->redis_child = 0;
  }
out_store:
  store_close(d->db_worker);
  store_close(d->db);
  if (d->db_worker) uv_mutex_destroy(&d->db_worker_lock);
  log_event(LOG_INFO, "stopped", "exit=%d", rc);
  return rc;
}
