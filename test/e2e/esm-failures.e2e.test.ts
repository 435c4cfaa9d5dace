import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Consumer } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { destinationWriter, s3Client } from '../../local/esm/destinations';
import { EsmEmulator } from '../../local/esm/emulator';
import { EventSourceMapping } from '../../local/esm/mapping';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const running: EventSourceMapping[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
});

const valuesOf = (event: MSKEvent) =>
  Object.values(event.records).flatMap((records) =>
    records.map((r) => Buffer.from(r.value, 'base64').toString('utf8')),
  );

describe('ESM emulator error handling (real broker)', () => {
  it('retries a throwing handler, writes the AWS invocation record to S3, and later records still flow', async () => {
    const topic = uniqueName('e2e-s3');
    const bucket = uniqueName('failed-records');
    const s3 = s3Client();
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await createTopic(topic, 1);
    await produce(topic, [{ partition: 0, key: 'k', value: 'poison' }]);
    const attempts: string[] = [];
    const processed: string[] = [];
    const definition = testDefinition(topic, {
      maximumBatchingWindowMs: 0,
      maximumRetryAttempts: 2,
      destination: { type: 's3', arn: `arn:aws:s3:::${bucket}`, bucket },
    });
    const mapping = new EventSourceMapping({
      definition,
      brokers: kafkaBrokers(),
      retryDelayMs: () => 10,
      writeDestination: destinationWriter(definition.destination!, { s3 }),
      handler: async (event: MSKEvent) => {
        const values = valuesOf(event);
        if (values.includes('poison')) {
          attempts.push('poison');
          throw new Error('cannot process poison');
        }
        processed.push(...values);
      },
    });
    running.push(mapping);
    await mapping.start();
    await waitFor('the destination write', () => mapping.stats.failedToDestination === 1);
    await produce(topic, [{ partition: 0, key: 'k', value: 'after' }]);
    await waitFor('the later record', () => processed.includes('after'));
    expect(attempts).toHaveLength(3);

    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `aws/lambda/${definition.uuid}/` }),
    );
    expect(listed.Contents).toHaveLength(1);
    const key = listed.Contents?.[0]?.Key ?? '';
    expect(key).toMatch(new RegExp(`^aws/lambda/${definition.uuid}/${topic}-0/\\d{4}/\\d{2}/\\d{2}/`));
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const record = JSON.parse(await (object.Body?.transformToString() ?? '')) as { payload: string };
    expect(record).toMatchObject({
      requestContext: {
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
        functionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${definition.functionName}`,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      KafkaBatchInfo: {
        batchSize: 1,
        eventSourceArn: definition.eventSourceArn,
        bootstrapServers: kafkaBrokers().join(','),
        recordsInfo: { [`${topic}-0`]: { firstRecordOffset: '0', lastRecordOffset: '0' } },
      },
    });
    const payload = JSON.parse(record.payload) as MSKEvent;
    expect(payload.eventSource).toBe('aws:kafka');
    expect(valuesOf(payload)).toEqual(['poison']);
  });

  it('on a partial batch failure retries only the reported record and its successors in that partition', async () => {
    const topic = uniqueName('e2e-partial');
    await createTopic(topic, 2);
    await produce(topic, [
      ...[0, 1, 2, 3].map((n) => ({ partition: 0, value: `p0-${n}` })),
      ...[0, 1].map((n) => ({ partition: 1, value: `p1-${n}` })),
    ]);
    const invocations: string[][] = [];
    const mapping = new EventSourceMapping({
      definition: testDefinition(topic, { maximumBatchingWindowMs: 1000, reportBatchItemFailures: true }),
      brokers: kafkaBrokers(),
      retryDelayMs: () => 10,
      handler: async (event: MSKEvent) => {
        invocations.push(valuesOf(event).sort());
        if (invocations.length > 1) return { batchItemFailures: [] };
        return { batchItemFailures: [{ itemIdentifier: { partition: `${topic}-0`, offset: 2 } }] };
      },
    });
    running.push(mapping);
    await mapping.start();
    await waitFor('the retry', () => invocations.length >= 2);
    await waitFor('the commits', () => mapping.stats.committed.get(`${topic}-0`) === 4n);
    expect(invocations[0]).toEqual(['p0-0', 'p0-1', 'p0-2', 'p0-3', 'p1-0', 'p1-1']);
    expect(invocations[1]).toEqual(['p0-2', 'p0-3']);
    expect(invocations).toHaveLength(2);
    expect(mapping.stats.committed.get(`${topic}-1`)).toBe(2n);
  });

  it('sends the failed records to a Kafka-topic destination with their original keys', async () => {
    const topic = uniqueName('e2e-kafka-dest');
    const deadLetters = `${topic}-failed`;
    await createTopic(topic, 1);
    await createTopic(deadLetters, 1);
    await produce(topic, [{ partition: 0, key: 'vehicle-7', value: 'cannot-process' }]);
    const definition = testDefinition(topic, {
      maximumBatchingWindowMs: 0,
      maximumRetryAttempts: 0,
      destination: { type: 'kafka', arn: `kafka://${deadLetters}`, topic: deadLetters },
    });
    const emulator = new EsmEmulator({
      definitions: [definition],
      brokers: kafkaBrokers(),
      retryDelayMs: () => 10,
      handlers: {
        [definition.uuid]: async () => {
          throw new Error('always fails');
        },
      },
      log: () => undefined,
    });
    await emulator.start();
    const consumer = new Consumer({
      clientId: 'e2e-dlq',
      groupId: `${deadLetters}-reader`,
      bootstrapBrokers: kafkaBrokers(),
    });
    try {
      const stream = await consumer.consume({ topics: [deadLetters], mode: 'earliest' });
      const [message] = await new Promise<{ key: Buffer; value: Buffer }[]>((resolve) => {
        stream.once('data', (m) => resolve([m as { key: Buffer; value: Buffer }]));
      });
      expect(message?.key.toString()).toBe('vehicle-7');
      const record = JSON.parse(message?.value.toString() ?? '{}') as {
        requestContext: { condition: string };
        KafkaBatchInfo: { recordInfo: { offset: string } };
        payload: MSKEvent;
      };
      expect(record.requestContext.condition).toBe('RetryAttemptsExhausted');
      expect(record.KafkaBatchInfo.recordInfo.offset).toBe('0');
      expect(valuesOf(record.payload)).toEqual(['cannot-process']);
      await stream.close();
    } finally {
      await consumer.close();
      await emulator.stop();
    }
  });
});
