import type { QueuedRecord } from '../../../local/esm/batcher';
import type { SourceRecord } from '../../../local/esm/event';

export function sourceRecord(
  partition: number,
  offset: number,
  value: unknown = { n: offset },
): SourceRecord {
  return {
    topic: 't',
    partition,
    offset: BigInt(offset),
    timestamp: Date.now(),
    timestampType: 'CREATE_TIME',
    key: Buffer.from(`k${partition}`),
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    headers: [['ce_type', Buffer.from('test')]],
  };
}

export function queued(partition: number, offset: number, arrivedAt = 0, matched = true): QueuedRecord {
  return { record: sourceRecord(partition, offset), matched, size: 100, arrivedAt, leaderEpoch: 0 };
}
