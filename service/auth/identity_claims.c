/* Claim rules for identity tokens, applied after jws_verify() accepted the
 * signature.  Reasons are fixed strings: they may be logged and returned,
 * so they never quote a claim (a BSN is personal data). */
#include "auth/identity.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_AUDIENCE "machtigen"
#define DEFAULT_BSN_CLAIM "sub"
#define EMPLOYEE_MAX 127

/* NumericDate as whole seconds.  Fractions are allowed by RFC 7519 and
 * dropped; absurd values saturate instead of overflowing. */
static bool numeric_date(json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    *out = i > INT64_MAX / 2 ? INT64_MAX / 2 : i < INT64_MIN / 2 ? INT64_MIN / 2 : (int64_t)i;
    return true;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    *out = d > 4e18 ? INT64_MAX / 2 : d < -4e18 ? INT64_MIN / 2 : (int64_t)d;
    return true;
  }
  return false;
}

static bool audience_matches(json_t *aud, const char *audience) {
  if (json_is_string(aud))
    return strcmp(json_string_value(aud), audience) == 0;
  if (!json_is_array(aud))
    return false;
  bool found = false;
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) {
    if (!json_is_string(v))
      return false;
    if (strcmp(json_string_value(v), audience) == 0)
      found = true;
  }
  return found;
}

/* "123456782" or "bsn:123456782" with a valid 11-check. */
static bool bsn_claim_party(json_t *v, struct party *party) {
  if (!json_is_string(v))
    return false;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (len == 13 && strncmp(s, "bsn:", 4) == 0) {
    s += 4;
    len -= 4;
  }
  if (len != 9 || !bsn_valid(s, len))
    return false;
  char text[PARTY_MAX];
  snprintf(text, sizeof text, "bsn:%.9s", s);
  return party_parse(text, party) == PARTY_OK && party->kind == PARTY_PERSON;
}

/* "12345678" or "kvk:12345678". */
static bool kvk_claim_party(json_t *v, struct party *party) {
  if (!json_is_string(v))
    return false;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (len == 12 && strncmp(s, "kvk:", 4) == 0) {
    s += 4;
    len -= 4;
  }
  if (len != 8)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
  }
  char text[PARTY_MAX];
  snprintf(text, sizeof text, "kvk:%.8s", s);
  return party_parse(text, party) == PARTY_OK && party->kind == PARTY_ORGANISATION;
}

/* A pseudonymous employee id: 1..127 visible ASCII characters (no spaces
 * or control characters, so it is safe in logs and in the token we issue). */
static bool employee_valid(json_t *v) {
  if (!json_is_string(v))
    return false;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (len == 0 || len > EMPLOYEE_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < 0x21 || s[i] > 0x7e)
      return false;
  }
  return true;
}

static enum identity_status fail(const char **reason, const char *why, enum identity_status st) {
  if (reason)
    *reason = why;
  return st;
}

/* Who the token is for: a person (BSN claim) or an organisation (kvk) and
 * its employee (sub).  Exactly one of the two must be present. */
static enum identity_status check_subject(const struct identity_config *cfg, json_t *claims,
                                          struct identity *id, const char **reason) {
  const char *bsn_name = cfg->bsn_claim && *cfg->bsn_claim ? cfg->bsn_claim : DEFAULT_BSN_CLAIM;
  json_t *kvk = json_object_get(claims, "kvk");
  json_t *bsn = json_object_get(claims, bsn_name);

  if (!kvk) {
    if (!bsn)
      return fail(reason, "no subject", IDENT_INVALID);
    if (!bsn_claim_party(bsn, &id->party))
      return fail(reason, "invalid bsn", IDENT_INVALID);
    return IDENT_OK;
  }

  /* With the default BSN claim "sub" the employee id shares the claim, so
   * a sub that is a valid BSN means a person token with a kvk on it. */
  struct party ignored;
  if ((strcmp(bsn_name, "sub") != 0 && bsn) || bsn_claim_party(bsn, &ignored))
    return fail(reason, "both bsn and kvk", IDENT_INVALID);
  if (!kvk_claim_party(kvk, &id->party))
    return fail(reason, "invalid kvk", IDENT_INVALID);
  json_t *sub = json_object_get(claims, "sub");
  if (!employee_valid(sub))
    return fail(reason, "invalid employee sub", IDENT_INVALID);
  memcpy(id->employee, json_string_value(sub), json_string_length(sub) + 1);
  return IDENT_OK;
}

enum identity_status identity_check_claims(const struct identity_config *cfg, json_t *claims,
                                           int64_t now, struct identity *out, const char **reason) {
  if (reason)
    *reason = NULL;
  if (!cfg || !cfg->issuer || !json_is_object(claims))
    return fail(reason, "bad claims", IDENT_INVALID);
  const char *audience = cfg->audience && *cfg->audience ? cfg->audience : DEFAULT_AUDIENCE;
  int64_t leeway = cfg->leeway_seconds > 0 ? cfg->leeway_seconds : 0;

  json_t *iss = json_object_get(claims, "iss");
  if (!json_is_string(iss) || strcmp(json_string_value(iss), cfg->issuer) != 0)
    return fail(reason, "wrong issuer", IDENT_INVALID);
  if (!audience_matches(json_object_get(claims, "aud"), audience))
    return fail(reason, "wrong audience", IDENT_INVALID);

  int64_t exp, t;
  if (!numeric_date(json_object_get(claims, "exp"), &exp))
    return fail(reason, "missing exp", IDENT_INVALID);
  if (now >= exp + leeway)
    return fail(reason, "token expired", IDENT_EXPIRED);
  json_t *nbf = json_object_get(claims, "nbf");
  if (nbf && (!numeric_date(nbf, &t) || t > now + leeway))
    return fail(reason, "token not yet valid", IDENT_INVALID);
  json_t *iat = json_object_get(claims, "iat");
  if (iat && (!numeric_date(iat, &t) || t > now + leeway))
    return fail(reason, "token issued in the future", IDENT_INVALID);

  struct identity id;
  memset(&id, 0, sizeof id);
  json_t *acr = json_object_get(claims, "acr");
  if (!json_is_string(acr))
    return fail(reason, "missing acr", IDENT_INVALID);
  id.loa = loa_parse(json_string_value(acr));
  if (id.loa == LOA_NONE)
    return fail(reason, "unknown acr", IDENT_INVALID);

  enum identity_status st = check_subject(cfg, claims, &id, reason);
  if (st != IDENT_OK)
    return st;
  id.exp = exp;
  if (out)
    *out = id;
  return IDENT_OK;
}
