#include "db/tokens_db.h"

#include <stdio.h>
#include <string.h>

void activity_cursor_text(const PGresult *r, int row, char *out, size_t size) {
  const char *n = PQgetvalue(r, row, PQnfields(r) - 1);
  bool change = strcmp(n, "0") != 0; /* of an import, not an event of the chain */
  snprintf(out, size, "%s%s%s", PQgetvalue(r, row, 0), change ? "." : "", change ? n : "");
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
