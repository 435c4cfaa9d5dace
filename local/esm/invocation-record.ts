// The record Lambda sends to an on-failure destination for a Kafka ESM.
import type { MSKEvent } from 'aws-lambda';
import type { QueuedRecord } from './batcher';

export type FailureCondition = 'RetryAttemptsExhausted' | 'MaximumPayloadSizeExceeded' | 'RecordAgeExceeded';

export interface FailureInfo {
  condition: FailureCondition;
  requestId: string;
  functionArn: string;
  approximateInvokeCount: number;
  /** The last invocation's error name, when there was one (logged; AWS records only "Unhandled"). */
  functionError?: string;
}

export interface KafkaInvocationRecord {
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: FailureCondition;
    approximateInvokeCount: number;
  };
  responseContext: { statusCode: number; executedVersion: string; functionError: string } | null;
  version: '1.0';
  timestamp: string;
  KafkaBatchInfo: {
    batchSize: number;
    eventSourceArn: string;
    bootstrapServers: string;
    payloadSize: number;
    recordsInfo: Record<
      string,
      {
        firstRecordOffset: string;
        lastRecordOffset: string;
        firstRecordTimestamp: string;
        lastRecordTimestamp: string;
      }
    >;
  };
  /** S3 only: the whole original invocation event as an escaped JSON string. */
  payload?: string;
}

export function invocationRecord(
  failure: FailureInfo,
  event: MSKEvent,
  partitions: Map<string, QueuedRecord[]>,
  now = new Date(),
): KafkaInvocationRecord {
  const payloadSize = Buffer.byteLength(JSON.stringify(event));
  const recordsInfo: KafkaInvocationRecord['KafkaBatchInfo']['recordsInfo'] = {};
  let batchSize = 0;
  for (const [key, entries] of partitions) {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (!first || !last) continue;
    batchSize += entries.length;
    recordsInfo[key] = {
      firstRecordOffset: String(first.record.offset),
      lastRecordOffset: String(last.record.offset),
      firstRecordTimestamp: new Date(first.record.timestamp).toISOString(),
      lastRecordTimestamp: new Date(last.record.timestamp).toISOString(),
    };
  }
  return {
    requestContext: {
      requestId: failure.requestId,
      functionArn: failure.functionArn,
      condition: failure.condition,
      approximateInvokeCount: failure.approximateInvokeCount,
    },
    responseContext:
      failure.condition === 'MaximumPayloadSizeExceeded'
        ? null
        : {
            statusCode: 200,
            executedVersion: '$LATEST',
            // Lambda reports a thrown error or a timeout as "Unhandled"; the error itself is in the logs.
            functionError: 'Unhandled',
          },
    version: '1.0',
    timestamp: now.toISOString(),
    KafkaBatchInfo: {
      batchSize,
      eventSourceArn: event.eventSourceArn,
      bootstrapServers: event.bootstrapServers,
      payloadSize,
      recordsInfo,
    },
  };
}

/**
 * aws/lambda/<esm-uuid>/<topic-partition>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>, by analogy with the
 * documented Kinesis layout (AWS does not document the Kafka one: list the bucket, do not hard-code it).
 */
export function s3ObjectKey(esmUuid: string, topicPartition: string, now: Date, randomId: string): string {
  const iso = now.toISOString();
  const day = iso.slice(0, 10).replace(/-/g, '/');
  const stamp = iso.slice(0, 19).replace(/:/g, '.');
  return `aws/lambda/${esmUuid}/${topicPartition}/${day}/${stamp}-${randomId}`;
}
