// Runs a benchmark on the Node.js major Lambda runs the functions on (serverless.yml's provider runtime,
// nodejs22.x), as CI runs the tests: `tsx bench/lambda-node.ts <command> [args]` puts that major's binary from
// .ci/node (`npm ci --prefix .ci/node`) first on PATH for the command and everything it starts (its `#!/usr/bin/env
// node` scripts, the stand-ins, the function workers). Why: a benchmark's figures are the functions' on their
// runtime; on these 2-core machines bench:e2e's p95s at 1,000 mixed events/s were 1.3-2.9x lower on Node 22 than on
// Node 20 in runs interleaved on one boot (2026-12-08). Without that binary it runs on the node it has, and says so.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Node.js major of serverless.yml's provider runtime (`runtime: nodejs22.x`). */
export function lambdaNodeMajor(serverlessYml: string): number {
  // The first `runtime:` under `provider:` (a function's own comes later), quoted or not, a comment after it.
  const match =
    /^provider:[ \t]*\n(?:(?:[ \t]+.*)?\n)*?[ \t]+runtime:[ \t]*(['"]?)nodejs(\d+)\.x\1[ \t]*(?:#.*)?$/m.exec(
      serverlessYml,
    );
  if (!match) throw new Error('serverless.yml: no provider runtime of the form nodejs<major>.x');
  return Number(match[2]);
}

/**
 * The folder to put first on PATH so that `node` is Lambda's major: undefined when the running node already is
 * it, or when .ci/node does not have it (`missing` then says what to run).
 */
export function lambdaNodeBin(
  major: number,
  runningVersion: string,
  exists: (path: string) => boolean = existsSync,
): { bin: string | undefined; missing?: string } {
  if (Number(runningVersion.replace(/^v/, '').split('.')[0]) === major) return { bin: undefined };
  const bin = join(root, '.ci', 'node', 'node_modules', `node${major}`, 'bin');
  if (exists(join(bin, 'node'))) return { bin };
  return {
    bin: undefined,
    missing:
      `bench: running on Node ${runningVersion}, but Lambda runs the functions on Node ${major} ` +
      `(nodejs${major}.x); \`npm ci --prefix .ci/node\` installs it and the benchmarks then run on it`,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    process.stderr.write('usage: tsx bench/lambda-node.ts <command> [args...]\n');
    process.exit(2);
  }
  const major = lambdaNodeMajor(readFileSync(join(root, 'serverless.yml'), 'utf8'));
  const { bin, missing } = lambdaNodeBin(major, process.version);
  if (missing) process.stderr.write(`${missing}\n`);
  const env = bin ? { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } : process.env;
  const child = spawn(command, args, { stdio: 'inherit', env });
  // Ctrl-C reaches the whole process group, the benchmark too; a SIGTERM or SIGHUP sent to this process alone is
  // passed on, so the benchmark stops the services it started.
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  process.on('SIGINT', () => {});
  child.on('error', (error) => {
    process.stderr.write(`bench: could not start ${command}: ${error.message}\n`);
    process.exit(1);
  });
  // A child killed by a signal exits like a shell reports it: 128 + the signal's number.
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
}
