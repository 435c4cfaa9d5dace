// Failed-records objects exactly as the emulator's S3 destination writes them (invocation record + payload),
// and an in-memory bucket behind the redrive's store port.
import type { QueuedRecord } from '../../../../local/esm/batcher';
import { type SourceRecord, toMskEvent } from '../../../../local/esm/event';
import {
  type FailureCondition,
  invocationRecord,
  s3ObjectKey,
} from '../../../../local/esm/invocation-record';
import type { FailedBatchStore } from '../../../../ops/redrive/redrive';

export const FUNCTION = 'mobility-events-local-billing';
export const ESM = '11111111-2222-3333-4444-555555555555';
export const OTHER_ESM = '99999999-2222-3333-4444-555555555555';

export function record(
  topic: string,
  partition: number,
  offset: number,
  value: string | null,
  key: string | null = `k${offset}`,
): SourceRecord {
  return {
    topic,
    partition,
    offset: BigInt(offset),
    timestamp: Date.UTC(2026, 11, 1, 10, 0, offset),
    timestampType: 'CREATE_TIME',
    key: key === null ? null : Buffer.from(key),
    value: value === null ? null : Buffer.from(value),
    headers: [
      ['ce_id', Buffer.from(`id-${offset}`)],
      ['ce_type', Buffer.from(topic)],
    ],
  };
}

export interface ObjectSpec {
  records: SourceRecord[];
  esm?: string;
  functionName?: string;
  condition?: FailureCondition;
  failedAt?: Date;
}

/** Key and body of the object the emulator's S3 destination writes for this failed batch. */
export function failedObject(spec: ObjectSpec, id = '0'): { key: string; body: string } {
  const failedAt = spec.failedAt ?? new Date('2026-12-01T12:00:00Z');
  const event = toMskEvent(
    { eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/c/1', bootstrapServers: 'b:9092' },
    spec.records,
  );
  const partitions = new Map<string, QueuedRecord[]>();
  for (const r of spec.records) {
    const key = `${r.topic}-${r.partition}`;
    partitions.set(key, [
      ...(partitions.get(key) ?? []),
      { record: r, matched: true, size: 100, arrivedAt: 0, leaderEpoch: 0 },
    ]);
  }
  const body = {
    ...invocationRecord(
      {
        condition: spec.condition ?? 'RetryAttemptsExhausted',
        requestId: 'req',
        functionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${spec.functionName ?? FUNCTION}`,
        approximateInvokeCount: 4,
      },
      event,
      partitions,
      failedAt,
    ),
    payload: JSON.stringify(event),
  };
  const first = [...partitions.keys()][0] ?? 'unknown';
  return { key: s3ObjectKey(spec.esm ?? ESM, first, failedAt, id), body: JSON.stringify(body) };
}

/** The bucket in memory: objects, their tags, and a log of tag writes. */
export function memoryStore(objects: Array<{ key: string; body: string; lastModified?: Date }>) {
  const tags = new Map<string, Record<string, string>>();
  const store: FailedBatchStore & { tagsOf: (key: string) => Record<string, string> | undefined } = {
    async *list(prefix) {
      for (const o of [...objects].sort((a, b) => (a.key < b.key ? -1 : 1))) {
        if (o.key.startsWith(prefix))
          yield { key: o.key, ...(o.lastModified ? { lastModified: o.lastModified } : {}) };
      }
    },
    read: async (key) => {
      const found = objects.find((o) => o.key === key);
      if (!found) throw new Error(`NoSuchKey ${key}`);
      return found.body;
    },
    tags: async (key) => ({ ...(tags.get(key) ?? {}) }),
    setTags: async (key, value) => {
      tags.set(key, { ...value });
    },
    tagsOf: (key) => tags.get(key),
  };
  return store;
}
