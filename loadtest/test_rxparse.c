/*
 * Tests of otj-load's in-place frame reader (rxparse.c): it reads what
 * msgpack-c + the old helpers read, refuses what is not well-formed, and the
 * seq check fed from it still counts every lost and duplicated event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "mpobj.h"
#include "rxparse.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void begin(void) {
  msgpack_sbuffer_clear(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void str(const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(&pk, n);
  msgpack_pack_str_body(&pk, s, n);
}

/* {"t": "ev", "room": "r-1", "seq": seq, "e": {"type": type, ..., "value": value}} */
static void pack_ev(uint64_t seq, const char *type, const char *value) {
  begin();
  msgpack_pack_map(&pk, 4);
  str("t");
  str("ev");
  str("room");
  str("r-5c1e");
  str("seq");
  msgpack_pack_uint64(&pk, seq);
  str("e");
  msgpack_pack_map(&pk, value ? 5 : 2);
  str("type");
  str(type);
  str("learner");
  msgpack_pack_int64(&pk, 14);
  if (value) {
    str("task");
    msgpack_pack_uint8(&pk, 0);
    str("by");
    msgpack_pack_int64(&pk, 14);
    str("value");
    str(value);
  }
}

static rx_kind read_sb(rx_msg *m) { return rx_read((const uint8_t *)sb.data, sb.size, m); }

static void test_ev_fields(void **state) {
  (void)state;
  rx_msg m;
  pack_ev(42, "answer", "T123456789012");
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, 42);
  assert_true(m.answer);
  assert_int_equal(rx_due(&m), 123456789012ull);

  pack_ev(70000, "joined", NULL);
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, 70000);
  assert_false(m.answer);
  assert_int_equal(rx_due(&m), 0);

  pack_ev(1, "answer", "1"); /* a value that is not the generator's clock */
  assert_int_equal(read_sb(&m), RX_EV);
  assert_true(m.answer);
  assert_int_equal(rx_due(&m), 0);

  pack_ev(UINT64_MAX, "answer", "T");
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, UINT64_MAX);
  assert_int_equal(rx_due(&m), 0);
}

/* keys in another order, other types around, first occurrence wins */
static void test_ev_layout(void **state) {
  (void)state;
  rx_msg m;
  begin();
  msgpack_pack_map(&pk, 7);
  msgpack_pack_uint8(&pk, 1); /* a non-string key is skipped */
  msgpack_pack_array(&pk, 2);
  msgpack_pack_map(&pk, 1);
  str("seq");
  msgpack_pack_uint8(&pk, 99);
  msgpack_pack_bin(&pk, 3);
  msgpack_pack_bin_body(&pk, "abc", 3);
  str("e");
  msgpack_pack_map(&pk, 2);
  str("value");
  str("T77");
  str("type");
  str("answer");
  str("seq");
  msgpack_pack_int32(&pk, 9); /* a non-negative signed int reads as 9 */
  str("x");
  msgpack_pack_double(&pk, 1.5);
  str("y");
  msgpack_pack_ext(&pk, 4, 1);
  msgpack_pack_ext_body(&pk, "abcd", 4);
  str("t");
  str("ev");
  str("seq");
  msgpack_pack_uint8(&pk, 10); /* the second seq: ignored */
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, 9);
  assert_true(m.answer);
  assert_int_equal(rx_due(&m), 77);

  /* a seq that is not a non-negative integer reads as 0, as before */
  begin();
  msgpack_pack_map(&pk, 2);
  str("t");
  str("ev");
  str("seq");
  msgpack_pack_int8(&pk, -1);
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, 0);
  begin();
  msgpack_pack_map(&pk, 1);
  str("t");
  str("ev");
  assert_int_equal(read_sb(&m), RX_EV);
  assert_int_equal(m.seq, 0);
}

static void test_ack(void **state) {
  (void)state;
  rx_msg m;
  begin();
  msgpack_pack_map(&pk, 4);
  str("t");
  str("ack");
  str("key");
  str("1700000000123456789-17");
  str("seq");
  msgpack_pack_uint32(&pk, 300);
  str("room");
  str("r-1");
  assert_int_equal(read_sb(&m), RX_ACK);
  assert_int_equal(m.seq, 300);
  assert_int_equal(rx_due(&m), 1700000000123456789ull);
}

static void test_other_and_malformed(void **state) {
  (void)state;
  rx_msg m;
  begin();
  msgpack_pack_map(&pk, 2);
  str("t");
  str("snapshot");
  str("seq");
  msgpack_pack_uint8(&pk, 3);
  assert_int_equal(read_sb(&m), RX_OTHER);
  begin();
  msgpack_pack_array(&pk, 1);
  str("ev");
  assert_int_equal(read_sb(&m), RX_OTHER);

  /* every cut of a good frame is refused, and so is a byte after it */
  pack_ev(42, "answer", "T123");
  uint8_t buf[256];
  size_t n = sb.size;
  assert_true(n < sizeof buf);
  memcpy(buf, sb.data, n);
  for (size_t cut = 0; cut < n; cut++) assert_int_equal(rx_read(buf, cut, &m), RX_OTHER);
  buf[n] = 0xc0;
  assert_int_equal(rx_read(buf, n + 1, &m), RX_OTHER);
  assert_int_equal(rx_read(buf, n, &m), RX_EV);

  /* a declared count far beyond the bytes: refused without a long walk */
  static const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 't', 0xa2, 'e', 'v'};
  assert_int_equal(rx_read(huge, sizeof huge, &m), RX_OTHER);
  static const uint8_t deep[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90};
  assert_int_equal(rx_read(deep, sizeof deep, &m), RX_OTHER);
  static const uint8_t never[] = {0x81, 0xa1, 't', 0xc1};
  assert_int_equal(rx_read(never, sizeof never, &m), RX_OTHER);
}

/* ---- against msgpack-c: what the full unpacker and the old helpers read ---- */

static uint64_t num(const msgpack_object *o, size_t cap, size_t skip) {
  char tmp[64] = "";
  if (o && o->type == MSGPACK_OBJECT_STR) {
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(tmp, o->via.str.ptr, n);
    tmp[n] = '\0';
  }
  return strtoull(tmp + skip, NULL, 10);
}

/* Compares rx_read with the full unpack on one buffer; 1 when msgpack-c read
 * it as an ev or ack. */
static int same_as_msgpack(const uint8_t *buf, size_t len) {
  msgpack_zone z;
  msgpack_zone_init(&z, 2048);
  msgpack_object o;
  size_t off = 0;
  int full = msgpack_unpack((const char *)buf, len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
             o.type == MSGPACK_OBJECT_MAP;
  const msgpack_object *t = full ? mp_get(&o, "t") : NULL;
  rx_msg m;
  rx_kind k = rx_read(buf, len, &m);
  int hot = 0;
  if (mp_is(t, "ev")) {
    hot = 1;
    assert_int_equal(k, RX_EV);
    assert_int_equal(m.seq, mp_u64(mp_get(&o, "seq")));
    const msgpack_object *e = mp_get(&o, "e");
    int answer = e && mp_is(mp_get(e, "type"), "answer");
    assert_int_equal(m.answer, answer);
    const msgpack_object *v = answer ? mp_get(e, "value") : NULL;
    uint64_t due =
        v && v->type == MSGPACK_OBJECT_STR && v->via.str.size > 1 && v->via.str.ptr[0] == 'T'
            ? num(v, 32, 1)
            : 0;
    assert_int_equal(rx_due(&m), due);
  } else if (mp_is(t, "ack")) {
    hot = 1;
    assert_int_equal(k, RX_ACK);
    assert_int_equal(m.seq, mp_u64(mp_get(&o, "seq")));
    assert_int_equal(rx_due(&m), num(mp_get(&o, "key"), 64, 0));
  } else {
    /* not an ev or ack to msgpack-c: not one to rx_read either */
    assert_int_equal(k, RX_OTHER);
  }
  msgpack_zone_destroy(&z);
  return hot;
}

/* Good frames with random bytes changed: both readers agree on every one. */
static void test_against_msgpack(void **state) {
  (void)state;
  uint32_t x = 12345;
  int hot = 0;
  for (int round = 0; round < 20000; round++) {
    switch (round % 3) {
    case 0: pack_ev(round, round & 4 ? "answer" : "step", "T98765"); break;
    case 1:
      pack_ev((uint64_t)round << 20, "answer",
              round & 8 ? "T1" : "T12345678901234567890123456789012");
      break;
    default:
      begin();
      msgpack_pack_map(&pk, 3);
      str("t");
      str("ack");
      str("seq");
      msgpack_pack_uint16(&pk, (uint16_t)round);
      str("key");
      str("1234567-89");
    }
    uint8_t buf[256];
    size_t n = sb.size;
    memcpy(buf, sb.data, n);
    int flips = 1 + round % 3;
    for (int f = 0; f < flips; f++) {
      x = x * 1103515245u + 12345u;
      buf[(x >> 8) % n] = (uint8_t)(x >> 20);
    }
    x = x * 1103515245u + 12345u;
    size_t len = round % 5 == 0 ? (x >> 8) % (n + 1) : n;
    hot += same_as_msgpack(buf, len);
  }
  assert_true(hot > 1000); /* enough of the changed frames were still ev or ack */
}

/* What a receiver counts over a stream of ev frames read by rx_read. */
static void feed(const uint64_t *seqs, size_t n, uint64_t first, uint64_t *lost, uint64_t *dup) {
  uint64_t last = first;
  *lost = *dup = 0;
  for (size_t i = 0; i < n; i++) {
    rx_msg m;
    pack_ev(seqs[i], "answer", "T5");
    assert_int_equal(read_sb(&m), RX_EV);
    seq_check(&last, m.seq, lost, dup);
  }
}

static void test_seq_checks(void **state) {
  (void)state;
  uint64_t lost, dup;
  static const uint64_t ok[] = {11, 12, 13, 14, 15};
  feed(ok, 5, 10, &lost, &dup);
  assert_int_equal(lost, 0);
  assert_int_equal(dup, 0);
  static const uint64_t one_lost[] = {11, 12, 14, 15};
  feed(one_lost, 4, 10, &lost, &dup);
  assert_int_equal(lost, 1);
  assert_int_equal(dup, 0);
  static const uint64_t first_lost[] = {12, 13};
  feed(first_lost, 2, 10, &lost, &dup);
  assert_int_equal(lost, 1);
  static const uint64_t one_dup[] = {11, 12, 12, 13};
  feed(one_dup, 4, 10, &lost, &dup);
  assert_int_equal(lost, 0);
  assert_int_equal(dup, 1);
  static const uint64_t reordered[] = {11, 13, 12, 14};
  feed(reordered, 4, 10, &lost, &dup); /* 12 after 13: counted lost, then duplicated */
  assert_int_equal(lost, 1);
  assert_int_equal(dup, 1);
  static const uint64_t replayed[] = {10, 11};
  feed(replayed, 2, 10, &lost, &dup); /* the snapshot's own seq again */
  assert_int_equal(dup, 1);
  assert_int_equal(lost, 0);
}

int main(void) {
  msgpack_sbuffer_init(&sb);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ev_fields),  cmocka_unit_test(test_ev_layout),
      cmocka_unit_test(test_ack),        cmocka_unit_test(test_other_and_malformed),
      cmocka_unit_test(test_seq_checks), cmocka_unit_test(test_against_msgpack),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}
