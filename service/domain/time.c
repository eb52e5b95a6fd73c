/* Instants: RFC 3339 parsing and formatting and the Europe/Amsterdam
 * offset.  Calendar arithmetic on proleptic Gregorian day numbers (Howard
 * Hinnant's days_from_civil) instead of mktime/timegm/localtime, so that
 * nothing reads the process-wide TZ state: pure and thread-safe. */
#include "domain/domain.h"

#include <stdio.h>

#define SEC_PER_DAY INT64_C(86400)
#define SEC_PER_HOUR INT64_C(3600)
#define USEC_PER_HOUR (SEC_PER_HOUR * USEC_PER_SEC)
#define YEAR_MIN 1970
#define YEAR_MAX 9999
/* 10000-01-01T00:00:00Z is day 2932897 since the epoch. */
#define TIME_MAX (INT64_C(2932897) * USEC_PER_DAY - 1)

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;                                   /* [0, 399] */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday; day 0 (1970-01-01) was a Thursday. */
static int weekday(int64_t days) {
  int64_t w = (days + 4) % 7;
  return (int)(w < 0 ? w + 7 : w);
}

static int days_in_month(int64_t y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

/* Floor division and its non-negative remainder, without overflow. */
static int64_t floor_divmod(int64_t a, int64_t b, int64_t *rem) {
  int64_t q = a / b;
  int64_t r = a % b;
  if (r < 0) {
    r += b;
    q--;
  }
  *rem = r;
  return q;
}

/* EU summer time switches at 01:00 UTC on the last Sunday of March and of
 * October (both months have 31 days).  In seconds since the epoch. */
static int64_t eu_switch(int64_t year, int month) {
  int64_t last = days_from_civil(year, month, 31);
  return (last - weekday(last)) * SEC_PER_DAY + SEC_PER_HOUR;
}

/* The current EU rule for every year: the Netherlands followed other
 * rules before 1996, which no mandate period reaches back to.  An import
 * asks this twice per row, for a handful of years: each thread keeps the
 * switches of the years it saw last. */
struct dst_year {
  int64_t year, spring, autumn; /* spring 0: not filled in yet */
};

int amsterdam_offset(usec_t t) {
  static _Thread_local struct dst_year seen[16];
  int64_t rem;
  int64_t secs = floor_divmod(t, USEC_PER_SEC, &rem);
  int64_t y;
  int m, d;
  civil_from_days(floor_divmod(secs, SEC_PER_DAY, &rem), &y, &m, &d);
  struct dst_year *s = &seen[(uint64_t)y % 16];
  if (s->year != y || s->spring == 0) {
    s->year = y;
    s->spring = eu_switch(y, 3);
    s->autumn = eu_switch(y, 10);
  }
  return secs >= s->spring && secs < s->autumn ? 7200 : 3600;
}

/* The instant local midnight starts day `days` in Amsterdam.  The switches
 * happen at 02:00/03:00 local time, so the offset one hour before the
 * local midnight taken as UTC (22:00 or 23:00 UTC the day before, the same
 * side of any switch as the true instant) is the one in force. */
static usec_t amsterdam_midnight(int64_t days) {
  usec_t local = days * USEC_PER_DAY;
  return local - amsterdam_offset(local - USEC_PER_HOUR) * USEC_PER_SEC;
}

/* Exactly n digits at s; stops at the first non-digit (so never reads
 * past a NUL). */
static bool read_digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/* "[.fraction]" of 1..9 digits, truncated to microseconds. */
static bool read_fraction(const char **p, int64_t *usec) {
  *usec = 0;
  if (**p != '.') {
    return true;
  }
  const char *s = *p + 1;
  int n = 0;
  int64_t v = 0;
  for (; s[n] >= '0' && s[n] <= '9'; n++) {
    if (n == 9) {
      return false;
    }
    if (n < 6) {
      v = v * 10 + (s[n] - '0');
    }
  }
  if (n == 0) {
    return false;
  }
  for (int i = n; i < 6; i++) {
    v *= 10;
  }
  *usec = v;
  *p = s + n;
  return true;
}

/* "Z" or "±HH:MM", as seconds east of UTC. */
static bool read_zone(const char **p, int64_t *offset) {
  const char *s = *p;
  if (*s == 'Z' || *s == 'z') {
    *offset = 0;
    *p = s + 1;
    return true;
  }
  int hh, mm;
  if ((*s != '+' && *s != '-') || !read_digits(s + 1, 2, &hh) || s[3] != ':' ||
      !read_digits(s + 4, 2, &mm) || hh > 23 || mm > 59) {
    return false;
  }
  *offset = (hh * SEC_PER_HOUR + mm * 60) * (*s == '-' ? -1 : 1);
  *p = s + 6;
  return true;
}

/* "THH:MM:SS[.frac](Z|±HH:MM)" after the date: time of day minus offset,
 * in microseconds.  Leap seconds (:60) are refused, as PostgreSQL cannot
 * store them. */
static bool read_clock(const char *s, usec_t *since_midnight) {
  int h, mi, sec;
  if ((s[0] != 'T' && s[0] != 't') || !read_digits(s + 1, 2, &h) || s[3] != ':' ||
      !read_digits(s + 4, 2, &mi) || s[6] != ':' || !read_digits(s + 7, 2, &sec) || h > 23 ||
      mi > 59 || sec > 59) {
    return false;
  }
  const char *p = s + 9;
  int64_t frac, offset;
  if (!read_fraction(&p, &frac) || !read_zone(&p, &offset) || *p != '\0') {
    return false;
  }
  *since_midnight = ((h * SEC_PER_HOUR + mi * 60 + sec) - offset) * USEC_PER_SEC + frac;
  return true;
}

/* RFC 3339 allows lower-case 't' and 'z' (section 5.6, note), so we do;
 * a space instead of 'T' and any surrounding whitespace are refused.  The
 * year must be 1970..9999 as written and the instant must fall in
 * 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z, so that whatever
 * parses formats back to text that parses again. */
bool time_parse(const char *text, enum period_bound bound, usec_t *out) {
  int y, m, d;
  if (text == NULL || out == NULL || !read_digits(text, 4, &y) || text[4] != '-' ||
      !read_digits(text + 5, 2, &m) || text[7] != '-' || !read_digits(text + 8, 2, &d)) {
    return false;
  }
  /* Four digits keep the year at or below YEAR_MAX. */
  if (y < YEAR_MIN || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) {
    return false;
  }
  int64_t days = days_from_civil(y, m, d);
  usec_t t;
  if (text[10] == '\0') {
    t = bound == BOUND_END ? amsterdam_midnight(days + 1) - 1 : amsterdam_midnight(days);
  } else {
    usec_t clock;
    if (!read_clock(text + 10, &clock)) {
      return false;
    }
    t = days * USEC_PER_DAY + clock;
  }
  if (t < 0 || t > TIME_MAX) {
    return false;
  }
  *out = t;
  return true;
}

void time_format(usec_t t, char *buf, size_t len) {
  if (buf == NULL || len == 0) {
    return;
  }
  int64_t usec, secs, y;
  int m, d;
  int64_t days = floor_divmod(t, USEC_PER_DAY, &usec);
  civil_from_days(days, &y, &m, &d);
  secs = usec / USEC_PER_SEC;
  usec %= USEC_PER_SEC;
  int n = snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d,
                   (int)(secs / SEC_PER_HOUR), (int)(secs / 60 % 60), (int)(secs % 60));
  if ((size_t)n >= len) { /* truncated; an error (n < 0) converts to a huge size */
    return;
  }
  if (usec != 0) {
    snprintf(buf + n, len - (size_t)n, ".%06dZ", (int)usec);
  } else {
    snprintf(buf + n, len - (size_t)n, "Z");
  }
}
