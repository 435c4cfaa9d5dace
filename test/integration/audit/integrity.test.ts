import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { contentHashOf } from '../../../functions/audit-append/audit-record';
import { databaseSettingsFromEnv } from '../../../functions/audit-append/database-settings';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { LambdaDatabase, pooled } from '../../../functions/audit-append/postgres-pool';
import { runAuditCommand } from '../../../ops/audit/command';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import { type AuditDatabase, createAuditDatabase, ensureWriterLogin, withDatabase } from './audit-database';

let db: AuditDatabase;
let reader: PostgresAuditReader;

beforeAll(async () => {
  db = await createAuditDatabase('integrity');
  reader = new PostgresAuditReader(db.owner);
});
afterAll(async () => {
  await db?.drop();
});

async function appendTo(topic: string, offsets: number[], options: { partition?: number; at?: Date } = {}) {
  const at = options.at;
  const store = new PostgresAuditEventStore(pooled(db.owner), at ? { recordedAt: () => at } : {});
  const records = offsets.map((offset) =>
    cloudEventRecord({ topic, partition: options.partition ?? 0, offset }),
  );
  return appendBatch(mskEvent(records), { store, decode: decodeJsonCloudEvent });
}

/** Runs statements as a superuser with the append-only triggers out of the way, as an attacker could. */
async function behindTheTriggersBack(statements: string[], how: 'replica' | 'disable-trigger' = 'replica') {
  const client = await db.owner.connect();
  try {
    await client.query('BEGIN');
    if (how === 'replica') await client.query('SET LOCAL session_replication_role = replica');
    else await client.query('ALTER TABLE audit_event DISABLE TRIGGER USER');
    for (const statement of statements) await client.query(statement);
    if (how === 'disable-trigger') await client.query('ALTER TABLE audit_event ENABLE TRIGGER USER');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

describe('append-only store', () => {
  it('refuses UPDATE, DELETE and TRUNCATE, even for the owner', async () => {
    await appendTo('payment.succeeded', [0, 1]);
    for (const statement of [
      "UPDATE audit_event SET data = '{}' WHERE topic = 'payment.succeeded'",
      "DELETE FROM audit_event WHERE topic = 'payment.succeeded'",
      'TRUNCATE audit_event',
      "UPDATE audit_event_ids SET body_hash = '\\x00' WHERE topic = 'payment.succeeded'",
      'DELETE FROM audit_event_ids',
      'DELETE FROM audit_conflicts',
      // A month partition itself, and the chain heads (a deleted head made verify skip its chain).
      `TRUNCATE audit_event_${new Date().toISOString().slice(0, 7).replace('-', '_')}`,
      "DELETE FROM audit_chain_head WHERE topic = 'payment.succeeded'",
      'TRUNCATE audit_chain_head',
    ]) {
      await expect(db.owner.query(statement), statement).rejects.toThrow(/append-only/);
    }
    expect((await reader.verify({ topic: 'payment.succeeded' })).ok).toBe(true);
  });

  it("gives the function's role (audit_writer) only SELECT and the append function: it inserts only through it", async () => {
    const login = await ensureWriterLogin(db.owner);
    const writer = new pg.Pool({ connectionString: withDatabase(db.url, db.name, login), max: 1 });
    try {
      const store = new PostgresAuditEventStore(pooled(writer));
      const result = await appendBatch(mskEvent([cloudEventRecord({ topic: 'payment.failed', offset: 0 })]), {
        store,
        decode: decodeJsonCloudEvent,
      });
      expect(result.appended).toBe(1);
      const { rows } = await writer.query(
        "SELECT count(*)::int AS n FROM audit_event WHERE topic = 'payment.failed'",
      );
      expect(rows[0].n).toBe(1);
      for (const statement of [
        "UPDATE audit_event SET data = '{}' WHERE topic = 'payment.failed'",
        "DELETE FROM audit_event WHERE topic = 'payment.failed'",
        "UPDATE audit_chain_head SET last_seq = 0 WHERE topic = 'payment.failed'",
        `SELECT * FROM audit_append_at(${"'{}', ".repeat(11)}now() - interval '1 year')`,
        "SELECT * FROM audit_drop_partitions_before(now() - interval '1 year')",
        'DROP TABLE audit_event',
        // Around audit_append: an unchained row, an id that would make a future event a "duplicate", a conflict.
        'INSERT INTO audit_event DEFAULT VALUES',
        "INSERT INTO audit_event_ids (ce_id, body_hash) VALUES ('planted', '\\x00')",
        'INSERT INTO audit_conflicts DEFAULT VALUES',
        'CREATE TABLE public.planted (n int)',
      ]) {
        await expect(writer.query(statement), statement).rejects.toThrow(/permission denied|must be owner/);
      }
    } finally {
      await writer.end();
    }
  });
});

describe('the SECURITY DEFINER functions', () => {
  it("ignore the caller's temporary tables: one named like the id table does not make a redelivery new", async () => {
    const login = await ensureWriterLogin(db.owner);
    const writer = new pg.Pool({ connectionString: withDatabase(db.url, db.name, login), max: 1 });
    try {
      const deliver = () =>
        appendBatch(
          mskEvent([cloudEventRecord({ topic: 'payment.failed', offset: 40, id: 'shadowed-id' })]),
          {
            store: new PostgresAuditEventStore(pooled(writer)),
            decode: decodeJsonCloudEvent,
          },
        );
      expect(await deliver()).toMatchObject({ appended: 1, duplicates: 0 });
      // One session (max 1): the temporary tables are there when audit_append runs.
      await writer.query('CREATE TEMP TABLE audit_event_ids (LIKE public.audit_event_ids)');
      await writer.query('CREATE TEMP TABLE audit_chain_head (LIKE public.audit_chain_head)');
      expect(await deliver()).toMatchObject({ appended: 0, duplicates: 1 });
      const { rows } = await db.owner.query(
        "SELECT count(*)::int AS n FROM audit_event WHERE ce_id = 'shadowed-id'",
      );
      expect(rows[0].n).toBe(1);
    } finally {
      await writer.end();
    }
  });

  it('pin search_path with pg_temp last, and retention checks its 90 days in UTC', async () => {
    const { rows } = await db.owner.query<{ name: string; config: string[] }>(
      "SELECT p.oid::regprocedure::text AS name, p.proconfig AS config FROM pg_proc p WHERE p.prosecdef AND p.proname LIKE 'audit%'",
    );
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const { name, config } of rows) {
      expect(config, name).toContain('search_path=public, pg_temp');
    }
    expect(rows.find((row) => row.name.startsWith('audit_drop_partitions_before'))?.config).toContain(
      'TimeZone=UTC',
    );
  });
});

describe('the Lambda connection', () => {
  it('runs as audit_writer when the login is more (the master user in AWS), and can still append', async () => {
    const database = new LambdaDatabase(
      { ...databaseSettingsFromEnv({ DATABASE_URL: db.url }), role: 'audit_writer' },
      async () => '',
    );
    try {
      const { rows } = await database.withConnection((client) => client.query('SELECT current_user AS role'));
      expect(rows[0]?.role).toBe('audit_writer');
      const result = await appendBatch(mskEvent([cloudEventRecord({ topic: 'payment.role', offset: 0 })]), {
        store: new PostgresAuditEventStore(database),
        decode: decodeJsonCloudEvent,
      });
      expect(result.appended).toBe(1);
      for (const statement of [
        'ALTER TABLE audit_event DISABLE TRIGGER USER',
        "UPDATE audit_chain_head SET last_seq = 0 WHERE topic = 'payment.role'",
        'SET session_replication_role = replica',
      ]) {
        await expect(
          database.withConnection((client) => client.query(statement)),
          statement,
        ).rejects.toThrow(/permission denied|must be owner/);
      }
    } finally {
      await database.end();
    }
  });

  it('has the server cancel a statement that outlives DATABASE_STATEMENT_TIMEOUT_MS', async () => {
    const database = new LambdaDatabase(
      databaseSettingsFromEnv({ DATABASE_URL: db.url, DATABASE_STATEMENT_TIMEOUT_MS: '100' }),
      async () => '',
    );
    try {
      // query_canceled: a non-record error, so appendBatch fails the batch and the ESM retries it.
      await expect(
        database.withConnection((client) => client.query('SELECT pg_sleep(5)')),
      ).rejects.toMatchObject({ code: '57014' });
    } finally {
      await database.end();
    }
  });
});

describe('audit verify', () => {
  it('passes on untouched chains', async () => {
    await appendTo('genai.response', [0, 1, 2, 3]);
    await appendTo('genai.response', [4, 5]);
    await appendTo('genai.response', [0, 1, 2], { partition: 1 });
    const report = await reader.verify({ topic: 'genai.response' });
    expect(report.ok).toBe(true);
    // Pages of a few rows walk the same chain.
    expect(await reader.verify({ topic: 'genai.response', pageSize: 4 })).toEqual(report);
    expect(report.chains.map((chain) => [chain.partition, chain.rowsChecked, chain.lastSeq])).toEqual([
      [0, 6, 6n],
      [1, 3, 3n],
    ]);
  });

  it('names the first broken link when a row was changed behind the trigger (session_replication_role)', async () => {
    const topic = 'genai.tamper.content';
    await appendTo(topic, [100, 101, 102, 103, 104]);
    await behindTheTriggersBack([
      `UPDATE audit_event SET data = jsonb_set(data, '{tokens}', '999') WHERE topic = '${topic}' AND seq = 3`,
      `UPDATE audit_event SET data = '{}' WHERE topic = '${topic}' AND seq = 4`,
    ]);
    const { rows } = await db.owner.query(
      'SELECT encode(content_hash, $2) AS stored FROM audit_event WHERE topic = $1 AND seq = 3',
      [topic, 'hex'],
    );
    const report = await reader.verify();
    expect(report.ok).toBe(false);
    expect(report.firstBreak).toMatchObject({
      topic,
      partition: 0,
      seq: 3n,
      offset: 102,
      ceId: `${topic}-0-102`,
      reason: 'content-changed',
      expected: rows[0].stored,
    });
    expect(report.firstBreak?.actual).toMatch(/^[0-9a-f]{64}$/);
    expect(report.firstBreak?.actual).not.toBe(rows[0].stored);
    // The other chains are still reported as intact.
    expect(
      report.chains.find((chain) => chain.topic === 'genai.response' && chain.partition === 0)?.broken,
    ).toBe(undefined);
  });

  it('finds a row whose hashes were recomputed too (ALTER TABLE ... DISABLE TRIGGER)', async () => {
    const topic = 'genai.tamper.rehash';
    await appendTo(topic, [0, 1, 2, 3]);
    // Change row 2's data and recompute its content hash, so the row looks consistent on its own.
    const { rows } = await db.owner.query(
      `SELECT topic, kafka_partition AS partition, kafka_offset::int AS offset, kafka_timestamp::float8 AS timestamp,
              kafka_key AS key, headers, ce, data, raw_value AS "rawValue"
       FROM audit_event WHERE topic = $1 AND seq = 2`,
      [topic],
    );
    const forged = { ...rows[0], data: { prompt: 'nothing to see', tokens: 0 } };
    await behindTheTriggersBack(
      [
        `UPDATE audit_event SET data = '${JSON.stringify(forged.data)}',
           content_hash = '\\x${contentHashOf(forged).toString('hex')}' WHERE topic = '${topic}' AND seq = 2`,
      ],
      'disable-trigger',
    );
    const report = await reader.verify({ topic });
    expect(report.firstBreak).toMatchObject({ topic, seq: 2n, offset: 1, reason: 'row-hash-mismatch' });
  });

  it('finds a query column changed without touching the hashed content', async () => {
    const topic = 'genai.tamper.columns';
    await appendTo(topic, [0, 1, 2]);
    await behindTheTriggersBack([
      `UPDATE audit_event SET ce_type = 'payment.refunded', ce_time = ce_time - interval '1 day' WHERE topic = '${topic}' AND seq = 2`,
    ]);
    expect((await reader.verify({ topic })).firstBreak).toMatchObject({
      seq: 2n,
      reason: 'columns-changed',
      actual: 'changed: ce_type, ce_time',
    });
  });

  it('verifies a time range: starts at its first row, checks only rows recorded in it', async () => {
    const topic = 'genai.range';
    const day = 24 * 3600 * 1000;
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * day);
    await appendTo(topic, [0, 1], { at: at(3) });
    await appendTo(topic, [2, 3], { at: at(2) });
    await appendTo(topic, [4, 5], { at: at(1) });
    const range = { topic, from: at(2.5), to: at(1.5) };
    expect((await reader.verify(range)).chains).toMatchObject([
      { startedFrom: 'range-start', startSeq: 2n, rowsChecked: 2, lastSeq: 4n },
    ]);

    // Tampering before the range is not the range's business; inside it, it is found.
    await behindTheTriggersBack([`UPDATE audit_event SET data = '{}' WHERE topic = '${topic}' AND seq = 1`]);
    expect((await reader.verify(range)).ok).toBe(true);
    expect((await reader.verify({ topic })).firstBreak).toMatchObject({ seq: 1n, reason: 'content-changed' });
    await behindTheTriggersBack([`UPDATE audit_event SET data = '{}' WHERE topic = '${topic}' AND seq = 4`]);
    expect((await reader.verify(range)).firstBreak).toMatchObject({ seq: 4n, reason: 'content-changed' });
  });

  it('finds a deleted row and rows cut from the end of a chain', async () => {
    const topic = 'genai.tamper.delete';
    await appendTo(topic, [0, 1, 2, 3, 4]);
    await behindTheTriggersBack([`DELETE FROM audit_event WHERE topic = '${topic}' AND seq = 2`]);
    expect((await reader.verify({ topic })).firstBreak).toMatchObject({
      seq: 2n,
      reason: 'missing-link',
      expected: 'seq 2',
      actual: 'seq 3',
    });

    const tail = 'genai.tamper.tail';
    await appendTo(tail, [0, 1, 2]);
    await behindTheTriggersBack([`DELETE FROM audit_event WHERE topic = '${tail}' AND seq = 3`]);
    expect((await reader.verify({ topic: tail })).firstBreak).toMatchObject({
      seq: 3n,
      reason: 'head-mismatch',
    });
  });
});

describe('retention', () => {
  it('drops whole month partitions older than 90 days and keeps verification working through the anchor', async () => {
    const topic = 'payment.retention';
    const day = 24 * 3600 * 1000;
    const old = new Date(Date.now() - 200 * day);
    await appendTo(topic, [0, 1, 2], { at: old });
    await appendTo(topic, [3, 4], { at: new Date(Date.now() - 150 * day) });
    await appendTo(topic, [5, 6]);
    expect((await reader.verify({ topic })).ok).toBe(true);

    await expect(reader.dropPartitionsBefore(new Date(Date.now() - 30 * day))).rejects.toThrow(
      /at least 90 days/,
    );

    const dropped = await reader.dropPartitionsBefore(new Date(Date.now() - 90 * day));
    expect(dropped.length).toBeGreaterThanOrEqual(2);
    expect(dropped.reduce((sum, partition) => sum + partition.droppedRows, 0)).toBe(5);
    const { rows } = await db.owner.query(
      `SELECT up_to_seq::int, (SELECT count(*)::int FROM audit_event WHERE topic = $1) AS remaining,
              (SELECT count(*)::int FROM audit_event_ids WHERE topic = $1) AS ids
       FROM audit_chain_anchor WHERE topic = $1 ORDER BY up_to_seq`,
      [topic],
    );
    expect(rows).toEqual([
      { up_to_seq: 3, remaining: 2, ids: 2 },
      { up_to_seq: 5, remaining: 2, ids: 2 },
    ]);

    const report = await reader.verify({ topic });
    expect(report).toMatchObject({ ok: true });
    expect(report.chains[0]).toMatchObject({ startedFrom: 'retention-anchor', startSeq: 5n, rowsChecked: 2 });

    // The chain goes on after retention, and tampering with what remains is still found.
    await appendTo(topic, [7]);
    expect((await reader.verify({ topic })).ok).toBe(true);
    await behindTheTriggersBack([`UPDATE audit_event SET data = '{}' WHERE topic = '${topic}' AND seq = 6`]);
    expect((await reader.verify({ topic })).firstBreak).toMatchObject({ seq: 6n, reason: 'content-changed' });
  });
});

describe('audit CLI', () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const status = await runAuditCommand(argv, {
      databaseUrl: db.url,
      io: { out: (line) => out.push(line), err: (line) => out.push(line) },
    });
    return { status, out: out.join('\n') };
  };

  it('verify prints the first broken link precisely and exits 1', async () => {
    const topic = 'genai.cli.tamper';
    await appendTo(topic, [20, 21, 22]);
    expect(await run(['verify', '--topic', topic])).toMatchObject({
      status: 0,
      out: expect.stringContaining('all chains intact'),
    });
    await behindTheTriggersBack([
      `UPDATE audit_event SET kafka_offset = 99 WHERE topic = '${topic}' AND seq = 2`,
    ]);
    const { status, out } = await run(['verify', '--topic', topic]);
    expect(status).toBe(1);
    expect(out).toMatch(
      new RegExp(
        `first broken link: ${topic.replaceAll('.', '\\.')}-0 seq 2 \\(offset 99, ce_id ${topic.replaceAll('.', '\\.')}-0-21\\): ` +
          'content-changed, expected [0-9a-f]{64}, actual [0-9a-f]{64}',
      ),
    );
  });

  it('query finds events by correlation id and prints them', async () => {
    const store = new PostgresAuditEventStore(pooled(db.owner));
    await appendBatch(
      mskEvent([cloudEventRecord({ topic: 'genai.cli.query', offset: 0, correlationId: 'case-cli-1' })]),
      { store, decode: decodeJsonCloudEvent },
    );
    const { status, out } = await run(['query', '--correlation-id', 'case-cli-1']);
    expect(status).toBe(0);
    expect(out).toContain('genai.cli.query-0-0');
    expect(out).toContain('1 event');
    expect((await run(['query'])).status).toBe(2);
  });
});
