// The bundles the emulator and `dev` run (local/esm/bundles.ts) are the bytes `serverless package` zips: same
// plugin, same options, same entry points. A bundling bug (an excluded module, an import esbuild resolves
// differently) therefore shows up locally.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionBundles } from '../../local/esm/bundles';
import { resolvedServerlessConfig } from '../../local/serverless-config';
import { repoRoot } from '../../local/stack/paths';
import { copyService, runServerlessPackage } from './package-stage';

const run = promisify(execFile);

describe('the local bundles', () => {
  let copy: string;
  let outDir: string;
  let packaged: { ok: boolean; output: string };
  let bundles: FunctionBundles;

  beforeAll(async () => {
    copy = await copyService('bundles-test');
    [packaged, bundles] = await Promise.all([
      runServerlessPackage(copy, ['--stage', 'local', '--package', path.join(copy, 'artifacts')]),
      (async () => {
        outDir = await mkdtemp(path.join(tmpdir(), 'bundles-deploy-test-'));
        return FunctionBundles.build(resolvedServerlessConfig('local'), { root: repoRoot, outDir });
      })(),
    ]);
  });

  afterAll(async () => {
    await bundles?.close();
    await Promise.all([copy, outDir].map((dir) => dir && rm(dir, { recursive: true, force: true })));
  });

  it('are byte for byte the handlers `serverless package` zips', async () => {
    expect(packaged.ok, packaged.output).toBe(true);
    // The copy links node_modules, which esbuild names by its real path, relative to the copy.
    const linked = `${path.relative(copy, repoRoot)}/node_modules/`;
    const functions = Object.keys(resolvedServerlessConfig('local').functions);
    expect(functions.length).toBeGreaterThan(0);
    for (const key of functions) {
      const file = path.relative(outDir, bundles.file(key));
      const { stdout: zipped } = await run(
        'unzip',
        ['-p', path.join(copy, 'artifacts', `${key}.zip`), file],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      const local = await readFile(bundles.file(key), 'utf8');
      expect(zipped.length, key).toBeGreaterThan(0);
      expect(zipped.replaceAll(linked, 'node_modules/') === local, `${key}: ${file} differs`).toBe(true);
    }
  });

  // shared/xray-mode.ts must run before the X-Ray SDK in the bundle too (esbuild keeps import order): without
  // tracing, no async hook on every promise.
  it('start the X-Ray SDK in manual mode without tracing, in its automatic mode with it', async () => {
    const probe = [
      `require(${JSON.stringify(bundles.file('billing'))});`,
      "console.log(JSON.stringify({ hook: 'AWSXRay' in (process.namespaces || {}) }));",
    ].join(' ');
    const started = async (tracing: boolean) => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        AWS_REGION: 'eu-west-1',
        BILLING_TABLE: 'billing',
      };
      if (tracing) env.AWS_XRAY_DAEMON_ADDRESS = '169.254.79.129:2000';
      const { stdout } = await run(process.execPath, ['-e', probe], { env });
      return JSON.parse(stdout.trim().split('\n').at(-1) as string) as { hook: boolean };
    };
    expect(await started(false)).toEqual({ hook: false });
    expect(await started(true)).toEqual({ hook: true });
  });
});
