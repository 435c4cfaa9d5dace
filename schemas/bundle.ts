/**
 * Builds schemas/bundle.generated.json from catalog.json and the .avsc files. The bundle exists so that
 * every runtime (esbuild Lambda bundles, vitest, tsx) gets the schemas through a plain JSON import, with no
 * file-system reads at cold start. `npm run events:generate` writes it; a unit test checks it is current.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SchemaCatalogFileEntry {
  type: string;
  version: number;
  file: string;
  glueSchemaVersionId: string;
}

export interface SchemaCatalogFile {
  schemas: Record<string, SchemaCatalogFileEntry>;
  /** Topic -> the event types (ce_type) records on it may carry. */
  topics: Record<string, string[]>;
}

export const schemasDir = join(import.meta.dirname, '.');
export const bundleFile = join(schemasDir, 'bundle.generated.json');

/** The bundle's exact file content (stable key order, trailing newline) so regeneration is byte-identical. */
export function buildSchemaBundle(dir: string = schemasDir): string {
  const catalog = JSON.parse(readFileSync(join(dir, 'catalog.json'), 'utf8')) as SchemaCatalogFile;
  const entries = Object.entries(catalog.schemas)
    .map(([id, entry]) => ({
      id: Number(id),
      type: entry.type,
      version: entry.version,
      file: entry.file,
      glueSchemaVersionId: entry.glueSchemaVersionId,
      schema: JSON.parse(readFileSync(join(dir, entry.file), 'utf8')) as unknown,
    }))
    .sort((a, b) => a.id - b.id);
  const topics = Object.fromEntries(Object.entries(catalog.topics).sort(([a], [b]) => a.localeCompare(b)));
  return `${JSON.stringify({ generatedFrom: 'schemas/catalog.json', schemas: entries, topics }, null, 2)}\n`;
}
