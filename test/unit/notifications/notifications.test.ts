import { describe, expect, it } from 'vitest';
import type { NotificationChannel } from '../../../functions/notifications/ports';
import type { ConsumedEvent } from '../../../functions/notifications/rules';
import { decideNotifications, formatMinorUnits } from '../../../functions/notifications/rules';
import {
  checkedLeaseMs,
  NotificationDeliveryError,
  notificationId,
  notifyPartition,
  type SendNotificationsDependencies,
} from '../../../functions/notifications/send-notifications';
import { placeholders, render, TemplateError, templates } from '../../../functions/notifications/templates';
import { ConfigurationError } from '../../../shared/config';
import { isStoreOutage, ServiceUnavailableError } from '../../../shared/msk/errors';
import { InMemoryNotificationLog, RecordingChannel, sampleEvents } from './fakes';

const noSleep = async () => {};

let nextOffset = 0;

/**
 * One batch of partition topic-0 through notifyPartition, at offsets after every earlier call's (the next
 * batch of the partition) unless `first` is given; throws the failure of its first failed event.
 */
async function send(
  events: ConsumedEvent | ConsumedEvent[],
  dependencies: SendNotificationsDependencies,
  first = nextOffset,
) {
  const list = Array.isArray(events) ? events : [events];
  nextOffset = Math.max(nextOffset, first + list.length);
  const result = await notifyPartition(at(first, list.length), list, dependencies);
  if (result.failure) throw result.failure.error;
  return result;
}

/** Partition topic-0 at offsets first .. first + count - 1. */
const at = (first: number, count: number) => ({ key: 'topic-0', first, last: first + count - 1 });

describe('notification rules', () => {
  it('pages operations on-call for critical incidents only', () => {
    expect(decideNotifications(sampleEvents.criticalIncident)).toEqual([
      expect.objectContaining({
        recipient: { kind: 'OPERATIONS_ONCALL', id: 'operations-oncall' },
        channel: 'PAGER',
        template: 'incident-critical-oncall',
      }),
    ]);
    expect(decideNotifications(sampleEvents.mediumIncident)).toEqual([]);
  });
  it('emails reviewers for HITL requests and tells the customer about payment failures and bookings', () => {
    expect(decideNotifications(sampleEvents.hitlRequested)[0]).toMatchObject({
      recipient: { kind: 'REVIEWERS' },
      channel: 'EMAIL',
    });
    expect(decideNotifications(sampleEvents.paymentFailed)[0]).toMatchObject({
      recipient: { kind: 'CUSTOMER', id: 'customer-cust-7' },
      channel: 'PUSH',
      values: { amount: '12.50 EUR', failureReason: 'card expired' },
    });
    expect(decideNotifications(sampleEvents.bookingCreated)[0]).toMatchObject({
      recipient: { id: 'customer-cust-7' },
      template: 'booking-confirmed-customer',
    });
  });
  it('ignores other topics and rejects events without the fields a message needs', () => {
    expect(decideNotifications({ ...sampleEvents.bookingCreated, topic: 'booking.cancelled' })).toEqual([]);
    expect(() => decideNotifications({ ...sampleEvents.bookingCreated, data: { bookingId: 'x' } })).toThrow(
      /customerId, vehicleId/,
    );
  });
  it('rejects an identifier longer than 512 UTF-8 bytes alone, naming it: it would fail a whole PublishBatch', () => {
    const withCustomer = (customerId: string) => ({
      ...sampleEvents.bookingCreated,
      data: { ...(sampleEvents.bookingCreated.data as Record<string, unknown>), customerId },
    });
    expect(decideNotifications(withCustomer('c'.repeat(500)))).toHaveLength(1);
    expect(() => decideNotifications(withCustomer('€'.repeat(171)))).toThrow(
      'customerId is 513 bytes, the limit is 512',
    );
  });
  it('every rule supplies every placeholder of its template', () => {
    for (const event of Object.values(sampleEvents)) {
      for (const intent of decideNotifications(event)) {
        expect(() => render(intent.template, intent.values)).not.toThrow();
      }
    }
  });
});

describe('templates', () => {
  it('are files with placeholders', () => {
    expect(Object.keys(templates)).toHaveLength(4);
    expect(placeholders(templates['payment-failed-customer'])).toEqual([
      'bookingId',
      'amount',
      'failureReason',
    ]);
  });
  it('refuses to render with a missing value', () => {
    expect(() => render('booking-confirmed-customer', { bookingId: 'b' })).toThrow(TemplateError);
  });
});

describe('formatMinorUnits', () => {
  it('formats integer minor units per currency without floats', () => {
    expect(formatMinorUnits('1250', 'EUR')).toBe('12.50 EUR');
    expect(formatMinorUnits('5', 'EUR')).toBe('0.05 EUR');
    expect(formatMinorUnits('1500', 'JPY')).toBe('1500 JPY');
    expect(formatMinorUnits('-99', 'USD')).toBe('-0.99 USD');
    expect(formatMinorUnits('90071992547409931', 'EUR')).toBe('900719925474099.31 EUR');
  });
});

describe('notifyPartition', () => {
  it('sends once per (source, event id, recipient); a repeat is ALREADY_SENT', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const first = await send(sampleEvents.criticalIncident, { channel, log, sleep: noSleep });
    const second = await send(sampleEvents.criticalIncident, { channel, log, sleep: noSleep });
    expect(first.notifications[0]).toMatchObject({ outcome: 'SENT', attempts: 1 });
    expect(second.notifications[0]).toMatchObject({ outcome: 'ALREADY_SENT' });
    expect(channel.calls).toBe(1);
    expect(channel.sent[0]).toMatchObject({
      notificationId: notificationId('test/notifications', 'ce-incident-1', 'operations-oncall'),
      subject: 'CRITICAL incident inc-1 on vehicle veh-9',
    });
  });
  it('keys notifications by CloudEvents source and id: the same id from another source is another event', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    await send(sampleEvents.bookingCreated, { channel, log, sleep: noSleep });
    await send(
      { ...sampleEvents.bookingCreated, source: 'another/service' },
      { channel, log, sleep: noSleep },
    );
    expect(channel.calls).toBe(2);
    expect(new Set(channel.sent.map((message) => message.notificationId)).size).toBe(2);
  });
  it('sends a batch in one channel call, takes the lease and reads and writes the log once, releases nothing', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const events = Array.from({ length: 100 }, (_, index) => ({
      ...sampleEvents.bookingCreated,
      id: `ce-${index}`,
    }));
    const result = await send(events, { channel, log, sleep: noSleep });
    expect(result.notifications.filter((n) => n.outcome === 'SENT')).toHaveLength(100);
    expect(channel.rounds).toBe(1);
    expect(log.calls).toBe(3); // lease, read, record
    expect(log.releases).toBe(0);
    // The same events again in the partition's next batch (a producer sent them twice): nothing sent.
    await send(events, { channel, log, sleep: noSleep });
    expect(channel.calls).toBe(100);
    expect(log.calls).toBe(6); // lease, read, record (nothing)
  });
  it("takes the lease its partition's previous batch kept; the same records again find them sent, without it", async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const dependencies = (holder: string) => ({ channel, log, sleep: noSleep, holder: () => holder });
    const batch = [sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    await send(batch, dependencies('a'), 0);
    // The next batch, by another invocation while a's lease runs: its offsets come after a's.
    await send(sampleEvents.hitlRequested, dependencies('b'), 2);
    expect(log.leases.get('topic-0')).toMatchObject({ holder: 'b', through: 2 });
    // b's records once more, by a third invocation while b's lease runs (b's commit was lost): all sent.
    const again = await send(sampleEvents.hitlRequested, dependencies('c'), 2);
    expect(again.notifications).toMatchObject([{ outcome: 'ALREADY_SENT' }]);
    expect(log.leases.get('topic-0')).toMatchObject({ holder: 'b' });
    // b's record with a newer one it does not hold (b timed out after logging; the ESM's retry brought more): c
    // takes the lease over at once and sends the newer one only.
    const newer = { ...sampleEvents.bookingCreated, id: 'ce-booking-2' };
    const retried = await send([sampleEvents.hitlRequested, newer], dependencies('c'), 2);
    expect(retried.notifications.map((n) => n.outcome)).toEqual(['ALREADY_SENT', 'SENT']);
    expect(log.takeovers).toBe(1);
    expect(log.leases.get('topic-0')).toMatchObject({ holder: 'c', through: 3 });
    expect(channel.sent.map((message) => message.eventId)).toEqual([
      'ce-payment-1',
      'ce-booking-1',
      'ce-hitl-1',
      'ce-booking-2',
    ]);
    expect(log.releases).toBe(0);
  });
  it("takes over a lease once its holder's records are all logged SENT: no wait, the log read again", async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const slept: number[] = [];
    const dependencies = (holder: string) => ({
      channel,
      log,
      holder: () => holder,
      claimWaitBudgetMs: () => 60_000,
      sleep: async (ms: number) => {
        slept.push(ms);
      },
    });
    await send([sampleEvents.paymentFailed, sampleEvents.bookingCreated], dependencies('timed-out'), 0);
    const readsBefore = log.reads;
    const result = await send(
      [sampleEvents.paymentFailed, sampleEvents.bookingCreated, sampleEvents.hitlRequested],
      dependencies('retry'),
      0,
    );
    expect(result.notifications.map((n) => n.outcome)).toEqual(['ALREADY_SENT', 'ALREADY_SENT', 'SENT']);
    expect(slept).toEqual([]);
    expect(log.reads - readsBefore).toBe(2);
    expect(channel.sent.map((message) => message.eventId)).toEqual([
      'ce-payment-1',
      'ce-booking-1',
      'ce-hitl-1',
    ]);
    expect(log.leases.get('topic-0')).toMatchObject({ holder: 'retry', through: 2 });
  });
  it("waits for the lease while a notification of its holder's records is not SENT (it may be sending it)", async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    await send(sampleEvents.paymentFailed, { channel, log, sleep: noSleep, holder: () => 'a' }, 0);
    // The holder of offsets 0..1 logged the first record's notification and is still sending the second's.
    await log.releaseLease('topic-0', 'a');
    await log.acquireLease('topic-0', 'sending', { first: 0, last: 1 }, Date.now(), 30_000);
    await expect(
      send(
        [sampleEvents.paymentFailed, sampleEvents.bookingCreated, sampleEvents.hitlRequested],
        { channel, log, sleep: noSleep },
        0,
      ),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(log.takeovers).toBe(0);
    expect(channel.calls).toBe(1);
  });
  it('does not take over from a holder whose records start before its own (one of those may come again later)', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const newer = { ...sampleEvents.bookingCreated, id: 'ce-booking-2' };
    const held = [sampleEvents.paymentFailed, sampleEvents.bookingCreated, sampleEvents.hitlRequested];
    await send(held, { channel, log, sleep: noSleep, holder: () => 'h' }, 0);
    // Offsets 1.. and a newer one (a poller that starts later in the partition): its records up to the holder's
    // last are all SENT, but the holder's record at offset 0 is not among them.
    await expect(
      send(
        [sampleEvents.bookingCreated, sampleEvents.hitlRequested, newer],
        { channel, log, sleep: noSleep },
        1,
      ),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(log.takeovers).toBe(0);
    expect(channel.calls).toBe(3);
  });
  it('a takeover that finds the lease released meanwhile takes it at once, and reads the log again', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const slept: number[] = [];
    await send(sampleEvents.paymentFailed, { channel, log, sleep: noSleep, holder: () => 'a' }, 0);
    const takeOver = log.takeOverLease.bind(log);
    log.takeOverLease = async (...args) => {
      await log.releaseLease('topic-0', 'a'); // a failed after all, and released it
      return takeOver(...args);
    };
    const readsBefore = log.reads;
    const result = await send(
      [sampleEvents.paymentFailed, sampleEvents.hitlRequested],
      {
        channel,
        log,
        claimWaitBudgetMs: () => 60_000,
        sleep: async (ms: number) => {
          slept.push(ms);
        },
      },
      0,
    );
    expect(result.notifications.map((n) => n.outcome)).toEqual(['ALREADY_SENT', 'SENT']);
    expect(slept).toEqual([]);
    expect(log.reads - readsBefore).toBe(2);
  });
  it('does not take over a lease that changed hands after it was refused: it waits for that one', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    await send(sampleEvents.paymentFailed, { channel, log, sleep: noSleep, holder: () => 'a' }, 0);
    const takeOver = log.takeOverLease.bind(log);
    log.takeOverLease = async (...args) => {
      // Between the refusal and the takeover, another invocation with the same records took it.
      log.leases.set('topic-0', { holder: 'other', leaseUntil: Date.now() + 30_000, through: 1 });
      return takeOver(...args);
    };
    await expect(
      send([sampleEvents.paymentFailed, sampleEvents.hitlRequested], { channel, log, sleep: noSleep }, 0),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(log.takeovers).toBe(0);
    expect(channel.calls).toBe(1);
  });
  it('reads the log while it takes the lease (one round trip, not two)', async () => {
    const log = new InMemoryNotificationLog();
    const steps: string[] = [];
    const acquire = log.acquireLease.bind(log);
    const entries = log.entries.bind(log);
    log.acquireLease = async (...args) => {
      steps.push('lease asked');
      await new Promise((resolve) => setImmediate(resolve));
      steps.push('lease answered');
      return acquire(...args);
    };
    log.entries = async (messages) => {
      steps.push('log read');
      return entries(messages);
    };
    await send(sampleEvents.paymentFailed, { channel: new RecordingChannel(), log, sleep: noSleep });
    // Both asked before the lease's answer: the read does not wait for it.
    expect(steps).toHaveLength(3);
    expect(steps.at(-1)).toBe('lease answered');
  });
  it('reads the log again when the lease it took was released by a holder of the same records: their sends are not repeated', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    const batch = [sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    // Another invocation got the same records (a rebalance) and holds the lease.
    await log.acquireLease('topic-0', 'other', { first: 0, last: 1 }, Date.now(), 30_000);
    const [payment] = decideNotifications(sampleEvents.paymentFailed);
    const paymentId = notificationId('test/notifications', 'ce-payment-1', payment?.recipient.id ?? '');
    const acquire = log.acquireLease.bind(log);
    const readsBefore = log.reads;
    // Between this invocation's read and its lease request, the other one logs the payment's message SENT,
    // fails on the booking's and releases the lease for the redelivery.
    log.acquireLease = async (...args) => {
      log.store.set(paymentId, { status: 'SENT', attempts: 1, messageId: 'by-other' });
      await log.releaseLease('topic-0', 'other');
      return acquire(...args);
    };
    const result = await send(batch, { channel, log, sleep: noSleep }, 0);
    expect(channel.sent.map((message) => message.eventId)).toEqual(['ce-booking-1']);
    expect(result.notifications.map((n) => n.outcome)).toEqual(['ALREADY_SENT', 'SENT']);
    expect(log.reads - readsBefore).toBe(2);
  });
  it('a notification logged FAILED is not "all sent": the batch does not pass a lease held for its records', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    const [intent] = decideNotifications(sampleEvents.hitlRequested);
    const id = notificationId('test/notifications', 'ce-hitl-1', intent?.recipient.id ?? '');
    log.store.set(id, { status: 'FAILED', attempts: 3 });
    await log.acquireLease('topic-0', 'other', { first: 0, last: 0 }, Date.now(), 30_000);
    await expect(send(sampleEvents.hitlRequested, { channel, log, sleep: noSleep }, 0)).rejects.toThrow(
      /being sent by another invocation/,
    );
    expect(channel.calls).toBe(0);
  });
  it('reads the log again after waiting for a lease: what its holder logged meanwhile is not sent again', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    await log.acquireLease('topic-0', 'slow', { first: 0, last: 0 }, 1_000, 30_000);
    const [intent] = decideNotifications(sampleEvents.hitlRequested);
    const id = notificationId('test/notifications', 'ce-hitl-1', intent?.recipient.id ?? '');
    let now = 2_000;
    const result = await send(
      sampleEvents.hitlRequested,
      {
        channel,
        log,
        clock: () => now,
        claimWaitBudgetMs: () => 60_000,
        sleep: async (ms) => {
          // While this invocation waits, the slow holder's send is logged.
          log.store.set(id, { status: 'SENT', attempts: 1, messageId: 'by-slow' });
          now += ms;
        },
      },
      0,
    );
    expect(result.notifications).toMatchObject([{ outcome: 'ALREADY_SENT' }]);
    expect(channel.calls).toBe(0);
  });
  it('takes no lease for a batch that notifies nobody', async () => {
    const log = new InMemoryNotificationLog();
    const result = await send([sampleEvents.mediumIncident], { channel: new RecordingChannel(), log });
    expect(result.notifications).toEqual([]);
    expect(log.calls).toBe(0);
  });
  it('sends the same event twice in one batch once', async () => {
    const channel = new RecordingChannel();
    const result = await send([sampleEvents.paymentFailed, sampleEvents.paymentFailed], {
      channel,
      log: new InMemoryNotificationLog(),
      sleep: noSleep,
    });
    expect(channel.calls).toBe(1);
    expect(result.notifications.map((n) => n.outcome)).toEqual(['SENT', 'ALREADY_SENT']);
  });
  it('retries a transient channel failure with backoff', async () => {
    const channel = new RecordingChannel(2);
    const delays: number[] = [];
    const result = await send(sampleEvents.paymentFailed, {
      channel,
      log: new InMemoryNotificationLog(),
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    expect(result.notifications[0]).toMatchObject({ outcome: 'SENT', attempts: 3 });
    expect(delays).toEqual([200, 400]);
  });
  it('marks the entry FAILED after the last attempt and fails the event; a later retry can send', async () => {
    const log = new InMemoryNotificationLog();
    const failing = new RecordingChannel(3);
    await expect(
      send(sampleEvents.bookingCreated, { channel: failing, log, sleep: noSleep }),
    ).rejects.toThrow(NotificationDeliveryError);
    expect(log.logged[0]).toMatchObject({
      status: 'FAILED',
      attempts: 3,
      lastError: 'Error: channel unavailable',
    });
    const healthy = new RecordingChannel();
    await send(sampleEvents.bookingCreated, { channel: healthy, log, sleep: noSleep });
    expect(healthy.sent).toHaveLength(1);
    expect(log.logged[0]).toMatchObject({ status: 'SENT', attempts: 4 });
  });
  it('a failed send fails its event and the later ones; what was sent after it is logged and not sent again', async () => {
    const log = new InMemoryNotificationLog();
    const batch = [sampleEvents.criticalIncident, sampleEvents.paymentFailed, sampleEvents.bookingCreated];
    const flaky = new RecordingChannel(0, (message) => message.eventType === 'payment.failed');
    const first = await notifyPartition(at(0, 3), batch, { channel: flaky, log, sleep: noSleep });
    expect(first.failure?.index).toBe(1);
    expect(first.failure?.error.message).toMatch(/payment.failed ce-payment-1 -> customer-cust-7\) failed/);
    expect(flaky.sent.map((message) => message.eventId)).toEqual(['ce-incident-1', 'ce-booking-1']);
    // The ESM redelivers from the failed record on (the lease was given back for it); the channel has recovered.
    expect(log.releases).toBe(1);
    const healthy = new RecordingChannel();
    const again = await notifyPartition(at(1, 2), batch.slice(1), { channel: healthy, log, sleep: noSleep });
    expect(again.failure).toBeUndefined();
    expect(healthy.sent.map((message) => message.eventId)).toEqual(['ce-payment-1']);
    expect(again.notifications.map((n) => n.outcome)).toEqual(['SENT', 'ALREADY_SENT']);
  });
  it('an event the rules reject fails from its index; the events before it are sent', async () => {
    const channel = new RecordingChannel();
    const bad = { ...sampleEvents.bookingCreated, id: 'ce-bad', data: { bookingId: 'x' } };
    const result = await notifyPartition(
      at(0, 4),
      [sampleEvents.paymentFailed, null, bad, sampleEvents.hitlRequested],
      {
        channel,
        log: new InMemoryNotificationLog(),
        sleep: noSleep,
      },
    );
    expect(result.failure).toMatchObject({
      index: 2,
      error: { message: expect.stringMatching(/ce-bad lacks/) },
    });
    expect(channel.sent.map((message) => message.eventId)).toEqual(['ce-payment-1']);
  });
  it('fails the whole batch when the log cannot record, and releases the lease', async () => {
    const log = new InMemoryNotificationLog();
    const lost = new Error('ProvisionedThroughputExceededException');
    log.record = async () => {
      throw lost;
    };
    await expect(
      notifyPartition(at(0, 1), [sampleEvents.bookingCreated], {
        channel: new RecordingChannel(),
        log,
        sleep: noSleep,
      }),
    ).rejects.toBe(lost);
    expect(log.leases.get('topic-0')).toEqual({ leaseUntil: 0, first: 0, through: 0 });
  });
  it('does not send while another invocation holds the lease, and takes over an expired one', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    await log.acquireLease('topic-0', 'crashed', { first: 0, last: 0 }, 1_000, 30_000);
    await expect(
      send(sampleEvents.hitlRequested, { channel, log, clock: () => 2_000, sleep: noSleep }, 0),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(channel.calls).toBe(0);
    await send(sampleEvents.hitlRequested, { channel, log, clock: () => 40_000, sleep: noSleep }, 0);
    expect(channel.calls).toBe(1);
  });
  it("waits for a crashed sender's lease that lapses within the budget, then sends once", async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    await log.acquireLease('topic-0', 'crashed', { first: 0, last: 0 }, 1_000, 30_000); // until 31 000
    let now = 6_000;
    const slept: number[] = [];
    const dependencies = {
      channel,
      log,
      clock: () => now,
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
      claimWaitBudgetMs: () => 40_000,
    };
    const result = await send(sampleEvents.hitlRequested, dependencies, 0);
    expect(slept).toEqual([25_001]);
    expect(result.notifications).toMatchObject([{ outcome: 'SENT', attempts: 1 }]);
    expect(channel.calls).toBe(1);
    expect(log.logged).toMatchObject([{ status: 'SENT', attempts: 1 }]);
    await send(sampleEvents.hitlRequested, dependencies);
    expect(channel.calls).toBe(1);
  });
  it('fails at once when the lease outlives the budget, and waits a bounded number of times', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    await log.acquireLease('topic-0', 'crashed', { first: 0, last: 0 }, 1_000, 30_000);
    const slept: number[] = [];
    const sleep = async (ms: number) => {
      slept.push(ms);
    };
    const attempt = (budgetMs: number) =>
      send(
        sampleEvents.hitlRequested,
        { channel, log, clock: () => 2_000, sleep, claimWaitBudgetMs: () => budgetMs },
        0,
      );
    await expect(attempt(29_000)).rejects.toThrow(NotificationDeliveryError);
    expect(slept).toEqual([]);
    // A clock that does not move (like skew between senders): a few waits, then the batch fails.
    await expect(attempt(60_000)).rejects.toThrow(/being sent by another invocation/);
    expect(slept).toEqual([29_001, 29_001, 29_001]);
    expect(channel.calls).toBe(0);
  });
  it('starts no attempt that could outlast the lease (another invocation could take it over and send too)', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel(1);
    let now = 0;
    const result = await notifyPartition(at(0, 1), [sampleEvents.bookingCreated], {
      channel,
      log,
      leaseMs: 10_000,
      attemptTimeoutMs: 7_000,
      clock: () => now,
      sleep: async (ms) => {
        now += ms + 4_000; // a slow first attempt: 4 s more
      },
    });
    expect(channel.calls).toBe(1);
    expect(result.failure?.error.message).toMatch(/lease would end before the send could finish/);
    expect(log.logged).toMatchObject([{ status: 'FAILED', attempts: 1 }]);
    // The channel's failure was not an outage (a plain error): the record's, as after the last attempt.
    expect(isStoreOutage(result.failure?.error)).toBe(false);
  });

  it('refuses at start-up a lease no send attempt fits in', () => {
    expect(checkedLeaseMs(30_000)).toBe(30_000);
    expect(() => checkedLeaseMs(10_000)).toThrow(
      new ConfigurationError(
        'NOTIFICATION_LEASE_MS must be longer than one send attempt (14000 ms), got 10000',
      ),
    );
  });

  it('stops at the lease as an outage when the last failure was one, or when no send could start', async () => {
    const throttled: NotificationChannel = {
      send: async (messages) =>
        messages.map(() => ({
          ok: false,
          error: new ServiceUnavailableError('ACCOUNT_THROTTLED'),
          permanent: false,
        })),
    };
    let now = 0;
    const slow = await notifyPartition(at(0, 1), [sampleEvents.bookingCreated], {
      channel: throttled,
      log: new InMemoryNotificationLog(),
      leaseMs: 10_000,
      attemptTimeoutMs: 7_000,
      clock: () => now,
      sleep: async (ms) => {
        now += ms + 4_000;
      },
    });
    expect(slow.failure?.error.message).toMatch(/lease would end/);
    // The batch engine runs the batch again (shared/msk/engine.ts) instead of failing the record.
    expect(isStoreOutage(slow.failure?.error)).toBe(true);

    const channel = new RecordingChannel();
    const late = await notifyPartition(at(0, 1), [sampleEvents.bookingCreated], {
      channel,
      log: new InMemoryNotificationLog(),
      leaseMs: 5_000, // shorter than one attempt may take: no send can start
      attemptTimeoutMs: 7_000,
      clock: () => 0,
      sleep: async () => {},
    });
    expect(channel.calls).toBe(0);
    expect(isStoreOutage(late.failure?.error)).toBe(true);
  });
});
