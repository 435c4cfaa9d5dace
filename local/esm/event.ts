// Builds the byte-exact MSK event Lambda hands to a function.
import type { MSKEvent, MSKRecord } from 'aws-lambda';

/** One Kafka record as the emulator keeps it between fetch and invoke. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: number;
  timestampType: 'CREATE_TIME' | 'LOG_APPEND_TIME';
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[string, Buffer]>;
}

export interface EventSource {
  eventSourceArn: string;
  bootstrapServers: string;
}

export const partitionKey = (topic: string, partition: number) => `${topic}-${partition}`;

export function toMskRecord(record: SourceRecord): MSKRecord {
  return {
    topic: record.topic,
    partition: record.partition,
    offset: Number(record.offset),
    timestamp: record.timestamp,
    timestampType: record.timestampType,
    // aws-lambda's type says string, but Lambda sends null for a null key or a tombstone value.
    key: (record.key === null ? null : record.key.toString('base64')) as string,
    value: (record.value === null ? null : record.value.toString('base64')) as string,
    headers: record.headers.map(([name, value]) => ({ [name]: byteArray(value) })),
  } as MSKRecord;
}

/** A header value as Lambda sends it: an array of byte numbers. A plain loop: spreading a Buffer goes through
 * its iterator, which made header conversion the emulator's largest cost per record. */
function byteArray(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i] as number);
  return out;
}

/** Records grouped by "<topic>-<partition>", each group in offset order. */
export function toMskEvent(source: EventSource, records: SourceRecord[]): MSKEvent {
  const grouped: Record<string, MSKRecord[]> = {};
  for (const record of records) {
    const key = partitionKey(record.topic, record.partition);
    grouped[key] ??= [];
    grouped[key].push(toMskRecord(record));
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: source.eventSourceArn,
    bootstrapServers: source.bootstrapServers,
    records: grouped,
  };
}

const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3);

/**
 * Upper bound of the serialized size of one record inside the event, for the 6 MB invocation payload cap.
 * Computed arithmetically: stringifying every record would cost more than the rest of the emulator.
 */
export function mskRecordSize(record: SourceRecord): number {
  let size = 160 + record.topic.length * 2;
  size += record.key === null ? 4 : base64Length(record.key.length) + 2;
  size += record.value === null ? 4 : base64Length(record.value.length) + 2;
  for (const [name, value] of record.headers) size += name.length + 8 + value.length * 4;
  return size;
}

/** Bytes of the event envelope around the records. */
export function envelopeSize(source: EventSource): number {
  return Buffer.byteLength(JSON.stringify(toMskEvent(source, []))) + 64;
}
