#include "db/mandates_db.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void copy(char *dst, size_t len, const char *src) {
  snprintf(dst, len, "%s", src != NULL ? src : "");
}

static void usec_text(usec_t v, char buf[24]) { snprintf(buf, 24, "%" PRId64, v); }

void service_from_row(const PGresult *r, int row, struct service *s) {
  copy(s->code, sizeof s->code, db_text(r, row, 0));
  copy(s->name_nl, sizeof s->name_nl, db_text(r, row, 1));
  copy(s->name_en, sizeof s->name_en, db_text(r, row, 2));
  s->min_loa = loa_parse(db_text(r, row, 3));
  s->max_duration_days = (int)db_int(r, row, 4);
  s->allow_person = strcmp(db_text(r, row, 5), "t") == 0;
  s->allow_organisation = strcmp(db_text(r, row, 6), "t") == 0;
  copy(s->kinds_json, sizeof s->kinds_json, db_text(r, row, 7));
}

enum db_status db_services_list(struct db *db, PGresult **res) {
  return db_run(db, STMT_SERVICES_LIST, 0, NULL, res);
}

enum db_status db_service_get(struct db *db, const char *code, struct service *out) {
  PGresult *r;
  const char *params[] = {code};
  enum db_status st = db_run(db, STMT_SERVICE_GET, 1, params, &r);
  if (st == DB_OK)
    service_from_row(r, 0, out);
  PQclear(r);
  return st;
}

#define CATALOGUE_MAX_AGE_USEC (5 * USEC_PER_SEC)

struct catalogue {
  usec_t loaded;
  int count;
  struct service *items;
};

static __thread struct catalogue catalogue;

static pthread_key_t catalogue_key;
static pthread_once_t catalogue_key_once = PTHREAD_ONCE_INIT;

/* Frees a thread's copy when the thread ends. */
static void catalogue_thread_end(void *items) { free(items); }
static void catalogue_key_create(void) { pthread_key_create(&catalogue_key, catalogue_thread_end); }

static usec_t mono_usec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (usec_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

static enum db_status catalogue_refresh(struct db *db) {
  PGresult *r;
  enum db_status st = db_services_list(db, &r);
  if (st != DB_OK && st != DB_NOT_FOUND)
    return st;
  int n = PQntuples(r);
  struct service *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
  if (items == NULL) {
    PQclear(r);
    return DB_HARD_ERROR;
  }
  for (int i = 0; i < n; i++)
    service_from_row(r, i, &items[i]);
  PQclear(r);
  free(catalogue.items);
  catalogue = (struct catalogue){mono_usec(), n, items};
  pthread_once(&catalogue_key_once, catalogue_key_create);
  pthread_setspecific(catalogue_key, items);
  return DB_OK;
}

enum db_status db_service_get_cached(struct db *db, const char *code, struct service *out) {
  if (catalogue.items == NULL || mono_usec() - catalogue.loaded > CATALOGUE_MAX_AGE_USEC) {
    enum db_status st = catalogue_refresh(db);
    if (st != DB_OK)
      return st;
  }
  for (int i = 0; i < catalogue.count; i++) {
    if (strcmp(catalogue.items[i].code, code) == 0) {
      *out = catalogue.items[i];
      return DB_OK;
    }
  }
  return DB_NOT_FOUND;
}

static enum mandate_role role_parse(const char *text) {
  if (strcmp(text, "principal") == 0)
    return ROLE_PRINCIPAL;
  if (strcmp(text, "representative") == 0)
    return ROLE_REPRESENTATIVE;
  return ROLE_ADMIN;
}

static const char *role_name(enum mandate_role role) {
  return role == ROLE_PRINCIPAL        ? "principal"
         : role == ROLE_REPRESENTATIVE ? "representative"
                                       : "admin";
}

/* Column order: MANDATE_COLS in statements.def. */
void mandate_from_row(const PGresult *r, int row, struct mandate *m) {
  copy(m->id, sizeof m->id, db_text(r, row, 0));
  copy(m->principal, sizeof m->principal, db_text(r, row, 1));
  copy(m->representative, sizeof m->representative, db_text(r, row, 2));
  copy(m->service, sizeof m->service, db_text(r, row, 3));
  if (!mandate_kind_parse(db_text(r, row, 4), &m->kind))
    m->kind = MK_VOLUNTARY;
  if (!mandate_status_parse(db_text(r, row, 5), &m->status))
    m->status = MS_REVOKED;
  m->valid_from = db_int(r, row, 6);
  m->valid_until = db_int(r, row, 7);
  m->initiated_by = role_parse(db_text(r, row, 8));
  copy(m->origin, sizeof m->origin, db_text(r, row, 9));
  m->has_court_ref = db_text(r, row, 10) != NULL;
  copy(m->court_ref, sizeof m->court_ref, db_text(r, row, 10));
  m->has_reason = db_text(r, row, 11) != NULL;
  copy(m->reason, sizeof m->reason, db_text(r, row, 11));
  m->version = (int)db_int(r, row, 12);
  m->created_at = db_int(r, row, 13);
  m->updated_at = db_int(r, row, 14);
}

/* Runs a statement that returns one mandate row into *out. */
static enum db_status run_mandate(struct db *db, enum stmt s, int n, const char *const *params,
                                  struct mandate *out) {
  PGresult *r;
  enum db_status st = db_run(db, s, n, params, &r);
  if (st == DB_OK)
    mandate_from_row(r, 0, out);
  PQclear(r);
  return st;
}

/* Runs a statement whose only interest is whether it returned a row. */
static enum db_status run_exists(struct db *db, enum stmt s, int n, const char *const *params) {
  PGresult *r;
  enum db_status st = db_run(db, s, n, params, &r);
  PQclear(r);
  return st;
}

enum db_status db_mandate_lock_pair(struct db *db, const char *principal, const char *service) {
  const char *params[] = {principal, service};
  return run_exists(db, STMT_MANDATE_LOCK_PAIR, 2, params);
}

enum db_status db_mandate_legal_exists(struct db *db, const char *principal, const char *service,
                                       usec_t from, usec_t until) {
  char f[24], u[24];
  usec_text(from, f);
  usec_text(until, u);
  const char *params[] = {principal, service, f, u};
  return run_exists(db, STMT_MANDATE_LEGAL_EXISTS, 4, params);
}

enum db_status db_mandate_overlap_exists(struct db *db, const char *principal,
                                         const char *representative, const char *service,
                                         usec_t from, usec_t until) {
  char f[24], u[24];
  usec_text(from, f);
  usec_text(until, u);
  const char *params[] = {principal, representative, service, f, u};
  return run_exists(db, STMT_MANDATE_OVERLAP_EXISTS, 5, params);
}

enum db_status db_mandate_insert(struct db *db, const char *principal, const char *representative,
                                 const char *service, usec_t from, usec_t until,
                                 enum mandate_role initiator, const char *origin,
                                 struct mandate *out) {
  char f[24], u[24];
  usec_text(from, f);
  usec_text(until, u);
  const char *params[] = {principal, representative, service, f, u, role_name(initiator), origin};
  return run_mandate(db, STMT_MANDATE_INSERT, 7, params, out);
}

enum db_status db_mandate_get(struct db *db, const char *id, const char *party, bool for_update,
                              struct mandate *out) {
  if (party == NULL) {
    const char *by_id[] = {id};
    return run_mandate(db, STMT_MANDATE_LOCK_BY_ID, 1, by_id, out);
  }
  const char *params[] = {id, party};
  return run_mandate(db, for_update ? STMT_MANDATE_LOCK_FOR_PARTY : STMT_MANDATE_GET_FOR_PARTY, 2,
                     params, out);
}

enum db_status db_mandate_set_status(struct db *db, const char *id, enum mandate_status status,
                                     const char *reason, struct mandate *out) {
  const char *params[] = {id, mandate_status_name(status), reason};
  return run_mandate(db, STMT_MANDATE_SET_STATUS, 3, params, out);
}

enum db_status db_mandates_list(struct db *db, const struct mandate_list_query *q, PGresult **res) {
  static const enum stmt by_role[] = {
      [LIST_EITHER] = STMT_MANDATES_LIST_EITHER,
      [LIST_PRINCIPAL] = STMT_MANDATES_LIST_PRINCIPAL,
      [LIST_REPRESENTATIVE] = STMT_MANDATES_LIST_REPRESENTATIVE,
  };
  char created[24], limit[16];
  usec_text(q->cursor_created, created);
  snprintf(limit, sizeof limit, "%d", q->limit);
  const char *params[] = {q->party,
                          q->service,
                          q->effective_status,
                          q->has_cursor ? created : NULL,
                          q->has_cursor ? q->cursor_id : NULL,
                          limit};
  return db_run(db, by_role[q->role], 6, params, res);
}
