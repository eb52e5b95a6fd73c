/* The audit trail of an import (schema/0006): every change one narrow row
 * of import_changes, and one chained event, import_applied, that seals
 * them with their number and digest.
 *
 * The rows are written on a second connection, the trail's, while the
 * merge runs: each merge statement sends back the changes it makes
 * (COPY (… RETURNING …) TO STDOUT), machtigend numbers and digests them
 * and passes them on to a COPY into import_changes, so the two backends
 * write the mandates and their trail at the same time, on two cores.  The
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

enum db_status import_trail_stream(PGconn *c, const struct import_job *job,
                                   struct import_outcome *out, const char *what, const char *sql,
                                   long long *rows) {
  struct import_trail *t = out->trail;
  *rows = 0;
  PGresult *r = PQexec(c, sql);
  enum db_status st = PQresultStatus(r) == PGRES_COPY_OUT ? DB_OK : import_classify(c, r, what);
  PQclear(r);
  if (st != DB_OK)
    return st;
  char *line;
  int len;
  bool passed = true;
  while ((len = PQgetCopyData(c, &line, 0)) > 0) {
    if (passed)
      passed = trail_add(t, job->id, line, (size_t)len);
    (*rows)++;
    PQfreemem(line);
  }
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DB_OK)
      st = import_classify(c, r, what);
    PQclear(r);
  }
  if (st == DB_OK && (len == -2 || !passed)) {
    log_msg(LOG_ERROR, "import %s: %s: the changes could not be passed on", job->id, what);
    st = DB_HARD_ERROR;
  }
  return st;
}

/* Where the trail's lines of new mandates are read (job->created). */
struct created_cursor {
  FILE *f;
  char *line; /* the line read last (len > 0), from getline */
  size_t cap;
  ssize_t len;
  long long rewinds;
};

/* Finds the line of the new mandate with this id (36 characters, as the
 * line has it after "c\t"): further on in the file, as the ids come in
 * the file's order (the lines between are of rows the checks rejected,
 * or that keyed existing mandates); should one come earlier, from the
 * start again. */
static bool find_created(struct created_cursor *cur, const char *id) {
  for (int pass = 0; pass < 2; pass++) {
    for (;;) {
      if (cur->len > 38) {
        int cmp = memcmp(cur->line + 2, id, 36);
        if (cmp == 0)
          return true;
        if (cmp > 0)
          break;
      }
      cur->len = getline(&cur->line, &cur->cap, cur->f);
      if (cur->len < 0)
        break;
    }
    rewind(cur->f);
    cur->len = 0;
    cur->rewinds++;
  }
  return false;
}

enum db_status import_trail_created(PGconn *c, const struct import_job *job,
                                    struct import_outcome *out, const char *sql, long long *rows) {
  *rows = 0;
  if (job->created == NULL || fflush(job->created) != 0 || fseeko(job->created, 0, SEEK_SET) != 0)
    return DB_HARD_ERROR;
  PGresult *r = PQexec(c, sql);
  enum db_status st = PQresultStatus(r) == PGRES_COPY_OUT ? DB_OK : import_classify(c, r, "insert");
  PQclear(r);
  if (st != DB_OK)
    return st;
  struct created_cursor cur = {.f = job->created};
  char *id;
  int len;
  bool passed = true;
  while ((len = PQgetCopyData(c, &id, 0)) > 0) {
    if (passed)
      passed = len == 37 && find_created(&cur, id) &&
               trail_add(out->trail, job->id, cur.line, (size_t)cur.len);
    (*rows)++;
    PQfreemem(id);
  }
  free(cur.line);
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DB_OK)
      st = import_classify(c, r, "insert");
    PQclear(r);
  }
  if (cur.rewinds > 0)
    log_msg(LOG_WARN, "import %s: the new mandates came back out of the file's order (%lld times)",
            job->id, cur.rewinds);
  if (st == DB_OK && (len == -2 || !passed)) {
    log_msg(LOG_ERROR, "import %s: insert: the changes could not be passed on", job->id);
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
