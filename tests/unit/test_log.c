/*
 * test_log — log_event's lines: ts, level, msg, then the caller's keys, each
 * value quoted and escaped where logfmt needs it, so that no value can add a
 * key or break the line; levels below the chosen one are dropped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* What log_event writes while fn runs (stderr captured in a file). */
static char *captured(void (*fn)(void)) {
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  long n = ftell(tmp);
  if (n < 0) n = lseek(fileno(tmp), 0, SEEK_END);
  char *out = calloc(1, (size_t)n + 1);
  assert_non_null(out);
  assert_int_equal(pread(fileno(tmp), out, (size_t)n, 0), n);
  fclose(tmp);
  return out;
}

/* The line after its ts=... (the time varies). */
static const char *after_ts(const char *line) {
  assert_memory_equal(line, "ts=", 3);
  /* 2026-12-03T09:41:07.123Z */
  assert_int_equal(strlen(line) > 28, 1);
  assert_int_equal(line[7], '-');
  assert_int_equal(line[13], 'T');
  assert_int_equal(line[22], '.');
  assert_int_equal(line[26], 'Z');
  return line + 27;
}

static void plain_keys(void) {
  log_event(LOG_INFO, "room opened", "room=%s module=%lld host=%d", "r5c1e", 2LL, 14);
}

static void a_line_is_ts_level_msg_and_the_keys(void **state) {
  (void)state;
  log_set_level(LOG_INFO);
  char *out = captured(plain_keys);
  assert_string_equal(after_ts(out),
                      " level=info msg=\"room opened\" room=r5c1e module=2 host=14\n");
  free(out);
}

static void hostile_values(void) {
  log_event(LOG_WARN, "x", "a=%s b=%s c=%s d=%s e=%s f=%s:%d", "two words", "k=v", "say \"hi\"",
            "line\nbreak\\", "", "host", 80);
}

static void values_are_quoted_and_escaped(void **state) {
  (void)state;
  log_set_level(LOG_INFO);
  char *out = captured(hostile_values);
  assert_string_equal(after_ts(out), " level=warn msg=x a=\"two words\" b=\"k=v\" "
                                     "c=\"say \\\"hi\\\"\" d=\"line\\nbreak\\\\\" e=\"\" "
                                     "f=host:80\n");
  free(out);
}

static void long_value(void) {
  char *big = malloc(3 * LOG_LINE_MAX);
  memset(big, 'x', 3 * LOG_LINE_MAX - 1);
  big[3 * LOG_LINE_MAX - 1] = '\0';
  log_event(LOG_ERROR, "big", "v=%s", big);
  free(big);
}

static void a_long_value_is_cut_and_the_line_stays_whole(void **state) {
  (void)state;
  char *out = captured(long_value);
  size_t n = strlen(out);
  assert_true(n <= LOG_LINE_MAX);
  assert_int_equal(out[n - 1], '\n');
  assert_memory_equal(out + n - 5, "...\"\n", 5);
  assert_non_null(strstr(out, " v=\"xxx"));
  assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line */
  free(out);
}

static void each_level(void) {
  log_event(LOG_DEBUG, "d", NULL);
  log_event(LOG_INFO, "i", NULL);
  log_event(LOG_WARN, "w", NULL);
  log_event(LOG_ERROR, "e", NULL);
}

static void levels_below_the_chosen_one_are_dropped(void **state) {
  (void)state;
  log_set_level(LOG_WARN);
  char *out = captured(each_level);
  assert_null(strstr(out, "msg=d"));
  assert_null(strstr(out, "msg=i"));
  assert_non_null(strstr(out, " level=warn msg=w\n"));
  assert_non_null(strstr(out, " level=error msg=e\n"));
  free(out);
  log_level l;
  assert_int_equal(log_level_parse("DEBUG", &l), 0);
  assert_int_equal(l, LOG_DEBUG);
  assert_int_equal(log_level_parse("warning", &l), 0);
  assert_int_equal(l, LOG_WARN);
  assert_int_equal(log_level_parse("loud", &l), -1);
  log_set_level(LOG_INFO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_line_is_ts_level_msg_and_the_keys),
      cmocka_unit_test(values_are_quoted_and_escaped),
      cmocka_unit_test(a_long_value_is_cut_and_the_line_stays_whole),
      cmocka_unit_test(levels_below_the_chosen_one_are_dropped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
