import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import type { KafkaBatchResponse, KafkaEvent, KafkaEventRecord } from '../../../shared/msk/event';
import { loadEvent } from '../../support/load-event';
import { type AuditDatabase, createAuditDatabase } from './audit-database';

let db: AuditDatabase;
let handler: (event: KafkaEvent) => Promise<KafkaBatchResponse>;
let reader: PostgresAuditReader;

const savedEnv = { ...process.env };

beforeAll(async () => {
  db = await createAuditDatabase('handler');
  // The handler reads its configuration at module scope, as in Lambda.
  process.env.DATABASE_URL = db.url;
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
  ({ handler } = await import('../../../functions/audit-append/handler'));
  reader = new PostgresAuditReader(db.owner);
});
afterAll(async () => {
  process.env = savedEnv;
  await db?.drop();
});

const recordsOf = (event: KafkaEvent) => Object.values(event.records).flat();
const ceIdOf = (record: KafkaEventRecord) => {
  const bytes = record.headers?.find((header) => 'ce_id' in header)?.ce_id;
  return bytes && Buffer.from(bytes).toString('utf8');
};
const count = async (where = 'true', values: unknown[] = []) => {
  const { rows } = await db.owner.query(`SELECT count(*)::int AS n FROM audit_event WHERE ${where}`, values);
  return rows[0].n as number;
};

describe('audit-append handler with the sample events', () => {
  const samples = readdirSync(path.resolve(import.meta.dirname, '../../../events/audit-append')).filter(
    (file) => !['poison.json', 'tombstone.json'].includes(file),
  );

  it.each(samples)(
    'appends %s (Avro, Confluent framing) and treats its replay as duplicates',
    async (file) => {
      const event = loadEvent(`audit-append/${file}`);
      const before = await count();
      expect(await handler(event)).toEqual({ batchItemFailures: [] });
      expect(await count()).toBe(before + recordsOf(event).length);
      expect(await handler(loadEvent(`audit-append/${file}`))).toEqual({ batchItemFailures: [] });
      expect(await count()).toBe(before + recordsOf(event).length);
    },
  );

  it('stores decoded Avro data, CloudEvents attributes and the exact value bytes', async () => {
    const event = loadEvent('audit-append/payment-failed.json');
    const record = recordsOf(event)[0];
    const { rows } = await db.owner.query(
      'SELECT ce, data, raw_value, ce_type FROM audit_event WHERE topic = $1 AND kafka_offset = $2',
      [record?.topic, record?.offset],
    );
    expect(rows[0].ce_type).toBe('payment.failed');
    expect(rows[0].ce).toMatchObject({ specversion: '1.0', datacontenttype: expect.any(String) });
    expect(rows[0].data).toBeTypeOf('object');
    expect(rows[0].raw_value).toEqual(Buffer.from(record?.value as string, 'base64'));
  });

  it('reports a poison record and its successors with coordinates and stores the rest', async () => {
    const event = loadEvent('audit-append/poison.json');
    const before = await count();
    const response = await handler(event);
    expect(response.batchItemFailures.length).toBeGreaterThan(0);
    const failedPartitions = new Set(response.batchItemFailures.map((f) => f.itemIdentifier.partition));
    expect(failedPartitions.size).toBe(1);
    const [failedKey] = [...failedPartitions];
    const partitionRecords = event.records[failedKey as string] ?? [];
    const firstFailed = Math.min(...response.batchItemFailures.map((f) => f.itemIdentifier.offset));
    // The failed record and every later record of its partition are reported.
    expect(response.batchItemFailures.map((f) => f.itemIdentifier.offset)).toEqual(
      partitionRecords.filter((r) => r.offset >= firstFailed).map((r) => r.offset),
    );
    // Everything except the poison record itself is stored.
    const stored = (await count()) - before;
    expect(stored).toBe(recordsOf(event).length - 1);
  });

  it('reports a tombstone without CloudEvents headers with its successor, and stores the records around it', async () => {
    const event = loadEvent('audit-append/tombstone.json');
    const response = await handler(event);
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'genai.request-1', offset: 701 } },
      { itemIdentifier: { partition: 'genai.request-1', offset: 702 } },
    ]);
    const ids = recordsOf(event).flatMap((record) => ceIdOf(record) ?? []);
    expect(ids).toHaveLength(2);
    expect(await count('ce_id = ANY($1)', [ids])).toBe(2);
  });

  it('stores a tombstone that carries CloudEvents headers, with no value and no data', async () => {
    const event = structuredClone(loadEvent('audit-append/tombstone.json'));
    const [before, tombstone] = recordsOf(event);
    const id = 'tombstone-with-headers-1';
    (tombstone as KafkaEventRecord).headers = (before as KafkaEventRecord).headers?.map((header) =>
      'ce_id' in header ? { ce_id: [...Buffer.from(id)] } : header,
    );
    // 700 and 702 are duplicates of the test above; the tombstone is appended.
    expect((await handler(event)).batchItemFailures).toEqual([]);
    const { rows } = await db.owner.query(
      'SELECT raw_value IS NULL AS no_value, data IS NULL AS no_data, kafka_offset::int AS offset FROM audit_event WHERE ce_id = $1',
      [id],
    );
    expect(rows).toEqual([{ no_value: true, no_data: true, offset: 701 }]);
  });

  it('leaves every chain verifiable', async () => {
    const report = await reader.verify();
    expect(report.ok).toBe(true);
    expect(report.chains.length).toBeGreaterThan(5);
  });
});
