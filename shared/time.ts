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

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** The number written by `count` ASCII digits at `at`, or -1 when one of them is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const code = text.charCodeAt(i) - 48;
    if (code < 0 || code > 9) return -1;
    value = value * 10 + code;
  }
  return value;
}

/**
 * Epoch milliseconds of an RFC 3339 date-time (section 5.6: `T` separator, seconds required, `Z` or a numeric
 * offset), or undefined when the text is not one or falls outside years 0001-9999 once the offset is applied.
 * Parsed by hand, without Date.UTC (which maps years 0-99 to 1900-1999) and without a regular expression (this
 * runs for every record's ce_time). A leap second (`:60`) is refused: neither JavaScript nor PostgreSQL can hold
 * it. Fractions beyond milliseconds are truncated; at most 9 fraction digits.
 */
export function parseRfc3339(text: string): number | undefined {
  const length = text.length;
  if (length < 20 || length > 35) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const t = text.charCodeAt(10);
  if (
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    (t !== 84 && t !== 116) ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58
  ) {
    return undefined;
  }
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59) {
    return undefined;
  }
  if (second < 0 || second > 59) return undefined;
  const monthDays = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > monthDays) return undefined;
  let at = 19;
  let millis = 0;
  if (text.charCodeAt(at) === 46) {
    const start = ++at;
    while (at < length && at - start < 9) {
      const code = text.charCodeAt(at) - 48;
      if (code < 0 || code > 9) break;
      if (at - start < 3) millis += code * 10 ** (2 - (at - start));
      at++;
    }
    if (at === start) return undefined;
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(at);
  if (zone === 90 || zone === 122) {
    if (at + 1 !== length) return undefined;
  } else if (zone === 43 || zone === 45) {
    const offsetHour = digits(text, at + 1, 2);
    const offsetMinute = digits(text, at + 4, 2);
    if (at + 6 !== length || text.charCodeAt(at + 3) !== 58) return undefined;
    if (offsetHour < 0 || offsetHour > 23 || offsetMinute < 0 || offsetMinute > 59) return undefined;
    offsetMinutes = (zone === 45 ? -1 : 1) * (offsetHour * 60 + offsetMinute);
  } else {
    return undefined;
  }
  const result =
    daysFromCivil(year, month, day) * 86_400_000 +
    ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 +
    millis;
  return isTimeInRange(result) ? result : undefined;
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
