/* The mandate operations behind both the JSON API and the web forms: the
 * rules and the transaction, no HTTP. */
#ifndef MACHTIGEN_MANDATE_OPS_H
#define MACHTIGEN_MANDATE_OPS_H

#include "auth/identity.h"
#include "handlers/mandate_json.h"

struct mandate_request {
  struct party principal, representative; /* a side left out is the caller */
  bool has_principal, has_representative;
  const char *service;
  usec_t from, until;
};

/* A grant (the caller is the principal) or a request (the representative)
 * by who.  false: *fail names the rule broken (err, field) or a database
 * status. */
bool mandate_create(const struct identity *who, const struct mandate_request *req,
                    const char *origin, struct mandate *created, struct tx_outcome *fail);

/* accept / decline / revoke by who, or suspend / resume by the admin client
 * admin_client (who NULL).  expected_version: the version the caller saw
 * (412 when it changed).  On success *m is the mandate after the change. */
bool mandate_act(const struct identity *who, const char *admin_client, const char *id,
                 enum mandate_action action, int expected_version, const char *reason,
                 struct mandate *m, struct tx_outcome *fail);

#endif
