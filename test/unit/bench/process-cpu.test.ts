import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  commandCpuSeconds,
  ownCpuSeconds,
  ownThreadsCpuSeconds,
  processCpuSeconds,
  processMinorFaults,
  startCpuMeter,
} from '../../../bench/process-cpu';

/** Burns this much CPU time (not wall time: a busy CI machine must not make the test flaky). */
const spin = (cpuMs: number) => {
  const until = ownCpuSeconds() + cpuMs / 1000;
  while (ownCpuSeconds() < until) {
    // on purpose
  }
};

describe('process CPU from /proc', () => {
  it('reads a process by pid, and nothing for one that does not exist', () => {
    const before = processCpuSeconds(process.pid) as number;
    spin(150);
    const after = processCpuSeconds(process.pid) as number;
    // Ticks are 10 ms: 150 ms of CPU shows as about 15 of them.
    expect(after - before).toBeGreaterThanOrEqual(0.1);
    expect(processCpuSeconds(2 ** 22 + 1)).toBeUndefined();
    expect(processCpuSeconds(undefined)).toBeUndefined();
  });

  it('counts the page faults of first touches of new memory, and nothing for a process that does not exist', () => {
    const before = processMinorFaults(process.pid) as number;
    // 64 MiB outside V8's heap, written once: its pages are mapped on first touch, 16,384 of 4 KiB.
    Buffer.allocUnsafeSlow(64 * 1024 * 1024).fill(1);
    const after = processMinorFaults(process.pid) as number;
    // Fewer with transparent huge pages, which map 2 MiB at a time.
    expect(after - before).toBeGreaterThanOrEqual(16);
    expect(processMinorFaults(2 ** 22 + 1)).toBeUndefined();
  });

  it("sums this process's threads of one name, and nothing for a name no thread has", () => {
    const name = readFileSync('/proc/thread-self/comm', 'utf8').trim();
    const before = ownThreadsCpuSeconds(name) as number;
    spin(150);
    expect((ownThreadsCpuSeconds(name) as number) - before).toBeGreaterThanOrEqual(0.1);
    expect(ownThreadsCpuSeconds('no-such-thread')).toBe(0);
  });

  it('sums every process of a command name', () => {
    const own = processCpuSeconds(process.pid) as number;
    const comm = spawnSync('cat', [`/proc/${process.pid}/comm`], { encoding: 'utf8' }).stdout.trim();
    expect(commandCpuSeconds(comm)).toBeGreaterThanOrEqual(own - 0.01);
    expect(commandCpuSeconds('no-such-command-here')).toBe(0);
  });

  it('reports each source as a share of one core over the measured time, leaving out unreadable ones', () => {
    const wallBefore = performance.now();
    const cpuBefore = ownCpuSeconds();
    const stop = startCpuMeter({ self: ownCpuSeconds, gone: () => undefined });
    spin(200);
    const shares = stop();
    const expected = ((ownCpuSeconds() - cpuBefore) / ((performance.now() - wallBefore) / 1000)) * 100;
    expect(Object.keys(shares)).toEqual(['self']);
    expect(shares.self).toBeGreaterThan(0);
    expect(Math.abs((shares.self as number) - expected) / expected).toBeLessThan(0.2);
  });
});

describe('npm run bench', () => {
  it('refuses an unknown benchmark name before running anything, naming the known ones', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run-all.ts', 'decode', 'nope'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'unknown benchmark(s) nope; known: decode, read-models, latency, audit, bundles, emulator, e2e',
    );
    expect(run.stderr).not.toContain('[bench]');
  });
});
