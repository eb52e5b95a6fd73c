/* Direct PostgreSQL access for the API tests (DATABASE_URL, superuser):
 * the "nothing changed" snapshot, audit checks, and set-ups the API cannot
 * make (legal mandates, old requests).  Main thread only. */
#ifndef API_DBCHECK_H
#define API_DBCHECK_H

#include <libpq-fe.h>

/* The process's connection; fails the test if PostgreSQL does not answer. */
PGconn *db_conn(void);
void db_close(void);
/* A connection of its own (for a second transaction, or settings that
 * must not stay on db_conn's), the caller's to PQfinish; fails the test
 * if PostgreSQL does not answer. */
PGconn *db_conn_other(void);

/* Runs sql with NULL-terminated text parameters; fails the test on an
 * error.  The result is the caller's to PQclear. */
PGresult *db_query(const char *sql, ...) __attribute__((sentinel));
/* The first column of the first row as a number (0 when NULL). */
long long db_int(const char *sql, ...) __attribute__((sentinel));
/* The first column of the first row as a malloc'd string (NULL when NULL). */
char *db_text(const char *sql, ...) __attribute__((sentinel));

struct db_snapshot {
  long long mandates;
  long long versions; /* sum of mandates.version */
  long long audit;    /* count of audit_events */
  long long changes;  /* count of import_changes */
};

struct db_snapshot db_snapshot(void);
/* Fails the test (naming what) when the two differ. */
void db_expect_unchanged(const struct db_snapshot *before, const char *what);

/* The highest audit seq now (0 when none). */
long long audit_head_seq(void);
/* Fails unless exactly one audit row came after seq: event for mandate_id
 * by actor. */
void audit_expect_one(long long after_seq, const char *event, const char *mandate_id,
                      const char *actor);
/* Fails unless every row's prev_hash is the previous row's hash (seq
 * order) and the first row starts from the empty chain, sha256(''). */
void audit_expect_chain(void);

#endif
