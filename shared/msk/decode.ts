/**
 * Decodes a Kafka ESM event into per-partition lists, in offset order, of decoded records or typed errors.
 * A bad record becomes a RecordDecodeError in its place (it never throws out of the loop); only a failure
 * to reach the schema registry rejects (SchemaRegistryUnavailableError, batch-level: see errors.ts), because
 * that is not the record's fault and the batch must retry.
 */

import { topicEventTypes } from '../../schemas';
import {
  decodeValueCached,
  type ValueDecodeResult,
  type ValueFailureReason,
  type ValueFormat,
} from '../contracts/avro-codec';
import {
  AVRO_CONTENT_TYPE,
  type CloudEventAttributes,
  cloudEventFromHeaders,
  JSON_CONTENT_TYPE,
  MISSING_CE_PREFIX,
} from '../contracts/cloudevents';
import {
  type RegisteredSchema,
  type SchemaId,
  type SchemaRegistry,
  UnusableSchemaError,
} from '../contracts/schema-registry';
import { MAX_TIME_MS } from '../time';
import { SchemaRegistryUnavailableError } from './errors';
import type { KafkaEvent, KafkaEventRecord } from './event';
import { hexPreview, readHeaders, utf8Strict } from './headers';

/** Kafka's default max.message.bytes (1 MiB); functions may lower it. */
export const DEFAULT_MAX_VALUE_BYTES = 1_048_576;

/** Largest record key, in bytes: keys are aggregate ids (UUIDs); the audit store keeps and hashes them. */
export const MAX_KEY_BYTES = 512;

export interface DecodeOptions {
  registry: SchemaRegistry;
  /** Values larger than this (decoded bytes) are rejected before they are decoded. */
  maxValueBytes?: number;
}

export type DecodeFailureReason =
  | ValueFailureReason
  | 'missing-ce-headers'
  | 'value-too-large'
  | 'invalid-header'
  | 'schema-type-mismatch'
  | 'topic-type-mismatch'
  | 'invalid-ce-attribute'
  | 'invalid-key'
  | 'invalid-timestamp'
  | 'invalid-record';

export interface RecordCoordinates {
  topic: string;
  partition: number;
  offset: number;
}

export class RecordDecodeError extends Error {
  override name = 'RecordDecodeError';
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly reason: DecodeFailureReason;
  readonly detail: string;

  constructor(coordinates: RecordCoordinates, reason: DecodeFailureReason, detail: string) {
    super(
      `Cannot decode record ${coordinates.topic}-${coordinates.partition} offset ${coordinates.offset}: ` +
        `${reason}: ${detail}`,
    );
    this.topic = coordinates.topic;
    this.partition = coordinates.partition;
    this.offset = coordinates.offset;
    this.reason = reason;
    this.detail = detail;
  }
}

interface DecodedRecordBase extends RecordCoordinates {
  timestamp: number;
  timestampType: KafkaEventRecord['timestampType'];
  /** UTF-8 key (the aggregate id), or null when the record has none. */
  key: string | null;
  headers: Record<string, string>;
}

export interface DecodedEvent<Data = Record<string, unknown>> extends DecodedRecordBase {
  tombstone: false;
  cloudEvent: CloudEventAttributes;
  /** Avro data read as the newest catalog version of its type, or the JSON object. */
  data: Data;
  rawValue: Buffer;
  format: ValueFormat;
  /** The writer's schema (undefined for JSON values). */
  schema: Pick<RegisteredSchema, 'id' | 'eventType' | 'version'> | undefined;
}

/** A record with a null value: a deletion marker for its key. */
export interface DecodedTombstone extends DecodedRecordBase {
  tombstone: true;
  /** Present when the producer sent complete CloudEvents headers with the tombstone. */
  cloudEvent: CloudEventAttributes | null;
  data: null;
  rawValue: null;
}

export type DecodedRecord<Data = Record<string, unknown>> = DecodedEvent<Data> | DecodedTombstone;
export type DecodeOutcome<Data = Record<string, unknown>> = DecodedRecord<Data> | RecordDecodeError;

export interface DecodedPartition<Data = Record<string, unknown>> {
  /** `"<topic>-<partition>"`, as in the event and in batch item failures. */
  key: string;
  topic: string;
  partition: number;
  /** In offset order. */
  records: DecodeOutcome<Data>[];
}

export function isRecordDecodeError(outcome: DecodeOutcome<unknown>): outcome is RecordDecodeError {
  return outcome instanceof RecordDecodeError;
}

/** Decoded length of a base64 string, computed without decoding it. */
function base64DecodedLength(base64: string): number {
  let padding = 0;
  if (base64.endsWith('==')) padding = 2;
  else if (base64.endsWith('=')) padding = 1;
  return Math.floor((base64.length * 3) / 4) - padding;
}

export async function decodeEvent(event: KafkaEvent, options: DecodeOptions): Promise<DecodedPartition[]> {
  const partitions: DecodedPartition[] = [];
  for (const [key, rawRecords] of Object.entries(event.records)) {
    const ordered = inOffsetOrder(rawRecords);
    const records: DecodeOutcome[] = new Array(ordered.length);
    for (let i = 0; i < ordered.length; i++) {
      const outcome = decodeRecord(ordered[i] as KafkaEventRecord, options);
      // Await only a real promise (a schema fetch): awaiting every record would cost a microtask each.
      records[i] = outcome instanceof Promise ? await outcome : outcome;
    }
    const first = ordered[0];
    partitions.push({
      key,
      topic: first?.topic ?? key.slice(0, key.lastIndexOf('-')),
      partition: first?.partition ?? Number(key.slice(key.lastIndexOf('-') + 1)),
      records,
    });
  }
  return partitions;
}

/** The ESM delivers each partition in order; sort only if it does not (a hand-made or emulated event). */
function inOffsetOrder(records: KafkaEventRecord[]): KafkaEventRecord[] {
  for (let i = 1; i < records.length; i++) {
    if ((records[i] as KafkaEventRecord).offset < (records[i - 1] as KafkaEventRecord).offset) {
      return [...records].sort((a, b) => a.offset - b.offset);
    }
  }
  return records;
}

/** A record with base64 and header bytes decoded, before any contract (CloudEvents, Avro) is applied. */
export interface RawRecord extends DecodedRecordBase {
  /** Null for a tombstone. */
  value: Buffer | null;
}

/**
 * The bytes of the record being decoded, set by readRecordBytes (hot path: module-level slots instead of a
 * wrapper object per record; decoding is synchronous up to the point they are read).
 */
let recordKey: string | null = null;
let recordHeaders: Record<string, string> = {};
let recordValue: Buffer | null = null;

const NON_ASCII = /[\x80-\xff]/;

/**
 * UTF-8 text of a base64 key, or the problem with it (too long, not UTF-8). atob (one char per byte) is about
 * twice as fast and equal for ASCII keys.
 */
function keyText(base64: string): { text: string } | string {
  if (base64DecodedLength(base64) > MAX_KEY_BYTES) {
    return `key is ${base64DecodedLength(base64)} bytes, limit is ${MAX_KEY_BYTES}`;
  }
  try {
    const text = atob(base64);
    if (!NON_ASCII.test(text)) return { text };
  } catch {
    // Not strict base64 (e.g. base64url): Buffer decodes it leniently, as before.
  }
  const bytes = Buffer.from(base64, 'base64');
  const text = utf8Strict(bytes);
  return text === null ? `key is not valid UTF-8: bytes ${hexPreview(bytes)}` : { text };
}

/** Kafka timestamps are epoch milliseconds; anything else (above 2^53, fractional, year 10000+) is refused. */
function timestampProblem(timestamp: unknown): string | undefined {
  if (
    typeof timestamp === 'number' &&
    Number.isInteger(timestamp) &&
    timestamp >= 0 &&
    timestamp <= MAX_TIME_MS
  ) {
    return undefined;
  }
  return `Kafka timestamp ${String(timestamp)} is not epoch milliseconds between 0 and ${MAX_TIME_MS} (9999-12-31)`;
}

/** Decodes key, headers and value into the record* slots, or returns the problem with them. */
function readRecordBytes(record: KafkaEventRecord, maxValueBytes: number): RecordDecodeError | undefined {
  const time = timestampProblem(record.timestamp);
  if (time !== undefined) return new RecordDecodeError(record, 'invalid-timestamp', time);
  const headers = readHeaders(record.headers);
  if (typeof headers === 'string') return new RecordDecodeError(record, 'invalid-header', headers);
  const rawKey = record.key;
  let key: string | null = null;
  if (typeof rawKey === 'string') {
    const read = keyText(rawKey);
    if (typeof read === 'string') return new RecordDecodeError(record, 'invalid-key', read);
    key = read.text;
  } else if (rawKey !== undefined && rawKey !== null) {
    return new RecordDecodeError(record, 'invalid-record', 'key is not a base64 string');
  }
  const rawValue = record.value;
  let value: Buffer | null = null;
  if (typeof rawValue === 'string') {
    // Checked on the base64 length, so an oversized value is never allocated.
    const size = base64DecodedLength(rawValue);
    if (size > maxValueBytes) {
      return new RecordDecodeError(
        record,
        'value-too-large',
        `value is ${size} bytes, limit is ${maxValueBytes}`,
      );
    }
    value = Buffer.from(rawValue, 'base64');
  } else if (rawValue !== undefined && rawValue !== null) {
    return new RecordDecodeError(record, 'invalid-record', 'value is not a base64 string');
  }
  recordKey = key;
  recordHeaders = headers;
  recordValue = value;
  return undefined;
}

/**
 * Base64 key/value and byte-array headers decoded; the size limit applied. Returns (does not throw) a
 * RecordDecodeError for a header that is not a byte array or a value over the limit.
 */
export function decodeRawRecord(
  record: KafkaEventRecord,
  options: Pick<DecodeOptions, 'maxValueBytes'> = {},
): RawRecord | RecordDecodeError {
  const problem = readRecordBytes(record, options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES);
  if (problem) return problem;
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    timestampType: record.timestampType,
    key: recordKey,
    headers: recordHeaders,
    value: recordValue,
  };
}

/**
 * Decodes one record. Returns (does not throw) a RecordDecodeError for bad input. Synchronous unless the
 * value names a schema this process has not seen, so the common path costs no promise per record.
 */
export function decodeRecord(
  record: KafkaEventRecord,
  options: DecodeOptions,
): DecodeOutcome | Promise<DecodeOutcome> {
  const problem = readRecordBytes(record, options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES);
  if (problem) return problem;
  const key = recordKey;
  const headers = recordHeaders;
  const value = recordValue;

  if (value === null) {
    const ce = cloudEventFromHeaders(headers, AVRO_CONTENT_TYPE);
    // A tombstone's headers are optional, but when present they are held to the same contract.
    if (typeof ce === 'string') {
      if (hasCloudEventHeaders(headers)) return new RecordDecodeError(record, contractReason(ce), ce);
    } else {
      const mismatch = topicTypeProblem(record.topic, ce.type);
      if (mismatch) return new RecordDecodeError(record, 'topic-type-mismatch', mismatch);
    }
    // Spelled out (no spread): one object shape for every record, and no copying loop per record.
    return {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      timestampType: record.timestampType,
      key,
      headers,
      tombstone: true,
      cloudEvent: typeof ce === 'string' ? null : ce,
      data: null,
      rawValue: null,
    };
  }

  // The contract first: it is cheaper than the value and says more about a record that breaks both.
  const ce = cloudEventFromHeaders(headers, AVRO_CONTENT_TYPE);
  if (typeof ce === 'string') return new RecordDecodeError(record, contractReason(ce), ce);
  const mismatch = topicTypeProblem(record.topic, ce.type);
  if (mismatch) return new RecordDecodeError(record, 'topic-type-mismatch', mismatch);

  const decoded = decodeValueCached(value, options.registry, schemaIdFromMetadata(record));
  if ('missingSchemaId' in decoded) return resolveThenDecode(record, options, decoded.missingSchemaId);
  if ('pending' in decoded) {
    return decoded.pending.then((result) => decodedEvent(record, key, headers, value, ce, result));
  }
  return decodedEvent(record, key, headers, value, ce, decoded);
}

/** The record as a decoded event, or its RecordDecodeError, once its value is decoded. */
function decodedEvent(
  record: KafkaEventRecord,
  key: string | null,
  headers: Record<string, string>,
  value: Buffer,
  ce: CloudEventAttributes,
  decoded: ValueDecodeResult,
): DecodeOutcome {
  if (!decoded.ok) return new RecordDecodeError(record, decoded.reason, decoded.detail);
  if (decoded.format === 'json' && !headers['content-type']) ce.datacontenttype = JSON_CONTENT_TYPE;
  const schema = decoded.schema;
  if (schema && schema.eventType !== ce.type) {
    return new RecordDecodeError(
      record,
      'schema-type-mismatch',
      `ce_type ${ce.type} but value written with ${schema.eventType} v${schema.version} (id ${schema.id})`,
    );
  }
  return {
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    timestampType: record.timestampType,
    key,
    headers,
    tombstone: false,
    cloudEvent: ce,
    data: decoded.data as Record<string, unknown>,
    rawValue: value,
    format: decoded.format,
    schema,
  };
}

/** Absent attributes, or present ones that break the contract (time, length, control characters, version). */
function contractReason(problem: string): DecodeFailureReason {
  return problem.startsWith(MISSING_CE_PREFIX) ? 'missing-ce-headers' : 'invalid-ce-attribute';
}

function hasCloudEventHeaders(headers: Record<string, string>): boolean {
  for (const name in headers) if (name.startsWith('ce_')) return true;
  return false;
}

/**
 * The catalog's types for a topic. A topic may carry a namespace prefix, `<prefix>.<catalog topic>` (the reliability
 * suite's run-scoped `rel-<run>.booking.created` twins): it is bound as its catalog topic. Memoised per topic name.
 */
const typesByTopic = new Map<string, readonly string[] | null>();

function catalogTypes(topic: string): readonly string[] | null {
  let types = typesByTopic.get(topic);
  if (types !== undefined) return types;
  types = null;
  for (let at = -1; at < topic.length; at = topic.indexOf('.', at + 1)) {
    const found = topicEventTypes.get(topic.slice(at + 1));
    if (found) {
      types = found;
      break;
    }
    if (topic.indexOf('.', at + 1) < 0) break;
  }
  // Bounded: topic names come from the ESM's configuration, not from records.
  if (typesByTopic.size < 1000) typesByTopic.set(topic, types);
  return types;
}

/** Why the catalog does not allow ce_type on the topic, or undefined when it does. */
function topicTypeProblem(topic: string, type: string): string | undefined {
  const allowed = catalogTypes(topic);
  if (allowed?.includes(type)) return undefined;
  return allowed
    ? `ce_type ${type} on topic ${topic}, which carries only ${allowed.join(', ')}`
    : `topic ${topic} is not in the schema catalog (schemas/catalog.json topics)`;
}

/** The schema id the ESM's schema-registry integration put on the record (numeric = Confluent, UUID = Glue). */
function schemaIdFromMetadata(record: KafkaEventRecord): SchemaId | undefined {
  const metadata = record.valueSchemaMetadata;
  if (metadata === undefined || metadata.dataFormat !== 'AVRO') return undefined;
  const id = metadata.schemaId;
  return /^\d+$/.test(id) ? Number(id) : id.toLowerCase();
}

async function resolveThenDecode(
  record: KafkaEventRecord,
  options: DecodeOptions,
  id: SchemaId,
): Promise<DecodeOutcome> {
  let schema: RegisteredSchema | undefined;
  try {
    schema = await options.registry.resolve(id);
  } catch (error) {
    if (error instanceof UnusableSchemaError)
      return new RecordDecodeError(record, 'unusable-schema', error.message);
    throw new SchemaRegistryUnavailableError(
      `schema registry unavailable for schema id ${id}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  if (!schema) return new RecordDecodeError(record, 'unknown-schema-id', `schema id ${id} is not registered`);
  // Retry with the fetched schema pinned, whether or not the registry caches it.
  const registry: SchemaRegistry = {
    cached: (other) => (other === id ? schema : options.registry.cached(other)),
    resolve: (other) => options.registry.resolve(other),
  };
  return decodeRecord(record, { ...options, registry });
}
