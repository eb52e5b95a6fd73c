/* Identity tokens from the configured OpenID Connect issuer. */
#ifndef MACHTIGEN_IDENTITY_H
#define MACHTIGEN_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/domain.h"

struct identity_config {
  const char *issuer;    /* MACHTIGEN_IDP_ISSUER, e.g. http://127.0.0.1:8081 */
  const char *audience;  /* MACHTIGEN_IDP_AUDIENCE, default "machtigen" */
  const char *bsn_claim; /* MACHTIGEN_IDP_BSN_CLAIM, default "sub" */
  int leeway_seconds;    /* exp/nbf skew, default 60 */
};

/* Who is calling: a person ("bsn:...") or an organisation's employee
 * (party "kvk:...", employee = pseudonymous sub). */
struct identity {
  struct party party;
  char employee[128]; /* empty for persons */
  enum loa loa;
  int64_t exp; /* seconds since epoch */
};

enum identity_status {
  IDENT_OK,
  IDENT_INVALID,     /* bad shape, signature, alg, claims */
  IDENT_EXPIRED,     /* exp passed (beyond leeway) */
  IDENT_UNAVAILABLE, /* keys could not be fetched: 503 */
};

/* Fetches discovery and JWKS.  Failure here is not fatal: verification
 * retries the fetch (at most once per second) and reports UNAVAILABLE
 * until it succeeds.  Returns false with err set if the config is bad. */
bool identity_init(const struct identity_config *cfg, char *err, size_t errlen);
void identity_shutdown(void);
/* true once a keyset is loaded (for /readyz). */
bool identity_ready(void);

/* Verifies a bearer identity token.  *reason gets a static, log-safe
 * description of a failure (never token contents). */
enum identity_status identity_verify(const char *token, size_t len, struct identity *out,
                                     const char **reason);

/* The claim rules alone, after the signature verified; no I/O, so tests
 * can call it with any clock.  now is seconds since the epoch.  NULL
 * audience/bsn_claim mean "machtigen"/"sub"; a negative leeway counts as
 * 0.  *out is filled only on IDENT_OK; *reason as for identity_verify(). */
enum identity_status identity_check_claims(const struct identity_config *cfg, json_t *claims,
                                           int64_t now, struct identity *out, const char **reason);

#endif
