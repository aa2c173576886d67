/*
 * metrics — process-wide counters and histograms (see metrics.h).
 */
#include "metrics.h"

#include <uv.h>

metrics_set metrics;

/* Upper bounds of the buckets, in nanoseconds: from 100 µs (a Redis round
 * trip on loopback) to 5 s (a commit stuck behind a busy disk). */
static const uint64_t bounds_ns[METRICS_BUCKETS] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,  25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000};

void metrics_observe(metrics_hist *h, uint64_t ns) {
  size_t i = 0;
  while (i < METRICS_BUCKETS && ns > bounds_ns[i]) i++;
  atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void metrics_write_hist(FILE *f, const char *name, const char *help, metrics_hist *h) {
  fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  uint64_t cum = 0;
  for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
    cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    if (i < METRICS_BUCKETS)
      fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds_ns[i] / 1e9,
              (unsigned long long)cum);
    else
      fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
  }
  double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
  fprintf(f, "%s_sum %.9g\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

uint64_t metrics_now_ns(void) { return uv_hrtime(); }
