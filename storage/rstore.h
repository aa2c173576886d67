/*
 * rstore — the Redis side of live rooms: key names, the room script and the
 * command lines that call it. It sends nothing itself: the server hands the
 * argv it builds to its Redis connection and reads the replies, whose shapes
 * room.lua documents.
 *
 * A room's keys are "otj:r:{ROOM}:<part>" and its channel "otj:r:{ROOM}", so
 * all of them hash to one slot (Redis Cluster keeps a room on one shard).
 * Join codes are "otj:code:<code>" -> room id, set only if absent.
 */
#ifndef OTJ_RSTORE_H
#define OTJ_RSTORE_H

#include <stddef.h>
#include <stdint.h>

#define RSTORE_NKEYS 8
#define RSTORE_KEY_MAX 96
#define RSTORE_LOG_KEEP 1000  /* events a room keeps for sync, by default */
#define RSTORE_DASH_CHANNEL "otj:dash"

/* The room script's text (NUL-terminated) and its length. */
const char *rstore_script(size_t *len);

/* A command line under construction: argv/len arrays that grow, and the
 * text of numbers appended to it. */
typedef struct rstore_cmd {
  int argc, cap;
  const char **argv;
  size_t *len;
  char *numbuf;        /* storage of formatted numbers */
  size_t numlen, numcap;
  int failed;          /* out of memory somewhere: do not send */
} rstore_cmd;

void rstore_cmd_init(rstore_cmd *c);
void rstore_cmd_free(rstore_cmd *c);
/* Append bytes the caller keeps alive until the command is sent. */
void rstore_cmd_arg(rstore_cmd *c, const void *p, size_t len);
void rstore_cmd_str(rstore_cmd *c, const char *s);
/* Append a number (the text is kept inside the command). */
void rstore_cmd_int(rstore_cmd *c, int64_t v);

/* Starts EVALSHA <sha> 8 <room keys> <op> <now> <ttl> <channel> <sharded>
 * <log keep> <instance> <presence staleness>; the op's own arguments are
 * appended after. `now_ms` is wall-clock time (instances compare it);
 * `log_keep` is how many events the room's log keeps (0: RSTORE_LOG_KEEP).
 * The sha, the instance name and `k` must outlive the command. */
typedef struct rstore_keys {
  char key[RSTORE_NKEYS][RSTORE_KEY_MAX];
  char chan[RSTORE_KEY_MAX];
} rstore_keys;

void rstore_room_keys(const char *room, rstore_keys *k);
void rstore_cmd_room(rstore_cmd *c, const char *sha, const rstore_keys *k,
                     const char *op, int64_t now_ms, uint32_t ttl_s, int sharded,
                     const char *instance, uint32_t stale_ms, uint32_t log_keep);

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

/* 1 when `chan` (not NUL-terminated) is a room channel; copies the id. */
int rstore_room_of_channel(const char *chan, size_t len, char *room, size_t cap);

#endif
