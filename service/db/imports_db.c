/* Bulk imports in PostgreSQL (see imports_db.h): the import's connection,
 * its COPY, the order of the steps, the report, and the two queries the
 * worker connection runs.  The checks across rows are in
 * imports_db_checks.c, the audit rows in imports_db_audit.c.  The
 * statements run once per import on the import's own connection, so they
 * are sent as they are rather than prepared on every worker connection
 * (the two the worker connection runs are in statements.def). */
#include "db/imports_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "db/imports_db_internal.h"
#include "log.h"

/* ---- Running statements -------------------------------------------- */

double import_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

enum db_status import_classify(PGconn *c, const PGresult *r, const char *what) {
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (PQstatus(c) == CONNECTION_OK && state != NULL) {
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
      return DB_SOFT_ERROR;
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0) {
      log_msg(LOG_WARN, "import: %s met a concurrent change (%s)", what, state);
      return DB_CONFLICT;
    }
  }
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  /* The server's text only: never a parameter (a BSN). */
  log_msg(LOG_ERROR, "import: %s failed: %s %s", what, state ? state : "-",
          msg ? msg : PQerrorMessage(c));
  return DB_HARD_ERROR;
}

/* Runs sql with text parameters; *res (when res is not NULL) gets the
 * result on success.  what names the step in logs. */
enum db_status import_run(PGconn *c, const char *what, const char *sql, int n,
                          const char *const *params, PGresult **res) {
  if (res != NULL)
    *res = NULL;
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType rs = PQresultStatus(r);
  if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
    if (res != NULL)
      *res = r;
    else
      PQclear(r);
    return DB_OK;
  }
  enum db_status st = import_classify(c, r, what);
  PQclear(r);
  return st;
}

/* The number of rows a statement touched or returned. */
enum db_status import_run_count(PGconn *c, const char *what, const char *sql, int n,
                                const char *const *params, long long *count) {
  PGresult *r;
  enum db_status st = import_run(c, what, sql, n, params, &r);
  if (st == DB_OK)
    *count =
        PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return st;
}

/* ---- Connection and transaction -------------------------------------- */

#define IMPORT_SOCKET_BUFFER (4 * 1024 * 1024)

PGconn *import_db_connect(const char *application_name) {
  PGconn *c = PQconnectdb(config.database_url);
  if (PQstatus(c) != CONNECTION_OK) {
    log_msg(LOG_ERROR, "import: database connection failed");
    PQfinish(c);
    return NULL;
  }
  /* Room for the rows on their way to the server, so that reading the
   * upload and PostgreSQL's COPY overlap instead of taking turns (the
   * kernel caps it at net.core.wmem_max; measured: the default, about
   * 200 KiB, left both sides idle a third of the time). */
  int sndbuf = IMPORT_SOCKET_BUFFER;
  (void)setsockopt(PQsocket(c), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  /* Memory for the sorts and hashes over a whole file, and for the
   * staging table (this session's own; a million rows take about 210 MB,
   * and with 128 MB each of the checks' scans of them read them back
   * through the kernel: 0.05-0.1 s more a scan).  No JIT: the checks' statements
   * are joins through indexes, whose compiling (with the inlining and
   * optimising their estimated costs call for) took longer than it saved
   * (measured on the import bench's second import: its checks 0.6 s
   * faster without). */
  const char *params[] = {application_name};
  if (import_run(
          c, "session settings",
          "SELECT set_config('application_name', $1, false),"
          " set_config('work_mem', '128MB', false), set_config('temp_buffers', '512MB', false),"
          " set_config('jit', 'off', false)",
          1, params, NULL) != DB_OK) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

PGconn *import_db_open(void) { return import_db_connect("machtigend-import"); }

/* Statistics are stale after more changes since the last ANALYZE than a
 * tenth of the table plus 10,000 mandates.  Not for a table that has had
 * few changes: statistics taken of a nearly empty table just before an
 * import fills it would have the planner choose, and cache for the worker
 * connections' prepared statements, plans for an empty table while the
 * import's rows fill the pages (measured: token exchanges during the
 * bench's first import took a median 35 ms instead of 3-4 ms, each one a
 * scan of them). */
static const char stats_stale_sql[] =
    "SELECT s.n_mod_since_analyze > greatest(c.reltuples, 0) / 10 + 10000"
    " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
    " WHERE c.oid = 'mandates'::regclass";

PGconn *import_db_stats_begin(void) {
  PGconn *c = import_db_connect("machtigend-import-analyze");
  if (c == NULL)
    return NULL;
  PGresult *r;
  bool stale = import_run(c, "statistics' age", stats_stale_sql, 0, NULL, &r) == DB_OK &&
               PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  /* Not behind a VACUUM that will not yield (one against wraparound, an
   * administrator's): the import goes on with the old statistics. */
  if (!stale || !PQsendQuery(c, "SET lock_timeout = '1s'; ANALYZE mandates")) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

void import_db_stats_end(PGconn *c) {
  if (c == NULL)
    return;
  double t0 = import_mono_ms();
  const char *failed = NULL;
  PGresult *r;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && failed == NULL) {
      const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      failed =
          state != NULL && strcmp(state, "55P03") == 0 ? "a lock it needs was held" : "an error";
    }
    PQclear(r);
  }
  if (failed != NULL)
    log_msg(LOG_WARN,
            "import: the mandates' statistics were not refreshed (%s); the checks use the"
            " old ones",
            failed);
  else
    log_msg(LOG_INFO, "import: the mandates' statistics were refreshed (waited %.0f ms)",
            import_mono_ms() - t0);
  PQfinish(c);
}

void import_db_close(PGconn *c) {
  if (c == NULL)
    return;
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_ACTIVE) {
    /* Still in COPY (the client went away): end it with an error. */
    PQputCopyEnd(c, "the upload was abandoned");
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL)
      PQclear(r);
  }
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexec(c, "ROLLBACK"));
  PQfinish(c);
}

/* The staging table: every row of the file, rejected ones with their code
 * already set by the row checks.  Temporary: private to this connection,
 * never WAL-logged, gone at the end of the transaction whatever happens.
 * A good row's period and kind come as the types they are compared and
 * stored as (vf, vu, k; NULL for a rejected row): casting the texts in
 * every scan of the good rows took about 0.1 s per scan and column for a
 * million rows. */
static const char staging_sql[] =
    "CREATE TEMP TABLE import_rows (line int8 NOT NULL, ref_known boolean NOT NULL,"
    " ref_seen boolean NOT NULL, pair_seen boolean NOT NULL, code text, message text,"
    " external_ref text, principal text, representative text, service text, kind text,"
    " valid_from text, valid_until text, court_ref text, court text,"
    " vf timestamptz, vu timestamptz, k mandate_kind, new_id uuid NOT NULL)"
    " ON COMMIT DROP";

enum db_status import_db_start(PGconn *c, const char *source, bool *busy) {
  *busy = false;
  enum db_status st = import_run(c, "begin", "BEGIN", 0, NULL, NULL);
  if (st != DB_OK)
    return st;
  /* One import per source at a time: a second one is told at once (409)
   * rather than kept waiting with its upload. */
  const char *params[] = {source};
  PGresult *r;
  st =
      import_run(c, "source lock",
                 "SELECT pg_try_advisory_xact_lock(hashtextextended('machtigen-import:' || $1, 0))",
                 1, params, &r);
  if (st == DB_OK && strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
    *busy = true;
    PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return DB_OK;
  }
  PQclear(r);
  if (st == DB_OK)
    st = import_run(c, "staging table", staging_sql, 0, NULL, NULL);
  return st;
}

/* Locked against deletion and renaming until the import commits: its rows
 * are checked against this catalogue, and its merge does not fire the
 * row trigger that checks each new mandate's service (schema/0009). */
enum db_status import_db_services(PGconn *c, PGresult **res) {
  return import_run(c, "catalogue",
                    "SELECT code, name_nl, name_en, min_loa, max_duration_days, allow_person,"
                    " allow_organisation, array_to_json(mandate_kinds)::text FROM services"
                    " FOR KEY SHARE",
                    0, NULL, res);
}

enum db_status import_db_copy_begin(PGconn *c) {
  PGresult *r = PQexec(c, "COPY import_rows FROM STDIN (FORMAT binary)");
  bool ok = PQresultStatus(r) == PGRES_COPY_IN;
  enum db_status st = ok ? DB_OK : import_classify(c, r, "copy");
  PQclear(r);
  return st;
}

bool import_db_copy_put(PGconn *c, const char *data, size_t len) {
  while (len > 0) {
    int piece = len > (1 << 30) ? (1 << 30) : (int)len;
    if (PQputCopyData(c, data, piece) != 1) {
      log_msg(LOG_ERROR, "import: sending rows failed: %s", PQerrorMessage(c));
      return false;
    }
    data += piece;
    len -= (size_t)piece;
  }
  return true;
}

enum db_status import_db_copy_end(PGconn *c, const char *abort_reason) {
  if (PQputCopyEnd(c, abort_reason) != 1) {
    log_msg(LOG_ERROR, "import: ending the copy failed: %s", PQerrorMessage(c));
    return DB_HARD_ERROR;
  }
  enum db_status st = DB_OK;
  PGresult *r;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && st == DB_OK)
      st = abort_reason != NULL ? DB_HARD_ERROR : import_classify(c, r, "copy");
    PQclear(r);
  }
  return st;
}

enum db_status import_db_commit(PGconn *c) {
  return import_run(c, "commit", "COMMIT", 0, NULL, NULL);
}

/* ---- Merge ------------------------------------------------------------ */

/* Each merge statement sends back the changes it makes, as the trail
 * stores them (imports_db_audit.c): change, mandate id, principal,
 * service, external_ref, kind, old values.  COPY takes no parameters: %1$s
 * is the import's id (ours, a UUID), %2$s the source as a quoted literal.
 *
 * Ends first and inserts last, so that a mandate moved aside by this
 * import is out of the way of the rows that replace it. */
static const char end_sync_sql[] =
    "COPY (UPDATE mandates m SET status = 'revoked', version = m.version + 1,"
    " updated_at = now(), last_import = '%1$s', reason = 'Ended by import %1$s: not in the file"
    " of ' || m.source || ' (mode=sync).' FROM import_ended e WHERE m.id = e.id"
    " RETURNING 'e', m.id, e.principal, e.service, e.external_ref, NULL, NULL) TO STDOUT";

static const char end_superseded_sql[] =
    "COPY (UPDATE mandates m SET status = 'revoked', version = m.version + 1,"
    " updated_at = now(), last_import = '%1$s', reason = 'Ended by import %1$s: a"
    " court-appointed mandate now covers this service.' FROM import_superseded s"
    " WHERE m.id = s.id RETURNING 's', m.id, s.principal, s.service, s.by_ref, NULL, NULL)"
    " TO STDOUT";

/* A suspended mandate stays suspended (an administrator's decision); any
 * other comes back as active with the row's values.  The trail keeps what
 * it was (import_old). */
static const char update_sql[] =
    "COPY (UPDATE mandates m SET principal = g.principal, representative = g.representative,"
    " service = g.service, kind = g.kind, valid_from = g.valid_from,"
    " valid_until = g.valid_until, court_ref = g.court_ref, court = g.court,"
    " status = CASE WHEN m.status = 'suspended' THEN m.status ELSE 'active' END,"
    " reason = CASE WHEN m.status = 'suspended' THEN m.reason END,"
    " version = m.version + 1, updated_at = now(), last_import = '%1$s'"
    " FROM import_good g JOIN import_old o ON o.id = g.id"
    " WHERE m.id = g.id AND NOT g.is_new AND NOT g.unchanged"
    " RETURNING 'u', m.id, g.principal, g.service, g.external_ref, g.kind,"
    " jsonb_build_object('status', o.status, 'principal', o.principal,"
    " 'representative', o.representative, 'service', o.service, 'kind', o.kind,"
    " 'valid_from', o.valid_from, 'valid_until', o.valid_until, 'court_ref', o.court_ref,"
    " 'court', o.court)) TO STDOUT";

/* In the file's order, which is the order of the new ids (and, in the
 * files registries send, mostly of the representatives and references):
 * the indexes that start with them take the rows in sequence.  Nothing
 * comes back: the trail's lines of the new mandates were written while
 * the upload was read (job->created), and are passed on to the trail
 * while this runs (imports_db_audit.c).  Sending back the whole change, as
 * the statements above do, took the inserting backend about 12% longer
 * (measured: 9.3 s against 8.3 s for a million). */
static const char insert_sql[] =
    "INSERT INTO mandates (id, principal, representative, service, kind, status,"
    " valid_from, valid_until, initiated_by, origin, court_ref, court, source, external_ref,"
    " last_import) SELECT id, principal, representative, service, kind, 'active', valid_from,"
    " valid_until, 'admin', 'import', court_ref, court, %2$s, external_ref, '%1$s'"
    " FROM import_good WHERE is_new";

/* What the mandates an import updates were, for the audit trail. */
static const char old_sql[] =
    "CREATE TEMP TABLE import_old ON COMMIT DROP AS SELECT m.id, m.status, m.principal,"
    " m.representative, m.service, m.kind, m.valid_from, m.valid_until, m.court_ref, m.court"
    " FROM import_good g JOIN mandates m ON m.id = g.id"
    " WHERE $1::boolean AND NOT g.is_new AND NOT g.unchanged";

static enum db_status merge(PGconn *c, const struct import_job *job, struct import_outcome *o) {
  const char *old_params[] = {o->updated > 0 ? "t" : "f"};
  enum db_status st = import_run(c, "old values", old_sql, 1, old_params, NULL);
  /* The checks before stand for the live rule (schema/0007): this
   * transaction has held the live mandates' lock since before them. */
  if (st == DB_OK)
    st = import_run(c, "live rule checked",
                    "SELECT set_config('machtigen.live_rule', 'checked-by-import', true)", 0, NULL,
                    NULL);
  char *source = PQescapeLiteral(c, job->source, strlen(job->source));
  if (source == NULL)
    st = DB_HARD_ERROR;
  static const struct {
    const char *what, *sql;
  } steps[] = {{"end (sync)", end_sync_sql},
               {"end (superseded)", end_superseded_sql},
               {"update", update_sql},
               {"insert", insert_sql}};
  long long expect[] = {o->ended, o->superseded, o->updated, o->inserted};
  for (int i = 0; st == DB_OK && i < 4; i++) {
    if (expect[i] == 0)
      continue;
    char *sql = NULL;
    long long n = 0;
    if (asprintf(&sql, steps[i].sql, job->id, source) < 0)
      st = DB_HARD_ERROR;
    else if (steps[i].sql == insert_sql)
      st = import_trail_created(c, job, o, sql, &n);
    else
      st = import_trail_stream(c, job, o, steps[i].what, sql, &n);
    free(sql);
    if (st == DB_OK && n != expect[i]) {
      log_msg(LOG_ERROR, "import %s: %s touched %lld rows, not %lld", job->id, steps[i].what, n,
              expect[i]);
      st = DB_HARD_ERROR;
    }
  }
  PQfreemem(source);
  if (st == DB_OK)
    st = import_run(c, "live rule checked (end)",
                    "SELECT set_config('machtigen.live_rule', '', true)", 0, NULL, NULL);
  return st;
}

/* The checks, the merge and the audit rows, once.  A real run first takes
 * the live mandates' lock (schema/0005): the writers of live mandates
 * take turns, and an import's turn lasts from before its checks to its
 * commit, so that what it checked still holds when it writes. */
static enum db_status apply_once(PGconn *c, const struct import_job *job,
                                 struct import_outcome *out) {
  double t0 = import_mono_ms();
  enum db_status st = DB_OK;
  if (!job->dry_run)
    st = import_run(c, "live mandates lock", "SELECT mandates_lock_live()", 0, NULL, NULL);
  if (st == DB_OK)
    st = import_check_rows(c, job, out);
  double t1 = import_mono_ms();
  out->validate_ms += t1 - t0;
  if (st != DB_OK || job->dry_run)
    return st;
  bool changes = out->inserted + out->updated + out->ended + out->superseded > 0;
  if (changes)
    st = import_trail_open(out);
  if (st == DB_OK)
    st = merge(c, job, out);
  double t2 = import_mono_ms();
  out->merge_ms += t2 - t1;
  /* What the trail's backend has still to write after the merge. */
  if (st == DB_OK && changes)
    st = import_trail_end(out);
  out->audit_ms += import_mono_ms() - t2;
  return st;
}

#define APPLY_ATTEMPTS 3

enum db_status import_db_apply(PGconn *c, const struct import_job *job,
                               struct import_outcome *out) {
  memset(out, 0, sizeof *out);
  /* Imports of different sources may name the same parties: their checks
   * and merges take turns, so each sees what the other committed. */
  enum db_status st = import_run(
      c, "merge lock",
      "SELECT pg_advisory_xact_lock(hashtextextended('machtigen-import-merge', 0))", 0, NULL, NULL);
  /* A merge that meets a change made meanwhile (a deadlock with a request
   * that changes a mandate this import updates; a conflict the checks
   * could not see) fails: the staged rows are still there, so check and
   * merge again from them, and the new checks see it. */
  for (int attempt = 0; st == DB_OK && attempt < APPLY_ATTEMPTS; attempt++) {
    st = import_run(c, "savepoint", "SAVEPOINT import_apply", 0, NULL, NULL);
    if (st == DB_OK)
      st = apply_once(c, job, out);
    if (st != DB_OK)
      import_trail_abandon(out);
    if (st != DB_CONFLICT && st != DB_SOFT_ERROR)
      return st;
    log_msg(LOG_WARN, "import %s: a concurrent change got in the way; checking again", job->id);
    st =
        import_run(c, "rollback to savepoint", "ROLLBACK TO SAVEPOINT import_apply", 0, NULL, NULL);
    double validate_ms = out->validate_ms, merge_ms = out->merge_ms, audit_ms = out->audit_ms;
    memset(out, 0, sizeof *out);
    out->validate_ms = validate_ms;
    out->merge_ms = merge_ms;
    out->audit_ms = audit_ms;
  }
  return st == DB_OK ? DB_CONFLICT : st;
}

/* ---- Report ----------------------------------------------------------- */

static const char report_sql[] =
    "INSERT INTO imports (id, source, mode, dry_run, format, client, rows, inserted, updated,"
    " unchanged, ended, superseded, rejected, sync_withheld, bytes, rejects_by_code, timings,"
    " started_at, finished_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    " coalesce((SELECT jsonb_object_agg(code, n) FROM (SELECT code, count(*) AS n"
    "  FROM import_rejects WHERE import_id = $1 GROUP BY code) x), '{}'),"
    " $16::jsonb, from_usec($17::int8), clock_timestamp())";

static const char rejects_sql[] =
    "INSERT INTO import_rejects (import_id, line, code, message, external_ref, principal,"
    " representative, service, kind, valid_from, valid_until, court_ref, court)"
    " SELECT $1::uuid, line, code, message, external_ref, principal, representative, service, kind,"
    " valid_from, valid_until, court_ref, court FROM import_rows WHERE code IS NOT NULL";

enum db_status import_db_save_report(PGconn *c, const struct import_job *job,
                                     struct import_outcome *o, const char *timings_json) {
  char nums[9][24];
  long long values[] = {o->rows,       o->inserted, o->updated, o->unchanged, o->ended,
                        o->superseded, o->rejected, job->bytes, job->started};
  for (int i = 0; i < 9; i++)
    snprintf(nums[i], sizeof nums[i], "%lld", values[i]);
  const char *params[] = {job->id,
                          job->source,
                          job->sync ? "sync" : "upsert",
                          job->dry_run ? "t" : "f",
                          job->format,
                          job->client,
                          nums[0],
                          nums[1],
                          nums[2],
                          nums[3],
                          nums[4],
                          nums[5],
                          nums[6],
                          o->sync_withheld ? "t" : "f",
                          nums[7],
                          timings_json,
                          nums[8]};
  /* The rejects first: the report counts them by code from there, not
   * with a second pass over the whole staging table. */
  enum db_status st = import_run(c, "rejects", rejects_sql, 1, params, NULL);
  if (st == DB_OK)
    st = import_run(c, "report", report_sql, 17, params, NULL);
  if (st == DB_OK)
    st = import_audit_seal(c, job, o);
  else
    import_trail_abandon(o);
  return st;
}

/* ---- On the worker connection ----------------------------------------- */

enum db_status db_import_get(struct db *db, const char *id, PGresult **res) {
  const char *params[] = {id};
  return db_run(db, STMT_IMPORT_GET, 1, params, res);
}

enum db_status db_import_rejects_page(struct db *db, const char *id, long long after_line,
                                      PGresult **res) {
  char after[24];
  snprintf(after, sizeof after, "%lld", after_line);
  const char *params[] = {id, after};
  return db_run(db, STMT_IMPORT_REJECTS_PAGE, 2, params, res);
}
