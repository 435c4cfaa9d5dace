// `npm run bench [-- decode audit ...]`: every benchmark (or the ones named), one after another, never two
// at once (they would measure each other). Each writes its section of bench/RESULTS.md and its row of the
// summary table; this runner only sequences them, times them, and fails at the end if any failed, after
// running the rest.
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { settle } from './settle';

/** The order of the report; the shortest first, so a broken setup shows early. */
const BENCHMARKS = ['decode', 'read-models', 'latency', 'audit', 'bundles', 'emulator', 'e2e'] as const;

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(BENCHMARKS as readonly string[]).includes(name));
if (unknown.length > 0) {
  process.stderr.write(
    `npm run bench: unknown benchmark(s) ${unknown.join(', ')}; known: ${BENCHMARKS.join(', ')}\n`,
  );
  process.exit(2);
}
const selected = requested.length > 0 ? BENCHMARKS.filter((name) => requested.includes(name)) : BENCHMARKS;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const failed: string[] = [];
for (const name of selected) {
  const quiet = await settle();
  const started = Date.now();
  log(`${name}: npm run bench:${name} (${quiet}; load average ${loadavg()[0]?.toFixed(1)})`);
  const result = spawnSync('npm', ['run', '-s', `bench:${name}`], { stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (result.status === 0) {
    log(`${name}: done in ${seconds} s`);
  } else {
    failed.push(name);
    log(`${name}: FAILED (exit ${result.status ?? result.signal}) after ${seconds} s`);
  }
}
if (failed.length > 0) {
  log(`failed: ${failed.join(', ')}; their sections and summary rows in bench/RESULTS.md were not rewritten`);
  process.exit(1);
}
log(`all done: bench/RESULTS.md has ${selected.join(', ')}`);
