/*
 * evidence — photos and files attached to a mark: the HTTP resource
 * /api/evidence (upload) and /api/evidence/{hash} (download), and the
 * content checks they rest on.
 *
 * The one design idea: a file is known by the SHA-256 of its stored bytes.
 * The upload checks the content (JPEG, PNG, PDF by their first bytes, never
 * by a name), drops a JPEG's metadata segments (EXIF with its GPS location,
 * XMP, ...), and writes the result under the data folder as
 * evidence/<hh>/<hash> (a temporary file, fsync, rename): the same content
 * is stored once, a half-written file never has the final name. Who uploaded
 * it for which room, learner and task is a row in SQLite
 * (storage/store_evidence.h); a mark names the hash, and the file is served
 * to those who may see that mark.
 */
#ifndef OTJ_EVIDENCE_H
#define OTJ_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define EVIDENCE_DIR "evidence" /* under the data folder */

/* The limit of r's body when r is an upload (cfg.evidence_max_bytes), else 0. */
size_t evidence_body_cap(const http_req *r);

/* Answers r when it is an evidence route and returns 1; else returns 0 and
 * answers nothing. */
int evidence_handle(http_req *r);

/* The type of a file by its first bytes: "image/jpeg", "image/png",
 * "application/pdf", or NULL for anything else. */
const char *evidence_sniff(const uint8_t *p, size_t n);

/* Copies the JPEG in `in` to `out` (at least n bytes) without its APP1 to
 * APP15 segments (EXIF, location, XMP, ICC, vendor data); everything from
 * the start of the scan on is copied as it is. Returns the bytes written,
 * or 0 when `in` is not a JPEG whose segments can be followed. */
size_t evidence_jpeg_strip(const uint8_t *in, size_t n, uint8_t *out);

#endif
