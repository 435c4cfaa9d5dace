import type { StoredHeader } from './audit-record';
import { GENESIS_HASH } from './audit-record';
import { type ChainBreak, ChainWalker, type StoredAuditRow } from './chain-verifier';

export interface VerifyOptions {
  topic?: string;
  partition?: number;
  /** Verify only rows recorded in [from, to): the first row in range is trusted as the starting point. */
  from?: Date;
  to?: Date;
  pageSize?: number;
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
  anchor_seq: string | null;
  anchor_hash: Buffer | null;
}

/** The part of a pg Pool or Client the reader needs. */
export interface Queryable {
  query<Row extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
}

/** Reads the audit store for investigations: chain verification, queries, retention. */
export class PostgresAuditReader {
  constructor(private readonly database: Queryable) {}

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const { rows: chains } = await this.database.query<ChainRow>(
      `SELECT c.topic, c.kafka_partition, h.last_seq::text AS head_seq, h.last_hash AS head_hash,
              a.up_to_seq::text AS anchor_seq, a.last_hash AS anchor_hash
       FROM (SELECT topic, kafka_partition FROM audit_chain_head
             UNION SELECT topic, kafka_partition FROM audit_chain_anchor) c
       LEFT JOIN audit_chain_head h USING (topic, kafka_partition)
       LEFT JOIN LATERAL (SELECT up_to_seq, last_hash FROM audit_chain_anchor x
                          WHERE x.topic = c.topic AND x.kafka_partition = c.kafka_partition
                          ORDER BY up_to_seq DESC LIMIT 1) a ON true
       WHERE ($1::text IS NULL OR c.topic = $1) AND ($2::integer IS NULL OR c.kafka_partition = $2)
       ORDER BY c.topic, c.kafka_partition`,
      [options.topic ?? null, options.partition ?? null],
    );
    const report: VerifyReport = { ok: true, chains: [] };
    for (const chain of chains) {
      const chainReport = await this.verifyChain(chain, options);
      report.chains.push(chainReport);
      if (chainReport.broken && !report.firstBreak) {
        report.ok = false;
        report.firstBreak = chainReport.broken;
      }
    }
    return report;
  }

  private async verifyChain(chain: ChainRow, options: VerifyOptions): Promise<ChainReport> {
    const pageSize = options.pageSize ?? 5_000;
    let start = { seq: 0n, hash: GENESIS_HASH };
    let startedFrom: ChainReport['startedFrom'] = 'genesis';
    if (chain.anchor_seq !== null && chain.anchor_hash) {
      start = { seq: BigInt(chain.anchor_seq), hash: chain.anchor_hash };
      startedFrom = 'retention-anchor';
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
    const walker = new ChainWalker(chain.topic, chain.kafka_partition, start);
    let after = start.seq;
    for (;;) {
      // Order by the column, not by the text output column of the same name (which sorts 10 before 2).
      const { rows } = await this.database.query<Record<string, unknown>>(
        `SELECT seq::text, (extract(epoch FROM recorded_at) * 1000000)::bigint::text AS recorded_at_us,
                topic, kafka_partition, kafka_offset::text, kafka_timestamp::text, kafka_key, headers, ce, data,
                raw_value, ce_id, content_hash, prev_hash, row_hash,
                concat_ws(', ',
                  CASE WHEN ce_id IS DISTINCT FROM ce ->> 'id' THEN 'ce_id' END,
                  CASE WHEN ce_type IS DISTINCT FROM ce ->> 'type' THEN 'ce_type' END,
                  CASE WHEN ce_source IS DISTINCT FROM ce ->> 'source' THEN 'ce_source' END,
                  CASE WHEN ce_subject IS DISTINCT FROM ce ->> 'subject' THEN 'ce_subject' END,
                  CASE WHEN ce_time IS DISTINCT FROM audit_rfc3339(ce ->> 'time') THEN 'ce_time' END,
                  CASE WHEN correlation_id IS DISTINCT FROM ce ->> 'correlationid' THEN 'correlation_id' END
                ) AS changed_columns
         FROM audit_event
         WHERE topic = $1 AND kafka_partition = $2 AND seq > $3 AND ($5::timestamptz IS NULL OR recorded_at < $5)
         ORDER BY audit_event.seq LIMIT $4`,
        [chain.topic, chain.kafka_partition, after.toString(), pageSize, options.to ?? null],
      );
      for (const row of rows) {
        if (walker.next(toStoredRow(row))) break;
      }
      if (walker.firstBreak || rows.length < pageSize) break;
      after = walker.lastSeq;
    }
    // The head check only makes sense when the walk went to the end of the chain.
    if (!options.to && chain.head_seq !== null && chain.head_hash) {
      walker.finish({ seq: BigInt(chain.head_seq), hash: chain.head_hash });
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
    const add = (sql: string, value: unknown) => {
      values.push(value);
      conditions.push(sql.replace('?', `$${values.length}`));
    };
    if (filter.correlationId !== undefined) add('correlation_id = ?', filter.correlationId);
    if (filter.type !== undefined) add('ce_type = ?', filter.type);
    if (filter.subject !== undefined) add('ce_subject = ?', filter.subject);
    if (filter.ceId !== undefined) {
      // Through the id guard, which holds the event's full primary key.
      add(
        '(topic, kafka_partition, seq, recorded_at) IN (SELECT topic, kafka_partition, seq, recorded_at FROM audit_event_ids WHERE ce_id = ?)',
        filter.ceId,
      );
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
    contentHash: row.content_hash as Buffer,
    prevHash: row.prev_hash as Buffer,
    rowHash: row.row_hash as Buffer,
  };
}
