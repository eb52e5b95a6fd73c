/* The web forms' OpenID Connect login (relying party): authorization code
 * flow with PKCE (S256), state and nonce, against MACHTIGEN_IDP_ISSUER.
 * Discovery gives the authorization and token endpoints; the id_token is
 * verified by identity_verify() (signature, iss, aud, exp, acr, subject)
 * and then its nonce is compared with the one this login sent. */
#ifndef MACHTIGEN_OIDC_RP_H
#define MACHTIGEN_OIDC_RP_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/identity.h"

/* The URL to send the browser to for a login.  false when the provider's
 * discovery document cannot be had (try again later). */
bool oidc_authorize_url(const char *state, const char *nonce, const char *verifier, char *url,
                        size_t len);

/* Redeems the code at the token endpoint and verifies the id_token.
 * name gets the optional "name" claim ("" if none).  *reason is static. */
enum identity_status oidc_redeem(const char *code, const char *verifier, const char *nonce,
                                 struct identity *who, char *name, size_t namelen,
                                 const char **reason);

/* The nonce claim check alone (exposed for tests): the verified token's
 * payload must carry exactly this nonce. */
bool oidc_nonce_matches(const char *id_token, const char *nonce);

void oidc_shutdown(void);

#endif
