/*
 * rstore — room keys, the embedded room script, command lines (rstore.h).
 */
#include "rstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room_lua.h" /* generated from room.lua by CMake */

static const char *const parts[RSTORE_NKEYS] = {
    "meta", "members", "log", "answers", "marks", "ikeys", "presence", "outcomes"};

const char *rstore_script(size_t *len) {
  if (len) *len = sizeof room_lua - 1;
  return (const char *)room_lua;
}

void rstore_cmd_init(rstore_cmd *c) { memset(c, 0, sizeof *c); }

void rstore_cmd_free(rstore_cmd *c) {
  free(c->argv);
  free(c->len);
  free(c->numbuf);
  memset(c, 0, sizeof *c);
}

void rstore_cmd_arg(rstore_cmd *c, const void *p, size_t len) {
  if (c->failed) return;
  if (c->argc == c->cap) {
    int cap = c->cap ? c->cap * 2 : 32;
    const char **a = realloc(c->argv, (size_t)cap * sizeof *a);
    if (a) c->argv = a;
    size_t *l = realloc(c->len, (size_t)cap * sizeof *l);
    if (l) c->len = l;
    if (!a || !l) {
      c->failed = 1;
      return;
    }
    c->cap = cap;
  }
  c->argv[c->argc] = p;
  c->len[c->argc] = len;
  c->argc++;
}

void rstore_cmd_str(rstore_cmd *c, const char *s) {
  rstore_cmd_arg(c, s, strlen(s));
}

/* Numbers are written into numbuf, which argv entries point into, so it is
 * reserved once and never moved: 16 KiB holds over 680 numbers. */
#define RSTORE_NUM_RESERVE 16384

void rstore_cmd_int(rstore_cmd *c, int64_t v) {
  if (c->failed) return;
  if (!c->numbuf) {
    c->numbuf = malloc(RSTORE_NUM_RESERVE);
    if (!c->numbuf) {
      c->failed = 1;
      return;
    }
    c->numcap = RSTORE_NUM_RESERVE;
  }
  if (c->numcap - c->numlen < 24) { /* never reallocated: argv points in */
    c->failed = 1;
    return;
  }
  char *p = c->numbuf + c->numlen;
  int n = snprintf(p, 24, "%" PRId64, v);
  c->numlen += (size_t)n + 1;
  rstore_cmd_arg(c, p, (size_t)n);
}

void rstore_room_keys(const char *room, rstore_keys *k) {
  for (int i = 0; i < RSTORE_NKEYS; i++)
    snprintf(k->key[i], sizeof k->key[i], "otj:r:{%s}:%s", room, parts[i]);
  snprintf(k->chan, sizeof k->chan, "otj:r:{%s}", room);
}

void rstore_cmd_room(rstore_cmd *c, const char *sha, const rstore_keys *k,
                     const char *op, int64_t now_ms, uint32_t ttl_s,
                     int sharded, const char *instance, uint32_t stale_ms,
                     uint32_t log_keep) {
  rstore_cmd_str(c, "EVALSHA");
  rstore_cmd_str(c, sha);
  rstore_cmd_int(c, RSTORE_NKEYS);
  for (int i = 0; i < RSTORE_NKEYS; i++) rstore_cmd_str(c, k->key[i]);
  rstore_cmd_str(c, op);
  rstore_cmd_int(c, now_ms);
  rstore_cmd_int(c, ttl_s);
  rstore_cmd_str(c, k->chan);
  rstore_cmd_str(c, sharded ? "1" : "0");
  rstore_cmd_int(c, log_keep ? log_keep : RSTORE_LOG_KEEP);
  rstore_cmd_str(c, instance);
  rstore_cmd_int(c, stale_ms);
}

void rstore_outcome_format(char *out, size_t cap, int status, uint64_t completion) {
  snprintf(out, cap, "%d:%" PRIu64, status, completion);
}

int rstore_outcome_parse(const char *s, size_t len, int *status, uint64_t *completion) {
  char buf[RSTORE_OUTCOME_MAX], *end;
  if (!s || len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  long st = strtol(buf, &end, 10);
  if (end == buf || *end != ':' || st < 0 || st > 255) return -1;
  const char *c = end + 1;
  if (*c < '0' || *c > '9') return -1;
  unsigned long long done = strtoull(c, &end, 10);
  if (*end != '\0') return -1;
  *status = (int)st;
  *completion = (uint64_t)done;
  return 0;
}

void rstore_code_key(const char *code, char *out, size_t cap) {
  snprintf(out, cap, "otj:code:%s", code);
}

int rstore_room_of_channel(const char *chan, size_t len, char *room, size_t cap) {
  static const char pre[] = "otj:r:{";
  size_t pl = sizeof pre - 1;
  if (len < pl + 2 || memcmp(chan, pre, pl) || chan[len - 1] != '}') return 0;
  size_t n = len - pl - 1;
  if (n == 0 || n >= cap) return 0;
  memcpy(room, chan + pl, n);
  room[n] = '\0';
  return 1;
}
