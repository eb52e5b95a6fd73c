/* Identity tokens from the configured OpenID Connect issuer: discovery,
 * JWKS fetching and the shared keyset.  The keyset pointer is swapped
 * under a mutex; a verifier takes a reference under the lock and verifies
 * without it, so a refresh never waits for verifications or vice versa.
 * Fetches are rate-limited to one per second across all threads, and only
 * one thread fetches at a time. */
#include "auth/identity.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "auth/http_fetch.h"
#include "jose/jws.h"
#include "log.h"

#define FETCH_MAX_BODY (256 * 1024)
#define FETCH_MIN_INTERVAL_MS 1000
/* Keys the issuer has withdrawn stop verifying within this time even if
 * no unknown kid prompts a refetch. */
#define KEYSET_MAX_AGE_MS (3600 * 1000)

static struct {
  pthread_mutex_t lock;
  pthread_cond_t fetch_done;
  bool configured;
  struct identity_config cfg; /* strings owned, set before serving */
  char *jwks_uri;             /* from discovery; NULL: discover again */
  struct jose_keyset *keys;   /* NULL until a JWKS was loaded */
  unsigned long generation;   /* bumped on every swap */
  int64_t loaded_ms;
  int64_t last_attempt_ms;
  bool attempted;
  bool fetching;
  bool curl_ready;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .fetch_done = PTHREAD_COND_INITIALIZER};

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- HTTP ---------------------------------------------------------- */

/* GET url; NULL on a 200 with a body, else a static reason. */
static const char *http_get(const char *url, struct http_body *out) {
  return http_fetch(url, NULL, NULL, NULL, FETCH_MAX_BODY, out);
}

static bool url_is_http(const char *url) {
  return strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0;
}

/* OpenID Connect Discovery: the issuer (a trailing '/' dropped) plus the
 * well-known path; the document must name exactly our issuer. */
static const char *discover_jwks_uri(char **jwks_uri) {
  const char *issuer = g.cfg.issuer;
  size_t ilen = strlen(issuer);
  if (ilen > 0 && issuer[ilen - 1] == '/')
    ilen--;
  static const char suffix[] = "/.well-known/openid-configuration";
  char *url = malloc(ilen + sizeof suffix);
  if (!url)
    return "out of memory";
  memcpy(url, issuer, ilen);
  memcpy(url + ilen, suffix, sizeof suffix);

  struct http_body b;
  const char *why = http_get(url, &b);
  free(url);
  if (why)
    return why;
  json_t *doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
  free(b.data);
  json_t *iss = json_object_get(doc, "issuer");
  json_t *uri = json_object_get(doc, "jwks_uri");
  if (!json_is_object(doc))
    why = "discovery document is not a JSON object";
  else if (!json_is_string(iss) || strcmp(json_string_value(iss), g.cfg.issuer) != 0)
    why = "discovery issuer does not match the configured issuer";
  else if (!json_is_string(uri) || !url_is_http(json_string_value(uri)))
    why = "discovery has no http(s) jwks_uri";
  else if (strncmp(g.cfg.issuer, "https://", 8) == 0 &&
           strncmp(json_string_value(uri), "https://", 8) != 0)
    why = "jwks_uri is not https for an https issuer";
  else if (!(*jwks_uri = strdup(json_string_value(uri))))
    why = "out of memory";
  json_decref(doc);
  return why;
}

static const char *fetch_keyset(const char *jwks_uri, struct jose_keyset **out) {
  struct http_body b;
  const char *why = http_get(jwks_uri, &b);
  if (why)
    return why;
  char err[128];
  *out = jose_keyset_from_jwks(b.data, b.len, err, sizeof err);
  free(b.data);
  if (!*out)
    log_msg(LOG_WARN, "identity provider JWKS unusable: %s", err);
  return *out ? NULL : "JWKS unusable";
}

/* why is one of our static strings or libcurl's, never response text. */
static void log_fetch_failure(const char *why) {
  log_msg(LOG_WARN, "identity provider keys not loaded: %s", why);
}

/* ---- Keyset refresh ------------------------------------------------ */

static struct jose_keyset *keyset_snapshot(unsigned long *generation, int64_t *loaded_ms) {
  pthread_mutex_lock(&g.lock);
  struct jose_keyset *ks = g.keys;
  jose_keyset_ref(ks);
  *generation = g.generation;
  if (loaded_ms)
    *loaded_ms = g.loaded_ms;
  pthread_mutex_unlock(&g.lock);
  return ks;
}

/* Fetches discovery (when no jwks_uri is known) and the JWKS, unless the
 * keyset changed since the caller's snapshot, a fetch started less than a
 * second ago, or another thread is fetching (then waits for it when
 * wait is set).  A failed fetch keeps the old keyset. */
static void keyset_refresh(unsigned long seen_generation, bool wait) {
  pthread_mutex_lock(&g.lock);
  int64_t now = monotonic_ms();
  if (g.generation != seen_generation || !g.configured) {
    pthread_mutex_unlock(&g.lock);
    return;
  }
  if (g.fetching) {
    while (wait && g.fetching)
      pthread_cond_wait(&g.fetch_done, &g.lock);
    pthread_mutex_unlock(&g.lock);
    return;
  }
  if (g.attempted && now - g.last_attempt_ms < FETCH_MIN_INTERVAL_MS) {
    pthread_mutex_unlock(&g.lock);
    return;
  }
  g.fetching = true;
  g.attempted = true;
  g.last_attempt_ms = now;
  /* Only the fetching thread touches jwks_uri while fetching is set. */
  char *jwks_uri = g.jwks_uri;
  g.jwks_uri = NULL;
  pthread_mutex_unlock(&g.lock);

  const char *why = NULL;
  struct jose_keyset *fresh = NULL;
  if (!jwks_uri)
    why = discover_jwks_uri(&jwks_uri);
  if (!why)
    why = fetch_keyset(jwks_uri, &fresh);
  if (why) {
    /* Discover again next time: the issuer may have moved its JWKS. */
    free(jwks_uri);
    jwks_uri = NULL;
    log_fetch_failure(why);
  }

  pthread_mutex_lock(&g.lock);
  struct jose_keyset *old = NULL;
  if (fresh) {
    old = g.keys;
    g.keys = fresh;
    g.generation++;
    g.loaded_ms = monotonic_ms();
  }
  g.jwks_uri = jwks_uri;
  g.fetching = false;
  pthread_cond_broadcast(&g.fetch_done);
  pthread_mutex_unlock(&g.lock);
  jose_keyset_unref(old);
}

/* ---- Verified-token cache ------------------------------------------ */

/* A portal exchanges one representative's identity token for each client
 * they act for, and ECDSA verification is the most expensive step of an
 * exchange.  A token that verified under the current keyset gives the same
 * identity until it expires, so successes are remembered by the token's
 * SHA-256 (the way API gateways cache verified JWTs).  Entries die with the
 * keyset they were verified under and at the token's expiry; failures are
 * never cached.  MACHTIGEN_IDTOKEN_CACHE=0 turns it off. */
#define VERIFIED_SETS 2048
#define VERIFIED_WAYS 4 /* a set holds four tokens, the oldest gives way */

struct verified {
  unsigned char digest[32];
  unsigned long generation;
  uint64_t used; /* a clock for replacement */
  struct identity who;
};

static struct {
  pthread_mutex_t lock;
  bool enabled;
  uint64_t clock;
  struct verified slot[VERIFIED_SETS][VERIFIED_WAYS];
} verified = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct verified *verified_set(const unsigned char digest[32]) {
  unsigned idx = ((unsigned)digest[0] | (unsigned)digest[1] << 8) % VERIFIED_SETS;
  return verified.slot[idx];
}

static bool verified_get(const unsigned char digest[32], unsigned long generation, int64_t now,
                         struct identity *out) {
  if (!verified.enabled || generation == 0)
    return false;
  bool hit = false;
  pthread_mutex_lock(&verified.lock);
  struct verified *set = verified_set(digest);
  for (int w = 0; w < VERIFIED_WAYS && !hit; w++) {
    struct verified *v = &set[w];
    if (v->generation == generation && memcmp(v->digest, digest, 32) == 0 && now < v->who.exp) {
      *out = v->who;
      v->used = ++verified.clock;
      hit = true;
    }
  }
  pthread_mutex_unlock(&verified.lock);
  return hit;
}

static void verified_put(const unsigned char digest[32], unsigned long generation,
                         const struct identity *who) {
  if (!verified.enabled)
    return;
  pthread_mutex_lock(&verified.lock);
  struct verified *set = verified_set(digest), *victim = &set[0];
  for (int w = 1; w < VERIFIED_WAYS; w++)
    if (set[w].used < victim->used)
      victim = &set[w];
  memcpy(victim->digest, digest, 32);
  victim->generation = generation;
  victim->used = ++verified.clock;
  victim->who = *who;
  pthread_mutex_unlock(&verified.lock);
}

/* ---- Public interface ---------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen > 0)
    snprintf(err, errlen, "%s", msg);
}

static bool dup_or_default(char **dst, const char *src, const char *dflt) {
  *dst = strdup(src && *src ? src : dflt);
  return *dst != NULL;
}

bool identity_init(const struct identity_config *cfg, char *err, size_t errlen) {
  identity_shutdown();
  if (!cfg || !cfg->issuer || !url_is_http(cfg->issuer)) {
    set_err(err, errlen, "identity issuer must be an http(s) URL");
    return false;
  }
  if (cfg->leeway_seconds < 0 || cfg->leeway_seconds > 600) {
    set_err(err, errlen, "identity leeway must be 0..600 seconds");
    return false;
  }
  char *issuer = NULL, *audience = NULL, *bsn_claim = NULL;
  if (!dup_or_default(&issuer, cfg->issuer, "") ||
      !dup_or_default(&audience, cfg->audience, "machtigen") ||
      !dup_or_default(&bsn_claim, cfg->bsn_claim, "sub")) {
    free(issuer);
    free(audience);
    free(bsn_claim);
    set_err(err, errlen, "out of memory");
    return false;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    free(issuer);
    free(audience);
    free(bsn_claim);
    set_err(err, errlen, "libcurl initialisation failed");
    return false;
  }

  pthread_mutex_lock(&g.lock);
  g.cfg = (struct identity_config){.issuer = issuer,
                                   .audience = audience,
                                   .bsn_claim = bsn_claim,
                                   .leeway_seconds = cfg->leeway_seconds};
  const char *cache = getenv("MACHTIGEN_IDTOKEN_CACHE");
  verified.enabled = cache == NULL || strcmp(cache, "0") != 0;
  g.configured = true;
  g.curl_ready = true;
  g.attempted = false;
  unsigned long generation = g.generation;
  pthread_mutex_unlock(&g.lock);

  /* A failure is logged and retried on demand: the IdP may start later. */
  keyset_refresh(generation, false);
  return true;
}

void identity_shutdown(void) {
  pthread_mutex_lock(&g.lock);
  while (g.fetching)
    pthread_cond_wait(&g.fetch_done, &g.lock);
  struct jose_keyset *old = g.keys;
  g.keys = NULL;
  g.generation++;
  free(g.jwks_uri);
  g.jwks_uri = NULL;
  free((char *)g.cfg.issuer);
  free((char *)g.cfg.audience);
  free((char *)g.cfg.bsn_claim);
  memset(&g.cfg, 0, sizeof g.cfg);
  g.configured = false;
  bool curl_ready = g.curl_ready;
  g.curl_ready = false;
  pthread_mutex_unlock(&g.lock);
  jose_keyset_unref(old);
  if (curl_ready)
    curl_global_cleanup();
}

bool identity_ready(void) {
  pthread_mutex_lock(&g.lock);
  bool ready = g.keys != NULL;
  pthread_mutex_unlock(&g.lock);
  return ready;
}

static const char *jws_reason(enum jws_status st) {
  switch (st) {
  case JWS_OK:
    return NULL;
  case JWS_ERR_SIZE:
    return "token size";
  case JWS_ERR_FORMAT:
    return "malformed token";
  case JWS_ERR_HEADER:
    return "bad token header";
  case JWS_ERR_ALG:
    return "algorithm not allowed";
  case JWS_ERR_CRIT:
    return "crit header not supported";
  case JWS_ERR_UNKNOWN_KID:
    return "unknown kid";
  case JWS_ERR_SIGNATURE:
    return "bad signature";
  case JWS_ERR_PAYLOAD:
    return "bad token payload";
  }
  return "invalid token";
}

enum identity_status identity_verify(const char *token, size_t len, struct identity *out,
                                     const char **reason) {
  const char *dummy;
  if (!reason)
    reason = &dummy;
  *reason = NULL;
  if (!token || len == 0 || len > JWS_MAX_TOKEN) {
    *reason = jws_reason(JWS_ERR_SIZE);
    return IDENT_INVALID;
  }

  unsigned long generation;
  int64_t loaded_ms;
  struct jose_keyset *ks = keyset_snapshot(&generation, &loaded_ms);
  if (!ks || monotonic_ms() - loaded_ms > KEYSET_MAX_AGE_MS) {
    keyset_refresh(generation, false);
    jose_keyset_unref(ks);
    ks = keyset_snapshot(&generation, &loaded_ms);
  }
  if (!ks) {
    *reason = "identity provider keys unavailable";
    return IDENT_UNAVAILABLE;
  }

  unsigned char digest[32];
  EVP_Digest(token, len, digest, NULL, EVP_sha256(), NULL);
  if (verified_get(digest, generation, (int64_t)time(NULL), out)) {
    jose_keyset_unref(ks);
    return IDENT_OK;
  }
  unsigned long verified_generation = generation;

  json_t *claims = NULL;
  enum jws_status st = jws_verify(ks, token, len, &claims);
  if (st == JWS_ERR_UNKNOWN_KID) {
    /* Perhaps the issuer rotated its keys: fetch once and retry once. */
    keyset_refresh(generation, true);
    struct jose_keyset *fresh = keyset_snapshot(&generation, &loaded_ms);
    if (fresh && fresh != ks)
      st = jws_verify(fresh, token, len, &claims);
    verified_generation = generation;
    jose_keyset_unref(fresh);
  }
  jose_keyset_unref(ks);
  if (st != JWS_OK) {
    *reason = jws_reason(st);
    return IDENT_INVALID;
  }

  enum identity_status ist =
      identity_check_claims(&g.cfg, claims, (int64_t)time(NULL), out, reason);
  json_decref(claims);
  if (ist == IDENT_OK)
    verified_put(digest, verified_generation, out);
  return ist;
}
