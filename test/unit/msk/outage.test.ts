import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../shared/config';
import { RecordDecodeError } from '../../../shared/msk/decode';
import {
  BatchLevelError,
  isBatchLevelError,
  isStoreOutage,
  SchemaRegistryUnavailableError,
  ServiceUnavailableError,
} from '../../../shared/msk/errors';

const withProps = (message: string, props: Record<string, unknown>) =>
  Object.assign(new Error(message), props);

describe('isStoreOutage', () => {
  it('is true for a DynamoDB endpoint that refuses connections (the error the SDK really throws)', async () => {
    const client = new DynamoDBClient({
      endpoint: 'http://127.0.0.1:1',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    const error = await client
      .send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'x' } } }))
      .catch((e) => e);
    client.destroy();
    expect(isStoreOutage(error)).toBe(true);
  });

  it.each([
    ['throttling', withProps('Rate exceeded', { name: 'ThrottlingException' })],
    ['provisioned throughput', withProps('slow down', { name: 'ProvisionedThroughputExceededException' })],
    ['a 5xx', withProps('oops', { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } })],
    ['a 503 of any name', withProps('unavailable', { name: 'Whatever', $metadata: { httpStatusCode: 503 } })],
    ['an SDK timeout', withProps('socket timed out', { name: 'TimeoutError' })],
    ['a reset connection', withProps('socket hang up', { code: 'ECONNRESET' })],
    ['PostgreSQL shutting down (57P01)', withProps('terminating connection', { code: '57P01' })],
    ['PostgreSQL connection failure (08006)', withProps('connection failure', { code: '08006' })],
    ['node-postgres losing its connection', new Error('Connection terminated unexpectedly')],
    ['a Kafka broker not answering', withProps('Connection closed', { code: 'PLT_KFK_NETWORK' })],
    [
      'an outage wrapped by a store adapter',
      new Error('Failed to put record', { cause: withProps('x', { code: 'ECONNREFUSED' }) }),
    ],
    [
      'one of several connection attempts',
      new AggregateError([withProps('refused', { code: 'ECONNREFUSED' })]),
    ],
    [
      'a batch API entry throttled or failed on the service side',
      new ServiceUnavailableError('ACCOUNT_THROTTLED'),
    ],
    [
      'such an entry behind a record failure',
      new Error('Notification n1 failed', { cause: new ServiceUnavailableError('TRANSIENT_FAILURE') }),
    ],
  ])('is true for %s', (_, error) => {
    expect(isStoreOutage(error)).toBe(true);
  });

  it.each([
    [
      'a conditional check',
      withProps('The conditional request failed', {
        name: 'ConditionalCheckFailedException',
        $metadata: { httpStatusCode: 400 },
      }),
    ],
    [
      'a validation error',
      withProps('One or more parameter values were invalid', {
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      }),
    ],
    ['a PostgreSQL data exception (22P02)', withProps('invalid input syntax', { code: '22P02' })],
    ['a unique violation (23505)', withProps('duplicate key', { code: '23505' })],
    [
      'a decode error',
      new RecordDecodeError({ topic: 't', partition: 0, offset: 1 }, 'wrong-magic-byte', 'x'),
    ],
    ['a plain error', new Error('invoice total negative')],
    ['a string', 'ECONNREFUSED'],
  ])('is false for %s', (_, error) => {
    expect(isStoreOutage(error)).toBe(false);
  });
});

describe('isBatchLevelError', () => {
  it('counts configuration errors and outages as batch-level, record errors not', () => {
    expect(isBatchLevelError(new ConfigurationError('missing'))).toBe(true);
    expect(isBatchLevelError(withProps('refused', { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isBatchLevelError(new Error('bad zone'))).toBe(false);
  });
});

describe('transient (retried inside the invocation) is the outage subset of batch-level', () => {
  const aws = (name: string, status: number) =>
    withProps(name, { name, $fault: 'client', $metadata: { httpStatusCode: status } });

  it.each([
    ['access denied', aws('AccessDeniedException', 400)],
    ['a missing table', aws('ResourceNotFoundException', 400)],
    ['expired credentials', aws('ExpiredTokenException', 400)],
    ['a PostgreSQL privilege missing (42501)', withProps('permission denied', { code: '42501' })],
    ['a PostgreSQL statement timeout (57014)', withProps('canceling statement', { code: '57014' })],
    ['a host name that does not resolve', withProps('getaddrinfo ENOTFOUND', { code: 'ENOTFOUND' })],
    [
      'a schema registry refusing us',
      new SchemaRegistryUnavailableError('Glue', { cause: aws('AccessDeniedException', 400) }),
    ],
    ["an operator's switch (SES sending paused)", new BatchLevelError('ACCOUNT_SENDING_PAUSED: paused')],
  ])('%s fails the batch at once, without retries in the invocation', (_, error) => {
    expect(isBatchLevelError(error)).toBe(true);
    expect(isStoreOutage(error)).toBe(false);
  });

  it.each([
    ['a PostgreSQL serialization failure (40001)', withProps('could not serialize', { code: '40001' })],
    ['PostgreSQL out of connections (53300)', withProps('too many clients', { code: '53300' })],
    [
      'a schema registry that cannot be reached',
      new SchemaRegistryUnavailableError('Glue', { cause: withProps('x', { code: 'ECONNREFUSED' }) }),
    ],
    [
      'an AWS error the SDK marks retryable',
      withProps('x', { name: 'Whatever', $metadata: {}, $retryable: {} }),
    ],
  ])('%s is transient and batch-level', (_, error) => {
    expect(isStoreOutage(error)).toBe(true);
    expect(isBatchLevelError(error)).toBe(true);
  });

  it('a record-level SQLSTATE is neither (the data is at fault)', () => {
    for (const code of ['22P02', '23505', '54000', 'P0001']) {
      expect(isStoreOutage(withProps('x', { code }))).toBe(false);
      expect(isBatchLevelError(withProps('x', { code }))).toBe(false);
    }
  });
});
