// End-to-end benchmark (npm run bench:e2e), results into bench/RESULTS.md under "End to end" and the plot
// bench/latency-vs-rate.svg:
// 1. fixed offered rate: mixed events (bookings, payments, incidents, genai.*) at BENCH_E2E_RATE events/s
//    (1,000) for BENCH_E2E_SECONDS (60) over 6 partitions, through the real broker, the ESM emulator with the
//    serverless.yml settings and the real handlers of audit-append, billing, demand-prediction-update,
//    incident-explanation (its rules explainer; its genai.* events go to the run's topics, so audit-append and
//    notifications handle them too) and notifications (worker threads, local stores); produce-to-stored latency p50/p95/p99 per function,
//    throughput, and a zero-loss check;
// 2. step-up of the same mix and functions: each rate of BENCH_E2E_MIXED_STEPS for BENCH_E2E_STEP_SECONDS (20),
//    until a step is not sustained; the highest sustained rate, and the highest at which every function's p95
//    is within 100 ms;
// 3. step-up for audit-append alone: audited events at each rate of BENCH_E2E_STEPS, likewise.
// "Stored" = the invocation returned, i.e. the function's writes are acknowledged; latency = that time minus
// the record's CREATE_TIME timestamp (set by the producer).
// The fixed-rate run also measures CPU per event per function: each function worker thread's CPU (from /proc),
// split by a sampling profile of the thread into handler code, AWS SDK, other packages and Node itself
// (bench/e2e-worker-probe.ts), and the stand-ins' CPU (dynalite apportioned by each function's DynamoDB requests).
// Zero loss: the CloudEvents ids on the audited topics (read back from the run's topics, so genai.* events count
// once produced) against the audit rows.
// A short validation run (~3-4 minutes; printed, bench/RESULTS.md left alone unless BENCH_E2E_WRITE=1):
// BENCH_E2E_QUICK=1 npm run bench:e2e. Each setting below can also be given on its own.
import { writeResultsSection } from './results-file';
import { settle } from './settle';
import '../shared/kafka/node20-polyfills';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Consumer } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import { codeOf } from '../local/consumers';
import { percentile } from '../local/esm/stats';
import type { StackState } from '../local/stack/index';
import { MIXED_EVENT_TOPICS } from '../test/e2e/reliability/events';
import { kafkaBrokers } from '../test/support/kafka';
import { startChannelProcess } from './channel-process';
import { PROBE_WINDOW_FILE, type ProbeReport, type ProbeThread, type ProbeWindow } from './e2e-probe-files';
import {
  type CpuSources,
  commandCpuSeconds,
  ownCpuSeconds,
  ownThreadsCpuSeconds,
  processCpuSeconds,
  startCpuMeter,
  threadCpuSeconds,
} from './process-cpu';
import { withStack } from './stack';

// The functions run from their TypeScript sources here, not their bundles: the CPU split per function
// (bench/cpu-profile.ts) attributes samples by source path (functions/, shared/, node_modules/@aws-sdk), which a
// bundle's one file would hide. The harness reads this when it prepares a run.
process.env.ESM_FUNCTION_CODE ??= 'sources';

/** BENCH_E2E_QUICK=1: every length shortened (the defaults below), for a validation run of a few minutes. */
const QUICK = process.env.BENCH_E2E_QUICK === '1';
const setting = (name: string, full: string, quick: string) => process.env[name] ?? (QUICK ? quick : full);
const RATE = Number(setting('BENCH_E2E_RATE', '1000', '1000'));
const SECONDS = Number(setting('BENCH_E2E_SECONDS', '60', '20'));
const STEP_SECONDS = Number(setting('BENCH_E2E_STEP_SECONDS', '20', '8'));
const STEPS = setting('BENCH_E2E_STEPS', '1000,2000,3000,4000,5000,6000,8000,10000,12000,15000', '1000,3000')
  .split(',')
  .map(Number);
const DRAIN_SECONDS = Number(setting('BENCH_E2E_DRAIN_SECONDS', '60', '30'));
/**
 * Every run's unreported warm-up, at its first rate: long enough for V8 to tier up each execution environment's
 * code. After a 5 s warm-up (until 2026-12-07) its compiler threads were still 10-16% of the machine for the first
 * 45 s at 1,000 events/s and 5-6% only after 60-90 s (perf), and 30 s steps at 1,000 events/s had lower p95s after a
 * 60 s warm-up than after 3 s; a Lambda environment under steady load lives for hours.
 */
const WARM_UP_SECONDS = Number(setting('BENCH_E2E_WARMUP_SECONDS', '60', '3'));
/**
 * The test bed's CPU with the run's functions and consumers up and nothing offered, measured for this long after
 * the warm-up: what the step-ups' CPU per invocation is counted above (consumers polling, heartbeats).
 */
const IDLE_SECONDS = Number(setting('BENCH_E2E_IDLE_SECONDS', '20', '10'));
/** How long the warm-up's backlog may take to drain before the run gives up. */
const WARM_UP_DRAIN_SECONDS = 300;
/** Mixed-event step-up: the highest rate every function keeps up with, and where each stays under 100 ms. */
const MIXED_STEPS = setting('BENCH_E2E_MIXED_STEPS', '50,100,150,200,300,400,500,600,800,1000', '50,150,300')
  .split(',')
  .map(Number);
/** Whether the section goes into bench/RESULTS.md (always, except for a quick run unless BENCH_E2E_WRITE=1). */
const WRITE_RESULTS = !QUICK || process.env.BENCH_E2E_WRITE === '1';
const P95_TARGET_MS = 100;
/** Issue 19: the on-call page (oncall-paging on incident.detected) p95 produce-to-sent within 1 s at 1,000 events/s. */
const ONCALL_TARGET_MS = 1_000;
/** A step is sustained when every record of it is stored within this long after its last produce. */
const SUSTAIN_GRACE_MS = 5_000;
/** The start of the fixed-rate run left out of its percentiles. */
const EXCLUDED_START_MS = 3_000;
const PARTITIONS = 6;
const FUNCTIONS = [
  'audit-append',
  'billing',
  'demand-prediction-update',
  'incident-explanation',
  'notifications',
  // notifications' code on incident.detected alone: the on-call page (serverless/consumers.cjs).
  'oncall-paging',
];
const ONCALL_FUNCTION = 'oncall-paging';
const AUDITED_TOPICS = MIXED_EVENT_TOPICS.filter((t) => t.startsWith('payment.') || t.startsWith('genai.'));

const log = (line: string) => process.stderr.write(`${line}\n`);

type Harness = typeof import('../test/e2e/reliability/harness');
type RunSpec = import('../test/e2e/reliability/harness').RunSpec;

/** Latency samples (stored time - record timestamp) per function, of records the invocation did not fail. */
class Samples {
  /** `at`: the record's timestamp; `ms`: latency, so `at + ms` is when its invocation returned. */
  readonly byFunction = new Map<string, Array<{ at: number; ms: number }>>();
  /** The same samples by function and topic (the run's topic name): `fn|topic`. */
  readonly byTopic = new Map<string, Array<{ at: number; ms: number }>>();
  /** When each invocation of a function returned: what a batch's fixed cost is paid per. */
  readonly invocations = new Map<string, number[]>();

  record(functionKey: string, event: MSKEvent, response: unknown): void {
    const now = Date.now();
    const returned = this.invocations.get(functionKey) ?? [];
    returned.push(now);
    this.invocations.set(functionKey, returned);
    const failures = new Set(
      (
        (response as { batchItemFailures?: Array<{ itemIdentifier: { partition: string; offset: number } }> })
          ?.batchItemFailures ?? []
      ).map((f) => `${f.itemIdentifier.partition}@${f.itemIdentifier.offset}`),
    );
    const list = this.byFunction.get(functionKey) ?? [];
    for (const [key, records] of Object.entries(event.records)) {
      for (const r of records) {
        if (failures.has(`${key}@${r.offset}`)) continue;
        const sample = { at: r.timestamp, ms: now - r.timestamp };
        list.push(sample);
        const topicKey = `${functionKey}|${r.topic}`;
        const ofTopic = this.byTopic.get(topicKey) ?? [];
        ofTopic.push(sample);
        this.byTopic.set(topicKey, ofTopic);
      }
    }
    this.byFunction.set(functionKey, list);
  }

  /** Samples of records produced in [from, to). */
  between(functionKey: string, from: number, to: number): number[] {
    return (this.byFunction.get(functionKey) ?? []).filter((s) => s.at >= from && s.at < to).map((s) => s.ms);
  }

  /**
   * Samples of `fn` on a topic of records produced in [from, to). The harness hands some functions their events
   * with the canonical topic names, others with the run's: `topic` is the canonical name, `runTopic` the run's.
   */
  onTopicBetween(functionKey: string, topic: string, runTopic: string, from: number, to: number): number[] {
    return [...new Set([topic, runTopic])]
      .flatMap((name) => this.byTopic.get(`${functionKey}|${name}`) ?? [])
      .filter((s) => s.at >= from && s.at < to)
      .map((s) => s.ms);
  }

  /** Invocations that returned in [from, to). */
  invokedBetween(functionKey: string, from: number, to: number): number {
    return (this.invocations.get(functionKey) ?? []).filter((at) => at >= from && at < to).length;
  }

  /** Records whose invocation returned in [from, to). */
  doneBetween(functionKey: string, from: number, to: number): number {
    return (this.byFunction.get(functionKey) ?? []).filter((s) => s.at + s.ms >= from && s.at + s.ms < to)
      .length;
  }
}

interface Offered {
  sent: number;
  audited: number;
  achievedRate: number;
  startedAt: number;
  endedAt: number;
  /** Share of one core per process while the load was offered (100 = one core busy throughout). */
  cpu: Record<string, number>;
}

/**
 * Offers `rate` events/s for `seconds` from the load generator process (bench/e2e-producer.ts), measuring the
 * CPU of `processes` from its first send to its last acknowledged one.
 */
async function offer(
  job: {
    topics: Record<string, string>;
    rate: number;
    seconds: number;
    kind: 'mixed' | 'audited';
    from: number;
  },
  processes: CpuSources,
): Promise<Offered> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/e2e-producer.ts', JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let pending = '';
  let stopMeter: (() => Record<string, number>) | undefined;
  let cpu: Record<string, number> = {};
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{"started"')) stopMeter = startCpuMeter(processes);
      else if (line.startsWith('{"sent"') && stopMeter) cpu = stopMeter();
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const last = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !last.startsWith('{"sent"'))
    throw new Error(`load generator failed (exit ${code}): ${out}`);
  const sent = JSON.parse(last) as Omit<Offered, 'cpu'> & { cpuSeconds: number };
  const { cpuSeconds, ...offered } = sent;
  cpu[LOAD_GENERATOR] = (cpuSeconds / ((sent.endedAt - sent.startedAt) / 1000)) * 100;
  return { ...offered, cpu };
}

/** "emulator and functions 95%, Kafka 40%, ...; all 180% of 200%" */
function cpuLine(cpu: Record<string, number>): string {
  const entries = Object.entries(cpu).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, share]) => sum + share, 0);
  return (
    `${entries.map(([name, share]) => `${name} ${Math.round(share)}%`).join(', ')}; ` +
    `together ${Math.round(total)}% of ${cpus().length * 100}%`
  );
}

async function drain(harness: Harness, spec: RunSpec, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    // Ends read anew each time: incident-explanation produces genai.* events while the others drain.
    const lagging = await harness.behindNow(spec);
    if (lagging.length === 0 || Date.now() > deadline) {
      // `<function> <topic>/<p>: committed/end`
      const backlog = new Map<string, number>();
      for (const line of lagging) {
        const [fn, , counts] = line.split(' ');
        const [at, end] = (counts as string).split('/').map(Number);
        backlog.set(fn as string, (backlog.get(fn as string) ?? 0) + ((end ?? 0) - (at ?? 0)));
      }
      return backlog;
    }
    await sleep(250);
  }
}

const stats = (samples: number[]) => ({
  n: samples.length,
  p50: percentile(samples, 50) ?? Number.NaN,
  p95: percentile(samples, 95) ?? Number.NaN,
  p99: percentile(samples, 99) ?? Number.NaN,
});

/** A fresh run (its own topics, groups and stores) with the emulator recording latencies; removed afterwards. */
async function withRun<T>(
  harness: Harness,
  run: { functions: string[]; topics: readonly string[]; env?: Record<string, string> },
  measure: (spec: RunSpec, samples: Samples) => Promise<T>,
): Promise<T> {
  const spec = await harness.prepareRun({
    functions: run.functions,
    topics: [...run.topics],
    partitions: PARTITIONS,
    envOverrides: Object.fromEntries(
      run.functions.map((fn) => [fn, { ...run.env, ...(codeOf(fn) === 'notifications' ? channelEnv : {}) }]),
    ),
  });
  const samples = new Samples();
  const running = await harness.startEmulator(spec, {
    keepLogs: false,
    onInvoked: (fn, event, response) => samples.record(fn, event, response),
  });
  try {
    return await measure(spec, samples);
  } finally {
    await running.stop();
    await harness.removeRun(spec);
  }
}

/**
 * Not reported: brings the functions' execution environments up (cold starts, which here compile the
 * TypeScript of every worker), lets the backlog drain and waits for a quiet machine, so none of it lands in the
 * measured load. Returns what it produced.
 */
async function warmUp(
  harness: Harness,
  spec: RunSpec,
  processes: CpuSources,
  job: { label: string; rate: number; kind: 'mixed' | 'audited' },
): Promise<Offered> {
  log(`${job.label} warm-up: ${job.rate} events/s for ${WARM_UP_SECONDS} s`);
  const offered = await offer(
    { topics: spec.topics, rate: job.rate, seconds: WARM_UP_SECONDS, kind: job.kind, from: 0 },
    processes,
  );
  // What the warm-up left queued would be measured as the run's own latency: drained, or the run stops.
  const backlog = await drain(harness, spec, WARM_UP_DRAIN_SECONDS * 1000);
  if (backlog.size > 0) {
    const left = [...backlog].map(([fn, records]) => `${fn} ${records}`).join(', ');
    throw new Error(
      `${job.label}: the warm-up's records were not all handled ${WARM_UP_DRAIN_SECONDS} s after it (${left}); ` +
        'lower BENCH_E2E_WARMUP_SECONDS or the rate',
    );
  }
  log(`${job.label}: waiting for a quiet machine (${await settle()})`);
  return offered;
}

/**
 * The CloudEvents ids of every record on the run's `topics` (canonical names), read back from the start to
 * the ends they have now: what the audit store must hold once drained, genai.* events counted only once
 * incident-explanation has produced them. Audit rows are unique by id, so ids, not records, are counted.
 */
async function producedIds(harness: Harness, spec: RunSpec, topics: readonly string[]): Promise<Set<string>> {
  const names = topics.map((t) => spec.topics[t] as string);
  const ends = await harness.endOffsetsOf(spec);
  const pending = new Map<string, bigint>();
  for (const name of names) {
    for (let p = 0; p < spec.partitions; p++) {
      const end = ends.get(`${name}/${p}`) ?? 0n;
      if (end > 0n) pending.set(`${name}/${p}`, end);
    }
  }
  const ids = new Set<string>();
  if (pending.size === 0) return ids;
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'bench-e2e-ids',
    groupId: `bench-e2e-ids-${spec.run}-${Date.now()}`,
    bootstrapBrokers: kafkaBrokers(),
    autocommit: false,
    maxWaitTime: 200,
  });
  try {
    const stream = await consumer.consume({ topics: names, mode: 'earliest', autocommit: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading the audited topics back: ${pending.size} partition(s) short`)),
        120_000,
      );
      stream.on('error', reject);
      stream.on('data', (message) => {
        const id = message.headerEntries.find(([name]) => name.toString() === 'ce_id')?.[1];
        if (id) ids.add(id.toString());
        const key = `${message.topic}/${message.partition}`;
        const end = pending.get(key);
        if (end !== undefined && message.offset + 1n >= end) pending.delete(key);
        if (pending.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return ids;
}

/** Audit rows against the events produced to the audited topics: missing means lost (not yet produced is not). */
async function auditBalance(harness: Harness, spec: RunSpec) {
  const expected = await producedIds(harness, spec, AUDITED_TOPICS);
  // Read after the ends: rows of genai.* events produced since (incident-explanation's backlog) are not counted.
  const stored = new Set((await harness.auditRows(spec)).map((row) => row.ceId));
  let missing = 0;
  for (const id of expected) if (!stored.has(id)) missing++;
  return { expected: expected.size, stored: expected.size - missing, missing };
}

const PROBE = fileURLToPath(new URL('./e2e-worker-probe.ts', import.meta.url));
const EMULATOR = 'emulator and function workers';
const LOAD_GENERATOR = 'load generator';
const PROFILER_THREADS = "the probe's profiler threads";

/**
 * Notifications send through the SNS/SES stand-in (bench/channel-stand-in-process.ts) as they would in AWS:
 * PublishBatch, 10 messages a call. Until 2026-12-06 they went to the local outbox, one DynamoDB PutItem per
 * message in the stand-in every DynamoDB function shares, which AWS does not pay.
 */
let channelEnv: Record<string, string> = {};

async function startChannel(): Promise<{ pid: number | undefined; stop: () => void }> {
  const { url, pid, stop } = await startChannelProcess();
  channelEnv = {
    CHANNEL: 'aws',
    ONCALL_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:operations-oncall',
    CUSTOMER_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:customer-messages',
    EMAIL_FROM: 'noreply@mobility.example',
    REVIEWERS_EMAIL: 'reviewers@mobility.example',
    AWS_ENDPOINT_URL_SNS: url,
    AWS_ENDPOINT_URL_SESV2: url,
  };
  return { pid, stop };
}

const probeFiles = <T>(dir: string, suffix: string): T[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith(suffix) && name !== PROBE_WINDOW_FILE)
    .flatMap((name) => {
      try {
        return [JSON.parse(readFileSync(join(dir, name), 'utf8')) as T];
      } catch {
        return []; // being written
      }
    });
const probeThreads = (dir: string) => probeFiles<ProbeThread>(dir, '.tid');

/** CPU seconds so far of the worker threads of `fn` that have announced themselves to the probe. */
function functionCpuSeconds(dir: string, fn: string): number {
  let total = 0;
  for (const { tid } of probeThreads(dir).filter((t) => t.fn === fn)) total += threadCpuSeconds(tid) ?? 0;
  return total;
}

/**
 * Names the measured window to every worker's probe (bench/e2e-worker-probe.ts) and waits until each thread still
 * running has reported what it saw in it.
 */
async function probeWindow(dir: string, window: ProbeWindow): Promise<ProbeReport[]> {
  const file = join(dir, PROBE_WINDOW_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(window));
  renameSync(`${file}.tmp`, file); // a probe never reads half of it
  const deadline = Date.now() + 30_000;
  for (;;) {
    // A thread is done when it reported, failed (`<name>.error`), or has exited since it announced itself.
    const names = readdirSync(dir);
    const waiting = names
      .filter((name) => name.endsWith('.tid'))
      .map((name) => name.slice(0, -'.tid'.length))
      .filter((stem) => !names.includes(`${stem}.json`) && !names.includes(`${stem}.error`))
      .filter((stem) => {
        try {
          const { tid } = JSON.parse(readFileSync(join(dir, `${stem}.tid`), 'utf8')) as ProbeThread;
          return threadCpuSeconds(tid) !== undefined;
        } catch {
          return true; // being written: a thread that has just started
        }
      });
    if (waiting.length === 0 || Date.now() > deadline) {
      for (const name of names.filter((n) => n.endsWith('.error')))
        log(`probe: ${name}: ${readFileSync(join(dir, name), 'utf8')}`);
      if (waiting.length > 0) log(`probe: no report after 30 s from ${waiting.join(', ')}`);
      return probeFiles<ProbeReport>(dir, '.json');
    }
    await sleep(250);
  }
}

interface CpuPerRecord {
  fn: string;
  records: number;
  invocations: number;
  /** Milliseconds of CPU per record handled. */
  thread: number;
  handler: number;
  sdk: number;
  packages: number;
  kafka: number;
  node: number;
  dynamodbRequests: number;
  /** The function's DynamoDB requests per record by operation, most first. */
  dynamodbOperations: Array<[string, number]>;
  /** SNS and SES calls per record (notifications' code only sends). */
  channelRequests: { sns: number; ses: number } | undefined;
  dynalite: number;
  postgres: number;
}

/**
 * CPU per record handled in the window, per function: its worker threads' CPU (exact, /proc), split in the
 * proportions of their sampled profiles; dynalite's CPU apportioned by the functions' DynamoDB requests,
 * PostgreSQL's to audit-append (the only function on it).
 */
function cpuPerRecord(
  reports: ProbeReport[],
  samples: Samples,
  offered: Offered,
  functionCpu: Record<string, number>,
): CpuPerRecord[] {
  const seconds = (offered.endedAt - offered.startedAt) / 1000;
  const count = (fn: string, kind: 'dynamodbRequests' | 'snsRequests' | 'sesRequests') =>
    reports.filter((r) => r.fn === fn).reduce((sum, r) => sum + (r[kind] ?? 0), 0);
  const requests = (fn: string) => count(fn, 'dynamodbRequests');
  const allRequests = FUNCTIONS.reduce((sum, fn) => sum + requests(fn), 0);
  const dynaliteSeconds = ((offered.cpu.dynalite ?? 0) * seconds) / 100;
  const postgresSeconds = ((offered.cpu.PostgreSQL ?? 0) * seconds) / 100;
  return FUNCTIONS.map((fn) => {
    const records = samples.doneBetween(fn, offered.startedAt, offered.endedAt);
    const invocations = samples.invokedBetween(fn, offered.startedAt, offered.endedAt);
    const perRecord = (cpuSeconds: number) => (records > 0 ? (cpuSeconds * 1000) / records : Number.NaN);
    const threadSeconds = ((functionCpu[fn] ?? 0) * seconds) / 100;
    const split = { sdk: 0, handler: 0, packages: 0, kafka: 0, node: 0 };
    for (const c of reports.filter((r) => r.fn === fn)) {
      split.sdk += c.split.sdk;
      split.handler += c.split.handler;
      split.packages += c.split.packages + c.split.bench;
      split.kafka += c.split.kafka;
      split.node += c.split.runtime;
    }
    const operations: Record<string, number> = {};
    for (const c of reports.filter((r) => r.fn === fn))
      for (const [operation, n] of Object.entries(c.dynamodbOperations))
        operations[operation] = (operations[operation] ?? 0) + n;
    const sampled = split.sdk + split.handler + split.packages + split.kafka + split.node;
    const share = (part: number) => (sampled > 0 ? part / sampled : Number.NaN);
    return {
      fn,
      records,
      invocations,
      thread: perRecord(threadSeconds),
      handler: perRecord(threadSeconds * share(split.handler)),
      sdk: perRecord(threadSeconds * share(split.sdk)),
      packages: perRecord(threadSeconds * share(split.packages)),
      kafka: perRecord(threadSeconds * share(split.kafka)),
      node: perRecord(threadSeconds * share(split.node)),
      dynamodbRequests: records > 0 ? requests(fn) / records : Number.NaN,
      dynamodbOperations:
        records > 0
          ? Object.entries(operations)
              .map(([operation, n]): [string, number] => [operation, n / records])
              .sort((a, b) => b[1] - a[1])
          : [],
      channelRequests:
        records > 0
          ? { sns: count(fn, 'snsRequests') / records, ses: count(fn, 'sesRequests') / records }
          : undefined,
      dynalite: perRecord(allRequests > 0 ? (dynaliteSeconds * requests(fn)) / allRequests : 0),
      postgres: perRecord(fn === 'audit-append' ? postgresSeconds : 0),
    };
  });
}

async function fixedRate(harness: Harness, processes: CpuSources) {
  const probeDir = mkdtempSync(join(tmpdir(), 'bench-e2e-probe-'));
  const env = {
    ESM_WORKER_PROBE: PROBE,
    BENCH_E2E_PROBE_DIR: probeDir,
    ...(process.env.BENCH_E2E_PROBE_PROFILES && {
      BENCH_E2E_PROBE_PROFILES: process.env.BENCH_E2E_PROBE_PROFILES,
    }),
  };
  const run = { functions: FUNCTIONS, topics: MIXED_EVENT_TOPICS, env };
  try {
    return await withRun(harness, run, async (spec, samples) => {
      const warm = await warmUp(harness, spec, processes, { label: 'fixed rate', rate: RATE, kind: 'mixed' });
      log(`fixed rate: ${RATE} events/s for ${SECONDS} s, mixed events, ${FUNCTIONS.length} functions`);
      const workers: CpuSources = {
        ...Object.fromEntries(
          FUNCTIONS.map((fn) => [`worker:${fn}`, () => functionCpuSeconds(probeDir, fn)]),
        ),
        // Each profiled thread has a sampler thread of V8's: the probe's cost, not the emulator's.
        [PROFILER_THREADS]: () => ownThreadsCpuSeconds('v8:ProfEvntProc'),
      };
      const measured = await offer(
        { topics: spec.topics, rate: RATE, seconds: SECONDS, kind: 'mixed', from: warm.sent },
        { ...processes, ...workers },
      );
      // The workers' CPU is part of the process's: reported per function, not twice in the machine's total.
      const functionCpu: Record<string, number> = {};
      const cpu: Record<string, number> = {};
      for (const [name, share] of Object.entries(measured.cpu)) {
        if (name.startsWith('worker:')) functionCpu[name.slice('worker:'.length)] = share;
        else cpu[name] = share;
      }
      // The samplers run in the emulator's process too: shown apart, so no part of the test bed carries them.
      const sampling = cpu[PROFILER_THREADS] ?? 0;
      cpu[EMULATOR] = (cpu[EMULATOR] ?? 0) - sampling;
      const offered = { ...measured, cpu };
      // The reports come in while the backlog drains: the drain's time runs from the last produce.
      const [results, reports] = await Promise.all([
        fixedRateResults(harness, spec, samples, warm, offered),
        probeWindow(probeDir, { from: measured.startedAt, to: measured.endedAt }),
      ]);
      return { ...results, functionCpu, reports };
    }).then((result) => ({
      ...result,
      cpuPerRecord: cpuPerRecord(result.reports, result.samples, result.offered, result.functionCpu),
    }));
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
}

async function fixedRateResults(
  harness: Harness,
  spec: RunSpec,
  samples: Samples,
  warm: Offered,
  offered: Offered,
) {
  {
    const backlog = await drain(harness, spec, DRAIN_SECONDS * 1000);
    const drainedAt = Date.now();
    const audit = await auditBalance(harness, spec);
    const destination = (await harness.failureObjects(spec)).length;
    const perFunction = FUNCTIONS.map((fn) => {
      const definitions = spec.definitions.filter(
        (d) => d.functionName === fn || d.functionName.endsWith(`-${fn}`),
      );
      const batching = [
        ...new Set(definitions.map((d) => `${d.batchSize} / ${d.maximumBatchingWindowMs} ms`)),
      ];
      const all = samples.between(fn, offered.startedAt, offered.endedAt + 1);
      const measured = samples.between(fn, offered.startedAt + EXCLUDED_START_MS, offered.endedAt + 1);
      return {
        fn,
        batching: batching.join(', '),
        ...stats(measured),
        records: all.length,
        throughput: all.length / ((drainedAt - offered.startedAt) / 1000),
        backlog: backlog.get(fn) ?? 0,
      };
    });
    // The on-call page: oncall-paging on incident.detected, produce to sent (PublishBatch answered). Every
    // incident goes through the same batch; the CRITICAL ones are the pages.
    const oncall = stats(
      samples.onTopicBetween(
        ONCALL_FUNCTION,
        'incident.detected',
        spec.topics['incident.detected'] as string,
        offered.startedAt + EXCLUDED_START_MS,
        offered.endedAt + 1,
      ),
    );
    return { offered, perFunction, audit, destination, samples, warmSent: warm.sent, oncall };
  }
}

interface StepPlan {
  label: string;
  functions: string[];
  topics: readonly string[];
  kind: 'mixed' | 'audited';
  rates: number[];
}

interface Step {
  rate: number;
  achievedRate: number;
  sustained: boolean;
  /** Percentiles per function, skipping the first second of the step. */
  perFunction: Record<string, ReturnType<typeof stats>>;
  /** oncall-paging on incident.detected (the on-call page), when the step's functions include it. */
  oncall?: ReturnType<typeof stats>;
  cpu: Record<string, number>;
  /** Invocations per second of the step's functions while its load was offered. */
  invocations: number;
  /** Records those invocations carried, per invocation. */
  recordsPerInvocation: number;
}

/**
 * Offers each rate of the plan for STEP_SECONDS after an unreported warm-up, until a step is not sustained:
 * some record of it was not stored within SUSTAIN_GRACE_MS of its last produce, by any of the functions, or
 * the producer fell short of 95% of the rate.
 */
async function stepUp(harness: Harness, processes: CpuSources, plan: StepPlan) {
  return withRun(harness, plan, async (spec, samples) => {
    const warm = await warmUp(harness, spec, processes, {
      label: `step-up (${plan.label})`,
      rate: plan.rates[0] ?? 1000,
      kind: plan.kind,
    });
    let n = warm.sent;
    const stopIdle = startCpuMeter(processes);
    await sleep(IDLE_SECONDS * 1000);
    const idle = stopIdle();
    log(`step-up (${plan.label}): idle ${cpuLine(idle)}`);
    const steps: Step[] = [];
    for (const rate of plan.rates) {
      log(`step-up (${plan.label}): ${rate} events/s for ${STEP_SECONDS} s`);
      const offered = await offer(
        { topics: spec.topics, rate, seconds: STEP_SECONDS, kind: plan.kind, from: n },
        processes,
      );
      n += offered.sent;
      const backlog = await drain(harness, spec, SUSTAIN_GRACE_MS);
      const sustained = backlog.size === 0 && offered.achievedRate >= rate * 0.95;
      const perFunction = Object.fromEntries(
        plan.functions.map((fn) => [
          fn,
          stats(samples.between(fn, offered.startedAt + 1_000, offered.endedAt + 1)),
        ]),
      );
      const incidents = spec.topics['incident.detected'];
      const oncall =
        plan.functions.includes(ONCALL_FUNCTION) && incidents
          ? stats(
              samples.onTopicBetween(
                ONCALL_FUNCTION,
                'incident.detected',
                incidents,
                offered.startedAt + 1_000,
                offered.endedAt + 1,
              ),
            )
          : undefined;
      const invoked = plan.functions.reduce(
        (sum, fn) => sum + samples.invokedBetween(fn, offered.startedAt, offered.endedAt),
        0,
      );
      const carried = plan.functions.reduce(
        (sum, fn) => sum + samples.doneBetween(fn, offered.startedAt, offered.endedAt),
        0,
      );
      const step: Step = {
        rate,
        achievedRate: offered.achievedRate,
        sustained,
        perFunction,
        ...(oncall ? { oncall } : {}),
        cpu: offered.cpu,
        invocations: invoked / ((offered.endedAt - offered.startedAt) / 1000),
        recordsPerInvocation: invoked > 0 ? carried / invoked : Number.NaN,
      };
      steps.push(step);
      log(
        `  achieved ${Math.round(offered.achievedRate)}/s, p95 ` +
          plan.functions.map((fn) => `${fn} ${perFunction[fn]?.p95} ms`).join(', ') +
          `, ${sustained ? 'sustained' : 'NOT sustained'}; ${step.invocations.toFixed(1)} invocations/s, ` +
          `${fixed1(cpuPerInvocation(step, idle))} ms machine CPU each (${cpuLine(offered.cpu)})`,
      );
      if (!sustained) break;
    }
    const backlog = await drain(harness, spec, DRAIN_SECONDS * 1000);
    const audit = await auditBalance(harness, spec);
    const behind = [...backlog.values()].reduce((sum, records) => sum + records, 0);
    return { steps, audit, behind, idle };
  });
}

/** One decimal, or n/a (a step without invocations has no per-invocation figures). */
const fixed1 = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : 'n/a');

/**
 * Machine CPU (every process of the test bed, above its idle CPU) per invocation of a step, in ms; with `name`,
 * that process's alone. At low rates an invocation carries a record or two, so this is what an invocation costs
 * the machine, whatever it carries: the broker's fetch and offset commit, the emulator's batching and dispatch,
 * the worker's fixed work, the stores' requests. Invocations are those that returned while the step's load was
 * offered, the window its CPU is metered over; where records wait seconds, the invocations of the window's last
 * seconds return after it, so there the figure is high by about latency / step length.
 */
function cpuPerInvocation(step: Step, idle: Record<string, number>, name?: string): number {
  // The load generator's is the producers' cost, per event; not the pipeline's.
  const names = name ? [name] : Object.keys(step.cpu).filter((n) => n !== LOAD_GENERATOR);
  const above = names.reduce((sum, n) => sum + (step.cpu[n] ?? 0) - (idle[n] ?? 0), 0);
  return step.invocations > 0 ? (above * 10) / step.invocations : Number.NaN;
}

/** Highest rate sustained, and the highest sustained rate at which every function's p95 met the target. */
function limits(steps: Step[]) {
  const sustained = steps.filter((s) => s.sustained);
  const withinTarget = sustained.filter((s) =>
    Object.values(s.perFunction).every((f) => f.p95 <= P95_TARGET_MS),
  );
  return {
    maxRate: sustained.length > 0 ? Math.max(...sustained.map((s) => s.rate)) : 0,
    maxRateWithinTarget: withinTarget.length > 0 ? Math.max(...withinTarget.map((s) => s.rate)) : 0,
    top: sustained.at(-1),
  };
}

/**
 * Latency against offered rate, log-scale y, as a self-contained SVG: audit-append alone (p50/p95/p99), the
 * mixed step-up's p95 per function (dashed) and the fixed-rate run's p95 per function (squares).
 */
function plot(auditSteps: Step[], mixedSteps: Step[], fixed: Array<{ fn: string; p95: number }>): string {
  const W = 900;
  const H = 440;
  const m = { l: 70, r: 310, t: 40, b: 55 };
  const audit = auditSteps.map((s) => ({ ...s, ...s.perFunction['audit-append'] }));
  // Log-scale x as well: the mixed step-up tops out at a few hundred events/s, the audit-append one at thousands.
  // The axis runs between the "nice" values (1, 2, 5 x 10^k) around the rates, with a tick at each.
  const xs = [...auditSteps, ...mixedSteps].map((s) => s.rate).filter((v) => v > 0);
  const nice: number[] = [];
  for (let decade = 1; decade <= 1e7; decade *= 10) nice.push(decade, decade * 2, decade * 5);
  const low = Math.min(...xs, RATE);
  const high = Math.max(...xs, RATE);
  const xMin = nice.filter((v) => v <= low).at(-1) ?? 1;
  const xMax = nice.find((v) => v >= high && v > xMin) ?? 1e7;
  const ticks = nice.filter((v) => v >= xMin && v <= xMax);
  const values = [
    ...audit.flatMap((s) => [s.p50, s.p95, s.p99]),
    ...mixedSteps.flatMap((s) => Object.values(s.perFunction).map((f) => f.p95)),
    ...fixed.map((f) => f.p95),
  ].filter((v) => v !== undefined && Number.isFinite(v) && v > 0) as number[];
  const yMin = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...values, 100))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...values, 100)));
  const x = (v: number) =>
    m.l +
    ((Math.log10(Math.max(v, xMin)) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) *
      (W - m.l - m.r);
  const y = (v: number) =>
    m.t +
    (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) *
      (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    // A title: screen readers announce it, and biome's a11y lint requires it.
    '<title>Produce-to-stored latency percentiles against offered rate</title>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14" font-weight="bold">Produce-to-stored latency vs offered rate</text>`,
  ];
  for (let v = yMin; v <= yMax; v *= 10) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(
      `<text x="${m.l - 8}" y="${y(v) + 4}" text-anchor="end">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`,
    );
  }
  for (const v of ticks) {
    parts.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(
      `<text x="${x(v)}" y="${H - m.b + 16}" text-anchor="middle">${v.toLocaleString('en-US')}</text>`,
    );
  }
  parts.push(
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">offered rate (events/s)</text>`,
  );
  parts.push(
    `<line x1="${m.l}" x2="${W - m.r}" y1="${y(P95_TARGET_MS)}" y2="${y(P95_TARGET_MS)}" stroke="#c00" stroke-dasharray="6 4"/>`,
  );
  parts.push(
    `<text x="${W - m.r + 6}" y="${y(P95_TARGET_MS) + 4}" fill="#c00">p95 target ${P95_TARGET_MS} ms</text>`,
  );
  const line = (
    points: Array<{ rate: number; value: number | undefined; sustained: boolean }>,
    color: string,
    dash: string,
  ) => {
    const drawn = points.filter((p) => p.value !== undefined && Number.isFinite(p.value));
    const coordinates = drawn.map((p) => `${x(p.rate).toFixed(1)},${y(p.value as number).toFixed(1)}`);
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${coordinates.join(' ')}"/>`,
    );
    for (const p of drawn) {
      parts.push(
        `<circle cx="${x(p.rate).toFixed(1)}" cy="${y(p.value as number).toFixed(1)}" r="3.5" fill="${p.sustained ? color : 'white'}" stroke="${color}"/>`,
      );
    }
  };
  const legend = (row: number, color: string, dash: string, text: string) => {
    const ly = m.t + 20 + row * 18;
    parts.push(
      `<line x1="${W - m.r + 6}" x2="${W - m.r + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    );
    parts.push(`<text x="${W - m.r + 32}" y="${ly + 4}">${text}</text>`);
  };
  const percentiles: Array<['p50' | 'p95' | 'p99', string]> = [
    ['p50', '#1f77b4'],
    ['p95', '#ff7f0e'],
    ['p99', '#2ca02c'],
  ];
  percentiles.forEach(([key, color], i) => {
    line(
      audit.map((s) => ({ rate: s.rate, value: s[key], sustained: s.sustained })),
      color,
      '',
    );
    legend(i, color, '', `audit-append alone ${key}`);
  });
  const colors = ['#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  fixed.forEach((f, i) => {
    const color = colors[i % colors.length] as string;
    line(
      mixedSteps.map((s) => ({ rate: s.rate, value: s.perFunction[f.fn]?.p95, sustained: s.sustained })),
      color,
      '5 3',
    );
    if (Number.isFinite(f.p95)) {
      parts.push(
        `<rect x="${x(RATE) - 4 + i * 3}" y="${y(f.p95) - 4}" width="8" height="8" fill="${color}"/>`,
      );
    }
    legend(4 + i, color, '5 3', `${f.fn} p95, mixed`);
  });
  // Bottom right, clear of the legend and of the target's label.
  const notes = [
    'dashed: mixed step-up',
    `square: mixed at ${RATE.toLocaleString('en-US')}/s for ${SECONDS} s`,
    'hollow: step not sustained',
  ];
  notes.forEach((note, i) => {
    parts.push(
      `<text x="${W - m.r + 6}" y="${H - m.b - (notes.length - 1 - i) * 18}" fill="#555">${note}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

async function main(stack: StackState): Promise<void> {
  for (const [name, value] of Object.entries(stack.env)) process.env[name] ??= value;
  // Imported after the stack env is in place: module-scope clients read it.
  const harness: Harness = await import('../test/e2e/reliability/harness');
  const postgres = stack.services.find((s) => s.name === 'postgres');
  const auditStore = postgres?.managed
    ? (postgres.description ?? 'PGlite')
    : `PostgreSQL at ${new URL(process.env.DATABASE_URL ?? 'postgres://?').host}`;
  const dynalite = stack.services.find((s) => s.name === 'dynamodb');
  const dynaliteTables =
    dynalite?.storage === 'disk' ? 'on disk' : dynalite?.storage === 'memory' ? 'in memory' : 'where unknown';
  const loadBefore = loadavg()[0] ?? 0;
  {
    // Where the machine's time goes while load is offered: every process of the test bed.
    const pidOf = (name: string) => stack.services.find((s) => s.name === name)?.pid;
    const channel = await startChannel();
    process.once('exit', channel.stop);
    const processes: CpuSources = {
      [EMULATOR]: ownCpuSeconds,
      'SNS/SES stand-in': () => processCpuSeconds(channel.pid),
      Kafka: () => processCpuSeconds(pidOf('kafka')),
      PostgreSQL: () => (postgres?.managed ? processCpuSeconds(postgres.pid) : commandCpuSeconds('postgres')),
      dynalite: () => processCpuSeconds(pidOf('dynamodb')),
      s3rver: () => processCpuSeconds(pidOf('s3')),
    };
    // Each run leaves the stores busy for a while (the fixed-rate one saturates the machine); every run's
    // warm-up ends by waiting for a quiet machine, so that lands in no measurement.
    const fixed = await fixedRate(harness, processes);
    const mixed = await stepUp(harness, processes, {
      label: 'mixed',
      functions: FUNCTIONS,
      topics: MIXED_EVENT_TOPICS,
      kind: 'mixed',
      rates: MIXED_STEPS,
    });
    const steps = await stepUp(harness, processes, {
      label: 'audit-append',
      functions: ['audit-append'],
      topics: AUDITED_TOPICS,
      kind: 'audited',
      rates: STEPS,
    });
    const loadAfter = loadavg()[0] ?? 0;
    const fmt = (v: number | undefined) =>
      v !== undefined && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a';
    const auditStats = (s: Step) => s.perFunction['audit-append'] ?? stats([]);
    const { maxRate } = limits(steps.steps);
    const mixedLimits = limits(mixed.steps);
    const lastStep = steps.steps.at(-1);
    const lastMixed = mixed.steps.at(-1);
    const fixedLoss = fixed.audit.missing;
    const balance = (audit: { expected: number; stored: number; missing: number }) =>
      `${fmt(audit.stored)} of ${fmt(audit.expected)} audited events produced are in the audit store` +
      (audit.missing === 0 ? ' (**no loss**)' : ` (**${fmt(audit.missing)} missing**)`);
    const stepLoss = (run: {
      audit: { expected: number; stored: number; missing: number };
      behind: number;
    }) =>
      balance(run.audit) +
      (run.behind > 0 ? `; ${fmt(run.behind)} records still behind after ${DRAIN_SECONDS} s` : '');
    const incidentBacklog = fixed.perFunction.find((f) => f.fn === 'incident-explanation')?.backlog ?? 0;
    const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
    const channelCalls = (calls: CpuPerRecord['channelRequests']) =>
      !calls || calls.sns + calls.ses === 0 ? '-' : `${calls.sns.toFixed(2)} / ${calls.ses.toFixed(2)}`;
    const fixedSeconds = (fixed.offered.endedAt - fixed.offered.startedAt) / 1000;
    const share = (name: string) => fixed.offered.cpu[name] ?? 0;
    const delivered = fixed.cpuPerRecord.reduce((sum, f) => sum + f.records, 0);
    const workersShare = Object.values(fixed.functionCpu).reduce((a, b) => a + b, 0);
    const perEvent = (cpuShare: number, events: number) =>
      events > 0 ? ms((cpuShare * fixedSeconds * 10) / events) : 'n/a';
    // Where each function's p95 first went over the target in the mixed step-up.
    const crossing = FUNCTIONS.map((fn) => {
      const over = mixed.steps.find(
        (s) => (s.perFunction[fn]?.p95 ?? Number.POSITIVE_INFINITY) > P95_TARGET_MS,
      );
      const under = mixed.steps.filter((s) => (s.perFunction[fn]?.p95 ?? Number.NaN) <= P95_TARGET_MS);
      const lastUnder = over ? under.filter((s) => s.rate < over.rate).at(-1) : under.at(-1);
      if (!over) return `${fn} never (<= ${P95_TARGET_MS} ms up to ${fmt(mixed.steps.at(-1)?.rate)})`;
      const at = `${fmt(over.perFunction[fn]?.p95)} ms at ${fmt(over.rate)}`;
      return lastUnder
        ? `${fn} above ${fmt(lastUnder.rate)} (${at})`
        : `${fn} already at the first step (${at})`;
    });
    const machineCpu = (s: Step) => `${fmt(Object.values(s.cpu).reduce((a, b) => a + b, 0))}%`;
    if (WRITE_RESULTS)
      await writeFile(
        new URL('./latency-vs-rate.svg', import.meta.url),
        plot(
          steps.steps,
          mixed.steps,
          fixed.perFunction.map((f) => ({ fn: f.fn, p95: f.p95 })),
        ),
      );
    const section = [
      '## End to end: produce-to-stored latency, throughput, loss',
      '',
      `Run ${new Date().toISOString()} on ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, nproc ${cpus().length}, Node ${process.version}, ` +
        'with `npm run bench:e2e` (bench/e2e.bench.ts): local Kafka broker, ESM emulator with the serverless.yml settings,',
      `the real handlers in worker threads with their Lambda env, audit store ${auditStore}, dynalite (DynamoDB, tables ${dynaliteTables}), s3rver,`,
      'and for notifications and oncall-paging an SNS/SES stand-in in a process of its own (PublishBatch, 10 messages a call, as in AWS; until',
      '2026-12-06 the local outbox, one DynamoDB PutItem per message in the shared dynalite).',
      `1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after (other work shared the machine).`,
      ...(QUICK
        ? [
            `**Short validation run** (BENCH_E2E_QUICK=1: ${SECONDS} s fixed rate, ${STEP_SECONDS} s steps, ${DRAIN_SECONDS} s drain): not a measurement to compare.`,
          ]
        : []),
      'Latency = invocation returned (writes acknowledged) minus the record timestamp set by the producer.',
      'The load generator is a separate process (bench/e2e-producer.ts). Batch sizes and batching windows are those of',
      'serverless.yml (column "batch / window"): a partition that receives fewer records than its batch size waits up to',
      'its window, a latency floor under every percentile.',
      '',
      `### Fixed offered rate: ${fmt(RATE)} events/s for ${SECONDS} s, ${PARTITIONS} partitions`,
      '',
      `Mixed events (bookings, payments, incidents, genai.*; achieved ${fmt(fixed.offered.achievedRate)} events/s, ${fmt(fixed.offered.sent)} events),`,
      `after an unreported ${WARM_UP_SECONDS} s warm-up at the same rate (cold starts, and V8 tiering up each execution environment's code), its drain and a quiet machine;`,
      `first ${EXCLUDED_START_MS / 1000} s excluded from the percentiles; backlog = records not yet committed ${DRAIN_SECONDS} s after the last produce.`,
      '',
      '| function | batch / window | p50 | p95 | p99 | records stored | throughput (records/s) | backlog |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...fixed.perFunction.map(
        (f) =>
          `| ${f.fn} | ${f.batching} | ${fmt(f.p50)} ms | ${fmt(f.p95)} ms | ${fmt(f.p99)} ms | ${fmt(f.records)} | ${fmt(f.throughput)} | ${fmt(f.backlog)} |`,
      ),
      '',
      `Zero loss (audit): ${balance(fixed.audit)}; ${fixed.destination} object(s) in the on-failure destination. ` +
        "Expected = the distinct CloudEvents ids on the run's audited topics (payment.*, genai.*) when drained, so a genai.* event" +
        ` counts once incident-explanation has produced it${incidentBacklog > 0 ? ` (${fmt(incidentBacklog)} incident(s) still unexplained: their genai.* events do not exist yet and are not counted)` : ''}.`,
      `CPU while the load was offered, as a share of one core: ${cpuLine(fixed.offered.cpu)}.`,
      '',
      `CPU per record handled while the load was offered (${fmt(fixedSeconds)} s), per function: its worker threads' CPU`,
      '(/proc, exact), split in the proportions of a 10 ms sampling profile of each thread (bench/e2e-worker-probe.ts: a',
      "sample counts for the innermost frame of the function's code, the AWS SDK (@aws-sdk, @smithy, Powertools), the Kafka",
      "client (incident-explanation's producer) or another package (avsc, pg) on its stack; Node builtins count for their",
      "caller; none of them: Node and GC). Sampling adds its own cost (this run only; the step-ups run without it): V8's sampler threads, shown apart in the CPU line above, and the interruptions of the threads sampled.",
      "Stand-ins: dynalite's CPU apportioned by each function's DynamoDB requests in the same time (a batch request",
      "costs it more than a single one: indicative), PostgreSQL's to audit-append, the only function on it.",
      '',
      '| function | records | records per invocation | worker CPU ms/record | handler code | AWS SDK | Kafka client | other packages | Node, GC | DynamoDB requests/record | SNS / SES calls/record | dynalite ms/record | PostgreSQL ms/record |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...fixed.cpuPerRecord.map(
        (f) =>
          `| ${f.fn} | ${fmt(f.records)} | ${f.invocations > 0 ? (f.records / f.invocations).toFixed(1) : 'n/a'} | ${ms(f.thread)} | ${ms(f.handler)} | ${ms(f.sdk)} | ${ms(f.kafka)} | ${ms(f.packages)} | ${ms(f.node)} | ` +
          `${Number.isFinite(f.dynamodbRequests) ? f.dynamodbRequests.toFixed(2) : 'n/a'} | ${channelCalls(f.channelRequests)} | ${ms(f.dynalite)} | ${ms(f.postgres)} |`,
      ),
      '',
      `DynamoDB requests per record by operation: ${fixed.cpuPerRecord
        .filter((f) => f.dynamodbOperations.length > 0)
        .map((f) => `${f.fn} ${f.dynamodbOperations.map(([op, n]) => `${op} ${n.toFixed(3)}`).join(', ')}`)
        .join('; ')}.`,
      '',
      `Shared by every function: the emulator's process besides the function workers (its main thread: consumers, batching, invoking, commits; and the helper threads of V8 and libuv all its threads share: garbage collection, compilers) ${perEvent(share(EMULATOR) - workersShare, delivered)} ms ` +
        `per record delivered (${fmt(delivered)} records to the ${FUNCTIONS.length} functions); the Kafka broker ${perEvent(share('Kafka'), fixed.offered.sent)} ms and ` +
        `the load generator ${perEvent(share(LOAD_GENERATOR), fixed.offered.sent)} ms per event produced (${fmt(fixed.offered.sent)}).`,
      `On-call page (oncall-paging on incident.detected, notifications' code deployed on its own; produce to PublishBatch answered; every incident takes the ` +
        `batch path the CRITICAL ones are paged on): ${fmt(fixed.oncall.n)} records, p50 ${fmt(fixed.oncall.p50)} ms, ` +
        `p95 ${fmt(fixed.oncall.p95)} ms, p99 ${fmt(fixed.oncall.p99)} ms; target p95 <= ${fmt(ONCALL_TARGET_MS)} ms at ` +
        `${fmt(RATE)} events/s: **${fixed.oncall.p95 <= ONCALL_TARGET_MS ? 'met' : 'not met'}**.`,
      `p95 target <= ${P95_TARGET_MS} ms at ${fmt(RATE)} events/s: ${fixed.perFunction
        .map(
          (f) =>
            `${f.fn} **${f.p95 <= P95_TARGET_MS && f.backlog === 0 ? 'met' : 'not met'}** (${fmt(f.p95)} ms)`,
        )
        .join(', ')}.`,
      '',
      `### Step-up: mixed events, ${STEP_SECONDS} s per step`,
      '',
      `The fixed-rate run's mix and functions, the steps offered after an unreported ${WARM_UP_SECONDS} s warm-up at the first rate`,
      `(cold starts, and V8 tiering up each execution environment's code), its drain and a quiet machine; a step is sustained when every record of it is stored by every`,
      `function within ${SUSTAIN_GRACE_MS / 1000} s of its last produce and the producer achieved 95% of the offered rate. Percentiles skip the`,
      `first second of each step. Machine CPU = all the test bed's processes while the step's load was offered, as a`,
      `share of one core (${cpus().length * 100}% = every core busy). Invocations: of all the functions, per second; CPU per`,
      `invocation: the machine's above its idle CPU (the run's functions and consumers up, nothing offered, ${IDLE_SECONDS} s`,
      'after the warm-up), the load generator left out, per invocation: what an invocation costs the test bed.',
      '',
      `| offered (events/s) | achieved | ${FUNCTIONS.map((fn) => `${fn} p95`).join(' | ')} | on-call page p95 | sustained | machine CPU | invocations/s | records per invocation | CPU ms per invocation |`,
      `|---:|---:|${FUNCTIONS.map(() => '---:').join('|')}|---:|---|---:|---:|---:|---:|`,
      ...mixed.steps.map(
        (s) =>
          `| ${fmt(s.rate)} | ${fmt(s.achievedRate)} | ${FUNCTIONS.map((fn) => `${fmt(s.perFunction[fn]?.p95)} ms`).join(' | ')} | ` +
          `${fmt(s.oncall?.p95)} ms | ${s.sustained ? 'yes' : 'no'} | ${machineCpu(s)} | ${fmt(s.invocations)} | ` +
          `${fixed1(s.recordsPerInvocation)} | ${fixed1(cpuPerInvocation(s, mixed.idle))} |`,
      ),
      '',
      `Idle: ${cpuLine(mixed.idle)}.`,
      ...(mixed.steps[0] && mixed.steps[0].invocations > 0
        ? [
            `CPU per invocation at ${fmt(mixed.steps[0].rate)} events/s by process (ms, above idle): ` +
              Object.keys(mixed.steps[0].cpu)
                .filter((name) => name !== LOAD_GENERATOR)
                .map((name) => [name, cpuPerInvocation(mixed.steps[0] as Step, mixed.idle, name)] as const)
                .sort((a, b) => b[1] - a[1])
                .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
                .join(', ') +
              '.',
          ]
        : []),
      ...(mixedLimits.top
        ? [
            '',
            `At ${fmt(mixedLimits.top.rate)} events/s, the highest step sustained (records of the step per function, p50 / p95 / p99):`,
            '',
            '| function | records | p50 | p95 | p99 |',
            '|---|---:|---:|---:|---:|',
            ...FUNCTIONS.map((fn) => {
              const f = mixedLimits.top?.perFunction[fn];
              return `| ${fn} | ${fmt(f?.n)} | ${fmt(f?.p50)} ms | ${fmt(f?.p95)} ms | ${fmt(f?.p99)} ms |`;
            }),
            '',
            `CPU at that step: ${cpuLine(mixedLimits.top.cpu)}.`,
          ]
        : []),
      '',
      `Highest mixed rate sustained: **${fmt(mixedLimits.maxRate)} events/s**${lastMixed && !lastMixed.sustained ? ` (${fmt(lastMixed.rate)} was not)` : ' (every step sustained: raise BENCH_E2E_MIXED_STEPS)'}; ` +
        `highest with every function's p95 <= ${P95_TARGET_MS} ms: **${fmt(mixedLimits.maxRateWithinTarget)} events/s**.`,
      `Where each function's p95 crosses ${P95_TARGET_MS} ms (first step over it, events/s): ${crossing.join('; ')}.`,
      `Zero loss: ${stepLoss(mixed)}.`,
      '',
      `### Step-up: audit-append alone, ${STEP_SECONDS} s per step`,
      '',
      'Audited events only, measured like the mixed step-up.',
      '',
      '| offered (events/s) | achieved | p50 | p95 | p99 | sustained | machine CPU | invocations/s | records per invocation | CPU ms per invocation |',
      '|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|',
      ...steps.steps.map((s) => {
        const a = auditStats(s);
        return (
          `| ${fmt(s.rate)} | ${fmt(s.achievedRate)} | ${fmt(a.p50)} ms | ${fmt(a.p95)} ms | ${fmt(a.p99)} ms | ` +
          `${s.sustained ? 'yes' : 'no'} | ${machineCpu(s)} | ${fmt(s.invocations)} | ${fixed1(s.recordsPerInvocation)} | ` +
          `${fixed1(cpuPerInvocation(s, steps.idle))} |`
        );
      }),
      ...(steps.steps[0]
        ? [
            '',
            `At ${fmt(steps.steps[0].rate)} events/s: ${cpuLine(steps.steps[0].cpu)}. Idle: ${cpuLine(steps.idle)}.`,
          ]
        : []),
      '',
      `Maximum sustained rate: **${fmt(maxRate)} events/s**${lastStep && !lastStep.sustained ? ` (${fmt(lastStep.rate)} was not)` : ' (every step sustained: raise BENCH_E2E_STEPS)'}; target >= 5,000: **${maxRate >= 5000 ? 'met' : 'not met'}**.`,
      `Zero loss: ${stepLoss(steps)}.`,
      '',
      '![latency vs offered rate](latency-vs-rate.svg)',
    ].join('\n');
    const atStep = steps.steps.find((s) => s.rate === RATE);
    const atRate = atStep && auditStats(atStep);
    const mixedMet = fixed.perFunction
      .filter((f) => f.p95 <= P95_TARGET_MS && f.backlog === 0)
      .map((f) => f.fn);
    if (WRITE_RESULTS)
      writeResultsSection('e2e', section, {
        summary: {
          headline:
            (atRate
              ? `audit-append alone: p95 ${fmt(atRate.p95)} ms at ${fmt(RATE)} events/s (p50 ${fmt(atRate.p50)} ms), `
              : '') +
            `sustains ${fmt(maxRate)} events/s; ${fixedLoss === 0 ? 'zero loss' : `${fmt(fixedLoss)} audit rows missing`}; ` +
            `mixed ${fmt(RATE)} events/s p95: ${fixed.perFunction.map((f) => `${f.fn} ${fmt(f.p95)} ms`).join(', ')}, on-call page ${fmt(fixed.oncall.p95)} ms; ` +
            `mixed step-up: sustained up to ${fmt(mixedLimits.maxRate)} events/s, every p95 <= ${P95_TARGET_MS} ms up to ${fmt(mixedLimits.maxRateWithinTarget)}`,
          ratio: '-',
          target: `>= 5,000 events/s; p95 <= ${P95_TARGET_MS} ms at ${fmt(RATE)} events/s`,
          met:
            `rate ${maxRate >= 5000 ? 'yes' : 'no'}; p95 audit-append alone ` +
            `${atRate && atRate.p95 <= P95_TARGET_MS ? 'yes' : 'no'}, mixed ` +
            (mixedMet.length === fixed.perFunction.length
              ? 'yes'
              : `no (${fixed.perFunction.length - mixedMet.length} of ${fixed.perFunction.length} functions over)`),
        },
      });
    process.stdout.write(`${section}\n`);
  }
}

withStack(main, log).then(
  () => process.exit(0),
  (error: Error) => {
    log(error.stack ?? error.message);
    process.exit(1);
  },
);
