// Loaded by the ESM emulator in every function worker thread when ESM_WORKER_PROBE names this file
// (bench:e2e's fixed-rate run sets it, with BENCH_E2E_PROBE_DIR): samples the thread's CPU profile and counts its
// DynamoDB requests, and reports what it saw in the window bench:e2e names, split by who was working
// (bench/cpu-profile.ts: handler code, AWS SDK, other packages, Node itself). Files: bench/e2e-probe-files.ts.
// One profile from load to the end: Profiler.start logs every compiled function, 80-100 ms of the thread's CPU once
// the handler is loaded, so a profile restarted every few seconds would cost the threads a good part of what they are
// measured doing. Started here, before the handler loads, it costs ~1 ms.
import dc from 'node:diagnostics_channel';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { threadId, workerData } from 'node:worker_threads';
import { type CpuProfile, profileWithin, splitProfile } from './cpu-profile';
import { PROBE_WINDOW_FILE, type ProbeReport, type ProbeThread, type ProbeWindow } from './e2e-probe-files';

const POLL_MS = 250;
const SAMPLING_INTERVAL_US = 10_000;
const REQUEST_START = 'http.client.request.start';

const dir = process.env.BENCH_E2E_PROBE_DIR;
// BENCH_E2E_PROBE_PROFILES=<dir> also keeps the window's profile there, for a profiler (what the split sums up).
const profiles = process.env.BENCH_E2E_PROBE_PROFILES;
if (dir) {
  mkdirSync(dir, { recursive: true });
  if (profiles) mkdirSync(profiles, { recursive: true });
  const handlerPath = String((workerData as { handlerPath?: string })?.handlerPath ?? 'unknown');
  // The function (its Lambda env names it), not its code's folder: oncall-paging runs notifications' code.
  const fn =
    process.env.POWERTOOLS_SERVICE_NAME || (/functions\/([^/]+)\//.exec(handlerPath)?.[1] ?? handlerPath);
  const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
  const name = `${fn}-${threadId}`;
  writeFileSync(join(dir, `${name}.tid`), JSON.stringify({ fn, tid } satisfies ProbeThread));
  const dynamodb = process.env.AWS_ENDPOINT_URL_DYNAMODB
    ? new URL(process.env.AWS_ENDPOINT_URL_DYNAMODB).host
    : undefined;
  const hostOf = (url: string | undefined) => (url ? new URL(url).host : undefined);
  const sns = hostOf(process.env.AWS_ENDPOINT_URL_SNS);
  const ses = hostOf(process.env.AWS_ENDPOINT_URL_SESV2);
  const requestTimes = { dynamodb: [] as number[], sns: [] as number[], ses: [] as number[] };
  // The operation of each DynamoDB request (X-Amz-Target: DynamoDB_20120810.<Operation>), same order as its time.
  const dynamodbOperations: string[] = [];
  const onRequest = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    const host = request.getHeader('host');
    if (dynamodb && host === dynamodb) {
      requestTimes.dynamodb.push(Date.now());
      dynamodbOperations.push(
        String(request.getHeader('x-amz-target') ?? '')
          .split('.')
          .at(-1) || 'unknown',
      );
    }
    // SES v2 is REST (/v2/email/...), SNS a form POST to /: one stand-in may serve both.
    else if (ses && host === ses && request.path.startsWith('/v2/email')) requestTimes.ses.push(Date.now());
    else if (sns && host === sns) requestTimes.sns.push(Date.now());
  };
  dc.subscribe(REQUEST_START, onRequest);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  // 10 ms: the split is a proportion, and a minute of load gives a function's threads ~1,000-5,000 samples. At
  // --cpu-prof's 1 ms, V8's sampler threads (one per profiled thread) took 15-23% of a core, and interrupted the
  // threads measured, in the very run whose latencies are reported. Only the fixed-rate run is profiled.
  await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  await session.post('Profiler.start');
  const wallAt = { wallMs: Date.now(), monotonicUs: Number(process.hrtime.bigint() / 1000n) };
  const report = async (window: ProbeWindow) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    dc.unsubscribe(REQUEST_START, onRequest);
    const within = profileWithin(profile as CpuProfile, wallAt, window);
    const isIn = (t: number) => t >= window.from && t < window.to;
    const inWindow = (times: number[]) => times.filter(isIn).length;
    const byOperation: Record<string, number> = {};
    for (const [i, t] of requestTimes.dynamodb.entries()) {
      const operation = dynamodbOperations[i] as string;
      if (isIn(t)) byOperation[operation] = (byOperation[operation] ?? 0) + 1;
    }
    if (profiles) writeFileSync(join(profiles, `${name}.cpuprofile`), JSON.stringify(within));
    const seen: ProbeReport = {
      fn,
      tid,
      ...window,
      split: splitProfile(within),
      dynamodbRequests: inWindow(requestTimes.dynamodb),
      dynamodbOperations: byOperation,
      snsRequests: inWindow(requestTimes.sns),
      sesRequests: inWindow(requestTimes.ses),
    };
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(seen));
  };
  const windowFile = join(dir, PROBE_WINDOW_FILE);
  const poll = setInterval(() => {
    if (!existsSync(windowFile)) return;
    clearInterval(poll);
    // Written whole (a rename), so read once.
    Promise.resolve()
      .then(() => report(JSON.parse(readFileSync(windowFile, 'utf8')) as ProbeWindow))
      .catch((error: unknown) => writeFileSync(join(dir, `${name}.error`), String(error)));
  }, POLL_MS);
  poll.unref();
}
