import { textLengthProblem } from '../../shared/msk/invalid-field';
import { isoInstant } from '../../shared/time';
import type { TemplateName } from './templates';

/** A consumed event, decoded: topic, CloudEvents source, id and time, and the Avro/JSON data. */
export interface ConsumedEvent {
  topic: string;
  /** CloudEvents source: with the id, what identifies the event (the id alone is unique per source only). */
  source: string;
  id: string;
  time: string;
  data: unknown;
}

export type RecipientKind = 'OPERATIONS_ONCALL' | 'REVIEWERS' | 'CUSTOMER';

/** Who is told: a role (on-call, reviewers) or one customer. `id` is stable, part of the notification's key. */
export interface Recipient {
  kind: RecipientKind;
  id: string;
}

/** How a person is reached: PAGER (on-call paging), EMAIL (a mailbox), PUSH (the customer's app). */
export type ChannelKind = 'PAGER' | 'EMAIL' | 'PUSH';

export interface NotificationIntent {
  recipient: Recipient;
  channel: ChannelKind;
  template: TemplateName;
  values: Record<string, string>;
}

export class InvalidNotificationEventError extends Error {
  override name = 'InvalidNotificationEventError';
}

type Fields = Record<string, unknown>;

/** Reads a field as text, unwrapping Avro unions ({"string": "x"}) and stringifying numbers. */
function field(data: Fields, name: string): string | undefined {
  let value = data[name];
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 1) value = entries[0]?.[1];
  }
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

function required(event: ConsumedEvent, data: Fields, ...names: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const value = field(data, name);
    if (value === undefined) missing.push(name);
    else values[name] = value;
  }
  if (missing.length > 0) {
    throw new InvalidNotificationEventError(`${event.topic} ${event.id} lacks ${missing.join(', ')}`);
  }
  // Identifiers go into log keys and messages sent 10 to a PublishBatch call, which one oversized entry fails whole.
  for (const [name, value] of Object.entries(values)) {
    const tooLong = textLengthProblem(value);
    if (tooLong) throw new InvalidNotificationEventError(`${event.topic} ${event.id}: ${name} ${tooLong}`);
  }
  return values;
}

/** Formats integer minor units (cents) for a person; never goes through floating-point arithmetic on money. */
export function formatMinorUnits(amountMinor: string, currency: string): string {
  const minor = BigInt(amountMinor);
  const digits =
    new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  const scale = 10n ** BigInt(digits);
  const negative = minor < 0n;
  const absolute = negative ? -minor : minor;
  const whole = absolute / scale;
  const fraction = (absolute % scale).toString().padStart(digits, '0');
  return `${negative ? '-' : ''}${whole}${digits > 0 ? `.${fraction}` : ''} ${currency}`;
}

/** payment.failed carries `amount: {amountMinor, currency}` (schemas/payment.failed.v1.avsc). */
function amountText(data: Fields): string {
  const money = (typeof data.amount === 'object' && data.amount !== null ? data.amount : data) as Fields;
  const currency = field(money, 'currency') ?? 'EUR';
  const minor = field(money, 'amountMinor');
  return minor !== undefined && /^-?\d+$/.test(minor) ? formatMinorUnits(minor, currency) : 'the amount due';
}

/**
 * Who must be told what about an event, through which channel, with which template. Pure: the same event
 * always yields the same intents, so the (source, event id, recipient) key is stable across retries.
 */
export function decideNotifications(event: ConsumedEvent): NotificationIntent[] {
  const data = (typeof event.data === 'object' && event.data !== null ? event.data : {}) as Fields;
  switch (event.topic) {
    case 'incident.detected': {
      if (field(data, 'severity') !== 'CRITICAL') return [];
      const values = required(event, data, 'incidentId', 'vehicleId', 'anomalyType');
      const location = (
        typeof data.location === 'object' && data.location !== null ? data.location : {}
      ) as Fields;
      return [
        {
          recipient: { kind: 'OPERATIONS_ONCALL', id: 'operations-oncall' },
          channel: 'PAGER',
          template: 'incident-critical-oncall',
          values: {
            ...values,
            detectedAt: isoInstant(data.detectedAt) ?? event.time,
            lat: field(location, 'lat') ?? field(location, 'latitude') ?? '?',
            lon: field(location, 'lon') ?? field(location, 'longitude') ?? '?',
          },
        },
      ];
    }
    case 'genai.hitl.requested': {
      const values = required(event, data, 'reviewId', 'incidentId');
      return [
        {
          recipient: { kind: 'REVIEWERS', id: 'incident-reviewers' },
          channel: 'EMAIL',
          template: 'hitl-review-requested',
          values: { ...values, reason: field(data, 'reason') ?? 'review requested' },
        },
      ];
    }
    case 'payment.failed': {
      const values = required(event, data, 'customerId', 'bookingId');
      return [
        {
          recipient: { kind: 'CUSTOMER', id: `customer-${values.customerId}` },
          channel: 'PUSH',
          template: 'payment-failed-customer',
          values: {
            ...values,
            amount: amountText(data),
            failureReason:
              field(data, 'failureMessage') ?? field(data, 'failureCode') ?? 'the payment was declined',
          },
        },
      ];
    }
    case 'booking.created': {
      const values = required(event, data, 'customerId', 'bookingId', 'vehicleId');
      return [
        {
          recipient: { kind: 'CUSTOMER', id: `customer-${values.customerId}` },
          channel: 'PUSH',
          template: 'booking-confirmed-customer',
          values,
        },
      ];
    }
    default:
      return [];
  }
}
