import type { MSKEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import type { EsmDefinition } from '../../local/esm/config';
import { EventSourceMapping } from '../../local/esm/mapping';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const running: EventSourceMapping[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
});

async function consume(definition: EsmDefinition, seen: string[]): Promise<EventSourceMapping> {
  const mapping = new EventSourceMapping({
    definition,
    brokers: kafkaBrokers(),
    handler: async (event: MSKEvent) => {
      for (const records of Object.values(event.records)) {
        for (const r of records) seen.push(Buffer.from(r.value, 'base64').toString());
      }
    },
  });
  running.push(mapping);
  await mapping.start();
  return mapping;
}

describe('starting positions, committed offsets and filters (real broker)', () => {
  it('AT_TIMESTAMP and LATEST apply to a new group; committed offsets win over the starting position', async () => {
    const topic = uniqueName('e2e-position');
    await createTopic(topic, 1);
    const cut = Date.now();
    await produce(topic, [
      { partition: 0, value: 'before-1', timestamp: BigInt(cut - 60_000) },
      { partition: 0, value: 'before-2', timestamp: BigInt(cut - 30_000) },
      { partition: 0, value: 'at-cut', timestamp: BigInt(cut + 1000) },
    ]);
    const atTimestamp = testDefinition(topic, {
      consumerGroupId: `${topic}-ts`,
      maximumBatchingWindowMs: 0,
      startingPosition: 'AT_TIMESTAMP',
      startingPositionTimestamp: Math.ceil(cut / 1000),
    });
    const seenTs: string[] = [];
    const first = await consume(atTimestamp, seenTs);
    await waitFor('the record at the timestamp', () => seenTs.length === 1);
    expect(seenTs).toEqual(['at-cut']);

    const seenLatest: string[] = [];
    await consume(
      testDefinition(topic, {
        consumerGroupId: `${topic}-latest`,
        maximumBatchingWindowMs: 0,
        startingPosition: 'LATEST',
      }),
      seenLatest,
    );
    await produce(topic, [{ partition: 0, value: 'after-start' }]);
    await waitFor('the new record', () => seenLatest.length === 1 && seenTs.length === 2);
    expect(seenLatest).toEqual(['after-start']);

    // Same group again, now with TRIM_HORIZON: the committed offset wins, nothing is read twice.
    await first.stop();
    await produce(topic, [{ partition: 0, value: 'while-stopped' }]);
    const seenAgain: string[] = [];
    await consume({ ...atTimestamp, startingPosition: 'TRIM_HORIZON' }, seenAgain);
    await waitFor('the record produced while stopped', () => seenAgain.length >= 1);
    expect(seenAgain).toEqual(['while-stopped']);
  });

  it('invokes only records matching the filter patterns and commits the filtered ones too', async () => {
    const topic = uniqueName('e2e-filter');
    await createTopic(topic, 1);
    await produce(topic, [
      { partition: 0, value: JSON.stringify({ type: 'keep', n: 1 }) },
      { partition: 0, value: JSON.stringify({ type: 'drop', n: 2 }) },
      { partition: 0, value: 'not json' },
      { partition: 0, value: JSON.stringify({ type: 'keep', n: 4 }) },
      { partition: 0, value: JSON.stringify({ type: 'drop', n: 5 }) },
    ]);
    const seen: string[] = [];
    const mapping = await consume(
      testDefinition(topic, { maximumBatchingWindowMs: 0, filterPatterns: [{ value: { type: ['keep'] } }] }),
      seen,
    );
    await waitFor('every offset committed', () => mapping.stats.committed.get(`${topic}-0`) === 5n);
    expect(seen.map((v) => (JSON.parse(v) as { n: number }).n)).toEqual([1, 4]);
  });
});
