/* The audit trail of an import (schema/0006): every change one narrow row
 * of import_changes, and one chained event, import_applied, that seals
 * them with their number and digest.
 *
 * The rows are written on a second connection, the trail's, while the
 * merge runs: each merge statement sends back the changes it makes
 * (COPY (… RETURNING …) TO STDOUT), machtigend numbers and digests them
 * and passes them on to a COPY into import_changes, so the two backends
 * write the mandates and their trail at the same time, on two cores; the
 * lines of new mandates, written while the upload was read, go to the
 * trail while the insert runs (it sends nothing back).  The
 * trail's transaction commits just before the import's, after the seal;
 * should the import's commit then fail, its changes stay behind with no
 * event sealing them: they are in no trail, and `audit verify` counts
 * them as changes of an import that did not finish.  The chain head is
 * held for the seal and the commit only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "db/audit.h"
#include "db/imports_db_internal.h"
#include "log.h"

/* Lines are passed on in pieces of about this size. */
#define TRAIL_PIECE (64 * 1024)

struct import_trail {
  PGconn *conn;
  struct changes_digest digest;
  size_t len;
  char buf[TRAIL_PIECE + 512];
};

static void trail_close(struct import_trail *t) {
  if (t == NULL)
    return;
  if (t->digest.ctx != NULL)
    changes_digest_end(&t->digest, (char[65]){0});
  import_db_close(t->conn);
  free(t);
}

void import_trail_abandon(struct import_outcome *out) {
  trail_close(out->trail);
  out->trail = NULL;
}

enum db_status import_trail_open(struct import_outcome *out) {
  struct import_trail *t = calloc(1, sizeof *t);
  if (t == NULL)
    return DB_HARD_ERROR;
  out->trail = t;
  t->conn = import_db_connect("machtigend-import-trail");
  if (t->conn == NULL)
    return DB_HARD_ERROR;
  enum db_status st = import_run(t->conn, "trail begin", "BEGIN", 0, NULL, NULL);
  if (st != DB_OK)
    return st;
  PGresult *r =
      PQexec(t->conn, "COPY import_changes (import_id, " IMPORT_CHANGE_COLS ") FROM STDIN");
  st = PQresultStatus(r) == PGRES_COPY_IN ? DB_OK : import_classify(t->conn, r, "trail copy");
  PQclear(r);
  if (st != DB_OK)
    return st;
  changes_digest_start(&t->digest);
  return DB_OK;
}

static bool trail_flush(struct import_trail *t) {
  if (t->len > 0 && !import_db_copy_put(t->conn, t->buf, t->len))
    return false;
  t->len = 0;
  return true;
}

/* One change as the merge sent it (change … old, a COPY text line): its
 * number goes in front, the digest takes it, and the import's id in front
 * of that goes to import_changes. */
static bool trail_add(struct import_trail *t, const char *import_id, const char *line, size_t len) {
  if (t->len + len + 64 > sizeof t->buf && !trail_flush(t))
    return false;
  if (len + 64 > sizeof t->buf) /* cannot be: a change is a few hundred bytes */
    return false;
  char *at = t->buf + t->len;
  int id_len = snprintf(at, 40, "%s\t", import_id);
  int n_len = snprintf(at + id_len, 24, "%lld\t", t->digest.count + 1);
  memcpy(at + id_len + n_len, line, len);
  changes_digest_line(&t->digest, at + id_len, (size_t)n_len + len);
  t->len += (size_t)id_len + (size_t)n_len + len;
  return true;
}

/* Reads what libpq has left of a statement: the first error counts (st
 * when that is one already); *rows (when not NULL) gets the number of
 * rows an INSERT or UPDATE reports. */
static enum db_status results_end(PGconn *c, const char *what, enum db_status st, long long *rows) {
  PGresult *r;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
      if (rows != NULL)
        *rows = strtoll(PQcmdTuples(r), NULL, 10);
    } else if (st == DB_OK) {
      st = import_classify(c, r, what);
    }
    PQclear(r);
  }
  return st;
}

/* Runs sql, a COPY … TO STDOUT, and hands each line to each (until it
 * returns false; the rest is read and dropped); *rows counts the lines.
 * A line each refused, or a broken stream, is a hard error, logged. */
static enum db_status copy_out_each(PGconn *c, const char *import_id, const char *what,
                                    const char *sql,
                                    bool (*each)(void *ctx, const char *line, size_t len),
                                    void *ctx, long long *rows) {
  *rows = 0;
  PGresult *r = PQexec(c, sql);
  enum db_status st = PQresultStatus(r) == PGRES_COPY_OUT ? DB_OK : import_classify(c, r, what);
  PQclear(r);
  if (st != DB_OK)
    return st;
  char *line;
  int len;
  bool taken = true;
  while ((len = PQgetCopyData(c, &line, 0)) > 0) {
    if (taken)
      taken = each(ctx, line, (size_t)len);
    (*rows)++;
    PQfreemem(line);
  }
  st = results_end(c, what, st, NULL);
  if (st == DB_OK && (len == -2 || !taken)) {
    log_msg(LOG_ERROR, "import %s: %s: the lines could not be taken", import_id, what);
    st = DB_HARD_ERROR;
  }
  return st;
}

struct trail_pass {
  struct import_trail *trail;
  const char *import_id;
};

static bool trail_pass_line(void *ctx, const char *line, size_t len) {
  struct trail_pass *p = ctx;
  return trail_add(p->trail, p->import_id, line, len);
}

enum db_status import_trail_stream(PGconn *c, const struct import_job *job,
                                   struct import_outcome *out, const char *what, const char *sql,
                                   long long *rows) {
  struct trail_pass pass = {out->trail, job->id};
  return copy_out_each(c, job->id, what, sql, trail_pass_line, &pass, rows);
}

/* ---- The trail of the inserts --------------------------------------- */

/* The ids of the new mandates, or of the staged rows that make none (the
 * smaller of the two), 16 bytes each, sorted. */
struct id_set {
  unsigned char (*ids)[16];
  size_t n, cap;
  bool inserted; /* the ids are those of the new mandates */
};

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* A UUID as PostgreSQL writes it (36 characters, lower case). */
static bool uuid_bytes(const char *text, unsigned char out[16]) {
  int j = 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return false;
      continue;
    }
    int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[j++] = (unsigned char)(hi << 4 | lo);
    i++;
  }
  return true;
}

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, 16); }

/* The staged rows that make no mandate: rejected, or keying one that
 * exists (the first import of a source has none: import_good is a view
 * whose is_new is true). */
static const char not_inserted_sql[] =
    "COPY (SELECT new_id FROM import_rows WHERE code IS NOT NULL UNION ALL"
    " SELECT r.new_id FROM import_good g JOIN import_rows r ON r.line = g.line"
    " WHERE NOT g.is_new) TO STDOUT";
static const char inserted_sql[] = "COPY (SELECT id FROM import_good WHERE is_new) TO STDOUT";

static bool id_set_add(void *ctx, const char *line, size_t len) {
  struct id_set *set = ctx;
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 1024;
    void *ids = realloc(set->ids, cap * sizeof *set->ids);
    if (ids == NULL)
      return false;
    set->ids = ids;
    set->cap = cap;
  }
  return len == 37 && uuid_bytes(line, set->ids[set->n++]);
}

static enum db_status id_set_fetch(PGconn *c, const char *import_id, struct id_set *set,
                                   bool inserted) {
  set->inserted = inserted;
  long long n;
  enum db_status st =
      copy_out_each(c, import_id, "new mandates' ids", inserted ? inserted_sql : not_inserted_sql,
                    id_set_add, set, &n);
  if (st == DB_OK && set->n > 1)
    qsort(set->ids, set->n, sizeof *set->ids, id_cmp);
  return st;
}

/* Whether the line (c, tab, the id, tab, …) is of a new mandate. */
static bool id_set_takes(const struct id_set *set, const char *line, ssize_t len) {
  unsigned char id[16];
  if (len < 40 || line[0] != 'c' || line[1] != '\t' || line[38] != '\t' ||
      !uuid_bytes(line + 2, id))
    return false;
  bool found = set->n > 0 && bsearch(id, set->ids, set->n, sizeof *set->ids, id_cmp) != NULL;
  return found == set->inserted;
}

/* How often, in lines, the stream looks whether the insert has failed. */
#define INSERT_POLL_LINES 16384

/* The insert, sent on c: its outcome once read (done). */
struct insert_wait {
  PGconn *c;
  bool done;
  enum db_status st;
  long long rows;
};

/* Reads the insert's outcome, waiting for it if need be. */
static void insert_outcome(struct insert_wait *w) {
  if (w->done)
    return;
  w->st = results_end(w->c, "insert", DB_OK, &w->rows);
  w->done = true;
}

/* Reads the insert's outcome if it has come; false when it has failed
 * (so the trail's lines need not be passed on: the import checks again
 * or fails, and the trail is abandoned). */
static bool insert_going(struct insert_wait *w) {
  if (!w->done && (!PQconsumeInput(w->c) || PQisBusy(w->c)))
    return true; /* still running, or a broken connection, which the result will tell */
  insert_outcome(w);
  return w->st == DB_OK;
}

/* Streams the lines of the new mandates into the trail while the insert
 * runs in its own backend; *passed counts them.  Stops early when the
 * insert has failed. */
static bool trail_created_lines(struct import_trail *t, const struct import_job *job,
                                const struct id_set *set, struct insert_wait *w,
                                long long *passed) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  bool ok = true;
  long long read = 0;
  while (ok && (len = getline(&line, &cap, job->created)) > 0) {
    if (id_set_takes(set, line, len)) {
      ok = trail_add(t, job->id, line, (size_t)len);
      (*passed)++;
    }
    if (++read % INSERT_POLL_LINES == 0 && !insert_going(w))
      break;
  }
  free(line);
  return ok && !ferror(job->created);
}

enum db_status import_trail_created(PGconn *c, const struct import_job *job,
                                    struct import_outcome *out, const char *sql, long long *rows) {
  *rows = 0;
  if (job->created == NULL || fflush(job->created) != 0 || fseeko(job->created, 0, SEEK_SET) != 0)
    return DB_HARD_ERROR;
  struct id_set set = {0};
  enum db_status st = id_set_fetch(c, job->id, &set, out->inserted * 2 <= job->rows);
  if (st == DB_OK && !PQsendQuery(c, sql)) {
    log_msg(LOG_ERROR, "import %s: insert: %s", job->id, PQerrorMessage(c));
    st = DB_HARD_ERROR;
  }
  if (st != DB_OK) {
    free(set.ids);
    return st;
  }
  long long passed = 0;
  struct insert_wait w = {.c = c};
  bool streamed = trail_created_lines(out->trail, job, &set, &w, &passed);
  free(set.ids);
  insert_outcome(&w);
  st = w.st;
  *rows = w.rows;
  if (st == DB_OK && (!streamed || passed != *rows)) {
    log_msg(LOG_ERROR, "import %s: insert: %lld new mandates, %lld lines for the trail", job->id,
            *rows, passed);
    st = DB_HARD_ERROR;
  }
  return st;
}

enum db_status import_trail_end(struct import_outcome *out) {
  struct import_trail *t = out->trail;
  if (!trail_flush(t))
    return DB_HARD_ERROR;
  enum db_status st = import_db_copy_end(t->conn, NULL);
  out->changes = t->digest.count;
  if (!changes_digest_end(&t->digest, out->digest))
    st = DB_HARD_ERROR; /* cannot be: the numbers are ours */
  return st;
}

/* Appends import_applied on the head, locked here until the commit, and
 * names it in the import's report; then the trail commits.  The last
 * statements before the import's commit, so that other audited actions
 * wait for the head as briefly as can be. */
enum db_status import_audit_seal(PGconn *c, const struct import_job *job,
                                 struct import_outcome *o) {
  if (o->changes == 0) {
    import_trail_abandon(o);
    return DB_OK;
  }
  PGresult *r;
  enum db_status st = import_run(
      c, "audit head", "SELECT seq, encode(hash, 'hex') FROM audit_head FOR UPDATE", 0, NULL, &r);
  if (st != DB_OK)
    return st;
  unsigned char prev[32], hash[32];
  bool head_ok = PQntuples(r) == 1 && audit_from_hex(PQgetvalue(r, 0, 1), prev, 32);
  long long seq = head_ok ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) + 1 : 0;
  PQclear(r);
  if (!head_ok)
    return DB_HARD_ERROR;
  /* The source matches ^[A-Za-z0-9][A-Za-z0-9._:-]* and the rest is
   * generated: nothing to escape. */
  char detail[400];
  snprintf(detail, sizeof detail,
           "{\"import\":\"%s\",\"source\":\"%s\",\"changes\":%lld,\"digest\":\"%s\"}", job->id,
           job->source, o->changes, o->digest);
  usec_t at = audit_now();
  struct audit_event e = {.event = "import_applied", .actor = job->actor, .detail_json = detail};
  audit_digest(prev, seq, at, &e, hash);
  char seq_text[24], at_text[24], prev_hex[65], hash_hex[65];
  snprintf(seq_text, sizeof seq_text, "%lld", seq);
  snprintf(at_text, sizeof at_text, "%lld", (long long)at);
  audit_to_hex(prev, 32, prev_hex);
  audit_to_hex(hash, 32, hash_hex);
  const char *params[] = {seq_text, at_text, e.event, e.actor, detail, prev_hex, hash_hex};
  st = import_run(c, "import event",
                  "INSERT INTO audit_events (seq, at, event, actor, detail, prev_hash, hash)"
                  " VALUES ($1, from_usec($2), $3, $4, $5::json, decode($6, 'hex'),"
                  " decode($7, 'hex'))",
                  7, params, NULL);
  if (st == DB_OK)
    st =
        import_run(c, "audit head move", "UPDATE audit_head SET seq = $1, hash = decode($2, 'hex')",
                   2, (const char *const[]){seq_text, hash_hex}, NULL);
  if (st == DB_OK)
    st = import_run(c, "report's seal", "UPDATE imports SET audit_seq = $2 WHERE id = $1::uuid", 2,
                    (const char *const[]){job->id, seq_text}, NULL);
  if (st == DB_OK)
    st = import_run(o->trail->conn, "trail commit", "COMMIT", 0, NULL, NULL);
  import_trail_abandon(o);
  return st;
}
