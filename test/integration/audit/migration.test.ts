import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../../functions/audit-append/postgres-pool';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, applyMigrations, createAuditDatabase } from './audit-database';

// Migration 005 on a database that already holds events appended under 001..004 (dev databases are there).
const upTo004 = (file: string) => file < '005';

let db: AuditDatabase;

beforeAll(async () => {
  db = await createAuditDatabase('migration', upTo004);
});
afterAll(async () => {
  await db?.drop();
});

const append = (offsets: number[]) =>
  appendBatch(
    mskEvent(
      offsets.map((offset) =>
        cloudEventRecord({ topic: 'payment.succeeded', offset, correlationId: `case-${offset % 2}` }),
      ),
    ),
    { store: new PostgresAuditEventStore(pooled(db.owner)), decode: decodeJsonCloudEvent },
  );

describe('migration 005 on a database at 004', () => {
  it('keeps the chains, privileges and queries of the events stored before it, and appends after it', async () => {
    expect(await append([0, 1, 2])).toMatchObject({ appended: 3 });
    await applyMigrations(db.url, (file) => !upTo004(file));

    const { rows: indexes } = await db.owner.query<{ name: string; method: string }>(
      `SELECT c.relname AS name, am.amname AS method FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
       WHERE i.indrelid = 'audit_event'::regclass ORDER BY 1`,
    );
    expect(indexes).toContainEqual({ name: 'audit_event_time_brin', method: 'brin' });
    expect(indexes.map((index) => index.name)).not.toContain('audit_event_time');

    const { rows: grants } = await db.owner.query(
      `SELECT has_function_privilege('audit_writer', p.oid, 'EXECUTE') AS writer, p.proname AS name
       FROM pg_proc p WHERE p.proname IN ('audit_append', 'audit_append_at') ORDER BY 2`,
    );
    expect(grants).toEqual([
      { writer: true, name: 'audit_append' },
      { writer: false, name: 'audit_append_at' },
    ]);

    // Redelivered events stored before the migration are still duplicates; new ones continue the chain.
    expect(await append([2, 3, 4])).toMatchObject({ appended: 2, duplicates: 1 });
    const { rows } = await db.owner.query<{ seqs: number[] }>(
      "SELECT array_agg(seq::int ORDER BY seq) AS seqs FROM audit_event WHERE topic = 'payment.succeeded'",
    );
    expect(rows[0]?.seqs).toEqual([1, 2, 3, 4, 5]);
    const reader = new PostgresAuditReader(db.owner);
    expect((await reader.verify()).ok).toBe(true);

    const ids = (found: Array<{ ceId: string }>) => found.map((row) => row.ceId);
    expect(ids(await reader.query({ correlationId: 'case-1' }))).toEqual([
      'payment.succeeded-0-1',
      'payment.succeeded-0-3',
    ]);
    // Offsets 1..3 have event times 12:00:01..12:00:03 (see cloudEventRecord): through the BRIN index.
    const window = await reader.query({
      from: new Date('2026-11-01T12:00:01Z'),
      to: new Date('2026-11-01T12:00:04Z'),
    });
    expect(ids(window)).toEqual(['payment.succeeded-0-1', 'payment.succeeded-0-2', 'payment.succeeded-0-3']);
  });
});

// Migration 009 (idempotency by source + id) on a database at 008 that holds events, a conflict and a month
// partition old enough for retention: the upgrade path of every database deployed before it.
describe('migration 009 on a database at 008', () => {
  const upTo008 = (file: string) => file < '009';
  const day = 24 * 3600 * 1000;
  let at008: AuditDatabase;

  beforeAll(async () => {
    at008 = await createAuditDatabase('migration_009', upTo008);
  });
  afterAll(async () => {
    await at008?.drop();
  });

  const appendAt = (records: ReturnType<typeof cloudEventRecord>[], at?: Date) =>
    appendBatch(mskEvent(records), {
      store: new PostgresAuditEventStore(pooled(at008.owner), at ? { recordedAt: () => at } : {}),
      decode: decodeJsonCloudEvent,
    });
  const event = (
    topic: string,
    offset: number,
    extra: { id?: string; source?: string; data?: unknown } = {},
  ) => cloudEventRecord({ topic, offset, subject: 'incident-1', time: '2026-11-01T12:00:00Z', ...extra });
  const guard = async () =>
    (
      await at008.owner.query<{ acl: string[]; triggers: string[]; key: string[]; owner: string }>(
        `SELECT (SELECT array_agg(format('%s:%s', a.grantee::regrole, a.privilege_type) ORDER BY 1)
                 FROM aclexplode(c.relacl) a) AS acl,
                (SELECT array_agg(format('%s %s', t.tgname, pg_get_triggerdef(t.oid)) ORDER BY 1)
                 FROM pg_trigger t WHERE t.tgrelid = c.oid) AS triggers,
                (SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
                c.relowner::regrole::text AS owner
         FROM pg_class c WHERE c.oid = 'audit_event_ids'::regclass`,
      )
    ).rows[0];

  it('rebuilds the id guard by (id, source) from the stored events: verify stays green, redeliveries stay duplicates', async () => {
    // Before 009: an old month (for retention), events now, and an id used by a second source: refused as a
    // conflict then (the body differs in its source), stored after.
    const old = new Date(Date.now() - 200 * day);
    expect(
      await appendAt(
        [0, 1, 2].map((offset) => event('payment.old', offset)),
        old,
      ),
    ).toMatchObject({
      appended: 3,
    });
    expect(
      await appendAt([event('payment.old', 3, { id: 'reused', source: 'urn:mobility:payments' })], old),
    ).toMatchObject({ appended: 1 });
    expect(await appendAt([0, 1].map((offset) => event('payment.new', offset)))).toMatchObject({
      appended: 2,
    });
    const otherSource = event('payment.new', 2, { id: 'payment.new-0-0', source: 'urn:mobility:payments' });
    expect((await appendAt([otherSource])).conflicts).toHaveLength(1);
    const before = await guard();
    expect(before?.key).toEqual(['ce_id']);

    await applyMigrations(at008.url, (file) => !upTo008(file));

    const after = await guard();
    expect(after).toEqual({ ...before, key: ['ce_id', 'ce_source'] });
    const { rows: counts } = await at008.owner.query<{ ids: number; events: number; sourced: number }>(
      `SELECT (SELECT count(*)::int FROM audit_event_ids) AS ids, (SELECT count(*)::int FROM audit_event) AS events,
              (SELECT count(*)::int FROM audit_event_ids g JOIN audit_event e
                 ON (e.topic, e.kafka_partition, e.seq, e.recorded_at, e.ce_id, e.ce_source)
                  = (g.topic, g.kafka_partition, g.seq, g.recorded_at, g.ce_id, g.ce_source)) AS sourced`,
    );
    expect(counts[0]).toEqual({ ids: 6, events: 6, sourced: 6 });
    const reader = new PostgresAuditReader(at008.owner);
    expect(await reader.verify()).toMatchObject({ ok: true });

    // Stored before 009: still duplicates. The id another source used before is now its own event.
    expect(await appendAt([0, 1].map((offset) => event('payment.new', offset)))).toMatchObject({
      appended: 0,
      duplicates: 2,
      conflicts: [],
    });
    expect(await appendAt([otherSource])).toMatchObject({ appended: 1, duplicates: 0, conflicts: [] });
    // The id of the old month, used by another source now: retention drops the old event's id only.
    expect(await appendAt([event('payment.new', 4, { id: 'reused' })])).toMatchObject({ appended: 1 });

    const dropped = await reader.dropPartitionsBefore(new Date(Date.now() - 90 * day));
    expect(dropped.reduce((sum, partition) => sum + partition.droppedRows, 0)).toBe(4);
    const { rows: reused } = await at008.owner.query(
      "SELECT ce_source, topic FROM audit_event_ids WHERE ce_id = 'reused'",
    );
    expect(reused).toEqual([{ ce_source: 'urn:mobility:genai-service', topic: 'payment.new' }]);
    expect(await appendAt([event('payment.new', 4, { id: 'reused' })])).toMatchObject({ duplicates: 1 });
    expect(await reader.verify()).toMatchObject({ ok: true });
  });

  it('refuses to guess: an id guard row that names no stored event stops it, and nothing changes', async () => {
    const planted = await createAuditDatabase('migration_009_orphan', upTo008);
    try {
      await planted.owner.query(
        `INSERT INTO audit_event_ids (ce_id, body_hash, topic, kafka_partition, seq, recorded_at, kafka_offset)
         VALUES ('planted', '\\x00', 'payment.none', 0, 1, now(), 0)`,
      );
      await expect(applyMigrations(planted.url, (file) => !upTo008(file))).rejects.toThrow(
        /1 id guard row\(s\) name no stored event \(e\.g\. ce_id planted -> payment\.none-0 seq 1\)/,
      );
      const { rows } = await planted.owner.query<{ key: string[] }>(
        `SELECT array_agg(a.attname::text) AS key FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = 'audit_event_ids'::regclass AND i.indisprimary`,
      );
      expect(rows[0]?.key).toEqual(['ce_id']);
    } finally {
      await planted.drop();
    }
  });
});
