import { describe, expect, it } from 'vitest';
import {
  aggregateByZoneHour,
  baselineMilli,
  type DemandModelConfig,
  type DemandSignal,
  forecastCoefficients,
  forecastMilli,
  hourBucket,
  InvalidDemandEvent,
  offsetRanges,
  SUPPLY_ITEM,
  toDemandSignal,
  withoutApplied,
} from '../../../functions/demand-prediction-update/demand-model';
import zonesFile from '../../../functions/demand-prediction-update/zones.json';

// A flat profile makes the arithmetic easy to follow by hand: 10 bookings an hour in every hour of the week.
const flat: DemandModelConfig = {
  modelVersion: 1,
  forecast: { horizonHours: 3, trendWeight: 0.6, trendDecay: 0.5, priorBookings: 5 },
  hourOfDayShape: { weekday: Array(24).fill(1), weekend: Array(24).fill(1) },
  zones: [
    { zoneId: 'z-flat', baseBookingsPerHour: 10 },
    { zoneId: 'z-small', baseBookingsPerHour: 2 },
  ],
};
const zones = new Set(['z-flat', 'z-small']);
const at = (iso: string) => Date.parse(iso);
const coordinates = (offset: number, partition = 0, topic = 'booking.created') => ({
  topic,
  partition,
  offset,
});

describe('forecast model (worked examples)', () => {
  it('is the seasonal baseline when the hour runs exactly as expected', () => {
    // base = 10, kappa = 5. k=1: w1 = 0.6.
    // A1 = 10*(1-0.6) + 10*0.6*5/(10+5) = 4 + 2 = 6 bookings; B1 = 10*0.6/15 = 0.4 per booking.
    // n = 10 (as expected) -> 6 + 0.4*10 = 10 = the baseline.
    const [k1, k2, k3] = forecastCoefficients(flat, 'z-flat', '2026-11-23T12');
    expect(k1).toEqual({ k: 1, interceptMilli: 6000, slopeMilli: 400 });
    // k=2: w2 = 0.3 -> A2 = 7 + 3*5/15 = 8, B2 = 3/15 = 0.2.  k=3: w3 = 0.15 -> A3 = 8.5 + 0.5 = 9, B3 = 0.1.
    expect(k2).toEqual({ k: 2, interceptMilli: 8000, slopeMilli: 200 });
    expect(k3).toEqual({ k: 3, interceptMilli: 9000, slopeMilli: 100 });
    expect([k1, k2, k3].map((c) => forecastMilli(c!, 10))).toEqual([10_000, 10_000, 10_000]);
  });

  it('carries a busy hour into the next hours, decaying back to the baseline', () => {
    // 25 bookings where 10 were expected: r = (25+5)/(10+5) = 2.
    // h+1: 10*(0.4 + 0.6*2) = 16; h+2: 10*(0.7 + 0.3*2) = 13; h+3: 10*(0.85 + 0.15*2) = 11.5.
    const forecast = forecastCoefficients(flat, 'z-flat', '2026-11-23T12').map((c) => forecastMilli(c, 25));
    expect(forecast).toEqual([16_000, 13_000, 11_500]);
  });

  it('does not let one early booking in a quiet zone swing the forecast (prior of kappa bookings)', () => {
    // base 2, n = 1: r = (1+5)/(2+5) = 6/7; h+1: 2*(0.4 + 0.6*6/7) = 1.829 bookings (not 0.4 + 0.6*1/2).
    const [k1] = forecastCoefficients(flat, 'z-small', '2026-11-23T12');
    // A1 = 0.8 + 2*0.6*5/7 = 1.657 -> 1657; B1 = 1.2/7 = 0.171 -> 171.
    expect(k1).toEqual({ k: 1, interceptMilli: 1657, slopeMilli: 171 });
    expect(forecastMilli(k1!, 1)).toBe(1828);
  });

  it('blends the same hour of the week: weekday morning peak vs Sunday morning (zones.json)', () => {
    const config = zonesFile as DemandModelConfig;
    // zone-berlin-mitte: 60 bookings/h. Monday 2026-11-23 08:00 UTC weekday shape 2.2 -> 132; Sunday 08:00 0.8 -> 48.
    expect(baselineMilli(config, 'zone-berlin-mitte', '2026-11-23T08')).toBe(132_000);
    expect(baselineMilli(config, 'zone-berlin-mitte', '2026-11-22T08')).toBe(48_000);
    // Monday 07:00 (shape 2.0 -> 120 expected) with 120 bookings forecasts the 08:00 baseline (132 bookings).
    // B1 = 132*0.6/125 = 0.6336 is stored rounded to 634 milli, so the error is at most 0.5 milli per booking
    // (+0.5 for A1): 0.06 bookings here. Rounding once per coefficient is what keeps the sums exact.
    const [k1] = forecastCoefficients(config, 'zone-berlin-mitte', '2026-11-23T07');
    expect(k1).toEqual({ k: 1, interceptMilli: 55_968, slopeMilli: 634 });
    expect(forecastMilli(k1!, 120)).toBe(132_048);
    expect(Math.abs(forecastMilli(k1!, 120) - 132_000)).toBeLessThanOrEqual(0.5 * 120 + 0.5);
  });

  it('is exact integer arithmetic, so summing per batch equals summing per record', () => {
    const [k1] = forecastCoefficients(flat, 'z-small', '2026-11-23T12');
    const perRecord =
      k1!.interceptMilli + Array.from({ length: 7 }, () => k1!.slopeMilli).reduce((a, b) => a + b);
    expect(perRecord).toBe(forecastMilli(k1!, 7));
  });
});

describe('booking events to demand signals', () => {
  it('buckets by the UTC hour of the event time field', () => {
    const signal = toDemandSignal(
      {
        ...coordinates(7),
        eventType: 'booking.created',
        data: { zoneId: 'z-flat', createdAt: new Date('2026-11-23T12:59:59.999Z') },
      },
      zones,
    );
    expect(signal).toEqual({ ...coordinates(7), zoneId: 'z-flat', hour: '2026-11-23T12', kind: 'booked' });
    expect(hourBucket(at('2026-11-23T13:00:00Z'))).toBe('2026-11-23T13');
  });

  it('rejects an unknown zone, naming the field and the record', () => {
    const bad = () =>
      toDemandSignal(
        { ...coordinates(3, 2), eventType: 'booking.created', data: { zoneId: 'atlantis', createdAt: 1 } },
        zones,
      );
    expect(bad).toThrow(InvalidDemandEvent);
    expect(bad).toThrow('booking.created-2@3: field "zoneId" "atlantis" is not a known zone');
  });

  it('rejects a completed ride with a negative duration', () => {
    expect(() =>
      toDemandSignal(
        {
          ...coordinates(4, 0, 'booking.completed'),
          eventType: 'booking.completed',
          data: { zoneId: 'z-flat', completedAt: 1, durationSeconds: -60, distanceMeters: 100 },
        },
        zones,
      ),
    ).toThrow('field "durationSeconds" must be a number >= 0, got -60');
  });
});

describe('aggregation and fences', () => {
  const signal = (
    offset: number,
    zoneId: string,
    kind: DemandSignal['kind'] = 'booked',
    partition = 0,
  ): DemandSignal => ({
    topic: 'booking.created',
    partition,
    offset,
    zoneId,
    hour: '2026-11-23T12',
    kind,
  });

  it('writes one update per zone-hour with the summed counts', () => {
    const updates = aggregateByZoneHour(
      [signal(1, 'z-flat'), signal(2, 'z-small'), signal(3, 'z-flat'), signal(4, 'z-flat', 'cancelled', 1)],
      flat,
    );
    expect(updates.map((u) => [u.zoneId, u.booked, u.cancelled, u.signals.length])).toEqual([
      ['z-flat', 2, 1, 3],
      ['z-small', 1, 0, 1],
    ]);
    expect([...offsetRanges(updates[0]!).entries()]).toEqual([
      ['booking.created-0', { first: 1, last: 3 }],
      ['booking.created-1', { first: 4, last: 4 }],
    ]);
  });

  it('drops what an item has already applied, per partition', () => {
    const [update] = aggregateByZoneHour(
      [signal(10, 'z-flat'), signal(20, 'z-flat'), signal(5, 'z-flat', 'booked', 1)],
      flat,
    );
    const rest = withoutApplied(update!, { 'booking.created-0': 10 });
    expect(rest.signals.map((s) => s.offset)).toEqual([20, 5]);
    expect(rest.booked).toBe(2);
  });
});

describe('vehicle supply', () => {
  const status = (previousStatus: string, statusNow: string, extra: Record<string, unknown> = {}) => ({
    ...coordinates(3, 1, 'vehicle.status.changed'),
    eventType: 'vehicle.status.changed',
    data: {
      zoneId: 'z-flat',
      previousStatus,
      status: statusNow,
      changedAt: at('2026-11-23T12:40:00Z'),
      ...extra,
    },
  });

  it('counts a vehicle entering or leaving AVAILABLE, and nothing for other changes', () => {
    expect(toDemandSignal(status('IN_USE', 'AVAILABLE'), zones)).toEqual({
      ...coordinates(3, 1, 'vehicle.status.changed'),
      zoneId: 'z-flat',
      hour: '2026-11-23T12',
      kind: 'becameAvailable',
    });
    expect(toDemandSignal(status('AVAILABLE', 'RESERVED'), zones)?.kind).toBe('leftAvailable');
    expect(toDemandSignal(status('CHARGING', 'MAINTENANCE'), zones)).toBeUndefined();
    expect(toDemandSignal(status('AVAILABLE', 'AVAILABLE'), zones)).toBeUndefined();
  });

  it('names the bad field', () => {
    expect(() => toDemandSignal(status('IN_USE', 'AVAILABLE', { zoneId: 'atlantis' }), zones)).toThrow(
      'field "zoneId" "atlantis" is not a known zone',
    );
    expect(() => toDemandSignal(status('IN_USE', 'AVAILABLE', { changedAt: null }), zones)).toThrow(
      'field "changedAt" is missing or not a timestamp',
    );
    expect(() => toDemandSignal(status('IN_USE', 'AVAILABLE', { status: undefined }), zones)).toThrow(
      'field "status" is missing',
    );
  });

  it('sums supply into the hour and into the zone SUPPLY item, which has no forecast', () => {
    const signal = (offset: number, kind: DemandSignal['kind']): DemandSignal => ({
      ...coordinates(offset, 0, 'vehicle.status.changed'),
      zoneId: 'z-flat',
      hour: '2026-11-23T12',
      kind,
    });
    const updates = aggregateByZoneHour(
      [signal(1, 'becameAvailable'), signal(2, 'becameAvailable'), signal(3, 'leftAvailable')],
      flat,
    );
    expect(updates.map((u) => [u.hour, u.becameAvailable, u.leftAvailable, u.forecast.length])).toEqual([
      ['2026-11-23T12', 2, 1, 3],
      [SUPPLY_ITEM, 2, 1, 0],
    ]);
    // A redelivery that overlaps: the SUPPLY item fenced at offset 2 keeps only offset 3.
    const supply = updates[1] as (typeof updates)[number];
    const rest = withoutApplied(supply, { 'vehicle.status.changed-0': 2 });
    expect([rest.becameAvailable, rest.leftAvailable, rest.signals.length]).toEqual([0, 1, 1]);
  });
});
