import type { AppendOutcome, AuditEventStore } from './audit-event-store';
import type { AuditRecord } from './audit-record';

/** The part of a pg Pool (or Client) the store needs. */
export interface Queryable {
  query<Row extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
}

export interface PostgresAuditEventStoreOptions {
  /**
   * Recording time to use instead of the database clock (tests, backfills). Calls audit_append_at, which only
   * the store's owner may execute: the function's role (audit_writer) can only call audit_append.
   */
  recordedAt?: () => Date;
}

interface OutcomeRow extends Record<string, unknown> {
  idx: number;
  outcome: 'appended' | 'duplicate' | 'conflict';
  seq: string | null;
}

/**
 * AuditEventStore on PostgreSQL (migrations/001_audit_event_store.sql): the batch goes to audit_append as one
 * JSON array, which claims the ids, records conflicts, chains and inserts the rows and advances the chain heads
 * in a single statement, so one round trip and one transaction per batch.
 */
export class PostgresAuditEventStore implements AuditEventStore {
  constructor(
    private readonly database: Queryable,
    private readonly options: PostgresAuditEventStoreOptions = {},
  ) {}

  async append(records: readonly AuditRecord[]): Promise<AppendOutcome[]> {
    if (records.length === 0) return [];
    const payload = wirePayload(records);
    const { rows } = this.options.recordedAt
      ? await this.database.query<OutcomeRow>(
          'SELECT idx, outcome, seq FROM audit_append_at($1::jsonb, $2)',
          [payload, this.options.recordedAt()],
        )
      : await this.database.query<OutcomeRow>('SELECT idx, outcome, seq FROM audit_append($1::jsonb)', [
          payload,
        ]);
    if (rows.length !== records.length) {
      throw new Error(`audit_append returned ${rows.length} outcomes for ${records.length} records`);
    }
    return rows.map((row) =>
      row.outcome === 'appended'
        ? { outcome: 'appended', seq: BigInt(row.seq as string) }
        : { outcome: row.outcome },
    );
  }
}

/**
 * The JSON array audit_append reads, written by hand from the canonical texts the hashes were computed over
 * (no second serialisation of ce, data and headers).
 */
export function wirePayload(records: readonly AuditRecord[]): string {
  let payload = '[';
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as AuditRecord;
    const json = record.json ?? {
      ce: JSON.stringify(record.ce),
      data: JSON.stringify(record.data ?? null),
      headers: JSON.stringify(record.headers),
      key: record.key?.toString('base64') ?? null,
      rawValue: record.rawValue?.toString('base64') ?? null,
    };
    if (i > 0) payload += ',';
    payload +=
      `{"t":${JSON.stringify(record.topic)},"p":${record.partition},"o":${record.offset},"ts":${record.timestamp},` +
      `"k":${json.key === null ? 'null' : `"${json.key}"`},"h":${json.headers},"ce":${json.ce},` +
      `"d":${json.data},"r":${json.rawValue === null ? 'null' : `"${json.rawValue}"`},` +
      `"bh":"${record.bodyHash.toString('hex')}","ch":"${record.contentHash.toString('hex')}"}`;
  }
  return `${payload}]`;
}
