/* OAuth client authentication at the token and introspection endpoints:
 * client_secret_basic and private_key_jwt (RFC 7523). */
#ifndef MACHTIGEN_CLIENT_AUTH_H
#define MACHTIGEN_CLIENT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

#define CLIENT_MAX_SERVICES 64

enum client_role { CLIENT_ADMIN, CLIENT_PORTAL };

struct client {
  char id[65];
  enum client_role role;
  char audience[256];
  size_t service_count;
  char services[CLIENT_MAX_SERVICES][64];
};

enum client_auth_status {
  CLIENT_AUTH_OK,
  CLIENT_AUTH_FAILED,      /* unknown client, wrong secret, bad assertion */
  CLIENT_AUTH_MISSING,     /* no credentials at all */
  CLIENT_AUTH_UNAVAILABLE, /* database down */
};

#define CLIENT_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* authorization: the Authorization header or NULL; assertion_type and
 * assertion: the form fields or NULL; audience: our issuer URL (a client
 * assertion's aud must be it or its /oauth2/token).  *reason is static
 * and log-safe. */
enum client_auth_status client_authenticate(struct db *db, const char *authorization,
                                            const char *assertion_type, const char *assertion,
                                            const char *audience, struct client *out,
                                            const char **reason);

bool client_may_use_service(const struct client *c, const char *service);

#endif
