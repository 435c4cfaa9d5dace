import { describe, expect, it } from 'vitest';
import { RoutingChannel } from '../../../functions/notifications/aws-channels';
import { notificationsPolicy } from '../../../functions/notifications/notification-batch';
import type { NotificationChannel } from '../../../functions/notifications/ports';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { decodeEvent, kafkaEvent, runBatch, withRawRecords } from '../../../shared/msk';
import { ServiceUnavailableError } from '../../../shared/msk/errors';
import { sampleAvroRecord } from '../../support/msk-records';
import { InMemoryNotificationLog, RecordingChannel } from './fakes';

const topic = 'payment.failed';

function record(partition: number, offset: number, poison = false) {
  return sampleAvroRecord({
    topic,
    partition,
    offset,
    poison,
    data: { bookingId: `bk-${partition}-${offset}` },
  });
}

async function run(
  event: ReturnType<typeof kafkaEvent>,
  channel: RecordingChannel,
  log: InMemoryNotificationLog,
) {
  const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
  let counted = { sent: 0, alreadySent: 0 };
  const outcome = await runBatch(
    partitions,
    notificationsPolicy({ channel, log, sleep: async () => {} }, (result) => {
      counted = { sent: result.sent, alreadySent: result.alreadySent };
    }),
  );
  return {
    failed: outcome.response.batchItemFailures.map(
      (f) => `${f.itemIdentifier.partition}@${f.itemIdentifier.offset}`,
    ),
    ...counted,
  };
}

describe('notifications on the batch engine (aggregate policy)', () => {
  it('reports a failed send and an undecodable record each with its successors, per partition; the rest is sent', async () => {
    const event = kafkaEvent([
      record(0, 1),
      record(0, 2),
      record(0, 3),
      record(1, 1),
      record(1, 2, true),
      record(1, 3),
      record(2, 1),
    ]);
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel(0, (message) => message.subject.includes('bk-0-2'));
    const first = await run(event, channel, log);
    expect(first.failed).toEqual([
      'payment.failed-0@2',
      'payment.failed-0@3',
      'payment.failed-1@2',
      'payment.failed-1@3',
    ]);
    // bk-0-3 went out with its batch; partition 1 stops at the undecodable record.
    expect(channel.sent.map((m) => m.eventId).sort()).toEqual(['evt-0-1', 'evt-0-3', 'evt-1-1', 'evt-2-1']);
    expect(first).toMatchObject({ sent: 4, alreadySent: 0 });
    // Only partition 0's lease was given back: its redelivery starts inside it. Partition 1's lease covers the
    // record before the undecodable one only, and its redelivery starts at that one; partition 2 is done.
    expect(log.releases).toBe(1);

    // The ESM delivers each failed partition again from its first failed record; the channel has recovered.
    const healthy = new RecordingChannel();
    const redelivery = kafkaEvent([record(0, 2), record(0, 3), record(1, 2, true), record(1, 3)]);
    const again = await run(redelivery, healthy, log);
    expect(again.failed).toEqual(['payment.failed-1@2', 'payment.failed-1@3']);
    expect(healthy.sent.map((m) => m.eventId)).toEqual(['evt-0-2']);
    expect(again).toMatchObject({ sent: 1, alreadySent: 1 });
    expect(log.releases).toBe(1);
  });

  it('a partition whose log cannot be read fails from its first record; the other partitions are sent', async () => {
    const log = new InMemoryNotificationLog();
    const entries = log.entries.bind(log);
    log.entries = async (messages) => {
      if (messages.some((m) => m.eventId.startsWith('evt-1-')))
        throw new Error('ValidationException: bad key');
      return entries(messages);
    };
    const channel = new RecordingChannel();
    const result = await run(kafkaEvent([record(0, 1), record(1, 1), record(1, 2)]), channel, log);
    expect(result.failed).toEqual(['payment.failed-1@1', 'payment.failed-1@2']);
    expect(channel.sent.map((m) => m.eventId)).toEqual(['evt-0-1']);
    // Partition 0 succeeded, but in an attempt whose batch may yet fail as a whole (partition 1's log): its
    // lease is released, so a retry of the whole batch does not wait for it. Partition 1 released its own.
    expect(log.leases.get(`${topic}-0`)).toMatchObject({ leaseUntil: 0 });
    expect(log.releases).toBe(2);
  });

  it('partitions that succeeded keep their leases when no log failed (the next batches take them over)', async () => {
    const log = new InMemoryNotificationLog();
    const channel = new RecordingChannel(0, (message) => message.subject.includes('bk-1-1'));
    const result = await run(kafkaEvent([record(0, 1), record(1, 1)]), channel, log);
    expect(result.failed).toEqual(['payment.failed-1@1']);
    expect(log.leases.get(`${topic}-0`)?.leaseUntil).toBeGreaterThan(0);
    expect(log.releases).toBe(1); // partition 1's, for its redelivery
  });

  it('gives back the leases it kept when a send fails as an outage: the batch is run again or the invocation fails', async () => {
    const log = new InMemoryNotificationLog();
    const throttling: NotificationChannel = {
      send: async (messages) =>
        messages.map((message) =>
          message.subject.includes('bk-1-1')
            ? {
                ok: false,
                error: new ServiceUnavailableError('ACCOUNT_THROTTLED: slow down'),
                permanent: false,
              }
            : { ok: true, receipt: { messageId: message.notificationId } },
        ),
    };
    const event = kafkaEvent([record(0, 1), record(1, 1)]);
    const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
    // No time left to retry inside the invocation (retryUntil 0): the outage fails it as a whole, no record.
    await expect(
      runBatch(partitions, notificationsPolicy({ channel: throttling, log, sleep: async () => {} })),
    ).rejects.toThrow(/ACCOUNT_THROTTLED/);
    // Partition 0 was sent and logged, and its lease given back: the retry, whatever offsets it brings, does not
    // wait for it.
    expect(log.logged.filter((entry) => entry.status === 'SENT')).toHaveLength(1);
    expect(log.leases.get(`${topic}-0`)).toMatchObject({ leaseUntil: 0 });
    expect(log.releases).toBe(2);
  });

  it('fails the invocation, not the records, when a record needs a channel the function is not wired for', async () => {
    // oncall-paging serves PAGER only: a payment.failed (PUSH) reaching it is the deployment's mistake.
    const pager = new RecordingChannel();
    const event = kafkaEvent([record(0, 1), record(1, 1)]);
    const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
    const log = new InMemoryNotificationLog();
    await expect(
      runBatch(
        partitions,
        notificationsPolicy({ channel: new RoutingChannel({ PAGER: pager }), log, sleep: async () => {} }),
      ),
    ).rejects.toThrow(/no PUSH channel in this function/);
    expect(pager.sent).toEqual([]);
    expect([...log.leases.values()].every((lease) => lease.leaseUntil === 0)).toBe(true);
  });
});
