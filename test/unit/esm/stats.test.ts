import { describe, expect, it } from 'vitest';
import type { QueuedRecord } from '../../../local/esm/batcher';
import { EsmStats, LATENCY_WINDOW_MS } from '../../../local/esm/stats';

/** Records produced at `producedAt`, as the batch processor reports them once handled. */
const produced = (count: number, producedAt: number) =>
  Array.from({ length: count }, () => ({ record: { timestamp: producedAt } }) as unknown as QueuedRecord);

describe('ESM latency figures (dev table)', () => {
  it('gives p50/p95 over the last 30 s, so a slow start-up no longer shows once it is over', () => {
    let now = 1_000_000;
    const stats = new EsmStats(() => now);
    // Start-up: 100 records 20 s late (workers compiling).
    stats.recordSucceeded(produced(100, now - 20_000));
    expect(stats.latencyPercentile(95)).toBe(20_000);
    now += LATENCY_WINDOW_MS + 1;
    expect(stats.latencyPercentile(50)).toBeUndefined();
    // Steady state: 19 records 10 ms late, one 40 ms.
    stats.recordSucceeded([...produced(19, now - 10), ...produced(1, now - 40)]);
    expect(stats.latencyPercentile(50)).toBe(10);
    expect(stats.latencyPercentile(95)).toBe(10);
    expect(stats.latencyPercentile(100)).toBe(40);
  });

  it('keeps the cumulative p50/p95 since start, within 1 %', () => {
    let now = 5_000_000;
    const stats = new EsmStats(() => now);
    stats.recordSucceeded(produced(10, now - 20_000));
    now += 60_000;
    stats.recordSucceeded(produced(90, now - 10));
    const p50 = stats.cumulativeLatencyPercentile(50) as number;
    const p95 = stats.cumulativeLatencyPercentile(95) as number;
    expect(Math.abs(p50 - 10) / 10).toBeLessThanOrEqual(0.01);
    expect(Math.abs(p95 - 20_000) / 20_000).toBeLessThanOrEqual(0.01);
    expect(stats.latencyPercentile(95)).toBe(10);
  });
});
