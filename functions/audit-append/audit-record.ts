import { createHash, hash } from 'node:crypto';
import { parseRfc3339 } from '../../shared/time';
import { canonicalJson, keyOrder, toJsonValue } from './canonical-json';

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

/**
 * One event ready to append: its content and the two hashes the store needs. buildAuditRecord's records parse
 * `data` on first read (a getter), so a spread copy does not carry it: copy it by name.
 */
export interface AuditRecord extends AuditContent {
  /** Identity of the event for idempotency: key, CloudEvents attributes without trace context, data. */
  bodyHash: Buffer;
  /** Hash of the canonical content; the chain links these. */
  contentHash: Buffer;
  /** Canonical JSON texts of ce, data and headers, as hashed: the store sends them as they are. */
  json?: { ce: string; data: string; headers: string };
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

/** U+0000 as JSON.stringify writes it (an unescaped backslash, then u0000): jsonb cannot store it. */
const ESCAPED_NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;

const REQUIRED_ATTRIBUTES = ['id', 'source', 'type', 'specversion'] as const;

export function sha256(...parts: Array<Buffer | string>): Buffer {
  // One-shot hashing is cheaper for the common single-part case.
  if (parts.length === 1) return hash('sha256', parts[0] as Buffer | string, 'buffer');
  const hasher = createHash('sha256');
  for (const part of parts) hasher.update(part);
  return hasher.digest();
}

/** Builds the record to append from the MSK record bytes and the decoded event; throws UnstorableRecordError. */
export function buildAuditRecord(kafka: KafkaRecordBytes, decoded: DecodedEvent): AuditRecord {
  const ce = normaliseAttributes(decoded.cloudEvent);
  // The canonical texts of ce, data and headers serve both hashes and are what the store writes.
  let dataJson: string;
  try {
    dataJson = canonicalJson(decoded.data);
  } catch (error) {
    throw new UnstorableRecordError(`event data cannot be stored as JSON: ${(error as Error).message}`);
  }
  if (holdsNul(dataJson))
    throw new UnstorableRecordError('event data holds U+0000, which jsonb cannot store');
  const [ceJson, ceWithoutTraceJson] = attributesJsons(ce);
  if (holdsNul(ceJson)) throw new UnstorableRecordError('CloudEvents attributes hold U+0000');
  const headers = storedHeaders(kafka.headers);
  const headersJson = JSON.stringify(headers);
  const key = kafka.key == null ? null : Buffer.from(kafka.key, 'base64');
  const rawValue = kafka.value == null ? null : Buffer.from(kafka.value, 'base64');
  const keyText = keyJson(key);
  return new BuiltAuditRecord(
    kafka.topic,
    kafka.partition,
    kafka.offset,
    kafka.timestamp,
    key,
    headers,
    ce,
    rawValue,
    bodyHashOfTexts(keyText, ceWithoutTraceJson, dataJson),
    contentHashOfTexts(kafka, keyText, rawValue, ceJson, dataJson, headersJson),
    { ce: ceJson, data: dataJson, headers: headersJson },
  );
}

/**
 * A built record as a class, so that every record has one shape. The parsed data is only needed by readers of
 * the record (the append sends the canonical text), so it is parsed on first use.
 */
class BuiltAuditRecord implements AuditRecord {
  private parsedData: { value: unknown } | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly timestamp: number,
    readonly key: Buffer | null,
    readonly headers: StoredHeader[],
    readonly ce: Record<string, unknown>,
    readonly rawValue: Buffer | null,
    readonly bodyHash: Buffer,
    readonly contentHash: Buffer,
    readonly json: { ce: string; data: string; headers: string },
  ) {}

  get data(): unknown {
    this.parsedData ??= { value: JSON.parse(this.json.data) };
    return this.parsedData.value;
  }
}

/** jsonb cannot hold U+0000: the cheap test first, then the exact one (an escape, not an escaped backslash). */
function holdsNul(json: string): boolean {
  return json.includes('\\u0000') && ESCAPED_NUL.test(json);
}

/** CloudEvents attribute names are lower-case; the decoder may use camelCase (correlationId). */
export function normaliseAttributes(cloudEvent: Record<string, unknown>): Record<string, unknown> {
  const ce: Record<string, unknown> = {};
  for (const name in cloudEvent) {
    const value = cloudEvent[name];
    if (value === undefined || value === null) continue;
    ce[name.toLowerCase()] = typeof value === 'string' ? value : toJsonValue(value);
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
  return ce;
}

/** The shared parser (shared/time.ts): years 0001-9999 only, so PostgreSQL's timestamptz can hold it. */
function isRfc3339(value: unknown): boolean {
  return typeof value === 'string' && parseRfc3339(value) !== undefined;
}

export function storedHeaders(headers: KafkaRecordBytes['headers']): StoredHeader[] {
  const stored: StoredHeader[] = [];
  for (const header of headers ?? []) {
    for (const name in header) {
      const bytes = header[name] as number[];
      const ascii = asciiText(bytes);
      if (ascii !== undefined) {
        stored.push([name, ascii]);
        continue;
      }
      const buffer = Buffer.from(bytes);
      const text = buffer.toString('utf8');
      // Invalid UTF-8 decodes to U+FFFD; jsonb cannot hold U+0000. Either way keep the exact bytes as base64.
      const isText = !text.includes('\uFFFD') && !text.includes('\u0000');
      stored.push([name, isText ? text : { base64: buffer.toString('base64') }]);
    }
  }
  return stored;
}

/** Most header values are short ASCII (ids, types, times): read them without a Buffer. */
function asciiText(bytes: number[]): string | undefined {
  const length = bytes.length;
  if (length > 512) return undefined;
  for (let i = 0; i < length; i++) {
    const byte = bytes[i] as number;
    if (byte === 0 || byte > 0x7f) return undefined;
  }
  return String.fromCharCode.apply(null, bytes);
}

/** Canonical JSON of the attributes. */
function attributesJson(ce: Record<string, unknown>): string {
  return attributesJsons(ce)[0];
}

/**
 * Canonical JSON of the attributes, with and without trace context, from one sort of the names: a flat object
 * of strings as a rule, which JSON.stringify can write; anything else goes through canonicalJson.
 */
function attributesJsons(ce: Record<string, unknown>): [all: string, withoutTraceContext: string] {
  let all = '';
  let bare = '';
  const { sorted, prefixes } = keyOrder(ce);
  for (let i = 0; i < sorted.length; i++) {
    const key = sorted[i] as string;
    const value = ce[key];
    if (typeof value !== 'string') return [canonicalJson(ce), canonicalJson(withoutTraceContext(ce))];
    const pair = `${prefixes[i]}${JSON.stringify(value)}`;
    all += all ? `,${pair}` : pair;
    if (key !== 'traceparent' && key !== 'tracestate') bare += bare ? `,${pair}` : pair;
  }
  return [`{${all}}`, `{${bare}}`];
}

function withoutTraceContext(ce: Record<string, unknown>): Record<string, unknown> {
  const { traceparent: _traceparent, tracestate: _tracestate, ...rest } = ce;
  return rest;
}

const keyJson = (key: Buffer | null) => (key ? `"${key.toString('base64')}"` : 'null');

/** sha256 of the canonical JSON of {v: 1, key, ce (without trace context), data}. */
function bodyHashOfTexts(keyText: string, ceWithoutTraceJson: string, dataJson: string): Buffer {
  return sha256(`{"ce":${ceWithoutTraceJson},"data":${dataJson},"key":${keyText},"v":1}`);
}

/**
 * sha256 of the canonical JSON of {v: 1, topic, partition, offset, timestamp, key, headers, ce, data,
 * rawValueSha256}, written out with its keys already in canonical order.
 */
function contentHashOfTexts(
  coordinates: Pick<AuditContent, 'topic' | 'partition' | 'offset' | 'timestamp'>,
  keyText: string,
  rawValue: Buffer | null,
  ceJson: string,
  dataJson: string,
  headersJson: string,
): Buffer {
  const raw = rawValue ? `"${sha256(rawValue).toString('hex')}"` : 'null';
  // Headers are arrays of strings and one-key objects: JSON.stringify writes them canonically already.
  return sha256(
    `{"ce":${ceJson},"data":${dataJson},"headers":${headersJson},"key":${keyText},` +
      `"offset":${canonicalJson(coordinates.offset)},"partition":${canonicalJson(coordinates.partition)},` +
      `"rawValueSha256":${raw},"timestamp":${canonicalJson(coordinates.timestamp)},"topic":${JSON.stringify(coordinates.topic)},"v":1}`,
  );
}

/** Identity of the event for idempotency: key, CloudEvents attributes without trace context, data. */
export function bodyHashOf(content: AuditContent): Buffer {
  return bodyHashOfTexts(
    keyJson(content.key),
    canonicalJson(withoutTraceContext(content.ce)),
    canonicalJson(content.data ?? null),
  );
}

/** What the chain links: every stored byte of the event and its coordinates. */
export function contentHashOf(content: AuditContent): Buffer {
  return contentHashOfTexts(
    content,
    keyJson(content.key),
    content.rawValue,
    attributesJson(content.ce),
    canonicalJson(content.data ?? null),
    JSON.stringify(content.headers),
  );
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
