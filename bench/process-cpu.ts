// CPU time of the processes a benchmark drives, from /proc (Linux), so a report can say where the machine's
// time went, not only how long things took. Everything returns undefined where there is no /proc.
import { readdirSync, readFileSync } from 'node:fs';

/** proc(5) reports utime and stime in clock ticks; Linux uses 100 per second. */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used so far. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds so far of this process's threads of one name (proc(5) comm), e.g. V8's profiler threads. */
export function ownThreadsCpuSeconds(name: string): number | undefined {
  try {
    let total = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name)
          total += statCpuSeconds(`/proc/self/task/${tid}/stat`) ?? 0;
      } catch {
        // the thread ended meanwhile
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) one thread of this process has used so far: a worker thread, by its tid. */
export function threadCpuSeconds(tid: number): number | undefined {
  return statCpuSeconds(`/proc/self/task/${tid}/stat`);
}

function statCpuSeconds(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of proc(5).
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Minor page faults a process has taken so far (first touches of mapped memory, shared memory included). */
export function processMinorFaults(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // minflt, field 10 of proc(5).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    return undefined;
  }
}

/** CPU seconds of every process whose command name is `comm` (a server and all its backends). */
export function commandCpuSeconds(comm: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  let total = 0;
  for (const pid of entries) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) continue;
    } catch {
      continue; // gone since the listing
    }
    total += processCpuSeconds(Number(pid)) ?? 0;
  }
  return total;
}

/** This process, worker threads included. */
export const ownCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

export type CpuSources = Record<string, () => number | undefined>;

/**
 * Starts measuring: the returned function gives each source's CPU over the time since, as a share of one core
 * (100 = one core busy the whole time), leaving out sources it could not read.
 */
export function startCpuMeter(sources: CpuSources): () => Record<string, number> {
  const startedAt = performance.now();
  const before = Object.fromEntries(Object.entries(sources).map(([name, read]) => [name, read()]));
  return () => {
    const seconds = (performance.now() - startedAt) / 1000;
    const shares: Record<string, number> = {};
    for (const [name, read] of Object.entries(sources)) {
      const start = before[name];
      const end = read();
      if (start === undefined || end === undefined || seconds <= 0) continue;
      shares[name] = ((end - start) / seconds) * 100;
    }
    return shares;
  };
}

/** Busy share of all CPUs since the previous call, from /proc/stat; undefined where there is no /proc. */
export function machineBusy(): () => number | undefined {
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
