import { describe, expect, it } from 'vitest';
import { decideNotifications, formatMinorUnits } from '../../../functions/notifications/rules';
import {
  NotificationDeliveryError,
  notificationId,
  sendNotifications,
} from '../../../functions/notifications/send-notifications';
import { placeholders, render, TemplateError, templates } from '../../../functions/notifications/templates';
import { InMemoryNotificationLog, RecordingChannel, sampleEvents } from './fakes';

const noSleep = async () => {};

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

describe('sendNotifications', () => {
  it('sends once per (event id, recipient); a repeat is ALREADY_SENT', async () => {
    const channel = new RecordingChannel();
    const log = new InMemoryNotificationLog();
    const first = await sendNotifications(sampleEvents.criticalIncident, { channel, log, sleep: noSleep });
    const second = await sendNotifications(sampleEvents.criticalIncident, { channel, log, sleep: noSleep });
    expect(first.notifications[0]).toMatchObject({ outcome: 'SENT', attempts: 1 });
    expect(second.notifications[0]).toMatchObject({ outcome: 'ALREADY_SENT' });
    expect(channel.calls).toBe(1);
    expect(channel.sent[0]).toMatchObject({
      notificationId: notificationId('ce-incident-1', 'operations-oncall'),
      subject: 'CRITICAL incident inc-1 on vehicle veh-9',
    });
  });
  it('retries a transient channel failure with backoff', async () => {
    const channel = new RecordingChannel(2);
    const delays: number[] = [];
    const result = await sendNotifications(sampleEvents.paymentFailed, {
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
      sendNotifications(sampleEvents.bookingCreated, { channel: failing, log, sleep: noSleep }),
    ).rejects.toThrow(NotificationDeliveryError);
    expect([...log.entries.values()][0]).toMatchObject({ status: 'FAILED', attempts: 1 });
    const healthy = new RecordingChannel();
    await sendNotifications(sampleEvents.bookingCreated, { channel: healthy, log, sleep: noSleep });
    expect(healthy.sent).toHaveLength(1);
    expect([...log.entries.values()][0]).toMatchObject({ status: 'SENT', attempts: 2 });
  });
  it('fails with the delivery error when marking the entry FAILED fails too, and attaches both', async () => {
    const log = new InMemoryNotificationLog();
    const lost = new Error('ConditionalCheckFailedException: the claim was taken over');
    log.markFailed = async () => {
      throw lost;
    };
    const failure: Error = await sendNotifications(sampleEvents.bookingCreated, {
      channel: new RecordingChannel(3),
      log,
      sleep: noSleep,
    }).then(
      () => new Error('sent, not failed'),
      (error: unknown) => error as Error,
    );
    expect(failure).toBeInstanceOf(NotificationDeliveryError);
    expect(failure.message).toMatch(
      /booking.created .* failed: Error: channel unavailable; marking it FAILED failed too$/,
    );
    expect(failure.cause).toBe(lost);
  });
  it('does not send while another invocation holds a live claim, and takes over an expired one', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    const message = { eventId: 'ce-hitl-1', recipient: { id: 'incident-reviewers' } };
    await log.claim(message as never, 1_000, 30_000);
    await expect(
      sendNotifications(sampleEvents.hitlRequested, { channel, log, clock: () => 2_000, sleep: noSleep }),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(channel.calls).toBe(0);
    await sendNotifications(sampleEvents.hitlRequested, {
      channel,
      log,
      clock: () => 40_000,
      sleep: noSleep,
    });
    expect(channel.calls).toBe(1);
  });
  it("waits for a crashed sender's claim that lapses within the budget, then sends once", async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    const message = { eventId: 'ce-hitl-1', recipient: { id: 'incident-reviewers' } };
    await log.claim(message as never, 1_000, 30_000); // the crashed sender's, until 31 000
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
    const result = await sendNotifications(sampleEvents.hitlRequested, dependencies);
    expect(slept).toEqual([25_001]);
    expect(result.notifications).toMatchObject([{ outcome: 'SENT', attempts: 1 }]);
    expect(channel.calls).toBe(1);
    expect([...log.entries.values()]).toMatchObject([{ status: 'SENT', attempts: 2 }]);
    await sendNotifications(sampleEvents.hitlRequested, dependencies);
    expect(channel.calls).toBe(1);
  });
  it('fails at once, as before, when the claim outlives the budget, and waits a bounded number of times', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel();
    const message = { eventId: 'ce-hitl-1', recipient: { id: 'incident-reviewers' } };
    await log.claim(message as never, 1_000, 30_000);
    const slept: number[] = [];
    const sleep = async (ms: number) => {
      slept.push(ms);
    };
    await expect(
      sendNotifications(sampleEvents.hitlRequested, {
        channel,
        log,
        clock: () => 2_000,
        sleep,
        claimWaitBudgetMs: () => 29_000,
      }),
    ).rejects.toThrow(NotificationDeliveryError);
    expect(slept).toEqual([]);
    // A clock that does not move (like skew between senders): a few waits, then the record fails.
    await expect(
      sendNotifications(sampleEvents.hitlRequested, {
        channel,
        log,
        clock: () => 2_000,
        sleep,
        claimWaitBudgetMs: () => 60_000,
      }),
    ).rejects.toThrow(/being sent by another invocation/);
    expect(slept).toEqual([29_001, 29_001, 29_001]);
    expect(channel.calls).toBe(0);
  });
});
