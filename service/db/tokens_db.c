#include "db/tokens_db.h"

#include <stdio.h>
#include <string.h>

enum db_status db_mandate_state(struct db *db, const char *id, enum mandate_status *status,
                                usec_t *from, usec_t *until) {
  const char *params[] = {id};
  PGresult *r;
  enum db_status st = db_run(db, STMT_MANDATE_STATE, 1, params, &r);
  if (st == DB_OK) {
    if (!mandate_status_parse(db_text(r, 0, 0), status))
      *status = MS_REVOKED;
    *from = db_int(r, 0, 1);
    *until = db_int(r, 0, 2);
  }
  PQclear(r);
  return st;
}

enum db_status db_activity_list(struct db *db, const char *principal, long long before_seq,
                                int limit, PGresult **res) {
  char before[24], lim[12];
  snprintf(before, sizeof before, "%lld", before_seq);
  snprintf(lim, sizeof lim, "%d", limit);
  const char *params[] = {principal, before_seq > 0 ? before : NULL, lim};
  return db_run(db, STMT_ACTIVITY_LIST, 3, params, res);
}
