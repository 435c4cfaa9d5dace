import { describe, expect, it } from 'vitest';
import { kafkaEvent, kafkaEventRecord } from '../../../shared/msk/build';
import { batchMetrics } from '../../../shared/msk/metrics';

const record = (topic: string, partition: number, offset: number, timestamp: number) =>
  kafkaEventRecord({ topic, partition, offset, timestamp, key: 'k', value: Buffer.from('{}') });

describe('batchMetrics', () => {
  it('counts processed and failed records and the age of the oldest record across partitions', () => {
    const event = kafkaEvent([
      record('booking.created', 0, 10, 1_000),
      record('booking.created', 0, 11, 4_000),
      record('booking.created', 1, 7, 2_500),
    ]);
    const failure = { itemIdentifier: { partition: 'booking.created-0', offset: 11 } };
    expect(batchMetrics(event, { batchItemFailures: [failure] }, 6_000)).toEqual([
      { name: 'RecordsProcessed', unit: 'Count', value: 2 },
      { name: 'RecordsFailed', unit: 'Count', value: 1 },
      { name: 'OldestRecordAgeMs', unit: 'Milliseconds', value: 5_000 },
    ]);
  });

  it('reports no age for an empty batch and never a negative one (producer clock ahead)', () => {
    expect(batchMetrics(kafkaEvent([]), { batchItemFailures: [] }, 0)).toEqual([
      { name: 'RecordsProcessed', unit: 'Count', value: 0 },
      { name: 'RecordsFailed', unit: 'Count', value: 0 },
    ]);
    const ahead = batchMetrics(kafkaEvent([record('t', 0, 0, 9_000)]), { batchItemFailures: [] }, 8_000);
    expect(ahead.at(-1)).toEqual({ name: 'OldestRecordAgeMs', unit: 'Milliseconds', value: 0 });
  });
});
