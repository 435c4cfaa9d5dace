import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeConfluent } from '../../../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { type KafkaBatchResponse, type KafkaEvent, kafkaEvent, kafkaEventRecord } from '../../../shared/msk';
import { createTable, lambdaContext, localDynamoDb } from '../incident/local-dynamodb';

/**
 * The notifications handler end to end on one MSK event: Avro records with CloudEvents headers, the real
 * DynamoDB log and idempotency (dynalite), and the SNS and SES adapters talking to a local HTTP stand-in
 * (SNS query protocol, SES v2 REST JSON) through the SDK's endpoint variables.
 */
interface ChannelCall {
  service: 'sns' | 'ses';
  notificationId: string;
  subject: string;
  ok: boolean;
}

let stub: Server;
const calls: ChannelCall[] = [];
let failPublishFor: (subject: string) => boolean = () => false;
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let handler: (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;

beforeAll(async () => {
  stub = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (request.url?.startsWith('/v2/email/outbound-emails')) {
        const email = JSON.parse(body);
        calls.push({
          service: 'ses',
          notificationId: email.Content.Simple.Headers[0].Value,
          subject: email.Content.Simple.Subject.Data,
          ok: true,
        });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ MessageId: `ses-${calls.length}` }));
        return;
      }
      const form = new URLSearchParams(body);
      const subject = form.get('Subject') ?? '';
      const names = [...form.entries()].filter(([key]) => /^MessageAttributes\.entry\.\d+\.Name$/.test(key));
      const idEntry = names
        .find(([, value]) => value === 'notificationId')?.[0]
        .replace('.Name', '.Value.StringValue');
      const ok = !failPublishFor(subject);
      calls.push({ service: 'sns', notificationId: form.get(idEntry ?? '') ?? '', subject, ok });
      if (!ok) {
        response.writeHead(500, { 'content-type': 'text/xml' });
        response.end(
          '<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down</Message></Error><RequestId>r</RequestId></ErrorResponse>',
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'text/xml' });
      response.end(
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>' +
          `<MessageId>sns-${calls.length}</MessageId></PublishResult>` +
          '<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>',
      );
    });
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;

  dynamo = await localDynamoDb();
  Object.assign(process.env, {
    ...dynamo.env,
    AWS_ENDPOINT_URL_SNS: stubUrl,
    AWS_ENDPOINT_URL_SESV2: stubUrl,
    NOTIFICATIONS_TABLE: await createTable(dynamo.client, 'NotificationsTable'),
    IDEMPOTENCY_TABLE: await createTable(dynamo.client, 'NotificationsIdempotencyTable'),
    ONCALL_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:operations-oncall',
    CUSTOMER_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:customer-messages',
    EMAIL_FROM: 'noreply@mobility.example',
    REVIEWERS_EMAIL: 'reviewers@mobility.example',
    CHANNEL_RETRY_BASE_MS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  ({ handler } = await import('../../../functions/notifications/handler'));
});

afterAll(async () => {
  await new Promise<void>((resolve) => stub?.close(() => resolve()));
  await dynamo?.stop();
});

let offset = 100;
function record(topic: string, partition: number, key: string, data: Record<string, unknown>) {
  const id = `ce-${topic}-${key}`;
  return kafkaEventRecord({
    topic,
    partition,
    offset: offset++,
    timestamp: Date.parse('2026-11-23T10:00:00Z'),
    key,
    value: encodeConfluent(fileCatalogSchemaRegistry.latest(topic), data),
    headers: cloudEventHeaders({
      id,
      type: topic,
      source: 'test/notifications',
      specversion: '1.0',
      time: '2026-11-23T10:00:00.000Z',
      subject: key,
      datacontenttype: 'application/avro',
    }),
  });
}

const payment = (n: number) =>
  record('payment.failed', 0, `pay-${n}`, {
    paymentId: `pay-${n}`,
    bookingId: `bk-${n}`,
    customerId: 'cust-7',
    invoiceId: null,
    amount: { amountMinor: 1000 + n, currency: 'EUR' },
    method: 'CARD',
    failureCode: 'card_declined',
    failureMessage: 'card declined',
    retryable: true,
    attempt: 1,
    failedAt: Date.parse('2026-11-23T10:00:00Z'),
  });

describe('notifications handler', () => {
  it('reports a failing send with its successors, and a redelivery sends only what was not sent', async () => {
    const criticalIncident = record('incident.detected', 1, 'inc-1', {
      incidentId: 'inc-1',
      vehicleId: 'veh-9',
      vehicleType: 'SCOOTER',
      bookingId: null,
      customerId: null,
      severity: 'CRITICAL',
      anomalyType: 'CRASH_DETECTED',
      location: { lat: 52.52, lon: 13.4 },
      zoneId: 'berlin-mitte',
      telemetry: {
        speedKmh: 22,
        accelerationG: -3.2,
        batteryLevelPct: 70,
        batteryTempC: 30,
        odometerMeters: 1000,
        firmwareVersion: '4.2.1',
        capturedAt: Date.parse('2026-11-23T09:59:58Z'),
      },
      anomalyScore: 0.98,
      detectorVersion: 'det-1',
      detectedAt: Date.parse('2026-11-23T09:59:58Z'),
    });
    const hitl = record('genai.hitl.requested', 2, 'inc-1', {
      reviewId: 'rev-1',
      incidentId: 'inc-1',
      reason: 'SEVERITY_CRITICAL',
      reasons: ['SEVERITY_CRITICAL'],
      severity: 'CRITICAL',
      explainer: 'MODEL',
      confidence: 0.8,
      summary: 'Crash',
      requestedAt: Date.parse('2026-11-23T10:00:01Z'),
    });
    const payments = [payment(1), payment(2), payment(3)];
    const event = kafkaEvent([criticalIncident, hitl, ...payments]);

    failPublishFor = (subject) => subject.includes('bk-2');
    const first = await handler(event, lambdaContext('notifications') as Context);
    expect(first.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'payment.failed-0', offset: payments[1]?.offset } },
      { itemIdentifier: { partition: 'payment.failed-0', offset: payments[2]?.offset } },
    ]);
    const delivered = () => calls.filter((call) => call.ok);
    expect(delivered().map((call) => call.subject)).toEqual(
      expect.arrayContaining([
        'CRITICAL incident inc-1 on vehicle veh-9',
        'Review needed: GenAI explanation for incident inc-1',
        'Your payment for booking bk-1 did not go through',
      ]),
    );
    expect(delivered()).toHaveLength(3);
    expect(calls.filter((call) => !call.ok)).toHaveLength(3); // bk-2: three attempts, then the failure path

    // The ESM redelivers (here: the whole event, the worst case); SNS has recovered.
    failPublishFor = () => false;
    const second = await handler(event, lambdaContext('notifications') as Context);
    expect(second.batchItemFailures).toEqual([]);
    expect(delivered()).toHaveLength(5);
    const perNotification = new Map<string, number>();
    for (const call of delivered()) {
      perNotification.set(call.notificationId, (perNotification.get(call.notificationId) ?? 0) + 1);
    }
    expect([...perNotification.values()].every((count) => count === 1)).toBe(true);
    expect(perNotification.size).toBe(5);

    // And once more: nothing reaches a channel.
    await handler(event, lambdaContext('notifications') as Context);
    expect(calls.filter((call) => call.ok)).toHaveLength(5);
    expect(calls).toHaveLength(8);
  });
});
