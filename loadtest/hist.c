/*
 * hist — see hist.h. Bucket index of v: below 2*HIST_SUB the value itself;
 * above, with e = msb(v) - HIST_SUB_BITS, the index is e*HIST_SUB + (v >> e),
 * where v >> e lies in [HIST_SUB, 2*HIST_SUB): consecutive and gapless.
 */
#include "hist.h"

#include <string.h>

static unsigned msb64(uint64_t v) { return 63u - (unsigned)__builtin_clzll(v); }

static size_t index_of(uint64_t v) {
  if (v < 2 * HIST_SUB) return (size_t)v;
  unsigned e = msb64(v) - HIST_SUB_BITS;
  size_t i = (size_t)e * HIST_SUB + (size_t)(v >> e);
  return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* The middle of bucket i. */
static uint64_t value_of(size_t i) {
  if (i < 2 * HIST_SUB) return (uint64_t)i;
  size_t e = i / HIST_SUB - 1;
  uint64_t lo = (uint64_t)(i - e * HIST_SUB) << e;
  return lo + ((1ull << e) >> 1);
}

void hist_init(hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

void hist_record(hist *h, uint64_t ns) {
  h->b[index_of(ns)]++;
  h->count++;
  h->sum += (double)ns;
  if (ns > h->max) h->max = ns;
  if (ns < h->min) h->min = ns;
}

uint64_t hist_quantile(const hist *h, double q) {
  if (!h->count) return 0;
  if (q >= 1.0) return h->max;
  uint64_t want = (uint64_t)(q * (double)h->count);
  if (want >= h->count) want = h->count - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen > want) {
      uint64_t v = value_of(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}

void hist_merge(hist *dst, const hist *src) {
  for (size_t i = 0; i < HIST_BUCKETS; i++) dst->b[i] += src->b[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->max > dst->max) dst->max = src->max;
  if (src->min < dst->min) dst->min = src->min;
}
