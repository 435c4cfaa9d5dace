/**
 * Maps `items` through `fn` with at most `limit` calls in flight; results in the order of `items`. A rejection
 * starts no further calls and rejects the whole map once the calls in flight have settled (none runs on
 * unobserved).
 */
export async function mapBounded<Item, Result>(
  items: readonly Item[],
  limit: number,
  fn: (item: Item, index: number) => Promise<Result>,
): Promise<Result[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const results = new Array<Result>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as Item, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await allSettledOrThrow(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** `list` in consecutive chunks of at most `size`. */
export function chunk<Item>(list: readonly Item[], size: number): Item[][] {
  const chunks: Item[][] = [];
  for (let start = 0; start < list.length; start += size) chunks.push(list.slice(start, start + size));
  return chunks;
}

/**
 * Like Promise.all, but settles only when every promise has: rejects with the first rejection (in list order) once
 * none is still running, so a caller never answers while work it started is in flight.
 */
export async function allSettledOrThrow(promises: readonly Promise<unknown>[]): Promise<void> {
  for (const result of await Promise.allSettled(promises)) {
    if (result.status === 'rejected') throw result.reason;
  }
}

/**
 * Resolves on the event loop's next check phase: synchronous work queued after it runs once the requests started
 * before it (the SDK's middleware runs in microtasks) are written to their sockets, so it overlaps their round trip
 * instead of delaying them.
 */
export function afterRequestsAreSent(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
