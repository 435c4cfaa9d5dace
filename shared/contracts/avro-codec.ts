/**
 * Event data codec: Avro with Confluent or Glue framing (encode and decode), and JSON values (decode).
 * Decoding never throws for bad bytes: it returns a failure with a reason, so one poison record cannot
 * crash a batch loop. Registry failures to *ask* (network) do throw: they are not the record's fault.
 */
import { promisify } from 'node:util';
import { deflateSync, inflate } from 'node:zlib';
import type avro from 'avsc';
import { avroDataProblem, loneSurrogatePath } from './data-bounds';
import {
  CONFLUENT_HEADER_BYTES,
  CONFLUENT_MAGIC_BYTE,
  confluentHeader,
  type Framing,
  glueHeader,
  readFraming,
} from './framing';
import {
  type RegisteredSchema,
  type SchemaId,
  type SchemaRegistry,
  UnusableSchemaError,
} from './schema-registry';

/** avro-plain: an unframed Avro body whose schema id came with the record (ESM EventRecordFormat=SOURCE). */
export type ValueFormat = 'avro-confluent' | 'avro-glue' | 'avro-plain' | 'json';

export type ValueFailureReason =
  | 'wrong-magic-byte'
  | 'unknown-schema-id'
  | 'unusable-schema'
  | 'truncated-avro'
  | 'invalid-avro'
  | 'invalid-json'
  | 'json-without-schema'
  | 'value-too-large'
  | 'invalid-data';

/**
 * Largest body a Glue zlib value may inflate to: Kafka's default max.message.bytes. Without it, 65 KB of zlib
 * inflated to 64 MiB (1 MiB would give about 1 GiB).
 */
export const MAX_INFLATED_BYTES = 1_048_576;

export type ValueDecodeResult =
  | { ok: true; data: unknown; format: ValueFormat; schema: RegisteredSchema | undefined }
  | { ok: false; reason: ValueFailureReason; detail: string };

/** Result of the synchronous path: `missingSchemaId` means "resolve this id, then call again". */
export type CachedValueDecodeResult =
  | ValueDecodeResult
  | { ok: false; missingSchemaId: SchemaId }
  | { ok: false; pending: Promise<ValueDecodeResult> };

/**
 * Asynchronous on purpose: Node 20's inflateSync keeps about 16 KB per call that fails on corrupt data (measured:
 * +49 MB arrayBuffers per 3,000 failures, not freed by GC), so a stream of corrupt Glue zlib values would grow an
 * instance until it runs out of memory; the asynchronous inflate frees it. Only zlib values pay the promise.
 */
const inflateAsync = promisify(inflate) as (
  buffer: Buffer,
  options: { maxOutputLength: number },
) => Promise<Buffer>;

/** Decodes with schemas already cached; never does I/O (the per-record hot path). */
export function decodeValueCached(
  value: Buffer,
  registry: SchemaRegistry,
  schemaIdHint?: SchemaId,
): CachedValueDecodeResult {
  // The usual record, a Confluent-framed Avro value, skips the Framing object.
  if (
    schemaIdHint === undefined &&
    value.length >= CONFLUENT_HEADER_BYTES &&
    value[0] === CONFLUENT_MAGIC_BYTE
  ) {
    const id = value.readUInt32BE(1);
    const schema = registry.cached(id);
    if (!schema) return { ok: false, missingSchemaId: id };
    return decodeAvroBody(value, CONFLUENT_HEADER_BYTES, schema, 'avro-confluent');
  }
  const framing = readFraming(value);
  if (schemaIdHint !== undefined && !framedWith(framing, schemaIdHint)) {
    return decodeHinted(value, framing, registry, schemaIdHint);
  }
  switch (framing.kind) {
    case 'json':
      // Only an ESM's schema-registry integration delivers JSON (with valueSchemaMetadata, handled above).
      return {
        ok: false,
        reason: 'json-without-schema',
        detail: 'a JSON value without valueSchemaMetadata: no schema to validate it against',
      };
    case 'invalid':
      return { ok: false, reason: 'wrong-magic-byte', detail: framing.detail };
    case 'confluent':
    case 'glue': {
      const id = framing.kind === 'confluent' ? framing.schemaId : framing.schemaVersionId;
      const schema = registry.cached(id);
      if (!schema) return { ok: false, missingSchemaId: id };
      return decodeAvro(value, framing, schema);
    }
  }
}

function framedWith(framing: Framing, id: SchemaId): boolean {
  if (framing.kind === 'confluent') return framing.schemaId === id;
  if (framing.kind === 'glue') return typeof id === 'string' && framing.schemaVersionId === id.toLowerCase();
  return false;
}

/**
 * The ESM's schema-registry integration names the schema in valueSchemaMetadata and delivers either JSON
 * (EventRecordFormat=JSON) or the Avro body with the framing removed (SOURCE).
 */
function decodeHinted(
  value: Buffer,
  framing: Framing,
  registry: SchemaRegistry,
  id: SchemaId,
): CachedValueDecodeResult {
  const schema = registry.cached(id);
  if (!schema) return { ok: false, missingSchemaId: id };
  if (framing.kind === 'json') {
    const json = decodeJson(value);
    // Text that is not JSON may still be an unframed Avro body that starts with a JSON-like byte.
    if (json.ok) return validatedJson(json.data, schema);
  }
  return decodeAvroBody(value, 0, schema, 'avro-plain');
}

/** Decodes a framed or JSON value, asking the registry for a schema it has not seen yet. */
export async function decodeValue(
  value: Buffer,
  registry: SchemaRegistry,
  schemaIdHint?: SchemaId,
): Promise<ValueDecodeResult> {
  const first = decodeValueCached(value, registry, schemaIdHint);
  if ('pending' in first) return first.pending;
  if (!('missingSchemaId' in first)) return first;
  let schema: RegisteredSchema | undefined;
  try {
    schema = await registry.resolve(first.missingSchemaId);
  } catch (error) {
    if (error instanceof UnusableSchemaError)
      return { ok: false, reason: 'unusable-schema', detail: error.message };
    throw error;
  }
  if (!schema) {
    return {
      ok: false,
      reason: 'unknown-schema-id',
      detail: `schema id ${first.missingSchemaId} not registered`,
    };
  }
  const again = decodeValueCached(
    value,
    { cached: () => schema, resolve: () => Promise.resolve(schema) },
    schemaIdHint,
  );
  if ('pending' in again) return again.pending;
  return 'missingSchemaId' in again
    ? { ok: false, reason: 'unknown-schema-id', detail: 'unreachable' }
    : again;
}

/**
 * JSON data (EventRecordFormat=JSON) checked against the writer's schema, then read as the reader schema through
 * Avro, so a JSON record yields exactly what the same record in Avro would: defaults filled, one shape.
 */
function validatedJson(data: unknown, schema: RegisteredSchema): ValueDecodeResult {
  const surrogate = loneSurrogatePath(data);
  if (surrogate) {
    return { ok: false, reason: 'invalid-data', detail: `${surrogate} holds a lone UTF-16 surrogate` };
  }
  const problems: string[] = [];
  const valid = schema.writerType.isValid(data, {
    errorHook: (path) => {
      if (problems.length < 5) problems.push(path.join('.') || '(root)');
    },
  });
  if (!valid) {
    return {
      ok: false,
      reason: 'invalid-json',
      detail: `${describe(schema)}: JSON does not match the schema at ${problems.join(', ')}`,
    };
  }
  const body = schema.writerType.toBuffer(data);
  return decodeAvroBody(body, 0, schema, 'json');
}

function decodeJson(
  value: Buffer,
): { ok: true; data: unknown } | { ok: false; reason: 'invalid-json'; detail: string } {
  let data: unknown;
  try {
    data = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: 'invalid-json', detail: (error as Error).message };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, reason: 'invalid-json', detail: 'event data must be a JSON object' };
  }
  return { ok: true, data };
}

function decodeAvro(
  value: Buffer,
  framing: Extract<Framing, { kind: 'confluent' | 'glue' }>,
  schema: RegisteredSchema,
): CachedValueDecodeResult {
  if (framing.kind === 'glue' && framing.compressed) {
    return { ok: false, pending: inflateThenDecode(value.subarray(framing.bodyOffset), schema) };
  }
  return decodeAvroBody(
    value,
    framing.bodyOffset,
    schema,
    framing.kind === 'confluent' ? 'avro-confluent' : 'avro-glue',
  );
}

async function inflateThenDecode(compressed: Buffer, schema: RegisteredSchema): Promise<ValueDecodeResult> {
  let body: Buffer;
  try {
    body = await inflateAsync(compressed, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      return {
        ok: false,
        reason: 'value-too-large',
        detail: `zlib body inflates to more than ${MAX_INFLATED_BYTES} bytes (the limit)`,
      };
    }
    return { ok: false, reason: 'invalid-avro', detail: `zlib: ${(error as Error).message}` };
  }
  return decodeAvroBody(body, 0, schema, 'avro-glue');
}

function decodeAvroBody(
  body: Buffer,
  offset: number,
  schema: RegisteredSchema,
  format: ValueFormat,
): ValueDecodeResult {
  let decoded: { value: unknown; offset: number };
  try {
    decoded = schema.readerType.decode(body, offset, schema.resolver);
  } catch (error) {
    return { ok: false, reason: 'invalid-avro', detail: `${describe(schema)}: ${(error as Error).message}` };
  }
  if (decoded.offset < 0) {
    return { ok: false, reason: 'truncated-avro', detail: `${describe(schema)}: body ends early` };
  }
  if (decoded.offset !== body.length) {
    return {
      ok: false,
      reason: 'invalid-avro',
      detail: `${describe(schema)}: ${body.length - decoded.offset} trailing byte(s) after the record`,
    };
  }
  const problem = avroDataProblem(schema.readerType, decoded.value);
  if (problem !== undefined)
    return { ok: false, reason: 'invalid-data', detail: `${describe(schema)}: ${problem}` };
  return {
    ok: true,
    data: decoded.value,
    format,
    schema,
  };
}

function describe(schema: RegisteredSchema): string {
  return `${schema.eventType} v${schema.version} (schema id ${schema.id})`;
}

export class EncodeError extends Error {
  override name = 'EncodeError';
}

/** Avro body of `data`; a value that does not fit the schema fails with every offending field path. */
export function encodeAvroBody(type: avro.Type, data: unknown, what: string): Buffer {
  const problems: string[] = [];
  if (
    !type.isValid(data, { errorHook: (path, value) => problems.push(`${path.join('.')}=${show(value)}`) })
  ) {
    throw new EncodeError(`${what}: data does not match the schema at ${problems.join(', ')}`);
  }
  return type.toBuffer(data);
}

function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Confluent framing: magic 0 + 4-byte big-endian schema id + Avro body (written with `schema.writerType`). */
export function encodeConfluent(schema: RegisteredSchema, data: unknown): Buffer {
  if (typeof schema.id !== 'number')
    throw new EncodeError(`Confluent framing needs a numeric id, got ${schema.id}`);
  return Buffer.concat([
    confluentHeader(schema.id),
    encodeAvroBody(schema.writerType, data, `${schema.eventType} v${schema.version}`),
  ]);
}

/** Glue framing (header version 3, compression none or zlib, schema version UUID) + Avro body. */
export function encodeGlue(
  schemaVersionId: string,
  type: avro.Type,
  data: unknown,
  options: { compress?: boolean } = {},
): Buffer {
  const body = encodeAvroBody(type, data, `Glue schema version ${schemaVersionId}`);
  const compress = options.compress ?? false;
  return Buffer.concat([glueHeader(schemaVersionId, compress), compress ? deflateSync(body) : body]);
}

/** JSON value (what an ESM with EventRecordFormat=JSON delivers); tests and fixtures use it. */
export function encodeJson(data: unknown): Buffer {
  return Buffer.from(JSON.stringify(data), 'utf8');
}
