/**
 * The demand model: pure functions, no I/O.
 *
 * Counts. Every booking event lands in one zone-hour bucket (UTC hour of the event's own business time:
 * createdAt / completedAt / cancelledAt, never the wall clock, so a replay lands in the same buckets):
 * booking.created -> booked, booking.completed -> completed, booking.cancelled -> cancelled.
 *
 * Forecast. For the hour h a booking falls in, the forecast of bookings for hour h+k (k = 1..H) is
 *
 *     forecast(h+k) = base(h+k) * ((1 - w_k) + w_k * r(h)),   w_k = trendWeight * trendDecay^(k-1)
 *     r(h)          = (n(h) + kappa) / (base(h) + kappa)
 *
 * - base(t): the zone's seasonal baseline for t's hour of the week (baseBookingsPerHour x the weekday /
 *   weekend hour-of-day shape in zones.json, learned offline from history).
 * - r(h): the recent trend, i.e. how busy hour h is compared with its baseline, with kappa pseudo-bookings of
 *   prior so a single early booking does not swing the forecast (credibility blend of observed and expected).
 * - w_k: how much of that trend carries into h+k; it decays exponentially with the horizon, so the forecast
 *   falls back to the seasonal baseline further out.
 *
 * Parameters (zones.json, modelVersion 1): H = 3, trendWeight = 0.6, trendDecay = 0.5, kappa = 5.
 *
 * The forecast is linear in n(h): forecast(h+k) = A_k + B_k * n(h), with A_k and B_k fixed per zone, hour and
 * model version. Both are rounded once to integer milli-bookings, so the stored forecast is
 * `A_k + B_k * n` in exact integer arithmetic: each batch adds `B_k * (its bookings)` with one ADD-like update
 * of the zone-hour item it writes anyway. That keeps one write per zone-hour, needs no read before the write,
 * and makes the result independent of batch boundaries and of the order partitions are applied in, which is
 * what makes a rebuild reproduce the read model byte for byte.
 *
 * Limits, deliberate:
 * - n(h) is the bookings of hour h so far, so while h is still running the trend reads low (the prior pulls it
 *   towards the baseline); scaling by the elapsed fraction of the hour would use the wall clock and break both
 *   linearity and replay determinism. The forecast written for h+k is final once hour h is complete.
 * - Hours and the hour-of-day shape are UTC (the shape must be re-learned when local time shifts, e.g. DST).
 * - The seasonal baseline is configuration, not learned online from last week's items. An
 * online same-hour-of-week EWMA needs the last weeks' items at write time: an extra read per batch, and a value
 * that depends on how far other partitions had got, which a replay does not reproduce.
 */

export type BookingEventType = 'booking.created' | 'booking.completed' | 'booking.cancelled';
export const VEHICLE_STATUS_CHANGED = 'vehicle.status.changed';

export const BOOKING_EVENT_TYPES: readonly BookingEventType[] = [
  'booking.created',
  'booking.completed',
  'booking.cancelled',
];

export interface ForecastParameters {
  horizonHours: number;
  trendWeight: number;
  trendDecay: number;
  priorBookings: number;
}

export interface DemandModelConfig {
  modelVersion: number;
  forecast: ForecastParameters;
  hourOfDayShape: { weekday: number[]; weekend: number[] };
  zones: { zoneId: string; baseBookingsPerHour: number }[];
}

/** Where a record came from: enough to fence it and to report it as a batch item failure. */
export interface RecordCoordinates {
  topic: string;
  partition: number;
  offset: number;
}

/**
 * One event reduced to what demand needs: a booking, or a vehicle entering or leaving the AVAILABLE status
 * (supply).
 */
export interface DemandSignal extends RecordCoordinates {
  zoneId: string;
  /** UTC hour bucket, `YYYY-MM-DDTHH`. */
  hour: string;
  kind: SignalKind;
}

export type SignalKind = 'booked' | 'completed' | 'cancelled' | 'becameAvailable' | 'leftAvailable';
const SIGNAL_KINDS: readonly SignalKind[] = [
  'booked',
  'completed',
  'cancelled',
  'becameAvailable',
  'leftAvailable',
];

/**
 * The bucket of a zone's SUPPLY item: the vehicles available in the zone now, a running count. Supply is a
 * stock, not a flow: the hour items count vehicles becoming and leaving available in the hour, and this item
 * sums both over all hours (ADD becameAvailable - leftAvailable). The sum commutes, so partitions may apply in
 * any order and a rebuild reproduces it; each record is fenced into it exactly once, like the hour items.
 */
export const SUPPLY_ITEM = 'SUPPLY';

/** Bad input: names the field and the record so the failure path says what to fix. */
export class InvalidDemandEvent extends Error {
  override name = 'InvalidDemandEvent';
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly record: RecordCoordinates,
  ) {
    super(`${record.topic}-${record.partition}@${record.offset}: field "${field}" ${problem}`);
  }
}

const HOUR_MS = 3_600_000;

/** `YYYY-MM-DDTHH` (UTC) of an instant. */
export function hourBucket(epochMillis: number): string {
  return new Date(epochMillis).toISOString().slice(0, 13);
}

export function hourStart(bucket: string): number {
  return Date.parse(`${bucket}:00:00.000Z`);
}

export function addHours(bucket: string, hours: number): string {
  return hourBucket(hourStart(bucket) + hours * HOUR_MS);
}

/** The fence attribute of one topic-partition: the highest offset of it applied to an item. */
export function partitionKey(record: { topic: string; partition: number }): string {
  return `${record.topic}-${record.partition}`;
}

function timestampMillis(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value !== '') {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  return undefined;
}

const timeFieldByType: Record<BookingEventType, string> = {
  'booking.created': 'createdAt',
  'booking.completed': 'completedAt',
  'booking.cancelled': 'cancelledAt',
};

const kindByType: Record<BookingEventType, DemandSignal['kind']> = {
  'booking.created': 'booked',
  'booking.completed': 'completed',
  'booking.cancelled': 'cancelled',
};

function isBookingEventType(type: string): type is BookingEventType {
  return (BOOKING_EVENT_TYPES as readonly string[]).includes(type);
}

function knownZone(
  data: Record<string, unknown>,
  knownZones: ReadonlySet<string>,
  at: RecordCoordinates,
): string {
  const zoneId = data.zoneId;
  if (typeof zoneId !== 'string' || zoneId === '') {
    throw new InvalidDemandEvent('zoneId', 'is missing', at);
  }
  if (!knownZones.has(zoneId)) {
    throw new InvalidDemandEvent('zoneId', `"${zoneId}" is not a known zone (zones.json)`, at);
  }
  return zoneId;
}

/**
 * A vehicle.status.changed event as supply: becoming AVAILABLE adds a vehicle to its zone, leaving AVAILABLE
 * removes one; any other change (CHARGING -> MAINTENANCE) is no signal. Assumes what the fleet does: a vehicle
 * changes zone only while not available (ridden or serviced), so the zone of both transitions is its zone.
 */
function toSupplySignal(
  data: Record<string, unknown>,
  knownZones: ReadonlySet<string>,
  at: RecordCoordinates,
): DemandSignal | undefined {
  const status = data.status;
  const previous = data.previousStatus;
  if (typeof status !== 'string') throw new InvalidDemandEvent('status', 'is missing', at);
  if (typeof previous !== 'string') throw new InvalidDemandEvent('previousStatus', 'is missing', at);
  const kind =
    status === 'AVAILABLE' && previous !== 'AVAILABLE'
      ? 'becameAvailable'
      : previous === 'AVAILABLE' && status !== 'AVAILABLE'
        ? 'leftAvailable'
        : undefined;
  const zoneId = knownZone(data, knownZones, at);
  const changedAt = timestampMillis(data.changedAt);
  if (changedAt === undefined) throw new InvalidDemandEvent('changedAt', 'is missing or not a timestamp', at);
  return kind === undefined ? undefined : { ...at, zoneId, hour: hourBucket(changedAt), kind };
}

/**
 * Validates one decoded booking or vehicle status event and reduces it to a signal (undefined: a valid event
 * that changes nothing here). Throws InvalidDemandEvent naming the field for an unknown zone, a negative
 * duration or distance, or a missing timestamp.
 */
export function toDemandSignal(
  record: RecordCoordinates & { eventType: string; data: unknown },
  knownZones: ReadonlySet<string>,
): DemandSignal | undefined {
  const coordinates = { topic: record.topic, partition: record.partition, offset: record.offset };
  if (!isBookingEventType(record.eventType) && record.eventType !== VEHICLE_STATUS_CHANGED) {
    throw new InvalidDemandEvent(
      'type',
      `"${record.eventType}" is not a booking or vehicle status event`,
      coordinates,
    );
  }
  if (typeof record.data !== 'object' || record.data === null) {
    throw new InvalidDemandEvent('data', 'is missing (tombstone or empty value)', coordinates);
  }
  const data = record.data as Record<string, unknown>;
  if (!isBookingEventType(record.eventType)) return toSupplySignal(data, knownZones, coordinates);
  const zoneId = knownZone(data, knownZones, coordinates);
  if (record.eventType === 'booking.completed') {
    for (const field of ['durationSeconds', 'distanceMeters']) {
      const value = Number(data[field]);
      if (!Number.isFinite(value) || value < 0) {
        throw new InvalidDemandEvent(field, `must be a number >= 0, got ${String(data[field])}`, coordinates);
      }
    }
  }
  const timeField = timeFieldByType[record.eventType];
  const at = timestampMillis(data[timeField]);
  if (at === undefined) {
    throw new InvalidDemandEvent(timeField, 'is missing or not a timestamp', coordinates);
  }
  return { ...coordinates, zoneId, hour: hourBucket(at), kind: kindByType[record.eventType] };
}

/** The seasonal baseline of a zone for an hour, in milli-bookings (integer). */
export function baselineMilli(config: DemandModelConfig, zoneId: string, bucket: string): number {
  const zone = config.zones.find((z) => z.zoneId === zoneId);
  if (!zone) throw new Error(`Unknown zone ${zoneId}`);
  const start = new Date(hourStart(bucket));
  const day = start.getUTCDay();
  const shape = day === 0 || day === 6 ? config.hourOfDayShape.weekend : config.hourOfDayShape.weekday;
  const factor = shape[start.getUTCHours()] ?? 1;
  return Math.round(zone.baseBookingsPerHour * factor * 1000);
}

/** forecast(h+k) = interceptMilli + slopeMilli * bookings(h), all integers. */
export interface ForecastCoefficients {
  /** 1-based horizon: forecast for hour h + k. */
  k: number;
  interceptMilli: number;
  slopeMilli: number;
}

/** The coefficients A_k (intercept) and B_k (slope) of the forecasts written into the item of hour h. */
export function forecastCoefficients(
  config: DemandModelConfig,
  zoneId: string,
  bucket: string,
): ForecastCoefficients[] {
  const { horizonHours, trendWeight, trendDecay, priorBookings } = config.forecast;
  const baseNow = baselineMilli(config, zoneId, bucket) / 1000;
  const coefficients: ForecastCoefficients[] = [];
  for (let k = 1; k <= horizonHours; k++) {
    const baseAhead = baselineMilli(config, zoneId, addHours(bucket, k)) / 1000;
    const w = trendWeight * trendDecay ** (k - 1);
    const intercept = baseAhead * (1 - w) + (baseAhead * w * priorBookings) / (baseNow + priorBookings);
    const slope = (baseAhead * w) / (baseNow + priorBookings);
    coefficients.push({
      k,
      interceptMilli: Math.round(intercept * 1000),
      slopeMilli: Math.round(slope * 1000),
    });
  }
  return coefficients;
}

/** The forecast (milli-bookings) for h+k given n bookings so far in hour h. */
export function forecastMilli(coefficients: ForecastCoefficients, bookings: number): number {
  return coefficients.interceptMilli + coefficients.slopeMilli * bookings;
}

/** All records of one batch that touch one zone-hour (or the zone's SUPPLY item), summed: one write. */
export interface ZoneHourUpdate {
  zoneId: string;
  /** The hour bucket, or SUPPLY_ITEM for the zone's running supply count. */
  hour: string;
  booked: number;
  completed: number;
  cancelled: number;
  becameAvailable: number;
  leftAvailable: number;
  /** Empty for the SUPPLY item. */
  forecast: ForecastCoefficients[];
  /** The signals summed here, kept to fence per partition and to report failures. */
  signals: DemandSignal[];
}

export function zoneHourKey(zoneId: string, hour: string): string {
  return `${zoneId}|${hour}`;
}

function emptyUpdate(zoneId: string, hour: string, forecast: ForecastCoefficients[]): ZoneHourUpdate {
  return {
    zoneId,
    hour,
    booked: 0,
    completed: 0,
    cancelled: 0,
    becameAvailable: 0,
    leftAvailable: 0,
    forecast,
    signals: [],
  };
}

/**
 * Sums a batch per zone-hour; supply signals also go into their zone's SUPPLY item. Deterministic order: by
 * zone, then hour (SUPPLY after the hours).
 */
export function aggregateByZoneHour(signals: DemandSignal[], config: DemandModelConfig): ZoneHourUpdate[] {
  const updates = new Map<string, ZoneHourUpdate>();
  const add = (signal: DemandSignal, hour: string) => {
    const key = zoneHourKey(signal.zoneId, hour);
    let update = updates.get(key);
    if (!update) {
      const forecast = hour === SUPPLY_ITEM ? [] : forecastCoefficients(config, signal.zoneId, hour);
      update = emptyUpdate(signal.zoneId, hour, forecast);
      updates.set(key, update);
    }
    update[signal.kind] += 1;
    update.signals.push(signal);
  };
  for (const signal of signals) {
    add(signal, signal.hour);
    if (signal.kind === 'becameAvailable' || signal.kind === 'leftAvailable') add(signal, SUPPLY_ITEM);
  }
  return [...updates.values()].sort((a, b) =>
    a.zoneId === b.zoneId ? a.hour.localeCompare(b.hour) : a.zoneId.localeCompare(b.zoneId),
  );
}

/**
 * Keeps only the signals an item has not seen yet: per topic-partition, offsets above the item's fence.
 * Used when the optimistic write found a fence in the way (a redelivery overlapping what was applied).
 */
export function withoutApplied(
  update: ZoneHourUpdate,
  fences: Readonly<Record<string, number | undefined>>,
): ZoneHourUpdate {
  const signals = update.signals.filter((s) => {
    const fence = fences[partitionKey(s)];
    return fence === undefined || s.offset > fence;
  });
  const remaining: ZoneHourUpdate = { ...update, signals };
  for (const kind of SIGNAL_KINDS) remaining[kind] = signals.filter((s) => s.kind === kind).length;
  return remaining;
}

/** Per topic-partition, the lowest and highest offsets in an update: the fence check and the new fence. */
export function offsetRanges(update: ZoneHourUpdate): Map<string, { first: number; last: number }> {
  const ranges = new Map<string, { first: number; last: number }>();
  for (const signal of update.signals) {
    const key = partitionKey(signal);
    const range = ranges.get(key);
    if (!range) ranges.set(key, { first: signal.offset, last: signal.offset });
    else {
      range.first = Math.min(range.first, signal.offset);
      range.last = Math.max(range.last, signal.offset);
    }
  }
  return new Map([...ranges.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
