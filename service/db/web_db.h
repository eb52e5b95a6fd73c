/* Queries of the web forms that are not sessions (auth/session.c). */
#ifndef MACHTIGEN_WEB_DB_H
#define MACHTIGEN_WEB_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

/* A redirect URI a portal may register: https, or in development plain
 * http on loopback; no fragment, no spaces, at most 1000 characters. */
bool redirect_uri_acceptable(const char *uri, bool dev);

/* Replaces the client's registered redirect URIs. */
enum db_status db_client_set_redirect_uris(struct db *db, const char *client_id,
                                           const char *const *uris, size_t n);

#endif
