/* Bad input, endpoint by endpoint, as one table: each row is a request the
 * contract (openapi/openapi.yaml, DESIGN.md "Contract details") refuses,
 * with the exact status and problem `code` it must get.  For every row
 * the answer must be application/problem+json and the database must not
 * change (count of mandates, sum of their versions, count of audit rows).
 *
 * Templates in paths, bodies and headers, filled in per row:
 *   {P}  the caller (a person, LoA substantieel unless the row says)
 *   {R} {S}  fresh persons      {K}  a fresh organisation
 *   {M}  a fresh pending request from a fresh person to {P}: {P} may
 *        accept, decline or revoke it (If-Match "1")
 *   {X}  a mandate between two other citizens     {U}  a random UUID
 *   {A}  accept | decline | revoke (rows marked EACH_ACTION run thrice)
 *   {FROM} {UNTIL}  dates 7 and 37 days ahead;  {FROM+91} {FROM+366}
 *   {LONG}  8,300 characters (a URL over 8 KiB)   {LONGID}  100 characters
 *   {BIG}   a 70 KiB JSON body */
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

#include "client.h"
#include "dbcheck.h"
#include "tokens.h"

struct row {
  const char *name;
  const char *method;
  const char *path;
  const char *body;         /* NULL: no body */
  const char *content_type; /* NULL: application/json with a body; "": none */
  const char *if_match;     /* NULL: no If-Match */
  enum token_kind token;
  const char *loa; /* NULL: substantieel */
  long status;
  const char *code;
  const char *field; /* the problem's `field`, when the contract names one */
  const char *allow; /* 405: methods Allow must list, comma-separated */
  bool each_action;
};

/* One row per line reads best as a table. */
/* clang-format off */
#define GRANT_FIELDS "\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\",\"valid_until\":\"{UNTIL}\""
#define GRANT "{\"representative\":\"{R}\"," GRANT_FIELDS "}"
#define V1 "\"1\""

/* POST /v1/mandates with a body, as the caller {P}. */
#define CREATE(n, b, st, c, f) {.name = n, .method = "POST", .path = "/v1/mandates", .body = b, .status = st, .code = c, .field = f}
/* POST /v1/mandates/{M}/{A} with If-Match "1" and a body, thrice. */
#define ACTION(n, b, st, c, f) {.name = n, .method = "POST", .path = "/v1/mandates/{M}/{A}", .body = b, .if_match = V1, .status = st, .code = c, .field = f, .each_action = true}
/* GET /v1/mandates with a query. */
#define LIST(n, q, f) {.name = n, .method = "GET", .path = "/v1/mandates?" q, .status = 400, .code = "invalid-query", .field = f}

static const struct row rows[] = {
    /* ---- POST /v1/mandates: the body ---- */
    CREATE("create: truncated JSON", "{\"representative\":", 400, "malformed-json", NULL),
    CREATE("create: not JSON", "representative=bsn:123456782", 400, "malformed-json", NULL),
    CREATE("create: trailing garbage", GRANT " x", 400, "malformed-json", NULL),
    CREATE("create: invalid UTF-8", "{\"representative\":\"\xff\xfe\"," GRANT_FIELDS "}", 400, "malformed-json", NULL),
    CREATE("create: an array", "[" GRANT "]", 400, "malformed-json", NULL),
    CREATE("create: a string", "\"grant\"", 400, "malformed-json", NULL),
    CREATE("create: null", "null", 400, "malformed-json", NULL),
    {.name = "create: no body", .method = "POST", .path = "/v1/mandates", .status = 400, .code = "malformed-json"},
    CREATE("create: principal is a number", "{\"principal\":123456782,\"representative\":\"{R}\"," GRANT_FIELDS "}", 400, "wrong-type", "principal"),
    CREATE("create: principal is null", "{\"principal\":null,\"representative\":\"{R}\"," GRANT_FIELDS "}", 400, "wrong-type", "principal"),
    CREATE("create: representative is a boolean", "{\"representative\":true," GRANT_FIELDS "}", 400, "wrong-type", "representative"),
    CREATE("create: representative is null", "{\"principal\":\"{P}\",\"representative\":null," GRANT_FIELDS "}", 400, "wrong-type", "representative"),
    CREATE("create: representative is an object", "{\"representative\":{\"bsn\":\"{R}\"}," GRANT_FIELDS "}", 400, "wrong-type", "representative"),
    CREATE("create: service is a number", "{\"representative\":\"{R}\",\"service\":42,\"valid_from\":\"{FROM}\",\"valid_until\":" "\"{UNTIL}\"}", 400, "wrong-type", "service"),
    CREATE("create: service is null", "{\"representative\":\"{R}\",\"service\":null,\"valid_from\":\"{FROM}\",\"valid_until\":" "\"{UNTIL}\"}", 400, "wrong-type", "service"),
    CREATE("create: service is an array", "{\"representative\":\"{R}\",\"service\":[\"gemeente-afval\"],\"valid_from\":\"{FROM}\"," "\"valid_until\":\"{UNTIL}\"}", 400, "wrong-type", "service"),
    CREATE("create: valid_from is a number", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":20270101," "\"valid_until\":\"{UNTIL}\"}", 400, "wrong-type", "valid_from"),
    CREATE("create: valid_from is null", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":null,\"valid_" "until\":\"{UNTIL}\"}", 400, "wrong-type", "valid_from"),
    CREATE("create: valid_until is an object", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":{}}", 400, "wrong-type", "valid_until"),
    CREATE("create: valid_until is a boolean", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":false}", 400, "wrong-type", "valid_until"),
    CREATE("create: unknown field kind", "{\"representative\":\"{R}\",\"kind\":\"bewind\"," GRANT_FIELDS "}", 400, "unknown-field", "kind"),
    CREATE("create: unknown field status", "{\"representative\":\"{R}\",\"status\":\"active\"," GRANT_FIELDS "}", 400, "unknown-field", "status"),
    CREATE("create: field names are case-sensitive", "{\"Representative\":\"{R}\"," GRANT_FIELDS "}", 400, "unknown-field", "Representative"),
    CREATE("create: missing service", "{\"representative\":\"{R}\",\"valid_from\":\"{FROM}\",\"valid_until\":\"{UNTIL}\"}", 400, "missing-field", "service"),
    CREATE( "create: missing valid_from", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_until\":\"{UNTIL}\"}", 400, "missing-field", "valid_from"),
    CREATE("create: missing valid_until", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"}", 400, "missing-field", "valid_until"),

    /* ---- POST /v1/mandates: parties ---- */
    CREATE("create: BSN fails the 11-check", "{\"representative\":\"bsn:123456789\"," GRANT_FIELDS "}", 422, "invalid-bsn", "representative"),
    CREATE("create: BSN 000000000", "{\"representative\":\"bsn:000000000\"," GRANT_FIELDS "}", 422, "invalid-bsn", "representative"),
    CREATE("create: principal BSN fails the 11-check", "{\"principal\":\"bsn:111222334\"," GRANT_FIELDS "}", 422, "invalid-bsn", "principal"),
    CREATE("create: BSN of 8 digits", "{\"representative\":\"bsn:12345678\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: BSN of 10 digits", "{\"representative\":\"bsn:1234567820\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: BSN with a letter", "{\"representative\":\"bsn:12345678a\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: BSN without prefix", "{\"representative\":\"123456782\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: upper-case prefix", "{\"representative\":\"BSN:123456782\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: party with a space", "{\"representative\":\"bsn: 123456782\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: empty party", "{\"representative\":\"\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: kvk of 7 digits", "{\"representative\":\"kvk:1234567\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: kvk of 9 digits", "{\"representative\":\"kvk:123456789\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: kvk with a letter", "{\"representative\":\"kvk:1234567x\"," GRANT_FIELDS "}", 422, "invalid-party", "representative"),
    CREATE("create: self-mandate", "{\"representative\":\"{P}\"," GRANT_FIELDS "}", 422, "self-mandate", NULL),
    CREATE("create: self-mandate, both sides given", "{\"principal\":\"{P}\",\"representative\":\"{P}\"," GRANT_FIELDS "}", 422, "self-mandate", NULL),
    CREATE("create: caller is neither party", "{\"principal\":\"{R}\",\"representative\":\"{S}\"," GRANT_FIELDS "}", 422, "not-a-party", NULL),
    CREATE("create: organisation as principal", "{\"principal\":\"{K}\"," GRANT_FIELDS "}", 422, "principal-not-person", "principal"),
    CREATE("create: unknown service", "{\"representative\":\"{R}\",\"service\":\"no-such-service\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"{UNTIL}\"}", 422, "unknown-service", "service"),
    CREATE("create: organisation on a person-only service", "{\"representative\":\"{K}\"," GRANT_FIELDS "}", 422, "representative-type-not-allowed", "representative"),
    {.name = "create: voluntary on a legal-only service", .method = "POST", .path = "/v1/mandates", .loa = "hoog", .body = "{\"representative\":\"{R}\",\"service\":\"svb-aow-beheren\",\"valid_from\":\"{FROM}" "\",\"valid_until\":\"{UNTIL}\"}", .status = 422, .code = "kind-not-allowed"},
    {.name = "create: grant with LoA basis on a midden service", .method = "POST", .path = "/v1/mandates", .loa = "basis", .body = "{\"representative\":\"{R}\",\"service\":\"uwv-ww-aanvragen\",\"valid_from\":\"{FROM}" "\",\"valid_until\":\"{UNTIL}\"}", .status = 403, .code = "loa-too-low"},

    /* ---- POST /v1/mandates: periods ---- */
    CREATE("create: 30 February", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-02-" "30\",\"valid_until\":\"2031-03-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: 29 February in a common year", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-02-" "29\",\"valid_until\":\"2031-03-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: month 13", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"2031-13-01\"}", 422, "invalid-date", "valid_until"),
    CREATE("create: 31 April", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"2031-04-31\"}", 422, "invalid-date", "valid_until"),
    CREATE("create: hour 25", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-01-" "10T25:00:00Z\",\"valid_until\":\"2031-02-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: date-time without offset", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-01-" "10T10:00:00\",\"valid_until\":\"2031-02-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: date without leading zeros", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-1-5\"," "\"valid_until\":\"2031-02-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: a word for a date", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"tomorrow\"," "\"valid_until\":\"2031-02-10\"}", 422, "invalid-date", "valid_from"),
    CREATE("create: empty date", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"\"}", 422, "invalid-date", "valid_until"),
    CREATE("create: inverted period", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{UNTIL}\"," "\"valid_until\":\"{FROM}\"}", 422, "period-inverted", NULL),
    CREATE("create: empty period", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2031-01-" "10T10:00:00Z\",\"valid_until\":\"2031-01-10T11:00:00+01:00\"}", 422, "period-inverted", NULL),
    CREATE("create: 91 days on a 90-day service", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"{FROM+91}\"}", 422, "period-too-long", "valid_until"),
    CREATE("create: 366 days on a 365-day service", "{\"representative\":\"{R}\",\"service\":\"uwv-ww-aanvragen\",\"valid_from\":\"{FROM}\"," "\"valid_until\":\"{FROM+366}\"}", 422, "period-too-long", "valid_until"),
    CREATE("create: period ended in 2020", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"2020-01-" "01\",\"valid_until\":\"2020-01-31\"}", 422, "period-ended", NULL),
    CREATE("create: period ended an hour ago", "{\"representative\":\"{R}\",\"service\":\"gemeente-afval\",\"valid_from\":\"{AGO-10}\"," "\"valid_until\":\"{HOUR-AGO}\"}", 422, "period-ended", NULL),

    /* ---- POST /v1/mandates: transport ---- */
    {.name = "create: 70 KiB body", .method = "POST", .path = "/v1/mandates", .body = "{BIG}", .status = 413, .code = "payload-too-large"},
    {.name = "create: text/plain", .method = "POST", .path = "/v1/mandates", .body = GRANT, .content_type = "text/plain", .status = 415, .code = "unsupported-media-type"},
    {.name = "create: form encoding", .method = "POST", .path = "/v1/mandates", .body = GRANT, .content_type = "application/x-www-form-urlencoded", .status = 415, .code = "unsupported-media-type"},
    {.name = "create: application/jsonx", .method = "POST", .path = "/v1/mandates", .body = GRANT, .content_type = "application/jsonx", .status = 415, .code = "unsupported-media-type"},
    {.name = "create: no Content-Type", .method = "POST", .path = "/v1/mandates", .body = GRANT, .content_type = "", .status = 415, .code = "unsupported-media-type"},
    {.name = "create: URL over 8 KiB", .method = "POST", .path = "/v1/mandates?pad={LONG}", .body = GRANT, .status = 414, .code = "uri-too-long"},
    {.name = "create: DELETE /v1/mandates", .method = "DELETE", .path = "/v1/mandates", .status = 405, .code = "method-not-allowed", .allow = "GET,POST"},
    {.name = "create: PUT /v1/mandates", .method = "PUT", .path = "/v1/mandates", .body = GRANT, .status = 405, .code = "method-not-allowed", .allow = "GET,POST"},
    {.name = "create: POST /v1/mandates/", .method = "POST", .path = "/v1/mandates/", .body = GRANT, .status = 404, .code = "not-found"},
    {.name = "create: POST /v1/mandate", .method = "POST", .path = "/v1/mandate", .body = GRANT, .status = 404, .code = "not-found"},

    /* ---- GET /v1/mandates ---- */
    LIST("list: role=x", "role=x", "role"),
    LIST("list: empty role", "role=", "role"),
    LIST("list: role in capitals", "role=PRINCIPAL", "role"),
    LIST("list: limit=0", "limit=0", "limit"),
    LIST("list: limit=101", "limit=101", "limit"),
    LIST("list: limit=abc", "limit=abc", "limit"),
    LIST("list: limit=-1", "limit=-1", "limit"),
    LIST("list: limit=1.5", "limit=1.5", "limit"),
    LIST("list: empty limit", "limit=", "limit"),
    LIST("list: unknown status", "status=bogus", "status"),
    LIST("list: unknown parameter", "colour=red", "colour"),
    LIST("list: garbage cursor", "after=%21%21%21not-a-cursor", "after"),
    LIST("list: cursor of other base64", "after=aGVsbG8", "after"),
    LIST("list: empty cursor", "after=", "after"),
    LIST("list: empty service", "service=", "service"),
    {.name = "list: URL over 8 KiB", .method = "GET", .path = "/v1/mandates?service={LONG}", .status = 414, .code = "uri-too-long"},
    {.name = "list: PATCH /v1/mandates", .method = "PATCH", .path = "/v1/mandates", .body = "{}", .status = 405, .code = "method-not-allowed", .allow = "GET,POST"},

    /* ---- GET /v1/mandates/{id} ---- */
    {.name = "get: another citizen's mandate", .method = "GET", .path = "/v1/mandates/{X}", .status = 404, .code = "mandate-not-found"},
    {.name = "get: unknown UUID", .method = "GET", .path = "/v1/mandates/{U}", .status = 404, .code = "mandate-not-found"},
    {.name = "get: not a UUID", .method = "GET", .path = "/v1/mandates/not-a-uuid", .status = 404, .code = "mandate-not-found"},
    {.name = "get: a number", .method = "GET", .path = "/v1/mandates/12345", .status = 404, .code = "mandate-not-found"},
    {.name = "get: UUID and more", .method = "GET", .path = "/v1/mandates/{U}0", .status = 404, .code = "mandate-not-found"},
    {.name = "get: id of 100 characters", .method = "GET", .path = "/v1/mandates/{LONGID}", .status = 404, .code = "mandate-not-found"},
    {.name = "get: URL over 8 KiB (path)", .method = "GET", .path = "/v1/mandates/{LONG}", .status = 414, .code = "uri-too-long"},
    {.name = "get: URL over 8 KiB (query)", .method = "GET", .path = "/v1/mandates/{U}?pad={LONG}", .status = 414, .code = "uri-too-long"},
    {.name = "get: PUT", .method = "PUT", .path = "/v1/mandates/{U}", .body = "{}", .status = 405, .code = "method-not-allowed", .allow = "GET"},
    {.name = "get: DELETE", .method = "DELETE", .path = "/v1/mandates/{U}", .status = 405, .code = "method-not-allowed", .allow = "GET"},
    {.name = "get: POST", .method = "POST", .path = "/v1/mandates/{U}", .body = "{}", .status = 405, .code = "method-not-allowed", .allow = "GET"},

    /* ---- POST /v1/mandates/{id}/accept | decline | revoke ---- */
    ACTION("truncated JSON", "{\"reason\":", 400, "malformed-json", NULL),
    ACTION("an array", "[]", 400, "malformed-json", NULL),
    ACTION("a string", "\"yes\"", 400, "malformed-json", NULL),
    ACTION("reason is a number", "{\"reason\":5}", 400, "wrong-type", "reason"),
    ACTION("reason is null", "{\"reason\":null}", 400, "wrong-type", "reason"),
    ACTION("reason is an array", "{\"reason\":[\"a\"]}", 400, "wrong-type", "reason"),
    ACTION("reason of 501 characters", "{\"reason\":\"{501}\"}", 400, "wrong-type", "reason"),
    ACTION("unknown field", "{\"why\":\"because\"}", 400, "unknown-field", "why"),
    ACTION("70 KiB body", "{BIG}", 413, "payload-too-large", NULL),
    {.name = "text/plain", .method = "POST", .path = "/v1/mandates/{M}/{A}", .body = "{}", .content_type = "text/plain", .if_match = V1, .status = 415, .code = "unsupported-media-type", .each_action = true},
    {.name = "no Content-Type", .method = "POST", .path = "/v1/mandates/{M}/{A}", .body = "{}", .content_type = "", .if_match = V1, .status = 415, .code = "unsupported-media-type", .each_action = true},
    {.name = "no If-Match", .method = "POST", .path = "/v1/mandates/{M}/{A}", .status = 428, .code = "precondition-required", .each_action = true},
    {.name = "no If-Match, with a reason", .method = "POST", .path = "/v1/mandates/{M}/{A}", .body = "{\"reason\":\"ok\"}", .status = 428, .code = "precondition-required", .each_action = true},
    {.name = "stale If-Match", .method = "POST", .path = "/v1/mandates/{M}/{A}", .if_match = "\"7\"", .status = 412, .code = "precondition-failed", .each_action = true},
    {.name = "If-Match \"0\"", .method = "POST", .path = "/v1/mandates/{M}/{A}", .if_match = "\"0\"", .status = 412, .code = "precondition-failed", .each_action = true},
    {.name = "another citizen's mandate", .method = "POST", .path = "/v1/mandates/{X}/{A}", .if_match = V1, .status = 404, .code = "mandate-not-found", .each_action = true},
    {.name = "unknown UUID", .method = "POST", .path = "/v1/mandates/{U}/{A}", .if_match = V1, .status = 404, .code = "mandate-not-found", .each_action = true},
    {.name = "not a UUID", .method = "POST", .path = "/v1/mandates/not-a-uuid/{A}", .if_match = V1, .status = 404, .code = "mandate-not-found", .each_action = true},
    {.name = "id of 100 characters", .method = "POST", .path = "/v1/mandates/{LONGID}/{A}", .if_match = V1, .status = 404, .code = "mandate-not-found", .each_action = true},
    {.name = "URL over 8 KiB (path)", .method = "POST", .path = "/v1/mandates/{LONG}/{A}", .if_match = V1, .status = 414, .code = "uri-too-long", .each_action = true},
    {.name = "URL over 8 KiB (query)", .method = "POST", .path = "/v1/mandates/{M}/{A}?pad={LONG}", .if_match = V1, .status = 414, .code = "uri-too-long", .each_action = true},
    {.name = "GET", .method = "GET", .path = "/v1/mandates/{M}/{A}", .status = 405, .code = "method-not-allowed", .allow = "POST", .each_action = true},
    {.name = "PUT", .method = "PUT", .path = "/v1/mandates/{M}/{A}", .body = "{}", .if_match = V1, .status = 405, .code = "method-not-allowed", .allow = "POST", .each_action = true},

    /* ---- GET /v1/services and addresses that do not exist ---- */
    {.name = "services: POST", .method = "POST", .path = "/v1/services", .body = "{}", .status = 405, .code = "method-not-allowed", .allow = "GET"},
    {.name = "services: DELETE", .method = "DELETE", .path = "/v1/services", .status = 405, .code = "method-not-allowed", .allow = "GET"},
    {.name = "services: URL over 8 KiB", .method = "GET", .path = "/v1/services?pad={LONG}", .token = TOKEN_NONE, .status = 414, .code = "uri-too-long"},
    {.name = "unknown: /v1/nope", .method = "GET", .path = "/v1/nope", .status = 404, .code = "not-found"},
    {.name = "unknown: /v2/mandates", .method = "GET", .path = "/v2/mandates", .status = 404, .code = "not-found"},
    {.name = "unknown: /v1/mandates/{id}/frobnicate", .method = "POST", .path = "/v1/mandates/{M}/frobnicate", .if_match = V1, .status = 404, .code = "not-found"},
    {.name = "unknown: /v1/services/x", .method = "GET", .path = "/v1/services/uwv-ww-aanvragen", .status = 404, .code = "not-found"},
    {.name = "unknown: no token either", .method = "GET", .path = "/v1/admin", .token = TOKEN_NONE, .status = 404, .code = "not-found"},
};

/* The identity checks, on every endpoint that takes an identity: the
 * request is otherwise fine (the caller is a party, If-Match is current). */
static const struct {
  const char *name;
  const char *method;
  const char *path;
  const char *body;
  const char *if_match;
} auth_endpoints[] = {
    {"POST /v1/mandates", "POST", "/v1/mandates", GRANT, NULL},
    {"GET /v1/mandates", "GET", "/v1/mandates", NULL, NULL},
    {"GET /v1/mandates/{id}", "GET", "/v1/mandates/{M}", NULL, NULL},
    {"POST accept", "POST", "/v1/mandates/{M}/accept", NULL, V1},
    {"POST decline", "POST", "/v1/mandates/{M}/decline", NULL, V1},
    {"POST revoke", "POST", "/v1/mandates/{M}/revoke", "{\"reason\":\"r\"}", V1},
};

static const struct {
  enum token_kind token;
  const char *code;
} auth_cases[] = {
    {TOKEN_NONE, "identity-missing"},        {TOKEN_EMPTY, "identity-missing"},
    {TOKEN_BASIC, "identity-missing"},       {TOKEN_GARBAGE, "identity-invalid"},
    {TOKEN_EXPIRED, "identity-expired"},     {TOKEN_WRONG_AUD, "identity-invalid"},
    {TOKEN_ALG_NONE, "identity-invalid"},    {TOKEN_HS256_JWK, "identity-invalid"},
    {TOKEN_HS256_X, "identity-invalid"},     {TOKEN_FORGED, "identity-invalid"},
    {TOKEN_UNKNOWN_KID, "identity-invalid"}, {TOKEN_TAMPERED, "identity-invalid"},
    {TOKEN_OVERSIZED, "identity-invalid"},
};

/* clang-format on */

static const char *const actions[] = {"accept", "decline", "revoke"};

/* ---- Per-run state --------------------------------------------------------- */

#define TOKEN_KINDS (TOKEN_OVERSIZED + 1)
#define LOAS 3 /* basis, substantieel, hoog */

static struct {
  char caller[14];
  char *authorization[TOKEN_KINDS][LOAS]; /* made on first use */
  char other_mandate[37];
  char from[11], until[11], from91[11], from366[11], ago10[11], hour_ago[32];
  char *long_text, *long_id, *big_body, *reason501;
} run;

static int loa_index(const char *loa) {
  if (loa == NULL || strcmp(loa, "substantieel") == 0)
    return 1;
  return strcmp(loa, "basis") == 0 ? 0 : 2;
}

static const char *caller_authorization(enum token_kind kind, const char *loa) {
  static const char *const names[LOAS] = {"basis", "substantieel", "hoog"};
  int i = loa_index(loa);
  if (kind == TOKEN_NONE)
    return NULL;
  if (run.authorization[kind][i] == NULL)
    run.authorization[kind][i] = token_authorization(kind, run.caller, names[i]);
  return run.authorization[kind][i];
}

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* Creates a mandate and returns its id (fails the test otherwise). */
static void create_mandate(const char *token, const char *body, char id[37]) {
  struct api_response *r = api_call("POST", "/v1/mandates", token, body);
  api_expect_status(r, 201);
  const char *got = api_str(r, "id");
  if (got == NULL || strlen(got) != 36)
    fail_msg("no id: %s", api_describe(r));
  memcpy(id, got, 37);
  api_response_free(r);
}

/* A pending request from a fresh person to the caller. */
static void fresh_request(char id[37]) {
  char rep[14];
  random_bsn(rep);
  char *token = token_person(rep, "substantieel");
  char *body = xasprintf("{\"principal\":\"%s\",\"service\":\"gemeente-afval\","
                         "\"valid_from\":\"%s\",\"valid_until\":\"%s\"}",
                         run.caller, run.from, run.until);
  create_mandate(token, body, id);
  free(body);
  free(token);
}

static int group_setup(void **state) {
  (void)state;
  random_bsn(run.caller);
  date_from_today(7, run.from);
  date_from_today(37, run.until);
  date_from_today(7 + 91, run.from91);
  date_from_today(7 + 366, run.from366);
  date_from_today(-10, run.ago10);
  time_t hour_ago = time(NULL) - 3600;
  strftime(run.hour_ago, sizeof run.hour_ago, "%Y-%m-%dT%H:%M:%SZ", gmtime(&hour_ago));
  run.long_text = repeat('a', 8300);
  run.long_id = repeat('a', 100);
  run.reason501 = repeat('r', 501);
  char *pad = repeat('x', 70 * 1024);
  run.big_body = xasprintf("{\"reason\":\"%s\"}", pad);
  free(pad);

  /* {X}: a mandate between two other citizens. */
  char principal[14], representative[14];
  random_bsn(principal);
  random_bsn(representative);
  char *token = token_person(principal, "substantieel");
  char *body = xasprintf("{\"representative\":\"%s\",\"service\":\"gemeente-afval\","
                         "\"valid_from\":\"%s\",\"valid_until\":\"%s\"}",
                         representative, run.from, run.until);
  create_mandate(token, body, run.other_mandate);
  free(body);
  free(token);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (size_t k = 0; k < TOKEN_KINDS; k++)
    for (size_t l = 0; l < LOAS; l++)
      free(run.authorization[k][l]);
  free(run.long_text);
  free(run.long_id);
  free(run.big_body);
  free(run.reason501);
  db_close();
  return 0;
}

/* ---- Running a row ------------------------------------------------------- */

struct subst {
  const char *key;
  const char *value;
};

/* Replaces every {KEY} of the table; unknown braces stay as they are. */
static char *fill(const char *tmpl, const struct subst *subs, size_t n) {
  if (tmpl == NULL)
    return NULL;
  size_t cap = strlen(tmpl) + 1, len = 0;
  char *out = malloc(cap);
  for (const char *p = tmpl; *p != '\0';) {
    const char *value = NULL;
    size_t key_len = 0;
    for (size_t i = 0; i < n && *p == '{'; i++) {
      size_t k = strlen(subs[i].key);
      if (strncmp(p + 1, subs[i].key, k) == 0 && p[1 + k] == '}') {
        value = subs[i].value;
        key_len = k + 2;
        break;
      }
    }
    const char *add = value != NULL ? value : p;
    size_t add_len = value != NULL ? strlen(value) : 1;
    if (len + add_len + 1 > cap) {
      cap = (len + add_len + 1) * 2;
      out = realloc(out, cap);
    }
    memcpy(out + len, add, add_len);
    len += add_len;
    p += value != NULL ? key_len : 1;
  }
  out[len] = '\0';
  return out;
}

static bool allow_lists(const char *allow, const char *method) {
  if (allow == NULL)
    return false;
  size_t n = strlen(method);
  for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n) {
    bool start = p == allow || p[-1] == ',' || p[-1] == ' ';
    bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
    if (start && end)
      return true;
  }
  return false;
}

struct test_row {
  struct row row;
  const char *action; /* for {A} */
  char *owned_name;   /* row.name when made here */
};

static void run_row(void **state) {
  const struct test_row *t = *state;
  const struct row *row = &t->row;
  char rep[14], other[14], org[13], uuid[37], mandate[37] = "";
  random_bsn(rep);
  random_bsn(other);
  random_kvk(org);
  random_uuid(uuid);
  if (strstr(row->path, "{M}") != NULL)
    fresh_request(mandate);
  const struct subst subs[] = {
      {"P", run.caller},
      {"R", rep},
      {"S", other},
      {"K", org},
      {"M", mandate},
      {"X", run.other_mandate},
      {"U", uuid},
      {"A", t->action},
      {"FROM", run.from},
      {"UNTIL", run.until},
      {"FROM+91", run.from91},
      {"FROM+366", run.from366},
      {"AGO-10", run.ago10},
      {"HOUR-AGO", run.hour_ago},
      {"LONG", run.long_text},
      {"LONGID", run.long_id},
      {"BIG", run.big_body},
      {"501", run.reason501},
  };
  const size_t nsubs = sizeof subs / sizeof subs[0];
  char *path = fill(row->path, subs, nsubs);
  char *body = fill(row->body, subs, nsubs);

  const char *headers[4] = {NULL, NULL, NULL, NULL};
  size_t n = 0;
  const char *authz = caller_authorization(row->token, row->loa);
  char *auth_header = authz ? xasprintf("Authorization: %s", authz) : NULL;
  char *match_header = row->if_match ? xasprintf("If-Match: %s", row->if_match) : NULL;
  char *type_header = NULL;
  if (body != NULL && row->content_type == NULL)
    type_header = strdup("Content-Type: application/json");
  else if (row->content_type != NULL && row->content_type[0] != '\0')
    type_header = xasprintf("Content-Type: %s", row->content_type);
  if (auth_header)
    headers[n++] = auth_header;
  if (match_header)
    headers[n++] = match_header;
  if (type_header)
    headers[n++] = type_header;

  struct db_snapshot before = db_snapshot();
  struct api_response *r = api_request(row->method, path, headers, body, body ? strlen(body) : 0);
  api_expect_problem(r, row->status, row->code, row->field);
  if (row->allow != NULL) {
    char *wanted = strdup(row->allow);
    char *save = NULL;
    for (char *m = strtok_r(wanted, ",", &save); m != NULL; m = strtok_r(NULL, ",", &save))
      if (!allow_lists(r->allow, m))
        fail_msg("Allow must list %s: got %s", m, r->allow ? r->allow : "(no Allow header)");
    free(wanted);
  }
  db_expect_unchanged(&before, row->name);

  api_response_free(r);
  free(auth_header);
  free(match_header);
  free(type_header);
  free(path);
  free(body);
}

int main(void) {
  api_init();
  size_t nrows = 0;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    nrows += rows[i].each_action ? 3 : 1;
  size_t nauth =
      sizeof auth_endpoints / sizeof auth_endpoints[0] * (sizeof auth_cases / sizeof auth_cases[0]);
  size_t total = nrows + nauth;
  struct test_row *trows = calloc(total, sizeof *trows);
  struct CMUnitTest *tests = calloc(total, sizeof *tests);
  size_t k = 0;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    for (size_t a = 0; a < (rows[i].each_action ? 3u : 1u); a++, k++) {
      trows[k].row = rows[i];
      trows[k].action = actions[a];
      if (rows[i].each_action)
        trows[k].row.name = trows[k].owned_name = xasprintf("%s: %s", actions[a], rows[i].name);
    }
  }
  for (size_t e = 0; e < sizeof auth_endpoints / sizeof auth_endpoints[0]; e++) {
    for (size_t c = 0; c < sizeof auth_cases / sizeof auth_cases[0]; c++, k++) {
      trows[k].row = (struct row){
          .name = xasprintf("%s: %s token", auth_endpoints[e].name,
                            token_kind_name(auth_cases[c].token)),
          .method = auth_endpoints[e].method,
          .path = auth_endpoints[e].path,
          .body = auth_endpoints[e].body,
          .if_match = auth_endpoints[e].if_match,
          .token = auth_cases[c].token,
          .status = 401,
          .code = auth_cases[c].code,
      };
      trows[k].action = "";
      trows[k].owned_name = (char *)trows[k].row.name;
    }
  }
  for (size_t i = 0; i < total; i++) {
    tests[i].name = trows[i].row.name;
    tests[i].test_func = run_row;
    tests[i].initial_state = &trows[i];
  }
  printf("bad input: %zu table rows (%zu requests) + %zu identity rows = %zu requests\n",
         sizeof rows / sizeof rows[0], nrows, nauth, total);
  int failed = _cmocka_run_group_tests("bad_input", tests, total, group_setup, group_teardown);
  for (size_t i = 0; i < total; i++)
    free(trows[i].owned_name);
  free(trows);
  free(tests);
  return failed;
}
