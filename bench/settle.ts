// Benchmarks measure each other: what one leaves behind (PostgreSQL's checkpoint after bench:audit, the
// stand-ins still busy after a saturating run) lands in the next. settle() waits for a quiet machine first.
import { setTimeout as sleep } from 'node:timers/promises';
import { machineBusy } from './process-cpu';

/** Waits until all CPUs together are less than 10% busy over 2 s, at most a minute; says how it went. */
export async function settle(): Promise<string> {
  const busy = machineBusy();
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
