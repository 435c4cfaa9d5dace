// The Kafka client (@platformatic/kafka) against the real Kafka 4 broker of the stack: what the ESM
// emulator and the replay command rely on. Produce, consume with manual commits, read committed offsets
// back through the admin API, reset a group's offsets (explicit and by timestamp) and resume from there.
import {
  Consumer,
  type MessagesStream,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopic, kafkaBrokers, take, testAdmin, uniqueName } from '../support/kafka';

const topic = uniqueName('broker-smoke');
const admin = testAdmin();
// Record i has timestamp base + i s, so "offsets by timestamp" has an exact expected answer.
const base = BigInt(Date.now() - 60_000);
const COUNT = 10;

function consumer(groupId: string) {
  return new Consumer({
    clientId: uniqueName('broker-test'),
    groupId,
    bootstrapBrokers: kafkaBrokers(),
    deserializers: stringDeserializers,
    // Each test closes its consumer before the next joins: a short session keeps rebalances quick.
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
}

async function readFromCommitted(groupId: string, count: number): Promise<string[]> {
  const client = consumer(groupId);
  let stream: MessagesStream<string, string, string, string> | undefined;
  try {
    stream = await client.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: 'fail',
      autocommit: false,
    });
    return (await take(stream, count)).map((m) => m.value);
  } finally {
    await stream?.close();
    await client.close();
  }
}

async function committedOffset(groupId: string): Promise<bigint | undefined> {
  const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
  return group?.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partitionIndex === 0)
    ?.committedOffset;
}

beforeAll(async () => {
  await createTopic(topic, 1);
  const producer = new Producer({
    clientId: uniqueName('broker-test'),
    bootstrapBrokers: kafkaBrokers(),
    serializers: stringSerializers,
    idempotent: true,
  });
  try {
    await producer.send({
      messages: Array.from({ length: COUNT }, (_, i) => ({
        topic,
        partition: 0,
        key: `booking-${i}`,
        value: `v${i}`,
        headers: { ce_id: `id-${i}` },
        timestamp: base + BigInt(i * 1000),
      })),
    });
  } finally {
    await producer.close();
  }
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
});

describe('Kafka 4 broker with @platformatic/kafka', () => {
  it('lists earliest, latest and by-timestamp offsets', async () => {
    const at = async (timestamp: bigint) => {
      const [listed] = await admin.listOffsets({
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp }] }],
      });
      return listed?.partitions[0]?.offset;
    };
    expect(await at(-2n)).toBe(0n); // earliest
    expect(await at(-1n)).toBe(BigInt(COUNT)); // latest (next offset to be written)
    expect(await at(base + 5000n)).toBe(5n); // first record with timestamp >= base + 5 s
  });

  it('consumes with manual commits; the committed offset is visible to the admin API and resumed from', async () => {
    const groupId = uniqueName('broker-manual-commit');
    const client = consumer(groupId);
    try {
      const stream = await client.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      const messages = await take(stream, COUNT);
      expect(messages.map((m) => m.value)).toEqual(Array.from({ length: COUNT }, (_, i) => `v${i}`));
      expect(messages[3]?.key).toBe('booking-3');
      expect(messages[3]?.headers.get('ce_id')).toBe('id-3');
      // Nothing is committed until we say so (autocommit: false).
      expect(await committedOffset(groupId)).toBeUndefined();
      // Processed up to v5: commit it, which commits offset 6 (the next record to read).
      await messages[5]?.commit();
      await stream.close();
    } finally {
      await client.close();
    }
    expect(await committedOffset(groupId)).toBe(6n);
    expect(await readFromCommitted(groupId, 4)).toEqual(['v6', 'v7', 'v8', 'v9']);
  });

  it('resets an empty group to an explicit offset and to a timestamp, and consumption restarts there', async () => {
    const groupId = uniqueName('broker-reset');
    const reset = async (offset: bigint) =>
      admin.alterConsumerGroupOffsets({
        groupId,
        topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset }] }],
      });

    await reset(2n);
    expect(await committedOffset(groupId)).toBe(2n);
    expect(await readFromCommitted(groupId, 3)).toEqual(['v2', 'v3', 'v4']);

    // Replay by timestamp, as the replay command does it: look the offset up, then reset the group to it.
    const [listed] = await admin.listOffsets({
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: base + 7000n }] }],
    });
    const offset = listed?.partitions[0]?.offset as bigint;
    expect(offset).toBe(7n);
    await reset(offset);
    expect(await readFromCommitted(groupId, 3)).toEqual(['v7', 'v8', 'v9']);
  });
});
