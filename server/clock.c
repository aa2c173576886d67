/*
 * clock — the test clock's one reader (clock.h).
 */
#include "clock.h"

#include <errno.h>
#include <stdlib.h>

int clock_test_offset_ms(int64_t *ms) {
  static int known, bad;
  static int64_t off;
  if (!known) {
    const char *v = getenv(CLOCK_TEST_OFFSET_ENV);
    if (v && *v) {
      char *end = NULL;
      errno = 0;
      double o = strtod(v, &end);
      if (errno || !end || *end || !(o > -1e12 && o < 1e12))
        bad = 1;
      else
        off = (int64_t)(o * 1000.0);
    }
    known = 1;
  }
  *ms = bad ? 0 : off;
  return bad ? -1 : 0;
}
