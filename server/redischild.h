/*
 * redischild — the private redis-server of the embedded default.
 *
 * Without --redis, otjd starts a redis-server of its own that listens only on
 * a unix socket in the data folder, keeps nothing on disk, and dies with
 * otjd: the child asks the kernel for SIGTERM when its parent goes
 * (PR_SET_PDEATHSIG), so even a `kill -9` of otjd leaves no redis behind.
 * Starting blocks until the socket answers (before the loop runs); stopping
 * blocks until the child is reaped (after the loop has ended).
 *
 * Its memory is bounded: `maxmemory` with the noeviction policy, so a write
 * it cannot take fails (otjd tells the client `unavailable`) instead of a
 * live room being evicted without a word.
 */
#ifndef OTJ_REDISCHILD_H
#define OTJ_REDISCHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REDISCHILD_START_TIMEOUT_MS 10000
#define REDISCHILD_STOP_TIMEOUT_MS  5000

/* Error codes of redischild_start. */
#define REDISCHILD_NOT_FOUND (-2) /* the binary is not installed */
#define REDISCHILD_FAILED    (-1) /* it started but did not come up */

/* Starts `bin` with its socket at `<data_dir>/redis.sock` (written to
 * `sock_out`), its log at `<data_dir>/redis.log` and a maxmemory of
 * `maxmemory_mb` MiB (noeviction). Returns the child's pid (> 0), or a
 * negative code with a sentence in `err`. */
pid_t redischild_start(const char *bin, const char *data_dir, uint32_t maxmemory_mb, char *sock_out,
                       size_t sock_cap, char *err, size_t errlen);

/* Sends SIGTERM, waits up to REDISCHILD_STOP_TIMEOUT_MS, then SIGKILL; reaps.
 * Returns 0 when the child is gone. Safe to call with pid <= 0. */
int redischild_stop(pid_t pid);

#endif
