/* Parties: a person by BSN (citizen service number) or an organisation by
 * its 8-digit KvK (Chamber of Commerce) number. */
#include "domain/domain.h"

#include <string.h>

#define BSN_DIGITS 9
#define KVK_DIGITS 8
#define PREFIX_LEN 4

static bool all_digits(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
  }
  return true;
}

static bool all_zero(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '0') {
      return false;
    }
  }
  return true;
}

bool bsn_valid(const char *digits, size_t len) {
  if (digits == NULL || len != BSN_DIGITS || !all_digits(digits, len)) {
    return false;
  }
  /* The "elfproef": weights 9..2 for the first eight digits and -1 for the
   * check digit; the sum must be a multiple of 11.  All zeros passes the
   * arithmetic but is never issued. */
  int sum = 0;
  for (size_t i = 0; i < BSN_DIGITS - 1; i++) {
    sum += (int)(BSN_DIGITS - i) * (digits[i] - '0');
  }
  sum -= digits[BSN_DIGITS - 1] - '0';
  return sum % 11 == 0 && !all_zero(digits, len);
}

/* Format errors (unknown or upper-case prefix, wrong length, non-digits,
 * spaces) are PARTY_BAD_FORMAT; a well-formed number that cannot exist is
 * PARTY_BAD_BSN (11-check, 000000000) or PARTY_BAD_KVK (00000000: KvK
 * numbers carry no check digit, so that is the only one we can rule out). */
enum party_error party_parse(const char *text, struct party *out) {
  if (text == NULL || out == NULL) {
    return PARTY_BAD_FORMAT;
  }
  size_t len = strnlen(text, PARTY_MAX);
  const char *number = text + PREFIX_LEN;
  enum party_kind kind;
  if (len == PREFIX_LEN + BSN_DIGITS && strncmp(text, "bsn:", PREFIX_LEN) == 0 &&
      all_digits(number, BSN_DIGITS)) {
    if (!bsn_valid(number, BSN_DIGITS)) {
      return PARTY_BAD_BSN;
    }
    kind = PARTY_PERSON;
  } else if (len == PREFIX_LEN + KVK_DIGITS && strncmp(text, "kvk:", PREFIX_LEN) == 0 &&
             all_digits(number, KVK_DIGITS)) {
    if (all_zero(number, KVK_DIGITS)) {
      return PARTY_BAD_KVK;
    }
    kind = PARTY_ORGANISATION;
  } else {
    return PARTY_BAD_FORMAT;
  }
  out->kind = kind;
  memcpy(out->id, text, len + 1);
  return PARTY_OK;
}
