/*
 * hist — a latency histogram with bounded relative error.
 *
 * Log-linear buckets in the manner of HdrHistogram: every power of two is
 * split into HIST_SUB linear sub-buckets, so a recorded value lands in a
 * bucket whose width is at most 1/HIST_SUB of the value (0.78 %), and the
 * value reported for a bucket (its middle) is within 0.4 % of every value
 * in it. Values are nanoseconds; recording is a few shifts and one add, no
 * allocation after hist_init.
 */
#ifndef OTJ_LOAD_HIST_H
#define OTJ_LOAD_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7 /* 128 sub-buckets per half-octave */
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_OCTAVES  44 /* up to 2^(44+7) ns: far beyond any run */
#define HIST_BUCKETS  ((HIST_OCTAVES + 2) * HIST_SUB)

typedef struct hist {
  uint64_t count;
  uint64_t max;
  uint64_t min;
  double sum;
  uint64_t b[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_record(hist *h, uint64_t ns);
/* The value at quantile q (0..1), in ns; 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
/* Adds every count of `src` into `dst`. */
void hist_merge(hist *dst, const hist *src);

#endif
