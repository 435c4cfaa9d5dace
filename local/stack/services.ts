import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { probeStandIn } from './dynalite-server';
import { kafkaAnswersMetadata, startKafka } from './kafka';
import { logFile, repoRoot, stateDir } from './paths';
import { commandLine, portAnswers, spawnDetached, waitUntilReady } from './processes';

export type ServiceName = 'kafka' | 'postgres' | 'dynamodb' | 's3';

/** How a service is started when `up` has to start it. */
export interface StartSettings {
  /**
   * dynalite keeps its tables in memory instead of LevelDB under .local: nothing survives a restart, and every
   * request costs it about a quarter less CPU (bench/RESULTS.md). For runs whose data does not outlive them.
   */
  dynamodbInMemory?: boolean;
}

export interface ServiceDefinition {
  name: ServiceName;
  description: string;
  /** Set => use that endpoint, start nothing. */
  overrideVar: string;
  portVar: string;
  defaultPort: number;
  /** Part of the child's command line; guards against a recycled pid being taken for ours. */
  marker: string;
  endpoint(port: number): string;
  start(port: number, timeoutMs: number, settings: StartSettings): Promise<number>;
  /** A real request against the service (beyond the port answering). */
  ready(port: number): Promise<boolean>;
}

const node = process.execPath;
const modulePath = (...parts: string[]) => join(repoRoot, 'node_modules', ...parts);

export const kafkaControllerPort = () => Number(process.env.STACK_KAFKA_CONTROLLER_PORT ?? 9093);

async function pgAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

async function startNodeServer(
  service: ServiceName,
  marker: string,
  args: string[],
  port: number,
  timeoutMs: number,
  ready: () => Promise<boolean>,
): Promise<number> {
  const log = logFile(service);
  const { pid } = spawnDetached(node, args, { service, marker, logFile: log, cwd: repoRoot });
  await waitUntilReady({
    service,
    pid,
    logFile: log,
    timeoutMs,
    ready: async () => (await portAnswers(port)) && ready(),
  });
  return pid;
}

export type DynamoDbStorage = 'memory' | 'disk';

/** dynalite's arguments after its script (local/stack/dynalite-server.ts takes dynalite's own). */
export function dynaliteArgs(port: number, storage: DynamoDbStorage): string[] {
  const path: string[] = [];
  if (storage === 'disk') {
    // LevelDB under .local so items survive a restart like the broker's topics do.
    const dataDir = join(stateDir, 'dynalite');
    mkdirSync(dataDir, { recursive: true });
    path.push('--path', dataDir);
  }
  return [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    ...path,
    '--createTableMs',
    '0',
    '--deleteTableMs',
    '0',
    '--updateTableMs',
    '0',
  ];
}

/** Node's arguments that run the DynamoDB stand-in (dynalite with PartiQL INSERTs) on this port. */
export function dynaliteCommand(port: number, storage: DynamoDbStorage): string[] {
  return [
    '--import',
    'tsx',
    join(repoRoot, 'local', 'stack', 'dynalite-server.ts'),
    ...dynaliteArgs(port, storage),
  ];
}

/** Where a running dynalite keeps its tables, from its command line (undefined: unknown, not on Linux). */
export function dynaliteStorage(pid: number): DynamoDbStorage | undefined {
  const command = commandLine(pid);
  if (command === '' || command === '(unknown)') return undefined;
  return / --path /.test(command) ? 'disk' : 'memory';
}

export const services: ServiceDefinition[] = [
  {
    name: 'kafka',
    description: 'Apache Kafka 4 (KRaft, Maven jars)',
    overrideVar: 'KAFKA_BROKERS',
    portVar: 'STACK_KAFKA_PORT',
    defaultPort: 9092,
    marker: 'kafka.Kafka',
    endpoint: (port) => `127.0.0.1:${port}`,
    start: (port, timeoutMs) => startKafka({ broker: port, controller: kafkaControllerPort() }, timeoutMs),
    ready: (port) => kafkaAnswersMetadata(`127.0.0.1:${port}`),
  },
  {
    name: 'postgres',
    description: 'PGlite (local/stack/pglite-server.ts)',
    overrideVar: 'DATABASE_URL',
    portVar: 'STACK_POSTGRES_PORT',
    // Below Linux's ephemeral range (32768-60999): a port in it can be some connection's local port.
    defaultPort: 15432,
    marker: 'pglite-server.ts',
    endpoint: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: (port, timeoutMs) => {
      const dataDir = join(stateDir, 'pglite');
      mkdirSync(dataDir, { recursive: true });
      return startNodeServer(
        'postgres',
        'pglite-server.ts',
        [
          '--import',
          'tsx',
          join(repoRoot, 'local', 'stack', 'pglite-server.ts'),
          `--db=${dataDir}`,
          '--host=127.0.0.1',
          `--port=${port}`,
        ],
        port,
        timeoutMs,
        () => pgAnswers(`postgres://postgres@127.0.0.1:${port}/postgres`),
      );
    },
    ready: (port) => pgAnswers(`postgres://postgres@127.0.0.1:${port}/postgres`),
  },
  {
    name: 'dynamodb',
    description: 'dynalite (local/stack/dynalite-server.ts)',
    overrideVar: 'AWS_ENDPOINT_URL_DYNAMODB',
    portVar: 'STACK_DYNAMODB_PORT',
    defaultPort: 4567,
    marker: 'dynalite',
    endpoint: (port) => `http://127.0.0.1:${port}`,
    start: (port, timeoutMs, settings) =>
      startNodeServer(
        'dynamodb',
        'dynalite',
        dynaliteCommand(port, settings.dynamodbInMemory ? 'memory' : 'disk'),
        port,
        timeoutMs,
        async () => (await probeStandIn(port)) === 'stand-in',
      ),
    // The stand-in, not any DynamoDB on the port: one that answers as another (a plain dynalite an older checkout
    // started) is restarted, not reused; one too busy to answer in time is not taken for another.
    ready: async (port) => (await portAnswers(port)) && (await probeStandIn(port)) !== 'other',
  },
  {
    name: 's3',
    description: 's3rver',
    overrideVar: 'AWS_ENDPOINT_URL_S3',
    portVar: 'STACK_S3_PORT',
    defaultPort: 4569,
    marker: 's3rver',
    endpoint: (port) => `http://127.0.0.1:${port}`,
    start: (port, timeoutMs) => {
      const dataDir = join(stateDir, 's3rver');
      mkdirSync(dataDir, { recursive: true });
      return startNodeServer(
        's3',
        's3rver',
        [
          // s3rver's continuation tokens use DES, which OpenSSL 3 only offers from its legacy provider:
          // without this flag every truncated ListObjectsV2 answers InternalError.
          '--openssl-legacy-provider',
          modulePath('s3rver', 'bin', 's3rver.js'),
          '-d',
          dataDir,
          '-a',
          '127.0.0.1',
          '-p',
          String(port),
          '--silent',
        ],
        port,
        timeoutMs,
        async () => true,
      );
    },
    ready: (port) => portAnswers(port),
  },
];
