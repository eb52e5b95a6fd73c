/* Unit tests for strict JWS verification (service/jose), the identity claim
 * rules and, against an in-process HTTP server on 127.0.0.1, identity
 * discovery, JWKS fetching and refresh (service/auth).  Keys are generated
 * here and tokens signed here with raw OpenSSL, independently of the code
 * under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/identity.h"
#include "jose/jws.h"

/* ---- Keys, JWKs and signing ------------------------------------- */

static EVP_PKEY *ec_key, *ec_key2, *rsa_key, *rsa_ps_key, *rsa_small_key, *attacker_key;
static struct jose_keyset *keyset;

static const unsigned char p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static char *b64(const unsigned char *in, size_t len) {
  size_t need = B64URL_ENCODED_LEN(len) + 1;
  char *out = malloc(need);
  assert_non_null(out);
  assert_int_equal(b64url_encode(in, len, out, need), need - 1);
  return out;
}

/* Sets member name of j to the key parameter as base64url (padded to pad
 * bytes when pad is not 0). */
static void set_bn(json_t *j, const char *name, EVP_PKEY *key, const char *param, int pad) {
  BIGNUM *bn = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(key, param, &bn), 1);
  unsigned char buf[1024];
  int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
  assert_true(n > 0);
  BN_free(bn);
  char *text = b64(buf, (size_t)n);
  json_object_set_new(j, name, json_string(text));
  free(text);
}

/* A public JWK for key; alg and use may be NULL. */
static json_t *jwk(EVP_PKEY *key, const char *kid, const char *alg, const char *use) {
  json_t *j = json_object();
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    json_object_set_new(j, "kty", json_string("EC"));
    json_object_set_new(j, "crv", json_string("P-256"));
    set_bn(j, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    set_bn(j, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
  } else {
    json_object_set_new(j, "kty", json_string("RSA"));
    set_bn(j, "n", key, OSSL_PKEY_PARAM_RSA_N, 0);
    set_bn(j, "e", key, OSSL_PKEY_PARAM_RSA_E, 0);
  }
  json_object_set_new(j, "kid", json_string(kid));
  if (alg)
    json_object_set_new(j, "alg", json_string(alg));
  if (use)
    json_object_set_new(j, "use", json_string(use));
  return j;
}

/* {"keys": [first, ...]}, the list ending with NULL. */
static json_t *jwks_of(json_t *first, ...) {
  json_t *keys = json_array();
  va_list ap;
  va_start(ap, first);
  for (json_t *k = first; k; k = va_arg(ap, json_t *))
    json_array_append_new(keys, k);
  va_end(ap);
  return json_pack("{s:o}", "keys", keys);
}

static char *dump(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  assert_non_null(s);
  return s;
}

static struct jose_keyset *keyset_from(json_t *jwks) {
  char *text = dump(jwks);
  char err[160];
  struct jose_keyset *ks = jose_keyset_from_jwks(text, strlen(text), err, sizeof err);
  free(text);
  return ks;
}

/* Signs input: ES256 gives raw r || s, RS256 PKCS#1 v1.5. */
static size_t sign(EVP_PKEY *key, const char *input, unsigned char *sig) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char der[1024];
  size_t len = sizeof der;
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(EVP_DigestSign(ctx, der, &len, (const unsigned char *)input, strlen(input)), 1);
  EVP_MD_CTX_free(ctx);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    memcpy(sig, der, len);
    return len;
  }
  const unsigned char *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
  assert_non_null(es);
  BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
  ECDSA_SIG_free(es);
  return 64;
}

/* header.payload (both JSON text, encoded here) without the signature. */
static char *signing_input(const char *hdr, const char *payload) {
  char *h = b64((const unsigned char *)hdr, strlen(hdr));
  char *p = b64((const unsigned char *)payload, strlen(payload));
  char *out = malloc(strlen(h) + strlen(p) + 2);
  sprintf(out, "%s.%s", h, p);
  free(h);
  free(p);
  return out;
}

static char *with_sig(char *input, const unsigned char *sig, size_t siglen) {
  char *s = b64(sig, siglen);
  char *out = malloc(strlen(input) + strlen(s) + 2);
  sprintf(out, "%s.%s", input, s);
  free(s);
  free(input);
  return out;
}

static char *token(EVP_PKEY *key, const char *hdr, const char *payload) {
  char *input = signing_input(hdr, payload);
  unsigned char sig[1024];
  size_t len = sign(key, input, sig);
  return with_sig(input, sig, len);
}

/* An ES256 token whose r || s is replaced after signing. */
static char *es256_token_sig(const unsigned char *sig, size_t siglen) {
  return with_sig(signing_input("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "{\"sub\":\"x\"}"), sig,
                  siglen);
}

static enum jws_status verify_text(const char *tok) {
  json_t *claims = (json_t *)1;
  enum jws_status st = jws_verify(keyset, tok, strlen(tok), &claims);
  if (st == JWS_OK) {
    assert_true(json_is_object(claims));
    json_decref(claims);
  } else {
    assert_null(claims);
  }
  return st;
}

static enum jws_status verify_signed(EVP_PKEY *key, const char *hdr, const char *payload) {
  char *tok = token(key, hdr, payload);
  enum jws_status st = verify_text(tok);
  free(tok);
  return st;
}

#define ES_HDR "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"JWT\"}"
#define RS_HDR "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}"
#define PAYLOAD "{\"iss\":\"https://idp.example\",\"sub\":\"123456782\"}"

static int setup_keys(void **state) {
  (void)state;
  ec_key = EVP_EC_gen("P-256");
  ec_key2 = EVP_EC_gen("P-256");
  attacker_key = EVP_EC_gen("P-256");
  rsa_key = EVP_RSA_gen(2048);
  rsa_ps_key = EVP_RSA_gen(2048);
  rsa_small_key = EVP_RSA_gen(1024);
  if (!ec_key || !ec_key2 || !attacker_key || !rsa_key || !rsa_ps_key || !rsa_small_key)
    return -1;
  keyset = keyset_from(jwks_of(jwk(ec_key, "ec1", NULL, "sig"), jwk(rsa_key, "rsa1", "RS256", NULL),
                               jwk(rsa_ps_key, "rsa-ps", "PS256", "sig"),
                               jwk(rsa_small_key, "rsa-small", "RS256", "sig"),
                               jwk(ec_key2, "ec-enc", NULL, "enc"), NULL));
  return keyset ? 0 : -1;
}

static int teardown_keys(void **state) {
  (void)state;
  jose_keyset_unref(keyset);
  EVP_PKEY_free(ec_key);
  EVP_PKEY_free(ec_key2);
  EVP_PKEY_free(attacker_key);
  EVP_PKEY_free(rsa_key);
  EVP_PKEY_free(rsa_ps_key);
  EVP_PKEY_free(rsa_small_key);
  return 0;
}

/* ---- base64url --------------------------------------------------- */

static void test_b64url(void **state) {
  (void)state;
  unsigned char in[64], out[64];
  char text[100];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (unsigned char)(i * 37 + 11);
  for (size_t n = 0; n <= sizeof in; n++) {
    size_t len = b64url_encode(in, n, text, sizeof text);
    assert_int_equal(len, B64URL_ENCODED_LEN(n));
    assert_null(strpbrk(text, "=+/"));
    assert_int_equal(b64url_decode(text, len, out, sizeof out), (long)n);
    assert_memory_equal(in, out, n);
  }
  assert_int_equal(b64url_decode("QQ", 2, out, sizeof out), 1); /* "A" */
  assert_int_equal(out[0], 'A');
  assert_int_equal(b64url_decode("QR", 2, out, sizeof out), -1);  /* non-zero trailing bits */
  assert_int_equal(b64url_decode("QUI", 3, out, sizeof out), 2);  /* "AB" */
  assert_int_equal(b64url_decode("QUJ", 3, out, sizeof out), -1); /* non-zero trailing bits */
  assert_int_equal(b64url_decode("QQ==", 4, out, sizeof out), -1);
  assert_int_equal(b64url_decode("QUJD", 4, out, sizeof out), 3);
  assert_int_equal(b64url_decode("QUJDR", 5, out, sizeof out), -1); /* 4k+1 */
  assert_int_equal(b64url_decode("a+b/", 4, out, sizeof out), -1);
  assert_int_equal(b64url_decode("ab c", 4, out, sizeof out), -1);
  assert_int_equal(b64url_decode("ab\0c", 4, out, sizeof out), -1);
  assert_int_equal(b64url_decode("-_-_", 4, out, sizeof out), 3);
  assert_int_equal(b64url_decode("QUJD", 4, out, 2), -1); /* out too small */
  assert_int_equal(b64url_decode("", 0, out, 0), 0);
  assert_int_equal(b64url_encode(in, 3, text, 3), 0); /* needs 4 */
  assert_int_equal(b64url_encode(in, 3, text, 4), 4); /* no room for NUL: fine */
}

/* ---- JWKS -------------------------------------------------------- */

static void test_jwks_parse(void **state) {
  (void)state;
  /* ec1, rsa1, rsa-ps; RSA 1024 and the "enc" key are skipped. */
  assert_int_equal(jose_keyset_size(keyset), 3);

  char err[160];
  const char *bad[] = {
      "",
      "[]",
      "{}",
      "{\"keys\":{}}",
      "{\"keys\":[]}",
      "{\"keys\":[1,\"x\",null]}",
      "{\"keys\":[],\"keys\":[]}",
      "{\"keys\":[]} trailing",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_null(jose_keyset_from_jwks(bad[i], strlen(bad[i]), err, sizeof err));
    assert_true(err[0] != '\0');
  }
  assert_null(jose_keyset_from_jwks(NULL, 0, NULL, 0));

  /* Only an RSA 1024 key: nothing usable. */
  assert_null(keyset_from(jwks_of(jwk(rsa_small_key, "small", NULL, NULL), NULL)));
  /* No kid, wrong curve, point off the curve, short coordinate: skipped. */
  json_t *nokid = jwk(ec_key, "x", NULL, NULL);
  json_object_del(nokid, "kid");
  json_t *p384 = jwk(ec_key, "p384", NULL, NULL);
  json_object_set_new(p384, "crv", json_string("P-384"));
  json_t *off = jwk(ec_key, "off", NULL, NULL);
  json_object_set_new(off, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
  json_t *shortx = jwk(ec_key, "short", NULL, NULL);
  json_object_set_new(shortx, "x", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  json_t *ops = jwk(ec_key, "ops", NULL, NULL);
  json_object_set_new(ops, "key_ops", json_pack("[s]", "encrypt"));
  assert_null(keyset_from(jwks_of(nokid, p384, off, shortx, ops, NULL)));

  /* A duplicate member inside a JWK rejects the whole document. */
  const char *dup = "{\"keys\":[{\"kty\":\"EC\",\"kty\":\"RSA\"}]}";
  assert_null(jose_keyset_from_jwks(dup, strlen(dup), err, sizeof err));

  /* Reference counting: one extra ref survives one unref. */
  struct jose_keyset *ks = keyset_from(jwks_of(jwk(ec_key, "only", NULL, NULL), NULL));
  assert_non_null(ks);
  jose_keyset_ref(ks);
  jose_keyset_unref(ks);
  assert_int_equal(jose_keyset_size(ks), 1);
  jose_keyset_unref(ks);
}

/* ---- jws_verify -------------------------------------------------- */

static void test_good_tokens(void **state) {
  (void)state;
  char *tok = token(ec_key, ES_HDR, PAYLOAD);
  json_t *claims = NULL;
  assert_int_equal(jws_verify(keyset, tok, strlen(tok), &claims), JWS_OK);
  assert_string_equal(json_string_value(json_object_get(claims, "sub")), "123456782");
  json_decref(claims);
  free(tok);
  assert_int_equal(verify_signed(rsa_key, RS_HDR, PAYLOAD), JWS_OK);
  /* Header members we ignore do not matter. */
  assert_int_equal(
      verify_signed(ec_key, "{\"kid\":\"ec1\",\"alg\":\"ES256\",\"x5u\":\"http://e\"}", PAYLOAD),
      JWS_OK);
}

static void test_alg_rejected(void **state) {
  (void)state;
  /* "none" with an empty signature is not even three segments. */
  char *none = signing_input("{\"alg\":\"none\",\"kid\":\"ec1\"}", PAYLOAD);
  char *none_empty = malloc(strlen(none) + 2);
  sprintf(none_empty, "%s.", none);
  assert_int_equal(verify_text(none_empty), JWS_ERR_FORMAT);
  free(none_empty);
  unsigned char junk[64] = {1};
  assert_int_equal(verify_text(none = with_sig(none, junk, sizeof junk)), JWS_ERR_ALG);
  free(none);

  /* HS256 keyed with the EC public key's PEM: the classic confusion. */
  BIO *bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, ec_key);
  char *pem;
  long pemlen = BIO_get_mem_data(bio, &pem);
  char *input = signing_input("{\"alg\":\"HS256\",\"kid\":\"ec1\"}", PAYLOAD);
  unsigned char mac[32];
  unsigned int maclen = 0;
  HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)input, strlen(input), mac, &maclen);
  BIO_free(bio);
  char *hs = with_sig(input, mac, maclen);
  assert_int_equal(verify_text(hs), JWS_ERR_ALG);
  free(hs);

  const char *algs[] = {"HS256", "PS256", "ES384", "ES512", "RS512", "EdDSA", "es256", "ES256 "};
  for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
    char hdr[80];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"ec1\"}", algs[i]);
    assert_int_equal(verify_signed(ec_key, hdr, PAYLOAD), JWS_ERR_ALG);
  }
  assert_int_equal(verify_signed(ec_key, "{\"kid\":\"ec1\"}", PAYLOAD), JWS_ERR_ALG);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":[\"ES256\"],\"kid\":\"ec1\"}", PAYLOAD),
                   JWS_ERR_ALG);
}

static void test_alg_bound_to_key(void **state) {
  (void)state;
  /* ES256 naming an RSA key, RS256 naming an EC key. */
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", PAYLOAD),
                   JWS_ERR_ALG);
  assert_int_equal(verify_signed(rsa_key, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", PAYLOAD),
                   JWS_ERR_ALG);
  /* The JWK says PS256: a correct RS256 signature by that key still fails. */
  assert_int_equal(verify_signed(rsa_ps_key, "{\"alg\":\"RS256\",\"kid\":\"rsa-ps\"}", PAYLOAD),
                   JWS_ERR_ALG);
  /* A key skipped at load time is simply unknown. */
  assert_int_equal(
      verify_signed(rsa_small_key, "{\"alg\":\"RS256\",\"kid\":\"rsa-small\"}", PAYLOAD),
      JWS_ERR_UNKNOWN_KID);
  assert_int_equal(verify_signed(ec_key2, "{\"alg\":\"ES256\",\"kid\":\"ec-enc\"}", PAYLOAD),
                   JWS_ERR_UNKNOWN_KID);
}

static void test_header_rules(void **state) {
  (void)state;
  assert_int_equal(verify_signed(ec_key,
                                 "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[\"exp\"],\"exp\":1}",
                                 PAYLOAD),
                   JWS_ERR_CRIT);
  assert_int_equal(
      verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[]}", PAYLOAD),
      JWS_ERR_CRIT);
  assert_int_equal(
      verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"kid\":\"ec1\"}", PAYLOAD),
      JWS_ERR_HEADER);
  assert_int_equal(
      verify_signed(ec_key, "{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"ec1\"}", PAYLOAD),
      JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\"}", PAYLOAD), JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"\"}", PAYLOAD),
                   JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":7}", PAYLOAD), JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":1}", PAYLOAD),
                   JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "[\"ES256\"]", PAYLOAD), JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"ec1\"", PAYLOAD),
                   JWS_ERR_HEADER);
  assert_int_equal(verify_signed(ec_key, "{\"alg\":\"ES256\",\"kid\":\"nope\"}", PAYLOAD),
                   JWS_ERR_UNKNOWN_KID);

  /* Keys in the header are never used: an attacker's own jwk with an
   * unknown kid stays unknown, and with our kid fails the signature. */
  char *attacker = dump(jwk(attacker_key, "attacker", NULL, NULL));
  char hdr[1024];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"ES256\",\"kid\":\"attacker\",\"jwk\":%s}", attacker);
  assert_int_equal(verify_signed(attacker_key, hdr, PAYLOAD), JWS_ERR_UNKNOWN_KID);
  snprintf(hdr, sizeof hdr,
           "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"jwk\":%s,\"jku\":\"http://127.0.0.1:1/\"}",
           attacker);
  assert_int_equal(verify_signed(attacker_key, hdr, PAYLOAD), JWS_ERR_SIGNATURE);
  free(attacker);
}

static void test_payload_rules(void **state) {
  (void)state;
  assert_int_equal(verify_signed(ec_key, ES_HDR, "{\"sub\":\"a\",\"sub\":\"b\"}"), JWS_ERR_PAYLOAD);
  assert_int_equal(verify_signed(ec_key, ES_HDR, "[1]"), JWS_ERR_PAYLOAD);
  assert_int_equal(verify_signed(ec_key, ES_HDR, "{\"sub\":1} x"), JWS_ERR_PAYLOAD);
  assert_int_equal(verify_signed(ec_key, ES_HDR, "\"text\""), JWS_ERR_PAYLOAD);
}

static void test_shape(void **state) {
  (void)state;
  char *good = token(ec_key, ES_HDR, PAYLOAD);
  size_t len = strlen(good);
  char *t = malloc(len + 8);

  /* Two and four segments, empty segments. */
  char *dot2 = strrchr(good, '.');
  memcpy(t, good, (size_t)(dot2 - good));
  t[dot2 - good] = '\0';
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  sprintf(t, "%s.QQ", good);
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  sprintf(t, "%s.", good);
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  sprintf(t, ".%s", strchr(good, '.') + 1);
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  assert_int_equal(verify_text(".."), JWS_ERR_FORMAT);
  assert_int_equal(verify_text("abc"), JWS_ERR_FORMAT);

  /* Padding and characters outside base64url. */
  sprintf(t, "%s==", good);
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  strcpy(t, good);
  t[2] = '+';
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  strcpy(t, good);
  t[len - 3] = '/';
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);
  strcpy(t, good);
  t[strchr(good, '.') - good + 2] = ' ';
  assert_int_equal(verify_text(t), JWS_ERR_FORMAT);

  /* A flipped payload character still decodes, but does not verify. */
  strcpy(t, good);
  char *p = t + (strchr(good, '.') - good) + 3;
  *p = *p == 'A' ? 'B' : 'A';
  assert_int_equal(verify_text(t), JWS_ERR_SIGNATURE);
  /* A NUL inside the given length is not part of any valid token. */
  memcpy(t, good, len);
  t[5] = '\0';
  assert_int_equal(jws_verify(keyset, t, len, NULL), JWS_ERR_FORMAT);
  free(t);
  free(good);
}

static void test_size(void **state) {
  (void)state;
  char *big = malloc(JWS_MAX_TOKEN + 2);
  memset(big, 'A', JWS_MAX_TOKEN + 1);
  big[100] = big[200] = '.';
  big[JWS_MAX_TOKEN + 1] = '\0';
  assert_int_equal(jws_verify(keyset, big, JWS_MAX_TOKEN + 1, NULL), JWS_ERR_SIZE);
  /* At the limit the size is fine: the segments decode (to zero bytes),
   * and the header is no JSON. */
  assert_int_equal(jws_verify(keyset, big, JWS_MAX_TOKEN, NULL), JWS_ERR_HEADER);
  assert_int_equal(jws_verify(keyset, big, 0, NULL), JWS_ERR_SIZE);
  assert_int_equal(jws_verify(keyset, NULL, 10, NULL), JWS_ERR_SIZE);
  free(big);

  /* A real token padded to just over the limit by a long claim. */
  char *payload = malloc(JWS_MAX_TOKEN);
  int n = snprintf(payload, JWS_MAX_TOKEN, "{\"pad\":\"%06300d\"}", 0);
  assert_true(n > 6300);
  char *tok = token(ec_key, ES_HDR, payload);
  assert_true(strlen(tok) > JWS_MAX_TOKEN);
  assert_int_equal(verify_text(tok), JWS_ERR_SIZE);
  free(tok);
  free(payload);
  assert_string_equal(jws_status_name(JWS_ERR_SIZE), "size");
}

static void test_es256_signature_values(void **state) {
  (void)state;
  char *input = signing_input("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", "{\"sub\":\"x\"}");
  unsigned char sig[80];
  assert_int_equal(sign(ec_key, input, sig), 64);
  free(input);

  char *t = es256_token_sig(sig, 64);
  assert_int_equal(verify_text(t), JWS_OK);
  free(t);
  /* Wrong lengths: 63 and 65 bytes. */
  assert_int_equal(verify_text(t = es256_token_sig(sig, 63)), JWS_ERR_SIGNATURE);
  free(t);
  sig[64] = 0;
  assert_int_equal(verify_text(t = es256_token_sig(sig, 65)), JWS_ERR_SIGNATURE);
  free(t);

  unsigned char bad[64];
  /* r = 0 */
  memcpy(bad, sig, 64);
  memset(bad, 0, 32);
  assert_int_equal(verify_text(t = es256_token_sig(bad, 64)), JWS_ERR_SIGNATURE);
  free(t);
  /* s = n */
  memcpy(bad + 32, p256_order, 32);
  memcpy(bad, sig, 32);
  assert_int_equal(verify_text(t = es256_token_sig(bad, 64)), JWS_ERR_SIGNATURE);
  free(t);
  /* s > n */
  memset(bad + 32, 0xff, 32);
  assert_int_equal(verify_text(t = es256_token_sig(bad, 64)), JWS_ERR_SIGNATURE);
  free(t);
  /* r = n, s valid */
  memcpy(bad, p256_order, 32);
  memcpy(bad + 32, sig + 32, 32);
  assert_int_equal(verify_text(t = es256_token_sig(bad, 64)), JWS_ERR_SIGNATURE);
  free(t);
  /* r = s = 1: in range, so it reaches OpenSSL, which rejects it. */
  memset(bad, 0, 64);
  bad[31] = 1;
  bad[63] = 1;
  assert_int_equal(verify_text(t = es256_token_sig(bad, 64)), JWS_ERR_SIGNATURE);
  free(t);
}

static void test_rs256_signature_length(void **state) {
  (void)state;
  char *input = signing_input(RS_HDR, PAYLOAD);
  unsigned char sig[520];
  size_t len = sign(rsa_key, input, sig);
  assert_int_equal(len, 256);
  char *t = with_sig(strdup(input), sig, len - 1);
  assert_int_equal(verify_text(t), JWS_ERR_SIGNATURE);
  free(t);
  /* A leading zero byte prepended: same number, wrong length. */
  memmove(sig + 1, sig, len);
  sig[0] = 0;
  t = with_sig(strdup(input), sig, len + 1);
  assert_int_equal(verify_text(t), JWS_ERR_SIGNATURE);
  free(t);
  free(input);
}

/* ---- Identity claims --------------------------------------------- */

#define NOW INT64_C(1700000000)
#define ISSUER "https://idp.example"

static const struct identity_config claims_cfg = {
    .issuer = ISSUER, .audience = "machtigen", .bsn_claim = NULL, .leeway_seconds = 60};

/* A valid person token's claims; tests change one thing each. */
static json_t *person_claims(void) {
  return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", ISSUER, "aud", "machtigen", "exp",
                   (json_int_t)(NOW + 300), "iat", (json_int_t)NOW, "nbf", (json_int_t)NOW, "acr",
                   "substantieel", "sub", "123456782");
}

static enum identity_status check(const struct identity_config *cfg, json_t *claims,
                                  struct identity *id, const char **reason) {
  enum identity_status st = identity_check_claims(cfg, claims, NOW, id, reason);
  json_decref(claims);
  if (st == IDENT_OK) {
    assert_null(*reason);
  } else {
    /* Reasons are static, log-safe text: never a claim value. */
    assert_non_null(*reason);
    assert_null(strstr(*reason, "123456"));
  }
  return st;
}

static json_t *with(json_t *claims, const char *name, json_t *value) {
  if (value)
    json_object_set_new(claims, name, value);
  else
    json_object_del(claims, name);
  return claims;
}

static void test_claims_person(void **state) {
  (void)state;
  struct identity id;
  const char *why;
  memset(&id, 0x55, sizeof id);
  assert_int_equal(check(&claims_cfg, person_claims(), &id, &why), IDENT_OK);
  assert_int_equal(id.party.kind, PARTY_PERSON);
  assert_string_equal(id.party.id, "bsn:123456782");
  assert_string_equal(id.employee, "");
  assert_int_equal(id.loa, LOA_SUBSTANTIEEL);
  assert_int_equal(id.exp, NOW + 300);

  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "sub", json_string("bsn:111222333")), &id, &why),
      IDENT_OK);
  assert_string_equal(id.party.id, "bsn:111222333");
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "sub", json_string("123456789")), &id, &why),
      IDENT_INVALID);
  assert_string_equal(why, "invalid bsn");
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "sub", json_string("12345678")), &id, &why),
      IDENT_INVALID);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "sub", json_string("000000000")), &id, &why),
      IDENT_INVALID);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "sub", json_integer(123456782)), &id, &why),
      IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "sub", NULL), &id, &why),
                   IDENT_INVALID);
  assert_string_equal(why, "no subject");

  /* A configured BSN claim; sub is then just another claim. */
  struct identity_config cfg = claims_cfg;
  cfg.bsn_claim = "bsn";
  json_t *c = with(person_claims(), "bsn", json_string("111222333"));
  assert_int_equal(check(&cfg, with(c, "sub", json_string("opaque")), &id, &why), IDENT_OK);
  assert_string_equal(id.party.id, "bsn:111222333");
  assert_int_equal(check(&cfg, person_claims(), &id, &why), IDENT_INVALID);
}

static void test_claims_iss_aud(void **state) {
  (void)state;
  struct identity id;
  const char *why;
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "iss", json_string(ISSUER "/")), &id, &why),
      IDENT_INVALID);
  assert_string_equal(why, "wrong issuer");
  assert_int_equal(check(&claims_cfg, with(person_claims(), "iss", NULL), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "aud", json_string("other")), &id, &why),
      IDENT_INVALID);
  assert_string_equal(why, "wrong audience");
  assert_int_equal(check(&claims_cfg, with(person_claims(), "aud", NULL), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg,
                         with(person_claims(), "aud", json_pack("[s,s]", "other", "machtigen")),
                         &id, &why),
                   IDENT_OK);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "aud", json_pack("[s]", "other")), &id, &why),
      IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "aud", json_pack("[]")), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg,
                         with(person_claims(), "aud", json_pack("[s,i]", "machtigen", 1)), &id,
                         &why),
                   IDENT_INVALID);
  /* The default audience when none is configured. */
  struct identity_config cfg = claims_cfg;
  cfg.audience = NULL;
  assert_int_equal(check(&cfg, person_claims(), &id, &why), IDENT_OK);
}

static void test_claims_times(void **state) {
  (void)state;
  struct identity id;
  const char *why;
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "exp", json_integer(NOW - 61)), &id, &why),
      IDENT_EXPIRED);
  assert_string_equal(why, "token expired");
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "exp", json_integer(NOW - 60)), &id, &why),
      IDENT_EXPIRED);
  /* Expired, but within the leeway. */
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "exp", json_integer(NOW - 59)), &id, &why),
      IDENT_OK);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "exp", json_real((double)NOW + 0.5)), &id, &why),
      IDENT_OK);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "exp", NULL), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "exp", json_string("2099")), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "exp", json_real(1e300)), &id, &why),
                   IDENT_OK);

  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "nbf", json_integer(NOW + 120)), &id, &why),
      IDENT_INVALID);
  assert_string_equal(why, "token not yet valid");
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "nbf", json_integer(NOW + 60)), &id, &why),
      IDENT_OK);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "nbf", json_true()), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "nbf", NULL), &id, &why), IDENT_OK);
  assert_int_equal(
      check(&claims_cfg, with(person_claims(), "iat", json_integer(NOW + 61)), &id, &why),
      IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, with(person_claims(), "iat", NULL), &id, &why), IDENT_OK);
}

static void test_claims_acr(void **state) {
  (void)state;
  struct identity id;
  const char *why;
  const char *names[] = {"basis", "midden", "substantieel", "hoog"};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(
        check(&claims_cfg, with(person_claims(), "acr", json_string(names[i])), &id, &why),
        IDENT_OK);
    assert_int_equal(id.loa, LOA_BASIS + i);
  }
  assert_int_equal(check(&claims_cfg, with(person_claims(), "acr", NULL), &id, &why),
                   IDENT_INVALID);
  assert_string_equal(why, "missing acr");
  assert_int_equal(check(&claims_cfg, with(person_claims(), "acr", json_string("laag")), &id, &why),
                   IDENT_INVALID);
  assert_string_equal(why, "unknown acr");
  assert_int_equal(check(&claims_cfg, with(person_claims(), "acr", json_integer(3)), &id, &why),
                   IDENT_INVALID);
}

static json_t *org_claims(const char *kvk, const char *employee) {
  json_t *c = with(person_claims(), "kvk", json_string(kvk));
  return with(c, "sub", employee ? json_string(employee) : NULL);
}

static void test_claims_organisation(void **state) {
  (void)state;
  struct identity id;
  const char *why;
  assert_int_equal(check(&claims_cfg, org_claims("12345678", "emp-42@office"), &id, &why),
                   IDENT_OK);
  assert_int_equal(id.party.kind, PARTY_ORGANISATION);
  assert_string_equal(id.party.id, "kvk:12345678");
  assert_string_equal(id.employee, "emp-42@office");
  assert_int_equal(check(&claims_cfg, org_claims("kvk:87654321", "e"), &id, &why), IDENT_OK);
  assert_string_equal(id.party.id, "kvk:87654321");

  /* Both a BSN and a kvk: in the default sub claim and in a configured one. */
  assert_int_equal(check(&claims_cfg, org_claims("12345678", "123456782"), &id, &why),
                   IDENT_INVALID);
  assert_string_equal(why, "both bsn and kvk");
  struct identity_config cfg = claims_cfg;
  cfg.bsn_claim = "bsn";
  json_t *both = with(org_claims("12345678", "emp"), "bsn", json_string("123456782"));
  assert_int_equal(check(&cfg, both, &id, &why), IDENT_INVALID);
  assert_int_equal(check(&cfg, org_claims("12345678", "emp"), &id, &why), IDENT_OK);

  assert_int_equal(check(&claims_cfg, org_claims("1234567", "emp"), &id, &why), IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, org_claims("1234567x", "emp"), &id, &why), IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, org_claims("12345678", NULL), &id, &why), IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, org_claims("12345678", ""), &id, &why), IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, org_claims("12345678", "two words"), &id, &why),
                   IDENT_INVALID);
  assert_int_equal(check(&claims_cfg, org_claims("12345678", "caf\xc3\xa9"), &id, &why),
                   IDENT_INVALID);
  char longest[129];
  memset(longest, 'e', 128);
  longest[128] = '\0';
  assert_int_equal(check(&claims_cfg, org_claims("12345678", longest), &id, &why), IDENT_INVALID);
  longest[127] = '\0';
  assert_int_equal(check(&claims_cfg, org_claims("12345678", longest), &id, &why), IDENT_OK);
  assert_string_equal(id.employee, longest);
}

/* ---- identity_init / identity_verify against a loopback server ---- */

static struct {
  pthread_mutex_t lock;
  int fd;
  int port;
  bool stop;
  pthread_t thread;
  char *discovery; /* NULL: 404 */
  char *jwks;
  int discovery_status;
  int jwks_hits;
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void srv_set(char **slot, char *body) {
  pthread_mutex_lock(&srv.lock);
  free(*slot);
  *slot = body;
  pthread_mutex_unlock(&srv.lock);
}

static void srv_respond(int c) {
  char req[4096] = "";
  size_t n = 0;
  while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
    ssize_t r = read(c, req + n, sizeof req - 1 - n);
    if (r <= 0)
      return;
    n += (size_t)r;
    req[n] = '\0';
  }
  char path[256] = "";
  sscanf(req, "GET %255s", path);
  pthread_mutex_lock(&srv.lock);
  const char *body = NULL;
  int status = 404;
  if (strcmp(path, "/.well-known/openid-configuration") == 0 && srv.discovery) {
    body = srv.discovery;
    status = srv.discovery_status;
  } else if (strcmp(path, "/jwks") == 0 && srv.jwks) {
    body = srv.jwks;
    status = 200;
    srv.jwks_hits++;
  }
  char head[256];
  size_t blen = body ? strlen(body) : 0;
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Location: http://127.0.0.1:%d/jwks\r\nConnection: close\r\n\r\n",
                      status, blen, srv.port);
  char *resp = malloc((size_t)hlen + blen);
  memcpy(resp, head, (size_t)hlen);
  if (body)
    memcpy(resp + hlen, body, blen);
  pthread_mutex_unlock(&srv.lock);
  size_t off = 0;
  while (off < (size_t)hlen + blen) {
    ssize_t w = write(c, resp + off, (size_t)hlen + blen - off);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  free(resp);
}

static void *srv_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&srv.lock);
    bool stop = srv.stop;
    pthread_mutex_unlock(&srv.lock);
    if (stop)
      return NULL;
    struct pollfd p = {.fd = srv.fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int c = accept(srv.fd, NULL, NULL);
    if (c < 0)
      continue;
    srv_respond(c);
    close(c);
  }
}

static char issuer_url[64];

static int setup_server(void **state) {
  if (setup_keys(state) != 0)
    return -1;
  srv.fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(srv.fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv.fd, 16) != 0 ||
      getsockname(srv.fd, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  srv.port = ntohs(a.sin_port);
  snprintf(issuer_url, sizeof issuer_url, "http://127.0.0.1:%d", srv.port);
  setenv("NO_PROXY", "127.0.0.1", 1);
  return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int teardown_server(void **state) {
  identity_shutdown();
  pthread_mutex_lock(&srv.lock);
  srv.stop = true;
  pthread_mutex_unlock(&srv.lock);
  pthread_join(srv.thread, NULL);
  close(srv.fd);
  free(srv.discovery);
  free(srv.jwks);
  return teardown_keys(state);
}

static void serve_discovery(const char *issuer, int status) {
  char jwks_uri[96];
  snprintf(jwks_uri, sizeof jwks_uri, "%s/jwks", issuer_url);
  char *doc = dump(json_pack("{s:s, s:s}", "issuer", issuer, "jwks_uri", jwks_uri));
  srv_set(&srv.discovery, doc);
  pthread_mutex_lock(&srv.lock);
  srv.discovery_status = status;
  pthread_mutex_unlock(&srv.lock);
}

static int jwks_hits(void) {
  pthread_mutex_lock(&srv.lock);
  int n = srv.jwks_hits;
  pthread_mutex_unlock(&srv.lock);
  return n;
}

static void wait_rate_limit(void) { usleep(1100 * 1000); }

static bool init_identity(void) {
  struct identity_config cfg = {
      .issuer = issuer_url, .audience = "machtigen", .leeway_seconds = 60};
  char err[160];
  assert_true(identity_init(&cfg, err, sizeof err));
  return identity_ready();
}

static char *identity_token(EVP_PKEY *key, const char *kid, int64_t exp_offset) {
  char hdr[128];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}",
           EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? "ES256" : "RS256", kid);
  char *payload =
      dump(json_pack("{s:s, s:s, s:I, s:s, s:s}", "iss", issuer_url, "aud", "machtigen", "exp",
                     (json_int_t)(time(NULL) + exp_offset), "acr", "midden", "sub", "111222333"));
  char *tok = token(key, hdr, payload);
  free(payload);
  return tok;
}

static enum identity_status verify_identity(const char *tok, const char **why) {
  struct identity id;
  return identity_verify(tok, strlen(tok), &id, why);
}

static void test_identity_end_to_end(void **state) {
  (void)state;
  const char *why;
  char *tok = identity_token(ec_key, "ec1", 300);

  /* No IdP yet: init succeeds, keys are unavailable until it appears. */
  assert_false(init_identity());
  assert_int_equal(verify_identity(tok, &why), IDENT_UNAVAILABLE);
  serve_discovery(issuer_url, 200);
  srv_set(&srv.jwks, dump(jwks_of(jwk(ec_key, "ec1", "ES256", NULL), NULL)));
  /* Within the second after the failed fetch: still unavailable. */
  assert_int_equal(verify_identity(tok, &why), IDENT_UNAVAILABLE);
  wait_rate_limit();
  struct identity id;
  assert_int_equal(identity_verify(tok, strlen(tok), &id, &why), IDENT_OK);
  assert_true(identity_ready());
  assert_string_equal(id.party.id, "bsn:111222333");
  assert_int_equal(id.loa, LOA_MIDDEN);

  char *expired = identity_token(ec_key, "ec1", -600);
  assert_int_equal(verify_identity(expired, &why), IDENT_EXPIRED);
  free(expired);
  assert_int_equal(verify_identity("x.y.z", &why), IDENT_INVALID);
  assert_string_equal(why, "malformed token");

  /* Key rotation: an unknown kid refetches once. */
  wait_rate_limit();
  int hits = jwks_hits();
  srv_set(&srv.jwks,
          dump(jwks_of(jwk(ec_key, "ec1", NULL, NULL), jwk(rsa_key, "rsa2", NULL, NULL), NULL)));
  char *rotated = identity_token(rsa_key, "rsa2", 300);
  assert_int_equal(verify_identity(rotated, &why), IDENT_OK);
  assert_int_equal(jwks_hits(), hits + 1);
  /* Another unknown kid right away: no second fetch within the second. */
  char *unknown = identity_token(ec_key2, "ec-new", 300);
  assert_int_equal(verify_identity(unknown, &why), IDENT_INVALID);
  assert_string_equal(why, "unknown kid");
  assert_int_equal(jwks_hits(), hits + 1);
  free(unknown);
  free(rotated);
  free(tok);
  identity_shutdown();
  assert_false(identity_ready());
}

static void test_identity_bad_idp(void **state) {
  (void)state;
  const char *why;
  srv_set(&srv.jwks, dump(jwks_of(jwk(ec_key, "ec1", NULL, NULL), NULL)));
  char *tok = identity_token(ec_key, "ec1", 300);

  /* Discovery naming another issuer. */
  char other[96];
  snprintf(other, sizeof other, "%s/other", issuer_url);
  serve_discovery(other, 200);
  assert_false(init_identity());
  assert_int_equal(verify_identity(tok, &why), IDENT_UNAVAILABLE);

  /* A redirect is not followed. */
  serve_discovery(issuer_url, 302);
  assert_false(init_identity());

  /* A JWKS over 256 KiB is not read. */
  serve_discovery(issuer_url, 200);
  json_t *big = jwks_of(jwk(ec_key, "ec1", NULL, NULL), NULL);
  char pad[300 * 1024];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  json_object_set_new(big, "padding", json_string(pad));
  srv_set(&srv.jwks, dump(big));
  assert_false(init_identity());

  /* Bad configuration is refused outright. */
  char err[160];
  struct identity_config cfg = {.issuer = "ftp://127.0.0.1/"};
  assert_false(identity_init(&cfg, err, sizeof err));
  cfg.issuer = NULL;
  assert_false(identity_init(&cfg, err, sizeof err));
  identity_shutdown();
  free(tok);
}

/* Threads verifying while unknown kids make the keyset swap underneath. */
static atomic_bool workers_stop;

struct worker {
  const char *tok;
  long ok, total;
};

static void *verify_loop(void *arg) {
  struct worker *w = arg;
  while (!atomic_load(&workers_stop)) {
    const char *why;
    w->ok += verify_identity(w->tok, &why) == IDENT_OK;
    w->total++;
  }
  return NULL;
}

static void test_identity_concurrent(void **state) {
  (void)state;
  serve_discovery(issuer_url, 200);
  srv_set(&srv.jwks, dump(jwks_of(jwk(ec_key, "ec1", NULL, NULL), NULL)));
  assert_true(init_identity());
  char *tok = identity_token(ec_key, "ec1", 300);
  char *unknown = identity_token(ec_key2, "nope", 300);
  int hits = jwks_hits();
  pthread_t th[4];
  struct worker w[4];
  atomic_store(&workers_stop, false);
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){.tok = tok};
    assert_int_equal(pthread_create(&th[i], NULL, verify_loop, &w[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    wait_rate_limit();
    const char *why;
    assert_int_equal(verify_identity(unknown, &why), IDENT_INVALID);
  }
  atomic_store(&workers_stop, true);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_true(w[i].total > 0);
    assert_int_equal(w[i].ok, w[i].total);
  }
  assert_int_equal(jwks_hits(), hits + 2);
  free(tok);
  free(unknown);
  identity_shutdown();
}

int main(void) {
  const struct CMUnitTest jws_tests[] = {
      cmocka_unit_test(test_b64url),
      cmocka_unit_test(test_jwks_parse),
      cmocka_unit_test(test_good_tokens),
      cmocka_unit_test(test_alg_rejected),
      cmocka_unit_test(test_alg_bound_to_key),
      cmocka_unit_test(test_header_rules),
      cmocka_unit_test(test_payload_rules),
      cmocka_unit_test(test_shape),
      cmocka_unit_test(test_size),
      cmocka_unit_test(test_es256_signature_values),
      cmocka_unit_test(test_rs256_signature_length),
  };
  const struct CMUnitTest claims_tests[] = {
      cmocka_unit_test(test_claims_person),       cmocka_unit_test(test_claims_iss_aud),
      cmocka_unit_test(test_claims_times),        cmocka_unit_test(test_claims_acr),
      cmocka_unit_test(test_claims_organisation),
  };
  const struct CMUnitTest identity_tests[] = {
      cmocka_unit_test(test_identity_end_to_end),
      cmocka_unit_test(test_identity_bad_idp),
      cmocka_unit_test(test_identity_concurrent),
  };
  int failed = cmocka_run_group_tests_name("jws", jws_tests, setup_keys, teardown_keys);
  failed += cmocka_run_group_tests_name("identity_claims", claims_tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("identity", identity_tests, setup_server, teardown_server);
  return failed;
}
