/* store_evidence.h — evidence of a mark (a photo or file) in the durable store.
 *
 * The bytes live in files under the data folder, named by their SHA-256
 * (server/evidence.c); this table holds who uploaded which content for which
 * room, learner and observe task, and when. One content may be uploaded more
 * than once (another task, another learner): one row per upload, the file
 * once. A mark may carry a hash only when its sender has a row for exactly
 * that room, learner and task (store_evidence_owned); a file is served to
 * whoever may see such a mark: the room's host, the learner, administrators
 * (store_evidence_visible).
 */
#ifndef OTJ_STORE_EVIDENCE_H
#define OTJ_STORE_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_EVIDENCE_HASH_LEN 64 /* hex SHA-256 */
#define STORE_EVIDENCE_TYPE_MAX 32 /* "application/pdf" and the like */

/* store_evidence_target refuses a caller who may not attach evidence here. */
#define STORE_FORBIDDEN (-10)

typedef struct store_evidence {
  char hash[STORE_EVIDENCE_HASH_LEN + 1];
  char type[STORE_EVIDENCE_TYPE_MAX]; /* image/jpeg, image/png, application/pdf */
  int64_t size;                       /* bytes as stored */
  int64_t uploader;
  char room[65];
  int64_t learner;
  uint32_t task;
  int64_t created_at;
} store_evidence;

/* May `uploader` attach evidence to task `task` of `learner` in `room`?
 * 0 when yes: the room is open, `uploader` runs it or is the learner
 * themself in a room of a module that lets learners attach evidence
 * (modules.learner_evidence), the task (by index in the room's module) is
 * an observe task, and the learner is within the host's reach (R1/R2).
 * Otherwise STORE_NOTFOUND (no open room with that id), STORE_FORBIDDEN
 * (neither the host nor, where allowed, the learner; a learner out of reach),
 * STORE_INVALID (no such task, or a question), or another STORE_ code; the
 * sentence is in store_errmsg. */
int store_evidence_target(store *s, const char *room, int64_t uploader, int64_t learner,
                          uint32_t task);

/* Records an upload (a repeated upload of the same content for the same
 * target is recorded once). Returns 0 or a STORE_ code. */
int store_evidence_add(store *s, const store_evidence *e);

/* 1 when `uploader` uploaded `hash` for this room, learner and task; 0 when
 * not; a negative STORE_ code on error. */
int store_evidence_owned(store *s, const char *hash, int64_t uploader, const char *room,
                         int64_t learner, uint32_t task);

/* 0 and the content's type and size when `viewer` may see the content
 * `hash`: an administrator (is_admin), the learner of one of its uploads,
 * or the host of that upload's room. STORE_NOTFOUND when there is no such
 * content or it is not the viewer's to see (the two are not told apart). */
int store_evidence_visible(store *s, const char *hash, int64_t viewer, int is_admin,
                           char type[STORE_EVIDENCE_TYPE_MAX], int64_t *size);

/* 1 when any upload still names `hash` (a file may then not be removed),
 * 0 when none, or a negative STORE_ code. */
int store_evidence_known(store *s, const char *hash);

#endif
