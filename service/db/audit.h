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

/* The digest import_applied carries (schema/0006): SHA-256 over the COPY
 * text lines of an import's changes, these columns, in the order of n,
 * which must run 1, 2, 3, ... without a gap.  The import computes it over
 * the rows it inserts (db/imports_db_audit.c), `audit verify` over the
 * table. */
#define IMPORT_CHANGE_COLS "n, change, mandate_id, principal, service, external_ref, kind, old"

struct changes_digest {
  void *ctx; /* EVP_MD_CTX */
  long long count;
  bool out_of_order;
};

void changes_digest_start(struct changes_digest *d);
/* One line as COPY sent it (starting with n, ending with a newline). */
void changes_digest_line(struct changes_digest *d, const char *line, size_t len);
/* The digest in hex; false when the lines were not n = 1, 2, 3, ... */
bool changes_digest_end(struct changes_digest *d, char hex[65]);

/* n bytes as 2n hex digits (out holds 2n + 1), and back: false unless in
 * is exactly 2n hex digits. */
void audit_to_hex(const unsigned char *in, size_t n, char *out);
bool audit_from_hex(const char *in, unsigned char *out, size_t n);
/* The wall clock, as events record it. */
usec_t audit_now(void);

/* The canonical digest (exposed for tests). */
void audit_digest(const unsigned char prev[32], long long seq, usec_t at,
                  const struct audit_event *e, unsigned char out[32]);

#endif
