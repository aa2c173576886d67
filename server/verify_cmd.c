/*
 * verify_cmd — `otjd verify-audit [--data DIR]`, the command line around
 * store_audit_verify_file (storage/audit.c). Needs neither Redis nor the
 * network, and writes nothing: an inspector's copy of a data folder can be
 * checked on any machine.
 */
#include "verify_cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "api_util.h"
#include "store.h"

#define VERIFY_DATA_DEFAULT "./data" /* otjd's own default for --data */

static void usage(FILE *out) {
  fprintf(out, "Usage: otjd verify-audit [--data DIR]\n"
               "Checks the audit log of DIR/otj.db: every entry's hash covers its content\n"
               "and the hash of the entry before it. Prints one JSON line:\n"
               "  {\"ok\":true,\"entries\":N,\"head\":\"<hex>\"}     (exit 0)\n"
               "  {\"ok\":false,\"entries\":N,\"first_bad\":ID}    (exit 1)\n"
               "The database is opened read-only; otjd may run meanwhile.\n\n"
               "  --data DIR    otjd's data folder (OTJ_DATA, default ./data)\n"
               "  -h, --help    this text\n"
               "Exit codes: 0 intact, 1 an entry was changed or removed, 64 bad usage,\n"
               "73 the database is unusable.\n");
}

int verify_audit_main(int argc, char **argv) {
  const char *data = getenv("OTJ_DATA");
  if (!data || !*data) data = VERIFY_DATA_DEFAULT;
  static const struct option opts[] = {
      {"data", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
    case 'd': data = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EX_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "otjd verify-audit: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return EX_USAGE;
  }
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/otj.db", data) >= sizeof path) {
    fprintf(stderr, "otjd verify-audit: --data is too long\n");
    return EX_USAGE;
  }
  store_audit_check c;
  char err[STORE_ERRMSG_MAX + 64];
  if (store_audit_verify_file(path, &c, err, sizeof err) != 0) {
    fprintf(stderr, "otjd verify-audit: %s\n", err);
    return EX_CANTCREAT;
  }
  json_t *j = api_audit_verdict(&c);
  char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!line) {
    fprintf(stderr, "otjd verify-audit: out of memory\n");
    return EX_SOFTWARE;
  }
  printf("%s\n", line);
  free(line);
  if (!c.ok)
    fprintf(stderr,
            "otjd verify-audit: audit entry %lld does not match the chain: it or the "
            "entry before it was changed or removed\n",
            (long long)c.first_bad);
  return c.ok ? 0 : 1;
}
