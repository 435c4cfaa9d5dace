/**
 * Ride pricing in integer minor units (cents). No floating point anywhere: every intermediate value is an
 * integer, and the one division (metres to kilometres) rounds half up in integer arithmetic.
 *
 *   billed minutes  = ceil(durationSeconds / 60)              (every started minute is billed)
 *   time charge     = billed minutes x perMinuteMinor
 *   distance charge = round_half_up(distanceMeters x perKmMinor / 1000)
 *   subtotal        = unlockFeeMinor + time charge + distance charge
 *   total           = max(subtotal, minimumFareMinor)          (the difference is a "minimum fare" line)
 */

export interface VehicleTariff {
  unlockFeeMinor: number;
  perMinuteMinor: number;
  perKmMinor: number;
  minimumFareMinor: number;
}

export interface TariffTable {
  tariffVersion: string;
  currency: string;
  vehicleTypes: Record<string, VehicleTariff>;
}

export interface Ride {
  vehicleType: string;
  durationSeconds: number;
  distanceMeters: number;
}

export type InvoiceLineCode = 'UNLOCK' | 'TIME' | 'DISTANCE' | 'MINIMUM_FARE';

export interface InvoiceLine {
  code: InvoiceLineCode;
  /** Minutes for TIME, metres for DISTANCE, 1 otherwise. */
  quantity: number;
  amountMinor: number;
}

export interface Price {
  currency: string;
  tariffVersion: string;
  lines: InvoiceLine[];
  totalMinor: number;
}

export class PricingError extends Error {
  override name = 'PricingError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`field "${field}" ${problem}`);
  }
}

function nonNegativeInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PricingError(field, `must be an integer >= 0, got ${value}`);
  }
}

export function priceRide(ride: Ride, tariffs: TariffTable): Price {
  const tariff = tariffs.vehicleTypes[ride.vehicleType];
  if (!tariff) {
    throw new PricingError(
      'vehicleType',
      `"${ride.vehicleType}" has no tariff (tariffs.json ${tariffs.tariffVersion})`,
    );
  }
  nonNegativeInteger('durationSeconds', ride.durationSeconds);
  nonNegativeInteger('distanceMeters', ride.distanceMeters);

  const minutes = Math.ceil(ride.durationSeconds / 60);
  const lines: InvoiceLine[] = [
    { code: 'UNLOCK', quantity: 1, amountMinor: tariff.unlockFeeMinor },
    { code: 'TIME', quantity: minutes, amountMinor: minutes * tariff.perMinuteMinor },
  ];
  if (tariff.perKmMinor > 0) {
    const distanceMinor = Math.floor((ride.distanceMeters * tariff.perKmMinor + 500) / 1000);
    lines.push({ code: 'DISTANCE', quantity: ride.distanceMeters, amountMinor: distanceMinor });
  }
  const subtotal = lines.reduce((sum, line) => sum + line.amountMinor, 0);
  if (subtotal < tariff.minimumFareMinor) {
    lines.push({ code: 'MINIMUM_FARE', quantity: 1, amountMinor: tariff.minimumFareMinor - subtotal });
  }
  const totalMinor = Math.max(subtotal, tariff.minimumFareMinor);
  for (const line of lines) nonNegativeInteger(`lines.${line.code}`, line.amountMinor);
  return { currency: tariffs.currency, tariffVersion: tariffs.tariffVersion, lines, totalMinor };
}

/** 1234 EUR minor units -> "12.34 EUR", for logs and statements; never used in arithmetic. */
export function formatMinor(amountMinor: number, currency: string): string {
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')} ${currency}`;
}
