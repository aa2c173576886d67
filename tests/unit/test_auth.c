/*
 * test_auth — passwords hash with argon2id and verify only with the right
 * password; tokens are random, well-formed, and their digests match only
 * the token they came from; request helpers read cookies and queries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"
#include "http.h"

static int setup(void **state) {
  (void)state;
  return auth_init();
}

static void password_right_and_wrong(void **state) {
  (void)state;
  char hash[AUTH_HASH_MAX];
  assert_int_equal(auth_hash_password("otj-demo", hash), 0);
  assert_non_null(strstr(hash, "$argon2id$"));
  assert_null(strstr(hash, "otj-demo")); /* never the password itself */
  assert_int_equal(auth_verify_password(hash, "otj-demo"), 0);
  assert_int_equal(auth_verify_password(hash, "otj-demo "), -1);
  assert_int_equal(auth_verify_password(hash, ""), -1);
  assert_int_equal(auth_verify_password(hash, "OTJ-DEMO"), -1);
}

static void password_hashes_are_salted(void **state) {
  (void)state;
  char a[AUTH_HASH_MAX], b[AUTH_HASH_MAX];
  assert_int_equal(auth_hash_password("same", a), 0);
  assert_int_equal(auth_hash_password("same", b), 0);
  assert_string_not_equal(a, b);
  assert_int_equal(auth_verify_password(a, "same"), 0);
  assert_int_equal(auth_verify_password(b, "same"), 0);
}

static void malformed_hash_never_verifies(void **state) {
  (void)state;
  assert_int_equal(auth_verify_password("", "x"), -1);
  assert_int_equal(auth_verify_password(NULL, "x"), -1);
  assert_int_equal(auth_verify_password("plaintext", "plaintext"), -1);
  assert_int_equal(auth_verify_password("$argon2id$v=19$garbage", "x"), -1);
}

static void tokens_random_and_digest_matches(void **state) {
  (void)state;
  char t1[AUTH_TOKEN_LEN + 1], t2[AUTH_TOKEN_LEN + 1];
  unsigned char d1[AUTH_TOKEN_HASH_LEN], d2[AUTH_TOKEN_HASH_LEN], again[AUTH_TOKEN_HASH_LEN];
  auth_new_token(t1, d1);
  auth_new_token(t2, d2);
  assert_int_equal(strlen(t1), AUTH_TOKEN_LEN);
  assert_string_not_equal(t1, t2);
  assert_memory_not_equal(d1, d2, AUTH_TOKEN_HASH_LEN);
  assert_int_equal(auth_token_digest(t1, strlen(t1), again), 0);
  assert_memory_equal(d1, again, AUTH_TOKEN_HASH_LEN);
  /* one changed character gives another digest */
  t1[5] = t1[5] == 'A' ? 'B' : 'A';
  assert_int_equal(auth_token_digest(t1, strlen(t1), again), 0);
  assert_memory_not_equal(d1, again, AUTH_TOKEN_HASH_LEN);
}

static void token_shape_checked(void **state) {
  (void)state;
  unsigned char d[AUTH_TOKEN_HASH_LEN];
  assert_int_equal(auth_token_digest("short", 5, d), -1);
  char bad[AUTH_TOKEN_LEN + 1];
  memset(bad, 'a', AUTH_TOKEN_LEN);
  bad[AUTH_TOKEN_LEN] = '\0';
  assert_int_equal(auth_token_digest(bad, AUTH_TOKEN_LEN, d), 0);
  bad[10] = '=';
  assert_int_equal(auth_token_digest(bad, AUTH_TOKEN_LEN, d), -1);
  bad[10] = ' ';
  assert_int_equal(auth_token_digest(bad, AUTH_TOKEN_LEN, d), -1);
}

static void cookie_values(void **state) {
  (void)state;
  char v[64];
  assert_int_equal(http_cookie_value("a=1; otj_session=abc; b=2", "otj_session", v, sizeof v), 0);
  assert_string_equal(v, "abc");
  assert_int_equal(http_cookie_value("otj_session=xyz", "otj_session", v, sizeof v), 0);
  assert_string_equal(v, "xyz");
  assert_int_equal(http_cookie_value("x_otj_session=1", "otj_session", v, sizeof v), -1);
  assert_int_equal(http_cookie_value("a=1", "otj_session", v, sizeof v), -1);
  char small[4];
  assert_int_equal(http_cookie_value("otj_session=toolong", "otj_session", small, sizeof small),
                   -1);
}

static void query_values(void **state) {
  (void)state;
  http_req r;
  memset(&r, 0, sizeof r);
  strcpy(r.query, "format=csv&name=Lea%20Berg&empty=&flag");
  char v[64];
  assert_int_equal(http_query(&r, "format", v, sizeof v), 3);
  assert_string_equal(v, "csv");
  assert_int_equal(http_query(&r, "name", v, sizeof v), 8);
  assert_string_equal(v, "Lea Berg");
  assert_int_equal(http_query(&r, "empty", v, sizeof v), 0);
  assert_int_equal(http_query(&r, "flag", v, sizeof v), 0);
  assert_int_equal(http_query(&r, "form", v, sizeof v), -1);
  assert_int_equal(http_query(&r, "missing", v, sizeof v), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(password_right_and_wrong),
      cmocka_unit_test(password_hashes_are_salted),
      cmocka_unit_test(malformed_hash_never_verifies),
      cmocka_unit_test(tokens_random_and_digest_matches),
      cmocka_unit_test(token_shape_checked),
      cmocka_unit_test(cookie_values),
      cmocka_unit_test(query_values),
  };
  return cmocka_run_group_tests_name("auth", tests, setup, NULL);
}
