import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { pooled } from '../../../functions/audit-append/database';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { PostgresAuditReader } from '../../../functions/audit-append/postgres-audit-reader';
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
