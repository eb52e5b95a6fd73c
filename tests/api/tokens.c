#include "tokens.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs setjmp.h, stdarg.h, stddef.h and stdint.h first. */
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "client.h"

#define MAX_TOKEN 8192

/* ---- Random parties ------------------------------------------------------ */

static unsigned random_below(unsigned n) {
  uint32_t v;
  if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
    abort();
  return v % n; /* the bias is irrelevant for test data */
}

void random_bsn(char out[14]) {
  for (;;) {
    int d[9], sum = 0;
    bool all_zero = true;
    for (int i = 0; i < 8; i++) {
      d[i] = (int)random_below(10);
      sum += (9 - i) * d[i];
      all_zero = all_zero && d[i] == 0;
    }
    /* 9*d1 + … + 2*d8 - d9 ≡ 0 (mod 11): d9 is the sum mod 11, if a digit. */
    d[8] = sum % 11;
    if (d[8] == 10 || (all_zero && d[8] == 0))
      continue;
    snprintf(out, 14, "bsn:%d%d%d%d%d%d%d%d%d", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
             d[8]);
    return;
  }
}

void random_kvk(char out[13]) {
  unsigned v = 1 + random_below(99999999);
  snprintf(out, 13, "kvk:%08u", v);
}

void random_uuid(char out[37]) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1)
    abort();
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

/* ---- base64url ------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *test_b64url_encode(const unsigned char *in, size_t n) {
  char *out = malloc(n / 3 * 4 + 5);
  if (out == NULL)
    abort();
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = b64chars[(v >> 18) & 63];
    out[o++] = b64chars[(v >> 12) & 63];
    if (i + 1 < n)
      out[o++] = b64chars[(v >> 6) & 63];
    if (i + 2 < n)
      out[o++] = b64chars[v & 63];
  }
  out[o] = '\0';
  return out;
}

/* Decodes n characters; returns the byte count (out has room for n bytes). */
size_t test_b64url_decode(const char *in, size_t n, unsigned char *out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = strchr(b64chars, in[i]);
    if (p == NULL || in[i] == '\0')
      fail_msg("not base64url: %.*s", (int)n, in);
    acc = (acc << 6) | (uint32_t)(p - b64chars);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  return o;
}

char *test_b64url_json(json_t *j /* stolen */) {
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (text == NULL)
    abort();
  char *enc = test_b64url_encode((const unsigned char *)text, strlen(text));
  free(text);
  return enc;
}

/* ---- dev-idp -------------------------------------------------------------- */

struct text {
  char *data;
  size_t len;
};

static size_t on_text(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct text *t = userdata;
  size_t n = size * nmemb;
  char *grown = realloc(t->data, t->len + n + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + t->len, ptr, n);
  t->data = grown;
  t->len += n;
  t->data[t->len] = '\0';
  return n;
}

static char *idp_get(const char *path_and_query) {
  char *url = xasprintf("%s%s", api_env("IDP_URL"), path_and_query);
  struct text t = {NULL, 0};
  CURL *curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_text);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK || status != 200 || t.data == NULL) {
    char msg[300];
    snprintf(msg, sizeof msg, "dev-idp GET %s: %s, status %ld: %.150s", url, curl_easy_strerror(rc),
             status, t.data ? t.data : "");
    free(url);
    free(t.data);
    fail_msg("%s", msg);
  }
  free(url);
  return t.data;
}

char *token_mint(const char *query) {
  char *path = xasprintf("/mint?%s", query);
  char *token = idp_get(path);
  free(path);
  return token;
}

char *token_person(const char *party, const char *loa) {
  const char *digits = strncmp(party, "bsn:", 4) == 0 ? party + 4 : party;
  char *q = xasprintf("bsn=%s&loa=%s", digits, loa);
  char *t = token_mint(q);
  free(q);
  return t;
}

char *token_org(const char *party, const char *employee, const char *loa) {
  const char *digits = strncmp(party, "kvk:", 4) == 0 ? party + 4 : party;
  char *q = xasprintf("kvk=%s&employee=%s&loa=%s", digits, employee, loa);
  char *t = token_mint(q);
  free(q);
  return t;
}

/* The IdP's published key, fetched once. */
static struct {
  bool loaded;
  char kid[128];
  char *jwk_json; /* the key object as compact JSON */
  unsigned char x[64];
  size_t x_len;
} idp_key;

static void load_idp_key(void) {
  if (idp_key.loaded)
    return;
  char *text = idp_get("/jwks.json");
  json_t *jwks = json_loads(text, 0, NULL);
  free(text);
  json_t *key = json_array_get(json_object_get(jwks, "keys"), 0);
  const char *kid = json_string_value(json_object_get(key, "kid"));
  const char *x = json_string_value(json_object_get(key, "x"));
  if (kid == NULL || x == NULL || strlen(x) > 80)
    fail_msg("dev-idp's JWKS has no EC key with kid and x");
  snprintf(idp_key.kid, sizeof idp_key.kid, "%s", kid);
  idp_key.x_len = test_b64url_decode(x, strlen(x), idp_key.x);
  idp_key.jwk_json = json_dumps(key, JSON_COMPACT);
  json_decref(jwks);
  idp_key.loaded = true;
}

/* ---- Forging ------------------------------------------------------------- */

struct parts {
  char *header, *payload, *signature; /* base64url text */
};

static struct parts split_token(const char *token) {
  const char *d1 = strchr(token, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (d2 == NULL)
    fail_msg("dev-idp's token is not a compact JWS: %.80s", token);
  struct parts p = {strndup(token, (size_t)(d1 - token)), strndup(d1 + 1, (size_t)(d2 - d1 - 1)),
                    strdup(d2 + 1)};
  return p;
}

static void free_parts(struct parts *p) {
  free(p->header);
  free(p->payload);
  free(p->signature);
}

static json_t *decode_json(const char *b64) {
  size_t n = strlen(b64);
  unsigned char *buf = malloc(n + 1);
  size_t len = test_b64url_decode(b64, n, buf);
  json_t *j = json_loadb((const char *)buf, len, 0, NULL);
  free(buf);
  if (j == NULL)
    fail_msg("token segment is not JSON");
  return j;
}

static char *header_b64(const char *alg, const char *kid) {
  return test_b64url_json(json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid));
}

/* A fresh P-256 key of ours, made once. */
static EVP_PKEY *our_key(void) {
  static EVP_PKEY *key;
  if (key == NULL)
    key = EVP_EC_gen("P-256");
  if (key == NULL)
    fail_msg("cannot make an EC key");
  return key;
}

/* JWS ES256 signature (r || s, 64 bytes) of input by our key, base64url. */
static char *es256_sign(const char *input) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[128];
  size_t der_len = sizeof der;
  if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, our_key()) != 1 ||
      EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, strlen(input)) != 1)
    fail_msg("ES256 signing failed");
  EVP_MD_CTX_free(md);
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(sig, &r, &s);
  unsigned char raw[64];
  BN_bn2binpad(r, raw, 32);
  BN_bn2binpad(s, raw + 32, 32);
  ECDSA_SIG_free(sig);
  return test_b64url_encode(raw, sizeof raw);
}

static char *hs256_sign(const char *input, const unsigned char *secret, size_t secret_len) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input, strlen(input), mac,
           &mac_len) == NULL)
    fail_msg("HMAC failed");
  return test_b64url_encode(mac, mac_len);
}

/* header.payload of a token, with its signature by the given method. */
static char *assemble(const char *header, const char *payload, enum token_kind kind) {
  char *input = xasprintf("%s.%s", header, payload);
  char *sig;
  switch (kind) {
  case TOKEN_HS256_JWK:
    sig = hs256_sign(input, (const unsigned char *)idp_key.jwk_json, strlen(idp_key.jwk_json));
    break;
  case TOKEN_HS256_X:
    sig = hs256_sign(input, idp_key.x, idp_key.x_len);
    break;
  case TOKEN_ALG_NONE:
    sig = strdup("");
    break;
  default:
    sig = es256_sign(input);
    break;
  }
  char *token = xasprintf("%s.%s", input, sig);
  free(input);
  free(sig);
  return token;
}

/* One byte of the payload changed: the first character of the jti, so the
 * JSON (and every claim the verifier checks) stays well-formed and only
 * the signature can tell. */
static char *tamper(const char *real) {
  struct parts p = split_token(real);
  size_t n = strlen(p.payload);
  unsigned char *bytes = malloc(n + 1);
  size_t len = test_b64url_decode(p.payload, n, bytes);
  bytes[len] = '\0';
  char *jti = strstr((char *)bytes, "\"jti\":\"");
  if (jti == NULL || jti[7] == '"')
    fail_msg("dev-idp's token has no jti to change");
  jti[7] = jti[7] == 'A' ? 'B' : 'A';
  char *payload = test_b64url_encode(bytes, len);
  char *token = xasprintf("%s.%s.%s", p.header, payload, p.signature);
  free(bytes);
  free(payload);
  free_parts(&p);
  return token;
}

static char *forge(enum token_kind kind, const char *real) {
  load_idp_key();
  struct parts p = split_token(real);
  char *header;
  char *payload = strdup(p.payload);
  switch (kind) {
  case TOKEN_ALG_NONE:
    header = header_b64("none", idp_key.kid);
    break;
  case TOKEN_HS256_JWK:
  case TOKEN_HS256_X:
    header = header_b64("HS256", idp_key.kid);
    break;
  case TOKEN_UNKNOWN_KID:
    header = header_b64("ES256", "not-a-published-kid");
    break;
  case TOKEN_OVERSIZED: {
    json_t *claims = decode_json(p.payload);
    char pad[MAX_TOKEN];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    json_object_set_new(claims, "pad", json_string(pad));
    free(payload);
    payload = test_b64url_json(claims);
    header = header_b64("ES256", idp_key.kid);
    break;
  }
  default:
    header = header_b64("ES256", idp_key.kid);
    break;
  }
  char *token = assemble(header, payload, kind);
  free(header);
  free(payload);
  free_parts(&p);
  return token;
}

const char *token_kind_name(enum token_kind kind) {
  static const char *const names[] = {
      [TOKEN_VALID] = "valid",         [TOKEN_NONE] = "missing",
      [TOKEN_EMPTY] = "empty-bearer",  [TOKEN_BASIC] = "basic-scheme",
      [TOKEN_GARBAGE] = "garbage",     [TOKEN_EXPIRED] = "expired",
      [TOKEN_WRONG_AUD] = "wrong-aud", [TOKEN_ALG_NONE] = "alg-none",
      [TOKEN_HS256_JWK] = "hs256-jwk", [TOKEN_HS256_X] = "hs256-x",
      [TOKEN_FORGED] = "forged-es256", [TOKEN_UNKNOWN_KID] = "unknown-kid",
      [TOKEN_TAMPERED] = "tampered",   [TOKEN_OVERSIZED] = "oversized",
  };
  return names[kind];
}

char *token_authorization(enum token_kind kind, const char *party, const char *loa) {
  const char *digits = strncmp(party, "bsn:", 4) == 0 ? party + 4 : party;
  char *query = NULL, *token = NULL;
  switch (kind) {
  case TOKEN_NONE:
    return NULL;
  case TOKEN_EMPTY:
    return strdup("Bearer ");
  case TOKEN_BASIC:
    return strdup("Basic dXNlcjpwYXNzd29yZA==");
  case TOKEN_GARBAGE:
    return strdup("Bearer not.a-token.at-all");
  case TOKEN_VALID:
    token = token_person(party, loa);
    break;
  case TOKEN_EXPIRED:
    query = xasprintf("bsn=%s&loa=%s&ttl=-300", digits, loa);
    break;
  case TOKEN_WRONG_AUD:
    query = xasprintf("bsn=%s&loa=%s&aud=someone-else", digits, loa);
    break;
  case TOKEN_TAMPERED: {
    char *real = token_person(party, loa);
    token = tamper(real);
    free(real);
    break;
  }
  case TOKEN_ALG_NONE:
  case TOKEN_HS256_JWK:
  case TOKEN_HS256_X:
  case TOKEN_FORGED:
  case TOKEN_UNKNOWN_KID:
  case TOKEN_OVERSIZED: {
    char *real = token_person(party, loa);
    token = forge(kind, real);
    free(real);
    if (kind == TOKEN_OVERSIZED && strlen(token) <= MAX_TOKEN)
      fail_msg("the oversized token is only %zu bytes", strlen(token));
    break;
  }
  }
  if (query != NULL) {
    token = token_mint(query);
    free(query);
  }
  char *header = xasprintf("Bearer %s", token);
  free(token);
  return header;
}
