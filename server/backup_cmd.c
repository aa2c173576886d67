/*
 * backup_cmd — `otjd backup [--data DIR] FILE`, the command line around
 * storage/backup.c. It needs neither Redis nor the network: it opens
 * DIR/otj.db read-only next to a running otjd (or a stopped one) and writes
 * the copy to FILE.
 */
#include "backup_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "backup.h"

#define BACKUP_DATA_DEFAULT "./data" /* otjd's own default for --data */
#define BACKUP_PAUSE_MAX_MS 10000

static void usage(FILE *out) {
  fprintf(out,
          "Usage: otjd backup [--data DIR] [options] FILE\n"
          "Copies DIR/otj.db to FILE while otjd runs (SQLite's online backup): the\n"
          "copy is the database as it was when the backup began. It is written to\n"
          "FILE.tmp, checked with PRAGMA integrity_check, then renamed to FILE\n"
          "(readable by its owner only: it holds password hashes).\n\n"
          "  --data DIR            otjd's data folder (OTJ_DATA, default ./data)\n"
          "  --pages-per-step N    pages copied at a time (default %d)\n"
          "  --pause-ms MS         pause between two steps, to leave the disk to\n"
          "                        otjd on a busy machine (default 0)\n"
          "  -h, --help            this text\n\n"
          "Restore: stop otjd, copy FILE to DIR/otj.db, remove DIR/otj.db-wal and\n"
          "DIR/otj.db-shm, start otjd.\n"
          "Exit codes: 0 done, 64 bad usage, 73 the database or FILE is unusable,\n"
          "75 the database stayed locked (try again).\n",
          BACKUP_PAGES_PER_STEP);
}

static int parse_int(const char *what, const char *v, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < lo || n > hi) {
    fprintf(stderr, "otjd backup: %s must be %d..%d, got '%s'\n", what, lo, hi, v);
    return -1;
  }
  *out = (int)n;
  return 0;
}

int backup_main(int argc, char **argv) {
  const char *data = getenv("OTJ_DATA");
  if (!data || !*data) data = BACKUP_DATA_DEFAULT;
  backup_options o = {0};
  static const struct option opts[] = {
      {"data", required_argument, NULL, 'd'},
      {"pages-per-step", required_argument, NULL, 'p'},
      {"pause-ms", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'd': data = optarg; break;
    case 'p':
      if (parse_int("--pages-per-step", optarg, 1, 1 << 20, &o.pages_per_step)) return EX_USAGE;
      break;
    case 's':
      if (parse_int("--pause-ms", optarg, 0, BACKUP_PAUSE_MAX_MS, &o.pause_ms)) return EX_USAGE;
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EX_USAGE;
    }
  }
  if (argc - optind != 1 || !*argv[optind]) {
    fprintf(stderr, "otjd backup: name one FILE to write the copy to\n");
    usage(stderr);
    return EX_USAGE;
  }
  const char *dest = argv[optind];

  char src[4096];
  if ((size_t)snprintf(src, sizeof src, "%s/otj.db", data) >= sizeof src) {
    fprintf(stderr, "otjd backup: --data is too long\n");
    return EX_USAGE;
  }
  /* the copy holds password and session hashes: its owner's eyes only */
  umask(077);
  char err[BACKUP_ERRMSG_MAX];
  backup_result res = {0};
  int rc = backup_copy(src, dest, &o, &res, err, sizeof err);
  switch (rc) {
  case BACKUP_OK:
    fprintf(stderr,
            "otjd backup: %s copied to %s (schema version %d, %d pages, "
            "integrity_check ok)\n",
            src, dest, res.schema_version, res.pages);
    return 0;
  case BACKUP_ERR_SAME: fprintf(stderr, "otjd backup: %s\n", err); return EX_USAGE;
  case BACKUP_ERR_BUSY: fprintf(stderr, "otjd backup: %s\n", err); return EX_TEMPFAIL;
  default: fprintf(stderr, "otjd backup: %s\n", err); return EX_CANTCREAT;
  }
}
