/**
 * Bundle size and module init time per function, from the artifacts `serverless package` builds.
 *
 *   npm run bench:bundles [-- --runs 9]
 *
 * Packages the local stage into a private copy of the service (test/deploy/package-stage.ts; the working tree
 * and its .serverless are not touched), then for every function:
 * - the size of <function>.zip (what Lambda receives; target < 1 MB) and of the bundled handler inside it,
 * - the time to `require` the bundled handler in a fresh node process (module scope: SDK clients, Powertools,
 *   schemas, config), with the function's own environment from the template. Median of --runs processes;
 *   process start-up itself is not included. Measured once as deployed (NODE_OPTIONS=--enable-source-maps, as
 *   serverless.yml sets) and once without source maps. Target < 150 ms locally.
 * Writes (or replaces) its section of bench/RESULTS.md, between <!-- bundles:start --> and <!-- bundles:end -->,
 * and leaves every other section alone.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageStage, projectRoot, removePackage } from '../test/deploy/package-stage';

const run = promisify(execFile);
const SIZE_TARGET_BYTES = 1024 * 1024;
const INIT_TARGET_MS = 150;

// What the numbers above were traced to (CPU profiles and esbuild metafiles, 2026-11-23). Kept with the table
// so a re-run shows whether they still hold.
const FINDINGS = [
  'Findings (2026-11-23, CPU profiles and esbuild metafiles of these bundles):',
  '- Init is module evaluation, not parsing: a minified bundle (and one without the AWS SDK, which the runtime',
  '  provides) took the same CPU time to load as the plain one (billing ~210-280 ms CPU each).',
  '  The SDK clients dominate: about a third of billing is @aws-sdk/client-dynamodb with @smithy/core.',
  '- incident-explanation: @platformatic/kafka compiles its ajv option schemas at load (about half its init time),',
  '  and @aws-sdk/client-glue (626 KiB, the Glue schema registry adapter) is bundled although SCHEMA_REGISTRY=file.',
  '  Loading the Kafka producer and the Glue client on first use would take both off the cold start.',
  '- Size: sourcesContent=false in custom.esbuild cut each zip by ~40% (the embedded sources); minify barely changes',
  '  the zip (deflate already compresses); AWS SDK as external (runtime-provided) would cut ~50% more, at the cost',
  '  of running whatever SDK version the runtime ships instead of the pinned one.',
  '',
];

const runsArgument = process.argv.indexOf('--runs');
const RUNS = runsArgument > 0 ? Number(process.argv[runsArgument + 1]) : 7;

// Runs in the child: the time `require` of the handler bundle takes, nothing else.
const MEASURE = `
const { performance } = require('node:perf_hooks');
const cpu = process.cpuUsage();
const started = performance.now();
require(process.argv[1]);
const wall = performance.now() - started;
const used = process.cpuUsage(cpu);
process.stderr.write('\\n@@init ' + wall + ' ' + (used.user + used.system) / 1000 + '\\n');
`;

interface FunctionResult {
  name: string;
  zipBytes: number;
  handlerBytes: number;
  sourceMapBytes: number;
  /** Wall-clock medians; NaN when the bundle does not load (`error` then says why). */
  initMs: number;
  initMsNoSourceMaps: number;
  /** CPU time (user + system, all threads) of the same require: less sensitive to a busy machine. */
  initCpuMs: number;
  error?: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** The function's environment as deployed; references to stack resources become placeholder names. */
function environmentFor(template: Record<string, unknown>, logicalId: string, name: string) {
  const resources = (template as { Resources: Record<string, { Properties: Record<string, unknown> }> })
    .Resources;
  const variables =
    (resources[logicalId]?.Properties.Environment as { Variables?: Record<string, unknown> })?.Variables ??
    {};
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'eu-west-1',
    AWS_DEFAULT_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_LAMBDA_FUNCTION_NAME: `mobility-events-local-${name}`,
  };
  for (const [key, value] of Object.entries(variables)) {
    env[key] = typeof value === 'string' ? value : `bench-${key.toLowerCase()}`;
  }
  return env;
}

/** Median init time, or the first line of the error when the bundle cannot even be loaded. */
async function initTime(
  handler: string,
  env: Record<string, string>,
): Promise<{ wall: number; cpu: number } | { error: string }> {
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    try {
      // The handler may log at load (stdout): the measurement goes to stderr behind a marker.
      const { stderr } = await run(process.execPath, ['-e', MEASURE, handler], {
        env,
        cwd: path.dirname(handler),
      });
      const [, wall, cpu] = /@@init ([\d.]+) ([\d.]+)/.exec(stderr) ?? [];
      samples.push(Number(wall));
      cpuSamples.push(Number(cpu));
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? error);
      const reason = stderr.split('\n').find((line) => /Error|error:/.test(line)) ?? stderr.slice(0, 200);
      return { error: reason.trim() };
    }
  }
  return { wall: median(samples), cpu: median(cpuSamples) };
}

const loadAtStart = os
  .loadavg()
  .map((load) => load.toFixed(1))
  .join(' / ');

async function main() {
  const packaged = await packageStage({ stage: 'local' });
  if (!packaged.ok || !packaged.template) throw new Error(`serverless package failed:\n${packaged.output}`);
  const unpacked = await mkdtemp(path.join(os.tmpdir(), 'mobility-events-bundles-'));
  const results: FunctionResult[] = [];
  try {
    const zips = (await readdir(packaged.artifactDir)).filter((file) => file.endsWith('.zip')).sort();
    for (const zip of zips) {
      const name = zip.replace(/\.zip$/, '');
      const target = path.join(unpacked, name);
      await run('unzip', ['-q', '-o', path.join(packaged.artifactDir, zip), '-d', target]);
      const handler = path.join(target, 'functions', name, 'handler.js');
      const logicalId = `${name.charAt(0).toUpperCase()}${name.slice(1).replace(/-/g, 'Dash')}LambdaFunction`;
      const env = environmentFor(packaged.template as unknown as Record<string, unknown>, logicalId, name);
      const { NODE_OPTIONS: _sourceMaps, ...envNoSourceMaps } = env;
      const deployed = await initTime(handler, env);
      const noSourceMaps = await initTime(handler, envNoSourceMaps);
      results.push({
        name,
        zipBytes: (await stat(path.join(packaged.artifactDir, zip))).size,
        handlerBytes: (await stat(handler)).size,
        sourceMapBytes: await stat(`${handler}.map`).then(
          (s) => s.size,
          () => 0,
        ),
        initMs: 'wall' in deployed ? deployed.wall : Number.NaN,
        initCpuMs: 'wall' in deployed ? deployed.cpu : Number.NaN,
        initMsNoSourceMaps: 'wall' in noSourceMaps ? noSourceMaps.wall : Number.NaN,
        ...('error' in deployed ? { error: deployed.error } : {}),
      });
      process.stdout.write(`${name}: ${JSON.stringify(results.at(-1))}\n`);
    }
  } finally {
    await rm(unpacked, { recursive: true, force: true });
    await removePackage(packaged);
  }
  await writeSection(results);
}

async function writeSection(results: FunctionResult[]) {
  const cpus = os.cpus();
  const init = (r: FunctionResult) =>
    r.error
      ? `✗ does not load: \`${r.error.replace(/\|/g, '\\|')}\``
      : `${r.initMs.toFixed(0)} ms ${r.initMs < INIT_TARGET_MS ? '✓' : '✗'}`;
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${kib(r.zipBytes)} ${r.zipBytes < SIZE_TARGET_BYTES ? '✓' : '✗'} | ${kib(r.handlerBytes)} | ` +
      `${kib(r.sourceMapBytes)} | ${init(r)} | ${r.error ? '-' : `${r.initCpuMs.toFixed(0)} ms`} | ` +
      `${r.error ? '-' : `${r.initMsNoSourceMaps.toFixed(0)} ms`} |`,
  );
  const section = [
    '## Bundles',
    '',
    `Measured ${new Date().toISOString()} with \`npm run bench:bundles\` on ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}, Node ${process.version}; ` +
      `load average ${loadAtStart} at the start (other work on the machine inflates wall times; CPU time less so).`,
    `Artifacts of \`serverless package --stage local\` (esbuild, one bundle per function, target node20, not minified,`,
    `linked source map inside the zip). Init = \`require\` of the bundled handler in a fresh process with the`,
    `function's environment from the template, median of ${RUNS} processes (process start not included).`,
    `Targets: zip < 1 MB, init < ${INIT_TARGET_MS} ms (with source maps, as deployed).`,
    '',
    '| function | zip | handler.js | handler.js.map | init, wall (as deployed) | init, CPU | init, wall, no source maps |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    ...FINDINGS,
  ].join('\n');
  const file = path.join(projectRoot, 'bench', 'RESULTS.md');
  const existing = await readFile(file, 'utf8').catch(() => '# Benchmark results\n');
  // Only this section changes: between its markers, or appended at the end the first time.
  const start = '<!-- bundles:start -->';
  const end = '<!-- bundles:end -->';
  const block = `${start}\n${section.trimEnd()}\n${end}`;
  const from = existing.indexOf(start);
  const to = existing.indexOf(end);
  const updated =
    from >= 0 && to > from
      ? `${existing.slice(0, from)}${block}${existing.slice(to + end.length)}`
      : `${existing.trimEnd()}\n\n${block}\n`;
  await writeFile(file, updated);
  process.stdout.write(`\n${section}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : error}\n`);
  process.exitCode = 1;
});
