/* GET /v1/me/activity: who acted for me.  Every token issued in my name and
 * every change to my mandates, newest first, from the audit trail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/tokens_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"

#define ACTIVITY_DEFAULT_LIMIT 20
#define ACTIVITY_MAX_LIMIT 100

static json_t *opt_text(const PGresult *r, int row, int col) {
  const char *v = db_text(r, row, col);
  return v ? json_string(v) : json_null();
}

static json_t *activity_item(const PGresult *r, int row) {
  char at[40];
  time_format(db_int(r, row, 1), at, sizeof at);
  return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "at", at, "event", db_text(r, row, 2), "actor",
                   db_text(r, row, 3), "service", opt_text(r, row, 5), "client",
                   opt_text(r, row, 6), "mandate_id", opt_text(r, row, 7));
}

static bool parse_positive(const char *text, long long max, long long *out) {
  char *end;
  long long v = strtoll(text, &end, 10);
  if (text[0] == '\0' || *end != '\0' || v < 1 || v > max)
    return false;
  *out = v;
  return true;
}

enum MHD_Result activity_list(struct request *rq) {
  static const char *const allowed[] = {"after", "limit", NULL};
  const char *bad = NULL;
  if (!request_query_only(rq, allowed, &bad))
    return reply_problem(rq, ERR_INVALID_QUERY, NULL, bad);
  long long limit = ACTIVITY_DEFAULT_LIMIT;
  struct activity_cursor before = {0};
  const char *l = request_query(rq, "limit"), *after = request_query(rq, "after");
  if (l != NULL && !parse_positive(l, ACTIVITY_MAX_LIMIT, &limit))
    return reply_problem(rq, ERR_INVALID_QUERY, NULL, "limit");
  /* The cursor names the last item seen. */
  if (after != NULL && !activity_cursor_parse(after, &before))
    return reply_problem(rq, ERR_INVALID_QUERY, NULL, "after");
  struct db *db = db_get();
  if (db == NULL)
    return reply_db_error(rq, DB_HARD_ERROR);
  PGresult *r;
  enum db_status st = db_activity_list(db, rq->who.party.id, &before, (int)limit + 1, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return reply_db_error(rq, st);
  json_t *items = json_array();
  int rows = PQntuples(r);
  for (int i = 0; i < rows && i < limit; i++)
    json_array_append_new(items, activity_item(r, i));
  char cursor[48];
  if (rows > limit)
    activity_cursor_text(r, (int)limit - 1, cursor, sizeof cursor);
  json_t *next = rows > limit ? json_string(cursor) : json_null();
  PQclear(r);
  return reply_json(rq, MHD_HTTP_OK, json_pack("{s:o, s:o}", "items", items, "next", next));
}
