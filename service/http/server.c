#include "http/server.h"
#include "http/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>

#include "config.h"
#include "db/db.h"
#include "log.h"
#include "web/page.h"

struct server {
  struct MHD_Daemon *daemon;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum http_method method_of(const char *m) {
  static const struct {
    const char *name;
    enum http_method method;
  } methods[] = {{"GET", HTTP_GET}, {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
                 {"PUT", HTTP_PUT}, {"DELETE", HTTP_DELETE}, {"PATCH", HTTP_PATCH}};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(m, methods[i].name) == 0)
      return methods[i].method;
  return HTTP_OTHER;
}

static const char *method_name(enum http_method m) {
  static const char *names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OTHER"};
  return names[m];
}

/* Matches url against a pattern segment by segment; {} takes one non-empty
 * segment into rq->params (one too long for the buffer becomes "", which
 * no handler accepts as an id, so the answer is the handler's 404). */
static bool path_match(const char *pattern, const char *url, struct request *rq) {
  size_t nparams = 0;
  const char *p = pattern, *u = url;
  while (*p != '\0' && *u != '\0') {
    if (p[0] == '{' && p[1] == '}') {
      const char *end = strchr(u, '/');
      size_t len = end ? (size_t)(end - u) : strlen(u);
      if (len == 0 || nparams == MAX_PATH_PARAMS)
        return false;
      if (rq != NULL) {
        size_t kept = len < sizeof rq->param_buf[0] ? len : 0;
        memcpy(rq->param_buf[nparams], u, kept);
        rq->param_buf[nparams][kept] = '\0';
        rq->params[nparams] = rq->param_buf[nparams];
      }
      nparams++;
      p += 2;
      u += len;
    } else if (*p == *u) {
      p++;
      u++;
    } else {
      return false;
    }
  }
  return *p == '\0' && *u == '\0';
}

/* Finds the route for method + url.  When the path exists with other
 * methods only, *allow lists them (for 405). */
static const struct route *route_find(enum http_method method, const char *url, struct request *rq,
                                      char *allow, size_t allowlen) {
  allow[0] = '\0';
  for (size_t i = 0; i < route_count; i++) {
    if (!path_match(routes[i].pattern, url, NULL))
      continue;
    if (routes[i].method == method || (method == HTTP_HEAD && routes[i].method == HTTP_GET)) {
      path_match(routes[i].pattern, url, rq);
      return &routes[i];
    }
    if (strstr(allow, method_name(routes[i].method)) == NULL) {
      if (allow[0] != '\0')
        strncat(allow, ", ", allowlen - strlen(allow) - 1);
      strncat(allow, method_name(routes[i].method), allowlen - strlen(allow) - 1);
    }
  }
  return NULL;
}

static bool route_is_web(const struct route *r) {
  return r != NULL && (r->auth == AUTH_WEB || r->auth == AUTH_WEB_USER);
}

/* 413 as problem+json, or as a page on the web forms' routes. */
static enum MHD_Result reply_too_large(struct request *rq) {
  if (route_is_web(rq->route))
    return web_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "error.too_large");
  return reply_problem(rq, ERR_PAYLOAD_TOO_LARGE, NULL, NULL);
}

static bool content_type_is(const char *ct, const char *want) {
  if (ct == NULL)
    return false;
  size_t n = strlen(want);
  if (strncasecmp(ct, want, n) != 0)
    return false;
  /* Allow parameters such as "; charset=utf-8", nothing else glued on. */
  return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static enum MHD_Result authenticate_citizen(struct request *rq) {
  const char *authz = request_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
  if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0 || authz[7] == '\0')
    return reply_problem(rq, ERR_IDENTITY_MISSING, NULL, NULL);
  const char *token = authz + 7;
  const char *reason = NULL;
  switch (identity_verify(token, strlen(token), &rq->who, &reason)) {
  case IDENT_OK:
    log_pseudonym(rq->who.party.id, rq->actor_pseudonym, sizeof rq->actor_pseudonym);
    return MHD_YES;
  case IDENT_EXPIRED:
    return reply_problem(rq, ERR_IDENTITY_EXPIRED, NULL, NULL);
  case IDENT_UNAVAILABLE:
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE,
                         "The identity provider's keys could not be loaded.", NULL);
  case IDENT_INVALID:
    break;
  }
  log_msg(LOG_INFO, "identity token refused: %s", reason ? reason : "invalid");
  return reply_problem(rq, ERR_IDENTITY_INVALID, NULL, NULL);
}

/* OAuth clients (token, introspection) and admins (admin API). */
static enum MHD_Result authenticate_client(struct request *rq, bool admin) {
  struct db *db = db_get();
  if (db == NULL)
    return admin ? reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL)
                 : reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                                     NULL);
  const char *authz = request_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
  const char *reason = NULL;
  enum client_auth_status st =
      admin ? client_authenticate(db, authz, NULL, NULL, config.public_url, &rq->client, &reason)
            : client_authenticate(db, authz, form_get(&rq->form, "client_assertion_type"),
                                  form_get(&rq->form, "client_assertion"), config.public_url,
                                  &rq->client, &reason);
  if (st == CLIENT_AUTH_OK && (!admin || rq->client.role == CLIENT_ADMIN)) {
    snprintf(rq->actor_pseudonym, sizeof rq->actor_pseudonym, "%.16s", rq->client.id);
    return MHD_YES;
  }
  if (st == CLIENT_AUTH_UNAVAILABLE)
    return admin ? reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL)
                 : reply_oauth_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                                     NULL);
  if (reason != NULL)
    log_msg(LOG_INFO, "client authentication refused: %s", reason);
  if (admin)
    return reply_problem(rq, ERR_ADMIN_AUTH_REQUIRED, NULL, NULL);
  return reply_oauth_error(rq, MHD_HTTP_UNAUTHORIZED, "invalid_client",
                           "Client authentication failed.");
}

/* Parses the body the route takes; answers itself on a bad one. */
static enum MHD_Result parse_body(struct request *rq) {
  const struct route *r = rq->route;
  const char *ct = request_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (r->body == BODY_FORM && route_is_web(r)) {
    const char *bad = NULL;
    if (!content_type_is(ct, "application/x-www-form-urlencoded") ||
        form_parse(rq->body ? rq->body : "", rq->body_len, &rq->form, &bad) != FORM_OK)
      return web_error(rq, MHD_HTTP_BAD_REQUEST, "error.bad_form");
    return MHD_YES;
  }
  if (r->body == BODY_FORM) {
    if (!content_type_is(ct, "application/x-www-form-urlencoded"))
      return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_request",
                               "Send the parameters as application/x-www-form-urlencoded.");
    const char *bad = NULL;
    switch (form_parse(rq->body ? rq->body : "", rq->body_len, &rq->form, &bad)) {
    case FORM_OK:
      return MHD_YES;
    case FORM_DUPLICATE:
      return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_request",
                               "A parameter is repeated.");
    case FORM_TOO_MANY:
    case FORM_MALFORMED:
      break;
    }
    return reply_oauth_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_request",
                             "The form body is malformed.");
  }
  if (rq->body_len == 0)
    return r->body == BODY_JSON
               ? reply_problem(rq, ERR_MALFORMED_JSON, "The request body is empty.", NULL)
               : MHD_YES;
  if (r->body == BODY_NONE)
    return reply_problem(rq, ERR_PAYLOAD_TOO_LARGE, "This request takes no body.", NULL);
  if (!content_type_is(ct, "application/json"))
    return reply_problem(rq, ERR_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
  json_error_t jerr;
  rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (rq->json == NULL)
    return reply_problem(rq, ERR_MALFORMED_JSON, jerr.text, NULL);
  return MHD_YES;
}

/* Runs the handler once the whole body is in.  Every early answer here is
 * a problem (or an OAuth error on form routes), so handlers never re-check
 * size, type or identity. */
static enum MHD_Result dispatch(struct request *rq) {
  const struct route *r = rq->route;
  if (rq->body_too_large)
    return reply_too_large(rq);
  enum MHD_Result ret = parse_body(rq);
  if (rq->status != 0)
    return ret;
  switch (r->auth) {
  case AUTH_CITIZEN:
    ret = authenticate_citizen(rq);
    break;
  case AUTH_CLIENT:
  case AUTH_ADMIN:
    ret = authenticate_client(rq, r->auth == AUTH_ADMIN);
    break;
  case AUTH_WEB:
  case AUTH_WEB_USER:
    ret = web_prepare(rq);
    break;
  case AUTH_NONE:
    break;
  }
  if (rq->status != 0)
    return ret;
  ret = r->handler(rq);
  db_assert_idle();
  return ret;
}

/* Requests between their first byte and their completion (for draining). */
static long in_flight;

/* Streamed requests whose work runs on its thread (server_stop waits). */
static long working;

static void *stream_work_thread(void *arg) {
  struct request *rq = arg;
  rq->route->stream->work(rq, rq->truncated);
  __atomic_store_n(&rq->worked, true, __ATOMIC_RELEASE);
  MHD_resume_connection(rq->conn);
  __atomic_fetch_sub(&working, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* The end of a streamed upload: its work on a thread of its own, the
 * connection suspended meanwhile (MHD calls on_request again once it is
 * resumed), then the answer.  Should no thread start, the work runs here. */
static enum MHD_Result stream_finish(struct request *rq) {
  if (!rq->work_started) {
    rq->work_started = true;
    rq->truncated = stream_gzip_incomplete(rq);
    __atomic_fetch_add(&working, 1, __ATOMIC_RELAXED);
    MHD_suspend_connection(rq->conn);
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (pthread_attr_init(&attr) == 0) {
      started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                pthread_create(&t, &attr, stream_work_thread, rq) == 0;
      pthread_attr_destroy(&attr);
    }
    if (started)
      return MHD_YES;
    log_msg(LOG_WARN, "no thread for a streamed request's work: it runs on the server's thread");
    __atomic_fetch_sub(&working, 1, __ATOMIC_RELAXED);
    rq->work_inline = true;
    MHD_resume_connection(rq->conn);
    return MHD_YES;
  }
  if (rq->work_inline && !rq->worked) {
    rq->route->stream->work(rq, rq->truncated);
    rq->worked = true;
  }
  if (!__atomic_load_n(&rq->worked, __ATOMIC_ACQUIRE))
    return MHD_YES; /* cannot be: called only once resumed */
  enum MHD_Result ret = rq->route->stream->reply(rq);
  db_assert_idle();
  return ret;
}

/* A streamed body: authenticate from the headers, set up gzip, and let the
 * handler begin before the first byte of the body arrives. */
static enum MHD_Result stream_start(struct request *rq) {
  if (rq->url_too_long)
    return MHD_YES;
  enum MHD_Result ret = MHD_YES;
  switch (rq->route->auth) {
  case AUTH_CITIZEN:
    ret = authenticate_citizen(rq);
    break;
  case AUTH_CLIENT:
  case AUTH_ADMIN:
    ret = authenticate_client(rq, true);
    break;
  case AUTH_WEB: /* no web route streams */
  case AUTH_WEB_USER:
  case AUTH_NONE:
    break;
  }
  if (rq->status != 0)
    return ret;
  if (!stream_open(rq, request_header(rq, MHD_HTTP_HEADER_CONTENT_ENCODING)))
    return reply_problem(rq, ERR_UNSUPPORTED_MEDIA_TYPE,
                         "Send the body as is or with Content-Encoding: gzip.", NULL);
  return rq->route->stream->begin(rq);
}

static enum MHD_Result add_arg_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
  size_t *total = cls;
  *total += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
  return MHD_YES;
}

/* The request target's length: path plus query (decoded, so never more
 * than what was sent). */
static size_t target_length(struct MHD_Connection *conn, const char *url) {
  size_t total = strlen(url);
  MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg_length, &total);
  return total;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  struct request *rq = *con_cls;
  if (rq == NULL) {
    rq = calloc(1, sizeof *rq);
    if (rq == NULL)
      return MHD_NO;
    *con_cls = rq;
    __atomic_fetch_add(&in_flight, 1, __ATOMIC_RELAXED);
    rq->conn = conn;
    rq->started_ms = now_ms();
    rq->method = method_of(method);
    rq->method_text = rq->method == HTTP_OTHER ? "OTHER" : method;
    rq->url = url;
    rq->url_too_long = target_length(conn, url) > MAX_URL_BYTES;
    if (rq->url_too_long)
      return MHD_YES; /* answered 414 once the body (if any) is drained */
    char allow[64];
    rq->route = route_find(rq->method, url, rq, allow, sizeof allow);
    if (rq->route == NULL)
      return MHD_YES; /* 404 or 405 once the body (if any) is drained */
    if (rq->route->body == BODY_STREAM)
      return stream_start(rq);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    size_t cap = rq->route->body_cap ? rq->route->body_cap : DEFAULT_BODY_CAP;
    if (cl != NULL && strtoull(cl, NULL, 10) > cap) {
      /* Answer now; MHD closes the connection instead of reading it all. */
      rq->body_too_large = true;
      return reply_too_large(rq);
    }
    return MHD_YES;
  }

  if (*upload_data_size != 0 && rq->pipe != NULL) {
    if (rq->status == 0)
      stream_feed(rq, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    /* Accumulate up to the route's cap; past it, answer 413 at once. */
    size_t cap = rq->route && rq->route->body_cap ? rq->route->body_cap : DEFAULT_BODY_CAP;
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (rq->route != NULL && !rq->body_too_large) {
      if (rq->body_len + n > cap) {
        rq->body_too_large = true;
        free(rq->body);
        rq->body = NULL;
        rq->body_len = 0;
        return reply_too_large(rq);
      } else {
        char *grown = realloc(rq->body, rq->body_len + n + 1);
        if (grown == NULL)
          return MHD_NO;
        rq->body = grown;
        memcpy(rq->body + rq->body_len, upload_data, n);
        rq->body_len += n;
        rq->body[rq->body_len] = '\0';
      }
    }
    return MHD_YES;
  }

  if (rq->status != 0)
    return MHD_YES; /* already answered */
  if (rq->url_too_long)
    return reply_problem(rq, ERR_URI_TOO_LONG, NULL, NULL);
  if (rq->route == NULL) {
    char allow[64];
    route_find(rq->method, url, NULL, allow, sizeof allow);
    if (allow[0] != '\0')
      return reply_problem_allow(rq, allow);
    return reply_problem(rq, ERR_ROUTE_NOT_FOUND, NULL, NULL);
  }
  if (rq->pipe != NULL)
    return stream_finish(rq);
  return dispatch(rq);
}

/* Answers by status class, for /metrics. */
static unsigned long long answered[6];

void http_metrics_text(char *buf, size_t len) {
  int n = snprintf(buf, len,
                   "# HELP machtigen_http_responses_total HTTP responses by status class.\n"
                   "# TYPE machtigen_http_responses_total counter\n");
  for (int c = 1; c <= 5 && n > 0 && (size_t)n < len; c++)
    n += snprintf(buf + n, len - (size_t)n, "machtigen_http_responses_total{class=\"%dxx\"} %llu\n",
                  c, __atomic_load_n(&answered[c], __ATOMIC_RELAXED));
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  struct request *rq = *con_cls;
  if (rq == NULL)
    return;
  if (rq->status >= 100 && rq->status < 600)
    __atomic_fetch_add(&answered[rq->status / 100], 1, __ATOMIC_RELAXED);
  if (rq->status != 0)
    log_request(rq->method_text, rq->url, rq->status, rq->code, now_ms() - rq->started_ms,
                rq->actor_pseudonym);
  __atomic_fetch_sub(&in_flight, 1, __ATOMIC_RELAXED);
  stream_close(rq);
  json_decref(rq->json);
  form_free(&rq->form);
  free(rq->web);
  free(rq->body);
  free(rq);
  *con_cls = NULL;
}

struct server *server_start(char *err, size_t errlen) {
  struct server *s = calloc(1, sizeof *s);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(config.listen_port)};
  if (inet_pton(AF_INET,
                strcmp(config.listen_host, "localhost") == 0 ? "127.0.0.1" : config.listen_host,
                &addr.sin_addr) != 1) {
    snprintf(err, errlen, "MACHTIGEN_LISTEN host must be an IPv4 address: %s", config.listen_host);
    free(s);
    return NULL;
  }
  s->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
          MHD_ALLOW_SUSPEND_RESUME,
      config.listen_port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, config.threads,
      MHD_OPTION_CONNECTION_TIMEOUT, config.connection_timeout, MHD_OPTION_CONNECTION_LIMIT,
      config.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
      MHD_OPTION_END);
  if (s->daemon == NULL) {
    snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this machine)",
             config.listen);
    free(s);
    return NULL;
  }
  return s;
}

/* How long a stop waits for requests in flight before closing anyway. */
#define DRAIN_MAX_MS 10000

void server_stop(struct server *s) {
  if (s == NULL)
    return;
  /* Stop accepting, let the requests in flight finish (idle keep-alive
   * connections are simply closed), then stop. */
  MHD_quiesce_daemon(s->daemon);
  /* A streamed request's work (an import) is waited for however long it
   * takes, as the thread that ran it used to be: it commits or rolls back
   * as a whole, and its connection cannot be closed while suspended. */
  while (__atomic_load_n(&working, __ATOMIC_ACQUIRE) > 0)
    usleep(20 * 1000);
  for (int waited = 0; waited < DRAIN_MAX_MS && __atomic_load_n(&in_flight, __ATOMIC_RELAXED) > 0;
       waited += 20)
    usleep(20 * 1000);
  MHD_stop_daemon(s->daemon);
  free(s);
}
