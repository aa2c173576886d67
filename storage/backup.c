/* backup.c — a consistent copy of a live OTJ database (see backup.h).
 *
 * SQLite's online backup API restarts a copy whenever another connection
 * commits to the source between two steps; with otjd committing approvals
 * all the time, a copy in small steps could restart forever. Here the source
 * connection opens its own read transaction before the first step and keeps
 * it until the last: sqlite3_backup_step then reads every page from that one
 * snapshot (it opens no transaction of its own, so it notices no change), and
 * the copy is the database as of that moment.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

typedef struct copy {
  const backup_options *o;
  char *err;
  size_t errlen;
} copy;

static int failf(copy *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int failf(copy *c, int code, const char *fmt, ...) {
  if (c->err && c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int is_busy(int rc) {
  rc &= 0xff;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
}

/* Runs `sql` on db (no rows wanted, or the first integer of the first row
 * into *out when out is not NULL), retrying while it is busy/locked for at
 * most the busy budget in *waited_ms. Returns a SQLite result code. */
static int run(copy *c, sqlite3 *db, const char *sql, int *out, int *waited_ms) {
  for (;;) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW && out) *out = sqlite3_column_int(st, 0);
      if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (!is_busy(rc) || *waited_ms >= c->o->busy_give_up_ms) return rc;
    sqlite3_sleep(BACKUP_BUSY_SLEEP_MS);
    *waited_ms += BACKUP_BUSY_SLEEP_MS;
  }
}

/* 1 when dest names the source file or one of its companions (-wal, -shm,
 * -journal), which a rename onto would destroy. */
static int names_source(const char *src, const char *dest) {
  char src_real[PATH_MAX], dir_real[PATH_MAX], d1[PATH_MAX], d2[PATH_MAX];
  if (!realpath(src, src_real)) return 0;
  snprintf(d1, sizeof d1, "%s", dest);
  snprintf(d2, sizeof d2, "%s", dest);
  if (!realpath(dirname(d1), dir_real)) return 0;
  const char *base = basename(d2);
  char full[PATH_MAX + NAME_MAX + 2];
  snprintf(full, sizeof full, "%s/%s", dir_real, base);
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    char name[PATH_MAX + 16];
    snprintf(name, sizeof name, "%s%s", src_real, suffixes[i]);
    if (!strcmp(name, full)) return 1;
  }
  return 0;
}

/* fsync of a file or a folder by name; 0 or -1 with errno. */
static int sync_path(const char *path, int directory) {
  int fd = open(path, (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

static void remove_tmp(const char *tmp) {
  char side[PATH_MAX + 16];
  unlink(tmp);
  snprintf(side, sizeof side, "%s-journal", tmp);
  unlink(side);
  snprintf(side, sizeof side, "%s-wal", tmp);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", tmp);
  unlink(side);
}

/* Opens the source read-only and starts the read transaction that every
 * step will read from; reads the schema version in it. */
static int open_source(copy *c, const char *src, sqlite3 **out, int *version, int *waited) {
  struct stat sb;
  if (stat(src, &sb) != 0)
    return failf(c, BACKUP_ERR_SOURCE, "cannot read %s: %s", src, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return failf(c, BACKUP_ERR_SOURCE, "%s is not a file", src);

  int rc = sqlite3_open_v2(src, out, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    return failf(c, BACKUP_ERR_SOURCE, "cannot open %s: %s", src,
                 *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
  sqlite3_extended_result_codes(*out, 1);

  int ignored;
  if ((rc = run(c, *out, "BEGIN", NULL, waited)) != SQLITE_OK ||
      (rc = run(c, *out, "SELECT count(*) FROM sqlite_schema", &ignored, waited)) != SQLITE_OK)
    return failf(c, is_busy(rc) ? BACKUP_ERR_BUSY : BACKUP_ERR_SOURCE, "cannot read %s: %s", src,
                 sqlite3_errmsg(*out));
  rc = run(c, *out, "SELECT coalesce(max(version), 0) FROM schema_version", version, waited);
  if (rc != SQLITE_OK)
    return failf(c, is_busy(rc) ? BACKUP_ERR_BUSY : BACKUP_ERR_SOURCE,
                 "%s is not an OTJ database (%s)", src, sqlite3_errmsg(*out));
  return 0;
}

/* The page-by-page copy from src into dst. */
static int copy_pages(copy *c, sqlite3 *src, sqlite3 *dst, const char *tmp, int *pages,
                      int *waited) {
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
  if (!b)
    return failf(c, BACKUP_ERR_DEST, "cannot start the copy into %s: %s", tmp, sqlite3_errmsg(dst));
  int rc;
  for (;;) {
    rc = sqlite3_backup_step(b, c->o->pages_per_step);
    if (rc == SQLITE_DONE) break;
    if (rc == SQLITE_OK) {
      if (c->o->pause_ms > 0) sqlite3_sleep(c->o->pause_ms);
      continue;
    }
    if (is_busy(rc) && *waited < c->o->busy_give_up_ms) {
      sqlite3_sleep(BACKUP_BUSY_SLEEP_MS);
      *waited += BACKUP_BUSY_SLEEP_MS;
      continue;
    }
    break;
  }
  *pages = sqlite3_backup_pagecount(b);
  sqlite3_backup_finish(b);
  if (rc == SQLITE_DONE) return 0;
  if (is_busy(rc))
    return failf(c, BACKUP_ERR_BUSY, "the database stayed busy for %d ms; try again", *waited);
  return failf(c, BACKUP_ERR_DEST, "the copy into %s failed: %s", tmp, sqlite3_errstr(rc));
}

/* Makes the copy one self-contained file and checks it page by page. */
static int verify(copy *c, sqlite3 *dst, const char *tmp, int *waited) {
  int rc = run(c, dst, "PRAGMA journal_mode = DELETE", NULL, waited);
  if (rc != SQLITE_OK)
    return failf(c, BACKUP_ERR_DEST, "cannot finish %s: %s", tmp, sqlite3_errmsg(dst));

  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL);
  char first[256] = "";
  int rows = 0;
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (rows++ == 0) {
        snprintf(first, sizeof first, "%s", (const char *)sqlite3_column_text(st, 0));
        for (char *p = first; *p; p++) /* one line in a log */
          if (*p == '\n') *p = ' ';
      }
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return failf(c, BACKUP_ERR_VERIFY, "PRAGMA integrity_check on %s failed: %s", tmp,
                 sqlite3_errmsg(dst));
  if (rows != 1 || strcmp(first, "ok") != 0)
    return failf(c, BACKUP_ERR_VERIFY, "the copy is damaged: integrity_check says: %s", first);
  return 0;
}

int backup_copy(const char *src_path, const char *dest_path, const backup_options *opts,
                backup_result *result, char *err, size_t errlen) {
  backup_options o = opts ? *opts : (backup_options){0};
  if (o.pages_per_step <= 0) o.pages_per_step = BACKUP_PAGES_PER_STEP;
  if (o.busy_give_up_ms <= 0) o.busy_give_up_ms = BACKUP_BUSY_GIVE_UP_MS;
  copy c = {.o = &o, .err = err, .errlen = errlen};
  if (err && errlen) err[0] = '\0';

  if (names_source(src_path, dest_path))
    return failf(&c, BACKUP_ERR_SAME, "%s is the database itself (or one of its files)", dest_path);
  char tmp[PATH_MAX];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", dest_path) >= sizeof tmp)
    return failf(&c, BACKUP_ERR_DEST, "the name %s is too long", dest_path);

  sqlite3 *src = NULL, *dst = NULL;
  int waited = 0, version = 0, pages = 0, made_tmp = 0;
  int code = open_source(&c, src_path, &src, &version, &waited);
  if (code < 0) goto out;

  remove_tmp(tmp); /* left by an interrupted run */
  int rc = sqlite3_open_v2(tmp, &dst,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  made_tmp = 1;
  if (rc != SQLITE_OK) {
    code = failf(&c, BACKUP_ERR_DEST, "cannot create %s: %s", tmp,
                 dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    goto out;
  }
  if ((code = copy_pages(&c, src, dst, tmp, &pages, &waited)) < 0) goto out;

  /* the snapshot is copied: let otjd's checkpoints go past it */
  sqlite3_close(src);
  src = NULL;

  if ((code = verify(&c, dst, tmp, &waited)) < 0) goto out;
  if (sqlite3_close(dst) != SQLITE_OK) {
    code = failf(&c, BACKUP_ERR_DEST, "cannot close %s: %s", tmp, sqlite3_errmsg(dst));
    goto out;
  }
  dst = NULL;

  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", dest_path);
  if (sync_path(tmp, 0) != 0 || rename(tmp, dest_path) != 0 || sync_path(dirname(dir), 1) != 0) {
    code = failf(&c, BACKUP_ERR_DEST, "cannot put the copy in place as %s: %s", dest_path,
                 strerror(errno));
    goto out;
  }
  if (result) {
    result->pages = pages;
    result->schema_version = version;
  }
  code = BACKUP_OK;

out:
  if (dst) sqlite3_close(dst);
  if (src) sqlite3_close(src);
  if (code < 0 && made_tmp) remove_tmp(tmp);
  return code;
}
