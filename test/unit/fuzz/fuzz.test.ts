import { describe, expect, it } from 'vitest';
import { fuzz } from '../../../bench/fuzz/harness';

// A fixed seed and a bounded count keep CI deterministic; `npm run fuzz -- --records N` runs as long as asked.
// The harness measures time and heap per batch; those bounds are reported as findings by `npm run fuzz`, and
// left out here (no timing assertions in tests).
describe('fuzzing the decode and every pure path (fixed seed)', () => {
  it('every mutated record decodes to a valid event or fails alone with a reason; valid records all pass', async () => {
    const summary = await fuzz({ records: 2_500, seed: 20 });
    const correctness = summary.findings.filter(
      (finding) => finding.kind !== 'time-bound' && finding.kind !== 'heap-bound',
    );
    expect(correctness).toEqual([]);
    expect(summary.mutatedFailed).toBeGreaterThan(0);
    expect(summary.mutatedDecoded + summary.mutatedFailed).toBe(summary.mutated);
  }, 120_000);
});
