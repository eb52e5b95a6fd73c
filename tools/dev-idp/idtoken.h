/* dev-idp: the signing key, ES256 identity tokens and the checks on what goes into them.
 * Shared by the `mint` command (no server) and the HTTP endpoints. */
#ifndef DEV_IDP_IDTOKEN_H
#define DEV_IDP_IDTOKEN_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define B64URL_LEN(n) (((n)*4 + 2) / 3) /* unpadded */

struct idp_key {
  EVP_PKEY *pkey;
  char kid[B64URL_LEN(32) + 1]; /* RFC 7638 thumbprint */
  char x[B64URL_LEN(32) + 1];
  char y[B64URL_LEN(32) + 1];
};

/* Loads the P-256 key in PEM at path, or creates it (0600) if the file does not exist. */
bool idp_key_load_or_create(const char *path, struct idp_key *key, char *err, size_t errlen);
void idp_key_free(struct idp_key *key);
/* {"keys":[…]} with the public key; malloc'd. */
char *idp_jwks_json(const struct idp_key *key);

/* A mistake in one input field, with a message in Dutch and in English. */
struct field_error {
  const char *field;
  const char *nl;
  const char *en;
};

enum subject_kind { SUBJECT_PERSON, SUBJECT_ORGANISATION };

/* Who logs in. */
struct subject {
  enum subject_kind kind;
  char bsn[10];      /* 9 digits, persons */
  char kvk[9];       /* 8 digits, organisations */
  char employee[65]; /* organisations: the acting employee's id, becomes `sub` */
  char name[201];    /* optional, UTF-8 */
  char loa[13];      /* basis | midden | substantieel | hoog */
};

/* Raw field values (NULL or "" = absent).  kind may be NULL: then it follows from which of
 * bsn/kvk is given. */
struct subject_fields {
  const char *kind, *bsn, *kvk, *employee, *name, *loa;
};

/* Checks and normalises the fields; returns the number of errors written to errs (≤ max). */
int subject_parse(const struct subject_fields *in, struct subject *out, struct field_error *errs,
                  int max);

#define TTL_LIMIT (366 * 24 * 3600)

struct mint_request {
  struct subject subject;
  const char *audience;
  const char *nonce; /* NULL: no nonce claim */
  int64_t ttl;       /* seconds; negative gives an expired token */
};

/* Parses a ttl in seconds within ±TTL_LIMIT. */
bool ttl_parse(const char *s, int64_t *out);
/* An audience, nonce or client id: 1..256 visible ASCII characters. */
bool token_string_ok(const char *s);
/* Compact JWS (malloc'd) or NULL. */
char *idtoken_mint(const struct idp_key *key, const char *issuer, const struct mint_request *req);

bool bsn_valid(const char *nine_digits);
/* Unpadded base64url of n bytes into out (B64URL_LEN(n) + 1 bytes). */
void b64url_encode(const unsigned char *in, size_t n, char *out);
/* base64url of n random bytes (n ≤ 48). */
void random_b64url(size_t n, char *out);

#endif
