/*
 * config — one table of settings; the file, the environment and the flags
 * are read through it (see config.h).
 *
 * A setting is named once, by its key: the file says `max_frame = 65536`,
 * the environment OTJ_MAX_FRAME=65536, the command line --max-frame 65536.
 * Adding a setting is adding one row to `settings` (and its field in
 * otj_config): parsing, --help and check-config --print follow.
 */
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef OTJ_WEB_DEFAULT
#define OTJ_WEB_DEFAULT "web-client"
#endif

#define CONFIG_LINE_MAX          4096 /* bytes of one line of the config file */
#define CONFIG_NAME_MAX          64   /* bytes of a flag or variable name */
#define CONFIG_ERR_MAX           512
#define CONFIG_METRICS_TOKEN_MIN 16 /* characters of a metrics token at least */

typedef enum setting_type {
  SET_STR,   /* text, at most `cap - 1` bytes */
  SET_U32,   /* a positive whole number */
  SET_BOOL,  /* true/false, yes/no, on/off, 1/0; a bare flag means true */
  SET_ADDR,  /* ADDR:PORT into the char[64] at `off` and the int at `off2` */
  SET_URL,   /* http:// or https:// URL, stored without a trailing '/' */
  SET_LEVEL, /* debug, info, warn or error into the int at `off` (log.h) */
} setting_type;

typedef struct setting {
  const char *key;
  setting_type type;
  size_t off, off2, cap;
  const char *def;  /* the default as text; "" = empty/none */
  const char *arg;  /* the value's name in --help */
  const char *help; /* one line */
  int secret;       /* printed as "(set)" */
} setting;

#define F(field) offsetof(otj_config, field)
#define S(field) F(field), 0, sizeof(((otj_config *)0)->field)
#define U(field) F(field), 0, 0

static const setting settings[] = {
    {"listen", SET_ADDR, F(listen_addr), F(listen_port), 0, "0.0.0.0:8080", "ADDR:PORT",
     "address to serve HTTP(S) and websockets on", 0},
    {"data", SET_STR, S(data_dir), "data", "DIR", "folder of otj.db and the private Redis socket",
     0},
    {"redis", SET_STR, S(redis), "", "ADDR",
     "Redis to use, HOST:PORT or /path/to.sock; empty: start a private redis-server", 0},
    {"redis_server", SET_STR, S(redis_server_bin), "redis-server", "PATH",
     "the redis-server program of the private Redis", 0},
    {"web", SET_STR, S(web_root), OTJ_WEB_DEFAULT, "DIR", "folder of the web client", 0},
    {"trusted_proxies", SET_STR, S(trusted_proxies), "", "LIST",
     "comma-separated addresses of reverse proxies (nginx: 127.0.0.1): a request from one of them "
     "is counted for the client address the proxy put last in X-Forwarded-For",
     0},
    {"origins", SET_STR, S(origins), "", "LIST",
     "comma-separated other Origins allowed to use the session cookie (own host always is)", 0},
    {"public_url", SET_URL, S(public_url), "", "URL",
     "base of join links and QR codes, e.g. https://otj.example.org; "
     "empty: the Host the browser used, https when TLS is on",
     0},
    {"demo", SET_BOOL, U(demo), "false", "BOOL",
     "load the demo organisation into an empty database", 0},
    {"verbose", SET_BOOL, U(verbose), "false", "BOOL",
     "log at debug unless log_level is set (also -v)", 0},
    {"log_level", SET_LEVEL, U(log_level), "info", "LEVEL",
     "the least level logged: debug, info, warn or error", 0},
    {"tls_cert", SET_STR, S(tls_cert), "", "FILE",
     "PEM certificate (with its chain): serve https and wss (needs tls_key)", 0},
    {"tls_key", SET_STR, S(tls_key), "", "FILE", "PEM private key of tls_cert", 0},
    {"metrics_listen", SET_ADDR, F(metrics_addr), F(metrics_port), 0, "", "ADDR:PORT",
     "serve /metrics, /healthz and /readyz (plain http) here too", 0},
    {"metrics_token", SET_STR, S(metrics_token), "", "TOKEN",
     "bearer token that opens /metrics on the main listener; without it and "
     "metrics_listen, /metrics is 404 there",
     1},
    {"max_frame", SET_U32, U(max_frame), "65536", "BYTES", "bytes of one websocket message", 0},
    {"max_msgs_per_sec", SET_U32, U(max_msgs_per_sec), "50", "N",
     "websocket messages per second of one connection", 0},
    {"max_user_msgs_per_sec", SET_U32, U(max_user_msgs_per_sec), "", "N",
     "messages per second of one user's connections together on one instance "
     "(default: max_msgs_per_sec)",
     0},
    {"max_send_queue", SET_U32, U(max_send_queue), "1024", "FRAMES",
     "frames queued for one slow client before it is dropped", 0},
    {"max_send_bytes", SET_U32, U(max_send_bytes), "4194304", "BYTES",
     "bytes queued for one slow client before it is dropped", 0},
    {"max_connections", SET_U32, U(max_connections), "120000", "N",
     "websocket connections at once (kept below the descriptor limit)", 0},
    {"max_http_bodies", SET_U32, U(max_http_bodies), "268435456", "BYTES",
     "bytes of HTTP request bodies held at once, all connections together (uploads included): "
     "a request whose body would go over it is answered 503 with Retry-After",
     0},
    {"max_http_body", SET_U32, U(max_http_body), "1048576", "BYTES",
     "bytes of one HTTP request body", 0},
    {"login_per_minute", SET_U32, U(login_per_minute), "10", "N",
     "login attempts at one login name from one address per window", 0},
    {"login_per_name", SET_U32, U(login_per_name), "50", "N",
     "login attempts at one login name from all addresses per window", 0},
    {"login_per_address", SET_U32, U(login_per_address), "30", "N",
     "failed logins from one address per window", 0},
    {"login_global", SET_U32, U(login_global), "500", "N", "failed logins in all per window", 0},
    {"login_window", SET_U32, U(login_window_s), "60", "SECONDS", "how long a login budget lasts",
     0},
    {"login_inflight", SET_U32, U(login_inflight), "32", "N",
     "password checks running or queued at once", 0},
    {"hello_timeout", SET_U32, U(hello_timeout_s), "10", "SECONDS",
     "time a new websocket may take to say hello", 0},
    {"idle_timeout", SET_U32, U(idle_timeout_s), "120", "SECONDS",
     "a websocket silent this long is closed", 0},
    {"session_ttl", SET_U32, U(session_ttl_s), "604800", "SECONDS", "lifetime of a login", 0},
    {"room_idle_ttl", SET_U32, U(room_idle_ttl_s), "7200", "SECONDS",
     "an idle live room expires from Redis after this", 0},
    {"max_room_learners", SET_U32, U(max_room_learners), "200", "N", "learners in one room", 0},
    {"max_rooms_per_responsible", SET_U32, U(max_rooms_per_responsible), "20", "N",
     "rooms one responsible has open at once", 0},
    {"join_batch", SET_U32, U(join_batch_ms), "20", "MS",
     "joins that reach one room within this of each other are recorded as one (0: each alone)", 0},
    {"presence_hold", SET_U32, U(presence_hold_ms), "250", "MS",
     "news of who came or went waits this long for more before it goes to a room (0: at once)", 0},
    {"presence_stale", SET_U32, U(presence_stale_s), "30", "SECONDS",
     "an otjd instance silent this long is taken for gone", 0},
    {"ask_cooldown", SET_U32, U(ask_cooldown_s), "600", "SECONDS",
     "a learner may ask for the same OTJ module again after this long", 0},
    {"room_log_keep", SET_U32, U(room_log_keep), "1000", "N",
     "events a room's log in Redis keeps for resync", 0},
    {"redis_reply_timeout", SET_U32, U(redis_reply_timeout_ms), "5000", "MS",
     "replies owed and nothing from Redis this long: the connection is dropped and made again "
     "(0: wait for ever)",
     0},
    {"redis_maxmemory_mb", SET_U32, U(redis_maxmemory_mb), "1024", "MB",
     "maxmemory of the private redis-server (noeviction: a full Redis refuses writes)", 0},
    {"db_loop_busy_ms", SET_U32, U(db_loop_busy_ms), "20", "MS",
     "the event loop's longest wait for a SQLite lock", 0},
    {"min_free_mb", SET_U32, U(min_free_mb), "64", "MB",
     "free disk of the data folder below this: /readyz says not ready", 0},
    {"evidence_max_bytes", SET_U32, U(evidence_max_bytes), "5242880", "BYTES",
     "bytes of one evidence upload (a photo or file attached to a mark)", 0},
    {"redrill_window_days", SET_U32, U(redrill_window_days), "30", "DAYS",
     "an approval that expires within this many days is due for a re-drill", 0},
};

#undef F
#undef S
#undef U

#define NSETTINGS (sizeof settings / sizeof settings[0])
_Static_assert(sizeof settings / sizeof settings[0] <= CONFIG_MAX_SETTINGS,
               "raise CONFIG_MAX_SETTINGS");

/* A sentence about a bad setting, logged at error (log.h); the log level
 * is not known yet, and errors are always shown. */
__attribute__((format(printf, 1, 2))) static void config_error(const char *fmt, ...) {
  char msg[CONFIG_ERR_MAX + CONFIG_LINE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_event(LOG_ERROR, msg, NULL);
}

/* ---- names --------------------------------------------------------------- */

static void flag_name(const setting *s, char *out, size_t cap) {
  snprintf(out, cap, "%s", s->key);
  for (char *p = out; *p; p++)
    if (*p == '_') *p = '-';
}

static void env_name(const setting *s, char *out, size_t cap) {
  snprintf(out, cap, "OTJ_%s", s->key);
  for (char *p = out; *p; p++) *p = (char)toupper((unsigned char)*p);
}

/* The setting of a file key ('-' and '_' alike), or NULL. */
static const setting *setting_of_key(const char *key) {
  for (size_t i = 0; i < NSETTINGS; i++) {
    const char *a = settings[i].key, *b = key;
    while (*a && (*a == *b || (*a == '_' && *b == '-'))) a++, b++;
    if (!*a && !*b) return &settings[i];
  }
  return NULL;
}

/* ---- values -------------------------------------------------------------- */

static int parse_bool(const char *v, int *out) {
  static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(v, yes[i])) return *out = 1, 0;
    if (!strcasecmp(v, no[i])) return *out = 0, 0;
  }
  return -1;
}

/* Sets `s` in `c` from the text `v`. Returns 0, or -1 with a sentence in err. */
static int setting_set(otj_config *c, const setting *s, const char *v, char *err, size_t errcap) {
  char *base = (char *)c;
  switch (s->type) {
  case SET_STR:
    if (strlen(v) >= s->cap) {
      snprintf(err, errcap, "is too long (at most %zu bytes)", s->cap - 1);
      return -1;
    }
    strcpy(base + s->off, v);
    return 0;
  case SET_URL: {
    size_t n = strlen(v);
    while (n && v[n - 1] == '/') n--;
    if (n && strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
      snprintf(err, errcap, "wants a URL starting with https:// or http://, got '%s'", v);
      return -1;
    }
    if (n >= s->cap) {
      snprintf(err, errcap, "is too long (at most %zu bytes)", s->cap - 1);
      return -1;
    }
    memcpy(base + s->off, v, n);
    base[s->off + n] = '\0';
    return 0;
  }
  case SET_U32: {
    if (!*v) { /* back to the default */
      *(uint32_t *)(void *)(base + s->off) = (uint32_t)strtoul(s->def, NULL, 10);
      return 0;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || !isdigit((unsigned char)v[0]) || n == 0 || n > UINT32_MAX) {
      snprintf(err, errcap, "wants a whole number from 1 to %u, got '%s'", UINT32_MAX, v);
      return -1;
    }
    *(uint32_t *)(void *)(base + s->off) = (uint32_t)n;
    return 0;
  }
  case SET_BOOL:
    if (parse_bool(v, (int *)(void *)(base + s->off)) != 0) {
      snprintf(err, errcap, "wants true or false, got '%s'", v);
      return -1;
    }
    return 0;
  case SET_LEVEL: {
    log_level l;
    if (log_level_parse(v, &l) != 0) {
      snprintf(err, errcap, "wants debug, info, warn or error, got '%s'", v);
      return -1;
    }
    *(int *)(void *)(base + s->off) = (int)l;
    return 0;
  }
  case SET_ADDR: {
    char *host = base + s->off;
    int *port = (int *)(void *)(base + s->off2);
    if (!*v) {
      host[0] = '\0';
      *port = 0;
      return 0;
    }
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= 64) {
      snprintf(err, errcap, "wants ADDR:PORT, got '%s'", v);
      return -1;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || p < 1 || p > 65535) {
      snprintf(err, errcap, "wants a port from 1 to 65535, got '%s'", colon + 1);
      return -1;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    *port = (int)p;
    return 0;
  }
  }
  return -1;
}

/* The value of `s` in `c` as text, for --print. */
static void setting_text(const otj_config *c, const setting *s, char *out, size_t cap) {
  const char *base = (const char *)c;
  switch (s->type) {
  case SET_STR:
  case SET_URL: snprintf(out, cap, "%s", base + s->off); break;
  case SET_U32: snprintf(out, cap, "%u", *(const uint32_t *)(const void *)(base + s->off)); break;
  case SET_BOOL:
    snprintf(out, cap, "%s", *(const int *)(const void *)(base + s->off) ? "true" : "false");
    break;
  case SET_LEVEL:
    snprintf(out, cap, "%s",
             log_level_name((log_level) * (const int *)(const void *)(base + s->off)));
    break;
  case SET_ADDR: {
    int port = *(const int *)(const void *)(base + s->off2);
    if (port)
      snprintf(out, cap, "%s:%d", base + s->off, port);
    else
      snprintf(out, cap, "%s", "");
    break;
  }
  }
}

/* ---- sources --------------------------------------------------------------- */

static void trim(char **start) {
  char *p = *start;
  while (*p == ' ' || *p == '\t') p++;
  size_t n = strlen(p);
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
    p[--n] = '\0';
  *start = p;
}

/* Reads `key = value` lines. A line starting with '#' is a comment, and so
 * is the rest of a line after a blank and '#'; a value in double quotes is
 * taken as it is (it may hold " #"). Returns 0, or -1 with the message on
 * stderr. */
static int load_file(otj_config *c, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    config_error("cannot read the config file %s: %s", path, strerror(errno));
    return -1;
  }
  snprintf(c->config_file, sizeof c->config_file, "%s", path);
  char line[CONFIG_LINE_MAX], err[CONFIG_ERR_MAX];
  uint32_t lineno = 0;
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      config_error("%s:%u: the line is longer than %d bytes", path, lineno, CONFIG_LINE_MAX - 2);
      rc = -1;
      break;
    }
    char *p = line;
    trim(&p);
    if (!*p || *p == '#') continue;
    char *eq = strchr(p, '=');
    if (!eq) {
      config_error("%s:%u: expected 'key = value', got '%s'", path, lineno, p);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *key = p, *val = eq + 1;
    trim(&key);
    trim(&val);
    if (val[0] == '"') { /* "quoted": taken as it is, up to the closing quote */
      char *close = strchr(val + 1, '"');
      if (!close) {
        config_error("%s:%u: the value of '%s' has no closing quote", path, lineno, key);
        rc = -1;
        break;
      }
      *close = '\0';
      val++;
    } else { /* a comment may follow the value after a blank */
      for (char *h = val; (h = strchr(h, '#')) != NULL; h++) {
        if (h > val && (h[-1] == ' ' || h[-1] == '\t')) {
          *h = '\0';
          trim(&val);
          break;
        }
      }
    }
    const setting *s = setting_of_key(key);
    if (!s) {
      config_error("%s:%u: unknown setting '%s' (otjd --help lists them)", path, lineno, key);
      rc = -1;
      break;
    }
    if (setting_set(c, s, val, err, sizeof err) != 0) {
      config_error("%s:%u: %s %s", path, lineno, s->key, err);
      rc = -1;
      break;
    }
    c->source[s - settings] = CONFIG_FILE;
    c->source_line[s - settings] = lineno;
  }
  if (rc == 0 && ferror(f)) {
    config_error("cannot read the config file %s: %s", path, strerror(errno));
    rc = -1;
  }
  fclose(f);
  return rc;
}

static int load_env(otj_config *c) {
  char name[CONFIG_NAME_MAX], err[CONFIG_ERR_MAX];
  for (size_t i = 0; i < NSETTINGS; i++) {
    env_name(&settings[i], name, sizeof name);
    const char *v = getenv(name);
    if (!v || !*v) continue; /* an empty variable is an unset one */
    if (setting_set(c, &settings[i], v, err, sizeof err) != 0) {
      config_error("environment %s %s", name, err);
      return -1;
    }
    c->source[i] = CONFIG_ENV;
  }
  return 0;
}

static void set_defaults(otj_config *c) {
  char err[CONFIG_ERR_MAX];
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NSETTINGS; i++) {
    if (setting_set(c, &settings[i], settings[i].def, err, sizeof err) != 0) {
      /* a default that does not parse is a bug in the table */
      config_error("bad default of %s: %s", settings[i].key, err);
      abort();
    }
  }
}

int config_addr_normal(const char *in, size_t len, char *out, size_t cap) {
  char s[CONFIG_ADDR_MAX];
  while (len && isspace((unsigned char)*in)) in++, len--;
  while (len && isspace((unsigned char)in[len - 1])) len--;
  if (len == 0 || len >= sizeof s) return -1;
  memcpy(s, in, len);
  s[len] = '\0';
  unsigned char b[16];
  if (inet_pton(AF_INET, s, b) == 1) return inet_ntop(AF_INET, b, out, (socklen_t)cap) ? 0 : -1;
  if (inet_pton(AF_INET6, s, b) != 1) return -1;
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!memcmp(b, v4mapped, sizeof v4mapped))
    return inet_ntop(AF_INET, b + 12, out, (socklen_t)cap) ? 0 : -1;
  return inet_ntop(AF_INET6, b, out, (socklen_t)cap) ? 0 : -1;
}

/* The settings together: what no single value can say. Returns 0, or -1
 * with the message on stderr. */
static int check_all(otj_config *c) {
  if (!c->max_user_msgs_per_sec) c->max_user_msgs_per_sec = c->max_msgs_per_sec;
  if (c->verbose && c->source[setting_of_key("log_level") - settings] == CONFIG_DEFAULT)
    c->log_level = LOG_DEBUG;
  if (!c->tls_cert[0] != !c->tls_key[0]) {
    config_error("tls_cert and tls_key go together: set both or neither");
    return -1;
  }
  const char *files[2] = {c->tls_cert, c->tls_key};
  for (int i = 0; i < 2; i++) {
    if (files[i][0] && access(files[i], R_OK) != 0) {
      config_error("%s %s cannot be read: %s", i ? "tls_key" : "tls_cert", files[i],
                   strerror(errno));
      return -1;
    }
  }
  if (c->metrics_port && c->metrics_port == c->listen_port) {
    config_error("metrics_listen must use another port than listen (%d)", c->listen_port);
    return -1;
  }
  for (const char *p = c->trusted_proxies; *p;) {
    size_t n = strcspn(p, ",");
    char one[CONFIG_ADDR_MAX];
    if (config_addr_normal(p, n, one, sizeof one) != 0) {
      config_error("trusted_proxies: '%.*s' is not an IP address (want e.g. 127.0.0.1,::1)", (int)n,
                   p);
      return -1;
    }
    p += n;
    if (*p == ',') p++;
  }
  if (c->max_http_bodies <= c->max_http_body || c->max_http_bodies <= c->evidence_max_bytes) {
    /* else a request within its own limit could never be served */
    config_error("max_http_bodies (%u) must be more than max_http_body (%u) and "
                 "evidence_max_bytes (%u)",
                 c->max_http_bodies, c->max_http_body, c->evidence_max_bytes);
    return -1;
  }
  if (c->metrics_token[0] && strlen(c->metrics_token) < CONFIG_METRICS_TOKEN_MIN) {
    config_error("metrics_token must be at least %d characters long", CONFIG_METRICS_TOKEN_MIN);
    return -1;
  }
  return 0;
}

/* ---- flags ------------------------------------------------------------------ */

enum { OPT_CONFIG = 1000, OPT_VERSION, OPT_SETTING };

typedef struct flag_value {
  const setting *s;
  const char *v;
} flag_value;

int config_load(otj_config *c, int argc, char **argv) {
  static char names[NSETTINGS][CONFIG_NAME_MAX];
  static struct option opts[NSETTINGS + 4];
  size_t n = 0;
  for (size_t i = 0; i < NSETTINGS; i++, n++) {
    flag_name(&settings[i], names[i], sizeof names[i]);
    opts[n] = (struct option){names[i],
                              settings[i].type == SET_BOOL ? optional_argument : required_argument,
                              NULL, OPT_SETTING + (int)i};
  }
  opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
  opts[n++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
  opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
  opts[n] = (struct option){NULL, 0, NULL, 0};

  flag_value *flags = calloc((size_t)argc + 1, sizeof *flags);
  if (!flags) return CONFIG_BAD;
  size_t nflags = 0;
  const char *config_path = getenv("OTJ_CONFIG");
  int rc = CONFIG_RUN, ch;
  optind = 1;
  opterr = 0; /* getopt's own message would not be logfmt */
  while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
    if (ch == 'h') {
      rc = CONFIG_HELP;
    } else if (ch == OPT_VERSION) {
      if (rc == CONFIG_RUN) rc = CONFIG_VERSION;
    } else if (ch == OPT_CONFIG) {
      config_path = optarg;
    } else if (ch == 'v') {
      flags[nflags++] = (flag_value){setting_of_key("verbose"), "true"};
    } else if (ch >= OPT_SETTING && ch < OPT_SETTING + (int)NSETTINGS) {
      const setting *s = &settings[ch - OPT_SETTING];
      flags[nflags++] = (flag_value){s, optarg ? optarg : "true"};
    } else {
      config_error("unknown option or missing value: '%s' (see otjd --help)",
                   argv[optind - 1 > 0 ? optind - 1 : 0]);
      free(flags);
      return CONFIG_BAD;
    }
  }
  if (optind < argc) {
    config_error("unexpected argument '%s' (see otjd --help)", argv[optind]);
    free(flags);
    return CONFIG_BAD;
  }
  if (rc != CONFIG_RUN) {
    free(flags);
    return rc;
  }

  set_defaults(c);
  if ((config_path && *config_path && load_file(c, config_path) != 0) || load_env(c) != 0) {
    free(flags);
    return CONFIG_BAD;
  }
  char err[CONFIG_ERR_MAX], name[CONFIG_NAME_MAX];
  for (size_t i = 0; i < nflags; i++) {
    const setting *s = flags[i].s;
    if (setting_set(c, s, flags[i].v, err, sizeof err) != 0) {
      flag_name(s, name, sizeof name);
      config_error("--%s %s", name, err);
      free(flags);
      return CONFIG_BAD;
    }
    c->source[s - settings] = CONFIG_FLAG;
  }
  free(flags);
  return check_all(c) == 0 ? CONFIG_RUN : CONFIG_BAD;
}

/* ---- help and print ----------------------------------------------------------- */

void config_usage(FILE *out) {
  char flag[CONFIG_NAME_MAX], env[CONFIG_NAME_MAX], left[CONFIG_NAME_MAX * 2];
  fprintf(out, "Settings (a flag wins over its variable, a variable over the config file,\n"
               "the file over the default; the file says `key = value`, # starts a comment):\n\n"
               "  --config FILE                  read settings from FILE (OTJ_CONFIG)\n");
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    flag_name(s, flag, sizeof flag);
    env_name(s, env, sizeof env);
    if (s->type == SET_BOOL)
      snprintf(left, sizeof left, "--%s[=%s]", flag, s->arg);
    else
      snprintf(left, sizeof left, "--%s %s", flag, s->arg);
    fprintf(out, "  %-30s %s\n", left, s->help);
    fprintf(out, "  %-30s default %s; %s; file key %s\n", "",
            s->def[0]            ? s->def
            : s->type == SET_U32 ? "(see above)"
                                 : "(none)",
            env, s->key);
  }
  fprintf(out, "\n  -v                             same as --verbose\n"
               "  --version                      print the version\n"
               "  -h, --help                     this text\n");
}

void config_print(FILE *out, const otj_config *c) {
  char val[1200], where[CONFIG_PATH_MAX + 64], name[CONFIG_NAME_MAX];
  for (size_t i = 0; i < NSETTINGS; i++) {
    const setting *s = &settings[i];
    setting_text(c, s, val, sizeof val);
    if (s->secret && val[0])
      snprintf(val, sizeof val, "%s", "(set)");
    else if (strchr(val, '#')) {
      size_t n = strnlen(val, sizeof val - 3);
      memmove(val + 1, val, n);
      val[0] = '"';
      val[n + 1] = '"';
      val[n + 2] = '\0';
    }
    switch ((config_source)c->source[i]) {
    case CONFIG_FILE:
      snprintf(where, sizeof where, "file %s:%u", c->config_file, c->source_line[i]);
      break;
    case CONFIG_ENV:
      env_name(s, name, sizeof name);
      snprintf(where, sizeof where, "env %s", name);
      break;
    case CONFIG_FLAG:
      flag_name(s, name, sizeof name);
      snprintf(where, sizeof where, "flag --%s", name);
      break;
    default: snprintf(where, sizeof where, "default");
    }
    fprintf(out, "%-26s = %-24s # %s\n", s->key, val, where);
  }
}

int config_https(const otj_config *c) {
  return c->tls_cert[0] != '\0' || !strncmp(c->public_url, "https://", 8);
}
