/*
 * evidence — POST /api/evidence and GET /api/evidence/{hash} (see evidence.h).
 *
 * The checks that decide whether an upload is taken (who, for what, which
 * content) run on the loop and are quick; hashing, writing, fsync and the
 * metadata row run on libuv's worker pool with the workers' SQLite handle,
 * and so does reading a file to serve it: the loop never waits for a disk.
 */
#include "evidence.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "api_util.h"
#include "log.h"
#include "store_evidence.h"

#define UPLOAD_PATH "/api/evidence"
#define MIB         (1024u * 1024u)

/* ---- content -------------------------------------------------------------- */

const char *evidence_sniff(const uint8_t *p, size_t n) {
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return "image/jpeg";
  if (n >= sizeof png && !memcmp(p, png, sizeof png)) return "image/png";
  if (n >= 5 && !memcmp(p, "%PDF-", 5)) return "application/pdf";
  return NULL;
}

size_t evidence_jpeg_strip(const uint8_t *in, size_t n, uint8_t *out) {
  if (n < 4 || in[0] != 0xff || in[1] != 0xd8) return 0;
  size_t i = 2, o = 0;
  out[o++] = 0xff;
  out[o++] = 0xd8;
  for (;;) {
    if (i >= n || in[i] != 0xff) return 0; /* a segment must start here */
    while (i < n && in[i] == 0xff) i++;    /* fill bytes */
    if (i >= n) return 0;
    uint8_t marker = in[i++];
    if (marker == 0xd9) { /* EOI before any scan: nothing to show */
      return 0;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker == 0x01) { /* no length */
      out[o++] = 0xff;
      out[o++] = marker;
      continue;
    }
    if (i + 2 > n) return 0;
    size_t len = (size_t)in[i] << 8 | in[i + 1];
    if (len < 2 || i + len > n) return 0;
    if (marker == 0xda) { /* start of scan: the rest is image data */
      out[o++] = 0xff;
      out[o++] = marker;
      memcpy(out + o, in + i, n - i);
      return o + (n - i);
    }
    if (marker < 0xe1 || marker > 0xef) { /* keep; APP1..APP15 are dropped */
      out[o++] = 0xff;
      out[o++] = marker;
      memcpy(out + o, in + i, len);
      o += len;
    }
    i += len;
  }
}

static int hash_valid(const char *h) {
  if (strlen(h) != STORE_EVIDENCE_HASH_LEN) return 0;
  for (const char *p = h; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
  return 1;
}

/* <data>/evidence/<hh>/<hash> and its folder */
static void file_path(const otjd *d, const char *hash, char *dir, size_t dcap, char *file,
                      size_t fcap) {
  snprintf(dir, dcap, "%s/%s/%.2s", d->cfg.data_dir, EVIDENCE_DIR, hash);
  snprintf(file, fcap, "%s/%s", dir, hash);
}

/* ---- upload ---------------------------------------------------------------- */

size_t evidence_body_cap(const http_req *r) {
  if (r->method == HTTP_POST && !strcmp(r->path, UPLOAD_PATH)) return r->d->cfg.evidence_max_bytes;
  return 0;
}

enum { UP_OK, UP_NO_SPACE, UP_WRITE_FAILED, UP_STORE_FAILED };

typedef struct upload_job {
  uv_work_t work;
  http_req *r;
  uint8_t *bytes; /* owned when stripped, else r->body */
  int own_bytes;
  size_t n;
  store_evidence ev;
  int result;
  int store_code;
  char errmsg[STORE_ERRMSG_MAX];
} upload_job;

static int mkdir_one(const char *p) { return mkdir(p, 0750) == 0 || errno == EEXIST ? 0 : -1; }

static int fsync_dir(const char *p) {
  int fd = open(p, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes the bytes as <dir>/<hash> unless that file exists already.
 * *created says whether this call made it. Returns UP_*. */
static int store_file(upload_job *j, const char *dir, const char *file, int *created) {
  const otjd *d = j->r->d;
  char top[700];
  snprintf(top, sizeof top, "%s/%s", d->cfg.data_dir, EVIDENCE_DIR);
  *created = 0;
  struct stat st;
  if (stat(file, &st) == 0 && (size_t)st.st_size == j->n) return UP_OK; /* stored before */
  if (mkdir_one(top) != 0 || mkdir_one(dir) != 0) return UP_WRITE_FAILED;
  char tmp[800];
  snprintf(tmp, sizeof tmp, "%s/.upload-XXXXXX", dir);
  int fd = mkstemp(tmp);
  if (fd < 0) return errno == ENOSPC || errno == EDQUOT ? UP_NO_SPACE : UP_WRITE_FAILED;
  int rc = write_all(fd, j->bytes, j->n) == 0 && fsync(fd) == 0 ? 0 : errno;
  if (close(fd) != 0 && rc == 0) rc = errno ? errno : EIO;
  if (rc == 0 && rename(tmp, file) != 0) rc = errno ? errno : EIO;
  if (rc != 0) {
    unlink(tmp); /* nothing partial is left */
    return rc == ENOSPC || rc == EDQUOT ? UP_NO_SPACE : UP_WRITE_FAILED;
  }
  *created = 1;
  fsync_dir(dir); /* the new name is durable too */
  return UP_OK;
}

static void upload_work(uv_work_t *w) {
  upload_job *j = w->data;
  otjd *d = j->r->d;
  struct statvfs sv;
  if (statvfs(d->cfg.data_dir, &sv) != 0) {
    j->result = UP_WRITE_FAILED;
    return;
  }
  uint64_t free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
  if (free_bytes < (uint64_t)d->cfg.min_free_mb * MIB + j->n) {
    j->result = UP_NO_SPACE;
    return;
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, j->bytes, j->n);
  sodium_bin2hex(j->ev.hash, sizeof j->ev.hash, digest, sizeof digest);
  char dir[700], file[800];
  file_path(d, j->ev.hash, dir, sizeof dir, file, sizeof file);
  int created;
  j->result = store_file(j, dir, file, &created);
  if (j->result != UP_OK) return;
  j->ev.size = (int64_t)j->n;
  j->ev.created_at = (int64_t)time(NULL);
  uv_mutex_lock(&d->db_worker_lock);
  j->store_code = store_evidence_add(d->db_worker, &j->ev);
  if (j->store_code != 0) {
    snprintf(j->errmsg, sizeof j->errmsg, "%s", store_errmsg(d->db_worker));
    /* no row names it: the file goes too, unless an earlier upload's row does */
    if (created && store_evidence_known(d->db_worker, j->ev.hash) == 0) unlink(file);
    j->result = UP_STORE_FAILED;
  }
  uv_mutex_unlock(&d->db_worker_lock);
}

static void upload_job_free(upload_job *j) {
  if (j->own_bytes) free(j->bytes);
  free(j);
}

static void upload_done(uv_work_t *w, int status) {
  upload_job *j = w->data;
  http_req *r = j->r;
  if (status != 0) {
    http_reply_error(r, 500, "internal", "Storing the file was cancelled; try again.");
  } else if (j->result == UP_NO_SPACE) {
    log_event(LOG_WARN, "evidence upload refused: the data folder's disk is (nearly) full", NULL);
    http_reply_error(r, 507, "insufficient_storage",
                     "The server's disk is full, so the file was not stored; the mark is "
                     "unchanged. Tell the administrator.");
  } else if (j->result == UP_WRITE_FAILED) {
    log_event(LOG_ERROR, "evidence upload: the file could not be written", NULL);
    http_reply_error(r, 500, "internal",
                     "The file could not be written on the server; the mark is unchanged.");
  } else if (j->result == UP_STORE_FAILED) {
    reply_store_error_msg(r, j->store_code, j->errmsg);
  } else {
    reply_json(r, 201,
               json_pack("{s:s, s:s, s:I}", "hash", j->ev.hash, "type", j->ev.type, "size",
                         (json_int_t)j->ev.size));
  }
  http_req_unref(r);
  upload_job_free(j);
}

/* The Content-Types a page of another site cannot send without asking
 * first (CORS), so a cookie upload that carries one comes from our pages. */
static int upload_type_allowed(const char *ct) {
  static const char *const ok[] = {"image/jpeg", "image/png", "application/pdf",
                                   "application/octet-stream"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcasecmp(ct, ok[i])) return 1;
  return 0;
}

static int room_id_valid(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))) return 0;
  return 1;
}

static void reply_target_refused(http_req *r, int code) {
  const char *msg = store_errmsg(r->d->db);
  switch (code) {
  case STORE_NOTFOUND: http_reply_error(r, 404, "not_found", msg); break;
  case STORE_FORBIDDEN: http_reply_error(r, 403, "forbidden", msg); break;
  case STORE_INVALID: http_reply_error(r, 422, "bad_request", msg); break;
  default: reply_store_error(r, code);
  }
}

/* POST /api/evidence?room=R&learner=L&task=T, the file as the body. */
static void upload(http_req *r) {
  store_user u;
  if (require_user(r, &u)) return;
  if (r->token_from_cookie && (r->other_site || !upload_type_allowed(r->content_type))) {
    http_reply_error(r, 403, "forbidden",
                     "An upload made with the session cookie must come from this site's own "
                     "pages and say its type (image/jpeg, image/png, application/pdf or "
                     "application/octet-stream) as Content-Type.");
    return;
  }
  char room[65];
  int64_t learner = query_int(r, "learner", 0), task = query_int(r, "task", -1);
  if (http_query(r, "room", room, sizeof room) <= 0 || !room_id_valid(room) || learner <= 0 ||
      task < 0 || task > UINT32_MAX) {
    http_reply_error(r, 400, "bad_request",
                     "Say where the file belongs: ?room=ROOM&learner=ID&task=INDEX.");
    return;
  }
  if (!r->body || r->body_len == 0) {
    http_reply_error(r, 411, "bad_request",
                     "Send the file as the request body, with its Content-Length.");
    return;
  }
  int rc = store_evidence_target(r->d->db, room, u.id, learner, (uint32_t)task);
  if (rc != 0) {
    reply_target_refused(r, rc);
    return;
  }
  const char *type = evidence_sniff((const uint8_t *)r->body, r->body_len);
  if (!type) {
    http_reply_error(r, 415, "unsupported_type",
                     "Only photos (JPEG or PNG) and PDF files can be attached, and this file "
                     "is none of them (its content was checked, not its name).");
    return;
  }
  upload_job *j = calloc(1, sizeof *j);
  if (!j) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  j->r = r;
  j->bytes = (uint8_t *)r->body;
  j->n = r->body_len;
  if (!strcmp(type, "image/jpeg")) { /* without its metadata, location included */
    uint8_t *out = malloc(r->body_len);
    size_t n = out ? evidence_jpeg_strip((const uint8_t *)r->body, r->body_len, out) : 0;
    if (!n) {
      free(out);
      free(j);
      http_reply_error(r, 415, "unsupported_type",
                       "This file starts like a JPEG photo but cannot be read as one.");
      return;
    }
    j->bytes = out;
    j->own_bytes = 1;
    j->n = n;
  }
  snprintf(j->ev.type, sizeof j->ev.type, "%s", type);
  snprintf(j->ev.room, sizeof j->ev.room, "%s", room);
  j->ev.uploader = u.id;
  j->ev.learner = learner;
  j->ev.task = (uint32_t)task;
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, upload_work, upload_done) != 0) {
    http_req_unref(r);
    upload_job_free(j);
    http_reply_error(r, 500, "internal", "Could not start storing the file.");
  }
}

/* ---- download -------------------------------------------------------------- */

typedef struct fetch_job {
  uv_work_t work;
  http_req *r;
  char hash[STORE_EVIDENCE_HASH_LEN + 1];
  char type[STORE_EVIDENCE_TYPE_MAX];
  char *bytes;
  size_t n;
  int missing;
} fetch_job;

static void fetch_work(uv_work_t *w) {
  fetch_job *j = w->data;
  char dir[700], file[800];
  file_path(j->r->d, j->hash, dir, sizeof dir, file, sizeof file);
  FILE *f = fopen(file, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0 || !(j->bytes = malloc((size_t)st.st_size + 1)) ||
      fread(j->bytes, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    j->missing = 1;
  } else {
    j->n = (size_t)st.st_size;
  }
  if (f) fclose(f);
}

static void fetch_done(uv_work_t *w, int status) {
  fetch_job *j = w->data;
  http_req *r = j->r;
  if (status != 0 || j->missing) {
    log_event(LOG_ERROR, "evidence file missing or unreadable in the data folder", NULL);
    http_reply_error(r, 500, "internal",
                     "The file is recorded but cannot be read on the server; tell the "
                     "administrator.");
    free(j->bytes);
  } else {
    /* photos show in the page; a PDF is saved, never shown in our origin */
    static const struct {
      const char *type, *ext, *disposition;
    } kinds[] = {{"image/jpeg", "jpg", "inline"},
                 {"image/png", "png", "inline"},
                 {"application/pdf", "pdf", "attachment"}};
    size_t k = 0;
    while (k + 1 < sizeof kinds / sizeof kinds[0] && strcmp(j->type, kinds[k].type)) k++;
    char disp[128];
    snprintf(disp, sizeof disp, "%s; filename=\"evidence-%.12s.%s\"", kinds[k].disposition, j->hash,
             kinds[k].ext);
    http_add_header(r, "Content-Disposition", disp);
    /* X-Content-Type-Options: nosniff and a strict Content-Security-Policy
     * come with every answer (lws's security headers, main.c) */
    http_reply_take(r, 200, kinds[k].type, j->bytes, j->n);
  }
  http_req_unref(r);
  free(j);
}

/* GET /api/evidence/{hash} */
static void download(http_req *r, const char *hash) {
  store_user u;
  if (require_user(r, &u)) return;
  fetch_job *j = calloc(1, sizeof *j);
  if (!j) {
    http_reply_error(r, 500, "internal", "Out of memory.");
    return;
  }
  int64_t size;
  int rc = hash_valid(hash)
               ? store_evidence_visible(r->d->db, hash, u.id, u.is_admin, j->type, &size)
               : STORE_NOTFOUND;
  if (rc != 0) {
    free(j);
    if (rc == STORE_NOTFOUND)
      http_reply_error(r, 404, "not_found",
                       "There is no such file, or it belongs to a mark you may not see.");
    else
      reply_store_error(r, rc);
    return;
  }
  j->r = r;
  snprintf(j->hash, sizeof j->hash, "%s", hash);
  j->work.data = j;
  http_req_ref(r);
  if (uv_queue_work(r->d->loop, &j->work, fetch_work, fetch_done) != 0) {
    http_req_unref(r);
    free(j);
    http_reply_error(r, 500, "internal", "Could not start reading the file.");
  }
}

int evidence_handle(http_req *r) {
  const char *p = r->path;
  size_t n = sizeof UPLOAD_PATH - 1;
  if (strncmp(p, UPLOAD_PATH, n) != 0 || (p[n] != '\0' && p[n] != '/')) return 0;
  if (p[n] == '\0') {
    if (r->method == HTTP_POST)
      upload(r);
    else
      http_reply_error(r, 405, "bad_request", "Use POST to upload a file.");
  } else if (r->method == HTTP_GET) {
    download(r, p + n + 1);
  } else {
    http_reply_error(r, 405, "bad_request", "Use GET.");
  }
  return 1;
}
