// The Kafka client needs Promise.withResolvers (Node 22); local Node is 20.
import '../../../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Admin, Consumer } from '@platformatic/kafka';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { incidentArtefactId } from '../../../functions/incident-explanation/deterministic-id';
import { DynamoDbReviewTasks } from '../../../functions/incident-explanation/dynamodb-stores';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import {
  decodeRecord,
  isRecordDecodeError,
  type KafkaBatchResponse,
  type KafkaEvent,
  kafkaEvent,
} from '../../../shared/msk';
import { createTable, localDynamoDb } from '../../support/dynamodb';
import { kafkaBrokers } from '../../support/kafka';
import { lambdaContext } from '../../support/lambda-context';
import { avroRecord } from '../../support/msk-records';

/**
 * The incident-explanation handler end to end: MSK events in, Bedrock through a local Converse stand-in
 * (counting the calls that reach the "model"), DynamoDB idempotency and read models on dynalite, and the
 * genai.* events produced to a real Kafka broker (KAFKA_BROKERS) and read back.
 */
const genaiTopics = ['genai.request', 'genai.response', 'genai.hitl.requested'];

let converse: Http2Server;
const sessions = new Set<ServerHttp2Session>();
let modelCalls = 0;
/** While true the Converse stand-in refuses every request (the explainer falls back to the rules). */
let modelDown = false;
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let handler: (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;
const run = randomUUID().slice(0, 8);

const modelAnswer = (confidence: number) =>
  JSON.stringify({
    summary: 'The vehicle stopped abruptly; the rider most likely braked for an obstacle.',
    likelyCauses: ['Obstacle on the road'],
    recommendedAction: 'Check the brakes at the next service.',
    confidence,
  });

async function ensureTopics(topics: string[]) {
  const admin = new Admin({
    clientId: 'incident-test-admin',
    bootstrapBrokers: kafkaBrokers(),
  });
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => !existing.has(topic));
    if (missing.length > 0) await admin.createTopics({ topics: missing, partitions: 1, replicas: 1 });
  } finally {
    await admin.close();
  }
}

/** Reads every genai.* record of this run's incidents, decoded like a consumer would. */
async function readGenAiEvents(expected: number, since: number) {
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId: `incident-test-${run}`,
    groupId: `incident-test-${randomUUID()}`,
    bootstrapBrokers: kafkaBrokers(),
  });
  const found: { topic: string; key: string; id: string; data: Record<string, unknown>; value: string }[] =
    [];
  try {
    // Start at the first record written since the test began: the shared topics may hold a long history.
    const starts = await consumer.listOffsets({ topics: genaiTopics, timestamp: BigInt(since) });
    const offsets = [...starts.entries()].flatMap(([topic, partitions]) =>
      partitions.flatMap((offset, partition) => (offset >= 0n ? [{ topic, partition, offset }] : [])),
    );
    const stream = await consumer.consume({
      topics: genaiTopics,
      mode: 'manual',
      offsets,
      autocommit: false,
    });
    const deadline = setTimeout(() => stream.close().catch(() => {}), 15_000);
    for await (const message of stream) {
      const key = message.key?.toString('utf8') ?? '';
      if (key.startsWith(`inc-${run}`)) {
        const headers = [...message.headers.entries()].map(([name, value]) => ({
          [name.toString()]: [...value],
        }));
        const decoded = await decodeRecord(
          {
            topic: message.topic,
            partition: message.partition,
            offset: Number(message.offset),
            timestamp: Number(message.timestamp),
            timestampType: 'CREATE_TIME',
            key: message.key?.toString('base64') ?? null,
            value: message.value?.toString('base64') ?? null,
            headers,
          },
          { registry: fileCatalogSchemaRegistry },
        );
        if (isRecordDecodeError(decoded) || decoded.tombstone)
          throw new Error(`undecodable ${message.topic}`);
        found.push({
          topic: message.topic,
          key,
          id: decoded.cloudEvent.id,
          data: decoded.data,
          value: message.value.toString('base64'),
        });
      }
      if (found.length >= expected) break;
    }
    clearTimeout(deadline);
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return found;
}

let offset = 0;
function incidentRecord(incidentId: string, severity: string) {
  return avroRecord({
    topic: 'incident.detected',
    partition: 0,
    offset: offset++,
    timestamp: Date.parse('2026-11-23T10:00:00Z'),
    time: '2026-11-23T09:59:59.000Z',
    key: incidentId,
    id: `ce-${incidentId}`,
    source: 'test/incident-detector',
    correlationId: `corr-${incidentId}`,
    data: {
      incidentId,
      vehicleId: 'veh-3',
      vehicleType: 'SCOOTER',
      bookingId: null,
      customerId: null,
      severity,
      anomalyType: 'HARSH_BRAKING',
      location: { lat: 52.5, lon: 13.4 },
      zoneId: 'berlin-mitte',
      telemetry: {
        speedKmh: 27,
        accelerationG: -0.9,
        batteryLevelPct: 80,
        batteryTempC: 25,
        odometerMeters: 5000,
        firmwareVersion: '4.2.1',
        capturedAt: Date.parse('2026-11-23T09:59:59Z'),
      },
      anomalyScore: 0.8,
      detectorVersion: 'det-1',
      detectedAt: Date.parse('2026-11-23T09:59:59Z'),
    },
  });
}

describe('incident-explanation handler (Kafka broker, Converse stand-in, dynalite)', () => {
  beforeAll(async () => {
    converse = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        modelCalls += 1;
        if (modelDown) {
          response.writeHead(400, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'ValidationException',
          });
          response.end(JSON.stringify({ message: 'model refused (test)' }));
          return;
        }
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            output: { message: { role: 'assistant', content: [{ text: modelAnswer(0.85) }] } },
            usage: { inputTokens: 200, outputTokens: 50, totalTokens: 250 },
            stopReason: 'end_turn',
            metrics: { latencyMs: 300 },
          }),
        );
      });
    });
    converse.on('session', (session) => {
      sessions.add(session);
      session.on('close', () => sessions.delete(session));
    });
    await new Promise<void>((resolve) => converse.listen(0, '127.0.0.1', resolve));
    await ensureTopics(['incident.detected', 'genai.hitl.resolved', ...genaiTopics]);

    dynamo = await localDynamoDb();
    Object.assign(process.env, {
      ...dynamo.env,
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: `http://127.0.0.1:${(converse.address() as AddressInfo).port}`,
      BEDROCK_MODEL_ID: 'eu.anthropic.claude-3-haiku-20240307-v1:0',
      BEDROCK_TIMEOUT_MS: '3000',
      INCIDENTS_TABLE: await createTable(dynamo.client, 'IncidentsTable'),
      IDEMPOTENCY_TABLE: await createTable(dynamo.client, 'IncidentIdempotencyTable'),
      // WARN: the fallback test reads the model-failure warning.
      POWERTOOLS_LOG_LEVEL: 'WARN',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    ({ handler } = await import('../../../functions/incident-explanation/handler'));
  }, 60_000);

  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => converse?.close(() => resolve()));
    await dynamo?.stop();
  });

  it('explains each incident once, produces genai.* with deterministic ids, and re-produces them on redelivery', async () => {
    const medium = `inc-${run}-medium`;
    const critical = `inc-${run}-critical`;
    const event = kafkaEvent([incidentRecord(medium, 'MEDIUM'), incidentRecord(critical, 'CRITICAL')]);

    const since = Date.now() - 1_000;
    const started = performance.now();
    expect((await handler(event, lambdaContext('incident-explanation'))).batchItemFailures).toEqual([]);
    const firstMs = performance.now() - started;
    expect(modelCalls).toBe(2);

    const redeliveryStarted = performance.now();
    expect((await handler(event, lambdaContext('incident-explanation'))).batchItemFailures).toEqual([]);
    const redeliveryMs = performance.now() - redeliveryStarted;
    expect(modelCalls).toBe(2);
    console.log(
      `2 incidents: first delivery ${Math.round(firstMs)} ms (model + DynamoDB + produce), ` +
        `redelivery ${Math.round(redeliveryMs)} ms (stored result + produce)`,
    );

    // 2 x (request + response) + 1 hitl.requested, each produced twice (once per delivery).
    const events = await readGenAiEvents(10, since);
    expect(events).toHaveLength(10);
    const byId = new Map<string, typeof events>();
    for (const event of events) byId.set(event.id, [...(byId.get(event.id) ?? []), event]);
    expect(byId.size).toBe(5);
    for (const copies of byId.values()) {
      expect(copies).toHaveLength(2);
      expect(copies[1]?.value).toBe(copies[0]?.value); // byte-identical re-production
    }
    expect(byId.has(incidentArtefactId(critical, 'genai.hitl.requested'))).toBe(true);
    expect(byId.has(incidentArtefactId(medium, 'genai.hitl.requested'))).toBe(false);
    const response = byId.get(incidentArtefactId(medium, 'genai.response'))?.[0];
    expect(response?.key).toBe(medium);
    expect(response?.data).toMatchObject({
      explainer: 'MODEL',
      modelId: 'eu.anthropic.claude-3-haiku-20240307-v1:0',
      inputTokens: 200,
      outputTokens: 50,
      totalTokens: 250,
      confidence: 0.85,
    });

    // The reviewer resolves the critical incident's review.
    const reviews = new DynamoDbReviewTasks(dynamo.documents, process.env.INCIDENTS_TABLE as string);
    expect((await reviews.get(critical))?.status).toBe('OPEN');
    const resolved = kafkaEvent([
      avroRecord({
        topic: 'genai.hitl.resolved',
        partition: 0,
        offset: 0,
        timestamp: Date.parse('2026-11-23T10:10:00Z'),
        key: critical,
        id: `ce-resolved-${critical}`,
        source: 'test/review-console',
        data: {
          reviewId: incidentArtefactId(critical, 'review'),
          incidentId: critical,
          decision: 'CONFIRMED',
          reviewer: 'ops-lead',
          comment: 'Brakes checked',
          resolvedAt: Date.parse('2026-11-23T10:10:00Z'),
        },
      }),
    ]);
    expect((await handler(resolved, lambdaContext('incident-explanation'))).batchItemFailures).toEqual([]);
    expect(await reviews.get(critical)).toMatchObject({
      status: 'RESOLVED',
      decision: 'CONFIRMED',
      reviewer: 'ops-lead',
      comment: 'Brakes checked',
      resolvedAt: '2026-11-23T10:10:00.000Z',
    });
  }, 60_000);

  it('logs a model failure with the coordinates and correlation id of the record being explained', async () => {
    const incidentId = `inc-${run}-fallback`;
    const record = incidentRecord(incidentId, 'MEDIUM');
    const lines: Record<string, unknown>[] = [];
    const write = process.stderr.write.bind(process.stderr);
    // Powertools writes warnings as JSON lines to stderr.
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      const text = String(chunk);
      if (!text.startsWith('{')) return write(chunk);
      for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line));
      return true;
    });
    modelDown = true;
    try {
      const response = await handler(kafkaEvent([record]), lambdaContext('incident-explanation'));
      expect(response.batchItemFailures).toEqual([]);
    } finally {
      modelDown = false;
      spy.mockRestore();
    }
    const warnings = lines.filter(
      (line) => line.message === 'Model failed; the rules answered (RULES_FALLBACK)',
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 'WARN',
      service: 'incident-explanation',
      topic: 'incident.detected',
      partition: 0,
      offset: record.offset,
      eventId: `ce-${incidentId}`,
      eventType: 'incident.detected',
      correlationId: `corr-${incidentId}`,
    });
    expect(String(warnings[0]?.reason)).toContain('ValidationException');
  }, 60_000);
});
