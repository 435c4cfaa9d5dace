-- Audit event store: append-only, idempotent by CloudEvents id, tamper-evident (hash chain per Kafka
-- topic-partition), partitioned by month of recording time, retention by dropping whole month partitions.
--
-- Runs on PostgreSQL >= 13 (Aurora PostgreSQL) and on PGlite (PG 18 in wasm): plain SQL and PL/pgSQL, no
-- extensions. Hashes use the built-in sha256(bytea) (PG >= 11); content hashes are computed by the function
-- in TypeScript over a canonical JSON (functions/audit-append/audit-record.ts) and recomputed by `audit verify`.
--
-- Why the partition key is the recording time (recorded_at) and not the event time: recording time only grows
-- along a chain (the append function clamps it to the chain head), so dropping the oldest month removes a
-- prefix of every chain, and one anchor per chain (the last hash of the dropped prefix) keeps verification
-- working. Late or replayed events never need a partition that retention has already dropped.
--
-- Why a separate guard table for idempotency: a unique index on a partitioned table must include the partition
-- key, so UNIQUE (ce_id) on audit_event is impossible. audit_event_ids (not partitioned) holds one row per
-- ce_id with the body hash; retention deletes the ids of the events it drops, in the same transaction.

-- The function's database role: granted to the function's login role at provisioning time
-- (GRANT audit_writer TO <login role>). Roles are cluster-wide, so creating it is idempotent.
DO $$
BEGIN
  CREATE ROLE audit_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;

-- Parses an RFC 3339 timestamp (CloudEvents `time`). RFC 3339 requires an explicit offset, so the result does
-- not depend on the session TimeZone: that is what makes IMMUTABLE honest here. Anything else gives NULL.
CREATE FUNCTION audit_rfc3339(p_text text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_text ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$'
    THEN p_text::timestamptz
  END
$$;

CREATE TABLE audit_chain_head (
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  last_seq bigint NOT NULL DEFAULT 0,
  last_hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
  last_offset bigint,
  last_recorded_at timestamptz,
  PRIMARY KEY (topic, kafka_partition)
);
COMMENT ON TABLE audit_chain_head IS
  'Head of each topic-partition hash chain; locked FOR UPDATE by audit_append for the whole batch transaction.';

CREATE TABLE audit_chain_anchor (
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  up_to_seq bigint NOT NULL,
  last_hash bytea NOT NULL,
  last_recorded_at timestamptz NOT NULL,
  dropped_partition text NOT NULL,
  dropped_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, kafka_partition, up_to_seq)
);
COMMENT ON TABLE audit_chain_anchor IS
  'Last row hash of each chain prefix removed by retention: verification of the remaining rows starts here.';

CREATE TABLE audit_event (
  recorded_at timestamptz NOT NULL,
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  kafka_offset bigint NOT NULL,
  seq bigint NOT NULL,
  kafka_timestamp bigint NOT NULL,
  kafka_key bytea,
  headers jsonb NOT NULL,
  ce jsonb NOT NULL,
  data jsonb,
  raw_value bytea,
  -- Query columns, copied from ce by audit_append; `audit verify` checks they still equal the hashed ce.
  ce_id text NOT NULL,
  ce_type text NOT NULL,
  ce_source text NOT NULL,
  ce_subject text,
  ce_time timestamptz,
  correlation_id text,
  body_hash bytea NOT NULL,
  content_hash bytea NOT NULL,
  prev_hash bytea NOT NULL,
  row_hash bytea NOT NULL,
  PRIMARY KEY (topic, kafka_partition, seq, recorded_at)
) PARTITION BY RANGE (recorded_at);
COMMENT ON TABLE audit_event IS
  'Every compliance-critical event, append-only. row_hash = sha256(prev_hash || content_hash || int8(seq) || int8(recorded_at in microseconds)).';

-- Lookups by ce_id go through audit_event_ids, which holds the full primary key of the event row.
CREATE INDEX audit_event_correlation_id ON audit_event (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX audit_event_type_time ON audit_event (ce_type, ce_time);
CREATE INDEX audit_event_subject_time ON audit_event (ce_subject, ce_time) WHERE ce_subject IS NOT NULL;
CREATE INDEX audit_event_time ON audit_event (ce_time);

CREATE TABLE audit_event_ids (
  ce_id text PRIMARY KEY,
  body_hash bytea NOT NULL,
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  seq bigint NOT NULL,
  recorded_at timestamptz NOT NULL,
  kafka_offset bigint NOT NULL
);
COMMENT ON TABLE audit_event_ids IS 'Idempotency guard: one row per stored CloudEvents id, with the hash of its body.';

CREATE TABLE audit_conflicts (
  conflict_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ce_id text NOT NULL,
  stored_body_hash bytea NOT NULL,
  body_hash bytea NOT NULL,
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  kafka_offset bigint NOT NULL,
  kafka_timestamp bigint NOT NULL,
  kafka_key bytea,
  headers jsonb NOT NULL,
  ce jsonb NOT NULL,
  data jsonb,
  raw_value bytea,
  detected_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (ce_id, body_hash, topic, kafka_partition, kafka_offset)
);
COMMENT ON TABLE audit_conflicts IS
  'Deliveries whose CloudEvents id was already stored with a different body: kept whole for investigation.';

-- Append-only: UPDATE, DELETE and TRUNCATE are refused for everybody, the owner included. Retention drops
-- whole partitions (no row trigger fires) and deletes the ids of dropped events from the guard table, which it
-- announces with a transaction-local setting only audit_drop_partitions_before sets.
CREATE FUNCTION audit_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_event_ids'
     AND current_setting('audit.retention_in_progress', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit store is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Row triggers are cloned onto every partition (so direct access to a partition is covered too); statement
-- triggers refuse the statement even when it matches no row.
CREATE TRIGGER audit_event_append_only_statement BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_ids_append_only_statement BEFORE UPDATE OR DELETE ON audit_event_ids
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_conflicts_append_only_statement BEFORE UPDATE OR DELETE ON audit_conflicts
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_chain_anchor_append_only_statement BEFORE UPDATE OR DELETE ON audit_chain_anchor
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
  FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_ids_append_only BEFORE UPDATE OR DELETE ON audit_event_ids
  FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_ids_no_truncate BEFORE TRUNCATE ON audit_event_ids
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_conflicts_append_only BEFORE UPDATE OR DELETE ON audit_conflicts
  FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_conflicts_no_truncate BEFORE TRUNCATE ON audit_conflicts
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_chain_anchor_append_only BEFORE UPDATE OR DELETE ON audit_chain_anchor
  FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_chain_anchor_no_truncate BEFORE TRUNCATE ON audit_chain_anchor
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- First instant (UTC) of the month holding p_at.
CREATE FUNCTION audit_month_start(p_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- Creates the month partition holding p_at if it does not exist yet (safe under concurrency).
CREATE FUNCTION audit_ensure_partition(p_at timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_from timestamptz := audit_month_start(p_at);
  v_to timestamptz := ((v_from AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  v_name text := 'audit_event_' || to_char(v_from AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
  IF to_regclass(quote_ident(v_name)) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF audit_event FOR VALUES FROM (%L) TO (%L)',
                     v_name, v_from, v_to);
    EXCEPTION WHEN duplicate_table OR unique_violation THEN
      NULL; -- created concurrently by another appender
    END;
  END IF;
  RETURN v_name;
END
$$;

-- Appends a batch in one call (one round trip, one transaction). p_records is a JSON array; element i holds
-- t (topic), p (partition), o (offset), ts (Kafka timestamp, ms), k (key, base64 or null), h (headers), ce
-- (CloudEvents attributes), d (data or null), r (raw value, base64 or null), bh and ch (body and content
-- hashes, hex). Returns one row per element: outcome 'appended' (with its chain seq), 'duplicate' (same id,
-- same body: already stored) or 'conflict' (same id, different body: recorded in audit_conflicts).
CREATE FUNCTION audit_append_at(p_records jsonb, p_now timestamptz)
RETURNS TABLE (idx integer, outcome text, seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_n integer := coalesce(jsonb_array_length(p_records), 0);
  v_order integer[];     -- element numbers (1-based) in topic, partition, offset order
  v_ids text[];          -- by element number
  v_bh bytea[];
  v_first boolean[];     -- first element of the batch with its id
  v_first_bh bytea[];    -- body hash of that first element
  v_ex_ids text[];       -- ids of this batch already stored, and their body hashes
  v_ex_bh bytea[];
  v_outcome text[] := array_fill(NULL::text, ARRAY[v_n]);
  v_seq_of bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_conflicts integer[] := '{}';
  v_k integer;
  v_pos integer;
  v_stored_bh bytea;
  v_e jsonb;
  v_topic text;
  v_partition integer;
  v_seq bigint;
  v_prev bytea;
  v_at timestamptz;
  v_at_bytes bytea;
  v_out_k integer[] := '{}';
  v_out_seq bigint[] := '{}';
  v_out_prev bytea[] := '{}';
  v_out_hash bytea[] := '{}';
  v_out_at timestamptz[] := '{}';
  v_head_t text[] := '{}';
  v_head_p integer[] := '{}';
  v_head_seq bigint[] := '{}';
  v_head_hash bytea[] := '{}';
  v_head_o bigint[] := '{}';
  v_head_at timestamptz[] := '{}';
  v_claimed integer;
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  PERFORM audit_ensure_partition(p_now);
  PERFORM audit_ensure_partition(((audit_month_start(p_now) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC');

  -- Chain heads of this batch: created if missing and locked (the upsert takes the row lock) in a fixed
  -- order, so concurrent batches on the same partitions serialise and never deadlock.
  INSERT INTO audit_chain_head AS h (topic, kafka_partition)
  SELECT DISTINCT e ->> 't', (e ->> 'p')::integer FROM jsonb_array_elements(p_records) AS e ORDER BY 1, 2
  ON CONFLICT (topic, kafka_partition) DO UPDATE SET last_seq = h.last_seq;

  -- Read the batch once.
  SELECT array_agg(x.ce ->> 'id' ORDER BY x.n), array_agg(decode(x.bh, 'hex') ORDER BY x.n),
         array_agg(x.first ORDER BY x.n), array_agg(x.first_bh ORDER BY x.n),
         array_agg(x.n::integer ORDER BY x.t, x.p, x.o, x.n)
  INTO v_ids, v_bh, v_first, v_first_bh, v_order
  FROM (
    SELECT r.*, row_number() OVER w = 1 AS first, decode(first_value(r.bh) OVER w, 'hex') AS first_bh
    FROM ROWS FROM (jsonb_to_recordset(p_records) AS (t text, p integer, o bigint, ce jsonb, bh text))
      WITH ORDINALITY AS r(t, p, o, ce, bh, n)
    WINDOW w AS (PARTITION BY r.ce ->> 'id' ORDER BY r.n)
  ) AS x;

  SELECT array_agg(g.ce_id), array_agg(g.body_hash) INTO v_ex_ids, v_ex_bh
  FROM audit_event_ids g WHERE g.ce_id = ANY (v_ids);

  -- Classify each element and chain the new ones: one fold per topic-partition, in offset order.
  FOREACH v_k IN ARRAY v_order LOOP
    v_pos := CASE WHEN v_ex_ids IS NULL THEN NULL ELSE array_position(v_ex_ids, v_ids[v_k]) END;
    IF v_pos IS NOT NULL OR NOT v_first[v_k] THEN
      v_stored_bh := CASE WHEN v_pos IS NOT NULL THEN v_ex_bh[v_pos] ELSE v_first_bh[v_k] END;
      IF v_stored_bh = v_bh[v_k] THEN
        v_outcome[v_k] := 'duplicate';
      ELSE
        v_outcome[v_k] := 'conflict';
        v_conflicts := v_conflicts || v_k;
      END IF;
      CONTINUE;
    END IF;
    v_e := p_records -> (v_k - 1);
    IF v_topic IS DISTINCT FROM v_e ->> 't' OR v_partition IS DISTINCT FROM (v_e ->> 'p')::integer THEN
      IF v_topic IS NOT NULL THEN
        v_head_t := v_head_t || v_topic;
        v_head_p := v_head_p || v_partition;
        v_head_seq := v_head_seq || v_seq;
        v_head_hash := v_head_hash || v_prev;
        v_head_o := v_head_o || (p_records -> (v_out_k[cardinality(v_out_k)] - 1) ->> 'o')::bigint;
        v_head_at := v_head_at || v_at;
      END IF;
      v_topic := v_e ->> 't';
      v_partition := (v_e ->> 'p')::integer;
      -- Recording time never goes back along a chain, so retention always drops a prefix of it.
      SELECT h.last_seq, h.last_hash, greatest(p_now, h.last_recorded_at)
      INTO v_seq, v_prev, v_at
      FROM audit_chain_head h WHERE h.topic = v_topic AND h.kafka_partition = v_partition;
      v_at_bytes := int8send((extract(epoch FROM v_at) * 1000000)::bigint);
    END IF;
    v_seq := v_seq + 1;
    v_out_prev := v_out_prev || v_prev;
    v_prev := sha256(v_prev || decode(v_e ->> 'ch', 'hex') || int8send(v_seq) || v_at_bytes);
    v_outcome[v_k] := 'appended';
    v_seq_of[v_k] := v_seq;
    v_out_k := v_out_k || v_k;
    v_out_seq := v_out_seq || v_seq;
    v_out_hash := v_out_hash || v_prev;
    v_out_at := v_out_at || v_at;
  END LOOP;

  IF v_topic IS NOT NULL THEN
    v_head_t := v_head_t || v_topic;
    v_head_p := v_head_p || v_partition;
    v_head_seq := v_head_seq || v_seq;
    v_head_hash := v_head_hash || v_prev;
    v_head_o := v_head_o || (p_records -> (v_out_k[cardinality(v_out_k)] - 1) ->> 'o')::bigint;
    v_head_at := v_head_at || v_at;

    INSERT INTO audit_event (recorded_at, topic, kafka_partition, kafka_offset, seq, kafka_timestamp, kafka_key,
                             headers, ce, data, raw_value, ce_id, ce_type, ce_source, ce_subject, ce_time,
                             correlation_id, body_hash, content_hash, prev_hash, row_hash)
    SELECT u.at, e ->> 't', (e ->> 'p')::integer, (e ->> 'o')::bigint, u.seq, (e ->> 'ts')::bigint,
           decode(e ->> 'k', 'base64'), e -> 'h', e -> 'ce', nullif(e -> 'd', 'null'::jsonb),
           decode(e ->> 'r', 'base64'), e -> 'ce' ->> 'id', e -> 'ce' ->> 'type', e -> 'ce' ->> 'source',
           e -> 'ce' ->> 'subject', (e -> 'ce' ->> 'time')::timestamptz, e -> 'ce' ->> 'correlationid',
           v_bh[u.k], decode(e ->> 'ch', 'hex'), u.prev, u.hash
    FROM unnest(v_out_k, v_out_seq, v_out_prev, v_out_hash, v_out_at) AS u(k, seq, prev, hash, at)
    CROSS JOIN LATERAL (SELECT p_records -> (u.k - 1) AS e) AS x;

    -- Claim the ids. Under the chain head locks no other batch of these partitions can claim them, but the
    -- same id may arrive on another partition at the same moment: then this batch fails and is retried.
    INSERT INTO audit_event_ids (ce_id, body_hash, topic, kafka_partition, seq, recorded_at, kafka_offset)
    SELECT v_ids[u.k], v_bh[u.k], e ->> 't', (e ->> 'p')::integer, u.seq, u.at, (e ->> 'o')::bigint
    FROM unnest(v_out_k, v_out_seq, v_out_at) AS u(k, seq, at)
    CROSS JOIN LATERAL (SELECT p_records -> (u.k - 1) AS e) AS x
    ON CONFLICT (ce_id) DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed < cardinality(v_out_k) THEN
      RAISE EXCEPTION 'an event id of this batch was stored concurrently by another transaction; retry the batch'
        USING ERRCODE = 'serialization_failure';
    END IF;

    UPDATE audit_chain_head h
    SET last_seq = u.seq, last_hash = u.hash, last_offset = u.o, last_recorded_at = u.at
    FROM unnest(v_head_t, v_head_p, v_head_seq, v_head_hash, v_head_o, v_head_at) AS u(topic, kafka_partition, seq, hash, o, at)
    WHERE h.topic = u.topic AND h.kafka_partition = u.kafka_partition;
  END IF;

  IF cardinality(v_conflicts) > 0 THEN
    INSERT INTO audit_conflicts (ce_id, stored_body_hash, body_hash, topic, kafka_partition, kafka_offset,
                                 kafka_timestamp, kafka_key, headers, ce, data, raw_value)
    SELECT v_ids[c.k], coalesce(g.body_hash, v_first_bh[c.k]), v_bh[c.k], e ->> 't', (e ->> 'p')::integer,
           (e ->> 'o')::bigint, (e ->> 'ts')::bigint, decode(e ->> 'k', 'base64'), e -> 'h', e -> 'ce',
           nullif(e -> 'd', 'null'::jsonb), decode(e ->> 'r', 'base64')
    FROM unnest(v_conflicts) AS c(k)
    CROSS JOIN LATERAL (SELECT p_records -> (c.k - 1) AS e) AS x
    LEFT JOIN audit_event_ids g ON g.ce_id = v_ids[c.k]
    ON CONFLICT DO NOTHING;
  END IF;

  RETURN QUERY
  SELECT (u.k - 1)::integer, u.outcome, u.seq
  FROM unnest(v_outcome, v_seq_of) WITH ORDINALITY AS u(outcome, seq, k);
END
$$;

-- What the function calls: the recording time is the database's clock, not the caller's.
CREATE FUNCTION audit_append(p_records jsonb)
RETURNS TABLE (idx integer, outcome text, seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
  SELECT * FROM audit_append_at(p_records, now())
$$;

-- Retention: drops every month partition that ends at or before p_cutoff, which must be at least 90 days
-- ago. For each chain it keeps an anchor (the last hash of the dropped prefix) and removes the dropped
-- events' ids from the guard table, all in the caller's transaction.
CREATE FUNCTION audit_drop_partitions_before(p_cutoff timestamptz)
RETURNS TABLE (dropped_partition text, anchored_chains integer, dropped_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  v_part record;
  v_anchored integer;
  v_rows bigint;
BEGIN
  IF p_cutoff > now() - interval '90 days' THEN
    RAISE EXCEPTION 'audit retention is at least 90 days: cutoff % is later than %', p_cutoff,
      now() - interval '90 days' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('audit.retention_in_progress', 'on', true);
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
  PERFORM set_config('audit.retention_in_progress', 'off', true);
END
$$;

-- Partitions for this month and the next two exist from the start; audit_append creates later ones.
SELECT audit_ensure_partition(((audit_month_start(now()) AT TIME ZONE 'UTC') + make_interval(months => m)) AT TIME ZONE 'UTC')
FROM generate_series(0, 2) AS m;

-- Privileges: functions are executable by PUBLIC by default, so take that back first.
REVOKE ALL ON FUNCTION audit_append_at(jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_append(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_ensure_partition(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_drop_partitions_before(timestamptz) FROM PUBLIC;
REVOKE ALL ON audit_event, audit_event_ids, audit_conflicts, audit_chain_head, audit_chain_anchor FROM PUBLIC;

GRANT EXECUTE ON FUNCTION audit_append(jsonb) TO audit_writer;
GRANT INSERT, SELECT ON audit_event, audit_event_ids, audit_conflicts TO audit_writer;
GRANT SELECT ON audit_chain_head, audit_chain_anchor TO audit_writer;
