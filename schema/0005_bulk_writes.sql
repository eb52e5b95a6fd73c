-- Version 5: mandates that a million rows can be written into in seconds.
--
-- Measured on the bench machine (tools/dev bench import), one INSERT of a
-- million imported mandates spent 38 s in the GiST index behind
-- one_live_mandate (btree_gist on three text columns and the period),
-- 3 s in the per-row foreign-key check on services and 1.7 s in the
-- regular expressions of the party checks.  The same rules hold here, for
-- the whole statement at once:
--
-- * one_live_mandate becomes a statement trigger that looks for a live
--   mandate overlapping any row the statement wrote (through the btree
--   indexes that start with the principal).  A trigger cannot see another
--   transaction's uncommitted rows, where the exclusion constraint waited
--   for them, so writers take turns through advisory locks first: a
--   statement of a few rows locks each (principal, representative,
--   service) it makes live, together with a shared lock on the whole
--   table's live set; a bulk statement (an import) takes that lock alone.
--   A violation is raised as before: SQLSTATE 23P01, constraint
--   one_live_mandate.
-- * the service reference is checked by the same trigger, set-based, with
--   the rows of the services named locked FOR KEY SHARE (as the foreign
--   key did); a service that mandates name cannot be deleted or renamed.
-- * the party checks compare characters instead of running a regular
--   expression (the same formats).

ALTER TABLE mandates DROP CONSTRAINT one_live_mandate;
-- Token exchange finds a mandate through mandates_by_principal (a
-- principal has a handful); an import pays for every index it writes.
DROP INDEX mandates_by_parties;
ALTER TABLE mandates DROP CONSTRAINT mandates_service_fkey;

ALTER TABLE mandates DROP CONSTRAINT mandates_principal_check,
  ADD CONSTRAINT mandates_principal_check CHECK (
    length(principal) = 13 AND left(principal, 4) = 'bsn:'
    AND ltrim(substr(principal, 5), '0123456789') = ''),
  DROP CONSTRAINT mandates_representative_check,
  ADD CONSTRAINT mandates_representative_check CHECK (
    ((length(representative) = 13 AND left(representative, 4) = 'bsn:')
     OR (length(representative) = 12 AND left(representative, 4) = 'kvk:'))
    AND ltrim(substr(representative, 5), '0123456789') = '');

-- More live rows than this in one statement: the statement locks the
-- whole live set instead of each row's parties (the lock table holds a few
-- thousand locks in all).
CREATE FUNCTION mandates_bulk_rows() RETURNS int8 LANGUAGE sql IMMUTABLE
  AS $$ SELECT 64::int8 $$;

-- The lock a bulk writer of live mandates (an import) holds to its
-- commit; a few rows take its shared side with each row's parties.
CREATE FUNCTION mandates_lock_live() RETURNS void LANGUAGE sql
  AS $$ SELECT pg_advisory_xact_lock(hashtextextended('machtigen-live-mandates', 0)) $$;

-- Merge joins off: for a bulk statement the planner knows how many rows
-- were written but not how they are spread, and sorting both sides of a
-- million rows cost four times a hash join (measured).
CREATE FUNCTION mandates_check_written() RETURNS trigger LANGUAGE plpgsql
  SET enable_mergejoin = off AS $$
DECLARE
  live int8 := 0;
  missing text;
  clash record;
  svc record;
  nestloop text := current_setting('enable_nestloop');
BEGIN
  -- One pass over the written rows: the services they name, how many are live.
  FOR svc IN SELECT w.service, count(*) FILTER (WHERE w.status IN ('active', 'suspended')) AS live
      FROM written w GROUP BY w.service ORDER BY w.service LOOP
    PERFORM 1 FROM services s WHERE s.code = svc.service FOR KEY SHARE;
    IF NOT FOUND THEN
      missing := svc.service;
    END IF;
    live := live + svc.live;
  END LOOP;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'a mandate names a service that does not exist: %', missing
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mandates_service_fkey',
            TABLE = 'mandates';
  END IF;
  IF live = 0 THEN
    RETURN NULL;
  END IF;
  IF live > mandates_bulk_rows() THEN
    PERFORM mandates_lock_live();
    -- Hash join, never a nested loop: with statistics from when the table
    -- was small the planner otherwise scans it once per written row.
    PERFORM set_config('enable_nestloop', 'off', true);
  ELSE
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('machtigen-live-mandates', 0));
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'machtigen-live|' || p.principal || '|' || p.representative || '|' || p.service, 0))
      FROM (SELECT DISTINCT w.principal, w.representative, w.service FROM written w
            WHERE w.status IN ('active', 'suspended') ORDER BY 1, 2, 3) p;
  END IF;
  -- A new statement, planned for this many rows: its snapshot sees what
  -- the writers before us committed.
  EXECUTE 'SELECT w.id AS written_id, m.id AS other_id FROM written w JOIN mandates m'
    ' ON m.principal = w.principal AND m.representative = w.representative'
    ' AND m.service = w.service AND m.id <> w.id'
    ' WHERE w.status IN (''active'', ''suspended'') AND m.status IN (''active'', ''suspended'')'
    ' AND m.valid_from < w.valid_until AND w.valid_from < m.valid_until LIMIT 1' INTO clash;
  PERFORM set_config('enable_nestloop', nestloop, true);
  IF clash.written_id IS NOT NULL THEN
    RAISE EXCEPTION 'conflicting live mandates for the same principal, representative and service'
      USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'one_live_mandate', TABLE = 'mandates',
            DETAIL = format('mandate %s overlaps mandate %s', clash.written_id, clash.other_id);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER mandates_inserted AFTER INSERT ON mandates
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION mandates_check_written();
CREATE TRIGGER mandates_updated AFTER UPDATE ON mandates
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION mandates_check_written();

CREATE FUNCTION services_keep_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.code IS DISTINCT FROM OLD.code THEN
    IF EXISTS (SELECT 1 FROM mandates m WHERE m.service = OLD.code) THEN
      RAISE EXCEPTION 'service % is named by mandates', OLD.code
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'mandates_service_fkey',
              TABLE = 'services';
    END IF;
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER services_keep_referenced BEFORE DELETE OR UPDATE OF code ON services
  FOR EACH ROW EXECUTE FUNCTION services_keep_referenced();

-- The id of a mandate an import creates: time-ordered (UUID version 7
-- layout: the import's start in milliseconds, then the file's line), so
-- that a million new ids go to the end of the primary key instead of all
-- over it.  tail: 32 random bits of the import.
CREATE FUNCTION import_mandate_id(started_ms int8, tail int8, line int8) RETURNS uuid
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT encode(int8send((started_ms << 16) | 28672 | ((line >> 30) & 4095))
         || int8send((-9223372036854775808)::int8 | ((line & 1073741823) << 32)
                     | (tail & 4294967295)), 'hex')::uuid $$;
