import type { ZoneHourUpdate } from './demand-model';

/** Demand of one zone in one hour, as the read side sees it. */
export interface ZoneHourDemand {
  zoneId: string;
  /** `YYYY-MM-DDTHH` (UTC). */
  hour: string;
  booked: number;
  completed: number;
  cancelled: number;
  /** Vehicles that became available in the zone during the hour, and that stopped being available. */
  becameAvailable: number;
  leftAvailable: number;
  /** Forecast bookings for the next hours, in milli-bookings: [h+1, h+2, ...]. */
  forecastMilli: number[];
}

export interface ZoneForecast {
  zoneId: string;
  /** The hour being forecast. */
  hour: string;
  forecastMilli: number;
}

/** Supply next to demand for one zone: vehicles available now against the forecast for the hour after `hour`. */
export interface SupplyAndDemand {
  zoneId: string;
  hour: string;
  availableVehicles: number;
  /** forecast1Milli of the zone-hour item of `hour`; null when the hour has no item yet. */
  forecastNextHourMilli: number | null;
  /** availableVehicles / forecast bookings of the next hour, 3 decimals; null without a forecast. */
  supplyDemandRatio: number | null;
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
  /** Vehicles available in the zone now, next to the forecast demand: the supply-demand ratio. */
  supplyAndDemand(zoneId: string, hour: string): Promise<SupplyAndDemand>;
  /** The busiest zones forecast for `hour` (the next hour), highest first. */
  topZones(hour: string, limit: number): Promise<ZoneForecast[]>;
}
