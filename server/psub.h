/*
 * psub — the Redis subscriber connection that carries room fan-out between
 * otjd instances.
 *
 * hiredis 0.14's async context knows SUBSCRIBE but not the sharded
 * SSUBSCRIBE of Redis 7 (its push messages would be taken for replies), so
 * this connection is our own libuv stream that writes commands formatted by
 * hiredis and parses replies with hiredis's reply reader. On connect it
 * tries SSUBSCRIBE and falls back to SUBSCRIBE when the server does not know
 * it; psub_sharded() tells publishers which PUBLISH to use. Lost connections
 * come back with backoff and jitter (backoff.h), every channel is subscribed
 * again, and the owner hears "up" only once all confirmations are in.
 */
#ifndef OTJ_PSUB_H
#define OTJ_PSUB_H

#include <stddef.h>
#include <uv.h>

typedef struct psub psub;

/* A message on a subscribed channel; both buffers valid during the call. */
typedef void psub_msg_fn(void *ud, const char *chan, size_t chanlen, const char *data, size_t len);
/* up = 1: connected and every channel confirmed; up = 0: connection lost. */
typedef void psub_state_fn(void *ud, int up);
/* The subscription of one channel is confirmed (ok = 1) or failed (0). */
typedef void psub_done_fn(void *arg, int ok);

/* Connects to `addr` ("HOST:PORT" or "/path.sock") and subscribes
 * `base_chan` at once (its confirmation decides the sharded mode). */
psub *psub_create(uv_loop_t *loop, const char *addr, const char *base_chan, psub_msg_fn *on_msg,
                  psub_state_fn *on_state, void *ud);

/* Subscribes `chan` (copied); `done` is called once when Redis confirms, or
 * with ok = 0 if the connection is down or drops first. Returns 0, or -1
 * when out of memory (then done is not called). Subscribing a channel twice
 * is the caller's mistake. */
int psub_subscribe(psub *p, const char *chan, psub_done_fn *done, void *arg);

/* Unsubscribes `chan`. Pending `done` callbacks of it are called with 0. */
void psub_unsubscribe(psub *p, const char *chan);

/* 1 when up (connected and confirmed). */
int psub_up(const psub *p);

/* 1 when the server has sharded pub/sub (SPUBLISH), 0 when not or unknown. */
int psub_sharded(const psub *p);

/* Closes the connection and frees everything once the loop lets go. */
void psub_destroy(psub *p);

#endif
