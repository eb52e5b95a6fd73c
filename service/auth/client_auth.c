#include "auth/client_auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "http/form.h"
#include "jose/jws.h"

#define ASSERTION_MAX_LIFETIME 300 /* seconds; longer assertions are refused */

/* Client row -> struct client; stored secret hash into hash (32 bytes,
 * has_hash false when the client only has a JWK) and the JWK text. */
struct client_row {
  struct client c;
  unsigned char hash[32];
  bool has_hash;
  char *jwk; /* malloc'ed or NULL */
};

static enum db_status client_load(struct db *db, const char *id, struct client_row *row) {
  memset(row, 0, sizeof *row);
  if (strlen(id) >= sizeof row->c.id)
    return DB_NOT_FOUND;
  const char *params[] = {id};
  PGresult *r;
  enum db_status st = db_run(db, STMT_CLIENT_GET, 1, params, &r);
  if (st != DB_OK) {
    PQclear(r);
    return st;
  }
  snprintf(row->c.id, sizeof row->c.id, "%s", db_text(r, 0, 0));
  row->c.role = strcmp(db_text(r, 0, 1), "admin") == 0 ? CLIENT_ADMIN : CLIENT_PORTAL;
  const char *hex = db_text(r, 0, 2);
  if (hex != NULL && strlen(hex) == 64) {
    row->has_hash = true;
    for (int i = 0; i < 32; i++)
      row->hash[i] = (unsigned char)(form_hexval(hex[2 * i]) * 16 + form_hexval(hex[2 * i + 1]));
  }
  if (db_text(r, 0, 3) != NULL)
    row->jwk = strdup(db_text(r, 0, 3));
  snprintf(row->c.audience, sizeof row->c.audience, "%s", db_text(r, 0, 4) ? db_text(r, 0, 4) : "");
  json_t *services = json_loads(db_text(r, 0, 5), 0, NULL);
  size_t i;
  json_t *s;
  json_array_foreach(services, i, s) {
    if (row->c.service_count < CLIENT_MAX_SERVICES && json_is_string(s))
      snprintf(row->c.services[row->c.service_count++], 64, "%s", json_string_value(s));
  }
  json_decref(services);
  PQclear(r);
  return DB_OK;
}

/* Clients change rarely and are asked for thousands of times a second:
 * each server thread keeps the rows (and a client's parsed public key) it
 * used lately for a few seconds, so a disabled client or a new key takes
 * effect within CLIENT_CACHE_TTL. */
#define CLIENT_CACHE_SLOTS 32
#define CLIENT_CACHE_TTL_MS 10000

struct cached_client {
  struct client_row row;
  struct jose_keyset *keys; /* from row.jwk, parsed once */
  int64_t loaded_ms;
  bool used;
};

static __thread struct cached_client cache[CLIENT_CACHE_SLOTS];

static void slot_clear(struct cached_client *slot);

/* Empties a thread's cache when the thread ends. */
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void cache_thread_end(void *slots) {
  struct cached_client *c = slots;
  for (int i = 0; i < CLIENT_CACHE_SLOTS; i++)
    slot_clear(&c[i]);
}

static void cache_key_create(void) { pthread_key_create(&cache_key, cache_thread_end); }

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void slot_clear(struct cached_client *slot) {
  free(slot->row.jwk);
  if (slot->keys != NULL)
    jose_keyset_unref(slot->keys);
  memset(slot, 0, sizeof *slot);
}

/* The cached client, loading it when absent or stale.  DB_NOT_FOUND for
 * an unknown or disabled client. */
static enum db_status client_get(struct db *db, const char *id, const struct cached_client **out) {
  int64_t now = mono_ms();
  struct cached_client *oldest = &cache[0];
  for (int i = 0; i < CLIENT_CACHE_SLOTS; i++) {
    struct cached_client *slot = &cache[i];
    if (slot->used && strcmp(slot->row.c.id, id) == 0) {
      if (now - slot->loaded_ms < CLIENT_CACHE_TTL_MS) {
        *out = slot;
        return DB_OK;
      }
      oldest = slot;
      break;
    }
    if (!slot->used || slot->loaded_ms < oldest->loaded_ms)
      oldest = slot;
  }
  struct client_row row;
  enum db_status st = client_load(db, id, &row);
  if (st != DB_OK) {
    free(row.jwk);
    return st;
  }
  slot_clear(oldest);
  oldest->row = row;
  if (row.jwk != NULL) {
    char jwks[4200], err[128];
    snprintf(jwks, sizeof jwks, "{\"keys\":[%s]}", row.jwk);
    oldest->keys = jose_keyset_from_jwks(jwks, strlen(jwks), err, sizeof err);
  }
  oldest->loaded_ms = now;
  oldest->used = true;
  pthread_once(&cache_key_once, cache_key_create);
  pthread_setspecific(cache_key, cache);
  *out = oldest;
  return DB_OK;
}

static enum client_auth_status by_secret(struct db *db, const char *authorization,
                                         struct client *out, const char **reason) {
  char id[128], secret[128];
  if (!form_basic_credentials(authorization, id, sizeof id, secret, sizeof secret)) {
    *reason = "malformed Basic credentials";
    return CLIENT_AUTH_FAILED;
  }
  const struct cached_client *cc = NULL;
  enum db_status st = client_get(db, id, &cc);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return CLIENT_AUTH_UNAVAILABLE;
  unsigned char digest[32];
  unsigned dlen = 0;
  EVP_Digest(secret, strlen(secret), digest, &dlen, EVP_sha256(), NULL);
  /* Compare even for an unknown client, so timing tells little. */
  static const unsigned char nothing[32];
  bool known = st == DB_OK && cc->row.has_hash;
  bool ok = CRYPTO_memcmp(digest, known ? cc->row.hash : nothing, 32) == 0 && known;
  OPENSSL_cleanse(secret, sizeof secret);
  if (!ok) {
    *reason = "unknown client or wrong secret";
    return CLIENT_AUTH_FAILED;
  }
  *out = cc->row.c;
  return CLIENT_AUTH_OK;
}

/* RFC 7523 §3: aud names us, as the issuer or the token endpoint. */
static bool aud_is_us(const char *aud, const char *issuer) {
  size_t n = strlen(issuer);
  return aud != NULL && strncmp(aud, issuer, n) == 0 &&
         (aud[n] == '\0' || strcmp(aud + n, "/oauth2/token") == 0);
}

static bool aud_matches(json_t *aud, const char *issuer) {
  if (json_is_string(aud))
    return aud_is_us(json_string_value(aud), issuer);
  size_t i;
  json_t *a;
  json_array_foreach(aud, i, a) {
    if (aud_is_us(json_string_value(a), issuer))
      return true;
  }
  return false;
}

static enum client_auth_status by_assertion(struct db *db, const char *assertion,
                                            const char *audience, struct client *out,
                                            const char **reason) {
  /* The issuer is in the payload; read it without trusting it, then
   * verify against that client's registered key. */
  const char *dot1 = strchr(assertion, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  unsigned char payload[4096];
  long n =
      dot2 ? b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload - 1) : -1;
  json_t *unverified =
      n > 0 ? json_loadb((const char *)payload, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
  const char *iss = json_string_value(json_object_get(unverified, "iss"));
  char id[65] = "";
  if (iss != NULL)
    snprintf(id, sizeof id, "%s", iss);
  json_decref(unverified);
  if (id[0] == '\0') {
    *reason = "client assertion is malformed";
    return CLIENT_AUTH_FAILED;
  }
  const struct cached_client *cc = NULL;
  enum db_status st = client_get(db, id, &cc);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return CLIENT_AUTH_UNAVAILABLE;
  if (st == DB_NOT_FOUND || cc->keys == NULL) {
    *reason = "unknown client or no registered key";
    return CLIENT_AUTH_FAILED;
  }
  const struct client_row row = {.c = cc->row.c};
  json_t *claims = NULL;
  enum jws_status js = jws_verify(cc->keys, assertion, strlen(assertion), &claims);
  if (js != JWS_OK) {
    *reason = "client assertion signature is not valid";
    return CLIENT_AUTH_FAILED;
  }
  int64_t now = (int64_t)time(NULL);
  json_t *exp = json_object_get(claims, "exp");
  const char *sub = json_string_value(json_object_get(claims, "sub"));
  const char *jti = json_string_value(json_object_get(claims, "jti"));
  enum client_auth_status result = CLIENT_AUTH_FAILED;
  if (sub == NULL || strcmp(sub, row.c.id) != 0)
    *reason = "client assertion sub must be the client id";
  else if (!aud_matches(json_object_get(claims, "aud"), audience))
    *reason = "client assertion aud must be the token endpoint";
  else if (!json_is_integer(exp) || json_integer_value(exp) <= now ||
           json_integer_value(exp) > now + ASSERTION_MAX_LIFETIME)
    *reason = "client assertion is expired or lives too long";
  else if (jti == NULL || jti[0] == '\0' || strlen(jti) > 200)
    *reason = "client assertion has no jti";
  else {
    char until[24];
    snprintf(until, sizeof until, "%lld", (long long)json_integer_value(exp) * 1000000LL);
    const char *params[] = {row.c.id, jti, until};
    PGresult *r;
    st = db_run(db, STMT_CLIENT_JTI_INSERT, 3, params, &r);
    PQclear(r);
    if (st == DB_OK) {
      *out = row.c;
      result = CLIENT_AUTH_OK;
    } else if (st == DB_NOT_FOUND) {
      *reason = "client assertion jti was already used";
    } else {
      result = CLIENT_AUTH_UNAVAILABLE;
    }
  }
  json_decref(claims);
  return result;
}

enum client_auth_status client_authenticate(struct db *db, const char *authorization,
                                            const char *assertion_type, const char *assertion,
                                            const char *audience, struct client *out,
                                            const char **reason) {
  *reason = NULL;
  bool basic = authorization != NULL && strncasecmp(authorization, "Basic ", 6) == 0;
  bool jwt = assertion != NULL || assertion_type != NULL;
  if (basic && jwt) {
    *reason = "use one client authentication method, not two";
    return CLIENT_AUTH_FAILED;
  }
  if (basic)
    return by_secret(db, authorization, out, reason);
  if (jwt) {
    if (assertion_type == NULL || strcmp(assertion_type, CLIENT_ASSERTION_TYPE) != 0 ||
        assertion == NULL) {
      *reason = "client_assertion_type must be " CLIENT_ASSERTION_TYPE;
      return CLIENT_AUTH_FAILED;
    }
    return by_assertion(db, assertion, audience, out, reason);
  }
  *reason = "no client credentials";
  return CLIENT_AUTH_MISSING;
}

bool client_may_use_service(const struct client *c, const char *service) {
  for (size_t i = 0; i < c->service_count; i++)
    if (strcmp(c->services[i], service) == 0)
      return true;
  return false;
}
