/* backup.h — a consistent copy of a live OTJ database (SQLite online backup).
 *
 * The one design idea: the copy holds a read transaction on the source for
 * its whole length, so it is the database exactly as it was when the backup
 * began, however long the copy takes and however many commits otjd makes
 * meanwhile. In WAL mode a reader never blocks a writer, so otjd goes on
 * committing approvals; the copy goes in small steps (sqlite3_backup_step),
 * may pause between them to leave the disk to otjd, and waits (sqlite3_sleep)
 * while the source or the copy is busy or locked.
 *
 * The copy is written to DEST.tmp, checked with PRAGMA integrity_check,
 * switched to journal_mode=DELETE (one self-contained file), synced, and only
 * then renamed to DEST: DEST is either the previous file or a whole, checked
 * backup, never half of one.
 */
#ifndef OTJ_BACKUP_H
#define OTJ_BACKUP_H

#include <stddef.h>

/* Return codes of backup_copy. */
#define BACKUP_OK         0
#define BACKUP_ERR_SOURCE (-1) /* the source is missing, unreadable or not an OTJ database */
#define BACKUP_ERR_DEST   (-2) /* DEST.tmp or DEST cannot be written */
#define BACKUP_ERR_BUSY   (-3) /* stayed busy/locked past busy_give_up_ms */
#define BACKUP_ERR_VERIFY (-4) /* the copy failed PRAGMA integrity_check */
#define BACKUP_ERR_SAME   (-5) /* DEST is the source itself */

/* Defaults; each a named limit. */
#define BACKUP_PAGES_PER_STEP  256   /* pages copied by one sqlite3_backup_step */
#define BACKUP_BUSY_SLEEP_MS   20    /* wait before retrying a busy/locked step */
#define BACKUP_BUSY_GIVE_UP_MS 60000 /* total busy wait before giving up */
#define BACKUP_ERRMSG_MAX      512

typedef struct backup_options {
  int pages_per_step;  /* <= 0: BACKUP_PAGES_PER_STEP */
  int pause_ms;        /* sleep between two steps (0: none) */
  int busy_give_up_ms; /* <= 0: BACKUP_BUSY_GIVE_UP_MS */
} backup_options;

typedef struct backup_result {
  int pages;          /* pages in the copy */
  int schema_version; /* the schema version recorded in the copy */
} backup_result;

/* Copies the SQLite database at src_path to dest_path (see the top of this
 * file). The source is opened read-only and never written. opts may be NULL
 * (defaults); result may be NULL. Returns BACKUP_OK, or a negative
 * BACKUP_ERR_ code with a sentence saying why in err (when err is not NULL);
 * on failure DEST.tmp is removed and DEST is left as it was. */
int backup_copy(const char *src_path, const char *dest_path, const backup_options *opts,
                backup_result *result, char *err, size_t errlen);

#endif
