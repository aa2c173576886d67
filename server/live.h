/*
 * live — live OTJ rooms: the otj.v1 room messages, Redis room state and
 * fan-out between otjd instances.
 *
 * Every mutation is one call of the room script (storage/room.lua), which
 * records it, numbers it (the room's gapless seq) and publishes it on the
 * room's channel. Every instance with members of a room subscribes to that
 * channel and delivers each event to its own connections in seq order; an
 * instance that sees a gap fetches the missing events from the room's log
 * before it goes on, so a member never sees a hole. Events are stored once,
 * whole and redacted, and framed once per variant per instance: fan-out
 * copies bytes, it never re-encodes. Approvals go through the writer thread
 * (group commit) and are acknowledged only after the commit.
 *
 * This header is the whole outside of live rooms; the inside is split by
 * subsystem into live.c and live_*.c, listed in live_int.h.
 */
#ifndef OTJ_LIVE_H
#define OTJ_LIVE_H

#include "otjd.h"
#include "proto.h"

typedef struct ws_sess ws_sess;

/* Starts the module: pub/sub connection, writer thread. Returns 0, or -1
 * with a message on stderr. */
int live_init(otjd *d);

/* Redis came back (up = 1) or went away (0): loads the script, resyncs
 * rooms. Called by main's rconn state callback. */
void live_redis_state(otjd *d, int up);

/* Stops the module's writer and pub/sub connection (at shutdown, while the
 * loop still runs); live_free releases the rest once the loop has ended. */
void live_fini(otjd *d);
void live_free(otjd *d);

/* A session said hello: a responsible gets its dashboard count. */
void live_session_ready(ws_sess *s);

/* Handles a decoded room message (every type but hello and ping). The
 * message is valid only during the call. */
void live_handle(ws_sess *s, const proto_msg *m);

/* The session is gone: its rooms see it leave. */
void live_session_closed(ws_sess *s);

/* A user's rights, department or admin flag changed (deactivated = 0), or
 * the user was deactivated (1): their open sockets close, on this instance
 * at once and on the others through Redis (when it is up), with close code
 * 4403 "rights changed" or 4401 "session ended". */
void live_user_changed(otjd *d, int64_t user, int deactivated);

/* The session with this token digest was logged out: the sockets that said
 * hello with it close (4401), here and on the other instances. */
void live_token_ended(otjd *d, const unsigned char digest[32]);

/* Rooms this instance holds now: rooms with a connection here, or an
 * operation on the way (otj_rooms_open of /metrics). */
size_t live_room_count(void);

/* Reads whether each of users[0..n) is a responsible online now (on any
 * instance); calls fn(ud, online, n) once, later, with online[i] 1 or 0
 * (valid during the call). Returns 0, or -1 (fn never called) when Redis
 * cannot be asked. */
typedef void live_online_fn(void *ud, const int *online, size_t n);
int live_online_read(const int64_t *users, size_t n, live_online_fn *fn, void *ud);

/* A learner asked for OTJ: every connection of the responsibles to[0..n),
 * on every instance, gets a `dashboard` push with the ask and its counts. */
void live_ask_arrived(otjd *d, const proto_ask *ask, const int64_t *to, size_t n);

/* Something changed who waits for OTJ (an approval, a completion, a new
 * sharing): every instance refreshes its responsibles' dashboard counts. */
void live_pending_changed(otjd *d);

#endif
