/* The HTTP layer: libmicrohttpd glue, the route table and replies.
 * Handlers get a struct request with the body already accumulated (up to
 * the route's cap) and parsed, the caller authenticated as the route
 * demands, and path parameters split out.  They answer with one of the
 * reply_* functions exactly once. */
#ifndef MACHTIGEN_SERVER_H
#define MACHTIGEN_SERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/client_auth.h"
#include "auth/identity.h"
#include "http/errors.h"
#include "http/form.h"

#define MAX_PATH_PARAMS 2
#define MAX_URL_BYTES 8192
#define DEFAULT_BODY_CAP (64 * 1024)

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OTHER };

enum route_auth {
  AUTH_NONE,     /* public */
  AUTH_CITIZEN,  /* Authorization: Bearer <identity token> */
  AUTH_CLIENT,   /* an OAuth client: Basic or private_key_jwt in the form */
  AUTH_ADMIN,    /* an admin client: Basic */
  AUTH_WEB,      /* web forms: session cookie if any, CSRF on POST, HTML errors */
  AUTH_WEB_USER, /* web forms that need a logged-in session */
};

enum route_body {
  BODY_NONE,          /* a body is refused with 413 */
  BODY_JSON,          /* application/json required */
  BODY_JSON_OPTIONAL, /* empty, or application/json */
  BODY_FORM,          /* application/x-www-form-urlencoded (OAuth; errors as RFC 6749) */
  BODY_STREAM,        /* handed to route->stream chunk by chunk, never buffered whole */
};

struct request;

/* A streamed body (bulk import).  The dispatcher authenticates the caller
 * before begin, inflates Content-Encoding: gzip, and calls data for each
 * piece as it arrives.  begin may answer at once (a bad query, say); data
 * returns false to stop taking data (it then keeps its reason for work);
 * the rest of the upload is drained.  work runs once the upload is
 * complete (or was cut off: truncated is set), on a thread of its own
 * while the connection is suspended: the server's threads each serve many
 * connections, which would otherwise wait for it (an import's checks and
 * merge take seconds).  It must not use the thread's database connection
 * or answer; reply then answers, back on the server's thread.  cleanup
 * always runs. */
struct stream_ops {
  enum MHD_Result (*begin)(struct request *rq);
  bool (*data)(struct request *rq, const char *data, size_t len);
  void (*work)(struct request *rq, bool truncated);
  enum MHD_Result (*reply)(struct request *rq);
  void (*cleanup)(struct request *rq);
};

struct request;
typedef enum MHD_Result (*handler_fn)(struct request *rq);

struct route {
  enum http_method method;
  const char *pattern; /* "/v1/mandates/{}/accept": {} is one path segment */
  handler_fn handler;
  enum route_body body;
  enum route_auth auth;
  size_t body_cap;                 /* 0: DEFAULT_BODY_CAP; BODY_STREAM: no cap */
  const struct stream_ops *stream; /* BODY_STREAM routes */
};

extern const struct route routes[];
extern const size_t route_count;

struct request {
  struct MHD_Connection *conn;
  const struct route *route;
  enum http_method method;
  const char *method_text;
  const char *url; /* path without query */
  bool url_too_long;
  const char *params[MAX_PATH_PARAMS];
  char param_buf[MAX_PATH_PARAMS][80];

  char *body;
  size_t body_len;
  bool body_too_large;
  json_t *json; /* parsed body, NULL when empty */

  struct form form;         /* BODY_FORM routes */
  void *stream_state;       /* BODY_STREAM: the handler's own state */
  struct stream_pipe *pipe; /* BODY_STREAM: dispatcher state (gzip, progress) */
  struct identity who;      /* valid for AUTH_CITIZEN routes */
  struct client client;     /* valid for AUTH_CLIENT and AUTH_ADMIN routes */
  char actor_pseudonym[17];
  struct web_state *web; /* AUTH_WEB and AUTH_WEB_USER routes (web/page.h) */

  bool work_started, work_inline; /* BODY_STREAM: stream_ops.work (server.c) */
  bool worked;                    /* set by the work's thread, atomically */
  bool truncated;

  unsigned status; /* set by reply_* for the access log */
  const char *code;
  double started_ms;
};

/* Replies.  All return the MHD_queue_response result. */
enum MHD_Result reply_json(struct request *rq, unsigned status, json_t *body /* stolen */);
enum MHD_Result reply_json_etag(struct request *rq, unsigned status, json_t *body, int version,
                                const char *location);
enum MHD_Result reply_text(struct request *rq, unsigned status, const char *content_type,
                           const char *text);
/* 200 with a public Cache-Control max-age (published metadata). */
enum MHD_Result reply_cached(struct request *rq, const char *content_type, const char *text,
                             unsigned max_age);
/* problem+json from the registry; detail may be NULL (then the title),
 * field names the JSON field or query parameter at fault (or NULL). */
enum MHD_Result reply_problem(struct request *rq, enum err e, const char *detail,
                              const char *field);

/* RFC 6749 §5.2 error: {"error", "error_description"}; 401 adds the
 * Basic challenge. */
enum MHD_Result reply_oauth_error(struct request *rq, unsigned status, const char *error,
                                  const char *description);

/* 405 with an Allow header listing the methods the path takes. */
enum MHD_Result reply_problem_allow(struct request *rq, const char *allow);

/* Query string access (bounded; NULL when absent). */
const char *request_query(struct request *rq, const char *name);
const char *request_header(struct request *rq, const char *name);
/* true when every query parameter is in allowed (NULL-terminated); else
 * *bad names the first unknown one. */
bool request_query_only(struct request *rq, const char *const *allowed, const char **bad);

/* Prometheus text of the request counters. */
void http_metrics_text(char *buf, size_t len);

struct server;
struct server *server_start(char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish, frees everything. */
void server_stop(struct server *s);

#endif
