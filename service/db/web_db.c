#include "db/web_db.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool redirect_uri_acceptable(const char *uri, bool dev) {
  size_t n = strlen(uri);
  if (n == 0 || n > 1000 || strchr(uri, '#') != NULL)
    return false;
  for (const char *c = uri; *c; c++)
    if (*c < 0x21 || *c > 0x7e)
      return false;
  if (strncmp(uri, "https://", 8) == 0)
    return uri[8] != '\0';
  static const char *const loopback[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
  for (size_t i = 0; dev && i < sizeof loopback / sizeof loopback[0]; i++) {
    size_t l = strlen(loopback[i]);
    if (strncmp(uri, loopback[i], l) == 0 && (uri[l] == ':' || uri[l] == '/'))
      return true;
  }
  return false;
}

enum db_status db_client_set_redirect_uris(struct db *db, const char *client_id,
                                           const char *const *uris, size_t n) {
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(list, json_string(uris[i]));
  char *text = json_dumps(list, JSON_COMPACT);
  json_decref(list);
  if (text == NULL)
    return DB_HARD_ERROR;
  const char *params[] = {client_id, text};
  PGresult *r;
  enum db_status st = db_run(db, STMT_WEB_CLIENT_SET_REDIRECT_URIS, 2, params, &r);
  PQclear(r);
  free(text);
  return st;
}
