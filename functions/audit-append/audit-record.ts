import { createHash } from 'node:crypto';
import { canonicalJson, containsNul, toJsonValue } from './canonical-json';

/** A Kafka header as stored: UTF-8 text when the bytes are text jsonb can hold, base64 otherwise. */
export type StoredHeader = [name: string, value: string | { base64: string }];

/** Everything the audit store keeps about one event, exactly what its content hash covers. */
export interface AuditContent {
  topic: string;
  partition: number;
  offset: number;
  /** Kafka record timestamp, epoch milliseconds, as delivered. */
  timestamp: number;
  key: Buffer | null;
  headers: StoredHeader[];
  /** CloudEvents attributes (context and extensions) under their lower-case CloudEvents names. */
  ce: Record<string, unknown>;
  /** The decoded event data as plain JSON, or null. */
  data: unknown;
  /** The record value exactly as it came off the topic (Avro with its framing, or JSON text). */
  rawValue: Buffer | null;
}

/** One event ready to append: its content and the two hashes the store needs. */
export interface AuditRecord extends AuditContent {
  /** Identity of the event for idempotency: key, CloudEvents attributes without trace context, data. */
  bodyHash: Buffer;
  /** Hash of the canonical content; the chain links these. */
  contentHash: Buffer;
}

/** The Kafka side of a record as the MSK event carries it (base64 key and value, headers as byte arrays). */
export interface KafkaRecordBytes {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key?: string | null;
  value?: string | null;
  headers?: ReadonlyArray<Record<string, number[]>> | null;
}

/** What the contract decoder gives for a record: its CloudEvents attributes and decoded data. */
export interface DecodedEvent {
  cloudEvent: Record<string, unknown>;
  data: unknown;
}

/** A record that can never be stored as it is (a poison record): goes to the failure path. */
export class UnstorableRecordError extends Error {
  override name = 'UnstorableRecordError';
}

export const GENESIS_HASH: Buffer = Buffer.alloc(32);

const TRACE_CONTEXT_ATTRIBUTES = new Set(['traceparent', 'tracestate']);
const REQUIRED_ATTRIBUTES = ['id', 'source', 'type', 'specversion'] as const;
const RFC3339 =
  /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

export function sha256(...parts: Buffer[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** Builds the record to append from the MSK record bytes and the decoded event; throws UnstorableRecordError. */
export function buildAuditRecord(kafka: KafkaRecordBytes, decoded: DecodedEvent): AuditRecord {
  const ce = normaliseAttributes(decoded.cloudEvent);
  let data: unknown;
  try {
    data = toJsonValue(decoded.data);
  } catch (error) {
    throw new UnstorableRecordError(`event data cannot be stored as JSON: ${(error as Error).message}`);
  }
  if (containsNul(data)) throw new UnstorableRecordError('event data holds U+0000, which jsonb cannot store');
  const content: AuditContent = {
    topic: kafka.topic,
    partition: kafka.partition,
    offset: kafka.offset,
    timestamp: kafka.timestamp,
    key: kafka.key == null ? null : Buffer.from(kafka.key, 'base64'),
    headers: storedHeaders(kafka.headers),
    ce,
    data,
    rawValue: kafka.value == null ? null : Buffer.from(kafka.value, 'base64'),
  };
  return { ...content, bodyHash: bodyHashOf(content), contentHash: contentHashOf(content) };
}

/** CloudEvents attribute names are lower-case; the decoder may use camelCase (correlationId). */
export function normaliseAttributes(cloudEvent: Record<string, unknown>): Record<string, unknown> {
  const ce: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(cloudEvent)) {
    if (value === undefined || value === null) continue;
    ce[name.toLowerCase()] = toJsonValue(value);
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    const value = ce[name];
    if (typeof value !== 'string' || value === '') {
      throw new UnstorableRecordError(`CloudEvents attribute "${name}" is missing or not a string`);
    }
  }
  if (ce.time !== undefined && !isRfc3339(ce.time)) {
    throw new UnstorableRecordError(
      `CloudEvents attribute "time" is not an RFC 3339 timestamp: ${String(ce.time)}`,
    );
  }
  if (containsNul(ce)) throw new UnstorableRecordError('CloudEvents attributes hold U+0000');
  return ce;
}

function isRfc3339(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const match = RFC3339.exec(value);
  if (!match) return false;
  const [, year, month, day] = match;
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  return date.getUTCDate() === Number(day); // rejects 30 February and friends
}

export function storedHeaders(headers: KafkaRecordBytes['headers']): StoredHeader[] {
  const stored: StoredHeader[] = [];
  for (const header of headers ?? []) {
    for (const [name, bytes] of Object.entries(header)) {
      const buffer = Buffer.from(bytes);
      const text = buffer.toString('utf8');
      const isText = !text.includes('\u0000') && Buffer.from(text, 'utf8').equals(buffer);
      stored.push([name, isText ? text : { base64: buffer.toString('base64') }]);
    }
  }
  return stored;
}

export function bodyHashOf(content: AuditContent): Buffer {
  const ce = Object.fromEntries(
    Object.entries(content.ce).filter(([name]) => !TRACE_CONTEXT_ATTRIBUTES.has(name)),
  );
  const body = { v: 1, key: content.key?.toString('base64') ?? null, ce, data: content.data ?? null };
  return sha256(Buffer.from(canonicalJson(body), 'utf8'));
}

export function contentHashOf(content: AuditContent): Buffer {
  const canonical = {
    v: 1,
    topic: content.topic,
    partition: content.partition,
    offset: content.offset,
    timestamp: content.timestamp,
    key: content.key?.toString('base64') ?? null,
    headers: content.headers,
    ce: content.ce,
    data: content.data ?? null,
    rawValueSha256: content.rawValue ? sha256(content.rawValue).toString('hex') : null,
  };
  return sha256(Buffer.from(canonicalJson(canonical), 'utf8'));
}

/** One link of a chain: sha256(prev || content || int64be(seq) || int64be(recorded_at µs)), as audit_append computes it. */
export function chainHash(
  prevHash: Buffer,
  contentHash: Buffer,
  seq: bigint,
  recordedAtMicros: bigint,
): Buffer {
  const numbers = Buffer.alloc(16);
  numbers.writeBigInt64BE(seq, 0);
  numbers.writeBigInt64BE(recordedAtMicros, 8);
  return sha256(prevHash, contentHash, numbers);
}
