/* Bulk imports in PostgreSQL.  An import runs on a connection of its own
 * (never the worker thread's: that one serves other requests between the
 * pieces of an upload, and a connection in COPY state would break them),
 * in one transaction:
 *
 *   import_db_start      BEGIN, try the source's advisory lock, staging table
 *   import_db_services   the catalogue, for the row checks done while reading
 *   import_db_copy_*     COPY the checked rows into the staging table
 *   import_db_apply      wait for the merge lock (and, real runs, the live
 *                        mandates' lock); duplicates, overlaps and
 *                        court-appointed mandates in set-based SQL; merge
 *                        into mandates, its changes streamed to the trail
 *                        (real runs only)
 *   import_db_save_report  the report, the rejected rows, the trail's seal;
 *                        the trail commits
 *   import_db_commit
 *
 * The trail is a second connection, open from the merge to the seal: it
 * writes import_changes while the merge writes mandates (imports_db_audit.c).
 *
 * The report is read back on the worker connection (db_import_get). */
#ifndef MACHTIGEN_IMPORTS_DB_H
#define MACHTIGEN_IMPORTS_DB_H

#include <stdbool.h>
#include <stdio.h>

#include "db/db.h"
#include "domain/domain.h"

struct import_job {
  char id[37];      /* the import's UUID */
  char source[101]; /* ?source= */
  bool sync;        /* mode=sync */
  bool dry_run;
  const char *format;            /* "csv" | "ndjson" */
  char client[80];               /* the admin client's id */
  char actor[90];                /* "admin:<client id>", the audit trail's actor */
  long long bytes;               /* bytes received (after gzip) */
  long long rows;                /* data rows staged */
  long long ref_seen, pair_seen; /* rows the reader flagged (imports_parse.h) */
  usec_t started;
  /* Real runs: the trail's line for each row that passed the reader's
   * checks, in the file's order (import_row_change_line): the merge
   * passes on those of the mandates it inserts. */
  FILE *created;
};

struct import_outcome {
  long long rows, inserted, updated, unchanged, ended, superseded, rejected;
  bool sync_withheld;
  long long changes;          /* written to import_changes, to be sealed */
  char digest[65];            /* of those, in hex (imports_db_audit.c) */
  struct import_trail *trail; /* their writer, from the merge to the seal */
  double validate_ms, merge_ms, audit_ms;
};

/* A new connection for one import, or NULL (logged) when PostgreSQL
 * cannot be reached. */
PGconn *import_db_open(void);

/* The checks' plans need statistics that know what the imports before
 * changed (after a million new mandates, stale ones had the planner scan
 * every mandate where an index finds a few).  Autovacuum refreshes them
 * within a minute or so; an import that comes sooner (more than a tenth
 * of the table plus 10,000 changes since the last ANALYZE) starts an
 * ANALYZE of mandates on a connection of its own while its upload is read
 * (import_db_stats_begin: that connection, or NULL when the statistics
 * are fresh or it failed, which only costs the checks time) and waits
 * for it before its checks (import_db_stats_end, which closes it; NULL
 * is allowed). */
PGconn *import_db_stats_begin(void);
void import_db_stats_end(PGconn *c);
/* Rolls back whatever is open and closes. */
void import_db_close(PGconn *c);

/* BEGIN, the source's lock (*busy: another import of this source holds
 * it; nothing is left open then) and the staging table. */
enum db_status import_db_start(PGconn *c, const char *source, bool *busy);
/* The catalogue, in this transaction: rows as SERVICES_LIST gives them
 * (service_from_row reads them). */
enum db_status import_db_services(PGconn *c, PGresult **res);

enum db_status import_db_copy_begin(PGconn *c);
bool import_db_copy_put(PGconn *c, const char *data, size_t len);
/* Ends the COPY; with abort_reason the COPY (and so the import) fails. */
enum db_status import_db_copy_end(PGconn *c, const char *abort_reason);

/* Everything after the upload: checks, merge, audit.  DB_CONFLICT: the
 * merge met a change made at the same time (nothing is kept). */
enum db_status import_db_apply(PGconn *c, const struct import_job *job, struct import_outcome *out);
/* The report, the rejected rows and the audit trail's seal (out's trail
 * is closed either way). */
enum db_status import_db_save_report(PGconn *c, const struct import_job *job,
                                     struct import_outcome *out, const char *timings_json);
enum db_status import_db_commit(PGconn *c);

/* On the worker connection: the report row (columns in IMPORT_COLS
 * order, see statements.def) and pages of rejected rows. */
enum db_status db_import_get(struct db *db, const char *id, PGresult **res);
enum db_status db_import_rejects_page(struct db *db, const char *id, long long after_line,
                                      PGresult **res);

#endif
