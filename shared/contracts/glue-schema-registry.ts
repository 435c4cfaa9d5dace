/**
 * SchemaRegistry over AWS Glue Schema Registry (GetSchemaVersion by schema version UUID), cached per process.
 * Values read as the newest local catalog version of the same event type when one exists, so consumers see
 * one shape; the Glue schema name is expected to be the event type (topic name).
 */
import {
  EntityNotFoundException,
  GetSchemaVersionCommand,
  type GetSchemaVersionCommandOutput,
} from '@aws-sdk/client-glue';
import { type FileCatalogSchemaRegistry, fileCatalogSchemaRegistry } from './file-catalog-registry';
import {
  parseAvroType,
  type RegisteredSchema,
  registeredSchema,
  type SchemaId,
  type SchemaRegistry,
  UnusableSchemaError,
} from './schema-registry';

/** The one Glue call used; a GlueClient satisfies it. */
export interface GlueSchemaVersionClient {
  send(command: GetSchemaVersionCommand): Promise<GetSchemaVersionCommandOutput>;
}

export interface GlueSchemaRegistryOptions {
  glue: GlueSchemaVersionClient;
  /** Local catalog: answers numeric (Confluent) ids and provides reader schemas. */
  catalog?: FileCatalogSchemaRegistry;
}

export class GlueSchemaRegistry implements SchemaRegistry {
  readonly #glue: GlueSchemaVersionClient;
  readonly #catalog: FileCatalogSchemaRegistry;
  readonly #resolved = new Map<string, RegisteredSchema>();
  // In-flight lookups are shared, so a batch full of one new schema makes one Glue call.
  readonly #pending = new Map<string, Promise<RegisteredSchema | undefined>>();

  constructor(options: GlueSchemaRegistryOptions) {
    this.#glue = options.glue;
    this.#catalog = options.catalog ?? fileCatalogSchemaRegistry;
  }

  cached(id: SchemaId): RegisteredSchema | undefined {
    if (typeof id === 'number') return this.#catalog.cached(id);
    return this.#resolved.get(id.toLowerCase());
  }

  resolve(id: SchemaId): Promise<RegisteredSchema | undefined> {
    if (typeof id === 'number') return this.#catalog.resolve(id);
    const key = id.toLowerCase();
    const known = this.#resolved.get(key);
    if (known) return Promise.resolve(known);
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = this.#fetch(key).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  async #fetch(schemaVersionId: string): Promise<RegisteredSchema | undefined> {
    let output: GetSchemaVersionCommandOutput;
    try {
      output = await this.#glue.send(new GetSchemaVersionCommand({ SchemaVersionId: schemaVersionId }));
    } catch (error) {
      if (
        error instanceof EntityNotFoundException ||
        (error as { name?: string }).name === 'EntityNotFoundException'
      ) {
        return undefined;
      }
      throw error;
    }
    if (output.DataFormat !== 'AVRO' || !output.SchemaDefinition) {
      throw new UnusableSchemaError(
        `Glue schema version ${schemaVersionId} is ${output.DataFormat ?? 'empty'}, not AVRO`,
      );
    }
    const eventType = output.SchemaArn?.split('/').pop() ?? 'unknown';
    let schema: RegisteredSchema;
    try {
      const writerType = parseAvroType(JSON.parse(output.SchemaDefinition));
      // Not in the local catalog: read with the writer's schema.
      const readerType = this.#catalog.find(eventType)?.readerType ?? writerType;
      schema = registeredSchema(
        schemaVersionId,
        eventType,
        output.VersionNumber ?? 0,
        writerType,
        readerType,
      );
    } catch (error) {
      throw new UnusableSchemaError(
        `Glue schema version ${schemaVersionId} (${eventType}) cannot be read: ${(error as Error).message}`,
      );
    }
    this.#resolved.set(schemaVersionId, schema);
    return schema;
  }
}
