/**
 * A time as an ISO 8601 instant: a Date, epoch milliseconds (number or bigint) or a string Date.parse reads.
 * Undefined for anything else, including times outside what a Date holds (Date#toISOString would throw a
 * RangeError that names no field), so callers can say which field was wrong.
 */
export function isoInstant(value: unknown): string | undefined {
  let millis: number;
  if (value instanceof Date) millis = value.getTime();
  else if (typeof value === 'number') millis = value;
  else if (typeof value === 'bigint') millis = Number(value);
  else if (typeof value === 'string' && value !== '') millis = Date.parse(value);
  else return undefined;
  const date = new Date(millis);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
