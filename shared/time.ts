/**
 * Times as the project accepts them: instants between 0001-01-01 and 9999-12-31 (UTC). Years outside that
 * range have no 4-digit RFC 3339 form, PostgreSQL's timestamptz and ISO strings disagree on them, and
 * Date#toISOString writes `+010000-...`, which sorts and buckets wrongly. Every time read from a record (ce_time,
 * the Kafka timestamp, payload timestamps) is checked against this one range.
 */

/** 0001-01-01T00:00:00.000Z in epoch milliseconds. */
export const MIN_TIME_MS = -62_135_596_800_000;
/** 9999-12-31T23:59:59.999Z in epoch milliseconds. */
export const MAX_TIME_MS = 253_402_300_799_999;

/** True for epoch milliseconds that are an integer within [MIN_TIME_MS, MAX_TIME_MS]. */
export function isTimeInRange(millis: number): boolean {
  return Number.isInteger(millis) && millis >= MIN_TIME_MS && millis <= MAX_TIME_MS;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * Epoch milliseconds of an RFC 3339 date-time (section 5.6: `T` separator, seconds required, `Z` or a numeric
 * offset), or undefined when the text is not one or falls outside years 0001-9999 once the offset is applied.
 * Checked by hand rather than with Date.UTC, which maps years 0-99 to 1900-1999. A leap second (`:60`) is
 * refused: neither JavaScript nor PostgreSQL can hold it. Fractions beyond milliseconds are truncated.
 */
export function parseRfc3339(text: string): number | undefined {
  if (text.length > 40) return undefined;
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = Number(match[6]);
  if (year < 1 || month < 1 || month > 12 || day < 1) return undefined;
  const monthDays = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > monthDays || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (match[8] === undefined) {
    const offsetHour = Number(match[10]);
    const offsetMinute = Number(match[11]);
    if (offsetHour > 23 || offsetMinute > 59) return undefined;
    offsetMinutes = (match[9] === '-' ? -1 : 1) * (offsetHour * 60 + offsetMinute);
  }
  const fraction = match[7] === undefined ? 0 : Math.floor(Number(`0${match[7]}`) * 1000);
  // setUTCFullYear takes the year literally (no 1900 mapping).
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, fraction);
  const millis = date.getTime();
  return isTimeInRange(millis) ? millis : undefined;
}

/**
 * A time as an ISO 8601 instant: a Date, epoch milliseconds (number or bigint) or an RFC 3339 string.
 * Undefined for anything else, including times outside years 0001-9999, so callers can say which field was wrong
 * (Date#toISOString would throw a RangeError that names no field, or write a 6-digit year).
 */
export function isoInstant(value: unknown): string | undefined {
  let millis: number | undefined;
  if (value instanceof Date) millis = value.getTime();
  else if (typeof value === 'number') millis = value;
  else if (typeof value === 'bigint') millis = Number(value);
  else if (typeof value === 'string') millis = parseRfc3339(value);
  if (millis === undefined || !isTimeInRange(millis)) return undefined;
  return new Date(millis).toISOString();
}
