/*
 * procstat — see procstat.h.
 */
#include "procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procstat_read(pid_t pid, procstat *out) {
  char path[64], buf[4096];
  memset(out, 0, sizeof *out);
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* fields after the command name, which may hold spaces: ") S ppid ..." */
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long utime = 0, stime = 0;
  /* state is field 3; utime 14, stime 15 */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  double hz = (double)sysconf(_SC_CLK_TCK);
  out->cpu_s = (double)(utime + stime) / hz;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    unsigned long long v;
    if (sscanf(line, "VmRSS: %llu kB", &v) == 1)
      out->rss_kib = v;
    else if (sscanf(line, "RssAnon: %llu kB", &v) == 1)
      out->anon_kib = v;
  }
  fclose(f);
  out->ok = 1;
  return 0;
}

static int is_pid_dir(const char *name) {
  if (!*name) return 0;
  for (const char *c = name; *c; c++)
    if (!isdigit((unsigned char)*c)) return 0;
  return 1;
}

static unsigned long listen_inode(int port) {
  FILE *f = fopen("/proc/net/tcp", "r");
  if (!f) return 0;
  char line[512];
  unsigned long found = 0;
  if (!fgets(line, sizeof line, f)) { /* header */
    fclose(f);
    return 0;
  }
  while (!found && fgets(line, sizeof line, f)) {
    unsigned ip, lport, st;
    unsigned long inode;
    if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &ip, &lport, &st,
               &inode) == 4 &&
        (int)lport == port && st == 0x0A)
      found = inode;
  }
  fclose(f);
  return found;
}

pid_t procstat_listener(int port) {
  unsigned long inode = listen_inode(port);
  if (!inode) return -1;
  char want[64];
  snprintf(want, sizeof want, "socket:[%lu]", inode);
  DIR *proc = opendir("/proc");
  if (!proc) return -1;
  pid_t found = -1;
  struct dirent *de;
  while (found < 0 && (de = readdir(proc))) {
    if (!is_pid_dir(de->d_name)) continue;
    char fdpath[300];
    snprintf(fdpath, sizeof fdpath, "/proc/%s/fd", de->d_name);
    DIR *fds = opendir(fdpath);
    if (!fds) continue;
    struct dirent *fe;
    while ((fe = readdir(fds))) {
      char lp[600], target[64];
      snprintf(lp, sizeof lp, "%s/%s", fdpath, fe->d_name);
      ssize_t k = readlink(lp, target, sizeof target - 1);
      if (k <= 0) continue;
      target[k] = '\0';
      if (!strcmp(target, want)) {
        found = (pid_t)atoi(de->d_name);
        break;
      }
    }
    closedir(fds);
  }
  closedir(proc);
  return found;
}

int procstat_by_comm(const char *comm, pid_t *out, int cap) {
  DIR *proc = opendir("/proc");
  if (!proc) return 0;
  int n = 0;
  struct dirent *de;
  while (n < cap && (de = readdir(proc))) {
    if (!is_pid_dir(de->d_name)) continue;
    char path[300], name[64];
    snprintf(path, sizeof path, "/proc/%s/comm", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(name, sizeof name, f)) {
      name[strcspn(name, "\n")] = '\0';
      if (!strcmp(name, comm)) out[n++] = (pid_t)atoi(de->d_name);
    }
    fclose(f);
  }
  closedir(proc);
  return n;
}
