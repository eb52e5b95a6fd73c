/* Mandate tokens for both ways a portal gets one: token exchange
 * (oauth_token.c) and the authorization code from "act for someone"
 * (web_authorize.c).  One function builds, audits and signs them, so both
 * give the same token. */
#ifndef MACHTIGEN_OAUTH_ISSUE_H
#define MACHTIGEN_OAUTH_ISSUE_H

#include "http/server.h"

/* For rq->who (the representative) acting for principal on service, to
 * rq->client: looks the mandate up, records token_issued in the audit
 * trail, signs and answers (or answers the precise invalid_grant). */
enum MHD_Result oauth_issue(struct request *rq, const char *principal, const char *service);

/* grant_type=authorization_code at /oauth2/token (web_authorize.c). */
enum MHD_Result oauth_code_grant(struct request *rq);

#endif
