/*
 * confirm — the six-digit codes of learner confirmation (confirm.h).
 */
#include "confirm.h"

#include "clock.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint32_t confirm_max_tries(void) {
  const char *v = getenv(CONFIRM_TRIES_ENV);
  long n = v && *v ? strtol(v, NULL, 10) : 0;
  return n > 0 && n < 1000 ? (uint32_t)n : CONFIRM_TRIES;
}

int64_t confirm_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t off;
  clock_test_offset_ms(&off); /* refused at start when malformed (main.c) */
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + off;
}

void confirm_code_at(const unsigned char secret[CONFIRM_SECRET_LEN], uint64_t counter,
                     char out[CONFIRM_DIGITS + 1]) {
  unsigned char msg[8], mac[crypto_auth_hmacsha256_BYTES];
  for (int i = 7; i >= 0; i--, counter >>= 8) msg[i] = (unsigned char)(counter & 0xff);
  crypto_auth_hmacsha256(mac, msg, sizeof msg, secret);
  /* RFC 4226 dynamic truncation */
  unsigned off = mac[sizeof mac - 1] & 0x0f;
  uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                 ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
  snprintf(out, CONFIRM_DIGITS + 1, "%06u", (unsigned)(bin % 1000000u));
  sodium_memzero(mac, sizeof mac);
}

void confirm_code_now(const unsigned char secret[CONFIRM_SECRET_LEN], int64_t now_ms,
                      char out[CONFIRM_DIGITS + 1], uint32_t *ms_left) {
  if (now_ms < 0) now_ms = 0;
  uint64_t counter = (uint64_t)now_ms / CONFIRM_PERIOD_MS;
  confirm_code_at(secret, counter, out);
  if (ms_left) *ms_left = (uint32_t)((counter + 1) * CONFIRM_PERIOD_MS - (uint64_t)now_ms);
}

int confirm_check(const unsigned char secret[CONFIRM_SECRET_LEN], int64_t now_ms, const char *typed,
                  size_t len) {
  if (len != CONFIRM_DIGITS || now_ms < 0) return 0;
  uint64_t counter = (uint64_t)now_ms / CONFIRM_PERIOD_MS;
  uint64_t into = (uint64_t)now_ms % CONFIRM_PERIOD_MS;
  char code[CONFIRM_DIGITS + 1];
  confirm_code_at(secret, counter, code);
  int ok = sodium_memcmp(code, typed, CONFIRM_DIGITS) == 0;
  if (counter > 0 && into < CONFIRM_GRACE_MS) {
    confirm_code_at(secret, counter - 1, code);
    ok |= sodium_memcmp(code, typed, CONFIRM_DIGITS) == 0;
  }
  return ok;
}
