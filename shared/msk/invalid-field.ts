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
