// The local stack's PGlite server: one backend, several connections at once (the function's execution
// environments, the dev table, the audit CLI). The first two tests fail with pglite-socket 0.2.17 -m 16, the
// server the stack ran before ("prepared statement ... already exists"); the others hold for both.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAuditEventStore } from '../../functions/audit-append/postgres-audit-event-store';
import { pooled } from '../../functions/audit-append/postgres-pool';
import { PgliteServer } from '../../local/stack/pglite-server';
import { PostgresAuditReader } from '../../ops/audit/postgres-audit-reader';
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

// In a process of its own: a server that loops on a message blocks its event loop, and the test's with it.
describe('PGlite server limits (local stack)', () => {
  let child: ChildProcess;
  let port: number;
  const limitsUrl = () => `postgres://postgres@127.0.0.1:${port}/postgres`;

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'local/stack/pglite-server.ts',
        '--db=memory://',
        '--port=0',
        '--max-message-bytes=1048576',
        '--idle-in-transaction-ms=500',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    port = await new Promise<number>((resolve, reject) => {
      const read = (data: Buffer) => {
        output += data.toString();
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (match) resolve(Number(match[1]));
      };
      child.stdout?.on('data', read);
      child.stderr?.on('data', read);
      child.once('exit', (code) => reject(new Error(`pglite-server exited (${code}):\n${output}`)));
    });
  });
  afterAll(() => {
    child?.kill('SIGTERM');
  });

  /** Sends bytes on a raw connection; resolves with everything the server said once it closes the connection. */
  const exchange = (...chunks: Buffer[]) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let reply = '';
      socket.on('data', (data) => {
        reply += data.toString('latin1');
      });
      socket.once('error', reject);
      socket.once('close', () => resolve(reply));
      for (const chunk of chunks) socket.write(chunk);
    });
  const int32 = (...values: number[]) => {
    const buffer = Buffer.alloc(4 * values.length);
    values.forEach((value, index) => {
      buffer.writeInt32BE(value, 4 * index);
    });
    return buffer;
  };
  const startup = () => {
    const parameters = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
    return Buffer.concat([int32(8 + parameters.length, 196608), parameters]);
  };
  const stillServes = async () => {
    const client = new pg.Client({ connectionString: limitsUrl() });
    await client.connect();
    try {
      return (await client.query('SELECT 1 AS one')).rows[0].one;
    } finally {
      await client.end();
    }
  };

  it.each([
    ['a zero-length SSL request', [int32(0, 80877103)], /invalid startup packet length 0/],
    ['a negative startup packet length', [int32(-8, 196608)], /invalid startup packet length -8/],
    ['a startup packet over 10,000 bytes', [int32(1 << 20, 196608)], /invalid startup packet length 1048576/],
    [
      'a negative message length',
      [startup(), Buffer.concat([Buffer.from('Q'), int32(-1)])],
      /invalid length -1 of a "Q" message/,
    ],
    [
      'a message over the limit',
      [startup(), Buffer.concat([Buffer.from('Q'), int32(1 << 30)])],
      /invalid length 1073741824 of a "Q" message \(4 to 1048576 bytes\)/,
    ],
  ])(
    'closes a connection that sends %s, saying why, and serves the others',
    { timeout: 30_000 },
    async (_, chunks, reason) => {
      const reply = await exchange(...chunks);
      expect(reply).toMatch(reason);
      expect(reply).toContain('C08P01');
      expect(await stillServes()).toBe(1);
    },
  );

  it('ends a client idle inside a transaction, rolls its work back and hands the backend on', {
    timeout: 30_000,
  }, async () => {
    const idle = new pg.Client({ connectionString: limitsUrl() });
    await idle.connect();
    // pg reports the server's error, then the closed connection: the first one is the reason.
    const ended = new Promise<Error>((resolve) => idle.on('error', resolve));
    await idle.query('CREATE TABLE IF NOT EXISTS pglite_server_idle (n int)');
    await idle.query('BEGIN');
    await idle.query('INSERT INTO pglite_server_idle VALUES (1)');
    // Waits for the backend the idle client holds: it gets it only when the server ends that client.
    expect(await stillServes()).toBe(1);
    const error = (await ended) as Error & { code?: string };
    expect(error.code).toBe('25P03');
    expect(error.message).toMatch(/idle-in-transaction timeout/);
    const other = new pg.Client({ connectionString: limitsUrl() });
    await other.connect();
    const { rows } = await other.query('SELECT count(*)::int AS n FROM pglite_server_idle');
    await other.end();
    expect(rows[0].n).toBe(0);
  });
});
