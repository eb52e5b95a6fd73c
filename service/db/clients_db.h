/* Portal and admin clients. */
#ifndef MACHTIGEN_CLIENTS_DB_H
#define MACHTIGEN_CLIENTS_DB_H

#include <stdbool.h>

#include "db/db.h"

#define CLIENT_ID_LEN 22     /* 128 bits, base64url */
#define CLIENT_SECRET_LEN 43 /* 256 bits, base64url */

bool client_new_credentials(char id[CLIENT_ID_LEN + 1], char secret[CLIENT_SECRET_LEN + 1]);
/* SHA-256 of the secret as 64 hex characters. */
bool client_secret_hash_hex(const char *secret, char hex[65]);
/* services_array: a PostgreSQL array literal such as {a,b}, or NULL;
 * jwk: the client's public JWK (JSON text) for private_key_jwt, or NULL. */
enum db_status db_client_insert(struct db *db, const char *id, const char *name, const char *role,
                                const char *secret_hash_hex, const char *audience,
                                const char *services_array, const char *jwk);

#endif
