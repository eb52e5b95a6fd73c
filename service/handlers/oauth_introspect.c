/* POST /oauth2/introspect (RFC 7662): active only while the signature,
 * the lifetime and the mandate itself all still hold, so a revocation,
 * suspension or end of the mandate bites at once. */
#include <string.h>

#include "config.h"
#include "db/tokens_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "jose/jws.h"
#include "tokens/signer.h"

static enum MHD_Result inactive(struct request *rq) {
  return reply_json(rq, MHD_HTTP_OK, json_pack("{s:b}", "active", 0));
}

static bool claim_is(json_t *claims, const char *name, const char *want) {
  const char *v = json_string_value(json_object_get(claims, name));
  return v != NULL && strcmp(v, want) == 0;
}

/* Our own token: our issuer, this client's audience, within its life. */
static bool claims_live(struct request *rq, json_t *claims, int64_t now) {
  json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
  return claim_is(claims, "iss", config.public_url) &&
         claim_is(claims, "aud", rq->client.audience) && json_is_integer(exp) &&
         json_integer_value(exp) > now &&
         (!json_is_integer(nbf) || json_integer_value(nbf) <= now + TOKEN_LEEWAY);
}

static bool mandate_live(struct db *db, json_t *claims, usec_t now, bool *db_down) {
  const char *id = json_string_value(json_object_get(json_object_get(claims, "mandate"), "id"));
  if (id == NULL || !uuid_valid(id))
    return false;
  enum mandate_status status;
  usec_t from, until;
  enum db_status st = db_mandate_state(db, id, &status, &from, &until);
  *db_down = st != DB_OK && st != DB_NOT_FOUND;
  return st == DB_OK && status == MS_ACTIVE && from <= now && until > now;
}

enum MHD_Result oauth_introspect(struct request *rq) {
  const char *token = form_get(&rq->form, "token");
  if (token == NULL || token[0] == '\0')
    return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_request", "token is missing.");
  if (rq->client.role != CLIENT_PORTAL)
    return inactive(rq);
  struct jose_keyset *keys = signer_verify_keys();
  if (keys == NULL)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  json_t *claims = NULL;
  enum jws_status js = jws_verify(keys, token, strlen(token), &claims);
  jose_keyset_unref(keys);
  usec_t now = now_usec();
  if (js != JWS_OK || !claims_live(rq, claims, now / USEC_PER_SEC)) {
    json_decref(claims);
    return inactive(rq);
  }
  struct db *db = db_get();
  bool db_down = db == NULL;
  bool live = db != NULL && mandate_live(db, claims, now, &db_down);
  if (db_down) {
    json_decref(claims);
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  }
  if (!live) {
    json_decref(claims);
    return inactive(rq);
  }
  json_object_set_new(claims, "active", json_true());
  json_object_set_new(claims, "token_type", json_string("Bearer"));
  return reply_json(rq, MHD_HTTP_OK, claims);
}
