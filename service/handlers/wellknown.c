/* Published metadata: our keys and RFC 8414 server metadata. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "handlers/handlers.h"
#include "tokens/signer.h"

enum MHD_Result wellknown_jwks(struct request *rq) {
  char *jwks = signer_jwks_json();
  if (jwks == NULL)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
  /* Short caching: a rotated key must reach portals well within the
   * retired key's remaining publication time. */
  enum MHD_Result ret = reply_cached(rq, "application/jwk-set+json", jwks, 300);
  free(jwks);
  return ret;
}

enum MHD_Result wellknown_metadata(struct request *rq) {
  char url[4][512];
  snprintf(url[0], sizeof url[0], "%s/oauth2/token", config.public_url);
  snprintf(url[1], sizeof url[1], "%s/oauth2/introspect", config.public_url);
  snprintf(url[2], sizeof url[2], "%s/.well-known/jwks.json", config.public_url);
  snprintf(url[3], sizeof url[3], "%s/oauth2/authorize", config.public_url);
  json_t *doc = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s, s], s:[s, s], s:[s], s:[s, s], s:[s], s:[s]}",
      "issuer", config.public_url, "authorization_endpoint", url[3], "token_endpoint", url[0],
      "introspection_endpoint", url[1], "jwks_uri", url[2], "response_types_supported", "code",
      "code_challenge_methods_supported", "S256", "grant_types_supported",
      "urn:ietf:params:oauth:grant-type:token-exchange", "authorization_code",
      "token_endpoint_auth_methods_supported", "client_secret_basic", "private_key_jwt",
      "token_endpoint_auth_signing_alg_values_supported", "ES256",
      "introspection_endpoint_auth_methods_supported", "client_secret_basic", "private_key_jwt",
      "introspection_endpoint_auth_signing_alg_values_supported", "ES256",
      "access_token_signing_alg_values_supported", "ES256");
  char *text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  enum MHD_Result ret = reply_cached(rq, "application/json", text, 3600);
  free(text);
  return ret;
}
