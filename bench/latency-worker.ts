// One case of bench:latency in a process of its own (each handler reads its configuration at import and
// keeps module state, as on Lambda): the function's handler in-process, its stores reached through delaying
// proxies (bench/delay-proxy.ts), batches of `records` records per partition, first delivery then the same
// batches again. The case comes in BENCH_LATENCY_CASE (JSON); the result goes to stdout as `RESULT <json>`.
import { randomUUID } from 'node:crypto';
import { createServer as createH2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { explainIncident } from '../functions/incident-explanation/explain-incident';
import { explanationKey, payloadHash } from '../functions/incident-explanation/explanation-records';
import { toIncident } from '../functions/incident-explanation/incident';
import { kafkaGenAiEventPublisher } from '../functions/incident-explanation/kafka-genai-publisher';
import type { IncidentOutcome } from '../functions/incident-explanation/ports';
import { RulesIncidentExplainer } from '../functions/incident-explanation/rules-explainer';
import { stageTableDefinition, waitUntilTableActive } from '../local/provision';
import { readStackState } from '../local/stack/index';
import { runMigrations } from '../ops/migrations';
import { type SampleEventType, sampleData, sampleSources } from '../schemas/samples';
import { encodeConfluent } from '../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry as registry } from '../shared/contracts/file-catalog-registry';
import {
  decodeEvent,
  type KafkaBatchResponse,
  type KafkaEvent,
  type KafkaEventRecord,
  kafkaEvent,
  kafkaEventRecord,
} from '../shared/msk';
import { startChannelProcess } from './channel-process';
import { type DelayProxy, RoundTripTrace, redirectConnections, startDelayProxy } from './delay-proxy';
import { processCpuSeconds } from './process-cpu';

export interface LatencyCase {
  /** Row label. */
  name: string;
  fn:
    | 'demand'
    | 'billing'
    | 'audit'
    | 'incident'
    | 'incident-per-record'
    | 'notifications'
    | 'notifications-per-record';
  topics: SampleEventType[];
  records: number;
  batches: number;
  partitions: number[];
  delays: { dynamodb: number; postgres: number; kafka: number; channel: number };
  /** Unmeasured full-size batches per topic before the measured ones. */
  warmupBatches: number;
  /** incident: a Converse stand-in that answers after this long (otherwise the rules explainer). */
  modelLatencyMs?: number;
}

export interface Measured {
  case: string;
  fn: LatencyCase['fn'];
  topic: string;
  partitions: number;
  delivery: 'first' | 'redelivery';
  batches: number;
  recordsPerPartition: number;
  wallMsPerBatch: number;
  recordsPerSecondPerPartition: number;
  failedRecords: number;
  /** The longest chain of HTTP requests (DynamoDB, SNS/SES) each sent after the previous one's answer, per batch (mean). */
  sequentialRoundTrips: number;
  /** CPU per batch (mean): this process (the handler, its clients, and the bench's proxies), and dynalite's. */
  cpuMsPerBatch: { worker: number; dynalite?: number };
  perRecord: { dynamodb: number; postgres: number; kafkaProduce: number; channel: number; model: number };
}

const spec = JSON.parse(process.env.BENCH_LATENCY_CASE ?? '{}') as LatencyCase;
const stack = process.env;

function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url.includes('://') ? url : `tcp://${url}`);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

// ---------- stand-ins behind proxies ----------
const roundTrips = new RoundTripTrace();
const proxies: Record<'dynamodb' | 'postgres' | 'kafka' | 'channel', DelayProxy> = {
  dynamodb: await startDelayProxy({
    target: hostPort(stack.AWS_ENDPOINT_URL_DYNAMODB as string),
    delayMs: spec.delays.dynamodb,
    protocol: 'http',
    trace: { name: 'dynamodb', into: roundTrips },
  }),
  postgres: await startDelayProxy({
    target: hostPort((stack.DATABASE_URL as string).replace(/^postgres(ql)?:/, 'tcp:')),
    delayMs: spec.delays.postgres,
    protocol: 'postgres',
  }),
  kafka: await startDelayProxy({
    target: hostPort((stack.KAFKA_BROKERS as string).split(',')[0] as string),
    delayMs: spec.delays.kafka,
    protocol: 'kafka',
  }),
  channel: undefined as unknown as DelayProxy,
};
// In a process of its own: in-process, its parsing of every PublishBatch ran on the handler's event loop.
const channel = await startChannelProcess();
process.on('exit', () => channel.stop());
proxies.channel = await startDelayProxy({
  target: hostPort(channel.url),
  delayMs: spec.delays.channel,
  protocol: 'http',
  trace: { name: 'channel', into: roundTrips },
});
redirectConnections(hostPort((stack.KAFKA_BROKERS as string).split(',')[0] as string), proxies.kafka.port);

let modelCalls = 0;
let modelUrl: string | undefined;
if (spec.modelLatencyMs !== undefined) {
  const answer = JSON.stringify({
    summary: 'The vehicle stopped abruptly; the rider most likely braked for an obstacle.',
    likelyCauses: ['Obstacle on the road'],
    recommendedAction: 'Check the brakes at the next service.',
    confidence: 0.9,
  });
  const converse = createH2Server((request, response) => {
    request.resume();
    request.on('end', () => {
      modelCalls++;
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            output: { message: { role: 'assistant', content: [{ text: answer }] } },
            usage: { inputTokens: 200, outputTokens: 50, totalTokens: 250 },
            stopReason: 'end_turn',
            metrics: { latencyMs: spec.modelLatencyMs },
          }),
        );
      }, spec.modelLatencyMs);
    });
  });
  await new Promise<void>((resolve) => converse.listen(0, '127.0.0.1', resolve));
  modelUrl = `http://127.0.0.1:${(converse.address() as AddressInfo).port}`;
}

// ---------- fresh tables (created directly, not through the proxy) ----------
const direct = new DynamoDBClient({ endpoint: stack.AWS_ENDPOINT_URL_DYNAMODB as string });
async function table(logicalId: string): Promise<string> {
  const name = `bench-latency-${logicalId}-${randomUUID().slice(0, 8)}`;
  await direct.send(new CreateTableCommand(stageTableDefinition(logicalId, name)));
  await waitUntilTableActive(direct, name);
  return name;
}

const proxiedDatabaseUrl = (() => {
  const url = new URL(stack.DATABASE_URL as string);
  url.hostname = '127.0.0.1';
  url.port = String(proxies.postgres.port);
  return url.toString();
})();

Object.assign(process.env, {
  AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${proxies.dynamodb.port}`,
  AWS_ENDPOINT_URL_SNS: `http://127.0.0.1:${proxies.channel.port}`,
  AWS_ENDPOINT_URL_SESV2: `http://127.0.0.1:${proxies.channel.port}`,
  KAFKA_BROKERS: `127.0.0.1:${proxies.kafka.port}`,
  DATABASE_URL: proxiedDatabaseUrl,
  DATABASE_SSL: 'disable',
  POWERTOOLS_LOG_LEVEL: 'CRITICAL',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_TRACE_ENABLED: 'false',
});
delete process.env.IS_LOCAL;

type Handler = (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;

async function loadHandler(): Promise<Handler> {
  switch (spec.fn) {
    case 'demand':
      process.env.DEMAND_TABLE = await table('DemandTable');
      return (await import('../functions/demand-prediction-update/handler')).handler as Handler;
    case 'billing':
      process.env.BILLING_TABLE = await table('BillingTable');
      process.env.IDEMPOTENCY_TABLE = await table('BillingIdempotencyTable').catch(() => 'unused');
      return (await import('../functions/billing/handler')).handler as Handler;
    case 'audit':
      await runMigrations(stack.DATABASE_URL as string);
      return (await import('../functions/audit-append/handler')).handler as Handler;
    case 'incident':
      process.env.INCIDENTS_TABLE = await table('IncidentsTable');
      process.env.IDEMPOTENCY_TABLE = await table('IncidentIdempotencyTable');
      if (modelUrl) {
        Object.assign(process.env, {
          AWS_ENDPOINT_URL_BEDROCK_RUNTIME: modelUrl,
          BEDROCK_MODEL_ID: 'eu.anthropic.claude-3-haiku-20240307-v1:0',
          BEDROCK_TIMEOUT_MS: String((spec.modelLatencyMs ?? 0) + 5_000),
        });
      } else {
        delete process.env.BEDROCK_MODEL_ID;
      }
      return (await import('../functions/incident-explanation/handler')).handler as Handler;
    case 'incident-per-record':
      return perRecordIncidents(await table('IncidentsTable'), await table('IncidentIdempotencyTable'));
    case 'notifications':
      Object.assign(process.env, {
        NOTIFICATIONS_TABLE: await table('NotificationsTable'),
        CHANNEL: 'aws',
        ONCALL_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:operations-oncall',
        CUSTOMER_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:customer-messages',
        EMAIL_FROM: 'noreply@mobility.example',
        REVIEWERS_EMAIL: 'reviewers@mobility.example',
      });
      return (await import('../functions/notifications/handler')).handler as Handler;
    case 'notifications-per-record':
      return perRecordNotifications(await table('NotificationsTable'));
  }
}

/**
 * The notifications design before 2026-12-06, as a baseline: per record, in partition order, Powertools
 * idempotency (conditional PutItem, then UpdateItem COMPLETED), a claim (conditional UpdateItem), one SNS
 * Publish, mark SENT (UpdateItem). A redelivery: the idempotency PutItem fails and the record is read (GetItem,
 * as on dynalite, which ignores ReturnValuesOnConditionCheckFailure). Only the request sequence is replayed.
 */
function perRecordNotifications(tableName: string): Handler {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  const sns = new SNSClient({ maxAttempts: 1 });
  return async (event) => {
    const partitions = await decodeEvent(event, { registry });
    await Promise.all(
      partitions.map(async (partition) => {
        for (const record of partition.records) {
          if (record instanceof Error || record.tombstone) continue;
          const key = { pk: `IDEMPOTENCY#${record.cloudEvent.id}`, sk: 'EVENT' };
          try {
            await documents.send(
              new PutCommand({
                TableName: tableName,
                Item: { ...key, status: 'INPROGRESS' },
                ConditionExpression: 'attribute_not_exists(pk)',
              }),
            );
          } catch (error) {
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
            await documents.send(new GetCommand({ TableName: tableName, Key: key }));
            continue;
          }
          const entry = { pk: `NOTIFICATION#${record.cloudEvent.id}`, sk: 'RECIPIENT#customer' };
          await documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: entry,
              UpdateExpression: 'SET #s = :sending',
              ConditionExpression: 'attribute_not_exists(pk)',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: { ':sending': 'SENDING' },
            }),
          );
          await sns.send(
            new PublishCommand({
              TopicArn: 'arn:aws:sns:eu-west-1:000000000000:customer-messages',
              Subject: `Booking ${String(record.data.bookingId)} confirmed`,
              Message: 'Your booking is confirmed.',
            }),
          );
          for (const [k, status] of [
            [entry, 'SENT'],
            [key, 'COMPLETED'],
          ] as const) {
            await documents.send(
              new UpdateCommand({
                TableName: tableName,
                Key: k,
                UpdateExpression: 'SET #s = :s',
                ExpressionAttributeNames: { '#s': 'status' },
                ExpressionAttributeValues: { ':s': status },
              }),
            );
          }
        }
      }),
    );
    return { batchItemFailures: [] };
  };
}

/**
 * The incident-explanation design before 2026-12-06, as a baseline: per record, in partition order, Powertools
 * idempotency (conditional PutItem INPROGRESS), the rules explainer, PutItem of the view, a conditional PutItem
 * of the review (when one is opened), UpdateItem COMPLETED with the outcome, then one produce of its events. A
 * redelivery: the PutItem fails and the record is read (GetItem, as on dynalite, which ignores
 * ReturnValuesOnConditionCheckFailure), then the produce. Only the request sequence is replayed.
 */
function perRecordIncidents(incidentsTable: string, idempotencyTable: string): Handler {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const publisher = kafkaGenAiEventPublisher(process.env);
  const explainer = new RulesIncidentExplainer();
  return async (event) => {
    const partitions = await decodeEvent(event, { registry });
    await Promise.all(
      partitions.map(async (partition) => {
        for (const record of partition.records) {
          if (record instanceof Error || record.tombstone) continue;
          const incident = toIncident(record.data);
          const key = { id: explanationKey(incident.incidentId) };
          try {
            await documents.send(
              new PutCommand({
                TableName: idempotencyTable,
                Item: { ...key, status: 'INPROGRESS', expiration: Math.round(Date.now() / 1000) + 3600 },
                ConditionExpression: 'attribute_not_exists(id)',
              }),
            );
          } catch (error) {
            if (!(error instanceof ConditionalCheckFailedException)) throw error;
            const { Item } = await documents.send(
              new GetCommand({ TableName: idempotencyTable, Key: key, ConsistentRead: true }),
            );
            await publisher.publish((Item as { data: IncidentOutcome }).data.events);
            continue;
          }
          const outcome = await explainIncident(incident, {}, { explainer });
          await documents.send(
            new PutCommand({
              TableName: incidentsTable,
              Item: { pk: `INCIDENT#${incident.incidentId}`, sk: 'VIEW', ...outcome.view },
            }),
          );
          if (outcome.review) {
            await documents.send(
              new PutCommand({
                TableName: incidentsTable,
                Item: { pk: `INCIDENT#${incident.incidentId}`, sk: 'REVIEW', ...outcome.review },
                ConditionExpression: 'attribute_not_exists(pk)',
              }),
            );
          }
          await documents.send(
            new UpdateCommand({
              TableName: idempotencyTable,
              Key: key,
              UpdateExpression: 'SET #s = :s, #d = :d, validation = :v',
              ExpressionAttributeNames: { '#s': 'status', '#d': 'data' },
              ExpressionAttributeValues: { ':s': 'COMPLETED', ':d': outcome, ':v': payloadHash(incident) },
            }),
          );
          await publisher.publish(outcome.events);
        }
      }),
    );
    return { batchItemFailures: [] };
  };
}

// ---------- workload ----------
const run = randomUUID().slice(0, 8);
const offsets = new Map<string, number>();
let nextN = 1_000 + Math.floor(Math.random() * 1_000_000);

function batch(topic: SampleEventType, partitions: number, ns: number[][]): KafkaEvent {
  const records: KafkaEventRecord[] = [];
  for (let p = 0; p < partitions; p++) {
    for (const n of ns[p] as number[]) {
      const data = sampleData[topic](n) as Record<string, unknown>;
      const key = `${topic}-${p}`;
      const offset = offsets.get(key) ?? 0;
      offsets.set(key, offset + 1);
      records.push(
        kafkaEventRecord({
          topic,
          partition: p,
          offset,
          timestamp: Date.now(),
          key: String(data.bookingId ?? data.incidentId ?? n),
          value: encodeConfluent(registry.latest(topic), data),
          headers: cloudEventHeaders({
            id: `bench-${run}-${topic}-${n}`,
            type: topic,
            source: sampleSources[topic],
            specversion: '1.0',
            time: new Date().toISOString(),
            subject: String(n),
            datacontenttype: 'application/avro',
          }),
        }),
      );
    }
  }
  return kafkaEvent(records);
}

const context = (): Context =>
  ({
    callbackWaitsForEmptyEventLoop: false,
    functionName: spec.fn,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${spec.fn}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${spec.fn}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 300_000,
  }) as unknown as Context;

const counters = () => ({
  dynamodb: proxies.dynamodb.requests(),
  postgres: proxies.postgres.requests(),
  kafkaProduce: proxies.kafka.produces(),
  channel: proxies.channel.requests(),
  model: modelCalls,
});

/** BENCH_LATENCY_TRACE=1: each batch's requests on stderr, with where its wall time went. */
const TRACE = process.env.BENCH_LATENCY_TRACE === '1';
const dynalitePid = readStackState()?.services.find((s) => s.name === 'dynamodb')?.pid;

function traceBatch(
  label: string,
  wallMs: number,
  requests: ReturnType<RoundTripTrace['reset']>,
  cpuBefore: NodeJS.CpuUsage,
  dynaliteBefore: number | undefined,
  started: number,
): void {
  const cpu = process.cpuUsage(cpuBefore);
  const dynalite = processCpuSeconds(dynalitePid);
  const at = (t: number | undefined) => (t === undefined ? '-' : (t - started).toFixed(1));
  const lines = requests.map(
    (r) =>
      `    ${r.depth} ${r.proxy} ${r.operation.replace(/^DynamoDB_\d+\./, '')} sent ${at(r.sent)} served ${at(r.served)} delivered ${at(r.delivered)}`,
  );
  process.stderr.write(
    `[trace] ${label}: wall ${wallMs.toFixed(1)} ms, worker CPU ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms, ` +
      `dynalite CPU ${dynalite !== undefined && dynaliteBefore !== undefined ? ((dynalite - dynaliteBefore) * 1000).toFixed(0) : '?'} ms, ` +
      `${requests.length} requests, ${Math.max(0, ...requests.map((r) => r.depth))} sequential\n${lines.join('\n')}\n`,
  );
}

async function measure(
  handler: Handler,
  events: KafkaEvent[],
  topic: string,
  partitions: number,
  delivery: Measured['delivery'],
): Promise<Measured> {
  const before = counters();
  let wall = 0;
  let failed = 0;
  let sequential = 0;
  let workerCpu = 0;
  let dynaliteCpuTotal: number | undefined = 0;
  for (const event of events) {
    const started = performance.now();
    const startedUs = process.hrtime.bigint() / 1000n;
    roundTrips.reset();
    const cpu = process.cpuUsage();
    const dynaliteCpu = processCpuSeconds(dynalitePid);
    const response = await handler(event, context());
    const batchWall = performance.now() - started;
    wall += batchWall;
    const used = process.cpuUsage(cpu);
    workerCpu += (used.user + used.system) / 1000;
    const dynaliteAfter = processCpuSeconds(dynalitePid);
    dynaliteCpuTotal =
      dynaliteCpuTotal === undefined || dynaliteAfter === undefined || dynaliteCpu === undefined
        ? undefined
        : dynaliteCpuTotal + (dynaliteAfter - dynaliteCpu) * 1000;
    const requests = roundTrips.reset();
    sequential += Math.max(0, ...requests.map((r) => r.depth));
    if (TRACE)
      traceBatch(
        `${topic} x${partitions} ${delivery} [monotonic us ${startedUs}-${process.hrtime.bigint() / 1000n}]`,
        batchWall,
        requests,
        cpu,
        dynaliteCpu,
        started,
      );
    failed += response.batchItemFailures.length;
  }
  const after = counters();
  const records = events.length * partitions * spec.records;
  const per = (name: keyof ReturnType<typeof counters>) =>
    Number(((after[name] - before[name]) / records).toFixed(3));
  const wallMsPerBatch = wall / events.length;
  return {
    case: spec.name,
    fn: spec.fn,
    topic,
    partitions,
    delivery,
    batches: events.length,
    recordsPerPartition: spec.records,
    wallMsPerBatch: Number(wallMsPerBatch.toFixed(1)),
    recordsPerSecondPerPartition: Math.round((spec.records * 1000) / wallMsPerBatch),
    failedRecords: failed,
    sequentialRoundTrips: Number((sequential / events.length).toFixed(1)),
    cpuMsPerBatch: {
      worker: Math.round(workerCpu / events.length),
      ...(dynaliteCpuTotal === undefined || proxies.dynamodb.requests() === before.dynamodb
        ? {}
        : { dynalite: Math.round(dynaliteCpuTotal / events.length) }),
    },
    perRecord: {
      dynamodb: per('dynamodb'),
      postgres: per('postgres'),
      kafkaProduce: per('kafkaProduce'),
      channel: per('channel'),
      model: per('model'),
    },
  };
}

const handler = await loadHandler();
// Warm-up (not measured): connections, SDK clients, the first decode of each schema, and full-size batches per
// topic so V8 has compiled the batch paths: a function under load runs warm. A single cold 100-record batch
// measured ~90 ms of JIT on top of its steady state, and the 2nd to 4th batches of a fresh process were still
// 20-30% slower than the ones after them (2026-12-06, incident-explanation, BENCH_LATENCY_TRACE=1).
for (const topic of spec.topics) {
  await handler(batch(topic, 1, [Array.from({ length: 3 }, () => nextN++)]), context());
  for (let i = 0; i < spec.warmupBatches; i++)
    await handler(batch(topic, 1, [Array.from({ length: spec.records }, () => nextN++)]), context());
}

const results: Measured[] = [];
for (const partitions of spec.partitions) {
  // The same n for every topic of a case: billing's payments pay the rides of the same bookings.
  const ns = Array.from({ length: spec.batches }, () =>
    Array.from({ length: partitions }, () => Array.from({ length: spec.records }, () => nextN++)),
  );
  for (const topic of spec.topics) {
    const first = ns.map((perPartition) => batch(topic, partitions, perPartition));
    results.push(await measure(handler, first, topic, partitions, 'first'));
    results.push(await measure(handler, first, topic, partitions, 'redelivery'));
  }
}
process.stdout.write(`RESULT ${JSON.stringify(results)}\n`);
process.exit(0);
