/* proto.c -- the otj.v1 wire codec.
 *
 * Decoding happens in two passes over the caller's bytes, neither of which
 * allocates. The first pass (validate_frame) is the only code that ever looks
 * at an untrusted frame: it walks every msgpack object with an explicit
 * bounds check on each header and payload, compares every declared length
 * with the bytes actually left (an array of n needs at least n more bytes, a
 * map of n at least 2n), and enforces depth and object-count limits, so a
 * five-byte frame that claims four billion elements is refused before
 * anything is sized from it. The second pass (decode_fields) reads fields
 * from the now well-formed frame in place and turns them into proto_msg.
 *
 * Encoding packs trusted structs with msgpack-c's packer straight into a
 * proto_buf, which reserves headroom for the websocket layer.
 */
#include "proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/* ======================================================================== */
/* Small helpers                                                            */
/* ======================================================================== */

proto_limits proto_limits_default(void) {
  proto_limits l = {
      .max_frame = PROTO_DEFAULT_MAX_FRAME,
      .max_depth = PROTO_DEFAULT_MAX_DEPTH,
      .max_objects = PROTO_DEFAULT_MAX_OBJECTS,
      .max_learners = PROTO_MAX_LEARNERS,
      .max_decisions = PROTO_MAX_DECISIONS,
      .max_value_items = PROTO_MAX_VALUE_ITEMS,
  };
  return l;
}

proto_str proto_s(const char *cstr) {
  proto_str s = {cstr ? cstr : "", cstr ? (uint32_t)strlen(cstr) : 0};
  return s;
}

bool proto_str_eq(proto_str s, const char *cstr) {
  if (!cstr) return false;
  size_t n = strlen(cstr);
  return n == s.len && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

static const char *const code_names[] = {
    [PROTO_OK] = "ok",
    [PROTO_BAD_REQUEST] = "bad_request",
    [PROTO_UNAUTHORIZED] = "unauthorized",
    [PROTO_FORBIDDEN] = "forbidden",
    [PROTO_NOT_FOUND] = "not_found",
    [PROTO_CONFLICT] = "conflict",
    [PROTO_TOO_LARGE] = "too_large",
    [PROTO_RATE_LIMITED] = "rate_limited",
    [PROTO_UNAVAILABLE] = "unavailable",
    [PROTO_INTERNAL] = "internal",
    [PROTO_BAD_CODE] = "bad_code",
};

const char *proto_code_name(proto_code code) {
  if ((unsigned)code < sizeof code_names / sizeof code_names[0]) return code_names[code];
  return "internal";
}

static const char *const type_names[] = {
    [PROTO_T_HELLO] = "hello",
    [PROTO_T_OPEN] = "open",
    [PROTO_T_JOIN] = "join",
    [PROTO_T_ADD] = "add",
    [PROTO_T_REMOVE] = "remove",
    [PROTO_T_STEP] = "step",
    [PROTO_T_ANSWER] = "answer",
    [PROTO_T_MARK] = "mark",
    [PROTO_T_APPROVE] = "approve",
    [PROTO_T_SYNC] = "sync",
    [PROTO_T_LEAVE] = "leave",
    [PROTO_T_CLOSE] = "close",
    [PROTO_T_PING] = "ping",
    [PROTO_T_WATCH] = "watch",
    [PROTO_T_UNWATCH] = "unwatch",
    [PROTO_T_CONFIRM] = "confirm",
    [PROTO_T_CONFIRM_CODE] = "confirm_code",
};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

const char *proto_type_name(proto_type t) {
  if ((unsigned)t < N_TYPES && type_names[t]) return type_names[t];
  return "?";
}

static const char *const ev_names[] = {
    [PROTO_EV_JOINED] = "joined", [PROTO_EV_LEFT] = "left",
    [PROTO_EV_ADDED] = "added",   [PROTO_EV_REMOVED] = "removed",
    [PROTO_EV_STEP] = "step",     [PROTO_EV_ANSWER] = "answer",
    [PROTO_EV_MARK] = "mark",     [PROTO_EV_APPROVED] = "approved",
    [PROTO_EV_CLOSED] = "closed", [PROTO_EV_CONFIRMED] = "confirmed",
};

const char *proto_ev_type_name(proto_ev_type t) {
  if ((unsigned)t < sizeof ev_names / sizeof ev_names[0] && ev_names[t]) return ev_names[t];
  return "?";
}

/* Enum-to-wire names for the encoder; NULL for a value outside the enum,
 * which makes the encode fail instead of sending something invented. */
static const char *result_name(proto_result r) {
  return r == PROTO_RESULT_PASS ? "pass" : r == PROTO_RESULT_FAIL ? "fail" : NULL;
}

static const char *role_name(proto_role r) {
  return r == PROTO_ROLE_HOST ? "host" : r == PROTO_ROLE_LEARNER ? "learner" : NULL;
}

static const char *status_name(proto_status s) {
  switch (s) {
  case PROTO_STATUS_APPROVED: return "approved";
  case PROTO_STATUS_NOT_APPROVED: return "not_approved";
  case PROTO_STATUS_REFUSED: return "refused";
  case PROTO_STATUS_PENDING: return "pending";
  }
  return NULL;
}

static const char *task_kind_name(proto_task_kind k) {
  return k == PROTO_TASK_QUESTION ? "question" : k == PROTO_TASK_OBSERVE ? "observe" : NULL;
}

/* Fill err and return the negative code: every decode failure goes through here. */
__attribute__((format(printf, 3, 4))) static int fail(proto_error *err, proto_code code,
                                                      const char *fmt, ...) {
  va_list ap;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return -(int)code;
}

/* Copy at most `max` bytes of client text into dst as printable ASCII, so a
 * quoted value can neither break a log line nor bloat a reply. */
static void quote_client_text(char *dst, size_t dst_size, const char *src, size_t n, size_t max) {
  size_t o = 0;
  for (size_t i = 0; i < n && i < max && o + 1 < dst_size; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[o++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
  }
  if (n > max && o + 4 < dst_size) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = '\0';
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t proto_utf8_len(const uint8_t *s, size_t n) {
  if (n == 0) return 0;
  uint8_t c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

static bool utf8_valid(const uint8_t *s, size_t n) {
  for (size_t i = 0, len; i < n; i += len)
    if ((len = proto_utf8_len(s + i, n - i)) == 0) return false;
  return true;
}

/* ======================================================================== */
/* Bounded msgpack reader                                                   */
/* ======================================================================== */

typedef struct rd {
  const uint8_t *p;
  const uint8_t *end;
} rd;

static size_t rd_left(const rd *r) { return (size_t)(r->end - r->p); }

typedef enum mp_kind {
  MP_NIL,
  MP_BOOL,
  MP_UINT,
  MP_NEG,
  MP_FLOAT,
  MP_STR,
  MP_BIN,
  MP_ARRAY,
  MP_MAP,
} mp_kind;

/* One object header. For MP_STR/MP_BIN the payload (n bytes) is not consumed;
 * for MP_ARRAY/MP_MAP n is the element / pair count. Integers of any width
 * and signedness land in MP_UINT (value >= 0, in u) or MP_NEG (in i). */
typedef struct mp_hdr {
  mp_kind kind;
  bool b;
  uint64_t u;
  int64_t i;
  uint32_t n;
} mp_hdr;

enum { HDR_OK = 0, HDR_SHORT = -1, HDR_INVALID = -2, HDR_EXT = -3 };

static uint64_t load_be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned k = 0; k < n; k++) v = (v << 8) | p[k];
  return v;
}

/* Read one header. Checks that the header bytes themselves are present;
 * payload lengths are checked by the caller. On failure r is unchanged. */
static int rd_hdr(rd *r, mp_hdr *h) {
  if (r->p >= r->end) return HDR_SHORT;
  uint8_t c = r->p[0];
  const uint8_t *q = r->p + 1;
  size_t left = rd_left(r) - 1;
  unsigned extra = 0;

  memset(h, 0, sizeof *h);
  if (c <= 0x7f) {
    h->kind = MP_UINT;
    h->u = c;
  } else if (c <= 0x8f) {
    h->kind = MP_MAP;
    h->n = c & 0x0f;
  } else if (c <= 0x9f) {
    h->kind = MP_ARRAY;
    h->n = c & 0x0f;
  } else if (c <= 0xbf) {
    h->kind = MP_STR;
    h->n = c & 0x1f;
  } else if (c >= 0xe0) {
    h->kind = MP_NEG;
    h->i = (int8_t)c;
  } else {
    switch (c) {
    case 0xc0: h->kind = MP_NIL; break;
    case 0xc2:
      h->kind = MP_BOOL;
      h->b = false;
      break;
    case 0xc3:
      h->kind = MP_BOOL;
      h->b = true;
      break;
    case 0xc4:
    case 0xc5:
    case 0xc6:
      h->kind = MP_BIN;
      extra = 1u << (c - 0xc4);
      break;
    case 0xca:
      h->kind = MP_FLOAT;
      extra = 4;
      break;
    case 0xcb:
      h->kind = MP_FLOAT;
      extra = 8;
      break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      h->kind = MP_UINT;
      extra = 1u << (c - 0xcc);
      break;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      h->kind = MP_NEG; /* corrected below when the value is >= 0 */
      extra = 1u << (c - 0xd0);
      break;
    case 0xd9:
    case 0xda:
    case 0xdb:
      h->kind = MP_STR;
      extra = 1u << (c - 0xd9);
      break;
    case 0xdc:
      h->kind = MP_ARRAY;
      extra = 2;
      break;
    case 0xdd:
      h->kind = MP_ARRAY;
      extra = 4;
      break;
    case 0xde:
      h->kind = MP_MAP;
      extra = 2;
      break;
    case 0xdf:
      h->kind = MP_MAP;
      extra = 4;
      break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: return HDR_EXT;
    default: /* 0xc1 is never used */ return HDR_INVALID;
    }
    if (left < extra) return HDR_SHORT;
    uint64_t v = load_be(q, extra);
    switch (h->kind) {
    case MP_UINT: h->u = v; break;
    case MP_NEG: {
      int64_t s;
      switch (extra) {
      case 1: s = (int8_t)(uint8_t)v; break;
      case 2: s = (int16_t)(uint16_t)v; break;
      case 4: s = (int32_t)(uint32_t)v; break;
      default: s = (int64_t)v; break;
      }
      if (s >= 0) {
        h->kind = MP_UINT;
        h->u = (uint64_t)s;
      } else {
        h->i = s;
      }
      break;
    }
    case MP_STR:
    case MP_BIN:
    case MP_ARRAY:
    case MP_MAP:
      h->n = (uint32_t)v; /* at most 4 bytes wide */
      break;
    default: break; /* floats: value not needed, just skipped */
    }
  }
  r->p = q + extra;
  return HDR_OK;
}

/* ======================================================================== */
/* Pass 1: validate an untrusted frame                                      */
/* ======================================================================== */

typedef struct vctx {
  const proto_limits *lim;
  proto_error *err;
  uint32_t objects;
} vctx;

static int v_object(vctx *c, rd *r, uint32_t depth);

static int v_header_fail(vctx *c, int rc) {
  if (rc == HDR_EXT)
    return fail(c->err, PROTO_BAD_REQUEST,
                "The message holds a msgpack ext value; otj.v1 does not use them.");
  if (rc == HDR_INVALID)
    return fail(c->err, PROTO_BAD_REQUEST,
                "The frame is not valid msgpack (it holds the unused byte 0xc1).");
  return fail(c->err, PROTO_BAD_REQUEST,
              "The frame is truncated: it ends in the middle of a value.");
}

static int v_count(vctx *c) {
  if (++c->objects > c->lim->max_objects)
    return fail(c->err, PROTO_TOO_LARGE, "The message holds more than %" PRIu32 " values.",
                c->lim->max_objects);
  return 0;
}

/* Walk one object whose containers sit at nesting level `depth` (top = 1). */
static int v_object(vctx *c, rd *r, uint32_t depth) {
  mp_hdr h;
  int rc = v_count(c);
  if (rc) return rc;
  rc = rd_hdr(r, &h);
  if (rc) return v_header_fail(c, rc);

  switch (h.kind) {
  case MP_STR:
  case MP_BIN:
    if (h.n > rd_left(r))
      return fail(c->err, PROTO_BAD_REQUEST,
                  "The frame is truncated: a value declares %" PRIu32 " bytes but only %zu follow.",
                  h.n, rd_left(r));
    r->p += h.n;
    return 0;
  case MP_ARRAY:
  case MP_MAP: {
    bool is_map = h.kind == MP_MAP;
    /* every element takes at least one byte */
    uint64_t need = is_map ? 2 * (uint64_t)h.n : h.n;
    if (need > rd_left(r))
      return fail(c->err, PROTO_BAD_REQUEST,
                  "The frame is truncated: %s declares %" PRIu32
                  " entries but only %zu bytes follow.",
                  is_map ? "a map" : "an array", h.n, rd_left(r));
    if (depth > c->lim->max_depth)
      return fail(c->err, PROTO_TOO_LARGE, "The message is nested deeper than %" PRIu32 " levels.",
                  c->lim->max_depth);
    if (need > c->lim->max_objects)
      return fail(c->err, PROTO_TOO_LARGE, "The message holds more than %" PRIu32 " values.",
                  c->lim->max_objects);
    for (uint32_t k = 0; k < h.n; k++) {
      if (is_map) {
        mp_hdr kh;
        const uint8_t *at = r->p;
        if ((rc = v_count(c))) return rc;
        if ((rc = rd_hdr(r, &kh))) return v_header_fail(c, rc);
        if (kh.kind != MP_STR) {
          r->p = at;
          return fail(c->err, PROTO_BAD_REQUEST, "Every map key must be a string.");
        }
        if (kh.n > rd_left(r))
          return fail(c->err, PROTO_BAD_REQUEST,
                      "The frame is truncated: a key declares %" PRIu32
                      " bytes but only %zu follow.",
                      kh.n, rd_left(r));
        const uint8_t *key = r->p;
        r->p += kh.n;
        /* Remember a top-level rid as soon as it is seen, so even a
         * frame broken further on gets an err that carries it. */
        if (depth == 1 && !c->err->has_rid && kh.n == 3 && memcmp(key, "rid", 3) == 0) {
          rd look = *r;
          mp_hdr vh;
          if (rd_hdr(&look, &vh) == HDR_OK && vh.kind == MP_UINT) {
            c->err->has_rid = true;
            c->err->rid = vh.u;
          }
        }
      }
      if ((rc = v_object(c, r, depth + 1))) return rc;
    }
    return 0;
  }
  default: return 0; /* scalars: header already consumed them */
  }
}

/* The whole frame: one map, nothing after it. */
static int validate_frame(const uint8_t *buf, size_t len, const proto_limits *lim,
                          proto_error *err) {
  vctx c = {.lim = lim, .err = err, .objects = 0};
  rd r = {buf, buf + len};

  if (len == 0) return fail(err, PROTO_BAD_REQUEST, "The frame is empty; send one msgpack map.");
  if (len > lim->max_frame)
    return fail(err, PROTO_TOO_LARGE, "The frame is %zu bytes; at most %zu are accepted.", len,
                lim->max_frame);
  uint8_t c0 = buf[0];
  bool is_map = (c0 >= 0x80 && c0 <= 0x8f) || c0 == 0xde || c0 == 0xdf;
  if (!is_map)
    return fail(err, PROTO_BAD_REQUEST, "A message must be a msgpack map with string keys.");
  int rc = v_object(&c, &r, 1);
  if (rc) return rc;
  if (r.p != r.end)
    return fail(err, PROTO_BAD_REQUEST, "The frame holds %zu bytes after the end of the message.",
                rd_left(&r));
  return 0;
}

/* ======================================================================== */
/* Pass 2: read fields from a validated frame                               */
/* ======================================================================== */

/* Skip one object. Only called on validated bytes, so depth is bounded. */
static void rd_skip(rd *r) {
  mp_hdr h;
  if (rd_hdr(r, &h) != HDR_OK) {
    r->p = r->end; /* cannot happen after validation; stay in bounds */
    return;
  }
  if (h.kind == MP_STR || h.kind == MP_BIN) {
    r->p += h.n;
  } else if (h.kind == MP_ARRAY || h.kind == MP_MAP) {
    uint64_t n = h.kind == MP_MAP ? 2 * (uint64_t)h.n : h.n;
    for (uint64_t k = 0; k < n; k++) rd_skip(r);
  }
}

/* Known keys of the top-level map. */
enum field {
  F_T,
  F_RID,
  F_V,
  F_TOKEN,
  F_MODULE,
  F_LEARNERS,
  F_CODE,
  F_ROOM,
  F_LEARNER,
  F_TASK,
  F_VALUE,
  F_KEY,
  F_RESULT,
  F_NOTE,
  F_DECISIONS,
  F_SINCE,
  F_EVIDENCE,
  F_COUNT
};
static const char *const field_names[F_COUNT] = {
    [F_T] = "t",           [F_RID] = "rid",           [F_V] = "v",
    [F_TOKEN] = "token",   [F_MODULE] = "module",     [F_LEARNERS] = "learners",
    [F_CODE] = "code",     [F_ROOM] = "room",         [F_LEARNER] = "learner",
    [F_TASK] = "task",     [F_VALUE] = "value",       [F_KEY] = "key",
    [F_RESULT] = "result", [F_NOTE] = "note",         [F_DECISIONS] = "decisions",
    [F_SINCE] = "since",   [F_EVIDENCE] = "evidence",
};

/* Keys of one approve decision. */
enum dfield { D_LEARNER, D_APPROVED, D_NOTE, D_COUNT };
static const char *const dfield_names[D_COUNT] = {
    [D_LEARNER] = "learner",
    [D_APPROVED] = "approved",
    [D_NOTE] = "note",
};

typedef struct dctx {
  const proto_limits *lim;
  proto_error *err;
  const uint8_t *end;
} dctx;

/* Index the map whose header r is at: pos[i] = start of the value of key
 * names[i], or NULL. Unknown keys are skipped; a known key twice is refused. */
static int scan_map(dctx *d, rd *r, const char *const *names, unsigned n_names, const uint8_t **pos,
                    const char *where) {
  mp_hdr h;
  rd_hdr(r, &h); /* the caller checked that it is a map */
  for (unsigned i = 0; i < n_names; i++) pos[i] = NULL;
  for (uint32_t k = 0; k < h.n; k++) {
    mp_hdr kh;
    rd_hdr(r, &kh); /* validated: a string key */
    const char *key = (const char *)r->p;
    r->p += kh.n;
    for (unsigned i = 0; i < n_names; i++) {
      if (strlen(names[i]) == kh.n && memcmp(names[i], key, kh.n) == 0) {
        if (pos[i])
          return fail(d->err, PROTO_BAD_REQUEST, "Field '%s%s' appears more than once.", where,
                      names[i]);
        pos[i] = r->p;
        break;
      }
    }
    rd_skip(r);
  }
  return 0;
}

static bool present(const uint8_t *pos) { return pos && *pos != 0xc0; }

static int missing(dctx *d, const char *name) {
  return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' is required.", name);
}

static mp_hdr peek(dctx *d, const uint8_t *pos, rd *r) {
  mp_hdr h;
  r->p = pos;
  r->end = d->end;
  rd_hdr(r, &h);
  return h;
}

/* A non-negative integer no larger than max. */
static int get_uint(dctx *d, const uint8_t *pos, const char *name, uint64_t max, uint64_t *out) {
  rd r;
  if (!present(pos)) return missing(d, name);
  mp_hdr h = peek(d, pos, &r);
  if (h.kind != MP_UINT)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be a non-negative integer.", name);
  if (h.u > max)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' is out of range (at most %" PRIu64 ").",
                name, max);
  *out = h.u;
  return 0;
}

static int get_id(dctx *d, const uint8_t *pos, const char *name, uint64_t *out) {
  return get_uint(d, pos, name, (uint64_t)INT64_MAX, out);
}

static int get_task(dctx *d, const uint8_t *pos, const char *name, uint32_t *out) {
  uint64_t v;
  int rc = get_uint(d, pos, name, UINT32_MAX, &v);
  if (rc == 0) *out = (uint32_t)v;
  return rc;
}

static int get_int(dctx *d, const uint8_t *pos, const char *name, int64_t *out) {
  rd r;
  mp_hdr h = peek(d, pos, &r);
  if (h.kind == MP_NEG) {
    *out = h.i;
    return 0;
  }
  if (h.kind != MP_UINT)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be an integer.", name);
  if (h.u > (uint64_t)INT64_MAX)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' is out of range.", name);
  *out = (int64_t)h.u;
  return 0;
}

/* A UTF-8 string of min..max bytes; too long is too_large. */
static int get_str(dctx *d, const uint8_t *pos, const char *name, uint32_t min, uint32_t max,
                   proto_str *out) {
  rd r;
  if (!present(pos)) return missing(d, name);
  mp_hdr h = peek(d, pos, &r);
  if (h.kind != MP_STR)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be a string.", name);
  if (h.n > max)
    return fail(d->err, PROTO_TOO_LARGE, "Field '%s' is longer than %" PRIu32 " bytes.", name, max);
  if (h.n < min) return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must not be empty.", name);
  if (!utf8_valid(r.p, h.n))
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be valid UTF-8.", name);
  out->ptr = (const char *)r.p;
  out->len = h.n;
  return 0;
}

static int get_opt_str(dctx *d, const uint8_t *pos, const char *name, uint32_t min, uint32_t max,
                       bool *has, proto_str *out) {
  *has = false;
  if (!present(pos)) return 0;
  int rc = get_str(d, pos, name, min, max, out);
  if (rc == 0) *has = true;
  return rc;
}

static int get_bool(dctx *d, const uint8_t *pos, const char *name, bool *out) {
  rd r;
  if (!present(pos)) return missing(d, name);
  mp_hdr h = peek(d, pos, &r);
  if (h.kind != MP_BOOL)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be true or false.", name);
  *out = h.b;
  return 0;
}

bool proto_is_evidence(proto_str s) {
  bool hex = s.len == PROTO_EVIDENCE_LEN;
  for (uint32_t i = 0; hex && i < s.len; i++)
    hex = (s.ptr[i] >= '0' && s.ptr[i] <= '9') || (s.ptr[i] >= 'a' && s.ptr[i] <= 'f');
  return hex;
}

/* An optional evidence hash: exactly 64 lowercase hex digits. */
static int get_evidence(dctx *d, const uint8_t *pos, bool *has, proto_str *out) {
  int rc = get_opt_str(d, pos, "evidence", 0, PROTO_EVIDENCE_LEN, has, out);
  if (rc || !*has) return rc;
  if (!proto_is_evidence(*out))
    return fail(d->err, PROTO_BAD_REQUEST,
                "Field 'evidence' must be the 64 hex digits that the upload answered with.");
  return 0;
}

static int get_room(dctx *d, const uint8_t **f, proto_str *out) {
  return get_str(d, f[F_ROOM], "room", 1, PROTO_MAX_ROOM, out);
}

/* Array header at pos: count in *n, r positioned at the first element. */
static int get_array(dctx *d, const uint8_t *pos, const char *name, const char *what, uint32_t max,
                     rd *r, uint32_t *n) {
  if (!present(pos)) return missing(d, name);
  mp_hdr h = peek(d, pos, r);
  if (h.kind != MP_ARRAY)
    return fail(d->err, PROTO_BAD_REQUEST, "Field '%s' must be an array of %s.", name, what);
  if (h.n > max)
    return fail(d->err, PROTO_TOO_LARGE,
                "Field '%s' holds %" PRIu32 " %s; at most %" PRIu32 " are accepted.", name, h.n,
                what, max);
  *n = h.n;
  return 0;
}

static uint32_t clamp_u32(uint32_t v, uint32_t cap) { return v < cap ? v : cap; }

static int decode_value(dctx *d, const uint8_t *pos, proto_value *v, int64_t *items) {
  rd r;
  int rc;
  if (!present(pos)) return missing(d, "value");
  memset(v, 0, sizeof *v);
  mp_hdr h = peek(d, pos, &r);
  switch (h.kind) {
  case MP_UINT:
  case MP_NEG:
    if ((rc = get_int(d, pos, "value", &v->i))) return rc;
    v->kind = PROTO_VALUE_INT;
    break;
  case MP_STR:
    if ((rc = get_str(d, pos, "value", 0, PROTO_MAX_ANSWER_TEXT, &v->s))) return rc;
    v->kind = PROTO_VALUE_STR;
    break;
  case MP_ARRAY: {
    uint32_t n;
    uint32_t max = clamp_u32(d->lim->max_value_items, PROTO_MAX_VALUE_ITEMS);
    if ((rc = get_array(d, pos, "value", "items", max, &r, &n))) return rc;
    for (uint32_t k = 0; k < n; k++) {
      char name[32];
      snprintf(name, sizeof name, "value[%" PRIu32 "]", k);
      if ((rc = get_int(d, r.p, name, &items[k]))) return rc;
      rd_skip(&r);
    }
    v->kind = PROTO_VALUE_INTS;
    v->n_items = n;
    v->items = items;
    break;
  }
  default:
    return fail(d->err, PROTO_BAD_REQUEST,
                "Field 'value' must be an integer, an array of integers or a string.");
  }
  r.p = pos;
  r.end = d->end;
  rd_skip(&r);
  v->raw.ptr = (const char *)pos;
  v->raw.len = (uint32_t)(r.p - pos);
  return 0;
}

static int decode_decisions(dctx *d, const uint8_t *pos, proto_msg *m) {
  rd r;
  uint32_t n;
  uint32_t max = clamp_u32(d->lim->max_decisions, PROTO_MAX_DECISIONS);
  int rc = get_array(d, pos, "decisions", "decisions", max, &r, &n);
  if (rc) return rc;
  if (n == 0)
    return fail(d->err, PROTO_BAD_REQUEST, "Field 'decisions' must hold at least one decision.");
  for (uint32_t k = 0; k < n; k++) {
    char where[32], name[48];
    const uint8_t *df[D_COUNT];
    proto_decision *dec = &m->approve.decisions[k];
    rd item;
    snprintf(where, sizeof where, "decisions[%" PRIu32 "].", k);
    mp_hdr h = peek(d, r.p, &item);
    if (h.kind != MP_MAP)
      return fail(d->err, PROTO_BAD_REQUEST, "Field 'decisions[%" PRIu32 "]' must be a map.", k);
    item.p = r.p;
    if ((rc = scan_map(d, &item, dfield_names, D_COUNT, df, where))) return rc;
    snprintf(name, sizeof name, "%slearner", where);
    if ((rc = get_id(d, df[D_LEARNER], name, &dec->learner))) return rc;
    snprintf(name, sizeof name, "%sapproved", where);
    if ((rc = get_bool(d, df[D_APPROVED], name, &dec->approved))) return rc;
    snprintf(name, sizeof name, "%snote", where);
    if ((rc = get_opt_str(d, df[D_NOTE], name, 0, PROTO_MAX_NOTE, &dec->has_note, &dec->note)))
      return rc;
    rd_skip(&r);
  }
  m->approve.n_decisions = n;
  return 0;
}

static int decode_body(dctx *d, const uint8_t **f, proto_msg *m) {
  int rc = 0;
  switch (m->type) {
  case PROTO_T_HELLO: {
    uint64_t v;
    rd r;
    if (!present(f[F_V])) return missing(d, "v");
    if (peek(d, f[F_V], &r).kind != MP_UINT)
      return fail(d->err, PROTO_BAD_REQUEST, "Field 'v' must be the protocol version, 1.");
    if ((rc = get_uint(d, f[F_V], "v", UINT64_MAX, &v))) return rc;
    if (v != PROTO_VERSION)
      return fail(d->err, PROTO_BAD_REQUEST,
                  "Protocol version %" PRIu64 " is not supported; this server speaks "
                  "version %d.",
                  v, PROTO_VERSION);
    m->hello.v = (uint32_t)v;
    return get_opt_str(d, f[F_TOKEN], "token", 0, PROTO_MAX_TOKEN, &m->hello.has_token,
                       &m->hello.token);
  }
  case PROTO_T_OPEN: {
    rd r;
    uint32_t n;
    uint32_t max = clamp_u32(d->lim->max_learners, PROTO_MAX_LEARNERS);
    if ((rc = get_id(d, f[F_MODULE], "module", &m->open.module))) return rc;
    if ((rc = get_array(d, f[F_LEARNERS], "learners", "user ids", max, &r, &n))) return rc;
    for (uint32_t k = 0; k < n; k++) {
      char name[32];
      snprintf(name, sizeof name, "learners[%" PRIu32 "]", k);
      if ((rc = get_id(d, r.p, name, &m->open.learners[k]))) return rc;
      rd_skip(&r);
    }
    m->open.n_learners = n;
    return 0;
  }
  case PROTO_T_JOIN:
    if ((rc = get_opt_str(d, f[F_CODE], "code", 1, PROTO_MAX_CODE, &m->join.has_code,
                          &m->join.code)))
      return rc;
    if ((rc = get_opt_str(d, f[F_ROOM], "room", 1, PROTO_MAX_ROOM, &m->join.has_room,
                          &m->join.room)))
      return rc;
    if (m->join.has_code && m->join.has_room)
      return fail(d->err, PROTO_BAD_REQUEST, "Send either 'code' or 'room' to join, not both.");
    if (!m->join.has_code && !m->join.has_room)
      return fail(d->err, PROTO_BAD_REQUEST, "Field 'code' or 'room' is required to join.");
    return 0;
  case PROTO_T_ADD:
  case PROTO_T_REMOVE:
    /* add and remove share one layout */
    if ((rc = get_room(d, f, &m->add.room))) return rc;
    return get_id(d, f[F_LEARNER], "learner", &m->add.learner);
  case PROTO_T_STEP:
    if ((rc = get_room(d, f, &m->step.room))) return rc;
    return get_task(d, f[F_TASK], "task", &m->step.task);
  case PROTO_T_ANSWER:
    if ((rc = get_room(d, f, &m->answer.room))) return rc;
    if ((rc = get_task(d, f[F_TASK], "task", &m->answer.task))) return rc;
    if ((rc = decode_value(d, f[F_VALUE], &m->answer.value, m->answer.items))) return rc;
    if ((rc = get_str(d, f[F_KEY], "key", 1, PROTO_MAX_KEY, &m->answer.key))) return rc;
    m->answer.has_learner = present(f[F_LEARNER]);
    if (m->answer.has_learner) return get_id(d, f[F_LEARNER], "learner", &m->answer.learner);
    return 0;
  case PROTO_T_MARK: {
    proto_str res;
    if ((rc = get_room(d, f, &m->mark.room))) return rc;
    m->mark.n_learners = 0;
    if (present(f[F_LEARNERS])) {
      /* a group mark: one event for several learners */
      rd r;
      uint32_t n;
      uint32_t max = clamp_u32(d->lim->max_learners, PROTO_MAX_LEARNERS);
      if (present(f[F_LEARNER]))
        return fail(d->err, PROTO_BAD_REQUEST,
                    "Send either 'learner' or 'learners' to mark, not both.");
      if ((rc = get_array(d, f[F_LEARNERS], "learners", "user ids", max, &r, &n))) return rc;
      if (n == 0)
        return fail(d->err, PROTO_BAD_REQUEST, "Field 'learners' must name at least one learner.");
      for (uint32_t k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "learners[%" PRIu32 "]", k);
        if ((rc = get_id(d, r.p, name, &m->mark.learners[k]))) return rc;
        for (uint32_t j = 0; j < k; j++)
          if (m->mark.learners[j] == m->mark.learners[k])
            return fail(d->err, PROTO_BAD_REQUEST,
                        "Learner %" PRIu64 " is listed twice in 'learners'.", m->mark.learners[k]);
        rd_skip(&r);
      }
      m->mark.n_learners = n;
      m->mark.learner = m->mark.learners[0];
    } else if ((rc = get_id(d, f[F_LEARNER], "learner", &m->mark.learner))) {
      return rc;
    }
    if ((rc = get_task(d, f[F_TASK], "task", &m->mark.task))) return rc;
    if (!present(f[F_RESULT])) return missing(d, "result");
    rc = get_str(d, f[F_RESULT], "result", 0, 16, &res);
    if (rc == 0 && proto_str_eq(res, "pass"))
      m->mark.result = PROTO_RESULT_PASS;
    else if (rc == 0 && proto_str_eq(res, "fail"))
      m->mark.result = PROTO_RESULT_FAIL;
    else
      return fail(d->err, PROTO_BAD_REQUEST, "Field 'result' must be \"pass\" or \"fail\".");
    if ((rc = get_opt_str(d, f[F_NOTE], "note", 0, PROTO_MAX_NOTE, &m->mark.has_note,
                          &m->mark.note)))
      return rc;
    return get_evidence(d, f[F_EVIDENCE], &m->mark.has_evidence, &m->mark.evidence);
  }
  case PROTO_T_APPROVE:
    if ((rc = get_room(d, f, &m->approve.room))) return rc;
    return decode_decisions(d, f[F_DECISIONS], m);
  case PROTO_T_SYNC:
    if ((rc = get_room(d, f, &m->sync.room))) return rc;
    return get_uint(d, f[F_SINCE], "since", UINT64_MAX, &m->sync.since);
  case PROTO_T_LEAVE:
  case PROTO_T_CLOSE: return get_room(d, f, &m->leave.room); /* leave and close share one layout */
  case PROTO_T_PING:
  case PROTO_T_WATCH:
  case PROTO_T_UNWATCH: return 0;
  case PROTO_T_CONFIRM_CODE: return get_room(d, f, &m->confirm_code.room);
  case PROTO_T_CONFIRM:
    if ((rc = get_room(d, f, &m->confirm.room))) return rc;
    return get_str(d, f[F_CODE], "code", 1, PROTO_MAX_CODE, &m->confirm.code);
  case PROTO_T_NONE: break;
  }
  return fail(d->err, PROTO_INTERNAL, "The message type could not be handled.");
}

static int decode_fields(const uint8_t *buf, size_t len, const proto_limits *lim, proto_msg *m,
                         proto_error *err) {
  dctx d = {.lim = lim, .err = err, .end = buf + len};
  const uint8_t *f[F_COUNT];
  rd r = {buf, buf + len};
  int rc;

  if ((rc = scan_map(&d, &r, field_names, F_COUNT, f, ""))) return rc;

  if (present(f[F_RID])) {
    if ((rc = get_uint(&d, f[F_RID], "rid", UINT64_MAX, &m->rid))) return rc;
    m->has_rid = true;
  }

  proto_str t;
  if (!present(f[F_T]))
    return fail(err, PROTO_BAD_REQUEST, "Field 't' (the message type) is required.");
  mp_hdr th = peek(&d, f[F_T], &r);
  if (th.kind != MP_STR)
    return fail(err, PROTO_BAD_REQUEST, "Field 't' must be a string naming the message type.");
  t.ptr = (const char *)r.p;
  t.len = th.n;
  for (unsigned k = 1; k < N_TYPES; k++) {
    if (proto_str_eq(t, type_names[k])) {
      m->type = (proto_type)k;
      break;
    }
  }
  if (m->type == PROTO_T_NONE) {
    char shown[40];
    quote_client_text(shown, sizeof shown, t.ptr, t.len, 24);
    return fail(err, PROTO_BAD_REQUEST, "Unknown message type '%s'.", shown);
  }
  return decode_body(&d, f, m);
}

int proto_decode(const uint8_t *buf, size_t len, const proto_limits *lim, proto_msg *out,
                 proto_error *err) {
  proto_limits l = lim ? *lim : proto_limits_default();
  int rc;

  /* the walk recurses once per level: never let a setting deepen the stack */
  if (l.max_depth > PROTO_HARD_MAX_DEPTH) l.max_depth = PROTO_HARD_MAX_DEPTH;
  lim = &l;
  err->code = PROTO_OK;
  err->has_rid = false;
  err->rid = 0;
  err->msg[0] = '\0';
  if (!buf && len > 0) return fail(err, PROTO_INTERNAL, "No frame buffer was given.");

  if ((rc = validate_frame(buf, len, lim, err))) return rc;

  out->type = PROTO_T_NONE;
  out->has_rid = false;
  out->rid = 0;
  rc = decode_fields(buf, len, lim, out, err);
  if (rc) {
    /* prefer the rid decode_fields read; else keep what validation saw */
    if (out->has_rid) {
      err->has_rid = true;
      err->rid = out->rid;
    }
    return rc;
  }
  err->has_rid = out->has_rid;
  err->rid = out->rid;
  return 0;
}

/* ======================================================================== */
/* Output buffer                                                            */
/* ======================================================================== */

void proto_buf_init(proto_buf *b, size_t headroom) {
  b->data = NULL;
  b->head = headroom;
  b->len = 0;
  b->cap = 0;
  b->failed = false;
}

void proto_buf_clear(proto_buf *b) {
  b->len = 0;
  b->failed = false;
}

void proto_buf_free(proto_buf *b) {
  free(b->data);
  proto_buf_init(b, b->head);
}

/* msgpack_packer write callback: append n bytes, growing geometrically. */
static int buf_write(void *data, const char *p, size_t n) {
  proto_buf *b = data;
  if (b->failed) return -1;
  if (n == 0) return 0;
  if (n > b->cap - b->len) {
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    if (want < b->len || want > SIZE_MAX / 2 - b->head) {
      b->failed = true;
      return -1;
    }
    while (cap < want) cap *= 2;
    uint8_t *nd = realloc(b->data, b->head + cap);
    if (!nd) {
      b->failed = true;
      return -1;
    }
    b->data = nd;
    b->cap = cap;
  }
  memcpy(b->data + b->head + b->len, p, n);
  b->len += n;
  return 0;
}

/* ======================================================================== */
/* Encoders                                                                 */
/* ======================================================================== */

/* Each encoder packs without checking every call: buf_write latches
 * b->failed on the first problem and refuses everything after it, and
 * enc_end rolls the buffer back to where the encode started. */
typedef struct enc {
  msgpack_packer pk;
  proto_buf *b;
  size_t start;
} enc;

static void enc_begin(enc *e, proto_buf *b) {
  e->b = b;
  e->start = b->len;
  b->failed = false;
  msgpack_packer_init(&e->pk, b, buf_write);
}

static int enc_end(enc *e) {
  if (e->b->failed) {
    e->b->len = e->start;
    return -1;
  }
  return 0;
}

static void enc_cstr(enc *e, const char *s) {
  if (!s) {
    e->b->failed = true; /* an enum value outside its range */
    return;
  }
  msgpack_pack_str_with_body(&e->pk, s, strlen(s));
}

static void enc_str(enc *e, proto_str s) {
  msgpack_pack_str_with_body(&e->pk, s.len ? s.ptr : "", s.len);
}

static void enc_u(enc *e, uint64_t v) { msgpack_pack_uint64(&e->pk, v); }
static void enc_bool(enc *e, bool v) { v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk); }
static void enc_map(enc *e, size_t n) { msgpack_pack_map(&e->pk, n); }
static void enc_array(enc *e, size_t n) { msgpack_pack_array(&e->pk, n); }

/* Map header plus `t` and, when present, `rid`. `n` counts the other keys. */
static void enc_head(enc *e, const char *t, proto_rid rid, size_t n) {
  enc_map(e, n + 1 + (rid.has ? 1u : 0u));
  enc_cstr(e, "t");
  enc_cstr(e, t);
  if (rid.has) {
    enc_cstr(e, "rid");
    enc_u(e, rid.v);
  }
}

static void enc_value(enc *e, const proto_value *v) {
  switch (v->kind) {
  case PROTO_VALUE_INT: msgpack_pack_int64(&e->pk, v->i); return;
  case PROTO_VALUE_INTS:
    enc_array(e, v->n_items);
    for (uint32_t k = 0; k < v->n_items; k++) msgpack_pack_int64(&e->pk, v->items[k]);
    return;
  case PROTO_VALUE_STR: enc_str(e, v->s); return;
  case PROTO_VALUE_RAW: {
    /* relayed bytes must be exactly one sound object */
    proto_limits lim = proto_limits_default();
    proto_error err;
    vctx c = {.lim = &lim, .err = &err, .objects = 0};
    rd r = {(const uint8_t *)v->raw.ptr, (const uint8_t *)v->raw.ptr + v->raw.len};
    err.has_rid = false;
    if (v->raw.len == 0 || v_object(&c, &r, 2) != 0 || r.p != r.end) {
      e->b->failed = true;
      return;
    }
    buf_write(e->b, v->raw.ptr, v->raw.len);
    return;
  }
  }
  e->b->failed = true;
}

int proto_encode_welcome(proto_buf *b, proto_rid rid, const proto_user *user) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "welcome", rid, 1);
  enc_cstr(&e, "user");
  enc_map(&e, 3);
  enc_cstr(&e, "id");
  enc_u(&e, user->id);
  enc_cstr(&e, "name");
  enc_str(&e, user->name);
  enc_cstr(&e, "responsible");
  enc_bool(&e, user->responsible);
  return enc_end(&e);
}

int proto_encode_pong(proto_buf *b, proto_rid rid) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "pong", rid, 0);
  return enc_end(&e);
}

int proto_encode_ok(proto_buf *b, proto_rid rid, bool has_seq, uint64_t seq) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "ok", rid, has_seq ? 1 : 0);
  if (has_seq) {
    enc_cstr(&e, "seq");
    enc_u(&e, seq);
  }
  return enc_end(&e);
}

int proto_encode_ack(proto_buf *b, proto_rid rid, proto_str key, uint64_t seq) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "ack", rid, 2);
  enc_cstr(&e, "key");
  enc_str(&e, key);
  enc_cstr(&e, "seq");
  enc_u(&e, seq);
  return enc_end(&e);
}

int proto_encode_err(proto_buf *b, proto_rid rid, proto_code code, const char *msg) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "err", rid, 2);
  enc_cstr(&e, "code");
  enc_cstr(&e, proto_code_name(code));
  enc_cstr(&e, "msg");
  enc_cstr(&e, msg ? msg : "");
  return enc_end(&e);
}

int proto_encode_decode_error(proto_buf *b, const proto_error *err) {
  proto_rid rid = {err->has_rid, err->rid};
  return proto_encode_err(b, rid, err->code, err->msg);
}

int proto_encode_dashboard(proto_buf *b, uint64_t count) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "dashboard", PROTO_NO_RID, 1);
  enc_cstr(&e, "count");
  enc_u(&e, count);
  return enc_end(&e);
}

int proto_encode_dashboard_ask(proto_buf *b, uint64_t count, uint64_t requests,
                               const proto_ask *ask) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "dashboard", PROTO_NO_RID, ask ? 3 : 2);
  enc_cstr(&e, "count");
  enc_u(&e, count);
  enc_cstr(&e, "requests");
  enc_u(&e, requests);
  if (ask) {
    enc_cstr(&e, "request");
    enc_map(&e, 3);
    enc_cstr(&e, "learner");
    enc_map(&e, 2);
    enc_cstr(&e, "id");
    enc_u(&e, ask->learner);
    enc_cstr(&e, "name");
    enc_str(&e, ask->learner_name);
    enc_cstr(&e, "module");
    enc_map(&e, 2);
    enc_cstr(&e, "id");
    enc_u(&e, ask->module);
    enc_cstr(&e, "title");
    enc_str(&e, ask->module_title);
    enc_cstr(&e, "requested_at");
    enc_u(&e, ask->requested_at);
  }
  return enc_end(&e);
}

int proto_encode_online(proto_buf *b, proto_rid rid, const proto_online *people, uint32_t n) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "online", rid, 1);
  enc_cstr(&e, "responsibles");
  enc_array(&e, n);
  for (uint32_t k = 0; k < n; k++) {
    enc_map(&e, 3);
    enc_cstr(&e, "id");
    enc_u(&e, people[k].id);
    enc_cstr(&e, "name");
    enc_str(&e, people[k].name);
    enc_cstr(&e, "online");
    enc_bool(&e, people[k].online);
  }
  return enc_end(&e);
}

int proto_encode_approved(proto_buf *b, proto_rid rid, const proto_approval_result *results,
                          uint32_t n) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "approved", rid, 1);
  enc_cstr(&e, "results");
  enc_array(&e, n);
  for (uint32_t k = 0; k < n; k++) {
    const proto_approval_result *r = &results[k];
    bool with_completion = r->status == PROTO_STATUS_APPROVED && r->has_completion;
    bool with_reason = r->status == PROTO_STATUS_REFUSED && r->reason.len > 0;
    enc_map(&e, 2 + (with_completion ? 1u : 0u) + (with_reason ? 1u : 0u));
    enc_cstr(&e, "learner");
    enc_u(&e, r->learner);
    enc_cstr(&e, "status");
    enc_cstr(&e, status_name(r->status));
    if (with_completion) {
      enc_cstr(&e, "completion");
      enc_u(&e, r->completion);
    }
    if (with_reason) {
      enc_cstr(&e, "reason");
      enc_str(&e, r->reason);
    }
  }
  return enc_end(&e);
}

/* --- visibility --------------------------------------------------------- */

/* The visibility rule, in one place: what a learner may see of another
 * learner's record (answer value, mark result and note, approval status).
 * Who else relies on it: proto_event_hidden_for and the snapshot encoder
 * below; the server's delivery (server/live_room.c, hidden_for), which
 * applies it to a stored event's `subject`; the server's event encoding
 * (server/live_op.c, live_event), which stores a redacted body exactly when
 * proto_event_hidden_for says some viewer needs one; and storage/room.lua,
 * whose emit records that subject with each event. */
bool proto_record_hidden_for(uint64_t learner, proto_viewer viewer) {
  return !viewer.is_host && viewer.user != learner;
}

proto_view proto_group_view(const uint64_t *learners, uint32_t n, proto_viewer viewer) {
  if (viewer.is_host) return PROTO_VIEW_WHOLE;
  for (uint32_t i = 0; i < n; i++)
    if (learners[i] == viewer.user) return PROTO_VIEW_OWN;
  return PROTO_VIEW_REDACTED;
}

bool proto_event_hidden_for(const proto_event *ev, proto_viewer viewer) {
  switch (ev->type) {
  case PROTO_EV_ANSWER: return proto_record_hidden_for(ev->answer.learner, viewer);
  case PROTO_EV_MARK: return proto_record_hidden_for(ev->mark.learner, viewer);
  case PROTO_EV_APPROVED: return proto_record_hidden_for(ev->approved.learner, viewer);
  case PROTO_EV_CONFIRMED: return proto_record_hidden_for(ev->confirmed.learner, viewer);
  default: return false;
  }
}

/* --- room events -------------------------------------------------------- */

/* The body of an answer (event or snapshot record). A non-NULL `type` is
 * written first as the event's `type` key. */
static void enc_answer_body(enc *e, const char *type, uint64_t learner, uint32_t task, uint64_t by,
                            const proto_value *value, bool redacted) {
  enc_map(e, (type ? 1u : 0u) + 3 + (redacted ? 0u : 1u));
  if (type) {
    enc_cstr(e, "type");
    enc_cstr(e, type);
  }
  enc_cstr(e, "learner");
  enc_u(e, learner);
  enc_cstr(e, "task");
  enc_u(e, task);
  enc_cstr(e, "by");
  enc_u(e, by);
  if (!redacted) {
    enc_cstr(e, "value");
    enc_value(e, value);
  }
}

/* The body of a mark (event or snapshot record), `type` as above. */
static void enc_mark_body(enc *e, const char *type, uint64_t learner, uint32_t task,
                          proto_result result, bool has_note, proto_str note, bool has_evidence,
                          proto_str evidence, bool redacted) {
  enc_map(e, (type ? 1u : 0u) + 2 +
                 (redacted ? 0u : 1u + (has_note ? 1u : 0u) + (has_evidence ? 1u : 0u)));
  if (type) {
    enc_cstr(e, "type");
    enc_cstr(e, type);
  }
  enc_cstr(e, "learner");
  enc_u(e, learner);
  enc_cstr(e, "task");
  enc_u(e, task);
  if (!redacted) {
    enc_cstr(e, "result");
    enc_cstr(e, result_name(result));
    if (has_note) {
      enc_cstr(e, "note");
      enc_str(e, note);
    }
    if (has_evidence) {
      enc_cstr(e, "evidence");
      enc_str(e, evidence);
    }
  }
}

/* The body of an outcome (approved event or snapshot record), `type` as
 * above. */
static void enc_outcome_body(enc *e, const char *type, uint64_t learner, proto_status status,
                             bool has_completion, uint64_t completion, bool redacted) {
  bool with_completion = !redacted && has_completion;
  enc_map(e, (type ? 1u : 0u) + 1 + (redacted ? 0u : 1u) + (with_completion ? 1u : 0u));
  if (type) {
    enc_cstr(e, "type");
    enc_cstr(e, type);
  }
  enc_cstr(e, "learner");
  enc_u(e, learner);
  if (!redacted) {
    enc_cstr(e, "status");
    enc_cstr(e, status_name(status));
  }
  if (with_completion) {
    enc_cstr(e, "completion");
    enc_u(e, completion);
  }
}

/* The `e` map, `type` first. */
static void enc_event(enc *e, const proto_event *ev, bool redacted) {
  const char *type = proto_ev_type_name(ev->type);
  if (strcmp(type, "?") == 0) {
    e->b->failed = true;
    return;
  }
#define TYPE_KEY() (enc_cstr(e, "type"), enc_cstr(e, type))
  switch (ev->type) {
  case PROTO_EV_JOINED:
  case PROTO_EV_LEFT: { /* joined and left share one layout */
    bool added = ev->type == PROTO_EV_JOINED && ev->joined.added;
    enc_map(e, added ? 4 : 3);
    TYPE_KEY();
    enc_cstr(e, "user");
    enc_u(e, ev->joined.user);
    enc_cstr(e, "role");
    enc_cstr(e, role_name(ev->joined.role));
    if (added) {
      enc_cstr(e, "added");
      enc_bool(e, true);
    }
    break;
  }
  case PROTO_EV_ADDED:
  case PROTO_EV_REMOVED: /* added and removed share one layout */
    enc_map(e, 2);
    TYPE_KEY();
    enc_cstr(e, "learner");
    enc_u(e, ev->added.learner);
    break;
  case PROTO_EV_STEP:
    enc_map(e, 2);
    TYPE_KEY();
    enc_cstr(e, "task");
    enc_u(e, ev->step.task);
    break;
  case PROTO_EV_ANSWER:
    enc_answer_body(e, type, ev->answer.learner, ev->answer.task, ev->answer.by, &ev->answer.value,
                    redacted);
    break;
  case PROTO_EV_MARK:
    enc_mark_body(e, type, ev->mark.learner, ev->mark.task, ev->mark.result, ev->mark.has_note,
                  ev->mark.note, ev->mark.has_evidence, ev->mark.evidence, redacted);
    break;
  case PROTO_EV_APPROVED:
    enc_outcome_body(e, type, ev->approved.learner, ev->approved.status,
                     ev->approved.has_completion, ev->approved.completion, redacted);
    break;
  case PROTO_EV_CLOSED:
    enc_map(e, 1);
    TYPE_KEY();
    break;
  case PROTO_EV_CONFIRMED: /* others learn that, not the completion or the times */
    enc_map(e, redacted ? 2 : 5);
    TYPE_KEY();
    enc_cstr(e, "learner");
    enc_u(e, ev->confirmed.learner);
    if (!redacted) {
      enc_cstr(e, "completion");
      enc_u(e, ev->confirmed.completion);
      enc_cstr(e, "decided_at");
      enc_u(e, ev->confirmed.decided_at);
      enc_cstr(e, "confirmed_at");
      enc_u(e, ev->confirmed.confirmed_at);
    }
    break;
  }
#undef TYPE_KEY
}

int proto_encode_ev(proto_buf *b, proto_str room, uint64_t seq, const proto_event *ev,
                    bool redacted) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "ev", PROTO_NO_RID, 3);
  enc_cstr(&e, "room");
  enc_str(&e, room);
  enc_cstr(&e, "seq");
  enc_u(&e, seq);
  enc_cstr(&e, "e");
  enc_event(&e, ev, redacted);
  return enc_end(&e);
}

int proto_encode_confirm_code(proto_buf *b, proto_rid rid, proto_str room, proto_str code,
                              uint64_t ms) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "confirm_code", rid, 3);
  enc_cstr(&e, "room");
  enc_str(&e, room);
  enc_cstr(&e, "code");
  enc_str(&e, code);
  enc_cstr(&e, "ms");
  enc_u(&e, ms);
  return enc_end(&e);
}

int proto_encode_invite(proto_buf *b, proto_str room, proto_str code, uint64_t module,
                        proto_str title, uint64_t host, proto_str host_name) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "invite", PROTO_NO_RID, 4);
  enc_cstr(&e, "room");
  enc_str(&e, room);
  enc_cstr(&e, "code");
  enc_str(&e, code);
  enc_cstr(&e, "module");
  enc_map(&e, 2);
  enc_cstr(&e, "id");
  enc_u(&e, module);
  enc_cstr(&e, "title");
  enc_str(&e, title);
  enc_cstr(&e, "host");
  enc_map(&e, 2);
  enc_cstr(&e, "id");
  enc_u(&e, host);
  enc_cstr(&e, "name");
  enc_str(&e, host_name);
  return enc_end(&e);
}

int proto_encode_event_body(proto_buf *b, const proto_event *ev, bool redacted) {
  enc e;
  enc_begin(&e, b);
  enc_event(&e, ev, redacted);
  return enc_end(&e);
}

int proto_encode_ev_raw(proto_buf *b, proto_str room, uint64_t seq, const uint8_t *body,
                        size_t len) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "ev", PROTO_NO_RID, 3);
  enc_cstr(&e, "room");
  enc_str(&e, room);
  enc_cstr(&e, "seq");
  enc_u(&e, seq);
  enc_cstr(&e, "e");
  buf_write(b, (const char *)body, len);
  return enc_end(&e);
}

int proto_encode_ev_for(proto_buf *b, proto_str room, uint64_t seq, const proto_event *ev,
                        proto_viewer viewer) {
  return proto_encode_ev(b, room, seq, ev, proto_event_hidden_for(ev, viewer));
}

/* --- snapshot ------------------------------------------------------------ */

int proto_encode_snapshot(proto_buf *b, proto_rid rid, const proto_snapshot *s,
                          proto_viewer viewer) {
  enc e;
  enc_begin(&e, b);
  enc_head(&e, "snapshot", rid, 11);

  enc_cstr(&e, "room");
  enc_str(&e, s->room);
  enc_cstr(&e, "seq");
  enc_u(&e, s->seq);
  enc_cstr(&e, "code");
  enc_str(&e, s->code);

  enc_cstr(&e, "module");
  enc_map(&e, 3u + (s->module.confirm ? 1u : 0u) + (s->module.learner_evidence ? 1u : 0u));
  if (s->module.confirm) {
    enc_cstr(&e, "confirm");
    enc_bool(&e, true);
  }
  if (s->module.learner_evidence) {
    enc_cstr(&e, "learner_evidence");
    enc_bool(&e, true);
  }
  enc_cstr(&e, "id");
  enc_u(&e, s->module.id);
  enc_cstr(&e, "title");
  enc_str(&e, s->module.title);
  enc_cstr(&e, "tasks");
  enc_array(&e, s->module.n_tasks);
  for (uint32_t k = 0; k < s->module.n_tasks; k++) {
    const proto_task_info *t = &s->module.tasks[k];
    enc_map(&e, 2 + (t->n_options ? 1u : 0u));
    enc_cstr(&e, "kind");
    enc_cstr(&e, task_kind_name(t->kind));
    enc_cstr(&e, "text");
    enc_str(&e, t->text);
    if (t->n_options) {
      enc_cstr(&e, "options");
      enc_array(&e, t->n_options);
      for (uint32_t o = 0; o < t->n_options; o++) enc_str(&e, t->options[o]);
    }
  }

  enc_cstr(&e, "task");
  enc_u(&e, s->task);

  enc_cstr(&e, "host");
  enc_map(&e, 2);
  enc_cstr(&e, "id");
  enc_u(&e, s->host.id);
  enc_cstr(&e, "name");
  enc_str(&e, s->host.name);

  enc_cstr(&e, "learners");
  enc_array(&e, s->n_learners);
  for (uint32_t k = 0; k < s->n_learners; k++) {
    enc_map(&e, 3);
    enc_cstr(&e, "id");
    enc_u(&e, s->learners[k].id);
    enc_cstr(&e, "name");
    enc_str(&e, s->learners[k].name);
    enc_cstr(&e, "online");
    enc_bool(&e, s->learners[k].online);
  }

  enc_cstr(&e, "answers");
  enc_array(&e, s->n_answers);
  for (uint32_t k = 0; k < s->n_answers; k++) {
    const proto_answer_rec *a = &s->answers[k];
    enc_answer_body(&e, NULL, a->learner, a->task, a->by, &a->value,
                    proto_record_hidden_for(a->learner, viewer));
  }

  enc_cstr(&e, "marks");
  enc_array(&e, s->n_marks);
  for (uint32_t k = 0; k < s->n_marks; k++) {
    const proto_mark_rec *mk = &s->marks[k];
    enc_mark_body(&e, NULL, mk->learner, mk->task, mk->result, mk->has_note, mk->note,
                  mk->has_evidence, mk->evidence, proto_record_hidden_for(mk->learner, viewer));
  }

  enc_cstr(&e, "outcomes");
  enc_array(&e, s->n_outcomes);
  for (uint32_t k = 0; k < s->n_outcomes; k++) {
    const proto_outcome_rec *oc = &s->outcomes[k];
    enc_outcome_body(&e, NULL, oc->learner, oc->status, oc->has_completion, oc->completion,
                     proto_record_hidden_for(oc->learner, viewer));
  }

  enc_cstr(&e, "state");
  enc_cstr(&e, s->closed ? "closed" : "open");
  return enc_end(&e);
}
