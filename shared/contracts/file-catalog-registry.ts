/**
 * SchemaRegistry over the committed catalog (schemas/catalog.json): local runs, tests and the producer.
 * Each schema is parsed once, on first use: a function reads a few of the catalog's types, and avsc compiles
 * code for every type it parses, which made parsing the whole catalog the largest part of a cold start.
 */
import { type SchemaCatalogEntry, schemaCatalog } from '../../schemas';
import {
  parseAvroType,
  type RegisteredSchema,
  registeredSchema,
  type SchemaId,
  type SchemaRegistry,
} from './schema-registry';

export class FileCatalogSchemaRegistry implements SchemaRegistry {
  /** Numeric ids and Glue UUIDs (the Glue UUID resolves to the same schema, so Glue-framed values decode too). */
  readonly #entryById = new Map<SchemaId, SchemaCatalogEntry>();
  readonly #newestByType = new Map<string, SchemaCatalogEntry>();
  readonly #byTypeVersion = new Map<string, SchemaCatalogEntry>();
  readonly #writerTypes = new Map<number, ReturnType<typeof parseAvroType>>();
  readonly #schemas = new Map<number, RegisteredSchema>();

  constructor(entries: readonly SchemaCatalogEntry[] = schemaCatalog) {
    for (const entry of entries) {
      const current = this.#newestByType.get(entry.type);
      if (!current || entry.version > current.version) this.#newestByType.set(entry.type, entry);
      this.#entryById.set(entry.id, entry);
      this.#entryById.set(entry.glueSchemaVersionId.toLowerCase(), entry);
      this.#byTypeVersion.set(`${entry.type}@${entry.version}`, entry);
    }
  }

  #writerType(entry: SchemaCatalogEntry): ReturnType<typeof parseAvroType> {
    let type = this.#writerTypes.get(entry.id);
    if (!type) {
      type = parseAvroType(entry.schema);
      this.#writerTypes.set(entry.id, type);
    }
    return type;
  }

  /** The entry's schema, read as the newest version of its type; parsed (and the resolver built) once. */
  #schema(entry: SchemaCatalogEntry): RegisteredSchema {
    let schema = this.#schemas.get(entry.id);
    if (!schema) {
      const newest = this.#newestByType.get(entry.type) as SchemaCatalogEntry;
      schema = registeredSchema(
        entry.id,
        entry.type,
        entry.version,
        this.#writerType(entry),
        this.#writerType(newest),
      );
      this.#schemas.set(entry.id, schema);
    }
    return schema;
  }

  cached(id: SchemaId): RegisteredSchema | undefined {
    const entry = this.#entryById.get(typeof id === 'string' ? id.toLowerCase() : id);
    return entry && this.#schema(entry);
  }

  resolve(id: SchemaId): Promise<RegisteredSchema | undefined> {
    return Promise.resolve(this.cached(id));
  }

  /** The newest schema of an event type: what the producer writes with. */
  latest(eventType: string): RegisteredSchema {
    const entry = this.#newestByType.get(eventType);
    if (!entry) throw new Error(`No schema for event type "${eventType}" in schemas/catalog.json`);
    return this.#schema(entry);
  }

  /** The newest schema of an event type, or undefined for a type the catalog does not know. */
  find(eventType: string): RegisteredSchema | undefined {
    const entry = this.#newestByType.get(eventType);
    return entry && this.#schema(entry);
  }

  /** A specific version (tests, and producers pinned to an older version during a rollout). */
  version(eventType: string, version: number): RegisteredSchema {
    const entry = this.#byTypeVersion.get(`${eventType}@${version}`);
    if (!entry) throw new Error(`No schema ${eventType} v${version} in schemas/catalog.json`);
    return this.#schema(entry);
  }

  /** The catalog entry (file, Glue schema version id) of a numeric schema id. */
  catalogEntry(id: number): SchemaCatalogEntry {
    const entry = this.#entryById.get(id);
    if (!entry) throw new Error(`No schema id ${id} in schemas/catalog.json`);
    return entry;
  }

  eventTypes(): string[] {
    return [...this.#newestByType.keys()];
  }
}

/** The project's catalog; each schema parsed once per process, when first needed. */
export const fileCatalogSchemaRegistry = new FileCatalogSchemaRegistry();
