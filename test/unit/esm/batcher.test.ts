import { describe, expect, it } from 'vitest';
import { Batcher } from '../../../local/esm/batcher';
import { queued } from './records';

const offsets = (entries: { record: { offset: bigint } }[] | undefined) =>
  entries?.map((e) => Number(e.record.offset));

describe('Batcher', () => {
  it('waits for the batching window, then puts several partitions in one batch', () => {
    const batcher = new Batcher({ batchSize: 10, windowMs: 500, maxConcurrency: 5, envelopeBytes: 100 });
    batcher.add(queued(0, 0, 1000));
    batcher.add(queued(1, 0, 1100));
    batcher.add(queued(0, 1, 1200));
    expect(batcher.takeReady(1400)).toEqual([]);
    expect(batcher.nextDueIn(1400)).toBe(100);
    const [batch] = batcher.takeReady(1500);
    expect([...(batch?.partitions.keys() ?? [])]).toEqual(['t-0', 't-1']);
    expect(offsets(batch?.partitions.get('t-0'))).toEqual([0, 1]);
  });

  it('is due at batchSize and never takes more', () => {
    const batcher = new Batcher({ batchSize: 3, windowMs: 10_000, maxConcurrency: 1, envelopeBytes: 100 });
    for (let i = 0; i < 5; i += 1) batcher.add(queued(0, i, 0));
    const batches = batcher.takeReady(1);
    expect(batches).toHaveLength(1);
    expect(offsets(batches[0]?.partitions.get('t-0'))).toEqual([0, 1, 2]);
    expect(batcher.buffered).toBe(2);
  });

  it('keeps one batch in flight per partition until it is released', () => {
    const batcher = new Batcher({ batchSize: 2, windowMs: 0, maxConcurrency: 5, envelopeBytes: 100 });
    for (let i = 0; i < 4; i += 1) batcher.add(queued(0, i, 0));
    batcher.add(queued(1, 0, 0));
    const first = batcher.takeReady(1);
    // p0's first two records, then p1 in a batch of its own; p0's rest waits for its release.
    expect(first.map((b) => [...b.partitions.keys()])).toEqual([['t-0'], ['t-1']]);
    expect(batcher.takeReady(2)).toEqual([]);
    batcher.release('t-0');
    batcher.batchDone();
    const [next] = batcher.takeReady(3);
    expect(offsets(next?.partitions.get('t-0'))).toEqual([2, 3]);
  });

  it('respects the concurrency limit', () => {
    const batcher = new Batcher({ batchSize: 1, windowMs: 0, maxConcurrency: 2, envelopeBytes: 100 });
    for (let p = 0; p < 4; p += 1) batcher.add(queued(p, 0, 0));
    expect(batcher.takeReady(1)).toHaveLength(2);
    expect(batcher.nextDueIn(1)).toBeUndefined();
  });

  it('cuts a batch at the payload cap', () => {
    const batcher = new Batcher({
      batchSize: 100,
      windowMs: 0,
      maxConcurrency: 5,
      envelopeBytes: 100,
      maxPayloadBytes: 350,
    });
    for (let i = 0; i < 5; i += 1) batcher.add(queued(0, i, 0));
    const [batch] = batcher.takeReady(1);
    expect(offsets(batch?.partitions.get('t-0'))).toEqual([0, 1]);
  });

  it('trims a stuck partition and reports the first dropped offset', () => {
    const batcher = new Batcher({ batchSize: 1, windowMs: 0, maxConcurrency: 5, envelopeBytes: 100 });
    for (let i = 0; i < 5; i += 1) batcher.add(queued(0, i, 0));
    expect(batcher.trim('t-0', 2)).toBe(2n);
    expect(batcher.buffered).toBe(2);
  });
});
