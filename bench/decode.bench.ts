/**
 * Decode throughput: 10,000 Avro records in MSK shape (base64 + framing + avsc + CloudEvents headers),
 * shared/msk decodeEvent vs @aws-lambda-powertools/kafka kafkaConsumer (avro-js 1.12.1) on the same records.
 * Powertools gets plain Avro (it cannot read Confluent framing); everything else is identical. Runs are
 * interleaved after a warm-up; medians are reported and written to the decode section of bench/RESULTS.md.
 *
 *   npm run bench:decode
 */

import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { kafkaConsumer, SchemaType } from '@aws-lambda-powertools/kafka';
import type { Context } from 'aws-lambda';
import { schemaCatalog } from '../schemas';
import { sampleData } from '../schemas/samples';
import { fileCatalogSchemaRegistry as registry } from '../shared/contracts/file-catalog-registry';
import { type OutgoingEvent, toKafkaMessage } from '../shared/kafka/event-message';
import { kafkaEvent, kafkaEventRecord } from '../shared/msk/build';
import { decodeEvent, isRecordDecodeError } from '../shared/msk/decode';
import type { KafkaEvent, KafkaEventRecord } from '../shared/msk/event';
import { writeResultsSection } from './results-file';

const RECORDS = 10_000;
const PARTITIONS = 6;
const WARMUP_RUNS = 3;
const RUNS = 7;
const OURS_PER_ROUND = 3;
const TYPE = 'booking.created';

function buildEvents(): { ours: KafkaEvent; powertools: KafkaEvent } {
  const ours: KafkaEventRecord[] = [];
  const plain: KafkaEventRecord[] = [];
  for (let n = 0; n < RECORDS; n++) {
    const data = sampleData[TYPE](n);
    const event: OutgoingEvent = {
      topic: TYPE,
      key: data.bookingId,
      id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      type: TYPE,
      source: 'urn:mobility:booking-service',
      subject: data.bookingId,
      time: new Date(data.createdAt).toISOString(),
      data,
      correlationId: `corr-${n}`,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    };
    const message = toKafkaMessage(event, registry);
    const coordinates = { topic: TYPE, partition: n % PARTITIONS, offset: Math.floor(n / PARTITIONS) };
    const common = { ...coordinates, timestamp: data.createdAt, key: message.key, headers: message.headers };
    ours.push(kafkaEventRecord({ ...common, value: message.value }));
    // Same record, Avro body without the 5-byte Confluent header: what Powertools can read.
    plain.push(kafkaEventRecord({ ...common, value: message.value.subarray(5) }));
  }
  return { ours: kafkaEvent(ours), powertools: kafkaEvent(plain) };
}

const schemaString = JSON.stringify(
  schemaCatalog.find((entry) => entry.type === TYPE && entry.id === registry.latest(TYPE).id)?.schema,
);

let sink = 0;

/** Full GC between runs (untimed); needs node --expose-gc, which the npm script passes. */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('Run with node --expose-gc (npm run bench:decode does)');
  gc();
}

interface Timing {
  wallMs: number;
  cpuMs: number;
}

function timer(): () => Timing {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { wallMs: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 };
  };
}

async function runOurs(event: KafkaEvent): Promise<Timing> {
  const stop = timer();
  const partitions = await decodeEvent(event, { registry });
  let decoded = 0;
  for (const partition of partitions) {
    for (const record of partition.records) {
      if (isRecordDecodeError(record)) throw record;
      decoded++;
      sink += record.headers.ce_id?.length ?? 0;
    }
  }
  const elapsed = stop();
  if (decoded !== RECORDS) throw new Error(`decoded ${decoded} records`);
  return elapsed;
}

const context = {
  functionName: 'bench',
  awsRequestId: 'bench',
  getRemainingTimeInMillis: () => 60_000,
} as Context;

const powertoolsHandler = kafkaConsumer(
  async (event) => {
    let decoded = 0;
    for (const record of event.records) {
      // Deserialization is lazy: touch key, value and headers, as a handler would.
      const value = record.value as { bookingId: string };
      const headers = record.headers as Record<string, string>[];
      sink += value.bookingId.length + headers.length + String(record.key).length;
      decoded++;
    }
    return decoded;
  },
  { value: { type: SchemaType.AVRO, schema: schemaString } },
);

async function runPowertools(event: KafkaEvent): Promise<Timing> {
  const stop = timer();
  const decoded = (await powertoolsHandler(event as never, context)) as number;
  const elapsed = stop();
  if (decoded !== RECORDS) throw new Error(`Powertools decoded ${decoded} records`);
  return elapsed;
}

/** A Markdown table padded the way biome formats Markdown, so `biome check` stays clean. */
function markdownTable(header: string[], rows: string[][], rightAligned: boolean[]): string[] {
  const widths = header.map((cell, i) =>
    Math.max(cell.length, 3, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[], pad: (cell: string, i: number) => string) =>
    `| ${cells.map(pad).join(' | ')} |`;
  const cellPad = (cell: string, i: number) =>
    rightAligned[i] ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number);
  return [
    line(header, (cell, i) => cell.padEnd(widths[i] as number)),
    line(header, (_cell, i) =>
      rightAligned[i] ? `${'-'.repeat((widths[i] as number) - 1)}:` : '-'.repeat(widths[i] as number),
    ),
    ...rows.map((row) => line(row, cellPad)),
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function machine(): string {
  const cpuModel =
    readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((line) => line.startsWith('model name'))
      ?.split(':')[1]
      ?.trim() ?? cpus()[0]?.model;
  const nproc = execSync('nproc').toString().trim();
  return `${cpuModel}, nproc ${nproc}, Node ${process.version}`;
}

async function main() {
  const { ours, powertools } = buildEvents();
  // Lambda hands the handler a freshly parsed event; parse a copy per run (not timed).
  const oursJson = JSON.stringify(ours);
  const powertoolsJson = JSON.stringify(powertools);
  const oursTimes: Timing[] = [];
  const powertoolsTimes: Timing[] = [];
  const loadBefore = loadavg()[0] as number;
  for (let run = 0; run < WARMUP_RUNS + RUNS; run++) {
    // Collect before each timed run, so neither decoder pays for the other's garbage.
    // decodeEvent is ~20x faster, so it runs OURS_PER_ROUND times per round for as many samples in similar time.
    for (let i = 0; i < OURS_PER_ROUND; i++) {
      const oursEvent = JSON.parse(oursJson);
      collectGarbage();
      const a = await runOurs(oursEvent);
      if (run >= WARMUP_RUNS) oursTimes.push(a);
    }
    const powertoolsEvent = JSON.parse(powertoolsJson);
    collectGarbage();
    const b = await runPowertools(powertoolsEvent);
    if (run >= WARMUP_RUNS) powertoolsTimes.push(b);
  }
  const loadAfter = loadavg()[0] as number;

  const rate = (ms: number) => Math.round((RECORDS / ms) * 1000);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const row = (name: string, times: Timing[]) => {
    const wall = median(times.map((t) => t.wallMs));
    const cpu = median(times.map((t) => t.cpuMs));
    const bestCpu = Math.min(...times.map((t) => t.cpuMs));
    return {
      wall,
      cpu,
      bestCpu,
      cells: [
        name,
        String(times.length),
        wall.toFixed(1),
        fmt(rate(wall)),
        cpu.toFixed(1),
        fmt(rate(cpu)),
        `${bestCpu.toFixed(1)} (${fmt(rate(bestCpu))}/s)`,
      ],
    };
  };
  const oursRow = row('shared/msk decodeEvent (avsc 5.7.9)', oursTimes);
  const powertoolsRow = row('Powertools kafkaConsumer (avro-js 1.12.1)', powertoolsTimes);
  const wallRatio = powertoolsRow.wall / oursRow.wall;
  const cpuRatio = powertoolsRow.cpu / oursRow.cpu;

  const section = [
    '## Decode: shared/msk decodeEvent vs Powertools kafkaConsumer',
    '',
    `Run ${new Date().toISOString()} on ${machine()}, with \`npm run bench:decode\` (bench/decode.bench.ts).`,
    `1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after the run (other work shared the machine).`,
    '',
    `${fmt(RECORDS)} \`${TYPE}\` records in MSK shape over ${PARTITIONS} partitions: base64 key and value, 9 CloudEvents`,
    'headers as byte arrays, Avro data. decodeEvent reads Confluent framing (magic byte + schema id), takes the',
    'schema from the catalog and returns per-partition decoded records; Powertools (@aws-lambda-powertools/kafka',
    '2.35.0 with avro-js 1.12.1) gets the same records with plain Avro values (it cannot read Confluent framing)',
    'and its handler reads key, value and headers of every record (its deserialization is lazy).',
    `Each run decodes a freshly JSON.parse'd event (not timed); ${WARMUP_RUNS} warm-up runs, then ${RUNS} interleaved`,
    "timed runs per decoder, with a full GC before each (untimed, so neither pays for the other's garbage);",
    'medians reported. JavaScript runs on one thread; CPU time is process.cpuUsage()',
    '(user + system, includes GC helper threads) and is the fairer number when the machine is shared.',
    '',
    ...markdownTable(
      [
        'decoder',
        'runs',
        'median wall ms / 10k',
        'records/s (wall)',
        'median CPU ms / 10k',
        'records/s (CPU)',
        'best run CPU ms (records/s)',
      ],
      [oursRow.cells, powertoolsRow.cells],
      [false, true, true, true, true, true, true],
    ),
    '',
    `Ratio (decodeEvent / Powertools throughput): **${wallRatio.toFixed(1)}x** wall, **${cpuRatio.toFixed(1)}x** CPU (target >= 5x).`,
    `decodeEvent: **${fmt(rate(oursRow.wall))} records/s** wall, **${fmt(rate(oursRow.cpu))} records/s** CPU median,`,
    `**${fmt(rate(oursRow.bestCpu))} records/s** CPU best run (target >= 200,000 on one core).`,
    '',
    'Why the gap: Powertools calls `avro.parse(schema)` for every record; decodeEvent uses avsc types parsed once',
    'per process, decodes ASCII headers and keys without a Buffer each (String.fromCharCode, atob), builds one',
    'object shape per record, and awaits only when a schema must be fetched.',
    '',
    "Where decodeEvent's time goes (V8 CPU profile with inlining on, main thread, bench-shaped runs after",
    'JSON.parse + gc, 2026-11-23): byte-array headers ~40% (the byte-check loop 11%, first touch of each header',
    'entry and byte array ~12%, String.fromCharCode.apply 6%, setting 9 properties on a fresh object 5%), Avro',
    '~20% (avsc readString + native utf8Slice 13%), value base64 ~10%, key (atob) ~6%, CloudEvents attributes and',
    'record objects ~14%. Instructions (callgrind, decodeEvent only): ~29k per record besides GC, of which',
    'building header strings (StringFromCharCode + apply) is 20% and the megamorphic header stores 6%. Only',
    'reading every input byte once (no decoding) already costs 13-26 ms CPU per 10k in the same post-gc state',
    "(CPU includes the collector's concurrent sweeping after the untimed gc). No GC runs during a timed run.",
    'Run to run (a copy of this bench printing every run, load 2.6): the first decodeEvent run after a',
    'Powertools run took 98-130 ms wall, the next two 67-111 ms, CPU 40-90 ms above wall; in a process without',
    'the Powertools runs the same decode took 57-77 ms wall (best 57 ms, 175,000/s).',
    '',
    'Issue 3 (target 200,000/s) attempts, in-process A/B against 4c976aa (alternating runs after JSON.parse + gc,',
    'paired median ratio new/old, 20-30 pairs, load 2-7) and callgrind instructions per 10k besides GC:',
    '- Per-position cache of the last header value (validate by comparing with the previous bytes, reuse its',
    '  string): CPU 1.08-1.26x, wall 1.05-1.23x (slower) in three variants (Uint8Array copy, slice copy,',
    '  preallocated arrays), although string building halves in instructions: the compare and copy loops',
    '  cost what apply saved, and a slice per changed value adds allocation.',
    '- Header object from an object literal compiled per name sequence (no per-header map transitions):',
    '  instructions -4.5%, GC work -12%, but CPU 1.02x, wall 0.96x: within noise, not worth generated code.',
    '- Object.keys instead of for-in on the header entries, value base64 via Buffer.allocUnsafe + write, key via',
    '  a scratch Buffer, JS string readers instead of utf8Slice: each equal or slower in micro-benchmarks.',
    "  decodeEvent's code is unchanged.",
  ].join('\n');

  writeResultsSection('decode', section);
  console.log(section);
  if (sink === 0) console.log('(sink)');
}

await main();
