// The local stack's PGlite server: one backend, several connections at once (the function's execution
// environments, the dev table, the audit CLI). The first two tests fail with pglite-socket 0.2.17 -m 16, the
// server the stack ran before ("prepared statement ... already exists"); the others hold for both.
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pooled } from '../../functions/audit-append/database';
import { PostgresAuditEventStore } from '../../functions/audit-append/postgres-audit-event-store';
import { PostgresAuditReader } from '../../functions/audit-append/postgres-audit-reader';
import { PgliteServer } from '../../local/stack/pglite-server';
import { appendThroughEngine } from '../unit/audit/support/append-through-engine';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../unit/audit/support/msk';
import { applyMigrations } from './audit/audit-database';

/** The part of pg's connection that writes protocol messages one by one. */
interface PipelineConnection {
  parse(query: { text: string; name: string; types: number[] }): void;
  bind(config: { values: unknown[] }): void;
  execute(config: { portal?: string }): void;
  once(event: 'commandComplete', listener: () => void): void;
  stream: { destroy(): void };
}

let server: PgliteServer;
let url: string;
const pools: pg.Pool[] = [];
const pool = () => {
  const created = new pg.Pool({ connectionString: url, max: 1 });
  pools.push(created);
  return created;
};

beforeAll(async () => {
  server = await PgliteServer.start({ dataDir: 'memory://', host: '127.0.0.1', port: 0 });
  url = `postgres://postgres@127.0.0.1:${server.port}/postgres`;
  await applyMigrations(url);
});
afterAll(async () => {
  await Promise.all(pools.map((created) => created.end()));
  await server?.stop();
});

describe('PGlite server (local stack)', () => {
  it('lets every connection prepare a statement under the same name', async () => {
    const [a, b] = [pool(), pool()];
    const statement = { name: 'same_name', text: 'SELECT $1::int + 1 AS n' };
    const results = await Promise.all(
      [a, b, a, b].map((client, index) => client.query({ ...statement, values: [index] })),
    );
    expect(results.map((result) => result.rows[0].n)).toEqual([1, 2, 3, 4]);
  });

  it('stores every record of audit batches appended over several connections at once, chains intact', async () => {
    const topics = ['genai.request.pglite-a', 'genai.request.pglite-b', 'genai.request.pglite-c'];
    // 60 records per batch: the store pipelines two chunks in one implicit transaction, the case that let
    // another connection's statements in between.
    const batches = topics.flatMap((topic) =>
      [0, 1, 2, 3].map((batch) =>
        mskEvent(
          Array.from({ length: 60 }, (_, index) => cloudEventRecord({ topic, offset: batch * 60 + index })),
        ),
      ),
    );
    const stores = topics.map(() => new PostgresAuditEventStore(pooled(pool())));
    const results = await Promise.all(
      topics.map(async (_, lane) => {
        const outcomes = [];
        for (const [index, batch] of batches.entries()) {
          if (index % topics.length !== lane) continue;
          outcomes.push(
            await appendThroughEngine(batch, {
              store: stores[lane] as PostgresAuditEventStore,
              decode: decodeJsonCloudEvent,
            }),
          );
        }
        return outcomes;
      }),
    );
    const flat = results.flat();
    expect(flat.map((result) => result.batchItemFailures)).toEqual(flat.map(() => []));
    expect(flat.reduce((sum, result) => sum + result.appended, 0)).toBe(batches.length * 60);
    const owner = pool();
    const { rows } = await owner.query('SELECT count(*)::int AS n FROM audit_event WHERE topic = ANY($1)', [
      topics,
    ]);
    expect(rows[0].n).toBe(batches.length * 60);
    const report = await new PostgresAuditReader(owner).verify();
    expect(report.ok).toBe(true);
  });

  it('keeps a transaction to its connection: others wait for its commit', async () => {
    const [a, b] = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.query('CREATE TABLE IF NOT EXISTS pglite_server_probe (n int)');
      await a.query('BEGIN');
      await a.query('INSERT INTO pglite_server_probe VALUES (1)');
      let counted: number | undefined;
      const reading = b.query('SELECT count(*)::int AS n FROM pglite_server_probe').then((result) => {
        counted = result.rows[0].n;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Not run inside a's transaction, where it would see the uncommitted row.
      expect(counted).toBeUndefined();
      await a.query('ROLLBACK');
      await reading;
      expect(counted).toBe(0);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('rolls back the open transaction of a client that goes away, and serves the others', async () => {
    const a = new pg.Client({ connectionString: url });
    await a.connect();
    await a.query('CREATE TABLE IF NOT EXISTS pglite_server_lost (n int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO pglite_server_lost VALUES (1)');
    a.on('error', () => {});
    // Gone without COMMIT, ROLLBACK or Terminate, as a frozen or killed Lambda environment would be.
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const { rows } = await pool().query('SELECT count(*)::int AS n FROM pglite_server_lost');
    expect(rows[0].n).toBe(0);
  });

  it('rolls back the implicit transaction of a client lost between pipelined executions', async () => {
    const a = new pg.Client({ connectionString: url });
    await a.connect();
    await a.query('CREATE TABLE IF NOT EXISTS pglite_server_pipelined (n int)');
    a.on('error', () => {});
    // One execution without its Sync, as executePipelined sends a first chunk, answered by the server; then the
    // client is gone before the Sync that would have committed it.
    const connection = (a as unknown as { connection: PipelineConnection }).connection;
    connection.parse({ text: 'INSERT INTO pglite_server_pipelined VALUES ($1)', name: '', types: [] });
    connection.bind({ values: ['1'] });
    connection.execute({});
    await new Promise<void>((resolve) => connection.once('commandComplete', () => resolve()));
    connection.stream.destroy();
    const { rows } = await pool().query('SELECT count(*)::int AS n FROM pglite_server_pipelined');
    expect(rows[0].n).toBe(0);
  });

  it('answers an SSL request with N, as a server without TLS does', async () => {
    const socket = connect(server.port, '127.0.0.1');
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    const answer = await new Promise<string>((resolve, reject) => {
      socket.once('data', (data) => resolve(data.toString('latin1')));
      socket.once('error', reject);
      socket.write(request);
    });
    socket.destroy();
    expect(answer).toBe('N');
  });
});
