/* The web forms' pages: per-request state (session, language), rendering
 * a template into the common layout, and the answers every page needs
 * (security headers, cookies, redirects, error pages, static assets). */
#ifndef MACHTIGEN_WEB_PAGE_H
#define MACHTIGEN_WEB_PAGE_H

#include <jansson.h>

#include "auth/session.h"
#include "http/server.h"

struct web_state {
  struct web_session session;
  const char *lang;            /* "nl" or "en" */
  char set_lang_cookie[96];    /* "" for none */
  char form_action_extra[300]; /* another origin forms on this page may go to */
};

/* Loads catalogues; false with err on a broken one. */
bool web_init(char *err, size_t errlen);

/* Called by the dispatcher for AUTH_WEB / AUTH_WEB_USER routes before the
 * handler: session, language, form text checks, the CSRF token of every
 * POST, and the login an AUTH_WEB_USER route needs.  Answers itself (403,
 * a login redirect, ...) when the request may not go on. */
enum MHD_Result web_prepare(struct request *rq);

/* An HTML error page for the dispatcher's own refusals on web routes. */
enum MHD_Result web_error(struct request *rq, unsigned status, const char *message_key);

/* A message of the request's language (the key itself when missing). */
const char *web_msg(struct request *rq, const char *key);

/* The data every page has (language, user, CSRF token, navigation); the
 * page's template is `page`, its title the message title_key. */
json_t *web_context(struct request *rq, const char *page, const char *title_key);

/* Renders ctx (stolen) in the layout and answers with status. */
enum MHD_Result web_page(struct request *rq, unsigned status, json_t *ctx);

/* 303 See Other to a path of ours (or, for the authorize flow, to a
 * registered redirect URI). */
enum MHD_Result web_redirect(struct request *rq, const char *location);

/* Sends a browser without a login to /login, coming back to this very
 * path and query afterwards (or says the session ran out). */
enum MHD_Result web_login_required(struct request *rq);

/* GET /static/{name}. */
enum MHD_Result web_static_file(struct request *rq);

/* true when text is a safe local path to return to after login: starts
 * with one "/", no "//" or "\" at the start, printable ASCII only. */
bool web_local_path(const char *text);

/* Dates for people: "12-03-2026" in Europe/Amsterdam; and "YYYY-MM-DD". */
void web_date(usec_t t, char *buf, size_t len);
void web_iso_date(usec_t t, char *buf, size_t len);
void web_datetime(usec_t t, char *buf, size_t len);

#endif
