/**
 * The one batch engine every function runs its records through. Partitions run concurrently; each partition
 * is handled in offset order under the policy its function declares:
 *
 * - `stop`: one record at a time; the first failure stops the partition (it and every later record are
 *   reported). For effects that must happen in order, one record after another.
 * - `commute`: the effects of a partition's records commute, so a failure does not stop the partition and up
 *   to `concurrency` records of it run at once. The earliest failed record and every later one are still
 *   reported (Kafka redelivers from there), and the redelivery finds the later successes done.
 * - `aggregate`: the function gets the whole batch at once (every partition, decoded) and returns the records
 *   that failed (demand's fold and fenced writes, audit's one transaction). It must be safe to run again on
 *   the same batch: a transient failure runs it again, unless another record of the attempt failed for a
 *   batch-level reason that is not transient (running it again would stop there too).
 *
 * Decode errors are record failures under every policy. Errors are classified:
 * - record-level (the default): a batch item failure from that record on;
 * - batch-level (`isBatchLevel`, default errors.ts's isBatchLevelError: configuration, unreachable or refusing
 *   registry/database/AWS, outages): never a record failure;
 *   every partition stops taking new records, and the error is rethrown once all have stopped (allSettled),
 *   so the invocation fails as a whole;
 * - transient (`isTransient`, default errors.ts's isStoreOutage, a subset of batch-level: outages): first retried inside the invocation with
 *   backoff until `retryUntil`, then handled as batch-level. See README "Failures" for why.
 */
import {
  BatchFailures,
  type BatchLogger,
  type KeyedLogger,
  keyRecord,
  partitionLogger,
  type RecordHandler,
} from './batch';
import {
  type DecodedPartition,
  type DecodedRecord,
  type RecordCoordinates,
  RecordDecodeError,
} from './decode';
import { isBatchLevelError, isStoreOutage } from './errors';
import type { KafkaBatchResponse, KafkaEventRecord } from './event';

/** A partition of the batch: decoded records (or decode errors) and, index for index, the records as delivered. */
export interface BatchPartition<Data = Record<string, unknown>> extends DecodedPartition<Data> {
  raw: KafkaEventRecord[];
}

/** A record the function could not handle, and why. */
export interface RecordFailure {
  record: RecordCoordinates;
  error: unknown;
}

export interface AggregateResult {
  /** Records that failed; the engine reports each partition from its earliest failed record on. */
  failures: readonly RecordFailure[];
}

/**
 * Handles the whole batch. Decode errors are in `partitions` in their place (skip them: the engine reports
 * them). Throwing fails the invocation (after retries if transient), so throw only for batch-level trouble.
 */
export type AggregateHandler<Data, Result extends AggregateResult = AggregateResult> = (
  partitions: BatchPartition<Data>[],
) => Promise<Result>;

export type BatchPolicy<Data = Record<string, unknown>, Result extends AggregateResult = AggregateResult> =
  | { kind: 'stop'; handle: RecordHandler<Data> }
  | { kind: 'commute'; concurrency: number; handle: RecordHandler<Data> }
  | {
      kind: 'aggregate';
      handle: AggregateHandler<Data, Result>;
      /**
       * Called once with the result that counts (not with attempts that were run again) and the partial batch
       * response it led to: metrics, reports.
       */
      done?: (result: Result, response: KafkaBatchResponse) => void;
    };

/** Where the engine logs; a Powertools Logger satisfies it. */
export interface EngineLogger extends BatchLogger {
  warn(message: string, attributes: Record<string, unknown>): void;
}

export interface EngineOptions {
  logger?: EngineLogger;
  /** Errors that fail the invocation instead of a record. Default: isBatchLevelError. */
  isBatchLevel?: (error: unknown) => boolean;
  /** Batch-level errors worth retrying inside the invocation. Default: isStoreOutage. */
  isTransient?: (error: unknown) => boolean;
  /** Epoch ms after which a transient error is no longer retried; default: now (no retries). */
  retryUntil?: number;
  /** Wait before retry `attempt` (1, 2, ...); default retryDelayMs. */
  retryDelayMs?: (attempt: number) => number;
  /** Called on every transient retry, also in a batch that fails in the end (metrics). */
  onRetry?: () => void;
}

/**
 * 200 ms doubling to 5 s, with jitter so the partitions of many execution environments do not hit a
 * recovering store in step.
 */
export function retryDelayMs(attempt: number): number {
  const base = Math.min(200 * 2 ** (attempt - 1), 5_000);
  return Math.round(base * (0.5 + Math.random() / 2));
}

/** Thrown-through marker: the partition stopped because another one hit a batch-level error. */
class Stopped extends Error {}

/** State shared by the partitions of one batch. */
class Run {
  /** The first batch-level error: every partition stops taking new records. */
  fatal: { error: unknown } | undefined;
  readonly failures: BatchFailures;
  readonly isBatchLevel: (error: unknown) => boolean;
  readonly isTransient: (error: unknown) => boolean;
  readonly retryUntil: number;
  readonly delay: (attempt: number) => number;
  readonly logger: EngineLogger | undefined;
  readonly onRetry: (() => void) | undefined;
  retries = 0;

  constructor(options: EngineOptions) {
    this.logger = options.logger;
    this.failures = new BatchFailures(options.logger);
    this.isBatchLevel = options.isBatchLevel ?? isBatchLevelError;
    this.isTransient = options.isTransient ?? isStoreOutage;
    this.retryUntil = options.retryUntil ?? 0;
    this.delay = options.retryDelayMs ?? retryDelayMs;
    this.onRetry = options.onRetry;
  }

  stop(error: unknown): void {
    this.fatal ??= { error };
  }

  /** Transient errors are batch-level whatever `isBatchLevel` says: an outage must never fail a record. */
  failsBatch(error: unknown): boolean {
    return this.isBatchLevel(error) || this.isTransient(error);
  }

  /** Runs `attempt`, retrying it while it fails transiently and time is left; stops if another partition failed. */
  async withRetries<T>(attempt: () => Promise<T> | T, where: Record<string, unknown>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (!this.isTransient(error)) throw error;
        const wait = this.delay(n);
        if (this.fatal || Date.now() + wait > this.retryUntil) throw error;
        this.retries++;
        this.onRetry?.();
        // First, then every 10th attempt: an outage of minutes must not flood the logs.
        if (n === 1 || n % 10 === 0) {
          this.logger?.warn('Store or transport unavailable; retrying inside the invocation', {
            ...where,
            attempt: n,
            retryInMs: wait,
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          });
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.fatal) throw new Stopped();
      }
    }
  }
}

/** Runs `attempt` with the engine's outage retries (e.g. decoding, which may fetch a schema from a registry). */
export function withTransientRetries<T>(
  attempt: () => Promise<T>,
  options: EngineOptions,
  where: Record<string, unknown> = {},
): Promise<T> {
  return new Run(options).withRetries(attempt, where);
}

export interface BatchOutcome {
  response: KafkaBatchResponse;
  /** Transient errors retried inside the invocation. */
  retries: number;
}

/**
 * Runs a decoded batch under `policy`; returns the partial batch response, or rejects with the first
 * batch-level error once every partition has stopped.
 */
export async function runBatch<Data, Result extends AggregateResult = AggregateResult>(
  partitions: BatchPartition<Data>[],
  policy: BatchPolicy<Data, Result>,
  options: EngineOptions = {},
): Promise<BatchOutcome> {
  const run = new Run(options);
  if (policy.kind === 'aggregate') {
    const result = await runAggregate(partitions, policy.handle, run);
    if (result) policy.done?.(result, run.failures.toResponse());
  } else {
    const concurrency = policy.kind === 'commute' ? Math.max(1, Math.floor(policy.concurrency)) : 1;
    const goOn = policy.kind === 'commute';
    // allSettled, not all: a batch-level error must not leave other partitions writing after we return.
    await Promise.allSettled(
      partitions.map((partition) => runPartition(partition, policy.handle, concurrency, goOn, run)),
    );
  }
  if (run.fatal) throw run.fatal.error;
  return { response: run.failures.toResponse(), retries: run.retries };
}

async function runPartition<Data>(
  partition: BatchPartition<Data>,
  handle: RecordHandler<Data>,
  concurrency: number,
  goOn: boolean,
  run: Run,
): Promise<void> {
  const failed: Array<{ index: number; error: unknown }> = [];
  let next = 0;
  const lane = async (log: KeyedLogger) => {
    while (!run.fatal) {
      const index = next++;
      if (index >= partition.records.length) return;
      const record = partition.records[index] as BatchPartition<Data>['records'][number];
      if (record instanceof RecordDecodeError) {
        failed.push({ index, error: record });
        if (goOn) continue;
        return;
      }
      keyRecord(log, record as DecodedRecord<unknown>);
      try {
        await run.withRetries(() => handle(record, log), { partition: partition.key, offset: record.offset });
      } catch (error) {
        if (error instanceof Stopped) return;
        if (run.failsBatch(error)) {
          run.stop(error);
          return;
        }
        failed.push({ index, error });
        if (!goOn) return;
      }
    }
  };
  // One logger per lane: records in flight at once must not rekey each other's logger.
  const lanes = Math.min(concurrency, partition.records.length);
  await Promise.all(Array.from({ length: lanes }, () => lane(partitionLogger(run.logger, partition))));
  reportEarliest(partition, failed, run.failures);
}

async function runAggregate<Data, Result extends AggregateResult>(
  partitions: BatchPartition<Data>[],
  handle: AggregateHandler<Data, Result>,
  run: Run,
): Promise<Result | undefined> {
  let result: Result;
  try {
    result = await run.withRetries(async () => {
      const attempt = await handle(partitions);
      // A failure waiting does not fix (batch-level, not transient) ends the run at once, whatever else failed:
      // running the batch again would only repeat its work until the deadline.
      if (attempt.failures.some((failure) => lastsPastRetries(run, failure.error))) return attempt;
      // A record that failed for a transient reason fails the attempt: the handler runs again (it is safe to).
      const transient = attempt.failures.find((failure) => run.isTransient(failure.error));
      if (transient) throw transient.error;
      return attempt;
    }, {});
  } catch (error) {
    run.stop(error);
    return undefined;
  }
  const batchLevel =
    result.failures.find((failure) => lastsPastRetries(run, failure.error)) ??
    result.failures.find((failure) => run.failsBatch(failure.error));
  if (batchLevel) {
    run.stop(batchLevel.error);
    return undefined;
  }
  const byPartition = new Map<string, Array<{ index: number; error: unknown }>>();
  const indexes = new Map<string, Map<number, number>>();
  for (const partition of partitions) {
    const failed: Array<{ index: number; error: unknown }> = [];
    const offsets = new Map<number, number>();
    for (let index = 0; index < partition.records.length; index++) {
      const record = partition.records[index] as BatchPartition<Data>['records'][number];
      offsets.set(record.offset, index);
      if (record instanceof RecordDecodeError) failed.push({ index, error: record });
    }
    byPartition.set(partition.key, failed);
    indexes.set(partition.key, offsets);
  }
  for (const { record, error } of result.failures) {
    const key = `${record.topic}-${record.partition}`;
    const index = indexes.get(key)?.get(record.offset);
    if (index !== undefined) byPartition.get(key)?.push({ index, error });
  }
  for (const partition of partitions) {
    reportEarliest(partition, byPartition.get(partition.key) ?? [], run.failures);
  }
  return result;
}

/** Batch-level and not transient: only a deploy or an operator fixes it. */
function lastsPastRetries(run: Run, error: unknown): boolean {
  return run.failsBatch(error) && !run.isTransient(error);
}

/** Reports the partition from its earliest failed record on, with that record's error. */
function reportEarliest(
  partition: DecodedPartition<unknown>,
  failed: ReadonlyArray<{ index: number; error: unknown }>,
  failures: BatchFailures,
): void {
  let earliest: { index: number; error: unknown } | undefined;
  for (const failure of failed) if (!earliest || failure.index < earliest.index) earliest = failure;
  if (earliest) failures.failFrom(partition, earliest.index, earliest.error);
}

/** The ESM delivers each partition in order; decodeEvent sorts a hand-made one the same way. */
function inOffsetOrder(records: KafkaEventRecord[]): KafkaEventRecord[] {
  for (let i = 1; i < records.length; i++) {
    if ((records[i] as KafkaEventRecord).offset < (records[i - 1] as KafkaEventRecord).offset) {
      return [...records].sort((a, b) => a.offset - b.offset);
    }
  }
  return records;
}

/** Pairs decoded partitions with the records as delivered (decodeEvent keeps the event's partition order). */
export function withRawRecords<Data>(
  decoded: DecodedPartition<Data>[],
  records: Record<string, KafkaEventRecord[]>,
): BatchPartition<Data>[] {
  return decoded.map((partition) => ({ ...partition, raw: inOffsetOrder(records[partition.key] ?? []) }));
}
