#include <string.h>

#include "http/server.h"

const char *request_query(struct request *rq, const char *name) {
  return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *request_header(struct request *rq, const char *name) {
  return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

struct query_check {
  const char *const *allowed;
  const char *bad;
};

static enum MHD_Result check_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value) {
  struct query_check *qc = cls;
  for (const char *const *a = qc->allowed; *a != NULL; a++)
    if (strcmp(*a, key) == 0)
      return MHD_YES;
  qc->bad = key;
  return MHD_NO;
}

bool request_query_only(struct request *rq, const char *const *allowed, const char **bad) {
  struct query_check qc = {allowed, NULL};
  MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, check_one, &qc);
  *bad = qc.bad;
  return qc.bad == NULL;
}
