import {
  IdempotencyAlreadyInProgressError,
  IdempotencyRecordStatus,
  IdempotencyValidationError,
} from '@aws-lambda-powertools/idempotency';

/**
 * A key came back with a payload other than the one its stored outcome was computed for (Powertools'
 * `payloadValidationJmesPath`). A record error: the record fails alone, with this message, instead of being
 * answered silently with the outcome of a different event.
 */
export class IdempotencyPayloadMismatchError extends Error {
  override name = 'IdempotencyPayloadMismatchError';
}

export interface IdempotentCallFallbacks<T> {
  /**
   * The key's record is INPROGRESS: an invocation that was killed or timed out left it (the ESM has one batch of a
   * partition in flight at a time, and every key here lives in one partition). Powertools would refuse the record
   * until that invocation's deadline, the ESM's retries would run out first and a valid record would land in the
   * failure destination, so the caller does the work without Powertools' guard.
   */
  inProgress: () => Promise<T>;
  /** The message of the record failure when the payload differs; `stored` is the stored outcome, if completed. */
  mismatch: (stored: T | undefined) => string;
}

/**
 * Calls a `makeIdempotent` function and handles its two answers that need more than a replay: a
 * stale INPROGRESS record (`fallbacks.inProgress`) and a payload mismatch (IdempotencyPayloadMismatchError).
 * A record stored before payload validation was configured has no hash to compare: it answers as it did before.
 */
export async function callIdempotent<T>(
  call: () => Promise<T>,
  fallbacks: IdempotentCallFallbacks<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof IdempotencyAlreadyInProgressError) return fallbacks.inProgress();
    if (!(error instanceof IdempotencyValidationError)) throw error;
    const stored = error.existingRecord;
    const status = stored?.getStatus();
    const completed = status === IdempotencyRecordStatus.COMPLETED;
    if (stored && !stored.payloadHash) {
      if (completed) return stored.getResponse() as T;
      if (status === IdempotencyRecordStatus.INPROGRESS) return fallbacks.inProgress();
    }
    throw new IdempotencyPayloadMismatchError(
      fallbacks.mismatch(completed ? (stored?.getResponse() as T) : undefined),
      { cause: error },
    );
  }
}
