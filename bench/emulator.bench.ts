// ESM emulator benchmark (npm run bench:emulator), results into bench/RESULTS.md under "Emulator":
// 1. records/s through the emulator with a no-op handler vs a raw consumer of the same client on the same
//    broker and topic, in one run (target: emulator >= half the raw rate);
// 2. produce-to-handler-completion latency p50/p95/p99 at 1,000 events/s over 6 partitions (target p95 <= 100 ms).
import { writeResultsSection } from './results-file';
import '../shared/kafka/node20-polyfills';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import type { EsmDefinition } from '../local/esm/config';
import { EventSourceMapping } from '../local/esm/mapping';
import { percentile } from '../local/esm/stats';
import { esmUuid } from '../local/esm/uuid';
import type { StackState } from '../local/stack/index';
import { withStack } from './stack';

const THROUGHPUT_RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
// Single runs of 100k records vary by +-30% on this machine: enough interleaved rounds for a median.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LATENCY_RATE = 1000;
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20);
const WARM_UP_SECONDS = 3;
const PARTITIONS = 6;
const VALUE = Buffer.from(
  JSON.stringify({ bookingId: 'b'.repeat(36), zoneId: 'zone-1', amountMinor: 1234, pad: 'x'.repeat(120) }),
);

const log = (line: string) => process.stderr.write(`${line}\n`);

async function createTopic(brokers: string[], topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: brokers });
  try {
    await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
    for (;;) {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const t = metadata.topics.get(topic);
      if (t?.partitionsCount === PARTITIONS && t.partitions.every((p) => p.leader >= 0)) return;
      await sleep(100);
    }
  } finally {
    await admin.close();
  }
}

async function fill(brokers: string[], topic: string, count: number): Promise<void> {
  const producer = new Producer({ clientId: 'bench-fill', bootstrapBrokers: brokers, idempotent: true });
  try {
    const chunk = 5000;
    for (let sent = 0; sent < count; sent += chunk) {
      const n = Math.min(chunk, count - sent);
      await producer.send({
        messages: Array.from({ length: n }, (_, i) => ({
          topic,
          partition: (sent + i) % PARTITIONS,
          key: Buffer.from(`k${(sent + i) % 997}`),
          value: VALUE,
        })),
      });
    }
  } finally {
    await producer.close();
  }
}

function definition(topic: string, overrides: Partial<EsmDefinition>): EsmDefinition {
  const consumerGroupId = `${topic}-esm`;
  return {
    uuid: esmUuid('bench', topic, consumerGroupId),
    logicalId: 'BenchEventSourceMapping',
    functionKey: 'bench',
    functionName: 'bench-noop',
    handler: 'inline',
    timeoutSeconds: 60,
    memorySize: 128,
    topic,
    consumerGroupId,
    eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/bench/0000',
    batchSize: 100,
    maximumBatchingWindowMs: 500,
    enabled: true,
    startingPosition: 'TRIM_HORIZON',
    filterPatterns: [],
    maximumRetryAttempts: -1,
    maximumRecordAgeInSeconds: -1,
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: false,
    maximumConcurrency: PARTITIONS,
    ...overrides,
  };
}

/** A raw consumer of the same client: one group, autocommit, counting messages. */
async function rawRate(brokers: string[], topic: string, count: number, round: number): Promise<number> {
  const consumer = new Consumer({
    clientId: 'bench-raw',
    groupId: `${topic}-raw-${round}`,
    bootstrapBrokers: brokers,
    maxWaitTime: 500,
  });
  const started = performance.now();
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: true });
  let seen = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', () => {
      seen += 1;
      if (seen === count) resolve();
    });
  });
  const seconds = (performance.now() - started) / 1000;
  await stream.close();
  await consumer.close();
  return count / seconds;
}

async function emulatorRate(
  brokers: string[],
  topic: string,
  count: number,
  batchSize: number,
  round: number,
): Promise<number> {
  const mapping = new EventSourceMapping({
    // A fresh group per run: TRIM_HORIZON then reads the whole topic.
    definition: definition(topic, { batchSize, consumerGroupId: `${topic}-esm-${batchSize}-${round}` }),
    brokers,
    handler: async () => undefined,
  });
  const started = performance.now();
  await mapping.start();
  while (mapping.stats.consumed < count) await sleep(5);
  const seconds = (performance.now() - started) / 1000;
  await mapping.stop();
  return count / seconds;
}

async function latency(brokers: string[], topic: string) {
  const samples: number[] = [];
  const warmUpUntil = Date.now() + WARM_UP_SECONDS * 1000;
  const mapping = new EventSourceMapping({
    // No batching window: the 500 ms default alone would put p50 near 250-500 ms.
    definition: definition(topic, { batchSize: 100, maximumBatchingWindowMs: 0, startingPosition: 'LATEST' }),
    brokers,
    handler: async (event) => {
      const now = Date.now();
      if (now < warmUpUntil) return;
      for (const records of Object.values(event.records))
        for (const r of records) samples.push(now - r.timestamp);
    },
  });
  await mapping.start();
  // The same records read by a raw consumer in the same process: the baseline the machine allows.
  const rawSamples: number[] = [];
  const rawConsumer = new Consumer({
    clientId: 'bench-raw-latency',
    groupId: `${topic}-raw`,
    bootstrapBrokers: brokers,
    maxWaitTime: 500,
  });
  const rawStream = await rawConsumer.consume({ topics: [topic], mode: 'latest', autocommit: true });
  rawStream.on('data', (message) => {
    const now = Date.now();
    if (now >= warmUpUntil) rawSamples.push(now - Number(message.timestamp));
  });
  const producer = new Producer({ clientId: 'bench-rate', bootstrapBrokers: brokers, idempotent: true });
  const perTick = LATENCY_RATE / 100;
  const total = LATENCY_RATE * (LATENCY_SECONDS + WARM_UP_SECONDS);
  let sent = 0;
  const begin = Date.now();
  // 10 ms ticks scheduled against the start time, so a slow tick does not lower the rate; sends overlap
  // (bounded) so one slow produce request does not hold back the next tick.
  const outstanding = new Set<Promise<unknown>>();
  while (sent < total) {
    const due = begin + (sent / LATENCY_RATE) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    const sending = producer.send({
      messages: Array.from({ length: perTick }, (_, i) => ({
        topic,
        partition: (sent + i) % PARTITIONS,
        key: Buffer.from(`k${sent + i}`),
        value: VALUE,
      })),
    });
    outstanding.add(sending);
    sending.finally(() => outstanding.delete(sending)).catch(() => undefined);
    if (outstanding.size >= 20) await Promise.race(outstanding);
    sent += perTick;
  }
  await Promise.all(outstanding);
  const achievedRate = sent / ((Date.now() - begin) / 1000);
  const deadline = Date.now() + 30_000;
  while (mapping.stats.consumed < sent && Date.now() < deadline) await sleep(20);
  await producer.close();
  await mapping.stop();
  await rawStream.close();
  await rawConsumer.close();
  return {
    raw: {
      samples: rawSamples.length,
      p50: percentile(rawSamples, 50) ?? Number.NaN,
      p95: percentile(rawSamples, 95) ?? Number.NaN,
      p99: percentile(rawSamples, 99) ?? Number.NaN,
    },
    achievedRate,
    samples: samples.length,
    p50: percentile(samples, 50) ?? Number.NaN,
    p95: percentile(samples, 95) ?? Number.NaN,
    p99: percentile(samples, 99) ?? Number.NaN,
  };
}

async function main(stack: StackState): Promise<void> {
  const brokers = (process.env.KAFKA_BROKERS ?? stack.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const loadBefore = loadavg()[0] ?? 0;
  const run = Date.now().toString(36);

  const throughputTopic = `bench-emulator-throughput-${run}`;
  await createTopic(brokers, throughputTopic);
  log(`filling ${throughputTopic} with ${THROUGHPUT_RECORDS} records`);
  await fill(brokers, throughputTopic, THROUGHPUT_RECORDS);
  // Interleaved so that load on a shared machine hits both sides alike.
  const raw: number[] = [];
  const emulated100: number[] = [];
  const emulated500: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const topic = throughputTopic;
    log(`round ${round + 1}: raw consumer`);
    raw.push(await rawRate(brokers, topic, THROUGHPUT_RECORDS, round));
    log(`round ${round + 1}: emulator, batchSize 100`);
    emulated100.push(await emulatorRate(brokers, topic, THROUGHPUT_RECORDS, 100, round));
    log(`round ${round + 1}: emulator, batchSize 500`);
    emulated500.push(await emulatorRate(brokers, topic, THROUGHPUT_RECORDS, 500, round));
  }

  const latencyTopic = `bench-emulator-latency-${run}`;
  await createTopic(brokers, latencyTopic);
  log(`latency: ${LATENCY_RATE} events/s for ${LATENCY_SECONDS} s (+${WARM_UP_SECONDS} s warm-up)`);
  const lat = await latency(brokers, latencyTopic);
  const loadAfter = loadavg()[0] ?? 0;

  const median = (values: number[]) => percentile(values, 50) ?? Number.NaN;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const ratio100 = median(emulated100) / median(raw);
  const ratio500 = median(emulated500) / median(raw);
  const section = [
    '## Emulator: ESM emulator vs raw consumer, and produce-to-handler latency',
    '',
    `Run ${new Date().toISOString()} on ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, nproc ${cpus().length}, Node ${process.version}, ` +
      'with `npm run bench:emulator` (bench/emulator.bench.ts) against the local Kafka 4.1 broker.',
    `1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after the run (other work shared the machine).`,
    '',
    `Throughput: ${fmt(THROUGHPUT_RECORDS)} records (${VALUE.length}-byte values) over ${PARTITIONS} partitions, read from the`,
    `start by a fresh group each time; ${ROUNDS} interleaved rounds, medians reported. Raw = @platformatic/kafka`,
    'Consumer stream with autocommit, counting messages. Emulator = the full path: consumer group, batcher,',
    'MSK event built (base64 key and value; these records carry no headers), no-op handler invoked with a',
    'Lambda context, offsets committed per partition after each batch.',
    '',
    '| reader | records/s (median) | runs |',
    '|---|---:|---|',
    `| raw consumer | ${fmt(median(raw))} | ${raw.map(fmt).join(', ')} |`,
    `| emulator, batchSize 100 | ${fmt(median(emulated100))} | ${emulated100.map(fmt).join(', ')} |`,
    `| emulator, batchSize 500 | ${fmt(median(emulated500))} | ${emulated500.map(fmt).join(', ')} |`,
    '',
    `Emulator / raw: **${ratio100.toFixed(2)}** at batchSize 100, **${ratio500.toFixed(2)}** at batchSize 500 (target >= 0.5).`,
    '',
    `Latency: ${LATENCY_RATE} events/s over ${PARTITIONS} partitions for ${LATENCY_SECONDS} s after a ${WARM_UP_SECONDS} s warm-up`,
    `(achieved ${fmt(lat.achievedRate)} events/s), batchSize 100, maximumBatchingWindow 0 (with the 500 ms default`,
    'window latency is dominated by the window). Latency = handler completion time minus the record timestamp',
    '(CREATE_TIME set by the producer).',
    '',
    'The raw consumer row reads the same records in the same process (its own group), receive time minus',
    'record timestamp: what the broker, the client and this machine allow at that moment.',
    '',
    '| reader | p50 | p95 | p99 | records |',
    '|---|---:|---:|---:|---:|',
    `| emulator (handler completion) | ${lat.p50} ms | ${lat.p95} ms | ${lat.p99} ms | ${fmt(lat.samples)} |`,
    `| raw consumer (receive) | ${lat.raw.p50} ms | ${lat.raw.p95} ms | ${lat.raw.p99} ms | ${fmt(lat.raw.samples)} |`,
    '',
    `p95 target <= 100 ms: **${lat.p95 <= 100 ? 'met' : 'not met'}**.`,
  ].join('\n');
  writeResultsSection('emulator', section, {
    summary: {
      headline: `p95 produce-to-handler ${lat.p95} ms at ${fmt(LATENCY_RATE)} events/s (p50 ${lat.p50} ms)`,
      ratio: `${ratio100.toFixed(2)} (batchSize 100) / ${ratio500.toFixed(2)} (batchSize 500) of a raw consumer's records/s`,
      target: '>= 0.5; p95 <= 100 ms',
      met: `${Math.min(ratio100, ratio500) >= 0.5 ? 'yes' : 'no'}; ${lat.p95 <= 100 ? 'yes' : 'no'}`,
    },
  });
  process.stdout.write(`${section}\n`);
}

withStack(main, log).then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  },
);
