// Consumer lag per partition: the latest offset minus the group's committed offset, what operators alarm on.
import '../../shared/kafka/node20-polyfills';
import { type Admin, ListOffsetTimestamps } from '@platformatic/kafka';
import { committedOffsets, offsetsAt, topicPartitions } from './starting-position';

export interface PartitionLag {
  partition: number;
  /** Undefined when the group has never committed for the partition. */
  committed: bigint | undefined;
  earliest: bigint;
  latest: bigint;
  lag: bigint;
}

export async function partitionLags(admin: Admin, groupId: string, topic: string): Promise<PartitionLag[]> {
  const partitions = await topicPartitions(admin, topic);
  const [committed, earliest, latest] = await Promise.all([
    committedOffsets(admin, groupId, topic, partitions),
    offsetsAt(admin, topic, partitions, ListOffsetTimestamps.EARLIEST),
    offsetsAt(admin, topic, partitions, ListOffsetTimestamps.LATEST),
  ]);
  return partitions.map((partition) => {
    const end = latest.get(partition) ?? 0n;
    const start = earliest.get(partition) ?? 0n;
    const done = committed.get(partition);
    return { partition, committed: done, earliest: start, latest: end, lag: end - (done ?? start) };
  });
}
