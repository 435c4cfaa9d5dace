// The emulator's workers run each function from its bundle, built with serverless.yml's esbuild settings by the
// serverless-esbuild plugin, rebuilt when a source changes. A fixture function in a temporary folder under the
// ignored .local/ (the plugin bundles from the service directory) with the real custom.esbuild, so no real
// source is touched.
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MSKEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FunctionBundles,
  functionCode,
  LOCAL_OVERRIDES,
  packagedBuildOptions,
  type RebuildOutcome,
  reloadOnRebuild,
} from '../../../local/esm/bundles';
import type { ResolvedServerlessConfig } from '../../../local/esm/config';
import { invokeHandler } from '../../../local/esm/invoker';
import { type WorkerHandler, workerHandler } from '../../../local/esm/worker-handler';
import { resolvedServerlessConfig } from '../../../local/serverless-config';
import { repoRoot, stateDir } from '../../../local/stack/paths';
import { waitFor } from '../../support/wait';

const settings = {
  functionName: 'probe',
  timeoutSeconds: 20,
  memorySize: 128,
  region: 'eu-west-1',
  accountId: '1',
};
const event = (extra: Record<string, unknown> = {}) => ({ records: {}, ...extra }) as unknown as MSKEvent;

// import.meta.url is what the bundle defines as its own file (serverless.yml custom.esbuild.define/banner):
// handler.cjs in the bundle, handler.ts when tsx runs the source.
// `until`: the invocation stays in flight until that file exists.
const HANDLER = `import { existsSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { message } from './message';
export const handler = async (event: { until?: string }) => {
  while (event.until && !existsSync(event.until)) await new Promise((resolve) => setTimeout(resolve, 20));
  return { message, module: import.meta.url, threadId };
};
`;
const message = (text: string) => `export const message = ${JSON.stringify(text)};\n`;

describe('function bundles', () => {
  let fixture: string;
  let out: string;
  let handlerPath: string;
  let config: ResolvedServerlessConfig & { custom: { esbuild: Record<string, unknown> } };
  let bundles: FunctionBundles;
  const workers: WorkerHandler[] = [];
  const rebuilds: RebuildOutcome[] = [];
  let onRebuild: ((outcome: RebuildOutcome) => void) | undefined;
  const nextRebuild = () =>
    new Promise<RebuildOutcome>((resolve) => {
      onRebuild = resolve;
    });
  /**
   * Replaces message.ts in one step (written beside the watched folder, then renamed in): a rebuild that a
   * pending watcher event starts while a plain write has truncated the file would bundle an empty module (CI saw
   * one: `message` undefined after the failed rebuild below).
   */
  const writeMessage = async (source: string) => {
    const temporary = path.join(path.dirname(fixture), `.message-${process.pid}.tmp`);
    await writeFile(temporary, source);
    await rename(temporary, path.join(fixture, 'message.ts'));
  };

  beforeAll(async () => {
    await mkdir(stateDir, { recursive: true });
    fixture = await mkdtemp(path.join(stateDir, 'bundles-test-'));
    await writeFile(path.join(fixture, 'handler.ts'), HANDLER);
    await writeFile(path.join(fixture, 'message.ts'), message('first'));
    // Imports the Glue client (provided by the runtime) and avsc (not), both excluded by the test below.
    await writeFile(
      path.join(fixture, 'excluded.ts'),
      `export const handler = async () => {
  await import('@aws-sdk/client-glue');
  await import('avsc');
  return 'loaded';
};
`,
    );
    handlerPath = `${path.relative(repoRoot, fixture)}/handler.handler`;
    const real = resolvedServerlessConfig() as unknown as typeof config;
    config = { ...real, functions: { probe: { handler: handlerPath } } as never };
    // Outside the repository, as bundlesDir() places them.
    out = await mkdtemp(path.join(tmpdir(), 'bundles-test-out-'));
    bundles = await FunctionBundles.build(config, { root: repoRoot, outDir: path.join(out, 'main') });
    bundles.onRebuild((outcome) => {
      rebuilds.push(outcome);
      onRebuild?.(outcome);
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await bundles?.close();
    await Promise.all([fixture, out].map((dir) => dir && rm(dir, { recursive: true, force: true })));
  });

  const pool = (bundle: boolean) => {
    const handler = workerHandler(
      handlerPath,
      {},
      {
        instances: 1,
        ...(bundle ? { bundle: bundles.file('probe') } : {}),
      },
    );
    workers.push(handler);
    return handler;
  };

  it('builds with the options `serverless package` uses, but for a linked source map and in-memory output', () => {
    expect(bundles.buildOptions).toEqual({ ...packagedBuildOptions(config, repoRoot), ...LOCAL_OVERRIDES });
    expect(packagedBuildOptions(config, repoRoot)).toMatchObject(config.custom.esbuild);
    expect(bundles.file('probe')).toBe(
      path.join(out, 'main', path.relative(repoRoot, fixture), 'handler.cjs'),
    );
  });

  it('gives the bundles a source map only for a debugger, mapping to the .ts sources', async () => {
    expect(await readFile(bundles.file('probe'), 'utf8')).not.toMatch(/sourceMappingURL/);
    const debug = await FunctionBundles.build(config, {
      root: repoRoot,
      outDir: path.join(out, 'debug'),
      sourceMaps: true,
    });
    try {
      const file = debug.file('probe');
      expect(await readFile(file, 'utf8')).toMatch(/\n\/\/# sourceMappingURL=handler\.cjs\.map\n$/);
      const map = JSON.parse(await readFile(`${file}.map`, 'utf8')) as { sources: string[] };
      expect(map.sources.map((source) => path.resolve(path.dirname(file), source))).toEqual(
        expect.arrayContaining([path.join(fixture, 'handler.ts'), path.join(fixture, 'message.ts')]),
      );
    } finally {
      await debug.close();
    }
  });

  it('resolves what a bundle leaves out as Lambda does: the runtime SDK, not the project node_modules', async () => {
    // avsc is in node_modules but not in Lambda's runtime: excluded from the zip, it is missing in AWS.
    const excluding = await FunctionBundles.build(
      {
        ...config,
        custom: {
          ...config.custom,
          esbuild: { ...config.custom.esbuild, exclude: ['@aws-sdk/client-glue', 'avsc'] },
        },
        functions: {
          probe: { handler: handlerPath.replace(/handler\.handler$/, 'excluded.handler') },
        } as never,
      },
      { root: repoRoot, outDir: path.join(out, 'excluded') },
    );
    try {
      const run = workerHandler(
        handlerPath.replace(/handler\.handler$/, 'excluded.handler'),
        {},
        {
          instances: 1,
          bundle: excluding.file('probe'),
        },
      );
      workers.push(run);
      const result = await invokeHandler(run.handler, event(), settings);
      expect(result).toMatchObject({ ok: false });
      expect((result as { error: Error }).error.message).toMatch(/Cannot find (module|package) 'avsc'/);
    } finally {
      await excluding.close();
    }
    await expect(
      FunctionBundles.build(config, { root: repoRoot, outDir: path.join(fixture, 'inside') }),
    ).rejects.toThrow(/node_modules/);
  });

  it('runs the bundle in the worker, and the sources without one', async () => {
    const fromBundle = await invokeHandler(pool(true).handler, event(), settings);
    expect(fromBundle).toMatchObject({ ok: true, response: { message: 'first' } });
    expect((fromBundle as { response: { module: string } }).response.module).toMatch(
      /\/main\/.*\/handler\.cjs$/,
    );
    const fromSources = await invokeHandler(pool(false).handler, event(), settings);
    expect((fromSources as { response: { module: string } }).response.module).toMatch(
      /\/bundles-test-\w+\/handler\.ts$/,
    );
  });

  it('rebuilds on a source change; the next invocation runs the new code, the one in flight finishes on the old', async () => {
    const probe = pool(true);
    reloadOnRebuild(bundles, new Map([['probe', probe]]));
    const before = await invokeHandler(probe.handler, event(), settings);
    expect(before).toMatchObject({ ok: true, response: { message: 'first' } });
    bundles.watch([path.relative(repoRoot, fixture)]);
    const release = path.join(fixture, 'release');
    let settled = false;
    const inFlight = invokeHandler(probe.handler, event({ until: release }), settings).finally(() => {
      settled = true;
    });
    const rebuilt = nextRebuild();
    await writeMessage(message('second'));
    expect(await rebuilt).toMatchObject({ ok: true, changed: ['probe'] });
    const after = invokeHandler(probe.handler, event(), settings);
    expect(settled).toBe(false);
    await writeFile(release, '');
    // Started on the old bundle, it answers once, from the old code: nothing for the ESM to retry or lose.
    const old = await inFlight;
    expect(old).toMatchObject({ ok: true, response: { message: 'first' } });
    const fresh = await after;
    expect(fresh).toMatchObject({ ok: true, response: { message: 'second' } });
    // A fresh environment (the replaced one stopped after its invocation), one cold start more.
    expect((fresh as { response: { threadId: number } }).response.threadId).not.toBe(
      (old as { response: { threadId: number } }).response.threadId,
    );
    expect(probe.coldStarts().count).toBe(2);
  }, 60_000);

  it('keeps running the previous bundle when a rebuild fails', async () => {
    const probe = pool(true);
    reloadOnRebuild(bundles, new Map([['probe', probe]]));
    // The rebuild of this write, not one the previous test's writes may still have pending (the watcher's events
    // for one write can come apart: CI saw a successful rebuild land here first).
    const before = rebuilds.length;
    await writeMessage('export const message = ;\n');
    await waitFor('a failed rebuild', () => rebuilds.slice(before).some((outcome) => !outcome.ok));
    const failed = rebuilds.slice(before).find((outcome) => !outcome.ok);
    expect(failed).toMatchObject({ ok: false, changed: [] });
    expect(failed?.error).toMatch(/message\.ts/);
    expect(await invokeHandler(probe.handler, event(), settings)).toMatchObject({
      ok: true,
      response: { message: 'second' },
    });
    expect(probe.coldStarts().count).toBe(1);
  }, 60_000);
});

describe('functionCode', () => {
  it('is the bundles unless --sources or ESM_FUNCTION_CODE=sources', () => {
    expect(functionCode(false, {})).toBe('bundles');
    expect(functionCode(true, {})).toBe('sources');
    expect(functionCode(false, { ESM_FUNCTION_CODE: 'sources' })).toBe('sources');
    expect(functionCode(false, { ESM_FUNCTION_CODE: 'bundles' })).toBe('bundles');
    expect(() => functionCode(false, { ESM_FUNCTION_CODE: 'source' })).toThrow(/ESM_FUNCTION_CODE/);
  });
});
