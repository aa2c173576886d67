/*
 * log — logfmt lines on stderr (see log.h).
 *
 * A line is built in a buffer of LOG_LINE_MAX bytes and leaves in one
 * write(2), so lines of several threads never interleave and a line on a
 * pipe (systemd's journal) is written whole. Each key=VALUE of the caller's
 * format is formatted on its own, then quoted and escaped as a whole.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <libwebsockets.h>

#define LOG_SPEC_MAX       32 /* bytes of one conversion spec, "%-*.*llu" and the like */
#define LOG_LWS_PER_SECOND 20 /* lines of libwebsockets' own log let through each second */

static atomic_int g_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level level) {
  atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

log_level log_get_level(void) {
  return (log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

int log_enabled(log_level level) {
  return (int)level >= atomic_load_explicit(&g_level, memory_order_relaxed);
}

int log_level_parse(const char *name, log_level *out) {
  for (int i = 0; i < 4; i++)
    if (!strcasecmp(name, level_names[i])) return *out = (log_level)i, 0;
  if (!strcasecmp(name, "warning")) return *out = LOG_WARN, 0;
  return -1;
}

const char *log_level_name(log_level level) {
  return (unsigned)level < 4 ? level_names[level] : "info";
}

/* ---- the line ---------------------------------------------------------------- */

typedef struct lbuf {
  char s[LOG_LINE_MAX];
  size_t len; /* s[len] is where the next byte goes; one byte kept for '\n' */
} lbuf;

static size_t lbuf_room(const lbuf *b) { return sizeof b->s - 1 - b->len; }

static void put_raw(lbuf *b, const char *p, size_t n) {
  if (n > lbuf_room(b)) n = lbuf_room(b);
  memcpy(b->s + b->len, p, n);
  b->len += n;
}

static int needs_quotes(const char *v, size_t n) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f) return 1;
  }
  return 0;
}

/* The escape of one byte inside quotes into e (at most 7 bytes); returns its length. */
static size_t escape_byte(unsigned char c, char *e) {
  switch (c) {
  case '"': memcpy(e, "\\\"", 2); return 2;
  case '\\': memcpy(e, "\\\\", 2); return 2;
  case '\n': memcpy(e, "\\n", 2); return 2;
  case '\r': memcpy(e, "\\r", 2); return 2;
  case '\t': memcpy(e, "\\t", 2); return 2;
  default:
    if (c < ' ' || c == 0x7f) return (size_t)snprintf(e, 7, "\\u%04x", c);
    e[0] = (char)c;
    return 1;
  }
}

/* Writes a value: bare when logfmt allows, else quoted and escaped. A value
 * that does not fit is cut, quoted, and ends in "...". */
static void put_value(lbuf *b, const char *v, size_t n) {
  if (!needs_quotes(v, n) && n <= lbuf_room(b)) {
    put_raw(b, v, n);
    return;
  }
  if (lbuf_room(b) < 5) return;
  b->s[b->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    char e[8];
    size_t k = escape_byte((unsigned char)v[i], e);
    if (k + 4 > lbuf_room(b)) { /* keep room for ...'"' */
      put_raw(b, "...", 3);
      break;
    }
    put_raw(b, e, k);
  }
  put_raw(b, "\"", 1);
}

/* ---- formatting one value ----------------------------------------------------- */

/* Formats the one conversion at *fmt (just after its '%') with the next
 * arguments into out; advances *fmt past it. Returns the bytes written
 * (cut to cap - 1). */
static size_t format_one(const char **fmt, va_list *ap, char *out, size_t cap) {
  const char *p = *fmt;
  char spec[LOG_SPEC_MAX];
  size_t sn = 0;
  spec[sn++] = '%';
  int star[2] = {0, 0}, nstar = 0;
  while (*p && strchr("-+ #0", *p) && sn < LOG_SPEC_MAX - 8) spec[sn++] = *p++;
  if (*p == '*') {
    star[nstar++] = va_arg(*ap, int);
    spec[sn++] = *p++;
  }
  while (*p >= '0' && *p <= '9' && sn < LOG_SPEC_MAX - 8) spec[sn++] = *p++;
  if (*p == '.') {
    spec[sn++] = *p++;
    if (*p == '*') {
      star[nstar++] = va_arg(*ap, int);
      spec[sn++] = *p++;
    }
    while (*p >= '0' && *p <= '9' && sn < LOG_SPEC_MAX - 8) spec[sn++] = *p++;
  }
  char len[3] = {0};
  size_t ln = 0;
  while (*p && strchr("hlzjtL", *p) && ln < 2) len[ln++] = spec[sn++] = *p++;
  char conv = *p ? *p++ : 's';
  spec[sn++] = conv;
  spec[sn] = '\0';
  *fmt = p;

  int n = 0;
#define FMT(val)                                                                                   \
  (nstar == 2   ? snprintf(out, cap, spec, star[0], star[1], val)                                  \
   : nstar == 1 ? snprintf(out, cap, spec, star[0], val)                                           \
                : snprintf(out, cap, spec, val))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  switch (conv) {
  case 'd':
  case 'i':
    if (!strcmp(len, "ll") || !strcmp(len, "j"))
      n = FMT(va_arg(*ap, long long));
    else if (len[0] == 'l' || len[0] == 'z' || len[0] == 't')
      n = FMT(va_arg(*ap, long));
    else
      n = FMT(va_arg(*ap, int));
    break;
  case 'u':
  case 'x':
  case 'X':
  case 'o':
    if (!strcmp(len, "ll") || !strcmp(len, "j"))
      n = FMT(va_arg(*ap, unsigned long long));
    else if (len[0] == 'l' || len[0] == 'z' || len[0] == 't')
      n = FMT(va_arg(*ap, unsigned long));
    else
      n = FMT(va_arg(*ap, unsigned));
    break;
  case 'c': n = FMT(va_arg(*ap, int)); break;
  case 'p': n = FMT(va_arg(*ap, void *)); break;
  case 'f':
  case 'F':
  case 'e':
  case 'E':
  case 'g':
  case 'G':
  case 'a':
  case 'A':
    if (len[0] == 'L')
      n = FMT(va_arg(*ap, long double));
    else
      n = FMT(va_arg(*ap, double));
    break;
  case 's': {
    const char *s = va_arg(*ap, const char *);
    n = FMT(s ? s : "");
    break;
  }
  case '%': n = snprintf(out, cap, "%%"); break;
  default: n = snprintf(out, cap, "?"); break; /* not a conversion log_event knows */
  }
#pragma GCC diagnostic pop
#undef FMT
  if (n < 0) return 0;
  return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Writes the keys of `fmt`: each space-separated token is key=VALUE, and
 * VALUE (literal text and conversions) is formatted whole, then quoted. */
static void put_keys(lbuf *b, const char *fmt, va_list *ap) {
  static __thread char val[LOG_LINE_MAX];
  const char *p = fmt;
  while (*p) {
    while (*p == ' ') p++;
    if (!*p) break;
    const char *eq = p;
    while (*eq && *eq != '=' && *eq != ' ' && *eq != '%') eq++;
    put_raw(b, " ", 1);
    if (*eq == '=') {
      put_raw(b, p, (size_t)(eq - p + 1));
      p = eq + 1;
    }
    size_t vn = 0;
    while (*p && *p != ' ') {
      if (*p == '%') {
        p++;
        vn += format_one(&p, ap, val + vn, sizeof val - vn);
      } else {
        if (vn < sizeof val - 1) val[vn++] = *p;
        p++;
      }
    }
    put_value(b, val, vn);
  }
}

static void put_time(lbuf *b) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char t[40];
  int n = snprintf(t, sizeof t, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (int)(ts.tv_nsec / 1000000));
  if (n > 0) put_raw(b, t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

static void write_all(const char *p, size_t n) {
  while (n) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* nowhere to log to: nothing else to do */
    p += w;
    n -= (size_t)w;
  }
}

/* The held lines of the loop thread (log_hold_begin). */
static struct {
  char buf[64 * 1024];
  size_t len;
} g_held;
static _Thread_local int tl_holding;

void log_hold_begin(void) {
  g_held.len = 0;
  tl_holding = 1;
}

void log_flush(void) {
  if (!tl_holding || !g_held.len) return;
  write_all(g_held.buf, g_held.len);
  g_held.len = 0;
}

void log_hold_end(void) {
  log_flush();
  tl_holding = 0;
}

static void write_line(lbuf *b, log_level level) {
  b->s[b->len++] = '\n';
  if (tl_holding && level < LOG_WARN) {
    if (g_held.len + b->len > sizeof g_held.buf) log_flush();
    memcpy(g_held.buf + g_held.len, b->s, b->len);
    g_held.len += b->len;
    return;
  }
  log_flush(); /* what was held came first */
  write_all(b->s, b->len);
}

void log_event(log_level level, const char *msg, const char *fmt, ...) {
  if (!log_enabled(level)) return;
  lbuf b;
  b.len = 0;
  put_time(&b);
  put_raw(&b, " level=", 7);
  const char *ln = log_level_name(level);
  put_raw(&b, ln, strlen(ln));
  put_raw(&b, " msg=", 5);
  put_value(&b, msg ? msg : "", msg ? strlen(msg) : 0);
  if (fmt && *fmt) {
    va_list ap;
    va_start(ap, fmt);
    put_keys(&b, fmt, &ap);
    va_end(ap);
  }
  write_line(&b, level);
}

/* ---- libwebsockets' own log ------------------------------------------------------ */

static struct {
  uint64_t second;
  unsigned lines;
  unsigned long suppressed;
} g_lws_rate;

/* lws calls this on its service thread (the loop's). */
static void lws_emit(int lws_level, const char *line) {
  log_level level = (lws_level & LLL_ERR)    ? LOG_ERROR
                    : (lws_level & LLL_WARN) ? LOG_WARN
                                             : LOG_DEBUG;
  if (!log_enabled(level)) return;
  uint64_t second = uv_hrtime() / 1000000000u;
  if (second != g_lws_rate.second) {
    if (g_lws_rate.suppressed)
      log_event(LOG_WARN, "lws lines suppressed", "component=lws count=%lu", g_lws_rate.suppressed);
    g_lws_rate.second = second;
    g_lws_rate.lines = 0;
    g_lws_rate.suppressed = 0;
  }
  if (++g_lws_rate.lines > LOG_LWS_PER_SECOND) {
    g_lws_rate.suppressed++;
    return;
  }
  while (*line == ' ') line++;
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
  char text[LOG_LINE_MAX / 2];
  if (n >= sizeof text) n = sizeof text - 1;
  memcpy(text, line, n);
  text[n] = '\0';
  log_event(level, text, "component=lws");
}

void log_route_lws(void) {
  int lws_levels = LLL_ERR | LLL_WARN;
  if (log_enabled(LOG_DEBUG)) lws_levels |= LLL_NOTICE;
  lws_set_log_level(lws_levels, lws_emit);
}
