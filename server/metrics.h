/*
 * metrics — the process's counters and latency histograms that modules
 * without the otjd struct keep: the Redis connection (round trips), the
 * writer thread (commit latency, decisions), pub/sub (rooms followed) and
 * the send queues (fan-out latency). Like a Prometheus client's default
 * registry there is one set per process; counters are C11 atomics, so the
 * writer thread counts while the loop reads for /metrics.
 */
#ifndef OTJ_METRICS_H
#define OTJ_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_BUCKETS 15 /* upper bounds, then +Inf */

typedef struct metrics_hist {
  atomic_uint_fast64_t counts[METRICS_BUCKETS + 1]; /* not cumulative; last: +Inf */
  atomic_uint_fast64_t sum_ns;
} metrics_hist;

/* Decisions the writer committed, by what became of them. */
typedef enum metrics_decision {
  METRICS_APPROVED = 0,
  METRICS_NOT_APPROVED,
  METRICS_REFUSED,
  METRICS_FAILED,
  METRICS_DECISIONS
} metrics_decision;

typedef struct metrics_set {
  metrics_hist redis_rtt;     /* a command sent to Redis until its reply */
  metrics_hist sqlite_commit; /* one group commit of the writer, fsync included */
  metrics_hist fanout;        /* a websocket message made until written to a socket */
  metrics_hist pubsub;        /* a room event from its script call (the calling instance's clock)
                                 until received on this instance's channel */
  atomic_uint_fast64_t decisions[METRICS_DECISIONS];
  atomic_int_fast64_t rooms_followed; /* room channels this instance subscribes */
} metrics_set;

extern metrics_set metrics;

/* Counts one duration of `ns` nanoseconds. Any thread. */
void metrics_observe(metrics_hist *h, uint64_t ns);

/* Writes `h` in Prometheus text format as histogram `name` (in seconds). */
void metrics_write_hist(FILE *f, const char *name, const char *help, metrics_hist *h);

/* Monotonic nanoseconds (uv_hrtime). */
uint64_t metrics_now_ns(void);

#endif
