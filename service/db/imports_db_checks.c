/* The checks of an import that need other rows or the database, in
 * set-based SQL on the staging table (imports_db.h): repeated
 * external_refs, the mandates an import replaces or ends, overlaps within
 * the file and with the database, and court-appointed mandates against
 * voluntary ones.  The checks that need only the row ran while it was
 * read (handlers/imports_parse.c). */
#include <stdlib.h>
#include <string.h>

#include "db/imports_db_internal.h"
#include "log.h"

/* An imported mandate's key as its unique index has it (schema/0010), and
 * the condition that finds a source's ($1) mandates through that index:
 * its keys run from source || '|' to source || '}'.  That range holds
 * the keys of this source alone (a source has no '|'), so it says
 * "m.source = $1" by itself; stating that as well would have the planner
 * take the two for independent and expect far fewer rows. */
#define SOURCE_KEYS(m) " (" m ".source || '|' || " m ".external_ref) "
#define OF_SOURCE(m) SOURCE_KEYS(m) ">= $1::text || '|' AND" SOURCE_KEYS(m) "< $1::text || '}' "

/* A repeated external_ref: the first line stands, later ones are
 * rejected (whatever happened to the first).  Only the keys of rows the
 * reader flagged (ref_seen) can repeat. */
static const char duplicates_sql[] =
    "WITH ranked AS (SELECT r.ctid AS rid, r.line,"
    "  min(r.line) OVER (PARTITION BY r.external_ref) AS first_line FROM import_rows r"
    "  WHERE r.ref_known AND r.external_ref IN (SELECT external_ref FROM import_rows"
    "  WHERE ref_seen))"
    " UPDATE import_rows r SET code = 'duplicate-external-ref',"
    "  message = 'This external_ref is also on line ' || k.first_line || '; the first one counts.'"
    " FROM ranked k WHERE r.ctid = k.rid AND k.line > k.first_line AND r.code IS NULL";

/* sync must not end a mandate whose row is present but rejected; when a
 * rejected row's external_ref could not be read, no ending is safe. */
static const char withheld_sql[] = "SELECT EXISTS (SELECT 1 FROM import_rows WHERE NOT ref_known)";

/* mode=sync: the source's live mandates that the file does not name
 * (expired ones have ended already).  $2: whether to end any. */
static const char ended_sql[] =
    "CREATE TEMP TABLE import_ended ON COMMIT DROP AS"
    " SELECT m.id, m.principal, m.service, m.external_ref FROM mandates m"
    " WHERE $2::boolean AND" OF_SOURCE(
        "m") "AND m.status IN ('active', 'suspended')"
             " AND m.valid_until > now()"
             " AND NOT EXISTS (SELECT 1 FROM import_rows r WHERE r.ref_known"
             "  AND r.external_ref = m.external_ref)";

/* The rows that passed so far, with the mandate they key to (if any) and
 * whether it already is exactly this (unchanged).  A new mandate's id
 * follows the file's order (the layout of import_mandate_id, schema/0005,
 * made as the row was read: new_id): the merge inserts in that order, at
 * the end of the primary key. */
static const char good_sql[] =
    "CREATE TEMP TABLE import_good ON COMMIT DROP AS"
    " SELECT r.ctid AS rid, r.line, r.external_ref, r.principal, r.representative, r.service,"
    " r.k AS kind, r.vf AS valid_from, r.vu AS valid_until,"
    " r.court_ref, r.court, coalesce(m.id, r.new_id) AS id,"
    " m.id IS NULL AS is_new,"
    " (m.id IS NOT NULL AND m.status IN ('active', 'suspended') AND m.principal = r.principal"
    "  AND m.representative = r.representative AND m.service = r.service"
    "  AND m.kind = r.k AND m.valid_from = r.vf"
    "  AND m.valid_until = r.vu AND m.court_ref IS NOT DISTINCT FROM r.court_ref"
    "  AND m.court IS NOT DISTINCT FROM r.court) AS unchanged"
    " FROM import_rows r LEFT JOIN mandates m ON" OF_SOURCE("m") "AND" SOURCE_KEYS(
        "m") "= $1::text || '|' || r.external_ref"
             " WHERE r.code IS NULL";

/* The first import of a source keys no mandate (the source's lock keeps
 * another import of it out, and only imports set a source): its good rows
 * are all new, and import_good is a view of the staged rows instead of a
 * copy of them (measured: the copy took 1.2 s of a million-row first
 * import's 3.1 s of checks).  Dropped with import_rows at the commit. */
static const char first_sql[] =
    "SELECT NOT EXISTS (SELECT 1 FROM mandates m WHERE" OF_SOURCE("m") ")";

static const char good_view_sql[] =
    "CREATE TEMP VIEW import_good AS"
    " SELECT r.ctid AS rid, r.line, r.external_ref, r.principal, r.representative, r.service,"
    " r.k AS kind, r.vf AS valid_from, r.vu AS valid_until,"
    " r.court_ref, r.court, r.new_id AS id, true AS is_new, false AS unchanged"
    " FROM import_rows r WHERE r.code IS NULL";

/* The rows that share a principal and service with another row of the
 * file (keys of the rows the reader flagged): the only ones the checks
 * within the file need to pair up. */
static const char multi_sql[] =
    "CREATE TEMP TABLE import_multi ON COMMIT DROP AS SELECT g.* FROM import_good g"
    " WHERE $1::boolean AND (g.principal, g.service) IN (SELECT principal, service"
    " FROM import_rows WHERE pair_seen)";

static const char bad_sql[] =
    "CREATE TEMP TABLE import_bad (line int8 PRIMARY KEY, code text NOT NULL,"
    " message text NOT NULL) ON COMMIT DROP";

static const char superseded_table_sql[] =
    "CREATE TEMP TABLE import_superseded (id uuid PRIMARY KEY, principal text, service text,"
    " by_ref text) ON COMMIT DROP";

/* A live mandate m that stays as it is: not replaced (keyed by a row that
 * stands) or ended here.  Correlated, so that each candidate costs one
 * index probe (import_good_replaced, import_ended's key). */
#define STAYS                                                                                      \
  " (m.source IS DISTINCT FROM $1 OR (NOT EXISTS (SELECT 1 FROM import_good x"                     \
  " WHERE x.id = m.id AND NOT x.is_new) AND NOT EXISTS (SELECT 1 FROM import_ended x"              \
  " WHERE x.id = m.id))) "
#define OVERLAPS(a, b)                                                                             \
  " " a ".valid_from < " b ".valid_until AND " b ".valid_from < " a ".valid_until "
#define NOT_BAD(g) " NOT EXISTS (SELECT 1 FROM import_bad b WHERE b.line = " g ".line) "
#define LEGAL(g) " " g ".kind <> 'voluntary' "
#define LIVE(m) " " m ".status IN ('active', 'suspended') "
/* Row e of the file goes before row g: what the database already holds
 * (an unchanged row) first, then the earlier line. */
#define PRECEDES(e, g)                                                                             \
  " (" e ".unchanged > " g ".unchanged OR (" e ".unchanged = " g ".unchanged AND " e ".line < " g  \
  ".line)) "
#define SAME_PARTIES(a, b)                                                                         \
  " " a ".principal = " b ".principal AND " a ".representative = " b ".representative AND " a      \
  ".service = " b ".service "
#define MANDATE_NAME(m)                                                                            \
  "coalesce('source ' || " m ".source || ', external_ref ' || " m                                  \
  ".external_ref, 'mandate ' || " m ".id)"

/* A new or changed court-appointed row overlapping another court-appointed
 * mandate for the same three parties (a voluntary one there is ended
 * instead).  An unchanged row needs no check: it is in the database
 * already, next to everything else there (one_live_mandate). */
static const char legal_vs_db_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, 'mandate-overlap',"
    " 'Another court-appointed mandate for the same principal, representative and service"
    " overlaps this period (' || " MANDATE_NAME(
        "m") " || ').'"
             " FROM import_good g JOIN mandates m ON" SAME_PARTIES(
                 "m", "g") "AND m.id <> g.id"
                           " WHERE NOT g.unchanged AND" LEGAL("g") "AND" LEGAL("m") "AND" LIVE(
                               "m") "AND" OVERLAPS("m", "g") "AND" STAYS " ORDER BY g.line";

static const char legal_vs_file_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, 'mandate-overlap',"
    " 'This period overlaps line ' || e.line || ' of this file (the same principal,"
    " representative and service).'"
    " FROM import_multi g JOIN import_multi e ON" SAME_PARTIES(
        "e",
        "g") " WHERE NOT g.unchanged AND" LEGAL("g") "AND" LEGAL("e") "AND" PRECEDES("e",
                                                                                     "g") "AN"
                                                                                          "D" OVERLAPS("e", "g") "AND" NOT_BAD(
                                                                                              "e") "AND" NOT_BAD("g") " ORDER BY g.line, e.line";

/* Voluntary mandates that a new or changed court-appointed row overlaps
 * for the same principal and service: they end (DESIGN: a legal mandate
 * blocks voluntary ones).  Pending requests too, so that accepting one
 * later cannot bring it back. */
static const char superseded_sql[] =
    "INSERT INTO import_superseded SELECT DISTINCT ON (m.id) m.id, m.principal, m.service,"
    " l.external_ref FROM import_good l JOIN mandates m ON m.principal = l.principal"
    " AND m.service = l.service AND m.id <> l.id"
    " WHERE NOT l.unchanged AND" LEGAL("l") "AND" NOT_BAD(
        "l") "AND m.kind = 'voluntary'"
             " AND (" LIVE(
                 "m") "OR (m.status = 'pending' AND m.created_at > now() - interval '21 days'))"
                      " AND m.valid_until > now() AND" OVERLAPS("m", "l") "AND" STAYS
                                                                          " ORDER BY m.id, l.line";

/* A voluntary row for a principal and service that a court-appointed
 * mandate covers: in the database, or a row of this file that stands. */
static const char voluntary_vs_legal_db_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, 'legal-mandate-exists',"
    " 'A court-appointed mandate for this principal and service covers this period.'"
    " FROM import_good g JOIN mandates m ON m.principal = g.principal AND m.service = g.service"
    " AND m.id <> g.id WHERE g.kind = 'voluntary' AND" LEGAL("m") "AND" LIVE("m") "AND" OVERLAPS(
        "m", "g") "AND" STAYS "AND" NOT_BAD("g") " ORDER BY g.line";

static const char voluntary_vs_legal_file_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, 'legal-mandate-exists',"
    " 'A court-appointed mandate on line ' || l.line || ' of this file covers this principal"
    " and service in this period.'"
    " FROM import_multi g JOIN import_multi l ON l.principal = g.principal"
    " AND l.service = g.service WHERE g.kind = 'voluntary' AND" LEGAL("l") "AND" OVERLAPS(
        "l", "g") "AND" NOT_BAD("l") "AND" NOT_BAD("g") " ORDER BY g.line, l.line";

/* A voluntary row overlapping a voluntary mandate for the same parties
 * that stays (not replaced, ended or superseded here). */
static const char voluntary_vs_db_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, 'mandate-overlap',"
    " 'Another mandate for the same principal, representative and service overlaps this period"
    " (' || " MANDATE_NAME(
        "m") " || ').'"
             " FROM import_good g JOIN mandates m ON" SAME_PARTIES(
                 "m", "g") "AND m.id <> g.id"
                           " WHERE g.kind = 'voluntary' AND m.kind = 'voluntary' AND" LIVE(
                               "m") "AND" OVERLAPS("m",
                                                   "g") "AND" STAYS "AND NOT EXISTS (SELECT 1 FROM "
                                                        "import_superseded s WHERE s.id = m.id)"
                                                        " AND" NOT_BAD("g") " ORDER BY g.line";

static const char voluntary_vs_file_sql[] =
    "INSERT INTO import_bad SELECT DISTINCT ON (g.line) g.line, "
    "'mandate-overlap',"
    " 'This period overlaps line ' || e.line || ' of this file (the same "
    "principal,"
    " representative and service).'"
    " FROM import_multi g JOIN import_multi e ON" SAME_PARTIES(
        "e", "g") " WHERE g.kind = 'voluntary' AND e.kind = 'voluntary' "
                  "AND" PRECEDES("e", "g") "AND" OVERLAPS("e", "g") "AND" NOT_BAD(
                      "e") "AND" NOT_BAD("g") " ORDER BY g.line, e.line";

/* The round's rejects leave the good rows and get their code; the count
 * of those that keyed an existing mandate, which therefore stays as it
 * was (and the next round checks the rest against it). */
static const char reject_round_sql[] =
    "WITH out AS (DELETE FROM import_good g USING import_bad b WHERE g.line = b.line"
    "  RETURNING g.rid, g.is_new, b.code, b.message),"
    " marked AS (UPDATE import_rows r SET code = out.code, message = out.message FROM out"
    "  WHERE r.ctid = out.rid)"
    " SELECT count(*) FILTER (WHERE NOT is_new) FROM out";

/* The same when import_good is the view: its rejects leave it by their
 * code; none keyed a mandate. */
static const char reject_round_view_sql[] =
    "UPDATE import_rows r SET code = b.code, message = b.message FROM import_bad b"
    " WHERE r.line = b.line AND r.code IS NULL";

#define CHECK_ROUNDS 8

/* The checks across rows, in rounds: court-appointed rows first, then
 * the voluntary ones against the court-appointed rows that stand; again
 * while a round rejected a row whose mandate therefore stays. */
static enum db_status check_conflicts(PGconn *c, const struct import_job *job, bool first) {
  const char *src[] = {job->source};
  static const struct {
    const char *what, *sql;
    int nparams;
  } steps[] = {
      {"legal overlaps", legal_vs_db_sql, 1},
      {"legal overlaps in the file", legal_vs_file_sql, 0},
      {"superseded (clear)", "TRUNCATE import_superseded", 0},
      {"superseded", superseded_sql, 1},
      {"legal mandate exists", voluntary_vs_legal_db_sql, 1},
      {"legal mandate in the file", voluntary_vs_legal_file_sql, 0},
      {"voluntary overlaps", voluntary_vs_db_sql, 1},
      {"voluntary overlaps in the file", voluntary_vs_file_sql, 0},
  };
  for (int round = 0; round < CHECK_ROUNDS; round++) {
    enum db_status st = DB_OK;
    long long rejects = 0, n;
    for (size_t i = 0; st == DB_OK && i < sizeof steps / sizeof steps[0]; i++) {
      st = import_run_count(c, steps[i].what, steps[i].sql, steps[i].nparams, src, &n);
      if (steps[i].sql[0] == 'I' && steps[i].sql[12] == 'i' && steps[i].sql[19] == 'b')
        rejects += n; /* INSERT INTO import_bad */
    }
    if (st != DB_OK || rejects == 0)
      return st;
    long long restored = 0;
    if (first) {
      st = import_run(c, "reject round", reject_round_view_sql, 0, NULL, NULL);
    } else {
      PGresult *r;
      st = import_run(c, "reject round", reject_round_sql, 0, NULL, &r);
      restored = st == DB_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
      PQclear(r);
    }
    if (st == DB_OK)
      st = import_run(c, "reject round (pairs)",
                      "DELETE FROM import_multi g USING import_bad b WHERE g.line = b.line", 0,
                      NULL, NULL);
    if (st == DB_OK)
      st = import_run(c, "clear rejects", "TRUNCATE import_bad", 0, NULL, NULL);
    if (st != DB_OK || restored == 0)
      return st;
  }
  log_msg(LOG_ERROR, "import %s: the checks did not settle in %d rounds", job->id, CHECK_ROUNDS);
  return DB_HARD_ERROR;
}

static const char counts_sql[] =
    "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new AND NOT unchanged),"
    " count(*) FILTER (WHERE unchanged), (SELECT count(*) FROM import_ended),"
    " (SELECT count(*) FROM import_superseded) FROM import_good";

enum db_status import_check_rows(PGconn *c, const struct import_job *job,
                                 struct import_outcome *out) {
  /* Statistics from a small sample are enough to plan the joins. */
  enum db_status st =
      import_run(c, "statistics target",
                 "SELECT set_config('default_statistics_target', '10', true)", 0, NULL, NULL);
  if (st == DB_OK)
    st = import_run(c, "analyze", "ANALYZE import_rows", 0, NULL, NULL);
  if (st == DB_OK && job->ref_seen > 0)
    st = import_run(c, "duplicates", duplicates_sql, 0, NULL, NULL);
  PGresult *r = NULL;
  if (st == DB_OK)
    st = import_run(c, "withheld", withheld_sql, 0, NULL, &r);
  if (st != DB_OK)
    return st;
  out->sync_withheld = job->sync && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  const char *ended_params[] = {job->source, job->sync && !out->sync_withheld ? "t" : "f"};
  const char *multi_params[] = {job->pair_seen > 0 ? "t" : "f"};
  st = import_run(c, "ended", ended_sql, 2, ended_params, NULL);
  /* The import's start in milliseconds and 32 bits of its (random) id. */
  const char *good_params[] = {job->source};
  bool first = false;
  if (st == DB_OK)
    st = import_run(c, "first import", first_sql, 1, good_params, &r);
  if (st == DB_OK) {
    first = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
  }
  if (st == DB_OK && first)
    st = import_run(c, "good rows", good_view_sql, 0, NULL, NULL);
  if (st == DB_OK && !first)
    st = import_run(c, "good rows", good_sql, 1, good_params, NULL);
  if (st == DB_OK && !first)
    st = import_run(c, "replaced index",
                    "CREATE INDEX import_good_replaced ON import_good (id) WHERE NOT is_new", 0,
                    NULL, NULL);
  if (st == DB_OK)
    st = import_run(c, "ended index", "ALTER TABLE import_ended ADD PRIMARY KEY (id)", 0, NULL,
                    NULL);
  if (st == DB_OK && !first)
    st = import_run(c, "analyze", "ANALYZE import_good", 0, NULL, NULL);
  if (st == DB_OK)
    st = import_run(c, "pairs", multi_sql, 1, multi_params, NULL);
  if (st == DB_OK)
    st = import_run(c, "bad rows", bad_sql, 0, NULL, NULL);
  if (st == DB_OK)
    st = import_run(c, "superseded table", superseded_table_sql, 0, NULL, NULL);
  if (st == DB_OK)
    st = check_conflicts(c, job, first);
  if (st == DB_OK)
    st = import_run(c, "counts", counts_sql, 0, NULL, &r);
  if (st != DB_OK)
    return st;
  long long *fields[] = {&out->inserted, &out->updated, &out->unchanged, &out->ended,
                         &out->superseded};
  for (int i = 0; i < 5; i++)
    *fields[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
  PQclear(r);
  /* Every staged row is either good or rejected. */
  out->rows = job->rows;
  out->rejected = job->rows - out->inserted - out->updated - out->unchanged;
  return DB_OK;
}
