import type { MSKEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { EventSourceMapping } from '../../local/esm/mapping';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const running: EventSourceMapping[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
});

function start(mapping: EventSourceMapping) {
  running.push(mapping);
  return mapping.start();
}

describe('ESM emulator batching (real broker)', () => {
  it('keeps order within each partition while partitions run in parallel', async () => {
    const topic = uniqueName('e2e-order');
    await createTopic(topic, 4);
    const perPartition = 60;
    const messages = Array.from({ length: perPartition * 4 }, (_, i) => ({
      partition: i % 4,
      key: `k${i % 4}`,
      value: JSON.stringify({ seq: Math.floor(i / 4) }),
    }));
    await produce(topic, messages);
    const seen = new Map<number, number[]>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const mapping = new EventSourceMapping({
      definition: testDefinition(topic, { batchSize: 7, maximumBatchingWindowMs: 0 }),
      brokers: kafkaBrokers(),
      handler: async (event: MSKEvent) => {
        concurrent += 1;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const records of Object.values(event.records)) {
          for (const record of records) {
            const value = JSON.parse(Buffer.from(record.value, 'base64').toString()) as { seq: number };
            seen.set(record.partition, [...(seen.get(record.partition) ?? []), value.seq]);
          }
        }
        concurrent -= 1;
      },
    });
    await start(mapping);
    await waitFor(
      'every record',
      () => [...seen.values()].reduce((n, s) => n + s.length, 0) >= perPartition * 4,
    );
    for (let p = 0; p < 4; p += 1) {
      expect(seen.get(p)).toEqual(Array.from({ length: perPartition }, (_, i) => i));
    }
    expect(maxConcurrent).toBeGreaterThan(1);
  });

  it('delivers a multi-partition batch in the AWS MSK shape', async () => {
    const topic = uniqueName('e2e-shape');
    await createTopic(topic, 3);
    await produce(topic, [
      { partition: 0, key: 'a', value: '{"n":1}', headers: { ce_type: 'x.y' } },
      { partition: 1, value: 'plain' },
      { partition: 2, key: 'c', value: null },
    ]);
    const events: MSKEvent[] = [];
    const mapping = new EventSourceMapping({
      definition: testDefinition(topic, { batchSize: 10, maximumBatchingWindowMs: 1000 }),
      brokers: kafkaBrokers(),
      handler: async (event: MSKEvent) => void events.push(event),
    });
    await start(mapping);
    await waitFor('one batch', () => events.length > 0);
    const [event] = events;
    expect(event?.eventSource).toBe('aws:kafka');
    expect(event?.eventSourceArn).toBe('arn:aws:kafka:eu-west-1:000000000000:cluster/e2e/0000');
    expect(event?.bootstrapServers).toBe(kafkaBrokers().join(','));
    expect(Object.keys(event?.records ?? {}).sort()).toEqual([`${topic}-0`, `${topic}-1`, `${topic}-2`]);
    expect(event?.records[`${topic}-0`]?.[0]).toEqual({
      topic,
      partition: 0,
      offset: 0,
      timestamp: expect.any(Number),
      timestampType: 'CREATE_TIME',
      key: Buffer.from('a').toString('base64'),
      value: Buffer.from('{"n":1}').toString('base64'),
      headers: [{ ce_type: [...Buffer.from('x.y')] }],
    });
    expect(event?.records[`${topic}-1`]?.[0]).toMatchObject({
      key: null,
      value: Buffer.from('plain').toString('base64'),
    });
    expect(event?.records[`${topic}-2`]?.[0]).toMatchObject({
      key: Buffer.from('c').toString('base64'),
      value: null,
    });
  });
});
