/* proto.h -- the otj.v1 wire codec.
 *
 * This module turns the bytes of one client websocket frame into a typed
 * `proto_msg`, and typed server messages into the bytes of one frame. It knows
 * nothing of sockets, rooms or storage: the server hands it a buffer and gets a
 * struct back, or hands it a struct and gets bytes back. PROTOCOL.md describes
 * the format itself.
 *
 * The one design idea: a client frame is never trusted to size anything. Before
 * any field is read, a bounded walker checks the whole frame (every declared
 * length against the bytes really left, nesting depth, object count, exactly one
 * top-level map with string keys and nothing after it). Decoding then reads the
 * frame in place: strings are slices into the caller's buffer and arrays land
 * in fixed-capacity arrays inside `proto_msg`, so a decode performs no
 * allocation at all. msgpack-c is used only on the encoding side, to pack
 * trusted data the server built itself.
 */
#ifndef OTJ_PROTO_H
#define OTJ_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Limits. Capacities are compile-time (they size arrays inside proto_msg);
 * proto_limits may lower the array limits at run time but never raise them.
 * ------------------------------------------------------------------------- */

#define PROTO_VERSION     1 /* the only value hello.v may carry */
#define PROTO_SUBPROTOCOL "otj.v1"

#define PROTO_DEFAULT_MAX_FRAME   (64u * 1024u) /* bytes in one client frame */
#define PROTO_DEFAULT_MAX_DEPTH   8u            /* nested maps/arrays, top map = 1 */
#define PROTO_DEFAULT_MAX_OBJECTS 8192u         /* msgpack objects in one frame */
#define PROTO_HARD_MAX_DEPTH      64u           /* max_depth is clamped to this */

#define PROTO_MAX_LEARNERS    200u /* user ids in open.learners */
#define PROTO_MAX_DECISIONS   200u /* entries in approve.decisions */
#define PROTO_MAX_VALUE_ITEMS 64u  /* integers in an array answer value */

#define PROTO_MAX_TOKEN       512u  /* bytes in hello.token */
#define PROTO_MAX_ROOM        64u   /* bytes in a room id */
#define PROTO_MAX_CODE        16u   /* bytes in a join code */
#define PROTO_MAX_KEY         64u   /* bytes in an answer idempotency key (min 1) */
#define PROTO_MAX_NOTE        2000u /* bytes in a mark or approval note */
#define PROTO_EVIDENCE_LEN    64u   /* hex SHA-256 of an evidence upload */
#define PROTO_MAX_ANSWER_TEXT 4000u /* bytes in a string answer value */

#define PROTO_ERR_MSG_MAX 160 /* size of proto_error.msg, NUL included */

typedef struct proto_limits {
  size_t max_frame;         /* larger frames: PROTO_TOO_LARGE, not parsed */
  uint32_t max_depth;       /* deeper nesting: PROTO_TOO_LARGE */
  uint32_t max_objects;     /* more objects in total: PROTO_TOO_LARGE */
  uint32_t max_learners;    /* clamped to PROTO_MAX_LEARNERS */
  uint32_t max_decisions;   /* clamped to PROTO_MAX_DECISIONS */
  uint32_t max_value_items; /* clamped to PROTO_MAX_VALUE_ITEMS */
} proto_limits;

/* The defaults above, as a value the server may adjust from its config. */
proto_limits proto_limits_default(void);

/* ---------------------------------------------------------------------------
 * Small shared types
 * ------------------------------------------------------------------------- */

/* A byte string that is not NUL-terminated. In a decoded proto_msg it points
 * into the frame buffer given to proto_decode and is valid only while that
 * buffer is alive and unchanged. For encoding, any bytes the caller owns for
 * the duration of the encode call. */
typedef struct proto_str {
  const char *ptr;
  uint32_t len;
} proto_str;

/* A slice over a C string (NULL gives the empty slice). */
proto_str proto_s(const char *cstr);
/* True when s holds exactly the bytes of cstr. */
bool proto_str_eq(proto_str s, const char *cstr);

/* err codes of otj.v1; the numeric values are ours, the wire carries names. */
typedef enum proto_code {
  PROTO_OK = 0,
  PROTO_BAD_REQUEST,
  PROTO_UNAUTHORIZED,
  PROTO_FORBIDDEN,
  PROTO_NOT_FOUND,
  PROTO_CONFLICT,
  PROTO_TOO_LARGE,
  PROTO_RATE_LIMITED,
  PROTO_UNAVAILABLE,
  PROTO_INTERNAL,
  PROTO_BAD_CODE, /* confirm: not the code the room shows now */
} proto_code;

/* Wire name of a code ("bad_request", ...); "internal" for unknown values. */
const char *proto_code_name(proto_code code);

/* Why proto_decode refused a frame. msg is a NUL-terminated sentence fit to
 * send back in an err frame; any client bytes quoted in it are truncated and
 * reduced to printable ASCII. has_rid/rid are set when the frame's rid could
 * be read before the problem was found, so the err reply can carry it. */
typedef struct proto_error {
  proto_code code;
  bool has_rid;
  uint64_t rid;
  char msg[PROTO_ERR_MSG_MAX];
} proto_error;

typedef enum proto_type {
  PROTO_T_NONE = 0,
  PROTO_T_HELLO,
  PROTO_T_OPEN,
  PROTO_T_JOIN,
  PROTO_T_ADD,
  PROTO_T_REMOVE,
  PROTO_T_STEP,
  PROTO_T_ANSWER,
  PROTO_T_MARK,
  PROTO_T_APPROVE,
  PROTO_T_SYNC,
  PROTO_T_LEAVE,
  PROTO_T_CLOSE,
  PROTO_T_PING,
  PROTO_T_WATCH,        /* extension: follow who of one's responsibles is online */
  PROTO_T_UNWATCH,      /* and stop */
  PROTO_T_CONFIRM,      /* a learner confirms a waiting approval with the room's code */
  PROTO_T_CONFIRM_CODE, /* the host asks for the code to show */
} proto_type;

/* Wire name of a client message type ("hello", ...), or "?" when unknown. */
const char *proto_type_name(proto_type t);

typedef enum proto_result { PROTO_RESULT_PASS = 1, PROTO_RESULT_FAIL } proto_result;
typedef enum proto_role { PROTO_ROLE_HOST = 1, PROTO_ROLE_LEARNER } proto_role;
typedef enum proto_status {
  PROTO_STATUS_APPROVED = 1,
  PROTO_STATUS_NOT_APPROVED,
  PROTO_STATUS_REFUSED,
  PROTO_STATUS_PENDING, /* approved, waiting for the learner's confirmation */
} proto_status;
typedef enum proto_task_kind { PROTO_TASK_QUESTION = 1, PROTO_TASK_OBSERVE } proto_task_kind;

/* An answer value: an integer, an array of integers or a string.
 * Decoding fills the matching member and also `raw`, the value's own msgpack
 * bytes inside the frame, which the server may store and relay verbatim.
 * Encoding uses `raw` when kind is PROTO_VALUE_RAW (it must hold exactly one
 * well-formed msgpack object, or the encode fails). */
typedef enum proto_value_kind {
  PROTO_VALUE_INT = 1,
  PROTO_VALUE_INTS,
  PROTO_VALUE_STR,
  PROTO_VALUE_RAW,
} proto_value_kind;

typedef struct proto_value {
  proto_value_kind kind;
  int64_t i;            /* PROTO_VALUE_INT */
  uint32_t n_items;     /* PROTO_VALUE_INTS */
  const int64_t *items; /* PROTO_VALUE_INTS, n_items of them */
  proto_str s;          /* PROTO_VALUE_STR */
  proto_str raw;        /* PROTO_VALUE_RAW; also set by decode */
} proto_value;

/* ---------------------------------------------------------------------------
 * Decoding client frames
 * ------------------------------------------------------------------------- */

typedef struct proto_decision {
  uint64_t learner;
  bool approved;
  bool has_note;
  proto_str note;
} proto_decision;

/* One decoded client message. Only the member named by `type` is filled.
 * User ids, module ids and completion ids are 0..INT64_MAX; task indexes
 * 0..UINT32_MAX. An optional field sent as nil counts as absent.
 * It is about 7 KiB: keep one per event loop (or per worker), not one per
 * connection, and do not copy it by value (answer.value.items points into
 * answer.items). */
typedef struct proto_msg {
  proto_type type;
  bool has_rid;
  uint64_t rid;
  union {
    struct {
      uint32_t v;
      bool has_token;
      proto_str token;
    } hello;
    struct {
      uint64_t module;
      uint32_t n_learners;
      uint64_t learners[PROTO_MAX_LEARNERS];
    } open;
    /* exactly one of has_code / has_room is true */
    struct {
      bool has_code;
      proto_str code;
      bool has_room;
      proto_str room;
    } join;
    struct {
      proto_str room;
      uint64_t learner;
    } add, remove;
    struct {
      proto_str room;
      uint32_t task;
    } step;
    struct {
      proto_str room;
      uint32_t task;
      proto_value value;
      proto_str key;
      bool has_learner;
      uint64_t learner;
      int64_t items[PROTO_MAX_VALUE_ITEMS];
    } answer;
    struct {
      proto_str room;
      uint64_t learner; /* a group mark: learners[0] */
      uint32_t task;
      proto_result result;
      bool has_note;
      proto_str note;
      uint32_t n_learners; /* > 0: a group mark (`learners`), each id once */
      uint64_t learners[PROTO_MAX_LEARNERS];
      bool has_evidence; /* 64 lowercase hex digits: an upload's SHA-256 */
      proto_str evidence;
    } mark;
    struct {
      proto_str room;
      uint32_t n_decisions;
      proto_decision decisions[PROTO_MAX_DECISIONS];
    } approve;
    struct {
      proto_str room;
      uint64_t since;
    } sync;
    struct {
      proto_str room;
    } leave, close, confirm_code;
    struct {
      proto_str room;
      proto_str code; /* what the learner typed (1..PROTO_MAX_CODE bytes) */
    } confirm;
  };
} proto_msg;

/* Decode one client frame (the payload of one binary websocket frame).
 * lim may be NULL for the defaults. Returns 0 and fills *out, or returns
 * -(int)err->code (negative) and fills *err; *out is then unspecified.
 * Slices in *out point into buf (see proto_str). Never allocates. */
int proto_decode(const uint8_t *buf, size_t len, const proto_limits *lim, proto_msg *out,
                 proto_error *err);

/* true when s is an evidence hash: exactly PROTO_EVIDENCE_LEN lowercase hex
 * digits (a mark's `evidence`, a learner's evidence answer). */
bool proto_is_evidence(proto_str s);

/* The length (1-4) of the strict UTF-8 sequence at s[0, n) (no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when s does not start
 * one. Every string the codec reads is checked with it. */
size_t proto_utf8_len(const uint8_t *s, size_t n);

/* ---------------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------------- */

/* A growable byte buffer for encoded frames. `headroom` bytes are kept free
 * in front of the payload for the transport (the server passes LWS_PRE), so
 * the frame can be written without a copy:
 *     lws_write(wsi, proto_buf_bytes(&b), proto_buf_size(&b), LWS_WRITE_BINARY)
 * Every encoder appends exactly one msgpack map (one frame) at the end; to put
 * one frame per buffer, call proto_buf_clear between encodes. The buffer owns
 * its memory; proto_buf_free releases it. */
typedef struct proto_buf {
  uint8_t *data; /* allocation; payload starts at data + head */
  size_t head;   /* headroom in front of the payload */
  size_t len;    /* payload bytes */
  size_t cap;    /* payload capacity (allocation is head + cap) */
  bool failed;   /* an allocation failed during the current encode */
} proto_buf;

void proto_buf_init(proto_buf *b, size_t headroom); /* no allocation yet */
void proto_buf_clear(proto_buf *b);                 /* len = 0, keeps memory */
void proto_buf_free(proto_buf *b);                  /* back to the init state */
/* Payload start (NULL while nothing was ever written) and length. */
static inline uint8_t *proto_buf_bytes(const proto_buf *b) {
  return b->data ? b->data + b->head : NULL;
}
static inline size_t proto_buf_size(const proto_buf *b) { return b->len; }

/* ---------------------------------------------------------------------------
 * Encoding server frames. Each appends one map and returns 0, or returns -1
 * and leaves the buffer exactly as it was when memory ran out or an argument
 * was invalid (an enum value outside its range, a PROTO_VALUE_RAW value that
 * is not exactly one well-formed msgpack object). `rid` arguments: pass
 * proto_rid_of(msg) to echo the request's rid, or PROTO_NO_RID to omit it.
 * Input strings and arrays are read during the call only.
 * ------------------------------------------------------------------------- */

typedef struct proto_rid {
  bool has;
  uint64_t v;
} proto_rid;
#define PROTO_NO_RID ((proto_rid){.has = false, .v = 0})
static inline proto_rid proto_rid_of(const proto_msg *m) { return (proto_rid){m->has_rid, m->rid}; }

typedef struct proto_user {
  uint64_t id;
  proto_str name;
  bool responsible;
} proto_user;

int proto_encode_welcome(proto_buf *b, proto_rid rid, const proto_user *user);
int proto_encode_pong(proto_buf *b, proto_rid rid);
/* ok {rid?, seq?}: has_seq false omits seq. */
int proto_encode_ok(proto_buf *b, proto_rid rid, bool has_seq, uint64_t seq);
int proto_encode_ack(proto_buf *b, proto_rid rid, proto_str key, uint64_t seq);
/* err {rid?, code, msg}; msg is a NUL-terminated sentence. */
int proto_encode_err(proto_buf *b, proto_rid rid, proto_code code, const char *msg);
/* Convenience: the err reply for a proto_decode failure. */
int proto_encode_decode_error(proto_buf *b, const proto_error *err);
/* dashboard {count}: extension, the live pending-OTJ count of a responsible. */
int proto_encode_dashboard(proto_buf *b, uint64_t count);

/* A learner's "Ask for OTJ", as a dashboard push carries it. */
typedef struct proto_ask {
  uint64_t learner;
  proto_str learner_name;
  uint64_t module;
  proto_str module_title;
  uint64_t requested_at; /* unix seconds */
} proto_ask;

/* dashboard {count, requests, request?}: the count, the open requests among
 * the pending items, and (when not NULL) the request that just arrived. */
int proto_encode_dashboard_ask(proto_buf *b, uint64_t count, uint64_t requests,
                               const proto_ask *ask);

/* One responsible in an `online` message. */
typedef struct proto_online {
  uint64_t id;
  proto_str name;
  bool online;
} proto_online;

/* online {rid?, responsibles: [{id, name, online}]}: extension, the reply to
 * `watch` (with its rid) and every later change (without). */
int proto_encode_online(proto_buf *b, proto_rid rid, const proto_online *people, uint32_t n);

typedef struct proto_approval_result {
  uint64_t learner;
  proto_status status;
  bool has_completion; /* sent when status is APPROVED */
  uint64_t completion;
  proto_str reason; /* sent when status is REFUSED and len > 0 */
} proto_approval_result;

int proto_encode_approved(proto_buf *b, proto_rid rid, const proto_approval_result *results,
                          uint32_t n);

/* Who receives a frame: visibility of private fields depends on it.
 * is_host means the host (responsible) of this room, who sees everything. */
typedef struct proto_viewer {
  uint64_t user;
  bool is_host;
} proto_viewer;

/* Room events (the `e` of an ev frame). */
typedef enum proto_ev_type {
  PROTO_EV_JOINED = 1,
  PROTO_EV_LEFT,
  PROTO_EV_ADDED,
  PROTO_EV_REMOVED,
  PROTO_EV_STEP,
  PROTO_EV_ANSWER,
  PROTO_EV_MARK,
  PROTO_EV_APPROVED,
  PROTO_EV_CLOSED,
  PROTO_EV_CONFIRMED, /* a learner confirmed: the approval is a completion */
} proto_ev_type;

const char *proto_ev_type_name(proto_ev_type t);

typedef struct proto_event {
  proto_ev_type type;
  union {
    struct {
      uint64_t user;
      proto_role role;
      bool added; /* joined only: joining made this learner a member */
    } joined, left;
    struct {
      uint64_t learner;
    } added, removed;
    struct {
      uint32_t task;
    } step;
    struct {
      uint64_t learner;
      uint32_t task;
      proto_value value;
      uint64_t by;
    } answer;
    struct {
      uint64_t learner;
      uint32_t task;
      proto_result result;
      bool has_note;
      proto_str note;
      bool has_evidence;
      proto_str evidence;
    } mark;
    struct {
      uint64_t learner;
      proto_status status;
      bool has_completion;
      uint64_t completion;
    } approved;
    struct {
      uint64_t learner;
      uint64_t completion;
      uint64_t decided_at;   /* the approver's decision (unix seconds) */
      uint64_t confirmed_at; /* the learner's confirmation (unix seconds) */
    } confirmed;
  };
} proto_event;

/* The visibility rule, as a pure function: true when `viewer` must receive
 * `ev` without its private fields, i.e. the event is an answer, mark or
 * approved about a learner other than the viewer, and the viewer is not the
 * room's host. All other events are the same for every member. A server that
 * fans out to many members encodes at most two variants and picks per viewer. */
bool proto_event_hidden_for(const proto_event *ev, proto_viewer viewer);

/* ev {room, seq, e}. redacted = true drops the private fields (answer.value;
 * mark.result, mark.note and mark.evidence; approved.status and approved.completion). */
int proto_encode_ev(proto_buf *b, proto_str room, uint64_t seq, const proto_event *ev,
                    bool redacted);
/* confirm_code {rid, room, code, ms}: the code the room's host shows now,
 * and the milliseconds before it changes. */
int proto_encode_confirm_code(proto_buf *b, proto_rid rid, proto_str room, proto_str code,
                              uint64_t ms);

/* invite {room, code, module {id, title}, host {id, name}}: extension, sent
 * to a learner's connections when a responsible adds them to a live room. */
int proto_encode_invite(proto_buf *b, proto_str room, proto_str code, uint64_t module,
                        proto_str title, uint64_t host, proto_str host_name);

/* The `e` map of an event on its own, whole or redacted. A server that keeps
 * a room's log stores these bytes once and frames them per delivery with
 * proto_encode_ev_raw, so fan-out never re-encodes an event. */
int proto_encode_event_body(proto_buf *b, const proto_event *ev, bool redacted);
/* ev {room, seq, e} around `body`, the bytes of an `e` map made by
 * proto_encode_event_body (trusted: copied as they are). */
int proto_encode_ev_raw(proto_buf *b, proto_str room, uint64_t seq, const uint8_t *body,
                        size_t len);
/* Same, with `redacted` decided by proto_event_hidden_for(ev, viewer). */
int proto_encode_ev_for(proto_buf *b, proto_str room, uint64_t seq, const proto_event *ev,
                        proto_viewer viewer);

/* Snapshot of a room as one receiver may see it. The arrays are the caller's,
 * read during the call only. Answers, marks and outcomes about other learners
 * are sent to a learner the way events are: answers without value, marks
 * without result and note, outcomes without status and completion (so a count
 * of who has answered still works after a snapshot). */
typedef struct proto_task_info {
  proto_task_kind kind;
  proto_str text;
  uint32_t n_options; /* 0: no options key */
  const proto_str *options;
} proto_task_info;

typedef struct proto_member {
  uint64_t id;
  proto_str name;
  bool online;
} proto_member;
typedef struct proto_answer_rec {
  uint64_t learner;
  uint32_t task;
  proto_value value;
  uint64_t by;
} proto_answer_rec;
typedef struct proto_mark_rec {
  uint64_t learner;
  uint32_t task;
  proto_result result;
  bool has_note;
  proto_str note;
  bool has_evidence;
  proto_str evidence;
} proto_mark_rec;
/* A learner's last decision in the room, what the `approved` event said. */
typedef struct proto_outcome_rec {
  uint64_t learner;
  proto_status status;
  bool has_completion;
  uint64_t completion;
} proto_outcome_rec;

typedef struct proto_snapshot {
  proto_str room;
  uint64_t seq;
  proto_str code;
  struct {
    uint64_t id;
    proto_str title;
    uint32_t n_tasks;
    const proto_task_info *tasks;
    bool confirm;          /* approvals wait for the learner's confirmation: `confirm` true */
    bool learner_evidence; /* learners may attach evidence: `learner_evidence` true */
  } module;
  uint32_t task; /* current task index */
  struct {
    uint64_t id;
    proto_str name;
  } host;
  uint32_t n_learners;
  const proto_member *learners;
  uint32_t n_answers;
  const proto_answer_rec *answers;
  uint32_t n_marks;
  const proto_mark_rec *marks;
  uint32_t n_outcomes;
  const proto_outcome_rec *outcomes;
  bool closed; /* state "closed" rather than "open" */
} proto_snapshot;

/* True when a record about `learner` is redacted for `viewer` (snapshot rule). */
bool proto_record_hidden_for(uint64_t learner, proto_viewer viewer);

/* The visibility rule for an event about a group of learners (a group
 * `mark`): the host sees it whole (WHOLE); a learner of the group sees only
 * their own part, as the event about them alone (OWN), never the others of
 * the group; every other learner sees it without its private fields
 * (REDACTED). */
typedef enum proto_view { PROTO_VIEW_WHOLE, PROTO_VIEW_OWN, PROTO_VIEW_REDACTED } proto_view;
proto_view proto_group_view(const uint64_t *learners, uint32_t n, proto_viewer viewer);

int proto_encode_snapshot(proto_buf *b, proto_rid rid, const proto_snapshot *s,
                          proto_viewer viewer);

#endif /* OTJ_PROTO_H */
