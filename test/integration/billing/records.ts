import type { KafkaEventRecord } from '../../../shared/msk';
import { avroRecord } from '../../support/msk-records';

/** When the billing tests' rides end and their records were written. */
export const T0 = Date.parse('2026-11-23T10:00:00Z');
export const point = { lat: 52.52, lon: 13.405 };

/** A billing input (booking.completed, payment.*) as producers send it: keyed and subjected by its booking. */
export function billingRecord(
  type: string,
  partition: number,
  offset: number,
  id: string,
  data: Record<string, unknown>,
): KafkaEventRecord {
  const key = data.bookingId as string;
  return avroRecord({
    topic: type,
    partition,
    offset,
    timestamp: T0,
    key,
    id,
    source: 'urn:mobility:test',
    data,
  });
}
