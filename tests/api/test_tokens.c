/* Mandate tokens through the API, as DESIGN.md ("Tokens", "Contract
 * details") describes them: RFC 8693 token exchange by a portal, the
 * claims of the token, verification by two independent libraries against
 * our JWKS (libjwt 1.10 in C, npm `jose` in node), every refusal with its
 * RFC 6749 error, client authentication (client_secret_basic and
 * private_key_jwt with replay protection), introspection (RFC 7662) that
 * goes inactive at once on revocation, key rotation with overlap, and the
 * audit row and activity item each exchange leaves for the principal.
 *
 * Besides MACHTIGEN_URL, IDP_URL and DATABASE_URL it needs the clients
 * `tools/dev test` registers (PORTAL_*, OTHER_PORTAL_*, ADMIN_*), the key
 * directory and binary for `machtigend keys` (MACHTIGEN_KEY_DIR,
 * MACHTIGEN_BIN), and from meson NODE and VERIFY_JOSE.  Any of them
 * missing fails the test, never skips it.  Every test uses fresh random
 * parties, so reruns against the same database never collide. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "client.h"
#include "dbcheck.h"
#include "tokens.h"

#define GRANT_TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TYPE_ID_TOKEN "urn:ietf:params:oauth:token-type:id_token"
#define TYPE_ACCESS_TOKEN "urn:ietf:params:oauth:token-type:access_token"
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define MAX_TTL 600 /* DESIGN.md: a token lives at most 10 minutes */

static const char *const required_env[] = {
    "PORTAL_CLIENT_ID",
    "PORTAL_CLIENT_SECRET",
    "PORTAL_AUDIENCE",
    "OTHER_PORTAL_CLIENT_ID",
    "OTHER_PORTAL_CLIENT_SECRET",
    "ADMIN_CLIENT_ID",
    "ADMIN_CLIENT_SECRET",
    "MACHTIGEN_KEY_DIR",
    "MACHTIGEN_BIN",
    "NODE",
    "VERIFY_JOSE",
};

/* How a client authenticates: Basic (id and secret), a private_key_jwt
 * assertion, or not at all (all NULL). */
struct cred {
  const char *id;
  const char *secret;
  const char *assertion;
};

static struct cred portal, other_portal;
static char other_audience[256];

/* ---- Parties and mandates ------------------------------------------------ */

struct who {
  char party[14];
  char employee[40]; /* organisations only */
  char loa[16];
  char *token;
};

static struct who person(const char *loa) {
  struct who w = {.token = NULL};
  random_bsn(w.party);
  snprintf(w.loa, sizeof w.loa, "%s", loa);
  w.token = token_person(w.party, loa);
  return w;
}

static struct who organisation(const char *loa) {
  struct who w = {.token = NULL};
  random_kvk(w.party);
  char uuid[37];
  random_uuid(uuid);
  snprintf(w.employee, sizeof w.employee, "emp-%.12s", uuid);
  snprintf(w.loa, sizeof w.loa, "%s", loa);
  w.token = token_org(w.party, w.employee, loa);
  return w;
}

/* The same person logging in again at another level of assurance. */
static void relogin(struct who *w, const char *loa) {
  free(w->token);
  snprintf(w->loa, sizeof w->loa, "%s", loa);
  w->token = w->employee[0] ? token_org(w->party, w->employee, loa) : token_person(w->party, loa);
}

static void forget(struct who *w) {
  free(w->token);
  w->token = NULL;
}

/* A grant by principal to rep, pending; from/until NULL: today for 30 days. */
static void grant(const struct who *p, const struct who *rep, const char *service, const char *from,
                  const char *until, char id[37]) {
  char today[11], later[11];
  date_from_today(0, today);
  date_from_today(30, later);
  char *body = xasprintf("{\"representative\":\"%s\",\"service\":\"%s\",\"valid_from\":\"%s\","
                         "\"valid_until\":\"%s\"}",
                         rep->party, service, from ? from : today, until ? until : later);
  struct api_response *r = api_call("POST", "/v1/mandates", p->token, body);
  free(body);
  api_expect_status(r, 201);
  const char *got = api_str(r, "id");
  if (got == NULL || strlen(got) != 36)
    fail_msg("no mandate id: %s", api_describe(r));
  memcpy(id, got, 37);
  api_response_free(r);
}

/* accept, decline or revoke by w at this version; must succeed. */
static void act(const struct who *w, const char *action, const char *id, int version) {
  char etag[16];
  snprintf(etag, sizeof etag, "\"%d\"", version);
  struct api_response *r = api_action(action, id, w->token, etag, NULL);
  api_expect_status(r, 200);
  api_response_free(r);
}

/* An active mandate from today for 30 days. */
static void active_mandate(const struct who *p, const struct who *rep, const char *service,
                           char id[37]) {
  grant(p, rep, service, NULL, NULL, id);
  act(rep, "accept", id, 1);
}

static int64_t mandate_end_seconds(const struct who *p, const char *id) {
  char *path = xasprintf("/v1/mandates/%s", id);
  struct api_response *r = api_call("GET", path, p->token, NULL);
  free(path);
  api_expect_status(r, 200);
  int64_t usec;
  if (!parse_datetime(api_str(r, "valid_until"), &usec))
    fail_msg("valid_until is not a date-time: %s", api_describe(r));
  api_response_free(r);
  return usec >= 0 ? usec / 1000000 : -((-usec + 999999) / 1000000);
}

/* ---- Encodings ----------------------------------------------------------- */

/* Segment `which` (0 header, 1 payload) of a compact JWS as JSON; fails
 * the test when it is not. */
static json_t *jws_segment(const char *token, int which) {
  int dots = 0;
  for (const char *p = token; *p; p++)
    dots += *p == '.';
  if (dots != 2)
    fail_msg("not a compact JWS (three segments): %.80s", token);
  const char *start = token;
  for (int i = 0; i < which; i++)
    start = strchr(start, '.') + 1;
  const char *end = strchr(start, '.');
  size_t n = (size_t)(end - start);
  unsigned char *buf = malloc(n + 1);
  long len = (long)test_b64url_decode(start, n, buf);
  json_t *j =
      len > 0 ? json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL) : NULL;
  free(buf);
  if (!json_is_object(j))
    fail_msg("JWS segment %d is not a JSON object: %.80s", which, token);
  return j;
}

/* RFC 6749 appendix B: form-urlencoding, spaces as %20. */
static void url_encode_into(char **out, const char *v) {
  size_t len = strlen(*out);
  char *grown = realloc(*out, len + strlen(v) * 3 + 1);
  if (grown == NULL)
    abort();
  *out = grown;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~')
      grown[len++] = (char)*p;
    else
      len += (size_t)sprintf(grown + len, "%%%02X", *p);
  }
  grown[len] = '\0';
}

/* name=value&… from NULL-terminated pairs; a pair whose value is NULL is
 * left out. */
static char *form_of(const char *name, ...) {
  char *form = strdup("");
  va_list ap;
  va_start(ap, name);
  for (const char *n = name; n != NULL; n = va_arg(ap, const char *)) {
    const char *v = va_arg(ap, const char *);
    if (v == NULL)
      continue;
    char *sep = xasprintf("%s%s=", form[0] ? "&" : "", n);
    char *joined = xasprintf("%s%s", form, sep);
    free(form);
    free(sep);
    form = joined;
    url_encode_into(&form, v);
  }
  va_end(ap);
  return form;
}

/* "Authorization: Basic …" for id and secret, form-encoded first (RFC
 * 6749 §2.3.1). */
static char *basic_header(const char *id, const char *secret) {
  char *plain = strdup("");
  url_encode_into(&plain, id);
  char *with_colon = xasprintf("%s:", plain);
  free(plain);
  url_encode_into(&with_colon, secret);
  size_t n = strlen(with_colon);
  unsigned char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock(b64, (const unsigned char *)with_colon, (int)n);
  char *header = xasprintf("Authorization: Basic %s", (const char *)b64);
  free(b64);
  free(with_colon);
  return header;
}

/* Single quotes for sh. */
static char *shell_quote(const char *s) {
  char *out = strdup("'");
  for (const char *p = s; *p; p++) {
    char *next = *p == '\'' ? xasprintf("%s'\\''", out) : xasprintf("%s%c", out, *p);
    free(out);
    out = next;
  }
  char *done = xasprintf("%s'", out);
  free(out);
  return done;
}

/* Runs a shell command; its output (stdout and stderr, malloc'd) and exit
 * status. */
static char *run(const char *command, int *status) {
  char *full = xasprintf("%s 2>&1", command);
  FILE *f = popen(full, "r");
  free(full);
  if (f == NULL)
    fail_msg("cannot run: %s", command);
  char *out = NULL;
  size_t len = 0, cap = 0;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      out = realloc(out, cap);
      if (out == NULL)
        abort();
    }
    memcpy(out + len, buf, n);
    len += n;
  }
  int rc = pclose(f);
  *status = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  if (out == NULL)
    out = strdup("");
  else
    out[len] = '\0';
  return out;
}

/* ---- The OAuth endpoints --------------------------------------------------- */

static struct api_response *oauth_post(const char *path, const struct cred *c, const char *form) {
  char *auth = c->id != NULL && c->assertion == NULL ? basic_header(c->id, c->secret) : NULL;
  char *body;
  if (c->assertion != NULL) {
    char *extra =
        form_of("client_assertion_type", ASSERTION_TYPE, "client_assertion", c->assertion, NULL);
    body = xasprintf("%s%s%s", form, form[0] ? "&" : "", extra);
    free(extra);
  } else {
    body = strdup(form);
  }
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", auth, NULL};
  struct api_response *r = api_request("POST", path, headers, body, strlen(body));
  free(body);
  free(auth);
  return r;
}

/* A token request; NULL values are left out of the form. */
static struct api_response *token_request(const struct cred *c, const char *grant_type,
                                          const char *subject_token, const char *subject_type,
                                          const char *requested_subject, const char *scope) {
  char *form =
      form_of("grant_type", grant_type, "subject_token", subject_token, "subject_token_type",
              subject_type, "requested_subject", requested_subject, "scope", scope, NULL);
  struct api_response *r = oauth_post("/oauth2/token", c, form);
  free(form);
  return r;
}

static struct api_response *exchange(const struct cred *c, const struct who *rep,
                                     const char *principal, const char *service) {
  return token_request(c, GRANT_TOKEN_EXCHANGE, rep->token, TYPE_ID_TOKEN, principal, service);
}

static bool media_is(const char *content_type, const char *essence) {
  size_t n = strlen(essence);
  return content_type != NULL && strncasecmp(content_type, essence, n) == 0 &&
         (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

/* RFC 6749 §5.1: token answers are JSON and never cached. */
static void expect_oauth_json(const struct api_response *r) {
  if (!media_is(r->content_type, "application/json") || !json_is_object(r->json))
    fail_msg("expected an application/json object: %s", api_describe(r));
  if (r->cache_control == NULL || strstr(r->cache_control, "no-store") == NULL)
    fail_msg("expected Cache-Control: no-store, got %s: %s",
             r->cache_control ? r->cache_control : "none", api_describe(r));
}

/* RFC 6749 §5.2 error with this status and error code; a 401 carries
 * WWW-Authenticate (Basic when the client sent Basic).  Returns the
 * error_description (malloc'd; "" when there is none). */
static char *expect_oauth_error(const struct api_response *r, long status, const char *error,
                                const struct cred *c) {
  const char *got = api_str(r, "error");
  if (r->status != status || got == NULL || strcmp(got, error) != 0)
    fail_msg("expected %ld %s: %s", status, error, api_describe(r));
  expect_oauth_json(r);
  json_t *desc = json_object_get(r->json, "error_description");
  if (desc != NULL && !json_is_string(desc))
    fail_msg("error_description must be a string: %s", api_describe(r));
  if (status == 401) {
    if (r->www_authenticate == NULL)
      fail_msg("a 401 needs WWW-Authenticate: %s", api_describe(r));
    if (c != NULL && c->id != NULL && c->assertion == NULL &&
        strncasecmp(r->www_authenticate, "Basic", 5) != 0)
      fail_msg("a client that sent Basic must be challenged with Basic, got %s: %s",
               r->www_authenticate, api_describe(r));
  }
  return strdup(desc ? json_string_value(desc) : "");
}

/* A refused request that must leave the database (mandates, audit) as it
 * was; returns the error_description (malloc'd). */
static char *refused(struct api_response *r /* freed */, const struct db_snapshot *before,
                     long status, const char *error, const struct cred *c, const char *what) {
  char *desc = expect_oauth_error(r, status, error, c);
  db_expect_unchanged(before, what);
  api_response_free(r);
  return desc;
}

static char *exchange_refused(const struct cred *c, const struct who *rep, const char *principal,
                              const char *service, long status, const char *error) {
  struct db_snapshot before = db_snapshot();
  struct api_response *r = exchange(c, rep, principal, service);
  return refused(r, &before, status, error, c, error);
}

static struct api_response *introspect(const struct cred *c, const char *token) {
  char *form = form_of("token", token, NULL);
  struct api_response *r = oauth_post("/oauth2/introspect", c, form);
  free(form);
  return r;
}

/* Introspection's verdict (RFC 7662 §2.2); an inactive answer must say
 * nothing else. */
static bool active(const struct cred *c, const char *token) {
  struct api_response *r = introspect(c, token);
  api_expect_status(r, 200);
  expect_oauth_json(r);
  json_t *a = json_object_get(r->json, "active");
  if (!json_is_boolean(a))
    fail_msg("introspection needs a boolean active: %s", api_describe(r));
  bool is_active = json_is_true(a);
  if (!is_active && json_object_size(r->json) != 1)
    fail_msg("an inactive token must reveal nothing but active:false: %s", api_describe(r));
  if (is_active) {
    json_t *claims = jws_segment(token, 1);
    const char *same[] = {"sub", "client_id", "scope", "jti", "iss", "aud"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
      if (!json_equal(json_object_get(r->json, same[i]), json_object_get(claims, same[i])))
        fail_msg("introspection's %s differs from the token's: %s", same[i], api_describe(r));
    if (!json_equal(json_object_get(r->json, "exp"), json_object_get(claims, "exp")))
      fail_msg("introspection's exp differs from the token's: %s", api_describe(r));
    json_decref(claims);
  }
  api_response_free(r);
  return is_active;
}

/* ---- Keys ------------------------------------------------------------------ */

static json_t *jwks_get(void) {
  struct api_response *r = api_call("GET", "/.well-known/jwks.json", NULL, NULL);
  api_expect_status(r, 200);
  json_t *keys = json_object_get(r->json, "keys");
  if (!json_is_array(keys) || json_array_size(keys) == 0)
    fail_msg("the JWKS has no keys: %s", api_describe(r));
  json_t *set = json_incref(r->json);
  api_response_free(r);
  return set;
}

static json_t *jwks_key(json_t *jwks, const char *kid) {
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(jwks, "keys"), i, k) {
    const char *got = json_string_value(json_object_get(k, "kid"));
    if (got != NULL && strcmp(got, kid) == 0)
      return k;
  }
  return NULL;
}

static bool jwks_has(const char *kid) {
  json_t *jwks = jwks_get();
  bool has = jwks_key(jwks, kid) != NULL;
  json_decref(jwks);
  return has;
}

/* Waits (the server reloads its key file every MACHTIGEN_KEY_RELOAD_SECONDS)
 * until the JWKS does (or does not) publish kid. */
static void wait_for_kid(const char *kid, bool published) {
  for (int i = 0; i < 120; i++) {
    if (jwks_has(kid) == published)
      return;
    usleep(250000);
  }
  fail_msg("after 30 s the JWKS still %s kid %s: did the server reload its key file?",
           published ? "does not publish" : "publishes", kid);
}

/* PEM (SubjectPublicKeyInfo) of a P-256 JWK, built from its x and y. */
static char *pem_from_jwk(json_t *jwk) {
  const char *x = json_string_value(json_object_get(jwk, "x"));
  const char *y = json_string_value(json_object_get(jwk, "y"));
  unsigned char point[65 + 64];
  point[0] = 0x04;
  if (x == NULL || y == NULL || strlen(x) != 43 || strlen(y) != 43 ||
      test_b64url_decode(x, 43, point + 1) != 32 || test_b64url_decode(y, 43, point + 33) != 32)
    fail_msg("not a P-256 JWK with 32-byte x and y");
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 65);
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *pkey = NULL;
  if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    fail_msg("OpenSSL does not take the JWK's point as a P-256 public key");
  BIO *bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char *data;
  long len = BIO_get_mem_data(bio, &data);
  char *pem = strndup(data, (size_t)len);
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return pem;
}

/* A fresh P-256 key's public half as a JWK with this kid. */
static json_t *public_jwk(EVP_PKEY *key, const char *kid) {
  unsigned char point[65];
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len) !=
          1 ||
      len != 65 || point[0] != 0x04)
    fail_msg("cannot export the EC public key");
  char *x = test_b64url_encode(point + 1, 32), *y = test_b64url_encode(point + 33, 32);
  json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x,
                          "y", y, "kid", kid, "alg", "ES256");
  free(x);
  free(y);
  return jwk;
}

/* A compact JWS signed ES256 by key. */
static char *es256_jws(EVP_PKEY *key, json_t *header /* stolen */, json_t *claims /* stolen */) {
  char *h = test_b64url_json(header), *p = test_b64url_json(claims);
  char *input = xasprintf("%s.%s", h, p);
  free(h);
  free(p);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[128];
  size_t der_len = sizeof der;
  if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, strlen(input)) != 1)
    fail_msg("ES256 signing failed");
  EVP_MD_CTX_free(md);
  const unsigned char *q = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(sig, &r, &s);
  unsigned char raw[64];
  BN_bn2binpad(r, raw, 32);
  BN_bn2binpad(s, raw + 32, 32);
  ECDSA_SIG_free(sig);
  char *sig64 = test_b64url_encode(raw, sizeof raw);
  char *jws = xasprintf("%s.%s", input, sig64);
  free(sig64);
  free(input);
  return jws;
}

/* ---- Independent verifiers ------------------------------------------------- */

#ifdef LIBJWT_1_10
/* Not in jwt.h: libjwt 1.10's signature check for ES/RS/PS algorithms
 * (jwt-private.h), which jwt_decode calls and libjwt.so.0 exports. */
int jwt_verify_sha_pem(jwt_t *jwt, const char *head, const char *sig_b64);
#endif

/* libjwt with the PEM of the JWKS key named by the token's kid.  Returns
 * the claims, or NULL when libjwt refused the token.
 *
 * jwt_decode comes first.  libjwt 1.10 accepts alg confusion, so the
 * algorithm it used is checked too.  But libjwt 1.10's jwt_decode also
 * refuses every header typ other than "JWT" (jwt_parse_head: EINVAL), and
 * our tokens are typ at+jwt (RFC 9068): for those it checks the signature
 * with the ES256 verifier jwt_decode itself would use, the algorithm fixed
 * to ES256 by us and never taken from the token. */
static json_t *libjwt_verify(const char *token, json_t *jwk) {
  char *pem = pem_from_jwk(jwk);
  jwt_t *jwt = NULL;
  int rc = jwt_decode(&jwt, token, (const unsigned char *)pem, (int)strlen(pem));
  if (rc == 0 && jwt != NULL) {
    free(pem);
    if (jwt_get_alg(jwt) != JWT_ALG_ES256)
      fail_msg("libjwt verified the token with %s, not ES256", jwt_alg_str(jwt_get_alg(jwt)));
    const char *typ = jwt_get_header(jwt, "typ");
    if (typ == NULL || strcmp(typ, "at+jwt") != 0)
      fail_msg("libjwt reads typ %s, want at+jwt", typ ? typ : "(none)");
    char *grants = jwt_get_grants_json(jwt, NULL);
    json_t *claims = grants ? json_loads(grants, 0, NULL) : NULL;
    free(grants);
    jwt_free(jwt);
    if (claims == NULL)
      fail_msg("libjwt verified the token but gives no claims");
    return claims;
  }
  jwt_free(jwt);
  json_t *claims = NULL;
#ifdef LIBJWT_1_10
  json_t *header = jws_segment(token, 0);
  const char *typ = json_string_value(json_object_get(header, "typ"));
  bool at_jwt = rc == EINVAL && typ != NULL && strcmp(typ, "at+jwt") == 0;
  json_decref(header);
  if (at_jwt) {
    jwt = NULL;
    if (jwt_new(&jwt) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)pem, (int)strlen(pem)) != 0)
      fail_msg("libjwt does not take the JWK's PEM as an ES256 key");
    char *signed_part = strdup(token);
    char *dot = strrchr(signed_part, '.');
    *dot = '\0';
    if (jwt_verify_sha_pem(jwt, signed_part, dot + 1) == 0) {
      if (jwt_get_alg(jwt) != JWT_ALG_ES256)
        fail_msg("libjwt checked the signature as %s, not ES256", jwt_alg_str(jwt_get_alg(jwt)));
      claims = jws_segment(token, 1);
    }
    free(signed_part);
    jwt_free(jwt);
  }
#endif
  free(pem);
  return claims;
}

/* npm jose (tests/api/verify-jose.mjs) against our JWKS URL.  Returns the
 * verified payload, or NULL when jose refused the token (*why: its words,
 * malloc'd). */
static json_t *jose_verify(const char *token, const char *audience, char **why) {
  char *jwks_url = xasprintf("%s/.well-known/jwks.json", api_env("MACHTIGEN_URL"));
  char *q[] = {shell_quote(api_env("NODE")), shell_quote(api_env("VERIFY_JOSE")),
               shell_quote(token),           shell_quote(jwks_url),
               shell_quote(audience),        shell_quote(api_env("MACHTIGEN_URL"))};
  char *command = xasprintf("%s %s %s %s %s %s", q[0], q[1], q[2], q[3], q[4], q[5]);
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
    free(q[i]);
  free(jwks_url);
  int status;
  char *out = run(command, &status);
  free(command);
  if (status == 2 || status == 127 || status < 0 || strstr(out, "ERR_MODULE_NOT_FOUND") != NULL)
    fail_msg("cannot run verify-jose.mjs with node (status %d; run `tools/dev deps`): %.500s",
             status, out);
  json_t *payload = status == 0 ? json_loads(out, 0, NULL) : NULL;
  if (status == 0 && payload == NULL)
    fail_msg("verify-jose.mjs printed no JSON payload: %.500s", out);
  if (why != NULL)
    *why = strdup(out);
  free(out);
  return payload;
}

/* Both libraries must accept the token and read exactly these claims. */
static void expect_verified_by_both(const char *token, const char *audience, json_t *claims) {
  json_t *header = jws_segment(token, 0);
  const char *kid = json_string_value(json_object_get(header, "kid"));
  json_t *jwks = jwks_get();
  json_t *jwk = kid ? jwks_key(jwks, kid) : NULL;
  if (jwk == NULL)
    fail_msg("the token's kid %s is not in the JWKS", kid ? kid : "(none)");
  json_t *by_libjwt = libjwt_verify(token, jwk);
  if (by_libjwt == NULL)
    fail_msg("libjwt does not verify the token against JWKS key %s", kid);
  if (!json_equal(by_libjwt, claims))
    fail_msg("libjwt reads other claims than the token carries");
  char *why = NULL;
  json_t *by_jose = jose_verify(token, audience, &why);
  if (by_jose == NULL)
    fail_msg("npm jose does not verify the token: %s", why);
  if (!json_equal(by_jose, claims))
    fail_msg("npm jose reads other claims than the token carries: %s", why);
  free(why);
  json_decref(by_libjwt);
  json_decref(by_jose);
  json_decref(jwks);
  json_decref(header);
}

/* ---- A successful exchange ---------------------------------------------- */

struct issued {
  char *token;
  json_t *claims;
  char kid[64];
};

static void issued_free(struct issued *t) {
  free(t->token);
  json_decref(t->claims);
  memset(t, 0, sizeof *t);
}

static void expect_claim_str(json_t *claims, const char *name, const char *want) {
  const char *got = json_string_value(json_object_get(claims, name));
  if (got == NULL || strcmp(got, want) != 0)
    fail_msg("claim %s is %s, want %s", name, got ? got : "(missing or not a string)", want);
}

static int64_t claim_int(json_t *claims, const char *name) {
  json_t *v = json_object_get(claims, name);
  if (!json_is_integer(v))
    fail_msg("claim %s must be an integer NumericDate", name);
  return json_integer_value(v);
}

/* The principal's GET /v1/me/activity lists this exchange, newest first,
 * and as many token_issued items for the mandate as the audit trail has. */
static void expect_activity(const struct who *p, const struct who *rep, const char *client_id,
                            const char *service, const char *mandate_id) {
  struct api_response *r = api_call("GET", "/v1/me/activity?limit=100", p->token, NULL);
  api_expect_status(r, 200);
  json_t *items = json_object_get(r->json, "items");
  json_t *first = json_array_get(items, 0);
  const char *fields[][2] = {{"event", "token_issued"},
                             {"actor", rep->party},
                             {"client", client_id},
                             {"service", service},
                             {"mandate_id", mandate_id}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const char *got = json_string_value(json_object_get(first, fields[i][0]));
    if (got == NULL || strcmp(got, fields[i][1]) != 0)
      fail_msg("the principal's newest activity must be token_issued with %s = %s: %s",
               fields[i][0], fields[i][1], api_describe(r));
  }
  int64_t at;
  if (!parse_datetime(json_string_value(json_object_get(first, "at")), &at) ||
      llabs(at / 1000000 - (long long)time(NULL)) > 60)
    fail_msg("the activity's at must be the exchange's date-time: %s", api_describe(r));
  long long listed = 0;
  size_t i;
  json_t *item;
  json_array_foreach(items, i, item) {
    const char *event = json_string_value(json_object_get(item, "event"));
    const char *m = json_string_value(json_object_get(item, "mandate_id"));
    listed += event && m && strcmp(event, "token_issued") == 0 && strcmp(m, mandate_id) == 0;
  }
  long long audited = db_int("SELECT count(*) FROM audit_events WHERE event = 'token_issued'"
                             " AND mandate_id = $1",
                             mandate_id, NULL);
  if (listed != audited)
    fail_msg("the principal sees %lld token_issued item(s) for mandate %s, the audit trail "
             "has %lld",
             listed, mandate_id, audited);
  api_response_free(r);
}

/* Exchanges rep's login for a token for principal p on service with client
 * c (id client_id, audience) and checks everything the contract promises:
 * the RFC 8693 answer, the header and exactly the specified claims, both
 * verifiers, one token_issued audit row and the principal's activity. */
static struct issued exchange_ok(const struct cred *c, const char *client_id, const char *audience,
                                 const struct who *p, const struct who *rep, const char *service,
                                 const char *mandate_id, const char *kind) {
  long long seq = audit_head_seq();
  int64_t before = (int64_t)time(NULL);
  struct api_response *r = exchange(c, rep, p->party, service);
  int64_t after = (int64_t)time(NULL);
  api_expect_status(r, 200);
  expect_oauth_json(r);
  const char *access = api_str(r, "access_token");
  json_t *expires_in = json_object_get(r->json, "expires_in");
  if (access == NULL || api_str(r, "issued_token_type") == NULL ||
      strcmp(api_str(r, "issued_token_type"), TYPE_ACCESS_TOKEN) != 0 ||
      api_str(r, "token_type") == NULL || strcmp(api_str(r, "token_type"), "Bearer") != 0 ||
      !json_is_integer(expires_in) || json_object_get(r->json, "refresh_token") != NULL)
    fail_msg("expected access_token, issued_token_type " TYPE_ACCESS_TOKEN
             ", token_type Bearer, expires_in and no refresh_token: %s",
             api_describe(r));
  struct issued t = {.token = strdup(access)};
  json_int_t lifetime = json_integer_value(expires_in);
  api_response_free(r);

  /* Header: ES256, at+jwt, a kid we publish; nothing else. */
  json_t *header = jws_segment(t.token, 0);
  const char *kid = json_string_value(json_object_get(header, "kid"));
  if (json_object_size(header) != 3 || kid == NULL)
    fail_msg("the header must be exactly alg, typ and kid");
  expect_claim_str(header, "alg", "ES256");
  expect_claim_str(header, "typ", "at+jwt");
  snprintf(t.kid, sizeof t.kid, "%s", kid);
  json_decref(header);

  /* Claims: exactly these, with these values. */
  t.claims = jws_segment(t.token, 1);
  static const char *const names[] = {"iss", "aud",     "client_id", "sub", "act", "scope",
                                      "acr", "mandate", "jti",       "iat", "nbf", "exp"};
  if (json_object_size(t.claims) != sizeof names / sizeof names[0])
    fail_msg("the token must carry exactly iss, aud, client_id, sub, act, scope, acr, mandate, "
             "jti, iat, nbf and exp; it has %zu claims",
             json_object_size(t.claims));
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (json_object_get(t.claims, names[i]) == NULL)
      fail_msg("the token has no %s claim", names[i]);
  expect_claim_str(t.claims, "iss", api_env("MACHTIGEN_URL"));
  expect_claim_str(t.claims, "aud", audience);
  expect_claim_str(t.claims, "client_id", client_id);
  expect_claim_str(t.claims, "sub", p->party);
  expect_claim_str(t.claims, "scope", service);
  expect_claim_str(t.claims, "acr", rep->loa);
  json_t *want_act =
      rep->employee[0] ? json_pack("{s:s, s:{s:s}}", "sub", rep->employee, "act", "sub", rep->party)
                       : json_pack("{s:s}", "sub", rep->party);
  if (!json_equal(json_object_get(t.claims, "act"), want_act)) {
    char *got = json_dumps(json_object_get(t.claims, "act"), JSON_COMPACT);
    char *want = json_dumps(want_act, JSON_COMPACT);
    fail_msg("act is %s, want %s", got, want);
  }
  json_decref(want_act);
  json_t *mandate = json_object_get(t.claims, "mandate");
  int64_t end = mandate_end_seconds(p, mandate_id);
  if (json_object_size(mandate) != 3)
    fail_msg("mandate must be exactly {id, kind, valid_until}");
  expect_claim_str(mandate, "id", mandate_id);
  expect_claim_str(mandate, "kind", kind);
  if (claim_int(mandate, "valid_until") != end)
    fail_msg("mandate.valid_until is %lld, the mandate ends at %lld",
             (long long)claim_int(mandate, "valid_until"), (long long)end);
  const char *jti = json_string_value(json_object_get(t.claims, "jti"));
  if (jti == NULL || strlen(jti) < 16)
    fail_msg("jti must be a string of at least 16 characters");
  int64_t iat = claim_int(t.claims, "iat"), nbf = claim_int(t.claims, "nbf"),
          exp = claim_int(t.claims, "exp");
  if (iat < before - 5 || iat > after + 5)
    fail_msg("iat %lld is not the time of issue (%lld..%lld)", (long long)iat, (long long)before,
             (long long)after);
  if (nbf > iat || nbf < iat - 60)
    fail_msg("nbf %lld must be at (or just before) iat %lld", (long long)nbf, (long long)iat);
  if (exp <= iat || exp - iat > MAX_TTL)
    fail_msg("exp - iat is %lld s: it must be 1..%d", (long long)(exp - iat), MAX_TTL);
  if (exp > end)
    fail_msg("exp %lld is past the mandate's end %lld", (long long)exp, (long long)end);
  if (lifetime != exp - iat)
    fail_msg("expires_in %lld differs from exp - iat %lld", (long long)lifetime,
             (long long)(exp - iat));

  expect_verified_by_both(t.token, audience, t.claims);

  /* Exactly one audit row, naming client, principal, service and jti. */
  audit_expect_one(seq, "token_issued", mandate_id, rep->party);
  char seqtext[32];
  snprintf(seqtext, sizeof seqtext, "%lld", seq);
  PGresult *row = db_query("SELECT client, principal, service, coalesce(actor_employee, ''),"
                           " detail::jsonb->>'jti' FROM audit_events WHERE seq > $1",
                           seqtext, NULL);
  const char *want_row[] = {client_id, p->party, service, rep->employee, jti};
  static const char *const row_names[] = {"client", "principal", "service", "actor_employee",
                                          "detail.jti"};
  for (int i = 0; i < 5; i++)
    if (strcmp(PQgetvalue(row, 0, i), want_row[i]) != 0)
      fail_msg("the token_issued audit row has %s = %s, want %s", row_names[i],
               PQgetvalue(row, 0, i), want_row[i]);
  PQclear(row);
  expect_activity(p, rep, client_id, service, mandate_id);
  return t;
}

static struct issued portal_exchange_ok(const struct who *p, const struct who *rep,
                                        const char *service, const char *mandate_id) {
  return exchange_ok(&portal, portal.id, api_env("PORTAL_AUDIENCE"), p, rep, service, mandate_id,
                     "voluntary");
}

/* ---- Clients registered by the test ------------------------------------- */

struct registered {
  char id[80];
  char secret[128];
  char audience[128];
};

/* POST /v1/admin/clients as the admin; body_extra is spliced into the
 * JSON object (e.g. "\"jwk\":{…}"). */
static struct registered register_portal(const char *services_json, const char *jwk_json) {
  struct registered c;
  char uuid[37];
  random_uuid(uuid);
  snprintf(c.audience, sizeof c.audience, "https://portal.example/test-%.8s", uuid);
  char *body = xasprintf("{\"name\":\"api-test %.8s\",\"role\":\"portal\",\"audience\":\"%s\","
                         "\"services\":%s%s%s}",
                         uuid, c.audience, services_json, jwk_json ? ",\"jwk\":" : "",
                         jwk_json ? jwk_json : "");
  char *auth = basic_header(api_env("ADMIN_CLIENT_ID"), api_env("ADMIN_CLIENT_SECRET"));
  const char *headers[] = {auth, "Content-Type: application/json", NULL};
  struct api_response *r = api_request("POST", "/v1/admin/clients", headers, body, strlen(body));
  free(auth);
  free(body);
  api_expect_status(r, 201);
  if (api_str(r, "client_id") == NULL || api_str(r, "client_secret") == NULL)
    fail_msg("a registered client needs client_id and client_secret: %s", api_describe(r));
  snprintf(c.id, sizeof c.id, "%s", api_str(r, "client_id"));
  snprintf(c.secret, sizeof c.secret, "%s", api_str(r, "client_secret"));
  api_response_free(r);
  return c;
}

/* ---- Metadata --------------------------------------------------------------- */

static void test_metadata_and_jwks(void **state) {
  (void)state;
  struct api_response *r = api_call("GET", "/.well-known/oauth-authorization-server", NULL, NULL);
  api_expect_status(r, 200);
  const char *base = api_env("MACHTIGEN_URL");
  char *token_ep = xasprintf("%s/oauth2/token", base);
  char *introspect_ep = xasprintf("%s/oauth2/introspect", base);
  char *jwks_uri = xasprintf("%s/.well-known/jwks.json", base);
  const char *want[][2] = {{"issuer", base},
                           {"token_endpoint", token_ep},
                           {"introspection_endpoint", introspect_ep},
                           {"jwks_uri", jwks_uri}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (api_str(r, want[i][0]) == NULL || strcmp(api_str(r, want[i][0]), want[i][1]) != 0)
      fail_msg("RFC 8414 metadata must have %s = %s: %s", want[i][0], want[i][1], api_describe(r));
  free(token_ep);
  free(introspect_ep);
  free(jwks_uri);
  json_t *grants = json_object_get(r->json, "grant_types_supported");
  json_t *methods = json_object_get(r->json, "token_endpoint_auth_methods_supported");
  bool te = false, basic = false, pkjwt = false;
  size_t i;
  json_t *v;
  json_array_foreach(grants, i, v) {
    const char *g = json_string_value(v);
    te = te || (g != NULL && strcmp(g, GRANT_TOKEN_EXCHANGE) == 0);
  }
  json_array_foreach(methods, i, v) {
    const char *m = json_string_value(v);
    basic = basic || (m != NULL && strcmp(m, "client_secret_basic") == 0);
    pkjwt = pkjwt || (m != NULL && strcmp(m, "private_key_jwt") == 0);
  }
  if (!te || !basic || !pkjwt)
    fail_msg("metadata must list token exchange, client_secret_basic and private_key_jwt: %s",
             api_describe(r));
  api_response_free(r);

  /* Public P-256 keys only, each with a kid, for ES256 signatures. */
  json_t *jwks = jwks_get();
  json_array_foreach(json_object_get(jwks, "keys"), i, v) {
    const char *fields[][2] = {{"kty", "EC"}, {"crv", "P-256"}};
    for (size_t f = 0; f < 2; f++)
      expect_claim_str(v, fields[f][0], fields[f][1]);
    if (json_object_get(v, "d") != NULL)
      fail_msg("the JWKS publishes a private key");
    if (!json_is_string(json_object_get(v, "kid")))
      fail_msg("every published key needs a kid");
    const char *alg = json_string_value(json_object_get(v, "alg"));
    if (alg != NULL && strcmp(alg, "ES256") != 0)
      fail_msg("a published key's alg is %s, not ES256", alg);
    free(pem_from_jwk(v));
  }
  json_decref(jwks);
}

/* ---- Successful exchanges ------------------------------------------------- */

static void test_exchange_person(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "uwv-ww-aanvragen", id);
  struct issued t = portal_exchange_ok(&p, &rep, "uwv-ww-aanvragen", id);

  /* The verifiers refuse what they should: libjwt with another key (and
   * a changed payload), jose with another audience or an altered token. */
  EVP_PKEY *stranger = EVP_EC_gen("P-256");
  json_t *stranger_jwk = public_jwk(stranger, "stranger");
  json_t *claims = libjwt_verify(t.token, stranger_jwk);
  if (claims != NULL)
    fail_msg("libjwt accepted the token with a key that did not sign it");
  json_decref(stranger_jwk);
  EVP_PKEY_free(stranger);
  char *why = NULL;
  claims = jose_verify(t.token, "https://portal.example/someone-else", &why);
  if (claims != NULL)
    fail_msg("npm jose accepted the token for another audience");
  if (strstr(why, "aud") == NULL)
    fail_msg("npm jose refused the token for another reason than its audience: %s", why);
  free(why);
  json_t *changed = json_deep_copy(t.claims);
  json_object_set_new(changed, "sub", json_string("bsn:123456782"));
  char *payload = test_b64url_json(changed);
  const char *d1 = strchr(t.token, '.'), *d2 = strrchr(t.token, '.');
  char *forged = xasprintf("%.*s.%s%s", (int)(d1 - t.token), t.token, payload, d2);
  free(payload);
  json_t *jwks = jwks_get();
  if (libjwt_verify(forged, jwks_key(jwks, t.kid)) != NULL)
    fail_msg("libjwt accepted a token whose payload was changed");
  json_decref(jwks);
  claims = jose_verify(forged, api_env("PORTAL_AUDIENCE"), &why);
  if (claims != NULL)
    fail_msg("npm jose accepted a token whose payload was changed");
  free(why);
  free(forged);

  /* A second exchange: a new token (new jti), a second audit row. */
  struct issued again = portal_exchange_ok(&p, &rep, "uwv-ww-aanvragen", id);
  if (json_equal(json_object_get(t.claims, "jti"), json_object_get(again.claims, "jti")))
    fail_msg("two exchanges gave the same jti");
  assert_int_equal(db_int("SELECT count(*) FROM audit_events WHERE event = 'token_issued'"
                          " AND mandate_id = $1",
                          id, NULL),
                   2);
  /* The representative's own activity is about mandates given to them,
   * not the principal's: the token shows up only for the principal. */
  struct api_response *r = api_call("GET", "/v1/me/activity", rep.token, NULL);
  api_expect_status(r, 200);
  size_t i;
  json_t *item;
  json_array_foreach(json_object_get(r->json, "items"), i, item) {
    const char *event = json_string_value(json_object_get(item, "event"));
    if (event != NULL && strcmp(event, "token_issued") == 0)
      fail_msg("the representative sees the principal's token_issued: %s", api_describe(r));
  }
  api_response_free(r);
  issued_free(&t);
  issued_free(&again);
  forget(&p);
  forget(&rep);
}

static void test_exchange_organisation_employee(void **state) {
  (void)state;
  struct who p = person("substantieel"), org = organisation("substantieel");
  char id[37];
  active_mandate(&p, &org, "belasting-aangifte", id);
  /* act: {sub: employee, act: {sub: kvk:…}}; the audit row names both. */
  struct issued t = portal_exchange_ok(&p, &org, "belasting-aangifte", id);
  issued_free(&t);
  forget(&p);
  forget(&org);
}

static void test_exchange_by_other_portal(void **state) {
  (void)state;
  /* The second portal, with its own audience, on the service it may use. */
  struct who p = person("midden"), rep = person("midden");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct issued t = exchange_ok(&other_portal, other_portal.id, other_audience, &p, &rep,
                                "gemeente-afval", id, "voluntary");
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

static void test_token_never_outlives_mandate(void **state) {
  (void)state;
  /* A mandate ending in 2 minutes: exp is its end, not iat + 10 minutes. */
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  PQclear(db_query("UPDATE mandates SET valid_until = date_trunc('second', now())"
                   " + interval '120 seconds' WHERE id = $1",
                   id, NULL));
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  int64_t exp = claim_int(t.claims, "exp");
  if (exp != claim_int(json_object_get(t.claims, "mandate"), "valid_until"))
    fail_msg("exp must be the mandate's end when it comes first");
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

/* ---- No usable mandate: invalid_grant, each with its own words ---------- */

enum refusal {
  NO_MANDATE,
  PENDING,
  LAPSED,
  DECLINED,
  REVOKED,
  SUSPENDED,
  EXPIRED,
  FUTURE,
  LOA_TOO_LOW,
  REFUSALS
};
static const char *const refusal_names[REFUSALS] = {
    "no mandate", "pending",         "lapsed request",       "declined",   "revoked",
    "suspended",  "expired (ended)", "future (not started)", "LoA too low"};
static char *descriptions[REFUSALS];

/* An exchange for p by rep on service must give 400 invalid_grant with an
 * error_description, and change nothing. */
static void expect_invalid_grant(enum refusal which, const struct who *p, const struct who *rep,
                                 const char *service) {
  char *desc = exchange_refused(&portal, rep, p->party, service, 400, "invalid_grant");
  if (desc[0] == '\0')
    fail_msg("invalid_grant for a %s mandate needs an error_description", refusal_names[which]);
  free(descriptions[which]);
  descriptions[which] = desc;
}

static void test_no_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel"), other = person("hoog");
  expect_invalid_grant(NO_MANDATE, &p, &rep, "gemeente-afval");
  /* A mandate to someone else, or for another service, is no mandate. */
  char id[37];
  active_mandate(&p, &other, "gemeente-afval", id);
  active_mandate(&p, &rep, "belasting-aangifte", id);
  char *desc = exchange_refused(&portal, &rep, p.party, "gemeente-afval", 400, "invalid_grant");
  if (strcmp(desc, descriptions[NO_MANDATE]) != 0)
    fail_msg("no mandate for this service must read like no mandate: \"%s\" vs \"%s\"", desc,
             descriptions[NO_MANDATE]);
  free(desc);
  /* The principal cannot act for the representative: direction matters. */
  desc = exchange_refused(&portal, &p, rep.party, "belasting-aangifte", 400, "invalid_grant");
  free(desc);
  forget(&p);
  forget(&rep);
  forget(&other);
}

static void test_pending_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  grant(&p, &rep, "gemeente-afval", NULL, NULL, id);
  expect_invalid_grant(PENDING, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

static void test_lapsed_request(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  grant(&p, &rep, "gemeente-afval", NULL, NULL, id);
  PQclear(db_query("UPDATE mandates SET created_at = now() - interval '22 days' WHERE id = $1", id,
                   NULL));
  expect_invalid_grant(LAPSED, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

static void test_declined_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  grant(&p, &rep, "gemeente-afval", NULL, NULL, id);
  act(&rep, "decline", id, 1);
  expect_invalid_grant(DECLINED, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

static void test_revoked_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  act(&p, "revoke", id, 2);
  expect_invalid_grant(REVOKED, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

/* POST /v1/admin/mandates/{id}/{action} as the admin, at this version. */
static void admin_act(const char *action, const char *id, int version) {
  char *path = xasprintf("/v1/admin/mandates/%s/%s", id, action);
  char *auth = basic_header(api_env("ADMIN_CLIENT_ID"), api_env("ADMIN_CLIENT_SECRET"));
  char *match = xasprintf("If-Match: \"%d\"", version);
  const char *headers[] = {auth, match, NULL};
  struct api_response *r = api_request("POST", path, headers, NULL, 0);
  api_expect_status(r, 200);
  api_response_free(r);
  free(match);
  free(auth);
  free(path);
}

static void test_suspended_mandate(void **state) {
  (void)state;
  /* A token issued before the suspension goes inactive with it, and
   * comes back when the admin resumes the mandate within its life. */
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  admin_act("suspend", id, 2);
  if (active(&portal, t.token))
    fail_msg("a token for a suspended mandate must be inactive at once");
  expect_invalid_grant(SUSPENDED, &p, &rep, "gemeente-afval");
  admin_act("resume", id, 3);
  if (!active(&portal, t.token))
    fail_msg("a token for a resumed mandate must be active again");
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

static void test_expired_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  PQclear(db_query("UPDATE mandates SET valid_from = now() - interval '20 days',"
                   " valid_until = now() - interval '1 day' WHERE id = $1",
                   id, NULL));
  expect_invalid_grant(EXPIRED, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

static void test_future_mandate(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char from[11], until[11], id[37];
  date_from_today(7, from);
  date_from_today(37, until);
  grant(&p, &rep, "gemeente-afval", from, until, id);
  act(&rep, "accept", id, 1);
  expect_invalid_grant(FUTURE, &p, &rep, "gemeente-afval");
  forget(&p);
  forget(&rep);
}

static void test_loa_too_low(void **state) {
  (void)state;
  /* uwv-ww-aanvragen needs midden; the representative logs in with basis. */
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "uwv-ww-aanvragen", id);
  relogin(&rep, "basis");
  expect_invalid_grant(LOA_TOO_LOW, &p, &rep, "uwv-ww-aanvragen");
  /* At exactly the service's level it works, and acr says midden. */
  relogin(&rep, "midden");
  struct issued t = portal_exchange_ok(&p, &rep, "uwv-ww-aanvragen", id);
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

static void test_invalid_grant_descriptions_distinct(void **state) {
  (void)state;
  for (int i = 0; i < REFUSALS; i++) {
    if (descriptions[i] == NULL)
      fail_msg("the %s case did not run to its invalid_grant", refusal_names[i]);
    for (int j = 0; j < i; j++)
      if (descriptions[j] != NULL && strcmp(descriptions[i], descriptions[j]) == 0)
        fail_msg("%s and %s give the same error_description \"%s\": a portal cannot tell "
                 "them apart",
                 refusal_names[i], refusal_names[j], descriptions[i]);
  }
}

/* ---- invalid_scope ------------------------------------------------------- */

static void test_wrong_service(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  const char *scopes[] = {"no-such-service", "gemeente-afval belasting-aangifte", "",
                          "GEMEENTE-AFVAL"};
  for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
    free(exchange_refused(&portal, &rep, p.party, scopes[i], 400, "invalid_scope"));
  /* No scope at all. */
  struct db_snapshot before = db_snapshot();
  struct api_response *r =
      token_request(&portal, GRANT_TOKEN_EXCHANGE, rep.token, TYPE_ID_TOKEN, p.party, NULL);
  free(refused(r, &before, 400, "invalid_scope", &portal, "no scope"));
  forget(&p);
  forget(&rep);
}

static void test_client_not_allowed_service(void **state) {
  (void)state;
  /* The other portal may only use gemeente-afval. */
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "uwv-ww-aanvragen", id);
  free(exchange_refused(&other_portal, &rep, p.party, "uwv-ww-aanvragen", 400, "invalid_scope"));
  /* A portal registered without any service may use none. */
  struct registered none = register_portal("[]", NULL);
  struct cred c = {none.id, none.secret, NULL};
  char afval[37];
  active_mandate(&p, &rep, "gemeente-afval", afval);
  free(exchange_refused(&c, &rep, p.party, "gemeente-afval", 400, "invalid_scope"));
  /* …while the portal that may use it gets its token. */
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", afval);
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

/* ---- invalid_request ------------------------------------------------------- */

static void test_subject_token_expired_or_forged(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  static const enum token_kind bad[] = {
      TOKEN_EXPIRED, TOKEN_WRONG_AUD,   TOKEN_ALG_NONE, TOKEN_HS256_JWK, TOKEN_HS256_X,
      TOKEN_FORGED,  TOKEN_UNKNOWN_KID, TOKEN_TAMPERED, TOKEN_GARBAGE,   TOKEN_OVERSIZED,
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *header = token_authorization(bad[i], rep.party, "substantieel");
    struct who forged = rep;
    forged.token = header + strlen("Bearer ");
    struct db_snapshot before = db_snapshot();
    struct api_response *r = exchange(&portal, &forged, p.party, "gemeente-afval");
    char *desc = expect_oauth_error(r, 400, "invalid_request", &portal);
    db_expect_unchanged(&before, token_kind_name(bad[i]));
    if (desc[0] == '\0')
      fail_msg("a %s subject token needs an error_description: %s", token_kind_name(bad[i]),
               api_describe(r));
    free(desc);
    api_response_free(r);
    free(header);
  }
  /* Missing, empty, or of another type. */
  struct db_snapshot before = db_snapshot();
  struct api_response *r =
      token_request(&portal, GRANT_TOKEN_EXCHANGE, NULL, TYPE_ID_TOKEN, p.party, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "no subject_token"));
  r = token_request(&portal, GRANT_TOKEN_EXCHANGE, "", TYPE_ID_TOKEN, p.party, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "empty subject_token"));
  r = token_request(&portal, GRANT_TOKEN_EXCHANGE, rep.token,
                    "urn:ietf:params:oauth:token-type:saml2", p.party, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "a SAML subject_token_type"));
  r = token_request(&portal, GRANT_TOKEN_EXCHANGE, rep.token, NULL, p.party, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "no subject_token_type"));
  forget(&p);
  forget(&rep);
}

static void test_requested_subject_missing_or_malformed(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct db_snapshot before = db_snapshot();
  struct api_response *r = token_request(&portal, GRANT_TOKEN_EXCHANGE, rep.token, TYPE_ID_TOKEN,
                                         NULL, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "no requested_subject"));
  /* Bad 11-check, the zero BSN, no prefix, too short, an organisation. */
  char bad_check[14];
  snprintf(bad_check, sizeof bad_check, "%s", p.party);
  bad_check[12] = bad_check[12] == '9' ? '0' : (char)(bad_check[12] + 1);
  const char *malformed[] = {bad_check,       "bsn:000000000", p.party + 4,
                             "bsn:12345678",  "kvk:12345678",  "",
                             "bsn:1234567820"};
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
    free(exchange_refused(&portal, &rep, malformed[i], "gemeente-afval", 400, "invalid_request"));
  forget(&p);
  forget(&rep);
}

static void test_wrong_grant_type(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  const char *grants[] = {"client_credentials", "refresh_token", "password",
                          "urn:ietf:params:oauth:grant-type:jwt-bearer"};
  struct db_snapshot before = db_snapshot();
  for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
    struct api_response *r =
        token_request(&portal, grants[i], rep.token, TYPE_ID_TOKEN, p.party, "gemeente-afval");
    free(refused(r, &before, 400, "unsupported_grant_type", &portal, grants[i]));
  }
  struct api_response *r =
      token_request(&portal, NULL, rep.token, TYPE_ID_TOKEN, p.party, "gemeente-afval");
  free(refused(r, &before, 400, "invalid_request", &portal, "no grant_type"));
  forget(&p);
  forget(&rep);
}

/* ---- Client authentication ------------------------------------------------- */

static void test_client_secret_refused(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  char wrong[160];
  snprintf(wrong, sizeof wrong, "%sx", portal.secret);
  char unknown_id[37];
  random_uuid(unknown_id);
  struct cred bad[] = {
      {portal.id, wrong, NULL},               /* wrong secret */
      {portal.id, "", NULL},                  /* empty secret */
      {unknown_id, portal.secret, NULL},      /* unknown client */
      {other_portal.id, portal.secret, NULL}, /* another client's secret */
      {NULL, NULL, NULL},                     /* no credentials */
      {NULL, NULL, "not.a-valid.assertion"},  /* a garbage assertion */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    free(exchange_refused(&bad[i], &rep, p.party, "gemeente-afval", 401, "invalid_client"));
  /* The same at introspection. */
  struct api_response *r = introspect(&bad[0], "anything");
  free(expect_oauth_error(r, 401, "invalid_client", &bad[0]));
  api_response_free(r);
  r = introspect(&bad[4], "anything");
  free(expect_oauth_error(r, 401, "invalid_client", &bad[4]));
  api_response_free(r);
  /* An admin client is no portal: it may not exchange tokens. */
  struct cred admin = {api_env("ADMIN_CLIENT_ID"), api_env("ADMIN_CLIENT_SECRET"), NULL};
  free(exchange_refused(&admin, &rep, p.party, "gemeente-afval", 400, "unauthorized_client"));
  forget(&p);
  forget(&rep);
}

/* An RFC 7523 client assertion by key for client id. */
static char *assertion(EVP_PKEY *key, const char *kid, const char *id, const char *aud,
                       int64_t exp_from_now) {
  char jti[37];
  random_uuid(jti);
  int64_t now = (int64_t)time(NULL);
  json_t *header = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
  json_t *claims =
      json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", id, "sub", id, "aud", aud, "jti", jti,
                "iat", (json_int_t)now, "exp", (json_int_t)(now + exp_from_now));
  return es256_jws(key, header, claims);
}

static void test_private_key_jwt(void **state) {
  (void)state;
  EVP_PKEY *key = EVP_EC_gen("P-256");
  char kid[37];
  random_uuid(kid);
  json_t *jwk = public_jwk(key, kid);
  char *jwk_text = json_dumps(jwk, JSON_COMPACT);
  json_decref(jwk);
  struct registered client = register_portal("[\"gemeente-afval\"]", jwk_text);
  free(jwk_text);
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  char *token_ep = xasprintf("%s/oauth2/token", api_env("MACHTIGEN_URL"));

  /* Works once… */
  char *once = assertion(key, kid, client.id, token_ep, 60);
  struct cred c = {NULL, NULL, once};
  struct issued t =
      exchange_ok(&c, client.id, client.audience, &p, &rep, "gemeente-afval", id, "voluntary");
  issued_free(&t);
  /* …and never again: the same jti is refused. */
  free(exchange_refused(&c, &rep, p.party, "gemeente-afval", 401, "invalid_client"));
  free(once);

  /* The issuer as aud works too (RFC 7523 §3); a new jti each time. */
  char *by_issuer = assertion(key, kid, client.id, api_env("MACHTIGEN_URL"), 60);
  c.assertion = by_issuer;
  t = exchange_ok(&c, client.id, client.audience, &p, &rep, "gemeente-afval", id, "voluntary");
  issued_free(&t);
  free(by_issuer);

  /* Refused: another audience, expired, too long-lived, another key,
   * iss/sub of another client. */
  EVP_PKEY *stranger = EVP_EC_gen("P-256");
  char *bad[] = {
      assertion(key, kid, client.id, "https://elsewhere.example/oauth2/token", 60),
      assertion(key, kid, client.id, token_ep, -30),
      assertion(key, kid, client.id, token_ep, 3600),
      assertion(stranger, kid, client.id, token_ep, 60),
      assertion(key, kid, portal.id, token_ep, 60),
  };
  const char *why[] = {"wrong aud", "expired", "lives an hour", "another key", "another client"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c.assertion = bad[i];
    struct db_snapshot before = db_snapshot();
    struct api_response *r = exchange(&c, &rep, p.party, "gemeente-afval");
    free(refused(r, &before, 401, "invalid_client", &c, why[i]));
    free(bad[i]);
  }
  EVP_PKEY_free(stranger);

  /* The client's assertion also opens introspection. */
  char *fresh = assertion(key, kid, client.id, token_ep, 60);
  c.assertion = fresh;
  struct cred basic = {client.id, client.secret, NULL};
  t = exchange_ok(&basic, client.id, client.audience, &p, &rep, "gemeente-afval", id, "voluntary");
  if (!active(&c, t.token))
    fail_msg("introspection with a private_key_jwt assertion says inactive for a live token");
  issued_free(&t);
  free(fresh);
  free(token_ep);
  EVP_PKEY_free(key);
  forget(&p);
  forget(&rep);
}

/* ---- Introspection ------------------------------------------------------ */

static void test_revocation_bites_at_once(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  if (!active(&portal, t.token))
    fail_msg("a fresh token must be active");
  struct api_response *r = introspect(&portal, t.token);
  json_t *tt = json_object_get(r->json, "token_type");
  if (tt != NULL && !json_is_string(tt))
    fail_msg("token_type must be a string: %s", api_describe(r));
  api_response_free(r);
  act(&p, "revoke", id, 2);
  if (active(&portal, t.token))
    fail_msg("a token for a revoked mandate must be inactive at once");
  free(exchange_refused(&portal, &rep, p.party, "gemeente-afval", 400, "invalid_grant"));
  issued_free(&t);

  /* The representative may revoke too, with the same effect. */
  char id2[37];
  active_mandate(&p, &rep, "gemeente-afval", id2);
  t = portal_exchange_ok(&p, &rep, "gemeente-afval", id2);
  if (!active(&portal, t.token))
    fail_msg("a fresh token must be active");
  act(&rep, "revoke", id2, 2);
  if (active(&portal, t.token))
    fail_msg("a token for a mandate its representative revoked must be inactive at once");
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

static void test_introspection_by_other_audience(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  if (active(&other_portal, t.token))
    fail_msg("a portal with another audience must see another portal's token as inactive");
  if (!active(&portal, t.token))
    fail_msg("the token must still be active for its own audience");
  /* Garbage is inactive, not an error; no token parameter is. */
  if (active(&portal, "not-a-token") || active(&portal, "a.b.c"))
    fail_msg("garbage must be inactive");
  struct api_response *r = oauth_post("/oauth2/introspect", &portal, "");
  free(expect_oauth_error(r, 400, "invalid_request", &portal));
  api_response_free(r);
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

static void test_expired_token_inactive(void **state) {
  (void)state;
  /* The mandate ends in 6 s, so the token does too (exp = its end).  Then
   * the mandate is extended: the token stays expired, while a new token
   * for the same, live mandate is active. */
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  PQclear(db_query("UPDATE mandates SET valid_until = date_trunc('second', now())"
                   " + interval '6 seconds' WHERE id = $1",
                   id, NULL));
  struct issued t = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  int64_t exp = claim_int(t.claims, "exp");
  PQclear(db_query("UPDATE mandates SET valid_until = now() + interval '30 days' WHERE id = $1", id,
                   NULL));
  while ((int64_t)time(NULL) <= exp)
    usleep(200000);
  if (active(&portal, t.token))
    fail_msg("a token past its exp must be inactive");
  char *why = NULL;
  if (jose_verify(t.token, api_env("PORTAL_AUDIENCE"), &why) != NULL)
    fail_msg("npm jose accepted an expired token");
  if (strstr(why, "exp") == NULL)
    fail_msg("npm jose refused the expired token for another reason: %s", why);
  free(why);
  struct issued fresh = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  if (!active(&portal, fresh.token))
    fail_msg("a new token for the extended mandate must be active");
  issued_free(&fresh);
  issued_free(&t);
  forget(&p);
  forget(&rep);
}

/* ---- Key rotation ------------------------------------------------------- */

static char *machtigend_keys(const char *args, int *status) {
  char *bin = shell_quote(api_env("MACHTIGEN_BIN"));
  char *command = xasprintf("%s keys %s", bin, args);
  free(bin);
  char *out = run(command, status);
  free(command);
  return out;
}

static void test_key_rotation(void **state) {
  (void)state;
  struct who p = person("substantieel"), rep = person("substantieel");
  char id[37];
  active_mandate(&p, &rep, "gemeente-afval", id);
  struct issued old = portal_exchange_ok(&p, &rep, "gemeente-afval", id);

  int status;
  char *out = machtigend_keys("rotate", &status);
  char new_kid[64] = "";
  if (status != 0 || sscanf(out, "kid=%63s", new_kid) != 1)
    fail_msg("`machtigend keys rotate` failed (status %d): %s", status, out);
  free(out);
  if (strcmp(new_kid, old.kid) == 0)
    fail_msg("rotation kept the kid %s", new_kid);
  wait_for_kid(new_kid, true);

  /* Overlap: the old kid stays published; the old token still verifies
   * offline and online; new tokens are signed with the new key. */
  if (!jwks_has(old.kid))
    fail_msg("after rotation the JWKS must still publish the old kid %s", old.kid);
  expect_verified_by_both(old.token, api_env("PORTAL_AUDIENCE"), old.claims);
  if (!active(&portal, old.token))
    fail_msg("a token signed before the rotation must stay active");
  struct issued fresh = portal_exchange_ok(&p, &rep, "gemeente-afval", id);
  if (strcmp(fresh.kid, new_kid) != 0)
    fail_msg("after the reload new tokens must be signed by %s, not %s", new_kid, fresh.kid);

  /* A plain prune keeps a key whose tokens may still be live. */
  out = machtigend_keys("prune", &status);
  if (status != 0 || strstr(out, old.kid) != NULL)
    fail_msg("`machtigend keys prune` (status %d) must keep the key retired just now: %s", status,
             out);
  free(out);
  out = machtigend_keys("list", &status);
  if (status != 0 || strstr(out, old.kid) == NULL || strstr(out, new_kid) == NULL)
    fail_msg("`machtigend keys list` must list both keys: %s", out);
  free(out);

  /* prune --force drops it: gone from the JWKS, its tokens inactive. */
  out = machtigend_keys("prune --force", &status);
  if (status != 0 || strstr(out, old.kid) == NULL)
    fail_msg("`machtigend keys prune --force` (status %d) must drop %s: %s", status, old.kid, out);
  free(out);
  wait_for_kid(old.kid, false);
  if (!jwks_has(new_kid))
    fail_msg("prune --force must keep the current key %s", new_kid);
  if (active(&portal, old.token))
    fail_msg("a token signed by a pruned key must be inactive");
  char *why = NULL;
  if (jose_verify(old.token, api_env("PORTAL_AUDIENCE"), &why) != NULL)
    fail_msg("npm jose still verifies a token whose key was pruned");
  free(why);
  if (!active(&portal, fresh.token))
    fail_msg("a token signed by the current key must stay active");
  expect_verified_by_both(fresh.token, api_env("PORTAL_AUDIENCE"), fresh.claims);
  issued_free(&fresh);
  issued_free(&old);
  forget(&p);
  forget(&rep);
}

/* ---- Audit ------------------------------------------------------------------- */

static void test_audit_chain(void **state) {
  (void)state;
  audit_expect_chain();
}

/* ---- Setup ---------------------------------------------------------------- */

static void require_env(void) {
  for (size_t i = 0; i < sizeof required_env / sizeof required_env[0]; i++) {
    const char *v = getenv(required_env[i]);
    if (v == NULL || v[0] == '\0') {
      fprintf(stderr,
              "FAIL: %s is not set. The token tests need the portal and admin clients, the key "
              "directory and binary that `tools/dev test` exports (PORTAL_CLIENT_ID, "
              "PORTAL_CLIENT_SECRET, PORTAL_AUDIENCE, OTHER_PORTAL_CLIENT_ID, "
              "OTHER_PORTAL_CLIENT_SECRET, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, "
              "MACHTIGEN_KEY_DIR, MACHTIGEN_BIN), and NODE and VERIFY_JOSE from meson.\n",
              required_env[i]);
      exit(1);
    }
  }
}

static int group_setup(void **state) {
  (void)state;
  portal = (struct cred){api_env("PORTAL_CLIENT_ID"), api_env("PORTAL_CLIENT_SECRET"), NULL};
  other_portal =
      (struct cred){api_env("OTHER_PORTAL_CLIENT_ID"), api_env("OTHER_PORTAL_CLIENT_SECRET"), NULL};
  /* The second portal's audience, which must differ from the first's. */
  PGconn *conn = PQconnectdb(api_env("DATABASE_URL"));
  const char *params[] = {other_portal.id};
  PGresult *r = PQexecParams(conn, "SELECT audience FROM clients WHERE id = $1", 1, NULL, params,
                             NULL, NULL, 0);
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
  if (ok)
    snprintf(other_audience, sizeof other_audience, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(conn);
  if (!ok) {
    fprintf(stderr, "FAIL: OTHER_PORTAL_CLIENT_ID %s is not a portal client in DATABASE_URL\n",
            other_portal.id);
    return -1;
  }
  if (strcmp(other_audience, api_env("PORTAL_AUDIENCE")) == 0) {
    fprintf(stderr, "FAIL: the other portal must have another audience than PORTAL_AUDIENCE\n");
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  for (int i = 0; i < REFUSALS; i++)
    free(descriptions[i]);
  db_close();
  return 0;
}

int main(void) {
  api_init();
  require_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metadata_and_jwks),
      cmocka_unit_test(test_exchange_person),
      cmocka_unit_test(test_exchange_organisation_employee),
      cmocka_unit_test(test_exchange_by_other_portal),
      cmocka_unit_test(test_token_never_outlives_mandate),
      cmocka_unit_test(test_no_mandate),
      cmocka_unit_test(test_pending_mandate),
      cmocka_unit_test(test_lapsed_request),
      cmocka_unit_test(test_declined_mandate),
      cmocka_unit_test(test_revoked_mandate),
      cmocka_unit_test(test_suspended_mandate),
      cmocka_unit_test(test_expired_mandate),
      cmocka_unit_test(test_future_mandate),
      cmocka_unit_test(test_loa_too_low),
      cmocka_unit_test(test_invalid_grant_descriptions_distinct),
      cmocka_unit_test(test_wrong_service),
      cmocka_unit_test(test_client_not_allowed_service),
      cmocka_unit_test(test_subject_token_expired_or_forged),
      cmocka_unit_test(test_requested_subject_missing_or_malformed),
      cmocka_unit_test(test_wrong_grant_type),
      cmocka_unit_test(test_client_secret_refused),
      cmocka_unit_test(test_private_key_jwt),
      cmocka_unit_test(test_revocation_bites_at_once),
      cmocka_unit_test(test_introspection_by_other_audience),
      cmocka_unit_test(test_expired_token_inactive),
      cmocka_unit_test(test_key_rotation),
      /* Last: every token_issued row above must be chained. */
      cmocka_unit_test(test_audit_chain),
  };
  return cmocka_run_group_tests_name("tokens", tests, group_setup, group_teardown);
}
