// Small helpers for e2e tests against the real broker: unique topics, producing, waiting.
import '../../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, Producer } from '@platformatic/kafka';
import type { EsmDefinition } from '../../local/esm/config';
import { esmUuid } from '../../local/esm/uuid';

export const brokers = (): string[] => (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

export const uniqueName = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = new Admin({ clientId: 'e2e-admin', bootstrapBrokers: brokers() });
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
    // Producing before every partition has a leader fails and the producer's retries can duplicate records.
    await waitFor(`leaders for ${topic}`, async () => {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const described = metadata.topics.get(topic);
      return described?.partitionsCount === partitions && described.partitions.every((p) => p.leader >= 0);
    });
  } finally {
    await admin.close();
  }
}

export interface TestMessage {
  partition: number;
  key?: string;
  value: string | null;
  headers?: Record<string, string>;
  timestamp?: bigint;
}

export async function produce(topic: string, messages: TestMessage[]): Promise<void> {
  // Idempotent: a retried produce under load must not duplicate records (tests count them exactly).
  const producer = new Producer({ clientId: 'e2e-producer', bootstrapBrokers: brokers(), idempotent: true });
  try {
    await producer.send({
      messages: messages.map((m) => ({
        topic,
        partition: m.partition,
        ...(m.key === undefined ? {} : { key: Buffer.from(m.key) }),
        // A tombstone is a record without a value.
        ...(m.value === null ? {} : { value: Buffer.from(m.value) }),
        ...(m.headers
          ? { headers: new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }
          : {}),
        ...(m.timestamp === undefined ? {} : { timestamp: m.timestamp }),
      })),
    });
  } finally {
    await producer.close();
  }
}

export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** An ESM definition for a test topic with AWS defaults; override what the test is about. */
export function testDefinition(topic: string, overrides: Partial<EsmDefinition> = {}): EsmDefinition {
  const consumerGroupId = overrides.consumerGroupId ?? `${topic}-group`;
  return {
    uuid: esmUuid('e2e', topic, consumerGroupId),
    logicalId: 'E2eEventSourceMapping',
    functionKey: 'e2e',
    functionName: `e2e-${topic}`,
    handler: 'inline',
    timeoutSeconds: 10,
    memorySize: 128,
    topic,
    consumerGroupId,
    eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/e2e/0000',
    batchSize: 100,
    maximumBatchingWindowMs: 500,
    enabled: true,
    startingPosition: 'TRIM_HORIZON',
    filterPatterns: [],
    maximumRetryAttempts: -1,
    maximumRecordAgeInSeconds: -1,
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: false,
    maximumConcurrency: 6,
    ...overrides,
  };
}
