/* Unit tests for the pure domain rules (service/domain). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <string.h>

#include "domain/domain.h"

#define SEC(s) ((usec_t)(s)*USEC_PER_SEC)
#define HOUR SEC(3600)

/* Parses text that must be valid; the bound only matters for dates. */
static usec_t parse_ok(const char *text, enum period_bound bound) {
  usec_t t = -42;
  if (!time_parse(text, bound, &t)) {
    fail_msg("time_parse rejected \"%s\"", text);
  }
  return t;
}

static usec_t at(const char *text) { return parse_ok(text, BOUND_START); }

static void assert_rejected(const char *text) {
  usec_t t = 12345;
  if (time_parse(text, BOUND_START, &t) || time_parse(text, BOUND_END, &t)) {
    fail_msg("time_parse accepted \"%s\"", text);
  }
  assert_int_equal(t, 12345); /* out untouched */
}

/* ---- BSN and parties -------------------------------------------- */

static void test_bsn_valid(void **state) {
  (void)state;
  assert_true(bsn_valid("123456782", 9));
  assert_true(bsn_valid("111222333", 9));
  assert_true(bsn_valid("100000009", 9));  /* sum exactly 0 */
  assert_true(bsn_valid("1234567829", 9)); /* only len characters are read */
  assert_false(bsn_valid("123456789", 9)); /* checksum */
  assert_false(bsn_valid("123456783", 9));
  assert_false(bsn_valid("000000000", 9)); /* passes the sum, never issued */
  assert_false(bsn_valid("12345678", 8));
  assert_false(bsn_valid("1234567820", 10));
  assert_false(bsn_valid("12345678a", 9));
  assert_false(bsn_valid("1234 6782", 9));
  assert_false(bsn_valid("-23456782", 9));
  assert_false(bsn_valid(NULL, 9));
}

static void assert_party(const char *text, enum party_error want) {
  struct party p = {.kind = PARTY_ORGANISATION, .id = "sentinel"};
  enum party_error got = party_parse(text, &p);
  if (got != want) {
    fail_msg("party_parse(\"%s\") = %d, want %d", text ? text : "NULL", got, want);
  }
  if (want != PARTY_OK) {
    assert_string_equal(p.id, "sentinel");
  } else {
    assert_string_equal(p.id, text);
  }
}

static void test_party_parse(void **state) {
  (void)state;
  struct party p;
  assert_int_equal(party_parse("bsn:123456782", &p), PARTY_OK);
  assert_int_equal(p.kind, PARTY_PERSON);
  assert_string_equal(p.id, "bsn:123456782");
  assert_int_equal(party_parse("kvk:12345678", &p), PARTY_OK);
  assert_int_equal(p.kind, PARTY_ORGANISATION);
  assert_string_equal(p.id, "kvk:12345678");
  assert_party("bsn:111222333", PARTY_OK);
  assert_party("kvk:00000001", PARTY_OK);

  assert_party("bsn:123456789", PARTY_BAD_BSN);
  assert_party("bsn:000000000", PARTY_BAD_BSN);
  assert_party("kvk:00000000", PARTY_BAD_KVK);

  const char *bad[] = {
      "",
      "bsn:",
      "kvk:",
      "BSN:123456782",
      "Bsn:123456782",
      "KVK:12345678",
      "bsn123456782",
      "bsn;123456782",
      "nin:123456782",
      "abc:12345678",
      "bsn: 123456782",
      " bsn:123456782",
      "bsn:123456782 ",
      "bsn :123456782",
      "bsn:12345678",
      "bsn:1234567820",
      "bsn:12345678a",
      "bsn:+23456782",
      "kvk:1234567",
      "kvk:123456789",
      "kvk:1234567a",
      "kvk:123456782",
      "bsn:12345678\n",
      "bsn:123456782bsn:123456782bsn:123456782",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_party(bad[i], PARTY_BAD_FORMAT);
  }
  assert_party(NULL, PARTY_BAD_FORMAT);
  assert_int_equal(party_parse("bsn:123456782", NULL), PARTY_BAD_FORMAT);
}

/* ---- Level of assurance ------------------------------------------ */

static void test_loa(void **state) {
  (void)state;
  assert_int_equal(loa_parse("basis"), LOA_BASIS);
  assert_int_equal(loa_parse("midden"), LOA_MIDDEN);
  assert_int_equal(loa_parse("substantieel"), LOA_SUBSTANTIEEL);
  assert_int_equal(loa_parse("hoog"), LOA_HOOG);
  assert_true(LOA_NONE < LOA_BASIS && LOA_BASIS < LOA_MIDDEN && LOA_MIDDEN < LOA_SUBSTANTIEEL &&
              LOA_SUBSTANTIEEL < LOA_HOOG);
  const char *bad[] = {"", "Basis", "HOOG", "hoog ", " hoog", "laag", "none", "substantial"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(loa_parse(bad[i]), LOA_NONE);
  }
  assert_int_equal(loa_parse(NULL), LOA_NONE);
  for (enum loa l = LOA_BASIS; l <= LOA_HOOG; l++) {
    assert_int_equal(loa_parse(loa_name(l)), l);
  }
  assert_string_equal(loa_name(LOA_SUBSTANTIEEL), "substantieel");
  assert_null(loa_name(LOA_NONE));
  assert_null(loa_name((enum loa)(LOA_HOOG + 1)));
  assert_null(loa_name((enum loa) - 1));
}

/* ---- Time --------------------------------------------------------- */

static void test_time_parse_datetime(void **state) {
  (void)state;
  assert_int_equal(at("2026-01-31T10:00:00Z"), SEC(1769853600));
  assert_int_equal(at("2026-01-31T10:00:00+00:00"), SEC(1769853600));
  assert_int_equal(at("2026-01-31T10:00:00-00:00"), SEC(1769853600));
  assert_int_equal(at("2026-01-31T11:00:00+01:00"), SEC(1769853600));
  assert_int_equal(at("2026-01-31T04:30:00-05:30"), SEC(1769853600));
  assert_int_equal(at("2026-02-01T09:59:00+23:59"), SEC(1769853600));
  assert_int_equal(at("2026-01-31T10:00:00.5+01:00"), SEC(1769853600) - HOUR + 500000);
  assert_int_equal(at("2026-01-31T10:00:00.000001Z"), SEC(1769853600) + 1);
  assert_int_equal(at("2026-01-31T10:00:00.123456Z"), SEC(1769853600) + 123456);
  assert_int_equal(at("2026-01-31T10:00:00.1234567Z"), SEC(1769853600) + 123456);
  assert_int_equal(at("2026-01-31T10:00:00.999999999Z"), SEC(1769853600) + 999999);
  assert_int_equal(at("2026-01-31T10:00:00.0000009Z"), SEC(1769853600));
  /* RFC 3339 5.6 allows lower case 't' and 'z'. */
  assert_int_equal(at("2026-01-31t10:00:00z"), SEC(1769853600));
  /* The bound only applies to full dates. */
  assert_int_equal(parse_ok("2026-01-31T10:00:00Z", BOUND_END), SEC(1769853600));
  /* Leap day and the range ends. */
  assert_int_equal(at("2024-02-29T00:00:00Z"), SEC(1709164800));
  assert_int_equal(at("1970-01-01T00:00:00Z"), 0);
  assert_int_equal(at("1970-01-01T01:00:00+01:00"), 0);
  assert_int_equal(at("9999-12-31T23:59:59.999999Z"), SEC(INT64_C(253402300800)) - 1);
  /* The start of 1970-01-01 in Amsterdam is before the epoch; its end is not. */
  usec_t t = 7;
  assert_false(time_parse("1970-01-01", BOUND_START, &t));
  assert_int_equal(t, 7);
}

static void test_time_parse_rejects(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "2026",
      "2026-01",
      "2026-1-01",
      "2026-01-1",
      "26-01-01",
      "20260101",
      "2026/01/01",
      "2026-02-30",
      "2025-02-29",
      "1900-02-29",
      "2026-04-31",
      "2026-13-01",
      "2026-00-10",
      "2026-01-00",
      "2026-01-32",
      "1969-12-31",
      "0000-01-01",
      "10000-01-01",
      "+2026-01-01",
      "-2026-01-01",
      " 2026-01-01",
      "2026-01-01 ",
      "2026-01-01x",
      "2026-01-01\n",
      "2026-01-01T",
      "2026-01-01T10:00Z",
      "2026-01-01T10:00:00",
      "2026-01-01 10:00:00Z",
      "2026-01-01_10:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T23:60:00Z",
      "2026-01-01T23:59:60Z",
      "2026-01-01T1:00:00Z",
      "2026-01-01T10:0:00Z",
      "2026-01-01T10:00:0Z",
      "2026-01-01T10-00-00Z",
      "2026-01-01T10:00:00ZZ",
      "2026-01-01T10:00:00Z ",
      "2026-01-01T10:00:00Zx",
      "2026-01-01T10:00:00.Z",
      "2026-01-01T10:00:00.",
      "2026-01-01T10:00:00.1234567890Z",
      "2026-01-01T10:00:00,5Z",
      "2026-01-01T10:00:00.5",
      "2026-01-01T10:00:00+01",
      "2026-01-01T10:00:00+0100",
      "2026-01-01T10:00:00+1:00",
      "2026-01-01T10:00:00+01:0",
      "2026-01-01T10:00:00+24:00",
      "2026-01-01T10:00:00+01:60",
      "2026-01-01T10:00:00 +01:00",
      "2026-01-01T10:00:00+01:00 ",
      "2026-01-01T10:00:00UTC",
      "2026-01-01T10:00:00X",
      /* Written years fit, but the instant falls outside 1970..9999 UTC. */
      "1970-01-01T00:00:00+00:01",
      "1970-01-01T00:59:59.999999+01:00",
      "9999-12-31T23:59:59-00:01",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_rejected(bad[i]);
  }
  usec_t t;
  assert_false(time_parse(NULL, BOUND_START, &t));
  assert_false(time_parse("2026-01-01T00:00:00Z", BOUND_START, NULL));
}

static void test_time_parse_dates(void **state) {
  (void)state;
  /* Winter (CET, UTC+1) and summer (CEST, UTC+2). */
  assert_int_equal(parse_ok("2026-01-15", BOUND_START), at("2026-01-14T23:00:00Z"));
  assert_int_equal(parse_ok("2026-01-15", BOUND_END), at("2026-01-15T22:59:59.999999Z"));
  assert_int_equal(parse_ok("2026-07-15", BOUND_START), at("2026-07-14T22:00:00Z"));
  assert_int_equal(parse_ok("2026-07-15", BOUND_END), at("2026-07-15T21:59:59.999999Z"));
  assert_int_equal(parse_ok("2026-07-15", BOUND_START), SEC(1784066400));
  assert_int_equal(parse_ok("2026-01-15", BOUND_START), SEC(1768431600));
  /* Spring forward: a 23-hour day. */
  assert_int_equal(parse_ok("2026-03-29", BOUND_START), at("2026-03-28T23:00:00Z"));
  assert_int_equal(parse_ok("2026-03-29", BOUND_END), at("2026-03-29T21:59:59.999999Z"));
  assert_int_equal(parse_ok("2026-03-30", BOUND_START), at("2026-03-29T22:00:00Z"));
  assert_int_equal(parse_ok("2026-03-28", BOUND_END), at("2026-03-28T22:59:59.999999Z"));
  /* Fall back: a 25-hour day. */
  assert_int_equal(parse_ok("2026-10-25", BOUND_START), at("2026-10-24T22:00:00Z"));
  assert_int_equal(parse_ok("2026-10-25", BOUND_END), at("2026-10-25T22:59:59.999999Z"));
  assert_int_equal(parse_ok("2026-10-24", BOUND_END), at("2026-10-24T21:59:59.999999Z"));
  /* Leap day, year ends and the range ends. */
  assert_int_equal(parse_ok("2024-02-29", BOUND_END), at("2024-02-29T22:59:59.999999Z"));
  assert_int_equal(parse_ok("2000-02-29", BOUND_START), at("2000-02-28T23:00:00Z"));
  assert_int_equal(parse_ok("2026-12-31", BOUND_END), at("2026-12-31T22:59:59.999999Z"));
  assert_int_equal(parse_ok("1970-01-02", BOUND_START), at("1970-01-01T23:00:00Z"));
  assert_int_equal(parse_ok("1970-01-01", BOUND_END), at("1970-01-01T22:59:59.999999Z"));
  assert_int_equal(parse_ok("9999-12-31", BOUND_END), at("9999-12-31T22:59:59.999999Z"));
}

static void assert_format(usec_t t, const char *want) {
  char buf[32];
  time_format(t, buf, sizeof buf);
  assert_string_equal(buf, want);
}

static void test_time_format(void **state) {
  (void)state;
  assert_format(0, "1970-01-01T00:00:00Z");
  assert_format(1, "1970-01-01T00:00:00.000001Z");
  assert_format(-1, "1969-12-31T23:59:59.999999Z");
  assert_format(SEC(1769853600), "2026-01-31T10:00:00Z");
  assert_format(SEC(1769853600) + 500000, "2026-01-31T10:00:00.500000Z");
  assert_format(SEC(INT64_C(253402300800)) - 1, "9999-12-31T23:59:59.999999Z");

  const char *texts[] = {
      "2026-01-31T10:00:00Z", "2024-02-29T23:59:59.999999Z", "2000-03-01T00:00:00.000001Z",
      "1970-01-01T00:00:00Z", "2026-03-29T01:00:00Z",        "2100-02-28T12:34:56.789Z",
  };
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    char buf[32];
    usec_t t = at(texts[i]);
    time_format(t, buf, sizeof buf);
    assert_int_equal(at(buf), t);
  }
  /* Too short a buffer truncates but stays a string; len 0 writes nothing. */
  char small[8] = "xxxxxxx";
  time_format(0, small, 5);
  assert_string_equal(small, "1970");
  time_format(0, small, 0);
  assert_string_equal(small, "1970");
  char edge[21];
  time_format(1, edge, sizeof edge); /* room for the seconds, not the fraction */
  assert_string_equal(edge, "1970-01-01T00:00:00.");
  time_format(0, NULL, 32);
}

static void test_amsterdam_offset(void **state) {
  (void)state;
  assert_int_equal(amsterdam_offset(at("2026-01-15T12:00:00Z")), 3600);
  assert_int_equal(amsterdam_offset(at("2026-07-15T12:00:00Z")), 7200);
  /* 2026: last Sundays are 29 March and 25 October. */
  usec_t spring = SEC(1774746000), fall = SEC(1792890000);
  assert_int_equal(spring, at("2026-03-29T01:00:00Z"));
  assert_int_equal(amsterdam_offset(spring - 1), 3600);
  assert_int_equal(amsterdam_offset(spring), 7200);
  assert_int_equal(amsterdam_offset(fall - 1), 7200);
  assert_int_equal(amsterdam_offset(fall), 3600);
  /* Not the Sunday before. */
  assert_int_equal(amsterdam_offset(at("2026-03-22T01:00:00Z")), 3600);
  assert_int_equal(amsterdam_offset(at("2026-10-18T01:00:00Z")), 7200);
  /* Months whose last day is the Sunday. */
  usec_t spring24 = SEC(1711846800), fall21 = SEC(1635642000);
  assert_int_equal(amsterdam_offset(spring24 - 1), 3600);
  assert_int_equal(amsterdam_offset(spring24), 7200);
  assert_int_equal(amsterdam_offset(fall21 - 1), 7200);
  assert_int_equal(amsterdam_offset(fall21), 3600);
  /* Years that share a place in the thread's cache (16 apart), in turns:
   * 2042's switches are on 30 March and 26 October, 2026's a week
   * earlier; each year keeps its own. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(amsterdam_offset(at("2042-03-29T12:00:00Z")), 3600);
    assert_int_equal(amsterdam_offset(spring), 7200);
    assert_int_equal(amsterdam_offset(at("2042-10-25T12:00:00Z")), 7200);
    assert_int_equal(amsterdam_offset(fall), 3600);
  }
  /* Before the epoch and at the ends of the type: defined, no overflow. */
  assert_int_equal(amsterdam_offset(-1), 3600);
  int lo = amsterdam_offset(INT64_MIN), hi = amsterdam_offset(INT64_MAX);
  assert_true(lo == 3600 || lo == 7200);
  assert_true(hi == 3600 || hi == 7200);
}

/* ---- Periods ------------------------------------------------------ */

static void test_period_check(void **state) {
  (void)state;
  usec_t now = at("2025-12-01T00:00:00Z");
  usec_t from = parse_ok("2026-01-01", BOUND_START);
  usec_t jan31 = parse_ok("2026-01-31", BOUND_END);
  assert_int_equal(period_check(from, jan31, 30, now), PERIOD_OK);
  assert_int_equal(period_check(from, jan31 + 1, 30, now), PERIOD_TOO_LONG);
  assert_int_equal(period_check(from, jan31, 29, now), PERIOD_TOO_LONG);
  /* The inclusive maximum of the header: from + max days + 1 day - 1 us. */
  usec_t max = from + 30 * USEC_PER_DAY + USEC_PER_DAY - 1;
  assert_int_equal(max, jan31);
  usec_t t10 = at("2026-01-10T10:00:00Z");
  assert_int_equal(period_check(t10, t10 + 30 * USEC_PER_DAY + USEC_PER_DAY - 1, 30, now),
                   PERIOD_OK);
  assert_int_equal(period_check(t10, t10 + 31 * USEC_PER_DAY, 30, now), PERIOD_TOO_LONG);
  /* Zero days: until the end of the same day. */
  assert_int_equal(period_check(from, parse_ok("2026-01-01", BOUND_END), 0, now), PERIOD_OK);
  assert_int_equal(period_check(from, parse_ok("2026-01-02", BOUND_START), 0, now),
                   PERIOD_TOO_LONG);
  assert_int_equal(period_check(from, from + 1, -1, now), PERIOD_TOO_LONG);
  /* The service maximum: 2026-01-01 + 1827 days is 2031-01-02. */
  assert_int_equal(
      period_check(from, parse_ok("2031-01-02", BOUND_END), SERVICE_MAX_DURATION_DAYS, now),
      PERIOD_OK);
  assert_int_equal(
      period_check(from, parse_ok("2031-01-03", BOUND_START), SERVICE_MAX_DURATION_DAYS, now),
      PERIOD_TOO_LONG);

  /* Across DST switches, counted in calendar days. */
  usec_t oct1 = parse_ok("2026-10-01", BOUND_START);
  assert_int_equal(period_check(oct1, parse_ok("2026-10-31", BOUND_END), 30, now), PERIOD_OK);
  assert_int_equal(period_check(oct1, parse_ok("2026-11-01", BOUND_START), 30, now),
                   PERIOD_TOO_LONG);
  usec_t mar1 = parse_ok("2026-03-01", BOUND_START);
  usec_t mar31 = parse_ok("2026-03-31", BOUND_END);
  assert_int_equal(period_check(mar1, mar31, 30, now), PERIOD_OK);
  assert_int_equal(period_check(mar1, mar31 + 1, 30, now), PERIOD_TOO_LONG);

  /* Inverted and equal. */
  assert_int_equal(period_check(from, from, 30, now), PERIOD_INVERTED);
  assert_int_equal(period_check(from, from - 1, 30, now), PERIOD_INVERTED);
  assert_int_equal(period_check(jan31, from, 30, jan31 + 1), PERIOD_INVERTED);

  /* Already ended: until <= now; a future start is fine. */
  assert_int_equal(period_check(from, jan31, 30, jan31), PERIOD_ALREADY_ENDED);
  assert_int_equal(period_check(from, jan31, 30, jan31 + 1), PERIOD_ALREADY_ENDED);
  assert_int_equal(period_check(from, jan31, 30, jan31 - 1), PERIOD_OK);
  assert_int_equal(period_check(from, jan31 + 1, 30, jan31 + 1), PERIOD_TOO_LONG);

  /* Extremes do not overflow. */
  assert_int_equal(period_check(INT64_MIN, INT64_MAX, SERVICE_MAX_DURATION_DAYS, 0),
                   PERIOD_TOO_LONG);
  assert_int_equal(period_check(INT64_MIN, INT64_MAX, INT_MAX, 0), PERIOD_OK);
  assert_int_equal(period_check(0, SEC(86400) * 3000, INT_MAX, 0), PERIOD_OK);
  /* max days fits in usec, adding the last day does not. */
  assert_int_equal(period_check(INT64_MIN, INT64_MAX, 106751991, 0), PERIOD_OK);
  assert_int_equal(period_check(INT64_MIN, INT64_MAX, 106751990, 0), PERIOD_TOO_LONG);
}

/* ---- Mandates ----------------------------------------------------- */

static void test_mandate_names(void **state) {
  (void)state;
  const char *statuses[] = {"pending", "active", "declined", "revoked", "suspended"};
  for (int i = 0; i < 5; i++) {
    enum mandate_status s = MS_SUSPENDED;
    assert_string_equal(mandate_status_name((enum mandate_status)i), statuses[i]);
    assert_true(mandate_status_parse(statuses[i], &s));
    assert_int_equal(s, i);
  }
  const char *kinds[] = {"voluntary", "bewind", "curatele", "mentorschap"};
  for (int i = 0; i < 4; i++) {
    enum mandate_kind k = MK_MENTORSCHAP;
    assert_string_equal(mandate_kind_name((enum mandate_kind)i), kinds[i]);
    assert_true(mandate_kind_parse(kinds[i], &k));
    assert_int_equal(k, i);
  }
  const char *actions[] = {"accept", "decline", "revoke", "suspend", "resume"};
  for (int i = 0; i < 5; i++) {
    assert_string_equal(mandate_action_name((enum mandate_action)i), actions[i]);
  }
  enum mandate_status s = MS_ACTIVE;
  assert_false(mandate_status_parse("expired", &s));
  assert_false(mandate_status_parse("Active", &s));
  assert_false(mandate_status_parse("", &s));
  assert_false(mandate_status_parse(NULL, &s));
  assert_int_equal(s, MS_ACTIVE);
  enum mandate_kind k = MK_BEWIND;
  assert_false(mandate_kind_parse("voluntary ", &k));
  assert_false(mandate_kind_parse(NULL, &k));
  assert_int_equal(k, MK_BEWIND);
  assert_null(mandate_status_name((enum mandate_status)5));
  assert_null(mandate_status_name((enum mandate_status) - 1));
  assert_null(mandate_kind_name((enum mandate_kind)4));
  assert_null(mandate_action_name((enum mandate_action)5));

  assert_false(mandate_kind_is_legal(MK_VOLUNTARY));
  assert_true(mandate_kind_is_legal(MK_BEWIND));
  assert_true(mandate_kind_is_legal(MK_CURATELE));
  assert_true(mandate_kind_is_legal(MK_MENTORSCHAP));
  assert_false(mandate_kind_is_legal((enum mandate_kind)4));
}

/* Expected outcome for one (status, action), per actor: the initiating
 * side, the other side, an administrator, and nobody (ROLE_NONE). */
enum { BY_INITIATOR, BY_OTHER, BY_ADMIN, BY_NONE, ACTORS };
#define F TR_FORBIDDEN
#define C TR_CONFLICT
#define K TR_OK

static const struct {
  enum mandate_status from;
  enum mandate_action action;
  enum transition_result want[ACTORS];
  enum mandate_status to; /* when TR_OK */
} transitions[] = {
    {MS_PENDING, MA_ACCEPT, {F, K, F, F}, MS_ACTIVE},
    {MS_PENDING, MA_DECLINE, {F, K, F, F}, MS_DECLINED},
    {MS_PENDING, MA_REVOKE, {K, K, K, F}, MS_REVOKED},
    {MS_PENDING, MA_SUSPEND, {F, F, C, F}, 0},
    {MS_PENDING, MA_RESUME, {F, F, C, F}, 0},
    {MS_ACTIVE, MA_ACCEPT, {F, C, F, F}, 0},
    {MS_ACTIVE, MA_DECLINE, {F, C, F, F}, 0},
    {MS_ACTIVE, MA_REVOKE, {K, K, K, F}, MS_REVOKED},
    {MS_ACTIVE, MA_SUSPEND, {F, F, K, F}, MS_SUSPENDED},
    {MS_ACTIVE, MA_RESUME, {F, F, C, F}, 0},
    {MS_SUSPENDED, MA_ACCEPT, {F, C, F, F}, 0},
    {MS_SUSPENDED, MA_DECLINE, {F, C, F, F}, 0},
    {MS_SUSPENDED, MA_REVOKE, {K, K, K, F}, MS_REVOKED},
    {MS_SUSPENDED, MA_SUSPEND, {F, F, C, F}, 0},
    {MS_SUSPENDED, MA_RESUME, {F, F, K, F}, MS_ACTIVE},
    {MS_DECLINED, MA_ACCEPT, {F, C, F, F}, 0},
    {MS_DECLINED, MA_DECLINE, {F, C, F, F}, 0},
    {MS_DECLINED, MA_REVOKE, {C, C, C, F}, 0},
    {MS_DECLINED, MA_SUSPEND, {F, F, C, F}, 0},
    {MS_DECLINED, MA_RESUME, {F, F, C, F}, 0},
    {MS_REVOKED, MA_ACCEPT, {F, C, F, F}, 0},
    {MS_REVOKED, MA_DECLINE, {F, C, F, F}, 0},
    {MS_REVOKED, MA_REVOKE, {C, C, C, F}, 0},
    {MS_REVOKED, MA_SUSPEND, {F, F, C, F}, 0},
    {MS_REVOKED, MA_RESUME, {F, F, C, F}, 0},
};

#undef F
#undef C
#undef K

static void test_mandate_transition_table(void **state) {
  (void)state;
  usec_t created = at("2026-01-01T00:00:00Z"), now = created + USEC_PER_DAY;
  const enum mandate_role sides[] = {ROLE_PRINCIPAL, ROLE_REPRESENTATIVE};
  for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
    for (int s = 0; s < 2; s++) {
      enum mandate_role initiator = sides[s], other = sides[1 - s];
      const enum mandate_role actors[ACTORS] = {initiator, other, ROLE_ADMIN, ROLE_NONE};
      for (int a = 0; a < ACTORS; a++) {
        enum mandate_status next = (enum mandate_status)99;
        enum transition_result got = mandate_transition(transitions[i].from, initiator, actors[a],
                                                        transitions[i].action, created, now, &next);
        if (got != transitions[i].want[a]) {
          fail_msg("%s %s by actor %d (initiator %d): got %d, want %d",
                   mandate_status_name(transitions[i].from),
                   mandate_action_name(transitions[i].action), actors[a], initiator, got,
                   transitions[i].want[a]);
        }
        assert_int_equal(next, got == TR_OK ? (int)transitions[i].to : 99);
      }
    }
  }
}

static void test_mandate_transition_lapse(void **state) {
  (void)state;
  usec_t created = at("2026-01-01T12:00:00Z");
  usec_t lapse = created + MANDATE_REQUEST_LAPSE_USEC;
  enum mandate_status next = MS_PENDING;
  const enum mandate_role P = ROLE_PRINCIPAL, R = ROLE_REPRESENTATIVE;

  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, created, lapse - 1, &next),
                   TR_OK);
  assert_int_equal(next, MS_ACTIVE);
  next = MS_PENDING;
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, created, lapse, &next),
                   TR_LAPSED);
  assert_int_equal(next, MS_PENDING);
  assert_int_equal(mandate_transition(MS_PENDING, R, P, MA_DECLINE, created, lapse, &next),
                   TR_LAPSED);
  assert_int_equal(mandate_transition(MS_PENDING, R, P, MA_DECLINE, created, lapse - 1, &next),
                   TR_OK);
  assert_int_equal(next, MS_DECLINED);
  /* Role first, then state, then lapse. */
  assert_int_equal(mandate_transition(MS_PENDING, P, P, MA_ACCEPT, created, lapse, &next),
                   TR_FORBIDDEN);
  assert_int_equal(mandate_transition(MS_PENDING, P, ROLE_ADMIN, MA_ACCEPT, created, lapse, &next),
                   TR_FORBIDDEN);
  assert_int_equal(mandate_transition(MS_ACTIVE, P, R, MA_ACCEPT, created, lapse, &next),
                   TR_CONFLICT);
  assert_int_equal(mandate_transition(MS_REVOKED, P, R, MA_DECLINE, created, lapse, &next),
                   TR_CONFLICT);
  /* A lapsed request can still be withdrawn or turned down by revoke. */
  assert_int_equal(mandate_transition(MS_PENDING, P, P, MA_REVOKE, created, lapse, &next), TR_OK);
  assert_int_equal(next, MS_REVOKED);
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_REVOKE, created, lapse, &next), TR_OK);
  /* Lapse only concerns pending requests: an old active mandate is fine. */
  assert_int_equal(mandate_transition(MS_ACTIVE, P, ROLE_ADMIN, MA_SUSPEND, created,
                                      lapse + 365 * USEC_PER_DAY, &next),
                   TR_OK);
  /* Clock skew (created after now) and extremes do not lapse wrongly or overflow. */
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, created, created - 1, &next),
                   TR_OK);
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, INT64_MAX, INT64_MIN, &next),
                   TR_OK);
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, INT64_MIN, INT64_MAX, &next),
                   TR_LAPSED);
  /* next may be NULL. */
  assert_int_equal(mandate_transition(MS_PENDING, P, R, MA_ACCEPT, created, created, NULL), TR_OK);
}

static void test_mandate_transition_odd_roles(void **state) {
  (void)state;
  usec_t t = at("2026-01-01T00:00:00Z");
  enum mandate_status next = MS_PENDING;
  /* A mandate created by an administrator (import): either party answers. */
  assert_int_equal(
      mandate_transition(MS_PENDING, ROLE_ADMIN, ROLE_PRINCIPAL, MA_ACCEPT, t, t, &next), TR_OK);
  assert_int_equal(mandate_transition(MS_PENDING, ROLE_ADMIN, ROLE_ADMIN, MA_ACCEPT, t, t, &next),
                   TR_FORBIDDEN);
  next = MS_PENDING;
  /* ROLE_NONE is forbidden everything, whoever initiated. */
  for (int a = MA_ACCEPT; a <= MA_RESUME; a++) {
    for (int s = MS_PENDING; s <= MS_SUSPENDED; s++) {
      assert_int_equal(mandate_transition((enum mandate_status)s, ROLE_NONE, ROLE_NONE,
                                          (enum mandate_action)a, t, t, &next),
                       TR_FORBIDDEN);
    }
  }
  /* Out-of-range values are refused, never accepted. */
  assert_int_equal(mandate_transition(MS_ACTIVE, ROLE_PRINCIPAL, ROLE_ADMIN,
                                      (enum mandate_action)42, t, t, &next),
                   TR_FORBIDDEN);
  assert_int_equal(
      mandate_transition(MS_ACTIVE, ROLE_PRINCIPAL, (enum mandate_role)42, MA_REVOKE, t, t, &next),
      TR_FORBIDDEN);
  assert_int_equal(mandate_transition((enum mandate_status)42, ROLE_PRINCIPAL, ROLE_ADMIN,
                                      MA_REVOKE, t, t, &next),
                   TR_CONFLICT);
  assert_int_equal(next, MS_PENDING);
}

static void test_mandate_effective_status_and_use(void **state) {
  (void)state;
  const usec_t now = INT64_C(1800000000) * USEC_PER_SEC, day = USEC_PER_DAY;
  /* Derived statuses. */
  assert_string_equal(mandate_effective_status(MS_ACTIVE, now + 1, now - day, now), "active");
  assert_string_equal(mandate_effective_status(MS_ACTIVE, now, now - day, now), "expired");
  assert_string_equal(mandate_effective_status(MS_PENDING, now + day, now - 20 * day, now),
                      "pending");
  assert_string_equal(mandate_effective_status(MS_PENDING, now + day, now - 21 * day, now),
                      "lapsed");
  assert_string_equal(mandate_effective_status(MS_REVOKED, now - day, now - day, now), "revoked");
  assert_string_equal(mandate_effective_status(MS_SUSPENDED, now + day, now - day, now),
                      "suspended");
  /* Usable right now, and each reason not to be. */
  assert_int_equal(mandate_use_now(MS_ACTIVE, now - day, now + day, now - day, now), MU_USABLE);
  assert_int_equal(mandate_use_now(MS_ACTIVE, now + 1, now + day, now - day, now), MU_NOT_STARTED);
  assert_int_equal(mandate_use_now(MS_ACTIVE, now - day, now + USEC_PER_SEC, now - day, now),
                   MU_ENDED); /* ends within the second */
  assert_int_equal(mandate_use_now(MS_ACTIVE, now - day, now + USEC_PER_SEC + 1, now - day, now),
                   MU_USABLE);
  assert_int_equal(mandate_use_now(MS_PENDING, now - day, now + day, now - day, now), MU_PENDING);
  assert_int_equal(mandate_use_now(MS_PENDING, now - day, now + day, now - 21 * day, now),
                   MU_LAPSED);
  assert_int_equal(mandate_use_now(MS_DECLINED, now - day, now + day, now - day, now), MU_DECLINED);
  assert_int_equal(mandate_use_now(MS_REVOKED, now - day, now + day, now - day, now), MU_REVOKED);
  assert_int_equal(mandate_use_now(MS_SUSPENDED, now - day, now + day, now - day, now),
                   MU_SUSPENDED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bsn_valid),
      cmocka_unit_test(test_party_parse),
      cmocka_unit_test(test_loa),
      cmocka_unit_test(test_time_parse_datetime),
      cmocka_unit_test(test_time_parse_rejects),
      cmocka_unit_test(test_time_parse_dates),
      cmocka_unit_test(test_time_format),
      cmocka_unit_test(test_amsterdam_offset),
      cmocka_unit_test(test_period_check),
      cmocka_unit_test(test_mandate_names),
      cmocka_unit_test(test_mandate_transition_table),
      cmocka_unit_test(test_mandate_transition_lapse),
      cmocka_unit_test(test_mandate_transition_odd_roles),
      cmocka_unit_test(test_mandate_effective_status_and_use),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
