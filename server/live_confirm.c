/*
 * live_confirm — sign-off that both sides confirm: the live half.
 *
 * When a module requires the learner's confirmation, an approval waits
 * (status `pending`, storage/confirm.c) until the learner types, on their
 * own phone, the code the responsible's room screen shows. The host asks
 * for that code (`confirm_code`); a learner sends what they typed
 * (`confirm`). The code comes from the room's secret (made at open, kept in
 * the room's SQLite row, never sent to anyone) and the clock (confirm.c),
 * so every instance serving the room computes the same one.
 *
 * The one design idea: a confirmation walks the same road as an approval.
 * The room script counts the try first (rate limit, and "is this learner's
 * outcome pending?", op ctry), the code is checked here, the writer thread
 * turns the waiting approval into the completion in one durable
 * transaction, and only then does the room hear `confirmed` and the
 * learner get `ok`.
 */
#include "live_int.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "confirm.h"
#include "store.h"

/* The room's secret, read once from its SQLite row. 0, or -1 (the client
 * is told why). */
static int room_secret(lroom *r, ws_sess *s, proto_rid rid) {
  if (r->csecret_known) return 0;
  int rc = store_room_confirm_secret(L.d->db, r->id, r->csecret);
  if (rc == 0) {
    r->csecret_known = 1;
    return 0;
  }
  if (rc == STORE_NOTFOUND)
    ws_send_err(s, rid, PROTO_NOT_FOUND, "This room has no confirmation code.");
  else
    ws_send_err(s, rid, PROTO_UNAVAILABLE, "The room's code cannot be read now; try again.");
  return -1;
}

/* ---- the host: the code to show ---------------------------------------------- */

void live_confirm_code(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->confirm_code.room, 1);
  if (!a || room_secret(a->r, s, rid) != 0) return;
  char code[CONFIRM_DIGITS + 1];
  uint32_t left;
  confirm_code_now(a->r->csecret, confirm_now_ms(), code, &left);
  proto_buf_clear(&L.tmp);
  if (proto_encode_confirm_code(&L.tmp, rid, proto_s(a->r->id), proto_s(code), left) == 0)
    ws_send(s, proto_buf_bytes(&L.tmp), proto_buf_size(&L.tmp));
}

/* ---- the learner: the code typed ---------------------------------------------- */

/* A confirmation on its way to the disk: owned by the writer from
 * submission until confirm_committed. */
typedef struct confirm_ctx {
  writer_job job;
  ws_ref *ref;
  proto_rid rid;
  lroom *r; /* held */
  store_approval item;
} confirm_ctx;

static void confirm_ctx_free(confirm_ctx *x) {
  if (x->ref) ws_ref_put(x->ref);
  if (x->r) room_release(x->r);
  free(x);
}

static void confirm_committed(writer_job *job, void *arg) {
  (void)job;
  confirm_ctx *x = arg;
  ws_sess *s = ws_ref_sess(x->ref);
  store_approval *it = &x->item;
  lroom *r = x->r;
  if (it->rc != 0) {
    log_event(LOG_WARN, "confirmation not saved", "room=%s learner=%lld", r->id,
              (long long)it->learner);
    if (s)
      ws_send_err(s, x->rid, PROTO_UNAVAILABLE, "The confirmation could not be saved; try again.");
    confirm_ctx_free(x);
    return;
  }
  if (it->outcome != STORE_APPROVED) {
    if (s) ws_send_err(s, x->rid, PROTO_CONFLICT, it->reason ? it->reason : "Nothing to confirm.");
    confirm_ctx_free(x);
    return;
  }
  log_event(LOG_INFO, "confirmation", "room=%s module=%lld learner=%lld completion=%lld", r->id,
            (long long)it->module, (long long)it->learner, (long long)it->completion);
  /* the room hears it (the host whole, other learners only that it came),
   * and the learner's outcome becomes `approved` with the completion */
  proto_event ev = {.type = PROTO_EV_CONFIRMED,
                    .confirmed = {(uint64_t)it->learner, (uint64_t)it->completion,
                                  (uint64_t)it->decided_at, (uint64_t)it->now}};
  rstore_call rc = live_rcall(r);
  rstore_cmd c;
  rstore_outcomes_start(&c, &rc);
  rstore_outcome(&c, it->learner, PROTO_STATUS_APPROVED, it->completion, live_event(&ev, 0));
  live_call(&c, live_ok_reply, s, x->rid, r);
  dash_forget_invite(it->learner, r->id);
  live_pending_changed(L.d);
  confirm_ctx_free(x);
}

static void confirm_tried(live_op *o, redisReply *rep) {
  ws_sess *s = live_op_sess(o);
  if (live_reply_failed(o, rep) || !s) return;
  lroom *r = o->r;
  if (room_secret(r, s, o->rid) != 0) return;
  if (!confirm_check(r->csecret, confirm_now_ms(), o->key, strlen(o->key))) {
    ws_send_err(s, o->rid, PROTO_BAD_CODE,
                "That is not the code the screen shows now; type the six digits shown there.");
    return;
  }
  confirm_ctx *x = calloc(1, sizeof *x);
  if (!x) {
    ws_send_err(s, o->rid, PROTO_INTERNAL, "Out of memory.");
    return;
  }
  x->ref = ws_ref_get(s);
  x->rid = o->rid;
  x->r = r;
  room_hold(r);
  x->item = (store_approval){.confirm = 1,
                             .learner = ws_user(s),
                             .module = r->module,
                             .room = r->id,
                             .now = (int64_t)time(NULL)};
  x->job.items = &x->item;
  x->job.n = 1;
  x->job.done = confirm_committed;
  x->job.arg = x;
  if (writer_submit(L.w, &x->job) != 0) {
    ws_send_err(s, o->rid, PROTO_UNAVAILABLE, "The server is stopping.");
    confirm_ctx_free(x);
  }
}

void live_confirm(ws_sess *s, const proto_msg *m) {
  proto_rid rid = proto_rid_of(m);
  attach *a = live_member_of(s, rid, m->confirm.room, 0);
  if (!a) return;
  if (a->host) {
    ws_send_err(s, rid, PROTO_FORBIDDEN,
                "The learner confirms on their own phone; the room screen shows the code.");
    return;
  }
  rstore_call rc = live_rcall(a->r);
  rstore_cmd c;
  rstore_ctry(&c, &rc, ws_user(s), CONFIRM_WINDOW_MS, confirm_max_tries(), PROTO_STATUS_PENDING);
  live_op *o = live_call(&c, confirm_tried, s, rid, a->r);
  /* the op keeps what was typed (a code fits the key's room) */
  if (o) live_copy_str(o->key, sizeof o->key, m->confirm.code);
}
