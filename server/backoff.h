/*
 * backoff — how long to wait before reconnecting, for every connection otjd
 * keeps to Redis (rconn.c, psub.c).
 *
 * The one idea: exponential backoff with "equal jitter". The n-th failure in
 * a row waits a base of BACKOFF_MIN_MS << n, capped at BACKOFF_MAX_MS; half
 * of the base is fixed and the other half random, so a fleet of otjd
 * processes that lost the same Redis does not come back to it in step, and
 * none of them waits longer than the cap.
 */
#ifndef OTJ_BACKOFF_H
#define OTJ_BACKOFF_H

#include <stdint.h>
#include <stdlib.h>

#define BACKOFF_MIN_MS    100  /* base of the first retry */
#define BACKOFF_MAX_MS    5000 /* no base grows past this */
#define BACKOFF_MAX_SHIFT 6    /* 100 << 6 = 6400: the cap is reached by then */

/* The base of retry number `attempt` (0 for the first): BACKOFF_MIN_MS
 * doubled per attempt, capped at BACKOFF_MAX_MS. */
static inline uint64_t backoff_base_ms(unsigned attempt) {
  unsigned shift = attempt < BACKOFF_MAX_SHIFT ? attempt : BACKOFF_MAX_SHIFT;
  uint64_t base = (uint64_t)BACKOFF_MIN_MS << shift;
  return base > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base;
}

/* The delay of retry `attempt` for a random draw `r` (any non-negative int,
 * e.g. rand()): between base/2 and base, both included. */
static inline uint64_t backoff_delay_ms_r(unsigned attempt, int r) {
  uint64_t base = backoff_base_ms(attempt);
  return base / 2 + (uint64_t)r % (base / 2 + 1);
}

/* The delay of retry `attempt`, drawn with rand(). */
static inline uint64_t backoff_delay_ms(unsigned attempt) {
  return backoff_delay_ms_r(attempt, rand());
}

#endif
