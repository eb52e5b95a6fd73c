#include "auth/oidc_rp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/http_fetch.h"
#include "config.h"
#include "jose/jws.h"
#include "log.h"

#define RP_MAX_BODY (64 * 1024)
#define DISCOVERY_RETRY_SECONDS 1

static struct {
  pthread_mutex_t lock;
  char *authorization_endpoint;
  char *token_endpoint;
  time_t last_attempt;
} rp = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* GET (form NULL) or POST a form; the JSON object of a 200 answer, or
 * NULL with a static *why. */
static json_t *http_json(const char *url, const char *form, const char *basic_user,
                         const char *basic_password, const char **why) {
  struct http_body b;
  *why = http_fetch(url, form, basic_user, basic_password, RP_MAX_BODY, &b);
  json_t *doc = *why ? NULL : json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
  free(b.data);
  if (*why == NULL && !json_is_object(doc)) {
    *why = "answer is not a JSON object";
    json_decref(doc);
    doc = NULL;
  }
  return doc;
}

/* An endpoint may be plain http only when the issuer is. */
static bool endpoint_ok(json_t *v) {
  if (!json_is_string(v))
    return false;
  const char *u = json_string_value(v);
  if (strncmp(u, "https://", 8) == 0)
    return true;
  return strncmp(u, "http://", 7) == 0 && strncmp(config.idp_issuer, "http://", 7) == 0;
}

/* Discovery once; again after a failure (at most once a second). */
static bool endpoints(char *authz, size_t alen, char *token, size_t tlen) {
  pthread_mutex_lock(&rp.lock);
  if (rp.token_endpoint == NULL && time(NULL) - rp.last_attempt >= DISCOVERY_RETRY_SECONDS) {
    rp.last_attempt = time(NULL);
    char url[600];
    size_t n = strlen(config.idp_issuer);
    snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration",
             (int)(n > 0 && config.idp_issuer[n - 1] == '/' ? n - 1 : n), config.idp_issuer);
    const char *why = NULL;
    json_t *doc = http_json(url, NULL, NULL, NULL, &why);
    json_t *iss = json_object_get(doc, "issuer");
    json_t *a = json_object_get(doc, "authorization_endpoint");
    json_t *t = json_object_get(doc, "token_endpoint");
    if (doc != NULL &&
        (!json_is_string(iss) || strcmp(json_string_value(iss), config.idp_issuer) != 0))
      why = "discovery issuer does not match";
    else if (doc != NULL && (!endpoint_ok(a) || !endpoint_ok(t)))
      why = "discovery lacks usable endpoints";
    if (why == NULL) {
      rp.authorization_endpoint = strdup(json_string_value(a));
      rp.token_endpoint = strdup(json_string_value(t));
    } else {
      log_msg(LOG_WARN, "login provider discovery failed: %s", why);
    }
    json_decref(doc);
  }
  bool ok = rp.token_endpoint != NULL && rp.authorization_endpoint != NULL;
  if (ok) {
    snprintf(authz, alen, "%s", rp.authorization_endpoint);
    snprintf(token, tlen, "%s", rp.token_endpoint);
  }
  pthread_mutex_unlock(&rp.lock);
  return ok;
}

static void url_escape_into(char *out, size_t len, const char *s) {
  size_t o = strlen(out);
  for (; *s && o + 4 < len; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~", c))
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
  }
  out[o] = '\0';
}

static const char *client_id(void) {
  return config.idp_client_id != NULL ? config.idp_client_id : config.idp_audience;
}

static void redirect_uri(char *out, size_t len) {
  snprintf(out, len, "%s/login/callback", config.public_url);
}

bool oidc_authorize_url(const char *state, const char *nonce, const char *verifier, char *url,
                        size_t len) {
  char authz[512], token[512], cb[400];
  if (!endpoints(authz, sizeof authz, token, sizeof token))
    return false;
  unsigned char digest[32];
  char challenge[64];
  EVP_Digest(verifier, strlen(verifier), digest, NULL, EVP_sha256(), NULL);
  b64url_encode(digest, sizeof digest, challenge, sizeof challenge);
  redirect_uri(cb, sizeof cb);
  snprintf(url, len, "%s%sresponse_type=code&scope=openid&client_id=", authz,
           strchr(authz, '?') ? "&" : "?");
  url_escape_into(url, len, client_id());
  strncat(url, "&redirect_uri=", len - strlen(url) - 1);
  url_escape_into(url, len, cb);
  strncat(url, "&state=", len - strlen(url) - 1);
  url_escape_into(url, len, state);
  strncat(url, "&nonce=", len - strlen(url) - 1);
  url_escape_into(url, len, nonce);
  strncat(url, "&code_challenge_method=S256&code_challenge=", len - strlen(url) - 1);
  url_escape_into(url, len, challenge);
  return strlen(url) + 8 < len;
}

bool oidc_nonce_matches(const char *id_token, const char *nonce) {
  const char *dot1 = strchr(id_token, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (dot2 == NULL || nonce == NULL || nonce[0] == '\0')
    return false;
  size_t n = (size_t)(dot2 - dot1 - 1);
  unsigned char *payload = malloc(n + 1);
  if (payload == NULL)
    return false;
  long plen = b64url_decode(dot1 + 1, n, payload, n + 1);
  json_t *claims =
      plen > 0 ? json_loadb((const char *)payload, (size_t)plen, JSON_REJECT_DUPLICATES, NULL)
               : NULL;
  free(payload);
  json_t *v = json_object_get(claims, "nonce");
  bool ok = json_is_string(v) && json_string_length(v) == strlen(nonce) &&
            CRYPTO_memcmp(json_string_value(v), nonce, strlen(nonce)) == 0;
  json_decref(claims);
  return ok;
}

/* The optional display name from the (verified) token. */
static void name_claim(const char *id_token, char *name, size_t namelen) {
  name[0] = '\0';
  const char *dot1 = strchr(id_token, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (dot2 == NULL)
    return;
  size_t n = (size_t)(dot2 - dot1 - 1);
  unsigned char *payload = malloc(n + 1);
  if (payload == NULL)
    return;
  long plen = b64url_decode(dot1 + 1, n, payload, n + 1);
  json_t *claims = plen > 0 ? json_loadb((const char *)payload, (size_t)plen, 0, NULL) : NULL;
  free(payload);
  json_t *v = json_object_get(claims, "name");
  if (json_is_string(v) && json_string_length(v) < namelen)
    snprintf(name, namelen, "%s", json_string_value(v));
  json_decref(claims);
}

enum identity_status oidc_redeem(const char *code, const char *verifier, const char *nonce,
                                 struct identity *who, char *name, size_t namelen,
                                 const char **reason) {
  char authz[512], token_url[512], cb[400];
  *reason = NULL;
  if (!endpoints(authz, sizeof authz, token_url, sizeof token_url)) {
    *reason = "login provider discovery failed";
    return IDENT_UNAVAILABLE;
  }
  redirect_uri(cb, sizeof cb);
  char form[3072] = "grant_type=authorization_code&code=";
  url_escape_into(form, sizeof form, code);
  strncat(form, "&redirect_uri=", sizeof form - strlen(form) - 1);
  url_escape_into(form, sizeof form, cb);
  strncat(form, "&code_verifier=", sizeof form - strlen(form) - 1);
  url_escape_into(form, sizeof form, verifier);
  bool basic = config.idp_client_secret != NULL;
  if (!basic) { /* a public client names itself in the form */
    strncat(form, "&client_id=", sizeof form - strlen(form) - 1);
    url_escape_into(form, sizeof form, client_id());
  }
  const char *why = NULL;
  json_t *answer = http_json(token_url, form, basic ? client_id() : NULL,
                             basic ? config.idp_client_secret : NULL, &why);
  json_t *idt = json_object_get(answer, "id_token");
  if (answer == NULL || !json_is_string(idt)) {
    log_msg(LOG_WARN, "login code redemption failed: %s", why ? why : "no id_token");
    json_decref(answer);
    *reason = "code redemption failed";
    return IDENT_INVALID;
  }
  const char *id_token = json_string_value(idt);
  enum identity_status st = identity_verify(id_token, json_string_length(idt), who, reason);
  if (st == IDENT_OK && !oidc_nonce_matches(id_token, nonce)) {
    *reason = "nonce does not match";
    st = IDENT_INVALID;
  }
  if (st == IDENT_OK)
    name_claim(id_token, name, namelen);
  json_decref(answer);
  return st;
}

void oidc_shutdown(void) {
  pthread_mutex_lock(&rp.lock);
  free(rp.authorization_endpoint);
  free(rp.token_endpoint);
  rp.authorization_endpoint = rp.token_endpoint = NULL;
  pthread_mutex_unlock(&rp.lock);
}
