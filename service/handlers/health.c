#include <stdio.h>

#include "db/db.h"
#include "handlers/handlers.h"

enum MHD_Result health_live(struct request *rq) {
  return reply_json(rq, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

/* Ready when PostgreSQL answers with the schema this binary knows and the
 * identity provider's keys are loaded. */
enum MHD_Result health_ready(struct request *rq) {
  struct db *db = db_get();
  if (db == NULL)
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, "The database cannot be reached.", NULL);
  int version = db_schema_version(db);
  if (version != db_schema_version_known())
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE,
                         "The database schema is not the expected version.", NULL);
  if (!identity_ready())
    return reply_problem(rq, ERR_SERVICE_UNAVAILABLE,
                         "The identity provider's keys are not loaded yet.", NULL);
  return reply_json(rq, MHD_HTTP_OK,
                    json_pack("{s:s, s:s, s:i, s:s}", "status", "ready", "database", "ok",
                              "schema_version", version, "identity_keys", "ok"));
}

enum MHD_Result metrics_get(struct request *rq) {
  char text[2048];
  http_metrics_text(text, sizeof text);
  return reply_text(rq, MHD_HTTP_OK, "text/plain; version=0.0.4", text);
}
