/*
 * writer — group commit on a thread of its own (see writer.h).
 */
#include "writer.h"
#include "metrics.h"
#include "otj_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct writer {
  uv_loop_t *loop;
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t cond;
  uv_async_t async;
  store *db;
  writer_job *queue_head, *queue_tail; /* loop -> thread */
  writer_job *done_head, *done_tail;   /* thread -> loop */
  int stopping;
};

static void append(writer_job **head, writer_job **tail, writer_job *j) {
  OTJ_ASSERT(j != *tail); /* a job is in at most one list, once */
  j->next = NULL;
  if (*tail)
    (*tail)->next = j;
  else
    *head = j;
  *tail = j;
}

/* Commits n decisions. When nothing could be written at all (the
 * transaction could not begin: the database busy past its timeout, the disk
 * full), store_approvals_commit leaves the decisions' rc untouched: mark
 * every one failed here, so no caller ever reports an approval that is not
 * on disk. */
static void commit(store *db, store_approval *a, size_t n) {
  uint64_t t0 = metrics_now_ns();
  int rc = store_approvals_commit(db, a, n);
  metrics_observe(&metrics.sqlite_commit, metrics_now_ns() - t0);
  if (rc != 0) {
    for (size_t i = 0; i < n; i++) {
      a[i].rc = rc;
      a[i].completion = 0;
      a[i].created = 0;
    }
  }
  for (size_t i = 0; i < n; i++) {
    metrics_decision k = a[i].rc != 0                         ? METRICS_FAILED
                         : a[i].outcome == STORE_APPROVED     ? METRICS_APPROVED
                         : a[i].outcome == STORE_NOT_APPROVED ? METRICS_NOT_APPROVED
                                                              : METRICS_REFUSED;
    atomic_fetch_add_explicit(&metrics.decisions[k], 1, memory_order_relaxed);
  }
}

static void thread_main(void *arg) {
  writer *w = arg;
  store_approval *batch = malloc(WRITER_MAX_BATCH * sizeof *batch);
  for (;;) {
    uv_mutex_lock(&w->lock);
    while (!w->queue_head && !w->stopping) uv_cond_wait(&w->cond, &w->lock);
    if (!w->queue_head && w->stopping) {
      uv_mutex_unlock(&w->lock);
      break;
    }
    /* take whole jobs while they fit one batch (a job is never split) */
    writer_job *jobs = NULL, *last = NULL;
    size_t n = 0;
    while (w->queue_head && (n == 0 || n + w->queue_head->n <= WRITER_MAX_BATCH)) {
      writer_job *j = w->queue_head;
      w->queue_head = j->next;
      if (!w->queue_head) w->queue_tail = NULL;
      j->next = NULL;
      if (last)
        last->next = j;
      else
        jobs = j;
      last = j;
      n += j->n;
    }
    uv_mutex_unlock(&w->lock);

    /* gather into one array, commit, scatter the results back */
    size_t k = 0;
    int gathered = batch && n <= WRITER_MAX_BATCH;
    if (gathered) {
      for (writer_job *j = jobs; j; j = j->next) {
        memcpy(batch + k, j->items, j->n * sizeof *batch);
        k += j->n;
      }
      commit(w->db, batch, k);
      k = 0;
      for (writer_job *j = jobs; j; j = j->next) {
        memcpy(j->items, batch + k, j->n * sizeof *batch);
        k += j->n;
      }
    } else {
      for (writer_job *j = jobs; j; j = j->next) commit(w->db, j->items, j->n);
    }

    uv_mutex_lock(&w->lock);
    for (writer_job *j = jobs, *next; j; j = next) {
      next = j->next;
      append(&w->done_head, &w->done_tail, j);
    }
    uv_mutex_unlock(&w->lock);
    uv_async_send(&w->async);
  }
  free(batch);
}

static void on_async(uv_async_t *a) {
  writer *w = a->data;
  uv_mutex_lock(&w->lock);
  writer_job *j = w->done_head;
  w->done_head = w->done_tail = NULL;
  uv_mutex_unlock(&w->lock);
  while (j) {
    writer_job *next = j->next;
    j->done(j, j->arg);
    j = next;
  }
}

writer *writer_start(uv_loop_t *loop, const char *db_path, char *err, size_t errlen) {
  writer *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  w->loop = loop;
  if (store_open(db_path, &w->db, err, errlen) != 0) {
    free(w);
    return NULL;
  }
  if (store_set_durable(w->db, 1) != 0) {
    snprintf(err, errlen, "cannot set synchronous=FULL: %s", store_errmsg(w->db));
    store_close(w->db);
    free(w);
    return NULL;
  }
  uv_mutex_init(&w->lock);
  uv_cond_init(&w->cond);
  uv_async_init(loop, &w->async, on_async);
  w->async.data = w;
  if (uv_thread_create(&w->thread, thread_main, w) != 0) {
    snprintf(err, errlen, "cannot start the writer thread");
    uv_close((uv_handle_t *)&w->async, NULL);
    store_close(w->db);
    free(w); /* the async handle's memory: closed before the loop runs */
    return NULL;
  }
  return w;
}

int writer_submit(writer *w, writer_job *job) {
  uv_mutex_lock(&w->lock);
  if (w->stopping) {
    uv_mutex_unlock(&w->lock);
    return -1;
  }
  append(&w->queue_head, &w->queue_tail, job);
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->lock);
  return 0;
}

static void on_closed(uv_handle_t *h) {
  writer *w = h->data;
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->lock);
  free(w);
}

void writer_stop(writer *w) {
  if (!w) return;
  uv_mutex_lock(&w->lock);
  w->stopping = 1;
  uv_cond_signal(&w->cond);
  uv_mutex_unlock(&w->lock);
  uv_thread_join(&w->thread); /* it commits what was queued first */
  OTJ_ASSERT(w->queue_head == NULL && w->queue_tail == NULL);
  on_async(&w->async); /* the last callbacks, on the loop */
  store_close(w->db);
  w->db = NULL;
  uv_close((uv_handle_t *)&w->async, on_closed);
}
