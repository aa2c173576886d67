/*
 * rxparse — reads `t`, `seq` and the answer's intended time out of a msgpack
 * frame in place (rxparse.h). A bounded walk: every length is checked
 * against the bytes left before it is used, and a container's declared
 * count can never make the walk run past the frame (each value takes at
 * least one byte).
 */
#include "rxparse.h"

#include <stdlib.h>
#include <string.h>

typedef enum { V_UINT, V_NEG, V_STR, V_MAP, V_ARR, V_SCALAR } vkind;

typedef struct cur {
  const uint8_t *p, *end;
} cur;

typedef struct val {
  vkind k;
  uint64_t u;       /* V_UINT: value; V_MAP / V_ARR: count */
  const uint8_t *s; /* V_STR: bytes */
  size_t n;         /* V_STR: length */
} val;

static int need(const cur *c, size_t n) { return (size_t)(c->end - c->p) >= n; }

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* Reads one value's header; strings, bin, ext and numbers are consumed
 * whole, a map or array only up to its elements. 0, or -1 when malformed. */
static inline __attribute__((always_inline)) int head(cur *c, val *v) {
  if (!need(c, 1)) return -1;
  uint8_t b = *c->p++;
  size_t body = 0; /* bytes of bin/ext/float to skip */
  int w = 0;       /* width of a length or number field */
  if (b <= 0x7f) {
    v->k = V_UINT;
    v->u = b;
    return 0;
  }
  if (b >= 0xe0) {
    v->k = V_NEG;
    return 0;
  }
  if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
    v->k = (b & 0xf0) == 0x80 ? V_MAP : V_ARR;
    v->u = b & 0x0f;
    return 0;
  }
  if ((b & 0xe0) == 0xa0) {
    v->n = b & 0x1f;
    goto str;
  }
  switch (b) {
  case 0xc0: /* nil */
  case 0xc2: /* false */
  case 0xc3: /* true */ v->k = V_SCALAR; return 0;
  case 0xc4:
  case 0xc5:
  case 0xc6: /* bin 8/16/32 */
    w = 1 << (b - 0xc4);
    if (!need(c, (size_t)w)) return -1;
    body = (size_t)be(c->p, w);
    c->p += w;
    break;
  case 0xc7:
  case 0xc8:
  case 0xc9: /* ext 8/16/32: length, type, data */
    w = 1 << (b - 0xc7);
    if (!need(c, (size_t)w)) return -1;
    body = (size_t)be(c->p, w);
    c->p += w;
    if (body > SIZE_MAX - 1) return -1;
    body += 1;
    break;
  case 0xca: body = 4; break;
  case 0xcb: body = 8; break;
  case 0xcc:
  case 0xcd:
  case 0xce:
  case 0xcf: /* uint 8..64 */
    w = 1 << (b - 0xcc);
    if (!need(c, (size_t)w)) return -1;
    v->k = V_UINT;
    v->u = be(c->p, w);
    c->p += w;
    return 0;
  case 0xd0:
  case 0xd1:
  case 0xd2:
  case 0xd3: { /* int 8..64: non-negative reads as uint */
    w = 1 << (b - 0xd0);
    if (!need(c, (size_t)w)) return -1;
    uint64_t u = be(c->p, w);
    c->p += w;
    int neg = (c->p[-w] & 0x80) != 0;
    v->k = neg ? V_NEG : V_UINT;
    v->u = u;
    return 0;
  }
  case 0xd4:
  case 0xd5:
  case 0xd6:
  case 0xd7:
  case 0xd8: /* fixext 1..16, plus type */ body = ((size_t)1 << (b - 0xd4)) + 1; break;
  case 0xd9:
  case 0xda:
  case 0xdb: /* str 8/16/32 */
    w = 1 << (b - 0xd9);
    if (!need(c, (size_t)w)) return -1;
    v->n = (size_t)be(c->p, w);
    c->p += w;
    goto str;
  case 0xdc:
  case 0xdd: /* array 16/32 */
  case 0xde:
  case 0xdf: /* map 16/32 */
    w = b == 0xdc || b == 0xde ? 2 : 4;
    if (!need(c, (size_t)w)) return -1;
    v->k = b >= 0xde ? V_MAP : V_ARR;
    v->u = be(c->p, w);
    c->p += w;
    return 0;
  default: return -1; /* 0xc1: never used */
  }
  if (!need(c, body)) return -1;
  c->p += body;
  v->k = V_SCALAR;
  return 0;
str:
  if (!need(c, v->n)) return -1;
  v->k = V_STR;
  v->s = c->p;
  c->p += v->n;
  return 0;
}

/* Skips the elements of a container whose header v was just read. */
static int skip_body(cur *c, const val *v) {
  uint64_t left = v->k == V_MAP ? 2 * v->u : v->k == V_ARR ? v->u : 0;
  while (left) {
    if (left > (uint64_t)(c->end - c->p)) return -1; /* each value takes a byte */
    val e;
    if (head(c, &e)) return -1;
    left--;
    if (e.k == V_MAP) left += 2 * e.u;
    if (e.k == V_ARR) left += e.u;
  }
  return 0;
}

static int str_is(const val *v, const char *s, size_t n) {
  return v->k == V_STR && v->n == n && !memcmp(v->s, s, n);
}

/* strtoull of the digits, cut to as many bytes as otj-load's mp_copy kept */
uint64_t rx_due(const rx_msg *m) {
  char tmp[64];
  size_t n = m->due_n;
  if (!m->due_s) return 0;
  if (n > m->due_max) n = m->due_max;
  memcpy(tmp, m->due_s, n);
  tmp[n] = '\0';
  return strtoull(tmp, NULL, 10);
}

/* The body of `e` (its header v just read), walked once: e.type "answer"
 * and e.value "T<ns>" give the answer's intended time. */
static int read_e(cur *c, const val *e, rx_msg *m) {
  if (e->k != V_MAP) return skip_body(c, e);
  int have_type = 0, have_value = 0;
  val type = {0}, value = {0};
  for (uint64_t i = 0; i < e->u; i++) {
    val k, v;
    if (head(c, &k) || skip_body(c, &k) || head(c, &v)) return -1;
    if (!have_type && str_is(&k, "type", 4)) {
      have_type = 1;
      type = v;
    } else if (!have_value && str_is(&k, "value", 5)) {
      have_value = 1;
      value = v;
    }
    if (skip_body(c, &v)) return -1;
  }
  if (!have_type || !str_is(&type, "answer", 6)) return 0;
  m->answer = 1;
  if (have_value && value.k == V_STR && value.n > 1 && value.s[0] == 'T') {
    m->due_s = value.s + 1; /* "T" + at most 30 digits: a 32-byte copy */
    m->due_n = value.n - 1;
    m->due_max = 30;
  }
  return 0;
}

rx_kind rx_read(const uint8_t *buf, size_t len, rx_msg *m) {
  cur c = {buf, buf + len};
  val top;
  memset(m, 0, sizeof *m);
  if (head(&c, &top) || top.k != V_MAP) return RX_OTHER;
  int have_t = 0, have_seq = 0, have_e = 0, have_key = 0;
  val t = {0}, key = {0};
  for (uint64_t i = 0; i < top.u; i++) {
    val k, v;
    if (head(&c, &k) || skip_body(&c, &k)) return RX_OTHER;
    if (head(&c, &v)) return RX_OTHER;
    if (k.k == V_STR) {
      if (!have_t && str_is(&k, "t", 1)) {
        have_t = 1;
        t = v;
      } else if (!have_seq && str_is(&k, "seq", 3)) {
        have_seq = 1;
        m->seq = v.k == V_UINT ? v.u : 0;
      } else if (!have_e && str_is(&k, "e", 1)) {
        have_e = 1;
        if (read_e(&c, &v, m)) return RX_OTHER;
        continue;
      } else if (!have_key && str_is(&k, "key", 3)) {
        have_key = 1;
        key = v;
      }
    }
    if (skip_body(&c, &v)) return RX_OTHER;
  }
  if (c.p != c.end) return RX_OTHER; /* bytes after the map */
  if (!have_t) return RX_OTHER;
  if (str_is(&t, "ev", 2)) {
    return m->kind = RX_EV;
  }
  if (str_is(&t, "ack", 3)) {
    m->answer = 0;
    m->due_s = NULL; /* the ack's own key, not an `e` it might carry */
    if (have_key && key.k == V_STR) {
      m->due_s = key.s; /* a 64-byte copy */
      m->due_n = key.n;
      m->due_max = 63;
    }
    return m->kind = RX_ACK;
  }
  return RX_OTHER;
}
