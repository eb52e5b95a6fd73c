/* Validity periods of mandates. */
#include "domain/domain.h"

/* Is until more than max_days (+ the rest of the last day) after from?
 * Counted on Amsterdam wall-clock time, so that a period across a DST
 * switch is measured in calendar days the way a citizen reads it (and the
 * way PostgreSQL adds 'N days' to a timestamptz in that zone): 1 October
 * to the end of 31 October is 30 days although it lasts 30 days 25 hours. */
static bool too_long(usec_t from, usec_t until, int max_days) {
  if (max_days < 0) {
    return true;
  }
  int64_t limit;
  if (__builtin_mul_overflow((int64_t)max_days, USEC_PER_DAY, &limit) ||
      __builtin_add_overflow(limit, USEC_PER_DAY - 1, &limit)) {
    return false; /* beyond any representable instant */
  }
  /* until > from, so the span fits in 64 unsigned bits; limit >= 1 day and
   * |shift| <= 1 hour, so limit - shift is positive and below 2^64 and the
   * modular unsigned arithmetic gives its exact value. */
  uint64_t span = (uint64_t)until - (uint64_t)from;
  int64_t shift = (int64_t)(amsterdam_offset(until) - amsterdam_offset(from)) * USEC_PER_SEC;
  return span > (uint64_t)limit - (uint64_t)shift;
}

enum period_error period_check(usec_t from, usec_t until, int max_days, usec_t now) {
  if (until <= from) {
    return PERIOD_INVERTED;
  }
  if (too_long(from, until, max_days)) {
    return PERIOD_TOO_LONG;
  }
  if (until <= now) {
    return PERIOD_ALREADY_ENDED;
  }
  return PERIOD_OK;
}
