import { randomUUID } from 'node:crypto';
import {
  type AggregateResult,
  type BatchPolicy,
  type DecodedPartition,
  isBatchLevelError,
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
 * is an outage the engine runs the batch again: what was sent and logged is skipped (a log write that failed
 * after its sends leaves them to be sent again, at least once: README).
 *
 * The partitions that succeeded keep their leases for their next batches, except in an attempt where some
 * partition's log failed or a send failed for a batch-level reason (an outage, the deployment's): the engine
 * then runs the batch again or fails the invocation, and that retry or the ESM's (with more records, maybe)
 * would wait up to the lease's length for them. So they are released then (one request each, on those
 * attempts only), under the holder every partition of the attempt shares.
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
      // The invocation is going to fail or run the batch again (a log that could not be read or written, or a send
      // failure that is batch-level: an outage or the deployment's), and its retry may bring other offsets than a
      // kept lease's: release them. Best effort: a lease not released lapses by itself.
      if (logFailed || failures.some((failure) => isBatchLevelError(failure.error))) {
        await Promise.all(
          kept.map((key) => dependencies.log.releaseLease(key, holder).catch(() => undefined)),
        );
      }
      return { ...result, failures };
    },
    ...(done ? { done } : {}),
  };
}
