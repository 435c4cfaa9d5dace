import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The tree's one-way structure (README, Layout): bench -> local -> ops -> functions -> shared -> schemas. Read
// from the sources so that a new file is checked without anyone listing it. A dynamic import may close a loop (a
// CLI command loading the stack lazily); a static one may not. The local platform uses operations (stack up
// applies the migrations and the topic plan); operations do not use the platform, except for the few modules
// below.
const root = resolve(import.meta.dirname, '../../..');
const LAYERS = ['schemas', 'shared', 'functions', 'ops', 'local', 'bench'] as const;

/**
 * What ops/ may import from local/, and why each is unavoidable for now. `dynamic`: only as import(), for
 * `--stage local` (the local stack's endpoints).
 */
const OPS_USES_OF_LOCAL: Record<string, { dynamic?: true; why: string }> = {
  'local/stack/index.ts': { dynamic: true, why: "--stage local reads the local stack's endpoints" },
  'local/stack/paths.ts': { why: 'where `dev` writes its Lambda API endpoint (.local/esm-emulator.json)' },
  'local/serverless-config.ts': {
    why: 'the resolved serverless.yml, which topics plan/apply compares with MSK',
  },
  'local/esm/lag.ts': {
    why: 'consumer lag per partition, shared with the emulator (to shared/ when local/esm is quiet)',
  },
  'local/esm/starting-position.ts': { why: 'offsets at a time, shared with the emulator (idem)' },
  'local/esm/batcher.ts': { why: "Lambda's 6 MB payload limit, shared with the emulator (idem)" },
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'tmp' || name === 'target') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

const STATIC_IMPORT =
  /^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  return [base, `${base}.ts`, join(base, 'index.ts')].find(
    (path) => existsSync(path) && statSync(path).isFile(),
  );
}

interface Edge {
  from: string;
  to: string;
  dynamic: boolean;
}

function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  for (const match of text.matchAll(STATIC_IMPORT)) {
    const to = resolveImport(file, (match[1] ?? match[2]) as string);
    if (to) edges.push({ from: file, to, dynamic: false });
  }
  for (const match of text.matchAll(DYNAMIC_IMPORT)) {
    const to = resolveImport(file, match[1] as string);
    if (to) edges.push({ from: file, to, dynamic: true });
  }
  return edges;
}

const layerOf = (file: string) =>
  LAYERS.indexOf(relative(root, file).split('/')[0] as (typeof LAYERS)[number]);
const files = LAYERS.flatMap((layer) => sourceFiles(join(root, layer)));
const edges = files.flatMap(importsOf);
const name = (file: string) => relative(root, file);

describe('imports point one way', () => {
  it('finds the sources it checks', () => {
    expect(files.some((file) => name(file) === 'functions/billing/handler.ts')).toBe(true);
    expect(edges.length).toBeGreaterThan(100);
  });

  it('finds the operations and the platform that uses them', () => {
    expect(files.some((file) => name(file) === 'ops/audit/chain-verifier.ts')).toBe(true);
    expect(
      edges.some((edge) => name(edge.from) === 'local/provision.ts' && name(edge.to) === 'ops/migrations.ts'),
    ).toBe(true);
  });

  it('never import a layer above their own (static or dynamic), ops only the listed platform modules', () => {
    const allowed = (edge: Edge) => {
      const use = OPS_USES_OF_LOCAL[name(edge.to)];
      return (
        layerOf(edge.from) === LAYERS.indexOf('ops') && use !== undefined && (edge.dynamic || !use.dynamic)
      );
    };
    const upward = edges
      .filter((edge) => layerOf(edge.to) > layerOf(edge.from) && !allowed(edge))
      .map((edge) => `${name(edge.from)} -> ${name(edge.to)}${edge.dynamic ? ' (dynamic)' : ''}`);
    expect(upward).toEqual([]);
  });

  it('list no use of the platform by ops that is not there any more', () => {
    const used = new Set(
      edges.filter((edge) => layerOf(edge.from) === LAYERS.indexOf('ops')).map((edge) => name(edge.to)),
    );
    expect(Object.keys(OPS_USES_OF_LOCAL).filter((module) => !used.has(module))).toEqual([]);
  });

  it('form no cycle of static imports, type imports included', () => {
    const next = new Map<string, string[]>();
    for (const edge of edges)
      if (!edge.dynamic) next.set(edge.from, [...(next.get(edge.from) ?? []), edge.to]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map(name).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const to of next.get(file) ?? []) visit(to, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
