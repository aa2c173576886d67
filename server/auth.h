/*
 * auth — passwords and session tokens.
 *
 * Passwords are hashed with argon2id (libsodium's crypto_pwhash_str, the
 * memory-hard "interactive" limits). Hashing and verifying cost ~100 ms and
 * 64 MiB each, so callers run them on a worker thread, never on the loop.
 *
 * A session token is 32 random bytes, handed to the client as unpadded
 * base64url (43 characters). Only its BLAKE2b-256 digest is stored, so a
 * copy of the database does not let anyone log in.
 */
#ifndef OTJ_AUTH_H
#define OTJ_AUTH_H

#include <stddef.h>

#define AUTH_HASH_MAX       128 /* fits crypto_pwhash_STRBYTES */
#define AUTH_TOKEN_LEN      43  /* base64url of 32 bytes, no padding */
#define AUTH_TOKEN_HASH_LEN 32

/* Initialises libsodium. Returns 0, or -1 when the library cannot start. */
int auth_init(void);

/* Hashes `password` into `out` (NUL-terminated, at most AUTH_HASH_MAX bytes).
 * Returns 0, or -1 when memory for the hash could not be had. Slow: worker only. */
int auth_hash_password(const char *password, char out[AUTH_HASH_MAX]);

/* Returns 0 when `password` matches `hash`, -1 otherwise (also for a
 * malformed hash). Slow: worker only. */
int auth_verify_password(const char *hash, const char *password);

/* Makes a new random token: `token` gets the text for the client
 * (NUL-terminated), `digest` what the database keeps. */
void auth_new_token(char token[AUTH_TOKEN_LEN + 1], unsigned char digest[AUTH_TOKEN_HASH_LEN]);

/* Digest of a token presented by a client. Returns 0, or -1 when the text
 * cannot be a token of ours (wrong length or alphabet). */
int auth_token_digest(const char *token, size_t len, unsigned char digest[AUTH_TOKEN_HASH_LEN]);

#endif
