/* JWKS parsing: every usable verification key becomes an OpenSSL EVP_PKEY
 * once, here, so that jws_verify() never parses key material.  A keyset is
 * immutable after construction; readers share it through a reference
 * count, and a refresh builds a new one instead of changing this one. */
#include "jose/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum jose_kty { JOSE_KTY_EC_P256, JOSE_KTY_RSA };

struct jose_key {
  char *kid;
  enum jose_kty kty;
  char *alg; /* the JWK's own "alg", NULL when it names none */
  EVP_PKEY *pkey;
  size_t sig_len; /* 64 for ES256, the modulus size for RS256 */
};

struct jose_keyset {
  atomic_int refs;
  size_t count;
  struct jose_key keys[];
};

/* More keys than this in one document is a misconfiguration; the rest are
 * ignored rather than making every unknown kid a long scan. */
#define JWKS_MAX_KEYS 64
#define JWK_MAX_KID 256
#define JWK_MAX_ALG 32
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen > 0)
    snprintf(err, errlen, "%s", msg);
}

/* A base64url member decoded into buf; -1 when absent, not a string or
 * not strict base64url. */
static long member_b64(json_t *jwk, const char *name, unsigned char *buf, size_t buflen) {
  json_t *v = json_object_get(jwk, name);
  if (!json_is_string(v))
    return -1;
  return b64url_decode(json_string_value(v), json_string_length(v), buf, buflen);
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *ec_p256_from_jwk(json_t *jwk) {
  json_t *crv = json_object_get(jwk, "crv");
  if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0)
    return NULL;
  /* Uncompressed point: 0x04 || x || y, each coordinate exactly 32 bytes
   * as RFC 7518 section 6.2.1.2 demands (no stripped leading zeros). */
  unsigned char point[65];
  point[0] = 0x04;
  if (member_b64(jwk, "x", point + 1, 32) != 32 || member_b64(jwk, "y", point + 33, 32) != 32)
    return NULL;

  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  EVP_PKEY *pkey = NULL;
  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point))
    pkey = pkey_from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  if (!pkey)
    return NULL;

  /* Point on the curve, not the point at infinity, right order. */
  EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  int ok = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!ok) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  return pkey;
}

static EVP_PKEY *rsa_from_jwk(json_t *jwk) {
  unsigned char nbuf[RSA_MAX_BITS / 8 + 1];
  unsigned char ebuf[8];
  long nlen = member_b64(jwk, "n", nbuf, sizeof nbuf);
  long elen = member_b64(jwk, "e", ebuf, sizeof ebuf);
  if (nlen <= 0 || elen <= 0)
    return NULL;

  EVP_PKEY *pkey = NULL;
  BIGNUM *n = BN_bin2bn(nbuf, (int)nlen, NULL);
  BIGNUM *e = BN_bin2bn(ebuf, (int)elen, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  /* An even modulus or an exponent below 3 is no RSA key. */
  if (n && e && bld && BN_num_bits(n) >= RSA_MIN_BITS && BN_num_bits(n) <= RSA_MAX_BITS &&
      BN_is_odd(n) && BN_is_odd(e) && !BN_is_one(e) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    pkey = pkey_from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  return pkey;
}

/* "use", if present, must be "sig"; "key_ops", if present, must allow
 * "verify".  A key published for encryption never verifies a token. */
static bool jwk_meant_for_verify(json_t *jwk) {
  json_t *use = json_object_get(jwk, "use");
  if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
    return false;
  json_t *ops = json_object_get(jwk, "key_ops");
  if (!ops)
    return true;
  if (!json_is_array(ops))
    return false;
  size_t i;
  json_t *op;
  json_array_foreach(ops, i, op) {
    if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
      return true;
  }
  return false;
}

/* Fills *key from one JWK; false (nothing to free) when the key is skipped. */
static bool jwk_parse(json_t *jwk, struct jose_key *key) {
  if (!json_is_object(jwk) || !jwk_meant_for_verify(jwk))
    return false;
  json_t *kid = json_object_get(jwk, "kid");
  json_t *kty = json_object_get(jwk, "kty");
  json_t *alg = json_object_get(jwk, "alg");
  if (!json_is_string(kid) || json_string_length(kid) == 0 ||
      json_string_length(kid) > JWK_MAX_KID || !json_is_string(kty))
    return false;
  /* A key that names an algorithm we never accept is still kept: a token
   * that uses it then fails as a wrong alg, not as an unknown kid that
   * would send us to refetch the JWKS. */
  if (alg && (!json_is_string(alg) || json_string_length(alg) == 0 ||
              json_string_length(alg) > JWK_MAX_ALG))
    return false;

  memset(key, 0, sizeof *key);
  if (strcmp(json_string_value(kty), "EC") == 0) {
    key->kty = JOSE_KTY_EC_P256;
    key->pkey = ec_p256_from_jwk(jwk);
  } else if (strcmp(json_string_value(kty), "RSA") == 0) {
    key->kty = JOSE_KTY_RSA;
    key->pkey = rsa_from_jwk(jwk);
  }
  if (!key->pkey)
    return false;
  key->sig_len = key->kty == JOSE_KTY_EC_P256 ? 64 : (size_t)EVP_PKEY_get_size(key->pkey);
  key->kid = strdup(json_string_value(kid));
  key->alg = alg ? strdup(json_string_value(alg)) : NULL;
  if (!key->kid || (alg && !key->alg)) {
    EVP_PKEY_free(key->pkey);
    free(key->kid);
    free(key->alg);
    return false;
  }
  return true;
}

static void keyset_free(struct jose_keyset *ks) {
  for (size_t i = 0; i < ks->count; i++) {
    EVP_PKEY_free(ks->keys[i].pkey);
    free(ks->keys[i].kid);
    free(ks->keys[i].alg);
  }
  free(ks);
}

struct jose_keyset *jose_keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen) {
  if (!json) {
    set_err(err, errlen, "no JWKS document");
    return NULL;
  }
  json_error_t jerr;
  json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  json_t *keys = json_object_get(doc, "keys");
  if (!json_is_array(keys)) {
    set_err(err, errlen, doc ? "JWKS has no \"keys\" array" : "JWKS is not valid JSON");
    json_decref(doc);
    return NULL;
  }

  size_t n = json_array_size(keys);
  if (n > JWKS_MAX_KEYS)
    n = JWKS_MAX_KEYS;
  struct jose_keyset *ks = calloc(1, sizeof *ks + n * sizeof ks->keys[0]);
  if (!ks) {
    set_err(err, errlen, "out of memory");
    json_decref(doc);
    return NULL;
  }
  atomic_init(&ks->refs, 1);
  for (size_t i = 0; i < n; i++) {
    if (jwk_parse(json_array_get(keys, i), &ks->keys[ks->count]))
      ks->count++;
  }
  json_decref(doc);
  /* Key import failures leave messages in this thread's queue; they say
   * nothing a caller needs and must not surface in a later error report. */
  ERR_clear_error();

  if (ks->count == 0) {
    set_err(err, errlen, "JWKS has no usable key (ES256 P-256 or RSA >= 2048 bits with kid)");
    keyset_free(ks);
    return NULL;
  }
  return ks;
}

void jose_keyset_ref(struct jose_keyset *ks) {
  if (ks)
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
}

void jose_keyset_unref(struct jose_keyset *ks) {
  if (ks && atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) == 1)
    keyset_free(ks);
}

size_t jose_keyset_size(const struct jose_keyset *ks) { return ks ? ks->count : 0; }

/* The order n of the P-256 group, big-endian. */
static const unsigned char p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* r and s as 32-byte big-endian numbers must lie in [1, n-1]; OpenSSL
 * would reject most others too, but a signature that is not canonical
 * must never get as far as the library. */
static bool p256_scalar_in_range(const unsigned char v[32]) {
  static const unsigned char zero[32];
  return memcmp(v, zero, 32) != 0 && memcmp(v, p256_order, 32) < 0;
}

/* JWS carries ECDSA signatures as r || s (RFC 7518 section 3.4); OpenSSL
 * verifies DER.  Returns the DER length or 0. */
static size_t es256_to_der(const unsigned char sig[64], unsigned char *der, size_t derlen) {
  if (!p256_scalar_in_range(sig) || !p256_scalar_in_range(sig + 32))
    return 0;
  ECDSA_SIG *esig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL);
  BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
  size_t out = 0;
  if (esig && r && s && ECDSA_SIG_set0(esig, r, s) == 1) {
    r = s = NULL; /* owned by esig now */
    int need = i2d_ECDSA_SIG(esig, NULL);
    if (need > 0 && (size_t)need <= derlen) {
      unsigned char *p = der;
      out = i2d_ECDSA_SIG(esig, &p) == need ? (size_t)need : 0;
    }
  }
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(esig);
  return out;
}

static bool key_allows(const struct jose_key *key, const char *alg) {
  if (key->alg && strcmp(key->alg, alg) != 0)
    return false;
  if (strcmp(alg, "ES256") == 0)
    return key->kty == JOSE_KTY_EC_P256;
  if (strcmp(alg, "RS256") == 0)
    return key->kty == JOSE_KTY_RSA;
  return false;
}

enum jws_status jose_keyset_verify(const struct jose_keyset *ks, const char *kid, const char *alg,
                                   const unsigned char *input, size_t inlen,
                                   const unsigned char *sig, size_t siglen) {
  /* Several keys may share a kid (an RSA and an EC key, say); take the
   * one the header's alg is allowed with. */
  const struct jose_key *key = NULL;
  bool kid_known = false;
  for (size_t i = 0; ks && i < ks->count && !key; i++) {
    if (strcmp(ks->keys[i].kid, kid) != 0)
      continue;
    kid_known = true;
    if (key_allows(&ks->keys[i], alg))
      key = &ks->keys[i];
  }
  if (!key)
    return kid_known ? JWS_ERR_ALG : JWS_ERR_UNKNOWN_KID;
  if (siglen != key->sig_len)
    return JWS_ERR_SIGNATURE;

  unsigned char der[80];
  if (key->kty == JOSE_KTY_EC_P256) {
    siglen = es256_to_der(sig, der, sizeof der);
    if (siglen == 0)
      return JWS_ERR_SIGNATURE;
    sig = der;
  }

  /* A context per call: the EVP_PKEY is shared read-only between threads. */
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
            EVP_DigestVerify(ctx, sig, siglen, input, inlen) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok)
    ERR_clear_error();
  return ok ? JWS_OK : JWS_ERR_SIGNATURE;
}
