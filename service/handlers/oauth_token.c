/* POST /oauth2/token: RFC 8693 token exchange.  A portal, authenticated as
 * an OAuth client, swaps a representative's identity token for a short
 * mandate token naming principal, representative, service and mandate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "config.h"
#include "db/mandates_db.h"
#include "db/tokens_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "handlers/oauth_issue.h"
#include "jose/jws.h"
#include "log.h"
#include "tokens/issuer.h"
#include "tokens/signer.h"

#define GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define TYPE_JWT "urn:ietf:params:oauth:token-type:jwt"
#define TYPE_ACCESS_TOKEN "urn:ietf:params:oauth:token-type:access_token"

static enum MHD_Result bad_request(struct request *rq, const char *error, const char *why) {
  return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, error, why);
}

/* What a portal hears when the mandate cannot be used now. */
static const char *use_description(enum mandate_use use) {
  switch (use) {
  case MU_PENDING:
    return "The mandate has not been accepted yet.";
  case MU_LAPSED:
    return "The mandate request lapsed without being accepted.";
  case MU_DECLINED:
    return "The mandate was declined.";
  case MU_REVOKED:
    return "The mandate has been revoked.";
  case MU_SUSPENDED:
    return "The mandate is suspended.";
  case MU_NOT_STARTED:
    return "The mandate has not started yet.";
  case MU_ENDED:
  case MU_USABLE:
    break;
  }
  return "The mandate has ended.";
}

static json_t *actor_claim(const struct identity *who) {
  if (who->employee[0] == '\0')
    return json_pack("{s:s}", "sub", who->party.id);
  return json_pack("{s:s, s:{s:s}}", "sub", who->employee, "act", "sub", who->party.id);
}

static void new_jti(char *out, size_t len) {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  b64url_encode(raw, sizeof raw, out, len);
}

/* Finds the mandate and records the token in the audit trail (both in the
 * issuer's group commit), then signs it; or says precisely why not. */
enum MHD_Result oauth_issue(struct request *rq, const char *principal, const char *service) {
  char jti[32];
  new_jti(jti, sizeof jti);
  struct token_record tr = {
      .principal = principal,
      .representative = rq->who.party.id,
      .employee = rq->who.employee,
      .service = service,
      .client = rq->client.id,
      .jti = jti,
      .now = now_usec(),
  };
  issuer_record(&tr);
  if (tr.st != DB_OK)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  if (!tr.found)
    return bad_request(
        rq, "invalid_grant",
        "There is no mandate from this principal to this representative for this service.");
  if (tr.use != MU_USABLE)
    return bad_request(rq, "invalid_grant", use_description(tr.use));
  const struct token_mandate m = tr.m;
  int64_t now = tr.now / USEC_PER_SEC, exp = tr.exp;
  json_t *claims =
      json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:{s:s, s:s, s:I}, s:s, s:I, s:I, s:I}", "iss",
                config.public_url, "aud", rq->client.audience, "client_id", rq->client.id, "sub",
                principal, "act", actor_claim(&rq->who), "scope", service, "acr",
                loa_name(rq->who.loa), "mandate", "id", m.id, "kind", mandate_kind_name(m.kind),
                "valid_until", (json_int_t)(m.valid_until / USEC_PER_SEC), "jti", jti, "iat",
                (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)exp);
  char *token = signer_sign(claims, "at+jwt");
  json_decref(claims);
  if (token == NULL)
    return reply_oauth_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL);
  json_t *body =
      json_pack("{s:s, s:s, s:s, s:I}", "access_token", token, "issued_token_type",
                TYPE_ACCESS_TOKEN, "token_type", "Bearer", "expires_in", (json_int_t)(exp - now));
  free(token);
  return reply_json(rq, MHD_HTTP_OK, body);
}

enum MHD_Result oauth_token(struct request *rq) {
  const struct form *f = &rq->form;
  const char *grant = form_get(f, "grant_type");
  if (grant == NULL)
    return bad_request(rq, "invalid_request", "grant_type is missing.");
  if (strcmp(grant, "authorization_code") == 0)
    return oauth_code_grant(rq);
  if (strcmp(grant, GRANT_TOKEN_EXCHANGE) != 0)
    return bad_request(rq, "unsupported_grant_type",
                       "Only token exchange (RFC 8693) and authorization_code are supported.");
  if (rq->client.role != CLIENT_PORTAL)
    return bad_request(rq, "unauthorized_client", "Only portal clients may exchange tokens.");
  const char *subject = form_get(f, "subject_token");
  const char *subject_type = form_get(f, "subject_token_type");
  const char *requested = form_get(f, "requested_subject");
  const char *scope = form_get(f, "scope");
  const char *requested_type = form_get(f, "requested_token_type");
  if (subject == NULL || subject[0] == '\0')
    return bad_request(rq, "invalid_request", "subject_token is missing.");
  if (subject_type == NULL ||
      (strcmp(subject_type, TYPE_ID_TOKEN) != 0 && strcmp(subject_type, TYPE_JWT) != 0))
    return bad_request(rq, "invalid_request", "subject_token_type must be " TYPE_ID_TOKEN ".");
  if (requested_type != NULL && strcmp(requested_type, TYPE_ACCESS_TOKEN) != 0)
    return bad_request(rq, "invalid_request",
                       "requested_token_type must be " TYPE_ACCESS_TOKEN ".");
  struct party principal;
  if (requested == NULL)
    return bad_request(rq, "invalid_request",
                       "requested_subject (the principal, bsn:...) is missing.");
  if (party_parse(requested, &principal) != PARTY_OK || principal.kind != PARTY_PERSON)
    return bad_request(rq, "invalid_request", "requested_subject must be a valid bsn:123456782.");
  if (scope == NULL || scope[0] == '\0' || strchr(scope, ' ') != NULL || strlen(scope) > 63)
    return bad_request(rq, "invalid_scope", "scope must be exactly one service code.");

  const char *reason = NULL;
  switch (identity_verify(subject, strlen(subject), &rq->who, &reason)) {
  case IDENT_OK:
    break;
  case IDENT_UNAVAILABLE:
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  case IDENT_EXPIRED:
    return bad_request(rq, "invalid_request", "subject_token has expired.");
  case IDENT_INVALID:
    log_msg(LOG_INFO, "subject token refused: %s", reason ? reason : "invalid");
    return bad_request(rq, "invalid_request", "subject_token is not a valid identity token.");
  }
  log_pseudonym(rq->who.party.id, rq->actor_pseudonym, sizeof rq->actor_pseudonym);

  struct db *db = db_get();
  if (db == NULL)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  struct service s;
  enum db_status st = db_service_get_cached(db, scope, &s);
  if (st == DB_NOT_FOUND || (st == DB_OK && !client_may_use_service(&rq->client, scope)))
    return bad_request(rq, "invalid_scope", "This client may not request tokens for this service.");
  if (st != DB_OK)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  if (rq->who.loa < s.min_loa)
    return bad_request(
        rq, "invalid_grant",
        "The representative's level of assurance is below what this service requires.");
  return oauth_issue(rq, principal.id, scope);
}
