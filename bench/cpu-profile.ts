// Splits a V8 CPU profile (`node --cpu-prof`) by who was working: each sample goes to the innermost frame of
// its stack that belongs to a known part of the code (the AWS SDK, the function's own code, other packages),
// so time in Node's builtins (http, crypto, JSON) counts for whoever called them: a SigV4 hash is the SDK's,
// a JSON.stringify in a handler the handler's. Samples with no such frame (GC, idle, module loading with no
// JavaScript caller) are "runtime".
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code comes from, by its file path; undefined: Node itself (builtins, native). */
export type Part = 'sdk' | 'handler' | 'kafka' | 'packages' | 'bench';

export function partOf(url: string): Part | undefined {
  if (url === '' || url.startsWith('node:')) return undefined;
  if (/node_modules\/(@aws-sdk|@smithy|@aws-crypto|@aws-lambda-powertools|fast-xml-parser|tslib)\//.test(url))
    return 'sdk';
  if (/node_modules\/@platformatic\/kafka\//.test(url)) return 'kafka';
  if (url.includes('node_modules/')) return 'packages';
  if (/\/(functions|shared|schemas)\//.test(url)) return 'handler';
  return 'bench';
}

/** Milliseconds of samples per part, plus `idle` (the profiler's idle node) and `runtime` (no part on the stack). */
export function splitProfile(profile: CpuProfile): Record<Part | 'runtime' | 'idle', number> {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const owner = new Map<number, Part | 'runtime' | 'idle'>();
  const ownerOf = (id: number): Part | 'runtime' | 'idle' => {
    const known = owner.get(id);
    if (known) return known;
    let result: Part | 'runtime' | 'idle' = 'runtime';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame) break;
      if (frame.functionName === '(idle)') {
        result = 'idle';
        break;
      }
      const part = partOf(frame.url);
      if (part) {
        result = part;
        break;
      }
    }
    owner.set(id, result);
    return result;
  };
  const totals: Record<Part | 'runtime' | 'idle', number> = {
    sdk: 0,
    handler: 0,
    kafka: 0,
    packages: 0,
    bench: 0,
    runtime: 0,
    idle: 0,
  };
  profile.samples.forEach((id, i) => {
    totals[ownerOf(id)] += (profile.timeDeltas[i] ?? 0) / 1000;
  });
  return totals;
}

/**
 * The profile's samples within [from, to) of the wall clock, as a profile of that span. V8 stamps samples with the
 * monotonic clock in microseconds, the clock of process.hrtime; `wallAt` pairs a reading of each.
 */
export function profileWithin(
  profile: CpuProfile,
  wallAt: { wallMs: number; monotonicUs: number },
  window: { from: number; to: number },
): CpuProfile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let at = profile.startTime;
  let startTime: number | undefined;
  let endTime = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const wall = wallAt.wallMs + (at - wallAt.monotonicUs) / 1000;
    if (wall >= window.from && wall < window.to) {
      startTime ??= at - delta;
      endTime = at;
      samples.push(id);
      timeDeltas.push(delta);
    }
  });
  return { ...profile, startTime: startTime ?? endTime, endTime, samples, timeDeltas };
}

export const readProfile = (path: string): CpuProfile => JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;

// `tsx bench/cpu-profile.ts <file.cpuprofile>...`: the split of each profile, in ms.
if (process.argv[1]?.endsWith('cpu-profile.ts')) {
  for (const file of process.argv.slice(2)) {
    const split = splitProfile(readProfile(file));
    process.stdout.write(
      `${file}: ${Object.entries(split)
        .map(([part, ms]) => `${part} ${ms.toFixed(0)} ms`)
        .join(', ')}\n`,
    );
  }
}
