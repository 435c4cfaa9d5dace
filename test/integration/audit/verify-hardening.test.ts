// Issue 21, finding 2: verify trusted the body hash the caller of audit_append supplied, and started at the
// newest retention anchor whatever rows were still stored.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { buildAuditRecord } from '../../../functions/audit-append/audit-record';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../../functions/audit-append/postgres-pool';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, createAuditDatabase, withDatabase } from './audit-database';

let db: AuditDatabase;
let reader: PostgresAuditReader;
let writer: pg.Pool;

beforeAll(async () => {
  db = await createAuditDatabase('verify_hardening');
  reader = new PostgresAuditReader(db.owner);
  // The function's own login (migration 008), as it runs in AWS.
  writer = new pg.Pool({
    connectionString: withDatabase(db.url, db.name, 'audit_append_login'),
    options: '-c role=audit_writer',
    max: 1,
  });
});
afterAll(async () => {
  await writer?.end();
  await db?.drop();
});

const built = (record: ReturnType<typeof cloudEventRecord>) =>
  buildAuditRecord(record, decodeJsonCloudEvent(record));

describe('audit verify (finding 2)', () => {
  it('finds a row that pre-claimed a future ce_id with its predictable body hash', async () => {
    const topic = 'payment.preclaim';
    const store = new PostgresAuditEventStore(pooled(writer));
    const future = cloudEventRecord({ topic, offset: 5, id: 'payment-42', data: { amount: 100 } });
    const futureBodyHash = built(future).bodyHash;
    // The writer's own call of audit_append: other content (offset 0, other data), the future event's identity.
    const plantedRecord = built(
      cloudEventRecord({ topic, offset: 0, id: 'payment-42', data: { amount: 1 } }),
    );
    const planted = { ...plantedRecord, data: plantedRecord.data, bodyHash: futureBodyHash };
    expect(await store.append([[planted]])).toMatchObject([{ outcome: 'appended', seq: 1n }]);
    // The real event then counts as a duplicate and is never stored.
    const real = await appendBatch(mskEvent([future]), { store, decode: decodeJsonCloudEvent });
    expect(real).toMatchObject({ appended: 0, duplicates: 1 });

    const report = await reader.verify({ topic });
    expect(report.ok).toBe(false);
    expect(report.firstBreak).toMatchObject({
      topic,
      seq: 1n,
      offset: 0,
      ceId: 'payment-42',
      reason: 'body-hash-mismatch',
      actual: futureBodyHash.toString('hex'),
    });
  });

  it('refuses an anchor inserted at the head, and still walks and checks every stored row', async () => {
    const topic = 'payment.anchor';
    const store = new PostgresAuditEventStore(pooled(db.owner));
    const records = [0, 1, 2, 3].map((offset) => cloudEventRecord({ topic, offset }));
    await appendBatch(mskEvent(records), { store, decode: decodeJsonCloudEvent });
    // As the owner: change row 2 behind the triggers, then anchor the chain at its head with the head's hash.
    const client = await db.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`UPDATE audit_event SET data = '{}' WHERE topic = $1 AND seq = 2`, [topic]);
      await client.query(
        `INSERT INTO audit_chain_anchor (topic, kafka_partition, up_to_seq, last_hash, last_recorded_at, dropped_partition)
         SELECT topic, kafka_partition, last_seq, last_hash, last_recorded_at - interval '1 year', 'audit_event_1999_01'
         FROM audit_chain_head WHERE topic = $1`,
        [topic],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const report = await reader.verify({ topic });
    expect(report.ok).toBe(false);
    expect(report.chains[0]).toMatchObject({ startedFrom: 'genesis', startSeq: 0n });
    expect(report.firstBreak).toMatchObject({ topic, seq: 2n, reason: 'content-changed' });
  });

  it('refuses an anchor over rows dropped within the 90-day retention', async () => {
    const topic = 'payment.early';
    const store = new PostgresAuditEventStore(pooled(db.owner), {
      recordedAt: () => new Date(Date.now() - 10 * 24 * 3600 * 1000),
    });
    await appendBatch(mskEvent([0, 1, 2].map((offset) => cloudEventRecord({ topic, offset }))), {
      store,
      decode: decodeJsonCloudEvent,
    });
    const client = await db.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(
        `INSERT INTO audit_chain_anchor (topic, kafka_partition, up_to_seq, last_hash, last_recorded_at, dropped_partition)
         SELECT topic, kafka_partition, seq, row_hash, recorded_at, 'audit_event_1999_02'
         FROM audit_event WHERE topic = $1 AND seq = 2`,
        [topic],
      );
      await client.query(`DELETE FROM audit_event WHERE topic = $1 AND seq <= 2`, [topic]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect((await reader.verify({ topic })).firstBreak).toMatchObject({
      seq: 2n,
      reason: 'anchor-mismatch',
      actual: expect.stringMatching(/within the 90-day retention/),
    });
  });
});
