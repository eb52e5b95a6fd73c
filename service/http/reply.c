#include <stdio.h>
#include <string.h>

#include "http/server.h"

/* Headers on every answer: this is an API, nothing here is to be framed,
 * sniffed or cached by a shared cache. */
static void common_headers(struct MHD_Response *resp) {
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  if (MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL) == NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static enum MHD_Result queue(struct request *rq, unsigned status, struct MHD_Response *resp) {
  if (resp == NULL)
    return MHD_NO;
  common_headers(resp);
  rq->status = status;
  enum MHD_Result ret = MHD_queue_response(rq->conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static struct MHD_Response *json_response(json_t *body, const char *content_type) {
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (text == NULL)
    return NULL;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if (resp != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  return resp;
}

enum MHD_Result reply_json(struct request *rq, unsigned status, json_t *body) {
  return queue(rq, status, json_response(body, "application/json"));
}

enum MHD_Result reply_json_etag(struct request *rq, unsigned status, json_t *body, int version,
                                const char *location) {
  struct MHD_Response *resp = json_response(body, "application/json");
  if (resp == NULL)
    return MHD_NO;
  char etag[24];
  snprintf(etag, sizeof etag, "\"%d\"", version);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
  if (location != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
  return queue(rq, status, resp);
}

enum MHD_Result reply_text(struct request *rq, unsigned status, const char *content_type,
                           const char *text) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (resp != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  return queue(rq, status, resp);
}

enum MHD_Result reply_cached(struct request *rq, const char *content_type, const char *text,
                             unsigned max_age) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL)
    return MHD_NO;
  char cc[48];
  snprintf(cc, sizeof cc, "public, max-age=%u", max_age);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
  return queue(rq, MHD_HTTP_OK, resp);
}

static struct MHD_Response *problem_response(struct request *rq, enum err e, const char *detail,
                                             const char *field) {
  char type[96];
  snprintf(type, sizeof type, "urn:machtigen:problem:%s", err_code(e));
  json_t *body =
      json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", err_title(e), "status",
                (int)err_status(e), "code", err_code(e), "detail", err_title(e));
  if (body == NULL)
    return NULL;
  /* The detail may quote a parser: short, and only when valid UTF-8
   * (json_stringn checks), else the title stands. */
  if (detail != NULL) {
    json_t *d = json_stringn(detail, strnlen(detail, 200));
    if (d != NULL)
      json_object_set_new(body, "detail", d);
  }
  if (field != NULL) {
    json_t *f = json_stringn(field, strnlen(field, 100));
    if (f != NULL)
      json_object_set_new(body, "field", f);
  }
  rq->code = err_code(e);
  return json_response(body, "application/problem+json");
}

/* RFC 6750 §3 / RFC 7617: a 401 says how to authenticate. */
static const char *www_authenticate(enum err e) {
  switch (e) {
  case ERR_IDENTITY_MISSING:
    return "Bearer realm=\"machtigen\"";
  case ERR_IDENTITY_INVALID:
  case ERR_IDENTITY_EXPIRED:
    return "Bearer realm=\"machtigen\", error=\"invalid_token\"";
  case ERR_ADMIN_AUTH_REQUIRED:
    return "Basic realm=\"machtigen-admin\", charset=\"UTF-8\"";
  default:
    return NULL;
  }
}

enum MHD_Result reply_problem(struct request *rq, enum err e, const char *detail,
                              const char *field) {
  struct MHD_Response *resp = problem_response(rq, e, detail, field);
  const char *challenge = www_authenticate(e);
  if (resp != NULL && challenge != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
  return queue(rq, err_status(e), resp);
}

enum MHD_Result reply_problem_allow(struct request *rq, const char *allow) {
  struct MHD_Response *resp = problem_response(rq, ERR_METHOD_NOT_ALLOWED, NULL, NULL);
  if (resp != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  return queue(rq, err_status(ERR_METHOD_NOT_ALLOWED), resp);
}

enum MHD_Result reply_oauth_error(struct request *rq, unsigned status, const char *error,
                                  const char *description) {
  json_t *body = json_pack("{s:s}", "error", error);
  if (description != NULL)
    json_object_set_new(body, "error_description", json_string(description));
  struct MHD_Response *resp = json_response(body, "application/json");
  if (resp != NULL && status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"machtigen\"");
  if (resp != NULL)
    MHD_add_response_header(resp, "Pragma", "no-cache");
  rq->code = error;
  return queue(rq, status, resp);
}
