// Helpers for tests against the stack's broker (KAFKA_BROKERS): unique topics with leaders, producing, reading n
// messages from a stream with a deadline that names what was missing.
import '../../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import { Admin, type Message, type MessagesStream, ProduceAcks, Producer } from '@platformatic/kafka';
import { waitFor } from './wait';

export const kafkaBrokers = (): string[] => {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers)
    throw new Error('KAFKA_BROKERS is not set: run in the integration project (vitest.config.ts)');
  return brokers.split(',');
};

export const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

export function testAdmin(clientId = uniqueName('test-admin')): Admin {
  return new Admin({ clientId, bootstrapBrokers: kafkaBrokers() });
}

export interface CreateTopicsOptions {
  /** Topic configs, e.g. max.message.bytes. */
  configs?: Record<string, string>;
  /** How long the partitions may take to get leaders. */
  timeoutMs?: number;
}

/** Creates topics and waits until every partition has a leader (producing earlier fails or duplicates). */
export async function createTopics(
  topics: string[],
  partitions: number,
  options: CreateTopicsOptions = {},
): Promise<void> {
  const admin = testAdmin();
  try {
    await admin.createTopics({
      topics,
      partitions,
      replicas: 1,
      ...(options.configs
        ? { configs: Object.entries(options.configs).map(([name, value]) => ({ name, value })) }
        : {}),
    });
    await waitFor(
      `leaders for ${topics.join(', ')}`,
      async () => {
        const metadata = await admin.metadata({ topics, forceUpdate: true });
        return topics.every((topic) => {
          const described = metadata.topics.get(topic);
          return (
            described?.partitionsCount === partitions && described.partitions.every((p) => p.leader >= 0)
          );
        });
      },
      options.timeoutMs ?? 20_000,
      100,
    );
  } finally {
    await admin.close();
  }
}

export const createTopic = (
  topic: string,
  partitions: number,
  options?: CreateTopicsOptions,
): Promise<void> => createTopics([topic], partitions, options);

/** A record to produce: the topic, and optionally partition, key, value (none: a tombstone) and headers. */
export interface OutMessage {
  topic: string;
  partition?: number;
  key?: Buffer | null;
  value?: Buffer | null;
  headers?: Map<Buffer, Buffer>;
  timestamp?: bigint;
}

/**
 * Produces `messages` in order, `chunk` per request. Idempotent with acks from every replica: a retried produce
 * under load must not duplicate or lose records (tests count them exactly).
 */
export async function produceAll(messages: OutMessage[], chunk = 500): Promise<void> {
  const producer = new Producer({
    clientId: uniqueName('test-producer'),
    bootstrapBrokers: kafkaBrokers(),
    idempotent: true,
    acks: ProduceAcks.ALL,
  });
  try {
    for (let i = 0; i < messages.length; i += chunk) {
      await producer.send({
        messages: messages.slice(i, i + chunk).map((m) => ({
          topic: m.topic,
          ...(m.partition === undefined ? {} : { partition: m.partition }),
          ...(m.key ? { key: m.key } : {}),
          ...(m.value ? { value: m.value } : {}),
          ...(m.headers ? { headers: m.headers } : {}),
          ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
        })),
      });
    }
  } finally {
    await producer.close();
  }
}

/** A record for `produce`, with strings for key, value (null: a tombstone) and headers. */
export interface TestMessage {
  partition: number;
  key?: string;
  value: string | null;
  headers?: Record<string, string>;
  timestamp?: bigint;
}

export async function produce(topic: string, messages: TestMessage[]): Promise<void> {
  await produceAll(
    messages.map((m) => ({
      topic,
      partition: m.partition,
      ...(m.key === undefined ? {} : { key: Buffer.from(m.key) }),
      ...(m.value === null ? {} : { value: Buffer.from(m.value) }),
      ...(m.headers
        ? { headers: new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }
        : {}),
      ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
    })),
    messages.length || 1,
  );
}

/** The next `count` messages of the stream; fails after `deadlineMs` saying how many arrived. */
export async function take<K, V, HK, HV>(
  stream: MessagesStream<K, V, HK, HV>,
  count: number,
  deadlineMs = 30_000,
): Promise<Message<K, V, HK, HV>[]> {
  const messages: Message<K, V, HK, HV>[] = [];
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`expected ${count} messages, got ${messages.length} within ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  const reading = (async () => {
    for await (const message of stream) {
      messages.push(message);
      if (messages.length === count) break;
    }
    return messages;
  })();
  try {
    return await Promise.race([reading, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
