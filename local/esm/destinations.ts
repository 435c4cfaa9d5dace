// Writers for the on-failure destinations. S3 is real (s3rver locally or AWS); SQS/SNS have no local
// stand-in here, so their metadata-only records are appended to a JSON-lines file under .local/.
import { randomUUID } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Producer } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import { stateDir } from '../stack/paths';
import type { QueuedRecord } from './batcher';
import type { FailureDestination } from './config';
import { type FailureInfo, invocationRecord, s3ObjectKey } from './invocation-record';

export interface FailedBatch {
  esmUuid: string;
  failure: FailureInfo;
  event: MSKEvent;
  partitions: Map<string, QueuedRecord[]>;
}

export type DestinationWriter = (batch: FailedBatch) => Promise<void>;

export interface DestinationDeps {
  s3?: S3Client;
  /** Producer for Kafka-topic destinations (same cluster). */
  producer?: () => Promise<Producer<Buffer, Buffer, string, Buffer>>;
  outboxDir?: string;
}

export function s3Client(): S3Client {
  const local = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  return new S3Client({
    region: process.env.AWS_REGION ?? 'eu-west-1',
    // s3rver only understands path-style addressing.
    forcePathStyle: local,
    ...(local && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }
      : {}),
  });
}

export function destinationWriter(destination: FailureDestination, deps: DestinationDeps): DestinationWriter {
  switch (destination.type) {
    case 's3':
      return s3Writer(destination.bucket, deps.s3 ?? s3Client());
    case 'kafka':
      return kafkaWriter(destination.topic, deps);
    case 'sqs':
    case 'sns':
      return fileWriter(destination.arn, deps.outboxDir ?? path.join(stateDir, 'esm-destinations'));
  }
}

function s3Writer(bucket: string, s3: S3Client): DestinationWriter {
  return async ({ esmUuid, failure, event, partitions }) => {
    const now = new Date();
    const record = { ...invocationRecord(failure, event, partitions, now), payload: JSON.stringify(event) };
    // One object per batch, filed under its first topic-partition.
    const firstPartition = [...partitions.keys()][0] ?? 'unknown';
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: s3ObjectKey(esmUuid, firstPartition, now, randomUUID()),
        Body: JSON.stringify(record),
        ContentType: 'application/json',
      }),
    );
  };
}

function kafkaWriter(topic: string, deps: DestinationDeps): DestinationWriter {
  return async ({ failure, event, partitions }) => {
    if (!deps.producer) throw new Error(`No Kafka producer configured for the kafka://${topic} destination`);
    const producer = await deps.producer();
    const metadata = invocationRecord(failure, event, partitions);
    const messages = [...partitions.values()].flat().map((entry) => ({
      topic,
      // Same key as the original record (round-robin when there was none), as Lambda does.
      ...(entry.record.key === null ? {} : { key: entry.record.key }),
      value: Buffer.from(
        JSON.stringify({
          ...metadata,
          KafkaBatchInfo: {
            ...metadata.KafkaBatchInfo,
            recordInfo: { offset: String(entry.record.offset), timestamp: String(entry.record.timestamp) },
          },
          payload: event,
        }),
      ),
    }));
    await producer.send({ messages });
  };
}

function fileWriter(arn: string, dir: string): DestinationWriter {
  return async ({ failure, event, partitions }) => {
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${arn.replace(/[^A-Za-z0-9.-]/g, '_')}.jsonl`);
    await appendFile(file, `${JSON.stringify(invocationRecord(failure, event, partitions))}\n`);
  };
}
