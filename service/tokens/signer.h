/* Our signing keys: ES256 JWKs in MACHTIGEN_KEY_DIR/keys.json, parsed once
 * (cjose) when the file changes, never per request.  The newest key that
 * is not retired signs; retired keys stay in the JWKS until no token they
 * signed can still be live, then `keys prune` drops them. */
#ifndef MACHTIGEN_SIGNER_H
#define MACHTIGEN_SIGNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest lifetime of a token we issue, and the clock skew we allow. */
#define TOKEN_MAX_TTL 600
#define TOKEN_LEEWAY 60

/* `machtigend keys …` subcommands; print to stdout/stderr, return exit codes. */
int keys_rotate(const char *dir);
int keys_list(const char *dir);
/* Drops retired keys whose tokens have all expired; with force, every
 * retired key at once (after a key compromise). */
int keys_prune(const char *dir, bool force);

/* Loads the key file; false with err when there is no usable key. */
bool signer_init(const char *dir, char *err, size_t errlen);
/* Reloads when the file changed since the last load (cheap to call). */
void signer_maybe_reload(void);
void signer_shutdown(void);

/* Signs claims as a compact JWS with header {alg: ES256, typ, kid}.
 * Returns a malloc'ed string or NULL. */
char *signer_sign(json_t *claims, const char *typ);

/* The public JWKS as JSON text (malloc'ed), for /.well-known/jwks.json. */
char *signer_jwks_json(void);

/* A keyset of our published keys for verifying our own tokens
 * (introspection); caller unrefs.  NULL when not loaded.  *generation
 * changes whenever the key file is reloaded. */
struct jose_keyset *signer_verify_keys(unsigned long *generation);

#endif
