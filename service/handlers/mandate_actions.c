/* POST /v1/mandates/{id}/accept | decline | revoke: state changes by a
 * party, guarded by If-Match and the domain's state machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/mandates_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "handlers/mandate_ops.h"
#include "http/json_spec.h"

struct action_ctx {
  const struct identity *who; /* NULL: an administrator */
  const char *admin_client;
  enum mandate_action action;
  const char *id;
  int expected_version;
  const char *reason;
  struct mandate m;
};

static struct tx_outcome outcome(enum db_status st, enum err err, const char *detail) {
  return (struct tx_outcome){st, err, NULL, detail};
}

static enum err transition_err(enum transition_result tr) {
  switch (tr) {
  case TR_FORBIDDEN:
    return ERR_ACTION_FORBIDDEN;
  case TR_CONFLICT:
    return ERR_STATE_CONFLICT;
  case TR_LAPSED:
    return ERR_REQUEST_LAPSED;
  case TR_OK:
    break;
  }
  return ERR_NONE;
}

/* Accepting makes a mandate active: a court-appointed mandate for the same
 * principal and service blocks that whoever accepts, and a principal who
 * accepts a request grants it, so their login must be strong enough. */
static struct tx_outcome accept_checks(struct db *db, struct action_ctx *c,
                                       enum mandate_role actor) {
  if (c->m.valid_until <= now_usec())
    return outcome(DB_OK, ERR_STATE_CONFLICT, "The period of this mandate has already ended.");
  enum db_status st =
      db_mandate_legal_exists(db, c->m.principal, c->m.service, c->m.valid_from, c->m.valid_until);
  if (st == DB_OK)
    return outcome(DB_OK, ERR_LEGAL_MANDATE_EXISTS, NULL);
  if (st != DB_NOT_FOUND)
    return outcome(st, ERR_NONE, NULL);
  if (actor != ROLE_PRINCIPAL)
    return outcome(DB_OK, ERR_NONE, NULL);
  struct service s;
  st = db_service_get(db, c->m.service, &s);
  if (st != DB_OK)
    return outcome(st == DB_NOT_FOUND ? DB_HARD_ERROR : st, ERR_NONE, NULL);
  if (c->who->loa < s.min_loa)
    return outcome(DB_OK, ERR_LOA_TOO_LOW, NULL);
  return outcome(DB_OK, ERR_NONE, NULL);
}

static struct tx_outcome action_tx(struct db *db, void *ctx) {
  struct action_ctx *c = ctx;
  bool admin = c->who == NULL;
  char admin_actor[80];
  snprintf(admin_actor, sizeof admin_actor, "admin:%s", admin ? c->admin_client : "");
  const char *caller = admin ? admin_actor : c->who->party.id;
  enum db_status st = db_mandate_get(db, c->id, admin ? NULL : caller, true, &c->m);
  if (st != DB_OK)
    return outcome(st, ERR_NONE, NULL);
  if (c->m.version != c->expected_version)
    return outcome(DB_OK, ERR_PRECONDITION_FAILED, NULL);
  enum mandate_role actor = admin                                 ? ROLE_ADMIN
                            : strcmp(c->m.principal, caller) == 0 ? ROLE_PRINCIPAL
                                                                  : ROLE_REPRESENTATIVE;
  /* A court-appointed mandate ends only through the court's register. */
  if (!admin && mandate_kind_is_legal(c->m.kind))
    return outcome(DB_OK, ERR_ACTION_FORBIDDEN,
                   "Only the court's register can change this mandate.");
  /* Expired and lapsed mandates have already ended: nothing to revoke,
   * suspend or resume (accepting a lapsed request is the domain's
   * request-lapsed). */
  usec_t now = now_usec();
  bool ended =
      ((c->m.status == MS_ACTIVE || c->m.status == MS_SUSPENDED) && c->m.valid_until <= now) ||
      (c->m.status == MS_PENDING && c->m.created_at + MANDATE_REQUEST_LAPSE_USEC <= now);
  if (ended && (c->action == MA_REVOKE || c->action == MA_SUSPEND || c->action == MA_RESUME))
    return outcome(DB_OK, ERR_STATE_CONFLICT, "This mandate has already ended.");
  enum mandate_status next;
  enum transition_result tr = mandate_transition(c->m.status, c->m.initiated_by, actor, c->action,
                                                 c->m.created_at, now, &next);
  if (tr != TR_OK)
    return outcome(DB_OK, transition_err(tr), NULL);
  if (c->action == MA_ACCEPT) {
    struct tx_outcome out = accept_checks(db, c, actor);
    if (out.st != DB_OK || out.err != ERR_NONE)
      return out;
  }
  st = db_mandate_set_status(db, c->id, next, c->reason, &c->m);
  if (st == DB_CONFLICT)
    return outcome(DB_OK, ERR_MANDATE_OVERLAP, NULL);
  if (st != DB_OK)
    return outcome(st, ERR_NONE, NULL);
  static const char *const events[] = {
      [MA_ACCEPT] = "mandate_accepted", [MA_DECLINE] = "mandate_declined",
      [MA_REVOKE] = "mandate_revoked",  [MA_SUSPEND] = "mandate_suspended",
      [MA_RESUME] = "mandate_resumed",
  };
  const char *event = events[c->action];
  json_t *detail = json_pack("{s:s?}", "reason", c->reason);
  char *detail_text = json_dumps(detail, JSON_COMPACT);
  json_decref(detail);
  struct audit_event e = {
      .event = event,
      .mandate_id = c->m.id,
      .principal = c->m.principal,
      .actor = caller,
      .actor_employee = admin ? NULL : c->who->employee,
      .service = c->m.service,
      .detail_json = detail_text,
  };
  st = db_audit(db, &e);
  free(detail_text);
  return outcome(st, ERR_NONE, NULL);
}

/* If-Match: "N" or W/"N" (the ETag we sent).  -1 when unusable. */
static int if_match_version(const char *h) {
  if (strncmp(h, "W/", 2) == 0)
    h += 2;
  size_t len = strlen(h);
  if (len < 3 || len > 12 || h[0] != '"' || h[len - 1] != '"')
    return -1;
  int v = 0;
  for (size_t i = 1; i + 1 < len; i++) {
    if (h[i] < '0' || h[i] > '9')
      return -1;
    v = v * 10 + (h[i] - '0');
  }
  return v;
}

bool mandate_act(const struct identity *who, const char *admin_client, const char *id,
                 enum mandate_action action, int expected_version, const char *reason,
                 struct mandate *m, struct tx_outcome *fail) {
  struct action_ctx c = {.who = who,
                         .admin_client = admin_client,
                         .action = action,
                         .id = id,
                         .expected_version = expected_version,
                         .reason = reason};
  if (!uuid_valid(id)) {
    *fail = outcome(DB_NOT_FOUND, ERR_NONE, NULL);
    return false;
  }
  if (!tx_run(action_tx, &c, fail))
    return false;
  *m = c.m;
  return true;
}

static enum MHD_Result mandate_action(struct request *rq, enum mandate_action action) {
  const char *reason = NULL;
  if (!uuid_valid(rq->params[0]))
    return reply_problem(rq, ERR_MANDATE_NOT_FOUND, NULL, NULL);
  if (rq->json != NULL) {
    const struct json_field spec[] = {
        {"reason", SPEC_STRING, &reason, false, 500, NULL},
        JSON_FIELD_END,
    };
    struct spec_error e;
    if (!json_spec_parse(rq->json, spec, &e))
      return reply_problem(rq, e.err, NULL, e.field);
  }
  const char *if_match = request_header(rq, MHD_HTTP_HEADER_IF_MATCH);
  if (if_match == NULL)
    return reply_problem(rq, ERR_PRECONDITION_REQUIRED, NULL, NULL);
  int version = if_match_version(if_match);
  if (version < 0)
    return reply_problem(rq, ERR_PRECONDITION_FAILED, NULL, NULL);
  bool admin = rq->route->auth == AUTH_ADMIN;
  struct mandate m;
  struct tx_outcome fail;
  if (!mandate_act(admin ? NULL : &rq->who, admin ? rq->client.id : NULL, rq->params[0], action,
                   version, reason, &m, &fail))
    return fail.err != ERR_NONE ? reply_problem(rq, fail.err, fail.detail, fail.field)
                                : reply_db_error(rq, fail.st);
  return reply_mandate(rq, MHD_HTTP_OK, &m);
}

enum MHD_Result mandates_accept(struct request *rq) { return mandate_action(rq, MA_ACCEPT); }
enum MHD_Result mandates_decline(struct request *rq) { return mandate_action(rq, MA_DECLINE); }
enum MHD_Result mandates_revoke(struct request *rq) { return mandate_action(rq, MA_REVOKE); }
enum MHD_Result admin_mandates_suspend(struct request *rq) {
  return mandate_action(rq, MA_SUSPEND);
}
enum MHD_Result admin_mandates_resume(struct request *rq) { return mandate_action(rq, MA_RESUME); }
