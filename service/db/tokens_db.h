/* Queries behind the OAuth endpoints and the activity log. */
#ifndef MACHTIGEN_TOKENS_DB_H
#define MACHTIGEN_TOKENS_DB_H

#include "db/db.h"
#include "domain/domain.h"

struct token_mandate {
  char id[37];
  enum mandate_kind kind;
  enum mandate_status status;
  usec_t valid_from, valid_until, created_at;
};

/* Activity of a principal, newest first; before_seq 0: from the newest. */
enum db_status db_activity_list(struct db *db, const char *principal, long long before_seq,
                                int limit, PGresult **res);

#endif
