/* The mandate lifecycle through the API, as DESIGN.md and openapi.yaml
 * describe it: grant and request, accept, decline, revoke, overlap, legal
 * mandates, lapsed requests, keyset pagination, and the audit trail that
 * every state change leaves.  Every test uses fresh random parties, so
 * reruns against the same database never collide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include "client.h"
#include "dbcheck.h"
#include "tokens.h"

struct who {
  char party[14];
  char employee[40]; /* organisations only */
  char *token;
};

static struct who person(const char *loa) {
  struct who w = {.token = NULL};
  random_bsn(w.party);
  w.token = token_person(w.party, loa);
  return w;
}

static struct who organisation(const char *loa) {
  struct who w = {.token = NULL};
  random_kvk(w.party);
  char uuid[37];
  random_uuid(uuid);
  snprintf(w.employee, sizeof w.employee, "emp-%.12s", uuid);
  w.token = token_org(w.party, w.employee, loa);
  return w;
}

static void forget(struct who *w) {
  free(w->token);
  w->token = NULL;
}

static char from_date[11], until_date[11];

/* POST /v1/mandates as caller naming the other side: "representative"
 * for a grant, "principal" for a request. */
static struct api_response *create(const struct who *caller, const char *side, const char *other,
                                   const char *service, const char *from, const char *until) {
  char *body = xasprintf("{\"%s\":\"%s\",\"service\":\"%s\",\"valid_from\":\"%s\","
                         "\"valid_until\":\"%s\"}",
                         side, other, service, from ? from : from_date, until ? until : until_date);
  struct api_response *r = api_call("POST", "/v1/mandates", caller->token, body);
  free(body);
  return r;
}

static void expect_str(const struct api_response *r, const char *key, const char *want) {
  const char *got = api_str(r, key);
  if (want == NULL ? !json_is_null(json_object_get(r->json, key))
                   : got == NULL || strcmp(got, want) != 0)
    fail_msg("expected %s = %s: %s", key, want ? want : "null", api_describe(r));
}

static void expect_version(const struct api_response *r, int version) {
  json_t *v = json_object_get(r->json, "version");
  char etag[16];
  snprintf(etag, sizeof etag, "\"%d\"", version);
  if (!json_is_integer(v) || json_integer_value(v) != version)
    fail_msg("expected version %d: %s", version, api_describe(r));
  if (r->etag == NULL || strcmp(r->etag, etag) != 0)
    fail_msg("expected ETag %s, got %s: %s", etag, r->etag ? r->etag : "none", api_describe(r));
}

/* Expects 201 and copies the new mandate's id. */
static void expect_created(const struct api_response *r, char id[37]) {
  api_expect_status(r, 201);
  const char *got = api_str(r, "id");
  if (got == NULL || strlen(got) != 36)
    fail_msg("no id: %s", api_describe(r));
  memcpy(id, got, 37);
}

static void create_ok(const struct who *caller, const char *side, const char *other,
                      const char *service, char id[37]) {
  struct api_response *r = create(caller, side, other, service, NULL, NULL);
  expect_created(r, id);
  api_response_free(r);
}

static struct api_response *get(const struct who *w, const char *id) {
  char *path = xasprintf("/v1/mandates/%s", id);
  struct api_response *r = api_call("GET", path, w->token, NULL);
  free(path);
  return r;
}

/* A state change that must succeed: 200, the new status and version, and
 * exactly one audit row for it. */
static void act_ok(const struct who *w, const char *action, const char *id, int version,
                   const char *status) {
  char etag[16];
  snprintf(etag, sizeof etag, "\"%d\"", version);
  const char *event = strcmp(action, "accept") == 0    ? "mandate_accepted"
                      : strcmp(action, "decline") == 0 ? "mandate_declined"
                                                       : "mandate_revoked";
  long long seq = audit_head_seq();
  struct api_response *r = api_action(action, id, w->token, etag, NULL);
  api_expect_status(r, 200);
  expect_str(r, "status", status);
  expect_version(r, version + 1);
  audit_expect_one(seq, event, id, w->party);
  api_response_free(r);
}

/* A state change that must be refused with status and code, changing
 * nothing. */
static void act_refused(const struct who *w, const char *action, const char *id, const char *etag,
                        long status, const char *code) {
  struct db_snapshot before = db_snapshot();
  struct api_response *r = api_action(action, id, w->token, etag, NULL);
  api_expect_problem(r, status, code, NULL);
  db_expect_unchanged(&before, code);
  api_response_free(r);
}

static void create_refused(const struct who *caller, const char *side, const char *other,
                           const char *service, long status, const char *code) {
  struct db_snapshot before = db_snapshot();
  struct api_response *r = create(caller, side, other, service, NULL, NULL);
  api_expect_problem(r, status, code, NULL);
  db_expect_unchanged(&before, code);
  api_response_free(r);
}

/* Whether the list answer for w at path holds id. */
static bool listed(const struct who *w, const char *path, const char *id) {
  struct api_response *r = api_call("GET", path, w->token, NULL);
  api_expect_status(r, 200);
  bool found = false;
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(r->json, "items"), i, item) {
    const char *got = json_string_value(json_object_get(item, "id"));
    found = found || (got != NULL && strcmp(got, id) == 0);
  }
  api_response_free(r);
  return found;
}

static int64_t instant(const char *text) {
  int64_t t;
  if (!parse_datetime(text, &t))
    fail_msg("not an RFC 3339 date-time: %s", text ? text : "(null)");
  return t;
}

/* ---- Grant, accept, revoke ---------------------------------------------- */

static void test_grant_lifecycle(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel"), third = person("hoog");
  int y = current_year() + 1;
  /* Winter start, summer end: a date is that day in Europe/Amsterdam. */
  char from[24], until[24];
  snprintf(from, sizeof from, "%d-01-15", y);
  snprintf(until, sizeof until, "%d-07-15", y);
  long long seq = audit_head_seq();
  struct api_response *r =
      create(&p, "representative", rep.party, "belasting-aangifte", from, until);
  char id[37];
  expect_created(r, id);
  audit_expect_one(seq, "mandate_created", id, p.party);
  expect_version(r, 1);
  expect_str(r, "status", "pending");
  expect_str(r, "initiated_by", "principal");
  expect_str(r, "principal", p.party);
  expect_str(r, "representative", rep.party);
  expect_str(r, "service", "belasting-aangifte");
  expect_str(r, "kind", "voluntary");
  expect_str(r, "court_ref", NULL);
  expect_str(r, "reason", NULL);
  char *want_location = xasprintf("/v1/mandates/%s", id);
  size_t ll = r->location ? strlen(r->location) : 0, wl = strlen(want_location);
  if (ll < wl || strcmp(r->location + ll - wl, want_location) != 0)
    fail_msg("Location must name %s: %s (Location %s)", want_location, api_describe(r),
             r->location ? r->location : "none");
  char start[40], next_day[40];
  snprintf(start, sizeof start, "%d-01-15T00:00:00+01:00", y);
  snprintf(next_day, sizeof next_day, "%d-07-16T00:00:00+02:00", y);
  if (instant(api_str(r, "valid_from")) != instant(start))
    fail_msg("valid_from must be the start of %s in Amsterdam (%s): %s", from, start,
             api_describe(r));
  int64_t end = instant(api_str(r, "valid_until"));
  if (end >= instant(next_day) || end < instant(next_day) - 1000000)
    fail_msg("valid_until must be the end of %s in Amsterdam: %s", until, api_describe(r));
  api_response_free(r);

  /* Location leads to it; both parties read it, a third party cannot. */
  r = api_call("GET", want_location, p.token, NULL);
  api_expect_status(r, 200);
  expect_version(r, 1);
  api_response_free(r);
  free(want_location);
  r = get(&rep, id);
  api_expect_status(r, 200);
  expect_str(r, "status", "pending");
  api_response_free(r);
  r = get(&third, id);
  api_expect_problem(r, 404, "mandate-not-found", NULL);
  api_response_free(r);

  assert_true(listed(&rep, "/v1/mandates?role=representative", id));
  assert_true(listed(&p, "/v1/mandates?role=principal", id));
  assert_true(listed(&p, "/v1/mandates", id));
  assert_false(listed(&rep, "/v1/mandates?role=principal", id));
  assert_false(listed(&p, "/v1/mandates?role=representative", id));
  assert_false(listed(&third, "/v1/mandates", id));

  /* The principal cannot accept their own grant; nobody else can touch it. */
  act_refused(&p, "accept", id, "\"1\"", 403, "action-forbidden");
  act_refused(&p, "decline", id, "\"1\"", 403, "action-forbidden");
  act_refused(&third, "accept", id, "\"1\"", 404, "mandate-not-found");
  act_refused(&third, "decline", id, "\"1\"", 404, "mandate-not-found");
  act_refused(&third, "revoke", id, "\"1\"", 404, "mandate-not-found");

  act_ok(&rep, "accept", id, 1, "active");
  r = get(&p, id);
  api_expect_status(r, 200);
  expect_str(r, "status", "active");
  expect_version(r, 2);
  api_response_free(r);
  act_refused(&rep, "accept", id, "\"1\"", 412, "precondition-failed");
  act_refused(&rep, "accept", id, "\"2\"", 409, "state-conflict");
  act_refused(&rep, "decline", id, "\"2\"", 409, "state-conflict");

  /* Revoke with a reason; then nothing more can happen to it. */
  seq = audit_head_seq();
  r = api_action("revoke", id, p.token, "\"2\"", "{\"reason\":\"We no longer work together.\"}");
  api_expect_status(r, 200);
  expect_str(r, "status", "revoked");
  expect_str(r, "reason", "We no longer work together.");
  expect_version(r, 3);
  audit_expect_one(seq, "mandate_revoked", id, p.party);
  api_response_free(r);
  act_refused(&rep, "accept", id, "\"3\"", 409, "state-conflict");
  act_refused(&rep, "revoke", id, "\"3\"", 409, "state-conflict");
  act_refused(&p, "revoke", id, "\"3\"", 409, "state-conflict");

  PGresult *events = db_query("SELECT string_agg(event, ',' ORDER BY seq) FROM audit_events"
                              " WHERE mandate_id = $1",
                              id, NULL);
  assert_string_equal(PQgetvalue(events, 0, 0), "mandate_created,mandate_accepted,mandate_revoked");
  PQclear(events);
  forget(&p);
  forget(&rep);
  forget(&third);
}

static void test_request_accepted_by_principal(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("midden");
  long long seq = audit_head_seq();
  struct api_response *r = create(&rep, "principal", p.party, "gemeente-afval", NULL, NULL);
  char id[37];
  expect_created(r, id);
  audit_expect_one(seq, "mandate_created", id, rep.party);
  expect_str(r, "initiated_by", "representative");
  expect_str(r, "principal", p.party);
  expect_str(r, "representative", rep.party);
  expect_str(r, "status", "pending");
  api_response_free(r);
  act_refused(&rep, "accept", id, "\"1\"", 403, "action-forbidden");
  act_ok(&p, "accept", id, 1, "active");
  /* Either side may revoke: here the representative. */
  act_ok(&rep, "revoke", id, 2, "revoked");
  forget(&p);
  forget(&rep);
}

static void test_decline(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", id);
  long long seq = audit_head_seq();
  struct api_response *r =
      api_action("decline", id, rep.token, "\"1\"", "{\"reason\":\"Nee, dank je.\"}");
  api_expect_status(r, 200);
  expect_str(r, "status", "declined");
  expect_str(r, "reason", "Nee, dank je.");
  expect_version(r, 2);
  audit_expect_one(seq, "mandate_declined", id, rep.party);
  api_response_free(r);
  act_refused(&rep, "accept", id, "\"2\"", 409, "state-conflict");
  act_refused(&p, "revoke", id, "\"2\"", 409, "state-conflict");
  /* A declined grant does not block a new one. */
  char again[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", again);
  forget(&p);
  forget(&rep);
}

static void test_initiator_withdraws_pending(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", id);
  act_ok(&p, "revoke", id, 1, "revoked");
  act_refused(&rep, "accept", id, "\"2\"", 409, "state-conflict");
  forget(&p);
  forget(&rep);
}

/* ---- Rules ---------------------------------------------------------------- */

static void test_overlap(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel"), rep2 = person("basis");
  char first[37], later[37], other[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", first);
  create_refused(&p, "representative", rep.party, "gemeente-afval", 409, "mandate-overlap");
  create_refused(&rep, "principal", p.party, "gemeente-afval", 409, "mandate-overlap");
  /* Partly overlapping (starts within), and after it became active. */
  char from[11], until[11];
  date_from_today(20, from);
  date_from_today(60, until);
  struct db_snapshot before = db_snapshot();
  struct api_response *r = create(&p, "representative", rep.party, "gemeente-afval", from, until);
  api_expect_problem(r, 409, "mandate-overlap", NULL);
  db_expect_unchanged(&before, "a partly overlapping grant");
  api_response_free(r);
  act_ok(&rep, "accept", first, 1, "active");
  create_refused(&p, "representative", rep.party, "gemeente-afval", 409, "mandate-overlap");
  /* The next day after the end does not overlap; nor does another person
   * or another service. */
  date_from_today(38, from);
  date_from_today(60, until);
  r = create(&p, "representative", rep.party, "gemeente-afval", from, until);
  expect_created(r, later);
  api_response_free(r);
  create_ok(&p, "representative", rep2.party, "gemeente-afval", other);
  create_ok(&p, "representative", rep.party, "belasting-aangifte", other);
  /* A revoked mandate no longer blocks the period. */
  act_ok(&p, "revoke", first, 2, "revoked");
  create_ok(&p, "representative", rep.party, "gemeente-afval", other);
  forget(&p);
  forget(&rep);
  forget(&rep2);
}

static void test_self_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel");
  create_refused(&p, "representative", p.party, "gemeente-afval", 422, "self-mandate");
  create_refused(&p, "principal", p.party, "gemeente-afval", 422, "self-mandate");
  forget(&p);
}

static void test_loa_too_low(void **state) {
  (void)state;
  struct who low = person("basis"), mid = person("midden"), rep = person("basis");
  /* uwv-ww-aanvragen needs midden: a basis login may not grant it. */
  create_refused(&low, "representative", rep.party, "uwv-ww-aanvragen", 403, "loa-too-low");
  char id[37];
  create_ok(&low, "representative", rep.party, "gemeente-afval", id);
  create_ok(&mid, "representative", rep.party, "uwv-ww-aanvragen", id);
  forget(&low);
  forget(&mid);
  forget(&rep);
}

static void test_organisation_representative(void **state) {
  (void)state;
  struct who p = person("substantieel"), org = organisation("substantieel");
  long long seq = audit_head_seq();
  struct api_response *r = create(&org, "principal", p.party, "uwv-ww-aanvragen", NULL, NULL);
  char id[37];
  expect_created(r, id);
  audit_expect_one(seq, "mandate_created", id, org.party);
  expect_str(r, "representative", org.party);
  expect_str(r, "initiated_by", "representative");
  api_response_free(r);
  /* The audit row names the acting employee. */
  char *employee =
      db_text("SELECT actor_employee FROM audit_events WHERE mandate_id = $1", id, NULL);
  if (employee == NULL || strcmp(employee, org.employee) != 0)
    fail_msg("audit actor_employee is %s, want %s", employee ? employee : "NULL", org.employee);
  free(employee);
  assert_true(listed(&org, "/v1/mandates?role=representative", id));
  act_ok(&p, "accept", id, 1, "active");

  /* uwv-wia-inzien and gemeente-afval take persons only. */
  struct db_snapshot before = db_snapshot();
  r = create(&org, "principal", p.party, "uwv-wia-inzien", NULL, NULL);
  api_expect_problem(r, 422, "representative-type-not-allowed", "representative");
  api_response_free(r);
  r = create(&p, "representative", org.party, "gemeente-afval", NULL, NULL);
  api_expect_problem(r, 422, "representative-type-not-allowed", "representative");
  api_response_free(r);
  /* An organisation cannot give a mandate. */
  struct who someone = person("basis");
  r = create(&org, "representative", someone.party, "belasting-aangifte", NULL, NULL);
  api_expect_problem(r, 422, "principal-not-person", "principal");
  api_response_free(r);
  db_expect_unchanged(&before, "refused organisation mandates");
  forget(&p);
  forget(&org);
  forget(&someone);
}

/* A court-appointed bewind, as an admin import would leave it. */
static char *insert_legal(const char *principal, const char *representative, const char *service) {
  return db_text("INSERT INTO mandates (principal, representative, service, kind, status,"
                 " valid_from, valid_until, initiated_by, origin, court_ref, source, external_ref)"
                 " VALUES ($1, $2, $3, 'bewind', 'active', now() - interval '30 days',"
                 " now() + interval '300 days', 'admin', 'import', 'C/13/123456 / BW RK 25-001',"
                 " 'api-test', gen_random_uuid()::text) RETURNING id::text",
                 principal, representative, service, NULL);
}

static void test_legal_mandate_blocks_voluntary(void **state) {
  (void)state;
  struct who p = person("substantieel"), office = organisation("substantieel"),
             rep = person("substantieel");
  char *legal = insert_legal(p.party, office.party, "uwv-ww-aanvragen");
  create_refused(&p, "representative", rep.party, "uwv-ww-aanvragen", 409, "legal-mandate-exists");
  create_refused(&rep, "principal", p.party, "uwv-ww-aanvragen", 409, "legal-mandate-exists");
  /* Shown to the principal (and the office), as it is. */
  struct api_response *r = get(&p, legal);
  api_expect_status(r, 200);
  expect_str(r, "kind", "bewind");
  expect_str(r, "status", "active");
  expect_str(r, "initiated_by", "admin");
  expect_str(r, "origin", "import");
  expect_str(r, "court_ref", "C/13/123456 / BW RK 25-001");
  api_response_free(r);
  assert_true(listed(&p, "/v1/mandates?role=principal&service=uwv-ww-aanvragen", legal));
  assert_true(listed(&office, "/v1/mandates?role=representative", legal));
  /* Another service is not covered. */
  char id[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", id);
  /* A grant made before the court appointed a bewindvoerder can no longer be
   * accepted, not even by the representative. */
  char pending[37];
  create_ok(&p, "representative", rep.party, "belasting-aangifte", pending);
  char *later = insert_legal(p.party, office.party, "belasting-aangifte");
  act_refused(&rep, "accept", pending, "\"1\"", 409, "legal-mandate-exists");
  free(later);
  free(legal);
  forget(&p);
  forget(&office);
  forget(&rep);
}

static void test_legal_mandate_not_revocable_by_party(void **state) {
  (void)state;
  struct who p = person("substantieel"), office = organisation("substantieel");
  char *legal = insert_legal(p.party, office.party, "belasting-aangifte");
  /* openapi.yaml, revoke 403: a court-appointed mandate ends through the
   * court register only. */
  act_refused(&p, "revoke", legal, "\"1\"", 403, "action-forbidden");
  act_refused(&office, "revoke", legal, "\"1\"", 403, "action-forbidden");
  free(legal);
  forget(&p);
  forget(&office);
}

static void test_request_lapses(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  create_ok(&rep, "principal", p.party, "gemeente-afval", id);
  PQclear(db_query("UPDATE mandates SET created_at = now() - interval '22 days' WHERE id = $1", id,
                   NULL));
  struct api_response *r = get(&p, id);
  api_expect_status(r, 200);
  expect_str(r, "status", "lapsed");
  api_response_free(r);
  assert_true(listed(&p, "/v1/mandates?status=lapsed", id));
  assert_false(listed(&p, "/v1/mandates?status=pending", id));
  act_refused(&p, "accept", id, "\"1\"", 409, "request-lapsed");
  act_refused(&p, "decline", id, "\"1\"", 409, "request-lapsed");
  /* A lapsed request does not block a new one. */
  char again[37];
  create_ok(&rep, "principal", p.party, "gemeente-afval", again);
  /* openapi.yaml, revoke 409: state-conflict for a lapsed one. */
  act_refused(&rep, "revoke", id, "\"1\"", 409, "state-conflict");
  forget(&p);
  forget(&rep);
}

static void test_expired_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  create_ok(&p, "representative", rep.party, "gemeente-afval", id);
  act_ok(&rep, "accept", id, 1, "active");
  PQclear(db_query("UPDATE mandates SET valid_from = now() - interval '20 days',"
                   " valid_until = now() - interval '1 day' WHERE id = $1",
                   id, NULL));
  struct api_response *r = get(&p, id);
  api_expect_status(r, 200);
  expect_str(r, "status", "expired");
  api_response_free(r);
  assert_true(listed(&rep, "/v1/mandates?status=expired", id));
  /* openapi.yaml, revoke 409: state-conflict for an expired one. */
  act_refused(&p, "revoke", id, "\"2\"", 409, "state-conflict");
  forget(&p);
  forget(&rep);
}

static void test_period_bounds(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel"), rep2 = person("basis");
  /* The maximum is inclusive: 90 days on the 90-day service. */
  char from[11], until[11], id[37];
  date_from_today(3, from);
  date_from_today(3 + 90, until);
  struct api_response *r = create(&p, "representative", rep.party, "gemeente-afval", from, until);
  expect_created(r, id);
  api_response_free(r);
  /* Date-times with offsets and a fraction come back as the same instants. */
  int y = current_year() + 1;
  char *dt_from = xasprintf("%d-03-01T10:00:00+01:00", y);
  char *dt_until = xasprintf("%d-09-01T12:30:00.5+02:00", y);
  r = create(&p, "representative", rep2.party, "belasting-aangifte", dt_from, dt_until);
  expect_created(r, id);
  if (instant(api_str(r, "valid_from")) != instant(dt_from) ||
      instant(api_str(r, "valid_until")) != instant(dt_until))
    fail_msg("the period must be %s .. %s: %s", dt_from, dt_until, api_describe(r));
  api_response_free(r);
  free(dt_from);
  free(dt_until);
  forget(&p);
  forget(&rep);
  forget(&rep2);
}

/* ---- Listing -------------------------------------------------------------- */

#define PAGED 25

/* Pages through path (which ends in a query) with limit; checks the
 * items come newest first, each once, with next null only at the end,
 * and each page no longer than limit.  Returns the ids (malloc'd) and
 * their number; pages[] gets the page sizes. */
static char **page_all(const struct who *w, const char *query, int limit, size_t *count, int *pages,
                       int max_pages) {
  char **ids = NULL;
  size_t n = 0;
  char *after = NULL;
  int page = 0;
  int64_t last_created = INT64_MAX;
  for (;;) {
    if (page == max_pages)
      fail_msg("more than %d pages for %s", max_pages, query);
    char *path = after ? xasprintf("/v1/mandates?%s&limit=%d&after=%s", query, limit, after)
                       : xasprintf("/v1/mandates?%s&limit=%d", query, limit);
    struct api_response *r = api_call("GET", path, w->token, NULL);
    free(path);
    api_expect_status(r, 200);
    json_t *items = json_object_get(r->json, "items");
    json_t *next = json_object_get(r->json, "next");
    if (!json_is_array(items) || (!json_is_null(next) && !json_is_string(next)))
      fail_msg("not a list: %s", api_describe(r));
    if ((int)json_array_size(items) > limit)
      fail_msg("more than limit=%d items: %s", limit, api_describe(r));
    pages[page++] = (int)json_array_size(items);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
      const char *id = json_string_value(json_object_get(item, "id"));
      int64_t created = instant(json_string_value(json_object_get(item, "created_at")));
      if (created > last_created)
        fail_msg("not newest first at %s", id);
      last_created = created;
      for (size_t j = 0; j < n; j++)
        if (strcmp(ids[j], id) == 0)
          fail_msg("%s came twice for %s", id, query);
      ids = realloc(ids, (n + 1) * sizeof *ids);
      ids[n++] = strdup(id);
    }
    free(after);
    after = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
    if (after != NULL && json_array_size(items) == 0)
      fail_msg("an empty page with a next cursor: %s", api_describe(r));
    api_response_free(r);
    if (after == NULL)
      break;
  }
  *count = n;
  return ids;
}

static bool contains(char **ids, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(ids[i], id) == 0)
      return true;
  return false;
}

static void free_ids(char **ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

/* Checks one paging: the expected number of items in the expected page
 * sizes, each of them one of want (when want is not NULL). */
static void expect_pages(const struct who *w, const char *query, int limit, const int *sizes,
                         int npages, char (*want)[37], size_t nwant) {
  int pages[16] = {0};
  size_t n;
  char **ids = page_all(w, query, limit, &n, pages, 16);
  for (int i = 0; i < npages; i++)
    if (pages[i] != sizes[i])
      fail_msg("%s limit=%d: page %d has %d items, want %d", query, limit, i + 1, pages[i],
               sizes[i]);
  if (pages[npages] != 0 || n != nwant)
    fail_msg("%s limit=%d: %zu items, want %zu", query, limit, n, nwant);
  for (size_t i = 0; i < nwant; i++)
    if (!contains(ids, n, want[i]))
      fail_msg("%s limit=%d: %s is missing", query, limit, want[i]);
  free_ids(ids, n);
}

static void test_keyset_pagination(void **state) {
  (void)state;
  struct who p = person("substantieel");
  char all[PAGED][37], afval[15][37], belasting[10][37], active[7][37], afval_pending[11][37];
  size_t na = 0, nb = 0, nact = 0, nap = 0;
  for (int i = 0; i < PAGED; i++) {
    struct who rep = person("substantieel");
    bool is_afval = i < 15;
    create_ok(&p, "representative", rep.party, is_afval ? "gemeente-afval" : "belasting-aangifte",
              all[i]);
    bool accept = is_afval ? i % 4 == 0 : (i - 15) % 4 == 0; /* 4 + 3 */
    if (accept) {
      act_ok(&rep, "accept", all[i], 1, "active");
      memcpy(active[nact++], all[i], 37);
    } else if (is_afval) {
      memcpy(afval_pending[nap++], all[i], 37);
    }
    memcpy(is_afval ? afval[na++] : belasting[nb++], all[i], 37);
    forget(&rep);
  }
  assert_int_equal(nact, 7);
  assert_int_equal(nap, 11);

  expect_pages(&p, "role=principal", 10, (const int[]){10, 10, 5}, 3, all, PAGED);
  expect_pages(&p, "role=principal", 100, (const int[]){25}, 1, all, PAGED);
  expect_pages(&p, "service=gemeente-afval", 4, (const int[]){4, 4, 4, 3}, 4, afval, 15);
  /* A last page that is exactly full has next null. */
  expect_pages(&p, "role=principal&service=belasting-aangifte", 5, (const int[]){5, 5}, 2,
               belasting, 10);
  expect_pages(&p, "status=active", 3, (const int[]){3, 3, 1}, 3, active, 7);
  expect_pages(&p, "status=pending&service=gemeente-afval", 10, (const int[]){10, 1}, 2,
               afval_pending, 11);
  expect_pages(&p, "role=representative", 10, (const int[]){0}, 1, NULL, 0);

  /* The cursor stays valid while mandates are added: a new one (newer
   * than the cursor) does not show up on later pages, and nothing repeats. */
  struct api_response *r = api_call("GET", "/v1/mandates?role=principal&limit=10", p.token, NULL);
  api_expect_status(r, 200);
  char *cursor = strdup(api_str(r, "next"));
  api_response_free(r);
  struct who late = person("basis");
  char newest[37];
  create_ok(&p, "representative", late.party, "gemeente-afval", newest);
  char *path = xasprintf("/v1/mandates?role=principal&limit=100&after=%s", cursor);
  r = api_call("GET", path, p.token, NULL);
  api_expect_status(r, 200);
  assert_int_equal(json_array_size(json_object_get(r->json, "items")), PAGED - 10);
  assert_true(json_is_null(json_object_get(r->json, "next")));
  api_response_free(r);
  free(path);
  free(cursor);
  forget(&late);
  forget(&p);
}

/* ---- Audit ---------------------------------------------------------------- */

static void test_audit_chain(void **state) {
  (void)state;
  audit_expect_chain();
}

static int group_setup(void **state) {
  (void)state;
  date_from_today(7, from_date);
  date_from_today(37, until_date);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  db_close();
  return 0;
}

int main(void) {
  api_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grant_lifecycle),
      cmocka_unit_test(test_request_accepted_by_principal),
      cmocka_unit_test(test_decline),
      cmocka_unit_test(test_initiator_withdraws_pending),
      cmocka_unit_test(test_overlap),
      cmocka_unit_test(test_self_mandate),
      cmocka_unit_test(test_loa_too_low),
      cmocka_unit_test(test_organisation_representative),
      cmocka_unit_test(test_legal_mandate_blocks_voluntary),
      cmocka_unit_test(test_legal_mandate_not_revocable_by_party),
      cmocka_unit_test(test_request_lapses),
      cmocka_unit_test(test_expired_mandate),
      cmocka_unit_test(test_period_bounds),
      cmocka_unit_test(test_keyset_pagination),
      /* Last: every row the tests above wrote must be chained. */
      cmocka_unit_test(test_audit_chain),
  };
  return cmocka_run_group_tests_name("mandates", tests, group_setup, group_teardown);
}
