/*
 * rstore — room keys, the embedded room script, and the argument layout of
 * every room.lua op (rstore.h). Each op's function below mirrors the comment
 * of its branch in room.lua; change both together.
 */
#include "rstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room_lua.h" /* generated from room.lua by CMake */

static const char *const parts[RSTORE_NKEYS] = {
    "meta", "members", "log", "answers", "marks", "ikeys", "presence", "outcomes", "attendance"};

const char *rstore_script(size_t *len) {
  if (len) *len = sizeof room_lua - 1;
  return (const char *)room_lua;
}

void rstore_cmd_init(rstore_cmd *c) { memset(c, 0, sizeof *c); }

void rstore_cmd_free(rstore_cmd *c) {
  for (int i = 0; i < c->ncopies; i++) free(c->copies[i]);
  free(c->copies);
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

void rstore_cmd_str(rstore_cmd *c, const char *s) { rstore_cmd_arg(c, s, strlen(s)); }

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

void rstore_cmd_copy(rstore_cmd *c, const void *p, size_t len) {
  if (c->failed) return;
  if (c->ncopies == c->copycap) {
    int cap = c->copycap ? c->copycap * 2 : 8;
    void **a = realloc(c->copies, (size_t)cap * sizeof *a);
    if (!a) {
      c->failed = 1;
      return;
    }
    c->copies = a;
    c->copycap = cap;
  }
  void *q = malloc(len ? len : 1);
  if (!q) {
    c->failed = 1;
    return;
  }
  if (len) memcpy(q, p, len);
  c->copies[c->ncopies++] = q;
  rstore_cmd_arg(c, q, len);
}

void rstore_room_keys(const char *room, rstore_keys *k) {
  for (int i = 0; i < RSTORE_NKEYS; i++)
    snprintf(k->key[i], sizeof k->key[i], "otj:r:{%s}:%s", room, parts[i]);
  snprintf(k->chan, sizeof k->chan, "otj:r:{%s}", room);
}

/* EVALSHA <sha> 8 <keys> <op> and room.lua's ARGV[2..8]. */
static void cmd_room(rstore_cmd *c, const rstore_call *x, const char *op) {
  rstore_cmd_init(c);
  rstore_cmd_str(c, "EVALSHA");
  rstore_cmd_str(c, x->sha);
  rstore_cmd_int(c, RSTORE_NKEYS);
  for (int i = 0; i < RSTORE_NKEYS; i++) rstore_cmd_str(c, x->keys->key[i]);
  rstore_cmd_str(c, op);
  rstore_cmd_int(c, x->now_ms);
  rstore_cmd_int(c, x->ttl_s);
  rstore_cmd_str(c, x->keys->chan);
  rstore_cmd_str(c, x->sharded ? "1" : "0");
  rstore_cmd_int(c, x->log_keep ? x->log_keep : RSTORE_LOG_KEEP);
  rstore_cmd_str(c, x->instance);
  rstore_cmd_int(c, x->stale_ms);
}

/* NULL bytes (the caller ran out of memory making them) fail the command. */
static void cmd_bytes(rstore_cmd *c, rstore_bytes b) {
  if (!b.p)
    c->failed = 1;
  else
    rstore_cmd_copy(c, b.p, b.len);
}

static void cmd_event(rstore_cmd *c, rstore_event e, int with_redacted) {
  cmd_bytes(c, e.whole);
  if (with_redacted) cmd_bytes(c, e.redacted);
}

void rstore_open(rstore_cmd *c, const rstore_call *x, int64_t host, int64_t module,
                 const char *code, uint32_t ntasks, uint64_t digest, const rstore_member *learners,
                 uint32_t n) {
  cmd_room(c, x, "open");
  rstore_cmd_int(c, host);
  rstore_cmd_int(c, module);
  rstore_cmd_str(c, code);
  rstore_cmd_int(c, ntasks);
  rstore_cmd_int(c, (int64_t)digest); /* kept as a signed int64 */
  for (uint32_t i = 0; i < n; i++) {
    rstore_cmd_int(c, learners[i].id);
    rstore_cmd_str(c, learners[i].name);
  }
}

void rstore_meta(rstore_cmd *c, const rstore_call *x) { cmd_room(c, x, "meta"); }

void rstore_snapshot_read(const rstore_keys *k, int i, const char *argv[2]) {
  /* the room's keys by their index in `parts` */
  static const struct {
    const char *cmd;
    int key;
  } reads[RSTORE_SNAP_READS] = {
      [RSTORE_SNAP_META] = {"HGETALL", 0},     [RSTORE_SNAP_MEMBERS] = {"HGETALL", 1},
      [RSTORE_SNAP_PRESENCE] = {"HGETALL", 6}, [RSTORE_SNAP_ANSWERS] = {"HVALS", 3},
      [RSTORE_SNAP_MARKS] = {"HVALS", 4},      [RSTORE_SNAP_OUTCOMES] = {"HGETALL", 7},
  };
  argv[0] = reads[i].cmd;
  argv[1] = k->key[reads[i].key];
}

void rstore_snapshot(rstore_cmd *c, const rstore_call *x) { cmd_room(c, x, "snapshot"); }

void rstore_join(rstore_cmd *c, const rstore_call *x, const rstore_joiner *j, uint32_t n,
                 uint32_t max_learners) {
  cmd_room(c, x, "join");
  rstore_cmd_int(c, n);
  for (uint32_t i = 0; i < n; i++) {
    rstore_cmd_int(c, j[i].user);
    rstore_cmd_str(c, j[i].is_host ? "host" : "learner");
    rstore_cmd_str(c, j[i].may_add ? "1" : "0");
    rstore_cmd_str(c, j[i].name);
  }
  rstore_cmd_int(c, max_learners);
}

void rstore_leave(rstore_cmd *c, const rstore_call *x, int64_t user, rstore_event left) {
  cmd_room(c, x, "leave");
  rstore_cmd_int(c, user);
  cmd_event(c, left, 0);
}

void rstore_add(rstore_cmd *c, const rstore_call *x, int64_t learner, const char *name,
                rstore_event added, uint32_t max_learners) {
  cmd_room(c, x, "add");
  rstore_cmd_int(c, learner);
  rstore_cmd_str(c, name);
  cmd_event(c, added, 0);
  rstore_cmd_int(c, max_learners);
}

void rstore_remove(rstore_cmd *c, const rstore_call *x, int64_t learner, rstore_event removed) {
  cmd_room(c, x, "remove");
  rstore_cmd_int(c, learner);
  cmd_event(c, removed, 0);
}

void rstore_step(rstore_cmd *c, const rstore_call *x, uint32_t task, rstore_event step) {
  cmd_room(c, x, "step");
  rstore_cmd_int(c, task);
  cmd_event(c, step, 0);
}

void rstore_answer(rstore_cmd *c, const rstore_call *x, int64_t by, int64_t learner, uint32_t task,
                   rstore_bytes key, rstore_bytes record, rstore_event answer, int current_only) {
  cmd_room(c, x, "answer");
  rstore_cmd_int(c, by);
  rstore_cmd_int(c, learner);
  rstore_cmd_int(c, task);
  cmd_bytes(c, key);
  cmd_bytes(c, record);
  cmd_event(c, answer, 1);
  rstore_cmd_str(c, current_only ? "1" : "0");
}

void rstore_mark(rstore_cmd *c, const rstore_call *x, int64_t learner, uint32_t task,
                 rstore_bytes record, rstore_event mark) {
  cmd_room(c, x, "mark");
  rstore_cmd_int(c, learner);
  rstore_cmd_int(c, task);
  cmd_bytes(c, record);
  cmd_event(c, mark, 1);
}

void rstore_mark_group(rstore_cmd *c, const rstore_call *x, const int64_t *learners, uint32_t n,
                       uint32_t task, int pass, int has_note, rstore_bytes note) {
  cmd_room(c, x, "mark");
  rstore_cmd_str(c, "*");
  rstore_cmd_int(c, task);
  rstore_cmd_str(c, pass ? "pass" : "fail");
  rstore_cmd_str(c, pass ? "1" : "2");
  if (has_note)
    cmd_bytes(c, note);
  else
    rstore_cmd_str(c, "");
  rstore_cmd_str(c, has_note ? "1" : "0");
  for (uint32_t i = 0; i < n; i++) rstore_cmd_int(c, learners[i]);
}

void rstore_outcomes_start(rstore_cmd *c, const rstore_call *x) { cmd_room(c, x, "outcomes"); }

void rstore_ctry(rstore_cmd *c, const rstore_call *x, int64_t learner, uint32_t window_ms,
                 uint32_t max_tries, int pending_status) {
  cmd_room(c, x, "ctry");
  rstore_cmd_int(c, learner);
  rstore_cmd_int(c, window_ms);
  rstore_cmd_int(c, max_tries);
  rstore_cmd_int(c, pending_status);
}

void rstore_outcome(rstore_cmd *c, int64_t learner, int status, int64_t completion,
                    rstore_event approved) {
  char st[RSTORE_OUTCOME_MAX];
  rstore_outcome_format(st, sizeof st, status, (uint64_t)completion);
  rstore_cmd_int(c, learner);
  rstore_cmd_copy(c, st, strlen(st));
  cmd_event(c, approved, 1);
}

void rstore_close(rstore_cmd *c, const rstore_call *x, rstore_event closed) {
  cmd_room(c, x, "close");
  cmd_event(c, closed, 0);
}

void rstore_records(rstore_cmd *c, const rstore_call *x, uint32_t ntasks, const int64_t *learners,
                    uint32_t n) {
  cmd_room(c, x, "records");
  rstore_cmd_int(c, ntasks);
  for (uint32_t i = 0; i < n; i++) rstore_cmd_int(c, learners[i]);
}

void rstore_beat_start(rstore_cmd *c, const rstore_call *x) { cmd_room(c, x, "beat"); }

void rstore_beat_user(rstore_cmd *c, int64_t user) { rstore_cmd_int(c, user); }

void rstore_sync(rstore_cmd *c, const rstore_call *x, uint64_t since) {
  cmd_room(c, x, "sync");
  rstore_cmd_int(c, (int64_t)since);
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

void rstore_invites_key(int64_t user, char *out, size_t cap) {
  snprintf(out, cap, "otj:inv:%lld", (long long)user);
}

void rstore_online_key(int64_t user, char *out, size_t cap) {
  snprintf(out, cap, "otj:on:%lld", (long long)user);
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
