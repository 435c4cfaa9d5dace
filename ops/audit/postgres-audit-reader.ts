import type { StoredHeader } from '../../functions/audit-append/audit-record';
import { GENESIS_HASH } from '../../functions/audit-append/audit-record';
import type { Queryable } from '../../functions/audit-append/postgres-pool';
import { type ChainBreak, ChainWalker, type Checkpoint, type StoredAuditRow } from './chain-verifier';

export interface VerifyOptions {
  topic?: string;
  partition?: number;
  /** Verify only rows recorded in [from, to): the first row in range is trusted as the starting point. */
  from?: Date;
  to?: Date;
  pageSize?: number;
  /** Hashes chains must have at given seqs (from external digests): `${topic}-${partition}` => seq => checkpoint. */
  checkpoints?: ReadonlyMap<string, ReadonlyMap<bigint, Checkpoint>>;
}

export interface ChainReport {
  topic: string;
  partition: number;
  /** Where verification started: 0 (genesis), a retention anchor's seq, or the seq before a range. */
  startSeq: bigint;
  startedFrom: 'genesis' | 'retention-anchor' | 'range-start';
  rowsChecked: number;
  lastSeq: bigint;
  broken?: ChainBreak;
}

export interface VerifyReport {
  ok: boolean;
  chains: ChainReport[];
  /** The first broken link over all chains (chains in topic, partition order). */
  firstBreak?: ChainBreak;
}

export interface AuditQuery {
  correlationId?: string;
  type?: string;
  subject?: string;
  ceId?: string;
  /** CloudEvents source: with ceId, the one event of that source and id. */
  source?: string;
  /** Event time (CloudEvents `time`) range [from, to). */
  from?: Date;
  to?: Date;
  limit?: number;
}

export interface AuditEventRow {
  recordedAt: Date;
  topic: string;
  partition: number;
  offset: number;
  seq: bigint;
  ceId: string;
  type: string;
  source: string;
  subject: string | null;
  time: Date | null;
  correlationId: string | null;
  ce: Record<string, unknown>;
  data: unknown;
}

export interface RetentionResult {
  droppedPartition: string;
  anchoredChains: number;
  droppedRows: number;
}

interface ChainRow extends Record<string, unknown> {
  topic: string;
  kafka_partition: number;
  head_seq: string | null;
  head_hash: Buffer | null;
  /** Lowest seq still stored (null: none). */
  first_seq: string | null;
  anchors: AnchorRow[] | null;
}

interface AnchorRow {
  up_to_seq: string;
  /** Hex: json_agg output. */
  last_hash: string;
  last_recorded_at: string;
  dropped_partition: string;
  partition_exists: boolean;
  within_retention: boolean;
}

/** Reads the audit store for investigations: chain verification, queries, retention. */
export class PostgresAuditReader {
  constructor(private readonly database: Queryable) {}

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const { rows: chains } = await this.database.query<ChainRow>(
      `SELECT c.topic, c.kafka_partition, h.last_seq::text AS head_seq, h.last_hash AS head_hash,
              (SELECT min(e.seq)::text FROM audit_event e
               WHERE e.topic = c.topic AND e.kafka_partition = c.kafka_partition) AS first_seq,
              (SELECT json_agg(json_build_object(
                        'up_to_seq', a.up_to_seq::text, 'last_hash', encode(a.last_hash, 'hex'),
                        'last_recorded_at', a.last_recorded_at, 'dropped_partition', a.dropped_partition,
                        'partition_exists', to_regclass(quote_ident(a.dropped_partition)) IS NOT NULL,
                        'within_retention', a.last_recorded_at > now() - interval '90 days')
                      ORDER BY a.up_to_seq)
               FROM audit_chain_anchor a
               WHERE a.topic = c.topic AND a.kafka_partition = c.kafka_partition) AS anchors
       FROM (SELECT topic, kafka_partition FROM audit_chain_head
             UNION SELECT topic, kafka_partition FROM audit_chain_anchor) c
       LEFT JOIN audit_chain_head h USING (topic, kafka_partition)
       WHERE ($1::text IS NULL OR c.topic = $1) AND ($2::integer IS NULL OR c.kafka_partition = $2)
       ORDER BY c.topic, c.kafka_partition`,
      [options.topic ?? null, options.partition ?? null],
    );
    const report: VerifyReport = { ok: true, chains: [] };
    const fail = (chainBreak: ChainBreak | undefined) => {
      if (chainBreak && !report.firstBreak) {
        report.ok = false;
        report.firstBreak = chainBreak;
      }
    };
    const seen = new Set<string>();
    for (const chain of chains) {
      seen.add(`${chain.topic}-${chain.kafka_partition}`);
      const chainReport = await this.verifyChain(chain, options);
      report.chains.push(chainReport);
      fail(chainReport.broken);
    }
    // A chain a digest vouched for must still be there (its head and rows deleted otherwise).
    for (const [name, seqs] of options.checkpoints ?? []) {
      const [seq, checkpoint] = [...seqs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).at(-1) ?? [];
      if (seen.has(name) || seq === undefined || !checkpoint) continue;
      const [, topic = name, partition = '-1'] = /^(.*)-(\d+)$/.exec(name) ?? [];
      if (options.topic !== undefined && topic !== options.topic) continue;
      if (options.partition !== undefined && Number(partition) !== options.partition) continue;
      fail({
        topic,
        partition: Number(partition),
        seq,
        offset: null,
        ceId: null,
        reason: checkpoint.reason,
        expected: `a chain up to seq ${seq} with hash ${checkpoint.hash.toString('hex')} (${checkpoint.source})`,
        actual: 'no such chain in the store',
      });
    }
    return report;
  }

  private async verifyChain(chain: ChainRow, options: VerifyOptions): Promise<ChainReport> {
    const pageSize = options.pageSize ?? 5_000;
    let start = { seq: 0n, hash: GENESIS_HASH };
    let startedFrom: ChainReport['startedFrom'] = 'genesis';
    // The walk starts where the stored rows start: at genesis, or at the anchor retention left right below the
    // first stored row. Never at the newest anchor: an anchor inserted at the head would skip every row. An
    // anchor over rows that are still stored is a checkpoint those rows must hash to; one whose partition still
    // exists, or younger than the 90-day minimum retention, was not left by retention.
    const firstSeq = chain.first_seq === null ? null : BigInt(chain.first_seq);
    const checkpoints = new Map(options.checkpoints?.get(`${chain.topic}-${chain.kafka_partition}`) ?? []);
    let forged: { anchor: AnchorRow; why: string } | undefined;
    for (const anchor of chain.anchors ?? []) {
      const seq = BigInt(anchor.up_to_seq);
      const hash = Buffer.from(anchor.last_hash, 'hex');
      if (anchor.partition_exists)
        forged ??= { anchor, why: `its partition ${anchor.dropped_partition} still exists` };
      else if (anchor.within_retention) {
        forged ??= {
          anchor,
          why: `it anchors rows recorded ${anchor.last_recorded_at}, within the 90-day retention`,
        };
      }
      if (firstSeq !== null && seq >= firstSeq) {
        checkpoints.set(seq, {
          hash,
          reason: 'anchor-mismatch',
          source: `anchor of ${anchor.dropped_partition}`,
        });
      } else if (firstSeq === null || seq === firstSeq - 1n) {
        if (seq >= start.seq) {
          start = { seq, hash };
          startedFrom = 'retention-anchor';
        }
      }
    }
    if (options.from) {
      const { rows } = await this.database.query<{ seq: string; prev_hash: Buffer }>(
        `SELECT seq::text, prev_hash FROM audit_event
         WHERE topic = $1 AND kafka_partition = $2 AND recorded_at >= $3 ORDER BY audit_event.seq LIMIT 1`,
        [chain.topic, chain.kafka_partition, options.from],
      );
      const first = rows[0];
      if (first && BigInt(first.seq) - 1n > start.seq) {
        start = { seq: BigInt(first.seq) - 1n, hash: first.prev_hash };
        startedFrom = 'range-start';
      }
    }
    const walker = new ChainWalker(chain.topic, chain.kafka_partition, start, checkpoints);
    // Checkpoints below the start cover rows retention dropped; one at the start anchor must name its hash.
    const atStart = checkpoints.get(start.seq);
    if (startedFrom === 'retention-anchor' && atStart && !atStart.hash.equals(start.hash)) {
      walker.fail(
        atStart.reason,
        start.seq,
        `${atStart.hash.toString('hex')} (${atStart.source})`,
        `${start.hash.toString('hex')} (retention anchor)`,
      );
    }
    if (forged) {
      walker.fail(
        'anchor-mismatch',
        BigInt(forged.anchor.up_to_seq),
        'an anchor left by retention',
        `refused: ${forged.why}`,
      );
    }
    let after = start.seq;
    while (!walker.firstBreak) {
      // Order by the column, not by the text output column of the same name (which sorts 10 before 2).
      const { rows } = await this.database.query<Record<string, unknown>>(
        `SELECT e.seq::text, (extract(epoch FROM e.recorded_at) * 1000000)::bigint::text AS recorded_at_us,
                e.topic, e.kafka_partition, e.kafka_offset::text, e.kafka_timestamp::text, e.kafka_key, e.headers,
                e.ce, e.data, e.raw_value, e.ce_id, e.body_hash, e.content_hash, e.prev_hash, e.row_hash,
                concat_ws(', ',
                  CASE WHEN e.ce_id IS DISTINCT FROM e.ce ->> 'id' THEN 'ce_id' END,
                  CASE WHEN e.ce_type IS DISTINCT FROM e.ce ->> 'type' THEN 'ce_type' END,
                  CASE WHEN e.ce_source IS DISTINCT FROM e.ce ->> 'source' THEN 'ce_source' END,
                  CASE WHEN e.ce_subject IS DISTINCT FROM e.ce ->> 'subject' THEN 'ce_subject' END,
                  CASE WHEN e.ce_time IS DISTINCT FROM audit_rfc3339(e.ce ->> 'time') THEN 'ce_time' END,
                  CASE WHEN e.correlation_id IS DISTINCT FROM e.ce ->> 'correlationid' THEN 'correlation_id' END
                ) AS changed_columns,
                CASE
                  WHEN g.ce_id IS NULL THEN 'no id guard row'
                  WHEN (g.topic, g.kafka_partition, g.seq, g.recorded_at, g.body_hash)
                       IS DISTINCT FROM (e.topic, e.kafka_partition, e.seq, e.recorded_at, e.body_hash)
                    THEN format('id guard names %s-%s seq %s, body %s', g.topic, g.kafka_partition, g.seq,
                                encode(g.body_hash, 'hex'))
                END AS guard_mismatch
         FROM audit_event e
         LEFT JOIN audit_event_ids g ON g.ce_id = e.ce_id AND g.ce_source = e.ce_source
         WHERE e.topic = $1 AND e.kafka_partition = $2 AND e.seq > $3 AND ($5::timestamptz IS NULL OR e.recorded_at < $5)
         ORDER BY e.seq LIMIT $4`,
        [chain.topic, chain.kafka_partition, after.toString(), pageSize, options.to ?? null],
      );
      for (const row of rows) {
        if (walker.next(toStoredRow(row))) break;
      }
      if (walker.firstBreak || rows.length < pageSize) break;
      after = walker.lastSeq;
    }
    // The head and checkpoint checks only make sense when the walk went to the end of the chain.
    if (!options.to) {
      walker.finish(
        chain.head_seq !== null && chain.head_hash
          ? { seq: BigInt(chain.head_seq), hash: chain.head_hash }
          : undefined,
      );
    }
    return {
      topic: chain.topic,
      partition: chain.kafka_partition,
      startSeq: start.seq,
      startedFrom,
      rowsChecked: walker.rowsChecked,
      lastSeq: walker.lastSeq,
      broken: walker.firstBreak,
    };
  }

  async query(filter: AuditQuery): Promise<AuditEventRow[]> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, ...parameters: unknown[]) => {
      let condition = sql;
      for (const parameter of parameters) {
        values.push(parameter);
        condition = condition.replace('?', `$${values.length}`);
      }
      conditions.push(condition);
    };
    if (filter.correlationId !== undefined) add('correlation_id = ?', filter.correlationId);
    if (filter.type !== undefined) add('ce_type = ?', filter.type);
    if (filter.subject !== undefined) add('ce_subject = ?', filter.subject);
    // By id through the id guard, which holds the event's full primary key. Ids are unique per source only:
    // without a source, every source's event with that id.
    const guard = 'SELECT topic, kafka_partition, seq, recorded_at FROM audit_event_ids WHERE ce_id = ?';
    if (filter.ceId !== undefined && filter.source !== undefined) {
      add(
        `(topic, kafka_partition, seq, recorded_at) IN (${guard} AND ce_source = ?)`,
        filter.ceId,
        filter.source,
      );
    } else if (filter.ceId !== undefined) {
      add(`(topic, kafka_partition, seq, recorded_at) IN (${guard})`, filter.ceId);
    } else if (filter.source !== undefined) {
      add('ce_source = ?', filter.source);
    }
    if (filter.from !== undefined) add('ce_time >= ?', filter.from);
    if (filter.to !== undefined) add('ce_time < ?', filter.to);
    values.push(filter.limit ?? 100);
    const { rows } = await this.database.query<Record<string, unknown>>(
      `SELECT recorded_at, topic, kafka_partition, kafka_offset::text, seq::text, ce_id, ce_type, ce_source,
              ce_subject, ce_time, correlation_id, ce, data
       FROM audit_event ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
       ORDER BY ce_time NULLS LAST, topic, kafka_partition, audit_event.seq
       LIMIT $${values.length}`,
      values,
    );
    return rows.map((row) => ({
      recordedAt: row.recorded_at as Date,
      topic: row.topic as string,
      partition: row.kafka_partition as number,
      offset: Number(row.kafka_offset),
      seq: BigInt(row.seq as string),
      ceId: row.ce_id as string,
      type: row.ce_type as string,
      source: row.ce_source as string,
      subject: (row.ce_subject as string | null) ?? null,
      time: (row.ce_time as Date | null) ?? null,
      correlationId: (row.correlation_id as string | null) ?? null,
      ce: row.ce as Record<string, unknown>,
      data: row.data ?? null,
    }));
  }

  /** Drops the month partitions that end at or before `cutoff` (at least 90 days ago), keeping chain anchors. */
  async dropPartitionsBefore(cutoff: Date): Promise<RetentionResult[]> {
    const { rows } = await this.database.query<Record<string, unknown>>(
      'SELECT dropped_partition, anchored_chains, dropped_rows::text FROM audit_drop_partitions_before($1)',
      [cutoff],
    );
    return rows.map((row) => ({
      droppedPartition: row.dropped_partition as string,
      anchoredChains: row.anchored_chains as number,
      droppedRows: Number(row.dropped_rows),
    }));
  }
}

function toStoredRow(row: Record<string, unknown>): StoredAuditRow {
  return {
    seq: BigInt(row.seq as string),
    recordedAtMicros: BigInt(row.recorded_at_us as string),
    topic: row.topic as string,
    partition: row.kafka_partition as number,
    offset: Number(row.kafka_offset),
    timestamp: Number(row.kafka_timestamp),
    key: (row.kafka_key as Buffer | null) ?? null,
    headers: row.headers as StoredHeader[],
    ce: row.ce as Record<string, unknown>,
    data: row.data ?? null,
    rawValue: (row.raw_value as Buffer | null) ?? null,
    ceId: (row.ce_id as string | null) ?? null,
    changedColumns: (row.changed_columns as string) || undefined,
    guardMismatch: (row.guard_mismatch as string | null) ?? undefined,
    bodyHash: row.body_hash as Buffer,
    contentHash: row.content_hash as Buffer,
    prevHash: row.prev_hash as Buffer,
    rowHash: row.row_hash as Buffer,
  };
}
