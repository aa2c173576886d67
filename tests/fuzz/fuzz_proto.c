/* fuzz_proto -- libFuzzer target for the otj.v1 codec (protocol/proto.c).
 *
 * Each input is one client websocket frame. The target checks what the
 * server relies on:
 *   - proto_decode never reads outside the frame (ASan) and either succeeds
 *     or returns -(int)err.code with a NUL-terminated, printable message;
 *   - every slice of a decoded message lies inside the frame;
 *   - round trip: the decoded message, packed again as a client frame by a
 *     small independent encoder below, decodes to the same message;
 *   - the server frames built from it (ok, err, ack, ev answer/mark whole
 *     and redacted, approved, the err reply for a refused frame) are each
 *     exactly one well-formed msgpack object.
 * Built with -DOTJ_FUZZ=ON it runs under libFuzzer; otherwise fuzz_main.c
 * replays the corpus as a ctest unit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static const uint8_t *g_lo, *g_hi;

static void in_frame(proto_str s) {
  if (s.len == 0) return;
  CHECK((const uint8_t *)s.ptr >= g_lo && (const uint8_t *)s.ptr + s.len <= g_hi);
}

/* Exactly one msgpack object and nothing after it. */
static void well_formed(const proto_buf *b) {
  msgpack_unpacked u;
  size_t off = 0;
  msgpack_unpacked_init(&u);
  msgpack_unpack_return rc =
      msgpack_unpack_next(&u, (const char *)proto_buf_bytes(b), proto_buf_size(b), &off);
  CHECK(rc == MSGPACK_UNPACK_SUCCESS);
  CHECK(off == proto_buf_size(b));
  CHECK(u.data.type == MSGPACK_OBJECT_MAP);
  msgpack_unpacked_destroy(&u);
}

/* ---- an independent client-side encoder, for the round trip ------------- */

static void p_key(msgpack_packer *pk, const char *k) {
  msgpack_pack_str(pk, strlen(k));
  msgpack_pack_str_body(pk, k, strlen(k));
}
static void p_str(msgpack_packer *pk, proto_str s) {
  msgpack_pack_str(pk, s.len);
  msgpack_pack_str_body(pk, s.ptr, s.len);
}
static void p_kstr(msgpack_packer *pk, const char *k, proto_str s) {
  p_key(pk, k);
  p_str(pk, s);
}
static void p_ku(msgpack_packer *pk, const char *k, uint64_t v) {
  p_key(pk, k);
  msgpack_pack_uint64(pk, v);
}

static void p_value(msgpack_packer *pk, const proto_value *v) {
  switch (v->kind) {
  case PROTO_VALUE_INT: msgpack_pack_int64(pk, v->i); break;
  case PROTO_VALUE_STR: p_str(pk, v->s); break;
  case PROTO_VALUE_INTS:
    msgpack_pack_array(pk, v->n_items);
    for (uint32_t k = 0; k < v->n_items; k++) msgpack_pack_int64(pk, v->items[k]);
    break;
  default: CHECK(0);
  }
}

static void encode_client(msgpack_sbuffer *sb, const proto_msg *m) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  size_t n = 1 + (m->has_rid ? 1 : 0);
  switch (m->type) {
  case PROTO_T_HELLO: n += 1 + m->hello.has_token; break;
  case PROTO_T_OPEN: n += 2; break;
  case PROTO_T_JOIN: n += 1; break;
  case PROTO_T_ADD:
  case PROTO_T_REMOVE: n += 2; break;
  case PROTO_T_STEP: n += 2; break;
  case PROTO_T_ANSWER: n += 4 + m->answer.has_learner; break;
  case PROTO_T_MARK: n += 4 + m->mark.has_note + m->mark.has_evidence; break;
  case PROTO_T_APPROVE: n += 2; break;
  case PROTO_T_SYNC: n += 2; break;
  case PROTO_T_LEAVE:
  case PROTO_T_CLOSE: n += 1; break;
  case PROTO_T_PING:
  case PROTO_T_WATCH:
  case PROTO_T_UNWATCH: break;
  case PROTO_T_CONFIRM: n += 2; break;
  case PROTO_T_CONFIRM_CODE: n += 1; break;
  default: CHECK(0);
  }
  msgpack_pack_map(&pk, n);
  p_kstr(&pk, "t", proto_s(proto_type_name(m->type)));
  if (m->has_rid) p_ku(&pk, "rid", m->rid);
  switch (m->type) {
  case PROTO_T_HELLO:
    p_ku(&pk, "v", m->hello.v);
    if (m->hello.has_token) p_kstr(&pk, "token", m->hello.token);
    break;
  case PROTO_T_OPEN:
    p_ku(&pk, "module", m->open.module);
    p_key(&pk, "learners");
    msgpack_pack_array(&pk, m->open.n_learners);
    for (uint32_t k = 0; k < m->open.n_learners; k++) msgpack_pack_uint64(&pk, m->open.learners[k]);
    break;
  case PROTO_T_JOIN:
    if (m->join.has_code)
      p_kstr(&pk, "code", m->join.code);
    else
      p_kstr(&pk, "room", m->join.room);
    break;
  case PROTO_T_ADD:
  case PROTO_T_REMOVE:
    p_kstr(&pk, "room", m->add.room);
    p_ku(&pk, "learner", m->add.learner);
    break;
  case PROTO_T_STEP:
    p_kstr(&pk, "room", m->step.room);
    p_ku(&pk, "task", m->step.task);
    break;
  case PROTO_T_ANSWER:
    p_kstr(&pk, "room", m->answer.room);
    p_ku(&pk, "task", m->answer.task);
    p_key(&pk, "value");
    p_value(&pk, &m->answer.value);
    p_kstr(&pk, "key", m->answer.key);
    if (m->answer.has_learner) p_ku(&pk, "learner", m->answer.learner);
    break;
  case PROTO_T_MARK:
    p_kstr(&pk, "room", m->mark.room);
    if (m->mark.n_learners > 0) {
      p_key(&pk, "learners");
      msgpack_pack_array(&pk, m->mark.n_learners);
      for (uint32_t k = 0; k < m->mark.n_learners; k++)
        msgpack_pack_uint64(&pk, m->mark.learners[k]);
    } else {
      p_ku(&pk, "learner", m->mark.learner);
    }
    p_ku(&pk, "task", m->mark.task);
    p_kstr(&pk, "result", proto_s(m->mark.result == PROTO_RESULT_PASS ? "pass" : "fail"));
    if (m->mark.has_note) p_kstr(&pk, "note", m->mark.note);
    if (m->mark.has_evidence) p_kstr(&pk, "evidence", m->mark.evidence);
    break;
  case PROTO_T_CONFIRM:
    p_kstr(&pk, "room", m->confirm.room);
    p_kstr(&pk, "code", m->confirm.code);
    break;
  case PROTO_T_CONFIRM_CODE: p_kstr(&pk, "room", m->confirm_code.room); break;
  case PROTO_T_APPROVE:
    p_kstr(&pk, "room", m->approve.room);
    p_key(&pk, "decisions");
    msgpack_pack_array(&pk, m->approve.n_decisions);
    for (uint32_t k = 0; k < m->approve.n_decisions; k++) {
      const proto_decision *d = &m->approve.decisions[k];
      msgpack_pack_map(&pk, 2 + d->has_note);
      p_ku(&pk, "learner", d->learner);
      p_key(&pk, "approved");
      d->approved ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
      if (d->has_note) p_kstr(&pk, "note", d->note);
    }
    break;
  case PROTO_T_SYNC:
    p_kstr(&pk, "room", m->sync.room);
    p_ku(&pk, "since", m->sync.since);
    break;
  case PROTO_T_LEAVE:
  case PROTO_T_CLOSE: p_kstr(&pk, "room", m->leave.room); break;
  default: break;
  }
}

static int str_same(proto_str a, proto_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int value_same(const proto_value *a, const proto_value *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
  case PROTO_VALUE_INT: return a->i == b->i;
  case PROTO_VALUE_STR: return str_same(a->s, b->s);
  case PROTO_VALUE_INTS:
    if (a->n_items != b->n_items) return 0;
    for (uint32_t k = 0; k < a->n_items; k++)
      if (a->items[k] != b->items[k]) return 0;
    return 1;
  default: return 0;
  }
}

/* Field by field equality of the member named by type. */
static int msg_same(const proto_msg *a, const proto_msg *b) {
  if (a->type != b->type || a->has_rid != b->has_rid || (a->has_rid && a->rid != b->rid)) return 0;
  switch (a->type) {
  case PROTO_T_HELLO:
    return a->hello.v == b->hello.v && a->hello.has_token == b->hello.has_token &&
           (!a->hello.has_token || str_same(a->hello.token, b->hello.token));
  case PROTO_T_OPEN:
    return a->open.module == b->open.module && a->open.n_learners == b->open.n_learners &&
           !memcmp(a->open.learners, b->open.learners, a->open.n_learners * sizeof(uint64_t));
  case PROTO_T_JOIN:
    return a->join.has_code == b->join.has_code && a->join.has_room == b->join.has_room &&
           (a->join.has_code ? str_same(a->join.code, b->join.code)
                             : str_same(a->join.room, b->join.room));
  case PROTO_T_ADD:
  case PROTO_T_REMOVE:
    return str_same(a->add.room, b->add.room) && a->add.learner == b->add.learner;
  case PROTO_T_STEP: return str_same(a->step.room, b->step.room) && a->step.task == b->step.task;
  case PROTO_T_ANSWER:
    return str_same(a->answer.room, b->answer.room) && a->answer.task == b->answer.task &&
           value_same(&a->answer.value, &b->answer.value) &&
           str_same(a->answer.key, b->answer.key) &&
           a->answer.has_learner == b->answer.has_learner &&
           (!a->answer.has_learner || a->answer.learner == b->answer.learner);
  case PROTO_T_MARK:
    return str_same(a->mark.room, b->mark.room) && a->mark.learner == b->mark.learner &&
           a->mark.task == b->mark.task && a->mark.result == b->mark.result &&
           a->mark.has_note == b->mark.has_note &&
           (!a->mark.has_note || str_same(a->mark.note, b->mark.note)) &&
           a->mark.has_evidence == b->mark.has_evidence &&
           (!a->mark.has_evidence || str_same(a->mark.evidence, b->mark.evidence)) &&
           a->mark.n_learners == b->mark.n_learners &&
           !memcmp(a->mark.learners, b->mark.learners,
                   a->mark.n_learners * sizeof a->mark.learners[0]);
  case PROTO_T_APPROVE:
    if (!str_same(a->approve.room, b->approve.room) ||
        a->approve.n_decisions != b->approve.n_decisions)
      return 0;
    for (uint32_t k = 0; k < a->approve.n_decisions; k++) {
      const proto_decision *x = &a->approve.decisions[k], *y = &b->approve.decisions[k];
      if (x->learner != y->learner || x->approved != y->approved || x->has_note != y->has_note ||
          (x->has_note && !str_same(x->note, y->note)))
        return 0;
    }
    return 1;
  case PROTO_T_SYNC: return str_same(a->sync.room, b->sync.room) && a->sync.since == b->sync.since;
  case PROTO_T_LEAVE:
  case PROTO_T_CLOSE: return str_same(a->leave.room, b->leave.room);
  case PROTO_T_PING:
  case PROTO_T_WATCH:
  case PROTO_T_UNWATCH: return 1;
  case PROTO_T_CONFIRM:
    return str_same(a->confirm.room, b->confirm.room) && str_same(a->confirm.code, b->confirm.code);
  case PROTO_T_CONFIRM_CODE: return str_same(a->confirm_code.room, b->confirm_code.room);
  default: return 0;
  }
}

/* Server frames built from a decoded message: each one well formed. */
static void encode_server(const proto_msg *m) {
  proto_buf b;
  proto_buf_init(&b, 16);
  proto_rid rid = proto_rid_of(m);
#define ONE(call)                                                                                  \
  do {                                                                                             \
    proto_buf_clear(&b);                                                                           \
    CHECK((call) == 0);                                                                            \
    well_formed(&b);                                                                               \
  } while (0)
  ONE(proto_encode_ok(&b, rid, m->has_rid, m->rid));
  ONE(proto_encode_pong(&b, rid));
  switch (m->type) {
  case PROTO_T_HELLO: {
    proto_user u = {1, m->hello.has_token ? m->hello.token : proto_s("x"), true};
    ONE(proto_encode_welcome(&b, rid, &u));
    break;
  }
  case PROTO_T_ANSWER: {
    proto_event ev = {.type = PROTO_EV_ANSWER};
    ev.answer.learner = m->answer.has_learner ? m->answer.learner : 1;
    ev.answer.task = m->answer.task;
    ev.answer.value = m->answer.value;
    ev.answer.by = 2;
    ONE(proto_encode_ev(&b, m->answer.room, 7, &ev, false));
    ONE(proto_encode_ev(&b, m->answer.room, 7, &ev, true));
    ev.answer.value.kind = PROTO_VALUE_RAW; /* relayed verbatim, as live_act.c does */
    ONE(proto_encode_ev(&b, m->answer.room, 8, &ev, false));
    ONE(proto_encode_ack(&b, rid, m->answer.key, 9));
    break;
  }
  case PROTO_T_MARK: {
    proto_event ev = {.type = PROTO_EV_MARK};
    ev.mark.learner = m->mark.learner;
    ev.mark.task = m->mark.task;
    ev.mark.result = m->mark.result;
    ev.mark.has_note = m->mark.has_note;
    ev.mark.note = m->mark.note;
    ONE(proto_encode_ev(&b, m->mark.room, 1, &ev, false));
    ONE(proto_encode_ev(&b, m->mark.room, 1, &ev, true));
    break;
  }
  case PROTO_T_APPROVE: {
    static proto_approval_result res[PROTO_MAX_DECISIONS];
    for (uint32_t k = 0; k < m->approve.n_decisions; k++) {
      const proto_decision *d = &m->approve.decisions[k];
      res[k] = (proto_approval_result){
          .learner = d->learner,
          .status = d->approved ? PROTO_STATUS_APPROVED : PROTO_STATUS_REFUSED,
          .has_completion = d->approved,
          .completion = d->learner,
          .reason = d->has_note ? d->note : proto_s(""),
      };
    }
    ONE(proto_encode_approved(&b, rid, res, m->approve.n_decisions));
    for (uint32_t k = 0; k < m->approve.n_decisions; k++) res[k].status = PROTO_STATUS_PENDING;
    ONE(proto_encode_approved(&b, rid, res, m->approve.n_decisions));
    break;
  }
  case PROTO_T_CONFIRM: {
    proto_event ev = {.type = PROTO_EV_CONFIRMED, .confirmed = {1, 2, 3, 4}};
    ONE(proto_encode_ev(&b, m->confirm.room, 5, &ev, false));
    ONE(proto_encode_ev(&b, m->confirm.room, 5, &ev, true));
    ONE(proto_encode_err(&b, rid, PROTO_BAD_CODE, "That is not the code."));
    break;
  }
  case PROTO_T_CONFIRM_CODE:
    ONE(proto_encode_confirm_code(&b, rid, m->confirm_code.room, proto_s("123456"), 29000));
    break;
  default: break;
  }
#undef ONE
  proto_buf_free(&b);
}

static void check_slices(const proto_msg *m) {
  switch (m->type) {
  case PROTO_T_HELLO:
    if (m->hello.has_token) in_frame(m->hello.token);
    break;
  case PROTO_T_JOIN:
    if (m->join.has_code) in_frame(m->join.code);
    if (m->join.has_room) in_frame(m->join.room);
    break;
  case PROTO_T_ANSWER:
    in_frame(m->answer.room);
    in_frame(m->answer.key);
    in_frame(m->answer.value.raw);
    if (m->answer.value.kind == PROTO_VALUE_STR) in_frame(m->answer.value.s);
    break;
  case PROTO_T_MARK:
    in_frame(m->mark.room);
    if (m->mark.has_note) in_frame(m->mark.note);
    break;
  case PROTO_T_APPROVE:
    in_frame(m->approve.room);
    for (uint32_t k = 0; k < m->approve.n_decisions; k++)
      if (m->approve.decisions[k].has_note) in_frame(m->approve.decisions[k].note);
    break;
  default: break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static proto_msg m, m2;
  proto_error err;
  /* Copy into an exact-size heap block so ASan sees any read past the end. */
  uint8_t *buf = malloc(size ? size : 1);
  CHECK(buf);
  if (size) memcpy(buf, data, size);
  g_lo = buf;
  g_hi = buf + size;

  int rc = proto_decode(buf, size, NULL, &m, &err);
  if (rc != 0) {
    CHECK(err.code != PROTO_OK && rc == -(int)err.code);
    size_t n = strnlen(err.msg, sizeof err.msg);
    CHECK(n < sizeof err.msg && n > 0);
    for (size_t k = 0; k < n; k++) CHECK(err.msg[k] >= 0x20 && err.msg[k] < 0x7f);
    proto_buf b;
    proto_buf_init(&b, 16);
    CHECK(proto_encode_decode_error(&b, &err) == 0);
    well_formed(&b);
    proto_buf_free(&b);
  } else {
    CHECK(m.type > PROTO_T_NONE && m.type <= PROTO_T_CONFIRM_CODE);
    check_slices(&m);
    encode_server(&m);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    encode_client(&sb, &m);
    int rc2 = proto_decode((const uint8_t *)sb.data, sb.size, NULL, &m2, &err);
    if (rc2 != 0) fprintf(stderr, "re-decode failed: %s\n", err.msg);
    CHECK(rc2 == 0);
    CHECK(msg_same(&m, &m2));
    msgpack_sbuffer_destroy(&sb);
  }
  free(buf);
  return 0;
}
