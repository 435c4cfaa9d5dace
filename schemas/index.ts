/**
 * The schema catalog: every registered schema with its id, event type (= topic = ce_type) and version.
 * Loaded through a JSON import so bundlers inline it (see bundle.ts for how it is generated).
 */
import bundle from './bundle.generated.json';

export interface SchemaCatalogEntry {
  /** Schema id, as written in Confluent framing (magic 0 + 4-byte big-endian id). */
  readonly id: number;
  /** Event type: the topic name and the ce_type value, e.g. booking.created. */
  readonly type: string;
  readonly version: number;
  /** .avsc file name under schemas/. */
  readonly file: string;
  /** Local stand-in for the AWS Glue schema version UUID of this schema (Glue framing). */
  readonly glueSchemaVersionId: string;
  /** The Avro schema (parsed .avsc JSON). */
  readonly schema: unknown;
}

export const schemaCatalog: readonly SchemaCatalogEntry[] = bundle.schemas;

/** Every event type in the catalog, i.e. every topic the project knows. */
export const eventTypes: readonly string[] = [...new Set(schemaCatalog.map((entry) => entry.type))];

/** Topic -> the event types its records may carry (catalog.json "topics"); any other type on it is refused. */
export const topicEventTypes: ReadonlyMap<string, readonly string[]> = new Map(Object.entries(bundle.topics));
