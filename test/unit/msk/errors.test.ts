import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../shared/config';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { confluentHeader } from '../../../shared/contracts/framing';
import {
  BatchLevelError,
  decodeEvent,
  isBatchLevelError,
  isRecordLevelDatabaseError,
  isRecordLevelError,
  kafkaEvent,
  kafkaEventRecord,
  RecordDecodeError,
  SchemaRegistryUnavailableError,
} from '../../../shared/msk';

/** An AWS SDK v3 service exception as the SDK builds it. */
function awsError(name: string, fault: 'client' | 'server', retryable?: object): Error {
  return Object.assign(new Error(name), {
    name,
    $fault: fault,
    $metadata: { httpStatusCode: fault === 'server' ? 500 : 400 },
    ...(retryable ? { $retryable: retryable } : {}),
  });
}

describe('error classification: batch-level (the invocation fails, the ESM retries the batch)', () => {
  it.each([
    ['configuration', new ConfigurationError('Missing BILLING_TABLE')],
    ['a schema registry that cannot be reached', new SchemaRegistryUnavailableError('Glue: ECONNRESET')],
    ['any BatchLevelError', new BatchLevelError('retry')],
    ['PostgreSQL connection failure 08006', Object.assign(new Error('gone'), { code: '08006' })],
    ['PostgreSQL deadlock 40P01', Object.assign(new Error('deadlock'), { code: '40P01' })],
    ['PostgreSQL statement timeout 57014', Object.assign(new Error('canceled'), { code: '57014' })],
    ['PostgreSQL missing privilege 42501', Object.assign(new Error('denied'), { code: '42501' })],
    ['a socket reset', Object.assign(new Error('reset'), { code: 'ECONNRESET', syscall: 'read' })],
    ['a broken pipe', Object.assign(new Error('pipe'), { code: 'EPIPE' })],
    [
      'DynamoDB throttling',
      awsError('ProvisionedThroughputExceededException', 'client', { throttling: true }),
    ],
    ['an AWS service fault', awsError('InternalServerError', 'server')],
    ['AWS access denied', awsError('AccessDeniedException', 'client')],
    ['an endpoint that does not run the operation', awsError('UnknownOperationException', 'client')],
    ['a request the endpoint cannot authenticate', awsError('MissingAuthenticationTokenException', 'client')],
    ['a request whose signature the endpoint refuses', awsError('InvalidSignatureException', 'client')],
    ['a timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' })],
    [
      "a store adapter's failure wrapping throttling",
      new Error('Failed to update record', { cause: awsError('ThrottlingException', 'client') }),
    ],
    ['a wrapper whose cause is batch-level', new Error('wrapped', { cause: new ConfigurationError('x') })],
  ])('%s', (_what, error) => {
    expect(isBatchLevelError(error)).toBe(true);
    expect(isRecordLevelError(error)).toBe(false);
  });

  it('decodeEvent rejects with SchemaRegistryUnavailableError when the registry cannot be asked', async () => {
    const record = kafkaEventRecord({
      topic: 'booking.created',
      partition: 0,
      offset: 0,
      timestamp: 0,
      key: 'k',
      value: Buffer.concat([confluentHeader(424_242), Buffer.from([0])]),
      headers: {
        ce_id: 'e',
        ce_type: 'booking.created',
        ce_source: 'urn:t',
        ce_specversion: '1.0',
        ce_time: '2026-03-02T08:00:00Z',
        ce_subject: 'k',
      },
    });
    const registry = {
      cached: () => undefined,
      resolve: () =>
        Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    };
    const failure = decodeEvent(kafkaEvent([record]), { registry });
    await expect(failure).rejects.toBeInstanceOf(SchemaRegistryUnavailableError);
    await expect(failure.catch((error: unknown) => isBatchLevelError(error))).resolves.toBe(true);
    // The same record with a registry that answers "no such schema" is the record's fault.
    const [partition] = await decodeEvent(kafkaEvent([record]), { registry: fileCatalogSchemaRegistry });
    expect(partition?.records[0]).toBeInstanceOf(RecordDecodeError);
  });
});

describe('error classification: record-level (only the record, and its successors in order, fail)', () => {
  it.each([
    ['a decode failure', new RecordDecodeError({ topic: 't', partition: 0, offset: 1 }, 'invalid-avro', 'x')],
    ['PostgreSQL invalid text 22P02', Object.assign(new Error('invalid'), { code: '22P02' })],
    ['PostgreSQL date out of range 22008', Object.assign(new Error('range'), { code: '22008' })],
    ['PostgreSQL index row too large 54000', Object.assign(new Error('index row'), { code: '54000' })],
    ['PostgreSQL check violation 23514', Object.assign(new Error('check'), { code: '23514' })],
    ['PL/pgSQL raise P0001', Object.assign(new Error('raised'), { code: 'P0001' })],
    ['DynamoDB validation (an item too large)', awsError('ValidationException', 'client')],
    ['a RangeError from the data', new RangeError('Invalid time value')],
    ['a TypeError from the data', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a thrown string', 'boom'],
    ['an unknown error', new Error('something unforeseen')],
  ])('%s', (_what, error) => {
    expect(isBatchLevelError(error)).toBe(false);
    expect(isRecordLevelError(error)).toBe(true);
  });

  it('a store classifies its database errors by SQLSTATE alone; no SQLSTATE is not the data', () => {
    expect(['22P02', '23505', '54000', 'P0001'].map((code) => isRecordLevelDatabaseError({ code }))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['08006', '57014', '40P01', '42501', 'EPIPE', undefined].map((code) =>
        isRecordLevelDatabaseError({ code }),
      ),
    ).toEqual([false, false, false, false, false, false]);
  });
});
