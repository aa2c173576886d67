/*
 * lhttp — see lhttp.h. The body goes out in chunks from CLIENT_HTTP_WRITEABLE
 * (one lws_write per callback); the answer is appended to a growing buffer.
 */
#include "lhttp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LHTTP_CHUNK 16384

typedef struct lreq {
  lhttp_done_fn *done;
  void *ud;
  char *body;
  size_t body_len, body_off;
  char auth[600];
  char clen[32];
  char *resp;
  size_t resp_len, resp_cap;
  int status;
  int finished;
  uint8_t wbuf[LWS_PRE + LHTTP_CHUNK];
} lreq;

static void finish(lreq *q, int ok) {
  if (q->finished) return;
  q->finished = 1;
  if (!q->resp) {
    q->resp = malloc(1);
    if (q->resp) q->resp[0] = '\0';
  }
  q->done(q->ud, ok ? q->status : 0, q->resp ? q->resp : "", q->resp_len);
}

static void lreq_free(lreq *q) {
  free(q->body);
  free(q->resp);
  free(q);
}

static int append(lreq *q, const void *in, size_t len) {
  if (q->resp_len + len + 1 > q->resp_cap) {
    size_t cap = q->resp_cap ? q->resp_cap : 8192;
    while (cap < q->resp_len + len + 1) cap *= 2;
    char *n = realloc(q->resp, cap);
    if (!n) return -1;
    q->resp = n;
    q->resp_cap = cap;
  }
  memcpy(q->resp + q->resp_len, in, len);
  q->resp_len += len;
  q->resp[q->resp_len] = '\0';
  return 0;
}

int lhttp_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len) {
  lreq *q = lws_get_opaque_user_data(wsi);
  switch (reason) {
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    if (q) {
      fprintf(stderr, "otj-load: HTTP request failed: %s\n", in ? (char *)in : "no answer");
      finish(q, 0);
      lws_set_opaque_user_data(wsi, NULL);
      lreq_free(q);
    }
    return 0;
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
    if (!q) return 0;
    unsigned char **p = (unsigned char **)in, *end = *p + len;
    if (q->auth[0] &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)q->auth,
                                     (int)strlen(q->auth), p, end))
      return -1;
    if (q->body) {
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                       (unsigned char *)"application/json", 16, p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, (unsigned char *)q->clen,
                                       (int)strlen(q->clen), p, end))
        return -1;
      lws_client_http_body_pending(wsi, 1);
      lws_callback_on_writable(wsi);
    }
    return 0;
  }
  case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
    if (!q || !q->body || q->body_off >= q->body_len) return 0;
    size_t n = q->body_len - q->body_off;
    if (n > LHTTP_CHUNK) n = LHTTP_CHUNK;
    memcpy(q->wbuf + LWS_PRE, q->body + q->body_off, n);
    q->body_off += n;
    int last = q->body_off >= q->body_len;
    if (last) lws_client_http_body_pending(wsi, 0);
    if (lws_write(wsi, q->wbuf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
        (int)n)
      return -1;
    if (!last) lws_callback_on_writable(wsi);
    return 0;
  }
  case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    if (q) q->status = (int)lws_http_client_http_response(wsi);
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    if (q && append(q, in, len)) return -1;
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
    char buf[LWS_PRE + 8192], *p = buf + LWS_PRE;
    int n = (int)sizeof buf - LWS_PRE;
    if (lws_http_client_read(wsi, &p, &n) < 0) return -1;
    return 0;
  }
  case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    if (q) {
      finish(q, 1);
      lws_set_opaque_user_data(wsi, NULL);
      lreq_free(q);
    }
    return 0;
  case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    if (q) {
      finish(q, q->status != 0);
      lws_set_opaque_user_data(wsi, NULL);
      lreq_free(q);
    }
    return 0;
  default: break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int lhttp_request(struct lws_context *ctx, const char *host, int port, const char *method,
                  const char *path, const char *bearer, const char *body, size_t body_len,
                  lhttp_done_fn *done, void *ud) {
  lreq *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->done = done;
  q->ud = ud;
  if (bearer) snprintf(q->auth, sizeof q->auth, "Bearer %s", bearer);
  if (body) {
    q->body = malloc(body_len ? body_len : 1);
    if (!q->body) {
      free(q);
      return -1;
    }
    memcpy(q->body, body, body_len);
    q->body_len = body_len;
    snprintf(q->clen, sizeof q->clen, "%zu", body_len);
  }
  struct lws_client_connect_info i;
  memset(&i, 0, sizeof i);
  i.context = ctx;
  i.address = host;
  i.host = host;
  i.port = port;
  i.path = path;
  i.method = method;
  i.protocol = LHTTP_PROTOCOL;
  i.alpn = "http/1.1";
  i.opaque_user_data = q;
  if (!lws_client_connect_via_info(&i)) {
    /* a failure inside the call may already have reported through the
     * callback (CONNECTION_ERROR frees q); lws does not say which */
    return -1;
  }
  return 0;
}
