/* Compact JWS verification: the token's syntax and header rules.  The key
 * lookup and the signature itself are in jwks.c.  Every check happens in
 * a fixed order before any key is touched, and the payload is parsed only
 * after its signature verified. */
#include "jose/jws.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The only algorithms accepted from any issuer.  "none", HS* (which would
 * turn a public key into an HMAC secret), PS*, ES384... never get past
 * this list. */
static bool alg_allowed(const char *alg) {
  return strcmp(alg, "ES256") == 0 || strcmp(alg, "RS256") == 0;
}

const char *jws_status_name(enum jws_status s) {
  switch (s) {
  case JWS_OK:
    return "ok";
  case JWS_ERR_SIZE:
    return "size";
  case JWS_ERR_FORMAT:
    return "format";
  case JWS_ERR_HEADER:
    return "header";
  case JWS_ERR_ALG:
    return "alg";
  case JWS_ERR_CRIT:
    return "crit";
  case JWS_ERR_UNKNOWN_KID:
    return "unknown-kid";
  case JWS_ERR_SIGNATURE:
    return "signature";
  case JWS_ERR_PAYLOAD:
    return "payload";
  }
  return "unknown";
}

struct segment {
  const char *text; /* base64url text inside the token */
  size_t len;
  unsigned char *bytes; /* decoded, inside the caller's buffer */
  size_t nbytes;
};

/* Splits at exactly two dots into three non-empty segments and decodes
 * each into buf (at least len bytes: decoding only shrinks). */
static bool split_and_decode(const char *token, size_t len, struct segment seg[3],
                             unsigned char *buf) {
  const char *dot1 = memchr(token, '.', len);
  if (!dot1)
    return false;
  const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return false;

  seg[0].text = token;
  seg[0].len = (size_t)(dot1 - token);
  seg[1].text = dot1 + 1;
  seg[1].len = (size_t)(dot2 - seg[1].text);
  seg[2].text = dot2 + 1;
  seg[2].len = len - (size_t)(seg[2].text - token);

  unsigned char *out = buf;
  for (int i = 0; i < 3; i++) {
    if (seg[i].len == 0)
      return false;
    long n = b64url_decode(seg[i].text, seg[i].len, out, seg[i].len);
    if (n <= 0)
      return false;
    seg[i].bytes = out;
    seg[i].nbytes = (size_t)n;
    out += n;
  }
  return true;
}

/* Header rules up to the key lookup.  On JWS_OK *alg and *kid point into
 * the header object. */
static enum jws_status check_header(json_t *hdr, const char **alg, const char **kid) {
  if (!json_is_object(hdr))
    return JWS_ERR_HEADER;
  json_t *a = json_object_get(hdr, "alg");
  if (!json_is_string(a) || !alg_allowed(json_string_value(a)))
    return JWS_ERR_ALG;
  /* We understand no extension, so any "crit" (even an empty list, which
   * RFC 7515 forbids anyway) must fail. */
  if (json_object_get(hdr, "crit"))
    return JWS_ERR_CRIT;
  json_t *k = json_object_get(hdr, "kid");
  if (!json_is_string(k) || json_string_length(k) == 0)
    return JWS_ERR_HEADER;
  json_t *typ = json_object_get(hdr, "typ");
  if (typ && !json_is_string(typ))
    return JWS_ERR_HEADER;
  /* "jku", "jwk", "x5u" and "x5c" are deliberately never looked at: the
   * keys come from the configured issuer only. */
  *alg = json_string_value(a);
  *kid = json_string_value(k);
  return JWS_OK;
}

enum jws_status jws_verify(const struct jose_keyset *ks, const char *token, size_t len,
                           json_t **claims) {
  if (claims)
    *claims = NULL;
  if (!token || len == 0 || len > JWS_MAX_TOKEN)
    return JWS_ERR_SIZE;

  unsigned char *buf = malloc(len);
  if (!buf)
    return JWS_ERR_SIZE;
  struct segment seg[3];
  enum jws_status st = JWS_ERR_FORMAT;
  json_t *hdr = NULL;
  json_t *payload = NULL;
  if (!split_and_decode(token, len, seg, buf))
    goto out;

  hdr = json_loadb((const char *)seg[0].bytes, seg[0].nbytes, JSON_REJECT_DUPLICATES, NULL);
  const char *alg = NULL;
  const char *kid = NULL;
  st = hdr ? check_header(hdr, &alg, &kid) : JWS_ERR_HEADER;
  if (st != JWS_OK)
    goto out;

  /* The signing input is the token text up to the second dot. */
  size_t input_len = (size_t)(seg[2].text - 1 - token);
  st = jose_keyset_verify(ks, kid, alg, (const unsigned char *)token, input_len, seg[2].bytes,
                          seg[2].nbytes);
  if (st != JWS_OK)
    goto out;

  payload = json_loadb((const char *)seg[1].bytes, seg[1].nbytes, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(payload)) {
    st = JWS_ERR_PAYLOAD;
    goto out;
  }
  if (claims) {
    *claims = payload;
    payload = NULL;
  }

out:
  json_decref(payload);
  json_decref(hdr);
  free(buf);
  return st;
}
