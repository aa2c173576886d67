/*
 * ws — the otj.v1 websocket endpoint at /ws.
 *
 * One lws protocol callback with a per-session struct (ws_sess). Frames
 * arrive possibly fragmented and are reassembled up to the configured frame
 * limit, decoded by protocol/, and answered. Output never leaves directly:
 * a frame is appended to the session's bounded queue and the session is put
 * on an "arm" list; a uv_check handle (after the poll phase) visits each
 * armed session once per loop turn and makes ONE write of its queue: as
 * many frames as fit in WS_TX_PACKET, coalesced, or one bigger frame alone.
 * It writes at once when lws holds nothing unsent for the socket, else it
 * asks lws for a WRITEABLE callback, which makes that write; frames left
 * over arm the session again for the next turn. A client whose queue
 * overflows is dropped (it resyncs on reconnect), never the room.
 */
#ifndef OTJ_WS_H
#define OTJ_WS_H

#include <stddef.h>
#include <stdint.h>

#include "otjd.h"
#include "proto.h"

typedef struct ws_sess ws_sess;

/* A frame that several sessions may hold in their queues (fan-out): made
 * once, refcounted. */
typedef struct ws_frame ws_frame;
ws_frame *ws_frame_new(const uint8_t *data, size_t len); /* refs = 1, or NULL */
void ws_frame_put(ws_frame *f);                          /* refs - 1 */
/* Queues `f` (taking a reference). Returns 0, or -1 when the session's
 * queue is full (the session is then being closed) or it is closing. */
int ws_send_frame(ws_sess *s, ws_frame *f);

/* Bytes lws may send in one go for this protocol (its tx_packet_size): a
 * whole coalesced batch. */
#define WS_TX_PACKET 65536

/* The lws protocol callback and its per-session size. */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
size_t ws_sess_size(void);

/* Starts the arm check handle. Returns 0. */
int ws_init(otjd *d);

/* Begins a graceful stop: every session is closed with "going away".
 * Returns the number of sessions still open. */
size_t ws_close_all(otjd *d);

/* Closes the loop handles of this module (after the lws context is gone). */
void ws_fini(otjd *d);

/* Queues one frame (the payload bytes, copied) for the session. Returns 0,
 * or -1 when the session's queue is full (the session is then being closed). */
int ws_send(ws_sess *s, const uint8_t *data, size_t len);

/* Queues an err {rid?, code, msg}. */
void ws_send_err(ws_sess *s, proto_rid rid, proto_code code, const char *msg);

/* Who is on the other end (valid after a successful hello). */
int64_t ws_user(const ws_sess *s);
/* The connection's number in this process (the log's session=). */
uint64_t ws_id(const ws_sess *s);
const char *ws_user_name(const ws_sess *s);
int ws_is_responsible(const ws_sess *s);

/* The live-room module's per-session slot (its attachment list). */
void **ws_live_slot(ws_sess *s);

/* A counted handle on a session for replies that come later: the session
 * may close meanwhile, and then ws_ref_sess() returns NULL. */
typedef struct ws_ref ws_ref;
ws_ref *ws_ref_get(ws_sess *s); /* +1 */
ws_sess *ws_ref_sess(const ws_ref *r);
void ws_ref_put(ws_ref *r); /* -1; frees at 0 */

/* Calls fn for every authenticated session of `user` on this instance. */
void ws_each_of_user(otjd *d, int64_t user, void (*fn)(ws_sess *, void *), void *arg);
/* Close codes (4000-4999: the application's own; PROTOCOL.md section 2). */
#define WS_CLOSE_SESSION_ENDED  4401 /* logged out or deactivated: log in again */
#define WS_CLOSE_RIGHTS_CHANGED 4403 /* rights or department changed: reconnect */

/* Closes, with `code` and `reason` (static text, at most 123 bytes), every
 * authenticated session on this instance of `user` / that said hello with
 * the session token whose digest is `digest`. */
void ws_close_user(otjd *d, int64_t user, int code, const char *reason);
void ws_close_token(otjd *d, const unsigned char digest[32], int code, const char *reason);

/* Calls fn for every authenticated responsible session on this instance. */
void ws_each_responsible(otjd *d, void (*fn)(ws_sess *, void *), void *arg);

#endif
