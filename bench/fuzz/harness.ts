/**
 * Property-based fuzzing of the decode path and each function's pure path (issue 20). Valid records of every
 * catalogued event type, in every framing the project reads (Confluent, Glue plain and zlib, unframed Avro and
 * JSON with ESM schema metadata), are mutated by fast-check (bit flips, truncation, Avro length-prefix and
 * block-count edits, framing bytes, header bytes, keys, timestamps, topics, huge and empty values) and sent in
 * 500-record batches mixed with valid records through decodeEvent and the pure paths of audit, billing, demand,
 * incident-explanation and notifications. Per batch it checks:
 * - nothing throws out of the batch (a batch-level failure) and nothing crashes;
 * - every valid record decodes and every function's pure path accepts it;
 * - every mutated record either decodes to a valid event (contract and schema hold) or fails alone with a reason;
 * - the batch takes at most 2 s and at most 256 MB more heap.
 * Violations are findings; `bench/fuzz.ts` writes them to a file, test/unit/fuzz runs a fixed-seed sample.
 */
import fc from 'fast-check';
import { buildAuditRecord, UnstorableRecordError } from '../../functions/audit-append/audit-record';
import { wireColumns } from '../../functions/audit-append/postgres-audit-event-store';
import { InvalidBillingEvent, toBillingCommand } from '../../functions/billing/billing-events';
import type { TariffTable } from '../../functions/billing/pricing';
import tariffs from '../../functions/billing/tariffs.json';
import type { DemandModelConfig } from '../../functions/demand-prediction-update/demand-model';
import type { ApplyOutcome, DemandReadModel } from '../../functions/demand-prediction-update/ports';
import { demandPolicy } from '../../functions/demand-prediction-update/process-demand-batch';
import zonesFile from '../../functions/demand-prediction-update/zones.json';
import { InvalidIncidentError, toIncident } from '../../functions/incident-explanation/incident';
import { InvalidResolutionError, toResolution } from '../../functions/incident-explanation/resolve-review';
import { decideNotifications, InvalidNotificationEventError } from '../../functions/notifications/rules';
import { sampleData } from '../../schemas/samples';
import { encodeConfluent, encodeGlue, encodeJson } from '../../shared/contracts/avro-codec';
import {
  AVRO_CONTENT_TYPE,
  cloudEventFromHeaders,
  cloudEventHeaders,
} from '../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry as registry } from '../../shared/contracts/file-catalog-registry';
import { CONFLUENT_HEADER_BYTES } from '../../shared/contracts/framing';
import {
  type DecodedEvent,
  decodeEvent,
  isBatchLevelError,
  type KafkaEventRecord,
  kafkaEvent,
  kafkaEventRecord,
  RecordDecodeError,
  withRawRecords,
} from '../../shared/msk';

export const BATCH_SIZE = 500;
export const MAX_BATCH_MS = 2_000;
export const MAX_BATCH_HEAP_BYTES = 256 * 1024 * 1024;

const eventTypes = registry.eventTypes().filter((type) => type in sampleData);
const config = zonesFile as DemandModelConfig;
const knownZones = new Set(config.zones.map((zone) => zone.zoneId));

type Framing = 'confluent' | 'glue' | 'glue-zlib' | 'plain' | 'json';
const framings: readonly Framing[] = ['confluent', 'glue', 'glue-zlib', 'plain', 'json'];

/** A valid record of `type`, numbered `n`, in `framing`. */
export function validRecord(type: string, n: number, framing: Framing, partition: number, offset: number) {
  const schema = registry.latest(type);
  const data = sampleData[type as keyof typeof sampleData](n);
  const entry = registry.catalogEntry(schema.id as number);
  let value: Buffer;
  if (framing === 'confluent') value = encodeConfluent(schema, data);
  else if (framing === 'glue' || framing === 'glue-zlib') {
    value = encodeGlue(entry.glueSchemaVersionId, schema.writerType, data, {
      compress: framing === 'glue-zlib',
    });
  } else if (framing === 'plain') value = encodeConfluent(schema, data).subarray(CONFLUENT_HEADER_BYTES);
  else value = encodeJson(data);
  const record: KafkaEventRecord = kafkaEventRecord({
    topic: type,
    partition,
    offset,
    timestamp: 1_772_438_400_000 + n,
    key: `key-${n}`,
    value,
    headers: cloudEventHeaders({
      id: `evt-${type}-${n}`,
      type,
      source: 'urn:mobility:fuzz',
      specversion: '1.0',
      time: '2026-03-02T08:00:00.000Z',
      subject: `key-${n}`,
      datacontenttype: AVRO_CONTENT_TYPE,
      correlationId: `corr-${n}`,
    }),
  });
  if (framing === 'plain' || framing === 'json') {
    record.valueSchemaMetadata = { dataFormat: 'AVRO', schemaId: String(schema.id) };
  }
  return record;
}

/** Zigzag varint of a long, as Avro writes it (block counts, lengths). */
function avroLong(n: bigint): number[] {
  let v = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A mutation of a record, described for the findings file. */
export type Mutation =
  | { kind: 'bit-flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'varint'; at: number; value: bigint }
  | { kind: 'framing-byte'; at: number; byte: number }
  | { kind: 'header-bytes'; header: number; bytes: readonly number[] }
  | { kind: 'header-bit-flip'; header: number; at: number; bit: number }
  | { kind: 'huge-value'; bytes: number }
  | { kind: 'empty-value' }
  | { kind: 'null-value' }
  | { kind: 'key'; bytes: number[] }
  | { kind: 'timestamp'; value: number }
  | { kind: 'topic'; index: number };

const interestingLongs = [
  0n,
  1n,
  -1n,
  2n ** 31n - 1n,
  -(2n ** 31n),
  2n ** 53n + 2n,
  2n ** 62n,
  -(2n ** 63n),
  1_000_000n,
];

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('bit-flip' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('varint' as const),
      at: fc.nat(),
      value: fc.oneof(
        fc.constantFrom(...interestingLongs),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('framing-byte' as const),
      at: fc.integer({ min: 0, max: 17 }),
      byte: fc.integer({ min: 0, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('header-bytes' as const),
      header: fc.nat(),
      bytes: fc.oneof(
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
        fc.constantFrom([0x61, 0xff], [0x61, 0xfe], [0xed, 0xa0, 0x80], [0xc0, 0x80], [], [0]),
        fc.integer({ min: 257, max: 20_000 }).map((length) => new Array<number>(length).fill(0x61)),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('header-bit-flip' as const),
      header: fc.nat(),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('huge-value' as const),
      bytes: fc.constantFrom(1_048_577, 2_000_000, 600_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('empty-value' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('null-value' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('key' as const),
      bytes: fc.oneof(
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 }),
        fc.integer({ min: 513, max: 5_000 }).map((length) => new Array<number>(length).fill(0x6b)),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('timestamp' as const),
      value: fc.constantFrom(2 ** 53 + 2, -5, 8.64e15, 1.5, 253_402_300_800_000, Number.MAX_VALUE),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('topic' as const), index: fc.nat() }) },
);

/** Applies a mutation to a copy of the record. */
export function mutate(record: KafkaEventRecord, mutation: Mutation): KafkaEventRecord {
  const copy: KafkaEventRecord = { ...record, headers: record.headers?.map((header) => ({ ...header })) };
  const value = record.value ? Buffer.from(record.value, 'base64') : Buffer.alloc(0);
  const setValue = (bytes: Buffer) => {
    copy.value = bytes.toString('base64');
  };
  switch (mutation.kind) {
    case 'bit-flip': {
      if (value.length === 0) break;
      const bytes = Buffer.from(value);
      const at = mutation.at % bytes.length;
      bytes[at] = (bytes[at] as number) ^ (1 << mutation.bit);
      setValue(bytes);
      break;
    }
    case 'truncate':
      setValue(value.subarray(0, value.length === 0 ? 0 : mutation.at % value.length));
      break;
    case 'varint': {
      const at = value.length === 0 ? 0 : mutation.at % value.length;
      // Replace the varint that starts at `at` (its continuation bytes included) with the new one.
      let end = at;
      while (end < value.length && ((value[end] as number) & 0x80) !== 0) end++;
      setValue(
        Buffer.concat([
          value.subarray(0, at),
          Buffer.from(avroLong(mutation.value)),
          value.subarray(end + 1),
        ]),
      );
      break;
    }
    case 'framing-byte': {
      if (value.length === 0) break;
      const bytes = Buffer.from(value);
      bytes[mutation.at % bytes.length] = mutation.byte;
      setValue(bytes);
      break;
    }
    case 'header-bytes':
    case 'header-bit-flip': {
      const headers = copy.headers ?? [];
      if (headers.length === 0) break;
      const entry = headers[mutation.header % headers.length] as Record<string, number[]>;
      const name = Object.keys(entry)[0] as string;
      if (mutation.kind === 'header-bytes') entry[name] = [...mutation.bytes];
      else {
        const bytes = [...(entry[name] as number[])];
        if (bytes.length > 0) {
          const at = mutation.at % bytes.length;
          bytes[at] = (bytes[at] as number) ^ (1 << mutation.bit);
        }
        entry[name] = bytes;
      }
      break;
    }
    case 'huge-value':
      setValue(Buffer.concat([value.subarray(0, 5), Buffer.alloc(mutation.bytes, 0x02)]));
      break;
    case 'empty-value':
      setValue(Buffer.alloc(0));
      break;
    case 'null-value':
      copy.value = null;
      break;
    case 'key':
      copy.key = Buffer.from(mutation.bytes).toString('base64');
      break;
    case 'timestamp':
      copy.timestamp = mutation.value;
      break;
    case 'topic':
      copy.topic = eventTypes[mutation.index % eventTypes.length] as string;
      break;
  }
  return copy;
}

export interface Finding {
  kind:
    | 'batch-level'
    | 'valid-record-rejected'
    | 'invalid-event-accepted'
    | 'no-reason'
    | 'time-bound'
    | 'heap-bound';
  detail: string;
  batch: number;
  offset?: number;
  topic?: string;
  mutation?: unknown;
}

export interface BatchStats {
  records: number;
  mutated: number;
  mutatedDecoded: number;
  mutatedFailed: number;
  /** Wall-clock time of the batch. */
  ms: number;
  /** CPU time (user + system) of the process during the batch: what the bound is checked on. */
  cpuMs: number;
  heapDeltaBytes: number;
}

interface PlannedRecord {
  record: KafkaEventRecord;
  mutation: Mutation | undefined;
}

/** Why a decoded event is not a valid one (contract or schema broken), or undefined. */
function invalidEvent(event: DecodedEvent): string | undefined {
  const ce = cloudEventFromHeaders(event.headers, AVRO_CONTENT_TYPE);
  if (typeof ce === 'string') return `accepted with headers the contract refuses: ${ce}`;
  if (ce.type !== event.topic) return `ce_type ${ce.type} accepted on topic ${event.topic}`;
  const schema = registry.find(ce.type);
  if (!schema) return `type ${ce.type} not in the catalog`;
  const paths: string[] = [];
  const hook = (path: string[], value: unknown) => paths.push(`${path.join('.')}=${String(value)}`);
  if (!schema.readerType.isValid(event.data, { errorHook: hook })) {
    return `data does not match the reader schema at ${paths.join(', ')}`;
  }
  return undefined;
}

/**
 * Each function's pure path on a decoded event. Returns the record-level rejection (a reason), or undefined when
 * the function accepts it; an error that is not one of the function's record errors is rethrown.
 */
function purePaths(event: DecodedEvent): string | undefined {
  const ce = event.cloudEvent;
  const reasons: string[] = [];
  const expect = (run: () => unknown, ...errors: Array<new (...args: never[]) => Error>) => {
    try {
      run();
    } catch (error) {
      if (errors.some((type) => error instanceof type)) reasons.push((error as Error).message);
      else throw error;
    }
  };
  // audit-append: built and put into the wire format the database receives.
  expect(() => {
    const built = buildAuditRecord(toBytes(event), {
      cloudEvent: { ...ce },
      data: event.data,
    });
    wireColumns([built]);
  }, UnstorableRecordError);
  if (ce.type === 'booking.completed' || ce.type.startsWith('payment.')) {
    expect(
      () =>
        toBillingCommand(
          {
            topic: event.topic,
            partition: event.partition,
            offset: event.offset,
            eventSource: ce.source,
            eventId: ce.id,
            eventType: ce.type,
            data: event.data,
          },
          tariffs as TariffTable,
        ),
      InvalidBillingEvent,
    );
  }
  if (ce.type === 'incident.detected') expect(() => toIncident(event.data), InvalidIncidentError);
  if (ce.type === 'genai.hitl.resolved')
    expect(() => toResolution(event.data, ce.time), InvalidResolutionError);
  if (['incident.detected', 'genai.hitl.requested', 'payment.failed', 'booking.created'].includes(ce.type)) {
    expect(
      () =>
        decideNotifications({
          topic: ce.type,
          source: ce.source,
          id: ce.id,
          time: ce.time,
          data: event.data,
        }),
      InvalidNotificationEventError,
    );
  }
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

/** The record's Kafka bytes as the audit reads them. */
function toBytes(event: DecodedEvent) {
  return {
    topic: event.topic,
    partition: event.partition,
    offset: event.offset,
    timestamp: event.timestamp,
    key: event.key === null ? null : Buffer.from(event.key).toString('base64'),
    value: event.rawValue.toString('base64'),
    headers: Object.entries(event.headers).map(([name, text]) => ({ [name]: [...Buffer.from(text)] })),
  };
}

const acceptingReadModel: DemandReadModel = {
  apply: async (updates) => updates.map((update): ApplyOutcome => ({ update, status: 'APPLIED' })),
  zoneDemand: async () => [],
  topZones: async () => [],
  supplyAndDemand: async () => {
    throw new Error('demand does not read supply while it aggregates');
  },
};
const demand = demandPolicy(config, knownZones, acceptingReadModel);

/** Runs one batch; findings are pushed to `findings`. */
export async function runBatch(
  planned: readonly PlannedRecord[],
  batch: number,
  findings: Finding[],
): Promise<BatchStats> {
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const stats: BatchStats = {
    records: planned.length,
    mutated: 0,
    mutatedDecoded: 0,
    mutatedFailed: 0,
    ms: 0,
    cpuMs: 0,
    heapDeltaBytes: 0,
  };
  let peakHeap = heapBefore;
  try {
    const event = kafkaEvent(planned.map((entry) => entry.record));
    const partitions = await decodeEvent(event, { registry });
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    const plannedByKey = new Map(
      planned.map((entry) => [
        `${entry.record.topic}-${entry.record.partition}-${entry.record.offset}`,
        entry,
      ]),
    );
    for (const partition of partitions) {
      for (const outcome of partition.records) {
        const entry = plannedByKey.get(`${outcome.topic}-${outcome.partition}-${outcome.offset}`);
        const mutation = entry?.mutation;
        const where = {
          batch,
          offset: outcome.offset,
          topic: outcome.topic,
          mutation: describeMutation(mutation),
        };
        if (mutation) stats.mutated++;
        if (outcome instanceof RecordDecodeError) {
          if (!mutation) findings.push({ kind: 'valid-record-rejected', detail: outcome.message, ...where });
          else if (!outcome.reason || !outcome.detail)
            findings.push({ kind: 'no-reason', detail: outcome.message, ...where });
          else stats.mutatedFailed++;
          continue;
        }
        if (outcome.tombstone) {
          if (!mutation)
            findings.push({ kind: 'valid-record-rejected', detail: 'decoded as a tombstone', ...where });
          else stats.mutatedDecoded++;
          continue;
        }
        const invalid = invalidEvent(outcome);
        if (invalid) {
          findings.push({
            kind: mutation ? 'invalid-event-accepted' : 'valid-record-rejected',
            detail: invalid,
            ...where,
          });
          continue;
        }
        let rejected: string | undefined;
        try {
          rejected = purePaths(outcome);
        } catch (error) {
          // Thrown by a pure path, yet not one of its record errors: a record-level failure with a reason if it
          // is classified so (the function's loop reports that record), a finding if it would fail the batch.
          if (isBatchLevelError(error)) {
            findings.push({ kind: 'batch-level', detail: `pure path: ${String(error)}`, ...where });
            continue;
          }
          rejected = `unclassified ${(error as Error).name}: ${(error as Error).message}`;
        }
        if (rejected !== undefined && !mutation) {
          findings.push({ kind: 'valid-record-rejected', detail: rejected, ...where });
        } else if (mutation) {
          if (rejected === undefined) stats.mutatedDecoded++;
          else stats.mutatedFailed++;
        }
      }
    }
    // demand aggregates the whole batch at once (its policy's handle, as the engine calls it): it must not throw
    // for any record.
    if (demand.kind === 'aggregate') await demand.handle(withRawRecords(partitions, event.records));
  } catch (error) {
    findings.push({
      kind: 'batch-level',
      detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
      batch,
    });
  }
  stats.ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  stats.cpuMs = (cpu.user + cpu.system) / 1000;
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  stats.heapDeltaBytes = peakHeap - heapBefore;
  // CPU time, not wall time: on a machine shared with other work, waiting for a core is not the batch's cost.
  if (stats.cpuMs > MAX_BATCH_MS) {
    findings.push({
      kind: 'time-bound',
      detail: `batch took ${Math.round(stats.cpuMs)} ms of CPU (${Math.round(stats.ms)} ms wall)`,
      batch,
    });
  }
  if (stats.heapDeltaBytes > MAX_BATCH_HEAP_BYTES) {
    findings.push({
      kind: 'heap-bound',
      detail: `batch used ${Math.round(stats.heapDeltaBytes / 1e6)} MB more heap`,
      batch,
    });
  }
  return stats;
}

function describeMutation(mutation: Mutation | undefined): unknown {
  if (!mutation) return undefined;
  return JSON.parse(
    JSON.stringify(mutation, (_key, value: unknown) => {
      if (typeof value === 'bigint') return value.toString();
      if (Array.isArray(value) && value.length > 64) return `${value.length} bytes`;
      return value;
    }),
  );
}

/** One batch plan: which records are valid and which mutated, drawn by fast-check. */
const batchArbitrary = (mutatedShare: number) =>
  fc.array(
    fc.record({
      type: fc.constantFrom(...eventTypes),
      framing: fc.constantFrom(...framings),
      partition: fc.integer({ min: 0, max: 3 }),
      mutation: fc.option(mutationArbitrary, { freq: Math.round(1 / (1 - mutatedShare)) }),
    }),
    { minLength: BATCH_SIZE, maxLength: BATCH_SIZE },
  );

export interface FuzzOptions {
  /** Mutated records to run (batches of 500, about half mutated). */
  records: number;
  seed: number;
  onBatch?: (stats: BatchStats, findings: readonly Finding[]) => void;
}

export interface FuzzSummary {
  batches: number;
  records: number;
  mutated: number;
  mutatedDecoded: number;
  mutatedFailed: number;
  maxBatchMs: number;
  maxBatchCpuMs: number;
  maxHeapDeltaBytes: number;
  findings: Finding[];
}

/** Runs batches until `records` mutated records went through; deterministic for a seed. */
export async function fuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const summary: FuzzSummary = {
    batches: 0,
    records: 0,
    mutated: 0,
    mutatedDecoded: 0,
    mutatedFailed: 0,
    maxBatchMs: 0,
    maxBatchCpuMs: 0,
    maxHeapDeltaBytes: 0,
    findings: [],
  };
  const plans = batchArbitrary(0.5);
  let n = 0;
  while (summary.mutated < options.records) {
    // One seed per batch: a finding names its batch, and `--seed S --from-batch B` would replay just it.
    const [plan] = fc.sample(plans, { seed: options.seed + summary.batches, numRuns: 1 });
    const offsets = new Map<string, number>();
    const planned: PlannedRecord[] = (plan ?? []).map((entry) => {
      const mutation = entry.mutation ?? undefined;
      const valid = validRecord(entry.type, n++, entry.framing, entry.partition, 0);
      const record = mutation ? mutate(valid, mutation) : valid;
      // Offsets per topic-partition after the mutation (which may move the record to another topic).
      const key = `${record.topic}-${record.partition}`;
      const offset = offsets.get(key) ?? 0;
      offsets.set(key, offset + 1);
      return { record: { ...record, offset }, mutation };
    });
    const stats = await runBatch(planned, summary.batches, summary.findings);
    summary.batches++;
    summary.records += stats.records;
    summary.mutated += stats.mutated;
    summary.mutatedDecoded += stats.mutatedDecoded;
    summary.mutatedFailed += stats.mutatedFailed;
    summary.maxBatchMs = Math.max(summary.maxBatchMs, stats.ms);
    summary.maxBatchCpuMs = Math.max(summary.maxBatchCpuMs, stats.cpuMs);
    summary.maxHeapDeltaBytes = Math.max(summary.maxHeapDeltaBytes, stats.heapDeltaBytes);
    options.onBatch?.(stats, summary.findings);
  }
  return summary;
}
