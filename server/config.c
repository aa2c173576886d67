/*
 * config — defaults, environment, flags (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#ifndef OTJ_WEB_DEFAULT
#define OTJ_WEB_DEFAULT "web-client"
#endif

void config_usage(FILE *out) {
  fprintf(out,
          "Usage: otjd [options]\n"
          "OTJ live: realtime On-the-Job training server.\n\n"
          "  --listen ADDR:PORT  address to serve HTTP and websockets on "
          "(OTJ_LISTEN, default 0.0.0.0:8080)\n"
          "  --data DIR          folder for otj.db and the private Redis socket "
          "(OTJ_DATA, default ./data)\n"
          "  --redis ADDR        use this Redis: HOST:PORT or /path/to.sock "
          "(OTJ_REDIS); without it otjd\n"
          "                      starts a private redis-server of its own\n"
          "  --demo              load the demo organisation into an empty "
          "database (OTJ_DEMO=1)\n"
          "  --web DIR           folder of the web client (OTJ_WEB)\n"
          "  --origins LIST      comma-separated Origins allowed to open a "
          "websocket with the session\n"
          "                      cookie (OTJ_ORIGINS); the server's own "
          "host is always allowed\n"
          "  --public-url URL    base of the join links in QR codes, e.g. "
          "https://otj.example.org\n"
          "                      (OTJ_PUBLIC_URL; default: the Host the "
          "browser used)\n"
          "  -v, --verbose       more logging (OTJ_VERBOSE=1)\n"
          "  -h, --help          this text\n\n"
          "Limits (environment only): OTJ_MAX_FRAME (65536), "
          "OTJ_MAX_MSGS_PER_SEC (50),\n"
          "OTJ_MAX_SEND_QUEUE (1024 frames), OTJ_MAX_CONNECTIONS (120000), "
          "OTJ_MAX_HTTP_BODY (1048576),\n"
          "OTJ_LOGIN_PER_MINUTE (10 attempts per login name and address),\n"
          "OTJ_LOGIN_PER_NAME (50), OTJ_LOGIN_PER_ADDRESS (30), OTJ_LOGIN_GLOBAL (500),\n"
          "OTJ_LOGIN_WINDOW (60 s: how long a login budget lasts), OTJ_HELLO_TIMEOUT (10 s), "
          "OTJ_IDLE_TIMEOUT (120 s),\n"
          "OTJ_SESSION_TTL (604800 s), OTJ_ROOM_IDLE_TTL (7200 s),\n"
          "OTJ_MAX_ROOM_LEARNERS (200), OTJ_MAX_ROOMS_PER_RESPONSIBLE (20), "
          "OTJ_PRESENCE_STALE (30 s),\n"
          "OTJ_MAX_SEND_BYTES (4 MiB), OTJ_MAX_USER_MSGS_PER_SEC (messages per "
          "second of one user's\n"
          "connections together on one instance; default OTJ_MAX_MSGS_PER_SEC),\n"
          "OTJ_ROOM_LOG_KEEP (1000 events a room keeps for sync),\n"
          "OTJ_REDIS_MAXMEMORY_MB (1024: the private redis-server's maxmemory, "
          "with the noeviction\n"
          "policy: a write it cannot take is refused with 'unavailable', no "
          "room is evicted),\n"
          "OTJ_DB_LOOP_BUSY_MS (20 ms), OTJ_MIN_FREE_MB (64).\n"
          "Exit codes: 0 stopped cleanly, 64 bad usage, 69 Redis unavailable, "
          "70 internal error,\n"
          "73 data folder or database unusable.\n");
}

static int parse_listen(otj_config *c, const char *v) {
  const char *colon = strrchr(v, ':');
  if (!colon || colon == v || (size_t)(colon - v) >= sizeof c->listen_addr) {
    fprintf(stderr, "otjd: --listen wants ADDR:PORT, got '%s'\n", v);
    return -1;
  }
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || *end || port < 1 || port > 65535) {
    fprintf(stderr, "otjd: --listen port must be 1..65535, got '%s'\n",
            colon + 1);
    return -1;
  }
  memcpy(c->listen_addr, v, (size_t)(colon - v));
  c->listen_addr[colon - v] = '\0';
  c->listen_port = (int)port;
  return 0;
}

static int set_str(char *dst, size_t cap, const char *v, const char *what) {
  if (strlen(v) >= cap) {
    fprintf(stderr, "otjd: %s is too long\n", what);
    return -1;
  }
  strcpy(dst, v);
  return 0;
}

static void env_u32(uint32_t *dst, const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return;
  char *end;
  unsigned long n = strtoul(v, &end, 10);
  if (*end == '\0' && n > 0 && n <= UINT32_MAX) *dst = (uint32_t)n;
  else fprintf(stderr, "otjd: ignoring %s=%s (want a positive number)\n", name, v);
}

static int truthy(const char *v) {
  return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

int config_load(otj_config *c, int argc, char **argv) {
  memset(c, 0, sizeof *c);
  strcpy(c->listen_addr, "0.0.0.0");
  c->listen_port = 8080;
  strcpy(c->data_dir, "data");
  strcpy(c->redis_server_bin, "redis-server");
  set_str(c->web_root, sizeof c->web_root, OTJ_WEB_DEFAULT, "web root");
  c->max_frame = 64 * 1024;
  c->max_msgs_per_sec = 50;
  c->max_send_queue = 1024;
  c->max_send_bytes = 4 * 1024 * 1024;
  c->max_connections = 120000;
  c->max_http_body = 1024 * 1024;
  c->login_per_minute = 10;
  c->login_per_name = 50;
  c->login_per_address = 30;
  c->login_global = 500;
  c->login_window_s = 60;
  c->login_inflight = 32;
  c->hello_timeout_s = 10;
  c->idle_timeout_s = 120;
  c->session_ttl_s = 7 * 24 * 3600;
  c->room_idle_ttl_s = 2 * 3600;
  c->max_room_learners = 200;
  c->presence_stale_s = 30;
  c->max_rooms_per_responsible = 20;
  c->room_log_keep = 1000;
  c->redis_maxmemory_mb = 1024;
  c->db_loop_busy_ms = 20;
  c->min_free_mb = 64;

  const char *v;
  if ((v = getenv("OTJ_LISTEN")) && *v && parse_listen(c, v)) return -1;
  if ((v = getenv("OTJ_DATA")) && *v && set_str(c->data_dir, sizeof c->data_dir, v, "OTJ_DATA")) return -1;
  if ((v = getenv("OTJ_REDIS")) && *v && set_str(c->redis, sizeof c->redis, v, "OTJ_REDIS")) return -1;
  if ((v = getenv("OTJ_REDIS_SERVER")) && *v && set_str(c->redis_server_bin, sizeof c->redis_server_bin, v, "OTJ_REDIS_SERVER")) return -1;
  if ((v = getenv("OTJ_WEB")) && *v && set_str(c->web_root, sizeof c->web_root, v, "OTJ_WEB")) return -1;
  if ((v = getenv("OTJ_PUBLIC_URL")) && *v && set_str(c->public_url, sizeof c->public_url, v, "OTJ_PUBLIC_URL")) return -1;
  if ((v = getenv("OTJ_ORIGINS")) && *v && set_str(c->origins, sizeof c->origins, v, "OTJ_ORIGINS")) return -1;
  c->demo = truthy(getenv("OTJ_DEMO"));
  c->verbose = truthy(getenv("OTJ_VERBOSE"));
  env_u32(&c->max_frame, "OTJ_MAX_FRAME");
  env_u32(&c->max_msgs_per_sec, "OTJ_MAX_MSGS_PER_SEC");
  c->max_user_msgs_per_sec = c->max_msgs_per_sec; /* unless set on its own */
  env_u32(&c->max_user_msgs_per_sec, "OTJ_MAX_USER_MSGS_PER_SEC");
  env_u32(&c->max_send_queue, "OTJ_MAX_SEND_QUEUE");
  env_u32(&c->max_send_bytes, "OTJ_MAX_SEND_BYTES");
  env_u32(&c->max_connections, "OTJ_MAX_CONNECTIONS");
  env_u32(&c->max_http_body, "OTJ_MAX_HTTP_BODY");
  env_u32(&c->login_per_minute, "OTJ_LOGIN_PER_MINUTE");
  env_u32(&c->login_per_name, "OTJ_LOGIN_PER_NAME");
  env_u32(&c->login_per_address, "OTJ_LOGIN_PER_ADDRESS");
  env_u32(&c->login_global, "OTJ_LOGIN_GLOBAL");
  env_u32(&c->login_window_s, "OTJ_LOGIN_WINDOW");
  env_u32(&c->login_inflight, "OTJ_LOGIN_INFLIGHT");
  env_u32(&c->hello_timeout_s, "OTJ_HELLO_TIMEOUT");
  env_u32(&c->idle_timeout_s, "OTJ_IDLE_TIMEOUT");
  env_u32(&c->session_ttl_s, "OTJ_SESSION_TTL");
  env_u32(&c->room_idle_ttl_s, "OTJ_ROOM_IDLE_TTL");
  env_u32(&c->max_room_learners, "OTJ_MAX_ROOM_LEARNERS");
  env_u32(&c->presence_stale_s, "OTJ_PRESENCE_STALE");
  env_u32(&c->max_rooms_per_responsible, "OTJ_MAX_ROOMS_PER_RESPONSIBLE");
  env_u32(&c->room_log_keep, "OTJ_ROOM_LOG_KEEP");
  env_u32(&c->redis_maxmemory_mb, "OTJ_REDIS_MAXMEMORY_MB");
  env_u32(&c->db_loop_busy_ms, "OTJ_DB_LOOP_BUSY_MS");
  env_u32(&c->min_free_mb, "OTJ_MIN_FREE_MB");

  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'l'},
      {"data", required_argument, NULL, 'd'},
      {"redis", required_argument, NULL, 'r'},
      {"web", required_argument, NULL, 'w'},
      {"origins", required_argument, NULL, 'o'},
      {"public-url", required_argument, NULL, 'p'},
      {"demo", no_argument, NULL, 'D'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
    switch (ch) {
    case 'l': if (parse_listen(c, optarg)) return -1; break;
    case 'd': if (set_str(c->data_dir, sizeof c->data_dir, optarg, "--data")) return -1; break;
    case 'r': if (set_str(c->redis, sizeof c->redis, optarg, "--redis")) return -1; break;
    case 'w': if (set_str(c->web_root, sizeof c->web_root, optarg, "--web")) return -1; break;
    case 'o': if (set_str(c->origins, sizeof c->origins, optarg, "--origins")) return -1; break;
    case 'p': if (set_str(c->public_url, sizeof c->public_url, optarg, "--public-url")) return -1; break;
    case 'D': c->demo = 1; break;
    case 'v': c->verbose = 1; break;
    case 'h': config_usage(stdout); return 1;
    default: config_usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "otjd: unexpected argument '%s'\n", argv[optind]);
    config_usage(stderr);
    return -1;
  }
  return 0;
}
