/* POST /v1/admin/clients: register a portal (or admin) client.  The secret
 * is generated here, shown once in the answer, and stored only hashed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/clients_db.h"
#include "db/mandates_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "http/json_spec.h"
#include "jose/jws.h"

/* Builds the array literal {a,b} of known service codes. */
static enum err services_literal(struct db *db, const json_t *services, char *out, size_t len,
                                 enum db_status *st) {
  size_t used = (size_t)snprintf(out, len, "{");
  size_t i;
  const json_t *code;
  json_array_foreach(services, i, code) {
    const char *c = json_string_value(code);
    if (c == NULL || strlen(c) > 63)
      return ERR_WRONG_TYPE;
    struct service s;
    *st = db_service_get(db, c, &s);
    if (*st == DB_NOT_FOUND)
      return ERR_UNKNOWN_SERVICE;
    if (*st != DB_OK)
      return ERR_SERVICE_UNAVAILABLE;
    if (used + strlen(c) + 3 >= len)
      return ERR_PAYLOAD_TOO_LARGE;
    used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", c);
  }
  snprintf(out + used, len - used, "}");
  return ERR_NONE;
}

/* A public EC P-256 or RSA JWK with a kid, for private_key_jwt. */
static bool jwk_usable(const json_t *jwk) {
  if (json_object_get(jwk, "d") != NULL || !json_is_string(json_object_get(jwk, "kid")))
    return false;
  json_t *set = json_pack("{s:[O]}", "keys", jwk);
  char *text = json_dumps(set, JSON_COMPACT);
  json_decref(set);
  char err[128];
  struct jose_keyset *ks = text ? jose_keyset_from_jwks(text, strlen(text), err, sizeof err) : NULL;
  bool ok = ks != NULL && jose_keyset_size(ks) == 1;
  if (ks != NULL)
    jose_keyset_unref(ks);
  free(text);
  return ok;
}

enum MHD_Result admin_clients_create(struct request *rq) {
  const char *name = NULL, *role = "portal", *audience = NULL;
  const json_t *services = NULL, *jwk = NULL;
  const struct json_field spec[] = {
      {"name", SPEC_STRING, &name, true, 200, NULL},
      {"role", SPEC_STRING, &role, false, 16, NULL},
      {"audience", SPEC_STRING, &audience, false, 255, NULL},
      {"services", SPEC_ARRAY, &services, false, 0, NULL},
      {"jwk", SPEC_OBJECT, &jwk, false, 0, NULL},
      JSON_FIELD_END,
  };
  struct spec_error e;
  if (!json_spec_parse(rq->json, spec, &e))
    return reply_problem(rq, e.err, NULL, e.field);
  if (strcmp(role, "portal") != 0 && strcmp(role, "admin") != 0)
    return reply_problem(rq, ERR_WRONG_TYPE, "role is portal or admin.", "role");
  if (strcmp(role, "portal") == 0 && (audience == NULL || audience[0] == '\0'))
    return reply_problem(rq, ERR_MISSING_FIELD, "A portal needs an audience.", "audience");
  if (jwk != NULL && !jwk_usable(jwk))
    return reply_problem(rq, ERR_WRONG_TYPE, "jwk must be a public EC P-256 or RSA key with a kid.",
                         "jwk");
  struct db *db = db_get();
  if (db == NULL)
    return reply_db_error(rq, DB_HARD_ERROR);
  char literal[4096] = "{}";
  enum db_status st = DB_OK;
  if (services != NULL) {
    enum err err = services_literal(db, services, literal, sizeof literal, &st);
    if (err != ERR_NONE)
      return reply_problem(rq, err, NULL, "services");
  }
  char id[CLIENT_ID_LEN + 1], secret[CLIENT_SECRET_LEN + 1], hash[65];
  if (!client_new_credentials(id, secret) || !client_secret_hash_hex(secret, hash))
    return reply_problem(rq, ERR_INTERNAL_ERROR, NULL, NULL);
  char *jwk_text = jwk ? json_dumps(jwk, JSON_COMPACT) : NULL;
  st = db_client_insert(db, id, name, role, hash, audience, literal, jwk_text);
  free(jwk_text);
  if (st != DB_OK)
    return reply_db_error(rq, st == DB_CONFLICT ? DB_HARD_ERROR : st);
  json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:o}", "client_id", id, "client_secret",
                           secret, "name", name, "role", role, "audience", audience, "services",
                           services ? json_deep_copy(services) : json_array());
  return reply_json(rq, MHD_HTTP_CREATED, body);
}
