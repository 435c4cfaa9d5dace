import {
  BatchFailures,
  type BatchLogger,
  type DecodedPartition,
  type KafkaBatchResponse,
  RecordDecodeError,
} from '../../shared/msk';
import type { ConsumedEvent } from './rules';
import {
  notifyPartition,
  type PartitionNotificationResult,
  type SendNotificationsDependencies,
} from './send-notifications';

/**
 * One topic-partition of a decoded MSK event, as notifyPartition takes it: the events before the first record
 * that could not be decoded (that record fails, with the later ones); a tombstone has no event.
 */
export function notifyDecodedPartition(
  partition: DecodedPartition,
  dependencies: SendNotificationsDependencies,
): Promise<PartitionNotificationResult> {
  const events: (ConsumedEvent | null)[] = [];
  let undecodable: { index: number; error: RecordDecodeError } | undefined;
  for (const [index, record] of partition.records.entries()) {
    if (record instanceof RecordDecodeError) {
      undecodable = { index, error: record };
      break;
    }
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
  return notifyPartition(partition.key, events, dependencies).then((result) =>
    undecodable && (!result.failure || undecodable.index < result.failure.index)
      ? { ...result, failure: undecodable }
      : result,
  );
}

export interface NotificationBatchOutcome {
  response: KafkaBatchResponse;
  sent: number;
  alreadySent: number;
}

/**
 * Every partition at once, each in one notifyDecodedPartition: a failed record is reported with the later
 * records of its partition; a partition whose log could not be read or written is reported whole. Errors
 * `isFatal` selects (configuration) fail the invocation, after every partition has settled.
 */
export async function notifyBatch(
  partitions: DecodedPartition[],
  dependencies: SendNotificationsDependencies,
  logger: BatchLogger,
  isFatal: (error: unknown) => boolean,
): Promise<NotificationBatchOutcome> {
  const failures = new BatchFailures(logger);
  const outcome = { sent: 0, alreadySent: 0 };
  const settled = await Promise.allSettled(
    partitions.map(async (partition) => {
      let result: PartitionNotificationResult;
      try {
        result = await notifyDecodedPartition(partition, dependencies);
      } catch (error) {
        if (isFatal(error)) throw error;
        failures.failPartition(partition, error);
        return;
      }
      for (const notification of result.notifications) {
        if (notification.outcome === 'SENT') outcome.sent++;
        if (notification.outcome === 'ALREADY_SENT') outcome.alreadySent++;
      }
      if (result.failure) failures.failFrom(partition, result.failure.index, result.failure.error);
    }),
  );
  const fatal = settled.find((result) => result.status === 'rejected');
  if (fatal) throw (fatal as PromiseRejectedResult).reason;
  return { response: failures.toResponse(), ...outcome };
}
