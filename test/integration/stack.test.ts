// The stack the integration project runs against: endpoints reach the workers, everything answers, a
// second `up` reuses it, and the pid/port safeguards behave (stale pid, recycled pid, port in use, a child
// that dies during start-up reported with its log).

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  BatchExecuteStatementCommand,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { dynaliteServer, probeStandIn } from '../../local/stack/dynalite-server';
import { readStackState, status, up } from '../../local/stack/index';
import { logFile, repoRoot, stackFile, stateDir } from '../../local/stack/paths';
import {
  assertPortFree,
  livePid,
  portAnswers,
  processStartTime,
  readPid,
  removePid,
  StackError,
  spawnDetached,
  stopProcess,
  waitUntilReady,
  writePid,
} from '../../local/stack/processes';
import { dynaliteArgs, dynaliteCommand, dynaliteStorage, services } from '../../local/stack/services';
import { stackEnv } from '../support/env';

const REQUIRED = [
  'KAFKA_BROKERS',
  'DATABASE_URL',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'AWS_ENDPOINT_URL_S3',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'FAILED_RECORDS_BUCKET',
  'INCIDENTS_TABLE',
  'DEMAND_TABLE',
  'BILLING_TABLE',
  'NOTIFICATIONS_TABLE',
];

describe('local stack', () => {
  it('hands its endpoints and resource names to every test worker', () => {
    for (const name of REQUIRED) expect(process.env[name], name).toBeTruthy();
    expect(process.env.AWS_REGION).toBe('eu-west-1');
    expect(process.env.FAILED_RECORDS_BUCKET).toBe('mobility-events-local-failed-records-000000000000');
    expect(process.env.INCIDENTS_TABLE).toBe('mobility-events-local-incidents');
    expect(stackEnv().KAFKA_BROKERS).toBe(process.env.KAFKA_BROKERS);
  });

  it('reports every service up and records its endpoints in .local/stack.json', async () => {
    const services = await status();
    expect(services.map((s) => [s.name, s.up])).toEqual([
      ['kafka', true],
      ['postgres', true],
      ['dynamodb', true],
      ['s3', true],
    ]);
    const state = JSON.parse(readFileSync(stackFile, 'utf8'));
    expect(state.env.KAFKA_BROKERS).toBe(process.env.KAFKA_BROKERS);
  });

  it('keeps the files that can hold secrets to their owner (0600) in a directory nobody else can write', async () => {
    await up({ owner: 'test' });
    expect((statSync(stackFile).mode & 0o777).toString(8)).toBe('600');
    expect(statSync(stateDir).mode & 0o022).toBe(0);
    const printCache = join(stateDir, 'serverless-print');
    const cached = readdirSync(printCache);
    expect(cached.length).toBeGreaterThan(0);
    for (const file of cached) {
      expect((statSync(join(printCache, file)).mode & 0o777).toString(8), file).toBe('600');
    }
  });

  it("says where dynalite keeps its tables (status, up), from the running process's command line", async () => {
    const fromStatus = (await status()).find((s) => s.name === 'dynamodb');
    const fromUp = (await up({ owner: 'test' })).services.find((s) => s.name === 'dynamodb');
    if (fromStatus?.managed === false) return; // AWS_ENDPOINT_URL_DYNAMODB given: nothing started here
    expect(['memory', 'disk']).toContain(fromStatus?.storage);
    expect(fromUp?.storage).toBe(fromStatus?.storage);
  });

  it('reuses the running services on a second up', async () => {
    const before = readStackState();
    const state = await up({ owner: 'test' });
    for (const service of state.services) {
      expect(['reused', 'external'], service.name).toContain(service.action);
      const earlier = before?.services.find((s) => s.name === service.name);
      if (service.pid) expect(service.pid).toBe(earlier?.pid);
    }
  });
});

describe('stack process safeguards', () => {
  const probe = `probe-${process.pid}`;
  let server: Server | undefined;
  afterEach(async () => {
    removePid(probe);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('treats a pid file of a dead process as stale', async () => {
    const child = spawnDetached(process.execPath, ['-e', '0'], {
      service: probe,
      marker: '-e',
      logFile: logFile(probe),
      cwd: '.',
    });
    await new Promise((resolve) => child.child.once('exit', resolve));
    expect(livePid(probe)).toBeUndefined();
  });

  it('does not take a recycled pid (live, but another program) for its child', () => {
    writePid(probe, {
      pid: process.pid,
      marker: 'kafka.Kafka',
      startedAt: new Date().toISOString(),
      owner: 'test',
    });
    expect(livePid(probe)).toBeUndefined();
  });

  it('does not take a recycled pid whose command line holds the marker for its child (start time differs)', () => {
    // This test's own process: alive, its command line holds 'node', but it is not the process recorded.
    writePid(probe, {
      pid: process.pid,
      marker: 'node',
      startTime: '1',
      startedAt: new Date().toISOString(),
      owner: 'test',
    });
    expect(livePid(probe)).toBeUndefined();
  });

  it('records its child by pid and start time, recognises it and stops only it', async () => {
    const { pid, child } = spawnDetached(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
      service: probe,
      marker: 'setTimeout',
      logFile: logFile(probe),
      cwd: '.',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const record = readPid(probe);
    expect(record?.startTime).toBe(processStartTime(pid));
    expect(record?.startTime).toMatch(/^\d+$/);
    expect(livePid(probe)).toBe(pid);
    // The same pid with another start time is another process: not signalled.
    expect(await stopProcess({ ...(record as NonNullable<typeof record>), startTime: '1' }, 100)).toBe(
      'not-running',
    );
    expect(livePid(probe)).toBe(pid);
    expect(await stopProcess(record as NonNullable<typeof record>, 5000)).toBe('stopped');
    await exited;
  });

  it('starts the DynamoDB stand-in with its tables in memory when asked, serving like the one on disk, PartiQL INSERTs included', async () => {
    server = createServer();
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = undefined;
    expect(dynaliteArgs(port, 'memory')).not.toContain('--path');
    expect(dynaliteArgs(port, 'disk')).toEqual(
      expect.arrayContaining(['--path', join(stateDir, 'dynalite')]),
    );
    const { pid } = spawnDetached(process.execPath, dynaliteCommand(port, 'memory'), {
      service: probe,
      marker: 'dynalite',
      logFile: logFile(probe),
      cwd: repoRoot,
    });
    const record = readPid(probe) as NonNullable<ReturnType<typeof readPid>>;
    try {
      await waitUntilReady({
        service: 'probe',
        pid,
        logFile: logFile(probe),
        timeoutMs: 30_000,
        ready: async () => (await portAnswers(port)) && (await probeStandIn(port)) === 'stand-in',
      });
      expect(dynaliteStorage(pid)).toBe('memory');
      const client = new DynamoDBClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      await client.send(
        new CreateTableCommand({
          TableName: 'probe',
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        }),
      );
      await client.send(new PutItemCommand({ TableName: 'probe', Item: { pk: { S: 'a' }, n: { N: '1' } } }));
      const { Item } = await client.send(new GetItemCommand({ TableName: 'probe', Key: { pk: { S: 'a' } } }));
      expect(Item?.n).toEqual({ N: '1' });
      // The PartiQL INSERTs the functions send run there too: a taken key refused, a new one put.
      const { Responses } = await client.send(
        new BatchExecuteStatementCommand({
          Statements: ['a', 'b'].map((pk) => ({
            Statement: `INSERT INTO "probe" VALUE {'pk': ?, 'n': ?}`,
            Parameters: [{ S: pk }, { N: '2' }],
          })),
        }),
      );
      expect(Responses?.map((r) => r.Error?.Code)).toEqual(['DuplicateItem', undefined]);
      const b = await client.send(new GetItemCommand({ TableName: 'probe', Key: { pk: { S: 'b' } } }));
      expect(b.Item?.n).toEqual({ N: '2' });
      // A value dynalite's validation throws on (null, which no SDK sends): that statement's error, and the
      // stand-in keeps serving.
      const raw = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.BatchExecuteStatement',
        },
        body: JSON.stringify({
          Statements: [
            { Statement: `INSERT INTO "probe" VALUE {'pk': ?, 'n': ?}`, Parameters: [{ S: 'c' }, null] },
            { Statement: `INSERT INTO "probe" VALUE {'pk': ?}`, Parameters: [{ S: 'd' }] },
          ],
        }),
      });
      expect(raw.status).toBe(200);
      const answered = (await raw.json()) as { Responses: Array<{ Error?: { Code: string } }> };
      expect(answered.Responses.map((r) => r.Error?.Code)).toEqual(['ValidationError', undefined]);
      expect(await probeStandIn(port)).toBe('stand-in');
      client.destroy();
    } finally {
      await stopProcess(record, 5000);
    }
  });

  it('tells the stand-in from a plain dynalite (restarted, not reused) and from a port that does not answer in time', async () => {
    // dynalite ships no types: the little of its API used here.
    const plain = (
      createRequire(import.meta.url)('dynalite') as (options: object) => import('node:http').Server
    )({
      createTableMs: 0,
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    // Accepts connections, never answers.
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const standIn = dynaliteServer({ createTableMs: 0 });
    await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    const portOf = (server: { address(): unknown }) => (server.address() as { port: number }).port;
    try {
      expect(await probeStandIn(portOf(plain))).toBe('other');
      expect(await probeStandIn(portOf(silent), 300)).toBe('no-answer');
      expect(await probeStandIn(portOf(standIn))).toBe('stand-in');
      const dynamodb = services.find((service) => service.name === 'dynamodb') as (typeof services)[number];
      expect(await dynamodb.ready(portOf(plain))).toBe(false);
      expect(await dynamodb.ready(portOf(standIn))).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      for (const server of [plain, standIn]) server.closeAllConnections();
      for (const server of [plain, silent, standIn]) await new Promise((resolve) => server.close(resolve));
    }
  });

  it('names the port and the variable when a port is taken', async () => {
    server = createServer();
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await expect(assertPortFree(port, 'kafka', 'STACK_KAFKA_PORT')).rejects.toThrow(
      new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*STACK_KAFKA_PORT`),
    );
  });

  it('does not take a probe connected to itself for a server answering (what it may get before the server listens); the default PGlite port is outside the ephemeral range', async () => {
    // A free port, then the probe's connect to it from that very port: TCP simultaneous open, what the kernel does
    // when it picks the server's port as the probe's ephemeral port before the server listens.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const fromItself = (options: { host: string; port: number }) =>
      createConnection({ ...options, localAddress: '127.0.0.1', localPort: port });
    expect(await portAnswers(port, '127.0.0.1', 1000, fromItself)).toBe(false);
    // A server that listens answers.
    await new Promise<void>((resolve) => probe.listen(port, '127.0.0.1', resolve));
    try {
      expect(await portAnswers(port)).toBe(true);
    } finally {
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    }
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const postgres = services.find((service) => service.name === 'postgres');
    expect(postgres?.defaultPort).toBeDefined();
    expect(
      (postgres?.defaultPort as number) < (low as number) ||
        (postgres?.defaultPort as number) > (high as number),
    ).toBe(true);
  });

  it('reports a child that dies during start-up with the tail of its log', async () => {
    writeFileSync(logFile(probe), '');
    const { pid } = spawnDetached(
      process.execPath,
      ['-e', 'console.log("FATAL: could not bind listener"); process.exit(3)'],
      { service: probe, marker: 'FATAL', logFile: logFile(probe), cwd: '.' },
    );
    const failure = waitUntilReady({
      service: 'probe',
      pid,
      logFile: logFile(probe),
      timeoutMs: 60_000,
      ready: async () => false,
    });
    await expect(failure).rejects.toBeInstanceOf(StackError);
    await expect(failure).rejects.toThrow(/exited during start-up[\s\S]*FATAL: could not bind listener/);
  });
});
