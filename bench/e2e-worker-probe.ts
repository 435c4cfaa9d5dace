// Loaded by the ESM emulator in every function worker thread when ESM_WORKER_PROBE names this file
// (bench:e2e's fixed-rate run sets it, with BENCH_E2E_PROBE_DIR): samples the thread's CPU profile and counts its
// DynamoDB requests. It announces its thread at once (`<fn>-<threadId>.tid`: bench:e2e reads the thread's exact
// CPU time from /proc/self/task/<tid>/stat), and when bench:e2e writes the measured window to `window.json` it
// writes what it saw in that window, split by who was working (bench/cpu-profile.ts: handler code, AWS SDK, other
// packages, Node itself), to `<fn>-<threadId>.json`.
// One profile from load to the end: Profiler.start logs every compiled function, ~100 ms of the thread's CPU once the
// handler is loaded, so a profile restarted every few seconds would cost the threads more than they are measured doing
// (it did until 2026-12-07: ~5% of a core per thread). Started here, before the handler loads, it costs ~1 ms.
import dc from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { threadId, workerData } from 'node:worker_threads';
import { type CpuProfile, splitProfile } from './cpu-profile';

export interface ProbeChunk {
  fn: string;
  tid: number;
  /** Wall clock (ms) the chunk covers: the window bench:e2e named. */
  from: number;
  to: number;
  /** Sampled milliseconds by part (bench/cpu-profile.ts). */
  split: ReturnType<typeof splitProfile>;
  dynamodbRequests: number;
}

/** What bench:e2e writes to `window.json` when the measured window has ended. */
export interface ProbeWindow {
  from: number;
  to: number;
}

export const PROBE_WINDOW_FILE = 'window.json';
const POLL_MS = 250;

/**
 * The profile's samples within [from, to) of the wall clock, as a profile. V8 stamps samples with the monotonic
 * clock in microseconds, the clock of process.hrtime; `wallAt` pairs a reading of each.
 */
export function profileWithin(
  profile: CpuProfile,
  wallAt: { wallMs: number; monotonicUs: number },
  window: ProbeWindow,
): CpuProfile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    const wall = wallAt.wallMs + (at - wallAt.monotonicUs) / 1000;
    if (wall >= window.from && wall < window.to) {
      samples.push(id);
      timeDeltas.push(delta);
    }
  });
  return { ...profile, samples, timeDeltas };
}

const dir = process.env.BENCH_E2E_PROBE_DIR;
// BENCH_E2E_PROBE_PROFILES=<dir> also keeps the window's profile there, for a profiler (what the split sums up).
const profiles = process.env.BENCH_E2E_PROBE_PROFILES;
if (dir) {
  mkdirSync(dir, { recursive: true });
  if (profiles) mkdirSync(profiles, { recursive: true });
  const handlerPath = String((workerData as { handlerPath?: string })?.handlerPath ?? 'unknown');
  const fn = /functions\/([^/]+)\//.exec(handlerPath)?.[1] ?? handlerPath;
  const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
  writeFileSync(join(dir, `${fn}-${threadId}.tid`), JSON.stringify({ fn, tid }));
  const dynamodb = process.env.AWS_ENDPOINT_URL_DYNAMODB
    ? new URL(process.env.AWS_ENDPOINT_URL_DYNAMODB).host
    : undefined;
  const requestTimes: number[] = [];
  dc.subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: ClientRequest };
    if (dynamodb && request.getHeader('host') === dynamodb) requestTimes.push(Date.now());
  });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 1 ms, --cpu-prof's default; only the fixed-rate run is profiled, not the step-ups.
  await session.post('Profiler.setSamplingInterval', { interval: 1_000 });
  await session.post('Profiler.start');
  const wallAt = { wallMs: Date.now(), monotonicUs: Number(process.hrtime.bigint() / 1000n) };
  const windowFile = join(dir, PROBE_WINDOW_FILE);
  const poll = setInterval(() => {
    if (!existsSync(windowFile)) return;
    clearInterval(poll);
    void (async () => {
      const window = JSON.parse(readFileSync(windowFile, 'utf8')) as ProbeWindow;
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      const within = profileWithin(profile as CpuProfile, wallAt, window);
      if (profiles) writeFileSync(join(profiles, `${fn}-${threadId}.cpuprofile`), JSON.stringify(within));
      const chunk: ProbeChunk = {
        fn,
        tid,
        ...window,
        split: splitProfile(within),
        dynamodbRequests: requestTimes.filter((t) => t >= window.from && t < window.to).length,
      };
      writeFileSync(join(dir, `${fn}-${threadId}.json`), JSON.stringify(chunk));
    })().catch((error: unknown) => {
      writeFileSync(join(dir, `${fn}-${threadId}.error`), String(error));
    });
  }, POLL_MS);
  poll.unref();
}
