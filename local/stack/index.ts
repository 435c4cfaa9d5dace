// The local service stack: Kafka, PostgreSQL (PGlite), DynamoDB (dynalite) and S3 (s3rver) as detached
// children on 127.0.0.1, each with a pid file under .local/pids, plus provisioning from serverless.yml.
// `up` reuses whatever is already running (pid alive, really our child, and answering), so it is cheap to
// call from every test run; a lock serialises concurrent `up`/`down` calls from several terminals.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  localDefinitions,
  type ProvisionReport,
  provisionAll,
} from '../provision';
import { resolvedServerlessConfig } from '../serverless-config';
import { ensureStateDirs, leasesDir, lockDir, logFile, stackFile } from './paths';
import { writePrivateFile } from './private-file';
import {
  assertPortFree,
  isAlive,
  livePid,
  type PidRecord,
  readPid,
  removePid,
  StackError,
  setSpawnOwner,
  stopProcess,
  writePid,
} from './processes';
import {
  type DynamoDbStorage,
  dynaliteStorage,
  kafkaControllerPort,
  type ServiceDefinition,
  type ServiceName,
  services,
} from './services';

export { StackError } from './processes';

export interface ServiceState {
  name: ServiceName;
  description: string;
  /** false: an endpoint given by the environment (KAFKA_BROKERS, DATABASE_URL, ...); nothing started. */
  managed: boolean;
  endpoint: string;
  pid?: number;
  port?: number;
  owner?: PidRecord['owner'];
  /** What this `up` did with it. */
  action: 'started' | 'reused' | 'external';
  /** dynamodb started by this stack: where dynalite keeps its tables. */
  storage?: DynamoDbStorage;
}

export interface StackState {
  services: ServiceState[];
  /** Everything a process needs to reach the stack: endpoints, region, dummy credentials, resource names. */
  env: Record<string, string>;
  provision?: ProvisionReport;
  updatedAt: string;
}

export interface UpOptions {
  owner: PidRecord['owner'];
  log?: (line: string) => void;
  /** Per service readiness timeout. */
  timeoutMs?: number;
  provision?: boolean;
  /**
   * dynalite, if this call starts it, keeps its tables in memory (StartSettings); a running one is reused as it is
   * (ServiceState.storage says which).
   */
  dynamodbInMemory?: boolean;
}

/** Cross-process mutex on .local/stack.lock (mkdir is atomic); a lock whose holder died is broken. */
export async function withStackLock<T>(action: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  ensureStateDirs();
  const ownerFile = join(lockDir, 'owner');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(ownerFile, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(existsSync(ownerFile) ? readFileSync(ownerFile, 'utf8') : Number.NaN);
      if (Number.isInteger(holder) && !isAlive(holder)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new StackError(
          `another stack command (pid ${holder}) holds ${lockDir}; waited ${timeoutMs / 1000} s`,
        );
      }
      await sleep(200);
    }
  }
  try {
    return await action();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function portOf(definition: ServiceDefinition): number {
  const raw = process.env[definition.portVar];
  const port = raw ? Number(raw) : definition.defaultPort;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new StackError(`${definition.portVar} must be a TCP port, got "${raw}"`);
  }
  return port;
}

/** An endpoint to print: a URL's password (an external DATABASE_URL may carry one) as ***. */
export function shownEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    if (!url.password) return endpoint;
    url.password = '***';
    return url.toString();
  } catch {
    return endpoint; // host:port lists (KAFKA_BROKERS) are not URLs and hold no password
  }
}

async function checkExternal(definition: ServiceDefinition, endpoint: string): Promise<void> {
  // Only the broker and the database get a real request here; HTTP endpoints may be real AWS-like hosts.
  try {
    if (definition.name === 'kafka') {
      const { kafkaAnswersMetadata } = await import('./kafka');
      if (await kafkaAnswersMetadata(endpoint.split(',')[0] as string)) return;
    } else if (definition.name === 'postgres') {
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: endpoint, connectionTimeoutMillis: 5000 });
      await client.connect();
      await client.end();
      return;
    } else {
      return;
    }
  } catch (error) {
    throw new StackError(
      `${definition.overrideVar}=${shownEndpoint(endpoint)} is set, but it does not answer: ${(error as Error).message}`,
    );
  }
  throw new StackError(`${definition.overrideVar}=${shownEndpoint(endpoint)} is set, but it does not answer`);
}

async function ensureService(definition: ServiceDefinition, options: UpOptions): Promise<ServiceState> {
  const base = { name: definition.name, description: definition.description };
  const override = process.env[definition.overrideVar];
  if (override) {
    await checkExternal(definition, override);
    return { ...base, managed: false, endpoint: override, action: 'external' };
  }
  const port = portOf(definition);
  const endpoint = definition.endpoint(port);
  const record = readPid(definition.name);
  const pid = livePid(definition.name);
  if (record && pid !== undefined) {
    if (await definition.ready(port).catch(() => false)) {
      // `stack up` adopts a stack a test run started, so that test run's teardown leaves it alone.
      const owner = options.owner === 'cli' ? 'cli' : record.owner;
      if (owner !== record.owner) writePid(definition.name, { ...record, owner });
      return {
        ...base,
        managed: true,
        endpoint,
        pid,
        port,
        owner,
        action: 'reused',
        ...storageOf(definition, pid),
      };
    }
    options.log?.(
      `${definition.name}: pid ${pid} is alive but does not answer on ${port} as ${definition.description}; restarting it`,
    );
    await stopProcess(record, 5000);
  } else if (record && isAlive(record.pid)) {
    options.log?.(
      `${definition.name}: stale pid file (pid ${record.pid} now belongs to another process: its start time or ` +
        'command line differs); leaving that process alone',
    );
  } else if (record) {
    options.log?.(`${definition.name}: stale pid file (pid ${record.pid} is gone); cleaning up`);
  }
  removePid(definition.name);
  await assertPortFree(port, definition.name, definition.portVar);
  if (definition.name === 'kafka') {
    await assertPortFree(kafkaControllerPort(), 'kafka controller', 'STACK_KAFKA_CONTROLLER_PORT');
  }
  options.log?.(`${definition.name}: starting ${definition.description} on 127.0.0.1:${port}`);
  const started = Date.now();
  try {
    const newPid = await definition.start(port, options.timeoutMs ?? 120_000, {
      ...(options.dynamodbInMemory ? { dynamodbInMemory: true } : {}),
    });
    options.log?.(
      `${definition.name}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${newPid})`,
    );
    return {
      ...base,
      managed: true,
      endpoint,
      pid: newPid,
      port,
      owner: options.owner,
      action: 'started',
      ...storageOf(definition, newPid),
    };
  } catch (error) {
    // A child that never became ready must not outlive the failed `up`.
    const spawned = readPid(definition.name);
    if (spawned) await stopProcess(spawned, 3000);
    removePid(definition.name);
    throw error;
  }
}

function storageOf(definition: ServiceDefinition, pid: number): { storage?: DynamoDbStorage } {
  const storage = definition.name === 'dynamodb' ? dynaliteStorage(pid) : undefined;
  return storage ? { storage } : {};
}

function stackEnv(
  states: ServiceState[],
  tableEnv: Record<string, string>,
  bucket: string,
): Record<string, string> {
  const endpoint = (name: ServiceName) => states.find((s) => s.name === name)?.endpoint as string;
  const useLocalKeys = !process.env.AWS_ACCESS_KEY_ID;
  return {
    KAFKA_BROKERS: endpoint('kafka'),
    DATABASE_URL: endpoint('postgres'),
    AWS_ENDPOINT_URL_DYNAMODB: endpoint('dynamodb'),
    AWS_ENDPOINT_URL_S3: endpoint('s3'),
    AWS_REGION: process.env.AWS_REGION ?? LOCAL_REGION,
    AWS_ACCESS_KEY_ID: useLocalKeys
      ? LOCAL_CREDENTIALS.accessKeyId
      : (process.env.AWS_ACCESS_KEY_ID as string),
    AWS_SECRET_ACCESS_KEY: useLocalKeys
      ? LOCAL_CREDENTIALS.secretAccessKey
      : (process.env.AWS_SECRET_ACCESS_KEY ?? ''),
    FAILED_RECORDS_BUCKET: bucket,
    ...tableEnv,
  };
}

/** Brings every service up (reusing running ones), provisions, writes .local/stack.json. */
export async function up(options: UpOptions): Promise<StackState> {
  return withStackLock(async () => {
    setSpawnOwner(options.owner);
    // Resolve the config first: a broken serverless.yml should fail before anything is started.
    const definitions = localDefinitions(resolvedServerlessConfig());
    const results = await Promise.allSettled(
      services.map((definition) => ensureService(definition, options)),
    );
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    const states = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failures.length > 0) {
      // All or nothing: stop what this call started, keep what was running before.
      for (const state of states.filter((s) => s.action === 'started')) {
        const record = readPid(state.name);
        if (record) await stopProcess(record);
        removePid(state.name);
      }
      throw new StackError(failures.map((f) => (f.reason as Error).message).join('\n\n'));
    }
    const env = stackEnv(states, definitions.tableEnv, definitions.failedRecordsBucket);
    const state: StackState = { services: states, env, updatedAt: new Date().toISOString() };
    if (options.provision !== false) {
      state.provision = await provisionAll(
        {
          kafkaBrokers: env.KAFKA_BROKERS as string,
          databaseUrl: env.DATABASE_URL as string,
          dynamodbEndpoint: env.AWS_ENDPOINT_URL_DYNAMODB as string,
          s3Endpoint: env.AWS_ENDPOINT_URL_S3 as string,
        },
        definitions,
      );
    }
    // It holds DATABASE_URL and the AWS keys of the shell (possibly real ones): owner only.
    writePrivateFile(stackFile, `${JSON.stringify(state, null, 2)}\n`);
    return state;
  });
}

export interface StopResult {
  name: string;
  pid: number;
  result: 'stopped' | 'killed' | 'not-running' | 'kept';
}

/**
 * Stops every child by its own pid (SIGTERM, SIGKILL after the grace period). `onlyOwner: 'test'` stops only
 * children a test run started, which is what a test teardown may do.
 */
export async function down(options: { onlyOwner?: PidRecord['owner'] } = {}): Promise<StopResult[]> {
  return withStackLock(() => stopServices(options));
}

async function stopServices(options: { onlyOwner?: PidRecord['owner'] }): Promise<StopResult[]> {
  {
    const results = await Promise.all(
      services.map(async (definition): Promise<StopResult | undefined> => {
        const record = readPid(definition.name);
        if (!record) return undefined;
        if (options.onlyOwner && record.owner !== options.onlyOwner) {
          return { name: definition.name, pid: record.pid, result: 'kept' };
        }
        // The broker's controlled shutdown can take a while; give it longer than the node servers.
        const result = await stopProcess(record, definition.name === 'kafka' ? 20_000 : 5000);
        removePid(definition.name);
        return { name: definition.name, pid: record.pid, result };
      }),
    );
    const stopped = results.filter((r): r is StopResult => r !== undefined);
    if (stopped.every((r) => r.result !== 'kept')) rmSync(stackFile, { force: true });
    return stopped;
  }
}

export interface ServiceStatus {
  name: ServiceName;
  description: string;
  managed: boolean;
  pid?: number;
  endpoint: string;
  up: boolean;
  owner?: PidRecord['owner'];
  storage?: DynamoDbStorage;
  note?: string;
}

export function readStackState(): StackState | undefined {
  try {
    return JSON.parse(readFileSync(stackFile, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

export async function status(): Promise<ServiceStatus[]> {
  return Promise.all(
    services.map(async (definition): Promise<ServiceStatus> => {
      const base = { name: definition.name, description: definition.description };
      const override = process.env[definition.overrideVar];
      if (override) {
        const up = await checkExternal(definition, override).then(
          () => true,
          () => false,
        );
        return { ...base, managed: false, endpoint: override, up, note: `from ${definition.overrideVar}` };
      }
      const port = portOf(definition);
      const endpoint = definition.endpoint(port);
      const record = readPid(definition.name);
      const pid = livePid(definition.name);
      if (!record) return { ...base, managed: true, endpoint, up: false };
      if (pid === undefined) {
        return { ...base, managed: true, endpoint, pid: record.pid, up: false, note: 'stale pid file' };
      }
      const up = await definition.ready(port).catch(() => false);
      return {
        ...base,
        managed: true,
        endpoint,
        pid,
        up,
        owner: record.owner,
        ...storageOf(definition, pid),
        ...(up ? {} : { note: `not answering; see ${logFile(definition.name)}` }),
      };
    }),
  );
}

/** Test runs register a lease while they use the stack; the last one out stops the test-owned children. */
export function acquireLease(): string {
  ensureStateDirs();
  const file = join(leasesDir, `${process.pid}`);
  writeFileSync(file, new Date().toISOString());
  return file;
}

export function releaseLease(file: string): void {
  rmSync(file, { force: true });
}

/**
 * Ends a test run's use of the stack. Checked under the lock, so a run that is just starting either sees
 * the stack still up or starts it again; never half stopped.
 */
export async function releaseLeaseAndStopIfUnused(file: string): Promise<StopResult[]> {
  return withStackLock(async () => {
    releaseLease(file);
    if (liveLeases().length > 0) return [];
    return stopServices({ onlyOwner: 'test' });
  });
}

/** Leases of test runs that are still alive (leases of crashed runs are removed). */
export function liveLeases(): number[] {
  if (!existsSync(leasesDir)) return [];
  const pids: number[] = [];
  for (const name of readdirSync(leasesDir)) {
    const pid = Number(name);
    if (Number.isInteger(pid) && isAlive(pid)) pids.push(pid);
    else rmSync(join(leasesDir, name), { force: true });
  }
  return pids;
}
