/**
 * Picks the schema registry from SCHEMA_REGISTRY (serverless.yml sets it): `file` (default) uses the
 * committed catalog, `glue` asks AWS Glue for schema version UUIDs it does not know.
 */
import { GlueClient } from '@aws-sdk/client-glue';
import { fileCatalogSchemaRegistry } from './file-catalog-registry';
import { GlueSchemaRegistry } from './glue-schema-registry';
import type { SchemaRegistry } from './schema-registry';

export function schemaRegistryFromEnv(env: NodeJS.ProcessEnv = process.env): SchemaRegistry {
  const kind = env.SCHEMA_REGISTRY ?? 'file';
  if (kind === 'file') return fileCatalogSchemaRegistry;
  if (kind === 'glue') return new GlueSchemaRegistry({ glue: new GlueClient({}) });
  throw new Error(`SCHEMA_REGISTRY must be "file" or "glue", got "${kind}"`);
}
