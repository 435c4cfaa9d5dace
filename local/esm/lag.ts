// Consumer lag per partition: the latest offset minus the group's committed offset, and as time: how long ago the
// broker wrote the oldest record the group has not consumed yet.
import '../../shared/kafka/node20-polyfills';
import { type Admin, ListOffsetTimestamps } from '@platformatic/kafka';
import { positionKey, type RecordTimes } from './record-times';
import { committedOffsets, offsetsAt, topicPartitions } from './starting-position';

export interface PartitionLag {
  partition: number;
  /** Undefined when the group has never committed for the partition. */
  committed: bigint | undefined;
  earliest: bigint;
  latest: bigint;
  lag: bigint;
  /**
   * Milliseconds since the broker wrote the oldest record not consumed yet (now minus its timestamp; the topics
   * are LogAppendTime). Undefined when caught up, or when no record times were asked for.
   */
  ageMs?: number;
}

export async function partitionLags(
  admin: Admin,
  groupId: string,
  topic: string,
  times?: RecordTimes,
  now: () => number = Date.now,
): Promise<PartitionLag[]> {
  const partitions = await topicPartitions(admin, topic);
  const [committed, earliest, latest] = await Promise.all([
    committedOffsets(admin, groupId, topic, partitions),
    offsetsAt(admin, topic, partitions, ListOffsetTimestamps.EARLIEST),
    offsetsAt(admin, topic, partitions, ListOffsetTimestamps.LATEST),
  ]);
  const lags: PartitionLag[] = partitions.map((partition) => {
    const end = latest.get(partition) ?? 0n;
    const start = earliest.get(partition) ?? 0n;
    const done = committed.get(partition);
    return { partition, committed: done, earliest: start, latest: end, lag: end - (done ?? start) };
  });
  if (!times) return lags;
  // The next record the group reads: its committed offset, or the log start if retention removed that one.
  const behind = lags.filter((l) => l.lag > 0n);
  const oldest = await times.at(
    behind.map((l) => ({
      topic,
      partition: l.partition,
      offset: l.committed !== undefined && l.committed > l.earliest ? l.committed : l.earliest,
    })),
  );
  const at = now();
  for (const l of behind) {
    const time = oldest.get(positionKey(topic, l.partition));
    if (time) l.ageMs = Math.max(0, at - time.timestamp);
  }
  return lags;
}

/** Lag as seconds, one decimal; '-' when caught up or unknown. */
export function lagSeconds(ageMs: number | undefined): string {
  return ageMs === undefined ? '-' : (ageMs / 1000).toFixed(1);
}
