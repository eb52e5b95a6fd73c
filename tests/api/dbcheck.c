#include "dbcheck.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include "client.h"

#define MAX_PARAMS 8

static PGconn *conn;

PGconn *db_conn(void) {
  if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
    return conn;
  if (conn != NULL)
    PQfinish(conn);
  conn = PQconnectdb(api_env("DATABASE_URL"));
  if (PQstatus(conn) != CONNECTION_OK)
    fail_msg("cannot connect to DATABASE_URL: %s", PQerrorMessage(conn));
  return conn;
}

PGconn *db_conn_other(void) {
  PGconn *c = PQconnectdb(api_env("DATABASE_URL"));
  if (PQstatus(c) != CONNECTION_OK)
    fail_msg("cannot connect to DATABASE_URL: %s", PQerrorMessage(c));
  return c;
}

void db_close(void) {
  if (conn != NULL)
    PQfinish(conn);
  conn = NULL;
}

static PGresult *vquery(const char *sql, va_list ap) {
  const char *params[MAX_PARAMS];
  int n = 0;
  for (const char *p = va_arg(ap, const char *); p != NULL; p = va_arg(ap, const char *)) {
    if (n == MAX_PARAMS)
      fail_msg("too many parameters for: %s", sql);
    params[n++] = p;
  }
  PGresult *r = PQexecParams(db_conn(), sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
    PQclear(r);
    fail_msg("SQL failed: %s\n  %s", sql, msg);
  }
  return r;
}

PGresult *db_query(const char *sql, ...) {
  va_list ap;
  va_start(ap, sql);
  PGresult *r = vquery(sql, ap);
  va_end(ap);
  return r;
}

long long db_int(const char *sql, ...) {
  va_list ap;
  va_start(ap, sql);
  PGresult *r = vquery(sql, ap);
  va_end(ap);
  long long v =
      PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  PQclear(r);
  return v;
}

char *db_text(const char *sql, ...) {
  va_list ap;
  va_start(ap, sql);
  PGresult *r = vquery(sql, ap);
  va_end(ap);
  char *v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
  PQclear(r);
  return v;
}

struct db_snapshot db_snapshot(void) {
  PGresult *r = db_query("SELECT (SELECT count(*) FROM mandates),"
                         " (SELECT coalesce(sum(version), 0) FROM mandates),"
                         " (SELECT count(*) FROM audit_events),"
                         " (SELECT count(*) FROM import_changes)",
                         NULL);
  struct db_snapshot s = {
      strtoll(PQgetvalue(r, 0, 0), NULL, 10), strtoll(PQgetvalue(r, 0, 1), NULL, 10),
      strtoll(PQgetvalue(r, 0, 2), NULL, 10), strtoll(PQgetvalue(r, 0, 3), NULL, 10)};
  PQclear(r);
  return s;
}

void db_expect_unchanged(const struct db_snapshot *before, const char *what) {
  struct db_snapshot now = db_snapshot();
  if (now.mandates != before->mandates || now.versions != before->versions ||
      now.audit != before->audit || now.changes != before->changes)
    fail_msg("%s changed the database: mandates %lld -> %lld, sum of versions %lld -> %lld, "
             "audit_events %lld -> %lld, import_changes %lld -> %lld",
             what, before->mandates, now.mandates, before->versions, now.versions, before->audit,
             now.audit, before->changes, now.changes);
}

long long audit_head_seq(void) {
  return db_int("SELECT coalesce(max(seq), 0) FROM audit_events", NULL);
}

void audit_expect_one(long long after_seq, const char *event, const char *mandate_id,
                      const char *actor) {
  char seq[32];
  snprintf(seq, sizeof seq, "%lld", after_seq);
  PGresult *r = db_query("SELECT event, mandate_id::text, actor FROM audit_events WHERE seq > $1"
                         " ORDER BY seq",
                         seq, NULL);
  int rows = PQntuples(r);
  char got[256] = "";
  for (int i = 0; i < rows && strlen(got) < 200; i++)
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? ", " : "",
             PQgetvalue(r, i, 0));
  bool ok = rows == 1 && strcmp(PQgetvalue(r, 0, 0), event) == 0 &&
            strcmp(PQgetvalue(r, 0, 1), mandate_id) == 0 && strcmp(PQgetvalue(r, 0, 2), actor) == 0;
  char actual_actor[40] = "";
  if (rows == 1)
    snprintf(actual_actor, sizeof actual_actor, "%s", PQgetvalue(r, 0, 2));
  PQclear(r);
  if (!ok)
    fail_msg("expected exactly one audit row %s by %s for %s; got %d row(s): [%s] (actor %s)",
             event, actor, mandate_id, rows, got, actual_actor);
}

void audit_expect_chain(void) {
  long long broken = db_int("SELECT count(*) FROM (SELECT seq, prev_hash,"
                            " lag(hash) OVER (ORDER BY seq) AS previous FROM audit_events) t"
                            " WHERE previous IS NOT NULL AND prev_hash IS DISTINCT FROM previous",
                            NULL);
  if (broken != 0) {
    char *first = db_text("SELECT min(seq) FROM (SELECT seq, prev_hash,"
                          " lag(hash) OVER (ORDER BY seq) AS previous FROM audit_events) t"
                          " WHERE previous IS NOT NULL AND prev_hash IS DISTINCT FROM previous",
                          NULL);
    fail_msg("audit chain broken at %lld row(s), first at seq %s", broken, first);
  }
  long long rows = db_int("SELECT count(*) FROM audit_events", NULL);
  if (rows == 0)
    fail_msg("audit_events is empty: no state change was audited");
  /* The first row links to the empty chain's head, sha256(''). */
  long long first_ok = db_int("SELECT count(*) FROM audit_events WHERE seq = (SELECT min(seq) FROM"
                              " audit_events) AND prev_hash = sha256(''::bytea)",
                              NULL);
  if (first_ok != 1)
    fail_msg("the first audit row does not start from sha256('')");
}
