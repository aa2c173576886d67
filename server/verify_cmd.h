/* verify_cmd.h — `otjd verify-audit`: the audit chain of a data folder checked. */
#ifndef OTJ_VERIFY_CMD_H
#define OTJ_VERIFY_CMD_H

/* The `otjd verify-audit [--data DIR]` command; argv[0] is "verify-audit".
 * Opens DIR/otj.db read-only (next to a running otjd or a stopped one),
 * walks the audit chain and prints the verdict as one JSON line on stdout,
 * the same as GET /api/admin/audit/verify. Returns the process's exit code:
 * 0 the chain holds, 1 it does not (first_bad names the entry), 64 bad
 * usage, 73 the database is unusable. */
int verify_audit_main(int argc, char **argv);

#endif
