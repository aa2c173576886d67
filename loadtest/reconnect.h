/*
 * reconnect — the bookkeeping of otj-load's reconnect storm: when each
 * connection that lost its server tries again, when it is back and
 * gapless, and how the rooms the kill did not touch fared meanwhile.
 *
 * The one design idea: the clock of the storm is the kill. Every tracked
 * connection is a small state machine (up → lost → waiting → trying → back)
 * timed from that moment, and retries follow the schedule of a real client
 * (the web client's backoff and jitter, or otjd's own towards Redis), each
 * on its own libuv timer. The module knows nothing of sockets or of the
 * protocol: otj_load.c tells it what happened, and is called back when a
 * connection's next attempt is due.
 */
#ifndef OTJ_LOAD_RECONNECT_H
#define OTJ_LOAD_RECONNECT_H

#include <stdint.h>
#include <stdio.h>

#include <uv.h>
#include <jansson.h>

/* The retry schedule. WEB: web-client/public/js/live.js (300, 1000, 2000,
 * 4000 ms by attempt, plus 0..300 ms uniform jitter, the attempt count reset
 * by `welcome`). SERVER: server/backoff.h (100 ms doubled per attempt, capped
 * at 5 s, equal jitter). */
typedef enum { RECON_BACKOFF_WEB, RECON_BACKOFF_SERVER } recon_backoff;

/* Called when connection idx should try again (connect, hello, sync). */
typedef void recon_retry_fn(int idx);

/* CPU the storm cost, measured by the caller between the kill and the
 * moment every connection was back (or the bound). */
typedef struct recon_cpu {
  double window_s;
  double otjd_s; /* the surviving instance(s) */
  double redis_s;
  double otj_load_s;
} recon_cpu;

/* Sets up for nconns connection slots (indexes 0..nconns-1). seed drives the
 * jitter. Returns 0, or -1 when out of memory. */
int recon_init(uv_loop_t *loop, int nconns, recon_backoff kind, uint64_t seed, recon_retry_fn *fn);

/* Connection idx is on the instance that will be killed; it will have to
 * come back. host: it is a room's responsible, not a learner. */
void recon_track(int idx, int host);
/* 1 when idx is tracked. */
int recon_tracked(int idx);

/* The victim was killed at t (ns, uv_hrtime clock). */
void recon_killed(uint64_t t);
uint64_t recon_kill_time(void);

/* Connection idx lost its server, or an attempt of it failed (connect error,
 * closed before it was back): the next attempt is scheduled by the backoff.
 * Returns 1 when the storm takes care of it; 0 for an untracked connection,
 * one already back, or any before the kill (the caller's usual failure). */
int recon_lost(int idx, uint64_t t);
/* idx's attempt really starts connecting (the generator bounds the connects
 * in flight, so an attempt may wait for a slot: its own limit, reported). */
void recon_started(int idx, uint64_t t);
/* idx's attempt has its websocket open (ESTABLISHED). */
void recon_connected(int idx, uint64_t t);
/* idx got `welcome` on its new connection: the client's attempt count is
 * reset (as the web client does). */
void recon_welcomed(int idx, uint64_t t);
/* The server refused idx's rejoin with an `err` (counted; the caller drops
 * the connection, which then counts as lost). */
void recon_refused(int idx);
/* idx saw a lost or duplicated seq: it is not gapless. */
void recon_flaw(int idx);
/* idx is in its room again, up to date as of its sync's `ok` (or a
 * snapshot when the room's log no longer reached back). */
void recon_back(int idx, uint64_t t, int by_snapshot);

/* 1 while idx is tracked, lost and not back yet. */
int recon_rejoining(int idx);
/* Tracked connections not back yet. */
int recon_pending(void);
/* When the last tracked connection came back (0 while some are missing). */
uint64_t recon_all_back_time(void);

/* An answer in an unaffected room, intended at `due`, reached its
 * responsible at t: counted before the kill, during the storm (until every
 * connection is back) or after, by `due`. */
void recon_calm_latency(uint64_t due, uint64_t t);

/* The generator wrote a frame due at `due` at t: its own lateness, by the
 * same windows (a storm that slows the generator shows here, not as the
 * server's latency). */
void recon_send_lag(uint64_t due, uint64_t t);

/* 1 when every tracked connection came back gapless within bound_s of the
 * kill. */
int recon_ok(double bound_s);

/* The report: a JSON object (new reference) and lines for people. */
json_t *recon_json(double bound_s, const recon_cpu *cpu);
void recon_summary(FILE *f, double bound_s, const recon_cpu *cpu);

#endif
