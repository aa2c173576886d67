/*
 * confirm — the code a learner types to confirm an approval: six digits
 * that change every CONFIRM_PERIOD_MS, derived from the room's secret with
 * libsodium the way TOTP (RFC 6238) does it: HMAC-SHA-256 keyed with the
 * secret over the big-endian period counter, dynamically truncated to six
 * digits. The code shown just before a change is still accepted for
 * CONFIRM_GRACE_MS after it, so a learner who typed it as it changed is not
 * refused. Pure apart from the clock; every otjd instance that can read the
 * room's secret computes the same code.
 */
#ifndef OTJ_CONFIRM_H
#define OTJ_CONFIRM_H

#include <stddef.h>
#include <stdint.h>

#define CONFIRM_SECRET_LEN 32
#define CONFIRM_DIGITS     6
#define CONFIRM_PERIOD_MS  30000
#define CONFIRM_GRACE_MS   10000 /* the previous code is still accepted this long */
#define CONFIRM_TRIES      5     /* tries per learner per room per window, by default */
#define CONFIRM_WINDOW_MS  60000
#define CONFIRM_TRIES_ENV  "OTJ_CONFIRM_TRIES"

/* The code clock in ms: wall-clock time, shifted by the test clock
 * (clock.h: OTJ_TEST_NOW_OFFSET, fractions allowed) when that is set. */
int64_t confirm_now_ms(void);

/* Tries per learner per room per CONFIRM_WINDOW_MS (OTJ_CONFIRM_TRIES, else
 * CONFIRM_TRIES). */
uint32_t confirm_max_tries(void);

/* The code of period counter `counter` into out (CONFIRM_DIGITS + 1 bytes). */
void confirm_code_at(const unsigned char secret[CONFIRM_SECRET_LEN], uint64_t counter,
                     char out[CONFIRM_DIGITS + 1]);

/* The code shown at `now_ms` into out, and the ms before it changes. */
void confirm_code_now(const unsigned char secret[CONFIRM_SECRET_LEN], int64_t now_ms,
                      char out[CONFIRM_DIGITS + 1], uint32_t *ms_left);

/* 1 when `typed` (len bytes) is the code at now_ms, or the previous one
 * within CONFIRM_GRACE_MS of the change; else 0. Constant time in the
 * comparison. */
int confirm_check(const unsigned char secret[CONFIRM_SECRET_LEN], int64_t now_ms, const char *typed,
                  size_t len);

#endif
