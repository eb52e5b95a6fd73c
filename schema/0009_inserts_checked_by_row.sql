-- Version 9: a new mandate is checked by a row trigger, which an import's
-- own merge does not fire.
--
-- The statement trigger of version 5 (mandates_inserted) had every
-- INSERT collect its rows in a transition table, even when nothing then
-- read it: an import's merge, whose checks stand for the live rule
-- (version 7), kept a million rows in a tuplestore that spilled to disk,
-- only to look at the services they name.  Measured on the import bench:
-- merge 10.6-10.9 s without that trigger against 12.6-14.0 s with it.
--
-- Mandates are inserted one at a time everywhere but in an import (the
-- API and the web forms), so an INSERT is now checked row by row, as the
-- statement trigger checked a statement of a few rows: the service must
-- exist (and is locked against deletion, FOR KEY SHARE), and a live
-- mandate takes the live mandates' lock in shared mode and its parties'
-- lock, then looks for an overlapping live mandate (23P01,
-- one_live_mandate).  An import's merge skips the trigger (the WHEN
-- clause reads the transaction-local setting of version 7): it has held
-- the live mandates' lock since before its checks, and it locks the
-- services it validates against when it reads them (FOR KEY SHARE, in
-- service/db/imports_db.c).
--
-- UPDATE keeps the statement trigger: an import's updates, and any other
-- statement that changes many mandates at once, are checked as a whole.
-- A transaction that inserts many live mandates outside an import (the
-- token bench's 10,000, say) takes its parties' locks for the first
-- mandates_bulk_rows() of them and then the live mandates' lock itself,
-- as a bulk statement did: the lock table holds a few thousand locks in
-- all.  It counts them in a transaction-local setting,
-- machtigen.live_rows.

DROP TRIGGER mandates_inserted ON mandates;

CREATE FUNCTION mandates_check_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  other uuid;
  live int8;
BEGIN
  PERFORM 1 FROM services s WHERE s.code = NEW.service FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'a mandate names a service that does not exist: %', NEW.service
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mandates_service_fkey',
            TABLE = 'mandates';
  END IF;
  IF NEW.status NOT IN ('active', 'suspended') THEN
    RETURN NULL;
  END IF;
  live := coalesce(nullif(current_setting('machtigen.live_rows', true), ''), '0')::int8 + 1;
  PERFORM set_config('machtigen.live_rows', live::text, true);
  IF live > mandates_bulk_rows() THEN
    PERFORM mandates_lock_live();
  ELSE
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('machtigen-live-mandates', 0));
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'machtigen-live|' || NEW.principal || '|' || NEW.representative || '|' || NEW.service, 0));
  END IF;
  -- A statement of its own, so a snapshot of its own: it sees what the
  -- writers we waited for committed.
  SELECT m.id INTO other FROM mandates m
    WHERE m.principal = NEW.principal AND m.representative = NEW.representative
      AND m.service = NEW.service AND m.id <> NEW.id AND m.status IN ('active', 'suspended')
      AND m.valid_from < NEW.valid_until AND NEW.valid_from < m.valid_until
    LIMIT 1;
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'conflicting live mandates for the same principal, representative and service'
      USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'one_live_mandate', TABLE = 'mandates',
            DETAIL = format('mandate %s overlaps mandate %s', NEW.id, other);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER mandates_inserted AFTER INSERT ON mandates FOR EACH ROW
  WHEN (current_setting('machtigen.live_rule', true) IS DISTINCT FROM 'checked-by-import')
  EXECUTE FUNCTION mandates_check_inserted();
