import type { ZoneHourUpdate } from './demand-model';

/** Demand of one zone in one hour, as the read side sees it. */
export interface ZoneHourDemand {
  zoneId: string;
  /** `YYYY-MM-DDTHH` (UTC). */
  hour: string;
  booked: number;
  completed: number;
  cancelled: number;
  /** Forecast bookings for the next hours, in milli-bookings: [h+1, h+2, ...]. */
  forecastMilli: number[];
}

export interface ZoneForecast {
  zoneId: string;
  /** The hour being forecast. */
  hour: string;
  forecastMilli: number;
}

export type ApplyStatus = 'APPLIED' | 'ALREADY_APPLIED' | 'FAILED';

export interface ApplyOutcome {
  update: ZoneHourUpdate;
  status: ApplyStatus;
  error?: unknown;
}

/**
 * The demand read model (CQRS query side). `apply` writes each zone-hour update exactly once per record even
 * when a batch is redelivered: implementations fence per topic-partition inside the item.
 */
export interface DemandReadModel {
  apply(updates: ZoneHourUpdate[]): Promise<ApplyOutcome[]>;
  /** Current demand and forecast of one zone: the hour buckets from `fromHour` to `toHour` inclusive. */
  zoneDemand(zoneId: string, fromHour: string, toHour: string): Promise<ZoneHourDemand[]>;
  /** The busiest zones forecast for `hour` (the next hour), highest first. */
  topZones(hour: string, limit: number): Promise<ZoneForecast[]>;
}
