#include "web/page.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "web/embed.h"
#include "web/template.h"

#define LANG_COOKIE "machtigen-lang"

static json_t *catalogue_nl, *catalogue_en;
static bool init_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static json_t *load_catalogue(const char *lang) {
  for (size_t i = 0; i < web_message_count; i++) {
    if (strcmp(web_messages[i].name, lang) == 0) {
      json_error_t e;
      json_t *c = json_loadb((const char *)web_messages[i].data, web_messages[i].len,
                             JSON_REJECT_DUPLICATES, &e);
      if (!json_is_object(c))
        log_msg(LOG_ERROR, "message catalogue %s is broken: %s", lang, e.text);
      return json_is_object(c) ? c : NULL;
    }
  }
  return NULL;
}

static void init(void) {
  catalogue_nl = load_catalogue("nl");
  catalogue_en = load_catalogue("en");
  init_ok = catalogue_nl != NULL && catalogue_en != NULL;
}

bool web_init(char *err, size_t errlen) {
  pthread_once(&init_once, init);
  if (!init_ok)
    snprintf(err, errlen, "the web forms' message catalogues are broken");
  return init_ok;
}

static const char *template_source(const char *name) {
  for (size_t i = 0; i < web_template_count; i++)
    if (strcmp(web_templates[i].name, name) == 0)
      return (const char *)web_templates[i].data;
  return NULL;
}

static const char *message_of(void *cls, const char *key) {
  return json_string_value(json_object_get(cls, key));
}

static json_t *catalogue(const char *lang) {
  return lang != NULL && strcmp(lang, "en") == 0 ? catalogue_en : catalogue_nl;
}

const char *web_msg(struct request *rq, const char *key) {
  const char *m = message_of(catalogue(rq->web ? rq->web->lang : "nl"), key);
  return m != NULL ? m : key;
}

bool web_local_path(const char *text) {
  if (text == NULL || text[0] != '/' || text[1] == '/' || text[1] == '\\' ||
      strlen(text) > SESSION_RETURN_MAX)
    return false;
  for (const char *c = text; *c; c++)
    if (*c < 0x21 || *c > 0x7e || *c == '\\')
      return false;
  return true;
}

static bool utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80             ? 0
            : (*p & 0xe0) == 0xc0 ? 1
            : (*p & 0xf0) == 0xe0 ? 2
            : (*p & 0xf8) == 0xf0 ? 3
                                  : -1;
    if (n < 0 || (n == 1 && *p < 0xc2))
      return false;
    p++;
    for (int i = 0; i < n; i++, p++)
      if ((*p & 0xc0) != 0x80)
        return false;
  }
  return true;
}

/* ---- Answers ------------------------------------------------------- */

static void security_headers(struct request *rq, struct MHD_Response *resp, bool html) {
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  if (html) {
    char csp[512];
    const char *extra = rq->web != NULL ? rq->web->form_action_extra : "";
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'%s%s; "
             "base-uri 'none'; frame-ancestors 'none'",
             extra[0] ? " " : "", extra);
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  }
  if (rq->web != NULL && rq->web->session.set_cookie[0] != '\0')
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rq->web->session.set_cookie);
  if (rq->web != NULL && rq->web->set_lang_cookie[0] != '\0')
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rq->web->set_lang_cookie);
}

static enum MHD_Result queue(struct request *rq, unsigned status, struct MHD_Response *resp) {
  if (resp == NULL)
    return MHD_NO;
  rq->status = status;
  enum MHD_Result ret = MHD_queue_response(rq->conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result plain_failure(struct request *rq, unsigned status) {
  static const char text[] = "Er ging iets mis. Probeer het later opnieuw. "
                             "(Something went wrong. Please try again later.)\n";
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  security_headers(rq, resp, true);
  return queue(rq, status, resp);
}

enum MHD_Result web_page(struct request *rq, unsigned status, json_t *ctx) {
  struct template_env env = {template_source, message_of,
                             catalogue(json_string_value(json_object_get(ctx, "lang")))};
  struct sbuf out = {0};
  const char *err = NULL;
  bool ok = init_ok && template_render(&env, "layout", ctx, &out, &err);
  json_decref(ctx);
  if (!ok) {
    log_msg(LOG_ERROR, "page rendering failed: %s", err ? err : "not initialised");
    sbuf_free(&out);
    return plain_failure(rq, MHD_HTTP_INTERNAL_SERVER_ERROR);
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(out.len, out.p, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    sbuf_free(&out);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
  MHD_add_response_header(resp, "Content-Language", rq->web ? rq->web->lang : "nl");
  security_headers(rq, resp, true);
  return queue(rq, status, resp);
}

enum MHD_Result web_redirect(struct request *rq, const char *location) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
  security_headers(rq, resp, true);
  return queue(rq, MHD_HTTP_SEE_OTHER, resp);
}

enum MHD_Result web_error(struct request *rq, unsigned status, const char *message_key) {
  if (!init_ok)
    return plain_failure(rq, status);
  json_t *ctx = web_context(rq, "error", "error.title");
  json_object_set_new(ctx, "message", json_string(web_msg(rq, message_key)));
  return web_page(rq, status, ctx);
}

enum MHD_Result web_static_file(struct request *rq) {
  for (size_t i = 0; i < web_static_count; i++) {
    if (strcmp(web_static[i].name, rq->params[0]) != 0)
      continue;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        web_static[i].len, (void *)web_static[i].data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
      return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, web_static[i].content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=3600");
    security_headers(rq, resp, false);
    return queue(rq, MHD_HTTP_OK, resp);
  }
  return reply_problem(rq, ERR_ROUTE_NOT_FOUND, NULL, NULL);
}

/* ---- Dates --------------------------------------------------------- */

static struct tm local_tm(usec_t t) {
  time_t secs = (time_t)(t / USEC_PER_SEC) + amsterdam_offset(t);
  struct tm tm;
  gmtime_r(&secs, &tm);
  return tm;
}

void web_date(usec_t t, char *buf, size_t len) {
  struct tm tm = local_tm(t);
  strftime(buf, len, "%d-%m-%Y", &tm);
}

void web_iso_date(usec_t t, char *buf, size_t len) {
  struct tm tm = local_tm(t);
  strftime(buf, len, "%Y-%m-%d", &tm);
}

void web_datetime(usec_t t, char *buf, size_t len) {
  struct tm tm = local_tm(t);
  strftime(buf, len, "%d-%m-%Y %H:%M", &tm);
}

/* ---- Per request --------------------------------------------------- */

json_t *web_context(struct request *rq, const char *page, const char *title_key) {
  const char *lang = rq->web ? rq->web->lang : "nl";
  bool en = strcmp(lang, "en") == 0;
  json_t *ctx =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:b}}", "lang", lang, "other_lang",
                en ? "nl" : "en", "other_lang_name", en ? "Nederlands" : "English", "page", page,
                "title", web_msg(rq, title_key), "path", rq->url, "nav", page, true);
  const struct web_session *s = rq->web ? &rq->web->session : NULL;
  if (s != NULL && s->live)
    json_object_set_new(ctx, "csrf", json_string(s->csrf));
  if (s != NULL && s->logged_in) {
    json_t *user = json_pack("{s:s, s:b}", "party", s->who.party.id, "organisation",
                             s->who.party.kind == PARTY_ORGANISATION);
    json_t *name = json_string(s->display_name);
    if (s->display_name[0] && name != NULL)
      json_object_set_new(user, "name", name);
    else
      json_decref(name);
    if (s->who.employee[0])
      json_object_set_new(user, "employee", json_string(s->who.employee));
    json_object_set_new(ctx, "user", user);
  }
  return ctx;
}

/* The path and query of this request, for coming back after login. */
static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
  char *out = cls;
  size_t n = strlen(out);
  const char *parts[] = {key, value ? value : ""};
  if (n + 2 >= SESSION_RETURN_MAX)
    return MHD_NO;
  out[n++] = strchr(out, '?') ? '&' : '?';
  out[n] = '\0';
  for (int p = 0; p < 2; p++) {
    for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++) {
      n = strlen(out);
      if (n + 4 >= SESSION_RETURN_MAX)
        return MHD_NO;
      if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("-._~", *c))
        out[n] = (char)*c, out[n + 1] = '\0';
      else
        snprintf(out + n, 4, "%%%02X", *c);
    }
    if (p == 0)
      strcat(out, "=");
  }
  return MHD_YES;
}

enum MHD_Result web_login_required(struct request *rq) {
  char back[SESSION_RETURN_MAX + 1];
  snprintf(back, sizeof back, "%s", rq->url);
  MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, add_query, back);
  if (rq->web->session.cookie_sent) {
    /* The session ran out: say so rather than sending the browser away. */
    json_t *ctx = web_context(rq, "expired", "expired.title");
    json_t *next = json_string(web_local_path(back) ? back : "/");
    json_object_set_new(ctx, "next", next ? next : json_string("/"));
    return web_page(rq, MHD_HTTP_UNAUTHORIZED, ctx);
  }
  char location[SESSION_RETURN_MAX * 3 + 32] = "/login?next=";
  const char *p = web_local_path(back) ? back : "/";
  size_t n = strlen(location);
  for (const unsigned char *c = (const unsigned char *)p; *c && n + 4 < sizeof location; c++) {
    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
        strchr("-._~/", *c))
      location[n++] = (char)*c;
    else
      n += (size_t)snprintf(location + n, 4, "%%%02X", *c);
    location[n] = '\0';
  }
  return web_redirect(rq, location);
}

static void choose_language(struct request *rq) {
  const char *asked = rq->method == HTTP_GET ? request_query(rq, "lang") : NULL;
  const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, LANG_COOKIE);
  if (asked != NULL && (strcmp(asked, "nl") == 0 || strcmp(asked, "en") == 0)) {
    rq->web->lang = strcmp(asked, "en") == 0 ? "en" : "nl";
    snprintf(rq->web->set_lang_cookie, sizeof rq->web->set_lang_cookie,
             LANG_COOKIE "=%s; Path=/; Max-Age=31536000; SameSite=Lax%s", rq->web->lang,
             strncmp(config.public_url, "https://", 8) == 0 ? "; Secure" : "");
  } else {
    rq->web->lang = cookie != NULL && strcmp(cookie, "en") == 0 ? "en" : "nl";
  }
}

enum MHD_Result web_prepare(struct request *rq) {
  pthread_once(&init_once, init);
  rq->web = calloc(1, sizeof *rq->web);
  if (rq->web == NULL)
    return MHD_NO;
  choose_language(rq);
  if (!init_ok)
    return plain_failure(rq, MHD_HTTP_INTERNAL_SERVER_ERROR);
  struct db *db = db_get();
  const char *cookie =
      MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, session_cookie_name());
  if (db == NULL || session_load(db, cookie, &rq->web->session) != DB_OK)
    return web_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "error.unavailable");
  const struct web_session *s = &rq->web->session;
  if (s->logged_in)
    log_pseudonym(s->who.party.id, rq->actor_pseudonym, sizeof rq->actor_pseudonym);
  if (rq->method == HTTP_POST) {
    for (size_t i = 0; i < rq->form.count; i++)
      if (!utf8_valid(rq->form.values[i]))
        return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.bad_text");
    /* Every form carries the session's CSRF token; without it nothing changes. */
    if (!session_csrf_ok(s, form_get(&rq->form, "csrf")))
      return web_error(rq, MHD_HTTP_FORBIDDEN,
                       s->cookie_sent && !s->live ? "error.session_expired" : "error.csrf");
  }
  if (rq->route->auth == AUTH_WEB_USER && !s->logged_in) {
    if (rq->method == HTTP_POST)
      return web_error(rq, MHD_HTTP_FORBIDDEN, "error.session_expired");
    return web_login_required(rq);
  }
  return MHD_YES;
}
