/* Shared by the parts of db/imports_db*.c: statements on the import's own
 * connection, and the steps of import_db_apply. */
#ifndef MACHTIGEN_IMPORTS_DB_INTERNAL_H
#define MACHTIGEN_IMPORTS_DB_INTERNAL_H

#include "db/imports_db.h"

double import_mono_ms(void);

/* The status of a failed result (logged; never a parameter, a BSN). */
enum db_status import_classify(PGconn *c, const PGresult *r, const char *what);
/* Runs sql with text parameters; *res (when res is not NULL) gets the
 * result on success.  what names the step in logs. */
enum db_status import_run(PGconn *c, const char *what, const char *sql, int n,
                          const char *const *params, PGresult **res);
/* The number of rows a statement touched or returned. */
enum db_status import_run_count(PGconn *c, const char *what, const char *sql, int n,
                                const char *const *params, long long *count);

/* imports_db_checks.c: duplicates, keys, overlaps, court-appointed
 * mandates; fills the counts. */
enum db_status import_check_rows(PGconn *c, const struct import_job *job,
                                 struct import_outcome *out);
/* A connection for an import's work (imports_db.h), by its application_name. */
PGconn *import_db_connect(const char *application_name);

/* imports_db_audit.c: the trail's connection, from before the merge to
 * the seal (out->trail); each merge statement, a COPY (… RETURNING the
 * change) TO STDOUT, streamed into it (*rows: the changes); the end of
 * its COPY (out->changes and out->digest); and, last before the commit,
 * the chained event that seals them, named in the import's report, and
 * the trail's commit.  Abandoning rolls the trail back (out->trail may be
 * NULL). */
enum db_status import_trail_open(struct import_outcome *out);
enum db_status import_trail_stream(PGconn *c, const struct import_job *job,
                                   struct import_outcome *out, const char *what, const char *sql,
                                   long long *rows);
/* The inserts: sql is an INSERT, sent while the lines of the new
 * mandates (from job->created; out->inserted of them, as counted by the
 * checks) go to the trail. */
enum db_status import_trail_created(PGconn *c, const struct import_job *job,
                                    struct import_outcome *out, const char *sql, long long *rows);
enum db_status import_trail_end(struct import_outcome *out);
void import_trail_abandon(struct import_outcome *out);
enum db_status import_audit_seal(PGconn *c, const struct import_job *job, struct import_outcome *o);

#endif
