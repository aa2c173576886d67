/*
 * live — live rooms across instances (see live.h for the design): the one
 * `live` state, the dispatch of client messages, the session hooks, the
 * channel entry, the presence heartbeat, start and stop.
 *
 * The one design idea: this file only routes. A client message goes to the
 * file of its kind (live_join.c, live_act.c, live_approve.c), a channel
 * message to the room's ring (live_room.c) or the dashboard (live_dash.c);
 * every request to Redis goes through live_op.c. The files share the state
 * below and the types of live_int.h, and nothing else.
 */
#include "live_int.h"
#include "log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

live L;

int64_t live_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void live_copy_str(char *dst, size_t cap, proto_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

/* ---- client messages ----------------------------------------------------- */

void live_handle(ws_sess *s, const proto_msg *m) {
  switch (m->type) {
  case PROTO_T_OPEN: live_open(s, m); break;
  case PROTO_T_JOIN: live_join(s, m); break;
  case PROTO_T_SYNC: live_sync(s, m); break;
  case PROTO_T_ADD: live_add(s, m); break;
  case PROTO_T_REMOVE: live_remove(s, m); break;
  case PROTO_T_STEP: live_step(s, m); break;
  case PROTO_T_ANSWER: live_answer(s, m); break;
  case PROTO_T_MARK: live_mark(s, m); break;
  case PROTO_T_APPROVE: live_approve(s, m); break;
  case PROTO_T_LEAVE: live_leave(s, m); break;
  case PROTO_T_CLOSE: live_close(s, m); break;
  case PROTO_T_WATCH: presence_watch(s, m); break;
  case PROTO_T_UNWATCH: presence_unwatch(s, m); break;
  case PROTO_T_CONFIRM: live_confirm(s, m); break;
  case PROTO_T_CONFIRM_CODE: live_confirm_code(s, m); break;
  default: ws_send_err(s, proto_rid_of(m), PROTO_BAD_REQUEST, "Unexpected message."); break;
  }
}

void live_session_closed(ws_sess *s) {
  presence_session_closed(s);
  attach *a;
  while ((a = *ws_live_slot(s)) != NULL) {
    lroom *r = a->r;
    int64_t user = ws_user(s);
    room_hold(r);
    att_remove(a);
    live_send_leave(r, user, NULL, PROTO_NO_RID);
    room_release(r);
  }
}

/* ---- channel messages ----------------------------------------------------- */

static void on_channel(void *ud, const char *chan, size_t chanlen, const char *data, size_t len) {
  (void)ud;
  size_t dl = strlen(RSTORE_DASH_CHANNEL);
  if (chanlen == dl && !memcmp(chan, RSTORE_DASH_CHANNEL, dl)) {
    dash_on_message(data, len);
    return;
  }
  char id[PROTO_MAX_ROOM + 1];
  if (rstore_room_of_channel(chan, chanlen, id, sizeof id)) room_on_event(id, data, len);
}

/* ---- the presence heartbeat --------------------------------------------------- */

/* For every room with connections here, tell Redis which users this
 * instance still holds; the same call drops the entries of instances that
 * stopped beating (they died) and announces who left. Each tick serves one
 * slice of the rooms, so a thousand rooms do not land on Redis in the same
 * millisecond. The beat also keeps the room's join code alive: it was set
 * to expire `room_idle_ttl` after the room opened, and a drill longer than
 * that lost it while learners were still scanning it. (A closed room's code
 * is deleted; PEXPIRE does not make it again.) */
static void beat_room(lroom *r) {
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_beat_start(&c, &rc);
  int64_t seen[64];
  size_t ns = 0;
  for (attach *a = r->atts; a; a = a->rnext) {
    int64_t u = ws_user(a->s);
    int dup = 0;
    for (size_t k = 0; k < ns; k++) dup |= seen[k] == u;
    if (dup) continue;
    if (ns < sizeof seen / sizeof seen[0]) seen[ns++] = u;
    rstore_beat_user(&c, u);
  }
  live_call(&c, NULL, NULL, PROTO_NO_RID, r);
  if (r->code[0]) {
    char key[64];
    rstore_code_key(r->code, key, sizeof key);
    rconn_command(L.d->redis, NULL, NULL, "PEXPIRE %s %llu", key,
                  (unsigned long long)L.d->cfg.room_idle_ttl_s * 1000ULL);
  }
}

static void on_beat(uv_timer_t *t) {
  (void)t;
  L.beat_tick = (L.beat_tick + 1) % LIVE_BEAT_SLICES;
  if (!live_redis_ready()) return;
  for (size_t i = L.beat_tick; i < LIVE_BUCKETS; i += LIVE_BEAT_SLICES)
    for (lroom *r = L.tab[i]; r; r = r->hnext)
      if (r->atts) beat_room(r);
}

/* ---- Redis comes and goes -------------------------------------------------------- */

/* Back after a loss: every room fetches what it missed. Runs when the
 * pub/sub connection is back and when the room script is loaded again;
 * whichever comes last finds both ready. */
void live_resync_rooms(void) {
  if (!live_redis_ready()) return;
  for (size_t i = 0; i < LIVE_BUCKETS; i++)
    for (lroom *r = L.tab[i]; r; r = r->hnext)
      if (r->ring.seq_known) room_fetch_gap(r);
}

static void on_psub_state(void *ud, int up) {
  (void)ud;
  if (up) live_resync_rooms();
}

void live_redis_state(otjd *d, int up) {
  OTJ_ASSERT(d == L.d); /* one live state per server, started */
  L.up = up;
  if (up) {
    L.sha_ok = 0;
    live_load_script();
    return;
  }
  /* tell every connection in a room; they resync when it is back */
  for (size_t i = 0; i < LIVE_BUCKETS; i++)
    for (lroom *r = L.tab[i]; r; r = r->hnext)
      for (attach *a = r->atts; a; a = a->rnext)
        ws_send_err(a->s, PROTO_NO_RID, PROTO_UNAVAILABLE,
                    "The connection to the room store was lost; the room "
                    "resumes when it is back.");
}

/* ---- start and stop ------------------------------------------------------------- */

int live_init(otjd *d) {
  memset(&L, 0, sizeof L);
  L.d = d;
  proto_buf_init(&L.fw, 0);
  proto_buf_init(&L.fr, 0);
  proto_buf_init(&L.tmp, 0);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) proto_buf_init(&L.evb[i][k], 0);
  if (live_approve_start(d) != 0) return -1;
  dash_start(d);
  presence_start(d);
  live_join_start(d);
  live_hold_start(d);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < LIVE_INSTANCE_LEN; i++) L.instance[i] = hex[randombytes_uniform(16)];
  L.instance[LIVE_INSTANCE_LEN] = '\0';
  uv_timer_init(d->loop, &L.beat);
  L.beat_ready = 1;
  /* every room beats three times per staleness window, in slices */
  uint64_t every = (uint64_t)d->cfg.presence_stale_s * 1000 / 3 / LIVE_BEAT_SLICES;
  if (every == 0) every = 1;
  uv_timer_start(&L.beat, on_beat, every, every);
  uv_unref((uv_handle_t *)&L.beat);
  L.ps = psub_create(d->loop, d->redis_addr, RSTORE_DASH_CHANNEL, on_channel, on_psub_state, NULL);
  if (!L.ps) {
    log_event(LOG_ERROR, "bad Redis address for pub/sub", "redis=%s", d->redis_addr);
    return -1;
  }
  return 0;
}

void live_fini(otjd *d) {
  OTJ_ASSERT(!L.d || d == L.d); /* main stops us even when we never started */
  live_approve_stop();
  psub_destroy(L.ps);
  L.ps = NULL;
  if (L.beat_ready) {
    uv_timer_stop(&L.beat);
    uv_close((uv_handle_t *)&L.beat, NULL);
    L.beat_ready = 0;
  }
  dash_stop();
  presence_stop();
  live_hold_stop();
  live_join_stop();
  /* rooms that ops still hold are freed by live_free, after the loop */
}

void live_free(otjd *d) {
  OTJ_ASSERT(!L.d || d == L.d);
  for (size_t i = 0; i < LIVE_BUCKETS; i++) {
    for (lroom *r = L.tab[i], *n; r; r = n) {
      n = r->hnext;
      room_destroy(r);
    }
    L.tab[i] = NULL;
  }
  proto_buf_free(&L.fw);
  proto_buf_free(&L.fr);
  proto_buf_free(&L.tmp);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 2; k++) proto_buf_free(&L.evb[i][k]);
}
