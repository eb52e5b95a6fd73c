#include "db/tokens_db.h"

#include <stdio.h>
#include <string.h>

static bool parse_count(const char *s, size_t len, long long min, long long *out) {
  long long v = 0;
  if (len == 0 || len > 18)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return v >= min;
}

bool activity_cursor_parse(const char *text, struct activity_cursor *c) {
  const char *dot = strchr(text, '.');
  size_t seq_len = dot ? (size_t)(dot - text) : strlen(text);
  c->n = 0;
  return parse_count(text, seq_len, 1, &c->seq) &&
         (dot == NULL || parse_count(dot + 1, strlen(dot + 1), 1, &c->n));
}

void activity_cursor_text(const PGresult *r, int row, char *out, size_t size) {
  const char *n = PQgetvalue(r, row, PQnfields(r) - 1);
  snprintf(out, size, "%s%s%s", PQgetvalue(r, row, 0), strcmp(n, "0") != 0 ? "." : "",
           strcmp(n, "0") != 0 ? n : "");
}

enum db_status db_activity_list(struct db *db, const char *principal,
                                const struct activity_cursor *before, int limit, PGresult **res) {
  char seq[24], n[24], lim[12];
  snprintf(seq, sizeof seq, "%lld", before->seq);
  snprintf(n, sizeof n, "%lld", before->n);
  snprintf(lim, sizeof lim, "%d", limit);
  const char *params[] = {principal, before->seq > 0 ? seq : NULL, n, lim};
  return db_run(db, STMT_ACTIVITY_LIST, 4, params, res);
}
