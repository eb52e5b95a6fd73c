#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "db/clients_db.h"
#include "jose/jws.h"

bool client_secret_hash_hex(const char *secret, char hex[65]) {
  unsigned char digest[32];
  unsigned len = 0;
  if (EVP_Digest(secret, strlen(secret), digest, &len, EVP_sha256(), NULL) != 1 || len != 32)
    return false;
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return true;
}

bool client_new_credentials(char id[CLIENT_ID_LEN + 1], char secret[CLIENT_SECRET_LEN + 1]) {
  unsigned char raw_id[16], raw_secret[32];
  if (RAND_bytes(raw_id, sizeof raw_id) != 1 || RAND_bytes(raw_secret, sizeof raw_secret) != 1)
    return false;
  b64url_encode(raw_id, sizeof raw_id, id, CLIENT_ID_LEN + 1);
  b64url_encode(raw_secret, sizeof raw_secret, secret, CLIENT_SECRET_LEN + 1);
  return true;
}

enum db_status db_client_insert(struct db *db, const char *id, const char *name, const char *role,
                                const char *secret_hash_hex, const char *audience,
                                const char *services_array, const char *jwk) {
  const char *params[] = {id, name, role, secret_hash_hex, audience, services_array, jwk};
  PGresult *r;
  enum db_status st = db_run(db, STMT_CLIENT_INSERT, 7, params, &r);
  PQclear(r);
  return st;
}
