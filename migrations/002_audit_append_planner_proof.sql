-- audit_append_at, second version: the same contract and behaviour as in 001, with plans that stay fast as the
-- store grows. 001 looked up already-stored ids with `ce_id = ANY (array)`, which the planner turned into a
-- sequential scan of audit_event_ids while the table had no statistics yet (a new partition, a new database);
-- the plan stayed cached in the session and the append slowed with every batch. Now every lookup is one
-- primary-key probe per id (LATERAL, and enable_seqscan off for the function: the planner's cost model
-- prefers a hash join over the whole table to 100 probes well before that is true), and the batch is read once
-- into typed arrays (jsonb_to_recordset) instead of extracting fields element by element.
CREATE OR REPLACE FUNCTION audit_append_at(p_records jsonb, p_now timestamptz)
RETURNS TABLE (idx integer, outcome text, seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT SET enable_seqscan = off AS $$
DECLARE
  v_n integer := coalesce(jsonb_array_length(p_records), 0);
  v_order integer[];     -- element numbers (1-based) in topic, partition, offset order
  v_t text[];            -- by element number: topic, partition, offset, id, body and content hashes
  v_p integer[];
  v_o bigint[];
  v_ids text[];
  v_bh bytea[];
  v_ch bytea[];
  v_first boolean[];     -- first element of the batch with its id
  v_first_bh bytea[];    -- body hash of that first element
  v_stored_bh bytea[];   -- body hash already stored for the element's id, or null
  v_outcome text[] := array_fill(NULL::text, ARRAY[v_n]);
  v_seq_of bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
  v_conflicts integer[] := '{}';
  v_k integer;
  v_known bytea;
  v_topic text;
  v_partition integer;
  v_seq bigint;
  v_prev bytea;
  v_at timestamptz;
  v_at_bytes bytea;
  v_last_k integer;
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

  -- Read the batch once.
  SELECT array_agg(x.t ORDER BY x.n), array_agg(x.p ORDER BY x.n), array_agg(x.o ORDER BY x.n),
         array_agg(x.id ORDER BY x.n), array_agg(decode(x.bh, 'hex') ORDER BY x.n),
         array_agg(decode(x.ch, 'hex') ORDER BY x.n),
         array_agg(x.first ORDER BY x.n), array_agg(x.first_bh ORDER BY x.n),
         array_agg(x.n::integer ORDER BY x.t, x.p, x.o, x.n)
  INTO v_t, v_p, v_o, v_ids, v_bh, v_ch, v_first, v_first_bh, v_order
  FROM (
    SELECT r.t, r.p, r.o, r.ce ->> 'id' AS id, r.bh, r.ch, r.n,
           row_number() OVER w = 1 AS first, decode(first_value(r.bh) OVER w, 'hex') AS first_bh
    FROM ROWS FROM (jsonb_to_recordset(p_records) AS (t text, p integer, o bigint, ce jsonb, bh text, ch text))
      WITH ORDINALITY AS r(t, p, o, ce, bh, ch, n)
    WINDOW w AS (PARTITION BY r.ce ->> 'id' ORDER BY r.n)
  ) AS x;

  -- Chain heads of this batch: created if missing and locked (the upsert takes the row lock) in a fixed
  -- order, so concurrent batches on the same partitions serialise and never deadlock.
  INSERT INTO audit_chain_head AS h (topic, kafka_partition)
  SELECT DISTINCT u.t, u.p FROM unnest(v_t, v_p) AS u(t, p) ORDER BY 1, 2
  ON CONFLICT (topic, kafka_partition) DO UPDATE SET last_seq = h.last_seq;

  -- Ids already stored: one primary-key probe each.
  SELECT array_agg(g.body_hash ORDER BY u.k) INTO v_stored_bh
  FROM unnest(v_ids) WITH ORDINALITY AS u(id, k)
  LEFT JOIN LATERAL (SELECT s.body_hash FROM audit_event_ids s WHERE s.ce_id = u.id) AS g ON true;

  -- Classify each element and chain the new ones: one fold per topic-partition, in offset order.
  FOREACH v_k IN ARRAY v_order LOOP
    v_known := coalesce(v_stored_bh[v_k], CASE WHEN v_first[v_k] THEN NULL ELSE v_first_bh[v_k] END);
    IF v_known IS NOT NULL THEN
      IF v_known = v_bh[v_k] THEN
        v_outcome[v_k] := 'duplicate';
      ELSE
        v_outcome[v_k] := 'conflict';
        v_conflicts := v_conflicts || v_k;
      END IF;
      CONTINUE;
    END IF;
    IF v_topic IS DISTINCT FROM v_t[v_k] OR v_partition IS DISTINCT FROM v_p[v_k] THEN
      IF v_topic IS NOT NULL THEN
        v_head_t := v_head_t || v_topic;
        v_head_p := v_head_p || v_partition;
        v_head_seq := v_head_seq || v_seq;
        v_head_hash := v_head_hash || v_prev;
        v_head_o := v_head_o || v_o[v_last_k];
        v_head_at := v_head_at || v_at;
      END IF;
      v_topic := v_t[v_k];
      v_partition := v_p[v_k];
      -- Recording time never goes back along a chain, so retention always drops a prefix of it.
      SELECT h.last_seq, h.last_hash, greatest(p_now, h.last_recorded_at)
      INTO v_seq, v_prev, v_at
      FROM audit_chain_head h WHERE h.topic = v_topic AND h.kafka_partition = v_partition;
      v_at_bytes := int8send((extract(epoch FROM v_at) * 1000000)::bigint);
    END IF;
    v_seq := v_seq + 1;
    v_out_prev := v_out_prev || v_prev;
    v_prev := sha256(v_prev || v_ch[v_k] || int8send(v_seq) || v_at_bytes);
    v_outcome[v_k] := 'appended';
    v_seq_of[v_k] := v_seq;
    v_last_k := v_k;
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
    v_head_o := v_head_o || v_o[v_last_k];
    v_head_at := v_head_at || v_at;

    INSERT INTO audit_event (recorded_at, topic, kafka_partition, kafka_offset, seq, kafka_timestamp, kafka_key,
                             headers, ce, data, raw_value, ce_id, ce_type, ce_source, ce_subject, ce_time,
                             correlation_id, body_hash, content_hash, prev_hash, row_hash)
    SELECT u.at, r.t, r.p, r.o, u.seq, r.ts, decode(r.k, 'base64'), r.h, r.ce, nullif(r.d, 'null'::jsonb),
           decode(r.r, 'base64'), r.ce ->> 'id', r.ce ->> 'type', r.ce ->> 'source', r.ce ->> 'subject',
           (r.ce ->> 'time')::timestamptz, r.ce ->> 'correlationid', v_bh[u.k], v_ch[u.k], u.prev, u.hash
    FROM unnest(v_out_k, v_out_seq, v_out_prev, v_out_hash, v_out_at) AS u(k, seq, prev, hash, at)
    JOIN ROWS FROM (jsonb_to_recordset(p_records)
                      AS (t text, p integer, o bigint, ts bigint, k text, h jsonb, ce jsonb, d jsonb, r text))
      WITH ORDINALITY AS r(t, p, o, ts, k, h, ce, d, r, n) ON r.n = u.k;

    -- Claim the ids. Under the chain head locks no other batch of these partitions can claim them, but the
    -- same id may arrive on another partition at the same moment: then this batch fails and is retried.
    INSERT INTO audit_event_ids (ce_id, body_hash, topic, kafka_partition, seq, recorded_at, kafka_offset)
    SELECT v_ids[u.k], v_bh[u.k], v_t[u.k], v_p[u.k], u.seq, u.at, v_o[u.k]
    FROM unnest(v_out_k, v_out_seq, v_out_at) AS u(k, seq, at)
    ON CONFLICT (ce_id) DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed < cardinality(v_out_k) THEN
      RAISE EXCEPTION 'an event id of this batch was stored concurrently by another transaction; retry the batch'
        USING ERRCODE = 'serialization_failure';
    END IF;

    UPDATE audit_chain_head h
    SET last_seq = u.seq, last_hash = u.hash, last_offset = u.o, last_recorded_at = u.at
    FROM unnest(v_head_t, v_head_p, v_head_seq, v_head_hash, v_head_o, v_head_at)
      AS u(topic, kafka_partition, seq, hash, o, at)
    WHERE h.topic = u.topic AND h.kafka_partition = u.kafka_partition;
  END IF;

  IF cardinality(v_conflicts) > 0 THEN
    INSERT INTO audit_conflicts (ce_id, stored_body_hash, body_hash, topic, kafka_partition, kafka_offset,
                                 kafka_timestamp, kafka_key, headers, ce, data, raw_value)
    SELECT v_ids[c.k], coalesce(v_stored_bh[c.k], v_first_bh[c.k]), v_bh[c.k], r.t, r.p, r.o, r.ts,
           decode(r.k, 'base64'), r.h, r.ce, nullif(r.d, 'null'::jsonb), decode(r.r, 'base64')
    FROM unnest(v_conflicts) AS c(k)
    JOIN ROWS FROM (jsonb_to_recordset(p_records)
                      AS (t text, p integer, o bigint, ts bigint, k text, h jsonb, ce jsonb, d jsonb, r text))
      WITH ORDINALITY AS r(t, p, o, ts, k, h, ce, d, r, n) ON r.n = c.k
    ON CONFLICT DO NOTHING;
  END IF;

  RETURN QUERY
  SELECT (u.k - 1)::integer, u.outcome, u.seq
  FROM unnest(v_outcome, v_seq_of) WITH ORDINALITY AS u(outcome, seq, k);
END
$$;
