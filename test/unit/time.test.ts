import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoInstant, MAX_TIME_MS, MIN_TIME_MS, parseRfc3339 } from '../../shared/time';

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
    for (const value of [
      '',
      'yesterday',
      'Mon, 23 Nov 2026 10:00:00 GMT',
      null,
      undefined,
      {},
      true,
      8.64e15,
      1.5,
    ]) {
      expect(isoInstant(value), String(value)).toBeUndefined();
    }
  });
});

describe('parseRfc3339', () => {
  it.each([
    ['2026-11-23T10:00:00Z', Date.UTC(2026, 10, 23, 10)],
    ['2026-11-23t10:00:00z', Date.UTC(2026, 10, 23, 10)],
    ['2026-11-23T11:30:00+01:30', Date.UTC(2026, 10, 23, 10)],
    ['2026-11-23T10:00:00.123456789Z', Date.UTC(2026, 10, 23, 10) + 123],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['0001-01-01T00:00:00Z', MIN_TIME_MS],
    ['9999-12-31T23:59:59.999Z', MAX_TIME_MS],
  ])('reads %s', (text, millis) => {
    expect(parseRfc3339(text)).toBe(millis);
  });

  it.each([
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:00:00+00:01',
    '9999-12-31T23:59:59-00:01',
    '+010000-01-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-11-23T24:00:00Z',
    '2026-12-31T23:59:60Z',
    '2026-11-23T10:00Z',
    '2026-11-23 10:00:00Z',
    '2026-11-23T10:00:00',
    '2026-11-23T10:00:00+1:00',
    'yesterday',
  ])('refuses %s', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });

  it('reads back every instant of years 0001-9999 as Date#toISOString writes it, with any offset', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MIN_TIME_MS + 86_400_000, max: MAX_TIME_MS - 86_400_000 }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (millis, offset) => {
          const iso = new Date(millis).toISOString();
          expect(parseRfc3339(iso)).toBe(millis);
          const local = new Date(millis + offset * 60_000).toISOString().slice(0, 23);
          const sign = offset < 0 ? '-' : '+';
          const abs = Math.abs(offset);
          const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(parseRfc3339(`${local}${zone}`)).toBe(millis);
        },
      ),
      { seed: 3339, numRuns: 2000 },
    );
  });

  it('takes years 0001-0099 literally (Date.UTC would map them to 1901-1999)', () => {
    expect(new Date(parseRfc3339('0050-06-15T00:00:00Z') as number).toISOString()).toBe(
      '0050-06-15T00:00:00.000Z',
    );
  });
});
