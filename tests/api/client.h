/* The API tests' HTTP client: one request → status, the headers the tests
 * look at, and the parsed JSON body.  Every response is appended to the
 * capture file named by API_CAPTURE (NDJSON), which the test
 * `api-responses-valid` checks against openapi/openapi.yaml. */
#ifndef API_CLIENT_H
#define API_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks MACHTIGEN_URL, IDP_URL, DATABASE_URL and API_CAPTURE and sets up
 * libcurl.  A missing variable ends the process with exit status 1 and a
 * line saying to run the tests through `tools/dev test`: never a skip.
 * With API_CAPTURE_FRESH=1 (the first API test) the capture is emptied. */
void api_init(void);
const char *api_env(const char *name);

struct api_response {
  char method[16];
  char *path;         /* as sent, for messages */
  long status;        /* 0: no HTTP answer (see error) */
  char error[256];    /* libcurl's message when status is 0 */
  char *content_type; /* these headers are NULL when absent */
  char *etag;
  char *location;
  char *allow;
  char *www_authenticate;
  char *cache_control;
  char *raw; /* body bytes, NUL-terminated */
  size_t raw_len;
  json_t *json; /* parsed body; NULL when empty or not JSON */
};

/* Sends method path (relative to MACHTIGEN_URL).  headers: NULL or a
 * NULL-terminated list of "Name: value".  body: NULL for none (a POST then
 * sends Content-Length: 0), else body_len bytes.  libcurl adds no
 * Content-Type of its own: only the one in headers is sent. */
struct api_response *api_request(const char *method, const char *path, const char *const *headers,
                                 const char *body, size_t body_len);

/* The common case: Authorization: Bearer token (when token is not NULL)
 * and, with a body, Content-Type: application/json. */
struct api_response *api_call(const char *method, const char *path, const char *token,
                              const char *body);

/* POST /v1/mandates/{id}/{action} with If-Match (NULL: none) and an
 * optional JSON body. */
struct api_response *api_action(const char *action, const char *id, const char *token,
                                const char *if_match, const char *body);

void api_response_free(struct api_response *r);

/* A top-level string member of the JSON body, or NULL. */
const char *api_str(const struct api_response *r, const char *key);

/* One line describing the response, for failure messages (static buffer,
 * one per thread). */
const char *api_describe(const struct api_response *r);

/* Fails the current test unless the response has this status. */
void api_expect_status(const struct api_response *r, long status);

/* Fails the current test unless the response is an RFC 9457 problem
 * (application/problem+json with type, title, status = HTTP status,
 * detail and code) with this status and code; field, when not NULL, must
 * be the problem's `field`.  A 401 must carry WWW-Authenticate. */
void api_expect_problem(const struct api_response *r, long status, const char *code,
                        const char *field);

/* printf into a malloc'd string (aborts on failure). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RFC 3339 date-time → microseconds since the epoch; false if malformed. */
bool parse_datetime(const char *text, int64_t *usec);

/* The UTC calendar date `days` from now, as YYYY-MM-DD. */
void date_from_today(int days, char out[11]);
int current_year(void);

#endif
