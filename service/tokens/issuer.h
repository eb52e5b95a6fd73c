/* The token issuer's group commit.  A token exchange needs the mandate
 * looked up and, when it is usable, the token recorded in the audit trail
 * before the token is signed.  Request threads queue those two steps here
 * and wait; one thread does them for every request queued meanwhile in two
 * statements (one lookup for the batch, one audit append), so PostgreSQL
 * sees two round trips per batch instead of two per token. */
#ifndef MACHTIGEN_ISSUER_H
#define MACHTIGEN_ISSUER_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "db/tokens_db.h"
#include "domain/domain.h"

struct token_record {
  /* in */
  const char *principal;
  const char *representative;
  const char *employee; /* "" for a person */
  const char *service;
  const char *client;
  const char *jti;
  usec_t now;
  /* out */
  enum db_status st; /* DB_OK: looked up (and, when usable, recorded) */
  bool found;        /* a mandate exists for the three parties */
  struct token_mandate m;
  enum mandate_use use; /* MU_USABLE: recorded in the audit trail */
  int64_t exp;          /* the token's exp: now + 10 min, capped at the mandate's end */
};

bool issuer_start(void);
void issuer_stop(void);
/* Blocks until the batch holding tr is done. */
void issuer_record(struct token_record *tr);

#endif
