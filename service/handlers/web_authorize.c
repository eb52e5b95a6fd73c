/* Act for someone (the DigiD Machtigen experience).  A portal sends the
 * representative to GET /oauth2/authorize (code + PKCE, a registered
 * redirect_uri, scope = one service); after login they choose to act for
 * themselves or for a principal whose active mandate they hold for that
 * service; POST /oauth2/authorize sends them back with a one-time code,
 * which the portal redeems at /oauth2/token (oauth_code_grant) for the
 * same mandate token as the token exchange gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config.h"
#include "db/audit.h"
#include "handlers/mandate_json.h"
#include "handlers/oauth_issue.h"
#include "handlers/web.h"
#include "handlers/web_view.h"
#include "jose/jws.h"
#include "log.h"
#include "tokens/signer.h"
#include "web/page.h"

#define SELF_TOKEN_TTL 600

struct authz {
  const char *client_id, *redirect_uri, *scope, *state, *challenge, *method, *response_type;
  char client_name[201];
};

static bool b64url_chars(const char *s, size_t len) {
  if (s == NULL || strlen(s) != len)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_'))
      return false;
  return true;
}

static bool json_list_has(const char *json_text, const char *value) {
  json_t *list = json_loads(json_text ? json_text : "[]", 0, NULL);
  size_t i;
  json_t *v;
  bool found = false;
  json_array_foreach(list, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
      found = true;
  }
  json_decref(list);
  return found;
}

/* Appends name=value (percent-encoded) to a URL. */
static void url_param(char *url, size_t len, const char *name, const char *value) {
  size_t n = strlen(url);
  n += (size_t)snprintf(url + n, len - n, "%s%s=", strchr(url, '?') ? "&" : "?", name);
  for (const unsigned char *c = (const unsigned char *)value; *c && n + 4 < len; c++) {
    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
        strchr("-._~", *c))
      url[n++] = (char)*c;
    else
      n += (size_t)snprintf(url + n, 4, "%%%02X", *c);
    url[n] = '\0';
  }
}

static enum MHD_Result back_to_portal(struct request *rq, const struct authz *a, const char *code,
                                      const char *error) {
  char url[4096];
  snprintf(url, sizeof url, "%s", a->redirect_uri);
  url_param(url, sizeof url, code ? "code" : "error", code ? code : error);
  if (a->state != NULL)
    url_param(url, sizeof url, "state", a->state);
  url_param(url, sizeof url, "iss", config.public_url); /* RFC 9207 */
  return web_redirect(rq, url);
}

/* The request's checks, RFC 6749 §4.1.2.1: an unknown client or a
 * redirect_uri not registered is said on our page (never redirected to);
 * other faults go back to the portal.  false: already answered. */
static bool authz_check(struct request *rq, struct authz *a, enum MHD_Result *ret) {
  struct db *db = db_get();
  if (db == NULL) {
    *ret = web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
    return false;
  }
  PGresult *r = NULL;
  const char *params[] = {a->client_id};
  enum db_status st = a->client_id && strlen(a->client_id) <= 64
                          ? db_run(db, STMT_WEB_CLIENT_GET, 1, params, &r)
                          : DB_NOT_FOUND;
  bool portal = st == DB_OK && strcmp(db_text(r, 0, 1), "portal") == 0;
  bool may_use = portal && a->scope != NULL && json_list_has(db_text(r, 0, 2), a->scope);
  bool registered =
      portal && a->redirect_uri != NULL && json_list_has(db_text(r, 0, 3), a->redirect_uri);
  if (st == DB_OK)
    snprintf(a->client_name, sizeof a->client_name, "%s", db_text(r, 0, 0));
  PQclear(r);
  if (st != DB_OK && st != DB_NOT_FOUND) {
    *ret = web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
    return false;
  }
  if (!portal || !registered) {
    *ret = web_error(rq, MHD_HTTP_BAD_REQUEST,
                     portal ? "error.authorize_redirect" : "error.authorize_client");
    return false;
  }
  const char *error = NULL;
  if (a->response_type == NULL || strcmp(a->response_type, "code") != 0)
    error = "unsupported_response_type";
  else if (a->method == NULL || strcmp(a->method, "S256") != 0 || !b64url_chars(a->challenge, 43))
    error = "invalid_request";
  else if (!may_use || strchr(a->scope, ' ') != NULL)
    error = "invalid_scope";
  else if (a->state != NULL && strlen(a->state) > 512)
    error = "invalid_request";
  if (error != NULL) {
    *ret = back_to_portal(rq, a, NULL, error);
    return false;
  }
  return true;
}

/* The origin of the portal's redirect URI: forms on the choice page may
 * end there (CSP form-action also governs the redirect after a POST). */
static void allow_portal_origin(struct request *rq, const char *uri) {
  const char *host = strstr(uri, "://");
  size_t n = host ? strcspn(host + 3, "/?#") + (size_t)(host + 3 - uri) : 0;
  if (n > 0 && n < sizeof rq->web->form_action_extra)
    snprintf(rq->web->form_action_extra, sizeof rq->web->form_action_extra, "%.*s", (int)n, uri);
}

static json_t *principals(struct request *rq, const char *service, enum db_status *st) {
  struct db *db = db_get();
  PGresult *r = NULL;
  const char *params[] = {rq->web->session.who.party.id, service};
  *st = db ? db_run(db, STMT_WEB_PRINCIPALS_FOR_SERVICE, 2, params, &r) : DB_HARD_ERROR;
  if (*st != DB_OK && *st != DB_NOT_FOUND)
    return NULL;
  *st = DB_OK;
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(r); i++) {
    json_t *p = web_party(rq, db_text(r, i, 0));
    json_object_set_new(p, "value", json_string(db_text(r, i, 0)));
    json_array_append_new(list, p);
  }
  PQclear(r);
  return list;
}

static struct authz authz_from(struct request *rq, bool form) {
#define FIELD(name) (form ? form_get(&rq->form, name) : request_query(rq, name))
  struct authz a = {FIELD("client_id"),      FIELD("redirect_uri"),
                    FIELD("scope"),          FIELD("state"),
                    FIELD("code_challenge"), FIELD("code_challenge_method"),
                    FIELD("response_type"),  ""};
#undef FIELD
  return a;
}

enum MHD_Result web_authorize(struct request *rq) {
  struct authz a = authz_from(rq, false);
  enum MHD_Result ret;
  if (!authz_check(rq, &a, &ret))
    return ret;
  if (!rq->web->session.logged_in)
    return web_login_required(rq);
  enum db_status st;
  json_t *list = principals(rq, a.scope, &st);
  json_t *services = list ? web_services(rq) : NULL;
  if (services == NULL) {
    json_decref(list);
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  }
  allow_portal_origin(rq, a.redirect_uri);
  json_t *ctx = web_context(rq, "authorize", "authorize.title");
  json_object_set_new(
      ctx, "authz",
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "client_id", a.client_id, "client_name",
                a.client_name, "redirect_uri", a.redirect_uri, "scope", a.scope, "service_name",
                web_service_name(services, a.scope), "code_challenge", a.challenge));
  if (a.state != NULL)
    json_object_set_new(json_object_get(ctx, "authz"), "state", json_string(a.state));
  json_object_set_new(ctx, "principals", list);
  json_decref(services);
  return web_page(rq, MHD_HTTP_OK, ctx);
}

static bool code_insert(struct request *rq, const struct authz *a, const char *principal,
                        char code[SESSION_TOKEN_LEN + 1]) {
  char hash[65];
  const struct identity *who = &rq->web->session.who;
  if (!session_random_token(code))
    return false;
  session_sha256_hex(code, hash);
  const char *params[] = {hash,
                          a->client_id,
                          a->redirect_uri,
                          a->scope,
                          a->challenge,
                          who->party.id,
                          who->employee[0] ? who->employee : NULL,
                          loa_name(who->loa),
                          principal};
  struct db *db = db_get();
  PGresult *r = NULL;
  enum db_status st = db ? db_run(db, STMT_WEB_CODE_INSERT, 9, params, &r) : DB_HARD_ERROR;
  PQclear(r);
  if (st == DB_OK && db != NULL) {
    db_run(db, STMT_WEB_CODE_PRUNE, 0, NULL, &r);
    PQclear(r);
  }
  return st == DB_OK;
}

enum MHD_Result web_authorize_choose(struct request *rq) {
  struct authz a = authz_from(rq, true);
  a.method = "S256";
  a.response_type = "code";
  enum MHD_Result ret;
  if (!authz_check(rq, &a, &ret))
    return ret;
  const char *choice = form_get(&rq->form, "choice");
  if (form_get(&rq->form, "cancel") != NULL)
    return back_to_portal(rq, &a, NULL, "access_denied");
  const char *principal = NULL;
  if (choice == NULL || strcmp(choice, "self") != 0) {
    enum db_status st;
    json_t *list = principals(rq, a.scope, &st);
    if (list == NULL)
      return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
      if (choice != NULL && strcmp(json_string_value(json_object_get(p, "value")), choice) == 0)
        principal = choice;
    }
    json_decref(list);
    if (principal == NULL)
      return web_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "error.authorize_choice");
  }
  char code[SESSION_TOKEN_LEN + 1];
  if (!code_insert(rq, &a, principal, code))
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  allow_portal_origin(rq, a.redirect_uri);
  return back_to_portal(rq, &a, code, NULL);
}

/* ---- The portal redeems the code (POST /oauth2/token) ---------------- */

static enum MHD_Result grant_error(struct request *rq, const char *error, const char *why) {
  return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, error, why);
}

static bool pkce_ok(const char *verifier, const char *challenge) {
  if (verifier == NULL || strlen(verifier) < 43 || strlen(verifier) > 128)
    return false;
  unsigned char digest[32];
  char expected[64];
  EVP_Digest(verifier, strlen(verifier), digest, NULL, EVP_sha256(), NULL);
  b64url_encode(digest, sizeof digest, expected, sizeof expected);
  return strcmp(expected, challenge) == 0;
}

static struct tx_outcome audit_self_token(struct db *db, void *ctx) {
  return (struct tx_outcome){db_audit(db, ctx), ERR_NONE, NULL, NULL};
}

/* Acting for themselves: a token about the representative alone, no
 * mandate and no act claim. */
static enum MHD_Result self_token(struct request *rq, const char *service) {
  unsigned char raw[16];
  char jti[32];
  RAND_bytes(raw, sizeof raw);
  b64url_encode(raw, sizeof raw, jti, sizeof jti);
  int64_t now = now_usec() / USEC_PER_SEC;
  char detail[96];
  snprintf(detail, sizeof detail, "{\"jti\":\"%s\",\"exp\":%lld}", jti,
           (long long)(now + SELF_TOKEN_TTL));
  struct audit_event e = {.event = "token_issued",
                          .principal = rq->who.party.id,
                          .actor = rq->who.party.id,
                          .actor_employee = rq->who.employee,
                          .service = service,
                          .client = rq->client.id,
                          .detail_json = detail};
  struct tx_outcome out;
  if (!tx_run(audit_self_token, &e, &out))
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  json_t *claims =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", config.public_url,
                "aud", rq->client.audience, "client_id", rq->client.id, "sub", rq->who.party.id,
                "scope", service, "acr", loa_name(rq->who.loa), "jti", jti, "iat", (json_int_t)now,
                "nbf", (json_int_t)now, "exp", (json_int_t)(now + SELF_TOKEN_TTL));
  char *token = signer_sign(claims, "at+jwt");
  json_decref(claims);
  if (token == NULL)
    return reply_oauth_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL);
  json_t *body = json_pack("{s:s, s:s, s:s, s:i}", "access_token", token, "issued_token_type",
                           "urn:ietf:params:oauth:token-type:access_token", "token_type", "Bearer",
                           "expires_in", SELF_TOKEN_TTL);
  free(token);
  return reply_json(rq, MHD_HTTP_OK, body);
}

enum MHD_Result oauth_code_grant(struct request *rq) {
  const char *code = form_get(&rq->form, "code"), *uri = form_get(&rq->form, "redirect_uri");
  const char *verifier = form_get(&rq->form, "code_verifier");
  if (rq->client.role != CLIENT_PORTAL)
    return grant_error(rq, "unauthorized_client", "Only portal clients may redeem codes.");
  if (code == NULL || uri == NULL || verifier == NULL)
    return grant_error(rq, "invalid_request", "code, redirect_uri and code_verifier are required.");
  if (strlen(code) != SESSION_TOKEN_LEN)
    return grant_error(rq, "invalid_grant", "The code is unknown, used or expired.");
  char hash[65];
  session_sha256_hex(code, hash);
  struct db *db = db_get();
  PGresult *r = NULL;
  const char *params[] = {hash};
  enum db_status st = db ? db_run(db, STMT_WEB_CODE_TAKE, 1, params, &r) : DB_HARD_ERROR;
  if (st == DB_NOT_FOUND || (st == DB_OK && strcmp(db_text(r, 0, 8), "t") != 0)) {
    PQclear(r);
    return grant_error(rq, "invalid_grant", "The code is unknown, used or expired.");
  }
  if (st != DB_OK)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  bool client_ok = strcmp(db_text(r, 0, 0), rq->client.id) == 0;
  bool uri_ok = strcmp(db_text(r, 0, 1), uri) == 0;
  bool pkce = pkce_ok(verifier, db_text(r, 0, 3));
  char scope[64], principal[PARTY_MAX] = "";
  snprintf(scope, sizeof scope, "%s", db_text(r, 0, 2));
  party_parse(db_text(r, 0, 4), &rq->who.party);
  snprintf(rq->who.employee, sizeof rq->who.employee, "%s",
           db_text(r, 0, 5) ? db_text(r, 0, 5) : "");
  rq->who.loa = loa_parse(db_text(r, 0, 6));
  if (db_text(r, 0, 7) != NULL)
    snprintf(principal, sizeof principal, "%s", db_text(r, 0, 7));
  PQclear(r);
  if (!client_ok)
    return grant_error(rq, "invalid_grant", "The code was issued to another client.");
  if (!uri_ok)
    return grant_error(rq, "invalid_grant", "redirect_uri differs from the authorization request.");
  if (!pkce)
    return grant_error(rq, "invalid_grant", "code_verifier does not match the code_challenge.");
  log_pseudonym(rq->who.party.id, rq->actor_pseudonym, sizeof rq->actor_pseudonym);
  struct service s;
  st = db_service_get_cached(db, scope, &s);
  if (st == DB_NOT_FOUND || (st == DB_OK && !client_may_use_service(&rq->client, scope)))
    return grant_error(rq, "invalid_scope", "This client may not request tokens for this service.");
  if (st != DB_OK)
    return reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL);
  if (rq->who.loa < s.min_loa)
    return grant_error(
        rq, "invalid_grant",
        "The representative's level of assurance is below what this service requires.");
  return principal[0] ? oauth_issue(rq, principal, scope) : self_token(rq, scope);
}
