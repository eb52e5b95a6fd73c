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
/* imports_db_audit.c: the changes in import_changes (their number and
 * digest in out), and, last before the commit, the chained event that
 * seals them, named in the import's report. */
enum db_status import_audit_changes(PGconn *c, const struct import_job *job,
                                    struct import_outcome *out);
enum db_status import_audit_seal(PGconn *c, const struct import_job *job,
                                 const struct import_outcome *o);

#endif
