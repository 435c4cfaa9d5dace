// Issue 21, external digests: the database owner can rewrite a row and recompute every hash, link, head and
// anchor inside the database, and `audit verify` alone then passes; `audit verify --digests` does not, because
// the digests (in S3, here s3rver) still name the old hashes.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { bodyHashOf, contentHashOf } from '../../../functions/audit-append/audit-record';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../../functions/audit-append/postgres-pool';
import { readDigests } from '../../../functions/audit-digest/digest';
import { S3DigestStore } from '../../../functions/audit-digest/s3-digest-store';
import { LOCAL_CREDENTIALS, provisionBucket } from '../../../local/provision';
import { runAuditCommand } from '../../../ops/audit/command';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, createAuditDatabase } from './audit-database';

let db: AuditDatabase;
const bucket = `audit-digests-test-${process.pid}-${Date.now().toString(36)}`;
const digests = `s3://${bucket}/audit-digests/`;
const s3 = new S3Client({
  endpoint: process.env.AWS_ENDPOINT_URL_S3,
  forcePathStyle: true,
  region: 'eu-west-1',
  ...(process.env.AWS_ACCESS_KEY_ID ? {} : { credentials: LOCAL_CREDENTIALS }),
});

beforeAll(async () => {
  db = await createAuditDatabase('digests');
  await provisionBucket(process.env.AWS_ENDPOINT_URL_S3 as string, bucket);
});
afterAll(async () => {
  s3.destroy();
  await db?.drop();
});

async function run(argv: string[]) {
  const out: string[] = [];
  const status = await runAuditCommand(argv, {
    databaseUrl: db.url,
    io: { out: (line) => out.push(line), err: (line) => out.push(line) },
  });
  return { status, out: out.join('\n') };
}

async function appendTo(topic: string, offsets: number[]) {
  const store = new PostgresAuditEventStore(pooled(db.owner));
  await appendBatch(mskEvent(offsets.map((offset) => cloudEventRecord({ topic, offset }))), {
    store,
    decode: decodeJsonCloudEvent,
  });
}

/** As the store's owner: rewrite row `seq`, then recompute its content hash, every later link and row hash, the head and any anchor. */
async function rewriteAsOwner(topic: string, seq: number, data: unknown) {
  const { rows } = await db.owner.query(
    `SELECT topic, kafka_partition AS partition, kafka_offset::int AS offset, kafka_timestamp::float8 AS timestamp,
            kafka_key AS key, headers, ce, data, raw_value AS "rawValue"
     FROM audit_event WHERE topic = $1 AND seq = $2`,
    [topic, seq],
  );
  const contentHash = contentHashOf({ ...rows[0], data });
  const bodyHash = bodyHashOf({ ...rows[0], data });
  const client = await db.owner.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_event DISABLE TRIGGER USER');
    await client.query('ALTER TABLE audit_chain_anchor DISABLE TRIGGER USER');
    await client.query('ALTER TABLE audit_event_ids DISABLE TRIGGER USER');
    await client.query(
      `UPDATE audit_event SET data = $3, content_hash = $4, body_hash = $5
       WHERE topic = $1 AND kafka_partition = 0 AND seq = $2`,
      [topic, seq, JSON.stringify(data), contentHash, bodyHash],
    );
    await client.query(
      'UPDATE audit_event_ids SET body_hash = $3 WHERE topic = $1 AND kafka_partition = 0 AND seq = $2',
      [topic, seq, bodyHash],
    );
    // Inside the database: the chain from that row on, the head, and the anchors over it.
    await client.query(`DO $$
      DECLARE
        r record;
        v_prev bytea;
      BEGIN
        SELECT prev_hash INTO v_prev FROM audit_event WHERE topic = '${topic}' AND kafka_partition = 0 AND seq = ${seq};
        FOR r IN SELECT e.seq, e.recorded_at, e.content_hash FROM audit_event e
                 WHERE e.topic = '${topic}' AND e.kafka_partition = 0 AND e.seq >= ${seq} ORDER BY e.seq LOOP
          UPDATE audit_event SET prev_hash = v_prev,
                 row_hash = sha256(v_prev || r.content_hash || int8send(r.seq)
                                   || int8send((extract(epoch FROM r.recorded_at) * 1000000)::bigint))
          WHERE topic = '${topic}' AND kafka_partition = 0 AND seq = r.seq
          RETURNING row_hash INTO v_prev;
          UPDATE audit_chain_anchor SET last_hash = v_prev
          WHERE topic = '${topic}' AND kafka_partition = 0 AND up_to_seq = r.seq;
        END LOOP;
        UPDATE audit_chain_head SET last_hash = v_prev WHERE topic = '${topic}' AND kafka_partition = 0;
      END $$`);
    await client.query('ALTER TABLE audit_event_ids ENABLE TRIGGER USER');
    await client.query('ALTER TABLE audit_chain_anchor ENABLE TRIGGER USER');
    await client.query('ALTER TABLE audit_event ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

describe('audit verify --digests', () => {
  const topic = 'payment.digested';

  it('passes while the store matches its digests', async () => {
    await appendTo(topic, [0, 1, 2, 3]);
    expect(await run(['digest', '--to', digests])).toMatchObject({
      status: 0,
      out: expect.stringMatching(/^digest audit-digests\/\d{4}\/\d{2}\/\d{2}\/.+\.json: 1 chain heads$/),
    });
    await appendTo(topic, [4, 5]);
    expect((await run(['digest', '--to', digests])).status).toBe(0);
    await appendTo(topic, [6]);
    expect((await run(['digest', '--to', digests])).status).toBe(0);
    const { status, out } = await run(['verify', '--digests', digests]);
    expect(out).toContain('3 digests form one chain');
    expect(out).toContain('all chains intact');
    expect(status).toBe(0);
  });

  it('finds a row the owner rewrote with every hash, head and anchor recomputed in the database', async () => {
    await rewriteAsOwner(topic, 3, { prompt: 'nothing happened', tokens: 0 });
    // The database alone is consistent again.
    expect((await new PostgresAuditReader(db.owner).verify({ topic })).ok).toBe(true);
    expect((await run(['verify', '--topic', topic])).status).toBe(0);

    const { status, out } = await run(['verify', '--digests', digests]);
    expect(status).toBe(1);
    // The first digest vouched for seq 4: the rewritten row is in 1..4.
    expect(out).toMatch(
      new RegExp(
        `first broken link: payment\\.digested-0 seq 4 \\(offset 3, ce_id payment\\.digested-0-3\\): digest-mismatch, ` +
          'expected [0-9a-f]{64} \\(digest audit-digests/.+\\.json\\), actual [0-9a-f]{64}: a row in seq 1\\.\\.4 changed',
      ),
    );
  });

  it('finds a chain the digests vouch for that is gone from the store', async () => {
    const check = await readDigests(new S3DigestStore(s3, bucket, 'audit-digests/').all());
    expect(check.digests).toBe(3);
    expect(check.problem).toBeUndefined();
    const client = await db.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE audit_chain_head DISABLE TRIGGER USER');
      await client.query('ALTER TABLE audit_event DISABLE TRIGGER USER');
      await client.query('DELETE FROM audit_chain_head WHERE topic = $1', [topic]);
      await client.query('DELETE FROM audit_event WHERE topic = $1', [topic]);
      const report = await new PostgresAuditReader(client).verify({ checkpoints: check.checkpoints });
      expect(report.firstBreak).toMatchObject({
        topic,
        partition: 0,
        seq: 7n,
        reason: 'digest-mismatch',
        actual: 'no such chain in the store',
      });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('finds a digest that was replaced (s3rver has no Object Lock; in AWS compliance mode refuses this)', async () => {
    const listed = await run(['verify', '--digests', digests, '--json']);
    expect(JSON.parse(listed.out).digests).toBe(3);
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'audit-digests/' }));
    const second = list.Contents?.[1]?.Key as string;
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: second }));
    const digest = JSON.parse(await (object.Body?.transformToString() as Promise<string>));
    digest.chains[0].hash = '00'.repeat(32);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: second, Body: JSON.stringify(digest) }));
    const { status, out } = await run(['verify', '--digests', digests]);
    expect(status).toBe(1);
    expect(out).toMatch(
      /^digests BROKEN at audit-digests\/.+\.json: digest chain broken: it names .+ sha256 [0-9a-f]{64}, whose sha256 is [0-9a-f]{64}; the digest before it is .+ sha256 [0-9a-f]{64}$/,
    );
  });
});
