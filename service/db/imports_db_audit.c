/* The audit trail of an import (schema/0006): every change one narrow row
 * of import_changes, written in one statement, and one chained event,
 * import_applied, that seals them with their number and digest.  The
 * chain head is held for that one event and the commit only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/audit.h"
#include "db/imports_db_internal.h"
#include "log.h"

/* Every change in one statement, by principal (the trail's index by
 * principal then takes them in sequence; sorted as the number the 9
 * digits make, which is their text's order: a text sort of a million
 * 'bsn:…' values was most of this statement, as they share the prefix
 * that abbreviated sort keys are made of), numbered in that order, and
 * sent back as inserted for the digest.  %s: the import's id (COPY takes
 * no parameters; the id is ours, a UUID). */
static const char changes_sql[] =
    "COPY (WITH x AS ("
    " SELECT 'e'::\"char\" AS change, e.id, e.principal, e.service, e.external_ref,"
    "  NULL::mandate_kind AS kind, NULL::jsonb AS old FROM import_ended e"
    " UNION ALL SELECT 's', s.id, s.principal, s.service, s.by_ref, NULL, NULL"
    "  FROM import_superseded s"
    " UNION ALL SELECT 'u', g.id, g.principal, g.service, g.external_ref, g.kind,"
    "  jsonb_build_object('status', o.status, 'principal', o.principal,"
    "  'representative', o.representative, 'service', o.service, 'kind', o.kind,"
    "  'valid_from', o.valid_from, 'valid_until', o.valid_until, 'court_ref', o.court_ref,"
    "  'court', o.court) FROM import_good g JOIN import_old o ON o.id = g.id"
    " UNION ALL SELECT 'c', g.id, g.principal, g.service, g.external_ref, g.kind, NULL"
    "  FROM import_good g WHERE g.is_new)"
    " INSERT INTO import_changes (import_id, " IMPORT_CHANGE_COLS ")"
    " SELECT '%s', row_number() OVER (ORDER BY substr(principal, 5)::int8, change, id),"
    "  change, id, principal, service, external_ref, kind, old"
    "  FROM x ORDER BY substr(principal, 5)::int8, change, id"
    " RETURNING " IMPORT_CHANGE_COLS ") TO STDOUT";

/* Runs changes_sql and digests the rows as they come back. */
enum db_status import_audit_changes(PGconn *c, const struct import_job *job,
                                    struct import_outcome *out) {
  char sql[sizeof changes_sql + 64];
  snprintf(sql, sizeof sql, changes_sql, job->id);
  PGresult *r = PQexec(c, sql);
  enum db_status st =
      PQresultStatus(r) == PGRES_COPY_OUT ? DB_OK : import_classify(c, r, "changes");
  PQclear(r);
  if (st != DB_OK)
    return st;
  struct changes_digest d;
  changes_digest_start(&d);
  char *line;
  int len;
  while ((len = PQgetCopyData(c, &line, 0)) > 0) {
    changes_digest_line(&d, line, (size_t)len);
    PQfreemem(line);
  }
  bool in_order = changes_digest_end(&d, out->digest);
  out->changes = d.count;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DB_OK)
      st = import_classify(c, r, "changes");
    PQclear(r);
  }
  if (len == -2 && st == DB_OK)
    st = DB_HARD_ERROR;
  if (st == DB_OK && !in_order) {
    log_msg(LOG_ERROR, "import %s: the changes came back out of order", job->id);
    st = DB_HARD_ERROR;
  }
  return st;
}

/* Appends import_applied on the head, locked here until the commit, and
 * names it in the import's report: the last statements before the commit,
 * so that other audited actions wait for the head as briefly as can be. */
enum db_status import_audit_seal(PGconn *c, const struct import_job *job,
                                 const struct import_outcome *o) {
  if (o->changes == 0)
    return DB_OK;
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
  return st;
}
