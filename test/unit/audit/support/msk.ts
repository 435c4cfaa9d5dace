import type { DecodedEvent, KafkaRecordBytes } from '../../../../functions/audit-append/audit-record';

/** An MSK record as the ESM delivers it (base64 key/value, headers as byte arrays). */
export interface TestMskRecord extends KafkaRecordBytes {
  timestampType: 'CREATE_TIME' | 'LOG_APPEND_TIME';
  key: string | null;
  value: string | null;
  headers: Array<Record<string, number[]>>;
}

export interface TestEventOptions {
  topic?: string;
  partition?: number;
  offset: number;
  id?: string;
  /** ce_source; default urn:mobility:genai-service. */
  source?: string;
  type?: string;
  subject?: string;
  time?: string;
  correlationId?: string;
  traceparent?: string;
  data?: unknown;
  /** A value that is not JSON: the record cannot be decoded (poison). */
  rawValue?: string;
  extraHeaders?: Record<string, string | number[]>;
}

const bytes = (text: string) => [...Buffer.from(text, 'utf8')];

/** A CloudEvents binary-mode record with a JSON value. */
export function cloudEventRecord(options: TestEventOptions): TestMskRecord {
  const topic = options.topic ?? 'genai.request';
  const subject = options.subject ?? `incident-${options.offset % 7}`;
  const headers: Record<string, string | number[]> = {
    ce_id: options.id ?? `${topic}-${options.partition ?? 0}-${options.offset}`,
    ce_type: options.type ?? topic,
    ce_source: options.source ?? 'urn:mobility:genai-service',
    ce_specversion: '1.0',
    ce_time: options.time ?? new Date(Date.UTC(2026, 10, 1, 12, 0, 0) + options.offset * 1000).toISOString(),
    ce_subject: subject,
    'content-type': 'application/json',
    ...(options.correlationId ? { ce_correlationid: options.correlationId } : {}),
    ...(options.traceparent ? { traceparent: options.traceparent } : {}),
    ...options.extraHeaders,
  };
  const value =
    options.rawValue ??
    JSON.stringify(options.data ?? { prompt: `explain ${options.offset}`, tokens: options.offset });
  return {
    topic,
    partition: options.partition ?? 0,
    offset: options.offset,
    timestamp: Date.UTC(2026, 10, 1, 12, 0, 0) + options.offset,
    timestampType: 'CREATE_TIME',
    key: Buffer.from(subject).toString('base64'),
    value: Buffer.from(value).toString('base64'),
    headers: Object.entries(headers).map(([name, headerValue]) => ({
      [name]: typeof headerValue === 'string' ? bytes(headerValue) : headerValue,
    })),
  };
}

export function mskEvent(records: TestMskRecord[]) {
  const grouped: Record<string, TestMskRecord[]> = {};
  for (const record of records) {
    const key = `${record.topic}-${record.partition}`;
    grouped[key] ??= [];
    grouped[key].push(record);
  }
  return {
    eventSource: 'aws:kafka' as const,
    eventSourceArn:
      'arn:aws:kafka:eu-west-1:123456789012:cluster/local/00000000-0000-0000-0000-000000000000-1',
    bootstrapServers: '127.0.0.1:9092',
    records: grouped,
  };
}

/** A small stand-in for the contract decoder: CloudEvents headers plus a JSON value; throws when undecodable. */
export function decodeJsonCloudEvent(record: KafkaRecordBytes): DecodedEvent {
  const headers: Record<string, string> = {};
  for (const header of record.headers ?? []) {
    for (const [name, value] of Object.entries(header)) headers[name] = Buffer.from(value).toString('utf8');
  }
  const cloudEvent: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('ce_')) cloudEvent[name.slice(3)] = value;
  }
  if (headers['content-type']) cloudEvent.datacontenttype = headers['content-type'];
  if (headers.traceparent) cloudEvent.traceparent = headers.traceparent;
  if (!cloudEvent.id)
    throw new Error(`record ${record.topic}-${record.partition}@${record.offset} has no ce_id`);
  const data = record.value == null ? null : JSON.parse(Buffer.from(record.value, 'base64').toString('utf8'));
  return { cloudEvent, data };
}
