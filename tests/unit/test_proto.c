/* test_proto.c -- unit tests for the otj.v1 codec (protocol/proto.c).
 *
 * Client frames are built with msgpack-c's own packer, mostly from a small
 * JSON-like notation (see pack_json) so that each case reads like the frame it
 * sends. Server frames produced by our encoders are read back with msgpack-c's
 * unpacker, which is safe here because the bytes are our own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto.h"

/* ======================================================================== */
/* Building client frames                                                   */
/* ======================================================================== */

/* A frame under construction: msgpack-c's sbuffer and packer. */
typedef struct frame {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} frame;

static void frame_init(frame *f) {
  msgpack_sbuffer_init(&f->sb);
  msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
}

static void frame_free(frame *f) { msgpack_sbuffer_destroy(&f->sb); }

static void pk_cstr(msgpack_packer *pk, const char *s) {
  msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Count the entries of the object or array whose body starts at s (just after
 * the opening bracket). */
static unsigned json_count(const char *s) {
  int depth = 0;
  unsigned commas = 0;
  bool any = false, in_str = false;
  for (; *s; s++) {
    char c = *s;
    if (in_str) {
      if (c == '\\' && s[1])
        s++;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"') {
      in_str = true;
      any = true;
    } else if (c == '{' || c == '[') {
      depth++;
      any = true;
    } else if (c == '}' || c == ']') {
      if (depth == 0) break;
      depth--;
    } else if (c == ',' && depth == 0) {
      commas++;
    } else if (c != ' ') {
      any = true;
    }
  }
  return any ? commas + 1 : 0;
}

static const char *skip_ws(const char *s) {
  while (*s == ' ') s++;
  return s;
}

/* Pack the JSON-like text at s (objects, arrays, "strings" with \" and \\,
 * integers, decimals as float64, true/false/null) and return what follows. */
static const char *json_pack(msgpack_packer *pk, const char *s) {
  s = skip_ws(s);
  if (*s == '{' || *s == '[') {
    bool obj = *s == '{';
    unsigned n = json_count(s + 1);
    if (obj)
      msgpack_pack_map(pk, n);
    else
      msgpack_pack_array(pk, n);
    s++;
    for (unsigned k = 0; k < n; k++) {
      s = json_pack(pk, s);
      s = skip_ws(s);
      if (obj) {
        assert_true(*s == ':');
        s = json_pack(pk, s + 1);
        s = skip_ws(s);
      }
      if (*s == ',') s++;
    }
    s = skip_ws(s);
    assert_true(*s == (obj ? '}' : ']'));
    return s + 1;
  }
  if (*s == '"') {
    char tmp[8192];
    size_t n = 0;
    for (s++; *s != '"'; s++) {
      assert_true(*s != '\0');
      if (*s == '\\') s++;
      assert_true(n < sizeof tmp);
      tmp[n++] = *s;
    }
    msgpack_pack_str_with_body(pk, tmp, n);
    return s + 1;
  }
  if (strncmp(s, "true", 4) == 0) {
    msgpack_pack_true(pk);
    return s + 4;
  }
  if (strncmp(s, "false", 5) == 0) {
    msgpack_pack_false(pk);
    return s + 5;
  }
  if (strncmp(s, "null", 4) == 0) {
    msgpack_pack_nil(pk);
    return s + 4;
  }
  char *end;
  size_t span = strspn(s, "-0123456789");
  if (s[span] == '.') {
    double d = strtod(s, &end);
    msgpack_pack_double(pk, d);
    return end;
  }
  if (*s == '-') {
    long long v = strtoll(s, &end, 10);
    msgpack_pack_long_long(pk, v);
  } else {
    unsigned long long v = strtoull(s, &end, 10);
    msgpack_pack_unsigned_long_long(pk, v);
  }
  assert_true(end != s);
  return end;
}

static void frame_json(frame *f, const char *json) {
  frame_init(f);
  const char *rest = skip_ws(json_pack(&f->pk, json));
  assert_true(*rest == '\0');
}

/* Decode with the default limits. */
static int decode_frame(const frame *f, proto_msg *m, proto_error *e) {
  return proto_decode((const uint8_t *)f->sb.data, f->sb.size, NULL, m, e);
}

static proto_msg *new_msg(void) {
  proto_msg *m = malloc(sizeof *m);
  assert_non_null(m);
  memset(m, 0xa5, sizeof *m); /* garbage: decode must not rely on zeroed output */
  return m;
}

/* Decode JSON that must succeed. The frame stays alive in *f for the slices. */
static void decode_ok(frame *f, const char *json, proto_msg *m) {
  proto_error e;
  frame_json(f, json);
  int rc = decode_frame(f, m, &e);
  if (rc != 0) fail_msg("decode of %s failed: %s (%s)", json, e.msg, proto_code_name(e.code));
}

/* Decode JSON that must fail with `code` and a msg containing `needle`. */
static void decode_bad(const char *json, proto_code code, const char *needle) {
  frame f;
  proto_error e;
  proto_msg *m = new_msg();
  frame_json(&f, json);
  int rc = decode_frame(&f, m, &e);
  if (rc == 0) fail_msg("decode of %s succeeded but should fail", json);
  assert_int_equal(rc, -(int)code);
  if (e.code != code || !strstr(e.msg, needle))
    fail_msg("decode of %s: got %s \"%s\", wanted %s containing \"%s\"", json,
             proto_code_name(e.code), e.msg, proto_code_name(code), needle);
  assert_true(strlen(e.msg) > 0 && strlen(e.msg) < PROTO_ERR_MSG_MAX);
  frame_free(&f);
  free(m);
}

static int decode_bytes(const void *p, size_t n, proto_error *e) {
  proto_msg *m = new_msg();
  int rc = proto_decode(p, n, NULL, m, e);
  free(m);
  return rc;
}

static void assert_str(proto_str s, const char *want) {
  if (!proto_str_eq(s, want)) fail_msg("got '%.*s', wanted '%s'", (int)s.len, s.ptr, want);
}

/* ======================================================================== */
/* Reading server frames back with msgpack-c                                */
/* ======================================================================== */

/* Unpack exactly one object filling the whole buffer payload. */
static const msgpack_object *unpack_one(const proto_buf *b, msgpack_unpacked *u) {
  size_t off = 0;
  msgpack_unpacked_init(u);
  assert_int_equal(
      msgpack_unpack_next(u, (const char *)proto_buf_bytes(b), proto_buf_size(b), &off),
      MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, proto_buf_size(b));
  assert_int_equal(u->data.type, MSGPACK_OBJECT_MAP);
  return &u->data;
}

/* Value of `key` in a map whose keys must all be distinct strings; NULL if absent. */
static const msgpack_object *get(const msgpack_object *map, const char *key) {
  const msgpack_object *found = NULL;
  assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
    for (uint32_t j = 0; j < i; j++) {
      const msgpack_object *k2 = &map->via.map.ptr[j].key;
      assert_false(k2->via.str.size == kv->key.via.str.size &&
                   memcmp(k2->via.str.ptr, kv->key.via.str.ptr, k2->via.str.size) == 0);
    }
    if (kv->key.via.str.size == strlen(key) && memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
      found = &kv->val;
  }
  return found;
}

static void expect_str(const msgpack_object *map, const char *key, const char *want) {
  const msgpack_object *o = get(map, key);
  if (!o) fail_msg("key '%s' missing", key);
  assert_int_equal(o->type, MSGPACK_OBJECT_STR);
  if (o->via.str.size != strlen(want) || memcmp(o->via.str.ptr, want, strlen(want)) != 0)
    fail_msg("key '%s' is '%.*s', wanted '%s'", key, (int)o->via.str.size, o->via.str.ptr, want);
}

static void expect_u(const msgpack_object *map, const char *key, uint64_t want) {
  const msgpack_object *o = get(map, key);
  if (!o) fail_msg("key '%s' missing", key);
  assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  assert_int_equal(o->via.u64, want);
}

static void expect_bool(const msgpack_object *map, const char *key, bool want) {
  const msgpack_object *o = get(map, key);
  if (!o) fail_msg("key '%s' missing", key);
  assert_int_equal(o->type, MSGPACK_OBJECT_BOOLEAN);
  assert_int_equal(o->via.boolean, want);
}

static void expect_absent(const msgpack_object *map, const char *key) {
  if (get(map, key)) fail_msg("key '%s' should be absent", key);
}

static const msgpack_object *expect_array(const msgpack_object *map, const char *key, uint32_t n) {
  const msgpack_object *o = get(map, key);
  if (!o) fail_msg("key '%s' missing", key);
  assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(o->via.array.size, n);
  return o;
}

/* ======================================================================== */
/* Decoding: every client message type                                     */
/* ======================================================================== */

static void test_decode_hello(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"hello\",\"v\":1,\"token\":\"tok-123\",\"rid\":7}", m);
  assert_int_equal(m->type, PROTO_T_HELLO);
  assert_int_equal(m->hello.v, 1);
  assert_true(m->hello.has_token);
  assert_str(m->hello.token, "tok-123");
  assert_true(m->has_rid);
  assert_int_equal(m->rid, 7);
  /* the slice points into the frame itself */
  assert_true(m->hello.token.ptr > f.sb.data && m->hello.token.ptr < f.sb.data + f.sb.size);
  frame_free(&f);

  /* token may be left out (cookie) or sent as nil; rid is optional */
  decode_ok(&f, "{\"v\":1,\"t\":\"hello\"}", m);
  assert_false(m->hello.has_token);
  assert_false(m->has_rid);
  frame_free(&f);
  decode_ok(&f, "{\"t\":\"hello\",\"v\":1,\"token\":null,\"rid\":null}", m);
  assert_false(m->hello.has_token);
  assert_false(m->has_rid);
  frame_free(&f);

  /* v = 1 in every integer encoding a client might choose */
  static const uint8_t v_int8[] = {0x82, 0xa1, 't',  0xa5, 'h',  'e', 'l',
                                   'l',  'o',  0xa1, 'v',  0xd0, 0x01};
  static const uint8_t v_uint16[] = {0x82, 0xa1, 't',  0xa5, 'h',  'e',  'l',
                                     'l',  'o',  0xa1, 'v',  0xcd, 0x00, 0x01};
  static const uint8_t v_int64[] = {0x82, 0xa1, 't', 0xa5, 'h', 'e', 'l', 'l', 'o', 0xa1,
                                    'v',  0xd3, 0,   0,    0,   0,   0,   0,   0,   0x01};
  proto_error e;
  assert_int_equal(proto_decode(v_int8, sizeof v_int8, NULL, m, &e), 0);
  assert_int_equal(m->hello.v, 1);
  assert_int_equal(proto_decode(v_uint16, sizeof v_uint16, NULL, m, &e), 0);
  assert_int_equal(proto_decode(v_int64, sizeof v_int64, NULL, m, &e), 0);
  free(m);
}

static void test_decode_open(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"open\",\"module\":12,\"learners\":[3,4,300000,9007199254740991]}", m);
  assert_int_equal(m->type, PROTO_T_OPEN);
  assert_int_equal(m->open.module, 12);
  assert_int_equal(m->open.n_learners, 4);
  assert_int_equal(m->open.learners[0], 3);
  assert_int_equal(m->open.learners[1], 4);
  assert_int_equal(m->open.learners[2], 300000);
  assert_int_equal(m->open.learners[3], 9007199254740991ULL);
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"open\",\"module\":1,\"learners\":[]}", m);
  assert_int_equal(m->open.n_learners, 0);
  frame_free(&f);

  /* exactly PROTO_MAX_LEARNERS is fine */
  frame_init(&f);
  msgpack_pack_map(&f.pk, 3);
  pk_cstr(&f.pk, "t");
  pk_cstr(&f.pk, "open");
  pk_cstr(&f.pk, "module");
  msgpack_pack_int(&f.pk, 5);
  pk_cstr(&f.pk, "learners");
  msgpack_pack_array(&f.pk, PROTO_MAX_LEARNERS);
  for (unsigned k = 0; k < PROTO_MAX_LEARNERS; k++) msgpack_pack_unsigned_int(&f.pk, 1000 + k);
  proto_error e;
  assert_int_equal(decode_frame(&f, m, &e), 0);
  assert_int_equal(m->open.n_learners, PROTO_MAX_LEARNERS);
  assert_int_equal(m->open.learners[PROTO_MAX_LEARNERS - 1], 1000 + PROTO_MAX_LEARNERS - 1);
  frame_free(&f);
  free(m);
}

static void test_decode_join(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"join\",\"code\":\"K7Q2\",\"rid\":1}", m);
  assert_int_equal(m->type, PROTO_T_JOIN);
  assert_true(m->join.has_code);
  assert_false(m->join.has_room);
  assert_str(m->join.code, "K7Q2");
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"join\",\"room\":\"r-81\",\"code\":null}", m);
  assert_false(m->join.has_code);
  assert_true(m->join.has_room);
  assert_str(m->join.room, "r-81");
  frame_free(&f);
  free(m);
}

static void test_decode_add_remove_step(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"add\",\"room\":\"r1\",\"learner\":44}", m);
  assert_int_equal(m->type, PROTO_T_ADD);
  assert_str(m->add.room, "r1");
  assert_int_equal(m->add.learner, 44);
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"remove\",\"room\":\"r2\",\"learner\":45}", m);
  assert_int_equal(m->type, PROTO_T_REMOVE);
  assert_str(m->remove.room, "r2");
  assert_int_equal(m->remove.learner, 45);
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"step\",\"room\":\"r1\",\"task\":0}", m);
  assert_int_equal(m->type, PROTO_T_STEP);
  assert_int_equal(m->step.task, 0);
  frame_free(&f);
  decode_ok(&f, "{\"t\":\"step\",\"room\":\"r1\",\"task\":4294967295}", m);
  assert_int_equal(m->step.task, 4294967295u);
  frame_free(&f);
  free(m);
}

static void test_decode_answer(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"answer\",\"room\":\"r1\",\"task\":0,\"value\":1,\"key\":\"k-1\"}", m);
  assert_int_equal(m->type, PROTO_T_ANSWER);
  assert_str(m->answer.room, "r1");
  assert_int_equal(m->answer.task, 0);
  assert_int_equal(m->answer.value.kind, PROTO_VALUE_INT);
  assert_int_equal(m->answer.value.i, 1);
  assert_str(m->answer.key, "k-1");
  assert_false(m->answer.has_learner);
  /* raw is the value's own msgpack bytes: positive fixint 1 */
  assert_int_equal(m->answer.value.raw.len, 1);
  assert_int_equal((uint8_t)m->answer.value.raw.ptr[0], 0x01);
  frame_free(&f);

  decode_ok(
      &f, "{\"t\":\"answer\",\"room\":\"r1\",\"task\":2,\"value\":-7,\"key\":\"k\",\"learner\":9}",
      m);
  assert_int_equal(m->answer.value.kind, PROTO_VALUE_INT);
  assert_int_equal(m->answer.value.i, -7);
  assert_true(m->answer.has_learner);
  assert_int_equal(m->answer.learner, 9);
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"answer\",\"room\":\"r1\",\"task\":1,\"value\":[0,2,-1],\"key\":\"k2\"}",
            m);
  assert_int_equal(m->answer.value.kind, PROTO_VALUE_INTS);
  assert_int_equal(m->answer.value.n_items, 3);
  assert_int_equal(m->answer.value.items[0], 0);
  assert_int_equal(m->answer.value.items[1], 2);
  assert_int_equal(m->answer.value.items[2], -1);
  assert_int_equal(m->answer.value.raw.len, 4); /* 0x93 00 02 ff */
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"answer\",\"room\":\"r1\",\"task\":1,\"value\":[],\"key\":\"k3\"}", m);
  assert_int_equal(m->answer.value.kind, PROTO_VALUE_INTS);
  assert_int_equal(m->answer.value.n_items, 0);
  frame_free(&f);

  decode_ok(&f,
            "{\"t\":\"answer\",\"room\":\"r1\",\"task\":3,\"value\":\"about 20 s, "
            "\u00e9\",\"key\":\"k4\"}",
            m);
  assert_int_equal(m->answer.value.kind, PROTO_VALUE_STR);
  assert_str(m->answer.value.s, "about 20 s, \u00e9");
  frame_free(&f);

  /* a key of exactly 64 bytes is accepted */
  char json[256];
  snprintf(json, sizeof json,
           "{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1,\"key\":\"%064d\"}", 0);
  decode_ok(&f, json, m);
  assert_int_equal(m->answer.key.len, 64);
  frame_free(&f);
  free(m);
}

#define EVIDENCE_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_decode_mark(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f,
            "{\"t\":\"mark\",\"room\":\"r1\",\"learner\":5,\"task\":2,\"result\":\"fail\","
            "\"note\":\"Missed the thumbs.\"}",
            m);
  assert_int_equal(m->type, PROTO_T_MARK);
  assert_int_equal(m->mark.learner, 5);
  assert_int_equal(m->mark.task, 2);
  assert_int_equal(m->mark.result, PROTO_RESULT_FAIL);
  assert_true(m->mark.has_note);
  assert_str(m->mark.note, "Missed the thumbs.");
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"mark\",\"room\":\"r1\",\"learner\":5,\"task\":2,\"result\":\"pass\"}", m);
  assert_int_equal(m->mark.result, PROTO_RESULT_PASS);
  assert_false(m->mark.has_note);
  assert_false(m->mark.has_evidence);
  frame_free(&f);

  decode_ok(&f,
            "{\"t\":\"mark\",\"room\":\"r1\",\"learner\":5,\"task\":2,\"result\":\"pass\","
            "\"evidence\":\"" EVIDENCE_HEX "\"}",
            m);
  assert_true(m->mark.has_evidence);
  assert_str(m->mark.evidence, EVIDENCE_HEX);
  frame_free(&f);
  free(m);
}

static void test_decode_group_mark(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();
  decode_ok(&f,
            "{\"t\":\"mark\",\"room\":\"r1\",\"learners\":[5,7,9],\"task\":1,"
            "\"result\":\"pass\"}",
            m);
  assert_int_equal(m->mark.n_learners, 3);
  assert_int_equal(m->mark.learners[0], 5);
  assert_int_equal(m->mark.learners[2], 9);
  assert_int_equal(m->mark.learner, 5);
  frame_free(&f);
  /* one learner: no group */
  decode_ok(&f, "{\"t\":\"mark\",\"room\":\"r1\",\"learner\":5,\"task\":1,\"result\":\"pass\"}", m);
  assert_int_equal(m->mark.n_learners, 0);
  frame_free(&f);
  free(m);
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learners\":[],\"task\":1,\"result\":\"pass\"}",
             PROTO_BAD_REQUEST, "at least one");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learners\":[1],\"learner\":1,\"task\":1,"
             "\"result\":\"pass\"}",
             PROTO_BAD_REQUEST, "not both");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learners\":[3,4,3],\"task\":1,\"result\":\"pass\"}",
             PROTO_BAD_REQUEST, "listed twice");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learners\":[3,-4],\"task\":1,\"result\":\"pass\"}",
             PROTO_BAD_REQUEST, "learners[1]");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learners\":5,\"task\":1,\"result\":\"pass\"}",
             PROTO_BAD_REQUEST, "learners");
}

static void test_group_view(void **state) {
  (void)state;
  const uint64_t g[] = {5, 7};
  assert_int_equal(proto_group_view(g, 2, (proto_viewer){.user = 3, .is_host = true}),
                   PROTO_VIEW_WHOLE);
  assert_int_equal(proto_group_view(g, 2, (proto_viewer){.user = 7}), PROTO_VIEW_OWN);
  assert_int_equal(proto_group_view(g, 2, (proto_viewer){.user = 6}), PROTO_VIEW_REDACTED);
  assert_int_equal(proto_group_view(g, 0, (proto_viewer){.user = 5}), PROTO_VIEW_REDACTED);
}

static void test_decode_approve(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(
      &f,
      "{\"t\":\"approve\",\"room\":\"r1\",\"rid\":3,\"decisions\":["
      "{\"learner\":5,\"approved\":true},"
      "{\"approved\":false,\"learner\":6,\"note\":\"Redo step 2.\",\"extra\":[1,{\"x\":2}]}]}",
      m);
  assert_int_equal(m->type, PROTO_T_APPROVE);
  assert_str(m->approve.room, "r1");
  assert_int_equal(m->approve.n_decisions, 2);
  assert_int_equal(m->approve.decisions[0].learner, 5);
  assert_true(m->approve.decisions[0].approved);
  assert_false(m->approve.decisions[0].has_note);
  assert_int_equal(m->approve.decisions[1].learner, 6);
  assert_false(m->approve.decisions[1].approved);
  assert_true(m->approve.decisions[1].has_note);
  assert_str(m->approve.decisions[1].note, "Redo step 2.");
  frame_free(&f);
  free(m);
}

static void test_decode_sync_leave_close_ping(void **state) {
  (void)state;
  frame f;
  proto_msg *m = new_msg();

  decode_ok(&f, "{\"t\":\"sync\",\"room\":\"r1\",\"since\":41}", m);
  assert_int_equal(m->type, PROTO_T_SYNC);
  assert_int_equal(m->sync.since, 41);
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"leave\",\"room\":\"r1\"}", m);
  assert_int_equal(m->type, PROTO_T_LEAVE);
  assert_str(m->leave.room, "r1");
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"close\",\"room\":\"r9\"}", m);
  assert_int_equal(m->type, PROTO_T_CLOSE);
  assert_str(m->close.room, "r9");
  frame_free(&f);

  decode_ok(&f, "{\"t\":\"ping\",\"rid\":18446744073709551615}", m);
  assert_int_equal(m->type, PROTO_T_PING);
  assert_true(m->has_rid);
  assert_int_equal(m->rid, UINT64_MAX);
  frame_free(&f);

  /* unknown keys, of any shape, are ignored */
  decode_ok(&f, "{\"future\":{\"a\":[1,2,{\"b\":null}]},\"t\":\"ping\",\"z\":1.5,\"bin\":\"x\"}",
            m);
  assert_int_equal(m->type, PROTO_T_PING);
  frame_free(&f);
  free(m);
}

static void test_type_names(void **state) {
  (void)state;
  assert_string_equal(proto_code_name(PROTO_BAD_REQUEST), "bad_request");
  assert_string_equal(proto_code_name(PROTO_UNAUTHORIZED), "unauthorized");
  assert_string_equal(proto_code_name(PROTO_FORBIDDEN), "forbidden");
  assert_string_equal(proto_code_name(PROTO_NOT_FOUND), "not_found");
  assert_string_equal(proto_code_name(PROTO_CONFLICT), "conflict");
  assert_string_equal(proto_code_name(PROTO_TOO_LARGE), "too_large");
  assert_string_equal(proto_code_name(PROTO_RATE_LIMITED), "rate_limited");
  assert_string_equal(proto_code_name(PROTO_UNAVAILABLE), "unavailable");
  assert_string_equal(proto_code_name(PROTO_INTERNAL), "internal");
  assert_string_equal(proto_code_name((proto_code)99), "internal");
  assert_string_equal(proto_type_name(PROTO_T_APPROVE), "approve");
  assert_string_equal(proto_ev_type_name(PROTO_EV_CLOSED), "closed");
  assert_true(proto_str_eq(proto_s("abc"), "abc"));
  assert_false(proto_str_eq(proto_s("abc"), "ab"));
  assert_true(proto_str_eq(proto_s(NULL), ""));
}

/* ======================================================================== */
/* Decoding: rejections                                                     */
/* ======================================================================== */

static void test_reject_field_errors(void **state) {
  (void)state;
  /* message type */
  decode_bad("{\"v\":1}", PROTO_BAD_REQUEST, "Field 't'");
  decode_bad("{\"t\":null}", PROTO_BAD_REQUEST, "Field 't'");
  decode_bad("{\"t\":5}", PROTO_BAD_REQUEST, "Field 't' must be a string");
  decode_bad("{\"t\":\"nope\"}", PROTO_BAD_REQUEST, "Unknown message type 'nope'.");
  decode_bad("{\"t\":\"PING\"}", PROTO_BAD_REQUEST, "Unknown message type 'PING'.");
  decode_bad("{\"t\":\"ping\",\"t\":\"ping\"}", PROTO_BAD_REQUEST, "more than once");
  decode_bad("{\"t\":\"ping\",\"rid\":\"7\"}", PROTO_BAD_REQUEST, "Field 'rid'");
  decode_bad("{\"t\":\"ping\",\"rid\":-1}", PROTO_BAD_REQUEST, "Field 'rid'");
  decode_bad("{\"t\":\"ping\",\"rid\":1.0}", PROTO_BAD_REQUEST, "Field 'rid'");
  /* hello */
  decode_bad("{\"t\":\"hello\"}", PROTO_BAD_REQUEST, "Field 'v' is required.");
  decode_bad("{\"t\":\"hello\",\"v\":\"1\"}", PROTO_BAD_REQUEST, "Field 'v'");
  decode_bad("{\"t\":\"hello\",\"v\":1.0}", PROTO_BAD_REQUEST, "Field 'v'");
  decode_bad("{\"t\":\"hello\",\"v\":2}", PROTO_BAD_REQUEST, "version 2 is not supported");
  decode_bad("{\"t\":\"hello\",\"v\":0}", PROTO_BAD_REQUEST, "version 0");
  decode_bad("{\"t\":\"hello\",\"v\":1,\"token\":5}", PROTO_BAD_REQUEST,
             "Field 'token' must be a string.");
  /* open */
  decode_bad("{\"t\":\"open\",\"learners\":[]}", PROTO_BAD_REQUEST, "Field 'module' is required.");
  decode_bad("{\"t\":\"open\",\"module\":\"x\",\"learners\":[]}", PROTO_BAD_REQUEST,
             "Field 'module'");
  decode_bad("{\"t\":\"open\",\"module\":1.5,\"learners\":[]}", PROTO_BAD_REQUEST,
             "Field 'module'");
  decode_bad("{\"t\":\"open\",\"module\":-3,\"learners\":[]}", PROTO_BAD_REQUEST, "Field 'module'");
  decode_bad("{\"t\":\"open\",\"module\":1}", PROTO_BAD_REQUEST, "Field 'learners' is required.");
  decode_bad("{\"t\":\"open\",\"module\":1,\"learners\":5}", PROTO_BAD_REQUEST,
             "Field 'learners' must be an array");
  decode_bad("{\"t\":\"open\",\"module\":1,\"learners\":[1,\"a\"]}", PROTO_BAD_REQUEST,
             "Field 'learners[1]'");
  decode_bad("{\"t\":\"open\",\"module\":1,\"learners\":[-2]}", PROTO_BAD_REQUEST,
             "Field 'learners[0]'");
  decode_bad("{\"t\":\"open\",\"module\":1,\"learners\":[18446744073709551615]}", PROTO_BAD_REQUEST,
             "out of range");
  /* join */
  decode_bad("{\"t\":\"join\"}", PROTO_BAD_REQUEST, "'code' or 'room' is required");
  decode_bad("{\"t\":\"join\",\"code\":\"A1\",\"room\":\"r\"}", PROTO_BAD_REQUEST, "not both");
  decode_bad("{\"t\":\"join\",\"code\":\"\"}", PROTO_BAD_REQUEST,
             "Field 'code' must not be empty.");
  decode_bad("{\"t\":\"join\",\"code\":7}", PROTO_BAD_REQUEST, "Field 'code' must be a string.");
  decode_bad("{\"t\":\"join\",\"code\":\"12345678901234567\"}", PROTO_TOO_LARGE,
             "Field 'code' is longer than 16 bytes.");
  /* add / remove / step */
  decode_bad("{\"t\":\"add\",\"room\":\"r\"}", PROTO_BAD_REQUEST, "Field 'learner' is required.");
  decode_bad("{\"t\":\"add\",\"learner\":1}", PROTO_BAD_REQUEST, "Field 'room' is required.");
  decode_bad("{\"t\":\"remove\",\"room\":3,\"learner\":1}", PROTO_BAD_REQUEST,
             "Field 'room' must be a string.");
  decode_bad("{\"t\":\"remove\",\"room\":\"\",\"learner\":1}", PROTO_BAD_REQUEST,
             "Field 'room' must not be empty.");
  decode_bad("{\"t\":\"step\",\"room\":\"r\",\"task\":-1}", PROTO_BAD_REQUEST,
             "Field 'task' must be a non-negative integer.");
  decode_bad("{\"t\":\"step\",\"room\":\"r\",\"task\":1.0}", PROTO_BAD_REQUEST, "Field 'task'");
  decode_bad("{\"t\":\"step\",\"room\":\"r\",\"task\":true}", PROTO_BAD_REQUEST, "Field 'task'");
  decode_bad("{\"t\":\"step\",\"room\":\"r\",\"task\":4294967296}", PROTO_BAD_REQUEST,
             "out of range");
  decode_bad("{\"t\":\"step\",\"room\":\"r\"}", PROTO_BAD_REQUEST, "Field 'task' is required.");
  /* answer */
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"key\":\"k\"}", PROTO_BAD_REQUEST,
             "Field 'value' is required.");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":true,\"key\":\"k\"}",
             PROTO_BAD_REQUEST, "Field 'value' must be");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":2.5,\"key\":\"k\"}",
             PROTO_BAD_REQUEST, "Field 'value' must be");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":{\"a\":1},\"key\":\"k\"}",
             PROTO_BAD_REQUEST, "Field 'value' must be");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":[1,\"a\"],\"key\":\"k\"}",
             PROTO_BAD_REQUEST, "Field 'value[1]'");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":[1.5],\"key\":\"k\"}",
             PROTO_BAD_REQUEST, "Field 'value[0]'");
  decode_bad(
      "{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":18446744073709551615,\"key\":\"k\"}",
      PROTO_BAD_REQUEST, "Field 'value' is out of range.");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1}", PROTO_BAD_REQUEST,
             "Field 'key' is required.");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1,\"key\":\"\"}",
             PROTO_BAD_REQUEST, "Field 'key' must not be empty.");
  decode_bad("{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1,\"key\":9}",
             PROTO_BAD_REQUEST, "Field 'key' must be a string.");
  decode_bad(
      "{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1,\"key\":\"k\",\"learner\":\"x\"}",
      PROTO_BAD_REQUEST, "Field 'learner'");
  char json[8400];
  snprintf(json, sizeof json,
           "{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":1,\"key\":\"%065d\"}", 0);
  decode_bad(json, PROTO_TOO_LARGE, "Field 'key' is longer than 64 bytes.");
  snprintf(json, sizeof json,
           "{\"t\":\"answer\",\"room\":\"%065d\",\"task\":0,\"value\":1,\"key\":\"k\"}", 0);
  decode_bad(json, PROTO_TOO_LARGE, "Field 'room' is longer than 64 bytes.");
  snprintf(json, sizeof json,
           "{\"t\":\"answer\",\"room\":\"r\",\"task\":0,\"value\":\"%04001d\",\"key\":\"k\"}", 0);
  decode_bad(json, PROTO_TOO_LARGE, "Field 'value' is longer than 4000 bytes.");
  /* mark */
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0}", PROTO_BAD_REQUEST,
             "Field 'result' is required.");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"maybe\"}",
             PROTO_BAD_REQUEST, "Field 'result' must be \"pass\" or \"fail\".");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":true}",
             PROTO_BAD_REQUEST, "Field 'result'");
  decode_bad(
      "{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"pass\",\"note\":[]}",
      PROTO_BAD_REQUEST, "Field 'note' must be a string.");
  snprintf(json, sizeof json,
           "{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"pass\",\"note\":"
           "\"%02001d\"}",
           0);
  decode_bad(json, PROTO_TOO_LARGE, "Field 'note' is longer than 2000 bytes.");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"pass\","
             "\"evidence\":\"photo.jpg\"}",
             PROTO_BAD_REQUEST, "Field 'evidence' must be the 64 hex digits");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"pass\","
             "\"evidence\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}",
             PROTO_BAD_REQUEST, "Field 'evidence' must be the 64 hex digits");
  decode_bad("{\"t\":\"mark\",\"room\":\"r\",\"learner\":1,\"task\":0,\"result\":\"pass\","
             "\"evidence\":7}",
             PROTO_BAD_REQUEST, "Field 'evidence' must be a string.");
  /* approve */
  decode_bad("{\"t\":\"approve\",\"room\":\"r\"}", PROTO_BAD_REQUEST,
             "Field 'decisions' is required.");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[]}", PROTO_BAD_REQUEST,
             "at least one");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":{}}", PROTO_BAD_REQUEST,
             "Field 'decisions' must be an array");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[1]}", PROTO_BAD_REQUEST,
             "Field 'decisions[0]' must be a map.");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[{\"learner\":1}]}",
             PROTO_BAD_REQUEST, "Field 'decisions[0].approved' is required.");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[{\"learner\":1,\"approved\":true},{"
             "\"learner\":2,\"approved\":\"yes\"}]}",
             PROTO_BAD_REQUEST, "Field 'decisions[1].approved' must be true or false.");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[{\"approved\":true}]}",
             PROTO_BAD_REQUEST, "Field 'decisions[0].learner' is required.");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[{\"learner\":1,\"approved\":true,"
             "\"note\":4}]}",
             PROTO_BAD_REQUEST, "Field 'decisions[0].note'");
  decode_bad("{\"t\":\"approve\",\"room\":\"r\",\"decisions\":[{\"learner\":1,\"learner\":2,"
             "\"approved\":true}]}",
             PROTO_BAD_REQUEST, "decisions[0].learner' appears more than once");
  /* sync, leave, close */
  decode_bad("{\"t\":\"sync\",\"room\":\"r\"}", PROTO_BAD_REQUEST, "Field 'since' is required.");
  decode_bad("{\"t\":\"sync\",\"room\":\"r\",\"since\":-5}", PROTO_BAD_REQUEST, "Field 'since'");
  decode_bad("{\"t\":\"leave\"}", PROTO_BAD_REQUEST, "Field 'room' is required.");
  decode_bad("{\"t\":\"close\",\"room\":[\"r\"]}", PROTO_BAD_REQUEST,
             "Field 'room' must be a string.");
}

static void test_reject_invalid_utf8(void **state) {
  (void)state;
  /* {"t":"leave","room":"\xc3\x28"} and an overlong '/', a lone surrogate */
  static const uint8_t bad1[] = {0x82, 0xa1, 't', 0xa5, 'l', 'e',  'a',  'v', 'e',
                                 0xa4, 'r',  'o', 'o',  'm', 0xa2, 0xc3, 0x28};
  static const uint8_t bad2[] = {0x82, 0xa1, 't', 0xa5, 'l', 'e',  'a',  'v', 'e',
                                 0xa4, 'r',  'o', 'o',  'm', 0xa2, 0xc0, 0xaf};
  static const uint8_t bad3[] = {0x82, 0xa1, 't', 0xa5, 'l', 'e',  'a',  'v',  'e',
                                 0xa4, 'r',  'o', 'o',  'm', 0xa3, 0xed, 0xa0, 0x80};
  proto_error e;
  assert_int_equal(decode_bytes(bad1, sizeof bad1, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "UTF-8"));
  assert_int_equal(decode_bytes(bad2, sizeof bad2, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(bad3, sizeof bad3, &e), -PROTO_BAD_REQUEST);
}

static void test_reject_unknown_type_is_sanitised(void **state) {
  (void)state;
  /* control bytes and a very long name are not echoed as they are */
  frame f;
  proto_error e;
  char name[300];
  memset(name, 'x', sizeof name);
  name[0] = '\n';
  name[1] = '\x1b';
  frame_init(&f);
  msgpack_pack_map(&f.pk, 1);
  pk_cstr(&f.pk, "t");
  msgpack_pack_str_with_body(&f.pk, name, sizeof name);
  proto_msg *m = new_msg();
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_null(strchr(e.msg, '\n'));
  assert_null(strchr(e.msg, '\x1b'));
  assert_true(strlen(e.msg) < 80);
  assert_non_null(strstr(e.msg, "Unknown message type '??xx"));
  frame_free(&f);
  free(m);
}

static void test_reject_bad_bytes(void **state) {
  (void)state;
  proto_error e;
  static const uint8_t non_str_key[] = {0x81, 0x01, 0xa1, 'x'};
  static const uint8_t nested_non_str_key[] = {0x82, 0xa1, 't', 0xa4, 'p',  'i', 'n',
                                               'g',  0xa1, 'x', 0x81, 0xc0, 0x01};
  static const uint8_t top_array[] = {0x92, 0x01, 0x02};
  static const uint8_t top_str[] = {0xa4, 'p', 'i', 'n', 'g'};
  static const uint8_t top_int[] = {0x05};
  static const uint8_t top_nil[] = {0xc0};
  static const uint8_t huge_top_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t huge_array[] = {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t huge_map[] = {0x81, 0xa1, 'a', 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00};
  static const uint8_t huge_str[] = {0x81, 0xa1, 't', 0xdb, 0xff, 0xff, 0xff, 0xff, 'p'};
  static const uint8_t huge_bin[] = {0x81, 0xa1, 'b', 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00};
  static const uint8_t huge_key[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xf0, 'k'};
  static const uint8_t ext[] = {0x82, 0xa1, 't', 0xa4, 'p',  'i', 'n',
                                'g',  0xa1, 'x', 0xd4, 0x01, 0x02};
  static const uint8_t ext8[] = {0x82, 0xa1, 't', 0xa4, 'p',  'i',  'n',
                                 'g',  0xa1, 'x', 0xc7, 0x01, 0x05, 0x00};
  static const uint8_t never_used[] = {0x82, 0xa1, 't', 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'x', 0xc1};
  static const uint8_t trailing[] = {0x81, 0xa1, 't', 0xa4, 'p', 'i', 'n', 'g', 0xc0};
  static const uint8_t two_maps[] = {0x81, 0xa1, 't', 0xa4, 'p', 'i', 'n', 'g',
                                     0x81, 0xa1, 't', 0xa4, 'p', 'i', 'n', 'g'};
  const char *text = "hello world, not msgpack";

  assert_int_equal(decode_bytes("", 0, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "empty"));
  assert_int_equal(decode_bytes(NULL, 0, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(text, strlen(text), &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "must be a msgpack map"));
  assert_int_equal(decode_bytes("{\"t\":\"ping\"}", 12, &e), -PROTO_BAD_REQUEST); /* JSON text */
  assert_int_equal(decode_bytes(top_array, sizeof top_array, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "must be a msgpack map"));
  assert_int_equal(decode_bytes(top_str, sizeof top_str, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(top_int, sizeof top_int, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(top_nil, sizeof top_nil, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(non_str_key, sizeof non_str_key, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "key must be a string"));
  assert_int_equal(decode_bytes(nested_non_str_key, sizeof nested_non_str_key, &e),
                   -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(huge_top_map, sizeof huge_top_map, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "truncated"));
  assert_int_equal(decode_bytes(huge_array, sizeof huge_array, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "4294967295 entries"));
  assert_int_equal(decode_bytes(huge_map, sizeof huge_map, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(huge_str, sizeof huge_str, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "4294967295 bytes"));
  assert_int_equal(decode_bytes(huge_bin, sizeof huge_bin, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(huge_key, sizeof huge_key, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(ext, sizeof ext, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "ext"));
  assert_int_equal(decode_bytes(ext8, sizeof ext8, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(never_used, sizeof never_used, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(decode_bytes(trailing, sizeof trailing, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "after the end"));
  assert_int_equal(decode_bytes(two_maps, sizeof two_maps, &e), -PROTO_BAD_REQUEST);
  /* sanity: the frame without the trailing byte is fine */
  assert_int_equal(decode_bytes(trailing, sizeof trailing - 1, &e), 0);
}

static void test_reject_depth_bomb(void **state) {
  (void)state;
  proto_error e;
  /* {"t":"ping","x":[[[[...1...]]]]} nested 100 deep: too deep */
  size_t n = 100;
  uint8_t *b = malloc(16 + n);
  assert_non_null(b);
  size_t o = 0;
  memcpy(b, "\x82\xa1t\xa4ping\xa1x", 10);
  o = 10;
  for (size_t k = 0; k < n; k++) b[o++] = 0x91;
  b[o++] = 0x01;
  assert_int_equal(decode_bytes(b, o, &e), -PROTO_TOO_LARGE);
  assert_non_null(strstr(e.msg, "nested deeper than 8"));
  free(b);

  /* 7 levels under the top map (8 in all) is still accepted */
  uint8_t ok[32];
  memcpy(ok, "\x82\xa1t\xa4ping\xa1x", 10);
  o = 10;
  for (size_t k = 0; k < 7; k++) ok[o++] = 0x91;
  ok[o++] = 0x01;
  assert_int_equal(decode_bytes(ok, o, &e), 0);
  ok[10 + 7] = 0x91; /* one more level */
  ok[10 + 8] = 0x01;
  assert_int_equal(decode_bytes(ok, o + 1, &e), -PROTO_TOO_LARGE);

  /* a 60,000-deep bomb with every byte present must not exhaust the stack */
  n = 60000;
  b = malloc(16 + n);
  assert_non_null(b);
  memcpy(b, "\x82\xa1t\xa4ping\xa1x", 10);
  o = 10;
  for (size_t k = 0; k < n; k++) b[o++] = 0x91;
  b[o++] = 0xc0;
  assert_int_equal(decode_bytes(b, o, &e), -PROTO_TOO_LARGE);
  /* and with a setting that asks for absurd depth it is clamped */
  proto_limits lim = proto_limits_default();
  lim.max_depth = UINT32_MAX;
  proto_msg *m = new_msg();
  assert_int_equal(proto_decode(b, o, &lim, m, &e), -PROTO_TOO_LARGE);
  free(m);
  free(b);
}

static void test_reject_object_bomb(void **state) {
  (void)state;
  /* 10,000 nils fit in a 64 KiB frame but exceed the object limit */
  frame f;
  proto_error e;
  frame_init(&f);
  msgpack_pack_map(&f.pk, 2);
  pk_cstr(&f.pk, "t");
  pk_cstr(&f.pk, "ping");
  pk_cstr(&f.pk, "x");
  msgpack_pack_array(&f.pk, 10000);
  for (int k = 0; k < 10000; k++) msgpack_pack_nil(&f.pk);
  proto_msg *m = new_msg();
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_TOO_LARGE);
  assert_non_null(strstr(e.msg, "more than 8192 values"));
  frame_free(&f);
  free(m);
}

/* Pack {"t":t, name: [count ids or decisions]} for the array limits. */
static void pack_many(frame *f, const char *t, const char *name, unsigned count, bool decisions) {
  frame_init(f);
  msgpack_pack_map(&f->pk, 4);
  pk_cstr(&f->pk, "t");
  pk_cstr(&f->pk, t);
  pk_cstr(&f->pk, "room");
  pk_cstr(&f->pk, "r1");
  pk_cstr(&f->pk, "module");
  msgpack_pack_int(&f->pk, 1);
  pk_cstr(&f->pk, name);
  msgpack_pack_array(&f->pk, count);
  for (unsigned k = 0; k < count; k++) {
    if (decisions) {
      msgpack_pack_map(&f->pk, 2);
      pk_cstr(&f->pk, "learner");
      msgpack_pack_unsigned_int(&f->pk, k + 1);
      pk_cstr(&f->pk, "approved");
      msgpack_pack_true(&f->pk);
    } else {
      msgpack_pack_unsigned_int(&f->pk, k + 1);
    }
  }
}

static void test_reject_too_many(void **state) {
  (void)state;
  frame f;
  proto_error e;
  proto_msg *m = new_msg();

  pack_many(&f, "open", "learners", PROTO_MAX_LEARNERS + 1, false);
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_TOO_LARGE);
  assert_non_null(strstr(e.msg, "Field 'learners' holds 201 user ids; at most 200"));
  frame_free(&f);

  pack_many(&f, "approve", "decisions", PROTO_MAX_DECISIONS, true);
  assert_int_equal(decode_frame(&f, m, &e), 0);
  assert_int_equal(m->approve.n_decisions, PROTO_MAX_DECISIONS);
  assert_int_equal(m->approve.decisions[PROTO_MAX_DECISIONS - 1].learner, PROTO_MAX_DECISIONS);
  frame_free(&f);
  pack_many(&f, "approve", "decisions", PROTO_MAX_DECISIONS + 1, true);
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_TOO_LARGE);
  assert_non_null(strstr(e.msg, "Field 'decisions'"));
  frame_free(&f);

  /* answer values: 64 items fine, 65 too many */
  for (unsigned n = PROTO_MAX_VALUE_ITEMS; n <= PROTO_MAX_VALUE_ITEMS + 1; n++) {
    frame_init(&f);
    msgpack_pack_map(&f.pk, 5);
    pk_cstr(&f.pk, "t");
    pk_cstr(&f.pk, "answer");
    pk_cstr(&f.pk, "room");
    pk_cstr(&f.pk, "r");
    pk_cstr(&f.pk, "task");
    msgpack_pack_int(&f.pk, 0);
    pk_cstr(&f.pk, "key");
    pk_cstr(&f.pk, "k");
    pk_cstr(&f.pk, "value");
    msgpack_pack_array(&f.pk, n);
    for (unsigned k = 0; k < n; k++) msgpack_pack_int(&f.pk, (int)k);
    int rc = decode_frame(&f, m, &e);
    if (n == PROTO_MAX_VALUE_ITEMS) {
      assert_int_equal(rc, 0);
      assert_int_equal(m->answer.value.n_items, n);
      assert_int_equal(m->answer.value.items[n - 1], n - 1);
    } else {
      assert_int_equal(rc, -PROTO_TOO_LARGE);
      assert_non_null(strstr(e.msg, "Field 'value' holds 65 items"));
    }
    frame_free(&f);
  }

  /* a lower run-time limit applies */
  proto_limits lim = proto_limits_default();
  lim.max_learners = 2;
  frame_json(&f, "{\"t\":\"open\",\"module\":1,\"learners\":[1,2,3]}");
  assert_int_equal(proto_decode((const uint8_t *)f.sb.data, f.sb.size, &lim, m, &e),
                   -PROTO_TOO_LARGE);
  assert_int_equal(proto_decode((const uint8_t *)f.sb.data, f.sb.size, NULL, m, &e), 0);
  frame_free(&f);
  free(m);
}

static void test_reject_frame_too_large(void **state) {
  (void)state;
  frame f;
  proto_error e;
  proto_msg *m = new_msg();
  size_t big = PROTO_DEFAULT_MAX_FRAME; /* string payload alone is the limit */
  char *pad = malloc(big);
  assert_non_null(pad);
  memset(pad, 'a', big);
  frame_init(&f);
  msgpack_pack_map(&f.pk, 3);
  pk_cstr(&f.pk, "rid");
  msgpack_pack_int(&f.pk, 4);
  pk_cstr(&f.pk, "t");
  pk_cstr(&f.pk, "ping");
  pk_cstr(&f.pk, "pad");
  msgpack_pack_str_with_body(&f.pk, pad, big);
  assert_true(f.sb.size > PROTO_DEFAULT_MAX_FRAME);
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_TOO_LARGE);
  assert_non_null(strstr(e.msg, "at most 65536"));
  frame_free(&f);
  free(pad);

  /* a configured limit: the same small frame passes or not */
  proto_limits lim = proto_limits_default();
  frame_json(&f, "{\"t\":\"ping\",\"x\":\"0123456789\"}");
  lim.max_frame = f.sb.size;
  assert_int_equal(proto_decode((const uint8_t *)f.sb.data, f.sb.size, &lim, m, &e), 0);
  lim.max_frame = f.sb.size - 1;
  assert_int_equal(proto_decode((const uint8_t *)f.sb.data, f.sb.size, &lim, m, &e),
                   -PROTO_TOO_LARGE);
  assert_int_equal(e.code, PROTO_TOO_LARGE);
  frame_free(&f);
  free(m);
}

static void test_error_carries_rid(void **state) {
  (void)state;
  frame f;
  proto_error e;
  proto_msg *m = new_msg();

  frame_json(&f, "{\"rid\":9,\"t\":\"nope\"}");
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_true(e.has_rid);
  assert_int_equal(e.rid, 9);
  frame_free(&f);

  frame_json(&f, "{\"t\":\"step\",\"room\":\"r\",\"task\":\"x\",\"rid\":10}");
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_true(e.has_rid);
  assert_int_equal(e.rid, 10);
  frame_free(&f);

  /* rid first, then the frame breaks off: the err still carries it */
  frame_json(&f, "{\"rid\":11,\"t\":\"leave\",\"room\":\"abcdef\"}");
  assert_int_equal(proto_decode((const uint8_t *)f.sb.data, f.sb.size - 3, NULL, m, &e),
                   -PROTO_BAD_REQUEST);
  assert_true(e.has_rid);
  assert_int_equal(e.rid, 11);
  frame_free(&f);

  /* no rid, or an unreadable one: none is claimed */
  frame_json(&f, "{\"t\":\"nope\"}");
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_false(e.has_rid);
  frame_free(&f);
  frame_json(&f, "{\"rid\":\"9\",\"t\":\"ping\"}");
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_false(e.has_rid);
  frame_free(&f);

  /* and proto_encode_decode_error turns it into the err reply */
  proto_buf b;
  msgpack_unpacked u;
  proto_buf_init(&b, 16);
  frame_json(&f, "{\"rid\":12,\"t\":\"hello\",\"v\":2}");
  assert_int_equal(decode_frame(&f, m, &e), -PROTO_BAD_REQUEST);
  assert_int_equal(proto_encode_decode_error(&b, &e), 0);
  const msgpack_object *o = unpack_one(&b, &u);
  expect_str(o, "t", "err");
  expect_u(o, "rid", 12);
  expect_str(o, "code", "bad_request");
  expect_str(o, "msg", e.msg);
  msgpack_unpacked_destroy(&u);
  proto_buf_free(&b);
  frame_free(&f);
  free(m);
}

/* Valid frames of every type: the seeds for the prefix test and the fuzzer. */
static const char *const valid_frames[] = {
    "{\"t\":\"hello\",\"v\":1,\"token\":\"tok-123\",\"rid\":1}",
    "{\"t\":\"open\",\"module\":12,\"learners\":[3,4,5],\"rid\":2}",
    "{\"t\":\"join\",\"code\":\"K7Q2\"}",
    "{\"t\":\"join\",\"room\":\"r-1\"}",
    "{\"t\":\"add\",\"room\":\"r1\",\"learner\":44}",
    "{\"t\":\"remove\",\"room\":\"r1\",\"learner\":44}",
    "{\"t\":\"step\",\"room\":\"r1\",\"task\":2}",
    "{\"t\":\"answer\",\"room\":\"r1\",\"task\":0,\"value\":[1,2],\"key\":\"a-1\",\"rid\":300}",
    "{\"t\":\"answer\",\"room\":\"r1\",\"task\":0,\"value\":\"twenty\",\"key\":\"a-2\",\"learner\":"
    "4}",
    "{\"t\":\"mark\",\"room\":\"r1\",\"learner\":5,\"task\":2,\"result\":\"fail\",\"note\":\"n\"}",
    ("{\"t\":\"approve\",\"room\":\"r1\",\"decisions\":[{\"learner\":5,\"approved\":true},"
     "{\"learner\":6,\"approved\":false,\"note\":\"again\"}]}"),
    "{\"t\":\"sync\",\"room\":\"r1\",\"since\":70000}",
    "{\"t\":\"leave\",\"room\":\"r1\"}",
    "{\"t\":\"close\",\"room\":\"r1\"}",
    "{\"t\":\"ping\",\"rid\":5,\"x\":{\"y\":[1.5,null,true]}}",
};
#define N_VALID (sizeof valid_frames / sizeof valid_frames[0])

static void test_every_prefix_rejected(void **state) {
  (void)state;
  proto_msg *m = new_msg();
  for (size_t i = 0; i < N_VALID; i++) {
    frame f;
    proto_error e;
    frame_json(&f, valid_frames[i]);
    assert_int_equal(decode_frame(&f, m, &e), 0);
    for (size_t n = 0; n < f.sb.size; n++) {
      /* a copy of exactly n bytes, so ASan sees any read past it */
      uint8_t *p = malloc(n ? n : 1);
      assert_non_null(p);
      memcpy(p, f.sb.data, n);
      int rc = proto_decode(p, n, NULL, m, &e);
      if (rc == 0) fail_msg("prefix of %zu bytes of %s was accepted", n, valid_frames[i]);
      assert_int_equal(e.code, PROTO_BAD_REQUEST);
      free(p);
    }
    frame_free(&f);
  }
  free(m);
}

/* xorshift64*: a fixed seed keeps the fuzz run reproducible. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void check_slice(proto_str s, const uint8_t *buf, size_t len) {
  if (s.len == 0) return;
  assert_true((const uint8_t *)s.ptr >= buf);
  assert_true((const uint8_t *)s.ptr + s.len <= buf + len);
}

/* When a mutated frame is accepted, its slices must still lie inside it. */
static void check_decoded(const proto_msg *m, const uint8_t *buf, size_t len) {
  switch (m->type) {
  case PROTO_T_HELLO:
    if (m->hello.has_token) check_slice(m->hello.token, buf, len);
    break;
  case PROTO_T_JOIN:
    if (m->join.has_code) check_slice(m->join.code, buf, len);
    if (m->join.has_room) check_slice(m->join.room, buf, len);
    break;
  case PROTO_T_OPEN: assert_true(m->open.n_learners <= PROTO_MAX_LEARNERS); break;
  case PROTO_T_ANSWER:
    check_slice(m->answer.room, buf, len);
    check_slice(m->answer.key, buf, len);
    check_slice(m->answer.value.raw, buf, len);
    if (m->answer.value.kind == PROTO_VALUE_STR) check_slice(m->answer.value.s, buf, len);
    if (m->answer.value.kind == PROTO_VALUE_INTS)
      assert_true(m->answer.value.n_items <= PROTO_MAX_VALUE_ITEMS);
    break;
  case PROTO_T_MARK:
    check_slice(m->mark.room, buf, len);
    if (m->mark.has_note) check_slice(m->mark.note, buf, len);
    break;
  case PROTO_T_APPROVE:
    assert_true(m->approve.n_decisions >= 1 && m->approve.n_decisions <= PROTO_MAX_DECISIONS);
    for (uint32_t k = 0; k < m->approve.n_decisions; k++)
      if (m->approve.decisions[k].has_note) check_slice(m->approve.decisions[k].note, buf, len);
    break;
  case PROTO_T_NONE: fail_msg("accepted a frame with no type"); break;
  default: break;
  }
}

static void test_fuzz_mutations(void **state) {
  (void)state;
  static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                        0xc4, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8,
                                        0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  frame seeds[N_VALID];
  proto_msg *m = new_msg();
  unsigned accepted = 0, rejected = 0;

  for (size_t i = 0; i < N_VALID; i++) frame_json(&seeds[i], valid_frames[i]);

  for (int iter = 0; iter < 20000; iter++) {
    const frame *s = &seeds[rng() % N_VALID];
    size_t cap = s->sb.size + 16;
    uint8_t *p = malloc(cap);
    assert_non_null(p);
    memcpy(p, s->sb.data, s->sb.size);
    size_t n = s->sb.size;
    int edits = 1 + (int)(rng() % 4);
    for (int k = 0; k < edits && n > 0; k++) {
      size_t at = rng() % n;
      switch (rng() % 6) {
      case 0: p[at] ^= (uint8_t)(1u << (rng() % 8)); break;
      case 1: p[at] = interesting[rng() % sizeof interesting]; break;
      case 2: p[at] = (uint8_t)rng(); break;
      case 3: n = at; break; /* truncate */
      case 4:                /* insert one byte */
        if (n < cap) {
          memmove(p + at + 1, p + at, n - at);
          p[at] = (uint8_t)rng();
          n++;
        }
        break;
      case 5: /* delete one byte */
        memmove(p + at, p + at + 1, n - at - 1);
        n--;
        break;
      }
    }
    /* decode from an exact-size copy so ASan catches any overread */
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    memcpy(q, p, n);
    proto_error e;
    int rc = proto_decode(q, n, NULL, m, &e);
    if (rc == 0) {
      accepted++;
      check_decoded(m, q, n);
    } else {
      rejected++;
      assert_true(rc < 0 && e.code != PROTO_OK && e.code != PROTO_INTERNAL);
      assert_int_equal(rc, -(int)e.code);
      assert_true(strlen(e.msg) > 0);
    }
    free(q);
    free(p);
  }

  /* pure noise, map-shaped first byte */
  for (int iter = 0; iter < 5000; iter++) {
    size_t n = 1 + rng() % 64;
    uint8_t *q = malloc(n);
    assert_non_null(q);
    for (size_t k = 0; k < n; k++) q[k] = (uint8_t)rng();
    q[0] = (uint8_t)(0x80 | (rng() % 16));
    proto_error e;
    if (proto_decode(q, n, NULL, m, &e) == 0) check_decoded(m, q, n);
    free(q);
  }

  for (size_t i = 0; i < N_VALID; i++) frame_free(&seeds[i]);
  free(m);
  /* the mutator must have exercised both outcomes */
  assert_true(accepted > 100);
  assert_true(rejected > 1000);
}

/* ======================================================================== */
/* Encoders                                                                 */
/* ======================================================================== */

static void test_encode_simple_replies(void **state) {
  (void)state;
  proto_buf b;
  msgpack_unpacked u;
  const msgpack_object *o;
  proto_rid rid = {true, 77};

  proto_buf_init(&b, 16);
  assert_null(proto_buf_bytes(&b));

  proto_user user = {42, proto_s("Rita R\u00f8d"), true};
  assert_int_equal(proto_encode_welcome(&b, rid, &user), 0);
  /* the headroom is kept in front of the payload */
  assert_ptr_equal(proto_buf_bytes(&b), b.data + 16);
  o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 3);
  expect_str(o, "t", "welcome");
  expect_u(o, "rid", 77);
  const msgpack_object *usr = get(o, "user");
  assert_non_null(usr);
  expect_u(usr, "id", 42);
  expect_str(usr, "name", "Rita R\u00f8d");
  expect_bool(usr, "responsible", true);
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_pong(&b, PROTO_NO_RID), 0);
  o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 1);
  expect_str(o, "t", "pong");
  expect_absent(o, "rid");
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_pong(&b, rid), 0);
  o = unpack_one(&b, &u);
  expect_u(o, "rid", 77);
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_ok(&b, rid, false, 0), 0);
  o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 2);
  expect_str(o, "t", "ok");
  expect_absent(o, "seq");
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_ok(&b, PROTO_NO_RID, true, 123456789012ULL), 0);
  o = unpack_one(&b, &u);
  expect_u(o, "seq", 123456789012ULL);
  expect_absent(o, "rid");
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_ack(&b, rid, proto_s("a-17"), 31), 0);
  o = unpack_one(&b, &u);
  expect_str(o, "t", "ack");
  expect_str(o, "key", "a-17");
  expect_u(o, "seq", 31);
  expect_u(o, "rid", 77);
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(
      proto_encode_err(&b, PROTO_NO_RID, PROTO_UNAUTHORIZED, "Send hello before anything else."),
      0);
  o = unpack_one(&b, &u);
  expect_str(o, "t", "err");
  expect_str(o, "code", "unauthorized");
  expect_str(o, "msg", "Send hello before anything else.");
  expect_absent(o, "rid");
  msgpack_unpacked_destroy(&u);

  proto_buf_clear(&b);
  assert_int_equal(proto_encode_dashboard(&b, 3), 0);
  o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 2);
  expect_str(o, "t", "dashboard");
  expect_u(o, "count", 3);
  msgpack_unpacked_destroy(&u);

  proto_buf_free(&b);
}

static void test_encode_appends_and_grows(void **state) {
  (void)state;
  proto_buf b;
  proto_buf_init(&b, 0);
  /* many frames appended: the buffer grows and each frame stays intact */
  for (unsigned k = 0; k < 500; k++)
    assert_int_equal(proto_encode_ok(&b, (proto_rid){true, k}, true, 1000u + k), 0);
  size_t off = 0;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  for (unsigned k = 0; k < 500; k++) {
    assert_int_equal(msgpack_unpack_next(&u, (const char *)proto_buf_bytes(&b), b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    expect_u(&u.data, "rid", k);
    expect_u(&u.data, "seq", 1000u + k);
  }
  assert_int_equal(off, b.len);
  msgpack_unpacked_destroy(&u);
  proto_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
}

static void test_encode_approved(void **state) {
  (void)state;
  proto_buf b;
  msgpack_unpacked u;
  proto_approval_result res[3] = {
      {.learner = 5, .status = PROTO_STATUS_APPROVED, .has_completion = true, .completion = 900},
      {.learner = 6, .status = PROTO_STATUS_NOT_APPROVED},
      {.learner = 7, .status = PROTO_STATUS_REFUSED, .reason = proto_s("Task 2 is marked fail.")},
  };
  proto_buf_init(&b, 0);
  assert_int_equal(proto_encode_approved(&b, (proto_rid){true, 4}, res, 3), 0);
  const msgpack_object *o = unpack_one(&b, &u);
  expect_str(o, "t", "approved");
  expect_u(o, "rid", 4);
  const msgpack_object *arr = expect_array(o, "results", 3);
  const msgpack_object *r0 = &arr->via.array.ptr[0];
  const msgpack_object *r1 = &arr->via.array.ptr[1];
  const msgpack_object *r2 = &arr->via.array.ptr[2];
  expect_u(r0, "learner", 5);
  expect_str(r0, "status", "approved");
  expect_u(r0, "completion", 900);
  expect_absent(r0, "reason");
  expect_u(r1, "learner", 6);
  expect_str(r1, "status", "not_approved");
  expect_absent(r1, "completion");
  expect_str(r2, "status", "refused");
  expect_str(r2, "reason", "Task 2 is marked fail.");
  expect_absent(r2, "completion");
  msgpack_unpacked_destroy(&u);

  /* an invalid status fails and leaves the buffer as it was */
  proto_buf_clear(&b);
  assert_int_equal(proto_encode_pong(&b, PROTO_NO_RID), 0);
  size_t before = b.len;
  res[1].status = (proto_status)0;
  assert_int_equal(proto_encode_approved(&b, PROTO_NO_RID, res, 3), -1);
  assert_int_equal(b.len, before);
  proto_buf_free(&b);
}

/* Encode ev for viewer and return its `e` map (u must be destroyed). */
static const msgpack_object *encode_ev_e(proto_buf *b, msgpack_unpacked *u, const proto_event *ev,
                                         proto_viewer viewer, uint64_t seq) {
  proto_buf_clear(b);
  assert_int_equal(proto_encode_ev_for(b, proto_s("room-1"), seq, ev, viewer), 0);
  const msgpack_object *o = unpack_one(b, u);
  assert_int_equal(o->via.map.size, 4);
  expect_str(o, "t", "ev");
  expect_str(o, "room", "room-1");
  expect_u(o, "seq", seq);
  expect_absent(o, "rid");
  const msgpack_object *e = get(o, "e");
  assert_non_null(e);
  assert_int_equal(e->type, MSGPACK_OBJECT_MAP);
  return e;
}

static void test_encode_simple_events(void **state) {
  (void)state;
  proto_buf b;
  msgpack_unpacked u;
  const msgpack_object *e;
  proto_viewer other = {99, false};
  proto_buf_init(&b, 0);

  proto_event ev = {.type = PROTO_EV_JOINED, .joined = {.user = 5, .role = PROTO_ROLE_LEARNER}};
  e = encode_ev_e(&b, &u, &ev, other, 1);
  assert_int_equal(e->via.map.size, 3);
  expect_str(e, "type", "joined");
  expect_u(e, "user", 5);
  expect_str(e, "role", "learner");
  assert_null(get(e, "added"));
  msgpack_unpacked_destroy(&u);

  /* a join that made the learner a member: one event says both */
  ev.joined.added = true;
  e = encode_ev_e(&b, &u, &ev, other, 1);
  assert_int_equal(e->via.map.size, 4);
  expect_str(e, "type", "joined");
  expect_u(e, "user", 5);
  assert_non_null(get(e, "added"));
  assert_int_equal(get(e, "added")->type, MSGPACK_OBJECT_BOOLEAN);
  assert_true(get(e, "added")->via.boolean);
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_LEFT,
                     .left = {.user = 1, .role = PROTO_ROLE_HOST, .added = true}};
  e = encode_ev_e(&b, &u, &ev, other, 2);
  expect_str(e, "type", "left");
  expect_u(e, "user", 1);
  expect_str(e, "role", "host");
  assert_null(get(e, "added")); /* `added` belongs to joined only */
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_ADDED, .added = {8}};
  e = encode_ev_e(&b, &u, &ev, other, 3);
  assert_int_equal(e->via.map.size, 2);
  expect_str(e, "type", "added");
  expect_u(e, "learner", 8);
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_REMOVED, .removed = {8}};
  e = encode_ev_e(&b, &u, &ev, other, 4);
  expect_str(e, "type", "removed");
  expect_u(e, "learner", 8);
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_STEP, .step = {2}};
  e = encode_ev_e(&b, &u, &ev, other, 5);
  expect_str(e, "type", "step");
  expect_u(e, "task", 2);
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_CLOSED};
  e = encode_ev_e(&b, &u, &ev, other, 6);
  assert_int_equal(e->via.map.size, 1);
  expect_str(e, "type", "closed");
  msgpack_unpacked_destroy(&u);

  /* none of these has private fields */
  for (int t = PROTO_EV_JOINED; t <= PROTO_EV_CLOSED; t++) {
    ev = (proto_event){.type = (proto_ev_type)t};
    bool private = t == PROTO_EV_ANSWER || t == PROTO_EV_MARK || t == PROTO_EV_APPROVED;
    ev.answer.learner = 5; /* learner 5 is not the viewer (99) */
    ev.mark.learner = 5;
    ev.approved.learner = 5;
    assert_int_equal(proto_event_hidden_for(&ev, other), private);
  }

  ev = (proto_event){.type = (proto_ev_type)0};
  assert_int_equal(proto_encode_ev(&b, proto_s("r"), 1, &ev, false), -1);
  proto_buf_free(&b);
}

static void test_visibility_answer(void **state) {
  (void)state;
  proto_buf b;
  msgpack_unpacked u;
  const msgpack_object *e;
  static const int64_t picks[] = {1, 2};
  proto_viewer self = {5, false}, other = {6, false}, host = {1, true};
  proto_buf_init(&b, 0);

  proto_event ev = {.type = PROTO_EV_ANSWER};
  ev.answer.learner = 5;
  ev.answer.task = 0;
  ev.answer.by = 5;
  ev.answer.value = (proto_value){.kind = PROTO_VALUE_INTS, .n_items = 2, .items = picks};

  assert_false(proto_event_hidden_for(&ev, self));
  assert_true(proto_event_hidden_for(&ev, other));
  assert_false(proto_event_hidden_for(&ev, host));

  e = encode_ev_e(&b, &u, &ev, self, 10);
  expect_str(e, "type", "answer");
  expect_u(e, "learner", 5);
  expect_u(e, "task", 0);
  expect_u(e, "by", 5);
  const msgpack_object *v = get(e, "value");
  assert_non_null(v);
  assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(v->via.array.size, 2);
  assert_int_equal(v->via.array.ptr[1].via.u64, 2);
  msgpack_unpacked_destroy(&u);

  e = encode_ev_e(&b, &u, &ev, host, 10);
  assert_non_null(get(e, "value"));
  msgpack_unpacked_destroy(&u);

  e = encode_ev_e(&b, &u, &ev, other, 10);
  expect_str(e, "type", "answer");
  expect_u(e, "learner", 5);
  expect_u(e, "task", 0);
  expect_u(e, "by", 5);
  expect_absent(e, "value");
  assert_int_equal(e->via.map.size, 4);
  msgpack_unpacked_destroy(&u);

  /* a learner who happens to be a responsible elsewhere is still not this
   * room's host: only is_host unlocks other learners' values */
  proto_viewer other_responsible = {1, false};
  assert_true(proto_event_hidden_for(&ev, other_responsible));

  /* string and negative integer values encode too */
  ev.answer.value = (proto_value){.kind = PROTO_VALUE_STR, .s = proto_s("20 s")};
  e = encode_ev_e(&b, &u, &ev, host, 11);
  expect_str(e, "value", "20 s");
  msgpack_unpacked_destroy(&u);
  ev.answer.value = (proto_value){.kind = PROTO_VALUE_INT, .i = -3};
  e = encode_ev_e(&b, &u, &ev, host, 12);
  v = get(e, "value");
  assert_int_equal(v->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
  assert_int_equal(v->via.i64, -3);
  msgpack_unpacked_destroy(&u);
  proto_buf_free(&b);
}

static void test_visibility_mark_and_approved(void **state) {
  (void)state;
  proto_buf b;
  msgpack_unpacked u;
  const msgpack_object *e;
  proto_viewer self = {5, false}, other = {6, false}, host = {1, true};
  proto_buf_init(&b, 0);

  proto_event ev = {.type = PROTO_EV_MARK};
  ev.mark.learner = 5;
  ev.mark.task = 2;
  ev.mark.result = PROTO_RESULT_FAIL;
  ev.mark.has_note = true;
  ev.mark.note = proto_s("Forgot the towel.");

  proto_viewer full[] = {self, host};
  for (int k = 0; k < 2; k++) {
    e = encode_ev_e(&b, &u, &ev, full[k], 20);
    expect_str(e, "type", "mark");
    expect_u(e, "learner", 5);
    expect_u(e, "task", 2);
    expect_str(e, "result", "fail");
    expect_str(e, "note", "Forgot the towel.");
    msgpack_unpacked_destroy(&u);
  }
  e = encode_ev_e(&b, &u, &ev, other, 20);
  expect_str(e, "type", "mark");
  expect_u(e, "learner", 5);
  expect_u(e, "task", 2);
  expect_absent(e, "result");
  expect_absent(e, "note");
  msgpack_unpacked_destroy(&u);

  ev.mark.has_note = false;
  e = encode_ev_e(&b, &u, &ev, host, 21);
  expect_str(e, "result", "fail");
  expect_absent(e, "note");
  msgpack_unpacked_destroy(&u);

  ev = (proto_event){.type = PROTO_EV_APPROVED};
  ev.approved.learner = 5;
  ev.approved.status = PROTO_STATUS_APPROVED;
  ev.approved.has_completion = true;
  ev.approved.completion = 1234;
  for (int k = 0; k < 2; k++) {
    e = encode_ev_e(&b, &u, &ev, full[k], 22);
    expect_str(e, "type", "approved");
    expect_u(e, "learner", 5);
    expect_str(e, "status", "approved");
    expect_u(e, "completion", 1234);
    msgpack_unpacked_destroy(&u);
  }
  e = encode_ev_e(&b, &u, &ev, other, 22);
  expect_str(e, "type", "approved");
  expect_u(e, "learner", 5);
  expect_absent(e, "status");
  expect_absent(e, "completion");
  assert_int_equal(e->via.map.size, 2);
  msgpack_unpacked_destroy(&u);
  proto_buf_free(&b);
}

static void test_relay_raw_value(void **state) {
  (void)state;
  frame f;
  proto_buf b;
  msgpack_unpacked u;
  proto_msg *m = new_msg();
  proto_buf_init(&b, 0);

  /* the server can relay a decoded value verbatim */
  decode_ok(
      &f, "{\"t\":\"answer\",\"room\":\"r1\",\"task\":1,\"value\":[3,-1,70000],\"key\":\"k\"}", m);
  proto_event ev = {.type = PROTO_EV_ANSWER};
  ev.answer.learner = 5;
  ev.answer.task = m->answer.task;
  ev.answer.by = 5;
  ev.answer.value = (proto_value){.kind = PROTO_VALUE_RAW, .raw = m->answer.value.raw};
  const msgpack_object *e = encode_ev_e(&b, &u, &ev, (proto_viewer){0, true}, 1);
  const msgpack_object *v = get(e, "value");
  assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(v->via.array.size, 3);
  assert_int_equal(v->via.array.ptr[0].via.u64, 3);
  assert_int_equal(v->via.array.ptr[1].via.i64, -1);
  assert_int_equal(v->via.array.ptr[2].via.u64, 70000);
  msgpack_unpacked_destroy(&u);
  frame_free(&f);

  /* raw bytes that are not exactly one object are refused, buffer untouched */
  proto_buf_clear(&b);
  static const char two_objects[] = {0x01, 0x02};
  static const char truncated[] = {(char)0x92, 0x01};
  ev.answer.value.raw = (proto_str){two_objects, 2};
  assert_int_equal(proto_encode_ev(&b, proto_s("r"), 1, &ev, false), -1);
  assert_int_equal(b.len, 0);
  ev.answer.value.raw = (proto_str){truncated, 2};
  assert_int_equal(proto_encode_ev(&b, proto_s("r"), 1, &ev, false), -1);
  ev.answer.value.raw = (proto_str){NULL, 0};
  assert_int_equal(proto_encode_ev(&b, proto_s("r"), 1, &ev, false), -1);
  assert_int_equal(b.len, 0);
  /* redacted, the raw value is not even looked at */
  assert_int_equal(proto_encode_ev(&b, proto_s("r"), 1, &ev, true), 0);
  proto_buf_free(&b);
  free(m);
}

static void test_encode_snapshot(void **state) {
  (void)state;
  static const proto_str opts[] = {{"5 s", 3}, {"20 s", 4}, {"60 s", 4}};
  const proto_task_info tasks[] = {
      {PROTO_TASK_QUESTION, proto_s("How long should you rub your hands with soap?"), 3, opts},
      {PROTO_TASK_OBSERVE, proto_s("Wets hands and applies soap"), 0, NULL},
  };
  const proto_member learners[] = {
      {5, proto_s("Lea"), true},
      {6, proto_s("Leo"), false},
  };
  const proto_answer_rec answers[] = {
      {5, 0, {.kind = PROTO_VALUE_INT, .i = 1}, 5},
      {6, 0, {.kind = PROTO_VALUE_INT, .i = 0}, 1},
  };
  const proto_mark_rec marks[] = {
      {5, 1, PROTO_RESULT_PASS, false, {NULL, 0}, false, {NULL, 0}},
      {6, 1, PROTO_RESULT_FAIL, true, proto_s("Skipped soap."), false, {NULL, 0}},
  };
  const proto_outcome_rec outcomes[] = {
      {5, PROTO_STATUS_APPROVED, true, 5012},
      {6, PROTO_STATUS_NOT_APPROVED, false, 0},
  };
  proto_snapshot s = {
      .room = proto_s("room-1"),
      .seq = 17,
      .code = proto_s("K7Q2"),
      .module = {3, proto_s("Hand hygiene"), 2, tasks},
      .task = 1,
      .host = {1, proto_s("Rita")},
      .n_learners = 2,
      .learners = learners,
      .n_answers = 2,
      .answers = answers,
      .n_marks = 2,
      .marks = marks,
      .n_outcomes = 2,
      .outcomes = outcomes,
      .closed = false,
  };
  proto_buf b;
  msgpack_unpacked u;
  proto_buf_init(&b, 0);

  /* as the host: everything */
  assert_int_equal(proto_encode_snapshot(&b, (proto_rid){true, 2}, &s, (proto_viewer){1, true}), 0);
  const msgpack_object *o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 13);
  expect_str(o, "t", "snapshot");
  expect_u(o, "rid", 2);
  expect_str(o, "room", "room-1");
  expect_u(o, "seq", 17);
  expect_str(o, "code", "K7Q2");
  expect_u(o, "task", 1);
  expect_str(o, "state", "open");
  const msgpack_object *mod = get(o, "module");
  expect_u(mod, "id", 3);
  expect_str(mod, "title", "Hand hygiene");
  const msgpack_object *tk = expect_array(mod, "tasks", 2);
  expect_str(&tk->via.array.ptr[0], "kind", "question");
  expect_str(&tk->via.array.ptr[0], "text", "How long should you rub your hands with soap?");
  const msgpack_object *op = expect_array(&tk->via.array.ptr[0], "options", 3);
  assert_int_equal(op->via.array.ptr[1].via.str.size, 4);
  assert_memory_equal(op->via.array.ptr[1].via.str.ptr, "20 s", 4);
  expect_str(&tk->via.array.ptr[1], "kind", "observe");
  expect_absent(&tk->via.array.ptr[1], "options");
  const msgpack_object *host = get(o, "host");
  expect_u(host, "id", 1);
  expect_str(host, "name", "Rita");
  const msgpack_object *ls = expect_array(o, "learners", 2);
  expect_u(&ls->via.array.ptr[0], "id", 5);
  expect_str(&ls->via.array.ptr[0], "name", "Lea");
  expect_bool(&ls->via.array.ptr[0], "online", true);
  expect_bool(&ls->via.array.ptr[1], "online", false);
  const msgpack_object *as = expect_array(o, "answers", 2);
  expect_u(&as->via.array.ptr[1], "learner", 6);
  expect_u(&as->via.array.ptr[1], "by", 1);
  assert_non_null(get(&as->via.array.ptr[0], "value"));
  assert_non_null(get(&as->via.array.ptr[1], "value"));
  const msgpack_object *ms = expect_array(o, "marks", 2);
  expect_str(&ms->via.array.ptr[0], "result", "pass");
  expect_absent(&ms->via.array.ptr[0], "note");
  expect_str(&ms->via.array.ptr[1], "result", "fail");
  expect_str(&ms->via.array.ptr[1], "note", "Skipped soap.");
  const msgpack_object *oc = expect_array(o, "outcomes", 2);
  assert_int_equal(oc->via.array.ptr[0].via.map.size, 3);
  expect_u(&oc->via.array.ptr[0], "learner", 5);
  expect_str(&oc->via.array.ptr[0], "status", "approved");
  expect_u(&oc->via.array.ptr[0], "completion", 5012);
  assert_int_equal(oc->via.array.ptr[1].via.map.size, 2);
  expect_u(&oc->via.array.ptr[1], "learner", 6);
  expect_str(&oc->via.array.ptr[1], "status", "not_approved");
  msgpack_unpacked_destroy(&u);

  /* as learner 5: own records whole, learner 6's stripped */
  s.closed = true;
  proto_buf_clear(&b);
  assert_int_equal(proto_encode_snapshot(&b, PROTO_NO_RID, &s, (proto_viewer){5, false}), 0);
  o = unpack_one(&b, &u);
  assert_int_equal(o->via.map.size, 12);
  expect_absent(o, "rid");
  expect_str(o, "state", "closed");
  as = expect_array(o, "answers", 2);
  expect_u(&as->via.array.ptr[0], "learner", 5);
  assert_non_null(get(&as->via.array.ptr[0], "value"));
  expect_u(&as->via.array.ptr[1], "learner", 6);
  expect_u(&as->via.array.ptr[1], "task", 0);
  expect_absent(&as->via.array.ptr[1], "value");
  ms = expect_array(o, "marks", 2);
  expect_str(&ms->via.array.ptr[0], "result", "pass");
  expect_u(&ms->via.array.ptr[1], "learner", 6);
  expect_absent(&ms->via.array.ptr[1], "result");
  expect_absent(&ms->via.array.ptr[1], "note");
  oc = expect_array(o, "outcomes", 2);
  expect_str(&oc->via.array.ptr[0], "status", "approved");
  expect_u(&oc->via.array.ptr[0], "completion", 5012);
  assert_int_equal(oc->via.array.ptr[1].via.map.size, 1);
  expect_u(&oc->via.array.ptr[1], "learner", 6);
  msgpack_unpacked_destroy(&u);

  /* an empty room encodes with empty arrays */
  proto_snapshot empty = {
      .room = proto_s("r"), .module = {1, proto_s("M"), 0, NULL}, .host = {1, proto_s("H")}};
  proto_buf_clear(&b);
  assert_int_equal(proto_encode_snapshot(&b, PROTO_NO_RID, &empty, (proto_viewer){1, true}), 0);
  o = unpack_one(&b, &u);
  expect_array(o, "learners", 0);
  expect_array(o, "answers", 0);
  expect_array(o, "marks", 0);
  expect_array(o, "outcomes", 0);
  expect_str(o, "code", "");
  msgpack_unpacked_destroy(&u);
  proto_buf_free(&b);
}

/* What the server sends decodes with our own pre-validator too (string keys,
 * one map, no ext): a cheap check that encoders stay inside otj.v1. */
static void test_encoded_frames_are_valid_otj(void **state) {
  (void)state;
  proto_buf b;
  proto_buf_init(&b, 0);
  proto_user user = {1, proto_s("Rita"), true};
  assert_int_equal(proto_encode_welcome(&b, PROTO_NO_RID, &user), 0);
  proto_error e;
  proto_msg *m = new_msg();
  /* "welcome" is not a client type, so the type check is what fails */
  assert_int_equal(proto_decode(proto_buf_bytes(&b), b.len, NULL, m, &e), -PROTO_BAD_REQUEST);
  assert_non_null(strstr(e.msg, "Unknown message type 'welcome'"));
  free(m);
  proto_buf_free(&b);
}

/* An event stored once as its `e` body and framed later is byte for byte the
 * frame proto_encode_ev makes, whole and redacted. */
static void test_ev_body_then_raw_frame(void **state) {
  (void)state;
  proto_event ev = {.type = PROTO_EV_MARK};
  ev.mark.learner = 7;
  ev.mark.task = 2;
  ev.mark.result = PROTO_RESULT_FAIL;
  ev.mark.has_note = true;
  ev.mark.note = proto_s("missed the thumbs");
  ev.mark.has_evidence = true;
  ev.mark.evidence = proto_s(EVIDENCE_HEX);
  for (int red = 0; red < 2; red++) {
    proto_buf direct, body, framed;
    proto_buf_init(&direct, 0);
    proto_buf_init(&body, 0);
    proto_buf_init(&framed, 16);
    assert_int_equal(proto_encode_ev(&direct, proto_s("r1"), 42, &ev, red), 0);
    assert_int_equal(proto_encode_event_body(&body, &ev, red), 0);
    assert_int_equal(proto_encode_ev_raw(&framed, proto_s("r1"), 42, proto_buf_bytes(&body),
                                         proto_buf_size(&body)),
                     0);
    assert_int_equal(proto_buf_size(&direct), proto_buf_size(&framed));
    assert_memory_equal(proto_buf_bytes(&direct), proto_buf_bytes(&framed),
                        proto_buf_size(&direct));
    /* the redacted body carries no result and no note */
    if (red) assert_null(memmem(proto_buf_bytes(&body), proto_buf_size(&body), "thumbs", 6));
    /* nor the evidence, which only those who see the mark may fetch */
    assert_true((memmem(proto_buf_bytes(&body), proto_buf_size(&body), "evidence", 8) == NULL) ==
                (red != 0));
    proto_buf_free(&direct);
    proto_buf_free(&body);
    proto_buf_free(&framed);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_hello),
      cmocka_unit_test(test_decode_open),
      cmocka_unit_test(test_decode_join),
      cmocka_unit_test(test_decode_add_remove_step),
      cmocka_unit_test(test_decode_answer),
      cmocka_unit_test(test_decode_mark),
      cmocka_unit_test(test_decode_approve),
      cmocka_unit_test(test_decode_sync_leave_close_ping),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_reject_field_errors),
      cmocka_unit_test(test_reject_invalid_utf8),
      cmocka_unit_test(test_reject_unknown_type_is_sanitised),
      cmocka_unit_test(test_reject_bad_bytes),
      cmocka_unit_test(test_reject_depth_bomb),
      cmocka_unit_test(test_reject_object_bomb),
      cmocka_unit_test(test_reject_too_many),
      cmocka_unit_test(test_reject_frame_too_large),
      cmocka_unit_test(test_error_carries_rid),
      cmocka_unit_test(test_every_prefix_rejected),
      cmocka_unit_test(test_fuzz_mutations),
      cmocka_unit_test(test_encode_simple_replies),
      cmocka_unit_test(test_encode_appends_and_grows),
      cmocka_unit_test(test_encode_approved),
      cmocka_unit_test(test_encode_simple_events),
      cmocka_unit_test(test_visibility_answer),
      cmocka_unit_test(test_visibility_mark_and_approved),
      cmocka_unit_test(test_relay_raw_value),
      cmocka_unit_test(test_encode_snapshot),
      cmocka_unit_test(test_encoded_frames_are_valid_otj),
      cmocka_unit_test(test_ev_body_then_raw_frame),
      cmocka_unit_test(test_decode_group_mark),
      cmocka_unit_test(test_group_view),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
