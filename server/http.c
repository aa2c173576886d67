/*
 * http — request objects, bodies, deferred answers (see http.h).
 *
 * One request per connection. libwebsockets 4.1 mishandles HTTP/1.1
 * pipelining when the answer comes later than the callback: bytes of the
 * next request, already read, make it call HTTP_BODY_COMPLETION again and
 * again (len 0) or parse the next request over the pending one, and a
 * pipelined request with a body is read from the wrong offset and never
 * completes. So once a request is whole, reading stops (rx flow control),
 * its answer is written in one piece as soon as it is ready (lws gives no
 * WRITEABLE to a flow-controlled HTTP connection; what the socket does not
 * take, lws keeps and sends), and the connection is closed after it
 * ("connection: close"): whatever the client sent behind it is dropped
 * with the connection. Files of the web client are served the same way.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "evidence.h"
#include "proto.h"

typedef struct http_pss {
  http_req *req;
  int dispatched; /* req went to the API: nothing more is read */
} http_pss;

size_t http_pss_size(void) { return sizeof(http_pss); }

void http_req_ref(http_req *r) { r->refs++; }

void http_req_unref(http_req *r) {
  if (--r->refs > 0) return;
  if (r->handler_free) r->handler_free(r->handler_data);
  if (r->body) r->d->st.http_body_bytes -= r->body_expected + 1;
  free(r->body);
  free(r->resp);
  free(r);
}

void http_add_header(http_req *r, const char *name, const char *value) {
  size_t used = strlen(r->extra_headers);
  snprintf(r->extra_headers + used, sizeof r->extra_headers - used, "%s: %s\r\n", name, value);
}

/* ---- writing the answer ------------------------------------------------ */

/* The connection whose lws callback is running, if any: it must not be
 * freed under lws's feet. */
static struct lws *g_cb_wsi;

/* Status line and headers into [*p, end). Returns -1 when they do not fit. */
static int add_headers(http_req *r, unsigned char **p, unsigned char *end) {
  struct lws *wsi = r->wsi;
  if (lws_add_http_common_headers(wsi, (unsigned)r->status,
                                  r->ctype ? r->ctype : "application/json", r->resp_len, p, end))
    return -1;
  if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                  (const unsigned char *)"no-store", 8, p, end))
    return -1;
  /* extra "Name: value\r\n" lines */
  char *line = r->extra_headers;
  while (*line) {
    char *eol = strstr(line, "\r\n");
    if (!eol) break;
    char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon) {
      char name[64];
      size_t nl = (size_t)(colon - line);
      if (nl + 2 < sizeof name) {
        for (size_t i = 0; i < nl; i++) name[i] = (char)tolower(line[i]);
        name[nl] = ':';
        name[nl + 1] = '\0';
        const char *v = colon + 1;
        while (*v == ' ') v++;
        if (lws_add_http_header_by_name(wsi, (unsigned char *)name, (const unsigned char *)v,
                                        (int)(eol - v), p, end))
          return -1;
      }
    }
    line = eol + 2;
  }
  if (r->close_after && lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                                    (const unsigned char *)"close", 5, p, end))
    return -1;
  return lws_finalize_http_header(wsi, p, end) ? -1 : 0;
}

/* Writes the whole answer now, in one write (see the top), then has lws
 * close the connection once it has sent what the socket did not take.
 * The caller holds a reference to r. */
static void send_answer(http_req *r) {
  struct lws *wsi = r->wsi;
  unsigned char *buf = malloc(LWS_PRE + HTTP_HEADERS_MAX + r->resp_len);
  if (buf) {
    unsigned char *start = buf + LWS_PRE, *p = start;
    if (add_headers(r, &p, start + HTTP_HEADERS_MAX) == 0) {
      if (r->resp_len) memcpy(p, r->resp, r->resp_len);
      p += r->resp_len;
      lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
    }
    free(buf);
  }
  if (lws_partial_buffered(wsi)) {
    /* What the socket did not take, lws sends on POLLOUT, which it handles
     * for an HTTP connection only while reading is allowed (a request
     * pipelined behind this one then closes the connection: see the top).
     * Once it is all out, lws calls WRITEABLE, which closes; a reader too
     * slow for HTTP_FLUSH_TIMEOUT_S is cut off. */
    r->flushing = 1;
    lws_rx_flow_control(wsi, 1);
    lws_callback_on_writable(wsi);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HTTP_FLUSH_TIMEOUT_S);
    return;
  }
  /* From a Redis reply or a worker's answer, lws would not look at its
   * timers again for a while: close now (this frees r's hold on wsi, not r). */
  lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                  wsi == g_cb_wsi ? LWS_TO_KILL_ASYNC : LWS_TO_KILL_SYNC);
}

void http_reply_take(http_req *r, int status, const char *ctype, char *body, size_t len) {
  if (r->answered) {
    free(body);
    return;
  }
  r->answered = 1;
  if (status >= 400 && status < 400 + OTJD_HTTP_ERRORS) r->d->st.http_errors[status - 400]++;
  r->status = status;
  r->ctype = ctype;
  r->resp = body;
  r->resp_len = len;
  if (r->wsi) send_answer(r);
}

void http_reply(http_req *r, int status, const char *ctype, const char *body, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy) {
    status = 500;
    len = 0;
  } else {
    memcpy(copy, body, len);
    copy[len] = '\0';
  }
  http_reply_take(r, status, ctype, copy, len);
}

/* A message as the body of a JSON string: quotes and control characters
 * escaped, and valid UTF-8 whatever the message quotes (a parser's error
 * text can hold a piece of the client's bad input): a byte that does not
 * start a whole sequence becomes U+FFFD, and a cut never splits one. */
static void json_escape_into(char *out, size_t cap, const char *in) {
  const unsigned char *s = (const unsigned char *)in;
  size_t o = 0, left = strlen(in);
  while (*s && o + 7 < cap) {
    unsigned char c = *s;
    size_t n = proto_utf8_len(s, left);
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    } else if (n == 0) {
      memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
      o += 3;
      n = 1;
    } else {
      memcpy(out + o, s, n);
      o += n;
    }
    s += n; /* 1 for an escaped or replaced byte */
    left -= n;
  }
  out[o] = '\0';
}

void http_reply_error(http_req *r, int status, const char *code, const char *message) {
  char esc[768], body[1024];
  json_escape_into(esc, sizeof esc, message);
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", code, esc);
  http_reply(r, status, "application/json", body, (size_t)n);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int http_query(const http_req *r, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  const char *p = r->query;
  while (*p) {
    const char *end = strchr(p, '&');
    if (!end) end = p + strlen(p);
    if ((size_t)(end - p) >= nl && !strncmp(p, name, nl) && (p[nl] == '=' || p + nl == end)) {
      const char *v = p + nl + (p[nl] == '=' ? 1 : 0);
      size_t o = 0;
      while (v < end && o + 1 < cap) {
        if (*v == '%' && v + 2 < end && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
          out[o++] = (char)(hexval(v[1]) * 16 + hexval(v[2]));
          v += 3;
        } else {
          out[o++] = *v == '+' ? ' ' : *v;
          v++;
        }
      }
      out[o] = '\0';
      return (int)o;
    }
    p = *end ? end + 1 : end;
  }
  return -1;
}

int http_cookie_value(const char *header, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == ';') p++;
    if (!strncmp(p, name, nl) && p[nl] == '=') {
      const char *v = p + nl + 1;
      size_t n = strcspn(v, ";");
      while (n && v[n - 1] == ' ') n--;
      if (n >= cap) return -1;
      memcpy(out, v, n);
      out[n] = '\0';
      return 0;
    }
    p += strcspn(p, ";");
  }
  return -1;
}

static int listed(const char *list, const char *addr) {
  while (*list) {
    size_t n = strcspn(list, ",");
    char one[CONFIG_ADDR_MAX];
    if (config_addr_normal(list, n, one, sizeof one) == 0 && !strcmp(one, addr)) return 1;
    list += n;
    if (*list == ',') list++;
  }
  return 0;
}

void http_client_addr(struct lws *wsi, const otjd *d, char *out, size_t cap) {
  char peer[CONFIG_ADDR_MAX] = "", xff[512];
  out[0] = '\0';
  if (!wsi) return;
  lws_get_peer_simple(wsi, peer, sizeof peer);
  if (config_addr_normal(peer, strlen(peer), out, cap) != 0) snprintf(out, cap, "%s", peer);
  if (!d->cfg.trusted_proxies[0] || !listed(d->cfg.trusted_proxies, out)) return;
  int n = lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR);
  if (n <= 0) return;
  const char *last = strrchr(xff, ',');
  last = last ? last + 1 : xff;
  char client[CONFIG_ADDR_MAX];
  if (config_addr_normal(last, strlen(last), client, sizeof client) == 0)
    snprintf(out, cap, "%s", client);
}

/* 1 when `origin` ("scheme://host[:port]") is this server's own (the Host
 * header) or one of --origins. */
static int origin_value_allowed(struct lws *wsi, const otjd *d, const char *origin) {
  char host[256];
  if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
    const char *o = origin;
    if (!strncmp(o, "http://", 7))
      o += 7;
    else if (!strncmp(o, "https://", 8))
      o += 8;
    if (!strcasecmp(o, host)) return 1;
  }
  const char *list = d->cfg.origins;
  size_t ol = strlen(origin);
  while (*list) {
    size_t n = strcspn(list, ",");
    if (n == ol && !strncasecmp(list, origin, n)) return 1;
    list += n;
    if (*list == ',') list++;
  }
  return 0;
}

int http_origin_allowed(struct lws *wsi, const otjd *d) {
  char origin[256];
  if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
    return 1; /* not a browser page: no cookie riding */
  return origin_value_allowed(wsi, d, origin);
}

/* 1 when the request says it comes from a page of another site: a foreign
 * Origin, else a foreign Referer, else Sec-Fetch-Site other than
 * same-origin or none (a request typed by the user). */
static int from_other_site(struct lws *wsi, const otjd *d) {
  char v[512];
  if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) return !http_origin_allowed(wsi, d);
  if (lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_REFERER) > 0) {
    char *p = strstr(v, "://");
    if (p) p = strchr(p + 3, '/');
    if (p) *p = '\0'; /* scheme://host[:port] */
    if (!origin_value_allowed(wsi, d, v)) return 1;
  }
  if (lws_hdr_custom_copy(wsi, v, sizeof v, "sec-fetch-site:", 15) > 0 &&
      strcasecmp(v, "same-origin") != 0 && strcasecmp(v, "none") != 0)
    return 1;
  return 0;
}

/* 1 when the Content-Type is application/json (parameters aside). */
static int json_content_type(struct lws *wsi) {
  char v[128];
  if (lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0) return 0;
  size_t n = strcspn(v, ";");
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  return n == 16 && !strncasecmp(v, "application/json", 16);
}

/* ---- request start ----------------------------------------------------- */

static const struct {
  enum lws_token_indexes tok;
  http_method m;
} methods[] = {
    {WSI_TOKEN_GET_URI, HTTP_GET},       {WSI_TOKEN_POST_URI, HTTP_POST},
    {WSI_TOKEN_PUT_URI, HTTP_PUT},       {WSI_TOKEN_PATCH_URI, HTTP_PATCH},
    {WSI_TOKEN_DELETE_URI, HTTP_DELETE},
};

static http_req *req_start(struct lws *wsi) {
  http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->d = otjd_of(wsi);
  r->wsi = wsi;
  r->refs = 1;
  r->method = HTTP_OTHER;
  r->close_after = 1; /* one request per connection: see the top */
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
      r->method = methods[i].m;
      lws_hdr_copy(wsi, r->path, sizeof r->path, methods[i].tok);
      break;
    }
  }
  /* the query string, argument by argument, joined back with '&' */
  size_t used = 0;
  for (int i = 0; used + 1 < sizeof r->query; i++) {
    char frag[HTTP_PATH_MAX];
    int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n <= 0) break;
    int w = snprintf(r->query + used, sizeof r->query - used, "%s%s", used ? "&" : "", frag);
    if (w < 0 || (size_t)w >= sizeof r->query - used) break;
    used += (size_t)w;
  }
  char auth[256];
  if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
      !strncasecmp(auth, "Bearer ", 7)) {
    size_t n = strlen(auth + 7);
    if (n < sizeof r->token) memcpy(r->token, auth + 7, n + 1);
  } else {
    char cookie[2048];
    if (lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE) > 0 &&
        http_cookie_value(cookie, HTTP_SESSION_COOKIE, r->token, sizeof r->token) == 0 &&
        r->token[0]) {
      r->token_from_cookie = 1;
      r->other_site = from_other_site(wsi, r->d);
      r->json_body = json_content_type(wsi);
    }
  }
  char ct[sizeof r->content_type];
  if (lws_hdr_copy(wsi, ct, sizeof ct, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0) {
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    memcpy(r->content_type, ct, n);
    r->content_type[n] = '\0';
  }
  char cl[32];
  if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
    r->body_expected = strtoull(cl, NULL, 10);
  r->body_cap = evidence_body_cap(r); /* an upload has a limit of its own */
  if (!r->body_cap) r->body_cap = r->d->cfg.max_http_body;
  return r;
}

static void reply_too_large(http_req *r) {
  char msg[128];
  snprintf(msg, sizeof msg, "The request body may be at most %zu bytes.", r->body_cap);
  http_reply_error(r, 413, "too_large", msg);
}

/* The refusal of a drained body. */
static void reply_drained(http_req *r) {
  if (r->drain == HTTP_DRAIN_TOO_LARGE) {
    reply_too_large(r);
    return;
  }
  r->d->st.http_busy++;
  http_add_header(r, "Retry-After", "1");
  http_reply_error(r, 503, "unavailable",
                   "The server is receiving many large requests right now; try again in a "
                   "moment.");
}

static int dispatch(http_pss *pss) {
  http_req *r = pss->req;
  /* The request is whole: read nothing more from this connection (see
   * the top), and hand it to the API once however often lws reports it. */
  lws_rx_flow_control(r->wsi, 0);
  if (pss->dispatched) return 0;
  pss->dispatched = 1;
  r->d->st.http_requests++;
  api_handle(r);
  return 0;
}

static int on_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len) {
  http_pss *pss = user;
  switch (reason) {
  case LWS_CALLBACK_HTTP: {
    if (pss->req) return -1; /* a second request, parsed too early */
    pss->req = req_start(wsi);
    if (!pss->req) return -1;
    http_req *r = pss->req;
    if (r->body_expected > r->body_cap) {
      /* Read and drop a moderately large body so the client sees the 413;
       * refuse a huge one at once and close. */
      r->drain = HTTP_DRAIN_TOO_LARGE;
      if (r->body_expected / HTTP_DRAIN_FACTOR > r->body_cap) {
        r->close_after = 1;
        reply_too_large(r);
      }
      return 0;
    }
    if ((r->method == HTTP_POST || r->method == HTTP_PUT || r->method == HTTP_PATCH) &&
        r->body_expected > 0) {
      /* Every body is held whole until its request is freed (an upload
       * until its file is written): without a bound over all of them, a
       * few thousand slow clients declaring 1 MiB (no login needed) would
       * hold gigabytes. */
      size_t need = r->body_expected + 1; /* and its NUL */
      uint64_t *held = &r->d->st.http_body_bytes;
      if (*held + need > r->d->cfg.max_http_bodies) {
        r->drain = HTTP_DRAIN_BUSY;
        return 0;
      }
      r->body = malloc(need);
      if (!r->body) return -1;
      *held += need;
      return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    return dispatch(pss);
  }

  case LWS_CALLBACK_HTTP_BODY: {
    http_req *r = pss ? pss->req : NULL;
    if (r && r->drain) {
      r->body_len += len;
      return r->body_len > r->body_expected ? -1 : 0;
    }
    if (!r || !r->body) return 0;
    if (r->body_len + len > r->body_expected) return -1; /* lies about length */
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    return 0;
  }

  case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
    http_req *r = pss ? pss->req : NULL;
    if (!r) return -1;
    if (r->drain) {
      lws_rx_flow_control(wsi, 0);
      reply_drained(r);
      return 0;
    }
    if (r->body) r->body[r->body_len] = '\0';
    return dispatch(pss);
  }

  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    /* lws binds a websocket upgrade without a subprotocol to the first
     * protocol, this one: otj.v1 upgrades never get here */
    return 1;

  case LWS_CALLBACK_ADD_HEADERS: { /* a file of the web client */
    struct lws_process_html_args *a = in;
    unsigned char *p = (unsigned char *)a->p;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                    (const unsigned char *)"close", 5, &p, p + a->max_len))
      return 1;
    a->max_len -= (int)(p - (unsigned char *)a->p);
    a->p = (char *)p;
    return 0;
  }

  case LWS_CALLBACK_HTTP_FILE_COMPLETION: return -1; /* one request per connection */

  case LWS_CALLBACK_HTTP_WRITEABLE: {
    /* answers are written by send_answer; this only ends one whose tail
     * lws was still sending */
    http_req *r = pss ? pss->req : NULL;
    if (!r || !r->flushing) return 0;
    if (lws_partial_buffered(wsi)) {
      lws_callback_on_writable(wsi);
      return 0;
    }
    return -1;
  }

  case LWS_CALLBACK_CLOSED_HTTP:
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    if (pss && pss->req) {
      pss->req->wsi = NULL;
      http_req_unref(pss->req);
      pss->req = NULL;
    }
    return 0;

  default: return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len) {
  struct lws *outer = g_cb_wsi;
  g_cb_wsi = wsi;
  int rc = on_callback(wsi, reason, user, in, len);
  g_cb_wsi = outer;
  return rc;
}
