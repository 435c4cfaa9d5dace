// StartingPosition applies only to partitions the group has no committed offset for: those get the
// position committed before the consumer joins, so committed offsets win everywhere else.
import '../../shared/kafka/node20-polyfills';
import { type Admin, ListOffsetTimestamps } from '@platformatic/kafka';
import type { StartingPosition } from './config';

export interface StartingPositionSpec {
  topic: string;
  consumerGroupId: string;
  startingPosition: StartingPosition;
  /** Unix seconds, AT_TIMESTAMP only. */
  startingPositionTimestamp?: number;
}

export async function topicPartitions(admin: Admin, topic: string): Promise<number[]> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  if (count === 0) throw new Error(`Topic ${topic} does not exist on the broker`);
  return Array.from({ length: count }, (_, i) => i);
}

export async function committedOffsets(
  admin: Admin,
  groupId: string,
  topic: string,
  partitions: number[],
): Promise<Map<number, bigint>> {
  const [group] = await admin.listConsumerGroupOffsets({
    groups: [{ groupId, topics: [{ name: topic, partitionIndexes: partitions }] }],
  });
  const committed = new Map<number, bigint>();
  for (const t of group?.topics ?? []) {
    for (const p of t.partitions)
      if (p.committedOffset >= 0n) committed.set(p.partitionIndex, p.committedOffset);
  }
  return committed;
}

/** Offsets at a position: earliest, latest, or the first offset at or after a timestamp (ms). */
export async function offsetsAt(
  admin: Admin,
  topic: string,
  partitions: number[],
  timestamp: bigint,
): Promise<Map<number, bigint>> {
  const [listed] = await admin.listOffsets({
    topics: [
      { name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) },
    ],
  });
  const offsets = new Map<number, bigint>();
  const needLatest: number[] = [];
  for (const p of listed?.partitions ?? []) {
    if (p.offset >= 0n) offsets.set(p.partitionIndex, p.offset);
    else needLatest.push(p.partitionIndex);
  }
  // No record at or after the timestamp: start at the end.
  if (needLatest.length > 0) {
    for (const [partition, offset] of await offsetsAt(
      admin,
      topic,
      needLatest,
      ListOffsetTimestamps.LATEST,
    )) {
      offsets.set(partition, offset);
    }
  }
  return offsets;
}

export function positionTimestamp(spec: StartingPositionSpec): bigint {
  switch (spec.startingPosition) {
    case 'TRIM_HORIZON':
      return ListOffsetTimestamps.EARLIEST;
    case 'LATEST':
      return ListOffsetTimestamps.LATEST;
    case 'AT_TIMESTAMP':
      if (spec.startingPositionTimestamp === undefined) {
        throw new Error(`AT_TIMESTAMP needs startingPositionTimestamp (group ${spec.consumerGroupId})`);
      }
      return BigInt(Math.floor(spec.startingPositionTimestamp * 1000));
  }
}

/** Commits the starting position for partitions without a committed offset; returns what it set. */
export async function applyStartingPosition(
  admin: Admin,
  spec: StartingPositionSpec,
): Promise<Map<number, bigint>> {
  const partitions = await topicPartitions(admin, spec.topic);
  const committed = await committedOffsets(admin, spec.consumerGroupId, spec.topic, partitions);
  const missing = partitions.filter((p) => !committed.has(p));
  if (missing.length === 0) return new Map();
  const offsets = await offsetsAt(admin, spec.topic, missing, positionTimestamp(spec));
  await admin.alterConsumerGroupOffsets({
    groupId: spec.consumerGroupId,
    topics: [
      {
        name: spec.topic,
        partitionOffsets: [...offsets].map(([partition, offset]) => ({ partition, offset })),
      },
    ],
  });
  return offsets;
}
