-- Machtigen schema, version 1: catalogue, mandates, clients, audit trail.
-- Rules of DESIGN.md's Domain section are enforced here where SQL can.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Timestamps travel to and from the service as integer microseconds.
-- STABLE like the operators inside, so the planner inlines them (a SQL
-- function that is not inlined is parsed again on every call).
CREATE FUNCTION usec(t timestamptz) RETURNS int8
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  AS $$ SELECT (extract(epoch FROM t) * 1000000)::int8 $$;
CREATE FUNCTION from_usec(u int8) RETURNS timestamptz
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  AS $$ SELECT 'epoch'::timestamptz + u * interval '1 microsecond' $$;

CREATE TYPE mandate_status AS ENUM ('pending', 'active', 'declined', 'revoked', 'suspended');
CREATE TYPE mandate_kind AS ENUM ('voluntary', 'bewind', 'curatele', 'mentorschap');
CREATE TYPE loa AS ENUM ('basis', 'midden', 'substantieel', 'hoog');

CREATE TABLE services (
  code text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name_nl text NOT NULL CHECK (length(name_nl) BETWEEN 1 AND 200),
  name_en text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 200),
  min_loa loa NOT NULL,
  max_duration_days int NOT NULL CHECK (max_duration_days BETWEEN 1 AND 1827),
  allow_person boolean NOT NULL DEFAULT true,
  allow_organisation boolean NOT NULL DEFAULT false,
  mandate_kinds mandate_kind[] NOT NULL DEFAULT '{voluntary}'
    CHECK (cardinality(mandate_kinds) > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (allow_person OR allow_organisation)
);

CREATE TABLE mandates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  principal text NOT NULL CHECK (principal ~ '^bsn:[0-9]{9}$'),
  representative text NOT NULL CHECK (representative ~ '^(bsn:[0-9]{9}|kvk:[0-9]{8})$'),
  service text NOT NULL REFERENCES services (code),
  kind mandate_kind NOT NULL DEFAULT 'voluntary',
  status mandate_status NOT NULL,
  valid_from timestamptz NOT NULL,
  valid_until timestamptz NOT NULL,
  initiated_by text NOT NULL CHECK (initiated_by IN ('principal', 'representative', 'admin')),
  origin text NOT NULL CHECK (origin IN ('web', 'api', 'import')),
  court_ref text CHECK (length(court_ref) BETWEEN 1 AND 100),
  court text CHECK (length(court) <= 200),
  source text,
  external_ref text,
  last_import uuid,
  reason text CHECK (length(reason) <= 500),
  version int NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT no_self_mandate CHECK (principal <> representative),
  CONSTRAINT period_forward CHECK (valid_until > valid_from),
  CONSTRAINT legal_has_court_ref CHECK (kind = 'voluntary' OR court_ref IS NOT NULL),
  CONSTRAINT import_key_complete CHECK ((source IS NULL) = (external_ref IS NULL)),
  CONSTRAINT import_key_unique UNIQUE (source, external_ref),
  -- At most one live mandate per principal, representative and service at
  -- any instant (suspended ones come back, so they count).
  CONSTRAINT one_live_mandate EXCLUDE USING gist (
    principal WITH =, representative WITH =, service WITH =,
    tstzrange(valid_from, valid_until) WITH &&
  ) WHERE (status IN ('active', 'suspended'))
);

-- Listing: newest first per party (keyset pagination on created_at, id).
CREATE INDEX mandates_by_principal ON mandates (principal, created_at DESC, id DESC);
CREATE INDEX mandates_by_representative ON mandates (representative, created_at DESC, id DESC);

-- Status as citizens see it: expired and lapsed are derived from time.
CREATE FUNCTION effective_status(s mandate_status, valid_until timestamptz, created_at timestamptz)
  RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
  AS $$
    SELECT CASE
      WHEN s = 'active' AND valid_until <= now() THEN 'expired'
      WHEN s = 'pending' AND created_at <= now() - interval '21 days' THEN 'lapsed'
      ELSE s::text
    END
  $$;

-- Portal and admin clients.  Secrets are 256-bit random values shown once;
-- only their SHA-256 is stored (a slow hash adds nothing at that entropy).
CREATE TABLE clients (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{8,64}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  role text NOT NULL CHECK (role IN ('admin', 'portal')),
  secret_hash bytea CHECK (length(secret_hash) = 32),
  jwk jsonb,
  audience text,
  services text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz,
  CHECK (secret_hash IS NOT NULL OR jwk IS NOT NULL),
  CHECK (role = 'admin' OR audience IS NOT NULL)
);

-- Append-only audit trail, hash-chained: hash = SHA-256(prev_hash ||
-- canonical row), computed by machtigend (service/db/audit.c) while it
-- holds the chain head, so seq order is chain order.  `detail` is json,
-- not jsonb: the text hashed is the text stored.  `machtigend audit
-- verify` recomputes the whole chain.
CREATE TABLE audit_events (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  event text NOT NULL,
  mandate_id uuid,
  principal text,
  actor text NOT NULL,
  actor_employee text,
  service text,
  client text,
  detail json NOT NULL,
  prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
  hash bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_by_principal ON audit_events (principal, seq DESC) WHERE principal IS NOT NULL;
-- No index by mandate: every token issued writes a row here, and nothing
-- reads the trail by mandate yet (an index costs every insert).

-- The chain head: one row whose lock orders concurrent writers.
CREATE TABLE audit_head (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  hash bytea NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (seq, hash) VALUES (0, sha256(''::bytea));

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
