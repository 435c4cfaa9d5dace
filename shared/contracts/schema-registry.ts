/**
 * The schema-registry port. Ids are what the value's framing carries: a number for Confluent framing, the
 * schema version UUID (string) for Glue framing. `cached` is synchronous so the per-record decode path never
 * awaits; `resolve` is called only on a cache miss.
 */
import type avro from 'avsc';
// Before any type is parsed: bounds avsc's array and map readers (see avro-bounds.ts).
import './avro-bounds';
// Only the type system: the package entry would also load avsc's RPC, container and IDL modules at cold start.
import { Type } from 'avsc/lib/types';
import { timestampTypeHook } from './data-bounds';

export type SchemaId = number | string;

export interface RegisteredSchema {
  readonly id: SchemaId;
  /** Event type (topic, ce_type) the schema belongs to. */
  readonly eventType: string;
  readonly version: number;
  /** The writer's schema, parsed once. */
  readonly writerType: avro.Type;
  /** The type values are read as: the newest local version of the event type (defaults filled in). */
  readonly readerType: avro.Type;
  /** Resolver from writer to reader; undefined when they are the same schema. */
  readonly resolver: avro.Resolver | undefined;
}

export interface SchemaRegistry {
  /** A schema already known to this process, or undefined. Never does I/O. */
  cached(id: SchemaId): RegisteredSchema | undefined;
  /**
   * Looks the schema up (may do I/O). Resolves to undefined when the registry says it does not exist;
   * rejects with UnusableSchemaError when it exists but cannot be read (not Avro, unparsable, no resolution to
   * the reader schema): the records written with it are poison. Rejects with anything else on a failure to
   * ask (network, throttling), which must not turn a good record into a poison one.
   */
  resolve(id: SchemaId): Promise<RegisteredSchema | undefined>;
}

/** A schema the registry has but that cannot decode anything: only the records written with it fail. */
export class UnusableSchemaError extends Error {
  override name = 'UnusableSchemaError';
}

/**
 * Parse options shared by every schema: logical types stay plain (timestamp-millis = epoch ms number), but
 * timestamp-millis types are marked so decoded values can be range-checked (data-bounds.ts).
 */
export function parseAvroType(schema: unknown): avro.Type {
  // A fresh registry per schema: two versions of one record name must not collide.
  return Type.forSchema(schema as avro.Schema, { registry: {}, typeHook: timestampTypeHook });
}

/**
 * Builds a RegisteredSchema that reads as `readerType` (if given and different). Throws when the writer
 * cannot be read as the reader, i.e. the evolution is not backward compatible.
 */
export function registeredSchema(
  id: SchemaId,
  eventType: string,
  version: number,
  writerType: avro.Type,
  readerType: avro.Type = writerType,
): RegisteredSchema {
  const same = readerType === writerType || readerType.equals(writerType);
  return {
    id,
    eventType,
    version,
    writerType,
    readerType: same ? writerType : readerType,
    resolver: same ? undefined : readerType.createResolver(writerType),
  };
}
