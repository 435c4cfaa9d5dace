// Loaded by the ESM emulator in every function worker thread when ESM_WORKER_PROBE names this file
// (bench:e2e's fixed-rate run sets it, with BENCH_E2E_PROBE_DIR): samples the thread's CPU profile and counts its
// DynamoDB requests, and every CHUNK_MS writes to BENCH_E2E_PROBE_DIR what it saw, split by who was working
// (bench/cpu-profile.ts: handler code, AWS SDK, other packages, Node itself). The thread's exact CPU time is read
// by bench:e2e from /proc/self/task/<tid>/stat, hence the tid in every file.
import dc from 'node:diagnostics_channel';
import { mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { threadId, workerData } from 'node:worker_threads';
import { type CpuProfile, splitProfile } from './cpu-profile';

export interface ProbeChunk {
  fn: string;
  tid: number;
  /** Wall clock (ms) the chunk covers. */
  from: number;
  to: number;
  /** Sampled milliseconds by part (bench/cpu-profile.ts). */
  split: ReturnType<typeof splitProfile>;
  dynamodbRequests: number;
}

const CHUNK_MS = 2_000;
const dir = process.env.BENCH_E2E_PROBE_DIR;
if (dir) {
  mkdirSync(dir, { recursive: true });
  const handlerPath = String((workerData as { handlerPath?: string })?.handlerPath ?? 'unknown');
  const fn = /functions\/([^/]+)\//.exec(handlerPath)?.[1] ?? handlerPath;
  const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
  const dynamodb = process.env.AWS_ENDPOINT_URL_DYNAMODB
    ? new URL(process.env.AWS_ENDPOINT_URL_DYNAMODB).host
    : undefined;
  let dynamodbRequests = 0;
  dc.subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: ClientRequest };
    if (dynamodb && request.getHeader('host') === dynamodb) dynamodbRequests++;
  });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 1 ms, --cpu-prof's default; only the fixed-rate run is profiled, not the step-ups.
  await session.post('Profiler.setSamplingInterval', { interval: 1_000 });
  await session.post('Profiler.start');
  let from = Date.now();
  let n = 0;
  const flush = async () => {
    const { profile } = await session.post('Profiler.stop');
    await session.post('Profiler.start');
    const to = Date.now();
    const chunk: ProbeChunk = {
      fn,
      tid,
      from,
      to,
      split: splitProfile(profile as CpuProfile),
      dynamodbRequests,
    };
    dynamodbRequests = 0;
    from = to;
    writeFileSync(join(dir, `${fn}-${threadId}-${n++}.json`), JSON.stringify(chunk));
  };
  setInterval(() => void flush().catch(() => undefined), CHUNK_MS).unref();
}
