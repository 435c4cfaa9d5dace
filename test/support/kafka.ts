// Helpers for tests against the stack's broker (KAFKA_BROKERS): unique topics with leaders, reading n
// messages from a stream with a deadline that names what was missing.
import '../../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, type Message, type MessagesStream } from '@platformatic/kafka';

export const kafkaBrokers = (): string[] => {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers)
    throw new Error('KAFKA_BROKERS is not set: run in the integration project (vitest.config.ts)');
  return brokers.split(',');
};

export const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

export function testAdmin(): Admin {
  return new Admin({ clientId: uniqueName('test-admin'), bootstrapBrokers: kafkaBrokers() });
}

/** Creates a topic and waits until every partition has a leader (producing earlier fails or duplicates). */
export async function createTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  for (let attempt = 0; attempt < 100; attempt++) {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    const described = metadata.topics.get(topic);
    if (described?.partitionsCount === partitions && described.partitions.every((p) => p.leader >= 0)) return;
    await sleep(100);
  }
  throw new Error(`topic ${topic}: partitions have no leader`);
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
