/* Outgoing HTTP to the identity provider (discovery, JWKS, token
 * endpoint): libcurl with every limit set, one place for all callers. */
#ifndef MACHTIGEN_HTTP_FETCH_H
#define MACHTIGEN_HTTP_FETCH_H

#include <stddef.h>

struct http_body {
  char *data; /* NUL-terminated; the caller frees */
  size_t len;
};

/* GET url, or POST form (application/x-www-form-urlencoded) when form is
 * not NULL, with HTTP Basic when user is not NULL.  Only http and https,
 * no redirects, TLS verified, connect 2 s / total 5 s, at most max_body
 * bytes.  NULL on a 200 with a body in *out, else a static, log-safe
 * reason (and *out empty). */
const char *http_fetch(const char *url, const char *form, const char *user, const char *password,
                       size_t max_body, struct http_body *out);

#endif
