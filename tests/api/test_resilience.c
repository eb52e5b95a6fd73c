/* The server under trouble: its database connections killed (DESIGN.md:
 * "a request that hits a dead connection gets 503, never a crash", then it
 * reconnects), and races between clients (one mandate per parties and
 * period, one winner per If-Match).  Worker threads only send requests and
 * record what came back; all assertions run on the main thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include <pthread.h>

#include "client.h"
#include "dbcheck.h"
#include "tokens.h"

#define THREADS 8
#define RECOVERED_RUN 8   /* this many 2xx in a row: recovered */
#define RECOVERY_LIMIT 32 /* …within this many requests */

struct who {
  char party[14];
  char *token;
};

static struct who person(void) {
  struct who w;
  random_bsn(w.party);
  w.token = token_person(w.party, "substantieel");
  return w;
}

static char from_date[11], until_date[11];

static char *grant_body(const char *side, const char *other) {
  return xasprintf("{\"%s\":\"%s\",\"service\":\"gemeente-afval\",\"valid_from\":\"%s\","
                   "\"valid_until\":\"%s\"}",
                   side, other, from_date, until_date);
}

static long long kill_server_connections(void) {
  return db_int("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                NULL);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Every answer after the database went away is a success or a 503
 * problem, never a dropped connection or another error. */
static bool ok_or_unavailable(struct api_response *r, long success) {
  if (r->status == 503) {
    api_expect_problem(r, 503, "service-unavailable", NULL);
    return false;
  }
  if (r->status != success)
    fail_msg("expected %ld or 503: %s", success, api_describe(r));
  return true;
}

/* One request of a mixed sequence: the catalogue, a list, one mandate, a
 * new mandate.  Returns whether it succeeded (a 503 returns false). */
static bool mixed_request(int i, const struct who *p, const char *id, int *created) {
  struct api_response *r;
  bool ok;
  char *path;
  switch (i % 4) {
  case 0:
    r = api_call("GET", "/v1/services", NULL, NULL);
    ok = ok_or_unavailable(r, 200);
    break;
  case 1:
    r = api_call("GET", "/v1/mandates?limit=5", p->token, NULL);
    ok = ok_or_unavailable(r, 200);
    break;
  case 2:
    path = xasprintf("/v1/mandates/%s", id);
    r = api_call("GET", path, p->token, NULL);
    free(path);
    ok = ok_or_unavailable(r, 200);
    break;
  default: {
    char rep[14];
    random_bsn(rep);
    char *body = grant_body("representative", rep);
    r = api_call("POST", "/v1/mandates", p->token, body);
    free(body);
    ok = ok_or_unavailable(r, 201);
    *created += ok;
    break;
  }
  }
  api_response_free(r);
  return ok;
}

/* Sends mixed requests until RECOVERED_RUN succeed in a row; fails when
 * that takes more than RECOVERY_LIMIT requests. */
static void expect_recovery(const struct who *p, const char *id, int *created, int *unavailable) {
  int run = 0;
  for (int i = 0; i < RECOVERY_LIMIT; i++) {
    if (mixed_request(i, p, id, created)) {
      if (++run == RECOVERED_RUN)
        return;
    } else {
      run = 0;
      ++*unavailable;
    }
  }
  fail_msg("the server did not recover: no %d successes in a row within %d requests", RECOVERED_RUN,
           RECOVERY_LIMIT);
}

/* A 503 on a create must not have created anything: the mandates of p
 * are exactly the ones answered 201 (plus the one made before). */
static void expect_mandates_of(const struct who *p, int want) {
  long long got = db_int("SELECT count(*) FROM mandates WHERE principal = $1", p->party, NULL);
  if (got != want)
    fail_msg("%s has %lld mandates, but %d creates were answered 201", p->party, got, want);
}

static void test_database_connections_killed(void **state) {
  (void)state;
  struct who p = person();
  char rep[14];
  random_bsn(rep);
  char *body = grant_body("representative", rep);
  struct api_response *r = api_call("POST", "/v1/mandates", p.token, body);
  free(body);
  api_expect_status(r, 201);
  char id[37];
  memcpy(id, api_str(r, "id"), 37);
  api_response_free(r);
  int created = 1, unavailable = 0;

  /* Warm every server thread's connection up, then kill them all. */
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 12; i++)
      mixed_request(i, &p, id, &created);
    long long killed = kill_server_connections();
    if (killed == 0)
      fail_msg("the server holds no database connection to terminate");
    expect_recovery(&p, id, &created, &unavailable);
  }
  expect_mandates_of(&p, created);
  printf("connections killed 3 times: %d answers were 503, then the server recovered\n",
         unavailable);
  free(p.token);
}

/* ---- Under load ------------------------------------------------------------ */

struct load {
  const struct who *p;
  int requests;
  long statuses[64];
  char errors[64][96];
};

static void *load_worker(void *arg) {
  struct load *l = arg;
  for (int i = 0; i < l->requests; i++) {
    struct api_response *r = api_call("GET", "/v1/mandates?limit=3", l->p->token, NULL);
    l->statuses[i] = r->status;
    snprintf(l->errors[i], sizeof l->errors[i], "%.95s",
             r->status == 0 ? r->error : (r->raw ? r->raw : ""));
    api_response_free(r);
  }
  return NULL;
}

static void test_connections_killed_under_load(void **state) {
  (void)state;
  struct who p = person();
  struct load loads[4];
  pthread_t threads[4];
  for (int t = 0; t < 4; t++) {
    loads[t] = (struct load){.p = &p, .requests = 40};
    pthread_create(&threads[t], NULL, load_worker, &loads[t]);
  }
  for (int k = 0; k < 4; k++) {
    sleep_ms(40);
    kill_server_connections();
  }
  for (int t = 0; t < 4; t++)
    pthread_join(threads[t], NULL);
  for (int t = 0; t < 4; t++)
    for (int i = 0; i < loads[t].requests; i++)
      if (loads[t].statuses[i] != 200 && loads[t].statuses[i] != 503)
        fail_msg("under load, request %d of thread %d: status %ld (%s)", i, t, loads[t].statuses[i],
                 loads[t].errors[i]);
  int run = 0;
  for (int i = 0; i < RECOVERY_LIMIT && run < RECOVERED_RUN; i++) {
    struct api_response *r = api_call("GET", "/v1/mandates?limit=3", p.token, NULL);
    run = ok_or_unavailable(r, 200) ? run + 1 : 0;
    api_response_free(r);
  }
  if (run < RECOVERED_RUN)
    fail_msg("the server did not recover after the load");
  free(p.token);
}

/* ---- Races ------------------------------------------------------------------- */

struct racer {
  pthread_barrier_t *start;
  const char *method;
  char *path;
  char *token;
  char *body;
  const char *if_match;
  long status;
  char code[48];
  char error[96];
};

static void *race(void *arg) {
  struct racer *x = arg;
  pthread_barrier_wait(x->start);
  struct api_response *r;
  if (x->if_match != NULL) {
    char *auth = xasprintf("Authorization: Bearer %s", x->token);
    char *match = xasprintf("If-Match: %s", x->if_match);
    const char *headers[] = {auth, match, NULL};
    r = api_request(x->method, x->path, headers, NULL, 0);
    free(auth);
    free(match);
  } else {
    r = api_call(x->method, x->path, x->token, x->body);
  }
  x->status = r->status;
  const char *code = api_str(r, "code");
  snprintf(x->code, sizeof x->code, "%s", code ? code : "");
  snprintf(x->error, sizeof x->error, "%.95s", r->error);
  api_response_free(r);
  return NULL;
}

static void run_race(struct racer *x, int n) {
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)n);
  pthread_t threads[THREADS];
  for (int i = 0; i < n; i++) {
    x[i].start = &start;
    pthread_create(&threads[i], NULL, race, &x[i]);
  }
  for (int i = 0; i < n; i++)
    pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&start);
}

/* Exactly one racer got winner; every other one loser with loser_code. */
static void expect_one_winner(const struct racer *x, int n, long winner, long loser,
                              const char *loser_code) {
  int wins = 0;
  for (int i = 0; i < n; i++) {
    if (x[i].status == winner)
      wins++;
    else if (x[i].status != loser || strcmp(x[i].code, loser_code) != 0)
      fail_msg("racer %d: %ld %s %s; want %ld or %ld %s", i, x[i].status, x[i].code, x[i].error,
               winner, loser, loser_code);
  }
  if (wins != 1)
    fail_msg("%d racers got %ld; exactly one may", wins, winner);
}

static void test_concurrent_creates(void **state) {
  (void)state;
  struct who p = person(), rep = person();
  struct racer x[THREADS];
  memset(x, 0, sizeof x);
  /* Half grant as the principal, half request as the representative:
   * the same parties, service and period. */
  for (int i = 0; i < THREADS; i++) {
    bool grant = i % 2 == 0;
    x[i].method = "POST";
    x[i].path = strdup("/v1/mandates");
    x[i].token = grant ? p.token : rep.token;
    x[i].body = grant_body(grant ? "representative" : "principal", grant ? rep.party : p.party);
  }
  long long seq = audit_head_seq();
  run_race(x, THREADS);
  expect_one_winner(x, THREADS, 201, 409, "mandate-overlap");
  assert_int_equal(
      db_int("SELECT count(*) FROM mandates WHERE principal = $1 AND representative = $2", p.party,
             rep.party, NULL),
      1);
  char after[32];
  snprintf(after, sizeof after, "%lld", seq);
  assert_int_equal(db_int("SELECT count(*) FROM audit_events WHERE seq > $1 AND principal = $2",
                          after, p.party, NULL),
                   1);
  for (int i = 0; i < THREADS; i++) {
    free(x[i].path);
    free(x[i].body);
  }
  free(p.token);
  free(rep.token);
}

static void test_concurrent_accepts(void **state) {
  (void)state;
  struct who p = person(), rep = person();
  char *body = grant_body("representative", rep.party);
  struct api_response *r = api_call("POST", "/v1/mandates", p.token, body);
  free(body);
  api_expect_status(r, 201);
  char *path = xasprintf("/v1/mandates/%s/accept", api_str(r, "id"));
  char id[37];
  memcpy(id, api_str(r, "id"), 37);
  api_response_free(r);

  struct racer x[THREADS];
  memset(x, 0, sizeof x);
  for (int i = 0; i < THREADS; i++) {
    x[i].method = "POST";
    x[i].path = path;
    x[i].token = rep.token;
    x[i].if_match = "\"1\"";
  }
  long long seq = audit_head_seq();
  run_race(x, THREADS);
  /* One accept wins; the others' If-Match is stale by then. */
  expect_one_winner(x, THREADS, 200, 412, "precondition-failed");
  assert_int_equal(db_int("SELECT version FROM mandates WHERE id = $1", id, NULL), 2);
  audit_expect_one(seq, "mandate_accepted", id, rep.party);
  free(path);
  free(p.token);
  free(rep.token);
}

/* ---- The live-mandate rule in the database (schema/0005) ------------- */

static void exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
}

/* Fails unless r failed with this SQLSTATE and constraint. */
static void expect_violation(PGresult *r, const char *state, const char *constraint) {
  const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char *name = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
  if (got == NULL || strcmp(got, state) != 0 || name == NULL || strcmp(name, constraint) != 0)
    fail_msg("expected %s (%s), got %s (%s): %s", state, constraint, got ? got : "success",
             name ? name : "-", PQresultErrorMessage(r));
  PQclear(r);
}

#define LIVE_INSERT                                                                                \
  "INSERT INTO mandates (principal, representative, service, kind, status, valid_from,"            \
  " valid_until, initiated_by, origin) "

/* The party formats hold in the database for every writer
 * (schema/0006 compares bytes): "bsn:" and 9 digits for a principal,
 * that or "kvk:" and 8 digits for a representative; court lengths count
 * characters.  Checked on a table with the mandates' constraints. */
static void test_party_checks_in_the_database(void **state) {
  (void)state;
  PQclear(db_query("CREATE TEMP TABLE IF NOT EXISTS party_check"
                   " (LIKE mandates INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
                   NULL));
  PQclear(db_query(
      "CREATE OR REPLACE FUNCTION pg_temp.party_ok(p text, r text, court text) RETURNS text"
      " LANGUAGE plpgsql AS $$ BEGIN"
      " INSERT INTO party_check (principal, representative, service, status, valid_from,"
      " valid_until, initiated_by, origin, court) VALUES (p, r, 'x', 'active', now(),"
      " now() + interval '1 day', 'admin', 'api', court);"
      " RETURN 'y'; EXCEPTION WHEN check_violation THEN RETURN 'n'; END $$",
      NULL));
  char *got = db_text(
      "SELECT string_agg(pg_temp.party_ok(p, r, c), '' ORDER BY i) FROM (VALUES"
      " (1, 'bsn:123456789', 'kvk:12345678', NULL), (2, 'bsn:123456789', 'bsn:223456789', NULL),"
      " (3, 'bsn:12345678', 'kvk:12345678', NULL), (4, 'bsn:1234567890', 'kvk:12345678', NULL),"
      " (5, 'bsn:1234a6789', 'kvk:12345678', NULL), (6, 'BSN:123456789', 'kvk:12345678', NULL),"
      " (7, 'kvk:123456789', 'kvk:12345678', NULL), (8, 'bsn:123456789', 'kvk:1234567', NULL),"
      " (9, 'bsn:123456789', 'kvk:123456789', NULL), (10, 'bsn:123456789', 'bsn:12345678x', NULL),"
      " (11, 'bsn:12345678\u00e9', 'kvk:12345678', NULL),"
      " (12, 'bsn:123456789', 'xyz:12345678', NULL), (13, 'bsn::23456789', 'kvk:12345678', NULL),"
      " (14, 'bsn:123456789', 'kvk:12345678', repeat('\u00e9', 200)),"
      " (15, 'bsn:123456789', 'kvk:12345678', repeat('e', 201))) v(i, p, r, c)",
      NULL);
  if (strcmp(got, "yynnnnnnnnnnnyn") != 0)
    fail_msg("party and court checks: expected yynnnnnnnnnnnyn, got %s", got);
  free(got);
}

/* Two transactions writing overlapping live mandates for the same parties:
 * the second waits for the first and then fails as the exclusion
 * constraint did (23P01, one_live_mandate); a statement of a hundred rows
 * with one overlap fails as a whole (each inserted row is checked,
 * schema/0009); adjacent periods are fine; the services named must exist
 * and cannot be deleted. */
static void test_live_rule_in_the_database(void **state) {
  (void)state;
  char p[14], rep[14];
  random_bsn(p);
  random_bsn(rep);
  char *values = xasprintf("VALUES ('%s', '%s', 'gemeente-afval', 'voluntary', 'active',"
                           " now() + interval '1 day', now() + interval '30 days', 'admin', 'api')",
                           p, rep);
  char *insert = xasprintf(LIVE_INSERT "%s", values);
  PGconn *a = db_conn_other(), *b = db_conn_other();
  exec_ok(a, "BEGIN");
  exec_ok(a, insert);
  /* b cannot see a's row yet: without the locks it would succeed. */
  if (!PQsendQuery(b, insert))
    fail_msg("send: %s", PQerrorMessage(b));
  exec_ok(a, "COMMIT");
  expect_violation(PQgetResult(b), "23P01", "one_live_mandate");
  PGresult *rest;
  while ((rest = PQgetResult(b)) != NULL)
    PQclear(rest);
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE principal = $1", p, NULL), 1);

  /* Adjacent: starts when the other ends. */
  char *adjacent =
      xasprintf(LIVE_INSERT "SELECT principal, representative, service, kind, status, valid_until,"
                            " valid_until + interval '10 days', initiated_by, origin FROM mandates"
                            " WHERE principal = '%s'",
                p);
  exec_ok(a, adjacent);

  /* A bulk statement: 99 new principals and one row overlapping p's. */
  char *bulk = xasprintf(
      LIVE_INSERT "SELECT 'bsn:' || lpad((100000000 + i * 11)::text, 9, '0'), '%s',"
                  " 'gemeente-afval', 'voluntary'::mandate_kind, 'active'::mandate_status, now(),"
                  " now() + interval '5 days',"
                  " 'admin', 'api' FROM generate_series(1, 99) i"
                  " UNION ALL SELECT '%s', '%s', 'gemeente-afval', 'voluntary', 'active',"
                  " now() + interval '2 days', now() + interval '3 days', 'admin', 'api'",
      rep, p, rep);
  expect_violation(PQexec(a, bulk), "23P01", "one_live_mandate");
  assert_int_equal(db_int("SELECT count(*) FROM mandates WHERE representative = $1", rep, NULL), 2);

  char *unknown =
      xasprintf(LIVE_INSERT "VALUES ('%s', '%s', 'no-such-service', 'voluntary', 'active', now(),"
                            " now() + interval '1 day', 'admin', 'api')",
                p, rep);
  expect_violation(PQexec(a, unknown), "23503", "mandates_service_fkey");
  expect_violation(PQexec(a, "DELETE FROM services WHERE code = 'gemeente-afval'"), "23503",
                   "mandates_service_fkey");
  assert_int_equal(db_int("SELECT count(*) FROM services WHERE code = 'gemeente-afval'", NULL), 1);
  PQfinish(a);
  PQfinish(b);
  free(values);
  free(insert);
  free(adjacent);
  free(bulk);
  free(unknown);
}

/* An imported mandate's key, (source, external_ref), is unique in the
 * database for every writer (schema/0010 indexes it as one value,
 * source || '|' || external_ref): a second mandate with the same key
 * fails (23505), and a source with a '|' in it, which could make two
 * different keys one value, is refused (23514). */
static void test_import_key_in_the_database(void **state) {
  (void)state;
  char p[14], rep[14], src[40];
  random_bsn(p);
  random_bsn(rep);
  snprintf(src, sizeof src, "rt-%s", p + 4);
  PGconn *a = db_conn_other();
  exec_ok(a, "BEGIN");
#define KEYED(source, ref)                                                                         \
  xasprintf("INSERT INTO mandates (principal, representative, service, kind, status,"              \
            " valid_from, valid_until, initiated_by, origin, source, external_ref)"                \
            " VALUES ('%s', '%s', 'gemeente-afval',"                                               \
            " 'voluntary', 'revoked', now(), now() + interval '1 day', 'admin',"                   \
            " 'import', '%s', '%s')",                                                              \
            p, rep, source, ref)
  char *first = KEYED(src, "b|c"), *again = KEYED(src, "b|c"), *other_ref = KEYED(src, "b");
  exec_ok(a, first);
  exec_ok(a, "SAVEPOINT s");
  expect_violation(PQexec(a, again), "23505", "mandates_import_key");
  exec_ok(a, "ROLLBACK TO SAVEPOINT s");
  exec_ok(a, other_ref);
  /* (src, "b|c") and (src|b, "c") would both be "src|b|c". */
  char *bar_source = xasprintf("%s|b", src);
  char *barred = KEYED(bar_source, "c");
  expect_violation(PQexec(a, barred), "23514", "source_without_bar");
#undef KEYED
  exec_ok(a, "ROLLBACK");
  PQfinish(a);
  free(first);
  free(again);
  free(other_ref);
  free(bar_source);
  free(barred);
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
      cmocka_unit_test(test_concurrent_creates),
      cmocka_unit_test(test_concurrent_accepts),
      cmocka_unit_test(test_live_rule_in_the_database),
      cmocka_unit_test(test_party_checks_in_the_database),
      cmocka_unit_test(test_import_key_in_the_database),
      cmocka_unit_test(test_database_connections_killed),
      cmocka_unit_test(test_connections_killed_under_load),
  };
  return cmocka_run_group_tests_name("resilience", tests, group_setup, group_teardown);
}
