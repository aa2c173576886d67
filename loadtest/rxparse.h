/*
 * rxparse — what otj-load needs of the frames it receives most, read in
 * place.
 *
 * Every delivered `ev` and every `ack` used to be unpacked whole by msgpack-c
 * (an object tree in a zone, a string compare per key) only to read three
 * fields. rx_read walks the frame once, checks its whole structure (every
 * length within the frame, nothing after the top-level map), and picks out
 * `t`, `seq`, and: for `ev` the answer's intended time (`e.type` "answer",
 * `e.value` "T<ns>"), for `ack` the leading number of `key`. Any other frame,
 * or one it cannot read, is left to the full unpacker (RX_OTHER), so its
 * handling stays exactly as before.
 *
 * Fields read as msgpack-c + otj-load's helpers read them: the first
 * occurrence of a key wins, only string keys match, a `seq` that is not a
 * non-negative integer reads as 0.
 */
#ifndef OTJ_LOAD_RXPARSE_H
#define OTJ_LOAD_RXPARSE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RX_OTHER = 0, RX_EV, RX_ACK } rx_kind;

typedef struct rx_msg {
  rx_kind kind;
  uint64_t seq; /* 0 when absent or not a non-negative integer */
  int answer;   /* ev: e.type is "answer" */
  /* the intended time, read by rx_due: ev: e.value "T<ns>"; ack: key "<ns>-..." */
  const uint8_t *due_s;
  size_t due_n, due_max;
} rx_msg;

/* Reads buf[0, len). RX_EV or RX_ACK with *m filled, or RX_OTHER when the
 * frame is something else or not well-formed msgpack (the caller then unpacks
 * it in full, which reports it). */
rx_kind rx_read(const uint8_t *buf, size_t len, rx_msg *m);

/* The intended time the frame carries, 0 if none. Only the responsible's
 * copy of an answer needs it, so it is converted on demand. Valid while the
 * frame's buffer is. */
uint64_t rx_due(const rx_msg *m);

/* The receiver's check of a room's seq: each event must be the one after
 * the last in-order one (*last). A smaller or equal seq is a duplicate; a
 * jump loses the events in between. */
static inline void seq_check(uint64_t *last, uint64_t seq, uint64_t *lost, uint64_t *dup) {
  if (seq <= *last) {
    (*dup)++;
  } else {
    if (seq > *last + 1) *lost += seq - *last - 1;
    *last = seq;
  }
}

#endif
