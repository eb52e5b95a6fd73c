-- Version 3: bulk imports of court-appointed mandates (POST /v1/admin/imports).
--
-- An import streams its file into a temporary staging table on its own
-- connection (COPY), checks the rows there in set-based SQL and merges
-- them into mandates, keyed by (source, external_ref) (0001's
-- import_key_unique), all in one transaction under an advisory lock on
-- the source.  What stays is the report and the rejected rows, so that
-- GET /v1/admin/imports/{id}[/rejects] can answer later; a dry run's
-- report is kept too.

CREATE TABLE imports (
  id uuid PRIMARY KEY,
  source text NOT NULL CHECK (source ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$'),
  mode text NOT NULL CHECK (mode IN ('upsert', 'sync')),
  dry_run boolean NOT NULL,
  format text NOT NULL CHECK (format IN ('csv', 'ndjson')),
  client text NOT NULL,
  rows bigint NOT NULL CHECK (rows >= 0),
  inserted bigint NOT NULL CHECK (inserted >= 0),
  updated bigint NOT NULL CHECK (updated >= 0),
  unchanged bigint NOT NULL CHECK (unchanged >= 0),
  ended bigint NOT NULL CHECK (ended >= 0),
  superseded bigint NOT NULL CHECK (superseded >= 0),
  rejected bigint NOT NULL CHECK (rejected >= 0),
  -- mode=sync ended nothing because a rejected row could not be told
  -- apart (its external_ref was unreadable): see the rejects.
  sync_withheld boolean NOT NULL DEFAULT false,
  bytes bigint NOT NULL CHECK (bytes >= 0),
  rejects_by_code jsonb NOT NULL DEFAULT '{}',
  -- Milliseconds per phase: receive, validate, merge, audit, total.
  timings jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  CHECK (rows = inserted + updated + unchanged + rejected)
);
CREATE INDEX imports_by_source ON imports (source, started_at DESC);

-- The rows an import refused, as sent (invalid UTF-8 replaced by U+FFFD),
-- with the reason: GET …/rejects returns them as CSV, ready to correct
-- and send again.  No foreign key to imports: the rows are written with
-- the report in one statement, and a per-row check would cost more than
-- the rows themselves for a file that is all wrong.
CREATE TABLE import_rejects (
  import_id uuid NOT NULL,
  line bigint NOT NULL CHECK (line > 0),
  code text NOT NULL,
  message text NOT NULL,
  external_ref text,
  principal text,
  representative text,
  service text,
  kind text,
  valid_from text,
  valid_until text,
  court_ref text,
  court text,
  PRIMARY KEY (import_id, line)
);
