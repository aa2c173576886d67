/*
 * test_live — the pure parts of live rooms: the event ring (order, gaps,
 * duplicates, catch-up), reading an event and its type, reading the room
 * script's replies, and the framing of the otj:dash channel.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "live_int.h"

/* ---- events ---------------------------------------------------------------- */

/* {seq, subject, whole, redacted} as room.lua's emit packs it; the whole
 * map has `type` as its LAST key (cmsgpack's order is not ours). */
static ev_msg *make_ev(uint64_t seq, uint64_t subject, const char *type) {
  msgpack_sbuffer body, msg;
  msgpack_packer pk;
  msgpack_sbuffer_init(&body);
  msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "learner", 7);
  msgpack_pack_uint64(&pk, subject);
  msgpack_pack_str_with_body(&pk, "type", 4);
  msgpack_pack_str_with_body(&pk, type, strlen(type));
  msgpack_sbuffer_init(&msg);
  msgpack_packer_init(&pk, &msg, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_uint64(&pk, seq);
  msgpack_pack_uint64(&pk, subject);
  msgpack_pack_str_with_body(&pk, body.data, body.size);
  msgpack_pack_str_with_body(&pk, "", 0);
  ev_msg *e = ev_parse(msg.data, msg.size);
  msgpack_sbuffer_destroy(&body);
  msgpack_sbuffer_destroy(&msg);
  return e;
}

static void event_type_is_read_wherever_it_stands(void **state) {
  (void)state;
  ev_msg *e = make_ev(7, 42, "removed");
  assert_non_null(e);
  assert_int_equal(e->seq, 7);
  assert_int_equal(e->subject, 42);
  assert_true(ev_is(e, "removed"));
  assert_false(ev_is(e, "remove"));
  assert_false(ev_is(e, "added"));
  free(e);
  /* not an event: refused, not guessed */
  assert_null(ev_parse("\x93\x01\x02\x03", 4));
  assert_null(ev_parse("", 0));
}

/* ---- the ring ----------------------------------------------------------------- */

typedef struct seen {
  uint64_t seq[2 * LIVE_RING];
  size_t n;
} seen;

static void record(void *ud, const ev_msg *e) {
  seen *s = ud;
  s->seq[s->n++] = e->seq;
}

static int push(ev_ring *g, seen *s, uint64_t seq) {
  return ev_ring_accept(g, make_ev(seq, 0, "step"), record, s);
}

static void in_order_events_are_delivered_at_once(void **state) {
  (void)state;
  ev_ring g = {0};
  seen s = {0};
  assert_int_equal(push(&g, &s, 5), 0); /* the first one sets where we are */
  assert_int_equal(push(&g, &s, 6), 0);
  assert_int_equal(push(&g, &s, 7), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.seq[0], 5);
  assert_int_equal(s.seq[2], 7);
  assert_int_equal(g.seq, 7);
  ev_ring_free(&g);
}

static void a_gap_holds_later_events_until_it_is_filled(void **state) {
  (void)state;
  ev_ring g = {0};
  seen s = {0};
  push(&g, &s, 1);
  assert_int_equal(push(&g, &s, 4), 1); /* 2 and 3 missing: fetch */
  assert_int_equal(push(&g, &s, 3), 1);
  assert_int_equal(s.n, 1);
  assert_int_equal(g.npend, 2);
  /* the log's answer fills the hole: everything goes out, in order */
  assert_int_equal(push(&g, &s, 2), 0);
  assert_int_equal(s.n, 4);
  for (size_t i = 0; i < 4; i++) assert_int_equal(s.seq[i], i + 1);
  assert_int_equal(g.npend, 0);
  assert_null(g.pend);
  ev_ring_free(&g);
}

static void duplicates_and_old_events_are_dropped(void **state) {
  (void)state;
  ev_ring g = {0};
  seen s = {0};
  push(&g, &s, 1);
  push(&g, &s, 2);
  assert_int_equal(push(&g, &s, 2), 0); /* again: the log and the channel */
  assert_int_equal(push(&g, &s, 1), 0);
  push(&g, &s, 5);
  push(&g, &s, 5); /* held twice: kept once */
  assert_int_equal(g.npend, 1);
  push(&g, &s, 3);
  push(&g, &s, 4);
  assert_int_equal(s.n, 5);
  for (size_t i = 0; i < 5; i++) assert_int_equal(s.seq[i], i + 1);
  ev_ring_free(&g);
}

static void a_learned_seq_delivers_what_raced_ahead(void **state) {
  (void)state;
  seen s = {0};
  ev_ring h = {0};
  h.seq_known = 1; /* hold 11 and 12 as if they came before the reply */
  h.seq = 9;
  assert_int_equal(ev_ring_accept(&h, make_ev(11, 0, "step"), record, &s), 1);
  assert_int_equal(ev_ring_accept(&h, make_ev(12, 0, "step"), record, &s), 1);
  h.seq_known = 0;
  assert_int_equal(ev_ring_learn(&h, 10, record, &s), 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.seq[0], 11);
  assert_int_equal(s.seq[1], 12);
  /* a second reply does not move a known seq */
  assert_int_equal(ev_ring_learn(&h, 3, record, &s), 0);
  assert_int_equal(h.seq, 12);
  ev_ring_free(&h);
}

static void a_restart_forgets_what_was_held(void **state) {
  (void)state;
  ev_ring g = {0};
  seen s = {0};
  push(&g, &s, 1);
  push(&g, &s, 9);
  push(&g, &s, 10);
  ev_ring_restart(&g, 20);
  assert_int_equal(g.npend, 0);
  assert_int_equal(push(&g, &s, 21), 0);
  assert_int_equal(s.seq[s.n - 1], 21);
  ev_ring_free(&g);
}

static void catch_up_starts_at_what_the_ring_still_holds(void **state) {
  (void)state;
  ev_ring g = {0};
  seen s = {0};
  for (uint64_t q = 1; q <= LIVE_RING + 10; q++) push(&g, &s, q);
  assert_int_equal(ev_ring_from(&g, 100), 101);
  /* a reader far behind starts at the oldest event kept */
  assert_int_equal(ev_ring_from(&g, 0), 11);
  assert_null(ev_ring_get(&g, 10));
  assert_non_null(ev_ring_get(&g, 11));
  assert_int_equal(ev_ring_get(&g, LIVE_RING + 10)->seq, LIVE_RING + 10);
  ev_ring_free(&g);
}

/* ---- script replies --------------------------------------------------------------- */

static redisReply str(const char *s) {
  return (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
}

static void script_replies_are_read_by_kind(void **state) {
  (void)state;
  assert_int_equal(live_reply_parse(NULL).kind, LIVE_REPLY_NONE);

  redisReply ok = str("ok"), seq = {.type = REDIS_REPLY_INTEGER, .integer = 42};
  redisReply *okv[] = {&ok, &seq};
  redisReply a = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = okv};
  live_reply y = live_reply_parse(&a);
  assert_int_equal(y.kind, LIVE_REPLY_OK);
  assert_int_equal(y.seq, 42);

  redisReply old = str("old");
  redisReply *oldv[] = {&old, &seq};
  a.element = oldv;
  y = live_reply_parse(&a);
  assert_int_equal(y.kind, LIVE_REPLY_OLD);
  assert_int_equal(y.seq, 42);

  redisReply err = str("err"), code = str("not_found"), msg = str("gone");
  redisReply *errv[] = {&err, &code, &msg};
  a.element = errv;
  a.elements = 3;
  y = live_reply_parse(&a);
  assert_int_equal(y.kind, LIVE_REPLY_ERR);
  assert_int_equal(y.code, PROTO_NOT_FOUND);
  assert_string_equal(y.msg, "gone");
  code = str("something_new");
  assert_int_equal(live_reply_parse(&a).code, PROTO_INTERNAL);
  a.elements = 2; /* an err without its sentence is not a shape room.lua makes */
  assert_int_equal(live_reply_parse(&a).kind, LIVE_REPLY_BAD);

  redisReply oom = {.type = REDIS_REPLY_ERROR, .str = "OOM command not allowed"};
  assert_int_equal(live_reply_parse(&oom).kind, LIVE_REPLY_FULL);
  redisReply other = {.type = REDIS_REPLY_ERROR, .str = "ERR wrong"};
  assert_int_equal(live_reply_parse(&other).kind, LIVE_REPLY_REFUSED);
  redisReply num = {.type = REDIS_REPLY_INTEGER, .integer = 1};
  assert_int_equal(live_reply_parse(&num).kind, LIVE_REPLY_BAD);
}

/* ---- the otj:dash framing ----------------------------------------------------------- */

static void dash_messages_round_trip(void **state) {
  (void)state;
  const char inst[] = "0123456789abcdef";
  uint8_t p = DASH_PENDING;
  assert_int_equal(dash_parse(&p, 1).tag, DASH_PENDING);

  uint8_t inv[DASH_INVITE_HEAD + 3];
  dash_invite_head(inv, 0x0102030405060708LL);
  memcpy(inv + DASH_INVITE_HEAD, "abc", 3);
  dash_msg m = dash_parse(inv, sizeof inv);
  assert_int_equal(m.tag, DASH_INVITE);
  assert_int_equal(m.user, 0x0102030405060708LL);
  assert_int_equal(m.frame_len, 3);
  assert_memory_equal(m.frame, "abc", 3);

  uint8_t u[DASH_USER_LEN];
  dash_user_msg(u, inst, 77, 'D');
  m = dash_parse(u, sizeof u);
  assert_int_equal(m.tag, DASH_USER);
  assert_int_equal(m.user, 77);
  assert_int_equal(m.kind, 'D');
  assert_memory_equal(m.instance, inst, LIVE_INSTANCE_LEN);

  unsigned char digest[32];
  for (int i = 0; i < 32; i++) digest[i] = (unsigned char)i;
  uint8_t t[DASH_TOKEN_LEN];
  dash_token_msg(t, inst, digest);
  m = dash_parse(t, sizeof t);
  assert_int_equal(m.tag, DASH_TOKEN);
  assert_memory_equal(m.frame, digest, 32);
}

static void malformed_dash_messages_are_ignored(void **state) {
  (void)state;
  uint8_t buf[64] = {0};
  assert_int_equal(dash_parse(buf, 0).tag, 0);
  buf[0] = DASH_PENDING;
  assert_int_equal(dash_parse(buf, 2).tag, 0);
  buf[0] = DASH_INVITE; /* a head without a frame */
  assert_int_equal(dash_parse(buf, DASH_INVITE_HEAD).tag, 0);
  buf[0] = DASH_USER;
  assert_int_equal(dash_parse(buf, DASH_USER_LEN - 1).tag, 0);
  buf[0] = DASH_TOKEN;
  assert_int_equal(dash_parse(buf, DASH_TOKEN_LEN + 1).tag, 0);
  buf[0] = 'Z';
  assert_int_equal(dash_parse(buf, 10).tag, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(event_type_is_read_wherever_it_stands),
      cmocka_unit_test(in_order_events_are_delivered_at_once),
      cmocka_unit_test(a_gap_holds_later_events_until_it_is_filled),
      cmocka_unit_test(duplicates_and_old_events_are_dropped),
      cmocka_unit_test(a_learned_seq_delivers_what_raced_ahead),
      cmocka_unit_test(a_restart_forgets_what_was_held),
      cmocka_unit_test(catch_up_starts_at_what_the_ring_still_holds),
      cmocka_unit_test(script_replies_are_read_by_kind),
      cmocka_unit_test(dash_messages_round_trip),
      cmocka_unit_test(malformed_dash_messages_are_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
