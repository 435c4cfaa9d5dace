-- Least privilege around the store (issue 21), after 001-007:
-- - audit_append_login: the login of audit-append, a member of audit_writer and nothing else (NOINHERIT: by
--   itself it holds no privilege; database.ts starts every session with role=audit_writer). No superuser,
--   CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, and no other membership: SET ROLE reaches audit_writer
--   only, and SET ROLE NONE / RESET ROLE falls back to a role with even less. Until now the function logged in
--   as the master user and RESET ROLE made it the owner. Its password is not here: the deploy generates it in
--   the function's own secret and `audit set-login-password` sets it (a SCRAM verifier, never the password).
-- - audit_digest_login: the login of audit-digest (the scheduled digest writer), through audit_reader, which
--   reads the chain heads and nothing else.
-- - Retention: audit_drop_partitions_before is owned by audit_retention, a NOLOGIN role no login is a member
--   of; the month partitions are its own too (DROP TABLE needs the table's owner), so dropping one goes
--   through the function only. The delete trigger on the id guard lets audit_retention through (inside the
--   function, current_user is the function's owner), not a session setting: `SET audit.retention_in_progress
--   = on` passed the trigger in any session until now. The database owner stays a member of audit_retention
--   (it hands new partitions over to it); what the owner can do is detected by the external digests, not
--   prevented (functions/audit-append/README.md, threat model).
DO $$
BEGIN
  CREATE ROLE audit_append_login LOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
DO $$
BEGIN
  CREATE ROLE audit_digest_login LOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
DO $$
BEGIN
  CREATE ROLE audit_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
DO $$
BEGIN
  CREATE ROLE audit_retention NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;

-- Roles are cluster-wide and may predate this migration: check their attributes, and change only what differs
-- (Aurora's master user is no superuser: naming SUPERUSER, REPLICATION or BYPASSRLS in ALTER ROLE at all is
-- refused to it, so a role that holds one of those is an error to fix by hand, not something to alter here).
DO $$
DECLARE
  r record;
  v_login boolean;
  v_inherit boolean;
BEGIN
  FOR r IN
    SELECT * FROM pg_roles
    WHERE rolname IN ('audit_append_login', 'audit_digest_login', 'audit_writer', 'audit_reader', 'audit_retention')
  LOOP
    IF r.rolsuper OR r.rolreplication OR r.rolbypassrls THEN
      RAISE EXCEPTION 'role % has SUPERUSER, REPLICATION or BYPASSRLS: a superuser must remove them first', r.rolname;
    END IF;
    v_login := r.rolname IN ('audit_append_login', 'audit_digest_login');
    v_inherit := r.rolname IN ('audit_writer', 'audit_reader');
    IF r.rolcreatedb OR r.rolcreaterole OR r.rolcanlogin <> v_login OR r.rolinherit <> v_inherit THEN
      EXECUTE format('ALTER ROLE %I NOCREATEDB NOCREATEROLE %s %s', r.rolname,
                     CASE WHEN v_login THEN 'LOGIN' ELSE 'NOLOGIN' END,
                     CASE WHEN v_inherit THEN 'INHERIT' ELSE 'NOINHERIT' END);
    END IF;
  END LOOP;
END
$$;

-- Each login is a member of its one role and of nothing else; the two NOLOGIN roles of the logins are members
-- of nothing at all.
DO $$
DECLARE
  v_grant record;
BEGIN
  FOR v_grant IN
    SELECT r.rolname AS granted, m.rolname AS member
    FROM pg_auth_members a
    JOIN pg_roles r ON r.oid = a.roleid
    JOIN pg_roles m ON m.oid = a.member
    WHERE (m.rolname = 'audit_append_login' AND r.rolname <> 'audit_writer')
       OR (m.rolname = 'audit_digest_login' AND r.rolname <> 'audit_reader')
       OR m.rolname IN ('audit_writer', 'audit_reader', 'audit_retention')
  LOOP
    EXECUTE format('REVOKE %I FROM %I CASCADE', v_grant.granted, v_grant.member);
  END LOOP;
END
$$;
GRANT audit_writer TO audit_append_login;
GRANT audit_reader TO audit_digest_login;
GRANT SELECT ON audit_chain_head TO audit_reader;

-- Retention.
GRANT audit_retention TO CURRENT_USER;
GRANT SELECT, DELETE ON audit_event_ids TO audit_retention;
GRANT SELECT, INSERT ON audit_chain_anchor TO audit_retention;
-- ALTER ... OWNER TO needs the new owner to hold CREATE on the schema (006 took it from PUBLIC). Only the
-- retention function runs as audit_retention.
DO $$
BEGIN
  EXECUTE format('GRANT CREATE ON SCHEMA %I TO audit_retention', current_schema());
END
$$;

CREATE OR REPLACE FUNCTION audit_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Retention's own DELETE of the ids of a dropped partition: it runs as the function's owner.
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_event_ids' AND current_user = 'audit_retention' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit store is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION audit_drop_partitions_before(p_cutoff timestamptz)
RETURNS TABLE (dropped_partition text, anchored_chains integer, dropped_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  v_part record;
  v_anchored integer;
  v_rows bigint;
BEGIN
  IF p_cutoff > now() - interval '90 days' THEN
    RAISE EXCEPTION 'audit retention is at least 90 days: cutoff % is later than %', p_cutoff,
      now() - interval '90 days' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR v_part IN
    SELECT c.relname::text AS name,
           ((to_date(substr(c.relname, 13), 'YYYY_MM')::timestamp + interval '1 month') AT TIME ZONE 'UTC') AS upper_bound
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit_event'::regclass AND c.relname ~ '^audit_event_\d{4}_\d{2}$'
    ORDER BY c.relname
  LOOP
    CONTINUE WHEN v_part.upper_bound > p_cutoff;
    EXECUTE format(
      'INSERT INTO audit_chain_anchor (topic, kafka_partition, up_to_seq, last_hash, last_recorded_at, dropped_partition)
       SELECT DISTINCT ON (topic, kafka_partition) topic, kafka_partition, seq, row_hash, recorded_at, %L
       FROM %I ORDER BY topic, kafka_partition, seq DESC', v_part.name, v_part.name);
    GET DIAGNOSTICS v_anchored = ROW_COUNT;
    EXECUTE format('DELETE FROM audit_event_ids g USING %I e WHERE g.ce_id = e.ce_id', v_part.name);
    EXECUTE format('SELECT count(*) FROM %I', v_part.name) INTO v_rows;
    EXECUTE format('DROP TABLE %I', v_part.name);
    dropped_partition := v_part.name;
    anchored_chains := v_anchored;
    dropped_rows := v_rows;
    RETURN NEXT;
  END LOOP;
END
$$;

-- New month partitions belong to audit_retention from the start.
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
      EXECUTE format('ALTER TABLE %I OWNER TO audit_retention', v_name);
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
  -- CREATE OR REPLACE drops the pinned settings (006): pin them again.
  EXECUTE format('ALTER FUNCTION audit_ensure_partition(timestamptz) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET search_path = %I, pg_temp', current_schema());
  FOR v_partition IN SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'audit_event'::regclass LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO audit_retention', v_partition);
  END LOOP;
END
$$;
ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET timezone = 'UTC';
ALTER FUNCTION audit_drop_partitions_before(timestamptz) OWNER TO audit_retention;
REVOKE ALL ON FUNCTION audit_drop_partitions_before(timestamptz) FROM PUBLIC;
-- Whoever applies the migrations (the operator, with the master secret) runs retention.
GRANT EXECUTE ON FUNCTION audit_drop_partitions_before(timestamptz) TO CURRENT_USER;
