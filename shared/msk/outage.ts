/**
 * Errors that say a store or transport is unavailable (connection refused or cut, timeouts, throttling, 5xx),
 * as opposed to errors about a record. An outage is not the record's fault: reported as a batch item failure
 * it would spend the record's few ESM retries within seconds and send a valid record to the failure
 * destination. The batch engine retries these inside the invocation and then fails the invocation as a whole.
 */

/** Node and undici socket errors that mean "the other side is not there (now)". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  // @platformatic/kafka (incident-explanation's producer): broker unreachable or not answering.
  'PLT_KFK_NETWORK',
  'PLT_KFK_TIMEOUT',
]);

/** AWS SDK error names for throttling, timeouts and server-side failures (DynamoDB, S3, Glue, Bedrock...). */
const AWS_TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  // Powertools idempotency: another invocation holds the record's lock (e.g. one that timed out): wait for it.
  'IdempotencyAlreadyInProgressError',
]);

/**
 * PostgreSQL SQLSTATEs of a server that is going away or overloaded: 08 connection exception, 53 insufficient
 * resources, 57P01-57P03 shutdown / cannot connect now, 40001 serialization failure, 40P01 deadlock.
 */
const PG_TRANSIENT_STATE = /^(08|53|57P0[123]|40001$|40P01$)/;

/** node-postgres reports a lost or refused connection by message only. */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused)/;

/** True when the error, or an error it wraps (`cause`, AggregateError `errors`), is a store or transport outage. */
export function isStoreOutage(error: unknown): boolean {
  return someInChain(error, isOutageItself, 0);
}

function someInChain(error: unknown, test: (error: object) => boolean, depth: number): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if (test(error)) return true;
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  if (cause !== undefined && someInChain(cause, test, depth + 1)) return true;
  return Array.isArray(errors) && errors.some((inner) => someInChain(inner, test, depth + 1));
}

function isOutageItself(error: object): boolean {
  const { code, name, message, $metadata } = error as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    // A SQLSTATE is five characters; only node-postgres errors carry one as `code`.
    if (code.length === 5 && PG_TRANSIENT_STATE.test(code)) return true;
  }
  if (typeof name === 'string' && AWS_TRANSIENT_NAMES.has(name)) return true;
  const status = $metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  return typeof message === 'string' && PG_CONNECTION_MESSAGE.test(message);
}
