#ifndef MACHTIGEN_MANDATE_JSON_H
#define MACHTIGEN_MANDATE_JSON_H

#include <jansson.h>

#include "db/mandates_db.h"
#include "http/server.h"

/* The Mandate resource as openapi.yaml describes it; status is the
 * effective one (expired, lapsed derived from now). */
json_t *mandate_to_json(const struct mandate *m, usec_t now);

/* 200/201 with the mandate, its ETag and (for 201) Location. */
enum MHD_Result reply_mandate(struct request *rq, unsigned status, const struct mandate *m);

/* Maps a failed database status to its problem answer. */
enum MHD_Result reply_db_error(struct request *rq, enum db_status st);

usec_t now_usec(void);

/* true when text is a canonical lower- or upper-case UUID. */
bool uuid_valid(const char *text);

/* What a transaction body decided: a database status (DB_SOFT_ERROR makes
 * run_tx retry), or a rule broken (err, with the field at fault). */
struct tx_outcome {
  enum db_status st;
  enum err err;
  const char *field;
  const char *detail;
};

typedef struct tx_outcome (*tx_fn)(struct db *db, void *ctx);

/* Runs fn in a transaction on this thread's connection, retrying
 * serialization failures a bounded number of times.  Returns true when
 * committed; otherwise it has already answered with a problem. */
bool run_tx(struct request *rq, tx_fn fn, void *ctx);
/* The same without answering: false with *out saying why (a rule broken,
 * or a database status other than DB_OK). */
bool tx_run(tx_fn fn, void *ctx, struct tx_outcome *out);

#endif
