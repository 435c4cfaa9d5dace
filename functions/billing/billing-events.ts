import type { RecordCoordinates } from '../../shared/msk/decode';
import { InvalidFieldError, textLengthProblem } from '../../shared/msk/invalid-field';
import { isoInstant } from '../../shared/time';
import { type Price, PricingError, priceRide, type TariffTable } from './pricing';

/** A completed ride, priced: everything the invoice needs. */
export interface RideCompleted {
  kind: 'RIDE_COMPLETED';
  /** CloudEvents source and id: the event's identity (an id is unique only within its source). */
  eventSource: string;
  eventId: string;
  bookingId: string;
  customerId: string;
  vehicleType: string;
  zoneId: string;
  durationSeconds: number;
  distanceMeters: number;
  completedAt: string;
  price: Price;
}

export type PaymentOutcome = 'SUCCEEDED' | 'FAILED';

export interface PaymentReported {
  kind: 'PAYMENT';
  eventSource: string;
  eventId: string;
  outcome: PaymentOutcome;
  paymentId: string;
  bookingId: string;
  customerId: string;
  amountMinor: number;
  currency: string;
  at: string;
  failureCode?: string;
}

export type BillingCommand = RideCompleted | PaymentReported;

/** Bad input in a billing event: names the field and the record (the message format is InvalidFieldError's). */
export class InvalidBillingEvent extends InvalidFieldError {
  override name = 'InvalidBillingEvent';
}

/** Validates a decoded billing event and turns it into a command; prices rides from the tariff table. */
export function toBillingCommand(
  record: RecordCoordinates & { eventSource: string; eventId: string; eventType: string; data: unknown },
  tariffs: TariffTable,
): BillingCommand {
  const where = { topic: record.topic, partition: record.partition, offset: record.offset };
  const invalid = (field: string, problem: string) => new InvalidBillingEvent(field, problem, where);
  if (typeof record.data !== 'object' || record.data === null)
    throw invalid('data', 'is missing (tombstone?)');
  const data = record.data as Record<string, unknown>;
  const text = (field: string): string => {
    const value = data[field];
    if (typeof value !== 'string' || value === '') throw invalid(field, 'is missing');
    const tooLong = textLengthProblem(value);
    if (tooLong) throw invalid(field, tooLong);
    return value;
  };
  const time = (field: string): string => {
    const value = isoInstant(data[field]);
    if (value === undefined) throw invalid(field, 'is missing or not a timestamp');
    return value;
  };

  if (record.eventType === 'booking.completed') {
    const currency = text('currency');
    if (currency !== tariffs.currency) {
      throw invalid('currency', `"${currency}" differs from the tariff currency ${tariffs.currency}`);
    }
    const ride = {
      vehicleType: text('vehicleType'),
      durationSeconds: Number(data.durationSeconds),
      distanceMeters: Number(data.distanceMeters),
    };
    let price: Price;
    try {
      price = priceRide(ride, tariffs);
    } catch (error) {
      if (error instanceof PricingError)
        throw invalid(error.field, error.message.replace(/^field "[^"]+" /, ''));
      throw error;
    }
    return {
      kind: 'RIDE_COMPLETED',
      eventSource: record.eventSource,
      eventId: record.eventId,
      bookingId: text('bookingId'),
      customerId: text('customerId'),
      zoneId: text('zoneId'),
      ...ride,
      completedAt: time('completedAt'),
      price,
    };
  }

  if (record.eventType === 'payment.succeeded' || record.eventType === 'payment.failed') {
    const amount = data.amount as Record<string, unknown> | undefined;
    if (typeof amount !== 'object' || amount === null) throw invalid('amount', 'is missing');
    const amountMinor = Number(amount.amountMinor);
    if (!Number.isSafeInteger(amountMinor) || amountMinor < 0) {
      throw invalid(
        'amount.amountMinor',
        `must be an integer >= 0 (minor units), got ${String(amount.amountMinor)}`,
      );
    }
    const currency = amount.currency;
    if (currency !== tariffs.currency) {
      throw invalid(
        'amount.currency',
        `"${String(currency)}" differs from the billing currency ${tariffs.currency}`,
      );
    }
    const succeeded = record.eventType === 'payment.succeeded';
    const command: PaymentReported = {
      kind: 'PAYMENT',
      eventSource: record.eventSource,
      eventId: record.eventId,
      outcome: succeeded ? 'SUCCEEDED' : 'FAILED',
      paymentId: text('paymentId'),
      bookingId: text('bookingId'),
      customerId: text('customerId'),
      amountMinor,
      currency: tariffs.currency,
      at: time(succeeded ? 'succeededAt' : 'failedAt'),
    };
    if (!succeeded) command.failureCode = text('failureCode');
    return command;
  }
  throw invalid('type', `"${record.eventType}" is not a billing event`);
}
