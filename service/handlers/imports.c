/* POST /v1/admin/imports?source=&mode=upsert|sync&dry_run=: a streamed
 * CSV or NDJSON file of court-appointed mandates.
 *
 * begin    checks the query and Content-Type, opens the import's own
 *          connection, takes the source's lock (409 when another import
 *          of it runs), reads the catalogue and starts a COPY into the
 *          staging table;
 * data     splits the pieces into rows, checks each (imports_parse.c) and
 *          sends them on with COPY: at most one row and one COPY buffer
 *          are held, never the file;
 * end      finishes the COPY, lets imports_db.c check, merge and audit in
 *          one transaction, stores the report and answers 201 with it;
 * cleanup  rolls back whatever is still open (a client that went away). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "db/imports_db.h"
#include "db/mandates_db.h"
#include "handlers/handlers.h"
#include "handlers/imports.h"
#include "handlers/imports_parse.h"
#include "handlers/mandate_json.h"
#include "log.h"

/* COPY text collected before it is sent: big enough for the longest line. */
#define OUT_CAP (IMPORT_COPY_LINE_MAX + 256 * 1024)
#define OUT_FLUSH (256 * 1024)

struct import_state {
  PGconn *pg;
  PGconn *stats; /* an ANALYZE of mandates while the upload is read, or NULL */
  struct import_job job;
  struct import_reader reader;
  struct import_service *services;
  int nservices;
  char *out;
  size_t out_len;
  bool send_failed;
  bool created_failed; /* writing job.created failed */
  double started_ms, received_ms;
  struct import_id_base ids; /* of the new mandates' ids */
  bool failed;               /* import_work's outcome, for import_reply */
  enum err fail_err;
  const char *fail_detail; /* static, or st->reader.error */
};

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void new_uuid(char out[37]) {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

/* ---- The request ------------------------------------------------------ */

static bool source_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 100)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')))
      return false;
  }
  return true;
}

/* The query; on failure *field names the parameter and *detail why. */
static bool parse_query(struct request *rq, struct import_job *job, const char **field,
                        const char **detail) {
  static const char *const allowed[] = {"source", "mode", "dry_run", NULL};
  *detail = NULL;
  if (!request_query_only(rq, allowed, field))
    return false;
  const char *source = request_query(rq, "source");
  *field = "source";
  if (source == NULL) {
    *detail = "Say where the file comes from: ?source=<name of the registry or office>.";
    return false;
  }
  if (!source_valid(source)) {
    *detail = "A source is 1 to 100 letters, digits, '.', '_', ':' or '-', starting with a "
              "letter or digit.";
    return false;
  }
  snprintf(job->source, sizeof job->source, "%s", source);
  const char *mode = request_query(rq, "mode");
  *field = "mode";
  if (mode != NULL && strcmp(mode, "upsert") != 0 && strcmp(mode, "sync") != 0)
    return false;
  job->sync = mode != NULL && strcmp(mode, "sync") == 0;
  const char *dry = request_query(rq, "dry_run");
  *field = "dry_run";
  if (dry != NULL && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0)
    return false;
  job->dry_run = dry != NULL && strcmp(dry, "true") == 0;
  *field = NULL;
  return true;
}

/* text/csv or application/x-ndjson, in UTF-8 (a charset parameter, if
 * any, must say so). */
static bool parse_content_type(const char *ct, enum import_format *format, const char **detail) {
  *detail = NULL;
  if (ct == NULL)
    return false;
  static const struct {
    const char *type;
    enum import_format format;
  } types[] = {{"text/csv", IMPORT_CSV},
               {"application/x-ndjson", IMPORT_NDJSON},
               {"application/ndjson", IMPORT_NDJSON}};
  const char *params = NULL;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    size_t n = strlen(types[i].type);
    if (strncasecmp(ct, types[i].type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) {
      *format = types[i].format;
      params = ct + n;
      break;
    }
  }
  if (params == NULL)
    return false;
  const char *charset = strcasestr(params, "charset=");
  if (charset != NULL) {
    charset += 8;
    if (*charset == '"')
      charset++;
    if (strncasecmp(charset, "utf-8", 5) != 0 && strncasecmp(charset, "utf8", 4) != 0) {
      *detail = "Send the file in UTF-8 (charset=utf-8).";
      return false;
    }
  }
  return true;
}

/* ---- Rows to COPY ----------------------------------------------------- */

static bool flush(struct import_state *st) {
  if (st->out_len > 0 && !st->send_failed)
    st->send_failed = !import_db_copy_put(st->pg, st->out, st->out_len);
  st->out_len = 0;
  return !st->send_failed;
}

/* The trail's lines of the rows that may become new mandates, in a file
 * of the machine's temporary directory, removed at once (it holds the
 * parties' numbers: open only to this process, and gone with it). */
static FILE *created_open(void) {
  const char *dir = getenv("TMPDIR");
  char path[256];
  snprintf(path, sizeof path, "%s/machtigen-import-XXXXXX", dir != NULL && dir[0] ? dir : "/tmp");
  int fd = mkstemp(path);
  if (fd < 0) {
    log_msg(LOG_ERROR, "import: no temporary file in %s: %m", path);
    return NULL;
  }
  unlink(path);
  FILE *f = fdopen(fd, "w+");
  if (f == NULL) {
    close(fd);
    return NULL;
  }
  setvbuf(f, NULL, _IOFBF, 256 * 1024);
  return f;
}

static void created_add(struct import_state *st, const struct import_row *row) {
  char line[IMPORT_CHANGE_LINE_MAX];
  size_t n = import_row_change_line(row, &st->ids, line, sizeof line);
  if (n > sizeof line || fwrite(line, 1, n, st->job.created) != n)
    st->created_failed = true;
}

static bool on_row(void *ctx, struct import_row *row) {
  struct import_state *st = ctx;
  if (row->code == NULL && st->job.created != NULL && !st->created_failed)
    created_add(st, row);
  size_t n = import_row_copy_line(row, &st->ids, st->out + st->out_len, OUT_CAP - st->out_len);
  if (n > OUT_CAP - st->out_len) {
    if (!flush(st))
      return false;
    n = import_row_copy_line(row, &st->ids, st->out, OUT_CAP);
  }
  st->out_len += n;
  return st->out_len < OUT_FLUSH || flush(st);
}

/* The catalogue as the row checks need it. */
static bool load_services(struct import_state *st) {
  PGresult *r;
  if (import_db_services(st->pg, &r) != DB_OK)
    return false;
  int n = PQntuples(r);
  st->services = calloc((size_t)(n > 0 ? n : 1), sizeof *st->services);
  if (st->services == NULL) {
    PQclear(r);
    return false;
  }
  for (int i = 0; i < n; i++) {
    struct service s;
    service_from_row(r, i, &s);
    struct import_service *is = &st->services[i];
    snprintf(is->code, sizeof is->code, "%s", s.code);
    is->max_days = s.max_duration_days;
    is->allow_person = s.allow_person;
    is->allow_organisation = s.allow_organisation;
    for (int k = MK_VOLUNTARY; k <= MK_MENTORSCHAP; k++) {
      char quoted[32];
      snprintf(quoted, sizeof quoted, "\"%s\"", mandate_kind_name((enum mandate_kind)k));
      if (strstr(s.kinds_json, quoted) != NULL)
        is->kinds |= 1u << k;
    }
  }
  st->nservices = n;
  PQclear(r);
  return true;
}

/* ---- stream_ops --------------------------------------------------------- */

/* An answer before the upload: nothing was started that needs undoing. */
static enum MHD_Result refuse(struct request *rq, enum err e, const char *field) {
  struct import_state *st = rq->stream_state;
  import_db_close(st->pg);
  st->pg = NULL;
  return reply_problem(rq, e, NULL, field);
}

static enum MHD_Result import_begin(struct request *rq) {
  struct import_job job = {.started = now_usec()};
  const char *field, *detail;
  if (!parse_query(rq, &job, &field, &detail))
    return reply_problem(rq, ERR_INVALID_QUERY, detail, field);
  enum import_format format = IMPORT_CSV;
  if (!parse_content_type(request_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE), &format, &detail))
    return reply_problem(rq, ERR_IMPORT_MEDIA_TYPE, detail, NULL);
  job.format = format == IMPORT_CSV ? "csv" : "ndjson";
  snprintf(job.client, sizeof job.client, "%s", rq->client.id);
  snprintf(job.actor, sizeof job.actor, "admin:%s", rq->client.id);
  new_uuid(job.id);

  struct import_state *st = calloc(1, sizeof *st);
  if (st == NULL)
    return reply_problem(rq, ERR_INTERNAL_ERROR, NULL, NULL);
  rq->stream_state = st;
  st->job = job;
  st->ids = (struct import_id_base){.started_ms = job.started / 1000,
                                    .tail = (uint32_t)strtoull(job.id, NULL, 16)};
  st->started_ms = mono_ms();
  st->out = malloc(OUT_CAP);
  if (!job.dry_run && st->out != NULL && (st->job.created = created_open()) == NULL)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  st->pg = st->out != NULL ? import_db_open() : NULL;
  if (st->pg == NULL)
    return refuse(rq, ERR_SERVICE_UNAVAILABLE, NULL);
  bool busy = false;
  if (import_db_start(st->pg, job.source, &busy) != DB_OK)
    return refuse(rq, ERR_SERVICE_UNAVAILABLE, NULL);
  if (busy)
    return refuse(rq, ERR_IMPORT_IN_PROGRESS, "source");
  st->stats = import_db_stats_begin();
  if (!load_services(st) || import_db_copy_begin(st->pg) != DB_OK)
    return refuse(rq, ERR_SERVICE_UNAVAILABLE, NULL);
  memcpy(st->out, IMPORT_COPY_HEADER, IMPORT_COPY_HEADER_LEN);
  st->out_len = IMPORT_COPY_HEADER_LEN;
  if (!import_reader_init(&st->reader, format, st->services, st->nservices, job.started,
                          IMPORT_BLOOM_BITS, on_row, st))
    return refuse(rq, ERR_INTERNAL_ERROR, NULL);
  return MHD_YES;
}

static bool import_data(struct request *rq, const char *data, size_t len) {
  struct import_state *st = rq->stream_state;
  st->job.bytes += (long long)len;
  return import_reader_feed(&st->reader, data, len);
}

/* Nothing was kept: end the COPY with an error and roll back; the answer
 * says why (import_reply). */
static void fail(struct import_state *st, enum err e, const char *detail) {
  import_db_close(st->pg);
  st->pg = NULL;
  st->failed = true;
  st->fail_err = e;
  st->fail_detail = detail;
  log_msg(LOG_INFO, "import %s from %s failed: %s", st->job.id, st->job.source, err_code(e));
}

static enum err db_error(enum db_status s) {
  return s == DB_CONFLICT || s == DB_SOFT_ERROR ? ERR_IMPORT_CONFLICT : ERR_SERVICE_UNAVAILABLE;
}

/* The upload is complete: the checks, the merge and the report, on the
 * request's thread of its own (stream_ops.work). */
static void import_work(struct request *rq, bool truncated) {
  struct import_state *st = rq->stream_state;
  if (truncated) {
    fail(st, ERR_IMPORT_TRUNCATED, NULL);
    return;
  }
  if (!st->reader.stopped)
    import_reader_finish(&st->reader);
  if (st->reader.error[0] != '\0') {
    fail(st, ERR_IMPORT_HEADER, st->reader.error);
    return;
  }
  if (!st->send_failed && st->out_len + IMPORT_COPY_TRAILER_LEN > OUT_CAP)
    flush(st);
  memcpy(st->out + st->out_len, IMPORT_COPY_TRAILER, IMPORT_COPY_TRAILER_LEN);
  st->out_len += IMPORT_COPY_TRAILER_LEN;
  if (st->send_failed || !flush(st)) {
    fail(st, ERR_SERVICE_UNAVAILABLE, NULL);
    return;
  }
  if (st->job.created != NULL && (st->created_failed || fflush(st->job.created) != 0)) {
    log_msg(LOG_ERROR, "import %s: writing its temporary file failed", st->job.id);
    fail(st, ERR_SERVICE_UNAVAILABLE, NULL);
    return;
  }
  enum db_status s = import_db_copy_end(st->pg, NULL);
  if (s != DB_OK) {
    fail(st, ERR_SERVICE_UNAVAILABLE, NULL);
    return;
  }
  st->received_ms = mono_ms();
  st->job.rows = st->reader.rows;
  st->job.ref_seen = st->reader.ref_seen;
  st->job.pair_seen = st->reader.pair_seen;

  import_db_stats_end(st->stats);
  st->stats = NULL;
  struct import_outcome out;
  s = import_db_apply(st->pg, &st->job, &out);
  if (s != DB_OK) {
    fail(st, db_error(s), NULL);
    return;
  }
  char timings[200];
  snprintf(timings, sizeof timings,
           "{\"receive_ms\":%.0f,\"validate_ms\":%.0f,\"merge_ms\":%.0f,\"audit_ms\":%.0f,"
           "\"total_ms\":%.0f}",
           st->received_ms - st->started_ms, out.validate_ms, out.merge_ms, out.audit_ms,
           mono_ms() - st->started_ms);
  s = import_db_save_report(st->pg, &st->job, &out, timings);
  if (s == DB_OK)
    s = import_db_commit(st->pg);
  if (s != DB_OK) {
    fail(st, db_error(s), NULL);
    return;
  }
  import_db_close(st->pg);
  st->pg = NULL;
  log_msg(LOG_INFO,
          "import %s from %s%s: %lld rows, %lld inserted, %lld updated, %lld unchanged, "
          "%lld ended, %lld superseded, %lld rejected in %s",
          st->job.id, st->job.source, st->job.dry_run ? " (dry run)" : "", out.rows, out.inserted,
          out.updated, out.unchanged, out.ended, out.superseded, out.rejected, timings);
}

static enum MHD_Result import_reply(struct request *rq) {
  struct import_state *st = rq->stream_state;
  if (st->failed)
    return reply_problem(rq, st->fail_err, st->fail_detail, NULL);
  return import_reply_report(rq, MHD_HTTP_CREATED, st->job.id);
}

static void import_cleanup(struct request *rq) {
  struct import_state *st = rq->stream_state;
  if (st == NULL)
    return;
  if (st->pg != NULL)
    log_msg(LOG_INFO, "import %s from %s abandoned: nothing was changed", st->job.id,
            st->job.source);
  import_db_close(st->pg);
  if (st->stats != NULL)
    PQfinish(st->stats);
  import_reader_free(&st->reader);
  free(st->services);
  free(st->out);
  if (st->job.created != NULL)
    fclose(st->job.created);
  free(st);
  rq->stream_state = NULL;
}

const struct stream_ops imports_stream = {import_begin, import_data, import_work, import_reply,
                                          import_cleanup};
