/*
 * test_backoff — the reconnect delay shared by rconn and psub: it grows from
 * BACKOFF_MIN_MS, never passes BACKOFF_MAX_MS, and its random half keeps it
 * between half the base and the base, whatever the draw.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "backoff.h"

/* The base doubles from BACKOFF_MIN_MS on each failure, up to the cap. */
static void base_doubles_then_caps(void **state) {
  (void)state;
  assert_int_equal(backoff_base_ms(0), 100);
  assert_int_equal(backoff_base_ms(1), 200);
  assert_int_equal(backoff_base_ms(2), 400);
  assert_int_equal(backoff_base_ms(5), 3200);
  assert_int_equal(backoff_base_ms(6), BACKOFF_MAX_MS);
  assert_int_equal(backoff_base_ms(7), BACKOFF_MAX_MS);
  /* a Redis down for days: the shift must not overflow */
  assert_int_equal(backoff_base_ms(1000), BACKOFF_MAX_MS);
  assert_int_equal(backoff_base_ms(~0u), BACKOFF_MAX_MS);
}

/* Every draw lands in [base/2, base]; the extremes are reachable. */
static void delay_stays_within_half_base_and_base(void **state) {
  (void)state;
  const int draws[] = {0, 1, 2, 49, 50, 51, 2499, 2500, 2501, 12345, RAND_MAX - 1, RAND_MAX};
  for (unsigned attempt = 0; attempt < 40; attempt++) {
    uint64_t base = backoff_base_ms(attempt);
    for (size_t i = 0; i < sizeof draws / sizeof draws[0]; i++) {
      uint64_t d = backoff_delay_ms_r(attempt, draws[i]);
      assert_in_range(d, base / 2, base);
    }
    assert_int_equal(backoff_delay_ms_r(attempt, 0), base / 2);
    assert_int_equal(backoff_delay_ms_r(attempt, (int)(base / 2)), base);
  }
}

/* With rand(): never below half the first base, never above the cap, and
 * not the same delay every time (the jitter is there). */
static void delay_with_rand_is_jittered_and_bounded(void **state) {
  (void)state;
  srand(7);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < 2000; i++) {
    uint64_t d = backoff_delay_ms((unsigned)(i % 12));
    assert_in_range(d, BACKOFF_MIN_MS / 2, BACKOFF_MAX_MS);
    uint64_t dmax = backoff_delay_ms(200);
    assert_in_range(dmax, BACKOFF_MAX_MS / 2, BACKOFF_MAX_MS);
    if (dmax < lo) lo = dmax;
    if (dmax > hi) hi = dmax;
  }
  assert_true(hi > lo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(base_doubles_then_caps),
      cmocka_unit_test(delay_stays_within_half_base_and_base),
      cmocka_unit_test(delay_with_rand_is_jittered_and_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
