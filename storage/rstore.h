/*
 * rstore — the Redis side of live rooms, in one place next to room.lua:
 * every key name, the room script and the argument layout of each of its
 * ops. It sends nothing itself: the server hands the argv it builds to its
 * Redis connection and reads the replies, whose shapes room.lua documents.
 *
 * A room's keys are "otj:r:{ROOM}:<part>" and its channel "otj:r:{ROOM}", so
 * all of them hash to one slot (Redis Cluster keeps a room on one shard).
 * Join codes are "otj:code:<code>" -> room id, set only if absent. A
 * learner's pending invitations are the hash "otj:inv:<user>" (room id ->
 * invite frame), expiring with the room. The dashboard channel is "otj:dash"
 * (its message framing is the server's: server/live_int.h).
 *
 * The one design idea: a script call is built by one function per op
 * (rstore_open, rstore_join, ...) whose parameters are the op's arguments in
 * room.lua's order, so a change to a layout is made here and in room.lua,
 * and nowhere else. Event bodies handed to them are copied into the command.
 */
#ifndef OTJ_RSTORE_H
#define OTJ_RSTORE_H

#include <stddef.h>
#include <stdint.h>

#define RSTORE_NKEYS        9
#define RSTORE_KEY_MAX      96
#define RSTORE_LOG_KEEP     1000 /* events a room keeps for sync, by default */
#define RSTORE_DASH_CHANNEL "otj:dash"

/* The parts of a room, in KEYS order (room.lua's KEYS[1..9]). */
enum rstore_part {
  RSTORE_META,
  RSTORE_MEMBERS,
  RSTORE_LOG,
  RSTORE_ANSWERS,
  RSTORE_MARKS,
  RSTORE_IKEYS,
  RSTORE_PRESENCE,
  RSTORE_OUTCOMES,
  RSTORE_ATTENDANCE
};

/* The room script's text (NUL-terminated) and its length. */
const char *rstore_script(size_t *len);

/* A command line under construction: argv/len arrays that grow, and the
 * text of numbers appended to it. */
typedef struct rstore_cmd {
  int argc, cap;
  const char **argv;
  size_t *len;
  char *numbuf; /* storage of formatted numbers */
  size_t numlen, numcap;
  int failed;    /* out of memory somewhere: do not send */
  void **copies; /* rstore_cmd_copy's bytes */
  int ncopies, copycap;
} rstore_cmd;

void rstore_cmd_init(rstore_cmd *c);
void rstore_cmd_free(rstore_cmd *c);
/* Append bytes the caller keeps alive until the command is sent. */
void rstore_cmd_arg(rstore_cmd *c, const void *p, size_t len);
void rstore_cmd_str(rstore_cmd *c, const char *s);
/* Append a number (the text is kept inside the command). */
void rstore_cmd_int(rstore_cmd *c, int64_t v);
/* Append a copy of bytes, kept inside the command until it is freed. */
void rstore_cmd_copy(rstore_cmd *c, const void *p, size_t len);

typedef struct rstore_keys {
  char key[RSTORE_NKEYS][RSTORE_KEY_MAX];
  char chan[RSTORE_KEY_MAX];
} rstore_keys;

void rstore_room_keys(const char *room, rstore_keys *k);

/* What every call of the room script carries before the op's own
 * arguments: EVALSHA <sha> 8 <room keys> <op> <now> <ttl> <channel>
 * <sharded> <log keep> <instance> <presence staleness> (room.lua's ARGV[1..8];
 * the op's own arguments follow from ARGV[9]). `now_ms` is wall-clock time
 * (instances compare it); `log_keep` is how many events the room's log
 * keeps (0: RSTORE_LOG_KEEP). The sha, the instance name and `keys` must
 * outlive the command. */
typedef struct rstore_call {
  const char *sha;
  const rstore_keys *keys;
  int64_t now_ms;
  uint32_t ttl_s;
  int sharded;
  const char *instance;
  uint32_t stale_ms;
  uint32_t log_keep;
} rstore_call;

/* An event as the script records it: its `e` map whole, and redacted (len
 * 0 when the event has no private field). Copied into the command; a NULL
 * pointer marks the command failed (not to be sent). */
typedef struct rstore_bytes {
  const void *p;
  size_t len;
} rstore_bytes;
typedef struct rstore_event {
  rstore_bytes whole, redacted;
} rstore_event;

/* A learner of a room: id and display name. */
typedef struct rstore_member {
  int64_t id;
  const char *name;
} rstore_member;

/* One function per op of room.lua: each starts `c` (rstore_cmd_init, free
 * it with rstore_cmd_free once sent) and appends the op's arguments in the
 * script's order. The reply of each is room.lua's. */
void rstore_open(rstore_cmd *c, const rstore_call *x, int64_t host, int64_t module,
                 const char *code, uint32_t ntasks, uint64_t digest, const rstore_member *learners,
                 uint32_t n);
void rstore_meta(rstore_cmd *c, const rstore_call *x);
void rstore_snapshot(rstore_cmd *c, const rstore_call *x);
/* One connection coming into a room: is_host joins as the host; may_add:
 * a learner who is not a member yet may come in (R7, decided by the
 * caller). `name` stays alive until the command is sent. */
typedef struct rstore_joiner {
  int64_t user;
  int is_host, may_add;
  const char *name;
} rstore_joiner;

/* The joins of n connections in one call: room.lua records the one
 * `joined` event itself; the reply is {"ok", seq, <snapshot>..., verdicts}
 * with one verdict per joiner, in order ("ok" or a refusal's code). */
void rstore_join(rstore_cmd *c, const rstore_call *x, const rstore_joiner *j, uint32_t n,
                 uint32_t max_learners);
void rstore_leave(rstore_cmd *c, const rstore_call *x, int64_t user, rstore_event left);
void rstore_add(rstore_cmd *c, const rstore_call *x, int64_t learner, const char *name,
                rstore_event added, uint32_t max_learners);
void rstore_remove(rstore_cmd *c, const rstore_call *x, int64_t learner, rstore_event removed);
void rstore_step(rstore_cmd *c, const rstore_call *x, uint32_t task, rstore_event step);
/* `record` is the stored answer record; current_only: refuse an answer to
 * a task that is not the room's current one (R8). */
void rstore_answer(rstore_cmd *c, const rstore_call *x, int64_t by, int64_t learner, uint32_t task,
                   rstore_bytes key, rstore_bytes record, rstore_event answer, int current_only);
void rstore_mark(rstore_cmd *c, const rstore_call *x, int64_t learner, uint32_t task,
                 rstore_bytes record, rstore_event mark);
/* A group mark: the same result (and note, when has_note) for every learner
 * listed who has no mark for the task yet; room.lua makes the records and
 * the one event. The reply is {"ok", seq, marked}. */
void rstore_mark_group(rstore_cmd *c, const rstore_call *x, const int64_t *learners, uint32_t n,
                       uint32_t task, int pass, int has_note, rstore_bytes note);
/* Outcomes are appended one by one after rstore_outcomes_start. */
void rstore_outcomes_start(rstore_cmd *c, const rstore_call *x);
void rstore_outcome(rstore_cmd *c, int64_t learner, int status, int64_t completion,
                    rstore_event approved);
void rstore_close(rstore_cmd *c, const rstore_call *x, rstore_event closed);
/* Counts one confirmation try of `learner` (a member whose outcome has the
 * status `pending_status`, in an open room): at most max_tries per window;
 * past them `err rate_limited`. */
void rstore_ctry(rstore_cmd *c, const rstore_call *x, int64_t learner, uint32_t window_ms,
                 uint32_t max_tries, int pending_status);
void rstore_records(rstore_cmd *c, const rstore_call *x, uint32_t ntasks, const int64_t *learners,
                    uint32_t n);
/* Users are appended one by one after rstore_beat_start. */
void rstore_beat_start(rstore_cmd *c, const rstore_call *x);
void rstore_beat_user(rstore_cmd *c, int64_t user);
void rstore_sync(rstore_cmd *c, const rstore_call *x, uint64_t since);

/* A room's snapshot is read natively, by the RSTORE_SNAP_READS commands
 * below sent in one MULTI right after the script call of op snapshot or
 * join (which answer {"ok", seq, ...} and leave the reading to these):
 * Redis answers an HGETALL at a fraction of what the same read costs from
 * Lua, and the MULTI keeps call and reads one atomic step. The EXEC reply's
 * element 0 is the script's; RSTORE_SNAP_* + 1 are the reads':
 * meta and members (HGETALL), presence (HGETALL, raw "user|instance" ->
 * "connections:last beat"), answers and marks (HVALS: the records), and
 * outcomes (HGETALL). */
enum {
  RSTORE_SNAP_META,
  RSTORE_SNAP_MEMBERS,
  RSTORE_SNAP_PRESENCE,
  RSTORE_SNAP_ANSWERS,
  RSTORE_SNAP_MARKS,
  RSTORE_SNAP_OUTCOMES,
  RSTORE_SNAP_READS
};
/* The i-th read as a two-word command (valid while k is). */
void rstore_snapshot_read(const rstore_keys *k, int i, const char *argv[2]);

/* A learner's outcome as room.lua's outcomes hash keeps it:
 * "<status>:<completion>", status a proto_status number, completion 0 when
 * there is none. rstore_outcome_format writes it into out (at least
 * RSTORE_OUTCOME_MAX bytes); rstore_outcome_parse reads one of `len` bytes and
 * returns 0, or -1 when it is not such a value. */
#define RSTORE_OUTCOME_MAX 40
void rstore_outcome_format(char *out, size_t cap, int status, uint64_t completion);
int rstore_outcome_parse(const char *s, size_t len, int *status, uint64_t *completion);

/* "otj:code:<code>" into out. */
void rstore_code_key(const char *code, char *out, size_t cap);

/* "otj:inv:<user>" into out: the learner's pending invitations. */
void rstore_invites_key(int64_t user, char *out, size_t cap);

/* Where a responsible's presence outside rooms lives: "otj:on:<user>", a
 * hash instance -> last beat (ms), one field per otjd instance that holds a
 * connection of theirs; it expires when nobody beats for it any more. */
void rstore_online_key(int64_t user, char *out, size_t cap);

/* 1 when `chan` (not NUL-terminated) is a room channel; copies the id. */
int rstore_room_of_channel(const char *chan, size_t len, char *room, size_t cap);

#endif
