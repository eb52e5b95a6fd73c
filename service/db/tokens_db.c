#include "db/tokens_db.h"

#include <stdio.h>
#include <string.h>

enum db_status db_activity_list(struct db *db, const char *principal, long long before_seq,
                                int limit, PGresult **res) {
  char before[24], lim[12];
  snprintf(before, sizeof before, "%lld", before_seq);
  snprintf(lim, sizeof lim, "%d", limit);
  const char *params[] = {principal, before_seq > 0 ? before : NULL, lim};
  return db_run(db, STMT_ACTIVITY_LIST, 3, params, res);
}
