import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildAuditRecord } from '../../../functions/audit-append/audit-record';
import {
  APPEND,
  PostgresAuditEventStore,
  wireColumns,
} from '../../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../../functions/audit-append/postgres-pool';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { appendThroughEngine } from '../../unit/audit/support/append-through-engine';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, createAuditDatabase } from './audit-database';

let db: AuditDatabase;
let store: PostgresAuditEventStore;
let reader: PostgresAuditReader;
let topic: string;
let testNumber = 0;

beforeAll(async () => {
  db = await createAuditDatabase('append');
  store = new PostgresAuditEventStore(pooled(db.owner));
  reader = new PostgresAuditReader(db.owner);
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(() => {
  // Every test writes its own topics, so counts and chains do not mix between tests.
  testNumber += 1;
  topic = `genai.request.t${testNumber}`;
});

const append = (event: ReturnType<typeof mskEvent>) =>
  appendThroughEngine(event, { store, decode: decodeJsonCloudEvent });

async function count(sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await db.owner.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sql}`, values);
  return Number(rows[0]?.n);
}

const build = (record: ReturnType<typeof cloudEventRecord>) =>
  buildAuditRecord(record, decodeJsonCloudEvent(record));

const eventsOf = (topics: string[]) => count('audit_event WHERE topic = ANY($1)', [topics]);

describe('audit-append against PostgreSQL', () => {
  it('stores every attribute, coordinates, key, headers, data and raw value', async () => {
    const record = cloudEventRecord({
      topic,
      partition: 2,
      offset: 41,
      correlationId: 'corr-1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      data: { prompt: 'why?', amount: { minor: 1250, currency: 'EUR' }, tags: ['a', 'b'] },
      extraHeaders: { binary: [0, 255, 1] },
    });
    const result = await append(mskEvent([record]));
    expect(result).toMatchObject({
      appended: 1,
      duplicates: 0,
      conflicts: [],
      poison: [],
      batchItemFailures: [],
    });

    const { rows } = await db.owner.query(
      `SELECT topic, kafka_partition, kafka_offset::int, seq::int, kafka_timestamp::text, kafka_key, headers, ce, data,
              raw_value, ce_id, ce_type, ce_subject, ce_time, correlation_id FROM audit_event WHERE topic = $1`,
      [topic],
    );
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({
      topic,
      kafka_partition: 2,
      kafka_offset: 41,
      seq: 1,
      kafka_timestamp: String(record.timestamp),
      ce_id: `${topic}-2-41`,
      ce_type: topic,
      correlation_id: 'corr-1',
      data: { prompt: 'why?', amount: { minor: 1250, currency: 'EUR' }, tags: ['a', 'b'] },
    });
    expect(row.kafka_key).toEqual(Buffer.from(record.key as string, 'base64'));
    expect(row.raw_value).toEqual(Buffer.from(record.value as string, 'base64'));
    expect(row.ce).toMatchObject({ id: `${topic}-2-41`, specversion: '1.0', correlationid: 'corr-1' });
    expect(row.ce.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(row.ce_time).toEqual(new Date(Date.UTC(2026, 10, 1, 12, 0, 41)));
    expect(row.headers).toContainEqual(['binary', { base64: Buffer.from([0, 255, 1]).toString('base64') }]);
    expect(row.headers).toContainEqual(['ce_correlationid', 'corr-1']);
  });

  it('leaves exactly one row per event after duplicate delivery and a replay of the same batch', async () => {
    const records = [0, 1, 2, 3, 4].map((offset) => cloudEventRecord({ topic, offset }));
    const other = [0, 1, 2].map((offset) => cloudEventRecord({ topic, partition: 1, offset }));
    const batch = mskEvent([...records, ...other]);

    expect(await append(batch)).toMatchObject({ appended: 8, duplicates: 0 });
    // Redelivery of the same batch (a retry after a lost response), then a replay after an offset reset with
    // a batch cut differently, holding the same record twice.
    expect(await append(batch)).toMatchObject({ appended: 0, duplicates: 8, conflicts: [] });
    const replay = mskEvent([...records.slice(2), records[4] as (typeof records)[number], ...other]);
    expect(await append(replay)).toMatchObject({ appended: 0, duplicates: 7, conflicts: [] });

    expect(await eventsOf([topic])).toBe(8);
    expect(await count('(SELECT DISTINCT ce_id FROM audit_event WHERE topic = $1) ids', [topic])).toBe(8);
    const { rows } = await db.owner.query(
      'SELECT kafka_partition, last_seq::int FROM audit_chain_head WHERE topic = $1 ORDER BY 1',
      [topic],
    );
    expect(rows).toEqual([
      { kafka_partition: 0, last_seq: 5 },
      { kafka_partition: 1, last_seq: 3 },
    ]);
    expect((await reader.verify({ topic })).ok).toBe(true);
  });

  it('keeps the first of two deliveries with one id inside a batch', async () => {
    const body = {
      id: 'same-id-in-batch',
      subject: 'incident-9',
      time: '2026-11-01T12:00:00Z',
      data: { n: 1 },
    };
    const first = cloudEventRecord({ topic, offset: 0, ...body });
    const again = cloudEventRecord({
      topic,
      offset: 1,
      ...body,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(await append(mskEvent([first, again]))).toMatchObject({ appended: 1, duplicates: 1 });
    expect(await eventsOf([topic])).toBe(1);
  });

  it('records and reports a redelivered id with a different body, never dropping it silently', async () => {
    const original = cloudEventRecord({ topic, offset: 0, id: 'pay-1', data: { amountMinor: 1000 } });
    await append(mskEvent([original]));
    const tampered = cloudEventRecord({ topic, offset: 7, id: 'pay-1', data: { amountMinor: 9000 } });
    const next = cloudEventRecord({ topic, offset: 8 });

    const result = await append(mskEvent([tampered, next]));
    expect(result.conflicts).toEqual([
      { topic, partition: 0, offset: 7, ceId: 'pay-1', source: 'urn:mobility:genai-service' },
    ]);
    expect(result).toMatchObject({ appended: 1, batchItemFailures: [] });

    const { rows } = await db.owner.query(
      `SELECT ce_id, kafka_offset::int, data, stored_body_hash <> body_hash AS differs
       FROM audit_conflicts WHERE topic = $1`,
      [topic],
    );
    expect(rows).toEqual([{ ce_id: 'pay-1', kafka_offset: 7, data: { amountMinor: 9000 }, differs: true }]);
    // The stored event is the original.
    const stored = await reader.query({ ceId: 'pay-1' });
    expect(stored.map((row) => row.data)).toEqual([{ amountMinor: 1000 }]);
    // Delivered again: reported again, recorded once.
    expect((await append(mskEvent([tampered]))).conflicts).toHaveLength(1);
    expect(await count('audit_conflicts WHERE topic = $1', [topic])).toBe(1);
  });

  it('keys idempotency by CloudEvents source + id: one id from two sources is two events, each stored once', async () => {
    const body = { id: 'shared-id', subject: 'incident-3', time: '2026-11-01T12:00:00Z', data: { n: 3 } };
    const fromGenai = cloudEventRecord({ topic, offset: 0, ...body });
    const fromPayments = cloudEventRecord({ topic, offset: 1, ...body, source: 'urn:mobility:payments' });
    // In one batch, and across batches (the second source's event arriving after the first is stored).
    const elsewhere = `${topic}.later`;
    const later = (offset: number, source?: string) =>
      cloudEventRecord({ topic: elsewhere, offset, ...body, id: 'shared-id-later', source });

    expect(await append(mskEvent([fromGenai, fromPayments]))).toMatchObject({
      appended: 2,
      duplicates: 0,
      conflicts: [],
    });
    expect(await append(mskEvent([later(0)]))).toMatchObject({ appended: 1 });
    expect(await append(mskEvent([later(1, 'urn:mobility:payments')]))).toMatchObject({
      appended: 1,
      duplicates: 0,
      conflicts: [],
    });
    // Redelivered: the same source and id is a duplicate, whichever source.
    expect(
      await append(mskEvent([fromPayments, fromGenai, later(0), later(1, 'urn:mobility:payments')])),
    ).toMatchObject({ appended: 0, duplicates: 4, conflicts: [] });
    // The same source and id with another body is still a conflict.
    const changed = cloudEventRecord({
      topic,
      offset: 2,
      ...body,
      source: 'urn:mobility:payments',
      data: { n: 4 },
    });
    expect((await append(mskEvent([changed]))).conflicts).toMatchObject([{ ceId: 'shared-id' }]);

    expect(await eventsOf([topic, elsewhere])).toBe(4);
    const sources = async (filter: { ceId: string; source?: string }) =>
      (await reader.query(filter)).map((row) => row.source).sort();
    expect(await sources({ ceId: 'shared-id' })).toEqual([
      'urn:mobility:genai-service',
      'urn:mobility:payments',
    ]);
    expect(await sources({ ceId: 'shared-id', source: 'urn:mobility:payments' })).toEqual([
      'urn:mobility:payments',
    ]);
    expect((await reader.verify({ topic })).ok).toBe(true);
    expect((await reader.verify({ topic: elsewhere })).ok).toBe(true);
  });

  it('sends a poison record and its successors to batch item failures and stores the rest', async () => {
    const records = [
      cloudEventRecord({ topic, offset: 10 }),
      cloudEventRecord({ topic, offset: 11, rawValue: '{not json' }),
      cloudEventRecord({ topic, offset: 12 }),
      cloudEventRecord({ topic, partition: 1, offset: 5 }),
      cloudEventRecord({ topic, partition: 1, offset: 6, time: '2026-02-30T00:00:00Z' }),
    ];
    const result = await append(mskEvent(records));

    expect(result.poison).toEqual([
      expect.objectContaining({ topic, partition: 0, offset: 11, reason: expect.stringContaining('JSON') }),
      expect.objectContaining({
        topic,
        partition: 1,
        offset: 6,
        reason: expect.stringContaining('RFC 3339'),
      }),
    ]);
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: { partition: `${topic}-0`, offset: 11 } },
      { itemIdentifier: { partition: `${topic}-0`, offset: 12 } },
      { itemIdentifier: { partition: `${topic}-1`, offset: 6 } },
    ]);
    const { rows } = await db.owner.query(
      'SELECT kafka_partition, kafka_offset::int FROM audit_event WHERE topic = $1 ORDER BY 1, 2',
      [topic],
    );
    expect(rows).toEqual([
      { kafka_partition: 0, kafka_offset: 10 },
      { kafka_partition: 0, kafka_offset: 12 },
      { kafka_partition: 1, kafka_offset: 5 },
    ]);
    // The ESM redelivers from the failed offset: the successor already stored is a duplicate.
    const retry = await append(mskEvent(records.slice(1, 3)));
    expect(retry).toMatchObject({ appended: 0, duplicates: 1 });
  });

  describe('when the database refuses part of a batch', () => {
    const failOn = async (ceId: string, sqlstate: string) => {
      await db.owner.query(`CREATE OR REPLACE FUNCTION test_fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.ce ->> 'id' = '${ceId}' THEN RAISE EXCEPTION 'injected failure' USING ERRCODE = '${sqlstate}'; END IF;
          RETURN NEW;
        END $$`);
      await db.owner.query(
        'CREATE TRIGGER test_fail_insert BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION test_fail_insert()',
      );
    };
    const stopFailing = () => db.owner.query('DROP TRIGGER IF EXISTS test_fail_insert ON audit_event');

    async function snapshot() {
      const { rows } = await db.owner.query(
        `SELECT (SELECT count(*) FROM audit_event WHERE topic = $1)::int AS events,
                (SELECT count(*) FROM audit_event_ids WHERE topic = $1)::int AS ids,
                (SELECT coalesce(sum(last_seq), 0) FROM audit_chain_head WHERE topic = $1)::int AS seqs`,
        [topic],
      );
      return rows[0];
    }

    it('rolls back the refused partition cleanly, reports it as batch item failures and stores the others', async () => {
      await append(mskEvent([cloudEventRecord({ topic, partition: 1, offset: 0 })]));
      const before = await snapshot();
      const batch = mskEvent([
        cloudEventRecord({ topic, offset: 0 }),
        cloudEventRecord({ topic, offset: 1 }),
        cloudEventRecord({ topic, partition: 1, offset: 1 }),
        cloudEventRecord({ topic, partition: 1, offset: 2, id: 'refused' }),
        cloudEventRecord({ topic, partition: 1, offset: 3 }),
      ]);
      await failOn('refused', '22023');
      try {
        const result = await append(batch);
        expect(result.rejected).toEqual([expect.objectContaining({ topic, partition: 1, offset: 1 })]);
        expect(result.batchItemFailures).toEqual(
          [1, 2, 3].map((offset) => ({
            itemIdentifier: { partition: `${topic}-1`, offset },
          })),
        );
      } finally {
        await stopFailing();
      }
      // Partition 0 stored; partition 1 exactly as before: no rows, no claimed ids, head not advanced.
      expect(await snapshot()).toEqual({
        events: before.events + 2,
        ids: before.ids + 2,
        seqs: before.seqs + 2,
      });
      expect(await count('audit_event WHERE topic = $1 AND kafka_partition = 1', [topic])).toBe(1);
      // The ESM redelivers partition 1: everything is stored once, the chains verify.
      const retry = await append(batch);
      expect(retry).toMatchObject({ appended: 3, duplicates: 2, batchItemFailures: [] });
      expect(await eventsOf([topic])).toBe(6);
      expect((await reader.verify({ topic })).ok).toBe(true);
    });

    describe('with a batch large enough to go in pipelined chunks', () => {
      it('writes every chunk in one transaction: chains, duplicates and conflicts run across chunks', async () => {
        const same = { time: '2026-11-01T12:00:00Z', subject: 'incident-9' };
        const records = Array.from({ length: 100 }, (_, offset) =>
          offset === 2
            ? cloudEventRecord({ topic, offset, id: 'sent-twice', ...same, data: { n: 1 } })
            : offset === 4
              ? cloudEventRecord({ topic, offset, id: 'clash', ...same, data: { n: 1 } })
              : offset === 90
                ? cloudEventRecord({ topic, offset, id: 'sent-twice', ...same, data: { n: 1 } })
                : offset === 91
                  ? cloudEventRecord({ topic, offset, id: 'clash', ...same, data: { n: 2 } })
                  : cloudEventRecord({ topic, partition: offset % 2, offset }),
        );
        const result = await appendThroughEngine(mskEvent(records), {
          store,
          decode: decodeJsonCloudEvent,
        });
        expect(result).toMatchObject({ appended: 98, duplicates: 1, batchItemFailures: [] });
        expect(result.conflicts).toEqual([expect.objectContaining({ ceId: 'clash', offset: 91 })]);
        const { rows } = await db.owner.query(
          `SELECT kafka_partition AS p, count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last
           FROM audit_event WHERE topic = $1 GROUP BY 1 ORDER BY 1`,
          [topic],
        );
        expect(rows).toEqual([
          // Partition 0: the 50 even offsets and 91, less the duplicate (90) and the conflict (91).
          { p: 0, n: 49, first: 1, last: 49 },
          { p: 1, n: 49, first: 1, last: 49 },
        ]);
        expect(await count('audit_conflicts WHERE ce_id = $1', ['clash'])).toBe(1);
        expect((await reader.verify({ topic })).ok).toBe(true);
      });

      it('writes nothing of the batch when a later chunk fails, and the connection goes on serving', async () => {
        const before = await snapshot();
        const batch = mskEvent(
          Array.from({ length: 100 }, (_, offset) =>
            cloudEventRecord({ topic, offset, ...(offset === 80 ? { id: 'fails-late' } : {}) }),
          ),
        );
        await failOn('fails-late', '57014');
        try {
          await expect(
            appendThroughEngine(batch, { store, decode: decodeJsonCloudEvent }),
          ).rejects.toMatchObject({
            code: '57014',
          });
        } finally {
          await stopFailing();
        }
        expect(await snapshot()).toEqual(before);
        expect(await appendThroughEngine(batch, { store, decode: decodeJsonCloudEvent })).toMatchObject({
          appended: 100,
          batchItemFailures: [],
        });
      });

      it('rolls back the chunks already sent when building the next one fails', async () => {
        const before = await snapshot();
        const chunk = [0, 1, 2].map((offset) => build(cloudEventRecord({ topic, offset })));
        function* failing() {
          yield chunk;
          throw new Error('could not build the second chunk');
        }
        await expect(store.append(failing())).rejects.toThrow('could not build the second chunk');
        expect(await snapshot()).toEqual(before);
        expect(await store.append([chunk])).toEqual(
          [1n, 2n, 3n].map((seq) => ({ outcome: 'appended', seq })),
        );
      });
    });

    it('fails the whole batch on a database error that is not about the data, writing nothing', async () => {
      const before = await snapshot();
      const batch = mskEvent([
        cloudEventRecord({ topic, offset: 0 }),
        cloudEventRecord({ topic, offset: 1, id: 'cancelled' }),
        cloudEventRecord({ topic, partition: 3, offset: 0 }),
      ]);
      await failOn('cancelled', '57014'); // query_canceled, as a statement timeout raises it
      try {
        await expect(append(batch)).rejects.toMatchObject({ code: '57014' });
      } finally {
        await stopFailing();
      }
      expect(await snapshot()).toEqual(before);
      expect(await append(batch)).toMatchObject({ appended: 3, batchItemFailures: [] });
    });
  });

  it('serialises concurrent batches of one partition on its chain head and keeps the chain intact', async () => {
    const pools = Array.from({ length: 4 }, () => new pg.Pool({ connectionString: db.url, max: 1 }));
    try {
      const batches = pools.map((pool, worker) => {
        const records = [0, 1, 2, 3, 4].map((i) => cloudEventRecord({ topic, offset: worker * 10 + i }));
        return appendThroughEngine(mskEvent(records), {
          store: new PostgresAuditEventStore(pooled(pool)),
          decode: decodeJsonCloudEvent,
        });
      });
      const results = await Promise.all(batches);
      expect(results.map((result) => result.appended)).toEqual([5, 5, 5, 5]);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
    const { rows } = await db.owner.query(
      'SELECT min(seq)::int AS first, max(seq)::int AS last, count(DISTINCT seq)::int AS n FROM audit_event WHERE topic = $1',
      [topic],
    );
    expect(rows[0]).toEqual({ first: 1, last: 20, n: 20 });
    expect((await reader.verify({ topic })).firstBreak).toBeUndefined();
  });

  it('stores an id delivered on two partitions at the same moment once, the other delivery being a duplicate', async () => {
    const body = { id: 'twice-at-once', subject: 'incident-x', time: '2026-11-01T12:00:00Z', data: { n: 7 } };
    const pools = [0, 1].map(() => new pg.Pool({ connectionString: db.url, max: 1 }));
    const deliver = (pool: pg.Pool, partition: number) =>
      appendThroughEngine(mskEvent([cloudEventRecord({ topic, partition, offset: 0, ...body })]), {
        store: new PostgresAuditEventStore(pooled(pool)),
        decode: decodeJsonCloudEvent,
      });
    try {
      const outcomes = await Promise.allSettled(pools.map((pool, partition) => deliver(pool, partition)));
      // Either both finish (one appended, one duplicate), or the loser fails with serialization_failure and the
      // ESM's retry sees a duplicate. Either way: one appended, one duplicate, nothing failed or in conflict.
      const results = [];
      for (const [partition, outcome] of outcomes.entries()) {
        if (outcome.status === 'fulfilled') {
          results.push(outcome.value);
          continue;
        }
        expect(outcome.reason).toMatchObject({ code: '40001' });
        results.push(await deliver(pools[partition] as pg.Pool, partition));
      }
      expect(results.map((r) => [r.appended, r.duplicates]).sort()).toEqual([
        [0, 1],
        [1, 0],
      ]);
      for (const result of results) {
        expect(result.batchItemFailures).toEqual([]);
        expect(result.conflicts).toEqual([]);
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
    expect(await count('audit_event WHERE ce_id = $1', ['twice-at-once'])).toBe(1);
  });

  it('fails a batch whose id another partition claimed while it ran with serialization_failure, so it is retried', async () => {
    const record = (partition: number) =>
      cloudEventRecord({ topic, partition, offset: 0, id: 'claimed-meanwhile', data: { n: 1 } });
    const first = await db.owner.connect();
    const second = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      // The first delivery holds its claim uncommitted (the store's statement, in a transaction kept open); the
      // second passes the id lookup (nothing committed yet) and waits on the id's unique index entry until the
      // first commits.
      await first.query('BEGIN');
      const claimed = await first.query({ ...APPEND }, wireColumns([build(record(0))]));
      expect(claimed.rows).toEqual([{ idx: 0, outcome: 'appended', seq: '1' }]);
      const pid = (await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const waiting = new PostgresAuditEventStore(pooled(second)).append([[build(record(1))]]);
      waiting.catch(() => {}); // observed below
      await expect
        .poll(async () => (await db.owner.query('SELECT pg_blocking_pids($1) AS b', [pid])).rows[0]?.b.length)
        .toBe(1);
      await first.query('COMMIT');
      await expect(waiting).rejects.toMatchObject({ code: '40001' });
      expect(await new PostgresAuditEventStore(pooled(second)).append([[build(record(1))]])).toEqual([
        { outcome: 'duplicate' },
      ]);
    } finally {
      first.release();
      await second.end();
    }
    expect(await count('audit_event WHERE ce_id = $1', ['claimed-meanwhile'])).toBe(1);
  });

  it('answers queries by correlation id, type, subject and time range', async () => {
    const records = [
      cloudEventRecord({
        topic,
        offset: 0,
        correlationId: 'case-77',
        subject: 'incident-a',
        type: 'genai.request',
      }),
      cloudEventRecord({
        topic,
        offset: 1,
        correlationId: 'case-77',
        subject: 'incident-a',
        type: 'genai.response',
      }),
      cloudEventRecord({
        topic,
        offset: 2,
        correlationId: 'case-78',
        subject: 'incident-b',
        type: 'genai.request',
      }),
      cloudEventRecord({
        topic,
        offset: 3,
        subject: 'incident-b',
        type: 'genai.hitl.requested',
        time: '2026-12-24T18:30:00.000001+01:00',
      }),
    ];
    await append(mskEvent(records));

    const ids = (rows: Array<{ ceId: string }>) => rows.map((row) => row.ceId);
    expect(ids(await reader.query({ correlationId: 'case-77' }))).toEqual([`${topic}-0-0`, `${topic}-0-1`]);
    expect(ids(await reader.query({ type: 'genai.hitl.requested' }))).toEqual([`${topic}-0-3`]);
    expect(ids(await reader.query({ subject: 'incident-b' }))).toEqual([`${topic}-0-2`, `${topic}-0-3`]);
    const window = await reader.query({
      from: new Date('2026-12-24T17:00:00Z'),
      to: new Date('2026-12-24T18:00:00Z'),
    });
    expect(ids(window)).toEqual([`${topic}-0-3`]);
    expect(window[0]?.time).toEqual(new Date('2026-12-24T17:30:00.000Z'));
  });
});
