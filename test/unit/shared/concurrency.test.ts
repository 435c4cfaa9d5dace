import { describe, expect, it } from 'vitest';
import { allSettledOrThrow, chunk, mapBounded } from '../../../shared/concurrency';

describe('mapBounded', () => {
  it('keeps at most `limit` calls in flight and returns results in input order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapBounded([5, 1, 4, 2, 3, 0], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, n));
      inFlight--;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30, 0]);
    expect(most).toBe(3);
  });
  it('starts nothing after a failure and rejects once the calls in flight have settled', async () => {
    const started: number[] = [];
    let settled = 0;
    const failure = mapBounded([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      await new Promise((resolve) => setTimeout(resolve, n === 0 ? 1 : 5));
      settled++;
      if (n === 0) throw new Error('first failed');
      return n;
    });
    await expect(failure).rejects.toThrow('first failed');
    expect(started).toEqual([0, 1]);
    expect(settled).toBe(2);
  });
  it('refuses a limit that is not a positive integer', async () => {
    await expect(mapBounded([1], 0, async (n) => n)).rejects.toThrow(/positive integer, got 0/);
  });
});

describe('chunk', () => {
  it('splits into consecutive chunks of at most the size', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 10)).toEqual([]);
  });
});

describe('allSettledOrThrow', () => {
  it('rejects with the first rejection only once every promise has settled', async () => {
    let slowDone = false;
    const slow = new Promise<void>((resolve) =>
      setTimeout(() => {
        slowDone = true;
        resolve();
      }, 20),
    );
    await expect(
      allSettledOrThrow([slow, Promise.reject(new Error('first')), Promise.reject(new Error('second'))]),
    ).rejects.toThrow('first');
    expect(slowDone).toBe(true);
    await expect(allSettledOrThrow([Promise.resolve(1), slow])).resolves.toBeUndefined();
  });
});
