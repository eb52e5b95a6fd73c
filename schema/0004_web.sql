-- Version 4: the citizen web forms.  Server-side sessions (cookie holds a
-- random id; only its SHA-256 is stored), the portals' registered
-- redirect URIs, and authorization codes for "act for someone"
-- (GET /oauth2/authorize, redeemed once at /oauth2/token).

CREATE TABLE web_sessions (
  id_hash bytea PRIMARY KEY CHECK (length(id_hash) = 32),
  csrf text NOT NULL CHECK (length(csrf) BETWEEN 32 AND 64),
  -- NULL until the OpenID Connect login completed (a pre-login session
  -- holds only the login's state, nonce and PKCE verifier).
  party text CHECK (party ~ '^(bsn:[0-9]{9}|kvk:[0-9]{8})$'),
  employee text CHECK (length(employee) BETWEEN 1 AND 127),
  loa loa,
  display_name text CHECK (length(display_name) <= 200),
  login_state text CHECK (length(login_state) <= 64),
  login_nonce text CHECK (length(login_nonce) <= 64),
  login_verifier text CHECK (length(login_verifier) <= 128),
  return_to text CHECK (return_to ~ '^/[^/\\]' OR return_to = '/'),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  CHECK ((party IS NULL) = (loa IS NULL))
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- A portal sends representatives to /oauth2/authorize only with one of
-- these (compared exactly).
ALTER TABLE clients ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}';

-- One authorization request between the portal's redirect and the
-- representative's choice, bound to the browser session that saw it.
CREATE TABLE oauth_authz_requests (
  id text PRIMARY KEY CHECK (length(id) BETWEEN 20 AND 64),
  session_hash bytea NOT NULL CHECK (length(session_hash) = 32),
  client_id text NOT NULL REFERENCES clients (id),
  redirect_uri text NOT NULL,
  scope text NOT NULL REFERENCES services (code),
  state text CHECK (length(state) <= 512),
  code_challenge text NOT NULL CHECK (length(code_challenge) = 43),
  expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_authz_requests_expiry ON oauth_authz_requests (expires_at);

-- An issued code: who chose what.  principal NULL: acting for themselves.
CREATE TABLE oauth_codes (
  code_hash bytea PRIMARY KEY CHECK (length(code_hash) = 32),
  client_id text NOT NULL REFERENCES clients (id),
  redirect_uri text NOT NULL,
  scope text NOT NULL,
  code_challenge text NOT NULL CHECK (length(code_challenge) = 43),
  representative text NOT NULL CHECK (representative ~ '^(bsn:[0-9]{9}|kvk:[0-9]{8})$'),
  employee text,
  loa loa NOT NULL,
  principal text CHECK (principal ~ '^bsn:[0-9]{9}$'),
  expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

-- Loading a session touches it (idle timeout).  Touching is idempotent, so
-- as a plain SELECT it may run again on a new connection after a lost one
-- (service/db/db.c re-runs only plain SELECTs).
CREATE FUNCTION web_session_touch(h bytea, idle_seconds int)
  RETURNS TABLE (csrf text, party text, employee text, loa text, display_name text,
                 login_state text, login_nonce text, login_verifier text, return_to text)
  LANGUAGE sql VOLATILE
  AS $$
    UPDATE web_sessions SET last_seen = now()
     WHERE id_hash = h AND expires_at > now()
       AND last_seen > now() - make_interval(secs => idle_seconds)
    RETURNING csrf, party, employee, loa::text, display_name, login_state, login_nonce,
              login_verifier, return_to
  $$;
