/* The append-only, hash-chained audit trail.  Each row's hash is
 * SHA-256(prev_hash || canonical row); the chain head row in PostgreSQL is
 * locked while rows are appended, so sequence order is chain order. */
#ifndef MACHTIGEN_AUDIT_H
#define MACHTIGEN_AUDIT_H

#include <stdbool.h>

#include "db/db.h"
#include "domain/domain.h"

struct audit_event {
  const char *event; /* mandate_created, mandate_accepted, token_issued, ... */
  const char *mandate_id;
  const char *principal;
  const char *actor;
  const char *actor_employee; /* NULL or "" for none */
  const char *service;
  const char *client;
  const char *detail_json; /* NULL: {} */
};

/* Appends one event inside the caller's open transaction (state changes
 * are audited in the same transaction as the change). */
enum db_status db_audit(struct db *db, const struct audit_event *e);

/* Appends n events in one autocommitted statement (the token issuer's
 * group commit).  Not thread-safe: one thread appends batches. */
enum db_status audit_append_batch(struct db *db, const struct audit_event *const *events, int n);

/* `machtigend audit verify`: recomputes the whole chain; prints the
 * outcome; returns an exit code (0 intact, 1 broken, 2 error). */
int audit_verify(const char *conninfo);

/* The canonical digest (exposed for tests). */
void audit_digest(const unsigned char prev[32], long long seq, usec_t at,
                  const struct audit_event *e, unsigned char out[32]);

#endif
