/* POST /v1/mandates, GET /v1/mandates, GET /v1/mandates/{id}. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/mandates_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "handlers/mandate_ops.h"
#include "http/json_spec.h"
#include "jose/jws.h"

static struct tx_outcome rule(enum err err, const char *field) {
  return (struct tx_outcome){DB_OK, err, field, NULL};
}

static struct tx_outcome db_status_only(enum db_status st) {
  return (struct tx_outcome){st, ERR_NONE, NULL, NULL};
}

struct create_ctx {
  const struct identity *who;
  const char *origin;
  struct party principal, representative;
  enum mandate_role caller_role;
  const char *service_code;
  usec_t from, until;
  struct mandate created;
};

static enum err period_err(enum period_error pe) {
  switch (pe) {
  case PERIOD_INVERTED:
    return ERR_PERIOD_INVERTED;
  case PERIOD_TOO_LONG:
    return ERR_PERIOD_TOO_LONG;
  case PERIOD_ALREADY_ENDED:
    return ERR_PERIOD_ENDED;
  case PERIOD_OK:
    break;
  }
  return ERR_NONE;
}

/* The service's rules for a new voluntary mandate. */
static struct tx_outcome check_service(const struct create_ctx *c, const struct service *s) {
  bool person = c->representative.kind == PARTY_PERSON;
  if ((person && !s->allow_person) || (!person && !s->allow_organisation))
    return rule(ERR_REPRESENTATIVE_TYPE_NOT_ALLOWED, "representative");
  if (strstr(s->kinds_json, "\"voluntary\"") == NULL)
    return rule(ERR_KIND_NOT_ALLOWED, "service");
  /* Granting needs the principal's login to be strong enough. */
  if (c->caller_role == ROLE_PRINCIPAL && c->who->loa < s->min_loa)
    return rule(ERR_LOA_TOO_LOW, NULL);
  enum err pe = period_err(period_check(c->from, c->until, s->max_duration_days, now_usec()));
  if (pe != ERR_NONE)
    return rule(pe, "valid_until");
  return rule(ERR_NONE, NULL);
}

static struct tx_outcome create_tx(struct db *db, void *ctx) {
  struct create_ctx *c = ctx;
  struct service s;
  enum db_status st = db_service_get(db, c->service_code, &s);
  if (st == DB_NOT_FOUND)
    return rule(ERR_UNKNOWN_SERVICE, "service");
  if (st != DB_OK)
    return db_status_only(st);
  struct tx_outcome out = check_service(c, &s);
  if (out.err != ERR_NONE)
    return out;
  st = db_mandate_lock_pair(db, c->principal.id, c->service_code);
  if (st != DB_OK)
    return db_status_only(st);
  st = db_mandate_legal_exists(db, c->principal.id, c->service_code, c->from, c->until);
  if (st == DB_OK)
    return rule(ERR_LEGAL_MANDATE_EXISTS, NULL);
  if (st != DB_NOT_FOUND)
    return db_status_only(st);
  st = db_mandate_overlap_exists(db, c->principal.id, c->representative.id, c->service_code,
                                 c->from, c->until);
  if (st == DB_OK)
    return rule(ERR_MANDATE_OVERLAP, NULL);
  if (st != DB_NOT_FOUND)
    return db_status_only(st);
  st = db_mandate_insert(db, c->principal.id, c->representative.id, c->service_code, c->from,
                         c->until, c->caller_role, c->origin, &c->created);
  if (st != DB_OK)
    return db_status_only(st);
  struct audit_event e = {
      .event = "mandate_created",
      .mandate_id = c->created.id,
      .principal = c->principal.id,
      .actor = c->who->party.id,
      .actor_employee = c->who->employee,
      .service = c->service_code,
  };
  return db_status_only(db_audit(db, &e));
}

bool mandate_create(const struct identity *who, const struct mandate_request *req,
                    const char *origin, struct mandate *created, struct tx_outcome *fail) {
  struct create_ctx c = {.who = who,
                         .origin = origin,
                         .principal = req->principal,
                         .representative = req->representative,
                         .service_code = req->service,
                         .from = req->from,
                         .until = req->until};
  /* The caller may leave out their own side, not both. */
  if (!req->has_principal && !req->has_representative) {
    *fail = (struct tx_outcome){DB_OK, ERR_MISSING_FIELD, "representative",
                                "Give the principal or the representative."};
    return false;
  }
  const struct party *caller = &who->party;
  if (!req->has_principal)
    c.principal = *caller;
  if (!req->has_representative)
    c.representative = *caller;
  if (strcmp(c.principal.id, c.representative.id) == 0)
    *fail = rule(ERR_SELF_MANDATE, "representative");
  else if (strcmp(c.principal.id, caller->id) == 0)
    c.caller_role = ROLE_PRINCIPAL;
  else if (strcmp(c.representative.id, caller->id) == 0)
    c.caller_role = ROLE_REPRESENTATIVE;
  else
    *fail = rule(ERR_NOT_A_PARTY, req->has_principal ? "principal" : "representative");
  if (c.caller_role == ROLE_NONE)
    return false;
  if (c.principal.kind != PARTY_PERSON) {
    *fail = rule(ERR_PRINCIPAL_NOT_PERSON, "principal");
    return false;
  }
  if (!tx_run(create_tx, &c, fail))
    return false;
  *created = c.created;
  return true;
}

enum MHD_Result mandates_create(struct request *rq) {
  struct mandate_request req = {0};
  const struct json_field spec[] = {
      {"principal", SPEC_PARTY, &req.principal, false, 0, &req.has_principal},
      {"representative", SPEC_PARTY, &req.representative, false, 0, &req.has_representative},
      {"service", SPEC_STRING, &req.service, true, 64, NULL},
      {"valid_from", SPEC_TIME_START, &req.from, true, 0, NULL},
      {"valid_until", SPEC_TIME_END, &req.until, true, 0, NULL},
      JSON_FIELD_END,
  };
  struct spec_error e;
  if (!json_spec_parse(rq->json, spec, &e))
    return reply_problem(rq, e.err, NULL, e.field);
  struct mandate created;
  struct tx_outcome fail;
  if (!mandate_create(&rq->who, &req, "api", &created, &fail))
    return fail.err != ERR_NONE ? reply_problem(rq, fail.err, fail.detail, fail.field)
                                : reply_db_error(rq, fail.st);
  return reply_mandate(rq, MHD_HTTP_CREATED, &created);
}

enum MHD_Result mandates_get(struct request *rq) {
  const char *id = rq->params[0];
  if (!uuid_valid(id))
    return reply_problem(rq, ERR_MANDATE_NOT_FOUND, NULL, NULL);
  struct db *db = db_get();
  if (db == NULL)
    return reply_db_error(rq, DB_HARD_ERROR);
  struct mandate m;
  enum db_status st = db_mandate_get(db, id, rq->who.party.id, false, &m);
  if (st != DB_OK)
    return reply_db_error(rq, st);
  return reply_mandate(rq, MHD_HTTP_OK, &m);
}

/* ---- Listing ------------------------------------------------------- */

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100

/* The cursor is opaque to clients: base64url("<created usec>:<id>"). */
static void cursor_encode(const struct mandate *m, char *out, size_t len) {
  char plain[80];
  int n = snprintf(plain, sizeof plain, "%" PRId64 ":%s", m->created_at, m->id);
  b64url_encode((const unsigned char *)plain, (size_t)n, out, len);
}

static bool cursor_decode(const char *text, struct mandate_list_query *q) {
  unsigned char plain[80];
  size_t len = strlen(text);
  if (len == 0 || len > 100)
    return false;
  long n = b64url_decode(text, len, plain, sizeof plain - 1);
  if (n <= 0)
    return false;
  plain[n] = '\0';
  char *colon = strchr((char *)plain, ':');
  if (colon == NULL || colon == (char *)plain)
    return false;
  *colon = '\0';
  char *end;
  long long created = strtoll((char *)plain, &end, 10);
  if (*end != '\0' || created < 0 || !uuid_valid(colon + 1))
    return false;
  q->has_cursor = true;
  q->cursor_created = created;
  snprintf(q->cursor_id, sizeof q->cursor_id, "%s", colon + 1);
  return true;
}

static bool status_filter_valid(const char *s) {
  static const char *names[] = {"pending",   "active",  "declined", "revoked",
                                "suspended", "expired", "lapsed"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i]) == 0)
      return true;
  return false;
}

/* Fills q from the query string; on failure names the parameter. */
static bool list_query_parse(struct request *rq, struct mandate_list_query *q, const char **bad) {
  static const char *const allowed[] = {"role", "status", "service", "after", "limit", NULL};
  if (!request_query_only(rq, allowed, bad))
    return false;
  const char *role = request_query(rq, "role");
  q->role = LIST_EITHER;
  if (role != NULL) {
    *bad = "role";
    if (strcmp(role, "principal") == 0)
      q->role = LIST_PRINCIPAL;
    else if (strcmp(role, "representative") == 0)
      q->role = LIST_REPRESENTATIVE;
    else
      return false;
  }
  q->effective_status = request_query(rq, "status");
  *bad = "status";
  if (q->effective_status != NULL && !status_filter_valid(q->effective_status))
    return false;
  q->service = request_query(rq, "service");
  *bad = "service";
  if (q->service != NULL && (q->service[0] == '\0' || strlen(q->service) > 64))
    return false;
  const char *after = request_query(rq, "after");
  *bad = "after";
  if (after != NULL && !cursor_decode(after, q))
    return false;
  const char *limit = request_query(rq, "limit");
  *bad = "limit";
  q->limit = LIST_DEFAULT_LIMIT;
  if (limit != NULL) {
    char *end;
    long v = strtol(limit, &end, 10);
    if (limit[0] == '\0' || *end != '\0' || v < 1 || v > LIST_MAX_LIMIT)
      return false;
    q->limit = (int)v;
  }
  *bad = NULL;
  return true;
}

enum MHD_Result mandates_list(struct request *rq) {
  struct mandate_list_query q = {.party = rq->who.party.id};
  const char *bad = NULL;
  if (!list_query_parse(rq, &q, &bad))
    return reply_problem(rq, ERR_INVALID_QUERY, NULL, bad);
  struct db *db = db_get();
  if (db == NULL)
    return reply_db_error(rq, DB_HARD_ERROR);
  int page = q.limit;
  q.limit = page + 1; /* one more tells whether there is a next page */
  PGresult *r;
  enum db_status st = db_mandates_list(db, &q, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return reply_db_error(rq, st);
  json_t *items = json_array();
  usec_t now = now_usec();
  int rows = PQntuples(r);
  struct mandate m;
  for (int i = 0; i < rows && i < page; i++) {
    mandate_from_row(r, i, &m);
    json_array_append_new(items, mandate_to_json(&m, now));
  }
  PQclear(r);
  json_t *next = json_null();
  if (rows > page) {
    char cursor[128];
    cursor_encode(&m, cursor, sizeof cursor);
    next = json_string(cursor);
  }
  return reply_json(rq, MHD_HTTP_OK, json_pack("{s:o, s:o}", "items", items, "next", next));
}
