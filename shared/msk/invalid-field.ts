import type { RecordCoordinates } from './decode';

/**
 * Bad input in a decoded record: names the field, what is wrong with it and the record, so the failure path says
 * what to fix. It goes to the failure path and is never retried into success. A function subclasses it only to
 * name the error after its events (InvalidBillingEvent).
 */
export class InvalidFieldError extends Error {
  override name = 'InvalidFieldError';
  constructor(
    readonly field: string,
    readonly problem: string,
    readonly record: RecordCoordinates,
  ) {
    super(`${record.topic}-${record.partition}@${record.offset}: field "${field}" ${problem}`);
  }
}

/**
 * Identifiers and short text from a payload end up in store keys and items (DynamoDB refuses a partition key over
 * 2,048 bytes, a sort key over 1,024, and then the whole batched request, not the one item): bounded well below.
 */
export const MAX_TEXT_BYTES = 512;

/** What is wrong with a payload string's length ("is N bytes, the limit is M"), or undefined when it fits. */
export function textLengthProblem(value: string, maxBytes = MAX_TEXT_BYTES): string | undefined {
  // UTF-8 is at most 3 bytes per UTF-16 unit: most strings are decided without encoding them.
  if (value.length * 3 <= maxBytes) return undefined;
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > maxBytes ? `is ${bytes} bytes, the limit is ${maxBytes}` : undefined;
}
