#!/usr/bin/env node
// An independent second verifier for Machtigen's mandate tokens, used by
// tests/api/test_tokens.c: the npm `jose` package checks the token against
// the published JWKS the way a portal written in JavaScript would.
//
//   node tests/api/verify-jose.mjs TOKEN JWKS_URL AUDIENCE ISSUER
//
// Prints the verified payload as one JSON line and exits 0 when the
// token verifies (ES256 only, typ at+jwt, this audience and issuer, within
// its lifetime); otherwise prints why on stderr and exits 1 (2: usage).

import { createRemoteJWKSet, jwtVerify } from 'jose';

const [token, jwksUrl, audience, issuer, ...extra] = process.argv.slice(2);
if (!token || !jwksUrl || !audience || !issuer || extra.length > 0) {
  console.error('usage: verify-jose.mjs TOKEN JWKS_URL AUDIENCE ISSUER');
  process.exit(2);
}

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 10000 });
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ['ES256'],
    typ: 'at+jwt',
    audience,
    issuer,
    requiredClaims: ['sub', 'jti', 'iat', 'nbf', 'exp'],
  });
  process.stdout.write(`${JSON.stringify(payload)}\n`);
} catch (e) {
  console.error(`jose refused the token: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
