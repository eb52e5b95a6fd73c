-- Version 2: mandate tokens for portals.

-- Token exchange looks a mandate up by its three parties.
CREATE INDEX mandates_by_parties ON mandates (principal, representative, service);

-- private_key_jwt (RFC 7523): a client assertion's jti is refused when
-- seen again within the assertion's lifetime.
CREATE TABLE client_assertion_jtis (
  client_id text NOT NULL REFERENCES clients (id),
  jti text NOT NULL CHECK (length(jti) BETWEEN 1 AND 200),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
