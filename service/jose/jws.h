/* Strict JWS verification.  Every token from outside goes through
 * jws_verify() before any signature code sees it: size, shape, header
 * (duplicate keys rejected), algorithm allowlist bound to the key's type
 * and curve, no "crit", kid must name a cached key, exact signature length,
 * then the signature.  Claims are checked by the caller (auth/identity.c).
 * Keys are parsed once into a keyset; a keyset is immutable and
 * reference-counted so a JWKS refresh can swap it atomically. */
#ifndef MACHTIGEN_JWS_H
#define MACHTIGEN_JWS_H

#include <jansson.h>
#include <stddef.h>

#define JWS_MAX_TOKEN 8192

struct jose_keyset;

/* Parses a JWKS document ({"keys":[...]}).  Keys with "use" other than
 * "sig", unsupported kty/crv, RSA under 2048 bits or without kid are
 * skipped.  Returns NULL (with a message in err) when no usable key
 * remains or the document is malformed. */
struct jose_keyset *jose_keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen);
void jose_keyset_ref(struct jose_keyset *ks);
void jose_keyset_unref(struct jose_keyset *ks);
size_t jose_keyset_size(const struct jose_keyset *ks);

enum jws_status {
  JWS_OK,
  JWS_ERR_SIZE,   /* empty or over JWS_MAX_TOKEN */
  JWS_ERR_FORMAT, /* not three base64url segments */
  JWS_ERR_HEADER, /* header not a JSON object, duplicate keys, typ wrong */
  JWS_ERR_ALG,    /* alg not allowed or not matching the key */
  JWS_ERR_CRIT,   /* crit present */
  JWS_ERR_UNKNOWN_KID,
  JWS_ERR_SIGNATURE, /* wrong length or does not verify */
  JWS_ERR_PAYLOAD,   /* payload not a JSON object or duplicate keys */
};

const char *jws_status_name(enum jws_status s);

/* Verifies a compact JWS against the keyset.  On JWS_OK *claims holds the
 * payload object (caller json_decref()s).  On JWS_ERR_UNKNOWN_KID the
 * caller may refresh its keyset once and retry.  Thread-safe. */
enum jws_status jws_verify(const struct jose_keyset *ks, const char *token, size_t len,
                           json_t **claims);

/* Looks kid up in the keyset and verifies sig over input with it.  The
 * key must allow alg (ES256 only with EC P-256 keys, RS256 only with RSA
 * keys, and the JWK's own "alg" where it names one): JWS_ERR_ALG if the
 * kid is known but no key with it allows alg, JWS_ERR_UNKNOWN_KID if the
 * kid is not there.  ES256 signatures are r || s (64 bytes, r and s in
 * [1, n-1]); RS256 ones exactly the modulus size.  jws_verify() uses this
 * after its own checks; it is exposed for callers that have already
 * split a token. */
enum jws_status jose_keyset_verify(const struct jose_keyset *ks, const char *kid, const char *alg,
                                   const unsigned char *input, size_t inlen,
                                   const unsigned char *sig, size_t siglen);

/* base64url without padding; returns bytes written or -1.  Strict:
 * rejects '=', characters outside [A-Za-z0-9_-], a length of 4k+1 and
 * non-zero unused trailing bits. */
long b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen);
/* Writes B64URL_ENCODED_LEN(inlen) characters, plus a NUL when outlen
 * leaves room for it; returns the number of characters (without the NUL)
 * or 0 when outlen is too small. */
#define B64URL_ENCODED_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
size_t b64url_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen);

#endif
