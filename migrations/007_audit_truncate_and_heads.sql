-- Append-only, closed where 001 left gaps (a review of 001-006):
-- - TRUNCATE of a month partition itself: statement triggers are not cloned onto partitions, so only
--   `TRUNCATE audit_event` was refused. Every partition now refuses it too, the existing ones here and new ones
--   as audit_ensure_partition creates them.
-- - The chain heads: audit_append updates them, but nothing deletes one; a deleted head made verify skip its
--   chain. DELETE and TRUNCATE on audit_chain_head are refused like on the other tables.
-- Retention still drops whole partitions (DROP TABLE fires no trigger).
CREATE OR REPLACE FUNCTION audit_ensure_partition(p_at timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  v_from timestamptz := audit_month_start(p_at);
  v_to timestamptz := ((v_from AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  v_name text := 'audit_event_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
  IF to_regclass(quote_ident(v_name)) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF audit_event FOR VALUES FROM (%L) TO (%L) WITH (toast_tuple_target = 8160)',
                     v_name, v_from, v_to);
      EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %I
                      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()', v_name);
    EXCEPTION WHEN duplicate_table OR duplicate_object OR unique_violation THEN
      NULL; -- created concurrently by another appender
    END;
  END IF;
  RETURN v_name;
END
$$;

DO $$
DECLARE
  v_partition regclass;
BEGIN
  -- CREATE OR REPLACE dropped the pinned search_path (006): pin it again.
  EXECUTE format('ALTER FUNCTION audit_ensure_partition(timestamptz) SET search_path = %I, pg_temp', current_schema());
  FOR v_partition IN SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'audit_event'::regclass LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t
                   WHERE t.tgrelid = v_partition AND t.tgname = 'audit_partition_no_truncate') THEN
      EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %s
                      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()', v_partition);
    END IF;
  END LOOP;
END
$$;

CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
