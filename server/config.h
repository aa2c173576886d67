/*
 * config — otjd's settings: defaults, then environment variables, then
 * command-line flags (a flag wins over its variable). Every limit of
 * DESIGN §6 is a setting with a default here, never a number in the logic.
 */
#ifndef OTJ_CONFIG_H
#define OTJ_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct otj_config {
  char listen_addr[64];      /* --listen ADDR:PORT, OTJ_LISTEN */
  int listen_port;
  char data_dir[512];        /* --data DIR, OTJ_DATA: otj.db, private redis socket */
  char redis[512];           /* --redis HOST:PORT or /path.sock; empty = embedded */
  char redis_server_bin[256];/* OTJ_REDIS_SERVER: the redis-server to start */
  char web_root[512];        /* --web DIR, OTJ_WEB: static files */
  char origins[1024];        /* --origins a,b, OTJ_ORIGINS: other Origins allowed for cookie upgrades */
  char public_url[256];      /* --public-url, OTJ_PUBLIC_URL: base of join links */
  int demo;                  /* --demo, OTJ_DEMO=1 */
  int verbose;               /* -v, OTJ_LOG_LEVEL */

  /* limits (DESIGN §6) */
  uint32_t max_frame;            /* bytes of one websocket message */
  uint32_t max_msgs_per_sec;     /* per connection */
  uint32_t max_user_msgs_per_sec;/* per user, all their connections on this
                                    instance together (token bucket) */
  uint32_t max_send_queue;       /* frames queued for one slow client */
  uint32_t max_send_bytes;       /* bytes queued for one slow client */
  uint32_t max_connections;
  uint32_t max_http_body;        /* bytes of one HTTP request body */
  uint32_t login_per_minute;     /* login attempts per login name from one address per window */
  uint32_t login_per_name;       /* login attempts per login name from all addresses per window */
  uint32_t login_per_address;    /* login attempts from one address per window */
  uint32_t login_global;         /* login attempts in all per window */
  uint32_t login_window_s;       /* seconds a login budget lasts (at most a minute by default) */
  uint32_t login_inflight;       /* password checks running or queued at once */
  uint32_t hello_timeout_s;      /* seconds a new socket may wait before hello */
  uint32_t idle_timeout_s;       /* seconds without any frame before a close */
  uint32_t session_ttl_s;        /* lifetime of a login token */
  uint32_t room_idle_ttl_s;      /* Redis expiry of an idle room */
  uint32_t max_room_learners;    /* learners in one room */
  uint32_t presence_stale_s;     /* an instance silent this long is gone */
  uint32_t max_rooms_per_responsible; /* rooms one responsible has open */
  uint32_t room_log_keep;        /* events a room's log in Redis keeps */
  uint32_t redis_maxmemory_mb;   /* maxmemory of the private redis-server */
  uint32_t db_loop_busy_ms;      /* the loop's longest wait for a SQLite lock */
  uint32_t min_free_mb;          /* free disk below this: /readyz says not ready */
} otj_config;

/* Fills `c` from defaults, the environment and argv. Returns 0 to run,
 * 1 when --help was printed, -1 on a bad flag (message already on stderr). */
int config_load(otj_config *c, int argc, char **argv);

void config_usage(FILE *out);

#endif
