/* Queries on services, mandates and the audit trail. */
#ifndef MACHTIGEN_MANDATES_DB_H
#define MACHTIGEN_MANDATES_DB_H

#include "db/audit.h"
#include "db/db.h"
#include "domain/domain.h"

struct service {
  char code[64];
  char name_nl[201];
  char name_en[201];
  enum loa min_loa;
  int max_duration_days;
  bool allow_person;
  bool allow_organisation;
  char kinds_json[128]; /* JSON array text, e.g. ["voluntary","bewind"] */
};

struct mandate {
  char id[37];
  char principal[PARTY_MAX];
  char representative[PARTY_MAX];
  char service[64];
  enum mandate_kind kind;
  enum mandate_status status;
  usec_t valid_from, valid_until, created_at, updated_at;
  enum mandate_role initiated_by;
  char origin[8];
  char court_ref[101];
  bool has_court_ref;
  char reason[501];
  bool has_reason;
  int version;
};

enum mandate_list_role { LIST_EITHER, LIST_PRINCIPAL, LIST_REPRESENTATIVE };

struct mandate_list_query {
  const char *party;
  enum mandate_list_role role;
  const char *service;          /* NULL: any */
  const char *effective_status; /* NULL: any */
  bool has_cursor;
  usec_t cursor_created;
  char cursor_id[37];
  int limit; /* rows to fetch */
};

/* Services: result rows hold struct service columns; see service_from_row. */
enum db_status db_services_list(struct db *db, PGresult **res);
enum db_status db_service_get(struct db *db, const char *code, struct service *out);
/* The same from a per-thread copy of the catalogue, at most a few seconds
 * old: the hot paths (token exchange) need no round trip for it. */
enum db_status db_service_get_cached(struct db *db, const char *code, struct service *out);
void service_from_row(const PGresult *r, int row, struct service *out);

void mandate_from_row(const PGresult *r, int row, struct mandate *out);

/* Serialises creates for one principal and service within a transaction. */
enum db_status db_mandate_lock_pair(struct db *db, const char *principal, const char *service);
enum db_status db_mandate_legal_exists(struct db *db, const char *principal, const char *service,
                                       usec_t from, usec_t until);
enum db_status db_mandate_overlap_exists(struct db *db, const char *principal,
                                         const char *representative, const char *service,
                                         usec_t from, usec_t until);
enum db_status db_mandate_insert(struct db *db, const char *principal, const char *representative,
                                 const char *service, usec_t from, usec_t until,
                                 enum mandate_role initiator, const char *origin,
                                 struct mandate *out);
/* NOT_FOUND unless party is the principal or representative.  party NULL
 * (administrators): any mandate, always locked for update. */
enum db_status db_mandate_get(struct db *db, const char *id, const char *party, bool for_update,
                              struct mandate *out);
enum db_status db_mandate_set_status(struct db *db, const char *id, enum mandate_status status,
                                     const char *reason, struct mandate *out);
enum db_status db_mandates_list(struct db *db, const struct mandate_list_query *q, PGresult **res);

#endif
