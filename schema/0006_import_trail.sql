-- Version 6: the changes an import makes get a trail of their own, sealed
-- by one chained audit event per import.
--
-- Until now every change an import made was a row of audit_events,
-- chained one by one in machtigend while the import held the chain head.
-- For a million rows that was the largest part of the import (7-10 s of
-- about 21-31 s on the bench machine, with 384 MB of audit rows), and
-- every other audited action, token exchanges included, waited for the
-- head all that time.  Now:
--
-- * each change is a narrow row of import_changes, written set-based in
--   one statement (measured: 2.6 s for a million, 214 MB);
-- * the import appends one event to the chain, `import_applied`, whose
--   detail carries the number of changes and a digest of them (SHA-256
--   over their COPY text lines, the columns IMPORT_CHANGE_COLS, in the
--   order of n, which runs 1, 2, 3, ...: changes_digest in
--   service/db/audit.h, used by the import and by `machtigend audit
--   verify`), so changing, adding or removing a change breaks the chain as
--   it would for any other event;
-- * imports.audit_seq names that event, and audit_trail shows both kinds
--   of rows as one trail (the activity lists read it).
--
-- The head is taken last, after the import's report is written, and held
-- only for that one event, the report's audit_seq and the commit.

ALTER TABLE imports ADD COLUMN audit_seq bigint UNIQUE;

CREATE TABLE import_changes (
  import_id uuid NOT NULL,
  -- The order within the import (from 1): the digest's order.
  n bigint NOT NULL CHECK (n > 0),
  -- c created, u updated, e ended (not in a mode=sync file), s superseded
  -- (ended by a court-appointed mandate, external_ref is that mandate's).
  change "char" NOT NULL CHECK (change IN ('c', 'u', 'e', 's')),
  mandate_id uuid NOT NULL,
  principal text NOT NULL,
  service text NOT NULL,
  external_ref text,
  kind mandate_kind,
  -- What an updated mandate was before.
  old jsonb
);
-- A citizen's activity; an import writes its changes in this order.
CREATE INDEX import_changes_by_principal ON import_changes (principal, import_id, n);

CREATE FUNCTION trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER import_changes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON import_changes
  FOR EACH STATEMENT EXECUTE FUNCTION trail_append_only();

-- Every audited thing, one row each: the chained events (n = 0) and the
-- changes of imports, at the place of the event that sealed them.
CREATE VIEW audit_trail AS
  SELECT a.seq, 0::int8 AS n, a.at, a.event, a.mandate_id, a.principal, a.actor,
         a.actor_employee, a.service, a.client, a.detail::jsonb AS detail
    FROM audit_events a
  UNION ALL
  SELECT i.audit_seq, c.n, a.at,
         CASE c.change WHEN 'c' THEN 'mandate_created' WHEN 'u' THEN 'mandate_updated'
           ELSE 'mandate_revoked' END,
         c.mandate_id, c.principal, a.actor, NULL, c.service, NULL,
         jsonb_strip_nulls(jsonb_build_object('import', c.import_id, 'source', i.source,
           'external_ref', CASE WHEN c.change <> 's' THEN c.external_ref END,
           'by_external_ref', CASE WHEN c.change = 's' THEN c.external_ref END,
           'reason', CASE c.change WHEN 'e' THEN 'not-in-sync-file'
                       WHEN 's' THEN 'court-appointed-mandate' END,
           'kind', c.kind, 'old', c.old))
    FROM import_changes c
    JOIN imports i ON i.id = c.import_id
    JOIN audit_events a ON a.seq = i.audit_seq;

-- A principal has a handful of mandates, found by equality (listing,
-- token exchange, the live rule); an import writes them in the file's
-- order, which is random by principal.  A hash index takes those writes
-- at about half the cost of the btree (measured for a million: 0.9 s
-- against 1.9 s); the handful is sorted after the lookup.
DROP INDEX mandates_by_principal;
CREATE INDEX mandates_by_principal ON mandates USING hash (principal);

-- The same checks, cheaper per row: perf of an import's INSERT of a
-- million mandates put 14% of it in the CHECKs, most of it counting
-- UTF-8 characters (length, left, substr).  A party is ASCII, so its
-- bytes are compared: "bsn:" or "kvk:" and nothing but digits after it,
-- 13 or 12 bytes in all (measured over a million rows: 0.25 s instead of
-- 1.0 s).  The court's lengths are still in characters, counted only when
-- the byte length is over the limit.
ALTER TABLE mandates DROP CONSTRAINT mandates_principal_check,
  ADD CONSTRAINT mandates_principal_check CHECK (
    octet_length(principal) = 13
    AND rtrim(textsend(principal), '0123456789'::bytea) = 'bsn:'::bytea),
  DROP CONSTRAINT mandates_representative_check,
  ADD CONSTRAINT mandates_representative_check CHECK (
    CASE octet_length(representative)
      WHEN 13 THEN rtrim(textsend(representative), '0123456789'::bytea) = 'bsn:'::bytea
      WHEN 12 THEN rtrim(textsend(representative), '0123456789'::bytea) = 'kvk:'::bytea
      ELSE false
    END),
  DROP CONSTRAINT mandates_court_ref_check,
  ADD CONSTRAINT mandates_court_ref_check CHECK (
    court_ref <> '' AND (octet_length(court_ref) <= 100 OR length(court_ref) <= 100)),
  DROP CONSTRAINT mandates_court_check,
  ADD CONSTRAINT mandates_court_check CHECK (octet_length(court) <= 200 OR length(court) <= 200);
