import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbNotificationLog } from '../../../functions/notifications/dynamodb-notification-log';
import { createNotificationEventProcessor } from '../../../functions/notifications/notification-events';
import { listOutbox, OutboxChannel } from '../../../functions/notifications/outbox-channel';
import type {
  DeliveryReceipt,
  NotificationChannel,
  NotificationMessage,
} from '../../../functions/notifications/ports';
import type { ConsumedEvent } from '../../../functions/notifications/rules';
import { IdempotencyPayloadMismatchError } from '../../../shared/idempotency';
import { sampleEvents } from '../../unit/notifications/fakes';
import { createTable, lambdaContext, localDynamoDb } from '../incident/local-dynamodb';

let dynamo: { client: DynamoDBClient; documents: DynamoDBDocumentClient; stop: () => Promise<void> };
let idempotencyTable: string;

beforeAll(async () => {
  dynamo = await localDynamoDb();
  idempotencyTable = await createTable(dynamo.client, 'NotificationsIdempotencyTable');
});
afterAll(async () => dynamo?.stop());

/** Counts the calls that reach the real outbox; can be told to fail. */
class CountingChannel implements NotificationChannel {
  calls = 0;
  failing = false;
  constructor(private readonly inner: NotificationChannel) {}
  async send(message: NotificationMessage): Promise<DeliveryReceipt> {
    this.calls += 1;
    if (this.failing) throw new Error('SNS unavailable');
    return this.inner.send(message);
  }
}

/** A clock that only sleeping moves: waits take no real time and are recorded. */
function fakeTime(start = Date.parse('2026-11-23T10:00:00Z')) {
  const time = { now: start, slept: [] as number[] };
  return {
    time,
    clock: () => time.now,
    sleep: async (ms: number) => {
      time.slept.push(ms);
      time.now += ms;
    },
  };
}

async function setUp(clock: () => number = Date.now, sleep: (ms: number) => Promise<void> = async () => {}) {
  const table = await createTable(dynamo.client, 'NotificationsTable');
  const channel = new CountingChannel(new OutboxChannel(dynamo.documents, table));
  const log = new DynamoDbNotificationLog(dynamo.documents, table);
  /** A fresh container; `send` replaces the channel, `remainingMs` is the invocation's remaining time. */
  const processor = ({
    send,
    remainingMs,
  }: {
    send?: NotificationChannel['send'];
    remainingMs?: number;
  } = {}) => {
    const created = createNotificationEventProcessor({
      channel: send ? { send } : channel,
      log,
      clock,
      sleep,
      persistenceStore: new DynamoDBPersistenceLayer({
        tableName: idempotencyTable,
        awsSdkV3Client: dynamo.client,
      }),
      keyPrefix: `notifications-${table}`,
    });
    created.registerLambdaContext(lambdaContext('notifications', remainingMs));
    return created;
  };
  return { table, channel, log, processor };
}

/** What the handler does with one partition: in order, stop at the first failure, report it and the rest. */
async function processPartition(
  process: (event: ConsumedEvent) => Promise<unknown>,
  events: ConsumedEvent[],
): Promise<string[]> {
  for (const [index, event] of events.entries()) {
    try {
      await process(event);
    } catch {
      return events.slice(index).map((failed) => failed.id);
    }
  }
  return [];
}

describe('notifications with the DynamoDB log, outbox and idempotency', () => {
  it('a redelivered event does not reach the channel again', async () => {
    const { channel, processor, table } = await setUp();
    const events = Object.values(sampleEvents);
    await processPartition(processor().process, events);
    const sentFirst = channel.calls;
    expect(sentFirst).toBe(4); // the MEDIUM incident notifies nobody
    // Redelivery to a fresh container (new processor), twice.
    await processPartition(processor().process, events);
    await processPartition(processor().process, events);
    expect(channel.calls).toBe(sentFirst);
    const outbox = await listOutbox(dynamo.documents, table);
    expect(outbox.map((entry) => entry.template).sort()).toEqual([
      'booking-confirmed-customer',
      'hitl-review-requested',
      'incident-critical-oncall',
      'payment-failed-customer',
    ]);
    expect(outbox.find((entry) => entry.recipient.kind === 'OPERATIONS_ONCALL')?.subject).toBe(
      'CRITICAL incident inc-1 on vehicle veh-9',
    );
  });

  it('a channel failure fails that record and its successors; the retry sends only what was not sent', async () => {
    const { channel, processor, table } = await setUp();
    const batch = [sampleEvents.criticalIncident, sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    let failPayment = true;
    const flaky: NotificationChannel = {
      send: (message) =>
        failPayment && message.eventType === 'payment.failed'
          ? Promise.reject(new Error('SNS unavailable'))
          : channel.send(message),
    };
    const first = createNotificationEventProcessor({
      channel: flaky,
      log: new DynamoDbNotificationLog(dynamo.documents, table),
      sleep: async () => {},
      retry: { attempts: 3, baseDelayMs: 1 },
      persistenceStore: new DynamoDBPersistenceLayer({
        tableName: idempotencyTable,
        awsSdkV3Client: dynamo.client,
      }),
      keyPrefix: `notifications-${table}`,
    });
    first.registerLambdaContext(lambdaContext('notifications'));
    const failed = await processPartition(first.process, batch);
    expect(failed).toEqual(['ce-payment-1', 'ce-booking-1']);
    expect(channel.calls).toBe(1);
    const logEntry = await dynamo.documents.send(
      new GetCommand({
        TableName: table,
        Key: { pk: 'NOTIFICATION#ce-payment-1', sk: 'RECIPIENT#customer-cust-7' },
      }),
    );
    expect(logEntry.Item).toMatchObject({
      status: 'FAILED',
      attempts: 1,
      lastError: 'Error: SNS unavailable',
    });

    // The ESM redelivers the whole batch (it may): the incident was sent and is not sent again.
    failPayment = false;
    expect(await processPartition(processor().process, batch)).toEqual([]);
    expect(channel.calls).toBe(3);
    const outbox = await listOutbox(dynamo.documents, table);
    expect(outbox.map((entry) => entry.eventId).sort()).toEqual([
      'ce-booking-1',
      'ce-incident-1',
      'ce-payment-1',
    ]);
  });

  it('a crash after the send but before the log says SENT: the redelivery waits out the claim, re-sends, the outbox dedupes', async () => {
    const { time, clock, sleep } = fakeTime();
    const { channel, log, processor, table } = await setUp(clock, sleep);
    const markSent = log.markSent.bind(log);
    let crash = true;
    log.markSent = async (...args) => {
      if (crash) throw new Error('Lambda timed out');
      return markSent(...args);
    };
    await expect(processor().process(sampleEvents.hitlRequested)).rejects.toThrow('Lambda timed out');
    expect(channel.calls).toBe(1);
    crash = false;
    // Retried 5 s later by an invocation with 20 s left: the claim (30 s lease) outlives its budget, so the
    // message is not sent again and the record fails for now, without waiting.
    time.now += 5_000;
    await expect(processor({ remainingMs: 20_000 }).process(sampleEvents.hitlRequested)).rejects.toThrow(
      /another invocation/,
    );
    expect(time.slept).toEqual([]);
    expect(channel.calls).toBe(1);
    // A fresh invocation (60 s left) waits until the lease ends, takes the claim over and re-sends with the
    // same notification id.
    await processor().process(sampleEvents.hitlRequested);
    expect(time.slept).toEqual([25_001]);
    expect(channel.calls).toBe(2);
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(1);
    const entry = await dynamo.documents.send(
      new GetCommand({
        TableName: table,
        Key: { pk: 'NOTIFICATION#ce-hitl-1', sk: 'RECIPIENT#incident-reviewers' },
      }),
    );
    expect(entry.Item).toMatchObject({ status: 'SENT', attempts: 2 });
  });

  it('an event a killed invocation left INPROGRESS is sent by the redelivery, exactly once', async () => {
    const { time, clock, sleep } = fakeTime();
    const { channel, processor, table } = await setUp(clock, sleep);
    // The first invocation claims the HITL message and dies in the send: its Powertools record stays
    // INPROGRESS (until its deadline, 60 s) and so does its claim in the log (until its lease, 30 s).
    let reachedSend: () => void = () => {};
    const sending = new Promise<void>((resolve) => {
      reachedSend = resolve;
    });
    const killed = processor({
      send: () => {
        reachedSend();
        return new Promise(() => {});
      },
    });
    void killed.process(sampleEvents.hitlRequested);
    await sending;

    // The redelivery 2 s later is not refused as "already in progress": it waits for the claim to lapse and sends.
    time.now += 2_000;
    const result = await processor().process(sampleEvents.hitlRequested);
    expect(result.notifications).toMatchObject([{ recipientId: 'incident-reviewers', outcome: 'SENT' }]);
    expect(time.slept).toEqual([28_001]);
    expect(channel.calls).toBe(1);
    expect((await listOutbox(dynamo.documents, table)).map((entry) => entry.eventId)).toEqual(['ce-hitl-1']);
    // Another redelivery finds it sent.
    const again = await processor().process(sampleEvents.hitlRequested);
    expect(again.notifications).toMatchObject([{ outcome: 'ALREADY_SENT' }]);
    expect(channel.calls).toBe(1);
  });

  it('fails a reused (topic, id) with other data instead of reporting it notified', async () => {
    const { channel, processor } = await setUp();
    await processor().process(sampleEvents.hitlRequested);
    const reused = {
      ...sampleEvents.hitlRequested,
      data: { ...sampleEvents.hitlRequested.data, reviewId: 'rev-2' },
    };
    await expect(processor().process(reused)).rejects.toThrow(
      'genai.hitl.requested event ce-hitl-1 was already notified for other data than this record',
    );
    await expect(processor().process(reused)).rejects.toThrow(IdempotencyPayloadMismatchError);
    expect(channel.calls).toBe(1);
  });

  it('sends 100 events once, and a redelivery of all of them sends nothing (the time each takes is logged)', async () => {
    const { processor, channel, table } = await setUp();
    const events: ConsumedEvent[] = Array.from({ length: 100 }, (_, index) => ({
      ...sampleEvents.bookingCreated,
      id: `ce-booking-bulk-${index}`,
    }));
    const firstStarted = performance.now();
    expect(await processPartition(processor().process, events)).toEqual([]);
    const firstMs = performance.now() - firstStarted;
    const againStarted = performance.now();
    expect(await processPartition(processor().process, events)).toEqual([]);
    const againMs = performance.now() - againStarted;
    expect(channel.calls).toBe(100);
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(100);
    console.log(
      `100 booking.created: first delivery ${Math.round(firstMs)} ms (${(firstMs / 100).toFixed(1)} ms/event), ` +
        `redelivery ${Math.round(againMs)} ms (${(againMs / 100).toFixed(1)} ms/event)`,
    );
  });
});
