/* Shared pieces of the web pages: the catalogue and a mandate as the
 * templates see them. */
#ifndef MACHTIGEN_WEB_VIEW_H
#define MACHTIGEN_WEB_VIEW_H

#include <jansson.h>

#include "db/mandates_db.h"
#include "http/server.h"

/* The catalogue for the page's language: [{code, name, max_days, ...}],
 * or NULL when the database failed. */
json_t *web_services(struct request *rq);
/* The name of service code in services (the code itself if unknown). */
const char *web_service_name(json_t *services, const char *code);

/* "bsn:999993653" as people read it: "BSN 999993653" / "KvK 12345678". */
json_t *web_party(struct request *rq, const char *party);

/* A mandate for the templates, seen by the logged-in user: service name,
 * the other party, period, status (text, never colour alone) and which
 * actions the user may take. */
json_t *web_mandate(struct request *rq, const struct mandate *m, json_t *services);

/* The status code the web shows for a failed mandate operation. */
unsigned web_err_status(enum err e);

#endif
