import type { AppendOutcome, AuditEventStore } from './audit-event-store';
import type { AuditRecord } from './audit-record';
import { canonicalJson } from './canonical-json';
import { byteaArray, integerArray, textArray } from './pg-binary-array';

/** A statement the connection prepares once under its name and then only binds and executes. */
export interface NamedStatement {
  name: string;
  text: string;
}

/** The part of a pg Pool (or Client) the store needs. */
export interface Queryable {
  query<Row extends Record<string, unknown>>(
    statement: string | NamedStatement,
    values?: unknown[],
  ): Promise<{ rows: Row[] }>;
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
 * AuditEventStore on PostgreSQL (migrations/001..005): the batch goes to audit_append as one binary array per
 * column; the function claims the ids, records conflicts, chains and inserts the rows and advances the chain
 * heads in a single statement, so one round trip and one transaction per batch.
 */
export class PostgresAuditEventStore implements AuditEventStore {
  constructor(
    private readonly database: Queryable,
    private readonly options: PostgresAuditEventStoreOptions = {},
  ) {}

  async append(records: readonly AuditRecord[]): Promise<AppendOutcome[]> {
    if (records.length === 0) return [];
    const columns = wireColumns(records);
    const { rows } = this.options.recordedAt
      ? await this.database.query<OutcomeRow>(
          `SELECT idx, outcome, seq FROM audit_append_at(${ARGUMENTS}, $12)`,
          [...columns, this.options.recordedAt()],
        )
      : // A copy: pg writes the values into the config object it is given.
        await this.database.query<OutcomeRow>({ ...APPEND }, columns);
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

const ARGUMENTS =
  '$1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bytea[], $6::jsonb[], $7::jsonb[], $8::jsonb[], ' +
  '$9::bytea[], $10::bytea[], $11::bytea[]';

/** Prepared once per connection: each batch then skips parsing and planning, on both sides of the wire. */
const APPEND: NamedStatement = {
  name: 'audit_append',
  text: `SELECT idx, outcome, seq FROM audit_append(${ARGUMENTS})`,
};

/**
 * The arguments of audit_append, one array per column in PostgreSQL's binary format: headers, ce and data are
 * the canonical texts the hashes were computed over (no second serialisation), bytes go as bytes.
 */
export function wireColumns(records: readonly AuditRecord[]): Buffer[] {
  const texts = records.map(
    (record) =>
      record.json ?? {
        ce: canonicalJson(record.ce),
        data: canonicalJson(record.data ?? null),
        headers: JSON.stringify(record.headers),
      },
  );
  return [
    textArray(records.map((record) => record.topic)),
    integerArray(
      records.map((record) => record.partition),
      'int4',
    ),
    integerArray(
      records.map((record) => record.offset),
      'int8',
    ),
    integerArray(
      records.map((record) => record.timestamp),
      'int8',
    ),
    byteaArray(records.map((record) => record.key)),
    textArray(
      texts.map((text) => text.headers),
      'jsonb',
    ),
    textArray(
      texts.map((text) => text.ce),
      'jsonb',
    ),
    textArray(
      texts.map((text) => (text.data === 'null' ? null : text.data)),
      'jsonb',
    ),
    byteaArray(records.map((record) => record.rawValue)),
    byteaArray(records.map((record) => record.bodyHash)),
    byteaArray(records.map((record) => record.contentHash)),
  ];
}
