/*
 * otj_assert — an invariant check that stays on in every build.
 *
 * OTJ_ASSERT(expr) is for ownership and reference counts: places where a
 * broken invariant would go on to corrupt memory silently (a double free, a
 * frame queued after it was freed, a count that wraps). When expr is false
 * it logs the file, line, function and the expression, then aborts, so the
 * process dies at the first wrong step with a core and a clear line in the
 * log instead of much later somewhere else (Redis's serverAssert is the
 * model). It is not for input checks: bad input is answered, never asserted.
 * NDEBUG does not turn it off.
 */
#ifndef OTJ_ASSERT_H
#define OTJ_ASSERT_H

#include <stdlib.h>

#include "log.h"

__attribute__((noreturn, cold)) static inline void
otj_assert_fail(const char *expr, const char *file, int line, const char *func) {
  log_event(LOG_ERROR, "assertion failed", "file=%s line=%d func=%s expr=%s", file, line, func,
            expr);
  abort();
}

#define OTJ_ASSERT(expr)                                                                           \
  (__builtin_expect(!!(expr), 1) ? (void)0 : otj_assert_fail(#expr, __FILE__, __LINE__, __func__))

#endif
