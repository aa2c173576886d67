/*
 * live_int.h — the inside of live rooms (live.h is the outside): the types
 * and the calls that the live_*.c files share, and nothing else includes.
 *
 * The files, in the order an event walks through them:
 *   live.c          the one `live` state, message dispatch, session hooks,
 *                   the presence heartbeat, start and stop;
 *   live_act.c      the small actions (step, answer, mark, add, remove,
 *                   leave, close) and the records they store;
 *   live_op.c       the op lifecycle: the room script, subscriptions,
 *                   live_call (encode, build, send) and reply parsing;
 *   live_room.c     the room table, attachments, the event ring: order, gap
 *                   repair, delivery;
 *   live_join.c     open, join, sync and snapshots;
 *   live_approve.c  approvals: records, R9, the writer thread, outcomes;
 *   live_dash.c     the otj:dash channel: dashboard counts, invitations,
 *                   sessions that change under open sockets.
 *
 * Everything runs on the loop thread, except the work functions of the
 * dashboard counts and of a room's close (libuv's pool, with the worker
 * SQLite handle) and the writer's thread (its own handle).
 *
 * Ownership, in one sentence each: a room (lroom) lives while a connection
 * is attached to it, an op holds a reference on it (refs), or an op waits
 * for its subscription; an attachment belongs to both its room and its
 * session; an event (ev_msg) belongs to the ring or the pending list that
 * holds it; an op belongs to the Redis callback it is sent with.
 */
#ifndef OTJ_LIVE_INT_H
#define OTJ_LIVE_INT_H

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdint.h>
#include <uv.h>

#include "live.h"
#include "otj_assert.h"
#include "psub.h"
#include "room.h"
#include "rstore.h"
#include "writer.h"
#include "ws.h"

#define LIVE_BUCKETS        4096 /* rooms hash table */
#define LIVE_RING           256  /* recent events an instance keeps per room */
#define LIVE_PENDING_MAX    4096 /* out-of-order events held per room */
#define LIVE_ATTACH_MAX     16   /* rooms one connection may be in */
#define LIVE_CODE_TRIES     20   /* attempts to find a free join code */
#define LIVE_WRONG_CODES    10   /* wrong join codes per user per minute */
#define LIVE_THROTTLE_SLOTS 4096
#define LIVE_ROOM_ID_LEN    12
#define LIVE_INSTANCE_LEN   16  /* this process's name in presence entries */
#define LIVE_DASH_DELAY_MS  300 /* dashboard refreshes are folded this long */
#define LIVE_BEAT_SLICES    10  /* the heartbeat serves the rooms in slices */
#define LIVE_WATCH_MAX      64  /* responsibles one `watch` follows */

/* the refusal when a connection's LIVE_ATTACH_MAX rooms are all open */
#define LIVE_TOO_MANY_ROOMS "This connection is in too many open rooms; leave one first."

/* ---- events (live_room.c) ----------------------------------------------- */

#define LIVE_EV_TYPE_MAX 16

/* One room event as the log and the channel carry it: {seq, subject,
 * whole, redacted}, written by room.lua's emit. */
typedef struct ev_msg {
  struct ev_msg *next; /* in a pending list */
  uint64_t seq;
  uint64_t subject;            /* learner the event is about, 0 for none */
  int64_t sent_ms;             /* channel: the publishing call's wall clock (ms), else 0 */
  char type[LIVE_EV_TYPE_MAX]; /* the `type` of the whole map, "" if none */
  size_t wlen, rlen;           /* rlen 0: the same for everyone */
  uint8_t *whole, *red;
  /* a group mark (room.lua's, subject 0): its learners, task, result and
   * note, read from the whole map; each learner of it is sent only their
   * own part (proto_group_view) */
  uint32_t ngroup;
  uint64_t *group; /* ngroup ids, inside bytes */
  uint32_t gtask;
  proto_result gresult;
  int ghas_note;
  proto_str gnote; /* points into whole */
  uint8_t bytes[];
} ev_msg;

/* Parses one event (msgpack), and the clock that follows it on the channel
 * (sent_ms; 0 when absent, as in the log). Returns it (free() it), or NULL
 * when the bytes are not an event. */
ev_msg *ev_parse(const char *data, size_t len);

/* 1 when the event's type is `type`. */
int ev_is(const ev_msg *e, const char *type);

/* ---- the event ring: order and gaps (live_room.c, pure) ------------------ */

/* The recent events of a room on this instance, and those held after a
 * gap. Knows nothing of sockets or Redis: the caller says how to deliver. */
typedef struct ev_ring {
  int seq_known;
  uint64_t seq; /* highest seq delivered in order on this instance */
  ev_msg *slot[LIVE_RING];
  ev_msg *pend; /* events after a gap, sorted by seq */
  size_t npend;
} ev_ring;

typedef void ev_deliver_fn(void *ud, const ev_msg *e);

/* An event arrived (channel or log): delivers it and every held event that
 * now follows on, in seq order, through `deliver`; holds it when it comes
 * after a gap; drops it when it is old or a duplicate. Takes e. Returns 1
 * when a gap is open (the caller fetches the missing events), else 0. */
int ev_ring_accept(ev_ring *g, ev_msg *e, ev_deliver_fn *deliver, void *ud);

/* The room's current seq, read after the subscription: the first one
 * known decides where delivery starts; held events that follow on go out.
 * Returns like ev_ring_accept. */
int ev_ring_learn(ev_ring *g, uint64_t seq, ev_deliver_fn *deliver, void *ud);

/* The log no longer reaches back: jump to `seq`, drop what is held. */
void ev_ring_restart(ev_ring *g, uint64_t seq);

/* The ring's event with this seq, or NULL when it is not kept any more. */
const ev_msg *ev_ring_get(const ev_ring *g, uint64_t seq);

/* The first seq the ring still holds for a reader that has `last`. */
uint64_t ev_ring_from(const ev_ring *g, uint64_t last);

void ev_ring_free(ev_ring *g);

/* ---- rooms and attachments (live_room.c) --------------------------------- */

typedef struct lroom lroom;
typedef struct live_op live_op;

/* One connection in one room. */
typedef struct attach {
  struct attach *rnext, *rprev; /* in the room */
  struct attach *snext;         /* in the session */
  ws_sess *s;
  lroom *r;
  uint64_t last; /* last seq this connection has */
  int host;
  int ready; /* 0 while its snapshot or sync is on the way */
} attach;

/* An op waiting for the room's subscription. */
typedef struct waiter {
  struct waiter *next;
  void (*fn)(void *op, int ok);
  void *op;
} waiter;

typedef enum lroom_sub {
  LROOM_UNSUBSCRIBED = 0,
  LROOM_SUBSCRIBING,
  LROOM_SUBSCRIBED,
} lroom_sub;

struct lroom {
  lroom *hnext;
  char id[PROTO_MAX_ROOM + 1];
  rstore_keys keys;
  lroom_sub sub;
  waiter *waiters;
  ev_ring ring;
  int fetching;   /* a gap repair is on the way */
  int meta_known; /* host, module and the module's tasks are read */
  int64_t host, module;
  uint32_t opened_ntasks; /* the module's task count as the room opened (meta
                           * "ntasks"; 0: unknown): a module edited since is
                           * refused at approval */
  int digest_known;       /* the room's record has the digest (rooms opened before it do not) */
  uint64_t digest;        /* its module's tasks as the room opened with them */
  char code[PROTO_MAX_CODE + 1];
  char host_name[128];
  room_module *mod;
  attach *atts;
  int refs;   /* ops in flight */
  int closed; /* this instance has seen the room closed (its `closed` event or
               * a snapshot saying so): its attachments may be let go */
  /* joins gathered to go to Redis together (live_join.c): queued ops, one
   * call in flight at a time, the room listed on L.joins.due while a flush
   * is scheduled */
  live_op *jq, **jq_tail;
  int join_inflight, jq_listed;
  struct lroom *jq_next;
  uint64_t jq_last_ms; /* when the last gathered call left */
  /* the room's learners as the last join reply listed them, sorted: a
   * hint only (a learner listed skips the R7 query; room.lua still decides,
   * and a refusal is retried with R7 asked) */
  uint64_t *known;
  uint32_t n_known;
  int csecret_known;         /* csecret is read (live_confirm.c) */
  unsigned char csecret[32]; /* the room's confirmation secret: never sent */
  /* presence news held back (live_room.c): the events held_from..held_to
   * (0: none) wait in the ring, the room listed on L.holds until due_ms */
  uint64_t held_from, held_to, held_due_ms;
  struct lroom *held_next;
};

lroom *room_find(const char *id);
/* Finds or makes the room. NULL when out of memory. */
lroom *room_get(const char *id);
/* Takes and drops a reference (an op, a delivery in progress). */
void room_hold(lroom *r);
void room_release(lroom *r);
/* Frees the room when no connection and no op needs it any more. */
void room_maybe_free(lroom *r);
/* Frees a room at shutdown, whatever holds it. */
void room_destroy(lroom *r);

attach *att_find(ws_sess *s, proto_str room);
size_t att_count(ws_sess *s);
attach *att_add(ws_sess *s, lroom *r, int host);
/* The client used a: it goes first in its session's list, which is so
 * ordered from the most to the least recently used. */
void att_touch(attach *a);
/* Unlinks and frees a; may free its room. */
void att_remove(attach *a);

/* The channel message of a room: ordered, repaired, delivered. */
void room_on_event(const char *room_id, const char *data, size_t len);
/* The current seq from a script reply (read after the subscription). */
void room_learn_seq(lroom *r, uint64_t seq);
/* Sends an attachment every ring event after a->last. */
void room_catch_up(attach *a);
/* Sends one event to one attachment, whole or redacted as it may see it. */
void room_send_event(attach *a, const ev_msg *e);
/* Fetches the events after the ring's seq from the room's log. */
void room_fetch_gap(lroom *r);

/* ---- ops: script calls (live_op.c) --------------------------------------- */

typedef void live_op_fn(live_op *o, redisReply *rep);

/* A request to Redis on behalf of a client (ref, rid) and a room (r). */
struct live_op {
  live_op_fn *fn; /* the reply's handler */
  ws_ref *ref;    /* the client that asked, if any */
  proto_rid rid;
  lroom *r;                    /* holds a room reference */
  uint64_t since;              /* sync: the last seq the client has */
  int is_sync;                 /* join: started by a sync from outside the room */
  int64_t added;               /* add: the learner to invite once added */
  char key[PROTO_MAX_KEY + 1]; /* answer: the idempotency key to ack */
  int inflight;                /* sent to Redis again from its own callback */
  int may_add;                 /* join: R7 allows the learner in (decided when queued) */
  int r7_skipped;              /* join: may_add was not asked (the learner seemed a member) */
  live_op *jnext;              /* join: the next in the room's queue or batch */
  int in_cb;
  int snap_sent;          /* sent with the snapshot reads (live_op_send_snap) */
  const redisReply *snap; /* during the handler of such a call: EXEC's reply, whose
                             elements RSTORE_SNAP_* + 1 are the reads; else NULL */
  void *extra;            /* an op's own context, freed with extra_free */
  void (*extra_free)(void *);
};

live_op *live_op_new(live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r);
void live_op_free(live_op *o);
/* The client that asked, or NULL when it is gone (or there was none). */
ws_sess *live_op_sess(const live_op *o);

/* 1 when Redis, the room script and the pub/sub connection are all there. */
int live_redis_ready(void);
/* Loads the room script (again); rooms resync once it is there. */
void live_load_script(void);

/* The fixed head of every script call for room r. */
rstore_call live_rcall(const lroom *r);

/* An event's bodies as the script takes them: whole, and redacted when it
 * has private fields. `slot` (0 or 1) picks the scratch buffers; the bytes
 * stay valid until the next call with the same slot. Out of memory, the
 * bytes are NULL and a command they are put in is not sent. */
rstore_event live_event(const proto_event *ev, int slot);

/* The one way a room message reaches the script: sends `c` (built by an
 * rstore_ op function) as op (fn, s, rid, r); the reply goes to fn, with the
 * op (fn NULL: nobody reads it). Takes c. Returns the op in flight, whose named fields the caller
 * may set before the loop runs again, or NULL when it could not be sent (the client, if any, is
 * told). */
live_op *live_call(rstore_cmd *c, live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r);
/* Sends `c` again for an op already in flight (from its own reply).
 * Returns 0 or -1 (the op is then freed, the client told). */
int live_op_send(live_op *o, rstore_cmd *c);
/* The same for the script calls that answer with a snapshot (ops snapshot
 * and join): `c` goes in a MULTI with the room's snapshot reads after it.
 * The handler gets the script's reply as `rep` and the reads in o->snap
 * (NULL when the transaction did not run: rep then says why). */
int live_op_send_snap(live_op *o, rstore_cmd *c);
live_op *live_call_snap(rstore_cmd *c, live_op_fn *fn, ws_sess *s, proto_rid rid, lroom *r);

/* Runs fn(op, ok) once the room's channel is subscribed. */
void live_when_subscribed(lroom *r, void (*fn)(void *, int), void *op);

/* ---- script replies (live_op.c, pure) ------------------------------------ */

/* What a script reply says: room.lua answers {"ok", seq, ...}, {"err",
 * code, msg} or {"old", seq}; Redis itself may answer an error (OOM ...). */
typedef enum live_reply_kind {
  LIVE_REPLY_OK,
  LIVE_REPLY_OLD,      /* sync: the log no longer reaches back */
  LIVE_REPLY_ERR,      /* the script refused: code, msg */
  LIVE_REPLY_NONE,     /* no reply (the connection dropped) */
  LIVE_REPLY_FULL,     /* Redis is at maxmemory: nothing written */
  LIVE_REPLY_NOSCRIPT, /* Redis lost the script (flushed, restarted): it is loaded again */
  LIVE_REPLY_REFUSED,  /* another Redis error */
  LIVE_REPLY_BAD,      /* not a shape room.lua makes */
} live_reply_kind;

typedef struct live_reply {
  live_reply_kind kind;
  uint64_t seq;         /* OK, OLD */
  proto_code code;      /* ERR */
  const char *err_name; /* ERR: the script's code name ("not_found" ...) */
  const char *msg;      /* ERR: the script's sentence */
} live_reply;

/* Reads a reply (valid while rep is). */
live_reply live_reply_parse(const redisReply *rep);

/* Tells the client why a script call failed. Returns 1 when it failed
 * (told or not), 0 when the reply is "ok". */
int live_reply_failed(live_op *o, redisReply *rep);

/* ---- stored records (live_act.c) ----------------------------------------- */

/* Records room.lua keeps as otjd wrote them: an answer is [learner, task,
 * by, 0, value bytes], a mark [learner, task, result (1 pass, 2 fail), note
 * or nil] and, when it carries evidence, its hash as a fifth field. */
#define REC_ANSWER_FIELDS 5
#define REC_MARK_FIELDS   4

/* Unpacks one stored record into u (destroy it) and returns its fields (at
 * least n; later fields are optional), or NULL when it is not such a record. */
msgpack_object *rec_fields(msgpack_unpacked *u, const redisReply *x, uint32_t n);

/* The evidence hash of a mark record whose fields rec_fields returned, or
 * an empty string (valid while u is). */
proto_str rec_mark_evidence(const msgpack_unpacked *u);

/* ---- the other files' entries -------------------------------------------- */

void live_open(ws_sess *s, const proto_msg *m); /* live_join.c */
void live_join(ws_sess *s, const proto_msg *m);
void live_sync(ws_sess *s, const proto_msg *m);
/* Lets a join code go (the room failed to open, or closed). */
void live_drop_code(const char *code);
/* The "old" of a gap repair: a fresh snapshot for every connection here. */
void live_resnapshot(lroom *r);
/* Start and stop the holding of presence news (live_room.c); stop sends
 * what is held. */
void live_hold_start(otjd *d);
void live_hold_stop(void);

/* Start and stop the gathering of joins (live_join.c); stop drops what
 * waits (shutdown). */
void live_join_start(otjd *d);
void live_join_stop(void);

void live_step(ws_sess *s, const proto_msg *m); /* live_act.c */
void live_answer(ws_sess *s, const proto_msg *m);
void live_mark(ws_sess *s, const proto_msg *m);
void live_add(ws_sess *s, const proto_msg *m);
void live_remove(ws_sess *s, const proto_msg *m);
void live_leave(ws_sess *s, const proto_msg *m);
void live_close(ws_sess *s, const proto_msg *m);
/* This connection leaves room r (presence); s may be NULL: nobody to answer. */
void live_send_leave(lroom *r, int64_t user, ws_sess *s, proto_rid rid);
/* Makes space for one more room on a full connection: it leaves the closed
 * room it used least recently. Returns 0 when none of its rooms is closed. */
int live_let_go_closed(ws_sess *s);
/* The client's attachment to `room`, or an err sent and NULL. */
attach *live_member_of(ws_sess *s, proto_rid rid, proto_str room, int host_only);
/* ok {rid, seq} for a script reply {"ok", seq}. */
void live_ok_reply(live_op *o, redisReply *rep);
/* Records the close of `room` in the history; then tells s (if not NULL)
 * `ok` for rid. */
void live_record_closed(const char *room, ws_sess *s, proto_rid rid, uint64_t seq);

/* ---- audit entries of room actions (live_audit.c) --------------------------- */

/* Appends an audit entry on the worker pool (takes `detail`, JSON or NULL);
 * a failure is logged. */
void live_audit(int64_t actor, const char *action, const char *subject, char *detail);
/* The detail of an "otj.mark" entry (malloc'd JSON, NULL out of memory). */
char *live_audit_mark_detail(const char *room, uint64_t learner, uint32_t task, int pass,
                             const char *note, size_t note_len);
/* The same for a group mark: the learners the host listed. */
char *live_audit_group_mark_detail(const char *room, const uint64_t *learners, uint32_t n,
                                   uint32_t task, int pass, const char *note, size_t note_len);

void live_confirm(ws_sess *s, const proto_msg *m); /* live_confirm.c */
void live_confirm_code(ws_sess *s, const proto_msg *m);

int live_approve_start(otjd *d); /* live_approve.c */
void live_approve(ws_sess *s, const proto_msg *m);
void live_approve_stop(void);

/* ---- the otj:dash channel (live_dash.c) ---------------------------------- */

/* Messages between instances on RSTORE_DASH_CHANNEL. The first byte says
 * what follows:
 *   'P'                                    pending counts changed: refresh
 *   'I' user(8, big-endian) frame          an invite frame for a learner
 *   'U' instance(16) user(8) kind('R'|'D') a user's rights changed (R) or
 *                                          the user was deactivated (D)
 *   'T' instance(16) digest(32)            a login session was ended
 *   'O' user(8)                            a responsible came online or went
 *                                          offline on some instance
 *   'Q' user(8) ask                        a learner asked responsible `user`
 *                                          for OTJ (ask: live_dash.c, ask_pack)
 * The instance is the sender's name: it skips its own 'U' and 'T' (it has
 * acted on them already). */
#define DASH_PENDING     'P'
#define DASH_INVITE      'I'
#define DASH_USER        'U'
#define DASH_TOKEN       'T'
#define DASH_ONLINE      'O'
#define DASH_ASK         'Q'
#define DASH_ONLINE_LEN  9
#define DASH_ASK_HEAD    26 /* learner, module, requested_at (8 each), name length (2) */
#define DASH_INVITE_HEAD 9
#define DASH_USER_LEN    (1 + LIVE_INSTANCE_LEN + 8 + 1)
#define DASH_TOKEN_LEN   (1 + LIVE_INSTANCE_LEN + 32)

typedef struct dash_msg {
  char tag;             /* DASH_*, or 0: not a message of ours */
  const char *instance; /* U, T: the sender (LIVE_INSTANCE_LEN bytes) */
  int64_t user;         /* I, U, O, Q */
  char kind;            /* U: 'R' or 'D' */
  const uint8_t *frame; /* I: the frame; T: the digest (32 bytes); Q: the ask */
  size_t frame_len;
} dash_msg;

/* Reads a dashboard message; pointers into data. Pure. */
dash_msg dash_parse(const uint8_t *data, size_t len);
/* Writes the head of an invite for `user` into head[DASH_INVITE_HEAD]. */
void dash_invite_head(uint8_t *head, int64_t user);
/* Writes a user change into m[DASH_USER_LEN]. */
void dash_user_msg(uint8_t *m, const char *instance, int64_t user, char kind);
/* Writes a token end into m[DASH_TOKEN_LEN]. */
void dash_token_msg(uint8_t *m, const char *instance, const unsigned char digest[32]);

/* Writes "user came online / went offline" into m[DASH_ONLINE_LEN]. */
void dash_online_msg(uint8_t *m, int64_t user);
/* Publishes a message on the dashboard channel (when Redis is up). */
void dash_publish(const void *data, size_t len);
/* A message on the dashboard channel. */
void dash_on_message(const char *data, size_t len);
/* Invites learner `user` to room r (published, and kept for later). */
void dash_invite(int64_t user, const char *room, const char *code, int64_t module,
                 const char *title, int64_t host, const char *host_name);
/* Forgets learner `user`'s invitation to `room`. */
void dash_forget_invite(int64_t user, const char *room);
/* Folds a refresh of the local responsibles' counts. */
void dash_schedule(void);
int dash_start(otjd *d);
void dash_stop(void);

/* ---- responsibles online (live_presence.c) -------------------------------- */

/* A responsible's connection said hello / closed: the first and the last
 * one on this instance write and remove its presence and announce it. A
 * closed connection's watch ends. */
void presence_session_ready(ws_sess *s);
void presence_session_closed(ws_sess *s);
/* `watch` and `unwatch` (PROTOCOL.md 5b). */
void presence_watch(ws_sess *s, const proto_msg *m);
void presence_unwatch(ws_sess *s, const proto_msg *m);
/* 'O' on the channel: watchers of `user` read again. */
void presence_changed(int64_t user);
void presence_start(otjd *d);
void presence_stop(void);

/* ---- the one state (live.c) ---------------------------------------------- */

typedef struct live {
  otjd *d;
  char instance[LIVE_INSTANCE_LEN + 1]; /* this process's name */
  uv_timer_t beat;                      /* presence heartbeat */
  int beat_ready;
  unsigned beat_tick;
  psub *ps;
  char sha[48]; /* the room script's, once loaded */
  int sha_ok;
  int up; /* Redis is up (rconn's word) */
  lroom *tab[LIVE_BUCKETS];
  /* delivery (live_room.c): the frames of the event being delivered */
  proto_buf fw, fr;
  ws_frame *variant[2];
  proto_buf evb[2][2]; /* live_event's scratch: [slot][whole, redacted] */
  proto_buf tmp;       /* one reply frame at a time */
  struct {
    uint64_t minute;
    uint32_t n;
  } wrong[LIVE_THROTTLE_SLOTS];
  writer *w; /* the approval writer: live_approve.c starts and stops it */
  struct {   /* joins gathered per room: live_join.c */
    uv_timer_t timer;
    int timer_ready, armed;
    lroom *due;
  } joins;
  struct { /* presence news held per room: live_room.c */
    uv_timer_t timer;
    int timer_ready;
    lroom *head, **tail; /* rooms in the order they are due */
  } holds;
  struct { /* dashboard counts: live_dash.c */
    int running, again;
    uint64_t delay_ms;
    uv_timer_t timer;
    int timer_ready;
  } dash;
} live;

extern live L;

/* Wall-clock milliseconds (instances compare them). */
int64_t live_wall_ms(void);

/* Copies a protocol string into a NUL-terminated buffer, cut to fit. */
void live_copy_str(char *dst, size_t cap, proto_str s);

/* The room list walked by the heartbeat and resyncs. */
void live_resync_rooms(void);

#endif
