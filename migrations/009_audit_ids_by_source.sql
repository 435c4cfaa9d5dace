-- Idempotency by CloudEvents source + id (issue 20): the spec makes only the pair unique, so two producers may
-- use the same id for different events. Until now the id guard was keyed by ce_id alone: an event whose id
-- another source had used was taken for a conflict (different body) and never stored. billing and
-- notifications already key on source + id (eventKey, shared/contracts/cloudevents.ts).
-- - audit_event_ids is rebuilt with the key (ce_id, ce_source), ce_id first so `audit query --id` still probes
--   the key's prefix. It is rebuilt rather than updated: UPDATE of the guard is refused for everybody, and a
--   new table filled in one statement keeps no old row version behind. The source of each stored id is taken
--   from the event row the guard names (its full primary key): what the guard said stays what it says, so a
--   guard row that `audit verify` would report before still is reported after. A guard row that names no
--   event was not written by audit_append or retention (both write ids and events together): the migration
--   stops and names it rather than guess its source.
-- - audit_append_at classifies by (source, id): the same source and id with the same body is a duplicate, with
--   another body a conflict, as before; the same id from another source is a new event.
-- - Retention removes the ids of a dropped partition by (id, source): by id alone it would also remove another
--   source's id for an event in a later partition, which would then be stored again on redelivery.
-- Privileges, triggers and ownership of the guard are those of 001-008: the writer reads it, audit_retention
-- reads and deletes (through its function only), nobody updates, deletes or truncates it.

-- Appenders lock the chain heads first (audit_append_at): waiting for their writes here means no batch is
-- half-way between the old guard and the new one.
LOCK TABLE audit_chain_head IN EXCLUSIVE MODE;
LOCK TABLE audit_event_ids IN ACCESS EXCLUSIVE MODE;

DO $$
DECLARE
  v_orphans bigint;
  v_example text;
BEGIN
  SELECT count(*), min(format('ce_id %s -> %s-%s seq %s', g.ce_id, g.topic, g.kafka_partition, g.seq))
  INTO v_orphans, v_example
  FROM audit_event_ids g
  WHERE NOT EXISTS (SELECT 1 FROM audit_event e
                    WHERE (e.topic, e.kafka_partition, e.seq, e.recorded_at)
                        = (g.topic, g.kafka_partition, g.seq, g.recorded_at));
  IF v_orphans > 0 THEN
    RAISE EXCEPTION '% id guard row(s) name no stored event (e.g. %): the store was changed outside audit_append; investigate (audit verify) before migrating', v_orphans, v_example
      USING ERRCODE = 'data_exception';
  END IF;
END
$$;

CREATE TABLE audit_event_ids_by_source (
  ce_id text NOT NULL,
  ce_source text NOT NULL,
  body_hash bytea NOT NULL,
  topic text NOT NULL,
  kafka_partition integer NOT NULL,
  seq bigint NOT NULL,
  recorded_at timestamptz NOT NULL,
  kafka_offset bigint NOT NULL,
  PRIMARY KEY (ce_id, ce_source)
);
INSERT INTO audit_event_ids_by_source (ce_id, ce_source, body_hash, topic, kafka_partition, seq, recorded_at, kafka_offset)
SELECT g.ce_id, e.ce_source, g.body_hash, g.topic, g.kafka_partition, g.seq, g.recorded_at, g.kafka_offset
FROM audit_event_ids g
JOIN audit_event e ON (e.topic, e.kafka_partition, e.seq, e.recorded_at) = (g.topic, g.kafka_partition, g.seq, g.recorded_at);

DROP TABLE audit_event_ids;
ALTER TABLE audit_event_ids_by_source RENAME TO audit_event_ids;
-- Statistics for the new table now, not at the next autovacuum (002: plans made without them stay cached).
ANALYZE audit_event_ids;
ALTER INDEX audit_event_ids_by_source_pkey RENAME TO audit_event_ids_pkey;
COMMENT ON TABLE audit_event_ids IS
  'Idempotency guard: one row per stored CloudEvents source + id, with the hash of its body and the event''s key.';

REVOKE ALL ON audit_event_ids FROM PUBLIC;
GRANT SELECT ON audit_event_ids TO audit_writer;
GRANT SELECT, DELETE ON audit_event_ids TO audit_retention;

CREATE TRIGGER audit_event_ids_append_only_statement BEFORE UPDATE OR DELETE ON audit_event_ids
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_ids_append_only BEFORE UPDATE OR DELETE ON audit_event_ids
  FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_event_ids_no_truncate BEFORE TRUNCATE ON audit_event_ids
  FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- audit_append_at as in 005, keyed by (source, id).
CREATE OR REPLACE FUNCTION audit_append_at(
  p_topic text[], p_partition integer[], p_offset bigint[], p_timestamp bigint[], p_key bytea[],
  p_headers jsonb[], p_ce jsonb[], p_data jsonb[], p_raw bytea[], p_body_hash bytea[], p_content_hash bytea[],
  p_now timestamptz)
RETURNS TABLE (idx integer, outcome text, seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  v_n integer := coalesce(cardinality(p_topic), 0);
  v_order integer[];     -- batch positions (1-based) in topic, partition, offset order
  v_ids text[];          -- by batch position: ce_id, ce_source, body hash already stored for the pair, and the
  v_sources text[];      -- first position with the pair
  v_stored_bh bytea[];
  v_outcome text[] := array_fill(NULL::text, ARRAY[v_n]);
  v_seq bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_prev_of bytea[] := array_fill(NULL::bytea, ARRAY[v_n]);
  v_hash_of bytea[] := array_fill(NULL::bytea, ARRAY[v_n]);
  v_at_of timestamptz[] := array_fill(NULL::timestamptz, ARRAY[v_n]);
  v_first_k integer[];
  v_k integer;
  v_known bytea;
  v_topic text;
  v_partition integer;
  v_cur_seq bigint;
  v_prev bytea;
  v_at timestamptz;
  v_at_bytes bytea;
  v_appended integer := 0;
  v_conflicts integer := 0;
  v_head_t text[] := '{}';
  v_head_p integer[] := '{}';
  v_head_seq bigint[] := '{}';
  v_head_hash bytea[] := '{}';
  v_head_o bigint[] := '{}';
  v_head_at timestamptz[] := '{}';
  v_last_k integer;
BEGIN
  IF v_n = 0 THEN
    RETURN;
  END IF;
  PERFORM audit_ensure_partition(p_now);
  PERFORM audit_ensure_partition(((audit_month_start(p_now) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC');

  -- Read the ids and the chain order once.
  SELECT array_agg(x.id ORDER BY x.k), array_agg(x.source ORDER BY x.k),
         array_agg(x.k::integer ORDER BY x.t, x.p, x.o, x.k), array_agg(x.first_k::integer ORDER BY x.k)
  INTO v_ids, v_sources, v_order, v_first_k
  FROM (SELECT u.t, u.p, u.o, u.ce ->> 'id' AS id, u.ce ->> 'source' AS source, u.k,
               min(u.k) OVER (PARTITION BY u.ce ->> 'source', u.ce ->> 'id') AS first_k
        FROM unnest(p_topic, p_partition, p_offset, p_ce) WITH ORDINALITY AS u(t, p, o, ce, k)) x;

  -- Chain heads of this batch: created if missing and locked (the upsert takes the row lock) in a fixed
  -- order, so concurrent batches on the same partitions serialise and never deadlock.
  INSERT INTO audit_chain_head AS h (topic, kafka_partition)
  SELECT DISTINCT u.t, u.p FROM unnest(p_topic, p_partition) AS u(t, p) ORDER BY 1, 2
  ON CONFLICT (topic, kafka_partition) DO UPDATE SET last_seq = h.last_seq;

  -- Source + id pairs already stored: one primary-key probe each (enable_seqscan off: see 002).
  SELECT array_agg(g.body_hash ORDER BY u.k) INTO v_stored_bh
  FROM unnest(v_ids, v_sources) WITH ORDINALITY AS u(id, source, k)
  LEFT JOIN LATERAL (SELECT s.body_hash FROM audit_event_ids s WHERE s.ce_id = u.id AND s.ce_source = u.source) AS g ON true;

  -- Classify each record and chain the new ones: one fold per topic-partition, in offset order.
  FOREACH v_k IN ARRAY v_order LOOP
    v_known := coalesce(v_stored_bh[v_k], CASE WHEN v_first_k[v_k] = v_k THEN NULL ELSE p_body_hash[v_first_k[v_k]] END);
    IF v_known IS NOT NULL THEN
      IF v_known = p_body_hash[v_k] THEN
        v_outcome[v_k] := 'duplicate';
      ELSE
        v_outcome[v_k] := 'conflict';
        v_conflicts := v_conflicts + 1;
      END IF;
      CONTINUE;
    END IF;
    IF v_topic IS DISTINCT FROM p_topic[v_k] OR v_partition IS DISTINCT FROM p_partition[v_k] THEN
      IF v_topic IS NOT NULL THEN
        v_head_t := v_head_t || v_topic; v_head_p := v_head_p || v_partition; v_head_seq := v_head_seq || v_cur_seq;
        v_head_hash := v_head_hash || v_prev; v_head_o := v_head_o || p_offset[v_last_k]; v_head_at := v_head_at || v_at;
      END IF;
      v_topic := p_topic[v_k];
      v_partition := p_partition[v_k];
      -- Recording time never goes back along a chain, so retention always drops a prefix of it.
      SELECT h.last_seq, h.last_hash, greatest(p_now, h.last_recorded_at)
      INTO v_cur_seq, v_prev, v_at
      FROM audit_chain_head h WHERE h.topic = v_topic AND h.kafka_partition = v_partition;
      v_at_bytes := int8send((extract(epoch FROM v_at) * 1000000)::bigint);
    END IF;
    v_cur_seq := v_cur_seq + 1;
    v_prev_of[v_k] := v_prev;
    v_prev := sha256(v_prev || p_content_hash[v_k] || int8send(v_cur_seq) || v_at_bytes);
    v_outcome[v_k] := 'appended';
    v_seq[v_k] := v_cur_seq;
    v_hash_of[v_k] := v_prev;
    v_at_of[v_k] := v_at;
    v_last_k := v_k;
    v_appended := v_appended + 1;
  END LOOP;

  IF v_appended > 0 THEN
    v_head_t := v_head_t || v_topic; v_head_p := v_head_p || v_partition; v_head_seq := v_head_seq || v_cur_seq;
    v_head_hash := v_head_hash || v_prev; v_head_o := v_head_o || p_offset[v_last_k]; v_head_at := v_head_at || v_at;

    INSERT INTO audit_event (recorded_at, topic, kafka_partition, kafka_offset, seq, kafka_timestamp, kafka_key,
                             headers, ce, data, raw_value, ce_id, ce_type, ce_source, ce_subject, ce_time,
                             correlation_id, body_hash, content_hash, prev_hash, row_hash)
    SELECT u.at, u.t, u.p, u.o, u.seq, u.ts, u.k, u.h, u.ce, u.d, u.r, u.ce ->> 'id', u.ce ->> 'type',
           u.ce ->> 'source', u.ce ->> 'subject', (u.ce ->> 'time')::timestamptz, u.ce ->> 'correlationid',
           u.bh, u.ch, u.prev, u.hash
    FROM unnest(p_topic, p_partition, p_offset, p_timestamp, p_key, p_headers, p_ce, p_data, p_raw, p_body_hash,
                p_content_hash, v_seq, v_prev_of, v_hash_of, v_at_of)
      AS u(t, p, o, ts, k, h, ce, d, r, bh, ch, seq, prev, hash, at)
    WHERE u.seq IS NOT NULL;

    -- Under the chain head locks no other batch of these partitions can claim these ids, but the same source
    -- and id may arrive on another partition at the same moment: then this batch fails and is retried. A plain
    -- INSERT (the probe above already found every stored pair) costs one index descent per id.
    BEGIN
      INSERT INTO audit_event_ids (ce_id, ce_source, body_hash, topic, kafka_partition, seq, recorded_at, kafka_offset)
      SELECT u.id, u.source, u.bh, u.t, u.p, u.seq, u.at, u.o
      FROM unnest(v_ids, v_sources, p_body_hash, p_topic, p_partition, p_offset, v_seq, v_at_of)
        AS u(id, source, bh, t, p, o, seq, at)
      WHERE u.seq IS NOT NULL;
    EXCEPTION WHEN unique_violation THEN
      RAISE EXCEPTION 'an event id of this batch was stored concurrently by another transaction; retry the batch'
        USING ERRCODE = 'serialization_failure';
    END;

    UPDATE audit_chain_head h
    SET last_seq = u.seq, last_hash = u.hash, last_offset = u.o, last_recorded_at = u.at
    FROM unnest(v_head_t, v_head_p, v_head_seq, v_head_hash, v_head_o, v_head_at)
      AS u(topic, kafka_partition, seq, hash, o, at)
    WHERE h.topic = u.topic AND h.kafka_partition = u.kafka_partition;
  END IF;

  IF v_conflicts > 0 THEN
    INSERT INTO audit_conflicts (ce_id, stored_body_hash, body_hash, topic, kafka_partition, kafka_offset,
                                 kafka_timestamp, kafka_key, headers, ce, data, raw_value)
    SELECT u.id, coalesce(v_stored_bh[u.n], p_body_hash[v_first_k[u.n]]), u.bh, u.t, u.p, u.o, u.ts, u.k, u.h, u.ce, u.d, u.r
    FROM unnest(v_ids, p_body_hash, p_topic, p_partition, p_offset, p_timestamp, p_key, p_headers, p_ce, p_data, p_raw, v_outcome)
      WITH ORDINALITY AS u(id, bh, t, p, o, ts, k, h, ce, d, r, outcome, n)
    WHERE u.outcome = 'conflict'
    ON CONFLICT DO NOTHING;
  END IF;

  RETURN QUERY
  SELECT (u.k - 1)::integer, u.outcome, u.seq
  FROM unnest(v_outcome, v_seq) WITH ORDINALITY AS u(outcome, seq, k);
END
$$;

-- Retention as in 008, deleting the ids of a dropped partition by (id, source).
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
    EXECUTE format('DELETE FROM audit_event_ids g USING %I e WHERE g.ce_id = e.ce_id AND g.ce_source = e.ce_source',
                   v_part.name);
    EXECUTE format('SELECT count(*) FROM %I', v_part.name) INTO v_rows;
    EXECUTE format('DROP TABLE %I', v_part.name);
    dropped_partition := v_part.name;
    anchored_chains := v_anchored;
    dropped_rows := v_rows;
    RETURN NEXT;
  END LOOP;
END
$$;


DO $$
BEGIN
  -- CREATE OR REPLACE drops the pinned settings (006, 008): pin them again. Owner and grants stay.
  EXECUTE format('ALTER FUNCTION audit_append_at(text[], integer[], bigint[], bigint[], bytea[], jsonb[], jsonb[], jsonb[], bytea[], bytea[], bytea[], timestamptz) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET search_path = %I, pg_temp', current_schema());
END
$$;
ALTER FUNCTION audit_drop_partitions_before(timestamptz) SET timezone = 'UTC';
