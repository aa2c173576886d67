/*
 * lhttp — one-shot HTTP/1.1 requests with the libwebsockets client, on the
 * load generator's loop. Used only to provision (login, import, tokens):
 * a request is sent, its whole answer collected, and `done` called once.
 */
#ifndef OTJ_LOAD_LHTTP_H
#define OTJ_LOAD_LHTTP_H

#include <stddef.h>

#include <uv.h>
#include <libwebsockets.h>

#define LHTTP_PROTOCOL "otj-load-http"

/* status 0: no answer (connection failed). body is NUL-terminated and valid
 * only during the call. */
typedef void lhttp_done_fn(void *ud, int status, const char *body, size_t len);

/* Starts `method path` on host:port with an optional bearer token and JSON
 * body (copied). Returns 0, or -1 (done is never called). */
int lhttp_request(struct lws_context *ctx, const char *host, int port, const char *method,
                  const char *path, const char *bearer, const char *body, size_t body_len,
                  lhttp_done_fn *done, void *ud);

/* The protocol callback to list under LHTTP_PROTOCOL. */
int lhttp_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);

#endif
