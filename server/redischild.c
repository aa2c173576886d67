/*
 * redischild — start and stop the private redis-server (see redischild.h).
 * The exec failure travels back through a close-on-exec pipe, so "not
 * installed" is told apart from "started and failed".
 */
#include "redischild.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int socket_answers(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
  int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (ok) {
    /* A real answer, not just an accepted socket. */
    static const char ping[] = "PING\r\n";
    char buf[16];
    ok = write(fd, ping, sizeof ping - 1) == (ssize_t)(sizeof ping - 1) &&
         read(fd, buf, sizeof buf) > 0 && buf[0] == '+';
  }
  close(fd);
  return ok;
}

pid_t redischild_start(const char *bin, const char *data_dir, uint32_t maxmemory_mb, char *sock_out,
                       size_t sock_cap, char *err, size_t errlen) {
  char dir[PATH_MAX];
  if (!realpath(data_dir, dir)) {
    snprintf(err, errlen, "cannot resolve data folder %s: %s", data_dir, strerror(errno));
    return REDISCHILD_FAILED;
  }
  struct sockaddr_un probe;
  int n = snprintf(sock_out, sock_cap, "%s/redis.sock", dir);
  if (n < 0 || (size_t)n >= sock_cap || (size_t)n >= sizeof probe.sun_path) {
    snprintf(err, errlen,
             "the data folder path %s is too long for a unix socket (at most "
             "%zu bytes); use a shorter --data",
             dir, sizeof probe.sun_path - 12);
    return REDISCHILD_FAILED;
  }
  char logfile[PATH_MAX + 16];
  snprintf(logfile, sizeof logfile, "%s/redis.log", dir);
  unlink(sock_out); /* a socket left by an otjd that was killed */
  char maxmemory[24];
  snprintf(maxmemory, sizeof maxmemory, "%umb", (unsigned)maxmemory_mb);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    return REDISCHILD_FAILED;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    close(pipefd[0]);
    close(pipefd[1]);
    return REDISCHILD_FAILED;
  }
  if (pid == 0) {
    close(pipefd[0]);
    setpgid(0, 0); /* a terminal's Ctrl-C goes to otjd, which stops us */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    execlp(bin, bin, "--port", "0", "--unixsocket", sock_out, "--unixsocketperm", "700", "--save",
           "", "--appendonly", "no", "--daemonize", "no", "--dir", dir, "--logfile", logfile,
           "--loglevel", "warning", "--maxmemory", maxmemory, "--maxmemory-policy", "noeviction",
           (char *)NULL);
    int e = errno;
    ssize_t w = write(pipefd[1], &e, sizeof e);
    (void)w;
    _exit(127);
  }
  close(pipefd[1]);
  int child_errno = 0;
  ssize_t r;
  do r = read(pipefd[0], &child_errno, sizeof child_errno);
  while (r < 0 && errno == EINTR);
  close(pipefd[0]);
  if (r == (ssize_t)sizeof child_errno) {
    waitpid(pid, NULL, 0);
    if (child_errno == ENOENT) {
      snprintf(err, errlen,
               "'%s' was not found: install Redis (apt-get install "
               "redis-server) or point otjd at a running one with --redis",
               bin);
      return REDISCHILD_NOT_FOUND;
    }
    snprintf(err, errlen, "cannot run '%s': %s", bin, strerror(child_errno));
    return REDISCHILD_FAILED;
  }

  long deadline = now_ms() + REDISCHILD_START_TIMEOUT_MS;
  while (now_ms() < deadline) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      snprintf(err, errlen, "redis-server exited at start (status %d); see %s", status, logfile);
      return REDISCHILD_FAILED;
    }
    if (socket_answers(sock_out)) return pid;
    sleep_ms(20);
  }
  redischild_stop(pid);
  snprintf(err, errlen, "redis-server did not answer on %s within %d ms; see %s", sock_out,
           REDISCHILD_START_TIMEOUT_MS, logfile);
  return REDISCHILD_FAILED;
}

int redischild_stop(pid_t pid) {
  if (pid <= 0) return 0;
  if (kill(pid, SIGTERM) != 0 && errno == ESRCH) {
    waitpid(pid, NULL, WNOHANG);
    return 0;
  }
  long deadline = now_ms() + REDISCHILD_STOP_TIMEOUT_MS;
  while (now_ms() < deadline) {
    pid_t w = waitpid(pid, NULL, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) return 0;
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  return waitpid(pid, NULL, 0) == pid ? 0 : -1;
}
