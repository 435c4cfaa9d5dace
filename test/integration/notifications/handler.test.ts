import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChannelStandIn, startChannelStandIn } from '../../../local/channel-stand-in';
import { dynamoDocumentClient } from '../../../shared/aws-clients';
import { type KafkaBatchResponse, type KafkaEvent, kafkaEvent } from '../../../shared/msk';
import { countRequests, createTable, localDynamoDb } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import { avroRecord } from '../../support/msk-records';

/**
 * The notifications handler end to end on one MSK event: Avro records with CloudEvents headers, the real
 * DynamoDB log (dynalite), and the SNS and SES adapters talking to the local channel stand-in (SNS
 * PublishBatch, SES v2) through the SDK's endpoint variables.
 */
let channel: ChannelStandIn;
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let handler: (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;
/** DynamoDB requests of the handler's own client (the shared one), counted by an SDK middleware. */
let dynamoRequests: ReturnType<typeof countRequests>;

beforeAll(async () => {
  channel = await startChannelStandIn();
  const stubUrl = channel.url;

  dynamo = await localDynamoDb();
  Object.assign(process.env, {
    ...dynamo.env,
    AWS_ENDPOINT_URL_SNS: stubUrl,
    AWS_ENDPOINT_URL_SESV2: stubUrl,
    NOTIFICATIONS_TABLE: await createTable(dynamo.client, 'NotificationsTable'),
    ONCALL_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:operations-oncall',
    CUSTOMER_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:customer-messages',
    EMAIL_FROM: 'noreply@mobility.example',
    REVIEWERS_EMAIL: 'reviewers@mobility.example',
    CHANNEL_RETRY_BASE_MS: '1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  ({ handler } = await import('../../../functions/notifications/handler'));
  dynamoRequests = countRequests(dynamoDocumentClient());
});

afterAll(async () => {
  await channel?.close();
  await dynamo?.stop();
});

let offset = 100;
function record(
  topic: string,
  partition: number,
  key: string,
  data: Record<string, unknown>,
  source = 'test/notifications',
) {
  const timestamp = Date.parse('2026-11-23T10:00:00Z');
  return avroRecord({
    topic,
    partition,
    offset: offset++,
    timestamp,
    key,
    id: `ce-${topic}-${key}`,
    source,
    data,
  });
}

/** A payment.failed record of `paymentId` for `customerId` on `partition`. */
const failedPayment = (partition: number, paymentId: string, customerId: string, amountMinor: number) =>
  record('payment.failed', partition, paymentId, {
    paymentId,
    bookingId: `bk-${paymentId.replace(/^pay-/, '')}`,
    customerId,
    invoiceId: null,
    amount: { amountMinor, currency: 'EUR' },
    method: 'CARD',
    failureCode: 'card_declined',
    failureMessage: 'card declined',
    retryable: true,
    attempt: 1,
    failedAt: Date.parse('2026-11-23T10:00:00Z'),
  });

const payment = (n: number) => failedPayment(0, `pay-${n}`, 'cust-7', 1000 + n);

/** A genai.hitl.requested record (a review request, emailed to the reviewers) on `partition`. */
const reviewRequest = (partition: number, reviewId: string, incidentId: string, key = reviewId) =>
  record('genai.hitl.requested', partition, key, {
    reviewId,
    incidentId,
    reason: 'SEVERITY_CRITICAL',
    reasons: ['SEVERITY_CRITICAL'],
    severity: 'CRITICAL',
    explainer: 'MODEL',
    confidence: 0.8,
    summary: 'Crash',
    requestedAt: Date.parse('2026-11-23T10:00:01Z'),
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
    const hitl = reviewRequest(2, 'rev-1', 'inc-1', 'inc-1');
    const payments = [payment(1), payment(2), payment(3)];
    const event = kafkaEvent([criticalIncident, hitl, ...payments]);

    // SNS refuses bk-2's message as the sender's fault (SenderFault): its record fails, not the batch.
    channel.failWhen((subject) => subject.includes('bk-2'), 'rejected');
    const first = await handler(event, lambdaContext('notifications'));
    const calls = channel.calls;
    expect(first.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'payment.failed-0', offset: payments[1]?.offset } },
      { itemIdentifier: { partition: 'payment.failed-0', offset: payments[2]?.offset } },
    ]);
    const delivered = () => calls.filter((call) => call.ok);
    // The sends of a batch go out together: bk-3 (after the failed bk-2) is sent and logged, and reported
    // with bk-2 only to keep the partition's order; its redelivery skips it.
    expect(delivered().map((call) => call.subject)).toEqual(
      expect.arrayContaining([
        'CRITICAL incident inc-1 on vehicle veh-9',
        'Review needed: GenAI explanation for incident inc-1',
        'Your payment for booking bk-1 did not go through',
        'Your payment for booking bk-3 did not go through',
      ]),
    );
    expect(delivered()).toHaveLength(4);
    expect(calls.filter((call) => !call.ok)).toHaveLength(1); // bk-2: its own fault, not retried in-process

    // The ESM redelivers (here: the whole event, the worst case); SNS takes the message now.
    channel.failWhen(() => false);
    const second = await handler(event, lambdaContext('notifications'));
    expect(second.batchItemFailures).toEqual([]);
    expect(delivered()).toHaveLength(5);
    const perNotification = new Map<string, number>();
    for (const call of delivered()) {
      perNotification.set(call.notificationId, (perNotification.get(call.notificationId) ?? 0) + 1);
    }
    expect([...perNotification.values()].every((count) => count === 1)).toBe(true);
    expect(perNotification.size).toBe(5);

    // And once more: nothing reaches a channel.
    await handler(event, lambdaContext('notifications'));
    expect(calls.filter((call) => call.ok)).toHaveLength(5);
    expect(calls).toHaveLength(6);
  });

  it('one partition of 100 notifications: 6 DynamoDB requests and 10 PublishBatch calls; redelivered: 3 and none', async () => {
    const batch = Array.from({ length: 100 }, (_, n) => failedPayment(3, `bulk-${n}`, `cust-${n}`, 500));
    const event = kafkaEvent(batch);
    const before = { dynamo: dynamoRequests.count, channel: channel.requests(), sent: channel.calls.length };
    expect((await handler(event, lambdaContext('notifications'))).batchItemFailures).toEqual([]);
    // Lease, one BatchGetItem (100 keys), four BatchWriteItem (25 each): 0.06 per notification. No release:
    // the partition's next batch takes the lease by its offsets.
    expect(dynamoRequests.count - before.dynamo).toBe(6);
    expect(channel.requests() - before.channel).toBe(10);
    expect(channel.calls.length - before.sent).toBe(100);

    const again = { dynamo: dynamoRequests.count, channel: channel.requests() };
    expect((await handler(event, lambdaContext('notifications'))).batchItemFailures).toEqual([]);
    // The same records again while the first invocation's lease runs (a lost commit): the lease is refused
    // (UpdateItem, then GetItem for its end, which dynalite does not return with the refusal as DynamoDB
    // does) and the BatchGetItem beside it finds all SENT, so nothing waits and nothing is sent.
    expect(dynamoRequests.count - again.dynamo).toBe(3);
    expect(channel.requests() - again.channel).toBe(0);
  });

  it('one partition of 60 review requests: 2 SendBulkEmail calls, each email as rendered, once', async () => {
    // Characters an HTML-escaping template would change, and braces that must not be read as a variable.
    const incidentId = (n: number) => `inc-${n} & <"brake's"> {{x}}`;
    const batch = Array.from({ length: 60 }, (_, n) => reviewRequest(7, `rev-bulk-${n}`, incidentId(n)));
    const event = kafkaEvent(batch);
    const before = { requests: channel.requests(), sent: channel.calls.length };
    expect((await handler(event, lambdaContext('notifications'))).batchItemFailures).toEqual([]);
    expect(channel.requests() - before.requests).toBe(2);
    const emails = channel.calls.slice(before.sent);
    expect(emails.map((email) => [email.service, email.ok])).toEqual(batch.map(() => ['ses', true]));
    expect(new Set(emails.map((email) => email.request)).size).toBe(2);
    expect(new Set(emails.map((email) => email.notificationId)).size).toBe(60);
    const n = 42;
    const email = emails.find((e) => e.subject.endsWith(incidentId(n)));
    expect(email?.subject).toBe(`Review needed: GenAI explanation for incident ${incidentId(n)}`);
    expect(email?.body).toBe(
      'An AI-generated incident explanation needs a human review before it is acted on.\n\n' +
        `Review: rev-bulk-${n}\nIncident: ${incidentId(n)}\nWhy: SEVERITY_CRITICAL\n\n` +
        'Open the review queue, check the explanation and record your decision.',
    );

    // Redelivered: all logged SENT, no email again.
    await handler(event, lambdaContext('notifications'));
    expect(channel.requests() - before.requests).toBe(2);
  });

  it('a throttled email is retried inside the invocation until SES takes it: no record failure, sent once', async () => {
    const review = reviewRequest(8, 'rev-throttled', 'inc-throttled');
    // ACCOUNT_THROTTLED for its first 4 attempts: more than the 3 notifications makes in a round, so the batch
    // engine has to run the batch again (an outage), not report the record.
    let throttled = 0;
    channel.failWhen((subject) => subject.includes('inc-throttled') && throttled++ < 4, 'unavailable');
    const before = channel.calls.length;
    const response = await handler(kafkaEvent([review]), lambdaContext('notifications'));
    channel.failWhen(() => false);
    expect(response.batchItemFailures).toEqual([]);
    const attempts = channel.calls.slice(before);
    expect(attempts.map((call) => call.ok)).toEqual([false, false, false, false, true]);
    expect(new Set(attempts.map((call) => call.notificationId)).size).toBe(1);
  });

  it('an SNS outage that does not clear fails the invocation, not the record, when the time is up', async () => {
    // PublishBatch answers, but fails the entry on SNS's side (no SenderFault), every time.
    channel.failWhen((subject) => subject.includes('bk-sns-down'), 'unavailable');
    const before = channel.calls.length;
    // 12 s left: the engine retries inside the invocation until 10 s before the end (2 s), then gives up.
    await expect(
      handler(
        kafkaEvent([failedPayment(9, 'pay-sns-down', 'cust-9', 900)]),
        lambdaContext('notifications', 12_000),
      ),
    ).rejects.toThrow(/InternalError: down/);
    channel.failWhen(() => false);
    // Tried more than one in-process round (3): the batch ran again before the invocation failed.
    expect(channel.calls.length - before).toBeGreaterThan(3);
    expect(channel.calls.slice(before).every((call) => call.service === 'sns' && !call.ok)).toBe(true);
  });

  it('three partitions in one invocation: a lease each, and their log reads share one BatchGetItem', async () => {
    const batch = [4, 5, 6].flatMap((partition) =>
      Array.from({ length: 5 }, (_, n) =>
        failedPayment(partition, `shared-${partition}-${n}`, `cust-${n}`, 700),
      ),
    );
    dynamoRequests.byCommand.clear();
    const before = channel.calls.length;
    expect((await handler(kafkaEvent(batch), lambdaContext('notifications'))).batchItemFailures).toEqual([]);
    expect(channel.calls.length - before).toBe(15);
    const requests = Object.fromEntries(dynamoRequests.byCommand);
    // The lease is a conditional update per partition; the reads begin together (shared/dynamodb.ts).
    expect(requests.UpdateItemCommand).toBe(3);
    expect(requests.BatchGetItemCommand).toBe(1);
    expect(requests.BatchWriteItemCommand).toBeGreaterThanOrEqual(1);
    expect(requests.BatchWriteItemCommand).toBeLessThanOrEqual(3);
  });

  it('the same event id from two sources is two events: both notified, each once', async () => {
    const data = (n: number) => ({
      bookingId: 'bk-twin',
      customerId: 'cust-twin',
      vehicleId: `veh-${n}`,
      vehicleType: 'SCOOTER',
      zoneId: 'berlin-mitte',
      pickup: { lat: 52.5, lon: 13.4 },
      quotedPrice: { amountMinor: 300, currency: 'EUR' },
      createdAt: Date.parse('2026-11-23T10:00:00Z'),
      channel: 'APP',
      promoCode: null,
    });
    const twins = kafkaEvent([
      record('booking.created', 4, 'bk-twin', data(1), 'booking-service/eu'),
      record('booking.created', 4, 'bk-twin', data(2), 'booking-service/us'),
    ]);
    const before = channel.calls.length;
    expect((await handler(twins, lambdaContext('notifications'))).batchItemFailures).toEqual([]);
    await handler(twins, lambdaContext('notifications'));
    expect(channel.calls.slice(before).filter((call) => call.ok)).toHaveLength(2);
  });
});
