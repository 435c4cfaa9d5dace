import type { AuditRecord } from './audit-record';
import { canonicalJson } from './canonical-json';
import { byteaArray, integerArray, textArray } from './pg-binary-array';
import { executePipelined, type NamedStatement } from './pg-pipeline';
import type { AppendOutcome, AuditEventStore } from './ports';
import type { ConnectionSource } from './postgres-pool';

export interface PostgresAuditEventStoreOptions {
  /**
   * Recording time to use instead of the database clock (tests, backfills). Calls audit_append_at, which only
   * the store's owner may execute: the function's role (audit_writer) can only call audit_append.
   */
  recordedAt?: () => Date;
}

/**
 * AuditEventStore on PostgreSQL (migrations/001..009). Each chunk goes to audit_append as one binary array per
 * column; the function claims the ids, records conflicts, chains and inserts the rows and advances the chain
 * heads in one statement. The chunks of an append run in one transaction and are pipelined (executePipelined):
 * the batch costs one wait for the database, and the database appends a chunk while the handler builds the next.
 */
export class PostgresAuditEventStore implements AuditEventStore {
  constructor(
    private readonly connections: ConnectionSource,
    private readonly options: PostgresAuditEventStoreOptions = {},
  ) {}

  async append(chunks: Iterable<readonly AuditRecord[]>): Promise<AppendOutcome[]> {
    const sizes: number[] = [];
    const recordedAt = this.options.recordedAt?.().toISOString();
    const parameterSets = function* (): Generator<unknown[]> {
      for (const records of chunks) {
        if (records.length === 0) continue;
        sizes.push(records.length);
        const values = wireColumns(records);
        yield recordedAt === undefined ? values : [...values, recordedAt];
      }
    };
    const sets = parameterSets();
    const first = sets.next();
    if (first.done) return [];
    const results = await this.connections.withConnection((client) =>
      executePipelined(client, recordedAt === undefined ? APPEND : APPEND_AT, prepend(first.value, sets)),
    );
    return results.flatMap((rows, chunk) => {
      if (rows.length !== sizes[chunk]) {
        throw new Error(`audit_append returned ${rows.length} outcomes for ${sizes[chunk]} records`);
      }
      // Columns idx, outcome, seq, as text.
      return rows.map(([, outcome, seq]): AppendOutcome => {
        if (outcome === 'appended') return { outcome, seq: BigInt(seq as string) };
        if (outcome === 'duplicate' || outcome === 'conflict') return { outcome };
        throw new Error(`audit_append returned the unknown outcome ${outcome}`);
      });
    });
  }
}

function* prepend<T>(head: T, rest: Iterator<T>): Generator<T> {
  yield head;
  for (let next = rest.next(); !next.done; next = rest.next()) yield next.value;
}

const ARGUMENTS =
  '$1::text[], $2::integer[], $3::bigint[], $4::bigint[], $5::bytea[], $6::jsonb[], $7::jsonb[], $8::jsonb[], ' +
  '$9::bytea[], $10::bytea[], $11::bytea[]';

/** Prepared once per connection: each chunk then skips parsing and planning, on both sides of the wire. */
export const APPEND: NamedStatement = {
  name: 'audit_append',
  text: `SELECT idx, outcome, seq FROM audit_append(${ARGUMENTS})`,
};

/** The same with the recording time as $12 (options.recordedAt). */
const APPEND_AT: NamedStatement = {
  name: 'audit_append_at',
  text: `SELECT idx, outcome, seq FROM audit_append_at(${ARGUMENTS}, $12)`,
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
