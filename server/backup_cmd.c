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
#include "evidence.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

#define BACKUP_DATA_DEFAULT "./data" /* otjd's own default for --data */
#define BACKUP_PAUSE_MAX_MS 10000

static void usage(FILE *out) {
  fprintf(out,
          "Usage: otjd backup [--data DIR] [options] FILE\n"
          "Copies DIR/otj.db to FILE while otjd runs (SQLite's online backup): the\n"
          "copy is the database as it was when the backup began. It is written to\n"
          "FILE.tmp, checked with PRAGMA integrity_check, then renamed to FILE\n"
          "(readable by its owner only: it holds password hashes). Then the evidence\n"
          "files (photos and files of marks) that FILE's folder lacks are copied\n"
          "into FILE's folder/evidence/, which every backup there shares.\n\n"
          "  --data DIR            otjd's data folder (OTJ_DATA, default ./data)\n"
          "  --pages-per-step N    pages copied at a time (default %d)\n"
          "  --pause-ms MS         pause between two steps, to leave the disk to\n"
          "                        otjd on a busy machine (default 0)\n"
          "  -h, --help            this text\n\n"
          "Restore: stop otjd, copy FILE to DIR/otj.db, remove DIR/otj.db-wal and\n"
          "DIR/otj.db-shm, copy the evidence folder to DIR/evidence, start otjd.\n"
          "Exit codes: 0 done, 64 bad usage, 73 the database or FILE is unusable,\n"
          "75 the database stayed locked (try again).\n",
          BACKUP_PAGES_PER_STEP);
}

/* ---- evidence files ------------------------------------------------------ *
 *
 * Evidence files are named by their SHA-256 and never change, so they are
 * copied next to the database copy into one folder, <FILE's folder>/evidence/,
 * that every backup there shares: a file already there is the same file and
 * is skipped. They are copied after the database, and otjd writes a file
 * before its row, so every file the database copy names is in the folder. */

/* Copies src to dst through dst.tmp with fsync. Returns 0, or -1 (errno). */
static int copy_file(const char *src, const char *dst) {
  char tmp[4800];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= sizeof tmp) return -1;
  int in = open(src, O_RDONLY), out = -1, rc = -1;
  if (in < 0) return -1;
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (out >= 0) {
    char buf[65536];
    ssize_t n;
    rc = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
      if (n < 0 || write(out, buf, (size_t)n) != n) rc = -1;
    }
    if (fsync(out) != 0) rc = -1;
    if (close(out) != 0) rc = -1;
    if (rc == 0 && rename(tmp, dst) != 0) rc = -1;
    if (rc != 0) unlink(tmp);
  }
  close(in);
  return rc;
}

/* Copies what is missing of DATA/evidence/ into DEST_DIR/evidence/. Returns
 * the number of files copied, or -1 with a sentence in err. */
static long copy_evidence(const char *data, const char *dest, char *err, size_t errlen) {
  char src_top[4096], dst_top[4096], dest_copy[4096];
  snprintf(src_top, sizeof src_top, "%s/%s", data, EVIDENCE_DIR);
  snprintf(dest_copy, sizeof dest_copy, "%s", dest);
  snprintf(dst_top, sizeof dst_top, "%s/%s", dirname(dest_copy), EVIDENCE_DIR);
  DIR *top = opendir(src_top);
  if (!top)
    return errno == ENOENT ? 0
                           : (snprintf(err, errlen, "%.400s: %s", src_top, strerror(errno)), -1);
  long copied = 0;
  struct dirent *sub;
  while (copied >= 0 && (sub = readdir(top))) {
    if (sub->d_name[0] == '.') continue;
    char sdir[4400], ddir[4400];
    snprintf(sdir, sizeof sdir, "%s/%s", src_top, sub->d_name);
    snprintf(ddir, sizeof ddir, "%s/%s", dst_top, sub->d_name);
    DIR *d = opendir(sdir);
    if (!d) continue;
    if ((mkdir(dst_top, 0700) != 0 && errno != EEXIST) ||
        (mkdir(ddir, 0700) != 0 && errno != EEXIST)) {
      snprintf(err, errlen, "%.400s: %s", ddir, strerror(errno));
      copied = -1;
    }
    struct dirent *f;
    while (copied >= 0 && (f = readdir(d))) {
      if (f->d_name[0] == '.') continue; /* an upload being written */
      char sf[4700], df[4700];
      struct stat st;
      snprintf(sf, sizeof sf, "%s/%s", sdir, f->d_name);
      snprintf(df, sizeof df, "%s/%s", ddir, f->d_name);
      if (stat(df, &st) == 0) continue; /* the same content, copied before */
      if (copy_file(sf, df) != 0) {
        snprintf(err, errlen, "copying %.400s: %s", sf, strerror(errno));
        copied = -1;
      } else {
        copied++;
      }
    }
    closedir(d);
  }
  closedir(top);
  return copied;
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
  case BACKUP_OK: {
    fprintf(stderr,
            "otjd backup: %s copied to %s (schema version %d, %d pages, "
            "integrity_check ok)\n",
            src, dest, res.schema_version, res.pages);
    long n = copy_evidence(data, dest, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "otjd backup: evidence files: %s\n", err);
      return EX_CANTCREAT;
    }
    fprintf(stderr, "otjd backup: %ld new evidence files copied to the evidence folder beside it\n",
            n);
    return 0;
  }
  case BACKUP_ERR_SAME: fprintf(stderr, "otjd backup: %s\n", err); return EX_USAGE;
  case BACKUP_ERR_BUSY: fprintf(stderr, "otjd backup: %s\n", err); return EX_TEMPFAIL;
  default: fprintf(stderr, "otjd backup: %s\n", err); return EX_CANTCREAT;
  }
}
