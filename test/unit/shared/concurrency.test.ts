import { describe, expect, it } from 'vitest';
import { allSettledOrThrow, chunk, mapBounded, settlePerKey } from '../../../shared/concurrency';

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

describe('settlePerKey', () => {
  const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('runs one key in order, one item at a time, and up to `limit` keys at once', async () => {
    const items = ['a1', 'b1', 'a2', 'c1', 'b2', 'a3', 'd1', 'c2'];
    const log: string[] = [];
    const running = new Map<string, number>();
    let inFlight = 0;
    let most = 0;
    const results = await settlePerKey(
      items,
      (item) => item[0] as string,
      2,
      async (item) => {
        const key = item[0] as string;
        expect(running.get(key) ?? 0).toBe(0);
        running.set(key, 1);
        inFlight++;
        most = Math.max(most, inFlight);
        log.push(`start ${item}`);
        // Later items of a key finish faster: order must come from running them one after another.
        await tick(item.endsWith('1') ? 6 : 1);
        log.push(`end ${item}`);
        inFlight--;
        running.set(key, 0);
        return item.toUpperCase();
      },
    );
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(
      items.map((item) => item.toUpperCase()),
    );
    expect(most).toBe(2);
    for (const key of ['a', 'b', 'c']) {
      const ends = log.filter((line) => line.startsWith(`end ${key}`));
      expect(ends).toEqual([...ends].sort());
    }
  });

  it('settles the later items of a failed key with its error and goes on with the other keys', async () => {
    const ran: string[] = [];
    const failure = new Error('a2 failed');
    const results = await settlePerKey(
      ['a1', 'b1', 'a2', 'b2', 'a3'],
      (item) => item[0] as string,
      4,
      async (item) => {
        ran.push(item);
        await tick(1);
        if (item === 'a2') throw failure;
        return item;
      },
    );
    expect(ran.sort()).toEqual(['a1', 'a2', 'b1', 'b2']);
    expect(results).toEqual([
      { status: 'fulfilled', value: 'a1' },
      { status: 'fulfilled', value: 'b1' },
      { status: 'rejected', reason: failure },
      { status: 'fulfilled', value: 'b2' },
      { status: 'rejected', reason: failure },
    ]);
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
