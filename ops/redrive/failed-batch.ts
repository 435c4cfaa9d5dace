// A failed-records object as the ESM's S3 on-failure destination writes it: the AWS invocation record (which
// function, why, when, which offsets) plus `payload`, the whole original MSK event as an escaped JSON string.
// Parsing and selecting are pure; reading the bucket is the S3 adapter's job.
import type { MSKEvent, MSKRecord } from 'aws-lambda';

export const FAILURE_CONDITIONS = [
  'RetryAttemptsExhausted',
  'RecordAgeExceeded',
  'MaximumPayloadSizeExceeded',
] as const;
export type FailureCondition = (typeof FAILURE_CONDITIONS)[number];

export interface FailedBatch {
  key: string;
  functionArn: string;
  /** The function name from functionArn (no qualifier). */
  functionName: string;
  condition: string;
  /** When the ESM gave up on the batch (the invocation record's timestamp). */
  failedAt: Date;
  /** The original invocation event: the records with their key, headers and value. */
  event: MSKEvent;
  /** "<topic>-<partition>" keys of the event, in the event's order. */
  partitions: string[];
  recordCount: number;
}

/** An object that is not a Kafka invocation record with its payload: reported, never redriven. */
export class UnreadableFailedBatch extends Error {
  override name = 'UnreadableFailedBatch';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`${key}: ${reason}`);
  }
}

export function parseFailedBatch(key: string, body: string): FailedBatch {
  let record: {
    requestContext?: { functionArn?: unknown; condition?: unknown };
    timestamp?: unknown;
    payload?: unknown;
  };
  try {
    record = JSON.parse(body);
  } catch {
    throw new UnreadableFailedBatch(key, 'not JSON');
  }
  const functionArn = record?.requestContext?.functionArn;
  const condition = record?.requestContext?.condition;
  if (typeof functionArn !== 'string' || !functionArn.includes(':function:'))
    throw new UnreadableFailedBatch(key, 'requestContext.functionArn is missing or not a function ARN');
  if (typeof condition !== 'string')
    throw new UnreadableFailedBatch(key, 'requestContext.condition is missing');
  const failedAt = new Date(typeof record.timestamp === 'string' ? record.timestamp : Number.NaN);
  if (Number.isNaN(failedAt.getTime()))
    throw new UnreadableFailedBatch(key, 'timestamp is missing or invalid');
  if (typeof record.payload !== 'string')
    throw new UnreadableFailedBatch(
      key,
      'payload (the original event) is missing: only S3 destinations keep it',
    );
  let event: MSKEvent;
  try {
    event = JSON.parse(record.payload);
  } catch {
    throw new UnreadableFailedBatch(key, 'payload is not JSON');
  }
  if (!event || typeof event.records !== 'object' || event.records === null)
    throw new UnreadableFailedBatch(key, 'payload has no records');
  let recordCount = 0;
  for (const [partition, records] of Object.entries(event.records)) {
    if (!Array.isArray(records) || !records.every(isKafkaRecord))
      throw new UnreadableFailedBatch(key, `payload records of ${partition} are not Kafka records`);
    recordCount += records.length;
  }
  return {
    key,
    functionArn,
    functionName: functionArn.split(':function:')[1]?.split(':')[0] ?? '',
    condition,
    failedAt,
    event,
    partitions: Object.keys(event.records),
    recordCount,
  };
}

function isKafkaRecord(record: unknown): record is MSKRecord {
  const r = record as Partial<MSKRecord> | null;
  return (
    typeof r?.topic === 'string' &&
    typeof r.partition === 'number' &&
    typeof r.offset === 'number' &&
    (r.value === null || typeof r.value === 'string')
  );
}

/** Splits "<topic>-<partition>" (topics may contain dashes; the partition is after the last one). */
export function splitPartitionKey(key: string): { topic: string; partition: number } {
  const dash = key.lastIndexOf('-');
  return { topic: key.slice(0, dash), partition: Number(key.slice(dash + 1)) };
}

export interface BatchSelection {
  /** The function's ESM UUIDs to take objects of (the key holds the UUID: aws/lambda/<ESM UUID>/...). */
  esmUuids: string[];
  functionName: string;
  topic?: string;
  partition?: number;
  /** Failed at or after. */
  from?: Date;
  /** Failed before. */
  to?: Date;
  reason?: FailureCondition;
}

/**
 * Whether a listed key may belong to the selection, before its body is read: it names one of the ESMs as a
 * path segment, and was written no earlier than `from` (an object is written after its batch failed).
 */
export function keyMayMatch(key: string, lastModified: Date | undefined, selection: BatchSelection): boolean {
  const segments = key.split('/');
  if (!selection.esmUuids.some((uuid) => segments.includes(uuid))) return false;
  return !(selection.from && lastModified && lastModified < selection.from);
}

/** The selection's checks on what the object itself says. */
export function batchMatches(batch: FailedBatch, selection: BatchSelection): boolean {
  if (batch.functionName !== selection.functionName) return false;
  if (selection.reason && batch.condition !== selection.reason) return false;
  if (selection.from && batch.failedAt < selection.from) return false;
  if (selection.to && batch.failedAt >= selection.to) return false;
  return batch.partitions.some((key) => {
    const { topic, partition } = splitPartitionKey(key);
    return (
      (!selection.topic || topic === selection.topic) &&
      (selection.partition === undefined || partition === selection.partition)
    );
  });
}

/** First offset of a batch per partition, for ordering. */
function firstOffset(batch: FailedBatch): number {
  const first = batch.partitions[0];
  return first === undefined ? 0 : (batch.event.records[first]?.[0]?.offset ?? 0);
}

/**
 * Redrive order: per partition the older records first (an ESM delivers a partition in offset order), then
 * by failure time; ties by key, so a plan prints the same every time.
 */
export function redriveOrder(a: FailedBatch, b: FailedBatch): number {
  const pa = a.partitions[0] ?? '';
  const pb = b.partitions[0] ?? '';
  if (pa !== pb) return pa < pb ? -1 : 1;
  return (
    firstOffset(a) - firstOffset(b) ||
    a.failedAt.getTime() - b.failedAt.getTime() ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}

/** "booking.created-0@12..14, booking.created-1@3" */
export function describeOffsets(event: MSKEvent): string {
  return Object.entries(event.records)
    .map(([key, records]) => {
      const first = records[0]?.offset;
      const last = records[records.length - 1]?.offset;
      return first === last ? `${key}@${first}` : `${key}@${first}..${last}`;
    })
    .join(', ');
}
