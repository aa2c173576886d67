/*
 * config — otjd's settings, from one table (config.c): each setting has a
 * key (the config file's name for it), a flag (--key with '-' for '_') and
 * an environment variable (OTJ_KEY), a type, a default and one line of
 * help. Values are taken from the defaults, then the config file
 * (--config FILE or OTJ_CONFIG), then the environment, then the flags: a
 * later source wins. --help and `check-config --print` are generated from
 * the same table, so they cannot drift from what is parsed. Every limit of
 * DESIGN §6 is a setting with a default here, never a number in the logic.
 */
#ifndef OTJ_CONFIG_H
#define OTJ_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_SETTINGS 64
#define CONFIG_PATH_MAX     512

/* Where a setting's value came from (for check-config --print). */
typedef enum config_source {
  CONFIG_DEFAULT = 0,
  CONFIG_FILE,
  CONFIG_ENV,
  CONFIG_FLAG
} config_source;

typedef struct otj_config {
  char listen_addr[64]; /* listen = ADDR:PORT */
  int listen_port;
  char data_dir[512];         /* data: otj.db, private redis socket */
  char redis[512];            /* redis: HOST:PORT or /path.sock; empty = embedded */
  char redis_server_bin[256]; /* redis_server: the redis-server to start */
  char web_root[512];         /* web: static files */
  char origins[1024];         /* origins: other Origins allowed for cookie upgrades */
  char trusted_proxies[512];  /* trusted_proxies: peers whose X-Forwarded-For names the client */
  char public_url[256];       /* public_url: base of join links, no trailing '/' */
  int demo;                   /* demo */
  int verbose;                /* verbose (-v): log_level debug unless log_level is set */
  int log_level;              /* log_level: a log_level of log.h */

  /* TLS on the listener (both or neither) */
  char tls_cert[CONFIG_PATH_MAX]; /* tls_cert: PEM certificate (chain) */
  char tls_key[CONFIG_PATH_MAX];  /* tls_key: PEM private key */

  /* who may read /metrics */
  char metrics_addr[64]; /* metrics_listen = ADDR:PORT; "" = none */
  int metrics_port;
  char metrics_token[256]; /* metrics_token: bearer token; "" = none */

  /* limits (DESIGN §6) */
  uint32_t max_frame;             /* bytes of one websocket message */
  uint32_t max_msgs_per_sec;      /* per connection */
  uint32_t max_user_msgs_per_sec; /* per user, all their connections on this
                                     instance together (token bucket) */
  uint32_t max_send_queue;        /* frames queued for one slow client */
  uint32_t max_send_bytes;        /* bytes queued for one slow client */
  uint32_t max_connections;
  uint32_t max_http_body;     /* bytes of one HTTP request body */
  uint32_t max_http_bodies;   /* bytes of all request bodies held at once */
  uint32_t login_per_minute;  /* login attempts per login name from one address per window */
  uint32_t login_per_name;    /* login attempts per login name from all addresses per window */
  uint32_t login_per_address; /* login attempts from one address per window */
  uint32_t login_global;      /* login attempts in all per window */
  uint32_t login_window_s;    /* seconds a login budget lasts (at most a minute by default) */
  uint32_t login_inflight;    /* password checks running or queued at once */
  uint32_t hello_timeout_s;   /* seconds a new socket may wait before hello */
  uint32_t idle_timeout_s;    /* seconds without any frame before a close */
  uint32_t session_ttl_s;     /* lifetime of a login token */
  uint32_t room_idle_ttl_s;   /* Redis expiry of an idle room */
  uint32_t max_room_learners; /* learners in one room */
  uint32_t join_batch_ms;     /* joins to one room within this go to Redis as one */
  uint32_t presence_hold_ms;  /* presence news waits this long for more (live_room.c) */
  uint32_t presence_stale_s;  /* an instance silent this long is gone */
  uint32_t ask_cooldown_s;    /* a learner asks for the same OTJ module again after this */
  uint32_t max_rooms_per_responsible; /* rooms one responsible has open */
  uint32_t room_log_keep;             /* events a room's log in Redis keeps */
  uint32_t redis_reply_timeout_ms;    /* Redis silent this long with replies owed: reconnect */
  uint32_t redis_maxmemory_mb;        /* maxmemory of the private redis-server */
  uint32_t db_loop_busy_ms;           /* the loop's longest wait for a SQLite lock */
  uint32_t min_free_mb;               /* free disk below this: /readyz says not ready */
  uint32_t evidence_max_bytes;        /* bytes of one evidence upload */
  uint32_t redrill_window_days;       /* approvals expiring this soon are due for a re-drill */

  /* where each value came from, by index in the settings table */
  char config_file[CONFIG_PATH_MAX];         /* the file read, "" if none */
  uint8_t source[CONFIG_MAX_SETTINGS];       /* config_source */
  uint32_t source_line[CONFIG_MAX_SETTINGS]; /* CONFIG_FILE: its line */
} otj_config;

/* What config_load found. */
enum {
  CONFIG_RUN = 0,     /* settings loaded and valid */
  CONFIG_HELP = 1,    /* --help was asked for (nothing printed yet) */
  CONFIG_VERSION = 2, /* --version was asked for (nothing printed yet) */
  CONFIG_BAD = -1     /* a bad flag, key or value: message already on stderr */
};

/* Fills `c` from defaults, the config file, the environment and argv
 * (argv[0] is skipped; getopt_long syntax), then checks the settings
 * together (TLS files, ports). Returns one of the CONFIG_ codes above. */
int config_load(otj_config *c, int argc, char **argv);

/* Prints the options: every setting with its flag, variable, file key and
 * default, generated from the settings table. */
void config_usage(FILE *out);

/* Prints every setting as `key = value` with a comment saying where the
 * value came from (default, file:LINE, env OTJ_X, flag --x); secrets are
 * printed as "(set)". Secrets aside, the output is itself a valid config
 * file. */
void config_print(FILE *out, const otj_config *c);

/* 1 when users reach this server over https: TLS is on, or the public URL
 * is https (TLS ended by a proxy in front). */
int config_https(const otj_config *c);

/* An IP address as text, of `len` bytes (blanks around it allowed), written
 * in one canonical form to `out` ("::ffff:1.2.3.4" becomes "1.2.3.4"), so
 * that two spellings of one address compare equal. 0, or -1 when `in` is
 * not an address. */
#define CONFIG_ADDR_MAX 64
int config_addr_normal(const char *in, size_t len, char *out, size_t cap);

#endif
