/**
 * npm run fuzz -- [--records N] [--seed S] [--out FILE]
 * Fuzzes the decode path and every function's pure path with mutated records (bench/fuzz/harness.ts) until N
 * mutated records went through (default 100,000), printing progress; findings go to FILE as JSON lines
 * (default .local/fuzz-findings.jsonl), with a summary line (peak RSS included) at the end. Exit code 1 when
 * anything was found.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { numberFlag } from '../shared/cli-error';
import { fuzz } from './fuzz/harness';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};

const records = numberFlag('records', flag('records'), Number.isSafeInteger, 'a whole number') ?? 100_000;
const seed = numberFlag('seed', flag('seed'), Number.isSafeInteger, 'a whole number') ?? Date.now() % 2 ** 31;
const out = flag('out') ?? '.local/fuzz-findings.jsonl';

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, '');
let written = 0;
let mutated = 0;
let maxMs = 0;
let lastReport = 0;
const started = Date.now();
console.log(`fuzz: ${records} mutated records, seed ${seed}, findings to ${out}`);
const summary = await fuzz({
  records,
  seed,
  onBatch: (stats, findings) => {
    mutated += stats.mutated;
    maxMs = Math.max(maxMs, stats.cpuMs);
    // Findings are written as they come, so a run that is stopped keeps what it found.
    for (; written < findings.length; written++)
      appendFileSync(out, `${JSON.stringify(findings[written])}\n`);
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      const rss = Math.round(process.resourceUsage().maxRSS / 1024);
      console.log(
        `  ${Math.round((Date.now() - started) / 1000)} s, ${mutated} mutated records, findings ` +
          `${findings.length}, slowest batch ${Math.round(maxMs)} ms CPU, peak RSS ${rss} MB`,
      );
    }
  },
});
const result = {
  summary: true,
  seed,
  batches: summary.batches,
  records: summary.records,
  mutated: summary.mutated,
  mutatedDecodedValid: summary.mutatedDecoded,
  mutatedFailedAlone: summary.mutatedFailed,
  findings: summary.findings.length,
  batchLevelFailures: summary.findings.filter((finding) => finding.kind === 'batch-level').length,
  maxBatchWallMs: Math.round(summary.maxBatchMs),
  maxBatchCpuMs: Math.round(summary.maxBatchCpuMs),
  maxBatchHeapDeltaMB: Math.round(summary.maxHeapDeltaBytes / 1e6),
  peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  seconds: Math.round((Date.now() - started) / 1000),
};
appendFileSync(out, `${JSON.stringify(result)}\n`);
console.log(JSON.stringify(result));
process.exitCode = summary.findings.length > 0 ? 1 : 0;
