/*
 * http — the HTTP side of otjd: requests to /api, /healthz and /metrics.
 * (Static files of the web client are served by an lws file mount.)
 *
 * A request becomes an `http_req` on the heap, reference-counted, so an
 * answer can be produced later than the callback that asked for it: a
 * password check on a worker thread, a PING to Redis. If the client goes
 * away first, the request is simply answered into the void and freed.
 * Handlers (api.c) see a parsed request and answer with http_reply*.
 */
#ifndef OTJ_HTTP_H
#define OTJ_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "otjd.h"

#define HTTP_SESSION_COOKIE  "otj_session"
#define HTTP_PATH_MAX        512
#define HTTP_HEADERS_MAX     2048 /* status line and headers of an answer */
#define HTTP_DRAIN_FACTOR    16   /* bodies up to 16x the limit are read and dropped */
#define HTTP_FLUSH_TIMEOUT_S 30   /* to send the tail of an answer to a slow reader */

/* Why a request's body is read and dropped instead of kept (http_req.drain). */
enum {
  HTTP_DRAIN_TOO_LARGE = 1, /* over its own limit: 413 */
  HTTP_DRAIN_BUSY,          /* the bodies held at once are at max_http_bodies: 503 */
};

typedef enum http_method {
  HTTP_GET = 1,
  HTTP_POST,
  HTTP_PUT,
  HTTP_PATCH,
  HTTP_DELETE,
  HTTP_OTHER
} http_method;

typedef struct http_req {
  otjd *d;
  struct lws *wsi; /* NULL once the connection is gone */
  int refs;
  http_method method;
  char path[HTTP_PATH_MAX];  /* without the query string */
  char query[HTTP_PATH_MAX]; /* "a=1&b=2", decoded per argument by http_query */
  char token[128];           /* bearer token or session cookie, "" if none */
  int token_from_cookie;     /* the session cookie, not a Bearer header: */
  int other_site;            /*   Origin/Referer/Sec-Fetch-Site name another site */
  int json_body;             /*   Content-Type is application/json */
  char content_type[64];     /* the request's Content-Type, parameters aside ("" if none) */
  char *body;                /* NUL-terminated, body_len bytes */
  size_t body_len;
  size_t body_expected;
  size_t body_cap; /* the limit of this request's body (max_http_body, or an upload's) */
  int drain;       /* HTTP_DRAIN_*: the body is read and dropped, then refused */

  /* response */
  int answered;
  int status;
  const char *ctype;
  char *resp; /* malloc'd, owned */
  size_t resp_len;
  char extra_headers[512]; /* "name: value\r\n"... */
  int close_after;
  int flushing; /* answered; lws still sends what the socket did not take */

  void *handler_data; /* for deferred handlers */
  void (*handler_free)(void *);
} http_req;

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
size_t http_pss_size(void);

/* Takes a reference (for a worker or timer that will answer later). */
void http_req_ref(http_req *r);
/* Drops one; the last frees the request. */
void http_req_unref(http_req *r);

/* Answers with `body` (copied) of type `ctype`. A second answer is ignored. */
void http_reply(http_req *r, int status, const char *ctype, const char *body, size_t len);
/* Same, taking ownership of a malloc'd body. */
void http_reply_take(http_req *r, int status, const char *ctype, char *body, size_t len);
/* {"error": code, "message": message} */
void http_reply_error(http_req *r, int status, const char *code, const char *message);
/* Adds a response header line ("Name: value") before the answer. */
void http_add_header(http_req *r, const char *name, const char *value);

/* Copies the value of query argument `name` (URL-decoded) into out.
 * Returns its length, or -1 when absent. */
int http_query(const http_req *r, const char *name, char *out, size_t cap);

/* Finds cookie `name` in a Cookie header value. Returns 0 and copies it. */
int http_cookie_value(const char *header, const char *name, char *out, size_t cap);

/* 1 when the request's Origin may use the session cookie: no Origin header,
 * the same host as the Host header, or one of --origins. */
int http_origin_allowed(struct lws *wsi, const otjd *d);

/* The client's address for limits and logs: the TCP peer; or, when the
 * peer is one of cfg.trusted_proxies, the last address of X-Forwarded-For,
 * the one that proxy appended (those before it came with the request and
 * prove nothing). "" when unknown. */
void http_client_addr(struct lws *wsi, const otjd *d, char *out, size_t cap);

#endif
