// The reliability suite's harness: the real functions of serverless.yml, their real ESM settings, the real
// broker and stores, isolated per run so tests never see each other's data:
// - every consumed topic gets a run-scoped twin `rel-<run>.<topic>` (same partitions), every ESM its own
//   consumer group; the audit store chains are per topic-partition, so the run's audit rows are exactly the
//   rows of its topics;
// - every DynamoDB table of the stage gets a run-scoped copy (same keys and indexes);
// - each function runs in worker threads (execution environments) with its Lambda environment, as `npm run dev` does,
//   from its bundle (the packaged esbuild build, local/esm/bundles.ts), or with ESM_FUNCTION_CODE=sources from
//   its TypeScript sources.
// A run is described by a JSON-serialisable RunSpec, so the same emulator runs in this process or in a
// child process (emulator-child.ts) that a test can SIGKILL.
import '../../../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ListOffsetTimestamps } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import pg from 'pg';
import { topics as incidentTopics } from '../../../functions/incident-explanation/explain-incident';
import { codeOf } from '../../../local/consumers';
import { bundlesDir, FunctionBundles, functionCode } from '../../../local/esm/bundles';
import {
  type EsmDefinition,
  esmDefinitionsFrom,
  type ResolvedServerlessConfig,
} from '../../../local/esm/config';
import { s3Client } from '../../../local/esm/destinations';
import { EsmEmulator } from '../../../local/esm/emulator';
import { functionEnvironment } from '../../../local/esm/function-env';
import type { EsmHandler } from '../../../local/esm/invoker';
import { committedOffsets, offsetsAt } from '../../../local/esm/starting-position';
import { esmUuid } from '../../../local/esm/uuid';
import { defaultInstances, type WorkerHandler, workerHandler } from '../../../local/esm/worker-handler';
import { localDefinitions } from '../../../local/provision';
import { resolvedServerlessConfig } from '../../../local/serverless-config';
import { repoRoot } from '../../../local/stack/paths';
import { describeBreak } from '../../../ops/audit/chain-verifier';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { scanAll as scanTable } from '../../support/dynamodb';
import { createTopics, kafkaBrokers, testAdmin } from '../../support/kafka';
import { waitFor } from '../../support/wait';

export interface RunSpec {
  run: string;
  /** canonical topic (booking.created) -> run topic (rel-<run>.booking.created) */
  topics: Record<string, string>;
  partitions: number;
  definitions: EsmDefinition[];
  /** functionKey -> handler path, Lambda environment, and the bundle to run (absent: the sources) */
  functions: Record<string, { handler: string; env: Record<string, string>; bundle?: string }>;
  /** logical id (BillingTable) -> run table name */
  tables: Record<string, string>;
  bucket: string;
}

export interface PrepareOptions {
  functions: string[];
  /** Canonical topics to run; only the ESMs of `functions` on these topics are started. */
  topics: string[];
  partitions: number;
  /** Topic configs for every run topic (e.g. max.message.bytes for the oversize record). */
  topicConfigs?: Record<string, string>;
  /** Per-function environment overrides (e.g. DATABASE_URL through a proxy). */
  envOverrides?: Record<string, Record<string, string>>;
  /** Overrides of every definition (batch size, retries...). */
  definitionOverrides?: Partial<EsmDefinition>;
}

export async function prepareRun(options: PrepareOptions): Promise<RunSpec> {
  const run = randomUUID().slice(0, 8);
  const config: ResolvedServerlessConfig = resolvedServerlessConfig();
  const local = localDefinitions(config);
  const topics = Object.fromEntries(options.topics.map((t) => [t, `rel-${run}.${t}`]));

  // Tables: a run-scoped copy of every table of the stage.
  const dynamo = new DynamoDBClient({});
  const tables: Record<string, string> = {};
  // Stage table name -> run table name: serverless.yml may name a table by { Ref } or as a plain string.
  const runTableOf = new Map<string, string>();
  try {
    for (const [logicalId, input] of Object.entries(local.tables)) {
      const name = `${input.TableName}-rel-${run}`;
      await dynamo.send(new CreateTableCommand({ ...input, TableName: name }));
      tables[logicalId] = name;
      runTableOf.set(input.TableName as string, name);
    }
    for (const name of Object.values(tables)) {
      await waitUntilTableExists({ client: dynamo, maxWaitTime: 60 }, { TableName: name });
    }
  } finally {
    dynamo.destroy();
  }

  // The topics incident-explanation produces to must exist (the producer never creates one), whether or not an
  // ESM of this run reads them: without them its produce waits out the function timeout.
  const produced = options.functions.includes('incident-explanation')
    ? [incidentTopics.genaiRequest, incidentTopics.genaiResponse, incidentTopics.hitlRequested]
        .filter((t) => topics[t] === undefined)
        .map((t) => `rel-${run}.${t}`)
    : [];
  const created = [...Object.values(topics), ...produced];
  await createTopics(created, options.partitions, {
    ...(options.topicConfigs ? { configs: options.topicConfigs } : {}),
    timeoutMs: 60_000,
  });

  const resourceNames: Record<string, string> = { ...tables, FailedRecordsBucket: local.failedRecordsBucket };
  const definitions = esmDefinitionsFrom(config, {
    failedRecordsBucket: local.failedRecordsBucket,
    instances: defaultInstances(),
  })
    .filter((d) => options.functions.includes(d.functionKey) && topics[d.topic] !== undefined)
    .map((d) => {
      const topic = topics[d.topic] as string;
      const consumerGroupId = `rel-${run}-${d.functionKey}-${d.topic}`;
      return {
        ...d,
        ...options.definitionOverrides,
        topic,
        consumerGroupId,
        uuid: esmUuid(d.functionKey, topic, consumerGroupId),
      };
    });
  const functions: RunSpec['functions'] = {};
  const bundles = functionCode() === 'bundles' ? await functionBundles() : undefined;
  for (const key of options.functions) {
    const fn = config.functions[key];
    if (!fn) throw new Error(`no function ${key} in serverless.yml`);
    functions[key] = {
      handler: fn.handler,
      ...(bundles ? { bundle: bundles.file(key) } : {}),
      env: {
        ...Object.fromEntries(
          Object.entries(functionEnvironment(config, key, resourceNames)).map(([name, value]) => [
            name,
            runTableOf.get(value) ?? value,
          ]),
        ),
        // The functions' metrics would print an EMF line per batch: noise in the captured logs.
        POWERTOOLS_METRICS_DISABLED: 'true',
        // incident-explanation produces its genai.* events to the run's topics.
        KAFKA_TOPIC_PREFIX: `rel-${run}.`,
        ...options.envOverrides?.[key],
      },
    };
  }
  return {
    run,
    topics,
    partitions: options.partitions,
    definitions,
    functions,
    tables,
    bucket: local.failedRecordsBucket,
  };
}

/** Canonical topic of a run topic. */
export function canonicalTopic(spec: RunSpec, topic: string): string {
  const found = Object.entries(spec.topics).find(([, runTopic]) => runTopic === topic);
  return found ? found[0] : topic;
}

/** Code that decides by topic name: the handlers of functions running it see the canonical names. */
const BY_TOPIC_NAME = new Set(['notifications', 'incident-explanation']);

/**
 * notifications and incident-explanation decide by topic name (`booking.created`, `incident.detected`...): their
 * handlers see the canonical names, as on the real cluster, and their partial batch responses are mapped back.
 */
function withCanonicalTopics(spec: RunSpec, handler: EsmHandler): EsmHandler {
  const toRun = new Map(Object.entries(spec.topics));
  return async (event, context) => {
    const records: MSKEvent['records'] = {};
    for (const [key, list] of Object.entries(event.records)) {
      const first = list[0];
      const canonical = first ? canonicalTopic(spec, first.topic) : undefined;
      const renamed = canonical && first ? `${canonical}-${first.partition}` : key;
      records[renamed] = list.map((r) => ({ ...r, topic: canonicalTopic(spec, r.topic) }));
    }
    const response = (await handler({ ...event, records }, context)) as
      | { batchItemFailures?: Array<{ itemIdentifier: { partition: string; offset: number } }> }
      | undefined;
    if (!response?.batchItemFailures) return response;
    return {
      batchItemFailures: response.batchItemFailures.map((f) => {
        const dash = f.itemIdentifier.partition.lastIndexOf('-');
        const topic = f.itemIdentifier.partition.slice(0, dash);
        return {
          itemIdentifier: {
            ...f.itemIdentifier,
            partition: `${toRun.get(topic) ?? topic}${f.itemIdentifier.partition.slice(dash)}`,
          },
        };
      }),
    };
  };
}

export interface RunningEmulator {
  emulator: EsmEmulator;
  /** Everything the functions and the emulator logged. */
  logs: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  retryDelayMs?: (attempt: number) => number;
  echo?: NodeJS.WritableStream;
  /** Keep the output in `logs` (default true); a long-running child only echoes it. */
  keepLogs?: boolean;
  /** Rewrites every event between the emulator and the handlers (what Kafka cannot carry, e.g. a bad header). */
  mapEvent?: (event: MSKEvent) => MSKEvent;
  /** Called when an invocation returned (its writes are done), with what it returned; for latency benches. */
  onInvoked?: (functionKey: string, event: MSKEvent, response: unknown) => void;
}

let built: Promise<FunctionBundles> | undefined;

/**
 * Every function's bundle, built once per process that prepares runs into one folder all test processes share
 * (each file is replaced by a rename, and every process builds the same bytes from the same sources). A run's
 * spec names its bundles, so an emulator child (emulator-child.ts) starts without building.
 */
function functionBundles(): Promise<FunctionBundles> {
  built ??= FunctionBundles.build(resolvedServerlessConfig(), {
    root: repoRoot,
    outDir: bundlesDir(repoRoot, 'e2e'),
  }).then(async (bundles) => {
    // Not watched: the esbuild contexts would only keep the process alive.
    await bundles.close();
    return bundles;
  });
  return built;
}

export async function startEmulator(spec: RunSpec, options: StartOptions = {}): Promise<RunningEmulator> {
  const logs: string[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString();
      if (options.keepLogs !== false) logs.push(text);
      options.echo?.write(text);
      callback();
    },
  });
  const workers = new Map<string, WorkerHandler>();
  for (const [key, fn] of Object.entries(spec.functions)) {
    workers.set(key, workerHandler(fn.handler, fn.env, { output, bundle: fn.bundle }));
  }
  const emulator = new EsmEmulator({
    definitions: spec.definitions,
    brokers: kafkaBrokers(),
    loadHandler: async (definition) => {
      const inWorker = (workers.get(definition.functionKey) as WorkerHandler).handler;
      const { mapEvent, onInvoked } = options;
      const handler: EsmHandler = async (event, context) => {
        const response = await inWorker(mapEvent ? mapEvent(event) : event, context);
        onInvoked?.(definition.functionKey, event, response);
        return response;
      };
      return BY_TOPIC_NAME.has(codeOf(definition.functionKey)) ? withCanonicalTopics(spec, handler) : handler;
    },
    log: (line) => output.write(`[esm] ${line}\n`),
    ...(options.retryDelayMs ? { retryDelayMs: options.retryDelayMs } : {}),
  });
  await emulator.start();
  return {
    emulator,
    logs,
    stop: async () => {
      await emulator.stop();
      await Promise.all([...workers.values()].map((w) => w.close()));
    },
  };
}

/** Committed offset (next to read) of every partition of every ESM of the run: `<uuid>/<partition>`. */
export async function committedOffsetsOf(spec: RunSpec): Promise<Map<string, bigint>> {
  const admin = testAdmin('reliability-offsets');
  const result = new Map<string, bigint>();
  const partitions = Array.from({ length: spec.partitions }, (_, i) => i);
  try {
    for (const d of spec.definitions) {
      const committed = await committedOffsets(admin, d.consumerGroupId, d.topic, partitions);
      for (const p of partitions) result.set(`${d.uuid}/${p}`, committed.get(p) ?? 0n);
    }
  } finally {
    await admin.close();
  }
  return result;
}

/** Every item of a run table, read with the stack's DynamoDB (the environment's endpoint). */
export async function scanAll(tableName: string): Promise<Record<string, unknown>[]> {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  try {
    return await scanTable(documents, tableName);
  } finally {
    documents.destroy();
  }
}

export interface FailureObject {
  key: string;
  esmUuid: string;
  record: {
    requestContext: { condition: string; approximateInvokeCount: number; functionArn: string };
    responseContext: unknown;
    version: string;
    timestamp: string;
    KafkaBatchInfo: { batchSize: number; recordsInfo: Record<string, unknown> };
    payload: string;
  };
  /** The MSK event parsed from `payload`. */
  event: MSKEvent;
}

/** Every on-failure object of the run's ESMs in the failed-records bucket. */
export async function failureObjects(spec: RunSpec): Promise<FailureObject[]> {
  const s3 = s3Client();
  const objects: FailureObject[] = [];
  try {
    for (const d of spec.definitions) {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: spec.bucket,
            Prefix: `aws/lambda/${d.uuid}/`,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const item of page.Contents ?? []) {
          const body = await s3.send(new GetObjectCommand({ Bucket: spec.bucket, Key: item.Key }));
          const record = JSON.parse(
            await (body.Body as { transformToString(): Promise<string> }).transformToString(),
          );
          objects.push({
            key: item.Key as string,
            esmUuid: d.uuid,
            record,
            event: JSON.parse(record.payload),
          });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    }
  } finally {
    s3.destroy();
  }
  return objects;
}

/** Audit rows of the run (its topics), with their ce ids. */
export async function auditRows(
  spec: RunSpec,
  databaseUrl = process.env.DATABASE_URL,
): Promise<Array<{ topic: string; ceId: string }>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ topic: string; ce_id: string }>(
      `SELECT topic, ce_id FROM audit_event WHERE topic = ANY($1::text[])`,
      [Object.values(spec.topics)],
    );
    return rows.map((r) => ({ topic: r.topic, ceId: r.ce_id }));
  } finally {
    await client.end();
  }
}

/** End offset (next to be written) of every partition of every run topic: `<topic>/<partition>`. */
export async function endOffsetsOf(spec: RunSpec): Promise<Map<string, bigint>> {
  const admin = testAdmin('reliability-offsets');
  const partitions = Array.from({ length: spec.partitions }, (_, i) => i);
  const result = new Map<string, bigint>();
  try {
    for (const topic of Object.values(spec.topics)) {
      for (const [p, offset] of await offsetsAt(admin, topic, partitions, ListOffsetTimestamps.LATEST)) {
        result.set(`${topic}/${p}`, offset);
      }
    }
  } finally {
    await admin.close();
  }
  return result;
}

/**
 * Like `behind` with the ends read after the committed offsets: a function that produces to the run's topics
 * (incident-explanation) has produced everything of what it committed before those ends are read, so an empty
 * answer means every ESM, downstream ones included, has handled everything there is.
 */
export async function behindNow(spec: RunSpec): Promise<string[]> {
  const committed = await committedOffsetsOf(spec);
  return lagging(spec, committed, await endOffsetsOf(spec));
}

/** Partitions of the run's ESMs not yet committed to their end, as `<function> <topic>/<p>: committed/end`. */
export async function behind(spec: RunSpec, ends: Map<string, bigint>): Promise<string[]> {
  return lagging(spec, await committedOffsetsOf(spec), ends);
}

/**
 * Waits until every ESM of the run has committed every partition to its end: the ends of now, or with `movingEnds`
 * the ends read anew each time (a function still producing into the run's topics). Fails naming the partitions
 * still behind, and `context()` when given.
 */
export async function waitUntilDrained(
  spec: RunSpec,
  what: string,
  timeoutMs: number,
  everyMs: number,
  options: { movingEnds?: boolean; context?: () => string } = {},
): Promise<void> {
  const ends = options.movingEnds ? undefined : await endOffsetsOf(spec);
  let behindNowOrEnds: string[] = [];
  await waitFor(
    what,
    async () => {
      behindNowOrEnds = ends ? await behind(spec, ends) : await behindNow(spec);
      return behindNowOrEnds.length === 0;
    },
    timeoutMs,
    everyMs,
  ).catch((error: Error) => {
    const context = options.context ? `; ${options.context()}` : '';
    throw new Error(`${error.message}; behind: ${behindNowOrEnds.join(', ')}${context}`);
  });
}

function lagging(spec: RunSpec, committed: Map<string, bigint>, ends: Map<string, bigint>): string[] {
  const result: string[] = [];
  for (const d of spec.definitions) {
    for (let p = 0; p < spec.partitions; p++) {
      const end = ends.get(`${d.topic}/${p}`) ?? 0n;
      const at = committed.get(`${d.uuid}/${p}`) ?? 0n;
      if (at !== end) result.push(`${d.functionKey} ${d.topic}/${p}: ${at}/${end}`);
    }
  }
  return result;
}

/** Audit chains of the run's topics: the first break, if any, as text. */
export async function auditChainBreaks(
  spec: RunSpec,
  databaseUrl = process.env.DATABASE_URL,
): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const reader = new PostgresAuditReader(client);
    const breaks: string[] = [];
    for (const topic of Object.values(spec.topics)) {
      const report = await reader.verify({ topic });
      if (report.firstBreak) breaks.push(`${topic}: ${describeBreak(report.firstBreak)}`);
    }
    return breaks;
  } finally {
    await client.end();
  }
}

/**
 * Deletes the run's topics and tables, so repeated runs do not pile up partitions in the shared broker and
 * tables in dynalite. Audit rows stay: the audit store is append-only by design.
 */
export async function removeRun(spec: RunSpec): Promise<void> {
  const admin = testAdmin('reliability-admin');
  try {
    // Every topic of the run, the ones only produced to included.
    const runTopics = (await admin.listTopics()).filter((t) => t.startsWith(`rel-${spec.run}.`));
    await admin.deleteTopics({ topics: runTopics });
  } finally {
    await admin.close();
  }
  const dynamo = new DynamoDBClient({});
  try {
    for (const name of Object.values(spec.tables))
      await dynamo.send(new DeleteTableCommand({ TableName: name }));
  } finally {
    dynamo.destroy();
  }
}

/** A TCP proxy to a store (PostgreSQL, dynalite) that can be cut (every connection dropped, new ones refused) and restored. */
export class CuttableProxy {
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();
  connections = 0;

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise((resolve) => server?.close(resolve));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
