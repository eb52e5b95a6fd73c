/* GET /v1/admin/imports/{id} (the report) and GET …/{id}/rejects (the
 * rejected rows as CSV, ready to correct and send again).  The rejects
 * are streamed page by page, each page one complete query on this
 * thread's connection, so a file that was all wrong never sits in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/imports_db.h"
#include "handlers/handlers.h"
#include "handlers/imports.h"
#include "handlers/imports_parse.h"
#include "handlers/mandate_json.h"

/* ---- The report ---------------------------------------------------------- */

static json_t *json_text(const char *text) {
  json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
  return v != NULL ? v : json_object();
}

static json_t *time_json(const PGresult *r, int col) {
  char buf[40];
  time_format(db_int(r, 0, col), buf, sizeof buf);
  return json_string(buf);
}

/* The report as openapi.yaml's ImportReport describes it. */
static json_t *report_json(const PGresult *r) {
  char rejects[80];
  snprintf(rejects, sizeof rejects, "/v1/admin/imports/%s/rejects", db_text(r, 0, 0));
  json_t *counts = json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows", (json_int_t)db_int(r, 0, 6), "inserted",
      (json_int_t)db_int(r, 0, 7), "updated", (json_int_t)db_int(r, 0, 8), "unchanged",
      (json_int_t)db_int(r, 0, 9), "ended", (json_int_t)db_int(r, 0, 10), "superseded",
      (json_int_t)db_int(r, 0, 11), "rejected", (json_int_t)db_int(r, 0, 12));
  return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:o, s:o, s:b, s:I, s:o, s:o, s:o, s:s}", "id",
                   db_text(r, 0, 0), "source", db_text(r, 0, 1), "mode", db_text(r, 0, 2),
                   "dry_run", strcmp(db_text(r, 0, 3), "t") == 0, "format", db_text(r, 0, 4),
                   "client", db_text(r, 0, 5), "counts", counts, "rejects_by_code",
                   json_text(db_text(r, 0, 15)), "sync_withheld",
                   strcmp(db_text(r, 0, 13), "t") == 0, "bytes", (json_int_t)db_int(r, 0, 14),
                   "timings", json_text(db_text(r, 0, 16)), "started_at", time_json(r, 17),
                   "finished_at", time_json(r, 18), "rejects", rejects);
}

/* Common headers and the access log's status, as reply.c does. */
static enum MHD_Result queue(struct request *rq, unsigned status, struct MHD_Response *resp) {
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  rq->status = status;
  enum MHD_Result ret = MHD_queue_response(rq->conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result import_reply_report(struct request *rq, unsigned status, const char *id) {
  struct db *db = db_get();
  if (db == NULL)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  PGresult *r;
  enum db_status st = db_import_get(db, id, &r);
  if (st == DB_NOT_FOUND) {
    PQclear(r);
    return reply_problem(rq, ERR_IMPORT_NOT_FOUND, NULL, NULL);
  }
  if (st != DB_OK)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  json_t *body = report_json(r);
  PQclear(r);
  char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (text == NULL)
    return reply_problem(rq, ERR_INTERNAL_ERROR, NULL, NULL);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  /* A report never changes: its id tags it. */
  char etag[48];
  snprintf(etag, sizeof etag, "\"%s\"", id);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
  if (status == MHD_HTTP_CREATED) {
    char location[64];
    snprintf(location, sizeof location, "/v1/admin/imports/%s", id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
  }
  return queue(rq, status, resp);
}

enum MHD_Result imports_get(struct request *rq) {
  if (!uuid_valid(rq->params[0]))
    return reply_problem(rq, ERR_IMPORT_NOT_FOUND, NULL, NULL);
  return import_reply_report(rq, MHD_HTTP_OK, rq->params[0]);
}

/* ---- The rejects as CSV ----------------------------------------------------- */

struct rejects_stream {
  char id[37];
  long long after; /* the last line sent */
  bool header_sent, done;
  char *buf;
  size_t len, pos;
  size_t cap;
};

static bool buf_put(struct rejects_stream *s, const char *text, size_t n) {
  if (s->len + n > s->cap) {
    size_t cap = s->cap * 2 > s->len + n ? s->cap * 2 : s->len + n;
    char *p = realloc(s->buf, cap);
    if (p == NULL)
      return false;
    s->buf = p;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, text, n);
  s->len += n;
  return true;
}

/* RFC 4180: quoted when it holds a comma, quote or line break. */
static bool csv_field(struct rejects_stream *s, const char *v, bool last) {
  bool ok = true;
  if (v != NULL && strpbrk(v, ",\"\r\n") != NULL) {
    ok = buf_put(s, "\"", 1);
    for (const char *q; ok && (q = strchr(v, '"')) != NULL; v = q + 1)
      ok = buf_put(s, v, (size_t)(q - v) + 1) && buf_put(s, "\"", 1);
    ok = ok && buf_put(s, v, strlen(v)) && buf_put(s, "\"", 1);
  } else if (v != NULL) {
    ok = buf_put(s, v, strlen(v));
  }
  return ok && buf_put(s, last ? "\r\n" : ",", last ? 2 : 1);
}

/* The next page of rejected rows into buf; false on a database error. */
static bool next_page(struct rejects_stream *s) {
  s->len = s->pos = 0;
  bool ok = true;
  if (!s->header_sent) {
    for (int c = 0; ok && c < IC_COUNT; c++)
      ok = csv_field(s, import_column_names[c], false);
    ok = ok && buf_put(s, "line,code,message\r\n", 19);
    s->header_sent = true;
  }
  struct db *db = db_get();
  PGresult *r = NULL;
  enum db_status st = db != NULL ? db_import_rejects_page(db, s->id, s->after, &r) : DB_HARD_ERROR;
  if (st == DB_NOT_FOUND)
    s->done = true;
  else if (st != DB_OK)
    ok = false;
  for (int i = 0; ok && st == DB_OK && i < PQntuples(r); i++) {
    /* Columns: line, code, message, then the import's columns in order. */
    for (int c = 0; ok && c < IC_COUNT; c++)
      ok = csv_field(s, db_text(r, i, 3 + c), false);
    ok = ok && csv_field(s, db_text(r, i, 0), false) && csv_field(s, db_text(r, i, 1), false) &&
         csv_field(s, db_text(r, i, 2), true);
    s->after = db_int(r, i, 0);
  }
  PQclear(r);
  return ok;
}

static ssize_t rejects_read(void *cls, uint64_t pos, char *out, size_t max) {
  struct rejects_stream *s = cls;
  while (s->pos == s->len) {
    if (s->done)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (!next_page(s))
      return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  size_t n = s->len - s->pos < max ? s->len - s->pos : max;
  memcpy(out, s->buf + s->pos, n);
  s->pos += n;
  return (ssize_t)n;
}

static void rejects_free(void *cls) {
  struct rejects_stream *s = cls;
  free(s->buf);
  free(s);
}

enum MHD_Result imports_rejects(struct request *rq) {
  if (!uuid_valid(rq->params[0]))
    return reply_problem(rq, ERR_IMPORT_NOT_FOUND, NULL, NULL);
  struct db *db = db_get();
  if (db == NULL)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  PGresult *r;
  enum db_status st = db_import_get(db, rq->params[0], &r);
  PQclear(r);
  if (st == DB_NOT_FOUND)
    return reply_problem(rq, ERR_IMPORT_NOT_FOUND, NULL, NULL);
  if (st != DB_OK)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  struct rejects_stream *s = calloc(1, sizeof *s);
  if (s == NULL)
    return reply_problem(rq, ERR_INTERNAL_ERROR, NULL, NULL);
  snprintf(s->id, sizeof s->id, "%s", rq->params[0]);
  struct MHD_Response *resp =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, rejects_read, s, rejects_free);
  if (resp == NULL) {
    rejects_free(s);
    return MHD_NO;
  }
  char disposition[96];
  snprintf(disposition, sizeof disposition, "attachment; filename=\"import-%s-rejects.csv\"",
           s->id);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/csv; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
  return queue(rq, MHD_HTTP_OK, resp);
}
