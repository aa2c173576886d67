/*
 * reconnect — see reconnect.h.
 */
#include "reconnect.h"

#include <stdlib.h>

#include "hist.h"
#include "../server/backoff.h"

/* web-client/public/js/live.js: BACKOFF_MS and `base + Math.random() * 300` */
static const unsigned web_backoff_ms[] = {300, 1000, 2000, 4000};
#define WEB_BACKOFF_STEPS  (sizeof web_backoff_ms / sizeof web_backoff_ms[0])
#define WEB_JITTER_MS      300
#define NS_PER_MS          1000000ull
#define RECON_SUMMARY_WIDE 28

typedef enum { S_UNTRACKED, S_UP, S_WAITING, S_TRYING, S_BACK } slot_state;

typedef struct slot {
  uv_timer_t timer; /* first: the timer's callback finds its slot */
  int idx;
  uint8_t st, host, flaw, by_snapshot;
  unsigned attempt; /* the client's count, reset by welcome */
  uint64_t t_lost, t_try, t_start, t_conn, t_welc, t_back; /* t_try..: the last attempt */
} slot;

static struct {
  uv_loop_t *loop;
  slot *slots;
  int n;
  recon_backoff kind;
  uint64_t rng;
  recon_retry_fn *retry;
  uint64_t t_kill, t_all_back;
  int tracked_learners, tracked_hosts, pending;
  uint64_t attempts, failed, refused, back, by_snapshot, flawed;
  hist detect, rec_learner, rec_host;
  hist wait, queue, connect, hello, sync; /* the steps of the attempt that brought it back */
  hist calm[3], lag[3];                   /* before the kill, during the storm, after */
} R;

static uint64_t rng_next(void) { /* xorshift64* */
  R.rng ^= R.rng >> 12;
  R.rng ^= R.rng << 25;
  R.rng ^= R.rng >> 27;
  return R.rng * 0x2545F4914F6CDD1Dull;
}

/* The delay before retry number `attempt` of one client. */
static uint64_t delay_ms(unsigned attempt) {
  if (R.kind == RECON_BACKOFF_SERVER) return backoff_delay_ms_r(attempt, (int)(rng_next() >> 33));
  unsigned i = attempt < WEB_BACKOFF_STEPS ? attempt : (unsigned)WEB_BACKOFF_STEPS - 1;
  return web_backoff_ms[i] + rng_next() % WEB_JITTER_MS;
}

int recon_init(uv_loop_t *loop, int nconns, recon_backoff kind, uint64_t seed, recon_retry_fn *fn) {
  R.loop = loop;
  R.n = nconns;
  R.kind = kind;
  R.rng = seed ? seed : 0x9E3779B97F4A7C15ull;
  R.retry = fn;
  R.slots = calloc((size_t)(nconns > 0 ? nconns : 1), sizeof *R.slots);
  if (!R.slots) return -1;
  hist_init(&R.detect);
  hist_init(&R.rec_learner);
  hist_init(&R.rec_host);
  hist_init(&R.wait);
  hist_init(&R.queue);
  hist_init(&R.connect);
  hist_init(&R.hello);
  hist_init(&R.sync);
  for (int i = 0; i < 3; i++) {
    hist_init(&R.calm[i]);
    hist_init(&R.lag[i]);
  }
  return 0;
}

static slot *slot_of(int idx) {
  if (idx < 0 || idx >= R.n || R.slots[idx].st == S_UNTRACKED) return NULL;
  return &R.slots[idx];
}

void recon_track(int idx, int host) {
  if (idx < 0 || idx >= R.n || R.slots[idx].st != S_UNTRACKED) return;
  slot *s = &R.slots[idx];
  s->idx = idx;
  s->st = S_UP;
  s->host = host != 0;
  uv_timer_init(R.loop, &s->timer);
  if (host)
    R.tracked_hosts++;
  else
    R.tracked_learners++;
  R.pending++;
}

int recon_tracked(int idx) { return slot_of(idx) != NULL; }

void recon_killed(uint64_t t) { R.t_kill = t; }
uint64_t recon_kill_time(void) { return R.t_kill; }

static void on_due(uv_timer_t *h) {
  slot *s = (slot *)h;
  if (s->st != S_WAITING) return;
  s->st = S_TRYING;
  s->t_try = uv_hrtime();
  s->t_start = s->t_conn = s->t_welc = 0;
  R.attempts++;
  R.retry(s->idx);
}

int recon_lost(int idx, uint64_t t) {
  slot *s = slot_of(idx);
  if (!s || !R.t_kill || s->st == S_BACK) return 0;
  if (s->st == S_WAITING) return 1;
  if (s->st == S_UP) {
    s->t_lost = t;
    hist_record(&R.detect, t > R.t_kill ? t - R.t_kill : 0);
  } else {
    R.failed++; /* an attempt that did not bring it back */
  }
  s->st = S_WAITING;
  uint64_t ms = delay_ms(s->attempt);
  s->attempt++;
  uv_timer_start(&s->timer, on_due, ms, 0);
  return 1;
}

void recon_started(int idx, uint64_t t) {
  slot *s = slot_of(idx);
  if (s && s->st == S_TRYING) s->t_start = t;
}

void recon_connected(int idx, uint64_t t) {
  slot *s = slot_of(idx);
  if (s && s->st == S_TRYING) s->t_conn = t;
}

void recon_welcomed(int idx, uint64_t t) {
  slot *s = slot_of(idx);
  if (!s) return;
  s->attempt = 0;
  s->t_welc = t;
}

void recon_refused(int idx) {
  if (slot_of(idx)) R.refused++;
}

void recon_flaw(int idx) {
  slot *s = slot_of(idx);
  if (!s || s->flaw) return;
  s->flaw = 1;
  R.flawed++;
}

void recon_back(int idx, uint64_t t, int by_snapshot) {
  slot *s = slot_of(idx);
  if (!s || s->st == S_BACK || s->st == S_UP) return;
  s->st = S_BACK;
  s->t_back = t;
  s->by_snapshot = by_snapshot != 0;
  R.back++;
  if (by_snapshot) R.by_snapshot++;
  hist_record(s->host ? &R.rec_host : &R.rec_learner, t > R.t_kill ? t - R.t_kill : 0);
  if (s->t_try && s->t_start && s->t_conn && s->t_welc) {
    hist_record(&R.wait, s->t_try - R.t_kill);
    hist_record(&R.queue, s->t_start - s->t_try);
    hist_record(&R.connect, s->t_conn - s->t_start);
    hist_record(&R.hello, s->t_welc - s->t_conn);
    hist_record(&R.sync, t - s->t_welc);
  }
  if (--R.pending == 0) R.t_all_back = t;
}

int recon_rejoining(int idx) {
  slot *s = slot_of(idx);
  return s && (s->st == S_WAITING || s->st == S_TRYING);
}

int recon_pending(void) { return R.pending; }
uint64_t recon_all_back_time(void) { return R.t_all_back; }

/* Before the kill, during the storm (until all are back), after; by due. */
static void record_window(hist *w, uint64_t due, uint64_t t) {
  uint64_t ns = t > due ? t - due : 0;
  if (!R.t_kill || due < R.t_kill)
    hist_record(&w[0], ns);
  else if (!R.t_all_back || due <= R.t_all_back)
    hist_record(&w[1], ns);
  else
    hist_record(&w[2], ns);
}

void recon_calm_latency(uint64_t due, uint64_t t) { record_window(R.calm, due, t); }
void recon_send_lag(uint64_t due, uint64_t t) { record_window(R.lag, due, t); }

static double all_back_s(void) {
  return R.t_all_back ? (double)(R.t_all_back - R.t_kill) / 1e9 : -1.0;
}

int recon_ok(double bound_s) {
  double s = all_back_s();
  return R.t_kill && R.pending == 0 && R.flawed == 0 && R.by_snapshot == 0 && s >= 0 &&
         s <= bound_s;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static json_t *hist_obj(const hist *h) {
  if (!h->count) return json_pack("{s:I}", "count", (json_int_t)0);
  return json_pack("{s:I, s:f, s:f, s:f, s:f}", "count", (json_int_t)h->count, "p50_ms",
                   ms(hist_quantile(h, 0.5)), "p90_ms", ms(hist_quantile(h, 0.9)), "p99_ms",
                   ms(hist_quantile(h, 0.99)), "max_ms", ms(h->max));
}

json_t *recon_json(double bound_s, const recon_cpu *cpu) {
  double back = all_back_s();
  uint64_t n = R.back ? R.back : 1;
  json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:f, s:b}", "backoff",
                        R.kind == RECON_BACKOFF_WEB ? "web" : "server", "learners",
                        R.tracked_learners, "hosts", R.tracked_hosts, "back", (json_int_t)R.back,
                        "back_by_snapshot", (json_int_t)R.by_snapshot, "not_back", R.pending,
                        "not_gapless", (json_int_t)R.flawed, "attempts", (json_int_t)R.attempts,
                        "failed_attempts", (json_int_t)R.failed, "refused", (json_int_t)R.refused,
                        "bound_s", bound_s, "ok", recon_ok(bound_s));
  json_object_set_new(j, "all_back_s", back >= 0 ? json_real(back) : json_null());
  json_object_set_new(j, "lost_detected", hist_obj(&R.detect));
  json_object_set_new(j, "recovery_learners", hist_obj(&R.rec_learner));
  json_object_set_new(j, "recovery_hosts", hist_obj(&R.rec_host));
  json_object_set_new(j, "steps",
                      json_pack("{s:o, s:o, s:o, s:o, s:o}", "kill_to_last_attempt",
                                hist_obj(&R.wait), "generator_queue", hist_obj(&R.queue),
                                "connect_to_open", hist_obj(&R.connect), "open_to_welcome",
                                hist_obj(&R.hello), "welcome_to_synced", hist_obj(&R.sync)));
  json_object_set_new(j, "unaffected_latency",
                      json_pack("{s:o, s:o, s:o}", "before_kill", hist_obj(&R.calm[0]), "storm",
                                hist_obj(&R.calm[1]), "after", hist_obj(&R.calm[2])));
  json_object_set_new(j, "generator_send_lag",
                      json_pack("{s:o, s:o, s:o}", "before_kill", hist_obj(&R.lag[0]), "storm",
                                hist_obj(&R.lag[1]), "after", hist_obj(&R.lag[2])));
  if (cpu)
    json_object_set_new(j, "storm_cpu",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}", "window_s", cpu->window_s,
                                  "otjd_s", cpu->otjd_s, "redis_s", cpu->redis_s, "otj_load_s",
                                  cpu->otj_load_s, "otjd_us_per_reconnect",
                                  cpu->otjd_s * 1e6 / (double)n, "redis_us_per_reconnect",
                                  cpu->redis_s * 1e6 / (double)n));
  return j;
}

static void hist_row(FILE *f, const char *name, const hist *h) {
  if (!h->count) {
    fprintf(f, "  %-*s none\n", RECON_SUMMARY_WIDE, name);
    return;
  }
  fprintf(f, "  %-*s n=%-8llu p50 %8.1f  p99 %8.1f  max %8.1f ms\n", RECON_SUMMARY_WIDE, name,
          (unsigned long long)h->count, ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)),
          ms(h->max));
}

void recon_summary(FILE *f, double bound_s, const recon_cpu *cpu) {
  double back = all_back_s();
  fprintf(f, "  reconnect storm: %d learners + %d responsibles lost their server; %llu back",
          R.tracked_learners, R.tracked_hosts, (unsigned long long)R.back);
  if (back >= 0)
    fprintf(f, ", all back%s %.3f s after the kill (bound %.0f s)\n",
            R.flawed || R.by_snapshot ? " (NOT all gapless)" : " and gapless", back, bound_s);
  else
    fprintf(f, ", %d NOT back within the run (bound %.0f s)\n", R.pending, bound_s);
  fprintf(f,
          "  reconnects: %llu attempts, %llu failed, %llu refused, %llu not gapless, %llu by "
          "snapshot (%s backoff)\n",
          (unsigned long long)R.attempts, (unsigned long long)R.failed,
          (unsigned long long)R.refused, (unsigned long long)R.flawed,
          (unsigned long long)R.by_snapshot, R.kind == RECON_BACKOFF_WEB ? "web client" : "otjd");
  hist_row(f, "kill -> connection lost", &R.detect);
  hist_row(f, "kill -> learner back", &R.rec_learner);
  hist_row(f, "kill -> responsible back", &R.rec_host);
  hist_row(f, "step: kill -> last attempt", &R.wait);
  hist_row(f, "step: generator queue", &R.queue);
  hist_row(f, "step: connect -> ws open", &R.connect);
  hist_row(f, "step: ws open -> welcome", &R.hello);
  hist_row(f, "step: welcome -> synced", &R.sync);
  hist_row(f, "unaffected, before the kill", &R.calm[0]);
  hist_row(f, "unaffected, during the storm", &R.calm[1]);
  hist_row(f, "unaffected, after the storm", &R.calm[2]);
  hist_row(f, "generator lag, before", &R.lag[0]);
  hist_row(f, "generator lag, storm", &R.lag[1]);
  if (cpu && R.back)
    fprintf(f,
            "  storm CPU over %.2f s: surviving otjd %.2f s (%.0f us per reconnect), redis %.2f s "
            "(%.0f us), otj-load %.2f s\n",
            cpu->window_s, cpu->otjd_s, cpu->otjd_s * 1e6 / (double)R.back, cpu->redis_s,
            cpu->redis_s * 1e6 / (double)R.back, cpu->otj_load_s);
}
