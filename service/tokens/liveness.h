/* Introspection's question "is this mandate usable right now?", asked for
 * every token a portal checks: batched like the issuer, so one statement
 * answers all introspections that arrive together. */
#ifndef MACHTIGEN_LIVENESS_H
#define MACHTIGEN_LIVENESS_H

#include <stdbool.h>

#include "db/db.h"
#include "domain/domain.h"

bool liveness_start(void);
void liveness_stop(void);
/* DB_OK with *live set, or a database error (answer 503). */
enum db_status mandate_live_now(const char *mandate_id, usec_t now, bool *live);

#endif
