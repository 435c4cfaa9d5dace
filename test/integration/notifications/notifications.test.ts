import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbNotificationLog,
  notificationLogKey,
} from '../../../functions/notifications/dynamodb-notification-log';
import { listOutbox, OutboxChannel } from '../../../functions/notifications/outbox-channel';
import type {
  NotificationChannel,
  NotificationMessage,
  SendOutcome,
} from '../../../functions/notifications/ports';
import type { ConsumedEvent } from '../../../functions/notifications/rules';
import { notifyPartition } from '../../../functions/notifications/send-notifications';
import { countRequests, createTable, localDynamoDb } from '../../support/dynamodb';
import { sampleEvents } from '../../unit/notifications/fakes';

let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
/** A client of its own for the log, so its requests are counted apart from the outbox's (the channel's). */
let logDocuments: DynamoDBDocumentClient;
let logRequests: ReturnType<typeof countRequests>;

beforeAll(async () => {
  dynamo = await localDynamoDb();
  const raw = new DynamoDBClient({
    endpoint: dynamo.env.AWS_ENDPOINT_URL_DYNAMODB,
    region: dynamo.env.AWS_REGION,
    credentials: {
      accessKeyId: dynamo.env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: dynamo.env.AWS_SECRET_ACCESS_KEY as string,
    },
  });
  logDocuments = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  logRequests = countRequests(logDocuments);
});
afterAll(async () => {
  logDocuments?.destroy();
  await dynamo?.stop();
});

/** Counts the messages that reach the real outbox; can be told to fail. */
class CountingChannel implements NotificationChannel {
  calls = 0;
  constructor(private readonly inner: NotificationChannel) {}
  async send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    this.calls += messages.length;
    return this.inner.send(messages);
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
  const log = new DynamoDbNotificationLog(logDocuments, table);
  let invocation = 0;
  /**
   * One invocation's processing of one partition: its own lease holder id; the events at offsets from `first`
   * (default 0: every call is the same records again unless told); `send` replaces the channel, `remainingMs`
   * is the invocation's remaining time (waits for a lease must fit in it, less 10 s).
   * Returns the ids of the events to report (the failed one and its successors).
   */
  const invoke = async (
    events: ConsumedEvent[],
    {
      send,
      remainingMs = 60_000,
      first = 0,
    }: { send?: NotificationChannel['send']; remainingMs?: number; first?: number } = {},
  ) => {
    const holder = `invocation-${++invocation}`;
    const partition = { key: 'topic-0', first, last: first + events.length - 1 };
    const result = await notifyPartition(partition, events, {
      channel: send ? { send } : channel,
      log,
      clock,
      sleep,
      holder: () => holder,
      claimWaitBudgetMs: () => remainingMs - 10_000,
    });
    return { ...result, failed: result.failure ? events.slice(result.failure.index).map((e) => e.id) : [] };
  };
  return { table, channel, log, invoke };
}

const entry = async (table: string, eventId: string, recipientId: string) =>
  (
    await dynamo.documents.send(
      new GetCommand({
        TableName: table,
        Key: notificationLogKey('test/notifications', eventId, recipientId),
      }),
    )
  ).Item;

describe('notifications with the DynamoDB log and the outbox', () => {
  it('a redelivered event does not reach the channel again', async () => {
    const { time, clock, sleep } = fakeTime();
    const { channel, invoke, table } = await setUp(clock, sleep);
    const events = Object.values(sampleEvents);
    expect((await invoke(events)).failed).toEqual([]);
    const sentFirst = channel.calls;
    expect(sentFirst).toBe(4); // the MEDIUM incident notifies nobody
    // The same events in the partition's next batch (produced twice): the lease passes to it at once.
    expect((await invoke(events, { first: events.length })).failed).toEqual([]);
    expect(time.slept).toEqual([]);
    // The same records delivered again to another invocation (the commit was lost) while that batch still
    // holds the lease: the log says all were sent, so it is done without waiting.
    const again = await invoke(events, { first: events.length });
    expect(again.failed).toEqual([]);
    expect(again.notifications.every((n) => n.outcome === 'ALREADY_SENT')).toBe(true);
    expect(time.slept).toEqual([]);
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
    const { channel, invoke, table } = await setUp();
    const batch = [sampleEvents.criticalIncident, sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    const flaky: NotificationChannel['send'] = async (messages) => {
      const outcomes = await channel.send(messages.filter((m) => m.eventType !== 'payment.failed'));
      return messages.map((m) =>
        m.eventType === 'payment.failed'
          ? { ok: false, error: new Error('SNS unavailable'), permanent: false }
          : (outcomes.shift() as SendOutcome),
      );
    };
    const first = await invoke(batch, { send: flaky });
    expect(first.failed).toEqual(['ce-payment-1', 'ce-booking-1']);
    // The booking confirmation went out with the incident (one batch); the payment's did not.
    expect(channel.calls).toBe(2);
    expect(await entry(table, 'ce-payment-1', 'customer-cust-7')).toMatchObject({
      status: 'FAILED',
      attempts: 3,
      lastError: 'Error: SNS unavailable',
    });

    // The ESM redelivers the whole batch (it may): what was sent is not sent again.
    expect((await invoke(batch)).failed).toEqual([]);
    expect(channel.calls).toBe(3);
    const outbox = await listOutbox(dynamo.documents, table);
    expect(outbox.map((entry) => entry.eventId).sort()).toEqual([
      'ce-booking-1',
      'ce-incident-1',
      'ce-payment-1',
    ]);
  });

  it('a crash after the send but before the log says SENT: the redelivery waits out the lease, re-sends, the outbox dedupes', async () => {
    const { time, clock, sleep } = fakeTime();
    const { channel, log, invoke, table } = await setUp(clock, sleep);
    const record = log.record.bind(log);
    let crashed = true;
    let reachedRecord: () => void = () => {};
    const recording = new Promise<void>((resolve) => {
      reachedRecord = resolve;
    });
    // The process dies at the record step: nothing after it runs (no record, no release).
    log.record = (...args) => {
      if (!crashed) return record(...args);
      reachedRecord();
      return new Promise(() => {});
    };
    void invoke([sampleEvents.hitlRequested]);
    await recording;
    expect(channel.calls).toBe(1);
    crashed = false;
    // Retried 5 s later by an invocation with 20 s left: the lease (30 s) outlives its budget, so the message
    // is not sent again and the record fails for now, without waiting.
    time.now += 5_000;
    expect(
      (await invoke([sampleEvents.hitlRequested], { remainingMs: 20_000 })).failure?.error.message,
    ).toMatch(/another invocation/);
    expect(time.slept).toEqual([]);
    expect(channel.calls).toBe(1);
    // A fresh invocation (60 s left) waits until the lease ends, takes it over and re-sends with the same
    // notification id.
    expect((await invoke([sampleEvents.hitlRequested])).failed).toEqual([]);
    expect(time.slept).toEqual([25_001]);
    expect(channel.calls).toBe(2);
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(1);
    expect(await entry(table, 'ce-hitl-1', 'incident-reviewers')).toMatchObject({
      status: 'SENT',
      attempts: 1,
    });
  });

  it('a batch a killed invocation left in the send is sent by the redelivery, exactly once', async () => {
    const { time, clock, sleep } = fakeTime();
    const { channel, invoke, table } = await setUp(clock, sleep);
    // The first invocation takes the lease and dies in the send: its lease stays (30 s).
    let reachedSend: () => void = () => {};
    const sending = new Promise<void>((resolve) => {
      reachedSend = resolve;
    });
    void invoke([sampleEvents.hitlRequested], {
      send: () => {
        reachedSend();
        return new Promise(() => {});
      },
    });
    await sending;

    // The redelivery 2 s later is not refused: it waits for the lease to lapse and sends.
    time.now += 2_000;
    const result = await invoke([sampleEvents.hitlRequested]);
    expect(result.notifications).toMatchObject([{ recipientId: 'incident-reviewers', outcome: 'SENT' }]);
    expect(time.slept).toEqual([28_001]);
    expect(channel.calls).toBe(1);
    expect((await listOutbox(dynamo.documents, table)).map((entry) => entry.eventId)).toEqual(['ce-hitl-1']);
    // Another redelivery finds it sent.
    const again = await invoke([sampleEvents.hitlRequested]);
    expect(again.notifications).toMatchObject([{ outcome: 'ALREADY_SENT' }]);
    expect(channel.calls).toBe(1);
  });

  it('a lease is held against other invocations until released, lapsed, or they bring later offsets; only its holder releases it', async () => {
    const table = await createTable(dynamo.client, 'NotificationsTable');
    const log = new DynamoDbNotificationLog(logDocuments, table);
    const offsets = (first: number, last: number) => ({ first, last });
    expect(await log.acquireLease('payment.failed-1', 'a', offsets(0, 9), 1_000, 30_000)).toEqual({
      acquired: true,
      leaseUntil: 31_000,
    });
    // The same records, or some of them, or earlier ones: not while a's lease runs.
    for (const [first, last] of [
      [0, 9],
      [5, 14],
      [9, 9],
    ] as const) {
      // Refused with who holds it and for which offsets (read back on dynalite, returned by DynamoDB).
      expect(await log.acquireLease('payment.failed-1', 'b', offsets(first, last), 2_000, 30_000)).toEqual({
        acquired: false,
        leaseUntil: 31_000,
        holder: 'a',
        first: 0,
        through: 9,
      });
    }
    expect((await log.acquireLease('payment.failed-2', 'b', offsets(0, 9), 2_000, 30_000)).acquired).toBe(
      true,
    );
    await log.releaseLease('payment.failed-1', 'b'); // not b's: nothing happens
    expect((await log.acquireLease('payment.failed-1', 'c', offsets(0, 9), 3_000, 30_000)).acquired).toBe(
      false,
    );
    await log.releaseLease('payment.failed-1', 'a');
    // Taken after a's release: who held it last comes back with it (the caller's read may predate a's log).
    expect(await log.acquireLease('payment.failed-1', 'c', offsets(0, 9), 3_000, 30_000)).toEqual({
      acquired: true,
      leaseUntil: 33_000,
      previous: { through: 9 },
    });
    // The partition's next batch: its records all come after c's, so it takes the lease without a release.
    expect(await log.acquireLease('payment.failed-1', 'd', offsets(10, 19), 4_000, 30_000)).toEqual({
      acquired: true,
      leaseUntil: 34_000,
      previous: { holder: 'c', through: 9 },
    });
    expect((await log.acquireLease('payment.failed-1', 'e', offsets(10, 19), 5_000, 30_000)).acquired).toBe(
      false,
    );
    expect((await log.acquireLease('payment.failed-1', 'e', offsets(0, 9), 34_001, 30_000)).acquired).toBe(
      true,
    ); // lapsed
    // A lease written before it recorded its offsets (no `through`) passes only when released or lapsed.
    await dynamo.documents.send(
      new PutCommand({
        TableName: table,
        Item: { pk: 'LEASE#payment.failed-3', sk: 'LEASE', holder: 'old', leaseUntil: 31_000 },
      }),
    );
    expect((await log.acquireLease('payment.failed-3', 'f', offsets(500, 599), 2_000, 30_000)).acquired).toBe(
      false,
    );
    expect(
      (await log.acquireLease('payment.failed-3', 'f', offsets(500, 599), 31_001, 30_000)).acquired,
    ).toBe(true);
  });

  it('a lease is taken over only from the holder it names while it holds it for the same offsets', async () => {
    const table = await createTable(dynamo.client, 'NotificationsTable');
    const log = new DynamoDbNotificationLog(logDocuments, table);
    const partition = 'booking.created-0';
    /** `holder` takes the lease from (fromHolder, through) for offsets 0..last at `now`. */
    const takeOver = (fromHolder: string, through: number, holder: string, last: number, now: number) =>
      log.takeOverLease(
        partition,
        { holder: fromHolder, first: 0, through },
        holder,
        { first: 0, last },
        now,
        30_000,
      );
    await log.acquireLease(partition, 'a', { first: 0, last: 9 }, 1_000, 30_000);
    expect(await takeOver('x', 9, 'b', 19, 2_000)).toBe(false);
    expect(await takeOver('a', 8, 'b', 19, 2_000)).toBe(false);
    expect(await takeOver('a', 9, 'b', 19, 2_000)).toBe(true);
    // b's now, through its own last offset: a's attempt cannot take it back, and a second takeover from a fails.
    expect(await log.acquireLease(partition, 'a', { first: 0, last: 9 }, 3_000, 30_000)).toEqual({
      acquired: false,
      leaseUntil: 32_000,
      holder: 'b',
      first: 0,
      through: 19,
    });
    expect(await takeOver('a', 9, 'c', 29, 3_000)).toBe(false);
    // Released by a failed holder, nobody holds it to take it from: the lease is acquired instead.
    await log.releaseLease(partition, 'b');
    expect(await takeOver('b', 19, 'c', 29, 4_000)).toBe(false);
    expect((await log.acquireLease(partition, 'c', { first: 0, last: 29 }, 4_000, 30_000)).acquired).toBe(
      true,
    );
  });

  it("the ESM's retry with more records after a timed-out invocation had logged its sends: sent at once, no wait", async () => {
    const { time, clock, sleep } = fakeTime();
    const { invoke, channel } = await setUp(clock, sleep);
    const first = [sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    expect((await invoke(first)).failed).toEqual([]);
    // That invocation timed out after its log write: its lease is kept; the retry holds its records and one more.
    const retried = await invoke([...first, sampleEvents.hitlRequested], { remainingMs: 60_000 });
    expect(retried.failed).toEqual([]);
    expect(retried.notifications.map((n) => n.outcome)).toEqual(['ALREADY_SENT', 'ALREADY_SENT', 'SENT']);
    expect(time.slept).toEqual([]);
    expect(channel.calls).toBe(3);
  });

  it('100 notifications: at most 1 DynamoDB request each on first delivery (6 in all), 2 for the same events in the next batch', async () => {
    const { invoke, channel, table } = await setUp();
    const events: ConsumedEvent[] = Array.from({ length: 100 }, (_, index) => ({
      ...sampleEvents.bookingCreated,
      id: `ce-booking-bulk-${index}`,
    }));
    const first = logRequests.count;
    expect((await invoke(events)).failed).toEqual([]);
    const firstRequests = logRequests.count - first;
    // Lease, one BatchGetItem (100 keys), four BatchWriteItem (25 items each); no release.
    expect(firstRequests).toBe(6);
    expect(firstRequests / 100).toBeLessThanOrEqual(1);
    const again = logRequests.count;
    // The same events again in the partition's next batch (produced twice): the lease passes by offset and the
    // read beside it is current, so nothing is read twice.
    expect((await invoke(events, { first: 100 })).failed).toEqual([]);
    expect(logRequests.count - again).toBe(2); // lease, BatchGetItem (all SENT)
    expect(channel.calls).toBe(100);
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(100);
  });
});
