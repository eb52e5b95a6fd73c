-- Version 7: an import's own checks stand for the live rule; its trail is
-- written beside its merge.
--
-- An import checks the live rule (at most one live mandate per principal,
-- representative and service at any instant) itself, set-based, for every
-- row it makes live: against the database and within its file
-- (service/db/imports_db_checks.c).  Until now the statement trigger of
-- version 5 then checked the merge's rows once more: a hash join of every
-- written row with every live mandate, 2-3 s of a million-row import with
-- two million mandates in the table (pg_stat_user_functions), and growing
-- with the table.
--
-- An import now takes the live mandates' lock (mandates_lock_live) before
-- its checks and holds it to its commit, so nothing another writer makes
-- live can come between its checks and its writes; for its merge
-- statements only it sets machtigen.live_rule to 'checked-by-import'
-- (transaction-local), and the trigger then keeps the lock and the
-- services' check but skips the join.  Every other writer, and an import
-- statement of a few rows, is checked as before.

CREATE OR REPLACE FUNCTION mandates_check_written() RETURNS trigger LANGUAGE plpgsql
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
    IF current_setting('machtigen.live_rule', true) = 'checked-by-import' THEN
      RETURN NULL;
    END IF;
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

-- The changes of an import are now written while its merge runs, on a
-- connection of their own, in the merge's order (service/db/
-- imports_db_audit.c), which is random by principal.  A btree on the
-- principal took those writes at 9.7 s for a million, a hash index at
-- 3.8 s (measured with COPY); a citizen's activity finds their handful of
-- changes by equality and sorts them.
DROP INDEX import_changes_by_principal;
CREATE INDEX import_changes_by_principal ON import_changes USING hash (principal);
