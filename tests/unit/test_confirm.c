/* test_confirm — the six-digit codes of learner confirmation (server/confirm.c):
 * the RFC 6238 algorithm with HMAC-SHA-256, the period, and the grace for
 * the code shown just before a change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "confirm.h"

/* RFC 6238's SHA-256 seed; its vectors are 8 digits, ours the last 6. */
static const unsigned char SEED[32] = "12345678901234567890123456789012";

static void rfc6238_vectors(void **state) {
  (void)state;
  char code[CONFIRM_DIGITS + 1];
  confirm_code_at(SEED, 59 / 30, code);
  assert_string_equal(code, "119246"); /* 46119246 */
  confirm_code_at(SEED, 1111111109 / 30, code);
  assert_string_equal(code, "084774"); /* 68084774 */
  confirm_code_at(SEED, 20000000000ULL / 30, code);
  assert_string_equal(code, "737706"); /* 77737706 */
}

static void check_and_grace(void **state) {
  (void)state;
  char now[CONFIRM_DIGITS + 1], before[CONFIRM_DIGITS + 1];
  int64_t t = 1700000000000LL - 1700000000000LL % CONFIRM_PERIOD_MS + 5000; /* 5 s into a period */
  uint32_t left = 0;
  confirm_code_now(SEED, t, now, &left);
  assert_int_equal(left, CONFIRM_PERIOD_MS - 5000);
  confirm_code_at(SEED, (uint64_t)t / CONFIRM_PERIOD_MS - 1, before);
  assert_true(confirm_check(SEED, t, now, 6));
  assert_true(confirm_check(SEED, t, before, 6));                     /* within the grace */
  assert_false(confirm_check(SEED, t + CONFIRM_GRACE_MS, before, 6)); /* past it */
  assert_true(confirm_check(SEED, t + CONFIRM_GRACE_MS, now, 6));
  assert_false(confirm_check(SEED, t + CONFIRM_PERIOD_MS, before, 6)); /* two periods old */
  assert_false(confirm_check(SEED, t, now, 5));                        /* a cut code */
  unsigned char other[32];
  memset(other, 7, sizeof other);
  assert_false(confirm_check(other, t, now, 6)); /* another room's secret */
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc6238_vectors),
      cmocka_unit_test(check_and_grace),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
