// Benchmarks measure each other: what one leaves behind (PostgreSQL's checkpoint after bench:audit, the
// stand-ins still busy after a saturating run) lands in the next. settle() waits for a quiet machine first.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Busy share of all CPUs since the previous call, from /proc/stat; undefined where there is no /proc. */
function cpuBusy(): () => number | undefined {
  const read = () => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8')
        .split('\n')[0]
        ?.trim()
        .split(/\s+/)
        .slice(1)
        .map(Number);
      if (!fields || fields.length < 5) return undefined;
      const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
      return { idle, total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  let last = read();
  return () => {
    const now = read();
    if (!now || !last) return undefined;
    const busy = 1 - (now.idle - last.idle) / Math.max(1, now.total - last.total);
    last = now;
    return busy;
  };
}

/** Waits until all CPUs together are less than 10% busy over 2 s, at most a minute; says how it went. */
export async function settle(): Promise<string> {
  const busy = cpuBusy();
  const started = Date.now();
  let share: number | undefined;
  while (Date.now() - started < 60_000) {
    await sleep(2_000);
    share = busy();
    if (share === undefined || share < 0.1) break;
  }
  const waited = ((Date.now() - started) / 1000).toFixed(0);
  return share === undefined ? 'no /proc/stat' : `CPU ${(share * 100).toFixed(0)}% busy after ${waited} s`;
}
