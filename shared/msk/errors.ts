/**
 * The one classification of errors met while processing a batch (the engine's defaults, audit's store, decode):
 * - batch-level (`isBatchLevelError`): nobody's record is at fault (configuration, a schema registry or
 *   database or AWS service that cannot be reached or refuses us, throttling, timeouts). Never a record failure:
 *   the invocation fails and the ESM retries the whole batch; sending records to the failure destination for it
 *   would lose good records.
 * - transient (`isStoreOutage`, a subset of batch-level): an outage that goes away by itself (connection refused
 *   or cut, timeouts, throttling, 5xx, a store shutting down or overloaded, a lock another invocation holds). The
 *   engine retries these inside the invocation until little time is left, then fails the invocation, so an
 *   outage does not spend the records' few ESM retries within seconds.
 * - record-level: everything else. The record's own data is at fault (it does not decode, breaks a bound, or a
 *   store refuses what it holds); only that record (and, for ordered processing, its successors) is reported.
 *   An unexpected RangeError or TypeError arising from a record's data must cost that record, not the batch.
 *
 * Batch-level but not transient: access denied, expired or unknown credentials, a missing table or model, a
 * name that does not resolve, a database object or privilege missing. Waiting does not fix these, a deploy does:
 * retrying them inside the invocation for minutes would only hold the partition and bill the time. Failing at
 * once lets the ESM retry the batch (a credential refresh or a finished deploy may fix it) and puts the error in
 * front of an operator quickly; the records keep their place and can be redriven.
 */
import { ConfigurationError } from '../config';

/** Base class of errors that must fail the whole invocation. */
export class BatchLevelError extends Error {
  override name = 'BatchLevelError';
}

/**
 * The schema registry could not be asked: the record is not at fault. Transient when its `cause` is (Glue
 * unreachable or throttling), not when Glue refuses us (access denied).
 */
export class SchemaRegistryUnavailableError extends BatchLevelError {
  override name = 'SchemaRegistryUnavailableError';
}

/**
 * A transient failure without the SDK's `$metadata` to tell it: a service that answered the call but not this item
 * (throttled or failed on its side, in a batch API's per-entry result: SNS PublishBatch, SES SendBulkEmail), or a
 * send that had to stop because its lease was running out. Retried inside the invocation like any outage, never
 * the record's failure.
 */
export class ServiceUnavailableError extends BatchLevelError {
  override name = 'ServiceUnavailableError';
}

/** SQLSTATE shape (class of two characters, then three): never matches Node's EPIPE-style codes. */
const SQLSTATE = /^(?:[0-5][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/;

/**
 * SQLSTATE classes caused by the data sent: 22 data exception (bad timestamp, invalid text for jsonb), 23
 * integrity constraint, 54 program limit exceeded (54000: an index row larger than a B-tree page allows),
 * P0 raised by PL/pgSQL. Retrying the same records fails the same way.
 */
const RECORD_LEVEL_SQLSTATE = /^(?:22|23|54|P0)/;

/**
 * SQLSTATEs of a server that is going away or overloaded, or of a transaction that lost a race and succeeds when
 * run again: 08 connection exception, 53 insufficient resources, 57P01-57P03 shutdown / cannot connect now,
 * 40001 serialization failure, 40P01 deadlock. Any other SQLSTATE outside RECORD_LEVEL_SQLSTATE (42501 missing
 * privilege, 42P01 missing table, 57014 statement timeout...) is batch-level but not retried in the invocation.
 */
const TRANSIENT_SQLSTATE = /^(?:08|53|57P0[123]$|40001$|40P01$)/;

/** True for a PostgreSQL error the data caused; any other database error (or no SQLSTATE) is not. */
export function isRecordLevelDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) && RECORD_LEVEL_SQLSTATE.test(code);
}

/** Node, undici and Kafka client socket errors that mean "the other side is not there (now)". */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // @platformatic/kafka (incident-explanation's producer): broker unreachable or not answering.
  'PLT_KFK_NETWORK',
  'PLT_KFK_TIMEOUT',
]);

/**
 * Error names for throttling, timeouts and server-side failures (DynamoDB, S3, Glue, Bedrock, SDK timeouts),
 * matched with or without AWS `$metadata`.
 */
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ModelNotReadyException',
]);

/**
 * AWS error names about the account or the configuration (see the module comment for why not transient); only
 * with AWS `$metadata`, so an error of ours that happens to share a name is not taken for one.
 */
const AWS_BATCH_LEVEL_NAMES = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'ExpiredTokenException',
  'ResourceNotFoundException',
  // An endpoint that does not run the operation (AWS_ENDPOINT_URL_* at a stand-in without it), or requests it
  // cannot authenticate: the deployment's, not a record's.
  'UnknownOperationException',
  'MissingAuthenticationTokenException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
]);

/** Names of aborts. */
const BATCH_LEVEL_NAMES = new Set(['AbortError']);

/** node-postgres reports a lost or refused connection by message only. */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused)/;

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $fault?: unknown;
  $retryable?: unknown;
}

/**
 * True when the error, or an error it wraps (`cause`, AggregateError `errors`), is a store or transport outage
 * worth retrying inside the invocation.
 */
export function isStoreOutage(error: unknown): boolean {
  return someInChain(error, isOutageItself, 0);
}

/** True when the error must fail the whole invocation (the batch is retried), false when it is the record's. */
export function isBatchLevelError(error: unknown): boolean {
  return someInChain(error, isBatchLevelItself, 0);
}

/** The complement of isBatchLevelError: what fails the record (and its successors), not the batch. */
export function isRecordLevelError(error: unknown): boolean {
  return !isBatchLevelError(error);
}

function someInChain(error: unknown, test: (error: object) => boolean, depth: number): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if (test(error)) return true;
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  if (cause !== undefined && someInChain(cause, test, depth + 1)) return true;
  return Array.isArray(errors) && errors.some((inner) => someInChain(inner, test, depth + 1));
}

function isOutageItself(error: object): boolean {
  if (error instanceof ServiceUnavailableError) return true;
  const { code, name, message, $metadata, $fault, $retryable } = error as ErrorFields;
  if (typeof code === 'string') {
    if (TRANSIENT_NETWORK_CODES.has(code)) return true;
    if (SQLSTATE.test(code) && TRANSIENT_SQLSTATE.test(code)) return true;
  }
  if (typeof name === 'string' && TRANSIENT_NAMES.has(name)) return true;
  if ($metadata !== undefined && ($fault === 'server' || $retryable !== undefined)) return true;
  const status = $metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  return typeof message === 'string' && PG_CONNECTION_MESSAGE.test(message);
}

function isBatchLevelItself(error: object): boolean {
  if (error instanceof BatchLevelError || error instanceof ConfigurationError) return true;
  if (isOutageItself(error)) return true;
  const { code, name, $metadata } = error as ErrorFields;
  if (typeof code === 'string') {
    if (SQLSTATE.test(code)) return !RECORD_LEVEL_SQLSTATE.test(code);
    // ENOTFOUND: a host name that does not resolve is configuration (EAI_AGAIN is the temporary DNS failure).
    if (code === 'ENOTFOUND' || code.startsWith('UND_ERR_')) return true;
  }
  if (typeof name === 'string') {
    if (BATCH_LEVEL_NAMES.has(name)) return true;
    if ($metadata !== undefined && AWS_BATCH_LEVEL_NAMES.has(name)) return true;
  }
  return false;
}
