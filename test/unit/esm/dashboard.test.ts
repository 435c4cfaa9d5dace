import { describe, expect, it } from 'vitest';
import { lagCell, lagSecondsCell } from '../../../local/esm/dashboard';
import type { PartitionLag } from '../../../local/esm/lag';

const lag = (partition: number, records: bigint, ageMs?: number): PartitionLag => ({
  partition,
  committed: 0n,
  earliest: 0n,
  latest: records,
  lag: records,
  ...(ageMs === undefined ? {} : { ageMs }),
});

describe('dev table lag cells', () => {
  it('shows lag in records per partition and, next to it, the oldest unconsumed record in seconds', () => {
    const lags = [lag(0, 0n), lag(1, 12n, 3_400), lag(2, 3n, 12_960)];
    expect(lagCell(lags)).toBe('15 (p1:12 p2:3)');
    expect(lagSecondsCell(lags)).toBe('13.0');
  });

  it('shows 0 when caught up and ? before the first refresh', () => {
    expect(lagSecondsCell([lag(0, 0n)])).toBe('0');
    expect(lagSecondsCell(undefined)).toBe('?');
  });
});
