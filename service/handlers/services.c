#include "db/mandates_db.h"
#include "handlers/handlers.h"
#include "handlers/mandate_json.h"

static json_t *service_to_json(const struct service *s) {
  json_t *types = json_array();
  if (s->allow_person)
    json_array_append_new(types, json_string("person"));
  if (s->allow_organisation)
    json_array_append_new(types, json_string("organisation"));
  json_t *kinds = json_loads(s->kinds_json, 0, NULL);
  return json_pack("{s:s, s:{s:s, s:s}, s:s, s:i, s:o, s:o}", "code", s->code, "name", "nl",
                   s->name_nl, "en", s->name_en, "min_loa", loa_name(s->min_loa),
                   "max_duration_days", s->max_duration_days, "representative_types", types,
                   "mandate_kinds", kinds ? kinds : json_array());
}

enum MHD_Result services_list(struct request *rq) {
  struct db *db = db_get();
  if (db == NULL)
    return reply_db_error(rq, DB_HARD_ERROR);
  PGresult *r;
  enum db_status st = db_services_list(db, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return reply_db_error(rq, st);
  json_t *items = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    struct service s;
    service_from_row(r, i, &s);
    json_array_append_new(items, service_to_json(&s));
  }
  PQclear(r);
  return reply_json(rq, MHD_HTTP_OK, json_pack("{s:o}", "items", items));
}
