/* Bulk imports through the API (POST /v1/admin/imports, GET …/{id},
 * GET …/{id}/rejects) and the machtigen-import CLI, against the real
 * server and database: exact counts and reject lines for a mixed file,
 * idempotent re-imports, a corrected rejects file, dry runs, mode=sync,
 * court-appointed mandates ending voluntary ones, gzip and NDJSON,
 * truncated and broken uploads, a 20 MB line, wrong encodings and types,
 * concurrent imports of one source, a client that goes away, and an
 * audit trail that still verifies.  Every test uses its own source and
 * fresh random parties, so reruns against the same database never
 * collide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "client.h"
#include "dbcheck.h"
#include "tokens.h"

#define HEADER                                                                                     \
  "external_ref,principal,representative,service,kind,valid_from,valid_until,"                     \
  "court_ref,court\n"

static char *admin_auth; /* "Authorization: Basic …" */

static char *basic_auth(const char *id, const char *secret) {
  char *plain = xasprintf("%s:%s", id, secret);
  size_t n = strlen(plain);
  unsigned char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)n);
  char *header = xasprintf("Authorization: Basic %s", (const char *)b64);
  free(b64);
  free(plain);
  return header;
}

static int group_setup(void **state) {
  (void)state;
  admin_auth = basic_auth(api_env("ADMIN_CLIENT_ID"), api_env("ADMIN_CLIENT_SECRET"));
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  free(admin_auth);
  db_close();
  return 0;
}

/* ---- Building files -------------------------------------------------------- */

static void append(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(char **s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *more = NULL;
  if (vasprintf(&more, fmt, ap) < 0)
    abort();
  va_end(ap);
  char *joined = xasprintf("%s%s", *s ? *s : "", more);
  free(*s);
  free(more);
  *s = joined;
}

struct row {
  const char *ref, *principal, *representative, *service, *kind, *from, *until, *court_ref, *court;
};

static void append_field(char **csv, const char *v, bool last) {
  if (strpbrk(v, ",\"") != NULL) {
    append(csv, "\"");
    for (const char *p = v; *p; p++)
      append(csv, *p == '"' ? "\"\"" : "%c", *p);
    append(csv, "\"");
  } else {
    append(csv, "%s", v);
  }
  append(csv, last ? "\n" : ",");
}

static void append_row(char **csv, struct row r) {
  const char *f[] = {r.ref,  r.principal, r.representative, r.service, r.kind,
                     r.from, r.until,     r.court_ref,      r.court};
  for (int i = 0; i < 9; i++)
    append_field(csv, f[i] ? f[i] : "", i == 8);
}

/* YYYY-MM-DD, days from today (ring of buffers: several per expression). */
static const char *day(int days) {
  static char ring[16][11];
  static int next;
  char *out = ring[next++ % 16];
  date_from_today(days, out);
  return out;
}

static char *new_source(const char *what) {
  char uuid[37];
  random_uuid(uuid);
  return xasprintf("api-test-%s-%.8s", what, uuid);
}

/* ---- Requests -------------------------------------------------------------- */

static struct api_response *post_import(const char *query, const char *content_type,
                                        const char *encoding, const char *body, size_t len) {
  char *path = xasprintf("/v1/admin/imports?%s", query);
  char *ct = content_type ? xasprintf("Content-Type: %s", content_type) : NULL;
  char *ce = encoding ? xasprintf("Content-Encoding: %s", encoding) : NULL;
  const char *headers[4] = {admin_auth, NULL, NULL, NULL};
  int n = 1;
  if (ct != NULL)
    headers[n++] = ct;
  if (ce != NULL)
    headers[n++] = ce;
  struct api_response *r = api_request("POST", path, headers, body, len);
  free(path);
  free(ct);
  free(ce);
  return r;
}

static struct api_response *post_csv(const char *source, const char *extra, const char *csv) {
  char *query = xasprintf("source=%s%s", source, extra ? extra : "");
  struct api_response *r = post_import(query, "text/csv", NULL, csv, strlen(csv));
  free(query);
  return r;
}

static struct api_response *admin_get(const char *path) {
  const char *headers[] = {admin_auth, NULL};
  return api_request("GET", path, headers, NULL, 0);
}

struct counts {
  long long rows, inserted, updated, unchanged, ended, superseded, rejected;
};

static void expect_counts(const struct api_response *r, struct counts want) {
  api_expect_status(r, 201);
  json_t *c = json_object_get(r->json, "counts");
  const char *names[] = {"rows",  "inserted",   "updated", "unchanged",
                         "ended", "superseded", "rejected"};
  long long wanted[] = {want.rows,  want.inserted,   want.updated, want.unchanged,
                        want.ended, want.superseded, want.rejected};
  for (int i = 0; i < 7; i++) {
    json_t *v = json_object_get(c, names[i]);
    if (!json_is_integer(v) || json_integer_value(v) != wanted[i])
      fail_msg("expected %s = %lld: %s", names[i], wanted[i], api_describe(r));
  }
  const char *id = api_str(r, "id");
  char *location = xasprintf("/v1/admin/imports/%s", id ? id : "?");
  if (r->location == NULL || strcmp(r->location, location) != 0)
    fail_msg("expected Location %s: %s", location, api_describe(r));
  free(location);
}

/* The value of a column in the rejects CSV (RFC 4180; no line breaks in
 * fields): field i of line, malloc'd. */
static char *csv_field(const char *line, int i) {
  char *out = strdup("");
  int k = 0;
  const char *p = line;
  while (*p && *p != '\r' && *p != '\n') {
    bool quoted = *p == '"';
    if (quoted)
      p++;
    while (*p && *p != '\r' && *p != '\n') {
      if (quoted && *p == '"' && p[1] == '"') {
        if (k == i)
          append(&out, "\"");
        p += 2;
        continue;
      }
      if ((quoted && *p == '"') || (!quoted && *p == ','))
        break;
      if (k == i)
        append(&out, "%c", *p);
      p++;
    }
    if (quoted && *p == '"')
      p++;
    if (*p == ',') {
      p++;
      k++;
      continue;
    }
    break;
  }
  return out;
}

/* GET …/rejects; the body (malloc'd). */
static char *get_rejects(const char *import_id) {
  char *path = xasprintf("/v1/admin/imports/%s/rejects", import_id);
  struct api_response *r = admin_get(path);
  api_expect_status(r, 200);
  if (r->content_type == NULL || strncmp(r->content_type, "text/csv", 8) != 0)
    fail_msg("rejects are not text/csv: %s", api_describe(r));
  char *body = strdup(r->raw);
  api_response_free(r);
  free(path);
  return body;
}

/* Fails unless the rejects CSV has exactly these lines with these codes
 * (pairs of line number and code, in order). */
static void expect_rejects(const char *csv, const long long *lines, const char *const *codes,
                           int n) {
  const char *want_header = "external_ref,principal,representative,service,kind,valid_from,"
                            "valid_until,court_ref,court,line,code,message\r\n";
  if (strncmp(csv, want_header, strlen(want_header)) != 0)
    fail_msg("rejects CSV header is not %s: %.200s", want_header, csv);
  const char *p = csv + strlen(want_header);
  for (int i = 0; i < n; i++) {
    if (*p == '\0')
      fail_msg("rejects CSV ends after %d of %d rows", i, n);
    char *line = csv_field(p, 9), *code = csv_field(p, 10), *message = csv_field(p, 11);
    if (strtoll(line, NULL, 10) != lines[i] || strcmp(code, codes[i]) != 0 || message[0] == '\0')
      fail_msg("reject %d: expected line %lld %s, got line %s %s (%s)", i, lines[i], codes[i], line,
               code, message);
    free(line);
    free(code);
    free(message);
    p = strstr(p, "\r\n");
    if (p == NULL)
      fail_msg("rejects CSV row %d has no CRLF", i);
    p += 2;
  }
  if (*p != '\0')
    fail_msg("rejects CSV has more rows than %d: %.200s", n, p);
}

/* ---- The mixed file ---------------------------------------------------------- */

/* One file with three good rows and one of every mistake. */
struct mixed {
  char *source, *csv;
  char p1[14], p2[14], p3[14], r1[14], r2[14], office[13];
};

static struct mixed mixed_file(void) {
  struct mixed m = {.source = new_source("mixed")};
  random_bsn(m.p1);
  random_bsn(m.p2);
  random_bsn(m.p3);
  random_bsn(m.r1);
  random_bsn(m.r2);
  random_kvk(m.office);
  char long_court[260];
  memset(long_court, 'x', 201);
  long_court[201] = '\0';
  char *c = strdup(HEADER);
  const char *ww = "uwv-ww-aanvragen", *tax = "belasting-aangifte", *wia = "uwv-wia-inzien";
  append_row(&c, (struct row){"A", m.p1, m.office, ww, "bewind", day(-30), day(300), "C/13/1",
                              "Rechtbank Amsterdam"});
  append_row(&c,
             (struct row){"B", m.p2, m.office, tax, "curatele", day(-30), day(700), "C/13/2", ""});
  append_row(&c, (struct row){"C", m.p3, m.r1, wia, "mentorschap", day(10), day(400), "C/13/3",
                              "Rechtbank Den Haag, locatie \"Oost\""});
  append_row(
      &c, (struct row){"D", "bsn:123456789", m.office, ww, "bewind", day(0), day(30), "C/4", ""});
  append_row(&c, (struct row){"E", m.p1, m.office, "uwv-xx", "bewind", day(0), day(30), "C/5", ""});
  append_row(&c, (struct row){"F", m.p1, m.r2, ww, "bewind", day(-30), day(400), "C/6", ""});
  append_row(&c, (struct row){"G", m.p1, m.r2, tax, "bewind", day(-100), day(-1), "C/7", ""});
  append_row(&c, (struct row){"H", m.p1, m.r2, tax, "bewind", day(0), day(30), "", ""});
  append_row(&c, (struct row){"A", m.p3, m.office, tax, "bewind", day(0), day(30), "C/9", ""});
  append(&c, "I,%s,%s\n", m.p1, m.office);
  append_row(&c, (struct row){"J", m.p1, m.r2, tax, "bewind", "2026-02-30", day(30), "C/10", ""});
  append_row(&c, (struct row){"K", m.r1, m.r1, wia, "bewind", day(0), day(30), "C/11", ""});
  append_row(&c,
             (struct row){"L", m.p2, m.office, tax, "curatele", day(100), day(200), "C/12", ""});
  append_row(&c, (struct row){"M", m.p1, m.r2, ww, "mentorschap", day(0), day(30), "C/13", ""});
  append_row(&c, (struct row){"N", "bsn:12345", m.r2, ww, "bewind", day(0), day(30), "C/14", ""});
  append_row(&c, (struct row){"O", m.p1, m.r2, "", "bewind", day(0), day(30), "C/15", ""});
  append_row(&c, (struct row){"P", m.p1, m.office, wia, "bewind", day(0), day(30), "C/16", ""});
  append_row(&c, (struct row){"Q", m.office, m.r2, tax, "bewind", day(0), day(30), "C/17", ""});
  append_row(&c, (struct row){"R", m.p1, m.r2, tax, "bewindvoering", day(0), day(30), "C/18", ""});
  append_row(&c, (struct row){"S", m.p1, m.r2, tax, "bewind", day(100), day(50), "C/19", ""});
  append_row(&c, (struct row){"T", m.p1, m.r2, tax, "bewind", day(0), day(30), "C/20", long_court});
  append(&c, "U,%s,%s,%s,bewind,%s,%s,C/21,Rechtbank \xe9\xe9n\n", m.p1, m.r2, tax, day(0),
         day(30));
  append(&c, "\n");
  append_row(&c, (struct row){"V", m.p1, m.r2, ww, "voluntary", day(0), day(30), "", ""});
  m.csv = c;
  return m;
}

static const long long mixed_lines[] = {5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                        15, 16, 17, 18, 19, 20, 21, 22, 23, 25};
static const char *const mixed_codes[] = {"invalid-bsn",          "unknown-service",
                                          "period-too-long",      "already-ended",
                                          "court-ref-required",   "duplicate-external-ref",
                                          "malformed-row",        "invalid-date",
                                          "self-mandate",         "mandate-overlap",
                                          "kind-not-allowed",     "invalid-party",
                                          "missing-field",        "representative-type-not-allowed",
                                          "principal-not-person", "invalid-kind",
                                          "period-inverted",      "field-too-long",
                                          "invalid-encoding",     "legal-mandate-exists"};

static void free_mixed(struct mixed *m) {
  free(m->source);
  free(m->csv);
}

static void test_mixed_file(void **state) {
  (void)state;
  struct mixed m = mixed_file();
  long long seq = audit_head_seq();
  struct api_response *r = post_csv(m.source, NULL, m.csv);
  expect_counts(r, (struct counts){.rows = 23, .inserted = 3, .rejected = 20});
  const char *id = api_str(r, "id");
  json_t *by_code = json_object_get(r->json, "rejects_by_code");
  for (int i = 0; i < 20; i++)
    if (json_integer_value(json_object_get(by_code, mixed_codes[i])) != 1)
      fail_msg("rejects_by_code[%s] should be 1: %s", mixed_codes[i], api_describe(r));
  char *csv = get_rejects(id);
  expect_rejects(csv, mixed_lines, mixed_codes, 20);
  free(csv);

  /* The report is kept. */
  char *path = xasprintf("/v1/admin/imports/%s", id);
  struct api_response *again = admin_get(path);
  api_expect_status(again, 200);
  if (!json_equal(again->json, r->json))
    fail_msg("GET %s differs from the POST's report: %s", path, api_describe(again));
  api_response_free(again);
  free(path);

  /* New mandates get time-ordered ids: UUID version 7 starting with the
   * import's start in milliseconds. */
  assert_int_equal(db_int("SELECT count(*) FROM mandates m JOIN imports i ON i.id = m.last_import"
                          " WHERE i.id = $1::uuid AND substr(m.id::text, 15, 1) = '7'"
                          " AND ('x' || replace(substr(m.id::text, 1, 13), '-', ''))::bit(48)::int8"
                          "  = floor(extract(epoch FROM i.started_at) * 1000)",
                          id, NULL),
                   3);
  /* Three court-appointed mandates as the rows say, each audited once. */
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1 AND status = 'active'"
                          " AND origin = 'import' AND initiated_by = 'admin'"
                          " AND last_import = $2::uuid",
                          m.source, id, NULL),
                   3);
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1 AND external_ref = 'C'"
                          " AND court = 'Rechtbank Den Haag, locatie \"Oost\"'"
                          " AND kind = 'mentorschap' AND court_ref = 'C/13/3'",
                          m.source, NULL),
                   1);
  char *after = xasprintf("%lld", seq);
  assert_int_equal(
      db_int("SELECT count(*) FROM audit_trail a JOIN mandates m ON m.id = a.mandate_id"
             " WHERE a.seq > $1::int8 AND a.event = 'mandate_created'"
             " AND m.source = $2 AND a.detail->>'import' = $3"
             " AND a.actor = 'admin:' || $4 AND a.principal = m.principal",
             after, m.source, id, api_env("ADMIN_CLIENT_ID"), NULL),
      3);
  /* One event in the chain seals the three changes. */
  assert_int_equal(db_int("SELECT count(*) FROM audit_trail WHERE seq > $1::int8", after, NULL), 4);
  assert_int_equal(db_int("SELECT count(*) FROM audit_events WHERE seq > $1::int8"
                          " AND event = 'import_applied' AND detail->>'import' = $2"
                          " AND (detail->>'changes')::int = 3"
                          " AND seq = (SELECT audit_seq FROM imports WHERE id = $2::uuid)",
                          after, id, NULL),
                   1);
  free(after);
  audit_expect_chain();
  api_response_free(r);
  free_mixed(&m);
}

static void test_reimport_is_unchanged(void **state) {
  (void)state;
  struct mixed m = mixed_file();
  struct api_response *r = post_csv(m.source, NULL, m.csv);
  expect_counts(r, (struct counts){.rows = 23, .inserted = 3, .rejected = 20});
  api_response_free(r);
  struct db_snapshot before = db_snapshot();
  r = post_csv(m.source, NULL, m.csv);
  expect_counts(r, (struct counts){.rows = 23, .unchanged = 3, .rejected = 20});
  db_expect_unchanged(&before, "importing the same file again");
  api_response_free(r);
  free_mixed(&m);
}

/* The rejects file, corrected in place (its line, code and message
 * columns left as they are), imports cleanly. */
static void test_corrected_rejects_import_cleanly(void **state) {
  (void)state;
  struct mixed m = mixed_file();
  struct api_response *r = post_csv(m.source, NULL, m.csv);
  expect_counts(r, (struct counts){.rows = 23, .inserted = 3, .rejected = 20});
  char *rejects = get_rejects(api_str(r, "id"));
  api_response_free(r);
  char *fixed = NULL;
  const char *p = rejects;
  const char *eol = strstr(p, "\r\n");
  append(&fixed, "%.*s\n", (int)(eol - p), p); /* the rejects header, as it is */
  for (p = eol + 2; *p != '\0'; p = strstr(p, "\r\n") + 2) {
    char *ref = csv_field(p, 0), *line = csv_field(p, 9), *code = csv_field(p, 10),
         *message = csv_field(p, 11);
    char principal[14], office[13];
    random_bsn(principal);
    random_kvk(office);
    /* The duplicate gets a reference of its own. */
    char *new_ref =
        strcmp(code, "duplicate-external-ref") == 0 ? xasprintf("%s-2", ref) : strdup(ref);
    append_row(&fixed, (struct row){new_ref, principal, office, "belasting-aangifte", "bewind",
                                    day(-5), day(300), "C/13/99", ""});
    /* Keep the ignored columns: replace the row's line break. */
    fixed[strlen(fixed) - 1] = ',';
    append_field(&fixed, line, false);
    append_field(&fixed, code, false);
    append_field(&fixed, message, true);
    free(ref);
    free(line);
    free(code);
    free(message);
    free(new_ref);
  }
  r = post_csv(m.source, NULL, fixed);
  expect_counts(r, (struct counts){.rows = 20, .inserted = 20, .unchanged = 0});
  api_response_free(r);
  free(fixed);
  free(rejects);
  free_mixed(&m);
}

static void test_dry_run_changes_nothing(void **state) {
  (void)state;
  struct mixed m = mixed_file();
  struct db_snapshot before = db_snapshot();
  long long reports = db_int("SELECT count(*) FROM imports", NULL);
  struct api_response *r = post_csv(m.source, "&dry_run=true", m.csv);
  expect_counts(r, (struct counts){.rows = 23, .inserted = 3, .rejected = 20});
  if (!json_is_true(json_object_get(r->json, "dry_run")))
    fail_msg("dry_run should be true: %s", api_describe(r));
  db_expect_unchanged(&before, "a dry run");
  assert_int_equal(db_int("SELECT count(*) FROM imports", NULL), reports + 1);
  char *rejects = get_rejects(api_str(r, "id"));
  expect_rejects(rejects, mixed_lines, mixed_codes, 20);
  free(rejects);
  api_response_free(r);
  /* The real run gives what the dry run said. */
  r = post_csv(m.source, NULL, m.csv);
  expect_counts(r, (struct counts){.rows = 23, .inserted = 3, .rejected = 20});
  api_response_free(r);
  free_mixed(&m);
}

/* ---- mode=sync ------------------------------------------------------------ */

static void test_sync_ends_exactly_the_missing(void **state) {
  (void)state;
  char *source = new_source("sync");
  char p[5][14], office[13];
  for (int i = 0; i < 5; i++)
    random_bsn(p[i]);
  random_kvk(office);
  const char *tax = "belasting-aangifte";
  char *csv = strdup(HEADER);
  const char *refs[] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; i++)
    append_row(&csv,
               (struct row){refs[i], p[i], office, tax, "bewind", day(-10), day(500), "C/1", ""});
  struct api_response *r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 4, .inserted = 4});
  api_response_free(r);
  free(csv);

  /* A as it is, B longer, C present but wrong, D missing, E new. */
  csv = strdup(HEADER);
  append_row(&csv, (struct row){"A", p[0], office, tax, "bewind", day(-10), day(500), "C/1", ""});
  append_row(&csv, (struct row){"B", p[1], office, tax, "bewind", day(-10), day(600), "C/1", ""});
  append_row(&csv, (struct row){"C", "bsn:123456789", office, tax, "bewind", day(-10), day(500),
                                "C/1", ""});
  append_row(&csv, (struct row){"E", p[4], office, tax, "bewind", day(-10), day(500), "C/1", ""});
  struct db_snapshot before = db_snapshot();
  r = post_csv(source, "&mode=sync&dry_run=true", csv);
  expect_counts(
      r, (struct counts){
             .rows = 4, .inserted = 1, .updated = 1, .unchanged = 1, .ended = 1, .rejected = 1});
  api_response_free(r);
  db_expect_unchanged(&before, "a dry run with mode=sync");
  long long seq = audit_head_seq();
  r = post_csv(source, "&mode=sync", csv);
  expect_counts(
      r, (struct counts){
             .rows = 4, .inserted = 1, .updated = 1, .unchanged = 1, .ended = 1, .rejected = 1});
  const char *id = api_str(r, "id");
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1 AND external_ref = 'D'"
                          " AND status = 'revoked' AND reason LIKE '%mode=sync%'",
                          source, NULL),
                   1);
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1 AND status = 'active'"
                          " AND external_ref IN ('A', 'B', 'C', 'E')",
                          source, NULL),
                   4);
  assert_int_equal(
      db_int("SELECT version FROM mandates WHERE source = $1 AND external_ref = 'C'", source, NULL),
      1);
  char *after = xasprintf("%lld", seq);
  PGresult *events = db_query(
      "SELECT a.event, m.external_ref, a.detail->>'import', a.detail->'old'->>'valid_until'"
      " FROM audit_trail a JOIN mandates m ON m.id = a.mandate_id"
      " WHERE a.seq > $1::int8 ORDER BY m.external_ref",
      after, NULL);
  const char *want[][2] = {
      {"mandate_updated", "B"}, {"mandate_revoked", "D"}, {"mandate_created", "E"}};
  assert_int_equal(PQntuples(events), 3);
  for (int i = 0; i < 3; i++) {
    if (strcmp(PQgetvalue(events, i, 0), want[i][0]) != 0 ||
        strcmp(PQgetvalue(events, i, 1), want[i][1]) != 0 ||
        strcmp(PQgetvalue(events, i, 2), id) != 0)
      fail_msg("audit event %d: expected %s for %s by import %s, got %s for %s by %s", i,
               want[i][0], want[i][1], id, PQgetvalue(events, i, 0), PQgetvalue(events, i, 1),
               PQgetvalue(events, i, 2));
  }
  if (PQgetisnull(events, 0, 3))
    fail_msg("the update's audit event lacks the old valid_until");
  PQclear(events);
  free(after);
  api_response_free(r);
  free(csv);

  /* A row whose external_ref cannot be read: sync ends nothing. */
  csv = strdup(HEADER);
  append_row(&csv, (struct row){"A", p[0], office, tax, "bewind", day(-10), day(500), "C/1", ""});
  append(&csv, "\"B,%s\n", p[1]);
  r = post_csv(source, "&mode=sync", csv);
  expect_counts(r, (struct counts){.rows = 2, .unchanged = 1, .rejected = 1});
  if (!json_is_true(json_object_get(r->json, "sync_withheld")))
    fail_msg("sync_withheld should be true: %s", api_describe(r));
  assert_int_equal(
      db_int("SELECT count(*) FROM mandates WHERE source = $1 AND status = 'active'", source, NULL),
      4);
  api_response_free(r);
  free(csv);
  free(source);
}

static void exec_or_fail(PGconn *c, const char *sql, const char *const *params, int n) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
}

/* A file of bewind mandates for belasting-aangifte, all by office: the
 * rows' references, principals (indexes into p), periods (days from
 * today) and court references. */
struct bewind_row {
  const char *ref;
  int principal, from, until;
  const char *court_ref;
};

static char *bewind_csv(const struct bewind_row *rows, int n, char p[][14], const char *office) {
  char *csv = strdup(HEADER);
  for (int i = 0; i < n; i++)
    append_row(&csv, (struct row){rows[i].ref, p[rows[i].principal], office, "belasting-aangifte",
                                  "bewind", day(rows[i].from), day(rows[i].until),
                                  rows[i].court_ref, ""});
  return csv;
}

/* Posts the file and checks its counts; the import's id, malloc'd. */
static char *import_bewind(const char *source, const struct bewind_row *rows, int n, char p[][14],
                           const char *office, struct counts want) {
  char *csv = bewind_csv(rows, n, p, office);
  struct api_response *r = post_csv(source, NULL, csv);
  expect_counts(r, want);
  char *id = strdup(api_str(r, "id"));
  api_response_free(r);
  free(csv);
  return id;
}

/* The trail's line of a new mandate is written while the upload is read,
 * for every row that passes the reader's checks; the insert then picks
 * out those of the rows that made a mandate, by the ids of the rows that
 * did not (when the new ones are the most) or of those that did.  Both
 * ways, with rows that key existing mandates and a row the checks reject
 * in between: exactly the new mandates get a created line, each naming
 * its mandate as it is. */
static void test_trail_names_exactly_the_new_mandates(void **state) {
  (void)state;
  char *source = new_source("trail");
  char p[8][14], office[13];
  for (int i = 0; i < 8; i++)
    random_bsn(p[i]);
  random_kvk(office);
  const struct bewind_row before[] = {{"A", 0, -10, 500, "C/1"}, {"B", 1, -10, 500, "C/1"}};
  free(import_bewind(source, before, 2, p, office, (struct counts){.rows = 2, .inserted = 2}));

  /* Most rows new: A as it is, B changed, X overlapping C (rejected by
   * the checks across rows, after its line was written), C, D, E, G new. */
  const struct bewind_row most[] = {{"A", 0, -10, 500, "C/1"}, {"B", 1, -10, 600, "C/1"},
                                    {"C", 2, -10, 500, "C/2"}, {"X", 2, 0, 100, "C/3"},
                                    {"D", 3, -10, 500, "C/1"}, {"E", 4, -10, 500, "C/1"},
                                    {"G", 6, -10, 500, "C/1"}};
  char *first = import_bewind(
      source, most, 7, p, office,
      (struct counts){.rows = 7, .inserted = 4, .updated = 1, .unchanged = 1, .rejected = 1});

  /* Few rows new: all of the above as they are now, F new. */
  const struct bewind_row few[] = {{"A", 0, -10, 500, "C/1"}, {"B", 1, -10, 600, "C/1"},
                                   {"C", 2, -10, 500, "C/2"}, {"D", 3, -10, 500, "C/1"},
                                   {"F", 5, -10, 500, "C/1"}, {"E", 4, -10, 500, "C/1"},
                                   {"G", 6, -10, 500, "C/1"}};
  char *second = import_bewind(source, few, 7, p, office,
                               (struct counts){.rows = 7, .inserted = 1, .unchanged = 6});

  const char *imports[] = {first, second};
  const char *want[] = {"B:u C:c D:c E:c G:c", "F:c"};
  for (int i = 0; i < 2; i++) {
    char *got = db_text(
        "SELECT string_agg(c.external_ref || ':' || c.change::text, ' ' ORDER BY c.external_ref)"
        " FROM import_changes c JOIN mandates m ON m.id = c.mandate_id"
        " WHERE c.import_id = $1::uuid AND m.source = $2 AND m.external_ref = c.external_ref"
        " AND m.principal = c.principal AND m.service = c.service AND m.kind = c.kind",
        imports[i], source, NULL);
    if (got == NULL || strcmp(got, want[i]) != 0)
      fail_msg("import %d's trail: expected %s, got %s", i + 1, want[i], got ? got : "nothing");
    free(got);
    assert_int_equal(
        db_int("SELECT count(*) FROM import_changes WHERE import_id = $1::uuid", imports[i], NULL),
        i == 0 ? 5 : 1);
  }
  free(first);
  free(second);
  free(source);
}

/* More changes to mandates than an import lets pass before it refreshes
 * their statistics (a tenth of the table and 10,000): revoked mandates
 * of principals whose numbers fail the 11-check, so that no test's
 * random BSN is one of them. */
static void make_statistics_stale(void) {
  PQclear(db_query(
      "INSERT INTO mandates (principal, representative, service, kind, status, valid_from,"
      " valid_until, initiated_by, origin)"
      " SELECT 'bsn:' || d || ((((9 * substr(d, 1, 1)::int + 8 * substr(d, 2, 1)::int"
      " + 7 * substr(d, 3, 1)::int + 6 * substr(d, 4, 1)::int + 5 * substr(d, 5, 1)::int"
      " + 4 * substr(d, 6, 1)::int + 3 * substr(d, 7, 1)::int + 2 * substr(d, 8, 1)::int) % 11)"
      " + 1) % 10)::text, 'kvk:99999999', 'belasting-aangifte', 'voluntary', 'revoked',"
      " now() - interval '2 days', now() - interval '1 day', 'admin', 'api'"
      " FROM (SELECT lpad(g::text, 8, '0') AS d FROM generate_series(1,"
      " (SELECT greatest(reltuples, 0)::int8 / 10 + 10001 FROM pg_class"
      " WHERE oid = 'mandates'::regclass)) g) n",
      NULL));
  /* This connection's counts reach the shared statistics when it is next
   * idle after this. */
  PQclear(db_query("SELECT pg_stat_force_next_flush()", NULL));
  for (int i = 0; i < 100; i++) {
    if (db_int("SELECT (n_mod_since_analyze > greatest(c.reltuples, 0) / 10 + 10000)::int"
               " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
               " WHERE c.oid = 'mandates'::regclass",
               NULL) == 1)
      return;
    usleep(50 * 1000);
  }
  fail_msg("the changes to mandates did not reach the statistics");
}

/* The checks' plans need statistics that know the imports before: an
 * import that finds the mandates' statistics stale has them refreshed
 * (an ANALYZE of its own, counted as a manual one, not autovacuum's)
 * before its checks. */
static void test_stale_statistics_are_refreshed(void **state) {
  (void)state;
  const char *count_sql = "SELECT analyze_count FROM pg_stat_user_tables"
                          " WHERE relid = 'mandates'::regclass";
  make_statistics_stale();
  long long before = db_int(count_sql, NULL);
  char *source = new_source("stats");
  char p[1][14], office[13];
  random_bsn(p[0]);
  random_kvk(office);
  const struct bewind_row one[] = {{"A", 0, -10, 500, "C/1"}};
  free(import_bewind(source, one, 1, p, office, (struct counts){.rows = 1, .inserted = 1}));
  long long after = db_int(count_sql, NULL);
  if (after <= before)
    fail_msg("the mandates' statistics were not refreshed (ANALYZE count %lld, before %lld)", after,
             before);
  assert_int_equal(db_int("SELECT (n_mod_since_analyze < 10000)::int FROM pg_stat_user_tables"
                          " WHERE relid = 'mandates'::regclass",
                          NULL),
                   1);

  /* A lock that keeps ANALYZE out (a long VACUUM's) does not hold the
   * import up: it goes on with the old statistics. */
  PGconn *other = db_conn_other();
  exec_or_fail(other, "BEGIN", NULL, 0);
  exec_or_fail(other, "LOCK TABLE mandates IN SHARE UPDATE EXCLUSIVE MODE", NULL, 0);
  make_statistics_stale();
  before = db_int(count_sql, NULL);
  const struct bewind_row two[] = {{"A", 0, -10, 500, "C/1"}, {"B", 0, 600, 900, "C/1"}};
  free(import_bewind(source, two, 2, p, office,
                     (struct counts){.rows = 2, .inserted = 1, .unchanged = 1}));
  assert_int_equal(db_int(count_sql, NULL), before);
  exec_or_fail(other, "ROLLBACK", NULL, 0);
  PQfinish(other);
  free(source);
}

/* A voluntary mandate the principal asks rep for through the API (on
 * uwv-ww-aanvragen, for 60 days from today); id gets its id. */
static void api_voluntary_mandate(const char *p_token, const char *rep, char id[37]) {
  char *body = xasprintf("{\"representative\":\"%s\",\"service\":\"uwv-ww-aanvragen\","
                         "\"valid_from\":\"%s\",\"valid_until\":\"%s\"}",
                         rep, day(0), day(60));
  struct api_response *r = api_call("POST", "/v1/mandates", p_token, body);
  api_expect_status(r, 201);
  snprintf(id, 37, "%s", api_str(r, "id"));
  api_response_free(r);
  free(body);
}

/* ---- Who acted for me ------------------------------------------------------------- */

/* An import's changes reach the principal's activity, newest first after
 * what came before, one item per change, page by page. */
static void test_activity_shows_import_changes(void **state) {
  (void)state;
  char principal[14], rep[14], office[13];
  random_bsn(principal);
  random_bsn(rep);
  random_kvk(office);
  char *p_token = token_person(principal, "substantieel");
  char first[37];
  api_voluntary_mandate(p_token, rep, first);

  char *source = new_source("activity");
  char *csv = strdup(HEADER);
  append_row(&csv, (struct row){"A1", principal, office, "svb-aow-beheren", "bewind", day(-10),
                                day(300), "C/13/8", ""});
  append_row(&csv, (struct row){"A2", principal, office, "belasting-aangifte", "bewind", day(-10),
                                day(300), "C/13/8", ""});
  struct api_response *r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 2, .inserted = 2});
  api_response_free(r);

  char *admin = xasprintf("admin:%s", api_env("ADMIN_CLIENT_ID"));
  const char *want_actor[] = {admin, admin, principal};
  char seen[3][37] = {"", "", ""};
  char *path = strdup("/v1/me/activity?limit=1");
  for (int i = 0; i < 3; i++) {
    r = api_call("GET", path, p_token, NULL);
    api_expect_status(r, 200);
    json_t *items = json_object_get(r->json, "items");
    json_t *item = json_array_get(items, 0);
    const char *actor = json_string_value(json_object_get(item, "actor"));
    const char *mandate = json_string_value(json_object_get(item, "mandate_id"));
    const char *next = json_string_value(json_object_get(r->json, "next"));
    if (json_array_size(items) != 1 || actor == NULL || mandate == NULL ||
        strcmp(json_string_value(json_object_get(item, "event")), "mandate_created") != 0 ||
        strcmp(actor, want_actor[i]) != 0 || (i < 2) != (next != NULL))
      fail_msg("activity page %d: expected mandate_created by %s%s: %s", i + 1, want_actor[i],
               i < 2 ? " and a next page" : " and the end", api_describe(r));
    snprintf(seen[i], sizeof seen[i], "%s", mandate);
    free(path);
    path = next ? xasprintf("/v1/me/activity?limit=1&after=%s", next) : NULL;
    api_response_free(r);
  }
  /* A cursor is "seq" or "seq.n", both at least 1; anything else is refused. */
  const char *bad[] = {"0", "1.0", "1.", ".1", "1.2.3", "-1", "1.-2", "x", "1234567890123456789"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *p = xasprintf("/v1/me/activity?after=%s", bad[i]);
    r = api_call("GET", p, p_token, NULL);
    if (r->status != 400)
      fail_msg("GET %s should be 400: %s", p, api_describe(r));
    api_response_free(r);
    free(p);
  }
  if (strcmp(seen[2], first) != 0 || strcmp(seen[0], seen[1]) == 0 ||
      db_int("SELECT count(*) FROM mandates WHERE id IN ($1::uuid, $2::uuid) AND source = $3",
             seen[0], seen[1], source, NULL) != 2)
    fail_msg("the pages should name both imported mandates, then %s: got %s, %s, %s", first,
             seen[0], seen[1], seen[2]);
  free(path);
  free(admin);
  free(csv);
  free(source);
  free(p_token);
}

/* ---- Court-appointed and voluntary -------------------------------------------- */

static void test_legal_mandate_ends_voluntary(void **state) {
  (void)state;
  char principal[14], rep[14], other[14], office[13];
  random_bsn(principal);
  random_bsn(rep);
  random_bsn(other);
  random_kvk(office);
  char *p_token = token_person(principal, "substantieel");
  char *r_token = token_person(rep, "substantieel");
  char id[37];
  api_voluntary_mandate(p_token, rep, id);
  struct api_response *r = api_action("accept", id, r_token, "\"1\"", NULL);
  api_expect_status(r, 200);
  api_response_free(r);

  char *source = new_source("legal");
  char *csv = strdup(HEADER);
  append_row(&csv, (struct row){"L1", principal, office, "uwv-ww-aanvragen", "bewind", day(-10),
                                day(300), "C/13/7", ""});
  long long seq = audit_head_seq();
  r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 1, .inserted = 1, .superseded = 1});
  char *path = xasprintf("/v1/mandates/%s", id);
  struct api_response *m = api_call("GET", path, p_token, NULL);
  api_expect_status(m, 200);
  if (strcmp(api_str(m, "status"), "revoked") != 0 || api_str(m, "reason") == NULL ||
      strstr(api_str(m, "reason"), "court-appointed") == NULL)
    fail_msg("the voluntary mandate should be revoked by the import: %s", api_describe(m));
  api_response_free(m);
  char *after = xasprintf("%lld", seq);
  assert_int_equal(db_int("SELECT count(*) FROM audit_trail WHERE seq > $1::int8"
                          " AND mandate_id = $2::uuid AND event = 'mandate_revoked'"
                          " AND detail->>'import' = $3"
                          " AND detail->>'reason' = 'court-appointed-mandate'",
                          after, id, api_str(r, "id"), NULL),
                   1);
  api_response_free(r);
  free(csv);

  /* And blocks a new voluntary one, from an import as from the API. */
  csv = strdup(HEADER);
  append_row(&csv, (struct row){"V1", principal, other, "uwv-ww-aanvragen", "voluntary", day(5),
                                day(50), "", ""});
  r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 1, .rejected = 1});
  char *rejects = get_rejects(api_str(r, "id"));
  const long long lines[] = {2};
  const char *const codes[] = {"legal-mandate-exists"};
  expect_rejects(rejects, lines, codes, 1);
  free(rejects);
  api_response_free(r);
  free(path);
  free(after);
  free(csv);
  free(source);
  free(p_token);
  free(r_token);
}

/* ---- Formats and broken uploads ------------------------------------------------ */

static char *gzip(const char *in, size_t n, size_t *out_len) {
  z_stream z = {0};
  if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  size_t cap = deflateBound(&z, n);
  char *out = malloc(cap);
  z.next_in = (unsigned char *)in;
  z.avail_in = (unsigned)n;
  z.next_out = (unsigned char *)out;
  z.avail_out = (unsigned)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END)
    abort();
  *out_len = cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

static char *two_good_rows(void) {
  char p1[14], p2[14], office[13];
  random_bsn(p1);
  random_bsn(p2);
  random_kvk(office);
  char *csv = strdup(HEADER);
  append_row(&csv, (struct row){"G1", p1, office, "belasting-aangifte", "bewind", day(-1), day(100),
                                "C/1", ""});
  append_row(&csv, (struct row){"G2", p2, office, "svb-aow-beheren", "curatele", day(-1), day(100),
                                "C/2", ""});
  return csv;
}

static void test_gzip_and_truncated_upload(void **state) {
  (void)state;
  char *source = new_source("gzip");
  char *query = xasprintf("source=%s", source);
  char *csv = two_good_rows();
  size_t len;
  char *gz = gzip(csv, strlen(csv), &len);
  struct db_snapshot before = db_snapshot();
  struct api_response *r = post_import(query, "text/csv", "gzip", gz, len - 12);
  api_expect_problem(r, 400, "import-truncated", NULL);
  api_response_free(r);
  gz[len / 2] ^= 0x55; /* damaged in the middle */
  r = post_import(query, "text/csv", "gzip", gz, len);
  api_expect_problem(r, 400, "import-truncated", NULL);
  api_response_free(r);
  db_expect_unchanged(&before, "a truncated or damaged gzip upload");
  gz[len / 2] ^= 0x55;
  r = post_import(query, "text/csv", "gzip", gz, len);
  expect_counts(r, (struct counts){.rows = 2, .inserted = 2});
  api_response_free(r);
  free(gz);
  free(csv);
  free(query);
  free(source);
}

static void test_ndjson(void **state) {
  (void)state;
  char *source = new_source("ndjson");
  char *query = xasprintf("source=%s", source);
  char p1[14], p2[14], p3[14], office[13];
  random_bsn(p1);
  random_bsn(p2);
  random_bsn(p3);
  random_kvk(office);
  char *body = NULL;
  /* A reference with every character COPY escapes, and some it does not:
   * the trail's line for its mandate is written by machtigend, and must
   * be what PostgreSQL stores and prints (test_audit_verifies). */
  append(&body,
         "{\"external_ref\":\"N4\\t\\\\\\b\\f\\n\\r\\u000b\\u0001\\u007f\\u00e9\\\\N\","
         "\"principal\":\"%s\",\"representative\":\"%s\",\"service\":\"belasting-aangifte\","
         "\"kind\":\"voluntary\",\"valid_from\":\"%s\",\"valid_until\":\"%s\"}\n",
         p3, office, day(0), day(100));
  append(&body,
         "{\"external_ref\":\"N1\",\"principal\":\"%s\",\"representative\":\"%s\","
         "\"service\":\"belasting-aangifte\",\"kind\":\"bewind\",\"valid_from\":\"%s\","
         "\"valid_until\":\"%s\",\"court_ref\":\"C/1\",\"court\":null}\n",
         p1, office, day(0), day(100));
  append(&body, "{\"external_ref\":\"N2\",\"principal\":\"%s\",\"unknown\":\"x\"}\n", p2);
  append(&body, "not json\n\n");
  append(&body,
         "{\"external_ref\":\"N3\",\"principal\":\"%s\",\"representative\":\"%s\","
         "\"service\":\"belasting-aangifte\",\"kind\":\"curatele\",\"valid_from\":\"%s\","
         "\"valid_until\":\"%s\",\"court_ref\":\"C/\\u00e9\",\"line\":\"7\"}",
         p2, office, day(0), day(100));
  size_t len;
  char *gz = gzip(body, strlen(body), &len);
  struct api_response *r = post_import(query, "application/x-ndjson", "gzip", gz, len);
  expect_counts(r, (struct counts){.rows = 5, .inserted = 3, .rejected = 2});
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1 AND external_ref ="
                          " E'N4\\t\\\\\\b\\f\\n\\r\\x0b\\x01\\x7f\\u00e9\\\\N'",
                          source, NULL),
                   1);
  /* Each new mandate's trail line names it as it is. */
  assert_int_equal(db_int("SELECT count(*) FROM import_changes c JOIN mandates m"
                          " ON m.id = c.mandate_id AND m.principal = c.principal"
                          " AND m.service = c.service AND m.external_ref = c.external_ref"
                          " AND m.kind = c.kind WHERE c.import_id = $1::uuid AND c.change = 'c'",
                          api_str(r, "id"), NULL),
                   3);
  char *rejects = get_rejects(api_str(r, "id"));
  const long long lines[] = {3, 4};
  const char *const codes[] = {"malformed-row", "malformed-row"};
  expect_rejects(rejects, lines, codes, 2);
  assert_int_equal(
      db_int("SELECT count(*) FROM mandates WHERE source = $1 AND court_ref = 'C/\xc3\xa9'", source,
             NULL),
      1);
  free(rejects);
  api_response_free(r);
  free(gz);
  free(body);
  free(query);
  free(source);
}

static void test_twenty_megabyte_line(void **state) {
  (void)state;
  char *source = new_source("long");
  char *csv = two_good_rows();
  size_t big = 20 * 1024 * 1024;
  size_t head = strlen(HEADER);
  char *second = strstr(csv + head, "\n") + 1;
  size_t first_len = (size_t)(second - csv), rest = strlen(second);
  char *body = malloc(first_len + big + 2 + rest);
  memcpy(body, csv, first_len);
  memcpy(body + first_len, "X,", 2);
  memset(body + first_len + 2, 'x', big - 2);
  body[first_len + big] = '\n';
  memcpy(body + first_len + big + 1, second, rest);
  char *query = xasprintf("source=%s", source);
  struct api_response *r = post_import(query, "text/csv", NULL, body, first_len + big + 1 + rest);
  expect_counts(r, (struct counts){.rows = 3, .inserted = 2, .rejected = 1});
  char *rejects = get_rejects(api_str(r, "id"));
  const long long lines[] = {3};
  const char *const codes[] = {"row-too-long"};
  expect_rejects(rejects, lines, codes, 1);
  free(rejects);
  api_response_free(r);
  free(body);
  free(query);
  free(csv);
  free(source);
}

static void test_wrong_file_or_type(void **state) {
  (void)state;
  char *source = new_source("wrong");
  char *query = xasprintf("source=%s", source);
  char *csv = two_good_rows();
  struct db_snapshot before = db_snapshot();
  struct api_response *r = post_import(query, "application/json", NULL, csv, strlen(csv));
  api_expect_problem(r, 415, "unsupported-import-type", NULL);
  api_response_free(r);
  r = post_import(query, NULL, NULL, csv, strlen(csv));
  api_expect_problem(r, 415, "unsupported-import-type", NULL);
  api_response_free(r);
  r = post_import(query, "text/csv; charset=iso-8859-1", NULL, csv, strlen(csv));
  api_expect_problem(r, 415, "unsupported-import-type", NULL);
  api_response_free(r);
  r = post_import(query, "text/csv", "br", csv, strlen(csv));
  api_expect_problem(r, 415, "unsupported-media-type", NULL);
  api_response_free(r);
  /* Files that cannot be read as an import at all. */
  const char utf16[] = "\xff\xfe"
                       "e\0x\0t\0";
  const char *bodies[] = {"", "external_ref;principal;representative\n",
                          "external_ref,principal,representative,service,kind,valid_from\n",
                          ("external_ref,principal,representative,service,kind,valid_from,"
                           "valid_until,remarks\n")};
  const char *details[] = {"empty", "commas", "valid_until", "remarks"};
  for (size_t i = 0; i < 4; i++) {
    r = post_import(query, "text/csv", NULL, bodies[i], strlen(bodies[i]));
    api_expect_problem(r, 400, "invalid-import-header", NULL);
    if (strstr(api_str(r, "detail"), details[i]) == NULL)
      fail_msg("the detail should mention %s: %s", details[i], api_describe(r));
    api_response_free(r);
  }
  r = post_import(query, "text/csv", NULL, utf16, sizeof utf16 - 1);
  api_expect_problem(r, 400, "invalid-import-header", NULL);
  if (strstr(api_str(r, "detail"), "UTF-16") == NULL)
    fail_msg("the detail should say UTF-16: %s", api_describe(r));
  api_response_free(r);
  db_expect_unchanged(&before, "refused imports");
  free(csv);
  free(query);
  free(source);
}

/* api_expect_problem wants a Bearer challenge on 401; admins get Basic. */
static void expect_admin_challenge(const struct api_response *r) {
  const char *code = api_str(r, "code");
  if (r->status != 401 || code == NULL || strcmp(code, "admin-auth-required") != 0 ||
      r->www_authenticate == NULL || strncasecmp(r->www_authenticate, "Basic", 5) != 0)
    fail_msg("expected 401 admin-auth-required with a Basic challenge: %s", api_describe(r));
}

static void test_query_and_auth(void **state) {
  (void)state;
  const char *csv = HEADER;
  const struct {
    const char *query, *field;
  } bad[] = {{"mode=upsert", "source"},
             {"source=", "source"},
             {"source=-x", "source"},
             {"source=ok&mode=merge", "mode"},
             {"source=ok&dry_run=yes", "dry_run"},
             {"source=ok&limit=3", "limit"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct api_response *r = post_import(bad[i].query, "text/csv", NULL, csv, strlen(csv));
    api_expect_problem(r, 400, "invalid-query", bad[i].field);
    api_response_free(r);
  }
  const char *none[] = {"Content-Type: text/csv", NULL};
  struct api_response *r =
      api_request("POST", "/v1/admin/imports?source=x", none, csv, strlen(csv));
  expect_admin_challenge(r);
  api_response_free(r);
  char *portal = basic_auth(api_env("PORTAL_CLIENT_ID"), api_env("PORTAL_CLIENT_SECRET"));
  const char *as_portal[] = {portal, "Content-Type: text/csv", NULL};
  r = api_request("POST", "/v1/admin/imports?source=x", as_portal, csv, strlen(csv));
  expect_admin_challenge(r);
  api_response_free(r);
  r = api_request("GET", "/v1/admin/imports/00000000-0000-4000-8000-000000000000", as_portal, NULL,
                  0);
  expect_admin_challenge(r);
  api_response_free(r);
  free(portal);
  const char *missing[] = {"/v1/admin/imports/00000000-0000-4000-8000-000000000000",
                           "/v1/admin/imports/00000000-0000-4000-8000-000000000000/rejects",
                           "/v1/admin/imports/not-a-uuid"};
  for (size_t i = 0; i < 3; i++) {
    r = admin_get(missing[i]);
    api_expect_problem(r, 404, "import-not-found", NULL);
    api_response_free(r);
  }
}

/* ---- Uploads that take their time --------------------------------------------- */

/* A POST whose body comes in two parts: the first at once, the second
 * when the test says so (or never: the client goes away). */
struct slow_upload {
  char *url, *first, *second;
  size_t first_len, second_len, sent;
  bool second_allowed, abort_instead;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  bool first_sent;
  long status;
  char *answer;
  size_t answer_len;
};

static size_t slow_read(char *out, size_t size, size_t nmemb, void *userdata) {
  struct slow_upload *u = userdata;
  size_t max = size * nmemb;
  pthread_mutex_lock(&u->lock);
  if (u->sent >= u->first_len) {
    u->first_sent = true;
    pthread_cond_broadcast(&u->changed);
    while (!u->second_allowed)
      pthread_cond_wait(&u->changed, &u->lock);
  }
  pthread_mutex_unlock(&u->lock);
  if (u->sent >= u->first_len && u->abort_instead)
    return CURL_READFUNC_ABORT;
  const char *src =
      u->sent < u->first_len ? u->first + u->sent : u->second + (u->sent - u->first_len);
  size_t left =
      u->sent < u->first_len ? u->first_len - u->sent : u->first_len + u->second_len - u->sent;
  size_t n = left < max ? left : max;
  memcpy(out, src, n);
  u->sent += n;
  return n;
}

static size_t slow_answer(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct slow_upload *u = userdata;
  size_t n = size * nmemb;
  u->answer = realloc(u->answer, u->answer_len + n + 1);
  memcpy(u->answer + u->answer_len, ptr, n);
  u->answer_len += n;
  u->answer[u->answer_len] = '\0';
  return n;
}

static void *slow_post(void *arg) {
  struct slow_upload *u = arg;
  CURL *curl = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, admin_auth);
  h = curl_slist_append(h, "Content-Type: text/csv");
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, u->url);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, slow_read);
  curl_easy_setopt(curl, CURLOPT_READDATA, u);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(u->first_len + u->second_len));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, slow_answer);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, u);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  if (curl_easy_perform(curl) == CURLE_OK)
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &u->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(curl);
  pthread_mutex_lock(&u->lock);
  u->first_sent = true; /* also when it failed early */
  pthread_cond_broadcast(&u->changed);
  pthread_mutex_unlock(&u->lock);
  return NULL;
}

static void slow_start(struct slow_upload *u, pthread_t *t, const char *source, char *csv) {
  memset(u, 0, sizeof *u);
  u->url = xasprintf("%s/v1/admin/imports?source=%s", api_env("MACHTIGEN_URL"), source);
  /* The header and first row now, the rest later. */
  char *split = strchr(strchr(csv, '\n') + 1, '\n') + 1;
  u->first = csv;
  u->first_len = (size_t)(split - csv);
  u->second = split;
  u->second_len = strlen(split);
  pthread_mutex_init(&u->lock, NULL);
  pthread_cond_init(&u->changed, NULL);
  pthread_create(t, NULL, slow_post, u);
  pthread_mutex_lock(&u->lock);
  while (!u->first_sent)
    pthread_cond_wait(&u->changed, &u->lock);
  pthread_mutex_unlock(&u->lock);
  usleep(200 * 1000); /* the server has taken the first part */
}

static void slow_finish(struct slow_upload *u, pthread_t t, bool abort_instead) {
  pthread_mutex_lock(&u->lock);
  u->second_allowed = true;
  u->abort_instead = abort_instead;
  pthread_cond_broadcast(&u->changed);
  pthread_mutex_unlock(&u->lock);
  pthread_join(t, NULL);
  pthread_mutex_destroy(&u->lock);
  pthread_cond_destroy(&u->changed);
  free(u->url);
}

static void test_concurrent_imports_of_one_source(void **state) {
  (void)state;
  char *source = new_source("busy");
  char *first = two_good_rows(), *second = two_good_rows();
  struct slow_upload u;
  pthread_t t;
  slow_start(&u, &t, source, first);
  /* The second import of this source is refused at once, before its
   * upload; another source is not held up. */
  struct api_response *r = post_csv(source, NULL, second);
  api_expect_problem(r, 409, "import-in-progress", "source");
  api_response_free(r);
  char *other = new_source("busy-other");
  r = post_csv(other, NULL, second);
  expect_counts(r, (struct counts){.rows = 2, .inserted = 2});
  api_response_free(r);
  slow_finish(&u, t, false);
  if (u.status != 201)
    fail_msg("the first import should succeed after the refusal, got %ld: %s", u.status,
             u.answer ? u.answer : "");
  json_t *report = json_loads(u.answer, 0, NULL);
  if (json_integer_value(json_object_get(json_object_get(report, "counts"), "inserted")) != 2)
    fail_msg("the first import should insert its own 2 rows: %s", u.answer);
  json_decref(report);
  /* Its rows only: nothing of the refused one. */
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1", source, NULL), 2);
  free(u.answer);
  free(other);
  free(first);
  free(second);
  free(source);
}

/* The services an import checks its rows against stay as they were until
 * it commits: its merge does not fire the row trigger that checks each new
 * mandate's service (schema/0009), so it locks the catalogue when it reads
 * it.  A service no mandate names cannot be deleted while an import runs,
 * and can be after. */
static void test_import_holds_its_services(void **state) {
  (void)state;
  char *code = new_source("svc");
  PQclear(db_query("INSERT INTO services (code, name_nl, name_en, min_loa, max_duration_days)"
                   " VALUES ($1, 'Testdienst', 'Test service', 'midden', 30)",
                   code, NULL));
  char *source = new_source("services");
  char *csv = two_good_rows();
  struct slow_upload u;
  pthread_t t;
  slow_start(&u, &t, source, csv);
  PGconn *other = db_conn_other();
  PQclear(PQexec(other, "SET lock_timeout = '300ms'"));
  const char *params[] = {code};
  PGresult *r =
      PQexecParams(other, "DELETE FROM services WHERE code = $1", 1, NULL, params, NULL, NULL, 0);
  const char *state_got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (state_got == NULL || strcmp(state_got, "55P03") != 0)
    fail_msg("deleting a service during an import should wait for it (55P03), got %s: %s",
             state_got ? state_got : PQresStatus(PQresultStatus(r)), PQerrorMessage(other));
  PQclear(r);
  slow_finish(&u, t, false);
  if (u.status != 201)
    fail_msg("the import should succeed, got %ld: %s", u.status, u.answer ? u.answer : "");
  r = PQexecParams(other, "DELETE FROM services WHERE code = $1", 1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1") != 0)
    fail_msg("after the import the service can go: %s", PQerrorMessage(other));
  PQclear(r);
  PQfinish(other);
  free(u.answer);
  free(csv);
  free(source);
  free(code);
}

static void test_client_going_away_changes_nothing(void **state) {
  (void)state;
  char *source = new_source("away");
  char *csv = two_good_rows();
  struct db_snapshot before = db_snapshot();
  struct slow_upload u;
  pthread_t t;
  slow_start(&u, &t, source, csv);
  slow_finish(&u, t, true);
  free(u.answer);
  usleep(300 * 1000); /* the server notices and rolls back */
  db_expect_unchanged(&before, "an upload the client abandoned");
  /* The source's lock went with it. */
  struct api_response *r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 2, .inserted = 2});
  api_response_free(r);
  free(csv);
  free(source);
}

/* The trail is written on a connection of its own while the merge runs
 * (service/db/imports_db_audit.c): a merge that fails part-way (here a
 * row trigger the test adds raises on the third row, after two changes
 * went to the trail) leaves neither mandates nor changes behind. */
static void test_failed_merge_leaves_no_trail(void **state) {
  (void)state;
  char *source = new_source("fail");
  char *csv = two_good_rows();
  char p3[14], office[13];
  random_bsn(p3);
  random_kvk(office);
  append_row(&csv, (struct row){"FAIL-HERE", p3, office, "belasting-aangifte", "bewind", day(-1),
                                day(100), "C/3", ""});
  PQclear(db_query("CREATE FUNCTION api_test_fail_merge() RETURNS trigger LANGUAGE plpgsql AS $$"
                   " BEGIN IF NEW.external_ref = 'FAIL-HERE' THEN"
                   " RAISE EXCEPTION 'a merge that fails part-way'; END IF; RETURN NEW; END $$",
                   NULL));
  PQclear(db_query("CREATE TRIGGER api_test_fail_merge BEFORE INSERT ON mandates FOR EACH ROW"
                   " EXECUTE FUNCTION api_test_fail_merge()",
                   NULL));
  struct db_snapshot before = db_snapshot();
  struct api_response *r = post_csv(source, NULL, csv);
  PQclear(db_query("DROP TRIGGER api_test_fail_merge ON mandates", NULL));
  PQclear(db_query("DROP FUNCTION api_test_fail_merge()", NULL));
  api_expect_status(r, 503);
  db_expect_unchanged(&before, "a merge that failed part-way");
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE source = $1", source, NULL), 0);
  api_response_free(r);
  /* Without the trigger the same file goes in whole, with its changes. */
  r = post_csv(source, NULL, csv);
  expect_counts(r, (struct counts){.rows = 3, .inserted = 3});
  assert_int_equal(db_int("SELECT count(*) FROM import_changes WHERE import_id = $1::uuid",
                          api_str(r, "id"), NULL),
                   3);
  api_response_free(r);
  free(csv);
  free(source);
}

struct import_call {
  const char *source, *csv;
  struct api_response *r;
};

static void *import_in_thread(void *arg) {
  struct import_call *call = arg;
  call->r = post_csv(call->source, NULL, call->csv);
  return NULL;
}

/* How many imports wait for a lock in the database now. */
static long long imports_waiting(void) {
  return db_int("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                " 'machtigend-import' AND wait_event_type = 'Lock'",
                NULL);
}

/* The same, once some import waits (or after 10 s: 0). */
static long long import_comes_to_wait(void) {
  long long waiting = 0;
  for (int i = 0; i < 200 && waiting == 0; i++) {
    usleep(50 * 1000);
    waiting = imports_waiting();
  }
  return waiting;
}

/* GET /healthz on a kept-alive connection of its own (h's); the status,
 * 0 for no answer. */
static size_t discard(char *data, size_t size, size_t n, void *ctx) {
  (void)data;
  (void)ctx;
  return size * n;
}

static long healthz_on(CURL *h) {
  char *url = xasprintf("%s/healthz", api_env("MACHTIGEN_URL"));
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  long status = 0;
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  free(url);
  return status;
}

#define KEPT_ALIVE 48

/* An import's checks and merge run on a thread of their own, with its
 * connection set aside: the server's threads, each serving many
 * connections, answer their others meanwhile.  Here 48 kept-alive
 * connections, opened before the import (and so spread over the
 * server's threads, the import's among them), are each asked once more
 * while the import waits for the merge lock, which the test holds; with
 * the work on the server's thread, those that share it with the import
 * would get no answer until the lock is let go. */
static void test_requests_answered_during_an_import(void **state) {
  (void)state;
  char *source = new_source("busy-server");
  char p[1][14], office[13];
  random_bsn(p[0]);
  random_kvk(office);
  const struct bewind_row one[] = {{"A", 0, -10, 500, "C/1"}};
  char *csv = bewind_csv(one, 1, p, office);
  CURL *kept[KEPT_ALIVE];
  for (int i = 0; i < KEPT_ALIVE; i++) {
    kept[i] = curl_easy_init();
    assert_int_equal(healthz_on(kept[i]), 200);
  }
  PGconn *other = db_conn_other();
  const char *lock = "SELECT pg_advisory_lock(hashtextextended('machtigen-import-merge', 0))";
  PGresult *res = PQexec(other, lock);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", lock, PQresultErrorMessage(res));
  PQclear(res);
  struct import_call call = {source, csv, NULL};
  pthread_t t;
  pthread_create(&t, NULL, import_in_thread, &call);
  long long waiting = import_comes_to_wait();
  int answered = 0;
  for (int i = 0; waiting > 0 && i < KEPT_ALIVE; i++)
    answered += healthz_on(kept[i]) == 200;
  long long still = imports_waiting();
  res = PQexec(other, "SELECT pg_advisory_unlock_all()");
  PQclear(res);
  PQfinish(other);
  pthread_join(t, NULL);
  for (int i = 0; i < KEPT_ALIVE; i++)
    curl_easy_cleanup(kept[i]);
  if (waiting == 0)
    fail_msg("the import never waited for the merge lock: %s", api_describe(call.r));
  if (answered != KEPT_ALIVE)
    fail_msg("only %d of %d kept-alive connections were answered while an import waited", answered,
             KEPT_ALIVE);
  assert_int_equal(still, 1);
  expect_counts(call.r, (struct counts){.rows = 1, .inserted = 1});
  api_response_free(call.r);
  free(csv);
  free(source);
}

/* A mandate being made live another way while the import runs (here
 * another registry's, held open until the import waits for it): the
 * import waits for it before its checks (the live mandates' lock), then
 * sees it and rejects just the row that now overlaps. */
static void test_concurrent_change_is_checked_again(void **state) {
  (void)state;
  char *source = new_source("race");
  char p1[14], p2[14], office[13], uuid[37];
  random_bsn(p1);
  random_bsn(p2);
  random_kvk(office);
  random_uuid(uuid);
  char *csv = strdup(HEADER);
  append_row(&csv, (struct row){"X", p1, office, "belasting-aangifte", "bewind", day(-1), day(100),
                                "C/1", ""});
  append_row(&csv, (struct row){"Y", p2, office, "belasting-aangifte", "bewind", day(-1), day(100),
                                "C/2", ""});
  PGconn *other = db_conn_other();
  exec_or_fail(other, "BEGIN", NULL, 0);
  const char *params[] = {p1, office, uuid};
  exec_or_fail(other,
               "INSERT INTO mandates (principal, representative, service, kind, status, valid_from,"
               " valid_until, initiated_by, origin, court_ref, source, external_ref) VALUES ($1,"
               " $2, 'belasting-aangifte', 'curatele', 'active', now(), now() + interval '50 days',"
               " 'admin', 'import', 'C/9', 'api-test-other-' || $3, 'R1')",
               params, 3);
  struct import_call call = {source, csv, NULL};
  pthread_t t;
  pthread_create(&t, NULL, import_in_thread, &call);
  long long waiting = import_comes_to_wait();
  exec_or_fail(other, "COMMIT", NULL, 0);
  PQfinish(other);
  pthread_join(t, NULL);
  if (waiting == 0)
    fail_msg("the import never waited for the other transaction: %s", api_describe(call.r));
  expect_counts(call.r, (struct counts){.rows = 2, .inserted = 1, .rejected = 1});
  char *rejects = get_rejects(api_str(call.r, "id"));
  const long long lines[] = {2};
  const char *const codes[] = {"mandate-overlap"};
  expect_rejects(rejects, lines, codes, 1);
  free(rejects);
  api_response_free(call.r);
  free(csv);
  free(source);
}

/* ---- The CLI and the audit trail ---------------------------------------------- */

/* Runs a shell command; its exit status. */
static int run(const char *cmd) {
  int status = system(cmd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
    fail_msg("cannot write %s", path);
}

static void test_cli(void **state) {
  (void)state;
  const char *bin = api_env("MACHTIGEN_IMPORT_BIN");
  if (bin[0] == '\0')
    fail_msg("MACHTIGEN_IMPORT_BIN is not set (tests/api/meson.build sets it)");
  char dir[] = "/tmp/machtigen-import-test-XXXXXX";
  if (mkdtemp(dir) == NULL)
    fail_msg("mkdtemp failed");
  char *source = new_source("cli");
  char *file = xasprintf("%s/mandates.csv", dir), *creds = xasprintf("%s/admin.env", dir);
  char *rejects = xasprintf("%s/mandates.rejects.csv", dir);
  char *creds_text = xasprintf("# machtigend clients add\nclient_id=%s\nclient_secret='%s'\n",
                               api_env("ADMIN_CLIENT_ID"), api_env("ADMIN_CLIENT_SECRET"));
  write_file(creds, creds_text);
  char *csv = two_good_rows();
  append(&csv, "X,bsn:123456789,kvk:12345678,belasting-aangifte,bewind,%s,%s,C/1,\n", day(0),
         day(10));
  write_file(file, csv);
  char *cmd = xasprintf("'%s' '%s' --source %s --server '%s' --credentials '%s' >'%s/out' 2>&1",
                        bin, file, source, api_env("MACHTIGEN_URL"), creds, dir);
  int rc = run(cmd);
  if (rc != 1)
    fail_msg("one rejected row: expected exit status 1, got %d (%s)", rc, cmd);
  struct stat sb;
  if (stat(rejects, &sb) != 0)
    fail_msg("no rejects file %s", rejects);
  /* Corrected (the BSN), the rejects file goes in cleanly. */
  char principal[14];
  random_bsn(principal);
  char *fix = xasprintf("sed -i 's/bsn:123456789/%s/' '%s'", principal, rejects);
  assert_int_equal(run(fix), 0);
  free(cmd);
  cmd = xasprintf("MACHTIGEN_URL='%s' MACHTIGEN_CLIENT_ID='%s' MACHTIGEN_CLIENT_SECRET='%s' "
                  "'%s' '%s' --source %s --json >'%s/out.json' 2>'%s/err'",
                  api_env("MACHTIGEN_URL"), api_env("ADMIN_CLIENT_ID"),
                  api_env("ADMIN_CLIENT_SECRET"), bin, rejects, source, dir, dir);
  rc = run(cmd);
  if (rc != 0)
    fail_msg("the corrected rejects: expected exit status 0, got %d (%s)", rc, cmd);
  /* Nothing changed when the server cannot be reached, or refuses. */
  free(cmd);
  cmd = xasprintf("'%s' '%s' --source %s --server http://127.0.0.1:9 --credentials '%s' "
                  ">/dev/null 2>&1",
                  bin, file, source, creds);
  assert_int_equal(run(cmd), 2);
  free(cmd);
  cmd = xasprintf("'%s' '%s' --source '-bad' --server '%s' --credentials '%s' >/dev/null 2>&1", bin,
                  file, api_env("MACHTIGEN_URL"), creds);
  assert_int_equal(run(cmd), 2);
  free(cmd);
  cmd = xasprintf("rm -rf '%s'", dir);
  run(cmd);
  free(cmd);
  free(fix);
  free(csv);
  free(creds_text);
  free(rejects);
  free(creds);
  free(file);
  free(source);
}

static void test_audit_verifies(void **state) {
  (void)state;
  audit_expect_chain();
  const char *bin = api_env("MACHTIGEN_BIN");
  if (bin[0] == '\0')
    fail_msg("MACHTIGEN_BIN is not set: run through tools/dev test");
  char *cmd = xasprintf("MACHTIGEN_DATABASE_URL='%s' '%s' audit verify >/dev/null",
                        api_env("DATABASE_URL"), bin);
  int rc = run(cmd);
  if (rc != 0)
    fail_msg("machtigend audit verify exited %d after the imports", rc);

  /* The changes of an import are sealed by its event: changing one, or
   * adding one, breaks the chain (as the database owner can, with the
   * append-only trigger off; put back afterwards). */
  char *import = db_text("SELECT import_id::text FROM import_changes LIMIT 1", NULL);
  char *service = db_text("SELECT service FROM import_changes WHERE import_id = $1::uuid AND n = 1",
                          import, NULL);
  PQclear(db_query("ALTER TABLE import_changes DISABLE TRIGGER import_changes_append_only", NULL));
  const char *other = strcmp(service, "gemeente-afval") == 0 ? "uwv-wia-inzien" : "gemeente-afval";
  PQclear(db_query("UPDATE import_changes SET service = $2 WHERE import_id = $1::uuid AND n = 1",
                   import, other, NULL));
  int changed = run(cmd);
  PQclear(db_query("UPDATE import_changes SET service = $2 WHERE import_id = $1::uuid AND n = 1",
                   import, service, NULL));
  PQclear(db_query("INSERT INTO import_changes (import_id, n, change, mandate_id, principal,"
                   " service) SELECT import_id, n + 1000000, change, mandate_id, principal, service"
                   " FROM import_changes WHERE import_id = $1::uuid AND n = 1",
                   import, NULL));
  int added = run(cmd);
  PQclear(db_query("DELETE FROM import_changes WHERE import_id = $1::uuid AND n > 1000000", import,
                   NULL));
  /* Changes no event seals: of an import that did not finish (no report:
   * its trail committed, its own commit failed) they are in no trail and
   * only counted; of an import with a report they are broken. */
  char unfinished_id[37];
  random_uuid(unfinished_id);
  char *unsealed_id = db_text("SELECT id::text FROM imports WHERE audit_seq IS NULL LIMIT 1", NULL);
  static const char copy_first[] =
      "INSERT INTO import_changes (import_id, n, change, mandate_id, principal, service)"
      " SELECT $2::uuid, 1, change, mandate_id, principal, service FROM import_changes"
      " WHERE import_id = $1::uuid AND n = 1";
  PQclear(db_query(copy_first, import, unfinished_id, NULL));
  int unfinished = run(cmd);
  PQclear(db_query(copy_first, import, unsealed_id, NULL));
  int unsealed = run(cmd);
  PQclear(db_query("DELETE FROM import_changes WHERE import_id IN ($1::uuid, $2::uuid)",
                   unfinished_id, unsealed_id, NULL));
  PQclear(db_query("ALTER TABLE import_changes ENABLE TRIGGER import_changes_append_only", NULL));
  int restored = run(cmd);
  if (changed != 1 || added != 1 || unfinished != 0 || unsealed != 1 || restored != 0)
    fail_msg("audit verify exited %d after a change of import %s was altered (want 1), %d after "
             "one was added (want 1), %d with changes of an unfinished import (want 0), %d with "
             "unsealed changes of a finished one (want 1), %d once put back (want 0)",
             changed, import, added, unfinished, unsealed, restored);
  free(unsealed_id);
  free(import);
  free(service);
  free(cmd);
}

int main(void) {
  api_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mixed_file),
      cmocka_unit_test(test_reimport_is_unchanged),
      cmocka_unit_test(test_corrected_rejects_import_cleanly),
      cmocka_unit_test(test_dry_run_changes_nothing),
      cmocka_unit_test(test_sync_ends_exactly_the_missing),
      cmocka_unit_test(test_trail_names_exactly_the_new_mandates),
      cmocka_unit_test(test_stale_statistics_are_refreshed),
      cmocka_unit_test(test_activity_shows_import_changes),
      cmocka_unit_test(test_legal_mandate_ends_voluntary),
      cmocka_unit_test(test_gzip_and_truncated_upload),
      cmocka_unit_test(test_ndjson),
      cmocka_unit_test(test_twenty_megabyte_line),
      cmocka_unit_test(test_wrong_file_or_type),
      cmocka_unit_test(test_query_and_auth),
      cmocka_unit_test(test_concurrent_imports_of_one_source),
      cmocka_unit_test(test_import_holds_its_services),
      cmocka_unit_test(test_client_going_away_changes_nothing),
      cmocka_unit_test(test_failed_merge_leaves_no_trail),
      cmocka_unit_test(test_concurrent_change_is_checked_again),
      cmocka_unit_test(test_requests_answered_during_an_import),
      cmocka_unit_test(test_cli),
      /* Last: every row the imports above wrote must be chained. */
      cmocka_unit_test(test_audit_verifies),
  };
  return cmocka_run_group_tests_name("imports", tests, group_setup, group_teardown);
}
