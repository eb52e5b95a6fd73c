/* Identity tokens for the API tests: real ones minted by dev-idp, and the
 * forgeries every verifier must refuse.  Parties are written as the API
 * writes them ("bsn:123456782", "kvk:12345678"). */
#ifndef API_TOKENS_H
#define API_TOKENS_H

#include <jansson.h>
#include <stddef.h>

/* A random BSN passing the 11-check ("bsn:" + 9 digits), fresh per call so
 * reruns against the same database never collide. */
void random_bsn(char out[14]);
/* A random KVK number ("kvk:" + 8 digits, not all zero). */
void random_kvk(char out[13]);
/* A random UUID (version 4). */
void random_uuid(char out[37]);

/* GET $IDP_URL/mint?<query>; the token, malloc'd.  Fails the test when
 * dev-idp does not answer 200. */
char *token_mint(const char *query);
/* A person's token; party is "bsn:…". */
char *token_person(const char *party, const char *loa);
/* An organisation's token: party "kvk:…" acting through employee. */
char *token_org(const char *party, const char *employee, const char *loa);

enum token_kind {
  TOKEN_VALID,       /* minted by dev-idp */
  TOKEN_NONE,        /* no Authorization header at all */
  TOKEN_EMPTY,       /* "Authorization: Bearer " */
  TOKEN_BASIC,       /* another scheme */
  TOKEN_GARBAGE,     /* not a JWS */
  TOKEN_EXPIRED,     /* ttl=-300 */
  TOKEN_WRONG_AUD,   /* aud=someone-else */
  TOKEN_ALG_NONE,    /* {"alg":"none","kid":<real kid>}, empty signature */
  TOKEN_HS256_JWK,   /* HS256, the IdP's public JWK (JSON text) as the HMAC secret */
  TOKEN_HS256_X,     /* HS256, the raw x-coordinate bytes as the HMAC secret */
  TOKEN_FORGED,      /* ES256 by a fresh key of ours with the IdP's real kid */
  TOKEN_UNKNOWN_KID, /* ES256 by a fresh key with a kid nobody published */
  TOKEN_TAMPERED,    /* a real token with one payload byte changed */
  TOKEN_OVERSIZED,   /* over 8 KiB */
};

const char *token_kind_name(enum token_kind kind);

/* The Authorization header value for a token of this kind for a person
 * ("Bearer …", "Basic …"), or NULL for TOKEN_NONE.  malloc'd. */
char *token_authorization(enum token_kind kind, const char *party, const char *loa);

/* base64url without padding (RFC 7515 §2), written here independently of
 * the server's code under test.  decode fails the test on a bad character
 * and returns the byte count; out needs room for n bytes. */
char *test_b64url_encode(const unsigned char *in, size_t n);
size_t test_b64url_decode(const char *in, size_t n, unsigned char *out);
/* base64url of j's compact JSON text; j is stolen. */
char *test_b64url_json(json_t *j);

#endif
