/**
 * SchemaRegistry over the committed catalog (schemas/catalog.json): local runs, tests and the producer.
 * Every schema is parsed once, when the registry is built (module scope for the default instance).
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
  readonly #byId = new Map<SchemaId, RegisteredSchema>();
  readonly #latestByType = new Map<string, RegisteredSchema>();
  readonly #byTypeVersion = new Map<string, RegisteredSchema>();
  readonly #entries = new Map<number, SchemaCatalogEntry>();

  constructor(entries: readonly SchemaCatalogEntry[] = schemaCatalog) {
    const writerTypes = new Map(entries.map((entry) => [entry.id, parseAvroType(entry.schema)]));
    const newest = new Map<string, SchemaCatalogEntry>();
    for (const entry of entries) {
      const current = newest.get(entry.type);
      if (!current || entry.version > current.version) newest.set(entry.type, entry);
    }
    for (const entry of entries) {
      this.#entries.set(entry.id, entry);
      const writerType = writerTypes.get(entry.id) as ReturnType<typeof parseAvroType>;
      const newestEntry = newest.get(entry.type) as SchemaCatalogEntry;
      const readerType = writerTypes.get(newestEntry.id);
      const schema = registeredSchema(entry.id, entry.type, entry.version, writerType, readerType);
      this.#byId.set(entry.id, schema);
      // The Glue UUID resolves to the same schema, so locally produced Glue-framed values decode too.
      this.#byId.set(entry.glueSchemaVersionId.toLowerCase(), schema);
      this.#byTypeVersion.set(`${entry.type}@${entry.version}`, schema);
      if (entry === newestEntry) this.#latestByType.set(entry.type, schema);
    }
  }

  cached(id: SchemaId): RegisteredSchema | undefined {
    return this.#byId.get(typeof id === 'string' ? id.toLowerCase() : id);
  }

  resolve(id: SchemaId): Promise<RegisteredSchema | undefined> {
    return Promise.resolve(this.cached(id));
  }

  /** The newest schema of an event type: what the producer writes with. */
  latest(eventType: string): RegisteredSchema {
    const schema = this.#latestByType.get(eventType);
    if (!schema) throw new Error(`No schema for event type "${eventType}" in schemas/catalog.json`);
    return schema;
  }

  /** The newest schema of an event type, or undefined for a type the catalog does not know. */
  find(eventType: string): RegisteredSchema | undefined {
    return this.#latestByType.get(eventType);
  }

  /** A specific version (tests, and producers pinned to an older version during a rollout). */
  version(eventType: string, version: number): RegisteredSchema {
    const schema = this.#byTypeVersion.get(`${eventType}@${version}`);
    if (!schema) throw new Error(`No schema ${eventType} v${version} in schemas/catalog.json`);
    return schema;
  }

  /** The catalog entry (file, Glue schema version id) of a numeric schema id. */
  catalogEntry(id: number): SchemaCatalogEntry {
    const entry = this.#entries.get(id);
    if (!entry) throw new Error(`No schema id ${id} in schemas/catalog.json`);
    return entry;
  }

  eventTypes(): string[] {
    return [...this.#latestByType.keys()];
  }
}

/** The project's catalog, parsed once per process. */
export const fileCatalogSchemaRegistry = new FileCatalogSchemaRegistry();
