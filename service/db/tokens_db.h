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

/* The cursor (activity_cursor_parse, domain.h) after row of an ACTIVITY_LIST or WEB_ACTIVITY_LIST
 * result (seq first, n last). */
void activity_cursor_text(const PGresult *r, int row, char *out, size_t size);

/* Activity of a principal, newest first. */
enum db_status db_activity_list(struct db *db, const char *principal,
                                const struct activity_cursor *before, int limit, PGresult **res);

#endif
