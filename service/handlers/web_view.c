#include "handlers/web_view.h"

#include <stdio.h>
#include <string.h>

#include "handlers/mandate_json.h"
#include "web/page.h"

json_t *web_services(struct request *rq) {
  struct db *db = db_get();
  PGresult *r;
  if (db == NULL)
    return NULL;
  enum db_status st = db_services_list(db, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return NULL;
  bool en = strcmp(rq->web->lang, "en") == 0;
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    struct service s;
    service_from_row(r, i, &s);
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:i, s:b, s:b, s:s}", "code", s.code, "name",
                        en ? s.name_en : s.name_nl, "max_days", s.max_duration_days, "voluntary",
                        strstr(s.kinds_json, "\"voluntary\"") != NULL, "organisations",
                        s.allow_organisation, "min_loa", loa_name(s.min_loa)));
  }
  PQclear(r);
  return list;
}

const char *web_service_name(json_t *services, const char *code) {
  size_t i;
  json_t *s;
  json_array_foreach(services, i, s) {
    if (strcmp(json_string_value(json_object_get(s, "code")), code) == 0)
      return json_string_value(json_object_get(s, "name"));
  }
  return code;
}

json_t *web_party(struct request *rq, const char *party) {
  bool org = strncmp(party, "kvk:", 4) == 0;
  return json_pack("{s:s, s:s, s:b}", "label", web_msg(rq, org ? "party.kvk" : "party.bsn"),
                   "number", party + 4, "organisation", org);
}

static const char *effective_status(const struct mandate *m, usec_t now) {
  return mandate_effective_status(m->status, m->valid_until, m->created_at, now);
}

json_t *web_mandate(struct request *rq, const struct mandate *m, json_t *services) {
  const char *me = rq->web->session.who.party.id;
  bool principal = strcmp(m->principal, me) == 0;
  usec_t now = now_usec();
  const char *status = effective_status(m, now);
  char from[16], until[16], status_key[40];
  web_date(m->valid_from, from, sizeof from);
  web_date(m->valid_until, until, sizeof until);
  snprintf(status_key, sizeof status_key, "status.%s", status);
  bool pending = strcmp(status, "pending") == 0;
  enum mandate_role my_role = principal ? ROLE_PRINCIPAL : ROLE_REPRESENTATIVE;
  bool legal = mandate_kind_is_legal(m->kind);
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:i, s:b, s:s}", "id",
      m->id, "service", m->service, "service_name", web_service_name(services, m->service),
      "principal", web_party(rq, m->principal), "representative", web_party(rq, m->representative),
      "from", from, "until", until, "status", status, "status_text", web_msg(rq, status_key),
      "i_am_principal", principal, "can_answer", pending && m->initiated_by != my_role && !legal,
      "can_revoke", !legal && (pending || strcmp(status, "active") == 0), "waiting_for_other",
      pending && m->initiated_by == my_role, "version", m->version, "legal", legal, "kind",
      web_msg(rq, legal ? "kind.legal" : "kind.voluntary"));
  json_object_set_new(o, "other", web_party(rq, principal ? m->representative : m->principal));
  if (m->has_reason)
    json_object_set_new(o, "reason", json_string(m->reason));
  return o;
}

unsigned web_err_status(enum err e) {
  unsigned s = err_status(e);
  return s == 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : s;
}
