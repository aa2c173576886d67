/*
 * writer — the thread that makes OTJ decisions durable (group commit).
 *
 * The loop never waits for a disk. It hands decisions to the writer, which
 * takes everything queued since its last commit and applies it in one
 * SQLite transaction with synchronous=FULL (storage: store_approvals_commit),
 * then tells the loop through a uv_async handle; the loop runs each batch's
 * callback only after the commit, so an acknowledgement never runs ahead of
 * the disk. While one commit's fsync runs, the next batch gathers.
 */
#ifndef OTJ_WRITER_H
#define OTJ_WRITER_H

#include <stddef.h>
#include <uv.h>

#include "store.h"

#define WRITER_MAX_BATCH 1024 /* decisions in one transaction at most */

typedef struct writer writer;
typedef struct writer_job writer_job;

/* Called on the loop when the decisions of a job are committed (or failed:
 * see each decision's rc). The job is freed after the call. */
typedef void writer_done_fn(writer_job *job, void *arg);

struct writer_job {
  writer_job *next;
  store_approval *items; /* owned by the submitter until done */
  size_t n;
  writer_done_fn *done;
  void *arg;
};

/* Opens its own handle on `db_path` (synchronous=FULL) and starts the
 * thread. Returns NULL with a message in err on failure. */
writer *writer_start(uv_loop_t *loop, const char *db_path, char *err, size_t errlen);

/* Queues a job (the writer owns it from now until `done`). Returns 0, or -1
 * when the writer is stopping (then nothing is called). */
int writer_submit(writer *w, writer_job *job);

/* Commits what is queued, stops the thread, runs the last callbacks and
 * closes the async handle. The writer is freed when the handle has closed. */
void writer_stop(writer *w);

#endif
