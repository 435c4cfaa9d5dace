/**
 * The one classification of errors met while processing a batch:
 * - batch-level: nobody's record is at fault (configuration, a schema registry or database or AWS service that
 *   cannot be reached, throttling, timeouts). The invocation fails and the ESM retries the whole batch; sending
 *   records to the failure destination for it would lose good records.
 * - record-level: the record's own data is at fault (it does not decode, breaks a bound, or a store refuses what
 *   it holds). Only that record (and, for ordered processing, its successors in the partition) is reported.
 * Anything not recognised as batch-level is record-level: an unexpected RangeError or TypeError arising from a
 * record's data must cost that record, not the batch.
 */
import { ConfigurationError } from '../config';

/** Base class of errors that must fail the whole invocation. */
export class BatchLevelError extends Error {
  override name = 'BatchLevelError';
}

/** The schema registry could not be asked (network, throttling): the record is not at fault. */
export class SchemaRegistryUnavailableError extends BatchLevelError {
  override name = 'SchemaRegistryUnavailableError';
}

/** SQLSTATE shape (class of two characters, then three): never matches Node's EPIPE-style codes. */
const SQLSTATE = /^(?:[0-5][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/;

/**
 * SQLSTATE classes caused by the data sent: 22 data exception (bad timestamp, invalid text for jsonb), 23
 * integrity constraint, 54 program limit exceeded (54000: an index row larger than a B-tree page allows),
 * P0 raised by PL/pgSQL. Retrying the same records fails the same way.
 */
const RECORD_LEVEL_SQLSTATE = /^(?:22|23|54|P0)/;

/** True for a PostgreSQL error the data caused; any other database error (or no SQLSTATE) is not. */
export function isRecordLevelDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) && RECORD_LEVEL_SQLSTATE.test(code);
}

/** Node and undici network error codes: the connection, not the record. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ESOCKETTIMEDOUT',
]);

/** AWS error names that are about the service, the account or the configuration, never about a record. */
const AWS_BATCH_LEVEL_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'ExpiredTokenException',
  'ResourceNotFoundException',
  'ModelNotReadyException',
]);

/** Names of errors raised by timeouts and aborts, and by Powertools when its persistence store fails. */
const BATCH_LEVEL_NAMES = new Set(['TimeoutError', 'AbortError', 'IdempotencyPersistenceLayerError']);

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
}

/** True when the error must fail the whole invocation (the batch is retried), false when it is the record's. */
export function isBatchLevelError(error: unknown, depth = 0): boolean {
  if (error instanceof BatchLevelError || error instanceof ConfigurationError) return true;
  if (typeof error !== 'object' || error === null) return false;
  const fields = error as ErrorFields;
  const { code, name } = fields;
  if (typeof code === 'string') {
    if (SQLSTATE.test(code)) return !RECORD_LEVEL_SQLSTATE.test(code);
    if (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_')) return true;
  }
  if (typeof name === 'string' && BATCH_LEVEL_NAMES.has(name)) return true;
  if (fields.$metadata !== undefined) {
    if (fields.$fault === 'server' || fields.$retryable !== undefined) return true;
    if (typeof name === 'string' && AWS_BATCH_LEVEL_NAMES.has(name)) return true;
  }
  // A wrapper (Powertools, AggregateError-like) around an infrastructure failure.
  return depth < 3 && fields.cause !== undefined && isBatchLevelError(fields.cause, depth + 1);
}

/** The complement of isBatchLevelError: what fails the record (and its successors), not the batch. */
export function isRecordLevelError(error: unknown): boolean {
  return !isBatchLevelError(error);
}
