/* The web forms for mandates: the overview, granting, one mandate with
 * accept / decline, and revoking with a confirmation step.  The rules and
 * transactions are the JSON API's (mandate_ops.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/mandate_ops.h"
#include "handlers/web.h"
#include "handlers/web_view.h"
#include "web/page.h"

#define OVERVIEW_LIMIT 50

/* One role's mandates, newest first, for the templates. */
static json_t *mandates_of(struct request *rq, enum mandate_list_role role, json_t *services) {
  struct db *db = db_get();
  struct mandate_list_query q = {
      .party = rq->web->session.who.party.id, .role = role, .limit = OVERVIEW_LIMIT};
  PGresult *r;
  if (db == NULL)
    return NULL;
  enum db_status st = db_mandates_list(db, &q, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return NULL;
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    struct mandate m;
    mandate_from_row(r, i, &m);
    json_array_append_new(list, web_mandate(rq, &m, services));
  }
  PQclear(r);
  return list;
}

/* The requests waiting for the user's answer, from both lists. */
static json_t *to_answer(json_t *given, json_t *received) {
  json_t *out = json_array();
  json_t *lists[] = {given, received};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *m;
    json_array_foreach(lists[l], i, m) {
      if (json_is_true(json_object_get(m, "can_answer")))
        json_array_append(out, m);
    }
  }
  return out;
}

enum MHD_Result web_home(struct request *rq) {
  if (!rq->web->session.logged_in)
    return web_page(rq, MHD_HTTP_OK, web_context(rq, "welcome", "welcome.title"));
  json_t *services = web_services(rq);
  json_t *given = services ? mandates_of(rq, LIST_PRINCIPAL, services) : NULL;
  json_t *received = services ? mandates_of(rq, LIST_REPRESENTATIVE, services) : NULL;
  if (given == NULL || received == NULL) {
    json_decref(services);
    json_decref(given);
    json_decref(received);
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  }
  json_t *ctx = web_context(rq, "home", "home.title");
  json_t *lists[] = {to_answer(given, received), given, received};
  const char *names[] = {"requests", "given", "received"};
  for (int i = 0; i < 3; i++) {
    /* An object for a list with rows, none for an empty one: the template
     * shows a table or a sentence. */
    if (json_array_size(lists[i]) > 0)
      json_object_set_new(ctx, names[i], json_pack("{s:o}", "items", lists[i]));
    else
      json_decref(lists[i]);
  }
  json_decref(services);
  return web_page(rq, MHD_HTTP_OK, ctx);
}

/* ---- Granting ------------------------------------------------------- */

struct grant_form {
  const char *service, *representative, *valid_from, *valid_until;
  json_t *errors; /* [{field, message}] in the order of the form */
};

static void field_error(struct request *rq, struct grant_form *f, const char *field,
                        const char *key) {
  size_t i;
  json_t *e;
  json_array_foreach(f->errors, i, e) {
    if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0)
      return; /* one message per field: the first problem */
  }
  json_array_append_new(f->errors,
                        json_pack("{s:s, s:s}", "field", field, "message", web_msg(rq, key)));
}

static enum MHD_Result grant_page(struct request *rq, unsigned status, struct grant_form *f,
                                  json_t *services) {
  json_t *ctx = web_context(rq, "grant", "grant.title");
  json_t *form = json_pack("{s:s, s:s, s:s, s:s}", "service", f->service ? f->service : "",
                           "representative", f->representative ? f->representative : "",
                           "valid_from", f->valid_from ? f->valid_from : "", "valid_until",
                           f->valid_until ? f->valid_until : "");
  size_t i;
  json_t *s, *e;
  json_array_foreach(services, i, s) {
    if (f->service != NULL &&
        strcmp(json_string_value(json_object_get(s, "code")), f->service) == 0)
      json_object_set_new(s, "selected", json_true());
  }
  json_array_foreach(f->errors, i, e) {
    char key[48];
    snprintf(key, sizeof key, "%s_error", json_string_value(json_object_get(e, "field")));
    json_object_set(form, key, json_object_get(e, "message"));
  }
  json_object_set_new(ctx, "form", form);
  json_object_set_new(ctx, "services", services);
  if (json_array_size(f->errors) > 0) {
    json_object_set(ctx, "errors", f->errors);
    json_object_set_new(ctx, "has_errors", json_true());
  }
  json_decref(f->errors);
  return web_page(rq, status, ctx);
}

enum MHD_Result web_grant_form(struct request *rq) {
  json_t *services = web_services(rq);
  if (services == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  char today[16];
  web_iso_date(now_usec(), today, sizeof today);
  struct grant_form f = {.valid_from = today, .errors = json_array()};
  return grant_page(rq, MHD_HTTP_OK, &f, services);
}

/* A BSN (9 digits) or KvK number (8), as people type them: spaces, dots
 * and a "bsn:" / "kvk:" prefix are fine. */
static const char *parse_representative(const char *text, struct party *out) {
  char digits[16], id[PARTY_MAX];
  size_t n = 0;
  if (strncasecmp(text, "bsn:", 4) == 0 || strncasecmp(text, "kvk:", 4) == 0)
    text += 4;
  for (const char *c = text; *c; c++) {
    if (*c == ' ' || *c == '.' || *c == '-')
      continue;
    if (!isdigit((unsigned char)*c) || n + 1 >= sizeof digits)
      return "error.representative_format";
    digits[n++] = *c;
  }
  digits[n] = '\0';
  if (n == 0)
    return "error.representative_required";
  if (n != 9 && n != 8)
    return "error.representative_format";
  snprintf(id, sizeof id, "%s:%s", n == 9 ? "bsn" : "kvk", digits);
  enum party_error pe = party_parse(id, out);
  return pe == PARTY_OK        ? NULL
         : pe == PARTY_BAD_BSN ? "error.invalid-bsn"
                               : "error.representative_format";
}

static json_t *find_service(json_t *services, const char *code) {
  size_t i;
  json_t *s;
  json_array_foreach(services, i, s) {
    if (strcmp(json_string_value(json_object_get(s, "code")), code) == 0)
      return s;
  }
  return NULL;
}

/* Which field a broken rule belongs to, on this form. */
static const char *rule_field(enum err e) {
  switch (e) {
  case ERR_PERIOD_INVERTED:
  case ERR_PERIOD_TOO_LONG:
  case ERR_PERIOD_ENDED:
    return "valid_until";
  case ERR_SELF_MANDATE:
  case ERR_REPRESENTATIVE_TYPE_NOT_ALLOWED:
  case ERR_MANDATE_OVERLAP:
  case ERR_INVALID_BSN:
  case ERR_INVALID_PARTY:
    return "representative";
  default:
    return "service";
  }
}

enum MHD_Result web_grant_submit(struct request *rq) {
  json_t *services = web_services(rq);
  if (services == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  struct grant_form f = {
      .service = form_get(&rq->form, "service"),
      .representative = form_get(&rq->form, "representative"),
      .valid_from = form_get(&rq->form, "valid_from"),
      .valid_until = form_get(&rq->form, "valid_until"),
      .errors = json_array(),
  };
  struct mandate_request req = {.has_representative = true};
  json_t *service = f.service && f.service[0] ? find_service(services, f.service) : NULL;
  if (service == NULL)
    field_error(rq, &f, "service",
                f.service && f.service[0] ? "error.unknown-service" : "error.service_required");
  const char *why =
      parse_representative(f.representative ? f.representative : "", &req.representative);
  if (why != NULL)
    field_error(rq, &f, "representative", why);
  if (f.valid_from == NULL || f.valid_from[0] == '\0')
    field_error(rq, &f, "valid_from", "error.from_required");
  else if (strlen(f.valid_from) != 10 || !time_parse(f.valid_from, BOUND_START, &req.from))
    field_error(rq, &f, "valid_from", "error.date_format");
  char until_text[16];
  if (f.valid_until != NULL && f.valid_until[0] != '\0') {
    if (strlen(f.valid_until) != 10 || !time_parse(f.valid_until, BOUND_END, &req.until))
      field_error(rq, &f, "valid_until", "error.date_format");
  } else if (service != NULL && json_array_size(f.errors) == 0) {
    /* Left empty: the longest period this service allows. */
    int days = (int)json_integer_value(json_object_get(service, "max_days"));
    web_iso_date(req.from + (usec_t)(days - 1) * USEC_PER_DAY + USEC_PER_DAY / 2, until_text,
                 sizeof until_text);
    time_parse(until_text, BOUND_END, &req.until);
  }
  if (json_array_size(f.errors) > 0)
    return grant_page(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, &f, services);
  req.service = f.service;
  struct mandate created;
  struct tx_outcome fail;
  if (!mandate_create(&rq->web->session.who, &req, "web", &created, &fail)) {
    if (fail.err == ERR_NONE) {
      json_decref(f.errors);
      json_decref(services);
      return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
    }
    char key[64];
    snprintf(key, sizeof key, "error.%s", err_code(fail.err));
    field_error(rq, &f, rule_field(fail.err), key);
    return grant_page(rq, web_err_status(fail.err), &f, services);
  }
  json_decref(f.errors);
  json_decref(services);
  char location[80];
  snprintf(location, sizeof location, "/mandates/%s?done=granted", created.id);
  return web_redirect(rq, location);
}

/* ---- One mandate ---------------------------------------------------- */

static enum MHD_Result mandate_page(struct request *rq, const char *page, const char *title_key,
                                    unsigned status, const char *error_key) {
  struct db *db = db_get();
  if (db == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  struct mandate m;
  enum db_status st =
      uuid_valid(rq->params[0])
          ? db_mandate_get(db, rq->params[0], rq->web->session.who.party.id, false, &m)
          : DB_NOT_FOUND;
  if (st == DB_NOT_FOUND)
    return web_error(rq, MHD_HTTP_NOT_FOUND, "error.mandate-not-found");
  json_t *services = st == DB_OK ? web_services(rq) : NULL;
  if (services == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  json_t *ctx = web_context(rq, page, title_key);
  json_object_set_new(ctx, "mandate", web_mandate(rq, &m, services));
  json_decref(services);
  const char *done = request_query(rq, "done");
  static const char *const dones[] = {"granted", "accepted", "declined", "revoked"};
  for (size_t i = 0; done != NULL && i < sizeof dones / sizeof dones[0]; i++)
    if (strcmp(done, dones[i]) == 0)
      json_object_set_new(ctx, "done", json_pack("{s:b}", dones[i], true));
  if (error_key != NULL)
    json_object_set_new(ctx, "action_error", json_string(web_msg(rq, error_key)));
  return web_page(rq, status, ctx);
}

enum MHD_Result web_mandate_show(struct request *rq) {
  return mandate_page(rq, "mandate", "mandate.title", MHD_HTTP_OK, NULL);
}

enum MHD_Result web_revoke_confirm(struct request *rq) {
  return mandate_page(rq, "revoke", "revoke.title", MHD_HTTP_OK, NULL);
}

static enum MHD_Result act(struct request *rq, enum mandate_action action, const char *done) {
  const char *v = form_get(&rq->form, "version"), *reason = form_get(&rq->form, "reason");
  char *end = NULL;
  long version = v ? strtol(v, &end, 10) : -1;
  if (v == NULL || *end != '\0' || version < 1 || version > 1000000000)
    version = -1;
  if (reason != NULL && reason[0] == '\0')
    reason = NULL;
  if (reason != NULL && strlen(reason) > 500)
    return mandate_page(rq, action == MA_REVOKE ? "revoke" : "mandate", "mandate.title",
                        MHD_HTTP_UNPROCESSABLE_CONTENT, "error.reason_too_long");
  struct mandate m;
  struct tx_outcome fail;
  if (!mandate_act(&rq->web->session.who, NULL, rq->params[0], action, (int)version, reason, &m,
                   &fail)) {
    if (fail.err == ERR_NONE && fail.st == DB_NOT_FOUND)
      return web_error(rq, MHD_HTTP_NOT_FOUND, "error.mandate-not-found");
    if (fail.err == ERR_NONE)
      return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
    char key[64];
    snprintf(key, sizeof key, "error.%s", err_code(fail.err));
    return mandate_page(rq, "mandate", "mandate.title", web_err_status(fail.err), key);
  }
  char location[80];
  snprintf(location, sizeof location, "/mandates/%s?done=%s", m.id, done);
  return web_redirect(rq, location);
}

enum MHD_Result web_mandate_accept(struct request *rq) { return act(rq, MA_ACCEPT, "accepted"); }
enum MHD_Result web_mandate_decline(struct request *rq) { return act(rq, MA_DECLINE, "declined"); }
enum MHD_Result web_revoke_submit(struct request *rq) { return act(rq, MA_REVOKE, "revoked"); }
