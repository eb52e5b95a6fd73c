#include "handlers/mandate_json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

usec_t now_usec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

bool uuid_valid(const char *text) {
  for (int i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i]))
      return false;
  }
  return text[36] == '\0';
}

static const char *effective_status(const struct mandate *m, usec_t now) {
  return mandate_effective_status(m->status, m->valid_until, m->created_at, now);
}

static json_t *time_json(usec_t t) {
  char buf[40];
  time_format(t, buf, sizeof buf);
  return json_string(buf);
}

static json_t *opt_string(bool has, const char *s) { return has ? json_string(s) : json_null(); }

json_t *mandate_to_json(const struct mandate *m, usec_t now) {
  static const char *initiators[] = {[ROLE_NONE] = "admin",
                                     [ROLE_PRINCIPAL] = "principal",
                                     [ROLE_REPRESENTATIVE] = "representative",
                                     [ROLE_ADMIN] = "admin"};
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:i, s:o, s:o}",
                   "id", m->id, "principal", m->principal, "representative", m->representative,
                   "service", m->service, "kind", mandate_kind_name(m->kind), "status",
                   effective_status(m, now), "valid_from", time_json(m->valid_from), "valid_until",
                   time_json(m->valid_until), "initiated_by", initiators[m->initiated_by], "origin",
                   m->origin, "court_ref", opt_string(m->has_court_ref, m->court_ref), "reason",
                   opt_string(m->has_reason, m->reason), "version", m->version, "created_at",
                   time_json(m->created_at), "updated_at", time_json(m->updated_at));
}

enum MHD_Result reply_mandate(struct request *rq, unsigned status, const struct mandate *m) {
  char location[80];
  snprintf(location, sizeof location, "/v1/mandates/%s", m->id);
  return reply_json_etag(rq, status, mandate_to_json(m, now_usec()), m->version,
                         status == MHD_HTTP_CREATED ? location : NULL);
}

enum MHD_Result reply_db_error(struct request *rq, enum db_status st) {
  switch (st) {
  case DB_NOT_FOUND:
    return reply_problem(rq, ERR_MANDATE_NOT_FOUND, NULL, NULL);
  case DB_CONFLICT:
    return reply_problem(rq, ERR_MANDATE_OVERLAP, NULL, NULL);
  case DB_OK:
  case DB_SOFT_ERROR:
  case DB_HARD_ERROR:
    break;
  }
  return reply_problem(rq, ERR_SERVICE_UNAVAILABLE, NULL, NULL);
}

#define TX_ATTEMPTS 3

bool tx_run(tx_fn fn, void *ctx, struct tx_outcome *out) {
  struct db *db = db_get();
  *out = (struct tx_outcome){DB_HARD_ERROR, ERR_NONE, NULL, NULL};
  if (db == NULL)
    return false;
  for (int attempt = 0; attempt < TX_ATTEMPTS; attempt++) {
    enum db_status st = db_begin(db);
    *out = (struct tx_outcome){st, ERR_NONE, NULL, NULL};
    if (st == DB_OK)
      *out = fn(db, ctx);
    if (out->st == DB_OK && out->err == ERR_NONE) {
      out->st = db_commit(db);
      if (out->st == DB_OK)
        return true;
    } else {
      db_rollback(db);
    }
    if (out->st != DB_SOFT_ERROR)
      return false;
  }
  out->st = DB_HARD_ERROR;
  return false;
}

bool run_tx(struct request *rq, tx_fn fn, void *ctx) {
  struct tx_outcome out;
  if (tx_run(fn, ctx, &out))
    return true;
  if (out.err != ERR_NONE)
    reply_problem(rq, out.err, out.detail, out.field);
  else
    reply_db_error(rq, out.st);
  return false;
}
