/* fuzz_api -- libFuzzer target for the JSON bodies of the HTTP API.
 *
 * Each input is one request to a route that reads a JSON body: byte 0 picks
 * the route, byte 1 the {id} in its path, byte 2 the caller (administrator,
 * learner, nobody), and the rest is the body. The request goes through the
 * real router (api_handle) into the real handlers, their parsing and
 * validation, and a real SQLite database holding the demo organisation; the
 * harness runs the libuv loop until the request is answered, exactly as
 * http.c would, only without a socket (wsi is NULL: the answer goes nowhere).
 *
 * It checks: no memory error or undefined behaviour (ASan/UBSan), every
 * request is answered exactly once with a status 200..599, a JSON answer is
 * valid JSON, a 5xx never comes back (a body must never make the server
 * fail; a busy database is not expected here), and nothing leaks.
 *
 * Stand-ins, linked with -Wl,--wrap: argon2id hashing and verification
 * (auth_hash_password / auth_verify_password) become a fast keyed digest,
 * so a body with a password costs microseconds instead of 100 ms and 64 MiB;
 * live_pending_changed (a Redis PUBLISH to dashboards) does nothing, as
 * there is no Redis here. Everything else is the product's code.
 *
 * The database is kept between inputs (the fuzzer's creations accumulate),
 * so a crash may depend on earlier inputs: libFuzzer prints the input that
 * crashed; replay it alone first, and with the corpus before it if needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "otjd.h"
#include "store.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#define FAKE_PREFIX "$argon2id$v=19$fuzz$"

/* ---- stand-ins ---------------------------------------------------------- */

int __wrap_auth_hash_password(const char *password, char out[AUTH_HASH_MAX]);
int __wrap_auth_verify_password(const char *hash, const char *password);
void __wrap_live_pending_changed(otjd *d);
void __wrap_live_user_changed(otjd *d, int64_t user, int deactivated);
void __wrap_live_token_ended(otjd *d, const unsigned char digest[32]);

int __wrap_auth_hash_password(const char *password, char out[AUTH_HASH_MAX]) {
  unsigned char dg[16];
  char hex[33];
  crypto_generichash(dg, sizeof dg, (const unsigned char *)password, strlen(password), NULL, 0);
  sodium_bin2hex(hex, sizeof hex, dg, sizeof dg);
  snprintf(out, AUTH_HASH_MAX, "%s%s", FAKE_PREFIX, hex);
  return 0;
}

int __wrap_auth_verify_password(const char *hash, const char *password) {
  char want[AUTH_HASH_MAX];
  if (!hash || strncmp(hash, "$argon2id$", 10)) return -1;
  __wrap_auth_hash_password(password, want);
  return strcmp(hash, want) == 0 ? 0 : -1;
}

void __wrap_live_pending_changed(otjd *d) { (void)d; }
void __wrap_live_user_changed(otjd *d, int64_t user, int deactivated) {
  (void)d, (void)user, (void)deactivated;
}
void __wrap_live_token_ended(otjd *d, const unsigned char digest[32]) { (void)d, (void)digest; }

/* ---- the server without sockets ----------------------------------------- */

static otjd D;
static char admin_token[AUTH_TOKEN_LEN + 1], learner_token[AUTH_TOKEN_LEN + 1];
static int64_t admin_id;
static int verbose; /* FUZZ_API_VERBOSE=1: print each answer */
static char dir[] = "/tmp/otj-fuzz-api-XXXXXX";

static void cleanup(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) { /* best effort */
  }
}

static void session_for(const char *login, char token[AUTH_TOKEN_LEN + 1], int64_t *id) {
  store_user u;
  unsigned char digest[AUTH_TOKEN_HASH_LEN];
  CHECK(store_user_by_login(D.db, login, &u) == 0);
  auth_new_token(token, digest);
  int64_t now = (int64_t)time(NULL);
  CHECK(store_session_create(D.db, u.id, digest, now, now + 365 * 24 * 3600) == 0);
  if (id) *id = u.id;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char err[256], path[600], hash[AUTH_HASH_MAX];
  char *args[] = {"fuzz_api", NULL};
  verbose = getenv("FUZZ_API_VERBOSE") != NULL;
  CHECK(auth_init() == 0);
  CHECK(config_load(&D.cfg, 1, args) == 0);
  CHECK(mkdtemp(dir) != NULL);
  atexit(cleanup);
  snprintf(D.cfg.data_dir, sizeof D.cfg.data_dir, "%s", dir);
  snprintf(path, sizeof path, "%s/otj.db", dir);
  D.loop = uv_default_loop();
  CHECK(store_open(path, &D.db, err, sizeof err) == 0);
  CHECK(store_open(path, &D.db_worker, err, sizeof err) == 0);
  uv_mutex_init(&D.db_worker_lock);
  store_set_durable(D.db, 0);
  __wrap_auth_hash_password("otj-demo", hash);
  CHECK(store_load_demo(D.db, hash) == 0);
  session_for("admin", admin_token, &admin_id);
  session_for("lea", learner_token, NULL);
  return 0;
}

typedef struct route {
  http_method method;
  const char *fmt; /* %lld: the id */
} route;

static const route routes[] = {
    {HTTP_POST, "/api/login"},
    {HTTP_POST, "/api/admin/departments"},
    {HTTP_PATCH, "/api/admin/departments/%lld"},
    {HTTP_POST, "/api/admin/users"},
    {HTTP_PATCH, "/api/admin/users/%lld"},
    {HTTP_PUT, "/api/admin/users/%lld/permissions"},
    {HTTP_POST, "/api/admin/modules"},
    {HTTP_PATCH, "/api/admin/modules/%lld"},
    {HTTP_POST, "/api/admin/import"},
    {HTTP_POST, "/api/admin/paths"},
    {HTTP_PATCH, "/api/admin/paths/%lld"},
    {HTTP_POST, "/api/admin/sharings"},
    {HTTP_POST, "/api/modules/%lld/complete"},
    {HTTP_POST, "/api/admin/tokens"},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const route *rt = &routes[data[0] % N_ROUTES];
  long long id = 1 + data[1] % 16;
  /* the administrator's own account stays intact, so admin routes stay
   * reachable for the inputs that follow */
  if (strstr(rt->fmt, "/users/") && id == admin_id) id++;
  int who = data[2] % 3;

  http_req *r = calloc(1, sizeof *r);
  CHECK(r);
  r->d = &D;
  r->refs = 1;
  r->method = rt->method;
  snprintf(r->path, sizeof r->path, rt->fmt, id);
  snprintf(r->token, sizeof r->token, "%s", who == 0 ? admin_token : who == 1 ? learner_token : "");
  r->body_len = size - 3;
  r->body = malloc(r->body_len + 1);
  CHECK(r->body);
  memcpy(r->body, data + 3, r->body_len);
  r->body[r->body_len] = '\0';
  r->body_expected = r->body_len;

  /* refs = 1 stands for the connection (http.c drops it when the answer is
   * sent or the client leaves); a handler that defers takes its own */
  api_handle(r);
  while (!(r->answered && r->refs == 1)) {
    /* deferred work (password hashing, login) answers from the loop; a
     * request nobody will answer is a bug */
    if (uv_run(D.loop, UV_RUN_ONCE) == 0 && !r->answered) {
      fprintf(stderr, "%s answered nothing\n", r->path);
      CHECK(!"request never answered");
    }
  }
  CHECK(r->status >= 200 && r->status <= 599);
  if (verbose) fprintf(stderr, "%s %d %.200s\n", r->path, r->status, r->resp ? r->resp : "");
  if (r->status >= 500)
    fprintf(stderr, "%s: %d %.*s\n", r->path, r->status, (int)r->resp_len, r->resp ? r->resp : "");
  CHECK(r->status < 500);
  if (r->ctype && !strcmp(r->ctype, "application/json")) {
    json_error_t e;
    json_t *j = json_loadb(r->resp, r->resp_len, 0, &e);
    CHECK(j != NULL);
    json_decref(j);
  }
  http_req_unref(r);
  return 0;
}
