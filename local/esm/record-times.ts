// The broker's timestamp of the record at a given offset, read with a raw Fetch: the consumer stream of
// @platformatic/kafka gives every record its batch's first timestamp plus the record's delta, which on a
// LogAppendTime topic is still the producer's time; the broker's append time is the batch's maxTimestamp.
import '../../shared/kafka/node20-polyfills';
import { Consumer, type RecordsBatch } from '@platformatic/kafka';

/** Record batch attributes, bit 3: the batch's timestamps are the broker's (LogAppendTime). */
const LOG_APPEND_TIME = 0x08;
/** Enough for the first batch at the offset; a larger first record is still returned whole by the broker. */
const PARTITION_MAX_BYTES = 64 * 1024;

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface RecordTime {
  timestamp: number;
  type: 'CREATE_TIME' | 'LOG_APPEND_TIME';
}

export const positionKey = (topic: string, partition: number): string => `${topic}-${partition}`;

/** Timestamp and type of the record at `offset` in the batches a Fetch from that offset returned. */
export function recordTimeAt(batches: RecordsBatch[], offset: bigint): RecordTime | undefined {
  for (const batch of batches) {
    for (const record of batch.records) {
      if (batch.firstOffset + BigInt(record.offsetDelta) < offset) continue;
      return batch.attributes & LOG_APPEND_TIME
        ? { timestamp: Number(batch.maxTimestamp), type: 'LOG_APPEND_TIME' }
        : { timestamp: Number(batch.firstTimestamp + record.timestampDelta), type: 'CREATE_TIME' };
    }
  }
  return undefined;
}

/** Reads record timestamps at positions; one Fetch per partition leader. Close it when done. */
export class RecordTimes {
  readonly #consumer: Consumer;

  constructor(brokers: string[]) {
    // Never joins a group or commits: only its Fetch and Metadata calls are used.
    this.#consumer = new Consumer({
      clientId: 'record-times',
      groupId: 'record-times-unused',
      bootstrapBrokers: brokers,
    });
  }

  /** `topic-partition` => time of the record at the position; absent where no record is there (yet). */
  async at(positions: RecordPosition[]): Promise<Map<string, RecordTime>> {
    const times = new Map<string, RecordTime>();
    if (positions.length === 0) return times;
    const topics = [...new Set(positions.map((p) => p.topic))];
    const metadata = await this.#consumer.metadata({ topics });
    const byLeader = new Map<number, RecordPosition[]>();
    for (const position of positions) {
      const leader = metadata.topics.get(position.topic)?.partitions[position.partition]?.leader;
      if (leader === undefined || leader < 0) continue;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), position]);
    }
    await Promise.all(
      [...byLeader].map(async ([node, leaderPositions]) => {
        const byTopic = new Map<string, RecordPosition[]>();
        for (const p of leaderPositions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
        const response = await this.#consumer.fetch({
          node,
          maxWaitTime: 0,
          minBytes: 1,
          maxBytes: PARTITION_MAX_BYTES * leaderPositions.length,
          topics: [...byTopic].map(([topic, list]) => ({
            topicId: metadata.topics.get(topic)?.id as string,
            partitions: list.map((p) => ({
              partition: p.partition,
              currentLeaderEpoch: -1,
              fetchOffset: p.offset,
              lastFetchedEpoch: -1,
              partitionMaxBytes: PARTITION_MAX_BYTES,
            })),
          })),
        });
        const topicOfId = new Map(
          [...byTopic.keys()].map((topic) => [metadata.topics.get(topic)?.id, topic]),
        );
        for (const topicResponse of response.responses) {
          const topic = topicOfId.get(topicResponse.topicId);
          if (!topic) continue;
          for (const partition of topicResponse.partitions) {
            const position = byTopic.get(topic)?.find((p) => p.partition === partition.partitionIndex);
            if (!position || partition.errorCode !== 0) continue;
            const time = recordTimeAt(partition.records ?? [], position.offset);
            if (time) times.set(positionKey(topic, partition.partitionIndex), time);
          }
        }
      }),
    );
    return times;
  }

  close(): Promise<void> {
    return this.#consumer.close();
  }
}
