/* "Who acted for me" (the audit trail of the user's mandates and the
 * tokens issued in their name) and, for representatives such as
 * bewindvoerders, the searchable, paged list of whom they represent. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/tokens_db.h"
#include "handlers/mandate_json.h"
#include "handlers/web.h"
#include "handlers/web_view.h"
#include "web/page.h"

#define ACTIVITY_PAGE 50
#define REPRESENTED_PAGE 25

enum MHD_Result web_activity(struct request *rq) {
  /* A cursor that does not parse starts from the newest. */
  const char *after = request_query(rq, "before");
  struct activity_cursor before = {0};
  if (after != NULL && !activity_cursor_parse(after, &before))
    before = (struct activity_cursor){0};
  char seq[24], n[24], limit[8];
  snprintf(seq, sizeof seq, "%lld", before.seq);
  snprintf(n, sizeof n, "%lld", before.n);
  snprintf(limit, sizeof limit, "%d", ACTIVITY_PAGE + 1);
  const char *params[] = {rq->web->session.who.party.id, before.seq > 0 ? seq : NULL, n, limit};
  struct db *db = db_get();
  json_t *services = web_services(rq);
  PGresult *r = NULL;
  enum db_status st =
      db && services ? db_run(db, STMT_WEB_ACTIVITY_LIST, 4, params, &r) : DB_HARD_ERROR;
  if (st != DB_OK && st != DB_NOT_FOUND) {
    json_decref(services);
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  }
  json_t *items = json_array();
  int rows = PQntuples(r);
  for (int i = 0; i < rows && i < ACTIVITY_PAGE; i++) {
    char at[24], key[48];
    web_datetime(db_int(r, i, 1), at, sizeof at);
    snprintf(key, sizeof key, "event.%s", db_text(r, i, 2));
    const char *actor = db_text(r, i, 3), *service = db_text(r, i, 5), *client = db_text(r, i, 6);
    json_t *item = json_pack("{s:s, s:s, s:b}", "at", at, "event", web_msg(rq, key), "token",
                             strcmp(db_text(r, i, 2), "token_issued") == 0);
    if (strncmp(actor, "bsn:", 4) == 0 || strncmp(actor, "kvk:", 4) == 0)
      json_object_set_new(item, "actor", web_party(rq, actor));
    else
      json_object_set_new(item, "actor_other", json_string(web_msg(rq, "activity.administrator")));
    if (db_text(r, i, 4) != NULL)
      json_object_set_new(item, "employee", json_string(db_text(r, i, 4)));
    if (service != NULL)
      json_object_set_new(item, "service", json_string(web_service_name(services, service)));
    if (client != NULL)
      json_object_set_new(item, "client", json_string(client));
    json_array_append_new(items, item);
  }
  json_t *ctx = web_context(rq, "activity", "activity.title");
  if (rows > ACTIVITY_PAGE) {
    char cursor[48];
    activity_cursor_text(r, ACTIVITY_PAGE - 1, cursor, sizeof cursor);
    json_object_set_new(ctx, "next", json_string(cursor));
  }
  PQclear(r);
  json_decref(services);
  if (json_array_size(items) > 0)
    json_object_set_new(ctx, "list", json_pack("{s:o}", "items", items));
  else
    json_decref(items);
  return web_page(rq, MHD_HTTP_OK, ctx);
}

/* The search is posted, not put in the address: a BSN never goes in a URL.
 * The page cursor (principal and mandate id of the last row) is posted
 * back the same way. */
enum MHD_Result web_represented(struct request *rq) {
  const char *q = rq->method == HTTP_POST ? form_get(&rq->form, "q") : NULL;
  const char *after = rq->method == HTTP_POST ? form_get(&rq->form, "after") : NULL;
  char digits[10] = "";
  size_t n = 0;
  bool bad = false;
  for (const char *c = q ? q : ""; *c; c++) {
    if (*c == ' ' || *c == '.')
      continue;
    if (!isdigit((unsigned char)*c) || n == 9) {
      bad = true;
      break;
    }
    digits[n++] = *c;
  }
  digits[n] = '\0';
  char cursor_party[PARTY_MAX] = "", cursor_id[37] = "";
  if (after != NULL && strlen(after) == 13 + 1 + 36 && after[13] == '|') {
    memcpy(cursor_party, after, 13);
    cursor_party[13] = '\0';
    memcpy(cursor_id, after + 14, 36);
    cursor_id[36] = '\0';
    struct party p;
    if (party_parse(cursor_party, &p) != PARTY_OK || !uuid_valid(cursor_id))
      cursor_party[0] = cursor_id[0] = '\0';
  }
  json_t *ctx = web_context(rq, "represented", "represented.title");
  json_object_set_new(ctx, "q", json_string(q ? q : ""));
  if (bad) {
    json_object_set_new(ctx, "q_error", json_string(web_msg(rq, "error.search_format")));
    json_object_set_new(ctx, "has_errors", json_true());
    return web_page(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, ctx);
  }
  char limit[8];
  snprintf(limit, sizeof limit, "%d", REPRESENTED_PAGE + 1);
  const char *params[] = {rq->web->session.who.party.id, n > 0 ? digits : NULL,
                          cursor_party[0] ? cursor_party : NULL, cursor_id[0] ? cursor_id : NULL,
                          limit};
  struct db *db = db_get();
  json_t *services = web_services(rq);
  PGresult *r = NULL;
  enum db_status st =
      db && services ? db_run(db, STMT_WEB_REPRESENTED_LIST, 5, params, &r) : DB_HARD_ERROR;
  if (st != DB_OK && st != DB_NOT_FOUND) {
    json_decref(ctx);
    json_decref(services);
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  }
  json_t *items = json_array();
  int rows = PQntuples(r);
  struct mandate m;
  for (int i = 0; i < rows && i < REPRESENTED_PAGE; i++) {
    mandate_from_row(r, i, &m);
    json_array_append_new(items, web_mandate(rq, &m, services));
  }
  if (rows > REPRESENTED_PAGE) {
    char next[64];
    snprintf(next, sizeof next, "%s|%s", m.principal, m.id);
    json_object_set_new(ctx, "next", json_string(next));
  }
  PQclear(r);
  json_decref(services);
  if (json_array_size(items) > 0)
    json_object_set_new(ctx, "list", json_pack("{s:o}", "items", items));
  else
    json_decref(items);
  json_object_set_new(ctx, "searched", json_boolean(n > 0));
  return web_page(rq, MHD_HTTP_OK, ctx);
}
