import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { kafkaEvent, kafkaEventRecord } from '../../../shared/msk/build';
import { batchMetrics, publishBatchMetrics } from '../../../shared/msk/metrics';

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
      {
        name: 'OldestRecordAgeMs',
        unit: 'Milliseconds',
        value: 5_000,
        dimensions: { topic: 'booking.created' },
      },
    ]);
  });

  it('reports no age for an empty batch and never a negative one (producer clock ahead)', () => {
    expect(batchMetrics(kafkaEvent([]), { batchItemFailures: [] }, 0)).toEqual([
      { name: 'RecordsProcessed', unit: 'Count', value: 0 },
      { name: 'RecordsFailed', unit: 'Count', value: 0 },
    ]);
    const ahead = batchMetrics(kafkaEvent([record('t', 0, 0, 9_000)]), { batchItemFailures: [] }, 8_000);
    expect(ahead.at(-1)).toEqual({
      name: 'OldestRecordAgeMs',
      unit: 'Milliseconds',
      value: 0,
      dimensions: { topic: 't' },
    });
  });
});

describe('publishBatchMetrics', () => {
  it('publishes OldestRecordAgeMs per topic with dimensions service and topic (what the per-ESM alarms read)', () => {
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const metrics = new Metrics({ namespace: 'mobility-events', serviceName: 'notifications' });
      const event = kafkaEvent([
        record('incident.detected', 0, 1, 1_000),
        record('incident.detected', 1, 4, 3_000),
      ]);
      publishBatchMetrics(metrics, metrics.singleMetric(), event, { batchItemFailures: [] }, 13_000);
      metrics.publishStoredMetrics();
    } finally {
      write.mockRestore();
    }
    const emf = lines
      .flatMap((line) => line.split('\n'))
      .filter((line) => line.includes('_aws'))
      .map((line) => JSON.parse(line));
    const age = emf.find((entry) => 'OldestRecordAgeMs' in entry);
    expect(age).toMatchObject({
      service: 'notifications',
      topic: 'incident.detected',
      OldestRecordAgeMs: 12_000,
    });
    expect(age._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service', 'topic']]);
    expect(emf.find((entry) => 'RecordsProcessed' in entry)).toMatchObject({
      RecordsProcessed: 2,
      RecordsFailed: 0,
    });
  });

  it('reuses one single-metric instance across batches: every per-topic metric has its own topic only', () => {
    const lines: string[] = [];
    const warnings: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    // Powertools warns through a Console of its own on process.stderr.
    const warn = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      warnings.push(String(chunk));
      return true;
    });
    try {
      const metrics = new Metrics({ namespace: 'mobility-events', serviceName: 'billing' });
      const perTopic = metrics.singleMetric();
      for (const [topic, at] of [
        ['booking.completed', 1_000],
        ['payment.succeeded', 2_000],
      ] as const) {
        publishBatchMetrics(
          metrics,
          perTopic,
          kafkaEvent([record(topic, 0, 1, at)]),
          { batchItemFailures: [] },
          5_000,
        );
        metrics.publishStoredMetrics();
      }
    } finally {
      write.mockRestore();
      warn.mockRestore();
    }
    const ages = lines
      .flatMap((line) => line.split('\n'))
      .filter((line) => line.includes('OldestRecordAgeMs'))
      .map((line) => JSON.parse(line));
    expect(
      ages.map((entry) => [entry.topic, entry.OldestRecordAgeMs, entry._aws.CloudWatchMetrics[0].Dimensions]),
    ).toEqual([
      ['booking.completed', 4_000, [['service', 'topic']]],
      ['payment.succeeded', 3_000, [['service', 'topic']]],
    ]);
    // Powertools warns when a dimension is added twice (a topic left over from the batch before): none was.
    expect(warnings).toEqual([]);
  });
});
