/*
 * procstat — what the kernel says a process has used: CPU seconds
 * (user + system, /proc/PID/stat) and resident memory (/proc/PID/status),
 * and which process listens on a TCP port (/proc/net/tcp, then the socket
 * inode among /proc/PID/fd).
 */
#ifndef OTJ_LOAD_PROCSTAT_H
#define OTJ_LOAD_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

typedef struct procstat {
  int ok;
  double cpu_s;      /* utime + stime */
  uint64_t rss_kib;  /* VmRSS */
  uint64_t anon_kib; /* RssAnon: heap and stacks, what connections cost */
} procstat;

/* Reads pid's counters. Returns 0, or -1 when the process is gone. */
int procstat_read(pid_t pid, procstat *out);

/* The pid of the process listening on 127.0.0.x/0.0.0.0 `port`, or -1. */
pid_t procstat_listener(int port);

/* Up to `cap` pids whose command name is `comm`; returns how many. */
int procstat_by_comm(const char *comm, pid_t *out, int cap);

#endif
