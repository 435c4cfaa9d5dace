// The functions' bundles for the emulator and `dev`: built by serverless-esbuild itself (the plugin
// `serverless package` runs) from the resolved serverless.yml, so the options, entry points and output layout
// are the packaged ones and so are the bytes (test/deploy/bundles.test.ts). The output goes to memory first so
// each bundle replaces the previous one atomically (a worker starting during a rebuild never reads half a
// file); with a debugger the bundles get a source map. Rebuilt on change with the plugin's esbuild contexts
// (incremental).
import { createHash } from 'node:crypto';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BuildOptions, BuildResult, OutputFile } from 'esbuild';
import { ensurePrivateDir } from '../stack/private-file';
import type { ResolvedServerlessConfig } from './config';
import { type TreeWatcher, watchTree } from './watch-tree';

const require = createRequire(import.meta.url);

/** What the plugin reads of `serverless print` (local/serverless-config.ts) besides the functions. */
type ServiceConfig = ResolvedServerlessConfig & { custom?: object; package?: object };

/**
 * What the emulator changes in the packaged options, and nothing else: the output goes to memory first (see
 * above) and errors come back in RebuildOutcome instead of being printed.
 */
export const LOCAL_OVERRIDES = { write: false, logLevel: 'silent' } as const satisfies BuildOptions;

/**
 * With a debugger (`dev --inspect`): a linked source map, so breakpoints set in the .ts sources bind. Not
 * otherwise: `dev` runs under tsx, which enables source maps for the whole process, worker threads included, and
 * Node would then read and index each bundle's map (2-6 MB) at every cold start.
 */
export const DEBUG_OVERRIDES = { sourcemap: 'linked' } as const satisfies BuildOptions;

/** Folders whose changes rebuild the bundles (everything a handler imports lives in them). */
export const WATCHED_FOLDERS = ['functions', 'shared', 'schemas'];

/**
 * What the nodejs22.x runtime resolves for a handler besides its zip: the AWS SDK v3. serverless.yml's
 * custom.esbuild.exclude may leave out only these (the runtime has them); anything else excluded is missing in AWS.
 */
export const RUNTIME_PROVIDED = ['@aws-sdk'];

/**
 * A folder for a set of bundles outside the service directory (see BundleOptions.outDir), private, one per
 * checkout and label.
 */
export function bundlesDir(root: string, label: string): string {
  const checkout = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 12);
  const dir = path.join(tmpdir(), `mobility-events-bundles-${process.getuid?.() ?? 'user'}`, checkout);
  ensurePrivateDir(dir);
  return path.join(dir, label);
}

export interface BundleOptions {
  /** The service directory (the working directory): entry points and node_modules resolve from it. */
  root: string;
  /**
   * Where the bundles go (as .esbuild/.build does for `serverless package`): outside the service directory, so a
   * bundle resolves what it does not contain as in Lambda, from RUNTIME_PROVIDED only (linked into
   * <outDir>/node_modules), never from the project's node_modules. A module excluded by mistake fails here too.
   */
  outDir: string;
  /** Source maps for a debugger (DEBUG_OVERRIDES). */
  sourceMaps?: boolean;
  /** Only these functions (keys of serverless.yml functions); default all. */
  functions?: string[];
}

export interface RebuildOutcome {
  ok: boolean;
  /** Functions whose bundle changed (and was written). */
  changed: string[];
  ms: number;
  error?: string;
}

interface PluginEntry {
  entry: string;
  result?: BuildResult;
}

/** The subset of serverless-esbuild's plugin object this module drives. */
interface EsbuildPlugin {
  buildOptions: Record<string, unknown> & { outputFileExtension: string };
  workDirPath: string;
  buildDirPath: string;
  buildCache: Record<string, PluginEntry>;
  functionEntries: { entry: string; functionAlias: string }[];
  init(): void;
  bundle(): Promise<void>;
  disposeContexts(): Promise<void>;
}

/** A serverless-esbuild plugin instance over a resolved config, as osls would construct it (offline). */
function esbuildPlugin(config: ServiceConfig, root: string, only?: string[]): EsbuildPlugin {
  const Plugin = require('serverless-esbuild') as new (
    serverless: unknown,
    options: Record<string, unknown>,
    logging: unknown,
  ) => EsbuildPlugin;
  const functions = Object.fromEntries(
    Object.entries(structuredClone(config.functions) as Record<string, unknown>).filter(
      ([key]) => !only || only.includes(key),
    ),
  );
  const quiet = () => undefined;
  const serverless = {
    config: { serviceDir: root },
    service: {
      provider: structuredClone(config.provider),
      custom: structuredClone(config.custom ?? {}),
      package: structuredClone(config.package ?? {}),
      functions,
      getFunction: (key: string) => functions[key],
    },
    configSchemaHandler: { defineFunctionProperties: quiet },
    classes: { Error },
  };
  const log = { error: quiet, warning: quiet, notice: quiet, info: quiet, debug: quiet, verbose: quiet };
  const plugin = new Plugin(serverless, {}, { log });
  plugin.init();
  return plugin;
}

/** The esbuild options `serverless package` uses for this config (the plugin's, before its own stripping). */
export function packagedBuildOptions(config: ServiceConfig, root: string): Record<string, unknown> {
  return { ...esbuildPlugin(config, root).buildOptions };
}

export class FunctionBundles {
  readonly #plugin: EsbuildPlugin;
  readonly #options: BundleOptions;
  readonly #hashes = new Map<string, string>();
  readonly #listeners: ((outcome: RebuildOutcome) => void)[] = [];
  #watchers: TreeWatcher[] = [];
  #debounce: NodeJS.Timeout | undefined;
  #building: Promise<RebuildOutcome> | undefined;
  #again = false;
  #built = false;

  private constructor(plugin: EsbuildPlugin, options: BundleOptions) {
    this.#plugin = plugin;
    this.#options = options;
  }

  /** Builds every function's bundle once; throws when the build fails (nothing to run). */
  static async build(config: ServiceConfig, options: BundleOptions): Promise<FunctionBundles> {
    // The plugin (like osls) resolves entry points and esbuild resolves imports from the working directory.
    if (path.resolve(options.root) !== process.cwd()) {
      throw new Error(`the functions are bundled from the service directory ${options.root}; run from there`);
    }
    if (!path.relative(path.resolve(options.root), path.resolve(options.outDir)).startsWith('..')) {
      throw new Error(
        `bundles in ${options.outDir} would resolve the project's node_modules: use bundlesDir()`,
      );
    }
    await provideRuntimeModules(options.root, options.outDir);
    const plugin = esbuildPlugin(config, options.root, options.functions);
    plugin.buildOptions = {
      ...plugin.buildOptions,
      ...LOCAL_OVERRIDES,
      ...(options.sourceMaps ? DEBUG_OVERRIDES : {}),
    };
    plugin.workDirPath = options.outDir;
    plugin.buildDirPath = options.outDir;
    const bundles = new FunctionBundles(plugin, options);
    const first = await bundles.rebuild();
    if (!first.ok) {
      await bundles.close();
      throw new Error(`bundling the functions failed:\n${first.error}`);
    }
    return bundles;
  }

  /** The esbuild options the bundles are built with (the packaged ones plus the overrides above). */
  get buildOptions(): Record<string, unknown> {
    return { ...this.#plugin.buildOptions };
  }

  /** The bundle of a function, by serverless.yml key: `<outDir>/functions/<code>/handler.cjs` (its code's folder). */
  file(functionKey: string): string {
    const entry = this.#plugin.functionEntries.find((e) => e.functionAlias === functionKey)?.entry;
    if (!entry) throw new Error(`No bundle for function ${functionKey}`);
    return path.join(
      this.#options.outDir,
      `${entry.slice(0, entry.lastIndexOf('.'))}${this.#plugin.buildOptions.outputFileExtension}`,
    );
  }

  /** Called after every rebuild but the first: which bundles changed, or why the build failed. */
  onRebuild(listener: (outcome: RebuildOutcome) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Rebuilds (incrementally) and writes the bundles that changed. A failed build writes nothing: the
   * previous bundles keep running. Calls made while a build runs share one follow-up build.
   */
  rebuild(): Promise<RebuildOutcome> {
    if (this.#building) {
      this.#again = true;
      return this.#building;
    }
    this.#building = this.#build().finally(() => {
      this.#building = undefined;
      if (this.#again) {
        this.#again = false;
        void this.rebuild();
      }
    });
    return this.#building;
  }

  async #build(): Promise<RebuildOutcome> {
    const started = performance.now();
    const outcome = await this.#bundle();
    outcome.ms = performance.now() - started;
    if (this.#built) for (const listener of this.#listeners) listener(outcome);
    this.#built ||= outcome.ok;
    return outcome;
  }

  async #bundle(): Promise<RebuildOutcome> {
    try {
      await this.#plugin.bundle();
    } catch (error) {
      return { ok: false, changed: [], ms: 0, error: (error as Error).message ?? String(error) };
    }
    const changedEntries = new Set<string>();
    for (const { entry, result } of Object.values(this.#plugin.buildCache)) {
      for (const file of result?.outputFiles ?? []) {
        if (await this.#write(file)) changedEntries.add(entry);
      }
    }
    const changed = this.#plugin.functionEntries
      .filter((e) => changedEntries.has(e.entry))
      .map((e) => e.functionAlias);
    return { ok: true, changed, ms: 0 };
  }

  /** Writes one output file when its content changed, through a rename (atomic); true when it did. */
  async #write(file: OutputFile): Promise<boolean> {
    const hash = createHash('sha256').update(file.contents).digest('hex');
    if (this.#hashes.get(file.path) === hash) return false;
    await mkdir(path.dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    await writeFile(temporary, file.contents);
    await rename(temporary, file.path);
    this.#hashes.set(file.path, hash);
    return file.path.endsWith(this.#plugin.buildOptions.outputFileExtension);
  }

  /**
   * Rebuilds when a file under functions/, shared/ or schemas/ changes (bursts of changes: one rebuild).
   * `failed`: a folder that cannot be watched (the inotify limit, no permission), whose changes would go unseen.
   */
  watch(
    folders = WATCHED_FOLDERS,
    failed: (error: Error) => void = (error) => console.error(error.message),
  ): void {
    const changed = () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.rebuild(), 100);
    };
    for (const folder of folders) {
      this.#watchers.push(watchTree(path.join(this.#options.root, folder), { changed, failed }));
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#debounce);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    await this.#building;
    await this.#plugin.disposeContexts();
  }
}

/** Links each RUNTIME_PROVIDED package of the project into <outDir>/node_modules, as the runtime provides it. */
async function provideRuntimeModules(root: string, outDir: string): Promise<void> {
  const modules = path.join(outDir, 'node_modules');
  await mkdir(modules, { recursive: true });
  for (const name of RUNTIME_PROVIDED) {
    await symlink(path.join(path.resolve(root), 'node_modules', name), path.join(modules, name), 'dir').catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      },
    );
  }
}

export type FunctionCode = 'bundles' | 'sources';

/**
 * What the workers run: the bundles unless `--sources` (dev) or ESM_FUNCTION_CODE=sources (the emulator
 * process, the e2e harness) asks for the TypeScript sources.
 */
export function functionCode(sourcesFlag = false, env: NodeJS.ProcessEnv = process.env): FunctionCode {
  const configured = env.ESM_FUNCTION_CODE;
  if (configured !== undefined && configured !== '' && configured !== 'bundles' && configured !== 'sources') {
    throw new Error(`ESM_FUNCTION_CODE must be "bundles" or "sources", got "${configured}"`);
  }
  return sourcesFlag || configured === 'sources' ? 'sources' : 'bundles';
}

/** After each rebuild, the functions whose bundle changed start fresh environments (WorkerHandler.reload). */
export function reloadOnRebuild(bundles: FunctionBundles, workers: Map<string, { reload(): void }>): void {
  bundles.onRebuild(({ changed }) => {
    for (const key of changed) workers.get(key)?.reload();
  });
}
