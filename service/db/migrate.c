#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "db/db.h"
#include "db/migrations.h"

/* Any fixed number: all `migrate` runs take the same advisory lock, so two
 * at once apply each migration exactly once. */
#define MIGRATION_LOCK_KEY "727274001"

int db_schema_version_known(void) { return migration_count; }

static bool exec_ok(PGconn *conn, const char *sql, const char *what) {
  PGresult *r = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(r);
  bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok)
    fprintf(stderr, "machtigend migrate: %s failed: %s", what, PQerrorMessage(conn));
  PQclear(r);
  return ok;
}

static int current_version(PGconn *conn) {
  PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
  int v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return v;
}

bool db_migrate(const char *conninfo) {
  PGconn *conn = PQconnectdb(conninfo);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "machtigend migrate: cannot connect to the database: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return false;
  }
  bool ok = exec_ok(conn, "SET client_min_messages = warning", "settings") &&
            exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")",
                    "taking the migration lock") &&
            exec_ok(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version int PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    "creating schema_migrations");
  int have = ok ? current_version(conn) : -1;
  if (have > migration_count) {
    fprintf(stderr,
            "machtigend migrate: the database has schema version %d, newer than this binary's %d\n",
            have, migration_count);
    ok = false;
  }
  for (int i = 0; ok && i < migration_count; i++) {
    const struct migration *m = &migrations[i];
    if (m->version <= have)
      continue;
    fprintf(stderr, "machtigend migrate: applying %s\n", m->name);
    char record[160];
    snprintf(record, sizeof record,
             "INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')", m->version,
             m->name);
    ok = exec_ok(conn, "BEGIN", "BEGIN") && exec_ok(conn, m->sql, m->name) &&
         exec_ok(conn, record, "recording the migration") && exec_ok(conn, "COMMIT", "COMMIT");
    if (!ok)
      exec_ok(conn, "ROLLBACK", "ROLLBACK");
  }
  if (ok)
    fprintf(stderr, "machtigend migrate: schema is at version %d\n", migration_count);
  PQfinish(conn); /* releases the advisory lock */
  return ok;
}
