/* libFuzzer target for the domain parsers of outside input: parties,
 * levels of assurance, instants.  Besides memory errors (ASan/UBSan) it
 * checks properties and abort()s when one fails:
 * - a parsed party's id is the input itself;
 * - a parsed LoA's name is the input itself;
 * - a parsed instant formats to text that parses back to the same value,
 *   and the end of a day is not before its start;
 * - a parsed activity cursor is positive and its text parses back to it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

static void check_party(const char *text) {
  struct party p;
  if (party_parse(text, &p) == PARTY_OK) {
    size_t len = strlen(text);
    if (strcmp(p.id, text) != 0 || (p.kind == PARTY_PERSON && !bsn_valid(text + 4, len - 4))) {
      abort();
    }
  }
}

static void check_loa(const char *text) {
  enum loa l = loa_parse(text);
  if (l != LOA_NONE && strcmp(loa_name(l), text) != 0) {
    abort();
  }
}

static void check_time(const char *text, enum period_bound bound, usec_t *out, bool *ok) {
  *ok = time_parse(text, bound, out);
  if (!*ok) {
    return;
  }
  char buf[32];
  usec_t again;
  time_format(*out, buf, sizeof buf);
  if (!time_parse(buf, bound, &again) || again != *out) {
    abort();
  }
}

static void check_cursor(const char *text) {
  struct activity_cursor c, again;
  if (!activity_cursor_parse(text, &c)) {
    return;
  }
  char buf[48];
  if (c.n > 0) {
    snprintf(buf, sizeof buf, "%lld.%lld", c.seq, c.n);
  } else {
    snprintf(buf, sizeof buf, "%lld", c.seq);
  }
  if (c.seq < 1 || c.n < 0 || !activity_cursor_parse(buf, &again) || again.seq != c.seq ||
      again.n != c.n) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) {
    return 0;
  }
  memcpy(text, data, size);
  text[size] = '\0';

  check_party(text);
  check_loa(text);
  check_cursor(text);
  usec_t start, end;
  bool start_ok, end_ok;
  check_time(text, BOUND_START, &start, &start_ok);
  check_time(text, BOUND_END, &end, &end_ok);
  if (start_ok && end_ok && end < start) {
    abort();
  }
  (void)bsn_valid(text, size);
  if (size >= 9) {
    (void)bsn_valid(text, 9);
  }

  free(text);
  return 0;
}
