/*
 * auth — argon2id password hashes and hashed random session tokens.
 * See auth.h for the design; this file only wraps libsodium.
 */
#include "auth.h"

#include <sodium.h>
#include <string.h>

int auth_init(void) { return sodium_init() < 0 ? -1 : 0; }

int auth_hash_password(const char *password, char out[AUTH_HASH_MAX]) {
  _Static_assert(crypto_pwhash_STRBYTES <= AUTH_HASH_MAX, "hash buffer");
  if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
    return -1;
  return 0;
}

int auth_verify_password(const char *hash, const char *password) {
  if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0) return -1;
  return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? 0 : -1;
}

void auth_new_token(char token[AUTH_TOKEN_LEN + 1], unsigned char digest[AUTH_TOKEN_HASH_LEN]) {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(token, AUTH_TOKEN_LEN + 1, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  crypto_generichash(digest, AUTH_TOKEN_HASH_LEN, (const unsigned char *)token, AUTH_TOKEN_LEN,
                     NULL, 0);
}

int auth_token_digest(const char *token, size_t len, unsigned char digest[AUTH_TOKEN_HASH_LEN]) {
  if (len != AUTH_TOKEN_LEN) return -1;
  for (size_t i = 0; i < len; i++) {
    char c = token[i];
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_';
    if (!ok) return -1;
  }
  crypto_generichash(digest, AUTH_TOKEN_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
  return 0;
}
