/* POST /oauth2/introspect (RFC 7662): active only while the signature,
 * the lifetime and the mandate itself all still hold, so a revocation,
 * suspension or end of the mandate bites at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "db/tokens_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"
#include "jose/jws.h"
#include "tokens/liveness.h"
#include "tokens/signer.h"

/* Portals introspect the same token on every request they serve; the
 * signature of a token we issued does not change, so verified claims are
 * remembered by the token's SHA-256 for as long as the key file is
 * unchanged and the token unexpired.  Everything that can change (the
 * mandate, the token's lifetime, the asking client) is checked on every
 * call. */
#define VERIFIED_SETS 2048
#define VERIFIED_WAYS 4

struct verified {
  unsigned char digest[32];
  unsigned long generation;
  uint64_t used;
  json_t *claims; /* never modified once here */
  char *answer;   /* the active answer's JSON text, built once */
  int64_t exp;
};

static struct {
  pthread_mutex_t lock;
  uint64_t clock;
  struct verified slot[VERIFIED_SETS][VERIFIED_WAYS];
} verified = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct verified *verified_set(const unsigned char digest[32]) {
  return verified.slot[((unsigned)digest[0] | (unsigned)digest[1] << 8) % VERIFIED_SETS];
}

/* The cached claims (a new reference) and a copy of the active answer. */
static json_t *verified_get(const unsigned char digest[32], unsigned long generation, int64_t now,
                            char **answer) {
  json_t *claims = NULL;
  pthread_mutex_lock(&verified.lock);
  struct verified *set = verified_set(digest);
  for (int w = 0; w < VERIFIED_WAYS && claims == NULL; w++) {
    struct verified *v = &set[w];
    if (v->claims != NULL && v->generation == generation && v->exp > now &&
        memcmp(v->digest, digest, 32) == 0) {
      claims = json_incref(v->claims);
      *answer = strdup(v->answer);
      v->used = ++verified.clock;
    }
  }
  pthread_mutex_unlock(&verified.lock);
  return claims;
}

static char *active_answer(json_t *claims) {
  json_t *answer = json_copy(claims);
  json_object_set_new(answer, "active", json_true());
  json_object_set_new(answer, "token_type", json_string("Bearer"));
  char *text = json_dumps(answer, JSON_COMPACT);
  json_decref(answer);
  return text;
}

static void verified_put(const unsigned char digest[32], unsigned long generation, json_t *claims) {
  char *answer = active_answer(claims);
  if (answer == NULL)
    return;
  pthread_mutex_lock(&verified.lock);
  struct verified *set = verified_set(digest), *victim = &set[0];
  for (int w = 1; w < VERIFIED_WAYS; w++)
    if (set[w].used < victim->used)
      victim = &set[w];
  json_t *old = victim->claims;
  char *old_answer = victim->answer;
  victim->answer = answer;
  memcpy(victim->digest, digest, 32);
  victim->generation = generation;
  victim->used = ++verified.clock;
  victim->exp = json_integer_value(json_object_get(claims, "exp"));
  victim->claims = json_incref(claims);
  pthread_mutex_unlock(&verified.lock);
  json_decref(old);
  free(old_answer);
}

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

enum MHD_Result oauth_introspect(struct request *rq) {
  const char *token = form_get(&rq->form, "token");
  if (token == NULL || token[0] == '\0')
    return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_request", "token is missing.");
  if (rq->client.role != CLIENT_PORTAL)
    return inactive(rq);
  unsigned long generation;
  struct jose_keyset *keys = signer_verify_keys(&generation);
  if (keys == NULL)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  usec_t now = now_usec();
  size_t len = strlen(token);
  unsigned char digest[32];
  EVP_Digest(token, len, digest, NULL, EVP_sha256(), NULL);
  char *answer = NULL;
  json_t *claims =
      len <= JWS_MAX_TOKEN ? verified_get(digest, generation, now / USEC_PER_SEC, &answer) : NULL;
  enum jws_status js = JWS_OK;
  if (claims == NULL) {
    js = jws_verify(keys, token, len, &claims);
    if (js == JWS_OK)
      verified_put(digest, generation, claims);
  }
  jose_keyset_unref(keys);
  if (js != JWS_OK || !claims_live(rq, claims, now / USEC_PER_SEC)) {
    json_decref(claims);
    free(answer);
    return inactive(rq);
  }
  const char *id = json_string_value(json_object_get(json_object_get(claims, "mandate"), "id"));
  /* A token for acting as oneself (the "myself" choice at /oauth2/authorize)
   * names no mandate and no actor: nothing to revoke, its lifetime rules. */
  bool self = json_object_get(claims, "mandate") == NULL && json_object_get(claims, "act") == NULL;
  bool live = self;
  bool db_down = id != NULL && uuid_valid(id) && mandate_live_now(id, now, &live) != DB_OK;
  if (live && answer == NULL)
    answer = active_answer(claims);
  json_decref(claims);
  if (db_down || (live && answer == NULL)) {
    free(answer);
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  }
  if (!live) {
    free(answer);
    return inactive(rq);
  }
  /* A repeated token's answer was serialised once, when it was cached. */
  enum MHD_Result ret = reply_text(rq, MHD_HTTP_OK, "application/json", answer);
  free(answer);
  return ret;
}
