import { describe, expect, it } from 'vitest';
import { isoInstant } from '../../shared/time';

describe('isoInstant', () => {
  it('reads a Date, epoch milliseconds as number or bigint, and a string Date.parse reads', () => {
    const iso = '2026-11-23T10:00:00.000Z';
    const millis = Date.parse(iso);
    expect(isoInstant(new Date(millis))).toBe(iso);
    expect(isoInstant(millis)).toBe(iso);
    expect(isoInstant(BigInt(millis))).toBe(iso);
    expect(isoInstant('2026-11-23T11:00:00+01:00')).toBe(iso);
  });

  it('gives undefined, never a RangeError, for what is not a time a Date can hold', () => {
    for (const value of [
      1e20,
      -1e20,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n ** 20n,
      new Date(Number.NaN),
    ]) {
      expect(isoInstant(value), String(value)).toBeUndefined();
    }
    for (const value of ['', 'yesterday', null, undefined, {}, true]) {
      expect(isoInstant(value), String(value)).toBeUndefined();
    }
  });
});
