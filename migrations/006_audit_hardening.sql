-- Hardening after a review of 001-005; the append path and its results are unchanged.
-- - audit_writer keeps SELECT, and EXECUTE on audit_append, but loses INSERT on the event, id and conflict tables.
--   audit_append is SECURITY DEFINER and needs none of it. With it the writer could go around the function:
--   rows on a chain no head names, which verify never walks; or an id row planted for a future event, so that
--   the real event is taken for a duplicate and never stored.
-- - Every SECURITY DEFINER function gets search_path pinned with pg_temp last. `SET search_path FROM CURRENT` left
--   the session's temporary schema implicitly first, so a temporary table named like a store table (say
--   audit_event_ids) shadowed it inside the function: a redelivered event was appended again.
-- - Nobody but the owner creates objects in the schema (PostgreSQL 15 made that the default; 13 and 14 did not,
--   and a function there could resolve to one of the caller's).
-- - Retention's "at least 90 days" is checked in UTC. In a session time zone that changes to daylight saving
--   inside the window, now() - interval '90 days' is an hour short of 90 days.
REVOKE INSERT ON audit_event, audit_event_ids, audit_conflicts FROM audit_writer;

DO $$
DECLARE
  v_function regprocedure;
BEGIN
  FOR v_function IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.prosecdef AND p.pronamespace = current_schema()::regnamespace
  LOOP
    -- pg_catalog stays implicitly first; the schema is the one objects are created in (partitions).
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', v_function, current_schema());
  END LOOP;
  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
END
$$;

ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET timezone = 'UTC';
