/*
 * clock — the test clock: OTJ_TEST_NOW_OFFSET (seconds, fractions allowed,
 * may be negative) shifts otjd's "now" so that tests can see approvals
 * expire and confirmation codes go stale without waiting. The one place
 * that reads the variable: main.c checks it at start and hands the whole
 * seconds to the store (expiry), confirm.c takes the milliseconds (codes).
 * For tests only; never set in production.
 */
#ifndef OTJ_CLOCK_H
#define OTJ_CLOCK_H

#include <stdint.h>

#define CLOCK_TEST_OFFSET_ENV "OTJ_TEST_NOW_OFFSET"

/* The shift in milliseconds into *ms (0 when the variable is unset or
 * empty). Returns 0, or -1 (and *ms = 0) when it is set but is not a number
 * of seconds within ±10^12. The variable is read once. */
int clock_test_offset_ms(int64_t *ms);

#endif
