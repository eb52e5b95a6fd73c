/* Login and logout of the web forms: GET /login starts the OpenID Connect
 * code flow, GET /login/callback finishes it (state, PKCE, nonce) and
 * rotates the session, POST /logout ends the session on the server. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/oidc_rp.h"
#include "config.h"
#include "handlers/web.h"
#include "log.h"
#include "web/page.h"

enum MHD_Result web_login(struct request *rq) {
  struct db *db = db_get();
  if (db == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  struct web_session *s = &rq->web->session;
  /* Only a path of ours may follow the login: never another site. */
  const char *next = request_query(rq, "next");
  char return_to[SESSION_RETURN_MAX + 1];
  snprintf(return_to, sizeof return_to, "%s", web_local_path(next) ? next : "/");
  /* A fresh pre-login session holds state, nonce and verifier; any
   * earlier session of this browser ends here. */
  s->logged_in = false;
  s->display_name[0] = '\0';
  snprintf(s->return_to, sizeof s->return_to, "%s", return_to);
  if (!session_random_token(s->login_state) || !session_random_token(s->login_nonce) ||
      !session_random_token(s->login_verifier))
    return web_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "error.internal");
  char url[4096];
  if (!oidc_authorize_url(s->login_state, s->login_nonce, s->login_verifier, url, sizeof url))
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.login_unavailable");
  if (session_start(db, s) != DB_OK)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  return web_redirect(rq, url);
}

static bool same_token(const char *a, const char *b) {
  return a != NULL && b != NULL && b[0] != '\0' && strlen(a) == strlen(b) &&
         CRYPTO_memcmp(a, b, strlen(a)) == 0;
}

enum MHD_Result web_login_callback(struct request *rq) {
  struct web_session *s = &rq->web->session;
  const char *state = request_query(rq, "state"), *code = request_query(rq, "code");
  const char *iss = request_query(rq, "iss"), *error = request_query(rq, "error");
  /* The answer must belong to the login this browser started. */
  if (!s->live || s->logged_in || !same_token(state, s->login_state))
    return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.login_mismatch");
  if (iss != NULL && strcmp(iss, config.idp_issuer) != 0) /* RFC 9207 */
    return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.login_mismatch");
  if (error != NULL || code == NULL || strlen(code) > 1024)
    return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.login_failed");
  struct identity who;
  char name[201];
  const char *reason = NULL;
  enum identity_status st =
      oidc_redeem(code, s->login_verifier, s->login_nonce, &who, name, sizeof name, &reason);
  if (st == IDENT_UNAVAILABLE)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.login_unavailable");
  if (st != IDENT_OK) {
    log_msg(LOG_INFO, "web login refused: %s", reason ? reason : "invalid");
    return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.login_failed");
  }
  struct db *db = db_get();
  if (db == NULL)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  char return_to[SESSION_RETURN_MAX + 1];
  snprintf(return_to, sizeof return_to, "%s", web_local_path(s->return_to) ? s->return_to : "/");
  /* Rotation: the logged-in session gets a new id; the old one is gone. */
  s->logged_in = true;
  s->who = who;
  snprintf(s->display_name, sizeof s->display_name, "%s", name);
  s->login_state[0] = s->login_nonce[0] = s->login_verifier[0] = s->return_to[0] = '\0';
  if (session_start(db, s) != DB_OK)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  log_pseudonym(who.party.id, rq->actor_pseudonym, sizeof rq->actor_pseudonym);
  return web_redirect(rq, return_to);
}

enum MHD_Result web_logout(struct request *rq) {
  struct db *db = db_get();
  if (db == NULL || session_end(db, &rq->web->session) != DB_OK)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  json_t *ctx = web_context(rq, "logged_out", "logged_out.title");
  return web_page(rq, MHD_HTTP_OK, ctx);
}
