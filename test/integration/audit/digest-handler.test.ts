// The audit-digest Lambda handler as deployed: its own login (audit_digest_login, role audit_reader) reads the
// chain heads and nothing else, and each invocation writes the next digest to the bucket (s3rver here).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../../functions/audit-append/postgres-pool';
import { readDigests } from '../../../functions/audit-digest/digest';
import { S3DigestStore } from '../../../functions/audit-digest/s3-digest-store';
import { provisionBucket } from '../../../local/provision';
import { s3 } from '../../../shared/aws-clients';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, createAuditDatabase, withDatabase } from './audit-database';

let db: AuditDatabase;
const bucket = `audit-digest-handler-${process.pid}-${Date.now().toString(36)}`;

beforeAll(async () => {
  db = await createAuditDatabase('digest_handler');
  await provisionBucket(process.env.AWS_ENDPOINT_URL_S3 as string, bucket);
  await appendBatch(
    mskEvent([0, 1, 2].map((offset) => cloudEventRecord({ topic: 'genai.digested', offset }))),
    {
      store: new PostgresAuditEventStore(pooled(db.owner)),
      decode: decodeJsonCloudEvent,
    },
  );
});
afterAll(async () => {
  await db?.drop();
});

describe('audit-digest handler', () => {
  it('writes a digest of every chain head per invocation, chained, as audit_digest_login', async () => {
    const login = withDatabase(db.url, db.name, 'audit_digest_login');
    // The handler reads its configuration at import, as in Lambda; put the stack's back afterwards.
    const saved = { ...process.env };
    Object.assign(process.env, { DIGEST_BUCKET: bucket, DATABASE_URL: login, DATABASE_ROLE: 'audit_reader' });
    const { handler } = await import('../../../functions/audit-digest/handler').finally(() => {
      process.env = saved;
    });
    const first = await handler();
    expect(first).toMatchObject({ key: expect.stringMatching(/^audit-digests\/\d{4}\//), chains: 1 });
    const second = await handler();
    expect(second.key > first.key).toBe(true);
    const check = await readDigests(new S3DigestStore(s3(), bucket, 'audit-digests/').all());
    expect(check.problem).toBeUndefined();
    expect(check.digests).toBe(2);
    expect([...(check.checkpoints.get('genai.digested-0')?.keys() ?? [])]).toEqual([3n]);

    // That login reads the heads and nothing else.
    const reader = new pg.Client({ connectionString: login, options: '-c role=audit_reader' });
    await reader.connect();
    try {
      for (const statement of [
        'SELECT * FROM audit_event',
        'SELECT * FROM audit_event_ids',
        "SELECT * FROM audit_append('{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
        'SET ROLE audit_writer',
      ]) {
        await expect(reader.query(statement), statement).rejects.toThrow(/permission denied/);
      }
    } finally {
      await reader.end();
    }
  });
});
