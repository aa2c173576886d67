/* backup_cmd.h — `otjd backup`: a consistent copy of a running otjd's database. */
#ifndef OTJ_BACKUP_CMD_H
#define OTJ_BACKUP_CMD_H

/* The `otjd backup` command; argv[0] is "backup". Copies DIR/otj.db to FILE
 * (storage/backup.h), prints one line saying what it did, and returns the
 * process's exit code: 0 done, 64 bad usage, 73 the database or FILE is
 * unusable (missing, not an OTJ database, not writable, the copy failed its
 * integrity check), 75 the database stayed locked (try again later). */
int backup_main(int argc, char **argv);

#endif
