/* libFuzzer target for the JWS/JWK parsers (service/jose).  Each input is
 * fed, as it is, to b64url_decode(), jose_keyset_from_jwks() and
 * jws_verify() against a fixed keyset (one EC P-256 and one RSA 2048 key).
 * An input of the form "!<header JSON>\n<payload JSON>" is also signed
 * here with the EC key, so the fuzzer reaches the header rules behind a
 * valid signature and the payload parser.  The keys are constants: the
 * seed corpus holds tokens signed with them. */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose/jws.h"

/* Test keys only, never used anywhere else. */
static const char ec_d_hex[] = "398631b19fba6dda0f0d889f9441a102538bdd8ff02a9a4fa4532b62f835ba7b";
static const char ec_x[] = "IoIKoNpgigMdd2sRT7ayMksvPQNxXtrmVEetGILDUG8";
static const char ec_y[] = "UmVNYxVDjIc6DaHhHmWHZZujJYJacxr70OIcQdCxbxo";
static const char rsa_n[] = "1QpN9ESYnX93Asl-JUXFvPCUt_zIdbl2E1a_bsZfzh_svBgUAD3hjjlqBNQI4Di575z2-"
                            "d9V-LD7MUMNRLz-tTlFWFXVQfKj"
                            "N5NB3krVMCEg8fwiO6zEGJDPzYNovp7Wohllckzao-pgdVy9QG0mgKg_"
                            "v7bIWVioVTNsSWxWJ_09p30xiDW16FqqqfumqRBc"
                            "4LwQDukMo_mAWXJjV9RX4udvG2D-80qod1LvRoG-ZKHAkP4H-QJJ9VU7aRXXo6EBqn9_"
                            "Pjx4T7ZC-gg-Od-mUeQ1dsUDlZQ1"
                            "mTqgBrs3ZsRoaWFtbRtd_pl3HBIvTfLSoP7CWHI8yDwy6XhOc6PhWw";

static struct jose_keyset *keyset;
static EVP_PKEY *ec_signer;

static EVP_PKEY *load_ec_signer(void) {
  unsigned char pub[65] = {0x04};
  if (b64url_decode(ec_x, strlen(ec_x), pub + 1, 32) != 32 ||
      b64url_decode(ec_y, strlen(ec_y), pub + 33, 32) != 32)
    return NULL;
  BIGNUM *d = NULL;
  BN_hex2bn(&d, ec_d_hex);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub);
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *key = NULL;
  if (EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
    key = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(d);
  return key;
}

static void init_once(void) {
  json_t *keys = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]}", "keys",
                           "kty", "EC", "crv", "P-256", "kid", "ec1", "x", ec_x, "y", ec_y, "kty",
                           "RSA", "kid", "rsa1", "alg", "RS256", "n", rsa_n, "e", "AQAB");
  char *text = json_dumps(keys, JSON_COMPACT);
  json_decref(keys);
  char err[128];
  keyset = text ? jose_keyset_from_jwks(text, strlen(text), err, sizeof err) : NULL;
  free(text);
  ec_signer = load_ec_signer();
  if (!keyset || jose_keyset_size(keyset) != 2 || !ec_signer) {
    fprintf(stderr, "fuzz_jws: test keys did not load\n");
    abort();
  }
}

/* A decoded value has exactly one encoding: re-encoding gives the input. */
static void check_b64url(const uint8_t *data, size_t size) {
  unsigned char *out = malloc(size + 1);
  long n = b64url_decode((const char *)data, size, out, size);
  if (n >= 0) {
    char *again = malloc(size + 1);
    if (b64url_encode(out, (size_t)n, again, size + 1) != size || memcmp(again, data, size) != 0)
      abort();
    free(again);
    /* One byte short of room must fail cleanly. */
    if (n > 0 && b64url_decode((const char *)data, size, out, (size_t)n - 1) != -1)
      abort();
  }
  free(out);
}

static void verify(const char *token, size_t len) {
  json_t *claims = NULL;
  enum jws_status st = jws_verify(keyset, token, len, &claims);
  if ((st == JWS_OK) != (claims != NULL) || (claims && !json_is_object(claims)))
    abort();
  if (!jws_status_name(st))
    abort();
  json_decref(claims);
}

/* "!<header>\n<payload>": sign both with the EC key and verify. */
static void verify_signed(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl || size > JWS_MAX_TOKEN)
    return;
  size_t hlen = (size_t)(nl - data - 1);
  size_t plen = size - hlen - 2;
  char *token = malloc(B64URL_ENCODED_LEN(size) + 100);
  size_t n = b64url_encode(data + 1, hlen, token, B64URL_ENCODED_LEN(hlen));
  token[n++] = '.';
  n += b64url_encode(nl + 1, plen, token + n, B64URL_ENCODED_LEN(plen));

  unsigned char der[80], rs[64];
  size_t derlen = sizeof der;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ec_signer) != 1 ||
      EVP_DigestSign(ctx, der, &derlen, (unsigned char *)token, n) != 1)
    abort();
  EVP_MD_CTX_free(ctx);
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
  ECDSA_SIG_free(sig);
  token[n++] = '.';
  n += b64url_encode(rs, sizeof rs, token + n, B64URL_ENCODED_LEN(sizeof rs));
  verify(token, n);
  free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!keyset)
    init_once();
  check_b64url(data, size);

  char err[128];
  struct jose_keyset *ks = jose_keyset_from_jwks((const char *)data, size, err, sizeof err);
  if (ks) {
    for (size_t i = 0; i < 2; i++)
      jose_keyset_ref(ks);
    jose_keyset_unref(ks);
    jose_keyset_unref(ks);
    (void)jose_keyset_size(ks);
    jose_keyset_unref(ks);
  }

  verify((const char *)data, size);
  if (size > 1 && data[0] == '!')
    verify_signed(data, size);
  return 0;
}
