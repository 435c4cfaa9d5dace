// The Kafka client needs Promise.withResolvers (Node 22); local Node is 20.
import '../../../shared/kafka/node20-polyfills';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Context, MSKEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentArtefactId } from '../../../functions/incident-explanation/deterministic-id';
import { DynamoDbReviewTasks } from '../../../functions/incident-explanation/dynamodb-stores';
import { listOutbox } from '../../../functions/notifications/outbox-channel';
import { EsmEmulator } from '../../../local/esm/emulator';
import type { EsmHandler } from '../../../local/esm/invoker';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { EventProducer } from '../../../shared/kafka/producer';
import type { KafkaBatchResponse, KafkaEvent } from '../../../shared/msk';
import { createTable, incidentView, localDynamoDb } from '../../support/dynamodb';
import { testDefinition } from '../../support/esm-definition';
import { createTopic, kafkaBrokers } from '../../support/kafka';
import { waitFor } from '../../support/wait';
import { type AuditDatabase, createAuditDatabase } from '../audit/audit-database';

/**
 * The local pipeline through a real broker and the ESM emulator: incident.detected -> incident-explanation
 * (rules explainer) -> genai.request/response/hitl.requested -> notifications (outbox) and audit-append
 * (PostgreSQL event store), and genai.hitl.resolved closing the review. The handlers are the real ones,
 * wired from the environment as in `dev`.
 */
type Handler = (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;

let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let emulator: EsmEmulator;
let producer: EventProducer;
let incidentsTable: string;
let notificationsTable: string;
let audit: AuditDatabase;
const run = randomUUID().slice(0, 8);

/** The `review` command as an operator runs it, against this test's incidents table and the stack's broker. */
async function reviewCli(
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/cli.ts', 'review', ...args], {
    env: { ...process.env, INCIDENTS_TABLE: incidentsTable },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [status] = (await once(child, 'close')) as [number | null];
  // The SDK's Node 20 support notice is not the command's output.
  return {
    status,
    stdout,
    stderr: stderr.replace(
      /\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?trace-warnings \.\.\.` to show where the warning was created\)\n/,
      '',
    ),
  };
}

async function ensureTopic(topic: string) {
  await createTopic(topic, 1).catch((error: Error) => {
    if (!/exists/i.test(error.message) && !/exists/i.test(String((error as { errors?: unknown }).errors))) {
      throw error;
    }
  });
}

describe('local pipeline: incident -> explanation -> review notification -> resolution from `review`', () => {
  beforeAll(async () => {
    for (const topic of [
      'incident.detected',
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
      'genai.hitl.resolved',
    ]) {
      await ensureTopic(topic);
    }
    dynamo = await localDynamoDb();
    incidentsTable = await createTable(dynamo.client, 'IncidentsTable');
    notificationsTable = await createTable(dynamo.client, 'NotificationsTable');
    Object.assign(process.env, {
      ...dynamo.env,
      INCIDENTS_TABLE: incidentsTable,
      NOTIFICATIONS_TABLE: notificationsTable,
      POWERTOOLS_LOG_LEVEL: 'CRITICAL',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    delete process.env.BEDROCK_MODEL_ID;
    delete process.env.CHANNEL;
    delete process.env.ONCALL_TOPIC_ARN;
    // incident-explanation reads IDEMPOTENCY_TABLE at import (notifications has no idempotency table).
    process.env.IDEMPOTENCY_TABLE = await createTable(dynamo.client, 'IncidentIdempotencyTable');
    const incidentHandler = (await import('../../../functions/incident-explanation/handler'))
      .handler as Handler;
    const notificationsHandler = (await import('../../../functions/notifications/handler'))
      .handler as Handler;
    audit = await createAuditDatabase('incident_pipeline');
    process.env.DATABASE_URL = audit.url;
    const auditHandler = (await import('../../../functions/audit-append/handler')).handler as Handler;

    const asEsmHandler =
      (handler: Handler): EsmHandler =>
      (event: MSKEvent, context: Context) =>
        handler(event as unknown as KafkaEvent, context);
    // Only records produced from now on: the shared topics may hold other runs' history.
    const since = Math.floor(Date.now() / 1000) - 1;
    const mapping = (functionKey: string, topic: string) =>
      testDefinition(topic, {
        startingPosition: 'AT_TIMESTAMP',
        startingPositionTimestamp: since,
        functionKey,
        functionName: `${functionKey}-${run}`,
        consumerGroupId: `pipeline-${run}-${functionKey}-${topic}`,
        maximumBatchingWindowMs: 50,
        reportBatchItemFailures: true,
        maximumRetryAttempts: 3,
      });
    emulator = new EsmEmulator({
      definitions: [
        mapping('incident-explanation', 'incident.detected'),
        mapping('incident-explanation', 'genai.hitl.resolved'),
        mapping('oncall-paging', 'incident.detected'),
        mapping('notifications', 'genai.hitl.requested'),
        mapping('audit-append', 'genai.request'),
        mapping('audit-append', 'genai.response'),
        mapping('audit-append', 'genai.hitl.requested'),
        mapping('audit-append', 'genai.hitl.resolved'),
      ],
      brokers: kafkaBrokers(),
      handlers: {
        'incident-explanation': asEsmHandler(incidentHandler),
        notifications: asEsmHandler(notificationsHandler),
        // notifications' code, deployed on its own for incident.detected (serverless/consumers.cjs).
        'oncall-paging': asEsmHandler(notificationsHandler),
        'audit-append': asEsmHandler(auditHandler),
      },
      retryDelayMs: () => 100,
      log: () => {},
    });
    await emulator.start();
    producer = EventProducer.connect({
      brokers: kafkaBrokers(),
      clientId: `pipeline-${run}`,
    });
  }, 120_000);

  afterAll(async () => {
    await emulator?.stop();
    await producer?.close();
    await dynamo?.stop();
    await audit?.drop();
  }, 60_000);

  it('explains a critical incident, pages on-call, asks reviewers, and closes the review on resolution', async () => {
    const incidentId = `inc-${run}-critical`;
    const started = Date.now();
    const incidentEvent = {
      topic: 'incident.detected',
      key: incidentId,
      id: `ce-${incidentId}`,
      type: 'incident.detected',
      source: 'test/incident-detector',
      correlationId: `corr-${run}`,
      subject: incidentId,
      time: new Date(started).toISOString(),
      data: {
        incidentId,
        vehicleId: 'veh-77',
        vehicleType: 'SCOOTER',
        bookingId: null,
        customerId: null,
        severity: 'CRITICAL',
        anomalyType: 'BATTERY_OVERHEAT',
        location: { lat: 52.5, lon: 13.4 },
        zoneId: 'berlin-mitte',
        telemetry: {
          speedKmh: 0,
          accelerationG: 0,
          batteryLevelPct: 55,
          batteryTempC: 71.5,
          odometerMeters: 9000,
          firmwareVersion: '4.2.1',
          capturedAt: started,
        },
        anomalyScore: 0.99,
        detectorVersion: 'det-1',
        detectedAt: started,
      },
    };
    await producer.publish([incidentEvent]);

    const outboxFor = async () =>
      (await listOutbox(dynamo.documents, notificationsTable)).filter((entry) =>
        entry.body.includes(incidentId),
      );
    await waitFor(
      'the on-call page and the review request in the outbox',
      async () => (await outboxFor()).length >= 2,
      90_000,
    );
    const elapsedMs = Date.now() - started;
    const outbox = await outboxFor();
    expect(outbox.map((entry) => entry.template).sort()).toEqual([
      'hitl-review-requested',
      'incident-critical-oncall',
    ]);
    console.log(
      `incident.detected -> outbox (page + review request via genai.hitl.requested): ${elapsedMs} ms`,
    );

    const view = await incidentView(dynamo.documents, incidentsTable, incidentId);
    expect(view).toMatchObject({ explainer: 'RULES_FALLBACK', severity: 'CRITICAL' });
    const reviews = new DynamoDbReviewTasks(dynamo.documents, incidentsTable);
    expect((await reviews.get(incidentId))?.status).toBe('OPEN');

    // The reviewer's side, through the `review` command: the open review is listed, and resolving it
    // produces genai.hitl.resolved, which closes the review and is audited.
    const listed = await reviewCli('list', '--json');
    expect(listed.status).toBe(0);
    const open = JSON.parse(listed.stdout) as { incidentId: string; reviewId: string }[];
    expect(open.find((task) => task.incidentId === incidentId)).toMatchObject({
      reviewId: incidentArtefactId(incidentId, 'review'),
      status: 'OPEN',
    });
    const resolved = await reviewCli(
      'resolve',
      incidentId,
      '--decision',
      'escalate',
      '--reviewer',
      'safety-officer',
      '--note',
      'battery pack to the lab',
    );
    expect(resolved.stderr).toBe('');
    expect(resolved.stdout).toContain(`for review ${incidentArtefactId(incidentId, 'review')}`);
    await waitFor(
      'the review to be resolved',
      async () => (await reviews.get(incidentId))?.status === 'RESOLVED',
      60_000,
    );
    expect(await reviews.get(incidentId)).toMatchObject({
      decision: 'ESCALATED',
      reviewer: 'safety-officer',
      comment: 'battery pack to the lab',
    });
    expect(
      (JSON.parse((await reviewCli('list', '--json')).stdout) as { incidentId: string }[]).some(
        (task) => task.incidentId === incidentId,
      ),
    ).toBe(false);
    // A second decision on a closed review is refused, naming the first.
    const again = await reviewCli(
      'resolve',
      incidentId,
      '--decision',
      'approve',
      '--reviewer',
      'someone-else',
    );
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already resolved \(ESCALATED by safety-officer at /);

    // audit-append recorded every GenAI interaction of the incident, and the human decision.
    const reader = new PostgresAuditReader(audit.owner);
    const audited = async () => reader.query({ subject: incidentId });
    await waitFor('the genai.* events in the audit store', async () => (await audited()).length >= 4, 60_000);
    const rows = await audited();
    expect(rows.map((row) => row.type).sort()).toEqual([
      'genai.hitl.requested',
      'genai.hitl.resolved',
      'genai.request',
      'genai.response',
    ]);
    const response = rows.find((row) => row.type === 'genai.response');
    expect(response?.ceId).toBe(incidentArtefactId(incidentId, 'genai.response'));
    expect(response?.correlationId).toBe(`corr-${run}`);
    expect(response?.data).toMatchObject({ explainer: 'RULES_FALLBACK', incidentId });
    expect((await reader.verify()).ok).toBe(true);
    console.log(`incident.detected -> 4 genai.* rows in the audit store: ${Date.now() - started} ms`);

    // The detector re-sends the incident (same ce_id): the explanation re-produces the same events with the
    // same ids, and downstream nothing changes: no second page or review email, no second audit row.
    await producer.publish([incidentEvent]);
    const consumed = (functionKey: string, topic: string) =>
      emulator.mappings.find((m) => m.definition.functionKey === functionKey && m.definition.topic === topic)
        ?.stats.consumed ?? 0;
    await waitFor(
      'the redelivered incident',
      () => consumed('incident-explanation', 'incident.detected') >= 2,
    );
    await waitFor(
      'the re-produced response at audit-append',
      () => consumed('audit-append', 'genai.response') >= 2,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await audited()).length).toBe(4);
    expect(await outboxFor()).toHaveLength(2);
  }, 180_000);
});
