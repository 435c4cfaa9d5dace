import { traced } from '../observability';
/**
 * Picks the schema registry from SCHEMA_REGISTRY (serverless.yml sets it): `file` (default) uses the
 * committed catalog, `glue` asks AWS Glue for schema version UUIDs it does not know.
 */
import { fileCatalogSchemaRegistry } from './file-catalog-registry';
import type { SchemaRegistry } from './schema-registry';

export function schemaRegistryFromEnv(env: NodeJS.ProcessEnv = process.env): SchemaRegistry {
  const kind = env.SCHEMA_REGISTRY ?? 'file';
  if (kind === 'file') return fileCatalogSchemaRegistry;
  if (kind === 'glue') return lazyGlueSchemaRegistry();
  throw new Error(`SCHEMA_REGISTRY must be "file" or "glue", got "${kind}"`);
}

/**
 * The Glue registry, with the Glue client loaded on the first schema id the catalog cannot answer: the
 * client is a large part of the bundle and most records carry ids the catalog knows.
 */
function lazyGlueSchemaRegistry(): SchemaRegistry {
  let glue: SchemaRegistry | undefined;
  let loading: Promise<SchemaRegistry> | undefined;
  const load = async () => {
    const [{ GlueClient }, { GlueSchemaRegistry }] = await Promise.all([
      import('@aws-sdk/client-glue'),
      import('./glue-schema-registry'),
    ]);
    glue = new GlueSchemaRegistry({ glue: traced(new GlueClient({})) });
    return glue;
  };
  return {
    // Before Glue is loaded, numeric (Confluent) ids come from the catalog, as GlueSchemaRegistry does.
    cached: (id) =>
      glue?.cached(id) ?? (typeof id === 'number' ? fileCatalogSchemaRegistry.cached(id) : undefined),
    resolve: async (id) => {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return (await loading).resolve(id);
    },
  };
}
