import { randomUUID } from 'node:crypto';
import {
  type AggregateResult,
  type BatchPolicy,
  type DecodedPartition,
  RecordDecodeError,
  type RecordFailure,
} from '../../shared/msk';
import type { ConsumedEvent } from './rules';
import {
  notifyPartition,
  type PartitionNotificationResult,
  type SendNotificationsDependencies,
} from './send-notifications';

/**
 * One topic-partition of a decoded MSK event, as notifyPartition takes it: the events before the first record
 * that could not be decoded (the engine reports that one with the later ones), with their offsets; a
 * tombstone has no event.
 */
export function notifyDecodedPartition(
  partition: DecodedPartition,
  dependencies: SendNotificationsDependencies,
): Promise<PartitionNotificationResult> {
  const events: (ConsumedEvent | null)[] = [];
  let last: number | undefined;
  for (const record of partition.records) {
    if (record instanceof RecordDecodeError) break;
    last = record.offset;
    events.push(
      record.tombstone
        ? null
        : {
            topic: record.topic,
            source: record.cloudEvent.source,
            id: record.cloudEvent.id,
            time: record.cloudEvent.time,
            data: record.data,
          },
    );
  }
  const first = partition.records[0]?.offset ?? 0;
  return notifyPartition({ key: partition.key, first, last: last ?? first }, events, dependencies);
}

export interface NotificationBatchResult extends AggregateResult {
  sent: number;
  alreadySent: number;
}

/**
 * Notifications' batch policy: aggregate. Each partition of the batch is one notifyPartition (one lease, the
 * log read and written in bulk, the sends at once), the partitions at once. A failed event is reported with
 * its successors in the partition (the engine reports from the earliest failure; decode errors it finds
 * itself); a partition whose log could not be read or written fails from its first record, and when that
 * is an outage the engine runs the batch again, which is safe: what was sent is logged and skipped.
 *
 * The partitions that succeeded keep their leases for their next batches, except in an attempt where some
 * partition's log failed: the engine may then give up on the invocation, and the ESM's retry of the whole
 * batch (with more records, maybe) would wait up to the lease's length for them. So they are released then
 * (one request each, on those attempts only), under the holder every partition of the attempt shares.
 */
export function notificationsPolicy(
  dependencies: SendNotificationsDependencies,
  done?: (result: NotificationBatchResult) => void,
): BatchPolicy<Record<string, unknown>, NotificationBatchResult> {
  return {
    kind: 'aggregate',
    handle: async (partitions) => {
      const result: NotificationBatchResult = { failures: [], sent: 0, alreadySent: 0 };
      const failures: RecordFailure[] = [];
      const holder = dependencies.holder?.() ?? randomUUID();
      const attempt = { ...dependencies, holder: () => holder };
      const kept: string[] = [];
      let logFailed = false;
      await Promise.all(
        partitions.map(async (partition) => {
          const first = partition.records[0];
          if (!first) return;
          let outcome: PartitionNotificationResult;
          try {
            outcome = await notifyDecodedPartition(partition, attempt);
          } catch (error) {
            logFailed = true;
            failures.push({ record: first, error });
            return;
          }
          if (outcome.leaseKept) kept.push(partition.key);
          for (const notification of outcome.notifications) {
            if (notification.outcome === 'SENT') result.sent++;
            if (notification.outcome === 'ALREADY_SENT') result.alreadySent++;
          }
          const failed = outcome.failure && partition.records[outcome.failure.index];
          if (failed && outcome.failure) failures.push({ record: failed, error: outcome.failure.error });
        }),
      );
      if (logFailed) {
        // Best effort: a lease not released lapses by itself.
        await Promise.all(
          kept.map((key) => dependencies.log.releaseLease(key, holder).catch(() => undefined)),
        );
      }
      return { ...result, failures };
    },
    ...(done ? { done } : {}),
  };
}
