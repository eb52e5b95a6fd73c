/* PostgreSQL access: one connection per server thread, every query a
 * prepared statement from statements.def, results as an explicit status. */
#ifndef MACHTIGEN_DB_H
#define MACHTIGEN_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

enum db_status {
  DB_OK,
  DB_NOT_FOUND,
  DB_CONFLICT,   /* unique or exclusion violation */
  DB_SOFT_ERROR, /* serialization failure or deadlock: retry the transaction */
  DB_HARD_ERROR, /* anything else, or the connection is gone: 503 */
};

enum stmt {
#define STMT(name, sql) STMT_##name,
#include "db/statements.def"
#undef STMT
  STMT_COUNT
};

struct db;

/* The calling thread's connection, (re)connected and prepared as needed;
 * NULL when PostgreSQL cannot be reached. */
struct db *db_get(void);
/* Closes the calling thread's connection (at thread exit / shutdown). */
void db_release(void);

/* Runs a prepared statement.  On DB_OK/DB_NOT_FOUND *res holds the result
 * (NOT_FOUND: a query that returned no rows); the caller PQclear()s it.
 * On errors *res is NULL.  sqlstate of the last error, for callers that
 * need to tell an exclusion from a unique violation. */
enum db_status db_run(struct db *db, enum stmt s, int nparams, const char *const *params,
                      PGresult **res);
const char *db_last_sqlstate(struct db *db);
PGconn *db_conn(struct db *db);
const char *db_last_constraint(struct db *db);

enum db_status db_begin(struct db *db);
enum db_status db_commit(struct db *db);
void db_rollback(struct db *db);

/* Debug builds: aborts when a handler returned with a transaction open. */
void db_assert_idle(void);

/* Schema version this binary knows (the highest migration compiled in). */
int db_schema_version_known(void);
/* Version recorded in schema_migrations, or -1. */
int db_schema_version(struct db *db);

/* `machtigend migrate`: applies the embedded schema/NNNN_*.sql in order.
 * Connects on its own with conninfo; prints progress to stderr. */
bool db_migrate(const char *conninfo);

/* Helpers for reading results. */
long long db_int(const PGresult *r, int row, int col);
const char *db_text(const PGresult *r, int row, int col); /* NULL for SQL NULL */

#endif
