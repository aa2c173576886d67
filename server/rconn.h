/*
 * rconn — otjd's connection to Redis, on the shared libuv loop.
 *
 * hiredis 0.14 neither times out a connect nor reconnects, so this module
 * does both: a connect that has not finished in RCONN_CONNECT_TIMEOUT_MS is
 * dropped, and every loss is followed by a new attempt after an exponential
 * backoff with jitter (backoff.h), so a fleet of otjd processes does not
 * hammer a Redis that comes back. The owner
 * hears every change of state through one callback.
 */
#ifndef OTJ_RCONN_H
#define OTJ_RCONN_H

#include <uv.h>
#include <hiredis/async.h>

#define RCONN_CONNECT_TIMEOUT_MS 2000

typedef struct rconn rconn;

/* Called on the loop when Redis becomes reachable (up = 1) or is lost (0). */
typedef void rconn_state_fn(void *ud, int up);

/* Creates the connection and starts connecting to `addr` ("HOST:PORT" or a
 * path starting with '/'). Returns NULL on a malformed address or no memory. */
rconn *rconn_create(uv_loop_t *loop, const char *addr, rconn_state_fn *cb, void *ud);

/* Disconnects; pending commands get their callback with a NULL reply. The
 * handle's memory is released once its timer has closed on the loop. */
void rconn_destroy(rconn *r);

/* 1 when connected. */
int rconn_up(const rconn *r);

/* Sends a command (hiredis format). Returns 0, or -1 when Redis is not
 * connected (then `fn` is never called). `fn` may get a NULL reply when the
 * connection drops; the reply is valid only during the callback. */
int rconn_command(rconn *r, redisCallbackFn *fn, void *privdata, const char *fmt, ...);

/* Same, with an argv vector. */
int rconn_command_argv(rconn *r, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                       const size_t *argvlen);

/* Sends MULTI, the n commands (argv vectors; a NULL argvlen[i] means
 * C strings) and EXEC, one after the other, so that Redis runs them as one
 * step and nothing of ours comes between. Only EXEC's reply reaches `fn`:
 * an array of the commands' replies, an error when the transaction did not
 * run, or NULL when the connection dropped. Returns 0, or -1 when Redis is
 * not connected (then `fn` is never called). */
int rconn_transaction(rconn *r, redisCallbackFn *fn, void *privdata, int n, const int *argc,
                      const char **const *argv, const size_t *const *argvlen);

/* Drops the connection (as if lost: waiting commands get a NULL reply, then
 * the reconnect) when replies are owed and nothing has come back from Redis
 * for `ms`; 0 turns this off. */
void rconn_set_reply_timeout(rconn *r, uint32_t ms);

/* Connections dropped so because Redis stopped answering (for /metrics). */
unsigned long rconn_stalls(const rconn *r);

/* Number of connection losses since start (for /metrics). */
unsigned long rconn_losses(const rconn *r);

#endif
